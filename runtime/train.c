/* train.c: the training loop of `graft train` over a compiled step: per
 * batch it fills the model input and labels (gr_dataset_batch), sets the
 * run-time scalars from the schedule, runs, reads the loss; after each
 * epoch it copies the state into the evaluation step and validates; it
 * writes the metrics log and checkpoints. Everything that decides a loss
 * (data order, scalars, state) is a function of the step count and the
 * checkpointed state, so a resumed run repeats an uninterrupted one. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/gr_runtime.h"

#define PI 3.14159265358979323846
#define PREFIX "graft."
#define LABELS "graft.labels"
#define LOSS "graft.loss"

struct gr_train_step {
    const gr_plan *plan;
    gr_session *session;
    void **inputs, **outputs;   /* plan->n_inputs / n_outputs buffers */
    int x, labels;              /* input positions (labels -1: none) */
    int lr, damp, step_size, bc2_sqrt, decay, seed, apply; /* inputs or -1 */
    int loss, output;           /* output positions (output -1: none) */
    /* "graft.step_size@T" / "graft.bc2_sqrt@T" inputs (progressive
     * unfreezing): input position, T, 1 for bc2_sqrt */
    int n_late;
    int *late_input, *late_bc2;
    int64_t *late_start;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ schedule */

double gr_lr_at(const gr_lr_schedule *s, int64_t t, int64_t epoch, int64_t total) {
    double lr = s->lr;
    if (s->kind == GR_LR_STEP && s->step_epochs > 0)
        lr *= pow(s->gamma, (double)(epoch / s->step_epochs));
    else if (s->kind == GR_LR_COSINE && total > 0)
        lr *= (1 + cos(PI * (double)(t < total ? t : total) / (double)total)) / 2;
    if (s->warmup > 0 && t < s->warmup) lr *= (double)t / (double)s->warmup;
    return lr;
}

/* ---------------------------------------------------------------- the step */

static const gr_buffer *input_buffer(const gr_train_step *s, int i) {
    return &s->plan->buffers[s->plan->inputs[i]];
}

static const gr_buffer *output_buffer(const gr_train_step *s, int i) {
    return &s->plan->buffers[s->plan->outputs[i]];
}

/* "graft.step_size@T" or "graft.bc2_sqrt@T": records input i; 0 if name
 * is neither. */
static int find_late(gr_train_step *s, const char *name, int i) {
    static const char *const stems[] = {"graft.step_size@", "graft.bc2_sqrt@"};
    for (int k = 0; k < 2; k++) {
        size_t len = strlen(stems[k]);
        char *end;
        if (strncmp(name, stems[k], len)) continue;
        long long start = strtoll(name + len, &end, 10);
        if (end == name + len || *end || start < 0) return 0;
        s->late_input[s->n_late] = i;
        s->late_bc2[s->n_late] = k;
        s->late_start[s->n_late++] = start;
        return 1;
    }
    return 0;
}

static gr_code find_inputs(gr_train_step *s, gr_status *st) {
    int *slots[] = {&s->lr,    &s->damp,  &s->step_size, &s->bc2_sqrt,
                    &s->decay, &s->seed, &s->apply};
    static const char *const names[] = {"graft.lr",    "graft.damp", "graft.step_size",
                                        "graft.bc2_sqrt", "graft.decay", "graft.seed",
                                        "graft.apply"};
    enum { N_SCALARS = sizeof names / sizeof *names };
    s->x = s->labels = -1;
    for (int k = 0; k < N_SCALARS; k++) *slots[k] = -1;
    size_t n = (size_t)s->plan->n_inputs + 1;
    s->late_input = gr_calloc(n, sizeof *s->late_input);
    s->late_bc2 = gr_calloc(n, sizeof *s->late_bc2);
    s->late_start = gr_calloc(n, sizeof *s->late_start);
    if (!s->late_input || !s->late_bc2 || !s->late_start)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < s->plan->n_inputs; i++) {
        const char *name = input_buffer(s, i)->name ? input_buffer(s, i)->name : "";
        int known = 0;
        if (!strcmp(name, LABELS)) s->labels = i, known = 1;
        for (int k = 0; k < N_SCALARS; k++)
            if (!strcmp(name, names[k])) *slots[k] = i, known = 1;
        if (known || find_late(s, name, i)) continue;
        if (!strncmp(name, PREFIX, strlen(PREFIX)))
            return gr_fail(st, GR_ERR_UNSUPPORTED, "training step input '%s' is unknown", name);
        if (s->x >= 0)
            return gr_fail(st, GR_ERR_UNSUPPORTED, "models with more than one input ('%s', "
                           "'%s') cannot be trained yet", input_buffer(s, s->x)->name, name);
        s->x = i;
    }
    if (s->x < 0) return gr_fail(st, GR_ERR_BAD_MODEL, "the model has no input");
    const gr_buffer *x = input_buffer(s, s->x);
    if (x->shape.rank < 1 || x->shape.dims[0] < 1)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "model input '%s' has no batch dim", x->name);
    return GR_OK;
}

