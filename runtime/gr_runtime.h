/* gr_runtime.h: graft's runtime. Runs a gr_plan (built by codegen) in one
 * OpenMP parallel region, and reads and writes tensors as NumPy .npy files.
 *
 * Usage:
 *     gr_session *s = NULL;
 *     if (gr_session_new(plan, 0, &s, &st) != GR_OK) ...;   // 0: all cores
 *     void *inputs[] = {x_data}, *outputs[] = {y_data};    // graph order
 *     if (gr_session_run(s, inputs, outputs, &st) != GR_OK) ...;
 *     gr_session_free(s);
 *
 *     gr_tensor t;
 *     if (gr_npy_read("x.npy", &t, &st) == GR_OK) {        // t.data: gr_free it
 *         gr_npy_write("copy.npy", &t, &st);                // atomic
 *         gr_free(t.data);
 *     }
 *
 * Determinism: each step's kernel writes disjoint outputs per task and the
 * tasks of a step are split statically over threads, so results are
 * bit-identical for any thread count.
 */
#ifndef GR_RUNTIME_H
#define GR_RUNTIME_H

#include <stdint.h>

#include "ir/gr_ir.h"

/* ---------------------------------------------------------------- sessions */

typedef struct gr_session gr_session;

/* Checks the plan (buffer ids, offsets, sizes) and allocates its run-time
 * arena (plan->arena_bytes, 64-byte aligned) once. n_threads <= 0 means
 * omp_get_max_threads(). The plan is borrowed: it must outlive the session.
 * On failure *out stays NULL. */
gr_code gr_session_new(const gr_plan *plan, int n_threads, gr_session **out,
                       gr_status *st);
void gr_session_free(gr_session *s); /* accepts NULL */

/* Runs every step in order. inputs[i] and outputs[i] point to the data of
 * the graph's i-th input and output (plan->n_inputs / n_outputs entries,
 * each buffers[plan->inputs[i]].nbytes long, little-endian, row-major);
 * either array may be NULL when the plan has none. Outputs are written,
 * inputs only read. Not reentrant: one run at a time per session. */
gr_code gr_session_run(gr_session *s, void *const *inputs,
                       void *const *outputs, gr_status *st);

int gr_session_threads(const gr_session *s); /* threads a run uses */

/* State buffers (GR_BUF_STATE: weights being trained, optimizer state,
 * running statistics) persist across runs; a session starts them as a copy
 * of plan->state_init. Returns the session's memory for that buffer
 * (buffers[buffer].nbytes, read or write between runs), or NULL if the
 * buffer is not state. Find buffers by name with gr_plan_find_buffer. */
void *gr_session_state(gr_session *s, int buffer);
/* Restores every state buffer to plan->state_init. */
void gr_session_reset_state(gr_session *s);

/* Per-step timing (for --verbose). While on, every run adds the wall time
 * of each step (as thread 0 sees it: from the end of the previous step, all
 * of its tasks finished, to the end of this one) to that step's total. */
void gr_session_profile(gr_session *s, int on);
/* Milliseconds per step summed over the profiled runs (plan->n_steps
 * entries, borrowed from s); *n_runs (if not NULL) gets the run count. */
const double *gr_session_step_ms(const gr_session *s, int64_t *n_runs);

/* ------------------------------------------- plans compiled ahead of time */

/* Reads a plan written by gr_plan_serialize (runtime/plan_blob.c): its
 * steps have no kernels (fn NULL) and it has no constants or initial state
 * (consts, state_init NULL) until the caller sets them. A truncated or
 * damaged blob is GR_ERR_INTERNAL; on failure *out stays NULL. */
gr_code gr_plan_deserialize(const void *blob, size_t size, gr_plan **out, gr_status *st);

/* The entry points of a compiled object call these (runtime/aot.c) with
 * their descriptor (ir/gr_ir.h gr_aot_model); they are the object's
 * NAME_run, NAME_last_error and NAME_set_threads, documented in the
 * generated header. They return 0 or a gr_code and keep the message. */
int gr_aot_run(gr_aot_model *m, const void *const inputs[], void *const outputs[]);
const char *gr_aot_last_error(gr_aot_model *m);
void gr_aot_set_threads(gr_aot_model *m, int n);
/* With a training step: NAME_train_step, NAME_save, NAME_load and
 * NAME_export_weights (state.json keeps the batch count, which decides the
 * optimizer's scalars). */
