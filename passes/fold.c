/* fold.c: constant folding. gr_fold_node evaluates one node whose inputs
 * are constant (or a Shape/Size of a known shape, or a Gather/Slice/...
 * picking known dims out of a Shape) and turns its outputs into CONST
 * values; the shapes pass uses it with a size limit, and the
 * fold pass (gr_pass_fold) with none, for inference graphs.
 * Requires (fold pass): a verified graph whose node outputs have their
 * dtypes and shapes inferred (the shapes pass ran).
 * Guarantees: folded nodes are gone and their outputs are CONST with the
 * same names, dtypes and shapes; trainable PARAMs are never baked into
 * constants (only Shape/Size may read them), frozen ones are; topological
 * order is kept; the graph is compacted. */
#include "passes/passes_internal.h"

/* The dims [start, end) of a rank-`rank` input that Shape node n reads. */
static void shape_slice(const gr_node *n, int64_t rank, int64_t *start, int64_t *end) {
    int64_t s = gr_node_int(n, "start", 0), e = gr_node_int(n, "end", rank);
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    *start = s < 0 ? 0 : s > rank ? rank : s;
    *end = e < 0 ? 0 : e > rank ? rank : e;
}

/* Shape: the requested dims are known; Size: the whole shape is. */
static int shape_known(const gr_node *n) {
    const gr_value *v = n->inputs[0];
    int64_t start, end;
    if (!v || v->shape.rank < 0) return 0;
    if (n->op == GR_OP_SIZE) return gr_shape_is_static(&v->shape);
    shape_slice(n, v->shape.rank, &start, &end);
    for (int64_t d = start; d < end; d++)
        if (v->shape.dims[d] < 0) return 0;
    return 1;
}

/* A Shape output with some dims dynamic is a "partial" constant: data
 * movement ops (Gather, Slice, Concat, ...) may still pick only known dims
 * from it, as in x.shape[1:] or x.size(1). Unknown dims are PARTIAL while
 * evaluating; a result without PARTIAL folds. */
#define PARTIAL INT64_MIN

static const gr_node *partial_shape_producer(const gr_node *n, int i) {
    const gr_value *v = n->inputs[i];
    int data_input = i == 0 || n->op == GR_OP_CONCAT;
    int mover = n->op == GR_OP_IDENTITY || (n->op != GR_OP_UNKNOWN &&
                (gr_op_info_of(n->op)->flags & GR_OPF_SHAPE_ONLY));
    if (!v || !data_input || !mover || v->kind != GR_VALUE_NODE || !v->producer ||
        v->producer->dead || v->producer->op != GR_OP_SHAPE || v->dtype != GR_DTYPE_I64)
        return NULL;
    const gr_value *x = v->producer->inputs[0];
    return x && x->shape.rank >= 0 ? v->producer : NULL;
}

/* The partial constant of Shape node p as int64 dims (count returned). */
static int64_t partial_dims(const gr_node *p, int64_t *dims) {
    const gr_shape *s = &p->inputs[0]->shape;
    int64_t start, end;
    shape_slice(p, s->rank, &start, &end);
    for (int64_t d = start; d < end; d++)
        dims[d - start] = s->dims[d] >= 0 ? s->dims[d] : PARTIAL;
    return end > start ? end - start : 0;
}

int gr_fold_candidate(const gr_node *n, const gr_fold_limits *limits) {
    if (n->dead || n->op == GR_OP_UNKNOWN || !gr_eval_supports(n->op) ||
        n->n_outputs != 1 || !n->outputs[0])
        return 0;
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && n->inputs[i]->dtype == GR_DTYPE_UNDEFINED) return 0;
    if (n->op == GR_OP_SHAPE || n->op == GR_OP_SIZE) return shape_known(n);
    for (int i = 0; i < n->n_inputs; i++) {
        const gr_value *v = n->inputs[i];
        if (!v || partial_shape_producer(n, i)) continue;
        if (!gr_value_is_constant(v)) return 0;
        if (v->kind == GR_VALUE_PARAM &&
            (v->trainable || (gr_dtype_is_float(v->dtype) && !limits->float_params)))
            return 0;
    }
    return 1;
}

/* Ops whose result may exceed the size limit: they make data rather than
 * copy a weight (Identity of a CONST replaces that CONST). Still bounded,
 * so a huge ConstantOfShape stays a node instead of filling memory. */
#define EXEMPT_MAX_NUMEL ((int64_t)1 << 24)

static int size_exempt(const gr_node *n) {
    return n->op == GR_OP_CONSTANT_OF_SHAPE || n->op == GR_OP_CONSTANT ||
           (n->op == GR_OP_IDENTITY && n->inputs[0]->kind == GR_VALUE_CONST);
}

