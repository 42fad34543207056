/* aot_train.c DATA_DIR OUT_DIR LR: drives an object compiled by `graft
 * compile --train --prefix net` (net.h on the include path) for
 * tests/aot/aot_test.sh, on DATA_DIR/x.npy and y.npy (a golden data set:
 * batch k is rows [k*B, (k+1)*B), B = the compiled batch):
 *  - 20 steps at rate LR, after step 10 a checkpoint (net_save) in
 *    OUT_DIR/ckpt; prints each loss ("%.9g", as graft train --log);
 *  - net_export_weights into OUT_DIR/export/<name>.npy (a directory
 *    graft train --init takes) and net_run on batch 0 (OUT_DIR/x0.npy)
 *    into OUT_DIR/run.npy;
 *  - net_load of the checkpoint and steps 10..19 again, printing
 *    "again K LOSS": a resumed run must repeat the losses exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "runtime/gr_runtime.h"

static int fail(const char *what) {
    fprintf(stderr, "aot_train: %s: %s\n", what, net_last_error());
    return 1;
}

static gr_dtype dtype_of(const char *name) {
    for (int t = 0; t < 32; t++)
        if (gr_dtype_valid(t) && !strcmp(gr_dtype_name((gr_dtype)t), name)) return (gr_dtype)t;
    return GR_DTYPE_UNDEFINED;
}

/* Steps first..last-1 on the data; checkpoint after step `save_after`. */
static int train(const gr_tensor *x, const gr_tensor *y, float lr, int first, int last,
                 const char *label, const char *ckpt, int save_after) {
    for (int k = first; k < last; k++) {
        const void *inputs[] = {(const char *)x->data + (size_t)k * net_INPUT_BYTES[0]};
        const void *labels = (const char *)y->data + (size_t)k * net_LABELS_BYTES[0];
        float loss = 0;
        if ((size_t)(k + 1) * net_INPUT_BYTES[0] > x->nbytes ||
            (size_t)(k + 1) * net_LABELS_BYTES[0] > y->nbytes)
            return fprintf(stderr, "aot_train: not enough data for step %d\n", k), 1;
        if (net_train_step(inputs, labels, lr, &loss)) return fail("net_train_step");
        printf("%s%.9g\n", label, (double)loss);
        if (ckpt && k + 1 == save_after && net_save(ckpt)) return fail("net_save");
    }
    return 0;
}

static int export_weights(const char *out) {
    void *dst[net_N_TRAINED];
    char path[4096];
    gr_status st = {0};
    for (int i = 0; i < net_N_TRAINED; i++) dst[i] = gr_malloc(net_TRAINED_BYTES[i] + 1);
    if (net_export_weights(dst)) return fail("net_export_weights");
    for (int i = 0; i < net_N_TRAINED; i++) {
        gr_tensor t = {dtype_of(net_TRAINED_DTYPES[i]),
                       gr_shape_make(net_TRAINED_RANKS[i], net_TRAINED_SHAPES[i]), dst[i],
                       net_TRAINED_BYTES[i]};
        snprintf(path, sizeof path, "%s/export/%s.npy", out, net_TRAINED_NAMES[i]);
        if (gr_npy_write(path, &t, &st)) return fprintf(stderr, "%s\n", st.msg), 1;
        gr_free(dst[i]);
    }
    return 0;
}

static int run_batch0(const gr_tensor *x, const char *out) {
    void *y = gr_malloc(net_OUTPUT_BYTES[0]);
    const void *inputs[] = {x->data};
    void *outputs[] = {y};
    char path[4096];
    gr_status st = {0};
    if (net_run(inputs, outputs)) return fail("net_run");
    gr_tensor t = {dtype_of(net_OUTPUT_DTYPES[0]),
                   gr_shape_make(net_OUTPUT_RANKS[0], net_OUTPUT_SHAPES[0]), y,
                   net_OUTPUT_BYTES[0]};
    snprintf(path, sizeof path, "%s/run.npy", out);
    if (gr_npy_write(path, &t, &st)) return fprintf(stderr, "%s\n", st.msg), 1;
    gr_tensor x0 = {x->dtype, gr_shape_make(net_INPUT_RANKS[0], net_INPUT_SHAPES[0]), x->data,
                    net_INPUT_BYTES[0]};
    snprintf(path, sizeof path, "%s/x0.npy", out);
    if (gr_npy_write(path, &x0, &st)) return fprintf(stderr, "%s\n", st.msg), 1;
    gr_free(y);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) return fputs("usage: aot_train DATA_DIR OUT_DIR LR\n", stderr), 2;
    char path[4096], ckpt[4096];
    gr_tensor x = {0}, y = {0};
    gr_status st = {0};
    float lr = strtof(argv[3], NULL);
    snprintf(path, sizeof path, "%s/x.npy", argv[1]);
    if (gr_npy_read(path, &x, &st)) return fprintf(stderr, "%s\n", st.msg), 1;
    snprintf(path, sizeof path, "%s/y.npy", argv[1]);
    if (gr_npy_read(path, &y, &st)) return fprintf(stderr, "%s\n", st.msg), 1;
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", argv[2]);
    int rc = train(&x, &y, lr, 0, 20, "", ckpt, 10);
    if (!rc) rc = export_weights(argv[2]);
    if (!rc) rc = run_batch0(&x, argv[2]);
    if (!rc && net_load(ckpt)) rc = fail("net_load");
    if (!rc) rc = train(&x, &y, lr, 10, 20, "again ", NULL, 0);
    gr_free(x.data);
    gr_free(y.data);
    return rc;
}
