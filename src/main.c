/* gatehouse: command dispatch only. Each command lives with the module it drives. */
#include <stdio.h>
#include <string.h>

#include "admin/health_cmd.h"
#include "config/check_cmd.h"
#include "core/version.h"
#include "demo/demo.h"
#include "diagnose/probe_cmd.h"
#include "proxy/gateway.h"

struct command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
        {"run", gateway_cmd_main, "run the gateway with a config file"},
        {"probe", probe_cmd_main, "probe one backend as the gateway would, and diagnose it"},
        {"health", health_cmd_main, "show the running gateway's backend health (table or --json)"},
        {"demo", demo_cmd_main,
         "zero-setup demo: local backends reproducing the seeds, the gateway, the dashboard"},
        {"check", check_cmd_main, "validate a config file (file:line:col errors); exit 0/1"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: gatehouse COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'gatehouse COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("gatehouse %s\n", GATEHOUSE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].main(argc - 1, argv + 1);
    }
    fprintf(stderr, "gatehouse: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
