/* eval.c: a small, exact reference evaluator for constant folding:
 * elementwise arithmetic with numpy broadcasting, comparisons and logic,
 * Where, Cast, Clip, a few unary ops and the reductions used in shape
 * arithmetic. Integers are computed in int64 (wrapping like the hardware,
 * Div truncating like C), floats in double, then stored in the output's
 * dtype. Data movement ops live in eval_move.c. Output dtypes and shapes
 * come from the shape rule; the evaluator checks the shapes it derives. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "passes/passes_internal.h"

gr_code gr_eval_fail(const gr_node *n, gr_status *st, gr_code code,
                     const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gr_fail(st, code, "node '%s' (%s): %s", n->name, n->op_type, msg);
}

gr_code gr_eval_check_shape(const gr_node *n, const gr_tensor *out,
                            const gr_shape *r, gr_status *st) {
    int same = out->shape.rank == r->rank;
    for (int d = 0; same && d < r->rank; d++) same = out->shape.dims[d] == r->dims[d];
    if (same) return GR_OK;
    char a[256], b[256];
    return gr_eval_fail(n, st, GR_ERR_INTERNAL,
                     "evaluation gives %s but the shape rule gave %s",
                     gr_shape_str(r, a, sizeof a), gr_shape_str(&out->shape, b, sizeof b));
}

/* --- broadcasting ------------------------------------------------------ */

gr_code gr_eval_broadcast(const gr_node *n, const gr_shape *a, const gr_shape *b,
                          gr_shape *out, gr_status *st) {
    gr_shape r = gr_shape_scalar();
    r.rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r.rank; i++) {
        int ia = a->rank - r.rank + i, ib = b->rank - r.rank + i;
        int64_t x = ia >= 0 ? a->dims[ia] : 1, y = ib >= 0 ? b->dims[ib] : 1;
        if (x != y && x != 1 && y != 1) {
            char sa[256], sb[256];
            return gr_eval_fail(n, st, GR_ERR_BAD_MODEL, "shapes %s and %s do not broadcast",
                             gr_shape_str(a, sa, sizeof sa), gr_shape_str(b, sb, sizeof sb));
        }
        r.dims[i] = x == 1 ? y : x;
    }
    *out = r;
    return GR_OK;
}

/* Element strides of `in` broadcast to `out` (0 along broadcast dims). */
void gr_eval_bcast_strides(const gr_shape *in, const gr_shape *out,
                           int64_t strides[GR_MAX_RANK]) {
    int64_t s = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int id = in->rank - out->rank + d;
        int64_t dim = id >= 0 ? in->dims[id] : 1;
        strides[d] = dim == 1 ? 0 : s;
        s *= dim;
    }
}

/* Offset in an input (with bcast_strides) of output element i. */
int64_t gr_eval_bcast_offset(int64_t i, const gr_shape *out, const int64_t *strides) {
    int64_t off = 0;
    for (int d = out->rank - 1; d >= 0; d--) {
        off += (i % out->dims[d]) * strides[d];
        i /= out->dims[d];
    }
    return off;
}

static int is_int(gr_dtype t) { return gr_dtype_is_int(t) || t == GR_DTYPE_BOOL; }

/* --- binary arithmetic ------------------------------------------------- */

