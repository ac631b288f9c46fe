/* SPDX-License-Identifier: Apache-2.0 */
/* IAM Conditions: the CEL subset Google documents for allow-policy condition
 * expressions (ref/WIRE.md §4.4). An expression is parsed and type-checked
 * once, into an immutable tree that any number of threads may evaluate at
 * once; evaluation allocates nothing and does no I/O. Tags, principal.*,
 * request.auth/api/destination attributes and named IANA time zones are not
 * supported: docs/internals/CONDITIONS.md lists what is and is not. */
#ifndef WISP_COND_H
#define WISP_COND_H

#include <stddef.h>
#include <stdint.h>
#include "wisp/err.h"

/* Hard limits, checked by wisp_cond_parse so that parsing and evaluation
 * are bounded in CPU and stack whatever a client sends (ref/SECURITY.md
 * D43). 2048 bytes is Google's limit for condition expressions, 12 logical
 * operators its documented per-expression limit; 32 levels of nesting is
 * ours and bounds the evaluator's recursion. */
#define WISP_COND_MAX_LEN 2048
#define WISP_COND_MAX_DEPTH 32
#define WISP_COND_MAX_LOGICAL 12

/* A parsed expression. Immutable once wisp_cond_parse returns it, so it may
 * be shared between threads without locking. */
struct wisp_cond;

/* Parses and type-checks expr (a NUL-terminated CEL expression).
 * On success returns WISP_OK and *out owns a new expression; caller frees
 * with wisp_cond_free(). On failure returns WISP_EINVAL, sets *out to NULL
 * and writes one printable line to msg (if msg and msglen allow) naming the
 * position and the problem, e.g.
 *   "at line 1, column 1: unknown attribute 'resource.nme'".
 * Failures: syntax errors, unknown attributes/functions/methods, wrong
 * arity or argument types, type errors (string == timestamp), a non-boolean
 * result, an invalid extract() template, an out-of-range integer literal,
 * and the limits above. A malformed timestamp("..."), date("..."),
 * duration("...") literal or an unsupported time zone is NOT a parse error:
 * CEL reports those when evaluating, and so does wisp (WISP_COND_ERROR).
 * Never blocks; does not log. */
enum wisp_err wisp_cond_parse(const char *expr, struct wisp_cond **out, char *msg, size_t msglen);

/* Frees c. NULL is a no-op. */
void wisp_cond_free(struct wisp_cond *c);

/* request_time_ms value meaning "no request time": the epoch itself is
 * never the time of a real request, so a zero-initialised environment
 * leaves the time absent (and time conditions fail closed) rather than
 * silently evaluating against 1970. */
#define WISP_COND_TIME_ABSENT 0

/* The attributes of one access check. Strings are borrowed for the call
 * only; NULL means "absent for this resource", which makes any
 * sub-expression reading the attribute an evaluation error. */
struct wisp_cond_env {
    const char *resource_name;    /* relative name, "projects/_/buckets/b"; or NULL */
    const char *resource_type;    /* "storage.googleapis.com/Bucket"; or NULL */
    const char *resource_service; /* "storage.googleapis.com"; or NULL */
    int64_t request_time_ms;      /* unix ms; WISP_COND_TIME_ABSENT if unknown */
};

enum wisp_cond_result {
    WISP_COND_FALSE = 0,
    WISP_COND_TRUE = 1,
    /* The expression could not be evaluated (absent attribute, bad
     * timestamp literal, unknown time zone, overflow). Callers must treat
     * this as "does not grant". */
    WISP_COND_ERROR = 2,
};

/* Evaluates c against env. Errors combine as in CEL: false && error is
 * false, true || error is true, and otherwise an error anywhere in the
 * deciding path makes the result WISP_COND_ERROR. c or env NULL gives
 * WISP_COND_ERROR. Allocates nothing, takes no locks, touches no global
 * state: safe to call from any number of threads on one shared c. */
enum wisp_cond_result wisp_cond_eval(const struct wisp_cond *c, const struct wisp_cond_env *env);

/* "false", "true" or "error" (static strings), for logs and tests. */
const char *wisp_cond_result_name(enum wisp_cond_result r);

#endif
