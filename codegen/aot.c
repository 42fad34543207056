/* aot.c: gr_codegen_object: a model compiled ahead of time into one
 * relocatable, position-independent ELF object. The kernels are emitted as
 * for the JIT (codegen/jit.c, cg_build_module), into one module, and made
 * internal; beside them go internal constant globals for each plan (its
 * gr_plan_serialize bytes, weights, initial state and a table of the
 * steps' kernels), one internal mutable gr_aot_model descriptor pointing
 * at them, and the only external symbols: NAME_run, NAME_last_error,
 * NAME_set_threads (and with a training step NAME_train_step, NAME_save,
 * NAME_load, NAME_export_weights), each a call into the runtime library
 * (runtime/aot.c: gr_aot_run(&descriptor, ...)). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>

#include "codegen/cg_build.h"

/* Feature strings of the named x86-64 levels (psABI): v3 is Haswell's set
 * and excludes AVX-512 outright; v4 adds the AVX-512 subsets of Skylake-X. */
#define V3_FEATURES "+avx,+avx2,+bmi,+bmi2,+f16c,+fma,+lzcnt,+movbe,+popcnt,+sse4.2,+xsave"
#define V4_FEATURES V3_FEATURES ",+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl"

/* The CPU name and features for opts->cpu (LLVM messages: dispose them). */
static gr_code pick_target(const char *cpu, char **name, char **features, gr_status *st) {
    if (!cpu || !strcmp(cpu, "x86-64-v3")) {
        *name = LLVMCreateMessage("x86-64-v3");
        *features = LLVMCreateMessage(V3_FEATURES ",-avx512f");
    } else if (!strcmp(cpu, "x86-64-v4")) {
        *name = LLVMCreateMessage("x86-64-v4");
        *features = LLVMCreateMessage(V4_FEATURES);
    } else if (!strcmp(cpu, "native")) {
        *name = LLVMGetHostCPUName();
        *features = LLVMGetHostCPUFeatures();
    } else {
        return gr_fail(st, GR_ERR_BAD_ARG, "--cpu: unknown CPU '%s' (expected x86-64-v3, "
                       "x86-64-v4 or native)", cpu);
    }
    return GR_OK;
}

typedef struct {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef t_i32, t_i64, t_f32, t_f64, t_ptr, t_plan, t_opt, t_model;
    const gr_object_opts *o;
} object;

/* An internal constant global holding bytes (64-byte aligned). */
static LLVMValueRef bytes_global(object *ob, const char *name, const void *data, size_t n) {
    static const char empty[1];
    LLVMValueRef init = LLVMConstStringInContext(ob->ctx, n ? data : empty, n ? (unsigned)n : 1, 1);
    LLVMValueRef gv = LLVMAddGlobal(ob->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    LLVMSetAlignment(gv, 64);
    return gv;
}

/* The kernels of p's steps as a constant array of function pointers. */
static gr_code kernel_table(object *ob, const gr_plan *p, const char *name, LLVMValueRef *out,
                            gr_status *st) {
    LLVMValueRef *fns = gr_calloc((size_t)p->n_steps + 1, sizeof *fns);
    if (!fns) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n_steps; i++) {
        fns[i] = LLVMGetNamedFunction(ob->mod, p->steps[i].name);
        if (!fns[i]) {
            gr_free(fns);
            return gr_fail(st, GR_ERR_INTERNAL, "kernel '%s' is missing from the module",
                           p->steps[i].name);
        }
    }
    LLVMValueRef init = LLVMConstArray(ob->t_ptr, fns, (unsigned)p->n_steps);
    gr_free(fns);
    LLVMValueRef gv = LLVMAddGlobal(ob->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    *out = gv;
    return GR_OK;
}

/* A gr_aot_plan constant for p (all zero without a plan). */
static gr_code plan_struct(object *ob, const gr_plan *p, const char *tag, LLVMValueRef *out,
                           gr_status *st) {
    LLVMValueRef f[5];
    if (!p) {
        *out = LLVMConstNull(ob->t_plan);
        return GR_OK;
    }
    if (p->const_bytes > UINT32_MAX || p->state_bytes > UINT32_MAX)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "objects hold at most 4 GiB of weights "
                       "(this model has %zu bytes)", p->const_bytes + p->state_bytes);
    void *blob = NULL;
    size_t n = 0;
    char name[64];
    GR_TRY(gr_plan_serialize(p, &blob, &n, st));
    snprintf(name, sizeof name, "graft.%s.plan", tag);
    f[0] = bytes_global(ob, name, blob, n);
    gr_free(blob);
    f[1] = LLVMConstInt(ob->t_i64, n, 0);
    snprintf(name, sizeof name, "graft.%s.consts", tag);
    f[2] = bytes_global(ob, name, p->consts, p->const_bytes);
    snprintf(name, sizeof name, "graft.%s.state", tag);
    f[3] = bytes_global(ob, name, p->state_init, p->state_bytes);
    snprintf(name, sizeof name, "graft.%s.kernels", tag);
    GR_TRY(kernel_table(ob, p, name, &f[4], st));
    *out = LLVMConstNamedStruct(ob->t_plan, f, 5);
    return GR_OK;
}

