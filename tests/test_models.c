/* test_models.c: whole models through the whole pipeline (import, passes,
 * JIT, runtime) against references graft did not compute: the PaddleOCR
 * text-direction classifier on crops of a scanned page against ONNX Runtime
 * 1.30's outputs (tests/data/ocr_cls, made by scripts/ort-run.js), at 1 and
 * 2 threads, and bit-identical repeated runs. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "codegen/gr_codegen.h"
#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"
#include "runtime/gr_runtime.h"

#define OCR_MODEL GRAFT_SOURCE_DIR "/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
#define OCR_DATA GRAFT_TEST_SOURCE "/data/ocr_cls"

typedef struct {
    gr_graph *g;
    gr_plan *plan;
} compiled;

static void compile_model(const char *path, const gr_tensor *input, compiled *c) {
    gr_status st = {0};
    c->g = NULL;
    c->plan = NULL;
    if (gr_import_file(path, &c->g, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_input_shape shape = {c->g->inputs[0]->name, input->shape};
    gr_pass_opts opts = {.n_input_shapes = 1, .input_shapes = &shape};
    static const char *const pipeline[] = {"specialize", "shapes", "simplify", "fold_batchnorm",
                                       "cse", "fold", "dce", "fuse", NULL};
    if (gr_passes_run(c->g, pipeline, &opts, &st) != GR_OK) fail_msg("%s", st.msg);
    if (gr_codegen_jit(c->g, NULL, &c->plan, &st) != GR_OK) fail_msg("%s", st.msg);
}

static float *run_once(const compiled *c, const gr_tensor *input, int threads) {
    gr_status st = {0};
    gr_session *s = NULL;
    size_t bytes = (size_t)gr_value_numel(c->g->outputs[0]) * sizeof(float);
    float *out = malloc(bytes);
    void *in_ptrs[1] = {input->data}, *out_ptrs[1] = {out};
    if (gr_session_new(c->plan, threads, &s, &st) != GR_OK ||
        gr_session_run(s, in_ptrs, out_ptrs, &st) != GR_OK)
        fail_msg("%s", st.msg);
    gr_session_free(s);
    return out;
}

static void test_ocr_classifier_matches_onnx_runtime(void **state) {
    (void)state;
    if (access(OCR_MODEL, R_OK) != 0) {
        print_message("model missing (run scripts/fetch-models.sh): %s\n", OCR_MODEL);
        fail();
    }
    gr_status st = {0};
    gr_tensor input, expected;
    assert_int_equal(gr_npy_read(OCR_DATA "/input.npy", &input, &st), GR_OK);
    assert_int_equal(gr_npy_read(OCR_DATA "/softmax_0.tmp_0.npy", &expected, &st), GR_OK);
    compiled c;
    compile_model(OCR_MODEL, &input, &c);
    int64_t n = gr_shape_numel(&expected.shape);
    assert_int_equal(n, gr_value_numel(c.g->outputs[0]));
    for (int threads = 1; threads <= 2; threads++) {
        float *a = run_once(&c, &input, threads), *b = run_once(&c, &input, threads);
        const float *e = expected.data;
        double worst = 0;
        for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - e[i]));
        print_message("threads %d: max |graft - onnxruntime| = %.3g\n", threads, worst);
        assert_true(worst <= 1e-4);
        assert_memory_equal(a, b, (size_t)n * sizeof(float)); /* deterministic */
        free(a);
        free(b);
    }
    gr_plan_free(c.plan);
    gr_graph_free(c.g);
    gr_free(input.data);
    gr_free(expected.data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ocr_classifier_matches_onnx_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL) != 0;
}
