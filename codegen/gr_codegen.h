/* gr_codegen.h: graft's code generator. Turns a graph with static shapes
 * into a gr_plan: one LLVM function per kernel (a node, or a fused group of
 * nodes), specialised to its shapes, compiled by ORC LLJIT.
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

#endif /* GR_CODEGEN_H */
