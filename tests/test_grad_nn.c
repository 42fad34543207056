/* test_grad_nn.c: gradient rules of linear algebra, convolution,
 * normalisation, pooling and softmax (passes/grad_linalg.c, grad_nn.c)
 * against finite differences (grad_check.h). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/grad_check.h"

#define DIMS(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}

static gr_node *node(gr_graph *g, gr_op op, int n_inputs, gr_value **inputs) {
    gr_node *n = gr_node_add(g, op, NULL, n_inputs, inputs, 1, NULL);
    assert_non_null(n);
    return n;
}

/* A float PARAM that is not trained (a constant input to the rule). */
static gr_value *fixed(gr_graph *g, const char *name, int rank, const int64_t *dims, double lo,
                       double hi, unsigned seed) {
    gr_value *v = grad_param(g, name, rank, dims, lo, hi, seed);
    v->trainable = 0;
    return v;
}

/* Fills v with distinct values 0.1 apart in a scrambled order, so no
 * window has a tie (or a near tie a perturbation could flip). */
static void distinct(gr_value *v) {
    int64_t n = gr_value_numel(v);
    float *d = v->data;
    for (int64_t i = 0; i < n; i++) d[i] = (float)(0.1 * (double)((i * 37 + 11) % n) - 0.05 * n);
}

static void set_ints(gr_graph *g, gr_node *n, const char *name, int count, const int64_t *v) {
    assert_int_equal(gr_node_set_ints(g, n, name, count, v), GR_OK);
}

/* ----------------------------------------------------------------- MatMul */

static void matmul_case(int ra, const int64_t *a_dims, int rb, const int64_t *b_dims) {
    gr_graph *g = gr_graph_new("t");
    gr_value *in[2] = {grad_param(g, "a", ra, a_dims, -1, 1, 1),
                       grad_param(g, "b", rb, b_dims, -1, 1, 2)};
    gr_graph_add_output(g, node(g, GR_OP_MATMUL, 2, in)->outputs[0]);
    grad_check(g, NULL);
}

static void test_grad_matmul_2d(void **state) {
    (void)state;
    matmul_case(DIMS(3, 4), DIMS(4, 5));
}

static void test_grad_matmul_batched_broadcast(void **state) {
    (void)state;
    matmul_case(DIMS(2, 1, 3, 4), DIMS(3, 4, 5));
    matmul_case(DIMS(3, 4), DIMS(2, 4, 5));
}

static void test_grad_matmul_1d(void **state) {
    (void)state;
    matmul_case(DIMS(4), DIMS(4, 5));
    matmul_case(DIMS(3, 4), DIMS(4));
    matmul_case(DIMS(4), DIMS(2, 4, 3));
    matmul_case(DIMS(4), DIMS(4));
}

/* ------------------------------------------------------------------- Gemm */

static void gemm_case(int ta, int tb, double alpha, double beta, int rc, const int64_t *c_dims) {
    gr_graph *g = gr_graph_new("t");
    int64_t m = 3, k = 4, nn = 5;
    gr_value *in[3] = {grad_param(g, "a", 2, ta ? (int64_t[]){k, m} : (int64_t[]){m, k}, -1, 1, 1),
                       grad_param(g, "b", 2, tb ? (int64_t[]){nn, k} : (int64_t[]){k, nn}, -1, 1, 2),
                       c_dims ? grad_param(g, "c", rc, c_dims, -1, 1, 3) : NULL};
    gr_node *n = node(g, GR_OP_GEMM, c_dims ? 3 : 2, in);
    assert_int_equal(gr_node_set_int(g, n, "transA", ta), GR_OK);
    assert_int_equal(gr_node_set_int(g, n, "transB", tb), GR_OK);
    assert_int_equal(gr_node_set_float(g, n, "alpha", alpha), GR_OK);
    assert_int_equal(gr_node_set_float(g, n, "beta", beta), GR_OK);
    gr_graph_add_output(g, n->outputs[0]);
    grad_check(g, NULL);
}

