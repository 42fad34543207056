/* checkpoint.c: named tensors between a training step's state buffers,
 * .npy directories and a graph's parameters: checkpoints (written to
 * DIR.tmp, then renamed over DIR), --resume, --init and the trained
 * weights for export. Names map to files as NAME.npy with characters
 * outside [A-Za-z0-9._-] replaced by '_'. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/gr_runtime.h"

/* NAME as a file name (without ".npy") into buf. */
static const char *file_stem(const char *name, char *buf, size_t size) {
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++) {
        char c = name[i];
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        buf[i] = keep ? c : '_';
    }
    buf[i] = '\0';
    if (!strcmp(buf, ".") || !strcmp(buf, "..") || !i) snprintf(buf, size, "_%s", name);
    return buf;
}

static char *join(const char *dir, const char *stem, const char *ext) {
    size_t size = strlen(dir) + strlen(stem) + strlen(ext) + 2;
    char *path = gr_malloc(size);
    if (path) snprintf(path, size, "%s/%s%s", dir, stem, ext);
    return path;
}

/* DIR + suffix ("ckpt.tmp"). */
static char *suffixed(const char *dir, const char *suffix) {
    size_t size = strlen(dir) + strlen(suffix) + 1;
    char *path = gr_malloc(size);
    if (path) snprintf(path, size, "%s%s", dir, suffix);
    return path;
}

