/* data_csv.c: numeric CSV data sets. Comma-separated cells, one sample
 * per non-blank line, an optional header row; one column may be the label
 * (chosen by name, by index, or by default). Features become f32 [n, m],
 * labels doubles [n]. Errors name the file, line and column. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/data_internal.h"

/* One line of text as cells: [begin, end) trimmed, quotes stripped. */
typedef struct {
    const char *begin, *end;
} cell;

typedef struct {
    const char *path;
    const char *p, *end; /* parse position */
    int line;            /* of the last line returned, 1-based */
    cell *cells;
    int n_cells, cap_cells;
} reader;

static int blank(const char *b, const char *e) {
    for (; b < e; b++)
        if (!isspace((unsigned char)*b)) return 0;
    return 1;
}

/* The next non-blank line split into cells; 0 at the end of the text. */
static gr_code next_line(reader *r, int *got, gr_status *st) {
    *got = 0;
    while (r->p < r->end) {
        const char *b = r->p, *e = memchr(b, '\n', (size_t)(r->end - b));
        if (!e) e = r->end;
        r->p = e < r->end ? e + 1 : e;
        r->line++;
        if (blank(b, e)) continue;
        r->n_cells = 0;
        for (const char *c = b;;) {
            const char *comma = memchr(c, ',', (size_t)(e - c));
            const char *ce = comma ? comma : e;
            if (r->n_cells == r->cap_cells) {
                int cap = r->cap_cells ? r->cap_cells * 2 : 16;
                cell *grown = gr_realloc(r->cells, sizeof *grown * (size_t)cap);
                if (!grown) return gr_fail(st, GR_ERR_NOMEM, "out of memory reading '%s'",
                                           r->path);
                r->cells = grown, r->cap_cells = cap;
            }
            const char *cb = c;
            while (cb < ce && isspace((unsigned char)*cb)) cb++;
            while (ce > cb && isspace((unsigned char)ce[-1])) ce--;
            if (ce - cb >= 2 && *cb == '"' && ce[-1] == '"') cb++, ce--;
            r->cells[r->n_cells++] = (cell){cb, ce};
            if (!comma) break;
            c = comma + 1;
        }
        *got = 1;
        return GR_OK;
    }
    return GR_OK;
}

/* 1 and *v if the cell is a whole number (strtod syntax). */
static int parse_number(cell c, double *v) {
    char buf[128];
    size_t n = (size_t)(c.end - c.begin);
    if (!n || n >= sizeof buf) return 0;
    memcpy(buf, c.begin, n);
    buf[n] = '\0';
    char *end;
    *v = strtod(buf, &end);
    return *end == '\0';
}

static int row_is_numeric(const reader *r) {
    double v;
    for (int i = 0; i < r->n_cells; i++)
        if (!parse_number(r->cells[i], &v)) return 0;
    return 1;
}

static int cell_is(cell c, const char *name) {
    size_t n = strlen(name);
    return (size_t)(c.end - c.begin) == n && !strncasecmp(c.begin, name, n);
}

/* The label column (-1: none) from the options and the header row. */
static gr_code label_column(const reader *r, int has_header, const gr_data_opts *opts,
                            int *column, gr_status *st) {
    int m = r->n_cells;
    *column = -1;
    if (opts->no_labels) return GR_OK;
    const char *want = opts->label_column;
    if (want && *want) {
        char *end;
        long idx = strtol(want, &end, 10);
        if (!*end && isdigit((unsigned char)*want)) {
            if (idx >= m)
                return gr_fail(st, GR_ERR_BAD_ARG, "'%s': label column %ld does not exist "
                               "(the file has %d columns, 0..%d)", r->path, idx, m, m - 1);
            *column = (int)idx;
            return GR_OK;
        }
        for (int i = 0; has_header && i < m; i++)
            if (cell_is(r->cells[i], want)) {
                *column = i;
                return GR_OK;
            }
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s': no column named '%s'%s", r->path, want,
                       has_header ? "" : " (the file has no header row)");
    }
    *column = m - 1;
    for (int i = 0; has_header && i < m; i++)
        if (cell_is(r->cells[i], "label") || cell_is(r->cells[i], "target") ||
            cell_is(r->cells[i], "class")) {
            *column = i;
            break;
        }
    if (m == 1)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s': its only column is the label; no features "
                       "are left", r->path);
    return GR_OK;
}

