/* gr_frontend.h: ONNX <-> graft IR. Import maps every opset's form of an op
 * (7..22) onto the one canonical form of ir/ops.def, lifts weight-holding
 * float Constants to parameters, reads external data; export writes
 * standard ONNX with names preserved.
 *
 * Usage:
 *     gr_status st = {0};
 *     gr_graph *g = NULL;
 *     if (gr_import_file("model.onnx", &g, &st) != GR_OK) {
 *         fprintf(stderr, "graft: error: %s\n", st.msg);  // names file, node, op
 *         return 1;
 *     }
 *     ... passes ...
 *     gr_export_file(g, "tuned.onnx", &st);   // atomic: temp file + rename
 *     gr_graph_free(g);
 *
 * Import never leaves a partial graph: on failure *out stays NULL and all
 * memory is released. Nodes of unknown op types are kept (op GR_OP_UNKNOWN)
 * so that tools can report them all; gr_graph_check_supported lists them.
 */
#ifndef GR_FRONTEND_H
#define GR_FRONTEND_H

#include "ir/gr_ir.h"

/* Reads and imports an ONNX ModelProto file. External data locations are
 * resolved relative to the file's directory. */
gr_code gr_import_file(const char *path, gr_graph **out, gr_status *st);
/* Same from memory; base_dir resolves external data (NULL: none allowed);
 * origin names the source in messages (e.g. the file name). */
gr_code gr_import_buffer(const void *buf, size_t len, const char *base_dir,
                         const char *origin, gr_graph **out, gr_status *st);

/* Writes g as a standard ONNX model (PARAM values as initializers, CONST
 * values as Constant nodes). The default-domain opset is the lowest that
 * expresses every canonical form used (at least 18). The file is written to
 * a temporary name beside path, then renamed. */
gr_code gr_export_file(const gr_graph *g, const char *path, gr_status *st);
/* Serialised model in a gr_malloc'd buffer the caller frees with gr_free. */
gr_code gr_export_buffer(const gr_graph *g, void **buf, size_t *len,
                         gr_status *st);

/* Reads an ONNX TensorProto file (ONNX test data, `graft run --input`).
 * out->data is gr_malloc'd; the caller frees it with gr_free. If name is
 * not NULL, *name receives the tensor's name (gr_malloc'd, may be ""). */
gr_code gr_tensor_read_pb(const char *path, gr_tensor *out, char **name,
                          gr_status *st);

#endif /* GR_FRONTEND_H */
