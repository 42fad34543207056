/* test_passes_infer.c: the inference simplification passes: simplify,
 * fold_batchnorm and cse, on graphs built with the IR API, and the whole
 * inference pipeline on the light ONNX models. BN folding is checked
 * against a double-precision reference of conv/gemm + BN written here,
 * independent of graft's kernels, on random data with a fixed seed. */
#define _POSIX_C_SOURCE 200809L /* opendir */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"

/* --- helpers ---------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static void rng_seed(uint64_t seed) { rng_state = seed * 2654435761ull + 1; }

/* Uniform in [lo, hi) (xorshift64*). */
static float rng_uniform(float lo, float hi) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717ull;
    return lo + (hi - lo) * (float)((double)(r >> 11) / 9007199254740992.0);
}

static float *random_floats(int64_t n, float lo, float hi) {
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = rng_uniform(lo, hi);
    return v;
}

static gr_value *input_f32(gr_graph *g, const char *name, int rank, const int64_t *dims) {
    gr_shape s = gr_shape_make(rank, dims);
    gr_value *v = gr_graph_add_input(g, name, GR_DTYPE_F32, &s);
    assert_non_null(v);
    return v;
}

static gr_value *data_f32(gr_graph *g, gr_value_kind kind, const char *name, int rank,
                          const int64_t *dims, const float *values) {
    gr_shape s = gr_shape_make(rank, dims);
    gr_value *v = gr_graph_add_data(g, kind, name, GR_DTYPE_F32, &s, values);
    assert_non_null(v);
    return v;
}

static gr_value *const_i64(gr_graph *g, const char *name, int64_t n, const int64_t *values) {
    gr_shape s = gr_shape_make(1, &n);
    gr_value *v = gr_graph_add_data(g, GR_VALUE_CONST, name, GR_DTYPE_I64, &s, values);
    assert_non_null(v);
    return v;
}

static gr_node *node(gr_graph *g, gr_op op, const char *name, int n_inputs,
                     gr_value *const *inputs) {
    gr_node *n = gr_node_add(g, op, name, n_inputs, inputs, 1, NULL);
    assert_non_null(n);
    return n;
}

/* Output value of a node, named. */
static gr_value *named(gr_graph *g, gr_op op, const char *name, const char *out,
                       int n_inputs, gr_value *const *inputs) {
    gr_node *n = gr_node_add(g, op, name, n_inputs, inputs, 1, (const char *[]){out});
    assert_non_null(n);
    return n->outputs[0];
}

static void run(gr_graph *g, const char *const *pipeline) {
    gr_status st = {0};
    if (gr_passes_run(g, pipeline, NULL, &st) != GR_OK) fail_msg("%s", st.msg);
    if (gr_graph_verify(g, &st) != GR_OK) fail_msg("%s", st.msg);
}

static int count_op(const gr_graph *g, gr_op op) {
    int count = 0;
    for (int i = 0; i < g->n_nodes; i++) count += !g->nodes[i]->dead && g->nodes[i]->op == op;
    return count;
}

static double load(const gr_value *v, int64_t i) {
    return gr_dtype_load_f64(v->dtype, v->data, i);
}

/* --- cse ---------------------------------------------------------------- */

static void test_cse_merges_identical_nodes_in_chains(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("cse");
    gr_value *x = input_f32(g, "x", 1, (int64_t[]){4});
    gr_value *a = node(g, GR_OP_RELU, "a", 1, &x)->outputs[0];
    gr_value *b = node(g, GR_OP_RELU, "b", 1, &x)->outputs[0];
    gr_value *ea = node(g, GR_OP_EXP, "ea", 1, &a)->outputs[0];
    gr_value *eb = node(g, GR_OP_EXP, "eb", 1, &b)->outputs[0];
    gr_value *y = named(g, GR_OP_ADD, "add", "y", 2, (gr_value *[]){ea, eb});
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    run(g, (const char *[]){"shapes", "cse", NULL});
    assert_int_equal(g->n_nodes, 3);
    assert_non_null(gr_graph_find_node(g, "a"));
    assert_null(gr_graph_find_node(g, "b"));
    assert_null(gr_graph_find_node(g, "eb"));
    gr_node *add = gr_graph_find_node(g, "add");
    assert_ptr_equal(add->inputs[0], add->inputs[1]);
    assert_string_equal(add->inputs[0]->name, "ea_out");
    gr_graph_free(g);
}

static void test_cse_compares_attributes_with_defaults(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("attrs");
    gr_value *x = input_f32(g, "x", 1, (int64_t[]){4});
    gr_node *l1 = node(g, GR_OP_LEAKY_RELU, "l1", 1, &x);
    gr_node *l2 = node(g, GR_OP_LEAKY_RELU, "l2", 1, &x);
    gr_node *l3 = node(g, GR_OP_LEAKY_RELU, "l3", 1, &x);
    gr_node *l4 = node(g, GR_OP_LEAKY_RELU, "l4", 1, &x);
    assert_int_equal(gr_node_set_float(g, l2, "alpha", 0.2), GR_OK);
    assert_int_equal(gr_node_set_float(g, l3, "alpha", 0.01), GR_OK); /* the default */
    assert_int_equal(gr_node_set_float(g, l4, "alpha", 0.2), GR_OK);
    gr_value *outs[] = {l1->outputs[0], l2->outputs[0], l3->outputs[0], l4->outputs[0]};
    gr_value *y = named(g, GR_OP_SUM, "sum", "y", 4, outs);
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    run(g, (const char *[]){"shapes", "cse", NULL});
    gr_node *sum = gr_graph_find_node(g, "sum");
    assert_string_equal(sum->inputs[0]->name, "l1_out");
    assert_string_equal(sum->inputs[1]->name, "l2_out");
    assert_string_equal(sum->inputs[2]->name, "l1_out"); /* explicit default merged */
    assert_string_equal(sum->inputs[3]->name, "l2_out");
    assert_int_equal(g->n_nodes, 3);
    gr_graph_free(g);
}