/* Counts the data lines after the current one. */
static int64_t count_lines(const reader *r) {
    int64_t n = 0;
    const char *p = r->p;
    while (p < r->end) {
        const char *e = memchr(p, '\n', (size_t)(r->end - p));
        if (!e) e = r->end;
        if (!blank(p, e)) n++;
        p = e < r->end ? e + 1 : e;
    }
    return n;
}

/* Stores one data line: features into x, the label (if any) into y. */
static gr_code store_row(const reader *r, int m, int column, const cell *header, float *x,
                         double *y, gr_status *st) {
    if (r->n_cells != m)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' line %d: %d columns, expected %d (as in the "
                       "first row)", r->path, r->line, r->n_cells, m);
    for (int i = 0, k = 0; i < m; i++) {
        double v;
        cell c = r->cells[i];
        char name[80] = "";
        if (header)
            snprintf(name, sizeof name, " ('%.*s')", (int)(header[i].end - header[i].begin),
                     header[i].begin);
        if (!parse_number(c, &v))
            return gr_fail(st, GR_ERR_BAD_ARG, "'%s' line %d column %d%s: '%.*s' is not a "
                           "number", r->path, r->line, i + 1, name,
                           (int)(c.end - c.begin > 40 ? 40 : c.end - c.begin), c.begin);
        if (!isfinite(v))
            return gr_fail(st, GR_ERR_NUMERIC, "'%s' line %d column %d%s: '%.*s' is not a "
                           "finite number", r->path, r->line, i + 1, name,
                           (int)(c.end - c.begin), c.begin);
        if (i == column) *y = v;
        else x[k++] = (float)v;
    }
    return GR_OK;
}

static gr_code load_rows(gr_dataset *d, reader *r, int has_header, const gr_data_opts *opts,
                         gr_status *st) {
    int m = r->n_cells, column;
    cell *header = NULL;
    GR_TRY(label_column(r, has_header, opts, &column, st));
    int64_t n = count_lines(r) + !has_header, width = m - (column >= 0);
    if (n == 0) return gr_fail(st, GR_ERR_BAD_ARG, "'%s' holds a header but no data rows",
                               d->path);
    if (has_header) {
        if (!(header = gr_malloc(sizeof *header * (size_t)m)))
            return gr_fail(st, GR_ERR_NOMEM, "out of memory reading '%s'", d->path);
        memcpy(header, r->cells, sizeof *header * (size_t)m);
    }
    float *x = gr_malloc(sizeof *x * (size_t)(n * width) + 1);
    double *y = column >= 0 ? gr_malloc(sizeof *y * (size_t)n + 1) : NULL;
    gr_code rc = GR_OK;
    if (!x || (column >= 0 && !y))
        rc = gr_fail(st, GR_ERR_NOMEM, "out of memory for %lld rows of '%s'", (long long)n,
                     d->path);
    for (int64_t i = 0; rc == GR_OK && i < n; i++) {
        int got = 1;
        if (i > 0 || has_header) rc = next_line(r, &got, st);
        if (rc == GR_OK && got) rc = store_row(r, m, column, header, x + i * width,
                                              y ? y + i : &(double){0}, st);
    }
    gr_free(header);
    if (rc != GR_OK) {
        gr_free(x), gr_free(y);
        return rc;
    }
    d->data.dtype = GR_DTYPE_F32;
    d->data.shape = gr_shape_make(2, (int64_t[]){n, width});
    d->data.data = x;
    d->data.nbytes = sizeof *x * (size_t)(n * width);
    d->n = n;
    d->sample = gr_shape_make(1, (int64_t[]){width});
    d->sample_numel = width;
    return y ? data_set_labels(d, y, 1, d->path, st) : GR_OK;
}

gr_code data_load_csv(gr_dataset *d, const char *text, size_t len, const gr_data_opts *opts,
                      gr_status *st) {
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3, len -= 3; /* UTF-8 BOM */
    reader r = {.path = d->path, .p = text, .end = text + len};
    int got = 0;
    gr_code rc = next_line(&r, &got, st);
    if (rc == GR_OK && !got)
        rc = gr_fail(st, GR_ERR_BAD_ARG, "'%s' holds no rows", d->path);
    if (rc == GR_OK) {
        int has_header = opts->header > 0 || (opts->header == 0 && !row_is_numeric(&r));
        rc = load_rows(d, &r, has_header, opts, st);
    }
    gr_free(r.cells);
    return rc;
}
