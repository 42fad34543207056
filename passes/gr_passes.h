/* gr_passes.h: graph -> graph rewrites. Every pass has the same signature
 * and is listed once in passes/passes.def, so the driver, --dump-after and
 * the tests share one list. In test builds (GR_VERIFY_PASSES) the driver
 * runs gr_graph_verify after every pass.
 *
 * Usage:
 *     gr_pass_opts opts = {.batch = 1};
 *     static const char *const pipeline[] = {"specialize", "shapes", NULL};
 *     if (gr_passes_run(g, pipeline, &opts, &st) != GR_OK) ...
 */
#ifndef GR_PASSES_H
#define GR_PASSES_H

#include "ir/gr_ir.h"

/* An input shape given by the user (--shape NAME=1x3x32x32). */
typedef struct {
    const char *name;
    gr_shape shape;
} gr_input_shape;

/* ---------------------------------------------------------------- training
 *
 * Fine-tuning is a pipeline of passes too. tools/train.c runs, on the
 * imported model:
 *     "head"     (--head) replace the final classifier          } model edits,
 *     "train"    mark trainable / frozen parameters             } also exported
 * then, on a clone specialised to the batch size:
 *     "specialize", "shapes",
 *     "train_mode"  BatchNormalization on batch statistics (running
 *                   statistics updated), Dropout with a seeded mask
 *     "loss"        the loss on a model output (g->loss)
 *     "l2sp"        --l2sp: the penalty toward the initial weights, added
 *                   to g->loss (and to the reported GR_TRAIN_LOSS)
 *     "autodiff"    gradients of every trainable parameter (g->grads)
 *     "optimizer"   clipping, accumulation, update rules (g->updates)
 *     "cse", "fold", "dce", "fuse"
 * and for evaluation the same without "train_mode", "autodiff" and
 * "optimizer" (opts.train->eval = 1).
 *
 * The compiled training step's contract (scripts and tools rely on it):
 *   inputs   the model's inputs, then GR_TRAIN_LABELS (i64 [N] class ids
 *            for ce; f32 of the output's shape for mse, l1, bce), then the
 *            run-time scalars the graph uses, each f32 [] unless noted:
 *              "graft.lr"         learning rate of this step
 *              "graft.damp"       SGD: 1 on the first step, else 1-dampening
 *                                 (PyTorch's momentum buffer starts as g)
 *              "graft.step_size"  Adam/AdamW: lr / (1 - beta1^t)
 *              "graft.bc2_sqrt"   Adam/AdamW: sqrt(1 - beta2^t)
 *              "graft.decay"      AdamW: 1 - lr * weight_decay
 *              "graft.seed"       i64 []: dropout masks of this step
 *              "graft.apply"      bool []: accumulation: 1 on the micro-step
 *                                 that applies the summed gradient
 *            A graph has only the ones it uses (look them up by name).
 *   outputs  GR_TRAIN_LOSS (f32 [], the mean loss of the batch), then the
 *            model output the loss is attached to (for accuracy).
 *   state    every trainable parameter under its own name, optimizer
 *            state as NAME.momentum / NAME.m / NAME.v, accumulated
 *            gradients as NAME.grad_sum, BatchNorm running statistics under
 *            their ONNX names: gr_plan_find_buffer + gr_session_state.
 */
#define GR_TRAIN_LABELS "graft.labels"
#define GR_TRAIN_LOSS "graft.loss"

typedef enum { GR_LOSS_CE, GR_LOSS_MSE, GR_LOSS_L1, GR_LOSS_BCE } gr_loss_kind;
typedef enum { GR_OPTIMIZER_SGD, GR_OPTIMIZER_ADAM, GR_OPTIMIZER_ADAMW } gr_optimizer_kind;

