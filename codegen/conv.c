/* conv.c: Conv (1-D/2-D/3-D, groups, strides, pads, dilations, auto_pad,
 * bias) and ConvTranspose. Spatial dims are seen as 3-D (leading 1s).
 * Conv with >= 8 output channels per group runs as an implicit GEMM per
 * (image, group): Y[Mg, P] = W[Mg, Cg*taps] · im2col(X)[Cg*taps, P], the
 * im2col panel packed straight from X: by row runs (masked vector loads)
 * for strides 1 and 2 along the rows, else by masked gathers (a 1x1
 * stride-1 unpadded conv packs plain rows of X). Depthwise and small groups
 * use a direct kernel.
 * ConvTranspose runs as a GEMM then a col2im gather (see its section). */
#include <stdint.h>
#include <string.h>

#include "codegen/gemm.h"

/* A convolution seen as 3-D: dims of size 1 lead. */
typedef struct {
    gr_dtype dt;
    int ns;                         /* spatial dims of the node (1..3) */
    int64_t N, C, M, G, Cg, Mg;     /* images, in/out channels, groups */
    int64_t in[3], out[3], ker[3];  /* spatial extents */
    int64_t str[3], dil[3], pad[3]; /* pad: leading padding */
    int64_t taps, Kg, in_plane, out_plane;
} cg_conv_geom;

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

gr_code cg_read_attr3(const gr_node *n, const char *name, int ns, int64_t fallback,
                          int64_t *out3, int mult, gr_status *st) {
    const int64_t *v;
    int len = gr_node_ints(n, name, &v);
    for (int i = 0; i < 3 * mult; i++) out3[i] = fallback;
    if (len < 0) return GR_OK;
    if (len != ns * mult)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "attribute '%s' has %d values, expected %d", name,
                       len, ns * mult);
    for (int m = 0; m < mult; m++)
        for (int i = 0; i < ns; i++) out3[m * 3 + 3 - ns + i] = v[m * ns + i];
    return GR_OK;
}

/* The geometry of a Conv (transpose = 0) or ConvTranspose node. */
static gr_code conv_geom(const gr_node *n, int transpose, cg_conv_geom *c, gr_status *st) {
    const gr_value *X = n->inputs[0], *W = n->inputs[1], *Y = n->outputs[0];
    memset(c, 0, sizeof *c);
    int rank = X->shape.rank;
    if (rank < 3 || rank > 5 || W->shape.rank != rank)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "convolution over %d spatial dims", rank - 2);
    c->ns = rank - 2;
    c->dt = Y->dtype;
    c->N = X->shape.dims[0];
    c->C = X->shape.dims[1];
    c->M = Y->shape.dims[1];
    c->G = gr_node_int(n, "group", 1);
    if (c->G < 1 || c->C % c->G || c->M % c->G)
        return gr_fail(st, GR_ERR_BAD_MODEL, "group %lld does not divide channels",
                       (long long)c->G);
    c->Cg = c->C / c->G;
    c->Mg = c->M / c->G;
    int64_t pads[6], out_pad[3];
    GR_TRY(cg_read_attr3(n, "strides", c->ns, 1, c->str, 1, st));
    GR_TRY(cg_read_attr3(n, "dilations", c->ns, 1, c->dil, 1, st));
    GR_TRY(cg_read_attr3(n, "pads", c->ns, 0, pads, 2, st));
    GR_TRY(cg_read_attr3(n, "output_padding", c->ns, 0, out_pad, 1, st));
    const char *ap = gr_node_string(n, "auto_pad", "NOTSET");
    const int64_t *os;
    int has_out_shape = transpose && gr_node_ints(n, "output_shape", &os) > 0;
    c->taps = 1;
    c->in_plane = c->out_plane = 1;
    for (int i = 0; i < 3; i++) {
        int d = i - (3 - c->ns);
        c->in[i] = d >= 0 ? X->shape.dims[2 + d] : 1;
        c->out[i] = d >= 0 ? Y->shape.dims[2 + d] : 1;
        c->ker[i] = d >= 0 ? W->shape.dims[2 + d] : 1;
        c->taps *= c->ker[i];
        c->in_plane *= c->in[i];
        c->out_plane *= c->out[i];
        int64_t dk = (c->ker[i] - 1) * c->dil[i] + 1, total;
        if (transpose)
            total = c->str[i] * (c->in[i] - 1) + out_pad[i] + dk - c->out[i];
        else
            total = (c->out[i] - 1) * c->str[i] + dk - c->in[i];
        if (!transpose && total < 0) total = 0;
        if (!strcmp(ap, "SAME_UPPER")) c->pad[i] = floor_div(total, 2);
        else if (!strcmp(ap, "SAME_LOWER") || has_out_shape) c->pad[i] = total - floor_div(total, 2);
        else if (!strcmp(ap, "VALID")) c->pad[i] = 0;
        else c->pad[i] = pads[i];
    }
    c->Kg = c->Cg * c->taps;
    if (W->shape.dims[1] != (transpose ? c->Mg : c->Cg))
        return gr_fail(st, GR_ERR_BAD_MODEL, "W's dim 1 does not match the group's channels");
    return GR_OK;
}

/* --- implicit GEMM --- */

static LLVMValueRef i64c(cg_kernel *k, int64_t v) { return cg_i64(k, v); }

static LLVMValueRef nsw_mul(cg_kernel *k, LLVMValueRef a, int64_t c) {
    return c == 1 ? a : LLVMBuildNSWMul(k->b, a, i64c(k, c), "");
}

static LLVMValueRef nsw_add(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildNSWAdd(k->b, a, b, "");
}

/* in[d] = out[d]*s - p + tap*dil; returns the index and ANDs the bounds
 * check into *ok. */
static LLVMValueRef in_coord(cg_kernel *k, const cg_conv_geom *c, int d, LLVMValueRef o,
                             LLVMValueRef tap, LLVMValueRef *ok) {
    LLVMValueRef v = nsw_add(k, nsw_mul(k, o, c->str[d]),
                             nsw_add(k, nsw_mul(k, tap, c->dil[d]), i64c(k, -c->pad[d])));
    if (c->pad[d] > 0 || (c->out[d] - 1) * c->str[d] + (c->ker[d] - 1) * c->dil[d] -
                                 c->pad[d] >= c->in[d]) {
        LLVMValueRef in = LLVMBuildICmp(k->b, LLVMIntULT, v, i64c(k, c->in[d]), "");
        *ok = *ok ? LLVMBuildAnd(k->b, *ok, in, "") : in;
    }
    return v;
}

/* dst[kk][jj] = im2col(X)[k0+kk, col0+jj]: row k = (ci, kd, kh, kw),
 * column p = (od, oh, ow); zero outside X and past `cols`. */
static void conv_panel(cg_kernel *k, const cg_gemm *g, LLVMValueRef dst, LLVMValueRef k0,
                       LLVMValueRef kc, LLVMValueRef col0, int cols) {
    const cg_conv_geom *c = g->user;
    LLVMBuilderRef b = k->b;
    cg_loop lk, lj;
    LLVMValueRef kk = cg_loop_begin(k, &lk, i64c(k, 0), kc, 1);
    LLVMValueRef row = nsw_add(k, k0, kk), tap[3];
    LLVMValueRef ci = LLVMBuildSDiv(b, row, i64c(k, c->taps), "");
    LLVMValueRef t = LLVMBuildSRem(b, row, i64c(k, c->taps), "");
    tap[0] = LLVMBuildSDiv(b, t, i64c(k, c->ker[1] * c->ker[2]), "");
    t = LLVMBuildSRem(b, t, i64c(k, c->ker[1] * c->ker[2]), "");
    tap[1] = LLVMBuildSDiv(b, t, i64c(k, c->ker[2]), "");
    tap[2] = LLVMBuildSRem(b, t, i64c(k, c->ker[2]), "");
    LLVMValueRef xc = cg_gep(k, c->dt, g->b, nsw_mul(k, ci, c->in_plane));
    LLVMValueRef drow = cg_gep(k, c->dt, dst, nsw_mul(k, kk, g->nr));
    if (cols) {
        LLVMValueRef jj = cg_loop_begin(k, &lj, i64c(k, 0), i64c(k, cols), 1);
        LLVMValueRef p = nsw_add(k, col0, jj), o[3], ok = NULL;
        o[0] = LLVMBuildSDiv(b, p, i64c(k, c->out[1] * c->out[2]), "");
        LLVMValueRef r = LLVMBuildSRem(b, p, i64c(k, c->out[1] * c->out[2]), "");
        o[1] = LLVMBuildSDiv(b, r, i64c(k, c->out[2]), "");
        o[2] = LLVMBuildSRem(b, r, i64c(k, c->out[2]), "");
        LLVMValueRef idx = i64c(k, 0);
        for (int d = 0; d < 3; d++) {
            LLVMValueRef v = in_coord(k, c, d, o[d], tap[d], &ok);
            idx = nsw_add(k, nsw_mul(k, idx, c->in[d]), v);
        }
        LLVMValueRef x;
        if (ok) {
            idx = LLVMBuildSelect(b, ok, idx, i64c(k, 0), "");
            x = LLVMBuildSelect(b, ok, cg_load(k, c->dt, xc, idx), cg_const(k, c->dt, 0), "");
        } else {
            x = cg_load(k, c->dt, xc, idx);
        }
        cg_store(k, c->dt, drow, jj, x);
        cg_loop_end(k, &lj);
    }
    for (int jj = cols; jj < g->nr; jj++) cg_store(k, c->dt, drow, i64c(k, jj), cg_const(k, c->dt, 0));
    cg_gemm_loop_end(k, &lk);
}

