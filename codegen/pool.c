/* pool.c: MaxPool (optional Indices, storage_order 0/1) and AveragePool
 * (count_include_pad) over 1-3 spatial dims, with strides, dilations, pads,
 * auto_pad and ceil_mode. 1-D and 2-D pools are handled as 3-D with leading
 * spatial dims of extent 1. The output shape (already inferred) says how
 * many windows to compute; windows running past the input are clipped. A
 * task is one output row (n, c, od, oh): the valid kernel ranges in d and h
 * are computed once per row. Columns whose window lies inside the input in
 * w accumulate in the workspace with the innermost loop over the output
 * width; the few border columns clip their windows one by one. */
#include <string.h>

#include "codegen/reduce_internal.h"

typedef struct {
    cg_kernel *k;
    int is_max, col_major;
    gr_dtype xt, yt, at;
    LLVMValueRef x, y, ind;
    rd_window w;
} pool_ctx;

/* Whether x replaces the running maximum a of a MaxPool with Indices: a
 * larger x, or a NaN x (the value is NaN, as rd_max's; the index the last
 * NaN's, as PyTorch's and MaxPoolGrad's choice: train_pool.c). */
static LLVMValueRef new_max(cg_kernel *k, gr_dtype at, LLVMValueRef x, LLVMValueRef a) {
    if (!gr_dtype_is_float(at))
        return LLVMBuildICmp(k->b, cg_dtype_signed(at) ? LLVMIntSGT : LLVMIntUGT, x, a, "");
    return LLVMBuildOr(k->b, LLVMBuildFCmp(k->b, LLVMRealOGT, x, a, ""),
                       LLVMBuildFCmp(k->b, LLVMRealUNO, x, x, ""), "");
}

/* Loops over the kernel positions of dims d..2; off is the row-major
 * spatial offset so far. acc[0]: max or sum, acc[1]: offset of the max. */
static void nest(const pool_ctx *p, const rd_win *w, LLVMValueRef plane, int d, LLVMValueRef off,
                 LLVMValueRef *acc, int n_acc) {
    cg_kernel *k = p->k;
    cg_loop l;
    LLVMValueRef kk = cg_loop_begin(k, &l, w[d].k0, w[d].k1, 1);
    LLVMValueRef a[2];
    for (int i = 0; i < n_acc; i++) a[i] = cg_loop_acc(k, &l, acc[i]);
    LLVMValueRef pos = rd_add(k, w[d].start, rd_mul(k, kk, cg_i64(k, p->w.dil[d])));
    LLVMValueRef o = rd_add(k, rd_mul(k, off, cg_i64(k, p->w.in[d])), pos);
    if (d < 2) {
        nest(p, w, plane, d + 1, o, a, n_acc);
    } else {
        LLVMValueRef x = rd_load(k, p->xt, p->x, rd_add(k, plane, o), p->at);
        if (!p->is_max) {
            a[0] = gr_dtype_is_float(p->at) ? LLVMBuildFAdd(k->b, a[0], x, "")
                                            : LLVMBuildAdd(k->b, a[0], x, "");
        } else if (n_acc == 1) {
            a[0] = rd_max(k, p->at, a[0], x);
        } else { /* first maximum in scan order */
            LLVMValueRef c = new_max(k, p->at, x, a[0]);
            a[0] = LLVMBuildSelect(k->b, c, x, a[0], "");
            a[1] = LLVMBuildSelect(k->b, c, o, a[1], "");
        }
    }
    for (int i = 0; i < n_acc; i++) cg_loop_next(&l, i, a[i]);
    cg_loop_end(k, &l);
    for (int i = 0; i < n_acc; i++) acc[i] = l.acc_out[i];
}

