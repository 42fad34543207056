/* test_train_passes.c: the training passes one by one, each against a
 * reference graft did not compute: losses and their gradients against
 * PyTorch (tests/data/golden/losses), --head against nn.Linear's init
 * bound, freezing against the golden CNN's parameter list, BatchNorm and
 * Dropout rewriting against their formulas, optimizer steps against
 * PyTorch's algorithms, gradient accumulation against a full batch, and
 * the report of ops without a gradient rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/gr_codegen.h"
#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"
#include "runtime/gr_runtime.h"
#include "tests/golden.h"

#define PPOCR GRAFT_SOURCE_DIR "/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"

/* ------------------------------------------------------------------ helpers */

static void run_passes(gr_graph *g, const char *const *names, const gr_train_opts *t) {
    gr_pass_opts po = {0};
    po.train = t;
    gr_status st = {0};
    if (gr_passes_run(g, names, &po, &st) != GR_OK) fail_msg("%s", st.msg);
}

/* The passes fail; returns the message (static storage). */
static const char *passes_error(gr_graph *g, const char *const *names, const gr_train_opts *t) {
    static gr_status st;
    memset(&st, 0, sizeof st);
    gr_pass_opts po = {0};
    po.train = t;
    if (gr_passes_run(g, names, &po, &st) == GR_OK) fail_msg("the passes succeeded");
    return st.msg;
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

static int input_index(const gr_plan *p, const char *name) {
    for (int i = 0; i < p->n_inputs; i++)
        if (p->buffers[p->inputs[i]].name && !strcmp(p->buffers[p->inputs[i]].name, name))
            return i;
    return -1;
}

static const float *state_of(gr_plan *p, gr_session *s, const char *name) {
    int b = gr_plan_find_buffer(p, name);
    assert_true(b >= 0);
    const float *d = gr_session_state(s, b);
    assert_non_null(d);
    return d;
}

static int count_ops(const gr_graph *g, gr_op op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !g->nodes[i]->dead && g->nodes[i]->op == op;
    return n;
}

static void assert_dims(const gr_value *v, int rank, int64_t d0, int64_t d1) {
    assert_non_null(v);
    char buf[128];
    if (v->shape.rank != rank || v->shape.dims[0] != d0 || (rank > 1 && v->shape.dims[1] != d1))
        fail_msg("'%s' is %s, expected rank %d [%lld,%lld]", v->name,
                 gr_shape_str(&v->shape, buf, sizeof buf), rank, (long long)d0, (long long)d1);
}

/* ------------------------------------------------------------------ losses */

typedef struct {
    const char *name;
    gr_loss_kind loss;
    double label_smoothing;
    int weighted;
} loss_case;

static const float class_weights[5] = {1, 2, 0.5f, 1, 1.5f};

static const loss_case loss_cases[] = {
    {"ce_plain", GR_LOSS_CE, 0, 0},         {"ce_weights", GR_LOSS_CE, 0, 1},
    {"ce_smooth", GR_LOSS_CE, 0.1, 0},      {"ce_smooth_weights", GR_LOSS_CE, 0.1, 1},
    {"mse", GR_LOSS_MSE, 0, 0},             {"l1", GR_LOSS_L1, 0, 0},
    {"bce_with_logits", GR_LOSS_BCE, 0, 0},
};

/* The logits are the trainable parameter: d loss / d param is the loss's
 * gradient, compared with PyTorch's. */
static void check_loss_case(const loss_case *c) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/losses/%s", GOLDEN, c->name);
    gr_tensor logits, target, want_loss, want_grad;
    load_npy(dir, "logits.npy", &logits);
    load_npy(dir, "target.npy", &target);
    load_npy(dir, "loss.npy", &want_loss);
    load_npy(dir, "grad.npy", &want_grad);

    gr_graph *g = gr_graph_new("loss");
    gr_value *p = gr_graph_add_data(g, GR_VALUE_PARAM, "logits", GR_DTYPE_F32, &logits.shape,
                                    logits.data);
    assert_non_null(p);
    p->variable = p->trainable = 1;
    const char *y_name[] = {"y"};
    gr_node *id = gr_node_add(g, GR_OP_IDENTITY, "id", 1, &p, 1, y_name);
    assert_int_equal(gr_graph_add_output(g, id->outputs[0]), GR_OK);

    gr_train_opts t;
    gr_train_opts_default(&t);
    t.loss = c->loss;
    t.label_smoothing = c->label_smoothing;
    if (c->weighted) {
        t.n_class_weights = 5;
        t.class_weights = class_weights;
    }
    static const char *const pipeline[] = {"shapes", "loss", "autodiff", NULL};
    run_passes(g, pipeline, &t);
    assert_int_equal(g->n_grads, 1);
    assert_ptr_equal(g->grads[0].param, p);
    assert_int_equal(gr_graph_add_output(g, g->grads[0].grad), GR_OK);
    gr_plan *plan = compile(g);
    int labels = input_index(plan, GR_TRAIN_LABELS);
    assert_true(labels >= 0);
    assert_int_equal(plan->buffers[plan->inputs[labels]].nbytes, target.nbytes);
    assert_int_equal(plan->n_outputs, 3);
    gr_session *s = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(plan, 1, &s, &st), GR_OK);
    float loss = 0, grad[40], y[40];
    void *inputs[4] = {0}, *outputs[3] = {&loss, y, grad};
    inputs[labels] = target.data;
    if (gr_session_run(s, inputs, outputs, &st) != GR_OK) fail_msg("%s", st.msg);

    double want = *(const float *)want_loss.data;
    if (fabs(loss - want) > 1e-6 * fabs(want))
        fail_msg("%s: loss %.9g, PyTorch %.9g", c->name, (double)loss, want);
    const float *wg = want_grad.data;
    for (int i = 0; i < 40; i++)
        if (fabs(grad[i] - wg[i]) > 1e-6)
            fail_msg("%s: d loss / d logits[%d] = %.9g, PyTorch %.9g", c->name, i,
                     (double)grad[i], (double)wg[i]);
    gr_session_free(s);
    gr_plan_free(plan);
    gr_graph_free(g);
    gr_free(logits.data);
    gr_free(target.data);
    gr_free(want_loss.data);
    gr_free(want_grad.data);
}

/* The "loss" pass on the golden MLP fails with a message containing want. */
static void loss_error(const gr_train_opts *t, const char *want) {
    static const char *const pipeline[] = {"shapes", "loss", NULL};
    gr_graph *g = import_golden("mlp");
    const char *msg = passes_error(g, pipeline, t);
    if (!strstr(msg, want)) fail_msg("'%s' does not say '%s'", msg, want);
    gr_graph_free(g);
}

static void test_loss_option_errors(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.label_smoothing = 1.5;
    loss_error(&t, "between 0 and 1, not 1.5");
    t.label_smoothing = 0.1;
    t.loss = GR_LOSS_MSE;
    loss_error(&t, "(--loss ce) only");
    t.label_smoothing = 0;
    t.loss = GR_LOSS_CE;
    t.n_class_weights = 4;
    t.class_weights = class_weights;
    loss_error(&t, "4 class weights for 5 classes");
    t.n_class_weights = 0;
    t.loss_output = "nope";
    loss_error(&t, "no output named 'nope'");
}

