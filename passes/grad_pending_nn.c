/* grad_pending_nn.c: linear algebra, convolution, normalisation, pooling
 * and softmax gradient rules not written yet report so (delete a line when
 * its rule lands). */
#include "passes/grad.h"

#define PENDING(rule)                                                          \
    gr_code gr_grad_##rule(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, \
                           gr_value **dx, gr_status *st) {                     \
        (void)c; (void)dy; (void)dx;                                           \
        return gr_fail(st, GR_ERR_UNSUPPORTED, "no gradient rule for %s yet", n->op_type); \
    }
PENDING(resize)
