/* test_codegen_elementwise.c: the elementwise kernels (codegen/elementwise*.c,
 * cg_math.c) against double-precision C references written from the ONNX
 * op definitions, ONNX spec examples and hand-computed values. Every graph
 * runs with 1 and 3 task splits, which must agree bit for bit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cg_run.h"
#include "ir/gr_ir.h"

#define MAXV 16

/* ---- graph helpers ---- */

static gr_value *input(gr_graph *g, gr_dtype dt, int rank, const int64_t *dims) {
    gr_shape s = gr_shape_make(rank, dims);
    gr_value *v = gr_graph_add_input(g, NULL, dt, &s);
    assert_non_null(v);
    return v;
}

static gr_value *constant(gr_graph *g, gr_dtype dt, int rank, const int64_t *dims, const void *d) {
    gr_shape s = gr_shape_make(rank, dims);
    gr_value *v = gr_graph_add_data(g, GR_VALUE_CONST, NULL, dt, &s, d);
    assert_non_null(v);
    return v;
}

static gr_node *node(gr_graph *g, gr_op op, int n_in, gr_value **ins, int n_out) {
    gr_node *n = gr_node_add(g, op, NULL, n_in, ins, n_out, NULL);
    assert_non_null(n);
    for (int i = 0; i < n_out; i++)
        if (n->outputs[i]) assert_int_equal(gr_graph_add_output(g, n->outputs[i]), GR_OK);
    return n;
}

static size_t out_bytes(const gr_graph *g, int i) {
    return (size_t)gr_value_numel(g->outputs[i]) * gr_dtype_size(g->outputs[i]->dtype);
}

/* Set by tests of single-task kernels (a few elements) to compile once. */
static int skip_split_check;

/* Infers shapes, runs with 1 and 3 splits, checks they agree; outs[i]
 * receive the outputs (malloc'd; the caller frees them; NULL on failure). */
static gr_code run(gr_graph *g, void **ins, void **outs, gr_status *st) {
    gr_code rc = gr_graph_infer_shapes(g, st);
    if (rc != GR_OK) return rc;
    void *other[MAXV];
    for (int i = 0; i < g->n_outputs; i++) {
        outs[i] = calloc(1, out_bytes(g, i) + 1);
        other[i] = calloc(1, out_bytes(g, i) + 1);
    }
    rc = cg_run_graph(g, ins, outs, 1, st);
    if (rc == GR_OK && !skip_split_check) rc = cg_run_graph(g, ins, other, 3, st);
    for (int i = 0; i < g->n_outputs; i++) {
        if (rc == GR_OK && !skip_split_check) assert_memory_equal(outs[i], other[i], out_bytes(g, i));
        free(other[i]);
        if (rc != GR_OK) {
            free(outs[i]);
            outs[i] = NULL;
        }
    }
    return rc;
}

static void free_outs(gr_graph *g, void **outs) {
    for (int i = 0; i < g->n_outputs; i++) free(outs[i]);
    gr_graph_free(g);
}

static int close_enough(double got, double want, double rtol, double atol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

#define CHECK_CLOSE(got, want, rtol, atol, i)                                          \
    do {                                                                               \
        double g_ = (got), w_ = (want);                                                \
        if (!close_enough(g_, w_, rtol, atol))                                         \
            fail_msg("element %d: got %.9g, want %.9g", (int)(i), g_, w_);             \
    } while (0)

static float frand(unsigned *seed, float lo, float hi) {
    *seed = *seed * 1103515245u + 12345u;
    return lo + (hi - lo) * (float)((*seed >> 8) & 0xffff) / 65535.0f;
}

/* ---- binary arithmetic with broadcasting ---- */

static double ref_binary(gr_op op, double a, double b) {
    switch (op) {
    case GR_OP_ADD: return a + b;
    case GR_OP_SUB: return a - b;
    case GR_OP_MUL: return a * b;
    case GR_OP_DIV: return a / b;
    case GR_OP_POW: return pow(a, b);
    default: return NAN;
    }
}

static void check_f32_binary(gr_op op, int ra, const int64_t *da, int rb, const int64_t *db,
                             int ro, const int64_t *dout) {
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *ins[2] = {input(g, GR_DTYPE_F32, ra, da), input(g, GR_DTYPE_F32, rb, db)};
    node(g, op, 2, ins, 1);
    int64_t na = 1, nb = 1, no = 1;
    for (int i = 0; i < ra; i++) na *= da[i];
    for (int i = 0; i < rb; i++) nb *= db[i];
    for (int i = 0; i < ro; i++) no *= dout[i];
    float *a = malloc(sizeof(float) * (size_t)na), *b = malloc(sizeof(float) * (size_t)nb);
    unsigned seed = 7;
    for (int64_t i = 0; i < na; i++) a[i] = frand(&seed, 0.5f, 4.0f);
    for (int64_t i = 0; i < nb; i++) b[i] = frand(&seed, -3.0f, 3.0f);
    void *in_data[2] = {a, b}, *outs[MAXV];
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    assert_int_equal(gr_value_numel(g->outputs[0]), no);
    const float *y = outs[0];
    for (int64_t i = 0; i < no; i++) {
        double x1 = a[cg_bcast_offset(ro, dout, ra, da, i)];
        double x2 = b[cg_bcast_offset(ro, dout, rb, db, i)];
        double want = (float)ref_binary(op, x1, x2);
        CHECK_CLOSE(y[i], want, op == GR_OP_POW ? 2e-6 : 1e-7, 0, i);
    }
    free(a);
    free(b);
    free_outs(g, outs);
}

static void test_binary_f32_broadcasting(void **state) {
    (void)state;
    static const gr_op ops[] = {GR_OP_ADD, GR_OP_SUB, GR_OP_MUL, GR_OP_DIV, GR_OP_POW};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        gr_op op = ops[o];
        check_f32_binary(op, 3, (int64_t[]){2, 3, 4}, 2, (int64_t[]){3, 1}, 3, (int64_t[]){2, 3, 4});
        check_f32_binary(op, 3, (int64_t[]){2, 3, 4}, 1, (int64_t[]){4}, 3, (int64_t[]){2, 3, 4});
        check_f32_binary(op, 3, (int64_t[]){2, 3, 4}, 0, NULL, 3, (int64_t[]){2, 3, 4});
        check_f32_binary(op, 0, NULL, 2, (int64_t[]){5, 3}, 2, (int64_t[]){5, 3});
        check_f32_binary(op, 3, (int64_t[]){5, 1, 7}, 3, (int64_t[]){1, 6, 1}, 3, (int64_t[]){5, 6, 7});
        check_f32_binary(op, 4, (int64_t[]){2, 3, 1, 5}, 2, (int64_t[]){4, 1}, 4, (int64_t[]){2, 3, 4, 5});
    }
    /* several tasks: flat range, rows, and a broadcast inner dim */
    check_f32_binary(GR_OP_ADD, 1, (int64_t[]){100003}, 1, (int64_t[]){100003}, 1, (int64_t[]){100003});
    check_f32_binary(GR_OP_MUL, 2, (int64_t[]){300, 257}, 1, (int64_t[]){257}, 2, (int64_t[]){300, 257});
    check_f32_binary(GR_OP_SUB, 3, (int64_t[]){4, 64, 300}, 3, (int64_t[]){4, 64, 1}, 3, (int64_t[]){4, 64, 300});
    check_f32_binary(GR_OP_DIV, 2, (int64_t[]){1, 70000}, 2, (int64_t[]){3, 1}, 2, (int64_t[]){3, 70000});
}

