/* test_grad_math.c: gradient rules of elementwise, reduction and
 * data-movement ops (passes/grad_elementwise.c, grad_reduce.c,
 * grad_movement.c) against central finite differences (grad_check.h).
 * Data sit away from kinks (ReLU at 0, Clip bounds, ties in Max): there a
 * central difference means nothing. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/grad_check.h"

/* ------------------------------------------------------------- helpers */

/* Output 0 of a new node of op on inputs. */
static gr_value *node(gr_graph *g, gr_op op, int n_inputs, gr_value *const *inputs) {
    gr_node *n = gr_node_add(g, op, NULL, n_inputs, inputs, 1, NULL);
    assert_non_null(n);
    return n->outputs[0];
}

static gr_node *last_node(gr_graph *g) { return g->nodes[g->n_nodes - 1]; }

static gr_value *un(gr_graph *g, gr_op op, gr_value *x) { return node(g, op, 1, &x); }

static gr_value *bin(gr_graph *g, gr_op op, gr_value *a, gr_value *b) {
    gr_value *in[2] = {a, b};
    return node(g, op, 2, in);
}

static gr_value *ints(gr_graph *g, int n, const int64_t *v) {
    gr_shape s = gr_shape_make(1, (int64_t[]){n});
    gr_value *r = gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_I64, &s, v);
    assert_non_null(r);
    return r;
}

static gr_value *scalar(gr_graph *g, gr_dtype dtype, double v) {
    gr_shape s = gr_shape_scalar();
    gr_value *r = gr_graph_add_data(g, GR_VALUE_CONST, NULL, dtype, &s, NULL);
    assert_non_null(r);
    gr_dtype_store_f64(dtype, r->data, 0, v);
    return r;
}

/* Moves every element of p within margin of a kink to kink +- margin. */
static void away_from(gr_value *p, double kink, double margin) {
    float *d = p->data;
    for (int64_t i = 0; i < gr_value_numel(p); i++)
        if (fabs(d[i] - kink) < margin) d[i] = (float)(kink + (d[i] >= kink ? margin : -margin));
}

/* --------------------------------------------------------- binary ops */

/* a:[3,4] / b:[4] and b2:[2,1,1] / a (broadcast on either side) */
static void test_grad_div_broadcast(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = grad_param(g, "a", 2, (int64_t[]){3, 4}, 0.5, 1.5, 1);
    gr_value *b = grad_param(g, "b", 1, (int64_t[]){4}, 1, 2, 2);
    gr_value *b2 = grad_param(g, "b2", 3, (int64_t[]){2, 1, 1}, -1, 1, 3);
    gr_graph_add_output(g, bin(g, GR_OP_DIV, a, b));
    gr_graph_add_output(g, bin(g, GR_OP_DIV, b2, a));
    grad_check(g, NULL);
}

/* a^b with a > 0 and b:[1,4] broadcast (d/db = y log a) */
static void test_grad_pow_both_inputs(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = grad_param(g, "a", 2, (int64_t[]){3, 4}, 0.5, 1.5, 1);
    gr_value *b = grad_param(g, "b", 2, (int64_t[]){1, 4}, 0.5, 2, 2);
    gr_graph_add_output(g, bin(g, GR_OP_POW, a, b));
    grad_check(g, NULL);
}

/* a^3 with an i64 exponent: only a gets a gradient */
static void test_grad_pow_integer_exponent(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = grad_param(g, "a", 2, (int64_t[]){3, 4}, 0.5, 1.5, 1);
    gr_graph_add_output(g, bin(g, GR_OP_POW, a, scalar(g, GR_DTYPE_I64, 3)));
    grad_check(g, NULL);
}

/* x:[2,3,4] slope:[3,1] (per channel) */
static void test_grad_prelu_slope_broadcast(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1, 1);
    away_from(x, 0, 0.1);
    gr_value *slope = grad_param(g, "slope", 2, (int64_t[]){3, 1}, 0.1, 0.5, 2);
    gr_graph_add_output(g, bin(g, GR_OP_PRELU, x, slope));
    grad_check(g, NULL);
}