static void test_losses_and_gradients_match_pytorch(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof loss_cases / sizeof *loss_cases; i++)
        check_loss_case(&loss_cases[i]);
}

/* -------------------------------------------------------------------- head */

static const char *const head_pass[] = {"head", NULL};

/* Every value of v within +-bound; returns the data. */
static const float *within_bound(const gr_value *v, double bound) {
    const float *d = v->data;
    for (int64_t i = 0; i < gr_value_numel(v); i++)
        if (!(fabs(d[i]) <= bound))
            fail_msg("%s[%lld] = %g is outside +-%g", v->name, (long long)i, (double)d[i], bound);
    return d;
}

static gr_graph *with_head(const char *model, const char *node, int64_t classes,
                           uint64_t seed) {
    gr_graph *g = import_golden(model);
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.head_classes = classes;
    t.head_node = node;
    t.seed = seed;
    run_passes(g, head_pass, &t);
    return g;
}

static void test_head_replaces_mlp_gemm(void **state) {
    (void)state;
    gr_graph *a = with_head("mlp", NULL, 7, 1), *b = with_head("mlp", NULL, 7, 1);
    gr_graph *c = with_head("mlp", "/fc3/Gemm", 7, 2);
    double bound = 1 / sqrt(32.0);
    /* Gemm transB=1: W [out, in]. */
    assert_dims(gr_graph_find(a, "fc3.weight"), 2, 7, 32);
    assert_dims(gr_graph_find(a, "fc3.bias"), 1, 7, 0);
    assert_dims(gr_graph_find(a, "logits"), 2, 16, 7);
    assert_dims(gr_graph_find(a, "fc2.weight"), 2, 32, 32);
    assert_dims(gr_graph_find(c, "fc3.weight"), 2, 7, 32);
    const char *names[] = {"fc3.weight", "fc3.bias"};
    for (int k = 0; k < 2; k++) {
        const gr_value *va = gr_graph_find(a, names[k]), *vb = gr_graph_find(b, names[k]),
                       *vc = gr_graph_find(c, names[k]);
        const float *da = within_bound(va, bound), *dc = within_bound(vc, bound);
        within_bound(vb, bound);
        assert_memory_equal(va->data, vb->data, va->nbytes);
        int differ = 0;
        for (int64_t i = 0; i < gr_value_numel(va); i++) differ += da[i] != dc[i];
        assert_true(differ > gr_value_numel(va) / 2);
        /* Spread over the range, not squeezed into a corner of it. */
        double lo = 1, hi = -1;
        for (int64_t i = 0; i < gr_value_numel(va); i++) {
            lo = fmin(lo, da[i] / bound);
            hi = fmax(hi, da[i] / bound);
        }
        if (k == 0) assert_true(lo < -0.8 && hi > 0.8);
    }
    /* The hidden layers keep their weights. */
    gr_graph *orig = import_golden("mlp");
    const gr_value *w = gr_graph_find(orig, "fc2.weight");
    assert_memory_equal(w->data, gr_graph_find(a, "fc2.weight")->data, w->nbytes);
    gr_graph_free(orig);
    gr_graph_free(a);
    gr_graph_free(b);
    gr_graph_free(c);
}

static void test_head_on_transformer(void **state) {
    (void)state;
    /* Its classifier is a Gemm on the mean over tokens; the Linear layers
     * inside are MatMul(x, Transpose(W)) + Add. */
    gr_graph *g = with_head("transformer", NULL, 4, 3);
    assert_dims(gr_graph_find(g, "head.weight"), 2, 4, 16);
    assert_dims(gr_graph_find(g, "head.bias"), 1, 4, 0);
    assert_dims(gr_graph_find(g, "logits"), 2, 16, 4);
    within_bound(gr_graph_find(g, "head.weight"), 1 / sqrt(16.0));
    within_bound(gr_graph_find(g, "head.bias"), 1 / sqrt(16.0));
    gr_graph_free(g);
    /* A MatMul on a Transpose of the weight is not a classifier graft can
     * replace: a clear error, not a wrong edit. */
    g = import_golden("transformer");
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.head_classes = 4;
    t.head_node = "/q/MatMul";
    const char *msg = passes_error(g, head_pass, &t);
    assert_non_null(strstr(msg, "'/q/MatMul'"));
    assert_non_null(strstr(msg, "expected a Gemm or MatMul"));
    gr_graph_free(g);
}

