/* test_shapes.c: shape rules of shape_nn.c and shape_tensor.c against
 * shapes worked out from the ONNX spec (its examples where it has one),
 * symbolic dims, and every error path. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ir/gr_ir.h"

/* ----------------------------------------------------------------- helpers */

/* "N,3,?,224" -> shape: numbers are extents, '?' is anonymous, a name is a
 * symbol; "" is a scalar and NULL an unknown rank. */
static gr_shape parse_shape(gr_graph *g, const char *text) {
    if (!text) return gr_shape_unknown();
    gr_shape s = gr_shape_scalar();
    const char *p = text;
    while (*p) {
        char tok[32];
        size_t len = strcspn(p, ",");
        assert_true(len < sizeof tok);
        memcpy(tok, p, len);
        tok[len] = '\0';
        int i = s.rank++;
        if (tok[0] == '?')
            s.dims[i] = GR_DIM_DYNAMIC;
        else if (tok[0] >= '0' && tok[0] <= '9')
            s.dims[i] = strtoll(tok, NULL, 10);
        else
            assert_int_equal(gr_graph_set_dim_symbol(g, &s, i, tok), GR_OK);
        p += len;
        if (*p == ',') p++;
    }
    return s;
}

static gr_value *input(gr_graph *g, const char *name, gr_dtype t, const char *shape) {
    gr_shape s = parse_shape(g, shape);
    gr_value *v = gr_graph_add_input(g, name, t, &s);
    assert_non_null(v);
    return v;
}

static gr_value *const_i64(gr_graph *g, const char *name, int count, const int64_t *v) {
    gr_shape s = gr_shape_make(1, (int64_t[]){count});
    gr_value *c = gr_graph_add_data(g, GR_VALUE_CONST, name, GR_DTYPE_I64, &s, v);
    assert_non_null(c);
    return c;
}

static gr_value *const_f32(gr_graph *g, const char *name, int count, const float *v) {
    gr_shape s = gr_shape_make(1, (int64_t[]){count});
    gr_value *c = gr_graph_add_data(g, GR_VALUE_CONST, name, GR_DTYPE_F32, &s, v);
    assert_non_null(c);
    return c;
}

static gr_value *scalar_i64(gr_graph *g, const char *name, int64_t v) {
    gr_shape s = gr_shape_scalar();
    gr_value *c = gr_graph_add_data(g, GR_VALUE_CONST, name, GR_DTYPE_I64, &s, &v);
    assert_non_null(c);
    return c;
}

#define I64S(...)                                                                                  \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]) {                       \
        __VA_ARGS__                                                                                \
    }
#define INS(...)                                                                                   \
    (int)(sizeof((gr_value *[]){__VA_ARGS__}) / sizeof(gr_value *)), (gr_value *[]) {              \
        __VA_ARGS__                                                                                \
    }

static gr_node *node(gr_graph *g, gr_op op, int n_inputs, gr_value *const *inputs) {
    gr_node *n = gr_node_add(g, op, NULL, n_inputs, inputs, 1, NULL);
    assert_non_null(n);
    return n;
}

static void set_ints(gr_graph *g, gr_node *n, const char *name, int count, const int64_t *v) {
    assert_int_equal(gr_node_set_ints(g, n, name, count, v), GR_OK);
}

/* Runs n's rule and checks output i against dtype t and shape text. */
static void expect_out(gr_graph *g, gr_node *n, int i, gr_dtype t, const char *shape) {
    gr_status st = {0};
    gr_code rc = gr_node_infer(g, n, &st);
    if (rc != GR_OK) fail_msg("shape rule failed: %s", st.msg);
    char got[256];
    gr_shape_str(&n->outputs[i]->shape, got, sizeof got);
    char want[256];
    snprintf(want, sizeof want, shape ? "[%s]" : "[?]", shape ? shape : "");
    if (strcmp(got, want) || n->outputs[i]->dtype != t)
        fail_msg("output %d is %s%s, expected %s%s", i, gr_dtype_name(n->outputs[i]->dtype), got,
                 gr_dtype_name(t), want);
}

static void expect(gr_graph *g, gr_node *n, gr_dtype t, const char *shape) {
    expect_out(g, n, 0, t, shape);
}

/* The rule fails with GR_ERR_BAD_MODEL and a message holding every word. */
static void expect_fail(gr_graph *g, gr_node *n, const char *w1, const char *w2) {
    gr_status st = {0};
    gr_code rc = gr_node_infer(g, n, &st);
    if (rc != GR_ERR_BAD_MODEL)
        fail_msg("node %s: got %s (%s), expected an error with '%s'", n->name, gr_code_name(rc),
                 st.msg, w1);
    if (!strstr(st.msg, w1) || (w2 && !strstr(st.msg, w2)))
        fail_msg("message '%s' lacks '%s'/'%s'", st.msg, w1, w2 ? w2 : "");
    assert_non_null(strstr(st.msg, n->name)); /* names the node */
}

#define F32 GR_DTYPE_F32
#define I64 GR_DTYPE_I64

/* ---------------------------------------------------------------- matmul */

static void test_matmul_batches_and_1d_promotion(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = input(g, "a", F32, "N,1,3,4"), *b = input(g, "b", F32, "7,4,5");
    expect(g, node(g, GR_OP_MATMUL, INS(a, b)), F32, "N,7,3,5");
    gr_value *v = input(g, "v", F32, "4"), *m = input(g, "m", F32, "4,5");
    expect(g, node(g, GR_OP_MATMUL, INS(v, m)), F32, "5");
    gr_value *m2 = input(g, "m2", F32, "3,4");
    expect(g, node(g, GR_OP_MATMUL, INS(m2, v)), F32, "3");
    expect(g, node(g, GR_OP_MATMUL, INS(v, v)), F32, "");
    gr_value *d = input(g, "d", F32, "B,S,?");
    expect(g, node(g, GR_OP_MATMUL, INS(d, m)), F32, "B,S,5");
    gr_value *u = input(g, "u", F32, NULL);
    expect(g, node(g, GR_OP_MATMUL, INS(u, m)), F32, NULL);
    gr_graph_free(g);
}

static void test_matmul_rejects_inner_dim_mismatch(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = input(g, "a", F32, "3,4"), *b = input(g, "b", F32, "5,6");
    expect_fail(g, node(g, GR_OP_MATMUL, INS(a, b)), "inner dims differ", "K=4");
    gr_value *c = input(g, "c", F32, "2,3,4"), *d = input(g, "d", F32, "3,4,5");
    expect_fail(g, node(g, GR_OP_MATMUL, INS(c, d)), "do not broadcast", NULL);
    gr_value *i = input(g, "i", GR_DTYPE_I32, "4,5");
    expect_fail(g, node(g, GR_OP_MATMUL, INS(a, i)), "expected f32", NULL);
    gr_graph_free(g);
}

static void test_gemm_transposes_and_bias(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* ONNX gemm_all_attributes: a [4,3] transA, b [5,4] transB, c [1,5] -> [3,5] */
    gr_value *a = input(g, "a", F32, "4,3"), *b = input(g, "b", F32, "5,4");
    gr_value *c = input(g, "c", F32, "1,5");
    gr_node *n = node(g, GR_OP_GEMM, INS(a, b, c));
    gr_node_set_int(g, n, "transA", 1);
    gr_node_set_int(g, n, "transB", 1);
    expect(g, n, F32, "3,5");
    gr_value *x = input(g, "x", F32, "N,4"), *w = input(g, "w", F32, "4,10");
    expect(g, node(g, GR_OP_GEMM, INS(x, w)), F32, "N,10");
    gr_graph_free(g);
}

static void test_gemm_rejects_k_mismatch_and_bad_bias(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = input(g, "a", F32, "3,4"), *b = input(g, "b", F32, "5,6");
    expect_fail(g, node(g, GR_OP_GEMM, INS(a, b)), "K mismatch", "K=4");
    gr_value *b2 = input(g, "b2", F32, "4,6"), *c = input(g, "c", F32, "3,5");
    expect_fail(g, node(g, GR_OP_GEMM, INS(a, b2, c)), "does not broadcast", NULL);
    gr_value *r3 = input(g, "r3", F32, "1,3,4");
    expect_fail(g, node(g, GR_OP_GEMM, INS(r3, b2)), "rank 3", "expected 2");
    gr_graph_free(g);
}

