/* lr_groups.c: per-parameter learning-rate factors (--lr-group,
 * --layer-decay) from the graph's layer depths, and the report of
 * `graft train --dry-run` / --verbose that lists them (gr_passes.h says
 * how layers and depths are defined).
 * Requires: value ids equal to their index in g->values; nodes in
 * topological order.
 * Guarantees: the same depths for the model graph (after "train") and the
 * training step built from it: the training passes add no Conv, Gemm or
 * MatMul before the loss, and a parameter keeps its first consumer's
 * depth (gradient and optimizer nodes come after every forward node). */
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes_internal.h"

/* A float parameter that can train: not optimizer or BatchNorm state. */
static int is_weight(const gr_value *v, const char *stat) {
    return v && v->kind == GR_VALUE_PARAM && gr_dtype_is_float(v->dtype) && !stat[v->id] &&
           !(v->variable && !v->trainable);
}

void gr_mark_bn_statistics(const gr_graph *g, char *stat) {
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->dead || n->op != GR_OP_BATCH_NORM) continue;
        for (int j = 3; j < 5 && j < n->n_inputs; j++)
            if (n->inputs[j]) stat[n->inputs[j]->id] = 1;
    }
}

/* wd[v->id] = 1 for a weight and for what nodes compute from weights and
 * constants alone (a Transpose or Reshape of a weight). */
static int weight_only(const gr_node *n, const char *wd) {
    int any = 0;
    for (int j = 0; j < n->n_inputs; j++) {
        const gr_value *v = n->inputs[j];
        if (!v) continue;
        if (!wd[v->id] && v->kind != GR_VALUE_CONST) return 0;
        any |= wd[v->id];
    }
    return any;
}

static int is_layer(const gr_node *n, const char *wd) {
    if (n->op != GR_OP_CONV && n->op != GR_OP_CONV_TRANSPOSE && n->op != GR_OP_GEMM &&
        n->op != GR_OP_MATMUL)
        return 0;
    for (int j = 0; j < n->n_inputs; j++)
        if (n->inputs[j] && wd[n->inputs[j]->id]) return 1;
    return 0;
}

/* layer[] = depth for the weights v derives from that have none yet. */
static void assign(const gr_value *v, const char *wd, int depth, int *layer) {
    if (!v || !wd[v->id]) return;
    if (!v->producer) {
        if (layer[v->id] < 0) layer[v->id] = depth;
        return;
    }
    for (int j = 0; j < v->producer->n_inputs; j++)
        assign(v->producer->inputs[j], wd, depth, layer);
}

/* layer[i]: depth of the first node that uses weight i (directly or
 * through weight-only nodes) and is not weight-only; see gr_passes.h. */
static void layer_depths(const gr_graph *g, char *wd, int *depth, int *layer) {
    for (int i = 0; i < g->n_values; i++) depth[i] = 0, layer[i] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const gr_node *n = g->nodes[i];
        if (n->dead) continue;
        if (weight_only(n, wd)) {
            for (int j = 0; j < n->n_outputs; j++)
                if (n->outputs[j]) wd[n->outputs[j]->id] = 1;
            continue;
        }
        int in = 0;
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] && depth[n->inputs[j]->id] > in) in = depth[n->inputs[j]->id];
        int out = in + is_layer(n, wd);
        for (int j = 0; j < n->n_inputs; j++) assign(n->inputs[j], wd, out, layer);
        for (int j = 0; j < n->n_outputs; j++)
            if (n->outputs[j]) depth[n->outputs[j]->id] = out;
    }
    for (int i = 0; i < g->n_values; i++)
        if (layer[i] < 0 && wd[i] && !g->values[i]->producer) layer[i] = 0; /* unused */
}

/* factor[i] *= the factor of the last --lr-group matching weight i. */
static gr_code apply_groups(const gr_graph *g, const gr_train_opts *t, const int *layer,
                            double *factor, gr_status *st) {
    for (int k = 0; k < t->n_lr_groups; k++) {
        const gr_lr_group *grp = &t->lr_groups[k];
        if (!(grp->factor >= 0) || !isfinite(grp->factor))
            return gr_fail(st, GR_ERR_BAD_ARG, "--lr-group '%s': the factor must be a finite "
                           "number >= 0, not %g", grp->glob, grp->factor);
        int any = 0;
        for (int i = 0; i < g->n_values; i++)
            any |= layer[i] >= 0 && fnmatch(grp->glob, g->values[i]->name, 0) == 0;
        if (!any)
            return gr_fail(st, GR_ERR_BAD_ARG, "--lr-group '%s' matches no parameter of the "
                           "model (graft inspect MODEL lists them)", grp->glob);
    }
    for (int i = 0; i < g->n_values; i++) {
        if (layer[i] < 0) continue;
        for (int k = t->n_lr_groups - 1; k >= 0; k--)
            if (fnmatch(t->lr_groups[k].glob, g->values[i]->name, 0) == 0) {
                factor[i] *= t->lr_groups[k].factor;
                break;
            }
    }
    return GR_OK;
}

