/* grad_check.h: finite-difference checks of gradient rules (test helper).
 *
 *     gr_graph *g = ...;            // float PARAMs with variable = trainable = 1
 *     ...nodes..., gr_graph_add_output(g, y);
 *     grad_check(g, NULL);          // asserts, then frees g
 *
 * The scalar checked is L = sum_k sum(y_k * R_k) over the graph's float
 * outputs y_k, with R_k fixed pseudo-random weights (so every element of
 * every output matters, differently). The analytic gradient comes from the
 * "autodiff" pass compiled by the JIT; the reference is the central
 * difference (L(p + eps) - L(p - eps)) / 2 eps, each L computed by the
 * forward graph compiled once (parameters are state buffers, so a
 * perturbation is a write into the session's state). Up to max_checks
 * elements of each parameter are checked, spread over the tensor.
 * Inputs near a kink (ReLU at 0, ties in Max) make central differences
 * meaningless: tests choose their data away from kinks. */
#ifndef GRAFT_TESTS_GRAD_CHECK_H
#define GRAFT_TESTS_GRAD_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/gr_codegen.h"
#include "passes/gr_passes.h"
#include "runtime/gr_runtime.h"

typedef struct {
    double eps;     /* perturbation (default 1e-2) */
    double rtol;    /* |fd - analytic| <= atol + rtol * |fd| (defaults 1e-2, 1e-3) */
    double atol;
    int max_checks; /* per parameter (default 24) */
} grad_check_opts;

/* A float PARAM to differentiate, filled with uniform values in [lo, hi). */
static gr_value *grad_param(gr_graph *g, const char *name, int rank, const int64_t *dims,
                            double lo, double hi, unsigned seed) {
    gr_shape s = gr_shape_make(rank, dims);
    gr_value *v = gr_graph_add_data(g, GR_VALUE_PARAM, name, GR_DTYPE_F32, &s, NULL);
    if (!v) return NULL;
    gr_rng r;
    gr_rng_seed(&r, seed);
    float *d = v->data;
    for (int64_t i = 0; i < gr_value_numel(v); i++) d[i] = (float)(lo + (hi - lo) * gr_rng_uniform(&r));
    v->variable = v->trainable = 1;
    return v;
}

/* L = sum_k ReduceSum(y_k * R_k); becomes g->loss and the only output. */
static void grad_check_attach_loss(gr_graph *g) {
    gr_value *loss = NULL;
    gr_rng r;
    gr_rng_seed(&r, 12345);
    int n_out = g->n_outputs;
    for (int k = 0; k < n_out; k++) {
        gr_value *y = g->outputs[k];
        if (!gr_dtype_is_float(y->dtype)) continue;
        gr_value *w = gr_graph_add_data(g, GR_VALUE_CONST, NULL, y->dtype, &y->shape, NULL);
        assert_non_null(w);
        for (int64_t i = 0; i < gr_value_numel(y); i++)
            gr_dtype_store_f64(y->dtype, w->data, i, 0.5 + gr_rng_uniform(&r));
        gr_value *in[2] = {y, w};
        gr_node *m = gr_node_add(g, GR_OP_MUL, NULL, 2, in, 1, NULL);
        gr_node *s = gr_node_add(g, GR_OP_REDUCE_SUM, NULL, 1, &m->outputs[0], 1, NULL);
        assert_int_equal(gr_node_set_int(g, s, "keepdims", 0), GR_OK);
        gr_value *t = s->outputs[0];
        if (loss) {
            gr_value *a[2] = {loss, t};
            t = gr_node_add(g, GR_OP_ADD, NULL, 2, a, 1, NULL)->outputs[0];
        }
        loss = t;
    }
    assert_non_null(loss);
    g->n_outputs = 0;
    assert_int_equal(gr_graph_add_output(g, loss), GR_OK);
    g->loss = loss;
}