LLVMValueRef cg_splat(cg_kernel *k, int vl, LLVMValueRef s) {
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(s), (unsigned)vl);
    LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetUndef(vt), s, cg_i32(k, 0), "");
    return LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(vt),
                                  LLVMConstNull(LLVMVectorType(k->m->t_i32, (unsigned)vl)), "");
}

LLVMValueRef cg_splat_i32(cg_kernel *k, int vl, int64_t c) {
    return cg_splat(k, vl, cg_i32(k, (int32_t)c));
}

/* The vector form of conv_panel: per panel, the window origins
 * (o*s - p) of its NR columns are computed once as <VL x i32>; per row
 * (ci, tap) the elements come from one masked gather per vector. */
static void conv_panel_gather(cg_kernel *k, const cg_gemm *g, LLVMValueRef dst, LLVMValueRef k0,
                              LLVMValueRef kc, LLVMValueRef col0, int cols) {
    const cg_conv_geom *c = g->user;
    LLVMBuilderRef b = k->b;
    int vl = g->vl, nv = g->nr / vl;
    LLVMTypeRef i32 = k->m->t_i32;
    LLVMValueRef base[4][3], live[4];
    LLVMValueRef c32 = LLVMBuildTrunc(b, col0, i32, "");
    for (int v = 0; v < nv; v++) {
        LLVMValueRef lanes[32], bits[32];
        for (int i = 0; i < vl; i++) {
            lanes[i] = cg_i32(k, v * vl + i);
            bits[i] = LLVMConstInt(k->m->t_i1, v * vl + i < cols, 0);
        }
        live[v] = LLVMConstVector(bits, (unsigned)vl);
        LLVMValueRef p = LLVMBuildAdd(b, cg_splat(k, vl, c32), LLVMConstVector(lanes, (unsigned)vl), "");
        LLVMValueRef o[3];
        o[0] = LLVMBuildUDiv(b, p, cg_splat_i32(k, vl, c->out[1] * c->out[2]), "");
        LLVMValueRef r = LLVMBuildURem(b, p, cg_splat_i32(k, vl, c->out[1] * c->out[2]), "");
        o[1] = LLVMBuildUDiv(b, r, cg_splat_i32(k, vl, c->out[2]), "");
        o[2] = LLVMBuildURem(b, r, cg_splat_i32(k, vl, c->out[2]), "");
        for (int d = 0; d < 3; d++)
            base[v][d] = LLVMBuildSub(b, LLVMBuildMul(b, o[d], cg_splat_i32(k, vl, c->str[d]), ""),
                                      cg_splat_i32(k, vl, c->pad[d]), "");
    }
    cg_loop lk;
    LLVMValueRef kk = cg_loop_begin(k, &lk, i64c(k, 0), kc, 1);
    LLVMValueRef row = LLVMBuildTrunc(b, nsw_add(k, k0, kk), i32, ""), tap[3];
    LLVMValueRef ci = LLVMBuildUDiv(b, row, cg_i32(k, (int32_t)c->taps), "");
    LLVMValueRef t = LLVMBuildURem(b, row, cg_i32(k, (int32_t)c->taps), "");
    tap[0] = LLVMBuildUDiv(b, t, cg_i32(k, (int32_t)(c->ker[1] * c->ker[2])), "");
    t = LLVMBuildURem(b, t, cg_i32(k, (int32_t)(c->ker[1] * c->ker[2])), "");
    tap[1] = LLVMBuildUDiv(b, t, cg_i32(k, (int32_t)c->ker[2]), "");
    tap[2] = LLVMBuildURem(b, t, cg_i32(k, (int32_t)c->ker[2]), "");
    LLVMValueRef cbase = cg_splat(k, vl, LLVMBuildMul(b, ci, cg_i32(k, (int32_t)c->in_plane), ""));
    LLVMValueRef drow = cg_gep(k, c->dt, dst, nsw_mul(k, kk, g->nr));
    LLVMTypeRef et = cg_mem_type(k->m, c->dt), vt = LLVMVectorType(et, (unsigned)vl);
    LLVMTypeRef pvt = LLVMVectorType(k->m->t_ptr, (unsigned)vl);
    for (int v = 0; v < nv; v++) {
        LLVMValueRef ok = live[v], idx = cbase;
        LLVMValueRef mul = NULL;
        for (int d = 0; d < 3; d++) {
            LLVMValueRef off = cg_splat(k, vl, LLVMBuildMul(b, tap[d], cg_i32(k, (int32_t)c->dil[d]), ""));
            LLVMValueRef i = LLVMBuildAdd(b, base[v][d], off, "");
            ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntULT, i, cg_splat_i32(k, vl, c->in[d]), ""), "");
            mul = mul ? LLVMBuildAdd(b, LLVMBuildMul(b, mul, cg_splat_i32(k, vl, c->in[d]), ""), i, "") : i;
        }
        idx = LLVMBuildAdd(b, idx, mul, "");
        LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(b, et, g->b, &idx, 1, "");
        unsigned id = LLVMLookupIntrinsicID("llvm.masked.gather", 18);
        LLVMTypeRef types[2] = {vt, pvt};
        LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, types, 2);
        LLVMValueRef args[4] = {ptrs, cg_i32(k, (int32_t)gr_dtype_size(c->dt)), ok,
                                LLVMConstNull(vt)};
        LLVMValueRef x = LLVMBuildCall2(b, LLVMIntrinsicGetType(k->m->ctx, id, types, 2), fn,
                                        args, 4, "");
        LLVMValueRef s = LLVMBuildStore(b, x, cg_gep(k, c->dt, drow, i64c(k, v * vl)));
        LLVMSetAlignment(s, (unsigned)gr_dtype_size(c->dt));
    }
    cg_gemm_loop_end(k, &lk);
}

/* --- im2col by row runs ---
 * A panel vector (VL consecutive output positions) meets at most n_parts
 * output rows: lanes [jlo, jhi) of part i lie in output row (od, oh), lane
 * j at output column j + w0. With stride s along the last dim, lane j of
 * im2col row (ci, kd, kh, kw) is element j*s of the VL*s contiguous
 * elements of X[ci, id, ih, :] from column w0*s - pad + kw*dil: one masked
 * vector load per part (lanes outside the part, the input row or the
 * panel's columns are masked off and read as 0; parts are OR-ed), then
 * every s-th element is kept. Masks and row offsets depend on the panel and
 * the tap only, so they are computed once per panel and (kd, kh) and serve
 * every channel of the K block, which starts on a channel (kc is a multiple
 * of taps, see conv_rows_kc). */

#define ROWS_MAX_PARTS 4 /* beyond (tiny output rows): gathers */
#define ROWS_MAX_STRIDE 2 /* beyond: gathers (as fast, far less code) */
#define ROWS_MAX_NV 4    /* vectors per panel */
#define ROWS_MAX_KW 16   /* taps along the last dim (unrolled) */

/* Output rows a vector of vl lanes meets (0: the row pack does not apply;
 * strided 1x1 convs gather, measured ~10% faster). */
