/* grad_build.c: the builders gradient rules add backward nodes with
 * (passes/grad.h). Each adds one node after the forward graph, named after
 * the forward node being differentiated, and infers its shape at once. */
#include <stdio.h>
#include <string.h>

#include "ir/gr_ir.h"
#include "passes/grad_internal.h"

int gr_grad_needed(const gr_grad_ctx *c, const gr_node *n, int input) {
    const gr_value *v = input < n->n_inputs ? n->inputs[input] : NULL;
    return v && v->id < c->n_values0 && c->needs[v->id];
}

gr_graph *gr_grad_graph(gr_grad_ctx *c) { return c->g; }

gr_node *grad_node(gr_grad_ctx *c, gr_op op, int n_inputs, gr_value *const *inputs,
                   int n_outputs, gr_status *st) {
    const char *base = c->current ? c->current->name : "grad";
    char name[256];
    snprintf(name, sizeof name, "%s.grad", base);
    gr_node *n = gr_node_add(c->g, op, name, n_inputs, inputs, n_outputs, NULL);
    if (!n) gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
    return n;
}

gr_value *grad_infer(gr_grad_ctx *c, gr_node *n, gr_status *st) {
    if (!n) return NULL;
    if (gr_node_infer(c->g, n, st) != GR_OK) {
        gr_status_prefix(st, "gradient of node '%s': ",
                         c->current ? c->current->name : "?");
        return NULL;
    }
    return n->outputs[0];
}

gr_value *grad_op(gr_grad_ctx *c, gr_op op, int n_inputs, gr_value *const *inputs,
                  gr_status *st) {
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i] && i == 0) return NULL; /* an earlier builder failed */
    return grad_infer(c, grad_node(c, op, n_inputs, inputs, 1, st), st);
}

gr_value *grad_unary(gr_grad_ctx *c, gr_op op, gr_value *x, gr_status *st) {
    return x ? grad_op(c, op, 1, &x, st) : NULL;
}

gr_value *grad_binary(gr_grad_ctx *c, gr_op op, gr_value *a, gr_value *b, gr_status *st) {
    if (!a || !b) return NULL;
    gr_value *in[2] = {a, b};
    return grad_op(c, op, 2, in, st);
}

static gr_value *add_const(gr_grad_ctx *c, gr_dtype dtype, const gr_shape *shape,
                           const void *data, gr_status *st) {
    gr_value *v = gr_graph_add_data(c->g, GR_VALUE_CONST, NULL, dtype, shape, data);
    if (!v) gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
    return v;
}

gr_value *grad_scalar(gr_grad_ctx *c, gr_dtype dtype, double v, gr_status *st) {
    gr_shape s = gr_shape_scalar();
    gr_value *r = add_const(c, dtype, &s, NULL, st);
    if (r) gr_dtype_store_f64(dtype, r->data, 0, v);
    return r;
}

gr_value *grad_ints(gr_grad_ctx *c, int n, const int64_t *v, gr_status *st) {
    gr_shape s = gr_shape_make(1, (int64_t[]){n});
    return add_const(c, GR_DTYPE_I64, &s, v, st);
}

gr_value *grad_fill_like(gr_grad_ctx *c, const gr_value *x, double v, gr_status *st) {
    gr_value *r = add_const(c, x->dtype, &x->shape, NULL, st);
    if (!r) return NULL;
    int64_t n = gr_value_numel(r);
    for (int64_t i = 0; i < n; i++) gr_dtype_store_f64(r->dtype, r->data, i, v);
    return r;
}

gr_value *grad_reshape(gr_grad_ctx *c, gr_value *x, const gr_shape *to, gr_status *st) {
    if (!x) return NULL;
    if (gr_shape_equal(&x->shape, to)) return x;
    gr_value *in[2] = {x, grad_ints(c, to->rank, to->dims, st)};
    return in[1] ? grad_op(c, GR_OP_RESHAPE, 2, in, st) : NULL;
}

gr_value *grad_transpose(gr_grad_ctx *c, gr_value *x, const int64_t *perm, gr_status *st) {
    if (!x) return NULL;
    gr_node *n = grad_node(c, GR_OP_TRANSPOSE, 1, &x, 1, st);
    if (!n || gr_node_set_ints(c->g, n, "perm", x->shape.rank, perm) != GR_OK) {
        if (n) gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
        return NULL;
    }
    return grad_infer(c, n, st);
}

