/* npy.c: NumPy .npy files. A file is the magic "\x93NUMPY", a version, a
 * header length, a Python dict literal {'descr', 'fortran_order', 'shape'}
 * and the raw data. Every size is checked against the file before the data
 * is read; big-endian data is swapped to the host's little-endian order.
 * Writes go to a temporary file beside the target, then fsync and rename. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/gr_runtime.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "graft tensors are little-endian; graft assumes a little-endian host"
#endif

static const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* NumPy type codes (kind, size) for graft's dtypes. */
static const struct {
    gr_dtype dtype;
    char kind;
    int size;
} npy_types[] = {
    {GR_DTYPE_F16, 'f', 2}, {GR_DTYPE_F32, 'f', 4}, {GR_DTYPE_F64, 'f', 8},
    {GR_DTYPE_I8, 'i', 1},  {GR_DTYPE_I16, 'i', 2}, {GR_DTYPE_I32, 'i', 4},
    {GR_DTYPE_I64, 'i', 8}, {GR_DTYPE_U8, 'u', 1},  {GR_DTYPE_U16, 'u', 2},
    {GR_DTYPE_U32, 'u', 4}, {GR_DTYPE_U64, 'u', 8}, {GR_DTYPE_BOOL, 'b', 1},
};

int gr_npy_is_npy(const void *buf, size_t len) {
    return buf && len >= sizeof magic && !memcmp(buf, magic, sizeof magic);
}

/* ------------------------------------------------------------ header parse */

/* Parser state over the header dict text. */
typedef struct {
    const char *path;
    gr_status *st;
    const char *start, *p, *end;
    gr_dtype dtype;
    int item_size;
    int big_endian;
    gr_shape shape;
} header;

static gr_code malformed(header *h, const char *what) {
    return gr_fail(h->st, GR_ERR_BAD_MODEL,
                   "'%s': malformed .npy header: %s (at header byte %d)", h->path, what,
                   (int)(h->p - h->start));
}

static void skip_space(header *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' ||
                             *h->p == '\r'))
        h->p++;
}

/* Expects c after optional space. */
static gr_code expect(header *h, char c, const char *what) {
    skip_space(h);
    if (h->p >= h->end || *h->p != c) return malformed(h, what);
    h->p++;
    return GR_OK;
}

/* A quoted Python string without escapes, into buf. */
static gr_code parse_string(header *h, char *buf, size_t size) {
    skip_space(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return malformed(h, "expected a quoted string");
    char quote = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != quote) {
        if (n + 1 >= size) return malformed(h, "string too long");
        buf[n++] = *h->p++;
    }
    if (h->p >= h->end) return malformed(h, "unterminated string");
    h->p++;
    buf[n] = '\0';
    return GR_OK;
}

/* 'descr': "<f4" and friends; byte order '<' '>' '|' '=' (or none). */
static gr_code parse_descr(header *h) {
    skip_space(h);
    if (h->p < h->end && *h->p == '[')
        return gr_fail(h->st, GR_ERR_UNSUPPORTED,
                       "'%s': structured .npy dtypes are not supported", h->path);
    char text[32];
    GR_TRY(parse_string(h, text, sizeof text));
    const char *d = text;
    char order = '=';
    if (*d && strchr("<>|=", *d)) order = *d++;
    char kind = *d ? *d++ : '\0';
    char *end;
    long size = strtol(d, &end, 10);
    for (size_t i = 0; *d && !*end && i < sizeof npy_types / sizeof *npy_types; i++) {
        if (npy_types[i].kind != kind || npy_types[i].size != size) continue;
        h->dtype = npy_types[i].dtype;
        h->item_size = (int)size;
        h->big_endian = order == '>' && size > 1;
        return GR_OK;
    }
    return gr_fail(h->st, GR_ERR_UNSUPPORTED,
                   "'%s': .npy dtype '%s' is not supported (supported: f2 f4 f8 i1 i2 i4 "
                   "i8 u1 u2 u4 u8 b1)", h->path, text);
}

static gr_code parse_bool(header *h, int *out) {
    skip_space(h);
    size_t left = (size_t)(h->end - h->p);
    if (left >= 4 && !memcmp(h->p, "True", 4)) *out = 1, h->p += 4;
    else if (left >= 5 && !memcmp(h->p, "False", 5)) *out = 0, h->p += 5;
    else return malformed(h, "expected True or False");
    return GR_OK;
}

