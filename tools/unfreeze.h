/* unfreeze.h: progressive unfreezing in `graft train` (tools/unfreeze.c):
 * the groups and schedule of passes/unfreeze.c wired to the training
 * loop's restage hook (gr_train_config.restage), which recompiles the
 * training step when the trainable set changes. */
#ifndef GR_TOOLS_UNFREEZE_H
#define GR_TOOLS_UNFREEZE_H

#include <stdio.h>

#include "tools/train_common.h"

typedef struct {
    gr_unfreeze *groups;
    gr_graph *model;           /* the export graph (borrowed) */
    tc_step *train;            /* the session's training step (borrowed) */
    gr_train_opts opts;        /* the run's, with opts.unfreeze = groups */
    const gr_pass_opts *shapes;
    int64_t batch;
    int threads, verbose;
    int stage;                 /* groups training in *train */
    FILE *out;                 /* stage reports */
} tu_schedule;

/* Groups model's trainable parameters (after the "train" pass) and keeps
 * what recompiling needs; prints the groups when verbose. On failure
 * u->groups stays NULL. */
gr_code tu_init(tu_schedule *u, gr_graph *model, tc_step *train, const gr_train_opts *o,
                const gr_unfreeze_opts *uo, const gr_pass_opts *shapes, int64_t batch,
                int threads, int verbose, FILE *out, gr_status *st);
/* Makes the export graph's trainable set the stage of epoch and compiles
 * *u->train for it (the first training step). */
gr_code tu_compile_first(tu_schedule *u, int64_t epoch, gr_status *st);
/* Marks every grouped parameter trainable again (the final set), for the
 * evaluation steps and the export. */
gr_code tu_all(tu_schedule *u, gr_status *st);
/* gr_train_config.restage (ctx: a tu_schedule): when epoch's stage
 * differs from the compiled one, stores *train's state into the export
 * graph (frozen parameters become constants at their current values),
 * applies the stage, compiles a new step, copies the state over by name
 * (weights, optimizer state, BatchNorm statistics; newly unfrozen
 * parameters start with zero optimizer state), frees the old step and
 * reports the new trainable set. */
gr_code tu_restage(void *ctx, int64_t epoch, gr_train_step **train, gr_status *st);
void tu_free(tu_schedule *u); /* accepts an all-zero u */

#endif
