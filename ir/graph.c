/* graph.c: graphs, values and nodes; name lookup (hash maps rebuilt on
 * compaction), stable topological sort, use counts, compaction.
 * Invariant: g->nodes is in topological order after every pass. */
#include <string.h>

#include "ir/gr_ir.h"
#include "ir/ir_internal.h"

/* --- string -> pointer map (open addressing, power-of-two capacity) --- */

typedef struct {
    const char *key;
    void *ptr;
} slot;

typedef struct {
    slot *slots;
    size_t cap, count;
} strmap;

typedef struct {
    strmap values, nodes;
} name_index;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static slot *map_slot(strmap *m, const char *key) {
    size_t mask = m->cap - 1, i = (size_t)hash_str(key) & mask;
    while (m->slots[i].key && strcmp(m->slots[i].key, key)) i = (i + 1) & mask;
    return &m->slots[i];
}

static int map_grow(strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    slot *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = gr_calloc(cap, sizeof(slot));
    if (!m->slots) {
        m->slots = old;
        return 0;
    }
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key) *map_slot(m, old[i].key) = old[i];
    gr_free(old);
    return 1;
}

static int map_put(strmap *m, const char *key, void *ptr) {
    if ((m->count + 1) * 2 > m->cap && !map_grow(m)) return 0;
    slot *s = map_slot(m, key);
    if (!s->key) m->count++;
    s->key = key;
    s->ptr = ptr;
    return 1;
}

static void *map_get(const strmap *m, const char *key) {
    if (!m->cap || !key) return NULL;
    return map_slot((strmap *)m, key)->ptr;
}

/* Removal by tombstone-free rebuild is done by the callers (compaction). */
static void map_clear(strmap *m) {
    gr_free(m->slots);
    memset(m, 0, sizeof *m);
}

static name_index *index_of(const gr_graph *g) { return g->name_index; }

/* --- growable pointer arrays (malloc'd, owned by the graph) --- */

static int push(void ***items, int *n, int *cap, void *item) {
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 16;
        void **p = gr_realloc(*items, (size_t)ncap * sizeof(void *));
        if (!p) return 0;
        *items = p;
        *cap = ncap;
    }
    (*items)[(*n)++] = item;
    return 1;
}

gr_graph *gr_graph_new(const char *name) {
    gr_graph *g = gr_calloc(1, sizeof *g);
    if (!g) return NULL;
    g->arena = gr_arena_new();
    g->name_index = gr_calloc(1, sizeof(name_index));
    if (!g->arena || !g->name_index) {
        gr_graph_free(g);
        return NULL;
    }
    g->name = gr_arena_strdup(g->arena, name ? name : "graph");
    if (!g->name) {
        gr_graph_free(g);
        return NULL;
    }
    return g;
}

void gr_graph_free(gr_graph *g) {
    if (!g) return;
    name_index *ix = index_of(g);
    if (ix) {
        map_clear(&ix->values);
        map_clear(&ix->nodes);
        gr_free(ix);
    }
    gr_free(g->values);
    gr_free(g->nodes);
    gr_free(g->inputs);
    gr_free(g->outputs);
    gr_free(g->grads);
    gr_free(g->updates);
    gr_arena_free(g->arena);
    gr_free(g);
}

gr_value *gr_graph_find(const gr_graph *g, const char *name) {
    return map_get(&index_of(g)->values, name);
}

gr_node *gr_graph_find_node(const gr_graph *g, const char *name) {
    return map_get(&index_of(g)->nodes, name);
}

static int name_used(const gr_graph *g, const char *name) {
    return gr_graph_find(g, name) || gr_graph_find_node(g, name);
}

const char *gr_graph_unique_name(gr_graph *g, const char *base) {
    if (!base || !*base) base = "t";
    if (!name_used(g, base)) return gr_arena_strdup(g->arena, base);
    for (;;) {
        char *name = gr_arena_printf(g->arena, "%s_%d", base, ++g->name_counter);
        if (!name || !name_used(g, name)) return name;
    }
}