/* Where(cond:[3,1], x:[3,4], y:[4]) */
static void test_grad_where_broadcast(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_shape s = gr_shape_make(2, (int64_t[]){3, 1});
    gr_value *cond = gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_BOOL, &s,
                                       (uint8_t[]){1, 0, 1});
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){3, 4}, -1, 1, 1);
    gr_value *y = grad_param(g, "y", 1, (int64_t[]){4}, -1, 1, 2);
    gr_value *in[3] = {cond, x, y};
    gr_graph_add_output(g, node(g, GR_OP_WHERE, 3, in));
    grad_check(g, NULL);
}

/* ------------------------------------------------------ variadic ops */

/* Max of a:[3,4], b:[4], c:[2,3,4] and Min of a, b in one graph; each
 * input wins somewhere. (Fails while codegen/jit.c plan_arena frees a
 * value read by two fusion groups at the first group's kernel rather than
 * the later one: the backward graph then reads a reused bool buffer.) */
static void test_grad_max_min_variadic_broadcast(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = grad_param(g, "a", 2, (int64_t[]){3, 4}, -1, 1, 1);
    gr_value *b = grad_param(g, "b", 1, (int64_t[]){4}, -1, 1, 2);
    gr_value *cc = grad_param(g, "c", 3, (int64_t[]){2, 3, 4}, -1, 1, 3);
    /* A grid of step 0.1 with a distinct offset per input: no two
     * inputs come within 0.03 (3 eps) of each other, so no ties. */
    float *d[3] = {a->data, b->data, cc->data};
    int64_t ns[3] = {12, 4, 24};
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < ns[k]; i++)
            d[k][i] = (float)(floor(d[k][i] * 10) / 10 + 0.03 * k + 0.015);
    gr_value *in[3] = {a, b, cc};
    gr_graph_add_output(g, node(g, GR_OP_MAX, 3, in));
    gr_graph_add_output(g, node(g, GR_OP_MIN, 2, in));
    grad_check(g, NULL);
}

static void test_grad_sum_mean_variadic_broadcast(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = grad_param(g, "a", 2, (int64_t[]){3, 4}, -1, 1, 1);
    gr_value *b = grad_param(g, "b", 1, (int64_t[]){4}, -1, 1, 2);
    gr_value *cc = grad_param(g, "c", 3, (int64_t[]){2, 1, 4}, -1, 1, 3);
    gr_value *in[3] = {a, b, cc};
    gr_graph_add_output(g, node(g, GR_OP_SUM, 3, in));
    gr_graph_add_output(g, node(g, GR_OP_MEAN, 3, in));
    grad_check(g, NULL);
}

/* --------------------------------------------------------- unary ops */

/* op(x) for x:[3,5] uniform in [lo, hi), moved off the kinks k0, k1
 * (NAN: none); the node's attributes are set by attrs when given. */
static void unary_case(gr_op op, double lo, double hi, double k0, double k1,
                       void (*attrs)(gr_graph *, gr_node *)) {
    print_message("  %s\n", gr_op_name(op));
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){3, 5}, lo, hi, 7);
    if (!isnan(k0)) away_from(x, k0, 0.1);
    if (!isnan(k1)) away_from(x, k1, 0.1);
    gr_value *y = un(g, op, x);
    if (attrs) attrs(g, last_node(g));
    gr_graph_add_output(g, y);
    grad_check(g, NULL);
}

static void test_grad_arithmetic_unary(void **state) {
    (void)state;
    unary_case(GR_OP_NEG, -2, 2, NAN, NAN, NULL);
    unary_case(GR_OP_ABS, -2, 2, 0, NAN, NULL);
    unary_case(GR_OP_SQRT, 0.5, 3, NAN, NAN, NULL);
    unary_case(GR_OP_RECIPROCAL, 0.5, 2, NAN, NAN, NULL);
    unary_case(GR_OP_EXP, -2, 2, NAN, NAN, NULL);
    unary_case(GR_OP_LOG, 0.5, 3, NAN, NAN, NULL);
    unary_case(GR_OP_ERF, -2, 2, NAN, NAN, NULL);
    unary_case(GR_OP_IDENTITY, -2, 2, NAN, NAN, NULL);
}

static void leaky_alpha(gr_graph *g, gr_node *n) {
    assert_int_equal(gr_node_set_float(g, n, "alpha", 0.1), GR_OK);
}

