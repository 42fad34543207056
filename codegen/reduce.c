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

/* The reduction's input as merged groups of dims (size-1 dims dropped). */
typedef struct {
    cg_kernel *k;
    rkind kind;
    gr_dtype xt, yt, at; /* input, output, accumulator dtypes */
    LLVMValueRef x, y;
    int n;
    int64_t dim[GR_MAX_RANK], stride[GR_MAX_RANK];
    int red[GR_MAX_RANK];
    int n_red, red_idx[GR_MAX_RANK];
    int64_t count;       /* elements reduced into each output */
} rd;

static void merge_groups(rd *r, const gr_shape *s, const int *mask) {
    r->n = 0;
    r->count = 1;
    for (int i = 0; i < s->rank; i++) {
        if (mask[i]) r->count *= s->dims[i];
        if (s->dims[i] == 1) continue;
        if (r->n > 0 && r->red[r->n - 1] == mask[i]) {
            r->dim[r->n - 1] *= s->dims[i];
            continue;
        }
        r->dim[r->n] = s->dims[i];
        r->red[r->n++] = mask[i];
    }
    if (r->n == 0) { /* all dims are 1: one kept group of one element */
        r->dim[0] = 1;
        r->red[0] = 0;
        r->n = 1;
    }
    int64_t stride = 1;
    r->n_red = 0;
    for (int g = r->n - 1; g >= 0; g--) {
        r->stride[g] = stride;
        stride *= r->dim[g];
    }
    for (int g = 0; g < r->n; g++)
        if (r->red[g]) r->red_idx[r->n_red++] = g;
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

/* Input offset of element o of the kept groups among the first n_groups
 * groups (row-major over those kept groups; reduced groups contribute 0). */
static LLVMValueRef kept_offset(const rd *r, LLVMValueRef o, int n_groups) {
    cg_kernel *k = r->k;
    LLVMValueRef off = cg_i64(k, 0);
    for (int g = n_groups - 1; g >= 0; g--) {
        if (r->red[g]) continue;
        LLVMValueRef idx = LLVMBuildURem(k->b, o, cg_i64(k, r->dim[g]), "");
        o = LLVMBuildUDiv(k->b, o, cg_i64(k, r->dim[g]), "");
        off = rd_add(k, off, rd_mul(k, idx, cg_i64(k, r->stride[g])));
    }
    return off;
}

/* Last group reduced: acc over the reduced groups from level on; the
 * innermost (contiguous) loop is marked for vectorisation. */
static LLVMValueRef nest_inner(const rd *r, rkind kind, int level, LLVMValueRef off,
                               LLVMValueRef acc, LLVMValueRef shift) {
    cg_kernel *k = r->k;
    int g = r->red_idx[level];
    if (level == r->n_red - 1 && (kind == RK_MAX || kind == RK_MIN) &&
        gr_dtype_is_float(r->xt) && r->xt == r->at)
        return rd_vec_minmax(k, r->at, kind == RK_MIN, r->x, off, r->dim[g], acc);
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(k, &l, cg_i64(k, 0), cg_i64(k, r->dim[g]), 1);
    LLVMValueRef a = cg_loop_acc(k, &l, acc);
    LLVMValueRef o = rd_add(k, off, rd_mul(k, i, cg_i64(k, r->stride[g])));
    LLVMValueRef next;
    if (level == r->n_red - 1) {
        l.vectorize = 1;
        next = step(r, kind, a, rd_load(k, r->xt, r->x, o, r->at), shift);
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
    LLVMValueRef base = kept_offset(r, o, r->n);
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
 * ws[j] (+)= x[off + j] for j < jn, contiguous. */
static void nest_rows(const rd *r, rkind kind, int level, LLVMValueRef off, LLVMValueRef ws,
                     LLVMValueRef shift_ws, LLVMValueRef jn) {
    cg_kernel *k = r->k;
    if (level == r->n_red) {
        cg_loop l;
        LLVMValueRef j = cg_loop_begin(k, &l, cg_i64(k, 0), jn, 1);
        LLVMValueRef shift = shift_ws ? cg_load(k, r->at, shift_ws, j) : NULL;
        LLVMValueRef x = rd_load(k, r->xt, r->x, rd_add(k, off, j), r->at);
        cg_store(k, r->at, ws, j, step(r, kind, cg_load(k, r->at, ws, j), x, shift));
        cg_loop_end(k, &l);
        return;
    }
    int g = r->red_idx[level];
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(k, &l, cg_i64(k, 0), cg_i64(k, r->dim[g]), 1);
    nest_rows(r, kind, level + 1, rd_add(k, off, rd_mul(k, i, cg_i64(k, r->stride[g]))), ws,
              shift_ws, jn);
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
    LLVMValueRef base = rd_add(k, kept_offset(r, p, r->n - 1), j0);
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

/* Reduces x over the dims in mask into y (shapes already inferred). */
static gr_code emit_reduction(cg_kernel *k, rkind kind, const gr_value *xv, const gr_value *yv,
                              const int *mask) {
    rd r;
    memset(&r, 0, sizeof r);
    r.k = k;
    r.kind = kind;
    r.xt = xv->dtype;
    r.yt = yv->dtype;
    r.at = acc_dtype(kind, r.xt);
    r.x = cg_arg(k, xv);
    r.y = cg_arg(k, yv);
    merge_groups(&r, &xv->shape, mask);
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

/* data:[d0..] axes?:i64[k] (constant) -> reduced (keepdims or not). */
gr_code cg_emit_reduce(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                       gr_status *st) {
    const gr_value *x = n->inputs[0], *av = n->n_inputs > 1 ? n->inputs[1] : NULL;
    int rank = x->shape.rank, mask[GR_MAX_RANK] = {0};
    int64_t axes[GR_MAX_RANK + 1], count = 0;
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
    if (count == 0 && gr_node_int(n, "noop_with_empty_axes", 0))
        return cg_emit_copy(m, n, name, k, st); /* the output is the input */
    for (int64_t i = 0; i < count; i++) {
        int a = 0;
        GR_TRY(rd_axis(n, axes[i], rank, &a, st));
        mask[a] = 1;
    }
    if (count == 0)
        for (int i = 0; i < rank; i++) mask[i] = 1;
    if (x->dtype == GR_DTYPE_STRING)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "string tensors cannot be reduced");
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    GR_TRY(emit_reduction(k, kind_of(n->op), x, n->outputs[0], mask));
    return cg_kernel_end(k, st);
}

/* X:[N,C,D1..] -> Y:[N,C,1..]: mean or max over the spatial dims. */
gr_code cg_emit_global_pool(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                            gr_status *st) {
    const gr_value *x = n->inputs[0];
    int mask[GR_MAX_RANK] = {0};
    for (int i = 2; i < x->shape.rank; i++) mask[i] = 1;
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    GR_TRY(emit_reduction(k, kind_of(n->op), x, n->outputs[0], mask));
    return cg_kernel_end(k, st);
}
