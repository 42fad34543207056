/* canon.c: opset-version normalisation. Each ONNX opset's form of an op
 * (7..23) is rewritten onto the one canonical form of ir/ops.def: legacy
 * attributes become constant inputs (Clip-6, Slice-1, Pad-2, Squeeze/
 * Unsqueeze-1/11, ReduceX, Split, Dropout), Upsample and Resize-10 become
 * Resize-19, BatchNormalization-7/9 training outputs become training_mode,
 * and Softmax-1/11 on a non-last axis becomes Flatten -> Softmax ->
 * Reshape(Shape(x)). Versions follow onnx/docs/Changelog.md. A form graft
 * cannot express is GR_ERR_UNSUPPORTED naming node, op, opset and value. */
#include <stdio.h>
#include <string.h>

#include "frontend/frontend_internal.h"

static const char *type_name(int t) {
    static const char *const names[] = {"UNDEFINED", "FLOAT", "INT", "STRING",
        "TENSOR", "GRAPH", "FLOATS", "INTS", "STRINGS"};
    return t >= 0 && t < 9 ? names[t] : "?";
}

static gr_code nomem(gr_status *st) {
    return gr_fail(st, GR_ERR_NOMEM, "out of memory");
}

/* Removes attribute name from n; *out gets a copy (its arrays stay valid in
 * the arena). Returns 0 if absent. A present attribute of another type is
 * GR_ERR_BAD_MODEL, reported through *rc. */
static int take_attr(gr_node *n, const char *name, gr_attr_type type, gr_attr *out,
                     int64_t opset, gr_code *rc, gr_status *st) {
    for (int i = 0; i < n->n_attrs; i++) {
        if (strcmp(n->attrs[i].name, name)) continue;
        *out = n->attrs[i];
        memmove(&n->attrs[i], &n->attrs[i + 1], sizeof(gr_attr) * (size_t)(n->n_attrs - i - 1));
        n->n_attrs--;
        if (out->type != type) {
            *rc = gr_fail(st, GR_ERR_BAD_MODEL, "node '%s' (%s): attribute '%s' is a %s, "
                          "expected %s (opset %lld)", n->name, n->op_type, name,
                          type_name(out->type), type_name(type), (long long)opset);
            return 0;
        }
        return 1;
    }
    return 0;
}

/* Sets input i of n, growing the input list (new slots are omitted). */
static gr_code set_input(gr_graph *g, gr_node *n, int i, gr_value *v, gr_status *st) {
    if (i >= n->n_inputs) {
        gr_value **in = gr_arena_alloc(g->arena, sizeof(gr_value *) * (size_t)(i + 2));
        if (!in) return nomem(st);
        if (n->n_inputs) memcpy(in, n->inputs, sizeof(gr_value *) * (size_t)n->n_inputs);
        n->inputs = in;
        n->n_inputs = i + 1;
    }
    n->inputs[i] = v;
    return GR_OK;
}

/* Drops trailing omitted inputs (the canonical arities count them). */
static void trim_inputs(gr_node *n) {
    while (n->n_inputs > 1 && !n->inputs[n->n_inputs - 1]) n->n_inputs--;
}

/* New CONST value "<node>.<suffix>" of dtype with count elements taken
 * from i64 or f64 (whichever is not NULL); rank 0 when scalar is set. */
static gr_value *new_const(gr_graph *g, const gr_node *n, const char *suffix,
                           gr_dtype dtype, int scalar, int count, const int64_t *i64,
                           const double *f64) {
    char base[512];
    snprintf(base, sizeof base, "%s.%s", n->name, suffix);
    const char *name = gr_graph_unique_name(g, base);
    gr_shape sh = scalar ? gr_shape_scalar() : gr_shape_make(1, (int64_t[]){count});
    gr_value *v = name ? gr_graph_add_data(g, GR_VALUE_CONST, name, dtype, &sh, NULL) : NULL;
    if (!v) return NULL;
    for (int i = 0; i < count; i++) {
        if (i64) gr_dtype_store_i64(dtype, v->data, i, i64[i]);
        else gr_dtype_store_f64(dtype, v->data, i, f64[i]);
    }
    return v;
}

