/* test_adapters.c: the "adapters" pass (passes/adapters.c): names, shapes,
 * initial values and origin of bottleneck adapters and IA3 vectors on the
 * golden models (tests/data/golden); adapted models compute exactly what
 * the models without adapters computed; errors; and 20 training steps of
 * the frozen models with adapters against PyTorch (golden/adapters, made by
 * scripts/make-goldens.py: per-step losses and final tensors within the
 * fine-tuning tolerances, 1e-4 relative for the MLP and the transformer,
 * 1e-3 for the CNN). */
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

#include "codegen/gr_codegen.h"
#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"
#include "runtime/gr_runtime.h"
#include "tests/cg_run.h"
#include "tests/golden.h"

/* ---------------------------------------------------------------- helpers */

/* Runs the "adapters" pass with these specs; returns its code (st set). */
static gr_code adapt(gr_graph *g, int n_after, const char *const *after, int n_ia3,
                     const char *const *ia3, uint64_t seed, gr_status *st) {
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.n_adapter_after = n_after, t.adapter_after = after;
    t.n_ia3 = n_ia3, t.ia3 = ia3;
    t.seed = seed;
    gr_pass_opts po = {.train = &t};
    static const char *const pass[] = {"adapters", NULL};
    return gr_passes_run(g, pass, &po, st);
}

/* The parameter `name` of g: an adapter's, f32, with these dims. */
static const float *adapter_param(const gr_graph *g, const char *name, int rank,
                                  const int64_t *dims) {
    const gr_value *v = gr_graph_find(g, name);
    if (!v) fail_msg("no value '%s'", name);
    assert_int_equal(v->kind, GR_VALUE_PARAM);
    assert_int_equal(v->origin, GR_ORIGIN_ADAPTER);
    assert_int_equal(v->dtype, GR_DTYPE_F32);
    assert_true(v->trainable);
    assert_int_equal(v->shape.rank, rank);
    for (int d = 0; d < rank; d++) assert_int_equal(v->shape.dims[d], dims[d]);
    return v->data;
}

static void assert_all(const float *v, int64_t n, float want) {
    for (int64_t i = 0; i < n; i++) assert_true(v[i] == want);
}

/* Values in (-bound, bound), not all equal (nn.Linear's uniform init). */
static void assert_uniform(const float *v, int64_t n, double bound) {
    int distinct = 0;
    for (int64_t i = 0; i < n; i++) {
        assert_true(fabs(v[i]) < bound);
        distinct |= v[i] != v[0];
    }
    assert_true(n == 1 || distinct);
}

/* ------------------------------------------------------ names and shapes */

static void test_mlp_adapter_and_ia3_names_shapes_init(void **state) {
    (void)state;
    gr_graph *g = import_golden("mlp");
    gr_status st = {0};
    const char *after[] = {"/fc1/Gemm:dim=8"}, *ia3[] = {"/fc2/*"};
    assert_int_equal(adapt(g, 1, after, 1, ia3, 0, &st), GR_OK);
    const float *down = adapter_param(g, "/fc1/Gemm.adapter.down.weight", 2, (int64_t[]){32, 8});
    assert_uniform(down, 32 * 8, 1 / sqrt(32.0));
    assert_uniform(adapter_param(g, "/fc1/Gemm.adapter.down.bias", 1, (int64_t[]){8}), 8,
                   1 / sqrt(32.0));
    assert_all(adapter_param(g, "/fc1/Gemm.adapter.up.weight", 2, (int64_t[]){8, 32}), 256, 0);
    assert_all(adapter_param(g, "/fc1/Gemm.adapter.up.bias", 1, (int64_t[]){32}), 32, 0);
    assert_all(adapter_param(g, "/fc2/Gemm.ia3", 1, (int64_t[]){32}), 32, 1);
    /* The Gemm feeds the adapter only; the Relu after it reads the residual. */
    gr_node *relu = gr_graph_find_node(g, "/Relu");
    assert_string_equal(relu->inputs[0]->producer->name, "/fc1/Gemm.adapter.residual");
    assert_string_equal(relu->inputs[0]->name, "/fc1/Gemm_output_0");
    assert_string_equal(g->outputs[0]->name, "logits");
    assert_int_equal(gr_graph_verify(g, &st), GR_OK);
    gr_graph_free(g);
}