static void test_cse_distinguishes_omitted_inputs(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("omitted");
    gr_value *x = input_f32(g, "x", 1, (int64_t[]){4});
    gr_shape scalar = gr_shape_scalar();
    float half = 0.5f;
    gr_value *c = gr_graph_add_data(g, GR_VALUE_CONST, "c", GR_DTYPE_F32, &scalar, &half);
    gr_value *upper[] = {x, NULL, c}, *lower[] = {x, c, NULL};
    gr_value *outs[] = {node(g, GR_OP_CLIP, "max1", 3, upper)->outputs[0],
                        node(g, GR_OP_CLIP, "min1", 3, lower)->outputs[0],
                        node(g, GR_OP_CLIP, "max2", 3, upper)->outputs[0]};
    gr_value *y = named(g, GR_OP_SUM, "sum", "y", 3, outs);
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    run(g, (const char *[]){"shapes", "cse", NULL});
    assert_non_null(gr_graph_find_node(g, "max1"));
    assert_non_null(gr_graph_find_node(g, "min1"));
    assert_null(gr_graph_find_node(g, "max2"));
    assert_string_equal(gr_graph_find_node(g, "sum")->inputs[2]->name, "max1_out");
    gr_graph_free(g);
}

static gr_node *constant_node(gr_graph *g, const char *name, float v0, int64_t n) {
    float data[2] = {v0, 2.0f};
    gr_tensor t = {GR_DTYPE_F32, gr_shape_make(1, &n), data, sizeof(float) * (size_t)n};
    gr_node *c = node(g, GR_OP_CONSTANT, name, 0, NULL);
    assert_int_equal(gr_node_set_tensor(g, c, "value", &t), GR_OK);
    return c;
}

static void test_cse_compares_tensor_attributes(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("tensors");
    gr_value *c[] = {constant_node(g, "c1", 1.0f, 2)->outputs[0],
                     constant_node(g, "c2", 1.0f, 2)->outputs[0],
                     constant_node(g, "c3", 3.0f, 2)->outputs[0]};
    gr_value *y = named(g, GR_OP_SUM, "sum", "y", 3, c);
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    run(g, (const char *[]){"cse", NULL});
    assert_int_equal(g->n_nodes, 3);
    assert_null(gr_graph_find_node(g, "c2"));
    gr_node *sum = gr_graph_find_node(g, "sum");
    assert_ptr_equal(sum->inputs[0], sum->inputs[1]);
    assert_ptr_not_equal(sum->inputs[0], sum->inputs[2]);
    gr_graph_free(g);
}

static void test_cse_merges_equal_consts_but_never_params(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("consts");
    float one_two[] = {1, 2};
    gr_value *x = input_f32(g, "x", 1, (int64_t[]){2});
    gr_value *k1 = data_f32(g, GR_VALUE_CONST, "k1", 1, (int64_t[]){2}, one_two);
    gr_value *k2 = data_f32(g, GR_VALUE_CONST, "k2", 1, (int64_t[]){2}, one_two);
    gr_value *k3 = data_f32(g, GR_VALUE_CONST, "k3", 2, (int64_t[]){1, 2}, one_two);
    gr_value *w1 = data_f32(g, GR_VALUE_PARAM, "w1", 1, (int64_t[]){2}, one_two);
    gr_value *w2 = data_f32(g, GR_VALUE_PARAM, "w2", 1, (int64_t[]){2}, one_two);
    gr_value *in[] = {x, k1, k2, k3, w1, w2};
    gr_value *prev = x;
    for (int i = 1; i < 6; i++)
        prev = node(g, GR_OP_ADD, NULL, 2, (gr_value *[]){prev, in[i]})->outputs[0];
    assert_int_equal(gr_graph_add_output(g, prev), GR_OK);
    run(g, (const char *[]){"shapes", "cse", NULL});
    assert_ptr_equal(g->nodes[1]->inputs[1], k1); /* k2 merged into k1 */
    assert_null(gr_graph_find(g, "k2"));
    assert_ptr_equal(g->nodes[2]->inputs[1], k3); /* other shape: kept */
    assert_ptr_equal(g->nodes[3]->inputs[1], w1);
    assert_ptr_equal(g->nodes[4]->inputs[1], w2); /* weights stay distinct */
    assert_int_equal(g->n_nodes, 5);
    gr_graph_free(g);
}

static void test_cse_keeps_duplicates_that_define_graph_outputs(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("outs");
    gr_value *x = input_f32(g, "x", 1, (int64_t[]){4});
    gr_value *y1 = named(g, GR_OP_RELU, "r1", "y1", 1, &x);
    gr_value *y2 = named(g, GR_OP_RELU, "r2", "y2", 1, &x);
    gr_value *t = named(g, GR_OP_RELU, "r3", "t", 1, &x);
    gr_value *y3 = named(g, GR_OP_NEG, "neg", "y3", 1, &t);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gr_graph_add_output(g, (gr_value *[]){y1, y2, y3}[i]), GR_OK);
    run(g, (const char *[]){"shapes", "cse", NULL});
    assert_string_equal(g->outputs[0]->name, "y1");
    assert_string_equal(g->outputs[1]->name, "y2");
    assert_string_equal(g->outputs[2]->name, "y3");
    assert_non_null(gr_graph_find_node(g, "r2")); /* defines y2: stays */
    assert_null(gr_graph_find_node(g, "r3"));     /* internal: merged into r1 */
    assert_ptr_equal(gr_graph_find_node(g, "neg")->inputs[0], y1);
    gr_graph_free(g);
}

