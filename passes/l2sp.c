/* l2sp.c: the "l2sp" pass (--l2sp ALPHA[,BETA]): regularisation toward
 * the pretrained weights (Li, Grandvalet and Davoine, "Explicit inductive
 * bias for transfer learning with convolutional networks", 2018), in the
 * form (no 1/2)
 *     loss + ALPHA * sum ||w - w0||^2 + BETA * sum ||w||^2
 * where the first sum runs over the trainable parameters of the model
 * (origin GR_ORIGIN_MODEL; w0 = the values training starts from, kept as
 * constants) and the second over the trainable parameters that have no
 * pretrained value (a new head, adapters: as the paper's w_S-bar). Frozen
 * parameters add nothing. The penalty is part of the reported training
 * loss (GR_TRAIN_LOSS); the evaluation graph does not add it.
 * Requires: opts->train, g->loss (the "loss" pass), before "autodiff".
 * Guarantees: g->loss and output 0 are the penalised loss, named
 * GR_TRAIN_LOSS; the unpenalised one is renamed "graft.data_loss". */
#include <string.h>

#include "passes/passes_internal.h"

static gr_value *node(gr_graph *g, gr_op op, gr_value *a, gr_value *b, gr_status *st) {
    int binary = op != GR_OP_REDUCE_SUM_SQUARE; /* Sub, Add, Mul; no axes: all */
    if (!a || (binary && !b)) return NULL;
    gr_value *in[2] = {a, b};
    gr_node *n = gr_node_add(g, op, "l2sp", binary ? 2 : 1, in, 1, NULL);
    if (!n || (op == GR_OP_REDUCE_SUM_SQUARE && gr_node_set_int(g, n, "keepdims", 0) != GR_OK)) {
        gr_fail(st, GR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return gr_node_infer(g, n, st) == GR_OK ? n->outputs[0] : NULL;
}

static gr_value *scalar(gr_graph *g, double v, gr_status *st) {
    gr_shape s = gr_shape_scalar();
    float f = (float)v;
    gr_value *c = gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_F32, &s, &f);
    if (!c) gr_fail(st, GR_ERR_NOMEM, "out of memory");
    return c;
}

/* ||w - w0||^2 (model parameters) or ||w||^2 (new ones). */
static gr_value *square_norm(gr_graph *g, gr_value *w, gr_status *st) {
    gr_value *x = w;
    if (w->origin == GR_ORIGIN_MODEL) {
        const char *base = gr_arena_printf(g->arena, "%s.l2sp_w0", w->name);
        const char *name = base ? gr_graph_unique_name(g, base) : NULL;
        gr_value *w0 = name ? gr_graph_add_data(g, GR_VALUE_CONST, name, w->dtype, &w->shape,
                                                w->data)
                            : NULL;
        if (!w0) {
            gr_fail(st, GR_ERR_NOMEM, "out of memory");
            return NULL;
        }
        x = node(g, GR_OP_SUB, w, w0, st);
    }
    return node(g, GR_OP_REDUCE_SUM_SQUARE, x, NULL, st);
}

/* loss + coef * (sum of square norms), or loss itself when nothing adds. */
static gr_value *add_term(gr_graph *g, gr_value *loss, gr_value *sum, double coef,
                          gr_status *st) {
    if (!loss || !sum || coef == 0) return loss;
    return node(g, GR_OP_ADD, loss, node(g, GR_OP_MUL, sum, scalar(g, coef, st), st), st);
}

gr_code gr_pass_l2sp(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    const gr_train_opts *t = opts ? opts->train : NULL;
    if (!t || t->eval || (t->l2sp_alpha == 0 && t->l2sp_beta == 0)) return GR_OK;
    if (!(t->l2sp_alpha >= 0 && t->l2sp_beta >= 0))
        return gr_fail(st, GR_ERR_BAD_ARG, "--l2sp: ALPHA and BETA must be >= 0");
    if (!g->loss || g->n_outputs < 1 || g->outputs[0] != g->loss)
        return gr_fail(st, GR_ERR_INTERNAL, "l2sp: run the \"loss\" pass first");
    gr_value *sums[2] = {NULL, NULL}; /* model, new */
    int n_values = g->n_values;       /* the pass adds values */
    for (int i = 0; i < n_values; i++) {
        gr_value *w = g->values[i];
        if (w->kind != GR_VALUE_PARAM || !w->trainable || !w->variable) continue;
        if (w->dtype != GR_DTYPE_F32)
            return gr_fail(st, GR_ERR_UNSUPPORTED, "--l2sp: parameter '%s' is %s; only f32 "
                           "parameters are supported", w->name, gr_dtype_name(w->dtype));
        int k = w->origin != GR_ORIGIN_MODEL;
        if ((k ? t->l2sp_beta : t->l2sp_alpha) == 0) continue;
        gr_value *s = square_norm(g, w, st);
        sums[k] = sums[k] ? node(g, GR_OP_ADD, sums[k], s, st) : s;
        if (!sums[k]) return st->code ? st->code : gr_fail(st, GR_ERR_INTERNAL, "l2sp: no sum");
    }
    gr_value *data_loss = g->loss;
    gr_value *total = add_term(g, add_term(g, data_loss, sums[0], t->l2sp_alpha, st), sums[1],
                               t->l2sp_beta, st);
    if (!total) return st->code ? st->code : gr_fail(st, GR_ERR_INTERNAL, "l2sp: no total");
    if (total == data_loss) return GR_OK; /* no trainable parameter of a penalised kind */
    if (gr_value_rename(g, data_loss, "graft.data_loss") != GR_OK ||
        gr_value_rename(g, total, GR_TRAIN_LOSS) != GR_OK)
        return gr_fail(st, GR_ERR_BAD_ARG, "the model already has a value named "
                       "'graft.data_loss'");
    g->loss = total;
    g->outputs[0] = total;
    return GR_OK;
}
