/* grad.h: gradient rules and the builders they use (passes/ only).
 *
 * Every differentiable op names its rule in ir/ops.def (GRAD(ID, rule) ->
 * gr_grad_<rule>). autodiff.c visits the nodes between the trainable
 * parameters and the loss in reverse order and calls each node's rule with
 * the gradients of its outputs; the rule adds backward nodes through the
 * builders below and returns the gradients of its inputs.
 *
 * A rule:
 *     gr_code gr_grad_mul(gr_grad_ctx *c, const gr_node *n,
 *                         gr_value *const *dy, gr_value **dx, gr_status *st) {
 *         // y = a * b: da = dy * b, db = dy * a, each summed back over the
 *         // axes broadcasting added.
 *         if (gr_grad_needed(c, n, 0))
 *             GRAD_TRY(dx[0] = grad_unbroadcast(c, grad_binary(c, GR_OP_MUL, dy[0],
 *                                   n->inputs[1], st), n->inputs[0], st), st);
 *         ...
 *     }
 * dy[j] is the gradient of output j, or NULL when no path from that output
 * reaches the loss (treat as zero). A rule sets dx[i] only for inputs with
 * gr_grad_needed(c, n, i); dx[i] must have input i's dtype and shape. A
 * NULL dx[i] means zero (e.g. Floor). Builders return NULL with st set on
 * failure (and accept NULL operands, returning NULL at once, so chains need
 * one check at the end). Every builder runs the new node's shape rule, so
 * rules can read the shapes of what they built; all shapes are static.
 */
#ifndef GR_PASSES_GRAD_H
#define GR_PASSES_GRAD_H

#include "passes/gr_passes.h"

typedef struct gr_grad_ctx gr_grad_ctx;

typedef gr_code (*gr_grad_fn)(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                              gr_value **dx, gr_status *st);

#define GRAD(op, rule)                                                         \
    gr_code gr_grad_##rule(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, \
                           gr_value **dx, gr_status *st);
#include "ir/ops.def"

/* Assigns v (a builder's result) and returns st->code from the enclosing
 * rule if it is NULL. */
#define GRAD_TRY(assign, st)                                                   \
    do {                                                                       \
        if (!(assign)) return (st)->code ? (st)->code : GR_ERR_INTERNAL;       \
    } while (0)

/* 1 if input i of n needs a gradient (it depends on a trainable parameter). */
int gr_grad_needed(const gr_grad_ctx *c, const gr_node *n, int input);
gr_graph *gr_grad_graph(gr_grad_ctx *c);

/* --- builders: one node each, shape inferred, output 0 returned --- */

/* A node of op on inputs (NULL entries: omitted optional inputs) with one
 * output; set attributes on the returned node's producer before anything
 * reads its shape, then call grad_infer. Most rules use the helpers below. */
gr_node *grad_node(gr_grad_ctx *c, gr_op op, int n_inputs, gr_value *const *inputs,
                   int n_outputs, gr_status *st);
/* Re-runs n's shape rule (after setting attributes); returns output 0. */
gr_value *grad_infer(gr_grad_ctx *c, gr_node *n, gr_status *st);
gr_value *grad_op(gr_grad_ctx *c, gr_op op, int n_inputs, gr_value *const *inputs,
                  gr_status *st);
gr_value *grad_unary(gr_grad_ctx *c, gr_op op, gr_value *x, gr_status *st);
gr_value *grad_binary(gr_grad_ctx *c, gr_op op, gr_value *a, gr_value *b, gr_status *st);

/* Constants (CONST values, rank 0 or 1). */
gr_value *grad_scalar(gr_grad_ctx *c, gr_dtype dtype, double v, gr_status *st);
gr_value *grad_ints(gr_grad_ctx *c, int n, const int64_t *v, gr_status *st);
/* A CONST of x's dtype and shape filled with v. */
gr_value *grad_fill_like(gr_grad_ctx *c, const gr_value *x, double v, gr_status *st);

/* Shapes. */
gr_value *grad_reshape(gr_grad_ctx *c, gr_value *x, const gr_shape *to, gr_status *st);
gr_value *grad_transpose(gr_grad_ctx *c, gr_value *x, const int64_t *perm, gr_status *st);
/* ReduceSum over axes (sorted, non-negative) of x. */
gr_value *grad_reduce_sum(gr_grad_ctx *c, gr_value *x, int n_axes, const int64_t *axes,
                          int keepdims, gr_status *st);
/* Sums g (a gradient of a broadcast result) back to like's shape: over the
 * leading axes broadcasting added and the axes where like has extent 1. */
gr_value *grad_unbroadcast(gr_grad_ctx *c, gr_value *g, const gr_value *like, gr_status *st);
/* Reductions (grad_reduce.c): dy of reduction n reshaped to n's input
 * shape with the reduced axes kept as extent 1. */
gr_value *grad_keepdims(gr_grad_ctx *c, const gr_node *n, gr_value *dy, gr_status *st);
/* Broadcasts x to like's shape (Expand). */
gr_value *grad_expand(gr_grad_ctx *c, gr_value *x, const gr_value *like, gr_status *st);

/* Window attributes of a Conv, ConvTranspose or pooling node n with
 * auto_pad (and ConvTranspose's output_shape) resolved into explicit pads
 * from the shapes, the way codegen does (SAME_UPPER: floor(total / 2) at the
 * start). x: the forward input side [N,C,D..], y: the output side
 * [N,M,O..] (for ConvTranspose: its output and its input); w: the weight
 * (kernel extents from its dims 2..), or NULL for pools (kernel_shape). */
typedef struct {
    int ns;
    int64_t group;
    int64_t kernel[GR_MAX_RANK], strides[GR_MAX_RANK], dilations[GR_MAX_RANK];
    int64_t pads[2 * GR_MAX_RANK];
} grad_window;
gr_code grad_window_read(const gr_node *n, int transpose, const gr_shape *x, const gr_shape *y,
                         const gr_shape *w, grad_window *a, gr_status *st);

#endif /* GR_PASSES_GRAD_H */
