/* wire.c: a protobuf wire-format walker that explains why a file is not a
 * valid ONNX message. Debian's protobuf-c reports no reason when unpack
 * fails and recurses without a depth limit, so import walks the bytes
 * first: varint tags, wire types 0/1/2/5, lengths, and the known nested
 * messages of onnx.proto (fields it does not know are skipped, as
 * protobuf-c keeps them as unknown fields). */
#include <stdio.h>
#include <string.h>

#include "frontend/frontend_internal.h"

/* How a known field is encoded. Repeated scalars accept packed (LEN) and
 * unpacked encodings, as protobuf-c does. */
typedef enum { K_VARINT, K_I32, K_I64, K_BYTES, K_MSG, K_RVARINT, K_RI32, K_RI64 } kind;

typedef enum {
    M_MODEL, M_OPSET, M_ENTRY, M_TRAINING, M_FUNCTION, M_GRAPH, M_ANNOTATION,
    M_NODE, M_ATTRIBUTE, M_VALUE_INFO, M_TENSOR, M_SEGMENT, M_SPARSE, M_SHAPE,
    M_DIM, M_TYPE, M_TYPE_TENSOR, M_TYPE_SEQ, M_TYPE_MAP, M_TYPE_OPT
} msg_id;

typedef struct {
    int msg;        /* message this field belongs to */
    unsigned number;
    const char *name;
    kind k;
    int sub;        /* K_MSG: nested message */
} field;

