/* session.c: runs a gr_plan. The run-time arena is allocated once per
 * session; a run resolves every buffer to a pointer, builds each step's
 * argument array and executes the steps inside ONE OpenMP parallel region
 * (ggml style). Within a step, threads claim chunks of tasks from an atomic
 * counter and count the tasks they finish; a thread moves on to the next
 * step once every task of this one is finished. So a thread the OS does not
 * schedule (a loaded machine) holds up no step it has not claimed work in:
 * the running threads take its share. Tasks are independent and each
 * computes its outputs whole, so results do not depend on which thread
 * runs which chunk, only on the kernels (identical for a thread count). */
#include <omp.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "runtime/gr_runtime.h"

/* Thread ids times n_tasks must not overflow int64 in the static split. */
#define MAX_THREADS 4096
#define MAX_TASKS (INT64_MAX / (MAX_THREADS + 1))
/* Workspaces times threads must not overflow size_t. */
#define MAX_WORKSPACE (SIZE_MAX / 2 / MAX_THREADS)

/* One step's progress in a run: tasks claimed, tasks finished. */
typedef struct {
    atomic_int_fast64_t next;
    atomic_int_fast64_t done;
} step_sync;

struct gr_session {
    const gr_plan *plan;
    int n_threads;
    void *arena_block;   /* as allocated */
    char *arena;         /* 64-byte aligned inside arena_block */
    void **buffers;      /* plan->n_buffers resolved pointers */
    void *state;         /* plan->state_bytes, 64-byte aligned */
    void **args;         /* per thread: every step's arguments, back to back,
                            each step's followed by the thread's workspace */
    size_t args_per_thread;
    int *arg_start;      /* step i's arguments begin at args + arg_start[i] */
    void *workspace_block; /* n_threads workspaces of workspace_bytes */
    size_t workspace_bytes;
    int profiling;
    int64_t n_profiled;
    double *step_ms;     /* plan->n_steps totals */
    step_sync *sync;     /* plan->n_steps counters, zeroed before each run */
};

/* A buffer must lie inside the region it claims. */
static gr_code check_buffer(const gr_plan *p, int id, gr_status *st) {
    const gr_buffer *b = &p->buffers[id];
    const char *name = b->name ? b->name : "";
    switch (b->kind) {
    case GR_BUF_ARENA:
    case GR_BUF_CONST:
    case GR_BUF_STATE: {
        size_t limit = b->kind == GR_BUF_ARENA ? p->arena_bytes
                       : b->kind == GR_BUF_CONST ? p->const_bytes : p->state_bytes;
        if (b->offset > limit || b->nbytes > limit - b->offset)
            return gr_fail(st, GR_ERR_INTERNAL,
                           "plan: buffer %d '%s' [%zu, +%zu) lies outside its %s of %zu bytes",
                           id, name, b->offset, b->nbytes,
                           b->kind == GR_BUF_ARENA ? "arena"
                           : b->kind == GR_BUF_CONST ? "constants" : "state", limit);
        if (b->kind == GR_BUF_STATE && b->nbytes && !p->state_init)
            return gr_fail(st, GR_ERR_INTERNAL, "plan: buffer %d '%s' is state "
                           "but the plan has no initial state", id, name);
        if (b->kind == GR_BUF_CONST && b->nbytes && !p->consts)
            return gr_fail(st, GR_ERR_INTERNAL, "plan: buffer %d '%s' is a constant "
                           "but the plan has no constant data", id, name);
        return GR_OK;
    }
    case GR_BUF_INPUT:
    case GR_BUF_OUTPUT: {
        int n = b->kind == GR_BUF_INPUT ? p->n_inputs : p->n_outputs;
        if (b->index < 0 || b->index >= n)
            return gr_fail(st, GR_ERR_INTERNAL, "plan: buffer %d '%s' is %s %d of %d", id,
                           name, b->kind == GR_BUF_INPUT ? "input" : "output", b->index, n);
        return GR_OK;
    }
    }
    return gr_fail(st, GR_ERR_INTERNAL, "plan: buffer %d '%s' has kind %d", id, name,
                   (int)b->kind);
}