static void elu_alpha(gr_graph *g, gr_node *n) {
    assert_int_equal(gr_node_set_float(g, n, "alpha", 0.7), GR_OK);
}

static void hard_sigmoid_attrs(gr_graph *g, gr_node *n) {
    assert_int_equal(gr_node_set_float(g, n, "alpha", 0.3), GR_OK);
    assert_int_equal(gr_node_set_float(g, n, "beta", 0.4), GR_OK);
}

static void gelu_tanh(gr_graph *g, gr_node *n) {
    assert_int_equal(gr_node_set_string(g, n, "approximate", "tanh"), GR_OK);
}

static void test_grad_activations(void **state) {
    (void)state;
    unary_case(GR_OP_RELU, -2, 2, 0, NAN, NULL);
    unary_case(GR_OP_LEAKY_RELU, -2, 2, 0, NAN, leaky_alpha);
    unary_case(GR_OP_ELU, -2, 2, 0, NAN, elu_alpha);
    unary_case(GR_OP_SELU, -2, 2, 0, NAN, NULL);
    unary_case(GR_OP_SIGMOID, -3, 3, NAN, NAN, NULL);
    /* kinks where 0.3 x + 0.4 reaches 0 and 1 */
    unary_case(GR_OP_HARD_SIGMOID, -3, 3, -4.0 / 3, 2, hard_sigmoid_attrs);
    unary_case(GR_OP_HARD_SWISH, -4.5, 4.5, -3, 3, NULL);
    unary_case(GR_OP_TANH, -2, 2, NAN, NAN, NULL);
    unary_case(GR_OP_SOFTPLUS, -3, 3, NAN, NAN, NULL);
    unary_case(GR_OP_SOFTSIGN, -3, 3, NAN, NAN, NULL);
    unary_case(GR_OP_GELU, -3, 3, NAN, NAN, NULL);
    unary_case(GR_OP_GELU, -3, 3, NAN, NAN, gelu_tanh);
}

/* y = x * Floor(x) + Ceil(x) + Round(x) + Sign(x): the rounding ops give
 * no gradient, so dy/dx = Floor(x) away from the integers. */
static void test_grad_rounding_ops_give_zero(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){3, 4}, -2.4, 2.4, 1);
    for (int k = -2; k <= 2; k++) {
        away_from(x, k, 0.1);
        away_from(x, k + 0.5, 0.1);
    }
    gr_value *y = bin(g, GR_OP_MUL, x, un(g, GR_OP_FLOOR, x));
    y = bin(g, GR_OP_ADD, y, un(g, GR_OP_CEIL, x));
    y = bin(g, GR_OP_ADD, y, un(g, GR_OP_ROUND, x));
    y = bin(g, GR_OP_ADD, y, un(g, GR_OP_SIGN, x));
    gr_graph_add_output(g, y);
    grad_check(g, NULL);
}

/* Clip(x, -0.5, 1) with constant bounds; Clip(x, lo) with min only; and
 * Clip(x, lo, hi) with trainable bounds. */
static void test_grad_clip_bounds(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){4, 5}, -2, 2, 1);
    away_from(x, -0.5, 0.1);
    away_from(x, 1, 0.1);
    away_from(x, 0.25, 0.1);
    away_from(x, -1.25, 0.1);
    gr_value *in[3] = {x, scalar(g, GR_DTYPE_F32, -0.5), scalar(g, GR_DTYPE_F32, 1)};
    gr_graph_add_output(g, node(g, GR_OP_CLIP, 3, in));
    gr_graph_add_output(g, node(g, GR_OP_CLIP, 2, in));
    gr_value *lo = grad_param(g, "lo", 0, NULL, -1.25, -1.25, 2);
    gr_value *hi = grad_param(g, "hi", 0, NULL, 0.25, 0.25, 3);
    gr_value *in2[3] = {x, lo, hi};
    gr_graph_add_output(g, node(g, GR_OP_CLIP, 3, in2));
    grad_check(g, NULL);
}

