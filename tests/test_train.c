/* test_train.c: training against PyTorch goldens (tests/data/golden, made
 * by scripts/make-goldens.py): the pass pipeline (train, train_mode, loss,
 * autodiff, optimizer) compiled by the JIT runs 20 steps from the same
 * initial weights on the same batches; per-step losses and final weights
 * must match PyTorch's within the tolerances (1e-4 relative for
 * the MLP and the transformer, 1e-3 for the convolutional nets). The lora_*
 * cases add LoRA adapters (the "lora" pass, with the --lora text their
 * config.json gives) before loading init/, which holds the adapters'
 * initial values too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/gr_codegen.h"
#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"
#include "runtime/gr_runtime.h"
#include "tests/golden.h"

typedef struct {
    const char *model, *config;
    double tol;               /* relative, losses and weights */
    gr_optimizer_kind optimizer;
    double lr, momentum, weight_decay, clip_norm, label_smoothing;
    int nesterov;
    const char *train_only;   /* NULL: everything trains */
    int n_class_weights;
    float class_weights[8];
} golden_case;

/* Every init/NAME.npy over the parameter NAME. */
static void apply_init(gr_graph *g, const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy")) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - 4), e->d_name);
        gr_value *v = gr_graph_find(g, name);
        if (!v) fail_msg("init tensor '%s' is not in the model", name);
        gr_tensor t;
        load_npy(dir, e->d_name, &t);
        assert_int_equal(t.nbytes, v->nbytes);
        memcpy(v->data, t.data, t.nbytes);
        gr_free(t.data);
    }
    closedir(d);
}

/* config_dir/config.json as text (at most size - 1 bytes). */
static void read_config(const char *config_dir, char *text, size_t size) {
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", config_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, size - 1, f);
    fclose(f);
    text[n] = '\0';
}

/* The names config.json lists under "frozen_zero_gradient": parameters
 * whose PyTorch gradient is zero up to rounding at every step, frozen in
 * the Adam goldens because Adam turns rounding noise into lr-sized steps
 * (see scripts/make-goldens.py). Returns the count; names are malloc'd. */
static int zero_gradient_names(const char *config_dir, char **names, int max) {
    char text[8192];
    read_config(config_dir, text, sizeof text);
    const char *p = strstr(text, "\"frozen_zero_gradient\"");
    const char *end = p ? strchr(p, ']') : NULL;
    int count = 0;
    if (!p || !end) return 0;
    p = strchr(p + 22, '"');
    while (p && p < end && count < max) {
        const char *q = strchr(p + 1, '"');
        names[count] = calloc(1, (size_t)(q - p));
        memcpy(names[count++], p + 1, (size_t)(q - p - 1));
        p = strchr(q + 1, '"');
    }
    return count;
}

/* config.json's "graft_option" (the --lora text of the lora_* goldens)
 * into out; 0 if there is none. */
static int lora_option(const char *config_dir, char *out, size_t size) {
    char text[8192];
    read_config(config_dir, text, sizeof text);
    const char *p = strstr(text, "\"graft_option\": \"");
    const char *end = p ? strchr(p + 17, '"') : NULL;
    if (!end) return 0;
    snprintf(out, size, "%.*s", (int)(end - p - 17), p + 17);
    return 1;
}

static double rel_err(double got, double want) {
    return fabs(got - want) / fmax(fabs(want), 1e-6);
}

/* Sets the run-time scalars of step t (1-based) by name. */
static void set_scalars(const gr_plan *p, void **inputs, float *scalars, const golden_case *c,
                        int t) {
    for (int i = 0; i < p->n_inputs; i++) {
        const char *name = p->buffers[p->inputs[i]].name;
        float *v = &scalars[i];
        if (!strcmp(name, "graft.lr")) *v = (float)c->lr;
        else if (!strcmp(name, "graft.damp")) *v = 1.0f; /* dampening 0 */
        else if (!strcmp(name, "graft.step_size")) *v = (float)(c->lr / (1.0 - pow(0.9, t)));
        else if (!strcmp(name, "graft.bc2_sqrt")) *v = (float)sqrt(1.0 - pow(0.999, t));
        else if (!strcmp(name, "graft.decay")) *v = (float)(1.0 - c->lr * c->weight_decay);
        else continue;
        inputs[i] = v;
    }
}

