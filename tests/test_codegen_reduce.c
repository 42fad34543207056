/* test_codegen_reduce.c: the reduce family's kernels (ReduceX, ArgMax/Min,
 * Softmax/LogSoftmax, Layer/Batch/InstanceNormalization, LRN, Max/Average/
 * Global pools) compiled with the JIT and run with 1 and 3 task splits (which
 * must agree bit for bit), against ONNX spec examples and double-precision C
 * references written here from the ops' definitions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "passes/gr_passes.h"
#include "tests/cg_run.h"

/* ------------------------------------------------------------------ helpers */

static uint32_t rng_state = 12345;
static double rnd(double lo, double hi) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (double)(rng_state >> 8) / (double)(1u << 24);
}

static void fill(float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)rnd(lo, hi);
}

static gr_shape shp(int rank, const int64_t *dims) { return gr_shape_make(rank, dims); }

/* Runs every step of p with tasks split into n_splits pieces (as cg_run.h,
 * but on a plan compiled once). */
static void run_plan(const gr_plan *p, void *const *inputs, void *const *outputs, int n_splits) {
    char *arena = aligned_alloc(64, (p->arena_bytes + 63) / 64 * 64 + 64);
    char *ws = aligned_alloc(64, 64 * 1024);
    void *args[65]; /* kernels take at most 64 buffers */
    for (int s = 0; s < p->n_steps; s++) {
        const gr_step *step = &p->steps[s];
        assert_true(step->workspace_bytes <= 64 * 1024);
        for (int a = 0; a < step->n_args; a++)
            args[a] = gr_plan_buffer_data(p, step->args[a], arena, p->state_init, inputs, outputs);
        args[step->n_args] = step->workspace_bytes ? ws : NULL;
        for (int t = 0; t < n_splits; t++) {
            int64_t begin = step->n_tasks * t / n_splits, end = step->n_tasks * (t + 1) / n_splits;
            if (begin < end) step->fn(args, begin, end);
        }
    }
    free(arena);
    free(ws);
}

/* Compiles g once and runs it with 1 and 3 splits; outputs of the 1-split
 * run land in outputs, and the 3-split run must match them byte for byte.
 * Returns the plan's number of steps (kernels). */
static int run_both(gr_graph *g, void *const *inputs, void *const *outputs) {
    gr_status st = {0};
    gr_plan *p = NULL;
    gr_codegen_opts opts = {0};
    if (gr_graph_infer_shapes(g, &st) != GR_OK) fail_msg("shapes: %s", st.msg);
    if (gr_codegen_jit(g, &opts, &p, &st) != GR_OK) fail_msg("compile: %s", st.msg);
    run_plan(p, inputs, outputs, 1);
    void *copies[16];
    assert_true(g->n_outputs <= 16);
    for (int i = 0; i < g->n_outputs; i++) {
        size_t nb = (size_t)gr_value_numel(g->outputs[i]) * gr_dtype_size(g->outputs[i]->dtype);
        copies[i] = calloc(1, nb + 1);
    }
    run_plan(p, inputs, copies, 3);
    for (int i = 0; i < g->n_outputs; i++) {
        size_t nb = (size_t)gr_value_numel(g->outputs[i]) * gr_dtype_size(g->outputs[i]->dtype);
        assert_memory_equal(outputs[i], copies[i], nb);
        free(copies[i]);
    }
    int n_steps = p->n_steps;
    gr_plan_free(p);
    return n_steps;
}

static void expect_close(const float *got, const double *want, int64_t n, double rtol,
                         double atol) {
    for (int64_t i = 0; i < n; i++) {
        double w = want[i], d = fabs((double)got[i] - w);
        if (isnan(w) && isnan(got[i])) continue;
        if (isinf(w) && got[i] == w) continue;
        if (!(d <= atol + rtol * fabs(w)))
            fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, got[i], w);
    }
}

/* A one-node graph: x (f32 input) -> op -> one output; returns the node. */
static gr_node *one_node(gr_graph *g, gr_op op, gr_dtype dt, int rank, const int64_t *dims,
                         int n_extra, gr_value *const *extra, int n_out) {
    gr_shape s = shp(rank, dims);
    gr_value *ins[8] = {gr_graph_add_input(g, "x", dt, &s)};
    for (int i = 0; i < n_extra; i++) ins[1 + i] = extra[i];
    gr_node *n = gr_node_add(g, op, "n", 1 + n_extra, ins, n_out, NULL);
    for (int i = 0; i < n_out; i++)
        if (n->outputs[i]) gr_graph_add_output(g, n->outputs[i]);
    return n;
}

static gr_value *axes_const(gr_graph *g, int n, const int64_t *axes) {
    int64_t d = n;
    gr_shape s = shp(1, &d);
    return gr_graph_add_data(g, GR_VALUE_CONST, "axes", GR_DTYPE_I64, &s, axes);
}

/* -------------------------------------------------------------- reductions */

typedef enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_SSQ, R_LOGSUM, R_LSE } rk;
static const gr_op reduce_ops[] = {
    GR_OP_REDUCE_SUM, GR_OP_REDUCE_MEAN, GR_OP_REDUCE_MAX, GR_OP_REDUCE_MIN,
    GR_OP_REDUCE_PROD, GR_OP_REDUCE_L1, GR_OP_REDUCE_L2, GR_OP_REDUCE_SUM_SQUARE,
    GR_OP_REDUCE_LOG_SUM, GR_OP_REDUCE_LOG_SUM_EXP};

/* Double reference: y[kept index] over the masked dims of x:[dims]. */
static void ref_reduce(rk kind, const double *x, int rank, const int64_t *dims, const int *mask,
                       double *y, int64_t n_out) {
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) numel *= dims[i];
    double *acc = calloc((size_t)n_out + 1, sizeof *acc), *mx = calloc((size_t)n_out + 1, 8);
    int64_t *cnt = calloc((size_t)n_out + 1, sizeof *cnt);
    for (int64_t o = 0; o < n_out; o++) {
        acc[o] = kind == R_PROD ? 1 : kind == R_MAX ? -INFINITY : kind == R_MIN ? INFINITY : 0;
        mx[o] = -INFINITY;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int64_t e = 0; e < numel; e++) {
            int64_t rest = e, o = 0, mul = 1;
            for (int i = rank - 1; i >= 0; i--) {
                int64_t idx = rest % dims[i];
                rest /= dims[i];
                if (!mask[i]) {
                    o += idx * mul;
                    mul *= dims[i];
                }
            }
            double v = x[e];
            if (pass == 0) {
                mx[o] = v > mx[o] ? v : mx[o];
                continue;
            }
            cnt[o]++;
            switch (kind) {
            case R_MAX: acc[o] = v > acc[o] ? v : acc[o]; break;
            case R_MIN: acc[o] = v < acc[o] ? v : acc[o]; break;
            case R_PROD: acc[o] *= v; break;
            case R_L1: acc[o] += fabs(v); break;
            case R_L2: case R_SSQ: acc[o] += v * v; break;
            case R_LSE: acc[o] += exp(v - mx[o]); break;
            default: acc[o] += v; break;
            }
        }
    for (int64_t o = 0; o < n_out; o++) {
        double a = acc[o];
        switch (kind) {
        case R_MEAN: a /= (double)cnt[o]; break;
        case R_L2: a = sqrt(a); break;
        case R_LOGSUM: a = log(a); break;
        case R_LSE: a = cnt[o] ? mx[o] + log(a) : -INFINITY; break;
        default: break;
        }
        y[o] = a;
    }
    free(acc);
    free(mx);
    free(cnt);
}

