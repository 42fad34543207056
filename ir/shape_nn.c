/* shape_nn.c: shape rules of the neural-network ops: MatMul, Gemm, Conv,
 * ConvTranspose, the normalizations, pooling, Softmax and the reductions.
 * Unknown extents (GR_DIM_DYNAMIC) propagate; a batch symbol passes through
 * unchanged, a computed extent from a dynamic one becomes anonymous. */
#include <string.h>

#include "ir/gr_ir.h"
#include "ir/ir_internal.h"

static gr_code same_dtype(const gr_node *n, int i, int j, gr_status *st) {
    const gr_value *a = n->inputs[i], *b = n->inputs[j];
    if (a && b && a->dtype != b->dtype)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input %d ('%s') is %s, expected %s like input %d", j, b->name,
                            gr_dtype_name(b->dtype), gr_dtype_name(a->dtype), i);
    return GR_OK;
}

/* Input i, when present with known shape, must be [expected] (a per-channel
 * vector); what names the dim for the message. */
static gr_code need_vector(const gr_node *n, int i, int64_t expected, const char *what,
                           gr_status *st) {
    const gr_value *v = i < n->n_inputs ? n->inputs[i] : NULL;
    if (!v || v->shape.rank < 0) return GR_OK;
    char s[256];
    if (v->shape.rank != 1)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input %d ('%s') has shape %s, expected rank 1 (%s)", i, v->name,
                            gr_shape_str(&v->shape, s, sizeof s), what);
    if (expected >= 0 && v->shape.dims[0] >= 0 && v->shape.dims[0] != expected)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input %d ('%s') has shape %s, expected [%lld] (%s)", i, v->name,
                            gr_shape_str(&v->shape, s, sizeof s), (long long)expected, what);
    return GR_OK;
}

/* ---------------------------------------------------------- linear algebra */

/* A:[...,M,K] B:[...,K,N] -> Y:[broadcast(...),M,N]; a 1-D A is [1,K] and a
 * 1-D B is [K,1], with the added dim removed from Y (numpy matmul). */
gr_code gr_shape_rule_matmul(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(same_dtype(n, 0, 1, st));
    const gr_shape *a = &n->inputs[0]->shape, *b = &n->inputs[1]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    if (a->rank < 0 || b->rank < 0) {
        gr_shape u = gr_shape_unknown();
        gr_set_output(n, 0, t, &u);
        return GR_OK;
    }
    if (a->rank == 0 || b->rank == 0)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input %d is a scalar, expected rank >= 1",
                            a->rank == 0 ? 0 : 1);
    int ka = a->rank - 1, kb = b->rank == 1 ? 0 : b->rank - 2;
    if (a->dims[ka] >= 0 && b->dims[kb] >= 0 && a->dims[ka] != b->dims[kb]) {
        char sa[256], sb[256];
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "inner dims differ: A %s has K=%lld, B %s has K=%lld",
                            gr_shape_str(a, sa, sizeof sa), (long long)a->dims[ka],
                            gr_shape_str(b, sb, sizeof sb), (long long)b->dims[kb]);
    }
    gr_shape ba = *a, bb = *b, y;
    ba.rank = a->rank > 2 ? a->rank - 2 : 0;
    bb.rank = b->rank > 2 ? b->rank - 2 : 0;
    GR_TRY(gr_shape_broadcast(&ba, &bb, &y, n, st));
    if (a->rank > 1) gr_copy_dim(&y, y.rank++, a, a->rank - 2);
    if (b->rank > 1) gr_copy_dim(&y, y.rank++, b, b->rank - 1);
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* A:[M,K] (transA: [K,M]) B:[K,N] (transB: [N,K]) C:broadcastable to [M,N]
 * -> Y:[M,N] */