gr_value *gr_graph_add_value(gr_graph *g, const char *name, gr_value_kind kind) {
    const char *n = name ? gr_arena_strdup(g->arena, name)
                         : gr_graph_unique_name(g, "t");
    if (!n || (name && gr_graph_find(g, name))) return NULL;
    gr_value *v = gr_arena_alloc(g->arena, sizeof *v);
    if (!v) return NULL;
    v->name = n;
    v->kind = kind;
    v->shape = gr_shape_unknown();
    v->id = g->n_values;
    if (!push((void ***)&g->values, &g->n_values, &g->cap_values, v)) return NULL;
    if (!map_put(&index_of(g)->values, v->name, v)) {
        g->n_values--;
        return NULL;
    }
    return v;
}

gr_value *gr_graph_add_input(gr_graph *g, const char *name, gr_dtype dtype,
                             const gr_shape *shape) {
    gr_value *v = gr_graph_add_value(g, name, GR_VALUE_INPUT);
    if (!v) return NULL;
    v->dtype = dtype;
    v->shape = shape ? *shape : gr_shape_unknown();
    if (!push((void ***)&g->inputs, &g->n_inputs, &g->cap_inputs, v)) return NULL;
    return v;
}

gr_value *gr_graph_add_data(gr_graph *g, gr_value_kind kind, const char *name,
                            gr_dtype dtype, const gr_shape *shape,
                            const void *data) {
    int64_t numel = gr_shape_numel(shape);
    size_t es = gr_dtype_size(dtype);
    if (numel < 0 || es == 0 || (uint64_t)numel > SIZE_MAX / es) return NULL;
    gr_value *v = gr_graph_add_value(g, name, kind);
    if (!v) return NULL;
    v->dtype = dtype;
    v->shape = *shape;
    v->nbytes = (size_t)numel * es;
    v->trainable = kind == GR_VALUE_PARAM && gr_dtype_is_float(dtype);
    if (v->nbytes) {
        v->data = gr_arena_alloc(g->arena, v->nbytes);
        if (!v->data) return NULL;
        if (data) memcpy(v->data, data, v->nbytes);
    }
    return v;
}

gr_code gr_graph_add_output(gr_graph *g, gr_value *v) {
    if (!push((void ***)&g->outputs, &g->n_outputs, &g->cap_outputs, v))
        return GR_ERR_NOMEM;
    return GR_OK;
}

gr_code gr_value_rename(gr_graph *g, gr_value *v, const char *name) {
    if (name_used(g, name)) return GR_ERR_BAD_ARG;
    const char *n = gr_arena_strdup(g->arena, name);
    if (!n) return GR_ERR_NOMEM;
    strmap *m = &index_of(g)->values;
    if (!map_put(m, n, v)) return GR_ERR_NOMEM;
    map_slot(m, v->name)->ptr = NULL; /* old name now free */
    v->name = n;
    return GR_OK;
}

gr_node *gr_node_add(gr_graph *g, gr_op op, const char *name, int n_inputs,
                     gr_value *const *inputs, int n_outputs,
                     const char *const *out_names) {
    const char *opname = op == GR_OP_UNKNOWN ? "node" : gr_op_name(op);
    const char *nn = name && *name && !gr_graph_find_node(g, name)
                         ? gr_arena_strdup(g->arena, name)
                         : gr_graph_unique_name(g, name && *name ? name : opname);
    gr_node *n = gr_arena_alloc(g->arena, sizeof *n);
    if (!nn || !n) return NULL;
    n->name = nn;
    n->op = op;
    n->op_type = op == GR_OP_UNKNOWN ? "" : gr_op_name(op);
    n->domain = op != GR_OP_UNKNOWN && (gr_op_info_of(op)->flags & GR_OPF_INTERNAL)
                    ? GR_INTERNAL_DOMAIN : "";
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    n->inputs = gr_arena_alloc(g->arena, sizeof(gr_value *) * (size_t)(n_inputs + 1));
    n->outputs = gr_arena_alloc(g->arena, sizeof(gr_value *) * (size_t)(n_outputs + 1));
    if (!n->inputs || !n->outputs) return NULL;
    for (int i = 0; i < n_inputs; i++) n->inputs[i] = inputs[i];
    for (int i = 0; i < n_outputs; i++) {
        const char *on = out_names ? out_names[i] : NULL;
        if (on && !*on) continue; /* omitted optional output */
        gr_value *v;
        if (on) {
            v = gr_graph_add_value(g, on, GR_VALUE_NODE);
        } else {
            char *base = n_outputs == 1 ? gr_arena_printf(g->arena, "%s_out", nn)
                                        : gr_arena_printf(g->arena, "%s_out%d", nn, i);
            v = base ? gr_graph_add_value(g, gr_graph_unique_name(g, base),
                                          GR_VALUE_NODE)
                     : NULL;
        }
        if (!v) return NULL;
        v->producer = n;
        v->producer_output = i;
        n->outputs[i] = v;
    }
    n->id = g->n_nodes;
    if (!push((void ***)&g->nodes, &g->n_nodes, &g->cap_nodes, n)) return NULL;
    if (!map_put(&index_of(g)->nodes, n->name, n)) return NULL;
    return n;
}