/* Reduces a random f32 x:[dims] over axes with every ReduceX op. */
static void check_reduce_all_kinds(int rank, const int64_t *dims, int n_axes,
                                   const int64_t *axes, int keepdims) {
    int mask[8] = {0};
    for (int i = 0; i < n_axes; i++) mask[axes[i] < 0 ? axes[i] + rank : axes[i]] = 1;
    if (n_axes == 0)
        for (int i = 0; i < rank; i++) mask[i] = 1;
    int64_t numel = 1, n_out = 1;
    for (int i = 0; i < rank; i++) {
        numel *= dims[i];
        if (!mask[i]) n_out *= dims[i];
    }
    /* xm: mixed signs; xp: positive near 1 (LogSum, Prod) */
    float *xm = malloc((size_t)numel * 4 + 4), *xp = malloc((size_t)numel * 4 + 4);
    float *y[10];
    double *want = malloc((size_t)n_out * 8 + 8), *xd = malloc((size_t)numel * 8 + 8);
    fill(xm, numel, -2, 2);
    fill(xp, numel, 0.7, 1.3);
    gr_graph *g = gr_graph_new("reduce");
    gr_shape s = shp(rank, dims);
    gr_value *in[2] = {gr_graph_add_input(g, "xm", GR_DTYPE_F32, &s),
                       gr_graph_add_input(g, "xp", GR_DTYPE_F32, &s)};
    gr_value *av = axes_const(g, n_axes, axes);
    gr_node *nodes[10];
    for (int kind = 0; kind < 10; kind++) {
        int pos = kind == R_LOGSUM || kind == R_PROD;
        gr_value *ins[2] = {in[pos], av};
        nodes[kind] = gr_node_add(g, reduce_ops[kind], NULL, n_axes ? 2 : 1, ins, 1, NULL);
        gr_node_set_int(g, nodes[kind], "keepdims", keepdims);
        gr_graph_add_output(g, nodes[kind]->outputs[0]);
        y[kind] = malloc((size_t)n_out * 4 + 4);
    }
    run_both(g, (void *[]){xm, xp}, (void *const *)y);
    for (int kind = 0; kind < 10; kind++) {
        const gr_value *out = nodes[kind]->outputs[0];
        assert_int_equal(gr_value_numel(out), n_out);
        assert_int_equal(out->shape.rank, keepdims ? rank : rank - (n_axes ? n_axes : rank));
        int pos = kind == R_LOGSUM || kind == R_PROD;
        for (int64_t i = 0; i < numel; i++) xd[i] = pos ? xp[i] : xm[i];
        ref_reduce((rk)kind, xd, rank, dims, mask, want, n_out);
        /* f32 sums round: allow ~1 ulp per summed magnitude */
        expect_close(y[kind], want, n_out, 1e-5, 1e-6 + 1e-7 * (double)(numel / (n_out ? n_out : 1)));
        free(y[kind]);
    }
    gr_graph_free(g);
    free(xm);
    free(xp);
    free(want);
    free(xd);
}

static void test_reduce_every_kind_inner_middle_outer_and_all_axes(void **state) {
    (void)state;
    int64_t d3[3] = {3, 4, 5};
    check_reduce_all_kinds(3, d3, 1, (int64_t[]){2}, 1);
    check_reduce_all_kinds(3, d3, 1, (int64_t[]){1}, 0);
    check_reduce_all_kinds(3, d3, 1, (int64_t[]){0}, 1);
    check_reduce_all_kinds(3, d3, 2, (int64_t[]){0, 2}, 0);
    check_reduce_all_kinds(3, d3, 2, (int64_t[]){-1, -2}, 1);
    check_reduce_all_kinds(3, d3, 0, NULL, 0);
    int64_t d4[4] = {2, 3, 1, 7};
    check_reduce_all_kinds(4, d4, 2, (int64_t[]){1, 3}, 1);
    check_reduce_all_kinds(4, d4, 1, (int64_t[]){2}, 0);
    /* long rows: chunks of the kept row, and a long contiguous reduction */
    int64_t dl[3] = {2, 3, 2500};
    check_reduce_all_kinds(3, dl, 1, (int64_t[]){1}, 1);
    check_reduce_all_kinds(3, dl, 1, (int64_t[]){2}, 0);
}

/* ONNX spec example (ReduceSum keepdims): axes [1] of [3,2,2]. */
static void test_reduce_sum_spec_example(void **state) {
    (void)state;
    float x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, y[6];
    gr_graph *g = gr_graph_new("sum");
    gr_value *av = axes_const(g, 1, (int64_t[]){1});
    one_node(g, GR_OP_REDUCE_SUM, GR_DTYPE_F32, 3, (int64_t[]){3, 2, 2}, 1, &av, 1);
    run_both(g, (void *[]){x}, (void *[]){y});
    const float want[6] = {4, 6, 12, 14, 20, 22};
    assert_memory_equal(y, want, sizeof want);
    gr_graph_free(g);
}

static void test_reduce_integer_and_f64(void **state) {
    (void)state;
    int32_t xi[6] = {1, -7, 3, 4, 5, -6}, yi[2];
    gr_graph *g = gr_graph_new("i32");
    gr_value *av = axes_const(g, 1, (int64_t[]){1});
    one_node(g, GR_OP_REDUCE_SUM, GR_DTYPE_I32, 2, (int64_t[]){2, 3}, 1, &av, 1);
    run_both(g, (void *[]){xi}, (void *[]){yi});
    assert_int_equal(yi[0], -3);
    assert_int_equal(yi[1], 3);
    gr_graph_free(g);

    int64_t xl[6] = {1, -7, 3, 4, 5, -6}, yl[3];
    g = gr_graph_new("i64");
    av = axes_const(g, 1, (int64_t[]){0});
    one_node(g, GR_OP_REDUCE_MIN, GR_DTYPE_I64, 2, (int64_t[]){2, 3}, 1, &av, 1);
    run_both(g, (void *[]){xl}, (void *[]){yl});
    assert_true(yl[0] == 1 && yl[1] == -7 && yl[2] == -6);
    gr_graph_free(g);

    g = gr_graph_new("i64max");
    av = axes_const(g, 1, (int64_t[]){1});
    one_node(g, GR_OP_REDUCE_MAX, GR_DTYPE_I64, 2, (int64_t[]){2, 3}, 1, &av, 1);
    run_both(g, (void *[]){xl}, (void *[]){yl});
    assert_true(yl[0] == 3 && yl[1] == 5);
    gr_graph_free(g);

    double xd[6] = {1, 2, 3, 4, 5, 7}, yd[1];
    g = gr_graph_new("f64");
    one_node(g, GR_OP_REDUCE_MEAN, GR_DTYPE_F64, 2, (int64_t[]){2, 3}, 0, NULL, 1);
    run_both(g, (void *[]){xd}, (void *[]){yd});
    assert_true(yd[0] == 22.0 / 6.0);
    gr_graph_free(g);
}

/* noop_with_empty_axes: the output is the input; no axes input at all. */
static void test_reduce_noop_with_empty_axes_copies(void **state) {
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
    gr_graph *g = gr_graph_new("noop");
    gr_node *n = one_node(g, GR_OP_REDUCE_SUM, GR_DTYPE_F32, 2, (int64_t[]){2, 3}, 0, NULL, 1);
    gr_node_set_int(g, n, "noop_with_empty_axes", 1);
    run_both(g, (void *[]){x}, (void *[]){y});
    assert_memory_equal(x, y, sizeof x);
    gr_graph_free(g);
}

/* Reducing an empty set gives the identity: 0, 1, -inf, +inf, log 0. */
static void test_reduce_empty_set(void **state) {
    (void)state;
    float x[1] = {0}, y[8];
    const float want[5] = {0, 1, -INFINITY, INFINITY, -INFINITY};
    const gr_op ops[5] = {GR_OP_REDUCE_SUM, GR_OP_REDUCE_PROD, GR_OP_REDUCE_MAX,
                          GR_OP_REDUCE_MIN, GR_OP_REDUCE_LOG_SUM_EXP};
    for (int i = 0; i < 5; i++) {
        gr_graph *g = gr_graph_new("empty");
        gr_value *av = axes_const(g, 1, (int64_t[]){1});
        one_node(g, ops[i], GR_DTYPE_F32, 3, (int64_t[]){2, 0, 4}, 1, &av, 1);
        run_both(g, (void *[]){x}, (void *[]){y});
        for (int j = 0; j < 8; j++) assert_true(y[j] == want[i]);
        gr_graph_free(g);
    }
}

static void test_reduce_runtime_axes_unsupported(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("dyn");
    int64_t one = 1;
    gr_shape as = shp(1, &one);
    gr_value *av = gr_graph_add_input(g, "axes", GR_DTYPE_I64, &as);
    gr_node *n = one_node(g, GR_OP_REDUCE_SUM, GR_DTYPE_F32, 2, (int64_t[]){2, 3}, 1, &av, 1);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    /* keepdims: rank known but dims unknown; force a static output */
    n->outputs[0]->shape = shp(2, (int64_t[]){2, 1});
    float x[6] = {0}, y[2];
    assert_int_equal(cg_run_graph(g, (void *[]){x, (int64_t[]){1}}, (void *[]){y}, 1, &st),
                     GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "constant axes"));
    gr_graph_free(g);
}