static int conv_rows_parts(const cg_conv_geom *c, int vl) {
    int64_t ow = c->out[2];
    if (c->str[2] > ROWS_MAX_STRIDE || (c->str[2] > 1 && c->ker[2] == 1)) return 0;
    if (c->ker[2] > ROWS_MAX_KW || ow < 1 || c->taps < 1) return 0;
    if (ow % vl == 0) return 1; /* vectors start at multiples of vl */
    int64_t parts = 1 + (vl - 1 + ow - 1) / ow;
    return parts <= ROWS_MAX_PARTS ? (int)parts : 0;
}

/* Per vector v and part i of a panel (i64 values): lanes [jlo, jhi), the
 * output row (od, oh), and w0 = output column of lane 0. */
typedef struct {
    int nv, n_parts;
    LLVMValueRef jlo[ROWS_MAX_NV][ROWS_MAX_PARTS], jhi[ROWS_MAX_NV][ROWS_MAX_PARTS];
    LLVMValueRef od[ROWS_MAX_NV][ROWS_MAX_PARTS], oh[ROWS_MAX_NV][ROWS_MAX_PARTS];
    LLVMValueRef w0[ROWS_MAX_NV][ROWS_MAX_PARTS];
    LLVMValueRef colmask[ROWS_MAX_KW][ROWS_MAX_NV][ROWS_MAX_PARTS]; /* lane_range */
} rows_panel;

static LLVMValueRef smin_c(cg_kernel *k, LLVMValueRef a, int64_t b) {
    return cg_gemm_min(k, a, i64c(k, b));
}

static LLVMValueRef smax_c(cg_kernel *k, LLVMValueRef a, int64_t b) {
    return LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSGT, a, i64c(k, b), ""), a,
                           i64c(k, b), "");
}

/* The parts of vector v of the panel at col0 with `lanes` live lanes. */
static void rows_parts(cg_kernel *k, const cg_conv_geom *c, rows_panel *rp, int v,
                       LLVMValueRef p0, int lanes) {
    LLVMBuilderRef b = k->b;
    int64_t ow_n = c->out[2], plane2 = c->out[1] * c->out[2];
    LLVMValueRef ow = LLVMBuildSRem(b, p0, i64c(k, ow_n), "");
    LLVMValueRef q0 = LLVMBuildSub(b, i64c(k, ow_n), ow, ""); /* lanes left in row */
    for (int i = 0; i < rp->n_parts; i++) {
        /* part i starts at lane q0 + (i-1)*OW, the start of an output row */
        LLVMValueRef lo = i ? smin_c(k, nsw_add(k, q0, i64c(k, (i - 1) * ow_n)), lanes)
                            : i64c(k, 0);
        LLVMValueRef p = i ? nsw_add(k, p0, nsw_add(k, q0, i64c(k, (i - 1) * ow_n))) : p0;
        rp->jlo[v][i] = lo;
        rp->jhi[v][i] = rp->n_parts == 1 ? i64c(k, lanes)
                                          : smin_c(k, nsw_add(k, q0, i64c(k, i * ow_n)), lanes);
        rp->od[v][i] = LLVMBuildSDiv(b, p, i64c(k, plane2), "");
        rp->oh[v][i] = LLVMBuildSDiv(b, LLVMBuildSRem(b, p, i64c(k, plane2), ""),
                                     i64c(k, ow_n), "");
        rp->w0[v][i] = i ? LLVMBuildNeg(b, lo, "") : ow;
    }
}

/* <n x iT>, T as wide as dt's elements. */
static LLVMTypeRef int_vec_type(cg_kernel *k, gr_dtype dt, int n) {
    unsigned bits = 8 * (unsigned)gr_dtype_size(dt);
    return LLVMVectorType(LLVMIntTypeInContext(k->m->ctx, bits), (unsigned)n);
}

/* <n x iT> (T: dt's width), -1 where lo <= lane < hi, else 0; lo and hi are
 * clamped to [0, n]. */
static LLVMValueRef lane_range(cg_kernel *k, gr_dtype dt, int n, LLVMValueRef lo, LLVMValueRef hi) {
    LLVMBuilderRef b = k->b;
    LLVMTypeRef i32 = k->m->t_i32;
    LLVMValueRef iota[64];
    for (int i = 0; i < n; i++) iota[i] = cg_i32(k, i);
    LLVMValueRef lanes = LLVMConstVector(iota, (unsigned)n);
    lo = LLVMBuildTrunc(b, smin_c(k, smax_c(k, lo, 0), n), i32, "");
    hi = LLVMBuildTrunc(b, smin_c(k, smax_c(k, hi, 0), n), i32, "");
    LLVMValueRef in = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, lanes, cg_splat(k, n, lo), ""),
                                   LLVMBuildICmp(b, LLVMIntSLT, lanes, cg_splat(k, n, hi), ""), "");
    return LLVMBuildSExt(b, in, int_vec_type(k, dt, n), "");
}

/* colmask[kw][v][i]: the elements of the load that are lanes of the part
 * and inside the input row's columns. */
static void rows_colmasks(cg_kernel *k, const cg_conv_geom *c, rows_panel *rp, int vl) {
    int64_t s = c->str[2];
    int n = vl * (int)s;
    for (int64_t kw = 0; kw < c->ker[2]; kw++)
        for (int v = 0; v < rp->nv; v++)
            for (int i = 0; i < rp->n_parts; i++) {
                /* element e reads column w0*s - pad + kw*dil + e */
                LLVMValueRef base = nsw_add(k, nsw_mul(k, rp->w0[v][i], s),
                                            i64c(k, kw * c->dil[2] - c->pad[2]));
                LLVMValueRef nb = LLVMBuildNeg(k->b, base, "");
                LLVMValueRef lo = nsw_mul(k, rp->jlo[v][i], s);
                LLVMValueRef hi = nsw_add(k, nsw_mul(k, rp->jhi[v][i], s), i64c(k, 1 - s));
                lo = LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSGT, nb, lo, ""), nb, lo, "");
                hi = cg_gemm_min(k, hi, nsw_add(k, nb, i64c(k, c->in[2])));
                rp->colmask[kw][v][i] = lane_range(k, c->dt, n, lo, hi);
            }
}

/* 0 <= v < n, as an i1. */
static LLVMValueRef in_extent(cg_kernel *k, LLVMValueRef v, int64_t n) {
    return LLVMBuildICmp(k->b, LLVMIntULT, v, i64c(k, n), "");
}

/* The vectors v[0..n) of q lanes each, concatenated. */
static LLVMValueRef concat(cg_kernel *k, LLVMValueRef *v, int n, int q) {
    LLVMValueRef acc = v[0], sel[64];
    for (int i = 1; i < n; i++) { /* acc (i*q lanes) ++ v[i], v[i] widened */
        for (int j = 0; j < i * q; j++) sel[j] = j < q ? cg_i32(k, j) : LLVMGetUndef(k->m->t_i32);
        LLVMValueRef wv = LLVMBuildShuffleVector(k->b, v[i], LLVMGetUndef(LLVMTypeOf(v[i])),
                                                 LLVMConstVector(sel, (unsigned)(i * q)), "");
        for (int j = 0; j < (i + 1) * q; j++) sel[j] = cg_i32(k, j);
        LLVMValueRef both = LLVMConstVector(sel, (unsigned)((i + 1) * q));
        acc = LLVMBuildShuffleVector(k->b, acc, wv, both, "");
    }
    return acc;
}

/* Whether the target has AVX (its 256-bit masked loads). */
static int has_avx(const cg_module *m) {
    for (const char *f = m->features; f && (f = strstr(f, "+avx")) != NULL; f += 4)
        if (f[4] == ',' || f[4] == '\0') return 1;
    return 0;
}

/* Masked load of <n x T> at p: lanes whose element of the integer vector
 * mask (<n x iT>, 0 or -1) is 0 read 0 and touch no memory. Without AVX-512
 * it is a series of AVX vmaskmov (llvm.masked.load would keep the mask as
 * <n x i1> across loops and rebuild the vector mask at every use). */
