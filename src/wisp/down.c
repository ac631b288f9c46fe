/* SPDX-License-Identifier: Apache-2.0 */
/* `wisp down`: stop what `wisp up` started for a state directory. State
 * stays for the next up. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "wisp/alloc.h"

static const char usage[] =
    "usage: wisp down [--state DIR]\n\n"
    "Stops the daemons that `wisp up` started for the state directory (SIGTERM,\n"
    "then SIGKILL after 10 s). The state stays for the next `wisp up`.\n\n"
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
        while (kill(w.pid, 0) == 0 && waited < 500) {
            nanosleep(&tick, NULL);
            waited++;
        }
        if (kill(w.pid, 0) == 0) {
            kill(w.pid, SIGKILL);
            fprintf(stderr, "wisp: wispd %d did not stop in 10 s; killed\n", (int)w.pid);
        }
        printf("wisp is down (state kept in %s)\n", s.dir);
    } else {
        printf("wisp was not running (state %s)\n", s.dir);
    }
    char *run = wisp_xasprintf("%s/run/wispd.json", s.dir);
    unlink(run);
    free(run);
    cli_state_close(&s);
    return rc;
}
