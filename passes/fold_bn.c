/* fold_bn.c: folds inference BatchNormalization, and Mul by a constant
 * per-channel vector (IA3, passes/adapters.c), into the weights of the
 * node before it. With s = scale/sqrt(var+eps) and t = B - mean*s per
 * channel c, BN(y) = y*s + t (a Mul: s its vector, t = 0), so for
 * y = x*W + b:
 *     W'[..c..] = W[..c..] * s[c]      b'[c] = b[c] * s[c] + t[c]
 * Producers: Conv (W:[M,C/g,k..]), ConvTranspose (W:[C,M/g,k..]), Gemm
 * (B:[K,M] or, transB, [M,K]; beta*C folds into C' and beta becomes 1) and
 * MatMul(x, W:[K,M]) + bias. Coefficients are computed in double, stored f32.
 * A weight or bias used only here is rewritten in place (same name); one
 * shared with other nodes stays, and the producer reads a new value of the
 * same kind named "<W>.bn_folded" (a missing bias becomes "<W>.bn_bias").
 * Inference only: the caller must not run this pass in training pipelines
 * (BN statistics and trainable weights would be baked together).
 * Requires: a graph in topological order with shapes inferred.
 * Guarantees: folded BNs and Muls are gone and their output value (name
 * included) is now the producer's output; BNs in training mode, BNs and
 * Muls with non-constant parameters, or whose producer has other users or
 * is not one of the above are left alone; order is kept; compacted. */
#include <math.h>
#include <string.h>

#include "passes/passes_internal.h"

typedef enum { OUT_FIRST, OUT_LAST, CONV_T } w_layout;

typedef struct {
    gr_node *bn;        /* the BatchNormalization or Mul folded */
    const gr_value *vector; /* Mul: its per-channel vector (else NULL) */
    gr_node *producer;  /* Conv, ConvTranspose, Gemm, or Add after MatMul */
    gr_node *weighted;  /* the node reading W: producer, or the MatMul */
    int w_input;        /* W's input index on weighted */
    int b_input;        /* the bias input index on producer */
    w_layout layout;
    int64_t channels;
    int64_t group;      /* ConvTranspose */
} bn_site;

/* Uses of each value when the pass started. Values made by the pass have
 * ids past n and exactly one user (the node they were made for). */
typedef struct {
    int *count;
    int n;
} use_counts;

static int use_count(const use_counts *u, const gr_value *v) {
    return v->id < u->n ? u->count[v->id] : 1;
}

static int const_vector(const gr_value *v, int64_t c) {
    return v && gr_value_is_constant(v) && gr_dtype_is_float(v->dtype) &&
           gr_value_numel(v) == c;
}

static int const_f32(const gr_value *v) {
    return v && gr_value_is_constant(v) && v->dtype == GR_DTYPE_F32 &&
           gr_shape_is_static(&v->shape);
}

/* The live single-user producer of v, or NULL. */
static gr_node *sole_producer(const gr_value *v, const use_counts *uses) {
    if (!v || v->kind != GR_VALUE_NODE || !v->producer || v->producer->dead ||
        use_count(uses, v) != 1 || v->producer_output != 0)
        return NULL;
    return v->producer;
}

/* A bias Gemm or Add may broadcast over [N,M]: [M], [1,M], [1] or scalar. */
static int bias_ok(const gr_value *b, int64_t c) {
    if (!b) return 1;
    if (!const_f32(b)) return 0;
    int64_t numel = gr_value_numel(b);
    if (numel != c && numel != 1) return 0;
    return b->shape.rank <= 1 || (b->shape.rank == 2 && b->shape.dims[0] == 1);
}

