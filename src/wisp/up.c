/* SPDX-License-Identifier: Apache-2.0 */
/* `wisp up`: start wispd for a state directory (if it is not running),
 * wait until it says it is ready, and report where it listens. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli.h"
#include "wisp/alloc.h"

static const char usage[] =
    "usage: wisp up [--state DIR] [--project ID]\n\n"
    "Starts wisp's daemons in the background for the state directory and waits\n"
    "until they serve. Idempotent: if they already run, it only reports them.\n"
    "State persists across down/up. The project is created with an owner on\n"
    "first start (default " WISP_DEFAULT_PROJECT ").\n\n"
    "  --state DIR    state directory [$WISP_STATE or ~/.local/state/wisp]\n"
    "  --project ID   project to create and use [" WISP_DEFAULT_PROJECT "]\n\n"
    "exit codes: 0 running, 100 usage, 111 could not start\n";

/* The daemons live next to the wisp binary (bin/ or build/san/bin/). */
static char *sibling(const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return wisp_xstrdup(name);
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    return wisp_xasprintf("%s/%s", self, name);
}

static int start_wispd(struct cli_state *s, const char *project)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC))
        return -1;
    char *bin = sibling("wispd");
    char *log = wisp_xasprintf("%s/wispd.log", s->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* A session of its own, so the daemon outlives the shell that ran
         * `wisp up` and no terminal signal reaches it. */
        setsid();
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (null >= 0)
            dup2(null, 0);
        int ready = dup(pfd[1]); /* without O_CLOEXEC, so wispd inherits it */
        char fdarg[16];
        snprintf(fdarg, sizeof(fdarg), "%d", ready);
        execl(bin, "wispd", "--state", s->dir, "--project", project, "--ready-fd", fdarg,
              (char *)NULL);
        fprintf(stderr, "wisp: cannot run %s: %s\n", bin, strerror(errno));
        _exit(111);
    }
    close(pfd[1]);
    free(log);
    /* Wait for "ready", the daemon's exit (EOF), or 60 s. */
    char buf[16] = "";
    struct pollfd p = {.fd = pfd[0], .events = POLLIN};
    int rc = -1;
    if (poll(&p, 1, 60000) > 0 && read(pfd[0], buf, sizeof(buf) - 1) > 0 &&
        strncmp(buf, "ready", 5) == 0)
        rc = 0;
    close(pfd[0]);
    if (rc) {
        fprintf(stderr, "wisp: %s did not become ready; see %s/wispd.log\n", bin, s->dir);
        if (waitpid(pid, NULL, WNOHANG) == 0) {
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
        }
    }
    free(bin);
    return rc;
}

int cli_up(int argc, char **argv)
{
    const char *dir = NULL, *project = NULL;
    int rc = cli_parse(argc, argv, usage, &dir, &project);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct cli_state s;
    if (cli_state_open(&s, dir))
        return WISP_EXIT_SYS;
    /* A copy: saving the project below replaces s.project. */
    char *proj = wisp_xstrdup(project ? project : s.project ? s.project : WISP_DEFAULT_PROJECT);
    project = proj;
    if (s.project && strcmp(project, s.project) != 0) {
        fprintf(stderr, "wisp: %s already serves project %s (not %s); use another --state\n",
                s.dir, s.project, project);
        cli_state_close(&s);
        free(proj);
        return WISP_EXIT_USAGE;
    }
    struct cli_wispd w;
    rc = WISP_EXIT_OK;
    if (!cli_wispd_running(&s, &w)) {
        if (cli_state_save_project(&s, project) || start_wispd(&s, project) ||
            !cli_wispd_running(&s, &w))
            rc = WISP_EXIT_SYS;
    }
    if (!rc)
        printf("wisp is up: project %s, state %s, wispd pid %d on https://%s:%d\n", project,
               s.dir, (int)w.pid, w.address, w.https_port);
    cli_state_close(&s);
    free(proj);
    return rc;
}
