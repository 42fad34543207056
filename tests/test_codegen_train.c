/* test_codegen_train.c: kernels of graft's training ops (SoftmaxCrossEntropy
 * and its gradient, ConvGradWeight, MaxPoolGrad, AveragePoolGrad,
 * GatherGrad, DropoutMask) against PyTorch 1.13 goldens pasted below
 * (generated with F.cross_entropy, autograd through conv/pool/embedding)
 * and naive C loops. Every graph runs with 1, 2 and 3 task splits, which
 * must agree bit for bit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "ir/gr_ir.h"
#include "cg_run.h"

/* ------------------------------------------------------------ helpers */

static uint32_t rng_state = 12345;
static double rnd(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (double)(rng_state >> 8) / (double)(1u << 23) - 1.0;
}

static int64_t numel(int rank, const int64_t *d) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    return n;
}

typedef struct {
    gr_graph *g;
    int n_inputs;
    void *inputs[4];
} tgraph;

static void tg_init(tgraph *t) {
    memset(t, 0, sizeof *t);
    t->g = gr_graph_new("t");
}

/* A graph input of f32 holding v (v is rounded to f32 in place). */
static gr_value *tg_f32(tgraph *t, const char *name, int rank, const int64_t *dims, double *v) {
    gr_shape s = gr_shape_make(rank, dims);
    int64_t n = numel(rank, dims);
    float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
    for (int64_t i = 0; i < n; i++) {
        buf[i] = (float)v[i];
        v[i] = buf[i];
    }
    t->inputs[t->n_inputs++] = buf;
    gr_value *x = gr_graph_add_input(t->g, name, GR_DTYPE_F32, &s);
    assert_non_null(x);
    return x;
}

static gr_value *tg_i64(tgraph *t, const char *name, int rank, const int64_t *dims,
                        const int64_t *v) {
    gr_shape s = gr_shape_make(rank, dims);
    int64_t n = numel(rank, dims);
    int64_t *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
    memcpy(buf, v, (size_t)n * sizeof *buf);
    t->inputs[t->n_inputs++] = buf;
    gr_value *x = gr_graph_add_input(t->g, name, GR_DTYPE_I64, &s);
    assert_non_null(x);
    return x;
}

/* Runs the graph (outputs of nd are its outputs) with 1, 2 and 3 splits;
 * checks the runs agree bit for bit and returns the f32 outputs of the
 * first run in outs[i] (caller frees). Frees the graph and inputs. */
static void tg_run(tgraph *t, gr_node *nd, float **outs) {
    gr_status st = {0};
    for (int i = 0; i < nd->n_outputs; i++) gr_graph_add_output(t->g, nd->outputs[i]);
    if (gr_graph_infer_shapes(t->g, &st) != GR_OK) fail_msg("%s", st.msg);
    float *runs[3][2] = {{0}};
    size_t bytes[2] = {0};
    for (int r = 0; r < 3; r++) {
        void *o[2];
        for (int i = 0; i < nd->n_outputs; i++) {
            const gr_value *y = nd->outputs[i];
            assert_int_equal(y->dtype, GR_DTYPE_F32);
            int64_t n = gr_value_numel(y);
            bytes[i] = (size_t)(n > 0 ? n : 1) * sizeof(float);
            runs[r][i] = malloc(bytes[i]);
            memset(runs[r][i], 0xa5 + r, bytes[i]);
            o[i] = runs[r][i];
        }
        if (cg_run_graph(t->g, t->inputs, o, r + 1, &st) != GR_OK) fail_msg("%s", st.msg);
    }
    for (int i = 0; i < nd->n_outputs; i++) {
        size_t n = (size_t)gr_value_numel(nd->outputs[i]) * sizeof(float);
        assert_memory_equal(runs[0][i], runs[1][i], n);
        assert_memory_equal(runs[0][i], runs[2][i], n);
        free(runs[1][i]);
        free(runs[2][i]);
        outs[i] = runs[0][i];
    }
    for (int i = 0; i < t->n_inputs; i++) free(t->inputs[i]);
    gr_graph_free(t->g);
}

static void expect_near(const char *what, const float *got, const double *expect, int64_t n,
                        double rtol, double atol) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - expect[i]) <= atol + rtol * fabs(expect[i])))
            fail_msg("%s element %lld: got %.9g, expected %.9g", what, (long long)i, got[i],
                     expect[i]);
}

/* ------------------------------------------------------------ cross-entropy */

