/* conv_bench.c: GFLOP/s of graft's Conv and ConvTranspose kernels on one
 * thread (thread CPU time, best of reps), on the shapes a CNN training step
 * runs: ConvTranspose here is the input gradient of the Conv listed next to
 * it (same W, strides, pads, group; output_padding where needed). FLOPs are
 * the forward conv's 2*N*M*(C/group)*taps*out_plane. "jit ms" is the wall
 * time of gr_codegen_jit for the one-node graph (O3 + machine code).
 * Standalone (not in CMake); build after a graft build in BUILD:
 *   cc -O2 -std=c11 -I. bench/conv_bench.c BUILD/codegen/libgraft_codegen.a \
 *      BUILD/runtime/libgraft_runtime.a BUILD/ir/libgraft_ir.a \
 *      -L/usr/lib/llvm-16/lib -lLLVM-16 -fopenmp -lm -o conv_bench
 * Usage: conv_bench [REPS [SUBSTRING]] (only the shapes whose name has
 * SUBSTRING, e.g. "densenet"); BENCH_IR=FILE writes the optimised IR of
 * the last shape run to FILE. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/gr_codegen.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

/* A 2-D forward conv X:[N,C,H,W] -> Y:[N,M,OH,OW], kernel k x k;
 * fwd_only: time the Conv alone (the layers of the light models). */
typedef struct {
    const char *name;
    int64_t N, C, M, H, W, k, stride, pad, group;
    int fwd_only;
} conv_shape;

static int64_t out_extent(const conv_shape *s, int64_t in) {
    return (in + 2 * s->pad - s->k) / s->stride + 1;
}

/* Runs every step of p on one thread; inputs x, w; output y. */
static void run_plan(const gr_plan *p, char *arena, char *ws, void **args, void **ins, void *y) {
    for (int s = 0; s < p->n_steps; s++) {
        const gr_step *step = &p->steps[s];
        for (int i = 0; i < step->n_args; i++)
            args[i] = gr_plan_buffer_data(p, step->args[i], arena, p->state_init, ins, &y);
        args[step->n_args] = ws;
        step->fn(args, 0, step->n_tasks);
    }
}

static float *filled(int64_t n) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)((int)(i * 7 % 13) - 6) / 7.0f;
    return v;
}

