/* elementwise_ops.c: cg_ew_apply, the per-element expression of every
 * elementwise op on register values (see elementwise.h), and cg_ew_check.
 * Floats compute in their register type (f16/bf16 in float); integer
 * division and remainder by zero give 0 instead of trapping. */
#include <math.h>
#include <string.h>

#include "codegen/cg_math.h"
#include "codegen/elementwise.h"

typedef struct {
    cg_kernel *k;
    LLVMBuilderRef b;
    const gr_node *n;
    gr_dtype dt;   /* dtype of input 0 */
    int fp, sgn;   /* float; signed integer */
} ew;

static LLVMValueRef fc(const ew *e, LLVMValueRef like, double v) {
    (void)e;
    return LLVMConstReal(LLVMTypeOf(like), v);
}

static LLVMValueRef ic(LLVMValueRef like, long long v) {
    return LLVMConstInt(LLVMTypeOf(like), (unsigned long long)v, 1);
}

static LLVMValueRef sel(const ew *e, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(e->b, c, a, b, "");
}

static LLVMValueRef intr1(const ew *e, const char *name, LLVMValueRef x) {
    return cg_intrinsic(e->k, name, NULL, 1, &x);
}

/* An attribute float as ONNX stores it (f32), in x's register type. */
static LLVMValueRef attr_f(const ew *e, LLVMValueRef x, const char *name, double dflt) {
    return fc(e, x, (double)(float)gr_node_float(e->n, name, dflt));
}

/* a <pred> b for float (ordered), signed or unsigned ints, and bool. */
static LLVMValueRef cmp(const ew *e, int lt_or_gt, int or_equal, LLVMValueRef a, LLVMValueRef b) {
    if (e->fp) {
        LLVMRealPredicate p = lt_or_gt < 0 ? (or_equal ? LLVMRealOLE : LLVMRealOLT)
                                           : (or_equal ? LLVMRealOGE : LLVMRealOGT);
        return LLVMBuildFCmp(e->b, p, a, b, "");
    }
    LLVMIntPredicate p;
    if (e->sgn) p = lt_or_gt < 0 ? (or_equal ? LLVMIntSLE : LLVMIntSLT)
                                 : (or_equal ? LLVMIntSGE : LLVMIntSGT);
    else p = lt_or_gt < 0 ? (or_equal ? LLVMIntULE : LLVMIntULT)
                          : (or_equal ? LLVMIntUGE : LLVMIntUGT);
    return LLVMBuildICmp(e->b, p, a, b, "");
}

static LLVMValueRef vmax(const ew *e, LLVMValueRef a, LLVMValueRef b) {
    return e->fp ? cg_fmax(e->k, a, b) : sel(e, cmp(e, 1, 0, a, b), a, b);
}

static LLVMValueRef vmin(const ew *e, LLVMValueRef a, LLVMValueRef b) {
    return e->fp ? cg_fmin(e->k, a, b) : sel(e, cmp(e, -1, 0, a, b), a, b);
}

/* Integer a / b or a % b; x / 0 = x % 0 = 0, INT_MIN / -1 wraps. */
static LLVMValueRef int_div(const ew *e, LLVMValueRef a, LLVMValueRef b, int rem) {
    LLVMValueRef zero = ic(b, 0), one = ic(b, 1);
    LLVMValueRef is0 = LLVMBuildICmp(e->b, LLVMIntEQ, b, zero, "");
    if (!e->sgn) {
        LLVMValueRef d = sel(e, is0, one, b);
        LLVMValueRef r = rem ? LLVMBuildURem(e->b, a, d, "") : LLVMBuildUDiv(e->b, a, d, "");
        return sel(e, is0, zero, r);
    }
    LLVMValueRef m1 = LLVMBuildICmp(e->b, LLVMIntEQ, b, ic(b, -1), "");
    LLVMValueRef d = sel(e, LLVMBuildOr(e->b, is0, m1, ""), one, b);
    LLVMValueRef r = rem ? LLVMBuildSRem(e->b, a, d, "") : LLVMBuildSDiv(e->b, a, d, "");
    r = sel(e, m1, rem ? zero : LLVMBuildSub(e->b, zero, a, ""), r);
    return sel(e, is0, zero, r);
}