/* torch: x = rand(5,7)*4-2, y = [3,0,6,3,1], w = rand(7)+0.5 (seed 1) */
static const double ce_x[] = {
    -1.7557868957519531, -1.101781964302063, -1.0629899501800537, -1.2916030883789062,
    0.224272221326828, -1.5622246265411377, -0.15634843707084656, 0.83346110582351685,
    0.31910502910614014, -0.013330752961337566, 0.041500687599182129, -0.68184942007064819,
    0.87282454967498779, -0.46195557713508606, -1.6408127546310425, -1.5301762819290161,
    0.56095784902572632, -1.2129336595535278, 0.049789313226938248, 0.84735256433486938,
    1.6994889974594116, 1.9987980127334595, 1.5709210634231567, 1.5068788528442383,
    1.3798863887786865, -1.3822082281112671, -1.3178542852401733, 1.9367928504943848,
    1.2508221864700317, -0.25660386681556702, -0.34271508455276489, -0.28636994957923889,
    1.0310467481613159, 1.690050482749939, 1.857308030128479
};
static const double ce_w[] = {
    0.67601829767227173, 1.4538940191268921, 0.81337946653366089, 0.95439767837524414,
    0.79555207490921021, 0.68750745058059692, 0.74325764179229736
};
/* plain: weight=False eps=0, dloss=1.5 */
static const double ce_plain_loss = 1.9742030012409262;
static const double ce_plain_probs[] = {
    0.050200221587844665, 0.096546462797570842, 0.10036528558474252, 0.079854261987749184,
    0.36360879761346165, 0.060921229498158543, 0.24850374093047248, 0.24917138709766645,
    0.14897595015670684, 0.10684178576691558, 0.11286366016846147, 0.054752905478920921,
    0.25917523220357891, 0.068219079127749813, 0.017128698368464691, 0.019132563844373646,
    0.15486068830031169, 0.026275433600672974, 0.092884556286465705, 0.20621527407530388,
    0.48350278552440751, 0.2623268039479954, 0.17100864665827972, 0.16040019480047202,
    0.1412709172562796, 0.0089225772028075252, 0.0095156591370216728, 0.24655520099714406,
    0.17158979415471717, 0.038003591080384251, 0.034867997785540006, 0.036889043196642927,
    0.13773496187107329, 0.26622318729100186, 0.31469142462064054
};
static const double ce_plain_dx[] = {
    0.015060066476353403, 0.028963938839271255, 0.030109585675422754, -0.27604372140367522,
    0.10908263928403848, 0.018276368849447566, 0.074551122279141735, -0.22524858387070004,
    0.04469278504701206, 0.032052535730074674, 0.033859098050538439, 0.016425871643676277,
    0.077752569661073689, 0.020465723738324944, 0.0051386095105394047, 0.0057397691533120918,
    0.046458206490093502, 0.0078826300802018884, 0.027865366885939703, 0.061864582222591155,
    -0.15494916434267775, 0.078698041184398618, 0.051302593997483908, 0.048120058440141604,
    -0.2576187248231161, 0.0026767731608422565, 0.002854697741106501, 0.073966560299143211,
    0.051476938246415152, -0.28859892267588472, 0.010460399335662004, 0.011066712958992878,
    0.041320488561321991, 0.079866956187300553, 0.094407427386192178
};
/* ws: weight=True eps=0.1, dloss=1.5 */
static const double ce_ws_loss = 2.1978268517765644;
static const double ce_ws_probs[] = {
    0.050200221587844665, 0.096546462797570842, 0.10036528558474252, 0.079854261987749184,
    0.36360879761346165, 0.060921229498158543, 0.24850374093047248, 0.24917138709766645,
    0.14897595015670684, 0.10684178576691558, 0.11286366016846147, 0.054752905478920921,
    0.25917523220357891, 0.068219079127749813, 0.017128698368464691, 0.019132563844373646,
    0.15486068830031169, 0.026275433600672974, 0.092884556286465705, 0.20621527407530388,
    0.48350278552440751, 0.2623268039479954, 0.17100864665827972, 0.16040019480047202,
    0.1412709172562796, 0.0089225772028075252, 0.0095156591370216728, 0.24655520099714406,
    0.17158979415471717, 0.038003591080384251, 0.034867997785540006, 0.036889043196642927,
    0.13773496187107329, 0.26622318729100186, 0.31469142462064054
};
static const double ce_ws_dx[] = {
    0.011874076146030772, 0.022147550476203873, 0.02615150321174373, -0.25000639249517587,
    0.10438288797980999, 0.015005435071559405, 0.070444939609828103, -0.13948499431194053,
    0.026004827374342357, 0.019677600478268154, 0.020360193328770142, 0.0083870250569830166,
    0.053494459270341715, 0.011560888803235183, 0.0010348400472316212, -0.0019754550049397449,
    0.033099254166239073, 0.0019576522639206577, 0.018473939372721515, 0.045848307937361124,
    -0.098438538782534252, 0.074850025900807166, 0.044253816919894239, 0.043974613282330439,
    -0.23177307089415819, -0.00091603941897028035, -0.00025580460976555217,
    0.069866458819862198, 0.072108523523871371, -0.40032344390994523, 0.011623573775948389,
    0.011876654081270232, 0.056748108744023647, 0.11349627041046235, 0.13447031337436932
};
/* bad: rows 1 and 3 ignored (ignore_index), weight, eps=0.1 */
static const double ce_bad_loss = 2.4077586851888819;
static const double ce_bad_dx[] = {
    0.01801698598656892, 0.033605318145107248, 0.039680667455648792, -0.37934417926433273,
    0.15838411400102845, 0.022768315621508647, 0.1068887780544706, 0, 0, 0, 0, 0, 0, 0,
    0.0015702020435118173, -0.0029974327857914514, 0.050222753428977973, 0.0029704200117853961,
    0.028031208719030299, 0.069567376144160989, -0.14936452756167504, 0, 0, 0, 0, 0, 0, 0,
    0.10941299700828101, -0.60742594121156157, 0.017636889241704663, 0.018020897585459848,
    0.086106057214997561, 0.17221219473118221, 0.20403690542993633
};

/* Runs SoftmaxCrossEntropy then (separately) its gradient with dloss 1.5
 * and checks loss, probs and dlogits against torch. */