/* ONNX's flattened index of spatial offset off in plane nc. */
static LLVMValueRef flat_index(const pool_ctx *p, LLVMValueRef nc, LLVMValueRef off) {
    cg_kernel *k = p->k;
    int64_t hw = p->w.in[1] * p->w.in[2], plane = p->w.in[0] * hw;
    if (p->col_major) { /* d + h*D + w*D*H */
        LLVMValueRef d = LLVMBuildSDiv(k->b, off, cg_i64(k, hw), "");
        LLVMValueRef h = LLVMBuildSRem(k->b, LLVMBuildSDiv(k->b, off, cg_i64(k, p->w.in[2]), ""),
                                       cg_i64(k, p->w.in[1]), "");
        LLVMValueRef w = LLVMBuildSRem(k->b, off, cg_i64(k, p->w.in[2]), "");
        off = rd_add(k, d, rd_add(k, rd_mul(k, h, cg_i64(k, p->w.in[0])),
                                  rd_mul(k, w, cg_i64(k, p->w.in[0] * p->w.in[1]))));
    }
    return rd_add(k, rd_mul(k, nc, cg_i64(k, plane)), off);
}

/* Border columns [c0, c1) of row t, one at a time: the valid kernel range
 * in w is computed per column. */
static void columns(const pool_ctx *p, rd_win *w, LLVMValueRef t, LLVMValueRef nc,
                    int64_t c0, int64_t c1) {
    cg_kernel *k = p->k;
    if (c0 >= c1) return;
    cg_loop l;
    LLVMValueRef ow = cg_loop_begin(k, &l, cg_i64(k, c0), cg_i64(k, c1), 1);
    w[2] = rd_window_at(p->k, &p->w, 2, ow);
    LLVMValueRef plane = rd_mul(k, nc, cg_i64(k, p->w.in[0] * p->w.in[1] * p->w.in[2]));
    int n_acc = p->is_max && p->ind ? 2 : 1;
    LLVMValueRef acc[2] = {p->is_max ? rd_lowest(k, p->at) : cg_const(k, p->at, 0),
                           cg_i64(k, 0)};
    nest(p, w, plane, 0, cg_i64(k, 0), acc, n_acc);
    LLVMValueRef yi = rd_add(k, rd_mul(k, t, cg_i64(k, p->w.out[2])), ow), v = acc[0];
    if (!p->is_max) {
        LLVMValueRef cnt = rd_mul(k, rd_mul(k, w[0].cnt, w[1].cnt), w[2].cnt);
        v = LLVMBuildFDiv(k->b, v, LLVMBuildSIToFP(k->b, cnt, cg_reg_type(k->m, p->at), ""), "");
    }
    rd_store(k, p->yt, p->y, yi, p->at, v);
    if (n_acc == 2) cg_store(k, GR_DTYPE_I64, p->ind, yi, flat_index(p, nc, acc[1]));
    cg_loop_end(k, &l);
}

/* ws[j] (+)= x[at]; with indices, wi[j] takes off where x is a new max. */
static void accumulate(const pool_ctx *p, LLVMValueRef wv, LLVMValueRef wi, LLVMValueRef j,
                       LLVMValueRef at, LLVMValueRef off) {
    cg_kernel *k = p->k;
    LLVMValueRef x = rd_load(k, p->xt, p->x, at, p->at);
    LLVMValueRef a = cg_load(k, p->at, wv, j), v;
    if (!p->is_max) {
        v = gr_dtype_is_float(p->at) ? LLVMBuildFAdd(k->b, a, x, "") : LLVMBuildAdd(k->b, a, x, "");
    } else if (!p->ind) {
        v = rd_max(k, p->at, a, x);
    } else {
        LLVMValueRef c = new_max(k, p->at, x, a);
        v = LLVMBuildSelect(k->b, c, x, a, "");
        cg_store(k, GR_DTYPE_I64, wi, j,
                 LLVMBuildSelect(k->b, c, off, cg_load(k, GR_DTYPE_I64, wi, j), ""));
    }
    cg_store(k, p->at, wv, j, v);
}

