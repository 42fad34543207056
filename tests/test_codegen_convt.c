/* test_codegen_convt.c: the ConvTranspose kernel's three forms (pointwise
 * GEMM, GEMM + col2im, direct) against a double-precision scatter loop
 * written here from the ONNX definition, over 1-D/2-D/3-D, strides 1-3,
 * asymmetric pads, dilations, output_padding, groups, depthwise, bias and
 * batches. Every graph runs with 1, 2 and 5 task splits, which must agree
 * bit for bit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ir/gr_ir.h"
#include "cg_run.h"

static uint32_t rng_state = 4242;
static double rnd(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (double)(rng_state >> 8) / (double)(1u << 23) - 1.0;
}

static int64_t numel(int rank, const int64_t *d) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    return n;
}

/* A ConvTranspose; unset fields: f32, N 1, group 1, stride 1, dilation 1. */
typedef struct {
    gr_dtype dt;
    int ns; /* spatial dims */
    int64_t N, C, M, G;
    int64_t in[3], ker[3], str[3], dil[3], pads[6], out_pad[3];
    int bias;
} convt_case;

/* out = s*(in-1) + out_pad + (k-1)*dil + 1 - pad_begin - pad_end */
static void convt_out(const convt_case *c, int64_t *out) {
    for (int i = 0; i < c->ns; i++)
        out[i] = c->str[i] * (c->in[i] - 1) + c->out_pad[i] + (c->ker[i] - 1) * c->dil[i] + 1 -
                 c->pads[i] - c->pads[i + c->ns];
}

static int64_t idx(int ns, const int64_t *ext, const int64_t *i) {
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

/* y[n, m, i*s - p + t*dil] += x[n, c, i] * w[c, m % Mg, t] for c in m's group. */
static void convt_ref(const convt_case *c, const int64_t *out, const double *x, const double *w,
                      const double *b, double *y) {
    int64_t Cg = c->C / c->G, Mg = c->M / c->G, ip = numel(c->ns, c->in),
            op = numel(c->ns, out), kp = numel(c->ns, c->ker);
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t m = 0; m < c->M; m++) {
            double *yp = y + (n * c->M + m) * op;
            for (int64_t i = 0; i < op; i++) yp[i] = c->bias ? b[m] : 0;
            for (int64_t ci = 0; ci < Cg; ci++) {
                int64_t cin = (m / Mg) * Cg + ci, i[3] = {0, 0, 0};
                do {
                    int64_t t[3] = {0, 0, 0};
                    do {
                        int64_t o[3], ok = 1;
                        for (int d = 0; d < c->ns; d++) {
                            o[d] = i[d] * c->str[d] - c->pads[d] + t[d] * c->dil[d];
                            ok &= o[d] >= 0 && o[d] < out[d];
                        }
                        if (!ok) continue;
                        double xv = x[(n * c->C + cin) * ip + idx(c->ns, c->in, i)];
                        double wv = w[(cin * Mg + m % Mg) * kp + idx(c->ns, c->ker, t)];
                        yp[idx(c->ns, out, o)] += xv * wv;
                    } while (next_index(c->ns, c->ker, t));
                } while (next_index(c->ns, c->in, i));
            }
        }
}

/* Values in [-1, 1) as dt (rounded in v too); a graph input. */
static void *operand(gr_graph *g, const char *name, gr_dtype dt, int rank, const int64_t *dims,
                     double *v, gr_value **value) {
    int64_t n = numel(rank, dims);
    size_t es = gr_dtype_size(dt);
    char *buf = malloc((size_t)(n > 0 ? n : 1) * es);
    for (int64_t i = 0; i < n; i++) {
        v[i] = rnd();
        if (dt == GR_DTYPE_F32) ((float *)buf)[i] = (float)v[i];
        else ((double *)buf)[i] = v[i];
        v[i] = gr_dtype_load_f64(dt, buf, i);
    }
    gr_shape s = gr_shape_make(rank, dims);
    *value = gr_graph_add_input(g, name, dt, &s);
    assert_non_null(*value);
    return buf;
}

