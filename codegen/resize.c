/* resize.c: the Resize emitter. Nearest is a view (movement_internal.h): a
 * table of source offsets per resized axis. Linear and cubic (also
 * antialiased) sum taps with separable weights: per output row the taps of
 * the resized outer axes are combined once, then each element adds its
 * inner-axis taps. Plans come from resize_plan.c; f64 data is computed in
 * f64, everything else in f32 (integers rounded half to even, saturated). */
#include <string.h>

#include "codegen/movement_internal.h"
#include "codegen/resize_internal.h"

#define TASK_ELEMS 4096   /* output elements per task */
#define MAX_COMBOS 1024   /* taps summed per output element */

static gr_code emit_nearest(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                            const rs_params *p, gr_status *st) {
    const gr_value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank;
    int64_t xs[GR_MAX_RANK], ys[GR_MAX_RANK];
    mv_strides(&x->shape, xs);
    mv_strides(&y->shape, ys);
    mv_view v;
    mv_view_init(&v, x, y);
    unsigned char buf[8] = {0};
    gr_dtype_store_f64(y->dtype, buf, 0, p->extrapolation);
    v.fill_kind = MV_FILL_CONST;
    memcpy(&v.fill_bits, buf, sizeof v.fill_bits);
    for (int a = 0; a < r; a++) {
        int64_t out_w = y->shape.dims[a];
        if (!p->resized[a]) {
            mv_add_affine(&v, out_w, ys[a], xs[a]);
            continue;
        }
        rs_axis ax;
        int64_t *table = gr_malloc(sizeof(int64_t) * (size_t)(out_w ? out_w : 1));
        gr_code rc = table ? rs_axis_plan(p, a, x->shape.dims[a], out_w, xs[a], &ax, st)
                           : gr_fail(st, GR_ERR_NOMEM, "out of memory");
        if (rc != GR_OK) {
            gr_free(table);
            mv_views_free(&v, 1);
            return rc;
        }
        for (int64_t o = 0; o < out_w; o++) {
            int t = ax.w[o * 2 + 1] == 1.0 ? 1 : 0;
            table[o] = ax.ext[o] ? MV_FILL : ax.off[o * 2 + t];
        }
        rs_axis_free(&ax);
        mv_add_table(&v, out_w, ys[a], table);
    }
    return mv_emit_node(m, n, name, k, &v, 1, st);
}

/* ------------------------------------------------------ linear and cubic */

typedef struct {
    const gr_value *x, *y;
    gr_dtype dt, comp;
    LLVMTypeRef ct;
    int rank;
    int64_t xs[GR_MAX_RANK];
    rs_axis ax[GR_MAX_RANK];
    LLVMValueRef off[GR_MAX_RANK], w[GR_MAX_RANK], ext[GR_MAX_RANK];
    double extrapolation;
    LLVMValueRef c_off[MAX_COMBOS], c_w[MAX_COMBOS];
    int n_combos;
} interp;

static LLVMValueRef global_weights(cg_kernel *k, const interp *s, const double *w, int64_t n) {
    LLVMValueRef *items = gr_malloc(sizeof(LLVMValueRef) * (size_t)(n ? n : 1));
    GR_ASSERT(items);
    for (int64_t i = 0; i < n; i++) items[i] = LLVMConstReal(s->ct, w[i]);
    LLVMValueRef g = LLVMAddGlobal(k->m->mod, LLVMArrayType(s->ct, (unsigned)n), "rs.w");
    LLVMSetInitializer(g, LLVMConstArray(s->ct, items, (unsigned)n));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    gr_free(items);
    return g;
}

static LLVMValueRef load_at(cg_kernel *k, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef i) {
    return LLVMBuildLoad2(k->b, t, LLVMBuildInBoundsGEP2(k->b, t, base, &i, 1, ""), "");
}

/* Row r's outer combos: offsets and weights over the resized outer axes;
 * returns the row's extrapolation flag (i1) or NULL. */
