/* cg_math.c: exp, expm1, log, log1p, tanh, sigmoid, erf and softplus as
 * branch-free LLVM IR for f32 (Cephes-style range reduction and
 * polynomials, selects for special values) so that loops containing them
 * vectorise; f64 uses llvm.exp/llvm.log or libm (scalar). */
#include <string.h>

#include "codegen/cg_math.h"

static int is_f64(LLVMValueRef x) {
    return LLVMGetTypeKind(LLVMTypeOf(x)) == LLVMDoubleTypeKind;
}

LLVMValueRef cg_fconst(cg_kernel *k, LLVMValueRef like, double v) {
    (void)k;
    return LLVMConstReal(LLVMTypeOf(like), v);
}

LLVMValueRef cg_fma(cg_kernel *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMValueRef args[3] = {a, b, c};
    return cg_intrinsic(k, "llvm.fmuladd", NULL, 3, args);
}

static LLVMValueRef call1(cg_kernel *k, const char *intrinsic, LLVMValueRef x) {
    return cg_intrinsic(k, intrinsic, NULL, 1, &x);
}

LLVMValueRef cg_fabs(cg_kernel *k, LLVMValueRef x) { return call1(k, "llvm.fabs", x); }

/* double libm function by name (resolved in the process by the JIT). */
static LLVMValueRef libm1(cg_kernel *k, const char *name, LLVMValueRef x) {
    LLVMTypeRef t = k->m->t_f64;
    LLVMTypeRef fty = LLVMFunctionType(t, &t, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(k->m->mod, name);
    if (!fn) fn = LLVMAddFunction(k->m->mod, name, fty);
    return LLVMBuildCall2(k->b, fty, fn, &x, 1, "");
}

static LLVMValueRef fcmp(cg_kernel *k, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFCmp(k->b, p, a, b, "");
}

static LLVMValueRef sel(cg_kernel *k, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(k->b, c, a, b, "");
}

LLVMValueRef cg_fmax(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef r = sel(k, fcmp(k, LLVMRealOGT, a, b), a, b);
    return sel(k, fcmp(k, LLVMRealUNO, a, a), a, r);
}

LLVMValueRef cg_fmin(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef r = sel(k, fcmp(k, LLVMRealOLT, a, b), a, b);
    return sel(k, fcmp(k, LLVMRealUNO, a, a), a, r);
}

/* Horner: c[0]*x^(n-1) + ... + c[n-1]. */
static LLVMValueRef poly(cg_kernel *k, LLVMValueRef x, const double *c, int n) {
    LLVMValueRef p = cg_fconst(k, x, c[0]);
    for (int i = 1; i < n; i++) p = cg_fma(k, p, x, cg_fconst(k, x, c[i]));
    return p;
}

/* 2^n for an i32 n in [-126, 127], as a float. */
static LLVMValueRef pow2i(cg_kernel *k, LLVMValueRef n) {
    LLVMTypeRef i32 = k->m->t_i32;
    LLVMValueRef e = LLVMBuildAdd(k->b, n, LLVMConstInt(i32, 127, 0), "");
    e = LLVMBuildShl(k->b, e, LLVMConstInt(i32, 23, 0), "");
    return LLVMBuildBitCast(k->b, e, k->m->t_f32, "");
}

/* exp: x = n ln2 + r, |r| <= ln2/2; e^r by a degree-7 polynomial; the
 * scale 2^n is applied in two halves so subnormal results round once. */
LLVMValueRef cg_exp(cg_kernel *k, LLVMValueRef x) {
    if (is_f64(x)) return call1(k, "llvm.exp", x);
    static const double c[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                               4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
    LLVMValueRef lo = cg_fconst(k, x, -104.0), hi = cg_fconst(k, x, 89.0);
    LLVMValueRef xc = sel(k, fcmp(k, LLVMRealULT, x, lo), lo, x); /* NaN -> lo */
    xc = sel(k, fcmp(k, LLVMRealOGT, xc, hi), hi, xc);
    LLVMValueRef n = call1(k, "llvm.rint", LLVMBuildFMul(k->b, xc, cg_fconst(k, x, 1.44269504088896341), ""));
    LLVMValueRef r = cg_fma(k, n, cg_fconst(k, x, -0.693359375), xc);
    r = cg_fma(k, n, cg_fconst(k, x, 2.12194440e-4), r);
    LLVMValueRef p = poly(k, r, c, 6);
    LLVMValueRef y = cg_fma(k, p, LLVMBuildFMul(k->b, r, r, ""), r);
    y = LLVMBuildFAdd(k->b, y, cg_fconst(k, x, 1.0), "");
    LLVMValueRef ni = LLVMBuildFPToSI(k->b, n, k->m->t_i32, "");
    LLVMValueRef n1 = LLVMBuildAShr(k->b, ni, LLVMConstInt(k->m->t_i32, 1, 0), "");
    LLVMValueRef n2 = LLVMBuildSub(k->b, ni, n1, "");
    y = LLVMBuildFMul(k->b, LLVMBuildFMul(k->b, y, pow2i(k, n1), ""), pow2i(k, n2), "");
    return sel(k, fcmp(k, LLVMRealUNO, x, x), x, y);
}

/* expm1: Taylor series to x^8 for |x| < 0.5 (error < 0.3 ulp), else e^x - 1. */
LLVMValueRef cg_expm1(cg_kernel *k, LLVMValueRef x) {
    if (is_f64(x)) return libm1(k, "expm1", x);
    static const double c[] = {1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120,
                               1.0 / 24, 1.0 / 6, 0.5};
    LLVMValueRef p = poly(k, x, c, 7);
    LLVMValueRef small = cg_fma(k, p, LLVMBuildFMul(k->b, x, x, ""), x);
    LLVMValueRef big = LLVMBuildFSub(k->b, cg_exp(k, x), cg_fconst(k, x, 1.0), "");
    return sel(k, fcmp(k, LLVMRealOLT, cg_fabs(k, x), cg_fconst(k, x, 0.5)), small, big);
}

/* x = m 2^e with m in [sqrt(1/2), sqrt(2)); ln x = e ln2 + ln(1 + f), f = m - 1.
 * Subnormal inputs are scaled by 2^23 first. */
static LLVMValueRef log_f32(cg_kernel *k, LLVMValueRef x) {
    static const double c[] = {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                               -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                               2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1};
    LLVMTypeRef i32 = k->m->t_i32;
    LLVMValueRef tiny = fcmp(k, LLVMRealOLT, x, cg_fconst(k, x, 1.17549435e-38));
    LLVMValueRef xs = sel(k, tiny, LLVMBuildFMul(k->b, x, cg_fconst(k, x, 8388608.0), ""), x);
    LLVMValueRef bits = LLVMBuildBitCast(k->b, xs, i32, "");
    LLVMValueRef e = LLVMBuildAnd(k->b, LLVMBuildLShr(k->b, bits, LLVMConstInt(i32, 23, 0), ""),
                                  LLVMConstInt(i32, 0xff, 0), "");
    e = LLVMBuildSub(k->b, e, sel(k, tiny, LLVMConstInt(i32, 126 + 23, 0), LLVMConstInt(i32, 126, 0)), "");
    LLVMValueRef mb = LLVMBuildOr(k->b, LLVMBuildAnd(k->b, bits, LLVMConstInt(i32, 0x807fffff, 0), ""),
                                  LLVMConstInt(i32, 0x3f000000, 0), "");
    LLVMValueRef m = LLVMBuildBitCast(k->b, mb, k->m->t_f32, "");
    LLVMValueRef low = fcmp(k, LLVMRealOLT, m, cg_fconst(k, x, 0.707106781186547524));
    e = sel(k, low, LLVMBuildSub(k->b, e, LLVMConstInt(i32, 1, 0), ""), e);
    LLVMValueRef one = cg_fconst(k, x, 1.0);
    LLVMValueRef f = LLVMBuildFSub(k->b, sel(k, low, LLVMBuildFAdd(k->b, m, m, ""), m), one, "");
    LLVMValueRef z = LLVMBuildFMul(k->b, f, f, "");
    LLVMValueRef y = LLVMBuildFMul(k->b, LLVMBuildFMul(k->b, poly(k, f, c, 9), f, ""), z, "");
    LLVMValueRef ef = LLVMBuildSIToFP(k->b, e, k->m->t_f32, "");
    y = cg_fma(k, ef, cg_fconst(k, x, -2.12194440e-4), y);
    y = cg_fma(k, z, cg_fconst(k, x, -0.5), y);
    LLVMValueRef r = cg_fma(k, ef, cg_fconst(k, x, 0.693359375), LLVMBuildFAdd(k->b, f, y, ""));
    LLVMValueRef inf = cg_fconst(k, x, 1.0 / 0.0);
    r = sel(k, fcmp(k, LLVMRealOEQ, x, inf), inf, r);
    r = sel(k, fcmp(k, LLVMRealOEQ, x, cg_fconst(k, x, 0.0)), cg_fconst(k, x, -1.0 / 0.0), r);
    r = sel(k, fcmp(k, LLVMRealOLT, x, cg_fconst(k, x, 0.0)), cg_fconst(k, x, 0.0 / 0.0), r);
    return sel(k, fcmp(k, LLVMRealUNO, x, x), x, r);
}

LLVMValueRef cg_log(cg_kernel *k, LLVMValueRef x) {
    return is_f64(x) ? call1(k, "llvm.log", x) : log_f32(k, x);
}

/* log1p(x) = log(w) * x / (w - 1) with w = 1 + x (Goldberg's trick). */
LLVMValueRef cg_log1p(cg_kernel *k, LLVMValueRef x) {
    if (is_f64(x)) return libm1(k, "log1p", x);
    LLVMValueRef one = cg_fconst(k, x, 1.0);
    LLVMValueRef w = LLVMBuildFAdd(k->b, one, x, "");
    LLVMValueRef wm1 = LLVMBuildFSub(k->b, w, one, "");
    LLVMValueRef lw = cg_log(k, w);
    LLVMValueRef r = LLVMBuildFMul(k->b, lw, LLVMBuildFDiv(k->b, x, wm1, ""), "");
    r = sel(k, fcmp(k, LLVMRealOEQ, w, cg_fconst(k, x, 1.0 / 0.0)), w, r);
    return sel(k, fcmp(k, LLVMRealOEQ, w, one), x, r);
}

/* tanh: odd polynomial for |x| < 0.625, else sign(x) (1 - 2/(e^2|x| + 1)). */
LLVMValueRef cg_tanh(cg_kernel *k, LLVMValueRef x) {
    if (is_f64(x)) return libm1(k, "tanh", x);
    static const double c[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2,
                               1.33314422036E-1, -3.33332819422E-1};
    LLVMValueRef ax = cg_fabs(k, x);
    LLVMValueRef s = LLVMBuildFMul(k->b, x, x, "");
    LLVMValueRef small = cg_fma(k, LLVMBuildFMul(k->b, poly(k, s, c, 5), s, ""), x, x);
    LLVMValueRef e = cg_exp(k, LLVMBuildFAdd(k->b, ax, ax, ""));
    LLVMValueRef one = cg_fconst(k, x, 1.0);
    LLVMValueRef big = LLVMBuildFSub(k->b, one,
        LLVMBuildFDiv(k->b, cg_fconst(k, x, 2.0), LLVMBuildFAdd(k->b, e, one, ""), ""), "");
    LLVMValueRef args[2] = {big, x};
    big = cg_intrinsic(k, "llvm.copysign", NULL, 2, args);
    return sel(k, fcmp(k, LLVMRealOLT, ax, cg_fconst(k, x, 0.625)), small, big);
}

/* sigmoid: with e = e^-|x|, 1/(1+e) for x >= 0 and e/(1+e) below, so that
 * neither branch overflows and tiny results keep their precision. */
LLVMValueRef cg_sigmoid(cg_kernel *k, LLVMValueRef x) {
    LLVMValueRef e = cg_exp(k, LLVMBuildFNeg(k->b, cg_fabs(k, x), ""));
    LLVMValueRef one = cg_fconst(k, x, 1.0);
    LLVMValueRef d = LLVMBuildFAdd(k->b, one, e, "");
    LLVMValueRef pos = LLVMBuildFDiv(k->b, one, d, "");
    LLVMValueRef neg = LLVMBuildFDiv(k->b, e, d, "");
    return sel(k, fcmp(k, LLVMRealOLT, x, cg_fconst(k, x, 0.0)), neg, pos);
}

/* erf: x P(x^2) / Q(x^2) on x clamped to [-4, 4] (the rational
 * approximation of Eigen/XLA); NaN passes through the clamp. */
LLVMValueRef cg_erf(cg_kernel *k, LLVMValueRef x) {
    if (is_f64(x)) return libm1(k, "erf", x);
    static const double a[] = {-2.72614225801306e-10, 2.77068142495902e-08,
                               -2.10102402082508e-06, -5.69250639462346e-05,
                               -7.34990630326855e-04, -2.95459980854025e-03,
                               -1.60960333262415e-02};
    static const double b[] = {-1.45660718464996e-05, -2.13374055278905e-04,
                               -1.68282697438203e-03, -7.37332916720468e-03,
                               -1.42647390514189e-02};
    LLVMValueRef lo = cg_fconst(k, x, -4.0), hi = cg_fconst(k, x, 4.0);
    LLVMValueRef xc = sel(k, fcmp(k, LLVMRealOLT, x, lo), lo, x);
    xc = sel(k, fcmp(k, LLVMRealOGT, xc, hi), hi, xc);
    LLVMValueRef x2 = LLVMBuildFMul(k->b, xc, xc, "");
    /* x last, so that tiny x does not lose bits in a subnormal x P */
    LLVMValueRef q = LLVMBuildFDiv(k->b, poly(k, x2, a, 7), poly(k, x2, b, 5), "");
    return LLVMBuildFMul(k->b, q, xc, "");
}

/* softplus(x) = max(x, 0) + log1p(e^-|x|). */
LLVMValueRef cg_softplus(cg_kernel *k, LLVMValueRef x) {
    LLVMValueRef zero = cg_fconst(k, x, 0.0);
    LLVMValueRef pos = sel(k, fcmp(k, LLVMRealOGT, x, zero), x, zero);
    LLVMValueRef t = cg_log1p(k, cg_exp(k, LLVMBuildFNeg(k->b, cg_fabs(k, x), "")));
    LLVMValueRef r = LLVMBuildFAdd(k->b, pos, t, "");
    return sel(k, fcmp(k, LLVMRealUNO, x, x), x, r);
}
