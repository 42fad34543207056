/* test_codegen_inplace.c: in-place buffers (codegen/jit.c, "in place").
 * Small graphs are compiled with the JIT; the plan must put an elementwise
 * kernel's output in the buffer of an input that dies there (same arena
 * offset, one kernel argument for both) exactly when that is legal, and
 * keep separate buffers when the input is read later, is broadcast, has
 * another dtype, or is a graph input, output or constant. Every plan is run
 * (tasks in 1 and 3 pieces) against double-precision references computed
 * here from the ops' definitions. */
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

#define N 210 /* elements of the [2,3,5,7] tensors */

static const int64_t dims4[4] = {2, 3, 5, 7};

static gr_value *input(gr_graph *g, const char *name, gr_dtype dt, int rank,
                       const int64_t *dims) {
    gr_shape s = gr_shape_make(rank, dims);
    gr_value *v = gr_graph_add_input(g, name, dt, &s);
    assert_non_null(v);
    return v;
}

/* A graph with f32 inputs x and y of shape dims4. */
static gr_graph *xy_graph(const char *name, gr_value **x, gr_value **y) {
    gr_graph *g = gr_graph_new(name);
    assert_non_null(g);
    *x = input(g, "x", GR_DTYPE_F32, 4, dims4);
    *y = input(g, "y", GR_DTYPE_F32, 4, dims4);
    return g;
}

/* op(a[, b]) -> its output (named name). */
static gr_value *op(gr_graph *g, gr_op o, const char *name, gr_value *a, gr_value *b) {
    gr_value *ins[2] = {a, b};
    const char *out[1] = {name};
    gr_node *n = gr_node_add(g, o, name, b ? 2 : 1, ins, 1, out);
    assert_non_null(n);
    return n->outputs[0];
}

static gr_plan *compile(gr_graph *g) {
    gr_status st = {0};
    gr_plan *p = NULL;
    gr_codegen_opts opts = {0};
    if (gr_graph_infer_shapes(g, &st) != GR_OK) fail_msg("shapes: %s", st.msg);
    if (gr_codegen_jit(g, &opts, &p, &st) != GR_OK) fail_msg("compile: %s", st.msg);
    return p;
}

static const gr_buffer *buffer(const gr_plan *p, const char *name) {
    int b = gr_plan_find_buffer(p, name);
    if (b < 0) fail_msg("no buffer '%s' in the plan", name);
    return &p->buffers[b];
}

/* Whether the arena buffers of values a and b start at the same offset. */
static int shared(const gr_plan *p, const char *a, const char *b) {
    const gr_buffer *x = buffer(p, a), *y = buffer(p, b);
    assert_int_equal(x->kind, GR_BUF_ARENA);
    assert_int_equal(y->kind, GR_BUF_ARENA);
    return x->offset == y->offset;
}

/* Step i (one per node, in node order, in these graphs) has n_args
 * buffer arguments, the first being value first's buffer. */
static void expect_step(const gr_plan *p, int i, int n_args, const char *first) {
    assert_true(i < p->n_steps);
    assert_int_equal(p->steps[i].n_args, n_args);
    assert_int_equal(p->steps[i].args[0], gr_plan_find_buffer(p, first));
}

/* Runs p with 1 and 3 splits on x, y; the single output must match
 * want[i] within a few float ulps (f32 exp and sigmoid are accurate to a
 * few ulps), the same bits either way. */
static void check(const gr_plan *p, const float *x, const float *y, const double *want,
                  int64_t n) {
    float *o1 = calloc((size_t)n, sizeof(float)), *o3 = calloc((size_t)n, sizeof(float));
    cg_run_plan(p, (void *[]){(void *)x, (void *)y}, (void *[]){o1}, 1);
    cg_run_plan(p, (void *[]){(void *)x, (void *)y}, (void *[]){o3}, 3);
    assert_memory_equal(o1, o3, (size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(o1[i] - want[i]) <= 1e-6 * fabs(want[i]) + 1e-30))
            fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, o1[i], want[i]);
    free(o1);
    free(o3);
}