/* Mod: fmod=1 takes the dividend's sign (C), fmod=0 the divisor's (Python). */
static LLVMValueRef mod(const ew *e, LLVMValueRef a, LLVMValueRef b) {
    int c_style = gr_node_int(e->n, "fmod", 0) != 0;
    if (e->fp) {
        LLVMValueRef r = LLVMBuildFRem(e->b, a, b, "");
        if (c_style) return r;
        LLVMValueRef zero = fc(e, r, 0);
        LLVMValueRef fix = LLVMBuildAnd(e->b, LLVMBuildFCmp(e->b, LLVMRealONE, r, zero, ""),
            LLVMBuildXor(e->b, LLVMBuildFCmp(e->b, LLVMRealOLT, r, zero, ""),
                         LLVMBuildFCmp(e->b, LLVMRealOLT, b, zero, ""), ""), "");
        return sel(e, fix, LLVMBuildFAdd(e->b, r, b, ""), r);
    }
    LLVMValueRef r = int_div(e, a, b, 1);
    if (c_style || !e->sgn) return r;
    LLVMValueRef zero = ic(r, 0);
    LLVMValueRef fix = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntNE, r, zero, ""),
        LLVMBuildICmp(e->b, LLVMIntSLT, LLVMBuildXor(e->b, r, b, ""), zero, ""), "");
    return sel(e, fix, LLVMBuildAdd(e->b, r, b, ""), r);
}

/* r * x^e for e >= 0 by square-and-multiply: a loop over e's bits (a small
 * loop inside the element loop; integer Pow is rare and this keeps the IR
 * small). */
static LLVMValueRef ipow_loop(const ew *e, LLVMValueRef x, LLVMValueRef y64) {
    LLVMBuilderRef b = e->b;
    LLVMTypeRef i64 = e->k->m->t_i64;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
    LLVMValueRef fn = LLVMGetBasicBlockParent(pre);
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->k->m->ctx, fn, "ipow");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->k->m->ctx, fn, "ipow.step");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->k->m->ctx, fn, "ipow.done");
    LLVMBuildBr(b, head);
    LLVMPositionBuilderAtEnd(b, head);
    LLVMValueRef r = LLVMBuildPhi(b, LLVMTypeOf(x), ""), base = LLVMBuildPhi(b, LLVMTypeOf(x), "");
    LLVMValueRef ex = LLVMBuildPhi(b, i64, "");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntNE, ex, LLVMConstInt(i64, 0, 0), ""), body, done);
    LLVMPositionBuilderAtEnd(b, body);
    LLVMValueRef bit = LLVMBuildTrunc(b, ex, e->k->m->t_i1, "");
    LLVMValueRef r2 = sel(e, bit, LLVMBuildMul(b, r, base, ""), r);
    LLVMValueRef base2 = LLVMBuildMul(b, base, base, "");
    LLVMValueRef ex2 = LLVMBuildLShr(b, ex, LLVMConstInt(i64, 1, 0), "");
    LLVMBuildBr(b, head);
    LLVMValueRef one = ic(x, 1);
    LLVMAddIncoming(r, (LLVMValueRef[]){one, r2}, (LLVMBasicBlockRef[]){pre, body}, 2);
    LLVMAddIncoming(base, (LLVMValueRef[]){x, base2}, (LLVMBasicBlockRef[]){pre, body}, 2);
    LLVMAddIncoming(ex, (LLVMValueRef[]){y64, ex2}, (LLVMBasicBlockRef[]){pre, body}, 2);
    LLVMPositionBuilderAtEnd(b, done);
    return r;
}

/* Integer base ^ integer exponent; y < 0 gives 1/x truncated: 1 for x = 1,
 * +-1 for x = -1, else 0. */