static void test_grad_gemm_transposes(void **state) {
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) gemm_case(ta, tb, 1.0, 1.0, 2, (int64_t[]){3, 5});
}

static void test_grad_gemm_alpha_beta_broadcast_c(void **state) {
    (void)state;
    gemm_case(0, 1, 0.5, 2.0, 1, (int64_t[]){5});
    gemm_case(1, 0, -1.5, 0.25, 2, (int64_t[]){3, 1});
    gemm_case(1, 1, 2.0, 1.0, 0, NULL);
}

/* ------------------------------------------------------------ convolution */

typedef struct {
    int64_t strides[2], pads[4], dilations[2], group;
    const char *auto_pad;
} conv_opts;

/* Conv (transpose: ConvTranspose) of x:[xd] with w:[wd] and bias [nb];
 * train picks which of x, w, b are trained (bits 0, 1, 2). */
static void conv_case(gr_op op, int rank, const int64_t *xd, const int64_t *wd, int64_t nb,
                      const conv_opts *o, const int64_t *out_pad, int train) {
    gr_graph *g = gr_graph_new("t");
    int ns = rank - 2;
    gr_value *in[3] = {grad_param(g, "x", rank, xd, -1, 1, 1), grad_param(g, "w", rank, wd, -1, 1, 2),
                       grad_param(g, "b", 1, &nb, -1, 1, 3)};
    for (int i = 0; i < 3; i++) in[i]->trainable = (train >> i) & 1;
    gr_node *n = node(g, op, 3, in);
    if (o->strides[0]) set_ints(g, n, "strides", ns, o->strides);
    if (o->dilations[0]) set_ints(g, n, "dilations", ns, o->dilations);
    if (o->pads[0] || o->pads[1] || o->pads[2] || o->pads[3]) set_ints(g, n, "pads", 2 * ns, o->pads);
    if (o->group) assert_int_equal(gr_node_set_int(g, n, "group", o->group), GR_OK);
    if (o->auto_pad) assert_int_equal(gr_node_set_string(g, n, "auto_pad", o->auto_pad), GR_OK);
    if (out_pad) set_ints(g, n, "output_padding", ns, out_pad);
    gr_graph_add_output(g, n->outputs[0]);
    grad_check(g, NULL);
}

enum { TRAIN_X = 1, TRAIN_W = 2, TRAIN_B = 4 };

/* dX (ConvTranspose) and dB only: no dependence on ConvGradWeight. */
static void test_grad_conv_dx_2d_stride_pads_dilation(void **state) {
    (void)state;
    conv_opts o = {{2, 2}, {1, 0, 0, 1}, {1, 1}, 0, NULL};
    conv_case(GR_OP_CONV, 4, (int64_t[]){2, 3, 7, 6}, (int64_t[]){4, 3, 3, 2}, 4, &o, NULL,
              TRAIN_X | TRAIN_B);
    conv_opts d = {{1, 1}, {1, 1, 1, 1}, {2, 2}, 0, NULL};
    conv_case(GR_OP_CONV, 4, (int64_t[]){1, 2, 6, 7}, (int64_t[]){3, 2, 3, 3}, 3, &d, NULL,
              TRAIN_X | TRAIN_B);
}

static void test_grad_conv_dx_1d_groups_depthwise(void **state) {
    (void)state;
    conv_opts o = {{2}, {1, 2}, {1}, 2, NULL};
    conv_case(GR_OP_CONV, 3, (int64_t[]){2, 4, 9}, (int64_t[]){6, 2, 3}, 6, &o, NULL,
              TRAIN_X | TRAIN_B);
    conv_opts dw = {{1, 1}, {1, 1, 1, 1}, {1, 1}, 3, NULL};
    conv_case(GR_OP_CONV, 4, (int64_t[]){1, 3, 5, 5}, (int64_t[]){3, 1, 3, 3}, 3, &dw, NULL,
              TRAIN_X | TRAIN_B);
}

