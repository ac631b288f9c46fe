/* SPDX-License-Identifier: Apache-2.0 */
/* The predefined roles: parsed once from the built-in JSON into a role index
 * and, per role, a permission set, so a grant check is two hash lookups. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "wisp/iam.h"

extern const char wisp__roles_json[];
extern const char wisp__roles_json_end[];

static pthread_once_t once = PTHREAD_ONCE_INIT;
static json_t *roles_array;  /* [role objects] */
static json_t *roles_by_name; /* name -> role object */
static json_t *perms_by_role; /* name -> {permission: true} */
static json_t *all_perms;     /* {permission: true} */

static void load(void)
{
    json_error_t jerr;
    json_t *root = json_loadb(wisp__roles_json, (size_t)(wisp__roles_json_end - wisp__roles_json),
                              JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /* The file is ours and is checked by the unit tests; a bad one is a
         * build defect, not a runtime condition. */
        fprintf(stderr, "wisp: data/roles.json: %s (line %d)\n", jerr.text, jerr.line);
        abort();
    }
    roles_array = json_incref(json_object_get(root, "roles"));
    json_decref(root);
    roles_by_name = json_object();
    perms_by_role = json_object();
    all_perms = json_object();
    size_t i, j;
    json_t *role, *perm;
    json_array_foreach(roles_array, i, role) {
        const char *name = json_string_value(json_object_get(role, "name"));
        json_t *set = json_object();
        json_array_foreach(json_object_get(role, "includedPermissions"), j, perm) {
            json_object_set(set, json_string_value(perm), json_true());
            json_object_set(all_perms, json_string_value(perm), json_true());
        }
        json_object_set(roles_by_name, name, role);
        json_object_set_new(perms_by_role, name, set);
    }
}

const json_t *wisp_iam_role_get(const char *role)
{
    pthread_once(&once, load);
    return json_object_get(roles_by_name, role);
}

const json_t *wisp_iam_roles_all(void)
{
    pthread_once(&once, load);
    return roles_array;
}

int wisp_iam_role_grants(const char *role, const char *permission)
{
    pthread_once(&once, load);
    return json_object_get(json_object_get(perms_by_role, role), permission) != NULL;
}

int wisp_iam_permission_known(const char *permission)
{
    pthread_once(&once, load);
    return json_object_get(all_perms, permission) != NULL;
}
