/* run.c: `graft run MODEL --input NAME=FILE ...`. Imports the model (and
 * merges --adapter LoRA adapters into it), reads the input tensors (.npy,
 * or ONNX TensorProto .pb), specialises the model to their shapes, compiles
 * it with the JIT, runs it and writes every output to DIR/<name>.npy.
 * Inputs are checked against the model before anything is compiled;
 * outputs keep their dtype. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codegen/gr_codegen.h"
#include "frontend/gr_frontend.h"
#include "runtime/gr_runtime.h"
#include "tools/cli.h"

static const char help[] =
    "usage: graft run MODEL.onnx [--input NAME=FILE]... [--output-dir DIR]\n"
    "                 [--batch N] [--shape NAME=DIMS]... [--threads N] [--bench N]\n"
    "                 [--verbose] [--dump-after PASS|all] [--adapter DIR]\n"
    "\n"
    "Compile an ONNX model for this CPU and run it on the given inputs. Each\n"
    "input file is a NumPy .npy file or an ONNX TensorProto .pb file (as in the\n"
    "ONNX test data); the model is specialised to the files' shapes. Every\n"
    "output is written to DIR/<name>.npy with its dtype (characters outside\n"
    "[A-Za-z0-9._-] in names become '_').\n"
    "\n"
    "options:\n"
    "  --input NAME=FILE  the tensor for model input NAME (repeatable); a model\n"
    "                     with one input also takes --input FILE, and a .pb file\n"
    "                     that names a model input needs no NAME=\n"
    "  --output-dir DIR   where outputs go (default: the current directory;\n"
    "                     created if missing)\n"
    "  --batch N          fix the first dim of inputs whose first dim is dynamic\n"
    "  --shape NAME=DIMS  fix the shape of input NAME, e.g. x=1x3x32x32\n"
    "  --threads N        OpenMP threads (default: all cores)\n"
    "  --bench N          after one warm-up run, run N more times and print the\n"
    "                     median and minimum latency\n"
    "  --verbose          print pass, compile and run timings, kernel count and\n"
    "                     memory (arena bytes with and without in-place buffers)\n"
    "                     to stderr\n"
    "  --dump-after PASS  print the graph after pass PASS ('all': every pass)\n"
    "  --adapter DIR      apply the LoRA adapters `graft train --save-adapters DIR`\n"
    "                     wrote (merged into the model's weights before compiling)\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit status: 0 success, 1 unreadable or invalid model or input file,\n"
    "unsupported ops, or unwritable output, 2 bad command line.\n";

const char *const cli_infer_pipeline[] = {"specialize", "shapes", "simplify",
                                          "fold_batchnorm", "cse", "fold", "dce", "fuse",
                                          NULL};
#define pipeline cli_infer_pipeline

typedef struct {
    const char *model, *output_dir;
    const char *adapter;   /* --adapter DIR */
    int n_inputs;
    const char **inputs;   /* --input texts, borrowed from argv */
    int64_t threads, bench;
    int verbose;
    gr_pass_opts opts;     /* --batch, --shape, --dump-after */
} run_args;

/* One input file and the model input it feeds. */
typedef struct {
    const char *arg;       /* as given to --input */
    const char *path;      /* the file part */
    char *name;            /* model input name (a copy: graphs come and go) */
    int bound;             /* made a constant of the graph */
    gr_tensor t;
} input_file;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------ command line */