static void test_grad_conv_dx_same_upper(void **state) {
    (void)state;
    conv_opts o = {{2, 2}, {0}, {1, 1}, 0, "SAME_UPPER"};
    conv_case(GR_OP_CONV, 4, (int64_t[]){1, 2, 6, 5}, (int64_t[]){3, 2, 4, 3}, 3, &o, NULL,
              TRAIN_X | TRAIN_B);
}

/* dW needs the ConvGradWeight kernel. */
static void test_grad_conv_dw(void **state) {
    (void)state;
    conv_opts o = {{2, 2}, {1, 0, 0, 1}, {1, 1}, 0, NULL};
    conv_case(GR_OP_CONV, 4, (int64_t[]){2, 3, 7, 6}, (int64_t[]){4, 3, 3, 2}, 4, &o, NULL, TRAIN_W);
    conv_opts d = {{1}, {2, 1}, {2}, 2, NULL};
    conv_case(GR_OP_CONV, 3, (int64_t[]){2, 4, 9}, (int64_t[]){6, 2, 3}, 6, &d, NULL, TRAIN_W);
    conv_opts s = {{2, 2}, {0}, {1, 1}, 0, "SAME_UPPER"};
    conv_case(GR_OP_CONV, 4, (int64_t[]){1, 2, 6, 5}, (int64_t[]){3, 2, 4, 3}, 3, &s, NULL, TRAIN_W);
}

static void test_grad_conv_transpose_dx(void **state) {
    (void)state;
    conv_opts o = {{2, 2}, {1, 0, 1, 1}, {1, 1}, 0, NULL};
    conv_case(GR_OP_CONV_TRANSPOSE, 4, (int64_t[]){2, 3, 4, 3}, (int64_t[]){3, 2, 3, 3}, 2, &o,
              (int64_t[]){1, 0}, TRAIN_X | TRAIN_B);
    conv_opts gr = {{2}, {0, 1}, {1}, 2, NULL};
    conv_case(GR_OP_CONV_TRANSPOSE, 3, (int64_t[]){1, 4, 5}, (int64_t[]){4, 3, 3}, 6, &gr,
              (int64_t[]){1}, TRAIN_X | TRAIN_B);
}

/* Pads from auto_pad and from output_shape (ConvTranspose resolves both
 * from the shapes). */
static void test_grad_conv_transpose_auto_pad_output_shape(void **state) {
    (void)state;
    conv_opts o = {{2, 2}, {0}, {1, 1}, 0, "SAME_UPPER"};
    conv_case(GR_OP_CONV_TRANSPOSE, 4, (int64_t[]){1, 2, 3, 4}, (int64_t[]){2, 3, 3, 3}, 3, &o,
              NULL, TRAIN_X | TRAIN_W | TRAIN_B);
    gr_graph *g = gr_graph_new("t");
    gr_value *in[2] = {grad_param(g, "x", 4, (int64_t[]){1, 2, 3, 3}, -1, 1, 1),
                       grad_param(g, "w", 4, (int64_t[]){2, 2, 3, 3}, -1, 1, 2)};
    gr_node *n = node(g, GR_OP_CONV_TRANSPOSE, 2, in);
    set_ints(g, n, "strides", 2, (int64_t[]){2, 2});
    set_ints(g, n, "output_shape", 2, (int64_t[]){6, 5});
    gr_graph_add_output(g, n->outputs[0]);
    grad_check(g, NULL);
}

static void test_grad_conv_same_lower_valid(void **state) {
    (void)state;
    conv_opts o = {{2, 1}, {0}, {1, 2}, 0, "SAME_LOWER"};
    conv_case(GR_OP_CONV, 4, (int64_t[]){1, 2, 5, 6}, (int64_t[]){2, 2, 2, 3}, 2, &o, NULL,
              TRAIN_X | TRAIN_W | TRAIN_B);
    conv_opts v = {{2, 2}, {0}, {1, 1}, 0, "VALID"};
    conv_case(GR_OP_CONV, 4, (int64_t[]){1, 2, 6, 7}, (int64_t[]){2, 2, 3, 2}, 2, &v, NULL,
              TRAIN_X | TRAIN_W | TRAIN_B);
}

