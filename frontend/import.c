/* import.c: ONNX ModelProto -> graft IR. Checks the wire format (wire.c),
 * unpacks with protobuf-c, then builds the graph in phases: model facts,
 * initializers, graph inputs, Constant nodes (lifted to values), nodes
 * with their outputs, input links, declared types, attributes + opset
 * normalisation (canon.c), and finally a topological sort. All model
 * names exist before canon.c generates new ones, so generated names never
 * collide. On any failure the graph and the message are freed. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend_internal.h"

#define MIN_OPSET 7
#define MAX_OPSET 23 /* 23 only widens type lists of mapped ops (float4) */

/* --- a set of borrowed strings (names consumed by nodes or outputs) --- */

typedef struct {
    const char **slots;
    size_t cap, count;
} strset;

static size_t str_hash(const char *s) {
    size_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int strset_add(strset *s, const char *key) {
    if ((s->count + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        const char **slots = gr_calloc(cap, sizeof *slots);
        if (!slots) return 0;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i]) continue;
            size_t j = str_hash(s->slots[i]) & (cap - 1);
            while (slots[j]) j = (j + 1) & (cap - 1);
            slots[j] = s->slots[i];
        }
        gr_free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    size_t j = str_hash(key) & (s->cap - 1);
    while (s->slots[j] && strcmp(s->slots[j], key)) j = (j + 1) & (s->cap - 1);
    if (!s->slots[j]) {
        s->slots[j] = key;
        s->count++;
    }
    return 1;
}

static int strset_has(void *ctx, const char *key) {
    const strset *s = ctx;
    if (!s->cap || !key || !*key) return 0;
    size_t j = str_hash(key) & (s->cap - 1);
    while (s->slots[j]) {
        if (!strcmp(s->slots[j], key)) return 1;
        j = (j + 1) & (s->cap - 1);
    }
    return 0;
}

/* ------------------------------------------------------------ importer */

typedef struct {
    gr_graph *g;
    const Onnx__GraphProto *gp;
    const char *base_dir, *origin;
    int64_t opset;
    strset used;     /* every node input name and graph output name */
    gr_node **nodes; /* [gp->n_node]: created node, NULL for Constants */
    gr_status *st;
} importer;

static const char *str_or(const char *s, const char *fallback) {
    return s ? s : fallback;
}

static int is_default_domain(const char *d) {
    return !d || !*d || !strcmp(d, "ai.onnx");
}

static gr_code nomem(importer *im) {
    return gr_fail(im->st, GR_ERR_NOMEM, "out of memory");
}

static gr_code import_model_facts(importer *im, const Onnx__ModelProto *m) {
    gr_graph *g = im->g;
    gr_arena *a = g->arena;
    g->ir_version = m->ir_version;
    g->model_version = m->has_model_version ? m->model_version : 0;
    g->producer_name = gr_arena_strdup(a, str_or(m->producer_name, ""));
    g->producer_version = gr_arena_strdup(a, str_or(m->producer_version, ""));
    g->domain = gr_arena_strdup(a, str_or(m->domain, ""));
    g->doc = gr_arena_strdup(a, str_or(m->doc_string, ""));
    g->opsets = gr_arena_alloc(a, sizeof(gr_opset) * (m->n_opset_import + 1));
    g->metadata = gr_arena_alloc(a, sizeof(gr_metadata) * (m->n_metadata_props + 1));
    if (!g->producer_name || !g->producer_version || !g->domain || !g->doc ||
        !g->opsets || !g->metadata)
        return nomem(im);
    int found = 0;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        const char *d = is_default_domain(o->domain) ? "" : o->domain;
        gr_opset *os = &g->opsets[g->n_opsets++];
        os->version = o->has_version ? o->version : 0;
        if (!(os->domain = gr_arena_strdup(a, d))) return nomem(im);
        if (!*d && !found) {
            found = 1;
            g->opset = os->version;
        }
    }
    for (size_t i = 0; i < m->n_metadata_props; i++) {
        gr_metadata *md = &g->metadata[g->n_metadata++];
        md->key = gr_arena_strdup(a, str_or(m->metadata_props[i]->key, ""));
        md->value = gr_arena_strdup(a, str_or(m->metadata_props[i]->value, ""));
        if (!md->key || !md->value) return nomem(im);
    }
    if (!found)
        return gr_fail(im->st, GR_ERR_UNSUPPORTED,
                       "the model imports no opset of the default domain (ai.onnx)");
    if (g->opset < MIN_OPSET || g->opset > MAX_OPSET)
        return gr_fail(im->st, GR_ERR_UNSUPPORTED,
                       "default-domain opset %lld is not supported (graft "
                       "imports opsets %d..%d)", (long long)g->opset, MIN_OPSET,
                       MAX_OPSET);
    im->opset = g->opset;
    return GR_OK;
}

