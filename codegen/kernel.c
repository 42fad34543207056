/* kernel.c: kernel scaffolding (body with noalias buffer parameters, entry
 * point that unpacks the argument array), rotated loops with accumulators,
 * typed loads/stores and conversions. Every emitter builds on these. */
#include <stdio.h>
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "codegen/cg_internal.h"

static LLVMAttributeRef enum_attr(LLVMContextRef ctx, const char *name) {
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    return LLVMCreateEnumAttribute(ctx, kind, 0);
}

static void string_attr(LLVMContextRef ctx, LLVMValueRef fn, const char *key,
                        const char *value) {
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(ctx, key, (unsigned)strlen(key),
                                                      value, (unsigned)strlen(value)));
}

static void target_attrs(const cg_module *m, LLVMValueRef fn, int wide) {
    string_attr(m->ctx, fn, "target-cpu", m->cpu);
    string_attr(m->ctx, fn, "target-features", m->features);
    if (wide) string_attr(m->ctx, fn, "prefer-vector-width", "512");
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, enum_attr(m->ctx, "nounwind"));
}

/* The input among values[0..n) whose buffer v is computed in, or NULL. */
static const gr_value *in_place_source(const cg_module *m, const gr_value *v, int n,
                                       const gr_value *const *values) {
    const gr_value *src = m->in_place && v ? m->in_place[v->id] : NULL;
    for (int i = 0; src && i < n; i++)
        if (values[i] == src) return src;
    return NULL;
}

gr_code cg_kernel_begin(cg_module *m, cg_kernel *k, const char *name,
                        int n_values, const gr_value *const *values,
                        gr_status *st) {
    if (n_values > CG_MAX_ARGS)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "kernel '%s' needs %d buffers (limit %d)",
                       name, n_values, CG_MAX_ARGS);
    memset(k, 0, sizeof *k);
    k->m = m;
    k->b = m->b;
    k->name = name;
    k->n_tasks = 1;
    LLVMTypeRef params[CG_MAX_ARGS + 2];
    for (int i = 0; i < n_values; i++) {
        if (in_place_source(m, values[i], n_values, values)) continue; /* shares its input's */
        params[k->n_args] = m->t_ptr;
        k->arg_values[k->n_args++] = values[i];
    }
    n_values = k->n_args;
    params[n_values] = m->t_ptr; /* workspace */
    params[n_values + 1] = m->t_i64;
    params[n_values + 2] = m->t_i64;
    char body_name[512];
    snprintf(body_name, sizeof body_name, "%s.body", name);
    LLVMTypeRef fty = LLVMFunctionType(m->t_void, params, (unsigned)n_values + 3, 0);
    k->body = LLVMAddFunction(m->mod, body_name, fty);
    LLVMSetLinkage(k->body, LLVMInternalLinkage);
    LLVMAddAttributeAtIndex(k->body, LLVMAttributeFunctionIndex,
                            enum_attr(m->ctx, "alwaysinline"));
    for (int i = 0; i <= n_values; i++) {
        LLVMAddAttributeAtIndex(k->body, (unsigned)i + 1, enum_attr(m->ctx, "noalias"));
        LLVMAddAttributeAtIndex(k->body, (unsigned)i + 1, enum_attr(m->ctx, "nocapture"));
    }
    for (int i = 0; i < n_values; i++) k->args[i] = LLVMGetParam(k->body, (unsigned)i);
    k->workspace = LLVMGetParam(k->body, (unsigned)n_values);
    k->begin = LLVMGetParam(k->body, (unsigned)n_values + 1);
    k->end = LLVMGetParam(k->body, (unsigned)n_values + 2);
    LLVMPositionBuilderAtEnd(k->b, LLVMAppendBasicBlockInContext(m->ctx, k->body, "entry"));
    return GR_OK;
}

