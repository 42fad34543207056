/* test_lr_groups.c: per-layer learning rates (--lr-group, --layer-decay)
 * and L2-SP (--l2sp), against references graft did not compute: a
 * parameter of factor 0 keeps its bits, factor 2 moves exactly twice as
 * far as factor 1 under SGD, AdamW's first step against its closed form,
 * several steps of every optimizer against PyTorch's algorithms with
 * per-group learning rates,
 * the layer groups of the golden CNN and transformer against their
 * PyTorch definitions (scripts/make-goldens.py), the penalty's gradient
 * against finite differences and its value against a direct computation. */
#define _POSIX_C_SOURCE 200809L /* strdup in grad_check.h */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frontend/gr_frontend.h"
#include "tests/grad_check.h"

#define GOLDEN GRAFT_SOURCE_DIR "/tests/data/golden"

/* ------------------------------------------------------------------ helpers */

static void run_passes(gr_graph *g, const char *const *names, const gr_train_opts *t) {
    gr_pass_opts po = {0};
    po.train = t;
    gr_status st = {0};
    if (gr_passes_run(g, names, &po, &st) != GR_OK) fail_msg("%s", st.msg);
}

static gr_plan *compile(gr_graph *g) {
    static const char *const tail[] = {"cse", "fold", "dce", "fuse", NULL};
    run_passes(g, tail, NULL);
    gr_plan *p = NULL;
    gr_codegen_opts co = {0};
    gr_status st = {0};
    if (gr_codegen_jit(g, &co, &p, &st) != GR_OK) fail_msg("codegen: %s", st.msg);
    return p;
}

static float *state_of(gr_plan *p, gr_session *s, const char *name) {
    int b = gr_plan_find_buffer(p, name);
    if (b < 0) fail_msg("no buffer '%s'", name);
    float *d = gr_session_state(s, b);
    assert_non_null(d);
    return d;
}

static gr_value *node(gr_graph *g, gr_op op, gr_value *a, gr_value *b) {
    gr_value *in[2] = {a, b};
    gr_node *n = gr_node_add(g, op, NULL, b ? 2 : 1, in, 1, NULL);
    assert_non_null(n);
    if (op == GR_OP_REDUCE_SUM_SQUARE || op == GR_OP_REDUCE_SUM)
        assert_int_equal(gr_node_set_int(g, n, "keepdims", 0), GR_OK);
    gr_status st = {0};
    if (gr_node_infer(g, n, &st) != GR_OK) fail_msg("%s", st.msg);
    return n->outputs[0];
}

static gr_value *constant(gr_graph *g, int rank, const int64_t *dims, unsigned seed) {
    gr_shape s = gr_shape_make(rank, dims);
    gr_value *c = gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_F32, &s, NULL);
    gr_rng r;
    gr_rng_seed(&r, seed);
    float *d = c->data;
    for (int64_t i = 0; i < gr_value_numel(c); i++) d[i] = (float)(2 * gr_rng_uniform(&r) - 1);
    return c;
}

/* ------------------------------------------------------------- toy model
 * x [4,3] -> MatMul W1 [3,5] + b1 -> Tanh -> MatMul W2 [5,2] + b2 -> y;
 * loss = sum((y - T)^2). W1, b1 are the model's (pretrained), W2, b2 a new
 * head. The loss is output 0 and g->loss (as the "loss" pass leaves it). */
enum { TOY_N = 4, TOY_IN = 3, TOY_H = 5, TOY_OUT = 2 };
static const char *const toy_names[] = {"W1", "b1", "W2", "b2"};

