/* eval_move.c: the evaluator's shape and data movement ops (Shape, Size,
 * Gather, Concat, Unsqueeze, Squeeze, Reshape, Flatten, Slice, Identity,
 * Expand, Tile, Transpose) and the constant makers (Constant,
 * ConstantOfShape, Range). Each derives its output shape from its inputs as
 * the ONNX spec says and checks it against the shape rule's before copying
 * elements as bytes, so every dtype moves exactly. */
#include <math.h>
#include <string.h>

#include "passes/passes_internal.h"

#define FAIL(...) gr_eval_fail(n, st, __VA_ARGS__)

static size_t esize(const gr_tensor *t) { return gr_dtype_size(t->dtype); }

/* out[i] = src[off], as bytes. */
static void copy_elem(gr_tensor *out, int64_t i, const gr_tensor *src, int64_t off) {
    size_t es = esize(out);
    memcpy((char *)out->data + (size_t)i * es, (const char *)src->data + (size_t)off * es, es);
}

/* Up to GR_MAX_RANK (or max) integers of a 0-D/1-D tensor. */
static gr_code read_ints(const gr_node *n, const gr_tensor *t, const char *what,
                         int64_t *v, int max, int *count, gr_status *st) {
    int64_t numel = gr_shape_numel(&t->shape);
    if (!gr_dtype_is_int(t->dtype) || t->shape.rank > 1)
        return FAIL(GR_ERR_BAD_MODEL, "%s must be a 1-D integer tensor", what);
    if (numel > max)
        return FAIL(GR_ERR_UNSUPPORTED, "%s has %lld entries (at most %d)", what,
                    (long long)numel, max);
    for (int64_t i = 0; i < numel; i++) v[i] = gr_dtype_load_i64(t->dtype, t->data, i);
    *count = (int)numel;
    return GR_OK;
}

