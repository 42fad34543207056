/* train_conv.c: ConvGradWeight, Conv's weight gradient over 1-3 spatial
 * dims (seen as 3-D, leading extents 1), groups, strides, explicit pads,
 * dilations:  dW[m, c, t] = sum_n sum_o dY[n, m, o] * X[n, g*Cg + c, o*s - p + t*d].
 * With >= 8 output and >= 8 im2col channels per group it runs the packed
 * GEMM per (group, tile of dW_g[Mg, Cg*taps]): for each image n in order,
 * dY_n[Mg, P] · im2col(X_n)^T[P, Cg*taps] (the B panels gathered straight
 * from X) into the workspace, then added to the tile of dW. Otherwise
 * (depthwise, small groups) a direct kernel, one task per (m, c). Either
 * way a task owns its slice of dW and sums over n and o in a fixed order. */
#include <stdint.h>
#include <string.h>

#include "codegen/gemm.h"

typedef struct {
    gr_dtype dt;
    int64_t N, C, M, G, Cg, Mg;
    int64_t in[3], out[3], ker[3], str[3], dil[3], pad[3];
    int64_t taps, Kg, in_plane, out_plane;
} gw_geom;

static gr_code geom(const gr_node *n, gw_geom *c, gr_status *st) {
    const gr_value *X = n->inputs[0], *dY = n->inputs[1], *dW = n->outputs[0];
    memset(c, 0, sizeof *c);
    int rank = X->shape.rank, ns = rank - 2;
    if (rank < 3 || rank > 5 || dY->shape.rank != rank || dW->shape.rank != rank)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "ConvGradWeight over %d spatial dims", ns);
    c->dt = dW->dtype;
    c->N = X->shape.dims[0];
    c->C = X->shape.dims[1];
    c->M = dY->shape.dims[1];
    c->G = gr_node_int(n, "group", 1);
    if (c->G < 1 || c->C % c->G || c->M % c->G)
        return gr_fail(st, GR_ERR_BAD_MODEL, "group %lld does not divide channels",
                       (long long)c->G);
    c->Cg = c->C / c->G;
    c->Mg = c->M / c->G;
    int64_t pads[6];
    GR_TRY(cg_read_attr3(n, "strides", ns, 1, c->str, 1, st));
    GR_TRY(cg_read_attr3(n, "dilations", ns, 1, c->dil, 1, st));
    GR_TRY(cg_read_attr3(n, "pads", ns, 0, pads, 2, st));
    c->taps = c->in_plane = c->out_plane = 1;
    for (int i = 0; i < 3; i++) {
        int d = i - (3 - ns);
        c->in[i] = d >= 0 ? X->shape.dims[2 + d] : 1;
        c->out[i] = d >= 0 ? dY->shape.dims[2 + d] : 1;
        c->ker[i] = d >= 0 ? dW->shape.dims[2 + d] : 1;
        c->pad[i] = pads[i];
        if (c->str[i] < 1 || c->dil[i] < 1)
            return gr_fail(st, GR_ERR_BAD_MODEL, "strides and dilations must be >= 1");
        c->taps *= c->ker[i];
        c->in_plane *= c->in[i];
        c->out_plane *= c->out[i];
    }
    c->Kg = c->Cg * c->taps;
    return GR_OK;
}

static LLVMValueRef i64c(cg_kernel *k, int64_t v) { return cg_i64(k, v); }

static LLVMValueRef mul(cg_kernel *k, LLVMValueRef a, int64_t c) {
    return c == 1 ? a : LLVMBuildNSWMul(k->b, a, i64c(k, c), "");
}

static LLVMValueRef add(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildNSWAdd(k->b, a, b, "");
}

/* --- GEMM path --- */

/* dst[kk][jj] = X_n[ci, o(p)*s - pad + tap*dil] for p = k0 + kk and column
 * col0 + jj = (ci, tap), zero outside X and past `cols`. Per panel, the
 * columns' channel offsets and tap shifts are <VL x i32> vectors; per row p
 * the window origin is added and one masked gather per vector loads it. */
