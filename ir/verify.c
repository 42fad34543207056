/* verify.c: checks every invariant of a graph. Runs after every pass in
 * test builds (GR_VERIFY_PASSES), and on demand. It never modifies the
 * graph: shape rules are re-run on a scratch copy of each node's outputs. */
#include <string.h>

#include "ir/gr_ir.h"
#include "ir/ir_internal.h"

static gr_code verify_values(const gr_graph *g, gr_status *st) {
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (v->id != i)
            return gr_fail(st, GR_ERR_INTERNAL, "value '%s' has id %d at index %d",
                           v->name, v->id, i);
        if (gr_graph_find(g, v->name) != v)
            return gr_fail(st, GR_ERR_INTERNAL, "value name '%s' is not unique",
                           v->name);
        if (v->shape.rank > GR_MAX_RANK || v->shape.rank < GR_RANK_UNKNOWN)
            return gr_fail(st, GR_ERR_INTERNAL, "value '%s' has rank %d", v->name,
                           v->shape.rank);
        for (int d = 0; d < v->shape.rank; d++)
            if (v->shape.dims[d] < GR_DIM_DYNAMIC)
                return gr_fail(st, GR_ERR_INTERNAL, "value '%s' dim %d is %lld",
                               v->name, d, (long long)v->shape.dims[d]);
        switch (v->kind) {
        case GR_VALUE_NODE:
            if (!v->producer || v->producer->dead ||
                v->producer_output >= v->producer->n_outputs ||
                v->producer->outputs[v->producer_output] != v)
                return gr_fail(st, GR_ERR_INTERNAL,
                               "value '%s' has a broken producer link", v->name);
            break;
        case GR_VALUE_PARAM:
        case GR_VALUE_CONST: {
            int64_t n = gr_value_numel(v);
            if (n < 0 || (size_t)n * gr_dtype_size(v->dtype) != v->nbytes ||
                (n > 0 && !v->data))
                return gr_fail(st, GR_ERR_INTERNAL,
                               "constant '%s' holds %zu bytes for %s with %lld elements",
                               v->name, v->nbytes, gr_dtype_name(v->dtype),
                               (long long)n);
            break;
        }
        case GR_VALUE_INPUT:
            break;
        }
    }
    return GR_OK;
}

static gr_code verify_attrs(const gr_node *n, gr_status *st) {
    if (n->op == GR_OP_UNKNOWN) return GR_OK;
    for (int i = 0; i < n->n_attrs; i++) {
        const gr_attr_schema *s = gr_op_attr_schema(n->op, n->attrs[i].name);
        if (!s)
            return gr_node_fail(n, st, GR_ERR_INTERNAL, "unknown attribute '%s'",
                                n->attrs[i].name);
        if (s->type != n->attrs[i].type)
            return gr_node_fail(n, st, GR_ERR_INTERNAL,
                                "attribute '%s' has type %d, expected %d",
                                n->attrs[i].name, n->attrs[i].type, s->type);
    }
    return GR_OK;
}

/* Re-runs the shape rule and compares with what the outputs hold. */
static gr_code verify_shapes(const gr_graph *g, gr_node *n, gr_status *st) {
    if (n->op == GR_OP_UNKNOWN) return GR_OK;
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && n->inputs[i]->dtype == GR_DTYPE_UNDEFINED) return GR_OK;
    gr_value inline_saved[8];
    int n_out = n->n_outputs;
    gr_value *saved = n_out <= 8 ? inline_saved : gr_calloc((size_t)n_out, sizeof(gr_value));
    if (!saved) return gr_fail(st, GR_ERR_NOMEM, "out of memory verifying graph");
    for (int i = 0; i < n_out; i++)
        if (n->outputs[i]) saved[i] = *n->outputs[i];
    gr_status tmp = {0};
    gr_code rc = gr_node_infer((gr_graph *)g, n, &tmp);
    gr_code result = GR_OK;
    if (rc != GR_OK) {
        result = gr_fail(st, GR_ERR_INTERNAL, "shape rule fails: %s", tmp.msg);
    } else {
        for (int i = 0; i < n_out && result == GR_OK; i++) {
            gr_value *o = n->outputs[i];
            if (!o || saved[i].dtype == GR_DTYPE_UNDEFINED) continue;
            if (o->dtype != saved[i].dtype ||
                (saved[i].shape.rank >= 0 && !gr_shape_equal(&o->shape, &saved[i].shape) &&
                 gr_shape_is_static(&o->shape))) {
                char a[256], b[256];
                result = gr_node_fail(n, st, GR_ERR_INTERNAL,
                                      "output '%s' is %s%s but its shape rule gives %s%s",
                                      o->name, gr_dtype_name(saved[i].dtype),
                                      gr_shape_str(&saved[i].shape, a, sizeof a),
                                      gr_dtype_name(o->dtype),
                                      gr_shape_str(&o->shape, b, sizeof b));
            }
        }
    }
    for (int i = 0; i < n_out; i++)
        if (n->outputs[i]) *n->outputs[i] = saved[i];
    if (saved != inline_saved) gr_free(saved);
    return result;
}

