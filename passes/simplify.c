/* simplify.c: inference-only rewrites that remove work. In one walk:
 *   Dropout in inference mode (training_mode absent or constant false)
 *     becomes Identity; its mask, if used, an all-true CONST;
 *   BatchNormalization with training_mode = 1 (the attribute: an ONNX
 *     model's own training-mode node) becomes primitive ops on the batch's
 *     statistics (gr_lower_batch_norm_training);
 *   Cast to the dtype it already has, Transpose with the identity perm, and
 *     Reshape/Flatten/Squeeze/Unsqueeze whose static output shape equals
 *     their input's become Identity;
 *   Transpose of a Transpose reads the first one's input with the perms
 *     composed;
 *   Reshape/Flatten/Squeeze/Unsqueeze of one of those four, with a static
 *     output shape, becomes one Reshape of the chain's input;
 *   Identity: its users read its input instead. An Identity whose output is
 *     a graph output stays (as Identity) so that the output keeps its name.
 * Inference only: Dropout is dropped even though training would use it.
 * Requires: a graph in topological order with shapes inferred.
 * Guarantees: graph outputs keep their names, dtypes and shapes; order is
 * kept; producers left without users stay for dce; compacted. */
#include <string.h>

#include "passes/passes_internal.h"

typedef struct {
    gr_graph *g;
    int n_map;          /* values known when the pass started */
    gr_value **remap;   /* value id -> the value its users read instead */
    char *is_output;    /* value id -> 1 if a graph output */
    int sort;           /* nodes were appended: sort at the end */
} simplify_state;

static int is_output(const simplify_state *s, const gr_value *v) {
    return v && v->id < s->n_map && s->is_output[v->id];
}

/* Turns n into Identity of its first input (same first output). */
static void become_identity(gr_node *n) {
    n->op = GR_OP_IDENTITY;
    n->op_type = gr_op_name(GR_OP_IDENTITY);
    n->n_inputs = 1;
    n->n_outputs = 1;
    n->n_attrs = 0;
}

/* Users of an Identity's output read its input; the node goes unless its
 * output is a graph output. */
static void forward_identity(simplify_state *s, gr_node *n) {
    gr_value *out = n->outputs[0];
    if (!out) {
        gr_node_remove(s->g, n);
        return;
    }
    s->remap[out->id] = n->inputs[0];
    if (!is_output(s, out)) gr_node_remove(s->g, n);
}

static int dropout_inference(const gr_node *n) {
    const gr_value *mode = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (!mode) return 1;
    return gr_value_is_constant(mode) && mode->nbytes >= 1 &&
           !gr_dtype_load_i64(mode->dtype, mode->data, 0);
}

/* Dropout -> Identity; a used mask becomes an all-true constant. */
static gr_code simplify_dropout(simplify_state *s, gr_node *n, int *uses, int *done,
                                gr_status *st) {
    gr_value *mask = n->n_outputs > 1 ? n->outputs[1] : NULL;
    *done = 0;
    if (!dropout_inference(n) || !n->outputs[0]) return GR_OK;
    if (mask && uses[mask->id]) {
        int64_t numel = gr_value_numel(mask);
        if (numel < 0) return GR_OK;
        gr_tensor t = {GR_DTYPE_BOOL, mask->shape, gr_malloc((size_t)numel + 1), (size_t)numel};
        if (!t.data) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        memset(t.data, 1, (size_t)numel);
        gr_code rc = gr_value_set_const(s->g, mask, &t, st);
        gr_free(t.data);
        GR_TRY(rc);
    }
    become_identity(n);
    *done = 1;
    return GR_OK;
}

static int identity_perm(const gr_node *n) {
    const gr_shape *x = &n->inputs[0]->shape;
    const int64_t *perm;
    int len = gr_node_ints(n, "perm", &perm);
    if (len < 0) return x->rank >= 0 && x->rank <= 1;
    for (int i = 0; i < len; i++)
        if (perm[i] != i) return 0;
    return 1;
}

static int is_reshaper(gr_op op) {
    return op == GR_OP_RESHAPE || op == GR_OP_FLATTEN || op == GR_OP_SQUEEZE ||
           op == GR_OP_UNSQUEEZE;
}

/* A node that computes nothing: Cast to the same dtype, identity Transpose,
 * a reshaper whose static output shape is its input's. */
static int is_noop(const gr_node *n) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    if (!x || !y || x->dtype == GR_DTYPE_UNDEFINED) return 0;
    if (n->op == GR_OP_CAST) return gr_node_int(n, "to", -1) == (int64_t)x->dtype;
    if (n->op == GR_OP_TRANSPOSE) return identity_perm(n);
    if (is_reshaper(n->op))
        return gr_shape_is_static(&y->shape) && gr_shape_equal(&x->shape, &y->shape);
    return 0;
}

/* The live producer of v if it has op `op`, else NULL. */
static gr_node *producer_op(const gr_value *v, gr_op op) {
    if (!v || v->kind != GR_VALUE_NODE || !v->producer || v->producer->dead) return NULL;
    return v->producer->op == op ? v->producer : NULL;
}

