/* eval.c: `graft eval MODEL --data X --labels Y`. Compiles the model's
 * evaluation step (the loss on its output; tools/train.c builds it) at the
 * batch size, and at the remainder's size when the batch is free, runs it
 * over every sample and prints the mean loss and the accuracy. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/gr_frontend.h"
#include "runtime/gr_runtime.h"
#include "tools/cli.h"
#include "tools/train_common.h"

static const char help[] =
    "usage: graft eval MODEL.onnx --data X --labels Y [options]\n"
    "\n"
    "Evaluate a model: the mean loss over the samples of X and, for class\n"
    "labels, the accuracy of the output's argmax.\n"
    "\n"
    "options:\n"
    "  --data X             samples (.npy, IDX, CSV or an image folder) (required)\n"
    "  --labels Y           labels (default: those X carries)\n"
    "  --batch N            batch size (default: the model's fixed batch, else 32)\n"
    "  --shape NAME=DIMS    model input shape, e.g. x=1x3x32x32 (dim 0 becomes --batch)\n"
    "  --loss NAME          ce, mse, l1 or bce (default ce)\n"
    "  --fit resize|pad     fit images to the input's H,W (default resize)\n"
    "  --normalize M,S      (x - M) / S after scaling u8 data (default: none)\n"
    "  --threads N          OpenMP threads (default: all cores)\n"
    "  --verbose            also print the confusion matrix\n"
    "  -h, --help           show this help\n"
    "\n"
    "exit status: 0 success, 1 unreadable model or data or unsupported model,\n"
    "2 bad command line or arguments.\n";

typedef struct {
    const char *model, *data, *labels, *loss, *fit, *normalize;
    int64_t batch, threads;
    int verbose;
    gr_pass_opts shapes;
} eval_args;

static int parse_args(int argc, char **argv, eval_args *a) {
    for (int i = 1; i < argc;) {
        const char *value;
        int m = 0, rc = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--verbose")) {
            a->verbose = 1, i++;
            continue;
        }
        if ((m = cli_option(argc, argv, &i, "--data", &value)) > 0) a->data = value;
        else if (!m && (m = cli_option(argc, argv, &i, "--labels", &value)) > 0) a->labels = value;
        else if (!m && (m = cli_option(argc, argv, &i, "--loss", &value)) > 0) a->loss = value;
        else if (!m && (m = cli_option(argc, argv, &i, "--fit", &value)) > 0) a->fit = value;
        else if (!m && (m = cli_option(argc, argv, &i, "--normalize", &value)) > 0)
            a->normalize = value;
        else if (!m && (m = cli_option(argc, argv, &i, "--batch", &value)) > 0)
            rc = cli_parse_positive("eval", "--batch", value, &a->batch);
        else if (!m && (m = cli_option(argc, argv, &i, "--threads", &value)) > 0)
            rc = cli_parse_positive("eval", "--threads", value, &a->threads);
        else if (!m && (m = cli_option(argc, argv, &i, "--shape", &value)) > 0)
            rc = cli_add_shape("eval", value, &a->shapes);
        if (m < 0) return cli_usage_error("eval", "%s needs a value", argv[i]);
        if (rc) return rc;
        if (m) continue;
        if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("eval", "unknown option '%s'", argv[i]);
        if (a->model)
            return cli_usage_error("eval", "more than one model given ('%s', '%s')", a->model,
                                   argv[i]);
        a->model = argv[i++];
    }
    if (!a->model) return cli_usage_error("eval", "no model given");
    if (!a->data) return cli_usage_error("eval", "no data given (--data X)");
    if (a->fit && strcmp(a->fit, "resize") && strcmp(a->fit, "pad"))
        return cli_usage_error("eval", "--fit: unknown value '%s'", a->fit);
    if (a->threads > 4096) return cli_usage_error("eval", "--threads: at most 4096");
    return -1;
}

static void print_confusion(const int64_t *m, int64_t k, const gr_dataset *d) {
    printf("confusion matrix (rows: label, columns: predicted):\n%8s", "");
    for (int64_t j = 0; j < k; j++) printf(" %7lld", (long long)j);
    putchar('\n');
    for (int64_t i = 0; i < k; i++) {
        const char *name = gr_dataset_class_name(d, i);
        if (name) printf("%8.8s", name);
        else printf("%8lld", (long long)i);
        for (int64_t j = 0; j < k; j++) printf(" %7lld", (long long)m[i * k + j]);
        putchar('\n');
    }
}

typedef struct {
    gr_graph *model;
    gr_dataset *data;
    tc_step full, tail;
    int64_t *confusion;
} eval_state;

static gr_code evaluate(const eval_args *a, eval_state *e, gr_status *st) {
    gr_train_opts o;
    gr_train_opts_default(&o);
    o.eval = 1;
    if (a->loss) GR_TRY(tc_parse_loss(a->loss, &o.loss, st));
    GR_TRY(gr_dataset_load(a->data, NULL, &e->data, st));
    if (a->labels) GR_TRY(gr_dataset_set_labels(e->data, a->labels, st));
    if (!gr_dataset_has_labels(e->data))
        return gr_fail(st, GR_ERR_BAD_ARG, "'%s' has no labels (give --labels)", a->data);
    GR_TRY(gr_import_file(a->model, &e->model, st));
    GR_TRY(gr_graph_check_supported(e->model, st));
    int64_t batch = 0, n = gr_dataset_count(e->data);
    GR_TRY(tc_batch(e->model, a->batch, &batch, st));
    if (n < batch && tc_batch_is_free(e->model)) batch = n;
    GR_TRY(tc_compile(e->model, &o, &a->shapes, batch, 1, (int)a->threads, &e->full, st));
    if (n % batch && tc_batch_is_free(e->model))
        GR_TRY(tc_compile(e->model, &o, &a->shapes, n % batch, 1, (int)a->threads, &e->tail,
                          st));
    int64_t k = gr_train_step_classes(e->full.step);
    if (o.loss == GR_LOSS_CE) GR_TRY(gr_dataset_check_labels(e->data, k, st));
    if (a->verbose && k > 0 && !(e->confusion = calloc((size_t)(k * k), sizeof *e->confusion)))
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_preprocess pp;
    GR_TRY(tc_preprocess(e->full.step, a->fit, a->normalize, &pp, st));
    double loss, acc;
    int64_t done = 0;
    GR_TRY(gr_evaluate(e->full.step, e->tail.step, e->data, NULL, n, &pp, &loss, &acc,
                       e->confusion, e->confusion ? k : 0, &done, st));
    printf("loss %.6f", loss);
    if (!isnan(acc)) printf(", accuracy %.4f", acc);
    printf(" (%lld samples", (long long)done);
    if (done < n) printf("; the last %lld do not fill the model's fixed batch", (long long)(n - done));
    printf(")\n");
    if (e->confusion && !isnan(acc)) print_confusion(e->confusion, k, e->data);
    return GR_OK;
}

int cmd_eval(int argc, char **argv) {
    eval_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc < 0) {
        gr_status st = {0};
        eval_state e = {0};
        rc = evaluate(&a, &e, &st) == GR_OK ? EXIT_OK : cli_fail(&st);
        tc_step_free(&e.full);
        tc_step_free(&e.tail);
        gr_graph_free(e.model);
        gr_dataset_free(e.data);
        free(e.confusion);
    }
    cli_free_shapes(&a.shapes);
    return rc;
}
