/* resize_plan.c: Resize's per-axis sampling plans, computed at compile time
 * in double exactly as ONNX's reference (onnx/reference/ops/op_resize.py,
 * separable form): source coordinate per coordinate_transformation_mode,
 * n taps per output index (neighbours clamped into the input, as edge
 * padding), their weights (nearest one-hot, linear, cubic, antialiased
 * linear/cubic, exclude_outside) and tf_crop_and_resize extrapolation. */
#include <math.h>
#include <string.h>

#include "codegen/resize_internal.h"

static gr_code parse_ctm(const char *s, rs_ctm *out, gr_status *st) {
    static const char *const names[] = {"half_pixel", "half_pixel_symmetric",
                                        "pytorch_half_pixel", "align_corners", "asymmetric",
                                        "tf_crop_and_resize"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i])) {
            *out = (rs_ctm)i;
            return GR_OK;
        }
    return gr_fail(st, GR_ERR_UNSUPPORTED, "Resize coordinate_transformation_mode '%s'", s);
}

static gr_code parse_modes(const gr_node *n, rs_params *p, gr_status *st) {
    const char *mode = gr_node_string(n, "mode", "nearest");
    const char *nm = gr_node_string(n, "nearest_mode", "round_prefer_floor");
    if (!strcmp(mode, "nearest")) p->mode = RS_NEAREST;
    else if (!strcmp(mode, "linear")) p->mode = RS_LINEAR;
    else if (!strcmp(mode, "cubic")) p->mode = RS_CUBIC;
    else return gr_fail(st, GR_ERR_UNSUPPORTED, "Resize mode '%s'", mode);
    if (!strcmp(nm, "round_prefer_floor")) p->nearest = RS_ROUND_PREFER_FLOOR;
    else if (!strcmp(nm, "round_prefer_ceil")) p->nearest = RS_ROUND_PREFER_CEIL;
    else if (!strcmp(nm, "floor")) p->nearest = RS_FLOOR;
    else if (!strcmp(nm, "ceil")) p->nearest = RS_CEIL;
    else return gr_fail(st, GR_ERR_UNSUPPORTED, "Resize nearest_mode '%s'", nm);
    GR_TRY(parse_ctm(gr_node_string(n, "coordinate_transformation_mode", "half_pixel"), &p->ctm, st));
    p->antialias = gr_node_int(n, "antialias", 0) != 0;
    p->exclude_outside = gr_node_int(n, "exclude_outside", 0) != 0;
    p->cubic_a = gr_node_float(n, "cubic_coeff_a", -0.75);
    p->extrapolation = gr_node_float(n, "extrapolation_value", 0.0);
    if (p->antialias && p->mode == RS_NEAREST)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Resize antialias with mode nearest");
    return GR_OK;
}

/* An input that is present and not empty (older exporters pass empty roi/scales). */
static const gr_value *present(const gr_node *n, int i) {
    const gr_value *v = i < n->n_inputs ? n->inputs[i] : NULL;
    return v && gr_value_numel(v) != 0 ? v : NULL;
}

static int isclose(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)); }

/* Scales (per axis of X) from the scales or sizes input and the policy. */
static gr_code read_scales(const gr_node *n, rs_params *p, const int *axis_of, int count,
                           gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    const gr_value *scales = present(n, 2), *sizes = present(n, 3);
    const gr_value *v = scales ? scales : sizes;
    if (!v || !gr_value_is_constant(v) || gr_value_numel(v) != count)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Resize needs constant scales or sizes, one per axis");
    const char *policy = gr_node_string(n, "keep_aspect_ratio_policy", "stretch");
    int keep = sizes && strcmp(policy, "stretch");
    double common = 0;
    for (int i = 0; i < count; i++) {
        int a = axis_of[i];
        double in = (double)x->shape.dims[a];
        double s = scales ? gr_dtype_load_f64(v->dtype, v->data, i)
                          : (double)gr_dtype_load_i64(v->dtype, v->data, i) / in;
        p->scale[a] = s;
        if (i == 0 || (!strcmp(policy, "not_larger") ? s < common : s > common)) common = s;
    }
    for (int i = 0; keep && i < count; i++) p->scale[axis_of[i]] = common;
    for (int i = 0; i < count; i++)
        if (!(p->scale[axis_of[i]] > 0) && y->shape.dims[axis_of[i]] > 0)
            return gr_fail(st, GR_ERR_BAD_MODEL, "Resize scale of axis %d is %g", axis_of[i],
                           p->scale[axis_of[i]]);
    return GR_OK;
}

