/* gemm.h: the GEMM core shared by MatMul, Gemm and Conv (private to codegen).
 * C[M,N] = alpha * A[M,K]·B[K,N] + beta * bias, one output tile per task:
 * B is packed block by block into the workspace as NR-wide panels, then an
 * explicit-vector MR x NR register-blocked micro-kernel runs over them. The K
 * reduction of a tile always runs in the same order, so the result does not
 * depend on how tasks are split over threads.
 *
 * A constant B can be pre-packed once, at compile time (cg_gemm_prepack),
 * into the panels the micro-kernel reads; the kernel then packs nothing and
 * streams B once. Pre-packed layout of one K x N matrix, per K block
 * [k0, k0+kcb) (kc rows, the last block K - k0): its kcb x N elements start
 * at element k0*N and hold the ceil(N/NR) panels of columns p*NR.., each
 * [kcb][cols] with cols = NR, except the last (N % NR columns when that is
 * not 0, rows not padded). The result is bit for bit the one of the packing
 * kernel: only where B is read from changes. */
#ifndef GR_CG_GEMM_H
#define GR_CG_GEMM_H

#include "codegen/cg_internal.h"

typedef struct cg_gemm cg_gemm;

/* Packs B[k0:k0+kc, n0:n0+nc] into bp as ceil(nc/NR) panels [kc][NR]
 * (panel p holds columns n0+p*NR..), zero past column N. k0, kc, n0, nc are
 * i64 values; nc % NR != 0 only in the last tile column (then N % NR cols). */
typedef void (*cg_gemm_pack_fn)(cg_kernel *k, const cg_gemm *g, LLVMValueRef bp,
                                LLVMValueRef k0, LLVMValueRef kc, LLVMValueRef n0,
                                LLVMValueRef nc);

/* Packs one panel: dst[kk][jj] = B[k0+kk, col0+jj] for jj < cols (a
 * constant <= NR), 0 for cols <= jj < NR. */
typedef void (*cg_gemm_panel_fn)(cg_kernel *k, const cg_gemm *g, LLVMValueRef dst,
                                 LLVMValueRef k0, LLVMValueRef kc, LLVMValueRef col0,
                                 int cols);

struct cg_gemm {
    gr_dtype dt;               /* f32, f64, i32 or i64 */
    int64_t M, N, K;
    /* Per-instance base pointers (set before cg_gemm_emit_tile). */
    LLVMValueRef a, b, c, bias;
    int64_t a_rs, a_cs;        /* A[i,k] = a[i*a_rs + k*a_cs] */
    int64_t b_rs, b_cs;        /* B[k,j] = b[k*b_rs + j*b_cs] (default pack) */
    int64_t c_rs;              /* C[i,j] = c[i*c_rs + j] */
    int64_t bias_rs, bias_cs;  /* bias[i*bias_rs + j*bias_cs], bias_cs 0 or 1 */
    double alpha, beta;        /* floats only; beta applies to bias */
    cg_gemm_pack_fn pack;      /* NULL: strided B above */
    int prepacked;             /* b holds B pre-packed (cg_gemm_prepack) */
    const void *user;          /* for pack */
    /* Epilogue (cg_epilogue_attach): runs on C[i0.., j0..] (rows x cols,
     * i64 values) once those elements are final; c_off is the element
     * offset of c from the start of its buffer. */
    void (*post)(cg_kernel *k, const cg_gemm *g, LLVMValueRef i0, LLVMValueRef rows,
                 LLVMValueRef j0, LLVMValueRef cols);
    LLVMValueRef c_off;
    /* Blocking, chosen by cg_gemm_plan. */
    int vl, mr, nr;
    int wide;                  /* 512-bit vectors (AVX-512 host) */
    int64_t mc, nc, kc;
};

/* Fills the defaults (alpha 1, strides of row-major A, B, C, no bias) for
 * an M x N x K product of dtype dt. */
void cg_gemm_init(cg_gemm *g, gr_dtype dt, int64_t M, int64_t N, int64_t K);
/* Chooses the blocking so that batches * tiles gives enough tasks. */
void cg_gemm_plan(const cg_module *m, cg_gemm *g, int64_t batches);
int64_t cg_gemm_n_tiles(const cg_gemm *g);
size_t cg_gemm_workspace_bytes(const cg_gemm *g);
/* Emits the computation of output tile `tile` (i64 value in [0, n_tiles)). */
void cg_gemm_emit_tile(cg_kernel *k, const cg_gemm *g, LLVMValueRef tile);

/* Writes the K x N matrices src[0..n_mat) (B[k,j] of matrix t at element
 * t*K*N + k*b_rs + j*b_cs of src) pre-packed into dst (n_mat*K*N elements,
 * not overlapping src), for g's blocking (call after cg_gemm_plan), and sets
 * g->prepacked: g->b must then point at dst's bytes (at matrix t*K*N for a
 * batch's B), and b_rs, b_cs no longer apply. */
void cg_gemm_prepack(cg_gemm *g, void *dst, const void *src, int64_t n_mat);

/* A pack function from a panel function: loops over the full panels of
 * [n0, n0+nc) then the edge panel (N % NR columns) if present. */
void cg_gemm_pack_panels(cg_kernel *k, const cg_gemm *g, LLVMValueRef bp, LLVMValueRef k0,
                         LLVMValueRef kc, LLVMValueRef n0, LLVMValueRef nc,
                         cg_gemm_panel_fn panel);

/* If k has an epilogue (a fusion group headed by this GEMM's node), has g
 * run it on every finished tile. c_off: the element offset of g->c in its
 * buffer (call after setting g->c, inside the task loop). */
void cg_epilogue_attach(cg_kernel *k, cg_gemm *g, LLVMValueRef c_off);

/* Small IR helpers shared by the linalg files. */
LLVMValueRef cg_gemm_min(cg_kernel *k, LLVMValueRef a, LLVMValueRef b);
/* if (cond) { ...builder left in the then-block }: returns the join block;
 * call cg_gemm_if_end(k, join) to branch to it and continue there. */
LLVMBasicBlockRef cg_gemm_if(cg_kernel *k, LLVMValueRef cond);
void cg_gemm_if_end(cg_kernel *k, LLVMBasicBlockRef join);
/* cg_loop_end, and asks LLVM not to unroll the loop (keeps compile time
 * and code size in check for the large loop nests of these kernels). */
void cg_gemm_loop_end(cg_kernel *k, cg_loop *l);

#endif /* GR_CG_GEMM_H */
