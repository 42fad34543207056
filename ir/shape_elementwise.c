/* shape_elementwise.c: shape rules of elementwise ops (unary, binary with
 * numpy broadcasting, variadic, comparisons, Clip, Where, Cast, Dropout). */
#include <string.h>

#include "ir/gr_ir.h"
#include "ir/ir_internal.h"

/* Broadcast one dim pair. Dynamic dims: equal symbols stay; a dynamic dim
 * against 1 stays; against a known n > 1 becomes n (it must be n or 1). */
static int broadcast_dim(const gr_shape *a, int ia, const gr_shape *b, int ib,
                         gr_shape *out, int io) {
    int64_t x = ia >= 0 ? a->dims[ia] : 1, y = ib >= 0 ? b->dims[ib] : 1;
    const char *sx = ia >= 0 ? a->syms[ia] : NULL, *sy = ib >= 0 ? b->syms[ib] : NULL;
    out->syms[io] = NULL;
    if (x >= 0 && y >= 0) {
        if (x != y && x != 1 && y != 1) return 0;
        out->dims[io] = x == 1 ? y : x;
    } else if (x < 0 && y < 0) {
        out->dims[io] = GR_DIM_DYNAMIC;
        if (sx && sy && !strcmp(sx, sy)) out->syms[io] = sx;
    } else {
        int64_t known = x >= 0 ? x : y;
        const char *sym = x >= 0 ? sy : sx;
        if (known == 1) {
            out->dims[io] = GR_DIM_DYNAMIC;
            out->syms[io] = sym;
        } else {
            out->dims[io] = known;
        }
    }
    return 1;
}

gr_code gr_shape_broadcast(const gr_shape *a, const gr_shape *b, gr_shape *out,
                           const gr_node *n, gr_status *st) {
    if (a->rank < 0 || b->rank < 0) {
        *out = gr_shape_unknown();
        return GR_OK;
    }
    gr_shape r = gr_shape_unknown();
    r.rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r.rank; i++) {
        int ia = a->rank - r.rank + i, ib = b->rank - r.rank + i;
        if (!broadcast_dim(a, ia, b, ib, &r, i)) {
            char sa[256], sb[256];
            if (n)
                return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                    "shapes %s and %s do not broadcast (dim %d)",
                                    gr_shape_str(a, sa, sizeof sa),
                                    gr_shape_str(b, sb, sizeof sb), i);
            return gr_fail(st, GR_ERR_BAD_MODEL, "shapes %s and %s do not broadcast",
                           gr_shape_str(a, sa, sizeof sa), gr_shape_str(b, sb, sizeof sb));
        }
    }
    *out = r;
    return GR_OK;
}

static gr_code same_dtypes(const gr_node *n, int first, int count, gr_status *st) {
    gr_dtype t = GR_DTYPE_UNDEFINED;
    for (int i = first; i < first + count && i < n->n_inputs; i++) {
        if (!n->inputs[i]) continue;
        if (t == GR_DTYPE_UNDEFINED) t = n->inputs[i]->dtype;
        else if (n->inputs[i]->dtype != t)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "input %d ('%s') is %s, expected %s like input %d", i,
                                n->inputs[i]->name, gr_dtype_name(n->inputs[i]->dtype),
                                gr_dtype_name(t), first);
    }
    return GR_OK;
}

static gr_code broadcast_inputs(const gr_node *n, int count, gr_shape *out,
                                gr_status *st) {
    *out = n->inputs[0]->shape;
    for (int i = 1; i < count; i++) {
        if (!n->inputs[i]) continue;
        GR_TRY(gr_shape_broadcast(out, &n->inputs[i]->shape, out, n, st));
    }
    return GR_OK;
}

static gr_code need_float(const gr_node *n, int i, gr_status *st) {
    if (!gr_dtype_is_float(n->inputs[i]->dtype))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input %d ('%s') is %s, expected a float type", i,
                            n->inputs[i]->name, gr_dtype_name(n->inputs[i]->dtype));
    return GR_OK;
}

gr_code gr_shape_rule_binary(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    gr_shape s;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(same_dtypes(n, 0, 2, st));
    GR_TRY(broadcast_inputs(n, 2, &s, st));
    gr_set_output(n, 0, n->inputs[0]->dtype, &s);
    return GR_OK;
}

/* Pow: the exponent may have another numeric type; the result has the base's. */
gr_code gr_shape_rule_pow(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    gr_shape s;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(broadcast_inputs(n, 2, &s, st));
    gr_set_output(n, 0, n->inputs[0]->dtype, &s);
    return GR_OK;
}

