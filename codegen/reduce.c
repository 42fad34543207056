/* reduce.c: ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp
 * and GlobalAveragePool/GlobalMaxPool. The input's dims are merged into
 * alternating groups of kept and reduced dims. If the last group is reduced,
 * each task reduces one output element over contiguous memory in a loop the
 * vectoriser may reorder (f32 sums accumulate in f32: 16 partial sums, relative
 * error ~1e-7, better than the sequential order). If the last group is kept, a
 * task accumulates a chunk of an output row in the workspace while walking the
 * reduced dims, so the innermost loop stays contiguous over the kept dims. */
#include <math.h>
#include <string.h>

#include "codegen/cg_math.h"
#include "codegen/elementwise.h"
#include "codegen/reduce_internal.h"

/* ----------------------------------------------------------- shared helpers */

gr_dtype rd_float_dtype(gr_dtype t) { return t == GR_DTYPE_F64 ? GR_DTYPE_F64 : GR_DTYPE_F32; }

static LLVMValueRef call2(cg_kernel *k, const char *name, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef args[2] = {a, b};
    return cg_intrinsic(k, name, NULL, 2, args);
}

static LLVMValueRef call1(cg_kernel *k, const char *name, LLVMValueRef a) {
    return cg_intrinsic(k, name, NULL, 1, &a);
}

/* Floats: NaN if a or b is NaN, as numpy's maximum and ONNX Runtime (not
 * llvm.maxnum, which returns the other operand). */
LLVMValueRef rd_max(cg_kernel *k, gr_dtype at, LLVMValueRef a, LLVMValueRef b) {
    if (gr_dtype_is_float(at)) return cg_fmax(k, a, b);
    if (at == GR_DTYPE_BOOL) return LLVMBuildOr(k->b, a, b, "");
    return call2(k, cg_dtype_signed(at) ? "llvm.smax" : "llvm.umax", a, b);
}

LLVMValueRef rd_min(cg_kernel *k, gr_dtype at, LLVMValueRef a, LLVMValueRef b) {
    if (gr_dtype_is_float(at)) return cg_fmin(k, a, b);
    if (at == GR_DTYPE_BOOL) return LLVMBuildAnd(k->b, a, b, "");
    return call2(k, cg_dtype_signed(at) ? "llvm.smin" : "llvm.umin", a, b);
}

static LLVMValueRef int_limit(cg_kernel *k, gr_dtype at, int highest) {
    LLVMTypeRef t = cg_reg_type(k->m, at);
    if (at == GR_DTYPE_BOOL) return LLVMConstInt(t, highest ? 1 : 0, 0);
    unsigned bits = (unsigned)gr_dtype_size(at) * 8;
    unsigned long long ones = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
    if (!cg_dtype_signed(at)) return LLVMConstInt(t, highest ? ones : 0, 0);
    unsigned long long top = 1ULL << (bits - 1);
    return LLVMConstInt(t, highest ? top - 1 : top, 0);
}

LLVMValueRef rd_lowest(cg_kernel *k, gr_dtype at) {
    if (gr_dtype_is_float(at)) return LLVMConstReal(cg_reg_type(k->m, at), -INFINITY);
    return int_limit(k, at, 0);
}

LLVMValueRef rd_highest(cg_kernel *k, gr_dtype at) {
    if (gr_dtype_is_float(at)) return LLVMConstReal(cg_reg_type(k->m, at), INFINITY);
    return int_limit(k, at, 1);
}

/* cg_math: vectorisable polynomial code for f32 (no libm calls). */
LLVMValueRef rd_exp(cg_kernel *k, LLVMValueRef x) { return cg_exp(k, x); }
LLVMValueRef rd_log(cg_kernel *k, LLVMValueRef x) { return cg_log(k, x); }
LLVMValueRef rd_sqrt(cg_kernel *k, LLVMValueRef x) { return call1(k, "llvm.sqrt", x); }
LLVMValueRef rd_fabs(cg_kernel *k, LLVMValueRef x) { return call1(k, "llvm.fabs", x); }

