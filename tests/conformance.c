/* conformance.c: runs ONNX backend test suites through graft.
 *
 *     graft_conformance [--verbose] [--run [--threads N]] [--per-op]
 *                       [--exceptions FILE] SUITE_DIR...
 *
 * A suite dir holds test dirs (model.onnx + test_data_set_N/{input,output}_i.pb)
 * or light_NAME.onnx models with light_NAME_output_0.pb. For each test:
 * import; if every op is supported, fix the input shapes from the test's
 * inputs, infer shapes, and compare every output's dtype and shape with the
 * expected tensor; then export, re-import and compare the graphs (round
 * trip). With --run it also folds, compiles and executes the model on the
 * test's inputs and compares every output value at ONNX's tolerances.
 * Prints passed / failed / unsupported per suite (and per op); exits 1 if any
 * supported test failed that is not a listed exception (FILE: lines of
 * "test_name reason"). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codegen/gr_codegen.h"
#include "frontend/gr_frontend.h"
#include "passes/gr_passes.h"
#include "runtime/gr_runtime.h"
#include "tests/graph_equal.h"

typedef struct {
    int passed, failed, unsupported, excepted;
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

/* ONNX's test generator stores bfloat16 tensors as uint16 (numpy has no
 * bfloat16); ONNX's own runner reinterprets them, and so do we. */
static void reinterpret_bf16(gr_tensor *t, gr_dtype model_dtype) {
    if (model_dtype == GR_DTYPE_BF16 && t->dtype == GR_DTYPE_U16) t->dtype = GR_DTYPE_BF16;
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
        reinterpret_bf16(&expected[i], v->dtype);
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
        snprintf(why, why_size, "round trip: %.1900s", st.msg);
    else
        ok = graph_equal(g, again, why, why_size);
    gr_free(buf);
    gr_graph_free(again);
    return ok;
}

typedef enum { RESULT_PASS, RESULT_FAIL, RESULT_UNSUPPORTED } result;

static void free_tensors(gr_tensor *t, int n) {
    for (int i = 0; i < n; i++) gr_free(t[i].data);
}

/* Reads DIR/PREFIX_0.pb, DIR/PREFIX_1.pb, ...; returns the count, or -1
 * with *code and why set. */
static int read_tensors(const char *dir, const char *prefix, gr_tensor *out, int max,
                        gr_code *code, char *why, size_t why_size) {
    int n = 0;
    for (; n < max; n++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, n);
        if (!file_exists(path)) break;
        gr_status st = {0};
        if (gr_tensor_read_pb(path, &out[n], NULL, &st) != GR_OK) {
            snprintf(why, why_size, "%s", st.msg);
            *code = st.code;
            free_tensors(out, n);
            return -1;
        }
    }
    return n;
}

/* Inputs whose values determine shapes (a Reshape target, Slice bounds,
 * Resize scales, Range limits, axes...), directly or through any chain of
 * nodes: the compiler specialises on them, so they become constants.
 * marks[v->id] is set for every such value. */
static int is_shape_position(const gr_node *n, int j) {
    switch (n->op) {
    case GR_OP_RESHAPE: case GR_OP_EXPAND: case GR_OP_TILE: case GR_OP_SQUEEZE:
    case GR_OP_UNSQUEEZE: case GR_OP_SPLIT: case GR_OP_SLICE: case GR_OP_PAD:
    case GR_OP_RESIZE:
        return j > 0;
    case GR_OP_REDUCE_MEAN: case GR_OP_REDUCE_SUM: case GR_OP_REDUCE_MAX:
    case GR_OP_REDUCE_MIN: case GR_OP_REDUCE_PROD: case GR_OP_REDUCE_L1:
    case GR_OP_REDUCE_L2: case GR_OP_REDUCE_SUM_SQUARE: case GR_OP_REDUCE_LOG_SUM:
    case GR_OP_REDUCE_LOG_SUM_EXP:
        return j == 1;
    case GR_OP_CONSTANT_OF_SHAPE: case GR_OP_RANGE:
        return 1;
    default:
        return 0;
    }
}

static void mark_shape_values(const gr_graph *g, char *marks) {
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const gr_node *n = g->nodes[i];
        int out_marked = 0;
        for (int j = 0; j < n->n_outputs; j++)
            if (n->outputs[j] && marks[n->outputs[j]->id]) out_marked = 1;
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] && (out_marked || is_shape_position(n, j)))
                marks[n->inputs[j]->id] = 1;
    }
}