static gr_graph *toy_model(void) {
    gr_graph *g = gr_graph_new("toy");
    int64_t x_dims[2] = {TOY_N, TOY_IN}, w1[2] = {TOY_IN, TOY_H}, b1[1] = {TOY_H};
    int64_t w2[2] = {TOY_H, TOY_OUT}, b2[1] = {TOY_OUT}, t_dims[2] = {TOY_N, TOY_OUT};
    gr_value *x = constant(g, 2, x_dims, 1), *t = constant(g, 2, t_dims, 2);
    gr_value *p[4] = {grad_param(g, "W1", 2, w1, -1, 1, 3), grad_param(g, "b1", 1, b1, -1, 1, 4),
                      grad_param(g, "W2", 2, w2, -1, 1, 5), grad_param(g, "b2", 1, b2, -1, 1, 6)};
    p[2]->origin = p[3]->origin = GR_ORIGIN_HEAD;
    gr_value *h = node(g, GR_OP_TANH, node(g, GR_OP_ADD, node(g, GR_OP_MATMUL, x, p[0]), p[1]),
                       NULL);
    gr_value *y = node(g, GR_OP_ADD, node(g, GR_OP_MATMUL, h, p[2]), p[3]);
    gr_value *loss = node(g, GR_OP_REDUCE_SUM_SQUARE, node(g, GR_OP_SUB, y, t), NULL);
    assert_int_equal(gr_graph_add_output(g, loss), GR_OK);
    g->loss = loss;
    return g;
}

/* The toy model's training step under t. */
static gr_plan *toy_step(const gr_train_opts *t) {
    gr_graph *g = toy_model();
    static const char *const pipeline[] = {"l2sp", "autodiff", "optimizer", NULL};
    run_passes(g, pipeline, t);
    gr_plan *p = compile(g);
    gr_graph_free(g);
    return p;
}

/* Runs `steps` steps with the run-time scalars of gr_passes.h. */
static void run_steps(gr_plan *p, gr_session *s, const gr_train_opts *t, double lr, int steps) {
    for (int k = 1; k <= steps; k++) {
        float lr_f = (float)lr, damp = 1; /* dampening 0 */
        float step_size = (float)(lr / (1 - pow(t->beta1, k)));
        float bc2 = (float)sqrt(1 - pow(t->beta2, k)), decay = (float)(1 - lr * t->weight_decay);
        const char *names[] = {"graft.lr", "graft.damp", "graft.step_size", "graft.bc2_sqrt",
                               "graft.decay"};
        float *values[] = {&lr_f, &damp, &step_size, &bc2, &decay};
        void *inputs[8] = {0};
        for (int i = 0; i < p->n_inputs; i++)
            for (int j = 0; j < 5; j++)
                if (!strcmp(p->buffers[p->inputs[i]].name, names[j])) inputs[i] = values[j];
        float loss;
        void *outputs[1] = {&loss};
        gr_status st = {0};
        if (gr_session_run(s, inputs, outputs, &st) != GR_OK) fail_msg("%s", st.msg);
    }
}

/* The toy parameters after `steps` steps under t (out: 4 arrays). */
static void toy_train(const gr_train_opts *t, double lr, int steps, float out[4][16]) {
    gr_plan *p = toy_step(t);
    gr_session *s = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    run_steps(p, s, t, lr, steps);
    for (int k = 0; k < 4; k++) {
        int b = gr_plan_find_buffer(p, toy_names[k]);
        memcpy(out[k], state_of(p, s, toy_names[k]), p->buffers[b].nbytes);
    }
    gr_session_free(s);
    gr_plan_free(p);
}

static const int toy_sizes[4] = {TOY_IN * TOY_H, TOY_H, TOY_H * TOY_OUT, TOY_OUT};

/* The toy parameters' initial values. */
static void toy_initial(float out[4][16]) {
    gr_graph *g = toy_model();
    for (int k = 0; k < 4; k++) {
        const gr_value *v = gr_graph_find(g, toy_names[k]);
        memcpy(out[k], v->data, v->nbytes);
    }
    gr_graph_free(g);
}

/* ------------------------------------------------------- learning rates */

