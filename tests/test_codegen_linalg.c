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

#include "codegen/gr_codegen.h"
#include "ir/gr_ir.h"
#include "passes/gr_passes.h"
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
    if (!t->g->n_outputs) gr_graph_add_output(t->g, nd->outputs[0]);
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
                          {64, 64, 64}, {130, 70, 600}, {7, 1, 40}, {1, 50, 1}, {4, 7, 0}};
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
    check_gemm(GR_DTYPE_F32, 13, 37, 0, 0, 0, 1.0, 0.5, 1, c_n); /* K = 0: beta * C */
}

/* ------------------------------------------------------------ pre-packed B */

/* Compiles g and checks whether every step's GEMM read B pre-packed: a
 * kernel packing B needs (nc + mr) * kc elements of workspace (nc >= NR >= 8,
 * mr >= 6), one reading B pre-packed only the mr x kc sliver of A (mr <= 8);
 * kc: K split evenly into blocks of at most 384, as gemm.c blocks it. */
static void assert_prepacked(const gr_graph *g, int64_t K, gr_dtype dt, int expect) {
    gr_status st = {0};
    gr_plan *p = NULL;
    gr_codegen_opts opts = {0};
    if (gr_codegen_jit(g, &opts, &p, &st) != GR_OK) fail_msg("%s", st.msg);
    int64_t n_kb = (K + 383) / 384, kc = (K + n_kb - 1) / n_kb;
    size_t sliver = ((size_t)(8 * kc) * gr_dtype_size(dt) + 63) / 64 * 64;
    for (int s = 0; s < p->n_steps; s++)
        if ((p->steps[s].workspace_bytes <= sliver) != expect)
            fail_msg("step %s: workspace %zu bytes, B %s pre-packed", p->steps[s].name,
                     p->steps[s].workspace_bytes, expect ? "not" : "");
    gr_plan_free(p);
}

/* Runs one Gemm (transB tb, alpha 1, no C; gemm 0: MatMul) of A[ad] (an
 * input) and B[bd] (a constant if b_const) with 1 and 3 task splits (which
 * must agree bit for bit); returns the output (malloc'd). */
static void *run_linalg(int gemm, int tb, int ra, const int64_t *ad, const double *a, int rb,
                        const int64_t *bd, const double *b, int b_const, int expect_prepacked) {
    tgraph t;
    tg_init(&t);
    double *ac = malloc((size_t)numel(ra, ad) * sizeof *ac), *bc = malloc((size_t)numel(rb, bd) * sizeof *bc);
    memcpy(ac, a, (size_t)numel(ra, ad) * sizeof *ac);
    memcpy(bc, b, (size_t)numel(rb, bd) * sizeof *bc);
    gr_value *in[2] = {tg_operand(&t, "a", GR_DTYPE_F32, ra, ad, ac, 0),
                       tg_operand(&t, "b", GR_DTYPE_F32, rb, bd, bc, b_const)};
    gr_node *nd = gr_node_add(t.g, gemm ? GR_OP_GEMM : GR_OP_MATMUL, "mm", 2, in, 1, NULL);
    if (gemm) gr_node_set_int(t.g, nd, "transB", tb);
    gr_graph_add_output(t.g, nd->outputs[0]);
    gr_status st = {0};
    if (gr_graph_infer_shapes(t.g, &st) != GR_OK) fail_msg("%s", st.msg);
    if (b_const) assert_prepacked(t.g, ad[ra - 1], GR_DTYPE_F32, expect_prepacked);
    size_t bytes = (size_t)gr_value_numel(nd->outputs[0]) * sizeof(float);
    void *out1 = malloc(bytes), *out3 = malloc(bytes);
    void *o1[1] = {out1}, *o3[1] = {out3};
    if (cg_run_graph(t.g, t.inputs, o1, 1, &st) != GR_OK) fail_msg("%s", st.msg);
    if (cg_run_graph(t.g, t.inputs, o3, 3, &st) != GR_OK) fail_msg("%s", st.msg);
    assert_memory_equal(out1, out3, bytes);
    for (int i = 0; i < t.n_inputs; i++) free(t.inputs[i]);
    gr_graph_free(t.g);
    free(ac);
    free(bc);
    free(out3);
    return out1;
}

/* A[ad] x B[bd] (Gemm with transB tb if gemm; B[bd] is then [N,K] for tb 1)
 * with a constant B: pre-packed, matches the double reference, and is bit
 * for bit the result of the same product with B an input (packed per run). */
