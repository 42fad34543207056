/* test_plan_blob.c: gr_plan_serialize (ir/) and gr_plan_deserialize
 * (runtime/) round-trip every field of a plan, and every truncation or
 * corrupted count of the bytes is an error, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/gr_runtime.h"

/* A plan with every buffer kind, a NULL name, a scalar, a rank-8 shape and
 * steps with and without workspace. */
static gr_plan *sample_plan(void) {
    gr_plan *p = gr_calloc(1, sizeof *p);
    p->arena = gr_arena_new();
    p->n_buffers = 5;
    p->buffers = gr_arena_alloc(p->arena, sizeof(gr_buffer) * 5);
    const int64_t dims8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dims2[2] = {3, 4};
    gr_buffer b[5] = {
        {"x", GR_BUF_INPUT, 0, 0, 48, GR_DTYPE_F32, gr_shape_make(2, dims2)},
        {"w\"odd name\n", GR_BUF_CONST, 0, 64, 40320 * 2, GR_DTYPE_F16, gr_shape_make(8, dims8)},
        {NULL, GR_BUF_ARENA, 0, 128, 8, GR_DTYPE_I64, gr_shape_scalar()},
        {"state", GR_BUF_STATE, 0, 0, 48, GR_DTYPE_F64, gr_shape_make(2, dims2)},
        {"y", GR_BUF_OUTPUT, 1, 0, 48, GR_DTYPE_F32, gr_shape_make(2, dims2)},
    };
    memcpy(p->buffers, b, sizeof b);
    p->n_steps = 2;
    p->steps = gr_arena_alloc(p->arena, sizeof(gr_step) * 2);
    static int args0[] = {0, 1, 2}, args1[] = {2, 3, 4};
    p->steps[0] = (gr_step){"graft_k0_Conv", NULL, 3, args0, 7, 4096};
    p->steps[1] = (gr_step){"graft_k1_copy", NULL, 3, args1, 1, 0};
    p->n_inputs = 1;
    p->n_outputs = 2;
    static int inputs[] = {0}, outputs[] = {2, 4};
    p->inputs = inputs;
    p->outputs = outputs;
    p->arena_bytes = 192;
    p->const_bytes = 40320 * 2 + 64;
    p->state_bytes = 64;
    return p;
}

static void same_buffer(const gr_buffer *a, const gr_buffer *b) {
    if (a->name) assert_string_equal(a->name, b->name);
    else assert_null(b->name);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->offset, b->offset);
    assert_int_equal(a->nbytes, b->nbytes);
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->shape.rank, b->shape.rank);
    for (int d = 0; d < a->shape.rank; d++) assert_int_equal(a->shape.dims[d], b->shape.dims[d]);
}

static void same_plan(const gr_plan *a, const gr_plan *b) {
    assert_int_equal(a->n_buffers, b->n_buffers);
    assert_int_equal(a->n_steps, b->n_steps);
    assert_int_equal(a->n_inputs, b->n_inputs);
    assert_int_equal(a->n_outputs, b->n_outputs);
    assert_int_equal(a->arena_bytes, b->arena_bytes);
    assert_int_equal(a->const_bytes, b->const_bytes);
    assert_int_equal(a->state_bytes, b->state_bytes);
    for (int i = 0; i < a->n_buffers; i++) same_buffer(&a->buffers[i], &b->buffers[i]);
    for (int i = 0; i < a->n_steps; i++) {
        assert_string_equal(a->steps[i].name, b->steps[i].name);
        assert_null(b->steps[i].fn);
        assert_int_equal(a->steps[i].n_args, b->steps[i].n_args);
        assert_memory_equal(a->steps[i].args, b->steps[i].args, sizeof(int) * 3);
        assert_int_equal(a->steps[i].n_tasks, b->steps[i].n_tasks);
        assert_int_equal(a->steps[i].workspace_bytes, b->steps[i].workspace_bytes);
    }
    assert_memory_equal(a->inputs, b->inputs, sizeof(int) * (size_t)a->n_inputs);
    assert_memory_equal(a->outputs, b->outputs, sizeof(int) * (size_t)a->n_outputs);
    assert_null(b->consts);
    assert_null(b->state_init);
}

/* Each test gets the sample plan and its bytes. */
typedef struct {
    gr_plan *plan;
    unsigned char *blob;
    size_t n;
} fixture;

static int setup(void **state) {
    fixture *f = gr_calloc(1, sizeof *f);
    gr_status st = {0};
    f->plan = sample_plan();
    assert_int_equal(gr_plan_serialize(f->plan, (void **)&f->blob, &f->n, &st), GR_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    f->plan->inputs = f->plan->outputs = NULL; /* static */
    gr_plan_free(f->plan);
    gr_free(f->blob);
    gr_free(f);
    return 0;
}

static void test_round_trip(void **state) {
    fixture *f = *state;
    gr_plan *q = NULL;
    gr_status st = {0};
    assert_int_equal(gr_plan_deserialize(f->blob, f->n, &q, &st), GR_OK);
    same_plan(f->plan, q);
    gr_plan_free(q);
}

/* Every proper prefix, and a byte too many, are rejected. */
static void test_truncated(void **state) {
    fixture *f = *state;
    gr_plan *q = NULL;
    gr_status st = {0};
    for (size_t k = 0; k < f->n; k++) {
        assert_int_equal(gr_plan_deserialize(f->blob, k, &q, &st), GR_ERR_INTERNAL);
        assert_null(q);
    }
    unsigned char *longer = gr_malloc(f->n + 1);
    memcpy(longer, f->blob, f->n);
    longer[f->n] = 0;
    assert_int_equal(gr_plan_deserialize(longer, f->n + 1, &q, &st), GR_ERR_INTERNAL);
    assert_non_null(strstr(st.msg, "damaged"));
    gr_free(longer);
}

/* Flipping any byte never crashes; a flipped count or id is an error. */
static void test_corrupted(void **state) {
    fixture *f = *state;
    gr_plan *q = NULL;
    gr_status st = {0};
    for (size_t k = 0; k < f->n; k++) {
        f->blob[k] ^= 0xFF;
        if (gr_plan_deserialize(f->blob, f->n, &q, &st) == GR_OK) gr_plan_free(q);
        q = NULL;
        f->blob[k] ^= 0xFF;
    }
    f->blob[8] ^= 0x40; /* n_buffers: 5 -> 69 */
    assert_int_equal(gr_plan_deserialize(f->blob, f->n, &q, &st), GR_ERR_INTERNAL);
    f->blob[8] ^= 0x40;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
