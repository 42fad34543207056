/* adapters.c: the "adapters" pass: bottleneck adapters (--adapter-after
 * GLOB[:dim=D]) and IA3 scaling vectors (--ia3 GLOB) on the first output y
 * of every node whose name matches (fnmatch) and that computes from a graph
 * input (nodes on parameters only, e.g. weight transforms, are skipped).
 * On one node, IA3 comes first:
 *     IA3         z = y * NODE.ia3                   (init: ones)
 *     bottleneck  z = y + up(relu(down(y)))           (up init: zeros)
 * so at initialisation the model computes exactly what it computed before.
 * A node matched by several --adapter-after specs gets one adapter, as wide
 * as the last of them says.
 * Features are the channel axis 1 of a tensor of rank >= 3 that comes from a
 * Conv, ConvTranspose, BatchNormalization, InstanceNormalization, LRN or
 * pooling (through elementwise nodes); the last axis otherwise: after
 * MatMul, Gemm, LayerNormalization, Gather (embeddings), and for every
 * tensor of rank 2. Parameters added (all GR_ORIGIN_ADAPTER, f32), C
 * features, D the bottleneck width (default max(1, C/16): the reduction
 * factor 16 of Pfeiffer et al.'s adapters):
 *   last axis    NODE.adapter.down.weight [C, D]  (x·W, as torch.onnx writes
 *                NODE.adapter.down.bias   [D]      nn.Linear for MatMul)
 *                NODE.adapter.up.weight   [D, C]
 *                NODE.adapter.up.bias     [C]
 *                NODE.ia3                 [C]
 *   channel 1    NODE.adapter.down.weight [D, C, 1, ..]  (1x1 Conv)
 *                NODE.adapter.down.bias   [D]
 *                NODE.adapter.up.weight   [C, D, 1, ..]
 *                NODE.adapter.up.bias     [C]
 *                NODE.ia3                 [C, 1, ..]     (broadcasts over
 *                                                         the spatial axes)
 * down.weight and down.bias are U(-1/sqrt(C), 1/sqrt(C)) (nn.Linear's and
 * nn.Conv2d's default) from --seed; up.* are zero. Every consumer of y (and
 * the graph output, if y is one) reads z instead, and z takes y's name (y
 * becomes "Y.pre_adapter"), so graph output names do not change.
 * Requires: opts->train (otherwise nothing happens).
 * Guarantees: every glob matched a node; shapes inferred; topological order. */
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes_internal.h"

#define MAX_DIM (1 << 20) /* a bottleneck wider than this is a typo */

/* Where a node output keeps its features. */
typedef struct {
    int axis;      /* 1 (channel-first) or rank - 1 */
    int rank;
    int64_t width; /* C */
} features;

/* ------------------------------------------------------------------ specs */

/* Splits "GLOB[:dim=D]" into glob (copied into buf) and dim (0: default). */
static gr_code parse_spec(const char *spec, char *buf, size_t size, int64_t *dim,
                          gr_status *st) {
    const char *colon = strrchr(spec, ':');
    *dim = 0;
    if (!colon || strncmp(colon + 1, "dim=", 4)) colon = NULL;
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (colon) {
        char *end;
        long long d = strtoll(colon + 5, &end, 10);
        if (end == colon + 5 || *end || d <= 0 || d > MAX_DIM)
            return gr_fail(st, GR_ERR_BAD_ARG, "--adapter-after '%s': dim expects an integer "
                           "in 1..%d, got '%s'", spec, MAX_DIM, colon + 5);
        *dim = d;
    }
    if (!len || len >= size)
        return gr_fail(st, GR_ERR_BAD_ARG, "--adapter-after '%s': expected GLOB[:dim=D] with "
                       "a non-empty GLOB", spec);
    memcpy(buf, spec, len);
    buf[len] = '\0';
    return GR_OK;
}

/* ------------------------------------------------------------ feature axis */

enum { LAYOUT_UNKNOWN, LAYOUT_CHANNEL_FIRST, LAYOUT_LAST };

static int op_layout(gr_op op) {
    switch (op) {
    case GR_OP_CONV: case GR_OP_CONV_TRANSPOSE: case GR_OP_BATCH_NORM:
    case GR_OP_INSTANCE_NORM: case GR_OP_LRN: case GR_OP_MAX_POOL: case GR_OP_AVERAGE_POOL:
    case GR_OP_GLOBAL_AVERAGE_POOL: case GR_OP_GLOBAL_MAX_POOL:
        return LAYOUT_CHANNEL_FIRST;
    case GR_OP_MATMUL: case GR_OP_GEMM: case GR_OP_LAYER_NORM: case GR_OP_GATHER:
        return LAYOUT_LAST;
    default:
        return LAYOUT_UNKNOWN;
    }
}

