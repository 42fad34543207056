/* compile.c: `graft compile MODEL -o OUT.o`: compiles a model ahead of time
 * into a relocatable ELF object (codegen/aot.c) and optionally its C
 * header, for applications that link graft's runtime library instead of
 * the compiler. The model goes through `graft run`'s inference passes at
 * the shapes --batch and --shape give. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/gr_codegen.h"
#include "frontend/gr_frontend.h"
#include "tools/cli.h"
#include "tools/train_common.h"

static const char help[] =
    "usage: graft compile MODEL.onnx -o OUT.o [--header OUT.h] [--prefix NAME]\n"
    "                     [--batch N] [--shape NAME=DIMS]... [--cpu LEVEL]\n"
    "                     [--train [TRAINING OPTIONS]]\n"
    "\n"
    "Compile an ONNX model ahead of time into a relocatable, position-independent\n"
    "ELF object holding every kernel and the weights. Its only global symbols are\n"
    "NAME_run, NAME_last_error and NAME_set_threads; the header declares them and\n"
    "describes the inputs and outputs (names, dtypes, shapes, bytes). Link the\n"
    "object with graft's runtime library:\n"
    "    cc app.c OUT.o $(pkg-config --cflags --libs graft-rt)\n"
    "\n"
    "options:\n"
    "  -o, --output FILE  the object to write (atomically: a temporary file\n"
    "                     beside it, then renamed)\n"
    "  --header FILE      also write the C header for the object\n"
    "  --prefix NAME      C prefix of the object's symbols (default: model)\n"
    "  --batch N          fix the first dim of inputs whose first dim is dynamic\n"
    "  --shape NAME=DIMS  fix the shape of input NAME, e.g. x=1x3x32x32\n"
    "  --cpu LEVEL        instruction set: x86-64-v3 (default: AVX2 and FMA, no\n"
    "                     AVX-512), x86-64-v4 (adds AVX-512) or native (this\n"
    "                     machine's features)\n"
    "  --train            also compile the training step `graft train` would run\n"
    "                     with the same options (--loss, --optimizer, --momentum,\n"
    "                     --weight-decay, --freeze, --train-only, --head, --init,\n"
    "                     --seed, --accumulate, ...; see graft train --help; --data\n"
    "                     is not needed, --lr is given per step): adds\n"
    "                     NAME_train_step, NAME_save, NAME_load and\n"
    "                     NAME_export_weights, and NAME_run uses the trained weights\n"
    "  -h, --help         show this help\n"
    "\n"
    "Every shape must be static after --batch and --shape. With --train:\n"
    "  int NAME_train_step(const void *const inputs[], const void *labels,\n"
    "                      float lr, float *loss);  one optimizer step on a batch\n"
    "                      (NAME_TRAIN_BATCH samples; labels as NAME_LABELS_*)\n"
    "  int NAME_save(const char *dir), NAME_load(const char *dir): a checkpoint\n"
    "                      as graft train writes them (NAME.npy per state tensor\n"
    "                      and state.json; written to DIR.tmp, then renamed)\n"
    "  int NAME_export_weights(void *const dst[]): copies the trained tensors\n"
    "                      (NAME_TRAINED_NAMES, _SHAPES, _BYTES) to dst[i]; saved\n"
    "                      as DIR/<name>.npy they are a directory graft train --init\n"
    "                      and graft eval accept\n"
    "\n"
    "exit status: 0 success, 1 unreadable, invalid or unsupported model, or\n"
    "unwritable output, 2 bad command line.\n";

typedef struct {
    const char *model, *output, *header, *prefix, *cpu;
    gr_pass_opts opts; /* --batch, --shape */
    int train;
    int n_rest;        /* argv[0] and what compile does not parse itself */
    char **rest;
} compile_args;

/* compile's own options (the rest goes to train's parser with --train). */
static int parse_own_option(int argc, char **argv, int *i, compile_args *a, int *rc) {
    const char *value;
    int m = cli_option(argc, argv, i, "-o", &value);
    if (m == 0) m = cli_option(argc, argv, i, "--output", &value);
    if (m > 0) {
        a->output = value;
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--header", &value)) > 0) {
        a->header = value;
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--prefix", &value)) > 0) {
        a->prefix = value;
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--cpu", &value)) > 0) {
        a->cpu = value;
        if (strcmp(value, "x86-64-v3") && strcmp(value, "x86-64-v4") && strcmp(value, "native"))
            *rc = cli_usage_error("compile", "--cpu: unknown level '%s' (expected x86-64-v3, "
                                  "x86-64-v4 or native)", value);
    }
    if (m < 0) *rc = cli_usage_error("compile", "%s needs a value", argv[*i]);
    return m != 0;
}