static gr_code find_outputs(gr_train_step *s, gr_status *st) {
    s->loss = s->output = -1;
    for (int i = 0; i < s->plan->n_outputs; i++) {
        const char *name = output_buffer(s, i)->name ? output_buffer(s, i)->name : "";
        if (!strcmp(name, LOSS)) s->loss = i;
        else if (s->output < 0) s->output = i;
    }
    if (s->loss < 0)
        return gr_fail(st, GR_ERR_INTERNAL, "the compiled step has no output '" LOSS "'");
    const gr_buffer *b = output_buffer(s, s->loss);
    if (b->dtype != GR_DTYPE_F32 || b->nbytes != sizeof(float))
        return gr_fail(st, GR_ERR_INTERNAL, "'" LOSS "' is not an f32 scalar");
    return GR_OK;
}

static gr_code alloc_buffers(gr_train_step *s, gr_status *st) {
    const gr_plan *p = s->plan;
    s->inputs = gr_calloc((size_t)p->n_inputs + 1, sizeof *s->inputs);
    s->outputs = gr_calloc((size_t)p->n_outputs + 1, sizeof *s->outputs);
    if (!s->inputs || !s->outputs) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n_inputs; i++)
        if (!(s->inputs[i] = gr_calloc(1, input_buffer(s, i)->nbytes + 1)))
            return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n_outputs; i++)
        if (!(s->outputs[i] = gr_calloc(1, output_buffer(s, i)->nbytes + 1)))
            return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    return GR_OK;
}

gr_code gr_train_step_new(const gr_plan *plan, int n_threads, gr_train_step **out,
                          gr_status *st) {
    *out = NULL;
    gr_train_step *s = gr_calloc(1, sizeof *s);
    if (!s) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    s->plan = plan;
    gr_code code = find_inputs(s, st);
    if (code == GR_OK) code = find_outputs(s, st);
    if (code == GR_OK) code = alloc_buffers(s, st);
    if (code == GR_OK) code = gr_session_new(plan, n_threads, &s->session, st);
    if (code != GR_OK) {
        gr_train_step_free(s);
        return code;
    }
    *out = s;
    return GR_OK;
}

void gr_train_step_free(gr_train_step *s) {
    if (!s) return;
    for (int i = 0; s->inputs && i < s->plan->n_inputs; i++) gr_free(s->inputs[i]);
    for (int i = 0; s->outputs && i < s->plan->n_outputs; i++) gr_free(s->outputs[i]);
    gr_free(s->inputs);
    gr_free(s->outputs);
    gr_free(s->late_input);
    gr_free(s->late_bc2);
    gr_free(s->late_start);
    gr_session_free(s->session);
    gr_free(s);
}

int64_t gr_train_step_batch(const gr_train_step *s) {
    return input_buffer(s, s->x)->shape.dims[0];
}

int64_t gr_train_step_classes(const gr_train_step *s) {
    if (s->output < 0) return 0;
    const gr_shape *sh = &output_buffer(s, s->output)->shape;
    return sh->rank >= 2 ? sh->dims[sh->rank - 1] : 1;
}

