/* train_bench.c: times graft's training step on one ONNX model, the way
 * `graft train` builds it (tools/train.c: "head", "train" on the model,
 * then tc_compile: passes, JIT, session), on random data of a fixed seed,
 * without data loading. Prints one JSON line (bench/train.sh runs one
 * process per case, so ru_maxrss is that case's peak):
 *   {"model","mode","optimizer","threads","batch","step_ms","peak_rss_kb","compile_ms"}
 * A step = set the run-time scalars (as runtime/train.c does), run, read
 * the loss: what PyTorch's zero_grad/forward/backward/step/item does. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"
#include "runtime/gr_runtime.h"
#include "tools/train_common.h"

#define N_BATCHES 4   /* distinct batches, cycled (as bench/torch_train.py) */

static const char usage[] =
    "usage: train_bench MODEL.onnx [--mode full|frozen] [--head NAME]\n"
    "                   [--optimizer sgd|adamw] [--threads N] [--steps N]\n"
    "                   [--warmup N] [--name NAME] [--seed N]\n"
    "frozen trains only the parameters NAME.* (--head, required then).\n"
    "sgd: lr 0.05, momentum 0.9, weight decay 1e-4; adamw: lr 1e-3, weight\n"
    "decay 0.01 (the golden configurations, scripts/make-goldens.py).\n";

typedef struct {
    const char *model, *name, *mode, *head, *optimizer;
    int threads, steps, warmup;
    uint64_t seed;
} bench_args;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int bad_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "train_bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

static int parse_int(const char *text, int min, int *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, bench_args *a) {
    *a = (bench_args){.mode = "full", .optimizer = "sgd", .threads = 1, .steps = 50,
                      .warmup = 10, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int num = 0;
        if (opt[0] != '-') {
            if (a->model) return bad_usage("more than one model ('%s')", opt);
            a->model = opt;
            continue;
        }
        if (!v) return bad_usage("%s needs a value", opt);
        i++;
        if (!strcmp(opt, "--mode")) a->mode = v;
        else if (!strcmp(opt, "--head")) a->head = v;
        else if (!strcmp(opt, "--optimizer")) a->optimizer = v;
        else if (!strcmp(opt, "--name")) a->name = v;
        else if (!strcmp(opt, "--threads")) num = parse_int(v, 1, &a->threads);
        else if (!strcmp(opt, "--steps")) num = parse_int(v, 1, &a->steps);
        else if (!strcmp(opt, "--warmup")) num = parse_int(v, 0, &a->warmup);
        else if (!strcmp(opt, "--seed")) {
            int s = 0;
            num = parse_int(v, 0, &s);
            a->seed = (uint64_t)s;
        } else return bad_usage("unknown option '%s'", opt);
        if (num) return bad_usage("bad number '%s'", v);
    }
    if (!a->model) return bad_usage("%s", "no model given");
    if (strcmp(a->mode, "full") && strcmp(a->mode, "frozen"))
        return bad_usage("--mode: full or frozen, got '%s'", a->mode);
    if (!strcmp(a->mode, "frozen") && !a->head)
        return bad_usage("%s", "--mode frozen needs --head NAME");
    if (strcmp(a->optimizer, "sgd") && strcmp(a->optimizer, "adamw"))
        return bad_usage("--optimizer: sgd or adamw, got '%s'", a->optimizer);
    if (!a->name) {
        const char *slash = strrchr(a->model, '/');
        static char base[256];
        snprintf(base, sizeof base, "%s", slash ? slash + 1 : a->model);
        char *dot = strrchr(base, '.');
        if (dot && !strcmp(dot, ".onnx")) *dot = '\0';
        a->name = base;
    }
    return -1;
}

/* ------------------------------------------------------------------- data */

static uint64_t next_u64(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ull;
    return gr_hash64(*state);
}

static double next_uniform(uint64_t *state) { /* (0, 1) */
    return ((double)(next_u64(state) >> 11) + 0.5) / 9007199254740992.0;
}

/* Token inputs index an embedding: its row count (Gather data dim 0). */
static int64_t vocab_of(const gr_graph *g, const gr_value *x) {
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->op == GR_OP_GATHER && n->n_inputs == 2 && n->inputs[1] == x &&
            n->inputs[0] && n->inputs[0]->shape.rank >= 1 && n->inputs[0]->shape.dims[0] > 0)
            return n->inputs[0]->shape.dims[0];
    }
    return 2;
}

/* N_BATCHES batches of the model input (standard normal floats, or token
 * ids below vocab) and labels (class ids below classes). */