/* One non-negative dim ("3", or Python 2's "3L"). */
static gr_code parse_dim(header *h, int64_t *out) {
    skip_space(h);
    int64_t v = 0;
    const char *first = h->p;
    while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
        if (v > (INT64_MAX - 9) / 10) return malformed(h, "dimension too large");
        v = v * 10 + (*h->p++ - '0');
    }
    if (h->p == first) return malformed(h, "expected a non-negative dimension");
    if (h->p < h->end && *h->p == 'L') h->p++;
    *out = v;
    return GR_OK;
}

/* 'shape': "()", "(3,)", "(2, 3)". */
static gr_code parse_shape(header *h) {
    GR_TRY(expect(h, '(', "expected '(' to open the shape"));
    h->shape = gr_shape_scalar();
    for (;;) {
        skip_space(h);
        if (h->p < h->end && *h->p == ')') break;
        int64_t dim = 0;
        GR_TRY(parse_dim(h, &dim));
        if (h->shape.rank == GR_MAX_RANK)
            return gr_fail(h->st, GR_ERR_UNSUPPORTED,
                           "'%s': the array has more than %d dimensions, graft's maximum",
                           h->path, GR_MAX_RANK);
        h->shape.dims[h->shape.rank++] = dim;
        skip_space(h);
        if (h->p < h->end && *h->p == ',') h->p++;
        else if (h->p >= h->end || *h->p != ')')
            return malformed(h, "expected ',' or ')' in the shape");
    }
    h->p++;
    return GR_OK;
}

static gr_code parse_entry(header *h, unsigned *seen) {
    char key[32];
    GR_TRY(parse_string(h, key, sizeof key));
    GR_TRY(expect(h, ':', "expected ':' after a key"));
    if (!strcmp(key, "descr")) {
        *seen |= 1;
        return parse_descr(h);
    }
    if (!strcmp(key, "fortran_order")) {
        int fortran = 0;
        *seen |= 2;
        GR_TRY(parse_bool(h, &fortran));
        if (fortran)
            return gr_fail(h->st, GR_ERR_UNSUPPORTED,
                           "'%s': Fortran-ordered arrays are not supported", h->path);
        return GR_OK;
    }
    if (!strcmp(key, "shape")) {
        *seen |= 4;
        return parse_shape(h);
    }
    return gr_fail(h->st, GR_ERR_BAD_MODEL, "'%s': malformed .npy header: unknown key '%s'",
                   h->path, key);
}

/* {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
static gr_code parse_header(header *h) {
    unsigned seen = 0;
    GR_TRY(expect(h, '{', "expected '{'"));
    for (;;) {
        skip_space(h);
        if (h->p < h->end && *h->p == '}') break;
        GR_TRY(parse_entry(h, &seen));
        skip_space(h);
        if (h->p < h->end && *h->p == ',') h->p++;
        else if (h->p >= h->end || *h->p != '}')
            return malformed(h, "expected ',' or '}'");
    }
    h->p++;
    skip_space(h);
    if (h->p != h->end) return malformed(h, "text after the closing '}'");
    if (seen != 7)
        return gr_fail(h->st, GR_ERR_BAD_MODEL, "'%s': malformed .npy header: no '%s' key",
                       h->path, !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
    return GR_OK;
}

/* -------------------------------------------------------------------- read */

