/* grad_reduce.c: gradient rules of reductions (passes/grad.h). The
 * gradient of a reduction broadcasts dy back over the reduced axes. */
#include "passes/grad.h"

/* Marks the reduced axes of n (ReduceX-18 form: axes input, or all). *all
 * is 0 when noop_with_empty_axes makes the node an identity. Returns the
 * count, -1 for axes that are not constant. */
static int reduced_axes(const gr_node *n, int mask[GR_MAX_RANK]) {
    int rank = n->inputs[0]->shape.rank;
    for (int i = 0; i < rank; i++) mask[i] = 0;
    int64_t axes[GR_MAX_RANK];
    int64_t count = 0;
    if (n->n_inputs > 1 && n->inputs[1]) {
        count = gr_value_const_ints(n->inputs[1], axes, GR_MAX_RANK);
        if (count < 0) return -1;
    }
    if (count == 0) {
        if (gr_node_int(n, "noop_with_empty_axes", 0)) return 0;
        for (int i = 0; i < rank; i++) mask[i] = 1;
        return rank;
    }
    for (int64_t i = 0; i < count; i++) mask[axes[i] < 0 ? axes[i] + rank : axes[i]] = 1;
    return (int)count;
}

/* dy reshaped to x's shape with reduced axes of extent 1 (keepdims form). */
gr_value *grad_keepdims(gr_grad_ctx *c, const gr_node *n, gr_value *dy, gr_status *st) {
    int mask[GR_MAX_RANK];
    if (reduced_axes(n, mask) < 0) {
        gr_fail(st, GR_ERR_UNSUPPORTED, "reduction axes must be constant to differentiate");
        return NULL;
    }
    gr_shape s = n->inputs[0]->shape;
    for (int i = 0; i < s.rank; i++)
        if (mask[i]) {
            s.dims[i] = 1;
            s.syms[i] = NULL;
        }
    return grad_reshape(c, dy, &s, st);
}

gr_code gr_grad_reduce_sum(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                           gr_value **dx, gr_status *st) {
    if (gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = grad_expand(c, grad_keepdims(c, n, dy[0], st), n->inputs[0], st), st);
    return GR_OK;
}