gr_value *grad_reduce_sum(gr_grad_ctx *c, gr_value *x, int n_axes, const int64_t *axes,
                          int keepdims, gr_status *st) {
    if (!x) return NULL;
    if (n_axes == 0) return x;
    gr_value *in[2] = {x, grad_ints(c, n_axes, axes, st)};
    gr_node *n = in[1] ? grad_node(c, GR_OP_REDUCE_SUM, 2, in, 1, st) : NULL;
    if (!n || gr_node_set_int(c->g, n, "keepdims", keepdims) != GR_OK) {
        if (n) gr_fail(st, GR_ERR_NOMEM, "out of memory building gradients");
        return NULL;
    }
    return grad_infer(c, n, st);
}

gr_value *grad_unbroadcast(gr_grad_ctx *c, gr_value *g, const gr_value *like, gr_status *st) {
    if (!g) return NULL;
    const gr_shape *gs = &g->shape, *ls = &like->shape;
    int lead = gs->rank - ls->rank;
    int64_t axes[GR_MAX_RANK];
    int n = 0;
    for (int i = 0; i < gs->rank; i++)
        if (i < lead || (ls->dims[i - lead] == 1 && gs->dims[i] != 1)) axes[n++] = i;
    gr_value *r = grad_reduce_sum(c, g, n, axes, 1, st);
    return grad_reshape(c, r, ls, st);
}

gr_value *grad_expand(gr_grad_ctx *c, gr_value *x, const gr_value *like, gr_status *st) {
    if (!x) return NULL;
    if (gr_shape_equal(&x->shape, &like->shape)) return x;
    gr_value *in[2] = {x, grad_ints(c, like->shape.rank, like->shape.dims, st)};
    return in[1] ? grad_op(c, GR_OP_EXPAND, 2, in, st) : NULL;
}

/* ----------------------------------------------------------------- windows */


static void read_or(const gr_node *n, const char *name, int count, int64_t fallback,
                    int64_t *out) {
    const int64_t *v;
    int len = gr_node_ints(n, name, &v);
    for (int i = 0; i < count; i++) out[i] = len == count ? v[i] : fallback;
}

static int64_t floor_half(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

gr_code grad_window_read(const gr_node *n, int transpose, const gr_shape *x, const gr_shape *y,
                         const gr_shape *w, grad_window *a, gr_status *st) {
    memset(a, 0, sizeof *a);
    a->ns = x->rank - 2;
    a->group = gr_node_int(n, "group", 1);
    if (w) {
        for (int i = 0; i < a->ns; i++) a->kernel[i] = w->dims[2 + i];
    } else {
        read_or(n, "kernel_shape", a->ns, 1, a->kernel);
    }
    read_or(n, "strides", a->ns, 1, a->strides);
    read_or(n, "dilations", a->ns, 1, a->dilations);
    read_or(n, "pads", 2 * a->ns, 0, a->pads);
    int64_t out_pad[GR_MAX_RANK];
    read_or(n, "output_padding", a->ns, 0, out_pad);
    const char *ap = gr_node_string(n, "auto_pad", "NOTSET");
    const int64_t *os;
    int has_out_shape = transpose && gr_node_ints(n, "output_shape", &os) >= 0;
    int upper = !strcmp(ap, "SAME_UPPER"), lower = !strcmp(ap, "SAME_LOWER");
    int valid = !strcmp(ap, "VALID");
    if (!upper && !lower && !valid && strcmp(ap, "NOTSET"))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "auto_pad '%s' cannot be differentiated", ap);
    for (int i = 0; i < a->ns; i++) {
        int64_t dk = (a->kernel[i] - 1) * a->dilations[i] + 1, total;
        int64_t in = x->dims[2 + i], out = y->dims[2 + i];
        if (transpose) /* x is ConvTranspose's output, y its input */
            total = a->strides[i] * (out - 1) + out_pad[i] + dk - in;
        else
            total = (out - 1) * a->strides[i] + dk - in;
        if (!transpose && total < 0) total = 0;
        if (upper || lower || has_out_shape) {
            a->pads[i] = upper ? floor_half(total) : total - floor_half(total);
            a->pads[i + a->ns] = total - a->pads[i];
        } else if (valid) {
            a->pads[i] = a->pads[i + a->ns] = 0;
        }
        if (a->pads[i] < 0 || a->pads[i + a->ns] < 0)
            return gr_fail(st, GR_ERR_UNSUPPORTED,
                           "spatial dim %d resolves to negative pads (%lld, %lld); not "
                           "differentiated",
                           i, (long long)a->pads[i], (long long)a->pads[i + a->ns]);
    }
    return GR_OK;
}