int gr_aot_train_step(gr_aot_model *m, const void *const inputs[], const void *labels,
                      float lr, float *loss);
int gr_aot_save(gr_aot_model *m, const char *dir);
int gr_aot_load(gr_aot_model *m, const char *dir);
int gr_aot_export_weights(gr_aot_model *m, void *const dst[]);

/* --------------------------------------------------------------------- npy */

/* Reads a .npy file (format 1.0, 2.0 or 3.0; C order; dtypes f2 f4 f8,
 * i1..i8, u1..u8, b1; big-endian data is converted). out->data is
 * gr_malloc'd (NULL for zero elements); the caller frees it with gr_free.
 * Bad files are GR_ERR_BAD_MODEL (or GR_ERR_UNSUPPORTED for valid .npy
 * graft cannot hold) with a message naming the file; unreadable ones are
 * GR_ERR_IO. On failure *out is zeroed. */
gr_code gr_npy_read(const char *path, gr_tensor *out, gr_status *st);

/* Writes t as a .npy file (format 1.0, data 64-byte aligned):
 * a temporary file beside path, fsync, then rename, so readers never see
 * a partial file. bf16 and string tensors have no .npy form
 * (GR_ERR_UNSUPPORTED). */
gr_code gr_npy_write(const char *path, const gr_tensor *t, gr_status *st);

/* 1 if the first bytes of buf (len of them) are the .npy magic. */
int gr_npy_is_npy(const void *buf, size_t len);

/* ----------------------------------------------------------- training loop */

/* The loop of `graft train` (runtime/train.c) over a compiled training
 * step: a plan with the contract of passes/gr_passes.h (model input,
 * "graft.labels", run-time scalars "graft.*" in; "graft.loss" and the model
 * output out; parameters and optimizer state as named state buffers).
 * Checkpoints, --init and export copies go by buffer name
 * (runtime/checkpoint.c).
 *
 *     gr_train_step *step = NULL, *eval = NULL;
 *     gr_train_step_new(train_plan, 0, &step, &st);
 *     gr_train_step_new(eval_plan, 0, &eval, &st);
 *     gr_train_config c = {.train = step, .eval = eval, .data = d, ...};
 *     gr_train_result r;
 *     if (gr_train_run(&c, &r, &st) != GR_OK) ...;
 *     gr_graph_store_state(export_graph, step, &st);   // trained weights
 *
 * Schedule (PyTorch semantics; t = 0-based optimizer step, T = optimizer
 * steps of the whole run, e = 0-based epoch):
 *   constant  lr
 *   step:E:G  lr * G^floor(e / E)                  (StepLR per epoch)
 *   cosine    lr * (1 + cos(pi * t / T)) / 2       (CosineAnnealingLR, eta_min 0)
 * then warm-up N > 0 multiplies by t / N while t < N (linear from 0, as
 * transformers' get_*_schedule_with_warmup).
 * One "step" is one batch; with --accumulate K the optimizer steps on every
 * K-th batch ("graft.apply"), so t = batches / K. Scalars per batch:
 * "graft.lr", "graft.damp" (1 on the first optimizer step, else
 * 1 - dampening), "graft.step_size" = lr / (1 - beta1^(t+1)),
 * "graft.bc2_sqrt" = sqrt(1 - beta2^(t+1)), "graft.decay" =
 * 1 - lr * weight_decay, "graft.seed" =
 * gr_hash64(seed ^ gr_hash64(batch)); "graft.step_size@T" and
 * "graft.bc2_sqrt@T" (progressive unfreezing) the same with t - T for t.
 * The training step has a fixed batch size: a final partial batch of an
 * epoch is dropped (drop_last); evaluation runs every sample (a second
 * plan at the remainder's batch size, if given). */

typedef struct gr_dataset gr_dataset;
struct gr_preprocess;

typedef enum { GR_LR_CONSTANT, GR_LR_STEP, GR_LR_COSINE } gr_lr_kind;

typedef struct {
    gr_lr_kind kind;
    double lr;
    int64_t step_epochs; /* GR_LR_STEP: E */
    double gamma;        /* GR_LR_STEP: G */
    int64_t warmup;      /* optimizer steps of linear warm-up (0: none) */
} gr_lr_schedule;

/* Learning rate of optimizer step t (0-based) in epoch e of a run of total
 * optimizer steps. */