LLVMValueRef rd_add(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildAdd(k->b, a, b, "");
}

LLVMValueRef rd_mul(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildMul(k->b, a, b, "");
}

LLVMValueRef rd_min64(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return call2(k, "llvm.smin", a, b);
}

LLVMValueRef rd_max64(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return call2(k, "llvm.smax", a, b);
}

LLVMValueRef rd_load(cg_kernel *k, gr_dtype xt, LLVMValueRef x, LLVMValueRef i, gr_dtype at) {
    return cg_convert(k, cg_load(k, xt, x, i), xt, at);
}

void rd_store(cg_kernel *k, gr_dtype yt, LLVMValueRef y, LLVMValueRef i, gr_dtype at,
              LLVMValueRef v) {
    cg_store(k, yt, y, i, cg_convert(k, v, at, yt));
}

/* NaN-propagating max or min of a and b (scalars or vectors). */
static LLVMValueRef minmax(cg_kernel *k, int is_min, LLVMValueRef a, LLVMValueRef b) {
    return is_min ? cg_fmin(k, a, b) : cg_fmax(k, a, b);
}

/* max (or min) of acc and x[base .. base + n) for float x held in its
 * register dtype, NaN if any is NaN (rd_max): explicit vectors, because
 * LLVM 16 does not vectorise such a reduction without no-NaN flags. 4
 * accumulators of 8 lanes (f32) or 4 lanes (f64), a reduction across the
 * lanes, then a scalar tail. */
LLVMValueRef rd_vec_minmax(cg_kernel *k, gr_dtype at, int is_min, LLVMValueRef x,
                           LLVMValueRef base, int64_t n, LLVMValueRef acc) {
    int lanes = at == GR_DTYPE_F64 ? 4 : 8, unroll = 4;
    int64_t nv = n / (lanes * unroll) * (lanes * unroll);
    if (nv > 0) {
        LLVMTypeRef et = cg_reg_type(k->m, at), vt = LLVMVectorType(et, (unsigned)lanes);
        LLVMValueRef init = LLVMConstVector((LLVMValueRef[]){acc, acc, acc, acc, acc, acc, acc, acc},
                                            (unsigned)lanes);
        if (!LLVMIsConstant(acc)) { /* broadcast a run-time scalar */
            init = LLVMGetUndef(vt);
            for (int i = 0; i < lanes; i++)
                init = LLVMBuildInsertElement(k->b, init, acc, cg_i32(k, i), "");
        }
        cg_loop l;
        LLVMValueRef i = cg_loop_begin(k, &l, cg_i64(k, 0), cg_i64(k, nv), lanes * unroll);
        LLVMValueRef a[4];
        for (int u = 0; u < unroll; u++) a[u] = cg_loop_acc(k, &l, init);
        for (int u = 0; u < unroll; u++) {
            LLVMValueRef idx = rd_add(k, base, rd_add(k, i, cg_i64(k, u * lanes)));
            LLVMValueRef v = LLVMBuildLoad2(k->b, vt, cg_gep(k, at, x, idx), "");
            LLVMSetAlignment(v, (unsigned)gr_dtype_size(at));
            cg_loop_next(&l, u, minmax(k, is_min, a[u], v));
        }
        cg_loop_end(k, &l);
        LLVMValueRef v = minmax(k, is_min, minmax(k, is_min, l.acc_out[0], l.acc_out[1]),
                                minmax(k, is_min, l.acc_out[2], l.acc_out[3]));
        acc = LLVMBuildExtractElement(k->b, v, cg_i32(k, 0), "");
        for (int i = 1; i < lanes; i++) /* llvm.vector.reduce.fmax drops NaNs */
            acc = minmax(k, is_min, acc, LLVMBuildExtractElement(k->b, v, cg_i32(k, i), ""));
    }
    if (nv == n) return acc;
    cg_loop t;
    LLVMValueRef i = cg_loop_begin(k, &t, cg_i64(k, nv), cg_i64(k, n), 1);
    LLVMValueRef a = cg_loop_acc(k, &t, acc);
    cg_loop_next(&t, 0, minmax(k, is_min, a, cg_load(k, at, x, rd_add(k, base, i))));
    cg_loop_end(k, &t);
    return t.acc_out[0];
}

