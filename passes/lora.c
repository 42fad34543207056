/* lora.c: the "lora" pass (--lora GLOB[:rank=R,alpha=A,dropout=P]): every
 * Gemm, MatMul and Conv weight W whose name a glob matches gets a low-rank
 * adapter, y = base(x) + (alpha/r)·delta(x), with parameters W.lora_A and
 * W.lora_B in the forms of ARCHITECTURE.md "Adapter naming":
 *   x·Wᵀ (Gemm transB=1, MatMul of Transpose(W)): delta = (x·Aᵀ)·Bᵀ
 *   x·W  (MatMul, Gemm transB=0):                 delta = (x·A)·B
 *   Conv: delta = Conv_B(Conv_A(x)), A a conv with W's kernel, strides,
 *         pads and dilations and r output channels, B a 1x1 conv r -> out.
 * A Gemm's transA and alpha apply to the adapter as to W. lora_A is
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform_(a=sqrt(5)),
 * as peft does) from --seed and W's name; lora_B is zero, so the model's
 * function is unchanged until training moves B. With dropout P > 0 the
 * adapter's input goes through an ONNX Dropout (seeded by the "train_mode"
 * pass, removed for evaluation and export).
 * Grouped and depthwise convolutions are skipped: B·A is a full kernel that
 * no grouped weight can hold, so the adapter could not be merged.
 * Requires: opts->train (no --lora: nothing happens); runs before "train".
 * Guarantees: every new parameter has origin GR_ORIGIN_ADAPTER; every glob
 * adapted at least one weight (else GR_ERR_BAD_ARG naming the glob); the
 * base node's output keeps its name (it now names the sum); shapes
 * inferred. */
#include <fnmatch.h>
#include <math.h>
#include <string.h>

#include "passes/lora_internal.h"

/* ------------------------------------------------------------ recognition */

static int float_param(const gr_value *v, int min_rank) {
    return v && v->kind == GR_VALUE_PARAM && v->dtype == GR_DTYPE_F32 &&
           v->shape.rank >= min_rank && gr_shape_is_static(&v->shape);
}

/* Transpose(W) of a 2-D weight (perm absent or [1,0]). */
static gr_value *transposed_weight(const gr_value *v) {
    const gr_node *t = v->producer;
    if (v->kind != GR_VALUE_NODE || !t || t->dead || t->op != GR_OP_TRANSPOSE) return NULL;
    const int64_t *perm;
    int n = gr_node_ints(t, "perm", &perm);
    if (n >= 0 && (n != 2 || perm[0] != 1 || perm[1] != 0)) return NULL;
    return float_param(t->inputs[0], 2) && t->inputs[0]->shape.rank == 2 ? t->inputs[0] : NULL;
}

int lora_find_use(const gr_node *n, lora_use *u) {
    if (n->dead || n->n_inputs < 2 || !n->inputs[1]) return 0;
    gr_value *w = n->inputs[1];
    *u = (lora_use){.node = (gr_node *)n, .w = w};
    if (n->op == GR_OP_CONV && float_param(w, 3)) {
        u->form = LORA_CONV, u->out = w->shape.dims[0], u->in = w->shape.dims[1];
    } else if ((n->op == GR_OP_GEMM || n->op == GR_OP_MATMUL) && float_param(w, 2) &&
               w->shape.rank == 2) {
        int t = n->op == GR_OP_GEMM && gr_node_int(n, "transB", 0);
        u->form = t ? LORA_XWT : LORA_XW;
        u->in = w->shape.dims[t ? 1 : 0], u->out = w->shape.dims[t ? 0 : 1];
    } else if (n->op == GR_OP_MATMUL && (u->w = transposed_weight(w))) {
        u->form = LORA_XWT, u->in = u->w->shape.dims[1], u->out = u->w->shape.dims[0];
    } else {
        return 0;
    }
    return 1;
}

static gr_value *suffixed_value(const gr_graph *g, const char *w, const char *suffix) {
    char name[1024];
    snprintf(name, sizeof name, "%s%s", w, suffix);
    return gr_graph_find(g, name);
}

