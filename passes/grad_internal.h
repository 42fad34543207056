/* grad_internal.h: the gradient context shared by autodiff.c and the
 * builders (grad_build.c). Rules see it only through passes/grad.h. */
#ifndef GR_PASSES_GRAD_INTERNAL_H
#define GR_PASSES_GRAD_INTERNAL_H

#include <stdio.h>

#include "passes/grad.h"

struct gr_grad_ctx {
    gr_graph *g;
    int n_values0;          /* values before autodiff: needs[] covers these */
    const char *needs;      /* needs[id]: depends on a trainable parameter */
    const gr_node *current; /* forward node whose rule is running */
};

#endif