/* PRelu: slope broadcasts to X (unidirectionally); the output is X's shape. */
gr_code gr_shape_rule_prelu(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    gr_shape s;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(same_dtypes(n, 0, 2, st));
    GR_TRY(broadcast_inputs(n, 2, &s, st));
    gr_set_output(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
    return GR_OK;
}

gr_code gr_shape_rule_compare(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    gr_shape s;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(same_dtypes(n, 0, 2, st));
    GR_TRY(broadcast_inputs(n, 2, &s, st));
    gr_set_output(n, 0, GR_DTYPE_BOOL, &s);
    return GR_OK;
}

gr_code gr_shape_rule_logic(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    for (int i = 0; i < 2; i++) {
        GR_TRY(gr_need_input(n, i, st));
        if (n->inputs[i]->dtype != GR_DTYPE_BOOL)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input %d ('%s') is %s, expected bool",
                                i, n->inputs[i]->name, gr_dtype_name(n->inputs[i]->dtype));
    }
    gr_shape s;
    GR_TRY(broadcast_inputs(n, 2, &s, st));
    gr_set_output(n, 0, GR_DTYPE_BOOL, &s);
    return GR_OK;
}

gr_code gr_shape_rule_logic_not(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    if (n->inputs[0]->dtype != GR_DTYPE_BOOL)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input 0 ('%s') is %s, expected bool",
                            n->inputs[0]->name, gr_dtype_name(n->inputs[0]->dtype));
    gr_set_output(n, 0, GR_DTYPE_BOOL, &n->inputs[0]->shape);
    return GR_OK;
}

gr_code gr_shape_rule_variadic(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    gr_shape s;
    for (int i = 0; i < n->n_inputs; i++) GR_TRY(gr_need_input(n, i, st));
    GR_TRY(same_dtypes(n, 0, n->n_inputs, st));
    GR_TRY(broadcast_inputs(n, n->n_inputs, &s, st));
    gr_set_output(n, 0, n->inputs[0]->dtype, &s);
    return GR_OK;
}

gr_code gr_shape_rule_unary(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    gr_set_output(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
    return GR_OK;
}

gr_code gr_shape_rule_unary_float(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(need_float(n, 0, st));
    gr_set_output(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
    return GR_OK;
}

/* Clip: min and max, when given, are scalars of the input's type. */
gr_code gr_shape_rule_clip(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    for (int i = 1; i < n->n_inputs; i++) {
        const gr_value *b = n->inputs[i];
        if (!b) continue;
        if (b->dtype != n->inputs[0]->dtype)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "%s ('%s') is %s, expected %s",
                                i == 1 ? "min" : "max", b->name, gr_dtype_name(b->dtype),
                                gr_dtype_name(n->inputs[0]->dtype));
        if (b->shape.rank > 1 || (b->shape.rank == 1 && b->shape.dims[0] > 1))
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "%s ('%s') must be a scalar",
                                i == 1 ? "min" : "max", b->name);
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
    return GR_OK;
}

gr_code gr_shape_rule_where(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    for (int i = 0; i < 3; i++) GR_TRY(gr_need_input(n, i, st));
    if (n->inputs[0]->dtype != GR_DTYPE_BOOL)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "condition ('%s') is %s, expected bool",
                            n->inputs[0]->name, gr_dtype_name(n->inputs[0]->dtype));
    GR_TRY(same_dtypes(n, 1, 2, st));
    gr_shape s;
    GR_TRY(broadcast_inputs(n, 3, &s, st));
    gr_set_output(n, 0, n->inputs[1]->dtype, &s);
    return GR_OK;
}

gr_code gr_shape_rule_cast(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    const gr_attr *to = gr_node_attr(n, "to");
    if (!to)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "attribute 'to' is required");
    if (!gr_dtype_valid((int)to->i))
        return gr_node_fail(n, st, GR_ERR_UNSUPPORTED,
                            "cast to data type %lld is not supported", (long long)to->i);
    gr_set_output(n, 0, (gr_dtype)to->i, &n->inputs[0]->shape);
    return GR_OK;
}

gr_code gr_shape_rule_cast_like(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    gr_set_output(n, 0, n->inputs[1]->dtype, &n->inputs[0]->shape);
    return GR_OK;
}

/* Dropout: output like data; optional mask is bool of the same shape. */
gr_code gr_shape_rule_dropout(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(need_float(n, 0, st));
    if (n->n_inputs > 2 && n->inputs[2] && n->inputs[2]->dtype != GR_DTYPE_BOOL)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "training_mode ('%s') is %s, expected bool",
                            n->inputs[2]->name, gr_dtype_name(n->inputs[2]->dtype));
    gr_set_output(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
    gr_set_output(n, 1, GR_DTYPE_BOOL, &n->inputs[0]->shape);
    return GR_OK;
}