int lora_find_adapter(const gr_graph *g, gr_node *n, lora_adapter *out) {
    if (n->dead || n->op != GR_OP_ADD || !n->inputs[0] || !n->inputs[1]) return 0;
    const gr_node *mul = n->inputs[1]->producer, *base = n->inputs[0]->producer;
    if (!mul || !base || mul->dead || mul->op != GR_OP_MUL) return 0;
    const gr_value *s = mul->inputs[1];
    size_t len = strlen(s->name), sl = strlen(".lora_scale");
    if (s->kind != GR_VALUE_CONST || s->dtype != GR_DTYPE_F32 || gr_value_numel(s) != 1 ||
        len <= sl || strcmp(s->name + len - sl, ".lora_scale"))
        return 0;
    lora_use u;
    if (!lora_find_use(base, &u) || strncmp(u.w->name, s->name, len - sl) ||
        u.w->name[len - sl])
        return 0;
    gr_value *a = suffixed_value(g, u.w->name, ".lora_A");
    gr_value *b = suffixed_value(g, u.w->name, ".lora_B");
    if (!float_param(a, 2) || !float_param(b, 2)) return 0;
    *out = (lora_adapter){.add = n, .use = u, .a = a, .b = b,
                          .scale = ((const float *)s->data)[0],
                          .rank = a->shape.dims[u.form == LORA_XW ? 1 : 0]};
    return 1;
}

/* ------------------------------------------------------------- parameters */

/* Seeds from --seed and the weight's name: an adapter's init does not
 * depend on which other weights get adapters. */
static void seed_for(gr_rng *r, uint64_t seed, const char *name) {
    uint64_t h = gr_hash64(seed ^ 0x6c6f7261ull /* "lora" */);
    for (const char *c = name; *c; c++) h = gr_hash64(h ^ (unsigned char)*c);
    gr_rng_seed(r, h);
}

static gr_value *new_param(gr_graph *g, const char *w, const char *suffix, int rank,
                           const int64_t *dims, double bound, gr_rng *r, gr_status *st) {
    char name[1024];
    snprintf(name, sizeof name, "%s%s", w, suffix);
    gr_shape s = gr_shape_make(rank, dims);
    gr_value *v = gr_graph_add_data(g, GR_VALUE_PARAM, name, GR_DTYPE_F32, &s, NULL);
    if (!v) { /* adapter_params checked the name is free */
        gr_fail(st, GR_ERR_NOMEM, "out of memory");
        return NULL;
    }
    float *d = v->data;
    for (int64_t i = 0; bound > 0 && i < gr_shape_numel(&s); i++)
        d[i] = (float)((2.0 * gr_rng_uniform(r) - 1.0) * bound);
    v->trainable = 1;
    v->origin = GR_ORIGIN_ADAPTER;
    return v;
}

/* W.lora_A, W.lora_B and the CONST W.lora_scale for use u; a weight used
 * by several nodes shares one adapter (it adapts W itself). */
static gr_code adapter_params(gr_graph *g, const lora_use *u, const gr_lora_spec *spec,
                              uint64_t seed, gr_value **p, gr_status *st) {
    const char *w = u->w->name;
    p[0] = suffixed_value(g, w, ".lora_A");
    p[1] = suffixed_value(g, w, ".lora_B");
    p[2] = suffixed_value(g, w, ".lora_scale");
    if (p[0] || p[1] || p[2]) {
        int64_t want = u->form == LORA_XW ? u->in : spec->rank;
        if (p[0] && p[1] && p[2] && p[0]->shape.dims[0] == want) return GR_OK;
        return gr_fail(st, GR_ERR_UNSUPPORTED, "weight '%s' is used in two forms (x·W and "
                       "x·Wᵀ) or its adapter names are taken; LoRA cannot adapt it", w);
    }
    int64_t r = spec->rank, k = 1, da[GR_MAX_RANK], db[GR_MAX_RANK];
    int rank = u->w->shape.rank;
    if (u->form == LORA_CONV) {
        memcpy(da, u->w->shape.dims, sizeof da);
        da[0] = r;
        db[0] = u->out, db[1] = r;
        for (int i = 2; i < rank; i++) db[i] = 1, k *= u->w->shape.dims[i];
    } else {
        int t = u->form == LORA_XWT;
        da[0] = t ? r : u->in, da[1] = t ? u->in : r;
        db[0] = t ? u->out : r, db[1] = t ? r : u->out;
    }
    gr_rng rng;
    seed_for(&rng, seed, w);
    float scale = (float)(spec->alpha / (double)spec->rank);
    gr_shape s = gr_shape_scalar();
    char name[1024];
    snprintf(name, sizeof name, "%s.lora_scale", w);
    p[0] = new_param(g, w, ".lora_A", rank, da, 1.0 / sqrt((double)(u->in * k)), &rng, st);
    p[1] = p[0] ? new_param(g, w, ".lora_B", rank, db, 0, &rng, st) : NULL;
    p[2] = p[1] ? gr_graph_add_data(g, GR_VALUE_CONST, name, GR_DTYPE_F32, &s, &scale) : NULL;
    if (p[1] && !p[2]) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    return p[2] ? GR_OK : st->code;
}

