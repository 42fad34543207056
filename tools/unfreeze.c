/* unfreeze.c: `graft train --unfreeze-every E`: progressive unfreezing
 * wired into the training loop (see unfreeze.h). The export graph carries
 * the trainable set: each stage is applied to it (gr_unfreeze_apply) and
 * the training step compiled from it, so frozen parameters are constants
 * holding their current values. */
#include <string.h>

#include "tools/unfreeze.h"

/* "unfreeze: epoch 3: training groups 2-3 of 3 (12 parameters)". */
static void report(const tu_schedule *u, int64_t epoch) {
    int n = gr_unfreeze_n_groups(u->groups), first = n, last = -1, params = 0;
    for (int g = 0; g < n; g++)
        if (gr_unfreeze_active(u->groups, g, u->stage)) {
            if (g < first) first = g;
            last = g;
        }
    for (int i = 0; i < gr_unfreeze_n_params(u->groups); i++) {
        int g;
        gr_unfreeze_param(u->groups, i, &g);
        params += gr_unfreeze_active(u->groups, g, u->stage);
    }
    fprintf(u->out, "unfreeze: epoch %lld: training groups %d-%d of %d (%d parameters)\n",
            (long long)epoch + 1, first + 1, last + 1, n, params);
    fflush(u->out);
}

/* One line per group: its first epoch and its parameters. */
static void print_groups(const tu_schedule *u) {
    int n = gr_unfreeze_n_groups(u->groups);
    for (int g = 0; g < n; g++) {
        fprintf(u->out, "unfreeze group %d of %d (from epoch %lld):", g + 1, n,
                (long long)gr_unfreeze_group_epoch(u->groups, g) + 1);
        for (int i = 0; i < gr_unfreeze_n_params(u->groups); i++) {
            int pg;
            const char *name = gr_unfreeze_param(u->groups, i, &pg);
            if (pg == g) fprintf(u->out, " %s", name);
        }
        fputc('\n', u->out);
    }
}

gr_code tu_init(tu_schedule *u, gr_graph *model, tc_step *train, const gr_train_opts *o,
                const gr_unfreeze_opts *uo, const gr_pass_opts *shapes, int64_t batch,
                int threads, int verbose, FILE *out, gr_status *st) {
    memset(u, 0, sizeof *u);
    GR_TRY(gr_unfreeze_new(model, uo, &u->groups, st));
    u->model = model, u->train = train, u->opts = *o, u->shapes = shapes;
    u->opts.unfreeze = u->groups;
    u->batch = batch, u->threads = threads, u->verbose = verbose, u->out = out;
    if (verbose) print_groups(u);
    return GR_OK;
}

gr_code tu_compile_first(tu_schedule *u, int64_t epoch, gr_status *st) {
    u->stage = gr_unfreeze_stage(u->groups, epoch);
    GR_TRY(gr_unfreeze_apply(u->groups, u->model, u->stage, st));
    GR_TRY(tc_compile(u->model, &u->opts, u->shapes, u->batch, 0, u->threads, u->train, st));
    report(u, epoch);
    return GR_OK;
}

gr_code tu_all(tu_schedule *u, gr_status *st) {
    return gr_unfreeze_apply(u->groups, u->model, gr_unfreeze_n_groups(u->groups), st);
}

gr_code tu_restage(void *ctx, int64_t epoch, gr_train_step **train, gr_status *st) {
    tu_schedule *u = ctx;
    int stage = gr_unfreeze_stage(u->groups, epoch);
    if (stage == u->stage) return GR_OK;
    GR_TRY(gr_graph_store_state(u->model, *train, st));
    GR_TRY(gr_unfreeze_apply(u->groups, u->model, stage, st));
    tc_step next = {0};
    gr_code code = tc_compile(u->model, &u->opts, u->shapes, u->batch, 0, u->threads, &next, st);
    if (code != GR_OK) {
        tc_step_free(&next);
        return gr_status_prefix(st, "unfreezing before epoch %lld: ", (long long)epoch + 1);
    }
    gr_train_step_copy_state(next.step, *train);
    tc_step_free(u->train);
    *u->train = next;
    *train = next.step;
    u->stage = stage;
    report(u, epoch);
    return tu_all(u, st);
}

void tu_free(tu_schedule *u) {
    gr_unfreeze_free(u->groups);
    u->groups = NULL;
}
