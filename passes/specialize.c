/* specialize.c: fix input shapes from --shape (opts->input_shapes) and
 * then --batch (opts->batch). A dynamic dim that carries the symbol of a
 * dim fixed here ("N" shared by two inputs) gets the same value.
 * Requires: a graph whose inputs have their model shapes.
 * Guarantees: inputs hold the requested dims (on failure they are left
 * unchanged); when any input changed, the inferred types of node outputs
 * are cleared (the shapes pass recomputes them) and declared shapes take
 * the values of bound symbols; nodes and order are untouched. */
#include <string.h>

#include "passes/gr_passes.h"

/* Symbol -> value bindings made by this pass. */
typedef struct {
    int n;
    const char *syms[64];
    int64_t values[64];
    const char *where[64]; /* input that bound it, for messages */
} bindings;

static int find_binding(const bindings *b, const char *sym) {
    for (int i = 0; sym && i < b->n; i++)
        if (!strcmp(b->syms[i], sym)) return i;
    return -1;
}

static int64_t binding_of(const bindings *b, const char *sym) {
    int i = find_binding(b, sym);
    return i < 0 ? -1 : b->values[i];
}

static gr_code bind(bindings *b, const char *sym, int64_t value, const char *input,
                    gr_status *st) {
    if (!sym) return GR_OK;
    int i = find_binding(b, sym);
    if (i >= 0 && b->values[i] != value)
        return gr_fail(st, GR_ERR_BAD_ARG,
                       "dim '%s' is %lld for input '%s' but %lld for input '%s'", sym,
                       (long long)b->values[i], b->where[i], (long long)value, input);
    if (i >= 0) return GR_OK;
    if (b->n == (int)(sizeof b->syms / sizeof b->syms[0]))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "too many named dims to specialize");
    b->syms[b->n] = sym;
    b->values[b->n] = value;
    b->where[b->n++] = input;
    return GR_OK;
}

static gr_value *find_input(const gr_graph *g, const char *name) {
    for (int i = 0; i < g->n_inputs; i++)
        if (!strcmp(g->inputs[i]->name, name)) return g->inputs[i];
    return NULL;
}

static gr_code no_such_input(const gr_graph *g, const char *name, gr_status *st) {
    char list[1024];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < g->n_inputs && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s'%s'",
                                 i ? ", " : "", g->inputs[i]->name);
    return gr_fail(st, GR_ERR_BAD_ARG, "--shape: the model has no input '%s' (inputs: %s)",
                   name, g->n_inputs ? list : "none");
}

/* One dim of an explicit --shape. */
static gr_code apply_dim(gr_graph *g, gr_value *v, int d, const gr_shape *want,
                         bindings *b, gr_status *st) {
    int64_t have = v->shape.dims[d], given = want->dims[d];
    if (given < 0) { /* a symbol: rename a dynamic dim, keep a fixed one */
        if (have < 0 && want->syms[d] &&
            gr_graph_set_dim_symbol(g, &v->shape, d, want->syms[d]) != GR_OK)
            return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        return GR_OK;
    }
    if (have >= 0 && have != given)
        return gr_fail(st, GR_ERR_BAD_ARG,
                       "--shape: input '%s' dim %d is %lld in the model, not %lld",
                       v->name, d, (long long)have, (long long)given);
    if (have < 0) GR_TRY(bind(b, v->shape.syms[d], given, v->name, st));
    v->shape.dims[d] = given;
    v->shape.syms[d] = NULL;
    return GR_OK;
}