static void test_head_replaces_matmul_add(void **state) {
    (void)state;
    if (access(PPOCR, R_OK) != 0) {
        print_message("skipped: %s is absent (scripts/fetch-models.sh)\n", PPOCR);
        skip();
    }
    gr_graph *g = NULL;
    gr_status st = {0};
    if (gr_import_file(PPOCR, &g, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.head_classes = 3;
    t.seed = 5;
    run_passes(g, head_pass, &t);
    /* MatMul: W [in, out]; the Add's bias [out]. */
    assert_dims(gr_graph_find(g, "fc_0.w_0"), 2, 200, 3);
    assert_dims(gr_graph_find(g, "fc_0.b_0"), 1, 3, 0);
    within_bound(gr_graph_find(g, "fc_0.w_0"), 1 / sqrt(200.0));
    within_bound(gr_graph_find(g, "fc_0.b_0"), 1 / sqrt(200.0));
    const gr_value *y = g->outputs[0];
    assert_int_equal(y->shape.rank, 2);
    assert_int_equal(y->shape.dims[1], 3);
    assert_int_equal(count_ops(g, GR_OP_SOFTMAX), 1);
    gr_graph_free(g);
}

/* x [2,4] -> Gemm(transB=0, W [4,3], b [3]) or MatMul(x, W) then
 * Add(b, .) (bias first, as PyTorch exports it) -> Softmax -> y. */
static gr_graph *tiny_classifier(int matmul) {
    gr_graph *g = gr_graph_new("tiny");
    int64_t xd[2] = {2, 4}, wd[2] = {4, 3}, bd = 3;
    gr_shape xs = gr_shape_make(2, xd), ws = gr_shape_make(2, wd), bs = gr_shape_make(1, &bd);
    gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &xs);
    gr_value *w = gr_graph_add_data(g, GR_VALUE_PARAM, "W", GR_DTYPE_F32, &ws, NULL);
    gr_value *b = gr_graph_add_data(g, GR_VALUE_PARAM, "b", GR_DTYPE_F32, &bs, NULL);
    gr_value *logits;
    if (matmul) {
        gr_value *in[2] = {x, w};
        gr_node *mm = gr_node_add(g, GR_OP_MATMUL, "mm", 2, in, 1, NULL);
        in[0] = b;
        in[1] = mm->outputs[0];
        logits = gr_node_add(g, GR_OP_ADD, "add", 2, in, 1, NULL)->outputs[0];
    } else {
        gr_value *in[3] = {x, w, b};
        logits = gr_node_add(g, GR_OP_GEMM, "gemm", 3, in, 1, NULL)->outputs[0];
    }
    gr_node *sm = gr_node_add(g, GR_OP_SOFTMAX, "sm", 1, &logits, 1, NULL);
    assert_int_equal(gr_graph_add_output(g, sm->outputs[0]), GR_OK);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    return g;
}

static void test_head_untransposed_weights(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.head_classes = 6;
    for (int matmul = 0; matmul < 2; matmul++) {
        gr_graph *g = tiny_classifier(matmul);
        run_passes(g, head_pass, &t);
        /* x·W: W [in, out]. */
        assert_dims(gr_graph_find(g, "W"), 2, 4, 6);
        assert_dims(gr_graph_find(g, "b"), 1, 6, 0);
        assert_dims(g->outputs[0], 2, 2, 6);
        within_bound(gr_graph_find(g, "W"), 0.5);
        within_bound(gr_graph_find(g, "b"), 0.5);
        assert_int_equal(count_ops(g, GR_OP_SOFTMAX), 1);
        gr_graph_free(g);
    }
}

static void test_head_errors(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.head_classes = 3;
    gr_graph *g = import_golden("mlp");
    t.head_node = "nope";
    assert_non_null(strstr(passes_error(g, head_pass, &t), "no node named 'nope'"));
    t.head_node = "/Relu";
    const char *msg = passes_error(g, head_pass, &t);
    assert_non_null(strstr(msg, "'/Relu' is Relu"));
    assert_non_null(strstr(msg, "expected a Gemm or MatMul"));
    /* Nothing was changed by the failed attempts. */
    assert_dims(gr_graph_find(g, "fc3.weight"), 2, 5, 32);
    /* A hidden layer: fc3 still expects 32 inputs. */
    t.head_node = "/fc2/Gemm";
    msg = passes_error(g, head_pass, &t);
    assert_non_null(strstr(msg, "--head: node '/fc2/Gemm' now has 3 outputs"));
    assert_non_null(strstr(msg, "/fc3/Gemm"));
    gr_graph_free(g);
    /* A model without a classifier. */
    g = gr_graph_new("no_head");
    int64_t dims[2] = {2, 3};
    gr_shape s = gr_shape_make(2, dims);
    gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &s);
    gr_node *r = gr_node_add(g, GR_OP_RELU, "r", 1, &x, 1, NULL);
    assert_int_equal(gr_graph_add_output(g, r->outputs[0]), GR_OK);
    t.head_node = NULL;
    assert_non_null(strstr(passes_error(g, head_pass, &t), "no Gemm or MatMul"));
    gr_graph_free(g);
}

/* ------------------------------------------------------------------ freezing */

static const char *const train_pass[] = {"train", NULL};

static const char *const cnn_params[] = {
    "conv1.weight", "bn1.weight", "bn1.bias", "res_conv1.weight", "res_bn1.weight",
    "res_bn1.bias", "res_conv2.weight", "res_bn2.weight", "res_bn2.bias", "conv2.weight",
    "bn2.weight", "bn2.bias", "fc.weight", "fc.bias", NULL};

/* The trainable set (variable && trainable) is exactly `want`; running
 * statistics never train. */
static void assert_trainable(const gr_graph *g, const char *const *want) {
    int n_want = 0;
    for (; want[n_want]; n_want++) {
        const gr_value *v = gr_graph_find(g, want[n_want]);
        assert_non_null(v);
        if (!(v->variable && v->trainable)) fail_msg("'%s' does not train", want[n_want]);
    }
    int n = 0;
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (v->kind != GR_VALUE_PARAM || !(v->variable && v->trainable)) continue;
        n++;
        int listed = 0;
        for (int k = 0; want[k]; k++) listed |= !strcmp(want[k], v->name);
        if (!listed) fail_msg("'%s' trains", v->name);
        assert_null(strstr(v->name, "running_"));
    }
    assert_int_equal(n, n_want);
}

static gr_graph *cnn_trained(int n_freeze, const char **freeze, int n_only, const char **only,
                             const char *until) {
    gr_graph *g = import_golden("cnn");
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.n_freeze = n_freeze;
    t.freeze = freeze;
    t.n_train_only = n_only;
    t.train_only = only;
    t.freeze_until = until;
    run_passes(g, train_pass, &t);
    return g;
}

static void test_freeze_selects_trainable_set(void **state) {
    (void)state;
    gr_graph *g = cnn_trained(0, NULL, 0, NULL, NULL);
    assert_trainable(g, cnn_params);
    const char *stats[] = {"bn1.running_mean", "bn1.running_var", "bn2.running_var",
                           "res_bn2.running_mean"};
    for (int i = 0; i < 4; i++) {
        const gr_value *v = gr_graph_find(g, stats[i]);
        assert_false(v->trainable);
        assert_false(v->variable);
    }
    gr_graph_free(g);

    const char *freeze_bn[] = {"bn*"};
    g = cnn_trained(1, freeze_bn, 0, NULL, NULL);
    const char *want1[] = {"conv1.weight", "res_conv1.weight", "res_bn1.weight", "res_bn1.bias",
                           "res_conv2.weight", "res_bn2.weight", "res_bn2.bias", "conv2.weight",
                           "fc.weight", "fc.bias", NULL};
    assert_trainable(g, want1);
    gr_graph_free(g);

    const char *only_fc[] = {"fc.*"};
    g = cnn_trained(0, NULL, 1, only_fc, NULL);
    const char *want2[] = {"fc.weight", "fc.bias", NULL};
    assert_trainable(g, want2);
    gr_graph_free(g);

    /* --train-only and --freeze together; two globs of one kind. */
    const char *only_bn[] = {"*bn*", "conv1.*"}, *freeze_res[] = {"res_*", "*.bias"};
    g = cnn_trained(2, freeze_res, 2, only_bn, NULL);
    const char *want3[] = {"conv1.weight", "bn1.weight", "bn2.weight", NULL};
    assert_trainable(g, want3);
    gr_graph_free(g);

    /* Everything feeding /conv2/Conv and its own weight. */
    g = cnn_trained(0, NULL, 0, NULL, "/conv2/Conv");
    const char *want4[] = {"bn2.weight", "bn2.bias", "fc.weight", "fc.bias", NULL};
    assert_trainable(g, want4);
    gr_graph_free(g);
    g = cnn_trained(0, NULL, 0, NULL, "/res_bn2/BatchNormalization");
    const char *want5[] = {"conv2.weight", "bn2.weight", "bn2.bias", "fc.weight", "fc.bias",
                           NULL};
    assert_trainable(g, want5);
    gr_graph_free(g);
}

