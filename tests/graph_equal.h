/* graph_equal.h: structural equality of two graphs for round-trip tests
 * (import -> export -> import). Compares inputs and outputs (names, dtypes,
 * shapes with symbols), live nodes in order (name, op, op_type, domain,
 * input and output names including omitted ones, attributes by name, type
 * and value) and PARAM/CONST values (kind, dtype, shape, trainable, bytes).
 * Model-level facts (opset, ir_version, producer) are not compared: export
 * rewrites them. Header-only; include it from one test file. */
#ifndef GRAFT_TESTS_GRAPH_EQUAL_H
#define GRAFT_TESTS_GRAPH_EQUAL_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/gr_ir.h"

static int ge_fail(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ge_fail(char *why, size_t size, const char *fmt, ...) {
    if (why && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static int ge_str_eq(const char *a, const char *b) {
    return !strcmp(a ? a : "", b ? b : "");
}

static int ge_shape_eq(const gr_shape *a, const gr_shape *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++) {
        if (a->dims[i] != b->dims[i]) return 0;
        if (a->dims[i] < 0 && !ge_str_eq(a->syms[i], b->syms[i])) return 0;
    }
    return 1;
}

static int ge_tensor_eq(const gr_tensor *a, const gr_tensor *b) {
    return a->dtype == b->dtype && ge_shape_eq(&a->shape, &b->shape) &&
           a->nbytes == b->nbytes &&
           (!a->nbytes || !memcmp(a->data, b->data, a->nbytes));
}

/* Float attributes travel as 32-bit floats; compare their bits. */
static int ge_float_eq(double a, double b) {
    float fa = (float)a, fb = (float)b;
    return !memcmp(&fa, &fb, sizeof fa);
}

static int ge_attr_eq(const gr_attr *a, const gr_attr *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case GR_ATTR_INT: return a->i == b->i;
    case GR_ATTR_FLOAT: return ge_float_eq(a->f, b->f);
    case GR_ATTR_STRING: return ge_str_eq(a->s, b->s);
    case GR_ATTR_TENSOR: return ge_tensor_eq(a->tensor, b->tensor);
    default: break;
    }
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++) {
        if (a->type == GR_ATTR_INTS && a->ints[i] != b->ints[i]) return 0;
        if (a->type == GR_ATTR_FLOATS && !ge_float_eq(a->floats[i], b->floats[i]))
            return 0;
        if (a->type == GR_ATTR_STRINGS && !ge_str_eq(a->strings[i], b->strings[i]))
            return 0;
    }
    return 1;
}

static int ge_values_eq(const char *what, int n, gr_value *const *a,
                        gr_value *const *b, char *why, size_t size) {
    for (int i = 0; i < n; i++) {
        if (!ge_str_eq(a[i]->name, b[i]->name))
            return ge_fail(why, size, "%s %d: name '%s' vs '%s'", what, i,
                           a[i]->name, b[i]->name);
        if (a[i]->dtype != b[i]->dtype || !ge_shape_eq(&a[i]->shape, &b[i]->shape)) {
            char sa[128], sb[128];
            return ge_fail(why, size, "%s '%s': type %s%s vs %s%s", what,
                           a[i]->name, gr_dtype_name(a[i]->dtype),
                           gr_shape_str(&a[i]->shape, sa, sizeof sa),
                           gr_dtype_name(b[i]->dtype),
                           gr_shape_str(&b[i]->shape, sb, sizeof sb));
        }
    }
    return 1;
}

static const char *ge_value_name(const gr_value *v) { return v ? v->name : ""; }

