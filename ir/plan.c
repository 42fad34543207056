/* plan.c: the compiled-model container shared by codegen (which fills it)
 * and the runtime (which runs it). */
#include "ir/gr_ir.h"

void gr_plan_free(gr_plan *p) {
    if (!p) return;
    if (p->release) p->release(p->owner);
    gr_free(p->consts);
    gr_arena_free(p->arena);
    gr_free(p);
}