/* Attribute INTS name (if present) -> i64 input i. */
static gr_code ints_to_input(gr_graph *g, gr_node *n, const char *name, int i,
                             int required, int64_t opset, gr_status *st) {
    gr_attr a;
    gr_code rc = GR_OK;
    if (!take_attr(n, name, GR_ATTR_INTS, &a, opset, &rc, st)) {
        if (rc != GR_OK) return rc;
        if (!required) return GR_OK;
        return gr_fail(st, GR_ERR_BAD_MODEL, "node '%s' (%s): attribute '%s' is "
                       "required at opset %lld", n->name, n->op_type, name, (long long)opset);
    }
    gr_value *v = new_const(g, n, name, GR_DTYPE_I64, 0, a.n, a.ints, NULL);
    return v ? set_input(g, n, i, v, st) : nomem(st);
}

/* Does op's output 0 have the dtype of its input 0? (Only used to find
 * the dtype of constants synthesised for legacy attributes.) */
static int keeps_dtype(gr_op op) {
    const gr_op_info *info = gr_op_info_of(op);
    if (!info) return 0;
    if (info->flags & GR_OPF_COMPARE) return 0;
    if (info->flags & (GR_OPF_ELEMENTWISE | GR_OPF_REDUCE | GR_OPF_SHAPE_ONLY))
        return op != GR_OP_CAST && op != GR_OP_CAST_LIKE && op != GR_OP_WHERE;
    switch (op) {
    case GR_OP_CONV: case GR_OP_CONV_TRANSPOSE: case GR_OP_MAX_POOL:
    case GR_OP_AVERAGE_POOL: case GR_OP_GLOBAL_AVERAGE_POOL: case GR_OP_GLOBAL_MAX_POOL:
    case GR_OP_BATCH_NORM: case GR_OP_INSTANCE_NORM: case GR_OP_LAYER_NORM:
    case GR_OP_LRN: case GR_OP_SOFTMAX: case GR_OP_LOG_SOFTMAX: case GR_OP_MATMUL:
    case GR_OP_GEMM: case GR_OP_RESIZE: case GR_OP_DROPOUT:
        return 1;
    default:
        return 0;
    }
}

/* Element type of v as far as the model states it without inference: its
 * own or declared dtype, else that of the value it is computed from
 * through dtype-preserving ops, or a Cast's target. UNDEFINED if unknown. */
static gr_dtype dtype_hint(const gr_value *v) {
    for (int steps = 0; v && steps < 10000; steps++) {
        if (v->dtype != GR_DTYPE_UNDEFINED) return v->dtype;
        if (v->has_declared && v->declared_dtype != GR_DTYPE_UNDEFINED)
            return v->declared_dtype;
        const gr_node *p = v->producer;
        if (!p || p->op == GR_OP_UNKNOWN || v->producer_output != 0) break;
        if (p->op == GR_OP_CAST) {
            const gr_attr *to = gr_node_attr(p, "to");
            return to && to->type == GR_ATTR_INT && gr_dtype_valid((int)to->i)
                       ? (gr_dtype)to->i : GR_DTYPE_UNDEFINED;
        }
        if (!keeps_dtype(p->op) || p->n_inputs < 1) break;
        v = p->inputs[0];
    }
    return GR_DTYPE_UNDEFINED;
}

/* Attribute FLOAT name (if present) -> scalar input i of x's dtype (see
 * dtype_hint; f32 when the model does not tell without inference). */
static gr_code float_to_input(gr_graph *g, gr_node *n, const char *name, int i,
                              int64_t opset, gr_status *st) {
    gr_attr a;
    gr_code rc = GR_OK;
    if (!take_attr(n, name, GR_ATTR_FLOAT, &a, opset, &rc, st)) return rc;
    gr_dtype dt = n->n_inputs ? dtype_hint(n->inputs[0]) : GR_DTYPE_UNDEFINED;
    if (dt == GR_DTYPE_UNDEFINED) dt = GR_DTYPE_F32;
    gr_value *v = new_const(g, n, name, dt, 1, 1, NULL, &a.f);
    return v ? set_input(g, n, i, v, st) : nomem(st);
}

