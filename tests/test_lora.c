/* test_lora.c: the "lora" and "lora_merge" passes and LoRA's text forms:
 * names, shapes, origins and init of the adapters on every form (Gemm
 * transB=1, MatMul of Transpose(W), x·W, Conv), errors, option parsing,
 * adapters.json round trip, and merged against unmerged outputs (with
 * nonzero B) plus a hand-computed reference for a Gemm with transA and
 * alpha. Training numerics against PyTorch are in test_train.c (lora_*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/gr_codegen.h"
#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"
#include "runtime/gr_runtime.h"

#define GOLDEN GRAFT_SOURCE_DIR "/tests/data/golden"
#define PPOCR GRAFT_SOURCE_DIR "/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"

/* ------------------------------------------------------------------ helpers */

static gr_graph *import_model(const char *path) {
    gr_status st = {0};
    gr_graph *g = NULL;
    if (gr_import_file(path, &g, &st) != GR_OK) fail_msg("%s", st.msg);
    return g;
}

static gr_graph *golden_model(const char *model) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/model.onnx", GOLDEN, model);
    return import_model(path);
}

/* x [xr, xc] and the PARAM W [wr, wc] (values i%7/10 - 0.3) in a new graph
 * to which the caller adds nodes. */
static gr_graph *x_and_w(int64_t xr, int64_t xc, int64_t wr, int64_t wc, gr_value **in) {
    gr_graph *g = gr_graph_new("tiny");
    gr_shape xs = gr_shape_make(2, (int64_t[]){xr, xc}), ws = gr_shape_make(2, (int64_t[]){wr, wc});
    in[0] = gr_graph_add_input(g, "x", GR_DTYPE_F32, &xs);
    in[1] = gr_graph_add_data(g, GR_VALUE_PARAM, "W", GR_DTYPE_F32, &ws, NULL);
    for (int64_t i = 0; i < wr * wc; i++) ((float *)in[1]->data)[i] = 0.1f * (float)(i % 7) - 0.3f;
    return g;
}

/* Marks outputs and infers shapes: the hand-built graph is complete. */
static void finish(gr_graph *g, int n, gr_node *const *outputs) {
    gr_status st = {0};
    for (int i = 0; i < n; i++)
        assert_int_equal(gr_graph_add_output(g, outputs[i]->outputs[0]), GR_OK);
    if (gr_graph_infer_shapes(g, &st) != GR_OK) fail_msg("%s", st.msg);
}

/* Runs "lora" (then "train") with the given --lora texts; returns the
 * status code, the message in st. */
static gr_code add_lora(gr_graph *g, int n, const char *const *texts, int train, gr_status *st) {
    gr_lora_spec specs[4] = {{0}};
    gr_train_opts t;
    gr_train_opts_default(&t);
    for (int i = 0; i < n; i++)
        if (gr_lora_spec_parse(texts[i], &specs[i], st) != GR_OK) fail_msg("%s", st->msg);
    t.n_lora = n, t.lora = specs, t.seed = 7;
    static const char *const lora[] = {"lora", NULL}, *const both[] = {"lora", "train", NULL};
    gr_pass_opts po = {.train = &t};
    gr_code rc = gr_passes_run(g, train ? both : lora, &po, st);
    for (int i = 0; i < n; i++) free((char *)specs[i].glob);
    return rc;
}

static void lora_ok(gr_graph *g, const char *text) {
    gr_status st = {0};
    if (add_lora(g, 1, &text, 1, &st) != GR_OK) fail_msg("%s", st.msg);
}

static gr_value *param(const gr_graph *g, const char *name, int rank, const int64_t *dims) {
    gr_value *v = gr_graph_find(g, name);
    if (!v) fail_msg("no value '%s'", name);
    assert_int_equal(v->kind, GR_VALUE_PARAM);
    assert_int_equal(v->shape.rank, rank);
    for (int i = 0; i < rank; i++)
        if (v->shape.dims[i] != dims[i])
            fail_msg("'%s' dim %d is %lld, expected %lld", name, i, (long long)v->shape.dims[i],
                     (long long)dims[i]);
    return v;
}

