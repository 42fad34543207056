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

void *gr_plan_buffer_data(const gr_plan *p, int buffer, void *arena, void *state,
                          void *const *inputs, void *const *outputs) {
    const gr_buffer *b = &p->buffers[buffer];
    switch (b->kind) {
    case GR_BUF_ARENA: return (char *)arena + b->offset;
    case GR_BUF_CONST: return (char *)p->consts + b->offset;
    case GR_BUF_STATE: return (char *)state + b->offset;
    case GR_BUF_INPUT: return inputs[b->index];
    case GR_BUF_OUTPUT: return outputs[b->index];
    }
    return NULL;
}
