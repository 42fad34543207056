/* train.c: `graft train MODEL --data X ...`. Wires the modules: imports the
 * model, runs "head", "lora" and "train" on it (the graph that is exported), clones
 * it into a training step and an evaluation step (passes, JIT), loads the
 * data and hands everything to the runtime's training loop
 * (runtime/train.c); at the end copies the trained state into the export
 * graph and writes it. The first dim of the model input is the batch:
 * --batch replaces it, also in a --shape. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/gr_codegen.h"
#include "frontend/gr_frontend.h"
#include "runtime/gr_runtime.h"
#include "tools/cli.h"
#include "tools/train_common.h"
#include "tools/unfreeze.h"

/* In parts: C99 compilers need only support string literals of 4095 bytes. */
static const char *const help[] = {
    "usage: graft train MODEL.onnx --data X [--labels Y] [options]\n"
    "\n"
    "Fine-tune an ONNX model on the CPU. X and Y are .npy, IDX (MNIST), CSV or\n"
    "an image folder (one sub-folder per class), recognised by content.\n"
    "\n"
    "data:\n"
    "  --data X             training samples (required)\n"
    "  --labels Y           labels, one per sample (default: those X carries)\n"
    "  --val-data X         validation samples (with --val-labels)\n"
    "  --val-labels Y       validation labels\n"
    "  --val-split F        hold out fraction F of the training data (default 0)\n"
    "  --shape NAME=DIMS    model input shape, e.g. x=1x3x32x32 (dim 0 becomes --batch)\n"
    "  --fit resize|pad     fit images to the input's H,W (default resize)\n"
    "  --normalize M,S      (x - M) / S after scaling u8 data to [0,1]; per channel:\n"
    "                       M1,M2,M3,S1,S2,S3 (default: none)\n"
    "  --no-shuffle         train in data order (default: shuffled every epoch)\n"
    "length:\n"
    "  --epochs N           epochs (default 1 unless --steps)\n"
    "  --steps N            stop after N batches in total (default: --epochs)\n"
    "  --batch N            batch size (default: the model's fixed batch, else 32);\n"
    "                       a final partial batch of an epoch is skipped\n"
    "  --accumulate K       sum gradients over K batches per update (default 1)\n"
    "optimizer:\n"
    "  --optimizer NAME     sgd, adam or adamw (default sgd)\n"
    "  --lr F               learning rate (default 0.01 for sgd, 0.001 for adam/adamw)\n"
    "  --momentum F         SGD momentum (default 0)\n"
    "  --nesterov           Nesterov momentum (default off)\n"
    "  --weight-decay F     L2 (sgd, adam) or decoupled (adamw) decay (default 0;\n"
    "                       0.01 for adamw)\n"
    "  --clip-norm F        clip the global gradient norm to F (default: no clipping)\n"
    "  --schedule S         constant, step:E:G (lr * G every E epochs) or cosine\n"
    "                       (to 0 over the run) (default constant)\n"
    "  --warmup N           linear warm-up from 0 over N optimizer steps (default 0)\n"
    "loss:\n"
    "  --loss NAME          ce, mse, l1 or bce (default ce)\n"
    "  --label-smoothing F  ce label smoothing (default 0)\n"
    "model:\n"
    "  --freeze GLOB        freeze parameters matching GLOB (repeatable)\n"
    "  --train-only GLOB    train only parameters matching GLOB (repeatable)\n"
    "  --freeze-until NODE  freeze everything up to and including node NODE\n"
    "  --head [NODE:]N      replace the final classifier (or NODE) by one with N\n"
    "                       outputs\n"
    "  --init DIR           load NAME.npy files of DIR over the initial parameters\n"
    "  --seed N             seed of shuffling, new heads and dropout (default 0)\n",
    "adapters (the model's own parameters then freeze unless --train-only names them):\n"
    "  --adapter-after GLOB[:dim=D]  a bottleneck adapter y + up(relu(down(y))) after\n"
    "                       every node named by GLOB (repeatable); D: its width\n"
    "                       (default: features / 16, at least 1); up starts at zero\n"
    "  --ia3 GLOB           IA3: a learned per-channel scale (starting at one) on the\n"
    "                       output of every node named by GLOB (repeatable)\n",
    "per-layer learning rates, L2-SP, dry run:\n"
    "  --lr-group GLOB=F    learning rate x F for parameters matching GLOB\n"
    "                       (repeatable; the last matching one applies; F = 0:\n"
    "                       never updated)\n"
    "  --layer-decay F      layer-wise decay: the layer group nearest the output\n"
    "                       trains at --lr, each earlier group at F times the next\n"
    "                       (groups from the graph's depth order; default: off)\n"
    "  --l2sp A[,B]         add A*||w - w0||^2 over the pretrained trainable\n"
    "                       parameters (w0: initial values) and B*||w||^2 over new\n"
    "                       ones (head, adapters) to the loss (default B: 0)\n"
    "  --dry-run            print the trainable parameters by group (count, bytes,\n"
    "                       learning rate), the frozen ones and the adapters added,\n"
    "                       then exit without training (--data not needed)\n"
    "  --verbose            print the same report before training (and the groups\n"
    "                       of --unfreeze-every), then the training step's kernel\n"
    "                       count and arena bytes (with and without in-place buffers)\n",
    "LoRA (low-rank adapters; the model's own weights then freeze by default):\n"
    "  --lora GLOB[:rank=R,alpha=A,dropout=P]\n"
    "                       adapt every Gemm, MatMul and Conv weight W matching GLOB:\n"
    "                       W + (alpha/rank)·B·A, A and B trained (repeatable; the\n"
    "                       first matching --lora applies; default rank 8, alpha =\n"
    "                       rank, dropout 0 on the adapter's input; grouped and\n"
    "                       depthwise Conv weights are skipped)\n"
    "  --merge              -o: fold the adapters into their weights (default)\n"
    "  --no-merge           -o: keep the adapters as separate nodes\n"
    "  --save-adapters DIR  write only the adapters (NAME.npy, adapters.json) to DIR\n"
    "                       (graft run --adapter DIR MODEL applies them)\n",
    "progressive unfreezing (ULMFiT):\n"
    "  --unfreeze-every E   start with one group of layers trainable, unfreeze one\n"
    "                       more every E epochs (default: all train from the start)\n"
    "  --unfreeze-groups K  split the trainable layers into K groups in depth order,\n"
    "                       the new head (--head) a group of its own (default: one\n"
    "                       group per layer)\n"
    "  --unfreeze-order O   top-down (from the output, default) or bottom-up\n",
    "output:\n"
    "  -o OUT.onnx          write the fine-tuned model (default: not written)\n"
    "  --log FILE           JSON lines: per step and per epoch (default: none)\n"
    "  --checkpoint DIR     checkpoint after every epoch and at the end (default: none)\n"
    "  --resume DIR         continue from a checkpoint exactly (same options)\n"
    "  --threads N          OpenMP threads (default: all cores)\n"
    "  -h, --help           show this help\n"
    "\n"
    "exit status: 0 success, 1 unreadable model or data, unsupported model,\n"
    "non-finite loss or unwritable output, 2 bad command line or arguments.\n",
    NULL};

