/* SPDX-License-Identifier: Apache-2.0 */
/* The daemons' option table: values, flags, defaults, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "wisp/opts.h"

static struct wisp_opt table[] = {
    {"state", "DIR", "state directory", NULL, NULL},
    {"threads", "N", "worker threads", "2", NULL},
    {"nodes", NULL, "run the nodes", NULL, NULL},
};
#define N (sizeof(table) / sizeof(table[0]))

static int parse(int argc, char **argv)
{
    for (size_t i = 0; i < N; i++)
        table[i].val = NULL;
    return wisp_opts_parse(table, N, argc, argv, "test");
}

static void values_flags_defaults(void **state)
{
    (void)state;
    char *argv[] = {"d", "--state", "/s", "--nodes", NULL};
    assert_int_equal(parse(4, argv), 0);
    assert_string_equal(wisp_opts_get(table, N, "state"), "/s");
    assert_string_equal(wisp_opts_get(table, N, "nodes"), "1");
    assert_string_equal(wisp_opts_get(table, N, "threads"), "2");
    assert_null(wisp_opts_get(table, N, "missing"));
    char *argv2[] = {"d", "--threads=8", NULL};
    assert_int_equal(parse(2, argv2), 0);
    assert_string_equal(wisp_opts_get(table, N, "threads"), "8");
    assert_null(wisp_opts_get(table, N, "state"));
    assert_null(wisp_opts_get(table, N, "nodes"));
}

static void refusals(void **state)
{
    (void)state;
    char *unknown[] = {"d", "--bogus", NULL};
    assert_int_equal(parse(2, unknown), -1);
    char *missing[] = {"d", "--state", NULL};
    assert_int_equal(parse(2, missing), -1);
    char *stray[] = {"d", "--nodes", "extra", NULL};
    assert_int_equal(parse(3, stray), -1);
    char *flag_value[] = {"d", "--nodes=yes", NULL};
    assert_int_equal(parse(2, flag_value), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_flags_defaults),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