/* ---- integer Div, Mod, Pow ---- */

/* One binary node on two same-shape inputs of dtype dt (n elements);
 * returns the output (malloc'd) and frees the graph. */
static void *run_binary(gr_op op, gr_dtype dt, gr_dtype dt2, int64_t count, const void *a, const void *b,
                        const char *int_attr, int64_t attr_value) {
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    int64_t dims[1] = {count};
    gr_value *ins[2] = {input(g, dt, 1, dims), input(g, dt2, 1, dims)};
    gr_node *n = node(g, op, 2, ins, 1);
    if (int_attr) assert_int_equal(gr_node_set_int(g, n, int_attr, attr_value), GR_OK);
    void *in_data[2] = {(void *)a, (void *)b}, *outs[MAXV];
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    void *y = outs[0];
    gr_graph_free(g);
    return y;
}

static void test_int_div_mod_semantics(void **state) {
    (void)state;
    int32_t a[] = {7, -7, 7, -7, 5, 0, INT32_MIN, INT32_MIN, 9};
    int32_t b[] = {3, 3, -3, -3, 0, 0, -1, 1, 9};
    int32_t div[] = {2, -2, -2, 2, 0, 0, INT32_MIN, INT32_MIN, 1};
    int32_t cmod[] = {1, -1, 1, -1, 0, 0, 0, 0, 0};   /* fmod=1: sign of dividend */
    int32_t pymod[] = {1, 2, -2, -1, 0, 0, 0, 0, 0};  /* fmod=0: sign of divisor */
    int32_t *y = run_binary(GR_OP_DIV, GR_DTYPE_I32, GR_DTYPE_I32, 9, a, b, NULL, 0);
    assert_memory_equal(y, div, sizeof div);
    free(y);
    y = run_binary(GR_OP_MOD, GR_DTYPE_I32, GR_DTYPE_I32, 9, a, b, "fmod", 1);
    assert_memory_equal(y, cmod, sizeof cmod);
    free(y);
    y = run_binary(GR_OP_MOD, GR_DTYPE_I32, GR_DTYPE_I32, 9, a, b, "fmod", 0);
    assert_memory_equal(y, pymod, sizeof pymod);
    free(y);
    /* ONNX Mod example (mod_mixed_sign_int64) */
    int64_t a64[] = {-4, 7, 5, 4, -7, 8}, b64[] = {2, -3, 8, -2, 3, 5};
    int64_t want64[] = {0, -2, 5, 0, 2, 3};
    int64_t *y64 = run_binary(GR_OP_MOD, GR_DTYPE_I64, GR_DTYPE_I64, 6, a64, b64, NULL, 0);
    assert_memory_equal(y64, want64, sizeof want64);
    free(y64);
    uint8_t au[] = {200, 7, 9}, bu[] = {7, 0, 255};
    uint8_t wdiv[] = {28, 0, 0}, wmod[] = {4, 0, 9};
    uint8_t *yu = run_binary(GR_OP_DIV, GR_DTYPE_U8, GR_DTYPE_U8, 3, au, bu, NULL, 0);
    assert_memory_equal(yu, wdiv, 3);
    free(yu);
    yu = run_binary(GR_OP_MOD, GR_DTYPE_U8, GR_DTYPE_U8, 3, au, bu, NULL, 0);
    assert_memory_equal(yu, wmod, 3);
    free(yu);
}

static void test_float_mod(void **state) {
    (void)state;
    /* ONNX mod_mixed_sign_float32 (fmod=1) and Python semantics (fmod=0) */
    float a[] = {-4.3f, 7.2f, 5.0f, 4.3f, -7.2f, 8.0f}, b[] = {2.1f, -3.4f, 8.0f, -2.1f, 3.4f, 5.0f};
    float *y = run_binary(GR_OP_MOD, GR_DTYPE_F32, GR_DTYPE_F32, 6, a, b, "fmod", 1);
    for (int i = 0; i < 6; i++) CHECK_CLOSE(y[i], fmodf(a[i], b[i]), 0, 0, i);
    free(y);
    y = run_binary(GR_OP_MOD, GR_DTYPE_F32, GR_DTYPE_F32, 6, a, b, "fmod", 0);
    for (int i = 0; i < 6; i++) {
        float r = fmodf(a[i], b[i]);
        if (r != 0 && ((r < 0) != (b[i] < 0))) r += b[i];
        CHECK_CLOSE(y[i], r, 0, 0, i);
    }
    free(y);
}

static void test_pow_dtypes(void **state) {
    (void)state;
    int64_t a[] = {2, -3, 5, 0, 1, -1, -1, 7, 3}, b[] = {10, 3, 0, 5, -4, -3, -2, -1, 39};
    int64_t want[] = {1024, -27, 1, 0, 1, -1, 1, 0, 4052555153018976267LL};
    int64_t *y = run_binary(GR_OP_POW, GR_DTYPE_I64, GR_DTYPE_I64, 9, a, b, NULL, 0);
    assert_memory_equal(y, want, sizeof want);
    free(y);
    int32_t a32[] = {2, 3, -2}, want32[] = {8, 81, 16};
    int64_t e64[] = {3, 4, 4};
    int32_t *y32 = run_binary(GR_OP_POW, GR_DTYPE_I32, GR_DTYPE_I64, 3, a32, e64, NULL, 0);
    assert_memory_equal(y32, want32, sizeof want32);
    free(y32);
    float xf[] = {1.5f, -2.0f, 0.25f};
    float *yf = run_binary(GR_OP_POW, GR_DTYPE_F32, GR_DTYPE_I64, 3, xf, e64, NULL, 0);
    for (int i = 0; i < 3; i++) CHECK_CLOSE(yf[i], pow(xf[i], (double)e64[i]), 1e-7, 0, i);
    free(yf);
    float ef[] = {0.5f, 2.0f, 1.5f};
    y32 = run_binary(GR_OP_POW, GR_DTYPE_I32, GR_DTYPE_F32, 3, (int32_t[]){4, 3, 4}, ef, NULL, 0);
    assert_memory_equal(y32, ((int32_t[]){2, 9, 8}), 3 * sizeof(int32_t));
    free(y32);
}

