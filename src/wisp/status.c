/* SPDX-License-Identifier: Apache-2.0 */
/* `wisp status`: is wisp up for a state directory, and where. */
#include <stdio.h>
#include "cli.h"

static const char usage[] =
    "usage: wisp status [--state DIR]\n\n"
    "Says whether wisp runs for the state directory, with its project and ports.\n\n"
    "exit codes: 0 running, 1 not running, 100 usage\n";

int cli_status(int argc, char **argv)
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
        printf("state:    %s\nproject:  %s\nwispd:    running, pid %d\n"
               "https:    https://%s:%d\nhttp:     http://%s:%d\n",
               s.dir, s.project ? s.project : "-", (int)w.pid, w.address, w.https_port,
               w.address, w.http_port);
        rc = WISP_EXIT_OK;
    } else {
        printf("state:    %s\nproject:  %s\nwispd:    not running\n", s.dir,
               s.project ? s.project : "-");
        rc = WISP_EXIT_FAIL;
    }
    cli_state_close(&s);
    return rc;
}