static gr_code check_ids(const gr_plan *p, const int *ids, int n, const char *what,
                         gr_status *st) {
    if (n < 0 || (n > 0 && !ids))
        return gr_fail(st, GR_ERR_INTERNAL, "plan: bad %s list (%d entries)", what, n);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= p->n_buffers)
            return gr_fail(st, GR_ERR_INTERNAL, "plan: %s %d is buffer %d of %d", what, i,
                           ids[i], p->n_buffers);
    return GR_OK;
}

/* Invariants codegen guarantees; checked once so a broken plan is an
 * error message, not a wild write. */
static gr_code check_plan(const gr_plan *p, gr_status *st) {
    if (p->n_buffers < 0 || (p->n_buffers && !p->buffers) || p->n_steps < 0 ||
        (p->n_steps && !p->steps))
        return gr_fail(st, GR_ERR_INTERNAL, "plan: bad buffer or step table");
    for (int i = 0; i < p->n_buffers; i++) GR_TRY(check_buffer(p, i, st));
    GR_TRY(check_ids(p, p->inputs, p->n_inputs, "input", st));
    GR_TRY(check_ids(p, p->outputs, p->n_outputs, "output", st));
    for (int i = 0; i < p->n_inputs; i++)
        if (p->buffers[p->inputs[i]].kind != GR_BUF_INPUT ||
            p->buffers[p->inputs[i]].index != i)
            return gr_fail(st, GR_ERR_INTERNAL, "plan: input %d is not an input buffer", i);
    for (int i = 0; i < p->n_outputs; i++)
        if (p->buffers[p->outputs[i]].kind != GR_BUF_OUTPUT ||
            p->buffers[p->outputs[i]].index != i)
            return gr_fail(st, GR_ERR_INTERNAL, "plan: output %d is not an output buffer", i);
    for (int i = 0; i < p->n_steps; i++) {
        const gr_step *step = &p->steps[i];
        const char *name = step->name ? step->name : "";
        if (!step->fn)
            return gr_fail(st, GR_ERR_INTERNAL, "plan: step %d '%s' has no kernel", i, name);
        if (step->n_tasks < 1 || step->n_tasks > MAX_TASKS)
            return gr_fail(st, GR_ERR_INTERNAL, "plan: step %d '%s' has %lld tasks", i, name,
                           (long long)step->n_tasks);
        if (step->workspace_bytes > MAX_WORKSPACE)
            return gr_fail(st, GR_ERR_INTERNAL, "plan: step %d '%s' wants a workspace of %zu "
                           "bytes", i, name, step->workspace_bytes);
        if (check_ids(p, step->args, step->n_args, "argument", st) != GR_OK)
            return gr_status_prefix(st, "step %d '%s': ", i, name);
    }
    return GR_OK;
}