/* ----------------------------------------------------------- value types */

/* Reads a ValueInfo's tensor type. *ok is 0 (no error) when the type is
 * not a tensor of a dtype graft holds; negative dims are BAD_MODEL. */
static gr_code read_type(importer *im, const Onnx__ValueInfoProto *vi,
                         const char *what, gr_dtype *dtype, gr_shape *shape,
                         int *ok) {
    *ok = 0;
    *dtype = GR_DTYPE_UNDEFINED;
    *shape = gr_shape_unknown();
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !tp->tensor_type)
        return GR_OK;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    int et = tt->has_elem_type ? tt->elem_type : 0;
    if (et && !gr_dtype_valid(et)) return GR_OK;
    *dtype = (gr_dtype)et;
    if (tt->shape) {
        const Onnx__TensorShapeProto *sp = tt->shape;
        if (sp->n_dim > GR_MAX_RANK)
            return gr_fail(im->st, GR_ERR_UNSUPPORTED, "%s '%s' has rank %zu; graft "
                           "supports up to %d", what, vi->name, sp->n_dim, GR_MAX_RANK);
        *shape = gr_shape_scalar();
        shape->rank = (int)sp->n_dim;
        for (size_t d = 0; d < sp->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = sp->dim[d];
            if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
                if (dim->dim_value < 0)
                    return gr_fail(im->st, GR_ERR_BAD_MODEL,
                                   "%s '%s': dim %zu is %lld, expected >= 0", what,
                                   vi->name, d, (long long)dim->dim_value);
                shape->dims[d] = dim->dim_value;
            } else {
                const char *sym = dim->value_case ==
                                          ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                                          dim->dim_param && *dim->dim_param
                                      ? dim->dim_param
                                      : NULL;
                if (gr_graph_set_dim_symbol(im->g, shape, (int)d, sym) != GR_OK)
                    return nomem(im);
            }
        }
    }
    *ok = 1;
    return GR_OK;
}

static gr_code set_declared(importer *im, gr_value *v, const Onnx__ValueInfoProto *vi,
                            const char *what) {
    gr_dtype dt;
    gr_shape sh;
    int ok;
    GR_TRY(read_type(im, vi, what, &dt, &sh, &ok));
    if (!ok || (dt == GR_DTYPE_UNDEFINED && sh.rank == GR_RANK_UNKNOWN)) return GR_OK;
    v->has_declared = 1;
    v->declared_dtype = dt;
    v->declared_shape = sh;
    return GR_OK;
}

static gr_code duplicate(importer *im, const char *name, const char *what) {
    return gr_fail(im->st, GR_ERR_BAD_MODEL,
                   "value '%s' is defined twice (again as %s)", name, what);
}

/* ------------------------------------------------- initializers, inputs */

/* Adds a PARAM or CONST value holding tensor t; data is decoded straight
 * into the graph's arena. */
static gr_code add_tensor_value(importer *im, const Onnx__TensorProto *t,
                                const char *name, const char *what, int lift,
                                gr_value **out) {
    gr_tensor_src src = {what, im->base_dir, im->origin};
    gr_dtype dt;
    gr_shape sh;
    GR_TRY(gr_tensor_proto_header(t, &src, &dt, &sh, im->st));
    if (gr_graph_find(im->g, name)) return duplicate(im, name, what);
    int64_t numel = gr_shape_numel(&sh);
    gr_value_kind kind = GR_VALUE_PARAM;
    if (lift) kind = gr_dtype_is_float(dt) && numel > 1 ? GR_VALUE_PARAM : GR_VALUE_CONST;
    gr_value *v = gr_graph_add_data(im->g, kind, name, dt, &sh, NULL);
    if (!v) return nomem(im);
    *out = v;
    return gr_tensor_proto_data(t, &src, dt, &sh, v->data, v->nbytes, im->st);
}