/* Channel axis after Conv (and through BatchNormalization, Relu and a
 * residual Add, and through the IA3 of an earlier node); default width
 * C/16, at least 1; IA3 [C,1,1]. */
static void test_cnn_channel_axis_default_dim(void **state) {
    (void)state;
    gr_graph *g = import_golden("cnn");
    gr_status st = {0};
    const char *after[] = {"/conv2/Conv", "/Relu_2:dim=3", "/Relu"};
    const char *ia3[] = {"/res_conv2/Conv", "/bn1/*"};
    assert_int_equal(adapt(g, 3, after, 2, ia3, 0, &st), GR_OK);
    adapter_param(g, "/Relu.adapter.down.weight", 4, (int64_t[]){1, 8, 1, 1});
    adapter_param(g, "/bn1/BatchNormalization.ia3", 3, (int64_t[]){8, 1, 1});
    adapter_param(g, "/conv2/Conv.adapter.down.weight", 4, (int64_t[]){1, 16, 1, 1});
    adapter_param(g, "/conv2/Conv.adapter.up.weight", 4, (int64_t[]){16, 1, 1, 1});
    adapter_param(g, "/conv2/Conv.adapter.up.bias", 1, (int64_t[]){16});
    adapter_param(g, "/Relu_2.adapter.down.weight", 4, (int64_t[]){3, 8, 1, 1});
    adapter_param(g, "/Relu_2.adapter.up.weight", 4, (int64_t[]){8, 3, 1, 1});
    adapter_param(g, "/res_conv2/Conv.ia3", 3, (int64_t[]){8, 1, 1});
    const gr_node *down = gr_graph_find_node(g, "/conv2/Conv.adapter.down");
    assert_int_equal(down->op, GR_OP_CONV);
    assert_int_equal(gr_graph_verify(g, &st), GR_OK);
    gr_graph_free(g);
}

/* The last axis of a [N,T,C] MatMul + Add output (the transformer's ff2). */
static void test_transformer_last_axis(void **state) {
    (void)state;
    gr_graph *g = import_golden("transformer");
    gr_status st = {0};
    const char *after[] = {"/ff2/Add"}, *ia3[] = {"/v/Add", "/ln1/*"};
    assert_int_equal(adapt(g, 1, after, 2, ia3, 0, &st), GR_OK);
    adapter_param(g, "/ff2/Add.adapter.down.weight", 2, (int64_t[]){16, 1});
    adapter_param(g, "/ff2/Add.adapter.up.weight", 2, (int64_t[]){1, 16});
    adapter_param(g, "/v/Add.ia3", 1, (int64_t[]){16});
    adapter_param(g, "/ln1/LayerNormalization.ia3", 1, (int64_t[]){16});
    assert_int_equal(gr_graph_verify(g, &st), GR_OK);
    gr_graph_free(g);
}

/* --seed decides the down-projection; the same seed gives the same one. */
static void test_seed_decides_down_init(void **state) {
    (void)state;
    const char *after[] = {"/fc1/Gemm"};
    float first[64];
    for (int run = 0; run < 3; run++) {
        gr_graph *g = import_golden("mlp");
        gr_status st = {0};
        assert_int_equal(adapt(g, 1, after, 0, NULL, run == 2 ? 7 : 3, &st), GR_OK);
        const float *w = adapter_param(g, "/fc1/Gemm.adapter.down.weight", 2,
                                       (int64_t[]){32, 2});
        if (run == 0) memcpy(first, w, sizeof first);
        else if (run == 1) assert_memory_equal(first, w, sizeof first);
        else assert_memory_not_equal(first, w, sizeof first);
        gr_graph_free(g);
    }
}

/* ------------------------------------------- outputs unchanged at init */