/* Fixes the inputs from the test data: inputs whose values determine
 * shapes become constants (the compiler specialises on them); the others
 * keep their place with the data's shape. Symbolic dims left over (light
 * models) are taken as 1. given[i] receives the graph input of test input i. */
static gr_code fix_inputs(gr_graph *g, int n_inputs, gr_tensor *inputs, gr_value **given,
                          gr_status *st) {
    gr_input_shape shapes[32];
    gr_pass_opts opts = {0};
    char *marks = calloc((size_t)g->n_values + 1, 1);
    if (!marks) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    mark_shape_values(g, marks);
    if (n_inputs > g->n_inputs) n_inputs = g->n_inputs;
    for (int i = 0; i < n_inputs; i++) given[i] = g->inputs[i];
    for (int i = 0; i < n_inputs; i++) {
        reinterpret_bf16(&inputs[i], given[i]->dtype);
        if (!marks[given[i]->id]) {
            shapes[opts.n_input_shapes].name = given[i]->name;
            shapes[opts.n_input_shapes++].shape = inputs[i].shape;
        } else if (gr_graph_bind_input(g, given[i], &inputs[i], st) != GR_OK) {
            free(marks);
            return st->code;
        }
    }
    free(marks);
    opts.input_shapes = shapes;
    opts.batch = 1;
    static const char *const pipeline[] = {"specialize", "shapes", NULL};
    return gr_passes_run(g, pipeline, &opts, st);
}

static int run_models;  /* --run: compile and execute, compare values */
static int per_op;      /* --per-op: print counts per op type */
static int n_threads = 1;

/* |actual - expected| <= atol + rtol * |expected|, NaN matching NaN: ONNX's
 * backend-test tolerances (rtol 1e-3, atol 1e-7); integers and bools exact. */
static int values_match(const gr_tensor *e, const void *actual, int out, char *why,
                        size_t why_size) {
    int64_t n = gr_shape_numel(&e->shape);
    for (int64_t i = 0; i < n; i++) {
        if (gr_dtype_is_float(e->dtype)) {
            double x = gr_dtype_load_f64(e->dtype, actual, i);
            double y = gr_dtype_load_f64(e->dtype, e->data, i);
            if (isnan(x) && isnan(y)) continue;
            if (isinf(y) && x == y) continue;
            if (fabs(x - y) <= 1e-7 + 1e-3 * fabs(y)) continue;
            snprintf(why, why_size, "output %d element %lld is %.9g, expected %.9g", out,
                     (long long)i, x, y);
            return 0;
        }
        int64_t x = gr_dtype_load_i64(e->dtype, actual, i);
        int64_t y = gr_dtype_load_i64(e->dtype, e->data, i);
        if (x != y) {
            snprintf(why, why_size, "output %d element %lld is %lld, expected %lld", out,
                     (long long)i, (long long)x, (long long)y);
            return 0;
        }
    }
    return 1;
}

/* Light models take arange(n).reshape(shape) / n as input. */
static void *light_input(const gr_value *v) {
    int64_t n = gr_value_numel(v);
    float *data = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; data && i < n; i++) data[i] = (float)i / (float)n;
    return data;
}

