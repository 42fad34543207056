/* tensor.c: ONNX TensorProto -> dense little-endian data, from every
 * storage form the spec allows (raw_data, float/int32/int64/double/uint64
 * _data, external files), and gr_tensor_read_pb for test data files.
 * Every element count is checked against the dims before anything is
 * copied; external paths must stay inside the model's directory. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend/frontend_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_data is little-endian; graft assumes a little-endian host"
#endif

const char *gr_onnx_dtype_name(int t) {
    static const char *const names[] = {
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32",
        "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64",
        "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
        "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4",
        "FLOAT4E2M1", "FLOAT8E8M0"};
    if (t >= 0 && t < (int)(sizeof names / sizeof names[0])) return names[t];
    return "unknown";
}

gr_code gr_tensor_proto_header(const Onnx__TensorProto *t,
                               const gr_tensor_src *src, gr_dtype *dtype,
                               gr_shape *shape, gr_status *st) {
    int dt = t->has_data_type ? t->data_type : 0;
    if (dt == 0)
        return gr_fail(st, GR_ERR_BAD_MODEL, "%s: has no data_type", src->what);
    if (!gr_dtype_valid(dt))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s: element type %s (%d) is not supported",
                       src->what, gr_onnx_dtype_name(dt), dt);
    if (t->segment)
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "%s: segmented tensors are not supported", src->what);
    if (t->n_dims > GR_MAX_RANK)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s: rank %zu exceeds graft's limit %d",
                       src->what, t->n_dims, GR_MAX_RANK);
    *shape = gr_shape_scalar();
    shape->rank = (int)t->n_dims;
    int64_t numel = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return gr_fail(st, GR_ERR_BAD_MODEL, "%s: dim %zu is %lld, expected >= 0",
                           src->what, i, (long long)t->dims[i]);
        shape->dims[i] = t->dims[i];
        if (t->dims[i] && numel > INT64_MAX / 16 / t->dims[i])
            return gr_fail(st, GR_ERR_BAD_MODEL, "%s: element count overflows",
                           src->what);
        numel *= t->dims[i];
    }
    *dtype = (gr_dtype)dt;
    return GR_OK;
}

/* Rejects absolute locations and any ".." component (both separators):
 * a model must not read files outside its own directory. */
static gr_code check_location(const char *loc, const gr_tensor_src *src,
                              gr_status *st) {
    if (!*loc)
        return gr_fail(st, GR_ERR_BAD_MODEL, "%s: external data has an empty location",
                       src->what);
    if (loc[0] == '/' || loc[0] == '\\' || (loc[0] && loc[1] == ':'))
        return gr_fail(st, GR_ERR_BAD_MODEL,
                       "%s: external data location '%s' is an absolute path "
                       "(must be relative to the model's directory)", src->what, loc);
    for (const char *p = loc; *p;) {
        size_t len = strcspn(p, "/\\");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return gr_fail(st, GR_ERR_BAD_MODEL,
                           "%s: external data location '%s' contains '..' "
                           "(must stay inside the model's directory)", src->what, loc);
        p += len;
        if (*p) p++;
    }
    return GR_OK;
}

static gr_code parse_u64(const char *s, const char *key, const gr_tensor_src *src,
                         uint64_t *out, gr_status *st) {
    uint64_t v = 0;
    if (!s || !*s) goto bad;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return GR_OK;
bad:
    return gr_fail(st, GR_ERR_BAD_MODEL, "%s: external data %s '%s' is not a number",
                   src->what, key, s ? s : "");
}

typedef struct {
    const char *location;
    uint64_t offset, length;
    int has_length;
} ext_ref;

static gr_code parse_external(const Onnx__TensorProto *t, const gr_tensor_src *src,
                              ext_ref *ref, gr_status *st) {
    memset(ref, 0, sizeof *ref);
    for (size_t i = 0; i < t->n_external_data; i++) {
        const char *k = t->external_data[i]->key, *v = t->external_data[i]->value;
        if (!k) continue;
        if (!strcmp(k, "location")) {
            ref->location = v ? v : "";
        } else if (!strcmp(k, "offset")) {
            GR_TRY(parse_u64(v, k, src, &ref->offset, st));
        } else if (!strcmp(k, "length")) {
            GR_TRY(parse_u64(v, k, src, &ref->length, st));
            ref->has_length = 1;
        } /* "checksum" and unknown keys are ignored, as by onnx itself */
    }
    if (!ref->location)
        return gr_fail(st, GR_ERR_BAD_MODEL, "%s: external data has no 'location'",
                       src->what);
    return check_location(ref->location, src, st);
}

