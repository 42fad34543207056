/* train_loss.c: SoftmaxCrossEntropy and its gradient, PyTorch's
 * cross_entropy(x, y, weight=w, label_smoothing=eps, reduction='mean'):
 *   logp = log_softmax(x), l_i = (1-eps) w[y_i] (-logp[y_i]) - eps/C sum_c w_c logp_c,
 *   loss = sum_i l_i / sum_i w[y_i]   (w = 1 without weights: / N).
 * A row whose label lies outside [0, C) contributes nothing (to the sum or
 * the divisor) and gets a zero gradient: kernels cannot report errors, the
 * label range is checked upstream. The loss kernel is one task (the scalar
 * is a sum over rows in row order); the gradient runs over blocks of rows. */
#include "codegen/reduce_internal.h"

typedef struct {
    cg_kernel *k;
    gr_dtype xt, lt, at;       /* logits/probs, labels, arithmetic */
    int64_t N, C;
    double eps;
    LLVMValueRef w;            /* class weights or NULL */
} ce_ctx;

static LLVMValueRef fadd(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFAdd(k->b, a, b, "");
}

static LLVMValueRef fmul(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFMul(k->b, a, b, "");
}

static LLVMValueRef fconst(const ce_ctx *c, double v) { return cg_const(c->k, c->at, v); }

/* Label of row i as i64, whether it is a class id, and the id clamped to 0
 * when it is not (so that loads stay inside the row). */
static LLVMValueRef row_label(const ce_ctx *c, LLVMValueRef labels, LLVMValueRef i,
                              LLVMValueRef *valid) {
    cg_kernel *k = c->k;
    LLVMValueRef y = cg_convert(k, cg_load(k, c->lt, labels, i), c->lt, GR_DTYPE_I64);
    *valid = LLVMBuildICmp(k->b, LLVMIntULT, y, cg_i64(k, c->C), "");
    return LLVMBuildSelect(k->b, *valid, y, cg_i64(k, 0), "");
}

/* The class weight of label y (1 without weights). */
static LLVMValueRef class_weight(const ce_ctx *c, LLVMValueRef y) {
    return c->w ? rd_load(c->k, c->xt, c->w, y, c->at) : fconst(c, 1.0);
}

/* sum_i valid_i * w[y_i]: the divisor of the mean (N without weights,
 * less the rows with invalid labels). */
static LLVMValueRef weight_sum(const ce_ctx *c, LLVMValueRef labels) {
    cg_kernel *k = c->k;
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(k, &l, cg_i64(k, 0), cg_i64(k, c->N), 1);
    cg_loop_acc(k, &l, fconst(c, 0));
    LLVMValueRef valid, y = row_label(c, labels, i, &valid);
    LLVMValueRef wy = LLVMBuildSelect(k->b, valid, class_weight(c, y), fconst(c, 0), "");
    cg_loop_next(&l, 0, fadd(k, l.acc[0], wy));
    cg_loop_end(k, &l);
    return l.acc_out[0];
}

/* A reduction loop over the C classes of one row. */
static LLVMValueRef class_loop(const ce_ctx *c, cg_loop *l, LLVMValueRef init) {
    LLVMValueRef j = cg_loop_begin(c->k, l, cg_i64(c->k, 0), cg_i64(c->k, c->C), 1);
    l->vectorize = 1;
    cg_loop_acc(c->k, l, init);
    return j;
}

/* logits [N,C], labels [N], weights [C]? -> loss [], probs [N,C] (NULL:
 * output omitted) */