/* The model's output on the golden x (first batch), compiled for
 * inference (the golden models are training-mode exports). fold 0:
 * adapter parameters are variable (as in training), so no pass can fold
 * them away: the adapters really run. fold 1: constants, and the inference
 * pipeline's fold_batchnorm runs (it folds IA3 vectors into weights). */
static float *infer(gr_graph *g, const char *model, int fold, size_t *n_out) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", GOLDEN, model);
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i]->origin == GR_ORIGIN_ADAPTER) g->values[i]->variable = !fold;
    gr_status st = {0};
    static const char *const plain[] = {"shapes", "train_mode", "cse", "fold", "dce", "fuse",
                                        NULL};
    static const char *const folding[] = {"shapes", "train_mode", "fold_batchnorm", "cse",
                                          "fold", "dce", "fuse", NULL};
    const char *const *pipeline = fold ? folding : plain;
    gr_train_opts t; /* eval: BatchNormalization on its running statistics */
    gr_train_opts_default(&t);
    t.eval = 1;
    gr_pass_opts po = {.train = &t};
    if (gr_passes_run(g, pipeline, &po, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_tensor x;
    load_npy(dir, "x.npy", &x);
    *n_out = (size_t)gr_value_numel(g->outputs[0]);
    float *y = calloc(*n_out, sizeof *y);
    void *in[1] = {x.data}, *out[1] = {y};
    if (cg_run_graph(g, in, out, 1, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_free(x.data);
    return y;
}

static void check_unchanged(const char *model, int n_after, const char *const *after,
                            int n_ia3, const char *const *ia3) {
    gr_graph *base = import_golden(model), *g = import_golden(model);
    gr_status st = {0};
    assert_int_equal(adapt(g, n_after, after, n_ia3, ia3, 1, &st), GR_OK);
    size_t n, m;
    float *want = infer(base, model, 0, &n), *got = infer(g, model, 0, &m);
    assert_int_equal(n, m);
    for (size_t i = 0; i < n; i++)
        if (!(got[i] == want[i]))
            fail_msg("%s: output[%zu] = %.9g with adapters, %.9g without", model, i,
                     (double)got[i], (double)want[i]);
    free(want);
    free(got);
    gr_graph_free(base);
    gr_graph_free(g);
}

static void test_zero_init_leaves_outputs_identical(void **state) {
    (void)state;
    const char *mlp_after[] = {"/fc1/Gemm:dim=8", "/fc3/Gemm"}, *mlp_ia3[] = {"/fc2/Gemm"};
    check_unchanged("mlp", 2, mlp_after, 1, mlp_ia3);
    const char *cnn_after[] = {"/conv1/Conv:dim=4", "/Relu_2"};
    const char *cnn_ia3[] = {"/res_conv2/Conv", "/conv1/Conv", "/fc/Gemm"};
    check_unchanged("cnn", 2, cnn_after, 3, cnn_ia3);
    const char *tf_after[] = {"/ff2/Add:dim=4", "/ln2/*"}, *tf_ia3[] = {"/k/Add", "/v/Add"};
    check_unchanged("transformer", 2, tf_after, 2, tf_ia3);
}

/* IA3 vectors (random, not one) after a Conv or Gemm fold into its weights
 * in the inference pipeline (fold_batchnorm): no Mul is left, and the
 * outputs are those of the unfolded model (1e-5 relative). IA3 after an
 * Add of a [N,T,C] MatMul stays. */
static void check_folded(const char *model, int n_ia3, const char *const *ia3, int muls_left) {
    gr_graph *g = import_golden(model), *f = NULL;
    gr_status st = {0};
    assert_int_equal(adapt(g, 0, NULL, n_ia3, ia3, 0, &st), GR_OK);
    gr_rng r;
    gr_rng_seed(&r, 5);
    for (int i = 0; i < g->n_values; i++) {
        gr_value *v = g->values[i];
        for (int64_t k = 0; v->origin == GR_ORIGIN_ADAPTER && k < gr_value_numel(v); k++)
            ((float *)v->data)[k] = (float)(0.5 + gr_rng_uniform(&r));
    }
    assert_non_null(f = gr_graph_clone(g));
    size_t n, m;
    float *want = infer(g, model, 0, &n), *got = infer(f, model, 1, &m);
    assert_int_equal(n, m);
    for (size_t i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 1e-5 * fmax(fabs(want[i]), 1))
            fail_msg("%s: output[%zu] = %.9g folded, %.9g not", model, i, (double)got[i],
                     (double)want[i]);
    int muls = 0;
    for (int i = 0; i < f->n_nodes; i++)
        muls += !f->nodes[i]->dead && strstr(f->nodes[i]->name, ".ia3.mul") != NULL;
    assert_int_equal(muls, muls_left);
    free(want);
    free(got);
    gr_graph_free(g);
    gr_graph_free(f);
}

static void test_inference_folds_ia3_into_weights(void **state) {
    (void)state;
    const char *mlp[] = {"/fc1/Gemm", "/fc2/Gemm", "/fc3/Gemm"};
    check_folded("mlp", 3, mlp, 0);
    const char *cnn[] = {"/conv1/Conv", "/res_conv2/Conv", "/conv2/Conv", "/fc/Gemm"};
    check_folded("cnn", 4, cnn, 0);
    const char *tf[] = {"/k/Add", "/head/Gemm"};
    check_folded("transformer", 2, tf, 1);
}

/* ----------------------------------------------------------------- errors */

static void expect_error(const char *model, const char *after, const char *ia3, gr_code code,
                         const char *message) {
    gr_graph *g = import_golden(model);
    gr_status st = {0};
    const char *a[] = {after}, *i[] = {ia3};
    assert_int_equal(adapt(g, after != NULL, a, ia3 != NULL, i, 0, &st), code);
    if (!strstr(st.msg, message)) fail_msg("'%s' does not say '%s'", st.msg, message);
    gr_graph_free(g);
}

static void test_errors_name_option_and_node(void **state) {
    (void)state;
    expect_error("mlp", "nope*", NULL, GR_ERR_BAD_ARG,
                 "--adapter-after 'nope*' matches no node of the model");
    expect_error("mlp", NULL, "/fc9/*", GR_ERR_BAD_ARG, "--ia3 '/fc9/*' matches no node");
    expect_error("mlp", "/fc1/Gemm:dim=0", NULL, GR_ERR_BAD_ARG,
                 "dim expects an integer in 1..1048576, got '0'");
    expect_error("mlp", "/fc1/Gemm:dim=4x", NULL, GR_ERR_BAD_ARG, "got '4x'");
    expect_error("mlp", ":dim=4", NULL, GR_ERR_BAD_ARG, "a non-empty GLOB");
    /* Attention heads [N,H,T,hd] after a Transpose: no feature axis. */
    expect_error("transformer", "/Transpose", NULL, GR_ERR_BAD_ARG,
                 "node '/Transpose' (Transpose): cannot tell the feature axis");
    /* The same adapter twice: its names are taken. */
    gr_graph *g = import_golden("mlp");
    gr_status st = {0};
    const char *after[] = {"/fc1/Gemm"};
    assert_int_equal(adapt(g, 1, after, 0, NULL, 0, &st), GR_OK);
    assert_int_equal(adapt(g, 1, after, 0, NULL, 0, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "already has a value named '/fc1/Gemm.adapter.down.weight'"));
    gr_graph_free(g);
}

/* A node whose output is not a float tensor of rank >= 2. */
static void test_error_on_integer_output(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("shape");
    gr_shape s = gr_shape_make(2, (int64_t[]){2, 3});
    gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &s);
    gr_node *n = gr_node_add(g, GR_OP_SHAPE, "shape0", 1, &x, 1, NULL);
    assert_int_equal(gr_graph_add_output(g, n->outputs[0]), GR_OK);
    gr_status st = {0};
    const char *ia3[] = {"shape0"};
    assert_int_equal(adapt(g, 0, NULL, 1, ia3, 0, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "--ia3: node 'shape0' (Shape): its output i64[2] is not a "
                                   "f32 tensor of rank >= 2"));
    gr_graph_free(g);
}

/* A node computing from parameters only (a weight transform) is no
 * activation: globs do not match it. */
static void test_parameter_only_nodes_are_skipped(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("weights");
    gr_shape xs = gr_shape_make(2, (int64_t[]){2, 3}), ws = gr_shape_make(2, (int64_t[]){3, 4});
    float w[12] = {0};
    gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &xs);
    gr_value *wv = gr_graph_add_data(g, GR_VALUE_PARAM, "w", GR_DTYPE_F32, &ws, w);
    gr_node *t = gr_node_add(g, GR_OP_RELU, "w_relu", 1, &wv, 1, NULL);
    gr_node *mm = gr_node_add(g, GR_OP_MATMUL, "mm", 2, (gr_value *[]){x, t->outputs[0]}, 1,
                              NULL);
    assert_int_equal(gr_graph_add_output(g, mm->outputs[0]), GR_OK);
    gr_status st = {0};
    const char *ia3[] = {"w_relu"}, *all[] = {"*"};
    assert_int_equal(adapt(g, 0, NULL, 1, ia3, 0, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "--ia3 'w_relu' matches no node of the model that computes "
                                   "from its inputs"));
    assert_int_equal(adapt(g, 0, NULL, 1, all, 0, &st), GR_OK);
    assert_non_null(gr_graph_find(g, "mm.ia3"));
    assert_null(gr_graph_find(g, "w_relu.ia3"));
    gr_graph_free(g);
}

/* ------------------------------------------------------ training goldens */

typedef struct {
    const char *model, *config;
    double tol;
    gr_optimizer_kind optimizer;
    double lr, momentum, weight_decay;
    int n_after, n_ia3;
    const char *after[2], *ia3[2];
    const char *train_only; /* NULL: adapters only */
} golden_case;

/* Run-time scalars of step t (1-based) by name: SGD (dampening 0) and
 * AdamW with PyTorch's betas. */
static void scalars(const gr_plan *p, const golden_case *c, int t, float *v, void **inputs) {
    for (int i = 0; i < p->n_inputs; i++) {
        const char *name = p->buffers[p->inputs[i]].name;
        double x = !strcmp(name, "graft.lr")          ? c->lr
                   : !strcmp(name, "graft.damp")      ? 1.0
                   : !strcmp(name, "graft.step_size") ? c->lr / (1.0 - pow(0.9, t))
                   : !strcmp(name, "graft.bc2_sqrt")  ? sqrt(1.0 - pow(0.999, t))
                   : !strcmp(name, "graft.decay")     ? 1.0 - c->lr * c->weight_decay
                                                      : NAN;
        if (!isnan(x)) v[i] = (float)x, inputs[i] = &v[i];
    }
}

/* NAME as its file stem (runtime/checkpoint.c): '/' and the like -> '_'. */
static void file_stem(const char *name, char *buf, size_t size) {
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++) {
        char ch = name[i];
        int keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        buf[i] = keep ? ch : '_';
    }
    buf[i] = '\0';
}

