/* status.c: error reporting (gr_status), graft's own assertions, and the
 * allocation wrappers with failure injection used by the NOMEM tests. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/gr_ir.h"

gr_code gr_fail(gr_status *st, gr_code code, const char *fmt, ...) {
    if (st) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->msg, sizeof st->msg, fmt, ap);
        va_end(ap);
        st->code = code;
    }
    return code;
}

gr_code gr_status_prefix(gr_status *st, const char *fmt, ...) {
    if (!st) return GR_ERR_INTERNAL;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), mlen = strlen(st->msg);
    if (plen + mlen >= sizeof st->msg) mlen = sizeof st->msg - plen - 1;
    memmove(st->msg + plen, st->msg, mlen);
    memcpy(st->msg, prefix, plen);
    st->msg[plen + mlen] = '\0';
    return st->code;
}

const char *gr_code_name(gr_code code) {
    switch (code) {
    case GR_OK: return "ok";
    case GR_ERR_NOMEM: return "out of memory";
    case GR_ERR_IO: return "I/O error";
    case GR_ERR_BAD_MODEL: return "bad model";
    case GR_ERR_UNSUPPORTED: return "unsupported";
    case GR_ERR_BAD_ARG: return "bad argument";
    case GR_ERR_INTERNAL: return "internal error";
    case GR_ERR_NUMERIC: return "numeric error";
    }
    return "unknown error";
}

_Noreturn void gr_assert_fail(const char *cond, const char *file, int line) {
    fprintf(stderr, "graft: internal error: %s:%d: assertion '%s' failed\n",
            file, line, cond);
    abort();
}

static long fail_countdown; /* 0: off */

void gr_debug_fail_alloc_after(long n) { fail_countdown = n; }

/* True if this allocation must fail (injection). Once triggered, stays on. */
static int inject_failure(void) {
    if (fail_countdown <= 0) return 0;
    if (fail_countdown == 1) return 1;
    fail_countdown--;
    return 0;
}

void *gr_malloc(size_t size) {
    if (inject_failure()) return NULL;
    return malloc(size ? size : 1);
}

void *gr_calloc(size_t count, size_t size) {
    if (inject_failure()) return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *gr_realloc(void *ptr, size_t size) {
    if (inject_failure()) return NULL;
    return realloc(ptr, size ? size : 1);
}

void gr_free(void *ptr) { free(ptr); }
