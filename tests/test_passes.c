/* test_passes.c: the pass driver, --shape parsing, specialize, shape
 * inference with folding, the reference evaluator, fold and dce. Graphs are
 * built with the IR API. Expected values are worked out by hand from the
 * ONNX operator spec (its examples where it gives them), never by graft. */
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
#include "passes/passes_internal.h"

/* --- helpers ---------------------------------------------------------- */

static gr_shape shape_of(int rank, const int64_t *dims) { return gr_shape_make(rank, dims); }

static gr_value *const_i64(gr_graph *g, const char *name, int rank, const int64_t *dims,
                           const int64_t *values) {
    gr_shape s = shape_of(rank, dims);
    gr_value *v = gr_graph_add_data(g, GR_VALUE_CONST, name, GR_DTYPE_I64, &s, values);
    assert_non_null(v);
    return v;
}

static gr_value *const_f32(gr_graph *g, const char *name, int rank, const int64_t *dims,
                           const float *values) {
    gr_shape s = shape_of(rank, dims);
    gr_value *v = gr_graph_add_data(g, GR_VALUE_CONST, name, GR_DTYPE_F32, &s, values);
    assert_non_null(v);
    return v;
}

static gr_value *scalar_i64(gr_graph *g, const char *name, int64_t x) {
    return const_i64(g, name, 0, NULL, &x);
}

/* [N,...] input with a symbolic first dim. */
static gr_value *input_sym(gr_graph *g, const char *name, const char *sym, int rank,
                           const int64_t *dims) {
    gr_shape s = shape_of(rank, dims);
    if (sym) assert_int_equal(gr_graph_set_dim_symbol(g, &s, 0, sym), GR_OK);
    gr_value *v = gr_graph_add_input(g, name, GR_DTYPE_F32, &s);
    assert_non_null(v);
    return v;
}

static gr_node *node(gr_graph *g, gr_op op, const char *name, int n_inputs,
                     gr_value *const *inputs) {
    gr_node *n = gr_node_add(g, op, name, n_inputs, inputs, 1, NULL);
    assert_non_null(n);
    return n;
}

/* Runs the evaluator on n (inputs: constant values) with the output type
 * the ONNX spec gives; the caller frees out->data. */
static gr_code eval(gr_node *n, gr_dtype dtype, int rank, const int64_t *dims,
                    gr_tensor *out, gr_status *st) {
    const gr_tensor *pin[8] = {0};
    gr_tensor tin[8];
    for (int i = 0; i < n->n_inputs; i++) {
        gr_value *v = n->inputs[i];
        if (!v) continue;
        tin[i] = (gr_tensor){v->dtype, v->shape, v->data, v->nbytes};
        pin[i] = &tin[i];
    }
    out->dtype = dtype;
    out->shape = shape_of(rank, dims);
    out->nbytes = (size_t)gr_shape_numel(&out->shape) * gr_dtype_size(dtype);
    out->data = calloc(out->nbytes + 1, 1);
    return gr_eval_node(n, pin, out, st);
}

static void expect_i64(const gr_tensor *t, int count, const int64_t *want) {
    assert_int_equal(gr_shape_numel(&t->shape), count);
    for (int i = 0; i < count; i++)
        assert_int_equal(gr_dtype_load_i64(t->dtype, t->data, i), want[i]);
}

static void expect_f64(const gr_tensor *t, int count, const double *want) {
    assert_int_equal(gr_shape_numel(&t->shape), count);
    for (int i = 0; i < count; i++)
        assert_true(gr_dtype_load_f64(t->dtype, t->data, i) == want[i]);
}

static void expect_const_i64(const gr_value *v, int count, const int64_t *want) {
    assert_int_equal(v->kind, GR_VALUE_CONST);
    assert_int_equal(gr_value_numel(v), count);
    for (int i = 0; i < count; i++)
        assert_int_equal(gr_dtype_load_i64(v->dtype, v->data, i), want[i]);
}

static void assert_msg_has(const gr_status *st, const char *part) {
    if (!strstr(st->msg, part))
        fail_msg("message \"%s\" lacks \"%s\"", st->msg, part);
}

/* --- gr_parse_shape, gr_pass_find ------------------------------------- */

static void test_parse_shape_numbers_and_symbols(void **state) {
    (void)state;
    gr_status st = {0};
    gr_shape s;
    assert_int_equal(gr_parse_shape("1x3x32x32", &s, &st), GR_OK);
    assert_int_equal(s.rank, 4);
    assert_int_equal(s.dims[0], 1);
    assert_int_equal(s.dims[1], 3);
    assert_int_equal(s.dims[3], 32);
    assert_int_equal(gr_parse_shape("Nx3x224x224", &s, &st), GR_OK);
    assert_int_equal(s.rank, 4);
    assert_int_equal(s.dims[0], GR_DIM_DYNAMIC);
    assert_string_equal(s.syms[0], "N");
    assert_null(s.syms[1]);
    assert_int_equal(s.dims[2], 224);
    assert_int_equal(gr_parse_shape("7", &s, &st), GR_OK);
    assert_int_equal(s.rank, 1);
    assert_int_equal(s.dims[0], 7);
    assert_int_equal(gr_parse_shape("seq_len2x16", &s, &st), GR_OK);
    assert_string_equal(s.syms[0], "seq_len2");
    assert_int_equal(gr_parse_shape("1x2x3x4x5x6x7x8", &s, &st), GR_OK);
    assert_int_equal(s.rank, GR_MAX_RANK);
}