typedef struct {
    const char *model, *data, *labels, *val_data, *val_labels, *log, *checkpoint, *resume;
    const char *output, *init, *optimizer, *schedule, *loss, *fit, *normalize, *head;
    double val_split, lr, momentum, weight_decay, clip_norm, label_smoothing;
    int64_t epochs, steps, batch, accumulate, warmup, seed, threads;
    int nesterov, no_shuffle, lr_given, wd_given;
    int no_data;           /* graft compile --train: no --data needed */
    int n_freeze, n_train_only;
    const char **freeze, **train_only;
    const char *freeze_until;
    /* LoRA: --lora specs (globs malloc'd), --no-merge, --save-adapters */
    int n_lora, no_merge;
    gr_lora_spec *lora;
    const char *save_adapters;
    gr_pass_opts shapes;   /* --shape */
    /* adapters: --adapter-after, --ia3 (argv pointers, argc slots each) */
    int n_adapter_after, n_ia3;
    const char **adapter_after, **ia3;
    /* per-layer learning rates, L2-SP, --dry-run, --verbose */
    int n_lr_groups, dry_run, verbose;
    gr_lr_group *lr_groups;
    double layer_decay;
    const char *l2sp;
    /* progressive unfreezing (tools/unfreeze.c) */
    int64_t unfreeze_every, unfreeze_groups;
    const char *unfreeze_order;
    int argc;
    char **argv;
} train_args;

/* ------------------------------------------------------------ command line */

static int parse_double(const char *option, const char *text, double min, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < min)
        return cli_usage_error("train", "%s expects a number >= %g, got '%s'", option, min,
                               text);
    *out = v;
    return 0;
}

static int parse_string(int argc, char **argv, int *i, train_args *a, int *rc) {
    static const struct { const char *name; size_t offset; } strings[] = {
#define S(opt, field) {opt, offsetof(train_args, field)}
        S("--data", data), S("--labels", labels), S("--val-data", val_data),
        S("--val-labels", val_labels), S("--log", log), S("--checkpoint", checkpoint),
        S("--resume", resume), S("-o", output), S("--init", init),
        S("--optimizer", optimizer), S("--schedule", schedule), S("--loss", loss),
        S("--fit", fit), S("--normalize", normalize), S("--head", head),
        S("--freeze-until", freeze_until),
#undef S
    };
    const char *value;
    for (size_t k = 0; k < sizeof strings / sizeof *strings; k++) {
        int m = cli_option(argc, argv, i, strings[k].name, &value);
        if (m < 0) *rc = cli_usage_error("train", "%s needs a value", argv[*i]);
        if (m > 0) *(const char **)((char *)a + strings[k].offset) = value;
        if (m) return 1;
    }
    return 0;
}

static int parse_number(int argc, char **argv, int *i, train_args *a, int *rc) {
    static const struct { const char *name; size_t offset; int integer; double min; } nums[] = {
#define D(opt, field, min) {opt, offsetof(train_args, field), 0, min}
#define I(opt, field) {opt, offsetof(train_args, field), 1, 1}
        D("--val-split", val_split, 0), D("--lr", lr, 0), D("--momentum", momentum, 0),
        D("--weight-decay", weight_decay, 0), D("--clip-norm", clip_norm, 0),
        D("--label-smoothing", label_smoothing, 0), I("--epochs", epochs),
        I("--steps", steps), I("--batch", batch), I("--accumulate", accumulate),
        I("--threads", threads), {"--warmup", offsetof(train_args, warmup), 1, 0},
        {"--seed", offsetof(train_args, seed), 1, 0},
#undef D
#undef I
    };
    const char *value;
    for (size_t k = 0; k < sizeof nums / sizeof *nums; k++) {
        int m = cli_option(argc, argv, i, nums[k].name, &value);
        if (m < 0) *rc = cli_usage_error("train", "%s needs a value", argv[*i]);
        if (m <= 0) {
            if (m) return 1;
            continue;
        }
        void *field = (char *)a + nums[k].offset;
        if (!nums[k].integer) {
            *rc = parse_double(nums[k].name, value, nums[k].min, field);
        } else if (nums[k].min > 0) {
            *rc = cli_parse_positive("train", nums[k].name, value, field);
        } else {
            char *end;
            errno = 0;
            long long v = strtoll(value, &end, 10);
            if (errno || end == value || *end || v < 0)
                *rc = cli_usage_error("train", "%s expects an integer >= 0, got '%s'",
                                      nums[k].name, value);
            *(int64_t *)field = v;
        }
        if (!strcmp(nums[k].name, "--lr")) a->lr_given = 1;
        if (!strcmp(nums[k].name, "--weight-decay")) a->wd_given = 1;
        return 1;
    }
    return 0;
}