static int match_conv(bn_site *s, gr_node *p) {
    const gr_value *w = p->inputs[1], *b = p->n_inputs > 2 ? p->inputs[2] : NULL;
    if (!const_f32(w) || w->shape.rank < 2 || (b && !(const_f32(b) && gr_value_numel(b) == s->channels)))
        return 0;
    s->weighted = p;
    s->w_input = 1;
    s->b_input = 2;
    if (p->op == GR_OP_CONV) {
        s->layout = OUT_FIRST;
        return w->shape.dims[0] == s->channels;
    }
    s->layout = CONV_T;
    s->group = gr_node_int(p, "group", 1);
    return s->group > 0 && w->shape.dims[0] % s->group == 0 &&
           w->shape.dims[1] * s->group == s->channels;
}

static int match_gemm(bn_site *s, gr_node *p) {
    const gr_value *w = p->inputs[1], *b = p->n_inputs > 2 ? p->inputs[2] : NULL;
    if (!const_f32(w) || w->shape.rank != 2 || !bias_ok(b, s->channels)) return 0;
    int trans = gr_node_int(p, "transB", 0) != 0;
    s->weighted = p;
    s->w_input = 1;
    s->b_input = 2;
    s->layout = trans ? OUT_FIRST : OUT_LAST;
    return w->shape.dims[trans ? 0 : 1] == s->channels;
}

/* Add(MatMul(x, W), b) or Add(b, MatMul(x, W)). */
static int match_matmul_add(bn_site *s, gr_node *p, const use_counts *uses) {
    for (int k = 0; k < 2; k++) {
        gr_node *mm = sole_producer(p->inputs[k], uses);
        const gr_value *b = p->inputs[1 - k];
        if (!mm || mm->op != GR_OP_MATMUL || !b || !bias_ok(b, s->channels)) continue;
        const gr_value *w = mm->inputs[1];
        if (!const_f32(w) || w->shape.rank != 2 || w->shape.dims[1] != s->channels ||
            mm->outputs[0]->shape.rank != 2)
            continue;
        s->weighted = mm;
        s->w_input = 1;
        s->b_input = 1 - k;
        s->layout = OUT_LAST;
        return 1;
    }
    return 0;
}

/* The node before the folded one (x's producer) is one that folds. */
static int match_producer(bn_site *s, const gr_value *x, const use_counts *uses) {
    gr_node *p = sole_producer(x, uses);
    if (!p) return 0;
    s->producer = p;
    switch (p->op) {
    case GR_OP_CONV:
    case GR_OP_CONV_TRANSPOSE: return match_conv(s, p);
    case GR_OP_GEMM: return x->shape.rank == 2 && match_gemm(s, p);
    case GR_OP_ADD: return x->shape.rank == 2 && match_matmul_add(s, p, uses);
    default: return 0;
    }
}

static int match_bn(bn_site *s, gr_node *n, const use_counts *uses) {
    memset(s, 0, sizeof *s);
    if (gr_node_int(n, "training_mode", 0) != 0) return 0;
    for (int i = 1; i < n->n_outputs; i++)
        if (n->outputs[i] && use_count(uses, n->outputs[i])) return 0;
    const gr_value *x = n->inputs[0];
    if (!x || !n->outputs[0] || x->dtype != GR_DTYPE_F32 || x->shape.rank < 2 ||
        x->shape.dims[1] < 0)
        return 0;
    s->bn = n;
    s->channels = x->shape.dims[1];
    for (int i = 1; i < 5; i++)
        if (!const_vector(n->inputs[i], s->channels)) return 0;
    return match_producer(s, x, uses);
}

/* Mul(y, v) or Mul(v, y), v a constant f32 vector over y's channels: [C]
 * or [1,C] for y [N,C] (after Gemm, MatMul + Add), [C,1,..] (or [1,C,1,..])
 * for y [N,C,..] (after Conv, ConvTranspose). */
