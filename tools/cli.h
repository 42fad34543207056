/* cli.h: what the graft subcommands share: error printing in the
 * "graft: error: ..." form, exit codes, and option-value parsing. */
#ifndef GR_CLI_H
#define GR_CLI_H

#include "ir/gr_ir.h"
#include "passes/gr_passes.h"

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2 };

/* Prints "graft: error: <msg>" and returns the exit code for st->code. */
int cli_fail(const gr_status *st);
/* Prints "graft: error: <fmt>" plus a hint to use --help; returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past it.
 * Returns 1 with *value set, 0 if argv[*i] is not this option, -1 if the
 * value is missing. */
int cli_option(int argc, char **argv, int *i, const char *name, const char **value);
/* Parses a positive integer option value. */
int cli_parse_positive(const char *command, const char *option, const char *text,
                       int64_t *out);
/* Adds a --shape NAME=DIMS to opts (storage grows as needed; free with
 * cli_free_shapes). Returns 0 on success, EXIT_USAGE after printing. */
int cli_add_shape(const char *command, const char *text, gr_pass_opts *opts);
void cli_free_shapes(gr_pass_opts *opts);

/* The passes `graft run` and `graft compile` give a model for inference
 * (tools/run.c), NULL-terminated. */
extern const char *const cli_infer_pipeline[];

int cmd_inspect(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
