/* grad_nn.c: gradient rules of the normalisations, pooling, Softmax and
 * LogSoftmax, Resize and graft's SoftmaxCrossEntropy (passes/grad.h). The
 * norms recompute their statistics from X with ReduceMean nodes (CSE
 * merges duplicates with the forward graph's); windowed pools become
 * graft's MaxPoolGrad / AveragePoolGrad with auto_pad resolved to explicit
 * pads; Resize contracts dY with per-axis sampling matrices. */
#include <string.h>

#include "passes/grad.h"

static gr_value *fail_nomem(gr_status *st) {
    gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
    return NULL;
}

/* Axes [from, rank) of a rank-r value, except skip (-1: none). */
static int axes_from(int from, int rank, int skip, int64_t *axes) {
    int k = 0;
    for (int i = from; i < rank; i++)
        if (i != skip) axes[k++] = i;
    return k;
}

/* ReduceMean (keepdims) of x over axes. */
static gr_value *reduce_mean(gr_grad_ctx *c, gr_value *x, int n_axes, const int64_t *axes,
                             gr_status *st) {
    if (!x) return NULL;
    gr_value *in[2] = {x, grad_ints(c, n_axes, axes, st)};
    return in[1] ? grad_op(c, GR_OP_REDUCE_MEAN, 2, in, st) : NULL;
}

/* A per-channel vector v:[C] as [C,1,..,1] to broadcast against a rank-r
 * value laid out [N,C,...]. */
static gr_value *per_channel(gr_grad_ctx *c, gr_value *v, int rank, gr_status *st) {
    if (!v) return NULL;
    int64_t dims[GR_MAX_RANK];
    dims[0] = v->shape.dims[0];
    for (int i = 1; i < rank - 1; i++) dims[i] = 1;
    gr_shape s = gr_shape_make(rank - 1, dims);
    return grad_reshape(c, v, &s, st);
}

/* 1 / sqrt(v + eps) */
static gr_value *inv_std(gr_grad_ctx *c, gr_value *var, double eps, gr_status *st) {
    if (!var) return NULL;
    gr_value *s = grad_binary(c, GR_OP_ADD, var, grad_scalar(c, var->dtype, eps, st), st);
    return grad_unary(c, GR_OP_RECIPROCAL, grad_unary(c, GR_OP_SQRT, s, st), st);
}

/* Normalisation over axes (keepdims statistics): xhat = (x - mean) * inv,
 * inv = 1/sqrt(mean((x - mean)^2) + eps). Given g = dY * scale (the
 * gradient of xhat):
 *   dX = inv * (g - mean(g) - xhat * mean(g * xhat)).
 * *xhat_out receives xhat for the scale gradient. */
static gr_value *norm_dx(gr_grad_ctx *c, gr_value *x, gr_value *g, int n_axes,
                         const int64_t *axes, double eps, gr_value **xhat_out, gr_status *st) {
    gr_value *xc = grad_binary(c, GR_OP_SUB, x, reduce_mean(c, x, n_axes, axes, st), st);
    gr_value *var = reduce_mean(c, grad_binary(c, GR_OP_MUL, xc, xc, st), n_axes, axes, st);
    gr_value *inv = inv_std(c, var, eps, st);
    gr_value *xhat = grad_binary(c, GR_OP_MUL, xc, inv, st);
    *xhat_out = xhat;
    gr_value *gx = reduce_mean(c, grad_binary(c, GR_OP_MUL, g, xhat, st), n_axes, axes, st);
    gr_value *t = grad_binary(c, GR_OP_SUB, g, reduce_mean(c, g, n_axes, axes, st), st);
    t = grad_binary(c, GR_OP_SUB, t, grad_binary(c, GR_OP_MUL, xhat, gx, st), st);
    return grad_binary(c, GR_OP_MUL, t, inv, st);
}

/* Y = (X - mean) / sqrt(var + eps) * scale + B per channel (axis 1), with
 * mean and var given (inference mode): dX = dY * scale * inv,
 * dscale = sum(dY * xhat), dB = sum(dY), sums over every axis but 1. */
