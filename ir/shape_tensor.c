/* shape_tensor.c: shape rules of the data-movement and shape ops (Reshape,
 * Flatten, Transpose, Squeeze, Unsqueeze, Concat, Split, Slice, Gather,
 * Expand, Tile, Pad, Resize) and of Shape, Size, Constant, ConstantOfShape
 * and Range. Shape-giving inputs that are constant give exact shapes; when
 * they are not, the rule keeps what it can (rank, untouched dims). */
#include <math.h>
#include <string.h>

#include "ir/gr_ir.h"
#include "ir/ir_internal.h"

/* Room for pads (2 per axis) and one value past the rank limit. */
#define MAX_LIST (2 * GR_MAX_RANK + 1)

static void set_dim(gr_shape *s, int i, int64_t d) {
    s->dims[i] = d < 0 ? GR_DIM_DYNAMIC : d;
    s->syms[i] = NULL;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

static gr_value *opt_input(const gr_node *n, int i) {
    return i < n->n_inputs ? n->inputs[i] : NULL;
}

static gr_code check_rank(const gr_node *n, int64_t rank, gr_status *st) {
    if (rank > GR_MAX_RANK)
        return gr_node_fail(n, st, GR_ERR_UNSUPPORTED, "output rank %lld is above graft's limit %d",
                            (long long)rank, GR_MAX_RANK);
    return GR_OK;
}

/* Input i must be an integer tensor: i64, or also i32 when allow_i32. */
static gr_code need_index_type(const gr_node *n, int i, const char *what, int allow_i32,
                               gr_status *st) {
    const gr_value *v = opt_input(n, i);
    if (!v || v->dtype == GR_DTYPE_I64 || (allow_i32 && v->dtype == GR_DTYPE_I32)) return GR_OK;
    return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input %d ('%s', %s) is %s, expected %s", i,
                        v->name, what, gr_dtype_name(v->dtype), allow_i32 ? "i32 or i64" : "i64");
}

/* Element count of a 1-D input (its value may be unknown), or -1. */
static int64_t list_length(const gr_value *v) {
    if (!v || v->shape.rank != 1) return -1;
    return v->shape.dims[0];
}

/* Constant integer list in out[MAX_LIST]: the count, or -1 if not constant.
 * Longer lists are GR_ERR_UNSUPPORTED (no valid one fits graft's ranks). */
static gr_code const_list(const gr_node *n, const gr_value *v, int64_t *out, int64_t *count,
                          gr_status *st) {
    *count = v ? gr_value_const_ints(v, out, MAX_LIST) : -1;
    if (*count > MAX_LIST)
        return gr_node_fail(n, st, GR_ERR_UNSUPPORTED, "input '%s' has %lld values, more than %d",
                            v->name, (long long)*count, MAX_LIST);
    return GR_OK;
}

/* Product of dims [from, to) of s as one dim: exact when known, a single
 * symbolic dim times known 1s keeps its symbol, any known 0 gives 0. */
static void product_dim(const gr_shape *s, int from, int to, gr_shape *out, int i) {
    int64_t p = 1;
    int n_dyn = 0, zero = 0, last_dyn = -1;
    for (int j = from; j < to; j++) {
        if (s->dims[j] < 0) {
            n_dyn++;
            last_dyn = j;
        } else if (s->dims[j] == 0) {
            zero = 1;
        } else if (p > INT64_MAX / s->dims[j]) {
            n_dyn++;
        } else {
            p *= s->dims[j];
        }
    }
    if (zero)
        set_dim(out, i, 0);
    else if (n_dyn == 0)
        set_dim(out, i, p);
    else if (n_dyn == 1 && p == 1 && last_dyn >= 0)
        gr_copy_dim(out, i, s, last_dyn);
    else
        set_dim(out, i, GR_DIM_DYNAMIC);
}

/* ----------------------------------------------------------- shape values */

/* A 1-D (or scalar) integer value read as a list of extents. Entries are
 * known numbers, or TRACE_UNKNOWN where a Shape node read a dynamic dim,
 * with that dim's symbol. Tracing follows Shape, Cast to an integer type,
 * Identity, Concat, Slice, Gather, Squeeze and Unsqueeze back through
 * producers, so Reshape(x, Concat(Shape(x)[0:1], [-1])) keeps x's batch
 * symbol although the shape is computed at run time. */
#define TRACE_UNKNOWN INT64_MIN
#define TRACE_DEPTH 16

typedef struct {
    int n;
    int64_t v[MAX_LIST];
    const char *sym[MAX_LIST];
} dim_list;

static int trace(const gr_value *v, dim_list *out, int depth);
static int64_t slice_extent(int64_t d, int64_t start, int64_t end, int64_t step);

static int const_int(const gr_value *v, int64_t *out) {
    return gr_value_const_ints(v, out, 1) == 1;
}

/* Shape(x)[start:end] with x's dims, symbols included. */
static int trace_shape(const gr_node *p, dim_list *out) {
    const gr_shape *s = &p->inputs[0]->shape;
    if (s->rank < 0) return 0;
    int64_t r = s->rank, start = gr_node_int(p, "start", 0), end = gr_node_int(p, "end", r);
    start = clamp(start < 0 ? start + r : start, 0, r);
    end = clamp(end < 0 ? end + r : end, 0, r);
    out->n = 0;
    for (int64_t i = start; i < end; i++, out->n++) {
        out->v[out->n] = s->dims[i] >= 0 ? s->dims[i] : TRACE_UNKNOWN;
        out->sym[out->n] = s->dims[i] >= 0 ? NULL : s->syms[i];
    }
    return 1;
}

/* Slice of a traced 1-D list with constant starts/ends (axes 0, steps). */
static int trace_slice(const gr_node *p, dim_list *out, int depth) {
    dim_list in;
    int64_t start, end, axis = 0, step = 1;
    if (!trace(p->inputs[0], &in, depth) || !const_int(p->inputs[1], &start) ||
        !const_int(p->inputs[2], &end))
        return 0;
    if (opt_input(p, 3) && (!const_int(p->inputs[3], &axis) || (axis != 0 && axis != -1))) return 0;
    if (opt_input(p, 4) && (!const_int(p->inputs[4], &step) || step == 0)) return 0;
    int64_t d = in.n, count = slice_extent(d, start, end, step);
    start = clamp(start < 0 ? start + d : start, 0, step > 0 ? d : d - 1);
    out->n = (int)count;
    for (int64_t k = 0; k < count; k++) {
        out->v[k] = in.v[start + k * step];
        out->sym[k] = in.sym[start + k * step];
    }
    return 1;
}