static void test_cse_skips_training_dropout_and_unknown_ops(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("random");
    gr_value *x = input_f32(g, "x", 1, (int64_t[]){4});
    gr_shape scalar = gr_shape_scalar();
    unsigned char yes = 1;
    gr_value *mode = gr_graph_add_data(g, GR_VALUE_CONST, "mode", GR_DTYPE_BOOL, &scalar, &yes);
    gr_value *di[] = {x, NULL, mode};
    gr_value *d1 = gr_node_add(g, GR_OP_DROPOUT, "d1", 3, di, 1, NULL)->outputs[0];
    gr_value *d2 = gr_node_add(g, GR_OP_DROPOUT, "d2", 3, di, 1, NULL)->outputs[0];
    gr_node *u1 = gr_node_add(g, GR_OP_UNKNOWN, "u1", 1, &x, 1, NULL);
    gr_node *u2 = gr_node_add(g, GR_OP_UNKNOWN, "u2", 1, &x, 1, NULL);
    u1->op_type = u2->op_type = "RandomNormalLike";
    gr_value *y = named(g, GR_OP_SUM, "sum", "y", 2, (gr_value *[]){d1, d2});
    gr_value *z = named(g, GR_OP_SUM, "sum2", "z", 2,
                        (gr_value *[]){u1->outputs[0], u2->outputs[0]});
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    assert_int_equal(gr_graph_add_output(g, z), GR_OK);
    run(g, (const char *[]){"cse", NULL});
    assert_int_equal(g->n_nodes, 6);
    gr_graph_free(g);
}

/* --- reference conv, conv transpose, gemm, batchnorm (double) --------- */

typedef struct {
    int64_t n, c, h, w;     /* input */
    int64_t m, kh, kw;      /* output channels, kernel */
    int64_t group, stride, pad;
} conv_dims;

static int64_t conv_out(int64_t in, int64_t k, int64_t stride, int64_t pad) {
    return (in + 2 * pad - k) / stride + 1;
}

/* y:[N,M,OH,OW] = conv(x:[N,C,H,W], w:[M,C/g,KH,KW]) + b:[M] (b may be NULL). */
static double *ref_conv(const conv_dims *d, const float *x, const float *w, const float *b) {
    int64_t oh = conv_out(d->h, d->kh, d->stride, d->pad),
            ow = conv_out(d->w, d->kw, d->stride, d->pad);
    int64_t cg = d->c / d->group, mg = d->m / d->group;
    double *y = calloc((size_t)(d->n * d->m * oh * ow), sizeof(double));
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t m = 0; m < d->m; m++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double acc = b ? b[m] : 0.0;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t p = 0; p < d->kh; p++)
                            for (int64_t q = 0; q < d->kw; q++) {
                                int64_t ih = i * d->stride + p - d->pad,
                                        iw = j * d->stride + q - d->pad;
                                if (ih < 0 || iw < 0 || ih >= d->h || iw >= d->w) continue;
                                int64_t ci = (m / mg) * cg + c;
                                acc += (double)x[((n * d->c + ci) * d->h + ih) * d->w + iw] *
                                       w[((m * cg + c) * d->kh + p) * d->kw + q];
                            }
                    y[((n * d->m + m) * oh + i) * ow + j] = acc;
                }
    return y;
}

/* y:[N,M,OH,OW] = conv_transpose(x:[N,C,H,W], w:[C,M/g,KH,KW]) + b, pad 0. */
static double *ref_conv_transpose(const conv_dims *d, const float *x, const float *w,
                                  const float *b) {
    int64_t oh = (d->h - 1) * d->stride + d->kh, ow = (d->w - 1) * d->stride + d->kw;
    int64_t cg = d->c / d->group, mg = d->m / d->group;
    double *y = calloc((size_t)(d->n * d->m * oh * ow), sizeof(double));
    for (int64_t n = 0; n < d->n; n++) {
        for (int64_t m = 0; m < d->m; m++)
            for (int64_t k = 0; k < oh * ow; k++) y[(n * d->m + m) * oh * ow + k] = b ? b[m] : 0;
        for (int64_t c = 0; c < d->c; c++)
            for (int64_t i = 0; i < d->h; i++)
                for (int64_t j = 0; j < d->w; j++)
                    for (int64_t mm = 0; mm < mg; mm++)
                        for (int64_t p = 0; p < d->kh; p++)
                            for (int64_t q = 0; q < d->kw; q++) {
                                int64_t m = (c / cg) * mg + mm;
                                int64_t oi = i * d->stride + p, oj = j * d->stride + q;
                                y[((n * d->m + m) * oh + oi) * ow + oj] +=
                                    (double)x[((n * d->c + c) * d->h + i) * d->w + j] *
                                    w[((c * mg + mm) * d->kh + p) * d->kw + q];
                            }
    }
    return y;
}

typedef struct {
    float *scale, *bias, *mean, *var;
    double eps;
} bn_params;

static bn_params random_bn(int64_t c) {
    bn_params p = {random_floats(c, 0.5f, 1.5f), random_floats(c, -1, 1),
                   random_floats(c, -1, 1), random_floats(c, 0.1f, 2.0f), 1e-3};
    return p;
}

static void free_bn(bn_params *p) {
    free(p->scale);
    free(p->bias);
    free(p->mean);
    free(p->var);
}

/* y[n, c, ...] = (y - mean[c]) / sqrt(var[c] + eps) * scale[c] + bias[c] */
static void ref_bn(double *y, int64_t n, int64_t c, int64_t inner, const bn_params *p) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t j = 0; j < inner; j++) {
                double *v = &y[(i * c + k) * inner + j];
                *v = (*v - p->mean[k]) / sqrt((double)p->var[k] + p->eps) * p->scale[k] +
                     p->bias[k];
            }
}

/* BN(v) with the parameters as constants named prefix.scale, ...; output out. */
static gr_node *bn_node(gr_graph *g, gr_value *v, int64_t c, const bn_params *p,
                        const char *prefix, const char *out) {
    char names[4][64];
    static const char *const what[] = {"scale", "bias", "mean", "var"};
    for (int i = 0; i < 4; i++) snprintf(names[i], sizeof names[i], "%s.%s", prefix, what[i]);
    gr_value *in[] = {v, data_f32(g, GR_VALUE_CONST, names[0], 1, &c, p->scale),
                      data_f32(g, GR_VALUE_PARAM, names[1], 1, &c, p->bias),
                      data_f32(g, GR_VALUE_PARAM, names[2], 1, &c, p->mean),
                      data_f32(g, GR_VALUE_PARAM, names[3], 1, &c, p->var)};
    in[3]->trainable = in[4]->trainable = 0;
    gr_node *bn = gr_node_add(g, GR_OP_BATCH_NORM, prefix, 5, in, 1, (const char *[]){out});
    assert_non_null(bn);
    assert_int_equal(gr_node_set_float(g, bn, "epsilon", p->eps), GR_OK);
    return bn;
}