int64_t rd_chunk(int64_t rows, int64_t len) {
    const int64_t want = 8; /* tasks */
    int64_t ch = len < RD_CHUNK ? len : RD_CHUNK;
    if (rows < want && rows > 0) {
        int64_t pieces = (want + rows - 1) / rows, small = (len + pieces - 1) / pieces;
        if (small < 16) small = 16;
        if (small < ch) ch = small;
    }
    return ch < 1 ? 1 : ch;
}

rd_view rd_view_axis(const gr_shape *s, int axis) {
    rd_view v = {1, 1, 1};
    for (int i = 0; i < s->rank; i++) {
        if (i < axis) v.outer *= s->dims[i];
        else if (i == axis) v.len = s->dims[i];
        else v.inner *= s->dims[i];
    }
    return v;
}

gr_code rd_axis(const gr_node *n, int64_t axis, int rank, int *out, gr_status *st) {
    if (axis < -rank || axis >= rank)
        return gr_fail(st, GR_ERR_BAD_MODEL, "axis %lld is out of range for rank %d",
                       (long long)axis, rank);
    (void)n;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return GR_OK;
}

/* ------------------------------------------------------------ reductions */

typedef enum {
    RK_SUM, RK_MEAN, RK_MAX, RK_MIN, RK_PROD, RK_L1, RK_L2, RK_SUMSQ, RK_LOGSUM, RK_LSE,
    RK_SUMEXP /* second pass of LogSumExp: sum of exp(x - shift) */
} rkind;

/* The reduction's input as merged groups of dims (size-1 dims dropped).
 * Its elements are read from sources: x itself, or the operands of a
 * prologue (fused.c), whose group evaluates x's element from them. */
typedef struct {
    cg_kernel *k;
    rkind kind;
    gr_dtype xt, yt, at; /* input, output, accumulator dtypes */
    LLVMValueRef y;
    struct cg_prologue *pro; /* NULL: load x */
    int n_src;
    const gr_value *src[CG_MAX_ARGS];
    LLVMValueRef src_ptr[CG_MAX_ARGS];
    int n;
    int64_t dim[GR_MAX_RANK];
    int64_t stride[CG_MAX_ARGS][GR_MAX_RANK]; /* per source and group, 0: broadcast */
    int red[GR_MAX_RANK];
    int n_red, red_idx[GR_MAX_RANK];
    int64_t count;       /* elements reduced into each output */
} rd;

/* Merges adjacent dims of x that are both kept or both reduced and that
 * every source reads contiguously or broadcasts across (s: the sources'
 * strides in x's index space). */
static void merge_groups(rd *r, const gr_shape *x, const int *mask,
                         int64_t (*s)[GR_MAX_RANK]) {
    r->n = 0;
    r->count = 1;
    for (int i = 0; i < x->rank; i++) {
        if (mask[i]) r->count *= x->dims[i];
        if (x->dims[i] == 1) continue;
        int g = r->n, merge = g > 0 && r->red[g - 1] == mask[i];
        for (int j = 0; j < r->n_src && merge; j++)
            merge = r->stride[j][g - 1] == s[j][i] * x->dims[i];
        if (merge) g--;
        else r->dim[r->n++] = 1;
        r->dim[g] *= x->dims[i];
        r->red[g] = mask[i];
        for (int j = 0; j < r->n_src; j++) r->stride[j][g] = s[j][i];
    }
    if (r->n == 0) { /* all dims are 1: one kept group of one element */
        r->dim[0] = 1;
        r->red[0] = 0;
        r->n = 1;
        for (int j = 0; j < r->n_src; j++) r->stride[j][0] = 0;
    }
    r->n_red = 0;
    for (int g = 0; g < r->n; g++)
        if (r->red[g]) r->red_idx[r->n_red++] = g;
}

