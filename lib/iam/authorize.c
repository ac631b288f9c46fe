/* SPDX-License-Identifier: Apache-2.0 */
/* The authorization decision. A caller holds a permission on a resource if
 * some binding in the resource's policy or an ancestor's names a role that
 * grants it and a member that matches the caller, and the binding's
 * condition (if any) evaluates to true. A condition that is false, cannot
 * be evaluated (an attribute the request lacks) or fails to parse does not
 * grant: errors deny. */
#include <stdio.h>
#include <string.h>
#include "wisp/iam.h"

static int condition_true(const json_t *cond, const struct wisp_cond_env *env)
{
    const char *expr = json_string_value(json_object_get(cond, "expression"));
    struct wisp_cond *c = NULL;
    char msg[128];
    if (!env || !expr || wisp_cond_parse(expr, &c, msg, sizeof(msg)) != WISP_OK)
        return 0;
    enum wisp_cond_result r = wisp_cond_eval(c, env);
    wisp_cond_free(c);
    return r == WISP_COND_TRUE;
}

static int role_grants(const char *role, const char *permission)
{
    /* Custom roles live in the store and are resolved by the caller into
     * predefined-role form before evaluation; here only predefined ones. */
    return wisp_iam_role_grants(role, permission);
}

int wisp_authorize(const struct wisp_caller *caller, const char *permission,
                   const struct wisp_iam_target *target, char *why, size_t whylen)
{
    for (size_t p = 0; p < target->n_policies; p++) {
        const json_t *policy = target->policies[p];
        if (!policy)
            continue;
        size_t i, j;
        json_t *b, *m;
        json_array_foreach(json_object_get(policy, "bindings"), i, b) {
            const char *role = json_string_value(json_object_get(b, "role"));
            if (!role || !role_grants(role, permission))
                continue;
            const json_t *cond = json_object_get(b, "condition");
            if (cond && !condition_true(cond, target->env))
                continue;
            json_array_foreach(json_object_get(b, "members"), j, m) {
                struct wisp_member mem;
                char err[128];
                if (wisp_member_parse(json_string_value(m), &mem, err, sizeof(err)) != WISP_OK)
                    continue;
                int match = wisp_member_matches(&mem, caller);
                wisp_member_free(&mem);
                if (match) {
                    if (why)
                        snprintf(why, whylen, "granted by %s on policy #%zu of %s", role, p,
                                 target->resource);
                    return 1;
                }
            }
        }
    }
    if (why)
        snprintf(why, whylen, "no binding grants %s on %s", permission, target->resource);
    return 0;
}
