/* SPDX-License-Identifier: Apache-2.0 */
/* `wisp usage`: calls counted per quota project, API and method, read from
 * the store directly (SQLite lets a reader in beside the running wispd). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "wisp/alloc.h"
#include "wisp/store.h"

static const char usage[] =
    "usage: wisp usage [--state DIR] [--project Q]\n\n"
    "Prints the calls charged to each quota project (x-goog-user-project, or the\n"
    "called resource's own project), by API and method.\n\n"
    "exit codes: 0 printed, 100 usage, 111 the store could not be read\n";

static int print_row(const struct wisp_doc *doc, void *ctx)
{
    (void)ctx;
    json_t *o = json_loadb(doc->body, doc->body_len, 0, NULL);
    printf("%-30s %-34s %-22s %lld\n", json_string_value(json_object_get(o, "project")),
           json_string_value(json_object_get(o, "api")),
           json_string_value(json_object_get(o, "method")),
           (long long)json_integer_value(json_object_get(o, "calls")));
    json_decref(o);
    return 0;
}

int cli_usage(int argc, char **argv)
{
    const char *dir = NULL, *project = NULL;
    int rc = cli_parse(argc, argv, usage, &dir, &project);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct cli_state s;
    if (cli_state_open(&s, dir))
        return WISP_EXIT_SYS;
    char *db = cli_state_store_url(&s);
    char *prefix = project ? wisp_xasprintf("%s/", project) : wisp_xstrdup("");
    struct wisp_store *st = NULL;
    struct wisp_txn *txn = NULL;
    rc = WISP_EXIT_SYS;
    if (wisp_store_open(db, &st) == WISP_OK && wisp_store_begin(st, 0, &txn) == WISP_OK) {
        printf("%-30s %-34s %-22s %s\n", "QUOTA_PROJECT", "API", "METHOD", "CALLS");
        if (wisp_store_list(txn, "usage", prefix, NULL, 0, print_row, NULL, NULL) == WISP_OK)
            rc = WISP_EXIT_OK;
    } else {
        fprintf(stderr, "wisp: cannot read the store (see the log line above)\n");
    }
    wisp_store_rollback(txn);
    wisp_store_close(st);
    free(prefix);
    free(db);
    cli_state_close(&s);
    return rc;
}
