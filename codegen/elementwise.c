/* elementwise.c: the broadcasting loop driver of the elementwise family and
 * its emitters. Dims of size 1 are dropped and adjacent dims merged where
 * every operand is contiguous or broadcast across both, leaving rows of a
 * contiguous innermost dim (operand stride 1 or 0) whose index arithmetic
 * is done once per row. Tasks are chunks of rows or of the flat range. */
#include <string.h>

#include "codegen/elementwise.h"

#define EW_CHUNK 32768 /* elements per task, about */

typedef struct {
    int rank;                              /* after coalescing */
    int64_t dims[GR_MAX_RANK];
    int64_t strides[CG_MAX_ARGS][GR_MAX_RANK]; /* per operand, 0 = broadcast */
} ew_layout;

gr_code cg_ew_operand_strides(const gr_shape *out, const gr_value *v, int64_t *s,
                               gr_status *st) {
    int64_t own[GR_MAX_RANK];
    gr_shape_strides(&v->shape, own);
    int off = out->rank - v->shape.rank;
    for (int i = 0; i < -off; i++) /* extra leading dims must be 1 (PRelu slope [1], X []) */
        if (v->shape.dims[i] != 1)
            return gr_fail(st, GR_ERR_BAD_MODEL, "operand '%s' has a higher rank than the output",
                           v->name);
    for (int i = 0; i < out->rank; i++) {
        int od = i - off;
        if (od < 0 || v->shape.dims[od] == 1) s[i] = 0;
        else if (v->shape.dims[od] == out->dims[i]) s[i] = own[od];
        else
            return gr_fail(st, GR_ERR_BAD_MODEL, "operand '%s' does not broadcast to the output",
                           v->name);
    }
    return GR_OK;
}

static gr_code make_layout(const gr_shape *out, int n_ops, gr_value *const *ops,
                           ew_layout *lay, gr_status *st) {
    int64_t s[CG_MAX_ARGS][GR_MAX_RANK];
    for (int j = 0; j < n_ops; j++)
        if (ops[j]) GR_TRY(cg_ew_operand_strides(out, ops[j], s[j], st));
    lay->rank = 0;
    for (int i = 0; i < out->rank; i++) {
        if (out->dims[i] == 1) continue;
        int r = lay->rank;
        int merge = r > 0;
        for (int j = 0; j < n_ops && merge; j++)
            if (ops[j]) merge = lay->strides[j][r - 1] == s[j][i] * out->dims[i];
        if (merge) {
            lay->dims[r - 1] *= out->dims[i];
            for (int j = 0; j < n_ops; j++) lay->strides[j][r - 1] = ops[j] ? s[j][i] : 0;
            continue;
        }
        lay->dims[r] = out->dims[i];
        for (int j = 0; j < n_ops; j++) lay->strides[j][r] = ops[j] ? s[j][i] : 0;
        lay->rank++;
    }
    return GR_OK;
}

static LLVMValueRef imin(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, a, b, ""), a, b, "");
}

/* for i in [start, stop): operand j at base[j] + i * stride (0 or 1). */
static void inner_loop(cg_kernel *k, const ew_layout *lay, int n_ops, gr_value *const *ops,
                       LLVMValueRef *base, LLVMValueRef out_base, LLVMValueRef start,
                       LLVMValueRef stop, cg_ew_body_fn body, void *ctx) {
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(k, &l, start, stop, 1);
    LLVMValueRef regs[CG_MAX_ARGS];
    int last = lay->rank - 1;
    for (int j = 0; j < n_ops; j++) {
        regs[j] = NULL;
        if (!ops[j]) continue;
        int unit = last >= 0 && lay->strides[j][last] != 0;
        LLVMValueRef idx = unit ? LLVMBuildNSWAdd(k->b, base[j], i, "") : base[j];
        regs[j] = cg_load(k, ops[j]->dtype, cg_arg(k, ops[j]), idx);
    }
    body(k, ctx, regs, out_base ? LLVMBuildNSWAdd(k->b, out_base, i, "") : i);
    cg_loop_end(k, &l);
}