gr_session *gr_train_step_session(gr_train_step *s) { return s->session; }
const gr_plan *gr_train_step_plan(const gr_train_step *s) { return s->plan; }

static void set_scalar(gr_train_step *s, int input, double v) {
    if (input >= 0) gr_dtype_store_f64(input_buffer(s, input)->dtype, s->inputs[input], 0, v);
}

static void set_int(gr_train_step *s, int input, int64_t v) {
    if (input >= 0) gr_dtype_store_i64(input_buffer(s, input)->dtype, s->inputs[input], 0, v);
}

/* Model input and labels of samples order[0..n) (n = the step's batch). */
static gr_code fill_batch(gr_train_step *s, const gr_dataset *d, const int64_t *order,
                          int64_t n, const struct gr_preprocess *pp, gr_status *st) {
    const gr_buffer *x = input_buffer(s, s->x);
    gr_dtype label_dtype = s->labels >= 0 ? input_buffer(s, s->labels)->dtype
                                          : GR_DTYPE_UNDEFINED;
    if (s->labels >= 0 && !gr_dataset_has_labels(d))
        return gr_fail(st, GR_ERR_BAD_ARG, "the data has no labels (give --labels)");
    if (s->labels >= 0 && label_dtype == GR_DTYPE_F32) {
        int64_t want = (int64_t)(input_buffer(s, s->labels)->nbytes / sizeof(float));
        if (gr_dataset_label_width(d) * n != want)
            return gr_fail(st, GR_ERR_BAD_ARG, "labels have %lld values per sample; the "
                           "loss needs %lld", (long long)gr_dataset_label_width(d),
                           (long long)(want / n));
    }
    return gr_dataset_batch(d, order, n, pp, x->dtype, s->inputs[s->x], label_dtype,
                            s->labels >= 0 ? s->inputs[s->labels] : NULL, st);
}

static double step_loss(const gr_train_step *s) {
    return *(const float *)s->outputs[s->loss];
}

/* ---------------------------------------------------------------- evaluation */

static int64_t argmax_row(const gr_buffer *b, const void *data, int64_t row, int64_t k) {
    int64_t best = 0;
    double best_v = -INFINITY;
    for (int64_t j = 0; j < k; j++) {
        double v = gr_dtype_load_f64(b->dtype, data, row * k + j);
        if (v > best_v) best_v = v, best = j;
    }
    return best;
}

/* Loss sum and correct predictions of one batch already run. */
static void score(const gr_train_step *s, int64_t n, double *loss_sum, int64_t *correct,
                  int64_t *confusion, int64_t k) {
    *loss_sum += step_loss(s) * (double)n;
    if (s->output < 0 || s->labels < 0 || !gr_dtype_is_int(input_buffer(s, s->labels)->dtype))
        return;
    const gr_buffer *o = output_buffer(s, s->output), *l = input_buffer(s, s->labels);
    int64_t classes = gr_train_step_classes(s);
    for (int64_t i = 0; i < n; i++) {
        int64_t want = gr_dtype_load_i64(l->dtype, s->inputs[s->labels], i);
        int64_t got = classes > 1 ? argmax_row(o, s->outputs[s->output], i, classes)
                                  : gr_dtype_load_f64(o->dtype, s->outputs[s->output], i) > 0;
        *correct += got == want;
        if (confusion && want >= 0 && want < k && got < k) confusion[want * k + got]++;
    }
}

