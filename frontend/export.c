/* export.c: graft IR -> ONNX ModelProto. PARAM values become initializers
 * (raw_data), CONST values Constant nodes placed before every other node,
 * names and attributes are kept as they are. Every protobuf-c message is
 * built in one scratch arena that is freed after packing; raw_data points
 * into the graph (packing only reads it), so weights are never copied twice.
 * The default-domain opset is the lowest >= 18 that expresses the canonical
 * forms in use; ir_version follows from it (ONNX docs/Versioning.md). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/gr_frontend.h"
#include "onnx.pb-c.h"

#define GRAFT_PRODUCER "graft"
#define GRAFT_VERSION "0.1.0"
#define MIN_OPSET 18

typedef struct {
    const gr_graph *g;
    gr_arena *arena;
    gr_status *st;
    int64_t opset;      /* default-domain version written */
    int *is_output;     /* [n_values]: value is a graph output */
} exporter;

/* Scratch allocation; a NULL result is reported by the caller as NOMEM. */
static void *xalloc(exporter *ex, size_t count, size_t size) {
    if (count == 0) count = 1;
    if (size && count > SIZE_MAX / size) return NULL;
    return gr_arena_alloc(ex->arena, count * size);
}

/* protobuf-c fields are char *, but packing only reads them. */
static char *mut(const char *s) { return (char *)(uintptr_t)s; }

static gr_code nomem(exporter *ex) {
    return gr_fail(ex->st, GR_ERR_NOMEM, "export: out of memory");
}

/* Allocates a message of type T initialised with its INIT macro. */
#define NEW_MSG(ex, T, INIT, out)                                              \
    do {                                                                       \
        static const T init_ = INIT;                                           \
        (out) = xalloc((ex), 1, sizeof(T));                                    \
        if (!(out)) return nomem(ex);                                          \
        *(out) = init_;                                                        \
    } while (0)

/* ------------------------------------------------------------ opset choice */

static int is_default_domain(const char *d) {
    return !d || !*d || !strcmp(d, "ai.onnx");
}

static int string_attr_is(const gr_node *n, const char *name, const char *s) {
    const gr_attr *a = gr_node_attr(n, name);
    return a && a->type == GR_ATTR_STRING && a->s && !strcmp(a->s, s);
}

/* Lowest default-domain opset holding the canonical form n uses. The forms
 * of ops.def (Resize, Pad, ReduceX, Split...) are all valid at 18; these are
 * the later additions. */
static int64_t node_min_opset(const gr_node *n) {
    switch (n->op) {
    case GR_OP_GELU:
        return 20;
    case GR_OP_CAST:
    case GR_OP_CAST_LIKE:
        return gr_node_attr(n, "saturate") ? 19 : MIN_OPSET;
    case GR_OP_AVERAGE_POOL:
        return gr_node_attr(n, "dilations") ? 19 : MIN_OPSET;
    case GR_OP_PAD:
        return string_attr_is(n, "mode", "wrap") ? 19 : MIN_OPSET;
    case GR_OP_RESIZE:
        return string_attr_is(n, "coordinate_transformation_mode",
                              "half_pixel_symmetric") ? 19 : MIN_OPSET;
    default:
        return MIN_OPSET;
    }
}

static int64_t choose_opset(const gr_graph *g) {
    int64_t v = g->opset > MIN_OPSET ? g->opset : MIN_OPSET;
    for (int i = 0; i < g->n_opsets; i++)
        if (is_default_domain(g->opsets[i].domain) && g->opsets[i].version > v)
            v = g->opsets[i].version;
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->dead || !is_default_domain(n->domain)) continue;
        int64_t need = node_min_opset(n);
        if (need > v) v = need;
    }
    return v;
}

/* IR version released together with a default-domain opset. */
static int64_t ir_version_for(int64_t opset) {
    if (opset <= 18) return 8;
    if (opset <= 20) return 9;
    if (opset <= 22) return 10;
    return 11;
}

