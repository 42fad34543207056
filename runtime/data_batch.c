/* data_batch.c: one batch of samples preprocessed into the model's input.
 * Per sample: scale (raw * scale), convert channels, fit to the input's
 * H,W (bilinear with half-pixel centres, or centred pad/crop), normalise,
 * write in the input's layout. Samples are independent and each writes
 * its own slice of the output, so the OpenMP loop is bit-identical for
 * any thread count; the error reported is that of the lowest failing
 * position in the batch. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/data_internal.h"

/* The model input per sample: an image [c,h,w] (any layout) or flat. */
typedef struct {
    int image;
    int64_t c, h, w;
    int64_t numel;
    int channels_last;
} target;

/* One sample as it is stored. data is element 0 of the sample. */
typedef struct {
    gr_dtype dtype;
    const void *data;
    int64_t numel;
    int image;
    int64_t c, h, w;
    int channels_last;
    gr_shape shape;
    const char *file; /* for messages */
} source;

/* Batch-wide settings, fixed before the loop. */
typedef struct {
    const gr_dataset *d;
    const gr_preprocess *pp;
    target t;
    gr_dtype out_dtype;
    double scale;
    int n_norm;
} job;

/* ------------------------------------------------------------ geometry */

static gr_code make_target(const gr_preprocess *pp, target *t, gr_status *st) {
    const gr_shape *s = &pp->input;
    char text[128];
    memset(t, 0, sizeof *t);
    if (s->rank < 1 || s->rank > GR_MAX_RANK || !gr_shape_is_static(s) ||
        gr_shape_numel(s) <= 0)
        return gr_fail(st, GR_ERR_BAD_ARG, "the model input per sample %s is not a static, "
                       "non-empty shape", s->rank >= 0 ? gr_shape_str(s, text, sizeof text)
                                                       : "(unknown)");
    t->numel = gr_shape_numel(s);
    if (s->rank == 2) t->image = 1, t->c = 1, t->h = s->dims[0], t->w = s->dims[1];
    if (s->rank == 3) {
        int nhwc = pp->layout == GR_DATA_LAYOUT_NHWC;
        t->image = 1;
        t->channels_last = nhwc;
        t->c = s->dims[nhwc ? 2 : 0];
        t->h = s->dims[nhwc ? 0 : 1];
        t->w = s->dims[nhwc ? 1 : 2];
    }
    return GR_OK;
}

static int is_channel_count(int64_t v) { return v == 1 || v == 3 || v == 4; }

/* Sample i of dense data, seen as an image where its rank allows. */
static void dense_source(const gr_dataset *d, int64_t i, gr_data_layout layout, source *s) {
    memset(s, 0, sizeof *s);
    s->dtype = d->data.dtype;
    s->numel = d->sample_numel;
    s->data = (const char *)d->data.data + (size_t)(i * d->sample_numel) *
                                               gr_dtype_size(d->data.dtype);
    s->shape = d->sample;
    s->file = d->path;
    const int64_t *dims = d->sample.dims;
    if (d->sample.rank == 2) s->image = 1, s->c = 1, s->h = dims[0], s->w = dims[1];
    if (d->sample.rank == 3) {
        int first = is_channel_count(dims[0]), last = is_channel_count(dims[2]);
        int hwc = last && !first ? 1 : first && !last ? 0 : layout == GR_DATA_LAYOUT_NHWC;
        s->image = 1;
        s->channels_last = hwc;
        s->c = dims[hwc ? 2 : 0];
        s->h = dims[hwc ? 0 : 1];
        s->w = dims[hwc ? 1 : 2];
    }
}

static double load(const source *s, int64_t j) {
    return s->dtype == GR_DTYPE_U8 ? ((const unsigned char *)s->data)[j]
                                   : gr_dtype_load_f64(s->dtype, s->data, j);
}

/* (x - mean) / std of channel c, in f32 as torchvision's Normalize. */
static float normalise(const job *jb, float x, int64_t c) {
    if (!jb->n_norm) return x;
    int k = jb->n_norm == 1 ? 0 : (int)c;
    return (x - jb->pp->mean[k]) / jb->pp->std[k];
}

static float scaled(const job *jb, const source *s, int64_t j) {
    return (float)(load(s, j) * jb->scale);
}

/* -------------------------------------------------------------- samples */