static int parse_repeated(int argc, char **argv, int *i, train_args *a, int *rc) {
    const char *value;
    int m;
    if ((m = cli_option(argc, argv, i, "--freeze", &value)) > 0)
        a->freeze[a->n_freeze++] = value;
    else if (m == 0 && (m = cli_option(argc, argv, i, "--train-only", &value)) > 0)
        a->train_only[a->n_train_only++] = value;
    else if (m == 0 && (m = cli_option(argc, argv, i, "--shape", &value)) > 0)
        *rc = cli_add_shape("train", value, &a->shapes);
    if (m < 0) *rc = cli_usage_error("train", "%s needs a value", argv[*i]);
    return m != 0;
}

/* --adapter-after and --ia3; the pass parses and checks the specs. */
static int parse_adapters(int argc, char **argv, int *i, train_args *a, int *rc) {
    const char *value;
    int m;
    if ((m = cli_option(argc, argv, i, "--adapter-after", &value)) > 0)
        a->adapter_after[a->n_adapter_after++] = value;
    else if (m == 0 && (m = cli_option(argc, argv, i, "--ia3", &value)) > 0)
        a->ia3[a->n_ia3++] = value;
    if (m < 0) *rc = cli_usage_error("train", "%s needs a value", argv[*i]);
    return m != 0;
}

/* --lr-group GLOB=F, --layer-decay F, --l2sp A[,B], --dry-run, --verbose. */
static int parse_lr_options(int argc, char **argv, int *i, train_args *a, int *rc) {
    const char *value;
    int m;
    if (!strcmp(argv[*i], "--dry-run")) return a->dry_run = 1, ++*i, 1;
    if (!strcmp(argv[*i], "--verbose")) return a->verbose = 1, ++*i, 1;
    if ((m = cli_option(argc, argv, i, "--lr-group", &value)) > 0) {
        const char *eq = strrchr(value, '=');
        gr_lr_group *grp = &a->lr_groups[a->n_lr_groups];
        if (!eq || eq == value)
            return *rc = cli_usage_error("train", "--lr-group expects GLOB=FACTOR, got '%s'",
                                         value), 1;
        if ((*rc = parse_double("--lr-group", eq + 1, 0, &grp->factor))) return 1;
        if (!(grp->glob = strndup(value, (size_t)(eq - value)))) {
            fputs("graft: error: out of memory\n", stderr);
            return *rc = EXIT_ERROR, 1;
        }
        a->n_lr_groups++;
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--layer-decay", &value)) > 0) {
        if (!(*rc = parse_double("--layer-decay", value, 0, &a->layer_decay)) &&
            !(a->layer_decay > 0))
            *rc = cli_usage_error("train", "--layer-decay expects a number > 0, got '%s'",
                                  value);
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--l2sp", &value)) > 0) {
        a->l2sp = value;
    }
    if (m < 0) *rc = cli_usage_error("train", "%s needs a value", argv[*i]);
    return m != 0;
}

static int check_choice(const char *option, const char *value, const char *const *choices) {
    if (!value) return 0;
    for (int k = 0; choices[k]; k++)
        if (!strcmp(value, choices[k])) return 0;
    return cli_usage_error("train", "%s: unknown value '%s'", option, value);
}

/* --unfreeze-every, --unfreeze-groups, --unfreeze-order. */
static int parse_unfreeze(int argc, char **argv, int *i, train_args *a, int *rc) {
    const char *value;
    int m;
    if ((m = cli_option(argc, argv, i, "--unfreeze-every", &value)) > 0)
        *rc = cli_parse_positive("train", "--unfreeze-every", value, &a->unfreeze_every);
    else if (m == 0 && (m = cli_option(argc, argv, i, "--unfreeze-groups", &value)) > 0)
        *rc = cli_parse_positive("train", "--unfreeze-groups", value, &a->unfreeze_groups);
    else if (m == 0 && (m = cli_option(argc, argv, i, "--unfreeze-order", &value)) > 0)
        a->unfreeze_order = value;
    if (m < 0) *rc = cli_usage_error("train", "%s needs a value", argv[*i]);
    return m != 0;
}

static int check_unfreeze(const train_args *a) {
    static const char *const orders[] = {"top-down", "bottom-up", NULL};
    if (check_choice("--unfreeze-order", a->unfreeze_order, orders)) return EXIT_USAGE;
    if ((a->unfreeze_groups || a->unfreeze_order) && !a->unfreeze_every)
        return cli_usage_error("train", "--unfreeze-groups and --unfreeze-order need "
                               "--unfreeze-every E");
    if (a->unfreeze_groups > 100000)
        return cli_usage_error("train", "--unfreeze-groups: at most 100000");
    return 0;
}

