/* gemm.c: the GEMM core (see gemm.h). Per tile [m0,m0+mc) x [n0,n0+nc):
 *   for each K block: pack B into NR-wide panels (workspace; a pre-packed B
 *   is read where it is), then for each MR-row strip and each panel run the
 *   micro-kernel: MR x NR accumulators (<VL x T> vectors, loop phis over k)
 *   += broadcast(A[i,k]) * Bp[k,:].
 * C holds the partial sums between K blocks; the last block applies
 * alpha and beta * bias. Edge strips/panels use constant sizes M%MR, N%NR. */
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "codegen/gemm.h"

#define GEMM_MR 8           /* most rows of a micro-tile */
#define GEMM_NV 2           /* vectors per row of the micro-tile */
#define GEMM_KC 384

void cg_gemm_init(cg_gemm *g, gr_dtype dt, int64_t M, int64_t N, int64_t K) {
    memset(g, 0, sizeof *g);
    g->dt = dt;
    g->M = M;
    g->N = N;
    g->K = K;
    g->a_rs = K;
    g->a_cs = 1;
    g->b_rs = N;
    g->b_cs = 1;
    g->c_rs = N;
    g->alpha = 1.0;
    g->beta = 1.0;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

/* Register and cache blocking for the host: with AVX-512 (32 zmm) an 8 x 32
 * float micro-tile (16 accumulators); with AVX2 (16 ymm) 6 x 16 (12). The
 * packed KC x NC block of B stays in L2 (1 MB-2 MB with AVX-512 parts,
 * 512 KB on AVX2 ones), the B micro-panel KC x NR in L1. MC is large so
 * that B is packed again for few tiles. */
void cg_gemm_plan(const cg_module *m, cg_gemm *g, int64_t batches) {
    int64_t es = (int64_t)gr_dtype_size(g->dt);
    int avx512 = m->features && strstr(m->features, "+avx512f") != NULL;
    g->wide = avx512;
    g->vl = (int)((avx512 ? 64 : 32) / es);
    g->nr = g->vl * GEMM_NV;
    g->mr = avx512 ? 8 : 6;
    int64_t n_kb = g->K > 0 ? ceil_div(g->K, GEMM_KC) : 1;
    g->kc = g->K > 0 ? ceil_div(g->K, n_kb) : 1;
    int64_t mc_max = g->mr * (avx512 ? 128 : 160);
    g->mc = g->M < mc_max ? round_up(g->M > 0 ? g->M : 1, g->mr) : mc_max;
    int64_t nc_max = round_up((avx512 ? 1 << 20 : 3 << 17) / (es * g->kc), g->nr);
    g->nc = g->N < nc_max ? round_up(g->N > 0 ? g->N : 1, g->nr) : nc_max;
    /* Enough tasks for a few threads, while a tile keeps >= ~1 MFLOP. */
    for (;;) {
        int64_t tasks = batches * cg_gemm_n_tiles(g);
        double tile_flops = 2.0 * (double)g->mc * (double)g->nc * (double)g->K;
        if (tasks >= 8 || tile_flops < 2e6) break;
        if (g->nc >= 4 * g->nr && g->nc >= g->mc) g->nc = round_up(g->nc / 2, g->nr);
        else if (g->mc >= 4 * g->mr) g->mc = round_up(g->mc / 2, g->mr);
        else if (g->nc >= 2 * g->nr) g->nc = round_up(g->nc / 2, g->nr);
        else break;
    }
}

int64_t cg_gemm_n_tiles(const cg_gemm *g) {
    if (g->M <= 0 || g->N <= 0) return 0;
    return ceil_div(g->M, g->mc) * ceil_div(g->N, g->nc);
}

size_t cg_gemm_workspace_bytes(const cg_gemm *g) {
    /* packed B block (unless pre-packed), then one packed MR x KC sliver of A */
    return (size_t)(((g->prepacked ? 0 : g->nc) + g->mr) * g->kc) * gr_dtype_size(g->dt);
}

/* --- pre-packing a constant B (at compile time) --- */

/* dst[kk*cols + jj] = src[kk*rs + jj*cs] for kk < rows, jj < cols:
 * elements of es bytes (4 or 8: the GEMM dtypes). */
static void pack_rows(char *dst, const char *src, int64_t rows, int64_t cols, int64_t rs,
                      int64_t cs, size_t es) {
    for (int64_t kk = 0; kk < rows; kk++)
        for (int64_t jj = 0; jj < cols; jj++) {
            const char *from = src + (size_t)(kk * rs + jj * cs) * es;
            char *to = dst + (size_t)(kk * cols + jj) * es;
            if (es == 4) memcpy(to, from, 4); /* constant sizes: inlined */
            else memcpy(to, from, 8);
        }
}

void cg_gemm_prepack(cg_gemm *g, void *dst, const void *src, int64_t n_mat) {
    size_t es = gr_dtype_size(g->dt);
    int64_t mat = g->K * g->N;
    for (int64_t t = 0; t < n_mat; t++) {
        const char *s = (const char *)src + (size_t)(t * mat) * es;
        char *d = (char *)dst + (size_t)(t * mat) * es;
        for (int64_t k0 = 0; k0 < g->K; k0 += g->kc) {
            int64_t kcb = g->K - k0 < g->kc ? g->K - k0 : g->kc;
            for (int64_t j0 = 0; j0 < g->N; j0 += g->nr) {
                int64_t cols = g->N - j0 < g->nr ? g->N - j0 : g->nr;
                pack_rows(d + (size_t)(k0 * g->N + j0 * kcb) * es,
                          s + (size_t)(k0 * g->b_rs + j0 * g->b_cs) * es, kcb, cols, g->b_rs,
                          g->b_cs, es);
            }
        }
    }
    g->prepacked = 1;
}

/* --- IR helpers --- */

LLVMValueRef cg_gemm_min(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, a, b, ""), a, b, "");
}