static void check_ce(const int64_t *labels, int weighted, double eps, double loss_ref,
                     const double *probs_ref, const double *dx_ref) {
    int64_t xd[2] = {5, 7}, yd[1] = {5}, wd[1] = {7};
    double x[35], w[7];
    memcpy(x, ce_x, sizeof x);
    memcpy(w, ce_w, sizeof w);
    tgraph t;
    tg_init(&t);
    gr_value *in[3] = {tg_f32(&t, "x", 2, xd, x), tg_i64(&t, "y", 1, yd, labels),
                       weighted ? tg_f32(&t, "w", 1, wd, w) : NULL};
    gr_node *nd = gr_node_add(t.g, GR_OP_SOFTMAX_CROSS_ENTROPY, "ce", weighted ? 3 : 2, in, 2,
                              NULL);
    gr_node_set_float(t.g, nd, "label_smoothing", eps);
    float *out[2];
    tg_run(&t, nd, out);
    expect_near("loss", out[0], &loss_ref, 1, 1e-5, 1e-6);
    if (probs_ref) expect_near("probs", out[1], probs_ref, 35, 1e-5, 1e-7);
    double probs[35], dl = 1.5;
    for (int i = 0; i < 35; i++) probs[i] = out[1][i];
    free(out[0]);
    free(out[1]);

    tg_init(&t);
    int64_t sd[1] = {0};
    gr_value *gin[4] = {tg_f32(&t, "dl", 0, sd, &dl), tg_f32(&t, "p", 2, xd, probs),
                        tg_i64(&t, "y", 1, yd, labels),
                        weighted ? tg_f32(&t, "w", 1, wd, w) : NULL};
    nd = gr_node_add(t.g, GR_OP_SOFTMAX_CROSS_ENTROPY_GRAD, "ceg", weighted ? 4 : 3, gin, 1, NULL);
    gr_node_set_float(t.g, nd, "label_smoothing", eps);
    tg_run(&t, nd, out);
    expect_near("dlogits", out[0], dx_ref, 35, 1e-5, 1e-6);
    free(out[0]);
}

static void test_cross_entropy_matches_torch(void **state) {
    (void)state;
    int64_t y[5] = {3, 0, 6, 3, 1};
    check_ce(y, 0, 0.0, ce_plain_loss, ce_plain_probs, ce_plain_dx);
}

static void test_cross_entropy_weights_and_smoothing_match_torch(void **state) {
    (void)state;
    int64_t y[5] = {3, 0, 6, 3, 1};
    check_ce(y, 1, 0.1, ce_ws_loss, ce_ws_probs, ce_ws_dx);
}

/* The probs output may be omitted (a loss nobody differentiates). */
static void test_cross_entropy_without_probs_output(void **state) {
    (void)state;
    int64_t xd[2] = {5, 7}, yd[1] = {5}, y[5] = {3, 0, 6, 3, 1};
    double x[35];
    memcpy(x, ce_x, sizeof x);
    tgraph t;
    tg_init(&t);
    gr_value *in[2] = {tg_f32(&t, "x", 2, xd, x), tg_i64(&t, "y", 1, yd, y)};
    gr_node *nd = gr_node_add(t.g, GR_OP_SOFTMAX_CROSS_ENTROPY, "ce", 2, in, 1, NULL);
    float *out[1];
    tg_run(&t, nd, out);
    expect_near("loss", out[0], &ce_plain_loss, 1, 1e-5, 1e-6);
    free(out[0]);
}

/* Labels outside [0, C) must not crash; such rows count for nothing, as
 * torch's ignore_index rows. */
static void test_cross_entropy_skips_rows_with_bad_labels(void **state) {
    (void)state;
    int64_t y[5] = {3, 9, 6, -100, 1};
    check_ce(y, 1, 0.1, ce_bad_loss, ce_ws_probs, ce_bad_dx);
}

/* ------------------------------------------------------------ ConvGradWeight */

/* torch: W = zeros (requires grad), conv(X, W).backward(dY) with
 * X[i] = ((37 i) % 11 - 5)/4 and dY[i] = ((13 i) % 7 - 3)/2 (exact in f32). */
/* c1d: X [2, 4, 9], W [6, 2, 3], {'groups': 2, 'stride': 2, 'padding': 1} -> dY [2, 6, 5] */
static const double cw_c1d_dw[] = {
    -2, 3.625, -0.625, -0.5, -0.75, -1.5, 3.375, 3, 0.375, 0.125, -0.375, 1.75, 2.625, -4.625,
    -1.25, -1, 0, 2.375, 2.75, -1.375, 2.375, -0.125, 1.375, -0.25, -2.375, -0.75, -4.5, 2.25,
    -1.25, -2.25, 0.375, -0.125, 0.875, -2.375, 0.5, 2.75
};
/* c2d: X [1, 4, 6, 6], W [8, 4, 3, 3], {'stride': 1, 'padding': 1, 'dilation': 2} -> dY [1, 8,
 * 4, 4] */