static gr_code import_initializers(importer *im) {
    const Onnx__GraphProto *gp = im->gp;
    if (gp->n_sparse_initializer)
        return gr_fail(im->st, GR_ERR_UNSUPPORTED,
                       "sparse initializers are not supported (%zu found)",
                       gp->n_sparse_initializer);
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        const char *name = str_or(t->name, "");
        char what[300];
        snprintf(what, sizeof what, "initializer '%.256s'", name);
        if (!*name)
            return gr_fail(im->st, GR_ERR_BAD_MODEL, "initializer %zu has no name", i);
        gr_value *v;
        GR_TRY(add_tensor_value(im, t, name, what, 0, &v));
    }
    return GR_OK;
}

static gr_code import_inputs(importer *im) {
    for (size_t i = 0; i < im->gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = im->gp->input[i];
        const char *name = str_or(vi->name, "");
        if (!*name)
            return gr_fail(im->st, GR_ERR_BAD_MODEL, "graph input %zu has no name", i);
        gr_value *v = gr_graph_find(im->g, name);
        if (v && v->kind == GR_VALUE_PARAM) {
            /* IR < 4 lists initializers among the inputs (later IRs: an
             * overridable default); either way it is a weight here. */
            GR_TRY(set_declared(im, v, vi, "graph input"));
            continue;
        }
        if (v) return duplicate(im, name, "a graph input");
        gr_dtype dt;
        gr_shape sh;
        int ok;
        GR_TRY(read_type(im, vi, "graph input", &dt, &sh, &ok));
        if (!ok) {
            static const char *const kinds[] = {"no type", "tensor", "?", "?",
                "sequence", "map", "?", "?", "sparse tensor", "optional"};
            const Onnx__TypeProto *tp = vi->type;
            int kind = tp ? (int)tp->value_case : 0;
            if (kind == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
                return gr_fail(im->st, GR_ERR_UNSUPPORTED, "graph input '%s': element "
                               "type %s (%d) is not supported", name,
                               gr_onnx_dtype_name(tp->tensor_type->elem_type),
                               tp->tensor_type->elem_type);
            return gr_fail(im->st, GR_ERR_UNSUPPORTED, "graph input '%s': %s inputs "
                           "are not supported (only tensors)", name,
                           kind >= 0 && kind < 10 ? kinds[kind] : "?");
        }
        if (!gr_graph_add_input(im->g, name, dt, &sh)) return nomem(im);
    }
    return GR_OK;
}

/* --------------------------------------------------------- Constants */

static gr_code lift_scalar_list(importer *im, const char *name, gr_dtype dt,
                                int rank, size_t n, const void *items) {
    gr_shape sh = gr_shape_make(rank, (int64_t[]){(int64_t)n});
    gr_value *v = gr_graph_add_data(im->g, dt == GR_DTYPE_F32 && n > 1 ? GR_VALUE_PARAM
                                                                       : GR_VALUE_CONST,
                                    name, dt, &sh, NULL);
    if (!v) return nomem(im);
    for (size_t i = 0; i < n; i++) {
        if (dt == GR_DTYPE_F32)
            gr_dtype_store_f64(dt, v->data, (int64_t)i, ((const float *)items)[i]);
        else
            gr_dtype_store_i64(dt, v->data, (int64_t)i, ((const int64_t *)items)[i]);
    }
    return GR_OK;
}

/* A Constant node becomes a value named after its output: float tensors
 * with more than one element are weights (PARAM), the rest CONST. */
static gr_code lift_constant(importer *im, const Onnx__NodeProto *np) {
    const char *nn = str_or(np->name, "");
    if (np->n_output != 1 || !np->output[0] || !*np->output[0])
        return gr_fail(im->st, GR_ERR_BAD_MODEL, "Constant node '%s' must have one "
                       "named output", nn);
    const char *name = np->output[0];
    if (np->n_attribute != 1)
        return gr_fail(im->st, GR_ERR_BAD_MODEL, "Constant '%s' must have exactly "
                       "one attribute, has %zu", name, np->n_attribute);
    const Onnx__AttributeProto *a = np->attribute[0];
    const char *an = str_or(a->name, "");
    char what[300];
    snprintf(what, sizeof what, "Constant '%.256s'", name);
    if (gr_graph_find(im->g, name)) return duplicate(im, name, what);
    im->g->n_constants_lifted++;
    gr_value *v;
    if (!strcmp(an, "value") && a->t) return add_tensor_value(im, a->t, name, what, 1, &v);
    if (!strcmp(an, "value_float") && a->has_f)
        return lift_scalar_list(im, name, GR_DTYPE_F32, 0, 1, &a->f);
    if (!strcmp(an, "value_floats"))
        return lift_scalar_list(im, name, GR_DTYPE_F32, 1, a->n_floats, a->floats);
    if (!strcmp(an, "value_int") && a->has_i)
        return lift_scalar_list(im, name, GR_DTYPE_I64, 0, 1, &a->i);
    if (!strcmp(an, "value_ints"))
        return lift_scalar_list(im, name, GR_DTYPE_I64, 1, a->n_ints, a->ints);
    if (!strcmp(an, "value_string") || !strcmp(an, "value_strings") ||
        !strcmp(an, "sparse_value"))
        return gr_fail(im->st, GR_ERR_UNSUPPORTED, "%s: attribute '%s' is not "
                       "supported (string and sparse constants)", what, an);
    return gr_fail(im->st, GR_ERR_BAD_MODEL, "%s: attribute '%s' is not a valid "
                   "Constant value", what, an);
}

/* ------------------------------------------------------------- nodes */

static gr_code check_new_outputs(importer *im, const Onnx__NodeProto *np, int n_out) {
    for (int i = 0; i < n_out; i++) {
        const char *o = np->output[i];
        if (!o || !*o) continue;
        int again = gr_graph_find(im->g, o) != NULL;
        for (int j = 0; j < i && !again; j++) again = np->output[j] && !strcmp(np->output[j], o);
        if (again)
            return gr_fail(im->st, GR_ERR_BAD_MODEL, "value '%s' is defined twice "
                           "(again as output %d of node '%s' (%s))", o, i,
                           str_or(np->name, ""), str_or(np->op_type, ""));
    }
    return GR_OK;
}

static gr_code create_node(importer *im, size_t index) {
    const Onnx__NodeProto *np = im->gp->node[index];
    const char *op_type = str_or(np->op_type, "");
    int dflt = is_default_domain(np->domain);
    if (!*op_type)
        return gr_fail(im->st, GR_ERR_BAD_MODEL, "node %zu ('%s') has no op_type",
                       index, str_or(np->name, ""));
    if (dflt && !strcmp(op_type, "Constant")) return lift_constant(im, np);
    gr_op op = dflt ? gr_canon_op(op_type, im->opset) : GR_OP_UNKNOWN;
    int n_out = (int)np->n_output;
    const char **names = gr_calloc((size_t)n_out + 1, sizeof *names);
    if (!names) return nomem(im);
    for (int i = 0; i < n_out; i++) names[i] = str_or(np->output[i], "");
    while (n_out > 1 && !*names[n_out - 1]) n_out--; /* trailing omitted */
    gr_code rc = check_new_outputs(im, np, n_out);
    if (rc == GR_OK && op != GR_OP_UNKNOWN)
        rc = gr_canon_outputs(str_or(np->name, ""), op_type, im->opset, names, &n_out,
                              strset_has, &im->used, im->st);
    gr_node *n = NULL;
    if (rc == GR_OK) {
        const char *nm = np->name && *np->name ? np->name : NULL;
        n = gr_node_add(im->g, op, nm ? nm : (op == GR_OP_UNKNOWN ? op_type : NULL),
                        0, NULL, n_out, names);
        if (!n) rc = nomem(im);
    }
    gr_free(names);
    GR_TRY(rc);
    if (op == GR_OP_UNKNOWN) {
        n->op_type = gr_arena_strdup(im->g->arena, op_type);
        n->domain = gr_arena_strdup(im->g->arena, dflt ? "" : np->domain);
        if (!n->op_type || !n->domain) return nomem(im);
    }
    im->nodes[index] = n;
    return GR_OK;
}

/* Links node inputs by name; trailing omitted ("") inputs are dropped. */
static gr_code link_inputs(importer *im, size_t index) {
    const Onnx__NodeProto *np = im->gp->node[index];
    gr_node *n = im->nodes[index];
    if (!n) return GR_OK;
    int count = (int)np->n_input;
    while (count > 0 && (!np->input[count - 1] || !*np->input[count - 1])) count--;
    n->inputs = gr_arena_alloc(im->g->arena, sizeof(gr_value *) * (size_t)(count + 1));
    if (!n->inputs) return nomem(im);
    n->n_inputs = count;
    for (int i = 0; i < count; i++) {
        const char *name = np->input[i];
        if (!name || !*name) continue;
        gr_value *v = gr_graph_find(im->g, name);
        if (!v)
            return gr_fail(im->st, GR_ERR_BAD_MODEL,
                           "node '%s' (%s): input '%s' is not produced by any node, "
                           "initializer or graph input", n->name, n->op_type, name);
        n->inputs[i] = v;
    }
    return GR_OK;
}

static const char *attr_type_name(int t) {
    static const char *const names[] = {"UNDEFINED", "FLOAT", "INT", "STRING",
        "TENSOR", "GRAPH", "FLOATS", "INTS", "STRINGS", "TENSORS", "GRAPHS",
        "SPARSE_TENSOR", "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"};
    return t >= 0 && t < 15 ? names[t] : "?";
}

/* Attribute type, inferred from the set field in old files without one. */
static int attr_type_of(const Onnx__AttributeProto *a) {
    if (a->has_type) return (int)a->type;
    if (a->has_f) return GR_ATTR_FLOAT;
    if (a->has_i) return GR_ATTR_INT;
    if (a->has_s) return GR_ATTR_STRING;
    if (a->t) return GR_ATTR_TENSOR;
    if (a->g) return GR_ATTR_GRAPH;
    if (a->n_floats) return GR_ATTR_FLOATS;
    if (a->n_ints) return GR_ATTR_INTS;
    if (a->n_strings) return GR_ATTR_STRINGS;
    return GR_ATTR_UNDEFINED;
}

static char *bin_str(gr_graph *g, ProtobufCBinaryData b) {
    char *s = gr_arena_alloc(g->arena, b.len + 1);
    if (s && b.len) memcpy(s, b.data, b.len);
    return s;
}

static gr_code set_attr_value(importer *im, gr_node *n, const Onnx__AttributeProto *a,
                              const char *an, int type) {
    gr_graph *g = im->g;
    switch (type) {
    case GR_ATTR_FLOAT: return gr_node_set_float(g, n, an, a->f);
    case GR_ATTR_INT: return gr_node_set_int(g, n, an, a->i);
    case GR_ATTR_STRING: {
        char *s = bin_str(g, a->s);
        return s ? gr_node_set_string(g, n, an, s) : GR_ERR_NOMEM;
    }
    case GR_ATTR_INTS: return gr_node_set_ints(g, n, an, (int)a->n_ints, a->ints);
    case GR_ATTR_FLOATS: {
        double *f = gr_arena_alloc(g->arena, sizeof(double) * (a->n_floats + 1));
        if (!f) return GR_ERR_NOMEM;
        for (size_t i = 0; i < a->n_floats; i++) f[i] = a->floats[i];
        return gr_node_set_floats(g, n, an, (int)a->n_floats, f);
    }
    case GR_ATTR_STRINGS: {
        const char **s = gr_arena_alloc(g->arena, sizeof(char *) * (a->n_strings + 1));
        if (!s) return GR_ERR_NOMEM;
        for (size_t i = 0; i < a->n_strings; i++)
            if (!(s[i] = bin_str(g, a->strings[i]))) return GR_ERR_NOMEM;
        return gr_node_set_strings(g, n, an, (int)a->n_strings, s);
    }
    default: return GR_OK;
    }
}

/* Copies one attribute onto n. Known ops must not carry graph, sparse or
 * type attributes; unknown ops keep what the IR can hold and skip the rest
 * (subgraphs are not imported: those ops are unsupported anyway). */
static gr_code import_attr(importer *im, gr_node *n, const Onnx__AttributeProto *a) {
    const char *an = str_or(a->name, "");
    int type = attr_type_of(a);
    int known = n->op != GR_OP_UNKNOWN;
    if (!*an)
        return gr_fail(im->st, GR_ERR_BAD_MODEL, "node '%s' (%s): attribute without a "
                       "name", n->name, n->op_type);
    if (type == GR_ATTR_TENSOR && a->t) {
        char what[400];
        snprintf(what, sizeof what, "node '%s' (%s): attribute '%s'", n->name,
                 n->op_type, an);
        gr_tensor_src src = {what, im->base_dir, im->origin};
        gr_tensor t;
        gr_status tmp = {0}; /* unknown ops drop tensors graft cannot hold */
        gr_code rc = gr_tensor_proto_read(a->t, &src, &t, known ? im->st : &tmp);
        if (rc != GR_OK) return known ? rc : GR_OK;
        rc = gr_node_set_tensor(im->g, n, an, &t);
        gr_free(t.data);
        return rc == GR_OK ? GR_OK : nomem(im);
    }
    if (type < GR_ATTR_FLOAT || type > GR_ATTR_STRINGS || type == GR_ATTR_GRAPH ||
        type == GR_ATTR_TENSOR) {
        if (!known) return GR_OK;
        return gr_fail(im->st, GR_ERR_BAD_MODEL, "node '%s' (%s): attribute '%s' has "
                       "type %s (%d), which %s does not take", n->name, n->op_type, an,
                       attr_type_name(type), type, n->op_type);
    }
    return set_attr_value(im, n, a, an, type) == GR_OK ? GR_OK : nomem(im);
}

/* After canon.c: every attribute of a known op is in its schema. */
static gr_code validate_attrs(importer *im, const gr_node *n) {
    for (int i = 0; i < n->n_attrs; i++) {
        const gr_attr *a = &n->attrs[i];
        const gr_attr_schema *s = gr_op_attr_schema(n->op, a->name);
        if (!s)
            return gr_fail(im->st, GR_ERR_BAD_MODEL, "node '%s' (%s): unknown attribute "
                           "'%s' for %s at opset %lld", n->name, n->op_type, a->name,
                           n->op_type, (long long)im->opset);
        if (s->type != a->type)
            return gr_fail(im->st, GR_ERR_BAD_MODEL, "node '%s' (%s): attribute '%s' is "
                           "a %s, expected %s", n->name, n->op_type, a->name,
                           attr_type_name(a->type), attr_type_name(s->type));
    }
    return GR_OK;
}

static gr_code finish_node(importer *im, size_t index) {
    const Onnx__NodeProto *np = im->gp->node[index];
    gr_node *n = im->nodes[index];
    if (!n) return GR_OK;
    for (size_t i = 0; i < np->n_attribute; i++)
        GR_TRY(import_attr(im, n, np->attribute[i]));
    if (n->op == GR_OP_UNKNOWN) return GR_OK;
    GR_TRY(gr_canon_node(im->g, n, im->opset, im->st));
    return validate_attrs(im, n);
}

static gr_code import_outputs(importer *im) {
    const Onnx__GraphProto *gp = im->gp;
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = str_or(gp->output[i]->name, "");
        gr_value *v = gr_graph_find(im->g, name);
        if (!v)
            return gr_fail(im->st, GR_ERR_BAD_MODEL, "graph output '%s' is not produced "
                           "by any node, initializer or graph input", name);
        GR_TRY(set_declared(im, v, gp->output[i], "graph output"));
        if (gr_graph_add_output(im->g, v) != GR_OK) return nomem(im);
    }
    for (size_t i = 0; i < gp->n_value_info; i++) {
        gr_value *v = gr_graph_find(im->g, str_or(gp->value_info[i]->name, ""));
        if (v) GR_TRY(set_declared(im, v, gp->value_info[i], "value_info"));
    }
    return GR_OK;
}

