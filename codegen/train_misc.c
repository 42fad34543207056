/* train_misc.c: GatherGrad (Gather's gradient: a scatter-add of dY rows
 * into zeros) and DropoutMask (a counter-based random mask).
 * GatherGrad: a task owns a chunk of the inner dims of one outer row, so
 * rows gathered more than once accumulate in index order within one task.
 * Indices are wrapped once if negative; still outside [0, D) they are
 * skipped (the kernel cannot report errors).
 * DropoutMask: element e draws u = (hash(seed ^ hash(salt*phi + e)) >> 11)
 * * 2^-53 with hash = gr_hash64 (splitmix64), so the mask does not depend
 * on the thread count.
 * cg_emit_dropout_runtime: ONNX Dropout whose ratio or training_mode is a
 * run-time input: when training_mode and ratio > 0, element e is kept if
 * its u (salt 0, seed: the node's seed attribute, default 0) is >= ratio
 * and scaled by 1 / (1 - ratio); otherwise Y = X and the mask is true. */
#include "codegen/reduce_internal.h"

/* dY [pre.., q.., post..], indices [q..], shape -> dData [pre.., D, post..] */
gr_code cg_emit_gather_grad(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                            gr_status *st) {
    const gr_value *dy = n->inputs[0], *idx = n->inputs[1], *out = n->outputs[0];
    int r = out->shape.rank;
    int64_t axis = gr_node_int(n, "axis", 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r)
        return gr_fail(st, GR_ERR_BAD_MODEL, "GatherGrad axis %lld outside rank %d",
                       (long long)gr_node_int(n, "axis", 0), r);
    if (!gr_dtype_is_float(dy->dtype) || out->dtype != dy->dtype)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "GatherGrad of %s is not compiled",
                       gr_dtype_name(dy->dtype));
    if (idx->dtype != GR_DTYPE_I32 && idx->dtype != GR_DTYPE_I64)
        return gr_fail(st, GR_ERR_BAD_MODEL, "GatherGrad indices are %s, expected i32 or i64",
                       gr_dtype_name(idx->dtype));
    int64_t pre = 1, post = 1, D = out->shape.dims[axis], q = gr_value_numel(idx);
    for (int i = 0; i < axis; i++) pre *= out->shape.dims[i];
    for (int i = (int)axis + 1; i < r; i++) post *= out->shape.dims[i];
    /* chunks of the inner dims: enough tasks for a few threads */
    int64_t chunk = post;
    if (pre < 8 && post > 64) {
        chunk = (post * pre + 7) / 8;
        chunk = (chunk + 15) / 16 * 16;
        if (chunk < 64) chunk = 64;
    }
    int64_t n_chunks = post > 0 ? (post + chunk - 1) / chunk : 0;
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    k->n_tasks = pre * n_chunks;
    if (k->n_tasks > 0) {
        gr_dtype dt = dy->dtype;
        LLVMValueRef y = cg_arg(k, dy), ind = cg_arg(k, idx), x = cg_arg(k, out);
        cg_loop lt, lz, lq, la;
        LLVMValueRef t = cg_loop_begin(k, &lt, k->begin, k->end, 1);
        LLVMValueRef p = LLVMBuildUDiv(k->b, t, cg_i64(k, n_chunks), "");
        LLVMValueRef j0 = rd_mul(k, LLVMBuildURem(k->b, t, cg_i64(k, n_chunks), ""),
                                 cg_i64(k, chunk));
        LLVMValueRef jn = rd_min64(k, cg_i64(k, chunk),
                                   LLVMBuildSub(k->b, cg_i64(k, post), j0, ""));
        /* out[p, d, j0 + j] and dY[p, i, j0 + j] */
        LLVMValueRef obase = rd_add(k, rd_mul(k, p, cg_i64(k, D * post)), j0);
        LLVMValueRef ybase = rd_add(k, rd_mul(k, p, cg_i64(k, q * post)), j0);
        LLVMValueRef d = cg_loop_begin(k, &lz, cg_i64(k, 0), cg_i64(k, D), 1);
        LLVMValueRef row = rd_add(k, obase, rd_mul(k, d, cg_i64(k, post)));
        cg_loop lj;
        LLVMValueRef j = cg_loop_begin(k, &lj, cg_i64(k, 0), jn, 1);
        cg_store(k, dt, x, rd_add(k, row, j), cg_const(k, dt, 0));
        cg_loop_end(k, &lj);
        cg_loop_end(k, &lz);
        if (q > 0) {
            LLVMValueRef i = cg_loop_begin(k, &lq, cg_i64(k, 0), cg_i64(k, q), 1);
            LLVMValueRef v = cg_convert(k, cg_load(k, idx->dtype, ind, i), idx->dtype,
                                        GR_DTYPE_I64);
            LLVMValueRef neg = LLVMBuildICmp(k->b, LLVMIntSLT, v, cg_i64(k, 0), "");
            v = LLVMBuildSelect(k->b, neg, rd_add(k, v, cg_i64(k, D)), v, "");
            LLVMValueRef ok = LLVMBuildICmp(k->b, LLVMIntULT, v, cg_i64(k, D), "");
            LLVMBasicBlockRef join;
            {
                LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(k->b));
                LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(m->ctx, fn, "valid");
                join = LLVMAppendBasicBlockInContext(m->ctx, fn, "next");
                LLVMBuildCondBr(k->b, ok, then, join);
                LLVMPositionBuilderAtEnd(k->b, then);
            }
            LLVMValueRef orow = rd_add(k, obase, rd_mul(k, v, cg_i64(k, post)));
            LLVMValueRef yrow = rd_add(k, ybase, rd_mul(k, i, cg_i64(k, post)));
            j = cg_loop_begin(k, &la, cg_i64(k, 0), jn, 1);
            LLVMValueRef oi = rd_add(k, orow, j);
            cg_store(k, dt, x, oi, LLVMBuildFAdd(k->b, cg_load(k, dt, x, oi),
                                                 cg_load(k, dt, y, rd_add(k, yrow, j)), ""));
            cg_loop_end(k, &la);
            LLVMBuildBr(k->b, join);
            LLVMPositionBuilderAtEnd(k->b, join);
            cg_loop_end(k, &lq);
        }
        cg_loop_end(k, &lt);
    }
    return cg_kernel_end(k, st);
}