static gr_plan *grad_check_compile(gr_graph *g) {
    gr_status st = {0};
    static const char *const pipeline[] = {"shapes", "cse", "fold", "dce", "fuse", NULL};
    if (gr_passes_run(g, pipeline, NULL, &st) != GR_OK) fail_msg("passes: %s", st.msg);
    gr_plan *p = NULL;
    gr_codegen_opts o = {0};
    if (gr_codegen_jit(g, &o, &p, &st) != GR_OK) fail_msg("codegen: %s", st.msg);
    return p;
}

static void grad_check(gr_graph *g, const grad_check_opts *opts) {
    grad_check_opts o = {1e-2, 1e-2, 1e-3, 24};
    if (opts) {
        if (opts->eps > 0) o.eps = opts->eps;
        if (opts->rtol > 0) o.rtol = opts->rtol;
        if (opts->atol > 0) o.atol = opts->atol;
        if (opts->max_checks > 0) o.max_checks = opts->max_checks;
    }
    gr_status st = {0};
    if (gr_graph_infer_shapes(g, &st) != GR_OK) fail_msg("shapes: %s", st.msg);
    grad_check_attach_loss(g);
    if (gr_graph_infer_shapes(g, &st) != GR_OK) fail_msg("shapes: %s", st.msg);
    gr_graph *gb = gr_graph_clone(g);
    assert_non_null(gb);
    /* Backward graph: outputs are the gradients, in the order of params. */
    static const char *const ad[] = {"autodiff", NULL};
    if (gr_passes_run(gb, ad, NULL, &st) != GR_OK) fail_msg("autodiff: %s", st.msg);
    assert_true(gb->n_grads > 0);
    gb->n_outputs = 0;
    for (int i = 0; i < gb->n_grads; i++) assert_int_equal(gr_graph_add_output(gb, gb->grads[i].grad), GR_OK);
    int n_grads = gb->n_grads;
    char *names[64];
    float *analytic[64];
    assert_true(n_grads <= 64);
    gr_plan *pb = grad_check_compile(gb);
    gr_session *sb = NULL;
    assert_int_equal(gr_session_new(pb, 1, &sb, &st), GR_OK);
    void *outs[64];
    for (int i = 0; i < n_grads; i++) {
        names[i] = strdup(gb->grads[i].param->name);
        analytic[i] = calloc(1, pb->buffers[pb->outputs[i]].nbytes + 4);
        outs[i] = analytic[i];
    }
    if (gr_session_run(sb, NULL, outs, &st) != GR_OK) fail_msg("run: %s", st.msg);
    gr_session_free(sb);
    gr_plan_free(pb);
    gr_graph_free(gb);
    /* Forward graph: perturb each parameter's state. */
    gr_plan *pf = grad_check_compile(g);
    gr_session *sf = NULL;
    assert_int_equal(gr_session_new(pf, 1, &sf, &st), GR_OK);
    float loss = 0;
    void *lout[1] = {&loss};
    for (int i = 0; i < n_grads; i++) {
        int b = gr_plan_find_buffer(pf, names[i]);
        assert_true(b >= 0);
        float *p = gr_session_state(sf, b);
        assert_non_null(p);
        int64_t n = (int64_t)(pf->buffers[b].nbytes / sizeof(float));
        int64_t stride = n > o.max_checks ? n / o.max_checks : 1;
        for (int64_t e = 0; e < n; e += stride) {
            float keep = p[e];
            p[e] = (float)(keep + o.eps);
            assert_int_equal(gr_session_run(sf, NULL, lout, &st), GR_OK);
            double up = loss;
            p[e] = (float)(keep - o.eps);
            assert_int_equal(gr_session_run(sf, NULL, lout, &st), GR_OK);
            double down = loss;
            p[e] = keep;
            double fd = (up - down) / (2 * o.eps), an = analytic[i][e];
            if (!(fabs(fd - an) <= o.atol + o.rtol * fabs(fd)))
                fail_msg("d L / d %s[%lld]: analytic %.6g, finite difference %.6g", names[i],
                         (long long)e, an, fd);
        }
        free(analytic[i]);
        free(names[i]);
    }
    gr_session_free(sf);
    gr_plan_free(pf);
    gr_graph_free(g);
}

#endif
