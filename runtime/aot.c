/* aot.c: the runtime side of objects compiled ahead of time (`graft
 * compile`, codegen/aot.c). Each entry point of such an object calls one
 * of these with its gr_aot_model descriptor. The first call rebuilds the
 * plan from the descriptor's bytes (gr_plan_deserialize), points it at the
 * object's kernels, weights and initial state, and opens a session; the
 * runtime's state hangs off model->runtime from then on. Errors are kept
 * for gr_aot_last_error; nothing here prints or exits. The state lives
 * until the process ends (reachable from the descriptor, never freed). Not thread-safe: an
 * object serves one call at a time, as a gr_session does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gr_runtime.h"

typedef struct {
    gr_plan *plan;
    gr_session *session;
    int threads;          /* the session's request (model->n_threads) */
    gr_plan *train_plan;  /* objects with a training step: */
    gr_train_step *train;
    int train_threads;
    int64_t step;         /* batches trained (saved in state.json) */
    char error[2048];
} aot_runtime;

/* A model whose runtime state could not even be allocated. */
static int setup_failed;

/* The plan of a descriptor: code and data stay in the object. */
static gr_code open_plan(const gr_aot_plan *a, gr_plan **out, gr_status *st) {
    GR_TRY(gr_plan_deserialize(a->plan, (size_t)a->plan_bytes, out, st));
    gr_plan *p = *out;
    p->consts = (void *)a->consts;
    p->state_init = (void *)a->state_init;
    for (int i = 0; i < p->n_steps; i++) p->steps[i].fn = a->kernels[i];
    return GR_OK;
}

static aot_runtime *runtime_of(gr_aot_model *m) {
    if (!m->runtime) m->runtime = gr_calloc(1, sizeof(aot_runtime));
    setup_failed = !m->runtime;
    return m->runtime;
}

/* The inference session, (re)opened for the requested thread count. */
static gr_code open_session(gr_aot_model *m, aot_runtime *rt, gr_status *st) {
    if (m->version != GR_AOT_VERSION)
        return gr_fail(st, GR_ERR_INTERNAL, "the object was compiled for runtime version %llu, "
                       "this libgraft_rt has version %d", (unsigned long long)m->version,
                       GR_AOT_VERSION);
    if (!rt->plan) GR_TRY(open_plan(&m->run, &rt->plan, st));
    if (rt->session && rt->threads == (int)m->n_threads) return GR_OK;
    gr_session_free(rt->session);
    rt->session = NULL;
    rt->threads = (int)m->n_threads;
    return gr_session_new(rt->plan, rt->threads, &rt->session, st);
}

/* The training step, (re)opened for the requested thread count with its
 * state kept. */
static gr_code open_train(gr_aot_model *m, aot_runtime *rt, gr_status *st) {
    if (!m->train.plan)
        return gr_fail(st, GR_ERR_BAD_ARG, "the object has no training step (compile with "
                       "--train)");
    if (!rt->train_plan) GR_TRY(open_plan(&m->train, &rt->train_plan, st));
    if (rt->train && rt->train_threads == (int)m->n_threads) return GR_OK;
    gr_train_step *fresh = NULL;
    GR_TRY(gr_train_step_new(rt->train_plan, (int)m->n_threads, &fresh, st));
    if (rt->train) gr_train_step_copy_state(fresh, rt->train);
    gr_train_step_free(rt->train);
    rt->train = fresh;
    rt->train_threads = (int)m->n_threads;
    return GR_OK;
}

/* Copies the trained state into the inference session (by name). */
static void sync_state(aot_runtime *rt) {
    const gr_plan *p = rt->plan;
    gr_session *from = gr_train_step_session(rt->train);
    for (int i = 0; i < p->n_buffers; i++) {
        const gr_buffer *b = &p->buffers[i];
        int j = b->kind == GR_BUF_STATE && b->name ? gr_plan_find_buffer(rt->train_plan, b->name)
                                                   : -1;
        const void *src = j >= 0 ? gr_session_state(from, j) : NULL;
        if (src && rt->train_plan->buffers[j].nbytes == b->nbytes)
            memcpy(gr_session_state(rt->session, i), src, b->nbytes);
    }
}

/* Records a failure for gr_aot_last_error; returns the non-zero code. */
static int failed(aot_runtime *rt, const gr_status *st) {
    snprintf(rt->error, sizeof rt->error, "%s", st->msg);
    return st->code ? (int)st->code : (int)GR_ERR_INTERNAL;
}