gr_code cg_kernel_begin_node(cg_module *m, cg_kernel *k, const char *name,
                             const gr_node *n, gr_status *st) {
    const gr_value *values[CG_MAX_ARGS];
    int count = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        const gr_value *v = n->inputs[i];
        int seen = 0;
        for (int j = 0; j < count && !seen; j++) seen = values[j] == v;
        if (v && !seen && count < CG_MAX_ARGS) values[count++] = v;
    }
    if (m->epi) {
        cg_epilogue_values(m->epi, values, &count);
    } else {
        for (int i = 0; i < n->n_outputs; i++)
            if (n->outputs[i] && count < CG_MAX_ARGS) values[count++] = n->outputs[i];
    }
    GR_TRY(cg_kernel_begin(m, k, name, count, values, st));
    k->epi = m->epi;
    return GR_OK;
}

LLVMValueRef cg_arg(const cg_kernel *k, const gr_value *v) {
    v = cg_epilogue_alias(k, v);
    const gr_value *src = in_place_source(k->m, v, k->n_args, k->arg_values);
    if (src) v = src;
    for (int i = 0; i < k->n_args; i++)
        if (k->arg_values[i] == v) return k->args[i];
    GR_ASSERT(!"value is not an argument of the kernel");
    return NULL;
}

gr_code cg_kernel_end(cg_kernel *k, gr_status *st) {
    cg_module *m = k->m;
    LLVMBuildRetVoid(k->b);
    target_attrs(m, k->body, k->wide);
    /* Entry point: void NAME(ptr args, i64 begin, i64 end). */
    LLVMTypeRef params[3] = {m->t_ptr, m->t_i64, m->t_i64};
    LLVMValueRef fn = LLVMAddFunction(m->mod, k->name,
                                      LLVMFunctionType(m->t_void, params, 3, 0));
    target_attrs(m, fn, k->wide);
    LLVMPositionBuilderAtEnd(k->b, LLVMAppendBasicBlockInContext(m->ctx, fn, "entry"));
    LLVMValueRef call_args[CG_MAX_ARGS + 3];
    LLVMValueRef argv = LLVMGetParam(fn, 0);
    for (int i = 0; i <= k->n_args; i++) { /* buffers, then the workspace */
        LLVMValueRef idx = LLVMConstInt(m->t_i64, (unsigned long long)i, 0);
        LLVMValueRef slot = LLVMBuildInBoundsGEP2(k->b, m->t_ptr, argv, &idx, 1, "");
        call_args[i] = LLVMBuildLoad2(k->b, m->t_ptr, slot, "");
    }
    call_args[k->n_args + 1] = LLVMGetParam(fn, 1);
    call_args[k->n_args + 2] = LLVMGetParam(fn, 2);
    LLVMBuildCall2(k->b, LLVMGlobalGetValueType(k->body), k->body, call_args,
                   (unsigned)k->n_args + 3, "");
    LLVMBuildRetVoid(k->b);
    if (k->n_tasks < 1) k->n_tasks = 1;
    m->n_kernels++;
    (void)st;
    return GR_OK;
}

/* --- loops --- */

LLVMValueRef cg_loop_begin(cg_kernel *k, cg_loop *l, LLVMValueRef start,
                           LLVMValueRef end, int64_t step) {
    LLVMContextRef ctx = k->m->ctx;
    memset(l, 0, sizeof *l);
    l->step = step;
    l->end = end;
    l->pre = LLVMGetInsertBlock(k->b);
    LLVMValueRef fn = LLVMGetBasicBlockParent(l->pre);
    l->body = LLVMAppendBasicBlockInContext(ctx, fn, "loop");
    l->exit = LLVMAppendBasicBlockInContext(ctx, fn, "loop.exit");
    LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, start, end, ""), l->body, l->exit);
    LLVMPositionBuilderAtEnd(k->b, l->body);
    l->iv = LLVMBuildPhi(k->b, k->m->t_i64, "i");
    LLVMAddIncoming(l->iv, &start, &l->pre, 1);
    return l->iv;
}

