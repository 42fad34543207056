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

static gr_value *where(gr_grad_ctx *c, gr_value *cond, gr_value *a, gr_value *b,
                             gr_status *st) {
    if (!cond || !a || !b) return NULL;
    gr_value *in[3] = {cond, a, b};
    return grad_op(c, GR_OP_WHERE, 3, in, st);
}

/* The count of input elements reduced into each output element. */
static int64_t reduced_count(const gr_node *n) {
    int mask[GR_MAX_RANK];
    int64_t count = 1;
    if (reduced_axes(n, mask) < 0) return 1; /* grad_keepdims reports it */
    for (int i = 0; i < n->inputs[0]->shape.rank; i++)
        if (mask[i]) count *= n->inputs[0]->shape.dims[i];
    return count;
}

/* y = mean over the axes: dy / count broadcast back */
gr_code gr_grad_reduce_mean(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                            gr_value **dx, gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *x = n->inputs[0];
    gr_value *d = grad_binary(c, GR_OP_MUL, grad_keepdims(c, n, dy[0], st),
                              grad_scalar(c, x->dtype, 1.0 / (double)reduced_count(n), st), st);
    GRAD_TRY(dx[0] = grad_expand(c, d, x, st), st);
    return GR_OK;
}

/* The input's gradient dy_k * f, with dy_k = dy in keepdims form and f an
 * elementwise factor of x's shape (broadcasting does the rest). */
static gr_code times_factor(gr_grad_ctx *c, const gr_node *n, gr_value *dy, gr_value *f,
                            gr_value **dx, gr_status *st) {
    gr_value *d = grad_binary(c, GR_OP_MUL, grad_keepdims(c, n, dy, st), f, st);
    GRAD_TRY(dx[0] = grad_expand(c, d, n->inputs[0], st), st);
    return GR_OK;
}

/* y in keepdims form */
static gr_value *y_keep(gr_grad_ctx *c, const gr_node *n, gr_status *st) {
    return grad_keepdims(c, n, n->outputs[0], st);
}

/* y = max (min) over the axes: the gradient goes to the positions equal to
 * y, split evenly among ties (as PyTorch's amax/amin):
 * dx = (x == y) ? dy / count(x == y) : 0 */
gr_code gr_grad_reduce_min_max(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                               gr_value **dx, gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *x = n->inputs[0];
    int mask[GR_MAX_RANK];
    int64_t axes[GR_MAX_RANK];
    int n_axes = 0;
    if (reduced_axes(n, mask) < 0)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "reduction axes must be constant to differentiate");
    for (int i = 0; i < x->shape.rank; i++)
        if (mask[i]) axes[n_axes++] = i;
    gr_value *hit = grad_binary(c, GR_OP_EQUAL, x, y_keep(c, n, st), st);
    gr_value *one = where(c, hit, grad_scalar(c, x->dtype, 1, st),
                                grad_scalar(c, x->dtype, 0, st), st);
    gr_value *count = grad_reduce_sum(c, one, n_axes, axes, 1, st);
    gr_value *share = grad_binary(c, GR_OP_DIV, grad_keepdims(c, n, dy[0], st), count, st);
    gr_value *d = where(c, hit, share, grad_scalar(c, x->dtype, 0, st), st);
    GRAD_TRY(dx[0] = grad_expand(c, d, x, st), st);
    return GR_OK;
}

/* y = sum |x|: dy * sign(x) */
gr_code gr_grad_reduce_l1(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                          gr_value **dx, gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    return times_factor(c, n, dy[0], grad_unary(c, GR_OP_SIGN, n->inputs[0], st), dx, st);
}

/* y = sqrt(sum x^2): dy * x / y */
gr_code gr_grad_reduce_l2(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                          gr_value **dx, gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *f = grad_binary(c, GR_OP_DIV, n->inputs[0], y_keep(c, n, st), st);
    return times_factor(c, n, dy[0], f, dx, st);
}

/* y = sum x^2: dy * 2x */
gr_code gr_grad_reduce_sum_square(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                                  gr_value **dx, gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *x = n->inputs[0];
    gr_value *f = grad_binary(c, GR_OP_MUL, x, grad_scalar(c, x->dtype, 2, st), st);
    return times_factor(c, n, dy[0], f, dx, st);
}

/* y = log sum e^x: dy * e^(x - y) (softmax over the axes) */
gr_code gr_grad_reduce_log_sum_exp(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                                   gr_value **dx, gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *f = grad_unary(c, GR_OP_EXP,
                             grad_binary(c, GR_OP_SUB, n->inputs[0], y_keep(c, n, st), st), st);
    return times_factor(c, n, dy[0], f, dx, st);
}

/* y = log sum x: dy / sum x = dy / e^y */
gr_code gr_grad_reduce_log_sum(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                               gr_value **dx, gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *d = grad_binary(c, GR_OP_DIV, grad_keepdims(c, n, dy[0], st),
                              grad_unary(c, GR_OP_EXP, y_keep(c, n, st), st), st);
    GRAD_TRY(dx[0] = grad_expand(c, d, n->inputs[0], st), st);
    return GR_OK;
}

/* y = prod x: dy * y / x (inputs nonzero; a zero gives Inf/NaN) */
gr_code gr_grad_reduce_prod(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                            gr_value **dx, gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *f = grad_binary(c, GR_OP_DIV, y_keep(c, n, st), n->inputs[0], st);
    return times_factor(c, n, dy[0], f, dx, st);
}
