/* cli.c: option parsing and error reporting shared by the subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

int cli_fail(const gr_status *st) {
    fprintf(stderr, "graft: error: %s\n", st->msg[0] ? st->msg : gr_code_name(st->code));
    return st->code == GR_ERR_BAD_ARG ? EXIT_USAGE : EXIT_ERROR;
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("graft: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'graft %s --help')\n", command);
    return EXIT_USAGE;
}

int cli_option(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *arg = argv[*i];
    size_t len = strlen(name);
    if (strncmp(arg, name, len)) return 0;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        (*i)++;
        return 1;
    }
    if (arg[len] != '\0') return 0;
    if (*i + 1 >= argc) return -1;
    *value = argv[*i + 1];
    *i += 2;
    return 1;
}

int cli_parse_positive(const char *command, const char *option, const char *text,
                       int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v <= 0)
        return cli_usage_error(command, "%s expects a positive integer, got '%s'",
                               option, text);
    *out = v;
    return 0;
}

int cli_add_shape(const char *command, const char *text, gr_pass_opts *opts) {
    const char *eq = strrchr(text, '=');
    if (!eq || eq == text)
        return cli_usage_error(command, "--shape expects NAME=DIMS (e.g. x=1x3x32x32), got '%s'",
                               text);
    gr_input_shape *shapes = realloc((void *)opts->input_shapes,
                                     sizeof *shapes * (size_t)(opts->n_input_shapes + 1));
    if (!shapes) {
        fprintf(stderr, "graft: error: out of memory\n");
        return EXIT_ERROR;
    }
    opts->input_shapes = shapes;
    gr_input_shape *s = &shapes[opts->n_input_shapes];
    gr_status st = {0};
    if (gr_parse_shape(eq + 1, &s->shape, &st) != GR_OK)
        return cli_usage_error(command, "--shape %s: %s", text, st.msg);
    char *name = malloc((size_t)(eq - text) + 1);
    if (!name) {
        fprintf(stderr, "graft: error: out of memory\n");
        return EXIT_ERROR;
    }
    memcpy(name, text, (size_t)(eq - text));
    name[eq - text] = '\0';
    s->name = name;
    opts->n_input_shapes++;
    return 0;
}

void cli_free_shapes(gr_pass_opts *opts) {
    for (int i = 0; i < opts->n_input_shapes; i++) free((void *)opts->input_shapes[i].name);
    free((void *)opts->input_shapes);
    opts->input_shapes = NULL;
    opts->n_input_shapes = 0;
}