static void test_freeze_errors(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    gr_graph *g = import_golden("cnn");
    const char *typo[] = {"fc.*", "bn9.*"};
    t.n_freeze = 2;
    t.freeze = typo;
    const char *msg = passes_error(g, train_pass, &t);
    assert_non_null(strstr(msg, "--freeze 'bn9.*' matches no parameter"));
    t.n_freeze = 0;
    t.n_train_only = 1;
    t.train_only = typo + 1;
    assert_non_null(strstr(passes_error(g, train_pass, &t), "--train-only 'bn9.*'"));
    const char *all[] = {"*"};
    t.n_train_only = 0;
    t.n_freeze = 1;
    t.freeze = all;
    assert_non_null(strstr(passes_error(g, train_pass, &t), "no parameter is left to train"));
    /* Only running statistics selected: nothing trains either. */
    const char *stats[] = {"*running*"};
    t.n_freeze = 0;
    t.n_train_only = 1;
    t.train_only = stats;
    assert_non_null(strstr(passes_error(g, train_pass, &t), "no parameter is left to train"));
    t.n_train_only = 0;
    t.freeze_until = "/nope";
    assert_non_null(strstr(passes_error(g, train_pass, &t), "no node named '/nope'"));
    t.freeze_until = "/fc/Gemm";
    assert_non_null(strstr(passes_error(g, train_pass, &t), "no parameter is left to train"));
    gr_graph_free(g);
}

/* --------------------------------------------------------------- BatchNorm */

static int has_update(const gr_graph *g, const char *state) {
    for (int i = 0; i < g->n_updates; i++)
        if (!strcmp(g->updates[i].state->name, state)) return 1;
    return 0;
}

/* The BatchNormalization node that reads `scale`, or NULL. */
static const gr_node *bn_of(const gr_graph *g, const char *scale) {
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (!n->dead && n->op == GR_OP_BATCH_NORM && !strcmp(n->inputs[1]->name, scale))
            return n;
    }
    return NULL;
}

static void test_frozen_batch_norm_runs_in_inference_mode(void **state) {
    (void)state;
    /* bn1 frozen, res_bn1 half frozen (its bias trains), the rest train. */
    const char *freeze[] = {"bn1.*", "res_bn1.weight"};
    gr_graph *g = import_golden("cnn");
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.n_freeze = 2;
    t.freeze = freeze;
    static const char *const pipeline[] = {"train",    "shapes",    "train_mode", "loss",
                                           "autodiff", "optimizer", NULL};
    run_passes(g, pipeline, &t);
    assert_int_equal(count_ops(g, GR_OP_BATCH_NORM), 1);
    const gr_node *bn1 = bn_of(g, "bn1.weight");
    assert_non_null(bn1);
    assert_int_equal(gr_node_int(bn1, "training_mode", 1), 0);
    assert_int_equal(bn1->n_outputs, 1);
    assert_false(gr_graph_find(g, "bn1.running_mean")->variable);
    assert_false(has_update(g, "bn1.running_mean"));
    assert_false(has_update(g, "bn1.running_var"));
    const char *trained[] = {"res_bn1", "res_bn2", "bn2"};
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s.weight", trained[k]);
        assert_null(bn_of(g, name));
        snprintf(name, sizeof name, "%s.running_mean", trained[k]);
        assert_true(has_update(g, name));
        assert_true(gr_graph_find(g, name)->variable);
        assert_false(gr_graph_find(g, name)->trainable);
        assert_null(gr_graph_grad_of(g, gr_graph_find(g, name)));
        snprintf(name, sizeof name, "%s.running_var", trained[k]);
        assert_true(has_update(g, name));
    }
    /* One step: the trained statistics move, the frozen ones are constants. */
    gr_plan *p = compile(g);
    gr_session *s = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/cnn", GOLDEN);
    gr_tensor x, y, rm0;
    load_npy(dir, "x.npy", &x);
    load_npy(dir, "y.npy", &y);
    snprintf(dir, sizeof dir, "%s/cnn/init", GOLDEN);
    load_npy(dir, "res_bn2.running_mean.npy", &rm0);
    void *inputs[8] = {0};
    float lr = 0.05f, loss = 0, logits[32];
    void *outputs[2] = {&loss, logits};
    inputs[input_index(p, "x")] = x.data;
    inputs[input_index(p, GR_TRAIN_LABELS)] = y.data;
    inputs[input_index(p, "graft.lr")] = &lr;
    assert_int_equal(gr_session_run(s, inputs, outputs, &st), GR_OK);
    assert_true(gr_plan_find_buffer(p, "bn1.running_mean") < 0 ||
                gr_session_state(s, gr_plan_find_buffer(p, "bn1.running_mean")) == NULL);
    int b = gr_plan_find_buffer(p, "res_bn2.running_mean");
    assert_true(b >= 0);
    const float *rm = gr_session_state(s, b), *r0 = rm0.data;
    assert_non_null(rm);
    int moved = 0;
    for (int i = 0; i < 8; i++) moved += fabs(rm[i] - r0[i]) > 1e-6;
    assert_int_equal(moved, 8);
    gr_session_free(s);
    gr_plan_free(p);
    gr_free(x.data);
    gr_free(y.data);
    gr_free(rm0.data);
    gr_graph_free(g);
}

/* BatchNorm1d-style x [4,3] in training mode against the formulas:
 * y = (x - mean) / sqrt(var + eps) * scale + bias over the batch (biased
 * variance); running = running * momentum + batch * (1 - momentum), the
 * variance unbiased (PyTorch). */
static void test_batch_norm_training_formula(void **state) {
    (void)state;
    enum { B = 4, C = 3 };
    const float x[B * C] = {0.5f, -1, 2, 1.5f, 0, -2, -0.5f, 3, 1, 2.5f, 1, 0.25f};
    const float scale[C] = {1.5f, 0.5f, -1}, bias[C] = {0.1f, -0.2f, 0.3f};
    const float rm0[C] = {0.2f, -0.1f, 0.4f}, rv0[C] = {1.2f, 0.8f, 2.0f};
    const double eps = 1e-3, momentum = 0.8;
    gr_graph *g = gr_graph_new("bn");
    int64_t xd[2] = {B, C}, cd = C;
    gr_shape xs = gr_shape_make(2, xd), cs = gr_shape_make(1, &cd);
    gr_value *in[5] = {gr_graph_add_input(g, "x", GR_DTYPE_F32, &xs),
                       gr_graph_add_data(g, GR_VALUE_PARAM, "scale", GR_DTYPE_F32, &cs, scale),
                       gr_graph_add_data(g, GR_VALUE_PARAM, "bias", GR_DTYPE_F32, &cs, bias),
                       gr_graph_add_data(g, GR_VALUE_PARAM, "rm", GR_DTYPE_F32, &cs, rm0),
                       gr_graph_add_data(g, GR_VALUE_PARAM, "rv", GR_DTYPE_F32, &cs, rv0)};
    gr_node *bn = gr_node_add(g, GR_OP_BATCH_NORM, "bn", 5, in, 1, NULL);
    assert_int_equal(gr_node_set_float(g, bn, "epsilon", eps), GR_OK);
    assert_int_equal(gr_node_set_float(g, bn, "momentum", momentum), GR_OK);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    assert_int_equal(gr_graph_add_output(g, bn->outputs[0]), GR_OK);
    gr_train_opts t;
    gr_train_opts_default(&t);
    static const char *const pipeline[] = {"train", "train_mode", NULL};
    run_passes(g, pipeline, &t);
    assert_int_equal(count_ops(g, GR_OP_BATCH_NORM), 0);
    assert_int_equal(g->n_updates, 2);
    gr_plan *p = compile(g);
    gr_session *s = NULL;
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    float y[B * C];
    void *inputs[1] = {(void *)x}, *outputs[1] = {y};
    assert_int_equal(gr_session_run(s, inputs, outputs, &st), GR_OK);
    const float *rm = state_of(p, s, "rm"), *rv = state_of(p, s, "rv");
    for (int c = 0; c < C; c++) {
        double mean = 0, var = 0;
        for (int b = 0; b < B; b++) mean += x[b * C + c] / (double)B;
        for (int b = 0; b < B; b++) var += pow(x[b * C + c] - mean, 2) / B;
        for (int b = 0; b < B; b++) {
            double want = (x[b * C + c] - mean) / sqrt(var + eps) * scale[c] + bias[c];
            if (fabs(y[b * C + c] - want) > 1e-5)
                fail_msg("y[%d,%d] = %.7g, expected %.7g", b, c, (double)y[b * C + c], want);
        }
        double want_rm = rm0[c] * momentum + mean * (1 - momentum);
        double want_rv = rv0[c] * momentum + var * B / (B - 1) * (1 - momentum);
        if (fabs(rm[c] - want_rm) > 1e-6 || fabs(rv[c] - want_rv) > 1e-6)
            fail_msg("channel %d: running mean %.7g var %.7g, expected %.7g %.7g", c,
                     (double)rm[c], (double)rv[c], want_rm, want_rv);
    }
    gr_session_free(s);
    gr_plan_free(p);
    gr_graph_free(g);
}