static const field fields[] = {
    {M_MODEL, 1, "ir_version", K_VARINT, 0}, {M_MODEL, 2, "producer_name", K_BYTES, 0},
    {M_MODEL, 3, "producer_version", K_BYTES, 0}, {M_MODEL, 4, "domain", K_BYTES, 0},
    {M_MODEL, 5, "model_version", K_VARINT, 0}, {M_MODEL, 6, "doc_string", K_BYTES, 0},
    {M_MODEL, 7, "graph", K_MSG, M_GRAPH}, {M_MODEL, 8, "opset_import", K_MSG, M_OPSET},
    {M_MODEL, 14, "metadata_props", K_MSG, M_ENTRY},
    {M_MODEL, 20, "training_info", K_MSG, M_TRAINING},
    {M_MODEL, 25, "functions", K_MSG, M_FUNCTION},
    {M_OPSET, 1, "domain", K_BYTES, 0}, {M_OPSET, 2, "version", K_VARINT, 0},
    {M_ENTRY, 1, "key", K_BYTES, 0}, {M_ENTRY, 2, "value", K_BYTES, 0},
    {M_TRAINING, 1, "initialization", K_MSG, M_GRAPH},
    {M_TRAINING, 2, "algorithm", K_MSG, M_GRAPH},
    {M_TRAINING, 3, "initialization_binding", K_MSG, M_ENTRY},
    {M_TRAINING, 4, "update_binding", K_MSG, M_ENTRY},
    {M_FUNCTION, 1, "name", K_BYTES, 0}, {M_FUNCTION, 4, "input", K_BYTES, 0},
    {M_FUNCTION, 5, "output", K_BYTES, 0}, {M_FUNCTION, 6, "attribute", K_BYTES, 0},
    {M_FUNCTION, 7, "node", K_MSG, M_NODE}, {M_FUNCTION, 8, "doc_string", K_BYTES, 0},
    {M_FUNCTION, 9, "opset_import", K_MSG, M_OPSET}, {M_FUNCTION, 10, "domain", K_BYTES, 0},
    {M_GRAPH, 1, "node", K_MSG, M_NODE}, {M_GRAPH, 2, "name", K_BYTES, 0},
    {M_GRAPH, 5, "initializer", K_MSG, M_TENSOR},
    {M_GRAPH, 15, "sparse_initializer", K_MSG, M_SPARSE},
    {M_GRAPH, 10, "doc_string", K_BYTES, 0}, {M_GRAPH, 11, "input", K_MSG, M_VALUE_INFO},
    {M_GRAPH, 12, "output", K_MSG, M_VALUE_INFO},
    {M_GRAPH, 13, "value_info", K_MSG, M_VALUE_INFO},
    {M_GRAPH, 14, "quantization_annotation", K_MSG, M_ANNOTATION},
    {M_ANNOTATION, 1, "tensor_name", K_BYTES, 0},
    {M_ANNOTATION, 2, "quant_parameter_tensor_names", K_MSG, M_ENTRY},
    {M_NODE, 1, "input", K_BYTES, 0}, {M_NODE, 2, "output", K_BYTES, 0},
    {M_NODE, 3, "name", K_BYTES, 0}, {M_NODE, 4, "op_type", K_BYTES, 0},
    {M_NODE, 7, "domain", K_BYTES, 0}, {M_NODE, 5, "attribute", K_MSG, M_ATTRIBUTE},
    {M_NODE, 6, "doc_string", K_BYTES, 0},
    {M_ATTRIBUTE, 1, "name", K_BYTES, 0}, {M_ATTRIBUTE, 21, "ref_attr_name", K_BYTES, 0},
    {M_ATTRIBUTE, 13, "doc_string", K_BYTES, 0}, {M_ATTRIBUTE, 20, "type", K_VARINT, 0},
    {M_ATTRIBUTE, 2, "f", K_I32, 0}, {M_ATTRIBUTE, 3, "i", K_VARINT, 0},
    {M_ATTRIBUTE, 4, "s", K_BYTES, 0}, {M_ATTRIBUTE, 5, "t", K_MSG, M_TENSOR},
    {M_ATTRIBUTE, 6, "g", K_MSG, M_GRAPH},
    {M_ATTRIBUTE, 22, "sparse_tensor", K_MSG, M_SPARSE},
    {M_ATTRIBUTE, 14, "tp", K_MSG, M_TYPE}, {M_ATTRIBUTE, 7, "floats", K_RI32, 0},
    {M_ATTRIBUTE, 8, "ints", K_RVARINT, 0}, {M_ATTRIBUTE, 9, "strings", K_BYTES, 0},
    {M_ATTRIBUTE, 10, "tensors", K_MSG, M_TENSOR},
    {M_ATTRIBUTE, 11, "graphs", K_MSG, M_GRAPH},
    {M_ATTRIBUTE, 23, "sparse_tensors", K_MSG, M_SPARSE},
    {M_ATTRIBUTE, 15, "type_protos", K_MSG, M_TYPE},
    {M_VALUE_INFO, 1, "name", K_BYTES, 0}, {M_VALUE_INFO, 2, "type", K_MSG, M_TYPE},
    {M_VALUE_INFO, 3, "doc_string", K_BYTES, 0},
    {M_TENSOR, 1, "dims", K_RVARINT, 0}, {M_TENSOR, 2, "data_type", K_VARINT, 0},
    {M_TENSOR, 3, "segment", K_MSG, M_SEGMENT}, {M_TENSOR, 4, "float_data", K_RI32, 0},
    {M_TENSOR, 5, "int32_data", K_RVARINT, 0}, {M_TENSOR, 6, "string_data", K_BYTES, 0},
    {M_TENSOR, 7, "int64_data", K_RVARINT, 0}, {M_TENSOR, 8, "name", K_BYTES, 0},
    {M_TENSOR, 12, "doc_string", K_BYTES, 0}, {M_TENSOR, 9, "raw_data", K_BYTES, 0},
    {M_TENSOR, 13, "external_data", K_MSG, M_ENTRY},
    {M_TENSOR, 14, "data_location", K_VARINT, 0},
    {M_TENSOR, 10, "double_data", K_RI64, 0}, {M_TENSOR, 11, "uint64_data", K_RVARINT, 0},
    {M_SEGMENT, 1, "begin", K_VARINT, 0}, {M_SEGMENT, 2, "end", K_VARINT, 0},
    {M_SPARSE, 1, "values", K_MSG, M_TENSOR}, {M_SPARSE, 2, "indices", K_MSG, M_TENSOR},
    {M_SPARSE, 3, "dims", K_RVARINT, 0},
    {M_SHAPE, 1, "dim", K_MSG, M_DIM},
    {M_DIM, 1, "dim_value", K_VARINT, 0}, {M_DIM, 2, "dim_param", K_BYTES, 0},
    {M_DIM, 3, "denotation", K_BYTES, 0},
    {M_TYPE, 1, "tensor_type", K_MSG, M_TYPE_TENSOR},
    {M_TYPE, 4, "sequence_type", K_MSG, M_TYPE_SEQ},
    {M_TYPE, 5, "map_type", K_MSG, M_TYPE_MAP},
    {M_TYPE, 9, "optional_type", K_MSG, M_TYPE_OPT},
    {M_TYPE, 8, "sparse_tensor_type", K_MSG, M_TYPE_TENSOR},
    {M_TYPE, 6, "denotation", K_BYTES, 0},
    {M_TYPE_TENSOR, 1, "elem_type", K_VARINT, 0},
    {M_TYPE_TENSOR, 2, "shape", K_MSG, M_SHAPE},
    {M_TYPE_SEQ, 1, "elem_type", K_MSG, M_TYPE},
    {M_TYPE_MAP, 1, "key_type", K_VARINT, 0}, {M_TYPE_MAP, 2, "value_type", K_MSG, M_TYPE},
    {M_TYPE_OPT, 1, "elem_type", K_MSG, M_TYPE},
};