static void emit_loss(ce_ctx *c, LLVMValueRef x, LLVMValueRef labels, LLVMValueRef loss,
                      LLVMValueRef probs) {
    cg_kernel *k = c->k;
    LLVMValueRef cnum = LLVMBuildICmp(k->b, LLVMIntSLT, k->begin, k->end, "");
    LLVMBasicBlockRef join;
    {
        LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(k->b));
        LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(k->m->ctx, fn, "task0");
        join = LLVMAppendBasicBlockInContext(k->m->ctx, fn, "done");
        LLVMBuildCondBr(k->b, cnum, then, join);
        LLVMPositionBuilderAtEnd(k->b, then);
    }
    cg_loop lr, lm, ls, lp, lw;
    LLVMValueRef i = cg_loop_begin(k, &lr, cg_i64(k, 0), cg_i64(k, c->N), 1);
    cg_loop_acc(k, &lr, fconst(c, 0));
    LLVMValueRef base = rd_mul(k, i, cg_i64(k, c->C));
    LLVMValueRef j = class_loop(c, &lm, rd_lowest(k, c->at));
    cg_loop_next(&lm, 0, rd_max(k, c->at, lm.acc[0],
                                rd_load(k, c->xt, x, rd_add(k, base, j), c->at)));
    cg_loop_end(k, &lm);
    LLVMValueRef mx = lm.acc_out[0];
    j = class_loop(c, &ls, fconst(c, 0));
    LLVMValueRef e = rd_exp(k, LLVMBuildFSub(k->b, rd_load(k, c->xt, x, rd_add(k, base, j), c->at),
                                             mx, ""));
    if (probs) rd_store(k, c->xt, probs, rd_add(k, base, j), c->at, e);
    cg_loop_next(&ls, 0, fadd(k, ls.acc[0], e));
    cg_loop_end(k, &ls);
    LLVMValueRef sum = ls.acc_out[0];
    LLVMValueRef shift = fadd(k, mx, rd_log(k, sum)); /* logp = x - shift */
    if (probs) {
        j = cg_loop_begin(k, &lp, cg_i64(k, 0), cg_i64(k, c->C), 1);
        LLVMValueRef pi = rd_add(k, base, j);
        LLVMValueRef e = rd_load(k, c->xt, probs, pi, c->at);
        rd_store(k, c->xt, probs, pi, c->at, LLVMBuildFDiv(k->b, e, sum, ""));
        cg_loop_end(k, &lp);
    }
    LLVMValueRef valid, y = row_label(c, labels, i, &valid), wy = class_weight(c, y);
    LLVMValueRef logp_y = LLVMBuildFSub(k->b, rd_load(k, c->xt, x, rd_add(k, base, y), c->at),
                                        shift, "");
    /* l_i = -(1-eps) w_y logp_y - eps/C sum_c w_c logp_c */
    LLVMValueRef li = fmul(k, fmul(k, fconst(c, -(1.0 - c->eps)), wy), logp_y);
    if (c->eps != 0.0) {
        j = class_loop(c, &lw, fconst(c, 0));
        LLVMValueRef lpc = LLVMBuildFSub(k->b, rd_load(k, c->xt, x, rd_add(k, base, j), c->at),
                                         shift, "");
        cg_loop_next(&lw, 0, fadd(k, lw.acc[0], fmul(k, class_weight(c, j), lpc)));
        cg_loop_end(k, &lw);
        li = fadd(k, li, fmul(k, fconst(c, -c->eps / (double)c->C), lw.acc_out[0]));
    }
    cg_loop_next(&lr, 0, fadd(k, lr.acc[0], LLVMBuildSelect(k->b, valid, li, fconst(c, 0), "")));
    cg_loop_end(k, &lr);
    LLVMValueRef total = c->N > 0 ? lr.acc_out[0] : fconst(c, 0);
    rd_store(k, c->xt, loss, cg_i64(k, 0), c->at,
             LLVMBuildFDiv(k->b, total, weight_sum(c, labels), ""));
    LLVMBuildBr(k->b, join);
    LLVMPositionBuilderAtEnd(k->b, join);
}

/* dloss [], probs [N,C], labels [N], weights [C]? -> dlogits [N,C]:
 * g = dloss / sum_i w[y_i];
 * dx[i,c] = g ((1-eps) w_y (p_c - [c == y]) + eps/C (p_c sum_k w_k - w_c)). */