static int match_scale(bn_site *s, gr_node *n, const use_counts *uses) {
    memset(s, 0, sizeof *s);
    for (int k = 0; k < 2; k++) {
        const gr_value *x = n->inputs[k], *v = n->inputs[1 - k];
        if (!x || !v || x->kind != GR_VALUE_NODE || x->dtype != GR_DTYPE_F32 ||
            x->shape.rank < 2 || x->shape.dims[1] <= 0 || !const_f32(v) ||
            !gr_shape_equal(&x->shape, &n->outputs[0]->shape))
            continue;
        int64_t c = x->shape.dims[1];
        int lead = v->shape.rank == x->shape.rank; /* a leading 1 */
        if (gr_value_numel(v) != c || (!lead && v->shape.rank != x->shape.rank - 1) ||
            (lead && v->shape.dims[0] != 1) || v->shape.dims[lead] != c)
            continue;
        s->bn = n;
        s->vector = v;
        s->channels = c;
        return match_producer(s, x, uses);
    }
    return 0;
}

/* Output channel of element i of W. */
static int64_t channel_of(const bn_site *s, const gr_shape *w, int64_t numel, int64_t i) {
    if (s->layout == OUT_FIRST) return i / (numel / w->dims[0]);
    if (s->layout == OUT_LAST) return i % w->dims[w->rank - 1];
    int64_t inner = numel / (w->dims[0] * w->dims[1]), per_group = w->dims[0] / s->group;
    int64_t ci = i / (w->dims[1] * inner), m = (i / inner) % w->dims[1];
    return (ci / per_group) * w->dims[1] + m;
}

/* A new f32 value like `like` (kind, trainability) named base+suffix. */
static gr_value *new_value(gr_graph *g, const gr_value *like, const char *base,
                           const char *suffix, const gr_shape *shape) {
    char *want = gr_arena_printf(g->arena, "%s%s", base, suffix);
    const char *name = want ? gr_graph_unique_name(g, want) : NULL;
    gr_value *v = name ? gr_graph_add_data(g, like->kind, name, GR_DTYPE_F32, shape, NULL)
                       : NULL;
    if (v) v->trainable = like->trainable;
    return v;
}

static gr_code fold_weights(gr_graph *g, const bn_site *s, const double *scale,
                            const use_counts *uses, gr_status *st) {
    gr_value *w = s->weighted->inputs[s->w_input], *out = w;
    int64_t numel = gr_value_numel(w);
    if (use_count(uses, w) != 1) {
        out = new_value(g, w, w->name, ".bn_folded", &w->shape);
        if (!out) return gr_fail(st, GR_ERR_NOMEM, "out of memory folding '%s'", s->bn->name);
        s->weighted->inputs[s->w_input] = out;
    }
    for (int64_t i = 0; i < numel; i++) {
        double x = gr_dtype_load_f64(GR_DTYPE_F32, w->data, i);
        gr_dtype_store_f64(GR_DTYPE_F32, out->data, i,
                           x * scale[channel_of(s, &w->shape, numel, i)]);
    }
    return GR_OK;
}

/* Gives the producer input index `index` (growing its input list). */
static gr_code set_input(gr_graph *g, gr_node *p, int index, gr_value *v, gr_status *st) {
    if (index >= p->n_inputs) {
        gr_value **inputs = gr_arena_alloc(g->arena, sizeof *inputs * (size_t)(index + 1));
        if (!inputs) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        memcpy(inputs, p->inputs, sizeof *inputs * (size_t)p->n_inputs);
        p->inputs = inputs;
        p->n_inputs = index + 1;
    }
    p->inputs[index] = v;
    return GR_OK;
}