/* Gather along axis 0 with constant indices; Concat along axis 0. */
static int trace_gather_concat(const gr_node *p, dim_list *out, int depth) {
    dim_list in;
    out->n = 0;
    if (p->op == GR_OP_CONCAT) {
        for (int i = 0; i < p->n_inputs; i++) {
            if (!trace(p->inputs[i], &in, depth) || out->n + in.n > MAX_LIST) return 0;
            memcpy(out->v + out->n, in.v, sizeof(int64_t) * (size_t)in.n);
            memcpy(out->sym + out->n, in.sym, sizeof(char *) * (size_t)in.n);
            out->n += in.n;
        }
        return 1;
    }
    int64_t idx[MAX_LIST], count = gr_value_const_ints(p->inputs[1], idx, MAX_LIST);
    if (gr_node_int(p, "axis", 0) != 0 || count < 0 || count > MAX_LIST ||
        !trace(p->inputs[0], &in, depth))
        return 0;
    for (int64_t k = 0; k < count; k++, out->n++) {
        int64_t i = idx[k] < 0 ? idx[k] + in.n : idx[k];
        if (i < 0 || i >= in.n) return 0;
        out->v[out->n] = in.v[i];
        out->sym[out->n] = in.sym[i];
    }
    return 1;
}

static int trace(const gr_value *v, dim_list *out, int depth) {
    int64_t vals[MAX_LIST];
    int64_t count = v ? gr_value_const_ints(v, vals, MAX_LIST) : -1;
    if (count >= 0) {
        if (count > MAX_LIST) return 0;
        out->n = (int)count;
        for (int i = 0; i < out->n; i++) {
            out->v[i] = vals[i];
            out->sym[i] = NULL;
        }
        return 1;
    }
    const gr_node *p = v ? v->producer : NULL;
    if (!p || depth >= TRACE_DEPTH || v->shape.rank > 1 || !gr_dtype_is_int(v->dtype)) return 0;
    switch (p->op) {
    case GR_OP_SHAPE: return trace_shape(p, out);
    case GR_OP_CAST:
    case GR_OP_IDENTITY:
    case GR_OP_SQUEEZE:
    case GR_OP_UNSQUEEZE: return trace(p->inputs[0], out, depth + 1);
    case GR_OP_SLICE: return trace_slice(p, out, depth + 1);
    case GR_OP_GATHER:
    case GR_OP_CONCAT: return trace_gather_concat(p, out, depth + 1);
    default: return 0;
    }
}

/* A shape-giving input as a list: constant, or traced; out->n is -1 when
 * neither (then only its length may be known). */
static gr_code shape_list(const gr_node *n, const gr_value *v, dim_list *out, gr_status *st) {
    int64_t count;
    GR_TRY(const_list(n, v, out->v, &count, st));
    out->n = (int)count;
    for (int i = 0; i < out->n; i++) out->sym[i] = NULL;
    if (count < 0 && !trace(v, out, 0)) out->n = -1;
    return GR_OK;
}

/* ---------------------------------------------------------------- reshape */

/* Known product and unmatched dynamic dims of s, skipping dim skip. */
typedef struct {
    int64_t known;
    int overflow;
    int n_dyn;
    int dyn[GR_MAX_RANK];
} dim_census;

static void census(const gr_shape *s, int skip, const int *copied, dim_census *c) {
    memset(c, 0, sizeof *c);
    c->known = 1;
    for (int i = 0; i < s->rank; i++) {
        if (i == skip || (i < GR_MAX_RANK && copied[i])) continue;
        if (s->dims[i] < 0)
            c->dyn[c->n_dyn++] = i;
        else if (s->dims[i] && c->known > INT64_MAX / s->dims[i])
            c->overflow = 1;
        else
            c->known *= s->dims[i];
    }
}

/* Cancels dynamic dims carrying the same symbol on both sides. */
static void cancel_symbols(const gr_shape *x, dim_census *a, const gr_shape *y, dim_census *b) {
    for (int i = 0; i < a->n_dyn; i++) {
        const char *sym = x->syms[a->dyn[i]];
        for (int j = 0; sym && j < b->n_dyn; j++) {
            const char *other = y->syms[b->dyn[j]];
            if (!other || strcmp(sym, other)) continue;
            a->dyn[i--] = a->dyn[--a->n_dyn];
            b->dyn[j] = b->dyn[--b->n_dyn];
            break;
        }
    }
}

/* Fills the -1 dim (infer, or -1 for none) of y and checks element counts
 * of x and y where they are known. Dims copied by a 0 (copied[i]) are the
 * same on both sides and drop out, known or not. */
static gr_code resolve_reshape(const gr_node *n, const gr_shape *x, gr_shape *y, int infer,
                               const int *copied, gr_status *st) {
    if (x->rank < 0) return GR_OK;
    dim_census a, b;
    census(x, -1, copied, &a);
    census(y, infer, copied, &b);
    cancel_symbols(x, &a, y, &b);
    if (a.overflow || b.overflow) return GR_OK;
    char sx[256], sy[256];
    if (a.n_dyn == 0 && b.n_dyn == 0) {
        if (infer < 0 && a.known != b.known)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "cannot reshape %s (%lld elements) to %s (%lld elements)",
                                gr_shape_str(x, sx, sizeof sx), (long long)a.known,
                                gr_shape_str(y, sy, sizeof sy), (long long)b.known);
        if (infer >= 0 && (b.known == 0 || a.known % b.known))
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "cannot reshape %s (%lld elements) to %s: the -1 dim does not "
                                "divide evenly",
                                gr_shape_str(x, sx, sizeof sx), (long long)a.known,
                                gr_shape_str(y, sy, sizeof sy));
        if (infer >= 0) set_dim(y, infer, a.known / b.known);
    } else if (infer >= 0 && a.n_dyn == 1 && b.n_dyn == 0 && a.known == b.known) {
        gr_copy_dim(y, infer, x, a.dyn[0]);
    }
    return GR_OK;
}

/* data:[d..] shape:i64[k] -> reshaped:[k dims]; 0 copies data's dim (unless
 * allowzero), one -1 is inferred from the element count. */