/* x ^ constant scalar: the specialised forms and the general one. */
static void test_pow_constant_exponent(void **state) {
    (void)state;
    const float exps[] = {2.0f, 0.5f, 3.0f, -1.0f, 0.0f, 1.0f, 1.7f};
    float x[] = {0.0f, 1.5f, 2.0f, 9.0f, 1e-3f, 100.0f};
    for (size_t e = 0; e < sizeof exps / sizeof *exps; e++) {
        gr_status st = {0};
        gr_graph *g = gr_graph_new("t");
        gr_value *ins[2] = {input(g, GR_DTYPE_F32, 1, (int64_t[]){6}),
                            constant(g, GR_DTYPE_F32, 0, NULL, &exps[e])};
        node(g, GR_OP_POW, 2, ins, 1);
        void *in_data[1] = {x}, *outs[MAXV];
        assert_int_equal(run(g, in_data, outs, &st), GR_OK);
        for (int i = 0; i < 6; i++)
            CHECK_CLOSE(((float *)outs[0])[i], (float)pow(x[i], exps[e]), 2e-7, 0, i);
        free_outs(g, outs);
    }
}

/* Add, Sub, Mul, Div, Max, Min on every integer dtype and f64; integer
 * results wrap like C casts of the int64 result. */
static void test_arith_all_numeric_dtypes(void **state) {
    (void)state;
    static const gr_dtype types[] = {GR_DTYPE_I8, GR_DTYPE_U8, GR_DTYPE_I16, GR_DTYPE_U16,
                                     GR_DTYPE_I32, GR_DTYPE_U32, GR_DTYPE_I64, GR_DTYPE_U64,
                                     GR_DTYPE_F64};
    static const gr_op ops[] = {GR_OP_ADD, GR_OP_SUB, GR_OP_MUL, GR_OP_DIV, GR_OP_MAX, GR_OP_MIN};
    int64_t va[] = {10, 20, 100, 7, 120}, vb[] = {3, 5, 27, 7, 2};
    enum { NOPS = sizeof ops / sizeof *ops };
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        unsigned char a[40], b[40], w[40];
        for (int i = 0; i < 5; i++) {
            gr_dtype_store_i64(types[t], a, i, va[i]);
            gr_dtype_store_i64(types[t], b, i, vb[i]);
        }
        gr_status st = {0};
        gr_graph *g = gr_graph_new("t");
        gr_value *ins[2] = {input(g, types[t], 1, (int64_t[]){5}), input(g, types[t], 1, (int64_t[]){5})};
        for (int o = 0; o < NOPS; o++) node(g, ops[o], 2, ins, 1);
        void *in_data[2] = {a, b}, *outs[MAXV];
        assert_int_equal(run(g, in_data, outs, &st), GR_OK);
        for (int o = 0; o < NOPS; o++) {
            for (int i = 0; i < 5; i++) {
                int64_t x1 = va[i], x2 = vb[i];
                double r = ops[o] == GR_OP_ADD ? x1 + x2 : ops[o] == GR_OP_SUB ? x1 - x2
                         : ops[o] == GR_OP_MUL ? x1 * x2 : ops[o] == GR_OP_MAX ? (x1 > x2 ? x1 : x2)
                         : ops[o] == GR_OP_MIN ? (x1 < x2 ? x1 : x2)
                         : types[t] == GR_DTYPE_F64 ? (double)x1 / (double)x2 : (double)(x1 / x2);
                if (types[t] == GR_DTYPE_F64) gr_dtype_store_f64(types[t], w, i, r);
                else gr_dtype_store_i64(types[t], w, i, (int64_t)r);
            }
            if (memcmp(outs[o], w, gr_dtype_size(types[t]) * 5) != 0)
                fail_msg("%s on %s", gr_op_name(ops[o]), gr_dtype_name(types[t]));
        }
        free_outs(g, outs);
    }
}

/* An empty tensor compiles to a kernel that writes nothing. */
static void test_empty_tensor(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *ins[2] = {input(g, GR_DTYPE_F32, 2, (int64_t[]){0, 3}),
                        input(g, GR_DTYPE_F32, 1, (int64_t[]){3})};
    node(g, GR_OP_ADD, 2, ins, 1);
    float b[3] = {1, 2, 3}, a[1] = {0};
    void *in_data[2] = {a, b}, *outs[MAXV];
    gr_code rc = run(g, in_data, outs, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(gr_value_numel(g->outputs[0]), 0);
    free_outs(g, outs);
}

/* ---- comparisons and logic ---- */

static void test_compare_ops(void **state) {
    (void)state;
    static const gr_op ops[] = {GR_OP_EQUAL, GR_OP_LESS, GR_OP_GREATER, GR_OP_LESS_OR_EQUAL,
                                GR_OP_GREATER_OR_EQUAL};
    float a[] = {1, 2, 3, NAN, -0.0f, 5}, b[] = {1, 3, 2, 1, 0.0f, NAN};
    int32_t ia[] = {1, 2, 3, -4, 0, 5}, ib[] = {1, 3, 2, 1, 0, -5};
    uint16_t ua[] = {1, 2, 3, 65535, 0, 5}, ub[] = {1, 3, 2, 1, 0, 6};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        uint8_t *yf = run_binary(ops[o], GR_DTYPE_F32, GR_DTYPE_F32, 6, a, b, NULL, 0);
        uint8_t *yi = run_binary(ops[o], GR_DTYPE_I32, GR_DTYPE_I32, 6, ia, ib, NULL, 0);
        uint8_t *yu = run_binary(ops[o], GR_DTYPE_U16, GR_DTYPE_U16, 6, ua, ub, NULL, 0);
        for (int i = 0; i < 6; i++) {
            int wf, wi, wu;
            switch (ops[o]) {
            case GR_OP_EQUAL: wf = a[i] == b[i]; wi = ia[i] == ib[i]; wu = ua[i] == ub[i]; break;
            case GR_OP_LESS: wf = a[i] < b[i]; wi = ia[i] < ib[i]; wu = ua[i] < ub[i]; break;
            case GR_OP_GREATER: wf = a[i] > b[i]; wi = ia[i] > ib[i]; wu = ua[i] > ub[i]; break;
            case GR_OP_LESS_OR_EQUAL: wf = a[i] <= b[i]; wi = ia[i] <= ib[i]; wu = ua[i] <= ub[i]; break;
            default: wf = a[i] >= b[i]; wi = ia[i] >= ib[i]; wu = ua[i] >= ub[i]; break;
            }
            assert_int_equal(yf[i], wf);
            assert_int_equal(yi[i], wi);
            assert_int_equal(yu[i], wu);
        }
        free(yf);
        free(yi);
        free(yu);
    }
    /* Equal on bool */
    uint8_t ba[] = {0, 0, 1, 1}, bb[] = {0, 1, 0, 1};
    uint8_t *y = run_binary(GR_OP_EQUAL, GR_DTYPE_BOOL, GR_DTYPE_BOOL, 4, ba, bb, NULL, 0);
    assert_memory_equal(y, ((uint8_t[]){1, 0, 0, 1}), 4);
    free(y);
}

