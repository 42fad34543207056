/* dtype.c: element types (numbered as ONNX's) and shape basics. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/gr_ir.h"

size_t gr_dtype_size(gr_dtype t) {
    switch (t) {
    case GR_DTYPE_F32: case GR_DTYPE_I32: case GR_DTYPE_U32: return 4;
    case GR_DTYPE_U8: case GR_DTYPE_I8: case GR_DTYPE_BOOL: return 1;
    case GR_DTYPE_U16: case GR_DTYPE_I16: case GR_DTYPE_F16:
    case GR_DTYPE_BF16: return 2;
    case GR_DTYPE_I64: case GR_DTYPE_F64: case GR_DTYPE_U64: return 8;
    default: return 0;
    }
}

const char *gr_dtype_name(gr_dtype t) {
    switch (t) {
    case GR_DTYPE_F32: return "f32";
    case GR_DTYPE_U8: return "u8";
    case GR_DTYPE_I8: return "i8";
    case GR_DTYPE_U16: return "u16";
    case GR_DTYPE_I16: return "i16";
    case GR_DTYPE_I32: return "i32";
    case GR_DTYPE_I64: return "i64";
    case GR_DTYPE_STRING: return "string";
    case GR_DTYPE_BOOL: return "bool";
    case GR_DTYPE_F16: return "f16";
    case GR_DTYPE_F64: return "f64";
    case GR_DTYPE_U32: return "u32";
    case GR_DTYPE_U64: return "u64";
    case GR_DTYPE_BF16: return "bf16";
    default: return "?";
    }
}

int gr_dtype_is_float(gr_dtype t) {
    return t == GR_DTYPE_F32 || t == GR_DTYPE_F16 || t == GR_DTYPE_F64 ||
           t == GR_DTYPE_BF16;
}

int gr_dtype_is_int(gr_dtype t) {
    switch (t) {
    case GR_DTYPE_U8: case GR_DTYPE_I8: case GR_DTYPE_U16: case GR_DTYPE_I16:
    case GR_DTYPE_I32: case GR_DTYPE_I64: case GR_DTYPE_U32: case GR_DTYPE_U64:
        return 1;
    default: return 0;
    }
}

int gr_dtype_valid(int t) {
    return t > 0 && t < GR_DTYPE_COUNT_ && t != GR_DTYPE_STRING &&
           gr_dtype_size((gr_dtype)t) > 0;
}

float gr_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f,
             mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { e++; mant <<= 1; } while (!(mant & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t gr_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1),
                 mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | (uint32_t)exp << 10 | mant >> 13;
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

float gr_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t gr_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

double gr_dtype_load_f64(gr_dtype t, const void *buf, int64_t i) {
    switch (t) {
    case GR_DTYPE_F32: { float v; memcpy(&v, (const char *)buf + 4 * i, 4); return v; }
    case GR_DTYPE_F64: { double v; memcpy(&v, (const char *)buf + 8 * i, 8); return v; }
    case GR_DTYPE_F16: { uint16_t v; memcpy(&v, (const char *)buf + 2 * i, 2); return gr_f16_to_f32(v); }
    case GR_DTYPE_BF16: { uint16_t v; memcpy(&v, (const char *)buf + 2 * i, 2); return gr_bf16_to_f32(v); }
    case GR_DTYPE_U64: { uint64_t v; memcpy(&v, (const char *)buf + 8 * i, 8); return (double)v; }
    default: return (double)gr_dtype_load_i64(t, buf, i);
    }
}

int64_t gr_dtype_load_i64(gr_dtype t, const void *buf, int64_t i) {
    const char *p = buf;
    switch (t) {
    case GR_DTYPE_U8: return ((const uint8_t *)p)[i];
    case GR_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
    case GR_DTYPE_I8: return ((const int8_t *)p)[i];
    case GR_DTYPE_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case GR_DTYPE_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case GR_DTYPE_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case GR_DTYPE_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case GR_DTYPE_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    case GR_DTYPE_U64: { uint64_t v; memcpy(&v, p + 8 * i, 8); return (int64_t)v; }
    default: {
        double d = gr_dtype_load_f64(t, buf, i);
        if (isnan(d)) return 0;
        if (d >= 9.2e18) return INT64_MAX;
        if (d <= -9.2e18) return INT64_MIN;
        return (int64_t)d;
    }
    }
}

void gr_dtype_store_f64(gr_dtype t, void *buf, int64_t i, double v) {
    char *p = buf;
    switch (t) {
    case GR_DTYPE_F32: { float f = (float)v; memcpy(p + 4 * i, &f, 4); return; }
    case GR_DTYPE_F64: memcpy(p + 8 * i, &v, 8); return;
    case GR_DTYPE_F16: { uint16_t h = gr_f32_to_f16((float)v); memcpy(p + 2 * i, &h, 2); return; }
    case GR_DTYPE_BF16: { uint16_t h = gr_f32_to_bf16((float)v); memcpy(p + 2 * i, &h, 2); return; }
    case GR_DTYPE_BOOL: p[i] = v != 0; return;
    default: {
        int64_t x = isnan(v) ? 0 : v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
        gr_dtype_store_i64(t, buf, i, x);
    }
    }
}

void gr_dtype_store_i64(gr_dtype t, void *buf, int64_t i, int64_t v) {
    char *p = buf;
    switch (t) {
    case GR_DTYPE_U8: ((uint8_t *)p)[i] = (uint8_t)v; return;
    case GR_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; return;
    case GR_DTYPE_I8: ((int8_t *)p)[i] = (int8_t)v; return;
    case GR_DTYPE_U16: { uint16_t x = (uint16_t)v; memcpy(p + 2 * i, &x, 2); return; }
    case GR_DTYPE_I16: { int16_t x = (int16_t)v; memcpy(p + 2 * i, &x, 2); return; }
    case GR_DTYPE_I32: { int32_t x = (int32_t)v; memcpy(p + 4 * i, &x, 4); return; }
    case GR_DTYPE_U32: { uint32_t x = (uint32_t)v; memcpy(p + 4 * i, &x, 4); return; }
    case GR_DTYPE_I64: memcpy(p + 8 * i, &v, 8); return;
    case GR_DTYPE_U64: { uint64_t x = (uint64_t)v; memcpy(p + 8 * i, &x, 8); return; }
    default: gr_dtype_store_f64(t, buf, i, (double)v); return;
    }
}

gr_shape gr_shape_make(int rank, const int64_t *dims) {
    gr_shape s;
    memset(&s, 0, sizeof s);
    s.rank = rank;
    for (int i = 0; i < rank && i < GR_MAX_RANK; i++) s.dims[i] = dims ? dims[i] : GR_DIM_DYNAMIC;
    return s;
}

gr_shape gr_shape_unknown(void) {
    gr_shape s;
    memset(&s, 0, sizeof s);
    s.rank = GR_RANK_UNKNOWN;
    return s;
}

gr_shape gr_shape_scalar(void) { return gr_shape_make(0, NULL); }

int gr_shape_is_static(const gr_shape *s) {
    if (s->rank < 0) return 0;
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i] < 0) return 0;
    return 1;
}

int64_t gr_shape_numel(const gr_shape *s) {
    if (!gr_shape_is_static(s)) return -1;
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] != 0 && n > INT64_MAX / s->dims[i]) return -1;
        n *= s->dims[i];
    }
    return n;
}

int gr_shape_equal(const gr_shape *a, const gr_shape *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++) {
        if (a->dims[i] != b->dims[i]) return 0;
        if (a->dims[i] < 0) {
            if (!a->syms[i] || !b->syms[i] || strcmp(a->syms[i], b->syms[i]))
                return 0;
        }
    }
    return 1;
}

char *gr_shape_str(const gr_shape *s, char *buf, size_t size) {
    if (size == 0) return buf;
    if (s->rank < 0) {
        snprintf(buf, size, "[?]");
        return buf;
    }
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < s->rank && used < size; i++) {
        const char *sep = i ? "," : "";
        if (s->dims[i] >= 0)
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", sep,
                                     (long long)s->dims[i]);
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%s", sep,
                                     s->syms[i] ? s->syms[i] : "?");
    }
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

int64_t gr_shape_strides(const gr_shape *s, int64_t strides[GR_MAX_RANK]) {
    int64_t n = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
        strides[i] = n;
        n *= s->dims[i];
    }
    return n;
}