static gr_code norm_axis(const gr_node *n, int64_t axis, int rank, int *out,
                         gr_status *st) {
    if (axis < -rank || axis >= rank)
        return FAIL(GR_ERR_BAD_MODEL, "axis %lld is out of range for rank %d",
                    (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return GR_OK;
}

static int64_t prod(const gr_shape *s, int from, int to) {
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= s->dims[d];
    return p;
}

/* Same data, new shape r (Identity, Reshape, Flatten, (Un)Squeeze). */
static gr_code copy_as(const gr_node *n, const gr_tensor *a, const gr_shape *r,
                       gr_tensor *out, gr_status *st) {
    GR_TRY(gr_eval_check_shape(n, out, r, st));
    if (out->dtype != a->dtype || out->nbytes != a->nbytes)
        return FAIL(GR_ERR_INTERNAL, "output is %s with %zu bytes, input %s with %zu",
                    gr_dtype_name(out->dtype), out->nbytes, gr_dtype_name(a->dtype),
                    a->nbytes);
    if (a->nbytes) memcpy(out->data, a->data, a->nbytes);
    return GR_OK;
}

/* --- Shape, Size ----------------------------------------------------------- */

static gr_code eval_shape(const gr_node *n, const gr_tensor *a, gr_tensor *out,
                          gr_status *st) {
    int64_t rank = a->shape.rank;
    int64_t start = gr_node_int(n, "start", 0), end = gr_node_int(n, "end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = start < 0 ? 0 : start > rank ? rank : start;
    end = end < 0 ? 0 : end > rank ? rank : end;
    int64_t len = end > start ? end - start : 0;
    gr_shape r = gr_shape_make(1, &len);
    GR_TRY(gr_eval_check_shape(n, out, &r, st));
    for (int64_t i = 0; i < len; i++) {
        if (a->shape.dims[start + i] < 0)
            return FAIL(GR_ERR_UNSUPPORTED, "dim %lld is not known", (long long)(start + i));
        gr_dtype_store_i64(out->dtype, out->data, i, a->shape.dims[start + i]);
    }
    return GR_OK;
}

static gr_code eval_size(const gr_node *n, const gr_tensor *a, gr_tensor *out,
                         gr_status *st) {
    gr_shape r = gr_shape_scalar();
    GR_TRY(gr_eval_check_shape(n, out, &r, st));
    gr_dtype_store_i64(out->dtype, out->data, 0, gr_shape_numel(&a->shape));
    return GR_OK;
}

/* --- Gather, Concat -------------------------------------------------------- */

/* out = data[:axis] + indices.shape + data[axis+1:] */
static gr_code eval_gather(const gr_node *n, const gr_tensor *data, const gr_tensor *idx,
                           gr_tensor *out, gr_status *st) {
    int axis = 0, r = data->shape.rank;
    GR_TRY(norm_axis(n, gr_node_int(n, "axis", 0), r, &axis, st));
    if (!gr_dtype_is_int(idx->dtype))
        return FAIL(GR_ERR_BAD_MODEL, "indices must be integers");
    if (r - 1 + idx->shape.rank > GR_MAX_RANK)
        return FAIL(GR_ERR_UNSUPPORTED, "result rank exceeds %d", GR_MAX_RANK);
    gr_shape s = gr_shape_scalar();
    for (int d = 0; d < axis; d++) s.dims[s.rank++] = data->shape.dims[d];
    for (int d = 0; d < idx->shape.rank; d++) s.dims[s.rank++] = idx->shape.dims[d];
    for (int d = axis + 1; d < r; d++) s.dims[s.rank++] = data->shape.dims[d];
    GR_TRY(gr_eval_check_shape(n, out, &s, st));
    int64_t outer = prod(&data->shape, 0, axis), extent = data->shape.dims[axis];
    int64_t inner = prod(&data->shape, axis + 1, r), count = gr_shape_numel(&idx->shape);
    size_t chunk = (size_t)inner * esize(data);
    for (int64_t k = 0; k < count; k++) {
        int64_t i = gr_dtype_load_i64(idx->dtype, idx->data, k);
        if (i < -extent || i >= extent)
            return FAIL(GR_ERR_BAD_MODEL, "index %lld is out of range for dim %d of size %lld",
                        (long long)i, axis, (long long)extent);
        if (i < 0) i += extent;
        for (int64_t o = 0; o < outer && chunk; o++)
            memcpy((char *)out->data + (size_t)(o * count + k) * chunk,
                   (const char *)data->data + (size_t)(o * extent + i) * chunk, chunk);
    }
    return GR_OK;
}

static gr_code eval_concat(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                           gr_status *st) {
    const gr_attr *ax = gr_node_attr(n, "axis");
    int axis = 0, r = in[0]->shape.rank;
    if (!ax) return FAIL(GR_ERR_BAD_MODEL, "attribute 'axis' is required");
    GR_TRY(norm_axis(n, ax->i, r, &axis, st));
    gr_shape s = in[0]->shape;
    s.dims[axis] = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const gr_tensor *t = in[k];
        int same = t && t->shape.rank == r && t->dtype == out->dtype;
        for (int d = 0; same && d < r; d++)
            same = d == axis || t->shape.dims[d] == in[0]->shape.dims[d];
        if (!same) return FAIL(GR_ERR_BAD_MODEL, "input %d does not match input 0", k);
        s.dims[axis] += t->shape.dims[axis];
    }
    GR_TRY(gr_eval_check_shape(n, out, &s, st));
    int64_t outer = prod(&s, 0, axis), inner = prod(&s, axis + 1, r);
    char *dst = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n->n_inputs; k++) {
            size_t chunk = (size_t)(in[k]->shape.dims[axis] * inner) * esize(out);
            if (!chunk) continue;
            memcpy(dst, (const char *)in[k]->data + (size_t)o * chunk, chunk);
            dst += chunk;
        }
    return GR_OK;
}

/* --- Unsqueeze, Squeeze, Reshape, Flatten ---------------------------------- */

static gr_code eval_unsqueeze(const gr_node *n, const gr_tensor *const *in,
                              gr_tensor *out, gr_status *st) {
    int64_t axes[GR_MAX_RANK];
    int count, inserted[GR_MAX_RANK] = {0};
    GR_TRY(read_ints(n, in[1], "axes", axes, GR_MAX_RANK, &count, st));
    int rank = in[0]->shape.rank + count;
    if (rank > GR_MAX_RANK)
        return FAIL(GR_ERR_UNSUPPORTED, "result rank exceeds %d", GR_MAX_RANK);
    for (int k = 0; k < count; k++) {
        int a = 0;
        GR_TRY(norm_axis(n, axes[k], rank, &a, st));
        if (inserted[a]) return FAIL(GR_ERR_BAD_MODEL, "axis %d is repeated", a);
        inserted[a] = 1;
    }
    gr_shape s = gr_shape_scalar();
    for (int d = 0, from = 0; d < rank; d++)
        s.dims[s.rank++] = inserted[d] ? 1 : in[0]->shape.dims[from++];
    return copy_as(n, in[0], &s, out, st);
}

static gr_code eval_squeeze(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                            gr_status *st) {
    const gr_tensor *a = in[0];
    int64_t axes[GR_MAX_RANK];
    int count = 0, drop[GR_MAX_RANK] = {0};
    if (n->n_inputs > 1 && in[1])
        GR_TRY(read_ints(n, in[1], "axes", axes, GR_MAX_RANK, &count, st));
    for (int k = 0; k < count; k++) {
        int d = 0;
        GR_TRY(norm_axis(n, axes[k], a->shape.rank, &d, st));
        if (a->shape.dims[d] != 1)
            return FAIL(GR_ERR_BAD_MODEL, "cannot squeeze dim %d of size %lld", d,
                        (long long)a->shape.dims[d]);
        drop[d] = 1;
    }
    if (!(n->n_inputs > 1 && in[1]))
        for (int d = 0; d < a->shape.rank; d++) drop[d] = a->shape.dims[d] == 1;
    gr_shape s = gr_shape_scalar();
    for (int d = 0; d < a->shape.rank; d++)
        if (!drop[d]) s.dims[s.rank++] = a->shape.dims[d];
    return copy_as(n, a, &s, out, st);
}

/* Reshape: 0 copies the input dim (unless allowzero), -1 is inferred. */
static gr_code eval_reshape(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                            gr_status *st) {
    const gr_tensor *a = in[0];
    int64_t want[GR_MAX_RANK];
    int count, infer = -1, allowzero = (int)gr_node_int(n, "allowzero", 0);
    GR_TRY(read_ints(n, in[1], "shape", want, GR_MAX_RANK, &count, st));
    gr_shape s = gr_shape_make(count, want);
    int64_t known = 1;
    for (int d = 0; d < count; d++) {
        if (want[d] == 0 && !allowzero) {
            if (d >= a->shape.rank)
                return FAIL(GR_ERR_BAD_MODEL, "shape entry %d is 0 but the input has rank %d",
                            d, a->shape.rank);
            s.dims[d] = a->shape.dims[d];
        } else if (want[d] == -1) {
            if (infer >= 0) return FAIL(GR_ERR_BAD_MODEL, "more than one -1 in shape");
            infer = d;
            continue;
        } else if (want[d] < -1) {
            return FAIL(GR_ERR_BAD_MODEL, "shape entry %d is %lld", d, (long long)want[d]);
        }
        if (s.dims[d] && known > INT64_MAX / s.dims[d])
            return FAIL(GR_ERR_BAD_MODEL, "shape has too many elements");
        known *= s.dims[d];
    }
    int64_t numel = gr_shape_numel(&a->shape);
    if (infer >= 0) {
        if (known == 0 || numel % known)
            return FAIL(GR_ERR_BAD_MODEL, "cannot infer the -1 in shape");
        s.dims[infer] = numel / known;
    } else if (known != numel) {
        return FAIL(GR_ERR_BAD_MODEL, "cannot reshape %lld elements to %lld",
                    (long long)numel, (long long)known);
    }
    return copy_as(n, a, &s, out, st);
}

static gr_code eval_flatten(const gr_node *n, const gr_tensor *a, gr_tensor *out,
                            gr_status *st) {
    int64_t axis = gr_node_int(n, "axis", 1), r = a->shape.rank;
    if (axis < -r || axis > r)
        return FAIL(GR_ERR_BAD_MODEL, "axis %lld is out of range for rank %lld",
                    (long long)axis, (long long)r);
    if (axis < 0) axis += r;
    int64_t dims[2] = {prod(&a->shape, 0, (int)axis), prod(&a->shape, (int)axis, (int)r)};
    gr_shape s = gr_shape_make(2, dims);
    return copy_as(n, a, &s, out, st);
}

/* --- Slice ------------------------------------------------------------------ */

/* Clamped start and element count of one sliced axis (ONNX Slice-13). */
static void slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step,
                       int64_t *first, int64_t *count) {
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        *count = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        *count = start > end ? (step == INT64_MIN ? 0 : (start - end - 1) / -step) + 1 : 0;
    }
    if (dim == 0) *count = 0;
    *first = start;
}

