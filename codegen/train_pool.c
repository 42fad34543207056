/* train_pool.c: MaxPoolGrad and AveragePoolGrad over 1-3 spatial dims
 * (seen as 3-D with leading extents of 1), explicit pads, strides,
 * dilations; dY's shape already says how many windows there are (ceil_mode).
 * A task owns one (n, c) plane of dX: it zeroes it, then visits the rows of
 * windows in order and adds their gradients, so overlapping windows
 * accumulate in a fixed order. MaxPoolGrad recomputes the window's first
 * maximum from X (a NaN wins, as in PyTorch; padding never does);
 * AveragePoolGrad spreads dY/count with the forward kernel's count (pool.c). */
#include <string.h>

#include "codegen/reduce_internal.h"

typedef struct {
    cg_kernel *k;
    int is_max;
    gr_dtype dt, at;
    LLVMValueRef dy, x, dx;
    rd_window w;
} pg_ctx;

/* Input position of kernel position kk of window w in dim d. */
static LLVMValueRef pos_at(const pg_ctx *p, const rd_win *w, int d, LLVMValueRef kk) {
    return rd_add(p->k, w->start, rd_mul(p->k, kk, cg_i64(p->k, p->w.dil[d])));
}

/* The spatial offset of the first position inside all three windows. */
static LLVMValueRef first_offset(const pg_ctx *p, const rd_win *w) {
    LLVMValueRef off = cg_i64(p->k, 0);
    for (int d = 0; d < 3; d++)
        off = rd_add(p->k, rd_mul(p->k, off, cg_i64(p->k, p->w.in[d])), pos_at(p, &w[d], d, w[d].k0));
    return off;
}

/* Visits the window's positions in scan order with acc = {max, offset}
 * carried through. */
static void nest(const pg_ctx *p, const rd_win *w, LLVMValueRef plane, int d, LLVMValueRef off,
                 LLVMValueRef *acc) {
    cg_kernel *k = p->k;
    cg_loop l;
    LLVMValueRef kk = cg_loop_begin(k, &l, w[d].k0, w[d].k1, 1);
    LLVMValueRef a[2];
    for (int i = 0; i < 2; i++) a[i] = cg_loop_acc(k, &l, acc[i]);
    LLVMValueRef o = rd_add(k, rd_mul(k, off, cg_i64(k, p->w.in[d])), pos_at(p, &w[d], d, kk));
    if (d < 2) {
        nest(p, w, plane, d + 1, o, a);
    } else {
        LLVMValueRef x = rd_load(k, p->dt, p->x, rd_add(k, plane, o), p->at);
        LLVMValueRef c = LLVMBuildOr(k->b, LLVMBuildFCmp(k->b, LLVMRealOGT, x, a[0], ""),
                                     LLVMBuildFCmp(k->b, LLVMRealUNO, x, x, ""), "");
        a[0] = LLVMBuildSelect(k->b, c, x, a[0], "");
        a[1] = LLVMBuildSelect(k->b, c, o, a[1], "");
    }
    for (int i = 0; i < 2; i++) cg_loop_next(&l, i, a[i]);
    cg_loop_end(k, &l);
    for (int i = 0; i < 2; i++) acc[i] = l.acc_out[i];
}

/* MaxPoolGrad, task t = plane (n, c): dX[plane] = 0, then window by window
 * (the maximum's running value and offset stay in registers). */