/* ------------------------------------------------------------------ conv */

static void test_conv_strides_pads_from_spec(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* ONNX conv_with_strides_padding / _no_padding / _and_asymmetric_padding */
    gr_value *x = input(g, "x", F32, "1,1,7,5"), *w = input(g, "w", F32, "1,1,3,3");
    gr_node *n = node(g, GR_OP_CONV, INS(x, w));
    set_ints(g, n, "strides", I64S(2, 2));
    set_ints(g, n, "pads", I64S(1, 1, 1, 1));
    expect(g, n, F32, "1,1,4,3");
    set_ints(g, n, "pads", I64S(0, 0, 0, 0));
    expect(g, n, F32, "1,1,3,2");
    set_ints(g, n, "pads", I64S(1, 0, 1, 0));
    expect(g, n, F32, "1,1,4,2");
    /* conv_with_autopad_same: [1,1,5,5], 3x3, strides 2, SAME_LOWER -> 3x3 */
    gr_value *x5 = input(g, "x5", F32, "1,1,5,5");
    gr_node *s = node(g, GR_OP_CONV, INS(x5, w));
    gr_node_set_string(g, s, "auto_pad", "SAME_LOWER");
    set_ints(g, s, "strides", I64S(2, 2));
    expect(g, s, F32, "1,1,3,3");
    gr_node_set_string(g, s, "auto_pad", "VALID");
    expect(g, s, F32, "1,1,2,2");
    /* dilation 2 makes a 3x3 kernel span 5 */
    gr_node *d = node(g, GR_OP_CONV, INS(x5, w));
    set_ints(g, d, "dilations", I64S(2, 2));
    expect(g, d, F32, "1,1,1,1");
    gr_graph_free(g);
}

static void test_conv_keeps_batch_symbol_and_dynamic_dims(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "N,3,H,32"), *w = input(g, "w", F32, "64,3,3,3");
    gr_value *b = input(g, "b", F32, "64");
    gr_node *n = node(g, GR_OP_CONV, INS(x, w, b));
    set_ints(g, n, "strides", I64S(2, 2));
    set_ints(g, n, "pads", I64S(1, 1, 1, 1));
    expect(g, n, F32, "N,64,?,16");
    /* grouped (depthwise-like): C=16, group 2, W [32,8,3,3] */
    gr_value *x2 = input(g, "x2", F32, "1,16,8,8"), *w2 = input(g, "w2", F32, "32,8,3,3");
    gr_node *gn = node(g, GR_OP_CONV, INS(x2, w2));
    gr_node_set_int(g, gn, "group", 2);
    expect(g, gn, F32, "1,32,6,6");
    /* kernel_shape agrees with W; W dims may be unknown */
    gr_value *wd = input(g, "wd", F32, "64,3,?,?");
    gr_node *k = node(g, GR_OP_CONV, INS(x, wd));
    set_ints(g, k, "kernel_shape", I64S(5, 5));
    expect(g, k, F32, "N,64,?,28");
    gr_graph_free(g);
}

static void test_conv_rejects_channel_mismatch(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "1,16,8,8"), *w = input(g, "W", F32, "32,16,3,3");
    gr_node *n = node(g, GR_OP_CONV, INS(x, w));
    gr_node_set_int(g, n, "group", 2);
    expect_fail(g, n, "input 1 ('W') has 16 input channels, expected 8",
                "(X has 16 channels, group 2)");
    gr_value *b = input(g, "b", F32, "16");
    gr_value *w2 = input(g, "w2", F32, "32,16,3,3");
    expect_fail(g, node(g, GR_OP_CONV, INS(x, w2, b)), "expected [32]", NULL);
    gr_node *k = node(g, GR_OP_CONV, INS(x, w2));
    set_ints(g, k, "kernel_shape", I64S(5, 5));
    expect_fail(g, k, "kernel_shape[0] is 5", "is 3");
    gr_node *p = node(g, GR_OP_CONV, INS(x, w2));
    set_ints(g, p, "pads", I64S(1, 1));
    expect_fail(g, p, "'pads' has 2 values", "expected 4");
    gr_value *big = input(g, "big", F32, "32,16,10,10");
    expect_fail(g, node(g, GR_OP_CONV, INS(x, big)), "gives -1", "expected >= 0");
    gr_node *ap = node(g, GR_OP_CONV, INS(x, w2));
    gr_node_set_string(g, ap, "auto_pad", "SAME");
    expect_fail(g, ap, "auto_pad is 'SAME'", NULL);
    gr_value *x3 = input(g, "x3", F32, "1,16");
    expect_fail(g, node(g, GR_OP_CONV, INS(x3, w2)), "rank 2", "expected >= 3");
    gr_graph_free(g);
}

static void test_conv_transpose_from_spec(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* ONNX convtranspose: X [1,1,3,3] W [1,2,3,3] -> [1,2,5,5] */
    gr_value *x = input(g, "x", F32, "N,1,3,3"), *w = input(g, "w", F32, "1,2,3,3");
    expect(g, node(g, GR_OP_CONV_TRANSPOSE, INS(x, w)), F32, "N,2,5,5");
    /* convtranspose_pads: strides [3,2], pads [1,2,1,2] -> [1,2,7,3] */
    gr_node *p = node(g, GR_OP_CONV_TRANSPOSE, INS(x, w));
    set_ints(g, p, "strides", I64S(3, 2));
    set_ints(g, p, "pads", I64S(1, 2, 1, 2));
    expect(g, p, F32, "N,2,7,3");
    /* convtranspose_pad: strides [3,2], output_padding [1,1] -> [1,2,10,8] */
    gr_node *op = node(g, GR_OP_CONV_TRANSPOSE, INS(x, w));
    set_ints(g, op, "strides", I64S(3, 2));
    set_ints(g, op, "output_padding", I64S(1, 1));
    expect(g, op, F32, "N,2,10,8");
    /* convtranspose_output_shape: output_shape [10,8] */
    gr_node *os = node(g, GR_OP_CONV_TRANSPOSE, INS(x, w));
    set_ints(g, os, "strides", I64S(3, 2));
    set_ints(g, os, "output_shape", I64S(10, 8));
    expect(g, os, F32, "N,2,10,8");
    /* convtranspose_autopad_same: strides [2,2], SAME_UPPER -> [1,2,6,6] */
    gr_node *s = node(g, GR_OP_CONV_TRANSPOSE, INS(x, w));
    set_ints(g, s, "strides", I64S(2, 2));
    gr_node_set_string(g, s, "auto_pad", "SAME_UPPER");
    expect(g, s, F32, "N,2,6,6");
    /* group 2: W [C=4, M/group=3, 2, 2] -> M = 6 */
    gr_value *x4 = input(g, "x4", F32, "1,4,?,5"), *w4 = input(g, "w4", F32, "4,3,2,2");
    gr_node *gn = node(g, GR_OP_CONV_TRANSPOSE, INS(x4, w4));
    gr_node_set_int(g, gn, "group", 2);
    expect(g, gn, F32, "1,6,?,6");
    gr_graph_free(g);
}

static void test_conv_transpose_rejects_channel_mismatch(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "1,3,3,3"), *w = input(g, "W", F32, "2,2,3,3");
    expect_fail(g, node(g, GR_OP_CONV_TRANSPOSE, INS(x, w)), "has 2 input channels", "expected 3");
    gr_value *w3 = input(g, "w3", F32, "3,2,3,3");
    gr_node *os = node(g, GR_OP_CONV_TRANSPOSE, INS(x, w3));
    set_ints(g, os, "output_shape", I64S(10, 8, 1));
    expect_fail(g, os, "'output_shape' has 3 values", "expected 2");
    gr_graph_free(g);
}

/* -------------------------------------------------------- normalization */

