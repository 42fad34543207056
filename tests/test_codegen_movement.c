/* test_codegen_movement.c: the movement family's kernels (Transpose, Slice,
 * Expand, Tile, Concat, Split, Gather, Pad, Resize, Shape, Size, Constant,
 * ConstantOfShape, Range) compiled with the JIT and run with 1 and 3 task
 * splits (which must agree bit for bit), against ONNX spec examples, ONNX
 * backend-test outputs and C references written here from the ops'
 * definitions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/cg_run.h"

/* ------------------------------------------------------------------ helpers */

#define MAX_IO 8

static gr_shape shp(int rank, const int64_t *dims) { return gr_shape_make(rank, dims); }

static gr_value *input(gr_graph *g, const char *name, gr_dtype dt, int rank, const int64_t *dims) {
    gr_shape s = shp(rank, dims);
    return gr_graph_add_input(g, name, dt, &s);
}

static gr_value *const_i64(gr_graph *g, int n, const int64_t *v) {
    gr_shape s = shp(1, (int64_t[]){n});
    return gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_I64, &s, v);
}

static gr_value *const_f32(gr_graph *g, int n, const float *v) {
    gr_shape s = shp(1, (int64_t[]){n});
    return gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_F32, &s, v);
}

static gr_node *node(gr_graph *g, gr_op op, int n_in, gr_value *const *in, int n_out) {
    gr_node *n = gr_node_add(g, op, NULL, n_in, in, n_out, NULL);
    assert_non_null(n);
    return n;
}

/* Infers shapes, marks n's outputs as graph outputs, runs with 1 and 3
 * splits, checks they agree and leaves the 1-split result in outputs[i]
 * (allocated, the caller frees). */
static void run(gr_graph *g, gr_node *n, void *const *inputs, void **outputs) {
    gr_status st = {0};
    for (int i = 0; i < n->n_outputs; i++) assert_int_equal(gr_graph_add_output(g, n->outputs[i]), GR_OK);
    if (gr_graph_infer_shapes(g, &st) != GR_OK) fail_msg("%s", st.msg);
    void *second[MAX_IO];
    size_t bytes[MAX_IO];
    for (int i = 0; i < g->n_outputs; i++) {
        bytes[i] = (size_t)gr_value_numel(g->outputs[i]) * gr_dtype_size(g->outputs[i]->dtype);
        outputs[i] = calloc(1, bytes[i] + 8);
        second[i] = calloc(1, bytes[i] + 8);
    }
    if (cg_run_graph(g, inputs, outputs, 1, &st) != GR_OK) fail_msg("%s", st.msg);
    if (cg_run_graph(g, inputs, second, 3, &st) != GR_OK) fail_msg("%s", st.msg);
    for (int i = 0; i < g->n_outputs; i++) {
        assert_memory_equal(outputs[i], second[i], bytes[i]);
        free(second[i]);
    }
}

static void expect_f32(const float *got, const float *want, int64_t n, double tol) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - (double)want[i]) <= tol * (1 + fabs((double)want[i]))))
            fail_msg("element %lld is %.9g, expected %.9g", (long long)i, got[i], want[i]);
}

static void iota_f32(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)i;
}

/* ---------------------------------------------------------------- transpose */

static void check_transpose(int rank, const int64_t *dims, const int64_t *perm) {
    gr_graph *g = gr_graph_new("t");
    gr_value *x = input(g, "x", GR_DTYPE_F32, rank, dims);
    gr_node *n = node(g, GR_OP_TRANSPOSE, 1, &x, 1);
    if (perm) gr_node_set_ints(g, n, "perm", rank, perm);
    int64_t numel = gr_value_numel(x), xs[GR_MAX_RANK], ydims[GR_MAX_RANK], p[GR_MAX_RANK];
    gr_shape xsh = shp(rank, dims);
    gr_shape_strides(&xsh, xs);
    for (int i = 0; i < rank; i++) {
        p[i] = perm ? perm[i] : rank - 1 - i;
        ydims[i] = dims[p[i]];
    }
    float *data = malloc(sizeof(float) * (size_t)numel), *want = malloc(sizeof(float) * (size_t)numel);
    iota_f32(data, numel);
    for (int64_t o = 0; o < numel; o++) { /* y[i0..] = x[i_p^-1..] */
        int64_t rem = o, src = 0;
        for (int i = rank - 1; i >= 0; i--) {
            src += (rem % ydims[i]) * xs[p[i]];
            rem /= ydims[i];
        }
        want[o] = data[src];
    }
    void *out[MAX_IO];
    run(g, n, (void *[]){data}, out);
    assert_memory_equal(out[0], want, sizeof(float) * (size_t)numel);
    free(out[0]);
    free(data);
    free(want);
    gr_graph_free(g);
}

