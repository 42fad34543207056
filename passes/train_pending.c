/* train_pending.c: training passes not written yet; each reports so. */
#include "passes/gr_passes.h"

#define PENDING(fn, what)                                                      \
    gr_code fn(gr_graph *g, const gr_pass_opts *opts, gr_status *st) {       \
        (void)g;                                                               \
        if (!opts || !opts->train) return GR_OK;                               \
        return gr_fail(st, GR_ERR_UNSUPPORTED, "%s is not implemented yet", what); \
    }
PENDING(gr_pass_head, "--head")
PENDING(gr_pass_train, "training")
PENDING(gr_pass_train_mode, "training mode")
PENDING(gr_pass_loss, "the loss")
PENDING(gr_pass_optimizer, "the optimizer")

void gr_train_opts_default(gr_train_opts *o) {
    *o = (gr_train_opts){0};
    o->loss = GR_LOSS_CE;
    o->optimizer = GR_OPTIMIZER_SGD;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->accumulate = 1;
    o->seed = 0;
}