/* The layout of v: its producer's, looking through elementwise nodes (and
 * Dropout) at their first input of the same rank that a node produces. */
static int layout_of(const gr_value *v) {
    for (int hops = 0; v && v->kind == GR_VALUE_NODE && hops < 256; hops++) {
        const gr_node *p = v->producer;
        int layout = op_layout(p->op);
        if (layout != LAYOUT_UNKNOWN) return layout;
        if (!(gr_op_info_of(p->op)->flags & GR_OPF_ELEMENTWISE) && p->op != GR_OP_DROPOUT)
            return LAYOUT_UNKNOWN;
        const gr_value *next = NULL;
        for (int i = 0; i < p->n_inputs && !next; i++) {
            const gr_value *in = p->inputs[i];
            if (in && in->kind == GR_VALUE_NODE && in->shape.rank == v->shape.rank) next = in;
        }
        v = next;
    }
    return LAYOUT_UNKNOWN;
}

/* The features of n's first output: a float tensor of known rank >= 2 whose
 * feature axis has a known size. */
static gr_code features_of(const gr_node *n, const char *option, features *f, gr_status *st) {
    const gr_value *y = n->n_outputs ? n->outputs[0] : NULL;
    char buf[256];
    if (!y || y->dtype != GR_DTYPE_F32 || y->shape.rank < 2)
        return gr_fail(st, GR_ERR_BAD_ARG, "%s: node '%s' (%s): its output %s%s is not a f32 "
                       "tensor of rank >= 2", option, n->name, n->op_type,
                       y ? gr_dtype_name(y->dtype) : "(none)",
                       y ? gr_shape_str(&y->shape, buf, sizeof buf) : "");
    int layout = y->shape.rank == 2 ? LAYOUT_LAST : layout_of(y);
    if (layout == LAYOUT_UNKNOWN)
        return gr_fail(st, GR_ERR_BAD_ARG, "%s: node '%s' (%s): cannot tell the feature axis "
                       "of its output %s (channel axis 1 after Conv, BatchNormalization or "
                       "pooling; last axis after MatMul, Gemm or LayerNormalization; also "
                       "through elementwise nodes)", option, n->name, n->op_type,
                       gr_shape_str(&y->shape, buf, sizeof buf));
    f->rank = y->shape.rank;
    f->axis = layout == LAYOUT_LAST ? f->rank - 1 : 1;
    f->width = y->shape.dims[f->axis];
    if (f->width <= 0)
        return gr_fail(st, GR_ERR_BAD_ARG, "%s: node '%s' (%s): the feature axis %d of its "
                       "output %s has no known size", option, n->name, n->op_type, f->axis,
                       gr_shape_str(&y->shape, buf, sizeof buf));
    return GR_OK;
}

/* --------------------------------------------------------------- building */

/* A new f32 adapter parameter NODE.suffix of shape dims: U(-bound, bound)
 * from r, or filled with fill when r is NULL. */
static gr_value *add_param(gr_graph *g, const gr_node *n, const char *suffix, int rank,
                           const int64_t *dims, gr_rng *r, double bound, float fill,
                           gr_status *st) {
    const char *name = gr_arena_printf(g->arena, "%s.%s", n->name, suffix);
    if (!name) return gr_fail(st, GR_ERR_NOMEM, "out of memory"), NULL;
    if (gr_graph_find(g, name)) {
        gr_fail(st, GR_ERR_BAD_ARG, "node '%s': the model already has a value named '%s' "
                "(an adapter added before?)", n->name, name);
        return NULL;
    }
    gr_shape s = gr_shape_make(rank, dims);
    int64_t count = gr_shape_numel(&s);
    float *data = gr_malloc((size_t)count * sizeof *data);
    if (!data) return gr_fail(st, GR_ERR_NOMEM, "out of memory"), NULL;
    for (int64_t i = 0; i < count; i++)
        data[i] = r ? (float)((2.0 * gr_rng_uniform(r) - 1.0) * bound) : fill;
    gr_value *v = gr_graph_add_data(g, GR_VALUE_PARAM, name, GR_DTYPE_F32, &s, data);
    gr_free(data);
    if (!v) return gr_fail(st, GR_ERR_NOMEM, "out of memory"), NULL;
    v->trainable = 1;
    v->origin = GR_ORIGIN_ADAPTER;
    return v;
}

/* A node NODE.suffix of op on inputs, its output shape inferred; returns
 * its output (named as the node), or NULL with st set. */
static gr_value *add_node(gr_graph *g, const gr_node *n, const char *suffix, gr_op op,
                          int n_inputs, gr_value *const *inputs, gr_status *st) {
    const char *name = gr_arena_printf(g->arena, "%s.%s", n->name, suffix);
    const char *out = name ? gr_graph_unique_name(g, name) : NULL;
    gr_node *m = out ? gr_node_add(g, op, name, n_inputs, inputs, 1, &out) : NULL;
    if (!m) return gr_fail(st, GR_ERR_NOMEM, "out of memory"), NULL;
    /* Shapes now: a later node's feature axis may be found through this one. */
    return gr_node_infer(g, m, st) == GR_OK ? m->outputs[0] : NULL;
}