/* Cast f32 -> f64 -> f32 carries the gradient; Cast to i32 carries none. */
static void test_grad_cast_float_and_int(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){3, 4}, -2, 2, 1);
    for (int k = -2; k <= 2; k++) away_from(x, k, 0.1);
    gr_value *d = un(g, GR_OP_CAST, x);
    assert_int_equal(gr_node_set_int(g, last_node(g), "to", GR_DTYPE_F64), GR_OK);
    d = bin(g, GR_OP_MUL, d, d);
    gr_value *back = un(g, GR_OP_CAST, d);
    assert_int_equal(gr_node_set_int(g, last_node(g), "to", GR_DTYPE_F32), GR_OK);
    gr_value *i = un(g, GR_OP_CAST, x);
    assert_int_equal(gr_node_set_int(g, last_node(g), "to", GR_DTYPE_I32), GR_OK);
    gr_value *f = un(g, GR_OP_CAST, i);
    assert_int_equal(gr_node_set_int(g, last_node(g), "to", GR_DTYPE_F32), GR_OK);
    gr_graph_add_output(g, bin(g, GR_OP_ADD, back, f));
    grad_check(g, NULL);
}

/* Dropout outside training mode is the identity (with and without a ratio). */
static void test_grad_dropout_inference_identity(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){3, 4}, -2, 2, 1);
    gr_value *in[2] = {x, scalar(g, GR_DTYPE_F32, 0.3)};
    gr_value *y = node(g, GR_OP_DROPOUT, 2, in);
    gr_graph_add_output(g, bin(g, GR_OP_MUL, y, un(g, GR_OP_DROPOUT, x)));
    grad_check(g, NULL);
}

#define ELEMENTWISE_TESTS                                                      \
    cmocka_unit_test(test_grad_div_broadcast),                                 \
    cmocka_unit_test(test_grad_pow_both_inputs),                               \
    cmocka_unit_test(test_grad_pow_integer_exponent),                          \
    cmocka_unit_test(test_grad_prelu_slope_broadcast),                         \
    cmocka_unit_test(test_grad_where_broadcast),                               \
    cmocka_unit_test(test_grad_max_min_variadic_broadcast),                    \
    cmocka_unit_test(test_grad_sum_mean_variadic_broadcast),                   \
    cmocka_unit_test(test_grad_arithmetic_unary),                              \
    cmocka_unit_test(test_grad_activations),                                   \
    cmocka_unit_test(test_grad_rounding_ops_give_zero),                        \
    cmocka_unit_test(test_grad_clip_bounds),                                   \
    cmocka_unit_test(test_grad_cast_float_and_int),                            \
    cmocka_unit_test(test_grad_dropout_inference_identity)

/* -------------------------------------------------------- reductions */

/* A reduction of x over axes (NULL: all) with keepdims set. */
static gr_value *reduce(gr_graph *g, gr_op op, gr_value *x, int n_axes, const int64_t *axes,
                        int keepdims) {
    gr_value *in[2] = {x, n_axes ? ints(g, n_axes, axes) : NULL};
    gr_value *y = node(g, op, n_axes ? 2 : 1, in);
    assert_int_equal(gr_node_set_int(g, last_node(g), "keepdims", keepdims), GR_OK);
    return y;
}

/* op over x:[2,3,4] in three forms: axes {-1} keepdims 0, axes {0, -2}
 * keepdims 1, and all axes keepdims 0. */
static void reduce_case(gr_op op, double lo, double hi) {
    print_message("  %s\n", gr_op_name(op));
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 3, (int64_t[]){2, 3, 4}, lo, hi, 11);
    gr_graph_add_output(g, reduce(g, op, x, 1, (int64_t[]){-1}, 0));
    gr_graph_add_output(g, reduce(g, op, x, 2, (int64_t[]){0, -2}, 1));
    gr_graph_add_output(g, reduce(g, op, x, 0, NULL, 0));
    grad_check(g, NULL);
}

static void test_grad_reduce_mean(void **state) {
    (void)state;
    reduce_case(GR_OP_REDUCE_MEAN, -1, 1);
}