gr_code gr_evaluate(gr_train_step *full, gr_train_step *tail, const gr_dataset *d,
                    const int64_t *idx, int64_t n, const struct gr_preprocess *pp,
                    double *loss, double *acc, int64_t *confusion, int64_t k,
                    int64_t *n_done, gr_status *st) {
    int64_t b = gr_train_step_batch(full), done = 0, correct = 0;
    int64_t *order = gr_malloc(sizeof *order * (size_t)(b + 1));
    if (!order) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    double sum = 0;
    gr_code code = GR_OK;
    if (confusion) memset(confusion, 0, sizeof *confusion * (size_t)(k * k));
    while (code == GR_OK && done < n) {
        int64_t m = n - done < b ? n - done : b;
        gr_train_step *s = m == b ? full : tail;
        if (!s || gr_train_step_batch(s) != m) break;
        for (int64_t i = 0; i < m; i++) order[i] = idx ? idx[done + i] : done + i;
        code = fill_batch(s, d, order, m, pp, st);
        if (code == GR_OK) code = gr_session_run(s->session, s->inputs, s->outputs, st);
        if (code == GR_OK) score(s, m, &sum, &correct, confusion, k);
        done += m;
    }
    gr_free(order);
    int has_acc = full->output >= 0 && full->labels >= 0 &&
                  gr_dtype_is_int(input_buffer(full, full->labels)->dtype);
    *loss = done ? sum / (double)done : NAN;
    *acc = has_acc && done ? (double)correct / (double)done : NAN;
    if (n_done) *n_done = done;
    return code;
}

/* -------------------------------------------------------------- state.json */

/* The number after "key": in json (0 if absent). */
static double json_number(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(json, pattern);
    return p ? strtod(p + strlen(pattern), NULL) : 0;
}

static char *state_json(const gr_train_config *c, const gr_data_iter *it, int64_t step) {
    const char *options = c->options_json ? c->options_json : "{}";
    size_t size = strlen(options) + 512;
    char *json = gr_malloc(size);
    if (json)
        snprintf(json, size, "{\"step\":%lld,\"epoch\":%lld,\"position\":%lld,"
                 "\"batch\":%lld,\"seed\":%llu,\"shuffle\":%d,\"drop_last\":%d,"
                 "\"accumulate\":%lld,\"options\":%s}\n", (long long)step,
                 (long long)it->epoch, (long long)it->position, (long long)it->batch_size,
                 (unsigned long long)it->seed, it->shuffle, it->drop_last,
                 (long long)c->accumulate, options);
    return json;
}

gr_code gr_checkpoint_epoch(const char *dir, int64_t *epoch, gr_status *st) {
    char *json = NULL;
    GR_TRY(gr_checkpoint_json(dir, &json, st));
    *epoch = (int64_t)json_number(json, "epoch");
    if (*epoch < 0) *epoch = 0;
    gr_free(json);
    return GR_OK;
}

/* ------------------------------------------------------------------- the loop */

typedef struct {
    const gr_train_config *c;
    gr_train_step *train;      /* c->train, or what c->restage replaced it by */
    gr_train_result *r;
    gr_data_iter it;
    int64_t *order;            /* this epoch's sample order (n_train) */
    int64_t step;              /* batches done */
    int64_t total_batches;     /* of the run (for ETA and cosine) */
    int64_t batches_per_epoch;
    double epoch_loss;         /* sum over this epoch's batches */
    int64_t epoch_batches;
    double epoch_start, epoch_seconds_sum;
    int64_t epochs_timed;
    int checkpointed;          /* a checkpoint of this run exists */
    FILE *out;
} loop;

/* Step count and data position from a checkpoint; the run's own batch and
 * accumulation must match it. */
static gr_code resume_from(loop *L, gr_status *st) {
    const gr_train_config *c = L->c;
    gr_data_iter *it = &L->it;
    int64_t *step = &L->step;
    char *json = NULL;
    if (c->restage) { /* the step that trains the checkpoint's epoch, then its state */
        int64_t epoch = 0;
        GR_TRY(gr_checkpoint_epoch(c->resume, &epoch, st));
        GR_TRY(c->restage(c->restage_ctx, epoch, &L->train, st));
    }
    GR_TRY(gr_checkpoint_read(c->resume, L->train, &json, st));
    int64_t batch = (int64_t)json_number(json, "batch");
    int64_t accumulate = (int64_t)json_number(json, "accumulate");
    *step = (int64_t)json_number(json, "step");
    it->epoch = (int64_t)json_number(json, "epoch");
    it->position = (int64_t)json_number(json, "position");
    gr_free(json);
    if (batch != it->batch_size)
        return gr_fail(st, GR_ERR_BAD_ARG, "--resume %s: the checkpoint was trained at batch "
                       "%lld, this run has %lld", c->resume, (long long)batch,
                       (long long)it->batch_size);
    if (accumulate != c->accumulate)
        return gr_fail(st, GR_ERR_BAD_ARG, "--resume %s: the checkpoint used --accumulate "
                       "%lld, this run %lld", c->resume, (long long)accumulate,
                       (long long)c->accumulate);
    if (*step < 0 || it->epoch < 0 || it->position < 0 || it->position > c->n_train)
        return gr_fail(st, GR_ERR_BAD_ARG, "--resume %s: state.json is inconsistent",
                       c->resume);
    return GR_OK;
}

