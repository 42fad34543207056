/* loss.c: the "loss" pass: attaches the loss to a model output (--loss;
 * the first output unless loss_output names another). A model that ends
 * in Softmax trains on the logits before it (SoftmaxCrossEntropy is the
 * stable form of log(softmax)). The loss becomes g->loss and the first
 * graph output, named GR_TRAIN_LOSS; the second output is the value the
 * loss is attached to (logits or predictions), for metrics.
 * Requires: opts->train; shapes static (after "specialize" and "shapes").
 * Guarantees: graph inputs GR_TRAIN_LABELS (i64 [N] for ce, else the
 * prediction's dtype and shape). */
#include <string.h>

#include "passes/passes_internal.h"

/* One node of op on a (and b for binary ops); NULL operands (an earlier
 * failure) give NULL. */
static gr_value *node1(gr_graph *g, gr_op op, gr_value *a, gr_value *b, gr_status *st) {
    int binary = gr_op_info_of(op)->in_max >= 2;
    if (!a || (binary && !b)) return NULL;
    gr_value *in[2] = {a, b};
    gr_node *n = gr_node_add(g, op, "loss", binary ? 2 : 1, in, 1, NULL);
    if (!n) {
        gr_fail(st, GR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return gr_node_infer(g, n, st) == GR_OK ? n->outputs[0] : NULL;
}

static gr_value *mean_all(gr_graph *g, gr_value *x, gr_status *st) {
    if (!x) return NULL;
    gr_node *n = gr_node_add(g, GR_OP_REDUCE_MEAN, "loss", 1, &x, 1, NULL);
    if (!n || gr_node_set_int(g, n, "keepdims", 0) != GR_OK) {
        gr_fail(st, GR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return gr_node_infer(g, n, st) == GR_OK ? n->outputs[0] : NULL;
}

static gr_code find_output(gr_graph *g, const char *name, gr_value **out, gr_status *st) {
    if (!g->n_outputs) return gr_fail(st, GR_ERR_BAD_MODEL, "the model has no output");
    if (!name) {
        *out = g->outputs[0];
        return GR_OK;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (!strcmp(g->outputs[i]->name, name)) {
            *out = g->outputs[i];
            return GR_OK;
        }
    return gr_fail(st, GR_ERR_BAD_ARG, "the model has no output named '%s'", name);
}

static int is_reshape(const gr_node *p) {
    return p && (p->op == GR_OP_RESHAPE || p->op == GR_OP_FLATTEN || p->op == GR_OP_IDENTITY);
}

/* A Softmax over the last axis at the end, possibly between reshapes (the
 * importer writes Softmax-1..12 that way): train on the value before it,
 * when that value has the output's shape. */
static gr_value *strip_softmax(gr_value *y) {
    const gr_value *v = y;
    while (is_reshape(v->producer)) v = v->producer->inputs[0];
    const gr_node *p = v->producer;
    if (!p || p->op != GR_OP_SOFTMAX) return y;
    int64_t axis = gr_node_int(p, "axis", -1);
    if (axis != -1 && axis != v->shape.rank - 1) return y;
    gr_value *x = p->inputs[0];
    while (!gr_shape_equal(&x->shape, &y->shape) && is_reshape(x->producer))
        x = x->producer->inputs[0];
    return gr_shape_equal(&x->shape, &y->shape) ? x : y;
}

static gr_code cross_entropy(gr_graph *g, const gr_train_opts *t, gr_value *logits,
                             gr_value **loss, gr_status *st) {
    if (logits->shape.rank != 2)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "--loss ce needs logits of shape [N,C]; "
                       "output '%s' has rank %d", logits->name, logits->shape.rank);
    int64_t n = logits->shape.dims[0], c = logits->shape.dims[1];
    gr_shape ls = gr_shape_make(1, &n);
    gr_value *labels = gr_graph_add_input(g, GR_TRAIN_LABELS, GR_DTYPE_I64, &ls);
    gr_value *in[3] = {logits, labels, NULL};
    if (!labels) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    if (t->n_class_weights) {
        if (t->n_class_weights != c)
            return gr_fail(st, GR_ERR_BAD_ARG, "%d class weights for %lld classes",
                           t->n_class_weights, (long long)c);
        gr_shape ws = gr_shape_make(1, &c);
        in[2] = gr_graph_add_data(g, GR_VALUE_CONST, "graft.class_weights", GR_DTYPE_F32, &ws,
                                  t->class_weights);
        if (!in[2]) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    }
    gr_node *sce = gr_node_add(g, GR_OP_SOFTMAX_CROSS_ENTROPY, "loss", in[2] ? 3 : 2, in, 2, NULL);
    if (!sce || (t->label_smoothing &&
                 gr_node_set_float(g, sce, "label_smoothing", t->label_smoothing) != GR_OK))
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    GR_TRY(gr_node_infer(g, sce, st));
    *loss = sce->outputs[0];
    return GR_OK;
}

/* mse: mean((y-t)^2); l1: mean(|y-t|); bce: mean(relu(x) - x*t + softplus(-|x|)). */
static gr_code regression(gr_graph *g, gr_loss_kind kind, gr_value *y, gr_value **loss,
                          gr_status *st) {
    gr_value *t = gr_graph_add_input(g, GR_TRAIN_LABELS, y->dtype, &y->shape);
    if (!t) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_value *e;
    if (kind == GR_LOSS_BCE) {
        gr_value *pos = node1(g, GR_OP_RELU, y, NULL, st);
        gr_value *xt = pos ? node1(g, GR_OP_MUL, y, t, st) : NULL;
        gr_value *nab = xt ? node1(g, GR_OP_NEG, node1(g, GR_OP_ABS, y, NULL, st), NULL, st) : NULL;
        gr_value *sp = nab ? node1(g, GR_OP_SOFTPLUS, nab, NULL, st) : NULL;
        e = sp ? node1(g, GR_OP_ADD, node1(g, GR_OP_SUB, pos, xt, st), sp, st) : NULL;
    } else {
        gr_value *d = node1(g, GR_OP_SUB, y, t, st);
        e = kind == GR_LOSS_MSE ? node1(g, GR_OP_MUL, d, d, st) : node1(g, GR_OP_ABS, d, NULL, st);
    }
    *loss = mean_all(g, e, st);
    return *loss ? GR_OK : st->code;
}

gr_code gr_pass_loss(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    const gr_train_opts *t = opts ? opts->train : NULL;
    if (!t) return GR_OK;
    if (g->loss) return gr_fail(st, GR_ERR_BAD_ARG, "the graph already has a loss");
    gr_value *y = NULL;
    GR_TRY(find_output(g, t->loss_output, &y, st));
    if (!gr_shape_is_static(&y->shape) || !gr_dtype_is_float(y->dtype)) {
        char buf[128];
        return gr_fail(st, GR_ERR_BAD_ARG, "output '%s' is %s%s: the loss needs a float output "
                       "with a static shape (use --batch and --shape)", y->name,
                       gr_dtype_name(y->dtype), gr_shape_str(&y->shape, buf, sizeof buf));
    }
    /* PyTorch rejects these too; silently ignoring them would hide a typo. */
    if (!(t->label_smoothing >= 0 && t->label_smoothing <= 1))
        return gr_fail(st, GR_ERR_BAD_ARG, "--label-smoothing must be between 0 and 1, not %g",
                       t->label_smoothing);
    if (t->loss != GR_LOSS_CE && (t->label_smoothing > 0 || t->n_class_weights))
        return gr_fail(st, GR_ERR_BAD_ARG, "label smoothing and class weights apply to the "
                       "cross-entropy loss (--loss ce) only");
    gr_value *loss = NULL;
    if (t->loss == GR_LOSS_CE) {
        y = strip_softmax(y);
        GR_TRY(cross_entropy(g, t, y, &loss, st));
    } else {
        GR_TRY(regression(g, t->loss, y, &loss, st));
    }
    if (gr_value_rename(g, loss, GR_TRAIN_LOSS) != GR_OK)
        return gr_fail(st, GR_ERR_BAD_ARG, "the model already has a value named '%s'",
                       GR_TRAIN_LOSS);
    g->loss = loss;
    g->n_outputs = 0;
    GR_TRY(gr_graph_add_output(g, loss));
    return gr_graph_add_output(g, y);
}
