/* test_unfreeze.c: progressive unfreezing's groups and schedule
 * (passes/unfreeze.c) against the documented rule worked out by hand: a
 * built graph (Transpose(W) feeding MatMul, bias Adds, a residual Add, a
 * weight shared by two nodes), the golden CNN (Conv + BatchNorm layers)
 * and the golden MLP with a new head; the stage of every epoch, the start
 * step of each group, the flags gr_unfreeze_apply sets, errors. The
 * training itself is checked against PyTorch in tests/unfreeze_test.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"

#define GOLDEN GRAFT_SOURCE_DIR "/tests/data/golden"

static gr_value *param(gr_graph *g, const char *name, int rank, const int64_t *dims) {
    gr_shape s = gr_shape_make(rank, dims);
    gr_value *v = gr_graph_add_data(g, GR_VALUE_PARAM, name, GR_DTYPE_F32, &s, NULL);
    assert_non_null(v);
    v->trainable = v->variable = 1;
    return v;
}

static gr_value *node(gr_graph *g, gr_op op, gr_value *a, gr_value *b) {
    gr_value *in[2] = {a, b};
    gr_node *n = gr_node_add(g, op, NULL, b ? 2 : 1, in, 1, NULL);
    gr_status st = {0};
    assert_non_null(n);
    assert_int_equal(gr_node_infer(g, n, &st), GR_OK);
    return n->outputs[0];
}

/* x:[4,8] -> MatMul(x, Transpose(w1)) + b1 -> Relu = h
 *         -> MatMul(h, w2) + b2, + h (residual) -> MatMul(., w3) + b3
 *         -> MatMul(., w1t) (w1t also used by a second MatMul of h)
 * Layers by the rule: {w1, b1} {w2, b2} {w3, b3} {w1t} with w1t's first
 * node being MatMul(h, w1t) placed right after Relu. */
static gr_graph *build_graph(void) {
    gr_graph *g = gr_graph_new("layers");
    gr_shape xs = gr_shape_make(2, (int64_t[]){4, 8});
    gr_value *x = gr_graph_add_input(g, "x", GR_DTYPE_F32, &xs);
    gr_value *w1 = param(g, "w1", 2, (int64_t[]){8, 8}), *b1 = param(g, "b1", 1, (int64_t[]){8});
    gr_value *w1t = param(g, "w1t", 2, (int64_t[]){8, 8});
    gr_value *w2 = param(g, "w2", 2, (int64_t[]){8, 8}), *b2 = param(g, "b2", 1, (int64_t[]){8});
    gr_value *w3 = param(g, "w3", 2, (int64_t[]){8, 8}), *b3 = param(g, "b3", 1, (int64_t[]){8});
    gr_value *h = node(g, GR_OP_RELU, node(g, GR_OP_ADD, node(g, GR_OP_MATMUL, x,
                       node(g, GR_OP_TRANSPOSE, w1, NULL)), b1), NULL);
    gr_value *side = node(g, GR_OP_MATMUL, h, w1t);
    gr_value *r = node(g, GR_OP_ADD, node(g, GR_OP_ADD, node(g, GR_OP_MATMUL, h, w2), b2), h);
    gr_value *y = node(g, GR_OP_ADD, node(g, GR_OP_MATMUL, r, w3), b3);
    gr_value *out = node(g, GR_OP_ADD, node(g, GR_OP_MATMUL, y, w1t), side);
    assert_int_equal(gr_graph_add_output(g, out), GR_OK);
    return g;
}

static gr_unfreeze *group(const gr_graph *g, int k, int bottom_up) {
    gr_unfreeze_opts o = {.groups = k, .bottom_up = bottom_up, .every = 2,
                          .batches_per_epoch = 10, .accumulate = 3};
    gr_status st = {0};
    gr_unfreeze *u = NULL;
    if (gr_unfreeze_new(g, &o, &u, &st) != GR_OK) fail_msg("%s", st.msg);
    return u;
}

/* "name:group name:group ..." of every grouped parameter, in order. */
static const char *listing(const gr_unfreeze *u) {
    static char buf[2048];
    buf[0] = '\0';
    for (int i = 0; i < gr_unfreeze_n_params(u); i++) {
        int gi;
        const char *name = gr_unfreeze_param(u, i, &gi);
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s:%d", i ? " " : "", name, gi);
    }
    return buf;
}

static void test_layers_follow_parameter_only_nodes_and_bias_adds(void **state) {
    (void)state;
    gr_graph *g = build_graph();
    gr_unfreeze *u = group(g, 0, 0);
    assert_int_equal(gr_unfreeze_n_groups(u), 4);
    assert_string_equal(listing(u), "w1:0 b1:0 w1t:1 w2:2 b2:2 w3:3 b3:3");
    gr_unfreeze_free(u);
    u = group(g, 3, 0); /* 4 layers into 3: floor(j*3/4) = 0 0 1 2 */
    assert_string_equal(listing(u), "w1:0 b1:0 w1t:0 w2:1 b2:1 w3:2 b3:2");
    gr_unfreeze_free(u);
    u = group(g, 1, 0);
    assert_string_equal(listing(u), "w1:0 b1:0 w1t:0 w2:0 b2:0 w3:0 b3:0");
    gr_unfreeze_free(u);
    gr_graph_free(g);
}