gr_code gr_shape_rule_gemm(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(same_dtype(n, 0, 1, st));
    const gr_shape *a = &n->inputs[0]->shape, *b = &n->inputs[1]->shape;
    for (int i = 0; i < 2; i++) {
        int r = i ? b->rank : a->rank;
        if (r >= 0 && r != 2)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input %d ('%s') has rank %d, expected 2",
                                i, n->inputs[i]->name, r);
    }
    int ta = gr_node_int(n, "transA", 0) != 0, tb = gr_node_int(n, "transB", 0) != 0;
    gr_shape y = gr_shape_of_rank(2);
    int64_t ka = GR_DIM_DYNAMIC, kb = GR_DIM_DYNAMIC;
    if (a->rank == 2) {
        gr_copy_dim(&y, 0, a, ta);
        ka = a->dims[1 - ta];
    }
    if (b->rank == 2) {
        gr_copy_dim(&y, 1, b, 1 - tb);
        kb = b->dims[tb];
    }
    if (ka >= 0 && kb >= 0 && ka != kb)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "K mismatch: A gives K=%lld (transA=%d), B gives K=%lld (transB=%d)",
                            (long long)ka, ta, (long long)kb, tb);
    const gr_value *c = n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (c && c->shape.rank >= 0) {
        int ok = c->shape.rank <= 2;
        for (int i = 0; ok && i < c->shape.rank; i++) {
            int64_t d = c->shape.dims[i], want = y.dims[2 - c->shape.rank + i];
            ok = d < 0 || d == 1 || want < 0 || d == want;
        }
        if (!ok) {
            char sc[256], sy[256];
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "input 2 ('C') has shape %s, which does not broadcast to Y %s",
                                gr_shape_str(&c->shape, sc, sizeof sc),
                                gr_shape_str(&y, sy, sizeof sy));
        }
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, &y);
    return GR_OK;
}

/* --------------------------------------------------- convolution windows */

enum { PAD_NOTSET, PAD_VALID, PAD_SAME_UPPER, PAD_SAME_LOWER };

/* An extent window_out cannot compute (-1 is a real, invalid, result). */
#define UNKNOWN_EXTENT INT64_MIN

/* Window attributes of Conv, ConvTranspose and the pools over n_spatial
 * dims. kernel[i] < 0 means unknown (W's dim is dynamic). */
typedef struct {
    int n_spatial;
    int auto_pad;
    int ceil_mode;
    int64_t kernel[GR_MAX_RANK], strides[GR_MAX_RANK], dilations[GR_MAX_RANK];
    int64_t pads[2 * GR_MAX_RANK];
} window;

/* INTS attribute name of length count with values in [min, INT32_MAX], or
 * filled with fallback when absent. The upper bound keeps window arithmetic
 * below int64 overflow. */
static gr_code read_ints(const gr_node *n, const char *name, int count, int64_t min,
                         int64_t fallback, int64_t *out, gr_status *st) {
    const int64_t *v;
    int len = gr_node_ints(n, name, &v);
    if (len < 0) {
        for (int i = 0; i < count; i++) out[i] = fallback;
        return GR_OK;
    }
    if (len != count)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "attribute '%s' has %d values, expected %d",
                            name, len, count);
    for (int i = 0; i < count; i++) {
        if (v[i] < min || v[i] > INT32_MAX)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "attribute '%s'[%d] is %lld, expected %lld..%d", name, i,
                                (long long)v[i], (long long)min, INT32_MAX);
        out[i] = v[i];
    }
    return GR_OK;
}

/* Fills w; kernel_shape comes from the attribute, else from w_kernel (W's
 * spatial dims, NULL for pools, where the attribute is required). */