/* ------------------------------------------------------------ types, data */

static gr_code shape_proto(exporter *ex, const gr_shape *s,
                           Onnx__TensorShapeProto **out) {
    Onnx__TensorShapeProto *sp;
    NEW_MSG(ex, Onnx__TensorShapeProto, ONNX__TENSOR_SHAPE_PROTO__INIT, sp);
    sp->dim = xalloc(ex, (size_t)s->rank, sizeof *sp->dim);
    if (!sp->dim) return nomem(ex);
    for (int i = 0; i < s->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d;
        NEW_MSG(ex, Onnx__TensorShapeProto__Dimension,
                ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT, d);
        if (s->dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = s->dims[i];
        } else if (s->syms[i]) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = mut(s->syms[i]);
        } /* else: a dynamic dim without a name is an empty Dimension */
        sp->dim[sp->n_dim++] = d;
    }
    *out = sp;
    return GR_OK;
}

/* ValueInfo of a tensor; unknown dtype leaves elem_type out, unknown rank
 * leaves the shape out. */
static gr_code value_info(exporter *ex, const char *name, gr_dtype dtype,
                          const gr_shape *shape, Onnx__ValueInfoProto **out) {
    Onnx__ValueInfoProto *vi;
    Onnx__TypeProto *tp;
    Onnx__TypeProto__Tensor *tt;
    NEW_MSG(ex, Onnx__ValueInfoProto, ONNX__VALUE_INFO_PROTO__INIT, vi);
    NEW_MSG(ex, Onnx__TypeProto, ONNX__TYPE_PROTO__INIT, tp);
    NEW_MSG(ex, Onnx__TypeProto__Tensor, ONNX__TYPE_PROTO__TENSOR__INIT, tt);
    vi->name = mut(name);
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    if (dtype != GR_DTYPE_UNDEFINED) {
        tt->has_elem_type = 1;
        tt->elem_type = (int32_t)dtype;
    }
    if (shape->rank != GR_RANK_UNKNOWN)
        GR_TRY(shape_proto(ex, shape, &tt->shape));
    *out = vi;
    return GR_OK;
}

/* Dense little-endian data as raw_data (the IR already stores it so). */
static gr_code tensor_proto(exporter *ex, const char *name, gr_dtype dtype,
                            const gr_shape *shape, const void *data,
                            size_t nbytes, Onnx__TensorProto **out) {
    if (gr_dtype_size(dtype) == 0 || !gr_shape_is_static(shape))
        return gr_fail(ex->st, GR_ERR_UNSUPPORTED,
                       "tensor '%s': cannot export dtype %s with %s shape",
                       name ? name : "", gr_dtype_name(dtype),
                       gr_shape_is_static(shape) ? "a static" : "a non-static");
    Onnx__TensorProto *t;
    NEW_MSG(ex, Onnx__TensorProto, ONNX__TENSOR_PROTO__INIT, t);
    t->name = mut(name);
    t->has_data_type = 1;
    t->data_type = (int32_t)dtype;
    t->dims = xalloc(ex, (size_t)shape->rank, sizeof *t->dims);
    if (!t->dims) return nomem(ex);
    t->n_dims = (size_t)shape->rank;
    memcpy(t->dims, shape->dims, sizeof(int64_t) * (size_t)shape->rank);
    t->has_raw_data = 1;
    t->raw_data.len = nbytes;
    t->raw_data.data = (uint8_t *)(uintptr_t)data;
    *out = t;
    return GR_OK;
}

/* ------------------------------------------------------------- attributes */

