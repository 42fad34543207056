/* test_codegen_linalg.c: MatMul, Gemm, Conv and ConvTranspose kernels
 * against double-precision references written here from the ONNX
 * definitions (and ONNX spec examples). Every graph runs with 1 and 3 task
 * splits, which must agree bit for bit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ir/gr_ir.h"
#include "cg_run.h"

/* ------------------------------------------------------------ helpers */

static uint32_t rng_state = 12345;
static double rnd(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (double)(rng_state >> 8) / (double)(1u << 23) - 1.0;
}

static double *rnd_array(int64_t n) {
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = rnd();
    return v;
}

static int64_t numel(int rank, const int64_t *d) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    return n;
}

/* A buffer of dtype dt holding v[0..n). */
static void *to_dtype(gr_dtype dt, const double *v, int64_t n) {
    size_t es = gr_dtype_size(dt);
    char *p = malloc((size_t)(n > 0 ? n : 1) * es);
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case GR_DTYPE_F32: ((float *)p)[i] = (float)v[i]; break;
        case GR_DTYPE_F64: ((double *)p)[i] = v[i]; break;
        case GR_DTYPE_I32: ((int32_t *)p)[i] = (int32_t)v[i]; break;
        case GR_DTYPE_I64: ((int64_t *)p)[i] = (int64_t)v[i]; break;
        default: fail();
        }
    }
    return p;
}

typedef struct {
    gr_graph *g;
    int n_inputs;
    void *inputs[4];
    gr_value *ins[4];
} tgraph;

static void tg_init(tgraph *t) {
    memset(t, 0, sizeof *t);
    t->g = gr_graph_new("t");
}

/* Adds an operand (graph input, or constant if is_const) holding v
 * (rounded to dt; v is updated to the rounded values). */
static gr_value *tg_operand(tgraph *t, const char *name, gr_dtype dt, int rank,
                            const int64_t *dims, double *v, int is_const) {
    gr_shape s = gr_shape_make(rank, dims);
    int64_t n = numel(rank, dims);
    void *buf = to_dtype(dt, v, n);
    for (int64_t i = 0; i < n; i++) v[i] = gr_dtype_load_f64(dt, buf, i);
    gr_value *x;
    if (is_const) {
        x = gr_graph_add_data(t->g, GR_VALUE_CONST, name, dt, &s, buf);
        free(buf);
    } else {
        x = gr_graph_add_input(t->g, name, dt, &s);
        t->inputs[t->n_inputs++] = buf;
    }
    assert_non_null(x);
    return x;
}

/* Runs the graph (output 0 of node nd) with 1 and 3 splits; checks the
 * runs agree bitwise and match expect within rtol (+ atol). */
static void tg_check(tgraph *t, gr_node *nd, const double *expect, double rtol, double atol) {
    gr_status st = {0};
    gr_graph_add_output(t->g, nd->outputs[0]);
    if (gr_graph_infer_shapes(t->g, &st) != GR_OK) fail_msg("%s", st.msg);
    const gr_value *y = nd->outputs[0];
    int64_t n = gr_value_numel(y);
    size_t bytes = (size_t)(n > 0 ? n : 1) * gr_dtype_size(y->dtype);
    void *out1 = malloc(bytes), *out3 = malloc(bytes);
    memset(out1, 0xa5, bytes);
    memset(out3, 0x5a, bytes);
    void *o1[1] = {out1}, *o3[1] = {out3};
    if (cg_run_graph(t->g, t->inputs, o1, 1, &st) != GR_OK) fail_msg("%s", st.msg);
    if (cg_run_graph(t->g, t->inputs, o3, 3, &st) != GR_OK) fail_msg("%s", st.msg);
    assert_memory_equal(out1, out3, (size_t)n * gr_dtype_size(y->dtype));
    for (int64_t i = 0; i < n; i++) {
        double got = gr_dtype_load_f64(y->dtype, out1, i);
        if (fabs(got - expect[i]) > atol + rtol * fabs(expect[i]))
            fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, got, expect[i]);
    }
    free(out1);
    free(out3);
    for (int i = 0; i < t->n_inputs; i++) free(t->inputs[i]);
    gr_graph_free(t->g);
}

static double tol_for(gr_dtype dt, int64_t k) {
    return dt == GR_DTYPE_F64 ? 1e-12 : dt == GR_DTYPE_F32 ? 2e-6 * (1 + sqrt((double)k)) : 0;
}

/* f32 sums of k products of values in [-1,1]: rounding grows with k. */
static double atol_for(gr_dtype dt, int64_t k) {
    return dt == GR_DTYPE_F32 ? 1e-7 * (double)(k + 10) : dt == GR_DTYPE_F64 ? 1e-13 * (double)k : 0;
}

/* ------------------------------------------------------------ MatMul */