static void test_logic_ops_broadcast(void **state) {
    (void)state;
    static const gr_op ops[] = {GR_OP_AND, GR_OP_OR, GR_OP_XOR};
    uint8_t a[] = {0, 1, 0, 1, 1, 0}, b[] = {0, 1}; /* a:[3,2], b:[2] */
    for (size_t o = 0; o < 3; o++) {
        gr_status st = {0};
        gr_graph *g = gr_graph_new("t");
        gr_value *ins[2] = {input(g, GR_DTYPE_BOOL, 2, (int64_t[]){3, 2}),
                            input(g, GR_DTYPE_BOOL, 1, (int64_t[]){2})};
        node(g, ops[o], 2, ins, 1);
        void *in_data[2] = {a, b}, *outs[MAXV];
        assert_int_equal(run(g, in_data, outs, &st), GR_OK);
        for (int i = 0; i < 6; i++) {
            int x = a[i], z = b[i % 2];
            int want = ops[o] == GR_OP_AND ? (x && z) : ops[o] == GR_OP_OR ? (x || z) : (x != z);
            assert_int_equal(((uint8_t *)outs[0])[i], want);
        }
        free_outs(g, outs);
    }
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, GR_DTYPE_BOOL, 1, (int64_t[]){6});
    node(g, GR_OP_NOT, 1, &x, 1);
    void *in_data[1] = {a}, *outs[MAXV];
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    assert_memory_equal(outs[0], ((uint8_t[]){1, 0, 1, 0, 0, 1}), 6);
    free_outs(g, outs);
}

/* ---- variadic ---- */

static void test_variadic_max_min_sum_mean(void **state) {
    (void)state;
    static const gr_op ops[] = {GR_OP_MAX, GR_OP_MIN, GR_OP_SUM, GR_OP_MEAN};
    /* a:[2,3], b:[3], c:[2,1] */
    float a[] = {1, 5, NAN, -2, 8, 0}, b[] = {3, 4, 1}, c[] = {2, 9};
    for (size_t o = 0; o < 4; o++) {
        gr_status st = {0};
        gr_graph *g = gr_graph_new("t");
        gr_value *ins[3] = {input(g, GR_DTYPE_F32, 2, (int64_t[]){2, 3}),
                            input(g, GR_DTYPE_F32, 1, (int64_t[]){3}),
                            input(g, GR_DTYPE_F32, 2, (int64_t[]){2, 1})};
        node(g, ops[o], 3, ins, 1);
        void *in_data[3] = {a, b, c}, *outs[MAXV];
        assert_int_equal(run(g, in_data, outs, &st), GR_OK);
        for (int i = 0; i < 6; i++) {
            double x = a[i], y = b[i % 3], z = c[i / 3], w;
            switch (ops[o]) {
            case GR_OP_MAX: w = isnan(x) ? NAN : fmax(fmax(x, y), z); break;
            case GR_OP_MIN: w = isnan(x) ? NAN : fmin(fmin(x, y), z); break;
            case GR_OP_SUM: w = (float)((float)(x + y) + z); break;
            default: w = (float)((float)((float)(x + y) + z) / 3); break;
            }
            CHECK_CLOSE(((float *)outs[0])[i], w, 0, 0, i);
        }
        free_outs(g, outs);
    }
    /* integer Max/Min, one input Sum */
    int64_t ia[] = {-5, 3, 7}, ib[] = {2, -8, 7};
    int64_t *y = run_binary(GR_OP_MAX, GR_DTYPE_I64, GR_DTYPE_I64, 3, ia, ib, NULL, 0);
    assert_memory_equal(y, ((int64_t[]){2, 3, 7}), 3 * sizeof(int64_t));
    free(y);
    uint32_t ua[] = {5, 3000000000u}, ub[] = {6, 1};
    uint32_t *yu = run_binary(GR_OP_MIN, GR_DTYPE_U32, GR_DTYPE_U32, 2, ua, ub, NULL, 0);
    assert_memory_equal(yu, ((uint32_t[]){5, 1}), 2 * sizeof(uint32_t));
    free(yu);
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, GR_DTYPE_F32, 1, (int64_t[]){3});
    node(g, GR_OP_SUM, 1, &x, 1);
    void *in_data[1] = {b}, *outs[MAXV];
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    assert_memory_equal(outs[0], b, sizeof b);
    free_outs(g, outs);
}

/* ---- unary ---- */

typedef void (*attr_fn)(gr_graph *g, gr_node *n);

static void *run_unary(gr_op op, gr_dtype dt, int64_t count, const void *x, attr_fn attrs) {
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *in = input(g, dt, 1, (int64_t[]){count});
    gr_node *n = node(g, op, 1, &in, 1);
    if (attrs) attrs(g, n);
    void *in_data[1] = {(void *)x}, *outs[MAXV];
    gr_code rc = run(g, in_data, outs, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    void *y = outs[0];
    gr_graph_free(g);
    return y;
}

static void test_unary_basic_f32(void **state) {
    (void)state;
    float x[] = {-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f, -0.0f, 3.7f, -3.7f, 4.0f, NAN, INFINITY};
    int count = 12;
    static const gr_op ops[] = {GR_OP_NEG, GR_OP_ABS, GR_OP_SQRT, GR_OP_RECIPROCAL, GR_OP_FLOOR,
                                GR_OP_CEIL, GR_OP_ROUND, GR_OP_SIGN, GR_OP_RELU};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        float *y = run_unary(ops[o], GR_DTYPE_F32, count, x, NULL);
        for (int i = 0; i < count; i++) {
            double v = x[i], w;
            switch (ops[o]) {
            case GR_OP_NEG: w = -v; break;
            case GR_OP_ABS: w = fabs(v); break;
            case GR_OP_SQRT: w = sqrtf(x[i]); break;
            case GR_OP_RECIPROCAL: w = 1.0f / x[i]; break;
            case GR_OP_FLOOR: w = floor(v); break;
            case GR_OP_CEIL: w = ceil(v); break;
            case GR_OP_ROUND: w = nearbyint(v); break; /* default mode: half to even */
            case GR_OP_SIGN: w = isnan(v) ? NAN : v > 0 ? 1 : v < 0 ? -1 : 0; break;
            default: w = isnan(v) ? NAN : v > 0 ? v : 0; break;
            }
            CHECK_CLOSE(y[i], w, 0, 0, i);
        }
        free(y);
    }
    /* ONNX round example */
    float r[] = {0.1f, 0.5f, 0.9f, 1.2f, 1.5f, 1.8f, 2.3f, 2.5f, 2.7f, -1.1f, -1.5f, -1.9f, -2.2f, -2.5f, -2.8f};
    float rw[] = {0, 0, 1, 1, 2, 2, 2, 2, 3, -1, -2, -2, -2, -2, -3};
    float *y = run_unary(GR_OP_ROUND, GR_DTYPE_F32, 15, r, NULL);
    assert_memory_equal(y, rw, sizeof rw);
    free(y);
}

