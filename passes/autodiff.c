/* autodiff.c: reverse-mode differentiation on the graph. From g->loss back
 * to every trainable parameter, each node on a path between them has its
 * gradient rule (ir/ops.def GRAD lines, passes/grad_*.c) add backward nodes;
 * gradients reaching a value along several paths are summed. The backward
 * nodes are ordinary nodes: later passes fold, fuse and plan them.
 * Requires: g->loss set (a float scalar), shapes static, trainable
 * parameters marked variable (the "train" pass).
 * Guarantees: g->grads holds d loss / d p for every trainable parameter p
 * the loss depends on; order stays topological. Ops without a rule on those
 * paths are all reported at once (GR_ERR_UNSUPPORTED). */
#include <string.h>

#include "passes/grad_internal.h"

static const gr_grad_fn rules[GR_OP_COUNT_] = {
#define GRAD(op, rule) [GR_OP_##op] = gr_grad_##rule,
#include "ir/ops.def"
};

static int is_trainable(const gr_value *v) {
    return v->kind == GR_VALUE_PARAM && v->variable && v->trainable &&
           gr_dtype_is_float(v->dtype);
}

/* needs: depends on a trainable parameter (through float values);
 * reaches: the loss depends on it. */
static void mark_paths(const gr_graph *g, char *needs, char *reaches) {
    for (int i = 0; i < g->n_values; i++) needs[i] = is_trainable(g->values[i]);
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        int any = 0;
        for (int j = 0; j < n->n_inputs; j++) any |= n->inputs[j] && needs[n->inputs[j]->id];
        for (int j = 0; j < n->n_outputs && any; j++)
            if (n->outputs[j] && gr_dtype_is_float(n->outputs[j]->dtype))
                needs[n->outputs[j]->id] = 1;
    }
    reaches[g->loss->id] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const gr_node *n = g->nodes[i];
        int any = 0;
        for (int j = 0; j < n->n_outputs; j++) any |= n->outputs[j] && reaches[n->outputs[j]->id];
        for (int j = 0; j < n->n_inputs && any; j++)
            if (n->inputs[j]) reaches[n->inputs[j]->id] = 1;
    }
}

static int on_path(const gr_node *n, const char *needs, const char *reaches) {
    int in = 0, out = 0;
    for (int j = 0; j < n->n_inputs; j++) in |= n->inputs[j] && needs[n->inputs[j]->id];
    for (int j = 0; j < n->n_outputs; j++) out |= n->outputs[j] && reaches[n->outputs[j]->id];
    return in && out;
}

/* Every op on a gradient path without a rule, in one message. */
static gr_code check_rules(const gr_graph *g, const char *needs, const char *reaches,
                           gr_status *st) {
    char msg[1024];
    size_t used = 0;
    int missing = 0;
    msg[0] = '\0';
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->dead || !on_path(n, needs, reaches) || (n->op != GR_OP_UNKNOWN && rules[n->op]))
            continue;
        if (used < sizeof msg - 1)
            used += (size_t)snprintf(msg + used, sizeof msg - used, "%s%s (node '%s')",
                                     missing ? ", " : "", n->op_type, n->name);
        missing++;
    }
    if (!missing) return GR_OK;
    return gr_fail(st, GR_ERR_UNSUPPORTED,
                   "%d node%s between the trainable parameters and the loss %s no gradient "
                   "rule: %s (freeze the parameters before them, e.g. --freeze-until NODE)",
                   missing, missing == 1 ? "" : "s", missing == 1 ? "has" : "have", msg);
}