static int same_shape(const gr_shape *a, const gr_shape *b) {
    if (a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

static gr_code check_tensor(const gr_tensor *t, gr_dtype dtype, const gr_shape *shape,
                            const char *path, gr_status *st) {
    char have[256], want[256];
    if (t->dtype == dtype && same_shape(&t->shape, shape)) return GR_OK;
    return gr_fail(st, GR_ERR_BAD_ARG, "'%s' holds %s%s, expected %s%s", path,
                   gr_dtype_name(t->dtype), gr_shape_str(&t->shape, have, sizeof have),
                   gr_dtype_name(dtype), gr_shape_str(shape, want, sizeof want));
}

/* ------------------------------------------------------------ state copies */

void gr_train_step_copy_state(gr_train_step *dst, gr_train_step *src) {
    const gr_plan *dp = gr_train_step_plan(dst), *sp = gr_train_step_plan(src);
    for (int i = 0; i < dp->n_buffers; i++) {
        const gr_buffer *b = &dp->buffers[i];
        if (b->kind != GR_BUF_STATE || !b->name) continue;
        int j = gr_plan_find_buffer(sp, b->name);
        if (j < 0 || sp->buffers[j].kind != GR_BUF_STATE || sp->buffers[j].nbytes != b->nbytes)
            continue;
        void *to = gr_session_state(gr_train_step_session(dst), i);
        const void *from = gr_session_state(gr_train_step_session(src), j);
        if (to && from && b->nbytes) memcpy(to, from, b->nbytes);
    }
}

gr_code gr_graph_store_state(gr_graph *g, gr_train_step *s, gr_status *st) {
    const gr_plan *p = gr_train_step_plan(s);
    for (int i = 0; i < p->n_buffers; i++) {
        const gr_buffer *b = &p->buffers[i];
        gr_value *v = b->kind == GR_BUF_STATE && b->name ? gr_graph_find(g, b->name) : NULL;
        if (!v || v->kind != GR_VALUE_PARAM) continue;
        if (v->dtype != b->dtype || v->nbytes != b->nbytes || !v->data)
            return gr_fail(st, GR_ERR_INTERNAL, "trained '%s' (%zu bytes) does not fit the "
                           "model's parameter (%zu bytes)", b->name, b->nbytes, v->nbytes);
        memcpy(v->data, gr_session_state(gr_train_step_session(s), i), b->nbytes);
    }
    return GR_OK;
}

/* ------------------------------------------------------------------ --init */

/* The PARAM a file stem names: by exact name, else by its file stem. */
static gr_value *param_for_stem(gr_graph *g, const char *stem) {
    gr_value *v = gr_graph_find(g, stem);
    if (v && v->kind == GR_VALUE_PARAM) return v;
    char buf[1024];
    for (int i = 0; i < g->n_values; i++) {
        v = g->values[i];
        if (v && v->kind == GR_VALUE_PARAM && !strcmp(file_stem(v->name, buf, sizeof buf), stem))
            return v;
    }
    return NULL;
}

/* Optimizer state in a checkpoint used as --init: not a parameter. */
static int is_optimizer_state(const char *stem) {
    static const char *const suffixes[] = {".momentum", ".m", ".v", ".grad_sum"};
    size_t len = strlen(stem);
    for (size_t k = 0; k < sizeof suffixes / sizeof *suffixes; k++) {
        size_t n = strlen(suffixes[k]);
        if (len > n && !strcmp(stem + len - n, suffixes[k])) return 1;
    }
    return 0;
}

static gr_code load_one(gr_graph *g, const char *dir, const char *file, int *n_loaded,
                        gr_status *st) {
    size_t len = strlen(file);
    char stem[1024];
    if (len <= 4 || len - 4 >= sizeof stem) return GR_OK;
    memcpy(stem, file, len - 4);
    stem[len - 4] = '\0';
    gr_value *v = param_for_stem(g, stem);
    if (!v && is_optimizer_state(stem)) return GR_OK;
    if (!v)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s/%s': the model has no parameter '%s'", dir,
                       file, stem);
    char *path = join(dir, file, "");
    if (!path) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_tensor t;
    gr_code code = gr_npy_read(path, &t, st);
    if (code == GR_OK) code = check_tensor(&t, v->dtype, &v->shape, path, st);
    if (code == GR_OK && t.nbytes != v->nbytes)
        code = gr_fail(st, GR_ERR_INTERNAL, "'%s': %zu bytes for %zu", path, t.nbytes,
                       v->nbytes);
    if (code == GR_OK && t.nbytes) memcpy(v->data, t.data, t.nbytes);
    if (code == GR_OK) (*n_loaded)++;
    gr_free(t.data);
    gr_free(path);
    return code;
}

gr_code gr_graph_load_params(gr_graph *g, const char *dir, int *n_loaded, gr_status *st) {
    *n_loaded = 0;
    DIR *d = opendir(dir);
    if (!d) return gr_fail(st, GR_ERR_BAD_ARG, "cannot open directory '%s': %s", dir,
                           strerror(errno));
    gr_code code = GR_OK;
    struct dirent *e;
    while (code == GR_OK && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len <= 4 || strcmp(e->d_name + len - 4, ".npy")) continue;
        code = load_one(g, dir, e->d_name, n_loaded, st);
    }
    closedir(d);
    if (code == GR_OK && !*n_loaded)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' holds no parameter .npy files", dir);
    return code;
}

/* ------------------------------------------------------------- checkpoints */

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Removes a flat directory of files (a checkpoint); missing is fine. */
static gr_code remove_dir(const char *dir, gr_status *st) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? GR_OK
                 : gr_fail(st, GR_ERR_IO, "cannot open '%s': %s", dir, strerror(errno));
    struct dirent *e;
    gr_code code = GR_OK;
    while (code == GR_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *path = join(dir, e->d_name, "");
        if (!path) code = gr_fail(st, GR_ERR_NOMEM, "out of memory");
        else if (unlink(path))
            code = gr_fail(st, GR_ERR_IO, "cannot remove '%s': %s", path, strerror(errno));
        gr_free(path);
    }
    closedir(d);
    if (code == GR_OK && rmdir(dir))
        code = gr_fail(st, GR_ERR_IO, "cannot remove '%s': %s", dir, strerror(errno));
    return code;
}

/* An existing DIR is replaced only if it holds marker (state.json for a
 * checkpoint) or is empty; what names the kind of directory in errors. */