static void test_grad_conv_transpose_dw(void **state) {
    (void)state;
    conv_opts o = {{2, 2}, {1, 0, 1, 1}, {1, 1}, 0, NULL};
    conv_case(GR_OP_CONV_TRANSPOSE, 4, (int64_t[]){2, 3, 4, 3}, (int64_t[]){3, 2, 3, 3}, 2, &o,
              (int64_t[]){1, 0}, TRAIN_W);
    conv_opts gr = {{2}, {0, 1}, {1}, 2, NULL};
    conv_case(GR_OP_CONV_TRANSPOSE, 3, (int64_t[]){1, 4, 5}, (int64_t[]){4, 3, 3}, 6, &gr,
              (int64_t[]){1}, TRAIN_W);
}

/* ---------------------------------------------------------- normalisation */

static void test_grad_batch_norm_inference(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *in[5] = {grad_param(g, "x", 4, (int64_t[]){2, 3, 3, 2}, -1, 1, 1),
                       grad_param(g, "scale", 1, (int64_t[]){3}, 0.5, 1.5, 2),
                       grad_param(g, "bias", 1, (int64_t[]){3}, -1, 1, 3),
                       fixed(g, "mean", 1, (int64_t[]){3}, -0.5, 0.5, 4),
                       fixed(g, "var", 1, (int64_t[]){3}, 0.5, 2, 5)};
    gr_graph_add_output(g, node(g, GR_OP_BATCH_NORM, 5, in)->outputs[0]);
    grad_check(g, NULL);
}

/* Training-mode BatchNorm is rewritten by train_mode before autodiff; the
 * rule refuses it rather than differentiate the wrong function. */
static void test_grad_batch_norm_training_mode_unsupported(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *in[5] = {grad_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1, 1),
                       grad_param(g, "scale", 1, (int64_t[]){3}, 0.5, 1.5, 2),
                       grad_param(g, "bias", 1, (int64_t[]){3}, -1, 1, 3),
                       fixed(g, "mean", 1, (int64_t[]){3}, -0.5, 0.5, 4),
                       fixed(g, "var", 1, (int64_t[]){3}, 0.5, 2, 5)};
    gr_node *n = node(g, GR_OP_BATCH_NORM, 5, in);
    assert_int_equal(gr_node_set_int(g, n, "training_mode", 1), GR_OK);
    gr_value *in2[2] = {n->outputs[0], NULL};
    gr_node *s = node(g, GR_OP_REDUCE_SUM, 1, in2);
    assert_int_equal(gr_node_set_int(g, s, "keepdims", 0), GR_OK);
    g->loss = s->outputs[0];
    gr_graph_add_output(g, g->loss);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    static const char *const ad[] = {"autodiff", NULL};
    assert_int_equal(gr_passes_run(g, ad, NULL, &st), GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "training mode"));
    gr_graph_free(g);
}

static void layer_norm_case(int64_t axis, int rs, const int64_t *sd) {
    gr_graph *g = gr_graph_new("t");
    gr_value *in[3] = {grad_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1, 1),
                       grad_param(g, "scale", rs, sd, 0.5, 1.5, 2),
                       grad_param(g, "bias", rs, sd, -1, 1, 3)};
    gr_node *n = node(g, GR_OP_LAYER_NORM, 3, in);
    assert_int_equal(gr_node_set_int(g, n, "axis", axis), GR_OK);
    gr_graph_add_output(g, n->outputs[0]);
    grad_check(g, NULL);
}

static void test_grad_layer_norm_last_axis(void **state) {
    (void)state;
    layer_norm_case(-1, 1, (int64_t[]){4});
}

static void test_grad_layer_norm_axis_1(void **state) {
    (void)state;
    layer_norm_case(1, 2, (int64_t[]){3, 4});
}

