/* norm.c: LayerNormalization, BatchNormalization (inference mode),
 * InstanceNormalization and LRN. Statistics are two-pass (mean, then the
 * mean of squared deviations) over contiguous rows in loops the vectoriser
 * may reorder, accumulated in f32 (f64 for f64 inputs): rows here are short
 * enough (a layer's features, one channel plane) that f32 partial sums stay
 * within ~1e-6 relative. Each task owns whole rows or planes, so results do
 * not depend on the thread split. */
#include "codegen/cg_math.h"
#include "codegen/reduce_internal.h"

/* sum over i < n of f(x[base + i]) with f = identity or (x - mean)^2. */
static LLVMValueRef row_sum(cg_kernel *k, gr_dtype xt, LLVMValueRef x, LLVMValueRef base,
                            int64_t n, gr_dtype at, LLVMValueRef mean) {
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(k, &l, cg_i64(k, 0), cg_i64(k, n), 1);
    l.vectorize = 1;
    LLVMValueRef acc = cg_loop_acc(k, &l, cg_const(k, at, 0));
    LLVMValueRef v = rd_load(k, xt, x, rd_add(k, base, i), at);
    if (mean) {
        v = LLVMBuildFSub(k->b, v, mean, "");
        v = LLVMBuildFMul(k->b, v, v, "");
    }
    cg_loop_next(&l, 0, LLVMBuildFAdd(k->b, acc, v, ""));
    cg_loop_end(k, &l);
    return l.acc_out[0];
}

/* mean and 1/sqrt(var + eps) of x[base .. base + n). */
static void row_stats(cg_kernel *k, gr_dtype xt, LLVMValueRef x, LLVMValueRef base, int64_t n,
                      gr_dtype at, double eps, LLVMValueRef *mean, LLVMValueRef *inv) {
    LLVMValueRef cnt = cg_const(k, at, (double)n);
    *mean = LLVMBuildFDiv(k->b, row_sum(k, xt, x, base, n, at, NULL), cnt, "");
    LLVMValueRef var = LLVMBuildFDiv(k->b, row_sum(k, xt, x, base, n, at, *mean), cnt, "");
    LLVMValueRef sd = rd_sqrt(k, LLVMBuildFAdd(k->b, var, cg_const(k, at, eps), ""));
    *inv = LLVMBuildFDiv(k->b, cg_const(k, at, 1), sd, "");
}

static gr_code need_float(const gr_node *n, const gr_value *v, gr_status *st) {
    if (!gr_dtype_is_float(v->dtype))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s of %s input '%s' is not compiled",
                       n->op_type, gr_dtype_name(v->dtype), v->name);
    return GR_OK;
}

/* --------------------------------------------------------- LayerNorm */

/* Index into a parameter p broadcast to the normalised dims
 * ns[axis..rank): j is the flat index within those dims. */
static LLVMValueRef bcast_index(cg_kernel *k, const gr_shape *xs, int axis, const gr_shape *ps,
                                LLVMValueRef j) {
    int64_t numel = gr_shape_numel(ps), inner = 1;
    for (int i = axis; i < xs->rank; i++) inner *= xs->dims[i];
    if (numel == inner) return j;
    if (numel == 1) return cg_i64(k, 0);
    LLVMValueRef idx = cg_i64(k, 0);
    int64_t pstride = 1;
    for (int i = xs->rank - 1; i >= axis; i--) {
        int pi = ps->rank - (xs->rank - i); /* aligned from the right */
        int64_t pd = pi >= 0 ? ps->dims[pi] : 1;
        LLVMValueRef c = LLVMBuildURem(k->b, j, cg_i64(k, xs->dims[i]), "");
        j = LLVMBuildUDiv(k->b, j, cg_i64(k, xs->dims[i]), "");
        if (pd != 1) idx = rd_add(k, idx, rd_mul(k, c, cg_i64(k, pstride)));
        pstride *= pd;
    }
    return idx;
}