double gr_lr_at(const gr_lr_schedule *s, int64_t t, int64_t epoch, int64_t total);

/* A compiled step and its session, with its inputs and outputs found by
 * name: the model input (the one input not named "graft.*"; more are
 * GR_ERR_UNSUPPORTED), "graft.labels" (optional), the scalars, "graft.loss"
 * and the model output (the other output, optional). The plan is borrowed
 * and must outlive the step. On failure *out stays NULL. */
typedef struct gr_train_step gr_train_step;
gr_code gr_train_step_new(const gr_plan *plan, int n_threads, gr_train_step **out,
                          gr_status *st);
void gr_train_step_free(gr_train_step *s); /* accepts NULL */
int64_t gr_train_step_batch(const gr_train_step *s);  /* model input dim 0 */
/* Classes of the model output ([N,K]: K; [N]: 1), 0 without one. */
int64_t gr_train_step_classes(const gr_train_step *s);
gr_session *gr_train_step_session(gr_train_step *s);
const gr_plan *gr_train_step_plan(const gr_train_step *s);

typedef struct {
    gr_train_step *train;             /* required */
    gr_train_step *eval, *eval_tail;  /* validation: batch size, remainder (or NULL) */
    const gr_dataset *data;
    const int64_t *train_idx;         /* samples of data to train on */
    int64_t n_train;
    const gr_dataset *val_data;       /* NULL: no validation */
    const int64_t *val_idx;           /* NULL: every sample of val_data */
    int64_t n_val;
    const struct gr_preprocess *pp;   /* into the model input */
    int64_t epochs;                   /* > 0: stop after that many epochs */
    int64_t steps;                    /* > 0: stop after that many batches */
    gr_lr_schedule lr;
    int adam;                         /* Adam/AdamW scalars (else SGD's) */
    double dampening, beta1, beta2;
    double weight_decay;              /* AdamW's "graft.decay" = 1 - lr * weight_decay */
    int64_t accumulate;               /* >= 1 */
    uint64_t seed;
    int shuffle;
    FILE *log;                        /* JSON lines (ARCHITECTURE.md), or NULL */
    const char *checkpoint;           /* directory, or NULL */
    const char *resume;               /* checkpoint to continue from, or NULL */
    const char *options_json;         /* a JSON object kept in state.json */
    int progress;                     /* 0 none, 1 bar redrawn (TTY), 2 lines */
    FILE *out;                        /* progress and summaries (stdout if NULL) */
    /* Progressive unfreezing (tools/unfreeze.c): a change of the trainable
     * set by epoch. When set, restage(restage_ctx, epoch, &train, st) is
     * called with the 0-based epoch about to be trained: before the first
     * batch (on --resume with the checkpoint's epoch, before its state is
     * read) and after every epoch's validation, before its checkpoint. It
     * may replace *train by a step it compiled (same inputs, outputs and
     * batch) holding the current state; the loop then trains, validates
     * and checkpoints with that step. The caller owns every step. */
    gr_code (*restage)(void *ctx, int64_t epoch, gr_train_step **train, gr_status *st);
    void *restage_ctx;
} gr_train_config;

typedef struct {
    int64_t steps, epochs;            /* batches and epochs done in total */
    double loss;                      /* mean training loss of the last epoch */
    int has_val, has_acc;
    double val_loss, val_acc;         /* last evaluation */
    double seconds_per_epoch;         /* this run's mean */
} gr_train_result;

/* One step on the caller's batch (objects compiled ahead of time): copies
 * x (the model input) and labels (ignored without a labels input) into the
 * step, sets the scalars of batch number step (0-based) at rate lr from c's
 * adam, dampening, beta1, beta2, weight_decay, accumulate and seed exactly
 * as gr_train_run does, runs it and returns the loss. */
gr_code gr_train_step_once(gr_train_step *s, const gr_train_config *c, int64_t step, double lr,
                           const void *x, const void *labels, double *loss, gr_status *st);

/* Trains as configured; NaN or Inf loss stops with GR_ERR_NUMERIC (the
 * last checkpoint written stays). */
gr_code gr_train_run(const gr_train_config *c, gr_train_result *r, gr_status *st);