static void emit_max_planes(pg_ctx *p, int64_t planes) {
    cg_kernel *k = p->k;
    int64_t in_plane = p->w.in[0] * p->w.in[1] * p->w.in[2];
    k->n_tasks = planes;
    cg_loop lt, lz, lo[3];
    LLVMValueRef t = cg_loop_begin(k, &lt, k->begin, k->end, 1);
    LLVMValueRef plane = rd_mul(k, t, cg_i64(k, in_plane));
    LLVMValueRef z = cg_loop_begin(k, &lz, cg_i64(k, 0), cg_i64(k, in_plane), 1);
    rd_store(k, p->dt, p->dx, rd_add(k, plane, z), p->at, cg_const(k, p->at, 0));
    cg_loop_end(k, &lz);
    rd_win w[3];
    LLVMValueRef yi = t; /* ((t*out0 + od)*out1 + oh)*out2 + ow */
    for (int d = 0; d < 3; d++) {
        LLVMValueRef o = cg_loop_begin(k, &lo[d], cg_i64(k, 0), cg_i64(k, p->w.out[d]), 1);
        yi = rd_add(k, rd_mul(k, yi, cg_i64(k, p->w.out[d])), o);
        w[d] = rd_window_at(p->k, &p->w, d, o);
    }
    LLVMValueRef g = rd_load(k, p->dt, p->dy, yi, p->at);
    LLVMValueRef nonempty = NULL;
    for (int d = 0; d < 3; d++) {
        LLVMValueRef c = LLVMBuildICmp(k->b, LLVMIntSLT, w[d].k0, w[d].k1, "");
        nonempty = nonempty ? LLVMBuildAnd(k->b, nonempty, c, "") : c;
    }
    LLVMValueRef acc[2] = {rd_lowest(k, p->at), first_offset(p, w)};
    nest(p, w, plane, 0, cg_i64(k, 0), acc);
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(k->b));
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(k->m->ctx, fn, "scatter");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(k->m->ctx, fn, "next");
    LLVMBuildCondBr(k->b, nonempty, then, join);
    LLVMPositionBuilderAtEnd(k->b, then);
    LLVMValueRef i = rd_add(k, plane, acc[1]);
    rd_store(k, p->dt, p->dx, i, p->at,
             LLVMBuildFAdd(k->b, rd_load(k, p->dt, p->dx, i, p->at), g, ""));
    LLVMBuildBr(k->b, join);
    LLVMPositionBuilderAtEnd(k->b, join);
    for (int d = 2; d >= 0; d--) cg_loop_end(k, &lo[d]);
    cg_loop_end(k, &lt);
}

/* Output columns [lo, hi) whose kernel position kw (input column
 * ow*s + shift, shift = kw*dil - pb) lies inside [0, in). */
static void column_range(const pg_ctx *p, LLVMValueRef shift, LLVMValueRef *lo,
                         LLVMValueRef *hi) {
    cg_kernel *k = p->k;
    LLVMBuilderRef b = k->b;
    LLVMValueRef zero = cg_i64(k, 0), out = cg_i64(k, p->w.out[2]), s = cg_i64(k, p->w.str[2]);
    LLVMValueRef neg = LLVMBuildNeg(b, shift, "");
    LLVMValueRef l = LLVMBuildSDiv(b, rd_add(k, neg, cg_i64(k, p->w.str[2] - 1)), s, "");
    l = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, neg, zero, ""), l, zero, "");
    *lo = rd_min64(k, l, out);
    LLVMValueRef r = LLVMBuildSub(b, cg_i64(k, p->w.in[2] - 1), shift, "");
    LLVMValueRef h = rd_add(k, LLVMBuildSDiv(b, r, s, ""), cg_i64(k, 1));
    h = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, r, zero, ""), h, zero, "");
    *hi = rd_max64(k, *lo, rd_min64(k, h, out));
}

/* dX at kernel position (kd, kh, kw) of window column ow += ws[ow]. */
static void row_step(const pg_ctx *p, LLVMValueRef plane, LLVMValueRef wv, LLVMValueRef ow,
                     LLVMValueRef off) {
    cg_kernel *k = p->k;
    LLVMValueRef i = rd_add(k, plane, off), g = cg_load(k, p->at, wv, ow);
    LLVMValueRef sum = LLVMBuildFAdd(k->b, rd_load(k, p->dt, p->dx, i, p->at), g, "");
    rd_store(k, p->dt, p->dx, i, p->at, sum);
}

/* AveragePoolGrad, task t = plane (n, c): dX[plane] = 0, then row by row
 * of windows (od, oh): ws[ow] = dY/count, then over the valid (kd, kh),
 * each kw, and the output columns whose window holds that position
 * (innermost, so it vectorises): dX += ws[ow]. */
