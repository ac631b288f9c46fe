/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for IAM Conditions (include/wisp/cond.h, lib/iam/cond_*.c).
 * Tables first: expressions with the result they must give in a few fixed
 * environments (true, false and error for every function and operator),
 * then expressions that must be refused with a message naming the problem
 * and its position, then the limits, the calendar code against libc's
 * gmtime_r, and many threads evaluating one shared condition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>
#include "wisp/cond.h"
#include "iam/cond_int.h"

/* ------------------------------------------------------------------------ */
/* Environments. */

enum env_id {
    E_FULL,    /* an object; 2025-06-15T13:45:30.250Z, a Sunday, day 166 */
    E_NYE,     /* 2025-12-31T23:30:00Z: already 2026 at +01:00 */
    E_NONE,    /* nothing known */
    E_RUNTIME, /* attributes holding literal text, for runtime conversions */
};

static const struct wisp_cond_env envs[] = {
    [E_FULL] = {.resource_name = "projects/p1/buckets/b1/objects/dir/file.txt",
                .resource_type = "storage.googleapis.com/Object",
                .resource_service = "storage.googleapis.com",
                .request_time_ms = INT64_C(1749995130250)},
    [E_NYE] = {.resource_name = "projects/_/buckets/b",
               .resource_type = "storage.googleapis.com/Bucket",
               .resource_service = "storage.googleapis.com",
               .request_time_ms = INT64_C(1767223800000)},
    [E_NONE] = {0},
    [E_RUNTIME] = {.resource_name = "2025-06-15T13:45:30.25Z",
                   .resource_type = "2025-06-15",
                   .resource_service = "+01:00",
                   .request_time_ms = INT64_C(1749995130250)},
};

#define T WISP_COND_TRUE
#define F WISP_COND_FALSE
#define ERR WISP_COND_ERROR

struct eval_case {
    const char *expr;
    enum env_id env;
    enum wisp_cond_result want;
};