/* Arena, CONST pointers and the argument layout are fixed per session. */
static gr_code alloc_session(gr_session *s, gr_status *st) {
    const gr_plan *p = s->plan;
    size_t n_args = 0, ws = 0;
    for (int i = 0; i < p->n_steps; i++) {
        n_args += (size_t)p->steps[i].n_args + 1; /* + workspace slot */
        if (p->steps[i].workspace_bytes > ws) ws = p->steps[i].workspace_bytes;
    }
    s->workspace_bytes = (ws + 63) & ~(size_t)63;
    s->args_per_thread = n_args;
    s->arena_block = gr_malloc(p->arena_bytes + 64);
    s->buffers = gr_calloc((size_t)p->n_buffers + 1, sizeof *s->buffers);
    s->args = gr_calloc(n_args * (size_t)s->n_threads + 1, sizeof *s->args);
    if (s->workspace_bytes) {
        s->workspace_block = gr_malloc(s->workspace_bytes * (size_t)s->n_threads + 64);
        if (!s->workspace_block)
            return gr_fail(st, GR_ERR_NOMEM,
                           "out of memory for %d kernel workspaces of %zu bytes", s->n_threads,
                           s->workspace_bytes);
    }
    s->arg_start = gr_calloc((size_t)p->n_steps + 1, sizeof *s->arg_start);
    s->step_ms = gr_calloc((size_t)p->n_steps + 1, sizeof *s->step_ms);
    s->sync = gr_calloc((size_t)p->n_steps + 1, sizeof *s->sync);
    if (!s->arena_block || !s->buffers || !s->args || !s->arg_start || !s->step_ms || !s->sync)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory for a run-time arena of %zu bytes",
                       p->arena_bytes);
    s->arena = (char *)(((uintptr_t)s->arena_block + 63) & ~(uintptr_t)63);
    if (p->state_bytes) {
        s->state = gr_malloc(p->state_bytes);
        if (!s->state)
            return gr_fail(st, GR_ERR_NOMEM, "out of memory for %zu bytes of training state",
                           p->state_bytes);
        memcpy(s->state, p->state_init, p->state_bytes);
    }
    for (int i = 0; i < p->n_buffers; i++) /* inputs and outputs: bind_io, per run */
        if (p->buffers[i].kind != GR_BUF_INPUT && p->buffers[i].kind != GR_BUF_OUTPUT)
            s->buffers[i] = gr_plan_buffer_data(p, i, s->arena, s->state, NULL, NULL);
    int at = 0;
    char *ws_base = (char *)(((uintptr_t)s->workspace_block + 63) & ~(uintptr_t)63);
    for (int i = 0; i < p->n_steps; i++) {
        s->arg_start[i] = at;
        at += p->steps[i].n_args + 1;
        /* Each thread's copy of the step's arguments ends with its own
         * workspace (kernel contract in ir/gr_ir.h). */
        for (int t = 0; t < s->n_threads; t++) {
            size_t slot = (size_t)t * s->args_per_thread + (size_t)s->arg_start[i] +
                          (size_t)p->steps[i].n_args;
            s->args[slot] =
                p->steps[i].workspace_bytes ? ws_base + (size_t)t * s->workspace_bytes : NULL;
        }
    }
    return GR_OK;
}

gr_code gr_session_new(const gr_plan *plan, int n_threads, gr_session **out,
                       gr_status *st) {
    if (!out) return gr_fail(st, GR_ERR_BAD_ARG, "gr_session_new: out is NULL");
    *out = NULL;
    if (!plan) return gr_fail(st, GR_ERR_BAD_ARG, "gr_session_new: plan is NULL");
    GR_TRY(check_plan(plan, st));
    gr_session *s = gr_calloc(1, sizeof *s);
    if (!s) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    s->plan = plan;
    s->n_threads = n_threads > 0 ? n_threads : omp_get_max_threads();
    if (s->n_threads > MAX_THREADS) s->n_threads = MAX_THREADS;
    if (s->n_threads < 1) s->n_threads = 1;
    if (alloc_session(s, st) != GR_OK) {
        gr_session_free(s);
        return st ? st->code : GR_ERR_NOMEM;
    }
    *out = s;
    return GR_OK;
}

void gr_session_free(gr_session *s) {
    if (!s) return;
    gr_free(s->arena_block);
    gr_free(s->buffers);
    gr_free(s->state);
    gr_free(s->args);
    gr_free(s->workspace_block);
    gr_free(s->arg_start);
    gr_free(s->step_ms);
    gr_free(s->sync);
    gr_free(s);
}

int gr_session_threads(const gr_session *s) { return s ? s->n_threads : 0; }

void *gr_session_state(gr_session *s, int buffer) {
    if (!s || buffer < 0 || buffer >= s->plan->n_buffers ||
        s->plan->buffers[buffer].kind != GR_BUF_STATE)
        return NULL;
    return s->buffers[buffer];
}

void gr_session_reset_state(gr_session *s) {
    if (s && s->plan->state_bytes) memcpy(s->state, s->plan->state_init, s->plan->state_bytes);
}

void gr_session_profile(gr_session *s, int on) {
    if (s) s->profiling = on != 0;
}

const double *gr_session_step_ms(const gr_session *s, int64_t *n_runs) {
    if (n_runs) *n_runs = s ? s->n_profiled : 0;
    return s ? s->step_ms : NULL;
}