static gr_code attr_lists(exporter *ex, const gr_attr *a,
                          Onnx__AttributeProto *p) {
    size_t n = a->n > 0 ? (size_t)a->n : 0;
    if (a->type == GR_ATTR_INTS) {
        p->ints = xalloc(ex, n, sizeof *p->ints);
        if (!p->ints) return nomem(ex);
        if (n) memcpy(p->ints, a->ints, n * sizeof *p->ints);
        p->n_ints = n;
    } else if (a->type == GR_ATTR_FLOATS) {
        p->floats = xalloc(ex, n, sizeof *p->floats);
        if (!p->floats) return nomem(ex);
        for (size_t i = 0; i < n; i++) p->floats[i] = (float)a->floats[i];
        p->n_floats = n;
    } else {
        p->strings = xalloc(ex, n, sizeof *p->strings);
        if (!p->strings) return nomem(ex);
        for (size_t i = 0; i < n; i++) {
            p->strings[i].data = (uint8_t *)mut(a->strings[i]);
            p->strings[i].len = strlen(a->strings[i]);
        }
        p->n_strings = n;
    }
    return GR_OK;
}

static gr_code attr_proto(exporter *ex, const gr_node *n, const gr_attr *a,
                          Onnx__AttributeProto **out) {
    Onnx__AttributeProto *p;
    NEW_MSG(ex, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT, p);
    p->name = mut(a->name);
    p->has_type = 1;
    p->type = (Onnx__AttributeProto__AttributeType)a->type;
    switch (a->type) {
    case GR_ATTR_FLOAT:
        p->has_f = 1;
        p->f = (float)a->f;
        break;
    case GR_ATTR_INT:
        p->has_i = 1;
        p->i = a->i;
        break;
    case GR_ATTR_STRING:
        p->has_s = 1;
        p->s.data = (uint8_t *)mut(a->s ? a->s : "");
        p->s.len = a->s ? strlen(a->s) : 0;
        break;
    case GR_ATTR_TENSOR:
        GR_TRY(tensor_proto(ex, NULL, a->tensor->dtype, &a->tensor->shape,
                            a->tensor->data, a->tensor->nbytes, &p->t));
        break;
    case GR_ATTR_INTS:
    case GR_ATTR_FLOATS:
    case GR_ATTR_STRINGS:
        GR_TRY(attr_lists(ex, a, p));
        break;
    default:
        return gr_fail(ex->st, GR_ERR_UNSUPPORTED,
                       "node '%s' (%s): attribute '%s' of type %d cannot be "
                       "exported", n->name, n->op_type, a->name, (int)a->type);
    }
    *out = p;
    return GR_OK;
}

/* ------------------------------------------------------------------ nodes */

static gr_code node_proto(exporter *ex, const gr_node *n,
                          Onnx__NodeProto **out) {
    const char *op_type = n->op_type && *n->op_type ? n->op_type
                          : n->op != GR_OP_UNKNOWN ? gr_op_name(n->op) : NULL;
    if (!op_type)
        return gr_fail(ex->st, GR_ERR_BAD_ARG,
                       "node '%s': unknown op without an op_type", n->name);
    Onnx__NodeProto *p;
    NEW_MSG(ex, Onnx__NodeProto, ONNX__NODE_PROTO__INIT, p);
    p->name = mut(n->name);
    p->op_type = mut(op_type);
    p->domain = n->domain && *n->domain ? mut(n->domain) : NULL;
    p->input = xalloc(ex, (size_t)n->n_inputs, sizeof *p->input);
    p->output = xalloc(ex, (size_t)n->n_outputs, sizeof *p->output);
    p->attribute = xalloc(ex, (size_t)n->n_attrs, sizeof *p->attribute);
    if (!p->input || !p->output || !p->attribute) return nomem(ex);
    for (int i = 0; i < n->n_inputs; i++)
        p->input[i] = mut(n->inputs[i] ? n->inputs[i]->name : "");
    for (int i = 0; i < n->n_outputs; i++)
        p->output[i] = mut(n->outputs[i] ? n->outputs[i]->name : "");
    p->n_input = (size_t)n->n_inputs;
    p->n_output = (size_t)n->n_outputs;
    for (int i = 0; i < n->n_attrs; i++)
        GR_TRY(attr_proto(ex, n, &n->attrs[i], &p->attribute[p->n_attribute++]));
    *out = p;
    return GR_OK;
}