static const struct eval_case eval_cases[] = {
    /* The documented examples (WIRE.md §4.4, the task brief). */
    {"request.time < timestamp(\"2026-01-01T00:00:00Z\")", E_FULL, T},
    {"request.time < timestamp(\"2026-01-01T00:00:00Z\")", E_NYE, T},
    {"request.time < timestamp(\"2025-01-01T00:00:00Z\")", E_FULL, F},
    {"request.time < timestamp(\"2026-01-01T00:00:00Z\")", E_NONE, ERR},
    {"resource.name.startsWith(\"projects/_/buckets/b/objects/x\")", E_FULL, F},
    {"resource.name.startsWith(\"projects/p1/buckets/b1/objects/dir\")", E_FULL, T},
    {"resource.type == \"storage.googleapis.com/Bucket\" || "
     "resource.name.extract(\"projects/{p}/\") == \"p1\"",
     E_FULL, T},
    {"resource.type == \"storage.googleapis.com/Bucket\" || "
     "resource.name.extract(\"projects/{p}/\") == \"p1\"",
     E_NYE, T},
    {"resource.type == \"storage.googleapis.com/Bucket\" || "
     "resource.name.extract(\"projects/{p}/\") == \"p1\"",
     E_NONE, ERR},
    /* Named IANA zones: wisp has no tz database, so they are an error. */
    {"request.time.getHours(\"Europe/Berlin\") >= 9", E_FULL, ERR},
    {"request.time.getHours(\"Europe/Berlin\") == 15", E_FULL, ERR},
    {"false && request.time.getHours(\"Europe/Berlin\") == 15", E_FULL, F},
    /* Google's recommended guard. */
    {"(resource.type != 'storage.googleapis.com/Bucket' && "
     "resource.type != 'storage.googleapis.com/Object') || "
     "resource.name.startsWith('projects/p1/buckets/b1/objects/dir/')",
     E_FULL, T},
    {"(resource.type != 'storage.googleapis.com/Bucket' && "
     "resource.type != 'storage.googleapis.com/Object') || "
     "resource.name.startsWith('projects/p1/buckets/b1/objects/other/')",
     E_FULL, F},

    /* String attributes, == and !=. */
    {"resource.name == \"projects/p1/buckets/b1/objects/dir/file.txt\"", E_FULL, T},
    {"resource.name == 'projects/p1/buckets/b1/objects/dir/file.tx'", E_FULL, F},
    {"resource.name != 'x'", E_FULL, T},
    {"resource.name != resource.name", E_FULL, F},
    {"resource.type == 'storage.googleapis.com/Object'", E_FULL, T},
    {"resource.type != 'storage.googleapis.com/Object'", E_FULL, F},
    {"resource.service == \"storage.googleapis.com\"", E_FULL, T},
    {"resource.service != \"storage.googleapis.com\"", E_FULL, F},
    {"resource.name == 'x'", E_NONE, ERR},
    {"resource.name != 'x'", E_NONE, ERR},
    {"resource.type == 'x'", E_NONE, ERR},
    {"resource.service == 'x'", E_NONE, ERR},
    {"'abc' < 'abd'", E_NONE, T},
    {"'ab' < 'abc'", E_NONE, T},
    {"'b' > 'abc'", E_NONE, T},
    {"'abc' <= 'abc' && 'abc' >= 'abc'", E_NONE, T},
    {"'' == \"\"", E_NONE, T},

    /* startsWith / endsWith. */
    {"resource.name.startsWith('projects/p1/')", E_FULL, T},
    {"resource.name.startsWith('projects/p2/')", E_FULL, F},
    {"resource.name.startsWith('')", E_FULL, T},
    {"resource.name.startsWith('projects/p1/buckets/b1/objects/dir/file.txt/more')", E_FULL, F},
    {"resource.name.startsWith('x')", E_NONE, ERR},
    {"resource.name.endsWith('.txt')", E_FULL, T},
    {"resource.name.endsWith('.png')", E_FULL, F},
    {"resource.name.endsWith('')", E_FULL, T},
    {"resource.name.endsWith('x')", E_NONE, ERR},
    {"'abc'.startsWith(resource.service)", E_NONE, ERR},
    {"resource.service.startsWith(resource.service)", E_FULL, T},

    /* extract(). */
    {"resource.name.extract('projects/{p}/') == 'p1'", E_FULL, T},
    {"resource.name.extract('buckets/{b}/objects') == 'b1'", E_FULL, T},
    {"resource.name.extract('objects/{path}') == 'dir/file.txt'", E_FULL, T},
    {"resource.name.extract('{x}/buckets') == 'projects/p1'", E_FULL, T},
    {"resource.name.extract('folders/{f}/') == ''", E_FULL, T},
    {"resource.name.extract('projects/{p}/zzz') == ''", E_FULL, T},
    {"'a/x/b/a/y/b'.extract('a/{v}/b') == 'x'", E_NONE, T},
    {"'xb a/c'.extract('a/{v}b') == ''", E_NONE, T},
    {"'a/'.extract('a/{v}') == ''", E_NONE, T},
    {"'\\n/a'.extract('\\n{x}') == '/a'", E_NONE, T},
    {"resource.name.extract('projects/{p}/') == 'p1'", E_NONE, ERR},
    {"resource.name.extract('projects/{p}/').startsWith('p')", E_FULL, T},

    /* in with list literals. */
    {"resource.type in ['storage.googleapis.com/Bucket', 'storage.googleapis.com/Object']", E_FULL,
     T},
    {"resource.type in ['a', 'b',]", E_FULL, F},
    {"resource.type in []", E_FULL, F},
    {"resource.type in ['a']", E_NONE, ERR},
    {"'x' in [resource.name, 'x']", E_NONE, ERR},
    {"1 in [1, 2]", E_NONE, T},
    {"3 in [1, 2]", E_NONE, F},
    {"request.time.getHours() in [13, 14]", E_FULL, T},
    {"request.time in [timestamp('2025-06-15T13:45:30.25Z')]", E_FULL, T},
    {"true in [false, true]", E_NONE, T},

    /* String literals and escapes. */
    {"\"\\x41\\u0042\\U00000043\\103\" == \"ABCC\"", E_NONE, T},
    {"'it\\'s' == \"it's\"", E_NONE, T},
    {"r\"a\\n\" == \"a\\\\n\"", E_NONE, T},
    {"R'\\d' == '\\\\d'", E_NONE, T},
    {"\"\"\"multi\"line\"\"\" == 'multi\"line'", E_NONE, T},
    {"'''two\nlines''' == 'two\\nlines'", E_NONE, T},
    {"\"\\xff\" == \"\\u00ff\"", E_NONE, T},
    {"\"\\xc3\" == \"\\xc3\"", E_NONE, T},
    {"\"\xc3\xa9\" == \"\\u00e9\"", E_NONE, T},
    {"'\\a\\b\\f\\n\\r\\t\\v\\\\\\?\\`' == \"\\007\\010\\014\\012\\015\\011\\013\\\\?`\"", E_NONE,
     T},
    {"'\\000' == ''", E_NONE, F},
    {"\"\\u20ac\" == \"\xe2\x82\xac\"", E_NONE, T},
    {"\"\\U0001F600\" == \"\xf0\x9f\x98\x80\"", E_NONE, T},
    {"'\xf0\x9f\x98\x80'.endsWith('\\U0001f600')", E_NONE, T},
    {"// a comment\n'a' == 'a' // another", E_NONE, T},

    /* Booleans and logic, with CEL's commutative error handling. */
    {"true", E_NONE, T},
    {"false", E_NONE, F},
    {"!false", E_NONE, T},
    {"!true", E_NONE, F},
    {"!!true", E_NONE, T},
    {"true && false", E_NONE, F},
    {"true && true", E_NONE, T},
    {"false || false", E_NONE, F},
    {"true || false", E_NONE, T},
    {"(true)", E_NONE, T},
    {"true == true", E_NONE, T},
    {"true != false", E_NONE, T},
    {"(1 == 1) == (2 == 2)", E_NONE, T},
    {"!(1 == 2)", E_NONE, T},
    {"false && resource.name == 'x'", E_NONE, F},
    {"resource.name == 'x' && false", E_NONE, F},
    {"true && resource.name == 'x'", E_NONE, ERR},
    {"resource.name == 'x' && true", E_NONE, ERR},
    {"true || resource.name == 'x'", E_NONE, T},
    {"resource.name == 'x' || true", E_NONE, T},
    {"resource.name == 'x' || false", E_NONE, ERR},
    {"false || resource.name == 'x'", E_NONE, ERR},
    {"!(resource.name == 'x')", E_NONE, ERR},
    {"resource.name == 'x' || resource.type == 'y'", E_NONE, ERR},
    {"true || false && false", E_NONE, T}, /* && binds tighter */
    {"(true || false) && false", E_NONE, F},

    /* Integers. */
    {"1 < 2", E_NONE, T},
    {"2 < 1", E_NONE, F},
    {"2 <= 2", E_NONE, T},
    {"3 <= 2", E_NONE, F},
    {"3 > 2", E_NONE, T},
    {"2 > 2", E_NONE, F},
    {"2 >= 3", E_NONE, F},
    {"3 >= 3", E_NONE, T},
    {"1 == 1", E_NONE, T},
    {"1 == 2", E_NONE, F},
    {"1 != 1", E_NONE, F},
    {"1 != 2", E_NONE, T},
    {"-1 < 0", E_NONE, T},
    {"--1 == 1", E_NONE, T},
    {"1 + 2 == 3", E_NONE, T},
    {"5 - 7 == -2", E_NONE, T},
    {"1 - 1 - 1 == -1", E_NONE, T}, /* left-associative */
    {"0x10 == 16 && 0XfF == 255", E_NONE, T},
    {"007 == 7", E_NONE, T},
    {"9223372036854775807 > 0", E_NONE, T},
    {"9223372036854775807 + 1 > 0", E_NONE, ERR},
    {"-9223372036854775808 < 0", E_NONE, T},
    {"-9223372036854775808 - 1 < 0", E_NONE, ERR},
    {"-(-9223372036854775807 - 1) > 0", E_NONE, ERR},
    {"-(1 - 2) == 1", E_NONE, T},

    /* Timestamps. */
    {"request.time > timestamp('2025-06-15T13:45:30.25Z')", E_FULL, F},
    {"request.time == timestamp('2025-06-15T13:45:30.250Z')", E_FULL, T},
    {"request.time != timestamp('2025-06-15T13:45:30.250Z')", E_FULL, F},
    {"request.time == timestamp('2025-06-15T15:45:30.250+02:00')", E_FULL, T},
    {"request.time == timestamp('2025-06-15T08:15:30.250-05:30')", E_FULL, T},
    {"request.time < timestamp('2025-06-15T13:45:30.250000001Z')", E_FULL, T},
    {"request.time >= timestamp('2025-06-15T13:45:30.2500000009999Z')", E_FULL, T},
    {"request.time <= timestamp('2025-06-15T13:45:30Z')", E_FULL, F},
    {"request.time < date('2025-06-16')", E_FULL, T},
    {"request.time > date('2025-06-15')", E_FULL, T},
    {"date('2024-02-29') == timestamp('2024-02-29T00:00:00Z')", E_NONE, T},
    {"date('2023-02-29') < request.time", E_FULL, ERR},
    {"date('2025-6-15') < request.time", E_FULL, ERR},
    {"request.time < timestamp('2026-13-01T00:00:00Z')", E_FULL, ERR},
    {"timestamp('not a time') < request.time", E_FULL, ERR},
    {"timestamp('2025-06-15T24:00:00Z') < request.time", E_FULL, ERR},
    {"timestamp('2025-06-15T23:59:60Z') < request.time", E_FULL, ERR},
    {"timestamp('2025-06-15t00:00:00z') < request.time", E_FULL, ERR},
    {"timestamp('2025-06-15T00:00:00') < request.time", E_FULL, ERR},
    {"timestamp('2025-06-15T00:00:00.Z') < request.time", E_FULL, ERR},
    {"timestamp('2025-06-15T00:00:00+0100') < request.time", E_FULL, ERR},
    {"timestamp('2025-06-15T00:00:00Z ') < request.time", E_FULL, ERR},
    {"false && request.time < timestamp('bad')", E_FULL, F},
    {"request.time < timestamp('bad') || true", E_FULL, T},
    {"request.time + duration('12h') > timestamp('2025-06-16T00:00:00Z')", E_FULL, T},
    {"request.time - duration('14h') < date('2025-06-15')", E_FULL, T},
    {"duration('1h') + request.time > request.time", E_FULL, T},
    {"request.time - timestamp('2025-06-15T00:00:00Z') == duration('13h45m30.25s')", E_FULL, T},
    {"request.time - request.time == duration('0')", E_FULL, T},
    {"timestamp('2025-06-15T13:45:30.9Z') + duration('200ms') == "
     "timestamp('2025-06-15T13:45:31.1Z')",
     E_NONE, T},
    {"timestamp('1970-01-01T00:00:00.1Z') - duration('200ms') == "
     "timestamp('1969-12-31T23:59:59.9Z')",
     E_NONE, T},
    {"request.time + duration('1h') > request.time", E_NONE, ERR},
    {"duration('1h') + duration('1h') > duration('bad')", E_NONE, ERR},
    {"date('2025/06/15') < request.time", E_FULL, ERR},
    {"date('2025-0a-15') < request.time", E_FULL, ERR},
    {"date('0000-01-01') < request.time", E_FULL, ERR},
    {"timestamp('2025-06-15T13:45:30+0a:00') < request.time", E_FULL, ERR},
    {"timestamp('2025-06-15T13:45:30+24:00') < request.time", E_FULL, ERR},
    {"timestamp('9999-12-31T23:59:59.999999999Z') > request.time", E_FULL, T},
    {"timestamp('9999-12-31T23:59:59Z') + duration('1s') > request.time", E_FULL, ERR},
    {"timestamp('0001-01-01T00:00:00Z') < request.time", E_FULL, T},
    {"timestamp('0001-01-01T00:00:00Z') - duration('1ns') < request.time", E_FULL, ERR},
    {"timestamp('0000-12-31T00:00:00Z') < request.time", E_FULL, ERR},
    {"timestamp('0001-01-01T00:00:00+00:01') < request.time", E_FULL, ERR},
    {"request.time - timestamp('0001-01-01T00:00:00Z') > duration('1h')", E_FULL, ERR},
    {"request.time - duration('-2562047h47m16.854775808s') > request.time", E_FULL, ERR},

    /* Durations. */
    {"duration('1.5h') == duration('90m')", E_NONE, T},
    {"duration('1h30m') == duration('5400s')", E_NONE, T},
    {"duration('-1.5s') < duration('0')", E_NONE, T},
    {"duration('1ms') == duration('1000us')", E_NONE, T},
    {"duration('1\xc2\xb5s') == duration('1000ns')", E_NONE, T},
    {"duration('1\xce\xbcs') == duration('1000ns')", E_NONE, T},
    {"duration('.5s') == duration('500ms')", E_NONE, T},
    {"duration('5.s') == duration('5s')", E_NONE, T},
    {"duration('+3s') == duration('3s')", E_NONE, T},
    {"-duration('3s') == duration('-3s')", E_NONE, T},
    {"duration('1h') - duration('30m') == duration('30m')", E_NONE, T},
    {"duration('1h') > duration('59m59.999999999s')", E_NONE, T},
    {"duration('2562047h47m16.854775807s') > duration('0')", E_NONE, T},
    {"duration('2562047h47m16.854775808s') > duration('0')", E_NONE, ERR},
    {"duration('-2562047h47m16.854775808s') < duration('0')", E_NONE, T},
    {"-duration('-2562047h47m16.854775808s') < duration('0')", E_NONE, ERR},
    {"duration('2562047h') + duration('2562047h') > duration('0')", E_NONE, ERR},
    {"duration('1d') > duration('0')", E_NONE, ERR},
    {"duration('') > duration('0')", E_NONE, ERR},
    {"duration('1') > duration('0')", E_NONE, ERR},
    {"duration('.s') > duration('0')", E_NONE, ERR},
    {"duration('1s ') > duration('0')", E_NONE, ERR},
    {"duration('1h').getHours() == 1", E_NONE, T},
    {"duration('1h').getMinutes() == 60", E_NONE, T},
    {"duration('-90s').getMinutes() == -1", E_NONE, T},
    {"duration('1500ms').getSeconds() == 1", E_NONE, T},
    {"duration('1500ms').getMilliseconds() == 1500", E_NONE, T},
    {"duration('bad').getHours() == 0", E_NONE, ERR},

    /* Timestamp extractors, UTC by default. */
    {"request.time.getFullYear() == 2025", E_FULL, T},
    {"request.time.getMonth() == 5", E_FULL, T},
    {"request.time.getDate() == 15", E_FULL, T},
    {"request.time.getDayOfMonth() == 14", E_FULL, T},
    {"request.time.getDayOfWeek() == 0", E_FULL, T},
    {"request.time.getDayOfYear() == 165", E_FULL, T},
    {"request.time.getHours() == 13", E_FULL, T},
    {"request.time.getMinutes() == 45", E_FULL, T},
    {"request.time.getSeconds() == 30", E_FULL, T},
    {"request.time.getMilliseconds() == 250", E_FULL, T},
    {"request.time.getHours() == 14", E_FULL, F},
    {"request.time.getHours() == 13", E_NONE, ERR},
    {"request.time.getHours() >= 9 && request.time.getHours() < 17", E_FULL, T},
    /* ... with fixed zones. */
    {"request.time.getHours('UTC') == 13", E_FULL, T},
    {"request.time.getHours('GMT') == 13", E_FULL, T},
    {"request.time.getHours('Etc/UTC') == 13", E_FULL, T},
    {"request.time.getHours('') == 13", E_FULL, T},
    {"request.time.getHours('+01:00') == 14", E_FULL, T},
    {"request.time.getHours('-05:00') == 8", E_FULL, T},
    {"request.time.getHours('-5:00') == 8", E_FULL, T},
    {"request.time.getMinutes('-05:30') == 15", E_FULL, T},
    {"request.time.getHours('+05:45') == 19 && request.time.getMinutes('+05:45') == 30", E_FULL, T},
    {"request.time.getHours('Etc/GMT+5') == 8", E_FULL, T},
    {"request.time.getHours('Etc/GMT-14') == 3", E_FULL, T},
    {"request.time.getHours('+25:00') == 14", E_FULL, ERR},
    {"request.time.getHours('+01:60') == 14", E_FULL, ERR},
    {"request.time.getHours('+01:0') == 14", E_FULL, ERR},
    {"request.time.getHours('Etc/GMT+13') == 0", E_FULL, ERR},
    {"request.time.getHours('garbage') == 14", E_FULL, ERR},
    {"request.time.getHours('Local') == 14", E_FULL, ERR},
    {"request.time.getHours('America/New_York') == 9", E_FULL, ERR},
    {"request.time.getFullYear() == 2025", E_NYE, T},
    {"request.time.getFullYear('+01:00') == 2026", E_NYE, T},
    {"request.time.getMonth() == 11", E_NYE, T},
    {"request.time.getMonth('+01:00') == 0", E_NYE, T},
    {"request.time.getDate('+01:00') == 1", E_NYE, T},
    {"request.time.getDayOfMonth('+01:00') == 0", E_NYE, T},
    {"request.time.getDayOfYear() == 364", E_NYE, T},
    {"request.time.getDayOfYear('+01:00') == 0", E_NYE, T},
    {"request.time.getDayOfWeek() == 3", E_NYE, T},
    {"request.time.getDayOfWeek('+01:00') == 4", E_NYE, T},
    {"request.time.getHours('-01:00') == 22", E_NYE, T},
    {"timestamp('2024-12-31T12:00:00Z').getDayOfYear() == 365", E_NONE, T},
    {"timestamp('0001-01-01T00:00:00Z').getDayOfWeek() == 1", E_NONE, T},
    {"timestamp('0001-01-01T00:00:00Z').getFullYear('-01:00') == 0", E_NONE, T},
    {"timestamp('1969-12-31T23:59:59.999Z').getMilliseconds() == 999", E_NONE, T},
    {"timestamp('1969-12-31T23:59:59.999Z').getSeconds() == 59", E_NONE, T},

    /* Conversions and zones whose text arrives at evaluation time. */
    {"timestamp(resource.name) == request.time", E_RUNTIME, T},
    {"date(resource.type) < request.time", E_RUNTIME, T},
    {"request.time.getHours(resource.service) == 14", E_RUNTIME, T},
    {"duration(resource.service) > duration('0')", E_RUNTIME, ERR},
    {"timestamp(resource.type) < request.time", E_RUNTIME, ERR},
    {"request.time.getHours(resource.service) == 14", E_FULL, ERR},
    {"request.time.getHours(resource.service) == 14", E_NONE, ERR},
    {"timestamp(resource.name) == request.time", E_NONE, ERR},
};