LLVMValueRef cg_loop_acc(cg_kernel *k, cg_loop *l, LLVMValueRef init) {
    GR_ASSERT(l->n_acc < CG_MAX_ACC);
    LLVMPositionBuilderAtEnd(k->b, l->body);
    LLVMValueRef first = LLVMGetFirstInstruction(l->body);
    /* phis must stay together at the top of the block */
    LLVMValueRef after = first;
    while (after && LLVMGetInstructionOpcode(after) == LLVMPHI) after = LLVMGetNextInstruction(after);
    if (after) LLVMPositionBuilderBefore(k->b, after);
    LLVMValueRef phi = LLVMBuildPhi(k->b, LLVMTypeOf(init), "acc");
    LLVMAddIncoming(phi, &init, &l->pre, 1);
    LLVMPositionBuilderAtEnd(k->b, l->body);
    l->acc[l->n_acc] = phi;
    l->acc_init[l->n_acc] = init;
    l->acc_next[l->n_acc] = phi;
    l->n_acc++;
    return phi;
}

void cg_loop_next(cg_loop *l, int i, LLVMValueRef next) { l->acc_next[i] = next; }

/* !llvm.loop !{self, !{"llvm.loop.vectorize.enable", i1 1}}: lets the
 * vectoriser reorder floating-point reductions (no fast-math flags in the
 * LLVM 16 C API). */
static void mark_vectorize(cg_kernel *k, LLVMValueRef br) {
    LLVMContextRef ctx = k->m->ctx;
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(ctx, NULL, 0);
    LLVMMetadataRef enable[2] = {
        LLVMMDStringInContext2(ctx, "llvm.loop.vectorize.enable", 26),
        LLVMValueAsMetadata(LLVMConstInt(k->m->t_i1, 1, 0))};
    LLVMMetadataRef items[2] = {tmp, LLVMMDNodeInContext2(ctx, enable, 2)};
    LLVMMetadataRef loop = LLVMMDNodeInContext2(ctx, items, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, loop);
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9),
                    LLVMMetadataAsValue(ctx, loop));
}

void cg_loop_end(cg_kernel *k, cg_loop *l) {
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(k->b);
    LLVMValueRef next = LLVMBuildNSWAdd(k->b, l->iv, cg_i64(k, l->step), "i.next");
    LLVMValueRef br = LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, next, l->end, ""),
                                      l->body, l->exit);
    if (l->vectorize) mark_vectorize(k, br);
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    for (int i = 0; i < l->n_acc; i++) LLVMAddIncoming(l->acc[i], &l->acc_next[i], &latch, 1);
    LLVMPositionBuilderAtEnd(k->b, l->exit);
    for (int i = 0; i < l->n_acc; i++) {
        LLVMValueRef phi = LLVMBuildPhi(k->b, LLVMTypeOf(l->acc_init[i]), "acc.out");
        LLVMValueRef vals[2] = {l->acc_init[i], l->acc_next[i]};
        LLVMBasicBlockRef blocks[2] = {l->pre, latch};
        LLVMAddIncoming(phi, vals, blocks, 2);
        l->acc_out[i] = phi;
    }
}

/* --- values --- */

LLVMValueRef cg_i64(const cg_kernel *k, int64_t v) {
    return LLVMConstInt(k->m->t_i64, (unsigned long long)v, 1);
}

LLVMValueRef cg_i32(const cg_kernel *k, int32_t v) {
    return LLVMConstInt(k->m->t_i32, (unsigned long long)(int64_t)v, 1);
}

LLVMValueRef cg_f32(const cg_kernel *k, double v) { return LLVMConstReal(k->m->t_f32, v); }

int cg_dtype_signed(gr_dtype dt) {
    return dt == GR_DTYPE_I8 || dt == GR_DTYPE_I16 || dt == GR_DTYPE_I32 || dt == GR_DTYPE_I64;
}