static const double cw_c2d_dw[] = {
    -3.25, 4.125, -1.75, 2.25, -0.25, -0.25, 3, -3.5, -4.5, -3.875, 1, -2.125, -0.375, -8.5,
    -0.375, -2.125, 1, -3.875, -4.5, -3.5, 3, -0.25, -0.25, 2.25, -1.75, 4.125, -3.25, 3.125,
    -1.125, 2.625, 5.375, -0.25, 2.125, 0, 4.5, -4, 0.75, -4.625, 3.625, -0.5, 6.125, -4.875,
    -2.5, 4, -0.625, 4.125, -4.5, 3.625, 2.875, 3.75, -4.5, -2.625, 1.25, -0.5, 4.75, -5.75,
    -4.625, 3.5, -1.375, 4.125, -2.75, -2.875, 2.375, -0.125, 2.625, -4.625, -4.125, 1.75, 4.5,
    1.25, -2.875, 3.875, 1.25, -0.25, 1.125, -4.125, -4.125, 3.625, -0.125, 1.875, 1.5, -2.75,
    3.125, 1.5, 3.5, -1.5, 3.625, 4.75, 1.5, 1.125, -2.625, 5.125, -0.875, 2.875, -1.625,
    -1.875, 4.125, -0.25, -3.375, -2.5, 0.25, -0.5, -0.5, -5.875, -1.875, 0.75, -0.625, 0.375,
    0, 0.625, -0.5, 5.375, -5.625, -4.5, 3.125, -1.125, 3.625, -1.75, -4.125, -0.625, -0.25, 2,
    -4.875, -4.5, 1.75, 3.625, -2.125, -0.625, 2, -0.375, 6.875, -5.25, -3.875, 3.25, 2.25, 3,
    -1.25, 1.875, 2.25, 4.875, -5.625, -3.25, 3.375, -0.5, 2.25, 3.25, -3.875, -5.25, 6.875,
    -0.375, 2, -0.625, -2.125, 3.625, 1.75, -4.5, -4.875, 2, -0.25, -0.625, -4.125, -1.75,
    3.625, -1.125, 3.125, -4.5, -5.625, 5.375, -0.5, 0.625, 0, -4.625, 4.25, 2.5, 4.125, -3.625,
    5.5, 2.375, 1.25, 0.375, -3.375, -0.25, 4.125, -1.875, -1.625, 2.875, -0.875, 5.125, -2.625,
    1.125, 1.5, 4.75, 3.625, -1.5, 3.5, 1.5, 3.125, -2.75, 1.5, 1.875, -0.125, 3.625, -4.125,
    -4.125, 1.125, -0.25, 1.25, -0.875, -6, 0.5, -1.875, 0.125, -3.5, -3.375, -0.875, 3.875,
    2.375, -2.875, -2.75, 4.125, -1.375, 3.5, -4.625, -5.75, 4.75, -0.5, 1.25, -2.625, -4.5,
    3.75, 2.875, 3.625, -4.5, 4.125, -0.625, 4, -2.5, -4.875, 6.125, -0.5, 3.625, -4.625, 0.75,
    2, 1.25, -2.375, -5.25, 3, -1.125, 2.25, -4.75, -4, -3.25, 4.125, -1.75, 2.25, -0.25, -0.25,
    3, -3.5, -4.5, -3.875, 1, -2.125, -0.375, -8.5, -0.375, -2.125, 1, -3.875, -4.5, -3.5, 3,
    -0.25, -0.25, 2.25, -1.75, 4.125, -3.25, 3.125, -1.125, 2.625, 5.375, -0.25, 2.125, 0, 4.5,
    -4
};
/* c3d: X [1, 2, 4, 4, 3], W [4, 1, 2, 2, 2], {'groups': 2, 'stride': (1, 2, 1), 'padding': (0,
 * 1, 1)} -> dY [1, 4, 3, 3, 4] */
static const double cw_c3d_dw[] = {
    -3.125, -3.375, -3.375, 0.875, 3.25, 6.375, -1.5, 1.25, 5.875, -3.125, 2.875, -3.375,
    -6.875, 3.25, -6.875, -1.5, 0.75, -6.625, 0.75, -3.125, -3, 1.25, 0.75, 6.375, 2.875, 0.75,
    6.375, 0.75, 0.625, -3, -3.125, 0.75
};
/* dw: X [2, 3, 5, 5], W [3, 1, 3, 3], {'groups': 3, 'stride': 2, 'padding': 1} -> dY [2, 3, 3,
 * 3] */
static const double cw_dw_dw[] = {
    -2.25, 4, -2.625, -6.25, 14.5, -4.25, -1.625, -1.625, 4.125, 4.375, -4.25, 7.125, 1, -4,
    4.875, -3.125, 4.5, -3, -3.125, 8.75, -3, -1.375, -3.375, 4.875, -1, -5.5, 6.125
};
/* c1d_s1: X [2, 4, 9], W [4, 1, 3], {'groups': 4, 'stride': 1, 'padding': 2, 'dilation': 2} ->
 * dY [2, 4, 9] */
static const double cw_c1d_s1_dw[] = {
    -2.75, 1.375, -1, 3, -0.125, -2.75, -6.875, -1, 3, 1.75, 0.625, -6.875
};
/* c3d_s1: X [1, 2, 4, 4, 3], W [2, 1, 2, 2, 2], {'groups': 2, 'stride': 1, 'padding': (1, 0,
 * 1), 'dilation': (1, 2, 1)} -> dY [1, 2, 5, 2, 4] */
static const double cw_c3d_s1_dw[] = {
    2, -8.5, -5.5, 6.75, -8.5, 3.75, 6.75, 11.125, -4.625, -1.625, -9.625, 3.375, -1.625, 8.375,
    3.375, 4.125
};

typedef struct {
    int ns;
    int64_t N, C, M, G, in[3], ker[3], str[3], pads[6], dil[3];
} cw_case;

static int64_t cw_out(const cw_case *c, int d) {
    int64_t dk = (c->ker[d] - 1) * c->dil[d] + 1;
    return (c->in[d] + c->pads[d] + c->pads[d + c->ns] - dk) / c->str[d] + 1;
}