static const char *env_name(enum env_id e)
{
    static const char *const names[] = {"full", "nye", "none", "runtime"};
    return names[e];
}

static void test_eval_table(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof eval_cases / sizeof eval_cases[0]; i++) {
        const struct eval_case *tc = &eval_cases[i];
        struct wisp_cond *c = NULL;
        char msg[256];
        enum wisp_err err = wisp_cond_parse(tc->expr, &c, msg, sizeof msg);
        if (err != WISP_OK) {
            print_error("case %zu: parse failed: %s\n  expr: %s\n", i, msg, tc->expr);
            bad++;
            continue;
        }
        enum wisp_cond_result got = wisp_cond_eval(c, &envs[tc->env]);
        if (got != tc->want) {
            print_error("case %zu: env %s: got %s, want %s\n  expr: %s\n", i, env_name(tc->env),
                        wisp_cond_result_name(got), wisp_cond_result_name(tc->want), tc->expr);
            bad++;
        }
        wisp_cond_free(c);
    }
    assert_int_equal(bad, 0);
}

/* Evaluation must not allocate. Under ASan the sanitizer's allocator hooks
 * see every malloc in the process (glibc's included), so the claim can be
 * checked directly; other builds skip the test. */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ALLOC_HOOKS 1
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
static _Atomic int counting;
static _Atomic long n_allocs;

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (counting)
        n_allocs++;
}