gr_code gr_shape_rule_reshape(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(need_index_type(n, 1, "shape", 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    int allowzero = gr_node_int(n, "allowzero", 0) != 0;
    dim_list list;
    GR_TRY(shape_list(n, n->inputs[1], &list, st));
    const int64_t *v = list.v;
    int64_t count = list.n;
    if (count < 0) {
        int64_t len = list_length(n->inputs[1]);
        GR_TRY(check_rank(n, len, st));
        gr_shape y = len >= 0 ? gr_shape_of_rank((int)len) : gr_shape_unknown();
        gr_set_output(n, 0, t, &y);
        return GR_OK;
    }
    GR_TRY(check_rank(n, count, st));
    gr_shape y = gr_shape_of_rank((int)count);
    int infer = -1, has_zero = 0, copied[GR_MAX_RANK] = {0};
    for (int i = 0; i < (int)count; i++) {
        if (v[i] == TRACE_UNKNOWN) {
            y.syms[i] = list.sym[i]; /* an extent read at run time */
        } else if (v[i] == 0 && !allowzero) {
            if (x->rank >= 0 && i >= x->rank)
                return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                    "shape[%d] is 0 (copy the input dim) but the input has rank %d",
                                    i, x->rank);
            if (x->rank >= 0) gr_copy_dim(&y, i, x, i);
            copied[i] = 1;
        } else if (v[i] == -1) {
            if (infer >= 0)
                return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                    "shape has -1 at %d and %d, expected at most one", infer, i);
            infer = i;
        } else if (v[i] < -1) {
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "shape[%d] is %lld, expected >= -1", i,
                                (long long)v[i]);
        } else {
            has_zero |= v[i] == 0;
            set_dim(&y, i, v[i]);
        }
    }
    if (allowzero && has_zero && infer >= 0)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "shape has both 0 and -1, which allowzero=1 forbids");
    GR_TRY(resolve_reshape(n, x, &y, infer, copied, st));
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* input:[d0..dr-1] -> [d0*..*d(axis-1), d(axis)*..*d(r-1)], axis in [-r, r] */
gr_code gr_shape_rule_flatten(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    gr_shape y = gr_shape_of_rank(2);
    if (x->rank >= 0) {
        int64_t axis = gr_node_int(n, "axis", 1);
        if (axis < -x->rank || axis > x->rank)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "axis %lld is out of range for rank %d (expected %d..%d)",
                                (long long)axis, x->rank, -x->rank, x->rank);
        if (axis < 0) axis += x->rank;
        product_dim(x, 0, (int)axis, &y, 0);
        product_dim(x, (int)axis, x->rank, &y, 1);
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, &y);
    return GR_OK;
}

/* data:[d0..] perm -> [d(perm[0]), ..]; perm defaults to reversed axes. */
gr_code gr_shape_rule_transpose(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    const int64_t *perm;
    int len = gr_node_ints(n, "perm", &perm);
    int rank = x->rank >= 0 ? x->rank : len;
    if (len >= 0 && len != rank)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "perm has %d values, expected %d (the rank)",
                            len, rank);
    GR_TRY(check_rank(n, rank, st));
    gr_shape y = rank >= 0 ? gr_shape_of_rank(rank) : gr_shape_unknown();
    int seen[GR_MAX_RANK] = {0};
    for (int i = 0; i < rank; i++) {
        int64_t p = len >= 0 ? perm[i] : rank - 1 - i;
        if (p < 0 || p >= rank || seen[p])
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "perm[%d] is %lld, expected a permutation of 0..%d", i,
                                (long long)p, rank - 1);
        seen[p] = 1;
        if (x->rank >= 0) gr_copy_dim(&y, i, x, (int)p);
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, &y);
    return GR_OK;
}

/* data:[d..] axes?:i64[k] -> data without the given dims (each must be 1),
 * or without every dim of extent 1 when axes is absent. */
