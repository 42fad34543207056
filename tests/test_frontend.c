/* test_frontend.c: ONNX import. Tiny models come from tests/models (.onnxtxt,
 * encoded at build time into GRAFT_TEST_MODELS); binary and corrupt inputs
 * and external data files are written at run time into a mkdtemp dir. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "frontend/gr_frontend.h"

/* ------------------------------------------------------------- helpers */

static const char *model_path(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s.onnx", GRAFT_TEST_MODELS, name);
    return path;
}

static gr_graph *import_ok(const char *name) {
    gr_graph *g = NULL;
    gr_status st = {0};
    gr_code rc = gr_import_file(model_path(name), &g, &st);
    if (rc != GR_OK) fprintf(stderr, "import %s: %s\n", name, st.msg);
    assert_int_equal(rc, GR_OK);
    assert_non_null(g);
    gr_status vs = {0};
    if (gr_graph_verify(g, &vs) != GR_OK) fprintf(stderr, "verify %s: %s\n", name, vs.msg);
    return g;
}

/* Imports path, expects code and every NULL-terminated substring in msg. */
static void expect_fail_path(const char *path, gr_code code, ...) {
    gr_graph *g = (gr_graph *)1;
    gr_status st = {0};
    gr_code rc = gr_import_file(path, &g, &st);
    if (rc != code) fprintf(stderr, "%s: got %s: %s\n", path, gr_code_name(rc), st.msg);
    assert_int_equal(rc, code);
    assert_null(g);
    va_list ap;
    va_start(ap, code);
    for (const char *s; (s = va_arg(ap, const char *));) {
        if (!strstr(st.msg, s)) fprintf(stderr, "'%s' not in: %s\n", s, st.msg);
        assert_non_null(strstr(st.msg, s));
    }
    va_end(ap);
}

#define expect_fail(name, code, ...) \
    expect_fail_path(model_path(name), code, __VA_ARGS__, (const char *)NULL)

static gr_node *node(const gr_graph *g, const char *name) {
    gr_node *n = gr_graph_find_node(g, name);
    if (!n) fprintf(stderr, "no node '%s'\n", name);
    assert_non_null(n);
    return n;
}

static gr_value *value(const gr_graph *g, const char *name) {
    gr_value *v = gr_graph_find(g, name);
    if (!v) fprintf(stderr, "no value '%s'\n", name);
    assert_non_null(v);
    return v;
}

/* Asserts v is a constant i64 vector equal to want[0..n). */
static void assert_ints(const gr_value *v, int n, const int64_t *want) {
    int64_t got[16];
    assert_non_null(v);
    assert_true(gr_value_is_constant(v));
    assert_int_equal(v->dtype, GR_DTYPE_I64);
    assert_int_equal(gr_value_const_ints(v, got, 16), n);
    for (int i = 0; i < n; i++) assert_int_equal(got[i], want[i]);
}

static double scalar(const gr_value *v) {
    assert_non_null(v);
    assert_true(gr_value_is_constant(v));
    assert_int_equal(gr_value_numel(v), 1);
    return gr_dtype_load_f64(v->dtype, v->data, 0);
}

/* A temp dir whose files are removed by tmp_cleanup. */
typedef struct {
    char dir[256];
    char files[8][320];
    int n_files;
} tmpdir;

