/* resize_internal.h: Resize's compile-time plan (resize_plan.c), shared with
 * its emitter (resize.c): the parsed attributes and, per resized axis, the
 * taps of every output index: input offsets (clamped indices times the
 * axis stride), weights, and tf_crop_and_resize extrapolation flags. */
#ifndef GR_RESIZE_INTERNAL_H
#define GR_RESIZE_INTERNAL_H

#include "codegen/cg_internal.h"

#define RS_MAX_TAPS 64

typedef enum { RS_NEAREST, RS_LINEAR, RS_CUBIC } rs_mode;
typedef enum {
    RS_HALF_PIXEL, RS_HALF_PIXEL_SYMMETRIC, RS_PYTORCH_HALF_PIXEL, RS_ALIGN_CORNERS,
    RS_ASYMMETRIC, RS_TF_CROP_AND_RESIZE
} rs_ctm;
typedef enum { RS_ROUND_PREFER_FLOOR, RS_ROUND_PREFER_CEIL, RS_FLOOR, RS_CEIL } rs_nearest;

typedef struct {
    rs_mode mode;
    rs_ctm ctm;
    rs_nearest nearest;
    int antialias, exclude_outside;
    double cubic_a, extrapolation;
    double scale[GR_MAX_RANK];     /* per axis of X (1 when not resized) */
    double roi[GR_MAX_RANK][2];
    int has_roi, roi_f32;
    int resized[GR_MAX_RANK];      /* 0: the axis is copied as is */
} rs_params;

typedef struct {
    int taps;
    int64_t *off;        /* [out * taps] input offsets */
    double *w;           /* [out * taps] weights */
    unsigned char *ext;  /* [out] 1: extrapolated */
    int any_ext;
} rs_axis;

gr_code rs_params_read(const gr_node *n, rs_params *p, gr_status *st);
gr_code rs_axis_plan(const rs_params *p, int axis, int64_t in_w, int64_t out_w,
                     int64_t in_stride, rs_axis *ax, gr_status *st);
void rs_axis_free(rs_axis *ax);

#endif
