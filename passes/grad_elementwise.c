/* grad_elementwise.c: gradient rules of elementwise and broadcasting ops
 * (passes/grad.h). Binary ops sum their gradients back over the axes that
 * broadcasting added (grad_unbroadcast). Each rule is a chain of
 * elementwise nodes (Mul, Where, Greater, ...) that the fuse pass compiles
 * into one kernel; rules reuse the forward output where that is cheaper
 * (sigmoid: y (1 - y)). Kinks follow PyTorch (ReLU: x > 0). */
#include <string.h>

#include "passes/grad.h"

/* y = a + b, y = a - b */
static gr_code add_sub(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                       int sign, gr_status *st) {
    if (gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = grad_unbroadcast(c, dy[0], n->inputs[0], st), st);
    if (gr_grad_needed(c, n, 1)) {
        gr_value *d = sign > 0 ? dy[0] : grad_unary(c, GR_OP_NEG, dy[0], st);
        GRAD_TRY(dx[1] = grad_unbroadcast(c, d, n->inputs[1], st), st);
    }
    return GR_OK;
}

gr_code gr_grad_add(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    return add_sub(c, n, dy, dx, 1, st);
}

gr_code gr_grad_sub(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    return add_sub(c, n, dy, dx, -1, st);
}

/* y = a * b: da = dy * b, db = dy * a */
gr_code gr_grad_mul(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    for (int i = 0; i < 2; i++)
        if (gr_grad_needed(c, n, i))
            GRAD_TRY(dx[i] = grad_unbroadcast(
                         c, grad_binary(c, GR_OP_MUL, dy[0], n->inputs[1 - i], st),
                         n->inputs[i], st), st);
    return GR_OK;
}

/* --- helpers: the nodes most rules combine --- */

static gr_value *mul(gr_grad_ctx *c, gr_value *a, gr_value *b, gr_status *st) {
    return grad_binary(c, GR_OP_MUL, a, b, st);
}

/* A scalar constant of like's dtype (broadcasts against anything). */
static gr_value *num(gr_grad_ctx *c, const gr_value *like, double v, gr_status *st) {
    return like ? grad_scalar(c, like->dtype, v, st) : NULL;
}

/* dy * v for a scalar v */
static gr_value *scale(gr_grad_ctx *c, gr_value *x, double v, gr_status *st) {
    return mul(c, x, num(c, x, v, st), st);
}

static gr_value *where(gr_grad_ctx *c, gr_value *cond, gr_value *a, gr_value *b,
                       gr_status *st) {
    if (!cond || !a || !b) return NULL;
    gr_value *in[3] = {cond, a, b};
    return grad_op(c, GR_OP_WHERE, 3, in, st);
}

/* x compared with the scalar v (op: Greater, Less, ...) -> bool */
static gr_value *cmp_num(gr_grad_ctx *c, gr_op op, gr_value *x, double v, gr_status *st) {
    return grad_binary(c, op, x, num(c, x, v, st), st);
}

/* Cast x to dtype. */
static gr_value *cast_to(gr_grad_ctx *c, gr_value *x, gr_dtype dtype, gr_status *st) {
    if (!x) return NULL;
    if (x->dtype == dtype) return x;
    gr_node *n = grad_node(c, GR_OP_CAST, 1, &x, 1, st);
    if (!n || gr_node_set_int(gr_grad_graph(c), n, "to", dtype) != GR_OK) {
        if (n) gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
        return NULL;
    }
    return grad_infer(c, n, st);
}

/* A unary op's dx[0] = dy * d, d built by the caller (NULL: failed). */
static gr_code chain(gr_value *d, gr_value **dx, gr_status *st) {
    GRAD_TRY(dx[0] = d, st);
    return GR_OK;
}

#define NEEDS_X0                                                               \
    do {                                                                       \
        if (!gr_grad_needed(c, n, 0)) return GR_OK;                            \
    } while (0)

/* --- binary --- */