static void check_factor_zero(gr_train_opts *t, const char *what) {
    static const gr_lr_group frozen_w1[] = {{"W1", 0}};
    t->n_lr_groups = 1;
    t->lr_groups = frozen_w1;
    float w0[4][16], w[4][16];
    toy_initial(w0);
    toy_train(t, 0.05, 3, w);
    if (memcmp(w[0], w0[0], sizeof(float) * toy_sizes[0]))
        fail_msg("%s: W1 (factor 0) moved", what);
    for (int k = 1; k < 4; k++)
        if (!memcmp(w[k], w0[k], sizeof(float) * toy_sizes[k]))
            fail_msg("%s: %s (factor 1) did not move", what, toy_names[k]);
    gr_plan *p = toy_step(t);
    assert_true(gr_plan_find_buffer(p, "W1.momentum") < 0 && gr_plan_find_buffer(p, "W1.m") < 0);
    gr_plan_free(p);
}

static void test_factor_zero_parameter_does_not_move(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.momentum = 0.9, t.weight_decay = 0.1;
    check_factor_zero(&t, "sgd momentum weight decay");
    gr_train_opts_default(&t);
    t.optimizer = GR_OPTIMIZER_ADAM, t.weight_decay = 0.1;
    check_factor_zero(&t, "adam");
    t.optimizer = GR_OPTIMIZER_ADAMW;
    t.clip_norm = 0.5; /* W1's gradient still counts in the global norm */
    check_factor_zero(&t, "adamw clipped");
}

/* One SGD step (no momentum): factor 2 moves W1 exactly twice as far as
 * factor 1 (up to the rounding of w - d), and leaves the others' steps
 * bit for bit as they are; an explicit factor 1 changes nothing. */
static void test_factor_two_moves_twice_as_far_under_sgd(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    float w0[4][16], base[4][16], twice[4][16], one[4][16];
    toy_initial(w0);
    toy_train(&t, 0.1, 1, base);
    static const gr_lr_group two[] = {{"W1", 2}}, unit[] = {{"*", 1}};
    t.n_lr_groups = 1, t.lr_groups = two;
    toy_train(&t, 0.1, 1, twice);
    t.lr_groups = unit;
    toy_train(&t, 0.1, 1, one);
    for (int i = 0; i < toy_sizes[0]; i++) {
        double d1 = (double)base[0][i] - w0[0][i], d2 = (double)twice[0][i] - w0[0][i];
        assert_true(fabs(d1) > 1e-4);
        if (fabs(d2 - 2 * d1) > 4 * 6e-8 * fmax(1, fabs(w0[0][i])))
            fail_msg("W1[%d]: moved %.9g at factor 2, %.9g at factor 1", i, d2, d1);
    }
    for (int k = 1; k < 4; k++) assert_memory_equal(twice[k], base[k], sizeof(float) * toy_sizes[k]);
    for (int k = 0; k < 4; k++) assert_memory_equal(one[k], base[k], sizeof(float) * toy_sizes[k]);
}

/* AdamW's first step with lr*f as PyTorch's param group computes it:
 * w1 = w0 (1 - lr f wd) - lr f g / (|g| + eps), and g / |g| is the sign of
 * the plain SGD step's direction. */
static void test_adamw_factor_scales_step_and_decay(void **state) {
    (void)state;
    const double lr = 0.01, f = 3, wd = 0.1;
    gr_train_opts t;
    gr_train_opts_default(&t);
    float w0[4][16], sgd[4][16], adamw[4][16];
    toy_initial(w0);
    toy_train(&t, lr, 1, sgd);
    static const gr_lr_group three[] = {{"W1", 3}};
    t.optimizer = GR_OPTIMIZER_ADAMW, t.weight_decay = wd;
    t.n_lr_groups = 1, t.lr_groups = three;
    toy_train(&t, lr, 1, adamw);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < toy_sizes[k]; i++) {
            double fk = k == 0 ? f : 1, sign = sgd[k][i] < w0[k][i] ? 1 : -1;
            double want = w0[k][i] * (1 - lr * fk * wd) - lr * fk * sign;
            if (fabs(adamw[k][i] - want) > 1e-6)
                fail_msg("%s[%d]: %.9g after one AdamW step, expected %.9g", toy_names[k], i,
                         (double)adamw[k][i], want);
        }
}