static void tmp_init(tmpdir *t) {
    memset(t, 0, sizeof *t);
    const char *env = getenv("TMPDIR");
    const char *base = env && *env && strlen(env) < 200 ? env : "/tmp";
    size_t n = strlen(base);
    memcpy(t->dir, base, n);
    memcpy(t->dir + n, "/graft_frontend_XXXXXX", sizeof "/graft_frontend_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
}

static const char *tmp_write(tmpdir *t, const char *name, const void *data, size_t len) {
    assert_true(t->n_files < 8);
    char *path = t->files[t->n_files++], dir[256];
    memcpy(dir, t->dir, sizeof dir); /* snprintf must not read from *t */
    snprintf(path, 320, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

static void tmp_cleanup(tmpdir *t) {
    for (int i = 0; i < t->n_files; i++) unlink(t->files[i]);
    rmdir(t->dir);
}

static void *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)size + 1);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

/* ------------------------------------------------------- values, model */

static void test_import_reads_every_storage_form(void **state) {
    (void)state;
    gr_graph *g = import_ok("import_storage");
    const float *wf = value(g, "w_float")->data;
    assert_true(wf[0] == 1.0f && wf[3] == 4.0f);
    assert_int_equal(value(g, "w_float")->kind, GR_VALUE_PARAM);
    assert_true(value(g, "w_float")->trainable);
    const float *wr = value(g, "w_raw")->data;
    assert_true(wr[0] == 1.0f && wr[1] == 2.0f);
    const int64_t *i64 = value(g, "i64")->data;
    assert_true(i64[0] == -1 && i64[2] == 9000000000LL);
    assert_false(value(g, "i64")->trainable);
    const int8_t *i8 = value(g, "i8")->data;
    assert_true(i8[0] == -128 && i8[1] == 5 && i8[2] == 127);
    const uint8_t *b = value(g, "flags")->data;
    assert_true(b[0] == 1 && b[1] == 0 && b[2] == 1);
    const uint16_t *h = value(g, "half")->data;
    assert_true(gr_f16_to_f32(h[0]) == 1.0f && gr_f16_to_f32(h[1]) == -2.0f);
    const double *d = value(g, "dbl")->data;
    assert_true(d[0] == 0.5 && d[1] == -1.25);
    const uint32_t *u = value(g, "u32")->data;
    assert_true(u[0] == 7 && u[1] == 4000000000u);
    assert_int_equal(value(g, "empty")->nbytes, 0);
    gr_graph_free(g);
}

static void test_import_lifts_constants(void **state) {
    (void)state;
    gr_graph *g = import_ok("import_storage");
    assert_int_equal(g->n_constants_lifted, 3);
    gr_value *w = value(g, "c_weight");
    assert_int_equal(w->kind, GR_VALUE_PARAM); /* float, 3 elements: a weight */
    assert_true(w->trainable);
    gr_value *s = value(g, "c_scalar");
    assert_int_equal(s->kind, GR_VALUE_CONST);
    assert_int_equal(s->shape.rank, 0);
    assert_true(scalar(s) == 2.5);
    assert_ints(value(g, "c_ints"), 2, (int64_t[]){1, 2});
    for (int i = 0; i < g->n_nodes; i++) assert_string_not_equal(g->nodes[i]->op_type, "Constant");
    assert_int_equal(g->n_nodes, 2);
    gr_graph_free(g);
}

static void test_import_keeps_model_facts_types_and_symbols(void **state) {
    (void)state;
    gr_graph *g = import_ok("import_storage");
    assert_int_equal(g->ir_version, 8);
    assert_int_equal(g->opset, 17);
    assert_string_equal(g->producer_name, "graft-test");
    assert_string_equal(g->domain, "org.graft.test");
    assert_int_equal(g->model_version, 3);
    assert_int_equal(g->n_opsets, 2);
    assert_string_equal(g->opsets[1].domain, "com.example.unused");
    assert_int_equal(g->n_metadata, 1);
    assert_string_equal(g->metadata[0].value, "graft");
    assert_int_equal(g->n_inputs, 1);
    gr_value *x = g->inputs[0];
    assert_int_equal(x->shape.rank, 3);
    assert_int_equal(x->shape.dims[0], GR_DIM_DYNAMIC);
    assert_string_equal(x->shape.syms[0], "N");
    assert_int_equal(x->shape.dims[1], 3);
    assert_int_equal(x->shape.dims[2], GR_DIM_DYNAMIC);
    assert_null(x->shape.syms[2]);
    gr_value *z = g->outputs[0];
    assert_true(z->has_declared);
    assert_int_equal(z->declared_dtype, GR_DTYPE_F32);
    assert_int_equal(z->declared_shape.dims[2], 4);
    assert_true(value(g, "y")->has_declared); /* from value_info */
    /* empty node names are generated and unique */
    assert_true(*g->nodes[0]->name && *g->nodes[1]->name);
    assert_string_not_equal(g->nodes[0]->name, g->nodes[1]->name);
    gr_graph_free(g);
}

static void test_import_ir3_initializer_is_not_an_input(void **state) {
    (void)state;
    gr_graph *g = import_ok("import_ir3");
    assert_int_equal(g->n_inputs, 1);
    assert_string_equal(g->inputs[0]->name, "x");
    assert_int_equal(value(g, "w")->kind, GR_VALUE_PARAM);
    gr_graph_free(g);
}

static void test_import_keeps_unknown_ops_and_reports_them_together(void **state) {
    (void)state;
    gr_graph *g = import_ok("import_unknown_ops");
    gr_node *f = node(g, "fancy");
    assert_int_equal(f->op, GR_OP_UNKNOWN);
    assert_string_equal(f->op_type, "FancyOp");
    assert_string_equal(f->domain, "com.example");
    assert_int_equal(node(g, "tri1")->op, GR_OP_UNKNOWN);
    /* out-of-order nodes are sorted: tri1, tri2, fancy, relu */
    assert_string_equal(g->nodes[0]->name, "tri1");
    assert_string_equal(g->nodes[2]->name, "fancy");
    gr_node *r = g->nodes[3];
    assert_int_equal(r->op, GR_OP_RELU);
    assert_int_equal(r->n_inputs, 1);  /* trailing omitted input dropped */
    assert_int_equal(r->n_outputs, 1); /* trailing omitted output dropped */
    gr_status st = {0};
    assert_int_equal(gr_graph_check_supported(g, &st), GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "2 unsupported op types"));
    assert_non_null(strstr(st.msg, "Trilu"));
    assert_non_null(strstr(st.msg, "com.example.FancyOp"));
    gr_graph_free(g);
}