static LLVMValueRef row_combos(cg_kernel *k, interp *s, LLVMValueRef r) {
    cg_module *m = k->m;
    LLVMValueRef base = cg_i64(k, 0), flag = NULL, rem = r, idx[GR_MAX_RANK];
    for (int d = s->rank - 2; d >= 0; d--) {
        LLVMValueRef ext = cg_i64(k, s->y->shape.dims[d]);
        idx[d] = d == 0 ? rem : LLVMBuildURem(k->b, rem, ext, "");
        if (d > 0) rem = LLVMBuildUDiv(k->b, rem, ext, "");
        if (!s->ax[d].taps)
            base = LLVMBuildAdd(k->b, base, LLVMBuildMul(k->b, idx[d], cg_i64(k, s->xs[d]), ""), "");
    }
    s->n_combos = 1;
    s->c_off[0] = base;
    s->c_w[0] = LLVMConstReal(s->ct, 1.0);
    for (int d = 0; d + 1 < s->rank; d++) {
        int T = s->ax[d].taps;
        if (!T) continue;
        LLVMValueRef first = LLVMBuildMul(k->b, idx[d], cg_i64(k, T), "");
        LLVMValueRef offs[RS_MAX_TAPS], ws[RS_MAX_TAPS];
        for (int t = 0; t < T; t++) {
            LLVMValueRef i = LLVMBuildAdd(k->b, first, cg_i64(k, t), "");
            offs[t] = load_at(k, m->t_i64, s->off[d], i);
            ws[t] = load_at(k, s->ct, s->w[d], i);
        }
        int n = s->n_combos;
        for (int c = n - 1; c >= 0; c--) /* expand in place, back to front */
            for (int t = T - 1; t >= 0; t--) {
                s->c_off[c * T + t] = LLVMBuildAdd(k->b, s->c_off[c], offs[t], "");
                s->c_w[c * T + t] = LLVMBuildFMul(k->b, s->c_w[c], ws[t], "");
            }
        s->n_combos = n * T;
        if (s->ax[d].any_ext) {
            LLVMValueRef e = LLVMBuildICmp(k->b, LLVMIntNE, load_at(k, m->t_i64, s->ext[d], idx[d]),
                                           cg_i64(k, 0), "");
            flag = flag ? LLVMBuildOr(k->b, flag, e, "") : e;
        }
    }
    return flag;
}

/* y[row, j] for j in [c0, c1). */
static void emit_elements(cg_kernel *k, interp *s, LLVMValueRef r, LLVMValueRef c0,
                          LLVMValueRef c1) {
    cg_module *m = k->m;
    int last = s->rank - 1, T = s->ax[last].taps;
    LLVMValueRef flag = row_combos(k, s, r);
    LLVMValueRef xp = cg_arg(k, s->x), yp = cg_arg(k, s->y);
    LLVMValueRef out_row = LLVMBuildMul(k->b, r, cg_i64(k, s->y->shape.dims[last]), "");
    cg_loop l;
    LLVMValueRef j = cg_loop_begin(k, &l, c0, c1, 1);
    LLVMValueRef offs[RS_MAX_TAPS], ws[RS_MAX_TAPS];
    for (int t = 0; t < (T ? T : 1); t++) {
        if (!T) {
            offs[0] = j;
            ws[0] = NULL;
            continue;
        }
        LLVMValueRef i = LLVMBuildAdd(k->b, LLVMBuildMul(k->b, j, cg_i64(k, T), ""), cg_i64(k, t), "");
        offs[t] = load_at(k, m->t_i64, s->off[last], i);
        ws[t] = load_at(k, s->ct, s->w[last], i);
    }
    LLVMValueRef acc = LLVMConstReal(s->ct, 0.0);
    for (int c = 0; c < s->n_combos; c++)
        for (int t = 0; t < (T ? T : 1); t++) {
            LLVMValueRef v = cg_load(k, s->dt, xp, LLVMBuildAdd(k->b, s->c_off[c], offs[t], ""));
            v = cg_convert(k, v, s->dt, s->comp);
            LLVMValueRef w = ws[t] ? LLVMBuildFMul(k->b, s->c_w[c], ws[t], "") : s->c_w[c];
            acc = LLVMBuildFAdd(k->b, acc, LLVMBuildFMul(k->b, w, v, ""), "");
        }
    LLVMValueRef e = flag;
    if (T && s->ax[last].any_ext) {
        LLVMValueRef ej = LLVMBuildICmp(k->b, LLVMIntNE, load_at(k, m->t_i64, s->ext[last], j),
                                        cg_i64(k, 0), "");
        e = e ? LLVMBuildOr(k->b, e, ej, "") : ej;
    }
    if (e) acc = LLVMBuildSelect(k->b, e, LLVMConstReal(s->ct, s->extrapolation), acc, "");
    if (!gr_dtype_is_float(s->dt)) acc = cg_intrinsic(k, "llvm.roundeven", NULL, 1, &acc);
    cg_store(k, s->dt, yp, LLVMBuildAdd(k->b, out_row, j, ""), cg_convert(k, acc, s->comp, s->dt));
    cg_loop_end(k, &l);
}