gr_code gr_lr_factors(const gr_graph *g, const gr_train_opts *t, int *layer, double *factor,
                      gr_status *st) {
    if (!(t->layer_decay >= 0) || !isfinite(t->layer_decay))
        return gr_fail(st, GR_ERR_BAD_ARG, "--layer-decay must be a finite number > 0, not %g",
                       t->layer_decay);
    size_t nv = (size_t)g->n_values + 1;
    char *stat = gr_calloc(nv, 1), *wd = gr_calloc(nv, 1);
    int *depth = gr_calloc(nv, sizeof *depth);
    if (!stat || !wd || !depth) {
        gr_free(stat);
        gr_free(wd);
        gr_free(depth);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    }
    gr_mark_bn_statistics(g, stat);
    for (int i = 0; i < g->n_values; i++) wd[i] = is_weight(g->values[i], stat);
    layer_depths(g, wd, depth, layer);
    int top = 0;
    for (int i = 0; i < g->n_values; i++)
        if (layer[i] > top && g->values[i]->trainable) top = layer[i];
    for (int i = 0; i < g->n_values; i++)
        factor[i] = layer[i] >= 0 && t->layer_decay > 0 ? pow(t->layer_decay, top - layer[i]) : 1;
    gr_free(stat);
    gr_free(wd);
    gr_free(depth);
    return apply_groups(g, t, layer, factor, st);
}

/* ------------------------------------------------------------------ report */

typedef struct {
    const gr_value *v;
    int layer;
    double factor;
} entry;

static int by_group(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    if (a->factor != b->factor) return a->factor < b->factor ? -1 : 1;
    return a->v->id - b->v->id;
}

static const char *origin_name(gr_param_origin o) {
    return o == GR_ORIGIN_HEAD ? "new head" : o == GR_ORIGIN_ADAPTER ? "adapter" : "model";
}

static void print_param(const gr_value *v, FILE *out) {
    char shape[128];
    fprintf(out, "    %-40s %-18s %s\n", v->name, gr_shape_str(&v->shape, shape, sizeof shape),
            origin_name(v->origin));
}

/* Count, values and bytes of entries [0, n). */
static void totals(const entry *e, int n, int64_t *values, int64_t *bytes) {
    *values = *bytes = 0;
    for (int i = 0; i < n; i++) {
        *values += gr_value_numel(e[i].v);
        *bytes += (int64_t)e[i].v->nbytes;
    }
}

/* Trainable parameters, one block per (depth, factor) group. */
static void print_groups(const entry *e, int n, double base_lr, FILE *out) {
    int64_t values, bytes;
    totals(e, n, &values, &bytes);
    fprintf(out, "trainable: %d tensors, %lld values, %lld bytes\n", n, (long long)values,
            (long long)bytes);
    int n_groups = 0;
    for (int i = 0; i < n; n_groups++) {
        int j = i;
        while (j < n && e[j].layer == e[i].layer && e[j].factor == e[i].factor) j++;
        totals(e + i, j - i, &values, &bytes);
        fprintf(out, "  group %d (depth %d): lr %.6g (x %.6g), %d tensors, %lld values, "
                "%lld bytes\n", n_groups + 1, e[i].layer, base_lr * e[i].factor, e[i].factor,
                j - i, (long long)values, (long long)bytes);
        for (; i < j; i++) print_param(e[i].v, out);
    }
}

/* Frozen parameters, or those of one origin among the trainable. */
static void print_list(const char *title, const entry *e, int n, FILE *out) {
    int64_t values, bytes;
    totals(e, n, &values, &bytes);
    fprintf(out, "%s: %d tensors, %lld values, %lld bytes\n", title, n, (long long)values,
            (long long)bytes);
    for (int i = 0; i < n; i++) print_param(e[i].v, out);
}

gr_code gr_train_report(const gr_graph *g, const gr_train_opts *t, double base_lr,
                        FILE *out, gr_status *st) {
    size_t nv = (size_t)g->n_values + 1;
    int *layer = gr_calloc(nv, sizeof *layer);
    double *factor = gr_calloc(nv, sizeof *factor);
    entry *e = gr_calloc(2 * nv, sizeof *e); /* adapters listed twice */
    gr_code rc = GR_ERR_NOMEM;
    if (!layer || !factor || !e) {
        gr_fail(st, rc, "out of memory");
        goto done;
    }
    if ((rc = gr_lr_factors(g, t, layer, factor, st)) != GR_OK) goto done;
    /* e: trainable (sorted by group), then frozen, then adapters (all). */
    int n_train = 0, n_frozen = 0, n_adapter = 0;
    for (int i = 0; i < g->n_values; i++)
        if (layer[i] >= 0 && g->values[i]->trainable)
            e[n_train++] = (entry){g->values[i], layer[i], factor[i]};
    qsort(e, (size_t)n_train, sizeof *e, by_group);
    for (int i = 0; i < g->n_values; i++)
        if (layer[i] >= 0 && !g->values[i]->trainable)
            e[n_train + n_frozen++] = (entry){g->values[i], layer[i], factor[i]};
    entry *adapters = e + n_train + n_frozen;
    for (int i = 0; i < g->n_values; i++)
        if (layer[i] >= 0 && g->values[i]->origin == GR_ORIGIN_ADAPTER)
            adapters[n_adapter++] = (entry){g->values[i], layer[i], factor[i]};
    fprintf(out, "learning rate %g", base_lr);
    if (t->layer_decay > 0) fprintf(out, ", layer decay %g", t->layer_decay);
    fprintf(out, " (before --warmup and --schedule)\n");
    print_groups(e, n_train, base_lr, out);
    if (t->l2sp_alpha > 0 || t->l2sp_beta > 0) {
        int n_model = 0;
        for (int i = 0; i < n_train; i++) n_model += e[i].v->origin == GR_ORIGIN_MODEL;
        fprintf(out, "l2sp: %g * ||w - w0||^2 over %d pretrained tensors, %g * ||w||^2 over "
                "%d new ones\n", t->l2sp_alpha, n_model, t->l2sp_beta, n_train - n_model);
    }
    print_list("frozen", e + n_train, n_frozen, out);
    print_list("adapters added", adapters, n_adapter, out);
done:
    gr_free(layer);
    gr_free(factor);
    gr_free(e);
    return rc;
}