static LLVMValueRef ipow(const ew *e, LLVMValueRef x, LLVMValueRef y, gr_dtype ydt) {
    LLVMTypeRef i64 = e->k->m->t_i64;
    LLVMValueRef y64 = LLVMBuildIntCast2(e->b, y, i64, cg_dtype_signed(ydt), "");
    LLVMValueRef zero = LLVMConstInt(i64, 0, 0);
    LLVMValueRef neg = cg_dtype_signed(ydt) ? LLVMBuildICmp(e->b, LLVMIntSLT, y64, zero, "")
                                             : LLVMConstInt(e->k->m->t_i1, 0, 0);
    LLVMValueRef r = ipow_loop(e, x, sel(e, neg, zero, y64));
    LLVMValueRef odd = LLVMBuildTrunc(e->b, y64, e->k->m->t_i1, "");
    LLVMValueRef inv = sel(e, LLVMBuildICmp(e->b, LLVMIntEQ, x, ic(x, 1), ""), ic(x, 1), ic(x, 0));
    LLVMValueRef m1 = LLVMBuildICmp(e->b, LLVMIntEQ, x, ic(x, -1), "");
    inv = sel(e, m1, sel(e, odd, ic(x, -1), ic(x, 1)), inv);
    return sel(e, neg, inv, r);
}

/* x ^ c for a constant scalar exponent c with a cheap exact form, or NULL. */
static LLVMValueRef pow_const(const ew *e, LLVMValueRef x) {
    const gr_value *yv = e->n->inputs[1];
    if (!gr_value_is_constant(yv) || gr_value_numel(yv) != 1 || !yv->data) return NULL;
    double c = gr_dtype_load_f64(yv->dtype, yv->data, 0);
    if (c == 1) return x;
    if (c == 2) return LLVMBuildFMul(e->b, x, x, "");
    if (c == 3) return LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, x, x, ""), x, "");
    if (c == 0.5) return intr1(e, "llvm.sqrt", x);
    if (c == -1) return LLVMBuildFDiv(e->b, fc(e, x, 1), x, "");
    if (c == 0) return fc(e, x, 1);
    return NULL;
}

static LLVMValueRef power(const ew *e, LLVMValueRef x, LLVMValueRef y) {
    gr_dtype ydt = e->n->inputs[1]->dtype;
    if (!e->fp) {
        if (!gr_dtype_is_float(ydt)) return ipow(e, x, y, ydt);
        LLVMValueRef args[2] = {cg_convert(e->k, x, e->dt, GR_DTYPE_F64),
                                cg_convert(e->k, y, ydt, GR_DTYPE_F64)};
        return cg_convert(e->k, cg_intrinsic(e->k, "llvm.pow", NULL, 2, args), GR_DTYPE_F64, e->dt);
    }
    LLVMValueRef r = pow_const(e, x);
    if (r) return r;
    LLVMValueRef args[2] = {x, cg_convert(e->k, y, ydt, e->dt)};
    return cg_intrinsic(e->k, "llvm.pow", NULL, 2, args);
}

static LLVMValueRef sign(const ew *e, LLVMValueRef x) {
    if (e->fp) {
        LLVMValueRef r = sel(e, LLVMBuildFCmp(e->b, LLVMRealOGT, x, fc(e, x, 0), ""), fc(e, x, 1), x);
        return sel(e, LLVMBuildFCmp(e->b, LLVMRealOLT, x, fc(e, x, 0), ""), fc(e, x, -1), r);
    }
    LLVMValueRef zero = ic(x, 0);
    LLVMValueRef r = sel(e, LLVMBuildICmp(e->b, LLVMIntNE, x, zero, ""), ic(x, 1), zero);
    if (!e->sgn) return r;
    return sel(e, LLVMBuildICmp(e->b, LLVMIntSLT, x, zero, ""), ic(x, -1), r);
}

static LLVMValueRef is_neg(const ew *e, LLVMValueRef x) {
    return e->fp ? LLVMBuildFCmp(e->b, LLVMRealOLT, x, fc(e, x, 0), "")
                 : LLVMBuildICmp(e->b, e->sgn ? LLVMIntSLT : LLVMIntULT, x, ic(x, 0), "");
}

/* Clip: bounds from constant data when available, else the operands. */
static LLVMValueRef clip(const ew *e, LLVMValueRef x, LLVMValueRef *ops) {
    for (int i = 1; i < 3 && i < e->n->n_inputs; i++) {
        const gr_value *v = e->n->inputs[i];
        if (!v) continue;
        LLVMValueRef bound = ops[i];
        if (gr_value_is_constant(v) && v->data && gr_value_numel(v) == 1)
            bound = e->fp ? fc(e, x, gr_dtype_load_f64(v->dtype, v->data, 0))
                          : ic(x, gr_dtype_load_i64(v->dtype, v->data, 0));
        LLVMValueRef out = i == 1 ? cmp(e, -1, 0, x, bound) : cmp(e, 1, 0, x, bound);
        x = sel(e, out, bound, x);
    }
    return x;
}