static void test_unary_int(void **state) {
    (void)state;
    int32_t x[] = {-7, 0, 5, INT32_MIN + 1};
    int32_t *y = run_unary(GR_OP_NEG, GR_DTYPE_I32, 4, x, NULL);
    assert_memory_equal(y, ((int32_t[]){7, 0, -5, INT32_MAX}), 16);
    free(y);
    y = run_unary(GR_OP_ABS, GR_DTYPE_I32, 4, x, NULL);
    assert_memory_equal(y, ((int32_t[]){7, 0, 5, INT32_MAX}), 16);
    free(y);
    y = run_unary(GR_OP_SIGN, GR_DTYPE_I32, 4, x, NULL);
    assert_memory_equal(y, ((int32_t[]){-1, 0, 1, -1}), 16);
    free(y);
    y = run_unary(GR_OP_RELU, GR_DTYPE_I32, 4, x, NULL);
    assert_memory_equal(y, ((int32_t[]){0, 0, 5, 0}), 16);
    free(y);
    int8_t x8[] = {-128, -3, 3, 127};
    int8_t *y8 = run_unary(GR_OP_ABS, GR_DTYPE_I8, 4, x8, NULL);
    assert_memory_equal(y8, ((int8_t[]){-128, 3, 3, 127}), 4);
    free(y8);
    uint8_t xu[] = {0, 3, 200};
    uint8_t *yu = run_unary(GR_OP_SIGN, GR_DTYPE_U8, 3, xu, NULL);
    assert_memory_equal(yu, ((uint8_t[]){0, 1, 1}), 3);
    free(yu);
}

/* ---- transcendental accuracy (ulp against libm in double) ---- */

static double ulps(float got, double want) {
    if (isnan(want)) return isnan(got) ? 0 : 1e30;
    float w = (float)want;
    if (isinf(w) || isinf(got)) return got == w ? 0 : 1e30;
    double ulp = (double)nextafterf(fabsf(w), INFINITY) - fabsf(w);
    return fabs((double)got - want) / ulp;
}

static double ref_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double ref_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static void check_ulps(gr_op op, double (*ref)(double), const float *x, int count, double max_ulp) {
    float *y = run_unary(op, GR_DTYPE_F32, count, x, NULL);
    double worst = 0;
    int at = 0;
    for (int i = 0; i < count; i++) {
        double u = ulps(y[i], ref(x[i]));
        if (u > worst) { worst = u; at = i; }
    }
    if (worst > max_ulp)
        fail_msg("%s: %.2f ulp at x=%.9g (got %.9g, want %.9g)", gr_op_name(op), worst, x[at],
                 y[at], ref(x[at]));
    free(y);
}

static void test_transcendental_f32_ulps(void **state) {
    (void)state;
    enum { N = 40000 };
    static float x[N + 20];
    int count = 0;
    for (int i = 0; i < N; i++) { /* log-spaced magnitudes, both signs */
        double m = pow(10.0, -40.0 + 42.5 * (i / 2) / (N / 2.0));
        x[count++] = (float)(i % 2 ? -m : m);
    }
    float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.72f, 88.73f, -87.5f, -103.0f,
                       -104.5f, 1e-45f, 0.625f, -0.625f, 1.0f, 3.24f, 4.5f};
    for (int i = 0; i < 16; i++) x[count++] = special[i];
    check_ulps(GR_OP_EXP, exp, x, count, 2);
    check_ulps(GR_OP_TANH, tanh, x, count, 4);
    check_ulps(GR_OP_SIGMOID, ref_sigmoid, x, count, 4);
    check_ulps(GR_OP_ERF, erf, x, count, 8);
    check_ulps(GR_OP_SOFTPLUS, ref_softplus, x, count, 4);
    for (int i = 0; i < count; i++) x[i] = fabsf(x[i]) * (i % 7 == 0 ? -1.0f : 1.0f);
    x[count++] = 3.4028235e38f;
    x[count++] = 1.4e-45f;
    check_ulps(GR_OP_LOG, log, x, count, 2);
}

/* ---- activations ---- */

static void set_alpha(gr_graph *g, gr_node *n) { assert_int_equal(gr_node_set_float(g, n, "alpha", 0.3), GR_OK); }
static void set_gelu_tanh(gr_graph *g, gr_node *n) {
    assert_int_equal(gr_node_set_string(g, n, "approximate", "tanh"), GR_OK);
}

static double ref_activation(gr_op op, double x, int custom) {
    double a;
    switch (op) {
    case GR_OP_LEAKY_RELU: a = custom ? (float)0.3 : (float)0.01; return x < 0 ? a * x : x;
    case GR_OP_ELU: a = custom ? (float)0.3 : 1.0; return x < 0 ? a * expm1(x) : x;
    case GR_OP_SELU:
        return (double)(float)1.05070102214813232421875 *
               (x > 0 ? x : (double)(float)1.67326319217681884765625 * expm1(x));
    case GR_OP_HARD_SIGMOID: a = custom ? (float)0.3 : (float)0.2; return fmax(0, fmin(1, a * x + 0.5));
    case GR_OP_HARD_SWISH: return x * fmax(0, fmin(1, x / 6 + 0.5));
    case GR_OP_SOFTSIGN: return x / (1 + fabs(x));
    case GR_OP_GELU:
        if (custom) return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
        return 0.5 * x * (1 + erf(x / sqrt(2)));
    default: return NAN;
    }
}

