/* inspect.c: `graft inspect MODEL.onnx [--json] [--batch N] [--shape ...]`.
 * Imports the model, fixes input shapes if asked, infers shapes (folding
 * shape computations), and prints what it found: text or one JSON object.
 * Unsupported ops are reported, not fatal. */
#include <stdio.h>
#include <string.h>

#include "frontend/gr_frontend.h"
#include "tools/cli.h"

static const char help[] =
    "usage: graft inspect MODEL.onnx [--json] [--batch N] [--shape NAME=DIMS]...\n"
    "\n"
    "Describe an ONNX model: IR version, producer, opsets, inputs and outputs\n"
    "with inferred shapes, op histogram, parameter count and bytes (total and\n"
    "by name prefix), and every op type graft does not support, with the first\n"
    "node using it.\n"
    "\n"
    "options:\n"
    "  --json             print one JSON object instead of text\n"
    "  --batch N          fix the first dim of inputs whose first dim is dynamic\n"
    "  --shape NAME=DIMS  fix the shape of input NAME, e.g. x=1x3x32x32\n"
    "                     (repeatable; a dim starting with a letter stays symbolic)\n"
    "  --print            also print the whole graph in graft's text form\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit status: 0 success (also with unsupported ops), 1 unreadable or invalid\n"
    "model, 2 bad command line.\n";

static void json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

static void json_shape(FILE *out, const gr_shape *s) {
    if (s->rank < 0) {
        fputs("null", out);
        return;
    }
    fputc('[', out);
    for (int i = 0; i < s->rank; i++) {
        if (i) fputc(',', out);
        if (s->dims[i] >= 0) fprintf(out, "%lld", (long long)s->dims[i]);
        else if (s->syms[i]) json_string(out, s->syms[i]);
        else fputs("null", out);
    }
    fputc(']', out);
}

static void json_values(FILE *out, gr_value *const *values, int n) {
    fputc('[', out);
    for (int i = 0; i < n; i++) {
        fprintf(out, "%s{\"name\":", i ? "," : "");
        json_string(out, values[i]->name);
        fputs(",\"dtype\":", out);
        json_string(out, values[i]->dtype ? gr_dtype_name(values[i]->dtype) : "unknown");
        fputs(",\"shape\":", out);
        json_shape(out, &values[i]->shape);
        fputc('}', out);
    }
    fputc(']', out);
}

static void print_json(FILE *out, const char *path, const gr_graph *g,
                       const gr_graph_stats *s) {
    fputs("{\"file\":", out);
    json_string(out, path);
    fprintf(out, ",\"ir_version\":%lld,\"producer\":{\"name\":", (long long)g->ir_version);
    json_string(out, g->producer_name);
    fputs(",\"version\":", out);
    json_string(out, g->producer_version);
    fputs("},\"opsets\":[", out);
    for (int i = 0; i < g->n_opsets; i++) {
        fprintf(out, "%s{\"domain\":", i ? "," : "");
        json_string(out, g->opsets[i].domain);
        fprintf(out, ",\"version\":%lld}", (long long)g->opsets[i].version);
    }
    fputs("],\"inputs\":", out);
    json_values(out, g->inputs, g->n_inputs);
    fputs(",\"outputs\":", out);
    json_values(out, g->outputs, g->n_outputs);
    fprintf(out, ",\"nodes\":%d,\"ops\":{", g->n_nodes);
    for (int i = 0; i < s->n_ops; i++) {
        if (i) fputc(',', out);
        json_string(out, s->ops[i].key);
        fprintf(out, ":%lld", (long long)s->ops[i].count);
    }
    fprintf(out, "},\"parameters\":{\"tensors\":%lld,\"count\":%lld,\"bytes\":%lld,"
                 "\"constants_lifted\":%d,\"groups\":[",
            (long long)s->n_params, (long long)s->param_count, (long long)s->param_bytes,
            g->n_constants_lifted);
    for (int i = 0; i < s->n_groups; i++) {
        fprintf(out, "%s{\"prefix\":", i ? "," : "");
        json_string(out, s->groups[i].key);
        fprintf(out, ",\"count\":%lld,\"bytes\":%lld}", (long long)s->groups[i].count,
                (long long)s->groups[i].bytes);
    }
    fputs("]},\"unsupported\":[", out);
    int k = 0;
    for (int i = 0; i < s->n_ops; i++) {
        const gr_node *n = s->ops[i].first;
        if (n->op != GR_OP_UNKNOWN) continue;
        fprintf(out, "%s{\"op\":", k++ ? "," : "");
        json_string(out, n->op_type);
        fputs(",\"domain\":", out);
        json_string(out, n->domain);
        fputs(",\"first_node\":", out);
        json_string(out, n->name);
        fprintf(out, ",\"count\":%lld}", (long long)s->ops[i].count);
    }
    fputs("]}\n", out);
}

