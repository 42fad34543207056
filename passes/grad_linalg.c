/* grad_linalg.c: gradient rules of MatMul, Gemm, Conv and ConvTranspose
 * (passes/grad.h). Products differentiate into products with one operand
 * transposed; a convolution's input gradient is the transposed convolution
 * (and the other way round), its weight gradient is ConvGradWeight. Window
 * attributes are passed on with auto_pad resolved to explicit pads. */
#include <string.h>

#include "passes/grad.h"

/* Sets an attribute on a node grad_node just built; NOMEM on failure. */
#define SET_ATTR(call, st)                                                     \
    do {                                                                       \
        if ((call) != GR_OK) {                                                 \
            gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");     \
            return NULL;                                                       \
        }                                                                      \
    } while (0)

/* x with its last two axes swapped (rank >= 2). */
static gr_value *swap_last(gr_grad_ctx *c, gr_value *x, gr_status *st) {
    if (!x) return NULL;
    int r = x->shape.rank;
    int64_t perm[GR_MAX_RANK];
    for (int i = 0; i < r; i++) perm[i] = i;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return grad_transpose(c, x, perm, st);
}

/* x with a 1 inserted before axis at (numpy matmul's promoted 1-D operand). */
static gr_value *insert_one(gr_grad_ctx *c, gr_value *x, int at, gr_status *st) {
    if (!x) return NULL;
    gr_shape s = x->shape;
    for (int i = s.rank; i > at; i--) {
        s.dims[i] = s.dims[i - 1];
        s.syms[i] = s.syms[i - 1];
    }
    s.dims[at] = 1;
    s.syms[at] = NULL;
    s.rank++;
    return grad_reshape(c, x, &s, st);
}

/* Y = A @ B, numpy semantics. With A' = A as [..,M,K] (1-D: [1,K]) and B'
 * = B as [..,K,N] (1-D: [K,1]) and dY' = dY as [batch..,M,N]:
 * dA' = dY' @ B'^T, dB' = A'^T @ dY', each summed over the batch axes its
 * operand was broadcast along, then reshaped back to the operand. */
gr_code gr_grad_matmul(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                       gr_status *st) {
    gr_value *a = n->inputs[0], *b = n->inputs[1];
    int ra = a->shape.rank, rb = b->shape.rank;
    gr_value *a2 = ra == 1 ? insert_one(c, a, 0, st) : a;
    gr_value *b2 = rb == 1 ? insert_one(c, b, 1, st) : b;
    gr_value *d = dy[0];
    if (rb == 1) d = insert_one(c, d, d ? d->shape.rank : 0, st);
    if (ra == 1) d = insert_one(c, d, d ? d->shape.rank - 1 : 0, st);
    if (gr_grad_needed(c, n, 0)) {
        gr_value *g = grad_binary(c, GR_OP_MATMUL, d, swap_last(c, b2, st), st);
        GRAD_TRY(dx[0] = grad_reshape(c, grad_unbroadcast(c, g, a2, st), &a->shape, st), st);
    }
    if (gr_grad_needed(c, n, 1)) {
        gr_value *g = grad_binary(c, GR_OP_MATMUL, swap_last(c, a2, st), d, st);
        GRAD_TRY(dx[1] = grad_reshape(c, grad_unbroadcast(c, g, b2, st), &b->shape, st), st);
    }
    return GR_OK;
}

/* alpha * op(a) op(b) with op = transpose when the flag is set. */
static gr_value *gemm(gr_grad_ctx *c, gr_value *a, int trans_a, gr_value *b, int trans_b,
                      double alpha, gr_status *st) {
    if (!a || !b) return NULL;
    gr_value *in[2] = {a, b};
    gr_node *m = grad_node(c, GR_OP_GEMM, 2, in, 1, st);
    if (!m) return NULL;
    if (trans_a) SET_ATTR(gr_node_set_int(gr_grad_graph(c), m, "transA", 1), st);
    if (trans_b) SET_ATTR(gr_node_set_int(gr_grad_graph(c), m, "transB", 1), st);
    if (alpha != 1.0) SET_ATTR(gr_node_set_float(gr_grad_graph(c), m, "alpha", alpha), st);
    return grad_infer(c, m, st);
}

/* Y = alpha op(A) op(B) + beta C, op(A):[M,K] op(B):[K,N].
 * d op(A) = alpha dY op(B)^T and d op(B) = alpha op(A)^T dY; when A (B) is
 * stored transposed its gradient is the transpose of that, which swaps the
 * operands. Every case is one Gemm with the right flags. */
gr_code gr_grad_gemm(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    gr_value *a = n->inputs[0], *b = n->inputs[1];
    int ta = gr_node_int(n, "transA", 0) != 0, tb = gr_node_int(n, "transB", 0) != 0;
    double alpha = gr_node_float(n, "alpha", 1.0), beta = gr_node_float(n, "beta", 1.0);
    if (gr_grad_needed(c, n, 0)) {
        if (!ta) /* dA = alpha dY op(B)^T */
            GRAD_TRY(dx[0] = gemm(c, dy[0], 0, b, !tb, alpha, st), st);
        else /* dA = alpha op(B) dY^T */
            GRAD_TRY(dx[0] = gemm(c, b, tb, dy[0], 1, alpha, st), st);
    }
    if (gr_grad_needed(c, n, 1)) {
        if (!tb) /* dB = alpha op(A)^T dY */
            GRAD_TRY(dx[1] = gemm(c, a, !ta, dy[0], 0, alpha, st), st);
        else /* dB = alpha dY^T op(A) */
            GRAD_TRY(dx[1] = gemm(c, dy[0], 1, a, ta, alpha, st), st);
    }
    if (gr_grad_needed(c, n, 2)) {
        gr_value *d = dy[0];
        if (beta != 1.0)
            d = grad_binary(c, GR_OP_MUL, d, grad_scalar(c, d->dtype, beta, st), st);
        GRAD_TRY(dx[2] = grad_unbroadcast(c, d, n->inputs[2], st), st);
    }
    return GR_OK;
}

/* ------------------------------------------------------------ convolution */

/* Copies the window attributes onto m (a Conv, ConvTranspose or
 * ConvGradWeight built by the rule). */
static gr_code grad_window_set(gr_grad_ctx *c, gr_node *m, const grad_window *a, int kernel,
                              gr_status *st) {
    gr_graph *g = gr_grad_graph(c);
    if (gr_node_set_ints(g, m, "strides", a->ns, a->strides) != GR_OK ||
        gr_node_set_ints(g, m, "dilations", a->ns, a->dilations) != GR_OK ||
        gr_node_set_ints(g, m, "pads", 2 * a->ns, a->pads) != GR_OK ||
        gr_node_set_int(g, m, "group", a->group) != GR_OK ||
        (kernel && gr_node_set_ints(g, m, "kernel_shape", a->ns, a->kernel) != GR_OK))
        return gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
    return GR_OK;
}

/* op(x, w) with attributes a (and output_padding out_pad when not NULL). */
static gr_value *conv_node(gr_grad_ctx *c, gr_op op, gr_value *x, gr_value *w,
                           const grad_window *a, const int64_t *out_pad, gr_status *st) {
    if (!x || !w) return NULL;
    gr_value *in[2] = {x, w};
    gr_node *m = grad_node(c, op, 2, in, 1, st);
    if (!m || grad_window_set(c, m, a, op == GR_OP_CONV_GRAD_WEIGHT, st) != GR_OK) return NULL;
    if (out_pad)
        SET_ATTR(gr_node_set_ints(gr_grad_graph(c), m, "output_padding", a->ns, out_pad), st);
    return grad_infer(c, m, st);
}

/* Fails unless built has want's shape (the window arithmetic did not map). */
static gr_value *check_shape(const gr_node *n, gr_value *built, const gr_value *want,
                             const char *what, gr_status *st) {
    if (!built || gr_shape_equal(&built->shape, &want->shape)) return built;
    char a[128], b[128];
    gr_fail(st, GR_ERR_UNSUPPORTED, "%s of %s comes out %s, not %s; not differentiated", what,
            n->op_type, gr_shape_str(&built->shape, a, sizeof a),
            gr_shape_str(&want->shape, b, sizeof b));
    return NULL;
}

/* dB of a convolution: dY summed over every axis but the channels. */
static gr_value *bias_grad(gr_grad_ctx *c, gr_value *d, gr_status *st) {
    int64_t axes[GR_MAX_RANK];
    int k = 0;
    for (int i = 0; i < d->shape.rank; i++)
        if (i != 1) axes[k++] = i;
    return grad_reduce_sum(c, d, k, axes, 0, st);
}

/* Y = Conv(X, W) + B. X:[N,C,D..] W:[M,C/g,k..] dY:[N,M,O..].
 * dX = ConvTranspose(dY, W) with Conv's window, output_padding making it
 * exactly D; dW = ConvGradWeight(X, dY); dB = sum of dY over N and O. */
gr_code gr_grad_conv(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    gr_value *x = n->inputs[0], *w = n->inputs[1];
    grad_window a;
    GR_TRY(grad_window_read(n, 0, &x->shape, &dy[0]->shape, &w->shape, &a, st));
    if (gr_grad_needed(c, n, 0)) {
        int64_t out_pad[GR_MAX_RANK];
        for (int i = 0; i < a.ns; i++) {
            int64_t dk = (a.kernel[i] - 1) * a.dilations[i] + 1;
            out_pad[i] = x->shape.dims[2 + i] - (a.strides[i] * (dy[0]->shape.dims[2 + i] - 1) +
                                                 dk - a.pads[i] - a.pads[i + a.ns]);
            if (out_pad[i] < 0)
                return gr_fail(st, GR_ERR_INTERNAL, "spatial dim %d: output_padding %lld < 0",
                               i, (long long)out_pad[i]);
        }
        GRAD_TRY(dx[0] = check_shape(n, conv_node(c, GR_OP_CONV_TRANSPOSE, dy[0], w, &a,
                                                  out_pad, st), x, "dX", st), st);
    }
    if (gr_grad_needed(c, n, 1))
        GRAD_TRY(dx[1] = check_shape(n, conv_node(c, GR_OP_CONV_GRAD_WEIGHT, x, dy[0], &a,
                                                  NULL, st), w, "dW", st), st);
    if (gr_grad_needed(c, n, 2)) GRAD_TRY(dx[2] = bias_grad(c, dy[0], st), st);
    return GR_OK;
}

/* Y = ConvTranspose(X, W) + B. X:[N,C,D..] W:[C,M/g,k..] dY:[N,M,O..].
 * ConvTranspose is the adjoint of Conv(., W) taking [N,M,O..] to [N,C,D..]
 * with the same window, so dX = Conv(dY, W) and dW = ConvGradWeight(dY, X)
 * (input and output gradient roles swapped: the result is [C,M/g,k..]). */
gr_code gr_grad_conv_transpose(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                               gr_value **dx, gr_status *st) {
    gr_value *x = n->inputs[0], *w = n->inputs[1];
    grad_window a;
    GR_TRY(grad_window_read(n, 1, &dy[0]->shape, &x->shape, &w->shape, &a, st));
    if (gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = check_shape(n, conv_node(c, GR_OP_CONV, dy[0], w, &a, NULL, st), x,
                                     "dX", st), st);
    if (gr_grad_needed(c, n, 1))
        GRAD_TRY(dx[1] = check_shape(n, conv_node(c, GR_OP_CONV_GRAD_WEIGHT, dy[0], x, &a,
                                                  NULL, st), w, "dW", st), st);
    if (gr_grad_needed(c, n, 2)) GRAD_TRY(dx[2] = bias_grad(c, dy[0], st), st);
    return GR_OK;
}