/* acc[v] += d (a new Add node once there are two). */
static gr_code accumulate(gr_grad_ctx *c, gr_value **acc, const gr_value *v, gr_value *d,
                          gr_status *st) {
    if (!gr_shape_equal(&d->shape, &v->shape) || d->dtype != v->dtype) {
        char a[128], b[128];
        return gr_fail(st, GR_ERR_INTERNAL,
                       "gradient rule of node '%s' (%s) gave %s%s for input '%s' of %s%s",
                       c->current->name, c->current->op_type, gr_dtype_name(d->dtype),
                       gr_shape_str(&d->shape, a, sizeof a), v->name, gr_dtype_name(v->dtype),
                       gr_shape_str(&v->shape, b, sizeof b));
    }
    if (!acc[v->id]) {
        acc[v->id] = d;
        return GR_OK;
    }
    acc[v->id] = grad_binary(c, GR_OP_ADD, acc[v->id], d, st);
    return acc[v->id] ? GR_OK : st->code;
}

/* Visits the forward nodes (those before the first backward one) last to
 * first; dy and dx hold max_io entries. */
static gr_code backward(gr_grad_ctx *c, const char *reaches, gr_value **acc, gr_value **dy,
                        gr_value **dx, int max_io, gr_status *st) {
    gr_graph *g = c->g;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const gr_node *n = g->nodes[i];
        if (n->dead || !on_path(n, c->needs, reaches)) continue;
        int any = 0;
        for (int j = 0; j < n->n_outputs; j++) {
            dy[j] = n->outputs[j] ? acc[n->outputs[j]->id] : NULL;
            any |= dy[j] != NULL;
        }
        if (!any) continue;
        memset(dx, 0, sizeof *dx * (size_t)max_io);
        c->current = n;
        gr_code rc = rules[n->op](c, n, dy, dx, st);
        if (rc != GR_OK) return gr_status_prefix(st, "gradient of node '%s' (%s): ", n->name,
                                                 n->op_type);
        for (int j = 0; j < n->n_inputs; j++)
            if (dx[j] && gr_grad_needed(c, n, j)) GR_TRY(accumulate(c, acc, n->inputs[j], dx[j], st));
    }
    return GR_OK;
}

gr_code gr_pass_autodiff(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    (void)opts;
    if (!g->loss) return GR_OK; /* an inference graph: nothing to do */
    if (!gr_dtype_is_float(g->loss->dtype) || gr_value_numel(g->loss) != 1)
        return gr_fail(st, GR_ERR_BAD_ARG, "the loss '%s' must be a float scalar", g->loss->name);
    int n0 = g->n_values;
    char *needs = gr_calloc((size_t)n0 + 1, 1), *reaches = gr_calloc((size_t)n0 + 1, 1);
    gr_value **acc = NULL, **io = NULL;
    gr_code rc = GR_OK;
    int max_io = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i]->n_inputs > max_io) max_io = g->nodes[i]->n_inputs;
        if (g->nodes[i]->n_outputs > max_io) max_io = g->nodes[i]->n_outputs;
    }
    io = gr_calloc(2 * (size_t)max_io, sizeof *io);
    if (!needs || !reaches || !io) {
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory");
        goto done;
    }
    mark_paths(g, needs, reaches);
    if ((rc = check_rules(g, needs, reaches, st)) != GR_OK) goto done;
    /* acc grows with the graph: gradients only ever name original values,
     * but the array is indexed by id, so size it for those. */
    acc = gr_calloc((size_t)n0 + 1, sizeof *acc);
    if (!acc) {
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory");
        goto done;
    }
    gr_grad_ctx c = {g, n0, needs, NULL};
    acc[g->loss->id] = grad_fill_like(&c, g->loss, 1.0, st);
    if (!acc[g->loss->id]) {
        rc = st->code;
        goto done;
    }
    if ((rc = backward(&c, reaches, acc, io, io + max_io, max_io, st)) != GR_OK) goto done;
    for (int i = 0; i < n0; i++) {
        gr_value *v = g->values[i];
        if (is_trainable(v) && acc[i] && (rc = gr_graph_add_grad(g, v, acc[i])) != GR_OK) {
            gr_fail(st, rc, "out of memory");
            goto done;
        }
    }
done:
    gr_free(needs);
    gr_free(reaches);
    gr_free(acc);
    gr_free(io);
    return rc;
}
