/* test_export.c: ONNX export (frontend/export.c). Hand-built graphs are
 * exported and the ModelProto is read back through protobuf-c's reflection
 * (descriptors), so the test needs only <protobuf-c/protobuf-c.h>, not the
 * generated header. Round trips (import -> export -> import) are checked
 * with tests/graph_equal.h on the test models and the conformance models. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "frontend/gr_frontend.h"
#include "graph_equal.h"

extern const ProtobufCMessageDescriptor onnx__model_proto__descriptor;

/* ---------------------------------------------- reading a ModelProto back */

typedef const ProtobufCMessage pbm;

static const ProtobufCFieldDescriptor *pb_field(pbm *m, const char *name) {
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (!f) fail_msg("no field '%s' in %s", name, m->descriptor->name);
    return f;
}

static const char *pb_at(pbm *m, const ProtobufCFieldDescriptor *f) {
    return (const char *)m + f->offset;
}

static size_t pb_n(pbm *m, const char *name) {
    const ProtobufCFieldDescriptor *f = pb_field(m, name);
    assert_int_equal(f->label, PROTOBUF_C_LABEL_REPEATED);
    return *(const size_t *)((const char *)m + f->quantifier_offset);
}

/* Field present: set oneof case, has_ flag, non-NULL pointer, non-empty list. */
static int pb_has(pbm *m, const char *name) {
    const ProtobufCFieldDescriptor *f = pb_field(m, name);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) return pb_n(m, name) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void *const *)pb_at(m, f) != NULL;
    return *(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset);
}

/* Element i of a repeated field, or the field itself (i ignored). */
static const void *pb_elem(pbm *m, const char *name, size_t i, size_t size) {
    const ProtobufCFieldDescriptor *f = pb_field(m, name);
    if (f->label != PROTOBUF_C_LABEL_REPEATED) return pb_at(m, f);
    assert_true(i < pb_n(m, name));
    return *(const char *const *)pb_at(m, f) + i * size;
}

static pbm *pb_msg(pbm *m, const char *name, size_t i) {
    return *(pbm *const *)pb_elem(m, name, i, sizeof(void *));
}

static const char *pb_str(pbm *m, const char *name, size_t i) {
    return *(const char *const *)pb_elem(m, name, i, sizeof(char *));
}

static int64_t pb_int(pbm *m, const char *name, size_t i) {
    const ProtobufCFieldDescriptor *f = pb_field(m, name);
    if (f->type == PROTOBUF_C_TYPE_INT64)
        return *(const int64_t *)pb_elem(m, name, i, sizeof(int64_t));
    return *(const int32_t *)pb_elem(m, name, i, sizeof(int32_t));
}

static float pb_float(pbm *m, const char *name, size_t i) {
    return *(const float *)pb_elem(m, name, i, sizeof(float));
}

static ProtobufCBinaryData pb_bytes(pbm *m, const char *name, size_t i) {
    return *(const ProtobufCBinaryData *)pb_elem(m, name, i,
                                                 sizeof(ProtobufCBinaryData));
}

/* The element of list whose name field is name, or NULL. */
static pbm *pb_find(pbm *m, const char *list, const char *name) {
    for (size_t i = 0; i < pb_n(m, list); i++) {
        pbm *e = pb_msg(m, list, i);
        const char *en = pb_str(e, "name", 0);
        if (en && !strcmp(en, name)) return e;
    }
    return NULL;
}

static int64_t opset_of(pbm *model, const char *domain) {
    for (size_t i = 0; i < pb_n(model, "opset_import"); i++) {
        pbm *o = pb_msg(model, "opset_import", i);
        const char *d = pb_str(o, "domain", 0);
        if (!strcmp(d ? d : "", domain)) return pb_int(o, "version", 0);
    }
    return -1;
}

static ProtobufCMessage *export_unpack(const gr_graph *g) {
    gr_status st = {0};
    void *buf = NULL;
    size_t len = 0;
    if (gr_export_buffer(g, &buf, &len, &st) != GR_OK) fail_msg("%s", st.msg);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(&onnx__model_proto__descriptor, NULL, len, buf);
    gr_free(buf);
    assert_non_null(m);
    return m;
}

/* -------------------------------------------------------- a sample graph */

static const float sample_w[12] = {0.5f, -1, 2, 3.25f, 1e-7f, 6, 7, -8, 9, 10, 11, 12};
static const int64_t sample_shape[2] = {-1, 3};