/* Runs p (then frees it and g) on x, y of N elements each against
 * want[i] = ref(x[i], y[i], i) (see check). */
static void check_ref(gr_plan *p, gr_graph *g, double (*ref)(double x, double y, int i)) {
    float x[N], y[N];
    double want[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)(((i * 37) % 101) - 50) / 16.0f;
        y[i] = (float)(((i * 53) % 89) - 40) / 32.0f;
        want[i] = ref(x[i], y[i], i);
    }
    check(p, x, y, want, N);
    gr_plan_free(p);
    gr_graph_free(g);
}

static double sigmoid(double v) { return 1 / (1 + exp(-v)); }
static double relu(double v) { return v > 0 ? v : 0; }
static double const_c(int i) { return (double)(i % 11) - 5; }
static double ref_chain(double x, double y, int i) { return (void)i, -sigmoid(relu(x + y)); }
static double ref_group(double x, double y, int i) {
    return (void)i, exp(sigmoid(relu(x + y)) * x);
}
static double ref_later(double x, double y, int i) { return (void)i, -(relu(x + y) - (x + y)); }
/* (f32(x + y) * y) + relu(x + y), rounded to f32 as compiled */
static double ref_view(double x, double y, int i) {
    double a = (float)(x + y);
    return (void)i, (double)(float)(a * y) + relu(a);
}
static double ref_twice(double x, double y, int i) { return (void)i, -2 * (double)(float)(x + y); }
/* relu((relu(x) + relu(c)) * y), the sum rounded to f32 as compiled */
static double ref_io(double x, double y, int i) {
    return relu((double)(float)(relu(x) + relu(const_c(i))) * y);
}

/* ------------------------------------------------------------------- tests */

/* a = Add(x, y), r = Relu(a), s = Sigmoid(r), out = Neg(s): r takes a's
 * buffer and s takes r's (each dies in its reader); out is the output. */
static void test_chain_runs_in_place(void **state) {
    (void)state;
    gr_value *x, *y;
    gr_graph *g = xy_graph("chain", &x, &y);
    gr_value *s = op(g, GR_OP_SIGMOID, "s", op(g, GR_OP_RELU, "r", op(g, GR_OP_ADD, "a", x, y), NULL), NULL);
    gr_graph_add_output(g, op(g, GR_OP_NEG, "out", s, NULL));
    gr_plan *p = compile(g);
    assert_true(shared(p, "a", "r"));
    assert_true(shared(p, "r", "s"));
    /* one pointer for both: Relu's and Sigmoid's kernels take one buffer */
    expect_step(p, 0, 3, "x");
    expect_step(p, 1, 1, "a");
    expect_step(p, 2, 1, "r");
    expect_step(p, 3, 2, "s");
    assert_true(p->arena_bytes < p->arena_separate);
    check_ref(p, g, ref_chain);
}

/* The same chain as one fusion group (Relu, Sigmoid, Mul by x) over the
 * arena value a = Add(x, y): the group's output takes a's buffer. */
static void test_fused_group_runs_in_place(void **state) {
    (void)state;
    gr_value *x, *y;
    gr_graph *g = xy_graph("group", &x, &y);
    gr_value *a = op(g, GR_OP_ADD, "a", x, y);
    gr_value *r = op(g, GR_OP_RELU, "r", a, NULL), *s = op(g, GR_OP_SIGMOID, "s", r, NULL);
    gr_value *m = op(g, GR_OP_MUL, "m", s, x);
    r->producer->group = s->producer->group = m->producer->group = 1;
    gr_graph_add_output(g, op(g, GR_OP_EXP, "out", m, NULL));
    gr_plan *p = compile(g);
    assert_int_equal(p->n_steps, 3); /* Add, the group, Exp */
    assert_true(shared(p, "a", "m"));
    expect_step(p, 1, 2, "a"); /* a (and m), x */
    check_ref(p, g, ref_group);
}