static void run_case(const golden_case *c) {
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "%s/%s", GOLDEN, c->model);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    gr_status st = {0};
    gr_graph *g = NULL;
    if (gr_import_file(path, &g, &st) != GR_OK) fail_msg("%s", st.msg);

    gr_train_opts t;
    gr_train_opts_default(&t);
    char config_dir[1100], *frozen[16], option[256];
    snprintf(config_dir, sizeof config_dir, "%s/%s", dir, c->config);
    gr_lora_spec lora = {0};
    if (lora_option(config_dir, option, sizeof option)) {
        if (gr_lora_spec_parse(option, &lora, &st) != GR_OK) fail_msg("%s", st.msg);
        t.n_lora = 1, t.lora = &lora;
    }
    static const char *const adapters[] = {"lora", NULL};
    gr_pass_opts lo = {.train = &t};
    if (gr_passes_run(g, adapters, &lo, &st) != GR_OK) fail_msg("%s", st.msg);
    snprintf(path, sizeof path, "%s/init", dir);
    apply_init(g, path);
    t.optimizer = c->optimizer;
    t.momentum = c->momentum;
    t.weight_decay = c->weight_decay;
    t.nesterov = c->nesterov;
    t.clip_norm = c->clip_norm;
    t.label_smoothing = c->label_smoothing;
    t.n_class_weights = c->n_class_weights;
    t.class_weights = c->class_weights;
    const char *only[1] = {c->train_only};
    if (c->train_only) {
        t.n_train_only = 1;
        t.train_only = only;
    }
    t.n_freeze = zero_gradient_names(config_dir, frozen, 16);
    t.freeze = (const char *const *)frozen;
    gr_pass_opts po = {0};
    po.train = &t;
    static const char *const pipeline[] = {"train", "shapes", "train_mode", "loss", "autodiff",
                                           "optimizer", "cse", "fold", "dce", "fuse", NULL};
    if (gr_passes_run(g, pipeline, &po, &st) != GR_OK) fail_msg("%s/%s: %s", c->model, c->config, st.msg);
    gr_plan *p = NULL;
    gr_codegen_opts co = {0};
    if (gr_codegen_jit(g, &co, &p, &st) != GR_OK) fail_msg("%s", st.msg);
    gr_session *s = NULL;
    assert_int_equal(gr_session_new(p, 1, &s, &st), GR_OK);

    gr_tensor x, y, losses;
    load_npy(dir, "x.npy", &x);
    load_npy(dir, "y.npy", &y);
    snprintf(path, sizeof path, "%s/%s", dir, c->config);
    load_npy(path, "losses.npy", &losses);
    int steps = (int)losses.shape.dims[0];
    int64_t batch = x.shape.dims[0] / steps;
    size_t xrow = x.nbytes / (size_t)x.shape.dims[0];
    void *inputs[16] = {0};
    float scalars[16];
    float loss = 0;
    void *outputs[2] = {&loss, NULL};
    outputs[1] = malloc(p->buffers[p->outputs[1]].nbytes);
    assert_true(p->n_inputs <= 16);
    int label_input = -1;
    for (int i = 0; i < p->n_inputs; i++)
        if (!strcmp(p->buffers[p->inputs[i]].name, GR_TRAIN_LABELS)) label_input = i;
    assert_true(label_input >= 0);
    double worst = 0;
    for (int k = 0; k < steps; k++) {
        inputs[0] = (char *)x.data + (size_t)k * (size_t)batch * xrow;
        inputs[label_input] = (int64_t *)y.data + k * batch;
        set_scalars(p, inputs, scalars, c, k + 1);
        if (gr_session_run(s, inputs, outputs, &st) != GR_OK) fail_msg("%s", st.msg);
        double want = ((float *)losses.data)[k], e = rel_err(loss, want);
        if (e > worst) worst = e;
        if (e > c->tol)
            fail_msg("%s/%s step %d: loss %.8g, PyTorch %.8g (relative error %.2g > %.0e)",
                     c->model, c->config, k, (double)loss, want, e, c->tol);
    }
    /* Final weights. */
    snprintf(path, sizeof path, "%s/%s/final", dir, c->config);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy")) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - 4), e->d_name);
        gr_tensor want;
        load_npy(path, e->d_name, &want);
        int b = gr_plan_find_buffer(p, name);
        const float *got = b >= 0 ? gr_session_state(s, b) : NULL;
        if (!got) { /* frozen: a constant, unchanged by definition */
            gr_free(want.data);
            continue;
        }
        const float *w = want.data;
        double scale = 0;
        for (size_t i = 0; i < want.nbytes / 4; i++) scale = fmax(scale, fabs(w[i]));
        for (size_t i = 0; i < want.nbytes / 4; i++)
            if (fabs(got[i] - w[i]) > c->tol * fmax(scale, 1e-3))
                fail_msg("%s/%s: final %s[%zu] = %.8g, PyTorch %.8g", c->model, c->config, name,
                         i, (double)got[i], (double)w[i]);
        gr_free(want.data);
    }
    closedir(d);
    print_message("%s/%s: %d steps, worst loss error %.2g\n", c->model, c->config, steps, worst);
    for (int i = 0; i < t.n_freeze; i++) free(frozen[i]);
    free((char *)lora.glob);
    free(outputs[1]);
    gr_free(x.data);
    gr_free(y.data);
    gr_free(losses.data);
    gr_session_free(s);
    gr_plan_free(p);
    gr_graph_free(g);
}