/* The sources of x (the prologue's operands, or x) and their strides. */
static gr_code read_sources(rd *r, const gr_value *xv, const int *mask, gr_status *st) {
    int64_t s[CG_MAX_ARGS][GR_MAX_RANK];
    r->n_src = r->pro ? cg_prologue_n_operands(r->pro) : 1;
    for (int j = 0; j < r->n_src; j++) {
        r->src[j] = r->pro ? cg_prologue_operand(r->pro, j) : xv;
        r->src_ptr[j] = cg_arg(r->k, r->src[j]);
        GR_TRY(cg_ew_operand_strides(&xv->shape, r->src[j], s[j], st));
    }
    merge_groups(r, &xv->shape, mask, s);
    return GR_OK;
}

/* off[j] + i * (source j's stride along group g), for every source. */
static void advance(const rd *r, const LLVMValueRef *off, int g, LLVMValueRef i,
                    LLVMValueRef *out) {
    cg_kernel *k = r->k;
    for (int j = 0; j < r->n_src; j++) {
        int64_t s = r->stride[j][g];
        out[j] = s ? rd_add(k, off[j], rd_mul(k, i, cg_i64(k, s))) : off[j];
    }
}

/* x's element at the sources' offsets off, in the accumulator dtype. */
static LLVMValueRef element(const rd *r, const LLVMValueRef *off) {
    cg_kernel *k = r->k;
    if (!r->pro) return rd_load(k, r->xt, r->src_ptr[0], off[0], r->at);
    LLVMValueRef regs[CG_MAX_ARGS];
    for (int j = 0; j < r->n_src; j++)
        regs[j] = cg_load(k, r->src[j]->dtype, r->src_ptr[j], off[j]);
    return cg_convert(k, cg_prologue_value(k, r->pro, regs), r->xt, r->at);
}

static gr_dtype acc_dtype(rkind kind, gr_dtype xt) {
    if (gr_dtype_is_float(xt)) return rd_float_dtype(xt);
    if (kind == RK_L2 || kind == RK_LOGSUM || kind == RK_LSE || kind == RK_SUMEXP)
        return GR_DTYPE_F64;
    return xt;
}

static LLVMValueRef identity(cg_kernel *k, rkind kind, gr_dtype at) {
    switch (kind) {
    case RK_MAX: return rd_lowest(k, at);
    case RK_MIN: return rd_highest(k, at);
    case RK_PROD: return cg_const(k, at, 1);
    default: return cg_const(k, at, 0);
    }
}

/* acc (+) x for one element x of the reduced set. */
static LLVMValueRef step(const rd *r, rkind kind, LLVMValueRef acc, LLVMValueRef x,
                         LLVMValueRef shift) {
    cg_kernel *k = r->k;
    int fl = gr_dtype_is_float(r->at);
    switch (kind) {
    case RK_MAX: return rd_max(k, r->at, acc, x);
    case RK_MIN: return rd_min(k, r->at, acc, x);
    case RK_PROD: return fl ? LLVMBuildFMul(k->b, acc, x, "") : LLVMBuildMul(k->b, acc, x, "");
    case RK_L1:
        if (fl) x = rd_fabs(k, x);
        else if (cg_dtype_signed(r->at))
            x = call2(k, "llvm.abs", x, LLVMConstInt(k->m->t_i1, 0, 0));
        break;
    case RK_L2: case RK_SUMSQ:
        x = fl ? LLVMBuildFMul(k->b, x, x, "") : LLVMBuildMul(k->b, x, x, "");
        break;
    case RK_SUMEXP: x = rd_exp(k, LLVMBuildFSub(k->b, x, shift, "")); break;
    default: break;
    }
    return fl ? LLVMBuildFAdd(k->b, acc, x, "") : LLVMBuildAdd(k->b, acc, x, "");
}