/* The training graph of case c: "adapters" and "train" (as graft train
 * runs them), the adapter tensors of the golden's init/, then the
 * training pipeline. */
static gr_graph *training_graph(const golden_case *c, const char *dir) {
    gr_graph *g = import_golden(c->model);
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.optimizer = c->optimizer;
    t.momentum = c->momentum;
    t.weight_decay = c->weight_decay;
    t.n_adapter_after = c->n_after, t.adapter_after = c->after;
    t.n_ia3 = c->n_ia3, t.ia3 = c->ia3;
    const char *only[1] = {c->train_only};
    t.n_train_only = c->train_only != NULL, t.train_only = only;
    gr_pass_opts po = {.train = &t};
    gr_status st = {0};
    static const char *const edits[] = {"adapters", "train", NULL};
    static const char *const pipeline[] = {"shapes", "train_mode", "loss", "autodiff",
                                           "optimizer", "cse", "fold", "dce", "fuse", NULL};
    char init[1100];
    snprintf(init, sizeof init, "%s/init", dir);
    int n_loaded = 0;
    if (gr_passes_run(g, edits, &po, &st) != GR_OK ||
        gr_graph_load_params(g, init, &n_loaded, &st) != GR_OK ||
        gr_passes_run(g, pipeline, &po, &st) != GR_OK)
        fail_msg("%s/%s: %s", c->model, c->config, st.msg);
    return g;
}