static void make_types(object *ob) {
    ob->t_i32 = LLVMInt32TypeInContext(ob->ctx);
    ob->t_i64 = LLVMInt64TypeInContext(ob->ctx);
    ob->t_f32 = LLVMFloatTypeInContext(ob->ctx);
    ob->t_f64 = LLVMDoubleTypeInContext(ob->ctx);
    ob->t_ptr = LLVMPointerTypeInContext(ob->ctx, 0);
    LLVMTypeRef plan[] = {ob->t_ptr, ob->t_i64, ob->t_ptr, ob->t_ptr, ob->t_ptr};
    ob->t_plan = LLVMStructCreateNamed(ob->ctx, "gr_aot_plan");
    LLVMStructSetBody(ob->t_plan, plan, 5, 0);
    LLVMTypeRef opt[] = {ob->t_i64, ob->t_i64, ob->t_f64, ob->t_f64,
                         ob->t_f64, ob->t_f64, ob->t_i64};
    ob->t_opt = LLVMStructCreateNamed(ob->ctx, "gr_aot_optimizer");
    LLVMStructSetBody(ob->t_opt, opt, 7, 0);
    LLVMTypeRef model[] = {ob->t_i64, ob->t_plan, ob->t_plan, ob->t_opt, ob->t_ptr, ob->t_i64};
    ob->t_model = LLVMStructCreateNamed(ob->ctx, "gr_aot_model");
    LLVMStructSetBody(ob->t_model, model, 6, 0);
}

static LLVMValueRef optimizer_struct(object *ob) {
    const gr_aot_optimizer *o = &ob->o->optimizer;
    LLVMValueRef f[] = {
        LLVMConstInt(ob->t_i64, (unsigned long long)o->adam, 0),
        LLVMConstInt(ob->t_i64, (unsigned long long)(o->accumulate > 0 ? o->accumulate : 1), 0),
        LLVMConstReal(ob->t_f64, o->dampening), LLVMConstReal(ob->t_f64, o->beta1),
        LLVMConstReal(ob->t_f64, o->beta2),     LLVMConstReal(ob->t_f64, o->weight_decay),
        LLVMConstInt(ob->t_i64, o->seed, 0)};
    return LLVMConstNamedStruct(ob->t_opt, f, 7);
}