/* The output value from the accumulator (shift: LogSumExp's max). */
static LLVMValueRef finish(const rd *r, LLVMValueRef acc, LLVMValueRef shift) {
    cg_kernel *k = r->k;
    int fl = gr_dtype_is_float(r->at);
    switch (r->kind) {
    case RK_MEAN:
        if (fl) return LLVMBuildFDiv(k->b, acc, cg_const(k, r->at, (double)r->count), "");
        if (r->count == 0) return acc;
        return cg_dtype_signed(r->at)
                   ? LLVMBuildSDiv(k->b, acc, cg_const(k, r->at, (double)r->count), "")
                   : LLVMBuildUDiv(k->b, acc, cg_const(k, r->at, (double)r->count), "");
    case RK_L2: return rd_sqrt(k, acc);
    case RK_LOGSUM: return rd_log(k, acc);
    case RK_LSE: return LLVMBuildFAdd(k->b, shift, rd_log(k, acc), "");
    default: return acc;
    }
}

/* LogSumExp's shift: the max, or 0 when it is -inf (an empty or all -inf
 * set; x - max would be NaN). The result shift + log(sum) is then -inf. */
static LLVMValueRef safe_shift(const rd *r, LLVMValueRef m) {
    cg_kernel *k = r->k;
    LLVMValueRef inf = LLVMBuildFCmp(k->b, LLVMRealOEQ, m, rd_lowest(k, r->at), "");
    return LLVMBuildSelect(k->b, inf, cg_const(k, r->at, 0), m, "");
}

/* The sources' offsets off[] of element o of the kept groups among the
 * first n_groups groups (row-major over those kept groups; reduced groups
 * contribute 0). */
static void kept_offset(const rd *r, LLVMValueRef o, int n_groups, LLVMValueRef *off) {
    cg_kernel *k = r->k;
    for (int j = 0; j < r->n_src; j++) off[j] = cg_i64(k, 0);
    for (int g = n_groups - 1; g >= 0; g--) {
        if (r->red[g]) continue;
        LLVMValueRef idx = LLVMBuildURem(k->b, o, cg_i64(k, r->dim[g]), "");
        o = LLVMBuildUDiv(k->b, o, cg_i64(k, r->dim[g]), "");
        advance(r, off, g, idx, off);
    }
}

/* Last group reduced: acc over the reduced groups from level on; the
 * innermost (contiguous) loop is marked for vectorisation. */
static LLVMValueRef nest_inner(const rd *r, rkind kind, int level, const LLVMValueRef *off,
                               LLVMValueRef acc, LLVMValueRef shift) {
    cg_kernel *k = r->k;
    int g = r->red_idx[level];
    if (level == r->n_red - 1 && (kind == RK_MAX || kind == RK_MIN) && !r->pro &&
        gr_dtype_is_float(r->xt) && r->xt == r->at)
        return rd_vec_minmax(k, r->at, kind == RK_MIN, r->src_ptr[0], off[0], r->dim[g], acc);
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(k, &l, cg_i64(k, 0), cg_i64(k, r->dim[g]), 1);
    LLVMValueRef a = cg_loop_acc(k, &l, acc);
    LLVMValueRef o[CG_MAX_ARGS];
    advance(r, off, g, i, o);
    LLVMValueRef next;
    if (level == r->n_red - 1) {
        l.vectorize = 1;
        next = step(r, kind, a, element(r, o), shift);
    } else {
        next = nest_inner(r, kind, level + 1, o, a, shift);
    }
    cg_loop_next(&l, 0, next);
    cg_loop_end(k, &l);
    return l.acc_out[0];
}