static void emit_grad(ce_ctx *c, LLVMValueRef dloss, LLVMValueRef probs, LLVMValueRef labels,
                      LLVMValueRef dx, int64_t rows_per_task) {
    cg_kernel *k = c->k;
    LLVMValueRef g = LLVMBuildFDiv(k->b, rd_load(k, c->xt, dloss, cg_i64(k, 0), c->at),
                                   weight_sum(c, labels), "");
    LLVMValueRef wsum = fconst(c, (double)c->C);
    if (c->w && c->eps != 0.0) {
        cg_loop l;
        LLVMValueRef j = class_loop(c, &l, fconst(c, 0));
        cg_loop_next(&l, 0, fadd(k, l.acc[0], class_weight(c, j)));
        cg_loop_end(k, &l);
        wsum = l.acc_out[0];
    }
    LLVMValueRef se = fmul(k, g, fconst(c, c->eps / (double)c->C)); /* g eps/C */
    cg_loop lt, lr, lc;
    LLVMValueRef t = cg_loop_begin(k, &lt, k->begin, k->end, 1);
    LLVMValueRef r0 = rd_mul(k, t, cg_i64(k, rows_per_task));
    LLVMValueRef r1 = rd_min64(k, rd_add(k, r0, cg_i64(k, rows_per_task)), cg_i64(k, c->N));
    LLVMValueRef i = cg_loop_begin(k, &lr, r0, r1, 1);
    LLVMValueRef valid, y = row_label(c, labels, i, &valid);
    /* gy = g (1-eps) w_y, or 0 for an invalid label (se too) */
    LLVMValueRef gy = fmul(k, fmul(k, g, fconst(c, 1.0 - c->eps)), class_weight(c, y));
    gy = LLVMBuildSelect(k->b, valid, gy, fconst(c, 0), "");
    LLVMValueRef sr = LLVMBuildSelect(k->b, valid, se, fconst(c, 0), "");
    LLVMValueRef pscale = fadd(k, gy, fmul(k, sr, wsum));
    LLVMValueRef base = rd_mul(k, i, cg_i64(k, c->C));
    LLVMValueRef j = cg_loop_begin(k, &lc, cg_i64(k, 0), cg_i64(k, c->C), 1);
    LLVMValueRef p = rd_load(k, c->xt, probs, rd_add(k, base, j), c->at);
    LLVMValueRef v = fmul(k, p, pscale);
    v = LLVMBuildFSub(k->b, v, fmul(k, sr, class_weight(c, j)), "");
    LLVMValueRef hit = LLVMBuildICmp(k->b, LLVMIntEQ, j, y, "");
    v = LLVMBuildFSub(k->b, v, LLVMBuildSelect(k->b, hit, gy, fconst(c, 0), ""), "");
    rd_store(k, c->xt, dx, rd_add(k, base, j), c->at, v);
    cg_loop_end(k, &lc);
    cg_loop_end(k, &lr);
    cg_loop_end(k, &lt);
}

static gr_code ce_setup(const gr_node *n, int logits, ce_ctx *c, gr_status *st) {
    const gr_value *x = n->inputs[logits], *y = n->inputs[logits + 1];
    if (x->dtype != GR_DTYPE_F32 && x->dtype != GR_DTYPE_F64)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s of %s is not compiled", n->op_type,
                       gr_dtype_name(x->dtype));
    if (x->shape.rank != 2 || y->shape.rank != 1 || !gr_dtype_is_int(y->dtype))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s needs logits [N,C] and integer labels [N]",
                       n->op_type);
    int w = logits + 2;
    if (n->n_inputs > w && n->inputs[w] && n->inputs[w]->dtype != x->dtype)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s: class weights must be %s", n->op_type,
                       gr_dtype_name(x->dtype));
    c->xt = x->dtype;
    c->lt = y->dtype;
    c->at = rd_float_dtype(x->dtype);
    c->N = x->shape.dims[0];
    c->C = x->shape.dims[1];
    c->eps = gr_node_float(n, "label_smoothing", 0.0);
    return GR_OK;
}

gr_code cg_emit_softmax_cross_entropy(cg_module *m, const gr_node *n, const char *name,
                                      cg_kernel *k, gr_status *st) {
    ce_ctx c = {0};
    GR_TRY(ce_setup(n, 0, &c, st));
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    c.k = k;
    const gr_value *wv = n->n_inputs > 2 ? n->inputs[2] : NULL;
    c.w = wv ? cg_arg(k, wv) : NULL;
    k->n_tasks = 1;
    const gr_value *probs = n->n_outputs > 1 ? n->outputs[1] : NULL;
    emit_loss(&c, cg_arg(k, n->inputs[0]), cg_arg(k, n->inputs[1]), cg_arg(k, n->outputs[0]),
              probs ? cg_arg(k, probs) : NULL);
    return cg_kernel_end(k, st);
}

gr_code cg_emit_softmax_cross_entropy_grad(cg_module *m, const gr_node *n, const char *name,
                                           cg_kernel *k, gr_status *st) {
    ce_ctx c = {0};
    GR_TRY(ce_setup(n, 1, &c, st));
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    c.k = k;
    const gr_value *wv = n->n_inputs > 3 ? n->inputs[3] : NULL;
    c.w = wv ? cg_arg(k, wv) : NULL;
    /* blocks of >= 64K elements, so the O(N) divisor per task stays cheap */
    int64_t rows = c.C > 0 ? (65536 + c.C - 1) / c.C : c.N;
    if (rows < 1) rows = 1;
    k->n_tasks = c.N > 0 && c.C > 0 ? (c.N + rows - 1) / rows : 0;
    if (k->n_tasks > 0)
        emit_grad(&c, cg_arg(k, n->inputs[0]), cg_arg(k, n->inputs[1]), cg_arg(k, n->inputs[2]),
                  cg_arg(k, n->outputs[0]), rows);
    return cg_kernel_end(k, st);
}