/* BN(v) whose output "y" is a graph output. */
static gr_node *add_bn(gr_graph *g, gr_value *v, int64_t c, const bn_params *p) {
    gr_node *bn = bn_node(g, v, c, p, "bn", "y");
    assert_int_equal(gr_graph_add_output(g, bn->outputs[0]), GR_OK);
    return bn;
}

static void expect_close(const double *got, const double *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 1e-5 + 1e-5 * fabs(want[i]))
            fail_msg("element %lld: folded %.9g, reference %.9g", (long long)i, got[i], want[i]);
}

static float *value_floats(const gr_value *v) {
    int64_t n = gr_value_numel(v);
    float *f = malloc(sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) f[i] = (float)load(v, i);
    return f;
}

/* --- fold_batchnorm ------------------------------------------------------ */

/* Conv(+bias)+BN folded, compared with the unfolded reference. */
static void check_conv_bn(const conv_dims *d, int with_bias) {
    gr_graph *g = gr_graph_new("conv_bn");
    int64_t cg = d->c / d->group, wn = d->m * cg * d->kh * d->kw;
    float *x = random_floats(d->n * d->c * d->h * d->w, -1, 1);
    float *w = random_floats(wn, -1, 1), *b = random_floats(d->m, -1, 1);
    bn_params p = random_bn(d->m);
    gr_value *xv = input_f32(g, "x", 4, (int64_t[]){d->n, d->c, d->h, d->w});
    gr_value *wv = data_f32(g, GR_VALUE_PARAM, "W", 4, (int64_t[]){d->m, cg, d->kh, d->kw}, w);
    gr_value *ci[] = {xv, wv, with_bias ? data_f32(g, GR_VALUE_PARAM, "b", 1, &d->m, b) : NULL};
    gr_node *conv = node(g, GR_OP_CONV, "conv", with_bias ? 3 : 2, ci);
    int64_t pads[] = {d->pad, d->pad, d->pad, d->pad}, strides[] = {d->stride, d->stride};
    gr_node_set_ints(g, conv, "pads", 4, pads);
    gr_node_set_ints(g, conv, "strides", 2, strides);
    gr_node_set_int(g, conv, "group", d->group);
    add_bn(g, conv->outputs[0], d->m, &p);
    run(g, (const char *[]){"shapes", "fold_batchnorm", "dce", NULL});

    assert_int_equal(g->n_nodes, 1);
    assert_int_equal(count_op(g, GR_OP_BATCH_NORM), 0);
    conv = g->nodes[0];
    assert_ptr_equal(conv->outputs[0], g->outputs[0]);
    assert_string_equal(g->outputs[0]->name, "y");
    assert_int_equal(conv->n_inputs, 3);
    assert_string_equal(conv->inputs[1]->name, "W"); /* sole user: in place */
    assert_int_equal(conv->inputs[1]->kind, GR_VALUE_PARAM);
    if (!with_bias) assert_string_equal(conv->inputs[2]->name, "W.bn_bias");
    float *w2 = value_floats(conv->inputs[1]), *b2 = value_floats(conv->inputs[2]);
    int64_t oh = conv_out(d->h, d->kh, d->stride, d->pad), ow = conv_out(d->w, d->kw, d->stride, d->pad);
    double *want = ref_conv(d, x, w, with_bias ? b : NULL);
    ref_bn(want, d->n, d->m, oh * ow, &p);
    double *got = ref_conv(d, x, w2, b2);
    expect_close(got, want, d->n * d->m * oh * ow);
    free(want), free(got), free(w2), free(b2), free(x), free(w), free(b);
    free_bn(&p);
    gr_graph_free(g);
}

static void test_fold_bn_into_conv_matches_reference(void **state) {
    (void)state;
    rng_seed(1);
    conv_dims plain = {2, 3, 7, 6, 4, 3, 3, 1, 1, 1};
    check_conv_bn(&plain, 1);
    conv_dims grouped = {1, 4, 5, 5, 6, 3, 2, 2, 2, 0};
    check_conv_bn(&grouped, 0);
    conv_dims depthwise = {2, 4, 6, 6, 4, 3, 3, 4, 1, 1};
    check_conv_bn(&depthwise, 1);
}

static void test_fold_bn_into_conv_transpose_matches_reference(void **state) {
    (void)state;
    rng_seed(2);
    conv_dims d = {2, 4, 3, 3, 6, 2, 3, 2, 2, 0}; /* W:[4,3,2,3], group 2 -> M 6 */
    gr_graph *g = gr_graph_new("convt_bn");
    int64_t mg = d.m / d.group, wn = d.c * mg * d.kh * d.kw;
    float *x = random_floats(d.n * d.c * d.h * d.w, -1, 1);
    float *w = random_floats(wn, -1, 1), *b = random_floats(d.m, -1, 1);
    bn_params p = random_bn(d.m);
    gr_value *ci[] = {input_f32(g, "x", 4, (int64_t[]){d.n, d.c, d.h, d.w}),
                      data_f32(g, GR_VALUE_PARAM, "W", 4, (int64_t[]){d.c, mg, d.kh, d.kw}, w),
                      data_f32(g, GR_VALUE_PARAM, "b", 1, &d.m, b)};
    gr_node *conv = node(g, GR_OP_CONV_TRANSPOSE, "convt", 3, ci);
    gr_node_set_ints(g, conv, "strides", 2, (int64_t[]){2, 2});
    gr_node_set_int(g, conv, "group", 2);
    add_bn(g, conv->outputs[0], d.m, &p);
    run(g, (const char *[]){"shapes", "fold_batchnorm", NULL});
    assert_int_equal(g->n_nodes, 1);
    int64_t oh = (d.h - 1) * d.stride + d.kh, ow = (d.w - 1) * d.stride + d.kw;
    float *w2 = value_floats(g->nodes[0]->inputs[1]), *b2 = value_floats(g->nodes[0]->inputs[2]);
    double *want = ref_conv_transpose(&d, x, w, b);
    ref_bn(want, d.n, d.m, oh * ow, &p);
    double *got = ref_conv_transpose(&d, x, w2, b2);
    expect_close(got, want, d.n * d.m * oh * ow);
    free(want), free(got), free(w2), free(b2), free(x), free(w), free(b);
    free_bn(&p);
    gr_graph_free(g);
}