static void test_transpose_matches_reference(void **state) {
    (void)state;
    int64_t d4[] = {2, 3, 4, 5};
    check_transpose(4, d4, (int64_t[]){0, 2, 3, 1}); /* NCHW -> NHWC */
    check_transpose(4, d4, (int64_t[]){0, 3, 1, 2}); /* NHWC -> NCHW */
    check_transpose(4, d4, (int64_t[]){3, 1, 0, 2});
    check_transpose(4, d4, (int64_t[]){1, 0, 2, 3}); /* rows move whole */
    check_transpose(4, d4, NULL);                    /* default: reversed */
    check_transpose(2, (int64_t[]){300, 257}, (int64_t[]){1, 0}); /* blocks, several tasks */
    check_transpose(4, (int64_t[]){2, 40, 9, 11}, (int64_t[]){0, 2, 3, 1}); /* blocks per image */
    check_transpose(4, (int64_t[]){3, 9, 70, 33}, (int64_t[]){0, 3, 1, 2});
}

/* Transposing bytes: an i8 and an f16 (as raw bits) tensor keep every bit. */
static void test_transpose_moves_bytes_of_any_dtype(void **state) {
    (void)state;
    gr_dtype types[] = {GR_DTYPE_I8, GR_DTYPE_F16, GR_DTYPE_I64, GR_DTYPE_BOOL};
    for (int t = 0; t < 4; t++) {
        gr_graph *g = gr_graph_new("t");
        gr_value *x = input(g, "x", types[t], 2, (int64_t[]){3, 5});
        gr_node *n = node(g, GR_OP_TRANSPOSE, 1, &x, 1);
        size_t es = gr_dtype_size(types[t]);
        unsigned char data[15 * 8], want[15 * 8];
        for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(types[t] == GR_DTYPE_BOOL ? i & 1 : i * 7 + 3);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++) memcpy(&want[(j * 3 + i) * es], &data[(i * 5 + j) * es], es);
        void *out[MAX_IO];
        run(g, n, (void *[]){data}, out);
        assert_memory_equal(out[0], want, 15 * es);
        free(out[0]);
        gr_graph_free(g);
    }
}

/* -------------------------------------------------------------------- slice */

/* Spec examples: slice [1,0]..[2,3] step [1,2] -> [[5,7]]; [0,1]..[-1,1000] -> [[2,3,4]]. */
static void test_slice_spec_examples(void **state) {
    (void)state;
    float data[] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct { int64_t starts[2], ends[2], steps[2]; float want[3]; int n; } cases[] = {
        {{1, 0}, {2, 3}, {1, 2}, {5, 7}, 2},
        {{0, 1}, {-1, 1000}, {1, 1}, {2, 3, 4}, 3},
    };
    for (int c = 0; c < 2; c++) {
        gr_graph *g = gr_graph_new("s");
        gr_value *in[5] = {input(g, "x", GR_DTYPE_F32, 2, (int64_t[]){2, 4}),
                           const_i64(g, 2, cases[c].starts), const_i64(g, 2, cases[c].ends),
                           const_i64(g, 2, (int64_t[]){0, 1}), const_i64(g, 2, cases[c].steps)};
        gr_node *n = node(g, GR_OP_SLICE, 5, in, 1);
        void *out[MAX_IO];
        run(g, n, (void *[]){data}, out);
        expect_f32(out[0], cases[c].want, cases[c].n, 0);
        free(out[0]);
        gr_graph_free(g);
    }
}

/* Negative steps and out-of-range bounds on [4,5,6], against an index walk
 * written from the definition (negative start/end + d, then clamped). */
static void test_slice_negative_steps_and_clamping(void **state) {
    (void)state;
    int64_t starts[] = {-1, 10, 1}, ends[] = {-100, -6, 6}, steps[] = {-2, -1, 3};
    int64_t dims[] = {4, 5, 6};
    gr_graph *g = gr_graph_new("s");
    gr_value *in[5] = {input(g, "x", GR_DTYPE_F32, 3, dims), const_i64(g, 3, starts),
                       const_i64(g, 3, ends), const_i64(g, 3, (int64_t[]){0, 1, 2}),
                       const_i64(g, 3, steps)};
    gr_node *n = node(g, GR_OP_SLICE, 5, in, 1);
    float data[120], want[120];
    iota_f32(data, 120);
    int64_t idx[3][8], cnt[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        int64_t d = dims[a], s = starts[a] < 0 ? starts[a] + d : starts[a];
        int64_t e = ends[a] < 0 ? ends[a] + d : ends[a];
        if (steps[a] > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            for (int64_t i = s; i < e; i += steps[a]) idx[a][cnt[a]++] = i;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            for (int64_t i = s; i > e; i += steps[a]) idx[a][cnt[a]++] = i;
        }
    }
    int64_t k = 0;
    for (int64_t i = 0; i < cnt[0]; i++)
        for (int64_t j = 0; j < cnt[1]; j++)
            for (int64_t l = 0; l < cnt[2]; l++) want[k++] = data[idx[0][i] * 30 + idx[1][j] * 6 + idx[2][l]];
    void *out[MAX_IO];
    run(g, n, (void *[]){data}, out);
    assert_int_equal(gr_value_numel(n->outputs[0]), k);
    expect_f32(out[0], want, k, 0);
    free(out[0]);
    gr_graph_free(g);
}