static int check_args(train_args *a) {
    static const char *const optimizers[] = {"sgd", "adam", "adamw", NULL};
    static const char *const losses[] = {"ce", "mse", "l1", "bce", NULL};
    static const char *const fits[] = {"resize", "pad", NULL};
    if (!a->model) return cli_usage_error("train", "no model given");
    if (!a->data && !a->dry_run && !a->no_data)
        return cli_usage_error("train", "no training data given (--data X)");
    if (check_choice("--optimizer", a->optimizer, optimizers)) return EXIT_USAGE;
    if (check_choice("--loss", a->loss, losses)) return EXIT_USAGE;
    if (check_choice("--fit", a->fit, fits)) return EXIT_USAGE;
    if (check_unfreeze(a)) return EXIT_USAGE;
    if (a->val_split >= 1) return cli_usage_error("train", "--val-split must be below 1");
    if (a->val_split > 0 && a->val_data)
        return cli_usage_error("train", "--val-split and --val-data exclude each other");
    if (a->val_labels && !a->val_data)
        return cli_usage_error("train", "--val-labels needs --val-data");
    if (a->threads > 4096) return cli_usage_error("train", "--threads: at most 4096");
    if (a->save_adapters && !a->n_lora)
        return cli_usage_error("train", "--save-adapters needs --lora");
    if (a->save_adapters && a->head)
        return cli_usage_error("train", "--save-adapters: a new head (--head) is not an "
                               "adapter and would be lost; export the model with -o");
    if (a->resume) {
        struct stat sb;
        if (stat(a->resume, &sb) || !S_ISDIR(sb.st_mode))
            return cli_usage_error("train", "--resume %s: no such checkpoint directory",
                                   a->resume);
    }
    if (a->schedule && strcmp(a->schedule, "constant") && strcmp(a->schedule, "cosine")) {
        long long e;
        double g;
        char tail;
        if (sscanf(a->schedule, "step:%lld:%lf%c", &e, &g, &tail) != 2 || e <= 0 || g < 0)
            return cli_usage_error("train", "--schedule: expected constant, cosine or "
                                   "step:E:G (E epochs > 0, G >= 0), got '%s'", a->schedule);
    }
    return -1;
}

/* --lora, --merge, --no-merge, --save-adapters. */
static int parse_lora(int argc, char **argv, int *i, train_args *a, int *rc) {
    const char *value;
    int m;
    if (!strcmp(argv[*i], "--merge") || !strcmp(argv[*i], "--no-merge")) {
        a->no_merge = !strcmp(argv[(*i)++], "--no-merge");
        return 1;
    }
    if ((m = cli_option(argc, argv, i, "--lora", &value)) > 0) {
        gr_status st = {0};
        if (gr_lora_spec_parse(value, &a->lora[a->n_lora], &st) != GR_OK)
            *rc = cli_usage_error("train", "%s", st.msg);
        else
            a->n_lora++;
    } else if (m == 0 && (m = cli_option(argc, argv, i, "--save-adapters", &value)) > 0) {
        a->save_adapters = value;
    }
    if (m < 0) *rc = cli_usage_error("train", "%s needs a value", argv[*i]);
    return m != 0;
}

/* What parse_args allocated. */
static void free_args(train_args *a) {
    free(a->freeze);
    free(a->train_only);
    for (int k = 0; k < a->n_lr_groups; k++) free((char *)a->lr_groups[k].glob);
    free(a->lr_groups);
    free(a->adapter_after);
    free(a->ia3);
    gr_lora_specs_free(a->lora, a->n_lora);
    cli_free_shapes(&a->shapes);
}

/* Returns -1 to go on, else the exit status (after --help: EXIT_OK). */
static int parse_args(int argc, char **argv, train_args *a) {
    a->freeze = calloc((size_t)argc, sizeof *a->freeze);
    a->train_only = calloc((size_t)argc, sizeof *a->train_only);
    a->adapter_after = calloc((size_t)argc, sizeof *a->adapter_after);
    a->ia3 = calloc((size_t)argc, sizeof *a->ia3);
    a->lr_groups = calloc((size_t)argc, sizeof *a->lr_groups);
    a->lora = calloc((size_t)argc, sizeof *a->lora);
    if (!a->freeze || !a->train_only || !a->adapter_after || !a->ia3 || !a->lr_groups ||
        !a->lora) {
        fputs("graft: error: out of memory\n", stderr);
        return EXIT_ERROR;
    }
    a->argc = argc, a->argv = argv;
    for (int i = 1; i < argc;) {
        int rc = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            for (int k = 0; help[k]; k++) fputs(help[k], stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--nesterov")) {
            a->nesterov = 1, i++;
        } else if (!strcmp(argv[i], "--no-shuffle")) {
            a->no_shuffle = 1, i++;
        } else if (parse_string(argc, argv, &i, a, &rc) || parse_number(argc, argv, &i, a, &rc) ||
                   parse_repeated(argc, argv, &i, a, &rc) ||
                   parse_adapters(argc, argv, &i, a, &rc) ||
                   parse_lr_options(argc, argv, &i, a, &rc) || parse_lora(argc, argv, &i, a, &rc) ||
                   parse_unfreeze(argc, argv, &i, a, &rc)) {
            if (rc) return rc;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("train", "unknown option '%s'", argv[i]);
        } else if (a->model) {
            return cli_usage_error("train", "more than one model given ('%s', '%s')", a->model,
                                   argv[i]);
        } else {
            a->model = argv[i++];
        }
    }
    return check_args(a);
}

/* ----------------------------------------------------------------- options */

/* --l2sp ALPHA[,BETA]: both >= 0 and finite; BETA defaults to 0. */
static gr_code parse_l2sp(const char *text, gr_train_opts *o, gr_status *st) {
    char *end;
    errno = 0;
    o->l2sp_alpha = strtod(text, &end);
    o->l2sp_beta = 0;
    if (!errno && end != text && *end == ',') {
        const char *b = end + 1;
        o->l2sp_beta = strtod(b, &end);
        if (end == b) end = (char *)b - 1; /* ",": not a number */
    }
    if (errno || end == text || *end || !(o->l2sp_alpha >= 0) || !(o->l2sp_beta >= 0) ||
        !isfinite(o->l2sp_alpha) || !isfinite(o->l2sp_beta))
        return gr_fail(st, GR_ERR_BAD_ARG, "--l2sp expects ALPHA[,BETA] with numbers >= 0, "
                       "got '%s'", text);
    return GR_OK;
}