/* Several steps of every optimizer: L = sum(a*a*c) + sum(b*b*c) with
 * factors 0.5 (a) and 3 (b) against PyTorch's algorithms run here in
 * double precision with lr * factor per parameter (param groups). */
enum { QN = 4 };
static const float q_a0[QN] = {0.5f, -1.0f, 2.0f, 0.25f}, q_b0[QN] = {-0.75f, 1.5f, 0.3f, -2.0f};
static const float q_c[QN] = {1.0f, 0.5f, -0.3f, 2.0f};

static gr_plan *quadratic_step(const gr_train_opts *t) {
    gr_graph *g = gr_graph_new("quadratic");
    int64_t n = QN;
    gr_shape s = gr_shape_make(1, &n);
    gr_value *c = gr_graph_add_data(g, GR_VALUE_CONST, "c", GR_DTYPE_F32, &s, q_c), *loss = NULL;
    const char *names[2] = {"a", "b"};
    const float *init[2] = {q_a0, q_b0};
    for (int k = 0; k < 2; k++) {
        gr_value *w = gr_graph_add_data(g, GR_VALUE_PARAM, names[k], GR_DTYPE_F32, &s, init[k]);
        w->variable = w->trainable = 1;
        gr_value *term = node(g, GR_OP_REDUCE_SUM, node(g, GR_OP_MUL, node(g, GR_OP_MUL, w, w), c),
                              NULL);
        loss = loss ? node(g, GR_OP_ADD, loss, term) : term;
    }
    assert_int_equal(gr_graph_add_output(g, loss), GR_OK);
    g->loss = loss;
    static const char *const pipeline[] = {"autodiff", "optimizer", NULL};
    run_passes(g, pipeline, t);
    gr_plan *p = compile(g);
    gr_graph_free(g);
    return p;
}

/* torch.optim's documented step for one parameter of lr `lr`. */
static void reference_steps(const gr_train_opts *t, double lr, int steps, const float *w0,
                            double *w) {
    double buf[QN] = {0}, m[QN] = {0}, v[QN] = {0};
    for (int i = 0; i < QN; i++) w[i] = w0[i];
    for (int k = 1; k <= steps; k++)
        for (int i = 0; i < QN; i++) {
            double g = 2 * w[i] * q_c[i];
            if (t->optimizer == GR_OPTIMIZER_ADAMW) w[i] *= 1 - lr * t->weight_decay;
            else g += t->weight_decay * w[i];
            if (t->optimizer == GR_OPTIMIZER_SGD) {
                buf[i] = k == 1 ? g : t->momentum * buf[i] + g;
                w[i] -= lr * (t->momentum == 0 ? g : t->nesterov ? g + t->momentum * buf[i]
                                                                 : buf[i]);
            } else {
                m[i] = t->beta1 * m[i] + (1 - t->beta1) * g;
                v[i] = t->beta2 * v[i] + (1 - t->beta2) * g * g;
                w[i] -= lr * m[i] / (1 - pow(t->beta1, k)) /
                        (sqrt(v[i]) / sqrt(1 - pow(t->beta2, k)) + t->eps);
            }
        }
}