/* ------------------------------------------------------------ expand, tile */

static void test_expand_and_tile_match_reference(void **state) {
    (void)state;
    float data[] = {1, 2, 3};
    /* Expand [3,1] by shape [2,1,6] -> [2,3,6]: y[a][b][c] = x[b] */
    gr_graph *g = gr_graph_new("e");
    gr_value *in[2] = {input(g, "x", GR_DTYPE_F32, 2, (int64_t[]){3, 1}),
                       const_i64(g, 3, (int64_t[]){2, 1, 6})};
    gr_node *n = node(g, GR_OP_EXPAND, 2, in, 1);
    void *out[MAX_IO];
    run(g, n, (void *[]){data}, out);
    float want[36];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 6; c++) want[a * 18 + b * 6 + c] = data[b];
    expect_f32(out[0], want, 36, 0);
    free(out[0]);
    gr_graph_free(g);

    /* Tile [2,3] by [2,2] -> [4,6]: y[i][j] = x[i % 2][j % 3] */
    float x2[] = {1, 2, 3, 4, 5, 6}, want2[24];
    g = gr_graph_new("t");
    gr_value *tin[2] = {input(g, "x", GR_DTYPE_F32, 2, (int64_t[]){2, 3}),
                        const_i64(g, 2, (int64_t[]){2, 2})};
    n = node(g, GR_OP_TILE, 2, tin, 1);
    run(g, n, (void *[]){x2}, out);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++) want2[i * 6 + j] = x2[(i % 2) * 3 + j % 3];
    expect_f32(out[0], want2, 24, 0);
    free(out[0]);
    gr_graph_free(g);
}

/* ----------------------------------------------------------- concat, split */

static void test_concat_and_split_round_trip(void **state) {
    (void)state;
    int64_t a[2 * 2 * 3], b[2 * 1 * 3], c[2 * 4 * 3];
    for (int i = 0; i < 12; i++) a[i] = 100 + i;
    for (int i = 0; i < 6; i++) b[i] = 200 + i;
    for (int i = 0; i < 24; i++) c[i] = 300 + i;
    gr_graph *g = gr_graph_new("c");
    gr_value *in[3] = {input(g, "a", GR_DTYPE_I64, 3, (int64_t[]){2, 2, 3}),
                       input(g, "b", GR_DTYPE_I64, 3, (int64_t[]){2, 1, 3}),
                       input(g, "c", GR_DTYPE_I64, 3, (int64_t[]){2, 4, 3})};
    gr_node *n = node(g, GR_OP_CONCAT, 3, in, 1);
    gr_node_set_int(g, n, "axis", -2);
    void *out[MAX_IO];
    run(g, n, (void *[]){a, b, c}, out);
    const int64_t *y = out[0];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 7; j++)
            for (int k = 0; k < 3; k++) {
                int64_t want = j < 2 ? a[i * 6 + j * 3 + k]
                             : j < 3 ? b[i * 3 + k] : c[i * 12 + (j - 3) * 3 + k];
                assert_int_equal(y[i * 21 + j * 3 + k], want);
            }
    gr_graph_free(g);

    /* Split it back with sizes [2,1,4] on axis 1. */
    g = gr_graph_new("s");
    gr_value *sin[2] = {input(g, "y", GR_DTYPE_I64, 3, (int64_t[]){2, 7, 3}),
                        const_i64(g, 3, (int64_t[]){2, 1, 4})};
    n = node(g, GR_OP_SPLIT, 2, sin, 3);
    gr_node_set_int(g, n, "axis", 1);
    void *parts[MAX_IO];
    run(g, n, (void *[]){out[0]}, parts);
    assert_memory_equal(parts[0], a, sizeof a);
    assert_memory_equal(parts[1], b, sizeof b);
    assert_memory_equal(parts[2], c, sizeof c);
    for (int i = 0; i < 3; i++) free(parts[i]);
    free(out[0]);
    gr_graph_free(g);
}

/* num_outputs 3 over an extent of 7: chunks of ceil(7/3) = 3, 3, then 1. */
static void test_split_num_outputs_uneven(void **state) {
    (void)state;
    float x[7];
    iota_f32(x, 7);
    gr_graph *g = gr_graph_new("s");
    gr_value *in = input(g, "x", GR_DTYPE_F32, 1, (int64_t[]){7});
    gr_node *n = node(g, GR_OP_SPLIT, 1, &in, 3);
    gr_node_set_int(g, n, "num_outputs", 3);
    void *parts[MAX_IO];
    run(g, n, (void *[]){x}, parts);
    expect_f32(parts[0], (float[]){0, 1, 2}, 3, 0);
    expect_f32(parts[1], (float[]){3, 4, 5}, 3, 0);
    expect_f32(parts[2], (float[]){6}, 1, 0);
    for (int i = 0; i < 3; i++) free(parts[i]);
    gr_graph_free(g);
}