static gr_code train_options(const train_args *a, gr_train_opts *o, gr_status *st) {
    gr_train_opts_default(o);
    o->n_freeze = a->n_freeze, o->freeze = a->freeze;
    o->n_train_only = a->n_train_only, o->train_only = a->train_only;
    o->freeze_until = a->freeze_until;
    o->n_lora = a->n_lora, o->lora = a->lora;
    o->seed = (uint64_t)a->seed;
    o->n_adapter_after = a->n_adapter_after, o->adapter_after = a->adapter_after;
    o->n_ia3 = a->n_ia3, o->ia3 = a->ia3;
    if (a->head) GR_TRY(tc_parse_head(a->head, o, st));
    if (a->loss) GR_TRY(tc_parse_loss(a->loss, &o->loss, st));
    o->label_smoothing = a->label_smoothing;
    const char *opt = a->optimizer ? a->optimizer : "sgd";
    o->optimizer = !strcmp(opt, "adam") ? GR_OPTIMIZER_ADAM
                   : !strcmp(opt, "adamw") ? GR_OPTIMIZER_ADAMW : GR_OPTIMIZER_SGD;
    o->momentum = a->momentum;
    o->nesterov = a->nesterov;
    o->weight_decay = a->wd_given ? a->weight_decay
                      : o->optimizer == GR_OPTIMIZER_ADAMW ? 0.01 : 0;
    o->clip_norm = a->clip_norm;
    o->accumulate = a->accumulate ? (int)a->accumulate : 1;
    o->n_lr_groups = a->n_lr_groups, o->lr_groups = a->lr_groups;
    o->layer_decay = a->layer_decay;
    if (a->l2sp) GR_TRY(parse_l2sp(a->l2sp, o, st));
    if (o->nesterov && (o->momentum <= 0 || o->optimizer != GR_OPTIMIZER_SGD))
        return gr_fail(st, GR_ERR_BAD_ARG, "--nesterov needs --optimizer sgd and --momentum > 0");
    return GR_OK;
}

static void lr_schedule(const train_args *a, const gr_train_opts *o, gr_lr_schedule *s) {
    memset(s, 0, sizeof *s);
    s->lr = a->lr_given ? a->lr : o->optimizer == GR_OPTIMIZER_SGD ? 0.01 : 0.001;
    s->warmup = a->warmup;
    if (a->schedule && !strcmp(a->schedule, "cosine")) s->kind = GR_LR_COSINE;
    long long e;
    double g;
    if (a->schedule && sscanf(a->schedule, "step:%lld:%lf", &e, &g) == 2)
        s->kind = GR_LR_STEP, s->step_epochs = e, s->gamma = g;
}

/* The command line as {"argv":[...]} for state.json. */
static char *options_json(int argc, char **argv) {
    size_t size = 16;
    for (int i = 1; i < argc; i++) size += 2 * strlen(argv[i]) + 4;
    char *json = malloc(size), *p = json;
    if (!json) return NULL;
    p += sprintf(p, "{\"argv\":[");
    for (int i = 1; i < argc; i++) {
        if (i > 1) *p++ = ',';
        *p++ = '"';
        for (const char *c = argv[i]; *c; c++) {
            if (*c == '"' || *c == '\\') *p++ = '\\';
            *p++ = (unsigned char)*c < 0x20 ? ' ' : *c;
        }
        *p++ = '"';
    }
    strcpy(p, "]}");
    return json;
}

/* ------------------------------------------------------------------- data */

typedef struct {
    gr_dataset *train, *val;
    int64_t *train_idx, *val_idx, n_train, n_val;
} data_sets;

static gr_code load_data(const train_args *a, data_sets *d, gr_status *st) {
    GR_TRY(gr_dataset_load(a->data, NULL, &d->train, st));
    if (a->labels) GR_TRY(gr_dataset_set_labels(d->train, a->labels, st));
    if (a->val_data) {
        GR_TRY(gr_dataset_load(a->val_data, NULL, &d->val, st));
        if (a->val_labels) GR_TRY(gr_dataset_set_labels(d->val, a->val_labels, st));
        d->n_val = gr_dataset_count(d->val);
    }
    GR_TRY(gr_data_split(gr_dataset_count(d->train), a->val_split, (uint64_t)a->seed,
                         &d->train_idx, &d->n_train, &d->val_idx, &d->n_val, st));
    if (a->val_data) d->n_val = gr_dataset_count(d->val);
    return GR_OK;
}

static void free_data(data_sets *d) {
    gr_dataset_free(d->train);
    gr_dataset_free(d->val);
    gr_free(d->train_idx);
    gr_free(d->val_idx);
}

/* ------------------------------------------------------------------- train */

static gr_code run_pipeline(gr_graph *g, const gr_train_opts *o, const gr_pass_opts *shapes,
                            int64_t batch, int eval, gr_status *st);

typedef struct {
    gr_graph *model;             /* the export graph */
    tc_step train, eval, eval_tail;
    data_sets data;
    gr_preprocess pp;
    char *options;
    tu_schedule unfreeze;        /* --unfreeze-every (groups NULL: off) */
} session;

static void free_session(session *s) {
    tc_step_free(&s->train);
    tc_step_free(&s->eval);
    tc_step_free(&s->eval_tail);
    free_data(&s->data);
    tu_free(&s->unfreeze);
    gr_graph_free(s->model);
    free(s->options);
}

/* --unfreeze-every: groups, the training step of the first epoch to train
 * (0, or the checkpoint's), then every group trainable again in the export
 * graph (for the evaluation steps). */
