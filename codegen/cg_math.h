/* cg_math.h: transcendental functions emitted as plain LLVM IR (no libm
 * calls), so the loop vectoriser turns them into vector code at any width.
 * Every function takes and returns a scalar float or double register value
 * at the builder's position in k; f32 uses the polynomial code below
 * (accurate to a few ulp over the whole range, including overflow,
 * underflow to subnormals, +-inf and NaN); f64 calls LLVM intrinsics or libm
 * (scalar, correctly rounded enough for tests; not vectorised).
 *
 * Usage (inside a kernel body):
 *     LLVMValueRef y = cg_exp(k, x);            // x: float or double
 *     LLVMValueRef s = cg_sigmoid(k, cg_neg(k, y));
 */
#ifndef GR_CG_MATH_H
#define GR_CG_MATH_H

#include "codegen/cg_internal.h"

LLVMValueRef cg_exp(cg_kernel *k, LLVMValueRef x);     /* e^x (max err ~1 ulp) */
LLVMValueRef cg_expm1(cg_kernel *k, LLVMValueRef x);   /* e^x - 1, exact near 0 */
LLVMValueRef cg_log(cg_kernel *k, LLVMValueRef x);     /* ln x; <0 -> NaN, 0 -> -inf */
LLVMValueRef cg_log1p(cg_kernel *k, LLVMValueRef x);   /* ln(1 + x), exact near 0 */
LLVMValueRef cg_tanh(cg_kernel *k, LLVMValueRef x);
LLVMValueRef cg_sigmoid(cg_kernel *k, LLVMValueRef x); /* 1/(1+e^-x), no overflow */
LLVMValueRef cg_erf(cg_kernel *k, LLVMValueRef x);     /* f32 max err ~6 ulp */
LLVMValueRef cg_softplus(cg_kernel *k, LLVMValueRef x);/* ln(1+e^x), stable */

/* Small helpers other emitters may find handy (float or double). */
LLVMValueRef cg_fconst(cg_kernel *k, LLVMValueRef like, double v); /* constant of like's type */
LLVMValueRef cg_fma(cg_kernel *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c); /* a*b+c */
LLVMValueRef cg_fabs(cg_kernel *k, LLVMValueRef x);
/* NaN-propagating max/min (numpy maximum/minimum semantics). */
LLVMValueRef cg_fmax(cg_kernel *k, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fmin(cg_kernel *k, LLVMValueRef a, LLVMValueRef b);

#endif /* GR_CG_MATH_H */