/* Distinct values on a grid of 0.05 (more than 2 eps apart): no ties. */
static void test_grad_reduce_max_min(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        gr_op op = k ? GR_OP_REDUCE_MIN : GR_OP_REDUCE_MAX;
        print_message("  %s\n", gr_op_name(op));
        gr_graph *g = gr_graph_new("t");
        gr_value *x = grad_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1, 11);
        float *d = x->data;
        for (int i = 0; i < 24; i++) d[i] = (float)(((i * 7) % 24 - 12) * 0.05 + 0.01);
        gr_graph_add_output(g, reduce(g, op, x, 1, (int64_t[]){-1}, 0));
        gr_graph_add_output(g, reduce(g, op, x, 2, (int64_t[]){0, -2}, 1));
        gr_graph_add_output(g, reduce(g, op, x, 0, NULL, 0));
        grad_check(g, NULL);
    }
}

/* Ties split evenly: ReduceMax of [1, 1, 0] gives each 1 half of dy. The
 * tie is exact, so this checks the rule's value, not a difference. */
static void test_grad_reduce_max_splits_ties(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 1, (int64_t[]){3}, 0, 0, 1);
    float *d = x->data;
    d[0] = d[1] = 1;
    d[2] = 0;
    g->loss = reduce(g, GR_OP_REDUCE_MAX, x, 0, NULL, 0);
    gr_graph_add_output(g, g->loss);
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    static const char *const ad[] = {"autodiff", NULL};
    assert_int_equal(gr_passes_run(g, ad, NULL, &st), GR_OK);
    g->n_outputs = 0;
    assert_int_equal(gr_graph_add_output(g, g->grads[0].grad), GR_OK);
    gr_plan *p = grad_check_compile(g);
    gr_session *s = NULL;
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    float dx[3] = {0};
    void *outs[1] = {dx};
    assert_int_equal(gr_session_run(s, NULL, outs, &st), GR_OK);
    assert_float_equal(dx[0], 0.5, 1e-6);
    assert_float_equal(dx[1], 0.5, 1e-6);
    assert_float_equal(dx[2], 0, 1e-6);
    gr_session_free(s);
    gr_plan_free(p);
    gr_graph_free(g);
}

/* L1 away from 0; L2, LogSum and Prod on positive data (Prod's inputs
 * nonzero, LogSum's sums positive). Prod's values stay near 1 so the
 * products of 24 elements stay well scaled for f32 differences. */
static void test_grad_reduce_norms_and_logs(void **state) {
    (void)state;
    reduce_case(GR_OP_REDUCE_L2, -1, 1);
    reduce_case(GR_OP_REDUCE_SUM_SQUARE, -1, 1);
    reduce_case(GR_OP_REDUCE_LOG_SUM_EXP, -2, 2);
    reduce_case(GR_OP_REDUCE_LOG_SUM, 0.5, 2);
    reduce_case(GR_OP_REDUCE_PROD, 0.7, 1.3);
}

static void test_grad_reduce_l1(void **state) {
    (void)state;
    print_message("  ReduceL1\n");
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1, 11);
    away_from(x, 0, 0.1);
    gr_graph_add_output(g, reduce(g, GR_OP_REDUCE_L1, x, 1, (int64_t[]){-1}, 0));
    gr_graph_add_output(g, reduce(g, GR_OP_REDUCE_L1, x, 2, (int64_t[]){0, -2}, 1));
    grad_check(g, NULL);
}

/* ---------------------------------------------------- data movement */

/* Reshape, Flatten, Squeeze, Unsqueeze and Transpose (with and without
 * perm) of x:[2,3,4]; Tanh keeps the gradients from being constants. */
static void test_grad_reshape_family_and_transpose(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1, 1);
    gr_value *t = un(g, GR_OP_TANH, x);
    gr_graph_add_output(g, un(g, GR_OP_TANH, bin(g, GR_OP_RESHAPE, t, ints(g, 2, (int64_t[]){6, 4}))));
    gr_value *f = un(g, GR_OP_FLATTEN, x);
    assert_int_equal(gr_node_set_int(g, last_node(g), "axis", 2), GR_OK);
    gr_graph_add_output(g, bin(g, GR_OP_MUL, f, f));
    gr_value *u = bin(g, GR_OP_UNSQUEEZE, x, ints(g, 1, (int64_t[]){-1}));
    gr_value *sq = bin(g, GR_OP_SQUEEZE, bin(g, GR_OP_MUL, u, u), ints(g, 1, (int64_t[]){3}));
    gr_graph_add_output(g, sq);
    gr_value *tr = un(g, GR_OP_TRANSPOSE, t);
    assert_int_equal(gr_node_set_ints(g, last_node(g), "perm", 3, (int64_t[]){1, 2, 0}), GR_OK);
    gr_graph_add_output(g, bin(g, GR_OP_MUL, tr, tr));
    gr_value *rev = un(g, GR_OP_TRANSPOSE, t);
    gr_graph_add_output(g, bin(g, GR_OP_MUL, rev, rev));
    grad_check(g, NULL);
}

