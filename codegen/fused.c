/* fused.c: one kernel for a fusion group (passes/fuse.c).
 *
 * A group of elementwise nodes is a single loop over the root's output: it
 * loads the group's external operands (broadcast numpy style), evaluates
 * every member's expression in order on registers, and stores only the
 * root's output.
 *
 * A group headed by a Conv, MatMul or Gemm (bias, activation, residual add
 * after it) is that node's kernel with an epilogue: each micro-tile of the
 * head's output (or output plane, for the direct depthwise Conv), once
 * final, is still in cache when the epilogue reads it back, evaluates the
 * other members and writes the root's value in its place. The head computes straight into
 * the root's buffer (the two have the same shape), so its output never
 * takes memory of its own. Operand offsets: the GEMM's columns are the
 * trailing dims of the output (a Conv's spatial dims, a MatMul's last),
 * so an operand either stays put along a row of the tile (broadcast over
 * those dims: a bias), or runs along it (a residual), computed once per
 * row; anything else is computed per element.
 *
 * A group whose root is a reduction (a prologue) is the reduction's
 * kernel (reduce.c) reading the group's operands instead of its data
 * input: at each element it would load, it evaluates the other members
 * (cg_prologue_value). The data input never takes memory. */
#include "codegen/cg_internal.h"
#include "codegen/elementwise.h"
#include "codegen/gemm.h"

typedef struct {
    const gr_node *const *members; /* topological order; the root is last */
    int n_members;
    int n_operands;
    gr_value *operands[CG_MAX_ARGS];
    LLVMValueRef results[CG_MAX_GROUP];
} group;

/* How an epilogue operand's offset follows the output's flat index along
 * one row of a GEMM tile. */
typedef enum { EP_ROW_CONST, EP_ROW_CONTIG, EP_GENERIC } ep_kind;

struct cg_prologue {
    group gp; /* the members but the root: the last computes its data input */
};

struct cg_epilogue {
    const gr_node *head;
    group gp;
    const gr_value *y;   /* the root's output */
    ep_kind kind[CG_MAX_ARGS];
};

static int operand_index(const group *gp, const gr_value *v) {
    for (int i = 0; i < gp->n_operands; i++)
        if (gp->operands[i] == v) return i;
    return -1;
}

static int member_index(const group *gp, const gr_value *v) {
    for (int i = 0; i < gp->n_members; i++)
        if (v && v->producer == gp->members[i]) return i;
    return -1;
}

/* Evaluates the members in order (all but skip, whose result is set) and
 * returns the root's value. */
static LLVMValueRef evaluate_members(cg_kernel *k, group *gp, LLVMValueRef *regs, int skip) {
    for (int i = 0; i < gp->n_members; i++) {
        const gr_node *n = gp->members[i];
        if (i == skip) continue;
        LLVMValueRef operands[CG_MAX_ARGS] = {0};
        for (int j = 0; j < n->n_inputs && j < CG_MAX_ARGS; j++) {
            const gr_value *v = n->inputs[j];
            int m = member_index(gp, v);
            if (!v || !cg_ew_reads_input(n, j)) operands[j] = NULL;
            else operands[j] = m >= 0 ? gp->results[m] : regs[operand_index(gp, v)];
        }
        gp->results[i] = cg_ew_apply(k, n, operands);
    }
    return gp->results[gp->n_members - 1];
}

static void evaluate(cg_kernel *k, void *ctx, LLVMValueRef *regs, LLVMValueRef index) {
    group *gp = ctx;
    const gr_value *y = gp->members[gp->n_members - 1]->outputs[0];
    cg_store(k, y->dtype, cg_arg(k, y), index, evaluate_members(k, gp, regs, -1));
}

static int is_elementwise(const gr_node *n) {
    return (gr_op_info_of(n->op)->flags & GR_OPF_ELEMENTWISE) != 0;
}

int cg_epilogue_head(const gr_node *n) {
    if (n->n_outputs != 1 || !n->outputs[0]) return 0;
    gr_dtype dt = n->outputs[0]->dtype;
    if (dt != GR_DTYPE_F32 && dt != GR_DTYPE_F64) return 0;
    return n->op == GR_OP_CONV || n->op == GR_OP_MATMUL || n->op == GR_OP_GEMM;
}

gr_code cg_group_check(const gr_node *const *members, int n_members, gr_status *st) {
    if (n_members > CG_MAX_GROUP)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "fusion group of %d nodes (limit %d)",
                       n_members, CG_MAX_GROUP);
    int heads = 0;
    const gr_node *root = members[n_members - 1];
    int prologue = !is_elementwise(root) && cg_prologue_root(root) && n_members >= 2 &&
                   members[n_members - 2]->outputs[0] == root->inputs[0];
    const gr_value *y = prologue ? root->inputs[0] : root->outputs[0];
    for (int i = 0; i < n_members; i++) {
        const gr_node *n = members[i];
        if (is_elementwise(n)) {
            GR_TRY(cg_ew_check(n, st));
            continue;
        }
        if (prologue && i == n_members - 1) continue;
        if (prologue || ++heads > 1 || i == n_members - 1 || !cg_epilogue_head(n) ||
            n->outputs[0]->dtype != y->dtype || !gr_shape_equal(&n->outputs[0]->shape, &y->shape))
            return gr_fail(st, GR_ERR_UNSUPPORTED, "node '%s' (%s) cannot head a fusion group",
                           n->name, n->op_type);
    }
    return GR_OK;
}