static void test_batchnorm_outputs_and_training_stats(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "N,3,4,4");
    gr_value *v[4];
    for (int i = 0; i < 4; i++) v[i] = input(g, NULL, F32, "3");
    gr_value *ins[] = {x, v[0], v[1], v[2], v[3]};
    gr_node *n = gr_node_add(g, GR_OP_BATCH_NORM, NULL, 5, ins, 3, NULL);
    gr_node_set_int(g, n, "training_mode", 1);
    expect_out(g, n, 0, F32, "N,3,4,4");
    expect_out(g, n, 1, F32, "3");
    expect_out(g, n, 2, F32, "3");
    gr_value *bad = input(g, "bad", F32, "4");
    gr_value *ins2[] = {x, bad, v[1], v[2], v[3]};
    expect_fail(g, node(g, GR_OP_BATCH_NORM, 5, ins2), "input 1 ('bad') has shape [4]",
                "expected [3]");
    gr_graph_free(g);
}

static void test_layernorm_mean_and_invstddev(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", GR_DTYPE_F16, "B,S,4,5"), *s = input(g, "s", GR_DTYPE_F16, "4,5");
    gr_value *ins[] = {x, s};
    gr_node *n = gr_node_add(g, GR_OP_LAYER_NORM, NULL, 2, ins, 3, NULL);
    gr_node_set_int(g, n, "axis", 2);
    expect_out(g, n, 0, GR_DTYPE_F16, "B,S,4,5");
    expect_out(g, n, 1, F32, "B,S,1,1");
    expect_out(g, n, 2, F32, "B,S,1,1");
    gr_node_set_int(g, n, "axis", -1);
    expect_out(g, n, 1, F32, "B,S,4,1");
    gr_node_set_int(g, n, "axis", 4);
    expect_fail(g, n, "axis 4 is out of range", "rank 4");
    gr_node_set_int(g, n, "axis", 0);
    gr_node_set_int(g, n, "stash_type", 7);
    expect_fail(g, n, "stash_type is 7", "float");
    gr_graph_free(g);
}

static void test_instancenorm_and_lrn(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "N,3,?,8"), *s = input(g, "s", F32, "3");
    gr_value *b = input(g, "b", F32, "3"), *b4 = input(g, "b4", F32, "4");
    expect(g, node(g, GR_OP_INSTANCE_NORM, INS(x, s, b)), F32, "N,3,?,8");
    expect_fail(g, node(g, GR_OP_INSTANCE_NORM, INS(x, s, b4)), "expected [3]", NULL);
    gr_node *l = node(g, GR_OP_LRN, INS(x));
    expect_fail(g, l, "attribute 'size' is required", NULL);
    gr_node_set_int(g, l, "size", 3);
    expect(g, l, F32, "N,3,?,8");
    gr_graph_free(g);
}

/* --------------------------------------------------------------- pooling */

static void test_pool_from_spec(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* maxpool_2d_default: [1,3,32,32] kernel 2 -> [1,3,31,31] */
    gr_value *x = input(g, "x", F32, "1,3,32,32");
    gr_value *ins[] = {x};
    gr_node *m = gr_node_add(g, GR_OP_MAX_POOL, NULL, 1, ins, 2, NULL);
    set_ints(g, m, "kernel_shape", I64S(2, 2));
    expect_out(g, m, 0, F32, "1,3,31,31");
    expect_out(g, m, 1, I64, "1,3,31,31");
    /* maxpool_2d_ceil: [1,1,4,4] kernel 3 strides 2 ceil -> [1,1,2,2] */
    gr_value *x4 = input(g, "x4", F32, "1,1,4,4");
    gr_node *c = node(g, GR_OP_MAX_POOL, INS(x4));
    set_ints(g, c, "kernel_shape", I64S(3, 3));
    set_ints(g, c, "strides", I64S(2, 2));
    gr_node_set_int(g, c, "ceil_mode", 1);
    expect(g, c, F32, "1,1,2,2");
    gr_node_set_int(g, c, "ceil_mode", 0);
    expect(g, c, F32, "1,1,1,1");
    /* maxpool_2d_precomputed_same_upper: [1,1,5,5] kernel 3 strides 2 -> 3x3 */
    gr_value *x5 = input(g, "x5", F32, "1,1,5,5");
    gr_node *s = node(g, GR_OP_MAX_POOL, INS(x5));
    set_ints(g, s, "kernel_shape", I64S(3, 3));
    set_ints(g, s, "strides", I64S(2, 2));
    gr_node_set_string(g, s, "auto_pad", "SAME_UPPER");
    expect(g, s, F32, "1,1,3,3");
    /* averagepool_2d_pads: [1,3,28,28] kernel 3 pads 2 -> [1,3,30,30] */
    gr_value *x28 = input(g, "x28", F32, "N,3,28,28");
    gr_node *a = node(g, GR_OP_AVERAGE_POOL, INS(x28));
    set_ints(g, a, "kernel_shape", I64S(3, 3));
    set_ints(g, a, "pads", I64S(2, 2, 2, 2));
    expect(g, a, F32, "N,3,30,30");
    gr_graph_free(g);
}

/* PaddleOCR's classifier: at 32x32 input a MaxPool with kernel 2 stride 2
 * sees height 1; ONNX Runtime (C division toward zero) keeps one row. */
static void test_maxpool_keeps_single_row_like_onnxruntime(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "1,8,1,2");
    gr_node *m = node(g, GR_OP_MAX_POOL, INS(x));
    set_ints(g, m, "kernel_shape", I64S(2, 2));
    set_ints(g, m, "strides", I64S(2, 2));
    expect(g, m, F32, "1,8,1,1");
    gr_graph_free(g);
}

/* ceil_mode: the last window must start inside the input or left padding
 * (PyTorch MaxPool2d(2, 2, padding=1, ceil_mode=True) on 5 gives 3). */
static void test_pool_ceil_mode_drops_window_starting_in_right_pad(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "N,C,5,H");
    gr_node *m = node(g, GR_OP_MAX_POOL, INS(x));
    set_ints(g, m, "kernel_shape", I64S(2, 2));
    set_ints(g, m, "strides", I64S(2, 2));
    set_ints(g, m, "pads", I64S(1, 1, 1, 1));
    gr_node_set_int(g, m, "ceil_mode", 1);
    expect(g, m, F32, "N,C,3,?");
    gr_graph_free(g);
}

static void test_pool_errors(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "1,3,2,2");
    expect_fail(g, node(g, GR_OP_MAX_POOL, INS(x)), "attribute 'kernel_shape' is required", NULL);
    gr_node *k = node(g, GR_OP_AVERAGE_POOL, INS(x));
    set_ints(g, k, "kernel_shape", I64S(2));
    expect_fail(g, k, "kernel_shape has 1 values", "rank 4");
    gr_node *big = node(g, GR_OP_MAX_POOL, INS(x));
    set_ints(g, big, "kernel_shape", I64S(5, 5));
    expect_fail(g, big, "gives -2", "expected >= 0");
    gr_node *st0 = node(g, GR_OP_MAX_POOL, INS(x));
    set_ints(g, st0, "kernel_shape", I64S(1, 1));
    set_ints(g, st0, "strides", I64S(0, 1));
    expect_fail(g, st0, "'strides'[0] is 0", "expected 1..");
    gr_graph_free(g);
}

static void test_global_pool_and_softmax(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "N,64,H,7");
    expect(g, node(g, GR_OP_GLOBAL_AVERAGE_POOL, INS(x)), F32, "N,64,1,1");
    expect(g, node(g, GR_OP_GLOBAL_MAX_POOL, INS(x)), F32, "N,64,1,1");
    gr_value *v = input(g, "v", F32, "5");
    expect_fail(g, node(g, GR_OP_GLOBAL_MAX_POOL, INS(v)), "rank 1", "expected >= 2");
    gr_node *s = node(g, GR_OP_SOFTMAX, INS(x));
    expect(g, s, F32, "N,64,H,7");
    gr_node_set_int(g, s, "axis", -5);
    expect_fail(g, s, "axis -5 is out of range", NULL);
    gr_node *l = node(g, GR_OP_LOG_SOFTMAX, INS(x));
    gr_node_set_int(g, l, "axis", 1);
    expect(g, l, F32, "N,64,H,7");
    gr_graph_free(g);
}

/* ------------------------------------------------------------ reductions */