static int parse_value_option(int argc, char **argv, int *i, compile_args *a, int *rc) {
    const char *value;
    int m = 0;
    if ((m = cli_option(argc, argv, i, "--batch", &value)) > 0) {
        *rc = cli_parse_positive("compile", "--batch", value, &a->opts.batch);
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--shape", &value)) > 0) {
        *rc = cli_add_shape("compile", value, &a->opts);
    }
    if (m < 0) *rc = cli_usage_error("compile", "%s needs a value", argv[*i]);
    return m != 0;
}

/* Without --train: the model, --batch and --shape. */
static int parse_inference_args(int argc, char **argv, compile_args *a) {
    for (int i = 1; i < argc;) {
        int rc = 0;
        if (parse_value_option(argc, argv, &i, a, &rc)) {
            if (rc) return rc;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("compile", "unknown option '%s'", argv[i]);
        } else if (a->model) {
            return cli_usage_error("compile", "more than one model given ('%s', '%s')",
                                   a->model, argv[i]);
        } else {
            a->model = argv[i++];
        }
    }
    return a->model ? -1 : cli_usage_error("compile", "no model given");
}

/* Returns -1 to go on, else the exit status (after --help: EXIT_OK). */
static int parse_args(int argc, char **argv, compile_args *a) {
    if (!(a->rest = calloc((size_t)argc + 1, sizeof *a->rest))) {
        fputs("graft: error: out of memory\n", stderr);
        return EXIT_ERROR;
    }
    a->rest[a->n_rest++] = argv[0];
    for (int i = 1; i < argc;) {
        int rc = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--train")) {
            a->train = 1, i++;
        } else if (parse_own_option(argc, argv, &i, a, &rc)) {
            if (rc) return rc;
        } else {
            a->rest[a->n_rest++] = argv[i++];
        }
    }
    if (!a->output) return cli_usage_error("compile", "no output given (-o OUT.o)");
    if (!a->prefix) a->prefix = "model";
    return a->train ? -1 : parse_inference_args(a->n_rest, a->rest, a);
}

/* The object's file name without directories, for the header's comment. */
static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* A training step for --train: the graph and the optimizer's settings (a
 * model with nothing to train fails in the "train" pass already). */
static void train_step(const tc_graphs *t, gr_object_opts *o) {
    if (!t->step) return;
    o->train = t->step;
    o->optimizer = (gr_aot_optimizer){t->adam, t->accumulate, t->dampening, t->beta1,
                                      t->beta2, t->weight_decay, t->seed};
}

static int compile(const compile_args *a, const tc_graphs *t) {
    gr_status st = {0};
    gr_graph *g = NULL;
    gr_plan *run = NULL, *train = NULL;
    gr_object_opts o = {.name = a->prefix, .cpu = a->cpu};
    gr_code code = GR_OK;
    train_step(t, &o);
    if (t->infer) {
        g = t->infer;
    } else {
        code = gr_import_file(a->model, &g, &st);
        if (code == GR_OK) code = gr_graph_check_supported(g, &st);
        if (code == GR_OK) code = gr_passes_run(g, cli_infer_pipeline, &a->opts, &st);
    }
    if (code == GR_OK) code = gr_codegen_object(g, &o, a->output, &run, &train, &st);
    if (code == GR_OK && a->header)
        code = gr_codegen_header(a->header, a->prefix, base_name(a->output), run, train, &st);
    int rc = code == GR_OK ? EXIT_OK : cli_fail(&st);
    gr_plan_free(run);
    gr_plan_free(train);
    if (g != t->infer) gr_graph_free(g);
    return rc;
}

int cmd_compile(int argc, char **argv) {
    compile_args a = {0};
    tc_graphs t = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc < 0 && a.train) rc = tc_graphs_from_args(a.n_rest, a.rest, &t);
    if (rc < 0) rc = compile(&a, &t);
    tc_graphs_free(&t);
    free(a.rest);
    cli_free_shapes(&a.opts);
    return rc;
}
