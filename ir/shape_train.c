/* shape_train.c: shape rules of graft's training ops (ops.def, domain
 * ai.graft). The training passes build these nodes from shapes they have
 * already checked, so the rules mostly restate the contract: the gradient
 * of an input has that input's shape. */
#include "ir/ir_internal.h"

static gr_code need_float(const gr_node *n, int i, gr_status *st) {
    GR_TRY(gr_need_input(n, i, st));
    if (!gr_dtype_is_float(n->inputs[i]->dtype))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input %d ('%s') is %s, expected a float type",
                            i, n->inputs[i]->name, gr_dtype_name(n->inputs[i]->dtype));
    return GR_OK;
}

/* logits [N,C] (or [N]-led [N,C,...]), labels int [N,...], weights [C]? */
static gr_code check_labels(const gr_node *n, int logits, int labels, gr_status *st) {
    GR_TRY(need_float(n, logits, st));
    GR_TRY(gr_need_input(n, labels, st));
    const gr_shape *x = &n->inputs[logits]->shape, *y = &n->inputs[labels]->shape;
    if (!gr_dtype_is_int(n->inputs[labels]->dtype))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "labels ('%s') are %s, expected integer class ids",
                            n->inputs[labels]->name, gr_dtype_name(n->inputs[labels]->dtype));
    if (x->rank >= 0 && x->rank != 2)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "logits have rank %d, expected [N,C]", x->rank);
    if (x->rank == 2 && y->rank >= 0 &&
        (y->rank != 1 || (y->dims[0] >= 0 && x->dims[0] >= 0 && y->dims[0] != x->dims[0])))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "labels have %d dims (first %lld), expected one per row of the logits (%lld)",
                            y->rank, (long long)(y->rank > 0 ? y->dims[0] : 0), (long long)x->dims[0]);
    int w = labels + 1;
    if (n->n_inputs > w && n->inputs[w]) {
        const gr_shape *ws = &n->inputs[w]->shape;
        if (ws->rank >= 0 && x->rank == 2 &&
            (ws->rank != 1 || (ws->dims[0] >= 0 && x->dims[1] >= 0 && ws->dims[0] != x->dims[1])))
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "class weights must be [C] with C = %lld",
                                (long long)x->dims[1]);
    }
    return GR_OK;
}

gr_code gr_shape_rule_softmax_cross_entropy(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(check_labels(n, 0, 1, st));
    gr_shape scalar = gr_shape_scalar();
    gr_set_output(n, 0, n->inputs[0]->dtype, &scalar);
    gr_set_output(n, 1, n->inputs[0]->dtype, &n->inputs[0]->shape);
    return GR_OK;
}

gr_code gr_shape_rule_softmax_cross_entropy_grad(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(need_float(n, 0, st));
    GR_TRY(check_labels(n, 1, 2, st));
    gr_set_output(n, 0, n->inputs[1]->dtype, &n->inputs[1]->shape);
    return GR_OK;
}

/* X [N,C,D...], dY [N,M,E...] -> dW [M, C/group, k...] */
gr_code gr_shape_rule_conv_grad_weight(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(need_float(n, 0, st));
    GR_TRY(need_float(n, 1, st));
    const gr_shape *x = &n->inputs[0]->shape, *dy = &n->inputs[1]->shape;
    const int64_t *k;
    int nk = gr_node_ints(n, "kernel_shape", &k);
    int64_t group = gr_node_int(n, "group", 1);
    if (nk < 1 || nk > GR_MAX_RANK - 2)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "attribute 'kernel_shape' is required");
    if ((x->rank >= 0 && x->rank != nk + 2) || (dy->rank >= 0 && dy->rank != nk + 2))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "X and dY must have rank %d", nk + 2);
    if (group < 1 || (x->rank > 0 && x->dims[1] >= 0 && x->dims[1] % group) ||
        (dy->rank > 0 && dy->dims[1] >= 0 && dy->dims[1] % group))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "group %lld does not divide the channels",
                            (long long)group);
    gr_shape w = gr_shape_of_rank(nk + 2);
    if (dy->rank > 0) gr_copy_dim(&w, 0, dy, 1);
    w.dims[1] = x->rank > 0 && x->dims[1] >= 0 ? x->dims[1] / group : GR_DIM_DYNAMIC;
    for (int i = 0; i < nk; i++) w.dims[2 + i] = k[i];
    gr_set_output(n, 0, n->inputs[0]->dtype, &w);
    return GR_OK;
}

/* dY, X -> dX with X's shape */
gr_code gr_shape_rule_pool_grad(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(need_float(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    const int64_t *k;
    if (gr_node_ints(n, "kernel_shape", &k) < 1)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "attribute 'kernel_shape' is required");
    gr_set_output(n, 0, n->inputs[0]->dtype, &n->inputs[1]->shape);
    return GR_OK;
}

/* dY, indices, shape -> dData of that shape */
gr_code gr_shape_rule_gather_grad(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(need_float(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(gr_need_input(n, 2, st));
    const gr_value *s = n->inputs[2];
    int64_t dims[GR_MAX_RANK];
    int64_t r = gr_value_const_ints(s, dims, GR_MAX_RANK);
    if (r < 1 || r > GR_MAX_RANK)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input 2 ('%s') must be a constant shape of rank 1..%d", s->name,
                            GR_MAX_RANK);
    gr_shape out = gr_shape_make((int)r, dims);
    gr_set_output(n, 0, n->inputs[0]->dtype, &out);
    return GR_OK;
}

/* seed -> mask f32 [shape] */
gr_code gr_shape_rule_dropout_mask(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    const int64_t *dims;
    int r = gr_node_ints(n, "shape", &dims);
    double ratio = gr_node_float(n, "ratio", 0.5);
    if (r < 0 || r > GR_MAX_RANK)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "attribute 'shape' is required (rank <= %d)",
                            GR_MAX_RANK);
    if (!(ratio >= 0.0 && ratio < 1.0))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "ratio %g is outside [0, 1)", ratio);
    gr_shape out = gr_shape_make(r, dims);
    gr_set_output(n, 0, GR_DTYPE_F32, &out);
    return GR_OK;
}