static gr_code import_nodes(importer *im) {
    const Onnx__GraphProto *gp = im->gp;
    im->nodes = gr_calloc(gp->n_node + 1, sizeof(gr_node *));
    if (!im->nodes) return nomem(im);
    for (size_t i = 0; i < gp->n_node; i++) GR_TRY(create_node(im, i));
    for (size_t i = 0; i < gp->n_node; i++) GR_TRY(link_inputs(im, i));
    /* Declared types first: Softmax-1/11 normalisation uses known ranks. */
    GR_TRY(import_outputs(im));
    for (size_t i = 0; i < gp->n_node; i++) GR_TRY(finish_node(im, i));
    return GR_OK;
}

static gr_code collect_uses(importer *im) {
    const Onnx__GraphProto *gp = im->gp;
    for (size_t i = 0; i < gp->n_node; i++)
        for (size_t j = 0; j < gp->node[i]->n_input; j++)
            if (gp->node[i]->input[j] && !strset_add(&im->used, gp->node[i]->input[j]))
                return nomem(im);
    for (size_t i = 0; i < gp->n_output; i++)
        if (gp->output[i]->name && !strset_add(&im->used, gp->output[i]->name))
            return nomem(im);
    return GR_OK;
}

/* A float Constant with more than one element is lifted to a trainable
 * PARAM (Paddle2ONNX keeps every weight in Constants), except when it only
 * configures an op: Resize's roi and scales are never weights. */
