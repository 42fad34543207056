/* gr_codegen.h: graft's code generator. Turns a graph with static shapes
 * into a gr_plan: one LLVM function per kernel (a node, or a fused group of
 * nodes), specialised to its shapes, compiled by ORC LLJIT, or ahead of
 * time into an ELF object (gr_codegen_object, below).
 *
 * Usage:
 *     gr_codegen_opts o = {0};
 *     gr_plan *plan = NULL;
 *     if (gr_codegen_jit(g, &o, &plan, &st) != GR_OK) ...;
 *     ... run it with the runtime (runtime/gr_runtime.h) ...
 *     gr_plan_free(plan);   // also releases the JIT'd code
 *
 * Requires: shapes inferred and static everywhere (run the "specialize",
 * "shapes", "fold" and "dce" passes first), every op supported. The plan
 * copies the weights it needs: the graph may be freed before the plan.
 */
#ifndef GR_CODEGEN_H
#define GR_CODEGEN_H

#include <stdio.h>

#include "ir/gr_ir.h"

typedef struct {
    int verbose;      /* print compile time and kernel count to stderr */
    FILE *dump_ir;    /* if set, optimised LLVM IR is written here */
} gr_codegen_opts;

gr_code gr_codegen_jit(const gr_graph *g, const gr_codegen_opts *opts,
                       gr_plan **out, gr_status *st);

/* Ahead-of-time compilation (codegen/aot.c, `graft compile`). */
typedef struct {
    const char *name;         /* C prefix of the object's symbols: NAME_run, ... */
    const char *cpu;          /* "x86-64-v3" (NULL: the same), "x86-64-v4", "native" */
    const gr_graph *train;    /* a training step (passes/gr_passes.h) or NULL */
    gr_aot_optimizer optimizer; /* the training step's scalars */
} gr_object_opts;

/* Compiles g (inference) and o->train into one relocatable, position-
 * independent ELF object at path (written beside it, then renamed): every
 * kernel, the weights and the plans, all internal, and the external entry
 * points NAME_run, NAME_last_error, NAME_set_threads (with a training step
 * also NAME_train_step, NAME_save, NAME_load, NAME_export_weights) that
 * call the runtime library (runtime/aot.c). *run and *train (NULL without
 * o->train) get the plans compiled, without kernels, for the header
 * (gr_codegen_header); the caller frees them. Same requirements on the
 * graphs as gr_codegen_jit. */
gr_code gr_codegen_object(const gr_graph *g, const gr_object_opts *o, const char *path,
                          gr_plan **run, gr_plan **train, gr_status *st);

/* Writes the C header for an object of gr_codegen_object (atomically):
 * the entry points' declarations, the link line, and the inputs, outputs
 * (and trained tensors) as constants. object is the object's file name
 * (for the comment). */
gr_code gr_codegen_header(const char *path, const char *name, const char *object,
                          const gr_plan *run, const gr_plan *train, gr_status *st);

#endif /* GR_CODEGEN_H */