static gr_code make_batches(const gr_buffer *x, const gr_buffer *y, int64_t vocab,
                            int64_t classes, uint64_t seed, void **xs, void **ys,
                            gr_status *st) {
    uint64_t rng = seed;
    size_t n_x = x->nbytes / gr_dtype_size(x->dtype);
    size_t n_y = y ? y->nbytes / gr_dtype_size(y->dtype) : 0;
    for (int b = 0; b < N_BATCHES; b++) {
        xs[b] = gr_calloc(1, x->nbytes + 1);
        ys[b] = gr_calloc(1, (y ? y->nbytes : 0) + 1);
        if (!xs[b] || !ys[b]) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n_x; i++) {
            if (gr_dtype_is_float(x->dtype)) {
                double u1 = next_uniform(&rng), u2 = next_uniform(&rng);
                double v = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
                gr_dtype_store_f64(x->dtype, xs[b], (int64_t)i, v);
            } else {
                gr_dtype_store_i64(x->dtype, xs[b], (int64_t)i,
                                   (int64_t)(next_u64(&rng) % (uint64_t)vocab));
            }
        }
        for (size_t i = 0; i < n_y; i++)
            gr_dtype_store_i64(y->dtype, ys[b], (int64_t)i,
                               (int64_t)(next_u64(&rng) % (uint64_t)(classes > 0 ? classes : 1)));
    }
    return GR_OK;
}

/* ------------------------------------------------------------------ compile */

typedef struct {
    gr_graph *model;
    tc_step step;
    int64_t vocab;
    double compile_ms;
} bench;

/* As tools/train.c build(): model edits, then tc_compile at the model's batch. */
static gr_code compile(const bench_args *a, gr_train_opts *o, bench *b, gr_status *st) {
    const char *only[1];
    char glob[512];
    gr_train_opts_default(o);
    if (!strcmp(a->mode, "frozen")) {
        snprintf(glob, sizeof glob, "%s.*", a->head);
        only[0] = glob;
        o->n_train_only = 1, o->train_only = only;
    }
    int adamw = !strcmp(a->optimizer, "adamw");
    o->optimizer = adamw ? GR_OPTIMIZER_ADAMW : GR_OPTIMIZER_SGD;
    o->momentum = adamw ? 0 : 0.9;
    o->weight_decay = adamw ? 0.01 : 1e-4;
    o->accumulate = 1;
    double t0 = now_ms();
    GR_TRY(gr_import_file(a->model, &b->model, st));
    GR_TRY(gr_graph_check_supported(b->model, st));
    gr_pass_opts popts = {.train = o};
    static const char *const edits[] = {"head", "train", NULL};
    GR_TRY(gr_passes_run(b->model, edits, &popts, st));
    int64_t batch = 0;
    GR_TRY(tc_batch(b->model, 0, &batch, st));
    gr_pass_opts shapes = {0};
    GR_TRY(tc_compile(b->model, o, &shapes, batch, 0, a->threads, &b->step, st));
    b->compile_ms = now_ms() - t0;
    b->vocab = b->model->n_inputs ? vocab_of(b->model, b->model->inputs[0]) : 2;
    o->n_train_only = 0, o->train_only = NULL; /* only[] goes out of scope */
    return GR_OK;
}

/* ---------------------------------------------------------------------- run */

typedef struct {
    int x, labels, lr, damp, step_size, bc2_sqrt, decay, seed, apply;
    int loss;
} slots;

static int input_named(const gr_plan *p, const char *name) {
    for (int i = 0; i < p->n_inputs; i++) {
        const char *n = p->buffers[p->inputs[i]].name;
        if (n && !strcmp(n, name)) return i;
    }
    return -1;
}

static void find_slots(const gr_plan *p, slots *s) {
    s->labels = input_named(p, GR_TRAIN_LABELS);
    s->lr = input_named(p, "graft.lr");
    s->damp = input_named(p, "graft.damp");
    s->step_size = input_named(p, "graft.step_size");
    s->bc2_sqrt = input_named(p, "graft.bc2_sqrt");
    s->decay = input_named(p, "graft.decay");
    s->seed = input_named(p, "graft.seed");
    s->apply = input_named(p, "graft.apply");
    s->x = -1;
    for (int i = 0; i < p->n_inputs && s->x < 0; i++) {
        const char *n = p->buffers[p->inputs[i]].name;
        if (!n || strncmp(n, "graft.", 6)) s->x = i;
    }
    s->loss = 0;
    for (int i = 0; i < p->n_outputs; i++) {
        const char *n = p->buffers[p->outputs[i]].name;
        if (n && !strcmp(n, GR_TRAIN_LOSS)) s->loss = i;
    }
}

static void set_f(const gr_plan *p, void **in, int slot, double v) {
    if (slot >= 0) gr_dtype_store_f64(p->buffers[p->inputs[slot]].dtype, in[slot], 0, v);
}

static void set_i(const gr_plan *p, void **in, int slot, int64_t v) {
    if (slot >= 0) gr_dtype_store_i64(p->buffers[p->inputs[slot]].dtype, in[slot], 0, v);
}

/* Optimizer step t's scalars, as runtime/train.c sets them (constant lr,
 * dampening 0, betas 0.9/0.999). */