/* ----------------------------------------------------------- canon.c */

static void test_canon_opset9_attributes_become_inputs(void **state) {
    (void)state;
    gr_graph *g = import_ok("canon_opset9");
    gr_node *n = node(g, "clip");
    assert_int_equal(n->n_inputs, 3);
    assert_int_equal(n->inputs[1]->dtype, GR_DTYPE_F32);
    assert_true(scalar(n->inputs[1]) == -1.0 && scalar(n->inputs[2]) == 6.0);
    assert_string_equal(n->inputs[1]->name, "clip.min");
    assert_int_equal(n->n_attrs, 0);
    n = node(g, "slice");
    assert_int_equal(n->n_inputs, 4);
    assert_ints(n->inputs[1], 2, (int64_t[]){0, 1});
    assert_ints(n->inputs[2], 2, (int64_t[]){1, 3});
    assert_ints(n->inputs[3], 2, (int64_t[]){0, 2});
    n = node(g, "pad");
    assert_ints(n->inputs[1], 8, (int64_t[]){0, 0, 1, 1, 0, 0, 1, 1});
    assert_true(scalar(n->inputs[2]) == 0.5);
    assert_string_equal(gr_node_string(n, "mode", "?"), "constant");
    assert_ints(node(g, "squeeze")->inputs[1], 1, (int64_t[]){0});
    assert_ints(node(g, "unsqueeze")->inputs[1], 1, (int64_t[]){1});
    n = node(g, "rmean");
    assert_ints(n->inputs[1], 2, (int64_t[]){2, 3});
    assert_int_equal(gr_node_int(n, "keepdims", 1), 0);
    assert_ints(node(g, "rsum")->inputs[1], 1, (int64_t[]){1});
    assert_int_equal(node(g, "rmax")->n_inputs, 1); /* no axes: reduce all */
    gr_graph_free(g);
}

