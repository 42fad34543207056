/* movement_internal.h: the "view copy" engine shared by the data-movement
 * kernels. A view maps every output element (a multi-index over dims) to an
 * input element: per dim, an affine stride, a compile-time table of input
 * offsets (MV_FILL entries mean "write the fill value"), or runtime indices
 * (Gather). Transpose, Slice, Expand, Tile, Concat, Split, Gather, Pad and
 * nearest Resize are all views; elements move as raw bytes of their size. */
#ifndef GR_MOVEMENT_INTERNAL_H
#define GR_MOVEMENT_INTERNAL_H

#include "codegen/cg_internal.h"

#define MV_MAX_DIMS 24
/* Table entry meaning "no input element": any sum with it stays negative. */
#define MV_FILL (-((int64_t)1 << 58))

typedef enum { MV_AFFINE, MV_TABLE, MV_GATHER } mv_kind;

typedef struct {
    int64_t extent;
    int64_t out_stride;      /* elements of the output per step */
    mv_kind kind;
    int64_t in_stride;       /* AFFINE: per step; GATHER: per index value */
    int64_t *table;          /* TABLE: extent input offsets (gr_malloc'd, owned) */
    const gr_value *indices; /* GATHER: index buffer, element i for step i */
    int64_t axis_extent;     /* GATHER: extent of the gathered input axis */
} mv_dim;

typedef enum { MV_FILL_NONE, MV_FILL_CONST, MV_FILL_BUFFER } mv_fill_kind;

typedef struct {
    int rank;
    mv_dim dims[MV_MAX_DIMS];
    const gr_value *in, *out; /* in is unused when fill_only */
    int64_t in_base, out_base;
    mv_fill_kind fill_kind;
    uint64_t fill_bits;          /* CONST: the element's bytes */
    const gr_value *fill_value;  /* BUFFER: element 0 of this value */
    int fill_only;               /* every output element is the fill value */
} mv_view;

void mv_view_init(mv_view *v, const gr_value *in, const gr_value *out);
void mv_add_affine(mv_view *v, int64_t extent, int64_t out_stride, int64_t in_stride);
/* Takes ownership of table (gr_malloc'd, extent entries). */
void mv_add_table(mv_view *v, int64_t extent, int64_t out_stride, int64_t *table);
void mv_add_gather(mv_view *v, int64_t extent, int64_t out_stride, const gr_value *indices,
                   int64_t axis_extent, int64_t in_stride);
/* Frees the tables of the views. */
void mv_views_free(mv_view *views, int n_views);

/* Emits the body computing all views (each its own range of tasks) into k,
 * which must have been begun with every value the views name, and sets
 * k->n_tasks. Frees the views' tables. */
gr_code mv_emit(cg_kernel *k, mv_view *views, int n_views, gr_status *st);
/* A whole kernel for node n made of views: begins it over n's values, emits
 * the views (freeing their tables, also on failure) and ends it. */
gr_code mv_emit_node(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                     mv_view *views, int n_views, gr_status *st);

/* Row-major strides of a static shape (elements). */
void mv_strides(const gr_shape *s, int64_t *strides);
/* Normalises axis into [0, rank) or fails naming the node. */
gr_code mv_axis(const gr_node *n, int64_t axis, int rank, int *out, gr_status *st);
/* Bytes of element 0 of a constant value, zero-extended (for fill values). */
uint64_t mv_const_bits(const gr_value *v);
/* A private constant global array of i64 values; returns its pointer. */
LLVMValueRef mv_global_i64(cg_kernel *k, const int64_t *vals, int64_t n);
/* The integer type moving one element of dt as raw bytes. */
LLVMTypeRef mv_bits_type(const cg_module *m, gr_dtype dt);

#endif