static void test_eval_mode_uses_running_statistics(void **state) {
    (void)state;
    gr_graph *g = import_golden("cnn");
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.eval = 1;
    static const char *const pipeline[] = {"train", "shapes", "train_mode", "loss", NULL};
    run_passes(g, pipeline, &t);
    assert_int_equal(count_ops(g, GR_OP_BATCH_NORM), 4);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == GR_OP_BATCH_NORM)
            assert_int_equal(gr_node_int(g->nodes[i], "training_mode", 1), 0);
    assert_int_equal(g->n_updates, 0);
    gr_graph_free(g);
}

/* ------------------------------------------------------------ accumulation */

static void apply_init(gr_graph *g, const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy")) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - 4), e->d_name);
        gr_value *v = gr_graph_find(g, name);
        assert_non_null(v);
        gr_tensor t;
        load_npy(dir, e->d_name, &t);
        assert_int_equal(t.nbytes, v->nbytes);
        memcpy(v->data, t.data, t.nbytes);
        gr_free(t.data);
    }
    closedir(d);
}

static const char *const mlp_params[] = {"fc1.weight", "fc1.bias", "fc2.weight",
                                         "fc2.bias",   "fc3.weight", "fc3.bias"};

/* The golden MLP's SGD step at batch `batch` (the model fixes 16). */
static gr_plan *mlp_step(int64_t batch, int accumulate) {
    gr_graph *g = import_golden("mlp");
    apply_init(g, GOLDEN "/mlp/init");
    gr_value *x = gr_graph_find(g, "x");
    x->shape.dims[0] = batch;
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i]->kind == GR_VALUE_NODE) {
            g->values[i]->has_declared = 0;
            g->values[i]->shape = gr_shape_unknown();
        }
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.momentum = 0.9;
    t.weight_decay = 1e-4;
    t.accumulate = accumulate;
    static const char *const pipeline[] = {"train",    "shapes",    "train_mode", "loss",
                                           "autodiff", "optimizer", NULL};
    run_passes(g, pipeline, &t);
    gr_plan *p = compile(g);
    gr_graph_free(g);
    return p;
}

/* Runs micro-step k: rows [k*batch, (k+1)*batch). */
static void mlp_run(gr_plan *p, gr_session *s, const gr_tensor *x, const gr_tensor *y,
                    int64_t batch, int k, int apply) {
    void *inputs[8] = {0};
    float lr = 0.05f, damp = 1.0f, loss, out[16 * 5]; /* dampening 0 */
    unsigned char flag = (unsigned char)apply;
    inputs[input_index(p, "x")] = (float *)x->data + (size_t)k * (size_t)batch * 20;
    inputs[input_index(p, GR_TRAIN_LABELS)] = (int64_t *)y->data + k * batch;
    inputs[input_index(p, "graft.lr")] = &lr;
    inputs[input_index(p, "graft.damp")] = &damp;
    int a = input_index(p, "graft.apply");
    if (a >= 0) inputs[a] = &flag;
    void *outputs[2] = {&loss, out};
    gr_status st = {0};
    if (gr_session_run(s, inputs, outputs, &st) != GR_OK) fail_msg("%s", st.msg);
}

static void test_accumulation_equals_full_batch(void **state) {
    (void)state;
    enum { UPDATES = 5 };
    gr_tensor x, y;
    load_npy(GOLDEN "/mlp", "x.npy", &x);
    load_npy(GOLDEN "/mlp", "y.npy", &y);
    gr_plan *pa = mlp_step(8, 2), *pf = mlp_step(16, 1);
    assert_true(input_index(pa, "graft.apply") >= 0);
    assert_true(input_index(pf, "graft.apply") < 0);
    gr_session *sa = NULL, *sf = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(pa, 1, &sa, &st), GR_OK);
    assert_int_equal(gr_session_new(pf, 1, &sf, &st), GR_OK);
    gr_graph *init = import_golden("mlp");
    apply_init(init, GOLDEN "/mlp/init");
    float *before[12];
    for (int u = 0; u < UPDATES; u++) {
        /* A micro-step that does not apply leaves weights and momentum
         * as they were (at first: the initial weights and zeros). */
        for (int k = 0; k < 12; k++) {
            char name[64];
            snprintf(name, sizeof name, k < 6 ? "%s" : "%s.momentum", mlp_params[k % 6]);
            size_t bytes = gr_graph_find(init, mlp_params[k % 6])->nbytes;
            before[k] = malloc(bytes);
            memcpy(before[k], state_of(pa, sa, name), bytes);
            if (u == 0 && k < 6) assert_memory_equal(before[k], gr_graph_find(init, name)->data, bytes);
            for (size_t i = 0; u == 0 && k >= 6 && i < bytes / 4; i++) assert_true(before[k][i] == 0.0f);
        }
        mlp_run(pa, sa, &x, &y, 8, 2 * u, 0);
        for (int k = 0; k < 12; k++) {
            char name[64];
            snprintf(name, sizeof name, k < 6 ? "%s" : "%s.momentum", mlp_params[k % 6]);
            assert_memory_equal(state_of(pa, sa, name), before[k],
                                gr_graph_find(init, mlp_params[k % 6])->nbytes);
            free(before[k]);
        }
        mlp_run(pa, sa, &x, &y, 8, 2 * u + 1, 1);
        mlp_run(pf, sf, &x, &y, 16, u, 0);
        /* Identical weights after each applied update, up to rounding. */
        double worst = 0;
        for (int k = 0; k < 6; k++) {
            const float *wa = state_of(pa, sa, mlp_params[k]), *wf = state_of(pf, sf, mlp_params[k]);
            int64_t n = gr_value_numel(gr_graph_find(init, mlp_params[k]));
            for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(wa[i] - wf[i]));
        }
        if (worst > 1e-6) fail_msg("update %d: accumulated weights differ by %.3g", u, worst);
        if (u == 0) {
            /* ...and they did move. */
            const float *w = state_of(pa, sa, "fc1.weight"), *w0 = gr_graph_find(init, "fc1.weight")->data;
            int moved = 0;
            for (int i = 0; i < 640; i++) moved += w[i] != w0[i];
            assert_true(moved > 600);
        }
        if (u == UPDATES - 1) print_message("accumulate 2 x 8 vs 16: max weight difference %.3g\n", worst);
    }
    gr_graph_free(init);
    gr_session_free(sa);
    gr_session_free(sf);
    gr_plan_free(pa);
    gr_plan_free(pf);
    gr_free(x.data);
    gr_free(y.data);
}