/* A node name for the Constant producing v: v's own name unless a node has
 * it, else "<v>__const[_k]" that is neither a node's nor a value's name
 * (Constant nodes are named after values, so the names stay unique). */
static const char *const_node_name(exporter *ex, const gr_value *v) {
    const gr_graph *g = ex->g;
    if (!gr_graph_find_node(g, v->name)) return v->name;
    char *name = gr_arena_printf(ex->arena, "%s__const", v->name);
    for (int k = 1; name && (gr_graph_find_node(g, name) || gr_graph_find(g, name)); k++)
        name = gr_arena_printf(ex->arena, "%s__const_%d", v->name, k);
    return name;
}

static gr_code const_node(exporter *ex, const gr_value *v,
                          Onnx__NodeProto **out) {
    Onnx__NodeProto *p;
    Onnx__AttributeProto *a;
    NEW_MSG(ex, Onnx__NodeProto, ONNX__NODE_PROTO__INIT, p);
    NEW_MSG(ex, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT, a);
    p->name = mut(const_node_name(ex, v));
    p->op_type = "Constant";
    p->output = xalloc(ex, 1, sizeof *p->output);
    p->attribute = xalloc(ex, 1, sizeof *p->attribute);
    if (!p->name || !p->output || !p->attribute) return nomem(ex);
    p->output[0] = mut(v->name);
    p->n_output = 1;
    a->name = "value";
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    GR_TRY(tensor_proto(ex, v->name, v->dtype, &v->shape, v->data, v->nbytes,
                        &a->t));
    p->attribute[0] = a;
    p->n_attribute = 1;
    *out = p;
    return GR_OK;
}

/* ------------------------------------------------------------------ graph */

/* Type written for a graph output or intermediate: the inferred one when
 * known, else the one the model declared. */
static void best_type(const gr_value *v, gr_dtype *dtype, const gr_shape **shape) {
    if (v->dtype == GR_DTYPE_UNDEFINED && v->has_declared) {
        *dtype = v->declared_dtype;
        *shape = &v->declared_shape;
    } else {
        *dtype = v->dtype;
        *shape = &v->shape;
    }
}

static gr_code graph_nodes(exporter *ex, Onnx__GraphProto *gp) {
    const gr_graph *g = ex->g;
    gp->node = xalloc(ex, (size_t)g->n_values + (size_t)g->n_nodes,
                      sizeof *gp->node);
    gp->initializer = xalloc(ex, (size_t)g->n_values, sizeof *gp->initializer);
    if (!gp->node || !gp->initializer) return nomem(ex);
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (v->kind == GR_VALUE_CONST)
            GR_TRY(const_node(ex, v, &gp->node[gp->n_node++]));
        else if (v->kind == GR_VALUE_PARAM)
            GR_TRY(tensor_proto(ex, v->name, v->dtype, &v->shape, v->data,
                                v->nbytes, &gp->initializer[gp->n_initializer++]));
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->dead) continue;
        gr_code c = node_proto(ex, n, &gp->node[gp->n_node++]);
        if (c != GR_OK) return c;
    }
    return GR_OK;
}

