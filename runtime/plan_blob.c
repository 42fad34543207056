/* plan_blob.c: gr_plan_deserialize, the reader of ir/plan_blob.c's format
 * (described there). Every count, length and id is checked against the
 * bytes that remain, so a damaged blob is an error, never a wild read;
 * gr_session_new then checks the plan's own invariants. */
#include <string.h>

#include "runtime/gr_runtime.h"

typedef struct {
    const unsigned char *at, *end;
    gr_arena *arena;
    int bad;
} reader;

static int take(reader *r, void *dst, size_t n) {
    if (r->bad || (size_t)(r->end - r->at) < n) {
        r->bad = 1;
        if (dst) memset(dst, 0, n);
        return 0;
    }
    if (dst) memcpy(dst, r->at, n);
    r->at += n;
    return 1;
}

/* A little-endian unsigned integer of n <= 8 bytes. */
static uint64_t get_le(reader *r, int n) {
    unsigned char b[8];
    uint64_t v = 0;
    take(r, b, (size_t)n);
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static uint64_t get_u64(reader *r) { return get_le(r, 8); }
static uint32_t get_u32(reader *r) { return (uint32_t)get_le(r, 4); }

/* An int32 in [0, limit). */
static int get_id(reader *r, int limit) {
    uint32_t v = get_u32(r);
    if (v >= (uint32_t)limit) r->bad = 1;
    return r->bad ? 0 : (int)v;
}

static const char *get_str(reader *r) {
    uint32_t n = get_u32(r);
    if (n == 0xFFFFFFFFu || r->bad) return NULL;
    if ((size_t)(r->end - r->at) < n) {
        r->bad = 1;
        return NULL;
    }
    char *s = gr_arena_alloc(r->arena, (size_t)n + 1);
    if (!s) r->bad = 1;
    else take(r, s, n);
    return s;
}

static void get_buffer(reader *r, gr_buffer *b) {
    b->name = get_str(r);
    b->kind = (gr_buffer_kind)get_u32(r);
    b->index = (int)get_u32(r);
    b->offset = (size_t)get_u64(r);
    b->nbytes = (size_t)get_u64(r);
    b->dtype = (gr_dtype)get_u32(r);
    b->shape.rank = (int)get_u32(r);
    if (b->shape.rank < 0 || b->shape.rank > GR_MAX_RANK) r->bad = 1;
    for (int d = 0; !r->bad && d < b->shape.rank; d++) b->shape.dims[d] = (int64_t)get_u64(r);
}

static void get_step(reader *r, gr_step *s, int n_buffers) {
    s->name = get_str(r);
    uint32_t n_args = get_u32(r);
    s->n_tasks = (int64_t)get_u64(r);
    s->workspace_bytes = (size_t)get_u64(r);
    if (r->bad || n_args > (size_t)(r->end - r->at) / 4) {
        r->bad = 1;
        return;
    }
    s->n_args = (int)n_args;
    s->args = gr_arena_alloc(r->arena, sizeof(int) * ((size_t)n_args + 1));
    if (!s->args) r->bad = 1;
    for (uint32_t a = 0; !r->bad && a < n_args; a++) s->args[a] = get_id(r, n_buffers);
}

/* Counts must fit what is left (each entry takes at least min_bytes). */
static int get_count(reader *r, size_t min_bytes) {
    uint64_t n = get_u64(r);
    if (n > (uint64_t)(r->end - r->at) / min_bytes || n > 0x7FFFFFFF) r->bad = 1;
    return r->bad ? 0 : (int)n;
}

static void read_plan(reader *r, gr_plan *p) {
    char magic[8];
    if (!take(r, magic, 8) || memcmp(magic, "GRPLAN01", 8)) {
        r->bad = 1;
        return;
    }
    p->n_buffers = get_count(r, 36);
    p->n_steps = get_count(r, 24);
    p->n_inputs = get_count(r, 4);
    p->n_outputs = get_count(r, 4);
    p->arena_bytes = (size_t)get_u64(r);
    p->const_bytes = (size_t)get_u64(r);
    p->state_bytes = (size_t)get_u64(r);
    p->buffers = gr_arena_alloc(r->arena, sizeof(gr_buffer) * ((size_t)p->n_buffers + 1));
    p->steps = gr_arena_alloc(r->arena, sizeof(gr_step) * ((size_t)p->n_steps + 1));
    p->inputs = gr_arena_alloc(r->arena, sizeof(int) * ((size_t)p->n_inputs + 1));
    p->outputs = gr_arena_alloc(r->arena, sizeof(int) * ((size_t)p->n_outputs + 1));
    if (!p->buffers || !p->steps || !p->inputs || !p->outputs) r->bad = 1;
    for (int i = 0; !r->bad && i < p->n_buffers; i++) get_buffer(r, &p->buffers[i]);
    for (int i = 0; !r->bad && i < p->n_steps; i++) get_step(r, &p->steps[i], p->n_buffers);
    for (int i = 0; !r->bad && i < p->n_inputs; i++) p->inputs[i] = get_id(r, p->n_buffers);
    for (int i = 0; !r->bad && i < p->n_outputs; i++) p->outputs[i] = get_id(r, p->n_buffers);
    if (r->at != r->end) r->bad = 1;
}

gr_code gr_plan_deserialize(const void *blob, size_t size, gr_plan **out, gr_status *st) {
    *out = NULL;
    gr_plan *p = gr_calloc(1, sizeof *p);
    if (!p || !(p->arena = gr_arena_new())) {
        gr_free(p);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory reading a compiled plan");
    }
    reader r = {blob, (const unsigned char *)blob + size, p->arena, !blob};
    read_plan(&r, p);
    if (r.bad) {
        gr_plan_free(p);
        return gr_fail(st, GR_ERR_INTERNAL, "the compiled plan (%zu bytes) is damaged or "
                       "from another graft version", size);
    }
    *out = p;
    return GR_OK;
}