static void print_values(FILE *out, const char *title, gr_value *const *values, int n) {
    fprintf(out, "%s:\n", title);
    for (int i = 0; i < n; i++) {
        char buf[256];
        fprintf(out, "  %s: %s%s\n", values[i]->name,
                values[i]->dtype ? gr_dtype_name(values[i]->dtype) : "?",
                gr_shape_str(&values[i]->shape, buf, sizeof buf));
    }
}

static void print_text(FILE *out, const char *path, const gr_graph *g,
                       const gr_graph_stats *s) {
    fprintf(out, "model: %s\n", path);
    fprintf(out, "ir_version: %lld\nproducer: %s %s\nopsets:", (long long)g->ir_version,
            g->producer_name ? g->producer_name : "(none)",
            g->producer_version ? g->producer_version : "");
    for (int i = 0; i < g->n_opsets; i++)
        fprintf(out, " %s%s%lld", *g->opsets[i].domain ? g->opsets[i].domain : "ai.onnx",
                "-", (long long)g->opsets[i].version);
    fputc('\n', out);
    print_values(out, "inputs", g->inputs, g->n_inputs);
    print_values(out, "outputs", g->outputs, g->n_outputs);
    fprintf(out, "ops: %d nodes, %d types\n", g->n_nodes, s->n_ops);
    for (int i = 0; i < s->n_ops; i++)
        fprintf(out, "  %-24s %lld\n", s->ops[i].key, (long long)s->ops[i].count);
    fprintf(out, "parameters: %lld tensors, %lld elements, %lld bytes",
            (long long)s->n_params, (long long)s->param_count, (long long)s->param_bytes);
    if (g->n_constants_lifted)
        fprintf(out, " (%d Constant nodes lifted)", g->n_constants_lifted);
    fputc('\n', out);
    for (int i = 0; i < s->n_groups; i++)
        fprintf(out, "  %-24s %12lld elements %12lld bytes\n", s->groups[i].key,
                (long long)s->groups[i].count, (long long)s->groups[i].bytes);
    fprintf(out, "unsupported ops: %s\n", s->n_unsupported ? "" : "none");
    for (int i = 0; i < s->n_ops; i++) {
        const gr_node *n = s->ops[i].first;
        if (n->op == GR_OP_UNKNOWN)
            fprintf(out, "  %-24s %lld nodes, first '%s'\n", s->ops[i].key,
                    (long long)s->ops[i].count, n->name);
    }
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL, *value;
    int json = 0, print_graph = 0, rc;
    gr_pass_opts opts = {0};
    for (int i = 1; i < argc;) {
        int m;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            cli_free_shapes(&opts);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1, i++;
        } else if (!strcmp(argv[i], "--print")) {
            print_graph = 1, i++;
        } else if ((m = cli_option(argc, argv, &i, "--batch", &value))) {
            if (m < 0 || cli_parse_positive("inspect", "--batch", value, &opts.batch)) {
                cli_free_shapes(&opts);
                return m < 0 ? cli_usage_error("inspect", "--batch needs a value") : EXIT_USAGE;
            }
        } else if ((m = cli_option(argc, argv, &i, "--shape", &value))) {
            if (m < 0) {
                cli_free_shapes(&opts);
                return cli_usage_error("inspect", "--shape needs a value");
            }
            if ((rc = cli_add_shape("inspect", value, &opts))) {
                cli_free_shapes(&opts);
                return rc;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_free_shapes(&opts);
            return cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        } else if (path) {
            cli_free_shapes(&opts);
            return cli_usage_error("inspect", "more than one model given ('%s', '%s')", path,
                                   argv[i]);
        } else {
            path = argv[i++];
        }
    }
    if (!path) {
        cli_free_shapes(&opts);
        return cli_usage_error("inspect", "no model given");
    }
    gr_status st = {0};
    gr_graph *g = NULL;
    static const char *const pipeline[] = {"specialize", "shapes", NULL};
    gr_graph_stats stats;
    /* Statistics describe the model as imported, before shape folding. */
    if (gr_import_file(path, &g, &st) != GR_OK ||
        gr_graph_stats_compute(g, &stats, &st) != GR_OK ||
        gr_passes_run(g, pipeline, &opts, &st) != GR_OK) {
        rc = cli_fail(&st);
    } else {
        if (json) print_json(stdout, path, g, &stats);
        else print_text(stdout, path, g, &stats);
        if (print_graph) gr_graph_print(g, stdout);
        rc = EXIT_OK;
    }
    gr_graph_free(g);
    cli_free_shapes(&opts);
    return rc;
}
