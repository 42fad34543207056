/* gemm_bench.c: SGEMM GFLOP/s of graft's MatMul kernel vs OpenBLAS,
 * C[n,n] = A[n,n]·B[n,n], at 1 and 2 threads, for the sizes on the command
 * line (default 256 512 1024 2048). graft runs through the runtime
 * (gr_session: its OpenMP region and task split), OpenBLAS through
 * cblas_sgemm with openblas_set_num_threads. One thread: thread CPU time
 * (robust to a busy machine); more: wall time. Standalone (not in CMake);
 * bench/run.sh builds and runs it. */
#define _POSIX_C_SOURCE 199309L
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/gr_codegen.h"
#include "runtime/gr_runtime.h"

void openblas_set_num_threads(int);

static int n_threads = 1;

static double now(void) {
    struct timespec ts;
    clock_gettime(n_threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    gr_session *s;
} bench;

static void run_graft(void *ctx) {
    bench *x = ctx;
    void *ins[2] = {x->a, x->b}, *outs[1] = {x->c};
    gr_status st = {0};
    if (gr_session_run(x->s, ins, outs, &st) != GR_OK) {
        fprintf(stderr, "gemm_bench: %s\n", st.msg);
        exit(1);
    }
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
    bench x = {.n = n};
    if (gr_session_new(p, n_threads, &x.s, &st) != GR_OK) {
        fprintf(stderr, "%s\n", st.msg);
        return 1;
    }
    x.a = malloc(nn * 4);
    x.b = malloc(nn * 4);
    x.c = malloc(nn * 4);
    float *ref = malloc(nn * 4);
    for (size_t i = 0; i < nn; i++) {
        x.a[i] = (float)((int)(i * 7 % 13) - 6) / 7.0f;
        x.b[i] = (float)((int)(i * 5 % 11) - 5) / 5.0f;
    }
    int reps = n <= 512 ? 100 : n <= 1024 ? 30 : 12;
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
    double rel = fabs((double)ref[nn - 1] - c0) / (fabs(c0) + 1e-30);
    double flop = 2.0 * n * (double)n * n;
    printf("| %d | %d | %.1f | %.1f | %.2f | %.1g | %.1g |\n", n, n_threads, flop / tg * 1e-9,
           flop / tb * 1e-9, tb / tg, maxdiff, rel);
    free(x.a), free(x.b), free(x.c), free(ref);
    gr_session_free(x.s);
    gr_plan_free(p);
    gr_graph_free(g);
    return 0;
}

int main(int argc, char **argv) {
    static const int sizes[] = {256, 512, 1024, 2048};
    int rc = 0;
    printf("| n | threads | graft GFLOP/s | OpenBLAS GFLOP/s | graft / OpenBLAS "
           "| max abs diff graft-OpenBLAS | rel. error of C[n-1][n-1] vs double |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (n_threads = 1; n_threads <= 2; n_threads++) {
        openblas_set_num_threads(n_threads);
        if (argc < 2)
            for (int i = 0; i < 4; i++) rc |= bench_size(sizes[i]);
        for (int i = 1; i < argc; i++) rc |= bench_size(atoi(argv[i]));
    }
    return rc;
}