#define GOLDEN 0x9E3779B97F4A7C15ull

/* gr_hash64 (ir/rng.c) in IR: splitmix64's finaliser of x + phi. */
static LLVMValueRef hash64(cg_kernel *k, LLVMValueRef x) {
    LLVMBuilderRef b = k->b;
    LLVMTypeRef t = k->m->t_i64;
    LLVMValueRef z = LLVMBuildAdd(b, x, LLVMConstInt(t, GOLDEN, 0), "");
    z = LLVMBuildXor(b, z, LLVMBuildLShr(b, z, LLVMConstInt(t, 30, 0), ""), "");
    z = LLVMBuildMul(b, z, LLVMConstInt(t, 0xBF58476D1CE4E5B9ull, 0), "");
    z = LLVMBuildXor(b, z, LLVMBuildLShr(b, z, LLVMConstInt(t, 27, 0), ""), "");
    z = LLVMBuildMul(b, z, LLVMConstInt(t, 0x94D049BB133111EBull, 0), "");
    return LLVMBuildXor(b, z, LLVMBuildLShr(b, z, LLVMConstInt(t, 31, 0), ""), "");
}

/* u in [0, 1) for element e: (hash(seed ^ hash(salt*phi + e)) >> 11) * 2^-53
 * (seed, e: i64 values). */
static LLVMValueRef uniform(cg_kernel *k, LLVMValueRef seed, uint64_t salt, LLVMValueRef e) {
    LLVMBuilderRef b = k->b;
    LLVMValueRef salted = LLVMConstInt(k->m->t_i64, salt * GOLDEN, 0);
    LLVMValueRef inner = hash64(k, LLVMBuildAdd(b, salted, e, ""));
    LLVMValueRef h = hash64(k, LLVMBuildXor(b, seed, inner, ""));
    LLVMValueRef u = LLVMBuildUIToFP(b, LLVMBuildLShr(b, h, cg_i64(k, 11), ""), k->m->t_f64, "");
    return LLVMBuildFMul(b, u, LLVMConstReal(k->m->t_f64, 0x1.0p-53), "");
}

#define DROPOUT_CHUNK 8192

/* Opens the loops of a kernel over total elements in chunks of
 * DROPOUT_CHUNK (one task each); returns the element index. */
static LLVMValueRef chunk_loops(cg_kernel *k, cg_loop *lt, cg_loop *le, int64_t total) {
    k->n_tasks = (total + DROPOUT_CHUNK - 1) / DROPOUT_CHUNK;
    LLVMValueRef t = cg_loop_begin(k, lt, k->begin, k->end, 1);
    LLVMValueRef e0 = rd_mul(k, t, cg_i64(k, DROPOUT_CHUNK));
    LLVMValueRef e1 = rd_min64(k, rd_add(k, e0, cg_i64(k, DROPOUT_CHUNK)), cg_i64(k, total));
    return cg_loop_begin(k, le, e0, e1, 1);
}

