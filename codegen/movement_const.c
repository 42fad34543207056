/* movement_const.c: Shape, Size, Constant, ConstantOfShape and Range. The
 * first three have outputs known at compile time (shapes are static): their
 * bytes are baked into a constant global and copied. ConstantOfShape fills;
 * Range computes start + i * delta from constant or runtime scalars. These
 * nodes are usually folded away before codegen. */
#include <string.h>

#include "codegen/movement_internal.h"

#define RANGE_TASK 16384 /* elements per Range task */

/* A kernel copying nbytes of compile-time data into out. */
static gr_code emit_bytes(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                          const void *data, size_t nbytes, gr_status *st) {
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    if (nbytes) {
        LLVMValueRef init = LLVMConstStringInContext(m->ctx, data, (unsigned)nbytes, 1);
        LLVMValueRef g = LLVMAddGlobal(m->mod, LLVMTypeOf(init), "mv.bytes");
        LLVMSetInitializer(g, init);
        LLVMSetGlobalConstant(g, 1);
        LLVMSetLinkage(g, LLVMPrivateLinkage);
        LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
        LLVMSetAlignment(g, 16);
        cg_memcpy(k, cg_arg(k, n->outputs[0]), g, cg_i64(k, (int64_t)nbytes));
    }
    k->n_tasks = 1;
    return cg_kernel_end(k, st);
}

/* data:[d0..d(r-1)] -> i64[end-start]: the dims, clamped like the shape rule */
gr_code cg_emit_shape(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                      gr_status *st) {
    const gr_shape *x = &n->inputs[0]->shape;
    int64_t r = x->rank, start = gr_node_int(n, "start", 0), end = gr_node_int(n, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t dims[GR_MAX_RANK], count = 0;
    for (int64_t i = start; i < end; i++) dims[count++] = x->dims[i];
    if (count != gr_value_numel(n->outputs[0]))
        return gr_fail(st, GR_ERR_INTERNAL, "Shape output has %lld elements, expected %lld",
                       (long long)gr_value_numel(n->outputs[0]), (long long)count);
    return emit_bytes(m, n, name, k, dims, sizeof(int64_t) * (size_t)count, st);
}

/* data -> i64 scalar: its element count */
gr_code cg_emit_size(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                     gr_status *st) {
    int64_t numel = gr_value_numel(n->inputs[0]);
    return emit_bytes(m, n, name, k, &numel, sizeof numel, st);
}

/* () -> the value attribute's tensor (or value_float(s)/value_int(s)) */
gr_code cg_emit_constant(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                         gr_status *st) {
    const gr_value *y = n->outputs[0];
    int64_t numel = gr_value_numel(y);
    size_t nbytes = (size_t)numel * gr_dtype_size(y->dtype);
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints"};
    const gr_attr *a = NULL;
    for (int i = 0; i < 5 && !a; i++) a = gr_node_attr(n, names[i]);
    if (a && a->type == GR_ATTR_TENSOR && a->tensor && a->tensor->dtype == y->dtype &&
        a->tensor->nbytes == nbytes)
        return emit_bytes(m, n, name, k, a->tensor->data, nbytes, st);
    int ok = a && ((a->type == GR_ATTR_INT || a->type == GR_ATTR_FLOAT) && numel == 1);
    ok |= a && ((a->type == GR_ATTR_INTS || a->type == GR_ATTR_FLOATS) && numel == a->n);
    if (!ok) return gr_fail(st, GR_ERR_UNSUPPORTED, "Constant without a value matching its output");
    void *data = gr_calloc(nbytes ? nbytes : 1, 1);
    if (!data) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < numel; i++) {
        if (a->type == GR_ATTR_INT) gr_dtype_store_i64(y->dtype, data, i, a->i);
        else if (a->type == GR_ATTR_FLOAT) gr_dtype_store_f64(y->dtype, data, i, a->f);
        else if (a->type == GR_ATTR_INTS) gr_dtype_store_i64(y->dtype, data, i, a->ints[i]);
        else gr_dtype_store_f64(y->dtype, data, i, a->floats[i]);
    }
    gr_code rc = emit_bytes(m, n, name, k, data, nbytes, st);
    gr_free(data);
    return rc;
}