/* ------------------------------------------------------------ arg-reduce */

static void run_arg(gr_op op, const float *x, int rank, const int64_t *dims, int64_t axis,
                    int keepdims, int last, int64_t *y) {
    gr_graph *g = gr_graph_new("arg");
    gr_node *n = one_node(g, op, GR_DTYPE_F32, rank, dims, 0, NULL, 1);
    gr_node_set_int(g, n, "axis", axis);
    gr_node_set_int(g, n, "keepdims", keepdims);
    gr_node_set_int(g, n, "select_last_index", last);
    run_both(g, (void *[]){(void *)x}, (void *[]){y});
    gr_graph_free(g);
}

/* ONNX spec examples of ArgMax/ArgMin. */
static void test_argmax_argmin_spec_examples(void **state) {
    (void)state;
    const float x[4] = {2, 1, 3, 10}, xs[4] = {2, 2, 3, 10};
    int64_t y[2];
    run_arg(GR_OP_ARG_MAX, x, 2, (int64_t[]){2, 2}, 1, 1, 0, y);
    assert_true(y[0] == 0 && y[1] == 1);
    run_arg(GR_OP_ARG_MAX, x, 2, (int64_t[]){2, 2}, 0, 1, 0, y);
    assert_true(y[0] == 1 && y[1] == 1);
    run_arg(GR_OP_ARG_MAX, xs, 2, (int64_t[]){2, 2}, 1, 1, 1, y);
    assert_true(y[0] == 1 && y[1] == 1);
    run_arg(GR_OP_ARG_MAX, xs, 2, (int64_t[]){2, 2}, -1, 0, 0, y);
    assert_true(y[0] == 0 && y[1] == 1);
    run_arg(GR_OP_ARG_MIN, x, 2, (int64_t[]){2, 2}, 1, 1, 0, y);
    assert_true(y[0] == 1 && y[1] == 0);
    run_arg(GR_OP_ARG_MIN, xs, 2, (int64_t[]){2, 2}, 1, 0, 1, y);
    assert_true(y[0] == 1 && y[1] == 0);
    run_arg(GR_OP_ARG_MIN, xs, 2, (int64_t[]){2, 2}, 0, 0, 0, y);
    assert_true(y[0] == 0 && y[1] == 0);
}

/* Random [3,4,1100] (chunked inner) with ties, every axis, against a scan. */
static void test_argmax_argmin_random_every_axis(void **state) {
    (void)state;
    int64_t dims[3] = {3, 4, 1100}, numel = 3 * 4 * 1100;
    float *x = malloc((size_t)numel * 4);
    int64_t *y = malloc((size_t)numel * 8);
    for (int64_t i = 0; i < numel; i++) x[i] = (float)(int)rnd(0, 6); /* many ties */
    for (int axis = 0; axis < 3; axis++)
        for (int op = 0; op < 2; op++)
            for (int last = 0; last < 2; last++) {
                run_arg(op ? GR_OP_ARG_MIN : GR_OP_ARG_MAX, x, 3, dims, axis, 0, last, y);
                int64_t outer = 1, inner = 1, len = dims[axis];
                for (int i = 0; i < axis; i++) outer *= dims[i];
                for (int i = axis + 1; i < 3; i++) inner *= dims[i];
                for (int64_t o = 0; o < outer; o++)
                    for (int64_t j = 0; j < inner; j++) {
                        int64_t best = 0;
                        for (int64_t r = 1; r < len; r++) {
                            float v = x[(o * len + r) * inner + j];
                            float b = x[(o * len + best) * inner + j];
                            int better = op ? (last ? v <= b : v < b) : (last ? v >= b : v > b);
                            if (better) best = r;
                        }
                        assert_int_equal(y[o * inner + j], best);
                    }
            }
    free(x);
    free(y);
}

/* --------------------------------------------------------------- softmax */

static void run_softmax(gr_op op, const float *x, int rank, const int64_t *dims, int64_t axis,
                        float *y) {
    gr_graph *g = gr_graph_new("softmax");
    gr_node *n = one_node(g, op, GR_DTYPE_F32, rank, dims, 0, NULL, 1);
    gr_node_set_int(g, n, "axis", axis);
    run_both(g, (void *[]){(void *)x}, (void *[]){y});
    gr_graph_free(g);
}

/* ONNX spec examples: softmax_example and logsoftmax_large_number. */
static void test_softmax_spec_examples(void **state) {
    (void)state;
    const float x[3] = {-1, 0, 1};
    float y[8];
    run_softmax(GR_OP_SOFTMAX, x, 2, (int64_t[]){1, 3}, -1, y);
    expect_close(y, (double[]){0.09003058, 0.24472848, 0.66524094}, 3, 1e-6, 0);
    const float big[8] = {0, 1, 2, 3, 10000, 10001, 10002, 10003};
    run_softmax(GR_OP_LOG_SOFTMAX, big, 2, (int64_t[]){2, 4}, 1, y);
    const double want[8] = {-3.4401896, -2.4401896, -1.4401896, -0.44018966,
                            -3.4401896, -2.4401896, -1.4401896, -0.44018966};
    expect_close(y, want, 8, 1e-6, 1e-6);
    run_softmax(GR_OP_SOFTMAX, big, 2, (int64_t[]){2, 4}, 1, y);
    for (int i = 0; i < 8; i++) assert_true(fabs(y[i] - exp(want[i])) < 1e-6);
}

/* Random [3,4,1030] along every axis (rows and chunked columns). */
static void test_softmax_random_every_axis(void **state) {
    (void)state;
    int64_t dims[3] = {3, 4, 1030}, numel = 3 * 4 * 1030;
    float *x = malloc((size_t)numel * 4), *y = malloc((size_t)numel * 4);
    double *want = malloc((size_t)numel * 8);
    fill(x, numel, -5, 5);
    for (int axis = -1; axis < 3; axis++)
        for (int lg = 0; lg < 2; lg++) {
            run_softmax(lg ? GR_OP_LOG_SOFTMAX : GR_OP_SOFTMAX, x, 3, dims, axis, y);
            int a = axis < 0 ? axis + 3 : axis;
            int64_t outer = 1, inner = 1, len = dims[a];
            for (int i = 0; i < a; i++) outer *= dims[i];
            for (int i = a + 1; i < 3; i++) inner *= dims[i];
            for (int64_t o = 0; o < outer; o++)
                for (int64_t j = 0; j < inner; j++) {
                    double mx = -INFINITY, s = 0;
                    for (int64_t r = 0; r < len; r++)
                        mx = fmax(mx, x[(o * len + r) * inner + j]);
                    for (int64_t r = 0; r < len; r++) s += exp(x[(o * len + r) * inner + j] - mx);
                    for (int64_t r = 0; r < len; r++) {
                        int64_t i = (o * len + r) * inner + j;
                        want[i] = lg ? x[i] - mx - log(s) : exp(x[i] - mx) / s;
                    }
                }
            /* log(sum) of a sum near 1 carries ~1 ulp of 1 */
            expect_close(y, want, numel, 1e-5, 1e-6);
        }
    free(x);
    free(y);
    free(want);
}


/* --------------------------------------------------------- normalisation */

static gr_value *param(gr_graph *g, const char *name, int rank, const int64_t *dims,
                       const float *data) {
    gr_shape s = shp(rank, dims);
    return gr_graph_add_data(g, GR_VALUE_PARAM, name, GR_DTYPE_F32, &s, data);
}

/* LayerNorm of random [2,3,5] for axes 0..2 (and -1), with Mean and
 * InvStdDev outputs, full-size and broadcast scales. */