static void test_reduce_axes_keepdims_noop(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* reduce_sum_keepdims: [3,2,2] axes [1] -> [3,1,2]; do_not_keepdims -> [3,2] */
    gr_value *x = input(g, "x", F32, "N,2,2"), *ax = const_i64(g, "ax", I64S(1));
    gr_node *n = node(g, GR_OP_REDUCE_SUM, INS(x, ax));
    expect(g, n, F32, "N,1,2");
    gr_node_set_int(g, n, "keepdims", 0);
    expect(g, n, F32, "N,2");
    /* reduce_sum_default_axes_keepdims: no axes reduces everything */
    gr_node *all = node(g, GR_OP_REDUCE_MEAN, INS(x));
    expect(g, all, F32, "1,1,1");
    gr_node_set_int(g, all, "keepdims", 0);
    expect(g, all, F32, "");
    /* reduce_sum_empty_axes_input_noop */
    gr_value *empty = const_i64(g, "empty", 0, NULL);
    gr_node *noop = node(g, GR_OP_REDUCE_SUM, INS(x, empty));
    gr_node_set_int(g, noop, "noop_with_empty_axes", 1);
    expect(g, noop, F32, "N,2,2");
    /* negative axes; unknown axes of known length */
    gr_value *neg = const_i64(g, "neg", I64S(-1, 0));
    expect(g, node(g, GR_OP_REDUCE_MAX, INS(x, neg)), F32, "1,2,1");
    gr_value *dyn = input(g, "dyn", I64, "1");
    gr_node *d = node(g, GR_OP_REDUCE_L2, INS(x, dyn));
    expect(g, d, F32, "?,?,?");
    gr_node_set_int(g, d, "keepdims", 0);
    expect(g, d, F32, "?,?");
    gr_graph_free(g);
}

static void test_reduce_errors(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "3,2,2");
    gr_value *dup = const_i64(g, "dup", I64S(1, -2));
    expect_fail(g, node(g, GR_OP_REDUCE_SUM, INS(x, dup)), "appears twice", NULL);
    gr_value *out = const_i64(g, "out", I64S(3));
    expect_fail(g, node(g, GR_OP_REDUCE_PROD, INS(x, out)), "axis 3 is out of range", "rank 3");
    gr_value *f = const_f32(g, "f", 1, (float[]){1});
    expect_fail(g, node(g, GR_OP_REDUCE_MIN, INS(x, f)), "is f32", "expected i64");
    gr_graph_free(g);
}

static void test_argmax_gives_i64(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "2,S,4");
    gr_node *n = node(g, GR_OP_ARG_MAX, INS(x));
    gr_node_set_int(g, n, "axis", 1);
    expect(g, n, I64, "2,1,4");
    gr_node_set_int(g, n, "keepdims", 0);
    expect(g, n, I64, "2,4");
    gr_node *m = node(g, GR_OP_ARG_MIN, INS(x));
    gr_node_set_int(g, m, "axis", -1);
    expect(g, m, I64, "2,S,1");
    gr_node_set_int(g, m, "axis", 3);
    expect_fail(g, m, "axis 3 is out of range", NULL);
    gr_graph_free(g);
}

/* -------------------------------------------------------------- reshape */

static void test_reshape_constant_shapes(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* reshape_reordered_all_dims etc.: [2,3,4] */
    gr_value *x = input(g, "x", F32, "2,3,4");
    expect(g, node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "s1", I64S(4, -1)))), F32, "4,6");
    expect(g, node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "s2", I64S(2, 0, 4, 1)))), F32, "2,3,4,1");
    expect(g, node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "s3", I64S(-1, 2, 3, 4)))), F32,
           "1,2,3,4");
    /* reshape_allowzero_reordered: [0,3,4] with shape [3,4,0] allowzero */
    gr_value *z = input(g, "z", F32, "0,3,4");
    gr_node *az = node(g, GR_OP_RESHAPE, INS(z, const_i64(g, "s4", I64S(3, 4, 0))));
    gr_node_set_int(g, az, "allowzero", 1);
    expect(g, az, F32, "3,4,0");
    gr_graph_free(g);
}

static void test_reshape_keeps_batch_symbol(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "N,3,4");
    expect(g, node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "s1", I64S(0, -1)))), F32, "N,12");
    gr_value *y = input(g, "y", F32, "N,12");
    expect(g, node(g, GR_OP_RESHAPE, INS(y, const_i64(g, "s2", I64S(-1, 3, 4)))), F32, "N,3,4");
    gr_value *u = input(g, "u", F32, "?,12");
    expect(g, node(g, GR_OP_RESHAPE, INS(u, const_i64(g, "s3", I64S(0, 2, -1)))), F32, "?,2,6");
    /* a shape that is not constant gives its length as the rank */
    gr_value *s = input(g, "s", I64, "3");
    expect(g, node(g, GR_OP_RESHAPE, INS(x, s)), F32, "?,?,?");
    gr_graph_free(g);
}

static void test_reshape_errors(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "2,3,4");
    expect_fail(g, node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "a", I64S(5, 5)))),
                "cannot reshape [2,3,4] (24 elements)", "25 elements");
    expect_fail(g, node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "b", I64S(-1, -1)))),
                "expected at most one", NULL);
    expect_fail(g, node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "c", I64S(5, -1)))),
                "does not divide evenly", NULL);
    expect_fail(g, node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "d", I64S(-2, 12)))),
                "shape[0] is -2", NULL);
    expect_fail(g, node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "e", I64S(1, 1, 1, 0)))),
                "shape[3] is 0", "rank 3");
    gr_node *az = node(g, GR_OP_RESHAPE, INS(x, const_i64(g, "f", I64S(0, -1))));
    gr_node_set_int(g, az, "allowzero", 1);
    expect_fail(g, az, "both 0 and -1", NULL);
    gr_value *f = const_f32(g, "fs", 2, (float[]){4, 6});
    expect_fail(g, node(g, GR_OP_RESHAPE, INS(x, f)), "is f32", "expected i64");
    gr_graph_free(g);
}

static void test_flatten_and_transpose(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* flatten: [2,3,4,5] at axis i -> [prod(:i), prod(i:)] */
    gr_value *x = input(g, "x", F32, "2,3,4,5");
    gr_node *f = node(g, GR_OP_FLATTEN, INS(x));
    static const char *const want[] = {"1,120", "2,60", "6,20", "24,5", "120,1"};
    for (int i = 0; i <= 4; i++) {
        gr_node_set_int(g, f, "axis", i);
        expect(g, f, F32, want[i]);
    }
    gr_node_set_int(g, f, "axis", -1);
    expect(g, f, F32, "24,5");
    gr_node_set_int(g, f, "axis", 5);
    expect_fail(g, f, "axis 5 is out of range", NULL);
    gr_value *n = input(g, "n", F32, "N,3,4,4");
    expect(g, node(g, GR_OP_FLATTEN, INS(n)), F32, "N,48");
    gr_node *t = node(g, GR_OP_TRANSPOSE, INS(n));
    expect(g, t, F32, "4,4,3,N");
    set_ints(g, t, "perm", I64S(0, 2, 3, 1));
    expect(g, t, F32, "N,4,4,3");
    set_ints(g, t, "perm", I64S(0, 2, 1));
    expect_fail(g, t, "perm has 3 values", "expected 4");
    set_ints(g, t, "perm", I64S(0, 2, 2, 1));
    expect_fail(g, t, "perm[2] is 2", "permutation");
    gr_graph_free(g);
}

static void test_squeeze_unsqueeze(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* squeeze: [1,3,4,5] axes [0] -> [3,4,5] */
    gr_value *x = input(g, "x", F32, "1,3,1,5");
    expect(g, node(g, GR_OP_SQUEEZE, INS(x, const_i64(g, "a0", I64S(0)))), F32, "3,1,5");
    expect(g, node(g, GR_OP_SQUEEZE, INS(x)), F32, "3,5");
    expect(g, node(g, GR_OP_SQUEEZE, INS(x, const_i64(g, "an", I64S(-2)))), F32, "1,3,5");
    expect_fail(g, node(g, GR_OP_SQUEEZE, INS(x, const_i64(g, "a1", I64S(1)))),
                "cannot squeeze axis 1 of extent 3", NULL);
    gr_value *d = input(g, "d", F32, "N,1");
    expect(g, node(g, GR_OP_SQUEEZE, INS(d)), F32, NULL);
    /* unsqueeze_two_axes / _unsorted_axes: [3,4,5] axes [2,4] -> [3,4,1,5,1] */
    gr_value *y = input(g, "y", F32, "3,N,5");
    expect(g, node(g, GR_OP_UNSQUEEZE, INS(y, const_i64(g, "u", I64S(4, 2)))), F32, "3,N,1,5,1");
    /* unsqueeze_negative_axes: [1,3,1,5] axes [-2] -> [1,3,1,1,5] */
    expect(g, node(g, GR_OP_UNSQUEEZE, INS(x, const_i64(g, "un", I64S(-2)))), F32, "1,3,1,1,5");
    expect_fail(g, node(g, GR_OP_UNSQUEEZE, INS(y, const_i64(g, "ud", I64S(1, 1)))),
                "appears twice", NULL);
    expect_fail(g, node(g, GR_OP_UNSQUEEZE, INS(y, const_i64(g, "uo", I64S(5)))),
                "axis 5 is out of range", "rank 4");
    gr_value *dyn = input(g, "dyn", I64, "2");
    expect(g, node(g, GR_OP_UNSQUEEZE, INS(y, dyn)), F32, "?,?,?,?,?");
    gr_graph_free(g);
}