/* Transpose(Transpose(x, p1), p2) = Transpose(x, p) with p[i] = p1[p2[i]]. */
static gr_code compose_transposes(gr_graph *g, gr_node *n, gr_status *st) {
    gr_node *first = producer_op(n->inputs[0], GR_OP_TRANSPOSE);
    if (!first || !first->inputs[0]) return GR_OK;
    int rank = n->inputs[0]->shape.rank;
    if (rank < 0 || rank > GR_MAX_RANK) return GR_OK;
    int64_t p1[GR_MAX_RANK], p2[GR_MAX_RANK], p[GR_MAX_RANK];
    const int64_t *v;
    int l1 = gr_node_ints(first, "perm", &v);
    for (int i = 0; i < rank; i++) p1[i] = l1 >= 0 ? v[i] : rank - 1 - i;
    int l2 = gr_node_ints(n, "perm", &v);
    for (int i = 0; i < rank; i++) p2[i] = l2 >= 0 ? v[i] : rank - 1 - i;
    for (int i = 0; i < rank; i++) p[i] = p1[p2[i]];
    if (gr_node_set_ints(g, n, "perm", rank, p) != GR_OK)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    n->inputs[0] = first->inputs[0];
    return GR_OK;
}

/* reshaper(reshaper(x)) with a static result -> Reshape(x, dims). */
static gr_code collapse_reshapes(gr_graph *g, gr_node *n, gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    gr_node *first = x && x->kind == GR_VALUE_NODE && x->producer && !x->producer->dead &&
                             is_reshaper(x->producer->op) ? x->producer : NULL;
    if (!first || !first->inputs[0] || !y || !gr_shape_is_static(&y->shape)) return GR_OK;
    int64_t rank = y->shape.rank, has_zero = 0;
    for (int i = 0; i < rank; i++) has_zero |= y->shape.dims[i] == 0;
    gr_shape s = gr_shape_make(1, &rank);
    char *base = gr_arena_printf(g->arena, "%s.shape", n->name);
    const char *name = base ? gr_graph_unique_name(g, base) : NULL;
    gr_value *dims = name ? gr_graph_add_data(g, GR_VALUE_CONST, name, GR_DTYPE_I64, &s,
                                              y->shape.dims) : NULL;
    gr_value **inputs = gr_arena_alloc(g->arena, 2 * sizeof *inputs);
    if (!dims || !inputs) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    inputs[0] = first->inputs[0];
    inputs[1] = dims;
    n->op = GR_OP_RESHAPE;
    n->op_type = gr_op_name(GR_OP_RESHAPE);
    n->inputs = inputs;
    n->n_inputs = 2;
    n->n_attrs = 0;
    if (has_zero && gr_node_set_int(g, n, "allowzero", 1) != GR_OK)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    return GR_OK;
}

static gr_code simplify_node(simplify_state *s, gr_node *n, int *uses, gr_status *st) {
    for (int i = 0; i < n->n_inputs; i++) {
        gr_value *v = n->inputs[i];
        if (v && v->id < s->n_map && s->remap[v->id]) n->inputs[i] = s->remap[v->id];
    }
    if (n->op == GR_OP_UNKNOWN) return GR_OK;
    if (n->op == GR_OP_BATCH_NORM && gr_node_int(n, "training_mode", 0)) {
        s->sort = 1;
        return gr_lower_batch_norm_training(s->g, n, st);
    }
    if (n->op == GR_OP_DROPOUT) {
        int done;
        GR_TRY(simplify_dropout(s, n, uses, &done, st));
        if (!done) return GR_OK;
    }
    if (n->op == GR_OP_TRANSPOSE) GR_TRY(compose_transposes(s->g, n, st));
    if (is_reshaper(n->op)) GR_TRY(collapse_reshapes(s->g, n, st));
    if (n->op != GR_OP_IDENTITY && is_noop(n)) become_identity(n);
    if (n->op == GR_OP_IDENTITY && n->inputs[0]) forward_identity(s, n);
    return GR_OK;
}

gr_code gr_pass_simplify(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    (void)opts;
    simplify_state s = {g, g->n_values, NULL, NULL, 0};
    int *uses = gr_calloc((size_t)g->n_values + 1, sizeof *uses);
    s.remap = gr_calloc((size_t)g->n_values + 1, sizeof *s.remap);
    s.is_output = gr_calloc((size_t)g->n_values + 1, 1);
    gr_code rc = GR_OK;
    if (!uses || !s.remap || !s.is_output) {
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory");
    } else {
        gr_graph_count_uses(g, uses);
        for (int i = 0; i < g->n_outputs; i++) s.is_output[g->outputs[i]->id] = 1;
        int n_nodes = g->n_nodes;
        for (int i = 0; i < n_nodes && rc == GR_OK; i++)
            if (!g->nodes[i]->dead)
                rc = simplify_node(&s, g->nodes[i], uses, st);
    }
    gr_free(uses);
    gr_free(s.remap);
    gr_free(s.is_output);
    if (rc == GR_OK && s.sort) rc = gr_graph_toposort(g, st);
    return rc == GR_OK ? gr_passes_compact(g, st) : rc;
}
