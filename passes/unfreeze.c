/* unfreeze.c: progressive unfreezing (ULMFiT): the model's trainable
 * parameters split into K groups in depth order, and the schedule that
 * makes one more group trainable every E epochs.
 *
 * Layers: a parameter belongs to the first node that uses it together
 * with data (a node whose inputs are all parameters or constants, like
 * Transpose(W), passes its parameters on to its output). Parameters used by
 * one node are one layer; a BatchNormalization, Add or Mul whose data
 * input is the only use of a layer node's output joins that layer (Conv +
 * BatchNormalization, MatMul + bias Add). Layers are ordered by the
 * position of their first node in the graph's topological order.
 * Groups: the new head's layers (GR_ORIGIN_HEAD) are the last group; the
 * other L layers are cut into the remaining n groups in order, as evenly as
 * the count allows: layer j (0-based) goes to group floor(j*n/L), so the
 * groups nearer the input get the extra layers.
 * Requires: the "train" pass has marked the trainable parameters.
 * Guarantees: every trainable parameter is in exactly one group; groups
 * are never empty. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes_internal.h"

struct gr_unfreeze {
    gr_arena *arena;
    gr_unfreeze_opts opts;
    int n_groups, n_params;
    const char **names;     /* n_params, in depth order (copies) */
    int *group;             /* n_params: 0 = nearest the input */
};

/* --------------------------------------------------------------- layers */

typedef struct {
    const gr_graph *g;
    int *parent;     /* union-find over value ids */
    char *derived;   /* value computed from parameters and constants only */
    int *label;      /* per node: a value of its layer, or -1 */
    int *uses;       /* per value: node inputs and graph outputs using it */
} layers;

static int find(int *parent, int i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
}

static void join(int *parent, int a, int b) {
    a = find(parent, a), b = find(parent, b);
    if (a != b) parent[a > b ? a : b] = a < b ? a : b;
}

/* A value that carries trainable parameters into a node. */
static int carries(const layers *L, const gr_value *v) {
    return v && ((v->kind == GR_VALUE_PARAM && v->trainable) ||
                 (v->kind == GR_VALUE_NODE && L->derived[v->id]));
}

static int is_data(const layers *L, const gr_value *v) {
    return v && v->kind != GR_VALUE_PARAM && v->kind != GR_VALUE_CONST && !L->derived[v->id];
}

/* Joins a BatchNormalization / Add / Mul following a layer node into it. */
static void join_follower(layers *L, const gr_node *n, int own) {
    if (n->op != GR_OP_BATCH_NORM && n->op != GR_OP_ADD && n->op != GR_OP_MUL) return;
    const gr_value *x = NULL;
    for (int j = 0; j < n->n_inputs; j++) {
        if (!is_data(L, n->inputs[j])) continue;
        if (x) return; /* two data inputs (a residual Add) */
        x = n->inputs[j];
    }
    if (x && x->producer && L->uses[x->id] == 1 && L->label[x->producer->id] >= 0)
        join(L->parent, own, L->label[x->producer->id]);
}

static void label_node(layers *L, const gr_node *n) {
    int own = -1, data = 0;
    for (int j = 0; j < n->n_inputs; j++) {
        const gr_value *v = n->inputs[j];
        data |= is_data(L, v);
        if (!carries(L, v)) continue;
        if (own < 0) own = v->id;
        else join(L->parent, own, v->id);
    }
    if (!data) {
        for (int j = 0; j < n->n_outputs; j++) {
            if (!n->outputs[j]) continue;
            L->derived[n->outputs[j]->id] = 1;
            if (own >= 0) join(L->parent, own, n->outputs[j]->id);
        }
        return;
    }
    if (own < 0) return;
    L->label[n->id] = own;
    join_follower(L, n, own);
}

/* pos[root] = index of the first node of each layer; INT_MAX if unused. */
static void layer_positions(layers *L, int *pos) {
    const gr_graph *g = L->g;
    for (int i = 0; i < g->n_values; i++) pos[i] = INT_MAX;
    for (int i = g->n_nodes - 1; i >= 0; i--)
        if (L->label[i] >= 0) pos[find(L->parent, L->label[i])] = i;
}

/* ------------------------------------------------------------- grouping */

typedef struct {
    int root, pos, head;
} layer;

static int by_position(const void *a, const void *b) {
    const layer *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return (x->root > y->root) - (x->root < y->root);
}

/* The distinct layers of the trainable parameters, sorted by position. */
static int collect_layers(layers *L, const int *pos, layer *out) {
    const gr_graph *g = L->g;
    int n = 0;
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (v->kind != GR_VALUE_PARAM || !v->trainable) continue;
        int r = find(L->parent, i), k = 0;
        while (k < n && out[k].root != r) k++;
        if (k == n) out[n++] = (layer){r, pos[r], 0};
        out[k].head |= v->origin == GR_ORIGIN_HEAD;
    }
    qsort(out, (size_t)n, sizeof *out, by_position);
    return n;
}

/* group_of[k] for each of the n layers (want 0: one group per layer, the
 * head's layers one group); returns the group count. */
static gr_code assign_groups(const layer *ls, int n, int want, int *group_of, int *n_groups,
                             gr_status *st) {
    int n_head = 0;
    for (int k = 0; k < n; k++) n_head += ls[k].head;
    int heads = n_head > 0 && n_head < n && want != 1;
    int n_split = heads ? n - n_head : n;
    int k_split = want ? want - heads : n_split;
    if (k_split > n_split)
        return gr_fail(st, GR_ERR_BAD_ARG, "--unfreeze-groups %d: the trainable parameters "
                       "form only %d layers%s (graft train --verbose lists them)", want, n,
                       heads ? ", the new head's a group of its own" : "");
    for (int k = 0, b = 0; k < n; k++)
        group_of[k] = heads && ls[k].head ? k_split : (int)((int64_t)b++ * k_split / n_split);
    *n_groups = k_split + heads;
    return GR_OK;
}