/* Concat of a:[2,3], b:[2,1], a on axis -1 -> [2,7]; Split of its square
 * into [3,4] on axis 1 with only the first part used (the second's
 * gradient is zeros), and a second Split (num_outputs 2: [4,3]) whose
 * parts are both used. */
static void test_grad_concat_split(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = grad_param(g, "a", 2, (int64_t[]){2, 3}, -1, 1, 1);
    gr_value *b = grad_param(g, "b", 2, (int64_t[]){2, 1}, -1, 1, 2);
    gr_value *in[3] = {a, b, a};
    gr_value *cat = node(g, GR_OP_CONCAT, 3, in);
    assert_int_equal(gr_node_set_int(g, last_node(g), "axis", -1), GR_OK);
    gr_value *sq = bin(g, GR_OP_MUL, cat, cat);
    gr_value *sin[2] = {sq, ints(g, 2, (int64_t[]){3, 4})};
    gr_node *sp = gr_node_add(g, GR_OP_SPLIT, NULL, 2, sin, 2, NULL);
    assert_int_equal(gr_node_set_int(g, sp, "axis", 1), GR_OK);
    gr_graph_add_output(g, sp->outputs[0]);
    gr_node *sp2 = gr_node_add(g, GR_OP_SPLIT, NULL, 1, &cat, 2, NULL);
    assert_int_equal(gr_node_set_int(g, sp2, "axis", -1), GR_OK);
    assert_int_equal(gr_node_set_int(g, sp2, "num_outputs", 2), GR_OK);
    gr_graph_add_output(g, un(g, GR_OP_TANH, sp2->outputs[0]));
    gr_graph_add_output(g, un(g, GR_OP_TANH, sp2->outputs[1]));
    grad_check(g, NULL);
}

/* Slice of x:[4,5] with negative start/end and axes {1, -2}, and with
 * axes omitted; steps 1. */
static void test_grad_slice(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){4, 5}, -1, 1, 1);
    gr_value *in[5] = {x, ints(g, 2, (int64_t[]){1, -3}), ints(g, 2, (int64_t[]){-1, 100}),
                       ints(g, 2, (int64_t[]){1, -2}), ints(g, 2, (int64_t[]){1, 1})};
    gr_value *s = node(g, GR_OP_SLICE, 5, in);
    gr_graph_add_output(g, bin(g, GR_OP_MUL, s, s));
    gr_value *in2[3] = {x, ints(g, 1, (int64_t[]){2}), ints(g, 1, (int64_t[]){4})};
    gr_graph_add_output(g, un(g, GR_OP_TANH, node(g, GR_OP_SLICE, 3, in2)));
    grad_check(g, NULL);
}

static void test_grad_slice_step_unsupported(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 1, (int64_t[]){6}, -1, 1, 1);
    gr_value *in[5] = {x, ints(g, 1, (int64_t[]){0}), ints(g, 1, (int64_t[]){6}),
                       ints(g, 1, (int64_t[]){0}), ints(g, 1, (int64_t[]){2})};
    g->loss = reduce(g, GR_OP_REDUCE_SUM, node(g, GR_OP_SLICE, 5, in), 0, NULL, 0);
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    static const char *const ad[] = {"autodiff", NULL};
    assert_int_equal(gr_passes_run(g, ad, NULL, &st), GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "step 2"));
    gr_graph_free(g);
}

/* Gather rows of x:[5,3] (a repeated index and a negative one) on axis 0
 * and columns on axis -1. Needs the GatherGrad kernel. */
