/* main.c: using models compiled ahead of time by `graft compile` from a
 * plain C program that links only the objects and graft's runtime library
 * (see CMakeLists.txt here for how the objects are made).
 *
 *     aot_example DATA_DIR
 *
 * Classifies the four text-line crops of DATA_DIR/input.npy with the
 * PaddleOCR direction classifier (cls.o, cls.h: `graft compile
 * ch_ppocr_mobile_v2.0_cls_infer.onnx --shape x=4x3x48x192 --prefix cls`)
 * and checks the probabilities against ONNX Runtime's
 * (DATA_DIR/softmax_0.tmp_0.npy, 1e-4). Exits 0 when they agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cls.h"

/* Reads the f32 data of a NumPy .npy file of exactly `bytes` data bytes
 * (little-endian '<f4', C order) into a new buffer; NULL with a message
 * otherwise. */
static float *read_npy_f32(const char *path, size_t bytes) {
    FILE *f = fopen(path, "rb");
    unsigned char head[10];
    if (!f || fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) || head[6] != 1) {
        fprintf(stderr, "aot_example: '%s' is not a version 1 .npy file\n", path);
        if (f) fclose(f);
        return NULL;
    }
    size_t header = head[8] | (size_t)head[9] << 8;
    char text[1024] = {0};
    float *data = malloc(bytes);
    int ok = data && header < sizeof text && fread(text, 1, header, f) == header &&
             strstr(text, "'<f4'") && fread(data, 1, bytes, f) == bytes && fgetc(f) == EOF;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "aot_example: '%s' does not hold %zu bytes of f32\n", path, bytes);
        free(data);
        return NULL;
    }
    return data;
}

static int classify(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/input.npy", dir);
    float *x = read_npy_f32(path, cls_INPUT_BYTES[0]);
    snprintf(path, sizeof path, "%s/softmax_0.tmp_0.npy", dir);
    float *want = read_npy_f32(path, cls_OUTPUT_BYTES[0]);
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

int main(int argc, char **argv) {
    if (argc != 2) {
        fputs("usage: aot_example DATA_DIR\n", stderr);
        return 2;
    }
    return classify(argv[1]);
}