/* Same element count and order: convert element by element. */
static void convert_direct(const job *jb, const source *s, void *out, int64_t base) {
    const target *t = &jb->t;
    int64_t hw = t->h * t->w;
    for (int64_t j = 0; j < t->numel; j++) {
        int64_t c = !t->image ? 0 : t->channels_last ? j % t->c : j / hw;
        gr_dtype_store_f64(jb->out_dtype, out, base + j, normalise(jb, scaled(jb, s, j), c));
    }
}

/* Output channel c of pixel (y, x) from the source's channels. */
static float channel_value(const job *jb, const source *s, int64_t c, int64_t y, int64_t x) {
    int64_t at = s->channels_last ? (y * s->w + x) * s->c : y * s->w + x;
    int64_t step = s->channels_last ? 1 : s->h * s->w;
    int64_t tc = jb->t.c;
    if (s->c == tc) return scaled(jb, s, at + c * step);
    if (s->c == 1 || (s->c == 2 && tc == 3)) return scaled(jb, s, at);
    if (tc == 1) { /* luma of RGB(A), or the grey of grey+alpha */
        if (s->c == 2) return scaled(jb, s, at);
        double v = 0.299 * load(s, at) + 0.587 * load(s, at + step) +
                   0.114 * load(s, at + 2 * step);
        return (float)(v * jb->scale);
    }
    return scaled(jb, s, at + c * step); /* RGBA -> RGB: drop alpha */
}

static int channels_convertible(int64_t from, int64_t to) {
    return from == to || from == 1 || (from == 2 && (to == 1 || to == 3)) ||
           (to == 1 && (from == 3 || from == 4)) || (from == 4 && to == 3);
}

/* plane [h_s,w_s] -> [h_t,w_t]: PyTorch's bilinear, align_corners=False,
 * computed in f32 in PyTorch's order. */
static void axis_weights(int64_t in, int64_t out, int64_t j, int64_t *i0, int64_t *i1,
                         float *w0, float *w1) {
    float scale = (float)in / (float)out;
    float real = scale * ((float)j + 0.5f) - 0.5f;
    if (real < 0) real = 0;
    int64_t i = (int64_t)floorf(real);
    if (i > in - 1) i = in - 1;
    float l1 = real - (float)i;
    l1 = l1 < 0 ? 0 : l1 > 1 ? 1 : l1;
    *i0 = i;
    *i1 = i < in - 1 ? i + 1 : i;
    *w1 = l1;
    *w0 = 1.0f - l1;
}

static void resize_plane(const float *src, int64_t hs, int64_t ws, float *dst, int64_t ht,
                         int64_t wt) {
    for (int64_t y = 0; y < ht; y++) {
        int64_t y0, y1;
        float wy0, wy1;
        axis_weights(hs, ht, y, &y0, &y1, &wy0, &wy1);
        for (int64_t x = 0; x < wt; x++) {
            int64_t x0, x1;
            float wx0, wx1;
            axis_weights(ws, wt, x, &x0, &x1, &wx0, &wx1);
            float top = src[y0 * ws + x0] * wx0 + src[y0 * ws + x1] * wx1;
            float bottom = src[y1 * ws + x0] * wx0 + src[y1 * ws + x1] * wx1;
            dst[y * wt + x] = top * wy0 + bottom * wy1;
        }
    }
}

/* Centred: dst(y, x) = src(y - oy, x - ox), 0 outside; o = floor((t - s) / 2). */
static void pad_plane(const float *src, int64_t hs, int64_t ws, float *dst, int64_t ht,
                      int64_t wt) {
    int64_t dy = ht - hs, dx = wt - ws;
    int64_t oy = dy >= 0 ? dy / 2 : -((-dy + 1) / 2), ox = dx >= 0 ? dx / 2 : -((-dx + 1) / 2);
    for (int64_t y = 0; y < ht; y++)
        for (int64_t x = 0; x < wt; x++) {
            int64_t sy = y - oy, sx = x - ox;
            dst[y * wt + x] = sy >= 0 && sy < hs && sx >= 0 && sx < ws ? src[sy * ws + sx] : 0;
        }
}

/* Channel conversion, fit and layout: source planes [c_t,h_s,w_s] in f32,
 * fitted to [c_t,h_t,w_t], then normalised into out. */