/* ------------------------------------------------------------------ nodes */

typedef struct {
    gr_graph *g;
    const char *base; /* node names: W.lora, W.lora_1, ... */
    gr_status *st;
} builder;

static gr_node *add(builder *b, gr_op op, int n_inputs, gr_value *const *inputs) {
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i]) return NULL;
    gr_node *n = gr_node_add(b->g, op, b->base, n_inputs, inputs, 1, NULL);
    if (!n) gr_fail(b->st, GR_ERR_NOMEM, "out of memory");
    return n;
}

static gr_value *out(builder *b, gr_node *n, gr_code attrs_ok) {
    if (n && attrs_ok != GR_OK) gr_fail(b->st, GR_ERR_NOMEM, "out of memory");
    return n && attrs_ok == GR_OK ? n->outputs[0] : NULL;
}

static gr_value *transpose(builder *b, gr_value *v) {
    gr_node *n = add(b, GR_OP_TRANSPOSE, 1, &v);
    return out(b, n, n ? gr_node_set_ints(b->g, n, "perm", 2, (int64_t[]){1, 0}) : GR_OK);
}

static gr_value *binary(builder *b, gr_op op, gr_value *x, gr_value *y) {
    gr_value *in[2] = {x, y};
    return out(b, add(b, op, 2, in), GR_OK);
}

/* Gemm(x, m) with the given flags and alpha (no C). */
static gr_value *gemm(builder *b, gr_value *x, gr_value *m, int trans_a, int trans_b,
                      double alpha) {
    gr_value *in[2] = {x, m};
    gr_node *n = add(b, GR_OP_GEMM, 2, in);
    gr_code c = GR_OK;
    if (n && trans_a) c = gr_node_set_int(b->g, n, "transA", 1);
    if (n && c == GR_OK && trans_b) c = gr_node_set_int(b->g, n, "transB", 1);
    if (n && c == GR_OK && alpha != 1.0) c = gr_node_set_float(b->g, n, "alpha", alpha);
    return out(b, n, c);
}

/* Conv(x, k) with the attributes of base (but group 1), or none. */
static gr_value *conv(builder *b, gr_value *x, gr_value *k, const gr_node *base) {
    gr_value *in[2] = {x, k};
    gr_node *n = add(b, GR_OP_CONV, 2, in);
    gr_code c = GR_OK;
    for (int i = 0; n && base && i < base->n_attrs && c == GR_OK; i++) {
        const gr_attr *a = &base->attrs[i];
        if (!strcmp(a->name, "group")) continue;
        if (a->type == GR_ATTR_INTS) c = gr_node_set_ints(b->g, n, a->name, a->n, a->ints);
        else if (a->type == GR_ATTR_INT) c = gr_node_set_int(b->g, n, a->name, a->i);
        else if (a->type == GR_ATTR_STRING) c = gr_node_set_string(b->g, n, a->name, a->s);
    }
    return out(b, n, c);
}

static gr_value *dropout(builder *b, gr_value *x, double p) {
    if (p <= 0) return x;
    gr_shape s = gr_shape_scalar();
    float ratio = (float)p;
    gr_value *in[2] = {x, gr_graph_add_data(b->g, GR_VALUE_CONST, NULL, GR_DTYPE_F32, &s,
                                            &ratio)};
    if (!in[1]) gr_fail(b->st, GR_ERR_NOMEM, "out of memory");
    return out(b, add(b, GR_OP_DROPOUT, 2, in), GR_OK);
}

/* delta(x) for use u, scaled: the adapter's contribution to u's output. */
static gr_value *delta(builder *b, const lora_use *u, gr_value *const *p, double p_drop) {
    const gr_node *n = u->node;
    gr_value *x = dropout(b, n->inputs[0], p_drop), *h, *d;
    int t = u->form == LORA_XWT;
    if (u->form == LORA_CONV) {
        h = conv(b, x, p[0], n);
        d = conv(b, h, p[1], NULL);
    } else if (n->op == GR_OP_GEMM) {
        h = gemm(b, x, p[0], (int)gr_node_int(n, "transA", 0), t, 1.0);
        d = gemm(b, h, p[1], 0, t, gr_node_float(n, "alpha", 1.0));
    } else {
        h = binary(b, GR_OP_MATMUL, x, t ? transpose(b, p[0]) : p[0]);
        d = binary(b, GR_OP_MATMUL, h, t ? transpose(b, p[1]) : p[1]);
    }
    return binary(b, GR_OP_MUL, d, p[2]);
}

