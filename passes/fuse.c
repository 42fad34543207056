/* fuse.c: groups chains and trees of elementwise nodes so that codegen
 * compiles each group into one loop: the intermediate values never reach
 * memory. A group grows backwards from its last node (the root) through
 * producers whose output has the group's shape and no other use. One Conv,
 * MatMul or Gemm may head a group (its float output feeding the group
 * alone): codegen runs the rest as that kernel's epilogue (or compiles the
 * head on its own when its kernel takes none). The group does not grow
 * past a head.
 * A reduction (ReduceX with constant axes, GlobalAveragePool,
 * GlobalMaxPool) may be the root of a group instead: its other members are
 * the elementwise producers of its data input (the group's shape is that
 * input's), and codegen evaluates them at each element the reduction
 * reads (a prologue). Such a group has no head: a Conv, MatMul or Gemm
 * before the chain runs alone (the traffic is the same as with the chain
 * in its epilogue: one tensor written, one read back), and since roots are
 * taken from the last node backwards the reduction claims the chain first.
 * Requires: shapes inferred and static. Guarantees: node->group set (0 for
 * nodes alone); every member but the root is elementwise or the head; a
 * group's values other than the root's outputs are used only inside the
 * group and are not graph outputs; order unchanged. */
#include <string.h>

#include "passes/gr_passes.h"

#define MAX_MEMBERS 64
#define MAX_OPERANDS 48 /* external inputs of one group */

/* One output, pure elementwise, and an expression codegen can chain. */
static int fusable(const gr_node *n) {
    if (n->op == GR_OP_UNKNOWN || n->n_outputs != 1 || !n->outputs[0]) return 0;
    if (!(gr_op_info_of(n->op)->flags & GR_OPF_ELEMENTWISE)) return 0;
    /* Identity is a copy; CastLike reads only its first input; Dropout has
     * a mask. Their single-node kernels are as good. */
    if (n->op == GR_OP_IDENTITY || n->op == GR_OP_CAST_LIKE || n->op == GR_OP_DROPOUT) return 0;
    return gr_shape_is_static(&n->outputs[0]->shape);
}

/* A node whose kernel may run the group as its epilogue. */
static int head(const gr_node *n) {
    return (n->op == GR_OP_CONV || n->op == GR_OP_MATMUL || n->op == GR_OP_GEMM) &&
           n->n_outputs == 1 && n->outputs[0] && gr_dtype_is_float(n->outputs[0]->dtype) &&
           gr_shape_is_static(&n->outputs[0]->shape);
}

/* A reduction whose data input codegen can compute in its loop: the
 * kernels of codegen/reduce.c, with constant axes (a computed axes input
 * or noop_with_empty_axes with none keeps the node alone). A reduction to
 * fewer than PROLOGUE_MIN_OUTPUTS values of a large input stays alone too:
 * its kernel has about one task per output, and the chain would lose the
 * threads its own kernel spreads over (chunks of PROLOGUE_ONE_TASK). */
#define PROLOGUE_MIN_OUTPUTS 8
#define PROLOGUE_ONE_TASK 32768
static int reduction_root(const gr_node *n) {
    if (n->n_outputs != 1 || !n->outputs[0] || !n->inputs[0]) return 0;
    if (gr_value_numel(n->outputs[0]) < PROLOGUE_MIN_OUTPUTS &&
        gr_value_numel(n->inputs[0]) > PROLOGUE_ONE_TASK)
        return 0;
    if (n->op == GR_OP_GLOBAL_AVERAGE_POOL || n->op == GR_OP_GLOBAL_MAX_POOL)
        return gr_shape_is_static(&n->inputs[0]->shape);
    if (!(gr_op_info_of(n->op)->flags & GR_OPF_REDUCE)) return 0;
    const gr_value *axes = n->n_inputs > 1 ? n->inputs[1] : NULL;
    int64_t ints[GR_MAX_RANK + 1];
    int64_t count = axes ? gr_value_const_ints(axes, ints, GR_MAX_RANK + 1) : 0;
    if (count < 0 || (count == 0 && gr_node_int(n, "noop_with_empty_axes", 0))) return 0;
    return gr_shape_is_static(&n->inputs[0]->shape);
}

/* Distinct values feeding the group from outside. */
static int count_operands(const gr_node *const *members, int n_members) {
    const gr_value *seen[MAX_MEMBERS * 8];
    int count = 0;
    for (int i = 0; i < n_members; i++)
        for (int j = 0; j < members[i]->n_inputs; j++) {
            const gr_value *v = members[i]->inputs[j];
            int internal = 0, dup = 0;
            if (!v) continue;
            for (int k = 0; k < n_members && !internal; k++) internal = v->producer == members[k];
            for (int k = 0; k < count && !dup; k++) dup = seen[k] == v;
            if (!internal && !dup && count < MAX_MEMBERS * 8) seen[count++] = v;
        }
    return count;
}

static int is_graph_output(const gr_graph *g, const gr_value *v) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v) return 1;
    return 0;
}

/* Absorbs producers of the group's inputs while they qualify: y is the
 * value whose shape members have (the root's output, or a reduction
 * root's data input, the only input it grows through). */
static int grow(gr_graph *g, const int *uses, gr_node **members, int n_members, int id) {
    int reduce = !fusable(members[0]);
    const gr_value *y = reduce ? members[0]->inputs[0] : members[0]->outputs[0];
    int has_head = reduce; /* a prologue group takes no head */
    for (int m = 0; m < n_members; m++) {
        gr_node *n = members[m];
        if (m > 0 && !fusable(n)) continue; /* the head: the group stops there */
        int n_inputs = m == 0 && reduce ? 1 : n->n_inputs;
        for (int j = 0; j < n_inputs && n_members < MAX_MEMBERS; j++) {
            gr_value *v = n->inputs[j];
            gr_node *p = v ? v->producer : NULL;
            if (!p || p->group || uses[v->id] != 1 || is_graph_output(g, v) ||
                !gr_shape_equal(&p->outputs[0]->shape, &y->shape))
                continue;
            int as_head = !fusable(p) && !has_head && head(p) && p->outputs[0]->dtype == y->dtype;
            if (!fusable(p) && !as_head) continue;
            members[n_members] = p;
            if (count_operands((const gr_node *const *)members, n_members + 1) > MAX_OPERANDS)
                continue;
            p->group = id;
            n_members++;
            has_head |= as_head;
        }
    }
    return n_members;
}

gr_code gr_pass_fuse(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    (void)opts;
    int *uses = gr_calloc((size_t)g->n_values + 1, sizeof(int));
    gr_node **members = gr_calloc(MAX_MEMBERS + 1, sizeof(gr_node *));
    if (!uses || !members) {
        gr_free(uses);
        gr_free(members);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory fusing");
    }
    gr_graph_count_uses(g, uses);
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->group = 0;
    int next_id = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        gr_node *root = g->nodes[i];
        if (root->dead || root->group || !(fusable(root) || reduction_root(root))) continue;
        root->group = next_id;
        members[0] = root;
        int n = grow(g, uses, members, 1, next_id);
        if (n == 1) root->group = 0; /* alone: an ordinary kernel */
        else next_id++;
    }
    gr_free(uses);
    gr_free(members);
    return GR_OK;
}
