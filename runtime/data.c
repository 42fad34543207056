/* data.c: data sets for training. Recognises the format from the content
 * (directory, NPY, IDX plain or gzip, CSV), reads NPY and IDX into one
 * dense tensor [n, ...], attaches labels from a second file, and makes
 * the seeded train/validation split and epoch orders. Preprocessing into
 * the model's input is in data_batch.c, CSV in data_csv.c, images in
 * data_image.c. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "runtime/data_internal.h"

char *data_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = gr_malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

/* ------------------------------------------------------------ raw reading */

/* gzread of up to len bytes; *got gets the count. Errors name the file. */
static gr_code gz_read(gzFile f, const char *path, void *buf, size_t len, size_t *got,
                       gr_status *st) {
    *got = 0;
    while (*got < len) {
        size_t want = len - *got > (1u << 30) ? (1u << 30) : len - *got;
        int n = gzread(f, (char *)buf + *got, (unsigned)want);
        if (n < 0) {
            int err = 0;
            const char *msg = gzerror(f, &err);
            if (err == Z_ERRNO)
                return gr_fail(st, GR_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
            if (err == Z_MEM_ERROR)
                return gr_fail(st, GR_ERR_NOMEM, "out of memory reading '%s'", path);
            return gr_fail(st, GR_ERR_BAD_ARG, "'%s' is truncated or corrupt (gzip: %s)", path,
                           msg);
        }
        if (n == 0) break;
        *got += (size_t)n;
    }
    /* A truncated gzip stream ends early with Z_BUF_ERROR set. */
    int err = 0;
    const char *msg = gzerror(f, &err);
    if (*got < len && err != Z_OK && err != Z_STREAM_END)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' is truncated or corrupt: %s", path, msg);
    return GR_OK;
}

static gr_code gz_open(const char *path, gzFile *f, gr_status *st) {
    if (!(*f = gzopen(path, "rb")))
        return gr_fail(st, errno == ENOMEM ? GR_ERR_NOMEM : GR_ERR_IO, "cannot open '%s': %s",
                       path, errno ? strerror(errno) : "gzopen failed");
    return GR_OK;
}

gr_code data_read_all(const char *path, char **buf, size_t *len, gr_status *st) {
    *buf = NULL;
    *len = 0;
    gzFile f;
    GR_TRY(gz_open(path, &f, st));
    size_t cap = 1 << 16, n = 0;
    char *b = gr_malloc(cap + 1);
    gr_code rc = b ? GR_OK : gr_fail(st, GR_ERR_NOMEM, "out of memory reading '%s'", path);
    while (rc == GR_OK) {
        size_t got = 0;
        rc = gz_read(f, path, b + n, cap - n, &got, st);
        n += got;
        if (rc != GR_OK || n < cap) break;
        char *grown = gr_realloc(b, cap * 2 + 1);
        if (!grown) rc = gr_fail(st, GR_ERR_NOMEM, "out of memory reading '%s'", path);
        else b = grown, cap *= 2;
    }
    gzclose(f);
    if (rc != GR_OK) {
        gr_free(b);
        return rc;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return GR_OK;
}

/* -------------------------------------------------------------------- IDX */

/* IDX type codes 0x08..0x0E; 0 marks the unused codes. */
static gr_dtype idx_dtype(int code) {
    switch (code) {
    case 0x08: return GR_DTYPE_U8;
    case 0x09: return GR_DTYPE_I8;
    case 0x0B: return GR_DTYPE_I16;
    case 0x0C: return GR_DTYPE_I32;
    case 0x0D: return GR_DTYPE_F32;
    case 0x0E: return GR_DTYPE_F64;
    default: return GR_DTYPE_UNDEFINED;
    }
}

static int is_idx_magic(const unsigned char *b, size_t len) {
    return len >= 4 && b[0] == 0 && b[1] == 0 && b[3] >= 1 && b[3] <= GR_MAX_RANK;
}

static void swap_bytes(void *data, int64_t numel, size_t size) {
    unsigned char *b = data;
    for (int64_t i = 0; i < numel; i++, b += size)
        for (size_t j = 0; j < size / 2; j++) {
            unsigned char t = b[j];
            b[j] = b[size - 1 - j];
            b[size - 1 - j] = t;
        }
}

/* Header: magic 00 00 TYPE NDIM, then NDIM big-endian u32 dims. */
static gr_code idx_header(gzFile f, const char *path, gr_tensor *t, gr_status *st) {
    unsigned char head[4 + 4 * GR_MAX_RANK];
    size_t got = 0;
    GR_TRY(gz_read(f, path, head, 4, &got, st));
    if (got < 4 || !is_idx_magic(head, got) || idx_dtype(head[2]) == GR_DTYPE_UNDEFINED)
        return gr_fail(st, GR_ERR_BAD_ARG,
                       "'%s': bad IDX magic 0x%02x%02x%02x%02x (expected 0x0000TTNN: type "
                       "TT 08 09 0B 0C 0D 0E, NN 1-%d dims)", path, got > 0 ? head[0] : 0,
                       got > 1 ? head[1] : 0, got > 2 ? head[2] : 0, got > 3 ? head[3] : 0,
                       GR_MAX_RANK);
    int rank = head[3];
    GR_TRY(gz_read(f, path, head + 4, 4 * (size_t)rank, &got, st));
    if (got < 4 * (size_t)rank)
        return gr_fail(st, GR_ERR_BAD_ARG,
                       "'%s' is truncated: its IDX header names %d dims, the file ends "
                       "after %zu of them", path, rank, got / 4);
    t->dtype = idx_dtype(head[2]);
    t->shape = gr_shape_scalar();
    t->shape.rank = rank;
    for (int i = 0; i < rank; i++) {
        const unsigned char *p = head + 4 + 4 * i;
        t->shape.dims[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                                     (uint32_t)p[2] << 8 | p[3]);
    }
    return GR_OK;
}

/* The data after the header, grown as it arrives so a lying header cannot
 * make us allocate more than the file holds (plus one chunk). */
static gr_code idx_data(gzFile f, const char *path, gr_tensor *t, gr_status *st) {
    size_t size = gr_dtype_size(t->dtype), want = size;
    for (int i = 0; i < t->shape.rank; i++) {
        if (t->shape.dims[i] && want > SIZE_MAX / 2 / (size_t)t->shape.dims[i])
            return gr_fail(st, GR_ERR_BAD_ARG, "'%s': IDX dims too large", path);
        want *= (size_t)t->shape.dims[i];
    }
    size_t have = 0, cap = 0;
    unsigned char *buf = NULL;
    while (have < want) {
        size_t next = cap ? cap * 2 : (size_t)1 << 20;
        if (next > want) next = want;
        unsigned char *grown = gr_realloc(buf, next);
        if (!grown) {
            gr_free(buf);
            return gr_fail(st, GR_ERR_NOMEM, "out of memory reading '%s'", path);
        }
        buf = grown, cap = next;
        size_t got = 0;
        gr_code rc = gz_read(f, path, buf + have, cap - have, &got, st);
        have += got;
        if (rc != GR_OK || have < cap) {
            gr_free(buf);
            char shape[128];
            if (rc != GR_OK) return rc;
            return gr_fail(st, GR_ERR_BAD_ARG,
                           "'%s' is truncated: its IDX header describes %s%s, %zu bytes of "
                           "data, the file holds %zu", path, gr_dtype_name(t->dtype),
                           gr_shape_str(&t->shape, shape, sizeof shape), want, have);
        }
    }
    unsigned char extra;
    size_t got = 0;
    gr_code rc = gz_read(f, path, &extra, 1, &got, st);
    if (rc == GR_OK && got)
        rc = gr_fail(st, GR_ERR_BAD_ARG, "'%s': data after the %zu bytes its IDX header "
                     "describes", path, want);
    if (rc != GR_OK) {
        gr_free(buf);
        return rc;
    }
    if (size > 1) swap_bytes(buf, (int64_t)(want / size), size);
    t->data = buf;
    t->nbytes = want;
    return GR_OK;
}

static gr_code idx_read(const char *path, gr_tensor *t, gr_status *st) {
    gzFile f;
    GR_TRY(gz_open(path, &f, st));
    memset(t, 0, sizeof *t);
    gr_code rc = idx_header(f, path, t, st);
    if (rc == GR_OK) rc = idx_data(f, path, t, st);
    gzclose(f);
    return rc;
}

/* ------------------------------------------------------------ dense data */

/* Rejects NaN and Inf in float data, naming the first bad sample. */
static gr_code check_finite(const gr_dataset *d, gr_status *st) {
    if (!gr_dtype_is_float(d->data.dtype) || !d->sample_numel) return GR_OK;
    int64_t numel = d->n * d->sample_numel;
    for (int64_t i = 0; i < numel; i++) {
        double v = gr_dtype_load_f64(d->data.dtype, d->data.data, i);
        if (!isfinite(v))
            return gr_fail(st, GR_ERR_NUMERIC,
                           "'%s': sample %lld holds %s (element %lld of the sample)", d->path,
                           (long long)(i / d->sample_numel), isnan(v) ? "NaN" : "Inf",
                           (long long)(i % d->sample_numel));
    }
    return GR_OK;
}

/* The tensor's first dim counts the samples; the rest is one sample. */
static gr_code adopt_tensor(gr_dataset *d, gr_tensor *t, gr_status *st) {
    d->data = *t;
    memset(t, 0, sizeof *t);
    if (d->data.shape.rank < 1)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' holds a scalar; the first dim must count "
                       "the samples", d->path);
    if (d->data.dtype == GR_DTYPE_BOOL) d->data.dtype = GR_DTYPE_U8;
    d->n = d->data.shape.dims[0];
    d->sample = gr_shape_make(d->data.shape.rank - 1, d->data.shape.dims + 1);
    d->sample_numel = gr_shape_numel(&d->sample);
    return check_finite(d, st);
}

/* -------------------------------------------------------------- load */

/* The first bytes of the content (decompressed) and of the raw file. */
static gr_code peek(const char *path, unsigned char *buf, size_t size, size_t *len,
                    int *gzip, gr_status *st) {
    FILE *raw = fopen(path, "rb");
    if (!raw) return gr_fail(st, GR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    unsigned char two[2] = {0};
    *gzip = fread(two, 1, 2, raw) == 2 && two[0] == 0x1f && two[1] == 0x8b;
    fclose(raw);
    gzFile f;
    GR_TRY(gz_open(path, &f, st));
    gr_code rc = gz_read(f, path, buf, size, len, st);
    gzclose(f);
    return rc;
}

static int looks_like_text(const unsigned char *b, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (b[i] < 0x20 && b[i] != '\n' && b[i] != '\r' && b[i] != '\t') return 0;
    return len > 0;
}

static gr_code load_file(gr_dataset *d, const gr_data_opts *opts, gr_status *st) {
    unsigned char head[512];
    size_t len = 0;
    int gzip = 0;
    GR_TRY(peek(d->path, head, sizeof head, &len, &gzip, st));
    gr_tensor t = {0};
    gr_code rc;
    if (gr_npy_is_npy(head, len)) {
        d->format = GR_DATA_FORMAT_NPY;
        if (gzip)
            return gr_fail(st, GR_ERR_UNSUPPORTED, "'%s': gzip-compressed .npy files are "
                           "not supported; decompress it first", d->path);
        rc = gr_npy_read(d->path, &t, st);
    } else if (len >= 2 && head[0] == 0 && head[1] == 0) {
        d->format = GR_DATA_FORMAT_IDX;
        rc = idx_read(d->path, &t, st);
    } else if (looks_like_text(head, len)) {
        d->format = GR_DATA_FORMAT_CSV;
        char *text = NULL;
        size_t n = 0;
        GR_TRY(data_read_all(d->path, &text, &n, st));
        rc = data_load_csv(d, text, n, opts, st);
        gr_free(text);
        return rc == GR_OK ? check_finite(d, st) : rc;
    } else {
        return gr_fail(st, GR_ERR_BAD_ARG,
                       len ? "'%s': unrecognised data format (first bytes %02x %02x %02x %02x): "
                             "expected NPY, IDX (plain or gzip), CSV or an image folder"
                           : "'%s' is empty", d->path, len > 0 ? head[0] : 0,
                       len > 1 ? head[1] : 0, len > 2 ? head[2] : 0, len > 3 ? head[3] : 0);
    }
    if (rc != GR_OK) {
        gr_free(t.data);
        return rc;
    }
    return adopt_tensor(d, &t, st);
}

gr_code gr_dataset_load(const char *path, const gr_data_opts *opts, gr_dataset **out,
                        gr_status *st) {
    if (!path || !out) return gr_fail(st, GR_ERR_BAD_ARG, "gr_dataset_load: NULL argument");
    *out = NULL;
    static const gr_data_opts defaults = {0};
    if (!opts) opts = &defaults;
    struct stat sb;
    if (stat(path, &sb))
        return gr_fail(st, GR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    gr_dataset *d = gr_calloc(1, sizeof *d);
    if (!d || !(d->path = data_strdup(path))) {
        gr_free(d);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory loading '%s'", path);
    }
    gr_code rc;
    if (S_ISDIR(sb.st_mode)) {
        d->format = GR_DATA_FORMAT_IMAGES;
        rc = data_load_images(d, st);
    } else {
        rc = load_file(d, opts, st);
    }
    if (rc != GR_OK) {
        gr_dataset_free(d);
        return rc;
    }
    *out = d;
    return GR_OK;
}

void gr_dataset_free(gr_dataset *d) {
    if (!d) return;
    data_free_images(d);
    gr_free(d->data.data);
    gr_free(d->labels);
    gr_free(d->label_source);
    gr_free(d->path);
    gr_free(d);
}

/* -------------------------------------------------------------- accessors */

int64_t gr_dataset_count(const gr_dataset *d) { return d ? d->n : 0; }
gr_data_format gr_dataset_format(const gr_dataset *d) { return d->format; }

gr_dtype gr_dataset_dtype(const gr_dataset *d) {
    return d->format == GR_DATA_FORMAT_IMAGES ? GR_DTYPE_U8 : d->data.dtype;
}

gr_shape gr_dataset_sample_shape(const gr_dataset *d, int64_t i) {
    if (d->format != GR_DATA_FORMAT_IMAGES) return d->sample;
    if (i < 0 || i >= d->n) return gr_shape_unknown();
    const data_image *im = &d->images[i];
    return gr_shape_make(3, (int64_t[]){im->height, im->width, im->channels});
}

char *gr_dataset_describe(const gr_dataset *d, char *buf, size_t size) {
    static const char *names[] = {"NPY", "IDX", "CSV", "image folder"};
    if (d->format == GR_DATA_FORMAT_IMAGES) {
        snprintf(buf, size, "image folder, %lld images in %lld classes, from '%s'",
                 (long long)d->n, (long long)d->n_folders, d->path);
        return buf;
    }
    char shape[128];
    snprintf(buf, size, "%s %s%s from '%s'", names[d->format], gr_dtype_name(d->data.dtype),
             gr_shape_str(&d->data.shape, shape, sizeof shape), d->path);
    return buf;
}

const char *gr_dataset_class_name(const gr_dataset *d, int64_t k) {
    if (!d || d->format != GR_DATA_FORMAT_IMAGES || k < 0 || k >= d->n_folders) return NULL;
    return d->class_names[k];
}

/* ----------------------------------------------------------------- labels */

gr_code data_set_labels(gr_dataset *d, double *labels, int64_t width, const char *source,
                        gr_status *st) {
    char *copy = data_strdup(source);
    if (!copy) {
        gr_free(labels);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    }
    gr_free(d->labels);
    gr_free(d->label_source);
    d->labels = labels;
    d->label_width = width;
    d->label_source = copy;
    return GR_OK;
}

/* Labels from a dense data set l (already loaded from path) onto d. */
static gr_code labels_from(gr_dataset *d, const gr_dataset *l, const char *path,
                           gr_status *st) {
    if (l->format == GR_DATA_FORMAT_IMAGES)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' is a directory, not a label file", path);
    if (l->n != d->n)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' has %lld labels but the data ('%s') has "
                       "%lld samples", path, (long long)l->n, d->path, (long long)d->n);
    int64_t width = l->sample_numel;
    if (width < 1)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s': each label is empty", path);
    double *v = gr_malloc(sizeof *v * (size_t)(d->n * width) + 1);
    if (!v) return gr_fail(st, GR_ERR_NOMEM, "out of memory for the labels of '%s'", path);
    for (int64_t i = 0; i < d->n * width; i++) v[i] = gr_dtype_load_f64(l->data.dtype,
                                                                     l->data.data, i);
    return data_set_labels(d, v, width, path, st);
}

gr_code gr_dataset_set_labels(gr_dataset *d, const char *path, gr_status *st) {
    if (!d || !path) return gr_fail(st, GR_ERR_BAD_ARG, "gr_dataset_set_labels: NULL argument");
    gr_dataset *l = NULL;
    gr_data_opts opts = {.no_labels = 1};
    GR_TRY(gr_dataset_load(path, &opts, &l, st));
    gr_code rc = labels_from(d, l, path, st);
    gr_dataset_free(l);
    return rc;
}

int gr_dataset_has_labels(const gr_dataset *d) { return d && d->labels; }
int64_t gr_dataset_label_width(const gr_dataset *d) { return d && d->labels ? d->label_width : 0; }

int64_t gr_dataset_n_classes(const gr_dataset *d) {
    if (!d || !d->labels) return 0;
    if (d->format == GR_DATA_FORMAT_IMAGES && !strcmp(d->label_source, d->path))
        return d->n_folders;
    if (d->label_width != 1) return 0;
    double max = -1;
    for (int64_t i = 0; i < d->n; i++) {
        double v = d->labels[i];
        if (v < 0 || v != floor(v) || v > 1e15) return 0;
        if (v > max) max = v;
    }
    return (int64_t)max + 1;
}

gr_code gr_dataset_check_labels(const gr_dataset *d, int64_t n_classes, gr_status *st) {
    if (!d->labels)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' has no labels (give a label file)", d->path);
    if (d->label_width != 1)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s': each label holds %lld values, a class id "
                       "is one", d->label_source, (long long)d->label_width);
    for (int64_t i = 0; i < d->n; i++) {
        double v = d->labels[i];
        if (v < 0 || v >= (double)n_classes || v != floor(v))
            return gr_fail(st, GR_ERR_BAD_ARG, "'%s': label %g of sample %lld is out of range: "
                           "the model has %lld classes (0..%lld)", d->label_source, v,
                           (long long)i, (long long)n_classes, (long long)n_classes - 1);
    }
    return GR_OK;
}

/* ------------------------------------------------------- splits and epochs */

static int compare_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

gr_code gr_data_split(int64_t n, double val_fraction, uint64_t seed, int64_t **train,
                      int64_t *n_train, int64_t **val, int64_t *n_val, gr_status *st) {
    *train = *val = NULL;
    *n_train = *n_val = 0;
    if (!(val_fraction >= 0 && val_fraction < 1))
        return gr_fail(st, GR_ERR_BAD_ARG, "validation fraction %g is not in [0, 1)",
                       val_fraction);
    int64_t nv = (int64_t)llround((double)n * val_fraction);
    if (val_fraction > 0 && nv == 0) nv = 1;
    if (n - nv < 1)
        return gr_fail(st, GR_ERR_BAD_ARG, "a validation split of %g leaves no training "
                       "samples out of %lld", val_fraction, (long long)n);
    int64_t *perm = gr_malloc(sizeof *perm * (size_t)n);
    int64_t *v = nv ? gr_malloc(sizeof *v * (size_t)nv) : NULL;
    int64_t *t = gr_malloc(sizeof *t * (size_t)(n - nv));
    if (!perm || (nv && !v) || !t) {
        gr_free(perm), gr_free(v), gr_free(t);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory splitting %lld samples", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    gr_rng rng;
    gr_rng_seed(&rng, gr_hash64(seed ^ 0x5ee4d5u));
    gr_rng_shuffle(&rng, perm, n);
    if (nv) memcpy(v, perm, sizeof *v * (size_t)nv);
    memcpy(t, perm + nv, sizeof *t * (size_t)(n - nv));
    gr_free(perm);
    if (nv) qsort(v, (size_t)nv, sizeof *v, compare_i64);
    qsort(t, (size_t)(n - nv), sizeof *t, compare_i64);
    *train = t, *n_train = n - nv;
    *val = v, *n_val = nv;
    return GR_OK;
}

void gr_data_iter_init(gr_data_iter *it, uint64_t seed, int64_t batch_size, int shuffle,
                       int drop_last) {
    memset(it, 0, sizeof *it);
    it->seed = seed;
    it->batch_size = batch_size > 0 ? batch_size : 1;
    it->shuffle = shuffle;
    it->drop_last = drop_last;
}

void gr_data_epoch_order(const gr_data_iter *it, const int64_t *pool, int64_t n,
                         int64_t *order) {
    memcpy(order, pool, sizeof *order * (size_t)n);
    if (!it->shuffle) return;
    gr_rng rng;
    gr_rng_seed(&rng, gr_hash64(it->seed) ^ gr_hash64((uint64_t)it->epoch + 1));
    gr_rng_shuffle(&rng, order, n);
}

int64_t gr_data_iter_next(gr_data_iter *it, int64_t n, int64_t *first) {
    int64_t left = n - it->position;
    if (left <= 0 || (it->drop_last && left < it->batch_size)) return 0;
    int64_t size = left < it->batch_size ? left : it->batch_size;
    *first = it->position;
    it->position += size;
    return size;
}

int64_t gr_data_iter_batches(const gr_data_iter *it, int64_t n) {
    return it->drop_last ? n / it->batch_size : (n + it->batch_size - 1) / it->batch_size;
}

void gr_data_iter_next_epoch(gr_data_iter *it) {
    it->epoch++;
    it->position = 0;
}