static void grad_panel(cg_kernel *k, const cg_gemm *g, LLVMValueRef dst, LLVMValueRef k0,
                       LLVMValueRef kc, LLVMValueRef col0, int cols) {
    const gw_geom *c = g->user;
    LLVMBuilderRef b = k->b;
    int vl = g->vl, nv = g->nr / vl;
    LLVMValueRef shift[4][3], coff[4], live[4];
    LLVMValueRef c32 = LLVMBuildTrunc(b, col0, k->m->t_i32, "");
    int64_t instride[3] = {c->in[1] * c->in[2], c->in[2], 1};
    for (int v = 0; v < nv; v++) {
        LLVMValueRef lanes[32], bits[32];
        for (int i = 0; i < vl; i++) {
            lanes[i] = cg_i32(k, v * vl + i);
            bits[i] = LLVMConstInt(k->m->t_i1, v * vl + i < cols, 0);
        }
        live[v] = LLVMConstVector(bits, (unsigned)vl);
        LLVMValueRef j = LLVMBuildAdd(b, cg_splat(k, vl, c32),
                                      LLVMConstVector(lanes, (unsigned)vl), "");
        LLVMValueRef ci = LLVMBuildUDiv(b, j, cg_splat_i32(k, vl, c->taps), "");
        LLVMValueRef t = LLVMBuildURem(b, j, cg_splat_i32(k, vl, c->taps), "");
        LLVMValueRef tap[3];
        tap[0] = LLVMBuildUDiv(b, t, cg_splat_i32(k, vl, c->ker[1] * c->ker[2]), "");
        t = LLVMBuildURem(b, t, cg_splat_i32(k, vl, c->ker[1] * c->ker[2]), "");
        tap[1] = LLVMBuildUDiv(b, t, cg_splat_i32(k, vl, c->ker[2]), "");
        tap[2] = LLVMBuildURem(b, t, cg_splat_i32(k, vl, c->ker[2]), "");
        coff[v] = LLVMBuildMul(b, ci, cg_splat_i32(k, vl, c->in_plane), "");
        for (int d = 0; d < 3; d++) {
            shift[v][d] = LLVMBuildMul(b, tap[d], cg_splat_i32(k, vl, c->dil[d]), "");
            coff[v] = LLVMBuildAdd(b, coff[v], LLVMBuildMul(b, shift[v][d],
                                                            cg_splat_i32(k, vl, instride[d]), ""), "");
        }
    }
    cg_loop lk;
    LLVMValueRef kk = cg_loop_begin(k, &lk, i64c(k, 0), kc, 1);
    LLVMValueRef p = LLVMBuildTrunc(b, add(k, k0, kk), k->m->t_i32, ""), o[3];
    o[0] = LLVMBuildUDiv(b, p, cg_i32(k, (int32_t)(c->out[1] * c->out[2])), "");
    LLVMValueRef r = LLVMBuildURem(b, p, cg_i32(k, (int32_t)(c->out[1] * c->out[2])), "");
    o[1] = LLVMBuildUDiv(b, r, cg_i32(k, (int32_t)c->out[2]), "");
    o[2] = LLVMBuildURem(b, r, cg_i32(k, (int32_t)c->out[2]), "");
    LLVMValueRef origin[3], rowoff = cg_i32(k, 0);
    for (int d = 0; d < 3; d++) {
        origin[d] = LLVMBuildSub(b, LLVMBuildMul(b, o[d], cg_i32(k, (int32_t)c->str[d]), ""),
                                 cg_i32(k, (int32_t)c->pad[d]), "");
        rowoff = LLVMBuildAdd(b, rowoff, LLVMBuildMul(b, origin[d], cg_i32(k, (int32_t)instride[d]),
                                                      ""), "");
        origin[d] = cg_splat(k, vl, origin[d]);
    }
    rowoff = cg_splat(k, vl, rowoff);
    LLVMValueRef drow = cg_gep(k, c->dt, dst, mul(k, kk, g->nr));
    LLVMTypeRef et = cg_mem_type(k->m, c->dt), vt = LLVMVectorType(et, (unsigned)vl);
    LLVMTypeRef pvt = LLVMVectorType(k->m->t_ptr, (unsigned)vl);
    unsigned id = LLVMLookupIntrinsicID("llvm.masked.gather", 18);
    LLVMTypeRef types[2] = {vt, pvt};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, types, 2);
    for (int v = 0; v < nv; v++) {
        LLVMValueRef ok = live[v];
        for (int d = 0; d < 3; d++) {
            if (c->in[d] == 1 && c->ker[d] == 1 && c->pad[d] == 0) continue;
            LLVMValueRef pos = LLVMBuildAdd(b, origin[d], shift[v][d], "");
            LLVMValueRef in = LLVMBuildICmp(b, LLVMIntULT, pos, cg_splat_i32(k, vl, c->in[d]), "");
            ok = LLVMBuildAnd(b, ok, in, "");
        }
        LLVMValueRef idx = LLVMBuildAdd(b, rowoff, coff[v], "");
        idx = LLVMBuildSelect(b, ok, idx, LLVMConstNull(LLVMTypeOf(idx)), "");
        LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(b, et, g->b, &idx, 1, "");
        LLVMValueRef args[4] = {ptrs, cg_i32(k, (int32_t)gr_dtype_size(c->dt)), ok,
                                LLVMConstNull(vt)};
        LLVMValueRef x = LLVMBuildCall2(b, LLVMIntrinsicGetType(k->m->ctx, id, types, 2), fn,
                                        args, 4, "");
        LLVMValueRef s = LLVMBuildStore(b, x, cg_gep(k, c->dt, drow, i64c(k, v * vl)));
        LLVMSetAlignment(s, (unsigned)gr_dtype_size(c->dt));
    }
    cg_gemm_loop_end(k, &lk);
}