LLVMTypeRef cg_mem_type(const cg_module *m, gr_dtype dt) {
    switch (dt) {
    case GR_DTYPE_F32: return m->t_f32;
    case GR_DTYPE_F64: return m->t_f64;
    case GR_DTYPE_F16: case GR_DTYPE_BF16: case GR_DTYPE_I16: case GR_DTYPE_U16: return m->t_i16;
    case GR_DTYPE_I8: case GR_DTYPE_U8: case GR_DTYPE_BOOL: return m->t_i8;
    case GR_DTYPE_I32: case GR_DTYPE_U32: return m->t_i32;
    default: return m->t_i64;
    }
}

LLVMTypeRef cg_reg_type(const cg_module *m, gr_dtype dt) {
    switch (dt) {
    case GR_DTYPE_BOOL: return m->t_i1;
    case GR_DTYPE_F16: case GR_DTYPE_BF16: return m->t_f32;
    default: return cg_mem_type(m, dt);
    }
}

LLVMValueRef cg_const(const cg_kernel *k, gr_dtype dt, double v) {
    LLVMTypeRef t = cg_reg_type(k->m, dt);
    if (gr_dtype_is_float(dt)) return LLVMConstReal(t, v);
    if (dt == GR_DTYPE_BOOL) return LLVMConstInt(t, v != 0, 0);
    return LLVMConstInt(t, (unsigned long long)(int64_t)v, cg_dtype_signed(dt));
}

LLVMValueRef cg_gep(cg_kernel *k, gr_dtype dt, LLVMValueRef ptr, LLVMValueRef index) {
    return LLVMBuildInBoundsGEP2(k->b, cg_mem_type(k->m, dt), ptr, &index, 1, "");
}

LLVMValueRef cg_load(cg_kernel *k, gr_dtype dt, LLVMValueRef ptr, LLVMValueRef index) {
    cg_module *m = k->m;
    LLVMValueRef v = LLVMBuildLoad2(k->b, cg_mem_type(m, dt), cg_gep(k, dt, ptr, index), "");
    LLVMSetAlignment(v, (unsigned)gr_dtype_size(dt));
    switch (dt) {
    case GR_DTYPE_BOOL:
        return LLVMBuildICmp(k->b, LLVMIntNE, v, LLVMConstInt(m->t_i8, 0, 0), "");
    case GR_DTYPE_F16:
        return LLVMBuildFPExt(k->b, LLVMBuildBitCast(k->b, v, LLVMHalfTypeInContext(m->ctx), ""),
                              m->t_f32, "");
    case GR_DTYPE_BF16: { /* bf16 is the top half of an f32 */
        LLVMValueRef wide = LLVMBuildShl(k->b, LLVMBuildZExt(k->b, v, m->t_i32, ""),
                                         LLVMConstInt(m->t_i32, 16, 0), "");
        return LLVMBuildBitCast(k->b, wide, m->t_f32, "");
    }
    default: return v;
    }
}

/* f32 -> bf16 bits with round-to-nearest-even (NaN kept quiet). */
static LLVMValueRef to_bf16(cg_kernel *k, LLVMValueRef f) {
    cg_module *m = k->m;
    LLVMValueRef bits = LLVMBuildBitCast(k->b, f, m->t_i32, "");
    LLVMValueRef lsb = LLVMBuildAnd(k->b, LLVMBuildLShr(k->b, bits, LLVMConstInt(m->t_i32, 16, 0), ""),
                                    LLVMConstInt(m->t_i32, 1, 0), "");
    LLVMValueRef rounded = LLVMBuildAdd(k->b, bits, LLVMBuildAdd(k->b, lsb,
                                        LLVMConstInt(m->t_i32, 0x7fff, 0), ""), "");
    LLVMValueRef nan = LLVMBuildFCmp(k->b, LLVMRealUNO, f, f, "");
    LLVMValueRef quiet = LLVMBuildOr(k->b, bits, LLVMConstInt(m->t_i32, 0x400000, 0), "");
    LLVMValueRef r = LLVMBuildSelect(k->b, nan, quiet, rounded, "");
    return LLVMBuildTrunc(k->b, LLVMBuildLShr(k->b, r, LLVMConstInt(m->t_i32, 16, 0), ""),
                          m->t_i16, "");
}