static void on_free(const volatile void *p)
{
    (void)p;
}
#endif

static void test_eval_no_alloc(void **state)
{
    (void)state;
#ifdef HAVE_ALLOC_HOOKS
    enum { N = sizeof eval_cases / sizeof eval_cases[0] };
    static struct wisp_cond *conds[N];
    char msg[256];
    for (size_t i = 0; i < N; i++)
        assert_int_equal(wisp_cond_parse(eval_cases[i].expr, &conds[i], msg, sizeof msg), WISP_OK);
    assert_int_not_equal(__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free), 0);
    counting = 1;
    long results = 0;
    for (size_t i = 0; i < N; i++) {
        for (size_t e = 0; e < sizeof envs / sizeof envs[0]; e++)
            results += wisp_cond_eval(conds[i], &envs[e]);
    }
    counting = 0;
    assert_true(results > 0);
    assert_int_equal(n_allocs, 0);
    /* And the counter does count: parsing allocates. */
    struct wisp_cond *c = NULL;
    counting = 1;
    assert_int_equal(wisp_cond_parse("true", &c, msg, sizeof msg), WISP_OK);
    counting = 0;
    assert_true(n_allocs > 0);
    wisp_cond_free(c);
    for (size_t i = 0; i < N; i++)
        wisp_cond_free(conds[i]);
#else
    skip();
#endif
}

/* ------------------------------------------------------------------------ */
/* Refused expressions. */

struct parse_case {
    const char *expr;
    const char *want; /* substring of the message */
};