static void test_layer_norm_every_axis_with_stats(void **state) {
    (void)state;
    int64_t dims[3] = {2, 3, 5};
    float x[30], sc[30], bs[30], y[30], mean[6], inv[6];
    fill(x, 30, -3, 3);
    fill(sc, 30, 0.5, 1.5);
    fill(bs, 30, -1, 1);
    for (int axis = -1; axis < 3; axis++)
        for (int bcast = 0; bcast < 2; bcast++) {
            int a = axis < 0 ? axis + 3 : axis;
            int64_t rows = 1, len = 1;
            for (int i = 0; i < 3; i++) *(i < a ? &rows : &len) *= dims[i];
            if (bcast && a == 2) continue;
            gr_graph *g = gr_graph_new("ln");
            /* bcast: scale [5] (last dim only), bias scalar-like [1] */
            gr_value *sv = bcast ? param(g, "s", 1, &dims[2], sc)
                                 : param(g, "s", 3 - a, &dims[a], sc);
            gr_value *bv = bcast ? param(g, "b", 1, (int64_t[]){1}, bs)
                                 : param(g, "b", 3 - a, &dims[a], bs);
            gr_node *n = one_node(g, GR_OP_LAYER_NORM, GR_DTYPE_F32, 3, dims, 2,
                                  (gr_value *[]){sv, bv}, 3);
            gr_node_set_int(g, n, "axis", axis);
            gr_node_set_float(g, n, "epsilon", 1e-3);
            run_both(g, (void *[]){x}, (void *[]){y, mean, inv});
            for (int64_t r = 0; r < rows; r++) {
                double mu = 0, var = 0;
                for (int64_t j = 0; j < len; j++) mu += x[r * len + j];
                mu /= (double)len;
                for (int64_t j = 0; j < len; j++) var += pow(x[r * len + j] - mu, 2);
                double is = 1 / sqrt(var / (double)len + 1e-3);
                expect_close(&mean[r], &mu, 1, 1e-5, 1e-6);
                expect_close(&inv[r], &is, 1, 1e-5, 1e-6);
                for (int64_t j = 0; j < len; j++) {
                    double s = bcast ? sc[j % 5] : sc[j], b = bcast ? bs[0] : bs[j];
                    double want = (x[r * len + j] - mu) * is * s + b;
                    expect_close(&y[r * len + j], &want, 1, 1e-5, 1e-5);
                }
            }
            gr_graph_free(g);
        }
}

static gr_node *batch_norm_graph(gr_graph *g, const float *sc, const float *b, const float *mu,
                                 const float *var) {
    int64_t c = 2;
    gr_value *ps[4] = {param(g, "s", 1, &c, sc), param(g, "b", 1, &c, b),
                       param(g, "m", 1, &c, mu), param(g, "v", 1, &c, var)};
    return one_node(g, GR_OP_BATCH_NORM, GR_DTYPE_F32, 4, (int64_t[]){1, 2, 1, 3}, 4, ps, 1);
}

/* ONNX spec example (batchnorm_example), and training mode refused by
 * codegen (the simplify pass lowers it; the conformance suites check the
 * numbers of test_batchnorm_*_training_mode). */
static void test_batch_norm_spec_example_and_training_unsupported(void **state) {
    (void)state;
    const float x[6] = {-1, 0, 1, 2, 3, 4}, sc[2] = {1.0f, 1.5f}, b[2] = {0, 1};
    const float mu[2] = {0, 3}, var[2] = {1, 1.5f};
    float y[6];
    gr_graph *g = gr_graph_new("bn");
    batch_norm_graph(g, sc, b, mu, var);
    run_both(g, (void *[]){(void *)x}, (void *[]){y});
    const double want[6] = {-0.999995, 0, 0.999995, -0.22474074, 1, 2.2247407};
    expect_close(y, want, 6, 1e-6, 1e-7);
    gr_graph_free(g);

    g = gr_graph_new("bn_train");
    gr_node *n = batch_norm_graph(g, sc, b, mu, var);
    gr_node_set_int(g, n, "training_mode", 1);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    assert_int_equal(cg_run_graph(g, (void *[]){(void *)x}, (void *[]){y}, 1, &st),
                     GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "simplify pass lowers it"));
    gr_graph_free(g);
}

/* ONNX spec example input of InstanceNormalization, reference from the
 * definition in double. */
static void test_instance_norm_example(void **state) {
    (void)state;
    const float x[6] = {-1, 0, 1, 2, 3, 4}, sc[2] = {1.0f, 1.5f}, b[2] = {0, 1};
    float y[6];
    int64_t c = 2;
    gr_graph *g = gr_graph_new("in");
    one_node(g, GR_OP_INSTANCE_NORM, GR_DTYPE_F32, 4, (int64_t[]){1, 2, 1, 3}, 2,
             (gr_value *[]){param(g, "s", 1, &c, sc), param(g, "b", 1, &c, b)}, 1);
    run_both(g, (void *[]){(void *)x}, (void *[]){y});
    double want[6];
    for (int p = 0; p < 2; p++)
        for (int j = 0; j < 3; j++) /* each plane: mean x[1], var 2/3 */
            want[p * 3 + j] = (x[p * 3 + j] - x[p * 3 + 1]) / sqrt(2.0 / 3.0 + 1e-5) * sc[p] + b[p];
    expect_close(y, want, 6, 1e-5, 1e-6);
    gr_graph_free(g);
}

/* LRN over 5 channels, sizes 3 and 4 (asymmetric window), vs the definition. */
static void test_lrn_against_definition(void **state) {
    (void)state;
    int64_t dims[4] = {2, 5, 2, 3};
    float x[60], y[60];
    double want[60];
    fill(x, 60, -2, 2);
    for (int size = 3; size <= 4; size++) {
        gr_graph *g = gr_graph_new("lrn");
        gr_node *n = one_node(g, GR_OP_LRN, GR_DTYPE_F32, 4, dims, 0, NULL, 1);
        gr_node_set_int(g, n, "size", size);
        gr_node_set_float(g, n, "alpha", 0.02);
        gr_node_set_float(g, n, "beta", 0.6);
        gr_node_set_float(g, n, "bias", 2.0);
        run_both(g, (void *[]){x}, (void *[]){y});
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 5; c++)
                for (int j = 0; j < 6; j++) {
                    double s = 0;
                    for (int cc = c - (size - 1) / 2; cc <= c + size / 2; cc++)
                        if (cc >= 0 && cc < 5) s += pow(x[(b * 5 + cc) * 6 + j], 2);
                    int i = (b * 5 + c) * 6 + j;
                    want[i] = x[i] / pow(2.0 + 0.02 / size * s, 0.6);
                }
        expect_close(y, want, 60, 1e-5, 1e-7);
        gr_graph_free(g);
    }
}


/* ---------------------------------------------------------------- pooling */

typedef struct {
    gr_op op;
    int ns;
    int64_t k[3], s[3], d[3], pads[6];
    const char *auto_pad;
    int ceil, include_pad, storage_order, with_indices;
} pool_cfg;

static gr_node *pool_node(gr_graph *g, const pool_cfg *c, gr_dtype dt, const int64_t *dims) {
    gr_node *n = one_node(g, c->op, dt, c->ns + 2, dims, 0, NULL, c->with_indices ? 2 : 1);
    gr_node_set_ints(g, n, "kernel_shape", c->ns, c->k);
    if (c->s[0]) gr_node_set_ints(g, n, "strides", c->ns, c->s);
    if (c->d[0]) gr_node_set_ints(g, n, "dilations", c->ns, c->d);
    if (c->auto_pad) gr_node_set_string(g, n, "auto_pad", c->auto_pad);
    else gr_node_set_ints(g, n, "pads", 2 * c->ns, c->pads);
    gr_node_set_int(g, n, "ceil_mode", c->ceil);
    if (c->op == GR_OP_AVERAGE_POOL) gr_node_set_int(g, n, "count_include_pad", c->include_pad);
    else gr_node_set_int(g, n, "storage_order", c->storage_order);
    return n;
}

/* 5x5 input 1..25 (ONNX's precomputed examples). */
static void run_pool_5x5(const pool_cfg *c, int64_t h, float *y, int64_t *ind) {
    float x[25];
    for (int i = 0; i < 25; i++) x[i] = (float)(i + 1);
    gr_graph *g = gr_graph_new("pool");
    pool_node(g, c, GR_DTYPE_F32, (int64_t[]){1, 1, h, h});
    run_both(g, (void *[]){x}, (void *[]){y, ind});
    gr_graph_free(g);
}