/* A = U(-bound, bound) (nonzero, within bound), B = 0, both adapters. */
static void check_adapter(const gr_graph *g, const char *w, int rank, const int64_t *da,
                          const int64_t *db, double bound) {
    char name[256];
    snprintf(name, sizeof name, "%s.lora_A", w);
    gr_value *a = param(g, name, rank, da);
    snprintf(name, sizeof name, "%s.lora_B", w);
    gr_value *b = param(g, name, rank, db);
    assert_int_equal(a->origin, GR_ORIGIN_ADAPTER);
    assert_int_equal(b->origin, GR_ORIGIN_ADAPTER);
    assert_true(a->trainable && a->variable && b->trainable && b->variable);
    double top = 0;
    for (int64_t i = 0; i < gr_value_numel(a); i++) top = fmax(top, fabs(((float *)a->data)[i]));
    assert_true(top > 0.5 * bound && top <= bound);
    for (int64_t i = 0; i < gr_value_numel(b); i++) assert_true(((float *)b->data)[i] == 0.0f);
    gr_value *base = gr_graph_find(g, w);
    assert_false(base->trainable); /* the model's own weights freeze */
}

static int count_op(const gr_graph *g, gr_op op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !g->nodes[i]->dead && g->nodes[i]->op == op;
    return n;
}

static int count_lora_values(const gr_graph *g) {
    int n = 0;
    for (int i = 0; i < g->n_values; i++) n += strstr(g->values[i]->name, ".lora") != NULL;
    return n;
}

/* Fills every W.lora_B with small deterministic nonzero values. */
static void perturb_b(gr_graph *g) {
    for (int i = 0; i < g->n_values; i++) {
        gr_value *v = g->values[i];
        size_t len = strlen(v->name);
        if (len < 7 || strcmp(v->name + len - 7, ".lora_B")) continue;
        for (int64_t k = 0; k < gr_value_numel(v); k++)
            ((float *)v->data)[k] = 0.05f * (float)sin(1.0 + 0.7 * (double)k);
    }
}

/* Output 0 of g (model.eval() on a clone: BatchNormalization on running
 * statistics, no Dropout) for input x. */