static void test_activations_f32(void **state) {
    (void)state;
    enum { N = 401 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = -10.0f + 20.0f * (float)i / (N - 1);
    static const gr_op ops[] = {GR_OP_LEAKY_RELU, GR_OP_ELU, GR_OP_SELU, GR_OP_HARD_SIGMOID,
                                GR_OP_HARD_SWISH, GR_OP_SOFTSIGN, GR_OP_GELU};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
        for (int custom = 0; custom < 2; custom++) {
            attr_fn f = !custom ? NULL : ops[o] == GR_OP_GELU ? set_gelu_tanh
                        : (ops[o] == GR_OP_SELU || ops[o] == GR_OP_HARD_SWISH || ops[o] == GR_OP_SOFTSIGN)
                            ? NULL : set_alpha;
            float *y = run_unary(ops[o], GR_DTYPE_F32, N, x, f);
            for (int i = 0; i < N; i++)
                CHECK_CLOSE(y[i], ref_activation(ops[o], x[i], custom), 2e-6, 1e-6, i);
            free(y);
        }
}

static void test_prelu_broadcast_slope(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    /* X:[2,3,2] slope:[3,1] */
    float x[12], slope[3] = {0.1f, 0.2f, 0.3f};
    for (int i = 0; i < 12; i++) x[i] = (float)(i - 6);
    gr_value *ins[2] = {input(g, GR_DTYPE_F32, 3, (int64_t[]){2, 3, 2}),
                        constant(g, GR_DTYPE_F32, 2, (int64_t[]){3, 1}, slope)};
    node(g, GR_OP_PRELU, 2, ins, 1);
    void *in_data[1] = {x}, *outs[MAXV];
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    for (int i = 0; i < 12; i++)
        CHECK_CLOSE(((float *)outs[0])[i], x[i] < 0 ? slope[(i / 2) % 3] * x[i] : x[i], 0, 0, i);
    free_outs(g, outs);
    /* a slope of higher rank with leading 1s: X:[3] slope:[1,3] -> [3] */
    g = gr_graph_new("t");
    gr_value *ins2[2] = {input(g, GR_DTYPE_F32, 1, (int64_t[]){3}),
                         constant(g, GR_DTYPE_F32, 2, (int64_t[]){1, 3}, slope)};
    node(g, GR_OP_PRELU, 2, ins2, 1);
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    for (int i = 0; i < 3; i++) CHECK_CLOSE(((float *)outs[0])[i], slope[i] * x[i], 0, 0, i);
    free_outs(g, outs);
}

/* ---- Clip, Where ---- */

static void test_clip_bounds(void **state) {
    (void)state;
    float x[] = {-3, -1, 0, 0.5f, 2, 9, NAN};
    float lo = -1.5f, hi = 1.0f;
    for (int form = 0; form < 4; form++) { /* const both, runtime both, max only, none */
        gr_status st = {0};
        gr_graph *g = gr_graph_new("t");
        gr_value *ins[3] = {input(g, GR_DTYPE_F32, 1, (int64_t[]){7}), NULL, NULL};
        if (form == 0) {
            ins[1] = constant(g, GR_DTYPE_F32, 0, NULL, &lo);
            ins[2] = constant(g, GR_DTYPE_F32, 0, NULL, &hi);
        } else if (form == 1) {
            ins[1] = input(g, GR_DTYPE_F32, 0, NULL);
            ins[2] = input(g, GR_DTYPE_F32, 1, (int64_t[]){1});
        } else if (form == 2) {
            ins[2] = constant(g, GR_DTYPE_F32, 0, NULL, &hi);
        }
        node(g, GR_OP_CLIP, form == 3 ? 1 : 3, ins, 1);
        void *in_data[3] = {x, &lo, &hi}, *outs[MAXV];
        assert_int_equal(run(g, in_data, outs, &st), GR_OK);
        for (int i = 0; i < 7; i++) {
            double w = x[i];
            if (form < 2 && w < lo) w = lo;
            if (form < 3 && w > hi) w = hi;
            CHECK_CLOSE(((float *)outs[0])[i], w, 0, 0, i);
        }
        free_outs(g, outs);
    }
    /* integer Clip with constant bounds */
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    int64_t xi[] = {-100, -5, 0, 5, 100}, bl = -4, bh = 6;
    gr_value *ins[3] = {input(g, GR_DTYPE_I64, 1, (int64_t[]){5}), constant(g, GR_DTYPE_I64, 0, NULL, &bl),
                        constant(g, GR_DTYPE_I64, 0, NULL, &bh)};
    node(g, GR_OP_CLIP, 3, ins, 1);
    void *in_data[1] = {xi}, *outs[MAXV];
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    assert_memory_equal(outs[0], ((int64_t[]){-4, -4, 0, 5, 6}), 5 * sizeof(int64_t));
    free_outs(g, outs);
}

static void test_where_broadcast(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    /* cond:[2,1,3] a:[4,1] b:[] -> [2,4,3] */
    uint8_t c[] = {1, 0, 1, 0, 1, 1};
    int32_t a[] = {10, 20, 30, 40}, b = -1;
    gr_value *ins[3] = {input(g, GR_DTYPE_BOOL, 3, (int64_t[]){2, 1, 3}),
                        input(g, GR_DTYPE_I32, 2, (int64_t[]){4, 1}), input(g, GR_DTYPE_I32, 0, NULL)};
    node(g, GR_OP_WHERE, 3, ins, 1);
    void *in_data[3] = {c, a, &b}, *outs[MAXV];
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    const int32_t *y = outs[0];
    for (int i = 0; i < 24; i++) {
        int n = i / 12, r = (i / 3) % 4, col = i % 3;
        assert_int_equal(y[i], c[n * 3 + col] ? a[r] : b);
    }
    free_outs(g, outs);
}

/* ---- Cast, CastLike, Dropout ---- */

static const gr_dtype all_dtypes[] = {GR_DTYPE_F32, GR_DTYPE_F64, GR_DTYPE_F16, GR_DTYPE_BF16,
                                      GR_DTYPE_I8, GR_DTYPE_U8, GR_DTYPE_I16, GR_DTYPE_U16,
                                      GR_DTYPE_I32, GR_DTYPE_U32, GR_DTYPE_I64, GR_DTYPE_U64,
                                      GR_DTYPE_BOOL};

static int cg_dtype_signed_ref(gr_dtype t) {
    return t == GR_DTYPE_I8 || t == GR_DTYPE_I16 || t == GR_DTYPE_I32 || t == GR_DTYPE_I64;
}

/* Values every dtype holds exactly (and 2.5 / -3 where the source allows). */
static void cast_from(gr_dtype from, int like) {
    enum { ND = sizeof all_dtypes / sizeof *all_dtypes };
    double vals[10] = {0, 1, 2, 3, 7, 100, 127, 0, 0, 0};
    int count = from == GR_DTYPE_BOOL ? 2 : 7, neg = -1;
    if (gr_dtype_is_float(from)) vals[count++] = 2.5;
    if (gr_dtype_is_float(from) || cg_dtype_signed_ref(from)) {
        neg = count;
        vals[count++] = -3;
    }
    unsigned char in[80], like_data[ND][8] = {{0}};
    for (int i = 0; i < count; i++) gr_dtype_store_f64(from, in, i, vals[i]);
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, from, 1, (int64_t[]){count});
    for (int t = 0; t < ND; t++) { /* one Cast (or CastLike) per target dtype */
        gr_value *ins[2] = {x, like ? constant(g, all_dtypes[t], 1, (int64_t[]){1}, like_data[t]) : NULL};
        gr_node *n = node(g, like ? GR_OP_CAST_LIKE : GR_OP_CAST, like ? 2 : 1, ins, 1);
        if (!like) assert_int_equal(gr_node_set_int(g, n, "to", all_dtypes[t]), GR_OK);
    }
    void *in_data[1] = {in}, *outs[MAXV];
    skip_split_check = 1; /* every kernel here is one task */
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    skip_split_check = 0;
    for (int t = 0; t < ND; t++) {
        gr_dtype to = all_dtypes[t];
        for (int i = 0; i < count; i++) {
            if (i == neg && !(gr_dtype_is_float(to) || cg_dtype_signed_ref(to) || to == GR_DTYPE_BOOL))
                continue; /* negative to unsigned is undefined */
            double w = to == GR_DTYPE_BOOL ? vals[i] != 0
                       : gr_dtype_is_float(to) ? vals[i] : trunc(vals[i]);
            double got = gr_dtype_load_f64(to, outs[t], i);
            if (got != w)
                fail_msg("cast %s -> %s of %g: got %g", gr_dtype_name(from), gr_dtype_name(to),
                         vals[i], got);
        }
    }
    free_outs(g, outs);
}