static void check_factors(gr_train_opts *t, double lr, const char *what) {
    enum { STEPS = 4 };
    static const gr_lr_group groups[] = {{"a", 0.5}, {"b", 3}};
    t->n_lr_groups = 2, t->lr_groups = groups;
    gr_plan *p = quadratic_step(t);
    gr_session *s = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    run_steps(p, s, t, lr, STEPS);
    const float *w0[2] = {q_a0, q_b0};
    for (int k = 0; k < 2; k++) {
        double want[QN];
        reference_steps(t, lr * groups[k].factor, STEPS, w0[k], want);
        const float *w = state_of(p, s, groups[k].glob);
        for (int i = 0; i < QN; i++)
            if (fabs(w[i] - want[i]) > 1e-5 * fmax(1, fabs(want[i])))
                fail_msg("%s: %s[%d] = %.9g after %d steps, PyTorch's algorithm %.9g", what,
                         groups[k].glob, i, (double)w[i], STEPS, want[i]);
    }
    gr_session_free(s);
    gr_plan_free(p);
}

static void test_factors_follow_pytorch_param_groups(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.momentum = 0.9, t.weight_decay = 0.1;
    check_factors(&t, 0.02, "sgd momentum weight decay");
    t.nesterov = 1;
    check_factors(&t, 0.02, "sgd nesterov");
    gr_train_opts_default(&t);
    t.optimizer = GR_OPTIMIZER_ADAM, t.weight_decay = 0.1;
    check_factors(&t, 0.01, "adam");
    t.optimizer = GR_OPTIMIZER_ADAMW;
    check_factors(&t, 0.01, "adamw");
}

/* ---------------------------------------------------------- layer groups */

static gr_graph *golden_model(const char *name, const gr_train_opts *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/model.onnx", GOLDEN, name);
    gr_status st = {0};
    gr_graph *g = NULL;
    if (gr_import_file(path, &g, &st) != GR_OK) fail_msg("%s", st.msg);
    static const char *const edits[] = {"head", "train", NULL};
    run_passes(g, edits, t);
    return g;
}

typedef struct {
    const char *name;
    int layer;
    double factor;
} want_group;

static void check_groups(const gr_graph *g, const gr_train_opts *t, const want_group *want,
                         int n) {
    int layer[512];
    double factor[512];
    gr_status st = {0};
    assert_true(g->n_values <= 512);
    if (gr_lr_factors(g, t, layer, factor, &st) != GR_OK) fail_msg("%s", st.msg);
    for (int k = 0; k < n; k++) {
        const gr_value *v = gr_graph_find(g, want[k].name);
        assert_non_null(v);
        if (layer[v->id] != want[k].layer || fabs(factor[v->id] - want[k].factor) > 1e-12)
            fail_msg("%s: layer %d, factor %g; expected layer %d, factor %g", want[k].name,
                     layer[v->id], factor[v->id], want[k].layer, want[k].factor);
    }
}

/* CNN.forward: conv1+bn1, res_conv1+res_bn1, res_conv2+res_bn2, conv2+bn2,
 * fc: five layers in a chain (the residual Add joins depth 1 and 3). */
static const want_group cnn_groups[] = {
    {"conv1.weight", 1, 0.0625}, {"bn1.weight", 1, 0.0625},   {"bn1.bias", 1, 0.0625},
    {"res_conv1.weight", 2, 0.125}, {"res_bn1.bias", 2, 0.125}, {"res_conv2.weight", 3, 0.25},
    {"res_bn2.weight", 3, 0.25}, {"conv2.weight", 4, 0.5},     {"bn2.bias", 4, 0.5},
    {"fc.weight", 5, 1},         {"fc.bias", 5, 1},
};

/* Transformer.forward: embeddings, then q, k, v in parallel, out (+ ln1 on
 * the residual), ff1, ff2 (+ ln2), head. */
static const want_group transformer_groups[] = {
    {"tok_emb.weight", 0, 0.03125}, {"pos_emb", 0, 0.03125},   {"q.weight", 1, 0.0625},
    {"k.weight", 1, 0.0625},        {"v.bias", 1, 0.0625},     {"out.weight", 2, 0.125},
    {"ln1.weight", 2, 0.125},       {"ff1.weight", 3, 0.25},   {"ff2.bias", 4, 0.5},
    {"ln2.bias", 4, 0.5},           {"head.weight", 5, 1},
};

