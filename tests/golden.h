/* golden.h: test helpers for the PyTorch goldens in tests/data/golden
 * (scripts/make-goldens.py): reading one of their .npy files and importing
 * a golden model. Header-only; include after <cmocka.h>. A failure ends the
 * running CMocka test with the reason. */
#ifndef GRAFT_TESTS_GOLDEN_H
#define GRAFT_TESTS_GOLDEN_H

#include <stdio.h>

#include "frontend/gr_frontend.h"
#include "runtime/gr_runtime.h"

#define GOLDEN GRAFT_SOURCE_DIR "/tests/data/golden"

/* DIR/NAME into t (t->data is the caller's: gr_free). */
static inline void load_npy(const char *dir, const char *name, gr_tensor *t) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gr_status st = {0};
    if (gr_npy_read(path, t, &st) != GR_OK) fail_msg("%s", st.msg);
}

/* GOLDEN/MODEL/model.onnx, imported (the caller frees it). */
static inline gr_graph *import_golden(const char *model) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/model.onnx", GOLDEN, model);
    gr_status st = {0};
    gr_graph *g = NULL;
    if (gr_import_file(path, &g, &st) != GR_OK) fail_msg("%s", st.msg);
    return g;
}

#endif /* GRAFT_TESTS_GOLDEN_H */