/* Same-shape or scalar operands: one flat range split into chunks. */
static void flat_loops(cg_kernel *k, const ew_layout *lay, int64_t numel, int n_ops,
                       gr_value *const *ops, cg_ew_body_fn body, void *ctx) {
    k->n_tasks = (numel + EW_CHUNK - 1) / EW_CHUNK;
    LLVMValueRef start = LLVMBuildMul(k->b, k->begin, cg_i64(k, EW_CHUNK), "");
    LLVMValueRef stop = imin(k, LLVMBuildMul(k->b, k->end, cg_i64(k, EW_CHUNK), ""),
                             cg_i64(k, numel));
    LLVMValueRef base[CG_MAX_ARGS];
    for (int j = 0; j < n_ops; j++) base[j] = cg_i64(k, 0);
    inner_loop(k, lay, n_ops, ops, base, NULL, start, stop, body, ctx);
}

/* Rows of the innermost dim; row -> operand offsets by div/mod per row. */
static void row_loops(cg_kernel *k, const ew_layout *lay, int64_t numel, int n_ops,
                      gr_value *const *ops, cg_ew_body_fn body, void *ctx) {
    int last = lay->rank - 1;
    int64_t inner = lay->dims[last], rows = numel / inner;
    int64_t per_task = inner >= EW_CHUNK ? 1 : EW_CHUNK / inner;
    k->n_tasks = (rows + per_task - 1) / per_task;
    LLVMValueRef r0 = LLVMBuildMul(k->b, k->begin, cg_i64(k, per_task), "");
    LLVMValueRef r1 = imin(k, LLVMBuildMul(k->b, k->end, cg_i64(k, per_task), ""), cg_i64(k, rows));
    cg_loop l;
    LLVMValueRef row = cg_loop_begin(k, &l, r0, r1, 1);
    LLVMValueRef base[CG_MAX_ARGS];
    for (int j = 0; j < n_ops; j++) base[j] = cg_i64(k, 0);
    int64_t below = 1; /* rows spanned by one step of dim d */
    for (int d = last - 1; d >= 0; d--) {
        LLVMValueRef q = below == 1 ? row : LLVMBuildUDiv(k->b, row, cg_i64(k, below), "");
        LLVMValueRef idx = d == 0 ? q : LLVMBuildURem(k->b, q, cg_i64(k, lay->dims[d]), "");
        for (int j = 0; j < n_ops; j++)
            if (ops[j] && lay->strides[j][d])
                base[j] = LLVMBuildNSWAdd(k->b, base[j],
                                          LLVMBuildNSWMul(k->b, idx, cg_i64(k, lay->strides[j][d]), ""), "");
        below *= lay->dims[d];
    }
    LLVMValueRef out_base = LLVMBuildNSWMul(k->b, row, cg_i64(k, inner), "");
    inner_loop(k, lay, n_ops, ops, base, out_base, cg_i64(k, 0), cg_i64(k, inner), body, ctx);
    cg_loop_end(k, &l);
}

gr_code cg_ew_loop(cg_kernel *k, const gr_shape *out, int n_operands,
                   gr_value *const *operands, cg_ew_body_fn body, void *ctx,
                   gr_status *st) {
    if (n_operands > CG_MAX_ARGS)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%d operands (limit %d)", n_operands, CG_MAX_ARGS);
    ew_layout lay;
    GR_TRY(make_layout(out, n_operands, operands, &lay, st));
    int64_t numel = gr_shape_numel(out);
    k->n_tasks = 1;
    if (numel <= 0) return GR_OK;
    if (lay.rank <= 1) flat_loops(k, &lay, numel, n_operands, operands, body, ctx);
    else row_loops(k, &lay, numel, n_operands, operands, body, ctx);
    return GR_OK;
}