static void test_pool_spec_examples(void **state) {
    (void)state;
    float y[25];
    int64_t ind[25];
    pool_cfg c = {GR_OP_MAX_POOL, 2, {5, 5}, {0}, {0}, {2, 2, 2, 2}, NULL, 0, 0, 0, 1};
    run_pool_5x5(&c, 5, y, ind);
    const float mp[25] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25, 25, 25,
                          23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
    assert_memory_equal(y, mp, sizeof mp);
    for (int i = 0; i < 25; i++) assert_int_equal(ind[i], (int64_t)mp[i] - 1);
    pool_cfg cs = {GR_OP_MAX_POOL, 2, {2, 2}, {2, 2}, {0}, {0}, NULL, 0, 0, 1, 1};
    run_pool_5x5(&cs, 5, y, ind);
    assert_true(y[0] == 7 && y[1] == 9 && y[2] == 17 && y[3] == 19);
    assert_true(ind[0] == 6 && ind[1] == 16 && ind[2] == 8 && ind[3] == 18);
    pool_cfg ca = {GR_OP_AVERAGE_POOL, 2, {5, 5}, {0}, {0}, {2, 2, 2, 2}, NULL, 0, 0, 0, 0};
    run_pool_5x5(&ca, 5, y, NULL);
    const double ap[25] = {7, 7.5, 8, 8.5, 9, 9.5, 10, 10.5, 11, 11.5, 12, 12.5, 13,
                           13.5, 14, 14.5, 15, 15.5, 16, 16.5, 17, 17.5, 18, 18.5, 19};
    expect_close(y, ap, 25, 1e-6, 0);
    ca.include_pad = 1;
    run_pool_5x5(&ca, 5, y, NULL);
    const double ip[25] = {2.52, 3.6, 4.8, 4.08, 3.24, 4.56, 6.4, 8.4, 7.04, 5.52,
                           7.2, 10, 13, 10.8, 8.4, 6.96, 9.6, 12.4, 10.24, 7.92,
                           6.12, 8.4, 10.8, 8.88, 6.84};
    expect_close(y, ip, 25, 1e-6, 0);
}

/* 4x4 input 1..16: ceil_mode and dilation examples of the spec. */
static void test_pool_ceil_and_dilation_examples(void **state) {
    (void)state;
    float x[16], y[4];
    for (int i = 0; i < 16; i++) x[i] = (float)(i + 1);
    pool_cfg cfgs[3] = {
        {GR_OP_MAX_POOL, 2, {3, 3}, {2, 2}, {0}, {0}, NULL, 1, 0, 0, 0},
        {GR_OP_AVERAGE_POOL, 2, {3, 3}, {2, 2}, {0}, {0}, NULL, 1, 0, 0, 0},
        {GR_OP_MAX_POOL, 2, {2, 2}, {1, 1}, {2, 2}, {0}, NULL, 0, 0, 0, 0}};
    const double want[3][4] = {{11, 12, 15, 16}, {6, 7.5, 12, 13.5}, {11, 12, 15, 16}};
    for (int i = 0; i < 3; i++) {
        gr_graph *g = gr_graph_new("pool");
        pool_node(g, &cfgs[i], GR_DTYPE_F32, (int64_t[]){1, 1, 4, 4});
        run_both(g, (void *[]){x}, (void *[]){y});
        assert_int_equal(gr_value_numel(g->outputs[0]), 4);
        expect_close(y, want[i], 4, 1e-6, 0);
        gr_graph_free(g);
    }
}

/* u8 MaxPool (maxpool_2d_uint8). */
static void test_max_pool_uint8(void **state) {
    (void)state;
    uint8_t x[25], y[25];
    for (int i = 0; i < 25; i++) x[i] = (uint8_t)(i + 1);
    pool_cfg c = {GR_OP_MAX_POOL, 2, {5, 5}, {0}, {0}, {2, 2, 2, 2}, NULL, 0, 0, 0, 0};
    gr_graph *g = gr_graph_new("pool");
    pool_node(g, &c, GR_DTYPE_U8, (int64_t[]){1, 1, 5, 5});
    run_both(g, (void *[]){x}, (void *[]){y});
    const uint8_t want[25] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25, 25, 25,
                              23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
    assert_memory_equal(y, want, 25);
    gr_graph_free(g);
}

/* Straightforward reference: every window position, bounds-checked. */
static void ref_pool(const pool_cfg *c, const float *x, const int64_t *xd, const int64_t *yd,
                     double *y, int64_t *ind) {
    int ns = c->ns;
    int64_t pb[3] = {0}, pe[3] = {0}, st[3], dl[3], in_plane = 1, out_plane = 1;
    for (int i = 0; i < ns; i++) {
        st[i] = c->s[0] ? c->s[i] : 1;
        dl[i] = c->d[0] ? c->d[i] : 1;
        in_plane *= xd[2 + i];
        out_plane *= yd[2 + i];
        if (!c->auto_pad) {
            pb[i] = c->pads[i];
            pe[i] = c->pads[i + ns];
        } else if (strcmp(c->auto_pad, "VALID")) {
            int64_t tot = (yd[2 + i] - 1) * st[i] + (c->k[i] - 1) * dl[i] + 1 - xd[2 + i];
            tot = tot < 0 ? 0 : tot;
            pb[i] = !strcmp(c->auto_pad, "SAME_UPPER") ? tot / 2 : tot - tot / 2;
            pe[i] = tot - pb[i];
        }
    }
    for (int64_t pl = 0; pl < xd[0] * xd[1]; pl++)
        for (int64_t o = 0; o < out_plane; o++) {
            int64_t oi[3], rest = o, kn = 1;
            for (int i = ns - 1; i >= 0; i--) {
                oi[i] = rest % yd[2 + i];
                rest /= yd[2 + i];
                kn *= c->k[i];
            }
            double acc = c->op == GR_OP_MAX_POOL ? -INFINITY : 0;
            int64_t cnt = 0, best = -1;
            for (int64_t kk = 0; kk < kn; kk++) {
                int64_t ki[3], r2 = kk, off = 0, inside = 1, padded = 1;
                for (int i = ns - 1; i >= 0; i--) {
                    ki[i] = r2 % c->k[i];
                    r2 /= c->k[i];
                }
                for (int i = 0; i < ns; i++) {
                    int64_t p = oi[i] * st[i] - pb[i] + ki[i] * dl[i];
                    inside &= p >= 0 && p < xd[2 + i];
                    padded &= p < xd[2 + i] + pe[i];
                    off = off * xd[2 + i] + p;
                }
                if (c->include_pad ? padded : inside) cnt++;
                if (!inside) continue;
                double v = x[pl * in_plane + off];
                if (c->op == GR_OP_AVERAGE_POOL) acc += v;
                else if (v > acc) {
                    acc = v;
                    best = off;
                }
            }
            y[pl * out_plane + o] = c->op == GR_OP_MAX_POOL ? acc : acc / (double)cnt;
            if (ind) ind[pl * out_plane + o] = pl * in_plane + best;
        }
}

/* 1-D, 2-D and 3-D pools with strides, dilations, pads, auto_pad and
 * ceil_mode on random inputs, against ref_pool. */
static void test_pool_configurations_against_reference(void **state) {
    (void)state;
    const pool_cfg cfgs[] = {
        {GR_OP_MAX_POOL, 1, {3}, {2}, {0}, {1, 2}, NULL, 0, 0, 0, 1},
        {GR_OP_AVERAGE_POOL, 1, {4}, {1}, {2}, {2, 1}, NULL, 1, 1, 0, 0},
        {GR_OP_MAX_POOL, 2, {3, 2}, {2, 1}, {1, 2}, {1, 0, 1, 1}, NULL, 1, 0, 0, 1},
        {GR_OP_AVERAGE_POOL, 2, {3, 3}, {2, 2}, {0}, {1, 1, 1, 1}, NULL, 1, 0, 0, 0},
        {GR_OP_AVERAGE_POOL, 2, {3, 3}, {2, 2}, {0}, {1, 1, 1, 1}, NULL, 1, 1, 0, 0},
        {GR_OP_AVERAGE_POOL, 2, {3, 2}, {1, 2}, {0}, {0}, "SAME_UPPER", 0, 0, 0, 0},
        {GR_OP_MAX_POOL, 2, {2, 3}, {2, 1}, {0}, {0}, "SAME_LOWER", 0, 0, 0, 1},
        {GR_OP_AVERAGE_POOL, 2, {2, 2}, {1, 1}, {0}, {0}, "VALID", 0, 0, 0, 0},
        {GR_OP_MAX_POOL, 3, {2, 2, 2}, {1, 2, 1}, {2, 1, 1}, {0, 1, 0, 1, 0, 1}, NULL, 0, 0, 0, 1},
        {GR_OP_AVERAGE_POOL, 3, {3, 2, 2}, {2, 2, 1}, {2, 1, 2}, {1, 0, 1, 1, 1, 0}, NULL, 1, 1, 0, 0},
    };
    const int64_t xdims[3][5] = {{2, 3, 11}, {2, 2, 7, 9}, {1, 2, 6, 5, 7}};
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        const pool_cfg *c = &cfgs[i];
        const int64_t *xd = xdims[c->ns - 1];
        int64_t numel = 1;
        for (int j = 0; j < c->ns + 2; j++) numel *= xd[j];
        float *x = malloc((size_t)numel * 4);
        fill(x, numel, -4, 4);
        gr_graph *g = gr_graph_new("pool");
        gr_node *n = pool_node(g, c, GR_DTYPE_F32, xd);
        gr_status st = {0};
        assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
        int64_t ny = gr_value_numel(n->outputs[0]);
        float *y = malloc((size_t)ny * 4);
        int64_t *ind = malloc((size_t)ny * 8), *rind = malloc((size_t)ny * 8);
        double *want = malloc((size_t)ny * 8);
        run_both(g, (void *[]){x}, (void *[]){y, ind});
        ref_pool(c, x, xd, n->outputs[0]->shape.dims, want, c->with_indices ? rind : NULL);
        expect_close(y, want, ny, 1e-6, 1e-6);
        if (c->with_indices) assert_memory_equal(ind, rind, (size_t)ny * 8);
        free(x);
        free(y);
        free(ind);
        free(rind);
        free(want);
        gr_graph_free(g);
    }
}