static LLVMValueRef gelu(const ew *e, LLVMValueRef x) {
    LLVMValueRef half_x = LLVMBuildFMul(e->b, fc(e, x, 0.5), x, "");
    LLVMValueRef t;
    if (strcmp(gr_node_string(e->n, "approximate", "none"), "tanh") == 0) {
        LLVMValueRef x3 = LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, x, x, ""), x, "");
        LLVMValueRef in = LLVMBuildFAdd(e->b, x, LLVMBuildFMul(e->b, fc(e, x, 0.044715), x3, ""), "");
        t = cg_tanh(e->k, LLVMBuildFMul(e->b, fc(e, x, 0.79788456080286535588), in, ""));
    } else {
        t = cg_erf(e->k, LLVMBuildFMul(e->b, x, fc(e, x, 0.70710678118654752440), ""));
    }
    return LLVMBuildFMul(e->b, half_x, LLVMBuildFAdd(e->b, fc(e, x, 1), t, ""), "");
}

/* max(0, min(1, alpha x + beta)) */
static LLVMValueRef hard_sigmoid(const ew *e, LLVMValueRef x, double alpha, double beta) {
    LLVMValueRef y = LLVMBuildFAdd(e->b, LLVMBuildFMul(e->b, fc(e, x, alpha), x, ""),
                                   fc(e, x, beta), "");
    y = sel(e, LLVMBuildFCmp(e->b, LLVMRealOGT, y, fc(e, x, 1), ""), fc(e, x, 1), y);
    return sel(e, LLVMBuildFCmp(e->b, LLVMRealOLT, y, fc(e, x, 0), ""), fc(e, x, 0), y);
}

static LLVMValueRef activation(const ew *e, LLVMValueRef x) {
    LLVMBuilderRef b = e->b;
    switch (e->n->op) {
    case GR_OP_RELU:
        return sel(e, is_neg(e, x), e->fp ? fc(e, x, 0) : ic(x, 0), x);
    case GR_OP_LEAKY_RELU:
        return sel(e, is_neg(e, x), LLVMBuildFMul(b, attr_f(e, x, "alpha", 0.01), x, ""), x);
    case GR_OP_ELU:
        return sel(e, is_neg(e, x), LLVMBuildFMul(b, attr_f(e, x, "alpha", 1), cg_expm1(e->k, x), ""), x);
    case GR_OP_SELU: {
        LLVMValueRef neg = LLVMBuildFMul(b, attr_f(e, x, "alpha", 1.6732632), cg_expm1(e->k, x), "");
        LLVMValueRef pos = LLVMBuildFCmp(b, LLVMRealOGT, x, fc(e, x, 0), "");
        return LLVMBuildFMul(b, attr_f(e, x, "gamma", 1.0507010), sel(e, pos, x, neg), "");
    }
    case GR_OP_HARD_SIGMOID:
        return hard_sigmoid(e, x, (float)gr_node_float(e->n, "alpha", 0.2),
                            (float)gr_node_float(e->n, "beta", 0.5));
    case GR_OP_HARD_SWISH:
        return LLVMBuildFMul(b, x, hard_sigmoid(e, x, (float)(1.0 / 6), 0.5), "");
    case GR_OP_SOFTSIGN:
        return LLVMBuildFDiv(b, x, LLVMBuildFAdd(b, fc(e, x, 1), cg_fabs(e->k, x), ""), "");
    case GR_OP_SIGMOID: return cg_sigmoid(e->k, x);
    case GR_OP_TANH: return cg_tanh(e->k, x);
    case GR_OP_SOFTPLUS: return cg_softplus(e->k, x);
    case GR_OP_GELU: return gelu(e, x);
    default: return NULL;
    }
}

