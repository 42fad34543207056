/* softmax.c: Softmax and LogSoftmax (opset-13 semantics: one axis, any
 * position), numerically stable: y = exp(x - max) / sum, or x - max - log(sum).
 * The input is seen as [outer, R, inner] around the axis. With inner == 1 a
 * task handles one contiguous row in vectorised passes (max, sum of exps,
 * scale); otherwise a task handles a chunk of the inner dims of one outer
 * row, with the max and sum rows in the workspace. Computed in f32 (f64 for
 * f64); sums reorder under vectorisation. */
#include "codegen/reduce_internal.h"

typedef struct {
    cg_kernel *k;
    int log;       /* LogSoftmax */
    int keep_exp;  /* exps are stored in y between passes (y holds at) */
    gr_dtype xt, at;
    LLVMValueRef x, y;
} sm_ctx;

/* A loop over [0, n) marked for reordering vectorisation, with one
 * accumulator initialised to init. Returns its index variable. */
static LLVMValueRef red_loop(cg_kernel *k, cg_loop *l, int64_t n, LLVMValueRef init) {
    LLVMValueRef i = cg_loop_begin(k, l, cg_i64(k, 0), cg_i64(k, n), 1);
    l->vectorize = 1;
    cg_loop_acc(k, l, init);
    return i;
}

/* inner == 1: task t is row x[t*R .. +R). */
static void emit_rows(sm_ctx *c, int64_t len, int64_t outer) {
    cg_kernel *k = c->k;
    k->n_tasks = outer;
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef base = rd_mul(k, t, cg_i64(k, len));
    LLVMValueRef mx, i, x;
    if (c->xt == c->at) {
        mx = rd_vec_minmax(k, c->at, 0, c->x, base, len, rd_lowest(k, c->at));
    } else {
        cg_loop lm;
        i = red_loop(k, &lm, len, rd_lowest(k, c->at));
        x = rd_load(k, c->xt, c->x, rd_add(k, base, i), c->at);
        cg_loop_next(&lm, 0, rd_max(k, c->at, lm.acc[0], x));
        cg_loop_end(k, &lm);
        mx = lm.acc_out[0];
    }
    cg_loop ls;
    i = red_loop(k, &ls, len, cg_const(k, c->at, 0));
    x = rd_load(k, c->xt, c->x, rd_add(k, base, i), c->at);
    LLVMValueRef e = rd_exp(k, LLVMBuildFSub(k->b, x, mx, ""));
    if (c->keep_exp) cg_store(k, c->at, c->y, rd_add(k, base, i), e);
    cg_loop_next(&ls, 0, LLVMBuildFAdd(k->b, ls.acc[0], e, ""));
    cg_loop_end(k, &ls);
    LLVMValueRef sum = ls.acc_out[0], lsum = c->log ? rd_log(k, sum) : NULL;
    cg_loop lo;
    i = cg_loop_begin(k, &lo, cg_i64(k, 0), cg_i64(k, len), 1);
    LLVMValueRef yi = rd_add(k, base, i), out;
    if (c->log) {
        /* (x - max) - log(sum): exact shift first, as max may be large */
        out = LLVMBuildFSub(k->b, rd_load(k, c->xt, c->x, yi, c->at), mx, "");
        out = LLVMBuildFSub(k->b, out, lsum, "");
    } else {
        e = c->keep_exp ? cg_load(k, c->at, c->y, yi)
                        : rd_exp(k, LLVMBuildFSub(k->b, rd_load(k, c->xt, c->x, yi, c->at), mx, ""));
        out = LLVMBuildFDiv(k->b, e, sum, "");
    }
    rd_store(k, c->xt, c->y, yi, c->at, out);
    cg_loop_end(k, &lo);
    cg_loop_end(k, &l);
}

/* for r < len, j < jn: body(row offset + j). Returns the index j; the caller
 * closes both loops with close_rj. */
static LLVMValueRef open_rj(cg_kernel *k, cg_loop *lr, cg_loop *lj, LLVMValueRef base,
                            int64_t len, int64_t inner, LLVMValueRef jn, LLVMValueRef *xi) {
    LLVMValueRef r = cg_loop_begin(k, lr, cg_i64(k, 0), cg_i64(k, len), 1);
    LLVMValueRef row = rd_add(k, base, rd_mul(k, r, cg_i64(k, inner)));
    LLVMValueRef j = cg_loop_begin(k, lj, cg_i64(k, 0), jn, 1);
    *xi = rd_add(k, row, j);
    return j;
}

static void close_rj(cg_kernel *k, cg_loop *lr, cg_loop *lj) {
    cg_loop_end(k, lj);
    cg_loop_end(k, lr);
}