/* x:[N,4] @ W:[4,3] -> y:[N,3] -> Reshape(y, shape) -> r -> MyOp(r, _, k)
 * in domain com.example with one attribute of every type. The Reshape node
 * is named "shape" like the CONST it reads, so that Constant needs a
 * generated node name. */
static gr_graph *build_sample(void) {
    gr_graph *g = gr_graph_new("sample");
    assert_non_null(g);
    gr_shape xs = gr_shape_make(2, (int64_t[]){GR_DIM_DYNAMIC, 4});
    assert_int_equal(gr_graph_set_dim_symbol(g, &xs, 0, "N"), GR_OK);
    gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &xs);
    gr_shape ws = gr_shape_make(2, (int64_t[]){4, 3});
    gr_value *w = gr_graph_add_data(g, GR_VALUE_PARAM, "W", GR_DTYPE_F32, &ws, sample_w);
    gr_shape ss = gr_shape_make(1, (int64_t[]){2});
    gr_value *shape = gr_graph_add_data(g, GR_VALUE_CONST, "shape", GR_DTYPE_I64,
                                        &ss, sample_shape);
    gr_shape ks = gr_shape_scalar();
    float kv = 0.125f;
    gr_value *k = gr_graph_add_data(g, GR_VALUE_CONST, "k", GR_DTYPE_F32, &ks, &kv);
    assert_true(x && w && shape && k);
    gr_node *mm = gr_node_add(g, GR_OP_MATMUL, "mm", 2, (gr_value *[]){x, w}, 1,
                              (const char *[]){"y"});
    assert_non_null(mm);
    mm->outputs[0]->dtype = GR_DTYPE_F32;
    mm->outputs[0]->shape = gr_shape_make(2, (int64_t[]){GR_DIM_DYNAMIC, 3});
    mm->outputs[0]->shape.syms[0] = xs.syms[0];
    gr_node *rs = gr_node_add(g, GR_OP_RESHAPE, "shape", 2,
                              (gr_value *[]){mm->outputs[0], shape}, 1,
                              (const char *[]){"r"});
    gr_node *u = gr_node_add(g, GR_OP_UNKNOWN, "custom", 3,
                             (gr_value *[]){rs->outputs[0], NULL, k}, 2,
                             (const char *[]){"u", ""});
    assert_non_null(u);
    u->op_type = "MyOp";
    u->domain = "com.example";
    int32_t tv[2] = {5, -6};
    gr_tensor t = {.dtype = GR_DTYPE_I32, .shape = gr_shape_make(1, (int64_t[]){2}),
                   .data = tv, .nbytes = sizeof tv};
    assert_int_equal(gr_node_set_int(g, u, "i", -7), GR_OK);
    assert_int_equal(gr_node_set_float(g, u, "f", 0.25), GR_OK);
    assert_int_equal(gr_node_set_string(g, u, "s", "hello"), GR_OK);
    assert_int_equal(gr_node_set_ints(g, u, "ints", 3, (int64_t[]){1, 2, 1LL << 40}), GR_OK);
    assert_int_equal(gr_node_set_floats(g, u, "floats", 2, (double[]){1.5, -2}), GR_OK);
    assert_int_equal(gr_node_set_strings(g, u, "strings", 2,
                                         (const char *[]){"a", "bc"}), GR_OK);
    assert_int_equal(gr_node_set_tensor(g, u, "t", &t), GR_OK);
    u->outputs[0]->has_declared = 1;
    u->outputs[0]->declared_dtype = GR_DTYPE_F32;
    u->outputs[0]->declared_shape = gr_shape_unknown();
    assert_int_equal(gr_graph_add_output(g, u->outputs[0]), GR_OK);

    static gr_opset opsets[2] = {{"", 13}, {"com.example", 3}};
    static gr_metadata meta[1] = {{"author", "graft tests"}};
    g->opsets = opsets;
    g->n_opsets = 2;
    g->opset = 13;
    g->metadata = meta;
    g->n_metadata = 1;
    g->doc = "a sample";
    g->domain = "ai.graft.test";
    g->model_version = 5;
    return g;
}