/* The run-time scalars of batch number `step` (0-based) at rate lr. */
static void step_scalars(gr_train_step *s, const gr_train_config *c, int64_t step, double lr) {
    int64_t t = step / c->accumulate;  /* optimizer step this batch belongs to */
    set_scalar(s, s->lr, lr);
    set_scalar(s, s->damp, t == 0 ? 1.0 : 1.0 - c->dampening);
    set_scalar(s, s->step_size, lr / (1 - pow(c->beta1, (double)(t + 1))));
    set_scalar(s, s->bc2_sqrt, sqrt(1 - pow(c->beta2, (double)(t + 1))));
    set_scalar(s, s->decay, 1 - lr * c->weight_decay);
    set_int(s, s->seed, (int64_t)gr_hash64(c->seed ^ gr_hash64((uint64_t)step)));
    set_int(s, s->apply, (step + 1) % c->accumulate == 0);
    for (int k = 0; k < s->n_late; k++) { /* t counted from late_start */
        double t1 = (double)(t - s->late_start[k] + 1);
        set_scalar(s, s->late_input[k], s->late_bc2[k] ? sqrt(1 - pow(c->beta2, t1 < 1 ? 1 : t1))
                                        : lr / (1 - pow(c->beta1, t1 < 1 ? 1 : t1)));
    }
}

static void set_scalars(loop *L, double lr) { step_scalars(L->train, L->c, L->step, lr); }

gr_code gr_train_step_once(gr_train_step *s, const gr_train_config *c, int64_t step, double lr,
                           const void *x, const void *labels, double *loss, gr_status *st) {
    if (!x || (s->labels >= 0 && !labels))
        return gr_fail(st, GR_ERR_BAD_ARG, "the training step needs the model input%s",
                       s->labels >= 0 ? " and the labels" : "");
    memcpy(s->inputs[s->x], x, input_buffer(s, s->x)->nbytes);
    if (s->labels >= 0) memcpy(s->inputs[s->labels], labels, input_buffer(s, s->labels)->nbytes);
    step_scalars(s, c, step, lr);
    GR_TRY(gr_session_run(s->session, s->inputs, s->outputs, st));
    *loss = step_loss(s);
    return GR_OK;
}

static void progress(loop *L, double loss, double seconds) {
    const gr_train_config *c = L->c;
    int64_t in_epoch = L->it.position / L->it.batch_size;
    double rate = seconds > 0 ? (double)(L->epoch_batches * L->it.batch_size) / seconds : 0;
    if (c->progress == 1) {
        double per_batch = L->epoch_batches ? seconds / (double)L->epoch_batches : 0;
        double eta = per_batch * (double)(L->total_batches - L->step);
        fprintf(L->out, "\repoch %lld  batch %lld/%lld  loss %.4f  %.0f samples/s  "
                "ETA %d:%02d   ", (long long)L->it.epoch + 1, (long long)in_epoch,
                (long long)L->batches_per_epoch, loss, rate, (int)(eta / 60),
                (int)eta % 60);
        fflush(L->out);
    } else if (c->progress == 2) {
        int64_t every = L->batches_per_epoch / 10 > 0 ? L->batches_per_epoch / 10 : 1;
        if (in_epoch % every == 0 || in_epoch == L->batches_per_epoch)
            fprintf(L->out, "epoch %lld batch %lld/%lld loss %.6f (%.0f samples/s)\n",
                    (long long)L->it.epoch + 1, (long long)in_epoch,
                    (long long)L->batches_per_epoch, loss, rate);
    }
}