/* 20 steps on the golden batches; every loss within c->tol of PyTorch's. */
static void run_steps(const golden_case *c, const char *dir, const gr_plan *p, gr_session *s) {
    char model_dir[512];
    snprintf(model_dir, sizeof model_dir, "%s/%s", GOLDEN, c->model);
    gr_tensor x, y, losses;
    load_npy(model_dir, "x.npy", &x);
    load_npy(model_dir, "y.npy", &y);
    load_npy(dir, "losses.npy", &losses);
    int steps = (int)losses.shape.dims[0];
    int64_t batch = x.shape.dims[0] / steps;
    size_t row = x.nbytes / (size_t)x.shape.dims[0];
    void *inputs[16] = {0}, *outputs[2];
    float v[16], loss = 0;
    assert_true(p->n_inputs <= 16);
    outputs[0] = &loss;
    outputs[1] = malloc(p->buffers[p->outputs[1]].nbytes);
    gr_status st = {0};
    double worst = 0;
    for (int k = 0; k < steps; k++) {
        for (int i = 0; i < p->n_inputs; i++) {
            const char *name = p->buffers[p->inputs[i]].name;
            if (!strcmp(name, GR_TRAIN_LABELS)) inputs[i] = (int64_t *)y.data + k * batch;
            else if (i == 0) inputs[i] = (char *)x.data + (size_t)(k * batch) * row;
        }
        scalars(p, c, k + 1, v, inputs);
        if (gr_session_run(s, inputs, outputs, &st) != GR_OK) fail_msg("%s", st.msg);
        double want = ((float *)losses.data)[k];
        worst = fmax(worst, fabs(loss - want) / fabs(want));
        if (fabs(loss - want) > c->tol * fabs(want))
            fail_msg("%s/%s step %d: loss %.8g, PyTorch %.8g", c->model, c->config, k,
                     (double)loss, want);
    }
    print_message("%s/%s: %d steps, worst loss error %.2g\n", c->model, c->config, steps, worst);
    free(outputs[1]);
    gr_free(x.data);
    gr_free(y.data);
    gr_free(losses.data);
}