static void check_sample_model(pbm *m) {
    assert_int_equal(pb_int(m, "ir_version", 0), 8);
    assert_string_equal(pb_str(m, "producer_name", 0), "graft");
    assert_string_equal(pb_str(m, "producer_version", 0), "0.1.0");
    assert_string_equal(pb_str(m, "domain", 0), "ai.graft.test");
    assert_string_equal(pb_str(m, "doc_string", 0), "a sample");
    assert_int_equal(pb_int(m, "model_version", 0), 5);
    assert_int_equal(pb_n(m, "metadata_props"), 1);
    assert_string_equal(pb_str(pb_msg(m, "metadata_props", 0), "value", 0),
                        "graft tests");
    assert_int_equal(pb_n(m, "opset_import"), 2);
    assert_int_equal(opset_of(m, ""), 18);
    assert_int_equal(opset_of(m, "com.example"), 3);
}

static void check_sample_data(pbm *graph) {
    assert_int_equal(pb_n(graph, "initializer"), 1);
    pbm *w = pb_msg(graph, "initializer", 0);
    assert_string_equal(pb_str(w, "name", 0), "W");
    assert_int_equal(pb_int(w, "data_type", 0), GR_DTYPE_F32);
    assert_int_equal(pb_n(w, "dims"), 2);
    assert_int_equal(pb_int(w, "dims", 0), 4);
    assert_int_equal(pb_int(w, "dims", 1), 3);
    ProtobufCBinaryData raw = pb_bytes(w, "raw_data", 0);
    assert_int_equal(raw.len, sizeof sample_w);
    assert_memory_equal(raw.data, sample_w, sizeof sample_w);

    /* CONSTs come first as Constant nodes, in value order. */
    pbm *c = pb_msg(graph, "node", 0);
    assert_string_equal(pb_str(c, "op_type", 0), "Constant");
    assert_string_equal(pb_str(c, "output", 0), "shape");
    assert_string_not_equal(pb_str(c, "name", 0), "shape");
    pbm *a = pb_msg(c, "attribute", 0);
    assert_string_equal(pb_str(a, "name", 0), "value");
    pbm *t = pb_msg(a, "t", 0);
    assert_int_equal(pb_int(t, "data_type", 0), GR_DTYPE_I64);
    assert_int_equal(pb_int(t, "dims", 0), 2);
    raw = pb_bytes(t, "raw_data", 0);
    assert_int_equal(raw.len, sizeof sample_shape);
    assert_memory_equal(raw.data, sample_shape, sizeof sample_shape);
    pbm *k = pb_msg(graph, "node", 1);
    assert_string_equal(pb_str(k, "name", 0), "k");
    assert_int_equal(pb_n(pb_msg(pb_msg(k, "attribute", 0), "t", 0), "dims"), 0);
}

static void check_sample_io(pbm *graph) {
    assert_int_equal(pb_n(graph, "input"), 1);
    pbm *tt = pb_msg(pb_msg(pb_msg(graph, "input", 0), "type", 0), "tensor_type", 0);
    assert_int_equal(pb_int(tt, "elem_type", 0), GR_DTYPE_F32);
    pbm *shape = pb_msg(tt, "shape", 0);
    assert_int_equal(pb_n(shape, "dim"), 2);
    assert_string_equal(pb_str(pb_msg(shape, "dim", 0), "dim_param", 0), "N");
    assert_false(pb_has(pb_msg(shape, "dim", 0), "dim_value"));
    assert_int_equal(pb_int(pb_msg(shape, "dim", 1), "dim_value", 0), 4);

    /* Declared type of an unknown op's output: dtype, no shape. */
    pbm *out = pb_msg(graph, "output", 0);
    assert_string_equal(pb_str(out, "name", 0), "u");
    tt = pb_msg(pb_msg(out, "type", 0), "tensor_type", 0);
    assert_int_equal(pb_int(tt, "elem_type", 0), GR_DTYPE_F32);
    assert_false(pb_has(tt, "shape"));

    pbm *vi = pb_find(graph, "value_info", "y");
    assert_non_null(vi);
    tt = pb_msg(pb_msg(vi, "type", 0), "tensor_type", 0);
    assert_int_equal(pb_n(pb_msg(tt, "shape", 0), "dim"), 2);
    assert_null(pb_find(graph, "value_info", "r")); /* dtype unknown */
}