static gr_code convert_image(const job *jb, const source *s, void *out, int64_t base,
                             gr_status *st) {
    const target *t = &jb->t;
    int64_t src_plane = s->h * s->w, dst_plane = t->h * t->w;
    int same_size = s->h == t->h && s->w == t->w;
    float *src = gr_malloc(sizeof *src * (size_t)(t->c * src_plane) + 1);
    float *dst = same_size ? src : gr_malloc(sizeof *dst * (size_t)(t->c * dst_plane) + 1);
    if (!src || !dst) {
        gr_free(src);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory preprocessing a sample of '%s'",
                       s->file);
    }
    for (int64_t c = 0; c < t->c; c++)
        for (int64_t y = 0; y < s->h; y++)
            for (int64_t x = 0; x < s->w; x++)
                src[c * src_plane + y * s->w + x] = channel_value(jb, s, c, y, x);
    for (int64_t c = 0; !same_size && c < t->c; c++) {
        if (jb->pp->fit == GR_DATA_FIT_PAD)
            pad_plane(src + c * src_plane, s->h, s->w, dst + c * dst_plane, t->h, t->w);
        else resize_plane(src + c * src_plane, s->h, s->w, dst + c * dst_plane, t->h, t->w);
    }
    for (int64_t c = 0; c < t->c; c++)
        for (int64_t p = 0; p < dst_plane; p++) {
            int64_t at = t->channels_last ? p * t->c + c : c * dst_plane + p;
            gr_dtype_store_f64(jb->out_dtype, out, base + at,
                               normalise(jb, dst[c * dst_plane + p], c));
        }
    if (dst != src) gr_free(dst);
    gr_free(src);
    return GR_OK;
}

static gr_code mismatch(const job *jb, const source *s, int64_t i, const char *why,
                        gr_status *st) {
    char a[128], b[128];
    return gr_fail(st, GR_ERR_BAD_ARG, "'%s': sample %lld %s%s (%lld values) cannot feed the "
                   "model input %s: %s", s->file, (long long)i, gr_dtype_name(s->dtype),
                   gr_shape_str(&s->shape, a, sizeof a), (long long)s->numel,
                   gr_shape_str(&jb->pp->input, b, sizeof b), why);
}

static gr_code convert_sample(const job *jb, const source *s, int64_t i, void *out,
                              int64_t base, gr_status *st) {
    const target *t = &jb->t;
    if (gr_dtype_is_int(jb->out_dtype)) {
        if (!gr_dtype_is_int(s->dtype) && s->dtype != GR_DTYPE_BOOL)
            return mismatch(jb, s, i, "the input takes integers", st);
        if (s->numel != t->numel)
            return mismatch(jb, s, i, "integer inputs need the same element count", st);
        for (int64_t j = 0; j < t->numel; j++)
            gr_dtype_store_i64(jb->out_dtype, out, base + j,
                               gr_dtype_load_i64(s->dtype, s->data, j));
        return GR_OK;
    }
    int reorder = s->image && t->image && s->c > 1 && s->channels_last != t->channels_last;
    if (s->numel == t->numel && !reorder) {
        convert_direct(jb, s, out, base);
        return GR_OK;
    }
    if (!s->image || !t->image)
        return mismatch(jb, s, i, "the element counts differ and one side is not an image",
                        st);
    if (!channels_convertible(s->c, t->c))
        return mismatch(jb, s, i, "no conversion between these channel counts", st);
    if (s->h < 1 || s->w < 1) return mismatch(jb, s, i, "the image is empty", st);
    return convert_image(jb, s, out, base, st);
}

/* Sample indices[k] into slot k of out. */
static gr_code one_sample(const job *jb, int64_t i, int64_t k, void *out, gr_status *st) {
    const gr_dataset *d = jb->d;
    source s;
    int64_t base = k * jb->t.numel;
    if (d->format != GR_DATA_FORMAT_IMAGES) {
        dense_source(d, i, jb->pp->layout, &s);
        return convert_sample(jb, &s, i, out, base, st);
    }
    int want = jb->t.image && jb->t.c <= 4 ? (int)jb->t.c : 0;
    unsigned char *pixels = NULL;
    int w = 0, h = 0, c = 0;
    GR_TRY(data_decode_image(d, i, want, &pixels, &w, &h, &c, st));
    memset(&s, 0, sizeof s);
    s.dtype = GR_DTYPE_U8;
    s.data = pixels;
    s.image = 1, s.channels_last = 1;
    s.c = c, s.h = h, s.w = w;
    s.numel = s.c * s.h * s.w;
    s.shape = gr_shape_make(3, (int64_t[]){h, w, c});
    s.file = d->images[i].path;
    gr_code rc = convert_sample(jb, &s, i, out, base, st);
    data_free_pixels(pixels);
    return rc;
}

/* ------------------------------------------------------------------ batch */