void gr_node_remove(gr_graph *g, gr_node *n) {
    (void)g;
    n->dead = 1;
}

void gr_value_replace_uses(gr_graph *g, gr_value *old_value, gr_value *new_value) {
    for (int i = 0; i < g->n_nodes; i++) {
        gr_node *n = g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == old_value) n->inputs[j] = new_value;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == old_value) g->outputs[i] = new_value;
    if (g->loss == old_value) g->loss = new_value;
    for (int i = 0; i < g->n_grads; i++)
        if (g->grads[i].grad == old_value) g->grads[i].grad = new_value;
    for (int i = 0; i < g->n_updates; i++)
        if (g->updates[i].next == old_value) g->updates[i].next = new_value;
}

void gr_graph_count_uses(const gr_graph *g, int *counts) {
    memset(counts, 0, sizeof(int) * (size_t)g->n_values);
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j]) counts[n->inputs[j]->id]++;
    }
    for (int i = 0; i < g->n_outputs; i++) counts[g->outputs[i]->id]++;
    /* Training roots count as uses, like graph outputs. */
    if (g->loss) counts[g->loss->id]++;
    for (int i = 0; i < g->n_grads; i++) counts[g->grads[i].grad->id]++;
    for (int i = 0; i < g->n_updates; i++) {
        counts[g->updates[i].state->id]++;
        counts[g->updates[i].next->id]++;
    }
}

static gr_code grow(void **items, int *n, int *cap, size_t size) {
    if (*n < *cap) return GR_OK;
    int ncap = *cap ? *cap * 2 : 16;
    void *p = gr_realloc(*items, (size_t)ncap * size);
    if (!p) return GR_ERR_NOMEM;
    *items = p;
    *cap = ncap;
    return GR_OK;
}

gr_code gr_graph_add_grad(gr_graph *g, gr_value *param, gr_value *grad) {
    GR_TRY(grow((void **)&g->grads, &g->n_grads, &g->cap_grads, sizeof(gr_grad)));
    g->grads[g->n_grads++] = (gr_grad){param, grad};
    return GR_OK;
}

gr_code gr_graph_add_update(gr_graph *g, gr_value *state, gr_value *next) {
    GR_TRY(grow((void **)&g->updates, &g->n_updates, &g->cap_updates, sizeof(gr_update)));
    g->updates[g->n_updates++] = (gr_update){state, next};
    return GR_OK;
}

gr_value *gr_graph_grad_of(const gr_graph *g, const gr_value *param) {
    for (int i = 0; i < g->n_grads; i++)
        if (g->grads[i].param == param) return g->grads[i].grad;
    return NULL;
}

void gr_graph_compact(gr_graph *g) {
    name_index *ix = index_of(g);
    /* Allocate first: on failure the graph is left as it was (dead nodes
     * stay marked; compaction is an optimisation). */
    char *keep = gr_calloc((size_t)g->n_values + 1, 1);
    if (!keep) return;
    int kept = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i]->dead) g->nodes[kept++] = g->nodes[i];
    g->n_nodes = kept;
    /* A value stays if anything refers to it. Outputs of live nodes stay
     * (a node keeps all its outputs). */
    for (int i = 0; i < g->n_nodes; i++) {
        gr_node *n = g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j]) keep[n->inputs[j]->id] = 1;
        for (int j = 0; j < n->n_outputs; j++)
            if (n->outputs[j]) keep[n->outputs[j]->id] = 1;
    }
    for (int i = 0; i < g->n_inputs; i++) keep[g->inputs[i]->id] = 1;
    for (int i = 0; i < g->n_outputs; i++) keep[g->outputs[i]->id] = 1;
    if (g->loss) keep[g->loss->id] = 1;
    for (int i = 0; i < g->n_grads; i++)
        keep[g->grads[i].param->id] = keep[g->grads[i].grad->id] = 1;
    for (int i = 0; i < g->n_updates; i++)
        keep[g->updates[i].state->id] = keep[g->updates[i].next->id] = 1;
    kept = 0;
    for (int i = 0; i < g->n_values; i++)
        if (keep[i]) g->values[kept++] = g->values[i];
    g->n_values = kept;
    gr_free(keep);
    for (int i = 0; i < g->n_values; i++) g->values[i]->id = i;
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->id = i;
    map_clear(&ix->values);
    map_clear(&ix->nodes);
    for (int i = 0; i < g->n_values; i++)
        map_put(&ix->values, g->values[i]->name, g->values[i]);
    for (int i = 0; i < g->n_nodes; i++)
        map_put(&ix->nodes, g->nodes[i]->name, g->nodes[i]);
}

