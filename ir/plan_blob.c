/* plan_blob.c: gr_plan_serialize, a gr_plan without its code and data as
 * bytes, for objects compiled ahead of time (codegen/aot.c embeds the
 * bytes; runtime/plan_blob.c reads them back with gr_plan_deserialize).
 *
 * Format (every integer little-endian; a string is a u32 length, or
 * 0xFFFFFFFF for none, then its bytes without a terminator):
 *   "GRPLAN01"
 *   u64 n_buffers n_steps n_inputs n_outputs arena_bytes const_bytes state_bytes
 *   per buffer: str name, u32 kind, i32 index, u64 offset, u64 nbytes,
 *               u32 dtype, i32 rank, i64 dims[rank]
 *   per step:   str name, u32 n_args, i64 n_tasks, u64 workspace_bytes,
 *               i32 args[n_args]
 *   i32 inputs[n_inputs], i32 outputs[n_outputs]
 * Kernel pointers, constants and the initial state travel separately. */
#include <string.h>

#include "ir/gr_ir.h"

typedef struct {
    unsigned char *data;
    size_t size, cap;
    int failed;
} writer;

static void put(writer *w, const void *bytes, size_t n) {
    if (w->failed || !n) return;
    if (w->size + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        while (cap < w->size + n) cap *= 2;
        unsigned char *data = gr_realloc(w->data, cap);
        if (!data) {
            w->failed = 1;
            return;
        }
        w->data = data;
        w->cap = cap;
    }
    memcpy(w->data + w->size, bytes, n);
    w->size += n;
}

static void put_u64(writer *w, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 8);
}

static void put_u32(writer *w, uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 4);
}

static void put_str(writer *w, const char *s) {
    size_t n = s ? strlen(s) : 0;
    put_u32(w, s ? (uint32_t)n : 0xFFFFFFFFu);
    put(w, s, n);
}

static void put_buffer(writer *w, const gr_buffer *b) {
    put_str(w, b->name);
    put_u32(w, (uint32_t)b->kind);
    put_u32(w, (uint32_t)b->index);
    put_u64(w, b->offset);
    put_u64(w, b->nbytes);
    put_u32(w, (uint32_t)b->dtype);
    put_u32(w, (uint32_t)b->shape.rank);
    for (int d = 0; d < b->shape.rank; d++) put_u64(w, (uint64_t)b->shape.dims[d]);
}

static void put_step(writer *w, const gr_step *s) {
    put_str(w, s->name);
    put_u32(w, (uint32_t)s->n_args);
    put_u64(w, (uint64_t)s->n_tasks);
    put_u64(w, s->workspace_bytes);
    for (int a = 0; a < s->n_args; a++) put_u32(w, (uint32_t)s->args[a]);
}

gr_code gr_plan_serialize(const gr_plan *p, void **out, size_t *size, gr_status *st) {
    *out = NULL;
    *size = 0;
    writer w = {0};
    put(&w, "GRPLAN01", 8);
    const uint64_t head[] = {(uint64_t)p->n_buffers, (uint64_t)p->n_steps,
                             (uint64_t)p->n_inputs,  (uint64_t)p->n_outputs,
                             p->arena_bytes,         p->const_bytes,
                             p->state_bytes};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++) put_u64(&w, head[i]);
    for (int i = 0; i < p->n_buffers; i++) put_buffer(&w, &p->buffers[i]);
    for (int i = 0; i < p->n_steps; i++) put_step(&w, &p->steps[i]);
    for (int i = 0; i < p->n_inputs; i++) put_u32(&w, (uint32_t)p->inputs[i]);
    for (int i = 0; i < p->n_outputs; i++) put_u32(&w, (uint32_t)p->outputs[i]);
    if (w.failed) {
        gr_free(w.data);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory serialising the plan");
    }
    *out = w.data;
    *size = w.size;
    return GR_OK;
}
