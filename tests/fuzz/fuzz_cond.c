/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for IAM Conditions (lib/iam/cond_*.c). Beyond "no crash,
 * no leak, no UB", it checks the contract: a refused expression gives
 * WISP_EINVAL, a NULL condition and a one-line printable message naming a
 * position; an accepted one evaluates, deterministically, to one of the
 * three results in every environment, including an environment whose
 * strings are the input itself (which drives the run-time conversions of
 * timestamp(), date(), duration() and time zones). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/cond.h"

static void die(const char *what, const char *in, const char *detail)
{
    fprintf(stderr, "fuzz_cond: %s\n  input: %s\n  detail: %s\n", what, in, detail);
    abort();
}

static void check_message(const char *in, const char *msg)
{
    if (strncmp(msg, "at line ", 8) != 0 && strncmp(msg, "the expression is longer", 24) != 0)
        die("message names no position", in, msg);
    for (const char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            die("message is not one printable line", in, msg);
    }
}

static void check_eval(const struct wisp_cond *c, const struct wisp_cond_env *env, const char *in)
{
    enum wisp_cond_result r = wisp_cond_eval(c, env);
    if (r != WISP_COND_FALSE && r != WISP_COND_TRUE && r != WISP_COND_ERROR)
        die("result out of range", in, "");
    if (wisp_cond_eval(c, env) != r)
        die("evaluation is not deterministic", in, "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parser takes a C string: copy and terminate. Embedded NULs just
     * shorten the expression, which is what a C caller would see. */
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';

    struct wisp_cond *c = NULL;
    char msg[256];
    enum wisp_err err = wisp_cond_parse(in, &c, msg, sizeof msg);
    if (err != WISP_OK) {
        if (err != WISP_EINVAL)
            die("unexpected error code", in, msg);
        if (c)
            die("failed parse returned a condition", in, msg);
        check_message(in, msg);
        free(in);
        return 0;
    }
    if (!c)
        die("successful parse without a condition", in, "");

    static const struct wisp_cond_env fixed[] = {
        {.resource_name = "projects/p1/buckets/b1/objects/dir/file.txt",
         .resource_type = "storage.googleapis.com/Object",
         .resource_service = "storage.googleapis.com",
         .request_time_ms = INT64_C(1749995130250)},
        {.resource_name = "",
         .resource_type = "",
         .resource_service = "",
         .request_time_ms = INT64_C(-62135596800000)}, /* 0001-01-01T00:00:00Z */
        {.request_time_ms = INT64_C(253402300799999)}, /* 9999-12-31T23:59:59.999Z */
        {0},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_eval(c, &fixed[i], in);
    const struct wisp_cond_env self = {
        .resource_name = in,
        .resource_type = in,
        .resource_service = in,
        .request_time_ms = 1,
    };
    check_eval(c, &self, in);
    wisp_cond_free(c);
    free(in);
    return 0;
}