/* Kahn's algorithm; among ready nodes the earliest in the current order
 * goes first, so an already sorted graph is left unchanged. */
gr_code gr_graph_toposort(gr_graph *g, gr_status *st) {
    int nn = g->n_nodes;
    int *pending = gr_calloc((size_t)nn + 1, sizeof(int));
    int *ready = gr_calloc((size_t)nn + 1, sizeof(int));
    gr_node **order = gr_calloc((size_t)nn + 1, sizeof(gr_node *));
    /* users: CSR of node -> consumer nodes */
    int *ucount = gr_calloc((size_t)nn + 1, sizeof(int));
    int *ustart = gr_calloc((size_t)nn + 2, sizeof(int));
    gr_code rc = GR_OK;
    int *users = NULL;
    if (!pending || !ready || !order || !ucount || !ustart) {
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory sorting graph");
        goto done;
    }
    for (int i = 0; i < nn; i++) g->nodes[i]->id = i;
    int total = 0;
    for (int i = 0; i < nn; i++) {
        gr_node *n = g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++) {
            gr_value *v = n->inputs[j];
            if (v && v->producer && !v->producer->dead) {
                pending[i]++;
                ucount[v->producer->id]++;
                total++;
            }
        }
    }
    users = gr_calloc((size_t)total + 1, sizeof(int));
    if (!users) {
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory sorting graph");
        goto done;
    }
    for (int i = 0; i < nn; i++) ustart[i + 1] = ustart[i] + ucount[i];
    memset(ucount, 0, sizeof(int) * (size_t)nn);
    for (int i = 0; i < nn; i++) {
        gr_node *n = g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++) {
            gr_value *v = n->inputs[j];
            if (v && v->producer && !v->producer->dead) {
                int p = v->producer->id;
                users[ustart[p] + ucount[p]++] = i;
            }
        }
    }
    /* ready is a min-heap of node indices */
    int n_ready = 0, n_done = 0;
#define HEAP_PUSH(x)                                                           \
    do {                                                                       \
        int k_ = n_ready++;                                                    \
        ready[k_] = (x);                                                       \
        while (k_ && ready[(k_ - 1) / 2] > ready[k_]) {                        \
            int t_ = ready[k_]; ready[k_] = ready[(k_ - 1) / 2];              \
            ready[(k_ - 1) / 2] = t_; k_ = (k_ - 1) / 2;                       \
        }                                                                      \
    } while (0)
    for (int i = 0; i < nn; i++)
        if (!pending[i]) HEAP_PUSH(i);
    while (n_ready) {
        int top = ready[0];
        ready[0] = ready[--n_ready];
        for (int k = 0;;) {
            int l = 2 * k + 1, r = l + 1, m = k;
            if (l < n_ready && ready[l] < ready[m]) m = l;
            if (r < n_ready && ready[r] < ready[m]) m = r;
            if (m == k) break;
            int t = ready[k]; ready[k] = ready[m]; ready[m] = t; k = m;
        }
        order[n_done++] = g->nodes[top];
        for (int u = ustart[top]; u < ustart[top + 1]; u++)
            if (--pending[users[u]] == 0) HEAP_PUSH(users[u]);
    }
#undef HEAP_PUSH
    if (n_done < nn) {
        for (int i = 0; i < nn; i++)
            if (pending[i]) {
                rc = gr_fail(st, GR_ERR_BAD_MODEL,
                             "the graph has a cycle through node '%s' (%s)",
                             g->nodes[i]->name, g->nodes[i]->op_type);
                break;
            }
        goto done;
    }
    if (nn > 0) memcpy(g->nodes, order, sizeof(gr_node *) * (size_t)nn);
    for (int i = 0; i < nn; i++) g->nodes[i]->id = i;