/* Evaluates samples idx[0..n) of d (idx NULL: 0..n-1) with full (batch
 * size B) and tail (batch n % B, or NULL: those samples are skipped).
 * *loss: mean over samples; *acc: accuracy of the argmax of the output
 * for class-id labels, else NaN; confusion (if not NULL): k*k counts,
 * [label][predicted]. *n_done: samples evaluated. */
gr_code gr_evaluate(gr_train_step *full, gr_train_step *tail, const gr_dataset *d,
                    const int64_t *idx, int64_t n, const struct gr_preprocess *pp,
                    double *loss, double *acc, int64_t *confusion, int64_t k,
                    int64_t *n_done, gr_status *st);

/* ----- checkpoints and named tensors (runtime/checkpoint.c) */

/* Copies every state buffer of src that dst has (same name and size). */
void gr_train_step_copy_state(gr_train_step *dst, gr_train_step *src);
/* Loads every DIR/NAME.npy into g's PARAM of that name (the export graph,
 * before cloning): unknown names, dtype or shape mismatches are
 * GR_ERR_BAD_ARG naming the file. *n_loaded gets the count. */
gr_code gr_graph_load_params(gr_graph *g, const char *dir, int *n_loaded, gr_status *st);
/* Copies the step's state into g's PARAMs of the same names and sizes
 * (trained weights, BN running statistics; optimizer state has no PARAM). */
gr_code gr_graph_store_state(gr_graph *g, gr_train_step *s, gr_status *st);
/* Writes DIR: one NAME.npy per state buffer and state.json (json, a JSON
 * object), into DIR.tmp, then renamed over DIR (the old one renamed to
 * DIR.old first, then removed). */
gr_code gr_checkpoint_write(const char *dir, gr_train_step *s, const char *json,
                            gr_status *st);
/* Restores every state buffer from DIR (all must be there, same dtype and
 * shape) and returns state.json in *json (gr_malloc'd). */
gr_code gr_checkpoint_read(const char *dir, gr_train_step *s, char **json, gr_status *st);
/* Writes DIR like a checkpoint (DIR.tmp, then renamed over DIR; an existing
 * DIR is replaced only if it holds marker or is empty): NAME.npy for each
 * named PARAM of g, and the file marker holding text (--save-adapters:
 * adapters.json). */
gr_code gr_params_write_dir(const char *dir, const gr_graph *g, const char *const *names,
                            int n_names, const char *marker, const char *text,
                            gr_status *st);
/* DIR/file as a NUL-terminated string (gr_malloc'd; at most 64 KiB - 1);
 * a missing file is GR_ERR_BAD_ARG naming it. */
gr_code gr_dir_read_text(const char *dir, const char *file, char **out, gr_status *st);
/* Returns DIR/state.json in *json (gr_malloc'd) without reading tensors. */
gr_code gr_checkpoint_json(const char *dir, char **json, gr_status *st);
/* The 0-based epoch a checkpoint continues with (its state.json "epoch"). */
gr_code gr_checkpoint_epoch(const char *dir, int64_t *epoch, gr_status *st);

/* --------------------------------------------------------------- data sets */

/* Training data for `graft train` (runtime/data*.c).
 *
 *     gr_dataset *d = NULL;
 *     if (gr_dataset_load("train-images-idx3-ubyte.gz", NULL, &d, &st) != GR_OK ||
 *         gr_dataset_set_labels(d, "train-labels-idx1-ubyte.gz", &st) != GR_OK) ...;
 *     int64_t *train, *val, n_train, n_val;
 *     gr_data_split(gr_dataset_count(d), 0.1, seed, &train, &n_train, &val, &n_val, &st);
 *     gr_data_iter it;
 *     gr_data_iter_init(&it, seed, 64, 1, 0);              // shuffle, keep last batch
 *     gr_data_epoch_order(&it, train, n_train, order);      // order: n_train entries
 *     int64_t first, n;
 *     while ((n = gr_data_iter_next(&it, n_train, &first)) > 0)
 *         gr_dataset_batch(d, order + first, n, &pp, GR_DTYPE_F32, x,
 *                          GR_DTYPE_I64, y, &st);
 *     gr_data_iter_next_epoch(&it);
 *     ...
 *     gr_free(train); gr_free(val); gr_dataset_free(d);
 *
 * Formats are recognised from the content, never from the file name:
 *  - a directory: an image folder, one sub-folder per class (class ids are
 *    the sorted sub-folder names, 0..K-1); every non-hidden file in a class
 *    folder must be an image stb_image reads (PNG, JPEG, BMP, GIF, ...).
 *    Images are decoded per batch, so they may differ in size.
 *  - NPY (any numeric dtype): the first dim counts the samples.
 *  - IDX (MNIST style, type codes 0x08-0x0E), plain or gzip-compressed.
 *  - CSV of numbers (gzip allowed), comma-separated, optional header row.
 * Float data holding NaN or Inf is rejected at load, naming the sample.
 * All errors name the file and the problem; on failure nothing leaks. */

