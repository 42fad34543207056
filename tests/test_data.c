/* test_data.c: training data sets (runtime/data*.c). Fixture files (IDX
 * plain and gzip, NPY, CSV, PNG image folders) are written at run time
 * into a mkdtemp dir; preprocessing is checked against hand-computed
 * values (PyTorch's bilinear with align_corners=False, centred padding,
 * normalisation), and every error message names the file and the problem.
 * The real Fashion-MNIST test set is read when it is installed. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <omp.h>
#include <zlib.h>
#include <cmocka.h>

#include "runtime/gr_runtime.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define FASHION "/usr/share/datasets/fashion-mnist/"

/* -------------------------------------------------------------- fixtures */

static char tmpdir[64];

static int make_tmpdir(void **state) {
    (void)state;
    strcpy(tmpdir, "/tmp/graft_data_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int remove_tmpdir(void **state) {
    (void)state;
    return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmpdir/name; four rotating buffers so a call may use several. */
static const char *tmp_path(const char *name) {
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_gzip(const char *path, const void *data, size_t len) {
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

static void write_text(const char *path, const char *text) {
    write_bytes(path, text, strlen(text));
}

/* IDX u8: magic 00 00 08 rank, big-endian dims, data. */
static size_t idx_u8(unsigned char *buf, int rank, const uint32_t *dims,
                     const unsigned char *data) {
    size_t n = 0, numel = 1;
    buf[n++] = 0, buf[n++] = 0, buf[n++] = 0x08, buf[n++] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        buf[n++] = (unsigned char)(dims[i] >> 24), buf[n++] = (unsigned char)(dims[i] >> 16);
        buf[n++] = (unsigned char)(dims[i] >> 8), buf[n++] = (unsigned char)dims[i];
        numel *= dims[i];
    }
    memcpy(buf + n, data, numel);
    return n + numel;
}

static void write_npy(const char *path, gr_dtype dtype, int rank, const int64_t *dims,
                      const void *data) {
    gr_tensor t = {.dtype = dtype, .shape = gr_shape_make(rank, dims), .data = (void *)data};
    t.nbytes = (size_t)gr_shape_numel(&t.shape) * gr_dtype_size(dtype);
    gr_status st = {0};
    assert_int_equal(gr_npy_write(path, &t, &st), GR_OK);
}

static void make_dir(const char *path) { assert_int_equal(mkdir(path, 0755), 0); }

static void write_png(const char *path, int w, int h, int c, const unsigned char *pixels) {
    assert_true(stbi_write_png(path, w, h, c, pixels, w * c) != 0);
}

static gr_dataset *load_ok(const char *path, const gr_data_opts *opts) {
    gr_dataset *d = NULL;
    gr_status st = {0};
    gr_code rc = gr_dataset_load(path, opts, &d, &st);
    if (rc != GR_OK) fail_msg("%s", st.msg);
    return d;
}

/* Loads path expecting failure; the message must hold both substrings. */
static void expect_load_error(const char *path, const gr_data_opts *opts, const char *a,
                              const char *b) {
    gr_dataset *d = NULL;
    gr_status st = {0};
    assert_int_not_equal(gr_dataset_load(path, opts, &d, &st), GR_OK);
    assert_null(d);
    if (!strstr(st.msg, a) || (b && !strstr(st.msg, b)))
        fail_msg("message '%s' lacks '%s' / '%s'", st.msg, a, b ? b : "");
}

static gr_preprocess pp_for(int rank, const int64_t *dims) {
    gr_preprocess pp = {0};
    pp.input = gr_shape_make(rank, dims);
    return pp;
}

static void batch_ok(const gr_dataset *d, const int64_t *idx, int64_t n,
                     const gr_preprocess *pp, gr_dtype dtype, void *out, gr_dtype ldtype,
                     void *labels) {
    gr_status st = {0};
    if (gr_dataset_batch(d, idx, n, pp, dtype, out, ldtype, labels, &st) != GR_OK)
        fail_msg("%s", st.msg);
}

static void assert_floats(const float *got, const float *want, int n) {
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("element %d: got %.9g, want %.9g", i, got[i], want[i]);
}

/* ---------------------------------------------------------------- formats */

/* 3 grey 2x2 images and their labels. */
static const unsigned char idx_pixels[12] = {0, 51, 102, 255, 10, 20, 30, 40, 1, 2, 3, 4};
static const unsigned char idx_labels[3] = {2, 0, 1};

static void write_idx_pair(const char *images, const char *labels, int gzip) {
    unsigned char buf[256];
    size_t n = idx_u8(buf, 3, (uint32_t[]){3, 2, 2}, idx_pixels);
    (gzip ? write_gzip : write_bytes)(images, buf, n);
    n = idx_u8(buf, 1, (uint32_t[]){3}, idx_labels);
    (gzip ? write_gzip : write_bytes)(labels, buf, n);
}

static void check_idx_pair(const char *images, const char *labels) {
    gr_dataset *d = load_ok(images, NULL);
    gr_status st = {0};
    assert_int_equal(gr_dataset_format(d), GR_DATA_FORMAT_IDX);
    assert_int_equal(gr_dataset_count(d), 3);
    assert_int_equal(gr_dataset_dtype(d), GR_DTYPE_U8);
    assert_false(gr_dataset_has_labels(d));
    assert_int_equal(gr_dataset_set_labels(d, labels, &st), GR_OK);
    assert_true(gr_dataset_has_labels(d));
    assert_int_equal(gr_dataset_n_classes(d), 3);
    /* [2,2] into flat [4]: converted as is, scaled by 1/255. */
    gr_preprocess pp = pp_for(1, (int64_t[]){4});
    float x[8];
    int64_t y[2];
    batch_ok(d, (int64_t[]){0, 2}, 2, &pp, GR_DTYPE_F32, x, GR_DTYPE_I64, y);
    for (int i = 0; i < 4; i++) {
        assert_true(x[i] == (float)(idx_pixels[i] / 255.0));
        assert_true(x[4 + i] == (float)(idx_pixels[8 + i] / 255.0));
    }
    assert_true(x[3] == 1.0f);
    assert_int_equal(y[0], 2);
    assert_int_equal(y[1], 1);
    gr_dataset_free(d);
}

static void test_idx_plain_and_gzip_read_the_same(void **state) {
    (void)state;
    write_idx_pair(tmp_path("img.idx"), tmp_path("lab.idx"), 0);
    write_idx_pair(tmp_path("img.idx.gz"), tmp_path("lab.idx.gz"), 1);
    check_idx_pair(tmp_path("img.idx"), tmp_path("lab.idx"));
    check_idx_pair(tmp_path("img.idx.gz"), tmp_path("lab.idx.gz"));
    /* Content decides, not the name: gzip data under a plain name. */
    write_idx_pair(tmp_path("images.bin"), tmp_path("labels.bin"), 1);
    check_idx_pair(tmp_path("images.bin"), tmp_path("labels.bin"));
}

static void test_idx_float_big_endian(void **state) {
    (void)state;
    /* 0x0D f32 [2,2] big-endian: 1.5, -2, 0.25, 3 */
    unsigned char buf[64] = {0, 0, 0x0D, 2, 0, 0, 0, 2, 0, 0, 0, 2};
    float v[4] = {1.5f, -2.0f, 0.25f, 3.0f};
    for (int i = 0; i < 4; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++) buf[12 + 4 * i + k] = (unsigned char)(u >> (24 - 8 * k));
    }
    write_bytes(tmp_path("f.idx"), buf, 28);
    gr_dataset *d = load_ok(tmp_path("f.idx"), NULL);
    assert_int_equal(gr_dataset_count(d), 2);
    gr_preprocess pp = pp_for(1, (int64_t[]){2});
    float x[4];
    batch_ok(d, (int64_t[]){1, 0}, 2, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    assert_floats(x, (float[]){0.25f, 3.0f, 1.5f, -2.0f}, 4);
    gr_dataset_free(d);
}

static void test_npy_u8_f32_and_token_ids(void **state) {
    (void)state;
    unsigned char u8[8] = {0, 255, 51, 102, 1, 2, 3, 4};
    write_npy(tmp_path("u8.npy"), GR_DTYPE_U8, 3, (int64_t[]){2, 2, 2}, u8);
    gr_dataset *d = load_ok(tmp_path("u8.npy"), NULL);
    assert_int_equal(gr_dataset_format(d), GR_DATA_FORMAT_NPY);
    gr_preprocess pp = pp_for(3, (int64_t[]){1, 2, 2}); /* [2,2] into [1,2,2] */
    float x[4];
    batch_ok(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    assert_floats(x, (float[]){0.0f, 1.0f, (float)(51 / 255.0), (float)(102 / 255.0)}, 4);
    gr_dataset_free(d);

    float f[6] = {0.5f, -1.0f, 2.0f, 4.0f, 8.0f, 16.0f};
    write_npy(tmp_path("f32.npy"), GR_DTYPE_F32, 2, (int64_t[]){3, 2}, f);
    d = load_ok(tmp_path("f32.npy"), NULL);
    pp = pp_for(1, (int64_t[]){2});
    pp.scale = 0.5; /* explicit scale; the default for f32 would be 1 */
    batch_ok(d, (int64_t[]){2, 0}, 2, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    assert_floats(x, (float[]){4.0f, 8.0f, 0.25f, -0.5f}, 4);
    gr_dataset_free(d);

    /* Token ids: i64 data into an i64 input, copied as integers. */
    int64_t ids[6] = {101, 7592, 102, 5, 70000, 0};
    write_npy(tmp_path("i64.npy"), GR_DTYPE_I64, 2, (int64_t[]){2, 3}, ids);
    d = load_ok(tmp_path("i64.npy"), NULL);
    pp = pp_for(1, (int64_t[]){3});
    int64_t out[6];
    batch_ok(d, (int64_t[]){1, 0}, 2, &pp, GR_DTYPE_I64, out, GR_DTYPE_UNDEFINED, NULL);
    assert_memory_equal(out, ((int64_t[]){5, 70000, 0, 101, 7592, 102}), sizeof out);
    /* f32 labels from an NPY of floats: targets. */
    float targets[2] = {0.5f, -3.25f};
    write_npy(tmp_path("targets.npy"), GR_DTYPE_F32, 1, (int64_t[]){2}, targets);
    gr_status st = {0};
    assert_int_equal(gr_dataset_set_labels(d, tmp_path("targets.npy"), &st), GR_OK);
    assert_int_equal(gr_dataset_n_classes(d), 0); /* fractions are not class ids */
    float y[2];
    batch_ok(d, (int64_t[]){1, 0}, 2, &pp, GR_DTYPE_I64, out, GR_DTYPE_F32, y);
    assert_floats(y, (float[]){-3.25f, 0.5f}, 2);
    assert_int_equal(gr_dataset_batch(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_I64, out,
                                      GR_DTYPE_I64, out, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "targets.npy"));
    assert_non_null(strstr(st.msg, "not a class id"));
    gr_dataset_free(d);
}

static void test_csv_with_header_names_the_label(void **state) {
    (void)state;
    write_text(tmp_path("h.csv"), "x1, x2,label,x3\n1,2,0,3\n\n4.5,-5,2,6e1\r\n");
    gr_dataset *d = load_ok(tmp_path("h.csv"), NULL);
    assert_int_equal(gr_dataset_format(d), GR_DATA_FORMAT_CSV);
    assert_int_equal(gr_dataset_count(d), 2);
    assert_int_equal(gr_dataset_n_classes(d), 3);
    gr_preprocess pp = pp_for(1, (int64_t[]){3});
    float x[6];
    int32_t y[2];
    batch_ok(d, (int64_t[]){0, 1}, 2, &pp, GR_DTYPE_F32, x, GR_DTYPE_I32, y);
    assert_floats(x, (float[]){1, 2, 3, 4.5f, -5, 60}, 6);
    assert_int_equal(y[0], 0);
    assert_int_equal(y[1], 2);
    gr_dataset_free(d);

    /* By name and by index. */
    d = load_ok(tmp_path("h.csv"), &(gr_data_opts){.label_column = "x3"});
    batch_ok(d, (int64_t[]){1}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_I32, y);
    assert_floats(x, (float[]){4.5f, -5, 2}, 3);
    assert_int_equal(y[0], 60);
    gr_dataset_free(d);
    /* A UTF-8 byte-order mark does not hide the first column's name. */
    write_text(tmp_path("bom.csv"), "\xEF\xBB\xBFlabel,a\n1,2\n0,3\n");
    d = load_ok(tmp_path("bom.csv"), NULL);
    assert_int_equal(gr_dataset_n_classes(d), 2);
    gr_dataset_free(d);
    d = load_ok(tmp_path("h.csv"), &(gr_data_opts){.label_column = "0"});
    batch_ok(d, (int64_t[]){1}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_F32, x + 3);
    assert_floats(x, (float[]){-5, 2, 60, 4.5f}, 4);
    gr_dataset_free(d);
}

static void test_csv_without_header_uses_last_column(void **state) {
    (void)state;
    write_text(tmp_path("n.csv"), "0.5,1,1\n2,3,0\n4,5,1");
    gr_dataset *d = load_ok(tmp_path("n.csv"), NULL);
    assert_int_equal(gr_dataset_count(d), 3);
    assert_int_equal(gr_dataset_n_classes(d), 2);
    gr_preprocess pp = pp_for(1, (int64_t[]){2});
    float x[2];
    int64_t y;
    batch_ok(d, (int64_t[]){2}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_I64, &y);
    assert_floats(x, (float[]){4, 5}, 2);
    assert_int_equal(y, 1);
    gr_dataset_free(d);
    /* No label column: three features; labels from a one-column CSV. */
    d = load_ok(tmp_path("n.csv"), &(gr_data_opts){.no_labels = 1});
    assert_false(gr_dataset_has_labels(d));
    write_text(tmp_path("y.csv"), "target\n7\n8\n9\n");
    gr_status st = {0};
    assert_int_equal(gr_dataset_set_labels(d, tmp_path("y.csv"), &st), GR_OK);
    pp = pp_for(1, (int64_t[]){3});
    float x3[3];
    batch_ok(d, (int64_t[]){1}, 1, &pp, GR_DTYPE_F32, x3, GR_DTYPE_I64, &y);
    assert_floats(x3, (float[]){2, 3, 0}, 3);
    assert_int_equal(y, 8);
    assert_int_equal(gr_dataset_n_classes(d), 10);
    gr_dataset_free(d);
}

/* Two classes: cat (RGB 2x2, grey 3x3), dog (RGBA 2x2). */
static const unsigned char rgb[12] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
static const unsigned char grey[9] = {0, 10, 20, 30, 40, 50, 60, 70, 80};
static const unsigned char rgba[16] = {255, 0, 0, 9, 0, 255, 0, 9, 0, 0, 255, 9, 1, 2, 3, 9};

static void write_image_folder(const char *root) {
    char p[600];
    make_dir(root);
    snprintf(p, sizeof p, "%s/cat", root), make_dir(p);
    snprintf(p, sizeof p, "%s/dog", root), make_dir(p);
    snprintf(p, sizeof p, "%s/readme.txt", root), write_text(p, "ignored: not a folder");
    snprintf(p, sizeof p, "%s/cat/a.png", root), write_png(p, 2, 2, 3, rgb);
    snprintf(p, sizeof p, "%s/cat/b.png", root), write_png(p, 3, 3, 1, grey);
    snprintf(p, sizeof p, "%s/dog/c.png", root), write_png(p, 2, 2, 4, rgba);
}

static void test_image_folder_classes_and_channels(void **state) {
    (void)state;
    write_image_folder(tmp_path("imgs"));
    gr_dataset *d = load_ok(tmp_path("imgs"), NULL);
    assert_int_equal(gr_dataset_format(d), GR_DATA_FORMAT_IMAGES);
    assert_int_equal(gr_dataset_count(d), 3);
    assert_int_equal(gr_dataset_n_classes(d), 2);
    assert_string_equal(gr_dataset_class_name(d, 0), "cat");
    assert_string_equal(gr_dataset_class_name(d, 1), "dog");
    gr_shape s = gr_dataset_sample_shape(d, 1);
    assert_int_equal(s.rank, 3);
    assert_int_equal(s.dims[0], 3);
    assert_int_equal(s.dims[2], 1);

    /* NCHW [3,2,2], scale 1 to see raw values. */
    gr_preprocess pp = pp_for(3, (int64_t[]){3, 2, 2});
    pp.scale = 1;
    float x[3 * 12];
    int64_t y[3];
    batch_ok(d, (int64_t[]){0, 2, 1}, 3, &pp, GR_DTYPE_F32, x, GR_DTYPE_I64, y);
    assert_int_equal(y[0], 0);
    assert_int_equal(y[1], 1);
    assert_int_equal(y[2], 0);
    /* RGB HWC -> CHW. */
    assert_floats(x, (float[]){10, 40, 70, 100, 20, 50, 80, 110, 30, 60, 90, 120}, 12);
    /* RGBA -> RGB: alpha dropped. */
    assert_floats(x + 12, (float[]){255, 0, 0, 1, 0, 255, 0, 2, 0, 0, 255, 3}, 12);
    /* Grey 3x3 -> RGB copies, resized to 2x2: src = 1.5 * (d + .5) - .5
     * = 0.25, 1.75 per axis: grey(0.25, 0.25) = 10 * 0.25 + 30 * 0.25 = 10,
     * (0.25, 1.75) -> 25, (1.75, 0.25) -> 55, (1.75, 1.75) -> 70. */
    for (int c = 0; c < 3; c++) assert_floats(x + 24 + 4 * c, (float[]){10, 25, 55, 70}, 4);

    /* NHWC [2,2,3] keeps HWC; default scale 1/255 for u8. */
    pp = pp_for(3, (int64_t[]){2, 2, 3});
    pp.layout = GR_DATA_LAYOUT_NHWC;
    batch_ok(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    for (int i = 0; i < 12; i++) assert_true(x[i] == (float)(rgb[i] / 255.0));
    gr_dataset_free(d);
}

/* --------------------------------------------------------- preprocessing */

static gr_dataset *f32_images(const char *name, int n, int h, int w, const float *v) {
    write_npy(tmp_path(name), GR_DTYPE_F32, 4, (int64_t[]){n, 1, h, w}, v);
    return load_ok(tmp_path(name), NULL);
}

static void test_bilinear_matches_pytorch_half_pixel(void **state) {
    (void)state;
    /* F.interpolate([[0,4],[8,12]], size=(4,4), mode='bilinear',
     * align_corners=False): PyTorch's documented half-pixel result. */
    gr_dataset *d = f32_images("up.npy", 1, 2, 2, (float[]){0, 4, 8, 12});
    gr_preprocess pp = pp_for(3, (int64_t[]){1, 4, 4});
    float x[16];
    batch_ok(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    assert_floats(x, (float[]){0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12}, 16);
    gr_dataset_free(d);

    /* 4x4 arange -> 2x2: each output averages a 2x2 block's centre. */
    float a16[16];
    for (int i = 0; i < 16; i++) a16[i] = (float)i;
    d = f32_images("down.npy", 1, 4, 4, a16);
    pp = pp_for(3, (int64_t[]){1, 2, 2});
    batch_ok(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    assert_floats(x, (float[]){2.5f, 4.5f, 10.5f, 12.5f}, 4);
    gr_dataset_free(d);

    /* 3x3 arange -> 2x3 (rows only): src rows 0.25 and 1.75. */
    float a9[9];
    for (int i = 0; i < 9; i++) a9[i] = (float)i;
    d = f32_images("rows.npy", 1, 3, 3, a9);
    pp = pp_for(3, (int64_t[]){1, 2, 3});
    batch_ok(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    assert_floats(x, (float[]){0.75f, 1.75f, 2.75f, 5.25f, 6.25f, 7.25f}, 6);
    gr_dataset_free(d);
}

static void test_pad_centres_and_crops(void **state) {
    (void)state;
    gr_dataset *d = f32_images("pad.npy", 1, 2, 2, (float[]){1, 2, 3, 4});
    gr_preprocess pp = pp_for(3, (int64_t[]){1, 4, 5});
    pp.fit = GR_DATA_FIT_PAD;
    float x[20];
    batch_ok(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    /* 2 extra rows: 1 above, 1 below; 3 extra columns: 1 left, 2 right. */
    assert_floats(x, (float[]){0, 0, 0, 0, 0,
                               0, 1, 2, 0, 0,
                               0, 3, 4, 0, 0,
                               0, 0, 0, 0, 0}, 20);
    gr_dataset_free(d);
    float a9[9];
    for (int i = 0; i < 9; i++) a9[i] = (float)i;
    d = f32_images("crop.npy", 1, 3, 3, a9);
    pp = pp_for(3, (int64_t[]){1, 2, 1});
    pp.fit = GR_DATA_FIT_PAD;
    batch_ok(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    /* The odd row and column are cropped from the top and left. */
    assert_floats(x, (float[]){4, 7}, 2);
    gr_dataset_free(d);
}

static void test_grey_to_rgb_with_normalisation(void **state) {
    (void)state;
    /* MNIST-like [N,2,2] u8 into [3,2,2]: scale 1/255, then per channel. */
    unsigned char px[4] = {0, 255, 51, 102};
    write_npy(tmp_path("grey.npy"), GR_DTYPE_U8, 3, (int64_t[]){1, 2, 2}, px);
    gr_dataset *d = load_ok(tmp_path("grey.npy"), NULL);
    gr_preprocess pp = pp_for(3, (int64_t[]){3, 2, 2});
    pp.n_norm = 3;
    float mean[3] = {0.5f, 0.25f, 0.0f}, std[3] = {0.5f, 0.25f, 2.0f};
    memcpy(pp.mean, mean, sizeof mean);
    memcpy(pp.std, std, sizeof std);
    float x[12];
    batch_ok(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++) {
            float v = (float)(px[i] / 255.0);
            assert_true(x[4 * c + i] == (v - mean[c]) / std[c]);
        }
    assert_true(x[0] == -1.0f && x[1] == 1.0f && x[5] == 3.0f && x[9] == 0.5f);
    /* One mean/std for every channel; NHWC layout. */
    pp.n_norm = 1;
    pp.layout = GR_DATA_LAYOUT_NHWC;
    pp.input = gr_shape_make(3, (int64_t[]){2, 2, 3});
    batch_ok(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x, GR_DTYPE_UNDEFINED, NULL);
    assert_floats(x, (float[]){-1, -1, -1, 1, 1, 1}, 6);
    assert_true(x[3] == 1.0f && x[11] == ((float)(102 / 255.0) - 0.5f) / 0.5f);
    /* Two values for three channels is an error. */
    pp.n_norm = 2;
    gr_status st = {0};
    assert_int_equal(gr_dataset_batch(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x,
                                      GR_DTYPE_UNDEFINED, NULL, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "give 1 or 3"));
    gr_dataset_free(d);
}

static void test_mnist_shape_into_3x32x32_is_deterministic_across_threads(void **state) {
    (void)state;
    enum { N = 7 };
    unsigned char px[N * 28 * 28];
    for (int i = 0; i < N * 28 * 28; i++) px[i] = (unsigned char)(i * 37 % 251);
    write_npy(tmp_path("m.npy"), GR_DTYPE_U8, 3, (int64_t[]){N, 28, 28}, px);
    gr_dataset *d = load_ok(tmp_path("m.npy"), NULL);
    gr_preprocess pp = pp_for(3, (int64_t[]){3, 32, 32});
    pp.n_norm = 1, pp.mean[0] = 0.5f, pp.std[0] = 0.25f;
    int64_t idx[N] = {6, 0, 5, 1, 4, 2, 3};
    static float one[N * 3 * 32 * 32], three[N * 3 * 32 * 32];
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    batch_ok(d, idx, N, &pp, GR_DTYPE_F32, one, GR_DTYPE_UNDEFINED, NULL);
    omp_set_num_threads(3);
    batch_ok(d, idx, N, &pp, GR_DTYPE_F32, three, GR_DTYPE_UNDEFINED, NULL);
    omp_set_num_threads(saved);
    assert_memory_equal(one, three, sizeof one);
    /* Channels are copies. */
    assert_memory_equal(one, one + 1024, 1024 * sizeof(float));
    gr_dataset_free(d);
}

/* ---------------------------------------------------------- split, epochs */

static void test_shuffle_is_seeded(void **state) {
    (void)state;
    enum { N = 50 };
    int64_t pool[N], a[N], b[N], c[N], e1[N];
    for (int i = 0; i < N; i++) pool[i] = 100 + i;
    gr_data_iter it, it2, it3;
    gr_data_iter_init(&it, 42, 8, 1, 0);
    gr_data_iter_init(&it2, 42, 8, 1, 0);
    gr_data_iter_init(&it3, 43, 8, 1, 0);
    gr_data_epoch_order(&it, pool, N, a);
    gr_data_epoch_order(&it2, pool, N, b);
    gr_data_epoch_order(&it3, pool, N, c);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    assert_memory_not_equal(a, pool, sizeof a);
    gr_data_iter_next_epoch(&it);
    gr_data_epoch_order(&it, pool, N, e1);
    assert_memory_not_equal(a, e1, sizeof a);
    /* A permutation of the pool. */
    int seen[N] = {0};
    for (int i = 0; i < N; i++) seen[e1[i] - 100]++;
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    /* --no-shuffle: the pool's order. */
    gr_data_iter_init(&it, 42, 8, 0, 0);
    gr_data_epoch_order(&it, pool, N, a);
    assert_memory_equal(a, pool, sizeof a);
}

static void test_val_split_is_disjoint_and_complete(void **state) {
    (void)state;
    int64_t *train, *val, *train2, *val2, n_train, n_val, n_train2, n_val2;
    gr_status st = {0};
    assert_int_equal(gr_data_split(103, 0.2, 7, &train, &n_train, &val, &n_val, &st), GR_OK);
    assert_int_equal(n_val, 21);
    assert_int_equal(n_train, 82);
    int seen[103] = {0};
    for (int64_t i = 0; i < n_train; i++) seen[train[i]]++;
    for (int64_t i = 0; i < n_val; i++) seen[val[i]] += 2;
    int n_one = 0, n_two = 0;
    for (int i = 0; i < 103; i++) {
        assert_true(seen[i] == 1 || seen[i] == 2);
        n_one += seen[i] == 1, n_two += seen[i] == 2;
    }
    assert_int_equal(n_one, 82);
    assert_int_equal(n_two, 21);
    for (int64_t i = 1; i < n_train; i++) assert_true(train[i - 1] < train[i]);
    /* Same seed, same split; another seed, another. */
    assert_int_equal(gr_data_split(103, 0.2, 7, &train2, &n_train2, &val2, &n_val2, &st), GR_OK);
    assert_memory_equal(val, val2, sizeof *val * (size_t)n_val);
    gr_free(train2), gr_free(val2);
    assert_int_equal(gr_data_split(103, 0.2, 8, &train2, &n_train2, &val2, &n_val2, &st), GR_OK);
    assert_memory_not_equal(val, val2, sizeof *val * (size_t)n_val);
    gr_free(train2), gr_free(val2);
    gr_free(train), gr_free(val);
    /* Degenerate fractions. */
    assert_int_equal(gr_data_split(10, 0, 7, &train, &n_train, &val, &n_val, &st), GR_OK);
    assert_int_equal(n_train, 10);
    assert_int_equal(n_val, 0);
    assert_null(val);
    gr_free(train);
    assert_int_equal(gr_data_split(1, 0.5, 7, &train, &n_train, &val, &n_val, &st),
                     GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "no training samples"));
    assert_int_equal(gr_data_split(10, 1.0, 7, &train, &n_train, &val, &n_val, &st),
                     GR_ERR_BAD_ARG);
}

static void test_partial_last_batch_and_resume(void **state) {
    (void)state;
    gr_data_iter it;
    int64_t first = -1;
    gr_data_iter_init(&it, 1, 4, 1, 0);
    assert_int_equal(gr_data_iter_batches(&it, 10), 3);
    assert_int_equal(gr_data_iter_next(&it, 10, &first), 4);
    assert_int_equal(first, 0);
    gr_data_iter saved = it; /* a checkpoint mid-epoch */
    assert_int_equal(gr_data_iter_next(&it, 10, &first), 4);
    assert_int_equal(gr_data_iter_next(&it, 10, &first), 2);
    assert_int_equal(first, 8);
    assert_int_equal(gr_data_iter_next(&it, 10, &first), 0);
    /* Resuming from the copy continues at the same place. */
    assert_int_equal(gr_data_iter_next(&saved, 10, &first), 4);
    assert_int_equal(first, 4);
    /* drop_last: the final 2 are skipped. */
    gr_data_iter_init(&it, 1, 4, 1, 1);
    assert_int_equal(gr_data_iter_batches(&it, 10), 2);
    assert_int_equal(gr_data_iter_next(&it, 10, &first), 4);
    assert_int_equal(gr_data_iter_next(&it, 10, &first), 4);
    assert_int_equal(gr_data_iter_next(&it, 10, &first), 0);
    gr_data_iter_next_epoch(&it);
    assert_int_equal(it.epoch, 1);
    assert_int_equal(gr_data_iter_next(&it, 10, &first), 4);
    assert_int_equal(first, 0);
}

/* ----------------------------------------------------------------- errors */

static void test_error_labels_out_of_range_and_counts(void **state) {
    (void)state;
    write_idx_pair(tmp_path("e_img.idx"), tmp_path("e_lab.idx"), 0);
    gr_dataset *d = load_ok(tmp_path("e_img.idx"), NULL);
    gr_status st = {0};
    assert_int_equal(gr_dataset_set_labels(d, tmp_path("e_lab.idx"), &st), GR_OK);
    assert_int_equal(gr_dataset_check_labels(d, 3, &st), GR_OK);
    assert_int_equal(gr_dataset_check_labels(d, 2, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "e_lab.idx"));
    assert_non_null(strstr(st.msg, "label 2 of sample 0 is out of range"));
    /* 2 labels for 3 samples. */
    unsigned char buf[64];
    write_bytes(tmp_path("two.idx"), buf, idx_u8(buf, 1, (uint32_t[]){2},
                                                  (unsigned char[]){0, 1}));
    assert_int_equal(gr_dataset_set_labels(d, tmp_path("two.idx"), &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "two.idx' has 2 labels but the data"));
    assert_non_null(strstr(st.msg, "e_img.idx') has 3 samples"));
    /* The old labels are kept. */
    assert_int_equal(gr_dataset_n_classes(d), 3);
    gr_dataset_free(d);
}

static void test_error_nan_names_the_sample(void **state) {
    (void)state;
    float f[6] = {1, 2, 3, NAN, 5, 6};
    write_npy(tmp_path("nan.npy"), GR_DTYPE_F32, 2, (int64_t[]){3, 2}, f);
    expect_load_error(tmp_path("nan.npy"), NULL, "nan.npy': sample 1 holds NaN", NULL);
    f[3] = 4, f[4] = INFINITY;
    write_npy(tmp_path("inf.npy"), GR_DTYPE_F32, 2, (int64_t[]){3, 2}, f);
    expect_load_error(tmp_path("inf.npy"), NULL, "inf.npy': sample 2 holds Inf", NULL);
    write_text(tmp_path("nan.csv"), "1,2\n3,nan\n");
    expect_load_error(tmp_path("nan.csv"), NULL, "nan.csv' line 2 column 2", "not a finite");
}

static void test_error_bad_magic_and_truncation(void **state) {
    (void)state;
    unsigned char bad[12] = {0, 0, 0x07, 1, 0, 0, 0, 1, 5};
    write_bytes(tmp_path("magic.idx"), bad, 9);
    expect_load_error(tmp_path("magic.idx"), NULL, "magic.idx': bad IDX magic 0x00000701",
                      NULL);
    unsigned char buf[256];
    size_t n = idx_u8(buf, 3, (uint32_t[]){3, 2, 2}, idx_pixels);
    write_bytes(tmp_path("short.idx"), buf, n - 5);
    expect_load_error(tmp_path("short.idx"), NULL, "short.idx' is truncated",
                      "12 bytes of data, the file holds 7");
    write_bytes(tmp_path("header.idx"), buf, 10);
    expect_load_error(tmp_path("header.idx"), NULL, "header.idx' is truncated",
                      "3 dims");
    write_gzip(tmp_path("short.idx.gz"), buf, n - 5);
    expect_load_error(tmp_path("short.idx.gz"), NULL, "short.idx.gz' is truncated", NULL);
    /* A gzip stream cut short. */
    write_gzip(tmp_path("cut.gz"), buf, n);
    FILE *f = fopen(tmp_path("cut.gz"), "rb");
    unsigned char gz[512];
    size_t gz_len = fread(gz, 1, sizeof gz, f);
    fclose(f);
    write_bytes(tmp_path("cut.gz"), gz, gz_len - 12);
    expect_load_error(tmp_path("cut.gz"), NULL, "cut.gz'", "truncated");
    write_bytes(tmp_path("junk.bin"), (unsigned char[]){0x7f, 'E', 'L', 'F', 2, 1}, 6);
    expect_load_error(tmp_path("junk.bin"), NULL, "junk.bin': unrecognised data format",
                      NULL);
    write_bytes(tmp_path("npy.npy"), "\x93NUMPY\x01\x00\x10", 9);
    expect_load_error(tmp_path("npy.npy"), NULL, "npy.npy'", "truncated");
    expect_load_error(tmp_path("missing.idx"), NULL, "missing.idx'", "No such file");
}

static void test_error_images(void **state) {
    (void)state;
    char p[600];
    make_dir(tmp_path("badimg"));
    make_dir(tmp_path("badimg/a"));
    snprintf(p, sizeof p, "%s", tmp_path("badimg/a/ok.png"));
    write_png(p, 2, 2, 3, rgb);
    write_text(tmp_path("badimg/a/broken.png"), "not a png at all");
    expect_load_error(tmp_path("badimg"), NULL, "badimg/a/broken.png': unreadable image: ",
                      NULL);
    make_dir(tmp_path("empty"));
    expect_load_error(tmp_path("empty"), NULL, "empty': empty image folder", NULL);
    make_dir(tmp_path("noimg"));
    make_dir(tmp_path("noimg/a"));
    make_dir(tmp_path("noimg/b"));
    write_png(tmp_path("noimg/a/x.png"), 2, 2, 3, rgb);
    expect_load_error(tmp_path("noimg"), NULL, "noimg/b': empty class folder", NULL);
    /* A PNG whose header is fine but whose data is cut: found per batch. */
    make_dir(tmp_path("cutimg"));
    make_dir(tmp_path("cutimg/a"));
    int len = 0;
    unsigned char *png = stbi_write_png_to_mem(grey, 3, 3, 3, 1, &len);
    assert_non_null(png);
    write_bytes(tmp_path("cutimg/a/cut.png"), png, (size_t)len - 16);
    STBIW_FREE(png);
    gr_dataset *d = load_ok(tmp_path("cutimg"), NULL);
    gr_preprocess pp = pp_for(3, (int64_t[]){1, 3, 3});
    float x[9];
    gr_status st = {0};
    assert_int_not_equal(gr_dataset_batch(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x,
                                          GR_DTYPE_UNDEFINED, NULL, &st), GR_OK);
    assert_non_null(strstr(st.msg, "cut.png': unreadable image"));
    gr_dataset_free(d);
}

static void test_error_csv_cells(void **state) {
    (void)state;
    write_text(tmp_path("cell.csv"), "a,b,label\n1,2,0\n3,x7,1\n");
    expect_load_error(tmp_path("cell.csv"), NULL,
                      "cell.csv' line 3 column 2 ('b'): 'x7' is not a number", NULL);
    write_text(tmp_path("cols.csv"), "1,2,0\n3,1\n");
    expect_load_error(tmp_path("cols.csv"), NULL, "cols.csv' line 2: 2 columns, expected 3",
                      NULL);
    write_text(tmp_path("name.csv"), "a,b\n1,2\n");
    expect_load_error(tmp_path("name.csv"), &(gr_data_opts){.label_column = "y"},
                      "name.csv': no column named 'y'", NULL);
    expect_load_error(tmp_path("name.csv"), &(gr_data_opts){.label_column = "5"},
                      "name.csv': label column 5 does not exist", NULL);
    write_text(tmp_path("empty.csv"), "\n\n");
    expect_load_error(tmp_path("empty.csv"), NULL, "empty.csv' holds no rows", NULL);
    write_text(tmp_path("cell1.csv"), "1,2\n,3\n");
    expect_load_error(tmp_path("cell1.csv"), NULL, "cell1.csv' line 2 column 1", "not a number");
}

static void test_error_shape_mismatch_and_bad_index(void **state) {
    (void)state;
    float f[6] = {1, 2, 3, 4, 5, 6};
    write_npy(tmp_path("flat.npy"), GR_DTYPE_F32, 2, (int64_t[]){2, 3}, f);
    gr_dataset *d = load_ok(tmp_path("flat.npy"), NULL);
    gr_preprocess pp = pp_for(1, (int64_t[]){4});
    float x[8];
    gr_status st = {0};
    assert_int_equal(gr_dataset_batch(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x,
                                      GR_DTYPE_UNDEFINED, NULL, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "flat.npy': sample 0 f32[3] (3 values) cannot feed the "
                           "model input [4]"));
    assert_int_equal(gr_dataset_batch(d, (int64_t[]){2}, 1, &pp, GR_DTYPE_F32, x,
                                      GR_DTYPE_UNDEFINED, NULL, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "sample index 2 out of range"));
    pp = pp_for(1, (int64_t[]){3});
    int64_t ids[3];
    assert_int_equal(gr_dataset_batch(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_I64, ids,
                                      GR_DTYPE_UNDEFINED, NULL, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "the input takes integers"));
    assert_int_equal(gr_dataset_batch(d, (int64_t[]){0}, 1, &pp, GR_DTYPE_F32, x,
                                      GR_DTYPE_I64, ids, &st), GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "flat.npy' has no labels"));
    gr_dataset_free(d);
}

/* Every allocation failing in turn: an error or success, never a leak
 * (ASan checks) or a crash. */
static void test_failing_allocations_do_not_leak(void **state) {
    (void)state;
    write_idx_pair(tmp_path("a_img.gz"), tmp_path("a_lab.gz"), 1);
    write_text(tmp_path("a.csv"), "p,q,label\n1,2,0\n3,4,1\n");
    write_image_folder(tmp_path("a_imgs"));
    char paths[3][512], labels[512];
    snprintf(paths[0], 512, "%s", tmp_path("a_img.gz"));
    snprintf(paths[1], 512, "%s", tmp_path("a.csv"));
    snprintf(paths[2], 512, "%s", tmp_path("a_imgs"));
    snprintf(labels, 512, "%s", tmp_path("a_lab.gz"));
    for (int k = 0; k < 3; k++) {
        int succeeded = 0;
        gr_status st = {0};
        for (long n = 1; n < 200 && !succeeded; n++) {
            gr_dataset *d = NULL;
            gr_debug_fail_alloc_after(n);
            gr_code rc = gr_dataset_load(paths[k], NULL, &d, &st);
            if (rc == GR_OK && k == 0) rc = gr_dataset_set_labels(d, labels, &st);
            float x[3 * 32 * 32 * 3];
            int64_t y[3];
            gr_preprocess pp = pp_for(3, (int64_t[]){3, 32, 32});
            if (k == 1) pp = pp_for(1, (int64_t[]){2});
            if (rc == GR_OK)
                rc = gr_dataset_batch(d, (int64_t[]){0, 1}, 2, &pp, GR_DTYPE_F32, x,
                                      GR_DTYPE_I64, y, &st);
            gr_debug_fail_alloc_after(0);
            succeeded = rc == GR_OK;
            gr_dataset_free(d);
        }
        if (!succeeded) fail_msg("'%s' never loads: %s", paths[k], st.msg);
    }
}

/* ------------------------------------------------------------ real data */

static void test_fashion_mnist_test_set(void **state) {
    (void)state;
    if (access(FASHION "t10k-images-idx3-ubyte.gz", R_OK) ||
        access(FASHION "t10k-labels-idx1-ubyte.gz", R_OK))
        skip();
    gr_dataset *d = load_ok(FASHION "t10k-images-idx3-ubyte.gz", NULL);
    gr_status st = {0};
    assert_int_equal(gr_dataset_set_labels(d, FASHION "t10k-labels-idx1-ubyte.gz", &st), GR_OK);
    assert_int_equal(gr_dataset_count(d), 10000);
    assert_int_equal(gr_dataset_n_classes(d), 10);
    assert_int_equal(gr_dataset_check_labels(d, 10, &st), GR_OK);
    gr_shape s = gr_dataset_sample_shape(d, 0);
    assert_int_equal(s.rank, 2);
    assert_int_equal(s.dims[0], 28);
    assert_int_equal(s.dims[1], 28);
    /* Read independently with Python's gzip module: labels 9 2 1 1 6;
     * image 0 pixels 350 -> 115, 400 -> 1, 500 -> 172, 577 -> 255;
     * image 9999 pixels 300 -> 71, 400 -> 45, 410 -> 179. */
    gr_preprocess pp = pp_for(1, (int64_t[]){784});
    pp.scale = 1;
    static float x[2 * 784];
    int64_t y[4];
    batch_ok(d, (int64_t[]){0, 9999}, 2, &pp, GR_DTYPE_F32, x, GR_DTYPE_I64, y);
    assert_int_equal(y[0], 9);
    assert_true(x[0] == 0 && x[350] == 115 && x[400] == 1 && x[500] == 172 && x[577] == 255 &&
                x[783] == 0);
    assert_true(x[784 + 300] == 71 && x[784 + 400] == 45 && x[784 + 410] == 179);
    batch_ok(d, (int64_t[]){1, 2, 3, 4}, 4, &pp, GR_DTYPE_UNDEFINED, NULL, GR_DTYPE_I64, y);
    assert_memory_equal(y, ((int64_t[]){2, 1, 1, 6}), sizeof y);
    gr_dataset_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_plain_and_gzip_read_the_same),
        cmocka_unit_test(test_idx_float_big_endian),
        cmocka_unit_test(test_npy_u8_f32_and_token_ids),
        cmocka_unit_test(test_csv_with_header_names_the_label),
        cmocka_unit_test(test_csv_without_header_uses_last_column),
        cmocka_unit_test(test_image_folder_classes_and_channels),
        cmocka_unit_test(test_bilinear_matches_pytorch_half_pixel),
        cmocka_unit_test(test_pad_centres_and_crops),
        cmocka_unit_test(test_grey_to_rgb_with_normalisation),
        cmocka_unit_test(test_mnist_shape_into_3x32x32_is_deterministic_across_threads),
        cmocka_unit_test(test_shuffle_is_seeded),
        cmocka_unit_test(test_val_split_is_disjoint_and_complete),
        cmocka_unit_test(test_partial_last_batch_and_resume),
        cmocka_unit_test(test_error_labels_out_of_range_and_counts),
        cmocka_unit_test(test_error_nan_names_the_sample),
        cmocka_unit_test(test_error_bad_magic_and_truncation),
        cmocka_unit_test(test_error_images),
        cmocka_unit_test(test_error_csv_cells),
        cmocka_unit_test(test_error_shape_mismatch_and_bad_index),
        cmocka_unit_test(test_failing_allocations_do_not_leak),
        cmocka_unit_test(test_fashion_mnist_test_set),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