LLVMBasicBlockRef cg_gemm_if(cg_kernel *k, LLVMValueRef cond) {
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(k->b));
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(k->m->ctx, fn, "if");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(k->m->ctx, fn, "endif");
    LLVMBuildCondBr(k->b, cond, then, join);
    LLVMPositionBuilderAtEnd(k->b, then);
    return join;
}

void cg_gemm_if_end(cg_kernel *k, LLVMBasicBlockRef join) {
    LLVMBuildBr(k->b, join);
    LLVMPositionBuilderAtEnd(k->b, join);
}

/* cg_loop_end with !llvm.loop metadata: unroll.disable (count 0) or
 * unroll.count. */
static void loop_end_unroll(cg_kernel *k, cg_loop *l, int count) {
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(k->b);
    cg_loop_end(k, l);
    LLVMContextRef ctx = k->m->ctx;
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(ctx, NULL, 0);
    LLVMMetadataRef hint[2];
    int n_hint = 1;
    if (count) {
        hint[0] = LLVMMDStringInContext2(ctx, "llvm.loop.unroll.count", 22);
        hint[1] = LLVMValueAsMetadata(cg_i32(k, count));
        n_hint = 2;
    } else {
        hint[0] = LLVMMDStringInContext2(ctx, "llvm.loop.unroll.disable", 24);
    }
    LLVMMetadataRef items[2] = {tmp, LLVMMDNodeInContext2(ctx, hint, (size_t)n_hint)};
    LLVMMetadataRef loop = LLVMMDNodeInContext2(ctx, items, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, loop);
    LLVMSetMetadata(LLVMGetBasicBlockTerminator(latch),
                    LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9), LLVMMetadataAsValue(ctx, loop));
}

void cg_gemm_loop_end(cg_kernel *k, cg_loop *l) { loop_end_unroll(k, l, 0); }

static LLVMValueRef add64(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildNSWAdd(k->b, a, b, "");
}

static LLVMValueRef mul64(cg_kernel *k, LLVMValueRef a, int64_t c) {
    return c == 1 ? a : LLVMBuildNSWMul(k->b, a, cg_i64(k, c), "");
}

static int is_float(const cg_gemm *g) { return gr_dtype_is_float(g->dt); }

static LLVMTypeRef vec_type(cg_kernel *k, const cg_gemm *g) {
    return LLVMVectorType(cg_mem_type(k->m, g->dt), (unsigned)g->vl);
}