static int parse_value_option(int argc, char **argv, int *i, run_args *a, int *rc) {
    const char *value;
    int m;
    if ((m = cli_option(argc, argv, i, "--input", &value)) > 0) {
        a->inputs[a->n_inputs++] = value;
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--output-dir", &value)) > 0) {
        a->output_dir = value;
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--dump-after", &value)) > 0) {
        if (strcmp(value, "all") && !gr_pass_find(value))
            *rc = cli_usage_error("run", "--dump-after: no pass '%s'", value);
        a->opts.dump_after = value;
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--batch", &value)) > 0) {
        *rc = cli_parse_positive("run", "--batch", value, &a->opts.batch);
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--threads", &value)) > 0) {
        *rc = cli_parse_positive("run", "--threads", value, &a->threads);
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--bench", &value)) > 0) {
        *rc = cli_parse_positive("run", "--bench", value, &a->bench);
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--adapter", &value)) > 0) {
        a->adapter = value;
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--shape", &value)) > 0) {
        *rc = cli_add_shape("run", value, &a->opts);
    }
    if (m < 0) *rc = cli_usage_error("run", "%s needs a value", argv[*i]);
    return m != 0;
}

/* Returns -1 to go on, else the exit status (after --help: EXIT_OK). */
static int parse_args(int argc, char **argv, run_args *a) {
    a->inputs = calloc((size_t)argc, sizeof *a->inputs);
    if (!a->inputs) {
        fputs("graft: error: out of memory\n", stderr);
        return EXIT_ERROR;
    }
    for (int i = 1; i < argc;) {
        int rc = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--verbose")) {
            a->verbose = 1, i++;
        } else if (parse_value_option(argc, argv, &i, a, &rc)) {
            if (rc) return rc;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("run", "unknown option '%s'", argv[i]);
        } else if (a->model) {
            return cli_usage_error("run", "more than one model given ('%s', '%s')", a->model,
                                   argv[i]);
        } else {
            a->model = argv[i++];
        }
    }
    if (!a->model) return cli_usage_error("run", "no model given");
    if (a->threads > 4096) return cli_usage_error("run", "--threads: at most 4096");
    if (!a->output_dir) a->output_dir = ".";
    return -1;
}

/* ------------------------------------------------------------------ inputs */

/* "'x', 'y'" into buf. */
static const char *input_list(const gr_graph *g, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < g->n_inputs && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s'%s'", i ? ", " : "",
                                 g->inputs[i]->name);
    return g->n_inputs ? buf : "none";
}

static gr_value *model_input(const gr_graph *g, const char *name) {
    for (int i = 0; name && i < g->n_inputs; i++)
        if (!strcmp(g->inputs[i]->name, name)) return g->inputs[i];
    return NULL;
}