/* GlobalAveragePool / GlobalMaxPool (globalaveragepool_precomputed). */
static void test_global_pools(void **state) {
    (void)state;
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[1];
    gr_graph *g = gr_graph_new("gap");
    one_node(g, GR_OP_GLOBAL_AVERAGE_POOL, GR_DTYPE_F32, 4, (int64_t[]){1, 1, 3, 3}, 0, NULL, 1);
    run_both(g, (void *[]){x}, (void *[]){y});
    assert_true(y[0] == 5);
    gr_graph_free(g);
    g = gr_graph_new("gmp");
    one_node(g, GR_OP_GLOBAL_MAX_POOL, GR_DTYPE_F32, 4, (int64_t[]){1, 1, 3, 3}, 0, NULL, 1);
    run_both(g, (void *[]){x}, (void *[]){y});
    assert_true(y[0] == 9);
    gr_graph_free(g);
}


/* A window that runs past the input is clipped: kernel 2 stride 2 over 1
 * row gives 1 row (truncating shape formula, as ONNX Runtime; PaddleOCR). */
static void test_max_pool_window_past_input_is_clipped(void **state) {
    (void)state;
    float x[4] = {1, 5, -2, 3}, y[2];
    pool_cfg c = {GR_OP_MAX_POOL, 2, {2, 2}, {2, 2}, {0}, {0}, NULL, 0, 0, 0, 0};
    gr_graph *g = gr_graph_new("pool");
    gr_node *n = pool_node(g, &c, GR_DTYPE_F32, (int64_t[]){1, 1, 1, 4});
    run_both(g, (void *[]){x}, (void *[]){y});
    assert_int_equal(n->outputs[0]->shape.dims[2], 1);
    assert_true(y[0] == 5 && y[1] == 3);
    gr_graph_free(g);
}

/* f16 input: ReduceMean and Softmax compute in f32 and round once. */
static void test_f16_reduce_and_softmax(void **state) {
    (void)state;
    uint16_t x[4], y[4];
    const float xf[4] = {1, 2, 3, 4.5f};
    for (int i = 0; i < 4; i++) x[i] = gr_f32_to_f16(xf[i]);
    gr_graph *g = gr_graph_new("f16");
    one_node(g, GR_OP_REDUCE_MEAN, GR_DTYPE_F16, 2, (int64_t[]){2, 2}, 0, NULL, 1);
    run_both(g, (void *[]){x}, (void *[]){y});
    assert_true(gr_f16_to_f32(y[0]) == 2.625f);
    gr_graph_free(g);
    g = gr_graph_new("f16sm");
    one_node(g, GR_OP_SOFTMAX, GR_DTYPE_F16, 2, (int64_t[]){2, 2}, 0, NULL, 1);
    run_both(g, (void *[]){x}, (void *[]){y});
    double want[4] = {1 / (1 + exp(1.0)), 1 / (1 + exp(-1.0)), 1 / (1 + exp(1.5)),
                      1 / (1 + exp(-1.5))};
    for (int i = 0; i < 4; i++) assert_true(fabs(gr_f16_to_f32(y[i]) - want[i]) < 1e-3);
    gr_graph_free(g);
}

/* Integer ArgMax and bool ReduceMax/Min (or / and). */
static void test_integer_argmax_and_bool_reduce(void **state) {
    (void)state;
    int32_t xi[6] = {3, -1, 7, 7, 0, -9};
    int64_t yi[2];
    gr_graph *g = gr_graph_new("argi");
    gr_node *n = one_node(g, GR_OP_ARG_MAX, GR_DTYPE_I32, 2, (int64_t[]){2, 3}, 0, NULL, 1);
    gr_node_set_int(g, n, "axis", 1);
    run_both(g, (void *[]){xi}, (void *[]){yi});
    assert_true(yi[0] == 2 && yi[1] == 0);
    gr_graph_free(g);
    uint8_t xb[6] = {0, 1, 0, 1, 1, 1}, yb[2];
    const gr_op ops[2] = {GR_OP_REDUCE_MAX, GR_OP_REDUCE_MIN};
    const uint8_t want[2][2] = {{1, 1}, {0, 1}};
    for (int i = 0; i < 2; i++) {
        g = gr_graph_new("bool");
        gr_value *av = axes_const(g, 1, (int64_t[]){1});
        one_node(g, ops[i], GR_DTYPE_BOOL, 2, (int64_t[]){2, 3}, 1, &av, 1);
        run_both(g, (void *[]){xb}, (void *[]){yb});
        assert_memory_equal(yb, want[i], 2);
        gr_graph_free(g);
    }
}

/* ---------------------------------------------------------------- prologues */

/* A reduction over an elementwise chain: x:[dims], a and b broadcast
 * operands (trailing ranks ra, rb; extent 1 where bit d of ones_a/ones_b
 * is set, d counted in x's dims). */
typedef struct {
    int rank;
    int64_t dims[4];
    int n_axes;
    int64_t axes[4];
    int keepdims;
    int ra, rb;
    unsigned ones_a, ones_b;
} pro_case;

static void operand_dims(const pro_case *c, int r, unsigned ones, int64_t *out) {
    for (int i = 0; i < r; i++) {
        int d = c->rank - r + i;
        out[i] = (ones >> d) & 1 ? 1 : c->dims[d];
    }
}

/* kind's rk for op (the global pools reduce like ReduceMean/Max). */
static rk kind_of_op(gr_op op) {
    if (op == GR_OP_GLOBAL_AVERAGE_POOL) return R_MEAN;
    if (op == GR_OP_GLOBAL_MAX_POOL) return R_MAX;
    for (int k = 0; k < 10; k++)
        if (reduce_ops[k] == op) return (rk)k;
    return R_SUM;
}

/* Each op of ops reduces its own chain v = (x - a) * b (Exp of it for
 * LogSum and Prod, which want positive values). The "fuse" pass must
 * group every chain with its reduction, codegen compile each group as one
 * kernel, and the results match a double-precision reference, and the
 * unfused kernels within the reduction's rounding (bit for bit for max
 * and min, whose order does not matter). */
