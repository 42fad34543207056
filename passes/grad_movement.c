/* grad_movement.c: gradient rules of data-movement ops (passes/grad.h).
 * Each moves dy back where the forward op took its elements from: the
 * inverse reshape or permutation, a Slice for Concat and Pad, a Pad for
 * Slice, a Concat for Split, sums for Expand, Tile and Gather. Index,
 * shape and axes inputs never get gradients. */
#include <string.h>

#include "passes/grad.h"

/* Slice-10 form: x sliced to [starts, ends) on axes (steps 1). */
static gr_value *slice(gr_grad_ctx *c, gr_value *x, int k, const int64_t *starts,
                       const int64_t *ends, const int64_t *axes, gr_status *st) {
    if (!x) return NULL;
    gr_value *in[4] = {x, grad_ints(c, k, starts, st), grad_ints(c, k, ends, st),
                       grad_ints(c, k, axes, st)};
    if (!in[1] || !in[2] || !in[3]) return NULL;
    return grad_op(c, GR_OP_SLICE, 4, in, st);
}

/* A node of op with one INT attribute set, shape inferred. */
static gr_value *op_with_int(gr_grad_ctx *c, gr_op op, int n_inputs, gr_value *const *in,
                             const char *attr, int64_t v, gr_status *st) {
    for (int i = 0; i < n_inputs; i++)
        if (!in[i]) return NULL;
    gr_node *n = grad_node(c, op, n_inputs, in, 1, st);
    if (!n || gr_node_set_int(gr_grad_graph(c), n, attr, v) != GR_OK) {
        if (n) gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
        return NULL;
    }
    return grad_infer(c, n, st);
}

static int norm_axis(int64_t axis, int rank) { return (int)(axis < 0 ? axis + rank : axis); }

/* Reshape, Flatten, Squeeze, Unsqueeze: dy reshaped back to x's shape. */
gr_code gr_grad_reshape(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                        gr_status *st) {
    if (gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = grad_reshape(c, dy[0], &n->inputs[0]->shape, st), st);
    return GR_OK;
}

/* y = transpose(x, perm): dx = transpose(dy, perm^-1) */
gr_code gr_grad_transpose(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                          gr_value **dx, gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    int rank = n->inputs[0]->shape.rank;
    const int64_t *perm = NULL;
    int64_t inverse[GR_MAX_RANK];
    int count = gr_node_ints(n, "perm", &perm);
    for (int i = 0; i < rank; i++) {
        int64_t p = count == rank ? perm[i] : rank - 1 - i; /* default: reversed */
        inverse[p] = i;
    }
    GRAD_TRY(dx[0] = grad_transpose(c, dy[0], inverse, st), st);
    return GR_OK;
}

/* y = concat(x_0, ..., x_k) on axis: dx_i = dy[off_i : off_i + d_i] */
gr_code gr_grad_concat(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                       gr_status *st) {
    int rank = n->outputs[0]->shape.rank;
    int64_t axis = norm_axis(gr_node_int(n, "axis", 0), rank), offset = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        int64_t extent = n->inputs[i]->shape.dims[axis];
        if (gr_grad_needed(c, n, i)) {
            int64_t end = offset + extent;
            GRAD_TRY(dx[i] = slice(c, dy[0], 1, &offset, &end, &axis, st), st);
        }
        offset += extent;
    }
    return GR_OK;
}

/* y_0..y_k = split(x) on axis: dx = concat(dy_0, ..., dy_k), zeros for
 * outputs that do not reach the loss. */
gr_code gr_grad_split(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                      gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *parts_buf[64], **parts = parts_buf;
    if (n->n_outputs > 64 && !(parts = gr_calloc((size_t)n->n_outputs, sizeof *parts)))
        return gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
    int ok = 1;
    for (int j = 0; j < n->n_outputs && ok; j++) {
        parts[j] = dy[j] ? dy[j] : grad_fill_like(c, n->outputs[j], 0, st);
        ok = parts[j] != NULL;
    }
    int axis = norm_axis(gr_node_int(n, "axis", 0), n->inputs[0]->shape.rank);
    if (ok) dx[0] = op_with_int(c, GR_OP_CONCAT, n->n_outputs, parts, "axis", axis, st);
    if (parts != parts_buf) gr_free(parts);
    GRAD_TRY(dx[0], st);
    return GR_OK;
}

/* Reads the constant list input i of n into v (fallback when absent). */
static int64_t const_list(const gr_node *n, int i, int64_t *v, int64_t max) {
    return i < n->n_inputs && n->inputs[i] ? gr_value_const_ints(n->inputs[i], v, max) : -2;
}

