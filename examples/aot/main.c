/* main.c: using models compiled ahead of time by `graft compile` from a
 * plain C program that links only the objects and graft's runtime library
 * (see CMakeLists.txt here for how the objects are made).
 *
 *     aot_example OCR_DIR MLP_DIR
 *
 * Classifies the four text-line crops of OCR_DIR/input.npy with the
 * PaddleOCR direction classifier (cls.o, cls.h: `graft compile
 * ch_ppocr_mobile_v2.0_cls_infer.onnx --shape x=4x3x48x192 --prefix cls`)
 * and checks the probabilities against ONNX Runtime's
 * (OCR_DIR/softmax_0.tmp_0.npy, 1e-4). Then fine-tunes a small MLP
 * (mlp.o, mlp.h: `graft compile model.onnx --train --optimizer adamw
 * --prefix mlp`) for 5 epochs of 20 steps on MLP_DIR/x.npy and y.npy, and
 * reads the trained weights back with mlp_export_weights. Exits 0 when the
 * probabilities agree and the mean loss of the last epoch is below the
 * first's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cls.h"
#include "mlp.h"

/* Reads the data of a NumPy .npy file of at least `bytes` data bytes of
 * descr ("'<f4'", "'<i8'"; C order) into a new buffer; NULL with a message
 * otherwise. */
static void *read_npy(const char *path, const char *descr, size_t bytes) {
    FILE *f = fopen(path, "rb");
    unsigned char head[10];
    if (!f || fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) || head[6] != 1) {
        fprintf(stderr, "aot_example: '%s' is not a version 1 .npy file\n", path);
        if (f) fclose(f);
        return NULL;
    }
    size_t header = head[8] | (size_t)head[9] << 8;
    char text[1024] = {0};
    void *data = malloc(bytes);
    int ok = data && header < sizeof text && fread(text, 1, header, f) == header &&
             strstr(text, descr) && fread(data, 1, bytes, f) == bytes;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "aot_example: '%s' does not hold %zu bytes of %s\n", path, bytes, descr);
        free(data);
        return NULL;
    }
    return data;
}

static int classify(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/input.npy", dir);
    float *x = read_npy(path, "'<f4'", cls_INPUT_BYTES[0]);
    snprintf(path, sizeof path, "%s/softmax_0.tmp_0.npy", dir);
    float *want = read_npy(path, "'<f4'", cls_OUTPUT_BYTES[0]);
    float *probs = malloc(cls_OUTPUT_BYTES[0]);
    int rc = 1;
    if (x && want && probs) {
        const void *inputs[] = {x};
        void *outputs[] = {probs};
        if (cls_run(inputs, outputs) != 0) {
            fprintf(stderr, "aot_example: cls_run: %s\n", cls_last_error());
        } else {
            double worst = 0;
            for (size_t i = 0; i < cls_OUTPUT_BYTES[0] / sizeof(float); i++)
                worst = fmax(worst, fabs((double)probs[i] - want[i]));
            for (int64_t n = 0; n < cls_OUTPUT_SHAPES[0][0]; n++)
                printf("crop %lld: upright %.4f, upside down %.4f\n", (long long)n,
                       probs[2 * n], probs[2 * n + 1]);
            printf("largest difference from ONNX Runtime: %.2g\n", worst);
            rc = worst <= 1e-4 ? 0 : 1;
        }
    }
    free(x);
    free(want);
    free(probs);
    return rc;
}

/* 5 epochs of 20 AdamW steps, batch k = samples [16k, 16k + 16). */
static int fine_tune(const char *dir) {
    enum { STEPS = 20, EPOCHS = 5 };
    char path[4096];
    snprintf(path, sizeof path, "%s/x.npy", dir);
    char *x = read_npy(path, "'<f4'", STEPS * mlp_INPUT_BYTES[0]);
    snprintf(path, sizeof path, "%s/y.npy", dir);
    char *y = read_npy(path, "'<i8'", STEPS * mlp_LABELS_BYTES[0]);
    void *weights[mlp_N_TRAINED] = {0};
    int rc = 1;
    double mean[EPOCHS] = {0};
    for (int i = 0; x && y && i < EPOCHS * STEPS; i++) {
        int k = i % STEPS;
        const void *inputs[] = {x + k * mlp_INPUT_BYTES[0]};
        float loss;
        if (mlp_train_step(inputs, y + k * mlp_LABELS_BYTES[0], 0.01f, &loss) != 0) {
            fprintf(stderr, "aot_example: mlp_train_step: %s\n", mlp_last_error());
            break;
        }
        mean[i / STEPS] += loss / STEPS;
        if (k == STEPS - 1) printf("epoch %d: mean loss %.4f\n", i / STEPS + 1, mean[i / STEPS]);
        rc = i + 1 == EPOCHS * STEPS ? 0 : 1;
    }
    for (int i = 0; i < mlp_N_TRAINED; i++) weights[i] = malloc(mlp_TRAINED_BYTES[i]);
    if (rc == 0 && mlp_export_weights(weights) != 0) {
        fprintf(stderr, "aot_example: mlp_export_weights: %s\n", mlp_last_error());
        rc = 1;
    }
    if (rc == 0)
        printf("trained %s[0] = %.6f\n", mlp_TRAINED_NAMES[0], ((float *)weights[0])[0]);
    for (int i = 0; i < mlp_N_TRAINED; i++) free(weights[i]);
    free(x);
    free(y);
    return rc || !(mean[EPOCHS - 1] < mean[0]);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fputs("usage: aot_example OCR_DIR MLP_DIR\n", stderr);
        return 2;
    }
    int rc = classify(argv[1]);
    return fine_tune(argv[2]) || rc;
}