/* X:[d0..] Scale, B?: broadcast to [d_axis..] -> Y; Mean, InvStdDev:
 * [d0..d_axis-1, 1..] (optional). One task per row of the leading dims. */
gr_code cg_emit_layer_norm(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                           gr_status *st) {
    const gr_value *x = n->inputs[0], *sc = n->inputs[1];
    const gr_value *bv = n->n_inputs > 2 ? n->inputs[2] : NULL;
    const gr_value *mo = n->n_outputs > 1 ? n->outputs[1] : NULL;
    const gr_value *io = n->n_outputs > 2 ? n->outputs[2] : NULL;
    int axis = 0;
    GR_TRY(rd_axis(n, gr_node_int(n, "axis", -1), x->shape.rank, &axis, st));
    GR_TRY(need_float(n, x, st));
    double eps = gr_node_float(n, "epsilon", 1e-5);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    rd_view v = rd_view_axis(&x->shape, axis);
    int64_t rows = v.outer, len = v.len * v.inner;
    gr_dtype at = rd_float_dtype(x->dtype);
    LLVMValueRef xp = cg_arg(k, x), yp = cg_arg(k, n->outputs[0]);
    k->n_tasks = rows;
    if (rows * len == 0) return cg_kernel_end(k, st);
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef base = rd_mul(k, t, cg_i64(k, len)), mean, inv;
    row_stats(k, x->dtype, xp, base, len, at, eps, &mean, &inv);
    if (mo) rd_store(k, mo->dtype, cg_arg(k, mo), t, at, mean);
    if (io) rd_store(k, io->dtype, cg_arg(k, io), t, at, inv);
    cg_loop lj;
    LLVMValueRef j = cg_loop_begin(k, &lj, cg_i64(k, 0), cg_i64(k, len), 1);
    LLVMValueRef xi = rd_add(k, base, j);
    LLVMValueRef y = LLVMBuildFSub(k->b, rd_load(k, x->dtype, xp, xi, at), mean, "");
    y = LLVMBuildFMul(k->b, y, inv, "");
    LLVMValueRef s = rd_load(k, sc->dtype, cg_arg(k, sc),
                             bcast_index(k, &x->shape, axis, &sc->shape, j), at);
    y = LLVMBuildFMul(k->b, y, s, "");
    if (bv)
        y = LLVMBuildFAdd(k->b, y, rd_load(k, bv->dtype, cg_arg(k, bv),
                                           bcast_index(k, &x->shape, axis, &bv->shape, j), at), "");
    rd_store(k, n->outputs[0]->dtype, yp, xi, at, y);
    cg_loop_end(k, &lj);
    cg_loop_end(k, &l);
    return cg_kernel_end(k, st);
}

/* ----------------------------------------------------- Batch/Instance */

/* Loads per-channel parameter input i at channel c in register dtype at. */
static LLVMValueRef chan(cg_kernel *k, const gr_node *n, int i, LLVMValueRef c, gr_dtype at) {
    const gr_value *p = n->inputs[i];
    return rd_load(k, p->dtype, cg_arg(k, p), c, at);
}

/* X:[N,C,D..] scale,B,mean,var:[C] -> Y = (X - mean)/sqrt(var + eps)*scale + B.
 * One task per (n, c) plane. */
