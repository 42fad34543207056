/* linalg.c: MatMul (numpy batch broadcasting, 1-D promotion) and Gemm
 * (transA/transB, alpha, beta, C broadcast to [M,N]) on the GEMM core of
 * gemm.c. A task is one output tile of one batch; batch offsets into A and
 * B come from constant tables (or fold into M when B is shared). A constant
 * B that no other kernel reads is pre-packed at compile time. */
#include <stdlib.h>

#include "codegen/gemm.h"

static int gemm_dtype_ok(gr_dtype dt, int ints) {
    if (dt == GR_DTYPE_F32 || dt == GR_DTYPE_F64) return 1;
    return ints && (dt == GR_DTYPE_I32 || dt == GR_DTYPE_I64 || dt == GR_DTYPE_U32 ||
                    dt == GR_DTYPE_U64);
}

/* A private constant i64 table. */
static LLVMValueRef const_table(cg_kernel *k, const int64_t *v, int64_t n) {
    LLVMValueRef *items = malloc((size_t)n * sizeof *items);
    if (!items) return NULL;
    for (int64_t i = 0; i < n; i++) items[i] = cg_i64(k, v[i]);
    LLVMTypeRef at = LLVMArrayType(k->m->t_i64, (unsigned)n);
    LLVMValueRef gv = LLVMAddGlobal(k->m->mod, at, "gemm.offsets");
    LLVMSetInitializer(gv, LLVMConstArray(k->m->t_i64, items, (unsigned)n));
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    free(items);
    return gv;
}

static LLVMValueRef table_load(cg_kernel *k, LLVMValueRef table, LLVMValueRef i) {
    if (!table) return cg_i64(k, 0);
    return cg_load(k, GR_DTYPE_I64, table, i);
}

/* Pre-packs B (node input 1) into the plan's constant bytes when it is a
 * constant that only this kernel reads (cg_module.claim_const): the kernel
 * then reads the panels in place instead of packing B on every run. Call
 * after cg_gemm_plan; g->b_rs, b_cs describe B's original layout. */
static void prepack_const_b(cg_module *m, const gr_node *n, cg_gemm *g) {
    const gr_value *B = n->inputs[1];
    size_t nbytes = 0, mat = (size_t)(g->K * g->N) * gr_dtype_size(g->dt);
    if (!m->claim_const || g->pack || !mat || B->dtype != g->dt) return;
    void *dst = m->claim_const(m, n, 1, &nbytes);
    if (!dst || nbytes != B->nbytes || nbytes % mat) return;
    cg_gemm_prepack(g, dst, B->data, (int64_t)(nbytes / mat));
}

/* for t in tasks: batch = t / tiles; C, A, B offset by batch; emit tile.
 * a_off/b_off: per-batch element offsets (NULL table = 0); C is dense. */
static void emit_batched(cg_kernel *k, cg_gemm *g, int64_t batches, LLVMValueRef a_tab,
                         LLVMValueRef b_tab) {
    int64_t tiles = cg_gemm_n_tiles(g);
    k->n_tasks = batches * tiles;
    k->workspace_bytes = cg_gemm_workspace_bytes(g);
    k->wide = g->wide;
    if (!k->n_tasks) return;
    LLVMValueRef a = g->a, b = g->b, c = g->c;
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef bi = LLVMBuildSDiv(k->b, t, cg_i64(k, tiles), "");
    LLVMValueRef tile = LLVMBuildSRem(k->b, t, cg_i64(k, tiles), "");
    g->a = cg_gep(k, g->dt, a, table_load(k, a_tab, bi));
    g->b = cg_gep(k, g->dt, b, table_load(k, b_tab, bi));
    LLVMValueRef c_off = LLVMBuildNSWMul(k->b, bi, cg_i64(k, g->M * g->N), "");
    g->c = cg_gep(k, g->dt, c, c_off);
    cg_epilogue_attach(k, g, c_off);
    cg_gemm_emit_tile(k, g, tile);
    cg_gemm_loop_end(k, &l);
}

/* Batch element offsets of an operand with batch dims d[0..nd) (right-
 * aligned with the output's ob[0..nob)) and matrix size mat. */
static void batch_offsets(const int64_t *d, int nd, const int64_t *ob, int nob, int64_t mat,
                          int64_t *out, int64_t n) {
    int64_t stride[GR_MAX_RANK] = {0};
    int64_t s = mat;
    for (int i = nd - 1; i >= 0; i--) {
        stride[i] = d[i] == 1 ? 0 : s;
        s *= d[i];
    }
    for (int64_t bi = 0; bi < n; bi++) {
        int64_t rest = bi, off = 0;
        for (int i = nob - 1; i >= 0; i--) {
            int64_t idx = rest % ob[i];
            rest /= ob[i];
            int ai = i - (nob - nd);
            if (ai >= 0) off += idx * stride[ai];
        }
        out[bi] = off;
    }
}