/* An omitted output still takes its part: outputs 0 and 2 of sizes [1,2,3]. */
static void test_split_with_omitted_output(void **state) {
    (void)state;
    float x[6];
    iota_f32(x, 6);
    gr_graph *g = gr_graph_new("s");
    gr_value *in[2] = {input(g, "x", GR_DTYPE_F32, 1, (int64_t[]){6}),
                       const_i64(g, 3, (int64_t[]){1, 2, 3})};
    gr_node *n = gr_node_add(g, GR_OP_SPLIT, NULL, 2, in, 3, (const char *[]){"a", "", "c"});
    assert_non_null(n);
    gr_status st = {0};
    assert_int_equal(gr_graph_add_output(g, n->outputs[0]), GR_OK);
    assert_int_equal(gr_graph_add_output(g, n->outputs[2]), GR_OK);
    if (gr_graph_infer_shapes(g, &st) != GR_OK) fail_msg("%s", st.msg);
    float a[1], c[3];
    if (cg_run_graph(g, (void *[]){x}, (void *[]){a, c}, 3, &st) != GR_OK) fail_msg("%s", st.msg);
    expect_f32(a, (float[]){0}, 1, 0);
    expect_f32(c, (float[]){3, 4, 5}, 3, 0);
    gr_graph_free(g);
}

/* ------------------------------------------------------------------- gather */

/* Spec examples for axis 0 and axis 1, with constant indices. */
static void test_gather_spec_examples(void **state) {
    (void)state;
    float d0[] = {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f};
    float w0[] = {1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f};
    gr_graph *g = gr_graph_new("g");
    gr_shape is = shp(2, (int64_t[]){2, 2});
    gr_value *in[2] = {input(g, "x", GR_DTYPE_F32, 2, (int64_t[]){3, 2}),
                       gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_I64, &is,
                                         (int64_t[]){0, 1, 1, 2})};
    gr_node *n = node(g, GR_OP_GATHER, 2, in, 1);
    void *out[MAX_IO];
    run(g, n, (void *[]){d0}, out);
    expect_f32(out[0], w0, 8, 0);
    free(out[0]);
    gr_graph_free(g);

    float d1[] = {1.0f, 1.2f, 1.9f, 2.3f, 3.4f, 3.9f, 4.5f, 5.7f, 5.9f};
    float w1[] = {1.0f, 1.9f, 2.3f, 3.9f, 4.5f, 5.9f};
    g = gr_graph_new("g");
    gr_shape is1 = shp(2, (int64_t[]){1, 2});
    gr_value *in1[2] = {input(g, "x", GR_DTYPE_F32, 2, (int64_t[]){3, 3}),
                        gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_I32, &is1,
                                          (int32_t[]){0, 2})};
    n = node(g, GR_OP_GATHER, 2, in1, 1);
    gr_node_set_int(g, n, "axis", 1);
    run(g, n, (void *[]){d1}, out);
    expect_f32(out[0], w1, 6, 0);
    free(out[0]);
    gr_graph_free(g);
}

/* Runtime i32 and i64 indices along the middle axis, negative ones wrapped;
 * indices outside [-D, D) are clamped into range (graft's documented
 * behaviour for bad runtime indices: never read out of bounds). */
static void test_gather_runtime_indices_wrap_and_clamp(void **state) {
    (void)state;
    float x[2 * 4 * 3];
    iota_f32(x, 24);
    int64_t idx64[] = {3, -1, 0, -4, 9, -9};
    int32_t idx32[] = {3, -1, 0, -4, 9, -9};
    int64_t eff[] = {3, 3, 0, 0, 3, 0};
    for (int t = 0; t < 2; t++) {
        gr_graph *g = gr_graph_new("g");
        gr_value *in[2] = {input(g, "x", GR_DTYPE_F32, 3, (int64_t[]){2, 4, 3}),
                           input(g, "i", t ? GR_DTYPE_I32 : GR_DTYPE_I64, 1, (int64_t[]){6})};
        gr_node *n = node(g, GR_OP_GATHER, 2, in, 1);
        gr_node_set_int(g, n, "axis", 1);
        void *out[MAX_IO];
        run(g, n, (void *[]){x, t ? (void *)idx32 : (void *)idx64}, out);
        float want[2 * 6 * 3];
        for (int a = 0; a < 2; a++)
            for (int q = 0; q < 6; q++)
                for (int c = 0; c < 3; c++) want[a * 18 + q * 3 + c] = x[a * 12 + eff[q] * 3 + c];
        expect_f32(out[0], want, 36, 0);
        free(out[0]);
        gr_graph_free(g);
    }
}