static float *run(const gr_graph *model, const gr_input_shape *shape, const float *x,
                  size_t *n_out) {
    gr_graph *g = gr_graph_clone(model);
    static const char *const pipeline[] = {"specialize", "shapes", "train_mode", "simplify",
                                           "cse", "fold", "dce", "fuse", NULL};
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.eval = 1;
    gr_pass_opts po = {.train = &t, .n_input_shapes = shape != NULL, .input_shapes = shape};
    gr_status st = {0};
    if (gr_passes_run(g, pipeline, &po, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_plan *p = NULL;
    gr_codegen_opts co = {0};
    gr_session *s = NULL;
    if (gr_codegen_jit(g, &co, &p, &st) != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    *n_out = p->buffers[p->outputs[0]].nbytes / sizeof(float);
    float *y = malloc(p->buffers[p->outputs[0]].nbytes);
    void *in[1] = {(void *)x}, *out[1] = {y};
    if (gr_session_run(s, in, out, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_session_free(s);
    gr_plan_free(p);
    gr_graph_free(g);
    return y;
}

static float *input_for(const gr_graph *g, const gr_input_shape *shape) {
    int64_t n = shape ? gr_shape_numel(&shape->shape) : gr_value_numel(g->inputs[0]);
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)cos(0.37 * (double)i);
    return x;
}

/* Merged and unmerged adapters compute the same (max abs diff <= 1e-5);
 * the merged graph has the base model's node count and no LoRA value. */
static void check_merge(gr_graph *g, const gr_input_shape *shape, int base_nodes) {
    perturb_b(g);
    float *x = input_for(g, shape);
    size_t n1, n2;
    float *unmerged = run(g, shape, x, &n1);
    static const char *const merge[] = {"lora_merge", NULL};
    gr_pass_opts po = {0};
    gr_status st = {0};
    if (gr_passes_run(g, merge, &po, &st) != GR_OK) fail_msg("%s", st.msg);
    assert_int_equal(count_lora_values(g), 0);
    int live = 0;
    for (int i = 0; i < g->n_nodes; i++) live += !g->nodes[i]->dead;
    assert_int_equal(live, base_nodes);
    float *merged = run(g, shape, x, &n2);
    assert_int_equal(n1, n2);
    double worst = 0;
    for (size_t i = 0; i < n1; i++) worst = fmax(worst, fabs(merged[i] - unmerged[i]));
    if (worst > 1e-5) fail_msg("merged and unmerged differ by %g", worst);
    print_message("merged vs unmerged: max abs diff %.3g over %zu outputs\n", worst, n1);
    free(x);
    free(unmerged);
    free(merged);
}

/* ----------------------------------------------------------------- forms */

static void test_gemm_adapters_on_mlp(void **state) {
    (void)state;
    gr_graph *g = golden_model("mlp");
    int base_nodes = g->n_nodes;
    lora_ok(g, "fc*.weight:rank=4,alpha=8");
    check_adapter(g, "fc1.weight", 2, (int64_t[]){4, 20}, (int64_t[]){32, 4}, 1 / sqrt(20.0));
    check_adapter(g, "fc3.weight", 2, (int64_t[]){4, 32}, (int64_t[]){5, 4}, 1 / sqrt(32.0));
    const gr_value *s = gr_graph_find(g, "fc1.weight.lora_scale");
    assert_non_null(s);
    assert_true(((const float *)s->data)[0] == 2.0f);
    assert_false(gr_graph_find(g, "fc1.bias")->trainable);
    /* The output keeps its name and is the sum. */
    assert_string_equal(g->outputs[0]->name, "logits");
    assert_int_equal(g->outputs[0]->producer->op, GR_OP_ADD);
    assert_int_equal(count_op(g, GR_OP_GEMM), 3 + 6);
    check_merge(g, NULL, base_nodes);
    gr_graph_free(g);
}

static void test_matmul_transpose_adapters_on_transformer(void **state) {
    (void)state;
    gr_graph *g = golden_model("transformer");
    lora_ok(g, "*.weight:rank=3");
    /* MatMul(x, Transpose(W)), W [out, in]: A [r, in], B [out, r]. */
    check_adapter(g, "q.weight", 2, (int64_t[]){3, 16}, (int64_t[]){16, 3}, 0.25);
    check_adapter(g, "ff1.weight", 2, (int64_t[]){3, 16}, (int64_t[]){32, 3}, 0.25);
    check_adapter(g, "ff2.weight", 2, (int64_t[]){3, 32}, (int64_t[]){16, 3}, 1 / sqrt(32.0));
    check_adapter(g, "head.weight", 2, (int64_t[]){3, 16}, (int64_t[]){3, 3}, 0.25);
    assert_null(gr_graph_find(g, "tok_emb.weight.lora_A")); /* Gather: not adapted */
    assert_null(gr_graph_find(g, "ln1.weight.lora_A"));
    const gr_value *s = gr_graph_find(g, "q.weight.lora_scale");
    assert_true(((const float *)s->data)[0] == 1.0f); /* alpha defaults to rank */
    gr_graph_free(g);
}

static void test_conv_adapters_and_merge(void **state) {
    (void)state;
    gr_graph *g = golden_model("cnn");
    int base_nodes = g->n_nodes;
    lora_ok(g, "*conv2.weight:rank=2,alpha=3");
    /* conv2 8->16 3x3 stride 2: A [2, 8, 3, 3] (fan_in 72), B [16, 2, 1, 1]. */
    check_adapter(g, "conv2.weight", 4, (int64_t[]){2, 8, 3, 3}, (int64_t[]){16, 2, 1, 1},
                  1 / sqrt(72.0));
    check_adapter(g, "res_conv2.weight", 4, (int64_t[]){2, 8, 3, 3}, (int64_t[]){8, 2, 1, 1},
                  1 / sqrt(72.0));
    assert_null(gr_graph_find(g, "conv1.weight.lora_A"));
    check_merge(g, NULL, base_nodes);
    gr_graph_free(g);
}

/* The PaddleOCR classifier (Conv with stride and pads, HardSwish, a
 * MatMul x·W head): adapters on every 1x1/3x3 full conv and on fc_0.w_0. */
static void test_merge_on_ppocr(void **state) {
    (void)state;
    if (access(PPOCR, R_OK) != 0) skip(); /* scripts/fetch-models.sh brings it */
    gr_graph *g = import_model(PPOCR);
    gr_status st = {0};
    int base_nodes = g->n_nodes;
    const char *texts[2] = {"conv2d_*:rank=4,alpha=16", "fc_0.w_0:rank=2"};
    if (add_lora(g, 2, texts, 1, &st) != GR_OK) fail_msg("%s", st.msg);
    param(g, "fc_0.w_0.lora_A", 2, (int64_t[]){200, 2});
    param(g, "fc_0.w_0.lora_B", 2, (int64_t[]){2, 2});
    gr_input_shape x = {"x", gr_shape_make(4, (int64_t[]){2, 3, 32, 32})};
    check_merge(g, &x, base_nodes);
    gr_graph_free(g);
}

static void test_depthwise_convs_are_skipped(void **state) {
    (void)state;
    gr_graph *g = golden_model("mobilenet");
    lora_ok(g, "blocks.*.weight");
    assert_non_null(gr_graph_find(g, "blocks.0.expand.weight.lora_A"));
    assert_null(gr_graph_find(g, "blocks.0.dw.weight.lora_A"));
    gr_graph_free(g);
    g = golden_model("mobilenet");
    gr_status st = {0};
    const char *text = "*.dw.weight";
    assert_int_equal(add_lora(g, 1, &text, 0, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "*.dw.weight"));
    assert_non_null(strstr(st.msg, "depthwise"));
    gr_graph_free(g);
}

/* x [3,4] -> Gemm(x, W [3,5], transA=1, alpha=0.5) -> y [4,5]: x·W form
 * with transA and alpha; merged, unmerged and a direct computation agree. */
static void test_gemm_trans_a_alpha_x_w(void **state) {
    (void)state;
    gr_value *in[2];
    gr_graph *g = x_and_w(3, 4, 3, 5, in);
    gr_value *w = in[1];
    gr_node *n = gr_node_add(g, GR_OP_GEMM, "gemm", 2, in, 1, (const char *const[]){"y"});
    assert_int_equal(gr_node_set_int(g, n, "transA", 1), GR_OK);
    assert_int_equal(gr_node_set_float(g, n, "alpha", 0.5), GR_OK);
    finish(g, 1, &n);
    lora_ok(g, "W:rank=2,alpha=3");
    const gr_value *a = param(g, "W.lora_A", 2, (int64_t[]){3, 2});
    const gr_value *b = param(g, "W.lora_B", 2, (int64_t[]){2, 5});
    perturb_b(g);
    float *xv = input_for(g, NULL);
    size_t n_out;
    float *y = run(g, NULL, xv, &n_out);
    /* y[m, o] = 0.5 · Σ_k x[k, m] · (W[k, o] + 1.5 · Σ_r A[k, r] B[r, o]) */
    const float *W = w->data, *A = a->data, *B = b->data;
    for (int m = 0; m < 4; m++)
        for (int o = 0; o < 5; o++) {
            double want = 0;
            for (int k = 0; k < 3; k++) {
                double ab = 0;
                for (int r = 0; r < 2; r++) ab += A[k * 2 + r] * B[r * 5 + o];
                want += xv[k * 4 + m] * (W[k * 5 + o] + 1.5 * ab);
            }
            assert_true(fabs(y[m * 5 + o] - 0.5 * want) < 1e-5);
        }
    free(xv);
    free(y);
    check_merge(g, NULL, 1);
    gr_graph_free(g);
}

/* x [2,4] -> MatMul(x, W [4,3]) -> y, and W also read by an Add: merging
 * would change the Add, so lora_merge refuses. */
static void test_merge_refuses_unadapted_reader(void **state) {
    (void)state;
    gr_value *in[2];
    gr_graph *g = x_and_w(2, 4, 4, 3, in);
    gr_node *nodes[2];
    nodes[0] = gr_node_add(g, GR_OP_MATMUL, "mm", 2, in, 1, NULL);
    in[0] = in[1];
    nodes[1] = gr_node_add(g, GR_OP_ADD, "tied_add", 2, in, 1, NULL);
    finish(g, 2, nodes);
    gr_status st = {0};
    lora_ok(g, "W");
    param(g, "W.lora_A", 2, (int64_t[]){4, 8});
    static const char *const merge[] = {"lora_merge", NULL};
    gr_pass_opts po = {0};
    assert_int_equal(gr_passes_run(g, merge, &po, &st), GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "tied_add"));
    assert_non_null(strstr(st.msg, "--no-merge"));
    gr_graph_free(g);
}

static void test_dropout_on_adapter_input(void **state) {
    (void)state;
    gr_graph *g = golden_model("mlp");
    int before = count_op(g, GR_OP_DROPOUT);
    lora_ok(g, "fc2.weight:dropout=0.25");
    assert_int_equal(count_op(g, GR_OP_DROPOUT), before + 1);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == GR_OP_DROPOUT) {
            const gr_value *r = g->nodes[i]->inputs[1];
            assert_true(((const float *)r->data)[0] == 0.25f);
            assert_string_equal(g->nodes[i]->inputs[0]->name, "/Relu_output_0");
        }
    gr_graph_free(g);
}

/* -------------------------------------------------------------- errors */

static void test_glob_matching_nothing_is_an_error(void **state) {
    (void)state;
    gr_graph *g = golden_model("mlp");
    gr_status st = {0};
    const char *texts[2] = {"fc1.weight", "nothing*"};
    assert_int_equal(add_lora(g, 2, texts, 0, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "--lora nothing*"));
    gr_graph_free(g);
    /* A bias is a parameter, but no Gemm weight. */
    g = golden_model("mlp");
    texts[0] = "fc1.bias";
    assert_int_equal(add_lora(g, 1, texts, 0, &st), GR_ERR_BAD_ARG);
    gr_graph_free(g);
}

static void parse_error(const char *text, const char *want) {
    gr_lora_spec s;
    gr_status st = {0};
    assert_int_equal(gr_lora_spec_parse(text, &s, &st), GR_ERR_BAD_ARG);
    if (!strstr(st.msg, want)) fail_msg("'%s': message '%s' lacks '%s'", text, st.msg, want);
}

static void test_spec_parse(void **state) {
    (void)state;
    gr_lora_spec s;
    gr_status st = {0};
    assert_int_equal(gr_lora_spec_parse("fc*", &s, &st), GR_OK);
    assert_string_equal(s.glob, "fc*");
    assert_int_equal(s.rank, 8);
    assert_true(s.alpha == 8 && s.dropout == 0);
    free((char *)s.glob);
    assert_int_equal(gr_lora_spec_parse("a:b:dropout=0.1,alpha=2,rank=16", &s, &st), GR_OK);
    assert_string_equal(s.glob, "a:b");
    assert_true(s.rank == 16 && s.alpha == 2 && s.dropout == 0.1);
    free((char *)s.glob);
    assert_int_equal(gr_lora_spec_parse("x:y", &s, &st), GR_OK); /* a ':' in a name */
    assert_string_equal(s.glob, "x:y");
    free((char *)s.glob);
    parse_error(":rank=2", "glob is empty");
    parse_error("fc*:rank=0", "out of range");
    parse_error("fc*:rank=2.5", "out of range");
    parse_error("fc*:rank=4,beta=1", "unknown option");
    parse_error("fc*:rank=4,alpha", "no '='");
    parse_error("fc*:dropout=1", "out of range");
    parse_error("fc*:alpha=x", "not a number");
}

static void test_adapters_json_round_trip(void **state) {
    (void)state;
    gr_graph *g = golden_model("transformer");
    const char *texts[2] = {"head.weight:rank=2,alpha=5", "*.weight:rank=3,alpha=1"};
    gr_status st = {0};
    assert_int_equal(add_lora(g, 2, texts, 1, &st), GR_OK);
    char *json = NULL;
    const char **names = NULL;
    int n = 0;
    assert_int_equal(gr_lora_describe(g, &json, &names, &n, &st), GR_OK);
    assert_int_equal(n, 14); /* q k v out ff1 ff2 head, A and B each */
    assert_non_null(strstr(json, "\"weight\": \"head.weight\", \"form\": \"x.W^T\", "
                                 "\"rank\": 2, \"alpha\": 5,"));
    gr_lora_spec *specs = NULL;
    int n_specs = 0;
    assert_int_equal(gr_lora_specs_from_json(json, &specs, &n_specs, &st), GR_OK);
    assert_int_equal(n_specs, 7);
    for (int i = 0; i < n_specs; i++) {
        int head = !strcmp(specs[i].glob, "head.weight");
        assert_int_equal(specs[i].rank, head ? 2 : 3);
        /* alpha comes back such that alpha/rank is the same float */
        assert_true((float)(specs[i].alpha / (double)specs[i].rank) ==
                    (float)(head ? 2.5 : 1.0 / 3.0));
    }
    gr_lora_specs_free(specs, n_specs);
    free(json);
    free(names);
    assert_int_equal(gr_lora_specs_from_json("{\"adapters\": []}", &specs, &n_specs, &st),
                     GR_ERR_BAD_ARG);
    assert_int_equal(gr_lora_specs_from_json("{\"format\": \"graft-lora\", \"adapters\": "
                                             "[{\"weight\": \"w\", \"rank\": 0, \"alpha\": 1}]}",
                                             &specs, &n_specs, &st),
                     GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "'w'"));
    gr_graph_free(g);
    g = golden_model("mlp");
    assert_int_equal(gr_lora_describe(g, &json, &names, &n, &st), GR_ERR_BAD_ARG);
    gr_graph_free(g);
}

/* Failing the nth allocation in "lora", "train" or "lora_merge" returns
 * GR_ERR_NOMEM (no crash; no leak under ASan), for every n. */
static void test_allocation_failures(void **state) {
    (void)state;
    const char *models[2] = {"transformer", "cnn"};
    for (int m = 0; m < 2; m++) {
        gr_graph *model = golden_model(models[m]);
        for (long n = 1;; n++) {
            gr_graph *g = gr_graph_clone(model);
            gr_status st = {0};
            const char *text = "*.weight:rank=2,dropout=0.1";
            static const char *const merge[] = {"lora_merge", NULL};
            gr_pass_opts po = {0};
            gr_debug_fail_alloc_after(n);
            gr_code rc = add_lora(g, 1, &text, 1, &st);
            if (rc == GR_OK) rc = gr_passes_run(g, merge, &po, &st);
            gr_debug_fail_alloc_after(0);
            gr_graph_free(g);
            if (rc == GR_OK) break;
            if (rc != GR_ERR_NOMEM) fail_msg("%s, allocation %ld: %s", models[m], n, st.msg);
            assert_true(n < 100000);
        }
        gr_graph_free(model);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_adapters_on_mlp),
        cmocka_unit_test(test_matmul_transpose_adapters_on_transformer),
        cmocka_unit_test(test_conv_adapters_and_merge),
        cmocka_unit_test(test_merge_on_ppocr),
        cmocka_unit_test(test_depthwise_convs_are_skipped),
        cmocka_unit_test(test_gemm_trans_a_alpha_x_w),
        cmocka_unit_test(test_merge_refuses_unadapted_reader),
        cmocka_unit_test(test_dropout_on_adapter_input),
        cmocka_unit_test(test_glob_matching_nothing_is_an_error),
        cmocka_unit_test(test_spec_parse),
        cmocka_unit_test(test_adapters_json_round_trip),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