/* y:[N,M] = alpha * x:[N,K] . w (w:[M,K] if trans else [K,M]) + beta * c[M] */
static double *ref_gemm(int64_t n, int64_t k, int64_t m, const float *x, const float *w,
                        int trans, double alpha, double beta, const float *c) {
    double *y = calloc((size_t)(n * m), sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double acc = 0;
            for (int64_t l = 0; l < k; l++)
                acc += (double)x[i * k + l] * (trans ? w[j * k + l] : w[l * m + j]);
            y[i * m + j] = alpha * acc + (c ? beta * c[j] : 0.0);
        }
    return y;
}

static void test_fold_bn_into_gemm_and_matmul_add(void **state) {
    (void)state;
    rng_seed(3);
    int64_t n = 3, k = 5, m = 4;
    float *x = random_floats(n * k, -1, 1), *w = random_floats(m * k, -1, 1);
    float *c = random_floats(m, -1, 1);
    for (int form = 0; form < 2; form++) {
        bn_params p = random_bn(m);
        gr_graph *g = gr_graph_new("gemm_bn");
        gr_value *xv = input_f32(g, "x", 2, (int64_t[]){n, k});
        gr_value *cv = data_f32(g, GR_VALUE_PARAM, "c", 1, &m, c);
        gr_value *yv;
        if (form == 0) { /* Gemm transB=1, alpha 0.5, beta 2 */
            gr_value *wv = data_f32(g, GR_VALUE_PARAM, "W", 2, (int64_t[]){m, k}, w);
            gr_node *gemm = node(g, GR_OP_GEMM, "gemm", 3, (gr_value *[]){xv, wv, cv});
            gr_node_set_int(g, gemm, "transB", 1);
            gr_node_set_float(g, gemm, "alpha", 0.5);
            gr_node_set_float(g, gemm, "beta", 2.0);
            yv = gemm->outputs[0];
        } else { /* MatMul(x, W:[K,M]) + c */
            gr_value *wv = data_f32(g, GR_VALUE_PARAM, "W", 2, (int64_t[]){k, m}, w);
            gr_value *mm = node(g, GR_OP_MATMUL, "mm", 2, (gr_value *[]){xv, wv})->outputs[0];
            yv = node(g, GR_OP_ADD, "add", 2, (gr_value *[]){cv, mm})->outputs[0];
        }
        add_bn(g, yv, m, &p);
        run(g, (const char *[]){"shapes", "fold_batchnorm", NULL});
        assert_int_equal(count_op(g, GR_OP_BATCH_NORM), 0);
        assert_int_equal(g->n_nodes, form == 0 ? 1 : 2);
        gr_node *last = g->nodes[g->n_nodes - 1];
        gr_node *wn = g->nodes[0];
        float *w2 = value_floats(wn->inputs[1]);
        float *c2 = value_floats(form == 0 ? last->inputs[2] : last->inputs[0]);
        double *want = ref_gemm(n, k, m, x, w, form == 0, form == 0 ? 0.5 : 1.0,
                                form == 0 ? 2.0 : 1.0, c);
        ref_bn(want, n, m, 1, &p);
        double *got = ref_gemm(n, k, m, x, w2, form == 0, gr_node_float(wn, "alpha", 1.0),
                               form == 0 ? gr_node_float(last, "beta", 1.0) : 1.0, c2);
        expect_close(got, want, n * m);
        free(want), free(got), free(w2), free(c2);
        free_bn(&p);
        gr_graph_free(g);
    }
    free(x), free(w), free(c);
}

static void test_fold_bn_copies_shared_weight(void **state) {
    (void)state;
    rng_seed(4);
    gr_graph *g = gr_graph_new("shared");
    float *w = random_floats(2 * 3, -1, 1);
    bn_params p = random_bn(2);
    gr_value *x = input_f32(g, "x", 4, (int64_t[]){1, 3, 2, 2});
    gr_value *wv = data_f32(g, GR_VALUE_PARAM, "W", 4, (int64_t[]){2, 3, 1, 1}, w);
    gr_value *a = node(g, GR_OP_CONV, "conv_a", 2, (gr_value *[]){x, wv})->outputs[0];
    gr_value *b = named(g, GR_OP_CONV, "conv_b", "z", 2, (gr_value *[]){x, wv});
    add_bn(g, a, 2, &p);
    assert_int_equal(gr_graph_add_output(g, b), GR_OK);
    run(g, (const char *[]){"shapes", "fold_batchnorm", NULL});
    gr_node *ca = gr_graph_find_node(g, "conv_a"), *cb = gr_graph_find_node(g, "conv_b");
    assert_ptr_equal(cb->inputs[1], wv); /* unchanged for the other user */
    for (int i = 0; i < 6; i++) assert_true(load(wv, i) == w[i]);
    assert_string_equal(ca->inputs[1]->name, "W.bn_folded");
    assert_int_equal(ca->inputs[1]->kind, GR_VALUE_PARAM);
    for (int i = 0; i < 6; i++) {
        int c = i / 3;
        double s = p.scale[c] / sqrt((double)p.var[c] + p.eps);
        assert_true(fabs(load(ca->inputs[1], i) - w[i] * s) < 1e-6);
    }
    free(w);
    free_bn(&p);
    gr_graph_free(g);
}