/* ---------------------------------------------------------------------- pad */

static void run_pad(const char *mode, const int64_t *pads, int n_pads, gr_value *(*extra)(gr_graph *),
                    const float *x, int64_t rows, int64_t cols, const float *want, int64_t n_want) {
    gr_graph *g = gr_graph_new("p");
    gr_value *in[4] = {input(g, "x", GR_DTYPE_F32, 2, (int64_t[]){rows, cols}),
                       const_i64(g, n_pads, pads), NULL, NULL};
    int n_in = 2;
    if (extra) in[n_in++] = extra(g);
    gr_node *n = node(g, GR_OP_PAD, n_in, in, 1);
    gr_node_set_string(g, n, "mode", mode);
    void *out[MAX_IO];
    run(g, n, (void *[]){(void *)x}, out);
    assert_int_equal(gr_value_numel(n->outputs[0]), n_want);
    expect_f32(out[0], want, n_want, 0);
    free(out[0]);
    gr_graph_free(g);
}

/* The spec's examples: pads [0,2,0,0] on [[1,1.2],[2.3,3.4],[4.5,5.7]] in
 * each mode, and wrap with pads [2,1,1,1]. */
static void test_pad_spec_examples(void **state) {
    (void)state;
    const float x[] = {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f};
    const int64_t pads[] = {0, 2, 0, 0};
    const float constant[] = {0, 0, 1.0f, 1.2f, 0, 0, 2.3f, 3.4f, 0, 0, 4.5f, 5.7f};
    const float reflect[] = {1.0f, 1.2f, 1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f, 4.5f, 5.7f};
    const float edge[] = {1.0f, 1.0f, 1.0f, 1.2f, 2.3f, 2.3f, 2.3f, 3.4f, 4.5f, 4.5f, 4.5f, 5.7f};
    run_pad("constant", pads, 4, NULL, x, 3, 2, constant, 12);
    run_pad("reflect", pads, 4, NULL, x, 3, 2, reflect, 12);
    run_pad("edge", pads, 4, NULL, x, 3, 2, edge, 12);
    const float wrap[] = {3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f,
                          3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f};
    run_pad("wrap", (int64_t[]){2, 1, 1, 1}, 4, NULL, x, 3, 2, wrap, 24);
}

static gr_value *runtime_value(gr_graph *g) {
    gr_shape s = gr_shape_scalar();
    return gr_graph_add_input(g, "cv", GR_DTYPE_F32, &s);
}

/* Negative pads crop; a runtime constant_value fills. */
static void test_pad_negative_pads_and_runtime_value(void **state) {
    (void)state;
    const float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; /* [3,4] */
    /* begin (-1, 1), end (0, -2): rows 1..2, cols: one fill then 0..1 */
    const float want[] = {0, 5, 6, 0, 9, 10};
    run_pad("constant", (int64_t[]){-1, 1, 0, -2}, 4, NULL, x, 3, 4, want, 6);
    float cv = 7.5f;
    gr_graph *g = gr_graph_new("p");
    gr_value *in[3] = {input(g, "x", GR_DTYPE_F32, 2, (int64_t[]){3, 4}),
                       const_i64(g, 4, (int64_t[]){0, 1, 0, 0}), runtime_value(g)};
    gr_node *n = node(g, GR_OP_PAD, 3, in, 1);
    void *out[MAX_IO];
    run(g, n, (void *[]){(void *)x, &cv}, out);
    const float want2[] = {7.5f, 1, 2, 3, 4, 7.5f, 5, 6, 7, 8, 7.5f, 9, 10, 11, 12};
    expect_f32(out[0], want2, 15, 0);
    free(out[0]);
    gr_graph_free(g);
}

/* The axes input names the padded axes (negative allowed). */
static void test_pad_axes_input(void **state) {
    (void)state;
    const float x[] = {1, 2, 3, 4, 5, 6};
    gr_graph *g = gr_graph_new("p");
    gr_value *in[4] = {input(g, "x", GR_DTYPE_F32, 2, (int64_t[]){2, 3}),
                       const_i64(g, 2, (int64_t[]){1, 2}), NULL, const_i64(g, 1, (int64_t[]){-1})};
    gr_node *n = node(g, GR_OP_PAD, 4, in, 1);
    gr_node_set_string(g, n, "mode", "reflect");
    void *out[MAX_IO];
    run(g, n, (void *[]){(void *)x}, out);
    const float want[] = {2, 1, 2, 3, 2, 1, 5, 4, 5, 6, 5, 4};
    expect_f32(out[0], want, 12, 0);
    free(out[0]);
    gr_graph_free(g);
}

/* ------------------------------------------------------------------- resize */

typedef struct {
    const char *mode, *ctm, *nearest;
    int antialias;
    float scales[4];
    int64_t sizes[4];
    float roi[8];
    double extrapolation;
} resize_case;