done:
    gr_free(pending);
    gr_free(ready);
    gr_free(order);
    gr_free(ucount);
    gr_free(ustart);
    gr_free(users);
    return rc;
}

int gr_value_is_constant(const gr_value *v) {
    return v && (v->kind == GR_VALUE_CONST || (v->kind == GR_VALUE_PARAM && !v->variable));
}

int64_t gr_value_numel(const gr_value *v) { return gr_shape_numel(&v->shape); }

int64_t gr_value_const_ints(const gr_value *v, int64_t *out, int64_t max) {
    if (!gr_value_is_constant(v) || !gr_dtype_is_int(v->dtype)) return -1;
    int64_t n = gr_value_numel(v);
    if (n < 0) return -1;
    for (int64_t i = 0; i < n && i < max; i++)
        out[i] = gr_dtype_load_i64(v->dtype, v->data, i);
    return n;
}

gr_code gr_value_set_const(gr_graph *g, gr_value *v, const gr_tensor *t,
                           gr_status *st) {
    int64_t numel = gr_shape_numel(&t->shape);
    size_t es = gr_dtype_size(t->dtype);
    if (numel < 0 || es == 0)
        return gr_fail(st, GR_ERR_INTERNAL, "constant '%s' needs a static shape",
                       v->name);
    size_t nbytes = (size_t)numel * es;
    void *data = nbytes ? gr_arena_alloc(g->arena, nbytes) : NULL;
    if (nbytes && !data)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory for constant '%s'", v->name);
    if (nbytes) memcpy(data, t->data, nbytes);
    v->kind = GR_VALUE_CONST;
    v->producer = NULL;
    v->producer_output = 0;
    v->dtype = t->dtype;
    v->shape = t->shape;
    v->data = data;
    v->nbytes = nbytes;
    v->trainable = 0;
    return GR_OK;
}

gr_code gr_graph_set_dim_symbol(gr_graph *g, gr_shape *s, int axis,
                                const char *sym) {
    s->dims[axis] = GR_DIM_DYNAMIC;
    s->syms[axis] = sym ? gr_arena_strdup(g->arena, sym) : NULL;
    return sym && !s->syms[axis] ? GR_ERR_NOMEM : GR_OK;
}

void gr_graph_param_stats(const gr_graph *g, int64_t *count, int64_t *bytes) {
    int64_t c = 0, b = 0;
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (v->kind != GR_VALUE_PARAM) continue;
        c += gr_value_numel(v);
        b += (int64_t)v->nbytes;
    }
    *count = c;
    *bytes = b;
}

gr_code gr_graph_check_supported(const gr_graph *g, gr_status *st) {
    char msg[sizeof st->msg];
    size_t used = 0;
    int count = 0;
    msg[0] = '\0';
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->dead || n->op != GR_OP_UNKNOWN) continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            const gr_node *m = g->nodes[j];
            seen = !m->dead && m->op == GR_OP_UNKNOWN &&
                   !strcmp(m->op_type, n->op_type) && !strcmp(m->domain, n->domain);
        }
        if (seen) continue;
        int w = snprintf(msg + used, sizeof msg - used, "%s%s%s%s (first used by node '%s')",
                         count ? ", " : "", n->domain, *n->domain ? "." : "",
                         n->op_type, n->name);
        if (w > 0 && used + (size_t)w < sizeof msg) used += (size_t)w;
        count++;
    }
    if (!count) return GR_OK;
    return gr_fail(st, GR_ERR_UNSUPPORTED, "%d unsupported op type%s: %s", count,
                   count == 1 ? "" : "s", msg);
}

