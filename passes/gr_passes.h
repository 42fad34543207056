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
