/* train.c: the "train" pass: decides which parameters train. Float
 * parameters train unless frozen (--freeze GLOB, --train-only GLOB,
 * --freeze-until NODE); BatchNormalization's running statistics never do.
 * Once an adapter pass added parameters (origin GR_ORIGIN_ADAPTER), the
 * model's own parameters are frozen by default: adapters and the new head
 * train, and the model's parameters only where --train-only names them.
 * Trainable parameters become variable (state that changes from step to
 * step; passes no longer fold them); frozen ones stay constants.
 * Requires: opts->train (otherwise nothing happens).
 * Guarantees: at least one trainable parameter, unless opts->train->eval;
 * every glob matched some parameter (a typo is an error, not a silent
 * no-op). */
#include <fnmatch.h>
#include <string.h>

#include "passes/passes_internal.h"

static int is_candidate(const gr_value *v) {
    return v->kind == GR_VALUE_PARAM && gr_dtype_is_float(v->dtype);
}

static gr_code match_globs(const gr_graph *g, int n_globs, const char *const *globs,
                           const char *option, char *hit, gr_status *st) {
    for (int k = 0; k < n_globs; k++) {
        int any = 0;
        for (int i = 0; i < g->n_values; i++) {
            const gr_value *v = g->values[i];
            if (is_candidate(v) && fnmatch(globs[k], v->name, 0) == 0) hit[i] = any = 1;
        }
        if (!any)
            return gr_fail(st, GR_ERR_BAD_ARG, "%s '%s' matches no parameter of the model "
                           "(graft inspect MODEL lists them)", option, globs[k]);
    }
    return GR_OK;
}

/* Everything feeding node `name` (and its own parameters). */
static gr_code mark_until(const gr_graph *g, const char *name, char *frozen, gr_status *st) {
    gr_node *stop = gr_graph_find_node(g, name);
    if (!stop) return gr_fail(st, GR_ERR_BAD_ARG, "--freeze-until: no node named '%s'", name);
    char *feeds = gr_calloc((size_t)g->n_values + 1, 1);
    if (!feeds) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int j = 0; j < stop->n_inputs; j++)
        if (stop->inputs[j]) feeds[stop->inputs[j]->id] = 1;
    for (int i = stop->id; i >= 0; i--) {
        const gr_node *n = g->nodes[i];
        int any = 0;
        for (int j = 0; j < n->n_outputs; j++) any |= n->outputs[j] && feeds[n->outputs[j]->id];
        for (int j = 0; j < n->n_inputs && any; j++)
            if (n->inputs[j]) feeds[n->inputs[j]->id] = 1;
    }
    for (int i = 0; i < g->n_values; i++) frozen[i] |= feeds[i];
    gr_free(feeds);
    return GR_OK;
}

gr_code gr_pass_train(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    const gr_train_opts *t = opts ? opts->train : NULL;
    if (!t) return GR_OK;
    size_t nv = (size_t)g->n_values + 1;
    char *stat = gr_calloc(nv, 1), *frozen = gr_calloc(nv, 1), *only = gr_calloc(nv, 1);
    gr_code rc = GR_OK;
    if (!stat || !frozen || !only) {
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->id = i;
    gr_mark_bn_statistics(g, stat);
    if ((rc = match_globs(g, t->n_freeze, t->freeze, "--freeze", frozen, st)) != GR_OK ||
        (rc = match_globs(g, t->n_train_only, t->train_only, "--train-only", only, st)) != GR_OK)
        goto done;
    if (t->freeze_until && (rc = mark_until(g, t->freeze_until, frozen, st)) != GR_OK) goto done;
    int adapters = 0, n_trainable = 0;
    for (int i = 0; i < g->n_values; i++)
        adapters |= is_candidate(g->values[i]) && g->values[i]->origin == GR_ORIGIN_ADAPTER;
    for (int i = 0; i < g->n_values; i++) {
        gr_value *v = g->values[i];
        if (!is_candidate(v)) continue;
        int chosen = adapters ? v->origin != GR_ORIGIN_MODEL || only[i]
                              : t->n_train_only == 0 || only[i];
        int train = !stat[i] && !frozen[i] && chosen;
        v->trainable = v->variable = train;
        n_trainable += train;
    }
    if (!n_trainable && !t->eval)
        rc = gr_fail(st, GR_ERR_BAD_ARG, "no parameter is left to train (check --freeze, "
                     "--train-only and --freeze-until)");
done:
    gr_free(stat);
    gr_free(frozen);
    gr_free(only);
    return rc;
}

void gr_train_opts_default(gr_train_opts *o) {
    *o = (gr_train_opts){0};
    o->loss = GR_LOSS_CE;
    o->optimizer = GR_OPTIMIZER_SGD;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->accumulate = 1;
}
