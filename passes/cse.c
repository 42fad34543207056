/* cse.c: common-subexpression elimination. Two live nodes with the same
 * op, the same effective attributes (an absent attribute equals its schema
 * default; floats compare bit for bit; tensors by dtype, shape and bytes)
 * and the same inputs (same values, omitted ones in the same places) compute
 * the same thing: the later one's users read the earlier one's outputs.
 * CONST values with the same dtype, shape and bytes merge the same way;
 * PARAMs never do (weights are distinct even when equal).
 * Not merged: unknown ops (they may be random or have side effects),
 * Dropout unless its training_mode is absent or constant false, and nodes
 * or CONSTs that define a graph output: graph outputs keep their names, so
 * a duplicate that produces one simply stays (the simplest correct choice).
 * Requires: a graph in topological order.
 * Guarantees: the first node (or CONST) in order is kept; one walk with a
 * hash table (deterministic: hash, then full comparison); order is kept;
 * merged nodes are gone and the graph is compacted. */
#include <string.h>

#include "passes/passes_internal.h"

typedef struct {
    gr_graph *g;
    gr_value **remap;   /* value id -> its replacement, or NULL */
    char *is_output;    /* value id -> 1 if a graph output */
    int *table;         /* open addressing: node index + 1, or 0 */
    uint64_t *hashes;   /* node index -> hash */
    size_t mask;
} cse_state;

static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 1099511628211ull;
}

static uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* --- attributes ---------------------------------------------------------- */

static int tensor_equal(const gr_tensor *a, const gr_tensor *b) {
    if (!a || !b) return a == b;
    if (a->dtype != b->dtype || a->shape.rank != b->shape.rank || a->nbytes != b->nbytes)
        return 0;
    for (int i = 0; i < a->shape.rank; i++)
        if (a->shape.dims[i] != b->shape.dims[i]) return 0;
    return !a->nbytes || !memcmp(a->data, b->data, a->nbytes);
}

static int attr_equal(const gr_attr *a, const gr_attr *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case GR_ATTR_INT: return a->i == b->i;
    case GR_ATTR_FLOAT: return !memcmp(&a->f, &b->f, sizeof a->f);
    case GR_ATTR_STRING: return a->s && b->s && !strcmp(a->s, b->s);
    case GR_ATTR_INTS:
        return a->n == b->n && (!a->n || !memcmp(a->ints, b->ints, sizeof(int64_t) * (size_t)a->n));
    case GR_ATTR_FLOATS:
        return a->n == b->n &&
               (!a->n || !memcmp(a->floats, b->floats, sizeof(double) * (size_t)a->n));
    case GR_ATTR_STRINGS:
        if (a->n != b->n) return 0;
        for (int i = 0; i < a->n; i++)
            if (strcmp(a->strings[i], b->strings[i])) return 0;
        return 1;
    case GR_ATTR_TENSOR: return tensor_equal(a->tensor, b->tensor);
    default: return 0; /* graphs and unknown kinds: never provably equal */
    }
}

/* The schema default of attribute `name` of op as an attribute, if any. */
static int default_attr(gr_op op, const char *name, gr_attr *out) {
    const gr_attr_schema *s = op == GR_OP_UNKNOWN ? NULL : gr_op_attr_schema(op, name);
    if (!s || !s->has_default) return 0;
    memset(out, 0, sizeof *out);
    out->name = name;
    out->type = s->type;
    out->i = s->i;
    out->f = s->f;
    out->s = s->s;
    return s->type == GR_ATTR_INT || s->type == GR_ATTR_FLOAT || s->type == GR_ATTR_STRING;
}

/* Every attribute of a has an equal one on b (given or by default). */
static int attrs_covered(const gr_node *a, const gr_node *b) {
    for (int i = 0; i < a->n_attrs; i++) {
        const gr_attr *x = &a->attrs[i], *y = gr_node_attr(b, x->name);
        gr_attr def;
        if (!y) {
            if (!default_attr(b->op, x->name, &def)) return 0;
            y = &def;
        }
        if (!attr_equal(x, y)) return 0;
    }
    return 1;
}

/* --- nodes ----------------------------------------------------------------- */

/* Dropout is deterministic only in inference mode. */
static int dropout_inference(const gr_node *n) {
    const gr_value *mode = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (!mode) return 1;
    return gr_value_is_constant(mode) && mode->nbytes >= 1 &&
           !gr_dtype_load_i64(mode->dtype, mode->data, 0);
}

static int mergeable(const gr_node *n) {
    if (n->dead || n->op == GR_OP_UNKNOWN) return 0;
    if (n->op == GR_OP_DROPOUT) return dropout_inference(n);
    return 1;
}

static uint64_t node_hash(const gr_node *n) {
    uint64_t h = mix(1469598103934665603ull, (uint64_t)n->op);
    h = mix(h, (uint64_t)n->n_inputs);
    h = mix(h, (uint64_t)n->n_outputs);
    for (int i = 0; i < n->n_inputs; i++)
        h = mix(h, n->inputs[i] ? (uint64_t)n->inputs[i]->id + 1 : 0);
    return h;
}