static void test_canon_opset9_split_and_dropout(void **state) {
    (void)state;
    gr_graph *g = import_ok("canon_opset9");
    gr_node *n = node(g, "split_sizes");
    assert_ints(n->inputs[1], 2, (int64_t[]){1, 3});
    assert_null(gr_node_attr(n, "num_outputs"));
    n = node(g, "split_equal");
    assert_int_equal(n->n_inputs, 1);
    assert_int_equal(gr_node_int(n, "num_outputs", 0), 2);
    n = node(g, "dropout");
    assert_int_equal(n->n_inputs, 2);
    assert_true(scalar(n->inputs[1]) == 0.25);
    assert_int_equal(n->n_outputs, 2);
    assert_int_equal(node(g, "cast")->attrs[0].i, GR_DTYPE_I64);
    const gr_attr *to = gr_node_attr(node(g, "cast_str"), "to"); /* Cast-1 spelling */
    assert_int_equal(to->type, GR_ATTR_INT);
    assert_int_equal(to->i, GR_DTYPE_F16);
    gr_graph_free(g);
}

static void test_canon_opset9_softmax_forms(void **state) {
    (void)state;
    gr_graph *g = import_ok("canon_opset9");
    /* axis 1 of a 4-D input: Flatten(1) -> Softmax(-1) -> Reshape(Shape(x)) */
    gr_node *sm = node(g, "softmax_axis1");
    assert_int_equal(gr_node_int(sm, "axis", 0), -1);
    gr_node *fl = sm->inputs[0]->producer;
    assert_non_null(fl);
    assert_int_equal(fl->op, GR_OP_FLATTEN);
    assert_int_equal(gr_node_int(fl, "axis", 0), 1);
    assert_string_equal(fl->inputs[0]->name, "x");
    gr_node *rs = value(g, "sm4")->producer;
    assert_int_equal(rs->op, GR_OP_RESHAPE);
    assert_ptr_equal(rs->inputs[0], sm->outputs[0]);
    assert_int_equal(rs->inputs[1]->producer->op, GR_OP_SHAPE);
    assert_ptr_equal(g->outputs[0], value(g, "sm4"));
    /* the last axis needs no rewrite, nor does axis -1 of unknown rank */
    gr_node *last = node(g, "softmax_last");
    assert_int_equal(gr_node_int(last, "axis", 0), -1);
    assert_string_equal(last->inputs[0]->name, "x");
    gr_node *lsm = node(g, "logsoftmax_unknown_rank");
    assert_int_equal(gr_node_int(lsm, "axis", 0), -1);
    assert_string_equal(lsm->inputs[0]->name, "clip");
    gr_graph_free(g);
}

static void test_canon_opset9_batchnorm_and_upsample(void **state) {
    (void)state;
    gr_graph *g = import_ok("canon_opset9");
    gr_node *bn = node(g, "bn");
    assert_int_equal(bn->n_outputs, 3); /* saved_mean/var dropped */
    assert_int_equal(gr_node_int(bn, "training_mode", 0), 1);
    assert_true(gr_node_float(bn, "epsilon", 0) > 0.00099 &&
                gr_node_float(bn, "epsilon", 0) < 0.00101);
    assert_string_equal(bn->outputs[1]->name, "bn_mean");
    gr_node *up = node(g, "upsample");
    assert_int_equal(up->op, GR_OP_RESIZE);
    assert_int_equal(up->n_inputs, 3);
    assert_null(up->inputs[1]);
    assert_string_equal(up->inputs[2]->name, "up_scales");
    assert_string_equal(gr_node_string(up, "coordinate_transformation_mode", ""), "asymmetric");
    assert_string_equal(gr_node_string(up, "nearest_mode", ""), "floor");
    gr_graph_free(g);
}