static void test_grad_gather_repeated_indices(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){5, 3}, -1, 1, 1);
    gr_value *rows = ints(g, 4, (int64_t[]){0, 3, 3, -1});
    gr_graph_add_output(g, un(g, GR_OP_TANH, bin(g, GR_OP_GATHER, x, rows)));
    gr_value *cols = ints(g, 2, (int64_t[]){2, 0});
    gr_value *gc = bin(g, GR_OP_GATHER, x, cols);
    assert_int_equal(gr_node_set_int(g, last_node(g), "axis", -1), GR_OK);
    gr_graph_add_output(g, bin(g, GR_OP_MUL, gc, gc));
    grad_check(g, NULL);
}

/* Expand of x:[3,1] to [2,3,4]; Tile of y:[2,3] by [2,1] and [3,2] */
static void test_grad_expand_tile(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){3, 1}, -1, 1, 1);
    gr_value *e = bin(g, GR_OP_EXPAND, x, ints(g, 3, (int64_t[]){2, 3, 4}));
    gr_graph_add_output(g, bin(g, GR_OP_MUL, e, e));
    gr_value *y = grad_param(g, "y", 2, (int64_t[]){2, 3}, -1, 1, 2);
    gr_value *t1 = bin(g, GR_OP_TILE, y, ints(g, 2, (int64_t[]){2, 1}));
    gr_graph_add_output(g, bin(g, GR_OP_MUL, t1, t1));
    gr_graph_add_output(g, un(g, GR_OP_TANH, bin(g, GR_OP_TILE, y, ints(g, 2, (int64_t[]){3, 2}))));
    grad_check(g, NULL);
}

/* Constant-mode Pad of x:[2,3] by pads on all axes, and on axes {-1}
 * only with a trainable constant value. */
static void test_grad_pad_constant(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 2, (int64_t[]){2, 3}, -1, 1, 1);
    gr_value *p = bin(g, GR_OP_PAD, x, ints(g, 4, (int64_t[]){1, 0, 2, 1}));
    gr_graph_add_output(g, bin(g, GR_OP_MUL, p, p));
    gr_value *v = grad_param(g, "v", 0, NULL, 0.3, 0.3, 2);
    gr_value *in[4] = {x, ints(g, 2, (int64_t[]){2, 1}), v, ints(g, 1, (int64_t[]){-1})};
    gr_value *p2 = node(g, GR_OP_PAD, 4, in);
    gr_graph_add_output(g, bin(g, GR_OP_MUL, p2, p2));
    grad_check(g, NULL);
}

static void test_grad_pad_reflect_unsupported(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("t");
    gr_value *x = grad_param(g, "x", 1, (int64_t[]){6}, -1, 1, 1);
    gr_value *p = bin(g, GR_OP_PAD, x, ints(g, 2, (int64_t[]){1, 1}));
    assert_int_equal(gr_node_set_string(g, last_node(g), "mode", "reflect"), GR_OK);
    g->loss = reduce(g, GR_OP_REDUCE_SUM, p, 0, NULL, 0);
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    static const char *const ad[] = {"autodiff", NULL};
    assert_int_equal(gr_passes_run(g, ad, NULL, &st), GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "mode 'reflect'"));
    gr_graph_free(g);
}

#define REDUCE_TESTS                                                           \
    cmocka_unit_test(test_grad_reduce_mean),                                   \
    cmocka_unit_test(test_grad_reduce_max_min),                                \
    cmocka_unit_test(test_grad_reduce_max_splits_ties),                        \
    cmocka_unit_test(test_grad_reduce_norms_and_logs),                         \
    cmocka_unit_test(test_grad_reduce_l1)

#define MOVEMENT_TESTS                                                         \
    cmocka_unit_test(test_grad_reshape_family_and_transpose),                  \
    cmocka_unit_test(test_grad_concat_split),                                  \
    cmocka_unit_test(test_grad_slice),                                         \
    cmocka_unit_test(test_grad_slice_step_unsupported),                        \
    cmocka_unit_test(test_grad_gather_repeated_indices),                       \
    cmocka_unit_test(test_grad_expand_tile),                                   \
    cmocka_unit_test(test_grad_pad_constant),                                  \
    cmocka_unit_test(test_grad_pad_reflect_unsupported)

int main(void) {
    const struct CMUnitTest tests[] = {
        ELEMENTWISE_TESTS,
        REDUCE_TESTS,
        MOVEMENT_TESTS,
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