static gr_code eval_slice(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                          gr_status *st) {
    const gr_tensor *a = in[0];
    int r = a->shape.rank, ns, ne, na, nst, seen[GR_MAX_RANK] = {0};
    int64_t starts[GR_MAX_RANK], ends[GR_MAX_RANK], axes[GR_MAX_RANK], steps[GR_MAX_RANK];
    int64_t first[GR_MAX_RANK] = {0}, step[GR_MAX_RANK], st_in[GR_MAX_RANK];
    GR_TRY(read_ints(n, in[1], "starts", starts, GR_MAX_RANK, &ns, st));
    GR_TRY(read_ints(n, in[2], "ends", ends, GR_MAX_RANK, &ne, st));
    na = nst = ns;
    for (int k = 0; k < ns; k++) axes[k] = k, steps[k] = 1;
    if (n->n_inputs > 3 && in[3])
        GR_TRY(read_ints(n, in[3], "axes", axes, GR_MAX_RANK, &na, st));
    if (n->n_inputs > 4 && in[4])
        GR_TRY(read_ints(n, in[4], "steps", steps, GR_MAX_RANK, &nst, st));
    if (ne != ns || na != ns || nst != ns)
        return FAIL(GR_ERR_BAD_MODEL, "starts, ends, axes and steps differ in length");
    gr_shape s = a->shape;
    for (int d = 0; d < r; d++) step[d] = 1;
    for (int k = 0; k < ns; k++) {
        int d = 0;
        GR_TRY(norm_axis(n, axes[k], r, &d, st));
        if (seen[d]++) return FAIL(GR_ERR_BAD_MODEL, "axis %d is repeated", d);
        if (steps[k] == 0) return FAIL(GR_ERR_BAD_MODEL, "step is 0 on axis %d", d);
        step[d] = steps[k];
        slice_axis(a->shape.dims[d], starts[k], ends[k], steps[k], &first[d], &s.dims[d]);
    }
    GR_TRY(gr_eval_check_shape(n, out, &s, st));
    gr_shape_strides(&a->shape, st_in);
    int64_t numel = gr_shape_numel(&s);
    for (int64_t i = 0; i < numel; i++) {
        int64_t rem = i, off = 0;
        for (int d = r - 1; d >= 0; d--) {
            off += (first[d] + (rem % s.dims[d]) * step[d]) * st_in[d];
            rem /= s.dims[d];
        }
        copy_elem(out, i, a, off);
    }
    return GR_OK;
}

