/* SPDX-License-Identifier: Apache-2.0 */
/* wisp: the command line. Each verb is a file of its own; this one only
 * dispatches and prints the overview. */
#include <stdio.h>
#include <string.h>
#include "cli.h"


static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} verbs[] = {
    {"up", cli_up, "start wisp for a state directory and wait until it serves"},
    {"down", cli_down, "stop it (state persists)"},
    {"status", cli_status, "say whether it runs, and where"},
    {"env", cli_env, "print the exports that point gcloud and kubectl at it"},
    {"usage", cli_usage, "calls charged to each quota project, by API and method"},
    {"demo", cli_demo, "run the seed's walkthrough with the real gcloud and kubectl"},
    {"iam", cli_iam, "iam explain PRINCIPAL PERMISSION RESOURCE: why access is (not) granted"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: wisp VERB [options]   (wisp VERB --help for each)\n\n"
               "wisp runs Workload Identity Federation for GKE on this machine.\n\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].help);
    fprintf(f, "\nexit codes: 0 ok, 1 failed or not running, 100 usage, 111 system error\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return WISP_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return WISP_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(argv[1], verbs[i].name) == 0)
            return verbs[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "wisp: unknown verb '%s'\n", argv[1]);
    usage(stderr);
    return WISP_EXIT_USAGE;
}