/* ---------------------------------------------------- concat, split, gather */

static void test_concat(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = input(g, "a", F32, "N,3"), *b = input(g, "b", F32, "N,5");
    gr_value *c = input(g, "c", F32, "?,2");
    gr_node *n = node(g, GR_OP_CONCAT, INS(a, b, c));
    gr_node_set_int(g, n, "axis", -1);
    expect(g, n, F32, "N,10");
    gr_node *m = node(g, GR_OP_CONCAT, INS(a, a));
    gr_node_set_int(g, m, "axis", 0);
    expect(g, m, F32, "?,3");
    gr_graph_free(g);
}

static void test_concat_errors(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = input(g, "a", F32, "2,3"), *b = input(g, "b", F32, "4,3");
    expect_fail(g, node(g, GR_OP_CONCAT, INS(a, b)), "attribute 'axis' is required", NULL);
    gr_node *n = node(g, GR_OP_CONCAT, INS(a, b));
    gr_node_set_int(g, n, "axis", 1);
    expect_fail(g, n, "input 1 ('b') has dim 0 = 4, expected 2", "off the concat axis");
    gr_value *r = input(g, "r", F32, "2,3,1");
    gr_node *k = node(g, GR_OP_CONCAT, INS(a, r));
    gr_node_set_int(g, k, "axis", 0);
    expect_fail(g, k, "rank 3", "expected 2");
    gr_node_set_int(g, n, "axis", 2);
    expect_fail(g, n, "axis 2 is out of range", NULL);
    gr_value *i = input(g, "i", GR_DTYPE_I32, "2,3");
    gr_node *t = node(g, GR_OP_CONCAT, INS(a, i));
    gr_node_set_int(g, t, "axis", 0);
    expect_fail(g, t, "is i32", "expected f32");
    gr_graph_free(g);
}

static gr_node *split_node(gr_graph *g, gr_value *x, gr_value *split, int n_out) {
    gr_value *ins[] = {x, split};
    gr_node *n = gr_node_add(g, GR_OP_SPLIT, NULL, split ? 2 : 1, ins, n_out, NULL);
    assert_non_null(n);
    return n;
}

static void test_split(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* split_equal_parts_1d_opset18: [6] num_outputs 3 -> 3 x [2] */
    gr_value *x = input(g, "x", F32, "6");
    gr_node *e = split_node(g, x, NULL, 3);
    gr_node_set_int(g, e, "num_outputs", 3);
    for (int i = 0; i < 3; i++) expect_out(g, e, i, F32, "2");
    /* split_variable_parts_1d_opset18: split [2,4] */
    gr_node *v = split_node(g, x, const_i64(g, "s", I64S(2, 4)), 2);
    expect_out(g, v, 0, F32, "2");
    expect_out(g, v, 1, F32, "4");
    /* split_1d_uneven_split_opset18: [7] num_outputs 4 -> 2,2,2,1 */
    gr_value *x7 = input(g, "x7", F32, "N,7");
    gr_node *u = split_node(g, x7, NULL, 4);
    gr_node_set_int(g, u, "num_outputs", 4);
    gr_node_set_int(g, u, "axis", 1);
    expect_out(g, u, 0, F32, "N,2");
    expect_out(g, u, 3, F32, "N,1");
    /* split sizes that are not constant */
    gr_node *sd = split_node(g, x, input(g, "sd", I64, "2"), 2);
    expect_out(g, sd, 0, F32, "?");
    expect_out(g, sd, 1, F32, "?");
    /* unknown extent */
    gr_value *d = input(g, "d", F32, "N,4");
    gr_node *dn = split_node(g, d, NULL, 2);
    expect_out(g, dn, 1, F32, "?,4");
    gr_graph_free(g);
}

static void test_split_errors(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "6");
    expect_fail(g, split_node(g, x, const_i64(g, "a", I64S(2, 3)), 2), "add up to 5", "expected 6");
    expect_fail(g, split_node(g, x, const_i64(g, "b", I64S(2, 2, 2)), 2), "split has 3 values",
                "expected 2");
    gr_node *n = split_node(g, x, NULL, 2);
    gr_node_set_int(g, n, "num_outputs", 3);
    expect_fail(g, n, "num_outputs is 3", "2 outputs");
    gr_node *both = split_node(g, x, const_i64(g, "c", I64S(3, 3)), 2);
    gr_node_set_int(g, both, "num_outputs", 2);
    expect_fail(g, both, "both input 'split' and attribute 'num_outputs'", NULL);
    gr_node *ax = split_node(g, x, NULL, 2);
    gr_node_set_int(g, ax, "axis", 1);
    expect_fail(g, ax, "axis 1 is out of range", NULL);
    gr_graph_free(g);
}

static void test_gather(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* gather_0: data [5,4,3,2] indices [3] axis 0 -> [3,4,3,2]; gather_1: axis 1 */
    gr_value *x = input(g, "x", F32, "5,4,3,2"), *i = input(g, "i", I64, "3");
    expect(g, node(g, GR_OP_GATHER, INS(x, i)), F32, "3,4,3,2");
    gr_node *n = node(g, GR_OP_GATHER, INS(x, i));
    gr_node_set_int(g, n, "axis", 1);
    expect(g, n, F32, "5,3,3,2");
    /* gather_2d_indices: indices [1,2] at axis 1 -> [5,1,2,3,2]; scalar index drops the axis */
    gr_value *i2 = input(g, "i2", GR_DTYPE_I32, "B,2");
    gr_node *m = node(g, GR_OP_GATHER, INS(x, i2));
    gr_node_set_int(g, m, "axis", -3);
    expect(g, m, F32, "5,B,2,3,2");
    expect(g, node(g, GR_OP_GATHER, INS(x, scalar_i64(g, "k", 1))), F32, "4,3,2");
    gr_value *f = input(g, "f", F32, "3");
    expect_fail(g, node(g, GR_OP_GATHER, INS(x, f)), "is f32", "expected i32 or i64");
    gr_node_set_int(g, n, "axis", 4);
    expect_fail(g, n, "axis 4 is out of range", NULL);
    gr_graph_free(g);
}

/* ------------------------------------------------------ expand, tile, slice */

static void test_expand_and_tile(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* expand_dim_changed: [3,1] to [2,1,6] -> [2,3,6]; expand_dim_unchanged: [3,4] */
    gr_value *x = input(g, "x", F32, "3,1");
    expect(g, node(g, GR_OP_EXPAND, INS(x, const_i64(g, "a", I64S(2, 1, 6)))), F32, "2,3,6");
    expect(g, node(g, GR_OP_EXPAND, INS(x, const_i64(g, "b", I64S(3, 4)))), F32, "3,4");
    expect_fail(g, node(g, GR_OP_EXPAND, INS(x, const_i64(g, "c", I64S(2, 4)))), "do not broadcast",
                NULL);
    gr_value *dyn = input(g, "dyn", I64, "3");
    expect(g, node(g, GR_OP_EXPAND, INS(x, dyn)), F32, "?,3,?");
    /* tile: [2,3] repeats [2,2] -> [4,6]; the batch symbol survives repeat 1 */
    gr_value *t = input(g, "t", F32, "N,3");
    expect(g, node(g, GR_OP_TILE, INS(t, const_i64(g, "r", I64S(1, 2)))), F32, "N,6");
    expect_fail(g, node(g, GR_OP_TILE, INS(t, const_i64(g, "r3", I64S(1, 2, 3)))),
                "repeats has 3 values", "expected 2");
    expect_fail(g, node(g, GR_OP_TILE, INS(t, const_i64(g, "rn", I64S(1, -2)))), "repeats[1] is -2",
                NULL);
    gr_graph_free(g);
}

