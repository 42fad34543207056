/* fused.c: one kernel for a fusion group of elementwise nodes (passes/
 * fuse.c): a single loop over the root's output loads the group's external
 * operands (broadcast numpy style), evaluates every member's expression in
 * order on registers, and stores only the root's output. */
#include "codegen/cg_internal.h"
#include "codegen/elementwise.h"

typedef struct {
    const gr_node *const *members; /* topological order; the root is last */
    int n_members;
    int n_operands;
    gr_value *operands[CG_MAX_ARGS];
    LLVMValueRef results[CG_MAX_GROUP];
} group;

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

static void evaluate(cg_kernel *k, void *ctx, LLVMValueRef *regs, LLVMValueRef index) {
    group *gp = ctx;
    for (int i = 0; i < gp->n_members; i++) {
        const gr_node *n = gp->members[i];
        LLVMValueRef operands[CG_MAX_ARGS] = {0};
        for (int j = 0; j < n->n_inputs && j < CG_MAX_ARGS; j++) {
            const gr_value *v = n->inputs[j];
            int m = member_index(gp, v);
            if (!v || !cg_ew_reads_input(n, j)) operands[j] = NULL;
            else operands[j] = m >= 0 ? gp->results[m] : regs[operand_index(gp, v)];
        }
        gp->results[i] = cg_ew_apply(k, n, operands);
    }
    const gr_value *y = gp->members[gp->n_members - 1]->outputs[0];
    cg_store(k, y->dtype, cg_arg(k, y), index, gp->results[gp->n_members - 1]);
}

gr_code cg_group_check(const gr_node *const *members, int n_members, gr_status *st) {
    if (n_members > CG_MAX_GROUP)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "fusion group of %d nodes (limit %d)",
                       n_members, CG_MAX_GROUP);
    for (int i = 0; i < n_members; i++) GR_TRY(cg_ew_check(members[i], st));
    return GR_OK;
}

gr_code cg_emit_group(cg_module *m, const gr_node *const *members, int n_members,
                      const char *name, cg_kernel *k, gr_status *st) {
    group gp = {.members = members, .n_members = n_members};
    int wide = 0;
    for (int i = 0; i < n_members; i++) {
        const gr_node *n = members[i];
        wide |= cg_ew_compute_bound(n->op);
        for (int j = 0; j < n->n_inputs; j++) {
            gr_value *v = n->inputs[j];
            if (!v || !cg_ew_reads_input(n, j) || member_index(&gp, v) >= 0 ||
                operand_index(&gp, v) >= 0)
                continue;
            if (gp.n_operands == CG_MAX_ARGS - 1)
                return gr_fail(st, GR_ERR_UNSUPPORTED, "fusion group needs too many buffers");
            gp.operands[gp.n_operands++] = v;
        }
    }
    const gr_value *y = members[n_members - 1]->outputs[0];
    const gr_value *args[CG_MAX_ARGS];
    for (int i = 0; i < gp.n_operands; i++) args[i] = gp.operands[i];
    args[gp.n_operands] = y;
    GR_TRY(cg_kernel_begin(m, k, name, gp.n_operands + 1, args, st));
    k->wide = wide && y->dtype == GR_DTYPE_F32;
    GR_TRY(cg_ew_loop(k, &y->shape, gp.n_operands, gp.operands, evaluate, &gp, st));
    return cg_kernel_end(k, st);
}