/* tail * NODE.ia3 (ones; [C] or [C, 1, ..]). */
static gr_value *insert_ia3(gr_graph *g, const gr_node *n, const features *f, gr_value *tail,
                            gr_status *st) {
    int64_t dims[GR_MAX_RANK];
    int rank = f->rank - f->axis;
    dims[0] = f->width;
    for (int d = 1; d < rank; d++) dims[d] = 1;
    gr_value *s = add_param(g, n, "ia3", rank, dims, NULL, 0, 1.0f, st);
    if (!s) return NULL;
    return add_node(g, n, "ia3.mul", GR_OP_MUL, 2, (gr_value *[]){tail, s}, st);
}

/* A projection from `in` to `out` features of x: MatMul + Add (last axis)
 * or a 1x1 Conv with bias (channel axis). Weight and bias are U(+-bound)
 * from r, or zero when r is NULL. */
static gr_value *project(gr_graph *g, const gr_node *n, const features *f, const char *part,
                         gr_value *x, int64_t in, int64_t out, gr_rng *r, gr_status *st) {
    char node[32], wname[32], bname[32], add[32];
    snprintf(node, sizeof node, "adapter.%s", part);
    snprintf(wname, sizeof wname, "adapter.%s.weight", part);
    snprintf(bname, sizeof bname, "adapter.%s.bias", part);
    snprintf(add, sizeof add, "adapter.%s.add", part);
    double bound = 1.0 / sqrt((double)in);
    int64_t dims[GR_MAX_RANK] = {in, out}, kernel[GR_MAX_RANK];
    int channel = f->axis == 1 && f->rank > 2, rank = channel ? f->rank : 2;
    if (channel) {
        dims[0] = out, dims[1] = in;
        for (int d = 2; d < rank; d++) dims[d] = kernel[d - 2] = 1;
    }
    gr_value *w = add_param(g, n, wname, rank, dims, r, bound, 0, st);
    gr_value *b = w ? add_param(g, n, bname, 1, &out, r, bound, 0, st) : NULL;
    if (!b) return NULL;
    if (channel) {
        gr_value *y = add_node(g, n, node, GR_OP_CONV, 3, (gr_value *[]){x, w, b}, st);
        if (y && gr_node_set_ints(g, y->producer, "kernel_shape", rank - 2, kernel) != GR_OK)
            return gr_fail(st, GR_ERR_NOMEM, "out of memory"), NULL;
        return y;
    }
    gr_value *y = add_node(g, n, node, GR_OP_MATMUL, 2, (gr_value *[]){x, w}, st);
    return y ? add_node(g, n, add, GR_OP_ADD, 2, (gr_value *[]){y, b}, st) : NULL;
}

/* tail + up(relu(down(tail))). */
static gr_value *insert_bottleneck(gr_graph *g, const gr_node *n, const features *f,
                                   int64_t dim, gr_rng *r, gr_value *tail, gr_status *st) {
    int64_t c = f->width, d = dim > 0 ? dim : (c / 16 > 1 ? c / 16 : 1);
    gr_value *down = project(g, n, f, "down", tail, c, d, r, st);
    gr_value *act = down ? add_node(g, n, "adapter.relu", GR_OP_RELU, 1, &down, st) : NULL;
    gr_value *up = act ? project(g, n, f, "up", act, d, c, NULL, st) : NULL;
    return up ? add_node(g, n, "adapter.residual", GR_OP_ADD, 2, (gr_value *[]){tail, up}, st)
              : NULL;
}

/* Every use of y outside the nodes from index first on (the adapter's own)
 * now reads z; z takes y's name. */
static gr_code reroute(gr_graph *g, gr_value *y, gr_value *z, int first, gr_status *st) {
    for (int i = 0; i < first; i++) {
        gr_node *m = g->nodes[i];
        for (int j = 0; j < m->n_inputs; j++)
            if (m->inputs[j] == y) m->inputs[j] = z;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == y) g->outputs[i] = z;
    const char *name = y->name;
    char *base = gr_arena_printf(g->arena, "%s.pre_adapter", name);
    const char *unique = base ? gr_graph_unique_name(g, base) : NULL;
    if (!unique || gr_value_rename(g, y, unique) != GR_OK || gr_value_rename(g, z, name) != GR_OK)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    z->has_declared = y->has_declared;
    z->declared_dtype = y->declared_dtype;
    z->declared_shape = y->declared_shape;
    y->has_declared = 0;
    return GR_OK;
}

/* ------------------------------------------------------------------- pass */