/* --- emitters --- */

static void store_apply(cg_kernel *k, void *ctx, LLVMValueRef *regs, LLVMValueRef index) {
    const gr_node *n = ctx;
    const gr_value *y = n->outputs[0];
    cg_store(k, y->dtype, cg_arg(k, y), index, cg_ew_apply(k, n, regs));
}

int cg_ew_reads_input(const gr_node *n, int i) {
    return i < n->n_inputs && n->inputs[i] && !(n->op == GR_OP_CAST_LIKE && i == 1);
}

int cg_ew_compute_bound(gr_op op) {
    switch (op) {
    case GR_OP_EXP: case GR_OP_LOG: case GR_OP_ERF: case GR_OP_TANH: case GR_OP_SIGMOID:
    case GR_OP_ELU: case GR_OP_SELU: case GR_OP_SOFTPLUS: case GR_OP_GELU:
        return 1;
    default:
        return 0;
    }
}

/* Y = f(X1, ..., Xn) elementwise with broadcasting: one output. */
gr_code cg_emit_elementwise(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                            gr_status *st) {
    GR_TRY(cg_ew_check(n, st));
    if (n->n_inputs + 1 > CG_MAX_ARGS)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%d inputs (limit %d)", n->n_inputs, CG_MAX_ARGS - 1);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    k->wide = cg_ew_compute_bound(n->op) && n->outputs[0]->dtype == GR_DTYPE_F32;
    gr_value *operands[CG_MAX_ARGS];
    int n_operands = n->n_inputs;
    for (int i = 0; i < n_operands; i++)
        operands[i] = cg_ew_reads_input(n, i) ? n->inputs[i] : NULL;
    GR_TRY(cg_ew_loop(k, &n->outputs[0]->shape, n_operands, operands, store_apply,
                      (void *)n, st));
    return cg_kernel_end(k, st);
}

static void store_dropout(cg_kernel *k, void *ctx, LLVMValueRef *regs, LLVMValueRef index) {
    const gr_node *n = ctx;
    cg_store(k, n->outputs[0]->dtype, cg_arg(k, n->outputs[0]), index, regs[0]);
    if (n->n_outputs > 1 && n->outputs[1])
        cg_store(k, GR_DTYPE_BOOL, cg_arg(k, n->outputs[1]), index,
                 LLVMConstInt(k->m->t_i1, 1, 0));
}

/* Dropout in inference: Y = X, mask = true. Training mode with a constant
 * ratio of 0 is the same; a ratio or training_mode known only at run time
 * goes to cg_emit_dropout_runtime. (Training graphs replace Dropout by a
 * DropoutMask product: passes/train_mode.c.) */
gr_code cg_emit_dropout(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                        gr_status *st) {
    const gr_value *ratio = n->n_inputs > 1 ? n->inputs[1] : NULL;
    const gr_value *train = n->n_inputs > 2 ? n->inputs[2] : NULL;
    int training = 0;
    if (train && (!gr_value_is_constant(train) || gr_value_numel(train) != 1))
        return cg_emit_dropout_runtime(m, n, name, k, st);
    if (train) training = gr_dtype_load_f64(train->dtype, train->data, 0) != 0;
    if (training) {
        if (ratio && (!gr_value_is_constant(ratio) || gr_value_numel(ratio) != 1))
            return cg_emit_dropout_runtime(m, n, name, k, st);
        double r = ratio ? gr_dtype_load_f64(ratio->dtype, ratio->data, 0) : 0.5;
        if (r > 0) return cg_emit_dropout_runtime(m, n, name, k, st);
    }
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    gr_value *x = n->inputs[0];
    GR_TRY(cg_ew_loop(k, &n->outputs[0]->shape, 1, &x, store_dropout, (void *)n, st));
    return cg_kernel_end(k, st);
}
