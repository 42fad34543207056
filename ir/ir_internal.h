/* ir_internal.h: declarations shared by the files of ir/ only.
 * Shape rules are named gr_shape_rule_<rule> after the last column of
 * ops.def, and live in shape_*.c grouped by op family. */
#ifndef GR_IR_INTERNAL_H
#define GR_IR_INTERNAL_H

#include "ir/gr_ir.h"

#define OP(id, name, in_min, in_max, out_min, out_max, flags, shape)           \
    gr_code gr_shape_rule_##shape(gr_graph *g, gr_node *n, gr_status *st);
#include "ir/ops.def"

/* Sets output i of n (if present) to dtype and shape. */
void gr_set_output(gr_node *n, int i, gr_dtype dtype, const gr_shape *shape);
/* Normalises axis (negative counts from the end) against rank; fails with
 * GR_ERR_BAD_MODEL naming the node when out of [-rank, rank). */
gr_code gr_norm_axis(const gr_node *n, const char *what, int64_t axis, int rank,
                     int *out, gr_status *st);
/* "node 'name' (Op): " error helper. */
gr_code gr_node_fail(const gr_node *n, gr_status *st, gr_code code,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A shape of known rank whose dims are all dynamic and anonymous. */
gr_shape gr_shape_of_rank(int rank);
/* dst dim i = src dim j (with its symbol when dynamic). */
void gr_copy_dim(gr_shape *dst, int i, const gr_shape *src, int j);
/* Normalises axes against rank and marks them in mask[rank]; an axis out
 * of range or given twice is GR_ERR_BAD_MODEL naming the node. */
gr_code gr_mark_axes(const gr_node *n, const int64_t *axes, int64_t count, int rank,
                     int *mask, gr_status *st);
/* Input i with a known dtype, else GR_ERR_BAD_MODEL. */
gr_code gr_need_input(const gr_node *n, int i, gr_status *st);

#endif
