/* lora_spec.c: LoRA's text forms: the --lora option value
 * (GLOB[:rank=R,alpha=A,dropout=P]) and adapters.json, the file beside the
 * tensors that --save-adapters writes and `graft run --adapter` reads:
 *   {"format": "graft-lora", "version": 1, "adapters": [
 *    {"weight": "fc1.weight", "form": "x.W^T", "rank": 4, "alpha": 8,
 *     "lora_A": "fc1.weight.lora_A", "lora_B": "fc1.weight.lora_B"}, ...]}
 * form is "x.W^T", "x.W" or "conv" (ARCHITECTURE.md "Adapter naming"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/lora_internal.h"

/* ------------------------------------------------------------- --lora */

static gr_code bad_spec(const char *text, const char *why, gr_status *st) {
    return gr_fail(st, GR_ERR_BAD_ARG, "--lora '%s': %s (expected GLOB[:rank=R,alpha=A,"
                   "dropout=P], rank an integer >= 1, alpha > 0, 0 <= dropout < 1)", text, why);
}

/* One "key=value" of the option list; *alpha_given notes alpha=. */
static gr_code parse_key(const char *text, const char *key, size_t len, gr_lora_spec *out,
                         int *alpha_given, gr_status *st) {
    const char *eq = memchr(key, '=', len);
    if (!eq) return bad_spec(text, "an option has no '='", st);
    char *end;
    errno = 0;
    double v = strtod(eq + 1, &end);
    if (errno || end == eq + 1 || end != key + len || !isfinite(v))
        return bad_spec(text, "an option value is not a number", st);
    size_t klen = (size_t)(eq - key);
    if (klen == 4 && !strncmp(key, "rank", 4) && v >= 1 && v <= 1e6 && v == floor(v))
        out->rank = (int64_t)v;
    else if (klen == 5 && !strncmp(key, "alpha", 5) && v > 0)
        out->alpha = v, *alpha_given = 1;
    else if (klen == 7 && !strncmp(key, "dropout", 7) && v >= 0 && v < 1)
        out->dropout = v;
    else
        return bad_spec(text, "unknown option or value out of range", st);
    return GR_OK;
}

static int starts_with_key(const char *s) {
    return !strncmp(s, "rank=", 5) || !strncmp(s, "alpha=", 6) || !strncmp(s, "dropout=", 8);
}

gr_code gr_lora_spec_parse(const char *text, gr_lora_spec *out, gr_status *st) {
    *out = (gr_lora_spec){.rank = 8};
    const char *colon = strrchr(text, ':');
    const char *opts = colon && starts_with_key(colon + 1) ? colon + 1 : NULL;
    size_t glen = opts ? (size_t)(colon - text) : strlen(text);
    if (!glen) return bad_spec(text, "the glob is empty", st);
    int alpha_given = 0;
    for (const char *p = opts; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        GR_TRY(parse_key(text, p, len, out, &alpha_given, st));
        p = comma ? comma + 1 : p + len;
    }
    if (!alpha_given) out->alpha = (double)out->rank;
    char *glob = malloc(glen + 1);
    if (!glob) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    memcpy(glob, text, glen);
    glob[glen] = '\0';
    out->glob = glob;
    return GR_OK;
}

/* ------------------------------------------------------- adapters.json out */

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->failed) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap + n + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->failed = 1;
            return;
        }
        t->buf = b, t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->buf[t->len += n] = '\0';
}

static void put_str(text *t, const char *s) { put(t, s, strlen(s)); }

/* s as a JSON string. */
static void put_json(text *t, const char *s) {
    put_str(t, "\"");
    for (; *s; s++) {
        char esc[8];
        if (*s == '"' || *s == '\\') snprintf(esc, sizeof esc, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) snprintf(esc, sizeof esc, "\\u%04x", *s);
        else esc[0] = *s, esc[1] = '\0';
        put_str(t, esc);
    }
    put_str(t, "\"");
}

static const char *form_name(lora_form f) {
    return f == LORA_XWT ? "x.W^T" : f == LORA_XW ? "x.W" : "conv";
}

/* One adapters.json entry. */
static void put_adapter(text *t, const lora_adapter *ad, int first) {
    char num[96];
    put_str(t, first ? "\n {\"weight\": " : ",\n {\"weight\": ");
    put_json(t, ad->use.w->name);
    snprintf(num, sizeof num, ", \"form\": \"%s\", \"rank\": %lld, \"alpha\": %.17g",
             form_name(ad->use.form), (long long)ad->rank, ad->scale * (double)ad->rank);
    put_str(t, num);
    put_str(t, ", \"lora_A\": ");
    put_json(t, ad->a->name);
    put_str(t, ", \"lora_B\": ");
    put_json(t, ad->b->name);
    put_str(t, "}");
}

