/* elementwise.h: the elementwise family's two halves, kept apart so that a
 * fusion pass can chain nodes in one loop:
 *   - cg_ew_apply: the expression of one node on register values;
 *   - cg_ew_loop: a loop nest over an output shape that loads broadcast
 *     operands (numpy rules) and hands their registers to a callback.
 *
 * Usage (what cg_emit_elementwise does for one node):
 *     GR_TRY(cg_ew_check(n, st));
 *     GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
 *     GR_TRY(cg_ew_loop(k, &n->outputs[0]->shape, n->n_inputs, n->inputs,
 *                       store_one, &ctx, st));   // store_one calls cg_ew_apply
 *     return cg_kernel_end(k, st);
 *
 * Integer Div and Mod by zero give 0 (no trap); INT_MIN / -1 wraps. */
#ifndef GR_CG_ELEMENTWISE_H
#define GR_CG_ELEMENTWISE_H

#include "codegen/cg_internal.h"

/* GR_OK if cg_ew_apply can compile n (op, dtypes, attributes); otherwise
 * GR_ERR_UNSUPPORTED (or BAD_MODEL) with a message. */
gr_code cg_ew_check(const gr_node *n, gr_status *st);

/* The value of n's (first) output for one element: operands[i] is input i
 * loaded as its register type (NULL for an omitted optional input); the
 * result has the register type of n->outputs[0]->dtype. Constant inputs
 * (Clip bounds, a scalar Pow exponent) are specialised from their data.
 * Requires cg_ew_check(n) == GR_OK. */
LLVMValueRef cg_ew_apply(cg_kernel *k, const gr_node *n, LLVMValueRef *operands);

/* Whether cg_ew_apply reads input i of n (0 for CastLike's 'like', whose
 * shape need not broadcast to the output): pass only those to cg_ew_loop,
 * as operand NULL otherwise. */
int cg_ew_reads_input(const gr_node *n, int i);

/* Whether n's expression costs more than its memory traffic (exp, tanh,
 * erf...): such kernels may ask for wide vectors (k->wide). */
int cg_ew_compute_bound(gr_op op);

/* Element strides s[0..out->rank) of operand v in out's index space: v's
 * own stride along dims where it has out's extent, 0 where it broadcasts
 * (numpy rules). GR_ERR_BAD_MODEL if v does not broadcast to out. */
gr_code cg_ew_operand_strides(const gr_shape *out, const gr_value *v, int64_t *s,
                              gr_status *st);

/* Called once per output element: regs[i] is operand i at that element
 * (NULL for NULL operands); index is the element's flat (row-major) index
 * in the output shape. */
typedef void (*cg_ew_body_fn)(cg_kernel *k, void *ctx, LLVMValueRef *regs, LLVMValueRef index);

/* Emits the loops over out (static shape) into k and sets k->n_tasks
 * (chunks of rows, or of the flat range). Operands broadcast to out numpy
 * style; they must be arguments of k. At most CG_MAX_ARGS operands. */
gr_code cg_ew_loop(cg_kernel *k, const gr_shape *out, int n_operands,
                   gr_value *const *operands, cg_ew_body_fn body, void *ctx,
                   gr_status *st);

#endif /* GR_CG_ELEMENTWISE_H */