/* .npy by its magic, anything else as a TensorProto. */
static gr_code read_tensor(const char *path, gr_tensor *t, char **pb_name, gr_status *st) {
    unsigned char head[6] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return gr_fail(st, GR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (gr_npy_is_npy(head, n)) return gr_npy_read(path, t, st);
    return gr_tensor_read_pb(path, t, pb_name, st);
}

/* Splits "NAME=FILE" when NAME is a model input, else takes the whole text
 * as the file; reads it and decides which input it feeds: the named one,
 * the one a .pb file names, or the model's only input. */
static gr_code load_input(const gr_graph *g, input_file *in, gr_status *st) {
    char list[1024], name[256];
    const gr_value *named = NULL;
    const char *eq = strchr(in->arg, '=');
    if (eq) {
        size_t len = (size_t)(eq - in->arg);
        if (len < sizeof name) {
            memcpy(name, in->arg, len);
            name[len] = '\0';
            named = model_input(g, name);
        }
        struct stat sb;
        if (!named && stat(in->arg, &sb))
            return gr_fail(st, GR_ERR_BAD_ARG,
                           "--input %s: the model has no input '%.*s' (inputs: %s)", in->arg,
                           (int)len, in->arg, input_list(g, list, sizeof list));
    }
    in->path = named ? eq + 1 : in->arg;
    char *pb_name = NULL;
    GR_TRY(read_tensor(in->path, &in->t, &pb_name, st));
    const gr_value *by_pb = model_input(g, pb_name);
    gr_free(pb_name);
    const gr_value *v = named ? named : by_pb ? by_pb : g->n_inputs == 1 ? g->inputs[0] : NULL;
    if (!v)
        return gr_fail(st, GR_ERR_BAD_ARG,
                       "--input %s: say which input it feeds with NAME=FILE (the model has "
                       "%d inputs: %s)", in->arg, g->n_inputs, input_list(g, list, sizeof list));
    return (in->name = strdup(v->name)) ? GR_OK : gr_fail(st, GR_ERR_NOMEM, "out of memory");
}

/* Every file read and matched; each model input fed exactly once. */
static gr_code load_inputs(const gr_graph *g, input_file *files, int n, gr_status *st) {
    for (int i = 0; i < n; i++) {
        GR_TRY(load_input(g, &files[i], st));
        for (int j = 0; j < i; j++)
            if (!strcmp(files[j].name, files[i].name))
                return gr_fail(st, GR_ERR_BAD_ARG, "input '%s' is given twice ('%s', '%s')",
                               files[i].name, files[j].path, files[i].path);
    }
    char missing[1024];
    size_t used = 0;
    int n_missing = 0;
    missing[0] = '\0';
    for (int i = 0; i < g->n_inputs; i++) {
        int found = 0;
        for (int j = 0; j < n && !found; j++) found = !strcmp(files[j].name, g->inputs[i]->name);
        if (!found && used < sizeof missing)
            used += (size_t)snprintf(missing + used, sizeof missing - used, "%s'%s'",
                                     n_missing++ ? ", " : "", g->inputs[i]->name);
    }
    if (n_missing)
        return gr_fail(st, GR_ERR_BAD_ARG, "missing input%s %s (give %s with --input NAME=FILE)",
                       n_missing > 1 ? "s" : "", missing, n_missing > 1 ? "them" : "it");
    return GR_OK;
}

static const input_file *file_for(const input_file *files, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(files[i].name, name)) return &files[i];
    return NULL;
}

/* The file's dtype, rank and every dim the model fixes must agree. */
static gr_code check_input(const gr_value *v, const input_file *in, gr_status *st) {
    const gr_shape *m = &v->shape, *f = &in->t.shape;
    int ok = v->dtype == in->t.dtype && (m->rank < 0 || m->rank == f->rank);
    for (int d = 0; ok && m->rank >= 0 && d < m->rank; d++)
        ok = m->dims[d] < 0 || m->dims[d] == f->dims[d];
    if (ok) return GR_OK;
    char want[256], have[256];
    return gr_fail(st, GR_ERR_BAD_MODEL, "input '%s': the model expects %s%s, file '%s' holds %s%s",
                   v->name, v->dtype ? gr_dtype_name(v->dtype) : "?",
                   gr_shape_str(m, want, sizeof want), in->path, gr_dtype_name(in->t.dtype),
                   gr_shape_str(f, have, sizeof have));
}

/* --shape entries for specialize: the user's, with each unbound file's
 * shape for its input (specialising the model to the data); a --shape for
 * an input that comes from a file must agree with it. *out is malloc'd. */
static gr_code file_shapes(const gr_pass_opts *user, const input_file *files, int n,
                           gr_input_shape **out, int *n_out, gr_status *st) {
    gr_input_shape *shapes = malloc(sizeof *shapes * (size_t)(user->n_input_shapes + n + 1));
    if (!shapes) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    *out = shapes;
    *n_out = 0;
    for (int j = 0; j < user->n_input_shapes; j++) {
        const input_file *in = file_for(files, n, user->input_shapes[j].name);
        const gr_shape *given = &user->input_shapes[j].shape, *f = in ? &in->t.shape : NULL;
        int ok = !in || given->rank == f->rank;
        for (int d = 0; ok && in && d < f->rank; d++)
            ok = given->dims[d] < 0 || given->dims[d] == f->dims[d];
        char a[256], b[256];
        if (!ok)
            return gr_fail(st, GR_ERR_BAD_ARG, "--shape for input '%s' is %s, but its file "
                           "'%s' holds %s%s", in->name, gr_shape_str(given, a, sizeof a),
                           in->path, gr_dtype_name(in->t.dtype), gr_shape_str(f, b, sizeof b));
        if (!in) shapes[(*n_out)++] = user->input_shapes[j];
    }
    for (int i = 0; i < n; i++) {
        if (files[i].bound) continue;
        shapes[*n_out].name = files[i].name;
        shapes[(*n_out)++].shape = gr_shape_make(files[i].t.shape.rank, files[i].t.shape.dims);
    }
    return GR_OK;
}