/* One task per output element. */
static void emit_inner(rd *r, int64_t n_out) {
    cg_kernel *k = r->k;
    k->n_tasks = n_out;
    cg_loop l;
    LLVMValueRef o = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef base[CG_MAX_ARGS];
    kept_offset(r, o, r->n, base);
    LLVMValueRef shift = NULL;
    rkind kind = r->kind;
    if (kind == RK_LSE) {
        shift = safe_shift(r, nest_inner(r, RK_MAX, 0, base, rd_lowest(k, r->at), NULL));
        LLVMValueRef acc = nest_inner(r, RK_SUMEXP, 0, base, identity(k, RK_SUMEXP, r->at), shift);
        rd_store(k, r->yt, r->y, o, r->at, finish(r, acc, shift));
    } else {
        LLVMValueRef acc = nest_inner(r, kind, 0, base, identity(k, kind, r->at), NULL);
        rd_store(k, r->yt, r->y, o, r->at, finish(r, acc, NULL));
    }
    cg_loop_end(k, &l);
}

/* Last group kept: walk the reduced groups from level on; at the bottom,
 * ws[j] (+)= x at off + j (each source's stride along the last group), for
 * j < jn. */
static void nest_rows(const rd *r, rkind kind, int level, const LLVMValueRef *off,
                      LLVMValueRef ws, LLVMValueRef shift_ws, LLVMValueRef jn) {
    cg_kernel *k = r->k;
    LLVMValueRef o[CG_MAX_ARGS];
    if (level == r->n_red) {
        cg_loop l;
        LLVMValueRef j = cg_loop_begin(k, &l, cg_i64(k, 0), jn, 1);
        LLVMValueRef shift = shift_ws ? cg_load(k, r->at, shift_ws, j) : NULL;
        advance(r, off, r->n - 1, j, o);
        cg_store(k, r->at, ws, j, step(r, kind, cg_load(k, r->at, ws, j), element(r, o), shift));
        cg_loop_end(k, &l);
        return;
    }
    int g = r->red_idx[level];
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(k, &l, cg_i64(k, 0), cg_i64(k, r->dim[g]), 1);
    advance(r, off, g, i, o);
    nest_rows(r, kind, level + 1, o, ws, shift_ws, jn);
    cg_loop_end(k, &l);
}

static void fill_row(cg_kernel *k, gr_dtype at, LLVMValueRef ws, LLVMValueRef jn,
                     LLVMValueRef v) {
    cg_loop l;
    LLVMValueRef j = cg_loop_begin(k, &l, cg_i64(k, 0), jn, 1);
    cg_store(k, at, ws, j, v);
    cg_loop_end(k, &l);
}

/* Tasks are (row p of the kept groups before the last, chunk c of the last
 * kept group, length L): y[p*L + j0 .. + jn] accumulated in the workspace. */