/* a is read again after Relu(a): r needs a buffer of its own. */
static void test_input_read_later_keeps_its_buffer(void **state) {
    (void)state;
    gr_value *x, *y;
    gr_graph *g = xy_graph("later", &x, &y);
    gr_value *a = op(g, GR_OP_ADD, "a", x, y);
    gr_value *r = op(g, GR_OP_RELU, "r", a, NULL);
    gr_value *t = op(g, GR_OP_SUB, "t", r, a); /* relu(a) - a: t may take r's or a's */
    gr_graph_add_output(g, op(g, GR_OP_NEG, "out", t, NULL));
    gr_plan *p = compile(g);
    assert_false(shared(p, "a", "r"));
    expect_step(p, 1, 2, "a");
    assert_true(shared(p, "t", "r") || shared(p, "t", "a"));
    check_ref(p, g, ref_later);
}

/* b = Exp(y[1,3,1,7]) is broadcast over x[2,3,5,7] by Mul: not in place;
 * c = Cast(a) to f64 (other dtype, other size) and Cast to i32 (other
 * dtype, same size) are not either. */
static void test_broadcast_and_other_dtypes_keep_separate_buffers(void **state) {
    (void)state;
    static const int64_t small[4] = {1, 3, 1, 7};
    gr_graph *g = gr_graph_new("separate");
    gr_value *x = input(g, "x", GR_DTYPE_F32, 4, dims4), *y = input(g, "y", GR_DTYPE_F32, 4, small);
    gr_value *b = op(g, GR_OP_EXP, "b", y, NULL);
    gr_value *m = op(g, GR_OP_MUL, "m", x, b);
    gr_value *a = op(g, GR_OP_NEG, "a", m, NULL); /* in place of m */
    gr_node *c = op(g, GR_OP_CAST, "c", a, NULL)->producer;
    assert_int_equal(gr_node_set_int(g, c, "to", GR_DTYPE_F64), GR_OK);
    gr_node *i = op(g, GR_OP_CAST, "i", a, NULL)->producer;
    assert_int_equal(gr_node_set_int(g, i, "to", GR_DTYPE_I32), GR_OK);
    gr_value *ci = op(g, GR_OP_CAST, "ci", i->outputs[0], NULL);
    assert_int_equal(gr_node_set_int(g, ci->producer, "to", GR_DTYPE_F64), GR_OK);
    gr_value *sum = op(g, GR_OP_ADD, "sum", c->outputs[0], ci);
    gr_node *out = op(g, GR_OP_CAST, "out", sum, NULL)->producer;
    assert_int_equal(gr_node_set_int(g, out, "to", GR_DTYPE_F32), GR_OK);
    gr_graph_add_output(g, out->outputs[0]);
    gr_plan *p = compile(g);
    assert_false(shared(p, "b", "m"));
    assert_true(shared(p, "m", "a"));
    assert_false(shared(p, "a", "i"));
    assert_false(shared(p, "a", "c"));
    assert_true(shared(p, "c", "sum") || shared(p, "ci", "sum"));
    expect_step(p, 2, 1, "m");
    expect_step(p, 4, 2, "a");
    float xv[N], yv[21];
    double want[N];
    for (int k = 0; k < N; k++) xv[k] = (float)(((k * 37) % 101) - 50) / 16.0f;
    for (int k = 0; k < 21; k++) yv[k] = (float)(k - 10) / 8.0f;
    for (int k = 0; k < N; k++) {
        int ch = k / 35 % 3, w = k % 7;
        double av = -(double)xv[k] * exp(yv[ch * 7 + w]);
        want[k] = av + trunc(av);
    }
    check(p, xv, yv, want, N);
    gr_plan_free(p);
    gr_graph_free(g);
}

/* Relu of a graph input, of a constant, and into a graph output: none of
 * those buffers is the arena, so nothing is shared, and the in-place Relu
 * kernel (one argument) is not reused for the others (two arguments). */