/* --- Expand, Tile, Transpose --------------------------------------------- */

static gr_code eval_expand(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                           gr_status *st) {
    int64_t want[GR_MAX_RANK], s_in[GR_MAX_RANK];
    int count;
    GR_TRY(read_ints(n, in[1], "shape", want, GR_MAX_RANK, &count, st));
    gr_shape ws = gr_shape_make(count, want), r;
    for (int d = 0; d < count; d++)
        if (want[d] < 0) return FAIL(GR_ERR_BAD_MODEL, "shape entry %d is negative", d);
    GR_TRY(gr_eval_broadcast(n, &in[0]->shape, &ws, &r, st));
    GR_TRY(gr_eval_check_shape(n, out, &r, st));
    gr_eval_bcast_strides(&in[0]->shape, &r, s_in);
    int64_t numel = gr_shape_numel(&r);
    for (int64_t i = 0; i < numel; i++)
        copy_elem(out, i, in[0], gr_eval_bcast_offset(i, &r, s_in));
    return GR_OK;
}

static gr_code eval_tile(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                         gr_status *st) {
    const gr_tensor *a = in[0];
    int64_t rep[GR_MAX_RANK], st_in[GR_MAX_RANK];
    int count;
    GR_TRY(read_ints(n, in[1], "repeats", rep, GR_MAX_RANK, &count, st));
    if (count != a->shape.rank)
        return FAIL(GR_ERR_BAD_MODEL, "repeats has %d entries for rank %d", count,
                    a->shape.rank);
    gr_shape s = a->shape;
    for (int d = 0; d < count; d++) {
        if (rep[d] < 0) return FAIL(GR_ERR_BAD_MODEL, "repeats[%d] is negative", d);
        if (rep[d] && s.dims[d] > INT64_MAX / rep[d])
            return FAIL(GR_ERR_BAD_MODEL, "result has too many elements");
        s.dims[d] *= rep[d];
    }
    GR_TRY(gr_eval_check_shape(n, out, &s, st));
    gr_shape_strides(&a->shape, st_in);
    int64_t numel = gr_shape_numel(&s);
    for (int64_t i = 0; i < numel; i++) {
        int64_t rem = i, off = 0;
        for (int d = s.rank - 1; d >= 0; d--) {
            off += (rem % s.dims[d]) % a->shape.dims[d] * st_in[d];
            rem /= s.dims[d];
        }
        copy_elem(out, i, a, off);
    }
    return GR_OK;
}