static gr_code read_window(const gr_node *n, int n_spatial, const int64_t *w_kernel, window *w,
                           gr_status *st) {
    memset(w, 0, sizeof *w);
    w->n_spatial = n_spatial;
    const char *ap = gr_node_string(n, "auto_pad", "NOTSET");
    static const char *const modes[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};
    w->auto_pad = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(ap, modes[i])) w->auto_pad = i;
    if (w->auto_pad < 0)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "auto_pad is '%s', expected NOTSET, VALID, SAME_UPPER or SAME_LOWER",
                            ap);
    w->ceil_mode = gr_node_int(n, "ceil_mode", 0) != 0;
    const int64_t *k;
    if (gr_node_ints(n, "kernel_shape", &k) >= 0) {
        GR_TRY(read_ints(n, "kernel_shape", n_spatial, 1, 1, w->kernel, st));
        for (int i = 0; w_kernel && i < n_spatial; i++)
            if (w_kernel[i] >= 0 && w_kernel[i] != w->kernel[i])
                return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                    "kernel_shape[%d] is %lld but W's spatial dim %d is %lld", i,
                                    (long long)w->kernel[i], i, (long long)w_kernel[i]);
    } else if (w_kernel) {
        for (int i = 0; i < n_spatial; i++) w->kernel[i] = w_kernel[i];
    } else {
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "attribute 'kernel_shape' is required");
    }
    GR_TRY(read_ints(n, "strides", n_spatial, 1, 1, w->strides, st));
    GR_TRY(read_ints(n, "dilations", n_spatial, 1, 1, w->dilations, st));
    GR_TRY(read_ints(n, "pads", 2 * n_spatial, 0, 0, w->pads, st));
    return GR_OK;
}

/* Output extent of spatial dim i for Conv and pools, computed as ONNX's
 * shape inference and ONNX Runtime do: C division truncating toward zero
 * (so a kernel 2 stride 2 window over 1 row gives 1 row, not 0), and in
 * ceil_mode the last window must start inside the input or left padding. */
static int64_t window_out(const window *w, int i, int64_t in) {
    int64_t s = w->strides[i];
    if (in < 0 || in > INT64_MAX / 4) return UNKNOWN_EXTENT;
    if (w->auto_pad == PAD_SAME_UPPER || w->auto_pad == PAD_SAME_LOWER) return (in + s - 1) / s;
    if (w->kernel[i] < 0) return UNKNOWN_EXTENT;
    int64_t dk = (w->kernel[i] - 1) * w->dilations[i] + 1;
    int64_t pb = w->auto_pad == PAD_VALID ? 0 : w->pads[i];
    int64_t pe = w->auto_pad == PAD_VALID ? 0 : w->pads[i + w->n_spatial];
    int64_t span = in + pb + pe - dk;
    int64_t out = (w->ceil_mode ? span + s - 1 : span) / s + 1;
    if (w->ceil_mode && (out - 1) * s >= in + pb) out--;
    return out;
}

/* Spatial dims 2.. of y from x through window w; negative extents fail. */
static gr_code window_dims(const gr_node *n, const window *w, const gr_shape *x, gr_shape *y,
                           gr_status *st) {
    for (int i = 0; i < w->n_spatial; i++) {
        int64_t in = x->rank >= 0 ? x->dims[2 + i] : GR_DIM_DYNAMIC;
        int64_t out = window_out(w, i, in);
        if (out < 0 && out != UNKNOWN_EXTENT)
            return gr_node_fail(
                n, st, GR_ERR_BAD_MODEL,
                "spatial dim %d: input %lld with kernel %lld, stride %lld, dilation "
                "%lld and pads %lld+%lld gives %lld, expected >= 0",
                i, (long long)in, (long long)w->kernel[i], (long long)w->strides[i],
                (long long)w->dilations[i], (long long)w->pads[i],
                (long long)w->pads[i + w->n_spatial], (long long)out);
        y->dims[2 + i] = out < 0 ? GR_DIM_DYNAMIC : out;
        y->syms[2 + i] = NULL;
    }
    return GR_OK;
}

/* The rank of X, W of a convolution: both must agree and be >= 3. */
static gr_code conv_rank(const gr_node *n, int *rank, gr_status *st) {
    const gr_shape *x = &n->inputs[0]->shape, *w = &n->inputs[1]->shape;
    if (x->rank >= 0 && x->rank < 3)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input 0 ('%s') has rank %d, expected >= 3",
                            n->inputs[0]->name, x->rank);
    if (x->rank >= 0 && w->rank >= 0 && w->rank != x->rank)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input 1 ('%s') has rank %d, expected %d like X", n->inputs[1]->name,
                            w->rank, x->rank);
    *rank = x->rank >= 0 ? x->rank : w->rank;
    if (*rank < 0) {
        const int64_t *k;
        int len = gr_node_ints(n, "kernel_shape", &k);
        *rank = len >= 0 ? len + 2 : GR_RANK_UNKNOWN;
    }
    if (*rank >= 0 && *rank < 3)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "W has rank %d, expected >= 3", *rank);
    return GR_OK;
}

