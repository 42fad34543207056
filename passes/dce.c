/* dce.c: dead code elimination. A node stays if one of its outputs is a
 * graph output or feeds a node that stays.
 * Requires: a graph in topological order.
 * Guarantees: every remaining node contributes to a graph output or a
 * training root (loss, gradients, updates); values
 * nothing refers to (unused parameters too) are dropped by compaction;
 * order is kept. */
#include "passes/passes_internal.h"

gr_code gr_pass_dce(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    (void)opts;
    char *live = gr_calloc((size_t)g->n_values + 1, 1);
    if (!live) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_outputs; i++) live[g->outputs[i]->id] = 1;
    if (g->loss) live[g->loss->id] = 1;
    for (int i = 0; i < g->n_grads; i++) live[g->grads[i].grad->id] = 1;
    for (int i = 0; i < g->n_updates; i++) live[g->updates[i].next->id] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        gr_node *n = g->nodes[i];
        if (n->dead) continue;
        int used = 0;
        for (int j = 0; j < n->n_outputs && !used; j++)
            used = n->outputs[j] && live[n->outputs[j]->id];
        if (!used) {
            gr_node_remove(g, n);
            continue;
        }
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j]) live[n->inputs[j]->id] = 1;
    }
    gr_free(live);
    return gr_passes_compact(g, st);
}