/* What the options ask of node n: dim >= 0 for a bottleneck (0: default
 * width), -1 for none; ia3 1 or 0. hit[k] records which spec matched. */
static void wanted(const gr_train_opts *t, char (*globs)[512], const int64_t *dims,
                   const gr_node *n, char *hit, int64_t *dim, int *ia3) {
    *dim = -1, *ia3 = 0;
    for (int k = 0; k < t->n_adapter_after; k++)
        if (fnmatch(globs[k], n->name, 0) == 0) *dim = dims[k], hit[k] = 1;
    for (int k = 0; k < t->n_ia3; k++)
        if (fnmatch(t->ia3[k], n->name, 0) == 0) *ia3 = 1, hit[t->n_adapter_after + k] = 1;
}

/* Adds what n is asked for. */
static gr_code adapt(gr_graph *g, gr_node *n, int64_t dim, int ia3, gr_rng *r, gr_status *st) {
    features f;
    GR_TRY(features_of(n, ia3 ? "--ia3" : "--adapter-after", &f, st));
    gr_value *y = n->outputs[0], *tail = y;
    int first = g->n_nodes;
    if (ia3 && !(tail = insert_ia3(g, n, &f, tail, st))) return st->code;
    if (dim >= 0 && !(tail = insert_bottleneck(g, n, &f, dim, r, tail, st))) return st->code;
    return reroute(g, y, tail, first, st);
}

static gr_code check_hits(const gr_train_opts *t, const char *hit, gr_status *st) {
    for (int k = 0; k < t->n_adapter_after + t->n_ia3; k++) {
        if (hit[k]) continue;
        int after = k < t->n_adapter_after;
        return gr_fail(st, GR_ERR_BAD_ARG, "%s '%s' matches no node of the model that "
                       "computes from its inputs (graft inspect MODEL --print lists them)", after ? "--adapter-after" : "--ia3",
                       after ? t->adapter_after[k] : t->ia3[k - t->n_adapter_after]);
    }
    return GR_OK;
}

/* data[i] = 1 if node i computes from a graph input (a node computing
 * from parameters only, such as a weight transform of another adapter
 * pass, is no activation to adapt). Values are marked in live. */
static void mark_data_nodes(const gr_graph *g, char *live, char *data) {
    for (int i = 0; i < g->n_inputs; i++) live[g->inputs[i]->id] = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        for (int j = 0; j < n->n_inputs && !n->dead; j++)
            data[i] |= n->inputs[j] && live[n->inputs[j]->id];
        for (int j = 0; j < n->n_outputs && data[i]; j++)
            if (n->outputs[j]) live[n->outputs[j]->id] = 1;
    }
}

static gr_code run(gr_graph *g, const gr_train_opts *t, char (*globs)[512], int64_t *dims,
                   char *hit, char *live, char *data, gr_status *st) {
    for (int k = 0; k < t->n_adapter_after; k++)
        GR_TRY(parse_spec(t->adapter_after[k], globs[k], sizeof globs[k], &dims[k], st));
    GR_TRY(gr_graph_infer_shapes(g, st));
    for (int i = 0; i < g->n_values; i++) g->values[i]->id = i;
    mark_data_nodes(g, live, data);
    gr_rng r;
    gr_rng_seed(&r, t->seed ^ 0x61646170746572ull /* "adapter" */);
    int n_model = g->n_nodes;
    for (int i = 0; i < n_model; i++) {
        gr_node *n = g->nodes[i];
        int64_t dim;
        int ia3;
        if (!data[i]) continue;
        wanted(t, globs, dims, n, hit, &dim, &ia3);
        if (dim >= 0 || ia3) GR_TRY(adapt(g, n, dim, ia3, &r, st));
    }
    GR_TRY(check_hits(t, hit, st));
    GR_TRY(gr_graph_toposort(g, st));
    return gr_graph_infer_shapes(g, st);
}

gr_code gr_pass_adapters(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    const gr_train_opts *t = opts ? opts->train : NULL;
    if (!t || t->n_adapter_after + t->n_ia3 == 0) return GR_OK;
    size_t n_specs = (size_t)(t->n_adapter_after + t->n_ia3);
    char(*globs)[512] = gr_calloc((size_t)t->n_adapter_after + 1, sizeof *globs);
    int64_t *dims = gr_calloc((size_t)t->n_adapter_after + 1, sizeof *dims);
    char *hit = gr_calloc(n_specs, 1);
    char *live = gr_calloc((size_t)g->n_values + 1, 1);
    char *data = gr_calloc((size_t)g->n_nodes + 1, 1);
    gr_code code = globs && dims && hit && live && data
                       ? run(g, t, globs, dims, hit, live, data, st)
                       : gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_free(globs);
    gr_free(dims);
    gr_free(hit);
    gr_free(live);
    gr_free(data);
    return code;
}