#define SGD GR_OPTIMIZER_SGD, 0.05, 0.9, 1e-4
#define ADAMW GR_OPTIMIZER_ADAMW, 1e-3, 0.0, 0.01

static const golden_case cases[] = {
    {"mlp", "sgd_full", 1e-4, SGD, 0, 0, 0, NULL, 0, {0}},
    {"mlp", "adamw_full", 1e-4, ADAMW, 0, 0, 0, NULL, 0, {0}},
    {"mlp", "sgd_frozen", 1e-4, SGD, 0, 0, 0, "fc3.*", 0, {0}},
    {"mlp", "adamw_frozen", 1e-4, ADAMW, 0, 0, 0, "fc3.*", 0, {0}},
    {"mlp", "sgd_nesterov", 1e-4, SGD, 0, 0, 1, NULL, 0, {0}},
    {"mlp", "sgd_clip", 1e-4, SGD, 0.5, 0, 0, NULL, 0, {0}},
    {"mlp", "ce_smooth_weights", 1e-4, SGD, 0, 0.1, 0, NULL, 5, {1, 2, 0.5f, 1, 1.5f}},
    {"cnn", "sgd_full", 1e-3, SGD, 0, 0, 0, NULL, 0, {0}},
    {"cnn", "adamw_full", 1e-3, ADAMW, 0, 0, 0, NULL, 0, {0}},
    {"cnn", "sgd_frozen", 1e-3, SGD, 0, 0, 0, "fc.*", 0, {0}},
    {"cnn", "adamw_frozen", 1e-3, ADAMW, 0, 0, 0, "fc.*", 0, {0}},
    {"mobilenet", "sgd_full", 1e-3, SGD, 0, 0, 0, NULL, 0, {0}},
    {"mobilenet", "adamw_full", 1e-3, ADAMW, 0, 0, 0, NULL, 0, {0}},
    {"mobilenet", "sgd_frozen", 1e-3, SGD, 0, 0, 0, "fc.*", 0, {0}},
    {"mobilenet", "adamw_frozen", 1e-3, ADAMW, 0, 0, 0, "fc.*", 0, {0}},
    {"transformer", "sgd_full", 1e-4, SGD, 0, 0, 0, NULL, 0, {0}},
    {"transformer", "adamw_full", 1e-4, ADAMW, 0, 0, 0, NULL, 0, {0}},
    {"transformer", "sgd_frozen", 1e-4, SGD, 0, 0, 0, "head.*", 0, {0}},
    {"transformer", "adamw_frozen", 1e-4, ADAMW, 0, 0, 0, "head.*", 0, {0}},
    /* LoRA (config.json "graft_option": rank 4, alpha 8 on every Linear). */
    {"lora_mlp", "sgd", 1e-4, SGD, 0, 0, 0, NULL, 0, {0}},
    {"lora_mlp", "adamw", 1e-4, ADAMW, 0, 0, 0, NULL, 0, {0}},
    {"lora_transformer", "sgd", 1e-4, SGD, 0, 0, 0, NULL, 0, {0}},
    {"lora_transformer", "adamw", 1e-4, ADAMW, 0, 0, 0, NULL, 0, {0}},
};

static void test_golden(void **state) { run_case(*state); }

#define N_CASES (sizeof cases / sizeof cases[0])

/* argv[1], if given, selects the cases whose name contains it. */
int main(int argc, char **argv) {
    static char names[N_CASES][96];
    struct CMUnitTest tests[N_CASES];
    int n = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        snprintf(names[i], sizeof names[i], "golden_%s_%s", cases[i].model, cases[i].config);
        if (argc > 1 && !strstr(names[i], argv[1])) continue;
        tests[n++] = (struct CMUnitTest){names[i], test_golden, NULL, NULL, (void *)&cases[i]};
    }
    return _cmocka_run_group_tests("golden", tests, (size_t)n, NULL, NULL);
}