static void test_grad_instance_norm(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *in[3] = {grad_param(g, "x", 3, (int64_t[]){2, 3, 5}, -1, 1, 1),
                       grad_param(g, "scale", 1, (int64_t[]){3}, 0.5, 1.5, 2),
                       grad_param(g, "bias", 1, (int64_t[]){3}, -1, 1, 3)};
    gr_graph_add_output(g, node(g, GR_OP_INSTANCE_NORM, 3, in)->outputs[0]);
    grad_check(g, NULL);
}

/* ---------------------------------------------------------------- pooling */

static void pool_case(gr_op op, const int64_t *k, const int64_t *s, const int64_t *pads,
                      int ceil_mode, int count_include_pad, const char *auto_pad) {
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 4, (int64_t[]){2, 2, 5, 6}, -1, 1, 1);
    distinct(x);
    gr_node *n = node(g, op, 1, &x);
    set_ints(g, n, "kernel_shape", 2, k);
    set_ints(g, n, "strides", 2, s);
    if (pads) set_ints(g, n, "pads", 4, pads);
    if (ceil_mode) assert_int_equal(gr_node_set_int(g, n, "ceil_mode", 1), GR_OK);
    if (count_include_pad)
        assert_int_equal(gr_node_set_int(g, n, "count_include_pad", 1), GR_OK);
    if (auto_pad) assert_int_equal(gr_node_set_string(g, n, "auto_pad", auto_pad), GR_OK);
    gr_graph_add_output(g, n->outputs[0]);
    grad_check(g, NULL);
}

static void test_grad_max_pool(void **state) {
    (void)state;
    pool_case(GR_OP_MAX_POOL, (int64_t[]){2, 2}, (int64_t[]){2, 2}, NULL, 0, 0, NULL);
    pool_case(GR_OP_MAX_POOL, (int64_t[]){3, 2}, (int64_t[]){2, 1}, (int64_t[]){1, 0, 1, 1}, 1,
              0, NULL);
    pool_case(GR_OP_MAX_POOL, (int64_t[]){3, 3}, (int64_t[]){2, 2}, NULL, 0, 0, "SAME_UPPER");
}

static void test_grad_average_pool(void **state) {
    (void)state;
    pool_case(GR_OP_AVERAGE_POOL, (int64_t[]){2, 2}, (int64_t[]){2, 2}, NULL, 0, 0, NULL);
    pool_case(GR_OP_AVERAGE_POOL, (int64_t[]){3, 2}, (int64_t[]){2, 1}, (int64_t[]){1, 0, 1, 1},
              0, 1, NULL);
    pool_case(GR_OP_AVERAGE_POOL, (int64_t[]){3, 2}, (int64_t[]){2, 2}, (int64_t[]){1, 1, 0, 0},
              1, 0, NULL);
    pool_case(GR_OP_AVERAGE_POOL, (int64_t[]){3, 3}, (int64_t[]){2, 2}, NULL, 0, 0, "SAME_LOWER");
}

static void test_grad_global_pools(void **state) {
    (void)state;
    gr_op ops[2] = {GR_OP_GLOBAL_AVERAGE_POOL, GR_OP_GLOBAL_MAX_POOL};
    for (int i = 0; i < 2; i++) {
        gr_graph *g = gr_graph_new("t");
        gr_value *x = grad_param(g, "x", 4, (int64_t[]){2, 3, 4, 3}, -1, 1, 1);
        distinct(x);
        gr_graph_add_output(g, node(g, ops[i], 1, &x)->outputs[0]);
        grad_check(g, NULL);
    }
}

/* ---------------------------------------------------------------- softmax */

static void softmax_case(gr_op op, int64_t axis) {
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 3, (int64_t[]){2, 3, 4}, -2, 2, 1);
    gr_node *n = node(g, op, 1, &x);
    assert_int_equal(gr_node_set_int(g, n, "axis", axis), GR_OK);
    gr_graph_add_output(g, n->outputs[0]);
    grad_check(g, NULL);
}

static void test_grad_softmax(void **state) {
    (void)state;
    softmax_case(GR_OP_SOFTMAX, 1);
    softmax_case(GR_OP_SOFTMAX, -1);
}

