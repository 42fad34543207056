/* stats.c: the numbers `graft inspect` prints: op histogram (with the first
 * node of each type, so unsupported ops can be located) and parameter
 * counts grouped by name prefix. */
#include <stdlib.h>
#include <string.h>

#include "ir/gr_ir.h"

static const char *op_key(gr_graph *g, const gr_node *n) {
    if (!n->domain || !*n->domain) return n->op_type;
    return gr_arena_printf(g->arena, "%s.%s", n->domain, n->op_type);
}

static const char *prefix_of(gr_graph *g, const char *name) {
    size_t len = strcspn(name, ".");
    if (!name[len]) len = strcspn(name, "_");
    char *p = gr_arena_alloc(g->arena, len + 1);
    if (p) memcpy(p, name, len);
    return p;
}

/* Linear probing over a small array is enough: tens of distinct keys. */
static gr_stat_entry *entry_for(gr_stat_entry *items, int *n, const char *key) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(items[i].key, key)) return &items[i];
    gr_stat_entry *e = &items[(*n)++];
    e->key = key;
    return e;
}

static int by_count(const void *a, const void *b) {
    const gr_stat_entry *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->key, y->key);
}

gr_code gr_graph_stats_compute(gr_graph *g, gr_graph_stats *stats,
                               gr_status *st) {
    memset(stats, 0, sizeof *stats);
    stats->ops = gr_arena_alloc(g->arena, sizeof(gr_stat_entry) * (size_t)(g->n_nodes + 1));
    stats->groups = gr_arena_alloc(g->arena, sizeof(gr_stat_entry) * (size_t)(g->n_values + 1));
    if (!stats->ops || !stats->groups)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory computing statistics");
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->dead) continue;
        const char *key = op_key(g, n);
        if (!key) return gr_fail(st, GR_ERR_NOMEM, "out of memory computing statistics");
        gr_stat_entry *e = entry_for(stats->ops, &stats->n_ops, key);
        if (!e->first) {
            e->first = n;
            if (n->op == GR_OP_UNKNOWN) stats->n_unsupported++;
        }
        e->count++;
    }
    qsort(stats->ops, (size_t)stats->n_ops, sizeof *stats->ops, by_count);
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (v->kind != GR_VALUE_PARAM) continue;
        const char *key = prefix_of(g, v->name);
        if (!key) return gr_fail(st, GR_ERR_NOMEM, "out of memory computing statistics");
        gr_stat_entry *e = entry_for(stats->groups, &stats->n_groups, key);
        e->count += gr_value_numel(v);
        e->bytes += (int64_t)v->nbytes;
        stats->n_params++;
    }
    gr_graph_param_stats(g, &stats->param_count, &stats->param_bytes);
    return GR_OK;
}