static gr_code eval_transpose(const gr_node *n, const gr_tensor *a, gr_tensor *out,
                              gr_status *st) {
    const int64_t *perm_attr;
    int64_t perm[GR_MAX_RANK], st_in[GR_MAX_RANK];
    int r = a->shape.rank, count = gr_node_ints(n, "perm", &perm_attr), used[GR_MAX_RANK] = {0};
    if (count >= 0 && count != r)
        return FAIL(GR_ERR_BAD_MODEL, "perm has %d entries for rank %d", count, r);
    gr_shape s = a->shape;
    for (int d = 0; d < r; d++) {
        perm[d] = count >= 0 ? perm_attr[d] : r - 1 - d;
        if (perm[d] < 0 || perm[d] >= r || used[perm[d]]++)
            return FAIL(GR_ERR_BAD_MODEL, "perm is not a permutation of 0..%d", r - 1);
        s.dims[d] = a->shape.dims[perm[d]];
    }
    GR_TRY(gr_eval_check_shape(n, out, &s, st));
    gr_shape_strides(&a->shape, st_in);
    int64_t numel = gr_shape_numel(&s);
    for (int64_t i = 0; i < numel; i++) {
        int64_t rem = i, off = 0;
        for (int d = r - 1; d >= 0; d--) {
            off += (rem % s.dims[d]) * st_in[perm[d]];
            rem /= s.dims[d];
        }
        copy_elem(out, i, a, off);
    }
    return GR_OK;
}

/* --- Constant, ConstantOfShape, Range ------------------------------------ */

/* Fills out with element 0 of t converted to out's dtype. */
static void fill(gr_tensor *out, const gr_tensor *t) {
    int64_t numel = gr_shape_numel(&out->shape);
    int ints = gr_dtype_is_int(out->dtype) &&
               (gr_dtype_is_int(t->dtype) || t->dtype == GR_DTYPE_BOOL);
    int64_t xi = gr_dtype_load_i64(t->dtype, t->data, 0);
    double xf = gr_dtype_load_f64(t->dtype, t->data, 0);
    for (int64_t i = 0; i < numel; i++) {
        if (out->dtype == t->dtype) copy_elem(out, i, t, 0);
        else if (ints) gr_dtype_store_i64(out->dtype, out->data, i, xi);
        else gr_dtype_store_f64(out->dtype, out->data, i, xf);
    }
}