static void emit_avg_planes(pg_ctx *p, int64_t planes) {
    cg_kernel *k = p->k;
    LLVMBuilderRef b = k->b;
    int64_t in_plane = p->w.in[0] * p->w.in[1] * p->w.in[2], ow_n = p->w.out[2];
    k->n_tasks = planes;
    k->workspace_bytes = (size_t)ow_n * 8;
    LLVMValueRef wv = k->workspace;
    cg_loop lt, lz, ld, lh, li, lkd, lkh, lkw, lc;
    LLVMValueRef t = cg_loop_begin(k, &lt, k->begin, k->end, 1);
    LLVMValueRef plane = rd_mul(k, t, cg_i64(k, in_plane));
    LLVMValueRef z = cg_loop_begin(k, &lz, cg_i64(k, 0), cg_i64(k, in_plane), 1);
    rd_store(k, p->dt, p->dx, rd_add(k, plane, z), p->at, cg_const(k, p->at, 0));
    cg_loop_end(k, &lz);
    LLVMValueRef od = cg_loop_begin(k, &ld, cg_i64(k, 0), cg_i64(k, p->w.out[0]), 1);
    rd_win w0 = rd_window_at(p->k, &p->w, 0, od);
    LLVMValueRef oh = cg_loop_begin(k, &lh, cg_i64(k, 0), cg_i64(k, p->w.out[1]), 1);
    rd_win w1 = rd_window_at(p->k, &p->w, 1, oh);
    LLVMValueRef yrow = rd_mul(k, rd_add(k, rd_mul(k, rd_add(k, rd_mul(k, t, cg_i64(k, p->w.out[0])),
                                                              od), cg_i64(k, p->w.out[1])), oh),
                               cg_i64(k, ow_n));
    LLVMValueRef ow = cg_loop_begin(k, &li, cg_i64(k, 0), cg_i64(k, ow_n), 1);
    rd_win w2 = rd_window_at(p->k, &p->w, 2, ow);
    LLVMValueRef cnt = rd_max64(k, rd_mul(k, rd_mul(k, w0.cnt, w1.cnt), w2.cnt), cg_i64(k, 1));
    LLVMValueRef fc = LLVMBuildSIToFP(b, cnt, cg_reg_type(k->m, p->at), "");
    LLVMValueRef g = rd_load(k, p->dt, p->dy, rd_add(k, yrow, ow), p->at);
    cg_store(k, p->at, wv, ow, LLVMBuildFDiv(b, g, fc, ""));
    cg_loop_end(k, &li);
    LLVMValueRef kd = cg_loop_begin(k, &lkd, w0.k0, w0.k1, 1);
    LLVMValueRef kh = cg_loop_begin(k, &lkh, w1.k0, w1.k1, 1);
    LLVMValueRef row = rd_mul(k, rd_add(k, rd_mul(k, pos_at(p, &w0, 0, kd), cg_i64(k, p->w.in[1])),
                                        pos_at(p, &w1, 1, kh)), cg_i64(k, p->w.in[2]));
    LLVMValueRef kw = cg_loop_begin(k, &lkw, cg_i64(k, 0), cg_i64(k, p->w.kern[2]), 1);
    LLVMValueRef shift = LLVMBuildSub(b, rd_mul(k, kw, cg_i64(k, p->w.dil[2])),
                                      cg_i64(k, p->w.pb[2]), "");
    LLVMValueRef lo, hi;
    column_range(p, shift, &lo, &hi);
    LLVMValueRef rs = rd_add(k, row, shift);
    ow = cg_loop_begin(k, &lc, lo, hi, 1);
    row_step(p, plane, wv, ow, rd_add(k, rs, rd_mul(k, ow, cg_i64(k, p->w.str[2]))));
    cg_loop_end(k, &lc);
    cg_loop_end(k, &lkw);
    cg_loop_end(k, &lkh);
    cg_loop_end(k, &lkd);
    cg_loop_end(k, &lh);
    cg_loop_end(k, &ld);
    cg_loop_end(k, &lt);
}

/* dY [N,C,o...], X [N,C,i...] -> dX [N,C,i...] */
gr_code cg_emit_pool_grad(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                          gr_status *st) {
    const gr_value *dy = n->inputs[0], *x = n->inputs[1], *dx = n->outputs[0];
    pg_ctx p;
    memset(&p, 0, sizeof p);
    p.is_max = n->op == GR_OP_MAX_POOL_GRAD;
    if (!gr_dtype_is_float(dy->dtype) || dx->dtype != dy->dtype ||
        (p.is_max && x->dtype != dy->dtype))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s of %s is not compiled", n->op_type,
                       gr_dtype_name(dy->dtype));
    GR_TRY(rd_window_read(n, x, dy, &p.w, st));
    p.dt = dy->dtype;
    p.at = rd_float_dtype(dy->dtype);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    p.k = k;
    p.dy = cg_arg(k, dy);
    p.x = cg_arg(k, x);
    p.dx = cg_arg(k, dx);
    int64_t planes = x->shape.dims[0] * x->shape.dims[1];
    if (gr_value_numel(dx) > 0) {
        if (p.is_max) emit_max_planes(&p, planes);
        else emit_avg_planes(&p, planes);
    }
    return cg_kernel_end(k, st);
}