static void grad_pack(cg_kernel *k, const cg_gemm *g, LLVMValueRef bp, LLVMValueRef k0,
                      LLVMValueRef kc, LLVMValueRef n0, LLVMValueRef nc) {
    cg_gemm_pack_panels(k, g, bp, k0, kc, n0, nc, grad_panel);
}

/* i32 offsets in the panels: the group's input block and the columns fit. */
static int gemm_fits(const gw_geom *c, int nr) {
    int64_t span = c->Cg * c->in_plane + c->in_plane;
    return span < INT32_MAX / 4 && c->Kg + nr < INT32_MAX / 4 && c->out_plane < INT32_MAX / 4;
}

/* Task t = (group gi, tile of dW_g): for n in order, ws = dY_n,g · B_n (the
 * tile), then dW tile (+)= ws tile. */
static void emit_gemm(cg_kernel *k, const gr_node *n, const gw_geom *c, cg_gemm *g) {
    int64_t tiles = cg_gemm_n_tiles(g), tiles_n = (g->N + g->nc - 1) / g->nc;
    size_t gemm_ws = (cg_gemm_workspace_bytes(g) + 63) / 64 * 64;
    k->n_tasks = c->G * tiles;
    k->workspace_bytes = gemm_ws + (size_t)(c->Mg * c->Kg) * gr_dtype_size(c->dt);
    k->wide = g->wide;
    LLVMValueRef x = cg_arg(k, n->inputs[0]), dy = cg_arg(k, n->inputs[1]);
    LLVMValueRef dw = cg_arg(k, n->outputs[0]);
    LLVMValueRef wsc = cg_gep(k, GR_DTYPE_U8, k->workspace, i64c(k, (int64_t)gemm_ws));
    cg_loop lt, ln, li, lj;
    LLVMValueRef t = cg_loop_begin(k, &lt, k->begin, k->end, 1);
    LLVMValueRef gi = LLVMBuildSDiv(k->b, t, i64c(k, tiles), "");
    LLVMValueRef tile = LLVMBuildSRem(k->b, t, i64c(k, tiles), "");
    /* the tile's rows and columns, as cg_gemm_emit_tile numbers them */
    LLVMValueRef m0 = mul(k, LLVMBuildSDiv(k->b, tile, i64c(k, tiles_n), ""), g->mc);
    LLVMValueRef j0 = mul(k, LLVMBuildSRem(k->b, tile, i64c(k, tiles_n), ""), g->nc);
    LLVMValueRef m1 = cg_gemm_min(k, add(k, m0, i64c(k, g->mc)), i64c(k, g->M));
    LLVMValueRef j1 = cg_gemm_min(k, add(k, j0, i64c(k, g->nc)), i64c(k, g->N));
    LLVMValueRef dwg = cg_gep(k, c->dt, dw, mul(k, gi, c->Mg * c->Kg));
    LLVMValueRef img = cg_loop_begin(k, &ln, i64c(k, 0), i64c(k, c->N), 1);
    g->a = cg_gep(k, c->dt, dy, add(k, mul(k, img, c->M * c->out_plane),
                                    mul(k, gi, c->Mg * c->out_plane)));
    g->b = cg_gep(k, c->dt, x, add(k, mul(k, img, c->C * c->in_plane),
                                   mul(k, gi, c->Cg * c->in_plane)));
    g->c = wsc;
    cg_gemm_emit_tile(k, g, tile);
    LLVMValueRef first = LLVMBuildICmp(k->b, LLVMIntEQ, img, i64c(k, 0), "");
    LLVMValueRef i = cg_loop_begin(k, &li, m0, m1, 1);
    LLVMValueRef row = mul(k, i, c->Kg);
    LLVMValueRef j = cg_loop_begin(k, &lj, j0, j1, 1);
    LLVMValueRef at = add(k, row, j), v = cg_load(k, c->dt, wsc, at);
    LLVMValueRef sum = LLVMBuildFAdd(k->b, cg_load(k, c->dt, dwg, at), v, "");
    cg_store(k, c->dt, dwg, at, LLVMBuildSelect(k->b, first, v, sum, ""));
    cg_loop_end(k, &lj);
    cg_gemm_loop_end(k, &li);
    cg_gemm_loop_end(k, &ln);
    cg_gemm_loop_end(k, &lt);
}