static void test_slice_from_spec(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "20,10,5");
    /* slice: starts [0,0] ends [3,10] axes [0,1] steps [1,1] -> [3,10,5] */
    expect(g,
           node(g, GR_OP_SLICE,
                INS(x, const_i64(g, "s", I64S(0, 0)), const_i64(g, "e", I64S(3, 10)),
                    const_i64(g, "a", I64S(0, 1)), const_i64(g, "p", I64S(1, 1)))),
           F32, "3,10,5");
    /* slice_neg_steps: starts [20,10,4] ends [0,0,1] steps [-1,-3,-2] -> [19,3,2] */
    expect(g,
           node(g, GR_OP_SLICE,
                INS(x, const_i64(g, "s2", I64S(20, 10, 4)), const_i64(g, "e2", I64S(0, 0, 1)),
                    const_i64(g, "a2", I64S(0, 1, 2)), const_i64(g, "p2", I64S(-1, -3, -2)))),
           F32, "19,3,2");
    /* slice_end_out_of_bounds: starts [1] ends [1000] axes [1] -> [20,9,5] */
    expect(g,
           node(g, GR_OP_SLICE,
                INS(x, const_i64(g, "s3", I64S(1)), const_i64(g, "e3", I64S(1000)),
                    const_i64(g, "a3", I64S(1)))),
           F32, "20,9,5");
    /* slice_negative_axes / slice_default_axes: -1.. and none */
    expect(g,
           node(g, GR_OP_SLICE,
                INS(x, const_i64(g, "s4", I64S(0, 0, 3)), const_i64(g, "e4", I64S(20, 10, 4)))),
           F32, "20,10,1");
    expect(g,
           node(g, GR_OP_SLICE,
                INS(x, const_i64(g, "s5", I64S(-3)), const_i64(g, "e5", I64S(-1)),
                    const_i64(g, "a5", I64S(-1)))),
           F32, "20,10,2");
    gr_graph_free(g);
}

static void test_slice_dynamic(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "N,10");
    gr_value *s = const_i64(g, "s", I64S(0, 2)), *e = const_i64(g, "e", I64S(INT64_MAX, 4));
    expect(g, node(g, GR_OP_SLICE, INS(x, s, e)), F32, "N,2");
    gr_value *ds = input(g, "ds", I64, "1"), *de = input(g, "de", I64, "1");
    expect(g, node(g, GR_OP_SLICE, INS(x, ds, de, const_i64(g, "a", I64S(1)))), F32, "N,?");
    expect(g, node(g, GR_OP_SLICE, INS(x, ds, de)), F32, "?,10");
    gr_value *da = input(g, "da", I64, "2");
    expect(g, node(g, GR_OP_SLICE, INS(x, s, e, da)), F32, "?,?");
    gr_graph_free(g);
}

static void test_slice_errors(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "20,10");
    gr_value *s = const_i64(g, "s", I64S(0)), *e = const_i64(g, "e", I64S(3));
    expect_fail(g, node(g, GR_OP_SLICE, INS(x, s, e, const_i64(g, "a", I64S(2)))),
                "axis 2 is out of range", NULL);
    expect_fail(
        g,
        node(g, GR_OP_SLICE, INS(x, s, e, const_i64(g, "a0", I64S(0)), const_i64(g, "z", I64S(0)))),
        "steps[0] is 0", NULL);
    expect_fail(g, node(g, GR_OP_SLICE, INS(x, s, const_i64(g, "e2", I64S(3, 4)))),
                "starts has 1 values but ends has 2", NULL);
    gr_value *f = const_f32(g, "f", 1, (float[]){0});
    expect_fail(g, node(g, GR_OP_SLICE, INS(x, f, e)), "is f32", "expected i32 or i64");
    gr_graph_free(g);
}

/* ------------------------------------------------------------ pad, resize */

static void test_pad(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* constant_pad: [1,3,4,5] pads [0,0,1,3,0,0,2,4] -> [1,3,7,12] */
    gr_value *x = input(g, "x", F32, "N,3,4,5");
    gr_value *cv = input(g, "cv", F32, "");
    expect(g, node(g, GR_OP_PAD, INS(x, const_i64(g, "p", I64S(0, 0, 1, 3, 0, 0, 2, 4)), cv)), F32,
           "N,3,7,12");
    /* constant_pad_axes / _negative_axes: pads [0,3,0,4] axes [1,3] -> [1,3,4,12] */
    expect(g,
           node(g, GR_OP_PAD,
                INS(x, const_i64(g, "p2", I64S(0, 3, 0, 4)), cv, const_i64(g, "a2", I64S(1, 3)))),
           F32, "N,3,4,12");
    expect(g,
           node(g, GR_OP_PAD,
                INS(x, const_i64(g, "p3", I64S(0, 3, 0, 4)), cv, const_i64(g, "a3", I64S(-3, -1)))),
           F32, "N,3,4,12");
    /* negative pads crop; a dynamic dim with pads is unknown */
    expect(g, node(g, GR_OP_PAD, INS(x, const_i64(g, "p4", I64S(1, 0, -1, 0, 0, 0, -1, 0)))), F32,
           "?,3,2,5");
    gr_value *dp = input(g, "dp", I64, "8");
    expect(g, node(g, GR_OP_PAD, INS(x, dp)), F32, "?,?,?,?");
    gr_graph_free(g);
}

static void test_pad_errors(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "3,4");
    expect_fail(g, node(g, GR_OP_PAD, INS(x, const_i64(g, "p", I64S(0, -3, 0, -2)))), "gives -1",
                "expected >= 0");
    expect_fail(g, node(g, GR_OP_PAD, INS(x, const_i64(g, "q", I64S(1, 1)))), "pads has 2 values",
                "expected 4");
    gr_node *m = node(g, GR_OP_PAD, INS(x, const_i64(g, "r", I64S(1, 1, 1, 1))));
    gr_node_set_string(g, m, "mode", "mirror");
    expect_fail(g, m, "mode is 'mirror'", NULL);
    gr_graph_free(g);
}

static void test_resize_scales_and_sizes_from_spec(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* resize_upsample_scales_nearest: [1,1,2,2] scales [1,1,2,3] -> [1,1,4,6] */
    gr_value *x = input(g, "x", F32, "N,1,2,2");
    gr_value *up = const_f32(g, "up", 4, (float[]){1, 1, 2, 3});
    expect(g, node(g, GR_OP_RESIZE, INS(x, NULL, up)), F32, "N,1,4,6");
    /* resize_downsample_scales_nearest: [1,1,2,4] scales 0.6 -> [1,1,1,2] */
    gr_value *x24 = input(g, "x24", F32, "1,1,2,4");
    gr_value *down = const_f32(g, "down", 4, (float[]){1, 1, 0.6f, 0.6f});
    expect(g, node(g, GR_OP_RESIZE, INS(x24, NULL, down)), F32, "1,1,1,2");
    /* resize_upsample_sizes_nearest_not_larger: sizes [7,8] axes [2,3] -> [1,1,7,7] */
    gr_value *sz = const_i64(g, "sz", I64S(7, 8));
    gr_node *nl = node(g, GR_OP_RESIZE, INS(x, NULL, NULL, sz));
    set_ints(g, nl, "axes", I64S(2, 3));
    gr_node_set_string(g, nl, "keep_aspect_ratio_policy", "not_larger");
    expect(g, nl, F32, "N,1,7,7");
    gr_node_set_string(g, nl, "keep_aspect_ratio_policy", "not_smaller");
    expect(g, nl, F32, "N,1,8,8");
    gr_node_set_string(g, nl, "keep_aspect_ratio_policy", "stretch");
    expect(g, nl, F32, "N,1,7,8");
    /* resize_downsample_sizes_nearest_not_larger: [1,1,2,4] sizes [1,1,1,3] -> [1,1,1,2] */
    gr_node *dl = node(g, GR_OP_RESIZE, INS(x24, NULL, NULL, const_i64(g, "s4", I64S(1, 1, 1, 3))));
    gr_node_set_string(g, dl, "keep_aspect_ratio_policy", "not_larger");
    expect(g, dl, F32, "1,1,1,2");
    /* an empty roi/scales (older exporters) counts as absent */
    gr_value *empty = const_f32(g, "empty", 0, NULL);
    expect(g, node(g, GR_OP_RESIZE, INS(x24, empty, empty, const_i64(g, "s5", I64S(1, 1, 4, 8)))),
           F32, "1,1,4,8");
    gr_value *ds = input(g, "ds", F32, "4");
    expect(g, node(g, GR_OP_RESIZE, INS(x, NULL, ds)), F32, "?,?,?,?");
    gr_graph_free(g);
}