/* roi per axis of X: [start, end], default [0, 1]. */
static gr_code read_roi(const gr_node *n, rs_params *p, const int *axis_of, int count,
                        gr_status *st) {
    int r = n->inputs[0]->shape.rank;
    for (int a = 0; a < r; a++) p->roi[a][0] = 0, p->roi[a][1] = 1;
    const gr_value *roi = present(n, 1);
    p->has_roi = roi != NULL;
    if (!roi) {
        if (p->ctm == RS_TF_CROP_AND_RESIZE)
            return gr_fail(st, GR_ERR_BAD_MODEL, "tf_crop_and_resize needs roi");
        return GR_OK;
    }
    if (!gr_value_is_constant(roi) || gr_value_numel(roi) != 2 * count) {
        if (p->ctm != RS_TF_CROP_AND_RESIZE) {
            p->has_roi = 0; /* unused by every other mode */
            return GR_OK;
        }
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Resize needs a constant roi of 2 values per axis");
    }
    p->roi_f32 = roi->dtype == GR_DTYPE_F32;
    for (int i = 0; i < count; i++) {
        p->roi[axis_of[i]][0] = gr_dtype_load_f64(roi->dtype, roi->data, i);
        p->roi[axis_of[i]][1] = gr_dtype_load_f64(roi->dtype, roi->data, i + count);
    }
    return GR_OK;
}

gr_code rs_params_read(const gr_node *n, rs_params *p, gr_status *st) {
    memset(p, 0, sizeof *p);
    GR_TRY(parse_modes(n, p, st));
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank, axis_of[GR_MAX_RANK];
    const int64_t *axes;
    int na = gr_node_ints(n, "axes", &axes);
    int count = na >= 0 ? na : r;
    if (count > r) return gr_fail(st, GR_ERR_BAD_MODEL, "Resize has %d axes for rank %d", count, r);
    for (int i = 0; i < count; i++) {
        int64_t a = na >= 0 ? axes[i] : i;
        if (a < -r || a >= r) return gr_fail(st, GR_ERR_BAD_MODEL, "Resize axis %lld", (long long)a);
        axis_of[i] = (int)(a < 0 ? a + r : a);
    }
    for (int a = 0; a < r; a++) p->scale[a] = 1.0;
    GR_TRY(read_scales(n, p, axis_of, count, st));
    GR_TRY(read_roi(n, p, axis_of, count, st));
    for (int i = 0; i < count; i++) {
        int a = axis_of[i];
        int same = isclose(p->scale[a], 1.0) && y->shape.dims[a] == x->shape.dims[a];
        if (same && p->has_roi) same = isclose(p->roi[a][0], 0.0) && isclose(p->roi[a][1], 1.0);
        p->resized[a] = !same;
    }
    return GR_OK;
}

/* ------------------------------------------------------------ one axis */

/* Source coordinate of output index o (reference _compute_x_ori). */
static double source_x(const rs_params *p, int a, double o, int64_t in_w, int64_t out_w,
                       int *extrapolated) {
    double s = p->scale[a], ow = s * (double)in_w, in1 = (double)(in_w - 1), x;
    *extrapolated = 0;
    switch (p->ctm) {
    case RS_ALIGN_CORNERS: return ow == 1 ? 0.0 : o * in1 / (ow - 1);
    case RS_ASYMMETRIC: return o / s;
    case RS_PYTORCH_HALF_PIXEL: return ow == 1 ? -0.5 : (o + 0.5) / s - 0.5;
    case RS_HALF_PIXEL: return (o + 0.5) / s - 0.5;
    case RS_HALF_PIXEL_SYMMETRIC: {
        double adjustment = (double)out_w / ow, center = (double)in_w / 2;
        double offset = center * (1 - adjustment);
        return offset + (o + 0.5) / s - 0.5;
    }
    case RS_TF_CROP_AND_RESIZE: {
        double r0 = p->roi[a][0], r1 = p->roi[a][1];
        /* numpy keeps float32 roi arithmetic in float32 */
        double span = p->roi_f32 ? (double)((float)r1 - (float)r0) : r1 - r0;
        double start = p->roi_f32 ? (double)((float)r0 * (float)in1) : r0 * in1;
        x = ow == 1 ? span * in1 / 2 : o * span * in1 / (ow - 1);
        x = x + start;
        *extrapolated = x < 0 || x > in1;
        return x;
    }
    }
    return 0;
}

static double cubic(double x, double A) {
    x = fabs(x);
    double x2 = x * x, x3 = x * x2;
    if (x <= 1) return (A + 2) * x3 - (A + 3) * x2 + 1;
    if (x < 2) return A * x3 - 5 * A * x2 + 8 * A * x - 4 * A;
    return 0.0;
}

/* Weights for ratio in (0, 1]; returns their count (<= RS_MAX_TAPS), 0 if
 * too many. */