int gr_aot_run(gr_aot_model *m, const void *const inputs[], void *const outputs[]) {
    aot_runtime *rt = runtime_of(m);
    if (!rt) return (int)GR_ERR_NOMEM;
    gr_status st = {0};
    rt->error[0] = '\0';
    if (open_session(m, rt, &st) != GR_OK) return failed(rt, &st);
    if (rt->train) sync_state(rt);
    /* The session only reads inputs (gr_session_run's contract). */
    if (gr_session_run(rt->session, (void *const *)inputs, outputs, &st) != GR_OK)
        return failed(rt, &st);
    return 0;
}

const char *gr_aot_last_error(gr_aot_model *m) {
    aot_runtime *rt = m->runtime;
    if (rt) return rt->error;
    return setup_failed ? "out of memory setting up the compiled model" : "";
}

void gr_aot_set_threads(gr_aot_model *m, int n) { m->n_threads = n > 0 ? n : 0; }

static gr_train_config train_config(const gr_aot_model *m) {
    const gr_aot_optimizer *o = &m->optimizer;
    gr_train_config c = {.adam = (int)o->adam, .dampening = o->dampening, .beta1 = o->beta1,
                         .beta2 = o->beta2, .weight_decay = o->weight_decay,
                         .accumulate = o->accumulate > 0 ? o->accumulate : 1, .seed = o->seed};
    return c;
}

int gr_aot_train_step(gr_aot_model *m, const void *const inputs[], const void *labels,
                      float lr, float *loss) {
    aot_runtime *rt = runtime_of(m);
    if (!rt) return (int)GR_ERR_NOMEM;
    gr_status st = {0};
    rt->error[0] = '\0';
    if (open_train(m, rt, &st) != GR_OK) return failed(rt, &st);
    gr_train_config c = train_config(m);
    double value = 0;
    if (!inputs || gr_train_step_once(rt->train, &c, rt->step, lr, inputs[0], labels, &value,
                                      &st) != GR_OK) {
        if (!inputs) gr_fail(&st, GR_ERR_BAD_ARG, "train_step: inputs is NULL");
        return failed(rt, &st);
    }
    rt->step++;
    if (loss) *loss = (float)value;
    return 0;
}

int gr_aot_save(gr_aot_model *m, const char *dir) {
    aot_runtime *rt = runtime_of(m);
    if (!rt) return (int)GR_ERR_NOMEM;
    gr_status st = {0};
    char json[128];
    rt->error[0] = '\0';
    snprintf(json, sizeof json, "{\"step\":%lld,\"aot\":1}\n", (long long)rt->step);
    if (!dir) gr_fail(&st, GR_ERR_BAD_ARG, "save: the directory is NULL");
    if (!dir || open_train(m, rt, &st) != GR_OK ||
        gr_checkpoint_write(dir, rt->train, json, &st) != GR_OK)
        return failed(rt, &st);
    return 0;
}

int gr_aot_load(gr_aot_model *m, const char *dir) {
    aot_runtime *rt = runtime_of(m);
    if (!rt) return (int)GR_ERR_NOMEM;
    gr_status st = {0};
    char *json = NULL;
    rt->error[0] = '\0';
    if (!dir) gr_fail(&st, GR_ERR_BAD_ARG, "load: the directory is NULL");
    if (!dir || open_train(m, rt, &st) != GR_OK ||
        gr_checkpoint_read(dir, rt->train, &json, &st) != GR_OK) {
        gr_free(json);
        return failed(rt, &st);
    }
    const char *at = strstr(json, "\"step\":");
    long long step = at ? strtoll(at + 7, NULL, 10) : 0;
    gr_free(json);
    rt->step = step > 0 ? step : 0;
    return 0;
}

int gr_aot_export_weights(gr_aot_model *m, void *const dst[]) {
    aot_runtime *rt = runtime_of(m);
    if (!rt) return (int)GR_ERR_NOMEM;
    gr_status st = {0};
    rt->error[0] = '\0';
    if (!dst) gr_fail(&st, GR_ERR_BAD_ARG, "export_weights: dst is NULL");
    if (!dst || open_session(m, rt, &st) != GR_OK || open_train(m, rt, &st) != GR_OK)
        return failed(rt, &st);
    sync_state(rt);
    int k = 0; /* the run plan's state buffers, in order: NAME_TRAINED_* */
    for (int i = 0; i < rt->plan->n_buffers; i++) {
        const gr_buffer *b = &rt->plan->buffers[i];
        if (b->kind != GR_BUF_STATE) continue;
        if (dst[k] && b->nbytes) memcpy(dst[k], gr_session_state(rt->session, i), b->nbytes);
        k++;
    }
    return 0;
}