static void check_prepacked(int gemm, int tb, int ra, const int64_t *ad, int rb,
                            const int64_t *bd) {
    int64_t na = numel(ra, ad), nb = numel(rb, bd), K = ad[ra - 1];
    double *a = rnd_array(na), *b = rnd_array(nb), *bt = malloc((size_t)nb * sizeof *bt);
    for (int64_t i = 0; i < na; i++) a[i] = (float)a[i];
    for (int64_t i = 0; i < nb; i++) b[i] = (float)b[i];
    int64_t bnd[2] = {K, nb / K};
    for (int64_t i = 0; i < nb; i++) /* B as [K, N] for the reference */
        bt[i] = tb ? b[(i % bnd[1]) * K + i / bnd[1]] : b[i];
    int64_t yd[GR_MAX_RANK];
    for (int i = 0; i < ra - 1; i++) yd[i] = ad[i];
    yd[ra - 1] = tb ? bd[0] : rb >= 2 ? bd[rb - 1] : 1; /* 1-D B: [..., M] */
    int64_t ny = numel(ra, yd);
    double *y = malloc((size_t)ny * sizeof *y);
    matmul_ref(ra, ad, a, tb ? 2 : rb, tb ? bnd : bd, bt, y);
    float *got = run_linalg(gemm, tb, ra, ad, a, rb, bd, b, 1, 1);
    float *packed_per_run = run_linalg(gemm, tb, ra, ad, a, rb, bd, b, 0, 0);
    assert_memory_equal(got, packed_per_run, (size_t)ny * sizeof(float));
    double rtol = tol_for(GR_DTYPE_F32, K), atol = atol_for(GR_DTYPE_F32, K);
    for (int64_t i = 0; i < ny; i++)
        if (fabs(got[i] - y[i]) > atol + rtol * fabs(y[i]))
            fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, got[i], y[i]);
    free(a);
    free(b);
    free(bt);
    free(y);
    free(got);
    free(packed_per_run);
}

static void test_gemm_prepacked_b(void **state) {
    (void)state;
    int64_t ms[3] = {1, 3, 37}, nk[3][2] = {{100, 800}, {48, 29}, {37, 1000}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t ad[2] = {ms[i], nk[j][1]};
                int64_t bd[2] = {tb ? nk[j][0] : nk[j][1], tb ? nk[j][1] : nk[j][0]};
                check_prepacked(1, tb, 2, ad, 2, bd);
            }
}

static void test_matmul_prepacked_b(void **state) {
    (void)state;
    int64_t a2[2] = {1, 400}, b2[2] = {400, 4099};     /* M = 1, N % NR != 0 */
    check_prepacked(0, 0, 2, a2, 2, b2);
    int64_t a3[3] = {2, 37, 500}, b3[2] = {500, 70};  /* batches fold into M */
    check_prepacked(0, 0, 3, a3, 2, b3);
    int64_t a4[3] = {3, 5, 450}, b4[3] = {3, 450, 40}; /* one packed B per batch */
    check_prepacked(0, 0, 3, a4, 3, b4);
    int64_t a5[2] = {4, 20}, b5[1] = {20};             /* 1-D B: N = 1 */
    check_prepacked(0, 0, 2, a5, 1, b5);
}

/* A constant read by two nodes keeps its layout: each kernel packs it. */
static void test_shared_const_b_not_prepacked(void **state) {
    (void)state;
    tgraph t;
    tg_init(&t);
    int64_t ad[2] = {5, 40}, wd[2] = {40, 40};
    double *a = rnd_array(5 * 40), *w = rnd_array(40 * 40), *y1 = malloc(200 * sizeof *y1);
    double *y2 = malloc(200 * sizeof *y2);
    gr_value *in[2] = {tg_operand(&t, "a", GR_DTYPE_F32, 2, ad, a, 0),
                       tg_operand(&t, "w", GR_DTYPE_F32, 2, wd, w, 1)};
    gr_node *n1 = gr_node_add(t.g, GR_OP_MATMUL, "mm1", 2, in, 1, NULL);
    gr_value *in2[2] = {n1->outputs[0], in[1]};
    gr_node *n2 = gr_node_add(t.g, GR_OP_MATMUL, "mm2", 2, in2, 1, NULL);
    gr_graph_add_output(t.g, n2->outputs[0]);
    gr_status st = {0};
    if (gr_graph_infer_shapes(t.g, &st) != GR_OK) fail_msg("%s", st.msg);
    assert_prepacked(t.g, 40, GR_DTYPE_F32, 0);
    matmul_ref(2, ad, a, 2, wd, w, y1);
    for (int i = 0; i < 200; i++) y1[i] = (float)y1[i];
    matmul_ref(2, ad, y1, 2, wd, w, y2);
    tg_check(&t, n2, y2, 2 * tol_for(GR_DTYPE_F32, 40), 4 * atol_for(GR_DTYPE_F32, 40));
    free(a);
    free(w);
    free(y1);
    free(y2);
}

/* ------------------------------------------------------------ Conv */

typedef struct {
    gr_dtype dt;
    int ns;                    /* spatial dims */
    int64_t N, C, M, G;
    int64_t in[3], ker[3], str[3], dil[3], pads[6], out_pad[3];
    const char *auto_pad;      /* NULL: pads */
    int bias, w_const, transpose;
    int64_t out_shape[3];      /* ConvTranspose output_shape if [0] > 0 */
} conv_case;