typedef struct gr_dataset gr_dataset;

typedef enum {
    GR_DATA_FORMAT_NPY,
    GR_DATA_FORMAT_IDX,
    GR_DATA_FORMAT_CSV,
    GR_DATA_FORMAT_IMAGES,
} gr_data_format;

/* Load options; NULL or all-zero means the defaults. */
typedef struct {
    /* CSV label column: a header name or a 0-based index ("3"). NULL: the
     * column a header names "label", "target" or "class", else the last. */
    const char *label_column;
    int no_labels; /* CSV: every column is a feature (labels come elsewhere) */
    int header;    /* CSV: 0 auto (a first row with a non-number), 1 yes, -1 no */
} gr_data_opts;

/* Loads path. On failure *out stays NULL. */
gr_code gr_dataset_load(const char *path, const gr_data_opts *opts, gr_dataset **out,
                        gr_status *st);
void gr_dataset_free(gr_dataset *d); /* accepts NULL */

int64_t gr_dataset_count(const gr_dataset *d);
gr_data_format gr_dataset_format(const gr_dataset *d);
/* Element type of the samples (u8 for images, f32 for CSV). */
gr_dtype gr_dataset_dtype(const gr_dataset *d);
/* Shape of sample i without the sample dim: [28,28] for MNIST, [H,W,C]
 * for an image (as decoded, C = its channel count). */
gr_shape gr_dataset_sample_shape(const gr_dataset *d, int64_t i);
/* "IDX u8[10000,28,28] from 'x.gz'" into buf; returns buf. */
char *gr_dataset_describe(const gr_dataset *d, char *buf, size_t size);

/* Takes the labels from a second file (IDX, NPY of ints or floats, CSV
 * without a label column): one value per sample (class id or scalar
 * target) or several (a target vector). Replaces any labels the data
 * carried. The counts must match (GR_ERR_BAD_ARG naming both files). */
gr_code gr_dataset_set_labels(gr_dataset *d, const char *path, gr_status *st);
int gr_dataset_has_labels(const gr_dataset *d);
/* Values per sample's label (1 for class ids); 0 without labels. */
int64_t gr_dataset_label_width(const gr_dataset *d);
/* Number of sub-folders for image folders; otherwise the largest label + 1
 * when every label is a non-negative integer; 0 when the labels are not
 * class ids (fractions, negative, vectors) or there are none. */
int64_t gr_dataset_n_classes(const gr_dataset *d);
/* Class name k of an image folder (borrowed), NULL for other formats. */
const char *gr_dataset_class_name(const gr_dataset *d, int64_t k);
/* Checks every label is a class id in [0, n_classes): GR_ERR_BAD_ARG
 * naming the label file, the sample and the value otherwise. */
gr_code gr_dataset_check_labels(const gr_dataset *d, int64_t n_classes, gr_status *st);

/* ----- preprocessing: done per batch, into the model's input */

#define GR_DATA_MAX_CHANNELS 4

typedef enum {
    GR_DATA_LAYOUT_NCHW = 0, /* input [C,H,W] (the default) */
    GR_DATA_LAYOUT_NHWC,     /* input [H,W,C] */
} gr_data_layout;

typedef enum {
    /* Bilinear, half-pixel centres (align_corners=False): what PyTorch's
     * F.interpolate(mode='bilinear', align_corners=False, antialias=False)
     * computes: src = (dst + 0.5) * in/out - 0.5, clamped below at 0. */
    GR_DATA_FIT_RESIZE = 0,
    /* Centred: zero-pads (raw value 0, normalised like any pixel) where the
     * sample is smaller, crops where it is larger; an odd extra row/column
     * is padded at the bottom/right, or cropped from the top/left. */
    GR_DATA_FIT_PAD,
} gr_data_fit;

