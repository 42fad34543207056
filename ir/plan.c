/* plan.c: the compiled-model container shared by codegen (which fills it)
 * and the runtime (which runs it). */
#include <string.h>

#include "ir/gr_ir.h"

void gr_plan_free(gr_plan *p) {
    if (!p) return;
    if (p->release) p->release(p->owner);
    gr_free(p->consts);
    gr_free(p->state_init);
    gr_arena_free(p->arena);
    gr_free(p);
}

int gr_plan_find_buffer(const gr_plan *p, const char *name) {
    if (!p || !name) return -1;
    for (int i = 0; i < p->n_buffers; i++)
        if (p->buffers[i].name && !strcmp(p->buffers[i].name, name)) return i;
    return -1;
}