static void check_custom_node(pbm *n) {
    assert_string_equal(pb_str(n, "op_type", 0), "MyOp");
    assert_string_equal(pb_str(n, "domain", 0), "com.example");
    assert_int_equal(pb_n(n, "input"), 3);
    assert_string_equal(pb_str(n, "input", 1), "");
    assert_string_equal(pb_str(n, "input", 2), "k");
    assert_int_equal(pb_n(n, "output"), 2);
    assert_string_equal(pb_str(n, "output", 1), "");
    assert_int_equal(pb_n(n, "attribute"), 7);
    pbm *a = pb_find(n, "attribute", "i");
    assert_int_equal(pb_int(a, "type", 0), GR_ATTR_INT);
    assert_int_equal(pb_int(a, "i", 0), -7);
    a = pb_find(n, "attribute", "f");
    assert_true(pb_float(a, "f", 0) == 0.25f);
    a = pb_find(n, "attribute", "s");
    assert_int_equal(pb_bytes(a, "s", 0).len, 5);
    assert_memory_equal(pb_bytes(a, "s", 0).data, "hello", 5);
    a = pb_find(n, "attribute", "ints");
    assert_int_equal(pb_n(a, "ints"), 3);
    assert_int_equal(pb_int(a, "ints", 2), 1LL << 40);
    a = pb_find(n, "attribute", "floats");
    assert_true(pb_float(a, "floats", 1) == -2.0f);
    a = pb_find(n, "attribute", "strings");
    assert_int_equal(pb_int(a, "type", 0), GR_ATTR_STRINGS);
    assert_memory_equal(pb_bytes(a, "strings", 1).data, "bc", 2);
    a = pb_find(n, "attribute", "t");
    assert_int_equal(pb_int(pb_msg(a, "t", 0), "data_type", 0), GR_DTYPE_I32);
}

static void test_export_writes_hand_built_graph(void **state) {
    (void)state;
    gr_graph *g = build_sample();
    ProtobufCMessage *m = export_unpack(g);
    check_sample_model(m);
    pbm *graph = pb_msg(m, "graph", 0);
    assert_string_equal(pb_str(graph, "name", 0), "sample");
    check_sample_data(graph);
    check_sample_io(graph);
    assert_int_equal(pb_n(graph, "node"), 5);
    assert_string_equal(pb_str(pb_msg(graph, "node", 2), "name", 0), "mm");
    pbm *rs = pb_msg(graph, "node", 3);
    assert_string_equal(pb_str(rs, "name", 0), "shape");
    assert_false(pb_has(rs, "domain"));
    check_custom_node(pb_msg(graph, "node", 4));
    protobuf_c_message_free_unpacked(m, NULL);
    gr_graph_free(g);
}

/* ------------------------------------------------------ opset and IR version */

static gr_graph *unary_graph(gr_op op) {
    gr_graph *g = gr_graph_new("unary");
    gr_shape s = gr_shape_make(1, (int64_t[]){4});
    gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &s);
    gr_node *n = gr_node_add(g, op, "n", 1, &x, 1, NULL);
    assert_non_null(n);
    assert_int_equal(gr_graph_add_output(g, n->outputs[0]), GR_OK);
    return g;
}