static gr_code int_binary(const gr_node *n, gr_dtype t, int64_t a, int64_t b,
                          int64_t *r, gr_status *st) {
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    int u = t == GR_DTYPE_U64;
    if ((n->op == GR_OP_DIV || n->op == GR_OP_MOD) && b == 0)
        return gr_eval_fail(n, st, GR_ERR_NUMERIC, "integer division by zero");
    switch (n->op) {
    case GR_OP_ADD: case GR_OP_SUM: *r = (int64_t)(ua + ub); break;
    case GR_OP_SUB: *r = (int64_t)(ua - ub); break;
    case GR_OP_MUL: *r = (int64_t)(ua * ub); break;
    case GR_OP_DIV:
        if (u) *r = (int64_t)(ua / ub);
        else *r = a == INT64_MIN && b == -1 ? INT64_MIN : a / b;
        break;
    case GR_OP_MOD:
        if (u) { *r = (int64_t)(ua % ub); break; }
        *r = b == -1 ? 0 : a % b;
        if (!gr_node_int(n, "fmod", 0) && *r != 0 && ((*r < 0) != (b < 0))) *r += b;
        break;
    case GR_OP_MAX: *r = (u ? ua > ub : a > b) ? a : b; break;
    case GR_OP_MIN: *r = (u ? ua < ub : a < b) ? a : b; break;
    default:
        return gr_eval_fail(n, st, GR_ERR_UNSUPPORTED, "no integer evaluation");
    }
    return GR_OK;
}

static double float_binary(const gr_node *n, double a, double b) {
    switch (n->op) {
    case GR_OP_ADD: case GR_OP_SUM: case GR_OP_MEAN: return a + b;
    case GR_OP_SUB: return a - b;
    case GR_OP_MUL: return a * b;
    case GR_OP_DIV: return a / b;
    case GR_OP_POW: return pow(a, b);
    case GR_OP_MOD: {
        double r = fmod(a, b);
        if (!gr_node_int(n, "fmod", 0) && r != 0 && ((r < 0) != (b < 0))) r += b;
        return r;
    }
    case GR_OP_MAX: return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
    case GR_OP_MIN: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
    default: return NAN;
    }
}

/* Integer power by squaring (wrapping). A negative exponent gives what
 * the float result truncates to: 1 for 1, +-1 for -1, 0 otherwise. */
