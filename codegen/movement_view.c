/* movement_view.c: the view-copy engine (see movement_internal.h). Views are
 * simplified (unit dims dropped, contiguous dims merged), then split into
 * tasks of about TASK_BYTES of output: groups of rows, or pieces of one long
 * row. A row whose input is contiguous is one memcpy; transposes copy
 * TILE x TILE blocks through the workspace; other rows move elements one by
 * one. Tasks write disjoint output ranges. */
#include <string.h>

#include "codegen/movement_internal.h"

#define TASK_BYTES (64 * 1024)
#define TILE 32 /* elements per side of a transpose block */

void mv_view_init(mv_view *v, const gr_value *in, const gr_value *out) {
    memset(v, 0, sizeof *v);
    v->in = in;
    v->out = out;
}

static mv_dim *new_dim(mv_view *v, int64_t extent, int64_t out_stride, mv_kind kind) {
    GR_ASSERT(v->rank < MV_MAX_DIMS);
    mv_dim *d = &v->dims[v->rank++];
    memset(d, 0, sizeof *d);
    d->extent = extent;
    d->out_stride = out_stride;
    d->kind = kind;
    return d;
}

void mv_add_affine(mv_view *v, int64_t extent, int64_t out_stride, int64_t in_stride) {
    new_dim(v, extent, out_stride, MV_AFFINE)->in_stride = in_stride;
}

void mv_add_table(mv_view *v, int64_t extent, int64_t out_stride, int64_t *table) {
    new_dim(v, extent, out_stride, MV_TABLE)->table = table;
}

void mv_add_gather(mv_view *v, int64_t extent, int64_t out_stride, const gr_value *indices,
                   int64_t axis_extent, int64_t in_stride) {
    mv_dim *d = new_dim(v, extent, out_stride, MV_GATHER);
    d->indices = indices;
    d->axis_extent = axis_extent;
    d->in_stride = in_stride;
}

void mv_views_free(mv_view *views, int n_views) {
    for (int i = 0; i < n_views; i++)
        for (int j = 0; j < views[i].rank; j++) {
            gr_free(views[i].dims[j].table);
            views[i].dims[j].table = NULL;
        }
}

void mv_strides(const gr_shape *s, int64_t *strides) {
    int64_t acc = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
        strides[i] = acc;
        acc *= s->dims[i];
    }
}

gr_code mv_axis(const gr_node *n, int64_t axis, int rank, int *out, gr_status *st) {
    if (axis < -rank || axis >= rank)
        return gr_fail(st, GR_ERR_BAD_MODEL, "axis %lld is out of range for rank %d",
                       (long long)axis, rank);
    (void)n; /* the caller's error chain names the node */
    *out = (int)(axis < 0 ? axis + rank : axis);
    return GR_OK;
}

uint64_t mv_const_bits(const gr_value *v) {
    uint64_t bits = 0;
    size_t es = gr_dtype_size(v->dtype);
    if (v->data && v->nbytes >= es) memcpy(&bits, v->data, es); /* little-endian host */
    return bits;
}

LLVMTypeRef mv_bits_type(const cg_module *m, gr_dtype dt) {
    switch (gr_dtype_size(dt)) {
    case 1: return m->t_i8;
    case 2: return m->t_i16;
    case 4: return m->t_i32;
    default: return m->t_i64;
    }
}

LLVMValueRef mv_global_i64(cg_kernel *k, const int64_t *vals, int64_t n) {
    cg_module *m = k->m;
    LLVMValueRef *items = gr_malloc(sizeof(LLVMValueRef) * (size_t)(n ? n : 1));
    GR_ASSERT(items);
    for (int64_t i = 0; i < n; i++) items[i] = LLVMConstInt(m->t_i64, (unsigned long long)vals[i], 1);
    LLVMTypeRef at = LLVMArrayType(m->t_i64, (unsigned)n);
    LLVMValueRef g = LLVMAddGlobal(m->mod, at, "mv.table");
    LLVMSetInitializer(g, LLVMConstArray(m->t_i64, items, (unsigned)n));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    LLVMSetAlignment(g, 8);
    gr_free(items);
    return g;
}

/* ------------------------------------------------------------ simplify */

static int table_has_fill(const mv_dim *d) {
    for (int64_t i = 0; d->kind == MV_TABLE && i < d->extent; i++)
        if (d->table[i] < 0) return 1;
    return 0;
}