/* Spatial output extents and leading pads, from the ONNX definitions. */
static void conv_dims(const conv_case *c, int64_t *out, int64_t *pb) {
    for (int i = 0; i < c->ns; i++) {
        int64_t s = c->str[i], dk = (c->ker[i] - 1) * c->dil[i] + 1, in = c->in[i];
        int same = c->auto_pad && !strncmp(c->auto_pad, "SAME", 4);
        int upper = c->auto_pad && !strcmp(c->auto_pad, "SAME_UPPER");
        int valid = c->auto_pad && !strcmp(c->auto_pad, "VALID");
        if (!c->transpose) {
            out[i] = same ? (in + s - 1) / s : valid ? (in - dk) / s + 1
                                                     : (in + c->pads[i] + c->pads[i + c->ns] - dk) / s + 1;
            int64_t total = (out[i] - 1) * s + dk - in;
            if (total < 0) total = 0;
            pb[i] = same ? (upper ? total / 2 : total - total / 2) : valid ? 0 : c->pads[i];
        } else {
            if (c->out_shape[0] > 0) out[i] = c->out_shape[i];
            else if (same) out[i] = in * s;
            else out[i] = s * (in - 1) + c->out_pad[i] + dk - c->pads[i] - c->pads[i + c->ns];
            int64_t total = s * (in - 1) + c->out_pad[i] + dk - out[i];
            int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2); /* floor */
            pb[i] = (same || c->out_shape[0] > 0) ? (upper ? half : total - half) : c->pads[i];
        }
    }
}

static int64_t idx3(int ns, const int64_t *ext, const int64_t *i) {
    int64_t r = 0;
    for (int d = 0; d < ns; d++) r = r * ext[d] + i[d];
    return r;
}

/* Next multi-index in [0, ext) (row-major); 0 at the end. */
static int next_index(int ns, const int64_t *ext, int64_t *i) {
    for (int d = ns - 1; d >= 0; d--) {
        if (++i[d] < ext[d]) return 1;
        i[d] = 0;
    }
    return 0;
}

static void conv_ref(const conv_case *c, const int64_t *out, const int64_t *pb, const double *x,
                     const double *w, const double *b, double *y) {
    int64_t Cg = c->C / c->G, Mg = c->M / c->G, ip = numel(c->ns, c->in),
            op = numel(c->ns, out), kp = numel(c->ns, c->ker);
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t m = 0; m < c->M; m++) {
            int64_t o[3] = {0, 0, 0};
            do {
                double s = c->bias ? b[m] : 0;
                for (int64_t ci = 0; ci < Cg; ci++) {
                    int64_t t[3] = {0, 0, 0};
                    do {
                        int64_t ix[3], ok = 1;
                        for (int d = 0; d < c->ns; d++) {
                            ix[d] = o[d] * c->str[d] - pb[d] + t[d] * c->dil[d];
                            ok &= ix[d] >= 0 && ix[d] < c->in[d];
                        }
                        int64_t xc = n * c->C + (m / Mg) * Cg + ci;
                        if (ok)
                            s += x[xc * ip + idx3(c->ns, c->in, ix)] *
                                 w[(m * Cg + ci) * kp + idx3(c->ns, c->ker, t)];
                    } while (next_index(c->ns, c->ker, t));
                }
                y[(n * c->M + m) * op + idx3(c->ns, out, o)] = s;
            } while (next_index(c->ns, out, o));
        }
}

/* y[o = i*s - p + t*dil] += x[i] * w[ci, m, t] */
static void conv_transpose_ref(const conv_case *c, const int64_t *out, const int64_t *pb,
                               const double *x, const double *w, const double *b, double *y) {
    int64_t Cg = c->C / c->G, Mg = c->M / c->G, ip = numel(c->ns, c->in),
            op = numel(c->ns, out), kp = numel(c->ns, c->ker);
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t m = 0; m < c->M; m++) {
            double *yp = y + (n * c->M + m) * op;
            for (int64_t i = 0; i < op; i++) yp[i] = c->bias ? b[m] : 0;
            for (int64_t ci = 0; ci < Cg; ci++) {
                int64_t cin = (m / Mg) * Cg + ci;
                int64_t i[3] = {0, 0, 0};
                do {
                    int64_t t[3] = {0, 0, 0};
                    do {
                        int64_t oi[3], ok = 1;
                        for (int d = 0; d < c->ns; d++) {
                            oi[d] = i[d] * c->str[d] - pb[d] + t[d] * c->dil[d];
                            ok &= oi[d] >= 0 && oi[d] < out[d];
                        }
                        if (ok)
                            yp[idx3(c->ns, out, oi)] +=
                                x[(n * c->C + cin) * ip + idx3(c->ns, c->in, i)] *
                                w[(cin * Mg + m % Mg) * kp + idx3(c->ns, c->ker, t)];
                    } while (next_index(c->ns, c->ker, t));
                } while (next_index(c->ns, c->in, i));
            }
        }
}