static gr_code unsupported(const gr_node *n, int64_t opset, gr_status *st,
                           const char *what) {
    return gr_fail(st, GR_ERR_UNSUPPORTED, "node '%s' (%s) at opset %lld: %s", n->name,
                   n->op_type, (long long)opset, what);
}

/* ------------------------------------------------------------ op forms */

/* Clip-6: min/max attributes -> optional inputs 1 and 2. */
static gr_code canon_clip(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    GR_TRY(float_to_input(g, n, "min", 1, opset, st));
    return float_to_input(g, n, "max", 2, opset, st);
}

/* Slice-1: starts/ends/axes attributes -> inputs 1..3. */
static gr_code canon_slice(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    GR_TRY(ints_to_input(g, n, "starts", 1, 1, opset, st));
    GR_TRY(ints_to_input(g, n, "ends", 2, 1, opset, st));
    return ints_to_input(g, n, "axes", 3, 0, opset, st);
}

/* Pad-2: pads/value attributes -> inputs pads (i64) and constant_value. */
static gr_code canon_pad(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    GR_TRY(ints_to_input(g, n, "pads", 1, 1, opset, st));
    return float_to_input(g, n, "value", 2, opset, st);
}

/* Squeeze/Unsqueeze-1/11: axes attribute -> input 1. */
static gr_code canon_axes(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    return ints_to_input(g, n, "axes", 1, n->op == GR_OP_UNSQUEEZE, opset, st);
}

/* ReduceX before 18 (ReduceSum before 13): axes attribute -> input 1.
 * Without axes both forms reduce everything (noop_with_empty_axes = 0). */
static gr_code canon_reduce(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    if (n->op == GR_OP_REDUCE_SUM && opset >= 13) return GR_OK;
    return ints_to_input(g, n, "axes", 1, 0, opset, st);
}

/* Split-2/11: split attribute -> input; before 18 equal parts came from
 * the output count, which Split-18 spells num_outputs. */
static gr_code canon_split(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    if (opset < 13) GR_TRY(ints_to_input(g, n, "split", 1, 0, opset, st));
    if (n->n_inputs < 2 || !n->inputs[1])
        return gr_node_set_int(g, n, "num_outputs", n->n_outputs) == GR_OK ? GR_OK
                                                                         : nomem(st);
    return GR_OK;
}

/* Known rank of v from inference so far or its declared type; -1 if not. */
static int rank_of(const gr_value *v) {
    if (v->shape.rank >= 0) return v->shape.rank;
    if (v->has_declared) return v->declared_shape.rank;
    return -1;
}

/* Softmax-1/11 coerce x to 2-D at axis (default 1). On the last axis that
 * is Softmax-13(axis=-1); otherwise Flatten(axis) -> Softmax(-1) ->
 * Reshape(to Shape(x)), which needs no static shape. */