/* Compiles g (after folding) and runs it on the test's inputs. */
static result execute(gr_graph *g, int n_in, gr_tensor *inputs, gr_value **given, int n_out,
                      gr_tensor *expected, char *why, size_t why_size) {
    gr_status st = {0};
    static const char *const pipeline[] = {"simplify", "fold_batchnorm", "cse", "fold", "dce",
                                           "fuse", NULL};
    gr_pass_opts opts = {0};
    gr_plan *plan = NULL;
    gr_session *session = NULL;
    void *in_ptrs[32] = {0}, *out_ptrs[32] = {0}, *owned[32] = {0};
    result r = RESULT_FAIL;
    if (gr_passes_run(g, pipeline, &opts, &st) != GR_OK ||
        gr_codegen_jit(g, NULL, &plan, &st) != GR_OK ||
        gr_session_new(plan, n_threads, &session, &st) != GR_OK) {
        snprintf(why, why_size, "%s", st.msg);
        if (st.code == GR_ERR_UNSUPPORTED) r = RESULT_UNSUPPORTED;
        goto done;
    }
    for (int j = 0; j < g->n_inputs && j < 32; j++) {
        for (int i = 0; i < n_in; i++)
            if (given[i] == g->inputs[j]) in_ptrs[j] = inputs[i].data;
        if (!in_ptrs[j]) in_ptrs[j] = owned[j] = light_input(g->inputs[j]);
    }
    for (int i = 0; i < g->n_outputs && i < 32; i++)
        out_ptrs[i] = calloc(1, (size_t)gr_value_numel(g->outputs[i]) *
                                        gr_dtype_size(g->outputs[i]->dtype) + 1);
    if (gr_session_run(session, in_ptrs, out_ptrs, &st) != GR_OK) {
        snprintf(why, why_size, "%s", st.msg);
        goto done;
    }
    r = RESULT_PASS;
    for (int i = 0; i < n_out && r == RESULT_PASS; i++)
        if (!values_match(&expected[i], out_ptrs[i], i, why, why_size)) r = RESULT_FAIL;
done:
    for (int i = 0; i < 32; i++) {
        free(owned[i]);
        free(out_ptrs[i]);
    }
    gr_session_free(session);
    gr_plan_free(plan);
    return r;
}

/* Per-op counts: every op type of a supported test is credited with the
 * test's result. */
typedef struct {
    char name[64];
    int passed, failed, unsupported;
} op_count;
static op_count op_counts[512];
static int n_op_counts;

typedef struct {
    int n;
    const char *types[128]; /* distinct op types, borrowed from the graph */
} op_types;

static void collect_op_types(const gr_graph *g, op_types *o) {
    o->n = 0;
    for (int i = 0; i < g->n_nodes && o->n < 128; i++) {
        int seen = 0;
        for (int j = 0; j < o->n && !seen; j++) seen = !strcmp(o->types[j], g->nodes[i]->op_type);
        if (!seen) o->types[o->n++] = g->nodes[i]->op_type;
    }
}

static void count_ops(const op_types *o, result r) {
    for (int i = 0; i < o->n; i++) {
        const char *t = o->types[i];
        int k = 0;
        while (k < n_op_counts && strcmp(op_counts[k].name, t)) k++;
        if (k == n_op_counts) {
            if (n_op_counts == 512) return;
            snprintf(op_counts[n_op_counts++].name, sizeof op_counts[0].name, "%s", t);
        }
        if (r == RESULT_PASS) op_counts[k].passed++;
        else if (r == RESULT_FAIL) op_counts[k].failed++;
        else op_counts[k].unsupported++;
    }
}

static int by_op_name(const void *a, const void *b) {
    return strcmp(((const op_count *)a)->name, ((const op_count *)b)->name);
}

static void print_op_counts(void) {
    qsort(op_counts, (size_t)n_op_counts, sizeof *op_counts, by_op_name);
    printf("per op (tests using it): passed / failed / unsupported\n");
    for (int i = 0; i < n_op_counts; i++)
        printf("  %-28s %5d %5d %5d\n", op_counts[i].name, op_counts[i].passed,
               op_counts[i].failed, op_counts[i].unsupported);
}

/* One test: import, support check, round trip, then shapes against the
 * expected outputs. Test data is read only for supported models. */
static result run_test(const char *model, const char *data_dir, const char *light_output,
                       char *why, size_t why_size) {
    gr_status st = {0};
    gr_graph *g = NULL;
    gr_tensor inputs[32], expected[32];
    int n_in = 0, n_out = 0;
    gr_code code = GR_OK;
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
    op_types ops_of;
    collect_op_types(g, &ops_of);
    if (!check_round_trip(g, why, why_size)) goto done;
    if (data_dir) {
        n_in = read_tensors(data_dir, "input", inputs, 32, &code, why, why_size);
        if (n_in >= 0) n_out = read_tensors(data_dir, "output", expected, 32, &code, why, why_size);
    } else {
        n_out = gr_tensor_read_pb(light_output, &expected[0], NULL, &st) == GR_OK ? 1 : -1;
        if (n_out < 0) snprintf(why, why_size, "%s", st.msg), code = st.code;
    }
    if (n_in < 0 || n_out < 0) {
        if (code == GR_ERR_UNSUPPORTED) r = RESULT_UNSUPPORTED;
        goto done;
    }
    gr_value *given[32];
    if (fix_inputs(g, n_in, inputs, given, &st) != GR_OK) {
        snprintf(why, why_size, "%s", st.msg);
        if (st.code == GR_ERR_UNSUPPORTED) r = RESULT_UNSUPPORTED;
        goto done;
    }
    if (check_outputs(g, n_out, expected, why, why_size)) r = RESULT_PASS;
    if (r == RESULT_PASS && run_models)
        r = execute(g, n_in, inputs, given, n_out, expected, why, why_size);
    if (run_models) count_ops(&ops_of, r);
done:
    if (n_in > 0) free_tensors(inputs, n_in);
    if (n_out > 0) free_tensors(expected, n_out);
    gr_graph_free(g);
    return r;
}