/* Broadcast matmul reference over shapes a, b (numpy rules). */
static void matmul_ref(int ra, const int64_t *ad, const double *a, int rb, const int64_t *bd,
                       const double *b, double *y) {
    int64_t K = ad[ra - 1], M = ra >= 2 ? ad[ra - 2] : 1, N = rb >= 2 ? bd[rb - 1] : 1;
    int na = ra > 2 ? ra - 2 : 0, nb = rb > 2 ? rb - 2 : 0, no = na > nb ? na : nb;
    int64_t od[8], batches = 1;
    for (int i = 0; i < no; i++) {
        int64_t da = i - (no - na) >= 0 ? ad[i - (no - na)] : 1;
        int64_t db = i - (no - nb) >= 0 ? bd[i - (no - nb)] : 1;
        od[i] = da == 1 ? db : da;
        batches *= od[i];
    }
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t rest = bi, aoff = 0, boff = 0, as = M * K, bs = K * N;
        for (int i = no - 1; i >= 0; i--) {
            int64_t idx = rest % od[i];
            rest /= od[i];
            int ai = i - (no - na), bj = i - (no - nb);
            if (ai >= 0) { aoff += (ad[ai] == 1 ? 0 : idx) * as; as *= ad[ai]; }
            if (bj >= 0) { boff += (bd[bj] == 1 ? 0 : idx) * bs; bs *= bd[bj]; }
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t kk = 0; kk < K; kk++)
                    s += a[aoff + i * K + kk] * b[boff + kk * N + j];
                y[bi * M * N + i * N + j] = s;
            }
    }
}

static void check_matmul(gr_dtype dt, int ra, const int64_t *ad, int rb, const int64_t *bd,
                         int b_const) {
    tgraph t;
    tg_init(&t);
    int64_t na = numel(ra, ad), nb = numel(rb, bd);
    double *a = rnd_array(na), *b = rnd_array(nb);
    if (!gr_dtype_is_float(dt))
        for (int64_t i = 0; i < (na > nb ? na : nb); i++) {
            if (i < na) a[i] = floor(a[i] * 100);
            if (i < nb) b[i] = floor(b[i] * 100);
        }
    gr_value *in[2] = {tg_operand(&t, "a", dt, ra, ad, a, 0),
                       tg_operand(&t, "b", dt, rb, bd, b, b_const)};
    gr_node *nd = gr_node_add(t.g, GR_OP_MATMUL, "mm", 2, in, 1, NULL);
    double *y = malloc(1 << 22);
    matmul_ref(ra, ad, a, rb, bd, b, y);
    tg_check(&t, nd, y, tol_for(dt, ad[ra - 1]), atol_for(dt, ad[ra - 1]));
    free(a);
    free(b);
    free(y);
}

static void test_matmul_2d_f32_edges(void **state) {
    (void)state;
    int64_t sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {8, 32, 16}, {9, 33, 17}, {17, 300, 45},
                          {64, 64, 64}, {130, 70, 600}, {7, 1, 40}, {1, 50, 1}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t ad[2] = {sizes[i][0], sizes[i][2]}, bd[2] = {sizes[i][2], sizes[i][1]};
        check_matmul(GR_DTYPE_F32, 2, ad, 2, bd, (int)(i & 1));
    }
}

static void test_matmul_large_f32(void **state) {
    (void)state;
    int64_t ad[2] = {300, 520}, bd[2] = {520, 1100};
    check_matmul(GR_DTYPE_F32, 2, ad, 2, bd, 0);
}

static void test_matmul_f64_i32_i64(void **state) {
    (void)state;
    int64_t ad[2] = {19, 37}, bd[2] = {37, 21};
    check_matmul(GR_DTYPE_F64, 2, ad, 2, bd, 0);
    check_matmul(GR_DTYPE_I32, 2, ad, 2, bd, 0);
    check_matmul(GR_DTYPE_I64, 2, ad, 2, bd, 1);
}

static void test_matmul_batch_broadcast(void **state) {
    (void)state;
    int64_t a3[3] = {4, 10, 12}, b2[2] = {12, 9};
    check_matmul(GR_DTYPE_F32, 3, a3, 2, b2, 1);         /* folds into M */
    int64_t a2[2] = {10, 12}, b3[3] = {3, 12, 9};
    check_matmul(GR_DTYPE_F32, 2, a2, 3, b3, 0);         /* A shared */
    int64_t a4[4] = {2, 1, 5, 6}, b4[4] = {1, 3, 6, 40};
    check_matmul(GR_DTYPE_F32, 4, a4, 4, b4, 0);         /* both broadcast */
    int64_t a3b[3] = {3, 5, 6}, b3b[3] = {3, 6, 7};
    check_matmul(GR_DTYPE_F64, 3, a3b, 3, b3b, 0);
}

static void test_matmul_1d_promotion(void **state) {
    (void)state;
    int64_t a1[1] = {20}, b2[2] = {20, 7}, a2[2] = {6, 20}, b1[1] = {20}, b3[3] = {2, 20, 5};
    check_matmul(GR_DTYPE_F32, 1, a1, 2, b2, 0);
    check_matmul(GR_DTYPE_F32, 2, a2, 1, b1, 0);
    check_matmul(GR_DTYPE_F32, 1, a1, 1, b1, 0);
    check_matmul(GR_DTYPE_F32, 1, a1, 3, b3, 0);
}