/* Checks X's channels C against W's channel dim wc (C == wc * group). */
static gr_code check_channels(const gr_node *n, int64_t c, int64_t wc, int64_t group,
                              gr_status *st) {
    if (group < 1)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "group is %lld, expected >= 1",
                            (long long)group);
    if (c >= 0 && c % group)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "X has %lld channels, which group %lld does not divide", (long long)c,
                            (long long)group);
    if (c >= 0 && wc >= 0 && wc * group != c)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input 1 ('%s') has %lld input channels, expected %lld (X has %lld "
                            "channels, group %lld)",
                            n->inputs[1]->name, (long long)wc, (long long)(c / group), (long long)c,
                            (long long)group);
    return GR_OK;
}

/* What Conv and ConvTranspose check first: X and W typed alike and the
 * spatial rank; *rank < 0 means it is unknown, and so is the output (set). */
static gr_code conv_start(gr_node *n, int *rank, gr_status *st) {
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    GR_TRY(same_dtype(n, 0, 1, st));
    GR_TRY(conv_rank(n, rank, st));
    if (*rank < 0) {
        gr_shape u = gr_shape_unknown();
        gr_set_output(n, 0, n->inputs[0]->dtype, &u);
    }
    return GR_OK;
}

/* X:[N,C,D1..Dn] W:[M,C/group,k1..kn] B:[M]? -> Y:[N,M,o1..on] */
gr_code gr_shape_rule_conv(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    int rank = -1;
    GR_TRY(conv_start(n, &rank, st));
    if (rank < 0) return GR_OK;
    const gr_shape *x = &n->inputs[0]->shape, *w = &n->inputs[1]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    int64_t group = gr_node_int(n, "group", 1);
    int64_t c = x->rank >= 0 ? x->dims[1] : GR_DIM_DYNAMIC;
    int64_t m = w->rank >= 0 ? w->dims[0] : GR_DIM_DYNAMIC;
    GR_TRY(check_channels(n, c, w->rank >= 0 ? w->dims[1] : GR_DIM_DYNAMIC, group, st));
    if (m >= 0 && group >= 1 && m % group)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "W has %lld output channels, which group %lld does not divide",
                            (long long)m, (long long)group);
    GR_TRY(need_vector(n, 2, m, "one bias per output channel of W", st));
    int64_t wk[GR_MAX_RANK];
    for (int i = 0; i < rank - 2; i++) wk[i] = w->rank >= 0 ? w->dims[2 + i] : GR_DIM_DYNAMIC;
    window win;
    GR_TRY(read_window(n, rank - 2, wk, &win, st));
    gr_shape y = gr_shape_of_rank(rank);
    if (x->rank >= 0) gr_copy_dim(&y, 0, x, 0);
    if (w->rank >= 0) gr_copy_dim(&y, 1, w, 0);
    GR_TRY(window_dims(n, &win, x, &y, st));
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* Spatial dim i of ConvTranspose's output from input extent in:
 * stride*(in-1) + output_padding + ((k-1)*dilation+1) - pad_begin - pad_end,
 * or in*stride for SAME_*. */
static int64_t conv_transpose_out(const window *w, const int64_t *out_pad, int i, int64_t in) {
    int64_t s = w->strides[i];
    if (in < 0 || in > INT64_MAX / 4 / s) return UNKNOWN_EXTENT;
    if (w->auto_pad == PAD_SAME_UPPER || w->auto_pad == PAD_SAME_LOWER) return in * s;
    if (w->kernel[i] < 0) return UNKNOWN_EXTENT;
    int64_t dk = (w->kernel[i] - 1) * w->dilations[i] + 1;
    int64_t pads = w->auto_pad == PAD_VALID ? 0 : w->pads[i] + w->pads[i + w->n_spatial];
    return s * (in - 1) + out_pad[i] + dk - pads;
}

