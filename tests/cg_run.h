/* cg_run.h: test helper: compiles a graph with the JIT and runs its steps
 * sequentially on one thread (no runtime needed), for codegen tests.
 * inputs/outputs are in the graph's order. Header-only. */
#ifndef GRAFT_TESTS_CG_RUN_H
#define GRAFT_TESTS_CG_RUN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/gr_codegen.h"

/* The element offset, in an operand of rank ro and dims od that numpy
 * broadcasting stretches to the output's rank ry and dims yd, of the
 * output's flat index i (a reference for the kernels' own indexing). */
static inline int64_t cg_bcast_offset(int ry, const int64_t *yd, int ro, const int64_t *od,
                                      int64_t i) {
    int64_t off = 0, stride = 1;
    for (int d = ry - 1; d >= 0; d--) {
        int64_t c = i % yd[d];
        i /= yd[d];
        int e = d - (ry - ro);
        if (e < 0) continue;
        if (od[e] != 1) off += c * stride;
        stride *= od[e];
    }
    return off;
}

/* Runs every step of p with tasks split into n_splits contiguous pieces
 * (to exercise the task ranges as several threads would), in an arena
 * filled with NaN bytes (a read of a value never written shows). */
static inline void cg_run_plan(const gr_plan *p, void *const *inputs, void *const *outputs,
                               int n_splits) {
    char *arena = aligned_alloc(64, (p->arena_bytes + 63) / 64 * 64 + 64);
    if (arena) memset(arena, 0xff, (p->arena_bytes + 63) / 64 * 64 + 64);
    void **args = calloc((size_t)p->n_buffers + 2, sizeof(void *));
    size_t ws_bytes = 64;
    for (int s = 0; s < p->n_steps; s++)
        if (p->steps[s].workspace_bytes > ws_bytes) ws_bytes = p->steps[s].workspace_bytes;
    char *ws = aligned_alloc(64, (ws_bytes + 63) / 64 * 64);
    for (int s = 0; s < p->n_steps && arena && args && ws; s++) {
        const gr_step *step = &p->steps[s];
        for (int a = 0; a < step->n_args; a++)
            args[a] = gr_plan_buffer_data(p, step->args[a], arena, p->state_init, inputs, outputs);
        args[step->n_args] = step->workspace_bytes ? ws : NULL;
        int splits = n_splits < 1 ? 1 : n_splits;
        for (int t = 0; t < splits; t++) {
            int64_t begin = step->n_tasks * t / splits, end = step->n_tasks * (t + 1) / splits;
            if (begin < end) step->fn(args, begin, end);
        }
    }
    free(arena);
    free(args);
    free(ws);
}

/* Compiles g and runs it as cg_run_plan does. */
static inline gr_code cg_run_graph(const gr_graph *g, void *const *inputs, void *const *outputs,
                                   int n_splits, gr_status *st) {
    gr_plan *p = NULL;
    gr_codegen_opts opts = {0};
    gr_code rc = gr_codegen_jit(g, &opts, &p, st);
    if (rc != GR_OK) return rc;
    cg_run_plan(p, inputs, outputs, n_splits);
    gr_plan_free(p);
    return GR_OK;
}

#endif