gr_code gr_shape_rule_squeeze(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(need_index_type(n, 1, "axes", 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    int64_t axes[MAX_LIST], count = 0;
    const gr_value *av = opt_input(n, 1);
    if (av) GR_TRY(const_list(n, av, axes, &count, st));
    gr_shape y = gr_shape_unknown();
    if (x->rank < 0 || count < 0) {
        int64_t len = list_length(av);
        if (x->rank >= 0 && len >= 0 && len <= x->rank) y = gr_shape_of_rank(x->rank - (int)len);
        gr_set_output(n, 0, t, &y);
        return GR_OK;
    }
    int mask[GR_MAX_RANK] = {0};
    if (count == 0) {
        for (int i = 0; i < x->rank; i++) {
            if (x->dims[i] < 0) {
                gr_set_output(n, 0, t, &y); /* which dims are 1 is unknown */
                return GR_OK;
            }
            mask[i] = x->dims[i] == 1;
        }
    }
    GR_TRY(gr_mark_axes(n, axes, count, x->rank, mask, st));
    y = gr_shape_scalar();
    for (int i = 0; i < x->rank; i++) {
        if (!mask[i])
            gr_copy_dim(&y, y.rank++, x, i);
        else if (x->dims[i] >= 0 && x->dims[i] != 1)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "cannot squeeze axis %d of extent %lld, expected 1", i,
                                (long long)x->dims[i]);
    }
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* data:[d..] axes:i64[k] -> data with dims of extent 1 inserted at the axes
 * (normalised against the output rank r+k). */
gr_code gr_shape_rule_unsqueeze(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(need_index_type(n, 1, "axes", 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    int64_t axes[MAX_LIST], count;
    GR_TRY(const_list(n, n->inputs[1], axes, &count, st));
    int64_t len = count >= 0 ? count : list_length(n->inputs[1]);
    if (x->rank < 0 || len < 0) {
        gr_shape u = gr_shape_unknown();
        gr_set_output(n, 0, t, &u);
        return GR_OK;
    }
    GR_TRY(check_rank(n, x->rank + len, st));
    int rank = x->rank + (int)len;
    gr_shape y = gr_shape_of_rank(rank);
    if (count < 0) {
        gr_set_output(n, 0, t, &y);
        return GR_OK;
    }
    int mask[GR_MAX_RANK] = {0};
    GR_TRY(gr_mark_axes(n, axes, count, rank, mask, st));
    for (int i = 0, j = 0; i < rank; i++) {
        if (mask[i])
            set_dim(&y, i, 1);
        else
            gr_copy_dim(&y, i, x, j++);
    }
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* ----------------------------------------------------- concat, split, gather */

/* Merges dim i of input k into y (off the concat axis): known dims must agree. */
static gr_code merge_dim(const gr_node *n, int k, int i, int axis, gr_shape *y, int *from,
                         gr_status *st) {
    const gr_shape *s = &n->inputs[k]->shape;
    if (s->dims[i] >= 0 && y->dims[i] >= 0 && s->dims[i] != y->dims[i])
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input %d ('%s') has dim %d = %lld, expected %lld like input %d "
                            "(dims off the concat axis %d must match)",
                            k, n->inputs[k]->name, i, (long long)s->dims[i], (long long)y->dims[i],
                            from[i], axis);
    if (y->dims[i] < 0 && (s->dims[i] >= 0 || !y->syms[i])) {
        gr_copy_dim(y, i, s, i);
        from[i] = k;
    }
    return GR_OK;
}

/* inputs:[.., a_k, ..] along axis -> [.., sum a_k, ..]; other dims match. */
gr_code gr_shape_rule_concat(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    const gr_attr *ax = gr_node_attr(n, "axis");
    if (!ax || ax->type != GR_ATTR_INT)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "attribute 'axis' is required");
    int rank = GR_RANK_UNKNOWN, first = -1;
    for (int k = 0; k < n->n_inputs; k++) {
        GR_TRY(gr_need_input(n, k, st));
        const gr_value *v = n->inputs[k];
        if (v->dtype != n->inputs[0]->dtype)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "input %d ('%s') is %s, expected %s like input 0", k, v->name,
                                gr_dtype_name(v->dtype), gr_dtype_name(n->inputs[0]->dtype));
        if (v->shape.rank < 0) continue;
        if (rank >= 0 && v->shape.rank != rank)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "input %d ('%s') has rank %d, expected %d like input %d", k,
                                v->name, v->shape.rank, rank, first);
        if (rank < 0) first = k;
        rank = v->shape.rank;
    }
    gr_dtype t = n->inputs[0]->dtype;
    gr_shape y = rank >= 0 ? gr_shape_of_rank(rank) : gr_shape_unknown();
    if (rank < 0) {
        gr_set_output(n, 0, t, &y);
        return GR_OK;
    }
    int axis, from[GR_MAX_RANK];
    GR_TRY(gr_norm_axis(n, "axis", ax->i, rank, &axis, st));
    int64_t sum = 0;
    for (int i = 0; i < rank; i++) from[i] = first;
    for (int k = 0; k < n->n_inputs; k++) {
        const gr_shape *s = &n->inputs[k]->shape;
        if (s->rank < 0 || s->dims[axis] < 0 || sum < 0 || sum > INT64_MAX - s->dims[axis])
            sum = -1;
        else
            sum += s->dims[axis];
        if (s->rank < 0) continue;
        for (int i = 0; i < rank; i++)
            if (i != axis) GR_TRY(merge_dim(n, k, i, axis, &y, from, st));
    }
    set_dim(&y, axis, sum);
    if (n->n_inputs == 1) gr_copy_dim(&y, axis, &n->inputs[0]->shape, axis);
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* Split sizes into parts[n_out] from the 'split' input or num_outputs (equal
 * chunks of ceil(d/num), the last smaller); -1 entries are unknown. */
static gr_code split_sizes(const gr_node *n, int64_t d, int64_t *parts, gr_status *st) {
    const gr_value *sv = opt_input(n, 1);
    const gr_attr *num = gr_node_attr(n, "num_outputs");
    int k = n->n_outputs;
    if (sv && num)
        return gr_node_fail(
            n, st, GR_ERR_BAD_MODEL,
            "both input 'split' and attribute 'num_outputs' are given, expected one");
    for (int i = 0; i < k; i++) parts[i] = GR_DIM_DYNAMIC;
    if (sv) {
        int64_t count = gr_value_const_ints(sv, parts, k);
        int64_t len = count >= 0 ? count : list_length(sv);
        if (len >= 0 && len != k)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "split has %lld values, expected %d (one per output)",
                                (long long)len, k);
        int64_t sum = 0;
        for (int i = 0; count >= 0 && i < k; i++) {
            if (parts[i] < 0 || parts[i] > INT64_MAX - sum)
                return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "split[%d] is %lld, expected >= 0", i,
                                    (long long)parts[i]);
            sum += parts[i];
        }
        if (count >= 0 && d >= 0 && sum != d)
            return gr_node_fail(
                n, st, GR_ERR_BAD_MODEL,
                "split sizes add up to %lld, expected %lld (the extent of the axis)",
                (long long)sum, (long long)d);
        return GR_OK;
    }
    if (num && num->i != k)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "num_outputs is %lld but the node has %d outputs", (long long)num->i,
                            k);
    if (d < 0) return GR_OK;
    int64_t chunk = (d + k - 1) / k, last = d - chunk * (k - 1);
    if (last < 0)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "cannot split extent %lld into %d outputs",
                            (long long)d, k);
    for (int i = 0; i < k; i++) parts[i] = i < k - 1 ? chunk : last;
    return GR_OK;
}