/* The mutable descriptor every entry point passes to the runtime. */
static gr_code model_global(object *ob, const gr_plan *run, const gr_plan *train,
                            LLVMValueRef *out, gr_status *st) {
    LLVMValueRef f[6];
    f[0] = LLVMConstInt(ob->t_i64, GR_AOT_VERSION, 0);
    GR_TRY(plan_struct(ob, run, "run", &f[1], st));
    GR_TRY(plan_struct(ob, train, "train", &f[2], st));
    f[3] = optimizer_struct(ob);
    f[4] = LLVMConstNull(ob->t_ptr);
    f[5] = LLVMConstInt(ob->t_i64, 0, 0);
    LLVMValueRef gv = LLVMAddGlobal(ob->mod, ob->t_model, "graft.model");
    LLVMSetInitializer(gv, LLVMConstNamedStruct(ob->t_model, f, 6));
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    *out = gv;
    return GR_OK;
}

/* NAME_suffix(params...) { return gr_aot_suffix(&model, params...); } */
static void entry_point(object *ob, LLVMValueRef model, const char *suffix, LLVMTypeRef ret,
                        LLVMTypeRef *params, unsigned n_params) {
    LLVMTypeRef all[8];
    all[0] = ob->t_ptr;
    for (unsigned i = 0; i < n_params; i++) all[i + 1] = params[i];
    char name[256];
    snprintf(name, sizeof name, "gr_aot_%s", suffix);
    LLVMTypeRef callee_type = LLVMFunctionType(ret, all, n_params + 1, 0);
    LLVMValueRef callee = LLVMAddFunction(ob->mod, name, callee_type);
    snprintf(name, sizeof name, "%s_%s", ob->o->name, suffix);
    LLVMValueRef fn = LLVMAddFunction(ob->mod, name, LLVMFunctionType(ret, params, n_params, 0));
    LLVMPositionBuilderAtEnd(ob->b, LLVMAppendBasicBlockInContext(ob->ctx, fn, "entry"));
    LLVMValueRef args[8];
    args[0] = model;
    for (unsigned i = 0; i < n_params; i++) args[i + 1] = LLVMGetParam(fn, i);
    LLVMValueRef r = LLVMBuildCall2(ob->b, callee_type, callee, args, n_params + 1, "");
    if (LLVMGetTypeKind(ret) == LLVMVoidTypeKind) LLVMBuildRetVoid(ob->b);
    else LLVMBuildRet(ob->b, r);
}

static void entry_points(object *ob, LLVMValueRef model, int train) {
    LLVMTypeRef pp[] = {ob->t_ptr, ob->t_ptr}, i32[] = {ob->t_i32};
    LLVMTypeRef v = LLVMVoidTypeInContext(ob->ctx);
    entry_point(ob, model, "run", ob->t_i32, pp, 2);
    entry_point(ob, model, "last_error", ob->t_ptr, NULL, 0);
    entry_point(ob, model, "set_threads", v, i32, 1);
    if (!train) return;
    LLVMTypeRef step[] = {ob->t_ptr, ob->t_ptr, ob->t_f32, ob->t_ptr};
    entry_point(ob, model, "train_step", ob->t_i32, step, 4);
    entry_point(ob, model, "save", ob->t_i32, pp, 1);
    entry_point(ob, model, "load", ob->t_i32, pp, 1);
    entry_point(ob, model, "export_weights", ob->t_i32, pp, 1);
}

/* Every definition but the entry points becomes internal. */
static void internalise(object *ob) {
    size_t len = strlen(ob->o->name);
    for (LLVMValueRef f = LLVMGetFirstFunction(ob->mod); f; f = LLVMGetNextFunction(f)) {
        const char *n = LLVMGetValueName(f);
        int entry = !strncmp(n, ob->o->name, len) && n[len] == '_';
        if (!LLVMIsDeclaration(f) && !entry) LLVMSetLinkage(f, LLVMInternalLinkage);
    }
    for (LLVMValueRef g = LLVMGetFirstGlobal(ob->mod); g; g = LLVMGetNextGlobal(g))
        if (!LLVMIsDeclaration(g)) LLVMSetLinkage(g, LLVMInternalLinkage);
}