static void test_layer_decay_groups_of_golden_models(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.layer_decay = 0.5;
    gr_graph *g = golden_model("cnn", &t);
    check_groups(g, &t, cnn_groups, sizeof cnn_groups / sizeof *cnn_groups);
    gr_graph_free(g);
    g = golden_model("transformer", &t);
    check_groups(g, &t, transformer_groups, sizeof transformer_groups / sizeof *transformer_groups);
    gr_graph_free(g);
    /* The training step (BatchNorm rewritten, loss, gradients) keeps them. */
    g = golden_model("cnn", &t);
    gr_pass_opts po = {.batch = 8, .train = &t};
    static const char *const train[] = {"specialize", "shapes", "train_mode", "loss",
                                        "autodiff", NULL};
    gr_status st = {0};
    if (gr_passes_run(g, train, &po, &st) != GR_OK) fail_msg("%s", st.msg);
    check_groups(g, &t, cnn_groups, sizeof cnn_groups / sizeof *cnn_groups);
    gr_graph_free(g);
}

/* The top trainable group gets the base rate: with fc frozen, conv2 does;
 * --lr-group factors multiply, the last matching glob applies. */
static void test_layer_decay_composes_with_freeze_head_and_groups(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.layer_decay = 0.5;
    const char *freeze[] = {"fc.*"};
    t.n_freeze = 1, t.freeze = freeze;
    static const gr_lr_group groups[] = {{"*bn*", 2}, {"bn1.*", 10}};
    t.n_lr_groups = 2, t.lr_groups = groups;
    gr_graph *g = golden_model("cnn", &t);
    static const want_group want[] = {
        {"conv1.weight", 1, 0.125}, {"bn1.weight", 1, 1.25}, {"res_bn1.bias", 2, 0.5},
        {"conv2.weight", 4, 1},     {"bn2.bias", 4, 2},
    };
    check_groups(g, &t, want, sizeof want / sizeof *want);
    gr_graph_free(g);
    /* A new head (--head) is the top group. */
    gr_train_opts_default(&t);
    t.layer_decay = 0.5, t.head_classes = 7;
    g = golden_model("cnn", &t);
    check_groups(g, &t, cnn_groups, sizeof cnn_groups / sizeof *cnn_groups);
    gr_graph_free(g);
}

static void expect_factor_error(const gr_train_opts *t, const char *want) {
    gr_graph *g = golden_model("cnn", t);
    int layer[512];
    double factor[512];
    gr_status st = {0};
    assert_int_equal(gr_lr_factors(g, t, layer, factor, &st), GR_ERR_BAD_ARG);
    if (!strstr(st.msg, want)) fail_msg("'%s' lacks '%s'", st.msg, want);
    gr_graph_free(g);
}

static void test_lr_group_errors(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    static const gr_lr_group typo[] = {{"conv9.*", 2}}, negative[] = {{"fc.*", -1}};
    t.n_lr_groups = 1, t.lr_groups = typo;
    expect_factor_error(&t, "--lr-group 'conv9.*' matches no parameter");
    t.lr_groups = negative;
    expect_factor_error(&t, "must be a finite number >= 0");
    t.n_lr_groups = 0, t.layer_decay = -0.5;
    expect_factor_error(&t, "--layer-decay");
}

/* ------------------------------------------------------------------ L2-SP */

/* Moves every parameter away from the value the pass took as w0. */
static void perturb(gr_graph *g) {
    gr_rng r;
    gr_rng_seed(&r, 77);
    for (int i = 0; i < g->n_values; i++) {
        gr_value *v = g->values[i];
        if (v->kind != GR_VALUE_PARAM || !v->trainable) continue;
        float *d = v->data;
        for (int64_t e = 0; e < gr_value_numel(v); e++) d[e] += (float)(gr_rng_uniform(&r) - 0.5);
    }
}