static gr_code train_batch(loop *L, int64_t first, int64_t n, gr_status *st) {
    const gr_train_config *c = L->c;
    gr_train_step *s = L->train;
    double lr = gr_lr_at(&c->lr, L->step / c->accumulate, L->it.epoch,
                         L->total_batches / c->accumulate);
    GR_TRY(fill_batch(s, c->data, L->order + first, n, c->pp, st));
    set_scalars(L, lr);
    GR_TRY(gr_session_run(s->session, s->inputs, s->outputs, st));
    double loss = step_loss(s);
    if (!isfinite(loss)) {
        if (c->progress == 1) fputc('\n', L->out);
        return gr_fail(st, GR_ERR_NUMERIC, "the loss is %s at step %lld (epoch %lld); %s%s",
                       isnan(loss) ? "NaN" : "infinite", (long long)L->step + 1,
                       (long long)L->it.epoch + 1,
                       L->checkpointed ? "the last good checkpoint is " :
                       "no checkpoint was written (try a lower --lr)",
                       L->checkpointed ? c->checkpoint : "");
    }
    L->step++;
    L->epoch_loss += loss;
    L->epoch_batches++;
    if (c->log)
        fprintf(c->log, "{\"step\":%lld,\"epoch\":%lld,\"loss\":%.9g,\"lr\":%.9g}\n",
                (long long)L->step, (long long)L->it.epoch + 1, loss, lr);
    progress(L, loss, now_s() - L->epoch_start);
    return GR_OK;
}

static gr_code validate(loop *L, gr_status *st) {
    const gr_train_config *c = L->c;
    gr_train_result *r = L->r;
    if (!c->val_data || !c->eval) return GR_OK;
    gr_train_step_copy_state(c->eval, L->train);
    if (c->eval_tail) gr_train_step_copy_state(c->eval_tail, L->train);
    int64_t done = 0;
    GR_TRY(gr_evaluate(c->eval, c->eval_tail, c->val_data, c->val_idx, c->n_val, c->pp,
                       &r->val_loss, &r->val_acc, NULL, 0, &done, st));
    r->has_val = done > 0;
    r->has_acc = !isnan(r->val_acc);
    return GR_OK;
}

static gr_code checkpoint(loop *L, gr_status *st) {
    const gr_train_config *c = L->c;
    if (!c->checkpoint) return GR_OK;
    char *json = state_json(c, &L->it, L->step);
    if (!json) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_code code = gr_checkpoint_write(c->checkpoint, L->train, json, st);
    gr_free(json);
    if (code == GR_OK) L->checkpointed = 1;
    return code;
}

/* After the epoch's last batch (or the run's last): validate, report, log. */
static gr_code end_epoch(loop *L, gr_status *st) {
    const gr_train_config *c = L->c;
    gr_train_result *r = L->r;
    double seconds = now_s() - L->epoch_start;
    if (c->progress == 1) fputc('\n', L->out);
    r->loss = L->epoch_batches ? L->epoch_loss / (double)L->epoch_batches : NAN;
    GR_TRY(validate(L, st));
    fprintf(L->out, "epoch %lld: loss %.6f", (long long)L->it.epoch + 1, r->loss);
    if (r->has_val) fprintf(L->out, ", val_loss %.6f", r->val_loss);
    if (r->has_acc) fprintf(L->out, ", val_acc %.4f", r->val_acc);
    fprintf(L->out, " (%.2f s)\n", seconds);
    if (c->log) {
        fprintf(c->log, "{\"epoch\":%lld,\"loss\":%.9g", (long long)L->it.epoch + 1, r->loss);
        if (r->has_val) fprintf(c->log, ",\"val_loss\":%.9g", r->val_loss);
        if (r->has_acc) fprintf(c->log, ",\"val_acc\":%.9g", r->val_acc);
        fprintf(c->log, ",\"seconds\":%.3f}\n", seconds);
        fflush(c->log);
    }
    L->epoch_seconds_sum += seconds;
    L->epochs_timed++;
    return GR_OK;
}