gr_code cg_emit_batch_norm(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                           gr_status *st) {
    const gr_value *x = n->inputs[0];
    if (gr_node_int(n, "training_mode", 0))
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "BatchNormalization in training mode has no kernel of its own: the "
                       "simplify pass lowers it to batch statistics");
    for (int i = 1; i < n->n_outputs; i++)
        if (n->outputs[i])
            return gr_fail(st, GR_ERR_UNSUPPORTED,
                           "BatchNormalization with running statistics outputs is not compiled");
    if (x->shape.rank < 2)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "BatchNormalization of rank %d is not compiled",
                       x->shape.rank);
    GR_TRY(need_float(n, x, st));
    for (int i = 1; i < 5; i++) GR_TRY(need_float(n, n->inputs[i], st));
    double eps = gr_node_float(n, "epsilon", 1e-5);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    rd_view v = rd_view_axis(&x->shape, 1);
    gr_dtype at = rd_float_dtype(x->dtype);
    LLVMValueRef xp = cg_arg(k, x), yp = cg_arg(k, n->outputs[0]);
    k->n_tasks = v.outer * v.len;
    if (v.outer * v.len * v.inner == 0) return cg_kernel_end(k, st);
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef c = LLVMBuildURem(k->b, t, cg_i64(k, v.len), "");
    LLVMValueRef var = LLVMBuildFAdd(k->b, chan(k, n, 4, c, at), cg_const(k, at, eps), "");
    LLVMValueRef a = LLVMBuildFDiv(k->b, chan(k, n, 1, c, at), rd_sqrt(k, var), "");
    LLVMValueRef mean = chan(k, n, 3, c, at), bias = chan(k, n, 2, c, at);
    LLVMValueRef base = rd_mul(k, t, cg_i64(k, v.inner));
    cg_loop lj;
    LLVMValueRef j = cg_loop_begin(k, &lj, cg_i64(k, 0), cg_i64(k, v.inner), 1);
    LLVMValueRef xi = rd_add(k, base, j);
    LLVMValueRef y = LLVMBuildFSub(k->b, rd_load(k, x->dtype, xp, xi, at), mean, "");
    y = LLVMBuildFAdd(k->b, LLVMBuildFMul(k->b, y, a, ""), bias, "");
    rd_store(k, n->outputs[0]->dtype, yp, xi, at, y);
    cg_loop_end(k, &lj);
    cg_loop_end(k, &l);
    return cg_kernel_end(k, st);
}

/* input:[N,C,D..] scale,B:[C] -> scale*(x - mean)/sqrt(var + eps) + B with
 * mean and var over each (n, c) plane. One task per plane. */
gr_code cg_emit_instance_norm(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                              gr_status *st) {
    const gr_value *x = n->inputs[0];
    if (x->shape.rank < 2)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "InstanceNormalization of rank %d is not compiled",
                       x->shape.rank);
    for (int i = 0; i < 3; i++) GR_TRY(need_float(n, n->inputs[i], st));
    double eps = gr_node_float(n, "epsilon", 1e-5);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    rd_view v = rd_view_axis(&x->shape, 1);
    gr_dtype at = rd_float_dtype(x->dtype);
    LLVMValueRef xp = cg_arg(k, x), yp = cg_arg(k, n->outputs[0]);
    k->n_tasks = v.outer * v.len;
    if (v.outer * v.len * v.inner == 0) return cg_kernel_end(k, st);
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef c = LLVMBuildURem(k->b, t, cg_i64(k, v.len), "");
    LLVMValueRef base = rd_mul(k, t, cg_i64(k, v.inner)), mean, inv;
    row_stats(k, x->dtype, xp, base, v.inner, at, eps, &mean, &inv);
    LLVMValueRef a = LLVMBuildFMul(k->b, chan(k, n, 1, c, at), inv, "");
    LLVMValueRef bias = chan(k, n, 2, c, at);
    cg_loop lj;
    LLVMValueRef j = cg_loop_begin(k, &lj, cg_i64(k, 0), cg_i64(k, v.inner), 1);
    LLVMValueRef xi = rd_add(k, base, j);
    LLVMValueRef y = LLVMBuildFSub(k->b, rd_load(k, x->dtype, xp, xi, at), mean, "");
    y = LLVMBuildFAdd(k->b, LLVMBuildFMul(k->b, y, a, ""), bias, "");
    rd_store(k, n->outputs[0]->dtype, yp, xi, at, y);
    cg_loop_end(k, &lj);
    cg_loop_end(k, &l);
    return cg_kernel_end(k, st);
}

/* --------------------------------------------------------------- LRN */

/* X:[N,C,D..] -> Y = X / (bias + alpha/size * sum of X^2 over the channels
 * [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta. Task = (n, c, chunk
 * of the plane); the squares accumulate in a workspace row. */