/* Every final/STEM.npy against the trained state buffer of that stem;
 * returns how many there are. */
static int check_final(const golden_case *c, const char *dir, const gr_plan *p, gr_session *s) {
    char final[1100], stem[512];
    snprintf(final, sizeof final, "%s/final", dir);
    int n = 0;
    for (int b = 0; b < p->n_buffers; b++) {
        if (p->buffers[b].kind != GR_BUF_STATE || !p->buffers[b].name) continue;
        file_stem(p->buffers[b].name, stem, sizeof stem - 4);
        char path[1700];
        snprintf(path, sizeof path, "%s/%s.npy", final, stem);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fclose(f);
        gr_tensor want;
        strcat(stem, ".npy");
        load_npy(final, stem, &want);
        assert_int_equal(want.nbytes, p->buffers[b].nbytes);
        const float *got = gr_session_state(s, b), *w = want.data;
        double scale = 0;
        for (size_t i = 0; i < want.nbytes / 4; i++) scale = fmax(scale, fabs(w[i]));
        for (size_t i = 0; i < want.nbytes / 4; i++)
            if (fabs(got[i] - w[i]) > c->tol * fmax(scale, 1e-3))
                fail_msg("%s/%s: final %s[%zu] = %.8g, PyTorch %.8g", c->model, c->config,
                         p->buffers[b].name, i, (double)got[i], (double)w[i]);
        gr_free(want.data);
        n++;
    }
    return n;
}