static void test_grad_log_softmax(void **state) {
    (void)state;
    softmax_case(GR_OP_LOG_SOFTMAX, 1);
    softmax_case(GR_OP_LOG_SOFTMAX, -1);
}

/* ----------------------------------------------------------------- Resize */

/* Resize of x:[1,2,4,5] by scales (or sizes when scales is NULL), with
 * mode, coordinate_transformation_mode and optional axes [2,3]. */
static void resize_case(const char *mode, const char *ctm, const double *scales,
                        const int64_t *sizes, int with_axes) {
    gr_graph *g = gr_graph_new("t");
    int count = with_axes ? 2 : 4;
    gr_shape vs = gr_shape_make(1, (int64_t[]){count});
    gr_value *in[4] = {grad_param(g, "x", 4, (int64_t[]){1, 2, 4, 5}, -1, 1, 1), NULL, NULL, NULL};
    if (scales) {
        float f[4];
        for (int i = 0; i < count; i++) f[i] = (float)scales[i];
        in[2] = gr_graph_add_data(g, GR_VALUE_CONST, "scales", GR_DTYPE_F32, &vs, f);
    } else {
        in[3] = gr_graph_add_data(g, GR_VALUE_CONST, "sizes", GR_DTYPE_I64, &vs, sizes);
    }
    gr_node *n = node(g, GR_OP_RESIZE, 4, in);
    assert_int_equal(gr_node_set_string(g, n, "mode", mode), GR_OK);
    assert_int_equal(gr_node_set_string(g, n, "coordinate_transformation_mode", ctm), GR_OK);
    if (with_axes) set_ints(g, n, "axes", 2, (int64_t[]){2, 3});
    gr_graph_add_output(g, n->outputs[0]);
    grad_check(g, NULL);
}

static void test_grad_resize(void **state) {
    (void)state;
    resize_case("nearest", "asymmetric", (double[]){1, 1, 2, 2}, NULL, 0);
    resize_case("nearest", "half_pixel", (double[]){1, 1, 0.5, 1.6}, NULL, 0);
    resize_case("linear", "half_pixel", (double[]){1.5, 2}, NULL, 1);
    resize_case("linear", "align_corners", NULL, (int64_t[]){1, 2, 7, 3}, 0);
    resize_case("cubic", "pytorch_half_pixel", (double[]){1, 1, 2, 1.4}, NULL, 0);
    resize_case("linear", "half_pixel", NULL, (int64_t[]){1, 3, 6, 5}, 0);
}

/* tf_crop_and_resize: outputs sampled outside the roi take
 * extrapolation_value and get no gradient. */
static void test_grad_resize_crop_extrapolation(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_shape rs = gr_shape_make(1, (int64_t[]){4}), ss = gr_shape_make(1, (int64_t[]){2});
    gr_value *in[4] = {
        grad_param(g, "x", 4, (int64_t[]){1, 2, 4, 5}, -1, 1, 1),
        gr_graph_add_data(g, GR_VALUE_CONST, "roi", GR_DTYPE_F32, &rs,
                          (float[]){0.2f, -0.1f, 0.9f, 1.2f}),
        NULL, gr_graph_add_data(g, GR_VALUE_CONST, "sizes", GR_DTYPE_I64, &ss, (int64_t[]){5, 7})};
    gr_node *n = node(g, GR_OP_RESIZE, 4, in);
    assert_int_equal(gr_node_set_string(g, n, "mode", "linear"), GR_OK);
    assert_int_equal(
        gr_node_set_string(g, n, "coordinate_transformation_mode", "tf_crop_and_resize"), GR_OK);
    assert_int_equal(gr_node_set_float(g, n, "extrapolation_value", 0.5), GR_OK);
    set_ints(g, n, "axes", 2, (int64_t[]){2, 3});
    gr_graph_add_output(g, n->outputs[0]);
    grad_check(g, NULL);
}

