/* pad.c: Pad (modes constant, reflect, edge, wrap; negative pads crop;
 * constant_value input, constant or runtime; optional axes) as a view. An
 * untouched or only-cropped axis is affine; a padded axis gets a table that
 * maps each output index to its input index (or to the fill value). */
#include <string.h>

#include "codegen/movement_internal.h"

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

/* Input index for output index o of an axis of extent d padded by begin,
 * or -1 for the fill value. */
static int64_t source_index(pad_mode mode, int64_t o, int64_t begin, int64_t d) {
    int64_t i = o - begin;
    if (i >= 0 && i < d) return i;
    if (d <= 0) return -1;
    switch (mode) {
    case PAD_CONSTANT: return -1;
    case PAD_EDGE: return i < 0 ? 0 : d - 1;
    case PAD_WRAP: return ((i % d) + d) % d;
    case PAD_REFLECT: {
        if (d == 1) return 0;
        int64_t period = 2 * (d - 1);
        int64_t j = ((i % period) + period) % period;
        return j < d ? j : period - j;
    }
    }
    return -1;
}

static gr_code parse_mode(const gr_node *n, pad_mode *mode, gr_status *st) {
    const char *s = gr_node_string(n, "mode", "constant");
    if (!strcmp(s, "constant")) *mode = PAD_CONSTANT;
    else if (!strcmp(s, "reflect")) *mode = PAD_REFLECT;
    else if (!strcmp(s, "edge")) *mode = PAD_EDGE;
    else if (!strcmp(s, "wrap")) *mode = PAD_WRAP;
    else return gr_fail(st, GR_ERR_UNSUPPORTED, "Pad mode '%s'", s);
    return GR_OK;
}

/* begin[r], end[r] from the pads and axes inputs (constant). */
static gr_code read_pads(const gr_node *n, int r, int64_t *begin, int64_t *end, gr_status *st) {
    int64_t pads[2 * GR_MAX_RANK], axes[GR_MAX_RANK];
    int64_t np = gr_value_const_ints(n->inputs[1], pads, 2 * GR_MAX_RANK);
    if (np < 0 || np > 2 * GR_MAX_RANK || np % 2)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Pad needs constant pads (2 per axis)");
    int64_t na = np / 2;
    const gr_value *av = n->n_inputs > 3 ? n->inputs[3] : NULL;
    if (av && gr_value_const_ints(av, axes, GR_MAX_RANK) != na)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Pad needs constant axes, one per pair of pads");
    if (!av && na != r)
        return gr_fail(st, GR_ERR_BAD_MODEL, "pads has %lld values, expected %d", (long long)np, 2 * r);
    for (int i = 0; i < r; i++) begin[i] = end[i] = 0;
    for (int64_t i = 0; i < na; i++) {
        int a = (int)i;
        if (av) GR_TRY(mv_axis(n, axes[i], r, &a, st));
        begin[a] = pads[i];
        end[a] = pads[i + na];
    }
    return GR_OK;
}

static void set_fill(const gr_node *n, mv_view *v) {
    const gr_value *cv = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (!cv || gr_value_numel(cv) < 1) {
        v->fill_kind = MV_FILL_CONST;
        v->fill_bits = 0;
    } else if (gr_value_is_constant(cv)) {
        v->fill_kind = MV_FILL_CONST;
        v->fill_bits = mv_const_bits(cv);
    } else {
        v->fill_kind = MV_FILL_BUFFER;
        v->fill_value = cv;
    }
}

/* data:[d..] pads:[2k] constant_value? axes?:[k] -> [d + begin + end] */
gr_code cg_emit_pad(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                    gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank;
    pad_mode mode = PAD_CONSTANT;
    GR_TRY(parse_mode(n, &mode, st));
    int64_t begin[GR_MAX_RANK], end[GR_MAX_RANK], xs[GR_MAX_RANK], ys[GR_MAX_RANK];
    GR_TRY(read_pads(n, r, begin, end, st));
    mv_strides(&x->shape, xs);
    mv_strides(&y->shape, ys);
    int empty = gr_value_numel(x) == 0 && gr_value_numel(y) > 0;
    if (empty && mode != PAD_CONSTANT)
        return gr_fail(st, GR_ERR_BAD_MODEL, "Pad mode %s of an empty tensor",
                       gr_node_string(n, "mode", "constant"));
    mv_view v;
    mv_view_init(&v, x, y);
    set_fill(n, &v);
    v.fill_only = empty;
    for (int i = 0; i < r && !empty; i++) {
        int64_t d = x->shape.dims[i], od = y->shape.dims[i];
        if (begin[i] <= 0 && end[i] <= 0) { /* crop only */
            v.in_base += -begin[i] * xs[i];
            mv_add_affine(&v, od, ys[i], xs[i]);
            continue;
        }
        int64_t *table = gr_malloc(sizeof(int64_t) * (size_t)(od ? od : 1));
        if (!table) {
            mv_views_free(&v, 1);
            return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        }
        for (int64_t o = 0; o < od; o++) {
            int64_t j = source_index(mode, o, begin[i], d);
            table[o] = j < 0 ? MV_FILL : j * xs[i];
        }
        mv_add_table(&v, od, ys[i], table);
    }
    if (empty) mv_add_affine(&v, gr_value_numel(y), 1, 0);
    return mv_emit_node(m, n, name, k, &v, 1, st);
}