static gr_code read_external(const Onnx__TensorProto *t, const gr_tensor_src *src,
                             void *dst, size_t nbytes, gr_status *st) {
    ext_ref ref;
    GR_TRY(parse_external(t, src, &ref, st));
    if (!src->base_dir)
        return gr_fail(st, GR_ERR_BAD_MODEL,
                       "%s: uses external data file '%s' but the model was "
                       "loaded from memory without a base directory",
                       src->what, ref.location);
    if (ref.has_length && ref.length != nbytes)
        return gr_fail(st, GR_ERR_BAD_MODEL,
                       "%s: external data length is %llu bytes, expected %zu",
                       src->what, (unsigned long long)ref.length, nbytes);
    size_t plen = strlen(src->base_dir) + strlen(ref.location) + 2;
    char *path = gr_malloc(plen);
    if (!path) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    snprintf(path, plen, "%s/%s", src->base_dir, ref.location);
    gr_code rc = GR_OK;
    FILE *f = fopen(path, "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) != 0) {
        rc = gr_fail(st, GR_ERR_IO, "%s: cannot open external data file '%s': %s",
                     src->what, path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        rc = gr_fail(st, GR_ERR_BAD_MODEL, "%s: external data '%s' is not a regular file",
                     src->what, path);
    } else if (ref.offset > (uint64_t)sb.st_size ||
               nbytes > (uint64_t)sb.st_size - ref.offset) {
        rc = gr_fail(st, GR_ERR_BAD_MODEL,
                     "%s: external data offset %llu + length %zu exceeds the "
                     "size of '%s' (%lld bytes)", src->what,
                     (unsigned long long)ref.offset, nbytes, path, (long long)sb.st_size);
    } else if (nbytes && (fseeko(f, (off_t)ref.offset, SEEK_SET) != 0 ||
                          fread(dst, 1, nbytes, f) != nbytes)) {
        rc = gr_fail(st, GR_ERR_IO, "%s: cannot read %zu bytes from '%s'", src->what,
                     nbytes, path);
    }
    if (f) fclose(f);
    gr_free(path);
    return rc;
}

static gr_code count_mismatch(const gr_tensor_src *src, const char *field,
                              size_t found, int64_t numel, gr_status *st) {
    return gr_fail(st, GR_ERR_BAD_MODEL, "%s: %s holds %zu values, expected %lld",
                   src->what, field, found, (long long)numel);
}

/* The typed repeated field the spec uses for dtype (int32_data carries all
 * narrow integers, bool and the 16-bit float bit patterns). */
static gr_code read_typed(const Onnx__TensorProto *t, const gr_tensor_src *src,
                          gr_dtype dtype, int64_t numel, void *dst, gr_status *st) {
    size_t n = (size_t)numel;
    switch (dtype) {
    case GR_DTYPE_F32:
        if (t->n_float_data != n) return count_mismatch(src, "float_data", t->n_float_data, numel, st);
        if (n) memcpy(dst, t->float_data, n * sizeof(float));
        return GR_OK;
    case GR_DTYPE_F64:
        if (t->n_double_data != n) return count_mismatch(src, "double_data", t->n_double_data, numel, st);
        if (n) memcpy(dst, t->double_data, n * sizeof(double));
        return GR_OK;
    case GR_DTYPE_I64:
        if (t->n_int64_data != n) return count_mismatch(src, "int64_data", t->n_int64_data, numel, st);
        if (n) memcpy(dst, t->int64_data, n * sizeof(int64_t));
        return GR_OK;
    case GR_DTYPE_U32: case GR_DTYPE_U64:
        if (t->n_uint64_data != n) return count_mismatch(src, "uint64_data", t->n_uint64_data, numel, st);
        for (size_t i = 0; i < n; i++) gr_dtype_store_i64(dtype, dst, (int64_t)i, (int64_t)t->uint64_data[i]);
        return GR_OK;
    case GR_DTYPE_F16: case GR_DTYPE_BF16:
        if (t->n_int32_data != n) return count_mismatch(src, "int32_data", t->n_int32_data, numel, st);
        for (size_t i = 0; i < n; i++) {
            uint16_t bits = (uint16_t)t->int32_data[i];
            memcpy((char *)dst + 2 * i, &bits, 2);
        }
        return GR_OK;
    case GR_DTYPE_BOOL:
        if (t->n_int32_data != n) return count_mismatch(src, "int32_data", t->n_int32_data, numel, st);
        for (size_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = t->int32_data[i] != 0;
        return GR_OK;
    default: /* i32, i16, i8, u16, u8 */
        if (t->n_int32_data != n) return count_mismatch(src, "int32_data", t->n_int32_data, numel, st);
        for (size_t i = 0; i < n; i++) gr_dtype_store_i64(dtype, dst, (int64_t)i, t->int32_data[i]);
        return GR_OK;
    }
}

gr_code gr_tensor_proto_data(const Onnx__TensorProto *t,
                             const gr_tensor_src *src, gr_dtype dtype,
                             const gr_shape *shape, void *dst, size_t nbytes,
                             gr_status *st) {
    int64_t numel = gr_shape_numel(shape);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return read_external(t, src, dst, nbytes, st);
    if (t->has_raw_data) {
        if (t->raw_data.len != nbytes)
            return gr_fail(st, GR_ERR_BAD_MODEL,
                           "%s: raw_data holds %zu bytes, expected %zu (%lld x %s)",
                           src->what, t->raw_data.len, nbytes, (long long)numel,
                           gr_dtype_name(dtype));
        if (nbytes) memcpy(dst, t->raw_data.data, nbytes); /* may be unaligned */
        if (dtype == GR_DTYPE_BOOL)
            for (size_t i = 0; i < nbytes; i++) ((uint8_t *)dst)[i] = ((uint8_t *)dst)[i] != 0;
        return GR_OK;
    }
    return read_typed(t, src, dtype, numel, dst, st);
}

gr_code gr_tensor_proto_read(const Onnx__TensorProto *t,
                             const gr_tensor_src *src, gr_tensor *out,
                             gr_status *st) {
    memset(out, 0, sizeof *out);
    GR_TRY(gr_tensor_proto_header(t, src, &out->dtype, &out->shape, st));
    out->nbytes = (size_t)gr_shape_numel(&out->shape) * gr_dtype_size(out->dtype);
    if (out->nbytes && !(out->data = gr_malloc(out->nbytes)))
        return gr_fail(st, GR_ERR_NOMEM, "%s: out of memory for %zu bytes", src->what,
                       out->nbytes);
    gr_code rc = gr_tensor_proto_data(t, src, out->dtype, &out->shape, out->data,
                                      out->nbytes, st);
    if (rc != GR_OK) {
        gr_free(out->data);
        out->data = NULL;
    }
    return rc;
}

gr_code gr_read_file(const char *path, void **buf, size_t *len, gr_status *st) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    struct stat sb;
    if (!f) return gr_fail(st, GR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return gr_fail(st, GR_ERR_IO, "cannot read '%s': not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    char *data = gr_malloc(size + 1);
    if (!data) {
        fclose(f);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory reading '%s' (%zu bytes)", path, size);
    }
    size_t got = size ? fread(data, 1, size, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (got != size || err) {
        gr_free(data);
        return gr_fail(st, GR_ERR_IO, "cannot read '%s': %s", path,
                       err ? strerror(errno) : "short read");
    }
    *buf = data;
    *len = size;
    return GR_OK;
}

char *gr_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash == path) n = 1; /* "/model.onnx" -> "/" */
    char *dir = gr_malloc(n + 1);
    if (!dir) return NULL;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    return dir;
}

gr_code gr_tensor_read_pb(const char *path, gr_tensor *out, char **name,
                          gr_status *st) {
    void *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    if (name) *name = NULL;
    GR_TRY(gr_read_file(path, &buf, &len, st));
    gr_code rc = gr_wire_check(buf, len, GR_WIRE_TENSOR, st);
    Onnx__TensorProto *t = NULL;
    if (rc == GR_OK) {
        t = onnx__tensor_proto__unpack(NULL, len, buf);
        if (!t) rc = gr_fail(st, GR_ERR_BAD_MODEL, "protobuf-c cannot parse it");
    }
    gr_free(buf);
    char *dir = rc == GR_OK ? gr_dir_of(path) : NULL;
    if (rc == GR_OK && !dir) rc = gr_fail(st, GR_ERR_NOMEM, "out of memory");
    if (rc == GR_OK) {
        char what[320];
        snprintf(what, sizeof what, "tensor '%s'", t->name ? t->name : "");
        gr_tensor_src src = {what, dir, path};
        rc = gr_tensor_proto_read(t, &src, out, st);
    }
    if (rc == GR_OK && name) {
        const char *n = t->name ? t->name : "";
        if (!(*name = gr_malloc(strlen(n) + 1))) {
            rc = gr_fail(st, GR_ERR_NOMEM, "out of memory");
            gr_free(out->data);
            memset(out, 0, sizeof *out);
        } else {
            strcpy(*name, n);
        }
    }
    gr_free(dir);
    if (t) onnx__tensor_proto__free_unpacked(t, NULL);
    if (rc != GR_OK) gr_status_prefix(st, "'%s': ", path);
    return rc;
}