/* Times Conv (transpose 0) or its input gradient ConvTranspose. */
static int bench_one(const conv_shape *s, int transpose, int reps) {
    gr_status st = {0};
    gr_graph *g = gr_graph_new("bench");
    int64_t OH = out_extent(s, s->H), OW = out_extent(s, s->W);
    int64_t xd[4] = {s->N, transpose ? s->M : s->C, transpose ? OH : s->H, transpose ? OW : s->W};
    int64_t wd[4] = {s->M, s->C / s->group, s->k, s->k};
    gr_shape xs = gr_shape_make(4, xd), wsh = gr_shape_make(4, wd);
    gr_value *in[2] = {gr_graph_add_input(g, "x", GR_DTYPE_F32, &xs),
                       gr_graph_add_input(g, "w", GR_DTYPE_F32, &wsh)};
    gr_node *nd = gr_node_add(g, transpose ? GR_OP_CONV_TRANSPOSE : GR_OP_CONV, "c", 2, in, 1, NULL);
    int64_t str[2] = {s->stride, s->stride}, pads[4] = {s->pad, s->pad, s->pad, s->pad};
    gr_node_set_ints(g, nd, "strides", 2, str);
    gr_node_set_ints(g, nd, "pads", 4, pads);
    gr_node_set_int(g, nd, "group", s->group);
    if (transpose) { /* output_padding recovers H, W lost to the stride */
        int64_t op[2] = {(s->H + 2 * s->pad - s->k) % s->stride,
                         (s->W + 2 * s->pad - s->k) % s->stride};
        gr_node_set_ints(g, nd, "output_padding", 2, op);
    }
    gr_graph_add_output(g, nd->outputs[0]);
    gr_plan *p = NULL;
    gr_codegen_opts opts = {0};
    if (getenv("BENCH_IR")) opts.dump_ir = fopen(getenv("BENCH_IR"), "w"); /* optimised IR */
    double jit0 = clock_s(CLOCK_MONOTONIC);
    gr_code rc = gr_graph_infer_shapes(g, &st);
    if (rc == GR_OK) rc = gr_codegen_jit(g, &opts, &p, &st);
    if (opts.dump_ir) fclose(opts.dump_ir);
    if (rc != GR_OK) {
        fprintf(stderr, "%s: %s\n", s->name, st.msg);
        gr_graph_free(g);
        return 1;
    }
    double jit = clock_s(CLOCK_MONOTONIC) - jit0;
    int64_t nx = xd[0] * xd[1] * xd[2] * xd[3], nw = wd[0] * wd[1] * wd[2] * wd[3];
    int64_t ny = gr_value_numel(nd->outputs[0]);
    float *x = filled(nx), *w = filled(nw), *y = malloc((size_t)ny * sizeof *y);
    void *ins[2] = {x, w};
    size_t wsb = 64;
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].workspace_bytes > wsb) wsb = p->steps[i].workspace_bytes;
    char *ws = aligned_alloc(64, (wsb + 63) / 64 * 64);
    char *arena = aligned_alloc(64, (p->arena_bytes + 63) / 64 * 64 + 64);
    void **args = calloc((size_t)p->n_buffers + 2, sizeof(void *));
    run_plan(p, arena, ws, args, ins, y);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        run_plan(p, arena, ws, args, ins, y);
        double t = now() - t0;
        if (t < best) best = t;
    }
    double flop = 2.0 * (double)(s->N * s->M * (s->C / s->group) * s->k * s->k * OH * OW);
    printf("| %s | %s | %.2f | %.1f | %.0f |\n", s->name,
           transpose ? "ConvTranspose (dX)" : "Conv", best * 1e3, flop / best * 1e-9, jit * 1e3);
    free(x), free(w), free(y), free(ws), free(arena), free(args);
    gr_plan_free(p);
    gr_graph_free(g);
    return 0;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    const char *only = argc > 2 ? argv[2] : NULL; /* shapes whose name has it */
    static const conv_shape shapes[] = {
        {"3x3 s1 64->64 16x16 N32", 32, 64, 64, 16, 16, 3, 1, 1, 1},
        {"3x3 s2 64->128 32x32 N32", 32, 64, 128, 32, 32, 3, 2, 1, 1},
        {"dw 3x3 s1 64 16x16 N32", 32, 64, 64, 16, 16, 3, 1, 1, 64},
        {"dw 3x3 s2 64 32x32 N32", 32, 64, 64, 32, 32, 3, 2, 1, 64},
        {"1x1 s1 64->256 16x16 N32", 32, 64, 256, 16, 16, 1, 1, 0, 1},
        {"3x3 s1 64->64 56x56 N1", 1, 64, 64, 56, 56, 3, 1, 1, 1},
        {"3x3 s1 512->512 7x7 N1", 1, 512, 512, 7, 7, 3, 1, 1, 1},
        /* layers of the light models (batch 1) */
        {"densenet 3x3 s1 128->32 56x56", 1, 128, 32, 56, 56, 3, 1, 1, 1, 1},
        {"densenet 3x3 s1 128->32 28x28", 1, 128, 32, 28, 28, 3, 1, 1, 1, 1},
        {"densenet 3x3 s1 128->32 14x14", 1, 128, 32, 14, 14, 3, 1, 1, 1, 1},
        {"densenet 3x3 s1 128->32 7x7", 1, 128, 32, 7, 7, 3, 1, 1, 1, 1},
        {"vgg 3x3 s1 3->64 224x224", 1, 3, 64, 224, 224, 3, 1, 1, 1, 1},
        {"vgg 3x3 s1 64->64 224x224", 1, 64, 64, 224, 224, 3, 1, 1, 1, 1},
        {"vgg 3x3 s1 256->256 56x56", 1, 256, 256, 56, 56, 3, 1, 1, 1, 1},
        {"vgg 3x3 s1 512->512 14x14", 1, 512, 512, 14, 14, 3, 1, 1, 1, 1},
        {"resnet 7x7 s2 3->64 224x224", 1, 3, 64, 224, 224, 7, 2, 3, 1, 1},
        {"resnet 1x1 s2 256->512 56x56", 1, 256, 512, 56, 56, 1, 2, 0, 1, 1},
        {"resnet 3x3 s1 128->128 28x28", 1, 128, 128, 28, 28, 3, 1, 1, 1, 1},
        {"alexnet 11x11 s4 3->96 224x224", 1, 3, 96, 224, 224, 11, 4, 0, 1, 1},
        {"alexnet 5x5 s1 48->256 27x27 g2", 1, 96, 256, 27, 27, 5, 1, 2, 2, 1},
        {"zfnet 7x7 s2 3->96 224x224", 1, 3, 96, 224, 224, 7, 2, 1, 1, 1},
        {"inception 5x5 s1 16->32 28x28", 1, 16, 32, 28, 28, 5, 1, 2, 1, 1},
    };
    int rc = 0;
    printf("| shape (forward conv) | kernel | ms | GFLOP/s | jit ms |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (only && !strstr(shapes[i].name, only)) continue;
        rc |= bench_one(&shapes[i], 0, reps);
        if (!shapes[i].fwd_only) rc |= bench_one(&shapes[i], 1, reps);
    }
    return rc;
}
