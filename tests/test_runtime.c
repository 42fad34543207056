/* test_runtime.c: the runtime without LLVM. Plans are built by hand from
 * plain C kernels (elementwise add, a chain through the arena, constants,
 * row sums) and run on 1, 2 and 3 threads; .npy files are written and
 * read back for every dtype, and hand-built files (format 1.0/2.0/3.0,
 * scalars, big-endian, bad headers) check the reader and its messages. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include "runtime/gr_runtime.h"

/* ------------------------------------------------------------- plan helpers */

/* c[i] = a[i] + b[i], one task per element. */
static void add_kernel(void *const *args, int64_t begin, int64_t end) {
    const float *a = args[0], *b = args[1];
    float *c = args[2];
    for (int64_t i = begin; i < end; i++) c[i] = a[i] + b[i];
}

/* y[i] = x[i] * x[i] over blocks of 4 elements per task. */
static void square_kernel(void *const *args, int64_t begin, int64_t end) {
    const float *x = args[0];
    float *y = args[1];
    for (int64_t i = begin * 4; i < end * 4; i++) y[i] = x[i] * x[i];
}

/* y[r] = sum of row r of x:[rows,7] in order: a rounding-sensitive sum. */
static void row_sum_kernel(void *const *args, int64_t begin, int64_t end) {
    const float *x = args[0];
    float *y = args[1];
    for (int64_t r = begin; r < end; r++) {
        float acc = 0.0f;
        for (int k = 0; k < 7; k++) acc += x[r * 7 + k];
        y[r] = acc;
    }
}

/* count[i] += 1 for every task i: each task must run exactly once. */
static void count_kernel(void *const *args, int64_t begin, int64_t end) {
    int32_t *count = args[0];
    for (int64_t i = begin; i < end; i++) count[i]++;
}

/* y[r] = sum of row r of x:[rows,8] taken backwards through the thread's
 * workspace (args[2]); -1 if the workspace is missing or misaligned. */
static void workspace_kernel(void *const *args, int64_t begin, int64_t end) {
    const float *x = args[0];
    float *y = args[1], *ws = args[2];
    for (int64_t r = begin; r < end; r++) {
        if (!ws || (uintptr_t)ws % 64) {
            y[r] = -1.0f;
            continue;
        }
        for (int k = 0; k < 8; k++) ws[7 - k] = x[r * 8 + k];
        float acc = 0.0f;
        for (int k = 0; k < 8; k++) acc += ws[k];
        y[r] = acc;
    }
}

/* flags[i] = 1 if the step without a workspace got NULL in its slot. */
static void no_workspace_kernel(void *const *args, int64_t begin, int64_t end) {
    float *flags = args[0];
    for (int64_t i = begin; i < end; i++) flags[i] = args[1] == NULL ? 1.0f : 0.0f;
}

typedef struct {
    gr_plan *plan;
    int n_buffers, n_steps;
} plan_builder;

static plan_builder plan_begin(int max_buffers, int max_steps, size_t const_bytes) {
    plan_builder b = {0};
    b.plan = gr_calloc(1, sizeof *b.plan);
    assert_non_null(b.plan);
    b.plan->arena = gr_arena_new();
    b.plan->buffers = gr_arena_alloc(b.plan->arena, sizeof(gr_buffer) * (size_t)max_buffers);
    b.plan->steps = gr_arena_alloc(b.plan->arena, sizeof(gr_step) * (size_t)max_steps);
    b.plan->inputs = gr_arena_alloc(b.plan->arena, sizeof(int) * (size_t)max_buffers);
    b.plan->outputs = gr_arena_alloc(b.plan->arena, sizeof(int) * (size_t)max_buffers);
    if (const_bytes) b.plan->consts = gr_calloc(1, const_bytes);
    b.plan->const_bytes = const_bytes;
    return b;
}

