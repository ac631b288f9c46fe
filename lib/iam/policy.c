/* SPDX-License-Identifier: Apache-2.0 */
/* Allow policies: validation and normal form of what clients send, the
 * rendered form clients read back, and etags. The stored form is
 * {"bindings":[{"role","members":[canonical...],"condition"?}], "auditConfigs"?}. */
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/cond.h"
#include "wisp/iam.h"

char *wisp_iam_etag_make(int64_t rev)
{
    if (rev <= 0)
        return wisp_xstrdup(WISP_IAM_EMPTY_ETAG);
    unsigned char raw[8];
    for (int i = 7; i >= 0; i--) {
        raw[i] = (unsigned char)(rev & 0xff);
        rev >>= 8;
    }
    /* Google's etags are base64 of bytes that start with 0x07 ("BwX…");
     * ours carry the store revision, which a client must treat as opaque. */
    raw[0] = 0x07;
    return wisp_b64_encode(raw, sizeof(raw));
}

enum wisp_err wisp_iam_etag_parse(const char *etag, int64_t *rev_out)
{
    if (strcmp(etag, WISP_IAM_EMPTY_ETAG) == 0) {
        *rev_out = 0;
        return WISP_OK;
    }
    size_t n;
    unsigned char *raw = wisp_b64_decode(etag, &n);
    if (!raw || n != 8 || raw[0] != 0x07) {
        free(raw);
        return WISP_EINVAL;
    }
    int64_t rev = 0;
    for (size_t i = 1; i < 8; i++)
        rev = (rev << 8) | raw[i];
    free(raw);
    *rev_out = rev;
    return WISP_OK;
}

static int is_custom_role(const char *role)
{
    /* projects/P/roles/R or organizations/N/roles/R */
    const char *r = strstr(role, "/roles/");
    return r && r[7] && (strncmp(role, "projects/", 9) == 0 ||
                         strncmp(role, "organizations/", 14) == 0) && !strchr(r + 7, '/');
}

static const char *const condition_fields[] = {"title", "description", "expression", "location",
                                               NULL};

/* Checks one condition object; returns 0 and fills msg on error. */
static int condition_ok(const json_t *cond, const char *role, char *msg, size_t msglen)
{
    if (!json_is_object(cond)) {
        snprintf(msg, msglen, "Invalid condition for role '%s': not an object.", role);
        return 0;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)cond, key, val) {
        int known = 0;
        for (int i = 0; condition_fields[i]; i++)
            known |= strcmp(key, condition_fields[i]) == 0;
        if (!known || !json_is_string(val)) {
            snprintf(msg, msglen, "Invalid condition field '%.64s' for role '%s'.", key, role);
            return 0;
        }
    }
    const char *title = json_string_value(json_object_get(cond, "title"));
    const char *expr = json_string_value(json_object_get(cond, "expression"));
    if (!title || !*title) {
        snprintf(msg, msglen, "Condition for role '%s' is missing a title.", role);
        return 0;
    }
    if (!expr || !*expr) {
        snprintf(msg, msglen, "Condition for role '%s' is missing an expression.", role);
        return 0;
    }
    if (strlen(title) > 100) {
        snprintf(msg, msglen, "Condition title for role '%s' is longer than 100 characters.",
                 role);
        return 0;
    }
    struct wisp_cond *parsed = NULL;
    char why[256];
    if (wisp_cond_parse(expr, &parsed, why, sizeof(why)) != WISP_OK) {
        snprintf(msg, msglen, "Invalid condition '%.64s' for role '%s': %s", title, role, why);
        return 0;
    }
    wisp_cond_free(parsed);
    if (strncmp(role, "roles/owner", 12) == 0 || strcmp(role, "roles/editor") == 0 ||
        strcmp(role, "roles/viewer") == 0) {
        snprintf(msg, msglen, "Conditions are not supported for the basic role '%s'.", role);
        return 0;
    }
    return 1;
}

/* Finds a binding in out with the same role and condition. */
static json_t *find_binding(json_t *bindings, const char *role, const json_t *cond)
{
    size_t i;
    json_t *b;
    json_array_foreach(bindings, i, b) {
        if (strcmp(json_string_value(json_object_get(b, "role")), role) != 0)
            continue;
        const json_t *c = json_object_get(b, "condition");
        if ((!c && !cond) || (c && cond && json_equal((json_t *)c, (json_t *)cond)))
            return b;
    }
    return NULL;
}