static void check_prologue(const pro_case *c, int n_ops, const gr_op *ops) {
    int64_t ad[4], bd[4], numel = 1, n_out = 1;
    int mask[8] = {0};
    for (int i = 0; i < c->n_axes; i++)
        mask[c->axes[i] < 0 ? c->axes[i] + c->rank : c->axes[i]] = 1;
    if (ops[0] == GR_OP_GLOBAL_AVERAGE_POOL || ops[0] == GR_OP_GLOBAL_MAX_POOL)
        for (int i = 2; i < c->rank; i++) mask[i] = 1;
    else if (c->n_axes == 0)
        for (int i = 0; i < c->rank; i++) mask[i] = 1;
    for (int i = 0; i < c->rank; i++) {
        numel *= c->dims[i];
        if (!mask[i]) n_out *= c->dims[i];
    }
    operand_dims(c, c->ra, c->ones_a, ad);
    operand_dims(c, c->rb, c->ones_b, bd);
    int64_t na = 1, nb = 1;
    for (int i = 0; i < c->ra; i++) na *= ad[i];
    for (int i = 0; i < c->rb; i++) nb *= bd[i];
    float *x = malloc((size_t)numel * 4), *a = malloc((size_t)na * 4), *b = malloc((size_t)nb * 4);
    fill(x, numel, -1, 1);
    fill(a, na, -1, 1);
    fill(b, nb, -0.5, 0.5);
    gr_graph *g = gr_graph_new("prologue");
    gr_shape sx = shp(c->rank, c->dims), sa = shp(c->ra, ad), sb = shp(c->rb, bd);
    gr_value *in[3] = {gr_graph_add_input(g, "x", GR_DTYPE_F32, &sx),
                       gr_graph_add_input(g, "a", GR_DTYPE_F32, &sa),
                       gr_graph_add_input(g, "b", GR_DTYPE_F32, &sb)};
    gr_value *av = c->n_axes ? axes_const(g, c->n_axes, c->axes) : NULL;
    gr_node *red[12], *sub[12];
    float *y[12], *y_plain[12];
    for (int k = 0; k < n_ops; k++) {
        rk kind = kind_of_op(ops[k]);
        sub[k] = gr_node_add(g, GR_OP_SUB, NULL, 2, (gr_value *[]){in[0], in[1]}, 1, NULL);
        gr_node *mul = gr_node_add(g, GR_OP_MUL, NULL, 2,
                                   (gr_value *[]){sub[k]->outputs[0], in[2]}, 1, NULL);
        if (kind == R_LOGSUM || kind == R_PROD)
            mul = gr_node_add(g, GR_OP_EXP, NULL, 1, mul->outputs, 1, NULL);
        gr_value *ins[2] = {mul->outputs[0], av};
        red[k] = gr_node_add(g, ops[k], NULL, av ? 2 : 1, ins, 1, NULL);
        if (av) gr_node_set_int(g, red[k], "keepdims", c->keepdims);
        gr_graph_add_output(g, red[k]->outputs[0]);
        y[k] = malloc((size_t)n_out * 4);
        y_plain[k] = malloc((size_t)n_out * 4);
    }
    gr_status st = {0};
    static const char *const fuse[] = {"shapes", "fuse", NULL};
    if (gr_passes_run(g, fuse, &(gr_pass_opts){0}, &st) != GR_OK) fail_msg("%s", st.msg);
    for (int k = 0; k < n_ops; k++) {
        assert_int_not_equal(red[k]->group, 0);
        assert_int_equal(sub[k]->group, red[k]->group);
        assert_int_equal(red[k]->inputs[0]->producer->group, red[k]->group);
    }
    assert_int_equal(run_both(g, (void *[]){x, a, b}, (void *const *)y), n_ops);
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->group = 0;
    assert_true(run_both(g, (void *[]){x, a, b}, (void *const *)y_plain) > n_ops);
    double *v = malloc((size_t)numel * 8), *want = malloc((size_t)n_out * 8);
    for (int k = 0; k < n_ops; k++) {
        rk kind = kind_of_op(ops[k]);
        for (int64_t e = 0; e < numel; e++) {
            double t = ((double)x[e] - a[cg_bcast_offset(c->rank, c->dims, c->ra, ad, e)]) *
                       b[cg_bcast_offset(c->rank, c->dims, c->rb, bd, e)];
            v[e] = kind == R_LOGSUM || kind == R_PROD ? exp(t) : t;
        }
        ref_reduce(kind, v, c->rank, c->dims, mask, want, n_out);
        double atol = 1e-6 + 1e-7 * (double)(numel / n_out);
        expect_close(y[k], want, n_out, 1e-5, atol);
        if (kind == R_MAX || kind == R_MIN)
            assert_memory_equal(y[k], y_plain[k], (size_t)n_out * 4);
        for (int64_t o = 0; o < n_out; o++) want[o] = y_plain[k][o];
        expect_close(y[k], want, n_out, 1e-6, 1e-7 * (double)(numel / n_out));
        free(y[k]);
        free(y_plain[k]);
    }
    gr_graph_free(g);
    free(x);
    free(a);
    free(b);
    free(v);
    free(want);
}

