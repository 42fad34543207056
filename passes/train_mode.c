/* train_mode.c: the "train_mode" pass: the forward graph as PyTorch's
 * model.train() runs it.
 * - BatchNormalization with a trainable scale or bias normalises with the
 *   batch's statistics (mean and biased variance over all axes but 1),
 *   written as primitive ops that autodiff differentiates; its running
 *   statistics become state updated as ONNX says (running * momentum +
 *   batch * (1 - momentum)), the variance from the unbiased batch
 *   variance as PyTorch does. A BatchNormalization whose scale and bias
 *   are both frozen keeps running in inference mode.
 * - Dropout (ratio > 0) multiplies by a DropoutMask drawn from the
 *   per-step seed input "graft.seed".
 * For evaluation (opts->train->eval) it is model.eval(): every
 * BatchNormalization on its running statistics, Dropout the identity.
 * Requires: opts->train, static shapes. */
#include <stdio.h>
#include <string.h>

#include "passes/passes_internal.h"

typedef struct {
    gr_graph *g;
    const char *base;
    gr_status *st;
} builder;

static gr_value *op(builder *b, gr_op o, gr_value *x, gr_value *y) {
    int binary = gr_op_info_of(o)->in_max >= 2;
    if (!x || (binary && !y)) return NULL;
    gr_value *in[2] = {x, y};
    gr_node *n = gr_node_add(b->g, o, b->base, binary ? 2 : 1, in, 1, NULL);
    if (!n) {
        gr_fail(b->st, GR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return gr_node_infer(b->g, n, b->st) == GR_OK ? n->outputs[0] : NULL;
}

static gr_value *scalar(builder *b, double v) {
    gr_shape s = gr_shape_scalar();
    float f = (float)v;
    gr_value *c = gr_graph_add_data(b->g, GR_VALUE_CONST, NULL, GR_DTYPE_F32, &s, &f);
    if (!c) gr_fail(b->st, GR_ERR_NOMEM, "out of memory");
    return c;
}

static gr_value *ints(builder *b, int n, const int64_t *v) {
    gr_shape s = gr_shape_make(1, (int64_t[]){n});
    gr_value *c = gr_graph_add_data(b->g, GR_VALUE_CONST, NULL, GR_DTYPE_I64, &s, v);
    if (!c) gr_fail(b->st, GR_ERR_NOMEM, "out of memory");
    return c;
}

static gr_value *reduce_mean(builder *b, gr_value *x, int n_axes, const int64_t *axes) {
    if (!x) return NULL;
    gr_value *in[2] = {x, ints(b, n_axes, axes)};
    if (!in[1]) return NULL;
    gr_node *n = gr_node_add(b->g, GR_OP_REDUCE_MEAN, b->base, 2, in, 1, NULL);
    if (!n || gr_node_set_int(b->g, n, "keepdims", 1) != GR_OK) {
        gr_fail(b->st, GR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return gr_node_infer(b->g, n, b->st) == GR_OK ? n->outputs[0] : NULL;
}

static gr_value *reshape(builder *b, gr_value *x, int rank, const int64_t *dims) {
    return x ? op(b, GR_OP_RESHAPE, x, ints(b, rank, dims)) : NULL;
}

static int trains(const gr_value *v) { return v && v->variable && v->trainable; }

/* Batch statistics of BatchNormalization n (x [N,C,...], static):
 * y = (x - mean) / sqrt(var + eps) * scale + bias with mean and biased var
 * over every axis but 1; *mean and *var are the [C] statistics, *count the
 * number of values each is taken over. NULL results: st says why. */
static gr_code batch_stats(builder *b, gr_node *n, gr_value **y, gr_value **mean,
                           gr_value **var, int64_t *count) {
    gr_value *x = n->inputs[0];
    int rank = x->shape.rank;
    if (rank < 2 || !gr_shape_is_static(&x->shape))
        return gr_fail(b->st, GR_ERR_UNSUPPORTED, "node '%s' (BatchNormalization): batch "
                       "statistics need a static input of rank >= 2", n->name);
    int64_t axes[GR_MAX_RANK], cshape[GR_MAX_RANK];
    int n_axes = 0;
    *count = 1;
    for (int i = 0; i < rank; i++) {
        cshape[i] = i == 1 ? x->shape.dims[1] : 1;
        if (i != 1) {
            axes[n_axes++] = i;
            *count *= x->shape.dims[i];
        }
    }
    double eps = gr_node_float(n, "epsilon", 1e-5);
    gr_value *m = reduce_mean(b, x, n_axes, axes);
    gr_value *d = op(b, GR_OP_SUB, x, m);
    gr_value *v = reduce_mean(b, op(b, GR_OP_MUL, d, d), n_axes, axes);
    gr_value *sd = op(b, GR_OP_SQRT, op(b, GR_OP_ADD, v, scalar(b, eps)), NULL);
    gr_value *out = op(b, GR_OP_MUL, d, op(b, GR_OP_RECIPROCAL, sd, NULL));
    out = op(b, GR_OP_MUL, out, reshape(b, n->inputs[1], rank, cshape));
    *y = op(b, GR_OP_ADD, out, reshape(b, n->inputs[2], rank, cshape));
    int64_t c = x->shape.dims[1];
    *mean = reshape(b, m, 1, &c);
    *var = reshape(b, v, 1, &c);
    if (!*y || !*mean || !*var) return b->st->code ? b->st->code : GR_ERR_INTERNAL;
    return GR_OK;
}

/* running * momentum + batch * (1 - momentum) * unbias */
static gr_value *running(builder *b, gr_value *r, gr_value *batch, double mom, double unbias) {
    return op(b, GR_OP_ADD, op(b, GR_OP_MUL, r, scalar(b, mom)),
              op(b, GR_OP_MUL, batch, scalar(b, (1.0 - mom) * unbias)));
}

/* Training as PyTorch's model.train() does it: running statistics become
 * state, the variance's from the unbiased batch variance. */
static gr_code batch_norm(gr_graph *g, gr_node *n, gr_status *st) {
    builder b = {g, n->name, st};
    gr_value *rm = n->inputs[3], *rv = n->inputs[4], *y, *bm, *bv;
    if (rm->kind != GR_VALUE_PARAM || rv->kind != GR_VALUE_PARAM)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "node '%s' (BatchNormalization): running "
                       "statistics must be initializers to be updated", n->name);
    int64_t count;
    GR_TRY(batch_stats(&b, n, &y, &bm, &bv, &count));
    double mom = gr_node_float(n, "momentum", 0.9);
    double unbias = count > 1 ? (double)count / (double)(count - 1) : 1.0;
    /* Running statistics (state; no gradient flows into them). */
    gr_value *rm_next = running(&b, rm, bm, mom, 1.0), *rv_next = running(&b, rv, bv, mom, unbias);
    if (!rm_next || !rv_next) return st->code ? st->code : GR_ERR_INTERNAL;
    rm->variable = rv->variable = 1;
    rm->trainable = rv->trainable = 0;
    GR_TRY(gr_graph_add_update(g, rm, rm_next));
    GR_TRY(gr_graph_add_update(g, rv, rv_next));
    gr_value_replace_uses(g, n->outputs[0], y);
    if (n->n_outputs > 1 && n->outputs[1]) gr_value_replace_uses(g, n->outputs[1], rm_next);
    if (n->n_outputs > 2 && n->outputs[2]) gr_value_replace_uses(g, n->outputs[2], rv_next);
    gr_node_remove(g, n);
    return GR_OK;
}

/* Users of old read new instead, and new takes old's name (and declared
 * type), so graph outputs keep their names. */
static gr_code take_over(gr_graph *g, gr_value *old, gr_value *new_value, gr_status *st) {
    const char *name = old->name;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.replaced", name);
    if (gr_value_rename(g, old, gr_graph_unique_name(g, tmp)) != GR_OK ||
        gr_value_rename(g, new_value, name) != GR_OK)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_value_replace_uses(g, old, new_value);
    new_value->has_declared = old->has_declared;
    new_value->declared_dtype = old->declared_dtype;
    new_value->declared_shape = old->declared_shape;
    return GR_OK;
}

gr_code gr_lower_batch_norm_training(gr_graph *g, gr_node *n, gr_status *st) {
    builder b = {g, n->name, st};
    gr_value *y, *bm, *bv;
    int64_t count;
    GR_TRY(batch_stats(&b, n, &y, &bm, &bv, &count));
    double mom = gr_node_float(n, "momentum", 0.9);
    gr_value *outs[3] = {y, NULL, NULL};
    if (n->n_outputs > 1 && n->outputs[1]) outs[1] = running(&b, n->inputs[3], bm, mom, 1.0);
    if (n->n_outputs > 2 && n->outputs[2]) outs[2] = running(&b, n->inputs[4], bv, mom, 1.0);
    for (int i = 0; i < n->n_outputs && i < 3; i++) {
        if (!n->outputs[i]) continue;
        if (!outs[i]) return st->code ? st->code : GR_ERR_INTERNAL;
        GR_TRY(take_over(g, n->outputs[i], outs[i], st));
    }
    gr_node_remove(g, n);
    return GR_OK;
}

/* *used: whether a node or graph output reads Dropout n's mask output. */
static gr_code mask_used(const gr_graph *g, const gr_node *n, int *used, gr_status *st) {
    *used = 0;
    if (n->n_outputs < 2 || !n->outputs[1]) return GR_OK;
    int *uses = gr_calloc((size_t)g->n_values + 1, sizeof(int));
    if (!uses) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_graph_count_uses(g, uses);
    *used = uses[n->outputs[1]->id] > 0;
    gr_free(uses);
    return GR_OK;
}

/* Dropout as model.eval() runs it: the identity, and a mask output (if
 * read) all true, as ONNX defines it outside training. */
static gr_code eval_dropout(gr_graph *g, gr_node *n, gr_status *st) {
    int used = 0;
    GR_TRY(mask_used(g, n, &used, st));
    if (used) {
        const gr_value *x = n->inputs[0];
        if (!gr_shape_is_static(&x->shape))
            return gr_fail(st, GR_ERR_UNSUPPORTED, "node '%s' (Dropout): its mask output is "
                           "used and its input shape is not static", n->name);
        gr_value *ones = gr_graph_add_data(g, GR_VALUE_CONST, NULL, GR_DTYPE_BOOL, &x->shape,
                                           NULL);
        if (!ones) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        if (ones->nbytes) memset(ones->data, 1, ones->nbytes);
        gr_value_replace_uses(g, n->outputs[1], ones);
    }
    gr_value_replace_uses(g, n->outputs[0], n->inputs[0]);
    gr_node_remove(g, n);
    return GR_OK;
}

static gr_code dropout(gr_graph *g, gr_node *n, gr_value **seed, int salt, gr_status *st) {
    double ratio = 0.5;
    if (n->n_inputs > 1 && n->inputs[1]) {
        if (!gr_value_is_constant(n->inputs[1]) || gr_value_numel(n->inputs[1]) != 1)
            return gr_fail(st, GR_ERR_UNSUPPORTED, "node '%s' (Dropout): ratio must be a "
                           "constant scalar to train", n->name);
        ratio = gr_dtype_load_f64(n->inputs[1]->dtype, n->inputs[1]->data, 0);
    }
    gr_value *x = n->inputs[0];
    int used = 0;
    GR_TRY(mask_used(g, n, &used, st));
    if (used)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "node '%s' (Dropout): its mask output is "
                       "used; graft cannot train that", n->name);
    gr_value *y = x;
    if (ratio > 0) {
        if (!*seed) {
            gr_shape s = gr_shape_scalar();
            *seed = gr_graph_add_input(g, "graft.seed", GR_DTYPE_I64, &s);
            if (!*seed) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        }
        gr_node *m = gr_node_add(g, GR_OP_DROPOUT_MASK, n->name, 1, seed, 1, NULL);
        if (!m || gr_node_set_float(g, m, "ratio", ratio) != GR_OK ||
            gr_node_set_int(g, m, "salt", salt) != GR_OK ||
            gr_node_set_ints(g, m, "shape", x->shape.rank, x->shape.dims) != GR_OK)
            return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        GR_TRY(gr_node_infer(g, m, st));
        gr_value *in[2] = {x, m->outputs[0]};
        gr_node *mul = gr_node_add(g, GR_OP_MUL, n->name, 2, in, 1, NULL);
        if (!mul) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        GR_TRY(gr_node_infer(g, mul, st));
        y = mul->outputs[0];
    }
    gr_value_replace_uses(g, n->outputs[0], y);
    gr_node_remove(g, n);
    return GR_OK;
}

/* A BatchNormalization on its running statistics (frozen, or evaluation). */
static gr_code inference_batch_norm(gr_graph *g, gr_node *n, int eval, gr_status *st) {
    /* Evaluating a model being trained: its statistics are state, copied
     * in from the training step. */
    for (int j = 3; j < 5 && eval; j++)
        if (n->inputs[j]->kind == GR_VALUE_PARAM) n->inputs[j]->variable = 1;
    if (gr_node_set_int(g, n, "training_mode", 0) != GR_OK)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int j = 1; j < n->n_outputs; j++)
        if (n->outputs[j]) {
            /* Its statistics stay as they are. */
            gr_value_replace_uses(g, n->outputs[j], n->inputs[2 + j]);
            n->outputs[j] = NULL;
        }
    n->n_outputs = 1;
    return GR_OK;
}

gr_code gr_pass_train_mode(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    const gr_train_opts *t = opts ? opts->train : NULL;
    if (!t) return GR_OK;
    int n0 = g->n_nodes, salt = 0;
    gr_value *seed = NULL;
    for (int i = 0; i < n0; i++) {
        gr_node *n = g->nodes[i];
        if (n->dead) continue;
        int trains_bn = n->op == GR_OP_BATCH_NORM && !t->eval &&
                        (trains(n->inputs[1]) || trains(n->inputs[2]));
        if (trains_bn) {
            GR_TRY(batch_norm(g, n, st));
        } else if (n->op == GR_OP_BATCH_NORM) {
            GR_TRY(inference_batch_norm(g, n, t->eval, st));
        } else if (n->op == GR_OP_DROPOUT && t->eval) {
            GR_TRY(eval_dropout(g, n, st));
        } else if (n->op == GR_OP_DROPOUT) {
            GR_TRY(dropout(g, n, &seed, salt++, st));
        }
    }
    /* New nodes were appended; consumers of replaced values come earlier. */
    GR_TRY(gr_graph_toposort(g, st));
    return gr_passes_compact(g, st);
}