/* A float buffer of n elements; returns its id. */
static int plan_buffer(plan_builder *b, const char *name, gr_buffer_kind kind, int index,
                       size_t offset, int64_t n) {
    gr_plan *p = b->plan;
    int id = p->n_buffers++;
    gr_buffer *buf = &p->buffers[id];
    buf->name = name;
    buf->kind = kind;
    buf->index = index;
    buf->offset = offset;
    buf->nbytes = (size_t)n * sizeof(float);
    buf->dtype = GR_DTYPE_F32;
    buf->shape = gr_shape_make(1, (int64_t[]){n});
    if (kind == GR_BUF_INPUT) p->inputs[index] = id, p->n_inputs++;
    if (kind == GR_BUF_OUTPUT) p->outputs[index] = id, p->n_outputs++;
    if (kind == GR_BUF_ARENA && offset + buf->nbytes > p->arena_bytes)
        p->arena_bytes = offset + buf->nbytes;
    return id;
}

static void plan_step(plan_builder *b, const char *name, gr_kernel_fn fn, int64_t n_tasks,
                      int n_args, const int *args) {
    gr_step *s = &b->plan->steps[b->plan->n_steps++];
    s->name = name;
    s->fn = fn;
    s->n_tasks = n_tasks;
    s->n_args = n_args;
    s->args = gr_arena_alloc(b->plan->arena, sizeof(int) * (size_t)n_args);
    memcpy(s->args, args, sizeof(int) * (size_t)n_args);
}

static void run_plan(const gr_plan *p, int threads, void *const *inputs,
                     void *const *outputs) {
    gr_status st = {0};
    gr_session *s = NULL;
    assert_int_equal(gr_session_new(p, threads, &s, &st), GR_OK);
    assert_int_equal(gr_session_threads(s), threads);
    assert_int_equal(gr_session_run(s, inputs, outputs, &st), GR_OK);
    gr_session_free(s);
}

/* x:[16] input 0, w:[16] const -> t = x + w (arena) -> y = t*t output 0. */
static gr_plan *chain_plan(void) {
    plan_builder b = plan_begin(4, 2, 16 * sizeof(float));
    float *w = b.plan->consts;
    for (int i = 0; i < 16; i++) w[i] = 0.5f * (float)i;
    int x = plan_buffer(&b, "x", GR_BUF_INPUT, 0, 0, 16);
    int c = plan_buffer(&b, "w", GR_BUF_CONST, 0, 0, 16);
    int t = plan_buffer(&b, "t", GR_BUF_ARENA, 0, 64, 16);
    int y = plan_buffer(&b, "y", GR_BUF_OUTPUT, 0, 0, 16);
    plan_step(&b, "add", add_kernel, 16, 3, (int[]){x, c, t});
    plan_step(&b, "square", square_kernel, 4, 2, (int[]){t, y});
    return b.plan;
}

/* ------------------------------------------------------------ session tests */