/* Fills y's spatial dims from output_shape (spatial dims, or the full shape)
 * or from the formula above. */
static gr_code conv_transpose_dims(const gr_node *n, const window *w, const gr_shape *x,
                                   gr_shape *y, gr_status *st) {
    int ns = w->n_spatial;
    const int64_t *os;
    int len = gr_node_ints(n, "output_shape", &os);
    if (len >= 0) {
        if (len != ns && len != ns + 2)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "attribute 'output_shape' has %d values, expected %d", len, ns);
        for (int i = 0; i < ns; i++) {
            y->dims[2 + i] = os[len - ns + i];
            if (os[len - ns + i] < 0)
                return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                    "output_shape[%d] is %lld, expected >= 0", len - ns + i,
                                    (long long)os[len - ns + i]);
        }
        return GR_OK;
    }
    int64_t out_pad[GR_MAX_RANK];
    GR_TRY(read_ints(n, "output_padding", ns, 0, 0, out_pad, st));
    for (int i = 0; i < ns; i++) {
        int64_t in = x->rank >= 0 ? x->dims[2 + i] : GR_DIM_DYNAMIC;
        int64_t out = conv_transpose_out(w, out_pad, i, in);
        if (out < 0 && out != UNKNOWN_EXTENT)
            return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                                "spatial dim %d: input %lld gives output %lld, expected >= 0", i,
                                (long long)in, (long long)out);
        y->dims[2 + i] = out < 0 ? GR_DIM_DYNAMIC : out;
    }
    return GR_OK;
}

/* X:[N,C,D1..Dn] W:[C,M/group,k1..kn] B:[M]? -> Y:[N,M,o1..on] */
gr_code gr_shape_rule_conv_transpose(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    int rank = -1;
    GR_TRY(conv_start(n, &rank, st));
    if (rank < 0) return GR_OK;
    const gr_shape *x = &n->inputs[0]->shape, *w = &n->inputs[1]->shape;
    gr_dtype t = n->inputs[0]->dtype;
    int64_t group = gr_node_int(n, "group", 1);
    int64_t c = x->rank >= 0 ? x->dims[1] : GR_DIM_DYNAMIC;
    int64_t wc = w->rank >= 0 ? w->dims[0] : GR_DIM_DYNAMIC;
    if (group < 1)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "group is %lld, expected >= 1",
                            (long long)group);
    if (c >= 0 && wc >= 0 && c != wc)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "input 1 ('%s') has %lld input channels, expected %lld (X has %lld "
                            "channels)",
                            n->inputs[1]->name, (long long)wc, (long long)c, (long long)c);
    int64_t m = w->rank >= 0 && w->dims[1] >= 0 ? w->dims[1] * group : GR_DIM_DYNAMIC;
    GR_TRY(need_vector(n, 2, m, "one bias per output channel", st));
    int64_t wk[GR_MAX_RANK];
    for (int i = 0; i < rank - 2; i++) wk[i] = w->rank >= 0 ? w->dims[2 + i] : GR_DIM_DYNAMIC;
    window win;
    GR_TRY(read_window(n, rank - 2, wk, &win, st));
    gr_shape y = gr_shape_of_rank(rank);
    if (x->rank >= 0) gr_copy_dim(&y, 0, x, 0);
    y.dims[1] = m;
    GR_TRY(conv_transpose_dims(n, &win, x, &y, st));
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* ---------------------------------------------------------- normalization */

static int64_t channels_of(const gr_shape *x) {
    return x->rank >= 2 ? x->dims[1] : GR_DIM_DYNAMIC;
}

/* X:[N,C,...] scale,B,mean,var:[C] -> Y:[N,C,...], and in training mode
 * running_mean, running_var:[C] of mean's dtype. */
gr_code gr_shape_rule_batchnorm(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    for (int i = 0; i < 5; i++) GR_TRY(gr_need_input(n, i, st));
    const gr_shape *x = &n->inputs[0]->shape;
    int64_t c = channels_of(x);
    static const char *const what[] = {"", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "one %s per channel of X", what[i]);
        GR_TRY(need_vector(n, i, c, msg, st));
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, x);
    gr_shape s = gr_shape_of_rank(1);
    s.dims[0] = c;
    if (x->rank >= 2) gr_copy_dim(&s, 0, x, 1);
    gr_set_output(n, 1, n->inputs[3]->dtype, &s);
    gr_set_output(n, 2, n->inputs[4]->dtype, &s);
    return GR_OK;
}