/* Drops unit dims and merges contiguous affine neighbours. Returns the
 * element count of the view. */
static int64_t simplify(mv_view *v) {
    int64_t numel = 1;
    for (int i = 0; i < v->rank; i++) numel *= v->dims[i].extent;
    if (numel == 0) {
        mv_views_free(v, 1);
        v->rank = 0;
        return 0;
    }
    int r = 0;
    for (int i = 0; i < v->rank; i++) {
        mv_dim d = v->dims[i];
        if (d.extent == 1 && d.kind == MV_AFFINE) continue;
        if (d.extent == 1 && d.kind == MV_TABLE && d.table[0] >= 0) {
            v->in_base += d.table[0];
            gr_free(d.table);
            continue;
        }
        if (r > 0 && d.kind == MV_AFFINE && v->dims[r - 1].kind == MV_AFFINE &&
            v->dims[r - 1].in_stride == d.in_stride * d.extent &&
            v->dims[r - 1].out_stride == d.out_stride * d.extent) {
            v->dims[r - 1].extent *= d.extent;
            v->dims[r - 1].in_stride = d.in_stride;
            v->dims[r - 1].out_stride = d.out_stride;
            continue;
        }
        v->dims[r++] = d;
    }
    v->rank = r;
    if (r == 0) mv_add_affine(v, 1, 1, 1);
    return numel;
}

/* ------------------------------------------------------------ emission */

typedef struct {
    mv_view *v;
    int64_t first_task, n_tasks;
    int64_t rows, pieces, rows_per_task, cols_per_piece;
    int has_fill;
    int tile_dim;                      /* -1, or the dim read contiguously */
    int64_t tile_blocks, inner_chunk, inner_chunks, outer;
    LLVMTypeRef ty;
    LLVMValueRef in, out, fill;
    LLVMValueRef tables[MV_MAX_DIMS];
} view_plan;

/* A transpose-like view (inner dim strided in the input, another dim
 * contiguous there) is copied in TILE x TILE blocks so that both sides stay
 * in cache. Tasks: (outer index, block of the contiguous dim, chunk of the
 * inner dim). */
static int plan_tiled(view_plan *p, size_t es) {
    const mv_view *v = p->v;
    int last = v->rank - 1, td = -1;
    const mv_dim *in = &v->dims[last];
    if (v->fill_only || p->has_fill || in->kind != MV_AFFINE || in->in_stride == 1 ||
        in->out_stride != 1 || in->extent < 8)
        return 0;
    for (int d = 0; d < last; d++)
        if (v->dims[d].kind == MV_AFFINE && v->dims[d].in_stride == 1 && v->dims[d].extent >= 2)
            td = d;
    if (td < 0) return 0;
    p->tile_dim = td;
    p->tile_blocks = (v->dims[td].extent + TILE - 1) / TILE;
    int64_t chunk = TASK_BYTES / (TILE * (int64_t)es) / TILE * TILE;
    p->inner_chunk = chunk < TILE ? TILE : chunk;
    p->inner_chunks = (in->extent + p->inner_chunk - 1) / p->inner_chunk;
    p->outer = 1;
    for (int d = 0; d < last; d++)
        if (d != td) p->outer *= v->dims[d].extent;
    p->n_tasks = p->outer * p->tile_blocks * p->inner_chunks;
    return 1;
}

static void plan_tasks(view_plan *p, size_t es) {
    const mv_view *v = p->v;
    p->tile_dim = -1;
    for (int d = 0; d < v->rank; d++) p->has_fill |= table_has_fill(&v->dims[d]);
    if (plan_tiled(p, es)) return;
    int64_t inner = v->dims[v->rank - 1].extent;
    p->rows = 1;
    for (int i = 0; i + 1 < v->rank; i++) p->rows *= v->dims[i].extent;
    int64_t row_bytes = inner * (int64_t)es;
    if (row_bytes >= TASK_BYTES) {
        p->pieces = (row_bytes + TASK_BYTES - 1) / TASK_BYTES;
        p->cols_per_piece = (inner + p->pieces - 1) / p->pieces;
        p->pieces = (inner + p->cols_per_piece - 1) / p->cols_per_piece;
        p->rows_per_task = 1;
        p->n_tasks = p->rows * p->pieces;
    } else {
        p->pieces = 1;
        p->cols_per_piece = inner;
        p->rows_per_task = TASK_BYTES / (row_bytes ? row_bytes : 1);
        if (p->rows_per_task < 1) p->rows_per_task = 1;
        p->n_tasks = (p->rows + p->rows_per_task - 1) / p->rows_per_task;
    }
}