/* Runs ConvGradWeight on x, dy (rounded to f32 in place); returns dW. */
static float *run_cw(const cw_case *c, double *x, double *dy) {
    int64_t xd[5] = {c->N, c->C}, yd[5] = {c->N, c->M};
    for (int d = 0; d < c->ns; d++) {
        xd[2 + d] = c->in[d];
        yd[2 + d] = cw_out(c, d);
    }
    tgraph t;
    tg_init(&t);
    gr_value *in[2] = {tg_f32(&t, "x", c->ns + 2, xd, x), tg_f32(&t, "dy", c->ns + 2, yd, dy)};
    gr_node *nd = gr_node_add(t.g, GR_OP_CONV_GRAD_WEIGHT, "cw", 2, in, 1, NULL);
    gr_node_set_ints(t.g, nd, "kernel_shape", c->ns, c->ker);
    gr_node_set_ints(t.g, nd, "strides", c->ns, c->str);
    gr_node_set_ints(t.g, nd, "pads", 2 * c->ns, c->pads);
    gr_node_set_ints(t.g, nd, "dilations", c->ns, c->dil);
    gr_node_set_int(t.g, nd, "group", c->G);
    float *out[1];
    tg_run(&t, nd, out);
    return out[0];
}

static int64_t cw_sizes(const cw_case *c, int64_t *n_x, int64_t *n_y) {
    *n_x = c->N * c->C;
    *n_y = c->N * c->M;
    int64_t n_w = c->M * (c->C / c->G);
    for (int d = 0; d < c->ns; d++) {
        *n_x *= c->in[d];
        *n_y *= cw_out(c, d);
        n_w *= c->ker[d];
    }
    return n_w;
}

static void check_cw_torch(const cw_case *c, const double *dw_ref) {
    int64_t n_x, n_y, n_w = cw_sizes(c, &n_x, &n_y);
    double *x = malloc((size_t)n_x * sizeof *x), *dy = malloc((size_t)n_y * sizeof *dy);
    for (int64_t i = 0; i < n_x; i++) x[i] = (double)((i * 37) % 11 - 5) / 4;
    for (int64_t i = 0; i < n_y; i++) dy[i] = (double)((i * 13) % 7 - 3) / 2;
    float *dw = run_cw(c, x, dy);
    expect_near("dW", dw, dw_ref, n_w, 1e-6, 1e-5);
    free(dw);
    free(x);
    free(dy);
}

static void test_conv_grad_weight_1d_groups_matches_torch(void **state) {
    (void)state;
    cw_case c = {1, 2, 4, 6, 2, {9}, {3}, {2}, {1, 1}, {1}};
    check_cw_torch(&c, cw_c1d_dw);
}

static void test_conv_grad_weight_2d_dilated_matches_torch(void **state) {
    (void)state;
    cw_case c = {2, 1, 4, 8, 1, {6, 6}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {2, 2}};
    check_cw_torch(&c, cw_c2d_dw);
}

static void test_conv_grad_weight_3d_groups_matches_torch(void **state) {
    (void)state;
    cw_case c = {3, 1, 2, 4, 2, {4, 4, 3}, {2, 2, 2}, {1, 2, 1}, {0, 1, 1, 0, 1, 1}, {1, 1, 1}};
    check_cw_torch(&c, cw_c3d_dw);
}

static void test_conv_grad_weight_depthwise_matches_torch(void **state) {
    (void)state;
    cw_case c = {2, 2, 3, 3, 3, {5, 5}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}};
    check_cw_torch(&c, cw_dw_dw);
}

/* Stride 1: the padded-plane direct kernel. */
static void test_conv_grad_weight_stride_1_grouped_matches_torch(void **state) {
    (void)state;
    cw_case c1 = {1, 2, 4, 4, 4, {9}, {3}, {1}, {2, 2}, {2}};
    check_cw_torch(&c1, cw_c1d_s1_dw);
    cw_case c3 = {3, 1, 2, 2, 2, {4, 4, 3}, {2, 2, 2}, {1, 1, 1}, {1, 0, 1, 1, 0, 1}, {1, 2, 1}};
    check_cw_torch(&c3, cw_c3d_s1_dw);
}

/* Larger random 2-D cases (GEMM and direct paths, asymmetric pads) against
 * a naive double loop. */
static void check_cw_naive(const cw_case *c) {
    int64_t n_x, n_y, n_w = cw_sizes(c, &n_x, &n_y);
    double *x = malloc((size_t)n_x * sizeof *x), *dy = malloc((size_t)n_y * sizeof *dy);
    for (int64_t i = 0; i < n_x; i++) x[i] = rnd();
    for (int64_t i = 0; i < n_y; i++) dy[i] = rnd();
    float *dw = run_cw(c, x, dy);
    int64_t H = c->in[0], W = c->in[1], OH = cw_out(c, 0), OW = cw_out(c, 1);
    int64_t Cg = c->C / c->G, Mg = c->M / c->G, KH = c->ker[0], KW = c->ker[1];
    double *ref = calloc((size_t)n_w, sizeof *ref);
    for (int64_t m = 0; m < c->M; m++)
        for (int64_t ci = 0; ci < Cg; ci++)
            for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                    double s = 0;
                    int64_t xc = (m / Mg) * Cg + ci;
                    for (int64_t n = 0; n < c->N; n++)
                        for (int64_t oh = 0; oh < OH; oh++)
                            for (int64_t ow = 0; ow < OW; ow++) {
                                int64_t h = oh * c->str[0] - c->pads[0] + kh * c->dil[0];
                                int64_t w = ow * c->str[1] - c->pads[1] + kw * c->dil[1];
                                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                                s += dy[((n * c->M + m) * OH + oh) * OW + ow] *
                                     x[((n * c->C + xc) * H + h) * W + w];
                            }
                    ref[((m * Cg + ci) * KH + kh) * KW + kw] = s;
                }
    expect_near("dW", dw, ref, n_w, 1e-5, 1e-5 * (double)(c->N * OH * OW));
    free(ref);
    free(dw);
    free(x);
    free(dy);
}