static void emit_rows(rd *r, int64_t n_out) {
    cg_kernel *k = r->k;
    int64_t len = r->dim[r->n - 1], ch = rd_chunk(n_out / len, len);
    int64_t n_chunks = (len + ch - 1) / ch;
    size_t row = (size_t)ch * gr_dtype_size(r->at);
    k->n_tasks = n_out / len * n_chunks;
    k->workspace_bytes = r->kind == RK_LSE ? 2 * row : row;
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef p = LLVMBuildUDiv(k->b, t, cg_i64(k, n_chunks), "");
    LLVMValueRef j0 = rd_mul(k, LLVMBuildURem(k->b, t, cg_i64(k, n_chunks), ""), cg_i64(k, ch));
    LLVMValueRef jn = rd_min64(k, cg_i64(k, ch), LLVMBuildSub(k->b, cg_i64(k, len), j0, ""));
    LLVMValueRef base[CG_MAX_ARGS];
    kept_offset(r, p, r->n - 1, base);
    advance(r, base, r->n - 1, j0, base);
    LLVMValueRef ws = k->workspace, shift_ws = NULL;
    if (r->kind == RK_LSE) { /* row 0: the max, made safe; row 1: the sum */
        shift_ws = ws;
        ws = cg_gep(k, GR_DTYPE_U8, ws, cg_i64(k, (int64_t)row));
        fill_row(k, r->at, shift_ws, jn, rd_lowest(k, r->at));
        nest_rows(r, RK_MAX, 0, base, shift_ws, NULL, jn);
        cg_loop lz;
        LLVMValueRef j = cg_loop_begin(k, &lz, cg_i64(k, 0), jn, 1);
        cg_store(k, r->at, shift_ws, j, safe_shift(r, cg_load(k, r->at, shift_ws, j)));
        cg_loop_end(k, &lz);
    }
    rkind kind = r->kind == RK_LSE ? RK_SUMEXP : r->kind;
    fill_row(k, r->at, ws, jn, identity(k, kind, r->at));
    nest_rows(r, kind, 0, base, ws, shift_ws, jn);
    cg_loop lf;
    LLVMValueRef j = cg_loop_begin(k, &lf, cg_i64(k, 0), jn, 1);
    LLVMValueRef shift = shift_ws ? cg_load(k, r->at, shift_ws, j) : NULL;
    LLVMValueRef out = rd_add(k, rd_mul(k, p, cg_i64(k, len)), rd_add(k, j0, j));
    rd_store(k, r->yt, r->y, out, r->at, finish(r, cg_load(k, r->at, ws, j), shift));
    cg_loop_end(k, &lf);
    cg_loop_end(k, &l);
}

/* Reduces x over the dims in mask into y (shapes already inferred); with
 * a prologue, x is evaluated from its operands instead of loaded. */
static gr_code emit_reduction(cg_kernel *k, rkind kind, const gr_value *xv, const gr_value *yv,
                              const int *mask, struct cg_prologue *pro, gr_status *st) {
    rd r;
    memset(&r, 0, sizeof r);
    r.k = k;
    r.kind = kind;
    r.xt = xv->dtype;
    r.yt = yv->dtype;
    r.at = acc_dtype(kind, r.xt);
    r.y = cg_arg(k, yv);
    r.pro = pro;
    GR_TRY(read_sources(&r, xv, mask, st));
    int64_t n_out = gr_value_numel(yv);
    if (n_out == 0) return GR_OK;
    if (r.red[r.n - 1]) emit_inner(&r, n_out);
    else emit_rows(&r, n_out);
    return GR_OK;
}

static rkind kind_of(gr_op op) {
    switch (op) {
    case GR_OP_REDUCE_MEAN: case GR_OP_GLOBAL_AVERAGE_POOL: return RK_MEAN;
    case GR_OP_REDUCE_MAX: case GR_OP_GLOBAL_MAX_POOL: return RK_MAX;
    case GR_OP_REDUCE_MIN: return RK_MIN;
    case GR_OP_REDUCE_PROD: return RK_PROD;
    case GR_OP_REDUCE_L1: return RK_L1;
    case GR_OP_REDUCE_L2: return RK_L2;
    case GR_OP_REDUCE_SUM_SQUARE: return RK_SUMSQ;
    case GR_OP_REDUCE_LOG_SUM: return RK_LOGSUM;
    case GR_OP_REDUCE_LOG_SUM_EXP: return RK_LSE;
    default: return RK_SUM;
    }
}

/* The reduced dims of n's data input in mask (GlobalXPool: the spatial
 * dims; ReduceX: its constant axes, or all dims without any). *noop: a
 * ReduceX with no axes and noop_with_empty_axes, whose output is x. */
