/* emit.c: the op -> emitter table (from kernels_*.def), and the copy
 * emitter shared by the ops whose output is their input's bytes
 * (Identity, Reshape, Flatten, Squeeze, Unsqueeze) and by output copies. */
#include "codegen/cg_internal.h"

static const cg_emit_fn emitters[GR_OP_COUNT_] = {
#define K(op, fn) [GR_OP_##op] = fn,
#include "codegen/kernels.def"
#undef K
};

cg_emit_fn cg_emitter(gr_op op) {
    return (unsigned)op < GR_OP_COUNT_ ? emitters[op] : NULL;
}

#define COPY_CHUNK (256 * 1024) /* bytes per task */

/* dst[chunk] = src[chunk] for each task's chunks. */
static void emit_copy_body(cg_kernel *k, LLVMValueRef src, LLVMValueRef dst, size_t nbytes) {
    int64_t chunks = (int64_t)((nbytes + COPY_CHUNK - 1) / COPY_CHUNK);
    k->n_tasks = chunks ? chunks : 1;
    if (!nbytes) return;
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(k, &l, k->begin, k->end, 1);
    LLVMValueRef off = LLVMBuildMul(k->b, t, cg_i64(k, COPY_CHUNK), "");
    LLVMValueRef rest = LLVMBuildSub(k->b, cg_i64(k, (int64_t)nbytes), off, "");
    LLVMValueRef big = LLVMBuildICmp(k->b, LLVMIntSGT, rest, cg_i64(k, COPY_CHUNK), "");
    LLVMValueRef len = LLVMBuildSelect(k->b, big, cg_i64(k, COPY_CHUNK), rest, "");
    LLVMValueRef s = cg_gep(k, GR_DTYPE_U8, src, off), d = cg_gep(k, GR_DTYPE_U8, dst, off);
    cg_memcpy(k, d, s, len);
    cg_loop_end(k, &l);
}

gr_code cg_emit_copy(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                     gr_status *st) {
    const gr_value *values[2] = {n->inputs[0], n->outputs[0]};
    GR_TRY(cg_kernel_begin(m, k, name, 2, values, st));
    emit_copy_body(k, k->args[0], k->args[1], n->outputs[0]->nbytes
                   ? n->outputs[0]->nbytes
                   : (size_t)gr_value_numel(n->outputs[0]) * gr_dtype_size(n->outputs[0]->dtype));
    return cg_kernel_end(k, st);
}

gr_code cg_emit_copy_buffers(cg_module *m, const char *name, const gr_value *v,
                             cg_kernel *k, gr_status *st) {
    const gr_value *values[2] = {v, v};
    GR_TRY(cg_kernel_begin(m, k, name, 2, values, st));
    emit_copy_body(k, k->args[0], k->args[1],
                   (size_t)gr_value_numel(v) * gr_dtype_size(v->dtype));
    return cg_kernel_end(k, st);
}