/* Interior columns [lo, hi) of row t, in chunks of RD_CHUNK: accumulators
 * for a chunk live in the workspace (values, then i64 offsets of maxima), and
 * the innermost loop runs over the output columns with the input stride, for
 * each valid (kd, kh) and each kw, so it vectorises. */
static void interior(const pool_ctx *p, const rd_win *w, LLVMValueRef t, LLVMValueRef nc,
                     int64_t lo, int64_t hi) {
    cg_kernel *k = p->k;
    if (lo >= hi) return;
    int with_ind = p->is_max && p->ind;
    LLVMValueRef wv = k->workspace;
    LLVMValueRef wi = cg_gep(k, GR_DTYPE_U8, wv, cg_i64(k, RD_CHUNK * 8));
    LLVMValueRef plane = rd_mul(k, nc, cg_i64(k, p->w.in[0] * p->w.in[1] * p->w.in[2]));
    cg_loop lc, l0, ld, lh, lw, lx, lf;
    LLVMValueRef c0 = cg_loop_begin(k, &lc, cg_i64(k, lo), cg_i64(k, hi), RD_CHUNK);
    LLVMValueRef cn = rd_min64(k, cg_i64(k, RD_CHUNK), LLVMBuildSub(k->b, cg_i64(k, hi), c0, ""));
    LLVMValueRef j = cg_loop_begin(k, &l0, cg_i64(k, 0), cn, 1);
    cg_store(k, p->at, wv, j, p->is_max ? rd_lowest(k, p->at) : cg_const(k, p->at, 0));
    if (with_ind) cg_store(k, GR_DTYPE_I64, wi, j, cg_i64(k, 0));
    cg_loop_end(k, &l0);
    LLVMValueRef kd = cg_loop_begin(k, &ld, w[0].k0, w[0].k1, 1);
    LLVMValueRef pd = rd_add(k, w[0].start, rd_mul(k, kd, cg_i64(k, p->w.dil[0])));
    LLVMValueRef kh = cg_loop_begin(k, &lh, w[1].k0, w[1].k1, 1);
    LLVMValueRef ph = rd_add(k, w[1].start, rd_mul(k, kh, cg_i64(k, p->w.dil[1])));
    LLVMValueRef row = rd_mul(k, rd_add(k, rd_mul(k, pd, cg_i64(k, p->w.in[1])), ph),
                              cg_i64(k, p->w.in[2]));
    LLVMValueRef kw = cg_loop_begin(k, &lw, cg_i64(k, 0), cg_i64(k, p->w.kern[2]), 1);
    /* spatial offset of column c0 + j: row + (c0 + j)*s - pb + kw*dil */
    LLVMValueRef off0 = rd_add(k, rd_add(k, row, rd_mul(k, c0, cg_i64(k, p->w.str[2]))),
                               LLVMBuildSub(k->b, rd_mul(k, kw, cg_i64(k, p->w.dil[2])),
                                            cg_i64(k, p->w.pb[2]), ""));
    j = cg_loop_begin(k, &lx, cg_i64(k, 0), cn, 1);
    LLVMValueRef off = rd_add(k, off0, rd_mul(k, j, cg_i64(k, p->w.str[2])));
    accumulate(p, wv, wi, j, rd_add(k, plane, off), off);
    cg_loop_end(k, &lx);
    cg_loop_end(k, &lw);
    cg_loop_end(k, &lh);
    cg_loop_end(k, &ld);
    LLVMValueRef cnt = rd_mul(k, rd_mul(k, w[0].cnt, w[1].cnt), cg_i64(k, p->w.kern[2]));
    LLVMValueRef fc = p->is_max ? NULL : LLVMBuildSIToFP(k->b, cnt, cg_reg_type(k->m, p->at), "");
    j = cg_loop_begin(k, &lf, cg_i64(k, 0), cn, 1);
    LLVMValueRef yi = rd_add(k, rd_mul(k, t, cg_i64(k, p->w.out[2])), rd_add(k, c0, j));
    LLVMValueRef v = cg_load(k, p->at, wv, j);
    if (!p->is_max) v = LLVMBuildFDiv(k->b, v, fc, "");
    rd_store(k, p->yt, p->y, yi, p->at, v);
    if (with_ind)
        cg_store(k, GR_DTYPE_I64, p->ind, yi, flat_index(p, nc, cg_load(k, GR_DTYPE_I64, wi, j)));
    cg_loop_end(k, &lf);
    cg_loop_end(k, &lc);
}

