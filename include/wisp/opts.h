/* SPDX-License-Identifier: Apache-2.0 */
/* Long options from one table, which both parsing and --help read: the
 * daemons' (wispd, wisp-metadata) command lines. */
#ifndef WISP_OPTS_H
#define WISP_OPTS_H

#include <stddef.h>
#include <stdio.h>

struct wisp_opt {
    const char *name;
    const char *arg;  /* the value's name in --help; NULL for a flag */
    const char *help;
    const char *def;  /* default, or NULL */
    const char *val;  /* parsed: the argument, "1" for a flag given */
};

/* Parses argv into opts[0..n). --help prints the usage to stdout and
 * exits 0. Returns 0, or -1 after printing the usage to stderr (unknown
 * option, missing argument, or a stray operand). */
int wisp_opts_parse(struct wisp_opt *opts, size_t n, int argc, char **argv, const char *intro);
/* The option's value, else its default; NULL if neither (or no such
 * option). */
const char *wisp_opts_get(const struct wisp_opt *opts, size_t n, const char *name);
/* "usage: INTRO\n\noptions:\n" and a line per option, then the exit codes
 * every daemon shares. */
void wisp_opts_usage(FILE *f, const struct wisp_opt *opts, size_t n, const char *intro);

#endif