/* --- direct path --- */

/* Output positions [lo, hi) of dim d whose input o*s + off lies inside
 * [0, in), for the runtime tap shift off = tap*dil - pad. */
static void valid_range(cg_kernel *k, const gw_geom *c, int d, LLVMValueRef tap,
                        LLVMValueRef *lo, LLVMValueRef *hi) {
    LLVMBuilderRef b = k->b;
    LLVMValueRef off = add(k, mul(k, tap, c->dil[d]), i64c(k, -c->pad[d]));
    LLVMValueRef zero = i64c(k, 0), out = i64c(k, c->out[d]), s = i64c(k, c->str[d]);
    LLVMValueRef neg = LLVMBuildNeg(b, off, "");
    LLVMValueRef l = LLVMBuildSDiv(b, add(k, neg, i64c(k, c->str[d] - 1)), s, "");
    l = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, neg, zero, ""), l, zero, "");
    *lo = cg_gemm_min(k, l, out);
    LLVMValueRef r = LLVMBuildSub(b, i64c(k, c->in[d] - 1), off, "");
    LLVMValueRef h = add(k, LLVMBuildSDiv(b, r, s, ""), i64c(k, 1));
    h = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, r, zero, ""), h, zero, "");
    h = cg_gemm_min(k, h, out);
    *hi = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, h, *lo, ""), *lo, h, "");
}

/* Task t = (m, ci): dW[m, ci, tap] for every tap, each a sum over n, od,
 * oh, ow (innermost, vectorised) over the positions whose input lies
 * inside X (ranges computed per tap). */