static const struct parse_case parse_cases[] = {
    {"", "at line 1, column 1: expected an expression, got end of input"},
    {"   ", "expected an expression, got end of input"},
    {"resource.nme == 'x'", "at line 1, column 1: unknown attribute 'resource.nme'"},
    {"resource.name.foo('x')", "column 15: unsupported method 'foo' on string"},
    {"foo('x')", "unknown function 'foo'"},
    {"size(resource.name) > 1", "function 'size' is not supported"},
    {"x == 1", "unknown identifier 'x'"},
    {"timestamp == 1", "unknown identifier 'timestamp'"},
    {"resource.name.startsWith()", "startsWith() takes 1 argument, got 0"},
    {"resource.name.startsWith('a', 'b')", "startsWith() takes 1 argument, got 2"},
    {"resource.name.endsWith(1)", "endsWith() needs string, got int"},
    {"resource.name.startsWith(1, 2, 3, 4, 5)", "too many arguments"},
    {"resource.name == request.time", "column 15: '==' cannot compare string with timestamp"},
    {"request.time < 5", "'<' cannot compare timestamp with int"},
    {"request.time < duration('1s')", "cannot compare timestamp with duration"},
    {"resource.name", "the condition must be a bool expression, not string"},
    {"1 + 1", "must be a bool expression, not int"},
    {"request.time", "not timestamp"},
    {"resource.name == 'a' &&", "expected an expression, got end of input"},
    {"(true", "expected ')', got end of input"},
    {"true)", "expected an operator or the end of the expression, got ')'"},
    {"true true", "got 'true'"},
    {"'abc", "unterminated string literal"},
    {"'abc\n' == 'x'", "unterminated string literal"},
    {"'''abc'' == 'x'", "unterminated string literal"},
    {"'a\\qb' == 'x'", "invalid escape sequence '\\q'"},
    {"'a\\", "unterminated string literal"},
    {"'\\x4' == 'x'", "too few hex digits"},
    {"'\\u12' == 'x'", "too few hex digits"},
    {"'\\400' == 'x'", "invalid escape sequence '\\4'"},
    {"'\\08' == 'x'", "invalid octal escape"},
    {"'\\ud800' == 'x'", "invalid code point U+D800"},
    {"'\\U00110000' == 'x'", "invalid code point U+110000"},
    {"'\xff' == 'x'", "not valid UTF-8"},
    {"'\xc0\x80' == 'x'", "not valid UTF-8"},
    {"'\xed\xa0\x80' == 'x'", "not valid UTF-8"},
    {"'\xe2\x82' == 'x'", "not valid UTF-8"},
    {"'\xf0\x9f\x98' == 'x'", "not valid UTF-8"},
    {"'\xf5\x80\x80\x80' == 'x'", "not valid UTF-8"},
    {"resource.name.extract('"
     "0123456789012345678901234567890123456789012345678901234567890123456789') "
     "== ''",
     "invalid extract() template '012345678901234567890123456789012345678901234567...'"},
    {"1.5 < 2", "floating-point literals are not supported"},
    {".5 < 2", "floating-point literals are not supported"},
    {"1e3 < 2", "floating-point literals are not supported"},
    {"1u < 2", "unsigned integer literals are not supported"},
    {"12ab < 2", "invalid number"},
    {"0x < 2", "hex literal needs at least one digit"},
    {"b'x' == b'x'", "bytes literals are not supported"},
    {"rb'x' == 'x'", "bytes literals are not supported"},
    {"true ? true : false", "conditional operator '?:' is not supported"},
    {"2 * 3 == 6", "operator '*' is not supported"},
    {"6 / 3 == 2", "operator '/' is not supported"},
    {"6 % 3 == 0", "operator '%' is not supported"},
    {"{'a': 1}", "map literals are not supported"},
    {"resource.name = 'x'", "'=' is not an operator; use '=='"},
    {"true & false", "use '&&'"},
    {"true | false", "use '||'"},
    {"'a' + 'b' == 'ab'", "string concatenation is not supported"},
    {"resource.name.extract('projects/p/') == ''", "invalid extract() template 'projects/p/'"},
    {"resource.name.extract('a{}b') == ''", "invalid extract() template"},
    {"resource.name.extract('a{x}b{y}') == ''", "invalid extract() template"},
    {"resource.name.extract('a}{x}') == ''", "invalid extract() template"},
    {"resource.name.extract('a{x-y}') == ''", "invalid extract() template"},
    {"resource.name.extract('a{x') == ''", "invalid extract() template"},
    {"resource.name.extract('\\n{x') == ''", "invalid extract() template '\\x0a{x'"},
    {"resource.name.extract(resource.type) == ''", "extract() takes a string literal template"},
    {"resource.name.extract() == ''", "extract() takes 1 argument, got 0"},
    {"resource.hasTagKey('o/k')", "resource tags (resource.hasTagKey) are not supported"},
    {"resource.matchTag('o/k', 'v')", "resource tags (resource.matchTag) are not supported"},
    {"request.auth.access_levels == 'x'", "unknown attribute 'request.auth'"},
    {"resource == 'x'", "'resource' alone is not a value"},
    {"resource.", "expected an attribute name, got end of input"},
    {"request.time.getHours('UTC', 1) == 1", "at most 1 argument (a time zone), got 2"},
    {"request.time.getHours(1) == 1", "a time zone needs string, got int"},
    {"duration('1h').getDayOfWeek() == 1", "getDayOfWeek() is not defined on a duration"},
    {"duration('1h').getHours('UTC') == 1", "on a duration takes no arguments"},
    {"request.time.foo() == 1", "unsupported method 'foo' on timestamp"},
    {"(1).foo()", "int has no method 'foo'"},
    {"resource.name.size == 1", "field selection '.size' is not supported on a string value"},
    {"resource.name.", "expected a method name, got end of input"},
    {"resource.name[0] == 'p'", "indexing with '[...]' is not supported"},
    {"9223372036854775808 > 0", "integer literal out of range"},
    {"(9223372036854775808) > 0", "integer literal out of range"},
    {"99999999999999999999 > 0", "integer literal out of range"},
    {"--9223372036854775808 > 0", "integer literal out of range"},
    {"1 in 1", "the right operand of 'in' must be a list literal"},
    {"'a' in [1]", "'in' looks for a string in a list of int"},
    {"[1] == [1]", "list literals are only supported on the right of 'in'"},
    {"[1] in [2]", "the left operand of 'in' cannot be a list"},
    {"1 in [1, 'a']", "list mixes int and string elements"},
    {"1 in [1 2]", "expected ',' or ']'"},
    {"1 in [[1]]", "lists of lists are not supported"},
    {"!1", "'!' needs bool, got int"},
    {"-'a' == 'a'", "unary '-' needs int or duration, got string"},
    {"-true", "unary '-' needs int or duration, got bool"},
    {"1 && true", "'&&' needs bool, got int"},
    {"true || 'x'", "'||' needs bool, got string"},
    {"true < false", "'<' is not defined on bool"},
    {"timestamp(1) < request.time", "timestamp() needs string, got int"},
    {"timestamp() < request.time", "timestamp() takes 1 argument, got 0"},
    {"date('a', 'b') < request.time", "date() takes 1 argument, got 2"},
    {"duration(request.time) < duration('1s')", "duration() needs string, got timestamp"},
    {"null == null", "null is not supported"},
    {"resource.name == 'x' @", "unexpected character '@'"},
    {"resource.name == 'x'\x01", "unexpected character '\\x01'"},
    {"resource.name == 'x'\xc3\xa9", "unexpected character '\\xc3'"},
    {"request.time + request.time > request.time", "'+' is not defined on timestamp and timestamp"},
    {"duration('1s') - request.time < duration('1s')",
     "'-' is not defined on duration and timestamp"},
    {"1 + 'a' == 1", "'+' is not defined on int and string"},
    {"resource.name == 'x' &&\n  resource.nme == 'y'", "at line 2, column 3: unknown attribute"},
    {"'\xc3\xa9' == x", "at line 1, column 8: unknown identifier 'x'"},
    {"f(", "unknown function 'f'"},
    {"timestamp(", "expected an expression, got end of input"},
    {"timestamp('x'", "expected ',' or ')', got end of input"},
};