static gr_code eval_constant_of_shape(const gr_node *n, const gr_tensor *shape,
                                      gr_tensor *out, gr_status *st) {
    int64_t dims[GR_MAX_RANK];
    int count;
    GR_TRY(read_ints(n, shape, "shape", dims, GR_MAX_RANK, &count, st));
    for (int d = 0; d < count; d++)
        if (dims[d] < 0) return FAIL(GR_ERR_BAD_MODEL, "shape entry %d is negative", d);
    gr_shape s = gr_shape_make(count, dims);
    GR_TRY(gr_eval_check_shape(n, out, &s, st));
    const gr_attr *value = gr_node_attr(n, "value");
    float zero = 0.0f;
    gr_tensor def = {GR_DTYPE_F32, gr_shape_make(1, (int64_t[]){1}), &zero, 4};
    const gr_tensor *v = value && value->tensor ? value->tensor : &def;
    if (gr_shape_numel(&v->shape) != 1 || gr_dtype_size(v->dtype) == 0 || !v->data)
        return FAIL(GR_ERR_BAD_MODEL, "value must hold one element");
    fill(out, v);
    return GR_OK;
}

static gr_code eval_constant(const gr_node *n, gr_tensor *out, gr_status *st) {
    const gr_attr *a = n->n_attrs == 1 ? &n->attrs[0] : NULL;
    int64_t numel = gr_shape_numel(&out->shape);
    if (a && a->type == GR_ATTR_TENSOR && a->tensor && a->tensor->dtype == out->dtype &&
        a->tensor->nbytes == out->nbytes) {
        GR_TRY(gr_eval_check_shape(n, out, &a->tensor->shape, st));
        if (out->nbytes) memcpy(out->data, a->tensor->data, out->nbytes);
    } else if (a && (a->type == GR_ATTR_INT || a->type == GR_ATTR_FLOAT) && numel == 1) {
        if (a->type == GR_ATTR_INT) gr_dtype_store_i64(out->dtype, out->data, 0, a->i);
        else gr_dtype_store_f64(out->dtype, out->data, 0, a->f);
    } else if (a && (a->type == GR_ATTR_INTS || a->type == GR_ATTR_FLOATS) && numel == a->n) {
        for (int i = 0; i < a->n; i++) {
            if (a->type == GR_ATTR_INTS)
                gr_dtype_store_i64(out->dtype, out->data, i, a->ints[i]);
            else
                gr_dtype_store_f64(out->dtype, out->data, i, a->floats[i]);
        }
    } else {
        return FAIL(GR_ERR_UNSUPPORTED, "no value attribute matching the output");
    }
    return GR_OK;
}