static LLVMValueRef smin(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef smax(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSGT, a, b, ""), a, b, "");
}

/* Input offset contributed by index i of dim d. */
static LLVMValueRef contribution(cg_kernel *k, view_plan *p, int d, LLVMValueRef i) {
    const mv_dim *dim = &p->v->dims[d];
    cg_module *m = k->m;
    if (dim->kind == MV_AFFINE)
        return dim->in_stride == 1 ? i : LLVMBuildMul(k->b, i, cg_i64(k, dim->in_stride), "");
    if (dim->kind == MV_TABLE) {
        LLVMValueRef ptr = LLVMBuildInBoundsGEP2(k->b, m->t_i64, p->tables[d], &i, 1, "");
        return LLVMBuildLoad2(k->b, m->t_i64, ptr, "");
    }
    /* GATHER: negative indices count from the end; out-of-range ones are
     * clamped into [0, D-1] so that no read leaves the input. */
    gr_dtype it = dim->indices->dtype;
    LLVMValueRef x = LLVMBuildLoad2(k->b, cg_mem_type(m, it),
                                    cg_gep(k, it, cg_arg(k, dim->indices), i), "");
    x = LLVMBuildIntCast2(k->b, x, m->t_i64, 1, "");
    LLVMValueRef neg = LLVMBuildICmp(k->b, LLVMIntSLT, x, cg_i64(k, 0), "");
    x = LLVMBuildSelect(k->b, neg, LLVMBuildAdd(k->b, x, cg_i64(k, dim->axis_extent), ""), x, "");
    x = smax(k, smin(k, x, cg_i64(k, dim->axis_extent - 1)), cg_i64(k, 0));
    return LLVMBuildMul(k->b, x, cg_i64(k, dim->in_stride), "");
}

/* Input and output offsets of index r over the listed dims (the last one
 * varies fastest). */
static void offsets_of(cg_kernel *k, view_plan *p, const int *dims, int n_dims, LLVMValueRef r,
                       LLVMValueRef *in_off, LLVMValueRef *out_off) {
    const mv_view *v = p->v;
    LLVMValueRef in = cg_i64(k, v->in_base), out = cg_i64(k, v->out_base), rem = r;
    for (int i = n_dims - 1; i >= 0; i--) {
        int d = dims[i];
        LLVMValueRef ext = cg_i64(k, v->dims[d].extent);
        LLVMValueRef idx = i == 0 ? rem : LLVMBuildURem(k->b, rem, ext, "");
        if (i > 0) rem = LLVMBuildUDiv(k->b, rem, ext, "");
        in = LLVMBuildAdd(k->b, in, contribution(k, p, d, idx), "");
        out = LLVMBuildAdd(k->b, out, LLVMBuildMul(k->b, idx, cg_i64(k, v->dims[d].out_stride), ""), "");
    }
    *in_off = in;
    *out_off = out;
}

/* Input and output offsets of row r (all dims but the last). */
static void row_offsets(cg_kernel *k, view_plan *p, LLVMValueRef r, LLVMValueRef *in_off,
                        LLVMValueRef *out_off) {
    int dims[MV_MAX_DIMS];
    for (int d = 0; d + 1 < p->v->rank; d++) dims[d] = d;
    offsets_of(k, p, dims, p->v->rank - 1, r, in_off, out_off);
}

static void store_bits(cg_kernel *k, view_plan *p, LLVMValueRef off, LLVMValueRef val) {
    LLVMValueRef ptr = LLVMBuildInBoundsGEP2(k->b, p->ty, p->out, &off, 1, "");
    LLVMSetAlignment(LLVMBuildStore(k->b, val, ptr), (unsigned)gr_dtype_size(p->v->out->dtype));
}