static void test_canon_opset7_upsample_scales_attribute(void **state) {
    (void)state;
    gr_graph *g = import_ok("canon_opset7");
    gr_node *up = node(g, "up");
    assert_int_equal(up->op, GR_OP_RESIZE);
    assert_null(gr_node_attr(up, "scales"));
    const gr_value *s = up->inputs[2];
    assert_int_equal(s->dtype, GR_DTYPE_F32);
    assert_int_equal(gr_value_numel(s), 4);
    assert_true(((const float *)s->data)[3] == 3.0f);
    assert_string_equal(gr_node_string(up, "mode", ""), "linear");
    assert_string_equal(gr_node_string(up, "coordinate_transformation_mode", ""), "asymmetric");
    gr_node *bn = node(g, "bn");
    assert_int_equal(bn->n_attrs, 0); /* spatial = 1 and is_test dropped */
    assert_int_equal(gr_node_int(bn, "training_mode", 0), 0);
    gr_graph_free(g);
}

static void test_canon_opset10_resize_downsample_rounds_up(void **state) {
    (void)state;
    gr_graph *g = import_ok("canon_opset10");
    gr_node *r = node(g, "resize");
    assert_string_equal(gr_node_string(r, "nearest_mode", ""), "ceil");
    assert_string_equal(r->inputs[2]->name, "down");
    assert_int_equal(node(g, "dropout")->n_inputs, 1); /* ratio defaulted */
    gr_graph_free(g);
}

static void test_canon_opset11_resize_split_squeeze(void **state) {
    (void)state;
    gr_graph *g = import_ok("canon_opset11");
    gr_node *r = node(g, "resize");
    assert_null(r->inputs[1]); /* empty roi constant -> omitted */
    assert_string_equal(gr_node_string(r, "coordinate_transformation_mode", ""), "half_pixel");
    assert_string_equal(gr_node_string(r, "nearest_mode", ""), "round_prefer_ceil");
    assert_ints(node(g, "squeeze")->inputs[1], 1, (int64_t[]){-4});
    assert_int_equal(gr_node_int(node(g, "split"), "num_outputs", 0), 4);
    gr_node *sm = node(g, "softmax");
    assert_int_equal(gr_node_int(sm, "axis", 0), -1);
    assert_string_equal(sm->inputs[0]->name, "x");
    gr_graph_free(g);
}

static void test_canon_opset13_reduce_forms(void **state) {
    (void)state;
    gr_graph *g = import_ok("canon_opset13");
    assert_string_equal(node(g, "rsum")->inputs[1]->name, "axes");
    assert_ints(node(g, "rmean")->inputs[1], 1, (int64_t[]){1});
    assert_int_equal(gr_node_int(node(g, "split"), "num_outputs", 0), 2);
    gr_graph_free(g);
}

static void test_canon_constants_take_the_input_dtype(void **state) {
    (void)state;
    gr_graph *g = import_ok("canon_dtype");
    assert_int_equal(node(g, "clip_f16")->inputs[1]->dtype, GR_DTYPE_F16);
    assert_int_equal(node(g, "clip_f16")->n_inputs, 2); /* max omitted */
    const gr_value *v = node(g, "pad_f64")->inputs[2];
    assert_int_equal(v->dtype, GR_DTYPE_F64);
    assert_true(scalar(v) == 2.0);
    /* Shape changes the dtype: without inference the fallback is f32 */
    gr_node *n = node(g, "clip_unknown");
    assert_null(n->inputs[1]);
    assert_int_equal(n->inputs[2]->dtype, GR_DTYPE_F32);
    gr_graph_free(g);
}

static void test_canon_rejects_forms_without_equivalent(void **state) {
    (void)state;
    expect_fail("bad_bn_spatial", GR_ERR_UNSUPPORTED, "node 'bn'", "opset 7", "spatial = 0");
    expect_fail("bad_bn_saved", GR_ERR_UNSUPPORTED, "node 'bn'", "saved_mean", "opset 9");
    expect_fail("bad_dropout_mask", GR_ERR_UNSUPPORTED, "node 'drop'", "mask", "opset 9");
    expect_fail("bad_resize_tf_nn", GR_ERR_UNSUPPORTED, "node 'rz'", "tf_half_pixel_for_nn",
                "round_prefer_ceil");
}