static void expect_versions(const gr_graph *g, int64_t opset, int64_t ir) {
    ProtobufCMessage *m = export_unpack(g);
    assert_int_equal(opset_of(m, ""), opset);
    assert_int_equal(pb_int(m, "ir_version", 0), ir);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_export_opset_is_lowest_form_version(void **state) {
    (void)state;
    gr_graph *g = unary_graph(GR_OP_RELU);
    expect_versions(g, 18, 8);
    g->opset = 21; /* never below the imported opset */
    expect_versions(g, 21, 10);
    gr_graph_free(g);

    g = unary_graph(GR_OP_GELU);
    expect_versions(g, 20, 9);
    gr_graph_free(g);

    g = unary_graph(GR_OP_CAST);
    assert_int_equal(gr_node_set_int(g, g->nodes[0], "to", GR_DTYPE_F16), GR_OK);
    expect_versions(g, 18, 8);
    assert_int_equal(gr_node_set_int(g, g->nodes[0], "saturate", 0), GR_OK);
    expect_versions(g, 19, 9);
    gr_graph_free(g);
}

/* Model-level facts survive import -> export -> import; the default opset
 * becomes 18 (canonical forms) and the producer graft. */
static void test_export_keeps_model_metadata(void **state) {
    (void)state;
    gr_graph *a = NULL, *b = NULL;
    gr_status st = {0};
    void *buf;
    size_t len;
    if (gr_import_file(GRAFT_TEST_MODELS "/export_roundtrip.onnx", &a, &st) != GR_OK ||
        gr_export_buffer(a, &buf, &len, &st) != GR_OK ||
        gr_import_buffer(buf, len, NULL, "exported", &b, &st) != GR_OK)
        fail_msg("%s", st.msg);
    gr_free(buf);
    assert_int_equal(b->opset, 18);
    assert_int_equal(b->ir_version, 8);
    assert_string_equal(b->producer_name, "graft");
    assert_string_equal(b->doc, "export round trip");
    assert_string_equal(b->domain, "ai.graft.tests");
    assert_int_equal(b->model_version, 3);
    assert_int_equal(b->n_metadata, 1);
    assert_string_equal(b->metadata[0].key, "purpose");
    assert_string_equal(b->metadata[0].value, "round trip");
    int found = 0;
    for (int i = 0; i < b->n_opsets; i++)
        found |= !strcmp(b->opsets[i].domain, "com.example") && b->opsets[i].version == 2;
    assert_true(found);
    gr_graph_free(a);
    gr_graph_free(b);
}

/* Graph attributes have no IR form to write: UNSUPPORTED naming the node. */
static void test_export_rejects_graph_attribute(void **state) {
    (void)state;
    gr_graph *g = unary_graph(GR_OP_RELU);
    assert_int_equal(gr_node_set_int(g, g->nodes[0], "body", 0), GR_OK);
    g->nodes[0]->attrs[0].type = GR_ATTR_GRAPH;
    gr_status st = {0};
    void *buf = (void *)1;
    size_t len = 1;
    assert_int_equal(gr_export_buffer(g, &buf, &len, &st), GR_ERR_UNSUPPORTED);
    assert_null(buf);
    assert_non_null(strstr(st.msg, "'body'"));
    assert_non_null(strstr(st.msg, "node 'n'"));
    gr_graph_free(g);
}

/* ------------------------------------------------------------ file writing */

static int count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void test_export_file_is_atomic_and_reports_io_errors(void **state) {
    (void)state;
    char dir[] = "/tmp/graft_export_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], sub[256], missing[256];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(missing, sizeof missing, "%s/missing/m.onnx", dir);
    gr_graph *g = build_sample();
    gr_status st = {0};
    assert_int_equal(gr_export_file(g, path, &st), GR_OK);
    assert_int_equal(gr_export_file(g, path, &st), GR_OK); /* replaces */

    void *buf;
    size_t len;
    assert_int_equal(gr_export_buffer(g, &buf, &len, &st), GR_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *back = malloc(len + 1);
    assert_int_equal(fread(back, 1, len + 1, f), len);
    fclose(f);
    assert_memory_equal(back, buf, len);
    free(back);
    gr_free(buf);

    /* rename onto a directory fails after the temp file was written. */
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(gr_export_file(g, sub, &st), GR_ERR_IO);
    assert_non_null(strstr(st.msg, sub));
    assert_int_equal(gr_export_file(g, missing, &st), GR_ERR_IO);
    assert_non_null(strstr(st.msg, missing));
    assert_non_null(strstr(st.msg, strerror(ENOENT)));
    assert_int_equal(count_temp_files(dir), 0);

    gr_graph_free(g);
    rmdir(sub);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

/* ------------------------------------------------------- allocation failure */

static void test_export_alloc_failure_returns_nomem(void **state) {
    (void)state;
    gr_graph *g = build_sample();
    char dir[] = "/tmp/graft_export_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    int failures = 0;
    for (long n = 1; n < 10000; n++) {
        gr_status st = {0};
        void *buf = NULL;
        size_t len = 0;
        gr_debug_fail_alloc_after(n);
        gr_code c = gr_export_buffer(g, &buf, &len, &st);
        gr_code cf = gr_export_file(g, path, &st);
        gr_debug_fail_alloc_after(0);
        if (c == GR_OK && cf == GR_OK) {
            gr_free(buf);
            break;
        }
        assert_true(c == GR_OK || c == GR_ERR_NOMEM);
        assert_int_equal(cf, GR_ERR_NOMEM);
        assert_null(c == GR_OK ? NULL : buf);
        gr_free(buf);
        failures++;
    }
    assert_true(failures >= 2);
    assert_int_equal(count_temp_files(dir), 0);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
    gr_graph_free(g);
}

/* ------------------------------------------------------------- round trips */

typedef struct {
    int passed, skipped;
} rt_stats;

/* import -> export -> import of one file must give an equal graph. A model
 * the importer rejects is skipped (reported): that is the importer's test. */
static void round_trip_file(const char *path, rt_stats *rs) {
    gr_graph *a = NULL, *b = NULL;
    gr_status st = {0};
    if (getenv("GRAFT_TEST_VERBOSE")) {
        printf("  %s\n", path);
        fflush(stdout);
    }
    if (gr_import_file(path, &a, &st) != GR_OK) {
        if (getenv("GRAFT_TEST_VERBOSE")) printf("  skip: %s\n", st.msg);
        rs->skipped++;
        return;
    }
    void *buf = NULL;
    size_t len = 0;
    if (gr_export_buffer(a, &buf, &len, &st) != GR_OK)
        fail_msg("%s: export: %s", path, st.msg);
    if (gr_import_buffer(buf, len, NULL, "exported", &b, &st) != GR_OK)
        fail_msg("%s: re-import: %s", path, st.msg);
    char why[1024];
    if (!graph_equal(a, b, why, sizeof why))
        fail_msg("%s: round trip differs: %s", path, why);
    gr_free(buf);
    gr_graph_free(a);
    gr_graph_free(b);
    rs->passed++;
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Every *.onnx in dir, and dir/<test>/model.onnx (ONNX backend test
 * layout); a missing dir is skipped. */
static void round_trip_dir(const char *dir, rt_stats *rs) {
    DIR *d = opendir(dir);
    if (!d) {
        printf("  skip %s: %s\n", dir, strerror(errno));
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (has_suffix(e->d_name, ".onnx")) {
            round_trip_file(path, rs);
            continue;
        }
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
        if (access(path, R_OK) == 0) round_trip_file(path, rs);
    }
    closedir(d);
}

static void test_export_round_trip_test_models(void **state) {
    (void)state;
    rt_stats rs = {0, 0};
    round_trip_dir(GRAFT_TEST_MODELS, &rs);
    printf("  %d test models round-tripped, %d skipped\n", rs.passed, rs.skipped);
    assert_true(rs.passed >= 1);
}

static void test_export_round_trip_conformance_models(void **state) {
    (void)state;
    static const char *const dirs[] = {"light", "simple", "pytorch-converted",
                                       "pytorch-operator", "node"};
    rt_stats rs = {0, 0};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/../shared/onnx-tests/%s", GRAFT_SOURCE_DIR,
                 dirs[i]);
        round_trip_dir(dir, &rs);
    }
    const char *ocr = GRAFT_SOURCE_DIR "/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
    if (access(ocr, R_OK) == 0) round_trip_file(ocr, &rs);
    printf("  %d conformance models round-tripped, %d skipped\n", rs.passed, rs.skipped);
}

/* graph_equal must see a changed weight byte, attribute or dim symbol. */
static void test_graph_equal_detects_differences(void **state) {
    (void)state;
    const char *path = GRAFT_TEST_MODELS "/export_roundtrip.onnx";
    gr_graph *a = NULL, *b = NULL;
    gr_status st = {0};
    if (gr_import_file(path, &a, &st) != GR_OK ||
        gr_import_file(path, &b, &st) != GR_OK)
        fail_msg("%s", st.msg);
    char why[512];
    assert_true(graph_equal(a, b, why, sizeof why));
    gr_value *w = gr_graph_find(b, "W");
    assert_non_null(w);
    ((unsigned char *)w->data)[3] ^= 1;
    assert_false(graph_equal(a, b, why, sizeof why));
    assert_non_null(strstr(why, "'W'"));
    ((unsigned char *)w->data)[3] ^= 1;
    gr_node *custom = gr_graph_find_node(b, "custom");
    assert_non_null(custom);
    assert_int_equal(gr_node_set_int(b, custom, "i", 4), GR_OK);
    assert_false(graph_equal(a, b, why, sizeof why));
    assert_non_null(strstr(why, "'i'"));
    assert_int_equal(gr_node_set_int(b, custom, "i", -3), GR_OK);
    assert_true(graph_equal(a, b, why, sizeof why));
    b->inputs[0]->shape.syms[0] = "M";
    assert_false(graph_equal(a, b, why, sizeof why));
    gr_graph_free(a);
    gr_graph_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_writes_hand_built_graph),
        cmocka_unit_test(test_export_opset_is_lowest_form_version),
        cmocka_unit_test(test_export_rejects_graph_attribute),
        cmocka_unit_test(test_export_file_is_atomic_and_reports_io_errors),
        cmocka_unit_test(test_export_alloc_failure_returns_nomem),
        cmocka_unit_test(test_graph_equal_detects_differences),
        cmocka_unit_test(test_export_keeps_model_metadata),
        cmocka_unit_test(test_export_round_trip_test_models),
        cmocka_unit_test(test_export_round_trip_conformance_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
