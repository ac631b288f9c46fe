/* SPDX-License-Identifier: Apache-2.0 */
/* `wisp down`: stop what `wisp up` started for a state directory. State
 * stays for the next up. */
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "wisp/alloc.h"

extern char **environ;

/* Whether pid is one of wisp's node processes (not a recycled pid). */
static int is_node_process(pid_t pid)
{
    char path[64], cmd[PATH_MAX] = "";
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
    fclose(f);
    cmd[n] = '\0';
    const char *base = strrchr(cmd, '/');
    base = base ? base + 1 : cmd;
    return !strcmp(base, "wisp-node") || !strcmp(base, "wisp-metadata");
}

/* After wispd is gone: what its node supervisor left (STATE/run/nodes) if
 * it did not stop cleanly: its children, then every namespace with its
 * prefix (wisp-node sweep). */
static void nodes_cleanup(const char *dir)
{
    char *rec = wisp_xasprintf("%s/run/nodes", dir);
    FILE *f = fopen(rec, "r");
    char line[128], prefix[64] = "";
    pid_t pids[1024];
    size_t n = 0;
    while (f && fgets(line, sizeof(line), f)) {
        int pid;
        if (sscanf(line, "prefix %63s", prefix) == 1)
            continue;
        if (sscanf(line, "pid %d", &pid) == 1 && pid > 1 && n < 1024 && is_node_process(pid))
            pids[n++] = pid;
    }
    if (f)
        fclose(f);
    for (size_t i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    struct timespec tick = {0, 100 * 1000 * 1000};
    for (int t = 0; t < 150; t++) {
        size_t alive = 0;
        for (size_t i = 0; i < n; i++)
            alive += kill(pids[i], 0) == 0 && is_node_process(pids[i]);
        if (!alive)
            break;
        nanosleep(&tick, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        if (is_node_process(pids[i]))
            kill(pids[i], SIGKILL);
    }
    if (strncmp(prefix, "wisp-", 5) == 0) {
        char *prog = cli_sibling("wisp-node");
        char *argv[] = {prog, "sweep", prefix, NULL};
        pid_t pid;
        if (posix_spawn(&pid, prog, NULL, NULL, argv, environ) == 0)
            waitpid(pid, NULL, 0);
        free(prog);
    }
    unlink(rec);
    free(rec);
}

static const char usage[] =
    "usage: wisp down [--state DIR]\n\n"
    "Stops the daemons that `wisp up` started for the state directory (SIGTERM,\n"
    "then SIGKILL after 30 s). The state stays for the next `wisp up`.\n\n"
    "exit codes: 0 stopped (or was not running), 100 usage, 111 could not stop\n";

int cli_down(int argc, char **argv)
{
    const char *dir = NULL;
    int rc = cli_parse(argc, argv, usage, &dir, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct cli_state s;
    if (cli_state_open(&s, dir))
        return WISP_EXIT_SYS;
    struct cli_wispd w;
    if (cli_wispd_running(&s, &w)) {
        kill(w.pid, SIGTERM);
        struct timespec tick = {0, 20 * 1000 * 1000};
        int waited = 0;
        while (kill(w.pid, 0) == 0 && waited < 1500) {
            nanosleep(&tick, NULL);
            waited++;
        }
        if (kill(w.pid, 0) == 0) {
            kill(w.pid, SIGKILL);
            fprintf(stderr, "wisp: wispd %d did not stop in 30 s; killed\n", (int)w.pid);
        }
        printf("wisp is down (state kept in %s)\n", s.dir);
    } else {
        printf("wisp was not running (state %s)\n", s.dir);
    }
    nodes_cleanup(s.dir);
    char *run = wisp_xasprintf("%s/run/wispd.json", s.dir);
    unlink(run);
    free(run);
    cli_state_close(&s);
    return rc;
}