/* ------------------------------------------------------ external data */

/* Copies model name into a temp dir and writes w.bin = 4 junk bytes then
 * the floats 1..4; returns the model's temp path. */
static const char *ext_setup(tmpdir *t, const char *name) {
    size_t len;
    void *buf = slurp(model_path(name), &len);
    tmp_init(t);
    const char *path = tmp_write(t, "model.onnx", buf, len);
    free(buf);
    unsigned char data[20] = {0xde, 0xad, 0xbe, 0xef};
    float w[4] = {1, 2, 3, 4};
    memcpy(data + 4, w, sizeof w);
    tmp_write(t, "w.bin", data, sizeof data);
    return path;
}

static void test_import_reads_external_data(void **state) {
    (void)state;
    tmpdir t;
    const char *path = ext_setup(&t, "ext_ok");
    gr_graph *g = NULL;
    gr_status st = {0};
    assert_int_equal(gr_import_file(path, &g, &st), GR_OK);
    const float *w = value(g, "w")->data;
    assert_true(w[0] == 1.0f && w[3] == 4.0f);
    gr_graph_free(g);
    /* from memory without a base directory, external data is refused */
    size_t len;
    void *buf = slurp(path, &len);
    assert_int_equal(gr_import_buffer(buf, len, NULL, "mem.onnx", &g, &st), GR_ERR_BAD_MODEL);
    assert_non_null(strstr(st.msg, "base directory"));
    assert_non_null(strstr(st.msg, "mem.onnx"));
    free(buf);
    tmp_cleanup(&t);
}

static void test_import_rejects_unsafe_or_out_of_bounds_external_data(void **state) {
    (void)state;
    tmpdir t;
    const char *path = ext_setup(&t, "ext_abs");
    expect_fail_path(path, GR_ERR_BAD_MODEL, "initializer 'w'", "/etc/passwd", "absolute",
                     (const char *)NULL);
    tmp_cleanup(&t);
    path = ext_setup(&t, "ext_dotdot");
    expect_fail_path(path, GR_ERR_BAD_MODEL, "initializer 'w'", "'..'", (const char *)NULL);
    tmp_cleanup(&t);
    path = ext_setup(&t, "ext_oob");
    expect_fail_path(path, GR_ERR_BAD_MODEL, "initializer 'w'", "offset 8", "w.bin",
                     "20 bytes", (const char *)NULL);
    tmp_cleanup(&t);
}

/* ---------------------------------------------------------- bad input */

static void test_import_rejects_missing_and_empty_files(void **state) {
    (void)state;
    expect_fail("does_not_exist", GR_ERR_IO, "does_not_exist.onnx", "No such file");
    tmpdir t;
    tmp_init(&t);
    const char *path = tmp_write(&t, "empty.onnx", "", 0);
    expect_fail_path(path, GR_ERR_BAD_MODEL, "empty.onnx", "empty", (const char *)NULL);
    tmp_cleanup(&t);
}

static void test_import_explains_truncated_and_random_files(void **state) {
    (void)state;
    size_t len;
    unsigned char *buf = slurp(model_path("canon_opset9"), &len);
    tmpdir t;
    tmp_init(&t);
    const char *path = tmp_write(&t, "cut.onnx", buf, len / 2);
    expect_fail_path(path, GR_ERR_BAD_MODEL, "cut.onnx", "truncated", "field 7 (graph)",
                     "remain", (const char *)NULL);
    uint32_t seed = 12345;
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
    path = tmp_write(&t, "random.onnx", buf, len);
    expect_fail_path(path, GR_ERR_BAD_MODEL, "random.onnx", "not", "byte",
                     (const char *)NULL);
    free(buf);
    tmp_cleanup(&t);
}