gr_code gr_grad_batch_norm(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                           gr_value **dx, gr_status *st) {
    if (gr_node_int(n, "training_mode", 0))
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "BatchNormalization in training mode must be rewritten into primitive "
                       "ops before autodiff");
    if (!dy[0]) return GR_OK;
    gr_value *x = n->inputs[0];
    int r = x->shape.rank;
    double eps = gr_node_float(n, "epsilon", 1e-5);
    gr_value *inv = per_channel(c, inv_std(c, n->inputs[4], eps, st), r, st);
    int64_t axes[GR_MAX_RANK];
    int k = axes_from(0, r, 1, axes);
    if (gr_grad_needed(c, n, 0)) {
        gr_value *s = grad_binary(c, GR_OP_MUL, per_channel(c, n->inputs[1], r, st), inv, st);
        GRAD_TRY(dx[0] = grad_binary(c, GR_OP_MUL, dy[0], s, st), st);
    }
    if (gr_grad_needed(c, n, 1)) {
        gr_value *xc = grad_binary(c, GR_OP_SUB, x, per_channel(c, n->inputs[3], r, st), st);
        gr_value *xhat = grad_binary(c, GR_OP_MUL, xc, inv, st);
        GRAD_TRY(dx[1] = grad_reduce_sum(c, grad_binary(c, GR_OP_MUL, dy[0], xhat, st), k,
                                         axes, 0, st), st);
    }
    if (gr_grad_needed(c, n, 2)) GRAD_TRY(dx[2] = grad_reduce_sum(c, dy[0], k, axes, 0, st), st);
    return GR_OK;
}

/* Y = xhat * Scale + B with xhat normalised over axes [axis, r). */
gr_code gr_grad_layer_norm(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                           gr_value **dx, gr_status *st) {
    if ((n->n_outputs > 1 && dy[1]) || (n->n_outputs > 2 && dy[2]))
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "the loss depends on LayerNormalization's Mean or InvStdDev output; "
                       "only Y is differentiated");
    if (!dy[0]) return GR_OK;
    gr_value *x = n->inputs[0], *scale = n->inputs[1];
    gr_value *bias = n->n_inputs > 2 ? n->inputs[2] : NULL;
    int r = x->shape.rank;
    int64_t axis = gr_node_int(n, "axis", -1);
    if (axis < 0) axis += r;
    int64_t axes[GR_MAX_RANK];
    int k = axes_from((int)axis, r, -1, axes);
    double eps = gr_node_float(n, "epsilon", 1e-5);
    gr_value *xhat = NULL;
    if (gr_grad_needed(c, n, 0)) {
        gr_value *g = grad_binary(c, GR_OP_MUL, dy[0], scale, st);
        GRAD_TRY(dx[0] = norm_dx(c, x, g, k, axes, eps, &xhat, st), st);
    }
    if (gr_grad_needed(c, n, 1)) {
        if (!xhat) {
            gr_value *m = reduce_mean(c, x, k, axes, st);
            gr_value *xc = grad_binary(c, GR_OP_SUB, x, m, st);
            gr_value *var = reduce_mean(c, grad_binary(c, GR_OP_MUL, xc, xc, st), k, axes, st);
            xhat = grad_binary(c, GR_OP_MUL, xc, inv_std(c, var, eps, st), st);
        }
        GRAD_TRY(dx[1] = grad_unbroadcast(c, grad_binary(c, GR_OP_MUL, dy[0], xhat, st),
                                          scale, st), st);
    }
    if (bias && gr_grad_needed(c, n, 2))
        GRAD_TRY(dx[2] = grad_unbroadcast(c, dy[0], bias, st), st);
    return GR_OK;
}

/* Y = xhat * scale + B, xhat normalised over the spatial axes per (n, c);
 * scale, B: [C]. */
