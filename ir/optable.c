/* optable.c: the op table built from ops.def, op lookup by name, and the
 * driver that runs shape rules (gr_node_infer, gr_graph_infer_shapes). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/gr_ir.h"
#include "ir/ir_internal.h"

/* Attribute schemas: two parallel flat arrays in ops.def order; an op's
 * schemas are contiguous because its ATTR lines follow its OP line. */
static const gr_op attr_ops[] = {
#define ATTR(op, name, type, has_default, i, f, s) GR_OP_##op,
#include "ir/ops.def"
    GR_OP_UNKNOWN,
};

static const gr_attr_schema attr_schemas[] = {
#define ATTR(op, name, type, has_default, i, f, s)                             \
    {name, GR_ATTR_##type, has_default, i, f, s},
#include "ir/ops.def"
    {NULL, GR_ATTR_UNDEFINED, 0, 0, 0.0, NULL},
};

static gr_op_info table[GR_OP_COUNT_] = {
#define OP(id, name, in_min, in_max, out_min, out_max, flags, shape)           \
    [GR_OP_##id] = {name, in_min, in_max, out_min, out_max, flags,             \
                    gr_shape_rule_##shape, NULL, 0},
#include "ir/ops.def"
};

static int table_ready;

/* Points each op at its run of schemas in attr_schemas. */
static void init_table(void) {
    if (table_ready) return;
    for (size_t i = 0; attr_schemas[i].name; i++) {
        gr_op_info *info = &table[attr_ops[i]];
        if (!info->attrs) info->attrs = &attr_schemas[i];
        info->n_attrs++;
    }
    table_ready = 1;
}

const gr_op_info *gr_op_info_of(gr_op op) {
    if ((unsigned)op >= GR_OP_COUNT_) return NULL;
    init_table();
    return &table[op];
}

const char *gr_op_name(gr_op op) {
    if ((unsigned)op >= GR_OP_COUNT_) return "?";
    return table[op].name;
}

gr_op gr_op_from_name(const char *name) {
    if (!name) return GR_OP_UNKNOWN;
    for (int i = 0; i < GR_OP_COUNT_; i++)
        if (!(table[i].flags & GR_OPF_INTERNAL) && !strcmp(table[i].name, name))
            return (gr_op)i;
    return GR_OP_UNKNOWN;
}

const gr_attr_schema *gr_op_attr_schema(gr_op op, const char *attr_name) {
    const gr_op_info *info = gr_op_info_of(op);
    if (!info) return NULL;
    for (int i = 0; i < info->n_attrs; i++)
        if (!strcmp(info->attrs[i].name, attr_name)) return &info->attrs[i];
    return NULL;
}

gr_code gr_node_fail(const gr_node *n, gr_status *st, gr_code code,
                     const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gr_fail(st, code, "node '%s' (%s): %s", n->name, n->op_type, msg);
}

void gr_set_output(gr_node *n, int i, gr_dtype dtype, const gr_shape *shape) {
    if (i >= n->n_outputs || !n->outputs[i]) return;
    n->outputs[i]->dtype = dtype;
    n->outputs[i]->shape = *shape;
}

gr_code gr_norm_axis(const gr_node *n, const char *what, int64_t axis, int rank,
                     int *out, gr_status *st) {
    if (axis < -rank || axis >= rank)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "%s %lld is out of range for rank %d (expected %d..%d)",
                            what, (long long)axis, rank, -rank, rank - 1);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return GR_OK;
}

gr_shape gr_shape_of_rank(int rank) { return gr_shape_make(rank, NULL); }

void gr_copy_dim(gr_shape *dst, int i, const gr_shape *src, int j) {
    dst->dims[i] = src->dims[j];
    dst->syms[i] = src->dims[j] < 0 ? src->syms[j] : NULL;
}

gr_code gr_mark_axes(const gr_node *n, const int64_t *axes, int64_t count, int rank,
                     int *mask, gr_status *st) {
    for (int64_t i = 0; i < count; i++) {
        int a = 0;
        GR_TRY(gr_norm_axis(n, "axis", axes[i], rank, &a, st));
        if (mask[a])
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "axis %lld appears twice in axes",
                                (long long)axes[i]);
        mask[a] = 1;
    }
    return GR_OK;
}

gr_code gr_need_input(const gr_node *n, int i, gr_status *st) {
    if (i >= n->n_inputs || !n->inputs[i])
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input %d is missing", i);
    if (n->inputs[i]->dtype == GR_DTYPE_UNDEFINED)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input %d ('%s') has no known type", i,
                            n->inputs[i]->name);
    return GR_OK;
}

gr_code gr_node_infer(gr_graph *g, gr_node *n, gr_status *st) {
    if (n->op == GR_OP_UNKNOWN) {
        for (int i = 0; i < n->n_outputs; i++)
            if (n->outputs[i]) n->outputs[i]->shape = gr_shape_unknown();
        return GR_OK;
    }
    const gr_op_info *info = gr_op_info_of(n->op);
    for (int i = 0; i < n->n_inputs; i++) {
        gr_value *v = n->inputs[i];
        if (v && v->dtype == GR_DTYPE_UNDEFINED)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "input %d ('%s') has no known type", i, v->name);
    }
    return info->shape(g, n, st);
}

gr_code gr_graph_infer_shapes(gr_graph *g, gr_status *st) {
    for (int i = 0; i < g->n_nodes; i++) {
        gr_node *n = g->nodes[i];
        if (n->dead) continue;
        GR_TRY(gr_node_infer(g, n, st));
    }
    return GR_OK;
}
