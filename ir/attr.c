/* attr.c: node attributes. Setters copy into the graph's arena and replace
 * an attribute of the same name; getters fall back to the op's schema
 * default (ops.def), then to the caller's fallback. */
#include <string.h>

#include "ir/gr_ir.h"

static gr_attr *slot_for(gr_graph *g, gr_node *n, const char *name,
                         gr_attr_type type) {
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) {
            memset(&n->attrs[i], 0, sizeof n->attrs[i]);
            n->attrs[i].name = gr_arena_strdup(g->arena, name);
            n->attrs[i].type = type;
            return n->attrs[i].name ? &n->attrs[i] : NULL;
        }
    gr_attr *attrs = gr_arena_alloc(g->arena, sizeof(gr_attr) * (size_t)(n->n_attrs + 1));
    const char *nm = gr_arena_strdup(g->arena, name);
    if (!attrs || !nm) return NULL;
    if (n->n_attrs) memcpy(attrs, n->attrs, sizeof(gr_attr) * (size_t)n->n_attrs);
    n->attrs = attrs;
    gr_attr *a = &attrs[n->n_attrs++];
    a->name = nm;
    a->type = type;
    return a;
}

gr_code gr_node_set_int(gr_graph *g, gr_node *n, const char *name, int64_t v) {
    gr_attr *a = slot_for(g, n, name, GR_ATTR_INT);
    if (!a) return GR_ERR_NOMEM;
    a->i = v;
    return GR_OK;
}

gr_code gr_node_set_float(gr_graph *g, gr_node *n, const char *name, double v) {
    gr_attr *a = slot_for(g, n, name, GR_ATTR_FLOAT);
    if (!a) return GR_ERR_NOMEM;
    a->f = v;
    return GR_OK;
}

gr_code gr_node_set_string(gr_graph *g, gr_node *n, const char *name,
                           const char *v) {
    gr_attr *a = slot_for(g, n, name, GR_ATTR_STRING);
    if (!a || !(a->s = gr_arena_strdup(g->arena, v))) return GR_ERR_NOMEM;
    return GR_OK;
}

gr_code gr_node_set_ints(gr_graph *g, gr_node *n, const char *name, int count,
                         const int64_t *v) {
    gr_attr *a = slot_for(g, n, name, GR_ATTR_INTS);
    if (!a) return GR_ERR_NOMEM;
    a->n = count;
    a->ints = gr_arena_alloc(g->arena, sizeof(int64_t) * (size_t)(count + 1));
    if (!a->ints) return GR_ERR_NOMEM;
    if (count) memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
    return GR_OK;
}

gr_code gr_node_set_floats(gr_graph *g, gr_node *n, const char *name,
                           int count, const double *v) {
    gr_attr *a = slot_for(g, n, name, GR_ATTR_FLOATS);
    if (!a) return GR_ERR_NOMEM;
    a->n = count;
    a->floats = gr_arena_alloc(g->arena, sizeof(double) * (size_t)(count + 1));
    if (!a->floats) return GR_ERR_NOMEM;
    if (count) memcpy(a->floats, v, sizeof(double) * (size_t)count);
    return GR_OK;
}

gr_code gr_node_set_strings(gr_graph *g, gr_node *n, const char *name,
                            int count, const char *const *v) {
    gr_attr *a = slot_for(g, n, name, GR_ATTR_STRINGS);
    if (!a) return GR_ERR_NOMEM;
    a->n = count;
    a->strings = gr_arena_alloc(g->arena, sizeof(char *) * (size_t)(count + 1));
    if (!a->strings) return GR_ERR_NOMEM;
    for (int i = 0; i < count; i++)
        if (!(a->strings[i] = gr_arena_strdup(g->arena, v[i]))) return GR_ERR_NOMEM;
    return GR_OK;
}

gr_code gr_node_set_tensor(gr_graph *g, gr_node *n, const char *name,
                           const gr_tensor *t) {
    gr_attr *a = slot_for(g, n, name, GR_ATTR_TENSOR);
    if (!a) return GR_ERR_NOMEM;
    a->tensor = gr_arena_alloc(g->arena, sizeof(gr_tensor));
    if (!a->tensor) return GR_ERR_NOMEM;
    *a->tensor = *t;
    if (t->nbytes) {
        a->tensor->data = gr_arena_alloc(g->arena, t->nbytes);
        if (!a->tensor->data) return GR_ERR_NOMEM;
        memcpy(a->tensor->data, t->data, t->nbytes);
    }
    return GR_OK;
}

const gr_attr *gr_node_attr(const gr_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

static const gr_attr_schema *default_of(const gr_node *n, const char *name,
                                        gr_attr_type type) {
    if (n->op == GR_OP_UNKNOWN) return NULL;
    const gr_attr_schema *s = gr_op_attr_schema(n->op, name);
    return s && s->has_default && s->type == type ? s : NULL;
}

int64_t gr_node_int(const gr_node *n, const char *name, int64_t fallback) {
    const gr_attr *a = gr_node_attr(n, name);
    if (a && a->type == GR_ATTR_INT) return a->i;
    const gr_attr_schema *s = default_of(n, name, GR_ATTR_INT);
    return s ? s->i : fallback;
}

double gr_node_float(const gr_node *n, const char *name, double fallback) {
    const gr_attr *a = gr_node_attr(n, name);
    if (a && a->type == GR_ATTR_FLOAT) return a->f;
    const gr_attr_schema *s = default_of(n, name, GR_ATTR_FLOAT);
    return s ? s->f : fallback;
}

const char *gr_node_string(const gr_node *n, const char *name,
                           const char *fallback) {
    const gr_attr *a = gr_node_attr(n, name);
    if (a && a->type == GR_ATTR_STRING) return a->s;
    const gr_attr_schema *s = default_of(n, name, GR_ATTR_STRING);
    return s ? s->s : fallback;
}

int gr_node_ints(const gr_node *n, const char *name, const int64_t **v) {
    const gr_attr *a = gr_node_attr(n, name);
    if (!a || a->type != GR_ATTR_INTS) {
        *v = NULL;
        return -1;
    }
    *v = a->ints;
    return a->n;
}