static gr_code start_unfreezing(const train_args *a, const gr_train_opts *o, session *s,
                                int64_t batch, gr_status *st) {
    gr_unfreeze_opts uo = {
        .groups = (int)a->unfreeze_groups, .every = a->unfreeze_every,
        .bottom_up = a->unfreeze_order && !strcmp(a->unfreeze_order, "bottom-up"),
        .batches_per_epoch = s->data.n_train / batch, .accumulate = o->accumulate,
    };
    if (uo.batches_per_epoch < 1) uo.batches_per_epoch = 1; /* the loop reports it */
    int64_t epoch = 0; /* --resume: the checkpoint's, so its step compiles once */
    if (a->resume && gr_checkpoint_epoch(a->resume, &epoch, st) != GR_OK)
        return gr_status_prefix(st, "--resume: ");
    GR_TRY(tu_init(&s->unfreeze, s->model, &s->train, o, &uo, &a->shapes, batch,
                   (int)a->threads, a->verbose, stdout, st));
    GR_TRY(tu_compile_first(&s->unfreeze, epoch, st));
    return tu_all(&s->unfreeze, st);
}

/* Import, model edits ("head", "lora", "adapters", "train"), --init and the
 * batch size. */
static gr_code build_model(const train_args *a, const gr_train_opts *o, session *s,
                           int64_t *batch, gr_status *st) {
    GR_TRY(gr_import_file(a->model, &s->model, st));
    GR_TRY(gr_graph_check_supported(s->model, st));
    gr_pass_opts popts = {.train = o};
    static const char *const edits[] = {"head", "lora", "adapters", "train", NULL};
    GR_TRY(gr_passes_run(s->model, edits, &popts, st));
    int n_loaded = 0;
    if (a->init && gr_graph_load_params(s->model, a->init, &n_loaded, st) != GR_OK)
        return gr_status_prefix(st, "--init: ");
    if (a->dry_run) return GR_OK; /* --dry-run compiles nothing */
    return tc_batch(s->model, a->batch, batch, st);
}

/* The model, then the compiled steps. */
static gr_code build(const train_args *a, const gr_train_opts *o, session *s,
                     gr_status *st) {
    int64_t batch = 0;
    GR_TRY(build_model(a, o, s, &batch, st));
    if (a->dry_run) return GR_OK;
    if (a->unfreeze_every) {
        GR_TRY(start_unfreezing(a, o, s, batch, st));
    } else {
        GR_TRY(tc_compile(s->model, o, &a->shapes, batch, 0, (int)a->threads, &s->train, st));
    }
    int64_t n_val = s->data.n_val;
    if (!n_val) return GR_OK;
    gr_train_opts eo = *o;
    eo.eval = 1;
    GR_TRY(tc_compile(s->model, &eo, &a->shapes, batch, 1, (int)a->threads, &s->eval, st));
    if (n_val % batch && tc_batch_is_free(s->model))
        GR_TRY(tc_compile(s->model, &eo, &a->shapes, n_val % batch, 1, (int)a->threads,
                          &s->eval_tail, st));
    return GR_OK;
}

static void report(const gr_train_result *r, const session *s, const train_args *a) {
    if (r->has_val) {
        printf("validation: loss %.6f", r->val_loss);
        if (r->has_acc) printf(", accuracy %.4f", r->val_acc);
        printf(" (%lld samples)\n", (long long)s->data.n_val);
    }
    printf("trained %lld steps, %lld epochs; %.3f s per epoch\n", (long long)r->steps,
           (long long)r->epochs, r->seconds_per_epoch);
    if (a->output) printf("wrote %s\n", a->output);
}

/* --dry-run, --verbose: the trainable parameters by learning-rate group. */
static gr_code report_groups(const train_args *a, const gr_train_opts *o, const session *s,
                             gr_status *st) {
    gr_lr_schedule sched;
    lr_schedule(a, o, &sched);
    static const char *const names[] = {"sgd", "adam", "adamw"};
    printf("model %s, optimizer %s\n", a->model, names[o->optimizer]);
    return gr_train_report(s->model, o, sched.lr, stdout, st);
}

/* --save-adapters DIR: the trained adapters and adapters.json. */
static gr_code save_adapters(const train_args *a, session *s, gr_status *st) {
    char *json = NULL;
    const char **names = NULL;
    int n = 0;
    gr_code code = gr_graph_store_state(s->model, s->train.step, st);
    if (code == GR_OK) code = gr_lora_describe(s->model, &json, &names, &n, st);
    if (code == GR_OK)
        code = gr_params_write_dir(a->save_adapters, s->model, names, n, "adapters.json", json,
                                   st);
    free(json);
    free(names);
    if (code != GR_OK) gr_status_prefix(st, "--save-adapters: ");
    return code;
}

/* --verbose: the compiled training step's kernels and arena. */
static void report_step(const session *s) {
    const gr_plan *p = gr_train_step_plan(s->train.step);
    printf("training step: %d kernels, arena %zu bytes (%zu without in-place buffers)\n",
           p->n_steps, p->arena_bytes, p->arena_separate);
}