static void set_scalars(const gr_plan *p, void **in, const slots *s, const gr_train_opts *o,
                        double lr, int64_t t) {
    set_f(p, in, s->lr, lr);
    set_f(p, in, s->damp, t == 0 ? 1.0 : 1.0 - o->dampening);
    set_f(p, in, s->step_size, lr / (1 - pow(o->beta1, (double)(t + 1))));
    set_f(p, in, s->bc2_sqrt, sqrt(1 - pow(o->beta2, (double)(t + 1))));
    set_f(p, in, s->decay, 1 - lr * o->weight_decay);
    set_i(p, in, s->seed, (int64_t)gr_hash64(o->seed ^ gr_hash64((uint64_t)t)));
    set_i(p, in, s->apply, 1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static gr_code run(const bench_args *a, const gr_train_opts *o, bench *b, double *median,
                   double *last_loss, gr_status *st) {
    const gr_plan *p = b->step.plan;
    gr_session *session = gr_train_step_session(b->step.step);
    slots s;
    find_slots(p, &s);
    if (s.x < 0) return gr_fail(st, GR_ERR_BAD_MODEL, "the training step has no model input");
    void *xs[N_BATCHES] = {0}, *ys[N_BATCHES] = {0};
    void **in = gr_calloc((size_t)p->n_inputs + 1, sizeof *in);
    void **out = gr_calloc((size_t)p->n_outputs + 1, sizeof *out);
    double *ms = malloc(sizeof *ms * (size_t)a->steps);
    gr_code code = in && out && ms ? GR_OK : gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; code == GR_OK && i < p->n_inputs; i++)
        if (i != s.x && i != s.labels && !(in[i] = gr_calloc(1, p->buffers[p->inputs[i]].nbytes + 1)))
            code = gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; code == GR_OK && i < p->n_outputs; i++)
        if (!(out[i] = gr_calloc(1, p->buffers[p->outputs[i]].nbytes + 1)))
            code = gr_fail(st, GR_ERR_NOMEM, "out of memory");
    if (code == GR_OK)
        code = make_batches(&p->buffers[p->inputs[s.x]],
                            s.labels >= 0 ? &p->buffers[p->inputs[s.labels]] : NULL, b->vocab,
                            gr_train_step_classes(b->step.step), a->seed, xs, ys, st);
    double lr = o->optimizer == GR_OPTIMIZER_SGD ? 0.05 : 1e-3;
    for (int k = 0; code == GR_OK && k < a->warmup + a->steps; k++) {
        double t0 = now_ms();
        in[s.x] = xs[k % N_BATCHES];
        if (s.labels >= 0) in[s.labels] = ys[k % N_BATCHES];
        set_scalars(p, in, &s, o, lr, k);
        code = gr_session_run(session, in, out, st);
        *last_loss = *(const float *)out[s.loss];
        double t1 = now_ms();
        if (k >= a->warmup) ms[k - a->warmup] = t1 - t0;
    }
    if (code == GR_OK) {
        qsort(ms, (size_t)a->steps, sizeof *ms, cmp_double);
        *median = a->steps % 2 ? ms[a->steps / 2]
                               : (ms[a->steps / 2 - 1] + ms[a->steps / 2]) / 2;
    }
    for (int i = 0; in && i < p->n_inputs; i++)
        if (i != s.x && i != s.labels) gr_free(in[i]);
    for (int i = 0; out && i < p->n_outputs; i++) gr_free(out[i]);
    for (int k = 0; k < N_BATCHES; k++) gr_free(xs[k]), gr_free(ys[k]);
    gr_free(in);
    gr_free(out);
    free(ms);
    return code;
}

int main(int argc, char **argv) {
    bench_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    gr_status st = {0};
    bench b = {0};
    gr_train_opts o;
    double median = 0, loss = 0;
    gr_code code = compile(&a, &o, &b, &st);
    if (code == GR_OK) code = run(&a, &o, &b, &median, &loss, &st);
    if (code == GR_OK && !isfinite(loss))
        code = gr_fail(&st, GR_ERR_NUMERIC, "non-finite loss %g", loss);
    if (code == GR_OK) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"model\": \"%s\", \"mode\": \"%s\", \"optimizer\": \"%s\", \"threads\": %d, "
               "\"batch\": %lld, \"step_ms\": %.4f, \"peak_rss_kb\": %ld, "
               "\"compile_ms\": %.1f, \"loss\": %.6g}\n",
               a.name, a.mode, a.optimizer, gr_session_threads(gr_train_step_session(b.step.step)),
               (long long)gr_train_step_batch(b.step.step), median, ru.ru_maxrss, b.compile_ms,
               loss);
    } else {
        fprintf(stderr, "train_bench: %s %s %s: %s\n", a.name, a.mode, a.optimizer,
                st.msg[0] ? st.msg : gr_code_name(st.code));
    }
    tc_step_free(&b.step);
    gr_graph_free(b.model);
    return code == GR_OK ? 0 : 1;
}