static void emit_direct(cg_kernel *k, const gr_node *n, const gw_geom *c) {
    LLVMBuilderRef b = k->b;
    k->n_tasks = c->M * c->Cg;
    LLVMValueRef x = cg_arg(k, n->inputs[0]), dy = cg_arg(k, n->inputs[1]);
    LLVMValueRef dw = cg_arg(k, n->outputs[0]);
    gr_dtype at = c->dt;
    cg_loop lt, lk, ln, ld, lh, lw;
    LLVMValueRef t = cg_loop_begin(k, &lt, k->begin, k->end, 1);
    LLVMValueRef m = LLVMBuildSDiv(b, t, i64c(k, c->Cg), "");
    LLVMValueRef ci = LLVMBuildSRem(b, t, i64c(k, c->Cg), "");
    LLVMValueRef xc = add(k, mul(k, LLVMBuildSDiv(b, m, i64c(k, c->Mg), ""), c->Cg), ci);
    LLVMValueRef tp = cg_loop_begin(k, &lk, i64c(k, 0), i64c(k, c->taps), 1);
    LLVMValueRef tap[3], r = tp, lo[3], hi[3];
    tap[0] = LLVMBuildSDiv(b, r, i64c(k, c->ker[1] * c->ker[2]), "");
    r = LLVMBuildSRem(b, r, i64c(k, c->ker[1] * c->ker[2]), "");
    tap[1] = LLVMBuildSDiv(b, r, i64c(k, c->ker[2]), "");
    tap[2] = LLVMBuildSRem(b, r, i64c(k, c->ker[2]), "");
    for (int d = 0; d < 3; d++) valid_range(k, c, d, tap[d], &lo[d], &hi[d]);
    LLVMValueRef img = cg_loop_begin(k, &ln, i64c(k, 0), i64c(k, c->N), 1);
    cg_loop_acc(k, &ln, cg_const(k, at, 0));
    LLVMValueRef xi = mul(k, add(k, mul(k, img, c->C), xc), c->in_plane);
    LLVMValueRef yi = mul(k, add(k, mul(k, img, c->M), m), c->out_plane);
    cg_loop *lo_[3] = {&ld, &lh, &lw};
    int64_t xs[3] = {c->in[1] * c->in[2], c->in[2], 1};
    int64_t ys[3] = {c->out[1] * c->out[2], c->out[2], 1};
    LLVMValueRef acc = ln.acc[0];
    for (int d = 0; d < 3; d++) {
        LLVMValueRef o = cg_loop_begin(k, lo_[d], lo[d], hi[d], 1);
        lo_[d]->vectorize = d == 2;
        acc = cg_loop_acc(k, lo_[d], acc);
        LLVMValueRef pos = add(k, add(k, mul(k, o, c->str[d]), mul(k, tap[d], c->dil[d])),
                               i64c(k, -c->pad[d]));
        xi = add(k, xi, mul(k, pos, xs[d]));
        yi = add(k, yi, mul(k, o, ys[d]));
    }
    LLVMValueRef args[3] = {cg_load(k, c->dt, dy, yi), cg_load(k, c->dt, x, xi), acc};
    LLVMValueRef next = cg_intrinsic(k, "llvm.fmuladd", NULL, 3, args);
    for (int d = 2; d >= 0; d--) {
        cg_loop_next(lo_[d], 0, next);
        cg_loop_end(k, lo_[d]);
        next = lo_[d]->acc_out[0];
    }
    cg_loop_next(&ln, 0, next);
    cg_loop_end(k, &ln);
    cg_store(k, c->dt, dw, add(k, mul(k, t, c->taps), tp), ln.acc_out[0]);
    cg_loop_end(k, &lk);
    cg_loop_end(k, &lt);
}

/* --- stride-1 direct path --- */

/* Extents of the zero-padded X plane: every tap of every output fits. */
static void padded_dims(const gw_geom *c, int64_t *pd) {
    for (int d = 0; d < 3; d++) {
        int64_t a = c->in[d] + c->pad[d], b = c->out[d] + (c->ker[d] - 1) * c->dil[d];
        pd[d] = a > b ? a : b;
    }
}