gr_code gr_graph_bind_input(gr_graph *g, gr_value *v, const gr_tensor *t,
                            gr_status *st) {
    int index = -1;
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v) index = i;
    if (index < 0)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' is not an input of the graph", v->name);
    if (t->dtype != v->dtype)
        return gr_fail(st, GR_ERR_BAD_ARG, "input '%s' is %s, the value given is %s", v->name,
                       gr_dtype_name(v->dtype), gr_dtype_name(t->dtype));
    if (v->shape.rank >= 0) {
        int ok = v->shape.rank == t->shape.rank;
        for (int i = 0; ok && i < v->shape.rank; i++)
            ok = v->shape.dims[i] < 0 || v->shape.dims[i] == t->shape.dims[i];
        if (!ok) {
            char a[256], b[256];
            return gr_fail(st, GR_ERR_BAD_ARG, "input '%s' is %s, the value given is %s",
                           v->name, gr_shape_str(&v->shape, a, sizeof a),
                           gr_shape_str(&t->shape, b, sizeof b));
        }
    }
    GR_TRY(gr_value_set_const(g, v, t, st));
    memmove(&g->inputs[index], &g->inputs[index + 1],
            sizeof(gr_value *) * (size_t)(g->n_inputs - index - 1));
    g->n_inputs--;
    return GR_OK;
}

/* --- cloning --- */

static const char *dup_str(gr_graph *g, const char *s) {
    return s ? gr_arena_strdup(g->arena, s) : NULL;
}

static int clone_shape(gr_graph *g, gr_shape *dst, const gr_shape *src) {
    *dst = *src;
    for (int i = 0; i < GR_MAX_RANK; i++)
        if (src->syms[i] && !(dst->syms[i] = dup_str(g, src->syms[i]))) return 0;
    return 1;
}

static void *dup_bytes(gr_graph *g, const void *p, size_t n) {
    if (!p || !n) return NULL;
    void *q = gr_arena_alloc(g->arena, n);
    if (q) memcpy(q, p, n);
    return q;
}

static int clone_attr(gr_graph *g, gr_attr *d, const gr_attr *s) {
    *d = *s;
    d->name = dup_str(g, s->name);
    if (!d->name || (s->s && !(d->s = dup_str(g, s->s)))) return 0;
    if (s->ints && !(d->ints = dup_bytes(g, s->ints, sizeof(int64_t) * (size_t)s->n))) return 0;
    if (s->floats && !(d->floats = dup_bytes(g, s->floats, sizeof(double) * (size_t)s->n)))
        return 0;
    if (s->strings) {
        d->strings = gr_arena_alloc(g->arena, sizeof(char *) * (size_t)(s->n + 1));
        if (!d->strings) return 0;
        for (int i = 0; i < s->n; i++)
            if (!(d->strings[i] = dup_str(g, s->strings[i]))) return 0;
    }
    if (s->tensor) {
        d->tensor = gr_arena_alloc(g->arena, sizeof(gr_tensor));
        if (!d->tensor || !clone_shape(g, &d->tensor->shape, &s->tensor->shape)) return 0;
        d->tensor->dtype = s->tensor->dtype;
        d->tensor->nbytes = s->tensor->nbytes;
        d->tensor->data = dup_bytes(g, s->tensor->data, s->tensor->nbytes);
        if (s->tensor->nbytes && !d->tensor->data) return 0;
    }
    return 1;
}

static gr_node *clone_node(gr_graph *g, const gr_node *s) {
    gr_node *n = gr_arena_alloc(g->arena, sizeof *n);
    if (!n) return NULL;
    *n = *s;
    n->name = dup_str(g, s->name);
    n->op_type = dup_str(g, s->op_type);
    n->domain = dup_str(g, s->domain);
    n->inputs = gr_arena_alloc(g->arena, sizeof(gr_value *) * (size_t)(s->n_inputs + 1));
    n->outputs = gr_arena_alloc(g->arena, sizeof(gr_value *) * (size_t)(s->n_outputs + 1));
    n->attrs = s->n_attrs ? gr_arena_alloc(g->arena, sizeof(gr_attr) * (size_t)s->n_attrs) : NULL;
    if (!n->name || !n->op_type || !n->domain || !n->inputs || !n->outputs ||
        (s->n_attrs && !n->attrs))
        return NULL;
    for (int i = 0; i < s->n_inputs; i++) n->inputs[i] = s->inputs[i] ? g->values[s->inputs[i]->id] : NULL;
    for (int i = 0; i < s->n_outputs; i++) {
        n->outputs[i] = s->outputs[i] ? g->values[s->outputs[i]->id] : NULL;
        if (n->outputs[i]) n->outputs[i]->producer = n;
    }
    for (int i = 0; i < s->n_attrs; i++)
        if (!clone_attr(g, &n->attrs[i], &s->attrs[i])) return NULL;
    return n;
}