static LLVMValueRef splat(cg_kernel *k, const cg_gemm *g, LLVMValueRef s) {
    LLVMTypeRef vt = vec_type(k, g);
    LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetUndef(vt), s, cg_i32(k, 0), "");
    LLVMValueRef mask = LLVMConstNull(LLVMVectorType(k->m->t_i32, (unsigned)g->vl));
    return LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(vt), mask, "");
}

static LLVMValueRef vadd(cg_kernel *k, const cg_gemm *g, LLVMValueRef a, LLVMValueRef b) {
    return is_float(g) ? LLVMBuildFAdd(k->b, a, b, "") : LLVMBuildAdd(k->b, a, b, "");
}

/* a * b + c */
static LLVMValueRef vfma(cg_kernel *k, const cg_gemm *g, LLVMValueRef a, LLVMValueRef b,
                         LLVMValueRef c) {
    if (!is_float(g)) return LLVMBuildAdd(k->b, LLVMBuildMul(k->b, a, b, ""), c, "");
    LLVMValueRef args[3] = {a, b, c};
    return cg_intrinsic(k, "llvm.fmuladd", NULL, 3, args);
}

/* Constant <VL x i1> mask with the first `lanes` lanes on. */
static LLVMValueRef lane_mask(cg_kernel *k, const cg_gemm *g, int lanes) {
    LLVMValueRef bits[16];
    for (int i = 0; i < g->vl; i++) bits[i] = LLVMConstInt(k->m->t_i1, i < lanes, 0);
    return LLVMConstVector(bits, (unsigned)g->vl);
}

static LLVMValueRef masked_intrinsic(cg_kernel *k, const cg_gemm *g, const char *name,
                                     LLVMValueRef *args, int n_args) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef types[2] = {vec_type(k, g), k->m->t_ptr};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, types, 2);
    LLVMTypeRef fty = LLVMIntrinsicGetType(k->m->ctx, id, types, 2);
    return LLVMBuildCall2(k->b, fty, fn, args, (unsigned)n_args, "");
}

/* Loads `lanes` (<= VL) elements at p as a vector (zeros past lanes). */
static LLVMValueRef load_vec(cg_kernel *k, const cg_gemm *g, LLVMValueRef p, int lanes) {
    if (lanes == g->vl) {
        LLVMValueRef v = LLVMBuildLoad2(k->b, vec_type(k, g), p, "");
        LLVMSetAlignment(v, (unsigned)gr_dtype_size(g->dt));
        return v;
    }
    LLVMValueRef args[4] = {p, cg_i32(k, (int32_t)gr_dtype_size(g->dt)), lane_mask(k, g, lanes),
                            LLVMConstNull(vec_type(k, g))};
    return masked_intrinsic(k, g, "llvm.masked.load", args, 4);
}

static void store_vec(cg_kernel *k, const cg_gemm *g, LLVMValueRef p, LLVMValueRef v,
                      int lanes) {
    if (lanes == g->vl) {
        LLVMValueRef s = LLVMBuildStore(k->b, v, p);
        LLVMSetAlignment(s, (unsigned)gr_dtype_size(g->dt));
        return;
    }
    LLVMValueRef args[4] = {v, p, cg_i32(k, (int32_t)gr_dtype_size(g->dt)),
                            lane_mask(k, g, lanes)};
    masked_intrinsic(k, g, "llvm.masked.store", args, 4);
}

/* --- default B packing (strided B) --- */

