/* shapes.c: shape inference with folding of shape computations. Walks the
 * nodes in order: runs each node's shape rule, checks the result against
 * the type the model declares for its outputs, then folds the node if its
 * inputs are constant (or it is a Shape/Size of a known shape) and the
 * result is small, so Shape -> Gather -> Concat -> Reshape chains become
 * constants and the next rule sees them.
 * Requires: a verified graph in topological order; input shapes final
 * (the specialize pass ran).
 * Guarantees: every node output whose inputs have known types has its
 * dtype and shape; nodes fed by values of unknown type (after an unknown
 * op) keep unknown outputs; folded nodes are gone (their outputs are CONST
 * values); float parameters are never folded (trainable or not: running
 * statistics change in training), integer ones are; the graph is
 * compacted. */
#include "passes/passes_internal.h"

/* Results larger than this stay nodes: folding them would copy weights. */
#define FOLD_MAX_NUMEL 65536

static int inputs_typed(const gr_node *n) {
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && n->inputs[i]->dtype == GR_DTYPE_UNDEFINED) return 0;
    return 1;
}

static int declared_matches(const gr_value *v) {
    if (v->declared_dtype != GR_DTYPE_UNDEFINED && v->dtype != GR_DTYPE_UNDEFINED &&
        v->declared_dtype != v->dtype)
        return 0;
    const gr_shape *d = &v->declared_shape, *s = &v->shape;
    if (d->rank < 0 || s->rank < 0) return 1;
    if (d->rank != s->rank) return 0;
    for (int i = 0; i < d->rank; i++)
        if (d->dims[i] >= 0 && s->dims[i] >= 0 && d->dims[i] != s->dims[i]) return 0;
    return 1;
}

/* The model's declared output types (value_info) must agree with inference. */
static gr_code check_declared(const gr_node *n, gr_status *st) {
    for (int i = 0; i < n->n_outputs; i++) {
        const gr_value *v = n->outputs[i];
        if (!v || !v->has_declared || declared_matches(v)) continue;
        char a[256], b[256];
        return gr_fail(st, GR_ERR_BAD_MODEL,
                       "value '%s': the model declares %s%s but node '%s' (%s) produces %s%s",
                       v->name, gr_dtype_name(v->declared_dtype),
                       gr_shape_str(&v->declared_shape, a, sizeof a), n->name, n->op_type,
                       gr_dtype_name(v->dtype), gr_shape_str(&v->shape, b, sizeof b));
    }
    return GR_OK;
}

gr_code gr_pass_shapes(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    (void)opts;
    gr_fold_limits limits = {FOLD_MAX_NUMEL, 0};
    for (int i = 0; i < g->n_nodes; i++) {
        gr_node *n = g->nodes[i];
        int folded;
        if (n->dead) continue;
        if (n->op != GR_OP_UNKNOWN && !inputs_typed(n)) {
            /* Fed by an unsupported op: leave unknown for tools to report. */
            for (int j = 0; j < n->n_outputs; j++)
                if (n->outputs[j]) {
                    n->outputs[j]->dtype = GR_DTYPE_UNDEFINED;
                    n->outputs[j]->shape = gr_shape_unknown();
                }
            continue;
        }
        GR_TRY(gr_node_infer(g, n, st));
        GR_TRY(check_declared(n, st));
        GR_TRY(gr_fold_node(g, n, &limits, &folded, st));
    }
    return gr_passes_compact(g, st);
}