/* y = x[starts:ends] on axes (steps 1): dx = Pad(dy) with zeros. */
gr_code gr_grad_slice(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                      gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    const gr_shape *xs = &n->inputs[0]->shape, *ys = &n->outputs[0]->shape;
    int64_t starts[GR_MAX_RANK], axes[GR_MAX_RANK], steps[GR_MAX_RANK];
    int64_t k = const_list(n, 1, starts, GR_MAX_RANK);
    int64_t na = const_list(n, 3, axes, GR_MAX_RANK);
    int64_t ns = const_list(n, 4, steps, GR_MAX_RANK);
    if (k < 0 || na == -1 || ns == -1)
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "Slice with starts, axes or steps that are not constant has no gradient");
    int64_t pads[2 * GR_MAX_RANK] = {0};
    for (int64_t i = 0; i < k; i++) {
        int a = norm_axis(na >= 0 ? axes[i] : i, xs->rank);
        if (ns >= 0 && steps[i] != 1)
            return gr_fail(st, GR_ERR_UNSUPPORTED,
                           "Slice with step %lld on axis %d has no gradient rule (steps of 1 only)",
                           (long long)steps[i], a);
        int64_t d = xs->dims[a], s = starts[i] < 0 ? starts[i] + d : starts[i];
        s = s < 0 ? 0 : s > d ? d : s;
        if (ys->dims[a] == 0) s = 0;
        pads[a] = s;
        pads[a + xs->rank] = d - s - ys->dims[a];
    }
    gr_value *in[2] = {dy[0], grad_ints(c, 2 * xs->rank, pads, st)};
    GRAD_TRY(in[1], st);
    GRAD_TRY(dx[0] = grad_op(c, GR_OP_PAD, 2, in, st), st);
    return GR_OK;
}

/* y = gather(x, indices, axis): GatherGrad scatters dy back into x's
 * shape, summing repeated indices. */
gr_code gr_grad_gather(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                       gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    const gr_shape *xs = &n->inputs[0]->shape;
    gr_value *in[3] = {dy[0], n->inputs[1], grad_ints(c, xs->rank, xs->dims, st)};
    int axis = norm_axis(gr_node_int(n, "axis", 0), xs->rank);
    GRAD_TRY(dx[0] = op_with_int(c, GR_OP_GATHER_GRAD, 3, in, "axis", axis, st), st);
    return GR_OK;
}

/* y = expand(x, shape): dy summed over the broadcast axes */
gr_code gr_grad_expand(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                       gr_status *st) {
    if (gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = grad_unbroadcast(c, dy[0], n->inputs[0], st), st);
    return GR_OK;
}

/* y = tile(x, repeats), x:[d0, d1, ..]: dy reshaped to [r0, d0, r1, d1, ..]
 * (only axes with r > 1 split) and summed over the repeat axes. */
gr_code gr_grad_tile(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                     gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    const gr_shape *xs = &n->inputs[0]->shape;
    int64_t repeats[GR_MAX_RANK], dims[2 * GR_MAX_RANK], axes[GR_MAX_RANK];
    if (gr_value_const_ints(n->inputs[1], repeats, GR_MAX_RANK) != xs->rank)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Tile with repeats that are not constant has no "
                                               "gradient");
    int rank = 0, n_axes = 0;
    for (int i = 0; i < xs->rank; i++) {
        if (repeats[i] > 1) {
            axes[n_axes++] = rank;
            dims[rank++] = repeats[i];
        }
        dims[rank++] = xs->dims[i];
    }
    if (rank > GR_MAX_RANK)
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "Tile repeating %d axes of a rank-%d tensor: its gradient needs rank %d, "
                       "more than %d", n_axes, xs->rank, rank, GR_MAX_RANK);
    gr_shape split = gr_shape_make(rank, dims);
    gr_value *d = grad_reduce_sum(c, grad_reshape(c, dy[0], &split, st), n_axes, axes, 0, st);
    GRAD_TRY(dx[0] = grad_reshape(c, d, xs, st), st);
    return GR_OK;
}

/* y = pad(x) in constant mode: dx = dy without the padding (a Slice); the
 * constant value, if it needs one, gets the sum of dy over the padding. */
gr_code gr_grad_pad(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                    gr_status *st) {
    const char *mode = gr_node_string(n, "mode", "constant");
    if (strcmp(mode, "constant") != 0)
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "Pad in mode '%s' has no gradient rule (constant mode only)", mode);
    const gr_shape *xs = &n->inputs[0]->shape;
    int64_t pads[2 * GR_MAX_RANK], axes[GR_MAX_RANK];
    int64_t np = gr_value_const_ints(n->inputs[1], pads, 2 * GR_MAX_RANK);
    int64_t na = const_list(n, 3, axes, GR_MAX_RANK);
    if (np < 0 || na == -1)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Pad with pads or axes that are not constant has "
                                               "no gradient");
    int64_t k = np / 2, starts[GR_MAX_RANK], ends[GR_MAX_RANK];
    for (int64_t i = 0; i < k; i++) {
        if (pads[i] < 0 || pads[i + k] < 0)
            return gr_fail(st, GR_ERR_UNSUPPORTED,
                           "Pad with negative pads (cropping) has no gradient rule");
        if (na < 0) axes[i] = i;
        axes[i] = norm_axis(axes[i], xs->rank);
        starts[i] = pads[i];
        ends[i] = pads[i] + xs->dims[axes[i]];
    }
    gr_value *inner = slice(c, dy[0], (int)k, starts, ends, axes, st);
    if (gr_grad_needed(c, n, 0)) GRAD_TRY(dx[0] = inner, st);
    if (gr_grad_needed(c, n, 2)) {
        int64_t all[GR_MAX_RANK];
        for (int i = 0; i < xs->rank; i++) all[i] = i;
        gr_value *total = grad_reduce_sum(c, dy[0], xs->rank, all, 0, st);
        gr_value *kept = grad_reduce_sum(c, inner, xs->rank, all, 0, st);
        GRAD_TRY(dx[2] = grad_reshape(c, grad_binary(c, GR_OP_SUB, total, kept, st),
                                      &n->inputs[2]->shape, st), st);
    }
    return GR_OK;
}