/* A TensorProto: dims [2], FLOAT, float_data {1.5, -2}, name "t". */
static const unsigned char tensor_pb[] = {
    0x08, 0x02, 0x10, 0x01, 0x22, 0x08, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0,
    0x42, 0x01, 't'};

static void test_import_rejects_a_tensorproto_file(void **state) {
    (void)state;
    tmpdir t;
    tmp_init(&t);
    const char *path = tmp_write(&t, "input_0.pb", tensor_pb, sizeof tensor_pb);
    expect_fail_path(path, GR_ERR_BAD_MODEL, "input_0.pb", "not an ONNX model",
                     "TensorProto", (const char *)NULL);
    tmp_cleanup(&t);
}

static void test_tensor_read_pb_reads_test_data(void **state) {
    (void)state;
    tmpdir t;
    tmp_init(&t);
    const char *path = tmp_write(&t, "input_0.pb", tensor_pb, sizeof tensor_pb);
    gr_tensor ten;
    char *name = NULL;
    gr_status st = {0};
    assert_int_equal(gr_tensor_read_pb(path, &ten, &name, &st), GR_OK);
    assert_string_equal(name, "t");
    assert_int_equal(ten.dtype, GR_DTYPE_F32);
    assert_int_equal(ten.shape.rank, 1);
    assert_int_equal(ten.nbytes, 8);
    assert_true(((float *)ten.data)[0] == 1.5f && ((float *)ten.data)[1] == -2.0f);
    gr_free(ten.data);
    gr_free(name);
    path = tmp_write(&t, "cut.pb", tensor_pb, 9);
    assert_int_equal(gr_tensor_read_pb(path, &ten, NULL, &st), GR_ERR_BAD_MODEL);
    assert_non_null(strstr(st.msg, "cut.pb"));
    assert_non_null(strstr(st.msg, "float_data"));
    tmp_cleanup(&t);
}

/* tag + varint length + payload */
static size_t wrap(unsigned char *out, unsigned field, const unsigned char *payload,
                   size_t len) {
    size_t n = 0;
    out[n++] = (unsigned char)(field << 3 | 2);
    size_t l = len;
    do {
        out[n++] = (unsigned char)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
        l >>= 7;
    } while (l);
    memmove(out + n, payload, len);
    return n + len;
}

static void test_import_rejects_deep_nesting(void **state) {
    (void)state;
    /* graph{node{attribute{g{node{...}}}}} 40 times: 120+ levels */
    unsigned char *a = calloc(1, 4096), *b = calloc(1, 4096);
    size_t len = 0;
    for (int i = 0; i < 40; i++) {
        len = wrap(b, 6, a, len);      /* AttributeProto.g */
        len = wrap(a, 5, b, len);      /* NodeProto.attribute */
        len = wrap(b, 1, a, len);      /* GraphProto.node */
        memcpy(a, b, len);
    }
    len = wrap(b, 7, a, len); /* ModelProto.graph */
    tmpdir t;
    tmp_init(&t);
    const char *path = tmp_write(&t, "deep.onnx", b, len);
    expect_fail_path(path, GR_ERR_BAD_MODEL, "deep.onnx", "nested deeper than",
                     (const char *)NULL);
    free(a);
    free(b);
    tmp_cleanup(&t);
}