/* Conv -> BN -> BN with W shared by another Conv: both fold into one copy. */
static void test_fold_bn_chain_into_shared_weight(void **state) {
    (void)state;
    rng_seed(6);
    gr_graph *g = gr_graph_new("chain");
    float *w = random_floats(2 * 3, -1, 1);
    bn_params p1 = random_bn(2), p2 = random_bn(2);
    gr_value *x = input_f32(g, "x", 4, (int64_t[]){1, 3, 2, 2});
    gr_value *wv = data_f32(g, GR_VALUE_PARAM, "W", 4, (int64_t[]){2, 3, 1, 1}, w);
    gr_value *a = node(g, GR_OP_CONV, "conv_a", 2, (gr_value *[]){x, wv})->outputs[0];
    gr_value *z = named(g, GR_OP_CONV, "conv_b", "z", 2, (gr_value *[]){x, wv});
    gr_value *t = bn_node(g, a, 2, &p1, "bn1", "t")->outputs[0];
    gr_value *y = bn_node(g, t, 2, &p2, "bn2", "y")->outputs[0];
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    assert_int_equal(gr_graph_add_output(g, z), GR_OK);
    run(g, (const char *[]){"shapes", "fold_batchnorm", NULL});
    assert_int_equal(g->n_nodes, 2);
    gr_node *ca = gr_graph_find_node(g, "conv_a");
    assert_ptr_equal(ca->outputs[0], g->outputs[0]);
    assert_string_equal(ca->inputs[1]->name, "W.bn_folded");
    assert_null(gr_graph_find(g, "W.bn_folded_1"));
    for (int i = 0; i < 6; i++) {
        int c = i / 3;
        double s1 = p1.scale[c] / sqrt((double)p1.var[c] + p1.eps);
        double s2 = p2.scale[c] / sqrt((double)p2.var[c] + p2.eps);
        double b = ((0 - p1.mean[c]) * s1 + p1.bias[c] - p2.mean[c]) * s2 + p2.bias[c];
        assert_true(fabs(load(ca->inputs[1], i) - w[i] * s1 * s2) < 1e-5);
        if (i % 3 == 0) assert_true(fabs(load(ca->inputs[2], c) - b) < 1e-5);
        assert_true(load(wv, i) == w[i]);
    }
    free(w);
    free_bn(&p1);
    free_bn(&p2);
    gr_graph_free(g);
}

static void test_fold_bn_leaves_unfoldable_batchnorms(void **state) {
    (void)state;
    rng_seed(5);
    bn_params p = random_bn(2);
    float w[] = {1, 2, 3, 4, 5, 6};
    for (int which = 0; which < 3; which++) {
        gr_graph *g = gr_graph_new("keep");
        gr_value *x = input_f32(g, "x", 4, (int64_t[]){1, 3, 2, 2});
        gr_value *wv = data_f32(g, GR_VALUE_PARAM, "W", 4, (int64_t[]){2, 3, 1, 1}, w);
        gr_value *c = node(g, GR_OP_CONV, "conv", 2, (gr_value *[]){x, wv})->outputs[0];
        gr_value *v = c;
        if (which == 0) v = node(g, GR_OP_RELU, "relu", 1, &c)->outputs[0]; /* no Conv before */
        gr_node *bn = add_bn(g, v, 2, &p);
        if (which == 1) gr_node_set_int(g, bn, "training_mode", 1);
        if (which == 2) assert_int_equal(gr_graph_add_output(g, c), GR_OK); /* other user */
        int before = g->n_nodes;
        run(g, (const char *[]){"shapes", "fold_batchnorm", NULL});
        assert_int_equal(g->n_nodes, before);
        assert_int_equal(count_op(g, GR_OP_BATCH_NORM), 1);
        for (int i = 0; i < 6; i++) assert_true(load(gr_graph_find(g, "W"), i) == w[i]);
        gr_graph_free(g);
    }
    free_bn(&p);
}

/* --- simplify ---------------------------------------------------------- */

static void test_simplify_drops_inference_dropout(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("dropout");
    gr_value *x = input_f32(g, "x", 2, (int64_t[]){2, 3});
    gr_shape scalar = gr_shape_scalar();
    unsigned char no = 0, yes = 1;
    gr_value *off = gr_graph_add_data(g, GR_VALUE_CONST, "off", GR_DTYPE_BOOL, &scalar, &no);
    gr_value *on = gr_graph_add_data(g, GR_VALUE_CONST, "on", GR_DTYPE_BOOL, &scalar, &yes);
    gr_node *d1 = gr_node_add(g, GR_OP_DROPOUT, "d1", 3, (gr_value *[]){x, NULL, off}, 2,
                              (const char *[]){"d1_y", "mask"});
    gr_value *r = named(g, GR_OP_RELU, "relu", "r", 1, &d1->outputs[0]);
    gr_value *nm = named(g, GR_OP_NOT, "not", "nm", 1, &d1->outputs[1]);
    gr_value *d2 = gr_node_add(g, GR_OP_DROPOUT, "d2", 1, &r, 1, (const char *[]){"y"})->outputs[0];
    gr_value *t = gr_node_add(g, GR_OP_DROPOUT, "d3", 3, (gr_value *[]){r, NULL, on}, 1,
                              (const char *[]){"t"})->outputs[0];
    for (int i = 0; i < 3; i++)
        assert_int_equal(gr_graph_add_output(g, (gr_value *[]){d2, nm, t}[i]), GR_OK);
    run(g, (const char *[]){"shapes", "simplify", "dce", NULL});
    assert_null(gr_graph_find_node(g, "d1"));
    assert_ptr_equal(gr_graph_find_node(g, "relu")->inputs[0], x);
    gr_value *mask = gr_graph_find(g, "mask");
    assert_int_equal(mask->kind, GR_VALUE_CONST);
    for (int i = 0; i < 6; i++) assert_int_equal(((unsigned char *)mask->data)[i], 1);
    gr_node *d2n = gr_graph_find_node(g, "d2"); /* defines output y: now an Identity */
    assert_int_equal(d2n->op, GR_OP_IDENTITY);
    assert_string_equal(g->outputs[0]->name, "y");
    assert_int_equal(gr_graph_find_node(g, "d3")->op, GR_OP_DROPOUT); /* training */
    gr_graph_free(g);
}