static void test_resize_errors(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "1,1,2,2");
    gr_value *sc = const_f32(g, "sc", 4, (float[]){1, 1, 2, 2});
    gr_value *sz = const_i64(g, "sz", I64S(1, 1, 4, 4));
    expect_fail(g, node(g, GR_OP_RESIZE, INS(x, NULL, sc, sz)), "both scales and sizes", NULL);
    expect_fail(g, node(g, GR_OP_RESIZE, INS(x)), "one of scales and sizes is required", NULL);
    gr_value *s3 = const_f32(g, "s3", 3, (float[]){1, 2, 2});
    expect_fail(g, node(g, GR_OP_RESIZE, INS(x, NULL, s3)), "scales has 3 values", "expected 4");
    gr_value *neg = const_f32(g, "neg", 4, (float[]){1, 1, -2, 2});
    expect_fail(g, node(g, GR_OP_RESIZE, INS(x, NULL, neg)), "scales[2] is -2", "expected > 0");
    gr_node *p = node(g, GR_OP_RESIZE, INS(x, NULL, NULL, sz));
    gr_node_set_string(g, p, "keep_aspect_ratio_policy", "fit");
    expect_fail(g, p, "keep_aspect_ratio_policy is 'fit'", NULL);
    gr_graph_free(g);
}

/* -------------------------------------------------- shapes and constants */

static void test_shape_and_size(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* shape examples: [2,3,4] -> [3]; start -1 -> [1]; end -1 -> [2]; 1..2 -> [1] */
    gr_value *x = input(g, "x", F32, "N,3,4");
    gr_node *n = node(g, GR_OP_SHAPE, INS(x));
    expect(g, n, I64, "3");
    gr_node_set_int(g, n, "start", -1);
    expect(g, n, I64, "1");
    gr_node_set_int(g, n, "start", 0);
    gr_node_set_int(g, n, "end", -1);
    expect(g, n, I64, "2");
    gr_node_set_int(g, n, "start", 1);
    gr_node_set_int(g, n, "end", 2);
    expect(g, n, I64, "1");
    gr_node_set_int(g, n, "start", -10);
    gr_node_set_int(g, n, "end", 10);
    expect(g, n, I64, "3");
    gr_node_set_int(g, n, "start", 2);
    gr_node_set_int(g, n, "end", 1);
    expect(g, n, I64, "0");
    gr_value *u = input(g, "u", F32, NULL);
    expect(g, node(g, GR_OP_SHAPE, INS(u)), I64, "?");
    expect(g, node(g, GR_OP_SIZE, INS(x)), I64, "");
    gr_graph_free(g);
}

static void test_constant_attributes(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_node *a = node(g, GR_OP_CONSTANT, 0, NULL);
    expect_fail(g, a, "a value attribute", "is required");
    set_ints(g, a, "value_ints", I64S(1, 2, 3));
    expect(g, a, I64, "3");
    gr_node_set_float(g, a, "value_float", 2.5);
    expect_fail(g, a, "are both given", NULL);
    gr_node *f = node(g, GR_OP_CONSTANT, 0, NULL);
    gr_node_set_float(g, f, "value_float", 2.5);
    expect(g, f, F32, "");
    gr_node *fs = node(g, GR_OP_CONSTANT, 0, NULL);
    gr_node_set_floats(g, fs, "value_floats", 2, (double[]){1, 2});
    expect(g, fs, F32, "2");
    gr_node *i = node(g, GR_OP_CONSTANT, 0, NULL);
    gr_node_set_int(g, i, "value_int", 7);
    expect(g, i, I64, "");
    int32_t data[6] = {0};
    gr_tensor t = {GR_DTYPE_I32, gr_shape_make(2, (int64_t[]){2, 3}), data, sizeof data};
    gr_node *v = node(g, GR_OP_CONSTANT, 0, NULL);
    gr_node_set_tensor(g, v, "value", &t);
    expect(g, v, GR_DTYPE_I32, "2,3");
    gr_graph_free(g);
}

static void test_constant_of_shape(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_node *n = node(g, GR_OP_CONSTANT_OF_SHAPE, INS(const_i64(g, "s", I64S(2, 3))));
    expect(g, n, F32, "2,3");
    int32_t one = 1;
    gr_tensor t = {GR_DTYPE_I32, gr_shape_make(1, (int64_t[]){1}), &one, sizeof one};
    gr_node_set_tensor(g, n, "value", &t);
    expect(g, n, GR_DTYPE_I32, "2,3");
    expect(g, node(g, GR_OP_CONSTANT_OF_SHAPE, INS(const_i64(g, "e", 0, NULL))), F32, "");
    gr_value *d = input(g, "d", I64, "3");
    expect(g, node(g, GR_OP_CONSTANT_OF_SHAPE, INS(d)), F32, "?,?,?");
    expect_fail(g, node(g, GR_OP_CONSTANT_OF_SHAPE, INS(const_i64(g, "n", I64S(2, -1)))),
                "input[1] is -1", NULL);
    int32_t two[2] = {1, 2};
    gr_tensor t2 = {GR_DTYPE_I32, gr_shape_make(1, (int64_t[]){2}), two, sizeof two};
    gr_node_set_tensor(g, n, "value", &t2);
    expect_fail(g, n, "has 2 elements", "expected 1");
    gr_graph_free(g);
}

static void test_range(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    /* range_float_type_positive_delta: 1, 5, 2 -> [2] */
    gr_shape sc = gr_shape_scalar();
    float f[3] = {1, 5, 2};
    gr_value *fs = gr_graph_add_data(g, GR_VALUE_CONST, "fs", F32, &sc, &f[0]);
    gr_value *fl = gr_graph_add_data(g, GR_VALUE_CONST, "fl", F32, &sc, &f[1]);
    gr_value *fd = gr_graph_add_data(g, GR_VALUE_CONST, "fd", F32, &sc, &f[2]);
    expect(g, node(g, GR_OP_RANGE, INS(fs, fl, fd)), F32, "2");
    /* range_int32_type_negative_delta: 10, 6, -3 -> [2] */
    gr_value *s = scalar_i64(g, "s", 10), *l = scalar_i64(g, "l", 6), *d = scalar_i64(g, "d", -3);
    expect(g, node(g, GR_OP_RANGE, INS(s, l, d)), I64, "2");
    expect(g, node(g, GR_OP_RANGE, INS(l, s, d)), I64, "0");
    gr_value *x = input(g, "x", I64, "");
    expect(g, node(g, GR_OP_RANGE, INS(s, x, d)), I64, "?");
    expect_fail(g, node(g, GR_OP_RANGE, INS(s, l, scalar_i64(g, "z", 0))), "delta is 0", NULL);
    expect_fail(g, node(g, GR_OP_RANGE, INS(s, fl, d)), "limit ('fl') is f32", "expected i64");
    gr_value *v = input(g, "v", I64, "2");
    expect_fail(g, node(g, GR_OP_RANGE, INS(s, v, d)), "expected a scalar", NULL);
    gr_graph_free(g);
}

/* Gather(shape, 0): the first extent of a shape value, as a scalar. */
static gr_value *first_extent(gr_graph *g, gr_node *shape) {
    gr_node *n = node(g, GR_OP_GATHER, INS(shape->outputs[0], scalar_i64(g, NULL, 0)));
    return n->outputs[0];
}

