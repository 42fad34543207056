/* driver.c: the pass table (from passes.def), the pass runner and the
 * --shape parser. The runner prefixes every error with the pass name, runs
 * the verifier after each pass in test builds (GR_VERIFY_PASSES) and dumps
 * the graph after the pass named by opts->dump_after ("all": every pass). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "passes/gr_passes.h"

typedef struct {
    const char *name;
    gr_pass_fn fn;
} pass_entry;

static const pass_entry passes[] = {
#define PASS(name, fn, summary) {name, fn},
#include "passes/passes.def"
#undef PASS
};

#define N_PASSES ((int)(sizeof passes / sizeof passes[0]))

gr_pass_fn gr_pass_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_PASSES; i++)
        if (!strcmp(passes[i].name, name)) return passes[i].fn;
    return NULL;
}

/* "specialize, shapes, ..." for error messages. */
static void pass_list(char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_PASSES && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                                 passes[i].name);
}

static int wants_dump(const gr_pass_opts *opts, const char *name) {
    return opts && opts->dump_after &&
           (!strcmp(opts->dump_after, "all") || !strcmp(opts->dump_after, name));
}

static gr_code verify_after(const gr_graph *g, const char *name, gr_status *st) {
#ifdef GR_VERIFY_PASSES
    gr_status vst = {0};
    gr_code rc = gr_graph_verify(g, &vst);
    if (rc == GR_ERR_NOMEM) return gr_fail(st, rc, "after pass '%s': %s", name, vst.msg);
    if (rc != GR_OK)
        return gr_fail(st, GR_ERR_INTERNAL, "pass '%s' left a broken graph: %s",
                       name, vst.msg);
#else
    (void)g;
    (void)name;
    (void)st;
#endif
    return GR_OK;
}

gr_code gr_passes_run(gr_graph *g, const char *const *names,
                      const gr_pass_opts *opts, gr_status *st) {
    static const gr_pass_opts no_opts = {0};
    char list[256];
    if (!opts) opts = &no_opts;
    if (opts->dump_after && strcmp(opts->dump_after, "all") &&
        !gr_pass_find(opts->dump_after)) {
        pass_list(list, sizeof list);
        return gr_fail(st, GR_ERR_BAD_ARG,
                       "--dump-after: unknown pass '%s' (passes: %s, or all)",
                       opts->dump_after, list);
    }
    for (int i = 0; names && names[i]; i++) {
        gr_pass_fn fn = gr_pass_find(names[i]);
        if (!fn) {
            pass_list(list, sizeof list);
            return gr_fail(st, GR_ERR_BAD_ARG, "unknown pass '%s' (passes: %s)",
                           names[i], list);
        }
        gr_code rc = fn(g, opts, st);
        if (rc != GR_OK) {
            if (st->code == GR_OK) /* a pass that failed without saying why is still a failure */
                gr_fail(st, rc, "failed (%s)", gr_code_name(rc));
            return gr_status_prefix(st, "pass '%s': ", names[i]);
        }
        GR_TRY(verify_after(g, names[i], st));
        if (wants_dump(opts, names[i])) {
            FILE *out = opts->dump ? opts->dump : stderr;
            fprintf(out, "# after pass '%s'\n", names[i]);
            gr_graph_print(g, out);
        }
    }
    return GR_OK;
}

/* --- gr_parse_shape ---------------------------------------------------- */

/* Symbol names live for the whole process: gr_shape holds borrowed
 * pointers and gr_parse_shape has no arena. Equal names share storage. */
static char sym_pool[4096];
static size_t sym_used;

static const char *intern_symbol(const char *s, size_t len) {
    for (size_t at = 0; at < sym_used; at += strlen(sym_pool + at) + 1)
        if (strlen(sym_pool + at) == len && !memcmp(sym_pool + at, s, len))
            return sym_pool + at;
    if (sym_used + len + 1 > sizeof sym_pool) return NULL;
    char *p = sym_pool + sym_used;
    memcpy(p, s, len);
    p[len] = '\0';
    sym_used += len + 1;
    return p;
}

/* One part of a shape, [s, s+len): a number or a symbol. */
static gr_code parse_dim(const char *text, int index, const char *s, size_t len,
                         gr_shape *out, gr_status *st) {
    if (len == 0)
        return gr_fail(st, GR_ERR_BAD_ARG,
                       "shape '%s': dim %d is empty (expected e.g. 1x3x224x224)",
                       text, index);
    if (isalpha((unsigned char)s[0]) || s[0] == '_') {
        for (size_t i = 0; i < len; i++)
            if (!isalnum((unsigned char)s[i]) && s[i] != '_')
                return gr_fail(st, GR_ERR_BAD_ARG,
                               "shape '%s': dim %d ('%.*s') is not a number or a name",
                               text, index, (int)len, s);
        out->dims[index] = GR_DIM_DYNAMIC;
        out->syms[index] = intern_symbol(s, len);
        if (!out->syms[index])
            return gr_fail(st, GR_ERR_NOMEM, "shape '%s': too many dim names", text);
        return GR_OK;
    }
    if (s[0] == '-')
        return gr_fail(st, GR_ERR_BAD_ARG, "shape '%s': dim %d ('%.*s') is negative",
                       text, index, (int)len, s);
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return gr_fail(st, GR_ERR_BAD_ARG,
                           "shape '%s': dim %d ('%.*s') is not a number or a name",
                           text, index, (int)len, s);
    char buf[32];
    if (len >= sizeof buf)
        return gr_fail(st, GR_ERR_BAD_ARG, "shape '%s': dim %d is too large", text, index);
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return gr_fail(st, GR_ERR_BAD_ARG, "shape '%s': dim %d is too large", text, index);
    out->dims[index] = v;
    out->syms[index] = NULL;
    return GR_OK;
}

gr_code gr_parse_shape(const char *text, gr_shape *out, gr_status *st) {
    if (!text || !*text)
        return gr_fail(st, GR_ERR_BAD_ARG, "empty shape (expected e.g. 1x3x224x224)");
    gr_shape s = gr_shape_scalar();
    const char *p = text;
    for (int index = 0;; index++) {
        const char *end = strchr(p, 'x');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (index >= GR_MAX_RANK)
            return gr_fail(st, GR_ERR_BAD_ARG,
                           "shape '%s' has more than %d dims (the most graft supports)",
                           text, GR_MAX_RANK);
        GR_TRY(parse_dim(text, index, p, len, &s, st));
        s.rank = index + 1;
        if (!end) break;
        p = end + 1;
    }
    *out = s;
    return GR_OK;
}