/* shape:i64[k] -> [shape] filled with value (default f32 0) */
gr_code cg_emit_constant_of_shape(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                                  gr_status *st) {
    const gr_value *y = n->outputs[0];
    const gr_attr *a = gr_node_attr(n, "value");
    uint64_t bits = 0;
    if (a && a->type == GR_ATTR_TENSOR && a->tensor && a->tensor->data) {
        const gr_tensor *t = a->tensor;
        unsigned char buf[8] = {0};
        if (t->dtype == y->dtype)
            memcpy(buf, t->data, gr_dtype_size(y->dtype));
        else if (gr_dtype_is_float(y->dtype))
            gr_dtype_store_f64(y->dtype, buf, 0, gr_dtype_load_f64(t->dtype, t->data, 0));
        else
            gr_dtype_store_i64(y->dtype, buf, 0, gr_dtype_load_i64(t->dtype, t->data, 0));
        memcpy(&bits, buf, sizeof bits);
    }
    mv_view v;
    mv_view_init(&v, NULL, y);
    v.fill_only = 1;
    v.fill_kind = MV_FILL_CONST;
    v.fill_bits = bits;
    mv_add_affine(&v, gr_value_numel(y), 1, 0);
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    GR_TRY(mv_emit(k, &v, 1, st));
    return cg_kernel_end(k, st);
}

/* start, limit, delta (scalars) -> [count]: start + i * delta, computed in
 * f64 for float types and in i64 (wrapping) for integer types. */
gr_code cg_emit_range(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                      gr_status *st) {
    const gr_value *y = n->outputs[0];
    gr_dtype t = y->dtype;
    if (t != GR_DTYPE_F32 && t != GR_DTYPE_F64 && t != GR_DTYPE_I16 && t != GR_DTYPE_I32 &&
        t != GR_DTYPE_I64)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Range of %s", gr_dtype_name(t));
    GR_TRY(cg_kernel_begin_node(m, k, name, n, st));
    int64_t count = gr_value_numel(y);
    k->n_tasks = (count + RANGE_TASK - 1) / RANGE_TASK;
    if (count == 0) return cg_kernel_end(k, st);
    int fl = gr_dtype_is_float(t);
    gr_dtype wide = fl ? GR_DTYPE_F64 : GR_DTYPE_I64;
    LLVMValueRef start = cg_convert(k, cg_load(k, t, cg_arg(k, n->inputs[0]), cg_i64(k, 0)), t, wide);
    LLVMValueRef delta = cg_convert(k, cg_load(k, t, cg_arg(k, n->inputs[2]), cg_i64(k, 0)), t, wide);
    cg_loop lt;
    LLVMValueRef task = cg_loop_begin(k, &lt, k->begin, k->end, 1);
    LLVMValueRef i0 = LLVMBuildMul(k->b, task, cg_i64(k, RANGE_TASK), "");
    LLVMValueRef i1 = LLVMBuildAdd(k->b, i0, cg_i64(k, RANGE_TASK), "");
    i1 = LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, i1, cg_i64(k, count), ""), i1,
                         cg_i64(k, count), "");
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(k, &l, i0, i1, 1);
    LLVMValueRef val;
    if (fl) {
        LLVMValueRef fi = LLVMBuildSIToFP(k->b, i, m->t_f64, "");
        val = LLVMBuildFAdd(k->b, start, LLVMBuildFMul(k->b, fi, delta, ""), "");
    } else {
        val = LLVMBuildAdd(k->b, start, LLVMBuildMul(k->b, i, delta, ""), "");
    }
    cg_store(k, t, cg_arg(k, y), i, cg_convert(k, val, wide, t));
    cg_loop_end(k, &l);
    cg_loop_end(k, &lt);
    return cg_kernel_end(k, st);
}
