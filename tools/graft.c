/* graft.c: the `graft` command: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

int cmd_train(int argc, char **argv); /* tools/train.c */
int cmd_eval(int argc, char **argv);  /* tools/eval.c */
int cmd_compile(int argc, char **argv); /* tools/compile.c */

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"inspect", cmd_inspect, "describe a model: inputs, outputs, ops, parameters"},
    {"run", cmd_run, "compile a model and run it on input tensors (.npy, .pb)"},
    {"train", cmd_train, "fine-tune a model on a data set; checkpoints, export"},
    {"eval", cmd_eval, "loss and accuracy of a model on a labelled data set"},
    {"compile", cmd_compile, "compile a model ahead of time into an ELF object and header"},
};

static void usage(FILE *out) {
    fputs("usage: graft COMMAND [OPTIONS]\n\n"
          "graft compiles pretrained ONNX models and fine-tunes them on the CPU.\n\n"
          "commands:\n", out);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'graft COMMAND --help' describes a command.\n", out);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        puts("graft 0.1.0");
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "graft: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