/* y = a / b: da = dy / b, db = -dy * y / b */
gr_code gr_grad_div(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    gr_value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
    gr_value *q = grad_binary(c, GR_OP_DIV, dy[0], b, st);
    if (gr_grad_needed(c, n, 0)) GRAD_TRY(dx[0] = grad_unbroadcast(c, q, a, st), st);
    if (gr_grad_needed(c, n, 1))
        GRAD_TRY(dx[1] = grad_unbroadcast(c, grad_unary(c, GR_OP_NEG, mul(c, q, y, st), st),
                                          b, st), st);
    return GR_OK;
}

/* y = a ^ b: da = dy * b * a^(b-1), db = dy * y * log(a) (a > 0). An
 * integer exponent is cast to a's dtype first. */
gr_code gr_grad_pow(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    gr_value *a = n->inputs[0], *y = n->outputs[0];
    if (gr_grad_needed(c, n, 0)) {
        gr_value *b = cast_to(c, n->inputs[1], a->dtype, st);
        gr_value *bm1 = grad_binary(c, GR_OP_SUB, b, num(c, a, 1, st), st);
        gr_value *d = mul(c, mul(c, dy[0], b, st), grad_binary(c, GR_OP_POW, a, bm1, st), st);
        GRAD_TRY(dx[0] = grad_unbroadcast(c, d, a, st), st);
    }
    if (gr_grad_needed(c, n, 1)) {
        gr_value *d = mul(c, mul(c, dy[0], y, st), grad_unary(c, GR_OP_LOG, a, st), st);
        GRAD_TRY(dx[1] = grad_unbroadcast(c, d, n->inputs[1], st), st);
    }
    return GR_OK;
}

/* y = x < 0 ? slope * x : x (slope broadcasts to x):
 * dx = x < 0 ? dy * slope : dy, dslope = x < 0 ? dy * x : 0 */
gr_code gr_grad_prelu(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                      gr_status *st) {
    gr_value *x = n->inputs[0], *slope = n->inputs[1];
    gr_value *neg = cmp_num(c, GR_OP_LESS, x, 0, st);
    if (gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = grad_unbroadcast(
                     c, where(c, neg, mul(c, dy[0], slope, st), dy[0], st), x, st), st);
    if (gr_grad_needed(c, n, 1))
        GRAD_TRY(dx[1] = grad_unbroadcast(
                     c, where(c, neg, mul(c, dy[0], x, st), num(c, x, 0, st), st), slope, st),
                 st);
    return GR_OK;
}

/* y = Where(cond, a, b): cond gets none, a and b get dy where chosen. */
gr_code gr_grad_where(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                      gr_status *st) {
    gr_value *cond = n->inputs[0], *zero = num(c, dy[0], 0, st);
    if (gr_grad_needed(c, n, 1))
        GRAD_TRY(dx[1] = grad_unbroadcast(c, where(c, cond, dy[0], zero, st), n->inputs[1], st),
                 st);
    if (gr_grad_needed(c, n, 2))
        GRAD_TRY(dx[2] = grad_unbroadcast(c, where(c, cond, zero, dy[0], st), n->inputs[2], st),
                 st);
    return GR_OK;
}

/* --- variadic: Max, Min, Sum, Mean --- */

/* y = Max(a_0, ..., a_k) (or Min): the gradient goes to the input equal
 * to y; on ties, all of it to the first such input (torch.maximum instead
 * splits a two-way tie in halves). mask_i = (a_i == y) and no earlier
 * input equals y. */
gr_code gr_grad_min_max(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                        gr_status *st) {
    gr_value *y = n->outputs[0], *taken = NULL, *zero = num(c, dy[0], 0, st);
    int last = -1;
    for (int i = 0; i < n->n_inputs; i++)
        if (gr_grad_needed(c, n, i)) last = i;
    for (int i = 0; i <= last; i++) {
        gr_value *eq = grad_binary(c, GR_OP_EQUAL, n->inputs[i], y, st);
        gr_value *mask = eq;
        if (taken) mask = grad_binary(c, GR_OP_AND, eq, grad_unary(c, GR_OP_NOT, taken, st), st);
        if (gr_grad_needed(c, n, i))
            GRAD_TRY(dx[i] = grad_unbroadcast(c, where(c, mask, dy[0], zero, st),
                                              n->inputs[i], st), st);
        if (i < last) taken = taken ? grad_binary(c, GR_OP_OR, taken, eq, st) : eq;
        GRAD_TRY(mask, st);
    }
    return GR_OK;
}