static LLVMValueRef unary(const ew *e, LLVMValueRef x) {
    LLVMBuilderRef b = e->b;
    switch (e->n->op) {
    case GR_OP_NEG: return e->fp ? LLVMBuildFNeg(b, x, "") : LLVMBuildSub(b, ic(x, 0), x, "");
    case GR_OP_ABS:
        if (e->fp) return cg_fabs(e->k, x);
        return e->sgn ? sel(e, is_neg(e, x), LLVMBuildSub(b, ic(x, 0), x, ""), x) : x;
    case GR_OP_SQRT: return intr1(e, "llvm.sqrt", x);
    case GR_OP_RECIPROCAL: return LLVMBuildFDiv(b, fc(e, x, 1), x, "");
    case GR_OP_EXP: return cg_exp(e->k, x);
    case GR_OP_LOG: return cg_log(e->k, x);
    case GR_OP_ERF: return cg_erf(e->k, x);
    case GR_OP_FLOOR: return intr1(e, "llvm.floor", x);
    case GR_OP_CEIL: return intr1(e, "llvm.ceil", x);
    case GR_OP_ROUND: return intr1(e, "llvm.roundeven", x);
    case GR_OP_SIGN: return sign(e, x);
    case GR_OP_NOT: return LLVMBuildNot(b, x, "");
    default: return activation(e, x);
    }
}

/* Cast: f64 -> f16 rounds once (to half, exactly representable in float). */
static LLVMValueRef cast(const ew *e, LLVMValueRef x, gr_dtype to) {
    if (e->dt == GR_DTYPE_F64 && to == GR_DTYPE_F16) {
        LLVMValueRef h = LLVMBuildFPTrunc(e->b, x, LLVMHalfTypeInContext(e->k->m->ctx), "");
        return LLVMBuildFPExt(e->b, h, e->k->m->t_f32, "");
    }
    return cg_convert(e->k, x, e->dt, to);
}

static LLVMValueRef arith(const ew *e, LLVMValueRef a, LLVMValueRef c) {
    LLVMBuilderRef b = e->b;
    switch (e->n->op) {
    case GR_OP_ADD: case GR_OP_SUM: case GR_OP_MEAN:
        return e->fp ? LLVMBuildFAdd(b, a, c, "") : LLVMBuildAdd(b, a, c, "");
    case GR_OP_SUB: return e->fp ? LLVMBuildFSub(b, a, c, "") : LLVMBuildSub(b, a, c, "");
    case GR_OP_MUL: return e->fp ? LLVMBuildFMul(b, a, c, "") : LLVMBuildMul(b, a, c, "");
    case GR_OP_DIV: return e->fp ? LLVMBuildFDiv(b, a, c, "") : int_div(e, a, c, 0);
    case GR_OP_MAX: return vmax(e, a, c);
    case GR_OP_MIN: return vmin(e, a, c);
    default: return NULL;
    }
}

static LLVMValueRef binary(const ew *e, LLVMValueRef a, LLVMValueRef c) {
    LLVMBuilderRef b = e->b;
    switch (e->n->op) {
    case GR_OP_POW: return power(e, a, c);
    case GR_OP_MOD: return mod(e, a, c);
    case GR_OP_PRELU:
        return sel(e, is_neg(e, a), e->fp ? LLVMBuildFMul(b, a, c, "") : LLVMBuildMul(b, a, c, ""), a);
    case GR_OP_EQUAL:
        return e->fp ? LLVMBuildFCmp(b, LLVMRealOEQ, a, c, "") : LLVMBuildICmp(b, LLVMIntEQ, a, c, "");
    case GR_OP_LESS: return cmp(e, -1, 0, a, c);
    case GR_OP_LESS_OR_EQUAL: return cmp(e, -1, 1, a, c);
    case GR_OP_GREATER: return cmp(e, 1, 0, a, c);
    case GR_OP_GREATER_OR_EQUAL: return cmp(e, 1, 1, a, c);
    case GR_OP_AND: return LLVMBuildAnd(b, a, c, "");
    case GR_OP_OR: return LLVMBuildOr(b, a, c, "");
    case GR_OP_XOR: return LLVMBuildXor(b, a, c, "");
    default: return arith(e, a, c);
    }
}