/* Range: n = max(ceil((limit - start) / delta), 0); out[i] = start + i*delta. */
static gr_code eval_range(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                          gr_status *st) {
    for (int k = 0; k < 3; k++)
        if (gr_shape_numel(&in[k]->shape) != 1)
            return FAIL(GR_ERR_BAD_MODEL, "start, limit and delta must be scalars");
    int64_t count;
    if (gr_dtype_is_int(out->dtype)) {
        int64_t s = gr_dtype_load_i64(in[0]->dtype, in[0]->data, 0);
        int64_t l = gr_dtype_load_i64(in[1]->dtype, in[1]->data, 0);
        int64_t d = gr_dtype_load_i64(in[2]->dtype, in[2]->data, 0);
        if (d == 0) return FAIL(GR_ERR_BAD_MODEL, "delta is 0");
        if ((l > 0 && s < l - INT64_MAX) || (l < 0 && s > l + INT64_MAX))
            return FAIL(GR_ERR_BAD_MODEL, "range has too many elements");
        int64_t span = l - s; /* count = ceil(span / d), exactly */
        if (span == 0 || (span > 0) != (d > 0)) count = 0;
        else if (d > 0) count = 1 + (span - 1) / d;
        else count = 1 + (-span - 1) / (d < -INT64_MAX ? INT64_MAX : -d);
        gr_shape r = gr_shape_make(1, &count);
        GR_TRY(gr_eval_check_shape(n, out, &r, st));
        for (int64_t i = 0; i < count; i++)
            gr_dtype_store_i64(out->dtype, out->data, i,
                               (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d));
        return GR_OK;
    }
    double s = gr_dtype_load_f64(in[0]->dtype, in[0]->data, 0);
    double l = gr_dtype_load_f64(in[1]->dtype, in[1]->data, 0);
    double d = gr_dtype_load_f64(in[2]->dtype, in[2]->data, 0);
    if (d == 0 || !isfinite(s) || !isfinite(l) || !isfinite(d))
        return FAIL(GR_ERR_BAD_MODEL, "delta is 0 or a bound is not finite");
    double c = ceil((l - s) / d);
    if (!(c < 9.2e18)) return FAIL(GR_ERR_BAD_MODEL, "range has too many elements");
    count = c > 0 ? (int64_t)c : 0;
    gr_shape r = gr_shape_make(1, &count);
    GR_TRY(gr_eval_check_shape(n, out, &r, st));
    for (int64_t i = 0; i < count; i++)
        gr_dtype_store_f64(out->dtype, out->data, i, s + (double)i * d);
    return GR_OK;
}

/* --- dispatch ------------------------------------------------------------ */

int gr_eval_move_supports(gr_op op) {
    switch (op) {
    case GR_OP_SHAPE: case GR_OP_SIZE: case GR_OP_GATHER: case GR_OP_CONCAT:
    case GR_OP_UNSQUEEZE: case GR_OP_SQUEEZE: case GR_OP_RESHAPE: case GR_OP_FLATTEN:
    case GR_OP_SLICE: case GR_OP_IDENTITY: case GR_OP_EXPAND: case GR_OP_TILE:
    case GR_OP_TRANSPOSE: case GR_OP_CONSTANT: case GR_OP_CONSTANT_OF_SHAPE:
    case GR_OP_RANGE:
        return 1;
    default:
        return 0;
    }
}

gr_code gr_eval_move(const gr_node *n, const gr_tensor *const *in, gr_tensor *out,
                     gr_status *st) {
    switch (n->op) {
    case GR_OP_SHAPE: return eval_shape(n, in[0], out, st);
    case GR_OP_SIZE: return eval_size(n, in[0], out, st);
    case GR_OP_GATHER: return eval_gather(n, in[0], in[1], out, st);
    case GR_OP_CONCAT: return eval_concat(n, in, out, st);
    case GR_OP_UNSQUEEZE: return eval_unsqueeze(n, in, out, st);
    case GR_OP_SQUEEZE: return eval_squeeze(n, in, out, st);
    case GR_OP_RESHAPE: return eval_reshape(n, in, out, st);
    case GR_OP_FLATTEN: return eval_flatten(n, in[0], out, st);
    case GR_OP_SLICE: return eval_slice(n, in, out, st);
    case GR_OP_IDENTITY: return copy_as(n, in[0], &in[0]->shape, out, st);
    case GR_OP_EXPAND: return eval_expand(n, in, out, st);
    case GR_OP_TILE: return eval_tile(n, in, out, st);
    case GR_OP_TRANSPOSE: return eval_transpose(n, in[0], out, st);
    case GR_OP_CONSTANT: return eval_constant(n, out, st);
    case GR_OP_CONSTANT_OF_SHAPE: return eval_constant_of_shape(n, in[0], out, st);
    case GR_OP_RANGE: return eval_range(n, in, out, st);
    default: return FAIL(GR_ERR_UNSUPPORTED, "the evaluator cannot compute this op");
    }
}