static gr_code apply_shape(gr_graph *g, const gr_input_shape *is, bindings *b,
                           gr_status *st) {
    gr_value *v = is->name ? find_input(g, is->name) : NULL;
    if (!v) return no_such_input(g, is->name ? is->name : "(null)", st);
    char a[256], m[256];
    if (is->shape.rank < 0 || is->shape.rank > GR_MAX_RANK)
        return gr_fail(st, GR_ERR_BAD_ARG, "--shape: input '%s': bad rank %d", v->name,
                       is->shape.rank);
    if (v->shape.rank < 0) {
        v->shape = gr_shape_make(is->shape.rank, is->shape.dims);
        for (int d = 0; d < is->shape.rank; d++)
            if (is->shape.dims[d] < 0 && is->shape.syms[d])
                GR_TRY(gr_graph_set_dim_symbol(g, &v->shape, d, is->shape.syms[d]));
        return GR_OK;
    }
    if (v->shape.rank != is->shape.rank)
        return gr_fail(st, GR_ERR_BAD_ARG,
                       "--shape: input '%s' is %s (rank %d) in the model, given %s (rank %d)",
                       v->name, gr_shape_str(&v->shape, m, sizeof m), v->shape.rank,
                       gr_shape_str(&is->shape, a, sizeof a), is->shape.rank);
    for (int d = 0; d < v->shape.rank; d++) GR_TRY(apply_dim(g, v, d, &is->shape, b, st));
    return GR_OK;
}

/* Dynamic dims of s whose symbol is bound take its value. */
static void substitute(gr_shape *s, const bindings *b) {
    for (int d = 0; d < s->rank; d++) {
        int64_t value = s->dims[d] < 0 ? binding_of(b, s->syms[d]) : -1;
        if (value < 0) continue;
        s->dims[d] = value;
        s->syms[d] = NULL;
    }
}

static void propagate(gr_graph *g, const bindings *b) {
    for (int i = 0; i < g->n_inputs; i++) substitute(&g->inputs[i]->shape, b);
}

static gr_code apply_batch(gr_graph *g, int64_t batch, bindings *b, gr_status *st) {
    for (int i = 0; i < g->n_inputs; i++) {
        gr_value *v = g->inputs[i];
        if (v->shape.rank < 1 || v->shape.dims[0] >= 0) continue;
        GR_TRY(bind(b, v->shape.syms[0], batch, v->name, st));
        v->shape.dims[0] = batch;
        v->shape.syms[0] = NULL;
    }
    return GR_OK;
}

static int same_shape(const gr_shape *a, const gr_shape *b) {
    if (a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d] || a->syms[d] != b->syms[d]) return 0;
    return 1;
}

static int inputs_changed(const gr_graph *g, const gr_shape *before) {
    for (int i = 0; i < g->n_inputs; i++)
        if (!same_shape(&before[i], &g->inputs[i]->shape)) return 1;
    return 0;
}

/* Inferred types are stale now (and a rule re-run by the verifier on a
 * half-cleared graph could trip); declared ones (value_info) learn the
 * bound symbols, so the shapes pass checks them more tightly. */
static void clear_inferred(gr_graph *g, const bindings *b) {
    for (int i = 0; i < g->n_values; i++) {
        gr_value *v = g->values[i];
        if (v->kind == GR_VALUE_NODE) {
            v->dtype = GR_DTYPE_UNDEFINED;
            v->shape = gr_shape_unknown();
        }
        if (v->has_declared) substitute(&v->declared_shape, b);
    }
}

gr_code gr_pass_specialize(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    if (opts && opts->batch < 0)
        return gr_fail(st, GR_ERR_BAD_ARG, "--batch must be > 0, not %lld",
                       (long long)opts->batch);
    if (!opts || (opts->batch == 0 && opts->n_input_shapes <= 0)) return GR_OK;
    gr_shape *before = gr_calloc((size_t)g->n_inputs + 1, sizeof(gr_shape));
    if (!before) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_inputs; i++) before[i] = g->inputs[i]->shape;
    bindings b = {0};
    gr_code rc = GR_OK;
    for (int i = 0; i < opts->n_input_shapes && rc == GR_OK; i++)
        rc = apply_shape(g, &opts->input_shapes[i], &b, st);
    if (rc == GR_OK) {
        propagate(g, &b);
        if (opts->batch > 0) rc = apply_batch(g, opts->batch, &b, st);
    }
    if (rc != GR_OK) { /* all or nothing */
        for (int i = 0; i < g->n_inputs; i++) g->inputs[i]->shape = before[i];
    } else {
        propagate(g, &b);
        if (inputs_changed(g, before)) clear_inferred(g, &b);
    }
    gr_free(before);
    return rc;
}
