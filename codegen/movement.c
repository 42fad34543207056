/* movement.c: Transpose, Slice, Expand, Tile, Concat and Split, each as one
 * or more views (movement_internal.h) specialised on the static shapes and
 * the constant perm/starts/ends/axes/steps/shape/repeats/split inputs.
 * Any dtype: elements move as raw bytes. */
#include <string.h>

#include "codegen/movement_internal.h"

gr_code mv_emit_node(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                     mv_view *views, int n_views, gr_status *st) {
    gr_code rc = cg_kernel_begin_node(m, k, name, n, st);
    if (rc != GR_OK) {
        mv_views_free(views, n_views);
        return rc;
    }
    GR_TRY(mv_emit(k, views, n_views, st));
    return cg_kernel_end(k, st);
}

/* x:[d_p0, d_p1, ..] <- x:[d0, d1, ..] with y[i] over x[perm[i]] */
gr_code cg_emit_transpose(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                          gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank;
    const int64_t *perm;
    int len = gr_node_ints(n, "perm", &perm);
    int64_t xs[GR_MAX_RANK], ys[GR_MAX_RANK];
    mv_strides(&x->shape, xs);
    mv_strides(&y->shape, ys);
    mv_view v;
    mv_view_init(&v, x, y);
    for (int i = 0; i < r; i++) {
        int64_t p = len >= 0 ? perm[i] : r - 1 - i;
        if (p < 0 || p >= r) return gr_fail(st, GR_ERR_BAD_MODEL, "perm[%d] is %lld", i, (long long)p);
        mv_add_affine(&v, y->shape.dims[i], ys[i], xs[p]);
    }
    return mv_emit_node(m, n, name, k, &v, 1, st);
}

/* Reads an optional constant integer list input (axes/steps), or fills the
 * default. Returns -1 on a non-constant list. */
