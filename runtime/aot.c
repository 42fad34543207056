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
#include <string.h>

#include "runtime/gr_runtime.h"

typedef struct {
    gr_plan *plan;
    gr_session *session;
    int threads;          /* the session's request (model->n_threads) */
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