static gr_code check_replaceable(const char *dir, const char *marker, const char *what,
                                 gr_status *st) {
    struct stat sb;
    if (stat(dir, &sb)) return GR_OK;
    if (!S_ISDIR(sb.st_mode))
        return gr_fail(st, GR_ERR_BAD_ARG, "%s '%s' exists and is not a directory", what, dir);
    char *state = join(dir, marker, "");
    if (!state) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    int ok = exists(state);
    gr_free(state);
    if (!ok && rmdir(dir) && errno != ENOENT)
        return gr_fail(st, GR_ERR_BAD_ARG, "%s '%s' exists and is not one (no %s); not "
                       "replacing it", what, dir, marker);
    return GR_OK;
}

static gr_code write_text(const char *path, const char *text, gr_status *st) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return gr_fail(st, GR_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    int bad = done < len || fsync(fd) != 0;
    bad |= close(fd) != 0;
    return bad ? gr_fail(st, GR_ERR_IO, "cannot write '%s': %s", path, strerror(errno)) : GR_OK;
}

static gr_code write_state(const char *dir, gr_train_step *s, const char *json,
                           gr_status *st) {
    const gr_plan *p = gr_train_step_plan(s);
    if (mkdir(dir, 0777))
        return gr_fail(st, GR_ERR_IO, "cannot create '%s': %s", dir, strerror(errno));
    char stem[1024];
    for (int i = 0; i < p->n_buffers; i++) {
        const gr_buffer *b = &p->buffers[i];
        if (b->kind != GR_BUF_STATE || !b->name) continue;
        char *path = join(dir, file_stem(b->name, stem, sizeof stem), ".npy");
        if (!path) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        gr_tensor t = {b->dtype, b->shape, gr_session_state(gr_train_step_session(s), i),
                       b->nbytes};
        gr_code code = gr_npy_write(path, &t, st);
        gr_free(path);
        GR_TRY(code);
    }
    char *path = join(dir, "state.json", "");
    if (!path) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_code code = write_text(path, json, st);
    gr_free(path);
    return code;
}

/* The files of a directory to write: a checkpoint (s) or named
 * parameters of a graph (g, names). */
typedef struct {
    gr_train_step *s;
    const gr_graph *g;
    const char *const *names;
    int n_names;
    const char *marker, *json;
} dir_contents;

/* DIR/NAME.npy for each named PARAM of g, then marker holding json. */
static gr_code write_params(const char *dir, const dir_contents *c, gr_status *st) {
    if (mkdir(dir, 0777))
        return gr_fail(st, GR_ERR_IO, "cannot create '%s': %s", dir, strerror(errno));
    char stem[1024];
    for (int i = 0; i < c->n_names; i++) {
        const gr_value *v = gr_graph_find(c->g, c->names[i]);
        if (!v || v->kind != GR_VALUE_PARAM || !v->data)
            return gr_fail(st, GR_ERR_INTERNAL, "'%s' is not a parameter", c->names[i]);
        char *path = join(dir, file_stem(v->name, stem, sizeof stem), ".npy");
        if (!path) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        gr_tensor t = {v->dtype, v->shape, v->data, v->nbytes};
        gr_code code = gr_npy_write(path, &t, st);
        gr_free(path);
        GR_TRY(code);
    }
    char *path = join(dir, c->marker, "");
    if (!path) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_code code = write_text(path, c->json, st);
    gr_free(path);
    return code;
}

/* Writes c into DIR.tmp, then renames it over DIR (the old one renamed to
 * DIR.old first, then removed). */