gr_code gr_lora_describe(const gr_graph *g, char **json, const char ***names, int *n_names,
                         gr_status *st) {
    *json = NULL, *names = NULL, *n_names = 0;
    const char **list = malloc(sizeof *list * (size_t)(2 * g->n_nodes + 1));
    char *seen = calloc((size_t)g->n_values + 1, 1);
    text t = {0};
    int n = 0;
    put_str(&t, "{\"format\": \"graft-lora\", \"version\": 1, \"adapters\": [");
    for (int i = 0; list && seen && i < g->n_nodes; i++) {
        lora_adapter ad;
        if (!lora_find_adapter(g, g->nodes[i], &ad) || seen[ad.use.w->id]) continue;
        seen[ad.use.w->id] = 1;
        put_adapter(&t, &ad, n == 0);
        list[n++] = ad.a->name, list[n++] = ad.b->name;
    }
    put_str(&t, "\n]}\n");
    free(seen);
    if (!list || !seen || t.failed) {
        free(list), free(t.buf);
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    }
    if (!n) {
        free(list), free(t.buf);
        return gr_fail(st, GR_ERR_BAD_ARG, "the model has no LoRA adapter to save (give --lora)");
    }
    *json = t.buf, *names = list, *n_names = n;
    return GR_OK;
}

/* -------------------------------------------------------- adapters.json in */

/* The JSON string at *p (after optional spaces) unescaped into out
 * (size bytes); *p moves past it. 0 if there is none. */
static int read_string(const char **p, char *out, size_t size) {
    const char *s = *p + strspn(*p, " \t\r\n");
    if (*s != '"') return 0;
    size_t n = 0;
    for (s++; *s && *s != '"' && n + 1 < size; s++) {
        char c = *s;
        if (c == '\\') {
            c = *++s;
            if (c == 'u') {
                unsigned v = 0;
                if (sscanf(s + 1, "%4x", &v) != 1 || v >= 0x80) return 0;
                c = (char)v, s += 4;
            } else if (c != '"' && c != '\\' && c != '/') {
                return 0;
            }
        }
        out[n++] = c;
    }
    if (*s != '"') return 0;
    out[n] = '\0';
    *p = s + 1;
    return 1;
}

/* The value after "key": within [p, end), as a number. */
static int read_number(const char *p, const char *end, const char *key, double *v) {
    const char *k = strstr(p, key);
    if (!k || k >= end) return 0;
    k += strlen(key);
    k += strspn(k, " \t\r\n");
    if (*k++ != ':') return 0;
    char *stop;
    *v = strtod(k, &stop);
    return stop != k && stop <= end && isfinite(*v);
}

/* name with fnmatch's special characters escaped: a glob matching it only. */
static char *exact_glob(const char *name) {
    char *g = malloc(2 * strlen(name) + 1), *q = g;
    for (const char *c = name; g && *c; c++) {
        if (strchr("*?[\\", *c)) *q++ = '\\';
        *q++ = *c;
    }
    if (g) *q = '\0';
    return g;
}

/* One entry, at the "weight" key p points to. */
static gr_code read_entry(const char **p, gr_lora_spec *s, gr_status *st) {
    char name[1024];
    const char *q = *p + strlen("\"weight\"");
    q += strspn(q, " \t\r\n");
    if (*q++ != ':' || !read_string(&q, name, sizeof name))
        return gr_fail(st, GR_ERR_BAD_ARG, "adapters.json: \"weight\" is not a string");
    const char *end = strchr(q, '}');
    double rank, alpha;
    if (!end || !read_number(q, end, "\"rank\"", &rank) ||
        !read_number(q, end, "\"alpha\"", &alpha) || rank < 1 || rank != floor(rank) ||
        rank > 1e6 || !(alpha > 0))
        return gr_fail(st, GR_ERR_BAD_ARG, "adapters.json: the adapter of '%s' needs \"rank\" "
                       "(an integer >= 1) and \"alpha\" (> 0)", name);
    *s = (gr_lora_spec){.glob = exact_glob(name), .rank = (int64_t)rank, .alpha = alpha};
    if (!s->glob) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    *p = end;
    return GR_OK;
}

gr_code gr_lora_specs_from_json(const char *json, gr_lora_spec **specs, int *n_specs,
                                gr_status *st) {
    *specs = NULL, *n_specs = 0;
    if (!strstr(json, "\"graft-lora\""))
        return gr_fail(st, GR_ERR_BAD_ARG, "adapters.json: not a graft LoRA description "
                       "(no \"format\": \"graft-lora\")");
    int cap = 0;
    for (const char *p = json; (p = strstr(p, "\"weight\"")); p++) cap++;
    if (!cap) return gr_fail(st, GR_ERR_BAD_ARG, "adapters.json: no adapter listed");
    gr_lora_spec *s = calloc((size_t)cap, sizeof *s);
    if (!s) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    int n = 0;
    gr_code rc = GR_OK;
    for (const char *p = json; rc == GR_OK && n < cap && (p = strstr(p, "\"weight\""));)
        if ((rc = read_entry(&p, &s[n], st)) == GR_OK) n++;
    if (rc != GR_OK) {
        gr_lora_specs_free(s, n);
        return rc;
    }
    *specs = s, *n_specs = n;
    return GR_OK;
}

void gr_lora_specs_free(gr_lora_spec *specs, int n_specs) {
    for (int i = 0; specs && i < n_specs; i++) free((char *)specs[i].glob);
    free(specs);
}