static void test_conv_grad_weight_matches_loop_on_larger_shapes(void **state) {
    (void)state;
    int64_t groups[3] = {1, 2, 8};
    for (int i = 0; i < 3; i++) {
        cw_case c = {2, 2, 8, 16, groups[i], {9, 9}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}};
        check_cw_naive(&c);
    }
    cw_case asym = {2, 3, 16, 24, 1, {11, 7}, {3, 2}, {1, 2}, {2, 0, 1, 1}, {1, 2}};
    check_cw_naive(&asym);
    cw_case dw = {2, 2, 16, 16, 16, {10, 10}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}};
    check_cw_naive(&dw);
    cw_case big = {2, 2, 8, 12, 1, {24, 24}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}}; /* K blocks */
    check_cw_naive(&big);
}

/* ------------------------------------------------------------ pooling */

/* torch (seed 2): X = randint(-3, 4, [1,2,5,6]) (many ties), 2-D pools,
 * dY = (arange % 7 + 1)/4 of the pooled shape; dX from autograd. */
static const double pg_x[] = {
    -1, 0, 1, -1, 1, -3, 3, 2, 1, 1, -1, 0, 3, 1, 2, -2, 0, 0, 1, -2, 0, -3, -2, 0, 2, 1, -3,
    -2, 0, -3, -1, 0, 0, 1, -2, 2, 0, 1, -1, 0, -3, 2, -1, -2, -2, -2, 0, 3, 0, 2, -2, -3, 2,
    -3, 3, 3, 0, -2, -1, 2
};
/* max_s1: {'kernel_size': 3, 'stride': 1, 'padding': 1, 'ceil_mode': False} -> dY [1, 2, 5, 6]
 * = (arange % 7 + 1)/4 */
static const int64_t pg_max_s1_out[2] = {5, 6};
static const double pg_max_s1_dx[] = {
    0, 0, 1, 0, 5, 0, 6, 1.5, 0, 0.75, 0, 1, 2.75, 0, 3.25, 0, 1.25, 0, 0, 0, 1.75, 0, 0, 0.75,
    2.25, 1.5, 0, 0, 0, 0, 0, 0, 0, 5, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8.25, 0, 1.5, 0,
    0, 4, 0, 5.25, 0.75, 0, 0, 0, 0
};
/* max_ceil: {'kernel_size': 2, 'stride': 2, 'padding': 0, 'ceil_mode': True} -> dY [1, 2, 3,
 * 3] = (arange % 7 + 1)/4 */
static const int64_t pg_max_ceil_out[2] = {3, 3};
static const double pg_max_ceil_dx[] = {
    0, 0, 0.5, 0, 0.75, 0, 0.25, 0, 0, 0, 0, 0, 1, 0, 1.25, 0, 1.5, 0, 0, 0, 0, 0, 0, 0, 1.75,
    0, 0, 0.25, 0.5, 0, 0, 0, 0, 1, 0, 1.25, 0, 0.75, 0, 0, 0, 0, 0, 0, 1.75, 0, 0, 0.25, 0,
    1.5, 0, 0, 0, 0, 0.5, 0, 0.75, 0, 0, 1
};
/* max_dil: {'kernel_size': 2, 'stride': 1, 'padding': 1, 'dilation': 2} -> dY [1, 2, 5, 6] =
 * (arange % 7 + 1)/4 */
static const int64_t pg_max_dil_out[2] = {5, 6};
static const double pg_max_dil_dx[] = {
    0, 0, 0, 0, 1.25, 0, 2.25, 2.75, 1.5, 2, 2.5, 0, 1.75, 5.25, 1, 0, 0.75, 1.5, 1.25, 2.5,
    1.75, 0, 0.5, 0.25, 0, 0, 0, 0, 0, 0, 0, 0.5, 2, 1, 0, 0, 1.5, 2, 1.5, 0, 0.25, 3, 0, 0, 0,
    0, 3.75, 2.5, 1.75, 2.75, 0, 0.75, 4, 0, 0.25, 2.25, 0, 0, 0, 0
};
/* avg_inc: {'kernel_size': 3, 'stride': 2, 'padding': 1, 'ceil_mode': True,
 * 'count_include_pad': True} -> dY [1, 2, 3, 4] = (arange % 7 + 1)/4 */
static const int64_t pg_avg_inc_out[2] = {3, 4};
static const double pg_avg_inc_dx[] = {
    0.0277777778, 0.0833333333, 0.0555555556, 0.138888889, 0.0833333333, 0.25, 0.166666667,
    0.388888889, 0.222222222, 0.5, 0.277777778, 0.486111111, 0.138888889, 0.305555556,
    0.166666667, 0.361111111, 0.194444444, 0.236111111, 0.194444444, 0.444444444, 0.25,
    0.555555556, 0.305555556, 0.555555556, 0.0555555556, 0.138888889, 0.0833333333, 0.194444444,
    0.111111111, 0.319444444, 0.166666667, 0.361111111, 0.194444444, 0.222222222, 0.0277777778,
    0.111111111, 0.25, 0.555555556, 0.305555556, 0.472222222, 0.166666667, 0.5, 0.0833333333,
    0.194444444, 0.111111111, 0.25, 0.138888889, 0.388888889, 0.277777778, 0.416666667,
    0.138888889, 0.333333333, 0.194444444, 0.569444444, 0.194444444, 0.222222222, 0.0277777778,
    0.0833333333, 0.0555555556, 0.180555556
};
/* avg_exc: {'kernel_size': 3, 'stride': 2, 'padding': 1, 'ceil_mode': True,
 * 'count_include_pad': False} -> dY [1, 2, 3, 4] = (arange % 7 + 1)/4 */
