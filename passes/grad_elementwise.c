/* grad_elementwise.c: gradient rules of elementwise and broadcasting ops
 * (passes/grad.h). Binary ops sum their gradients back over the axes that
 * broadcasting added (grad_unbroadcast). */
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
