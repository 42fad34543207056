/* lora_merge.c: the "lora_merge" pass (export with --merge, `graft run
 * --adapter`): folds every adapter the "lora" pass built into its weight,
 *   x·Wᵀ and Conv: W[o, :] += (alpha/r) · Σ_k B[o, k] · A[k, :]
 *                  (for Conv, A[k, :] is the whole kernel [in, kh, kw]:
 *                   the 1x1 conv B after conv A is one conv with kernel B·A)
 *   x·W:           W[i, o] += (alpha/r) · Σ_k A[i, k] · B[k, o]
 * sums in double, then removes the adapter nodes and parameters, so the
 * graph has its original structure and value names again.
 * Requires: adapters as "lora" builds them (with the parameters' current
 * values: after gr_graph_store_state); Dropout already removed or not.
 * Guarantees: no W.lora_* value is left; a weight that some node reads
 * without an adapter (a tied embedding, say) is GR_ERR_UNSUPPORTED, since
 * merging would change that node too. */
#include <string.h>

#include "passes/lora_internal.h"

static void merge_weight(const lora_adapter *ad) {
    float *w = ad->use.w->data;
    const float *a = ad->a->data, *b = ad->b->data;
    int64_t r = ad->rank, n = gr_value_numel(ad->use.w);
    if (ad->use.form == LORA_XW) { /* W [in, out], A [in, r], B [r, out] */
        int64_t in = ad->use.in, out = ad->use.out;
        for (int64_t i = 0; i < in; i++)
            for (int64_t o = 0; o < out; o++) {
                double sum = 0;
                for (int64_t k = 0; k < r; k++) sum += (double)a[i * r + k] * b[k * out + o];
                w[i * out + o] = (float)(w[i * out + o] + ad->scale * sum);
            }
        return;
    }
    /* W [out, cols], B [out, r], A [r, cols] (cols = in, or in·kh·kw) */
    int64_t out = ad->use.out, cols = n / out;
    for (int64_t o = 0; o < out; o++)
        for (int64_t j = 0; j < cols; j++) {
            double sum = 0;
            for (int64_t k = 0; k < r; k++) sum += (double)b[o * r + k] * a[k * cols + j];
            w[o * cols + j] = (float)(w[o * cols + j] + ad->scale * sum);
        }
}

/* The nodes that compute with W: its readers, and for a Transpose of W the
 * readers of that transpose. *other gets one that is not an adapted base
 * node (is_base, by node id), or stays NULL. */
static void find_unadapted(const gr_graph *g, const gr_value *w, const char *is_base,
                           const gr_node **other) {
    for (int i = 0; i < g->n_nodes && !*other; i++) {
        const gr_node *n = g->nodes[i];
        for (int j = 0; j < n->n_inputs && !n->dead && !*other; j++) {
            if (n->inputs[j] != w) continue;
            if (n->op != GR_OP_TRANSPOSE) {
                if (!is_base[n->id]) *other = n;
                continue;
            }
            for (int k = 0; k < g->n_nodes && !*other; k++)
                for (int m = 0; m < g->nodes[k]->n_inputs; m++)
                    if (!g->nodes[k]->dead && g->nodes[k]->inputs[m] == n->outputs[0] &&
                        !is_base[k])
                        *other = g->nodes[k];
        }
    }
}

/* The Add's output name goes back to the base node's output. */
static gr_code bypass(gr_graph *g, gr_node *add, gr_status *st) {
    gr_value *z = add->outputs[0], *y = add->inputs[0];
    const char *name = z->name;
    gr_value_replace_uses(g, z, y);
    gr_node_remove(g, add);
    if (gr_value_rename(g, z, gr_graph_unique_name(g, "lora.merged")) != GR_OK ||
        gr_value_rename(g, y, name) != GR_OK)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    y->has_declared = z->has_declared;
    y->declared_dtype = z->declared_dtype, y->declared_shape = z->declared_shape;
    return GR_OK;
}

gr_code gr_pass_lora_merge(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    size_t nv = (size_t)g->n_values + 1, nn = (size_t)g->n_nodes + 1;
    char *merged = gr_calloc(nv, 1), *is_base = gr_calloc(nn, 1);
    gr_code rc = merged && is_base ? GR_OK : gr_fail(st, GR_ERR_NOMEM, "out of memory");
    lora_adapter ad;
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->id = i;
    for (int i = 0; rc == GR_OK && i < g->n_nodes; i++)
        if (lora_find_adapter(g, g->nodes[i], &ad)) is_base[ad.use.node->id] = 1;
    for (int i = 0; rc == GR_OK && i < g->n_nodes; i++) {
        if (!lora_find_adapter(g, g->nodes[i], &ad) || merged[ad.use.w->id]) continue;
        const gr_node *other = NULL;
        find_unadapted(g, ad.use.w, is_base, &other);
        if (other)
            rc = gr_fail(st, GR_ERR_UNSUPPORTED, "cannot merge the adapter of '%s': node '%s' "
                         "(%s) reads it without one (export with --no-merge)", ad.use.w->name,
                         other->name, other->op_type);
        else
            merge_weight(&ad), merged[ad.use.w->id] = 1;
    }
    for (int i = 0; rc == GR_OK && i < g->n_nodes; i++)
        if (lora_find_adapter(g, g->nodes[i], &ad)) rc = bypass(g, g->nodes[i], st);
    gr_free(merged);
    gr_free(is_base);
    if (rc == GR_OK) rc = gr_pass_dce(g, opts, st);
    return rc;
}