/* Adds the adapter to use u: y keeps its name and now names base + delta. */
static gr_code insert(gr_graph *g, const lora_use *u, const gr_lora_spec *spec, uint64_t seed,
                      gr_status *st) {
    gr_value *p[3];
    GR_TRY(adapter_params(g, u, spec, seed, p, st));
    char base[1024];
    snprintf(base, sizeof base, "%s.lora", u->w->name);
    builder b = {g, base, st};
    gr_value *d = delta(&b, u, p, spec->dropout);
    if (!d) return st->code ? st->code : gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_value *y = u->node->outputs[0];
    const char *name = y->name;
    snprintf(base, sizeof base, "%s.base", name);
    if (gr_value_rename(g, y, gr_graph_unique_name(g, base)) != GR_OK)
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_value *in[2] = {y, d};
    gr_node *sum = gr_node_add(g, GR_OP_ADD, b.base, 2, in, 1, (const char *const[]){name});
    if (!sum) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_value *z = sum->outputs[0];
    gr_value_replace_uses(g, y, z);
    sum->inputs[0] = y; /* replace_uses turned it into z too */
    z->has_declared = y->has_declared, y->has_declared = 0;
    z->declared_dtype = y->declared_dtype, z->declared_shape = y->declared_shape;
    return GR_OK;
}

/* ------------------------------------------------------------------- pass */

static const gr_lora_spec *spec_for(const gr_train_opts *t, const char *name, char *hit) {
    for (int k = 0; k < t->n_lora; k++)
        if (fnmatch(t->lora[k].glob, name, 0) == 0) {
            hit[k] = 1;
            return &t->lora[k];
        }
    return NULL;
}

static gr_code check_spec(const gr_lora_spec *s, gr_status *st) {
    if (s->rank < 1 || !(s->alpha > 0) || !(s->dropout >= 0 && s->dropout < 1))
        return gr_fail(st, GR_ERR_BAD_ARG, "--lora %s: expected rank >= 1, alpha > 0 and "
                       "0 <= dropout < 1", s->glob);
    return GR_OK;
}

/* Adapts every matched use among the nodes that existed on entry; hit[k]
 * (grouped[k]) records that glob k matched an adapted (a grouped) weight. */
static gr_code insert_all(gr_graph *g, const gr_train_opts *t, char *hit, char *grouped,
                          gr_status *st) {
    int n0 = g->n_nodes;
    for (int i = 0; i < n0; i++) {
        lora_use u;
        if (!lora_find_use(g->nodes[i], &u)) continue;
        if (u.form == LORA_CONV && gr_node_int(u.node, "group", 1) != 1) {
            spec_for(t, u.w->name, grouped);
            continue;
        }
        const gr_lora_spec *s = spec_for(t, u.w->name, hit);
        if (!s) continue;
        if (u.w->shape.dims[0] < 1 || u.in < 1 || u.out < 1)
            return gr_fail(st, GR_ERR_BAD_MODEL, "weight '%s' is empty", u.w->name);
        if (insert(g, &u, s, t->seed, st) != GR_OK)
            return gr_status_prefix(st, "--lora %s: weight '%s' (node '%s'): ", s->glob,
                                    u.w->name, u.node->name);
    }
    return GR_OK;
}

gr_code gr_pass_lora(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {
    const gr_train_opts *t = opts ? opts->train : NULL;
    if (!t || t->n_lora <= 0) return GR_OK;
    if (t->n_lora > 64) return gr_fail(st, GR_ERR_BAD_ARG, "at most 64 --lora options");
    char hit[64] = {0}, grouped[64] = {0};
    for (int k = 0; k < t->n_lora; k++) GR_TRY(check_spec(&t->lora[k], st));
    GR_TRY(insert_all(g, t, hit, grouped, st));
    for (int k = 0; k < t->n_lora; k++)
        if (!hit[k])
            return gr_fail(st, GR_ERR_BAD_ARG, "--lora %s matches no Gemm, MatMul or Conv "
                           "weight%s (graft inspect MODEL lists the parameters)", t->lora[k].glob,
                           grouped[k] ? " except grouped or depthwise Conv weights, which LoRA "
                                        "skips" : "");
    GR_TRY(gr_graph_toposort(g, st));
    return gr_graph_infer_shapes(g, st);
}