static gr_code train(const train_args *a, session *s, gr_status *st) {
    gr_train_opts o;
    GR_TRY(train_options(a, &o, st));
    if (!a->dry_run) GR_TRY(load_data(a, &s->data, st));
    GR_TRY(build(a, &o, s, st));
    if (a->dry_run || a->verbose) GR_TRY(report_groups(a, &o, s, st));
    if (a->dry_run) return GR_OK;
    if (a->verbose) report_step(s);
    GR_TRY(tc_preprocess(s->train.step, a->fit, a->normalize, &s->pp, st));
    if (!(s->options = options_json(a->argc, a->argv)))
        return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    FILE *log = NULL;
    if (a->log && !(log = fopen(a->log, a->resume ? "a" : "w")))
        return gr_fail(st, GR_ERR_IO, "--log: cannot open '%s': %s", a->log, strerror(errno));
    gr_train_config c = {
        .train = s->train.step, .eval = s->eval.step, .eval_tail = s->eval_tail.step,
        .data = s->data.train, .train_idx = s->data.train_idx, .n_train = s->data.n_train,
        .val_data = s->data.n_val ? (s->data.val ? s->data.val : s->data.train) : NULL,
        .val_idx = s->data.val ? NULL : s->data.val_idx, .n_val = s->data.n_val,
        .pp = &s->pp, .epochs = a->epochs ? a->epochs : a->steps ? 0 : 1, .steps = a->steps,
        .adam = o.optimizer != GR_OPTIMIZER_SGD, .dampening = o.dampening,
        .beta1 = o.beta1, .beta2 = o.beta2, .weight_decay = o.weight_decay,
        .accumulate = o.accumulate,
        .seed = (uint64_t)a->seed, .shuffle = !a->no_shuffle, .log = log,
        .checkpoint = a->checkpoint, .resume = a->resume, .options_json = s->options,
        .progress = isatty(fileno(stdout)) ? 1 : 2, .out = stdout,
        .restage = s->unfreeze.groups ? tu_restage : NULL, .restage_ctx = &s->unfreeze,
    };
    lr_schedule(a, &o, &c.lr);
    gr_train_result r;
    gr_code code = gr_train_run(&c, &r, st);
    if (log && fclose(log) && code == GR_OK)
        code = gr_fail(st, GR_ERR_IO, "--log: cannot write '%s'", a->log);
    if (code == GR_OK && a->save_adapters) code = save_adapters(a, s, st);
    if (code == GR_OK && a->output) {
        /* The exported model is an inference model (BatchNorm on its
         * running statistics, no Dropout), holding the trained state. */
        static const char *const inference[] = {"train_mode", NULL};
        gr_train_opts mode = o;
        mode.eval = 1;
        gr_pass_opts po = {.train = &mode};
        code = gr_passes_run(s->model, inference, &po, st);
        if (code == GR_OK) code = gr_graph_store_state(s->model, s->train.step, st);
        static const char *const merge[] = {"lora_merge", NULL};
        if (code == GR_OK && !a->no_merge) code = gr_passes_run(s->model, merge, &po, st);
        if (code == GR_OK) code = gr_export_file(s->model, a->output, st);
    }
    if (code == GR_OK) report(&r, s, a);
    return code;
}

int cmd_train(int argc, char **argv) {
    train_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc < 0) {
        gr_status st = {0};
        session s = {0};
        rc = train(&a, &s, &st) == GR_OK ? EXIT_OK : cli_fail(&st);
        free_session(&s);
    }
    free_args(&a);
    return rc;
}

/* ------------------------------------------------ shared with `graft eval` */

void tc_step_free(tc_step *s) {
    gr_train_step_free(s->step);
    gr_plan_free(s->plan);
    gr_graph_free(s->graph);
    s->step = NULL;
    s->plan = NULL;
    s->graph = NULL;
}

gr_code tc_parse_head(const char *text, gr_train_opts *o, gr_status *st) {
    const char *colon = strrchr(text, ':');
    const char *count = colon ? colon + 1 : text;
    char *end;
    errno = 0;
    long long n = strtoll(count, &end, 10);
    if (errno || end == count || *end || n <= 0 || (colon && colon == text))
        return gr_fail(st, GR_ERR_BAD_ARG, "--head expects [NODE:]N with N > 0, got '%s'", text);
    o->head_classes = n;
    if (colon) {
        static char node[512];
        snprintf(node, sizeof node, "%.*s", (int)(colon - text), text);
        o->head_node = node;
    }
    return GR_OK;
}

gr_code tc_parse_loss(const char *text, gr_loss_kind *out, gr_status *st) {
    static const char *const names[] = {"ce", "mse", "l1", "bce"};
    static const gr_loss_kind kinds[] = {GR_LOSS_CE, GR_LOSS_MSE, GR_LOSS_L1, GR_LOSS_BCE};
    for (int k = 0; k < 4; k++)
        if (!strcmp(text, names[k])) return *out = kinds[k], GR_OK;
    return gr_fail(st, GR_ERR_BAD_ARG, "--loss: unknown loss '%s' (ce, mse, l1, bce)", text);
}

static const gr_value *model_input(const gr_graph *model) {
    return model->n_inputs ? model->inputs[0] : NULL;
}

int tc_batch_is_free(const gr_graph *model) {
    const gr_value *x = model_input(model);
    return x && x->shape.rank >= 1 && x->shape.dims[0] < 0;
}

gr_code tc_batch(const gr_graph *model, int64_t requested, int64_t *batch, gr_status *st) {
    const gr_value *x = model_input(model);
    if (!x) return gr_fail(st, GR_ERR_BAD_MODEL, "the model has no input");
    if (x->shape.rank < 1)
        return gr_fail(st, GR_ERR_UNSUPPORTED, "model input '%s' has no batch dim", x->name);
    int64_t fixed = x->shape.dims[0];
    if (fixed > 0 && requested && requested != fixed)
        return gr_fail(st, GR_ERR_BAD_ARG, "--batch %lld: the model's input '%s' has a fixed "
                       "batch of %lld", (long long)requested, x->name, (long long)fixed);
    *batch = fixed > 0 ? fixed : requested ? requested : 32;
    return GR_OK;
}

static gr_code check_static_inputs(const gr_graph *g, gr_status *st) {
    for (int i = 0; i < g->n_inputs; i++) {
        char buf[256];
        if (!gr_shape_is_static(&g->inputs[i]->shape))
            return gr_fail(st, GR_ERR_BAD_ARG, "model input '%s' has shape %s: give its "
                           "size with --shape %s=DIMS (e.g. 1x3x32x32)", g->inputs[i]->name,
                           gr_shape_str(&g->inputs[i]->shape, buf, sizeof buf),
                           g->inputs[i]->name);
    }
    return GR_OK;
}