static void fill(cg_kernel *k, gr_dtype at, LLVMValueRef ws, LLVMValueRef jn, LLVMValueRef v) {
    cg_loop l;
    LLVMValueRef j = cg_loop_begin(k, &l, cg_i64(k, 0), jn, 1);
    cg_store(k, at, ws, j, v);
    cg_loop_end(k, &l);
}

/* inner > 1: task = (outer row p, chunk of inner); ws: max row, sum row. */
static void emit_columns(sm_ctx *c, rd_view v) {
    cg_kernel *k = c->k;
    int64_t ch = rd_chunk(v.outer, v.inner), n_chunks = (v.inner + ch - 1) / ch;
    size_t row = (size_t)ch * gr_dtype_size(c->at);
    k->n_tasks = v.outer * n_chunks;
    k->workspace_bytes = 2 * row;
    LLVMValueRef wm = k->workspace, wsum = cg_gep(k, GR_DTYPE_U8, wm, cg_i64(k, (int64_t)row));
    cg_loop l, lr, lj;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef p = LLVMBuildUDiv(k->b, t, cg_i64(k, n_chunks), "");
    LLVMValueRef j0 = rd_mul(k, LLVMBuildURem(k->b, t, cg_i64(k, n_chunks), ""), cg_i64(k, ch));
    LLVMValueRef jn = rd_min64(k, cg_i64(k, ch), LLVMBuildSub(k->b, cg_i64(k, v.inner), j0, ""));
    LLVMValueRef base = rd_add(k, rd_mul(k, p, cg_i64(k, v.len * v.inner)), j0), xi;
    fill(k, c->at, wm, jn, rd_lowest(k, c->at));
    LLVMValueRef j = open_rj(k, &lr, &lj, base, v.len, v.inner, jn, &xi);
    cg_store(k, c->at, wm, j, rd_max(k, c->at, cg_load(k, c->at, wm, j),
                                     rd_load(k, c->xt, c->x, xi, c->at)));
    close_rj(k, &lr, &lj);
    fill(k, c->at, wsum, jn, cg_const(k, c->at, 0));
    j = open_rj(k, &lr, &lj, base, v.len, v.inner, jn, &xi);
    LLVMValueRef e = rd_exp(k, LLVMBuildFSub(k->b, rd_load(k, c->xt, c->x, xi, c->at),
                                             cg_load(k, c->at, wm, j), ""));
    if (c->keep_exp) cg_store(k, c->at, c->y, xi, e);
    cg_store(k, c->at, wsum, j, LLVMBuildFAdd(k->b, cg_load(k, c->at, wsum, j), e, ""));
    close_rj(k, &lr, &lj);
    if (c->log) { /* wsum := log(sum) */
        cg_loop lf;
        j = cg_loop_begin(k, &lf, cg_i64(k, 0), jn, 1);
        cg_store(k, c->at, wsum, j, rd_log(k, cg_load(k, c->at, wsum, j)));
        cg_loop_end(k, &lf);
    }
    j = open_rj(k, &lr, &lj, base, v.len, v.inner, jn, &xi);
    LLVMValueRef out, m = cg_load(k, c->at, wm, j);
    if (c->log) {
        out = LLVMBuildFSub(k->b, rd_load(k, c->xt, c->x, xi, c->at), m, "");
        out = LLVMBuildFSub(k->b, out, cg_load(k, c->at, wsum, j), "");
    } else {
        e = c->keep_exp ? cg_load(k, c->at, c->y, xi)
                        : rd_exp(k, LLVMBuildFSub(k->b, rd_load(k, c->xt, c->x, xi, c->at), m, ""));
        out = LLVMBuildFDiv(k->b, e, cg_load(k, c->at, wsum, j), "");
    }
    rd_store(k, c->xt, c->y, xi, c->at, out);
    close_rj(k, &lr, &lj);
    cg_loop_end(k, &l);
}

/* input:[d0..] -> output like input, normalised along axis. */
gr_code cg_emit_softmax(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                        gr_status *st) {
    const gr_value *x = n->inputs[0];
    if (!gr_dtype_is_float(x->dtype))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s of %s is not compiled", n->op_type,
                       gr_dtype_name(x->dtype));
    int axis = 0;
    GR_TRY(rd_axis(n, gr_node_int(n, "axis", -1), x->shape.rank < 1 ? 1 : x->shape.rank,
                   &axis, st));
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    gr_dtype at = rd_float_dtype(x->dtype);
    sm_ctx c = {k, n->op == GR_OP_LOG_SOFTMAX, at == x->dtype, x->dtype, at,
                cg_arg(k, x), cg_arg(k, n->outputs[0])};
    rd_view v = rd_view_axis(&x->shape, axis);
    if (v.outer * v.len * v.inner > 0) {
        if (v.inner == 1) emit_rows(&c, v.len, v.outer);
        else emit_columns(&c, v);
    }
    return cg_kernel_end(k, st);
}