static void check_convt(const convt_case *cc) {
    convt_case cd = *cc, *c = &cd;
    if (c->dt == GR_DTYPE_UNDEFINED) c->dt = GR_DTYPE_F32;
    if (!c->N) c->N = 1;
    if (!c->G) c->G = 1;
    for (int i = 0; i < 3; i++) {
        if (!c->str[i]) c->str[i] = 1;
        if (!c->dil[i]) c->dil[i] = 1;
    }
    gr_graph *g = gr_graph_new("t");
    int64_t out[3], xd[5] = {c->N, c->C}, wd[5] = {c->C, c->M / c->G}, yd[5] = {c->N, c->M};
    convt_out(c, out);
    for (int i = 0; i < c->ns; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->ker[i];
        yd[2 + i] = out[i];
    }
    int rank = 2 + c->ns;
    double *x = malloc((size_t)numel(rank, xd) * sizeof *x);
    double *w = malloc((size_t)numel(rank, wd) * sizeof *w), *b = malloc((size_t)c->M * sizeof *b);
    gr_value *in[3] = {NULL, NULL, NULL};
    void *inputs[3];
    inputs[0] = operand(g, "x", c->dt, rank, xd, x, &in[0]);
    inputs[1] = operand(g, "w", c->dt, rank, wd, w, &in[1]);
    inputs[2] = operand(g, "b", c->dt, 1, &c->M, b, &in[2]);
    gr_node *nd = gr_node_add(g, GR_OP_CONV_TRANSPOSE, "ct", c->bias ? 3 : 2, in, 1, NULL);
    gr_node_set_ints(g, nd, "strides", c->ns, c->str);
    gr_node_set_ints(g, nd, "dilations", c->ns, c->dil);
    gr_node_set_ints(g, nd, "pads", 2 * c->ns, c->pads);
    gr_node_set_ints(g, nd, "output_padding", c->ns, c->out_pad);
    gr_node_set_int(g, nd, "group", c->G);
    gr_graph_add_output(g, nd->outputs[0]);
    gr_status st = {0};
    if (gr_graph_infer_shapes(g, &st) != GR_OK) fail_msg("%s", st.msg);
    for (int i = 0; i < rank; i++) assert_int_equal(nd->outputs[0]->shape.dims[i], yd[i]);
    int64_t ny = numel(rank, yd);
    double *y = malloc((size_t)(ny > 0 ? ny : 1) * sizeof *y);
    convt_ref(c, out, x, w, b, y);
    size_t bytes = (size_t)(ny > 0 ? ny : 1) * gr_dtype_size(c->dt);
    void *got[3];
    static const int splits[3] = {1, 2, 5};
    unsigned char guard[64];
    memset(guard, 0xc3, sizeof guard);
    for (int s = 0; s < 3; s++) { /* a guard past the output catches stray writes */
        got[s] = malloc(bytes + sizeof guard);
        memset(got[s], 0x5a + s, bytes);
        memcpy((char *)got[s] + bytes, guard, sizeof guard);
        void *o[1] = {got[s]};
        if (cg_run_graph(g, inputs, o, splits[s], &st) != GR_OK) fail_msg("%s", st.msg);
        assert_memory_equal((char *)got[s] + bytes, guard, sizeof guard);
        if (s) assert_memory_equal(got[0], got[s], bytes);
    }
    int64_t k = c->C / c->G * numel(c->ns, c->ker);
    double rtol = c->dt == GR_DTYPE_F64 ? 1e-12 : 2e-6 * (1 + sqrt((double)k));
    double atol = c->dt == GR_DTYPE_F64 ? 1e-13 * (double)k : 1e-7 * (double)(k + 10);
    for (int64_t i = 0; i < ny; i++) {
        double v = gr_dtype_load_f64(c->dt, got[0], i);
        if (fabs(v - y[i]) > atol + rtol * fabs(y[i]))
            fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, v, y[i]);
    }
    for (int s = 0; s < 3; s++) free(got[s]);
    for (int i = 0; i < 3; i++) free(inputs[i]);
    free(x), free(w), free(b), free(y);
    gr_graph_free(g);
}

#define RUN(cases) \
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_convt(&cases[i])
#define C2D(...) ((convt_case){.ns = 2, __VA_ARGS__})

/* Cg >= 8, 2-D: strides 1-3, asymmetric pads, dilation 2, output_padding. */
static void test_convt_gemm_2d(void **state) {
    (void)state;
    convt_case cases[] = {
        /* the input gradient of a 3x3 stride-1 pad-1 conv */
        C2D(.N = 2, .C = 16, .M = 24, .in = {9, 10}, .ker = {3, 3}, .pads = {1, 1, 1, 1},
            .bias = 1),
        /* of a 3x3 stride-2 pad-1 conv (output_padding recovers even sizes) */
        C2D(.N = 3, .C = 12, .M = 8, .in = {5, 6}, .ker = {3, 3}, .str = {2, 2},
            .pads = {1, 1, 1, 1}, .out_pad = {1, 1}),
        C2D(.C = 9, .M = 10, .in = {4, 7}, .ker = {2, 3}, .str = {3, 2},
            .pads = {0, 2, 1, 0}, .out_pad = {2, 1}, .bias = 1),
        C2D(.C = 8, .M = 5, .in = {6, 5}, .ker = {3, 2}, .dil = {2, 2},
            .pads = {2, 0, 0, 1}, .bias = 1),
        C2D(.C = 10, .M = 6, .in = {5, 5}, .ker = {4, 4}, .str = {2, 3}, .dil = {2, 1},
            .pads = {1, 3, 2, 0}, .out_pad = {1, 2}),
        /* pads larger than the kernel reach: rows with no contribution */
        C2D(.C = 8, .M = 4, .in = {7, 8}, .ker = {2, 2}, .str = {1, 1},
            .pads = {2, 3, 3, 2}),
        /* many output channels per group: several channel blocks */
        C2D(.N = 1, .C = 16, .M = 96, .in = {6, 6}, .ker = {3, 3}, .pads = {1, 1, 1, 1},
            .bias = 1),
        C2D(.dt = GR_DTYPE_F64, .N = 2, .C = 8, .M = 12, .in = {5, 4}, .ker = {3, 3},
            .str = {2, 1}, .pads = {0, 1, 1, 1}, .out_pad = {1, 0}, .bias = 1),
    };
    RUN(cases);
}

