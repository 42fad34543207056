/* aot_run.c DIR: drives an object compiled by `graft compile --prefix net`
 * (its header net.h on the include path) for tests/aot/aot_test.sh.
 * Writes a deterministic pseudo-random input per model input to
 * DIR/<input>.npy (floats uniform in [-1, 1)), runs net_run and writes
 * every output to DIR/out/<output>.npy, names sanitised as `graft run`
 * does, so the test can compare them byte for byte with the JIT's. */
#include <stdio.h>
#include <string.h>

#include "net.h"
#include "runtime/gr_runtime.h"

static gr_dtype dtype_of(const char *name) {
    for (int t = 0; t < 32; t++)
        if (gr_dtype_valid(t) && !strcmp(gr_dtype_name((gr_dtype)t), name)) return (gr_dtype)t;
    return GR_DTYPE_UNDEFINED;
}

static void file_name(char *buf, size_t size, const char *dir, const char *name) {
    int w = snprintf(buf, size, "%s/", dir);
    for (const char *c = name; *c && w + 5 < (int)size; c++, w++) {
        int keep = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                   (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
        buf[w] = keep ? *c : '_';
    }
    snprintf(buf + w, size - (size_t)w, ".npy");
}

static gr_tensor tensor(const char *dtype, int rank, const int64_t *dims, void *data,
                        size_t nbytes) {
    gr_tensor t = {dtype_of(dtype), gr_shape_make(rank, dims), data, nbytes};
    return t;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fputs("usage: aot_run DIR\n", stderr);
        return 2;
    }
    void *inputs[net_N_INPUTS], *outputs[net_N_OUTPUTS];
    gr_status st = {0};
    char path[4096], out_dir[4096];
    gr_rng rng;
    gr_rng_seed(&rng, 42);
    for (int i = 0; i < net_N_INPUTS; i++) {
        gr_tensor t = tensor(net_INPUT_DTYPES[i], net_INPUT_RANKS[i], net_INPUT_SHAPES[i],
                             gr_malloc(net_INPUT_BYTES[i] + 1), net_INPUT_BYTES[i]);
        if (!gr_dtype_is_float(t.dtype)) return fprintf(stderr, "non-float input\n"), 1;
        int64_t n = gr_shape_numel(&t.shape);
        for (int64_t k = 0; k < n; k++)
            gr_dtype_store_f64(t.dtype, t.data, k, 2 * gr_rng_uniform(&rng) - 1);
        file_name(path, sizeof path, argv[1], net_INPUT_NAMES[i]);
        if (gr_npy_write(path, &t, &st)) return fprintf(stderr, "%s\n", st.msg), 1;
        inputs[i] = t.data;
    }
    for (int i = 0; i < net_N_OUTPUTS; i++) outputs[i] = gr_malloc(net_OUTPUT_BYTES[i] + 1);
    if (net_run((const void *const *)inputs, outputs)) {
        fprintf(stderr, "net_run: %s\n", net_last_error());
        return 1;
    }
    snprintf(out_dir, sizeof out_dir, "%s/out", argv[1]);
    for (int i = 0; i < net_N_OUTPUTS; i++) {
        gr_tensor t = tensor(net_OUTPUT_DTYPES[i], net_OUTPUT_RANKS[i], net_OUTPUT_SHAPES[i],
                             outputs[i], net_OUTPUT_BYTES[i]);
        file_name(path, sizeof path, out_dir, net_OUTPUT_NAMES[i]);
        if (gr_npy_write(path, &t, &st)) return fprintf(stderr, "%s\n", st.msg), 1;
        gr_free(outputs[i]);
    }
    for (int i = 0; i < net_N_INPUTS; i++) gr_free(inputs[i]);
    return 0;
}
