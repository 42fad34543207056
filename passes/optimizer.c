/* optimizer.c: the "optimizer" pass: turns g->grads into parameter
 * updates, with PyTorch's semantics (torch.optim.SGD/Adam/AdamW, single
 * tensor path), as elementwise nodes that the fuse pass turns into update
 * kernels:
 *   clip (--clip-norm c): g *= min(1, c / (||g||_2 + 1e-6)), one norm over
 *     all gradients (torch.nn.utils.clip_grad_norm_);
 *   accumulate (k > 1): sum = NAME.grad_sum + g; on the micro-step with
 *     "graft.apply" set, the update uses sum / k and the sum restarts;
 *   SGD:   g += wd*w; buf = momentum*buf + damp*g (damp: run-time scalar,
 *          1 on the first step); d = nesterov ? g + momentum*buf : buf;
 *          w -= lr*d
 *   Adam:  g += wd*w; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
 *          w -= step_size * m / (sqrt(v)/bc2_sqrt + eps)
 *   AdamW: w *= decay (= 1 - lr*wd, run-time scalar), then Adam without wd.
 * Learning rate and bias corrections are run-time scalar inputs (see
 * gr_passes.h), so schedules need no recompilation. Per-parameter factors
 * (--lr-group, --layer-decay; gr_lr_factors) are compile-time constants:
 * lr*factor for SGD, step_size*factor and 1 - lr*factor*wd for Adam/AdamW,
 * as PyTorch param groups with lr = base*factor; a parameter of factor 0
 * gets no update and no momentum, m or v state.
 * Requires: opts->train, g->grads (the "autodiff" pass).
 * Guarantees: g->updates for every parameter and its optimizer state. */
#include <stdio.h>
#include <string.h>

#include "passes/passes_internal.h"

typedef struct {
    gr_graph *g;
    const gr_train_opts *t;
    gr_status *st;
    const char *base;
    double factor; /* the parameter's learning-rate factor (gr_lr_factors) */
    gr_value *lr, *damp, *step_size, *bc2_sqrt, *decay, *apply;
} opt;