static gr_tensor tensor_of(const gr_value *v) {
    gr_tensor t;
    t.dtype = v->dtype;
    t.shape = v->shape;
    t.data = v->data;
    t.nbytes = v->nbytes;
    return t;
}

/* Input tensors of n: constants as they are, partial Shape outputs built
 * in dims (GR_MAX_RANK entries per input). Returns 1 if any is partial. */
static int gather_inputs(const gr_node *n, gr_tensor *tin, const gr_tensor **pin,
                         int64_t *dims) {
    int partial = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        const gr_value *v = n->inputs[i];
        const gr_node *p = v ? partial_shape_producer(n, i) : NULL;
        if (!v) continue;
        if (p) {
            int64_t *d = dims + (size_t)i * GR_MAX_RANK, len = partial_dims(p, d);
            tin[i] = (gr_tensor){GR_DTYPE_I64, gr_shape_make(1, &len), d, (size_t)len * 8};
            partial = 1;
        } else {
            tin[i] = tensor_of(v);
        }
        pin[i] = &tin[i];
    }
    return partial;
}

static int has_partial(const gr_tensor *t) {
    if (t->dtype != GR_DTYPE_I64) return 1;
    for (int64_t i = 0; i < gr_shape_numel(&t->shape); i++)
        if (gr_dtype_load_i64(t->dtype, t->data, i) == PARTIAL) return 1;
    return 0;
}

/* Evaluates n into a fresh buffer, then makes its output a CONST. */
static gr_code evaluate(gr_graph *g, gr_node *n, int *folded, gr_status *st) {
    gr_value *o = n->outputs[0];
    gr_tensor *tin = gr_calloc((size_t)n->n_inputs + 1, sizeof *tin);
    const gr_tensor **pin = gr_calloc((size_t)n->n_inputs + 1, sizeof *pin);
    int64_t *dims = gr_calloc((size_t)n->n_inputs * GR_MAX_RANK + 1, sizeof *dims);
    gr_tensor out = {o->dtype, o->shape, NULL, 0};
    out.nbytes = (size_t)gr_value_numel(o) * gr_dtype_size(o->dtype);
    out.data = gr_calloc(out.nbytes + 1, 1);
    gr_code rc = GR_OK;
    if (!tin || !pin || !dims || !out.data) {
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory folding node '%s'", n->name);
        goto done;
    }
    int partial = gather_inputs(n, tin, pin, dims);
    gr_status est = {0};
    rc = gr_eval_node(n, pin, &out, &est);
    if (rc == GR_ERR_UNSUPPORTED || rc == GR_ERR_NUMERIC ||
        (partial && (rc != GR_OK || has_partial(&out)))) {
        rc = GR_OK; /* not foldable after all: the node stays */
        goto done;
    }
    if (rc != GR_OK) {
        *st = est;
        goto done;
    }
    rc = gr_value_set_const(g, o, &out, st);
    if (rc == GR_OK) {
        gr_node_remove(g, n);
        *folded = 1;
    }
done:
    gr_free(tin);
    gr_free(pin);
    gr_free(dims);
    gr_free(out.data);
    return rc;
}

gr_code gr_fold_node(gr_graph *g, gr_node *n, const gr_fold_limits *limits,
                     int *folded, gr_status *st) {
    *folded = 0;
    if (!gr_fold_candidate(n, limits)) return GR_OK;
    gr_value *o = n->outputs[0];
    int64_t numel = gr_value_numel(o);
    if (numel < 0 || gr_dtype_size(o->dtype) == 0) return GR_OK;
    if (limits->max_numel >= 0 && numel > limits->max_numel &&
        (!size_exempt(n) || numel > EXEMPT_MAX_NUMEL))
        return GR_OK;
    return evaluate(g, n, folded, st);
}

gr_code gr_passes_compact(gr_graph *g, gr_status *st) {
    gr_graph_compact(g);
    int whole = 1;
    for (int i = 0; i < g->n_values && whole; i++)
        whole = g->values[i]->id == i && gr_graph_find(g, g->values[i]->name) == g->values[i];
    for (int i = 0; i < g->n_nodes && whole; i++)
        whole = g->nodes[i]->id == i && !g->nodes[i]->dead &&
                gr_graph_find_node(g, g->nodes[i]->name) == g->nodes[i];
    return whole ? GR_OK : gr_fail(st, GR_ERR_NOMEM, "out of memory compacting the graph");
}

gr_code gr_pass_fold(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    (void)opts;
    gr_fold_limits none = {-1, 1};
    for (int i = 0; i < g->n_nodes; i++) {
        gr_node *n = g->nodes[i];
        int folded;
        if (!gr_fold_candidate(n, &none)) continue;
        /* Constant inputs may pin down a shape the last inference left open. */
        GR_TRY(gr_node_infer(g, n, st));
        GR_TRY(gr_fold_node(g, n, &none, &folded, st));
    }
    return gr_passes_compact(g, st);
}