/* One panel: dst[kk][jj] = B[k0+kk, col0+jj] for jj < cols, 0 after. */
static void pack_panel(cg_kernel *k, const cg_gemm *g, LLVMValueRef dst, LLVMValueRef k0,
                       LLVMValueRef kc, LLVMValueRef col0, int cols) {
    LLVMValueRef src = cg_gep(k, g->dt, g->b, add64(k, mul64(k, k0, g->b_rs),
                                                     mul64(k, col0, g->b_cs)));
    cg_loop l;
    if (g->b_cs == 1) { /* rows of B are contiguous: vector copies */
        LLVMValueRef kk = cg_loop_begin(k, &l, cg_i64(k, 0), kc, 1);
        LLVMValueRef s = cg_gep(k, g->dt, src, mul64(k, kk, g->b_rs));
        LLVMValueRef d = cg_gep(k, g->dt, dst, mul64(k, kk, g->nr));
        for (int v = 0; v < GEMM_NV; v++) {
            int lanes = cols - v * g->vl;
            lanes = lanes < 0 ? 0 : lanes > g->vl ? g->vl : lanes;
            LLVMValueRef x = lanes ? load_vec(k, g, cg_gep(k, g->dt, s, cg_i64(k, v * g->vl)), lanes)
                                   : LLVMConstNull(vec_type(k, g));
            store_vec(k, g, cg_gep(k, g->dt, d, cg_i64(k, v * g->vl)), x, g->vl);
        }
        cg_gemm_loop_end(k, &l);
        return;
    }
    /* column by column (transposed B: contiguous along k) */
    for (int jj = 0; jj < g->nr; jj++) {
        LLVMValueRef kk = cg_loop_begin(k, &l, cg_i64(k, 0), kc, 1);
        LLVMValueRef x = jj < cols ? cg_load(k, g->dt, src, add64(k, mul64(k, kk, g->b_rs),
                                                                  cg_i64(k, jj * g->b_cs)))
                                   : cg_const(k, g->dt, 0);
        cg_store(k, g->dt, dst, add64(k, mul64(k, kk, g->nr), cg_i64(k, jj)), x);
        cg_gemm_loop_end(k, &l);
    }
}

void cg_gemm_pack_panels(cg_kernel *k, const cg_gemm *g, LLVMValueRef bp, LLVMValueRef k0,
                         LLVMValueRef kc, LLVMValueRef n0, LLVMValueRef nc,
                         cg_gemm_panel_fn panel) {
    LLVMValueRef panel_elems = mul64(k, kc, g->nr);
    LLVMValueRef full = LLVMBuildSDiv(k->b, nc, cg_i64(k, g->nr), "");
    cg_loop l;
    LLVMValueRef p = cg_loop_begin(k, &l, cg_i64(k, 0), full, 1);
    panel(k, g, cg_gep(k, g->dt, bp, LLVMBuildNSWMul(k->b, p, panel_elems, "")), k0, kc,
          add64(k, n0, mul64(k, p, g->nr)), g->nr);
    cg_gemm_loop_end(k, &l);
    int edge = (int)(g->N % g->nr);
    if (!edge) return;
    LLVMValueRef has = LLVMBuildICmp(k->b, LLVMIntNE, LLVMBuildSRem(k->b, nc, cg_i64(k, g->nr), ""),
                                     cg_i64(k, 0), "");
    LLVMBasicBlockRef join = cg_gemm_if(k, has);
    panel(k, g, cg_gep(k, g->dt, bp, LLVMBuildNSWMul(k->b, full, panel_elems, "")), k0, kc,
          add64(k, n0, mul64(k, full, g->nr)), edge);
    cg_gemm_if_end(k, join);
}

static void pack_strided(cg_kernel *k, const cg_gemm *g, LLVMValueRef bp, LLVMValueRef k0,
                         LLVMValueRef kc, LLVMValueRef n0, LLVMValueRef nc) {
    cg_gemm_pack_panels(k, g, bp, k0, kc, n0, nc, pack_panel);
}

/* --- micro-kernel --- */

typedef struct {
    LLVMValueRef k0, kc, first, last; /* current K block */
    LLVMValueRef bp;                  /* packed B block */
    LLVMValueRef ap;                  /* packed A sliver [kc][MR] */
} kblock;

/* acc[r][v] = sum_kk A[i0+r, k0+kk] * Bp_panel[kk][v*VL..]: r < mr. */
/* ap[kk][r] = A[i0+r, k0+kk] for r < mr: one contiguous stream for the
 * micro-kernel (rows of A far apart would alias in L1 and the TLB). */
static void pack_a(cg_kernel *k, const cg_gemm *g, const kblock *kb, LLVMValueRef i0, int mr) {
    LLVMValueRef arow[GEMM_MR];
    LLVMValueRef a0 = add64(k, mul64(k, i0, g->a_rs), mul64(k, kb->k0, g->a_cs));
    for (int r = 0; r < mr; r++)
        arow[r] = cg_gep(k, g->dt, g->a, add64(k, a0, cg_i64(k, r * g->a_rs)));
    cg_loop l;
    LLVMValueRef kk = cg_loop_begin(k, &l, cg_i64(k, 0), kb->kc, 1);
    LLVMValueRef koff = mul64(k, kk, g->a_cs), doff = mul64(k, kk, g->mr);
    for (int r = 0; r < mr; r++)
        cg_store(k, g->dt, kb->ap, add64(k, doff, cg_i64(k, r)),
                 cg_load(k, g->dt, arow[r], koff));
    cg_gemm_loop_end(k, &l);
}

