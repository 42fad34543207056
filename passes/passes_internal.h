/* passes_internal.h: declarations shared by the files of passes/ only:
 * the reference evaluator used for constant folding (eval.c, eval_move.c),
 * the node folder shared by the shapes and fold passes (fold.c), and the
 * BatchNorm statistics marker of train.c and lr_groups.c. */
#ifndef GR_PASSES_INTERNAL_H
#define GR_PASSES_INTERNAL_H

#include "passes/gr_passes.h"

/* 1 if the evaluator can compute op. */
int gr_eval_supports(gr_op op);

/* Computes the outputs of n from its inputs, exactly (integers in int64,
 * floats in double, then stored in the output's dtype).
 * inputs: n->n_inputs entries; NULL for an omitted optional input. Data may
 * be NULL for Shape and Size, which read only the shape.
 * outputs: n->n_outputs entries whose dtype and shape the caller set (from
 * the shape rule) and whose data (nbytes, zeroed) the caller allocated.
 * The evaluator checks the shapes it computes against outputs'.
 * Returns GR_ERR_UNSUPPORTED for an op it cannot evaluate, GR_ERR_NUMERIC
 * when the result is undefined (integer division by zero): callers then
 * leave the node alone. Bad inputs (index out of range) are
 * GR_ERR_BAD_MODEL naming the node. */
gr_code gr_eval_node(const gr_node *n, const gr_tensor *const *inputs,
                     gr_tensor *outputs, gr_status *st);

/* Data movement and shape ops (eval_move.c), called by gr_eval_node. */
int gr_eval_move_supports(gr_op op);
gr_code gr_eval_move(const gr_node *n, const gr_tensor *const *inputs,
                     gr_tensor *outputs, gr_status *st);

/* "node 'name' (Op): " + message. */
gr_code gr_eval_fail(const gr_node *n, gr_status *st, gr_code code,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Numpy broadcast of two static shapes (GR_ERR_BAD_MODEL naming n). */
gr_code gr_eval_broadcast(const gr_node *n, const gr_shape *a, const gr_shape *b,
                          gr_shape *out, gr_status *st);
/* Element strides of `in` broadcast to `out` (0 along broadcast dims), and
 * the offset in `in` of element i of `out`. */
void gr_eval_bcast_strides(const gr_shape *in, const gr_shape *out,
                           int64_t strides[GR_MAX_RANK]);
int64_t gr_eval_bcast_offset(int64_t i, const gr_shape *out, const int64_t *strides);

/* Checks that out has the shape the evaluator computed (r). */
gr_code gr_eval_check_shape(const gr_node *n, const gr_tensor *out,
                            const gr_shape *r, gr_status *st);

/* What folding may do. */
typedef struct {
    /* Output elements a folded node may produce; < 0: no limit. */
    int64_t max_numel;
    /* 1: float PARAMs that are not trainable (frozen weights, or state such
     * as running statistics) may be read; 0: only integer PARAMs may. */
    int float_params;
} gr_fold_limits;

/* 1 if n is a folding candidate (see gr_fold_node), before size limits. */
int gr_fold_candidate(const gr_node *n, const gr_fold_limits *limits);

/* Folds n if it can: every input constant (or Shape/Size of a static
 * shape), an op the evaluator supports, static output shapes from the
 * shape rule that already ran, no trainable PARAM input (except for
 * Shape/Size, which ignore data), no other float PARAM unless
 * limits->float_params, and outputs within limits->max_numel
 * (ConstantOfShape, Constant and Identity of a CONST are exempt). On
 * success its outputs become CONST values and n is removed; *folded tells
 * whether that happened. */
gr_code gr_fold_node(gr_graph *g, gr_node *n, const gr_fold_limits *limits,
                     int *folded, gr_status *st);

/* gr_graph_compact, whose allocation failures are silent: checks that
 * ids and the name index came out whole, else GR_ERR_NOMEM. */
gr_code gr_passes_compact(gr_graph *g, gr_status *st);

/* stat[v->id] = 1 for every BatchNormalization running mean and variance
 * (inputs 3 and 4), which never train (lr_groups.c; used by train.c). */
void gr_mark_bn_statistics(const gr_graph *g, char *stat);

/* BatchNormalization n with training_mode = 1, as ONNX defines it
 * (train_mode.c): n becomes primitive ops normalising with the batch's
 * mean and biased variance; its running_mean / running_var outputs, if
 * present, are input * momentum + batch * (1 - momentum). The outputs keep
 * their names. Requires a static input of rank >= 2; new nodes are
 * appended (the caller sorts). */
gr_code gr_lower_batch_norm_training(gr_graph *g, gr_node *n, gr_status *st);

#endif /* GR_PASSES_INTERNAL_H */