/* Every message is one printable line. */
static void assert_one_line(const char *msg)
{
    for (const char *s = msg; *s; s++)
        assert_true((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f);
}

static void test_parse_errors(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const struct parse_case *tc = &parse_cases[i];
        struct wisp_cond *c = (struct wisp_cond *)&bad; /* must be reset to NULL */
        char msg[256];
        enum wisp_err err = wisp_cond_parse(tc->expr, &c, msg, sizeof msg);
        if (err != WISP_EINVAL || c != NULL) {
            print_error("case %zu: accepted (err %d)\n  expr: %s\n", i, (int)err, tc->expr);
            bad++;
            if (err == WISP_OK)
                wisp_cond_free(c);
            continue;
        }
        if (!strstr(msg, tc->want)) {
            print_error("case %zu: message '%s' lacks '%s'\n", i, msg, tc->want);
            bad++;
        }
        if (strncmp(msg, "at line ", 8) != 0) {
            print_error("case %zu: message '%s' names no position\n", i, msg);
            bad++;
        }
        assert_one_line(msg);
    }
    assert_int_equal(bad, 0);
}

static void test_api_edges(void **state)
{
    (void)state;
    struct wisp_cond *c = NULL;
    char msg[128];
    assert_int_equal(wisp_cond_parse(NULL, &c, msg, sizeof msg), WISP_EINVAL);
    assert_null(c);
    assert_true(strlen(msg) > 0);
    assert_int_equal(wisp_cond_parse("true", NULL, msg, sizeof msg), WISP_EINVAL);
    /* No message slot, or a tiny one: still fails cleanly, still terminated. */
    assert_int_equal(wisp_cond_parse("resource.nme == 'x'", &c, NULL, 0), WISP_EINVAL);
    assert_null(c);
    char tiny[12];
    memset(tiny, 'z', sizeof tiny);
    assert_int_equal(wisp_cond_parse("resource.nme == 'x'", &c, tiny, sizeof tiny), WISP_EINVAL);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    /* Success clears the message. */
    strcpy(msg, "stale");
    assert_int_equal(wisp_cond_parse("true", &c, msg, sizeof msg), WISP_OK);
    assert_string_equal(msg, "");
    assert_int_equal(wisp_cond_eval(c, NULL), WISP_COND_ERROR);
    assert_int_equal(wisp_cond_eval(NULL, &envs[E_FULL]), WISP_COND_ERROR);
    assert_int_equal(wisp_cond_eval(c, &envs[E_FULL]), WISP_COND_TRUE);
    wisp_cond_free(c);
    wisp_cond_free(NULL);
    assert_string_equal(wisp_cond_result_name(WISP_COND_TRUE), "true");
    assert_string_equal(wisp_cond_result_name(WISP_COND_FALSE), "false");
    assert_string_equal(wisp_cond_result_name(WISP_COND_ERROR), "error");
    /* A zeroed env has no time, so time conditions fail closed. */
    struct wisp_cond_env zero = {0};
    assert_int_equal(
        wisp_cond_parse("request.time > timestamp('2000-01-01T00:00:00Z')", &c, msg, sizeof msg),
        WISP_OK);
    assert_int_equal(wisp_cond_eval(c, &zero), WISP_COND_ERROR);
    zero.request_time_ms = -1; /* 1969: before the epoch still works */
    assert_int_equal(wisp_cond_eval(c, &zero), WISP_COND_FALSE);
    zero.request_time_ms = INT64_MAX; /* beyond year 9999: an error */
    assert_int_equal(wisp_cond_eval(c, &zero), WISP_COND_ERROR);
    wisp_cond_free(c);
    /* Embedded NUL: the C string ends there. */
    assert_int_equal(wisp_cond_parse("true\0garbage", &c, msg, sizeof msg), WISP_OK);
    wisp_cond_free(c);
}

/* ------------------------------------------------------------------------ */
/* Limits. */

static enum wisp_err parse_msg(const char *expr, char *msg, size_t msglen)
{
    struct wisp_cond *c = NULL;
    enum wisp_err err = wisp_cond_parse(expr, &c, msg, msglen);
    if (err == WISP_OK) {
        assert_non_null(c);
        assert_int_equal(wisp_cond_eval(c, &envs[E_FULL]) == WISP_COND_ERROR, 0);
        wisp_cond_free(c);
    } else {
        assert_null(c);
        assert_one_line(msg);
    }
    return err;
}

static void test_limit_length(void **state)
{
    (void)state;
    char msg[256];
    char *e = malloc(WISP_COND_MAX_LEN + 2);
    assert_non_null(e);
    /* resource.name == "AAA...A" of exactly 2048 bytes. */
    const char *head = "resource.name == \"";
    size_t hl = strlen(head);
    memcpy(e, head, hl);
    memset(e + hl, 'A', WISP_COND_MAX_LEN - hl - 1);
    e[WISP_COND_MAX_LEN - 1] = '"';
    e[WISP_COND_MAX_LEN] = '\0';
    assert_int_equal(parse_msg(e, msg, sizeof msg), WISP_OK);
    e[WISP_COND_MAX_LEN - 1] = 'A';
    e[WISP_COND_MAX_LEN] = '"';
    e[WISP_COND_MAX_LEN + 1] = '\0';
    assert_int_equal(parse_msg(e, msg, sizeof msg), WISP_EINVAL);
    assert_non_null(strstr(msg, "longer than 2048 bytes"));
    free(e);

    /* A long list within the limit parses and evaluates. */
    char list[WISP_COND_MAX_LEN + 1];
    size_t n = (size_t)snprintf(list, sizeof list, "13 in [");
    while (n + 3 < WISP_COND_MAX_LEN)
        n += (size_t)snprintf(list + n, sizeof list - n, "1,");
    snprintf(list + n, sizeof list - n, "]");
    struct wisp_cond *c = NULL;
    assert_int_equal(wisp_cond_parse(list, &c, msg, sizeof msg), WISP_OK);
    assert_int_equal(wisp_cond_eval(c, &envs[E_FULL]), WISP_COND_FALSE);
    wisp_cond_free(c);
}