static gr_code graph_io(exporter *ex, Onnx__GraphProto *gp) {
    const gr_graph *g = ex->g;
    gp->input = xalloc(ex, (size_t)g->n_inputs, sizeof *gp->input);
    gp->output = xalloc(ex, (size_t)g->n_outputs, sizeof *gp->output);
    gp->value_info = xalloc(ex, (size_t)g->n_values, sizeof *gp->value_info);
    ex->is_output = xalloc(ex, (size_t)g->n_values, sizeof *ex->is_output);
    if (!gp->input || !gp->output || !gp->value_info || !ex->is_output)
        return nomem(ex);
    for (int i = 0; i < g->n_inputs; i++) {
        const gr_value *v = g->inputs[i];
        GR_TRY(value_info(ex, v->name, v->dtype, &v->shape, &gp->input[i]));
    }
    gp->n_input = (size_t)g->n_inputs;
    for (int i = 0; i < g->n_outputs; i++) {
        const gr_value *v = g->outputs[i];
        gr_dtype dt;
        const gr_shape *s;
        best_type(v, &dt, &s);
        GR_TRY(value_info(ex, v->name, dt, s, &gp->output[i]));
        if (v->id >= 0 && v->id < g->n_values) ex->is_output[v->id] = 1;
    }
    gp->n_output = (size_t)g->n_outputs;
    /* Intermediates with a known type: value_info helps other tools. */
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        gr_dtype dt;
        const gr_shape *s;
        if (v->kind != GR_VALUE_NODE || ex->is_output[i] || !v->producer ||
            v->producer->dead)
            continue;
        best_type(v, &dt, &s);
        if (dt == GR_DTYPE_UNDEFINED) continue;
        GR_TRY(value_info(ex, v->name, dt, s, &gp->value_info[gp->n_value_info++]));
    }
    return GR_OK;
}

/* ------------------------------------------------------------------ model */

static gr_code add_opset(exporter *ex, Onnx__ModelProto *m, const char *domain,
                         int64_t version) {
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *d = m->opset_import[i]->domain;
        if (!strcmp(d ? d : "", domain)) return GR_OK;
    }
    Onnx__OperatorSetIdProto *o;
    NEW_MSG(ex, Onnx__OperatorSetIdProto, ONNX__OPERATOR_SET_ID_PROTO__INIT, o);
    o->domain = mut(domain);
    o->has_version = 1;
    o->version = version;
    m->opset_import[m->n_opset_import++] = o;
    return GR_OK;
}

/* Default domain first, then the graph's other opsets (kept even when no
 * node uses them), then any domain a node uses without one (version 1). */
static gr_code model_opsets(exporter *ex, Onnx__ModelProto *m) {
    const gr_graph *g = ex->g;
    m->opset_import = xalloc(ex, (size_t)g->n_opsets + (size_t)g->n_nodes + 1,
                             sizeof *m->opset_import);
    if (!m->opset_import) return nomem(ex);
    GR_TRY(add_opset(ex, m, "", ex->opset));
    for (int i = 0; i < g->n_opsets; i++)
        if (!is_default_domain(g->opsets[i].domain))
            GR_TRY(add_opset(ex, m, g->opsets[i].domain, g->opsets[i].version));
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (!n->dead && !is_default_domain(n->domain))
            GR_TRY(add_opset(ex, m, n->domain, 1));
    }
    return GR_OK;
}

static gr_code model_metadata(exporter *ex, Onnx__ModelProto *m) {
    const gr_graph *g = ex->g;
    m->metadata_props = xalloc(ex, (size_t)g->n_metadata, sizeof *m->metadata_props);
    if (!m->metadata_props) return nomem(ex);
    for (int i = 0; i < g->n_metadata; i++) {
        Onnx__StringStringEntryProto *e;
        NEW_MSG(ex, Onnx__StringStringEntryProto,
                ONNX__STRING_STRING_ENTRY_PROTO__INIT, e);
        e->key = mut(g->metadata[i].key);
        e->value = mut(g->metadata[i].value);
        m->metadata_props[m->n_metadata_props++] = e;
    }
    return GR_OK;
}