static const int64_t pg_avg_exc_out[2] = {3, 4};
static const double pg_avg_exc_dx[] = {
    0.0625, 0.145833333, 0.0833333333, 0.208333333, 0.125, 0.625, 0.270833333, 0.520833333,
    0.25, 0.569444444, 0.319444444, 0.902777778, 0.208333333, 0.375, 0.166666667, 0.361111111,
    0.194444444, 0.277777778, 0.333333333, 0.625, 0.291666667, 0.652777778, 0.361111111,
    1.06944444, 0.125, 0.25, 0.125, 0.291666667, 0.166666667, 0.791666667, 0.375, 0.666666667,
    0.291666667, 0.333333333, 0.0416666667, 0.291666667, 0.5, 0.902777778, 0.402777778,
    0.583333333, 0.180555556, 0.930555556, 0.125, 0.236111111, 0.111111111, 0.25, 0.138888889,
    0.638888889, 0.5625, 0.715277778, 0.152777778, 0.375, 0.222222222, 1.09722222, 0.4375,
    0.479166667, 0.0416666667, 0.125, 0.0833333333, 0.458333333
};

static void check_pool_grad(gr_op op, const int64_t *out_hw, int64_t k, int64_t s, int64_t pad,
                            int64_t dil, int ceil, int include_pad, const double *dx_ref) {
    int64_t xd[4] = {1, 2, 5, 6}, yd[4] = {1, 2, out_hw[0], out_hw[1]};
    int64_t n_y = numel(4, yd);
    double x[60], *dy = malloc((size_t)n_y * sizeof *dy);
    memcpy(x, pg_x, sizeof x);
    for (int64_t i = 0; i < n_y; i++) dy[i] = (double)(i % 7 + 1) / 4;
    tgraph t;
    tg_init(&t);
    gr_value *in[2] = {tg_f32(&t, "dy", 4, yd, dy), tg_f32(&t, "x", 4, xd, x)};
    gr_node *nd = gr_node_add(t.g, op, "pg", 2, in, 1, NULL);
    int64_t ks[2] = {k, k}, ss[2] = {s, s}, ps[4] = {pad, pad, pad, pad}, ds[2] = {dil, dil};
    gr_node_set_ints(t.g, nd, "kernel_shape", 2, ks);
    gr_node_set_ints(t.g, nd, "strides", 2, ss);
    gr_node_set_ints(t.g, nd, "pads", 4, ps);
    gr_node_set_ints(t.g, nd, "dilations", 2, ds);
    gr_node_set_int(t.g, nd, "ceil_mode", ceil);
    if (op == GR_OP_AVERAGE_POOL_GRAD) gr_node_set_int(t.g, nd, "count_include_pad", include_pad);
    float *out[1];
    tg_run(&t, nd, out);
    expect_near("dX", out[0], dx_ref, 60, 1e-6, 1e-7);
    free(out[0]);
    free(dy);
}

/* Overlapping windows (stride < kernel) and ties: the first maximum wins. */
static void test_max_pool_grad_overlapping_windows_match_torch(void **state) {
    (void)state;
    check_pool_grad(GR_OP_MAX_POOL_GRAD, pg_max_s1_out, 3, 1, 1, 1, 0, 0, pg_max_s1_dx);
}

static void test_max_pool_grad_ceil_mode_matches_torch(void **state) {
    (void)state;
    check_pool_grad(GR_OP_MAX_POOL_GRAD, pg_max_ceil_out, 2, 2, 0, 1, 1, 0, pg_max_ceil_dx);
}

static void test_max_pool_grad_dilation_matches_torch(void **state) {
    (void)state;
    check_pool_grad(GR_OP_MAX_POOL_GRAD, pg_max_dil_out, 2, 1, 1, 2, 0, 0, pg_max_dil_dx);
}

static void test_average_pool_grad_count_include_pad_matches_torch(void **state) {
    (void)state;
    check_pool_grad(GR_OP_AVERAGE_POOL_GRAD, pg_avg_inc_out, 3, 2, 1, 1, 1, 1, pg_avg_inc_dx);
}

static void test_average_pool_grad_excluding_pad_matches_torch(void **state) {
    (void)state;
    check_pool_grad(GR_OP_AVERAGE_POOL_GRAD, pg_avg_exc_out, 3, 2, 1, 1, 1, 0, pg_avg_exc_dx);
}

/* ------------------------------------------------------------ GatherGrad */

/* torch: d[:, idx] backward */
/* gather: data [3,4,2], axis 1, indices [[1,-1,1],[3,0,1]], dY (arange+1)/8 */
static const double gg_dx[] = {
    1.125, 1.25, 2.125, 2.5, 0, 0, 1.25, 1.5, 2.625, 2.75, 6.625, 7, 0, 0, 4.25, 4.5, 4.125,
    4.25, 11.125, 11.5, 0, 0, 7.25, 7.5
};