static LLVMValueRef masked_load(cg_kernel *k, gr_dtype dt, LLVMValueRef p, LLVMValueRef mask,
                                int n, int wide) {
    LLVMBuilderRef b = k->b;
    LLVMTypeRef vt = LLVMVectorType(cg_mem_type(k->m, dt), (unsigned)n);
    if (wide || !has_avx(k->m)) {
        unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
        LLVMTypeRef types[2] = {vt, k->m->t_ptr};
        LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, types, 2);
        LLVMValueRef bits = LLVMBuildICmp(b, LLVMIntSLT, mask, LLVMConstNull(LLVMTypeOf(mask)), "");
        LLVMValueRef args[4] = {p, cg_i32(k, (int32_t)gr_dtype_size(dt)), bits, LLVMConstNull(vt)};
        return LLVMBuildCall2(b, LLVMIntrinsicGetType(k->m->ctx, id, types, 2), fn, args, 4, "");
    }
    int f64 = dt == GR_DTYPE_F64, q = f64 ? 4 : 8; /* lanes per 256 bits */
    const char *name = f64 ? "llvm.x86.avx.maskload.pd.256" : "llvm.x86.avx.maskload.ps.256";
    LLVMTypeRef et = cg_mem_type(k->m, dt), it = LLVMTypeOf(mask);
    LLVMTypeRef qt = LLVMVectorType(et, (unsigned)q);
    LLVMTypeRef qit = LLVMVectorType(LLVMGetElementType(it), (unsigned)q);
    LLVMValueRef fn = LLVMGetNamedFunction(k->m->mod, name);
    LLVMTypeRef params[2] = {k->m->t_ptr, qit}, fty = LLVMFunctionType(qt, params, 2, 0);
    if (!fn) fn = LLVMAddFunction(k->m->mod, name, fty);
    LLVMValueRef parts[16] = {0};
    for (int c = 0; c < n / q; c++) {
        LLVMValueRef sel[16];
        for (int i = 0; i < q; i++) sel[i] = cg_i32(k, c * q + i);
        LLVMValueRef mq = LLVMBuildShuffleVector(b, mask, LLVMGetUndef(it),
                                                 LLVMConstVector(sel, (unsigned)q), "");
        LLVMValueRef off = i64c(k, c * q);
        LLVMValueRef args[2] = {LLVMBuildGEP2(b, et, p, &off, 1, ""), mq};
        parts[c] = LLVMBuildCall2(b, fty, fn, args, 2, "");
    }
    return concat(k, parts, n / q, q);
}

/* Lanes 0, s, 2s, ... of the wide vector x (s > 1), as a <vl x T>. */
static LLVMValueRef every_sth(cg_kernel *k, LLVMValueRef x, int vl, int64_t s) {
    if (s == 1) return x;
    LLVMValueRef idx[32];
    for (int i = 0; i < vl; i++) idx[i] = cg_i32(k, (int32_t)(i * s));
    return LLVMBuildShuffleVector(k->b, x, LLVMGetUndef(LLVMTypeOf(x)),
                                  LLVMConstVector(idx, (unsigned)vl), "");
}

/* *(<VL x T> *)p = x, element-aligned. */
static void store_elems(cg_kernel *k, gr_dtype dt, LLVMValueRef p, LLVMValueRef x) {
    LLVMSetAlignment(LLVMBuildStore(k->b, x, p), (unsigned)gr_dtype_size(dt));
}

/* For input-tap row r = (kd, kh) and every vector v and part i: off, the
 * element offset in an input channel of the part's load for kw = 0 (0 when
 * the input row lies in the padding), and mask[kw], its colmask or 0. */
static void rows_row_setup(cg_kernel *k, const cg_conv_geom *c, const rows_panel *rp,
                           LLVMValueRef r, LLVMValueRef off[][ROWS_MAX_PARTS],
                           LLVMValueRef mask[][ROWS_MAX_NV][ROWS_MAX_PARTS]) {
    LLVMBuilderRef b = k->b;
    LLVMValueRef kd = LLVMBuildSDiv(b, r, i64c(k, c->ker[1]), "");
    LLVMValueRef kh = LLVMBuildSRem(b, r, i64c(k, c->ker[1]), "");
    LLVMValueRef d0 = nsw_add(k, nsw_mul(k, kd, c->dil[0]), i64c(k, -c->pad[0]));
    LLVMValueRef d1 = nsw_add(k, nsw_mul(k, kh, c->dil[1]), i64c(k, -c->pad[1]));
    for (int v = 0; v < rp->nv; v++)
        for (int i = 0; i < rp->n_parts; i++) {
            LLVMValueRef id = nsw_add(k, nsw_mul(k, rp->od[v][i], c->str[0]), d0);
            LLVMValueRef ih = nsw_add(k, nsw_mul(k, rp->oh[v][i], c->str[1]), d1);
            LLVMValueRef ok = LLVMBuildAnd(b, in_extent(k, id, c->in[0]),
                                           in_extent(k, ih, c->in[1]), "");
            LLVMValueRef row = nsw_add(k, nsw_mul(k, id, c->in[1]), ih);
            LLVMValueRef col = nsw_add(k, nsw_mul(k, rp->w0[v][i], c->str[2]),
                                       i64c(k, -c->pad[2]));
            off[v][i] = LLVMBuildSelect(b, ok, nsw_add(k, nsw_mul(k, row, c->in[2]), col),
                                        i64c(k, 0), "");
            for (int64_t kw = 0; kw < c->ker[2]; kw++) {
                LLVMValueRef m = rp->colmask[kw][v][i];
                mask[kw][v][i] = LLVMBuildSelect(b, ok, m, LLVMConstNull(LLVMTypeOf(m)), "");
            }
        }
}

/* For input-tap row r = (kd, kh): every channel ci of the block writes its
 * ker[2] im2col rows (ci*taps + r*ker[2] + kw) of the panel at dst. */
static void rows_tap_row(cg_kernel *k, const cg_gemm *g, const rows_panel *rp, LLVMValueRef dst,
                         LLVMValueRef c0, LLVMValueRef n_ch, LLVMValueRef r) {
    const cg_conv_geom *c = g->user;
    LLVMBuilderRef b = k->b;
    int vl = g->vl, n = vl * (int)c->str[2];
    LLVMValueRef off[ROWS_MAX_NV][ROWS_MAX_PARTS], mask[ROWS_MAX_KW][ROWS_MAX_NV][ROWS_MAX_PARTS];
    rows_row_setup(k, c, rp, r, off, mask);
    LLVMTypeRef et = cg_mem_type(k->m, c->dt), it = int_vec_type(k, c->dt, n);
    cg_loop lc;
    LLVMValueRef ci = cg_loop_begin(k, &lc, i64c(k, 0), n_ch, 1);
    LLVMValueRef xc = cg_gep(k, c->dt, g->b, nsw_mul(k, nsw_add(k, c0, ci), c->in_plane));
    LLVMValueRef row = nsw_add(k, nsw_mul(k, ci, c->taps), nsw_mul(k, r, c->ker[2]));
    LLVMValueRef drow = cg_gep(k, c->dt, dst, nsw_mul(k, row, g->nr));
    for (int64_t kw = 0; kw < c->ker[2]; kw++)
        for (int v = 0; v < rp->nv; v++) {
            LLVMValueRef x = NULL;
            for (int i = 0; i < rp->n_parts; i++) {
                LLVMValueRef o = nsw_add(k, off[v][i], i64c(k, kw * c->dil[2]));
                LLVMValueRef p = LLVMBuildGEP2(b, et, xc, &o, 1, ""); /* may lie outside X */
                LLVMValueRef y = masked_load(k, c->dt, p, mask[kw][v][i], n, g->wide);
                y = LLVMBuildBitCast(b, y, it, "");
                x = x ? LLVMBuildOr(b, x, y, "") : y;
            }
            x = LLVMBuildBitCast(b, x, LLVMVectorType(et, (unsigned)n), "");
            store_elems(k, c->dt, cg_gep(k, c->dt, drow, i64c(k, kw * g->nr + v * vl)),
                        every_sth(k, x, vl, c->str[2]));
        }
    cg_gemm_loop_end(k, &lc);
}

/* dst[kk][jj] = im2col(X)[k0+kk, col0+jj] by row runs (above); k0 and kc
 * are multiples of taps. */