static LLVMValueRef load_bits(cg_kernel *k, view_plan *p, LLVMValueRef off) {
    LLVMValueRef ptr = LLVMBuildInBoundsGEP2(k->b, p->ty, p->in, &off, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(k->b, p->ty, ptr, "");
    LLVMSetAlignment(v, (unsigned)gr_dtype_size(p->v->out->dtype));
    return v;
}

static void fill_row(cg_kernel *k, view_plan *p, LLVMValueRef out_row, LLVMValueRef c0,
                     LLVMValueRef c1) {
    const mv_dim *inner = &p->v->dims[p->v->rank - 1];
    cg_loop l;
    LLVMValueRef j = cg_loop_begin(k, &l, c0, c1, 1);
    LLVMValueRef o = LLVMBuildAdd(k->b, out_row, LLVMBuildMul(k->b, j, cg_i64(k, inner->out_stride), ""), "");
    store_bits(k, p, o, p->fill);
    cg_loop_end(k, &l);
}

static void element_row(cg_kernel *k, view_plan *p, LLVMValueRef in_row, LLVMValueRef out_row,
                        LLVMValueRef c0, LLVMValueRef c1) {
    const mv_dim *inner = &p->v->dims[p->v->rank - 1];
    cg_loop l;
    LLVMValueRef j = cg_loop_begin(k, &l, c0, c1, 1);
    LLVMValueRef i = LLVMBuildAdd(k->b, in_row, contribution(k, p, p->v->rank - 1, j), "");
    LLVMValueRef o = LLVMBuildAdd(k->b, out_row, LLVMBuildMul(k->b, j, cg_i64(k, inner->out_stride), ""), "");
    LLVMValueRef val;
    if (p->has_fill) {
        LLVMValueRef neg = LLVMBuildICmp(k->b, LLVMIntSLT, i, cg_i64(k, 0), "");
        val = load_bits(k, p, LLVMBuildSelect(k->b, neg, cg_i64(k, 0), i, ""));
        val = LLVMBuildSelect(k->b, neg, p->fill, val, "");
    } else {
        val = load_bits(k, p, i);
    }
    store_bits(k, p, o, val);
    cg_loop_end(k, &l);
}

/* One row, columns [c0, c1). */
static void emit_row(cg_kernel *k, view_plan *p, LLVMValueRef in_row, LLVMValueRef out_row,
                     LLVMValueRef c0, LLVMValueRef c1) {
    const mv_dim *inner = &p->v->dims[p->v->rank - 1];
    if (p->v->fill_only) {
        fill_row(k, p, out_row, c0, c1);
        return;
    }
    int contiguous = inner->kind == MV_AFFINE && inner->in_stride == 1 && inner->out_stride == 1;
    if (!contiguous) {
        element_row(k, p, in_row, out_row, c0, c1);
        return;
    }
    LLVMBasicBlockRef copy = NULL, fill = NULL, done = NULL;
    if (p->has_fill) {
        LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(k->b));
        copy = LLVMAppendBasicBlockInContext(k->m->ctx, fn, "row.copy");
        fill = LLVMAppendBasicBlockInContext(k->m->ctx, fn, "row.fill");
        done = LLVMAppendBasicBlockInContext(k->m->ctx, fn, "row.done");
        LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, in_row, cg_i64(k, 0), ""), fill, copy);
        LLVMPositionBuilderAtEnd(k->b, fill);
        fill_row(k, p, out_row, c0, c1);
        LLVMBuildBr(k->b, done);
        LLVMPositionBuilderAtEnd(k->b, copy);
    }
    int64_t es = (int64_t)gr_dtype_size(p->v->out->dtype);
    LLVMValueRef src_i = LLVMBuildAdd(k->b, in_row, c0, ""), dst_i = LLVMBuildAdd(k->b, out_row, c0, "");
    LLVMValueRef src = LLVMBuildInBoundsGEP2(k->b, p->ty, p->in, &src_i, 1, "");
    LLVMValueRef dst = LLVMBuildInBoundsGEP2(k->b, p->ty, p->out, &dst_i, 1, "");
    cg_memcpy(k, dst, src, LLVMBuildMul(k->b, LLVMBuildSub(k->b, c1, c0, ""), cg_i64(k, es), ""));
    if (p->has_fill) {
        LLVMBuildBr(k->b, done);
        LLVMPositionBuilderAtEnd(k->b, done);
    }
}

/* One pass of a block copy through the workspace block ws[b][a] (row
 * length TILE + 1): reading (input rows along b are contiguous) or writing
 * (output rows along a are contiguous). */