/* seed [] -> mask f32 [shape]: 1/(1-ratio) (rounded to f32) or 0. */
gr_code cg_emit_dropout_mask(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                             gr_status *st) {
    const gr_value *seed = n->inputs[0], *out = n->outputs[0];
    double ratio = gr_node_float(n, "ratio", 0.5);
    uint64_t salt = (uint64_t)gr_node_int(n, "salt", 0);
    if (!gr_dtype_is_int(seed->dtype) || out->dtype != GR_DTYPE_F32)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "DropoutMask needs an integer seed and f32 mask");
    if (!(ratio >= 0.0 && ratio < 1.0))
        return gr_fail(st, GR_ERR_BAD_MODEL, "DropoutMask ratio %g is outside [0, 1)", ratio);
    int64_t total = gr_value_numel(out);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    if (total > 0) {
        LLVMBuilderRef b = k->b;
        LLVMValueRef s = cg_convert(k, cg_load(k, seed->dtype, cg_arg(k, seed), cg_i64(k, 0)),
                                    seed->dtype, GR_DTYPE_I64);
        LLVMValueRef y = cg_arg(k, out);
        LLVMValueRef keep = cg_f32(k, (float)(1.0 / (1.0 - ratio))), drop = cg_f32(k, 0.0);
        cg_loop lt, le;
        LLVMValueRef e = chunk_loops(k, &lt, &le, total);
        LLVMValueRef kept = LLVMBuildFCmp(b, LLVMRealOGE, uniform(k, s, salt, e),
                                          LLVMConstReal(m->t_f64, ratio), "");
        cg_store(k, GR_DTYPE_F32, y, e, LLVMBuildSelect(b, kept, keep, drop, ""));
        cg_loop_end(k, &le);
        cg_loop_end(k, &lt);
    }
    return cg_kernel_end(k, st);
}

/* Loads scalar input v (f64 for ratio; i1 for training_mode), or fallback. */
static LLVMValueRef scalar_input(cg_kernel *k, const gr_value *v, gr_dtype as, double fallback) {
    if (!v) return as == GR_DTYPE_BOOL ? LLVMConstInt(k->m->t_i1, fallback != 0, 0)
                                       : LLVMConstReal(k->m->t_f64, fallback);
    LLVMValueRef x = cg_load(k, v->dtype, cg_arg(k, v), cg_i64(k, 0));
    return cg_convert(k, x, v->dtype, as == GR_DTYPE_BOOL ? GR_DTYPE_BOOL : GR_DTYPE_F64);
}

gr_code cg_emit_dropout_runtime(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                                gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    const gr_value *ratio = n->n_inputs > 1 ? n->inputs[1] : NULL;
    const gr_value *train = n->n_inputs > 2 ? n->inputs[2] : NULL;
    const gr_value *mask = n->n_outputs > 1 ? n->outputs[1] : NULL;
    if (x->dtype != GR_DTYPE_F32 && x->dtype != GR_DTYPE_F64)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Dropout with a run-time ratio or training_mode "
                       "is compiled for f32 and f64 data, not %s", gr_dtype_name(x->dtype));
    if ((ratio && gr_value_numel(ratio) != 1) || (train && gr_value_numel(train) != 1))
        return gr_fail(st, GR_ERR_BAD_MODEL, "Dropout's ratio and training_mode must be scalars");
    int64_t total = gr_value_numel(y);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    if (total > 0) {
        LLVMBuilderRef b = k->b;
        LLVMValueRef r = scalar_input(k, ratio, GR_DTYPE_F64, 0.5);
        LLVMValueRef on = LLVMBuildAnd(b, scalar_input(k, train, GR_DTYPE_BOOL, 0),
                                       LLVMBuildFCmp(b, LLVMRealOGT, r, LLVMConstReal(m->t_f64, 0), ""), "");
        LLVMValueRef scale = LLVMBuildFDiv(b, LLVMConstReal(m->t_f64, 1.0),
                                           LLVMBuildFSub(b, LLVMConstReal(m->t_f64, 1.0), r, ""), "");
        scale = cg_convert(k, LLVMBuildSelect(b, on, scale, LLVMConstReal(m->t_f64, 1.0), ""),
                           GR_DTYPE_F64, x->dtype);
        LLVMValueRef seed = cg_i64(k, gr_node_int(n, "seed", 0));
        cg_loop lt, le;
        LLVMValueRef e = chunk_loops(k, &lt, &le, total);
        LLVMValueRef kept = LLVMBuildOr(b, LLVMBuildNot(b, on, ""),
                                        LLVMBuildFCmp(b, LLVMRealOGE, uniform(k, seed, 0, e), r, ""), "");
        LLVMValueRef v = LLVMBuildFMul(b, cg_load(k, x->dtype, cg_arg(k, x), e), scale, "");
        v = LLVMBuildSelect(b, kept, v, LLVMConstNull(LLVMTypeOf(v)), "");
        cg_store(k, y->dtype, cg_arg(k, y), e, v);
        if (mask) cg_store(k, GR_DTYPE_BOOL, cg_arg(k, mask), e, kept);
        cg_loop_end(k, &le);
        cg_loop_end(k, &lt);
    }
    return cg_kernel_end(k, st);
}