static void check_conv(const conv_case *cc) {
    conv_case cd = *cc, *c = &cd;
    if (c->dt == GR_DTYPE_UNDEFINED) c->dt = GR_DTYPE_F32;
    if (!c->N) c->N = 1;
    if (!c->G) c->G = 1;
    for (int i = 0; i < 3; i++) {
        if (!c->str[i]) c->str[i] = 1;
        if (!c->dil[i]) c->dil[i] = 1;
    }
    tgraph t;
    tg_init(&t);
    int64_t out[3], pb[3];
    conv_dims(c, out, pb);
    int64_t xd[5] = {c->N, c->C}, wd[5] = {c->transpose ? c->C : c->M,
                                           c->transpose ? c->M / c->G : c->C / c->G};
    for (int i = 0; i < c->ns; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->ker[i];
    }
    double *x = rnd_array(numel(2 + c->ns, xd)), *w = rnd_array(numel(2 + c->ns, wd));
    double *b = rnd_array(c->M);
    int64_t bd[1] = {c->M};
    gr_value *in[3] = {tg_operand(&t, "x", c->dt, 2 + c->ns, xd, x, 0),
                       tg_operand(&t, "w", c->dt, 2 + c->ns, wd, w, c->w_const),
                       c->bias ? tg_operand(&t, "b", c->dt, 1, bd, b, 1) : NULL};
    gr_node *nd = gr_node_add(t.g, c->transpose ? GR_OP_CONV_TRANSPOSE : GR_OP_CONV, "conv",
                              c->bias ? 3 : 2, in, 1, NULL);
    gr_node_set_ints(t.g, nd, "strides", c->ns, c->str);
    gr_node_set_ints(t.g, nd, "dilations", c->ns, c->dil);
    gr_node_set_int(t.g, nd, "group", c->G);
    if (c->auto_pad) gr_node_set_string(t.g, nd, "auto_pad", c->auto_pad);
    else gr_node_set_ints(t.g, nd, "pads", 2 * c->ns, c->pads);
    if (c->transpose && c->out_shape[0] > 0) gr_node_set_ints(t.g, nd, "output_shape", c->ns, c->out_shape);
    if (c->transpose) gr_node_set_ints(t.g, nd, "output_padding", c->ns, c->out_pad);
    int64_t yd[5] = {c->N, c->M};
    for (int i = 0; i < c->ns; i++) yd[2 + i] = out[i];
    double *y = malloc((size_t)numel(2 + c->ns, yd) * sizeof *y);
    (c->transpose ? conv_transpose_ref : conv_ref)(c, out, pb, x, w, b, y);
    int64_t kk = c->C / c->G * numel(c->ns, c->ker);
    tg_check(&t, nd, y, tol_for(c->dt, kk), atol_for(c->dt, kk));
    free(x);
    free(w);
    free(b);
    free(y);
}

/* 2-D case; unset fields default to f32, N = 1, group 1, stride 1, dilation 1. */
#define CASE2D(...) ((conv_case){.ns = 2, __VA_ARGS__})