/* input:[.., d, ..] split?:i64[k] -> k outputs [.., s_i, ..] along axis */
gr_code gr_shape_rule_split(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(need_index_type(n, 1, "split", 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    int axis = 0;
    if (x->rank >= 0)
        GR_TRY(gr_norm_axis(n, "axis", gr_node_int(n, "axis", 0), x->rank, &axis, st));
    int64_t parts_buf[64], *parts = parts_buf;
    if (n->n_outputs > 64 && !(parts = gr_malloc(sizeof(int64_t) * (size_t)n->n_outputs)))
        return gr_node_fail(n, st, GR_ERR_NOMEM, "out of memory");
    gr_code rc = split_sizes(n, x->rank >= 0 ? x->dims[axis] : GR_DIM_DYNAMIC, parts, st);
    for (int i = 0; rc == GR_OK && i < n->n_outputs; i++) {
        gr_shape y = *x;
        if (x->rank >= 0) set_dim(&y, axis, parts[i]);
        if (x->rank >= 0 && n->n_outputs == 1) gr_copy_dim(&y, axis, x, axis);
        gr_set_output(n, i, t, &y);
    }
    if (parts != parts_buf) gr_free(parts);
    return rc;
}

/* data:[d0..d(r-1)] indices:[i0..i(q-1)] -> [d0..d(axis-1), i0..i(q-1),
 * d(axis+1)..]; indices are i32 or i64. */
gr_code gr_shape_rule_gather(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(need_index_type(n, 1, "indices", 1, st));
    const gr_shape *x = &n->inputs[0]->shape, *idx = &n->inputs[1]->shape;
    gr_shape y = gr_shape_unknown();
    int axis = 0;
    if (x->rank >= 0) {
        if (x->rank == 0)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "input 0 ('%s') is a scalar, expected rank >= 1",
                                n->inputs[0]->name);
        GR_TRY(gr_norm_axis(n, "axis", gr_node_int(n, "axis", 0), x->rank, &axis, st));
    }
    if (x->rank >= 0 && idx->rank >= 0) {
        GR_TRY(check_rank(n, x->rank + idx->rank - 1, st));
        y = gr_shape_scalar();
        for (int i = 0; i < axis; i++) gr_copy_dim(&y, y.rank++, x, i);
        for (int i = 0; i < idx->rank; i++) gr_copy_dim(&y, y.rank++, idx, i);
        for (int i = axis + 1; i < x->rank; i++) gr_copy_dim(&y, y.rank++, x, i);
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, &y);
    return GR_OK;
}

/* ----------------------------------------------------- expand, tile, slice */

/* input:[d..] shape:i64[k] -> broadcast(d, shape) */
gr_code gr_shape_rule_expand(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(need_index_type(n, 1, "shape", 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    dim_list list;
    GR_TRY(shape_list(n, n->inputs[1], &list, st));
    const int64_t *v = list.v;
    int64_t count = list.n, len = count >= 0 ? count : list_length(n->inputs[1]);
    GR_TRY(check_rank(n, len, st));
    gr_shape y = gr_shape_unknown();
    if (count >= 0) {
        gr_shape s = gr_shape_of_rank((int)count);
        for (int i = 0; i < count; i++) {
            if (v[i] == TRACE_UNKNOWN) {
                s.syms[i] = list.sym[i];
                continue;
            }
            if (v[i] < 0)
                return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "shape[%d] is %lld, expected >= 0", i,
                                    (long long)v[i]);
            set_dim(&s, i, v[i]);
        }
        GR_TRY(gr_shape_broadcast(x, &s, &y, n, st));
    } else if (x->rank >= 0 && len >= 0) {
        /* Dims of x other than 1 survive; the rest come from the unknown shape. */
        y = gr_shape_of_rank(x->rank > len ? x->rank : (int)len);
        for (int i = 0; i < x->rank; i++) {
            int o = y.rank - x->rank + i;
            if (x->dims[i] >= 0 && x->dims[i] != 1) set_dim(&y, o, x->dims[i]);
        }
    }
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* input:[d0..] repeats:i64[r] -> [d0*repeats[0], ..] */
gr_code gr_shape_rule_tile(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(need_index_type(n, 1, "repeats", 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    int64_t v[MAX_LIST], count;
    GR_TRY(const_list(n, n->inputs[1], v, &count, st));
    int64_t len = count >= 0 ? count : list_length(n->inputs[1]);
    if (x->rank >= 0 && len >= 0 && len != x->rank)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "repeats has %lld values, expected %d (the rank)", (long long)len,
                            x->rank);
    GR_TRY(check_rank(n, len, st));
    int rank = x->rank >= 0 ? x->rank : (int)len;
    gr_shape y = rank >= 0 ? gr_shape_of_rank(rank) : gr_shape_unknown();
    for (int i = 0; count >= 0 && i < rank; i++) {
        if (v[i] < 0)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "repeats[%d] is %lld, expected >= 0", i,
                                (long long)v[i]);
        int64_t d = x->rank >= 0 ? x->dims[i] : GR_DIM_DYNAMIC;
        if (v[i] == 1 && x->rank >= 0)
            gr_copy_dim(&y, i, x, i);
        else if (v[i] == 0 || (d >= 0 && (d == 0 || v[i] <= INT64_MAX / d)))
            set_dim(&y, i, d * v[i]);
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, &y);
    return GR_OK;
}

/* Extent of one sliced dim of extent d (ONNX Slice: negative indices count
 * from the end, then clamp; steps may be negative). */
static int64_t slice_extent(int64_t d, int64_t start, int64_t end, int64_t step) {
    if (d == 0) return 0;
    if (start < 0) start += d;
    if (end < 0) end += d;
    if (step > 0) {
        start = clamp(start, 0, d);
        end = clamp(end, 0, d);
        return end > start ? 1 + (end - start - 1) / step : 0;
    }
    start = clamp(start, 0, d - 1);
    end = clamp(end, -1, d - 1);
    int64_t s = step < -INT64_MAX ? INT64_MAX : -step;
    return start > end ? 1 + (start - end - 1) / s : 0;
}

/* Sliced dim a of y from x: exact for a known extent; a dynamic one survives
 * a whole-range slice (start 0, end past any extent, step 1). */
static void slice_dim(const gr_shape *x, gr_shape *y, int a, int64_t start, int64_t end,
                      int64_t step) {
    int64_t d = x->dims[a];
    if (d >= 0)
        set_dim(y, a, slice_extent(d, start, end, step));
    else if (!(step == 1 && start == 0 && end >= INT32_MAX))
        set_dim(y, a, GR_DIM_DYNAMIC);
}

/* Reads the optional list input i (axes or steps) into out; *count is -1
 * when not constant. When absent it is 0..len-1 (axes) or all 1 (steps).
 * A given list must have len values unless len is -1 (any). */
static gr_code opt_list(const gr_node *n, int i, int64_t len, int is_steps, int64_t *out,
                        int64_t *count, gr_status *st) {
    const gr_value *v = opt_input(n, i);
    if (!v) {
        for (int64_t k = 0; k < len && k < MAX_LIST; k++) out[k] = is_steps ? 1 : k;
        *count = len;
        return GR_OK;
    }
    GR_TRY(const_list(n, v, out, count, st));
    int64_t vl = *count >= 0 ? *count : list_length(v);
    if (vl >= 0 && len >= 0 && vl != len)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input %d ('%s') has %lld values, expected %lld like starts", i,
                            v->name, (long long)vl, (long long)len);
    return GR_OK;
}

/* data:[d..] starts,ends:[k] axes?,steps?:[k] -> data with the k axes sliced */
gr_code gr_shape_rule_slice(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    for (int i = 0; i < 3; i++) GR_TRY(gr_need_input(n, i, st));
    static const char *const names[] = {"", "starts", "ends", "axes", "steps"};
    for (int i = 1; i < 5; i++) GR_TRY(need_index_type(n, i, names[i], 1, st));
    const gr_shape *x = &n->inputs[0]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    int64_t starts[MAX_LIST], ends[MAX_LIST], axes[MAX_LIST], steps[MAX_LIST];
    int64_t ns, ne, na, nst;
    GR_TRY(const_list(n, n->inputs[1], starts, &ns, st));
    GR_TRY(const_list(n, n->inputs[2], ends, &ne, st));
    int64_t len = ns >= 0 ? ns : list_length(n->inputs[1]);
    int64_t lend = ne >= 0 ? ne : list_length(n->inputs[2]);
    if (len >= 0 && lend >= 0 && len != lend)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "starts has %lld values but ends has %lld",
                            (long long)len, (long long)lend);
    if (len < 0) len = lend;
    if (len > MAX_LIST)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "starts has %lld values, more than any rank",
                            (long long)len);
    GR_TRY(opt_list(n, 3, len, 0, axes, &na, st));
    GR_TRY(opt_list(n, 4, len, 1, steps, &nst, st));
    gr_shape y = *x;
    if (x->rank < 0 || na < 0) {
        if (x->rank >= 0) y = gr_shape_of_rank(x->rank);
        gr_set_output(n, 0, t, &y);
        return GR_OK;
    }
    int mask[GR_MAX_RANK] = {0};
    GR_TRY(gr_mark_axes(n, axes, na, x->rank, mask, st));
    int exact = ns >= 0 && ne >= 0 && nst >= 0;
    for (int64_t i = 0; i < na; i++) {
        int a = (int)(axes[i] < 0 ? axes[i] + x->rank : axes[i]);
        if (exact && steps[i] == 0)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "steps[%lld] is 0, expected nonzero",
                                (long long)i);
        if (exact)
            slice_dim(x, &y, a, starts[i], ends[i], steps[i]);
        else
            set_dim(&y, a, GR_DIM_DYNAMIC);
    }
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* --------------------------------------------------------------- pad, resize */