/* ----------------------------------------------------------------- dropout */

enum { DROP_N = 100 };

/* p [100,100] in [0.5, 1.5) -> Dropout(ratio 0.5) -> y; with a loss
 * L = sum(y * R) and its gradient unless eval. */
static gr_graph *dropout_graph(int eval, float *r) {
    gr_graph *g = gr_graph_new("dropout");
    int64_t dims[2] = {DROP_N, DROP_N};
    gr_shape s = gr_shape_make(2, dims), sc = gr_shape_scalar();
    gr_value *p = gr_graph_add_data(g, GR_VALUE_PARAM, "p", GR_DTYPE_F32, &s, NULL);
    p->variable = p->trainable = 1;
    gr_rng rng;
    gr_rng_seed(&rng, 7);
    float *d = p->data;
    for (int i = 0; i < DROP_N * DROP_N; i++) {
        d[i] = (float)(0.5 + gr_rng_uniform(&rng));
        r[i] = (float)(gr_rng_uniform(&rng) - 0.5);
    }
    float ratio = 0.5f;
    gr_value *in[2] = {p, gr_graph_add_data(g, GR_VALUE_CONST, "ratio", GR_DTYPE_F32, &sc, &ratio)};
    const char *y_name[] = {"y"};
    gr_node *drop = gr_node_add(g, GR_OP_DROPOUT, "drop", 2, in, 1, y_name);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    gr_value *y = drop->outputs[0];
    assert_int_equal(gr_graph_add_output(g, y), GR_OK);
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.eval = eval;
    static const char *const tm[] = {"train_mode", NULL};
    run_passes(g, tm, &t);
    if (eval) return g;
    gr_value *m[2] = {g->outputs[0], gr_graph_add_data(g, GR_VALUE_CONST, "R", GR_DTYPE_F32, &s, r)};
    gr_node *mul = gr_node_add(g, GR_OP_MUL, "weigh", 2, m, 1, NULL);
    gr_node *sum = gr_node_add(g, GR_OP_REDUCE_SUM, "sum", 1, &mul->outputs[0], 1, NULL);
    assert_int_equal(gr_node_set_int(g, sum, "keepdims", 0), GR_OK);
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    g->loss = sum->outputs[0];
    static const char *const ad[] = {"autodiff", NULL};
    run_passes(g, ad, &t);
    assert_int_equal(g->n_grads, 1);
    assert_int_equal(gr_graph_add_output(g, g->grads[0].grad), GR_OK);
    return g;
}

/* mask = y / p for seed; dy/dp into grad. */
static void dropout_run(gr_plan *p, int64_t seed, float *y, float *grad) {
    gr_session *s = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    void *inputs[2] = {0}, *outputs[2] = {y, grad};
    int k = input_index(p, "graft.seed");
    assert_true(k >= 0);
    inputs[k] = &seed;
    if (gr_session_run(s, inputs, outputs, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_session_free(s);
}

static void test_dropout_mask(void **state) {
    (void)state;
    enum { N = DROP_N * DROP_N };
    float *r = malloc(N * sizeof(float)), *y1 = malloc(N * sizeof(float)),
          *y2 = malloc(N * sizeof(float)), *y3 = malloc(N * sizeof(float)),
          *grad = malloc(N * sizeof(float)), *grad2 = malloc(N * sizeof(float));
    gr_graph *g = dropout_graph(0, r);
    assert_int_equal(count_ops(g, GR_OP_DROPOUT), 0);
    assert_int_equal(count_ops(g, GR_OP_DROPOUT_MASK), 1);
    const float *p0 = gr_graph_find(g, "p")->data;
    float *p = malloc(N * sizeof(float));
    memcpy(p, p0, N * sizeof(float));
    gr_plan *plan = compile(g);
    dropout_run(plan, 1, y1, grad);
    dropout_run(plan, 2, y2, grad2);
    dropout_run(plan, 1, y3, grad2);
    int zeros = 0, differ = 0;
    for (int i = 0; i < N; i++) {
        double m = y1[i] / p[i];
        if (!(m == 0 || fabs(m - 2) < 1e-6)) fail_msg("mask[%d] = %g, expected 0 or 2", i, m);
        zeros += m == 0;
        differ += (y1[i] == 0) != (y2[i] == 0);
        /* d L / d p = mask * R, the mask of the same run. */
        if (fabs(grad[i] - m * r[i]) > 1e-6)
            fail_msg("d L / d p[%d] = %g, mask %g * dy %g", i, (double)grad[i], m, (double)r[i]);
    }
    print_message("dropout 0.5: %d zeros of %d; seeds 1 and 2 differ at %d\n", zeros, N, differ);
    assert_true(zeros > N / 2 - 300 && zeros < N / 2 + 300);  /* 6 sigma */
    assert_true(differ > N / 2 - 300 && differ < N / 2 + 300); /* independent masks */
    assert_memory_equal(y1, y3, N * sizeof(float));
    gr_plan_free(plan);
    gr_graph_free(g);

    /* Evaluation: the identity, no seed. */
    g = dropout_graph(1, r);
    assert_int_equal(count_ops(g, GR_OP_DROPOUT) + count_ops(g, GR_OP_DROPOUT_MASK), 0);
    assert_null(gr_graph_find(g, "graft.seed"));
    plan = compile(g);
    assert_int_equal(plan->n_inputs, 0);
    gr_session *s = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(plan, 1, &s, &st), GR_OK);
    void *outputs[1] = {y1};
    assert_int_equal(gr_session_run(s, NULL, outputs, &st), GR_OK);
    assert_memory_equal(y1, p, N * sizeof(float));
    gr_session_free(s);
    gr_plan_free(plan);
    gr_graph_free(g);
    free(p);
    free(r);
    free(y1);
    free(y2);
    free(y3);
    free(grad);
    free(grad2);
}

/* Two Dropouts of one step draw different masks from the one seed. */
static void test_dropouts_of_one_step_differ(void **state) {
    (void)state;
    enum { N = 4096 };
    gr_graph *g = gr_graph_new("two");
    int64_t n = N;
    gr_shape s = gr_shape_make(1, &n);
    gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &s);
    const char *names[2][1] = {{"y1"}, {"y2"}};
    for (int k = 0; k < 2; k++) {
        gr_node *d = gr_node_add(g, GR_OP_DROPOUT, names[k][0], 1, &x, 1, names[k]);
        assert_int_equal(gr_graph_add_output(g, d->outputs[0]), GR_OK);
    }
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    gr_train_opts t;
    gr_train_opts_default(&t);
    static const char *const tm[] = {"train_mode", NULL};
    run_passes(g, tm, &t);
    assert_int_equal(count_ops(g, GR_OP_DROPOUT_MASK), 2);
    gr_plan *p = compile(g);
    float *in = malloc(N * sizeof(float)), *y1 = malloc(N * sizeof(float)),
          *y2 = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) in[i] = 1.0f;
    int64_t seed = 42;
    void *inputs[2] = {0}, *outputs[2] = {y1, y2};
    inputs[input_index(p, "x")] = in;
    inputs[input_index(p, "graft.seed")] = &seed;
    gr_session *sess = NULL;
    assert_int_equal(gr_session_new(p, 1, &sess, &st), GR_OK);
    assert_int_equal(gr_session_run(sess, inputs, outputs, &st), GR_OK);
    int differ = 0, zeros = 0;
    for (int i = 0; i < N; i++) {
        differ += (y1[i] == 0) != (y2[i] == 0);
        zeros += (y1[i] == 0) + (y2[i] == 0);
    }
    /* Independent masks of ratio 0.5 differ at half the places. */
    assert_true(differ > N / 2 - 200 && differ < N / 2 + 200);
    assert_true(zeros > N - 300 && zeros < N + 300);
    gr_session_free(sess);
    gr_plan_free(p);
    gr_graph_free(g);
    free(in);
    free(y1);
    free(y2);
}