/* count copies of unit, then tail, into buf. */
static const char *repeat(char *buf, size_t bufsz, const char *head, const char *unit, int count,
                          const char *tail)
{
    size_t n = (size_t)snprintf(buf, bufsz, "%s", head);
    for (int i = 0; i < count; i++)
        n += (size_t)snprintf(buf + n, bufsz - n, "%s", unit);
    snprintf(buf + n, bufsz - n, "%s", tail);
    return buf;
}

static void test_limit_depth(void **state)
{
    (void)state;
    char e[1024], close[128], msg[256];
    /* 32 parentheses are fine, 33 are not. */
    repeat(close, sizeof close, "", ")", 32, "");
    assert_int_equal(parse_msg(repeat(e, sizeof e, "", "(", 32, "true"), msg, sizeof msg),
                     WISP_EINVAL); /* unbalanced */
    strcat(e, close);
    assert_int_equal(parse_msg(e, msg, sizeof msg), WISP_OK);
    repeat(e, sizeof e, "", "(", 33, "true");
    strcat(e, close);
    strcat(e, ")");
    assert_int_equal(parse_msg(e, msg, sizeof msg), WISP_EINVAL);
    assert_non_null(strstr(msg, "nests deeper than 32 levels"));
    /* Unary minus chains count too. */
    assert_int_equal(parse_msg(repeat(e, sizeof e, "", "- ", 32, "1 == 1"), msg, sizeof msg),
                     WISP_OK);
    assert_int_equal(parse_msg(repeat(e, sizeof e, "", "- ", 33, "1 == 1"), msg, sizeof msg),
                     WISP_EINVAL);
    assert_non_null(strstr(msg, "nests deeper"));
    /* Left-associative chains grow the tree without parentheses: the
     * tree's height is bounded as well (31 levels of '+', one of '=='). */
    assert_int_equal(parse_msg(repeat(e, sizeof e, "1", " + 1", 30, " == 31"), msg, sizeof msg),
                     WISP_OK);
    assert_int_equal(parse_msg(repeat(e, sizeof e, "1", " + 1", 31, " == 32"), msg, sizeof msg),
                     WISP_EINVAL);
    assert_non_null(strstr(msg, "nests deeper than 32 levels"));
    /* A list over an element of the maximum height is one level too many. */
    assert_int_equal(parse_msg(repeat(e, sizeof e, "1 in [1", " + 1", 31, "]"), msg, sizeof msg),
                     WISP_EINVAL);
    assert_non_null(strstr(msg, "nests deeper than 32 levels"));
    /* Element 30 high, list 31, `in` 32: the most that fits. */
    assert_int_equal(parse_msg(repeat(e, sizeof e, "1 in [1", " + 1", 29, "]"), msg, sizeof msg),
                     WISP_OK);
    assert_int_equal(parse_msg(repeat(e, sizeof e, "1 in [1", " + 1", 30, "]"), msg, sizeof msg),
                     WISP_EINVAL);
    /* Method chains likewise. */
    assert_int_equal(
        parse_msg(repeat(e, sizeof e, "resource.name", ".extract('{x}')", 40, " == ''"), msg,
                  sizeof msg),
        WISP_EINVAL);
    assert_non_null(strstr(msg, "nests deeper"));
    /* Nested lists through parentheses and calls. */
    assert_int_equal(parse_msg(repeat(e, sizeof e, "", "timestamp(", 40, "'x'"), msg, sizeof msg),
                     WISP_EINVAL);
    assert_non_null(strstr(msg, "nests deeper"));
    assert_int_equal(parse_msg(repeat(e, sizeof e, "1 in ", "[", 40, "1"), msg, sizeof msg),
                     WISP_EINVAL);
    assert_non_null(strstr(msg, "nests deeper"));
}

static void test_limit_logical(void **state)
{
    (void)state;
    char e[1024], msg[256];
    /* 12 logical operators of any kind are allowed; the 13th is not. */
    assert_int_equal(parse_msg(repeat(e, sizeof e, "true", " && true", 12, ""), msg, sizeof msg),
                     WISP_OK);
    assert_int_equal(parse_msg(repeat(e, sizeof e, "true", " && true", 13, ""), msg, sizeof msg),
                     WISP_EINVAL);
    assert_non_null(strstr(msg, "more than 12 logical operators"));
    assert_non_null(strstr(msg, "column 102"));
    assert_int_equal(parse_msg(repeat(e, sizeof e, "false", " || false", 12, ""), msg, sizeof msg),
                     WISP_OK);
    assert_int_equal(parse_msg(repeat(e, sizeof e, "", "!", 12, "true"), msg, sizeof msg), WISP_OK);
    assert_int_equal(parse_msg(repeat(e, sizeof e, "", "!", 13, "true"), msg, sizeof msg),
                     WISP_EINVAL);
    assert_non_null(strstr(msg, "logical operators"));
    assert_int_equal(parse_msg("!true || !false && (true || !true) && true || false || !(true && "
                               "false) || true",
                               msg, sizeof msg),
                     WISP_OK); /* 12 exactly */
    assert_int_equal(parse_msg("!true || !false && (true || !true) && true || false || !(true && "
                               "false) || !true",
                               msg, sizeof msg),
                     WISP_EINVAL);
}