static void run_resize(const resize_case *c, const float *x, int64_t h, int64_t w,
                       const float *want, int64_t n_want) {
    gr_graph *g = gr_graph_new("r");
    gr_value *in[4] = {input(g, "x", GR_DTYPE_F32, 4, (int64_t[]){1, 1, h, w}), NULL, NULL, NULL};
    if (c->roi[4] != 0) in[1] = const_f32(g, 8, c->roi);
    if (c->scales[0] != 0) in[2] = const_f32(g, 4, c->scales);
    else in[3] = const_i64(g, 4, c->sizes);
    gr_node *n = node(g, GR_OP_RESIZE, 4, in, 1);
    gr_node_set_string(g, n, "mode", c->mode);
    if (c->ctm) gr_node_set_string(g, n, "coordinate_transformation_mode", c->ctm);
    if (c->nearest) gr_node_set_string(g, n, "nearest_mode", c->nearest);
    if (c->antialias) gr_node_set_int(g, n, "antialias", 1);
    if (c->extrapolation != 0) gr_node_set_float(g, n, "extrapolation_value", c->extrapolation);
    void *out[MAX_IO];
    run(g, n, (void *[]){(void *)x}, out);
    assert_int_equal(gr_value_numel(n->outputs[0]), n_want);
    expect_f32(out[0], want, n_want, 1e-5);
    free(out[0]);
    gr_graph_free(g);
}

/* Expected outputs of ONNX's backend tests (onnx/backend/test/data/node). */
static void test_resize_matches_onnx_backend_outputs(void **state) {
    (void)state;
    float x2[] = {1, 2, 3, 4}, x4[16];
    for (int i = 0; i < 16; i++) x4[i] = (float)(i + 1);
    resize_case up_linear = {"linear", NULL, NULL, 0, {1, 1, 2, 2}, {0}, {0}, 0};
    const float w_up_linear[] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                                 2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
    run_resize(&up_linear, x2, 2, 2, w_up_linear, 16);
    resize_case down_cubic = {"cubic", NULL, NULL, 0, {1, 1, 0.8f, 0.8f}, {0}, {0}, 0};
    const float w_down_cubic[] = {1.471191f, 2.78125f, 4.08252f, 6.711426f, 8.021484f,
                                  9.322754f, 11.9165f, 13.22656f, 14.52783f};
    run_resize(&down_cubic, x4, 4, 4, w_down_cubic, 9);
    resize_case crop = {"linear", "tf_crop_and_resize", NULL, 0, {0}, {1, 1, 3, 3},
                        {0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f}, 10.0};
    const float w_crop[] = {7.6f, 10, 10, 12.4f, 10, 10, 10, 10, 10};
    run_resize(&crop, x4, 4, 4, w_crop, 9);
    resize_case aa = {"linear", NULL, NULL, 1, {1, 1, 0.6f, 0.6f}, {0}, {0}, 0};
    const float w_aa[] = {2.875f, 4.5f, 9.375f, 11.0f};
    run_resize(&aa, x4, 4, 4, w_aa, 4);
    resize_case nearest = {"nearest", "align_corners", "floor", 0, {0}, {1, 1, 8, 8}, {0}, 0};
    const float rows[] = {1, 1, 1, 2, 2, 3, 3, 4}, row_of[] = {0, 0, 0, 1, 1, 2, 2, 3};
    float w_nearest[64];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) w_nearest[i * 8 + j] = row_of[i] * 4 + rows[j];
    run_resize(&nearest, x4, 4, 4, w_nearest, 64);
}

/* Spec example: nearest upsampling by [1,1,2,3] repeats each pixel. */
static void test_resize_nearest_upsample_spec_example(void **state) {
    (void)state;
    float x[] = {1, 2, 3, 4};
    resize_case c = {"nearest", NULL, NULL, 0, {1, 1, 2, 3}, {0}, {0}, 0};
    const float want[] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
    run_resize(&c, x, 2, 2, want, 24);
}


/* Linear weights of output index o along an axis (half_pixel): the two
 * neighbours of x = (o + 0.5) / scale - 0.5, clamped into [0, in). */
static void linear_taps(int64_t o, int64_t in, double scale, int64_t *i0, int64_t *i1, double *w1) {
    double x = ((double)o + 0.5) / scale - 0.5, f = floor(x);
    *w1 = x - f;
    *i0 = (int64_t)f < 0 ? 0 : (int64_t)f >= in ? in - 1 : (int64_t)f;
    *i1 = (int64_t)f + 1 < 0 ? 0 : (int64_t)f + 1 >= in ? in - 1 : (int64_t)f + 1;
}

/* Trilinear resize of [1,2,3,4,5] to sizes [1,2,5,7,4] on axes 2..4, and a
 * u8 bilinear one (rounded half to even), against the definition. */