static int64_t list_or_default(const gr_node *n, int i, int64_t len, int64_t def_step,
                               int64_t *out) {
    const gr_value *v = i < n->n_inputs ? n->inputs[i] : NULL;
    if (!v) {
        for (int64_t k = 0; k < len; k++) out[k] = def_step ? def_step : k;
        return len;
    }
    return gr_value_const_ints(v, out, GR_MAX_RANK);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* data:[d..] starts,ends,axes?,steps? (constant) -> strided window */
gr_code cg_emit_slice(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                      gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank;
    int64_t starts[GR_MAX_RANK], ends[GR_MAX_RANK], axes[GR_MAX_RANK], steps[GR_MAX_RANK];
    int64_t ns = gr_value_const_ints(n->inputs[1], starts, GR_MAX_RANK);
    int64_t ne = gr_value_const_ints(n->inputs[2], ends, GR_MAX_RANK);
    if (ns < 0 || ne != ns || ns > r)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Slice needs constant starts and ends of equal length");
    if (list_or_default(n, 3, ns, 0, axes) != ns || list_or_default(n, 4, ns, 1, steps) != ns)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Slice needs constant axes and steps like starts");
    int64_t xs[GR_MAX_RANK], ys[GR_MAX_RANK], start[GR_MAX_RANK], step[GR_MAX_RANK];
    mv_strides(&x->shape, xs);
    mv_strides(&y->shape, ys);
    for (int i = 0; i < r; i++) start[i] = 0, step[i] = 1;
    for (int64_t i = 0; i < ns; i++) {
        int a;
        GR_TRY(mv_axis(n, axes[i], r, &a, st));
        int64_t d = x->shape.dims[a], s = starts[i];
        if (steps[i] == 0) return gr_fail(st, GR_ERR_BAD_MODEL, "steps[%lld] is 0", (long long)i);
        if (s < 0) s += d;
        start[a] = steps[i] > 0 ? clamp64(s, 0, d) : clamp64(s, 0, d - 1);
        step[a] = steps[i];
    }
    mv_view v;
    mv_view_init(&v, x, y);
    for (int i = 0; i < r; i++) {
        v.in_base += y->shape.dims[i] ? start[i] * xs[i] : 0;
        mv_add_affine(&v, y->shape.dims[i], ys[i], step[i] * xs[i]);
    }
    return mv_emit_node(m, n, name, k, &v, 1, st);
}

/* input:[d..] -> broadcast to y's shape (right-aligned; extent-1 dims repeat) */
gr_code cg_emit_expand(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                       gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    int r = y->shape.rank, off = r - x->shape.rank;
    if (off < 0) return gr_fail(st, GR_ERR_BAD_MODEL, "output rank below input rank");
    int64_t xs[GR_MAX_RANK], ys[GR_MAX_RANK];
    mv_strides(&x->shape, xs);
    mv_strides(&y->shape, ys);
    mv_view v;
    mv_view_init(&v, x, y);
    for (int i = 0; i < r; i++) {
        int j = i - off;
        int64_t s = j >= 0 && x->shape.dims[j] != 1 ? xs[j] : 0;
        mv_add_affine(&v, y->shape.dims[i], ys[i], s);
    }
    return mv_emit_node(m, n, name, k, &v, 1, st);
}

/* input:[d_i] repeats:[r_i] -> [r_i * d_i]: output dim i is the pair
 * (repeat, j) with input stride (0, stride_i). */
gr_code cg_emit_tile(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                     gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank;
    int64_t xs[GR_MAX_RANK], ys[GR_MAX_RANK];
    mv_strides(&x->shape, xs);
    mv_strides(&y->shape, ys);
    mv_view v;
    mv_view_init(&v, x, y);
    for (int i = 0; i < r; i++) {
        int64_t d = x->shape.dims[i];
        int64_t reps = d ? y->shape.dims[i] / d : 0;
        mv_add_affine(&v, reps, ys[i] * d, 0);
        mv_add_affine(&v, d, ys[i], xs[i]);
    }
    return mv_emit_node(m, n, name, k, &v, 1, st);
}

/* inputs:[.., a_k, ..] -> [.., sum a_k, ..]: one view per input writing its
 * slab of the output. */
gr_code cg_emit_concat(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                       gr_status *st) {
    const gr_value *y = n->outputs[0];
    int r = y->shape.rank, axis;
    GR_TRY(mv_axis(n, gr_node_int(n, "axis", 0), r, &axis, st));
    mv_view *views = gr_calloc((size_t)n->n_inputs, sizeof *views);
    if (!views) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    int64_t ys[GR_MAX_RANK], xs[GR_MAX_RANK], offset = 0;
    mv_strides(&y->shape, ys);
    for (int i = 0; i < n->n_inputs; i++) {
        const gr_value *x = n->inputs[i];
        mv_strides(&x->shape, xs);
        mv_view_init(&views[i], x, y);
        views[i].out_base = offset * ys[axis];
        for (int d = 0; d < r; d++) mv_add_affine(&views[i], x->shape.dims[d], ys[d], xs[d]);
        offset += x->shape.dims[axis];
    }
    gr_code rc = mv_emit_node(m, n, name, k, views, n->n_inputs, st);
    gr_free(views);
    return rc;
}

/* Extent along the axis of output i: its inferred shape, or for an omitted
 * output the split input / num_outputs chunks (ceil(d/k), the last smaller). */
static int64_t split_part(const gr_node *n, int i, int axis, int64_t d) {
    if (n->outputs[i]) return n->outputs[i]->shape.dims[axis];
    int64_t sizes[64];
    const gr_value *sv = n->n_inputs > 1 ? n->inputs[1] : NULL;
    if (sv && n->n_outputs <= 64 && gr_value_const_ints(sv, sizes, 64) == n->n_outputs)
        return sizes[i];
    int64_t k = n->n_outputs, chunk = (d + k - 1) / k;
    return i < k - 1 ? chunk : d - chunk * (k - 1);
}

/* input:[.., d, ..] -> outputs [.., s_i, ..] along axis (sizes from the
 * inferred output shapes). */
gr_code cg_emit_split(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                      gr_status *st) {
    const gr_value *x = n->inputs[0];
    int r = x->shape.rank, axis;
    GR_TRY(mv_axis(n, gr_node_int(n, "axis", 0), r, &axis, st));
    mv_view *views = gr_calloc((size_t)n->n_outputs, sizeof *views);
    if (!views) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    int64_t ys[GR_MAX_RANK], xs[GR_MAX_RANK], offset = 0;
    mv_strides(&x->shape, xs);
    int n_views = 0;
    for (int i = 0; i < n->n_outputs; i++) {
        const gr_value *y = n->outputs[i];
        int64_t part = split_part(n, i, axis, x->shape.dims[axis]);
        if (y) {
            mv_strides(&y->shape, ys);
            mv_view *v = &views[n_views++];
            mv_view_init(v, x, y);
            v->in_base = offset * xs[axis];
            for (int d = 0; d < r; d++) mv_add_affine(v, y->shape.dims[d], ys[d], xs[d]);
        }
        offset += part;
    }
    gr_code rc = mv_emit_node(m, n, name, k, views, n_views, st);
    gr_free(views);
    return rc;
}