/* Kernels of the inference plan (and the training plan) in ob->mod. */
static gr_code build_kernels(object *ob, const gr_graph *g, const char *cpu,
                             const char *features, gr_plan **run, gr_plan **train,
                             gr_status *st) {
    GR_TRY(cg_build_module(g, cpu, features, "graft_r_", ob->ctx, run, &ob->mod, st));
    if (!ob->o->train) return GR_OK;
    LLVMModuleRef mod;
    if (cg_build_module(ob->o->train, cpu, features, "graft_t_", ob->ctx, train, &mod, st))
        return gr_status_prefix(st, "training step: ");
    if (LLVMLinkModules2(ob->mod, mod)) /* consumes mod */
        return gr_fail(st, GR_ERR_INTERNAL, "linking the training kernels failed");
    return GR_OK;
}

/* Writes the object to a temporary file beside path, then renames it. */
static gr_code emit_file(object *ob, LLVMTargetMachineRef tm, const char *path,
                         gr_status *st) {
    size_t size = strlen(path) + 32;
    char *tmp = gr_malloc(size), *msg = NULL;
    if (!tmp) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    snprintf(tmp, size, "%s.tmp%ld", path, (long)getpid());
    FILE *probe = fopen(tmp, "wb"); /* LLVM's own message says less */
    gr_code rc = GR_OK;
    if (!probe) {
        rc = gr_fail(st, GR_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    } else {
        fclose(probe);
        if (LLVMTargetMachineEmitToFile(tm, ob->mod, tmp, LLVMObjectFile, &msg)) {
            rc = gr_fail(st, GR_ERR_IO, "cannot write '%s': %s", path, msg ? msg : "");
            LLVMDisposeMessage(msg);
        } else if (rename(tmp, path)) {
            rc = gr_fail(st, GR_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        }
        if (rc != GR_OK) unlink(tmp);
    }
    gr_free(tmp);
    return rc;
}

static gr_code finish_module(object *ob, const gr_plan *run, const gr_plan *train,
                             LLVMTargetMachineRef tm, const char *path, gr_status *st) {
    LLVMValueRef model;
    make_types(ob);
    GR_TRY(model_global(ob, run, train, &model, st));
    entry_points(ob, model, train != NULL);
    internalise(ob);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(ob->mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(ob->mod, layout);
    LLVMDisposeTargetData(layout);
    GR_TRY(cg_optimise(ob->mod, tm, st));
    return emit_file(ob, tm, path, st);
}

static gr_code check_name(const char *name, gr_status *st) {
    int ok = name && ((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') ||
                      *name == '_');
    for (const char *c = name; ok && *c; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
             (*c >= '0' && *c <= '9') || *c == '_';
    if (ok && strlen(name) < 64) return GR_OK;
    return gr_fail(st, GR_ERR_BAD_ARG, "--prefix: '%s' is not a C identifier of at most 63 "
                   "characters", name ? name : "");
}

gr_code gr_codegen_object(const gr_graph *g, const gr_object_opts *o, const char *path,
                          gr_plan **run, gr_plan **train, gr_status *st) {
    *run = *train = NULL;
    GR_TRY(check_name(o->name, st));
    char *cpu = NULL, *features = NULL;
    GR_TRY(pick_target(o->cpu, &cpu, &features, st));
    cg_init_llvm();
    object ob = {.ctx = LLVMContextCreate(), .o = o};
    ob.b = LLVMCreateBuilderInContext(ob.ctx);
    LLVMTargetMachineRef tm = NULL;
    gr_code rc = cg_target_machine(cpu, features, 1, &tm, st);
    if (rc == GR_OK) rc = build_kernels(&ob, g, cpu, features, run, train, st);
    if (rc == GR_OK) rc = finish_module(&ob, *run, *train, tm, path, st);
    if (tm) LLVMDisposeTargetMachine(tm);
    if (ob.mod) LLVMDisposeModule(ob.mod);
    LLVMDisposeBuilder(ob.b);
    LLVMContextDispose(ob.ctx);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    if (rc != GR_OK) {
        gr_plan_free(*run);
        gr_plan_free(*train);
        *run = *train = NULL;
    }
    return rc;
}