/* Magic, version and header length: *data_at is where the data starts. */
static gr_code read_prefix(FILE *f, const char *path, long long file_size,
                           size_t *header_len, long long *data_at, gr_status *st) {
    unsigned char pre[12];
    size_t n = fread(pre, 1, sizeof pre, f);
    if (n < sizeof magic || memcmp(pre, magic, sizeof magic))
        return gr_fail(st, GR_ERR_BAD_MODEL, "'%s' is not a .npy file (no \\x93NUMPY magic)",
                       path);
    int major = n > 6 ? pre[6] : -1, minor = n > 7 ? pre[7] : -1;
    int prefix = major == 1 ? 10 : 12;
    if ((size_t)prefix > n)
        return gr_fail(st, GR_ERR_BAD_MODEL,
                       "'%s': truncated .npy header: the file has only %zu bytes", path, n);
    if (major < 1 || major > 3)
        return gr_fail(st, GR_ERR_UNSUPPORTED,
                       "'%s': .npy format version %d.%d is not supported (1.0, 2.0, 3.0 are)",
                       path, major, minor);
    *header_len = major == 1 ? (size_t)pre[8] | (size_t)pre[9] << 8
                             : (size_t)pre[8] | (size_t)pre[9] << 8 |
                                   (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    *data_at = prefix + (long long)*header_len;
    if (*data_at > file_size)
        return gr_fail(st, GR_ERR_BAD_MODEL,
                       "'%s': truncated .npy header: it claims %zu bytes, the file has %lld "
                       "after the %d-byte prefix", path, *header_len, file_size - prefix,
                       prefix);
    return fseek(f, prefix, SEEK_SET) ? gr_fail(st, GR_ERR_IO, "cannot read '%s': %s", path,
                                                strerror(errno))
                                      : GR_OK;
}

static gr_code read_header(FILE *f, header *h, size_t len) {
    char *text = gr_malloc(len + 1);
    if (!text) return gr_fail(h->st, GR_ERR_NOMEM, "out of memory");
    gr_code rc = GR_OK;
    if (fread(text, 1, len, f) != len)
        rc = gr_fail(h->st, GR_ERR_IO, "cannot read the header of '%s'", h->path);
    if (rc == GR_OK) {
        h->start = h->p = text;
        h->end = text + len;
        rc = parse_header(h);
    }
    gr_free(text);
    return rc;
}

static void to_little_endian(void *data, int64_t numel, int size) {
    unsigned char *b = data;
    for (int64_t i = 0; i < numel; i++, b += size)
        for (int j = 0; j < size / 2; j++) {
            unsigned char t = b[j];
            b[j] = b[size - 1 - j];
            b[size - 1 - j] = t;
        }
}

/* The data after the header: size checked against the file first. */
static gr_code read_data(FILE *f, const header *h, long long available, gr_tensor *out) {
    int64_t numel = 1;
    for (int d = 0; d < h->shape.rank; d++) {
        if (h->shape.dims[d] && numel > INT64_MAX / h->item_size / h->shape.dims[d]) {
            numel = -1;
            break;
        }
        numel *= h->shape.dims[d];
    }
    char shape[256];
    gr_shape_str(&h->shape, shape, sizeof shape);
    if (numel < 0 || numel * h->item_size > available)
        return gr_fail(h->st, GR_ERR_BAD_MODEL,
                       "'%s' is truncated: the header describes %s%s, %s%lld bytes of data, "
                       "but the file holds %lld bytes after the header", h->path,
                       gr_dtype_name(h->dtype), shape, numel < 0 ? "more than " : "",
                       numel < 0 ? (long long)INT64_MAX : (long long)(numel * h->item_size),
                       available);
    size_t nbytes = (size_t)numel * (size_t)h->item_size;
    out->dtype = h->dtype;
    out->shape = h->shape;
    out->nbytes = nbytes;
    out->data = NULL;
    if (!nbytes) return GR_OK;
    if (!(out->data = gr_malloc(nbytes)))
        return gr_fail(h->st, GR_ERR_NOMEM, "out of memory for %zu bytes of '%s'", nbytes,
                       h->path);
    if (fread(out->data, 1, nbytes, f) != nbytes)
        return gr_fail(h->st, GR_ERR_IO, "cannot read the data of '%s'", h->path);
    if (h->big_endian) to_little_endian(out->data, numel, h->item_size);
    unsigned char *bytes = out->data;
    if (h->dtype == GR_DTYPE_BOOL) /* numpy reads any nonzero byte as True */
        for (size_t i = 0; i < nbytes; i++) bytes[i] = bytes[i] != 0;
    return GR_OK;
}

gr_code gr_npy_read(const char *path, gr_tensor *out, gr_status *st) {
    if (!out || !path) return gr_fail(st, GR_ERR_BAD_ARG, "gr_npy_read: NULL argument");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return gr_fail(st, GR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    gr_code rc = GR_OK;
    errno = 0;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode))
        rc = gr_fail(st, GR_ERR_IO, "cannot read '%s': %s", path,
                     errno ? strerror(errno) : "not a regular file");
    header h = {.path = path, .st = st};
    size_t header_len = 0;
    long long data_at = 0;
    if (rc == GR_OK)
        rc = read_prefix(f, path, (long long)sb.st_size, &header_len, &data_at, st);
    if (rc == GR_OK) rc = read_header(f, &h, header_len);
    if (rc == GR_OK) rc = read_data(f, &h, (long long)sb.st_size - data_at, out);
    fclose(f);
    if (rc != GR_OK) {
        gr_free(out->data);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ------------------------------------------------------------------- write */

/* "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with
 * spaces and a newline so the data starts at a multiple of 64. */
static gr_code format_header(const gr_tensor *t, char *buf, size_t size, size_t *len,
                             gr_status *st) {
    const char *descr = NULL;
    char code[8];
    for (size_t i = 0; i < sizeof npy_types / sizeof *npy_types; i++)
        if (npy_types[i].dtype == t->dtype) {
            snprintf(code, sizeof code, "%c%c%d", npy_types[i].size == 1 ? '|' : '<',
                     npy_types[i].kind, npy_types[i].size);
            descr = code;
        }
    if (!descr)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s tensors have no .npy form",
                       gr_dtype_name(t->dtype));
    size_t n = (size_t)snprintf(buf, size, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
    for (int d = 0; d < t->shape.rank; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", d ? ", " : "",
                              (long long)t->shape.dims[d]);
    n += (size_t)snprintf(buf + n, size - n, "%s), }", t->shape.rank == 1 ? "," : "");
    while ((10 + n + 1) % 64) buf[n++] = ' ';
    buf[n++] = '\n';
    *len = n;
    return GR_OK;
}

static gr_code check_tensor(const gr_tensor *t, gr_status *st) {
    if (t->shape.rank < 0 || t->shape.rank > GR_MAX_RANK || !gr_shape_is_static(&t->shape))
        return gr_fail(st, GR_ERR_BAD_ARG, "the tensor has no static shape");
    int64_t numel = gr_shape_numel(&t->shape);
    size_t want = (size_t)numel * gr_dtype_size(t->dtype);
    if (t->nbytes != want || (want && !t->data))
        return gr_fail(st, GR_ERR_BAD_ARG, "the tensor holds %zu bytes, its shape needs %zu",
                       t->nbytes, want);
    return GR_OK;
}

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Creates a fresh temporary file beside path; its name goes to tmp. */
static int open_temp(const char *path, char *tmp, size_t size) {
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, size, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* Makes the rename durable; best effort (some file systems refuse). */
static void sync_dir_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof dir) return;
    if (slash && n == 0) n = 1; /* "/x.npy" */
    memcpy(dir, slash ? path : ".", slash ? n : 1);
    dir[slash ? n : 1] = '\0';
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

gr_code gr_npy_write(const char *path, const gr_tensor *t, gr_status *st) {
    if (!path || !t) return gr_fail(st, GR_ERR_BAD_ARG, "gr_npy_write: NULL argument");
    char head[512], tmp[4200];
    size_t head_len = 0;
    if (check_tensor(t, st) != GR_OK ||
        format_header(t, head, sizeof head, &head_len, st) != GR_OK)
        return gr_status_prefix(st, "cannot write '%s': ", path);
    if (strlen(path) > 4096)
        return gr_fail(st, GR_ERR_IO, "cannot write '%s': path too long", path);
    unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                (unsigned char)(head_len & 0xff), (unsigned char)(head_len >> 8)};
    int fd = open_temp(path, tmp, sizeof tmp);
    if (fd < 0) return gr_fail(st, GR_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    int failed = write_all(fd, prefix, sizeof prefix) || write_all(fd, head, head_len) ||
                 write_all(fd, t->data, t->nbytes) || fsync(fd);
    int saved = errno;
    if (close(fd) && !failed) failed = 1, saved = errno;
    if (!failed && rename(tmp, path)) failed = 1, saved = errno;
    if (failed) {
        unlink(tmp);
        return gr_fail(st, GR_ERR_IO, "cannot write '%s': %s", path, strerror(saved));
    }
    sync_dir_of(path);
    return GR_OK;
}