static void conv_panel_rows(cg_kernel *k, const cg_gemm *g, LLVMValueRef dst, LLVMValueRef k0,
                            LLVMValueRef kc, LLVMValueRef col0, int cols) {
    const cg_conv_geom *c = g->user;
    rows_panel rp;
    rp.nv = g->nr / g->vl;
    rp.n_parts = conv_rows_parts(c, g->vl);
    int live = rp.nv; /* vectors with live lanes */
    while (live > 0 && (live - 1) * g->vl >= cols) live--;
    LLVMValueRef zero = LLVMConstNull(LLVMVectorType(cg_mem_type(k->m, c->dt), (unsigned)g->vl));
    for (int v = live; v < rp.nv; v++) { /* zero vectors past cols, every row */
        cg_loop l;
        LLVMValueRef kk = cg_loop_begin(k, &l, i64c(k, 0), kc, 1);
        LLVMValueRef at = nsw_add(k, nsw_mul(k, kk, g->nr), i64c(k, v * g->vl));
        store_elems(k, c->dt, cg_gep(k, c->dt, dst, at), zero);
        cg_gemm_loop_end(k, &l);
    }
    rp.nv = live;
    for (int v = 0; v < live; v++) {
        int lanes = cols - v * g->vl;
        rows_parts(k, c, &rp, v, nsw_add(k, col0, i64c(k, v * g->vl)),
                   lanes > g->vl ? g->vl : lanes);
    }
    rows_colmasks(k, c, &rp, g->vl);
    LLVMValueRef c0 = LLVMBuildSDiv(k->b, k0, i64c(k, c->taps), "");
    LLVMValueRef n_ch = LLVMBuildSDiv(k->b, kc, i64c(k, c->taps), "");
    cg_loop lr;
    LLVMValueRef r = cg_loop_begin(k, &lr, i64c(k, 0), i64c(k, c->ker[0] * c->ker[1]), 1);
    rows_tap_row(k, g, &rp, dst, c0, n_ch, r);
    cg_gemm_loop_end(k, &lr);
}

/* With the row pack, K blocks hold whole channels: kc = taps * the
 * channels that give about the planned kc. */
static void conv_rows_kc(cg_gemm *g, const cg_conv_geom *c) {
    int64_t n_kb = (g->K + g->kc - 1) / g->kc;
    int64_t per_block = (c->Cg + n_kb - 1) / n_kb;
    g->kc = per_block * c->taps;
}

static void conv_pack(cg_kernel *k, const cg_gemm *g, LLVMValueRef bp, LLVMValueRef k0,
                      LLVMValueRef kc, LLVMValueRef n0, LLVMValueRef nc) {
    const cg_conv_geom *c = g->user;
    /* i32 indices: the group's input channels and the output plane must fit */
    int fits = c->Cg * c->in_plane < INT32_MAX / 2 && c->out_plane + g->nr < INT32_MAX / 2 &&
               c->Kg < INT32_MAX / 2;
    cg_gemm_panel_fn panel = fits ? conv_panel_gather : conv_panel;
    if (conv_rows_parts(c, g->vl)) panel = conv_panel_rows;
    cg_gemm_pack_panels(k, g, bp, k0, kc, n0, nc, panel);
}

static int conv_is_pointwise(const cg_conv_geom *c) {
    for (int i = 0; i < 3; i++)
        if (c->ker[i] != 1 || c->str[i] != 1 || c->pad[i] != 0 || c->in[i] != c->out[i]) return 0;
    return 1;
}

/* cg_gemm_plan's blocking, but with too few tasks (< 8) tiles are split
 * along the longer of mc and nc, M only while a part keeps >= 8 strips and
 * N down to two panels: every part of M packs the same im2col block again
 * (costly when M is small), every part of N the same strips of W. A tile
 * keeps >= ~2 MFLOP. */
static void conv_plan(const cg_module *m, cg_gemm *g, const cg_conv_geom *c) {
    cg_gemm_plan(m, g, INT32_MAX); /* unsplit */
    while (c->N * c->G * cg_gemm_n_tiles(g) < 8 &&
           2.0 * (double)g->mc * (double)g->nc * (double)g->K >= 4e6) {
        int split_m = g->mc >= 16 * g->mr, split_n = g->nc >= 4 * g->nr;
        if (split_m && (!split_n || g->mc > g->nc))
            g->mc = (g->mc / 2 + g->mr - 1) / g->mr * g->mr;
        else if (split_n) g->nc = (g->nc / 2 + g->nr - 1) / g->nr * g->nr;
        else break;
    }
}

/* for t in tasks: (image n, group gi, tile) -> GEMM tile. */
static void emit_conv_gemm(cg_kernel *k, const gr_node *n, const cg_conv_geom *c) {
    const gr_value *B = n->n_inputs > 2 ? n->inputs[2] : NULL;
    cg_gemm g;
    cg_gemm_init(&g, c->dt, c->Mg, c->out_plane, c->Kg);
    g.c_rs = c->out_plane;
    g.user = c;
    if (conv_is_pointwise(c)) g.b_rs = c->in_plane; /* B = X[ci, p] */
    else g.pack = conv_pack;
    conv_plan(k->m, &g, c);
    if (g.pack && c->Kg > 0 && conv_rows_parts(c, g.vl)) conv_rows_kc(&g, c);
    int64_t tiles = cg_gemm_n_tiles(&g);
    k->n_tasks = c->N * c->G * tiles;
    k->workspace_bytes = cg_gemm_workspace_bytes(&g);
    k->wide = g.wide;
    if (!k->n_tasks) return;
    LLVMValueRef x = cg_arg(k, n->inputs[0]), w = cg_arg(k, n->inputs[1]);
    LLVMValueRef y = cg_arg(k, n->outputs[0]), bias = B ? cg_arg(k, B) : NULL;
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef ng = LLVMBuildSDiv(k->b, t, i64c(k, tiles), ""); /* n*G + gi */
    LLVMValueRef gi = LLVMBuildSRem(k->b, ng, i64c(k, c->G), "");
    g.a = cg_gep(k, c->dt, w, nsw_mul(k, gi, c->Mg * c->Kg));
    g.b = cg_gep(k, c->dt, x, nsw_mul(k, ng, c->Cg * c->in_plane));
    g.c = cg_gep(k, c->dt, y, nsw_mul(k, ng, c->Mg * c->out_plane));
    cg_epilogue_attach(k, &g, nsw_mul(k, ng, c->Mg * c->out_plane));
    if (bias) {
        g.bias = cg_gep(k, c->dt, bias, nsw_mul(k, gi, c->Mg));
        g.bias_rs = 1;
    }
    cg_gemm_emit_tile(k, &g, LLVMBuildSRem(k->b, t, i64c(k, tiles), ""));
    cg_gemm_loop_end(k, &l);
}

/* --- direct kernel (depthwise, small groups) --- */

/* Valid output range [lo, hi) of dim d for tap t: 0 <= o*s - p + t*dil < in. */
static void out_range(const cg_conv_geom *c, int d, int64_t t, int64_t *lo, int64_t *hi) {
    int64_t off = t * c->dil[d] - c->pad[d];
    int64_t l = -floor_div(off, c->str[d]);     /* ceil(-off / s) */
    int64_t h = floor_div(c->in[d] - 1 - off, c->str[d]) + 1;
    *lo = l < 0 ? 0 : l;
    *hi = h > c->out[d] ? c->out[d] : h;
    if (*hi < *lo) *hi = *lo;
}

static LLVMValueRef fma_reg(cg_kernel *k, gr_dtype dt, LLVMValueRef a, LLVMValueRef b,
                            LLVMValueRef acc) {
    LLVMValueRef args[3] = {a, b, acc};
    return cg_intrinsic(k, "llvm.fmuladd", NULL, 3, args);
    (void)dt;
}

/* lo <= v < hi as an i1 (NULL when always true over [0, n)). */
static LLVMValueRef in_span(cg_kernel *k, LLVMValueRef v, int64_t lo, int64_t hi, int64_t n) {
    LLVMValueRef ok = NULL;
    if (lo > 0) ok = LLVMBuildICmp(k->b, LLVMIntSGE, v, i64c(k, lo), "");
    if (hi < n) {
        LLVMValueRef h = LLVMBuildICmp(k->b, LLVMIntSLT, v, i64c(k, hi), "");
        ok = ok ? LLVMBuildAnd(k->b, ok, h, "") : h;
    }
    return ok;
}

/* One output row (o0, o1): y[o0,o1,o2] += w * x[i0, i1, o2*s - p + t2*dil]
 * for the o2 range of the tap, if input row (i0, i1) exists. The row stays
 * in L1 across the taps. */