/* Shapes computed at run time from Shape nodes keep their symbols:
 * Reshape(x, Concat(Shape(x)[0:1], [-1])), Gather + Unsqueeze, Expand and
 * ConstantOfShape of Shape(y). */
static void test_shape_computations_keep_symbols(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", F32, "N,3,4");
    gr_node *shape = node(g, GR_OP_SHAPE, INS(x));
    gr_node *cast = node(g, GR_OP_CAST, INS(shape->outputs[0]));
    gr_node_set_int(g, cast, "to", GR_DTYPE_I32);
    gr_node *slice =
        node(g, GR_OP_SLICE,
             INS(cast->outputs[0], const_i64(g, "s", I64S(0)), const_i64(g, "e", I64S(1))));
    gr_node *back = node(g, GR_OP_CAST, INS(slice->outputs[0]));
    gr_node_set_int(g, back, "to", GR_DTYPE_I64);
    gr_node *cat = node(g, GR_OP_CONCAT, INS(back->outputs[0], const_i64(g, "m1", I64S(-1))));
    gr_node_set_int(g, cat, "axis", 0);
    gr_node *rs = node(g, GR_OP_RESHAPE, INS(x, cat->outputs[0]));
    gr_node *gat = node(g, GR_OP_GATHER, INS(shape->outputs[0], scalar_i64(g, "k", -1)));
    gr_node *uns = node(g, GR_OP_UNSQUEEZE, INS(gat->outputs[0], const_i64(g, "a", I64S(0))));
    gr_node *cat2 = node(g, GR_OP_CONCAT, INS(const_i64(g, "m", I64S(-1)), uns->outputs[0]));
    gr_node_set_int(g, cat2, "axis", 0);
    gr_node *rs2 = node(g, GR_OP_RESHAPE, INS(x, cat2->outputs[0]));
    gr_value *y = input(g, "y", F32, "B,4"), *z = input(g, "z", F32, "1,4");
    gr_node *ys = node(g, GR_OP_SHAPE, INS(y));
    gr_node *ex = node(g, GR_OP_EXPAND, INS(z, ys->outputs[0]));
    gr_node *cs = node(g, GR_OP_CONSTANT_OF_SHAPE, INS(ys->outputs[0]));
    /* Range(0, Shape(y)[0], 1) -> [B]; Resize to Concat(Shape(x)[0:2], [8,8]) */
    gr_node *ry = node(g, GR_OP_RANGE,
                       INS(scalar_i64(g, "zero", 0), first_extent(g, ys), scalar_i64(g, "one", 1)));
    gr_value *img = input(g, "img", F32, "N,3,4,4");
    gr_node *is = node(g, GR_OP_SHAPE, INS(img));
    gr_node_set_int(g, is, "end", 2);
    gr_node *sz = node(g, GR_OP_CONCAT, INS(is->outputs[0], const_i64(g, "hw", I64S(8, 8))));
    gr_node_set_int(g, sz, "axis", 0);
    gr_node *rz = node(g, GR_OP_RESIZE, INS(img, NULL, NULL, sz->outputs[0]));
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    char buf[128];
    assert_string_equal(gr_shape_str(&ry->outputs[0]->shape, buf, sizeof buf), "[B]");
    assert_string_equal(gr_shape_str(&rz->outputs[0]->shape, buf, sizeof buf), "[N,3,8,8]");
    assert_string_equal(gr_shape_str(&rs->outputs[0]->shape, buf, sizeof buf), "[N,12]");
    assert_string_equal(gr_shape_str(&rs2->outputs[0]->shape, buf, sizeof buf), "[?,4]");
    assert_string_equal(gr_shape_str(&ex->outputs[0]->shape, buf, sizeof buf), "[B,4]");
    assert_string_equal(gr_shape_str(&cs->outputs[0]->shape, buf, sizeof buf), "[B,4]");
    gr_graph_free(g);
}

/* A small CNN run through gr_graph_infer_shapes: the batch symbol survives
 * Conv, MaxPool, Reshape-with-0, Flatten and Gemm. */
static void test_batch_symbol_survives_cnn(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("cnn");
    gr_value *x = input(g, "x", F32, "N,3,32,32"), *w = input(g, "w", F32, "8,3,3,3");
    gr_node *conv = node(g, GR_OP_CONV, INS(x, w));
    set_ints(g, conv, "pads", I64S(1, 1, 1, 1));
    gr_node *relu = node(g, GR_OP_RELU, INS(conv->outputs[0]));
    gr_node *pool = node(g, GR_OP_MAX_POOL, INS(relu->outputs[0]));
    set_ints(g, pool, "kernel_shape", I64S(2, 2));
    set_ints(g, pool, "strides", I64S(2, 2));
    gr_node *rs = node(g, GR_OP_RESHAPE, INS(pool->outputs[0], const_i64(g, "s", I64S(0, 8, -1))));
    gr_node *fl = node(g, GR_OP_FLATTEN, INS(rs->outputs[0]));
    gr_value *fw = input(g, "fw", F32, "10,2048");
    gr_node *gemm = node(g, GR_OP_GEMM, INS(fl->outputs[0], fw));
    gr_node_set_int(g, gemm, "transB", 1);
    gr_node *sm = node(g, GR_OP_SOFTMAX, INS(gemm->outputs[0]));
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    char buf[128];
    assert_string_equal(gr_shape_str(&pool->outputs[0]->shape, buf, sizeof buf), "[N,8,16,16]");
    assert_string_equal(gr_shape_str(&rs->outputs[0]->shape, buf, sizeof buf), "[N,8,256]");
    assert_string_equal(gr_shape_str(&fl->outputs[0]->shape, buf, sizeof buf), "[N,2048]");
    assert_string_equal(gr_shape_str(&sm->outputs[0]->shape, buf, sizeof buf), "[N,10]");
    gr_graph_add_output(g, sm->outputs[0]);
    assert_int_equal(gr_graph_verify(g, &st), GR_OK);
    gr_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_batches_and_1d_promotion),
        cmocka_unit_test(test_matmul_rejects_inner_dim_mismatch),
        cmocka_unit_test(test_gemm_transposes_and_bias),
        cmocka_unit_test(test_gemm_rejects_k_mismatch_and_bad_bias),
        cmocka_unit_test(test_conv_strides_pads_from_spec),
        cmocka_unit_test(test_conv_keeps_batch_symbol_and_dynamic_dims),
        cmocka_unit_test(test_conv_rejects_channel_mismatch),
        cmocka_unit_test(test_conv_transpose_from_spec),
        cmocka_unit_test(test_conv_transpose_rejects_channel_mismatch),
        cmocka_unit_test(test_batchnorm_outputs_and_training_stats),
        cmocka_unit_test(test_layernorm_mean_and_invstddev),
        cmocka_unit_test(test_instancenorm_and_lrn),
        cmocka_unit_test(test_pool_from_spec),
        cmocka_unit_test(test_maxpool_keeps_single_row_like_onnxruntime),
        cmocka_unit_test(test_pool_ceil_mode_drops_window_starting_in_right_pad),
        cmocka_unit_test(test_pool_errors),
        cmocka_unit_test(test_global_pool_and_softmax),
        cmocka_unit_test(test_reduce_axes_keepdims_noop),
        cmocka_unit_test(test_reduce_errors),
        cmocka_unit_test(test_argmax_gives_i64),
        cmocka_unit_test(test_reshape_constant_shapes),
        cmocka_unit_test(test_reshape_keeps_batch_symbol),
        cmocka_unit_test(test_reshape_errors),
        cmocka_unit_test(test_flatten_and_transpose),
        cmocka_unit_test(test_squeeze_unsqueeze),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_concat_errors),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_expand_and_tile),
        cmocka_unit_test(test_slice_from_spec),
        cmocka_unit_test(test_slice_dynamic),
        cmocka_unit_test(test_slice_errors),
        cmocka_unit_test(test_pad),
        cmocka_unit_test(test_pad_errors),
        cmocka_unit_test(test_resize_scales_and_sizes_from_spec),
        cmocka_unit_test(test_resize_errors),
        cmocka_unit_test(test_shape_and_size),
        cmocka_unit_test(test_constant_attributes),
        cmocka_unit_test(test_constant_of_shape),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_shape_computations_keep_symbols),
        cmocka_unit_test(test_batch_symbol_survives_cnn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL) != 0;
}