/* data:[d..] pads:i64[2k] constant_value? axes?:[k] -> [d_a + begin_a + end_a] */
gr_code gr_shape_rule_pad(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(need_index_type(n, 1, "pads", 0, st));
    GR_TRY(need_index_type(n, 3, "axes", 1, st));
    const char *mode = gr_node_string(n, "mode", "constant");
    if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge") &&
        strcmp(mode, "wrap"))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "mode is '%s', expected constant, reflect, edge or wrap", mode);
    const gr_shape *x = &n->inputs[0]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    const gr_value *cv = opt_input(n, 2);
    if (cv && cv->dtype != t)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "constant_value ('%s') is %s, expected %s like data", cv->name,
                            gr_dtype_name(cv->dtype), gr_dtype_name(t));
    if (x->rank < 0) {
        gr_set_output(n, 0, t, x);
        return GR_OK;
    }
    int64_t pads[MAX_LIST], axes[MAX_LIST], np, na;
    GR_TRY(const_list(n, n->inputs[1], pads, &np, st));
    if (opt_input(n, 3))
        GR_TRY(opt_list(n, 3, -1, 0, axes, &na, st));
    else
        GR_TRY(opt_list(n, 3, x->rank, 0, axes, &na, st));
    gr_shape y = *x;
    int64_t len = np >= 0 ? np : list_length(n->inputs[1]);
    if (na >= 0 && len >= 0 && len != 2 * na)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "pads has %lld values, expected %lld (2 per axis)", (long long)len,
                            (long long)(2 * na));
    if (na < 0) y = gr_shape_of_rank(x->rank);
    int mask[GR_MAX_RANK] = {0};
    if (na >= 0) GR_TRY(gr_mark_axes(n, axes, na, x->rank, mask, st));
    for (int64_t i = 0; na >= 0 && i < na; i++) {
        int a = (int)(axes[i] < 0 ? axes[i] + x->rank : axes[i]);
        int64_t d = x->dims[a], b = np >= 0 ? pads[i] : 0, e = np >= 0 ? pads[i + na] : 0;
        if (b < -INT32_MAX || b > INT32_MAX || e < -INT32_MAX || e > INT32_MAX || d > INT64_MAX / 2)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "pads %lld,%lld of axis %d are out of range", (long long)b,
                                (long long)e, a);
        if (np < 0 || (d < 0 && b + e != 0))
            set_dim(&y, a, GR_DIM_DYNAMIC);
        else if (d >= 0 && d + b + e < 0)
            return gr_node_fail(
                n, st, GR_ERR_BAD_MODEL,
                "axis %d of extent %lld with pads %lld,%lld gives %lld, expected >= 0", a,
                (long long)d, (long long)b, (long long)e, (long long)(d + b + e));
        else if (d >= 0)
            set_dim(&y, a, d + b + e);
    }
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* An input counts as absent when omitted or empty (older exporters pass an
 * empty tensor for an unused roi/scales). */
static const gr_value *present(const gr_node *n, int i) {
    const gr_value *v = opt_input(n, i);
    return v && !(v->shape.rank == 1 && v->shape.dims[0] == 0) ? v : NULL;
}

/* Sizes after keep_aspect_ratio_policy not_larger/not_smaller: one scale
 * (the min or max of size/extent over the axes), round-half-up. */
static void keep_aspect(const gr_shape *x, const int *axis_of, int64_t count, int larger,
                        int64_t *sizes) {
    double scale = 0;
    for (int64_t i = 0; i < count; i++) {
        if (x->dims[axis_of[i]] <= 0) {
            for (int64_t k = 0; k < count; k++) sizes[k] = GR_DIM_DYNAMIC;
            return;
        }
        double s = (double)sizes[i] / (double)x->dims[axis_of[i]];
        if (i == 0 || (larger ? s > scale : s < scale)) scale = s;
    }
    for (int64_t i = 0; i < count; i++) {
        double e = scale * (double)x->dims[axis_of[i]] + 0.5;
        sizes[i] = e < 9.2e18 ? (int64_t)e : GR_DIM_DYNAMIC;
    }
}

