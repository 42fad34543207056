/* head.c: the "head" pass (--head [NODE:]N): the final classifier, a Gemm
 * or a MatMul (+ Add of a bias), gets a new weight and bias with N outputs,
 * initialised like PyTorch's nn.Linear (uniform in +-1/sqrt(fan_in), from
 * --seed). The tensors keep their names; everything after the classifier
 * (Softmax, Reshape) adapts through shape inference.
 * Requires: opts->train with head_classes > 0 (otherwise nothing happens).
 * Guarantees: declared output shapes no longer constrain the new width. */
#include <math.h>
#include <string.h>

#include "passes/passes_internal.h"

static int is_classifier(const gr_node *n) {
    return !n->dead && (n->op == GR_OP_GEMM || n->op == GR_OP_MATMUL) && n->inputs[1] &&
           n->inputs[1]->kind == GR_VALUE_PARAM && n->inputs[1]->shape.rank == 2;
}

static gr_code find_classifier(const gr_graph *g, const char *name, gr_node **out,
                               gr_status *st) {
    if (name) {
        gr_node *n = gr_graph_find_node(g, name);
        if (!n) return gr_fail(st, GR_ERR_BAD_ARG, "--head: no node named '%s'", name);
        if (!is_classifier(n))
            return gr_fail(st, GR_ERR_BAD_ARG, "--head: node '%s' is %s; expected a Gemm or "
                           "MatMul with a 2-D weight parameter", name, n->op_type);
        *out = n;
        return GR_OK;
    }
    for (int i = g->n_nodes - 1; i >= 0; i--)
        if (is_classifier(g->nodes[i])) {
            *out = g->nodes[i];
            return GR_OK;
        }
    return gr_fail(st, GR_ERR_BAD_ARG, "--head: the model has no Gemm or MatMul with a 2-D "
                   "weight parameter to replace; name one with --head NODE:N");
}

/* The bias of a MatMul classifier: a 1-D parameter added to its output. */
static gr_value *matmul_bias(const gr_graph *g, const gr_node *mm, int64_t width) {
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->dead || n->op != GR_OP_ADD) continue;
        for (int j = 0; j < 2; j++) {
            const gr_value *o = n->inputs[1 - j];
            if (n->inputs[j] == mm->outputs[0] && o->kind == GR_VALUE_PARAM &&
                o->shape.rank == 1 && o->shape.dims[0] == width)
                return n->inputs[1 - j];
        }
    }
    return NULL;
}

/* Gives param v a new shape and U(-bound, bound) data. */
static gr_code reinit(gr_graph *g, gr_value *v, int rank, const int64_t *dims, double bound,
                      gr_rng *r, gr_status *st) {
    gr_shape s = gr_shape_make(rank, dims);
    int64_t n = gr_shape_numel(&s);
    float *d = gr_arena_alloc(g->arena, (size_t)n * sizeof(float));
    if (!d) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) d[i] = (float)((2.0 * gr_rng_uniform(r) - 1.0) * bound);
    v->dtype = GR_DTYPE_F32;
    v->shape = s;
    v->data = d;
    v->nbytes = (size_t)n * sizeof(float);
    v->trainable = 1;
    v->origin = GR_ORIGIN_HEAD;
    return GR_OK;
}

gr_code gr_pass_head(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    const gr_train_opts *t = opts ? opts->train : NULL;
    if (!t || t->head_classes <= 0) return GR_OK;
    gr_node *n = NULL;
    GR_TRY(find_classifier(g, t->head_node, &n, st));
    gr_value *w = n->inputs[1];
    /* x·W (MatMul, Gemm transB=0): W [in, out]; x·Wᵀ (Gemm transB=1): W [out, in]. */
    int transposed = n->op == GR_OP_GEMM && gr_node_int(n, "transB", 0);
    int64_t in = transposed ? w->shape.dims[1] : w->shape.dims[0];
    int64_t out = transposed ? w->shape.dims[0] : w->shape.dims[1];
    gr_value *b = n->op == GR_OP_GEMM ? (n->n_inputs > 2 ? n->inputs[2] : NULL)
                                      : matmul_bias(g, n, out);
    if (b && (b->kind != GR_VALUE_PARAM || gr_value_numel(b) != out))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "--head: the bias '%s' of node '%s' is not a "
                       "parameter of %lld values", b->name, n->name, (long long)out);
    gr_rng r;
    gr_rng_seed(&r, t->seed ^ 0x68656164ull /* "head" */);
    double bound = 1.0 / sqrt((double)in);
    int64_t k = t->head_classes;
    int64_t dims[2] = {transposed ? k : in, transposed ? in : k};
    GR_TRY(reinit(g, w, 2, dims, bound, &r, st));
    if (b) GR_TRY(reinit(g, b, 1, &k, bound, &r, st));
    /* Output shapes follow from inference now. */
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i]->kind == GR_VALUE_NODE) {
            g->values[i]->has_declared = 0;
            g->values[i]->shape = gr_shape_unknown();
            g->values[i]->dtype = GR_DTYPE_UNDEFINED;
        }
    /* A hidden layer's new width reaches layers that still expect the old
     * one: say which edit caused the mismatch. */
    if (gr_graph_infer_shapes(g, st) != GR_OK)
        return gr_status_prefix(st, "--head: node '%s' now has %lld outputs, which the rest of "
                                "the model does not accept: ", n->name, (long long)k);
    return GR_OK;
}