static int ge_node_eq(const gr_node *a, const gr_node *b, char *why, size_t size) {
    if (!ge_str_eq(a->name, b->name) || a->op != b->op ||
        !ge_str_eq(a->op_type, b->op_type) || !ge_str_eq(a->domain, b->domain))
        return ge_fail(why, size, "node '%s' (%s/%s) vs '%s' (%s/%s)", a->name,
                       a->domain, a->op_type, b->name, b->domain, b->op_type);
    if (a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs ||
        a->n_attrs != b->n_attrs)
        return ge_fail(why, size, "node '%s': %d/%d/%d vs %d/%d/%d inputs/"
                       "outputs/attributes", a->name, a->n_inputs, a->n_outputs,
                       a->n_attrs, b->n_inputs, b->n_outputs, b->n_attrs);
    for (int i = 0; i < a->n_inputs; i++)
        if (!ge_str_eq(ge_value_name(a->inputs[i]), ge_value_name(b->inputs[i])))
            return ge_fail(why, size, "node '%s': input %d '%s' vs '%s'", a->name,
                           i, ge_value_name(a->inputs[i]), ge_value_name(b->inputs[i]));
    for (int i = 0; i < a->n_outputs; i++)
        if (!ge_str_eq(ge_value_name(a->outputs[i]), ge_value_name(b->outputs[i])))
            return ge_fail(why, size, "node '%s': output %d '%s' vs '%s'", a->name,
                           i, ge_value_name(a->outputs[i]),
                           ge_value_name(b->outputs[i]));
    for (int i = 0; i < a->n_attrs; i++) {
        const gr_attr *x = &a->attrs[i];
        const gr_attr *y = gr_node_attr(b, x->name);
        if (!y || !ge_attr_eq(x, y))
            return ge_fail(why, size, "node '%s': attribute '%s' differs", a->name,
                           x->name);
    }
    return 1;
}

static int ge_live_nodes(const gr_graph *g) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !g->nodes[i]->dead;
    return n;
}

static int ge_data_eq(const gr_graph *a, const gr_graph *b, char *why, size_t size) {
    int count[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        const gr_graph *g = k ? b : a;
        for (int i = 0; i < g->n_values; i++)
            count[k] += gr_value_is_constant(g->values[i]);
    }
    if (count[0] != count[1])
        return ge_fail(why, size, "%d vs %d PARAM/CONST values", count[0], count[1]);
    for (int i = 0; i < a->n_values; i++) {
        const gr_value *x = a->values[i];
        if (!gr_value_is_constant(x)) continue;
        const gr_value *y = gr_graph_find(b, x->name);
        if (!y) return ge_fail(why, size, "value '%s' missing", x->name);
        if (x->kind != y->kind || x->dtype != y->dtype ||
            !ge_shape_eq(&x->shape, &y->shape) || x->trainable != y->trainable ||
            x->nbytes != y->nbytes)
            return ge_fail(why, size, "value '%s': kind/dtype/shape/trainable/"
                           "size differ (kind %d vs %d)", x->name, (int)x->kind,
                           (int)y->kind);
        if (x->nbytes && memcmp(x->data, y->data, x->nbytes))
            return ge_fail(why, size, "value '%s': bytes differ", x->name);
    }
    return 1;
}

/* 1 if a and b are equal; else 0 with the first difference in why. */
static int graph_equal(const gr_graph *a, const gr_graph *b, char *why,
                       size_t size) {
    if (!ge_str_eq(a->name, b->name))
        return ge_fail(why, size, "graph name '%s' vs '%s'", a->name, b->name);
    if (a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs)
        return ge_fail(why, size, "%d/%d vs %d/%d inputs/outputs", a->n_inputs,
                       a->n_outputs, b->n_inputs, b->n_outputs);
    if (!ge_values_eq("input", a->n_inputs, a->inputs, b->inputs, why, size) ||
        !ge_values_eq("output", a->n_outputs, a->outputs, b->outputs, why, size))
        return 0;
    if (ge_live_nodes(a) != ge_live_nodes(b))
        return ge_fail(why, size, "%d vs %d nodes", ge_live_nodes(a),
                       ge_live_nodes(b));
    for (int i = 0, j = 0;; i++, j++) {
        while (i < a->n_nodes && a->nodes[i]->dead) i++;
        while (j < b->n_nodes && b->nodes[j]->dead) j++;
        if (i >= a->n_nodes || j >= b->n_nodes) break;
        if (!ge_node_eq(a->nodes[i], b->nodes[j], why, size)) return 0;
    }
    return ge_data_eq(a, b, why, size);
}

#endif /* GRAFT_TESTS_GRAPH_EQUAL_H */