/* Caller's pointers into INPUT/OUTPUT buffers, then every argument array. */
static gr_code bind_io(gr_session *s, void *const *inputs, void *const *outputs,
                       gr_status *st) {
    const gr_plan *p = s->plan;
    if ((p->n_inputs && !inputs) || (p->n_outputs && !outputs))
        return gr_fail(st, GR_ERR_BAD_ARG, "gr_session_run: the plan has %d inputs and "
                       "%d outputs but got no %s array", p->n_inputs, p->n_outputs,
                       p->n_inputs && !inputs ? "input" : "output");
    for (int i = 0; i < p->n_buffers; i++) {
        const gr_buffer *b = &p->buffers[i];
        if (b->kind != GR_BUF_INPUT && b->kind != GR_BUF_OUTPUT) continue;
        void *ptr = b->kind == GR_BUF_INPUT ? inputs[b->index] : outputs[b->index];
        if (!ptr && b->nbytes)
            return gr_fail(st, GR_ERR_BAD_ARG, "gr_session_run: %s %d '%s' is NULL",
                           b->kind == GR_BUF_INPUT ? "input" : "output", b->index,
                           b->name ? b->name : "");
        s->buffers[i] = ptr;
    }
    for (int t = 0; t < s->n_threads; t++)
        for (int i = 0; i < p->n_steps; i++) {
            const gr_step *step = &p->steps[i];
            void **args = s->args + (size_t)t * s->args_per_thread + s->arg_start[i];
            for (int a = 0; a < step->n_args; a++) args[a] = s->buffers[step->args[a]];
        }
    return GR_OK;
}

/* Runs the chunks of step i this thread can claim; chunks are a quarter
 * of an even share, so a late thread finds work left or none. */
static void claim_tasks(const gr_step *step, step_sync *sync, void **args, int64_t nth) {
    const int64_t n = step->n_tasks;
    const int64_t chunk = n / (4 * nth) > 1 ? n / (4 * nth) : 1;
    for (;;) {
        int64_t begin = atomic_fetch_add_explicit(&sync->next, chunk, memory_order_relaxed);
        if (begin >= n) return;
        int64_t end = n - begin > chunk ? begin + chunk : n;
        step->fn(args, begin, end);
        atomic_fetch_add_explicit(&sync->done, end - begin, memory_order_release);
    }
}

/* Waits until every task of a step is finished (acquire: their writes are
 * visible). Spins briefly, then yields the core to whoever holds the rest. */
static void wait_step(step_sync *sync, int64_t n) {
    for (int spins = 0; atomic_load_explicit(&sync->done, memory_order_acquire) < n; spins++) {
        if (spins < 4096) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
}

/* The parallel region. One thread: each step's tasks in one call. Thread 0
 * takes the times when profiling. */
static void run_steps(gr_session *s) {
    const gr_plan *p = s->plan;
    void **args = s->args;
    const int *arg_start = s->arg_start;
    double *step_ms = s->profiling ? s->step_ms : NULL;
    step_sync *sync = s->sync;
    for (int i = 0; i < p->n_steps; i++) {
        atomic_init(&sync[i].next, 0);
        atomic_init(&sync[i].done, 0);
    }
#pragma omp parallel num_threads(s->n_threads)
    {
        const int64_t t = omp_get_thread_num(), nth = omp_get_num_threads();
        void **my_args = args + (size_t)t * s->args_per_thread;
        double last = step_ms && t == 0 ? omp_get_wtime() : 0.0;
        for (int i = 0; i < p->n_steps; i++) {
            const gr_step *step = &p->steps[i];
            if (nth == 1) {
                step->fn(my_args + arg_start[i], 0, step->n_tasks);
            } else {
                claim_tasks(step, &sync[i], my_args + arg_start[i], nth);
                wait_step(&sync[i], step->n_tasks);
            }
            if (step_ms && t == 0) {
                double now = omp_get_wtime();
                step_ms[i] += (now - last) * 1e3;
                last = now;
            }
        }
    }
}

gr_code gr_session_run(gr_session *s, void *const *inputs, void *const *outputs,
                       gr_status *st) {
    if (!s) return gr_fail(st, GR_ERR_BAD_ARG, "gr_session_run: session is NULL");
    GR_TRY(bind_io(s, inputs, outputs, st));
    run_steps(s);
    if (s->profiling) s->n_profiled++;
    return GR_OK;
}