static void test_conv2d_gemm_path(void **state) {
    (void)state;
    conv_case cases[] = {
        CASE2D(.C = 3, .M = 16, .in = {9, 11}, .ker = {3, 3}, .pads = {1, 1, 1, 1}, .bias = 1),
        CASE2D(.N = 2, .C = 5, .M = 20, .in = {7, 8}, .ker = {3, 2}, .str = {2, 1},
               .pads = {0, 1, 2, 0}, .w_const = 1),
        CASE2D(.C = 4, .M = 9, .in = {12, 10}, .ker = {3, 3}, .dil = {2, 3}, .bias = 1),
        CASE2D(.C = 32, .M = 40, .in = {14, 14}, .ker = {1, 1}, .bias = 1, .w_const = 1),
        CASE2D(.C = 16, .M = 24, .G = 2, .in = {10, 10}, .ker = {3, 3}, .str = {2, 2},
               .pads = {1, 1, 1, 1}, .bias = 1),
        CASE2D(.C = 8, .M = 16, .in = {9, 9}, .ker = {2, 3}, .str = {2, 3}, .auto_pad = "SAME_UPPER"),
        CASE2D(.C = 8, .M = 16, .in = {9, 9}, .ker = {2, 3}, .str = {2, 3}, .auto_pad = "SAME_LOWER"),
        CASE2D(.C = 8, .M = 16, .in = {9, 10}, .ker = {4, 3}, .str = {2, 3}, .auto_pad = "VALID"),
        CASE2D(.dt = GR_DTYPE_F64, .C = 6, .M = 10, .in = {8, 7}, .ker = {3, 3},
               .pads = {1, 0, 1, 2}, .bias = 1),
        CASE2D(.C = 64, .M = 64, .in = {28, 28}, .ker = {3, 3}, .pads = {1, 1, 1, 1}, .bias = 1,
               .w_const = 1),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv(&cases[i]);
}

/* The im2col row-run pack (codegen/conv.c): panels of NR = 16 (AVX2) output
 * positions whose vectors meet 1 (OW % 8 == 0) to 4 output rows, edge panels
 * (N % 16 of 5 and 13 columns), stride 2 along the rows, pads on every side
 * (some wider than the kernel's reach), dilation, K blocks split on channels
 * (47 channels: 24 + 23), groups, f64 (4 lanes), 1-D and 3-D (rows that
 * cross planes). OW = 2 and 1 take the gather pack. */
static void test_conv_row_pack(void **state) {
    (void)state;
    conv_case cases[] = {
        CASE2D(.C = 5, .M = 16, .in = {12, 16}, .ker = {3, 3}, .pads = {1, 1, 1, 1}, .bias = 1),
        CASE2D(.C = 7, .M = 12, .in = {9, 13}, .ker = {3, 3}, .pads = {1, 1, 1, 1}),
        CASE2D(.N = 2, .C = 3, .M = 8, .in = {5, 25}, .ker = {3, 3}, .pads = {0, 1, 0, 1},
               .bias = 1),
        CASE2D(.C = 4, .M = 8, .in = {6, 5}, .ker = {3, 3}, .pads = {1, 1, 1, 1}),
        CASE2D(.C = 4, .M = 8, .in = {4, 3}, .ker = {3, 3}, .pads = {1, 1, 1, 1}, .bias = 1),
        CASE2D(.C = 4, .M = 8, .in = {5, 2}, .ker = {3, 3}, .pads = {1, 1, 1, 1}),
        CASE2D(.C = 4, .M = 8, .in = {5, 3}, .ker = {3, 3}),
        CASE2D(.C = 6, .M = 16, .in = {11, 17}, .ker = {3, 3}, .str = {2, 2},
               .pads = {1, 1, 1, 1}, .bias = 1),
        CASE2D(.N = 2, .C = 5, .M = 9, .in = {10, 19}, .ker = {3, 3}, .str = {1, 2},
               .pads = {2, 0, 0, 3}),
        CASE2D(.C = 3, .M = 8, .in = {9, 20}, .ker = {3, 3}, .dil = {1, 2}, .pads = {1, 2, 1, 2}),
        CASE2D(.C = 3, .M = 8, .in = {7, 9}, .ker = {3, 3}, .pads = {3, 3, 3, 3}, .bias = 1),
        CASE2D(.C = 47, .M = 16, .in = {10, 10}, .ker = {3, 3}, .pads = {1, 1, 1, 1}, .bias = 1,
               .w_const = 1),
        CASE2D(.C = 20, .M = 32, .G = 2, .in = {9, 11}, .ker = {3, 3}, .pads = {1, 1, 1, 1}),
        CASE2D(.C = 3, .M = 16, .in = {23, 23}, .ker = {7, 7}, .str = {2, 2},
               .pads = {3, 3, 3, 3}, .bias = 1),
        CASE2D(.N = 2, .C = 4, .M = 8, .in = {6, 21}, .ker = {1, 5}, .str = {1, 2},
               .pads = {0, 2, 0, 1}),
        CASE2D(.dt = GR_DTYPE_F64, .C = 5, .M = 8, .in = {7, 6}, .ker = {3, 3},
               .pads = {1, 1, 1, 1}, .bias = 1),
        CASE2D(.dt = GR_DTYPE_F64, .C = 5, .M = 8, .in = {5, 2}, .ker = {3, 3},
               .pads = {1, 1, 1, 1}),
        CASE2D(.dt = GR_DTYPE_F64, .C = 5, .M = 8, .in = {9, 8}, .ker = {3, 3}, .str = {1, 2},
               .pads = {1, 1, 1, 1}),
        {.ns = 1, .C = 3, .M = 8, .in = {100}, .ker = {5}, .pads = {2, 2}, .bias = 1},
        {.ns = 1, .N = 2, .C = 3, .M = 8, .in = {61}, .ker = {4}, .str = {2}, .pads = {1, 2}},
        {.ns = 3, .C = 3, .M = 8, .in = {4, 5, 9}, .ker = {3, 3, 3}, .pads = {1, 1, 1, 1, 1, 1},
         .bias = 1},
        {.ns = 3, .C = 2, .M = 8, .in = {5, 4, 11}, .ker = {2, 3, 3}, .str = {2, 1, 2},
         .dil = {1, 2, 1}, .pads = {0, 1, 1, 1, 1, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv(&cases[i]);
}

static void test_conv2d_depthwise_and_small_groups(void **state) {
    (void)state;
    conv_case cases[] = {
        CASE2D(.C = 8, .M = 8, .G = 8, .in = {11, 13}, .ker = {3, 3}, .pads = {1, 1, 1, 1},
               .bias = 1, .w_const = 1),
        CASE2D(.N = 2, .C = 6, .M = 6, .G = 6, .in = {10, 9}, .ker = {5, 5}, .str = {2, 2},
               .pads = {2, 2, 2, 2}),
        CASE2D(.C = 4, .M = 8, .G = 4, .in = {7, 7}, .ker = {3, 3}, .dil = {2, 2},
               .pads = {2, 1, 0, 2}, .bias = 1),
        CASE2D(.C = 6, .M = 3, .G = 3, .in = {6, 8}, .ker = {2, 2}, .str = {1, 2},
               .auto_pad = "SAME_LOWER"),
        CASE2D(.C = 3, .M = 2, .in = {5, 5}, .ker = {3, 3}, .pads = {1, 1, 1, 1}, .bias = 1),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv(&cases[i]);
}

static void test_conv_1d_3d(void **state) {
    (void)state;
    conv_case c1 = {.dt = GR_DTYPE_F32, .ns = 1, .N = 2, .C = 5, .M = 12, .G = 1, .in = {30},
                    .ker = {4}, .str = {2}, .dil = {1}, .pads = {1, 2}, .bias = 1};
    check_conv(&c1);
    conv_case c1d = {.dt = GR_DTYPE_F32, .ns = 1, .N = 1, .C = 6, .M = 6, .G = 6, .in = {17},
                     .ker = {3}, .str = {1}, .dil = {2}, .auto_pad = "SAME_UPPER"};
    check_conv(&c1d);
    conv_case c3 = {.dt = GR_DTYPE_F32, .ns = 3, .N = 1, .C = 3, .M = 10, .G = 1,
                    .in = {5, 6, 7}, .ker = {2, 3, 3}, .str = {1, 2, 1}, .dil = {1, 1, 2},
                    .pads = {1, 0, 1, 0, 1, 2}, .bias = 1};
    check_conv(&c3);
    conv_case c3d = {.dt = GR_DTYPE_F64, .ns = 3, .N = 1, .C = 4, .M = 4, .G = 4,
                     .in = {4, 5, 6}, .ker = {3, 3, 3}, .str = {1, 1, 1}, .dil = {1, 1, 1},
                     .pads = {1, 1, 1, 1, 1, 1}};
    check_conv(&c3d);
}

/* ONNX conv_with_strides_and_asymmetric_padding: Y = [[21,33],[99,117],[189,207]]. */
static void test_conv_spec_example(void **state) {
    (void)state;
    tgraph t;
    tg_init(&t);
    int64_t xd[4] = {1, 1, 7, 5}, wd[4] = {1, 1, 3, 3};
    double x[35], w[9];
    for (int i = 0; i < 35; i++) x[i] = i;
    for (int i = 0; i < 9; i++) w[i] = 1;
    gr_value *in[2] = {tg_operand(&t, "x", GR_DTYPE_F32, 4, xd, x, 0),
                       tg_operand(&t, "w", GR_DTYPE_F32, 4, wd, w, 0)};
    gr_node *nd = gr_node_add(t.g, GR_OP_CONV, "conv", 2, in, 1, NULL);
    int64_t strides[2] = {2, 2}, pads[4] = {1, 0, 1, 0};
    gr_node_set_ints(t.g, nd, "strides", 2, strides);
    gr_node_set_ints(t.g, nd, "pads", 4, pads);
    double y[8] = {21, 33, 99, 117, 189, 207, 171, 183};
    tg_check(&t, nd, y, 0, 0);
}

#define CONV_TESTS                                                  \
    cmocka_unit_test(test_conv_spec_example),                       \
    cmocka_unit_test(test_conv2d_gemm_path),                        \
    cmocka_unit_test(test_conv2d_depthwise_and_small_groups),       \
    cmocka_unit_test(test_conv_1d_3d),                              \
    cmocka_unit_test(test_conv_row_pack),
/* ------------------------------------------------------------ ConvTranspose */

static void test_conv_transpose_2d(void **state) {
    (void)state;
    conv_case cases[] = {
        CASE2D(.transpose = 1, .C = 3, .M = 4, .in = {5, 6}, .ker = {3, 3}, .bias = 1),
        CASE2D(.transpose = 1, .N = 2, .C = 4, .M = 6, .in = {4, 5}, .ker = {2, 2},
               .str = {2, 2}, .w_const = 1, .bias = 1),
        CASE2D(.transpose = 1, .C = 4, .M = 6, .G = 2, .in = {5, 4}, .ker = {3, 2},
               .str = {2, 3}, .pads = {1, 0, 1, 1}, .out_pad = {1, 0}, .dil = {1, 2}),
        CASE2D(.transpose = 1, .C = 2, .M = 3, .in = {3, 4}, .ker = {3, 3}, .str = {2, 2},
               .auto_pad = "SAME_UPPER"),
        CASE2D(.transpose = 1, .C = 2, .M = 3, .in = {3, 4}, .ker = {3, 3}, .str = {2, 2},
               .auto_pad = "SAME_LOWER"),
        CASE2D(.transpose = 1, .C = 1, .M = 2, .in = {3, 3}, .ker = {3, 3}, .str = {3, 2},
               .out_shape = {10, 8}),
        CASE2D(.dt = GR_DTYPE_F64, .transpose = 1, .C = 5, .M = 5, .G = 5, .in = {6, 6},
               .ker = {4, 4}, .str = {2, 2}, .pads = {1, 1, 1, 1}, .bias = 1),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_conv(&cases[i]);
}

static void test_conv_transpose_1d_3d(void **state) {
    (void)state;
    conv_case c1 = {.transpose = 1, .ns = 1, .C = 3, .M = 2, .in = {7}, .ker = {3},
                    .str = {2}, .pads = {1, 0}, .out_pad = {1}, .bias = 1};
    check_conv(&c1);
    conv_case c3 = {.transpose = 1, .ns = 3, .C = 2, .M = 3, .in = {3, 4, 3},
                    .ker = {2, 3, 2}, .str = {2, 1, 2}, .dil = {1, 2, 1}, .bias = 1};
    check_conv(&c3);
}

/* ONNX convtranspose example: X = 0..8 (1x1x3x3), W = ones (1x2x3x3). */
static void test_conv_transpose_spec_example(void **state) {
    (void)state;
    tgraph t;
    tg_init(&t);
    int64_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 2, 3, 3};
    double x[9], w[18];
    for (int i = 0; i < 9; i++) x[i] = i;
    for (int i = 0; i < 18; i++) w[i] = 1;
    gr_value *in[2] = {tg_operand(&t, "x", GR_DTYPE_F32, 4, xd, x, 0),
                       tg_operand(&t, "w", GR_DTYPE_F32, 4, wd, w, 0)};
    gr_node *nd = gr_node_add(t.g, GR_OP_CONV_TRANSPOSE, "ct", 2, in, 1, NULL);
    static const double plane[25] = {0, 1, 3, 3, 2, 3, 8, 15, 12, 7, 9, 21, 36,
                                     27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
    double y[50];
    for (int i = 0; i < 50; i++) y[i] = plane[i % 25];
    tg_check(&t, nd, y, 0, 0);
}

#define CONVT_TESTS                                                 \
    cmocka_unit_test(test_conv_transpose_spec_example),             \
    cmocka_unit_test(test_conv_transpose_2d),                       \
    cmocka_unit_test(test_conv_transpose_1d_3d),


/* ------------------------------------------------------------ epilogues */

typedef struct {
    int rank[3];
    int64_t dims[3][4];
} epi_operands;

/* out = Relu(head + p) * q + r after the GEMM-based node nd (output of
 * rank ry, dims yd, reference y): the "fuse" pass groups the chain with its
 * head, and codegen compiles it as expected_steps kernels (1: the chain is
 * the head's epilogue). Checked against the reference like any node. */
static void check_epilogue(tgraph *t, gr_node *nd, int ry, const int64_t *yd, const double *y,
                           const epi_operands *ops, int expected_steps, double rtol,
                           double atol) {
    static const char *const names[3] = {"p", "q", "r"};
    double *v[3];
    gr_value *o[3];
    for (int i = 0; i < 3; i++) {
        v[i] = rnd_array(numel(ops->rank[i], ops->dims[i]));
        o[i] = tg_operand(t, names[i], GR_DTYPE_F32, ops->rank[i], ops->dims[i], v[i], i == 0);
    }
    gr_value *in[2] = {nd->outputs[0], o[0]};
    gr_node *add = gr_node_add(t->g, GR_OP_ADD, "add", 2, in, 1, NULL);
    gr_node *relu = gr_node_add(t->g, GR_OP_RELU, "relu", 1, add->outputs, 1, NULL);
    in[0] = relu->outputs[0];
    in[1] = o[1];
    gr_node *mul = gr_node_add(t->g, GR_OP_MUL, "mul", 2, in, 1, NULL);
    in[0] = mul->outputs[0];
    in[1] = o[2];
    gr_node *out = gr_node_add(t->g, GR_OP_ADD, "out", 2, in, 1, NULL);
    gr_status st = {0};
    gr_graph_add_output(t->g, out->outputs[0]);
    static const char *const fuse[] = {"shapes", "fuse", NULL};
    if (gr_passes_run(t->g, fuse, &(gr_pass_opts){0}, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_plan *p = NULL;
    if (gr_codegen_jit(t->g, &(gr_codegen_opts){0}, &p, &st) != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(p->n_steps, expected_steps);
    gr_plan_free(p);
    int64_t n = numel(ry, yd);
    double *expect = malloc((size_t)n * sizeof *expect);
    for (int64_t i = 0; i < n; i++) {
        double z = y[i] + v[0][cg_bcast_offset(ry, yd, ops->rank[0], ops->dims[0], i)];
        z = z > 0 ? z : 0;
        expect[i] = z * v[1][cg_bcast_offset(ry, yd, ops->rank[1], ops->dims[1], i)] +
                    v[2][cg_bcast_offset(ry, yd, ops->rank[2], ops->dims[2], i)];
    }
    tg_check(t, out, expect, rtol, atol);
    for (int i = 0; i < 3; i++) free(v[i]);
    free(expect);
}

/* Conv X[N,C,9,11] (3x3, pads 1, bias) of group G then the chain. */
static void check_conv_epilogue(int64_t N, int64_t C, int64_t M, int64_t G,
                                const epi_operands *ops, int expected_steps) {
    conv_case c = CASE2D(.dt = GR_DTYPE_F32, .N = N, .C = C, .M = M, .G = G, .in = {9, 11},
                         .ker = {3, 3}, .str = {1, 1}, .dil = {1, 1}, .pads = {1, 1, 1, 1},
                         .bias = 1);
    tgraph t;
    tg_init(&t);
    int64_t out[3], pb[3];
    conv_dims(&c, out, pb);
    int64_t xd[4] = {N, C, 9, 11}, wd[4] = {M, C / G, 3, 3}, bd[1] = {M}, yd[4] = {N, M, 9, 11};
    double *x = rnd_array(numel(4, xd)), *w = rnd_array(numel(4, wd)), *b = rnd_array(M);
    gr_value *in[3] = {tg_operand(&t, "x", GR_DTYPE_F32, 4, xd, x, 0),
                       tg_operand(&t, "w", GR_DTYPE_F32, 4, wd, w, 1),
                       tg_operand(&t, "b", GR_DTYPE_F32, 1, bd, b, 1)};
    gr_node *nd = gr_node_add(t.g, GR_OP_CONV, "conv", 3, in, 1, NULL);
    gr_node_set_ints(t.g, nd, "pads", 4, c.pads);
    gr_node_set_int(t.g, nd, "group", G);
    double *y = malloc((size_t)numel(4, yd) * sizeof *y);
    conv_ref(&c, out, pb, x, w, b, y);
    int64_t kk = C / G * 9;
    check_epilogue(&t, nd, 4, yd, y, ops, expected_steps, tol_for(GR_DTYPE_F32, kk),
                   4 * atol_for(GR_DTYPE_F32, kk));
    free(x);
    free(w);
    free(b);
    free(y);
}

static void test_conv_epilogue(void **state) {
    (void)state;
    /* per-channel p (constant along a row), scalar q, full r (along it) */
    epi_operands a = {{3, 1, 4}, {{16, 1, 1}, {1}, {2, 16, 9, 11}}};
    check_conv_epilogue(2, 8, 16, 1, &a, 1);
    /* operands varying within a row otherwise: per element */
    epi_operands b = {{4, 1, 3}, {{1, 1, 9, 1}, {11}, {16, 9, 11}}};
    check_conv_epilogue(2, 8, 16, 1, &b, 1);
    /* two groups: each group's tiles start at its own channel */
    epi_operands g = {{3, 1, 4}, {{32, 1, 1}, {1}, {2, 32, 9, 11}}};
    check_conv_epilogue(2, 16, 32, 2, &g, 1);
    /* depthwise: the direct kernel runs it on each finished plane */
    epi_operands d = {{3, 1, 4}, {{8, 1, 1}, {1}, {1, 8, 9, 11}}};
    check_conv_epilogue(2, 8, 8, 8, &d, 1);
    epi_operands e = {{4, 1, 3}, {{2, 1, 9, 1}, {11}, {8, 9, 11}}};
    check_conv_epilogue(2, 8, 8, 8, &e, 1);
}

/* MatMul A[ad] x B[bd] then the chain. */
static void check_matmul_epilogue(int ra, const int64_t *ad, int rb, const int64_t *bd,
                                  const epi_operands *ops) {
    tgraph t;
    tg_init(&t);
    double *a = rnd_array(numel(ra, ad)), *b = rnd_array(numel(rb, bd));
    gr_value *in[2] = {tg_operand(&t, "a", GR_DTYPE_F32, ra, ad, a, 0),
                       tg_operand(&t, "b", GR_DTYPE_F32, rb, bd, b, 1)};
    gr_node *nd = gr_node_add(t.g, GR_OP_MATMUL, "mm", 2, in, 1, NULL);
    int64_t yd[4];
    for (int i = 0; i < ra - 1; i++) yd[i] = ad[i];
    yd[ra - 1] = bd[rb - 1];
    double *y = malloc((size_t)numel(ra, yd) * sizeof *y);
    matmul_ref(ra, ad, a, rb, bd, b, y);
    int64_t K = ad[ra - 1];
    check_epilogue(&t, nd, ra, yd, y, ops, 1, tol_for(GR_DTYPE_F32, K),
                   4 * atol_for(GR_DTYPE_F32, K));
    free(a);
    free(b);
    free(y);
}

static void test_matmul_epilogue(void **state) {
    (void)state;
    int64_t ad[4] = {2, 3, 5, 40}, bd[2] = {40, 24};
    epi_operands a = {{1, 2, 3}, {{24}, {5, 1}, {3, 5, 24}}};
    check_matmul_epilogue(4, ad, 2, bd, &a);
    /* K over several blocks: the epilogue runs after the last one only */
    int64_t ad2[2] = {37, 800}, bd2[2] = {800, 50};
    epi_operands b = {{2, 1, 2}, {{37, 1}, {50}, {37, 50}}};
    check_matmul_epilogue(2, ad2, 2, bd2, &b);
}

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
        cmocka_unit_test(test_gemm_prepacked_b),
        cmocka_unit_test(test_matmul_prepacked_b),
        cmocka_unit_test(test_shared_const_b_not_prepacked),
        CONV_TESTS
        CONVT_TESTS
        cmocka_unit_test(test_conv_epilogue),
        cmocka_unit_test(test_matmul_epilogue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
