/* SPDX-License-Identifier: Apache-2.0 */
/* One table of long options per daemon (include/wisp/opts.h), read by
 * getopt_long and by --help alike, so the two never disagree. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/opts.h"

void wisp_opts_usage(FILE *f, const struct wisp_opt *opts, size_t n, const char *intro)
{
    int w = 0; /* the widest "name ARG", so that the help texts line up */
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(opts[i].name) + (opts[i].arg ? 1 + (int)strlen(opts[i].arg) : 0);
        w = l > w ? l : w;
    }
    fprintf(f, "usage: %s\n\noptions:\n", intro);
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(opts[i].name) + (opts[i].arg ? 1 + (int)strlen(opts[i].arg) : 0);
        fprintf(f, "  --%s%s%s%*s  %s%s%s%s\n", opts[i].name, opts[i].arg ? " " : "",
                opts[i].arg ? opts[i].arg : "", w - l, "", opts[i].help,
                opts[i].def ? " [" : "", opts[i].def ? opts[i].def : "",
                opts[i].def ? "]" : "");
    }
    fprintf(f, "\nexit codes: 0 stopped cleanly, 100 usage, 111 could not start\n");
}

int wisp_opts_parse(struct wisp_opt *opts, size_t n, int argc, char **argv, const char *intro)
{
    struct option *lo = wisp_xcalloc(n + 2, sizeof(*lo));
    for (size_t i = 0; i < n; i++)
        lo[i] = (struct option){opts[i].name, opts[i].arg ? required_argument : no_argument,
                                NULL, (int)i};
    /* Option i returns i; --help and -h return 'h', past any real table. */
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    int c, rc = n < 'h' ? 0 : -1;
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'h') {
            wisp_opts_usage(stdout, opts, n, intro);
            exit(0);
        }
        if (c < 0 || (size_t)c >= n)
            rc = -1;
        else
            opts[c].val = optarg ? optarg : "1";
    }
    free(lo);
    if (rc == 0 && optind != argc)
        rc = -1;
    if (rc)
        wisp_opts_usage(stderr, opts, n, intro);
    return rc;
}

const char *wisp_opts_get(const struct wisp_opt *opts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(opts[i].name, name) == 0)
            return opts[i].val ? opts[i].val : opts[i].def;
    }
    return NULL;
}