/* y = a_0 + ... + a_k (Sum) or that over k+1 (Mean) */
static gr_code sum_mean(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                        double factor, gr_status *st) {
    gr_value *d = factor == 1 ? dy[0] : scale(c, dy[0], factor, st);
    for (int i = 0; i < n->n_inputs; i++)
        if (gr_grad_needed(c, n, i)) GRAD_TRY(dx[i] = grad_unbroadcast(c, d, n->inputs[i], st), st);
    return GR_OK;
}

gr_code gr_grad_sum(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    return sum_mean(c, n, dy, dx, 1, st);
}

gr_code gr_grad_mean(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    return sum_mean(c, n, dy, dx, 1.0 / n->n_inputs, st);
}

/* --- unary arithmetic --- */

gr_code gr_grad_neg(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    NEEDS_X0;
    return chain(grad_unary(c, GR_OP_NEG, dy[0], st), dx, st);
}

/* d|x| = sign(x) */
gr_code gr_grad_abs(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    NEEDS_X0;
    return chain(mul(c, dy[0], grad_unary(c, GR_OP_SIGN, n->inputs[0], st), st), dx, st);
}

/* d sqrt(x) = 0.5 / y */
gr_code gr_grad_sqrt(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    NEEDS_X0;
    return chain(grad_binary(c, GR_OP_DIV, scale(c, dy[0], 0.5, st), n->outputs[0], st),
                 dx, st);
}

/* d (1/x) = -y * y */
gr_code gr_grad_reciprocal(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                           gr_value **dx, gr_status *st) {
    NEEDS_X0;
    gr_value *y = n->outputs[0];
    return chain(grad_unary(c, GR_OP_NEG, mul(c, mul(c, dy[0], y, st), y, st), st), dx,
                 st);
}

/* d exp(x) = y */
gr_code gr_grad_exp(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    NEEDS_X0;
    return chain(mul(c, dy[0], n->outputs[0], st), dx, st);
}

/* d log(x) = 1 / x */
gr_code gr_grad_log(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    NEEDS_X0;
    return chain(grad_binary(c, GR_OP_DIV, dy[0], n->inputs[0], st), dx, st);
}

/* d erf(x) = 2/sqrt(pi) exp(-x^2) */
gr_code gr_grad_erf(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    NEEDS_X0;
    gr_value *x = n->inputs[0];
    gr_value *e = grad_unary(c, GR_OP_EXP, grad_unary(c, GR_OP_NEG, mul(c, x, x, st), st), st);
    return chain(mul(c, scale(c, dy[0], 1.12837916709551257390, st), e, st), dx, st);
}

/* Floor, Ceil, Round, Sign: zero almost everywhere (dx stays NULL). */
gr_code gr_grad_zero(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    (void)c; (void)n; (void)dy; (void)dx; (void)st;
    return GR_OK;
}

/* Identity, and Dropout in inference mode (training_mode absent or a
 * constant false): y = x. Training-mode Dropout is rewritten into a mask
 * by the training passes before autodiff runs. */
gr_code gr_grad_identity(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                         gr_status *st) {
    NEEDS_X0;
    return chain(dy[0], dx, st);
}

gr_code gr_grad_dropout(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                        gr_status *st) {
    if (!dy[0]) return GR_OK; /* only the mask output was used */
    const gr_value *mode = n->n_inputs > 2 ? n->inputs[2] : NULL;
    int64_t training = 0;
    if (mode && (gr_value_const_ints(mode, &training, 1) != 1 || training))
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "Dropout in training mode has no gradient rule (the training passes "
                       "replace it by a mask first)");
    return gr_grad_identity(c, n, dy, dx, st);
}

/* float -> float: dy cast back to x's dtype; to or from an integer type
 * no gradient flows. */
gr_code gr_grad_cast(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    NEEDS_X0;
    gr_value *x = n->inputs[0];
    if (!gr_dtype_is_float(x->dtype) || !gr_dtype_is_float(n->outputs[0]->dtype)) return GR_OK;
    return chain(cast_to(c, dy[0], x->dtype, st), dx, st);
}