static gr_code build_model(exporter *ex, Onnx__ModelProto **out) {
    const gr_graph *g = ex->g;
    Onnx__ModelProto *m;
    Onnx__GraphProto *gp;
    NEW_MSG(ex, Onnx__ModelProto, ONNX__MODEL_PROTO__INIT, m);
    NEW_MSG(ex, Onnx__GraphProto, ONNX__GRAPH_PROTO__INIT, gp);
    ex->opset = choose_opset(g);
    m->has_ir_version = 1;
    m->ir_version = ir_version_for(ex->opset);
    m->producer_name = GRAFT_PRODUCER;
    m->producer_version = GRAFT_VERSION;
    m->domain = g->domain && *g->domain ? mut(g->domain) : NULL;
    m->has_model_version = g->model_version != 0;
    m->model_version = g->model_version;
    m->doc_string = g->doc && *g->doc ? mut(g->doc) : NULL;
    m->graph = gp;
    gp->name = mut(g->name ? g->name : "graph");
    GR_TRY(model_opsets(ex, m));
    GR_TRY(model_metadata(ex, m));
    GR_TRY(graph_nodes(ex, gp));
    GR_TRY(graph_io(ex, gp));
    *out = m;
    return GR_OK;
}

gr_code gr_export_buffer(const gr_graph *g, void **buf, size_t *len,
                         gr_status *st) {
    if (!g || !buf || !len)
        return gr_fail(st, GR_ERR_BAD_ARG, "export: NULL graph or output");
    *buf = NULL;
    *len = 0;
    exporter ex = {.g = g, .st = st};
    if (!(ex.arena = gr_arena_new()))
        return gr_fail(st, GR_ERR_NOMEM, "export: out of memory");
    Onnx__ModelProto *m = NULL;
    gr_code c = build_model(&ex, &m);
    if (c == GR_OK) {
        size_t size = onnx__model_proto__get_packed_size(m);
        if (size > INT_MAX) {
            c = gr_fail(st, GR_ERR_UNSUPPORTED,
                        "export: model is %zu bytes; ONNX files over 2 GiB "
                        "need external data, which graft does not write",
                        size);
        } else if (!(*buf = gr_malloc(size ? size : 1))) {
            c = gr_fail(st, GR_ERR_NOMEM, "export: out of memory (%zu bytes)",
                        size);
        } else {
            *len = onnx__model_proto__pack(m, *buf);
        }
    }
    gr_arena_free(ex.arena);
    if (c != GR_OK && st) gr_status_prefix(st, "graph '%s': ", g->name ? g->name : "");
    return c;
}

/* ------------------------------------------------------------------- file */

/* Permissions a newly created file would get (0666 minus the umask), or
 * those of the file being replaced. */
static mode_t target_mode(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0) return sb.st_mode & 07777;
    mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

/* Writes buf to a new temp file named from the template tmp (which mkstemp
 * rewrites) and syncs it. Returns 0 with errno set on failure; *created
 * tells whether the temp file exists and must be removed. */
static int write_temp(char *tmp, const void *buf, size_t len, int *created) {
    int fd = mkstemp(tmp);
    *created = fd >= 0;
    if (fd < 0) return 0;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
        return 0;
    }
    int ok = fwrite(buf, 1, len, f) == len && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    errno = e;
    return ok;
}

gr_code gr_export_file(const gr_graph *g, const char *path, gr_status *st) {
    if (!path) return gr_fail(st, GR_ERR_BAD_ARG, "export: NULL path");
    void *buf;
    size_t len;
    GR_TRY(gr_export_buffer(g, &buf, &len, st));
    size_t plen = strlen(path);
    char *tmp = gr_malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp) {
        gr_free(buf);
        return gr_fail(st, GR_ERR_NOMEM, "export '%s': out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    mode_t mode = target_mode(path);
    int created;
    int ok = write_temp(tmp, buf, len, &created) && chmod(tmp, mode) == 0 &&
             rename(tmp, path) == 0;
    int e = errno;
    gr_free(buf);
    if (!ok && created) unlink(tmp);
    gr_free(tmp);
    if (!ok)
        return gr_fail(st, GR_ERR_IO, "cannot write '%s': %s", path,
                       strerror(e));
    return GR_OK;
}