static void test_simplify_forwards_identity_cast_and_transpose(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("noops");
    gr_value *x = input_f32(g, "x", 3, (int64_t[]){2, 3, 4});
    gr_value *i1 = node(g, GR_OP_IDENTITY, "id", 1, &x)->outputs[0];
    gr_node *cast = node(g, GR_OP_CAST, "cast", 1, &i1);
    gr_node_set_int(g, cast, "to", GR_DTYPE_F32);
    gr_node *t0 = node(g, GR_OP_TRANSPOSE, "t0", 1, &cast->outputs[0]);
    gr_node_set_ints(g, t0, "perm", 3, (int64_t[]){0, 1, 2});
    gr_node *t1 = node(g, GR_OP_TRANSPOSE, "t1", 1, &t0->outputs[0]);
    gr_node_set_ints(g, t1, "perm", 3, (int64_t[]){1, 2, 0}); /* [3,4,2] */
    gr_node *t2 = node(g, GR_OP_TRANSPOSE, "t2", 1, &t1->outputs[0]);
    gr_node_set_ints(g, t2, "perm", 3, (int64_t[]){0, 2, 1}); /* [3,2,4] */
    gr_node *t3 = node(g, GR_OP_TRANSPOSE, "t3", 1, &t2->outputs[0]);
    gr_node_set_ints(g, t3, "perm", 3, (int64_t[]){1, 0, 2}); /* back to [2,3,4] */
    gr_value *r = named(g, GR_OP_RELU, "relu", "r", 1, &t3->outputs[0]);
    gr_value *y = named(g, GR_OP_IDENTITY, "out", "y", 1, &r);
    gr_value *z = named(g, GR_OP_NEG, "neg", "z", 1, &y);
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    assert_int_equal(gr_graph_add_output(g, z), GR_OK);
    run(g, (const char *[]){"shapes", "simplify", "dce", NULL});
    /* t1.t2 composes to perm [1,0,2]... then with t3 to the identity. */
    assert_int_equal(count_op(g, GR_OP_TRANSPOSE), 0);
    assert_int_equal(count_op(g, GR_OP_CAST), 0);
    assert_ptr_equal(gr_graph_find_node(g, "relu")->inputs[0], x);
    assert_non_null(gr_graph_find_node(g, "out")); /* y keeps its name */
    assert_ptr_equal(gr_graph_find_node(g, "neg")->inputs[0], r);
    assert_int_equal(g->n_nodes, 3);
    gr_graph_free(g);
}

static void test_simplify_composes_transposes(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("perm");
    gr_value *x = input_f32(g, "x", 3, (int64_t[]){2, 3, 4});
    gr_node *t1 = node(g, GR_OP_TRANSPOSE, "t1", 1, &x);
    gr_node_set_ints(g, t1, "perm", 3, (int64_t[]){1, 2, 0}); /* [3,4,2] */
    gr_node *t2 = gr_node_add(g, GR_OP_TRANSPOSE, "t2", 1, &t1->outputs[0], 1,
                              (const char *[]){"y"});
    gr_node_set_ints(g, t2, "perm", 3, (int64_t[]){2, 1, 0}); /* [2,4,3] */
    assert_int_equal(gr_graph_add_output(g, t2->outputs[0]), GR_OK);
    run(g, (const char *[]){"shapes", "simplify", "dce", NULL});
    assert_int_equal(g->n_nodes, 1);
    const int64_t *perm;
    assert_int_equal(gr_node_ints(g->nodes[0], "perm", &perm), 3);
    assert_int_equal(perm[0], 0); /* y[i,j,k] = x[i,k,j] */
    assert_int_equal(perm[1], 2);
    assert_int_equal(perm[2], 1);
    assert_ptr_equal(g->nodes[0]->inputs[0], x);
    assert_int_equal(g->outputs[0]->shape.dims[1], 4);
    gr_graph_free(g);
}

static void test_simplify_collapses_reshape_chains(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("reshapes");
    gr_value *x = input_f32(g, "x", 4, (int64_t[]){2, 3, 1, 4});
    gr_value *s = named(g, GR_OP_SQUEEZE, "sq", "s", 2,
                        (gr_value *[]){x, const_i64(g, "ax", 1, (int64_t[]){2})});
    gr_value *f = named(g, GR_OP_FLATTEN, "fl", "f", 1, &s); /* [2,12] */
    gr_value *u = named(g, GR_OP_UNSQUEEZE, "unsq", "u", 2,
                        (gr_value *[]){f, const_i64(g, "ax0", 1, (int64_t[]){0})});
    gr_value *y = named(g, GR_OP_RESHAPE, "rs", "y", 2,
                        (gr_value *[]){u, const_i64(g, "shape", 2, (int64_t[]){4, -1})});
    gr_value *back = named(g, GR_OP_RESHAPE, "rs2", "back", 2,
                           (gr_value *[]){y, const_i64(g, "shape2", 4, (int64_t[]){2, 3, 1, 4})});
    gr_value *z = named(g, GR_OP_RELU, "relu", "z", 1, &back);
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    assert_int_equal(gr_graph_add_output(g, z), GR_OK);
    run(g, (const char *[]){"shapes", "simplify", "dce", NULL});
    assert_int_equal(g->n_nodes, 2);
    gr_node *rs = gr_graph_find_node(g, "rs");
    assert_int_equal(rs->op, GR_OP_RESHAPE);
    assert_ptr_equal(rs->inputs[0], x);
    assert_int_equal(g->outputs[0]->shape.dims[0], 4);
    assert_int_equal(g->outputs[0]->shape.dims[1], 6);
    assert_ptr_equal(gr_graph_find_node(g, "relu")->inputs[0], x); /* x -> .. -> x */
    gr_graph_free(g);
}

/* --- allocation failures ------------------------------------------------ */