/* logits [4,5], i64 labels, optional class weights [5]. */
static gr_node *cross_entropy(gr_graph *g, int weighted, double smoothing, int with_probs) {
    gr_shape ls = gr_shape_make(1, (int64_t[]){4});
    int64_t labels[4] = {2, 0, 4, 2};
    gr_value *in[3] = {grad_param(g, "logits", 2, (int64_t[]){4, 5}, -2, 2, 1),
                       gr_graph_add_data(g, GR_VALUE_CONST, "labels", GR_DTYPE_I64, &ls, labels),
                       weighted ? fixed(g, "weights", 1, (int64_t[]){5}, 0.5, 2, 2) : NULL};
    const char *outs[2] = {NULL, with_probs ? NULL : ""};
    gr_node *n = gr_node_add(g, GR_OP_SOFTMAX_CROSS_ENTROPY, NULL, weighted ? 3 : 2, in, 2, outs);
    assert_non_null(n);
    assert_int_equal(gr_node_set_float(g, n, "label_smoothing", smoothing), GR_OK);
    return n;
}

static void test_grad_softmax_cross_entropy(void **state) {
    (void)state;
    for (int w = 0; w < 2; w++) {
        gr_graph *g = gr_graph_new("t");
        gr_graph_add_output(g, cross_entropy(g, w, w ? 0.1 : 0.0, 1)->outputs[0]);
        grad_check(g, NULL);
    }
}

/* The loss also depends on probs directly: softmax's gradient adds in. */
static void test_grad_softmax_cross_entropy_probs_output(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_node *n = cross_entropy(g, 1, 0.2, 1);
    gr_graph_add_output(g, n->outputs[0]);
    gr_graph_add_output(g, n->outputs[1]);
    grad_check(g, NULL);
}

static void test_grad_softmax_cross_entropy_needs_probs(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_status st = {0};
    g->loss = cross_entropy(g, 0, 0.0, 0)->outputs[0];
    gr_graph_add_output(g, g->loss);
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    static const char *const ad[] = {"autodiff", NULL};
    assert_int_equal(gr_passes_run(g, ad, NULL, &st), GR_ERR_INTERNAL);
    assert_non_null(strstr(st.msg, "probs"));
    gr_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_matmul_2d),
        cmocka_unit_test(test_grad_matmul_batched_broadcast),
        cmocka_unit_test(test_grad_matmul_1d),
        cmocka_unit_test(test_grad_gemm_transposes),
        cmocka_unit_test(test_grad_gemm_alpha_beta_broadcast_c),
        cmocka_unit_test(test_grad_conv_dx_2d_stride_pads_dilation),
        cmocka_unit_test(test_grad_conv_dx_1d_groups_depthwise),
        cmocka_unit_test(test_grad_conv_dx_same_upper),
        cmocka_unit_test(test_grad_conv_dw),
        cmocka_unit_test(test_grad_conv_transpose_dx),
        cmocka_unit_test(test_grad_conv_transpose_dw),
        cmocka_unit_test(test_grad_conv_transpose_auto_pad_output_shape),
        cmocka_unit_test(test_grad_conv_same_lower_valid),
        cmocka_unit_test(test_grad_batch_norm_inference),
        cmocka_unit_test(test_grad_batch_norm_training_mode_unsupported),
        cmocka_unit_test(test_grad_layer_norm_last_axis),
        cmocka_unit_test(test_grad_layer_norm_axis_1),
        cmocka_unit_test(test_grad_instance_norm),
        cmocka_unit_test(test_grad_max_pool),
        cmocka_unit_test(test_grad_average_pool),
        cmocka_unit_test(test_grad_global_pools),
        cmocka_unit_test(test_grad_softmax),
        cmocka_unit_test(test_grad_log_softmax),
        cmocka_unit_test(test_grad_resize),
        cmocka_unit_test(test_grad_resize_crop_extrapolation),
        cmocka_unit_test(test_grad_softmax_cross_entropy),
        cmocka_unit_test(test_grad_softmax_cross_entropy_probs_output),
        cmocka_unit_test(test_grad_softmax_cross_entropy_needs_probs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