static void direct_row_tap(cg_kernel *k, const cg_conv_geom *c, LLVMValueRef yrow,
                           LLVMValueRef o0, LLVMValueRef o1, LLVMValueRef x, LLVMValueRef wv,
                           const int64_t *tap) {
    int64_t lo[3], hi[3];
    for (int d = 0; d < 3; d++) {
        out_range(c, d, tap[d], &lo[d], &hi[d]);
        if (hi[d] <= lo[d]) return;
    }
    LLVMValueRef ok0 = in_span(k, o0, lo[0], hi[0], c->out[0]);
    LLVMValueRef ok1 = in_span(k, o1, lo[1], hi[1], c->out[1]);
    LLVMValueRef ok = ok0 && ok1 ? LLVMBuildAnd(k->b, ok0, ok1, "") : ok0 ? ok0 : ok1;
    LLVMBasicBlockRef join = ok ? cg_gemm_if(k, ok) : NULL;
    LLVMValueRef i0 = nsw_add(k, nsw_mul(k, o0, c->str[0]), i64c(k, tap[0] * c->dil[0] - c->pad[0]));
    LLVMValueRef i1 = nsw_add(k, nsw_mul(k, o1, c->str[1]), i64c(k, tap[1] * c->dil[1] - c->pad[1]));
    LLVMValueRef xrow = cg_gep(k, c->dt, x, nsw_add(k, nsw_mul(k, nsw_add(k, nsw_mul(k, i0, c->in[1]), i1), c->in[2]),
                                                  i64c(k, tap[2] * c->dil[2] - c->pad[2])));
    cg_loop l2;
    LLVMValueRef o2 = cg_loop_begin(k, &l2, i64c(k, lo[2]), i64c(k, hi[2]), 1);
    LLVMValueRef xv = cg_load(k, c->dt, xrow, nsw_mul(k, o2, c->str[2]));
    cg_store(k, c->dt, yrow, o2, fma_reg(k, c->dt, wv, xv, cg_load(k, c->dt, yrow, o2)));
    cg_loop_end(k, &l2);
    if (join) cg_gemm_if_end(k, join);
}

/* For each output row: for each tap (in order): direct_row_tap. */
static void direct_taps(cg_kernel *k, const cg_conv_geom *c, LLVMValueRef y, LLVMValueRef x,
                        LLVMValueRef wp) {
    LLVMValueRef wv[256];
    for (int64_t t = 0; t < c->taps; t++) wv[t] = cg_load(k, c->dt, wp, i64c(k, t));
    cg_loop l0, l1;
    LLVMValueRef o0 = cg_loop_begin(k, &l0, i64c(k, 0), i64c(k, c->out[0]), 1);
    LLVMValueRef o1 = cg_loop_begin(k, &l1, i64c(k, 0), i64c(k, c->out[1]), 1);
    LLVMValueRef yrow = cg_gep(k, c->dt, y, nsw_mul(k, nsw_add(k, nsw_mul(k, o0, c->out[1]), o1), c->out[2]));
    int64_t tap[3], ti = 0;
    for (tap[0] = 0; tap[0] < c->ker[0]; tap[0]++)
        for (tap[1] = 0; tap[1] < c->ker[1]; tap[1]++)
            for (tap[2] = 0; tap[2] < c->ker[2]; tap[2]++, ti++)
                direct_row_tap(k, c, yrow, o0, o1, x, wv[ti], tap);
    cg_gemm_loop_end(k, &l1);
    cg_gemm_loop_end(k, &l0);
}

/* task (n, co): y = bias; for ci in group: direct_taps. */
static void emit_conv_direct(cg_kernel *k, const gr_node *n, const cg_conv_geom *c) {
    const gr_value *B = n->n_inputs > 2 ? n->inputs[2] : NULL;
    k->n_tasks = c->N * c->M;
    if (!k->n_tasks || !c->out_plane) return;
    LLVMValueRef x = cg_arg(k, n->inputs[0]), w = cg_arg(k, n->inputs[1]);
    LLVMValueRef yb = cg_arg(k, n->outputs[0]);
    cg_loop l, lp, lc;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1); /* n*M + co */
    LLVMValueRef co = LLVMBuildSRem(k->b, t, i64c(k, c->M), "");
    LLVMValueRef img = LLVMBuildSDiv(k->b, t, i64c(k, c->M), "");
    LLVMValueRef gi = LLVMBuildSDiv(k->b, co, i64c(k, c->Mg), "");
    LLVMValueRef y = cg_gep(k, c->dt, yb, nsw_mul(k, t, c->out_plane));
    LLVMValueRef init = B ? cg_load(k, c->dt, cg_arg(k, B), co) : cg_const(k, c->dt, 0);
    LLVMValueRef p = cg_loop_begin(k, &lp, i64c(k, 0), i64c(k, c->out_plane), 1);
    cg_store(k, c->dt, y, p, init);
    cg_loop_end(k, &lp);
    LLVMValueRef ci = cg_loop_begin(k, &lc, i64c(k, 0), i64c(k, c->Cg), 1);
    LLVMValueRef xch = nsw_add(k, nsw_mul(k, img, c->C), nsw_add(k, nsw_mul(k, gi, c->Cg), ci));
    LLVMValueRef xp = cg_gep(k, c->dt, x, nsw_mul(k, xch, c->in_plane));
    LLVMValueRef wp = cg_gep(k, c->dt, w, nsw_mul(k, nsw_add(k, nsw_mul(k, co, c->Cg), ci), c->taps));
    direct_taps(k, c, y, xp, wp);
    cg_gemm_loop_end(k, &lc);
    if (k->epi) cg_epilogue_plane(k, nsw_mul(k, t, c->out_plane), c->out_plane);
    cg_gemm_loop_end(k, &l);
}

/* X:[N,C,(D,)(H,)W] W:[M,C/group,k...] B:[M]? -> Y:[N,M,out...] */
gr_code cg_emit_conv(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                     gr_status *st) {
    cg_conv_geom c;
    GR_TRY(conv_geom(n, 0, &c, st));
    if (c.dt != GR_DTYPE_F32 && c.dt != GR_DTYPE_F64)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Conv of %s is not supported",
                       gr_dtype_name(c.dt));
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    if (c.Mg < 8 && c.taps <= 256) emit_conv_direct(k, n, &c);
    else emit_conv_gemm(k, n, &c);
    return cg_kernel_end(k, st);
}



/* --- ConvTranspose ---
 * Y[n, g*Mg + m, o] = B[m] + sum over c of the group, taps t and inputs i
 * with o = i*s - p + t*dil of X[n, c, i] * W[c, m, t]. Three forms:
 *   pointwise (1x1, stride 1, no pads): Y[Mg, I] = W^T[Mg, Cg] · X[Cg, I];
 *   GEMM + col2im (Cg >= 8): per task (image, group, block of mb output
 *     channels) cols[(m,t), i] = sum_c W[c,m,t] X[c,i], a [mb*taps, Cg] x
 *     [Cg, I] GEMM into the workspace, then each output plane of the block
 *     adds its cols tap by tap;
 *   direct (Cg < 8: depthwise, small groups): per task (image, channel),
 *     w[c,m,t] * X[c] added tap by tap for each c of the group.
 * A task owns whole output planes and adds into them in a fixed order
 * (bias, then c, then taps), so results do not depend on how tasks are split
 * over threads. Adding a tap's input box into the plane (the plane stays in
 * L1) measured as fast as gathering per output row, and simpler.
 * With a stride along the last dim the plane is kept phase-major in the
 * workspace meanwhile (see convt_phase_len), so that the adds vectorise. */

#define CONVT_COLS_BYTES (256 << 10) /* the cols block of a task stays in L2 */
#define CONVT_COLS_MAX (64 << 20)    /* larger cols (huge volumes): direct form */

/* floor(a / s) for s > 0. */
static LLVMValueRef floor_div_v(cg_kernel *k, LLVMValueRef a, int64_t s) {
    if (s == 1) return a;
    LLVMValueRef q = LLVMBuildSDiv(k->b, a, i64c(k, s), "");
    LLVMValueRef neg = LLVMBuildICmp(k->b, LLVMIntSLT, LLVMBuildSRem(k->b, a, i64c(k, s), ""),
                                     i64c(k, 0), "");
    return LLVMBuildSub(k->b, q, LLVMBuildZExt(k->b, neg, k->m->t_i64, ""), "");
}

static LLVMValueRef smax_v(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSGT, a, b, ""), a, b, "");
}

/* The inputs along d that tap t sends into the output, [*lo, *hi)
 * (0 <= i*s + off < out, 0 <= i < in), and off = t*dil - p. */
static void tap_range(cg_kernel *k, const cg_conv_geom *c, int d, LLVMValueRef t,
                      LLVMValueRef *lo, LLVMValueRef *hi, LLVMValueRef *off) {
    LLVMBuilderRef b = k->b;
    *off = LLVMBuildSub(b, LLVMBuildMul(b, t, i64c(k, c->dil[d]), ""), i64c(k, c->pad[d]), "");
    LLVMValueRef l = LLVMBuildNeg(b, floor_div_v(k, *off, c->str[d]), "");
    LLVMValueRef h = LLVMBuildAdd(
        b, floor_div_v(k, LLVMBuildSub(b, i64c(k, c->out[d] - 1), *off, ""), c->str[d]),
        i64c(k, 1), "");
    *lo = smax_v(k, l, i64c(k, 0));
    *hi = smax_v(k, cg_gemm_min(k, h, i64c(k, c->in[d])), *lo);
}