static const field *find_field(int msg, unsigned number) {
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].msg == msg && fields[i].number == number) return &fields[i];
    return NULL;
}

typedef struct {
    const uint8_t *buf;
    gr_status *st;
    char path[512]; /* "graph.node.attribute" of the current message */
} walker;

static gr_code fail_at(walker *w, const char *fmt, const char *detail) {
    if (w->path[0])
        return gr_fail(w->st, GR_ERR_BAD_MODEL, "in %s: %s%s", w->path, fmt, detail);
    return gr_fail(w->st, GR_ERR_BAD_MODEL, "%s%s", fmt, detail);
}

/* Reads a varint at *pos (< end); 0 on truncation or overlong encoding. */
static int read_varint(walker *w, size_t *pos, size_t end, uint64_t *out) {
    uint64_t v = 0;
    size_t start = *pos;
    char msg[160];
    for (int shift = 0; shift < 70; shift += 7) {
        if (*pos >= end) {
            snprintf(msg, sizeof msg, "truncated varint at byte %zu", start);
            fail_at(w, msg, "");
            return 0;
        }
        uint8_t b = w->buf[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 0);
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    snprintf(msg, sizeof msg, "varint longer than 10 bytes at byte %zu", start);
    fail_at(w, msg, "");
    return 0;
}

static gr_code walk(walker *w, size_t pos, size_t end, int msg, int depth);

/* Checks the payload of a length-delimited field [pos, end). */
static gr_code check_payload(walker *w, const field *f, size_t pos, size_t end,
                             int depth) {
    char msg[200];
    if (f->k == K_RI32 || f->k == K_RI64) {
        size_t width = f->k == K_RI32 ? 4 : 8;
        if ((end - pos) % width) {
            snprintf(msg, sizeof msg, "packed field %u (%s) at byte %zu is %zu bytes, "
                     "not a multiple of %zu", f->number, f->name, pos, end - pos, width);
            return fail_at(w, msg, "");
        }
        return GR_OK;
    }
    if (f->k == K_RVARINT) {
        uint64_t v;
        while (pos < end)
            if (!read_varint(w, &pos, end, &v)) return GR_ERR_BAD_MODEL;
        return GR_OK;
    }
    if (f->k != K_MSG) return GR_OK;
    size_t saved = strlen(w->path);
    snprintf(w->path + saved, sizeof w->path - saved, "%s%s", saved ? "." : "", f->name);
    gr_code rc = walk(w, pos, end, f->sub, depth + 1);
    w->path[saved] = '\0';
    return rc;
}

/* Does wire type wt fit the kind of a known field? */
static int wire_fits(kind k, unsigned wt) {
    switch (k) {
    case K_VARINT: return wt == 0;
    case K_I32: return wt == 5;
    case K_I64: return wt == 1;
    case K_BYTES: case K_MSG: return wt == 2;
    case K_RVARINT: return wt == 0 || wt == 2;
    case K_RI32: return wt == 5 || wt == 2;
    case K_RI64: return wt == 1 || wt == 2;
    }
    return 0;
}

static gr_code walk_field(walker *w, size_t *pos, size_t end, int msg, int depth) {
    char text[300];
    size_t at = *pos;
    uint64_t tag, v;
    if (!read_varint(w, pos, end, &tag)) return GR_ERR_BAD_MODEL;
    unsigned wt = (unsigned)(tag & 7);
    uint64_t number = tag >> 3;
    if (number == 0 || number > 536870911u) {
        snprintf(text, sizeof text, "invalid field number %llu at byte %zu",
                 (unsigned long long)number, at);
        return fail_at(w, text, "");
    }
    const field *f = find_field(msg, (unsigned)number);
    if (wt == 3 || wt == 4 || wt > 5) {
        snprintf(text, sizeof text, "%s wire type %u at byte %zu",
                 wt > 5 ? "invalid" : "unsupported (group)", wt, at);
        return fail_at(w, text, "");
    }
    if (f && !wire_fits(f->k, wt)) {
        snprintf(text, sizeof text, "field %u (%s) at byte %zu has wire type %u, "
                 "which does not fit its type", f->number, f->name, at, wt);
        return fail_at(w, text, "");
    }
    size_t need = wt == 1 ? 8 : wt == 5 ? 4 : 0;
    if (wt == 0) return read_varint(w, pos, end, &v) ? GR_OK : GR_ERR_BAD_MODEL;
    if (wt == 2) {
        if (!read_varint(w, pos, end, &v)) return GR_ERR_BAD_MODEL;
        if (v > end - *pos) {
            snprintf(text, sizeof text, "truncated: field %u (%s) at byte %zu claims "
                     "%llu bytes but only %zu remain", (unsigned)number,
                     f ? f->name : "unknown", at, (unsigned long long)v, end - *pos);
            return fail_at(w, text, "");
        }
        size_t start = *pos;
        *pos += (size_t)v;
        return f ? check_payload(w, f, start, *pos, depth) : GR_OK;
    }
    if (need > end - *pos) {
        snprintf(text, sizeof text, "truncated: field %u (%s) at byte %zu needs %zu "
                 "bytes but only %zu remain", (unsigned)number, f ? f->name : "unknown",
                 at, need, end - *pos);
        return fail_at(w, text, "");
    }
    *pos += need;
    return GR_OK;
}

static gr_code walk(walker *w, size_t pos, size_t end, int msg, int depth) {
    if (depth > GR_WIRE_MAX_DEPTH) {
        char text[160];
        snprintf(text, sizeof text, "messages nested deeper than %d levels at byte %zu",
                 GR_WIRE_MAX_DEPTH, pos);
        return fail_at(w, text, "");
    }
    while (pos < end) GR_TRY(walk_field(w, &pos, end, msg, depth));
    return GR_OK;
}

gr_code gr_wire_check(const void *buf, size_t len, gr_wire_root root,
                      gr_status *st) {
    walker w;
    w.buf = buf;
    w.st = st;
    w.path[0] = '\0';
    return walk(&w, 0, len, root == GR_WIRE_MODEL ? M_MODEL : M_TENSOR, 0);
}