static int count_npy(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strlen(e->d_name) > 4 && strstr(e->d_name, ".npy");
    closedir(d);
    return n;
}

static void run_golden(const golden_case *c) {
    char dir[512], final[600];
    snprintf(dir, sizeof dir, "%s/adapters/%s_%s", GOLDEN, c->model, c->config);
    snprintf(final, sizeof final, "%s/final", dir);
    gr_graph *g = training_graph(c, dir);
    /* What trains is exactly what PyTorch trained: the adapters (and the
     * head under --train-only), every one with a final tensor. */
    assert_int_equal(g->n_grads, count_npy(final));
    gr_status st = {0};
    gr_plan *p = NULL;
    gr_codegen_opts co = {0};
    if (gr_codegen_jit(g, &co, &p, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_session *s = NULL;
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    run_steps(c, dir, p, s);
    assert_int_equal(check_final(c, dir, p, s), g->n_grads);
    gr_session_free(s);
    gr_plan_free(p);
    gr_graph_free(g);
}

#define SGD GR_OPTIMIZER_SGD, 0.05, 0.9, 1e-4
#define ADAMW GR_OPTIMIZER_ADAMW, 1e-3, 0.0, 0.01
#define MLP 1, 1, {"/fc1/Gemm:dim=8"}, {"/fc2/Gemm"}
#define CNN 2, 1, {"/conv1/Conv:dim=4", "/conv2/Conv"}, {"/res_conv2/Conv"}
#define TRANSFORMER 1, 2, {"/ff2/Add:dim=4"}, {"/k/Add", "/v/Add"}

/* As scripts/make-goldens.py ADAPTER_SPECS and ADAPTER_CONFIGS. */
static const golden_case goldens[] = {
    {"mlp", "sgd", 1e-4, SGD, MLP, NULL},
    {"mlp", "adamw_head", 1e-4, ADAMW, MLP, "fc3.*"},
    {"cnn", "sgd", 1e-3, SGD, CNN, NULL},
    {"cnn", "adamw_head", 1e-3, ADAMW, CNN, "fc.*"},
    {"transformer", "sgd", 1e-4, SGD, TRANSFORMER, NULL},
    {"transformer", "adamw_head", 1e-4, ADAMW, TRANSFORMER, "head.*"},
};

static void test_golden_mlp_sgd(void **state) { (void)state; run_golden(&goldens[0]); }
static void test_golden_mlp_adamw_head(void **state) { (void)state; run_golden(&goldens[1]); }
static void test_golden_cnn_sgd(void **state) { (void)state; run_golden(&goldens[2]); }
static void test_golden_cnn_adamw_head(void **state) { (void)state; run_golden(&goldens[3]); }
static void test_golden_transformer_sgd(void **state) { (void)state; run_golden(&goldens[4]); }
static void test_golden_transformer_adamw_head(void **state) {
    (void)state;
    run_golden(&goldens[5]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_adapter_and_ia3_names_shapes_init),
        cmocka_unit_test(test_cnn_channel_axis_default_dim),
        cmocka_unit_test(test_transformer_last_axis),
        cmocka_unit_test(test_seed_decides_down_init),
        cmocka_unit_test(test_zero_init_leaves_outputs_identical),
        cmocka_unit_test(test_inference_folds_ia3_into_weights),
        cmocka_unit_test(test_errors_name_option_and_node),
        cmocka_unit_test(test_error_on_integer_output),
        cmocka_unit_test(test_parameter_only_nodes_are_skipped),
        cmocka_unit_test(test_golden_mlp_sgd),
        cmocka_unit_test(test_golden_mlp_adamw_head),
        cmocka_unit_test(test_golden_cnn_sgd),
        cmocka_unit_test(test_golden_cnn_adamw_head),
        cmocka_unit_test(test_golden_transformer_sgd),
        cmocka_unit_test(test_golden_transformer_adamw_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