/* The group's external operands (inputs read from outside the group). */
static gr_code collect_operands(group *gp, gr_status *st) {
    for (int i = 0; i < gp->n_members; i++) {
        const gr_node *n = gp->members[i];
        if (!is_elementwise(n)) continue; /* the head reads its own inputs */
        for (int j = 0; j < n->n_inputs; j++) {
            gr_value *v = n->inputs[j];
            if (!v || !cg_ew_reads_input(n, j) || member_index(gp, v) >= 0 ||
                operand_index(gp, v) >= 0)
                continue;
            if (gp->n_operands == CG_MAX_ARGS - 1)
                return gr_fail(st, GR_ERR_UNSUPPORTED, "fusion group needs too many buffers");
            gp->operands[gp->n_operands++] = v;
        }
    }
    return GR_OK;
}

/* --- prologues --- */

int cg_prologue_n_operands(const struct cg_prologue *p) { return p->gp.n_operands; }

gr_value *cg_prologue_operand(const struct cg_prologue *p, int i) { return p->gp.operands[i]; }

LLVMValueRef cg_prologue_value(cg_kernel *k, struct cg_prologue *p, LLVMValueRef *regs) {
    return evaluate_members(k, &p->gp, regs, -1);
}

/* The reduction root's kernel, its data input computed by the others. */
static gr_code emit_with_prologue(cg_module *m, const gr_node *const *members, int n_members,
                                  const char *name, cg_kernel *k, gr_status *st) {
    struct cg_prologue p = {.gp = {.members = members, .n_members = n_members - 1}};
    GR_TRY(collect_operands(&p.gp, st));
    return cg_emit_reduce_prologue(m, members[n_members - 1], &p, name, k, st);
}

/* --- epilogues --- */

void cg_epilogue_values(const struct cg_epilogue *e, const gr_value **values, int *count) {
    for (int i = 0; i < e->gp.n_operands; i++) {
        int seen = 0;
        for (int j = 0; j < *count && !seen; j++) seen = values[j] == e->gp.operands[i];
        if (!seen && *count < CG_MAX_ARGS) values[(*count)++] = e->gp.operands[i];
    }
    if (*count < CG_MAX_ARGS) values[(*count)++] = e->y;
}

const gr_value *cg_epilogue_alias(const cg_kernel *k, const gr_value *v) {
    return k->epi && v == k->epi->head->outputs[0] ? k->epi->y : v;
}

/* Element offset in operand v of the output's flat index: each output dim
 * d contributes (flat / stride_d) % dim_d times v's stride there (0 where v
 * broadcasts). Static shapes: LLVM strength-reduces the divisions. */
static LLVMValueRef operand_offset(cg_kernel *k, const gr_shape *out, const gr_value *v,
                                   LLVMValueRef flat) {
    const gr_shape *vs = &v->shape;
    LLVMValueRef off = cg_i64(k, 0);
    int64_t out_stride = 1, v_stride = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int vd = d - (out->rank - vs->rank);
        int64_t vdim = vd >= 0 ? vs->dims[vd] : 1;
        if (vdim != 1) {
            LLVMValueRef c = LLVMBuildUDiv(k->b, flat, cg_i64(k, out_stride), "");
            c = LLVMBuildURem(k->b, c, cg_i64(k, out->dims[d]), "");
            off = LLVMBuildAdd(k->b, off, LLVMBuildMul(k->b, c, cg_i64(k, v_stride), ""), "");
        }
        out_stride *= out->dims[d];
        v_stride *= vdim;
    }
    return off;
}

/* Classifies each operand along the tile rows: the columns are the
 * trailing output dims whose extents multiply to n_cols. */
static void classify(struct cg_epilogue *e, int64_t n_cols) {
    const gr_shape *out = &e->y->shape;
    int first = out->rank;
    int64_t prod = 1;
    while (first > 0 && prod < n_cols) prod *= out->dims[--first];
    for (int i = 0; i < e->gp.n_operands; i++) {
        const gr_shape *vs = &e->gp.operands[i]->shape;
        int all_one = 1, all_full = 1;
        for (int d = first; d < out->rank; d++) {
            int vd = d - (out->rank - vs->rank);
            int64_t vdim = vd >= 0 ? vs->dims[vd] : 1;
            all_one &= vdim == 1;
            all_full &= vdim == out->dims[d];
        }
        if (prod != n_cols) e->kind[i] = EP_GENERIC;
        else e->kind[i] = all_one ? EP_ROW_CONST : all_full ? EP_ROW_CONTIG : EP_GENERIC;
    }
}