static void test_inputs_outputs_and_constants_are_not_taken(void **state) {
    (void)state;
    gr_value *x, *y;
    gr_graph *g = xy_graph("io", &x, &y);
    float cv[N];
    for (int i = 0; i < N; i++) cv[i] = (float)const_c(i);
    gr_shape s = gr_shape_make(4, dims4);
    gr_value *c = gr_graph_add_data(g, GR_VALUE_CONST, "c", GR_DTYPE_F32, &s, cv);
    gr_value *rx = op(g, GR_OP_RELU, "rx", x, NULL);
    gr_value *rc = op(g, GR_OP_RELU, "rc", c, NULL);
    gr_value *a = op(g, GR_OP_ADD, "a", rx, rc); /* takes rx's */
    gr_value *ra = op(g, GR_OP_RELU, "ra", a, NULL); /* takes a's */
    gr_value *t = op(g, GR_OP_MUL, "t", ra, y);
    gr_graph_add_output(g, op(g, GR_OP_RELU, "out", t, NULL)); /* writes the output */
    gr_plan *p = compile(g);
    assert_int_equal(buffer(p, "out")->kind, GR_BUF_OUTPUT);
    expect_step(p, 0, 2, "x");
    expect_step(p, 1, 2, "c");
    expect_step(p, 3, 1, "a");
    expect_step(p, 5, 2, "t");
    assert_true(shared(p, "rx", "a") && shared(p, "a", "ra") && shared(p, "ra", "t"));
    assert_false(shared(p, "rx", "rc"));
    assert_ptr_not_equal(p->steps[3].fn, p->steps[0].fn);
    assert_ptr_equal(p->steps[1].fn, p->steps[0].fn); /* the same code, reused */
    check_ref(p, g, ref_io);
}

/* Views: v = Flatten(a) is a's buffer, without a kernel; a is read after
 * Relu(v), so r takes a block of its own; t = Mul(a, y) takes a's block
 * (v is dead); f = Flatten(t) is t's. out = f + r. */
static void test_flatten_is_a_view(void **state) {
    (void)state;
    gr_value *x, *y;
    gr_graph *g = xy_graph("view", &x, &y);
    gr_value *a = op(g, GR_OP_ADD, "a", x, y);
    gr_value *v = op(g, GR_OP_FLATTEN, "v", a, NULL);
    gr_value *r = op(g, GR_OP_RELU, "r", v, NULL);
    gr_value *t = op(g, GR_OP_MUL, "t", a, y);
    gr_value *f = op(g, GR_OP_FLATTEN, "f", t, NULL);
    gr_graph_add_output(g, op(g, GR_OP_ADD, "out", f, r));
    gr_plan *p = compile(g);
    assert_int_equal(p->n_steps, 4); /* Add, Relu, Mul, Add: no Flatten */
    assert_true(shared(p, "a", "v"));
    assert_false(shared(p, "v", "r"));
    assert_true(shared(p, "a", "t"));
    assert_true(shared(p, "t", "f"));
    check_ref(p, g, ref_view);
}

/* z = Add(a, Identity(a)): Identity is a view of a, so z must not take
 * that memory (the kernel would read it through a second pointer). */
static void test_view_read_beside_its_source_keeps_separate(void **state) {
    (void)state;
    gr_value *x, *y;
    gr_graph *g = xy_graph("alias", &x, &y);
    gr_value *a = op(g, GR_OP_ADD, "a", x, y);
    gr_value *z = op(g, GR_OP_ADD, "z", a, op(g, GR_OP_IDENTITY, "v", a, NULL));
    gr_graph_add_output(g, op(g, GR_OP_NEG, "out", z, NULL));
    gr_plan *p = compile(g);
    assert_int_equal(p->n_steps, 3);
    assert_true(shared(p, "a", "v"));
    assert_false(shared(p, "v", "z"));
    expect_step(p, 1, 2, "a"); /* a and v: one pointer; z */
    check_ref(p, g, ref_twice);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_runs_in_place),
        cmocka_unit_test(test_fused_group_runs_in_place),
        cmocka_unit_test(test_input_read_later_keeps_its_buffer),
        cmocka_unit_test(test_broadcast_and_other_dtypes_keep_separate_buffers),
        cmocka_unit_test(test_inputs_outputs_and_constants_are_not_taken),
        cmocka_unit_test(test_flatten_is_a_view),
        cmocka_unit_test(test_view_read_beside_its_source_keeps_separate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