static int coeffs(const rs_params *p, double ratio, double scale, double *w) {
    double A = p->cubic_a, sa = scale < 1 ? scale : 1;
    if (p->mode == RS_NEAREST) {
        int second = ratio == 1.0 ? 1
                   : p->nearest == RS_ROUND_PREFER_FLOOR ? ratio > 0.5
                   : p->nearest == RS_ROUND_PREFER_CEIL  ? ratio >= 0.5
                   : p->nearest == RS_CEIL;
        w[0] = !second;
        w[1] = second;
        return 2;
    }
    if (p->mode == RS_LINEAR && !p->antialias) {
        w[0] = 1 - ratio;
        w[1] = ratio;
        return 2;
    }
    if (p->mode == RS_CUBIC && !p->antialias) {
        double r1 = 1 - ratio;
        w[0] = ((A * (ratio + 1) - 5 * A) * (ratio + 1) + 8 * A) * (ratio + 1) - 4 * A;
        w[1] = ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1;
        w[2] = ((A + 2) * r1 - (A + 3)) * r1 * r1 + 1;
        w[3] = ((A * (r1 + 1) - 5 * A) * (r1 + 1) + 8 * A) * (r1 + 1) - 4 * A;
        return 4;
    }
    int linear = p->mode == RS_LINEAR;
    int start = (int)(floor((linear ? -1 : -2) / sa) + 1);
    int count = 2 - 2 * start; /* linear: footprint; cubic: i_end - i_start */
    if (count > RS_MAX_TAPS) return 0;
    double sum = 0;
    for (int t = 0; t < count; t++) {
        double arg = linear ? ((double)(start + t) - ratio) * sa : sa * ((double)(start + t) - ratio);
        double c = linear ? 1 - fabs(arg) : cubic(arg, A);
        if (linear) c = c < 0 ? 0 : c > 1 ? 1 : c;
        w[t] = c;
        sum += c;
    }
    for (int t = 0; t < count; t++) w[t] /= sum;
    return count;
}

/* Taps of output index o: input indices (clamped) and weights. */
static int taps_of(const rs_params *p, int a, int64_t o, int64_t in_w, int64_t out_w,
                   int64_t *idx, double *w, int *extrapolated) {
    double x = source_x(p, a, (double)o, in_w, out_w, extrapolated);
    double xi = floor(x), ratio = x == xi ? 1.0 : x - xi;
    int n = coeffs(p, ratio, p->scale[a], w);
    if (!n) return 0;
    int pad = (n + 1) / 2;
    double xp = x + pad, pp = floor(xp), frac = xp - pp;
    int64_t off = n % 2 == 0 ? (frac == 0 ? -(n / 2) : -(n / 2) + 1)
                             : (frac <= 0.5 ? -((n - 1) / 2) : -((n - 1) / 2) + 1);
    int64_t start = (int64_t)pp + off - pad;
    double sum = 0;
    for (int t = 0; t < n; t++) {
        int64_t j = start + t;
        if (p->exclude_outside && (j < 0 || j >= in_w)) w[t] = 0;
        sum += w[t];
        idx[t] = j < 0 ? 0 : j >= in_w ? in_w - 1 : j;
    }
    if (p->exclude_outside)
        for (int t = 0; t < n; t++) w[t] /= sum == 0 ? 1.0 : sum;
    return n;
}

gr_code rs_axis_plan(const rs_params *p, int a, int64_t in_w, int64_t out_w, int64_t in_stride,
                     rs_axis *ax, gr_status *st) {
    memset(ax, 0, sizeof *ax);
    int64_t idx[RS_MAX_TAPS];
    double w[RS_MAX_TAPS];
    int ext;
    int n = out_w > 0 && in_w > 0 ? taps_of(p, a, 0, in_w, out_w, idx, w, &ext) : 1;
    if (!n) return gr_fail(st, GR_ERR_UNSUPPORTED, "Resize axis %d needs more than %d taps", a, RS_MAX_TAPS);
    size_t cells = (size_t)(out_w ? out_w : 1) * (size_t)n;
    ax->taps = n;
    ax->off = gr_calloc(cells, sizeof(int64_t));
    ax->w = gr_calloc(cells, sizeof(double));
    ax->ext = gr_calloc((size_t)(out_w ? out_w : 1), 1);
    if (!ax->off || !ax->w || !ax->ext) {
        rs_axis_free(ax);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    }
    for (int64_t o = 0; o < out_w && in_w > 0; o++) {
        taps_of(p, a, o, in_w, out_w, idx, w, &ext);
        ax->ext[o] = (unsigned char)ext;
        ax->any_ext |= ext;
        for (int t = 0; t < n; t++) {
            ax->off[o * n + t] = idx[t] * in_stride;
            ax->w[o * n + t] = w[t];
        }
    }
    return GR_OK;
}

void rs_axis_free(rs_axis *ax) {
    gr_free(ax->off);
    gr_free(ax->w);
    gr_free(ax->ext);
    memset(ax, 0, sizeof *ax);
}