/* With a stride s > 1 along the last dim the tasks add into a copy of
 * their plane whose rows are phase-major (o2 = j*s + r at r*P + j, P =
 * ceil(out2 / s)), so that every tap adds a contiguous run; convt_finish
 * writes the plane back in order. */
static int64_t convt_phase_len(const cg_conv_geom *c) {
    return (c->out[2] + c->str[2] - 1) / c->str[2];
}

static int64_t convt_row_len(const cg_conv_geom *c) {
    return c->str[2] > 1 ? c->str[2] * convt_phase_len(c) : c->out[2];
}

/* Elements of the plane tasks add into. */
static int64_t convt_plane_len(const cg_conv_geom *c) {
    return c->out[0] * c->out[1] * convt_row_len(c);
}

/* For each tap t in order: y[i*s - p + t*dil] += w[t] * x_t[i] over the
 * inputs i that land in y (phase-major rows, above), x_t = x + t*tap_stride
 * (w NULL: 1). Taps along
 * dims 0, 1 are loops; along dim 2 they are unrolled, so that each inner
 * loop has a constant trip count that LLVM vectorises fully. */
static void scatter_taps(cg_kernel *k, const cg_conv_geom *c, LLVMValueRef y, LLVMValueRef x,
                         int64_t tap_stride, LLVMValueRef w) {
    cg_loop lt[2], li[2];
    LLVMValueRef t[2], lo[2], hi[2], off[2];
    for (int d = 0; d < 2; d++) {
        t[d] = cg_loop_begin(k, &lt[d], i64c(k, 0), i64c(k, c->ker[d]), 1);
        tap_range(k, c, d, t[d], &lo[d], &hi[d], &off[d]);
    }
    LLVMValueRef t01 = nsw_mul(k, nsw_add(k, nsw_mul(k, t[0], c->ker[1]), t[1]), c->ker[2]);
    LLVMValueRef i0 = cg_loop_begin(k, &li[0], lo[0], hi[0], 1);
    LLVMValueRef o0 = nsw_add(k, nsw_mul(k, i0, c->str[0]), off[0]);
    LLVMValueRef i1 = cg_loop_begin(k, &li[1], lo[1], hi[1], 1);
    LLVMValueRef o1 = nsw_add(k, nsw_mul(k, i1, c->str[1]), off[1]);
    LLVMValueRef xrow = cg_gep(k, c->dt, x, nsw_mul(k, nsw_add(k, nsw_mul(k, i0, c->in[1]), i1),
                                                    c->in[2]));
    LLVMValueRef yrow = cg_gep(k, c->dt, y, nsw_mul(k, nsw_add(k, nsw_mul(k, o0, c->out[1]), o1),
                                                    convt_row_len(c)));
    for (int64_t t2 = 0; t2 < c->ker[2]; t2++) {
        int64_t off2 = t2 * c->dil[2] - c->pad[2];
        int64_t lo2 = -floor_div(off2, c->str[2]);
        int64_t hi2 = floor_div(c->out[2] - 1 - off2, c->str[2]) + 1;
        if (lo2 < 0) lo2 = 0;
        if (hi2 > c->in[2]) hi2 = c->in[2];
        if (hi2 <= lo2) continue;
        LLVMValueRef ti = nsw_add(k, t01, i64c(k, t2));
        LLVMValueRef xt = cg_gep(k, c->dt, xrow, nsw_mul(k, ti, tap_stride));
        /* o2 = i2*s + off2 sits in phase r = off2 mod s at i2 + floor(off2 / s) */
        int64_t q = floor_div(off2, c->str[2]), r = off2 - q * c->str[2];
        LLVMValueRef yt = cg_gep(k, c->dt, yrow, i64c(k, r * convt_phase_len(c) + q));
        LLVMValueRef wv = w ? cg_load(k, c->dt, w, ti) : NULL;
        cg_loop l2;
        LLVMValueRef i2 = cg_loop_begin(k, &l2, i64c(k, lo2), i64c(k, hi2), 1);
        LLVMValueRef xv = cg_load(k, c->dt, xt, i2), acc = cg_load(k, c->dt, yt, i2);
        cg_store(k, c->dt, yt, i2,
                 wv ? fma_reg(k, c->dt, wv, xv, acc) : LLVMBuildFAdd(k->b, acc, xv, ""));
        cg_loop_end(k, &l2);
    }
    for (int d = 1; d >= 0; d--) cg_gemm_loop_end(k, &li[d]);
    for (int d = 1; d >= 0; d--) cg_gemm_loop_end(k, &lt[d]);
}

/* Plane y = v. */
static void fill_plane(cg_kernel *k, const cg_conv_geom *c, LLVMValueRef y, LLVMValueRef v) {
    cg_loop l;
    LLVMValueRef p = cg_loop_begin(k, &l, i64c(k, 0), i64c(k, convt_plane_len(c)), 1);
    cg_store(k, c->dt, y, p, v);
    cg_loop_end(k, &l);
}

/* Output plane y from the phase-major plane z (stride > 1 along dim 2). */
static void convt_finish(cg_kernel *k, const cg_conv_geom *c, LLVMValueRef y, LLVMValueRef z) {
    cg_loop lr, lo;
    int64_t s = c->str[2];
    LLVMValueRef row = cg_loop_begin(k, &lr, i64c(k, 0), i64c(k, c->out[0] * c->out[1]), 1);
    LLVMValueRef yrow = cg_gep(k, c->dt, y, nsw_mul(k, row, c->out[2]));
    LLVMValueRef zrow = cg_gep(k, c->dt, z, nsw_mul(k, row, convt_row_len(c)));
    LLVMValueRef o2 = cg_loop_begin(k, &lo, i64c(k, 0), i64c(k, c->out[2]), 1);
    LLVMValueRef r = LLVMBuildURem(k->b, o2, i64c(k, s), "");
    LLVMValueRef zi = nsw_add(k, nsw_mul(k, r, convt_phase_len(c)),
                              LLVMBuildUDiv(k->b, o2, i64c(k, s), ""));
    cg_store(k, c->dt, yrow, o2, cg_load(k, c->dt, zrow, zi));
    cg_loop_end(k, &lo);
    cg_gemm_loop_end(k, &lr);
}

/* task (n, co): y = bias; for ci in group: scatter_taps of X[n, ci]. */
static void emit_convt_direct(cg_kernel *k, const gr_node *n, const cg_conv_geom *c) {
    const gr_value *B = n->n_inputs > 2 ? n->inputs[2] : NULL;
    int phased = c->str[2] > 1;
    k->n_tasks = c->N * c->M;
    if (phased) k->workspace_bytes = (size_t)convt_plane_len(c) * gr_dtype_size(c->dt);
    if (!k->n_tasks || !c->out_plane) return;
    LLVMValueRef x = cg_arg(k, n->inputs[0]), w = cg_arg(k, n->inputs[1]);
    LLVMValueRef yb = cg_arg(k, n->outputs[0]);
    cg_loop l, lc;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1); /* n*M + co */
    LLVMValueRef co = LLVMBuildSRem(k->b, t, i64c(k, c->M), "");
    LLVMValueRef img = LLVMBuildSDiv(k->b, t, i64c(k, c->M), "");
    LLVMValueRef gi = LLVMBuildSDiv(k->b, co, i64c(k, c->Mg), "");
    LLVMValueRef cm = LLVMBuildSRem(k->b, co, i64c(k, c->Mg), "");
    LLVMValueRef y = cg_gep(k, c->dt, yb, nsw_mul(k, t, c->out_plane));
    LLVMValueRef z = phased ? k->workspace : y;
    fill_plane(k, c, z, B ? cg_load(k, c->dt, cg_arg(k, B), co) : cg_const(k, c->dt, 0));
    LLVMValueRef ci = cg_loop_begin(k, &lc, i64c(k, 0), i64c(k, c->Cg), 1);
    LLVMValueRef cin = nsw_add(k, nsw_mul(k, gi, c->Cg), ci);
    LLVMValueRef xp = cg_gep(k, c->dt, x, nsw_mul(k, nsw_add(k, nsw_mul(k, img, c->C), cin),
                                                  c->in_plane));
    /* W:[C, Mg, k...] */
    LLVMValueRef wp = cg_gep(k, c->dt, w, nsw_mul(k, nsw_add(k, nsw_mul(k, cin, c->Mg), cm),
                                                  c->taps));
    scatter_taps(k, c, z, xp, 0, wp);
    cg_gemm_loop_end(k, &lc);
    if (phased) convt_finish(k, c, y, z);
    cg_gemm_loop_end(k, &l);
}