/* X:[d0..dr-1] Scale, B: broadcastable to [d_axis..] -> Y like X;
 * Mean, InvStdDev: [d0..d_axis-1,1,..,1] of stash_type. */
gr_code gr_shape_rule_layernorm(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    GR_TRY(gr_need_input(n, 1, st));
    const gr_shape *x = &n->inputs[0]->shape;
    int64_t stash = gr_node_int(n, "stash_type", 1);
    if (!gr_dtype_valid((int)stash) || !gr_dtype_is_float((gr_dtype)stash))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "stash_type is %lld, expected a float type",
                            (long long)stash);
    gr_shape m = *x;
    if (x->rank >= 0) {
        int axis;
        GR_TRY(gr_norm_axis(n, "axis", gr_node_int(n, "axis", -1), x->rank, &axis, st));
        for (int i = axis; i < x->rank; i++) {
            m.dims[i] = 1;
            m.syms[i] = NULL;
        }
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, x);
    gr_set_output(n, 1, (gr_dtype)stash, &m);
    gr_set_output(n, 2, (gr_dtype)stash, &m);
    return GR_OK;
}

/* input:[N,C,D1..] scale,B:[C] -> output like input */
gr_code gr_shape_rule_instancenorm(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    for (int i = 0; i < 3; i++) GR_TRY(gr_need_input(n, i, st));
    const gr_shape *x = &n->inputs[0]->shape;
    if (x->rank >= 0 && x->rank < 3)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input 0 ('%s') has rank %d, expected >= 3",
                            n->inputs[0]->name, x->rank);
    GR_TRY(need_vector(n, 1, channels_of(x), "one scale per channel of input", st));
    GR_TRY(need_vector(n, 2, channels_of(x), "one bias per channel of input", st));
    gr_set_output(n, 0, n->inputs[0]->dtype, x);
    return GR_OK;
}

/* X:[N,C,D1..] -> Y like X; 'size' is required. */
gr_code gr_shape_rule_lrn(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    const gr_attr *size = gr_node_attr(n, "size");
    if (!size || size->type != GR_ATTR_INT)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "attribute 'size' is required");
    if (size->i < 1)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "size is %lld, expected >= 1",
                            (long long)size->i);
    gr_set_output(n, 0, n->inputs[0]->dtype, &n->inputs[0]->shape);
    return GR_OK;
}

/* ---------------------------------------------------------------- pooling */

/* X:[N,C,D1..Dn] -> Y:[N,C,o1..on]; MaxPool's optional Indices: i64 like Y. */
gr_code gr_shape_rule_pool(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    const int64_t *k;
    int ns = gr_node_ints(n, "kernel_shape", &k);
    if (ns < 0)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "attribute 'kernel_shape' is required");
    if (ns < 1 || ns > GR_MAX_RANK - 2 || (x->rank >= 0 && x->rank != ns + 2))
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL,
                            "kernel_shape has %d values but X has rank %d, expected rank - 2", ns,
                            x->rank);
    window win;
    GR_TRY(read_window(n, ns, NULL, &win, st));
    gr_shape y = gr_shape_of_rank(ns + 2);
    if (x->rank >= 0) {
        gr_copy_dim(&y, 0, x, 0);
        gr_copy_dim(&y, 1, x, 1);
    }
    GR_TRY(window_dims(n, &win, x, &y, st));
    gr_set_output(n, 0, n->inputs[0]->dtype, &y);
    gr_set_output(n, 1, GR_DTYPE_I64, &y);
    return GR_OK;
}