gr_code cg_emit_lrn(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                    gr_status *st) {
    const gr_value *x = n->inputs[0];
    GR_TRY(need_float(n, x, st));
    if (x->shape.rank < 2)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "LRN of rank %d is not compiled", x->shape.rank);
    int64_t size = gr_node_int(n, "size", 1);
    double alpha = gr_node_float(n, "alpha", 1e-4), beta = gr_node_float(n, "beta", 0.75);
    double bias = gr_node_float(n, "bias", 1.0);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    rd_view v = rd_view_axis(&x->shape, 1);
    gr_dtype at = rd_float_dtype(x->dtype);
    LLVMValueRef xp = cg_arg(k, x), yp = cg_arg(k, n->outputs[0]), ws = k->workspace;
    if (v.outer * v.len * v.inner == 0) return cg_kernel_end(k, st);
    int64_t ch = rd_chunk(v.outer * v.len, v.inner), n_chunks = (v.inner + ch - 1) / ch;
    k->n_tasks = v.outer * v.len * n_chunks;
    k->workspace_bytes = (size_t)ch * gr_dtype_size(at);
    cg_loop l, lz, lc, lj, lo;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef plane = LLVMBuildUDiv(k->b, t, cg_i64(k, n_chunks), ""); /* n*C + c */
    LLVMValueRef j0 = rd_mul(k, LLVMBuildURem(k->b, t, cg_i64(k, n_chunks), ""), cg_i64(k, ch));
    LLVMValueRef jn = rd_min64(k, cg_i64(k, ch), LLVMBuildSub(k->b, cg_i64(k, v.inner), j0, ""));
    LLVMValueRef c = LLVMBuildURem(k->b, plane, cg_i64(k, v.len), "");
    LLVMValueRef n0 = LLVMBuildSub(k->b, plane, c, ""); /* n*C */
    LLVMValueRef c0 = rd_max64(k, cg_i64(k, 0), LLVMBuildSub(k->b, c, cg_i64(k, (size - 1) / 2), ""));
    LLVMValueRef c1 = rd_min64(k, cg_i64(k, v.len), rd_add(k, c, cg_i64(k, size / 2 + 1)));
    LLVMValueRef j = cg_loop_begin(k, &lz, cg_i64(k, 0), jn, 1);
    cg_store(k, at, ws, j, cg_const(k, at, 0));
    cg_loop_end(k, &lz);
    LLVMValueRef cc = cg_loop_begin(k, &lc, c0, c1, 1);
    LLVMValueRef row = rd_add(k, rd_mul(k, rd_add(k, n0, cc), cg_i64(k, v.inner)), j0);
    j = cg_loop_begin(k, &lj, cg_i64(k, 0), jn, 1);
    LLVMValueRef xv = rd_load(k, x->dtype, xp, rd_add(k, row, j), at);
    cg_store(k, at, ws, j, LLVMBuildFAdd(k->b, cg_load(k, at, ws, j),
                                         LLVMBuildFMul(k->b, xv, xv, ""), ""));
    cg_loop_end(k, &lj);
    cg_loop_end(k, &lc);
    LLVMValueRef base = rd_add(k, rd_mul(k, plane, cg_i64(k, v.inner)), j0);
    j = cg_loop_begin(k, &lo, cg_i64(k, 0), jn, 1);
    LLVMValueRef d = LLVMBuildFMul(k->b, cg_load(k, at, ws, j),
                                   cg_const(k, at, alpha / (double)size), "");
    d = LLVMBuildFAdd(k->b, d, cg_const(k, at, bias), "");
    d = cg_exp(k, LLVMBuildFMul(k->b, cg_log(k, d), cg_const(k, at, beta), "")); /* d^beta */
    LLVMValueRef xi = rd_add(k, base, j);
    rd_store(k, x->dtype, yp, xi, at,
             LLVMBuildFDiv(k->b, rd_load(k, x->dtype, xp, xi, at), d, ""));
    cg_loop_end(k, &lo);
    cg_loop_end(k, &l);
    return cg_kernel_end(k, st);
}