/* Outside training ONNX's Dropout mask is all true; a graph that reads it
 * must still be whole after "train_mode" in eval (it was left reading the
 * removed node's output). */
static void test_eval_dropout_mask_output_is_all_true(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("mask");
    int64_t dims[2] = {3, 4};
    gr_shape s = gr_shape_make(2, dims);
    gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &s);
    const char *outs[] = {"y", "mask"};
    gr_node *d = gr_node_add(g, GR_OP_DROPOUT, "drop", 1, &x, 2, outs);
    gr_node *c = gr_node_add(g, GR_OP_CAST, "cast", 1, &d->outputs[1], 1, NULL);
    assert_int_equal(gr_node_set_int(g, c, "to", GR_DTYPE_F32), GR_OK);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    assert_int_equal(gr_graph_add_output(g, d->outputs[0]), GR_OK);
    assert_int_equal(gr_graph_add_output(g, c->outputs[0]), GR_OK);
    gr_train_opts t;
    gr_train_opts_default(&t);
    static const char *const tm[] = {"train_mode", NULL};
    /* Training cannot use the mask... */
    gr_graph *g2 = gr_graph_clone(g);
    assert_non_null(strstr(passes_error(g2, tm, &t), "its mask output is used"));
    gr_graph_free(g2);
    /* ...evaluation can. */
    t.eval = 1;
    run_passes(g, tm, &t);
    assert_int_equal(gr_graph_verify(g, &st), GR_OK);
    assert_int_equal(count_ops(g, GR_OP_DROPOUT), 0);
    gr_plan *p = compile(g);
    float in[12], y[12], mask[12];
    for (int i = 0; i < 12; i++) in[i] = (float)i - 5.5f;
    void *inputs[1] = {in}, *outputs[2] = {y, mask};
    gr_session *sess = NULL;
    assert_int_equal(gr_session_new(p, 1, &sess, &st), GR_OK);
    assert_int_equal(gr_session_run(sess, inputs, outputs, &st), GR_OK);
    assert_memory_equal(y, in, sizeof in);
    for (int i = 0; i < 12; i++) assert_true(mask[i] == 1.0f);
    gr_session_free(sess);
    gr_plan_free(p);
    gr_graph_free(g);
}

/* --------------------------------------------------------------- optimizer */

enum { OPT_N = 6 };
static const float opt_w0[OPT_N] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f};
static const float opt_c[OPT_N] = {1.0f, 0.5f, -0.3f, 2.0f, 1.5f, 0.2f};

/* L = sum(w * w * c): d L / d w = 2 w c, a gradient that depends on w. */
static gr_plan *optimizer_step(const gr_train_opts *t) {
    gr_graph *g = gr_graph_new("opt");
    int64_t n = OPT_N;
    gr_shape s = gr_shape_make(1, &n);
    gr_value *w = gr_graph_add_data(g, GR_VALUE_PARAM, "w", GR_DTYPE_F32, &s, opt_w0);
    w->variable = w->trainable = 1;
    gr_value *in[2] = {w, w};
    gr_node *sq = gr_node_add(g, GR_OP_MUL, "sq", 2, in, 1, NULL);
    in[0] = sq->outputs[0];
    in[1] = gr_graph_add_data(g, GR_VALUE_CONST, "c", GR_DTYPE_F32, &s, opt_c);
    gr_node *m = gr_node_add(g, GR_OP_MUL, "m", 2, in, 1, NULL);
    gr_node *sum = gr_node_add(g, GR_OP_REDUCE_SUM, "sum", 1, &m->outputs[0], 1, NULL);
    assert_int_equal(gr_node_set_int(g, sum, "keepdims", 0), GR_OK);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    assert_int_equal(gr_graph_add_output(g, sum->outputs[0]), GR_OK);
    g->loss = sum->outputs[0];
    static const char *const pipeline[] = {"autodiff", "optimizer", NULL};
    run_passes(g, pipeline, t);
    gr_plan *p = compile(g);
    gr_graph_free(g);
    return p;
}

/* torch.optim.SGD / Adam / AdamW step by step in double precision, with
 * clip_grad_norm_ before it, from PyTorch's documented algorithms. */
static void optimizer_reference(const gr_train_opts *t, double lr, double dampening, int steps,
                                double *w) {
    double buf[OPT_N] = {0}, m[OPT_N] = {0}, v[OPT_N] = {0}, g[OPT_N];
    for (int i = 0; i < OPT_N; i++) w[i] = opt_w0[i];
    for (int k = 1; k <= steps; k++) {
        double norm = 0;
        for (int i = 0; i < OPT_N; i++) {
            g[i] = 2 * w[i] * opt_c[i];
            norm += g[i] * g[i];
        }
        norm = sqrt(norm);
        if (t->clip_norm > 0 && t->clip_norm / (norm + 1e-6) < 1)
            for (int i = 0; i < OPT_N; i++) g[i] *= t->clip_norm / (norm + 1e-6);
        for (int i = 0; i < OPT_N; i++) {
            if (t->optimizer == GR_OPTIMIZER_ADAMW) w[i] *= 1 - lr * t->weight_decay;
            else g[i] += t->weight_decay * w[i];
            if (t->optimizer == GR_OPTIMIZER_SGD) {
                buf[i] = k == 1 ? g[i] : t->momentum * buf[i] + (1 - dampening) * g[i];
                double d = t->momentum == 0 ? g[i] : t->nesterov ? g[i] + t->momentum * buf[i]
                                                                   : buf[i];
                w[i] -= lr * d;
            } else {
                m[i] = t->beta1 * m[i] + (1 - t->beta1) * g[i];
                v[i] = t->beta2 * v[i] + (1 - t->beta2) * g[i] * g[i];
                double mhat = m[i] / (1 - pow(t->beta1, k));
                double denom = sqrt(v[i]) / sqrt(1 - pow(t->beta2, k)) + t->eps;
                w[i] -= lr * mhat / denom;
            }
        }
    }
}