static gr_code canon_softmax(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    int64_t axis = gr_node_int(n, "axis", 1);
    if (!gr_node_attr(n, "axis")) axis = 1; /* the schema default is Softmax-13's */
    gr_value *x = n->inputs[0], *y = n->outputs[0];
    int rank = x ? rank_of(x) : -1;
    if (axis == -1 || (rank >= 0 && axis == rank - 1))
        return gr_node_set_int(g, n, "axis", -1) == GR_OK ? GR_OK : nomem(st);
    if (!x || !y) return unsupported(n, opset, st, "input or output omitted");
    char base[512];
    snprintf(base, sizeof base, "%s.flatten", n->name);
    gr_node *f = gr_node_add(g, GR_OP_FLATTEN, base, 1, &x, 1, NULL);
    snprintf(base, sizeof base, "%s.shape", n->name);
    gr_node *s = f ? gr_node_add(g, GR_OP_SHAPE, base, 1, &x, 1, NULL) : NULL;
    char t_base[512];
    snprintf(t_base, sizeof t_base, "%s.2d", n->name);
    const char *t_name[1] = {gr_graph_unique_name(g, t_base)};
    snprintf(base, sizeof base, "%s.reshape", n->name);
    gr_value *r_in[2] = {NULL, s ? s->outputs[0] : NULL};
    gr_node *r = s && t_name[0] ? gr_node_add(g, GR_OP_RESHAPE, base, 2, r_in, 1, t_name)
                                : NULL;
    if (!r || gr_node_set_int(g, f, "axis", axis) != GR_OK ||
        gr_node_set_int(g, r, "allowzero", 1) != GR_OK ||
        gr_node_set_int(g, n, "axis", -1) != GR_OK)
        return nomem(st);
    /* n keeps its name and now maps 2-D -> 2-D; r produces the model's y. */
    gr_value *t = r->outputs[0];
    n->inputs[0] = f->outputs[0];
    n->outputs[0] = t;
    t->producer = n;
    t->producer_output = 0;
    r->outputs[0] = y;
    y->producer = r;
    y->producer_output = 0;
    r->inputs[0] = t;
    return GR_OK;
}

/* BatchNormalization-7/9: spatial must be 1; the optional outputs mean and
 * var (saved_* were dropped by gr_canon_outputs) mean training mode. */
static gr_code canon_batchnorm(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    gr_attr a;
    gr_code rc = GR_OK;
    if (take_attr(n, "spatial", GR_ATTR_INT, &a, opset, &rc, st) && a.i != 1) {
        char what[128];
        snprintf(what, sizeof what, "attribute spatial = %lld is not supported "
                 "(only spatial = 1)", (long long)a.i);
        return unsupported(n, opset, st, what);
    }
    GR_TRY(rc);
    take_attr(n, "is_test", GR_ATTR_INT, &a, opset, &rc, st); /* BN-6 leftover */
    GR_TRY(rc);
    for (int i = 1; i < n->n_outputs; i++)
        if (n->outputs[i])
            return gr_node_set_int(g, n, "training_mode", 1) == GR_OK ? GR_OK : nomem(st);
    return GR_OK;
}

/* Dropout-7/10: ratio attribute -> input 1 (f32 scalar); no training_mode
 * input means inference, as the old forms outside training. */
static gr_code canon_dropout(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    gr_attr a;
    gr_code rc = GR_OK;
    take_attr(n, "is_test", GR_ATTR_INT, &a, opset, &rc, st);
    GR_TRY(rc);
    if (!take_attr(n, "ratio", GR_ATTR_FLOAT, &a, opset, &rc, st)) return rc;
    gr_value *v = new_const(g, n, "ratio", GR_DTYPE_F32, 1, 1, NULL, &a.f);
    return v ? set_input(g, n, 1, v, st) : nomem(st);
}

/* Nearest rounding of Upsample/Resize-10 as onnxruntime implements it
 * (there is no nearest_mode before 11): floor when upsampling, ceil when
 * downsampling. Mixed constant scales cannot be expressed. */
static gr_code old_nearest_mode(const gr_node *n, const gr_value *scales, int64_t opset,
                                const char **mode, gr_status *st) {
    *mode = "floor";
    if (!scales || !gr_value_is_constant(scales) || !gr_dtype_is_float(scales->dtype))
        return GR_OK; /* unknown until run time: upsampling is the norm */
    int64_t count = gr_value_numel(scales);
    int up = 0, down = 0;
    for (int64_t i = 0; i < count; i++) {
        double s = gr_dtype_load_f64(scales->dtype, scales->data, i);
        up += s > 1.0;
        down += s < 1.0;
    }
    if (up && down)
        return unsupported(n, opset, st, "nearest resize that upsamples some axes and "
                           "downsamples others (no single nearest_mode matches)");
    if (down) *mode = "ceil";
    return GR_OK;
}

/* Upsample-7 (scales attribute), Upsample-9 and Resize-10 (X, scales) ->
 * Resize(X, roi omitted, scales), asymmetric coordinates. */