static void start_epoch(loop *L) {
    gr_data_epoch_order(&L->it, L->c->train_idx, L->c->n_train, L->order);
    L->epoch_loss = 0;
    L->epoch_batches = 0;
    L->epoch_start = now_s();
}

static int epoch_over(const gr_data_iter *it, int64_t n) {
    int64_t left = n - it->position;
    return left <= 0 || (it->drop_last && left < it->batch_size);
}

static int finished(const loop *L) {
    const gr_train_config *c = L->c;
    return (c->steps > 0 && L->step >= c->steps) || (c->epochs > 0 && L->it.epoch >= c->epochs);
}

static gr_code check_config(const gr_train_config *c, int64_t batch, gr_status *st) {
    if (c->n_train < batch)
        return gr_fail(st, GR_ERR_BAD_ARG, "%lld training samples are fewer than the batch "
                       "size %lld", (long long)c->n_train, (long long)batch);
    if (c->accumulate < 1 || (c->epochs <= 0 && c->steps <= 0))
        return gr_fail(st, GR_ERR_BAD_ARG, "nothing to train: no epochs and no steps");
    if (c->train->labels >= 0 && gr_dtype_is_int(input_buffer(c->train, c->train->labels)->dtype)) {
        int64_t k = gr_train_step_classes(c->train);
        GR_TRY(gr_dataset_check_labels(c->data, k > 1 ? k : 2, st));
        if (c->val_data && c->val_data != c->data)
            GR_TRY(gr_dataset_check_labels(c->val_data, k > 1 ? k : 2, st));
    }
    return GR_OK;
}

static gr_code run_loop(loop *L, gr_status *st) {
    const gr_train_config *c = L->c;
    int64_t first, n;
    start_epoch(L);
    while (!finished(L)) {
        if ((n = gr_data_iter_next(&L->it, c->n_train, &first)) > 0)
            GR_TRY(train_batch(L, first, n, st));
        if (!epoch_over(&L->it, c->n_train)) continue;
        GR_TRY(end_epoch(L, st));
        gr_data_iter_next_epoch(&L->it);
        if (c->restage) GR_TRY(c->restage(c->restage_ctx, L->it.epoch, &L->train, st));
        GR_TRY(checkpoint(L, st));
        start_epoch(L);
    }
    if (L->it.position > 0) { /* stopped mid-epoch by --steps */
        GR_TRY(end_epoch(L, st));
        GR_TRY(checkpoint(L, st));
    }
    return GR_OK;
}

gr_code gr_train_run(const gr_train_config *c, gr_train_result *r, gr_status *st) {
    memset(r, 0, sizeof *r);
    r->val_loss = r->val_acc = NAN;
    int64_t batch = gr_train_step_batch(c->train);
    GR_TRY(check_config(c, batch, st));
    loop L = {.c = c, .train = c->train, .r = r, .out = c->out ? c->out : stdout};
    gr_data_iter_init(&L.it, c->seed, batch, c->shuffle, 1);
    L.batches_per_epoch = gr_data_iter_batches(&L.it, c->n_train);
    L.total_batches = c->steps > 0 ? c->steps : c->epochs * L.batches_per_epoch;
    if (c->steps > 0 && c->epochs > 0 && c->epochs * L.batches_per_epoch < c->steps)
        L.total_batches = c->epochs * L.batches_per_epoch;
    if (c->resume) GR_TRY(resume_from(&L, st));
    else if (c->restage) GR_TRY(c->restage(c->restage_ctx, 0, &L.train, st));
    if (!(L.order = gr_malloc(sizeof *L.order * (size_t)c->n_train)))
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_code code = run_loop(&L, st);
    gr_free(L.order);
    if (c->log) fflush(c->log);
    r->steps = L.step;
    r->epochs = L.it.epoch;
    r->seconds_per_epoch = L.epochs_timed ? L.epoch_seconds_sum / (double)L.epochs_timed : 0;
    return code;
}
