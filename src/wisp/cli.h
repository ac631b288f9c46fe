/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the wisp CLI: the state directory and the running daemons. */
#ifndef WISP_CLI_H
#define WISP_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <sys/types.h>

#define WISP_EXIT_OK 0
#define WISP_EXIT_FAIL 1   /* the verb ran and failed (not running, denied) */
#define WISP_EXIT_USAGE 100
#define WISP_EXIT_SYS 111  /* a system call or a daemon failed */

#define WISP_DEFAULT_PROJECT "wisp-local"
#define WISP_DEFAULT_REGION "us-central1"

struct cli_state {
    char *dir;      /* absolute state directory; from malloc() */
    char *project;  /* from STATE/config.json, or NULL before the first up */
};

/* What wispd wrote to STATE/run/wispd.json once ready. */
struct cli_wispd {
    pid_t pid;
    int https_port, http_port;
    char address[64];
};

/* Resolves the state directory: --state, else $WISP_STATE, else
 * $HOME/.local/state/wisp; and reads its config. 0 on success. */
int cli_state_open(struct cli_state *s, const char *flag_dir);
void cli_state_close(struct cli_state *s);
/* Saves the project into STATE/config.json. */
int cli_state_save_project(struct cli_state *s, const char *project);
/* STATE/config.json as an object ({} if there is none); caller decrefs. */
json_t *cli_state_config(const struct cli_state *s);
/* The store wispd uses for s: the "store" setting (`wisp up --store`), else
 * STATE/wisp.db. Caller frees. */
char *cli_state_store_url(const struct cli_state *s);
/* Sets key to value (stolen) in STATE/config.json, keeping the rest. */
int cli_state_config_set(struct cli_state *s, const char *key, json_t *value);
/* 1 and *out filled when a wispd recorded for this state is alive. */
int cli_wispd_running(const struct cli_state *s, struct cli_wispd *out);

int cli_up(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_down(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_env(int argc, char **argv);
int cli_usage(int argc, char **argv);
int cli_iam(int argc, char **argv);

/* Shared option parsing for the verbs: --state DIR, --project ID, --help.
 * Returns 0, or an exit code to return. usage is printed for --help. */
int cli_parse(int argc, char **argv, const char *usage, const char **state_out,
              const char **project_out);
/* The same with a verb's own options (at most 8, ended by {0}): each one
 * found goes to on_extra(its val, its argument, ctx), which returns 0, or
 * non-zero to refuse it (usage is printed, WISP_EXIT_USAGE returned). */
int cli_parse_ex(int argc, char **argv, const char *usage, const char **state_out,
                 const char **project_out, const struct option *extra,
                 int (*on_extra)(int val, const char *arg, void *ctx), void *ctx);

/* The path of a daemon that lives next to the wisp binary (bin/ or
 * build/san/bin/); caller frees. */
char *cli_sibling(const char *name);

#endif