static void test_resize_trilinear_and_u8_match_reference(void **state) {
    (void)state;
    int64_t in[3] = {3, 4, 5}, out[3] = {5, 7, 4};
    float x[2 * 60], want[2 * 140];
    for (int i = 0; i < 120; i++) x[i] = (float)((i * 37) % 101) / 7.0f;
    for (int c = 0; c < 2; c++)
        for (int64_t a = 0; a < 5; a++)
            for (int64_t b = 0; b < 7; b++)
                for (int64_t d = 0; d < 4; d++) {
                    int64_t o[3] = {a, b, d}, i0[3], i1[3];
                    double w[3], acc = 0;
                    for (int k = 0; k < 3; k++)
                        linear_taps(o[k], in[k], (double)out[k] / (double)in[k], &i0[k], &i1[k], &w[k]);
                    for (int m = 0; m < 8; m++) {
                        int64_t ia = m & 4 ? i1[0] : i0[0], ib = m & 2 ? i1[1] : i0[1];
                        int64_t id = m & 1 ? i1[2] : i0[2];
                        double wt = (m & 4 ? w[0] : 1 - w[0]) * (m & 2 ? w[1] : 1 - w[1]) *
                                    (m & 1 ? w[2] : 1 - w[2]);
                        acc += wt * x[c * 60 + ia * 20 + ib * 5 + id];
                    }
                    want[c * 140 + a * 28 + b * 4 + d] = (float)acc;
                }
    gr_graph *g = gr_graph_new("r");
    gr_value *rin[4] = {input(g, "x", GR_DTYPE_F32, 5, (int64_t[]){1, 2, 3, 4, 5}), NULL, NULL,
                        const_i64(g, 3, out)};
    gr_node *n = node(g, GR_OP_RESIZE, 4, rin, 1);
    gr_node_set_string(g, n, "mode", "linear");
    gr_node_set_ints(g, n, "axes", 3, (int64_t[]){2, 3, 4});
    void *res[MAX_IO];
    run(g, n, (void *[]){x}, res);
    expect_f32(res[0], want, 280, 1e-5);
    free(res[0]);
    gr_graph_free(g);

    uint8_t u[] = {0, 255, 10, 101}, uwant[16];
    for (int64_t i = 0; i < 4; i++)
        for (int64_t j = 0; j < 4; j++) {
            int64_t a0, a1, b0, b1;
            double wa, wb;
            linear_taps(i, 2, 2.0, &a0, &a1, &wa);
            linear_taps(j, 2, 2.0, &b0, &b1, &wb);
            double v = (1 - wa) * ((1 - wb) * u[a0 * 2 + b0] + wb * u[a0 * 2 + b1]) +
                       wa * ((1 - wb) * u[a1 * 2 + b0] + wb * u[a1 * 2 + b1]);
            uwant[i * 4 + j] = (uint8_t)nearbyint(v);
        }
    g = gr_graph_new("r");
    gr_value *uin[3] = {input(g, "x", GR_DTYPE_U8, 2, (int64_t[]){2, 2}), NULL,
                        const_f32(g, 2, (float[]){2, 2})};
    n = node(g, GR_OP_RESIZE, 3, uin, 1);
    gr_node_set_string(g, n, "mode", "linear");
    run(g, n, (void *[]){u}, res);
    assert_memory_equal(res[0], uwant, 16);
    free(res[0]);
    gr_graph_free(g);
}

/* --------------------------------------------------------- shapes, constants */

static void test_shape_size_constant_of_shape_range(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("s");
    gr_value *x = input(g, "x", GR_DTYPE_F32, 3, (int64_t[]){2, 3, 5});
    gr_node *shape = node(g, GR_OP_SHAPE, 1, &x, 1);
    gr_node_set_int(g, shape, "start", -2);
    float xd[30] = {0};
    void *out[MAX_IO];
    run(g, shape, (void *[]){xd}, out);
    assert_int_equal(((int64_t *)out[0])[0], 3);
    assert_int_equal(((int64_t *)out[0])[1], 5);
    free(out[0]);
    gr_graph_free(g);

    g = gr_graph_new("s");
    x = input(g, "x", GR_DTYPE_F32, 3, (int64_t[]){2, 3, 5});
    gr_node *size = node(g, GR_OP_SIZE, 1, &x, 1);
    run(g, size, (void *[]){xd}, out);
    assert_int_equal(((int64_t *)out[0])[0], 30);
    free(out[0]);
    gr_graph_free(g);

    g = gr_graph_new("c");
    gr_value *dims = const_i64(g, 2, (int64_t[]){3, 70000});
    gr_node *cos = node(g, GR_OP_CONSTANT_OF_SHAPE, 1, &dims, 1);
    int32_t seven = 7;
    gr_tensor t = {GR_DTYPE_I32, shp(1, (int64_t[]){1}), &seven, 4};
    gr_node_set_tensor(g, cos, "value", &t);
    run(g, cos, NULL, out);
    for (int i = 0; i < 3 * 70000; i++)
        if (((int32_t *)out[0])[i] != 7) fail_msg("element %d", i);
    free(out[0]);
    gr_graph_free(g);

    /* Range(10, -7, -3) in i32: 10, 7, ..., -5 (spec: ceil(17/3) = 6 elements). The
     * kernel reads start from its buffer either way; binding it lets the
     * shape rule count the elements. */
    g = gr_graph_new("r");
    gr_shape sc = gr_shape_scalar();
    gr_value *rin[3] = {gr_graph_add_input(g, "start", GR_DTYPE_I32, &sc),
                        gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_I32, &sc, (int32_t[]){-7}),
                        gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_I32, &sc, (int32_t[]){-3})};
    int32_t start = 10;
    gr_node *range = node(g, GR_OP_RANGE, 3, rin, 1);
    gr_tensor st10 = {GR_DTYPE_I32, sc, &start, 4};
    gr_status st = {0};
    assert_int_equal(gr_graph_bind_input(g, rin[0], &st10, &st), GR_OK);
    run(g, range, NULL, out);
    const int32_t want[] = {10, 7, 4, 1, -2, -5};
    assert_memory_equal(out[0], want, sizeof want);
    free(out[0]);
    gr_graph_free(g);
}