static void fill_zero(cg_kernel *k, gr_dtype dt, LLVMValueRef p, int64_t n) {
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(k, &l, i64c(k, 0), i64c(k, n), 1);
    cg_store(k, dt, p, i, cg_const(k, dt, 0));
    cg_loop_end(k, &l);
}

/* dst[(a*pd1 + b)*pd2 + off + w] = src[(a*e1 + b)*e2 + w] for the e0 x e1
 * x e2 block src (dst offset: (a + o0)*pd1 + b + o1 rows, + o2). */
static void copy_block(cg_kernel *k, gr_dtype dt, LLVMValueRef dst, const int64_t *pd,
                       const int64_t *o, LLVMValueRef src, const int64_t *e) {
    cg_loop la, lb, lw;
    LLVMValueRef a = cg_loop_begin(k, &la, i64c(k, 0), i64c(k, e[0]), 1);
    LLVMValueRef bb = cg_loop_begin(k, &lb, i64c(k, 0), i64c(k, e[1]), 1);
    LLVMValueRef drow = add(k, mul(k, add(k, mul(k, add(k, a, i64c(k, o[0])), pd[1]),
                                          add(k, bb, i64c(k, o[1]))), pd[2]), i64c(k, o[2]));
    LLVMValueRef srow = mul(k, add(k, mul(k, a, e[1]), bb), e[2]);
    LLVMValueRef w = cg_loop_begin(k, &lw, i64c(k, 0), i64c(k, e[2]), 1);
    cg_store(k, dt, dst, add(k, drow, w), cg_load(k, dt, src, add(k, srow, w)));
    cg_loop_end(k, &lw);
    cg_loop_end(k, &lb);
    cg_loop_end(k, &la);
}

/* All strides 1. Task t = (m, ci). Per image: X's plane goes zero-padded
 * into the workspace (extents pd), dY's plane into a pd-strided block with
 * zeros past its edges; then each tap is one long contiguous dot product
 * sum_q dYp[q] * Xp[q + shift(tap)] over q < out0*pd1*pd2, accumulated per
 * tap in the workspace in image order. */