/* One task per output row t = (nc, od, oh). */
static void emit_rows(pool_ctx *p, int64_t nc_count) {
    cg_kernel *k = p->k;
    k->n_tasks = nc_count * p->w.out[0] * p->w.out[1];
    k->workspace_bytes = RD_CHUNK * 16; /* values (<= 8 bytes), then i64 offsets */
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef oh = LLVMBuildURem(k->b, t, cg_i64(k, p->w.out[1]), "");
    LLVMValueRef r = LLVMBuildUDiv(k->b, t, cg_i64(k, p->w.out[1]), "");
    LLVMValueRef od = LLVMBuildURem(k->b, r, cg_i64(k, p->w.out[0]), "");
    LLVMValueRef nc = LLVMBuildUDiv(k->b, r, cg_i64(k, p->w.out[0]), "");
    rd_win w[3];
    w[0] = rd_window_at(p->k, &p->w, 0, od);
    w[1] = rd_window_at(p->k, &p->w, 1, oh);
    /* interior columns: ow*s - pb >= 0 and ow*s - pb + span <= in */
    int64_t s = p->w.str[2], span = (p->w.kern[2] - 1) * p->w.dil[2] + 1, ow_n = p->w.out[2];
    int64_t lo = (p->w.pb[2] + s - 1) / s, room = p->w.in[2] + p->w.pb[2] - span;
    int64_t hi = room >= 0 ? room / s + 1 : 0;
    if (lo > ow_n) lo = ow_n;
    if (hi > ow_n) hi = ow_n;
    if (hi < lo) hi = lo;
    columns(p, w, t, nc, 0, lo);
    interior(p, w, t, nc, lo, hi);
    columns(p, w, t, nc, hi, ow_n);
    cg_loop_end(k, &l);
}


/* --- windows (reduce_internal.h), shared with train_pool.c --- */

static LLVMValueRef ceil_div(cg_kernel *k, LLVMValueRef a, int64_t b) {
    return LLVMBuildSDiv(k->b, rd_add(k, a, cg_i64(k, b - 1)), cg_i64(k, b), "");
}

rd_win rd_window_at(cg_kernel *k, const rd_window *p, int d, LLVMValueRef o) {
    rd_win w;
    w.start = LLVMBuildSub(k->b, rd_mul(k, o, cg_i64(k, p->str[d])), cg_i64(k, p->pb[d]), "");
    if (p->kern[d] == 1 && p->pb[d] == 0 && p->pe[d] == 0) { /* always inside */
        w.k0 = cg_i64(k, 0);
        w.k1 = w.cnt = cg_i64(k, 1);
        return w;
    }
    LLVMValueRef zero = cg_i64(k, 0), kn = cg_i64(k, p->kern[d]);
    LLVMValueRef before = rd_max64(k, zero, LLVMBuildNeg(k->b, w.start, ""));
    w.k0 = rd_min64(k, kn, ceil_div(k, before, p->dil[d]));
    LLVMValueRef room = rd_max64(k, zero, LLVMBuildSub(k->b, cg_i64(k, p->in[d]), w.start, ""));
    w.k1 = rd_max64(k, w.k0, rd_min64(k, kn, ceil_div(k, room, p->dil[d])));
    if (p->include_pad) { /* positions inside the padded extent [-pb, in + pe) */
        LLVMValueRef proom = LLVMBuildSub(k->b, cg_i64(k, p->in[d] + p->pe[d]), w.start, "");
        w.cnt = rd_min64(k, kn, ceil_div(k, rd_max64(k, zero, proom), p->dil[d]));
    } else {
        w.cnt = LLVMBuildSub(k->b, w.k1, w.k0, "");
    }
    return w;
}