static void test_cast_all_pairs(void **state) {
    (void)state;
    size_t nd = sizeof all_dtypes / sizeof *all_dtypes;
    for (size_t a = 0; a < nd; a++) cast_from(all_dtypes[a], 0);
    cast_from(GR_DTYPE_F32, 1);
}

static void set_to_i32(gr_graph *g, gr_node *n) { assert_int_equal(gr_node_set_int(g, n, "to", GR_DTYPE_I32), GR_OK); }
static void set_to_f16(gr_graph *g, gr_node *n) { assert_int_equal(gr_node_set_int(g, n, "to", GR_DTYPE_F16), GR_OK); }

static void test_cast_rounding(void **state) {
    (void)state;
    float f[] = {-2.7f, 2.7f, -0.5f, 65535.9f};
    int32_t *yi = run_unary(GR_OP_CAST, GR_DTYPE_F32, 4, f, set_to_i32);
    assert_memory_equal(yi, ((int32_t[]){-2, 2, 0, 65535}), 16);
    free(yi);
    /* 1 + 2^-11 + 2^-40 rounds up to 1 + 2^-10 in half directly, but to 1
     * through float then half (double rounding) */
    double d[] = {1.0 + 0x1p-11 + 0x1p-40, 65520.0, -0.0};
    uint16_t *yh = run_unary(GR_OP_CAST, GR_DTYPE_F64, 3, d, set_to_f16);
    assert_int_equal(yh[0], 0x3c01);
    assert_int_equal(yh[1], 0x7c00); /* overflows to inf */
    assert_int_equal(yh[2], 0x8000);
    free(yh);
}

/* CastLike's 'like' only gives the dtype: its shape need not broadcast. */
static void test_castlike_ignores_like_shape(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    float x[] = {1.5f, -2.0f, 3.25f};
    gr_value *ins[2] = {input(g, GR_DTYPE_F32, 1, (int64_t[]){3}),
                        input(g, GR_DTYPE_F64, 2, (int64_t[]){2, 2})};
    node(g, GR_OP_CAST_LIKE, 2, ins, 1);
    double like[4] = {0};
    void *in_data[2] = {x, like}, *outs[MAXV];
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    assert_memory_equal(outs[0], ((double[]){1.5, -2.0, 3.25}), 3 * sizeof(double));
    free_outs(g, outs);
}

static void test_dropout_inference(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    float x[] = {1, -2, 3, 4, 5, 6};
    float ratio = 0.3f;
    gr_value *ins[2] = {input(g, GR_DTYPE_F32, 2, (int64_t[]){2, 3}),
                        constant(g, GR_DTYPE_F32, 0, NULL, &ratio)};
    node(g, GR_OP_DROPOUT, 2, ins, 2);
    void *in_data[1] = {x}, *outs[MAXV];
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    assert_memory_equal(outs[0], x, sizeof x);
    assert_memory_equal(outs[1], ((uint8_t[]){1, 1, 1, 1, 1, 1}), 6);
    free_outs(g, outs);
    /* training with ratio 0 is the identity */
    g = gr_graph_new("t");
    float zero = 0;
    uint8_t train = 1;
    gr_value *ins4[3] = {input(g, GR_DTYPE_F32, 1, (int64_t[]){6}), constant(g, GR_DTYPE_F32, 0, NULL, &zero),
                         constant(g, GR_DTYPE_BOOL, 0, NULL, &train)};
    node(g, GR_OP_DROPOUT, 3, ins4, 2);
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    assert_memory_equal(outs[0], x, sizeof x);
    free_outs(g, outs);
}

/* Dropout with ratio and training_mode as run-time inputs (ONNX's
 * test_training_dropout* take them so): training with ratio r keeps each
 * element with probability 1 - r, scaled by 1/(1 - r) exactly as f32
 * arithmetic gives it, mask true where kept; not training, or r = 0, is
 * the identity with an all-true mask. The draws are graft's own (ONNX's
 * expected values come from numpy's generator), so the kept fraction is
 * checked against the binomial law (5 standard deviations). */
static void run_dropout(const float *x, int64_t n, float r, uint8_t t, void **outs) {
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *ins[3] = {input(g, GR_DTYPE_F32, 1, &n), input(g, GR_DTYPE_F32, 0, NULL),
                        input(g, GR_DTYPE_BOOL, 0, NULL)};
    node(g, GR_OP_DROPOUT, 3, ins, 2);
    void *in_data[3] = {(void *)x, &r, &t};
    assert_int_equal(run(g, in_data, outs, &st), GR_OK);
    gr_graph_free(g);
}

