/* SPDX-License-Identifier: Apache-2.0 */
/* The pure parts of the IAM API: name syntax, path decoding, which policy
 * members the reverse index tracks, rewriting one member across a policy
 * (service-account deletion), and custom-role validation and rendering. No
 * store and no HTTP here, so tests/unit/test_iam_api.c compiles this file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/iam.h"
#include "wisp/member.h"
#include "iam_int.h"

int wispd_iam_account_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 6 || n > 30 || !(id[0] >= 'a' && id[0] <= 'z') || id[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

int wispd_iam_role_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 3 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int wispd_iam_all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
    }
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *wispd_iam_path_decode(const char *s, size_t n)
{
    char *out = wisp_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* The canonical spelling of member s if the index tracks it, else NULL
 * (caller frees). */
static char *tracked(const char *s)
{
    if (!s || (strncmp(s, "serviceAccount:", 15) != 0 &&
               strncmp(s, "deleted:serviceAccount:", 23) != 0))
        return NULL;
    struct wisp_member m;
    if (wisp_member_parse(s, &m, NULL, 0) != WISP_OK)
        return NULL;
    char *out = NULL;
    if (m.type == WISP_MEMBER_SERVICE_ACCOUNT ||
        (m.type == WISP_MEMBER_DELETED && m.deleted_of == WISP_MEMBER_SERVICE_ACCOUNT))
        out = wisp_xstrdup(m.canon);
    wisp_member_free(&m);
    return out;
}

json_t *wispd_iam_indexed_members(const json_t *policy)
{
    json_t *set = json_object();
    size_t i, j;
    json_t *b, *m;
    json_array_foreach(json_object_get(policy, "bindings"), i, b) {
        json_array_foreach(json_object_get(b, "members"), j, m) {
            char *canon = tracked(json_string_value(m));
            if (canon)
                json_object_set(set, canon, json_true());
            free(canon);
        }
    }
    return set;
}

/* Canonical form of s for comparison; s itself when it does not parse
 * (stored policies hold canonical members, so that is only defensive). */
static char *canon_or_copy(const char *s)
{
    char *c = NULL;
    if (wisp_member_canonicalize(s, &c, NULL, 0) != WISP_OK)
        c = wisp_xstrdup(s);
    return c;
}

json_t *wispd_iam_policy_replace_member(const json_t *policy, const char *from, const char *to,
                                        int *changed)
{
    json_t *out = json_deep_copy(policy);
    *changed = 0;
    size_t i, j, k;
    json_t *b, *m, *have;
    json_array_foreach(json_object_get(out, "bindings"), i, b) {
        json_t *members = json_object_get(b, "members");
        json_t *fresh = json_array();
        int hit = 0;
        json_array_foreach(members, j, m) {
            const char *s = json_string_value(m);
            if (!s)
                continue;
            char *c = canon_or_copy(s);
            const char *use = s;
            if (strcmp(c, from) == 0) {
                use = to;
                hit = 1;
            }
            int dup = 0;
            json_array_foreach(fresh, k, have) dup |= strcmp(json_string_value(have), use) == 0;
            if (!dup)
                json_array_append_new(fresh, json_string(use));
            free(c);
        }
        if (hit) {
            json_object_set_new(b, "members", fresh);
            *changed = 1;
        } else {
            json_decref(fresh);
        }
    }
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *wispd_iam_role_permissions(const json_t *perms, char *msg, size_t msglen)
{
    if (perms && !json_is_array(perms)) {
        snprintf(msg, msglen, "Invalid value at 'role.included_permissions'.");
        return NULL;
    }
    size_t n = json_array_size(perms);
    if (n > WISPD_ROLE_MAX_PERMISSIONS) {
        snprintf(msg, msglen, "A custom role can have at most %d permissions; the request has %zu.",
                 WISPD_ROLE_MAX_PERMISSIONS, n);
        return NULL;
    }
    const char **v = wisp_xcalloc(n ? n : 1, sizeof(*v));
    json_t *out = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *p = json_string_value(json_array_get(perms, i));
        if (!p || !wisp_iam_permission_known(p)) {
            snprintf(msg, msglen, "Permission %.128s is not valid.", p ? p : "(not a string)");
            goto out;
        }
        v[i] = p;
    }
    qsort(v, n, sizeof(*v), cmp_str);
    out = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
            json_array_append_new(out, json_string(v[i]));
    }
out:
    free(v);
    return out;
}

int wispd_iam_role_stage_valid(const char *stage)
{
    static const char *const stages[] = {"ALPHA", "BETA", "GA", "DEPRECATED", "DISABLED", "EAP",
                                         NULL};
    for (int i = 0; stages[i]; i++) {
        if (strcmp(stage, stages[i]) == 0)
            return 1;
    }
    return 0;
}

json_t *wispd_iam_known_permissions(void)
{
    json_t *set = json_object();
    size_t i, j;
    json_t *r, *p;
    json_array_foreach(wisp_iam_roles_all(), i, r) {
        json_array_foreach(json_object_get(r, "includedPermissions"), j, p) {
            if (json_is_string(p))
                json_object_set(set, json_string_value(p), json_true());
        }
    }
    size_t n = json_object_size(set), k = 0;
    const char **v = wisp_xcalloc(n ? n : 1, sizeof(*v));
    const char *key;
    json_t *val;
    json_object_foreach(set, key, val) v[k++] = key;
    qsort(v, n, sizeof(*v), cmp_str);
    json_t *out = json_array();
    for (k = 0; k < n; k++)
        json_array_append_new(out, json_string(v[k]));
    free(v);
    json_decref(set);
    return out;
}

json_t *wispd_iam_role_render(const json_t *stored, int64_t rev, int full)
{
    json_t *r = json_deep_copy(stored);
    json_object_del(r, "deleteTime");
    if (!json_is_true(json_object_get(r, "deleted")))
        json_object_del(r, "deleted");
    if (!full)
        json_object_del(r, "includedPermissions");
    if (rev > 0) {
        char *etag = wisp_iam_etag_make(rev);
        json_object_set_new(r, "etag", json_string(etag));
        free(etag);
    } else {
        json_object_set_new(r, "etag", json_string("AA=="));
    }
    return r;
}