static void tile_pass(cg_kernel *k, view_plan *p, int reading, LLVMValueRef base, LLVMValueRef a0,
                      LLVMValueRef a1, LLVMValueRef b0, LLVMValueRef b1) {
    const mv_view *v = p->v;
    const mv_dim *inner = &v->dims[v->rank - 1], *td = &v->dims[p->tile_dim];
    cg_loop lo, li;
    LLVMValueRef ws_row, src, dst;
    if (reading) {
        LLVMValueRef a = cg_loop_begin(k, &lo, a0, a1, 1);
        LLVMValueRef row = LLVMBuildAdd(k->b, base, LLVMBuildMul(k->b, a, cg_i64(k, inner->in_stride), ""), "");
        LLVMValueRef b = cg_loop_begin(k, &li, b0, b1, 1);
        ws_row = LLVMBuildMul(k->b, LLVMBuildSub(k->b, b, b0, ""), cg_i64(k, TILE + 1), "");
        LLVMValueRef w = LLVMBuildAdd(k->b, ws_row, LLVMBuildSub(k->b, a, a0, ""), "");
        src = load_bits(k, p, LLVMBuildAdd(k->b, row, b, ""));
        dst = LLVMBuildInBoundsGEP2(k->b, p->ty, k->workspace, &w, 1, "");
        LLVMSetAlignment(LLVMBuildStore(k->b, src, dst), (unsigned)gr_dtype_size(v->out->dtype));
    } else {
        LLVMValueRef b = cg_loop_begin(k, &lo, b0, b1, 1);
        LLVMValueRef row = LLVMBuildAdd(k->b, base, LLVMBuildMul(k->b, b, cg_i64(k, td->out_stride), ""), "");
        ws_row = LLVMBuildMul(k->b, LLVMBuildSub(k->b, b, b0, ""), cg_i64(k, TILE + 1), "");
        LLVMValueRef a = cg_loop_begin(k, &li, a0, a1, 1);
        LLVMValueRef w = LLVMBuildAdd(k->b, ws_row, LLVMBuildSub(k->b, a, a0, ""), "");
        LLVMValueRef val = LLVMBuildLoad2(k->b, p->ty, LLVMBuildInBoundsGEP2(k->b, p->ty, k->workspace, &w, 1, ""), "");
        LLVMSetAlignment(val, (unsigned)gr_dtype_size(v->out->dtype));
        store_bits(k, p, LLVMBuildAdd(k->b, row, a, ""), val);
    }
    cg_loop_end(k, &li);
    cg_loop_end(k, &lo);
}

/* Block copy of a tiled view (see plan_tiled). */
static void emit_tiled(cg_kernel *k, view_plan *p, LLVMValueRef t) {
    const mv_view *v = p->v;
    int last = v->rank - 1, td = p->tile_dim, outer_dims[MV_MAX_DIMS], n_outer = 0;
    for (int d = 0; d < last; d++)
        if (d != td) outer_dims[n_outer++] = d;
    LLVMValueRef ic = LLVMBuildURem(k->b, t, cg_i64(k, p->inner_chunks), "");
    LLVMValueRef rest = LLVMBuildUDiv(k->b, t, cg_i64(k, p->inner_chunks), "");
    LLVMValueRef bd = LLVMBuildURem(k->b, rest, cg_i64(k, p->tile_blocks), "");
    LLVMValueRef o = LLVMBuildUDiv(k->b, rest, cg_i64(k, p->tile_blocks), "");
    LLVMValueRef in_o, out_o;
    offsets_of(k, p, outer_dims, n_outer, o, &in_o, &out_o);
    LLVMValueRef b0 = LLVMBuildMul(k->b, bd, cg_i64(k, TILE), "");
    LLVMValueRef b1 = smin(k, LLVMBuildAdd(k->b, b0, cg_i64(k, TILE), ""), cg_i64(k, v->dims[td].extent));
    LLVMValueRef a0 = LLVMBuildMul(k->b, ic, cg_i64(k, p->inner_chunk), "");
    LLVMValueRef a1 = smin(k, LLVMBuildAdd(k->b, a0, cg_i64(k, p->inner_chunk), ""),
                           cg_i64(k, v->dims[last].extent));
    cg_loop lj;
    LLVMValueRef ja = cg_loop_begin(k, &lj, a0, a1, TILE);
    LLVMValueRef ja1 = smin(k, LLVMBuildAdd(k->b, ja, cg_i64(k, TILE), ""), a1);
    tile_pass(k, p, 1, in_o, ja, ja1, b0, b1);
    tile_pass(k, p, 0, out_o, ja, ja1, b0, b1);
    cg_loop_end(k, &lj);
}