gr_code gr_grad_instance_norm(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                              gr_value **dx, gr_status *st) {
    gr_value *x = n->inputs[0];
    int r = x->shape.rank;
    int64_t axes[GR_MAX_RANK], sum_axes[GR_MAX_RANK];
    int k = axes_from(2, r, -1, axes), ks = axes_from(0, r, 1, sum_axes);
    double eps = gr_node_float(n, "epsilon", 1e-5);
    gr_value *xhat = NULL;
    gr_value *g = grad_binary(c, GR_OP_MUL, dy[0], per_channel(c, n->inputs[1], r, st), st);
    gr_value *d = norm_dx(c, x, g, k, axes, eps, &xhat, st);
    if (gr_grad_needed(c, n, 0)) GRAD_TRY(dx[0] = d, st);
    if (gr_grad_needed(c, n, 1))
        GRAD_TRY(dx[1] = grad_reduce_sum(c, grad_binary(c, GR_OP_MUL, dy[0], xhat, st), ks,
                                         sum_axes, 0, st), st);
    if (gr_grad_needed(c, n, 2))
        GRAD_TRY(dx[2] = grad_reduce_sum(c, dy[0], ks, sum_axes, 0, st), st);
    return GR_OK;
}

/* ---------------------------------------------------------------- pooling */

/* op(dY, X) with n's window attributes, auto_pad resolved into pads
 * (grad_window_read). */
static gr_value *pool_grad(gr_grad_ctx *c, const gr_node *n, gr_op op, gr_value *d,
                           gr_status *st) {
    gr_value *x = n->inputs[0];
    grad_window a;
    if (grad_window_read(n, 0, &x->shape, &n->outputs[0]->shape, NULL, &a, st) != GR_OK)
        return NULL;
    const char *ap = gr_node_string(n, "auto_pad", "NOTSET");
    int same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    int ceil_mode = same ? 0 : (int)gr_node_int(n, "ceil_mode", 0);
    gr_value *in[2] = {d, x};
    gr_node *m = grad_node(c, op, 2, in, 1, st);
    if (!m) return NULL;
    gr_graph *g = gr_grad_graph(c);
    if (gr_node_set_ints(g, m, "kernel_shape", a.ns, a.kernel) != GR_OK ||
        gr_node_set_ints(g, m, "strides", a.ns, a.strides) != GR_OK ||
        gr_node_set_ints(g, m, "dilations", a.ns, a.dilations) != GR_OK ||
        gr_node_set_ints(g, m, "pads", 2 * a.ns, a.pads) != GR_OK ||
        gr_node_set_int(g, m, "ceil_mode", ceil_mode) != GR_OK ||
        (op == GR_OP_AVERAGE_POOL_GRAD &&
         gr_node_set_int(g, m, "count_include_pad", gr_node_int(n, "count_include_pad", 0)) !=
             GR_OK))
        return fail_nomem(st);
    return grad_infer(c, m, st);
}

/* Only Y (output 0) has a gradient; Indices are integers. Each window's
 * gradient goes to its first maximum (MaxPoolGrad). */
gr_code gr_grad_max_pool(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                         gr_status *st) {
    if (dy[0] && gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = pool_grad(c, n, GR_OP_MAX_POOL_GRAD, dy[0], st), st);
    return GR_OK;
}

gr_code gr_grad_average_pool(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                             gr_value **dx, gr_status *st) {
    if (gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = pool_grad(c, n, GR_OP_AVERAGE_POOL_GRAD, dy[0], st), st);
    return GR_OK;
}

/* Y:[N,C,1..] = mean of X:[N,C,D..] over D..: dX = Expand(dY / count). */
gr_code gr_grad_global_average_pool(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                                    gr_value **dx, gr_status *st) {
    gr_value *x = n->inputs[0];
    int64_t count = 1;
    for (int i = 2; i < x->shape.rank; i++) count *= x->shape.dims[i];
    if (gr_grad_needed(c, n, 0)) {
        gr_value *s = grad_scalar(c, dy[0]->dtype, 1.0 / (double)count, st);
        GRAD_TRY(dx[0] = grad_expand(c, grad_binary(c, GR_OP_MUL, dy[0], s, st), x, st), st);
    }
    return GR_OK;
}

