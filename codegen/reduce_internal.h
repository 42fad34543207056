/* reduce_internal.h: helpers shared by the reduce family's files (reduce.c,
 * reduce_arg.c, softmax.c, norm.c, pool.c): accumulator types, min/max and
 * transcendental helpers, axis normalisation and the [outer, R, inner] view
 * of a tensor around one axis. Implemented in reduce.c. */
#ifndef GR_CG_REDUCE_INTERNAL_H
#define GR_CG_REDUCE_INTERNAL_H

#include "codegen/cg_internal.h"

/* Elements of an output row chunk a task handles when it accumulates rows
 * in the workspace (the reduced axis is not the innermost). */
#define RD_CHUNK 1024
/* Chunk length for rows of len elements, rows of them: at most RD_CHUNK,
 * and short enough that there are tasks for several threads (>= 16
 * elements a chunk). */
int64_t rd_chunk(int64_t rows, int64_t len);

/* Register dtype to compute a float dtype in: f64 for f64, else f32. */
gr_dtype rd_float_dtype(gr_dtype t);
/* max/min of two register values of dtype at (floats: maxnum/minnum, which
 * ignore a NaN operand; integers: signed or unsigned; bool: or/and). */
LLVMValueRef rd_max(cg_kernel *k, gr_dtype at, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef rd_min(cg_kernel *k, gr_dtype at, LLVMValueRef a, LLVMValueRef b);
/* max (min) of acc and the contiguous x[base .. base + n), x of float
 * dtype at (no conversion), in explicit vectors. */
LLVMValueRef rd_vec_minmax(cg_kernel *k, gr_dtype at, int is_min, LLVMValueRef x,
                           LLVMValueRef base, int64_t n, LLVMValueRef acc);
/* Lowest / highest value of dtype at as a register constant (-inf / +inf
 * for floats). */
LLVMValueRef rd_lowest(cg_kernel *k, gr_dtype at);
LLVMValueRef rd_highest(cg_kernel *k, gr_dtype at);
/* exp, log, sqrt, fabs of a float register value. */
LLVMValueRef rd_exp(cg_kernel *k, LLVMValueRef x);
LLVMValueRef rd_log(cg_kernel *k, LLVMValueRef x);
LLVMValueRef rd_sqrt(cg_kernel *k, LLVMValueRef x);
LLVMValueRef rd_fabs(cg_kernel *k, LLVMValueRef x);
/* a op b for i64 registers (shorthands). */
LLVMValueRef rd_add(cg_kernel *k, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef rd_mul(cg_kernel *k, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef rd_min64(cg_kernel *k, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef rd_max64(cg_kernel *k, LLVMValueRef a, LLVMValueRef b);
/* Loads element i of x (dtype xt) converted to register dtype at. */
LLVMValueRef rd_load(cg_kernel *k, gr_dtype xt, LLVMValueRef x, LLVMValueRef i, gr_dtype at);
/* Converts register value v of dtype at to dtype yt and stores it at y[i]. */
void rd_store(cg_kernel *k, gr_dtype yt, LLVMValueRef y, LLVMValueRef i, gr_dtype at,
              LLVMValueRef v);

/* A tensor seen as [outer, len, inner] around one axis. */
typedef struct {
    int64_t outer, len, inner;
} rd_view;
rd_view rd_view_axis(const gr_shape *s, int axis);
/* Normalises axis in [-rank, rank) or fails with GR_ERR_BAD_MODEL. */
gr_code rd_axis(const gr_node *n, int64_t axis, int rank, int *out, gr_status *st);

/* --- pooling windows (pool.c), shared with train_pool.c --- */

/* A pool's window geometry over 3 spatial dims (1-D and 2-D pools have
 * leading dims of extent 1): input and output extents, kernel, strides,
 * dilations, pads at the beginning and end (auto_pad resolved). */
typedef struct {
    int64_t in[3], out[3], kern[3], str[3], dil[3], pb[3], pe[3];
    int include_pad; /* AveragePool's count_include_pad */
} rd_window;
/* The kernel positions k in [k0, k1) of one window in one dim that fall
 * inside the input, from input position start; cnt: how many count towards
 * the average. */
typedef struct {
    LLVMValueRef start, k0, k1, cnt;
} rd_win;
/* The window attributes of pool node n (X x, Y or dY y). */
gr_code rd_window_read(const gr_node *n, const gr_value *x, const gr_value *y, rd_window *w,
                       gr_status *st);
/* Window of output position o (i64) in dim d. */
rd_win rd_window_at(cg_kernel *k, const rd_window *w, int d, LLVMValueRef o);

#endif /* GR_CG_REDUCE_INTERNAL_H */