/* b'[c] = beta*b[c]*s[c] + t[c] (b = 0 when absent; beta is Gemm's). */
static gr_code fold_bias(gr_graph *g, const bn_site *s, const double *scale,
                         const double *shift, const use_counts *uses, gr_status *st) {
    gr_node *p = s->producer;
    gr_value *b = s->b_input < p->n_inputs ? p->inputs[s->b_input] : NULL, *out = b;
    gr_value *w = s->weighted->inputs[s->w_input];
    double beta = p->op == GR_OP_GEMM ? gr_node_float(p, "beta", 1.0) : 1.0;
    int64_t c = s->channels, nb = b ? gr_value_numel(b) : 0;
    if (!b || use_count(uses, b) != 1 || nb != c) {
        gr_shape shape = gr_shape_make(1, &c);
        out = b ? new_value(g, b, b->name, ".bn_folded", &shape)
                : new_value(g, w, w->name, ".bn_bias", &shape);
        if (!out) return gr_fail(st, GR_ERR_NOMEM, "out of memory folding '%s'", s->bn->name);
    }
    for (int64_t i = 0; i < c; i++) {
        double x = b ? beta * gr_dtype_load_f64(GR_DTYPE_F32, b->data, nb == c ? i : 0) : 0.0;
        gr_dtype_store_f64(GR_DTYPE_F32, out->data, i, x * scale[i] + shift[i]);
    }
    GR_TRY(set_input(g, p, s->b_input, out, st));
    if (p->op == GR_OP_GEMM && beta != 1.0 && gr_node_set_float(g, p, "beta", 1.0) != GR_OK)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    return GR_OK;
}

/* s = scale/sqrt(var+eps), t = B - mean*s; coef holds s then t. */
static void bn_coefficients(const gr_node *bn, int64_t c, double *coef) {
    double eps = gr_node_float(bn, "epsilon", 1e-5);
    const gr_value *scale = bn->inputs[1], *bias = bn->inputs[2];
    const gr_value *mean = bn->inputs[3], *var = bn->inputs[4];
    for (int64_t i = 0; i < c; i++) {
        double sc = gr_dtype_load_f64(scale->dtype, scale->data, i) /
                    sqrt(gr_dtype_load_f64(var->dtype, var->data, i) + eps);
        coef[i] = sc;
        coef[c + i] = gr_dtype_load_f64(bias->dtype, bias->data, i) -
                      gr_dtype_load_f64(mean->dtype, mean->data, i) * sc;
    }
}

static gr_code fold_site(gr_graph *g, const bn_site *s, const use_counts *uses, gr_status *st) {
    double *coef = gr_malloc(sizeof *coef * (size_t)(2 * s->channels + 1));
    if (!coef) return gr_fail(st, GR_ERR_NOMEM, "out of memory folding '%s'", s->bn->name);
    for (int64_t i = 0; s->vector && i < s->channels; i++) {
        coef[i] = gr_dtype_load_f64(GR_DTYPE_F32, s->vector->data, i);
        coef[s->channels + i] = 0;
    }
    if (!s->vector) bn_coefficients(s->bn, s->channels, coef);
    gr_code rc = fold_weights(g, s, coef, uses, st);
    if (rc == GR_OK) rc = fold_bias(g, s, coef, coef + s->channels, uses, st);
    gr_free(coef);
    GR_TRY(rc);
    /* The BN's output (and its name) is now the producer's. */
    gr_value *y = s->bn->outputs[0];
    s->producer->outputs[0] = y;
    y->producer = s->producer;
    y->producer_output = 0;
    gr_node_remove(g, s->bn);
    return GR_OK;
}

gr_code gr_pass_fold_batchnorm(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    (void)opts;
    use_counts uses = {gr_calloc((size_t)g->n_values + 1, sizeof(int)), g->n_values};
    if (!uses.count) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_graph_count_uses(g, uses.count);
    int n_nodes = g->n_nodes;
    gr_code rc = GR_OK;
    for (int i = 0; i < n_nodes && rc == GR_OK; i++) {
        gr_node *n = g->nodes[i];
        bn_site s;
        if (n->dead) continue;
        int match = n->op == GR_OP_BATCH_NORM ? match_bn(&s, n, &uses)
                    : n->op == GR_OP_MUL          ? match_scale(&s, n, &uses)
                                                  : 0;
        if (!match) continue;
        rc = fold_site(g, &s, &uses, st);
        if (rc != GR_OK) gr_status_prefix(st, "node '%s': ", n->name);
    }
    gr_free(uses.count);
    return rc == GR_OK ? gr_passes_compact(g, st) : rc;
}