/* After specialisation every input must be exactly its file's tensor. */
static gr_code check_specialised(const gr_graph *g, const input_file *files, int n,
                                 gr_status *st) {
    for (int i = 0; i < g->n_inputs; i++) {
        const gr_value *v = g->inputs[i];
        const input_file *in = file_for(files, n, v->name);
        if (!in) return gr_fail(st, GR_ERR_INTERNAL, "input '%s' has no file", v->name);
        GR_TRY(check_input(v, in, st));
        char buf[256];
        if (!gr_shape_is_static(&v->shape))
            return gr_fail(st, GR_ERR_BAD_MODEL, "input '%s': shape %s is not static after "
                           "specialisation", v->name, gr_shape_str(&v->shape, buf, sizeof buf));
    }
    return GR_OK;
}

/* ----------------------------------------------------------------- passes */

/* The pipeline one pass at a time, so --verbose can time each. */
static gr_code run_passes(gr_graph *g, const gr_pass_opts *opts, int verbose,
                          gr_status *st) {
    for (int i = 0; pipeline[i]; i++) {
        const char *const one[] = {pipeline[i], NULL};
        double t0 = now_ms();
        GR_TRY(gr_passes_run(g, one, opts, st));
        if (verbose)
            fprintf(stderr, "graft: pass %-10s %9.2f ms (%d nodes)\n", pipeline[i],
                    now_ms() - t0, g->n_nodes);
    }
    return GR_OK;
}

/* ----------------------------------------------------------------- outputs */

/* mkdir -p, then checks that files can be created there. */
static gr_code make_output_dir(const char *dir, gr_status *st) {
    char path[4096];
    size_t len = strlen(dir);
    if (len >= sizeof path)
        return gr_fail(st, GR_ERR_BAD_ARG, "--output-dir: path too long");
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) && errno != EEXIST)
            return gr_fail(st, GR_ERR_IO, "cannot create output directory '%s': %s", path,
                           strerror(errno));
        path[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        return gr_fail(st, GR_ERR_IO, "output directory '%s' is not a directory", dir);
    if (access(dir, W_OK | X_OK))
        return gr_fail(st, GR_ERR_IO, "cannot write to output directory '%s': %s", dir,
                       strerror(errno));
    return GR_OK;
}

/* DIR/<name>.npy with [A-Za-z0-9._-] kept and everything else '_'; a name
 * already taken by an earlier output gets "_<index>". */
static char *output_path(const char *dir, const char *name, int index, char **taken) {
    size_t len = strlen(name), size = len + 32;
    char *file = malloc(size);
    if (!file) return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        file[i] = keep ? c : '_';
    }
    file[len] = '\0';
    if (!len) snprintf(file, size, "output_%d", index);
    for (int j = 0; j < index; j++)
        if (taken[j] && !strcmp(taken[j], file)) {
            size_t used = strlen(file);
            snprintf(file + used, size - used, "_%d", index);
            break;
        }
    taken[index] = file;
    size_t path_size = strlen(dir) + strlen(file) + 6;
    char *path = malloc(path_size);
    if (path) snprintf(path, path_size, "%s/%s.npy", dir, file);
    return path;
}