static void emit_direct_s1(cg_kernel *k, const gr_node *n, const gw_geom *c) {
    LLVMBuilderRef b = k->b;
    gr_dtype dt = c->dt;
    size_t es = gr_dtype_size(dt);
    int64_t pd[3], zero3[3] = {0, 0, 0};
    padded_dims(c, pd);
    int64_t xp_n = pd[0] * pd[1] * pd[2] + pd[1] * pd[2], yp_n = c->out[0] * pd[1] * pd[2];
    int64_t acc_n = (c->taps + 15) / 16 * 16, xp_off = acc_n;
    int64_t yp_off = acc_n + (xp_n + 15) / 16 * 16;
    k->n_tasks = c->M * c->Cg;
    k->workspace_bytes = (size_t)(yp_off + yp_n) * es;
    LLVMValueRef x = cg_arg(k, n->inputs[0]), dy = cg_arg(k, n->inputs[1]);
    LLVMValueRef dw = cg_arg(k, n->outputs[0]);
    LLVMValueRef acc = k->workspace, xp = cg_gep(k, dt, acc, i64c(k, xp_off));
    LLVMValueRef yp = cg_gep(k, dt, acc, i64c(k, yp_off));
    cg_loop lt, ln, lk, lq, lo;
    LLVMValueRef t = cg_loop_begin(k, &lt, k->begin, k->end, 1);
    LLVMValueRef m = LLVMBuildSDiv(b, t, i64c(k, c->Cg), "");
    LLVMValueRef ci = LLVMBuildSRem(b, t, i64c(k, c->Cg), "");
    LLVMValueRef xc = add(k, mul(k, LLVMBuildSDiv(b, m, i64c(k, c->Mg), ""), c->Cg), ci);
    fill_zero(k, dt, acc, c->taps);
    fill_zero(k, dt, xp, xp_n);
    fill_zero(k, dt, yp, yp_n);
    LLVMValueRef img = cg_loop_begin(k, &ln, i64c(k, 0), i64c(k, c->N), 1);
    copy_block(k, dt, xp, pd, c->pad, cg_gep(k, dt, x, mul(k, add(k, mul(k, img, c->C), xc),
                                                          c->in_plane)), c->in);
    copy_block(k, dt, yp, pd, zero3, cg_gep(k, dt, dy, mul(k, add(k, mul(k, img, c->M), m),
                                                          c->out_plane)), c->out);
    LLVMValueRef tp = cg_loop_begin(k, &lk, i64c(k, 0), i64c(k, c->taps), 1);
    LLVMValueRef r = tp, tap[3];
    tap[0] = LLVMBuildSDiv(b, r, i64c(k, c->ker[1] * c->ker[2]), "");
    r = LLVMBuildSRem(b, r, i64c(k, c->ker[1] * c->ker[2]), "");
    tap[1] = LLVMBuildSDiv(b, r, i64c(k, c->ker[2]), "");
    tap[2] = LLVMBuildSRem(b, r, i64c(k, c->ker[2]), "");
    LLVMValueRef shift = add(k, add(k, mul(k, tap[0], c->dil[0] * pd[1] * pd[2]),
                                    mul(k, tap[1], c->dil[1] * pd[2])), mul(k, tap[2], c->dil[2]));
    LLVMValueRef xs = cg_gep(k, dt, xp, shift);
    LLVMValueRef q = cg_loop_begin(k, &lq, i64c(k, 0), i64c(k, yp_n), 1);
    lq.vectorize = 1;
    cg_loop_acc(k, &lq, cg_const(k, dt, 0));
    LLVMValueRef args[3] = {cg_load(k, dt, yp, q), cg_load(k, dt, xs, q), lq.acc[0]};
    cg_loop_next(&lq, 0, cg_intrinsic(k, "llvm.fmuladd", NULL, 3, args));
    cg_loop_end(k, &lq);
    cg_store(k, dt, acc, tp, LLVMBuildFAdd(b, cg_load(k, dt, acc, tp), lq.acc_out[0], ""));
    cg_loop_end(k, &lk);
    cg_gemm_loop_end(k, &ln);
    LLVMValueRef o = cg_loop_begin(k, &lo, i64c(k, 0), i64c(k, c->taps), 1);
    cg_store(k, dt, dw, add(k, mul(k, t, c->taps), o), cg_load(k, dt, acc, o));
    cg_loop_end(k, &lo);
    cg_loop_end(k, &lt);
}

/* X:[N,C,in...] dY:[N,M,out...] -> dW:[M,C/group,k...] */
gr_code cg_emit_conv_grad_weight(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                                 gr_status *st) {
    gw_geom c;
    GR_TRY(geom(n, &c, st));
    if (c.dt != GR_DTYPE_F32 && c.dt != GR_DTYPE_F64)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "ConvGradWeight of %s is not compiled",
                       gr_dtype_name(c.dt));
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    if (c.M * c.Kg > 0) {
        cg_gemm g;
        cg_gemm_init(&g, c.dt, c.Mg, c.Kg, c.out_plane);
        g.a_rs = c.out_plane;
        g.c_rs = c.Kg;
        g.user = &c;
        g.pack = grad_pack;
        cg_gemm_plan(m, &g, c.G);
        if (c.Mg >= 8 && c.Kg >= 8 && c.N > 0 && c.out_plane > 0 && gemm_fits(&c, g.nr))
            emit_gemm(k, n, &c, &g);
        else if (c.str[0] == 1 && c.str[1] == 1 && c.str[2] == 1)
            emit_direct_s1(k, n, &c);
        else
            emit_direct(k, n, &c);
    }
    return cg_kernel_end(k, st);
}