static int nodes_equal(const gr_node *a, const gr_node *b) {
    if (a->op != b->op || a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs)
        return 0;
    for (int i = 0; i < a->n_inputs; i++)
        if (a->inputs[i] != b->inputs[i]) return 0;
    for (int i = 0; i < a->n_outputs; i++)
        if (!a->outputs[i] != !b->outputs[i]) return 0;
    return attrs_covered(a, b) && attrs_covered(b, a);
}

static int defines_output(const cse_state *s, const gr_node *n) {
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] && s->is_output[n->outputs[i]->id]) return 1;
    return 0;
}

static void apply_remap(const cse_state *s, gr_node *n) {
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && s->remap[n->inputs[i]->id]) n->inputs[i] = s->remap[n->inputs[i]->id];
}

/* Merges node index k into an earlier equal node, or records it. */
static void visit_node(cse_state *s, int k) {
    gr_node *n = s->g->nodes[k];
    uint64_t h = s->hashes[k] = node_hash(n);
    size_t slot = (size_t)h & s->mask;
    for (; s->table[slot]; slot = (slot + 1) & s->mask) {
        int j = s->table[slot] - 1;
        gr_node *m = s->g->nodes[j];
        if (s->hashes[j] != h || !nodes_equal(m, n)) continue;
        if (defines_output(s, n)) return; /* keeps its name: stays */
        for (int o = 0; o < n->n_outputs; o++)
            if (n->outputs[o]) s->remap[n->outputs[o]->id] = m->outputs[o];
        gr_node_remove(s->g, n);
        return;
    }
    s->table[slot] = k + 1;
}

/* --- constants ------------------------------------------------------------- */

static uint64_t const_hash(const gr_value *v) {
    uint64_t h = mix(7, (uint64_t)v->dtype);
    h = mix(h, (uint64_t)(v->shape.rank + 1));
    for (int i = 0; i < v->shape.rank; i++) h = mix(h, (uint64_t)v->shape.dims[i]);
    return hash_bytes(h, v->data, v->nbytes);
}

static int consts_equal(const gr_value *a, const gr_value *b) {
    if (a->dtype != b->dtype || a->shape.rank != b->shape.rank || a->nbytes != b->nbytes)
        return 0;
    for (int i = 0; i < a->shape.rank; i++)
        if (a->shape.dims[i] != b->shape.dims[i]) return 0;
    return !a->nbytes || !memcmp(a->data, b->data, a->nbytes);
}

/* Same table and scheme as nodes, keyed by value index. */
static void merge_consts(cse_state *s, uint64_t *vhash) {
    gr_graph *g = s->g;
    for (int k = 0; k < g->n_values; k++) {
        gr_value *v = g->values[k];
        if (v->kind != GR_VALUE_CONST) continue;
        uint64_t h = vhash[k] = const_hash(v);
        size_t slot = (size_t)h & s->mask;
        int merged = 0;
        for (; s->table[slot] && !merged; slot = (slot + 1) & s->mask) {
            gr_value *w = g->values[s->table[slot] - 1];
            if (vhash[w->id] != h || !consts_equal(w, v)) continue;
            if (!s->is_output[v->id]) s->remap[v->id] = w;
            merged = 1;
        }
        if (!merged) s->table[slot] = k + 1;
    }
}

static size_t table_size(int n) {
    size_t size = 16;
    while (size < (size_t)n * 2 + 1) size *= 2;
    return size;
}

static gr_code run_cse(cse_state *s, gr_status *st) {
    gr_graph *g = s->g;
    int n_items = g->n_values > g->n_nodes ? g->n_values : g->n_nodes;
    size_t size = table_size(n_items);
    uint64_t *vhash = gr_calloc((size_t)g->n_values + 1, sizeof *vhash);
    s->table = gr_calloc(size, sizeof *s->table);
    s->hashes = gr_calloc((size_t)g->n_nodes + 1, sizeof *s->hashes);
    s->mask = size - 1;
    if (!vhash || !s->table || !s->hashes) {
        gr_free(vhash);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    }
    merge_consts(s, vhash);
    gr_free(vhash);
    memset(s->table, 0, size * sizeof *s->table);
    for (int k = 0; k < g->n_nodes; k++) {
        gr_node *n = g->nodes[k];
        if (n->dead) continue;
        apply_remap(s, n);
        if (mergeable(n)) visit_node(s, k);
    }
    return GR_OK;
}

gr_code gr_pass_cse(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    (void)opts;
    cse_state s = {0};
    s.g = g;
    s.remap = gr_calloc((size_t)g->n_values + 1, sizeof *s.remap);
    s.is_output = gr_calloc((size_t)g->n_values + 1, 1);
    gr_code rc = GR_OK;
    if (!s.remap || !s.is_output) {
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory");
    } else {
        for (int i = 0; i < g->n_outputs; i++) s.is_output[g->outputs[i]->id] = 1;
        rc = run_cse(&s, st);
    }
    gr_free(s.remap);
    gr_free(s.is_output);
    gr_free(s.table);
    gr_free(s.hashes);
    return rc == GR_OK ? gr_passes_compact(g, st) : rc;
}