static void test_dropout_runtime_inputs(void **state) {
    (void)state;
    enum { N = 20000 };
    float *x = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = (float)(i % 97) - 48.5f;
    const float r = 0.3f;
    const float scale = (float)(1.0 / (1.0 - (double)r));
    void *a[MAXV], *b[MAXV];
    run_dropout(x, N, r, 1, a);
    run_dropout(x, N, r, 1, b);
    const float *y = a[0];
    const uint8_t *mask = a[1];
    int kept = 0;
    for (int i = 0; i < N; i++) {
        if (mask[i]) kept++;
        float want = mask[i] ? x[i] * scale : 0.0f;
        if (y[i] != want) fail_msg("element %d: %g, expected %g (mask %d)", i, y[i], want, mask[i]);
    }
    double mean = N * (1.0 - r), sd = sqrt(N * (double)r * (1.0 - r));
    assert_true(fabs(kept - mean) < 5 * sd);
    assert_memory_equal(a[0], b[0], sizeof(float) * N); /* deterministic */
    assert_memory_equal(a[1], b[1], N);
    free(a[0]), free(a[1]), free(b[0]), free(b[1]);
    for (int c = 0; c < 2; c++) { /* not training; training with ratio 0 */
        run_dropout(x, N, c ? 0.0f : r, (uint8_t)c, a);
        assert_memory_equal(a[0], x, sizeof(float) * N);
        for (int i = 0; i < N; i++) assert_int_equal(((uint8_t *)a[1])[i], 1);
        free(a[0]), free(a[1]);
    }
    free(x);
}

/* ---- f16, bf16, f64 ---- */

static void test_half_types(void **state) {
    (void)state;
    gr_dtype types[2] = {GR_DTYPE_F16, GR_DTYPE_BF16};
    for (int t = 0; t < 2; t++) {
        unsigned char a[16], b[16];
        double va[] = {1.5, -2.25, 3.0, 0.125, 100, -0.5, 7, 2};
        double vb[] = {0.5, 4.0, -1.0, 8, 0.25, 2, 3, 2};
        for (int i = 0; i < 8; i++) {
            gr_dtype_store_f64(types[t], a, i, va[i]);
            gr_dtype_store_f64(types[t], b, i, vb[i]);
        }
        static const gr_op ops[] = {GR_OP_ADD, GR_OP_MUL, GR_OP_DIV};
        for (int o = 0; o < 3; o++) {
            unsigned char *y = run_binary(ops[o], types[t], types[t], 8, a, b, NULL, 0);
            for (int i = 0; i < 8; i++) {
                unsigned char w[2];
                gr_dtype_store_f64(types[t], w, 0, (float)ref_binary(ops[o], va[i], vb[i]));
                assert_memory_equal(y + 2 * i, w, 2);
            }
            free(y);
        }
        unsigned char *y = run_unary(GR_OP_SIGMOID, types[t], 8, a, NULL);
        for (int i = 0; i < 8; i++)
            CHECK_CLOSE(gr_dtype_load_f64(types[t], y, i), ref_sigmoid(va[i]), t ? 8e-3 : 1e-3, 0, i);
        free(y);
    }
}

static void test_f64_math(void **state) {
    (void)state;
    double x[] = {-30, -3.5, -1, -1e-5, 0, 1e-300, 0.3, 1, 2.5, 40, 700};
    static const gr_op ops[] = {GR_OP_EXP, GR_OP_TANH, GR_OP_ERF, GR_OP_SIGMOID, GR_OP_SOFTPLUS,
                                GR_OP_ELU};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        double *y = run_unary(ops[o], GR_DTYPE_F64, 11, x, NULL);
        for (int i = 0; i < 11; i++) {
            double w;
            switch (ops[o]) {
            case GR_OP_EXP: w = exp(x[i]); break;
            case GR_OP_TANH: w = tanh(x[i]); break;
            case GR_OP_ERF: w = erf(x[i]); break;
            case GR_OP_SIGMOID: w = ref_sigmoid(x[i]); break;
            case GR_OP_SOFTPLUS: w = ref_softplus(x[i]); break;
            default: w = x[i] < 0 ? expm1(x[i]) : x[i]; break;
            }
            CHECK_CLOSE(y[i], w, 1e-14, 0, i);
        }
        free(y);
    }
    double p[] = {0.5, 4, 1e-3};
    double *y = run_unary(GR_OP_LOG, GR_DTYPE_F64, 3, p, NULL);
    for (int i = 0; i < 3; i++) CHECK_CLOSE(y[i], log(p[i]), 1e-15, 0, i);
    free(y);
}

static void set_gelu_bad(gr_graph *g, gr_node *n) {
    assert_int_equal(gr_node_set_string(g, n, "approximate", "fast"), GR_OK);
}

static void test_unsupported_attribute_is_reported(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, GR_DTYPE_F32, 1, (int64_t[]){4});
    gr_node *n = node(g, GR_OP_GELU, 1, &x, 1);
    set_gelu_bad(g, n);
    void *outs[MAXV];
    float in[4] = {0};
    void *in_data[1] = {in};
    assert_int_equal(run(g, in_data, outs, &st), GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "approximate"));
    for (int i = 0; i < g->n_outputs; i++) free(outs[i]);
    gr_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_f32_broadcasting),
        cmocka_unit_test(test_int_div_mod_semantics),
        cmocka_unit_test(test_float_mod),
        cmocka_unit_test(test_pow_dtypes),
        cmocka_unit_test(test_pow_constant_exponent),
        cmocka_unit_test(test_arith_all_numeric_dtypes),
        cmocka_unit_test(test_empty_tensor),
        cmocka_unit_test(test_compare_ops),
        cmocka_unit_test(test_logic_ops_broadcast),
        cmocka_unit_test(test_variadic_max_min_sum_mean),
        cmocka_unit_test(test_unary_basic_f32),
        cmocka_unit_test(test_unary_int),
        cmocka_unit_test(test_transcendental_f32_ulps),
        cmocka_unit_test(test_activations_f32),
        cmocka_unit_test(test_prelu_broadcast_slope),
        cmocka_unit_test(test_clip_bounds),
        cmocka_unit_test(test_where_broadcast),
        cmocka_unit_test(test_cast_all_pairs),
        cmocka_unit_test(test_cast_rounding),
        cmocka_unit_test(test_castlike_ignores_like_shape),
        cmocka_unit_test(test_dropout_inference),
        cmocka_unit_test(test_dropout_runtime_inputs),
        cmocka_unit_test(test_half_types),
        cmocka_unit_test(test_f64_math),
        cmocka_unit_test(test_unsupported_attribute_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL) != 0;
}