LLVMValueRef cg_ew_apply(cg_kernel *k, const gr_node *n, LLVMValueRef *operands) {
    gr_dtype dt = n->inputs[0]->dtype;
    ew e = {k, k->b, n, dt, gr_dtype_is_float(dt), cg_dtype_signed(dt)};
    LLVMValueRef x = operands[0];
    switch (n->op) {
    case GR_OP_CLIP: return clip(&e, x, operands);
    case GR_OP_WHERE: return sel(&e, x, operands[1], operands[2]);
    case GR_OP_CAST: case GR_OP_CAST_LIKE: return cast(&e, x, n->outputs[0]->dtype);
    case GR_OP_IDENTITY: case GR_OP_DROPOUT: return x;
    case GR_OP_MAX: case GR_OP_MIN: case GR_OP_SUM: case GR_OP_MEAN: {
        for (int i = 1; i < n->n_inputs; i++) x = arith(&e, x, operands[i]);
        if (n->op != GR_OP_MEAN || n->n_inputs == 1) return x;
        return e.fp ? LLVMBuildFDiv(k->b, x, fc(&e, x, n->n_inputs), "")
                    : int_div(&e, x, ic(x, n->n_inputs), 0);
    }
    default: break;
    }
    const gr_op_info *info = gr_op_info_of(n->op);
    return info->in_max == 2 ? binary(&e, x, operands[1]) : unary(&e, x);
}

static int is_arith_op(gr_op op) {
    switch (op) {
    case GR_OP_ADD: case GR_OP_SUB: case GR_OP_MUL: case GR_OP_DIV: case GR_OP_POW:
    case GR_OP_MOD: case GR_OP_PRELU: case GR_OP_MAX: case GR_OP_MIN: case GR_OP_SUM:
    case GR_OP_MEAN: case GR_OP_NEG: case GR_OP_ABS: case GR_OP_SIGN: case GR_OP_RELU:
    case GR_OP_LESS: case GR_OP_GREATER: case GR_OP_LESS_OR_EQUAL:
    case GR_OP_GREATER_OR_EQUAL: case GR_OP_CLIP:
        return 1;
    default:
        return 0;
    }
}

static int is_ew_op(gr_op op) {
    if (is_arith_op(op)) return 1;
    switch (op) {
    case GR_OP_EQUAL: case GR_OP_AND: case GR_OP_OR: case GR_OP_XOR: case GR_OP_SQRT:
    case GR_OP_RECIPROCAL: case GR_OP_EXP: case GR_OP_LOG: case GR_OP_ERF: case GR_OP_FLOOR:
    case GR_OP_CEIL: case GR_OP_ROUND: case GR_OP_NOT: case GR_OP_LEAKY_RELU: case GR_OP_ELU:
    case GR_OP_SELU: case GR_OP_SIGMOID: case GR_OP_HARD_SIGMOID: case GR_OP_HARD_SWISH:
    case GR_OP_TANH: case GR_OP_SOFTPLUS: case GR_OP_SOFTSIGN: case GR_OP_GELU:
    case GR_OP_IDENTITY: case GR_OP_WHERE: case GR_OP_CAST: case GR_OP_CAST_LIKE:
        return 1;
    default:
        return 0;
    }
}

static gr_code check_dtype(const gr_value *v, gr_status *st) {
    if (v && (v->dtype == GR_DTYPE_STRING || !gr_dtype_size(v->dtype)))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "'%s' has dtype %s, which kernels do not handle",
                       v->name, gr_dtype_name(v->dtype));
    return GR_OK;
}

gr_code cg_ew_check(const gr_node *n, gr_status *st) {
    if (!is_ew_op(n->op))
        return gr_fail(st, GR_ERR_INTERNAL, "%s is not an elementwise op", gr_op_name(n->op));
    if (n->n_inputs < 1 || !n->inputs[0] || n->n_outputs < 1 || !n->outputs[0])
        return gr_fail(st, GR_ERR_BAD_MODEL, "missing input or output");
    for (int i = 0; i < n->n_inputs; i++) GR_TRY(check_dtype(n->inputs[i], st));
    GR_TRY(check_dtype(n->outputs[0], st));
    gr_dtype dt = n->inputs[0]->dtype;
    if (dt == GR_DTYPE_BOOL && is_arith_op(n->op))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s on bool tensors is not supported",
                       gr_op_name(n->op));
    if (n->op == GR_OP_GELU) {
        const char *a = gr_node_string(n, "approximate", "none");
        if (strcmp(a, "none") != 0 && strcmp(a, "tanh") != 0)
            return gr_fail(st, GR_ERR_UNSUPPORTED, "Gelu approximate='%s' (expected none or tanh)", a);
    }
    if (n->op == GR_OP_POW && n->inputs[1]->dtype == GR_DTYPE_BOOL)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Pow with a bool exponent");
    return GR_OK;
}