/* X:[N,C,D1..Dn] -> Y:[N,C,1..1] */
gr_code gr_shape_rule_global_pool(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    gr_shape y = n->inputs[0]->shape;
    if (y.rank >= 0 && y.rank < 2)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input 0 ('%s') has rank %d, expected >= 2",
                            n->inputs[0]->name, y.rank);
    for (int i = 2; i < y.rank; i++) {
        y.dims[i] = 1;
        y.syms[i] = NULL;
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, &y);
    return GR_OK;
}

/* ------------------------------------------------- softmax and reductions */

/* input -> output like input; axis must lie in [-r, r). */
gr_code gr_shape_rule_softmax(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    if (x->rank >= 0) {
        int axis;
        GR_TRY(gr_norm_axis(n, "axis", gr_node_int(n, "axis", -1), x->rank, &axis, st));
    }
    gr_set_output(n, 0, n->inputs[0]->dtype, x);
    return GR_OK;
}

/* data:[d0..] axes?:i64[k] -> reduced:[d0..] with the axes set to 1
 * (keepdims) or removed. No axes (absent or empty) reduces all axes, or none
 * with noop_with_empty_axes. */
gr_code gr_shape_rule_reduce(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    const gr_value *av = n->n_inputs > 1 ? n->inputs[1] : NULL;
    int keep = gr_node_int(n, "keepdims", 1) != 0;
    int noop = gr_node_int(n, "noop_with_empty_axes", 0) != 0;
    gr_dtype t = n->inputs[0]->dtype;
    if (av && av->dtype != GR_DTYPE_I64)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "input 1 ('axes') is %s, expected i64",
                            gr_dtype_name(av->dtype));
    int64_t axes[GR_MAX_RANK + 1];
    int64_t count = av ? gr_value_const_ints(av, axes, GR_MAX_RANK + 1) : 0;
    int64_t len = av ? (count >= 0 ? count : (av->shape.rank == 1 ? av->shape.dims[0] : -1)) : 0;
    if (len == 0 && noop) {
        gr_set_output(n, 0, t, x);
        return GR_OK;
    }
    if (x->rank < 0 || (len != 0 && count < 0)) {
        /* Axes unknown: keepdims keeps the rank, else k axes go. */
        gr_shape y = gr_shape_unknown();
        if (x->rank >= 0 && keep)
            y = gr_shape_of_rank(x->rank);
        else if (x->rank >= 0 && len > 0 && len <= x->rank)
            y = gr_shape_of_rank(x->rank - (int)len);
        gr_set_output(n, 0, t, &y);
        return GR_OK;
    }
    int mask[GR_MAX_RANK] = {0};
    if (count > GR_MAX_RANK)
        return gr_node_fail(n, st, GR_ERR_BAD_MODEL, "axes has %lld values, more than rank %d",
                            (long long)count, x->rank);
    if (len == 0)
        for (int i = 0; i < x->rank; i++) mask[i] = 1;
    GR_TRY(gr_mark_axes(n, axes, count, x->rank, mask, st));
    gr_shape y = gr_shape_scalar();
    for (int i = 0; i < x->rank; i++) {
        if (!mask[i])
            gr_copy_dim(&y, y.rank++, x, i);
        else if (keep)
            y.dims[y.rank++] = 1;
    }
    gr_set_output(n, 0, t, &y);
    return GR_OK;
}

/* data:[d0..] -> i64 indices: data's shape with axis set to 1 or removed. */
gr_code gr_shape_rule_argreduce(gr_graph *g, gr_node *n, gr_status *st) {
    (void)g;
    GR_TRY(gr_need_input(n, 0, st));
    const gr_shape *x = &n->inputs[0]->shape;
    int keep = gr_node_int(n, "keepdims", 1) != 0;
    gr_shape y = gr_shape_unknown();
    if (x->rank >= 0) {
        int axis;
        GR_TRY(gr_norm_axis(n, "axis", gr_node_int(n, "axis", 0), x->rank, &axis, st));
        y = gr_shape_scalar();
        for (int i = 0; i < x->rank; i++) {
            if (i != axis)
                gr_copy_dim(&y, y.rank++, x, i);
            else if (keep)
                y.dims[y.rank++] = 1;
        }
    }
    gr_set_output(n, 0, GR_DTYPE_I64, &y);
    return GR_OK;
}