/* Known exceptions: "test_name reason..." lines; '#' starts a comment. */
typedef struct {
    char name[256];
    char reason[512];
} exception;
static exception exceptions[256];
static int n_exceptions;

static void load_exceptions(const char *path) {
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f) {
        fprintf(stderr, "graft_conformance: cannot read %s\n", path);
        exit(2);
    }
    while (fgets(line, sizeof line, f) && n_exceptions < 256) {
        exception *e = &exceptions[n_exceptions];
        if (line[0] == '#' || sscanf(line, "%255s %511[^\n]", e->name, e->reason) < 1)
            continue;
        n_exceptions++;
    }
    fclose(f);
}

static const char *exception_for(const char *name) {
    for (int i = 0; i < n_exceptions; i++)
        if (!strcmp(exceptions[i].name, name)) return exceptions[i].reason;
    return NULL;
}

static void record(counts *c, const char *name, result r, const char *why) {
    const char *excused = r == RESULT_FAIL ? exception_for(name) : NULL;
    if (excused) {
        c->excepted++;
        printf("EXCEPTION %s: %s (%s)\n", name, excused, why);
        return;
    }
    if (r == RESULT_PASS) c->passed++;
    else if (r == RESULT_FAIL) c->failed++;
    else c->unsupported++;
    if (r == RESULT_FAIL) printf("FAIL %s: %s\n", name, why);
    else if (verbose && r == RESULT_UNSUPPORTED) printf("UNSUPPORTED %s: %s\n", name, why);
    else if (verbose) printf("PASS %s\n", name);
}

static void run_test_dir(const char *dir, const char *name, counts *c) {
    char model[4200], data[4200], why[2048] = "";
    snprintf(model, sizeof model, "%s/model.onnx", dir);
    snprintf(data, sizeof data, "%s/test_data_set_0", dir);
    record(c, name, run_test(model, data, NULL, why, sizeof why), why);
}

static void run_light_model(const char *dir, const char *file, counts *c) {
    char model[4200], out[4200], why[2048] = "";
    snprintf(model, sizeof model, "%s/%s", dir, file);
    snprintf(out, sizeof out, "%s/%.*s_output_0.pb", dir, (int)(strlen(file) - 5), file);
    record(c, file, run_test(model, NULL, out, why, sizeof why), why);
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
    printf("suite %s: %d passed, %d failed, %d unsupported, %d known exceptions (%d tests)\n",
           suite, c.passed, c.failed, c.unsupported, c.excepted,
           c.passed + c.failed + c.unsupported + c.excepted);
    fflush(stdout);
    total->passed += c.passed;
    total->failed += c.failed;
    total->unsupported += c.unsupported;
    total->excepted += c.excepted;
    return 1;
}

int main(int argc, char **argv) {
    counts total = {0};
    int suites = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else if (!strcmp(argv[i], "--exceptions") && i + 1 < argc) load_exceptions(argv[++i]);
        else if (!strcmp(argv[i], "--run")) run_models = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--per-op")) per_op = 1;
        else suites += run_suite(argv[i], &total);
    }
    if (!suites) {
        fprintf(stderr, "graft_conformance: no suite found\n");
        return 2;
    }
    if (per_op) print_op_counts();
    printf("%d passed, %d failed, %d unsupported, %d known exceptions\n", total.passed,
           total.failed, total.unsupported, total.excepted);
    return total.failed != 0;
}