static void test_l2sp_gradient_matches_finite_differences(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.l2sp_alpha = 0.3, t.l2sp_beta = 0.7;
    gr_graph *g = toy_model();
    static const char *const l2sp[] = {"l2sp", NULL};
    run_passes(g, l2sp, &t);
    assert_string_equal(g->loss->name, GR_TRAIN_LOSS);
    assert_non_null(gr_graph_find(g, "graft.data_loss"));
    perturb(g);
    grad_check(g, NULL);
}

/* The penalised loss at w != w0 against sum((y-T)^2) + A||w1-w0||^2 +
 * B||w2||^2 computed here in double precision. */
static void test_l2sp_loss_value_matches_direct_computation(void **state) {
    (void)state;
    const double alpha = 0.3, beta = 0.7;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.l2sp_alpha = alpha, t.l2sp_beta = beta;
    gr_graph *g = toy_model();
    float w0[4][16];
    toy_initial(w0);
    static const char *const l2sp[] = {"l2sp", NULL};
    run_passes(g, l2sp, &t);
    perturb(g); /* the state buffers start from the perturbed data */
    float w[4][16];
    for (int k = 0; k < 4; k++) {
        const gr_value *v = gr_graph_find(g, toy_names[k]);
        memcpy(w[k], v->data, v->nbytes);
    }
    /* x and T: the toy's constants (seeds 1 and 2). */
    gr_graph *ref = toy_model();
    const float *x = ref->nodes[0]->inputs[0]->data;
    const float *target = NULL;
    for (int i = 0; i < ref->n_nodes; i++)
        if (ref->nodes[i]->op == GR_OP_SUB) target = ref->nodes[i]->inputs[1]->data;
    assert_non_null(target);
    double data = 0, pen_model = 0, pen_new = 0;
    for (int n = 0; n < TOY_N; n++) {
        double h[TOY_H];
        for (int j = 0; j < TOY_H; j++) {
            double a = w[1][j];
            for (int i = 0; i < TOY_IN; i++) a += x[n * TOY_IN + i] * (double)w[0][i * TOY_H + j];
            h[j] = tanh(a);
        }
        for (int o = 0; o < TOY_OUT; o++) {
            double y = w[3][o];
            for (int j = 0; j < TOY_H; j++) y += h[j] * w[2][j * TOY_OUT + o];
            data += (y - target[n * TOY_OUT + o]) * (y - target[n * TOY_OUT + o]);
        }
    }
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < toy_sizes[k]; i++) {
            double d = k < 2 ? (double)w[k][i] - w0[k][i] : w[k][i];
            *(k < 2 ? &pen_model : &pen_new) += d * d;
        }
    gr_graph_free(ref);
    gr_plan *p = compile(g);
    gr_graph_free(g);
    gr_session *s = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    float loss = 0;
    void *outputs[1] = {&loss};
    assert_int_equal(gr_session_run(s, NULL, outputs, &st), GR_OK);
    double want = data + alpha * pen_model + beta * pen_new;
    assert_true(pen_model > 0.1 && pen_new > 0.1);
    if (fabs(loss - want) > 1e-5 * fabs(want))
        fail_msg("loss %.9g, direct computation %.9g", (double)loss, want);
    gr_session_free(s);
    gr_plan_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factor_zero_parameter_does_not_move),
        cmocka_unit_test(test_factor_two_moves_twice_as_far_under_sgd),
        cmocka_unit_test(test_adamw_factor_scales_step_and_decay),
        cmocka_unit_test(test_factors_follow_pytorch_param_groups),
        cmocka_unit_test(test_layer_decay_groups_of_golden_models),
        cmocka_unit_test(test_layer_decay_composes_with_freeze_head_and_groups),
        cmocka_unit_test(test_lr_group_errors),
        cmocka_unit_test(test_l2sp_gradient_matches_finite_differences),
        cmocka_unit_test(test_l2sp_loss_value_matches_direct_computation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