static gr_value *op(opt *o, gr_op k, gr_value *a, gr_value *b) {
    int binary = gr_op_info_of(k)->in_max >= 2; /* Min, Max: variadic */
    if (!a || (binary && !b)) return NULL;
    gr_value *in[2] = {a, b};
    gr_node *n = gr_node_add(o->g, k, o->base, binary ? 2 : 1, in, 1, NULL);
    if (!n) {
        gr_fail(o->st, GR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return gr_node_infer(o->g, n, o->st) == GR_OK ? n->outputs[0] : NULL;
}

static gr_value *where(opt *o, gr_value *c, gr_value *a, gr_value *b) {
    if (!c || !a || !b) return NULL;
    gr_value *in[3] = {c, a, b};
    gr_node *n = gr_node_add(o->g, GR_OP_WHERE, o->base, 3, in, 1, NULL);
    if (!n) {
        gr_fail(o->st, GR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return gr_node_infer(o->g, n, o->st) == GR_OK ? n->outputs[0] : NULL;
}

static gr_value *scalar(opt *o, double v) {
    gr_shape s = gr_shape_scalar();
    float f = (float)v;
    gr_value *c = gr_graph_add_data(o->g, GR_VALUE_CONST, NULL, GR_DTYPE_F32, &s, &f);
    if (!c) gr_fail(o->st, GR_ERR_NOMEM, "out of memory");
    return c;
}

static gr_value *input(opt *o, const char *name, gr_dtype dtype) {
    gr_value *v = gr_graph_find(o->g, name);
    if (v) return v;
    gr_shape s = gr_shape_scalar();
    v = gr_graph_add_input(o->g, name, dtype, &s);
    if (!v) gr_fail(o->st, GR_ERR_NOMEM, "out of memory");
    return v;
}

/* Zero-initialised optimizer state NAME.suffix shaped like p. */
static gr_value *state(opt *o, const gr_value *p, const char *suffix) {
    char name[512];
    snprintf(name, sizeof name, "%s.%s", p->name, suffix);
    if (gr_graph_find(o->g, name)) {
        gr_fail(o->st, GR_ERR_BAD_MODEL, "the model already has a value named '%s'", name);
        return NULL;
    }
    gr_value *v = gr_graph_add_data(o->g, GR_VALUE_PARAM, name, p->dtype, &p->shape, NULL);
    if (!v) {
        gr_fail(o->st, GR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    v->variable = 1;
    v->trainable = 0;
    return v;
}

/* Records state <- next, gated by "graft.apply" when accumulating. */
static gr_code update(opt *o, gr_value *s, gr_value *next) {
    if (!next) return o->st->code ? o->st->code : GR_ERR_INTERNAL;
    if (o->apply) next = where(o, o->apply, next, s);
    if (!next) return o->st->code;
    return gr_graph_add_update(o->g, s, next) == GR_OK ? GR_OK
                                                       : gr_fail(o->st, GR_ERR_NOMEM, "out of memory");
}

/* A run-time scalar (lr, step_size) times the parameter's factor: lr * factor
 * as PyTorch's param group with that lr. Factor 1 adds no node. */
static gr_value *scaled(opt *o, gr_value *x) {
    return o->factor == 1 ? x : op(o, GR_OP_MUL, x, scalar(o, o->factor));
}

/* AdamW's 1 - lr*factor*wd from graft.decay = 1 - lr*wd:
 * decay*factor + (1 - factor). */
static gr_value *decay(opt *o) {
    if (o->factor == 1) return o->decay;
    return op(o, GR_OP_ADD, op(o, GR_OP_MUL, o->decay, scalar(o, o->factor)),
              scalar(o, 1.0 - o->factor));
}

static gr_code sgd(opt *o, gr_value *w, gr_value *g) {
    const gr_train_opts *t = o->t;
    if (t->weight_decay) g = op(o, GR_OP_ADD, g, op(o, GR_OP_MUL, w, scalar(o, t->weight_decay)));
    gr_value *d = g;
    if (t->momentum) {
        gr_value *buf = state(o, w, "momentum");
        gr_value *next = op(o, GR_OP_ADD, op(o, GR_OP_MUL, buf, scalar(o, t->momentum)),
                            op(o, GR_OP_MUL, g, o->damp));
        GR_TRY(update(o, buf, next));
        d = t->nesterov ? op(o, GR_OP_ADD, g, op(o, GR_OP_MUL, next, scalar(o, t->momentum)))
                        : next;
    }
    return update(o, w, op(o, GR_OP_SUB, w, op(o, GR_OP_MUL, d, scaled(o, o->lr))));
}

static gr_code adam(opt *o, gr_value *w, gr_value *g) {
    const gr_train_opts *t = o->t;
    gr_value *w0 = w;
    if (t->optimizer == GR_OPTIMIZER_ADAMW && t->weight_decay)
        w = op(o, GR_OP_MUL, w, decay(o));
    else if (t->weight_decay)
        g = op(o, GR_OP_ADD, g, op(o, GR_OP_MUL, w, scalar(o, t->weight_decay)));
    gr_value *m = state(o, w0, "m"), *v = state(o, w0, "v");
    gr_value *m1 = op(o, GR_OP_ADD, op(o, GR_OP_MUL, m, scalar(o, t->beta1)),
                      op(o, GR_OP_MUL, g, scalar(o, 1.0 - t->beta1)));
    gr_value *v1 = op(o, GR_OP_ADD, op(o, GR_OP_MUL, v, scalar(o, t->beta2)),
                      op(o, GR_OP_MUL, op(o, GR_OP_MUL, g, g), scalar(o, 1.0 - t->beta2)));
    gr_value *denom = op(o, GR_OP_ADD, op(o, GR_OP_DIV, op(o, GR_OP_SQRT, v1, NULL), o->bc2_sqrt),
                         scalar(o, t->eps));
    gr_value *w1 = op(o, GR_OP_SUB, w, op(o, GR_OP_MUL, op(o, GR_OP_DIV, m1, denom), scaled(o, o->step_size)));
    GR_TRY(update(o, m, m1));
    GR_TRY(update(o, v, v1));
    return update(o, w0, w1);
}

/* g * min(1, c / (sqrt(sum of squares) + 1e-6)) for every gradient. */
static gr_code clip(opt *o, gr_value **grads, int n) {
    gr_value *total = NULL;
    for (int i = 0; i < n; i++) {
        gr_node *r = gr_node_add(o->g, GR_OP_REDUCE_SUM_SQUARE, "clip", 1, &grads[i], 1, NULL);
        if (!r || gr_node_set_int(o->g, r, "keepdims", 0) != GR_OK)
            return gr_fail(o->st, GR_ERR_NOMEM, "out of memory");
        GR_TRY(gr_node_infer(o->g, r, o->st));
        total = total ? op(o, GR_OP_ADD, total, r->outputs[0]) : r->outputs[0];
    }
    gr_value *norm = op(o, GR_OP_ADD, op(o, GR_OP_SQRT, total, NULL), scalar(o, 1e-6));
    gr_value *coef = op(o, GR_OP_MIN, op(o, GR_OP_DIV, scalar(o, o->t->clip_norm), norm),
                        scalar(o, 1.0));
    for (int i = 0; i < n; i++)
        if (!(grads[i] = op(o, GR_OP_MUL, grads[i], coef))) return o->st->code;
    return GR_OK;
}

gr_code gr_pass_optimizer(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    const gr_train_opts *t = opts ? opts->train : NULL;
    if (!t || t->eval) return GR_OK;
    if (!g->n_grads)
        return gr_fail(st, GR_ERR_BAD_ARG, "the loss depends on no trainable parameter");
    opt o = {g, t, st, "optimizer", 1, NULL, NULL, NULL, NULL, NULL, NULL};
    int adam_like = t->optimizer != GR_OPTIMIZER_SGD;
    o.lr = input(&o, "graft.lr", GR_DTYPE_F32);
    if (!adam_like && t->momentum) o.damp = input(&o, "graft.damp", GR_DTYPE_F32);
    if (adam_like) {
        o.step_size = input(&o, "graft.step_size", GR_DTYPE_F32);
        o.bc2_sqrt = input(&o, "graft.bc2_sqrt", GR_DTYPE_F32);
    }
    if (t->optimizer == GR_OPTIMIZER_ADAMW && t->weight_decay)
        o.decay = input(&o, "graft.decay", GR_DTYPE_F32);
    if (!o.lr) return st->code;
    int n = g->n_grads;
    gr_value **grads = gr_calloc((size_t)n + 1, sizeof *grads);
    int *layer = gr_calloc((size_t)g->n_values + 1, sizeof *layer);
    double *factor = gr_calloc((size_t)g->n_values + 1, sizeof *factor);
    gr_code rc = grads && layer && factor ? gr_lr_factors(g, t, layer, factor, st)
                                          : gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && rc == GR_OK; i++) grads[i] = g->grads[i].grad;
    if (rc == GR_OK && t->accumulate > 1) {
        o.apply = input(&o, "graft.apply", GR_DTYPE_BOOL);
        for (int i = 0; i < n && rc == GR_OK; i++) {
            gr_value *sum_state = state(&o, g->grads[i].param, "grad_sum");
            gr_value *sum = op(&o, GR_OP_ADD, sum_state, grads[i]);
            gr_value *zero = scalar(&o, 0.0);
            gr_value *restart = where(&o, o.apply, op(&o, GR_OP_MUL, sum, zero), sum);
            if (!restart || gr_graph_add_update(g, sum_state, restart) != GR_OK) {
                rc = st->code ? st->code : gr_fail(st, GR_ERR_NOMEM, "out of memory");
                break;
            }
            grads[i] = op(&o, GR_OP_MUL, sum, scalar(&o, 1.0 / t->accumulate));
            if (!grads[i]) rc = st->code;
        }
    }
    if (rc == GR_OK && t->clip_norm > 0) rc = clip(&o, grads, n);
    for (int i = 0; i < n && rc == GR_OK; i++) {
        o.base = g->grads[i].param->name;
        o.factor = factor[g->grads[i].param->id];
        if (o.factor == 0) continue; /* lr 0: the parameter does not move */
        rc = adam_like ? adam(&o, g->grads[i].param, grads[i]) : sgd(&o, g->grads[i].param, grads[i]);
    }
    gr_free(grads);
    gr_free(layer);
    gr_free(factor);
    return rc;
}
