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

/* Per-step timing (for --verbose). While on, every run adds the wall time
 * of each step (from the end of the previous step's barrier to the end of
 * its own) to that step's total. */
void gr_session_profile(gr_session *s, int on);
/* Milliseconds per step summed over the profiled runs (plan->n_steps
 * entries, borrowed from s); *n_runs (if not NULL) gets the run count. */
const double *gr_session_step_ms(const gr_session *s, int64_t *n_runs);

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

#endif /* GR_RUNTIME_H */