/* dY [d0, q.., d2] with indices i64 [q..] into axis of `shape`. */
static float *run_gather_grad(int r, const int64_t *shape, int axis, int qr, const int64_t *qd,
                              const int64_t *idx, double *dy) {
    int64_t yd[8], yr = 0;
    for (int i = 0; i < axis; i++) yd[yr++] = shape[i];
    for (int i = 0; i < qr; i++) yd[yr++] = qd[i];
    for (int i = axis + 1; i < r; i++) yd[yr++] = shape[i];
    tgraph t;
    tg_init(&t);
    int64_t sd[1] = {r};
    gr_shape ss = gr_shape_make(1, sd);
    gr_value *shp = gr_graph_add_data(t.g, GR_VALUE_CONST, "shape", GR_DTYPE_I64, &ss, shape);
    gr_value *in[3] = {tg_f32(&t, "dy", (int)yr, yd, dy), tg_i64(&t, "i", qr, qd, idx), shp};
    gr_node *nd = gr_node_add(t.g, GR_OP_GATHER_GRAD, "gg", 3, in, 1, NULL);
    gr_node_set_int(t.g, nd, "axis", axis);
    float *out[1];
    tg_run(&t, nd, out);
    return out[0];
}

static void test_gather_grad_sums_repeated_and_negative_indices(void **state) {
    (void)state;
    int64_t shape[3] = {3, 4, 2}, qd[2] = {2, 3}, idx[6] = {1, -1, 1, 3, 0, 1};
    double dy[36];
    for (int i = 0; i < 36; i++) dy[i] = (double)(i + 1) / 8;
    float *dx = run_gather_grad(3, shape, 1, 2, qd, idx, dy);
    expect_near("dData", dx, gg_dx, 24, 0, 1e-6);
    free(dx);
}

/* Embedding-like: axis 0, wide rows split into chunks over tasks; an index
 * outside [-D, D) is skipped. Reference: a naive C loop. */
static void test_gather_grad_embedding_matches_loop(void **state) {
    (void)state;
    enum { V = 5, E = 130, Q = 9 };
    int64_t shape[2] = {V, E}, qd[1] = {Q}, idx[Q] = {4, 0, 4, -5, 2, 7, 4, 1, 0};
    double *dy = malloc(Q * E * sizeof *dy), ref[V * E] = {0};
    for (int i = 0; i < Q * E; i++) dy[i] = rnd();
    float *dx = run_gather_grad(2, shape, 0, 1, qd, idx, dy); /* dy rounded to f32 */
    for (int q = 0; q < Q; q++) {
        int64_t row = idx[q] < 0 ? idx[q] + V : idx[q];
        if (row < 0 || row >= V) continue;
        for (int e = 0; e < E; e++)
            ref[row * E + e] = (float)(ref[row * E + e] + (float)dy[q * E + e]);
    }
    expect_near("dData", dx, ref, V * E, 0, 0);
    free(dx);
    free(dy);
}

/* ------------------------------------------------------------ DropoutMask */

static void test_dropout_mask_matches_hash_reference_bit_for_bit(void **state) {
    (void)state;
    const double ratio = 0.3;
    const int64_t salt = 7, seed = 123456789;
    int64_t dims[3] = {3, 50, 129}, sd[1] = {0};
    tgraph t;
    tg_init(&t);
    gr_value *s = tg_i64(&t, "seed", 0, sd, &seed);
    gr_node *nd = gr_node_add(t.g, GR_OP_DROPOUT_MASK, "dm", 1, &s, 1, NULL);
    gr_node_set_float(t.g, nd, "ratio", ratio);
    gr_node_set_int(t.g, nd, "salt", salt);
    gr_node_set_ints(t.g, nd, "shape", 3, dims);
    float *out[1];
    tg_run(&t, nd, out);
    int64_t n = numel(3, dims), kept = 0;
    float keep = (float)(1.0 / (1.0 - ratio));
    for (int64_t e = 0; e < n; e++) {
        uint64_t h = gr_hash64((uint64_t)seed ^ gr_hash64((uint64_t)salt * 0x9E3779B97F4A7C15ull +
                                                          (uint64_t)e));
        double u = (double)(h >> 11) * 0x1.0p-53;
        float want = u >= ratio ? keep : 0.0f;
        if (memcmp(&want, &out[0][e], sizeof want))
            fail_msg("mask[%lld] = %g, expected %g", (long long)e, out[0][e], want);
        kept += want != 0;
    }
    assert_true(fabs((double)kept / (double)n - (1 - ratio)) < 0.02);
    free(out[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_entropy_matches_torch),
        cmocka_unit_test(test_cross_entropy_weights_and_smoothing_match_torch),
        cmocka_unit_test(test_cross_entropy_skips_rows_with_bad_labels),
        cmocka_unit_test(test_cross_entropy_without_probs_output),
        cmocka_unit_test(test_conv_grad_weight_1d_groups_matches_torch),
        cmocka_unit_test(test_conv_grad_weight_2d_dilated_matches_torch),
        cmocka_unit_test(test_conv_grad_weight_3d_groups_matches_torch),
        cmocka_unit_test(test_conv_grad_weight_depthwise_matches_torch),
        cmocka_unit_test(test_conv_grad_weight_stride_1_grouped_matches_torch),
        cmocka_unit_test(test_conv_grad_weight_matches_loop_on_larger_shapes),
        cmocka_unit_test(test_max_pool_grad_overlapping_windows_match_torch),
        cmocka_unit_test(test_max_pool_grad_ceil_mode_matches_torch),
        cmocka_unit_test(test_max_pool_grad_dilation_matches_torch),
        cmocka_unit_test(test_average_pool_grad_count_include_pad_matches_torch),
        cmocka_unit_test(test_average_pool_grad_excluding_pad_matches_torch),
        cmocka_unit_test(test_gather_grad_sums_repeated_and_negative_indices),
        cmocka_unit_test(test_gather_grad_embedding_matches_loop),
        cmocka_unit_test(test_dropout_mask_matches_hash_reference_bit_for_bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