/* ------------------------------------------------------------------------ */
/* The calendar code against glibc's gmtime_r, over the whole CEL range. */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_calendar_vs_libc(void **state)
{
    (void)state;
    const int64_t span = COND_TS_MAX_SEC - COND_TS_MIN_SEC + 1;
    for (int i = 0; i < 200000; i++) {
        struct cond_ts ts;
        ts.sec = COND_TS_MIN_SEC + (int64_t)(next_rand() % (uint64_t)span);
        ts.nsec = (int32_t)(next_rand() % 1000000000u);
        if (i < 4) /* the edges */
            ts.sec = i == 0 ? COND_TS_MIN_SEC : i == 1 ? COND_TS_MAX_SEC : i == 2 ? 0 : -1;
        int32_t off = (int32_t)((int64_t)(next_rand() % 1681) - 840) * 60; /* ±14h */
        time_t t = (time_t)(ts.sec + off);
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_FULL_YEAR), (int64_t)tm.tm_year + 1900);
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_MONTH), tm.tm_mon);
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_DATE), tm.tm_mday);
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_DAY_OF_MONTH), tm.tm_mday - 1);
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_DAY_OF_WEEK), tm.tm_wday);
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_DAY_OF_YEAR), tm.tm_yday);
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_HOURS), tm.tm_hour);
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_MINUTES), tm.tm_min);
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_SECONDS), tm.tm_sec);
        assert_int_equal(wisp__cond_ts_get(ts, off, GET_MILLISECONDS), ts.nsec / 1000000);

        /* And RFC 3339 text of the same instant parses back to it. */
        t = (time_t)ts.sec;
        assert_non_null(gmtime_r(&t, &tm));
        if (tm.tm_year + 1900 < 1)
            continue;
        char s[64];
        snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ts.nsec);
        struct cond_ts back;
        assert_int_equal(wisp__cond_parse_timestamp(s, strlen(s), &back), 0);
        assert_int_equal(back.sec, ts.sec);
        assert_int_equal(back.nsec, ts.nsec);
    }
}

static void test_duration_parser(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ok;
        int64_t ns;
    } cases[] = {
        {"0", 1, 0},
        {"-0", 1, 0},
        {"+0", 1, 0},
        {"0s", 1, 0},
        {"1ns", 1, 1},
        {"1.5s", 1, 1500000000},
        {"1h30m", 1, INT64_C(5400000000000)},
        {"1h1m1s1ms1us1ns", 1, INT64_C(3661001001001)},
        {"-1.5h", 1, INT64_C(-5400000000000)},
        {"0.000000001s", 1, 1},
        {"0.0000000019s", 1, 1},
        {"1.000000000000000000000000000001s", 1, 1000000000},
        {"9223372036854775807ns", 1, INT64_MAX},
        {"-9223372036854775808ns", 1, INT64_MIN},
        {"9223372036854775808ns", 0, 0},
        {"99999999999999999999ns", 0, 0},
        {"9223372036854775809ns", 0, 0},
        {"9223372036.854775807s", 1, INT64_MAX},
        {"9223372036.854775809s", 0, 0},
        {"0.12345678901234567890123s", 1, 123456789},
        {"2562048h", 0, 0},
        {"-9223372036854775808ns9223372036854775808ns", 0, 0},
        {"", 0, 0},
        {"-", 0, 0},
        {"s", 0, 0},
        {"1", 0, 0},
        {"1.s", 1, 1000000000},
        {".", 0, 0},
        {"1x", 0, 0},
        {"1S", 0, 0},
        {"1 s", 0, 0},
        {"1s-1s", 0, 0},
        {"1e3s", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ns = 42;
        int rc = wisp__cond_parse_duration(cases[i].s, strlen(cases[i].s), &ns);
        if ((rc == 0) != cases[i].ok || (rc == 0 && ns != cases[i].ns))
            fail_msg("duration '%s': rc %d ns %lld", cases[i].s, rc, (long long)ns);
    }
}

static void test_tz_parser(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ok;
        int32_t off;
    } cases[] = {
        {"", 1, 0},
        {"UTC", 1, 0},
        {"Etc/UTC", 1, 0},
        {"GMT", 1, 0},
        {"Zulu", 1, 0},
        {"+01:00", 1, 3600},
        {"-05:00", 1, -18000},
        {"05:30", 1, 19800},
        {"-00:30", 1, -1800},
        {"+5:00", 1, 18000},
        {"+23:59", 1, 86340},
        {"+24:00", 0, 0},
        {"+01:60", 0, 0},
        {"+001:00", 0, 0},
        {"+01:0", 0, 0},
        {"+01:000", 0, 0},
        {":00", 0, 0},
        {"+:00", 0, 0},
        {"Etc/GMT+5", 1, -18000},
        {"Etc/GMT-14", 1, 50400},
        {"Etc/GMT+12", 1, -43200},
        {"Etc/GMT+13", 0, 0},
        {"Etc/GMT-15", 0, 0},
        {"Etc/GMT+05", 0, 0},
        {"Etc/GMT+", 0, 0},
        {"utc", 0, 0},
        {"Europe/Berlin", 0, 0},
        {"Local", 0, 0},
        {"a:b", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t off = 42;
        int rc = wisp__cond_parse_tz(cases[i].s, strlen(cases[i].s), &off);
        if ((rc == 0) != cases[i].ok || (rc == 0 && off != cases[i].off))
            fail_msg("tz '%s': rc %d off %d", cases[i].s, rc, (int)off);
    }
}

/* ------------------------------------------------------------------------ */
/* One parsed condition, many threads: results must not depend on sharing. */

struct thread_arg {
    const struct wisp_cond *c;
    int mismatches;
};

static void *eval_thread(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 20000; i++) {
        const struct wisp_cond_env *env = &envs[i % 4];
        enum wisp_cond_result want = (i % 4 == E_FULL)   ? WISP_COND_TRUE
                                     : (i % 4 == E_NONE) ? WISP_COND_ERROR
                                                         : WISP_COND_FALSE;
        if (wisp_cond_eval(a->c, env) != want)
            a->mismatches++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct wisp_cond *c = NULL;
    char msg[256];
    assert_int_equal(wisp_cond_parse("resource.name.extract('projects/{p}/') == 'p1' && "
                                     "request.time.getHours('+01:00') == 14 && "
                                     "request.time < timestamp('2026-01-01T00:00:00Z')",
                                     &c, msg, sizeof msg),
                     WISP_OK);
    /* E_NYE and E_RUNTIME are false (wrong project / not projects/...),
     * E_NONE an error. */
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].c = c;
        args[i].mismatches = 0;
        assert_int_equal(pthread_create(&th[i], NULL, eval_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].mismatches, 0);
    }
    wisp_cond_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_table),      cmocka_unit_test(test_eval_no_alloc),
        cmocka_unit_test(test_parse_errors),    cmocka_unit_test(test_api_edges),
        cmocka_unit_test(test_limit_length),    cmocka_unit_test(test_limit_depth),
        cmocka_unit_test(test_limit_logical),   cmocka_unit_test(test_calendar_vs_libc),
        cmocka_unit_test(test_duration_parser), cmocka_unit_test(test_tz_parser),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
