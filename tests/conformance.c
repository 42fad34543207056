/* conformance.c: runs ONNX backend test suites through graft.
 *
 *     graft_conformance [--verbose] [--expect-light] SUITE_DIR...
 *
 * A suite dir holds test dirs (model.onnx + test_data_set_N/{input,output}_i.pb)
 * or light_NAME.onnx models with light_NAME_output_0.pb. For each test:
 * import; if every op is supported, fix the input shapes from the test's
 * inputs, infer shapes, and compare every output's dtype and shape with the
 * expected tensor; then export, re-import and compare the graphs (round
 * trip). Prints passed / failed / unsupported per suite; exits 1 if any
 * supported test failed. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"
#include "tests/graph_equal.h"

typedef struct {
    int passed, failed, unsupported;
} counts;

static int verbose;

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of dir (gr_malloc'd array of malloc'd names). */
static int list_dir(const char *dir, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 64;
    char **names = malloc(sizeof(char *) * (size_t)cap);
    struct dirent *e;
    while (names && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **p = realloc(names, sizeof(char *) * (size_t)(cap *= 2));
            if (!p) break;
            names = p;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    *out = names;
    return n;
}

static void free_list(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Compares inferred outputs with expected tensors. */
static int check_outputs(const gr_graph *g, int n_expected, gr_tensor *expected,
                         char *why, size_t why_size) {
    if (n_expected > g->n_outputs) {
        snprintf(why, why_size, "%d expected outputs, the model has %d", n_expected,
                 g->n_outputs);
        return 0;
    }
    for (int i = 0; i < n_expected; i++) {
        const gr_value *v = g->outputs[i];
        char a[256], b[256];
        if (v->dtype != expected[i].dtype || !gr_shape_equal(&v->shape, &expected[i].shape)) {
            snprintf(why, why_size, "output %d '%s': inferred %s%s, expected %s%s", i, v->name,
                     gr_dtype_name(v->dtype), gr_shape_str(&v->shape, a, sizeof a),
                     gr_dtype_name(expected[i].dtype),
                     gr_shape_str(&expected[i].shape, b, sizeof b));
            return 0;
        }
    }
    return 1;
}

/* Import -> export -> import gives the same graph. */
static int check_round_trip(const gr_graph *g, char *why, size_t why_size) {
    gr_status st = {0};
    void *buf = NULL;
    size_t len = 0;
    gr_graph *again = NULL;
    int ok = 0;
    if (gr_export_buffer(g, &buf, &len, &st) != GR_OK ||
        gr_import_buffer(buf, len, NULL, "exported model", &again, &st) != GR_OK)
        snprintf(why, why_size, "round trip: %s", st.msg);
    else
        ok = graph_equal(g, again, why, why_size);
    gr_free(buf);
    gr_graph_free(again);
    return ok;
}

typedef enum { RESULT_PASS, RESULT_FAIL, RESULT_UNSUPPORTED } result;

/* One test: model file, the shapes of its inputs, expected outputs. */
static result run_test(const char *model, int n_inputs, gr_tensor *inputs, int n_expected,
                       gr_tensor *expected, char *why, size_t why_size) {
    gr_status st = {0};
    gr_graph *g = NULL, *orig = NULL;
    result r = RESULT_FAIL;
    if (gr_import_file(model, &g, &st) != GR_OK) {
        snprintf(why, why_size, "%s", st.msg);
        return st.code == GR_ERR_UNSUPPORTED ? RESULT_UNSUPPORTED : RESULT_FAIL;
    }
    if (gr_graph_check_supported(g, &st) != GR_OK) {
        snprintf(why, why_size, "%s", st.msg);
        gr_graph_free(g);
        return RESULT_UNSUPPORTED;
    }
    /* Round trip on the graph as imported. */
    if (!check_round_trip(g, why, why_size)) goto done;
    gr_input_shape shapes[32];
    gr_pass_opts opts = {0};
    if (n_inputs > g->n_inputs) n_inputs = g->n_inputs;
    for (int i = 0; i < n_inputs && i < 32; i++) {
        shapes[i].name = g->inputs[i]->name;
        shapes[i].shape = inputs[i].shape;
    }
    opts.n_input_shapes = n_inputs < 32 ? n_inputs : 32;
    opts.input_shapes = shapes;
    opts.batch = 1; /* remaining symbolic batch dims (light models) */
    static const char *const pipeline[] = {"specialize", "shapes", NULL};
    if (gr_passes_run(g, pipeline, &opts, &st) != GR_OK) {
        snprintf(why, why_size, "%s", st.msg);
        r = st.code == GR_ERR_UNSUPPORTED ? RESULT_UNSUPPORTED : RESULT_FAIL;
        goto done;
    }
    if (check_outputs(g, n_expected, expected, why, why_size)) r = RESULT_PASS;
done:
    gr_graph_free(g);
    gr_graph_free(orig);
    return r;
}

static void free_tensors(gr_tensor *t, int n) {
    for (int i = 0; i < n; i++) gr_free(t[i].data);
}

/* Reads DIR/PREFIX_0.pb, DIR/PREFIX_1.pb, ... */
static int read_tensors(const char *dir, const char *prefix, gr_tensor *out, int max,
                        char *why, size_t why_size) {
    int n = 0;
    for (; n < max; n++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, n);
        if (!file_exists(path)) break;
        gr_status st = {0};
        if (gr_tensor_read_pb(path, &out[n], NULL, &st) != GR_OK) {
            snprintf(why, why_size, "%s", st.msg);
            free_tensors(out, n);
            return -1;
        }
    }
    return n;
}

static void record(counts *c, const char *name, result r, const char *why) {
    if (r == RESULT_PASS) c->passed++;
    else if (r == RESULT_FAIL) c->failed++;
    else c->unsupported++;
    if (r == RESULT_FAIL) printf("FAIL %s: %s\n", name, why);
    else if (verbose && r == RESULT_UNSUPPORTED) printf("UNSUPPORTED %s: %s\n", name, why);
    else if (verbose) printf("PASS %s\n", name);
}

static void run_test_dir(const char *dir, const char *name, counts *c) {
    char model[4096], data[4096], why[2048] = "";
    snprintf(model, sizeof model, "%s/model.onnx", dir);
    snprintf(data, sizeof data, "%s/test_data_set_0", dir);
    gr_tensor inputs[32], expected[32];
    int n_in = read_tensors(data, "input", inputs, 32, why, sizeof why);
    int n_out = n_in < 0 ? -1 : read_tensors(data, "output", expected, 32, why, sizeof why);
    result r;
    if (n_in < 0 || n_out < 0) {
        r = strstr(why, "unsupported") ? RESULT_UNSUPPORTED : RESULT_FAIL;
    } else {
        r = run_test(model, n_in, inputs, n_out, expected, why, sizeof why);
    }
    if (n_in > 0) free_tensors(inputs, n_in);
    if (n_out > 0) free_tensors(expected, n_out);
    record(c, name, r, why);
}

static void run_light_model(const char *dir, const char *file, counts *c) {
    char model[4096], out[4096], why[2048] = "";
    snprintf(model, sizeof model, "%s/%s", dir, file);
    snprintf(out, sizeof out, "%s/%.*s_output_0.pb", dir, (int)(strlen(file) - 5), file);
    gr_tensor expected[1];
    gr_status st = {0};
    result r;
    if (gr_tensor_read_pb(out, &expected[0], NULL, &st) != GR_OK) {
        snprintf(why, sizeof why, "%s", st.msg);
        r = RESULT_FAIL;
    } else {
        r = run_test(model, 0, NULL, 1, expected, why, sizeof why);
        gr_free(expected[0].data);
    }
    record(c, file, r, why);
}

static int run_suite(const char *suite, counts *total) {
    char **names;
    int n = list_dir(suite, &names);
    if (n < 0) {
        printf("skip %s: not found\n", suite);
        return 0;
    }
    counts c = {0};
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", suite, names[i]);
        size_t len = strlen(names[i]);
        char model[4200];
        snprintf(model, sizeof model, "%s/model.onnx", path);
        if (file_exists(model)) run_test_dir(path, names[i], &c);
        else if (len > 5 && !strcmp(names[i] + len - 5, ".onnx")) run_light_model(suite, names[i], &c);
    }
    free_list(names, n);
    printf("suite %s: %d passed, %d failed, %d unsupported (%d tests)\n", suite, c.passed,
           c.failed, c.unsupported, c.passed + c.failed + c.unsupported);
    fflush(stdout);
    total->passed += c.passed;
    total->failed += c.failed;
    total->unsupported += c.unsupported;
    return 1;
}

int main(int argc, char **argv) {
    counts total = {0};
    int suites = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else suites += run_suite(argv[i], &total);
    }
    if (!suites) {
        fprintf(stderr, "graft_conformance: no suite found\n");
        return 2;
    }
    printf("%d passed, %d failed, %d unsupported\n", total.passed, total.failed,
           total.unsupported);
    return total.failed != 0;
}