static gr_code reduce_mask(const gr_node *n, int *mask, int *noop, gr_status *st) {
    const gr_value *x = n->inputs[0], *av = n->n_inputs > 1 ? n->inputs[1] : NULL;
    int rank = x->shape.rank;
    int64_t axes[GR_MAX_RANK + 1], count = 0;
    memset(mask, 0, sizeof(int) * GR_MAX_RANK);
    *noop = 0;
    if (n->op == GR_OP_GLOBAL_AVERAGE_POOL || n->op == GR_OP_GLOBAL_MAX_POOL) {
        for (int i = 2; i < rank; i++) mask[i] = 1;
        return GR_OK;
    }
    if (av) {
        count = gr_value_const_ints(av, axes, GR_MAX_RANK + 1);
        if (count < 0)
            return gr_fail(st, GR_ERR_UNSUPPORTED,
                           "axes '%s' is computed at run time; only constant axes are compiled",
                           av->name);
        if (count > rank)
            return gr_fail(st, GR_ERR_BAD_MODEL, "axes has %lld values for rank %d",
                           (long long)count, rank);
    }
    if (count == 0 && gr_node_int(n, "noop_with_empty_axes", 0)) {
        *noop = 1;
        return GR_OK;
    }
    for (int64_t i = 0; i < count; i++) {
        int a = 0;
        GR_TRY(rd_axis(n, axes[i], rank, &a, st));
        mask[a] = 1;
    }
    if (count == 0)
        for (int i = 0; i < rank; i++) mask[i] = 1;
    return GR_OK;
}

/* data:[d0..] axes?:i64[k] (constant) -> reduced (keepdims or not). */
gr_code cg_emit_reduce(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                       gr_status *st) {
    const gr_value *x = n->inputs[0];
    int mask[GR_MAX_RANK], noop = 0;
    GR_TRY(reduce_mask(n, mask, &noop, st));
    if (noop) return cg_emit_copy(m, n, name, k, st); /* the output is the input */
    if (x->dtype == GR_DTYPE_STRING)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "string tensors cannot be reduced");
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    GR_TRY(emit_reduction(k, kind_of(n->op), x, n->outputs[0], mask, NULL, st));
    return cg_kernel_end(k, st);
}

/* X:[N,C,D1..] -> Y:[N,C,1..]: mean or max over the spatial dims. */
gr_code cg_emit_global_pool(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                            gr_status *st) {
    return cg_emit_reduce(m, n, name, k, st);
}

int cg_prologue_root(const gr_node *n) {
    if (n->n_inputs < 1 || !n->inputs[0] || n->n_outputs != 1 || !n->outputs[0]) return 0;
    if (cg_emitter(n->op) != cg_emit_reduce && cg_emitter(n->op) != cg_emit_global_pool) return 0;
    int mask[GR_MAX_RANK], noop = 0;
    gr_status ignored = {0};
    return reduce_mask(n, mask, &noop, &ignored) == GR_OK && !noop &&
           n->inputs[0]->dtype != GR_DTYPE_STRING;
}

gr_code cg_emit_reduce_prologue(cg_module *m, const gr_node *n, struct cg_prologue *pro,
                                const char *name, cg_kernel *k, gr_status *st) {
    int mask[GR_MAX_RANK], noop = 0;
    GR_TRY(reduce_mask(n, mask, &noop, st));
    if (noop || !cg_prologue_root(n))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "node '%s' (%s) cannot run a prologue", n->name,
                       n->op_type);
    const gr_value *args[CG_MAX_ARGS];
    int count = cg_prologue_n_operands(pro);
    for (int i = 0; i < count; i++) args[i] = cg_prologue_operand(pro, i);
    args[count] = n->outputs[0];
    GR_TRY(cg_kernel_begin(m, k, name, count + 1, args, st));
    GR_TRY(emit_reduction(k, kind_of(n->op), n->inputs[0], n->outputs[0], mask, pro, st));
    return cg_kernel_end(k, st);
}