/* y = clamp(x, min, max): dx = dy where min <= x <= max (PyTorch's rule);
 * a min (max) that needs a gradient gets dy summed where x < min (x > max). */
gr_code gr_grad_clip(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    gr_value *x = n->inputs[0], *zero = num(c, dy[0], 0, st), *pass = NULL;
    gr_value *lo = n->n_inputs > 1 ? n->inputs[1] : NULL;
    gr_value *hi = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (lo) pass = grad_binary(c, GR_OP_GREATER_OR_EQUAL, x, lo, st);
    if (hi) {
        gr_value *under = grad_binary(c, GR_OP_LESS_OR_EQUAL, x, hi, st);
        pass = pass ? grad_binary(c, GR_OP_AND, pass, under, st) : under;
    }
    if (gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = pass ? where(c, pass, dy[0], zero, st) : dy[0], st);
    for (int i = 1; i < 3; i++) {
        if (!gr_grad_needed(c, n, i)) continue;
        gr_value *out = grad_binary(c, i == 1 ? GR_OP_LESS : GR_OP_GREATER, x, n->inputs[i], st);
        GRAD_TRY(dx[i] = grad_unbroadcast(c, where(c, out, dy[0], zero, st), n->inputs[i], st),
                 st);
    }
    return GR_OK;
}

/* --- activations --- */

/* Where(x > 0, dy * pos, dy * neg); pos/neg NULL: dy itself. */
static gr_value *by_sign(gr_grad_ctx *c, gr_value *x, gr_value *pos, gr_value *neg,
                         gr_status *st) {
    return where(c, cmp_num(c, GR_OP_GREATER, x, 0, st), pos, neg, st);
}

gr_code gr_grad_relu(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    NEEDS_X0;
    return chain(by_sign(c, n->inputs[0], dy[0], num(c, dy[0], 0, st), st), dx, st);
}

gr_code gr_grad_leaky_relu(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                           gr_value **dx, gr_status *st) {
    NEEDS_X0;
    double alpha = gr_node_float(n, "alpha", 0.01);
    return chain(by_sign(c, n->inputs[0], dy[0], scale(c, dy[0], alpha, st), st), dx, st);
}

/* x <= 0: y = alpha (e^x - 1), dy/dx = alpha e^x = y + alpha */
gr_code gr_grad_elu(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    NEEDS_X0;
    gr_value *y = n->outputs[0];
    gr_value *neg = mul(c, dy[0], grad_binary(c, GR_OP_ADD, y,
                                              num(c, y, gr_node_float(n, "alpha", 1.0), st), st), st);
    return chain(by_sign(c, n->inputs[0], dy[0], neg, st), dx, st);
}

/* x > 0: gamma; x <= 0: y = gamma alpha (e^x - 1), dy/dx = y + gamma alpha */
gr_code gr_grad_selu(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    NEEDS_X0;
    gr_value *y = n->outputs[0];
    double alpha = gr_node_float(n, "alpha", 1.67326319217681884765625);
    double gamma = gr_node_float(n, "gamma", 1.05070102214813232421875);
    gr_value *neg = mul(c, dy[0], grad_binary(c, GR_OP_ADD, y, num(c, y, alpha * gamma, st), st), st);
    return chain(by_sign(c, n->inputs[0], scale(c, dy[0], gamma, st), neg, st), dx, st);
}

/* dy * y * (1 - y) */
gr_code gr_grad_sigmoid(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                        gr_status *st) {
    NEEDS_X0;
    gr_value *y = n->outputs[0];
    gr_value *one_minus = grad_binary(c, GR_OP_SUB, num(c, y, 1, st), y, st);
    return chain(mul(c, mul(c, dy[0], y, st), one_minus, st), dx, st);
}

/* y = clamp(alpha x + beta, 0, 1): alpha where 0 < y < 1 */
gr_code gr_grad_hard_sigmoid(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                             gr_value **dx, gr_status *st) {
    NEEDS_X0;
    gr_value *y = n->outputs[0];
    gr_value *inside = grad_binary(c, GR_OP_AND, cmp_num(c, GR_OP_GREATER, y, 0, st),
                                   cmp_num(c, GR_OP_LESS, y, 1, st), st);
    double alpha = gr_node_float(n, "alpha", 0.2);
    return chain(where(c, inside, scale(c, dy[0], alpha, st), num(c, y, 0, st), st), dx,
                 st);
}