/* Y = max of X over D..: dX = Where(X == Y, dY, 0). Every element equal to
 * its window's maximum gets the whole dY (ties each receive it, unlike
 * MaxPoolGrad's first maximum). */
gr_code gr_grad_global_max_pool(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                                gr_value **dx, gr_status *st) {
    gr_value *x = n->inputs[0];
    if (gr_grad_needed(c, n, 0)) {
        gr_value *in[3] = {grad_binary(c, GR_OP_EQUAL, x, n->outputs[0], st),
                           grad_expand(c, dy[0], x, st), grad_scalar(c, x->dtype, 0.0, st)};
        GRAD_TRY(in[0] && in[1] && in[2], st);
        GRAD_TRY(dx[0] = grad_op(c, GR_OP_WHERE, 3, in, st), st);
    }
    return GR_OK;
}

/* ---------------------------------------------------------------- softmax */

static int softmax_axis(const gr_node *n) {
    int64_t axis = gr_node_int(n, "axis", -1);
    return (int)(axis < 0 ? axis + n->inputs[0]->shape.rank : axis);
}

/* y = softmax(x): dx = y * (dy - sum(dy * y, axis)). */
static gr_value *softmax_dx(gr_grad_ctx *c, gr_value *y, gr_value *d, int64_t axis,
                            gr_status *st) {
    gr_value *s = grad_reduce_sum(c, grad_binary(c, GR_OP_MUL, d, y, st), 1, &axis, 1, st);
    return grad_binary(c, GR_OP_MUL, y, grad_binary(c, GR_OP_SUB, d, s, st), st);
}

gr_code gr_grad_softmax(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                        gr_status *st) {
    if (gr_grad_needed(c, n, 0))
        GRAD_TRY(dx[0] = softmax_dx(c, n->outputs[0], dy[0], softmax_axis(n), st), st);
    return GR_OK;
}

/* y = log_softmax(x): dx = dy - exp(y) * sum(dy, axis). */
gr_code gr_grad_log_softmax(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                            gr_value **dx, gr_status *st) {
    int64_t axis = softmax_axis(n);
    if (gr_grad_needed(c, n, 0)) {
        gr_value *s = grad_reduce_sum(c, dy[0], 1, &axis, 1, st);
        gr_value *p = grad_unary(c, GR_OP_EXP, n->outputs[0], st);
        GRAD_TRY(dx[0] = grad_binary(c, GR_OP_SUB, dy[0], grad_binary(c, GR_OP_MUL, p, s, st),
                                     st), st);
    }
    return GR_OK;
}

/* loss, probs = SoftmaxCrossEntropy(logits, labels, weights?): dlogits =
 * SoftmaxCrossEntropyGrad(dloss, probs, labels, weights?), plus softmax's
 * gradient when the loss also depends on probs directly. Labels and
 * weights get none. */
gr_code gr_grad_softmax_cross_entropy(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy,
                                      gr_value **dx, gr_status *st) {
    gr_value *probs = n->n_outputs > 1 ? n->outputs[1] : NULL;
    if (!probs)
        return gr_fail(st, GR_ERR_INTERNAL,
                       "node '%s' has no probs output (output 1); the loss pass must create it "
                       "for the gradient",
                       n->name);
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *d = NULL;
    if (dy[0]) {
        gr_value *w = n->n_inputs > 2 ? n->inputs[2] : NULL;
        gr_value *in[4] = {dy[0], probs, n->inputs[1], w};
        gr_node *m = grad_node(c, GR_OP_SOFTMAX_CROSS_ENTROPY_GRAD, w ? 4 : 3, in, 1, st);
        if (!m) return st->code;
        if (gr_node_set_float(gr_grad_graph(c), m, "label_smoothing",
                              gr_node_float(n, "label_smoothing", 0.0)) != GR_OK)
            return gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
        GRAD_TRY(d = grad_infer(c, m, st), st);
    }
    if (dy[1]) {
        gr_value *e = softmax_dx(c, probs, dy[1], 1, st);
        GRAD_TRY(d = d ? grad_binary(c, GR_OP_ADD, d, e, st) : e, st);
    }
    dx[0] = d;
    return GR_OK;
}