/* ONNX matmul_2d example shape with known values. */
static void test_matmul_hand_values(void **state) {
    (void)state;
    tgraph t;
    tg_init(&t);
    int64_t ad[2] = {2, 3}, bd[2] = {3, 2};
    double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12};
    gr_value *in[2] = {tg_operand(&t, "a", GR_DTYPE_F32, 2, ad, a, 0),
                       tg_operand(&t, "b", GR_DTYPE_F32, 2, bd, b, 0)};
    gr_node *nd = gr_node_add(t.g, GR_OP_MATMUL, "mm", 2, in, 1, NULL);
    double y[4] = {58, 64, 139, 154};
    tg_check(&t, nd, y, 0, 0);
}

/* ------------------------------------------------------------ Gemm */

static void check_gemm(gr_dtype dt, int64_t M, int64_t N, int64_t K, int ta, int tb,
                       double alpha, double beta, int c_rank, const int64_t *cd) {
    tgraph t;
    tg_init(&t);
    int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N};
    double *a = rnd_array(M * K), *b = rnd_array(K * N);
    int64_t nc = c_rank >= 0 ? numel(c_rank, cd) : 0;
    double *c = rnd_array(nc);
    gr_value *in[3] = {tg_operand(&t, "a", dt, 2, ad, a, 0), tg_operand(&t, "b", dt, 2, bd, b, 1),
                       c_rank >= 0 ? tg_operand(&t, "c", dt, c_rank, cd, c, 0) : NULL};
    gr_node *nd = gr_node_add(t.g, GR_OP_GEMM, "gemm", c_rank >= 0 ? 3 : 2, in, 1, NULL);
    gr_node_set_int(t.g, nd, "transA", ta);
    gr_node_set_int(t.g, nd, "transB", tb);
    gr_node_set_float(t.g, nd, "alpha", alpha);
    gr_node_set_float(t.g, nd, "beta", beta);
    double *y = malloc((size_t)(M * N) * sizeof *y);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t kk = 0; kk < K; kk++)
                s += a[ta ? kk * M + i : i * K + kk] * b[tb ? j * K + kk : kk * N + j];
            double cv = 0;
            if (c_rank >= 0) {
                int64_t c0 = c_rank == 2 ? cd[0] : 1, c1 = c_rank >= 1 ? cd[c_rank - 1] : 1;
                cv = c[(c0 == 1 ? 0 : i) * c1 + (c1 == 1 ? 0 : j)];
            }
            y[i * N + j] = alpha * s + beta * cv;
        }
    tg_check(&t, nd, y, tol_for(dt, K), atol_for(dt, K));
    free(a);
    free(b);
    free(c);
    free(y);
}

static void test_gemm_transposes_alpha_beta(void **state) {
    (void)state;
    int64_t cmn[2] = {13, 37};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(GR_DTYPE_F32, 13, 37, 29, ta, tb, 0.5, 2.0, 2, cmn);
            check_gemm(GR_DTYPE_F64, 13, 37, 29, ta, tb, 1.0, 1.0, 2, cmn);
        }
    check_gemm(GR_DTYPE_F32, 40, 600, 300, 0, 1, 1.0, 1.0, -1, NULL);
}

static void test_gemm_c_broadcast(void **state) {
    (void)state;
    int64_t c_n[1] = {37}, c_1[1] = {1}, c_m1[2] = {13, 1}, c_1n[2] = {1, 37}, c_11[2] = {1, 1};
    check_gemm(GR_DTYPE_F32, 13, 37, 29, 0, 0, 1.0, 1.0, 1, c_n);
    check_gemm(GR_DTYPE_F32, 13, 37, 29, 0, 0, 1.0, 0.25, 1, c_1);
    check_gemm(GR_DTYPE_F32, 13, 37, 29, 1, 0, 1.0, 1.0, 2, c_m1);
    check_gemm(GR_DTYPE_F32, 13, 37, 29, 0, 1, 1.0, 1.0, 2, c_1n);
    check_gemm(GR_DTYPE_F32, 13, 37, 29, 0, 0, 1.0, 1.0, 2, c_11);
    check_gemm(GR_DTYPE_F32, 13, 37, 29, 0, 0, 1.0, 1.0, 0, NULL);
    check_gemm(GR_DTYPE_F32, 1, 37, 29, 0, 1, 3.0, 1.0, 1, c_n);
}

/* CONV_TESTS_HERE */
#define CONV_TESTS

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_hand_values),
        cmocka_unit_test(test_matmul_2d_f32_edges),
        cmocka_unit_test(test_matmul_large_f32),
        cmocka_unit_test(test_matmul_f64_i32_i64),
        cmocka_unit_test(test_matmul_batch_broadcast),
        cmocka_unit_test(test_matmul_1d_promotion),
        cmocka_unit_test(test_gemm_transposes_alpha_beta),
        cmocka_unit_test(test_gemm_c_broadcast),
        CONV_TESTS
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