/* keep_aspect_ratio_policy: 0 stretch, 1 not_larger, 2 not_smaller. */
static gr_code aspect_policy(const gr_node *n, int *policy, gr_status *st) {
    const char *p = gr_node_string(n, "keep_aspect_ratio_policy", "stretch");
    *policy = !strcmp(p, "stretch")       ? 0
              : !strcmp(p, "not_larger")  ? 1
              : !strcmp(p, "not_smaller") ? 2
                                          : -1;
    if (*policy < 0)
        return gr_node_fail(
            n, st, GR_ERR_BAD_MODEL,
            "keep_aspect_ratio_policy is '%s', expected stretch, not_larger or not_smaller", p);
    return GR_OK;
}

/* Extents y[axis_of[i]] from constant scales: floor(d * scale), as ONNX
 * Runtime (roi does not change the extent); a dynamic dim keeps its symbol
 * under scale 1. */
static gr_code resize_scales(const gr_node *n, const gr_value *v, const int *axis_of, int64_t count,
                             gr_shape *y, gr_status *st) {
    int constant = gr_value_is_constant(v) && gr_value_numel(v) == count;
    for (int64_t i = 0; i < count; i++) {
        int64_t d = y->dims[axis_of[i]];
        double s = constant ? gr_dtype_load_f64(v->dtype, v->data, i) : 0;
        if (constant && !(s > 0))
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "scales[%lld] is %g, expected > 0",
                                (long long)i, s);
        if (constant && d >= 0 && !((double)d * s < 9.2e18))
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "scales[%lld] is %g, too large for extent %lld", (long long)i, s,
                                (long long)d);
        if (!constant || (d < 0 && s != 1.0))
            set_dim(y, axis_of[i], GR_DIM_DYNAMIC);
        else if (d >= 0)
            set_dim(y, axis_of[i], (int64_t)floor((double)d * s));
    }
    return GR_OK;
}

/* Extents y[axis_of[i]] from sizes, constant or traced from Shape nodes;
 * policies other than stretch scale every axis by one factor. */
static gr_code resize_sizes(const gr_node *n, const gr_shape *x, const gr_value *v,
                            const int *axis_of, int64_t count, int policy, gr_shape *y,
                            gr_status *st) {
    dim_list list;
    GR_TRY(shape_list(n, v, &list, st));
    int known = list.n == count;
    for (int64_t i = 0; i < list.n && list.n == count; i++) {
        if (list.v[i] == TRACE_UNKNOWN)
            known = 0;
        else if (list.v[i] < 0)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "sizes[%lld] is %lld, expected >= 0",
                                (long long)i, (long long)list.v[i]);
    }
    if (policy && known) keep_aspect(x, axis_of, count, policy == 2, list.v);
    for (int64_t i = 0; i < count; i++) {
        set_dim(y, axis_of[i], GR_DIM_DYNAMIC);
        if (list.n != count || (policy && !known)) continue;
        if (list.v[i] == TRACE_UNKNOWN)
            y->syms[axis_of[i]] = list.sym[i];
        else
            set_dim(y, axis_of[i], list.v[i]);
    }
    return GR_OK;
}

/* Checks Resize's inputs; *v is scales or sizes, *axis_of[*count] the axes
 * they apply to (the 'axes' attribute, else all). */
static gr_code resize_inputs(const gr_node *n, const gr_shape *x, const gr_value **v,
                             int *is_scales, int *axis_of, int64_t *count, gr_status *st) {
    const gr_value *scales = present(n, 2), *sizes = present(n, 3);
    if (scales && sizes)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "both scales and sizes are given, expected one");
    if (!scales && !sizes)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "one of scales and sizes is required");
    if (scales && !gr_dtype_is_float(scales->dtype))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "scales ('%s') is %s, expected a float type",
                            scales->name, gr_dtype_name(scales->dtype));
    if (sizes) GR_TRY(need_index_type(n, 3, "sizes", 0, st));
    *v = scales ? scales : sizes;
    *is_scales = scales != NULL;
    const int64_t *axes;
    int na = gr_node_ints(n, "axes", &axes);
    int mask[GR_MAX_RANK] = {0};
    if (na >= 0) GR_TRY(gr_mark_axes(n, axes, na, x->rank, mask, st));
    *count = na >= 0 ? na : x->rank;
    for (int i = 0; i < *count; i++)
        axis_of[i] = na >= 0 ? (int)(axes[i] < 0 ? axes[i] + x->rank : axes[i]) : i;
    int64_t len = list_length(*v);
    if (len >= 0 && len != *count)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "%s has %lld values, expected %lld (%s)",
                            *is_scales ? "scales" : "sizes", (long long)len, (long long)*count,
                            na >= 0 ? "one per axis in 'axes'" : "the rank of X");
    return GR_OK;
}

/* X:[d..] roi? scales?:f32[k] sizes?:i64[k] -> [resized d..] */
gr_code gr_shape_rule_resize(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    gr_shape xs = n->inputs[0]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    const gr_value *sv = present(n, 2) ? present(n, 2) : present(n, 3);
    if (xs.rank < 0 && !gr_node_attr(n, "axes") && list_length(sv) >= 0) {
        GR_TRY(check_rank(n, list_length(sv), st));
        xs = gr_shape_of_rank((int)list_length(sv));
    }
    if (xs.rank < 0) {
        gr_set_output(n, 0, t, &xs);
        return GR_OK;
    }
    const gr_value *v = NULL;
    int is_scales = 0, axis_of[GR_MAX_RANK];
    int64_t count = 0;
    GR_TRY(resize_inputs(n, &xs, &v, &is_scales, axis_of, &count, st));
    int policy;
    GR_TRY(aspect_policy(n, &policy, st));
    gr_shape y = xs;
    if (is_scales)
        GR_TRY(resize_scales(n, v, axis_of, count, &y, st));
    else
        GR_TRY(resize_sizes(n, &xs, v, axis_of, count, policy, &y, st));
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* ------------------------------------------------------ shapes and constants */

/* data:[d0..d(r-1)] -> i64[end-start], start/end clamped to [0, r] */
gr_code gr_shape_rule_shape(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    int r = n->inputs[0]->shape.rank;
    gr_shape y = gr_shape_of_rank(1);
    if (r >= 0) {
        int64_t start = gr_node_int(n, "start", 0), end = gr_node_int(n, "end", r);
        start = clamp(start < 0 ? start + r : start, 0, r);
        end = clamp(end < 0 ? end + r : end, 0, r);
        set_dim(&y, 0, end > start ? end - start : 0);
    }
    gr_set_output(n, 0, GR_DTYPE_I64, &y);
    return GR_OK;
}

/* data -> i64 scalar */
gr_code gr_shape_rule_size(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    gr_shape y = gr_shape_scalar();
    gr_set_output(n, 0, GR_DTYPE_I64, &y);
    return GR_OK;
}

/* () -> the tensor of exactly one of value, value_float(s), value_int(s) */
gr_code gr_shape_rule_constant(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints"};
    const gr_attr *a = NULL;
    for (int i = 0; i < 5; i++) {
        const gr_attr *b = gr_node_attr(n, names[i]);
        if (b && a)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "attributes '%s' and '%s' are both given, "
                                "expected exactly one value attribute",
                                a->name, b->name);
        if (b) a = b;
    }
    if (!a)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "a value attribute (value, value_float, "
                            "value_floats, value_int or value_ints) is required");
    if (a->type == GR_ATTR_TENSOR) {
        gr_set_output(n, 0, a->tensor->dtype, &a->tensor->shape);
        return GR_OK;
    }
    gr_shape s = gr_shape_scalar();
    if (a->type == GR_ATTR_FLOATS || a->type == GR_ATTR_INTS) {
        s = gr_shape_of_rank(1);
        set_dim(&s, 0, a->n);
    }
    int is_float = a->type == GR_ATTR_FLOAT || a->type == GR_ATTR_FLOATS;
    gr_set_output(n, 0, is_float ? GR_DTYPE_F32 : GR_DTYPE_I64, &s);
    return GR_OK;
}

