/* frontend_internal.h: declarations shared by the files of frontend/ only
 * (import.c, tensor.c, canon.c, wire.c). Nothing here is public API. */
#ifndef GR_FRONTEND_INTERNAL_H
#define GR_FRONTEND_INTERNAL_H

#include "frontend/gr_frontend.h"
#include "onnx.pb-c.h"

/* ------------------------------------------------------------ tensor.c */

/* Where a TensorProto came from, for messages and external data. */
typedef struct {
    const char *what;     /* "initializer 'w'", "Constant 'c'", ... */
    const char *base_dir; /* directory of the model file; NULL: none */
    const char *origin;   /* file name for messages */
} gr_tensor_src;

/* ONNX TensorProto.DataType name ("FLOAT", "FLOAT8E4M3FN", ...). */
const char *gr_onnx_dtype_name(int t);

/* dtype and static shape of t; fails on negative dims, rank > GR_MAX_RANK
 * and dtypes graft cannot hold (strings, complex, float8...). */
gr_code gr_tensor_proto_header(const Onnx__TensorProto *t,
                               const gr_tensor_src *src, gr_dtype *dtype,
                               gr_shape *shape, gr_status *st);
/* Fills dst (exactly nbytes = numel * dtype size) from whichever storage
 * form t uses: raw_data, the typed repeated fields or external data. */
gr_code gr_tensor_proto_data(const Onnx__TensorProto *t,
                             const gr_tensor_src *src, gr_dtype dtype,
                             const gr_shape *shape, void *dst, size_t nbytes,
                             gr_status *st);
/* Header + data into a gr_malloc'd gr_tensor (data NULL when empty). */
gr_code gr_tensor_proto_read(const Onnx__TensorProto *t,
                             const gr_tensor_src *src, gr_tensor *out,
                             gr_status *st);

/* Reads a whole file into a gr_malloc'd buffer; GR_ERR_IO names path. */
gr_code gr_read_file(const char *path, void **buf, size_t *len, gr_status *st);
/* Directory part of path ("." if none), gr_malloc'd. */
char *gr_dir_of(const char *path);

/* -------------------------------------------------------------- wire.c */

typedef enum { GR_WIRE_MODEL, GR_WIRE_TENSOR } gr_wire_root;

/* Walks the protobuf wire format of buf as the given message, recursing
 * into known nested messages. GR_OK if protobuf-c can parse it; otherwise
 * GR_ERR_BAD_MODEL explaining where and why (truncation, invalid wire type,
 * wrong wire type for a known field, nesting deeper than GR_WIRE_MAX_DEPTH).
 * Runs before unpacking: protobuf-c has no depth limit of its own. */
#define GR_WIRE_MAX_DEPTH 64
gr_code gr_wire_check(const void *buf, size_t len, gr_wire_root root,
                      gr_status *st);

/* ------------------------------------------------------------- canon.c */

/* Op of a node of the default domain at the given opset, including old op
 * names that map onto a canonical op (Upsample -> Resize). */
gr_op gr_canon_op(const char *op_type, int64_t opset);

/* Called before a node is created: *n_outputs may shrink when the
 * canonical form has fewer outputs (BatchNormalization-7/9 saved_mean and
 * saved_var); used(ctx, name) tells whether a name is consumed anywhere,
 * which makes a dropped output unsupported. */
gr_code gr_canon_outputs(const char *node_name, const char *op_type,
                         int64_t opset, const char *const *out_names,
                         int *n_outputs,
                         int (*used)(void *ctx, const char *name), void *ctx,
                         gr_status *st);

/* Rewrites n (created with all its model attributes and inputs) from the
 * form of its opset to the canonical form of ops.def: legacy attributes
 * become inputs or other attributes, some ops expand into several nodes.
 * Afterwards every attribute of n matches the op's schema or the call
 * fails (GR_ERR_BAD_MODEL for wrong types, GR_ERR_UNSUPPORTED for forms
 * graft cannot express). */
gr_code gr_canon_node(gr_graph *g, gr_node *n, int64_t opset, gr_status *st);

#endif /* GR_FRONTEND_INTERNAL_H */
