/* arena.c: a bump allocator. Chunks are linked; large requests get a chunk
 * of their own. Everything is zeroed and 64-byte aligned, and released
 * together by gr_arena_free. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/gr_ir.h"

#define CHUNK_SIZE (64 * 1024)
#define ALIGN 64

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    void *raw;        /* what malloc returned */
    char *base;       /* aligned start */
} chunk;

struct gr_arena {
    chunk *head;
    size_t reserved;
};

gr_arena *gr_arena_new(void) { return gr_calloc(1, sizeof(gr_arena)); }

static void free_chunks(chunk *c) {
    while (c) {
        chunk *next = c->next;
        gr_free(c->raw);
        gr_free(c);
        c = next;
    }
}

void gr_arena_free(gr_arena *a) {
    if (!a) return;
    free_chunks(a->head);
    gr_free(a);
}

void gr_arena_reset(gr_arena *a) {
    free_chunks(a->head);
    a->head = NULL;
    a->reserved = 0;
}

static chunk *new_chunk(gr_arena *a, size_t size) {
    chunk *c = gr_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->raw = gr_malloc(size + ALIGN);
    if (!c->raw) {
        gr_free(c);
        return NULL;
    }
    c->base = (char *)(((uintptr_t)c->raw + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    c->size = size;
    a->reserved += size + ALIGN;
    return c;
}

void *gr_arena_alloc(gr_arena *a, size_t size) {
    size_t rounded = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (rounded < size) return NULL; /* overflow */
    if (rounded == 0) rounded = ALIGN;
    chunk *c = a->head;
    if (!c || c->size - c->used < rounded) {
        if (rounded > CHUNK_SIZE / 4) {
            /* Large: its own chunk, linked behind the current one so the
             * current chunk keeps serving small requests. */
            chunk *big = new_chunk(a, rounded);
            if (!big) return NULL;
            big->used = rounded;
            if (c) {
                big->next = c->next;
                c->next = big;
            } else {
                a->head = big;
            }
            memset(big->base, 0, rounded);
            return big->base;
        }
        c = new_chunk(a, CHUNK_SIZE);
        if (!c) return NULL;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->base + c->used;
    c->used += rounded;
    memset(p, 0, rounded);
    return p;
}

char *gr_arena_strdup(gr_arena *a, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = gr_arena_alloc(a, n);
    if (p) memcpy(p, s, n);
    return p;
}

char *gr_arena_printf(gr_arena *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = gr_arena_alloc(a, (size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t gr_arena_bytes(const gr_arena *a) { return a ? a->reserved : 0; }