/* Tasks: groups of rows, or pieces of one long row. */
static void emit_tasks(cg_kernel *k, interp *s) {
    int64_t inner = s->y->shape.dims[s->rank - 1], rows = gr_value_numel(s->y) / inner;
    int64_t pieces = 1, per_piece = inner, rows_per_task = 1;
    if (inner >= TASK_ELEMS) {
        pieces = (inner + TASK_ELEMS - 1) / TASK_ELEMS;
        per_piece = (inner + pieces - 1) / pieces;
        pieces = (inner + per_piece - 1) / per_piece;
    } else {
        rows_per_task = TASK_ELEMS / inner;
    }
    k->n_tasks = pieces > 1 ? rows * pieces : (rows + rows_per_task - 1) / rows_per_task;
    cg_loop lt, lr;
    LLVMValueRef t = cg_loop_begin(k, &lt, k->begin, k->end, 1), r0, r1, c0, c1;
    if (pieces > 1) {
        r0 = LLVMBuildUDiv(k->b, t, cg_i64(k, pieces), "");
        r1 = LLVMBuildAdd(k->b, r0, cg_i64(k, 1), "");
        c0 = LLVMBuildMul(k->b, LLVMBuildURem(k->b, t, cg_i64(k, pieces), ""), cg_i64(k, per_piece), "");
        c1 = LLVMBuildAdd(k->b, c0, cg_i64(k, per_piece), "");
        c1 = LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, c1, cg_i64(k, inner), ""), c1,
                             cg_i64(k, inner), "");
    } else {
        r0 = LLVMBuildMul(k->b, t, cg_i64(k, rows_per_task), "");
        r1 = LLVMBuildAdd(k->b, r0, cg_i64(k, rows_per_task), "");
        r1 = LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, r1, cg_i64(k, rows), ""), r1,
                             cg_i64(k, rows), "");
        c0 = cg_i64(k, 0);
        c1 = cg_i64(k, inner);
    }
    LLVMValueRef r = cg_loop_begin(k, &lr, r0, r1, 1);
    emit_elements(k, s, r, c0, c1);
    cg_loop_end(k, &lr);
    cg_loop_end(k, &lt);
}

static gr_code plan_interp(const gr_node *n, const rs_params *p, interp *s, gr_status *st) {
    memset(s, 0, sizeof *s);
    s->x = n->inputs[0];
    s->y = n->outputs[0];
    s->dt = s->x->dtype;
    s->comp = s->dt == GR_DTYPE_F64 ? GR_DTYPE_F64 : GR_DTYPE_F32;
    s->rank = s->x->shape.rank;
    s->extrapolation = p->extrapolation;
    if (s->dt == GR_DTYPE_BOOL || !gr_dtype_size(s->dt))
        return gr_fail(st, GR_ERR_UNSUPPORTED, "Resize linear/cubic of %s", gr_dtype_name(s->dt));
    mv_strides(&s->x->shape, s->xs);
    int64_t combos = 1;
    for (int a = 0; a < s->rank; a++) {
        if (!p->resized[a]) continue;
        GR_TRY(rs_axis_plan(p, a, s->x->shape.dims[a], s->y->shape.dims[a], s->xs[a], &s->ax[a], st));
        combos *= s->ax[a].taps;
        if (combos > MAX_COMBOS)
            return gr_fail(st, GR_ERR_UNSUPPORTED, "Resize needs more than %d taps per element",
                           MAX_COMBOS);
    }
    return GR_OK;
}

static gr_code emit_interp(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                           const rs_params *p, gr_status *st) {
    interp *s = gr_calloc(1, sizeof *s);
    if (!s) return gr_fail(st, GR_ERR_NOMEM, "out of memory");
    gr_code rc = plan_interp(n, p, s, st);
    if (rc == GR_OK) rc = cg_kernel_begin_node(m, k, name, n, st);
    if (rc == GR_OK && gr_value_numel(s->y) > 0 && gr_value_numel(s->x) > 0) {
        s->ct = cg_reg_type(m, s->comp);
        for (int a = 0; a < s->rank; a++) {
            int64_t cells = s->y->shape.dims[a] * s->ax[a].taps;
            if (!s->ax[a].taps) continue;
            s->off[a] = mv_global_i64(k, s->ax[a].off, cells);
            s->w[a] = global_weights(k, s, s->ax[a].w, cells);
            if (!s->ax[a].any_ext) continue;
            int64_t *flags = gr_malloc(sizeof(int64_t) * (size_t)s->y->shape.dims[a]);
            GR_ASSERT(flags);
            for (int64_t o = 0; o < s->y->shape.dims[a]; o++) flags[o] = s->ax[a].ext[o];
            s->ext[a] = mv_global_i64(k, flags, s->y->shape.dims[a]);
            gr_free(flags);
        }
        emit_tasks(k, s);
    }
    for (int a = 0; a < GR_MAX_RANK; a++) rs_axis_free(&s->ax[a]);
    gr_free(s);
    return rc == GR_OK ? cg_kernel_end(k, st) : rc;
}

/* X:[d..] roi? scales?|sizes? -> [resized d..] */
gr_code cg_emit_resize(cg_module *m, const gr_node *n, const char *name, cg_kernel *k,
                       gr_status *st) {
    rs_params p;
    GR_TRY(rs_params_read(n, &p, st));
    if (p.mode == RS_NEAREST) return emit_nearest(m, n, name, k, &p, st);
    return emit_interp(m, n, name, k, &p, st);
}