typedef struct {
    int eval;                 /* 1: build the evaluation graph (loss only) */
    /* train: parameters whose names match a freeze glob (fnmatch) are
     * frozen; if any train_only glob is given, only matching parameters
     * train; freeze_until freezes everything feeding that node (and the
     * node's own parameters). Frozen parameters become constants. */
    int n_freeze;
    const char *const *freeze;
    int n_train_only;
    const char *const *train_only;
    const char *freeze_until;
    /* head: > 0 replaces the final Gemm/MatMul(+Add) classifier (or the one
     * at head_node) by a new one with head_classes outputs, initialised
     * like PyTorch's nn.Linear from seed. */
    int64_t head_classes;
    const char *head_node;
    uint64_t seed;
    /* loss */
    gr_loss_kind loss;
    const char *loss_output;  /* model output (NULL: the first) */
    double label_smoothing;   /* ce */
    int n_class_weights;      /* ce: 0 or one per class */
    const float *class_weights;
    /* optimizer (PyTorch semantics) */
    gr_optimizer_kind optimizer;
    double momentum, dampening, weight_decay;
    int nesterov;
    double beta1, beta2, eps; /* Adam/AdamW */
    double clip_norm;         /* > 0: clip the global gradient norm */
    int accumulate;           /* > 1: sum gradients over that many batches */
    /* ---- per-layer learning rates and L2-SP (passes/lr_groups.c, l2sp.c)
     * lr_groups (--lr-group GLOB=FACTOR): the last group whose glob matches
     * a parameter sets its factor; layer_decay > 0 (--layer-decay F) gives
     * a parameter at layer depth d the factor F^(K-d), K the deepest
     * trainable depth (gr_lr_factors); a parameter's learning rate is
     * lr * layer factor * group factor (0 disables the decay).
     * l2sp_alpha, l2sp_beta (--l2sp A,B): loss += A*||w - w0||^2 over the
     * model's trainable parameters + B*||w||^2 over new ones (head,
     * adapters); w0 = the values training starts from. */
    int n_lr_groups;
    const struct gr_lr_group *lr_groups;
    double layer_decay;
    double l2sp_alpha, l2sp_beta;
} gr_train_opts;

/* --lr-group GLOB=FACTOR: fnmatch glob over parameter names, factor >= 0. */
typedef struct gr_lr_group {
    const char *glob;
    double factor;
} gr_lr_group;

/* Per-parameter learning-rate factors (passes/lr_groups.c). Layer groups
 * come from the graph: a "layer" is a Conv, ConvTranspose, Gemm or MatMul
 * node with an input computed from weights alone (a float parameter, or
 * its Transpose or Reshape by constants); its depth is 1 + the largest
 * depth of the layers upstream of it (parallel layers, such as Q, K and V,
 * share a depth). A parameter belongs to the depth of its first consumer
 * (in topological order, looking through weight-only nodes): a layer's own
 * depth, or for other nodes (bias Add, BatchNormalization,
 * LayerNormalization, an IA3 Mul) the largest depth upstream of it, so a
 * BN or bias joins the layer before it; parameters before any layer
 * (embeddings) have depth 0. K = the largest depth of a trainable
 * parameter. For every value id i (arrays of g->n_values):
 *   layer[i]  the depth of parameter i (-1: not a float parameter, or a
 *             BatchNormalization running statistic);
 *   factor[i] layer_decay^(K - layer[i]) (1 without --layer-decay) times
 *             the factor of the last --lr-group matching it.
 * Fails if an --lr-group glob matches no float parameter or a factor is
 * negative or not finite, or layer_decay is negative. */
gr_code gr_lr_factors(const gr_graph *g, const gr_train_opts *t, int *layer, double *factor,
                      gr_status *st);
/* What `graft train --dry-run` and --verbose print: parameters by group
 * (layer depth and learning-rate factor: count, bytes, lr = base_lr *
 * factor), the frozen ones, the new head and the adapters added. g is the
 * model after the "head", adapter and "train" passes. */
gr_code gr_train_report(const gr_graph *g, const gr_train_opts *t, double base_lr,
                        FILE *out, gr_status *st);

/* PyTorch's defaults: SGD, no momentum, Adam betas (0.9, 0.999), eps 1e-8,
 * ce loss, accumulate 1. */
void gr_train_opts_default(gr_train_opts *o);

typedef struct {
    /* specialize: > 0 fixes the first dim of every input whose first dim
     * is dynamic (--batch N). */
    int64_t batch;
    /* specialize: explicit input shapes, applied before batch. */
    int n_input_shapes;
    const gr_input_shape *input_shapes;
    /* Driver: print the graph after the pass of this name ("all": every
     * pass) to dump (stderr if NULL). */
    const char *dump_after;
    FILE *dump;
    /* Training passes (head, train, train_mode, loss, optimizer); NULL for
     * inference pipelines. */
    const gr_train_opts *train;
} gr_pass_opts;

typedef gr_code (*gr_pass_fn)(gr_graph *g, const gr_pass_opts *opts,
                              gr_status *st);

#define PASS(name, fn, summary)                                                \
    gr_code fn(gr_graph *g, const gr_pass_opts *opts, gr_status *st);
#include "passes/passes.def"
#undef PASS

/* The pass of that name, or NULL. */
gr_pass_fn gr_pass_find(const char *name);
/* Runs the named passes in order (names ends with NULL). Errors are
 * prefixed with the pass name. */
gr_code gr_passes_run(gr_graph *g, const char *const *names,
                      const gr_pass_opts *opts, gr_status *st);
/* Parses "1x3x32x32" (or "Nx3x32x32": a letter-led part is a symbol). */
gr_code gr_parse_shape(const char *text, gr_shape *out, gr_status *st);

#endif /* GR_PASSES_H */