static void test_import_rejects_bad_graphs(void **state) {
    (void)state;
    expect_fail("bad_cycle", GR_ERR_BAD_MODEL, "bad_cycle.onnx", "cycle", "add_a");
    expect_fail("bad_dangling", GR_ERR_BAD_MODEL,
                "node 'n' (Add): input 'foo' is not produced by any node, "
                "initializer or graph input");
    expect_fail("bad_attr_type", GR_ERR_BAD_MODEL,
                "node 'c' (Conv): attribute 'group' is a FLOATS, expected INT");
    expect_fail("bad_unknown_attr", GR_ERR_BAD_MODEL, "node 'r' (Relu)", "'alpha'");
    expect_fail("bad_negative_dim", GR_ERR_BAD_MODEL, "graph input 'x'", "dim 1 is -3");
    expect_fail("bad_opset", GR_ERR_UNSUPPORTED, "opset 5", "7..23");
    expect_fail("bad_duplicate", GR_ERR_BAD_MODEL, "'y' is defined twice", "r2");
    expect_fail("bad_numel", GR_ERR_BAD_MODEL, "initializer 'w'", "holds 2", "expected 3");
    expect_fail("bad_clip_attr", GR_ERR_BAD_MODEL, "node 'cl' (Clip)",
                "attribute 'min' is a INT, expected FLOAT");
    expect_fail("bad_graph_attr", GR_ERR_BAD_MODEL, "node 'r' (Relu)", "'body'", "GRAPH");
}

static void test_import_rejects_valid_but_unsupported_forms(void **state) {
    (void)state;
    expect_fail("bad_sparse", GR_ERR_UNSUPPORTED, "sparse initializers");
    expect_fail("bad_string_const", GR_ERR_UNSUPPORTED, "Constant 's'", "value_string");
    expect_fail("bad_cast_float8", GR_ERR_UNSUPPORTED, "node 'to_f8' (Cast)", "17");
    expect_fail("bad_resize_mixed", GR_ERR_UNSUPPORTED, "node 'rz'", "opset 10",
                "downsamples");
}

/* Failing the nth allocation must fail cleanly (LSan checks for leaks). */
static void test_import_survives_allocation_failures(void **state) {
    (void)state;
    for (long n = 1; n < 100000; n++) {
        gr_graph *g = NULL;
        gr_status st = {0};
        gr_debug_fail_alloc_after(n);
        gr_code rc = gr_import_file(model_path("canon_opset9"), &g, &st);
        gr_debug_fail_alloc_after(0);
        if (rc == GR_OK) {
            assert_non_null(g);
            gr_graph_free(g);
            break;
        }
        assert_null(g);
        assert_int_equal(rc, GR_ERR_NOMEM);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_reads_every_storage_form),
        cmocka_unit_test(test_import_lifts_constants),
        cmocka_unit_test(test_import_keeps_model_facts_types_and_symbols),
        cmocka_unit_test(test_import_ir3_initializer_is_not_an_input),
        cmocka_unit_test(test_import_keeps_unknown_ops_and_reports_them_together),
        cmocka_unit_test(test_canon_opset9_attributes_become_inputs),
        cmocka_unit_test(test_canon_opset9_split_and_dropout),
        cmocka_unit_test(test_canon_opset9_softmax_forms),
        cmocka_unit_test(test_canon_opset9_batchnorm_and_upsample),
        cmocka_unit_test(test_canon_opset7_upsample_scales_attribute),
        cmocka_unit_test(test_canon_opset10_resize_downsample_rounds_up),
        cmocka_unit_test(test_canon_opset11_resize_split_squeeze),
        cmocka_unit_test(test_canon_opset13_reduce_forms),
        cmocka_unit_test(test_canon_constants_take_the_input_dtype),
        cmocka_unit_test(test_canon_rejects_forms_without_equivalent),
        cmocka_unit_test(test_import_reads_external_data),
        cmocka_unit_test(test_import_rejects_unsafe_or_out_of_bounds_external_data),
        cmocka_unit_test(test_import_rejects_missing_and_empty_files),
        cmocka_unit_test(test_import_explains_truncated_and_random_files),
        cmocka_unit_test(test_import_rejects_a_tensorproto_file),
        cmocka_unit_test(test_tensor_read_pb_reads_test_data),
        cmocka_unit_test(test_import_rejects_deep_nesting),
        cmocka_unit_test(test_import_rejects_bad_graphs),
        cmocka_unit_test(test_import_rejects_valid_but_unsupported_forms),
        cmocka_unit_test(test_import_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