/* Output channels per GEMM task: the largest divisor of Mg whose cols block
 * fits CONVT_COLS_BYTES while leaving >= 8 tasks (1 if none does). */
static int64_t convt_block(const cg_conv_geom *c) {
    int64_t es = (int64_t)gr_dtype_size(c->dt), best = 1;
    for (int64_t d = 2; d <= c->Mg; d++) {
        if (c->Mg % d) continue;
        if (d * c->taps * c->in_plane * es > CONVT_COLS_BYTES) break;
        if (c->N * c->G * (c->Mg / d) < 8) break;
        best = d;
    }
    return best;
}

/* A = W^T for the group at w: A[(m,t), ci] = W[ci, m, t] over rows of mb
 * channels; B = X[ci, i] of the group. */
static void convt_gemm_init(cg_gemm *g, const cg_conv_geom *c, int64_t mb) {
    cg_gemm_init(g, c->dt, mb * c->taps, c->in_plane, c->Cg);
    g->a_rs = 1;
    g->a_cs = c->Mg * c->taps;
    g->b_rs = c->in_plane;
    g->c_rs = c->in_plane;
}

/* task (n, g, mb-block): cols = GEMM; for m in block: y = bias, then
 * scatter_taps of its cols. */
static void emit_convt_col2im(cg_kernel *k, const gr_node *n, const cg_conv_geom *c) {
    const gr_value *B = n->n_inputs > 2 ? n->inputs[2] : NULL;
    int64_t mb = convt_block(c), nb = c->Mg / mb, es = (int64_t)gr_dtype_size(c->dt);
    cg_gemm g;
    convt_gemm_init(&g, c, mb);
    cg_gemm_plan(k->m, &g, INT32_MAX); /* one task runs all tiles: no split */
    int64_t tiles = cg_gemm_n_tiles(&g);
    int64_t cols_at = ((int64_t)cg_gemm_workspace_bytes(&g) + 63) / 64 * 64;
    k->n_tasks = c->N * c->G * nb;
    int64_t z_at = (cols_at + mb * c->taps * c->in_plane * es + 63) / 64 * 64;
    int phased = c->str[2] > 1;
    k->workspace_bytes = (size_t)(phased ? z_at + convt_plane_len(c) * es : z_at);
    k->wide = g.wide;
    if (!k->n_tasks || !c->out_plane) return;
    LLVMValueRef x = cg_arg(k, n->inputs[0]), w = cg_arg(k, n->inputs[1]);
    LLVMValueRef y = cg_arg(k, n->outputs[0]), bias = B ? cg_arg(k, B) : NULL;
    LLVMValueRef cols = cg_gep(k, c->dt, k->workspace, i64c(k, cols_at / es));
    cg_loop l, lt, lm;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1); /* (n*G + gi)*nb + bi */
    LLVMValueRef ng = LLVMBuildSDiv(k->b, t, i64c(k, nb), "");
    LLVMValueRef bi = LLVMBuildSRem(k->b, t, i64c(k, nb), "");
    LLVMValueRef gi = LLVMBuildSRem(k->b, ng, i64c(k, c->G), "");
    LLVMValueRef img = LLVMBuildSDiv(k->b, ng, i64c(k, c->G), "");
    g.a = cg_gep(k, c->dt, w, nsw_add(k, nsw_mul(k, gi, c->Cg * c->Mg * c->taps),
                                      nsw_mul(k, bi, mb * c->taps)));
    g.b = cg_gep(k, c->dt, x, nsw_mul(k, ng, c->Cg * c->in_plane));
    g.c = cols;
    if (tiles == 1) {
        cg_gemm_emit_tile(k, &g, i64c(k, 0));
    } else if (tiles > 1) {
        cg_gemm_emit_tile(k, &g, cg_loop_begin(k, &lt, i64c(k, 0), i64c(k, tiles), 1));
        cg_gemm_loop_end(k, &lt);
    }
    LLVMValueRef ml = cg_loop_begin(k, &lm, i64c(k, 0), i64c(k, mb), 1);
    LLVMValueRef co = nsw_add(k, nsw_add(k, nsw_mul(k, gi, c->Mg), nsw_mul(k, bi, mb)), ml);
    LLVMValueRef yp = cg_gep(k, c->dt, y, nsw_mul(k, nsw_add(k, nsw_mul(k, img, c->M), co),
                                                  c->out_plane));
    LLVMValueRef z = phased ? cg_gep(k, c->dt, k->workspace, i64c(k, z_at / es)) : yp;
    fill_plane(k, c, z, bias ? cg_load(k, c->dt, bias, co) : cg_const(k, c->dt, 0));
    scatter_taps(k, c, z, cg_gep(k, c->dt, cols, nsw_mul(k, ml, c->taps * c->in_plane)),
                 c->in_plane, NULL);
    if (phased) convt_finish(k, c, yp, z);
    cg_gemm_loop_end(k, &lm);
    cg_gemm_loop_end(k, &l);
}

static int convt_is_pointwise(const cg_conv_geom *c) {
    for (int i = 0; i < 3; i++)
        if (c->ker[i] != 1 || c->str[i] != 1 || c->pad[i] != 0 || c->in[i] != c->out[i]) return 0;
    return 1;
}

/* task (n, g, tile): Y[Mg, I] = W^T · X + B, tiled like Conv's GEMM. */
static void emit_convt_pointwise(cg_kernel *k, const gr_node *n, const cg_conv_geom *c) {
    const gr_value *B = n->n_inputs > 2 ? n->inputs[2] : NULL;
    cg_gemm g;
    convt_gemm_init(&g, c, c->Mg);
    cg_gemm_plan(k->m, &g, c->N * c->G);
    int64_t tiles = cg_gemm_n_tiles(&g);
    k->n_tasks = c->N * c->G * tiles;
    k->workspace_bytes = cg_gemm_workspace_bytes(&g);
    k->wide = g.wide;
    if (!k->n_tasks) return;
    LLVMValueRef x = cg_arg(k, n->inputs[0]), w = cg_arg(k, n->inputs[1]);
    LLVMValueRef y = cg_arg(k, n->outputs[0]), bias = B ? cg_arg(k, B) : NULL;
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef ng = LLVMBuildSDiv(k->b, t, i64c(k, tiles), ""); /* n*G + gi */
    LLVMValueRef gi = LLVMBuildSRem(k->b, ng, i64c(k, c->G), "");
    g.a = cg_gep(k, c->dt, w, nsw_mul(k, gi, c->Cg * c->Mg));
    g.b = cg_gep(k, c->dt, x, nsw_mul(k, ng, c->Cg * c->in_plane));
    g.c = cg_gep(k, c->dt, y, nsw_mul(k, ng, c->Mg * c->out_plane));
    cg_epilogue_attach(k, &g, nsw_mul(k, ng, c->Mg * c->out_plane));
    if (bias) {
        g.bias = cg_gep(k, c->dt, bias, nsw_mul(k, gi, c->Mg));
        g.bias_rs = 1;
    }
    cg_gemm_emit_tile(k, &g, LLVMBuildSRem(k->b, t, i64c(k, tiles), ""));
    cg_gemm_loop_end(k, &l);
}

/* X:[N,C,in...] W:[C,M/group,k...] B:[M]? -> Y:[N,M,out...] */
gr_code cg_emit_conv_transpose(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                               gr_status *st) {
    cg_conv_geom c;
    GR_TRY(conv_geom(n, 1, &c, st));
    if (c.dt != GR_DTYPE_F32 && c.dt != GR_DTYPE_F64)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "ConvTranspose of %s is not supported",
                       gr_dtype_name(c.dt));
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    int64_t cols_bytes = c.taps * c.in_plane * (int64_t)gr_dtype_size(c.dt);
    if (c.Cg < 8 || cols_bytes > CONVT_COLS_MAX) emit_convt_direct(k, n, &c);
    else if (convt_is_pointwise(&c)) emit_convt_pointwise(k, n, &c);
    else emit_convt_col2im(k, n, &c);
    return cg_kernel_end(k, st);
}