/* ----------------------------------------------------------------- resize */

/* An input that is present and not empty (exporters pass empty roi/scales). */
static gr_value *present_input(const gr_node *n, int i) {
    gr_value *v = i < n->n_inputs ? n->inputs[i] : NULL;
    return v && gr_value_numel(v) != 0 ? v : NULL;
}

/* A CONST of dtype with count values. */
static gr_value *const_vector(gr_grad_ctx *c, gr_dtype dtype, int count, const double *v,
                              gr_status *st) {
    gr_shape s = gr_shape_make(1, (int64_t[]){count});
    gr_value *r = gr_graph_add_data(gr_grad_graph(c), GR_VALUE_CONST, NULL, dtype, &s, NULL);
    if (!r) return fail_nomem(st);
    for (int i = 0; i < count; i++) gr_dtype_store_f64(dtype, r->data, i, v[i]);
    return r;
}

/* R:[in, out] = Resize of the identity I:[in, in] along its axis 1 with n's
 * sampling of axis a (scale s, or size out when sizes gave it, roi and
 * modes alike, extrapolation 0), so R[i, o] is the weight output o gives
 * input i along a. */
static gr_value *resize_matrix(gr_grad_ctx *c, const gr_node *n, int a, int k, int count,
                               double s, gr_status *st) {
    gr_value *x = n->inputs[0], *roi = present_input(n, 1), *scales = present_input(n, 2);
    int64_t in = x->shape.dims[a], out = n->outputs[0]->shape.dims[a];
    gr_shape is = gr_shape_make(2, (int64_t[]){in, in});
    gr_value *eye = gr_graph_add_data(gr_grad_graph(c), GR_VALUE_CONST, NULL, x->dtype, &is, NULL);
    if (!eye) return fail_nomem(st);
    for (int64_t i = 0; i < in; i++) gr_dtype_store_f64(x->dtype, eye->data, i * in + i, 1.0);
    gr_value *in4[4] = {eye, NULL, NULL, NULL};
    int crop = roi && !strcmp(gr_node_string(n, "coordinate_transformation_mode", "half_pixel"),
                              "tf_crop_and_resize");
    if (crop)
        in4[1] = const_vector(c, roi->dtype, 4,
                              (double[]){0, gr_dtype_load_f64(roi->dtype, roi->data, k), 1,
                                         gr_dtype_load_f64(roi->dtype, roi->data, k + count)},
                              st);
    if (scales)
        in4[2] = const_vector(c, scales->dtype, 2, (double[]){1.0, s}, st);
    else
        in4[3] = const_vector(c, GR_DTYPE_I64, 2, (double[]){(double)in, (double)out}, st);
    if ((crop && !in4[1]) || (!in4[2] && !in4[3])) return NULL;
    gr_node *m = grad_node(c, GR_OP_RESIZE, 4, in4, 1, st);
    if (!m) return NULL;
    gr_graph *g = gr_grad_graph(c);
    static const char *const strings[] = {"mode", "coordinate_transformation_mode",
                                          "nearest_mode"};
    for (int i = 0; i < 3; i++)
        if (gr_node_set_string(g, m, strings[i], gr_node_string(n, strings[i], "")) != GR_OK)
            return fail_nomem(st);
    if (gr_node_set_float(g, m, "cubic_coeff_a", gr_node_float(n, "cubic_coeff_a", -0.75)) !=
            GR_OK ||
        gr_node_set_int(g, m, "exclude_outside", gr_node_int(n, "exclude_outside", 0)) != GR_OK ||
        gr_node_set_int(g, m, "antialias", gr_node_int(n, "antialias", 0)) != GR_OK ||
        gr_node_set_float(g, m, "extrapolation_value", 0.0) != GR_OK)
        return fail_nomem(st);
    gr_value *r = grad_infer(c, m, st);
    if (r && (r->shape.rank != 2 || r->shape.dims[1] != out)) {
        gr_fail(st, GR_ERR_INTERNAL, "Resize's sampling matrix of axis %d has %lld columns, "
                "expected %lld", a, (long long)r->shape.dims[1], (long long)out);
        return NULL;
    }
    return r;
}