/* A:[...,M,K] (or [K]) x B:[...,K,N] (or [K]) -> Y:[batch...,M,N] */
gr_code cg_emit_matmul(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                       gr_status *st) {
    const gr_value *A = n->inputs[0], *B = n->inputs[1], *Y = n->outputs[0];
    if (!gemm_dtype_ok(Y->dtype, 1))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "MatMul of %s is not supported",
                       gr_dtype_name(Y->dtype));
    const gr_shape *as = &A->shape, *bs = &B->shape;
    int64_t K = as->dims[as->rank - 1];
    int64_t M = as->rank >= 2 ? as->dims[as->rank - 2] : 1;
    int64_t N = bs->rank >= 2 ? bs->dims[bs->rank - 1] : 1;
    int nab = as->rank > 2 ? as->rank - 2 : 0, nbb = bs->rank > 2 ? bs->rank - 2 : 0;
    int nob = nab > nbb ? nab : nbb;
    int64_t ob[GR_MAX_RANK], batches = 1;
    for (int i = 0; i < nob; i++) {
        int ai = i - (nob - nab), bi = i - (nob - nbb);
        int64_t da = ai >= 0 ? as->dims[ai] : 1, db = bi >= 0 ? bs->dims[bi] : 1;
        ob[i] = da == 1 ? db : da;
        batches *= ob[i];
    }
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    cg_gemm g;
    cg_gemm_init(&g, Y->dtype, M, N, K);
    g.a = cg_arg(k, A);
    g.b = cg_arg(k, B);
    g.c = cg_arg(k, Y);
    int64_t *offs = malloc(2 * (size_t)(batches > 0 ? batches : 1) * sizeof *offs);
    if (!offs) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    batch_offsets(as->dims, nab, ob, nob, M * K, offs, batches);
    batch_offsets(bs->dims, nbb, ob, nob, K * N, offs + batches, batches);
    int b_shared = 1, a_dense = 1;
    for (int64_t i = 0; i < batches; i++) {
        b_shared &= offs[batches + i] == 0;
        a_dense &= offs[i] == i * M * K;
    }
    LLVMValueRef a_tab = NULL, b_tab = NULL;
    if (b_shared && a_dense) { /* [batch*M, K] x [K, N] */
        g.M = M * batches;
        batches = 1;
    } else if (batches > 1) {
        a_tab = const_table(k, offs, batches);
        b_tab = const_table(k, offs + batches, batches);
    }
    free(offs);
    cg_gemm_plan(m, &g, batches);
    prepack_const_b(m, n, &g);
    emit_batched(k, &g, batches, a_tab, b_tab);
    return cg_kernel_end(k, st);
}

/* Y[M,N] = alpha * A'·B' + beta * C (C broadcast to [M,N]) */
gr_code cg_emit_gemm(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                     gr_status *st) {
    const gr_value *A = n->inputs[0], *B = n->inputs[1], *Y = n->outputs[0];
    const gr_value *C = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (!gemm_dtype_ok(Y->dtype, 0))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Gemm of %s is not supported",
                       gr_dtype_name(Y->dtype));
    if (A->shape.rank != 2 || B->shape.rank != 2)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Gemm needs 2-D A and B");
    int ta = gr_node_int(n, "transA", 0) != 0, tb = gr_node_int(n, "transB", 0) != 0;
    int64_t M = Y->shape.dims[0], N = Y->shape.dims[1];
    int64_t K = A->shape.dims[ta ? 0 : 1];
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    cg_gemm g;
    cg_gemm_init(&g, Y->dtype, M, N, K);
    g.a = cg_arg(k, A);
    g.b = cg_arg(k, B);
    g.c = cg_arg(k, Y);
    g.a_rs = ta ? 1 : K;
    g.a_cs = ta ? M : 1;
    g.b_rs = tb ? 1 : N;
    g.b_cs = tb ? K : 1;
    g.alpha = gr_node_float(n, "alpha", 1.0);
    g.beta = gr_node_float(n, "beta", 1.0);
    if (C && gr_value_numel(C) > 0) {
        const gr_shape *cs = &C->shape;
        int64_t c0 = cs->rank == 2 ? cs->dims[0] : 1;
        int64_t c1 = cs->rank >= 1 ? cs->dims[cs->rank - 1] : 1;
        g.bias = cg_arg(k, C);
        g.bias_rs = c0 == M && M > 1 ? c1 : 0;
        g.bias_cs = c1 == N && N > 1 ? 1 : 0;
    }
    cg_gemm_plan(m, &g, 1);
    prepack_const_b(m, n, &g);
    emit_batched(k, &g, 1, NULL, NULL);
    return cg_kernel_end(k, st);
}