static int configures_only(const gr_graph *g, const gr_value *v) {
    int uses = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++) {
            if (n->inputs[j] != v) continue;
            if (n->op != GR_OP_RESIZE || j == 0) return 0;
            uses++;
        }
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v) return 0;
    return uses > 0;
}

static void demote_config_constants(importer *im) {
    const Onnx__GraphProto *gp = im->gp;
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        if (!np->op_type || strcmp(np->op_type, "Constant") || np->n_output != 1) continue;
        gr_value *v = gr_graph_find(im->g, np->output[0]);
        if (v && v->kind == GR_VALUE_PARAM && configures_only(im->g, v)) {
            v->kind = GR_VALUE_CONST;
            v->trainable = 0;
        }
    }
}

static gr_code import_graph(importer *im, const Onnx__ModelProto *m) {
    GR_TRY(import_model_facts(im, m));
    GR_TRY(collect_uses(im));
    GR_TRY(import_initializers(im));
    GR_TRY(import_inputs(im));
    GR_TRY(import_nodes(im));
    demote_config_constants(im);
    return gr_graph_toposort(im->g, im->st);
}

/* ------------------------------------------------------- entry points */

/* Unpacks buf as a ModelProto, explaining failures and rejecting valid
 * protobuf that is not a model (a TensorProto, say). */
