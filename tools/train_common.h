/* train_common.h: what `graft train` and `graft eval` share (tools/train.c):
 * parsing --head and --loss, the batch size, compiling a training or an
 * evaluation step from a clone of the model, preprocessing options. */
#ifndef GR_TRAIN_COMMON_H
#define GR_TRAIN_COMMON_H

#include "passes/gr_passes.h"
#include "runtime/gr_runtime.h"

/* A compiled step and what it owns. The graph outlives the plan: plan
 * buffer names point into it (codegen/jit.c borrows value names). */
typedef struct {
    gr_graph *graph;
    gr_plan *plan;
    gr_train_step *step;
} tc_step;

void tc_step_free(tc_step *s);
gr_code tc_parse_head(const char *text, gr_train_opts *o, gr_status *st);
gr_code tc_parse_loss(const char *text, gr_loss_kind *out, gr_status *st);
/* The batch: the model input's fixed first dim (requested must agree), or
 * requested, or 32. */
gr_code tc_batch(const gr_graph *model, int64_t requested, int64_t *batch, gr_status *st);
/* 1 if the model input's first dim is dynamic (other batch sizes compile). */
int tc_batch_is_free(const gr_graph *model);
/* Clones model, runs the training (eval 0) or evaluation pipeline at batch
 * (shapes: --shape, dim 0 replaced by batch), compiles, opens a session. */
gr_code tc_compile(const gr_graph *model, const gr_train_opts *o, const gr_pass_opts *shapes,
                   int64_t batch, int eval, int threads, tc_step *out, gr_status *st);
/* Preprocessing into the step's model input: --fit, --normalize M,S. */
gr_code tc_preprocess(const gr_train_step *s, const char *fit, const char *normalize,
                      gr_preprocess *pp, gr_status *st);

/* graft compile --train (tools/compile.c): the graphs `graft train` would
 * compile for the same options, parsed by train's own parser (--data is
 * not needed; options that only matter to a run, such as --epochs, are
 * accepted and unused): the training step and, for inference on the
 * trained weights, the model in inference mode with the trainable
 * parameters (and BatchNorm statistics) as variables of the same names. */
typedef struct {
    gr_graph *step, *infer;
    int64_t batch;
    int adam;                 /* the step's scalars (gr_aot_optimizer) */
    int64_t accumulate;
    double dampening, beta1, beta2, weight_decay;
    uint64_t seed;
} tc_graphs;

/* Returns -1 with *out filled, else the exit status after printing the
 * error (EXIT_OK after --help). */
int tc_graphs_from_args(int argc, char **argv, tc_graphs *out);
void tc_graphs_free(tc_graphs *t);

#endif