/* Cg >= 8 in groups; Cg < 8 (the direct form) incl. depthwise. */
static void test_convt_groups_and_depthwise(void **state) {
    (void)state;
    convt_case cases[] = {
        C2D(.N = 2, .C = 16, .M = 10, .G = 2, .in = {6, 5}, .ker = {3, 3}, .str = {2, 2},
            .pads = {1, 0, 1, 1}, .out_pad = {1, 0}, .bias = 1),
        C2D(.C = 24, .M = 6, .G = 3, .in = {4, 4}, .ker = {3, 3}, .dil = {2, 1},
            .pads = {1, 1, 1, 1}),
        C2D(.C = 4, .M = 6, .G = 2, .in = {5, 4}, .ker = {3, 2}, .str = {2, 3},
            .pads = {1, 0, 1, 1}, .out_pad = {1, 0}, .dil = {1, 2}),
        /* depthwise: group = C = M */
        C2D(.N = 2, .C = 6, .M = 6, .G = 6, .in = {7, 9}, .ker = {3, 3}, .pads = {1, 1, 1, 1},
            .bias = 1),
        C2D(.C = 5, .M = 5, .G = 5, .in = {6, 6}, .ker = {3, 3}, .str = {2, 2},
            .pads = {1, 1, 1, 1}, .out_pad = {1, 1}),
        C2D(.dt = GR_DTYPE_F64, .C = 4, .M = 8, .G = 4, .in = {5, 6}, .ker = {4, 4},
            .str = {3, 2}, .dil = {1, 2}, .pads = {2, 1, 0, 3}, .out_pad = {2, 1}, .bias = 1),
        C2D(.N = 2, .C = 3, .M = 5, .in = {4, 4}, .ker = {3, 3}, .str = {2, 2}, .bias = 1),
    };
    RUN(cases);
}

/* 1x1 kernels: stride 1 unpadded is one GEMM into Y; else col2im. */
static void test_convt_pointwise(void **state) {
    (void)state;
    convt_case cases[] = {
        C2D(.N = 2, .C = 16, .M = 20, .in = {7, 9}, .ker = {1, 1}, .bias = 1),
        C2D(.C = 16, .M = 12, .G = 2, .in = {5, 5}, .ker = {1, 1}),
        C2D(.C = 8, .M = 8, .in = {4, 5}, .ker = {1, 1}, .str = {2, 2}, .out_pad = {1, 0},
            .bias = 1),
        C2D(.C = 8, .M = 3, .in = {5, 5}, .ker = {1, 1}, .pads = {1, 0, 0, 1}),
    };
    RUN(cases);
}

static void test_convt_1d_3d(void **state) {
    (void)state;
    convt_case cases[] = {
        {.ns = 1, .N = 2, .C = 8, .M = 6, .in = {11}, .ker = {3}, .str = {2}, .pads = {1, 0},
         .out_pad = {1}, .bias = 1},
        {.ns = 1, .C = 12, .M = 4, .in = {9}, .ker = {5}, .str = {3}, .dil = {2},
         .pads = {2, 3}, .out_pad = {2}},
        {.ns = 1, .C = 3, .M = 3, .G = 3, .in = {10}, .ker = {3}, .pads = {1, 1}, .bias = 1},
        /* one image's cols span several GEMM tiles */
        {.ns = 1, .C = 64, .M = 8, .in = {2100}, .ker = {3}, .pads = {1, 1}, .bias = 1},
        {.ns = 3, .N = 2, .C = 8, .M = 6, .in = {3, 4, 3}, .ker = {2, 3, 2}, .str = {2, 1, 2},
         .dil = {1, 2, 1}, .pads = {0, 1, 1, 1, 0, 0}, .out_pad = {1, 0, 0}, .bias = 1},
        {.ns = 3, .C = 16, .M = 8, .G = 2, .in = {3, 3, 4}, .ker = {3, 3, 3},
         .pads = {1, 1, 1, 1, 1, 1}},
        {.ns = 3, .C = 4, .M = 4, .G = 4, .in = {4, 3, 5}, .ker = {3, 2, 3}, .str = {2, 2, 1},
         .pads = {1, 0, 1, 0, 1, 1}, .out_pad = {1, 1, 0}, .bias = 1},
        {.dt = GR_DTYPE_F64, .ns = 3, .C = 9, .M = 2, .in = {2, 3, 3}, .ker = {2, 2, 2},
         .str = {3, 1, 2}, .dil = {1, 2, 1}, .pads = {0, 0, 1, 1, 0, 0}, .bias = 1},
    };
    RUN(cases);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convt_gemm_2d),
        cmocka_unit_test(test_convt_groups_and_depthwise),
        cmocka_unit_test(test_convt_pointwise),
        cmocka_unit_test(test_convt_1d_3d),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