/* acc[r][v] = sum_kk A[i0+r, k0+kk] * Bp_panel[kk][v*VL..]: r < mr. A panel
 * row is ld elements: NR (packed, zero-padded), or its cols (a pre-packed
 * edge panel: lanes past cols read as 0, as the padding would). */
static void micro_compute(cg_kernel *k, const cg_gemm *g, const kblock *kb,
                          LLVMValueRef panel, int ld, int mr, LLVMValueRef acc[][GEMM_NV]) {
    cg_loop l;
    LLVMValueRef kk = cg_loop_begin(k, &l, cg_i64(k, 0), kb->kc, 1);
    for (int i = 0; i < mr * GEMM_NV; i++) cg_loop_acc(k, &l, LLVMConstNull(vec_type(k, g)));
    LLVMValueRef bptr = cg_gep(k, g->dt, panel, mul64(k, kk, ld));
    LLVMValueRef bv[GEMM_NV];
    for (int v = 0; v < GEMM_NV; v++) {
        int lanes = ld - v * g->vl;
        lanes = lanes < 0 ? 0 : lanes > g->vl ? g->vl : lanes;
        bv[v] = lanes ? load_vec(k, g, cg_gep(k, g->dt, bptr, cg_i64(k, v * g->vl)), lanes)
                      : LLVMConstNull(vec_type(k, g));
    }
    LLVMValueRef arow = cg_gep(k, g->dt, kb->ap, mul64(k, kk, g->mr));
    for (int r = 0; r < mr; r++) {
        LLVMValueRef a = splat(k, g, cg_load(k, g->dt, arow, cg_i64(k, r)));
        for (int v = 0; v < GEMM_NV; v++)
            cg_loop_next(&l, r * GEMM_NV + v, vfma(k, g, a, bv[v], l.acc[r * GEMM_NV + v]));
    }
    loop_end_unroll(k, &l, 4);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < GEMM_NV; v++) acc[r][v] = l.acc_out[r * GEMM_NV + v];
}

/* alpha * sum + beta * bias[i, j0 + v*VL ..] */
static LLVMValueRef epilogue(cg_kernel *k, const cg_gemm *g, LLVMValueRef sum, LLVMValueRef i,
                             LLVMValueRef j, int lanes) {
    if (!is_float(g)) return sum;
    if (g->alpha != 1.0) sum = LLVMBuildFMul(k->b, sum, splat(k, g, cg_const(k, g->dt, g->alpha)), "");
    if (!g->bias || g->beta == 0.0) return sum;
    LLVMValueRef off = add64(k, mul64(k, i, g->bias_rs), mul64(k, j, g->bias_cs));
    LLVMValueRef bias = g->bias_cs ? load_vec(k, g, cg_gep(k, g->dt, g->bias, off), lanes)
                                   : splat(k, g, cg_load(k, g->dt, g->bias, off));
    if (g->beta != 1.0) bias = LLVMBuildFMul(k->b, bias, splat(k, g, cg_const(k, g->dt, g->beta)), "");
    return LLVMBuildFAdd(k->b, sum, bias, "");
}