static gr_code write_outputs(const gr_plan *plan, const gr_graph *g, void **outputs,
                             const char *dir, gr_status *st) {
    char **taken = calloc((size_t)plan->n_outputs + 1, sizeof *taken);
    gr_code code = taken ? GR_OK : gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; code == GR_OK && i < plan->n_outputs; i++) {
        const gr_buffer *b = &plan->buffers[plan->outputs[i]];
        const char *name = b->name ? b->name : g->outputs[i]->name;
        char *path = output_path(dir, name, i, taken);
        gr_tensor t = {b->dtype, b->shape, outputs[i], b->nbytes};
        if (!path) code = gr_fail(st, GR_ERR_NOMEM, "out of memory");
        else if ((code = gr_npy_write(path, &t, st)) != GR_OK)
            gr_status_prefix(st, "output '%s': ", name);
        char shape[256];
        if (code == GR_OK)
            printf("%s: %s%s -> %s\n", name, gr_dtype_name(b->dtype),
                   gr_shape_str(&b->shape, shape, sizeof shape), path);
        free(path);
    }
    for (int i = 0; taken && i < plan->n_outputs; i++) free(taken[i]);
    free(taken);
    return code;
}

/* --------------------------------------------------------------- execution */

/* inputs[i]: the file of the graph's i-th input; outputs[i]: fresh memory. */
static gr_code bind_buffers(const gr_plan *plan, const gr_graph *g, const input_file *files,
                            int n, void **inputs, void **outputs, gr_status *st) {
    if (plan->n_inputs != g->n_inputs || plan->n_outputs != g->n_outputs)
        return gr_fail(st, GR_ERR_INTERNAL, "the plan has %d inputs and %d outputs, the "
                       "model %d and %d", plan->n_inputs, plan->n_outputs, g->n_inputs,
                       g->n_outputs);
    for (int i = 0; i < plan->n_inputs; i++) {
        const gr_buffer *b = &plan->buffers[plan->inputs[i]];
        const input_file *in = file_for(files, n, g->inputs[i]->name);
        if (!in || in->t.nbytes != b->nbytes)
            return gr_fail(st, GR_ERR_INTERNAL, "input '%s': the plan expects %zu bytes",
                           g->inputs[i]->name, b->nbytes);
        inputs[i] = in->t.data;
    }
    for (int i = 0; i < plan->n_outputs; i++) {
        size_t nbytes = plan->buffers[plan->outputs[i]].nbytes;
        if (!(outputs[i] = gr_calloc(1, nbytes ? nbytes : 1)))
            return gr_fail(st, GR_ERR_NOMEM, "out of memory for output %d (%zu bytes)", i,
                           nbytes);
    }
    return GR_OK;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static gr_code bench(gr_session *s, void **inputs, void **outputs, int64_t n, gr_status *st) {
    double *ms = malloc(sizeof *ms * (size_t)n);
    if (!ms) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_code code = GR_OK;
    for (int64_t i = 0; code == GR_OK && i < n; i++) {
        double t0 = now_ms();
        code = gr_session_run(s, inputs, outputs, st);
        ms[i] = now_ms() - t0;
    }
    if (code == GR_OK) {
        qsort(ms, (size_t)n, sizeof *ms, compare_double);
        double median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
        int threads = gr_session_threads(s);
        printf("bench: %lld runs on %d thread%s, median %.3f ms, min %.3f ms\n", (long long)n,
               threads, threads == 1 ? "" : "s", median, ms[0]);
    }
    free(ms);
    return code;
}

/* The slowest steps, averaged over the profiled runs. */
static void print_profile(const gr_plan *plan, const gr_session *s) {
    int64_t runs = 0;
    const double *ms = gr_session_step_ms(s, &runs);
    if (!runs || !plan->n_steps) return;
    int *order = malloc(sizeof *order * (size_t)plan->n_steps);
    if (!order) return;
    for (int i = 0; i < plan->n_steps; i++) order[i] = i;
    for (int i = 1; i < plan->n_steps; i++) /* insertion sort by time, descending */
        for (int j = i; j > 0 && ms[order[j]] > ms[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    fprintf(stderr, "graft: slowest kernels (mean of %lld runs):\n", (long long)runs);
    for (int i = 0; i < plan->n_steps && i < 10; i++)
        fprintf(stderr, "  %-40s %9.3f ms  %lld tasks\n",
                plan->steps[order[i]].name ? plan->steps[order[i]].name : "?",
                ms[order[i]] / (double)runs, (long long)plan->steps[order[i]].n_tasks);
    free(order);
}

/* One run (also the warm-up), --bench runs, then the outputs. */
static gr_code execute(const gr_plan *plan, const run_args *a, const gr_graph *g,
                       const input_file *files, int n, gr_status *st) {
    void **inputs = calloc((size_t)plan->n_inputs + 1, sizeof *inputs);
    void **outputs = calloc((size_t)plan->n_outputs + 1, sizeof *outputs);
    gr_session *s = NULL;
    gr_code code = inputs && outputs ? GR_OK : gr_fail(st, GR_ERR_NOMEM, "out of memory");
    if (code == GR_OK) code = bind_buffers(plan, g, files, n, inputs, outputs, st);
    if (code == GR_OK) code = gr_session_new(plan, (int)a->threads, &s, st);
    if (code == GR_OK && a->verbose)
        fprintf(stderr, "graft: codegen: %d kernels in %.1f ms; arena %zu bytes (%zu without "
                "in-place buffers), constants %zu bytes; %d threads\n", plan->n_steps,
                plan->compile_ms, plan->arena_bytes, plan->arena_separate, plan->const_bytes,
                gr_session_threads(s));
    gr_session_profile(s, a->verbose);
    double t0 = now_ms();
    if (code == GR_OK) code = gr_session_run(s, inputs, outputs, st);
    if (code == GR_OK && a->verbose) fprintf(stderr, "graft: run: %.3f ms\n", now_ms() - t0);
    if (code == GR_OK && a->bench) code = bench(s, inputs, outputs, a->bench, st);
    if (code == GR_OK && a->verbose) print_profile(plan, s);
    if (code == GR_OK) code = write_outputs(plan, g, outputs, a->output_dir, st);
    for (int i = 0; outputs && i < plan->n_outputs; i++) gr_free(outputs[i]);
    free(inputs);
    free(outputs);
    gr_session_free(s);
    return code;
}

/* ---------------------------------------------------------------- pipeline */

static int graph_is_static(const gr_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_outputs; j++) {
            const gr_value *v = g->nodes[i]->outputs[j];
            if (v && (!v->dtype || !gr_shape_is_static(&v->shape))) return 0;
        }
    return 1;
}

/* Specialises g to the files: with bind_ints, integer and bool inputs
 * (shapes, axes, indices) become constants first. */
static gr_code specialise(gr_graph *g, const run_args *a, input_file *files, int n,
                          int bind_ints, gr_status *st) {
    for (int i = 0; i < n; i++) {
        gr_value *v = model_input(g, files[i].name);
        GR_TRY(check_input(v, &files[i], st));
        files[i].bound = bind_ints && !gr_dtype_is_float(files[i].t.dtype);
        if (files[i].bound) GR_TRY(gr_graph_bind_input(g, v, &files[i].t, st));
    }
    gr_pass_opts opts = a->opts;
    gr_input_shape *shapes = NULL;
    gr_code code = file_shapes(&a->opts, files, n, &shapes, &opts.n_input_shapes, st);
    opts.input_shapes = shapes;
    if (code == GR_OK) code = run_passes(g, &opts, a->verbose, st);
    free(shapes);
    if (code == GR_OK) code = check_specialised(g, files, n, st);
    return code;
}

static int has_int_inputs(const input_file *files, int n) {
    for (int i = 0; i < n; i++)
        if (!gr_dtype_is_float(files[i].t.dtype)) return 1;
    return 0;
}

/* --adapter DIR: the adapters adapters.json lists are inserted ("lora"),
 * loaded from DIR's .npy files (names, dtypes and shapes must match) and
 * merged into their weights ("lora_merge"). */
static gr_code apply_adapters(gr_graph *g, const char *dir, gr_status *st) {
    char *json = NULL;
    gr_lora_spec *specs = NULL;
    int n_specs = 0, n_loaded = 0;
    gr_train_opts t;
    gr_train_opts_default(&t);
    gr_code code = gr_dir_read_text(dir, "adapters.json", &json, st);
    if (code == GR_OK) code = gr_lora_specs_from_json(json, &specs, &n_specs, st);
    t.n_lora = n_specs, t.lora = specs;
    gr_pass_opts opts = {.train = &t};
    static const char *const insert[] = {"lora", NULL}, *const merge[] = {"lora_merge", NULL};
    if (code == GR_OK) code = gr_passes_run(g, insert, &opts, st);
    if (code == GR_OK) code = gr_graph_load_params(g, dir, &n_loaded, st);
    if (code == GR_OK) code = gr_passes_run(g, merge, &opts, st);
    gr_free(json);
    gr_lora_specs_free(specs, n_specs);
    if (code != GR_OK) gr_status_prefix(st, "--adapter %s: ", dir);
    return code;
}

static gr_code import(const run_args *a, gr_graph **g, gr_status *st) {
    GR_TRY(gr_import_file(a->model, g, st));
    GR_TRY(gr_graph_check_supported(*g, st));
    return a->adapter ? apply_adapters(*g, a->adapter, st) : GR_OK;
}

/* Import, check support, read and match the inputs, specialise. When the
 * shapes stay dynamic because integer inputs carry them (Reshape targets,
 * axes), the model is imported again with those inputs as constants. */
static gr_code load(const run_args *a, gr_graph **g, input_file *files, gr_status *st) {
    double t0 = now_ms();
    GR_TRY(import(a, g, st));
    if (a->verbose)
        fprintf(stderr, "graft: import %s: %.2f ms (%d nodes)\n", a->model, now_ms() - t0,
                (*g)->n_nodes);
    GR_TRY(load_inputs(*g, files, a->n_inputs, st));
    GR_TRY(specialise(*g, a, files, a->n_inputs, 0, st));
    if (graph_is_static(*g) || !has_int_inputs(files, a->n_inputs)) return GR_OK;
    if (a->verbose)
        fprintf(stderr, "graft: shapes depend on integer inputs: binding them as constants\n");
    gr_graph_free(*g);
    *g = NULL;
    GR_TRY(import(a, g, st));
    return specialise(*g, a, files, a->n_inputs, 1, st);
}

/* load -> compile -> run -> write. */
static int run(const run_args *a) {
    gr_status st = {0};
    gr_graph *g = NULL;
    gr_plan *plan = NULL;
    gr_codegen_opts copts = {0};
    input_file *files = calloc((size_t)a->n_inputs + 1, sizeof *files);
    gr_code code = files ? GR_OK : gr_fail(&st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; files && i < a->n_inputs; i++) files[i].arg = a->inputs[i];
    if (code == GR_OK) code = load(a, &g, files, &st);
    if (code == GR_OK) code = make_output_dir(a->output_dir, &st);
    if (code == GR_OK) code = gr_codegen_jit(g, &copts, &plan, &st);
    if (code == GR_OK) code = execute(plan, a, g, files, a->n_inputs, &st);
    int rc = code == GR_OK ? EXIT_OK : cli_fail(&st);
    for (int i = 0; files && i < a->n_inputs; i++) {
        gr_free(files[i].t.data);
        free(files[i].name);
    }
    free(files);
    gr_plan_free(plan);
    gr_graph_free(g);
    return rc;
}

int cmd_run(int argc, char **argv) {
    run_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc < 0) rc = run(&a);
    free(a.inputs);
    cli_free_shapes(&a.opts);
    return rc;
}
