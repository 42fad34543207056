/* gather.c: Gather (any axis, i32/i64 indices) as a view. Constant indices
 * become a table of input offsets; runtime indices are read by the kernel.
 * Negative indices count from the end; indices still outside [0, D) are
 * clamped into it (constant ones are rejected at compile time), so a kernel
 * never reads outside the data. */
#include "codegen/movement_internal.h"

/* data:[pre.., D, post..] indices:[q..] -> [pre.., q.., post..] */
gr_code cg_emit_gather(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                       gr_status *st) {
    const gr_value *x = n->inputs[0], *idx = n->inputs[1], *y = n->outputs[0];
    int r = x->shape.rank, axis;
    GR_TRY(mv_axis(n, gr_node_int(n, "axis", 0), r, &axis, st));
    if (idx->dtype != GR_DTYPE_I32 && idx->dtype != GR_DTYPE_I64)
        return gr_fail(st, GR_ERR_BAD_MODEL, "indices are %s, expected i32 or i64",
                       gr_dtype_name(idx->dtype));
    int64_t xs[GR_MAX_RANK], q = gr_value_numel(idx), d = x->shape.dims[axis];
    mv_strides(&x->shape, xs);
    int64_t post = 1;
    for (int i = axis + 1; i < r; i++) post *= x->shape.dims[i];
    mv_view v;
    mv_view_init(&v, x, y);
    /* output strides: pre dims, then the q block, then post dims */
    int64_t pre_strides[GR_MAX_RANK], acc = q * post;
    for (int i = axis - 1; i >= 0; i--) {
        pre_strides[i] = acc;
        acc *= x->shape.dims[i];
    }
    for (int i = 0; i < axis; i++) mv_add_affine(&v, x->shape.dims[i], pre_strides[i], xs[i]);
    if (gr_value_is_constant(idx) && q > 0) {
        int64_t *table = gr_malloc(sizeof(int64_t) * (size_t)q);
        if (!table) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < q; i++) {
            int64_t j = gr_dtype_load_i64(idx->dtype, idx->data, i);
            if (j < -d || j >= d) {
                gr_free(table);
                return gr_fail(st, GR_ERR_BAD_MODEL, "indices[%lld] is %lld, outside [-%lld, %lld)",
                               (long long)i, (long long)j, (long long)d, (long long)d);
            }
            table[i] = (j < 0 ? j + d : j) * xs[axis];
        }
        mv_add_table(&v, q, post, table);
    } else if (q > 0 && d == 0) {
        return gr_fail(st, GR_ERR_BAD_MODEL, "gathering from an empty axis %d", axis);
    } else {
        mv_add_gather(&v, q, post, idx, d, xs[axis]);
    }
    for (int i = axis + 1; i < r; i++) {
        int64_t s = 1;
        for (int j = i + 1; j < r; j++) s *= x->shape.dims[j];
        mv_add_affine(&v, x->shape.dims[i], s, xs[i]);
    }
    return mv_emit_node(m, n, name, k, &v, 1, st);
}