/* d contracted along axis a with R:[in, out]: d[.., o, ..] -> [.., i, ..]
 * = sum_o d[.., o, ..] R[i, o]. */
static gr_value *apply_along(gr_grad_ctx *c, gr_value *d, int a, gr_value *r, gr_status *st) {
    if (!d || !r) return NULL;
    int rank = d->shape.rank;
    int64_t perm[GR_MAX_RANK];
    for (int i = 0; i < rank; i++) perm[i] = i;
    perm[a] = rank - 1;
    perm[rank - 1] = a; /* a swap: its own inverse */
    int64_t swap[2] = {1, 0};
    gr_value *rt = grad_transpose(c, r, swap, st);
    if (a == rank - 1) return grad_binary(c, GR_OP_MATMUL, d, rt, st);
    gr_value *m = grad_binary(c, GR_OP_MATMUL, grad_transpose(c, d, perm, st), rt, st);
    return grad_transpose(c, m, perm, st);
}

/* Resize is linear in X and separable: along each resized axis a, output o
 * is sum_i M_a[o, i] X[.., i, ..] (nearest: one-hot rows; tf_crop_and_resize
 * extrapolation adds a constant). So dX = dY contracted with every M_a,
 * and M_a^T is computed by Resize itself applied to an identity matrix, so
 * the rule shares the kernel's sampling exactly. Only X gets a gradient. */
gr_code gr_grad_resize(gr_grad_ctx *c, const gr_node *n, gr_value *const *dy, gr_value **dx,
                       gr_status *st) {
    if (!gr_grad_needed(c, n, 0)) return GR_OK;
    gr_value *x = n->inputs[0], *scales = present_input(n, 2), *sizes = present_input(n, 3);
    gr_value *v = scales ? scales : sizes;
    int rank = x->shape.rank;
    const int64_t *axes;
    int na = gr_node_ints(n, "axes", &axes), count = na >= 0 ? na : rank;
    if (!v || !gr_value_is_constant(v) || gr_value_numel(v) != count)
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "Resize is differentiated only with constant scales or sizes");
    if (sizes && !scales && strcmp(gr_node_string(n, "keep_aspect_ratio_policy", "stretch"),
                                   "stretch"))
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "Resize with keep_aspect_ratio_policy '%s' is not differentiated",
                       gr_node_string(n, "keep_aspect_ratio_policy", ""));
    const char *ctm = gr_node_string(n, "coordinate_transformation_mode", "half_pixel");
    gr_value *roi = present_input(n, 1);
    int crop = !strcmp(ctm, "tf_crop_and_resize");
    if (crop && (!roi || !gr_value_is_constant(roi) || gr_value_numel(roi) != 2 * count))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "tf_crop_and_resize needs a constant roi");
    gr_value *d = dy[0];
    for (int k = 0; k < count; k++) {
        int a = (int)(na >= 0 ? (axes[k] < 0 ? axes[k] + rank : axes[k]) : k);
        int64_t in = x->shape.dims[a], out = n->outputs[0]->shape.dims[a];
        double s = scales ? gr_dtype_load_f64(v->dtype, v->data, k) : (double)out / (double)in;
        if (s == 1.0 && in == out && !crop) continue; /* the identity along a */
        GRAD_TRY(d = apply_along(c, d, a, resize_matrix(c, n, a, k, count, s, st), st), st);
    }
    dx[0] = d;
    return GR_OK;
}