gr_code rd_window_read(const gr_node *n, const gr_value *x, const gr_value *y, rd_window *p,
                       gr_status *st) {
    int ns = x->shape.rank - 2, lead = 3 - ns;
    const int64_t *ks, *ss, *ds, *ps;
    if (ns < 1 || ns > 3 || y->shape.rank != x->shape.rank ||
        gr_node_ints(n, "kernel_shape", &ks) != ns)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s over %d spatial dims is not compiled",
                       n->op_type, ns);
    int n_s = gr_node_ints(n, "strides", &ss), n_d = gr_node_ints(n, "dilations", &ds);
    int n_p = gr_node_ints(n, "pads", &ps);
    const char *ap = gr_node_string(n, "auto_pad", "NOTSET");
    int same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    int valid = !strcmp(ap, "VALID");
    for (int d = 0; d < 3; d++) {
        int i = d - lead;
        p->in[d] = i >= 0 ? x->shape.dims[2 + i] : 1;
        p->out[d] = i >= 0 ? y->shape.dims[2 + i] : 1;
        p->kern[d] = i >= 0 ? ks[i] : 1;
        p->str[d] = i >= 0 && n_s == ns ? ss[i] : 1;
        p->dil[d] = i >= 0 && n_d == ns ? ds[i] : 1;
        p->pb[d] = i >= 0 && n_p == 2 * ns && !valid && !same ? ps[i] : 0;
        p->pe[d] = i >= 0 && n_p == 2 * ns && !valid && !same ? ps[i + ns] : 0;
        if (i >= 0 && same) {
            int64_t total = (p->out[d] - 1) * p->str[d] + (p->kern[d] - 1) * p->dil[d] + 1 - p->in[d];
            if (total < 0) total = 0;
            p->pb[d] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
            p->pe[d] = total - p->pb[d];
        }
        if (p->kern[d] < 1 || p->str[d] < 1 || p->dil[d] < 1 || p->pb[d] < 0 || p->pe[d] < 0)
            return gr_fail(st, GR_ERR_BAD_MODEL, "bad window attributes in spatial dim %d", i);
    }
    p->include_pad = gr_node_int(n, "count_include_pad", 0) != 0;
    return GR_OK;
}

/* X:[N,C,D1..Dn] -> Y:[N,C,o1..on] (and MaxPool's Indices: i64 like Y). */
gr_code cg_emit_pool(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                     gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    const gr_value *ind = n->n_outputs > 1 ? n->outputs[1] : NULL;
    pool_ctx p;
    memset(&p, 0, sizeof p);
    p.is_max = n->op == GR_OP_MAX_POOL;
    if (!gr_dtype_is_float(x->dtype) &&
        !(p.is_max && (x->dtype == GR_DTYPE_I8 || x->dtype == GR_DTYPE_U8)))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s of %s is not compiled", n->op_type,
                       gr_dtype_name(x->dtype));
    GR_TRY(rd_window_read(n, x, y, &p.w, st));
    p.col_major = gr_node_int(n, "storage_order", 0) != 0;
    p.xt = x->dtype;
    p.yt = y->dtype;
    p.at = gr_dtype_is_float(x->dtype) ? rd_float_dtype(x->dtype) : x->dtype;
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    p.k = k;
    p.x = cg_arg(k, x);
    p.y = cg_arg(k, y);
    p.ind = ind ? cg_arg(k, ind) : NULL;
    int64_t nc = x->shape.dims[0] * x->shape.dims[1];
    if (gr_value_numel(y) > 0) emit_rows(&p, nc);
    return cg_kernel_end(k, st);
}