static void test_prologue_every_kind_and_axes(void **state) {
    (void)state;
    const pro_case cases[] = {
        /* last axis, a per row and column, b a trailing row */
        {3, {3, 4, 5}, 1, {2}, 1, 3, 1, 0x2, 0x0},
        /* middle axis; a broadcast along it; b scalar-like [1] */
        {3, {3, 4, 5}, 1, {1}, 0, 3, 1, 0x2, 0x4},
        /* leading axes, keepdims 0, b broadcast along the kept dim */
        {3, {3, 4, 5}, 2, {0, 1}, 0, 2, 2, 0x4, 0x4},
        /* all axes (none given), rank-1 a */
        {4, {2, 3, 1, 7}, 0, {0}, 1, 1, 4, 0x0, 0x5},
        /* long contiguous rows and long kept rows (chunks) */
        {3, {2, 3, 600}, 1, {2}, 0, 3, 2, 0x2, 0x0},
        {3, {2, 3, 600}, 1, {1}, 1, 3, 2, 0x1, 0x4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_prologue(&cases[i], 10, reduce_ops);
    /* GlobalAveragePool(Relu-like chains) as at the end of a CNN: a per
     * channel, b a full residual */
    const pro_case pool = {4, {2, 3, 5, 6}, 0, {0}, 1, 3, 4, 0x3, 0x0};
    const gr_op pools[2] = {GR_OP_GLOBAL_AVERAGE_POOL, GR_OP_GLOBAL_MAX_POOL};
    check_prologue(&pool, 2, pools);
}

/* ------------------------------------------------------------- NaN inputs */

/* x:[4,40] = ((i*37) % 101 - 50) / 4 with NaN at [1,3], [1,20] (the vector
 * part of a row), [2,37] (the scalar tail) and [3,0]. The expected values
 * below were computed by numpy 1.24 (np.max, np.min, np.argmax, np.argmin),
 * whose maximum propagates NaN and whose argmax is the first NaN's index. */
static void nan_rows(float *x) {
    for (int i = 0; i < 160; i++) x[i] = (float)((i * 37) % 101 - 50) / 4;
    x[43] = x[60] = x[117] = x[120] = NAN;
}

static void expect_same(const float *got, const float *want, int n) {
    for (int i = 0; i < n; i++)
        if (!(isnan(want[i]) ? isnan(got[i]) : got[i] == want[i]))
            fail_msg("element %d: got %.9g, expected %.9g", i, got[i], want[i]);
}

static void run_reduce_axis(gr_op op, const float *x, int64_t axis, float *y) {
    gr_graph *g = gr_graph_new("nan");
    gr_value *av = axes_const(g, 1, &axis);
    gr_node *n = one_node(g, op, GR_DTYPE_F32, 2, (int64_t[]){4, 40}, 1, &av, 1);
    gr_node_set_int(g, n, "keepdims", 0);
    run_both(g, (void *[]){(void *)x}, (void *[]){y});
    gr_graph_free(g);
}

static void test_reduce_max_min_propagate_nan(void **state) {
    (void)state;
    static const float max1[4] = {12.5, NAN, NAN, NAN}, min1[4] = {-12.5, NAN, NAN, NAN};
    static const float max0[40] = {
        NAN, 4.5, 6.0, NAN, 7.0, 8.5, 9.0, 9.5, 11.0, 11.5, 12.0, 12.5, 5.25, 6.75,
        7.25, 7.75, 9.25, 9.75, 10.25, 11.75, NAN, 5.0, 5.5, 6.0, 7.5, 8.0, 8.5, 10.0,
        10.5, 11.0, 12.5, 4.25, 5.75, 6.25, 6.75, 8.25, 8.75, NAN, 10.75, 11.25};
    static const float min0[40] = {
        NAN, -12.0, -11.5, NAN, -9.5, -9.0, -8.5, -7.0, -6.5, -6.0, -4.5, -11.75, -11.25,
        -10.75, -10.25, -8.75, -8.25, -7.75, -6.25, -5.75, NAN, -12.5, -12.0, -10.5,
        -10.0, -9.5, -8.0, -7.5, -7.0, -5.5, -5.0, -12.25, -11.75, -11.25, -9.75, -9.25,
        -8.75, NAN, -6.75, -6.25};
    float x[160], y[40];
    nan_rows(x);
    run_reduce_axis(GR_OP_REDUCE_MAX, x, 1, y);
    expect_same(y, max1, 4);
    run_reduce_axis(GR_OP_REDUCE_MIN, x, 1, y);
    expect_same(y, min1, 4);
    run_reduce_axis(GR_OP_REDUCE_MAX, x, 0, y);
    expect_same(y, max0, 40);
    run_reduce_axis(GR_OP_REDUCE_MIN, x, 0, y);
    expect_same(y, min0, 40);
    /* a long row (vectors of 8 x 4 accumulators) with one NaN in its middle */
    float *big = malloc(3 * 2500 * sizeof(float)), yb[3];
    for (int i = 0; i < 7500; i++) big[i] = (float)(i % 977);
    big[2500 + 1234] = NAN;
    gr_graph *g = gr_graph_new("long");
    int64_t axis = 1;
    gr_value *av = axes_const(g, 1, &axis);
    gr_node *n = one_node(g, GR_OP_REDUCE_MAX, GR_DTYPE_F32, 2, (int64_t[]){3, 2500}, 1, &av, 1);
    gr_node_set_int(g, n, "keepdims", 0);
    run_both(g, (void *[]){big}, (void *[]){yb});
    assert_true(yb[0] == 976 && isnan(yb[1]) && yb[2] == 976);
    gr_graph_free(g);
    free(big);
}

static void test_argmax_argmin_pick_the_first_nan(void **state) {
    (void)state;
    static const int64_t amax0[40] = {3, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 2, 0, 1, 2, 0, 1, 2, 0,
                                      1, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2, 0, 1, 2, 0, 1, 2, 0, 1};
    static const int64_t amin0[40] = {3, 1, 2, 1, 1, 2, 3, 1, 2, 3, 1, 0, 1, 2, 3, 1, 2, 3, 1, 2,
                                      1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 1, 2, 3, 1, 2, 3, 2, 2, 3};
    float x[160];
    int64_t y[40];
    nan_rows(x);
    run_arg(GR_OP_ARG_MAX, x, 2, (int64_t[]){4, 40}, 1, 0, 0, y);
    assert_true(y[0] == 30 && y[1] == 3 && y[2] == 37 && y[3] == 0);
    run_arg(GR_OP_ARG_MIN, x, 2, (int64_t[]){4, 40}, 1, 0, 0, y);
    assert_true(y[0] == 0 && y[1] == 3 && y[2] == 37 && y[3] == 0);
    run_arg(GR_OP_ARG_MAX, x, 2, (int64_t[]){4, 40}, 0, 0, 0, y);
    assert_memory_equal(y, amax0, sizeof amax0);
    run_arg(GR_OP_ARG_MIN, x, 2, (int64_t[]){4, 40}, 0, 0, 0, y);
    assert_memory_equal(y, amin0, sizeof amin0);
    /* select_last_index: the last NaN (row 1 has two) */
    run_arg(GR_OP_ARG_MAX, x, 2, (int64_t[]){4, 40}, 1, 0, 1, y);
    assert_true(y[0] == 30 && y[1] == 20 && y[2] == 37 && y[3] == 0);
    run_arg(GR_OP_ARG_MIN, x, 2, (int64_t[]){4, 40}, 1, 0, 1, y);
    assert_true(y[0] == 0 && y[1] == 20 && y[2] == 37 && y[3] == 0);
}

/* x:[1,1,6,9] = ((i*29) % 53 - 26) / 2 with NaN at (1,1), (4,7), (4,8):
 * values and indices from PyTorch 1.13's max_pool2d(return_indices=True),
 * which, like numpy's max, propagates NaN and points at the window's last
 * NaN in scan order (as MaxPoolGrad's choice, train_pool.c). */
static void test_max_pool_propagates_nan(void **state) {
    (void)state;
    static const float v3[54] = {
        NAN, NAN, NAN, 4.0, 6.5, 6.5, 9.0, 9.0, 9.0, NAN, NAN, NAN, 12.0, 6.5,
        6.5, 9.0, 9.0, 9.0, NAN, NAN, NAN, 12.5, 12.5, 12.5, 7.0, 7.0, 7.0, 9.5,
        12.0, 12.0, 12.5, 12.5, 13.0, NAN, NAN, NAN, 7.5, 10.0, 10.0, 12.5, 12.5,
        13.0, NAN, NAN, NAN, 5.5, 8.0, 8.0, 10.5, 10.5, 13.0, NAN, NAN, NAN};
    static const int64_t i3[54] = {
        10, 10, 10, 3, 5, 5, 7, 7, 7, 10, 10, 10, 20, 5, 5, 7, 7, 7, 10, 10, 10, 31, 31, 31,
        16, 16, 16, 18, 20, 20, 31, 31, 42, 43, 44, 44, 27, 29, 29, 31, 31, 42, 43, 44, 44,
        36, 38, 38, 40, 40, 42, 43, 44, 44};
    static const float v2[12] = {NAN, 4.0, 6.5, 9.0, 9.5, 12.0, 12.5, 5.0, 5.5, 8.0, 10.5, NAN};
    static const int64_t i2[12] = {10, 3, 5, 7, 18, 20, 31, 25, 36, 38, 40, 43};
    float x[54], y[54], yv[54];
    int64_t ind[54];
    for (int i = 0; i < 54; i++) x[i] = (float)((i * 29) % 53 - 26) / 2;
    x[10] = x[43] = x[44] = NAN;
    pool_cfg c3 = {GR_OP_MAX_POOL, 2, {3, 3}, {1, 1}, {0}, {1, 1, 1, 1}, NULL, 0, 0, 0, 1};
    pool_cfg c2 = {GR_OP_MAX_POOL, 2, {2, 2}, {2, 2}, {0}, {0}, NULL, 0, 0, 0, 1};
    const pool_cfg *cfg[2] = {&c3, &c2};
    for (int t = 0; t < 2; t++) {
        for (int with = 0; with < 2; with++) {
            pool_cfg c = *cfg[t];
            c.with_indices = with;
            gr_graph *g = gr_graph_new("pool");
            pool_node(g, &c, GR_DTYPE_F32, (int64_t[]){1, 1, 6, 9});
            run_both(g, (void *[]){x}, with ? (void *[]){y, ind} : (void *[]){yv});
            gr_graph_free(g);
        }
        expect_same(y, t ? v2 : v3, t ? 12 : 54);
        expect_same(yv, t ? v2 : v3, t ? 12 : 54);
        assert_memory_equal(ind, t ? i2 : i3, (t ? 12 : 54) * sizeof(int64_t));
    }
    /* GlobalMaxPool: channel 0 holds a NaN, channel 1 does not */
    float gx[18], gy[2];
    for (int i = 0; i < 18; i++) gx[i] = (float)i;
    gx[4] = NAN;
    gr_graph *g = gr_graph_new("gmp");
    one_node(g, GR_OP_GLOBAL_MAX_POOL, GR_DTYPE_F32, 4, (int64_t[]){1, 2, 3, 3}, 0, NULL, 1);
    run_both(g, (void *[]){gx}, (void *[]){gy});
    assert_true(isnan(gy[0]) && gy[1] == 17);
    gr_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce_every_kind_inner_middle_outer_and_all_axes),
        cmocka_unit_test(test_reduce_sum_spec_example),
        cmocka_unit_test(test_reduce_integer_and_f64),
        cmocka_unit_test(test_reduce_noop_with_empty_axes_copies),
        cmocka_unit_test(test_reduce_empty_set),
        cmocka_unit_test(test_reduce_runtime_axes_unsupported),
        cmocka_unit_test(test_argmax_argmin_spec_examples),
        cmocka_unit_test(test_argmax_argmin_random_every_axis),
        cmocka_unit_test(test_softmax_spec_examples),
        cmocka_unit_test(test_softmax_random_every_axis),
        cmocka_unit_test(test_layer_norm_every_axis_with_stats),
        cmocka_unit_test(test_batch_norm_spec_example_and_training_unsupported),
        cmocka_unit_test(test_instance_norm_example),
        cmocka_unit_test(test_lrn_against_definition),
        cmocka_unit_test(test_pool_spec_examples),
        cmocka_unit_test(test_pool_ceil_and_dilation_examples),
        cmocka_unit_test(test_max_pool_uint8),
        cmocka_unit_test(test_pool_configurations_against_reference),
        cmocka_unit_test(test_global_pools),
        cmocka_unit_test(test_max_pool_window_past_input_is_clipped),
        cmocka_unit_test(test_f16_reduce_and_softmax),
        cmocka_unit_test(test_integer_argmax_and_bool_reduce),
        cmocka_unit_test(test_prologue_every_kind_and_axes),
        cmocka_unit_test(test_reduce_max_min_propagate_nan),
        cmocka_unit_test(test_argmax_argmin_pick_the_first_nan),
        cmocka_unit_test(test_max_pool_propagates_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL) != 0;
}
