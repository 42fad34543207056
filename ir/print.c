/* print.c: the readable text form of a graph, one line per value or node:
 *     input  x: f32[N,3,32,32]
 *     param  conv1.weight: f32[16,3,3,3] (trainable)
 *     y: f32[N,16,32,32] = Conv 'conv1'(x, conv1.weight) {pads=[1,1,1,1]}
 * After the "fuse" pass, a node in a fusion group ends with [group N]: the
 * nodes of group N compile into one kernel where codegen can chain them.
 */
#include <stdio.h>

#include "ir/gr_ir.h"

static void print_type(const gr_value *v, FILE *out) {
    char buf[256];
    fprintf(out, "%s%s", gr_dtype_name(v->dtype),
            gr_shape_str(&v->shape, buf, sizeof buf));
}

static void print_attr(const gr_attr *a, FILE *out) {
    fprintf(out, "%s=", a->name);
    switch (a->type) {
    case GR_ATTR_INT: fprintf(out, "%lld", (long long)a->i); break;
    case GR_ATTR_FLOAT: fprintf(out, "%g", a->f); break;
    case GR_ATTR_STRING: fprintf(out, "\"%s\"", a->s); break;
    case GR_ATTR_INTS:
        fputc('[', out);
        for (int i = 0; i < a->n; i++)
            fprintf(out, "%s%lld", i ? "," : "", (long long)a->ints[i]);
        fputc(']', out);
        break;
    case GR_ATTR_FLOATS:
        fputc('[', out);
        for (int i = 0; i < a->n; i++) fprintf(out, "%s%g", i ? "," : "", a->floats[i]);
        fputc(']', out);
        break;
    case GR_ATTR_STRINGS:
        fputc('[', out);
        for (int i = 0; i < a->n; i++) fprintf(out, "%s\"%s\"", i ? "," : "", a->strings[i]);
        fputc(']', out);
        break;
    case GR_ATTR_TENSOR: {
        char buf[256];
        fprintf(out, "tensor<%s%s>", gr_dtype_name(a->tensor->dtype),
                gr_shape_str(&a->tensor->shape, buf, sizeof buf));
        break;
    }
    default: fprintf(out, "?"); break;
    }
}

void gr_node_print(const gr_node *n, FILE *out) {
    fputs("  ", out);
    for (int i = 0; i < n->n_outputs; i++) {
        if (i) fputs(", ", out);
        if (!n->outputs[i]) {
            fputs("_", out);
            continue;
        }
        fprintf(out, "%s: ", n->outputs[i]->name);
        print_type(n->outputs[i], out);
    }
    fprintf(out, " = %s%s%s '%s'(", n->domain && *n->domain ? n->domain : "",
            n->domain && *n->domain ? "." : "", n->op_type, n->name);
    for (int i = 0; i < n->n_inputs; i++)
        fprintf(out, "%s%s", i ? ", " : "", n->inputs[i] ? n->inputs[i]->name : "_");
    fputc(')', out);
    if (n->n_attrs) {
        fputs(" {", out);
        for (int i = 0; i < n->n_attrs; i++) {
            if (i) fputs(", ", out);
            print_attr(&n->attrs[i], out);
        }
        fputc('}', out);
    }
    if (n->group) fprintf(out, " [group %d]", n->group);
    fputc('\n', out);
}

static void print_data_preview(const gr_value *v, FILE *out) {
    int64_t n = gr_value_numel(v);
    if (n <= 0 || n > 8 || !v->data) return;
    fputs(" = {", out);
    for (int64_t i = 0; i < n; i++) {
        if (gr_dtype_is_float(v->dtype))
            fprintf(out, "%s%g", i ? "," : "", gr_dtype_load_f64(v->dtype, v->data, i));
        else
            fprintf(out, "%s%lld", i ? "," : "",
                    (long long)gr_dtype_load_i64(v->dtype, v->data, i));
    }
    fputc('}', out);
}

void gr_graph_print(const gr_graph *g, FILE *out) {
    fprintf(out, "graph '%s' (opset %lld)\n", g->name, (long long)g->opset);
    for (int i = 0; i < g->n_inputs; i++) {
        fprintf(out, "  input  %s: ", g->inputs[i]->name);
        print_type(g->inputs[i], out);
        fputc('\n', out);
    }
    for (int i = 0; i < g->n_values; i++) {
        const gr_value *v = g->values[i];
        if (v->kind != GR_VALUE_PARAM && v->kind != GR_VALUE_CONST) continue;
        fprintf(out, "  %s  %s: ", v->kind == GR_VALUE_PARAM ? "param" : "const", v->name);
        print_type(v, out);
        if (v->kind == GR_VALUE_PARAM && v->trainable) fputs(" (trainable)", out);
        print_data_preview(v, out);
        fputc('\n', out);
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i]->dead) gr_node_print(g->nodes[i], out);
    for (int i = 0; i < g->n_outputs; i++) {
        fprintf(out, "  output %s: ", g->outputs[i]->name);
        print_type(g->outputs[i], out);
        fputc('\n', out);
    }
}