static void test_chain_through_arena_and_const_matches_hand_values(void **state) {
    (void)state;
    gr_plan *p = chain_plan();
    float x[16], y[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i - 4.0f;
    for (int threads = 1; threads <= 3; threads++) {
        memset(y, 0, sizeof y);
        run_plan(p, threads, (void *[]){x}, (void *[]){y});
        for (int i = 0; i < 16; i++) {
            float t = ((float)i - 4.0f) + 0.5f * (float)i; /* 1.5 i - 4 */
            assert_true(y[i] == t * t);
        }
    }
    gr_plan_free(p);
}

/* Row sums of 1000 rows on 1, 2 and 3 threads give the same bits. */
static void test_results_are_bit_identical_for_1_2_3_threads(void **state) {
    (void)state;
    enum { ROWS = 1000 };
    plan_builder b = plan_begin(2, 1, 0);
    int x = plan_buffer(&b, "x", GR_BUF_INPUT, 0, 0, ROWS * 7);
    int y = plan_buffer(&b, "y", GR_BUF_OUTPUT, 0, 0, ROWS);
    plan_step(&b, "row_sum", row_sum_kernel, ROWS, 2, (int[]){x, y});
    float *in = malloc(sizeof(float) * ROWS * 7), out[3][ROWS];
    unsigned seed = 12345;
    for (int i = 0; i < ROWS * 7; i++) {
        seed = seed * 1103515245u + 12345u;
        in[i] = (float)(seed >> 8) / 16777216.0f * 100.0f - 50.0f;
    }
    for (int t = 0; t < 3; t++) run_plan(b.plan, t + 1, (void *[]){in}, (void *[]){out[t]});
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    assert_memory_equal(out[0], out[2], sizeof out[0]);
    float r0 = 0.0f;
    for (int k = 0; k < 7; k++) r0 += in[k];
    assert_true(out[0][0] == r0);
    free(in);
    gr_plan_free(b.plan);
}

/* 1 and 2 tasks on 3 threads: every task runs exactly once. */
static void test_fewer_tasks_than_threads_run_each_task_once(void **state) {
    (void)state;
    plan_builder b = plan_begin(2, 3, 0);
    int c = plan_buffer(&b, "counts", GR_BUF_OUTPUT, 0, 0, 8);
    plan_step(&b, "one", count_kernel, 1, 1, (int[]){c});
    plan_step(&b, "two", count_kernel, 2, 1, (int[]){c});
    plan_step(&b, "eight", count_kernel, 8, 1, (int[]){c});
    for (int threads = 1; threads <= 3; threads++) {
        int32_t counts[8] = {0};
        run_plan(b.plan, threads, NULL, (void *[]){counts});
        int32_t want[8] = {3, 2, 1, 1, 1, 1, 1, 1};
        assert_memory_equal(counts, want, sizeof want);
    }
    gr_plan_free(b.plan);
}

/* dst[i] = src[999 - i] + 1 (src and dst have 1000 elements): a task
 * reads what another task of the step before wrote. The chunk holding
 * task 0 first sleeps 0.2 ms, so that other threads reach the next step
 * while it runs. */
static void inc_kernel(void *const *args, int64_t begin, int64_t end) {
    const float *src = args[0];
    float *dst = args[1];
    if (begin == 0) nanosleep(&(struct timespec){0, 200000}, NULL);
    for (int64_t i = begin; i < end; i++) dst[i] = src[999 - i] + 1.0f;
}

/* 40 steps, each reading what the one before wrote (1000 tasks, claimed in
 * chunks), on more threads than cores: no step starts before the one
 * before has finished, and every task runs exactly once. */
static void test_steps_wait_for_the_step_before(void **state) {
    (void)state;
    enum { N = 1000, STEPS = 40 };
    plan_builder b = plan_begin(4, STEPS + 1, 0);
    int x = plan_buffer(&b, "x", GR_BUF_INPUT, 0, 0, N);
    int a = plan_buffer(&b, "a", GR_BUF_ARENA, 0, 0, N);
    int c = plan_buffer(&b, "c", GR_BUF_ARENA, 0, N * sizeof(float), N);
    int y = plan_buffer(&b, "y", GR_BUF_OUTPUT, 0, 0, N);
    plan_step(&b, "first", inc_kernel, N, 2, (int[]){x, a});
    for (int i = 1; i < STEPS - 1; i++)
        plan_step(&b, "next", inc_kernel, N, 2, i % 2 ? (int[]){a, c} : (int[]){c, a});
    plan_step(&b, "last", inc_kernel, N, 2, (STEPS - 1) % 2 ? (int[]){a, y} : (int[]){c, y});
    float in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = (float)i;
    for (int threads = 2; threads <= 8; threads += 3) {
        memset(out, 0, sizeof out);
        run_plan(b.plan, threads, (void *[]){in}, (void *[]){out});
        for (int i = 0; i < N; i++) assert_true(out[i] == (float)(i + STEPS)); /* STEPS even */
    }
    gr_plan_free(b.plan);
}

/* Buffers are declared out of index order; pointers bind by index. */
static void test_inputs_and_outputs_bind_by_index(void **state) {
    (void)state;
    plan_builder b = plan_begin(6, 2, 0);
    int y1 = plan_buffer(&b, "y1", GR_BUF_OUTPUT, 1, 0, 4);
    int x1 = plan_buffer(&b, "x1", GR_BUF_INPUT, 1, 0, 4);
    int y0 = plan_buffer(&b, "y0", GR_BUF_OUTPUT, 0, 0, 4);
    int x0 = plan_buffer(&b, "x0", GR_BUF_INPUT, 0, 0, 4);
    plan_step(&b, "sum", add_kernel, 4, 3, (int[]){x0, x1, y0});
    plan_step(&b, "sq", square_kernel, 1, 2, (int[]){x1, y1});
    float a[4] = {1, 2, 3, 4}, c[4] = {10, 20, 30, 40}, out0[4], out1[4];
    run_plan(b.plan, 2, (void *[]){a, c}, (void *[]){out0, out1});
    for (int i = 0; i < 4; i++) {
        assert_true(out0[i] == a[i] + c[i]);
        assert_true(out1[i] == c[i] * c[i]);
    }
    gr_plan_free(b.plan);
}

/* Each thread gets its own aligned workspace after the step's buffers;
 * steps that ask for none get NULL there. */
static void test_kernels_get_a_workspace_per_thread(void **state) {
    (void)state;
    enum { ROWS = 64 };
    plan_builder b = plan_begin(3, 2, 0);
    int x = plan_buffer(&b, "x", GR_BUF_INPUT, 0, 0, ROWS * 8);
    int y = plan_buffer(&b, "y", GR_BUF_OUTPUT, 0, 0, ROWS);
    int f = plan_buffer(&b, "flags", GR_BUF_OUTPUT, 1, 0, 4);
    plan_step(&b, "ws", workspace_kernel, ROWS, 2, (int[]){x, y});
    b.plan->steps[0].workspace_bytes = 8 * sizeof(float);
    plan_step(&b, "none", no_workspace_kernel, 4, 1, (int[]){f});
    float in[ROWS * 8], out[3][ROWS], flags[4];
    for (int i = 0; i < ROWS * 8; i++) in[i] = (float)(i % 13) * 0.25f;
    for (int t = 0; t < 3; t++) {
        run_plan(b.plan, t + 1, (void *[]){in}, (void *[]){out[t], flags});
        for (int i = 0; i < 4; i++) assert_true(flags[i] == 1.0f);
    }
    for (int r = 0; r < ROWS; r++) {
        float want = 0.0f;
        for (int k = 7; k >= 0; k--) want += in[r * 8 + k];
        assert_true(out[0][r] == want);
    }
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    assert_memory_equal(out[0], out[2], sizeof out[0]);
    gr_plan_free(b.plan);
}

static void test_default_thread_count_is_positive(void **state) {
    (void)state;
    gr_plan *p = chain_plan();
    gr_session *s = NULL;
    gr_status st = {0};
    assert_int_equal(gr_session_new(p, 0, &s, &st), GR_OK);
    assert_true(gr_session_threads(s) >= 1);
    gr_session_free(s);
    gr_plan_free(p);
}

static void test_profile_counts_runs_and_steps(void **state) {
    (void)state;
    gr_plan *p = chain_plan();
    gr_session *s = NULL;
    gr_status st = {0};
    float x[16] = {0}, y[16];
    assert_int_equal(gr_session_new(p, 2, &s, &st), GR_OK);
    assert_int_equal(gr_session_run(s, (void *[]){x}, (void *[]){y}, &st), GR_OK);
    int64_t runs = -1;
    gr_session_step_ms(s, &runs);
    assert_int_equal(runs, 0);
    gr_session_profile(s, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gr_session_run(s, (void *[]){x}, (void *[]){y}, &st), GR_OK);
    const double *ms = gr_session_step_ms(s, &runs);
    assert_int_equal(runs, 3);
    assert_true(ms[0] >= 0.0 && ms[1] >= 0.0);
    gr_session_free(s);
    gr_plan_free(p);
}

static void test_broken_plans_and_missing_pointers_are_errors(void **state) {
    (void)state;
    gr_plan *p = chain_plan();
    gr_session *s = NULL;
    gr_status st = {0};
    p->buffers[2].offset = p->arena_bytes; /* t runs past the arena */
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_ERR_INTERNAL);
    assert_null(s);
    assert_non_null(strstr(st.msg, "'t'"));
    p->buffers[2].offset = 64;
    p->steps[1].args[1] = 9;
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_ERR_INTERNAL);
    assert_non_null(strstr(st.msg, "step 1 'square'"));
    p->steps[1].args[1] = 3;
    p->steps[0].n_tasks = 0;
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_ERR_INTERNAL);
    p->steps[0].n_tasks = 16;
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);
    float x[16] = {0};
    assert_int_equal(gr_session_run(s, (void *[]){x}, NULL, &st), GR_ERR_BAD_ARG);
    assert_int_equal(gr_session_run(s, (void *[]){x}, (void *[]){NULL}, &st),
                     GR_ERR_BAD_ARG);
    assert_non_null(strstr(st.msg, "output 0 'y' is NULL"));
    gr_session_free(s);
    gr_plan_free(p);
}