static void test_frozen_parameters_are_in_no_group(void **state) {
    (void)state;
    gr_graph *g = build_graph();
    gr_value *w2 = gr_graph_find(g, "w2"), *b2 = gr_graph_find(g, "b2");
    w2->trainable = w2->variable = b2->trainable = b2->variable = 0;
    gr_unfreeze *u = group(g, 0, 0);
    assert_string_equal(listing(u), "w1:0 b1:0 w1t:1 w3:2 b3:2");
    gr_unfreeze_free(u);
    gr_graph_free(g);
}

static void test_schedule_stages_and_start_steps(void **state) {
    (void)state;
    gr_graph *g = build_graph();
    gr_unfreeze *u = group(g, 3, 0), *up = group(g, 3, 1); /* every 2 epochs, 10 batches,
                                                             accumulate 3 */
    int want_stage[] = {1, 1, 2, 2, 3, 3, 3};
    for (int e = 0; e < 7; e++) assert_int_equal(gr_unfreeze_stage(u, e), want_stage[e]);
    /* top-down: group 2 from epoch 0, group 1 from 2, group 0 from 4 */
    assert_true(gr_unfreeze_active(u, 2, 1) && !gr_unfreeze_active(u, 1, 1));
    assert_true(gr_unfreeze_active(u, 1, 2) && !gr_unfreeze_active(u, 0, 2));
    assert_int_equal(gr_unfreeze_group_epoch(u, 0), 4);
    assert_int_equal(gr_unfreeze_start(u, "w3"), 0);
    assert_int_equal(gr_unfreeze_start(u, "w2"), 2 * 10 / 3);
    assert_int_equal(gr_unfreeze_start(u, "w1"), 4 * 10 / 3);
    assert_int_equal(gr_unfreeze_start(u, "x"), 0);
    gr_status st = {0};
    assert_int_equal(gr_unfreeze_apply(u, g, 2, &st), GR_OK);
    assert_false(gr_graph_find(g, "w1")->trainable || gr_graph_find(g, "w1t")->variable);
    assert_true(gr_graph_find(g, "b2")->trainable && gr_graph_find(g, "w3")->variable);
    gr_unfreeze_free(u);
    u = up; /* bottom-up: group 0 first */
    assert_true(gr_unfreeze_active(u, 0, 1) && !gr_unfreeze_active(u, 1, 1));
    assert_int_equal(gr_unfreeze_group_epoch(u, 2), 4);
    assert_int_equal(gr_unfreeze_start(u, "w1"), 0);
    gr_unfreeze_free(u);
    gr_graph_free(g);
}

static void test_too_many_groups_is_an_error(void **state) {
    (void)state;
    gr_graph *g = build_graph();
    gr_unfreeze_opts o = {.groups = 5, .every = 1, .batches_per_epoch = 1, .accumulate = 1};
    gr_status st = {0};
    gr_unfreeze *u = NULL;
    assert_int_equal(gr_unfreeze_new(g, &o, &u, &st), GR_ERR_BAD_ARG);
    assert_null(u);
    assert_non_null(strstr(st.msg, "--unfreeze-groups 5: the trainable parameters form only 4"));
    gr_graph_free(g);
}

static gr_graph *import_trained(const char *model, const gr_train_opts *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/model.onnx", GOLDEN, model);
    gr_status st = {0};
    gr_graph *g = NULL;
    if (gr_import_file(path, &g, &st) != GR_OK) fail_msg("%s", st.msg);
    static const char *const edits[] = {"head", "train", NULL};
    gr_pass_opts po = {.train = t};
    if (gr_passes_run(g, edits, &po, &st) != GR_OK) fail_msg("%s", st.msg);
    return g;
}

static void test_cnn_conv_and_batch_norm_are_one_layer(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    gr_graph *g = import_trained("cnn", &t);
    gr_unfreeze *u = group(g, 0, 0);
    assert_string_equal(listing(u), "conv1.weight:0 bn1.weight:0 bn1.bias:0 "
                        "res_conv1.weight:1 res_bn1.weight:1 res_bn1.bias:1 "
                        "res_conv2.weight:2 res_bn2.weight:2 res_bn2.bias:2 "
                        "conv2.weight:3 bn2.weight:3 bn2.bias:3 fc.weight:4 fc.bias:4");
    gr_unfreeze_free(u);
    gr_graph_free(g);
}

static void test_new_head_is_the_last_group(void **state) {
    (void)state;
    gr_train_opts t;
    gr_train_opts_default(&t);
    t.head_classes = 7;
    gr_graph *g = import_trained("mlp", &t);
    gr_unfreeze *u = group(g, 2, 0);
    assert_string_equal(listing(u), "fc1.weight:0 fc1.bias:0 fc2.weight:0 fc2.bias:0 "
                        "fc3.weight:1 fc3.bias:1");
    gr_unfreeze_free(u);
    u = group(g, 3, 0);
    assert_string_equal(listing(u), "fc1.weight:0 fc1.bias:0 fc2.weight:1 fc2.bias:1 "
                        "fc3.weight:2 fc3.bias:2");
    gr_unfreeze_free(u);
    gr_unfreeze_opts o = {.groups = 4, .every = 1, .batches_per_epoch = 1, .accumulate = 1};
    gr_status st = {0};
    assert_int_equal(gr_unfreeze_new(g, &o, &u, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "the new head's a group of its own"));
    gr_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers_follow_parameter_only_nodes_and_bias_adds),
        cmocka_unit_test(test_frozen_parameters_are_in_no_group),
        cmocka_unit_test(test_schedule_stages_and_start_steps),
        cmocka_unit_test(test_too_many_groups_is_an_error),
        cmocka_unit_test(test_cnn_conv_and_batch_norm_are_one_layer),
        cmocka_unit_test(test_new_head_is_the_last_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
