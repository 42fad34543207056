/* cg_build.h: the front half of compiling a plan, shared by the JIT
 * (codegen/jit.c) and object files (codegen/aot.c): buffer layout and
 * kernel emission into LLVM modules, and the LLVM target machine and
 * optimisation pipeline both use. */
#ifndef GR_CG_BUILD_H
#define GR_CG_BUILD_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/gr_codegen.h"

/* Creates the LLVM native target once (idempotent, not thread-safe). */
void cg_init_llvm(void);

/* A target machine for this host's triple and the given CPU and features;
 * pic selects position-independent code with the default code model (for
 * object files), else the JIT's defaults. */
gr_code cg_target_machine(const char *cpu, const char *features, int pic,
                          LLVMTargetMachineRef *tm, gr_status *st);

/* Verifies mod and runs LLVM's O3 pipeline on it for tm. */
gr_code cg_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, gr_status *st);

/* Lays out g's buffers into a new plan and emits every kernel into ONE
 * module of ctx (kernels whose code is identical share one function).
 * Kernel entry points are named PREFIX"k<step>_<op>" and recorded as the
 * steps' names; the steps' fn pointers stay NULL (the caller resolves
 * them). cpu and features decide the code (e.g. 512-bit GEMM tiles only
 * with "+avx512f"). On success *plan and *mod belong to the caller; on
 * failure both stay NULL. The plan's buffer names are copies. */
gr_code cg_build_module(const gr_graph *g, const char *cpu, const char *features,
                        const char *prefix, LLVMContextRef ctx, gr_plan **plan,
                        LLVMModuleRef *mod, gr_status *st);

#endif /* GR_CG_BUILD_H */