static gr_code unpack_model(const void *buf, size_t len, Onnx__ModelProto **out,
                            gr_status *st) {
    *out = NULL;
    if (len == 0)
        return gr_fail(st, GR_ERR_BAD_MODEL, "the file is empty (0 bytes), not an ONNX model");
    gr_status tmp = {0};
    if (gr_wire_check(buf, len, GR_WIRE_MODEL, st) != GR_OK) {
        /* A top-level mismatch on bytes that are a valid TensorProto is
         * test data given as a model; nested errors are damaged models. */
        if (strncmp(st->msg, "in ", 3) && gr_wire_check(buf, len, GR_WIRE_TENSOR, &tmp) == GR_OK)
            return gr_status_prefix(st, "not an ONNX model (it parses as a TensorProto, "
                                        "e.g. test data); as a model: ");
        return gr_status_prefix(st, "not a valid ONNX model: ");
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m)
        return gr_fail(st, GR_ERR_BAD_MODEL, "protobuf-c cannot unpack the model "
                       "(out of memory, or an encoding the wire check accepts)");
    const char *missing = !m->has_ir_version ? "no ir_version"
                          : !m->graph        ? "no graph"
                          : !m->n_opset_import ? "no opset_import" : NULL;
    if (missing) {
        onnx__model_proto__free_unpacked(m, NULL);
        return gr_fail(st, GR_ERR_BAD_MODEL, "not an ONNX model: it has %s", missing);
    }
    *out = m;
    return GR_OK;
}