static gr_code canon_resize_old(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    gr_attr a;
    gr_code rc = GR_OK;
    gr_value *scales = n->n_inputs > 1 ? n->inputs[1] : NULL;
    if (take_attr(n, "scales", GR_ATTR_FLOATS, &a, opset, &rc, st)) {
        scales = new_const(g, n, "scales", GR_DTYPE_F32, 0, a.n, NULL, a.floats);
        if (!scales) return nomem(st);
    }
    GR_TRY(rc);
    if (!scales) return unsupported(n, opset, st, "no scales given");
    GR_TRY(set_input(g, n, 2, scales, st));
    n->inputs[1] = NULL;
    const char *mode = gr_node_string(n, "mode", "nearest");
    if (!strcmp(mode, "bilinear")) mode = "linear"; /* Upsample-1's spelling */
    if (strcmp(mode, "nearest") && strcmp(mode, "linear") && strcmp(mode, "cubic")) {
        char what[300];
        snprintf(what, sizeof what, "mode '%.200s' is not supported", mode);
        return unsupported(n, opset, st, what);
    }
    if (gr_node_set_string(g, n, "mode", mode) != GR_OK ||
        gr_node_set_string(g, n, "coordinate_transformation_mode", "asymmetric") != GR_OK)
        return nomem(st);
    if (strcmp(mode, "nearest")) return GR_OK;
    const char *nm;
    GR_TRY(old_nearest_mode(n, scales, opset, &nm, st));
    return gr_node_set_string(g, n, "nearest_mode", nm) == GR_OK ? GR_OK : nomem(st);
}

static int empty_const(const gr_value *v) {
    return v && gr_value_is_constant(v) && gr_value_numel(v) == 0;
}

/* Resize-11..19. tf_half_pixel_for_nn (gone at 13) is x = (i + 0.5) / s;
 * half_pixel is that minus 0.5, so floor(x) = round_prefer_ceil(x - 0.5)
 * and round_prefer_floor(x) = ceil(x - 0.5). Empty constant roi/scales
 * (Resize-11 required them) become omitted inputs. */
static gr_code canon_resize(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    if (opset < 11) return canon_resize_old(g, n, opset, st);
    for (int i = 1; i <= 2 && i < n->n_inputs; i++)
        if (empty_const(n->inputs[i])) n->inputs[i] = NULL;
    trim_inputs(n);
    const char *ctm = gr_node_string(n, "coordinate_transformation_mode", "half_pixel");
    if (strcmp(ctm, "tf_half_pixel_for_nn")) return GR_OK;
    const char *mode = gr_node_string(n, "mode", "nearest");
    const char *nm = gr_node_string(n, "nearest_mode", "round_prefer_floor");
    const char *to = !strcmp(nm, "floor")                ? "round_prefer_ceil"
                     : !strcmp(nm, "round_prefer_floor") ? "ceil" : NULL;
    if (strcmp(mode, "nearest") || !to) {
        char what[400];
        snprintf(what, sizeof what, "coordinate_transformation_mode "
                 "'tf_half_pixel_for_nn' with mode '%.100s' and nearest_mode '%.100s' "
                 "has no canonical equivalent", mode, nm);
        return unsupported(n, opset, st, what);
    }
    if (gr_node_set_string(g, n, "coordinate_transformation_mode", "half_pixel") != GR_OK ||
        gr_node_set_string(g, n, "nearest_mode", to) != GR_OK)
        return nomem(st);
    return GR_OK;
}

/* Cast-1 spelled 'to' as a string; a few old exporters kept that later. */
static gr_code canon_cast(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    static const char *const names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8",
        "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE",
        "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    const gr_attr *to = gr_node_attr(n, "to");
    char what[300];
    if (to && to->type == GR_ATTR_INT && !gr_dtype_valid((int)to->i)) {
        snprintf(what, sizeof what, "cast to data type %s (%lld) is not supported",
                 gr_onnx_dtype_name((int)to->i), (long long)to->i);
        return unsupported(n, opset, st, what);
    }
    if (!to || to->type != GR_ATTR_STRING) return GR_OK;
    for (int i = 1; i < (int)(sizeof names / sizeof names[0]); i++)
        if (!strcmp(to->s, names[i]))
            return gr_node_set_int(g, n, "to", i) == GR_OK ? GR_OK : nomem(st);
    snprintf(what, sizeof what, "attribute to = '%.200s' is not a data type name", to->s);
    return unsupported(n, opset, st, what);
}