static int64_t int_pow(int64_t base, int64_t e) {
    if (e < 0) return base == 1 ? 1 : base == -1 ? (e % 2 ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    for (uint64_t k = (uint64_t)e; k; k >>= 1, b *= b)
        if (k & 1) r *= b;
    return (int64_t)r;
}

/* One element of a binary op: a at offset oa, b at ob, into out[i]. */
static gr_code binary_elem(const gr_node *n, const gr_tensor *a, int64_t oa,
                           const gr_tensor *b, int64_t ob, gr_tensor *out,
                           int64_t i, gr_status *st) {
    if (is_int(out->dtype) && is_int(b->dtype)) {
        int64_t x = gr_dtype_load_i64(a->dtype, a->data, oa);
        int64_t y = gr_dtype_load_i64(b->dtype, b->data, ob), r = 0;
        if (n->op == GR_OP_POW && x == 0 && y < 0)
            return gr_eval_fail(n, st, GR_ERR_NUMERIC, "integer 0 to a negative power");
        if (n->op == GR_OP_POW) r = int_pow(x, y);
        else GR_TRY(int_binary(n, out->dtype, x, y, &r, st));
        gr_dtype_store_i64(out->dtype, out->data, i, r);
        return GR_OK;
    }
    double x = gr_dtype_load_f64(a->dtype, a->data, oa);
    double y = gr_dtype_load_f64(b->dtype, b->data, ob);
    double r = n->op == GR_OP_POW ? pow(x, y) : float_binary(n, x, y);
    gr_dtype_store_f64(out->dtype, out->data, i, r);
    return GR_OK;
}

static gr_code eval_binary(const gr_node *n, const gr_tensor *a, const gr_tensor *b,
                           gr_tensor *out, gr_status *st) {
    gr_shape r;
    int64_t sa[GR_MAX_RANK], sb[GR_MAX_RANK];
    GR_TRY(gr_eval_broadcast(n, &a->shape, &b->shape, &r, st));
    GR_TRY(gr_eval_check_shape(n, out, &r, st));
    gr_eval_bcast_strides(&a->shape, &r, sa);
    gr_eval_bcast_strides(&b->shape, &r, sb);
    int64_t numel = gr_shape_numel(&r);
    for (int64_t i = 0; i < numel; i++)
        GR_TRY(binary_elem(n, a, gr_eval_bcast_offset(i, &r, sa), b,
                           gr_eval_bcast_offset(i, &r, sb), out, i, st));
    return GR_OK;
}

/* Max/Min/Sum/Mean: folded left to right into out (same dtype). */
static gr_code eval_variadic(const gr_node *n, const gr_tensor *const *in,
                             gr_tensor *out, gr_status *st) {
    gr_shape r = in[0]->shape;
    for (int k = 1; k < n->n_inputs; k++)
        GR_TRY(gr_eval_broadcast(n, &r, &in[k]->shape, &r, st));
    GR_TRY(gr_eval_check_shape(n, out, &r, st));
    int64_t numel = gr_shape_numel(&r), s[GR_MAX_RANK];
    size_t es = gr_dtype_size(out->dtype);
    gr_tensor acc = *out;
    acc.shape = r;
    for (int k = 0; k < n->n_inputs; k++) {
        gr_eval_bcast_strides(&in[k]->shape, &r, s);
        for (int64_t i = 0; i < numel; i++) {
            int64_t o = gr_eval_bcast_offset(i, &r, s);
            if (k == 0)
                memcpy((char *)out->data + (size_t)i * es,
                       (const char *)in[0]->data + (size_t)o * es, es);
            else
                GR_TRY(binary_elem(n, &acc, i, in[k], o, out, i, st));
        }
    }
    if (n->op == GR_OP_MEAN)
        for (int64_t i = 0; i < numel; i++)
            gr_dtype_store_f64(out->dtype, out->data, i,
                               gr_dtype_load_f64(out->dtype, out->data, i) / n->n_inputs);
    return GR_OK;
}

/* --- comparisons, logic, Where ----------------------------------------- */

static int compare_elem(gr_op op, const gr_tensor *a, int64_t oa, const gr_tensor *b,
                        int64_t ob) {
    int c; /* -1, 0, 1; 2 if unordered (NaN) */
    if (is_int(a->dtype)) {
        int64_t x = gr_dtype_load_i64(a->dtype, a->data, oa);
        int64_t y = gr_dtype_load_i64(b->dtype, b->data, ob);
        if (a->dtype == GR_DTYPE_U64) c = (uint64_t)x < (uint64_t)y ? -1 : x == y ? 0 : 1;
        else c = x < y ? -1 : x == y ? 0 : 1;
    } else {
        double x = gr_dtype_load_f64(a->dtype, a->data, oa);
        double y = gr_dtype_load_f64(b->dtype, b->data, ob);
        c = x < y ? -1 : x == y ? 0 : x > y ? 1 : 2;
    }
    switch (op) {
    case GR_OP_EQUAL: return c == 0;
    case GR_OP_LESS: return c == -1;
    case GR_OP_GREATER: return c == 1;
    case GR_OP_LESS_OR_EQUAL: return c == -1 || c == 0;
    case GR_OP_GREATER_OR_EQUAL: return c == 1 || c == 0;
    default: break;
    }
    int x = gr_dtype_load_i64(a->dtype, a->data, oa) != 0;
    int y = gr_dtype_load_i64(b->dtype, b->data, ob) != 0;
    return op == GR_OP_AND ? x && y : op == GR_OP_OR ? x || y : x != y; /* Xor */
}

static gr_code eval_compare(const gr_node *n, const gr_tensor *a, const gr_tensor *b,
                            gr_tensor *out, gr_status *st) {
    gr_shape r;
    int64_t sa[GR_MAX_RANK], sb[GR_MAX_RANK];
    GR_TRY(gr_eval_broadcast(n, &a->shape, &b->shape, &r, st));
    GR_TRY(gr_eval_check_shape(n, out, &r, st));
    gr_eval_bcast_strides(&a->shape, &r, sa);
    gr_eval_bcast_strides(&b->shape, &r, sb);
    int64_t numel = gr_shape_numel(&r);
    for (int64_t i = 0; i < numel; i++)
        gr_dtype_store_i64(out->dtype, out->data, i,
                           compare_elem(n->op, a, gr_eval_bcast_offset(i, &r, sa), b,
                                        gr_eval_bcast_offset(i, &r, sb)));
    return GR_OK;
}

static gr_code eval_where(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                          gr_status *st) {
    gr_shape r;
    int64_t sc[GR_MAX_RANK], sx[GR_MAX_RANK], sy[GR_MAX_RANK];
    GR_TRY(gr_eval_broadcast(n, &in[0]->shape, &in[1]->shape, &r, st));
    GR_TRY(gr_eval_broadcast(n, &r, &in[2]->shape, &r, st));
    GR_TRY(gr_eval_check_shape(n, out, &r, st));
    gr_eval_bcast_strides(&in[0]->shape, &r, sc);
    gr_eval_bcast_strides(&in[1]->shape, &r, sx);
    gr_eval_bcast_strides(&in[2]->shape, &r, sy);
    size_t es = gr_dtype_size(out->dtype);
    int64_t numel = gr_shape_numel(&r);
    for (int64_t i = 0; i < numel; i++) {
        int64_t oc = gr_eval_bcast_offset(i, &r, sc);
        int c = gr_dtype_load_i64(in[0]->dtype, in[0]->data, oc) != 0;
        const gr_tensor *src = c ? in[1] : in[2];
        int64_t o = gr_eval_bcast_offset(i, &r, c ? sx : sy);
        memcpy((char *)out->data + (size_t)i * es, (const char *)src->data + (size_t)o * es,
               es);
    }
    return GR_OK;
}

/* --- unary, Cast, Clip ------------------------------------------------- */

static int64_t int_unary(gr_op op, gr_dtype t, int64_t x) {
    int64_t neg = (int64_t)(0 - (uint64_t)x); /* wraps like the hardware */
    switch (op) {
    case GR_OP_NEG: return neg;
    case GR_OP_ABS: return x < 0 && t != GR_DTYPE_U64 ? neg : x;
    case GR_OP_NOT: return !x;
    default: return x; /* Floor, Ceil of integers */
    }
}

static double float_unary(gr_op op, double x) {
    switch (op) {
    case GR_OP_NEG: return -x;
    case GR_OP_ABS: return fabs(x);
    case GR_OP_FLOOR: return floor(x);
    case GR_OP_CEIL: return ceil(x);
    default: return sqrt(x);
    }
}

static gr_code eval_unary(const gr_node *n, const gr_tensor *a, gr_tensor *out,
                          gr_status *st) {
    GR_TRY(gr_eval_check_shape(n, out, &a->shape, st));
    int64_t numel = gr_shape_numel(&a->shape);
    int ints = is_int(a->dtype) && n->op != GR_OP_SQRT;
    for (int64_t i = 0; i < numel; i++) {
        if (ints)
            gr_dtype_store_i64(out->dtype, out->data, i,
                               int_unary(n->op, a->dtype,
                                         gr_dtype_load_i64(a->dtype, a->data, i)));
        else
            gr_dtype_store_f64(out->dtype, out->data, i,
                               float_unary(n->op, gr_dtype_load_f64(a->dtype, a->data, i)));
    }
    return GR_OK;
}

/* Cast (and CastLike): integers stay exact; float -> int truncates. */
static gr_code eval_cast(const gr_node *n, const gr_tensor *a, gr_tensor *out,
                         gr_status *st) {
    GR_TRY(gr_eval_check_shape(n, out, &a->shape, st));
    int64_t numel = gr_shape_numel(&a->shape);
    int exact = is_int(a->dtype) && is_int(out->dtype);
    for (int64_t i = 0; i < numel; i++) {
        if (exact) {
            int64_t x = gr_dtype_load_i64(a->dtype, a->data, i);
            gr_dtype_store_i64(out->dtype, out->data, i, x);
        } else {
            double x = gr_dtype_load_f64(a->dtype, a->data, i);
            gr_dtype_store_f64(out->dtype, out->data, i, x);
        }
    }
    return GR_OK;
}

/* Clip: min(max(x, lo), hi); an omitted bound does not clip. */
static gr_code eval_clip(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                         gr_status *st) {
    const gr_tensor *a = in[0];
    const gr_tensor *lo = n->n_inputs > 1 ? in[1] : NULL;
    const gr_tensor *hi = n->n_inputs > 2 ? in[2] : NULL;
    GR_TRY(gr_eval_check_shape(n, out, &a->shape, st));
    if ((lo && gr_shape_numel(&lo->shape) != 1) || (hi && gr_shape_numel(&hi->shape) != 1))
        return gr_eval_fail(n, st, GR_ERR_BAD_MODEL, "min and max must be scalars");
    int64_t numel = gr_shape_numel(&a->shape);
    if (is_int(a->dtype)) {
        int64_t l = lo ? gr_dtype_load_i64(lo->dtype, lo->data, 0) : INT64_MIN;
        int64_t h = hi ? gr_dtype_load_i64(hi->dtype, hi->data, 0) : INT64_MAX;
        for (int64_t i = 0; i < numel; i++) {
            int64_t x = gr_dtype_load_i64(a->dtype, a->data, i);
            x = x < l ? l : x;
            gr_dtype_store_i64(out->dtype, out->data, i, x > h ? h : x);
        }
        return GR_OK;
    }
    double l = lo ? gr_dtype_load_f64(lo->dtype, lo->data, 0) : -INFINITY;
    double h = hi ? gr_dtype_load_f64(hi->dtype, hi->data, 0) : INFINITY;
    for (int64_t i = 0; i < numel; i++) {
        double x = gr_dtype_load_f64(a->dtype, a->data, i);
        x = x < l ? l : x;
        gr_dtype_store_f64(out->dtype, out->data, i, x > h ? h : x);
    }
    return GR_OK;
}

/* --- reductions (ReduceSum/Prod/Max/Min) ------------------------------- */

/* Which axes of a rank-r input are reduced; 0 if none (noop). */
static gr_code reduce_axes(const gr_node *n, const gr_tensor *axes, int rank,
                           int reduced[GR_MAX_RANK], int *any, gr_status *st) {
    int64_t count = axes ? gr_shape_numel(&axes->shape) : 0;
    memset(reduced, 0, sizeof(int) * GR_MAX_RANK);
    *any = 1;
    if (count == 0) {
        if (gr_node_int(n, "noop_with_empty_axes", 0)) *any = 0;
        for (int d = 0; d < rank; d++) reduced[d] = 1;
        return GR_OK;
    }
    for (int64_t k = 0; k < count; k++) {
        int64_t ax = gr_dtype_load_i64(axes->dtype, axes->data, k);
        if (ax < -rank || ax >= rank)
            return gr_eval_fail(n, st, GR_ERR_BAD_MODEL,
                                "axis %lld is out of range for rank %d", (long long)ax, rank);
        reduced[ax < 0 ? ax + rank : ax] = 1;
    }
    return GR_OK;
}

static double reduce_init(gr_op op) {
    return op == GR_OP_REDUCE_PROD ? 1.0 : op == GR_OP_REDUCE_MAX ? -INFINITY
           : op == GR_OP_REDUCE_MIN ? INFINITY : 0.0;
}

static gr_code eval_reduce(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                           gr_status *st) {
    const gr_tensor *a = in[0];
    int reduced[GR_MAX_RANK], any, keep = (int)gr_node_int(n, "keepdims", 1);
    GR_TRY(reduce_axes(n, n->n_inputs > 1 ? in[1] : NULL, a->shape.rank, reduced, &any, st));
    gr_shape kept = a->shape, r = gr_shape_scalar();
    for (int d = 0; d < a->shape.rank; d++) {
        if (any && reduced[d]) kept.dims[d] = 1;
        if (!(any && reduced[d]) || keep) r.dims[r.rank++] = kept.dims[d];
    }
    GR_TRY(gr_eval_check_shape(n, out, &r, st));
    int64_t numel = gr_shape_numel(&a->shape), on = gr_shape_numel(&r), s[GR_MAX_RANK];
    int ints = is_int(out->dtype);
    double *accf = gr_calloc((size_t)on + 1, sizeof(double));
    int64_t *acci = gr_calloc((size_t)on + 1, sizeof(int64_t));
    if (!accf || !acci) {
        gr_free(accf);
        gr_free(acci);
        return gr_eval_fail(n, st, GR_ERR_NOMEM, "out of memory");
    }
    for (int64_t j = 0; j < on; j++) {
        accf[j] = reduce_init(n->op);
        acci[j] = n->op == GR_OP_REDUCE_PROD ? 1 : n->op == GR_OP_REDUCE_MAX ? INT64_MIN
                  : n->op == GR_OP_REDUCE_MIN ? INT64_MAX : 0;
    }
    /* Input element i lands in kept-shape element j (strides of kept). */
    gr_shape ks = kept;
    for (int d = 0; d < ks.rank; d++) ks.dims[d] = a->shape.dims[d];
    gr_eval_bcast_strides(&kept, &ks, s);
    for (int64_t i = 0; i < numel; i++) {
        int64_t j = gr_eval_bcast_offset(i, &ks, s);
        if (ints) {
            int64_t x = gr_dtype_load_i64(a->dtype, a->data, i);
            uint64_t u = (uint64_t)acci[j];
            acci[j] = n->op == GR_OP_REDUCE_SUM ? (int64_t)(u + (uint64_t)x)
                      : n->op == GR_OP_REDUCE_PROD ? (int64_t)(u * (uint64_t)x)
                      : n->op == GR_OP_REDUCE_MAX ? (x > acci[j] ? x : acci[j])
                      : (x < acci[j] ? x : acci[j]);
        } else {
            double x = gr_dtype_load_f64(a->dtype, a->data, i);
            accf[j] = n->op == GR_OP_REDUCE_SUM ? accf[j] + x
                      : n->op == GR_OP_REDUCE_PROD ? accf[j] * x
                      : n->op == GR_OP_REDUCE_MAX ? (x > accf[j] || isnan(x) ? x : accf[j])
                      : (x < accf[j] || isnan(x) ? x : accf[j]);
        }
    }
    for (int64_t j = 0; j < on; j++) {
        if (ints) gr_dtype_store_i64(out->dtype, out->data, j, acci[j]);
        else gr_dtype_store_f64(out->dtype, out->data, j, accf[j]);
    }
    gr_free(accf);
    gr_free(acci);
    return GR_OK;
}

/* --- dispatch ------------------------------------------------------------ */

int gr_eval_supports(gr_op op) {
    switch (op) {
    case GR_OP_ADD: case GR_OP_SUB: case GR_OP_MUL: case GR_OP_DIV: case GR_OP_MOD:
    case GR_OP_POW: case GR_OP_MAX: case GR_OP_MIN: case GR_OP_SUM: case GR_OP_MEAN:
    case GR_OP_EQUAL: case GR_OP_LESS: case GR_OP_GREATER: case GR_OP_LESS_OR_EQUAL:
    case GR_OP_GREATER_OR_EQUAL: case GR_OP_AND: case GR_OP_OR: case GR_OP_XOR:
    case GR_OP_NOT: case GR_OP_NEG: case GR_OP_ABS: case GR_OP_FLOOR: case GR_OP_CEIL:
    case GR_OP_SQRT: case GR_OP_WHERE: case GR_OP_CAST: case GR_OP_CAST_LIKE:
    case GR_OP_CLIP: case GR_OP_REDUCE_SUM: case GR_OP_REDUCE_PROD:
    case GR_OP_REDUCE_MAX: case GR_OP_REDUCE_MIN:
        return 1;
    default:
        return gr_eval_move_supports(op);
    }
}

/* Inputs the op needs: present, with data unless only the shape is read. */
static gr_code check_inputs(const gr_node *n, const gr_tensor *const *in, gr_status *st) {
    for (int i = 0; i < n->n_inputs; i++) {
        const gr_tensor *t = in[i];
        if (!t) continue;
        if (n->op == GR_OP_SHAPE) {
            if (t->shape.rank < 0)
                return gr_eval_fail(n, st, GR_ERR_UNSUPPORTED, "input rank is not known");
            continue;
        }
        int64_t numel = gr_shape_numel(&t->shape);
        if (numel < 0)
            return gr_eval_fail(n, st, GR_ERR_UNSUPPORTED, "input %d has no static shape", i);
        if (n->op == GR_OP_SIZE) continue;
        if (gr_dtype_size(t->dtype) == 0)
            return gr_eval_fail(n, st, GR_ERR_UNSUPPORTED, "input %d is not a dense tensor", i);
        if (t->nbytes != (size_t)numel * gr_dtype_size(t->dtype) || (numel && !t->data))
            return gr_eval_fail(n, st, GR_ERR_INTERNAL, "input %d has no data", i);
    }
    return GR_OK;
}

gr_code gr_eval_node(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                     gr_status *st) {
    if (!gr_eval_supports(n->op))
        return gr_eval_fail(n, st, GR_ERR_UNSUPPORTED, "the evaluator cannot compute this op");
    GR_TRY(check_inputs(n, in, st));
    const gr_op_info *info = gr_op_info_of(n->op);
    for (int i = 0; i < info->in_min && i < n->n_inputs; i++)
        if (!in[i]) return gr_eval_fail(n, st, GR_ERR_BAD_MODEL, "input %d is missing", i);
    if (n->n_outputs < 1 || gr_shape_numel(&out[0].shape) < 0 ||
        out[0].nbytes != (size_t)gr_shape_numel(&out[0].shape) * gr_dtype_size(out[0].dtype))
        return gr_eval_fail(n, st, GR_ERR_INTERNAL, "output 0 has no static shape or buffer");
    switch (n->op) {
    case GR_OP_ADD: case GR_OP_SUB: case GR_OP_MUL: case GR_OP_DIV: case GR_OP_MOD:
    case GR_OP_POW:
        return eval_binary(n, in[0], in[1], out, st);
    case GR_OP_MAX: case GR_OP_MIN: case GR_OP_SUM: case GR_OP_MEAN:
        for (int i = 0; i < n->n_inputs; i++)
            if (!in[i]) return gr_eval_fail(n, st, GR_ERR_BAD_MODEL, "input %d is missing", i);
        return eval_variadic(n, in, out, st);
    case GR_OP_EQUAL: case GR_OP_LESS: case GR_OP_GREATER: case GR_OP_LESS_OR_EQUAL:
    case GR_OP_GREATER_OR_EQUAL: case GR_OP_AND: case GR_OP_OR: case GR_OP_XOR:
        return eval_compare(n, in[0], in[1], out, st);
    case GR_OP_NOT: case GR_OP_NEG: case GR_OP_ABS: case GR_OP_FLOOR: case GR_OP_CEIL:
    case GR_OP_SQRT:
        return eval_unary(n, in[0], out, st);
    case GR_OP_WHERE: return eval_where(n, in, out, st);
    case GR_OP_CAST: case GR_OP_CAST_LIKE: return eval_cast(n, in[0], out, st);
    case GR_OP_CLIP: return eval_clip(n, in, out, st);
    case GR_OP_REDUCE_SUM: case GR_OP_REDUCE_PROD: case GR_OP_REDUCE_MAX:
    case GR_OP_REDUCE_MIN:
        return eval_reduce(n, in, out, st);
    default:
        return gr_eval_move(n, in, out, st);
    }
}