static void test_parse_shape_rejects_bad_text(void **state) {
    (void)state;
    gr_status st = {0};
    gr_shape s;
    assert_int_equal(gr_parse_shape("", &s, &st), GR_ERR_BAD_ARG);
    assert_int_equal(gr_parse_shape("1xx3", &s, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "dim 1 is empty");
    assert_int_equal(gr_parse_shape("3x", &s, &st), GR_ERR_BAD_ARG);
    assert_int_equal(gr_parse_shape("x3", &s, &st), GR_ERR_BAD_ARG);
    assert_int_equal(gr_parse_shape("1x-3", &s, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "negative");
    assert_int_equal(gr_parse_shape("1x3a", &s, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "'3a'");
    assert_int_equal(gr_parse_shape("1,3", &s, &st), GR_ERR_BAD_ARG);
    assert_int_equal(gr_parse_shape("N?x3", &s, &st), GR_ERR_BAD_ARG);
    assert_int_equal(gr_parse_shape("99999999999999999999x3", &s, &st), GR_ERR_BAD_ARG);
    assert_int_equal(gr_parse_shape("1x2x3x4x5x6x7x8x9", &s, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "more than 8 dims");
}

static void test_pass_find_knows_every_pass(void **state) {
    (void)state;
    assert_ptr_equal(gr_pass_find("specialize"), gr_pass_specialize);
    assert_ptr_equal(gr_pass_find("shapes"), gr_pass_shapes);
    assert_ptr_equal(gr_pass_find("fold"), gr_pass_fold);
    assert_ptr_equal(gr_pass_find("dce"), gr_pass_dce);
    assert_null(gr_pass_find("nope"));
    assert_null(gr_pass_find(NULL));
}

static gr_graph *flatten_chain(void);

/* --- specialize -------------------------------------------------------- */

/* x:[N,3,4,4] y:[N,5] z:[M,2] feeding a Relu each. */
static gr_graph *three_inputs(void) {
    gr_graph *g = gr_graph_new("three");
    gr_value *x = input_sym(g, "x", "N", 4, (int64_t[]){-1, 3, 4, 4});
    gr_value *y = input_sym(g, "y", "N", 2, (int64_t[]){-1, 5});
    gr_value *z = input_sym(g, "z", "M", 2, (int64_t[]){-1, 2});
    gr_value *in[] = {x, y, z};
    for (int i = 0; i < 3; i++)
        assert_int_equal(gr_graph_add_output(g, node(g, GR_OP_RELU, NULL, 1, &in[i])->outputs[0]),
                         GR_OK);
    return g;
}

static void test_specialize_batch_fixes_dynamic_first_dims(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = three_inputs();
    gr_pass_opts opts = {.batch = 4};
    assert_int_equal(gr_pass_specialize(g, &opts, &st), GR_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g->inputs[i]->shape.dims[0], 4);
        assert_null(g->inputs[i]->shape.syms[0]);
    }
    assert_int_equal(g->inputs[0]->shape.dims[1], 3);
    gr_graph_free(g);
}

static void test_specialize_shape_binds_shared_symbol(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = three_inputs();
    gr_input_shape shapes[1] = {{"x", shape_of(4, (int64_t[]){2, 3, 4, 4})}};
    gr_pass_opts opts = {.n_input_shapes = 1, .input_shapes = shapes};
    assert_int_equal(gr_pass_specialize(g, &opts, &st), GR_OK);
    assert_int_equal(g->inputs[0]->shape.dims[0], 2);
    assert_int_equal(g->inputs[1]->shape.dims[0], 2); /* y shares N */
    assert_int_equal(g->inputs[2]->shape.dims[0], GR_DIM_DYNAMIC); /* z has M */
    assert_string_equal(g->inputs[2]->shape.syms[0], "M");
    /* --batch then fixes only what is still dynamic. */
    opts.batch = 8;
    assert_int_equal(gr_pass_specialize(g, &opts, &st), GR_OK);
    assert_int_equal(g->inputs[0]->shape.dims[0], 2);
    assert_int_equal(g->inputs[1]->shape.dims[0], 2);
    assert_int_equal(g->inputs[2]->shape.dims[0], 8);
    gr_graph_free(g);
}

static void test_specialize_shape_before_batch(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = three_inputs();
    gr_input_shape shapes[1] = {{"z", shape_of(2, (int64_t[]){6, 2})}};
    gr_pass_opts opts = {.batch = 3, .n_input_shapes = 1, .input_shapes = shapes};
    assert_int_equal(gr_pass_specialize(g, &opts, &st), GR_OK);
    assert_int_equal(g->inputs[0]->shape.dims[0], 3);
    assert_int_equal(g->inputs[1]->shape.dims[0], 3);
    assert_int_equal(g->inputs[2]->shape.dims[0], 6);
    gr_graph_free(g);
}

static void test_specialize_rejects_unknown_input(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = three_inputs();
    gr_input_shape shapes[1] = {{"image", shape_of(2, (int64_t[]){1, 5})}};
    gr_pass_opts opts = {.n_input_shapes = 1, .input_shapes = shapes};
    assert_int_equal(gr_pass_specialize(g, &opts, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "'image'");
    assert_msg_has(&st, "'x', 'y', 'z'");
    gr_graph_free(g);
}

static void test_specialize_rejects_contradictions(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = three_inputs();
    gr_input_shape rank[1] = {{"y", shape_of(3, (int64_t[]){1, 5, 1})}};
    gr_pass_opts opts = {.n_input_shapes = 1, .input_shapes = rank};
    assert_int_equal(gr_pass_specialize(g, &opts, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "'y'");
    assert_msg_has(&st, "rank 2");
    assert_msg_has(&st, "rank 3");
    gr_input_shape dim[1] = {{"x", shape_of(4, (int64_t[]){1, 5, 4, 4})}};
    opts.input_shapes = dim;
    assert_int_equal(gr_pass_specialize(g, &opts, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "input 'x' dim 1 is 3 in the model, not 5");
    /* A failed specialization leaves the inputs as they were. */
    assert_int_equal(g->inputs[0]->shape.dims[0], GR_DIM_DYNAMIC);
    assert_string_equal(g->inputs[0]->shape.syms[0], "N");
    gr_input_shape both[2] = {{"x", shape_of(4, (int64_t[]){2, 3, 4, 4})},
                              {"y", shape_of(2, (int64_t[]){7, 5})}};
    opts.input_shapes = both;
    opts.n_input_shapes = 2;
    assert_int_equal(gr_pass_specialize(g, &opts, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "dim 'N' is 2 for input 'x' but 7 for input 'y'");
    gr_pass_opts negative = {.batch = -1};
    assert_int_equal(gr_pass_specialize(g, &negative, &st), GR_ERR_BAD_ARG);
    gr_graph_free(g);
}

static void test_specialize_clears_stale_shapes(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = three_inputs();
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    gr_value *r = g->outputs[0];
    assert_int_equal(r->shape.dims[0], GR_DIM_DYNAMIC);
    static const char *const pipeline[] = {"specialize", "shapes", NULL};
    gr_pass_opts opts = {.batch = 4};
    assert_int_equal(gr_passes_run(g, pipeline, &opts, &st), GR_OK);
    char buf[64];
    assert_string_equal(gr_shape_str(&r->shape, buf, sizeof buf), "[4,3,4,4]");
    assert_int_equal(r->dtype, GR_DTYPE_F32);
    gr_graph_free(g);
    /* A deeper graph inferred with N dynamic, then specialised: the
     * verifier between the passes sees no stale types. */
    g = flatten_chain();
    assert_int_equal(gr_pass_shapes(g, NULL, &st), GR_OK);
    gr_code rc = gr_passes_run(g, pipeline, &opts, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    assert_string_equal(gr_shape_str(&gr_graph_find(g, "y")->shape, buf, sizeof buf), "[4,48]");
    gr_graph_free(g);
}

static void test_specialize_binds_symbols_in_declared_shapes(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("decl_sym");
    input_sym(g, "x", "N", 2, (int64_t[]){-1, 3});
    gr_value *a = input_sym(g, "a", "M", 2, (int64_t[]){-1, 3});
    gr_node *r = gr_node_add(g, GR_OP_RELU, "r", 1, &a, 1, (const char *const[]){"y"});
    gr_value *y = r->outputs[0];
    y->has_declared = 1;
    y->declared_dtype = GR_DTYPE_F32;
    y->declared_shape = shape_of(2, (int64_t[]){-1, 3});
    assert_int_equal(gr_graph_set_dim_symbol(g, &y->declared_shape, 0, "N"), GR_OK);
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    /* N = 2 from --shape, M = 5 from --batch: y claims [N,3] = [2,3] but
     * Relu of a:[5,3] is [5,3]. */
    gr_input_shape shapes[1] = {{"x", shape_of(2, (int64_t[]){2, 3})}};
    gr_pass_opts opts = {.batch = 5, .n_input_shapes = 1, .input_shapes = shapes};
    static const char *const pipeline[] = {"specialize", "shapes", NULL};
    assert_int_equal(gr_passes_run(g, pipeline, &opts, &st), GR_ERR_BAD_MODEL);
    assert_msg_has(&st, "declares f32[2,3] but node 'r' (Relu) produces f32[5,3]");
    gr_graph_free(g);
}

/* --- shapes: folding -------------------------------------------------- */

/* x:[N,3,4,4] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0), [0]), [-1]))
 * i.e. the flatten-like reshape to [N, 48] exporters emit. */
static gr_graph *flatten_chain(void) {
    gr_graph *g = gr_graph_new("chain");
    gr_value *x = input_sym(g, "x", "N", 4, (int64_t[]){-1, 3, 4, 4});
    gr_value *s = node(g, GR_OP_SHAPE, "shape", 1, &x)->outputs[0];
    gr_value *gi[] = {s, scalar_i64(g, "zero", 0)};
    gr_value *n0 = node(g, GR_OP_GATHER, "gather", 2, gi)->outputs[0];
    gr_value *ui[] = {n0, const_i64(g, "axes0", 1, (int64_t[]){1}, (int64_t[]){0})};
    gr_value *n1 = node(g, GR_OP_UNSQUEEZE, "unsqueeze", 2, ui)->outputs[0];
    gr_value *ci[] = {n1, const_i64(g, "minus1", 1, (int64_t[]){1}, (int64_t[]){-1})};
    gr_node *cat = node(g, GR_OP_CONCAT, "concat", 2, ci);
    assert_int_equal(gr_node_set_int(g, cat, "axis", 0), GR_OK);
    gr_value *ri[] = {x, cat->outputs[0]};
    gr_node *reshape = gr_node_add(g, GR_OP_RESHAPE, "reshape", 2, ri, 1,
                                   (const char *const[]){"y"});
    assert_int_equal(gr_graph_add_output(g, reshape->outputs[0]), GR_OK);
    return g;
}

static void test_shapes_folds_shape_chain_into_reshape_constant(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = flatten_chain();
    static const char *const pipeline[] = {"specialize", "shapes", NULL};
    gr_pass_opts opts = {.batch = 4};
    gr_code rc = gr_passes_run(g, pipeline, &opts, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(g->n_nodes, 1);
    assert_int_equal(g->nodes[0]->op, GR_OP_RESHAPE);
    gr_value *target = g->nodes[0]->inputs[1];
    expect_const_i64(target, 2, (int64_t[]){4, -1});
    char buf[64];
    gr_value *y = gr_graph_find(g, "y");
    assert_string_equal(gr_shape_str(&y->shape, buf, sizeof buf), "[4,48]");
    assert_null(gr_graph_find(g, "shape_out"));
    gr_graph_free(g);
}

static void test_shapes_keeps_shape_of_dynamic_dim(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = flatten_chain();
    /* No batch: Shape(x) reads the dynamic N, so nothing folds. */
    gr_code rc = gr_pass_shapes(g, NULL, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(g->n_nodes, 5);
    gr_graph_free(g);
}

/* x:[N,3,5] -> Reshape(x, Concat([-1], Unsqueeze(Gather(S,1) * Gather(S,2))))
 * with S = Shape(x): x.view(-1, C*H) folds without knowing N. */
static void test_shapes_folds_known_dims_picked_from_dynamic_shape(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("partial");
    gr_value *x = input_sym(g, "x", "N", 3, (int64_t[]){-1, 3, 5});
    gr_value *s = node(g, GR_OP_SHAPE, "shape", 1, &x)->outputs[0];
    gr_value *i1[] = {s, scalar_i64(g, "one", 1)}, *i2[] = {s, scalar_i64(g, "two", 2)};
    gr_value *mi[] = {node(g, GR_OP_GATHER, "c", 2, i1)->outputs[0],
                      node(g, GR_OP_GATHER, "h", 2, i2)->outputs[0]};
    gr_value *ui[] = {node(g, GR_OP_MUL, "ch", 2, mi)->outputs[0],
                      const_i64(g, "axes", 1, (int64_t[]){1}, (int64_t[]){0})};
    gr_value *ci[] = {const_i64(g, "minus1", 1, (int64_t[]){1}, (int64_t[]){-1}),
                      node(g, GR_OP_UNSQUEEZE, "unsq", 2, ui)->outputs[0]};
    gr_node *cat = node(g, GR_OP_CONCAT, "cat", 2, ci);
    gr_node_set_int(g, cat, "axis", 0);
    gr_value *ri[] = {x, cat->outputs[0]};
    gr_value *y = node(g, GR_OP_RESHAPE, "reshape", 2, ri)->outputs[0];
    /* Slice(S, [1], [big]) = x.shape[1:] = [3,5]; Gather(S, 0) stays. */
    gr_value *si[] = {s, const_i64(g, "st", 1, (int64_t[]){1}, (int64_t[]){1}),
                      const_i64(g, "en", 1, (int64_t[]){1}, (int64_t[]){INT64_MAX})};
    gr_value *tail = node(g, GR_OP_SLICE, "tail", 3, si)->outputs[0];
    gr_value *i0[] = {s, scalar_i64(g, "zero", 0)};
    gr_value *batch = node(g, GR_OP_GATHER, "n", 2, i0)->outputs[0];
    gr_value *outs[] = {y, tail, batch};
    for (int i = 0; i < 3; i++) assert_int_equal(gr_graph_add_output(g, outs[i]), GR_OK);
    static const char *const pipeline[] = {"shapes", "dce", NULL};
    gr_code rc = gr_passes_run(g, pipeline, NULL, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    expect_const_i64(gr_graph_find(g, "cat_out"), 2, (int64_t[]){-1, 15});
    expect_const_i64(tail, 2, (int64_t[]){3, 5});
    assert_int_equal(batch->kind, GR_VALUE_NODE);
    assert_int_equal(y->shape.rank, 2);
    assert_int_equal(y->shape.dims[1], 15);
    assert_int_equal(g->n_nodes, 3); /* Shape, Gather n, Reshape */
    gr_graph_free(g);
}

static void test_shapes_folds_shape_slice_of_known_dims(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("slice");
    gr_value *x = input_sym(g, "x", "N", 4, (int64_t[]){-1, 3, 5, 7});
    gr_node *sh = node(g, GR_OP_SHAPE, "shape", 1, &x);
    assert_int_equal(gr_node_set_int(g, sh, "start", 2), GR_OK);
    assert_int_equal(gr_graph_add_output(g, sh->outputs[0]), GR_OK);
    gr_code rc = gr_pass_shapes(g, NULL, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(g->n_nodes, 0);
    expect_const_i64(g->outputs[0], 2, (int64_t[]){5, 7});
    gr_graph_free(g);
}

static void test_shapes_folds_range_and_constant_of_shape(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("makers");
    /* Range(1, 10, 3) = [1, 4, 7] (ceil((10-1)/3) = 3 elements). */
    gr_value *ri[] = {scalar_i64(g, "start", 1), scalar_i64(g, "limit", 10),
                      scalar_i64(g, "delta", 3)};
    gr_value *range = node(g, GR_OP_RANGE, "range", 3, ri)->outputs[0];
    /* ConstantOfShape([2, 3], value = int32 7): six 7s of type int32. */
    gr_value *dims = const_i64(g, "dims", 1, (int64_t[]){2}, (int64_t[]){2, 3});
    gr_node *cos = node(g, GR_OP_CONSTANT_OF_SHAPE, "cos", 1, &dims);
    int32_t seven = 7;
    gr_tensor value = {GR_DTYPE_I32, shape_of(1, (int64_t[]){1}), &seven, 4};
    assert_int_equal(gr_node_set_tensor(g, cos, "value", &value), GR_OK);
    assert_int_equal(gr_graph_add_output(g, range), GR_OK);
    assert_int_equal(gr_graph_add_output(g, cos->outputs[0]), GR_OK);
    gr_code rc = gr_pass_shapes(g, NULL, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(g->n_nodes, 0);
    expect_const_i64(g->outputs[0], 3, (int64_t[]){1, 4, 7});
    assert_int_equal(g->outputs[1]->dtype, GR_DTYPE_I32);
    expect_const_i64(g->outputs[1], 6, (int64_t[]){7, 7, 7, 7, 7, 7});
    gr_graph_free(g);
}

static void test_shapes_folds_integer_arithmetic(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("arith");
    /* (a * b) / c with a=[6,-7], b=[2], c=[4]: [12,-14]/4 = [3,-3] (truncated). */
    gr_value *mi[] = {const_i64(g, "a", 1, (int64_t[]){2}, (int64_t[]){6, -7}),
                      const_i64(g, "b", 1, (int64_t[]){1}, (int64_t[]){2})};
    gr_value *m = node(g, GR_OP_MUL, "mul", 2, mi)->outputs[0];
    gr_value *di[] = {m, const_i64(g, "c", 1, (int64_t[]){1}, (int64_t[]){4})};
    gr_value *d = node(g, GR_OP_DIV, "div", 2, di)->outputs[0];
    gr_value *x = input_sym(g, "x", NULL, 1, (int64_t[]){2});
    gr_value *keep = node(g, GR_OP_RELU, "relu", 1, &x)->outputs[0];
    assert_int_equal(gr_graph_add_output(g, d), GR_OK);
    assert_int_equal(gr_graph_add_output(g, keep), GR_OK);
    gr_code rc = gr_pass_shapes(g, NULL, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(g->n_nodes, 1);
    expect_const_i64(g->outputs[0], 2, (int64_t[]){3, -3});
    assert_null(gr_graph_find(g, "mul_out")); /* compacted away */
    gr_graph_free(g);
}

static void test_shapes_never_folds_trainable_params(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("params");
    gr_shape s2 = shape_of(1, (int64_t[]){2});
    float w[2] = {1.0f, 2.0f};
    gr_value *wv = gr_graph_add_data(g, GR_VALUE_PARAM, "w", GR_DTYPE_F32, &s2, w);
    assert_true(wv->trainable);
    gr_value *ai[] = {wv, const_f32(g, "c", 1, (int64_t[]){2}, w)};
    gr_value *sum = node(g, GR_OP_ADD, "add", 2, ai)->outputs[0];
    /* A non-trainable integer PARAM (a shape initializer) may fold. */
    int64_t two[1] = {2};
    gr_value *pv = gr_graph_add_data(g, GR_VALUE_PARAM, "p", GR_DTYPE_I64,
                                     &(gr_shape){.rank = 1, .dims = {1}}, two);
    gr_value *pi[] = {pv, pv};
    gr_value *pp = node(g, GR_OP_MUL, "mul", 2, pi)->outputs[0];
    /* Shape of the trainable weight folds: it ignores the data. */
    gr_value *shp = node(g, GR_OP_SHAPE, "shape", 1, &wv)->outputs[0];
    assert_int_equal(gr_graph_add_output(g, sum), GR_OK);
    assert_int_equal(gr_graph_add_output(g, pp), GR_OK);
    assert_int_equal(gr_graph_add_output(g, shp), GR_OK);
    gr_code rc = gr_pass_shapes(g, NULL, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(g->n_nodes, 1);
    assert_int_equal(g->nodes[0]->op, GR_OP_ADD);
    expect_const_i64(g->outputs[1], 1, (int64_t[]){4});
    expect_const_i64(g->outputs[2], 1, (int64_t[]){2});
    assert_int_equal(gr_pass_fold(g, NULL, &st), GR_OK);
    assert_int_equal(g->n_nodes, 1);
    gr_graph_free(g);
}

static void test_frozen_float_params_fold_only_in_fold_pass(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("frozen");
    gr_shape s2 = shape_of(1, (int64_t[]){2});
    gr_value *w = gr_graph_add_data(g, GR_VALUE_PARAM, "w", GR_DTYPE_F32, &s2,
                                    (float[]){4.0f, 9.0f});
    w->trainable = 0; /* frozen weight, or a running statistic */
    gr_value *r = node(g, GR_OP_SQRT, "sqrt", 1, &w)->outputs[0];
    assert_int_equal(gr_graph_add_output(g, r), GR_OK);
    assert_int_equal(gr_pass_shapes(g, NULL, &st), GR_OK);
    assert_int_equal(g->n_nodes, 1); /* training may still update it */
    assert_int_equal(gr_pass_fold(g, NULL, &st), GR_OK);
    assert_int_equal(g->n_nodes, 0);
    assert_true(gr_dtype_load_f64(r->dtype, r->data, 0) == 2.0);
    assert_true(gr_dtype_load_f64(r->dtype, r->data, 1) == 3.0);
    gr_graph_free(g);
}

static void test_shapes_leaves_big_results_to_fold(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("big");
    enum { N = 70000 };
    float *ones = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) ones[i] = 1.0f;
    gr_value *ai[] = {const_f32(g, "a", 1, (int64_t[]){N}, ones),
                      const_f32(g, "b", 1, (int64_t[]){1}, ones)};
    free(ones);
    gr_value *sum = node(g, GR_OP_ADD, "add", 2, ai)->outputs[0];
    assert_int_equal(gr_graph_add_output(g, sum), GR_OK);
    assert_int_equal(gr_pass_shapes(g, NULL, &st), GR_OK);
    assert_int_equal(g->n_nodes, 1);
    assert_int_equal(sum->shape.dims[0], N);
    static const char *const pipeline[] = {"fold", NULL};
    assert_int_equal(gr_passes_run(g, pipeline, NULL, &st), GR_OK);
    assert_int_equal(g->n_nodes, 0);
    assert_int_equal(sum->kind, GR_VALUE_CONST);
    assert_true(gr_dtype_load_f64(GR_DTYPE_F32, sum->data, N - 1) == 2.0);
    gr_graph_free(g);
}

/* --- shapes: declared types, unknown ops ------------------------------ */

static gr_graph *relu_declared(gr_dtype dtype, int rank, const int64_t *dims) {
    gr_graph *g = gr_graph_new("decl");
    gr_value *x = input_sym(g, "x", NULL, 2, (int64_t[]){2, 3});
    gr_node *r = gr_node_add(g, GR_OP_RELU, "n", 1, &x, 1, (const char *const[]){"y"});
    assert_non_null(r);
    r->outputs[0]->has_declared = 1;
    r->outputs[0]->declared_dtype = dtype;
    r->outputs[0]->declared_shape = shape_of(rank, dims);
    assert_int_equal(gr_graph_add_output(g, r->outputs[0]), GR_OK);
    return g;
}

static void test_shapes_rejects_contradicting_declared_type(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = relu_declared(GR_DTYPE_F32, 2, (int64_t[]){2, 4});
    assert_int_equal(gr_pass_shapes(g, NULL, &st), GR_ERR_BAD_MODEL);
    assert_string_equal(st.msg, "value 'y': the model declares f32[2,4] but node 'n' "
                                "(Relu) produces f32[2,3]");
    gr_graph_free(g);
    g = relu_declared(GR_DTYPE_I64, 2, (int64_t[]){2, 3});
    assert_int_equal(gr_pass_shapes(g, NULL, &st), GR_ERR_BAD_MODEL);
    assert_msg_has(&st, "declares i64[2,3]");
    gr_graph_free(g);
    g = relu_declared(GR_DTYPE_F32, 3, (int64_t[]){2, 3, 1});
    assert_int_equal(gr_pass_shapes(g, NULL, &st), GR_ERR_BAD_MODEL);
    gr_graph_free(g);
}

static void test_shapes_accepts_compatible_declared_type(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = relu_declared(GR_DTYPE_F32, 2, (int64_t[]){GR_DIM_DYNAMIC, 3});
    assert_int_equal(gr_pass_shapes(g, NULL, &st), GR_OK);
    gr_graph_free(g);
    g = relu_declared(GR_DTYPE_F32, GR_RANK_UNKNOWN, NULL);
    assert_int_equal(gr_pass_shapes(g, NULL, &st), GR_OK);
    gr_graph_free(g);
}

static void test_shapes_skips_nodes_after_unknown_op(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("unknown");
    gr_value *x = input_sym(g, "x", NULL, 1, (int64_t[]){4});
    gr_node *u = gr_node_add(g, GR_OP_UNKNOWN, "fancy", 1, &x, 1, NULL);
    u->op_type = "FancyOp";
    gr_value *r = node(g, GR_OP_RELU, "relu", 1, &u->outputs[0])->outputs[0];
    gr_value *ok = node(g, GR_OP_NEG, "neg", 1, &x)->outputs[0];
    assert_int_equal(gr_graph_add_output(g, r), GR_OK);
    assert_int_equal(gr_graph_add_output(g, ok), GR_OK);
    static const char *const pipeline[] = {"shapes", NULL};
    assert_int_equal(gr_passes_run(g, pipeline, NULL, &st), GR_OK);
    assert_int_equal(r->dtype, GR_DTYPE_UNDEFINED);
    assert_int_equal(r->shape.rank, GR_RANK_UNKNOWN);
    assert_int_equal(ok->dtype, GR_DTYPE_F32);
    assert_int_equal(gr_graph_check_supported(g, &st), GR_ERR_UNSUPPORTED);
    assert_msg_has(&st, "FancyOp");
    gr_graph_free(g);
}

/* --- evaluator: ONNX spec examples and hand-computed values ----------- */

static void test_eval_gather_negative_indices_on_axis_1(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    /* data [[1,2,3],[4,5,6]], indices [-1,0], axis 1 -> [[3,1],[6,4]] */
    gr_value *in[] = {const_i64(g, "d", 2, (int64_t[]){2, 3}, (int64_t[]){1, 2, 3, 4, 5, 6}),
                      const_i64(g, "i", 1, (int64_t[]){2}, (int64_t[]){-1, 0})};
    gr_node *n = node(g, GR_OP_GATHER, "g", 2, in);
    gr_node_set_int(g, n, "axis", 1);
    gr_tensor out;
    assert_int_equal(eval(n, GR_DTYPE_I64, 2, (int64_t[]){2, 2}, &out, &st), GR_OK);
    expect_i64(&out, 4, (int64_t[]){3, 1, 6, 4});
    free(out.data);
    /* Index 3 is outside [-3, 3). */
    int64_t bad = 3;
    memcpy(in[1]->data, &bad, sizeof bad);
    assert_int_equal(eval(n, GR_DTYPE_I64, 2, (int64_t[]){2, 2}, &out, &st), GR_ERR_BAD_MODEL);
    assert_msg_has(&st, "index 3 is out of range");
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_slice_spec_examples(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    gr_value *data = const_i64(g, "d", 2, (int64_t[]){2, 4},
                               (int64_t[]){1, 2, 3, 4, 5, 6, 7, 8});
    /* Spec example 1: axes [0,1], starts [1,0], ends [2,3], steps [1,2] -> [[5,7]] */
    gr_value *in1[] = {data, const_i64(g, "s1", 1, (int64_t[]){2}, (int64_t[]){1, 0}),
                       const_i64(g, "e1", 1, (int64_t[]){2}, (int64_t[]){2, 3}),
                       const_i64(g, "a1", 1, (int64_t[]){2}, (int64_t[]){0, 1}),
                       const_i64(g, "t1", 1, (int64_t[]){2}, (int64_t[]){1, 2})};
    gr_tensor out;
    assert_int_equal(eval(node(g, GR_OP_SLICE, "s1", 5, in1), GR_DTYPE_I64, 2,
                          (int64_t[]){1, 2}, &out, &st), GR_OK);
    expect_i64(&out, 2, (int64_t[]){5, 7});
    free(out.data);
    /* Spec example 2: starts [0,1], ends [-1,1000] -> [[2,3,4]] */
    gr_value *in2[] = {data, const_i64(g, "s2", 1, (int64_t[]){2}, (int64_t[]){0, 1}),
                       const_i64(g, "e2", 1, (int64_t[]){2}, (int64_t[]){-1, 1000})};
    assert_int_equal(eval(node(g, GR_OP_SLICE, "s2", 3, in2), GR_DTYPE_I64, 2,
                          (int64_t[]){1, 3}, &out, &st), GR_OK);
    expect_i64(&out, 3, (int64_t[]){2, 3, 4});
    free(out.data);
    /* Axis -1 from -1 (index 3) towards INT64_MIN (clamped to -1) with step
     * -2 takes indices 3 and 1: [[4,2],[8,6]]. */
    gr_value *in3[] = {data, const_i64(g, "s3", 1, (int64_t[]){1}, (int64_t[]){-1}),
                       const_i64(g, "e3", 1, (int64_t[]){1}, (int64_t[]){INT64_MIN}),
                       const_i64(g, "a3", 1, (int64_t[]){1}, (int64_t[]){-1}),
                       const_i64(g, "t3", 1, (int64_t[]){1}, (int64_t[]){-2})};
    assert_int_equal(eval(node(g, GR_OP_SLICE, "s3", 5, in3), GR_DTYPE_I64, 2,
                          (int64_t[]){2, 2}, &out, &st), GR_OK);
    expect_i64(&out, 4, (int64_t[]){4, 2, 8, 6});
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_reshape_zero_and_minus_one(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    int64_t v[24];
    for (int i = 0; i < 24; i++) v[i] = i;
    gr_value *x = const_i64(g, "x", 3, (int64_t[]){2, 3, 4}, v);
    /* [2,3,4] with shape [0,-1]: 0 copies 2, -1 is 24/2 = 12. */
    gr_value *in[] = {x, const_i64(g, "s", 1, (int64_t[]){2}, (int64_t[]){0, -1})};
    gr_node *n = node(g, GR_OP_RESHAPE, "r", 2, in);
    gr_tensor out;
    assert_int_equal(eval(n, GR_DTYPE_I64, 2, (int64_t[]){2, 12}, &out, &st), GR_OK);
    expect_i64(&out, 24, v);
    free(out.data);
    /* The shape rule claiming [3,8] contradicts the spec's [2,12]. */
    assert_int_equal(eval(n, GR_DTYPE_I64, 2, (int64_t[]){3, 8}, &out, &st), GR_ERR_INTERNAL);
    free(out.data);
    /* allowzero=1: a 0 means 0, so [0,-1] cannot hold 24 elements. */
    gr_node_set_int(g, n, "allowzero", 1);
    assert_int_equal(eval(n, GR_DTYPE_I64, 2, (int64_t[]){2, 12}, &out, &st), GR_ERR_BAD_MODEL);
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_integer_div_and_mod(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    gr_value *in[] = {const_i64(g, "a", 1, (int64_t[]){4}, (int64_t[]){-7, 7, -7, 7}),
                      const_i64(g, "b", 1, (int64_t[]){4}, (int64_t[]){2, -2, -2, 2})};
    gr_tensor out;
    /* C truncation: -7/2 = -3, 7/-2 = -3, -7/-2 = 3, 7/2 = 3 */
    assert_int_equal(eval(node(g, GR_OP_DIV, "div", 2, in), GR_DTYPE_I64, 1,
                          (int64_t[]){4}, &out, &st), GR_OK);
    expect_i64(&out, 4, (int64_t[]){-3, -3, 3, 3});
    free(out.data);
    /* Mod fmod=0 takes the divisor's sign: -7%2=1, 7%-2=-1, -7%-2=-1, 7%2=1 */
    gr_node *mod = node(g, GR_OP_MOD, "mod", 2, in);
    assert_int_equal(eval(mod, GR_DTYPE_I64, 1, (int64_t[]){4}, &out, &st), GR_OK);
    expect_i64(&out, 4, (int64_t[]){1, -1, -1, 1});
    free(out.data);
    /* fmod=1 takes the dividend's sign: -1, 1, -1, 1 */
    gr_node_set_int(g, mod, "fmod", 1);
    assert_int_equal(eval(mod, GR_DTYPE_I64, 1, (int64_t[]){4}, &out, &st), GR_OK);
    expect_i64(&out, 4, (int64_t[]){-1, 1, -1, 1});
    free(out.data);
    gr_value *zi[] = {in[0], const_i64(g, "z", 1, (int64_t[]){1}, (int64_t[]){0})};
    assert_int_equal(eval(node(g, GR_OP_DIV, "div0", 2, zi), GR_DTYPE_I64, 1,
                          (int64_t[]){4}, &out, &st), GR_ERR_NUMERIC);
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_broadcast_arithmetic_and_where(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    /* [[1],[2]] + [10,20,30] = [[11,21,31],[12,22,32]] */
    gr_value *ai[] = {const_i64(g, "a", 2, (int64_t[]){2, 1}, (int64_t[]){1, 2}),
                      const_i64(g, "b", 1, (int64_t[]){3}, (int64_t[]){10, 20, 30})};
    gr_tensor out;
    assert_int_equal(eval(node(g, GR_OP_ADD, "add", 2, ai), GR_DTYPE_I64, 2,
                          (int64_t[]){2, 3}, &out, &st), GR_OK);
    expect_i64(&out, 6, (int64_t[]){11, 21, 31, 12, 22, 32});
    free(out.data);
    /* Less([[1],[2]], [10,1,2]) = [[1<10, 1<1, 1<2], [2<10, 2<1, 2<2]]
     *                          = [[T,F,T],[T,F,F]] */
    gr_value *li[] = {ai[0], const_i64(g, "c", 1, (int64_t[]){3}, (int64_t[]){10, 1, 2})};
    gr_node *less = node(g, GR_OP_LESS, "less", 2, li);
    assert_int_equal(eval(less, GR_DTYPE_BOOL, 2, (int64_t[]){2, 3}, &out, &st), GR_OK);
    expect_i64(&out, 6, (int64_t[]){1, 0, 1, 1, 0, 0});
    /* Where(cond, 5, [7,8,9]) picks 5 where true. */
    gr_shape bs = shape_of(2, (int64_t[]){2, 3});
    gr_value *cond = gr_graph_add_data(g, GR_VALUE_CONST, "cond", GR_DTYPE_BOOL, &bs, out.data);
    free(out.data);
    gr_value *wi[] = {cond, scalar_i64(g, "five", 5),
                      const_i64(g, "y", 1, (int64_t[]){3}, (int64_t[]){7, 8, 9})};
    assert_int_equal(eval(node(g, GR_OP_WHERE, "where", 3, wi), GR_DTYPE_I64, 2,
                          (int64_t[]){2, 3}, &out, &st), GR_OK);
    expect_i64(&out, 6, (int64_t[]){5, 8, 5, 5, 8, 9});
    free(out.data);
    /* Float Max with NaN-free values and Pow(2, 10) in f32. */
    gr_value *pi[] = {const_f32(g, "two", 0, NULL, (float[]){2.0f}),
                      const_f32(g, "ten", 0, NULL, (float[]){10.0f})};
    assert_int_equal(eval(node(g, GR_OP_POW, "pow", 2, pi), GR_DTYPE_F32, 0, NULL, &out, &st),
                     GR_OK);
    expect_f64(&out, 1, (double[]){1024.0});
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_cast_truncates_and_converts(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    gr_value *x = const_f32(g, "x", 1, (int64_t[]){3}, (float[]){1.75f, -1.75f, 0.5f});
    gr_node *n = node(g, GR_OP_CAST, "cast", 1, &x);
    gr_node_set_int(g, n, "to", GR_DTYPE_I32);
    gr_tensor out;
    assert_int_equal(eval(n, GR_DTYPE_I32, 1, (int64_t[]){3}, &out, &st), GR_OK);
    expect_i64(&out, 3, (int64_t[]){1, -1, 0});
    free(out.data);
    /* 1.75 in f16 is 0x3F00: sign 0, exponent 15, mantissa 0.75*1024 = 768. */
    assert_int_equal(eval(n, GR_DTYPE_F16, 1, (int64_t[]){3}, &out, &st), GR_OK);
    uint16_t h;
    memcpy(&h, out.data, 2);
    assert_int_equal(h, 0x3F00);
    free(out.data);
    assert_int_equal(eval(n, GR_DTYPE_BOOL, 1, (int64_t[]){3}, &out, &st), GR_OK);
    expect_i64(&out, 3, (int64_t[]){1, 1, 1});
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_movement_ops(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    gr_value *m = const_i64(g, "m", 2, (int64_t[]){2, 3}, (int64_t[]){1, 2, 3, 4, 5, 6});
    gr_tensor out;
    /* Transpose with the default (reversed) perm: [[1,4],[2,5],[3,6]] */
    assert_int_equal(eval(node(g, GR_OP_TRANSPOSE, "t", 1, &m), GR_DTYPE_I64, 2,
                          (int64_t[]){3, 2}, &out, &st), GR_OK);
    expect_i64(&out, 6, (int64_t[]){1, 4, 2, 5, 3, 6});
    free(out.data);
    /* Tile([[1,2]], [2,2]) = [[1,2,1,2],[1,2,1,2]] */
    gr_value *ti[] = {const_i64(g, "row", 2, (int64_t[]){1, 2}, (int64_t[]){1, 2}),
                      const_i64(g, "rep", 1, (int64_t[]){2}, (int64_t[]){2, 2})};
    assert_int_equal(eval(node(g, GR_OP_TILE, "tile", 2, ti), GR_DTYPE_I64, 2,
                          (int64_t[]){2, 4}, &out, &st), GR_OK);
    expect_i64(&out, 8, (int64_t[]){1, 2, 1, 2, 1, 2, 1, 2});
    free(out.data);
    /* Expand([1,2,3], [2,1]) = [[1,2,3],[1,2,3]] */
    gr_value *ei[] = {const_i64(g, "v", 1, (int64_t[]){3}, (int64_t[]){1, 2, 3}),
                      const_i64(g, "es", 1, (int64_t[]){2}, (int64_t[]){2, 1})};
    assert_int_equal(eval(node(g, GR_OP_EXPAND, "expand", 2, ei), GR_DTYPE_I64, 2,
                          (int64_t[]){2, 3}, &out, &st), GR_OK);
    expect_i64(&out, 6, (int64_t[]){1, 2, 3, 1, 2, 3});
    free(out.data);
    /* Concat on axis -1 of [2,3] and [2,1]: rows [1,2,3,9],[4,5,6,8] */
    gr_value *ci[] = {m, const_i64(g, "col", 2, (int64_t[]){2, 1}, (int64_t[]){9, 8})};
    gr_node *cat = node(g, GR_OP_CONCAT, "cat", 2, ci);
    gr_node_set_int(g, cat, "axis", -1);
    assert_int_equal(eval(cat, GR_DTYPE_I64, 2, (int64_t[]){2, 4}, &out, &st), GR_OK);
    expect_i64(&out, 8, (int64_t[]){1, 2, 3, 9, 4, 5, 6, 8});
    free(out.data);
    /* Unsqueeze([3] values, axes [0,-1]) -> [1,3,1]; Squeeze undoes it. */
    gr_value *ui[] = {ei[0], const_i64(g, "ax", 1, (int64_t[]){2}, (int64_t[]){0, -1})};
    assert_int_equal(eval(node(g, GR_OP_UNSQUEEZE, "unsq", 2, ui), GR_DTYPE_I64, 3,
                          (int64_t[]){1, 3, 1}, &out, &st), GR_OK);
    expect_i64(&out, 3, (int64_t[]){1, 2, 3});
    free(out.data);
    gr_value *one = const_i64(g, "col1", 2, (int64_t[]){1, 1}, (int64_t[]){42});
    assert_int_equal(eval(node(g, GR_OP_SQUEEZE, "sq", 1, &one), GR_DTYPE_I64, 0, NULL, &out,
                          &st), GR_OK);
    expect_i64(&out, 1, (int64_t[]){42});
    free(out.data);
    /* Flatten axis 0 of [2,3] is [1,6]. */
    gr_node *fl = node(g, GR_OP_FLATTEN, "flat", 1, &m);
    gr_node_set_int(g, fl, "axis", 0);
    assert_int_equal(eval(fl, GR_DTYPE_I64, 2, (int64_t[]){1, 6}, &out, &st), GR_OK);
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_shape_size_and_reductions(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    gr_value *x = input_sym(g, "x", NULL, 4, (int64_t[]){2, 3, 4, 5});
    gr_node *sh = node(g, GR_OP_SHAPE, "shape", 1, &x);
    gr_node_set_int(g, sh, "start", 1);
    gr_node_set_int(g, sh, "end", -1);
    gr_tensor out;
    const gr_tensor tx = {GR_DTYPE_F32, x->shape, NULL, 0};
    const gr_tensor *pin[1] = {&tx};
    out = (gr_tensor){GR_DTYPE_I64, shape_of(1, (int64_t[]){2}), calloc(2, 8), 16};
    assert_int_equal(gr_eval_node(sh, pin, &out, &st), GR_OK);
    expect_i64(&out, 2, (int64_t[]){3, 4});
    free(out.data);
    gr_node *size = node(g, GR_OP_SIZE, "size", 1, &x);
    out = (gr_tensor){GR_DTYPE_I64, gr_shape_scalar(), calloc(1, 8), 8};
    assert_int_equal(gr_eval_node(size, pin, &out, &st), GR_OK);
    expect_i64(&out, 1, (int64_t[]){120});
    free(out.data);
    /* ReduceProd over all of [2,3,4] = 24 (keepdims: [1]). */
    gr_value *v = const_i64(g, "v", 1, (int64_t[]){3}, (int64_t[]){2, 3, 4});
    assert_int_equal(eval(node(g, GR_OP_REDUCE_PROD, "prod", 1, &v), GR_DTYPE_I64, 1,
                          (int64_t[]){1}, &out, &st), GR_OK);
    expect_i64(&out, 1, (int64_t[]){24});
    free(out.data);
    /* ReduceSum([[1,2],[3,4]], axes [1], keepdims 0) = [3,7] */
    gr_value *ri[] = {const_i64(g, "m", 2, (int64_t[]){2, 2}, (int64_t[]){1, 2, 3, 4}),
                      const_i64(g, "axes", 1, (int64_t[]){1}, (int64_t[]){1})};
    gr_node *rs = node(g, GR_OP_REDUCE_SUM, "sum", 2, ri);
    gr_node_set_int(g, rs, "keepdims", 0);
    assert_int_equal(eval(rs, GR_DTYPE_I64, 1, (int64_t[]){2}, &out, &st), GR_OK);
    expect_i64(&out, 2, (int64_t[]){3, 7});
    free(out.data);
    /* ReduceMax over axis 0 keeps dims: [[3,4]]; ReduceMin: [[1,2]] */
    ri[1] = const_i64(g, "axes0", 1, (int64_t[]){1}, (int64_t[]){0});
    assert_int_equal(eval(node(g, GR_OP_REDUCE_MAX, "max", 2, ri), GR_DTYPE_I64, 2,
                          (int64_t[]){1, 2}, &out, &st), GR_OK);
    expect_i64(&out, 2, (int64_t[]){3, 4});
    free(out.data);
    assert_int_equal(eval(node(g, GR_OP_REDUCE_MIN, "min", 2, ri), GR_DTYPE_I64, 2,
                          (int64_t[]){1, 2}, &out, &st), GR_OK);
    expect_i64(&out, 2, (int64_t[]){1, 2});
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_range_clip_and_unary(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    /* Spec example: Range(10, 4, -3) = [10, 7] */
    gr_value *ri[] = {scalar_i64(g, "s", 10), scalar_i64(g, "l", 4), scalar_i64(g, "d", -3)};
    gr_tensor out;
    assert_int_equal(eval(node(g, GR_OP_RANGE, "r", 3, ri), GR_DTYPE_I64, 1, (int64_t[]){2},
                          &out, &st), GR_OK);
    expect_i64(&out, 2, (int64_t[]){10, 7});
    free(out.data);
    /* Range(1.0, 2.0, 0.25) = [1, 1.25, 1.5, 1.75] */
    gr_value *fi[] = {const_f32(g, "fs", 0, NULL, (float[]){1.0f}),
                      const_f32(g, "fl", 0, NULL, (float[]){2.0f}),
                      const_f32(g, "fd", 0, NULL, (float[]){0.25f})};
    assert_int_equal(eval(node(g, GR_OP_RANGE, "rf", 3, fi), GR_DTYPE_F32, 1, (int64_t[]){4},
                          &out, &st), GR_OK);
    expect_f64(&out, 4, (double[]){1.0, 1.25, 1.5, 1.75});
    free(out.data);
    /* Clip([-5, 0, 5], min = -1, no max) = [-1, 0, 5] */
    gr_value *ci[] = {const_i64(g, "cx", 1, (int64_t[]){3}, (int64_t[]){-5, 0, 5}),
                      scalar_i64(g, "lo", -1), NULL};
    assert_int_equal(eval(node(g, GR_OP_CLIP, "clip", 3, ci), GR_DTYPE_I64, 1, (int64_t[]){3},
                          &out, &st), GR_OK);
    expect_i64(&out, 3, (int64_t[]){-1, 0, 5});
    free(out.data);
    /* Floor, Ceil, Sqrt, Neg, Abs of [-1.5, 2.25] */
    gr_value *u = const_f32(g, "u", 1, (int64_t[]){2}, (float[]){-1.5f, 2.25f});
    static const struct { gr_op op; double want[2]; } cases[] = {
        {GR_OP_FLOOR, {-2.0, 2.0}}, {GR_OP_CEIL, {-1.0, 3.0}},
        {GR_OP_NEG, {1.5, -2.25}}, {GR_OP_ABS, {1.5, 2.25}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(eval(node(g, cases[i].op, NULL, 1, &u), GR_DTYPE_F32, 1,
                              (int64_t[]){2}, &out, &st), GR_OK);
        expect_f64(&out, 2, cases[i].want);
        free(out.data);
    }
    gr_value *sq = const_f32(g, "sq", 1, (int64_t[]){2}, (float[]){2.25f, 16.0f});
    assert_int_equal(eval(node(g, GR_OP_SQRT, NULL, 1, &sq), GR_DTYPE_F32, 1, (int64_t[]){2},
                          &out, &st), GR_OK);
    expect_f64(&out, 2, (double[]){1.5, 4.0});
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_variadic_logic_and_constants(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    gr_tensor out;
    /* Sum([1,2], [[10],[20]], 100) = [[111,112],[121,122]] */
    gr_value *si[] = {const_i64(g, "a", 1, (int64_t[]){2}, (int64_t[]){1, 2}),
                      const_i64(g, "b", 2, (int64_t[]){2, 1}, (int64_t[]){10, 20}),
                      scalar_i64(g, "c", 100)};
    assert_int_equal(eval(node(g, GR_OP_SUM, "sum", 3, si), GR_DTYPE_I64, 2,
                          (int64_t[]){2, 2}, &out, &st), GR_OK);
    expect_i64(&out, 4, (int64_t[]){111, 112, 121, 122});
    free(out.data);
    /* Max([1,5], [3,2]) = [3,5]; Min = [1,2] */
    gr_value *mi[] = {si[0], const_i64(g, "d", 1, (int64_t[]){2}, (int64_t[]){3, 2})};
    mi[0] = const_i64(g, "e", 1, (int64_t[]){2}, (int64_t[]){1, 5});
    assert_int_equal(eval(node(g, GR_OP_MAX, "max", 2, mi), GR_DTYPE_I64, 1, (int64_t[]){2},
                          &out, &st), GR_OK);
    expect_i64(&out, 2, (int64_t[]){3, 5});
    free(out.data);
    assert_int_equal(eval(node(g, GR_OP_MIN, "min", 2, mi), GR_DTYPE_I64, 1, (int64_t[]){2},
                          &out, &st), GR_OK);
    expect_i64(&out, 2, (int64_t[]){1, 2});
    free(out.data);
    /* Mean of f32 [1,2] and [4,8] = [2.5, 5]; Pow(3, 4) = 81 in int64. */
    gr_value *fi[] = {const_f32(g, "f1", 1, (int64_t[]){2}, (float[]){1, 2}),
                      const_f32(g, "f2", 1, (int64_t[]){2}, (float[]){4, 8})};
    assert_int_equal(eval(node(g, GR_OP_MEAN, "mean", 2, fi), GR_DTYPE_F32, 1,
                          (int64_t[]){2}, &out, &st), GR_OK);
    expect_f64(&out, 2, (double[]){2.5, 5.0});
    free(out.data);
    gr_value *pi[] = {scalar_i64(g, "three", 3), scalar_i64(g, "four", 4)};
    assert_int_equal(eval(node(g, GR_OP_POW, "pow", 2, pi), GR_DTYPE_I64, 0, NULL, &out, &st),
                     GR_OK);
    expect_i64(&out, 1, (int64_t[]){81});
    free(out.data);
    /* Integer bases to negative powers truncate: 2^-1 = 0.5 -> 0,
     * (-1)^-3 = -1, 1^-5 = 1; 0^-1 has no value. */
    gr_value *ni2[] = {const_i64(g, "bases", 1, (int64_t[]){3}, (int64_t[]){2, -1, 1}),
                       const_i64(g, "exps", 1, (int64_t[]){3}, (int64_t[]){-1, -3, -5})};
    assert_int_equal(eval(node(g, GR_OP_POW, "npow", 2, ni2), GR_DTYPE_I64, 1,
                          (int64_t[]){3}, &out, &st), GR_OK);
    expect_i64(&out, 3, (int64_t[]){0, -1, 1});
    free(out.data);
    gr_value *zi[] = {scalar_i64(g, "zero", 0), scalar_i64(g, "minus", -1)};
    assert_int_equal(eval(node(g, GR_OP_POW, "zpow", 2, zi), GR_DTYPE_I64, 0, NULL, &out, &st),
                     GR_ERR_NUMERIC);
    free(out.data);
    /* Equal, GreaterOrEqual on f32 with NaN: NaN equals nothing. */
    gr_value *ni[] = {const_f32(g, "n1", 1, (int64_t[]){3}, (float[]){1, 2, NAN}),
                      const_f32(g, "n2", 1, (int64_t[]){3}, (float[]){1, 3, NAN})};
    assert_int_equal(eval(node(g, GR_OP_EQUAL, "eq", 2, ni), GR_DTYPE_BOOL, 1,
                          (int64_t[]){3}, &out, &st), GR_OK);
    expect_i64(&out, 3, (int64_t[]){1, 0, 0});
    free(out.data);
    assert_int_equal(eval(node(g, GR_OP_GREATER_OR_EQUAL, "ge", 2, ni), GR_DTYPE_BOOL, 1,
                          (int64_t[]){3}, &out, &st), GR_OK);
    expect_i64(&out, 3, (int64_t[]){1, 0, 0});
    free(out.data);
    /* And/Or/Xor of [T,T,F,F] and [T,F,T,F]; Not of the first. */
    gr_shape s4 = shape_of(1, (int64_t[]){4});
    gr_value *bi[] = {gr_graph_add_data(g, GR_VALUE_CONST, "p", GR_DTYPE_BOOL, &s4,
                                        (uint8_t[]){1, 1, 0, 0}),
                      gr_graph_add_data(g, GR_VALUE_CONST, "q", GR_DTYPE_BOOL, &s4,
                                        (uint8_t[]){1, 0, 1, 0})};
    static const struct { gr_op op; int64_t want[4]; } logic[] = {
        {GR_OP_AND, {1, 0, 0, 0}}, {GR_OP_OR, {1, 1, 1, 0}}, {GR_OP_XOR, {0, 1, 1, 0}},
        {GR_OP_NOT, {0, 0, 1, 1}},
    };
    for (size_t i = 0; i < sizeof logic / sizeof logic[0]; i++) {
        int arity = logic[i].op == GR_OP_NOT ? 1 : 2;
        assert_int_equal(eval(node(g, logic[i].op, NULL, arity, bi), GR_DTYPE_BOOL, 1,
                              (int64_t[]){4}, &out, &st), GR_OK);
        expect_i64(&out, 4, logic[i].want);
        free(out.data);
    }
    /* ConstantOfShape without value: f32 zeros; Constant value_ints. */
    gr_value *dims = const_i64(g, "dims", 1, (int64_t[]){1}, (int64_t[]){3});
    assert_int_equal(eval(node(g, GR_OP_CONSTANT_OF_SHAPE, "zeros", 1, &dims), GR_DTYPE_F32,
                          1, (int64_t[]){3}, &out, &st), GR_OK);
    expect_f64(&out, 3, (double[]){0, 0, 0});
    free(out.data);
    gr_node *k = node(g, GR_OP_CONSTANT, "k", 0, NULL);
    gr_node_set_ints(g, k, "value_ints", 2, (int64_t[]){-4, 9});
    assert_int_equal(eval(k, GR_DTYPE_I64, 1, (int64_t[]){2}, &out, &st), GR_OK);
    expect_i64(&out, 2, (int64_t[]){-4, 9});
    free(out.data);
    gr_graph_free(g);
}

static void test_eval_rejects_invalid_arguments(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("e");
    gr_tensor out;
    gr_value *m = const_i64(g, "m", 2, (int64_t[]){2, 3}, (int64_t[]){1, 2, 3, 4, 5, 6});
    /* Squeeze of a dim of size 3. */
    gr_value *qi[] = {m, const_i64(g, "ax", 1, (int64_t[]){1}, (int64_t[]){1})};
    assert_int_equal(eval(node(g, GR_OP_SQUEEZE, "sq", 2, qi), GR_DTYPE_I64, 1,
                          (int64_t[]){2}, &out, &st), GR_ERR_BAD_MODEL);
    assert_msg_has(&st, "node 'sq' (Squeeze)");
    free(out.data);
    /* Unsqueeze with axis 0 twice. */
    gr_value *ui[] = {m, const_i64(g, "ax2", 1, (int64_t[]){2}, (int64_t[]){0, -4})};
    assert_int_equal(eval(node(g, GR_OP_UNSQUEEZE, "unsq", 2, ui), GR_DTYPE_I64, 4,
                          (int64_t[]){1, 1, 2, 3}, &out, &st), GR_ERR_BAD_MODEL);
    free(out.data);
    /* Slice with step 0. */
    gr_value *zero = const_i64(g, "z", 1, (int64_t[]){1}, (int64_t[]){0});
    gr_value *si[] = {m, zero, zero, zero, zero};
    assert_int_equal(eval(node(g, GR_OP_SLICE, "sl", 5, si), GR_DTYPE_I64, 2,
                          (int64_t[]){0, 3}, &out, &st), GR_ERR_BAD_MODEL);
    assert_msg_has(&st, "step is 0");
    free(out.data);
    /* Transpose with perm [1,1]. */
    gr_node *t = node(g, GR_OP_TRANSPOSE, "t", 1, &m);
    gr_node_set_ints(g, t, "perm", 2, (int64_t[]){1, 1});
    assert_int_equal(eval(t, GR_DTYPE_I64, 2, (int64_t[]){3, 3}, &out, &st), GR_ERR_BAD_MODEL);
    free(out.data);
    /* Range with delta 0. */
    gr_value *ri[] = {scalar_i64(g, "s", 0), scalar_i64(g, "l", 4), scalar_i64(g, "d", 0)};
    assert_int_equal(eval(node(g, GR_OP_RANGE, "r", 3, ri), GR_DTYPE_I64, 1, (int64_t[]){0},
                          &out, &st), GR_ERR_BAD_MODEL);
    free(out.data);
    /* An op the evaluator does not know. */
    assert_false(gr_eval_supports(GR_OP_CONV));
    assert_int_equal(eval(node(g, GR_OP_EXP, "exp", 1, &m), GR_DTYPE_I64, 2,
                          (int64_t[]){2, 3}, &out, &st), GR_ERR_UNSUPPORTED);
    free(out.data);
    gr_graph_free(g);
}

/* --- dce, fold under allocation failure ------------------------------- */

static void test_dce_removes_unused_nodes_and_values(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = gr_graph_new("dce");
    gr_value *x = input_sym(g, "x", NULL, 1, (int64_t[]){4});
    gr_value *a = node(g, GR_OP_RELU, "relu", 1, &x)->outputs[0];
    gr_value *b = node(g, GR_OP_NEG, "neg", 1, &x)->outputs[0];
    node(g, GR_OP_ABS, "abs", 1, &b);
    gr_value *w = const_f32(g, "unused_w", 1, (int64_t[]){1}, (float[]){1.0f});
    gr_value *ai[] = {a, w};
    node(g, GR_OP_ADD, "dead_add", 2, ai);
    assert_int_equal(gr_graph_add_output(g, a), GR_OK);
    static const char *const pipeline[] = {"shapes", "dce", NULL};
    assert_int_equal(gr_passes_run(g, pipeline, NULL, &st), GR_OK);
    assert_int_equal(g->n_nodes, 1);
    assert_string_equal(g->nodes[0]->name, "relu");
    assert_null(gr_graph_find(g, "neg_out"));
    assert_null(gr_graph_find(g, "abs_out"));
    assert_null(gr_graph_find(g, "unused_w"));
    assert_non_null(gr_graph_find(g, "x"));
    gr_graph_free(g);
}

static void test_fold_survives_allocation_failures(void **state) {
    (void)state;
    for (long n = 1; n < 200; n++) {
        gr_status st = {0};
        gr_graph *g = gr_graph_new("nomem");
        gr_value *ai[] = {const_i64(g, "a", 1, (int64_t[]){2}, (int64_t[]){1, 2}),
                          const_i64(g, "b", 1, (int64_t[]){2}, (int64_t[]){3, 4})};
        gr_value *s = node(g, GR_OP_ADD, "add", 2, ai)->outputs[0];
        gr_value *mi[] = {s, ai[1]};
        gr_value *m = node(g, GR_OP_MUL, "mul", 2, mi)->outputs[0];
        assert_int_equal(gr_graph_add_output(g, m), GR_OK);
        gr_debug_fail_alloc_after(n);
        gr_code rc = gr_pass_shapes(g, NULL, &st);
        gr_debug_fail_alloc_after(0);
        assert_true(rc == GR_OK || rc == GR_ERR_NOMEM);
        if (rc == GR_OK) {
            /* (1+3)*3 = 12, (2+4)*4 = 24 */
            expect_const_i64(g->outputs[0], 2, (int64_t[]){12, 24});
            gr_graph_free(g);
            return;
        }
        gr_graph_free(g);
    }
    fail_msg("shapes kept failing");
}

/* Every allocation of the whole pipeline may fail: the result is GR_OK or
 * GR_ERR_NOMEM, never a crash or a leak (ASan builds check the latter). */
static void test_pipeline_survives_every_allocation_failure(void **state) {
    (void)state;
    static const char *const pipeline[] = {"specialize", "shapes", "fold", "dce", NULL};
    gr_pass_opts opts = {.batch = 4};
    for (long n = 1;; n++) {
        gr_status st = {0};
        gr_graph *g = flatten_chain();
        gr_debug_fail_alloc_after(n);
        gr_code rc = gr_passes_run(g, pipeline, &opts, &st);
        gr_debug_fail_alloc_after(0);
        if (rc != GR_OK && rc != GR_ERR_NOMEM) fail_msg("allocation %ld: %s", n, st.msg);
        gr_graph_free(g);
        if (rc == GR_OK) break;
        assert_true(n < 10000);
    }
}

/* --- the ONNX backend node tests as references ------------------------- */

#define ONNX_NODE_TESTS "/usr/share/libonnx-testdata/data/node"

static int evaluable(const gr_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == GR_OP_UNKNOWN || !gr_eval_supports(g->nodes[i]->op)) return 0;
    return g->n_nodes > 0;
}

/* Old test data stores bf16 as u16: same bits. */
static int same_bits_type(gr_dtype a, gr_dtype b) {
    return a == b || (a == GR_DTYPE_BF16 && b == GR_DTYPE_U16) ||
           (a == GR_DTYPE_U16 && b == GR_DTYPE_BF16);
}

static int close_enough(const gr_value *v, const gr_tensor *t, int64_t i) {
    if (v->dtype != t->dtype) /* bf16 against u16: compare bits */
        return gr_dtype_load_i64(GR_DTYPE_U16, v->data, i) ==
               gr_dtype_load_i64(GR_DTYPE_U16, t->data, i);
    double x = gr_dtype_load_f64(v->dtype, v->data, i), y = gr_dtype_load_f64(t->dtype, t->data, i);
    return x == y || (isnan(x) && isnan(y)) || fabs(x - y) <= 1e-6 * fabs(y);
}

static void test_output(const gr_graph *g, const char *dir, int o, char *why, size_t size) {
    char path[4096];
    gr_status st = {0};
    gr_tensor t;
    const gr_value *v = g->outputs[o];
    snprintf(path, sizeof path, "%.1024s/test_data_set_0/output_%d.pb", dir, o);
    if (gr_tensor_read_pb(path, &t, NULL, &st) != GR_OK) {
        snprintf(why, size, "%s", st.msg);
        return;
    }
    char a[128], b[128];
    if (v->kind != GR_VALUE_CONST) {
        snprintf(why, size, "output '%s' was not folded", v->name);
    } else if (!same_bits_type(v->dtype, t.dtype) || !gr_shape_equal(&v->shape, &t.shape)) {
        snprintf(why, size, "output '%s' is %s%s, expected %s%s", v->name,
                 gr_dtype_name(v->dtype), gr_shape_str(&v->shape, a, sizeof a),
                 gr_dtype_name(t.dtype), gr_shape_str(&t.shape, b, sizeof b));
    } else {
        for (int64_t i = 0; i < gr_shape_numel(&t.shape) && !*why; i++)
            if (!close_enough(v, &t, i))
                snprintf(why, size, "output '%s' element %lld is %.9g, expected %.9g",
                         v->name, (long long)i, gr_dtype_load_f64(v->dtype, v->data, i),
                         gr_dtype_load_f64(t.dtype, t.data, i));
    }
    gr_free(t.data);
}

/* Binds every input of test `dir` (input_i.pb is graph input i) as a
 * constant, folds, compares with the expected outputs. Returns 0 if the
 * model has an op the evaluator lacks; a failure is left in why. */
static int run_node_test(const char *dir, char *why, size_t size) {
    char path[4096];
    gr_status st = {0};
    gr_graph *g = NULL;
    snprintf(path, sizeof path, "%.1024s/model.onnx", dir);
    if (gr_import_file(path, &g, &st) != GR_OK || !evaluable(g) || g->n_inputs > 16) {
        gr_graph_free(g);
        return 0;
    }
    gr_value *inputs[16];
    int n_inputs = g->n_inputs;
    memcpy(inputs, g->inputs, sizeof(gr_value *) * (size_t)n_inputs);
    for (int i = 0; i < n_inputs && !*why; i++) {
        gr_tensor t;
        snprintf(path, sizeof path, "%.1024s/test_data_set_0/input_%d.pb", dir, i);
        if (gr_tensor_read_pb(path, &t, NULL, &st) != GR_OK) {
            snprintf(why, size, "%s", st.msg);
            break;
        }
        if (same_bits_type(t.dtype, inputs[i]->dtype)) t.dtype = inputs[i]->dtype;
        if (gr_graph_bind_input(g, inputs[i], &t, &st) != GR_OK) snprintf(why, size, "%s", st.msg);
        gr_free(t.data);
    }
    static const char *const pipeline[] = {"shapes", "fold", NULL};
    if (!*why && gr_passes_run(g, pipeline, NULL, &st) != GR_OK) snprintf(why, size, "%s", st.msg);
    for (int o = 0; o < g->n_outputs && !*why; o++) test_output(g, dir, o, why, size);
    gr_graph_free(g);
    return 1;
}

/* Node tests whose data (Debian's libonnx-testdata) is wrong or outdated. */
static const char *const node_test_exceptions[][2] = {
    {"test_cast_FLOAT_to_BFLOAT16",
     "old data truncates f32 to bf16; the spec rounds to nearest even"},
    {"test_castlike_BFLOAT16_to_FLOAT", "input 'like' is [1], the model declares [3,4]"},
    {"test_castlike_BFLOAT16_to_FLOAT_expanded", "same as test_castlike_BFLOAT16_to_FLOAT"},
    {"test_castlike_FLOAT_to_BFLOAT16", "input 'like' is [1], the model declares [3,4]"},
    {"test_castlike_FLOAT_to_BFLOAT16_expanded", "same as test_castlike_FLOAT_to_BFLOAT16"},
};

static const char *node_test_exception(const char *name) {
    for (size_t i = 0; i < sizeof node_test_exceptions / sizeof node_test_exceptions[0]; i++)
        if (!strcmp(node_test_exceptions[i][0], name)) return node_test_exceptions[i][1];
    return NULL;
}

/* Every ONNX node test made only of ops the evaluator knows folds to the
 * outputs the ONNX test data expects (skipped without libonnx-testdata). */
static void test_fold_matches_onnx_node_tests(void **state) {
    (void)state;
    DIR *d = opendir(ONNX_NODE_TESTS);
    if (!d) {
        print_message("skipped: %s not found\n", ONNX_NODE_TESTS);
        return;
    }
    int run = 0, failed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char dir[1100], why[2048] = "";
        if (e->d_name[0] == '.' || node_test_exception(e->d_name)) continue;
        snprintf(dir, sizeof dir, "%s/%.1024s", ONNX_NODE_TESTS, e->d_name);
        if (!run_node_test(dir, why, sizeof why)) continue;
        run++;
        if (*why) {
            print_error("%s: %s\n", e->d_name, why);
            failed++;
        }
    }
    closedir(d);
    print_message("%d ONNX node tests folded, %d failed\n", run, failed);
    assert_int_equal(failed, 0);
    assert_true(run > 100);
}

/* --- driver ------------------------------------------------------------ */

static char *read_all(FILE *f) {
    long size = ftell(f);
    char *buf = calloc((size_t)size + 1, 1);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    return buf;
}

static void test_driver_dumps_after_named_pass(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = three_inputs();
    static const char *const pipeline[] = {"specialize", "shapes", NULL};
    FILE *f = tmpfile();
    gr_pass_opts opts = {.batch = 2, .dump_after = "shapes", .dump = f};
    assert_int_equal(gr_passes_run(g, pipeline, &opts, &st), GR_OK);
    char *text = read_all(f);
    assert_non_null(strstr(text, "after pass 'shapes'"));
    assert_null(strstr(text, "after pass 'specialize'"));
    assert_non_null(strstr(text, "[2,3,4,4]"));
    free(text);
    fclose(f);
    f = tmpfile();
    opts.dump_after = "all";
    opts.dump = f;
    assert_int_equal(gr_passes_run(g, pipeline, &opts, &st), GR_OK);
    text = read_all(f);
    assert_non_null(strstr(text, "after pass 'specialize'"));
    assert_non_null(strstr(text, "after pass 'shapes'"));
    free(text);
    fclose(f);
    opts.dump_after = "nope";
    assert_int_equal(gr_passes_run(g, pipeline, &opts, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "'nope'");
    gr_graph_free(g);
}

static void test_driver_prefixes_errors_with_pass_name(void **state) {
    (void)state;
    gr_status st = {0};
    gr_graph *g = relu_declared(GR_DTYPE_F32, 2, (int64_t[]){2, 4});
    static const char *const pipeline[] = {"specialize", "shapes", "dce", NULL};
    assert_int_equal(gr_passes_run(g, pipeline, NULL, &st), GR_ERR_BAD_MODEL);
    assert_true(!strncmp(st.msg, "pass 'shapes': value 'y'", 24));
    static const char *const unknown[] = {"shapes", "frobnicate", NULL};
    assert_int_equal(gr_passes_run(g, unknown + 1, NULL, &st), GR_ERR_BAD_ARG);
    assert_msg_has(&st, "unknown pass 'frobnicate'");
    assert_msg_has(&st, "head, train, specialize, shapes, train_mode, loss, l2sp, autodiff, optimizer, "
                        "simplify, fold_batchnorm, cse, fold, dce, fuse");
    gr_graph_free(g);
}

static void test_driver_reports_broken_graph_as_internal(void **state) {
    (void)state;
#ifdef GR_VERIFY_PASSES
    gr_status st = {0};
    gr_graph *g = gr_graph_new("broken");
    gr_value *c = const_f32(g, "c", 1, (int64_t[]){2}, (float[]){1.0f, 2.0f});
    gr_value *y = node(g, GR_OP_RELU, "relu", 1, &c)->outputs[0];
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    c->nbytes = 3; /* broken by hand: the verifier must catch it */
    static const char *const pipeline[] = {"dce", NULL};
    assert_int_equal(gr_passes_run(g, pipeline, NULL, &st), GR_ERR_INTERNAL);
    assert_msg_has(&st, "pass 'dce' left a broken graph");
    assert_msg_has(&st, "'c'");
    gr_graph_free(g);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_shape_numbers_and_symbols),
        cmocka_unit_test(test_parse_shape_rejects_bad_text),
        cmocka_unit_test(test_pass_find_knows_every_pass),
        cmocka_unit_test(test_specialize_batch_fixes_dynamic_first_dims),
        cmocka_unit_test(test_specialize_shape_binds_shared_symbol),
        cmocka_unit_test(test_specialize_shape_before_batch),
        cmocka_unit_test(test_specialize_rejects_unknown_input),
        cmocka_unit_test(test_specialize_rejects_contradictions),
        cmocka_unit_test(test_specialize_clears_stale_shapes),
        cmocka_unit_test(test_specialize_binds_symbols_in_declared_shapes),
        cmocka_unit_test(test_shapes_folds_shape_chain_into_reshape_constant),
        cmocka_unit_test(test_shapes_keeps_shape_of_dynamic_dim),
        cmocka_unit_test(test_shapes_folds_shape_slice_of_known_dims),
        cmocka_unit_test(test_shapes_folds_known_dims_picked_from_dynamic_shape),
        cmocka_unit_test(test_shapes_folds_range_and_constant_of_shape),
        cmocka_unit_test(test_shapes_folds_integer_arithmetic),
        cmocka_unit_test(test_shapes_never_folds_trainable_params),
        cmocka_unit_test(test_frozen_float_params_fold_only_in_fold_pass),
        cmocka_unit_test(test_shapes_leaves_big_results_to_fold),
        cmocka_unit_test(test_shapes_rejects_contradicting_declared_type),
        cmocka_unit_test(test_shapes_accepts_compatible_declared_type),
        cmocka_unit_test(test_shapes_skips_nodes_after_unknown_op),
        cmocka_unit_test(test_eval_gather_negative_indices_on_axis_1),
        cmocka_unit_test(test_eval_slice_spec_examples),
        cmocka_unit_test(test_eval_reshape_zero_and_minus_one),
        cmocka_unit_test(test_eval_integer_div_and_mod),
        cmocka_unit_test(test_eval_broadcast_arithmetic_and_where),
        cmocka_unit_test(test_eval_cast_truncates_and_converts),
        cmocka_unit_test(test_eval_movement_ops),
        cmocka_unit_test(test_eval_shape_size_and_reductions),
        cmocka_unit_test(test_eval_range_clip_and_unary),
        cmocka_unit_test(test_eval_variadic_logic_and_constants),
        cmocka_unit_test(test_eval_rejects_invalid_arguments),
        cmocka_unit_test(test_dce_removes_unused_nodes_and_values),
        cmocka_unit_test(test_fold_survives_allocation_failures),
        cmocka_unit_test(test_pipeline_survives_every_allocation_failure),
        cmocka_unit_test(test_fold_matches_onnx_node_tests),
        cmocka_unit_test(test_driver_dumps_after_named_pass),
        cmocka_unit_test(test_driver_prefixes_errors_with_pass_name),
        cmocka_unit_test(test_driver_reports_broken_graph_as_internal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