gr_code gr_import_buffer(const void *buf, size_t len, const char *base_dir,
                         const char *origin, gr_graph **out, gr_status *st) {
    *out = NULL;
    if (!origin) origin = "<memory>";
    Onnx__ModelProto *m;
    if (unpack_model(buf, len, &m, st) != GR_OK) return gr_status_prefix(st, "'%s': ", origin);
    importer im = {0};
    im.gp = m->graph;
    im.base_dir = base_dir;
    im.origin = origin;
    im.st = st;
    im.g = gr_graph_new(m->graph->name && *m->graph->name ? m->graph->name : "graph");
    gr_code rc = im.g ? import_graph(&im, m) : nomem(&im);
    gr_free(im.used.slots);
    gr_free(im.nodes);
    onnx__model_proto__free_unpacked(m, NULL);
    if (rc != GR_OK) {
        gr_graph_free(im.g);
        return gr_status_prefix(st, "'%s': ", origin);
    }
    *out = im.g;
    return GR_OK;
}

gr_code gr_import_file(const char *path, gr_graph **out, gr_status *st) {
    void *buf;
    size_t len;
    *out = NULL;
    GR_TRY(gr_read_file(path, &buf, &len, st));
    char *dir = gr_dir_of(path);
    gr_code rc = dir ? gr_import_buffer(buf, len, dir, path, out, st)
                     : gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_free(dir);
    gr_free(buf);
    return rc;
}