static gr_code make_job(const gr_dataset *d, const gr_preprocess *pp, gr_dtype input_dtype,
                        job *jb, gr_status *st) {
    memset(jb, 0, sizeof *jb);
    jb->d = d, jb->pp = pp, jb->out_dtype = input_dtype;
    GR_TRY(make_target(pp, &jb->t, st));
    if (!gr_dtype_is_int(input_dtype) && !gr_dtype_is_float(input_dtype))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "model inputs of type %s cannot be fed from "
                       "data", gr_dtype_name(input_dtype));
    jb->scale = pp->scale != 0 ? pp->scale : gr_dataset_dtype(d) == GR_DTYPE_U8 ? 1 / 255.0 : 1;
    jb->n_norm = pp->n_norm;
    int64_t channels = jb->t.image ? jb->t.c : 1;
    if (jb->n_norm < 0 || jb->n_norm > GR_DATA_MAX_CHANNELS ||
        (jb->n_norm > 1 && jb->n_norm != channels))
        return gr_fail(st, GR_ERR_BAD_ARG, "normalisation gives %d mean/std values; the model "
                       "input %s has %lld channel%s (give 1 or %lld)", jb->n_norm,
                       gr_shape_str(&pp->input, (char[128]){0}, 128), (long long)channels,
                       channels == 1 ? "" : "s", (long long)channels);
    for (int k = 0; k < jb->n_norm; k++)
        if (!(pp->std[k] != 0) || !isfinite(pp->std[k]) || !isfinite(pp->mean[k]))
            return gr_fail(st, GR_ERR_BAD_ARG, "normalisation: std %g (channel %d) must be "
                           "finite and non-zero, mean %g finite", pp->std[k], k, pp->mean[k]);
    return GR_OK;
}

static gr_code write_labels(const gr_dataset *d, const int64_t *indices, int64_t n,
                            gr_dtype dtype, void *out, gr_status *st) {
    if (!d->labels)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' has no labels (give a label file)", d->path);
    int64_t w = d->label_width;
    if (gr_dtype_is_int(dtype)) {
        if (w != 1)
            return gr_fail(st, GR_ERR_BAD_ARG, "'%s': each label holds %lld values; class ids "
                           "are one", d->label_source, (long long)w);
        for (int64_t k = 0; k < n; k++) {
            double v = d->labels[indices[k]];
            if (v < 0 || v != floor(v) || v > 9e15)
                return gr_fail(st, GR_ERR_BAD_ARG, "'%s': label %g of sample %lld is not a "
                               "class id (a non-negative integer)", d->label_source, v,
                               (long long)indices[k]);
            gr_dtype_store_i64(dtype, out, k, (int64_t)v);
        }
        return GR_OK;
    }
    if (!gr_dtype_is_float(dtype))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "labels of type %s", gr_dtype_name(dtype));
    for (int64_t k = 0; k < n; k++)
        for (int64_t j = 0; j < w; j++)
            gr_dtype_store_f64(dtype, out, k * w + j, d->labels[indices[k] * w + j]);
    return GR_OK;
}

gr_code gr_dataset_batch(const gr_dataset *d, const int64_t *indices, int64_t n,
                         const gr_preprocess *pp, gr_dtype input_dtype, void *out,
                         gr_dtype label_dtype, void *labels_out, gr_status *st) {
    if (!d || (n > 0 && (!indices || (out && !pp))) || n < 0)
        return gr_fail(st, GR_ERR_BAD_ARG, "gr_dataset_batch: NULL or negative argument");
    for (int64_t k = 0; k < n; k++)
        if (indices[k] < 0 || indices[k] >= d->n)
            return gr_fail(st, GR_ERR_BAD_ARG, "'%s': sample index %lld out of range (%lld "
                           "samples)", d->path, (long long)indices[k], (long long)d->n);
    job jb = {0};
    if (n > 0 && out) GR_TRY(make_job(d, pp, input_dtype, &jb, st));
    int64_t failed = n, n_samples = out ? n : 0;
    #pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < n_samples; k++) {
        gr_status local = {0};
        if (one_sample(&jb, indices[k], k, out, &local) != GR_OK) {
            #pragma omp critical(gr_data_batch_error)
            if (k < failed) {
                failed = k;
                if (st) *st = local;
            }
        }
    }
    if (failed < n) return st ? st->code : GR_ERR_BAD_ARG;
    if (labels_out && label_dtype != GR_DTYPE_UNDEFINED)
        return write_labels(d, indices, n, label_dtype, labels_out, st);
    return GR_OK;
}