static void check_optimizer(const gr_train_opts *t, double lr, double dampening,
                            const char *what) {
    enum { STEPS = 4 };
    gr_plan *p = optimizer_step(t);
    gr_session *s = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    for (int k = 1; k <= STEPS; k++) {
        /* The run-time scalars as gr_passes.h defines them. */
        float lr_f = (float)lr, damp = k == 1 ? 1.0f : (float)(1 - dampening);
        float step_size = (float)(lr / (1 - pow(t->beta1, k)));
        float bc2 = (float)sqrt(1 - pow(t->beta2, k)), decay = (float)(1 - lr * t->weight_decay);
        void *inputs[8] = {0};
        const char *names[] = {"graft.lr", "graft.damp", "graft.step_size", "graft.bc2_sqrt",
                               "graft.decay"};
        float *values[] = {&lr_f, &damp, &step_size, &bc2, &decay};
        for (int j = 0; j < 5; j++) {
            int i = input_index(p, names[j]);
            if (i >= 0) inputs[i] = values[j];
        }
        float loss;
        void *outputs[1] = {&loss};
        if (gr_session_run(s, inputs, outputs, &st) != GR_OK) fail_msg("%s", st.msg);
    }
    double want[OPT_N];
    optimizer_reference(t, lr, dampening, STEPS, want);
    const float *w = state_of(p, s, "w");
    for (int i = 0; i < OPT_N; i++)
        if (fabs(w[i] - want[i]) > 1e-5 * fmax(1, fabs(want[i])))
            fail_msg("%s: w[%d] = %.9g after %d steps, PyTorch's algorithm %.9g", what, i,
                     (double)w[i], STEPS, want[i]);
    gr_session_free(s);
    gr_plan_free(p);
}

static void test_optimizers_follow_pytorch_algorithms(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    check_optimizer(&t, 0.05, 0, "sgd");
    t.momentum = 0.9;
    t.dampening = 0.3;
    t.weight_decay = 0.1;
    check_optimizer(&t, 0.05, 0.3, "sgd momentum dampening weight decay");
    t.dampening = 0;
    t.nesterov = 1;
    check_optimizer(&t, 0.05, 0, "sgd nesterov");
    t.nesterov = 0;
    t.clip_norm = 0.5;
    check_optimizer(&t, 0.05, 0, "sgd clipped");
    gr_train_opts_default(&t);
    t.optimizer = GR_OPTIMIZER_ADAM;
    check_optimizer(&t, 0.01, 0, "adam");
    t.weight_decay = 0.1;
    t.beta1 = 0.8;
    t.beta2 = 0.99;
    t.eps = 1e-3;
    check_optimizer(&t, 0.01, 0, "adam l2 weight decay, other betas and eps");
    t.optimizer = GR_OPTIMIZER_ADAMW;
    t.clip_norm = 1.0;
    check_optimizer(&t, 0.01, 0, "adamw clipped");
}

/* --------------------------------------------------- missing gradient rules */

static void test_autodiff_lists_every_op_without_gradient(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("no_grad");
    int64_t dims[4] = {1, 2, 3, 3};
    gr_shape s = gr_shape_make(4, dims), sc = gr_shape_scalar();
    gr_value *p = gr_graph_add_data(g, GR_VALUE_PARAM, "p", GR_DTYPE_F32, &s, NULL);
    p->variable = p->trainable = 1;
    float three = 3;
    gr_node *lrn = gr_node_add(g, GR_OP_LRN, "my_lrn", 1, &p, 1, NULL);
    assert_int_equal(gr_node_set_int(g, lrn, "size", 3), GR_OK);
    gr_value *in[2] = {lrn->outputs[0],
                       gr_graph_add_data(g, GR_VALUE_CONST, "three", GR_DTYPE_F32, &sc, &three)};
    gr_node *mod = gr_node_add(g, GR_OP_MOD, "my_mod", 2, in, 1, NULL);
    assert_int_equal(gr_node_set_int(g, mod, "fmod", 1), GR_OK);
    gr_node *sum = gr_node_add(g, GR_OP_REDUCE_SUM, "sum", 1, &mod->outputs[0], 1, NULL);
    assert_int_equal(gr_node_set_int(g, sum, "keepdims", 0), GR_OK);
    gr_status st = {0};
    assert_int_equal(gr_graph_infer_shapes(g, &st), GR_OK);
    assert_int_equal(gr_graph_add_output(g, sum->outputs[0]), GR_OK);
    g->loss = sum->outputs[0];
    static const char *const ad[] = {"autodiff", NULL};
    const char *msg = passes_error(g, ad, NULL);
    assert_non_null(strstr(msg, "2 nodes"));
    assert_non_null(strstr(msg, "LRN (node 'my_lrn')"));
    assert_non_null(strstr(msg, "Mod (node 'my_mod')"));
    gr_graph_free(g);
}

int main(int argc, char **argv) {
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_losses_and_gradients_match_pytorch),
        cmocka_unit_test(test_loss_option_errors),
        cmocka_unit_test(test_head_replaces_mlp_gemm),
        cmocka_unit_test(test_head_on_transformer),
        cmocka_unit_test(test_head_replaces_matmul_add),
        cmocka_unit_test(test_head_untransposed_weights),
        cmocka_unit_test(test_head_errors),
        cmocka_unit_test(test_freeze_selects_trainable_set),
        cmocka_unit_test(test_freeze_errors),
        cmocka_unit_test(test_frozen_batch_norm_runs_in_inference_mode),
        cmocka_unit_test(test_batch_norm_training_formula),
        cmocka_unit_test(test_eval_mode_uses_running_statistics),
        cmocka_unit_test(test_accumulation_equals_full_batch),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_dropouts_of_one_step_differ),
        cmocka_unit_test(test_eval_dropout_mask_output_is_all_true),
        cmocka_unit_test(test_optimizers_follow_pytorch_algorithms),
        cmocka_unit_test(test_autodiff_lists_every_op_without_gradient),
    };
    struct CMUnitTest tests[sizeof all / sizeof *all];
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (argc < 2 || strstr(all[i].name, argv[1])) tests[n++] = all[i];
    return _cmocka_run_group_tests("train_passes", tests, n, NULL, NULL);
}