/* C[i0+r, j0+..] = first ? acc : C + acc, then the epilogue if last. */
static void micro_store(cg_kernel *k, const cg_gemm *g, const kblock *kb, LLVMValueRef i0,
                        LLVMValueRef j0, int mr, int cols, LLVMValueRef acc[][GEMM_NV]) {
    for (int r = 0; r < mr; r++) {
        LLVMValueRef i = add64(k, i0, cg_i64(k, r));
        LLVMValueRef crow = cg_gep(k, g->dt, g->c, add64(k, mul64(k, i, g->c_rs), j0));
        for (int v = 0; v < GEMM_NV; v++) {
            int lanes = cols - v * g->vl;
            if (lanes <= 0) break;
            if (lanes > g->vl) lanes = g->vl;
            LLVMValueRef p = cg_gep(k, g->dt, crow, cg_i64(k, v * g->vl));
            LLVMValueRef val = acc[r][v];
            if (!LLVMIsConstant(kb->first) || !LLVMConstIntGetZExtValue(kb->first))
                val = LLVMBuildSelect(k->b, kb->first, val,
                                      vadd(k, g, load_vec(k, g, p, lanes), val), "");
            if (!LLVMIsConstant(kb->last) || LLVMConstIntGetZExtValue(kb->last)) {
                LLVMValueRef j = add64(k, j0, cg_i64(k, v * g->vl));
                LLVMValueRef e = epilogue(k, g, val, i, j, lanes);
                val = e == val ? val : LLVMBuildSelect(k->b, kb->last, e, val, "");
            }
            store_vec(k, g, p, val, lanes);
        }
    }
    if (!g->post) return;
    LLVMValueRef rows = cg_i64(k, mr), n = cg_i64(k, cols);
    if (LLVMIsConstant(kb->last)) {
        if (LLVMConstIntGetZExtValue(kb->last)) g->post(k, g, i0, rows, j0, n);
        return;
    }
    LLVMBasicBlockRef join = cg_gemm_if(k, kb->last);
    g->post(k, g, i0, rows, j0, n);
    cg_gemm_if_end(k, join);
}

/* Prefetches the C micro-tile for writing while the k loop runs. */
static void prefetch_c(cg_kernel *k, const cg_gemm *g, LLVMValueRef i0, LLVMValueRef j0, int mr) {
    for (int r = 0; r < mr; r++) {
        LLVMValueRef p = cg_gep(k, g->dt, g->c, add64(k, mul64(k, add64(k, i0, cg_i64(k, r)), g->c_rs), j0));
        for (int off = 0; off < g->nr; off += 64 / (int)gr_dtype_size(g->dt)) {
            LLVMValueRef args[4] = {cg_gep(k, g->dt, p, cg_i64(k, off)), cg_i32(k, 1), cg_i32(k, 3),
                                    cg_i32(k, 1)};
            cg_intrinsic(k, "llvm.prefetch", k->m->t_ptr, 4, args);
        }
    }
}

static void micro(cg_kernel *k, const cg_gemm *g, const kblock *kb, LLVMValueRef i0,
                  LLVMValueRef jp, LLVMValueRef n0, int mr, int cols) {
    LLVMValueRef acc[GEMM_MR][GEMM_NV];
    prefetch_c(k, g, i0, add64(k, n0, mul64(k, jp, g->nr)), mr);
    LLVMValueRef panel = cg_gep(k, g->dt, kb->bp, LLVMBuildNSWMul(k->b, jp, mul64(k, kb->kc, g->nr), ""));
    micro_compute(k, g, kb, panel, g->prepacked ? cols : g->nr, mr, acc);
    micro_store(k, g, kb, i0, add64(k, n0, mul64(k, jp, g->nr)), mr, cols, acc);
}

/* One MR-row strip (mr rows) against every panel of the block. */
static void strip(cg_kernel *k, const cg_gemm *g, const kblock *kb, LLVMValueRef i0,
                  LLVMValueRef n0, LLVMValueRef nc, int mr) {
    pack_a(k, g, kb, i0, mr);
    LLVMValueRef full = LLVMBuildSDiv(k->b, nc, cg_i64(k, g->nr), "");
    cg_loop l;
    LLVMValueRef jp = cg_loop_begin(k, &l, cg_i64(k, 0), full, 1);
    micro(k, g, kb, i0, jp, n0, mr, g->nr);
    cg_gemm_loop_end(k, &l);
    int edge = (int)(g->N % g->nr);
    if (!edge) return;
    LLVMValueRef has = LLVMBuildICmp(k->b, LLVMIntNE, LLVMBuildSRem(k->b, nc, cg_i64(k, g->nr), ""),
                                     cg_i64(k, 0), "");
    LLVMBasicBlockRef join = cg_gemm_if(k, has);
    micro(k, g, kb, i0, full, n0, mr, edge);
    cg_gemm_if_end(k, join);
}