static gr_code run_pipeline(gr_graph *g, const gr_train_opts *o, const gr_pass_opts *shapes,
                            int64_t batch, int eval, gr_status *st) {
    static const char *const first[] = {"specialize", "shapes", NULL};
    static const char *const train[] = {"train_mode", "loss", "l2sp", "autodiff", "optimizer", "cse",
                                        "fold", "dce", "fuse", NULL};
    static const char *const evaluate[] = {"train_mode", "loss", "cse", "fold", "dce", "fuse",
                                           NULL};
    static const char *const infer[] = {"train_mode", "cse", "fold", "dce", "fuse", NULL};
    gr_input_shape *given = malloc(sizeof *given * (size_t)(shapes->n_input_shapes + 1));
    if (!given) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < shapes->n_input_shapes; i++) {
        given[i] = shapes->input_shapes[i];
        if (given[i].shape.rank >= 1) given[i].shape.dims[0] = batch;
    }
    gr_train_opts mode = *o;
    mode.eval = eval != 0;
    gr_pass_opts opts = {.batch = batch, .n_input_shapes = shapes->n_input_shapes,
                         .input_shapes = given, .train = &mode};
    gr_code code = gr_passes_run(g, first, &opts, st);
    if (code == GR_OK) code = check_static_inputs(g, st);
    if (code == GR_OK)
        code = gr_passes_run(g, eval == 2 ? infer : eval ? evaluate : train, &opts, st);
    free(given);
    return code;
}

gr_code tc_compile(const gr_graph *model, const gr_train_opts *o, const gr_pass_opts *shapes,
                   int64_t batch, int eval, int threads, tc_step *out, gr_status *st) {
    gr_graph *g = out->graph = gr_graph_clone(model);
    if (!g) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_codegen_opts copts = {0};
    gr_code code = run_pipeline(g, o, shapes, batch, eval, st);
    if (code == GR_OK) code = gr_codegen_jit(g, &copts, &out->plan, st);
    if (code == GR_OK) code = gr_train_step_new(out->plan, threads, &out->step, st);
    if (code != GR_OK) gr_status_prefix(st, "%s step (batch %lld): ",
                                        eval ? "evaluation" : "training", (long long)batch);
    return code;
}

gr_code tc_preprocess(const gr_train_step *s, const char *fit, const char *normalize,
                      gr_preprocess *pp, gr_status *st) {
    const gr_plan *p = gr_train_step_plan(s);
    const gr_buffer *x = NULL;
    for (int i = 0; i < p->n_inputs && !x; i++)
        if (strncmp(p->buffers[p->inputs[i]].name, "graft.", 6)) x = &p->buffers[p->inputs[i]];
    memset(pp, 0, sizeof *pp);
    if (!x) return gr_fail(st, GR_ERR_BAD_MODEL, "the model has no input");
    pp->input = gr_shape_make(x->shape.rank - 1, x->shape.dims + 1);
    const int64_t *d = pp->input.dims;
    if (pp->input.rank == 3 && (d[2] == 1 || d[2] == 3 || d[2] == 4) &&
        !(d[0] == 1 || d[0] == 3 || d[0] == 4))
        pp->layout = GR_DATA_LAYOUT_NHWC;
    pp->fit = fit && !strcmp(fit, "pad") ? GR_DATA_FIT_PAD : GR_DATA_FIT_RESIZE;
    if (!normalize) return GR_OK;
    double v[2 * GR_DATA_MAX_CHANNELS];
    int n = 0;
    const char *c = normalize;
    while (*c && n < 2 * GR_DATA_MAX_CHANNELS) {
        char *end;
        v[n] = strtod(c, &end);
        if (end == c) break;
        n++;
        c = *end == ',' ? end + 1 : end;
        if (*end != ',') break;
    }
    if (*c || n < 2 || n % 2)
        return gr_fail(st, GR_ERR_BAD_ARG, "--normalize expects MEAN,STD or M1,..,Mc,S1,..,Sc, "
                       "got '%s'", normalize);
    pp->n_norm = n / 2;
    for (int k = 0; k < n / 2; k++) {
        pp->mean[k] = (float)v[k];
        pp->std[k] = (float)v[n / 2 + k];
        if (!(pp->std[k] > 0))
            return gr_fail(st, GR_ERR_BAD_ARG, "--normalize: std must be > 0");
    }
    return GR_OK;
}

/* ------------------------------------------ shared with `graft compile --train` */

void tc_graphs_free(tc_graphs *t) {
    gr_graph_free(t->step);
    gr_graph_free(t->infer);
    memset(t, 0, sizeof *t);
}

/* The graphs `graft train` would compile for a's options, not compiled. */
static gr_code train_graphs(const train_args *a, tc_graphs *out, gr_status *st) {
    gr_train_opts o;
    session s = {0};
    GR_TRY(train_options(a, &o, st));
    gr_code code = build_model(a, &o, &s, &out->batch, st);
    out->step = code == GR_OK ? gr_graph_clone(s.model) : NULL;
    out->infer = code == GR_OK ? gr_graph_clone(s.model) : NULL;
    if (code == GR_OK && (!out->step || !out->infer))
        code = gr_fail(st, GR_ERR_NOMEM, "out of memory");
    if (code == GR_OK) code = run_pipeline(out->step, &o, &a->shapes, out->batch, 0, st);
    if (code == GR_OK) code = run_pipeline(out->infer, &o, &a->shapes, out->batch, 2, st);
    out->adam = o.optimizer != GR_OPTIMIZER_SGD;
    out->accumulate = o.accumulate;
    out->dampening = o.dampening, out->beta1 = o.beta1, out->beta2 = o.beta2;
    out->weight_decay = o.weight_decay;
    out->seed = (uint64_t)a->seed;
    free_session(&s);
    return code;
}

int tc_graphs_from_args(int argc, char **argv, tc_graphs *out) {
    train_args a = {.no_data = 1};
    memset(out, 0, sizeof *out);
    int rc = parse_args(argc, argv, &a);
    if (rc < 0) {
        gr_status st = {0};
        rc = train_graphs(&a, out, &st) == GR_OK ? -1 : cli_fail(&st);
    }
    free_args(&a);
    return rc;
}