static void test_session_new_fails_cleanly_at_every_allocation(void **state) {
    (void)state;
    gr_plan *p = chain_plan();
    for (long n = 1;; n++) {
        gr_session *s = NULL;
        gr_status st = {0};
        gr_debug_fail_alloc_after(n);
        gr_code rc = gr_session_new(p, 1, &s, &st);
        gr_debug_fail_alloc_after(0);
        if (rc == GR_OK) {
            gr_session_free(s);
            break;
        }
        assert_int_equal(rc, GR_ERR_NOMEM);
        assert_null(s);
    }
    gr_plan_free(p);
}

/* ---------------------------------------------------------------- npy tests */

static char tmpdir[64];

static int make_tmpdir(void **state) {
    (void)state;
    strcpy(tmpdir, "/tmp/graft_runtime_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state) {
    (void)state;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
    if (d) closedir(d);
    return rmdir(tmpdir);
}

static int contains(const unsigned char *buf, size_t n, const char *text) {
    size_t len = strlen(text);
    for (size_t i = 0; i + len <= n; i++)
        if (!memcmp(buf + i, text, len)) return 1;
    return 0;
}

static const char *tmp_path(const char *name) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

/* A .npy file with the given version and header text (padded with spaces
 * and '\n' to a multiple of 64 unless raw), then data. */
static const char *write_raw(const char *name, int major, const char *text, const void *data,
                             size_t n, int pad) {
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t prefix = major == 1 ? 10 : 12, len = strlen(text);
    size_t total = pad ? ((prefix + len + 1 + 63) / 64) * 64 - prefix : len;
    unsigned char head[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0,
                              (unsigned char)total, (unsigned char)(total >> 8),
                              (unsigned char)(total >> 16), (unsigned char)(total >> 24)};
    fwrite(head, 1, prefix, f);
    fputs(text, f);
    for (size_t i = len; pad && i + 1 < total; i++) fputc(' ', f);
    if (pad) fputc('\n', f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

static void test_npy_round_trip_for_every_dtype(void **state) {
    (void)state;
    static const gr_dtype dtypes[] = {
        GR_DTYPE_F32, GR_DTYPE_F64, GR_DTYPE_F16, GR_DTYPE_I8,  GR_DTYPE_U8,  GR_DTYPE_I16,
        GR_DTYPE_U16, GR_DTYPE_I32, GR_DTYPE_U32, GR_DTYPE_I64, GR_DTYPE_U64, GR_DTYPE_BOOL};
    for (size_t k = 0; k < sizeof dtypes / sizeof *dtypes; k++) {
        gr_tensor t = {.dtype = dtypes[k], .shape = gr_shape_make(3, (int64_t[]){2, 3, 5})};
        t.nbytes = 30 * gr_dtype_size(t.dtype);
        unsigned char data[240];
        for (size_t i = 0; i < t.nbytes; i++)
            data[i] = t.dtype == GR_DTYPE_BOOL ? (unsigned char)(i % 3 == 0)
                                               : (unsigned char)(i * 37 + 11);
        t.data = data;
        gr_status st = {0};
        assert_int_equal(gr_npy_write(tmp_path("rt.npy"), &t, &st), GR_OK);
        gr_tensor back;
        assert_int_equal(gr_npy_read(tmp_path("rt.npy"), &back, &st), GR_OK);
        assert_int_equal(back.dtype, t.dtype);
        assert_true(gr_shape_equal(&back.shape, &t.shape));
        assert_int_equal(back.nbytes, t.nbytes);
        assert_memory_equal(back.data, data, t.nbytes);
        gr_free(back.data);
    }
}

/* What numpy.save writes for np.zeros((2, 3), np.float32), byte for byte. */
static void test_npy_write_matches_numpy_layout(void **state) {
    (void)state;
    float zeros[6] = {0};
    gr_tensor t = {GR_DTYPE_F32, gr_shape_make(2, (int64_t[]){2, 3}), zeros, sizeof zeros};
    gr_status st = {0};
    assert_int_equal(gr_npy_write(tmp_path("np.npy"), &t, &st), GR_OK);
    FILE *f = fopen(tmp_path("np.npy"), "rb");
    unsigned char buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(n, 128 + sizeof zeros);
    assert_memory_equal(buf, "\x93NUMPY\x01\x00\x76\x00", 10);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    assert_memory_equal(buf + 10, dict, strlen(dict));
    assert_int_equal(buf[127], '\n');
    assert_int_equal(buf[126], ' ');
    /* Shapes () and (n,) are written as Python writes them. */
    float one = 1.5f;
    gr_tensor s = {GR_DTYPE_F32, gr_shape_scalar(), &one, 4};
    assert_int_equal(gr_npy_write(tmp_path("s.npy"), &s, &st), GR_OK);
    f = fopen(tmp_path("s.npy"), "rb");
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(contains(buf, n, "'shape': (), }"));
    gr_tensor v = {GR_DTYPE_F32, gr_shape_make(1, (int64_t[]){1}), &one, 4};
    assert_int_equal(gr_npy_write(tmp_path("v.npy"), &v, &st), GR_OK);
    f = fopen(tmp_path("v.npy"), "rb");
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(contains(buf, n, "'shape': (1,), }"));
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

/* Files numpy wrote (tests/data/ocr_cls: the OCR input and ONNX Runtime's
 * softmax output) read as numpy describes them and are written back byte
 * for byte. */
static void test_npy_reads_and_rewrites_numpy_files_exactly(void **state) {
    (void)state;
    static const struct {
        const char *file;
        int rank;
        int64_t dims[4];
    } files[] = {{"input.npy", 4, {4, 3, 48, 192}}, {"softmax_0.tmp_0.npy", 2, {4, 2}}};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/tests/data/ocr_cls/%s", GRAFT_SOURCE_DIR, files[k].file);
        size_t len = 0, len2 = 0;
        unsigned char *orig = slurp(path, &len);
        assert_non_null(orig);
        gr_status st = {0};
        gr_tensor t;
        assert_int_equal(gr_npy_read(path, &t, &st), GR_OK);
        gr_shape want = gr_shape_make(files[k].rank, files[k].dims);
        assert_int_equal(t.dtype, GR_DTYPE_F32);
        assert_true(gr_shape_equal(&t.shape, &want));
        if (files[k].rank == 2) /* softmax rows sum to 1 */
            for (int r = 0; r < 4; r++) {
                float *row = (float *)t.data + r * 2;
                assert_true(row[0] + row[1] > 0.999f && row[0] + row[1] < 1.001f);
            }
        assert_int_equal(gr_npy_write(tmp_path("copy.npy"), &t, &st), GR_OK);
        unsigned char *copy = slurp(tmp_path("copy.npy"), &len2);
        assert_int_equal(len2, len);
        assert_memory_equal(copy, orig, len);
        free(copy);
        free(orig);
        gr_free(t.data);
    }
}

static void test_npy_reads_hand_built_versions_and_shapes(void **state) {
    (void)state;
    gr_status st = {0};
    gr_tensor t;
    double d = 2.25;
    const char *p = write_raw("v1.npy", 1,
                              "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &d, 8, 1);
    assert_int_equal(gr_npy_read(p, &t, &st), GR_OK);
    assert_int_equal(t.dtype, GR_DTYPE_F64);
    assert_int_equal(t.shape.rank, 0);
    assert_true(*(double *)t.data == 2.25);
    gr_free(t.data);
    int32_t ints[3] = {7, -8, 9};
    p = write_raw("v2.npy", 2, "{\"descr\":\"<i4\",\"shape\":(3,),\"fortran_order\":False}",
                  ints, sizeof ints, 1);
    assert_int_equal(gr_npy_read(p, &t, &st), GR_OK);
    assert_int_equal(t.dtype, GR_DTYPE_I32);
    assert_int_equal(t.shape.rank, 1);
    assert_int_equal(t.shape.dims[0], 3);
    assert_memory_equal(t.data, ints, sizeof ints);
    gr_free(t.data);
    p = write_raw("v3.npy", 3, "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 4)}",
                  NULL, 0, 0);
    assert_int_equal(gr_npy_read(p, &t, &st), GR_OK);
    assert_int_equal(t.dtype, GR_DTYPE_U8);
    assert_int_equal(t.nbytes, 0);
    assert_null(t.data);
    unsigned char b[3] = {0, 2, 1};
    p = write_raw("b.npy", 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3L,), }",
                  b, 3, 1);
    assert_int_equal(gr_npy_read(p, &t, &st), GR_OK);
    assert_int_equal(t.dtype, GR_DTYPE_BOOL);
    assert_memory_equal(t.data, "\0\1\1", 3);
    gr_free(t.data);
}

static void test_npy_converts_big_endian_data(void **state) {
    (void)state;
    gr_status st = {0};
    gr_tensor t;
    const unsigned char f4[8] = {0x3f, 0x80, 0, 0, 0xc0, 0x40, 0, 0}; /* 1.0, -3.0 */
    const char *p = write_raw("be.npy", 1,
                              "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", f4, 8,
                              1);
    assert_int_equal(gr_npy_read(p, &t, &st), GR_OK);
    assert_true(((float *)t.data)[0] == 1.0f && ((float *)t.data)[1] == -3.0f);
    gr_free(t.data);
    const unsigned char i8[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}; /* -2 */
    p = write_raw("be8.npy", 1, "{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }",
                  i8, 8, 1);
    assert_int_equal(gr_npy_read(p, &t, &st), GR_OK);
    assert_int_equal(*(int64_t *)t.data, -2);
    gr_free(t.data);
}

/* Reads path and checks the code and that the message holds both parts. */
static void expect_read_error(const char *path, gr_code code, const char *part) {
    gr_status st = {0};
    gr_tensor t;
    assert_int_equal(gr_npy_read(path, &t, &st), code);
    if (!strstr(st.msg, part) || !strstr(st.msg, path)) fail_msg("message: %s", st.msg);
    assert_null(t.data);
}

static void test_npy_bad_files_give_clear_errors(void **state) {
    (void)state;
    const char *hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    float six[6] = {0};
    expect_read_error(tmp_path("missing.npy"), GR_ERR_IO, "cannot open");
    FILE *f = fopen(tmp_path("text.npy"), "wb");
    fputs("hello, world", f);
    fclose(f);
    expect_read_error(tmp_path("text.npy"), GR_ERR_BAD_MODEL, "not a .npy file");
    f = fopen(tmp_path("short.npy"), "wb");
    fwrite("\x93NUMPY\x01", 1, 7, f);
    fclose(f);
    expect_read_error(tmp_path("short.npy"), GR_ERR_BAD_MODEL, "truncated .npy header");
    const char *p = write_raw("cut.npy", 1, hdr, NULL, 0, 1);
    assert_int_equal(truncate(p, 40), 0);
    expect_read_error(p, GR_ERR_BAD_MODEL, "truncated .npy header");
    expect_read_error(write_raw("data.npy", 1, hdr, six, 10, 1), GR_ERR_BAD_MODEL,
                      "f32[2,3], 24 bytes of data, but the file holds 10 bytes");
    expect_read_error(write_raw("open.npy", 1, "{'descr': '<f4', 'shape': (2, 3)", six, 24, 1),
                      GR_ERR_BAD_MODEL, "malformed .npy header");
    expect_read_error(write_raw("key.npy", 1, "{'descr': '<f4', 'fortran_order': False, "
                                              "'shape': (2, 3), 'extra': 1}", six, 24, 1),
                      GR_ERR_BAD_MODEL, "unknown key 'extra'");
    expect_read_error(write_raw("noshape.npy", 1, "{'descr': '<f4', 'fortran_order': False}",
                                six, 24, 1), GR_ERR_BAD_MODEL, "no 'shape' key");
    expect_read_error(write_raw("neg.npy", 1, "{'descr': '<f4', 'fortran_order': False, "
                                              "'shape': (-1,)}", six, 24, 1),
                      GR_ERR_BAD_MODEL, "non-negative dimension");
    expect_read_error(write_raw("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, "
                                                  "'shape': (2, 3), }", six, 24, 1),
                      GR_ERR_UNSUPPORTED, "Fortran-ordered arrays are not supported");
    expect_read_error(write_raw("rank.npy", 1, "{'descr': '<f4', 'fortran_order': False, "
                                               "'shape': (1,1,1,1,1,1,1,1,1), }", six, 4, 1),
                      GR_ERR_UNSUPPORTED, "more than 8 dimensions");
    expect_read_error(write_raw("c8.npy", 1, "{'descr': '<c8', 'fortran_order': False, "
                                             "'shape': (3,), }", six, 24, 1),
                      GR_ERR_UNSUPPORTED, "dtype '<c8' is not supported");
    expect_read_error(write_raw("rec.npy", 1, "{'descr': [('a', '<f4')], 'fortran_order': "
                                              "False, 'shape': (3,), }", six, 12, 1),
                      GR_ERR_UNSUPPORTED, "structured");
    expect_read_error(write_raw("v4.npy", 4, hdr, six, 24, 1), GR_ERR_UNSUPPORTED,
                      "version 4.0");
}

static int count_temp_files(void) {
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static void test_npy_write_errors_name_the_file_and_leave_no_temp(void **state) {
    (void)state;
    uint16_t h[2] = {0x3f80, 0x4000};
    gr_tensor bf = {GR_DTYPE_BF16, gr_shape_make(1, (int64_t[]){2}), h, 4};
    gr_status st = {0};
    assert_int_equal(gr_npy_write(tmp_path("bf.npy"), &bf, &st), GR_ERR_UNSUPPORTED);
    assert_non_null(strstr(st.msg, "bf16"));
    assert_non_null(strstr(st.msg, "bf.npy"));
    float x[2] = {1, 2};
    gr_tensor t = {GR_DTYPE_F32, gr_shape_make(1, (int64_t[]){2}), x, 8};
    assert_int_equal(gr_npy_write(tmp_path("nodir/x.npy"), &t, &st), GR_ERR_IO);
    assert_non_null(strstr(st.msg, "nodir/x.npy"));
    t.nbytes = 4;
    assert_int_equal(gr_npy_write(tmp_path("bad.npy"), &t, &st), GR_ERR_BAD_ARG);
    assert_int_equal(count_temp_files(), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_through_arena_and_const_matches_hand_values),
        cmocka_unit_test(test_results_are_bit_identical_for_1_2_3_threads),
        cmocka_unit_test(test_fewer_tasks_than_threads_run_each_task_once),
        cmocka_unit_test(test_steps_wait_for_the_step_before),
        cmocka_unit_test(test_inputs_and_outputs_bind_by_index),
        cmocka_unit_test(test_kernels_get_a_workspace_per_thread),
        cmocka_unit_test(test_default_thread_count_is_positive),
        cmocka_unit_test(test_profile_counts_runs_and_steps),
        cmocka_unit_test(test_broken_plans_and_missing_pointers_are_errors),
        cmocka_unit_test(test_session_new_fails_cleanly_at_every_allocation),
        cmocka_unit_test(test_npy_round_trip_for_every_dtype),
        cmocka_unit_test(test_npy_write_matches_numpy_layout),
        cmocka_unit_test(test_npy_reads_and_rewrites_numpy_files_exactly),
        cmocka_unit_test(test_npy_reads_hand_built_versions_and_shapes),
        cmocka_unit_test(test_npy_converts_big_endian_data),
        cmocka_unit_test(test_npy_bad_files_give_clear_errors),
        cmocka_unit_test(test_npy_write_errors_name_the_file_and_leave_no_temp),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir) != 0;
}
