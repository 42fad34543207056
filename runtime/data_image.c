/* data_image.c: image-folder data sets. Each sub-folder of the root is a
 * class (sorted names are the class ids); every non-hidden file inside is
 * an image. Load checks each header with stbi_info; pixels are decoded
 * per batch (stb_image is reentrant: its failure reason is thread-local). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/data_internal.h"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_MALLOC gr_malloc
#define STBI_REALLOC gr_realloc
#define STBI_FREE gr_free
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wshift-negative-value"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* A growing list of names. */
typedef struct {
    char **names;
    int64_t n, cap;
} name_list;

static void names_free(name_list *l) {
    for (int64_t i = 0; i < l->n; i++) gr_free(l->names[i]);
    gr_free(l->names);
    memset(l, 0, sizeof *l);
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = gr_malloc(na + nb + 2);
    if (!s) return NULL;
    memcpy(s, a, na);
    s[na] = '/';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

/* The sorted non-hidden entries of dir that are directories (want_dirs)
 * or regular files. */
static gr_code list_dir(const char *dir, int want_dirs, name_list *out, gr_status *st) {
    DIR *dp = opendir(dir);
    if (!dp) return gr_fail(st, GR_ERR_IO, "cannot open '%s': %s", dir, strerror(errno));
    gr_code rc = GR_OK;
    struct dirent *e;
    while (rc == GR_OK && (e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char *full = join(dir, e->d_name);
        struct stat sb;
        int keep = full && !stat(full, &sb) && (want_dirs ? S_ISDIR(sb.st_mode)
                                                          : S_ISREG(sb.st_mode));
        gr_free(full);
        if (!full) rc = gr_fail(st, GR_ERR_NOMEM, "out of memory listing '%s'", dir);
        if (!keep || rc != GR_OK) continue;
        if (out->n == out->cap) {
            int64_t cap = out->cap ? out->cap * 2 : 16;
            char **grown = gr_realloc(out->names, sizeof *grown * (size_t)cap);
            if (!grown) {
                rc = gr_fail(st, GR_ERR_NOMEM, "out of memory listing '%s'", dir);
                break;
            }
            out->names = grown, out->cap = cap;
        }
        if (!(out->names[out->n] = data_strdup(e->d_name)))
            rc = gr_fail(st, GR_ERR_NOMEM, "out of memory listing '%s'", dir);
        else out->n++;
    }
    closedir(dp);
    if (rc == GR_OK && out->n > 1)
        qsort(out->names, (size_t)out->n, sizeof *out->names, compare_names);
    return rc;
}

/* Appends the images of class folder k (checked with stbi_info). */
static gr_code add_class(gr_dataset *d, int64_t k, int64_t *cap, double **labels,
                         gr_status *st) {
    char *dir = join(d->path, d->class_names[k]);
    if (!dir) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    name_list files = {0};
    gr_code rc = list_dir(dir, 0, &files, st);
    if (rc == GR_OK && !files.n)
        rc = gr_fail(st, GR_ERR_BAD_ARG, "'%s': empty class folder (no images)", dir);
    for (int64_t i = 0; rc == GR_OK && i < files.n; i++) {
        if (d->n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            data_image *grown = gr_realloc(d->images, sizeof *grown * (size_t)*cap);
            double *grown_labels = grown ? gr_realloc(*labels, sizeof **labels * (size_t)*cap)
                                         : NULL;
            if (grown) d->images = grown;
            if (grown_labels) *labels = grown_labels;
            if (!grown || !grown_labels) {
                rc = gr_fail(st, GR_ERR_NOMEM, "out of memory listing '%s'", dir);
                break;
            }
        }
        data_image *im = &d->images[d->n];
        if (!(im->path = join(dir, files.names[i]))) {
            rc = gr_fail(st, GR_ERR_NOMEM, "out of memory listing '%s'", dir);
            break;
        }
        (*labels)[d->n++] = (double)k;
        if (!stbi_info(im->path, &im->width, &im->height, &im->channels))
            rc = gr_fail(st, GR_ERR_BAD_ARG, "'%s': unreadable image: %s", im->path,
                         stbi_failure_reason() ? stbi_failure_reason() : "unknown error");
    }
    names_free(&files);
    gr_free(dir);
    return rc;
}

gr_code data_load_images(gr_dataset *d, gr_status *st) {
    name_list classes = {0};
    gr_code rc = list_dir(d->path, 1, &classes, st);
    if (rc != GR_OK || !classes.n) {
        names_free(&classes);
        if (rc != GR_OK) return rc;
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s': empty image folder (no class sub-folders)",
                       d->path);
    }
    d->class_names = classes.names;
    d->n_folders = classes.n;
    int64_t cap = 0;
    double *labels = NULL;
    for (int64_t k = 0; rc == GR_OK && k < d->n_folders; k++) rc = add_class(d, k, &cap,
                                                                             &labels, st);
    if (rc != GR_OK) {
        gr_free(labels);
        return rc;
    }
    return data_set_labels(d, labels, 1, d->path, st);
}

void data_free_images(gr_dataset *d) {
    for (int64_t i = 0; d->images && i < d->n; i++) gr_free(d->images[i].path);
    gr_free(d->images);
    for (int64_t k = 0; d->class_names && k < d->n_folders; k++) gr_free(d->class_names[k]);
    gr_free(d->class_names);
    d->images = NULL;
    d->class_names = NULL;
}

gr_code data_decode_image(const gr_dataset *d, int64_t i, int channels,
                          unsigned char **pixels, int *width, int *height, int *n_channels,
                          gr_status *st) {
    const data_image *im = &d->images[i];
    int w = 0, h = 0, c = 0;
    unsigned char *p = stbi_load(im->path, &w, &h, &c, channels);
    if (!p)
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s': unreadable image: %s", im->path,
                       stbi_failure_reason() ? stbi_failure_reason() : "unknown error");
    *pixels = p;
    *width = w, *height = h;
    *n_channels = channels ? channels : c;
    return GR_OK;
}

void data_free_pixels(unsigned char *pixels) { stbi_image_free(pixels); }