/* for r < rows, jj < cols: y[idx] = group(y[idx], operands at idx), with
 * idx = c_off + (i0 + r) * c_rs + j0 + jj. */
static void run_epilogue(cg_kernel *k, const cg_gemm *g, LLVMValueRef i0, LLVMValueRef rows,
                         LLVMValueRef j0, LLVMValueRef cols) {
    struct cg_epilogue *e = (struct cg_epilogue *)k->epi;
    group *gp = &e->gp;
    int head = member_index(gp, e->head->outputs[0]);
    const gr_shape *out = &e->y->shape;
    LLVMValueRef y = cg_arg(k, e->y), base[CG_MAX_ARGS], regs[CG_MAX_ARGS];
    cg_loop lr, lc;
    LLVMValueRef r = cg_loop_begin(k, &lr, cg_i64(k, 0), rows, 1);
    LLVMValueRef row = LLVMBuildAdd(k->b, i0, r, "");
    LLVMValueRef flat0 = LLVMBuildAdd(
        k->b, LLVMBuildAdd(k->b, g->c_off, LLVMBuildMul(k->b, row, cg_i64(k, g->c_rs), ""), ""),
        j0, "");
    for (int i = 0; i < gp->n_operands; i++)
        base[i] = e->kind[i] == EP_GENERIC ? NULL : operand_offset(k, out, gp->operands[i], flat0);
    LLVMValueRef jj = cg_loop_begin(k, &lc, cg_i64(k, 0), cols, 1);
    LLVMValueRef idx = LLVMBuildAdd(k->b, flat0, jj, "");
    for (int i = 0; i < gp->n_operands; i++) {
        const gr_value *v = gp->operands[i];
        LLVMValueRef off = e->kind[i] == EP_ROW_CONST    ? base[i]
                           : e->kind[i] == EP_ROW_CONTIG ? LLVMBuildAdd(k->b, base[i], jj, "")
                                                         : operand_offset(k, out, v, idx);
        regs[i] = cg_load(k, v->dtype, cg_arg(k, v), off);
    }
    gp->results[head] = cg_load(k, e->y->dtype, y, idx);
    cg_store(k, e->y->dtype, y, idx, evaluate_members(k, gp, regs, head));
    cg_loop_end(k, &lc);
    cg_loop_end(k, &lr);
}

void cg_epilogue_attach(cg_kernel *k, cg_gemm *g, LLVMValueRef c_off) {
    if (!k->epi) return;
    classify((struct cg_epilogue *)k->epi, g->N);
    g->post = run_epilogue;
    g->c_off = c_off;
}

void cg_epilogue_plane(cg_kernel *k, LLVMValueRef offset, int64_t len) {
    cg_gemm g; /* one row of len columns */
    cg_gemm_init(&g, k->epi->y->dtype, 1, len, 0);
    cg_epilogue_attach(k, &g, offset);
    run_epilogue(k, &g, cg_i64(k, 0), cg_i64(k, 1), cg_i64(k, 0), cg_i64(k, len));
}

static gr_code emit_with_epilogue(cg_module *m, const gr_node *const *members, int n_members,
                                  const char *name, cg_kernel *k, gr_status *st) {
    struct cg_epilogue e = {.gp = {.members = members, .n_members = n_members}};
    for (int i = 0; i < n_members; i++)
        if (!is_elementwise(members[i])) e.head = members[i];
    e.y = members[n_members - 1]->outputs[0];
    GR_TRY(collect_operands(&e.gp, st));
    cg_emit_fn emit = cg_emitter(e.head->op);
    m->epi = &e;
    gr_code rc = emit(m, e.head, name, k, st);
    m->epi = NULL;
    k->epi = NULL; /* e lives on this stack frame only */
    return rc;
}

gr_code cg_emit_group(cg_module *m, const gr_node *const *members, int n_members,
                      const char *name, cg_kernel *k, gr_status *st) {
    if (!is_elementwise(members[n_members - 1]))
        return emit_with_prologue(m, members, n_members, name, k, st);
    for (int i = 0; i < n_members; i++)
        if (!is_elementwise(members[i]))
            return emit_with_epilogue(m, members, n_members, name, k, st);
    group gp = {.members = members, .n_members = n_members};
    int wide = 0;
    for (int i = 0; i < n_members; i++) wide |= cg_ew_compute_bound(members[i]->op);
    GR_TRY(collect_operands(&gp, st));
    const gr_value *y = members[n_members - 1]->outputs[0];
    const gr_value *args[CG_MAX_ARGS];
    for (int i = 0; i < gp.n_operands; i++) args[i] = gp.operands[i];
    args[gp.n_operands] = y;
    GR_TRY(cg_kernel_begin(m, k, name, gp.n_operands + 1, args, st));
    k->wide = wide && y->dtype == GR_DTYPE_F32;
    GR_TRY(cg_ew_loop(k, &y->shape, gp.n_operands, gp.operands, evaluate, &gp, st));
    return cg_kernel_end(k, st);
}
