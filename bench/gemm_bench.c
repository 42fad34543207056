/* gemm_bench.c: SGEMM GFLOP/s of graft's MatMul kernel vs OpenBLAS, one
 * thread, C[n,n] = A[n,n]·B[n,n] for the sizes on the command line
 * (default 1024 2048). Standalone (not in CMake); build:
 *   cc -O2 -std=c11 -I. bench/gemm_bench.c build/codegen/libgraft_codegen.a \
 *      build/ir/libgraft_ir.a -lLLVM-16 -L/usr/lib/x86_64-linux-gnu/openblas-openmp \
 *      -I/usr/include/x86_64-linux-gnu/openblas-openmp -lopenblas -lm -o gemm_bench */
#define _POSIX_C_SOURCE 199309L
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/gr_codegen.h"

void openblas_set_num_threads(int);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* robust to a busy machine */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs every step of p on one thread with inputs a, b and output c. */
static void run_plan(const gr_plan *p, char *arena, char *ws, void **args, float *a, float *b,
                     float *c) {
    void *ins[2] = {a, b}, *outs[1] = {c};
    for (int s = 0; s < p->n_steps; s++) {
        const gr_step *step = &p->steps[s];
        for (int i = 0; i < step->n_args; i++)
            args[i] = gr_plan_buffer_data(p, step->args[i], arena, p->state_init, ins, outs);
        args[step->n_args] = ws;
        step->fn(args, 0, step->n_tasks);
    }
}

/* Best of reps runs; graft and OpenBLAS alternate so that both see the
 * same background load. */
static void best_times(int reps, void (*f1)(void *), void (*f2)(void *), void *ctx, double *t1,
                       double *t2) {
    *t1 = *t2 = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        f1(ctx);
        double t = now() - t0;
        if (t < *t1) *t1 = t;
        t0 = now();
        f2(ctx);
        t = now() - t0;
        if (t < *t2) *t2 = t;
    }
}

typedef struct {
    int n;
    float *a, *b, *c;
    const gr_plan *p;
    char *arena, *ws;
    void **args;
} bench;

static void run_graft(void *ctx) {
    bench *x = ctx;
    run_plan(x->p, x->arena, x->ws, x->args, x->a, x->b, x->c);
}

static void run_blas(void *ctx) {
    bench *x = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, x->n, x->n, x->n, 1.0f, x->a, x->n,
                x->b, x->n, 0.0f, x->c, x->n);
}

static int bench_size(int n) {
    gr_status st = {0};
    gr_graph *g = gr_graph_new("bench");
    int64_t dims[2] = {n, n};
    gr_shape s = gr_shape_make(2, dims);
    gr_value *in[2] = {gr_graph_add_input(g, "a", GR_DTYPE_F32, &s),
                       gr_graph_add_input(g, "b", GR_DTYPE_F32, &s)};
    gr_node *mm = gr_node_add(g, GR_OP_MATMUL, "mm", 2, in, 1, NULL);
    gr_graph_add_output(g, mm->outputs[0]);
    gr_plan *p = NULL;
    gr_codegen_opts opts = {0};
    if (getenv("BENCH_IR")) opts.dump_ir = fopen(getenv("BENCH_IR"), "w");
    if (gr_graph_infer_shapes(g, &st) != GR_OK || gr_codegen_jit(g, &opts, &p, &st) != GR_OK) {
        fprintf(stderr, "%s\n", st.msg);
        return 1;
    }
    size_t nn = (size_t)n * (size_t)n;
    bench x = {.n = n, .p = p};
    x.a = malloc(nn * 4);
    x.b = malloc(nn * 4);
    x.c = malloc(nn * 4);
    float *ref = malloc(nn * 4);
    for (size_t i = 0; i < nn; i++) {
        x.a[i] = (float)((int)(i * 7 % 13) - 6) / 7.0f;
        x.b[i] = (float)((int)(i * 5 % 11) - 5) / 5.0f;
    }
    size_t ws = 64;
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].workspace_bytes > ws) ws = p->steps[i].workspace_bytes;
    x.ws = aligned_alloc(64, (ws + 63) / 64 * 64);
    x.arena = aligned_alloc(64, (p->arena_bytes + 63) / 64 * 64 + 64);
    x.args = calloc((size_t)p->n_buffers + 2, sizeof(void *));
    int reps = n <= 1024 ? 30 : 12;
    run_graft(&x);
    memcpy(ref, x.c, nn * 4);
    double tg, tb;
    best_times(reps, run_graft, run_blas, &x, &tg, &tb);
    double maxdiff = 0;
    for (size_t i = 0; i < nn; i++) {
        double d = fabs((double)ref[i] - (double)x.c[i]);
        if (d > maxdiff) maxdiff = d;
    }
    double c0 = 0; /* spot check C[n-1][n-1] in double */
    for (int kk = 0; kk < n; kk++)
        c0 += (double)x.a[nn - n + (size_t)kk] * x.b[(size_t)kk * n + n - 1];
    printf("C[n-1][n-1]: graft %.6g openblas %.6g double %.6g\n", ref[nn - 1], x.c[nn - 1], c0);
    double flop = 2.0 * n * (double)n * n;
    printf("n=%d graft %.1f GFLOP/s  openblas %.1f GFLOP/s  ratio %.2f  max|diff| %.2g\n", n,
           flop / tg * 1e-9, flop / tb * 1e-9, tb / tg, maxdiff);
    free(x.a), free(x.b), free(x.c), free(ref), free(x.ws), free(x.arena), free(x.args);
    gr_plan_free(p);
    gr_graph_free(g);
    return 0;
}

int main(int argc, char **argv) {
    openblas_set_num_threads(1);
    int rc = 0;
    if (argc < 2) {
        rc |= bench_size(1024);
        rc |= bench_size(2048);
    }
    for (int i = 1; i < argc; i++) rc |= bench_size(atoi(argv[i]));
    return rc;
}