static gr_code write_dir(const char *dir, const dir_contents *c, const char *what,
                         gr_status *st) {
    char *tmp = suffixed(dir, ".tmp"), *old = suffixed(dir, ".old");
    gr_code code = tmp && old ? GR_OK : gr_fail(st, GR_ERR_NOMEM, "out of memory");
    if (code == GR_OK) code = check_replaceable(dir, c->marker, what, st);
    if (code == GR_OK) code = remove_dir(tmp, st);
    if (code == GR_OK) code = c->s ? write_state(tmp, c->s, c->json, st)
                                   : write_params(tmp, c, st);
    if (code == GR_OK) code = remove_dir(old, st);
    if (code == GR_OK && exists(dir) && rename(dir, old))
        code = gr_fail(st, GR_ERR_IO, "cannot rename '%s': %s", dir, strerror(errno));
    if (code == GR_OK && rename(tmp, dir))
        code = gr_fail(st, GR_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, dir,
                       strerror(errno));
    if (code == GR_OK) code = remove_dir(old, st);
    if (code != GR_OK) gr_status_prefix(st, "%s '%s': ", what, dir);
    gr_free(tmp);
    gr_free(old);
    return code;
}

gr_code gr_checkpoint_write(const char *dir, gr_train_step *s, const char *json,
                            gr_status *st) {
    dir_contents c = {.s = s, .marker = "state.json", .json = json};
    return write_dir(dir, &c, "checkpoint", st);
}

gr_code gr_params_write_dir(const char *dir, const gr_graph *g, const char *const *names,
                            int n_names, const char *marker, const char *json,
                            gr_status *st) {
    dir_contents c = {.g = g, .names = names, .n_names = n_names, .marker = marker,
                      .json = json};
    return write_dir(dir, &c, "directory", st);
}

static gr_code read_text(const char *path, char **out, gr_status *st) {
    FILE *f = fopen(path, "rb");
    if (!f) return gr_fail(st, GR_ERR_BAD_ARG, "cannot open '%s': %s", path, strerror(errno));
    char *buf = gr_malloc(65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (!buf) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    buf[n] = '\0';
    *out = buf;
    return GR_OK;
}

gr_code gr_dir_read_text(const char *dir, const char *file, char **out, gr_status *st) {
    *out = NULL;
    char *path = join(dir, file, "");
    if (!path) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    struct stat sb;
    gr_code code = GR_OK;
    if (stat(path, &sb))
        code = gr_fail(st, GR_ERR_BAD_ARG, "cannot open '%s': %s", path, strerror(errno));
    else if (sb.st_size >= 65535)
        code = gr_fail(st, GR_ERR_BAD_ARG, "'%s' is too large (%lld bytes, at most 65534)",
                       path, (long long)sb.st_size);
    if (code == GR_OK) code = read_text(path, out, st);
    gr_free(path);
    return code;
}

gr_code gr_checkpoint_read(const char *dir, gr_train_step *s, char **json, gr_status *st) {
    *json = NULL;
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        return gr_fail(st, GR_ERR_BAD_ARG, "checkpoint '%s': no such directory", dir);
    const gr_plan *p = gr_train_step_plan(s);
    char stem[1024];
    gr_code code = GR_OK;
    for (int i = 0; code == GR_OK && i < p->n_buffers; i++) {
        const gr_buffer *b = &p->buffers[i];
        if (b->kind != GR_BUF_STATE || !b->name) continue;
        char *path = join(dir, file_stem(b->name, stem, sizeof stem), ".npy");
        gr_tensor t = {0};
        if (!path) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
        if (!exists(path))
            code = gr_fail(st, GR_ERR_BAD_ARG, "checkpoint '%s' has no '%s.npy' (state '%s' "
                           "of this model)", dir, stem, b->name);
        if (code == GR_OK) code = gr_npy_read(path, &t, st);
        if (code == GR_OK) code = check_tensor(&t, b->dtype, &b->shape, path, st);
        if (code == GR_OK && t.nbytes == b->nbytes && t.nbytes)
            memcpy(gr_session_state(gr_train_step_session(s), i), t.data, t.nbytes);
        gr_free(t.data);
        gr_free(path);
    }
    return code == GR_OK ? gr_checkpoint_json(dir, json, st) : code;
}

gr_code gr_checkpoint_json(const char *dir, char **json, gr_status *st) {
    *json = NULL;
    char *path = join(dir, "state.json", "");
    if (!path) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_code code = read_text(path, json, st);
    gr_free(path);
    return code;
}