void cg_store(cg_kernel *k, gr_dtype dt, LLVMValueRef ptr, LLVMValueRef index,
              LLVMValueRef value) {
    cg_module *m = k->m;
    switch (dt) {
    case GR_DTYPE_BOOL: value = LLVMBuildZExt(k->b, value, m->t_i8, ""); break;
    case GR_DTYPE_F16:
        value = LLVMBuildBitCast(k->b, LLVMBuildFPTrunc(k->b, value, LLVMHalfTypeInContext(m->ctx), ""),
                                 m->t_i16, "");
        break;
    case GR_DTYPE_BF16: value = to_bf16(k, value); break;
    default: break;
    }
    LLVMValueRef s = LLVMBuildStore(k->b, value, cg_gep(k, dt, ptr, index));
    LLVMSetAlignment(s, (unsigned)gr_dtype_size(dt));
}

LLVMValueRef cg_intrinsic(cg_kernel *k, const char *name, LLVMTypeRef overload,
                          int n_args, LLVMValueRef *args) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    GR_ASSERT(id != 0);
    LLVMTypeRef types[2] = {overload ? overload : LLVMTypeOf(args[0])};
    size_t n_types = 1;
    /* fptosi.sat / fptoui.sat are overloaded on result and operand */
    if (strstr(name, ".sat")) {
        types[1] = LLVMTypeOf(args[0]);
        n_types = 2;
    }
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->m->mod, id, types, n_types);
    LLVMTypeRef fty = LLVMIntrinsicGetType(k->m->ctx, id, types, n_types);
    return LLVMBuildCall2(k->b, fty, fn, args, (unsigned)n_args, "");
}

void cg_memcpy(cg_kernel *k, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef bytes) {
    LLVMBuildMemCpy(k->b, dst, 1, src, 1, bytes);
}

LLVMValueRef cg_convert(cg_kernel *k, LLVMValueRef v, gr_dtype from, gr_dtype to) {
    cg_module *m = k->m;
    LLVMTypeRef rt = cg_reg_type(m, to);
    int ff = gr_dtype_is_float(from), tf = gr_dtype_is_float(to);
    if (to == GR_DTYPE_BOOL) {
        if (from == GR_DTYPE_BOOL) return v;
        return ff ? LLVMBuildFCmp(k->b, LLVMRealUNE, v, LLVMConstReal(LLVMTypeOf(v), 0), "")
                  : LLVMBuildICmp(k->b, LLVMIntNE, v, LLVMConstInt(LLVMTypeOf(v), 0, 0), "");
    }
    if (from == GR_DTYPE_BOOL)
        return tf ? LLVMBuildUIToFP(k->b, v, rt, "") : LLVMBuildZExt(k->b, v, rt, "");
    if (ff && tf) {
        unsigned a = LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMDoubleTypeKind ? 64 : 32;
        unsigned b = LLVMGetTypeKind(rt) == LLVMDoubleTypeKind ? 64 : 32;
        if (a == b) return v;
        return a < b ? LLVMBuildFPExt(k->b, v, rt, "") : LLVMBuildFPTrunc(k->b, v, rt, "");
    }
    if (ff) {
        LLVMValueRef args[1] = {v};
        return cg_intrinsic(k, cg_dtype_signed(to) ? "llvm.fptosi.sat" : "llvm.fptoui.sat",
                            rt, 1, args);
    }
    if (tf)
        return cg_dtype_signed(from) ? LLVMBuildSIToFP(k->b, v, rt, "")
                                     : LLVMBuildUIToFP(k->b, v, rt, "");
    return LLVMBuildIntCast2(k->b, v, rt, cg_dtype_signed(from), "");
}