json_t *wisp_iam_policy_normalize(const json_t *in, char *msg, size_t msglen)
{
    json_t *version = json_object_get(in, "version");
    long long v = 0;
    if (version && !json_is_null(version)) {
        if (!json_is_integer(version)) {
            snprintf(msg, msglen, "Invalid value at 'policy.version' (TYPE_INT32).");
            return NULL;
        }
        v = json_integer_value(version);
    }
    if (v != 0 && v != 1 && v != 3) {
        snprintf(msg, msglen, "Invalid policy version %lld: valid versions are 0, 1 and 3.", v);
        return NULL;
    }
    json_t *out = json_object();
    json_t *bindings = json_array();
    json_object_set_new(out, "bindings", bindings);
    size_t i, j, n_members = 0;
    json_t *b, *m;
    json_array_foreach(json_object_get(in, "bindings"), i, b) {
        const char *role = json_string_value(json_object_get(b, "role"));
        const json_t *cond = json_object_get(b, "condition");
        if (cond && json_is_null(cond))
            cond = NULL;
        if (!role || !*role) {
            snprintf(msg, msglen, "A binding is missing its role.");
            goto fail;
        }
        if (!wisp_iam_role_get(role) && !is_custom_role(role)) {
            snprintf(msg, msglen, "Role %.128s is not supported for this resource.", role);
            goto fail;
        }
        if (cond) {
            if (v != 3) {
                snprintf(msg, msglen,
                         "Conditional role bindings require policy version 3; the request "
                         "sets version %lld.",
                         v);
                goto fail;
            }
            if (!condition_ok(cond, role, msg, msglen))
                goto fail;
        }
        json_t *members = json_object_get(b, "members");
        if (!json_is_array(members) || json_array_size(members) == 0) {
            snprintf(msg, msglen, "The binding for role '%.128s' has no members.", role);
            goto fail;
        }
        json_t *dst = find_binding(bindings, role, cond);
        if (!dst) {
            dst = json_pack("{s:s, s:[]}", "role", role, "members");
            if (cond)
                json_object_set_new(dst, "condition", json_deep_copy(cond));
            json_array_append_new(bindings, dst);
        }
        json_t *dst_members = json_object_get(dst, "members");
        json_array_foreach(members, j, m) {
            struct wisp_member mem;
            char err[256];
            const char *s = json_string_value(m);
            if (!s) {
                snprintf(msg, msglen, "Invalid member in the binding for role '%.128s'.", role);
                goto fail;
            }
            if (wisp_member_parse(s, &mem, err, sizeof(err)) != WISP_OK) {
                snprintf(msg, msglen, "%s", err);
                goto fail;
            }
            if (mem.type == WISP_MEMBER_DELETED) {
                /* Only Google writes deleted: members (when an account is
                 * deleted); a client may echo them back but not add new. */
            }
            int dup = 0;
            size_t k;
            json_t *have;
            json_array_foreach(dst_members, k, have) dup |= strcmp(json_string_value(have),
                                                                   mem.canon) == 0;
            if (!dup) {
                json_array_append_new(dst_members, json_string(mem.canon));
                n_members++;
            }
            wisp_member_free(&mem);
        }
    }
    if (n_members > WISP_IAM_MAX_MEMBERS) {
        snprintf(msg, msglen, "The policy has %zu principals; at most %d are allowed.", n_members,
                 WISP_IAM_MAX_MEMBERS);
        goto fail;
    }
    json_t *audit = json_object_get(in, "auditConfigs");
    if (json_is_array(audit) && json_array_size(audit))
        json_object_set(out, "auditConfigs", audit);
    return out;
fail:
    json_decref(out);
    return NULL;
}

static int has_conditions(const json_t *stored)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(stored, "bindings"), i, b) {
        if (json_object_get(b, "condition"))
            return 1;
    }
    return 0;
}

enum wisp_err wisp_iam_policy_render(const json_t *stored, int64_t rev, int requested_version,
                                     json_t **out, char *msg, size_t msglen)
{
    *out = NULL;
    if (requested_version != 0 && requested_version != 1 && requested_version != 3) {
        snprintf(msg, msglen, "Invalid requested policy version %d: valid versions are 0, 1 "
                              "and 3.", requested_version);
        return WISP_EINVAL;
    }
    int cond = stored && has_conditions(stored);
    if (cond && requested_version != 3) {
        snprintf(msg, msglen,
                 "The policy has conditional role bindings; request policy version 3 to read "
                 "it.");
        return WISP_EINVAL;
    }
    char *etag = wisp_iam_etag_make(rev);
    json_t *p = json_pack("{s:i, s:s}", "version", cond ? 3 : 1, "etag", etag);
    free(etag);
    if (stored) {
        json_t *b = json_object_get(stored, "bindings");
        if (json_array_size(b))
            json_object_set(p, "bindings", b);
        json_t *a = json_object_get(stored, "auditConfigs");
        if (a)
            json_object_set(p, "auditConfigs", a);
    }
    *out = p;
    return WISP_OK;
}
