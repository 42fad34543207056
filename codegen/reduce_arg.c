/* reduce_arg.c: ArgMax and ArgMin (axis, keepdims, select_last_index) with
 * i64 output. The input is seen as [outer, R, inner] around the axis. With
 * inner == 1 a task scans one contiguous row; otherwise a task walks R for a
 * chunk of the inner dims, keeping the best values in the workspace and the
 * indices in the output, so the innermost loop stays contiguous. The first
 * extreme wins (the last with select_last_index), a NaN counting as the
 * extreme, as numpy's argmax/argmin (the first NaN's index). */
#include "codegen/reduce_internal.h"

typedef struct {
    cg_kernel *k;
    int is_max, last;
    gr_dtype xt, at;
    LLVMValueRef x, y;
} arg_ctx;

/* Whether v replaces the current best b: a NaN v replaces a number (and,
 * with select_last_index, an earlier NaN); nothing replaces a NaN b else. */
static LLVMValueRef better(const arg_ctx *a, LLVMValueRef v, LLVMValueRef b) {
    cg_kernel *k = a->k;
    if (gr_dtype_is_float(a->at)) {
        LLVMRealPredicate p = a->is_max ? (a->last ? LLVMRealOGE : LLVMRealOGT)
                                        : (a->last ? LLVMRealOLE : LLVMRealOLT);
        LLVMValueRef nan = LLVMBuildFCmp(k->b, LLVMRealUNO, v, v, "");
        if (!a->last) nan = LLVMBuildAnd(k->b, nan, LLVMBuildFCmp(k->b, LLVMRealORD, b, b, ""), "");
        return LLVMBuildOr(k->b, LLVMBuildFCmp(k->b, p, v, b, ""), nan, "");
    }
    int s = cg_dtype_signed(a->at);
    LLVMIntPredicate p;
    if (a->is_max)
        p = a->last ? (s ? LLVMIntSGE : LLVMIntUGE) : (s ? LLVMIntSGT : LLVMIntUGT);
    else
        p = a->last ? (s ? LLVMIntSLE : LLVMIntULE) : (s ? LLVMIntSLT : LLVMIntULT);
    return LLVMBuildICmp(k->b, p, v, b, "");
}

/* inner == 1: task t scans x[t*len .. +len). */
static void emit_rows(arg_ctx *a, rd_view v) {
    cg_kernel *k = a->k;
    k->n_tasks = v.outer;
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef base = rd_mul(k, t, cg_i64(k, v.len));
    LLVMValueRef first = rd_load(k, a->xt, a->x, base, a->at);
    cg_loop lr;
    LLVMValueRef r = cg_loop_begin(k, &lr, cg_i64(k, 1), cg_i64(k, v.len), 1);
    LLVMValueRef best = cg_loop_acc(k, &lr, first);
    LLVMValueRef idx = cg_loop_acc(k, &lr, cg_i64(k, 0));
    LLVMValueRef x = rd_load(k, a->xt, a->x, rd_add(k, base, r), a->at);
    LLVMValueRef c = better(a, x, best);
    cg_loop_next(&lr, 0, LLVMBuildSelect(k->b, c, x, best, ""));
    cg_loop_next(&lr, 1, LLVMBuildSelect(k->b, c, r, idx, ""));
    cg_loop_end(k, &lr);
    cg_store(k, GR_DTYPE_I64, a->y, t, lr.acc_out[1]);
    cg_loop_end(k, &l);
}

/* inner > 1: task = (outer row p, chunk of inner); y holds the indices. */
static void emit_columns(arg_ctx *a, rd_view v) {
    cg_kernel *k = a->k;
    int64_t ch = rd_chunk(v.outer, v.inner), n_chunks = (v.inner + ch - 1) / ch;
    k->n_tasks = v.outer * n_chunks;
    k->workspace_bytes = (size_t)ch * gr_dtype_size(a->at);
    LLVMValueRef ws = k->workspace;
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef p = LLVMBuildUDiv(k->b, t, cg_i64(k, n_chunks), "");
    LLVMValueRef j0 = rd_mul(k, LLVMBuildURem(k->b, t, cg_i64(k, n_chunks), ""), cg_i64(k, ch));
    LLVMValueRef jn = rd_min64(k, cg_i64(k, ch), LLVMBuildSub(k->b, cg_i64(k, v.inner), j0, ""));
    LLVMValueRef xbase = rd_add(k, rd_mul(k, p, cg_i64(k, v.len * v.inner)), j0);
    LLVMValueRef ybase = rd_add(k, rd_mul(k, p, cg_i64(k, v.inner)), j0);
    cg_loop li;
    LLVMValueRef j = cg_loop_begin(k, &li, cg_i64(k, 0), jn, 1);
    cg_store(k, a->at, ws, j, rd_load(k, a->xt, a->x, rd_add(k, xbase, j), a->at));
    cg_store(k, GR_DTYPE_I64, a->y, rd_add(k, ybase, j), cg_i64(k, 0));
    cg_loop_end(k, &li);
    cg_loop lr;
    LLVMValueRef r = cg_loop_begin(k, &lr, cg_i64(k, 1), cg_i64(k, v.len), 1);
    LLVMValueRef row = rd_add(k, xbase, rd_mul(k, r, cg_i64(k, v.inner)));
    cg_loop lj;
    j = cg_loop_begin(k, &lj, cg_i64(k, 0), jn, 1);
    LLVMValueRef x = rd_load(k, a->xt, a->x, rd_add(k, row, j), a->at);
    LLVMValueRef b = cg_load(k, a->at, ws, j);
    LLVMValueRef yi = rd_add(k, ybase, j);
    LLVMValueRef c = better(a, x, b);
    cg_store(k, a->at, ws, j, LLVMBuildSelect(k->b, c, x, b, ""));
    cg_store(k, GR_DTYPE_I64, a->y, yi,
             LLVMBuildSelect(k->b, c, r, cg_load(k, GR_DTYPE_I64, a->y, yi), ""));
    cg_loop_end(k, &lj);
    cg_loop_end(k, &lr);
    cg_loop_end(k, &l);
}

/* data:[d0..] -> i64 indices along axis (kept as 1 or removed). */
gr_code cg_emit_argreduce(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                          gr_status *st) {
    const gr_value *x = n->inputs[0];
    int axis = 0;
    GR_TRY(rd_axis(n, gr_node_int(n, "axis", 0), x->shape.rank, &axis, st));
    if (x->dtype == GR_DTYPE_BOOL || x->dtype == GR_DTYPE_STRING)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s of %s is not compiled", n->op_type,
                       gr_dtype_name(x->dtype));
    rd_view v = rd_view_axis(&x->shape, axis);
    if (v.len == 0 && v.outer * v.inner > 0)
        return gr_fail(st, GR_ERR_BAD_MODEL, "%s over an empty axis %d", n->op_type, axis);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    arg_ctx a = {k, n->op == GR_OP_ARG_MAX, gr_node_int(n, "select_last_index", 0) != 0,
                 x->dtype, gr_dtype_is_float(x->dtype) ? rd_float_dtype(x->dtype) : x->dtype,
                 cg_arg(k, x), cg_arg(k, n->outputs[0])};
    if (v.outer * v.inner > 0) {
        if (v.inner == 1) emit_rows(&a, v);
        else emit_columns(&a, v);
    }
    return cg_kernel_end(k, st);
}