static int clone_value(gr_graph *g, gr_value *d, const gr_value *s) {
    d->dtype = s->dtype;
    d->producer_output = s->producer_output;
    d->nbytes = s->nbytes;
    d->trainable = s->trainable;
    d->origin = s->origin;
    d->variable = s->variable;
    d->has_declared = s->has_declared;
    d->declared_dtype = s->declared_dtype;
    if (!clone_shape(g, &d->shape, &s->shape) ||
        !clone_shape(g, &d->declared_shape, &s->declared_shape))
        return 0;
    d->data = dup_bytes(g, s->data, s->nbytes);
    return !s->nbytes || d->data;
}

static int clone_into(gr_graph *g, const gr_graph *s) {
    g->ir_version = s->ir_version;
    g->model_version = s->model_version;
    g->opset = s->opset;
    g->n_constants_lifted = s->n_constants_lifted;
    g->name_counter = s->name_counter;
    if ((s->producer_name && !(g->producer_name = dup_str(g, s->producer_name))) ||
        (s->producer_version && !(g->producer_version = dup_str(g, s->producer_version))) ||
        (s->domain && !(g->domain = dup_str(g, s->domain))) ||
        (s->doc && !(g->doc = dup_str(g, s->doc))))
        return 0;
    g->n_opsets = s->n_opsets;
    g->opsets = s->n_opsets ? gr_arena_alloc(g->arena, sizeof(gr_opset) * (size_t)s->n_opsets) : NULL;
    if (s->n_opsets && !g->opsets) return 0;
    for (int i = 0; i < s->n_opsets; i++) {
        g->opsets[i].version = s->opsets[i].version;
        if (!(g->opsets[i].domain = dup_str(g, s->opsets[i].domain))) return 0;
    }
    g->n_metadata = s->n_metadata;
    g->metadata = s->n_metadata ? gr_arena_alloc(g->arena, sizeof(gr_metadata) * (size_t)s->n_metadata) : NULL;
    if (s->n_metadata && !g->metadata) return 0;
    for (int i = 0; i < s->n_metadata; i++)
        if (!(g->metadata[i].key = dup_str(g, s->metadata[i].key)) ||
            !(g->metadata[i].value = dup_str(g, s->metadata[i].value)))
            return 0;
    /* Values first, in order, so ids match; then nodes. */
    for (int i = 0; i < s->n_values; i++) {
        gr_value *v = gr_graph_add_value(g, s->values[i]->name, s->values[i]->kind);
        if (!v || !clone_value(g, v, s->values[i])) return 0;
    }
    for (int i = 0; i < s->n_nodes; i++) {
        gr_node *n = clone_node(g, s->nodes[i]);
        if (!n || !push((void ***)&g->nodes, &g->n_nodes, &g->cap_nodes, n) ||
            !map_put(&index_of(g)->nodes, n->name, n))
            return 0;
    }
    for (int i = 0; i < s->n_inputs; i++)
        if (!push((void ***)&g->inputs, &g->n_inputs, &g->cap_inputs, g->values[s->inputs[i]->id]))
            return 0;
    for (int i = 0; i < s->n_outputs; i++)
        if (!push((void ***)&g->outputs, &g->n_outputs, &g->cap_outputs, g->values[s->outputs[i]->id]))
            return 0;
    g->loss = s->loss ? g->values[s->loss->id] : NULL;
    for (int i = 0; i < s->n_grads; i++)
        if (gr_graph_add_grad(g, g->values[s->grads[i].param->id], g->values[s->grads[i].grad->id]))
            return 0;
    for (int i = 0; i < s->n_updates; i++)
        if (gr_graph_add_update(g, g->values[s->updates[i].state->id], g->values[s->updates[i].next->id]))
            return 0;
    return 1;
}

gr_graph *gr_graph_clone(const gr_graph *s) {
    gr_graph *g = gr_graph_new(s->name);
    if (!g) return NULL;
    /* Value ids are positions (gr_graph_compact renumbers); clone_node
     * maps inputs through them. */
    for (int i = 0; i < s->n_values; i++)
        if (s->values[i]->id != i) {
            gr_graph_free(g);
            return NULL;
        }
    if (!clone_into(g, s)) {
        gr_graph_free(g);
        return NULL;
    }
    return g;
}