/* input:i64[k] -> [input values] of value's dtype (default f32 zero) */
gr_code gr_shape_rule_constant_of_shape(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(need_index_type(n, 0, "input", 0, st));
    const gr_attr *value = gr_node_attr(n, "value");
    gr_dtype t = GR_DTYPE_F32;
    if (value && value->type == GR_ATTR_TENSOR) {
        if (gr_shape_numel(&value->tensor->shape) != 1)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "attribute 'value' has %lld elements, expected 1",
                                (long long)gr_shape_numel(&value->tensor->shape));
        t = value->tensor->dtype;
    }
    dim_list list;
    GR_TRY(shape_list(n, n->inputs[0], &list, st));
    const int64_t *v = list.v;
    int64_t count = list.n, len = count >= 0 ? count : list_length(n->inputs[0]);
    GR_TRY(check_rank(n, len, st));
    gr_shape y = len >= 0 ? gr_shape_of_rank((int)len) : gr_shape_unknown();
    for (int64_t i = 0; count >= 0 && i < count; i++) {
        if (v[i] == TRACE_UNKNOWN) {
            y.syms[i] = list.sym[i];
            continue;
        }
        if (v[i] < 0)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input[%lld] is %lld, expected >= 0",
                                (long long)i, (long long)v[i]);
        set_dim(&y, (int)i, v[i]);
    }
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* Element count of a float Range: max(ceil((limit - start) / delta), 0). */
static gr_code range_count_float(const gr_node *n, int64_t *count, gr_status *st) {
    const gr_value *s = n->inputs[0], *l = n->inputs[1], *d = n->inputs[2];
    if (!gr_value_is_constant(s) || !gr_value_is_constant(l) || !gr_value_is_constant(d))
        return GR_OK;
    double a = gr_dtype_load_f64(s->dtype, s->data, 0), b = gr_dtype_load_f64(l->dtype, l->data, 0);
    double c = gr_dtype_load_f64(d->dtype, d->data, 0);
    if (c == 0 || c != c)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "delta is %g, expected nonzero", c);
    double k = ceil((b - a) / c);
    if (!(k < 9.2e18)) return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "range has too many elements");
    *count = k > 0 ? (int64_t)k : 0;
    return GR_OK;
}

/* Element count of an integer Range, its inputs constant or traced from
 * Shape nodes; Range(0, d, 1) over a symbolic extent d has d elements. */
static gr_code range_count_int(const gr_node *n, gr_shape *y, gr_status *st) {
    dim_list in[3];
    for (int i = 0; i < 3; i++)
        if (!trace(n->inputs[i], &in[i], 0) || in[i].n != 1) return GR_OK;
    int64_t a = in[0].v[0], b = in[1].v[0], c = in[2].v[0];
    if (c == 0) return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "delta is 0, expected nonzero");
    if (a == 0 && c == 1 && b == TRACE_UNKNOWN) y->syms[0] = in[1].sym[0];
    if (a == TRACE_UNKNOWN || b == TRACE_UNKNOWN || c == TRACE_UNKNOWN) return GR_OK;
    if ((b > 0 && a < b - INT64_MAX) || (b < 0 && a > b + INT64_MAX))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "range has too many elements");
    int64_t span = b - a;
    if ((span > 0) != (c > 0) || span == 0)
        set_dim(y, 0, 0);
    else if (c > 0)
        set_dim(y, 0, 1 + (span - 1) / c);
    else
        set_dim(y, 0, 1 + (-span - 1) / (c < -INT64_MAX ? INT64_MAX : -c));
    return GR_OK;
}

/* start, limit, delta: scalars of one type -> [max(ceil((limit-start)/delta), 0)] */
gr_code gr_shape_rule_range(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    static const char *const names[] = {"start", "limit", "delta"};
    for (int i = 0; i < 3; i++) {
        GR_TRY(gr_need_input(n, i, st));
        const gr_value *v = n->inputs[i];
        if (v->dtype != n->inputs[0]->dtype)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "%s ('%s') is %s, expected %s like start",
                                names[i], v->name, gr_dtype_name(v->dtype),
                                gr_dtype_name(n->inputs[0]->dtype));
        if (v->shape.rank > 1 ||
            (v->shape.rank == 1 && v->shape.dims[0] != 1 && v->shape.dims[0] >= 0)) {
            char s[256];
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "%s ('%s') has shape %s, expected a scalar", names[i], v->name,
                                gr_shape_str(&v->shape, s, sizeof s));
        }
    }
    gr_shape y = gr_shape_of_rank(1);
    if (gr_dtype_is_float(n->inputs[0]->dtype)) {
        int64_t count = GR_DIM_DYNAMIC;
        GR_TRY(range_count_float(n, &count, st));
        set_dim(&y, 0, count);
    } else {
        GR_TRY(range_count_int(n, &y, st));
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, &y);
    return GR_OK;
}