typedef struct gr_preprocess {
    /* Model input per sample, without the batch dim: [C,H,W] or [H,W,C]
     * (as layout says), [H,W] (one channel), or [D] (flat). */
    gr_shape input;
    gr_data_layout layout;
    gr_data_fit fit;   /* when the sample's H,W differ from the input's */
    double scale;      /* raw * scale first; 0: 1/255 for u8 data, else 1 */
    /* Then (x - mean[c]) / std[c]; n_norm 0: none, 1: the same for every
     * channel, else one per channel of the input. */
    int n_norm;
    float mean[GR_DATA_MAX_CHANNELS], std[GR_DATA_MAX_CHANNELS];
} gr_preprocess;

/* Writes samples indices[0..n) of d into out, n * numel(pp->input)
 * elements of input_dtype, and their labels into labels_out. out NULL:
 * labels only (pp may then be NULL).
 *
 * Samples: a sample whose element count equals the input's and that is
 * not an image needing a layout change is converted as is ([784] into
 * [784] or [1,28,28]; [28,28] into [1,28,28]). Otherwise both sides are
 * taken as images: rank-2 samples are grey [H,W]; rank-3 samples are
 * [C,H,W] when the first dim is 1, 3 or 4 and the last is not, [H,W,C]
 * when the last is (image folders always), else as pp->layout. Channels
 * are converted (grey -> copies, RGBA -> RGB, grey+alpha -> grey, RGB ->
 * grey by luma), then the scaled planes are fitted (pp->fit) to the
 * input's H,W, normalised and written in pp->layout.
 * Integer data into an integer input_dtype (token ids) is copied as
 * integers without scaling; the element counts must match.
 * Float input dtypes: f32, f64, f16, bf16.
 *
 * Labels (labels_out NULL or label_dtype UNDEFINED: none written): an
 * integer label_dtype writes n class ids (every label must be a
 * non-negative integer of width 1); a float one writes n * label_width
 * targets. Samples are processed in parallel (OpenMP), each independently,
 * so the result is bit-identical for any thread count. Errors name the
 * file (the image for image folders) and the sample. */
gr_code gr_dataset_batch(const gr_dataset *d, const int64_t *indices, int64_t n,
                         const gr_preprocess *pp, gr_dtype input_dtype, void *out,
                         gr_dtype label_dtype, void *labels_out, gr_status *st);

/* ----- splits and epochs */

/* One permutation of 0..n-1 seeded by seed: its first round(n * val_fraction)
 * entries (at least 1 when val_fraction > 0) are the validation set, the
 * rest the training set; both returned sorted ascending (gr_malloc'd, the
 * caller gr_frees them; NULL when empty). val_fraction in [0, 1), and the
 * training set must not be empty (GR_ERR_BAD_ARG). */
gr_code gr_data_split(int64_t n, double val_fraction, uint64_t seed, int64_t **train,
                      int64_t *n_train, int64_t **val, int64_t *n_val, gr_status *st);

/* Where training stands in the data: plain data (a checkpoint copies it).
 * The order of epoch e is a function of (seed, e) alone, so a resumed run
 * rebuilds it with gr_data_epoch_order and continues at position. */
typedef struct {
    uint64_t seed;
    int64_t batch_size;
    int shuffle;       /* 0: sequential order (--no-shuffle) */
    int drop_last;     /* 1: skip a final batch smaller than batch_size */
    int64_t epoch;     /* 0-based */
    int64_t position;  /* index into the epoch order of the next batch */
} gr_data_iter;

void gr_data_iter_init(gr_data_iter *it, uint64_t seed, int64_t batch_size, int shuffle,
                       int drop_last);
/* order[i] = pool[p[i]] for this epoch's permutation p of 0..n-1 (the
 * identity without shuffle). pool and order hold n entries. */
void gr_data_epoch_order(const gr_data_iter *it, const int64_t *pool, int64_t n,
                         int64_t *order);
/* The next batch of the epoch over n samples: *first gets its start in the
 * order; returns its size (the last may be smaller, unless drop_last), or 0
 * when the epoch is over. */
int64_t gr_data_iter_next(gr_data_iter *it, int64_t n, int64_t *first);
/* Batches per epoch over n samples. */
int64_t gr_data_iter_batches(const gr_data_iter *it, int64_t n);
void gr_data_iter_next_epoch(gr_data_iter *it); /* epoch + 1, position 0 */

#endif /* GR_RUNTIME_H */