static gr_graph *mixed_graph(void) {
    static const float w[] = {1, 2, 3, 4, 5, 6}, v[] = {1, 2};
    gr_graph *g = gr_graph_new("mixed");
    gr_value *x = input_f32(g, "x", 4, (int64_t[]){1, 3, 2, 2});
    gr_value *wv = data_f32(g, GR_VALUE_PARAM, "W", 4, (int64_t[]){2, 3, 1, 1}, w);
    gr_value *id = node(g, GR_OP_IDENTITY, "id", 1, &x)->outputs[0];
    gr_value *c = node(g, GR_OP_CONV, "conv", 2, (gr_value *[]){id, wv})->outputs[0];
    gr_value *bi[] = {c, data_f32(g, GR_VALUE_CONST, "s", 1, (int64_t[]){2}, v),
                      data_f32(g, GR_VALUE_CONST, "b", 1, (int64_t[]){2}, v),
                      data_f32(g, GR_VALUE_CONST, "m", 1, (int64_t[]){2}, v),
                      data_f32(g, GR_VALUE_CONST, "v", 1, (int64_t[]){2}, v)};
    gr_value *y = node(g, GR_OP_BATCH_NORM, "bn", 5, bi)->outputs[0];
    gr_value *r1 = node(g, GR_OP_RELU, "r1", 1, &y)->outputs[0];
    gr_value *r2 = node(g, GR_OP_RELU, "r2", 1, &y)->outputs[0];
    gr_value *f = node(g, GR_OP_FLATTEN, "fl", 1, &r2)->outputs[0];
    gr_value *rs = node(g, GR_OP_RESHAPE, "rs", 2,
                        (gr_value *[]){f, const_i64(g, "sh", 1, (int64_t[]){8})})->outputs[0];
    assert_int_equal(gr_graph_add_output(g, r1), GR_OK);
    assert_int_equal(gr_graph_add_output(g, rs), GR_OK);
    return g;
}

static void test_passes_survive_every_allocation_failure(void **state) {
    (void)state;
    static const char *const pipeline[] = {"shapes", "simplify", "fold_batchnorm", "cse",
                                           "dce", NULL};
    for (long n = 1;; n++) {
        gr_status st = {0};
        gr_graph *g = mixed_graph();
        gr_debug_fail_alloc_after(n);
        gr_code rc = gr_passes_run(g, pipeline, NULL, &st);
        gr_debug_fail_alloc_after(0);
        if (rc != GR_OK && rc != GR_ERR_NOMEM) fail_msg("allocation %ld: %s", n, st.msg);
        if (rc == GR_OK) assert_int_equal(g->n_nodes, 3); /* conv, relu, reshape */
        gr_graph_free(g);
        if (rc == GR_OK) break;
        assert_true(n < 10000);
    }
}

/* --- the light ONNX models ---------------------------------------------- */

#define LIGHT_MODELS GRAFT_SOURCE_DIR "/../shared/onnx-tests/light"

static void check_light_model(const char *path, const char *name) {
    gr_status st = {0};
    gr_graph *g = NULL;
    if (gr_import_file(path, &g, &st) != GR_OK) fail_msg("%s: %s", name, st.msg);
    gr_pass_opts opts = {.batch = 1};
    static const char *const prepare[] = {"specialize", "shapes", NULL};
    static const char *const infer[] = {"simplify", "fold_batchnorm", "cse", "fold", "dce", NULL};
    if (gr_passes_run(g, prepare, &opts, &st) != GR_OK) fail_msg("%s: %s", name, st.msg);
    int before = g->n_nodes, bn_before = count_op(g, GR_OP_BATCH_NORM);
    if (gr_passes_run(g, infer, &opts, &st) != GR_OK) fail_msg("%s: %s", name, st.msg);
    if (gr_graph_verify(g, &st) != GR_OK) fail_msg("%s: %s", name, st.msg);
    int bn_after = count_op(g, GR_OP_BATCH_NORM);
    print_message("%-28s nodes %4d -> %4d  BatchNormalization %3d -> %3d\n", name, before,
                  g->n_nodes, bn_before, bn_after);
    assert_true(g->n_nodes < before);
    if (strstr(name, "resnet50")) {
        assert_true(bn_before > 0);
        assert_int_equal(bn_after, 0);
    }
    gr_graph_free(g);
}

static void test_light_models_simplify_and_verify(void **state) {
    (void)state;
    DIR *d = opendir(LIGHT_MODELS);
    if (!d) {
        print_message("skipped: %s not found\n", LIGHT_MODELS);
        return;
    }
    int count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".onnx")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%.1024s", LIGHT_MODELS, e->d_name);
        check_light_model(path, e->d_name);
        count++;
    }
    closedir(d);
    assert_true(count > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cse_merges_identical_nodes_in_chains),
        cmocka_unit_test(test_cse_compares_attributes_with_defaults),
        cmocka_unit_test(test_cse_distinguishes_omitted_inputs),
        cmocka_unit_test(test_cse_compares_tensor_attributes),
        cmocka_unit_test(test_cse_merges_equal_consts_but_never_params),
        cmocka_unit_test(test_cse_keeps_duplicates_that_define_graph_outputs),
        cmocka_unit_test(test_cse_skips_training_dropout_and_unknown_ops),
        cmocka_unit_test(test_fold_bn_into_conv_matches_reference),
        cmocka_unit_test(test_fold_bn_into_conv_transpose_matches_reference),
        cmocka_unit_test(test_fold_bn_into_gemm_and_matmul_add),
        cmocka_unit_test(test_fold_bn_copies_shared_weight),
        cmocka_unit_test(test_fold_bn_chain_into_shared_weight),
        cmocka_unit_test(test_fold_bn_leaves_unfoldable_batchnorms),
        cmocka_unit_test(test_simplify_drops_inference_dropout),
        cmocka_unit_test(test_simplify_forwards_identity_cast_and_transpose),
        cmocka_unit_test(test_simplify_composes_transposes),
        cmocka_unit_test(test_simplify_collapses_reshape_chains),
        cmocka_unit_test(test_passes_survive_every_allocation_failure),
        cmocka_unit_test(test_light_models_simplify_and_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