static gr_code verify_node(const gr_graph *g, gr_node *n, int index,
                           const char *defined, gr_status *st) {
    if (n->id != index)
        return gr_node_fail(n, st, GR_ERR_INTERNAL, "id %d at index %d", n->id, index);
    if (gr_graph_find_node(g, n->name) != n)
        return gr_node_fail(n, st, GR_ERR_INTERNAL, "node name is not unique");
    if (n->op != GR_OP_UNKNOWN) {
        const gr_op_info *info = gr_op_info_of(n->op);
        if (n->n_inputs < info->in_min || n->n_inputs > info->in_max)
            return gr_node_fail(n, st, GR_ERR_INTERNAL, "%d inputs, expected %d..%d",
                                n->n_inputs, info->in_min, info->in_max);
        if (n->n_outputs < info->out_min || n->n_outputs > info->out_max)
            return gr_node_fail(n, st, GR_ERR_INTERNAL, "%d outputs, expected %d..%d",
                                n->n_outputs, info->out_min, info->out_max);
    }
    for (int i = 0; i < n->n_inputs; i++) {
        const gr_value *v = n->inputs[i];
        if (!v) continue;
        if (v->id >= g->n_values || g->values[v->id] != v)
            return gr_node_fail(n, st, GR_ERR_INTERNAL,
                                "input %d is not a value of the graph", i);
        if (!defined[v->id])
            return gr_node_fail(n, st, GR_ERR_INTERNAL,
                                "input '%s' is used before it is defined", v->name);
    }
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] && n->outputs[i]->producer != n)
            return gr_node_fail(n, st, GR_ERR_INTERNAL, "output %d is not linked back", i);
    GR_TRY(verify_attrs(n, st));
    return verify_shapes(g, n, st);
}

gr_code gr_graph_verify(const gr_graph *g, gr_status *st) {
    GR_TRY(verify_values(g, st));
    char *defined = gr_calloc((size_t)g->n_values + 1, 1);
    if (!defined) return gr_fail(st, GR_ERR_NOMEM, "out of memory verifying graph");
    for (int i = 0; i < g->n_values; i++)
        defined[i] = g->values[i]->kind != GR_VALUE_NODE;
    gr_code rc = GR_OK;
    for (int i = 0; i < g->n_nodes && rc == GR_OK; i++) {
        gr_node *n = g->nodes[i];
        if (n->dead) continue;
        rc = verify_node(g, n, i, defined, st);
        for (int j = 0; j < n->n_outputs; j++)
            if (n->outputs[j]) defined[n->outputs[j]->id] = 1;
    }
    for (int i = 0; i < g->n_outputs && rc == GR_OK; i++)
        if (!defined[g->outputs[i]->id])
            rc = gr_fail(st, GR_ERR_INTERNAL, "graph output '%s' is never defined",
                         g->outputs[i]->name);
    for (int i = 0; i < g->n_inputs && rc == GR_OK; i++)
        if (g->inputs[i]->kind != GR_VALUE_INPUT)
            rc = gr_fail(st, GR_ERR_INTERNAL, "graph input '%s' is not an input value",
                         g->inputs[i]->name);
    gr_free(defined);
    if (rc != GR_OK) gr_status_prefix(st, "verify graph '%s': ", g->name);
    return rc;
}