static gr_code fill_params(gr_unfreeze *u, layers *L, const layer *ls, int n,
                           const int *group_of, gr_status *st) {
    const gr_graph *g = L->g;
    u->names = gr_arena_alloc(u->arena, sizeof *u->names * (size_t)(g->n_values + 1));
    u->group = gr_arena_alloc(u->arena, sizeof *u->group * (size_t)(g->n_values + 1));
    if (!u->names || !u->group) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n; k++)
        for (int i = 0; i < g->n_values; i++) {
            const gr_value *v = g->values[i];
            if (v->kind != GR_VALUE_PARAM || !v->trainable || find(L->parent, i) != ls[k].root)
                continue;
            if (!(u->names[u->n_params] = gr_arena_strdup(u->arena, v->name)))
                return gr_fail(st, GR_ERR_NOMEM, "out of memory");
            u->group[u->n_params++] = group_of[k];
        }
    return GR_OK;
}

static gr_code split(gr_unfreeze *u, const gr_graph *g, gr_status *st) {
    size_t nv = (size_t)g->n_values + 1, nn = (size_t)g->n_nodes + 1;
    layers L = {g, gr_malloc(nv * sizeof(int)), gr_calloc(nv, 1), gr_malloc(nn * sizeof(int)),
                gr_calloc(nv, sizeof(int))};
    int *pos = gr_malloc(nv * sizeof(int)), *group_of = gr_malloc(nv * sizeof(int));
    layer *ls = gr_malloc(nv * sizeof *ls);
    gr_code rc = GR_OK;
    if (!L.parent || !L.derived || !L.label || !L.uses || !pos || !group_of || !ls) {
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < g->n_values; i++) L.parent[i] = i;
    for (int i = 0; i < g->n_nodes; i++) L.label[i] = -1, g->nodes[i]->id = i;
    gr_graph_count_uses(g, L.uses);
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i]->dead) label_node(&L, g->nodes[i]);
    layer_positions(&L, pos);
    int n = collect_layers(&L, pos, ls);
    if (!n) {
        rc = gr_fail(st, GR_ERR_BAD_ARG, "--unfreeze-every: no parameter is trainable");
        goto done;
    }
    rc = assign_groups(ls, n, u->opts.groups, group_of, &u->n_groups, st);
    if (rc == GR_OK) rc = fill_params(u, &L, ls, n, group_of, st);
done:
    gr_free(L.parent), gr_free(L.derived), gr_free(L.label), gr_free(L.uses);
    gr_free(pos), gr_free(group_of), gr_free(ls);
    return rc;
}

/* ------------------------------------------------------------ public API */

gr_code gr_unfreeze_new(const gr_graph *g, const gr_unfreeze_opts *opts, gr_unfreeze **out,
                        gr_status *st) {
    *out = NULL;
    if (opts->every < 1 || opts->groups < 0 || opts->batches_per_epoch < 1 ||
        opts->accumulate < 1)
        return gr_fail(st, GR_ERR_BAD_ARG, "progressive unfreezing: every, batches per epoch "
                       "and accumulate must be >= 1, groups >= 0");
    gr_unfreeze *u = gr_calloc(1, sizeof *u);
    if (!u || !(u->arena = gr_arena_new())) {
        gr_free(u);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    }
    u->opts = *opts;
    gr_code rc = split(u, g, st);
    if (rc != GR_OK) {
        gr_unfreeze_free(u);
        return rc;
    }
    *out = u;
    return GR_OK;
}

void gr_unfreeze_free(gr_unfreeze *u) {
    if (!u) return;
    gr_arena_free(u->arena);
    gr_free(u);
}

int gr_unfreeze_n_groups(const gr_unfreeze *u) { return u->n_groups; }
int gr_unfreeze_n_params(const gr_unfreeze *u) { return u->n_params; }

const char *gr_unfreeze_param(const gr_unfreeze *u, int i, int *group) {
    if (group) *group = u->group[i];
    return u->names[i];
}

int gr_unfreeze_stage(const gr_unfreeze *u, int64_t epoch) {
    int64_t n = 1 + (epoch < 0 ? 0 : epoch) / u->opts.every;
    return n < u->n_groups ? (int)n : u->n_groups;
}

int gr_unfreeze_active(const gr_unfreeze *u, int group, int stage) {
    return u->opts.bottom_up ? group < stage : group >= u->n_groups - stage;
}

int64_t gr_unfreeze_group_epoch(const gr_unfreeze *u, int group) {
    int rank = u->opts.bottom_up ? group : u->n_groups - 1 - group;
    return (int64_t)rank * u->opts.every;
}

int64_t gr_unfreeze_start(const gr_unfreeze *u, const char *name) {
    for (int i = 0; i < u->n_params; i++)
        if (!strcmp(u->names[i], name))
            return gr_unfreeze_group_epoch(u, u->group[i]) * u->opts.batches_per_epoch /
                   u->opts.accumulate;
    return 0;
}

gr_code gr_unfreeze_apply(const gr_unfreeze *u, gr_graph *g, int stage, gr_status *st) {
    for (int i = 0; i < u->n_params; i++) {
        gr_value *v = gr_graph_find(g, u->names[i]);
        if (!v || v->kind != GR_VALUE_PARAM)
            return gr_fail(st, GR_ERR_INTERNAL, "unfreezing: no parameter '%s'", u->names[i]);
        v->trainable = v->variable = gr_unfreeze_active(u, u->group[i], stage);
    }
    return GR_OK;
}