/* y = x * clamp(x/6 + 1/2, 0, 1): 0 below -3, 1 above 3, x/3 + 1/2 between
 * (PyTorch's hardswish_backward). */
gr_code gr_grad_hard_swish(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                           gr_value **dx, gr_status *st) {
    NEEDS_X0;
    gr_value *x = n->inputs[0];
    gr_value *mid = grad_binary(c, GR_OP_ADD, scale(c, x, 1.0 / 3, st), num(c, x, 0.5, st), st);
    gr_value *upper = where(c, cmp_num(c, GR_OP_GREATER, x, 3, st), dy[0],
                            mul(c, dy[0], mid, st), st);
    return chain(where(c, cmp_num(c, GR_OP_LESS, x, -3, st), num(c, x, 0, st), upper, st),
                 dx, st);
}

/* dy * (1 - y^2) */
gr_code gr_grad_tanh(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    NEEDS_X0;
    gr_value *y = n->outputs[0];
    gr_value *d = grad_binary(c, GR_OP_SUB, num(c, y, 1, st), mul(c, y, y, st), st);
    return chain(mul(c, dy[0], d, st), dx, st);
}

/* d log(1 + e^x) = sigmoid(x) */
gr_code gr_grad_softplus(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                         gr_status *st) {
    NEEDS_X0;
    return chain(mul(c, dy[0], grad_unary(c, GR_OP_SIGMOID, n->inputs[0], st), st), dx, st);
}

/* d x/(1+|x|) = 1/(1+|x|)^2 */
gr_code gr_grad_softsign(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                         gr_status *st) {
    NEEDS_X0;
    gr_value *x = n->inputs[0];
    gr_value *t = grad_binary(c, GR_OP_ADD, grad_unary(c, GR_OP_ABS, x, st), num(c, x, 1, st), st);
    return chain(grad_binary(c, GR_OP_DIV, dy[0], mul(c, t, t, st), st), dx, st);
}

/* none: Phi(x) + x phi(x) = 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2)/sqrt(2pi)
 * tanh: t = tanh(k (x + 0.044715 x^3)), k = sqrt(2/pi):
 *       0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 * 0.044715 x^2) */
gr_code gr_grad_gelu(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    NEEDS_X0;
    gr_value *x = n->inputs[0], *x2 = mul(c, x, x, st), *d;
    if (strcmp(gr_node_string(n, "approximate", "none"), "tanh") == 0) {
        const double k = 0.79788456080286535588, b = 0.044715;
        gr_value *u = mul(c, scale(c, x, k, st),
                          grad_binary(c, GR_OP_ADD, num(c, x, 1, st), scale(c, x2, b, st), st), st);
        gr_value *t = grad_unary(c, GR_OP_TANH, u, st);
        gr_value *left = scale(c, grad_binary(c, GR_OP_ADD, num(c, x, 1, st), t, st), 0.5, st);
        gr_value *sech2 = grad_binary(c, GR_OP_SUB, num(c, x, 1, st), mul(c, t, t, st), st);
        gr_value *du = grad_binary(c, GR_OP_ADD, num(c, x, k, st), scale(c, x2, 3 * b * k, st), st);
        d = grad_binary(c, GR_OP_ADD, left,
                        mul(c, scale(c, x, 0.5, st), mul(c, sech2, du, st), st), st);
    } else {
        gr_value *cdf = scale(c, grad_binary(c, GR_OP_ADD, num(c, x, 1, st),
                                             grad_unary(c, GR_OP_ERF,
                                                        scale(c, x, 0.70710678118654752440, st),
                                                        st), st), 0.5, st);
        gr_value *pdf = scale(c, grad_unary(c, GR_OP_EXP, scale(c, x2, -0.5, st), st),
                              0.39894228040143267794, st);
        d = grad_binary(c, GR_OP_ADD, cdf, mul(c, x, pdf, st), st);
    }
    return chain(mul(c, dy[0], d, st), dx, st);
}
