/* test_grad.c: gradient rules against finite differences (grad_check.h). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/grad_check.h"

/* y = tanh(a * b + a): product, sum with broadcasting over b's leading axis. */
static void test_grad_mul_add_broadcast(void **state) {
    (void)state;
    gr_graph *g = gr_graph_new("t");
    gr_value *a = grad_param(g, "a", 2, (int64_t[]){3, 4}, -1, 1, 1);
    gr_value *b = grad_param(g, "b", 1, (int64_t[]){4}, -1, 1, 2);
    gr_value *in[2] = {a, b};
    gr_value *m = gr_node_add(g, GR_OP_MUL, NULL, 2, in, 1, NULL)->outputs[0];
    gr_value *in2[2] = {m, a};
    gr_value *s = gr_node_add(g, GR_OP_ADD, NULL, 2, in2, 1, NULL)->outputs[0];
    gr_graph_add_output(g, s);
    grad_check(g, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_mul_add_broadcast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