static void emit_view(cg_kernel *k, view_plan *p) {
    const mv_view *v = p->v;
    LLVMValueRef lo = smax(k, k->begin, cg_i64(k, p->first_task));
    LLVMValueRef hi = smin(k, k->end, cg_i64(k, p->first_task + p->n_tasks));
    cg_loop lt;
    LLVMValueRef t = cg_loop_begin(k, &lt, lo, hi, 1);
    t = LLVMBuildSub(k->b, t, cg_i64(k, p->first_task), "");
    if (p->tile_dim >= 0) {
        emit_tiled(k, p, t);
        cg_loop_end(k, &lt);
        return;
    }
    LLVMValueRef r0, r1, c0, c1;
    int64_t inner = v->dims[v->rank - 1].extent;
    if (p->pieces > 1) {
        r0 = LLVMBuildUDiv(k->b, t, cg_i64(k, p->pieces), "");
        r1 = LLVMBuildAdd(k->b, r0, cg_i64(k, 1), "");
        c0 = LLVMBuildMul(k->b, LLVMBuildURem(k->b, t, cg_i64(k, p->pieces), ""),
                          cg_i64(k, p->cols_per_piece), "");
        c1 = smin(k, LLVMBuildAdd(k->b, c0, cg_i64(k, p->cols_per_piece), ""), cg_i64(k, inner));
    } else {
        r0 = LLVMBuildMul(k->b, t, cg_i64(k, p->rows_per_task), "");
        r1 = smin(k, LLVMBuildAdd(k->b, r0, cg_i64(k, p->rows_per_task), ""), cg_i64(k, p->rows));
        c0 = cg_i64(k, 0);
        c1 = cg_i64(k, inner);
    }
    cg_loop lr;
    LLVMValueRef r = cg_loop_begin(k, &lr, r0, r1, 1);
    LLVMValueRef in_row, out_row;
    row_offsets(k, p, r, &in_row, &out_row);
    emit_row(k, p, in_row, out_row, c0, c1);
    cg_loop_end(k, &lr);
    cg_loop_end(k, &lt);
}

static void prepare(cg_kernel *k, view_plan *p) {
    mv_view *v = p->v;
    cg_module *m = k->m;
    p->ty = mv_bits_type(m, v->out->dtype);
    p->out = cg_arg(k, v->out);
    p->in = v->fill_only ? NULL : cg_arg(k, v->in);
    for (int d = 0; d < v->rank; d++) {
        if (v->dims[d].kind == MV_TABLE)
            p->tables[d] = mv_global_i64(k, v->dims[d].table, v->dims[d].extent);
    }
    if (v->fill_kind == MV_FILL_BUFFER)
        p->fill = LLVMBuildLoad2(k->b, p->ty, cg_arg(k, v->fill_value), "fill");
    else
        p->fill = LLVMConstInt(p->ty, v->fill_bits, 0);
}

gr_code mv_emit(cg_kernel *k, mv_view *views, int n_views, gr_status *st) {
    view_plan *plans = gr_calloc((size_t)(n_views ? n_views : 1), sizeof *plans);
    if (!plans) {
        mv_views_free(views, n_views);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    }
    int64_t tasks = 0;
    for (int i = 0; i < n_views; i++) {
        plans[i].v = &views[i];
        plans[i].first_task = tasks;
        if (simplify(&views[i]) == 0) continue; /* nothing to write */
        if (views[i].in && gr_value_numel(views[i].in) == 0) views[i].fill_only = 1;
        plan_tasks(&plans[i], gr_dtype_size(views[i].out->dtype));
        size_t ws = (size_t)TILE * (TILE + 1) * gr_dtype_size(views[i].out->dtype);
        if (plans[i].tile_dim >= 0 && ws > k->workspace_bytes) k->workspace_bytes = ws;
        tasks += plans[i].n_tasks;
    }
    for (int i = 0; i < n_views; i++) {
        if (!plans[i].n_tasks) continue;
        prepare(k, &plans[i]);
        emit_view(k, &plans[i]);
    }
    k->n_tasks = tasks ? tasks : 1;
    gr_free(plans);
    mv_views_free(views, n_views);
    return GR_OK;
}