/* Gemm-6's broadcast and the consumed_inputs of opset <= 6 carry no
 * meaning in the newer forms; old exporters sometimes leave them. */
static gr_code drop_legacy(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    (void)g;
    gr_attr a;
    gr_code rc = GR_OK;
    take_attr(n, "consumed_inputs", GR_ATTR_INTS, &a, opset, &rc, st);
    GR_TRY(rc);
    if (n->op == GR_OP_GEMM) take_attr(n, "broadcast", GR_ATTR_INT, &a, opset, &rc, st);
    return rc;
}

typedef gr_code (*canon_fn)(gr_graph *g, gr_node *n, int64_t opset, gr_status *st);

/* Op, first opset whose form is already canonical, rewrite for older. */
static const struct {
    gr_op op;
    int64_t canonical_since;
    canon_fn fn;
} rules[] = {
    {GR_OP_CLIP, 11, canon_clip},
    {GR_OP_SLICE, 10, canon_slice},
    {GR_OP_PAD, 11, canon_pad},
    {GR_OP_SQUEEZE, 13, canon_axes},
    {GR_OP_UNSQUEEZE, 13, canon_axes},
    {GR_OP_SPLIT, 18, canon_split},
    {GR_OP_SOFTMAX, 13, canon_softmax},
    {GR_OP_LOG_SOFTMAX, 13, canon_softmax},
    {GR_OP_BATCH_NORM, 14, canon_batchnorm},
    {GR_OP_DROPOUT, 12, canon_dropout},
    {GR_OP_RESIZE, 1000, canon_resize},
    {GR_OP_CAST, 1000, canon_cast},
};

gr_code gr_canon_node(gr_graph *g, gr_node *n, int64_t opset, gr_status *st) {
    GR_TRY(drop_legacy(g, n, opset, st));
    const gr_op_info *info = gr_op_info_of(n->op);
    if (info && (info->flags & GR_OPF_REDUCE) && opset < 18)
        return canon_reduce(g, n, opset, st);
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (rules[i].op == n->op && opset < rules[i].canonical_since)
            return rules[i].fn(g, n, opset, st);
    return GR_OK;
}

gr_op gr_canon_op(const char *op_type, int64_t opset) {
    (void)opset; /* Upsample exists up to 10 (deprecated there) */
    if (!strcmp(op_type, "Upsample")) return GR_OP_RESIZE;
    return gr_op_from_name(op_type);
}

gr_code gr_canon_outputs(const char *node_name, const char *op_type,
                         int64_t opset, const char *const *out_names,
                         int *n_outputs,
                         int (*used)(void *ctx, const char *name), void *ctx,
                         gr_status *st) {
    static const char *const bn_names[] = {"Y", "mean", "var", "saved_mean", "saved_var"};
    if (!strcmp(op_type, "BatchNormalization") && opset < 14 && *n_outputs > 3) {
        for (int i = 3; i < *n_outputs && i < 5; i++)
            if (used(ctx, out_names[i]))
                return gr_fail(st, GR_ERR_UNSUPPORTED,
                               "node '%s' (%s) at opset %lld: output %d (%s) '%s' is "
                               "used; the canonical form has no %s output", node_name,
                               op_type, (long long)opset, i, bn_names[i], out_names[i],
                               bn_names[i]);
        *n_outputs = 3;
    }
    if (!strcmp(op_type, "Dropout") && opset < 10 && *n_outputs > 1 &&
        used(ctx, out_names[1]))
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "node '%s' (%s) at opset %lld: the mask output '%s' is used; before "
                       "opset 10 it has the input's type, graft's mask is bool",
                       node_name, op_type, (long long)opset, out_names[1]);
    return GR_OK;
}