/* C = epilogue(0) when K == 0. */
static void emit_empty_k(cg_kernel *k, const cg_gemm *g, LLVMValueRef m0, LLVMValueRef mc,
                         LLVMValueRef n0, LLVMValueRef nc) {
    cg_loop li, lj;
    LLVMValueRef i = cg_loop_begin(k, &li, m0, add64(k, m0, mc), 1);
    LLVMValueRef j = cg_loop_begin(k, &lj, n0, add64(k, n0, nc), 1);
    LLVMValueRef v = LLVMConstNull(vec_type(k, g));
    v = LLVMBuildExtractElement(k->b, epilogue(k, g, v, i, j, 1), cg_i32(k, 0), "");
    cg_store(k, g->dt, g->c, add64(k, mul64(k, i, g->c_rs), j), v);
    cg_gemm_loop_end(k, &lj);
    cg_gemm_loop_end(k, &li);
    if (g->post) g->post(k, g, m0, mc, n0, nc);
}

void cg_gemm_emit_tile(cg_kernel *k, const cg_gemm *g, LLVMValueRef tile) {
    int64_t tiles_n = ceil_div(g->N, g->nc);
    LLVMValueRef tm = LLVMBuildSDiv(k->b, tile, cg_i64(k, tiles_n), "");
    LLVMValueRef tn = LLVMBuildSRem(k->b, tile, cg_i64(k, tiles_n), "");
    LLVMValueRef m0 = mul64(k, tm, g->mc), n0 = mul64(k, tn, g->nc);
    LLVMValueRef mc = cg_gemm_min(k, cg_i64(k, g->mc), LLVMBuildSub(k->b, cg_i64(k, g->M), m0, ""));
    LLVMValueRef nc = cg_gemm_min(k, cg_i64(k, g->nc), LLVMBuildSub(k->b, cg_i64(k, g->N), n0, ""));
    if (g->K == 0) {
        emit_empty_k(k, g, m0, mc, n0, nc);
        return;
    }
    int64_t n_kb = ceil_div(g->K, g->kc);
    kblock kb = {.bp = k->workspace,
                 .ap = cg_gep(k, g->dt, k->workspace, cg_i64(k, g->prepacked ? 0 : g->nc * g->kc))};
    cg_loop lk;
    LLVMValueRef b = cg_loop_begin(k, &lk, cg_i64(k, 0), cg_i64(k, n_kb), 1);
    kb.k0 = mul64(k, b, g->kc);
    kb.kc = cg_gemm_min(k, cg_i64(k, g->kc), LLVMBuildSub(k->b, cg_i64(k, g->K), kb.k0, ""));
    kb.first = n_kb == 1 ? LLVMConstInt(k->m->t_i1, 1, 0)
                         : LLVMBuildICmp(k->b, LLVMIntEQ, b, cg_i64(k, 0), "");
    kb.last = n_kb == 1 ? LLVMConstInt(k->m->t_i1, 1, 0)
                        : LLVMBuildICmp(k->b, LLVMIntEQ, b, cg_i64(k, n_kb - 1), "");
    if (g->prepacked) /* this tile's panels of the K block (see gemm.h) */
        kb.bp = cg_gep(k, g->dt, g->b, add64(k, mul64(k, kb.k0, g->N),
                                             LLVMBuildNSWMul(k->b, n0, kb.kc, "")));
    else
        (g->pack ? g->pack : pack_strided)(k, g, kb.bp, kb.k0, kb.kc, n0, nc);
    LLVMValueRef full = LLVMBuildSDiv(k->b, mc, cg_i64(k, g->mr), "");
    cg_loop li;
    LLVMValueRef it = cg_loop_begin(k, &li, cg_i64(k, 0), full, 1);
    strip(k, g, &kb, add64(k, m0, mul64(k, it, g->mr)), n0, nc, g->mr);
    cg_gemm_loop_end(k, &li);
    int edge = (int)(g->M % g->mr);
    if (edge) {
        LLVMValueRef has = LLVMBuildICmp(k->b, LLVMIntNE,
                                         LLVMBuildSRem(k->b, mc, cg_i64(k, g->mr), ""),
                                         cg_i64(k, 0), "");
        LLVMBasicBlockRef join = cg_gemm_if(k, has);
        strip(k, g, &kb, add64(k, m0, mul64(k, full, g->mr)), n0, nc, edge);
        cg_gemm_if_end(k, join);
    }
    cg_gemm_loop_end(k, &lk);
}