/* Float Range: start + i * delta. */
static void test_range_float(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("r");
    gr_shape sc = gr_shape_scalar();
    gr_value *rin[3] = {gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_F32, &sc, (float[]){1.0f}),
                        gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_F32, &sc, (float[]){5.0f}),
                        gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_F32, &sc, (float[]){1.5f})};
    gr_node *range = node(g, GR_OP_RANGE, 3, rin, 1);
    void *out[MAX_IO];
    run(g, range, NULL, out);
    expect_f32(out[0], (float[]){1.0f, 2.5f, 4.0f}, 3, 0);
    free(out[0]);
    gr_graph_free(g);
}


/* Constant: the value tensor's bytes, or value_floats as f32. */
static void test_constant_values(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("c");
    gr_node *n = node(g, GR_OP_CONSTANT, 0, NULL, 1);
    int16_t v[] = {-3, 7, 1000};
    gr_tensor t = {GR_DTYPE_I16, shp(2, (int64_t[]){1, 3}), v, sizeof v};
    gr_node_set_tensor(g, n, "value", &t);
    void *out[MAX_IO];
    run(g, n, NULL, out);
    assert_memory_equal(out[0], v, sizeof v);
    free(out[0]);
    gr_graph_free(g);

    g = gr_graph_new("c");
    n = node(g, GR_OP_CONSTANT, 0, NULL, 1);
    gr_node_set_floats(g, n, "value_floats", 2, (double[]){1.5, -2.25});
    run(g, n, NULL, out);
    expect_f32(out[0], (float[]){1.5f, -2.25f}, 2, 0);
    free(out[0]);
    gr_graph_free(g);
}

/* Antialiasing is defined for linear and cubic only. */
static void test_resize_nearest_antialias_is_unsupported(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("r");
    gr_value *in[3] = {input(g, "x", GR_DTYPE_F32, 2, (int64_t[]){4, 4}), NULL,
                       const_f32(g, 2, (float[]){0.5f, 0.5f})};
    gr_node *n = node(g, GR_OP_RESIZE, 3, in, 1);
    gr_node_set_int(g, n, "antialias", 1);
    gr_graph_add_output(g, n->outputs[0]);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    float x[16] = {0}, y[4];
    assert_int_equal(cg_run_graph(g, (void *[]){x}, (void *[]){y}, 1, &st), GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "antialias"));
    gr_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transpose_matches_reference),
        cmocka_unit_test(test_transpose_moves_bytes_of_any_dtype),
        cmocka_unit_test(test_slice_spec_examples),
        cmocka_unit_test(test_slice_negative_steps_and_clamping),
        cmocka_unit_test(test_expand_and_tile_match_reference),
        cmocka_unit_test(test_concat_and_split_round_trip),
        cmocka_unit_test(test_split_num_outputs_uneven),
        cmocka_unit_test(test_split_with_omitted_output),
        cmocka_unit_test(test_gather_spec_examples),
        cmocka_unit_test(test_gather_runtime_indices_wrap_and_clamp),
        cmocka_unit_test(test_pad_spec_examples),
        cmocka_unit_test(test_pad_negative_pads_and_runtime_value),
        cmocka_unit_test(test_pad_axes_input),
        cmocka_unit_test(test_resize_matches_onnx_backend_outputs),
        cmocka_unit_test(test_resize_nearest_upsample_spec_example),
        cmocka_unit_test(test_resize_trilinear_and_u8_match_reference),
        cmocka_unit_test(test_shape_size_constant_of_shape_range),
        cmocka_unit_test(test_range_float),
        cmocka_unit_test(test_constant_values),
        cmocka_unit_test(test_resize_nearest_antialias_is_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL) != 0;
}
