/* SPDX-License-Identifier: Apache-2.0 */
/* IAM v1: which handler a request goes to. Service accounts
 * (/v1/projects/P/serviceAccounts…) are in iam_sa.c, their keys
 * (…/serviceAccounts/ID/keys…) in iam_keys.c; predefined and custom
 * roles (/v1/roles…, /v1/projects/P/roles…) and the testable permissions
 * (/v1/permissions:queryTestablePermissions) in iam_roles.c. */
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/api.h"
#include "iam_int.h"
#include "../wispd.h"

#define MAX_PATH 2048

void wispd_iam(struct wisp_http_req *req, const char *path)
{
    if (strlen(path) > MAX_PATH) {
        wisp_api_error(req, 400, NULL, "The request path is too long.");
        return;
    }
    if (strcmp(path, "/v1/roles") == 0 || strncmp(path, "/v1/roles/", 10) == 0) {
        wispd_iam_predefined_roles(req, path + 9);
        return;
    }
    if (strcmp(path, "/v1/permissions:queryTestablePermissions") == 0) {
        if (strcmp(req->method, "POST") == 0)
            wispd_iam_testable_permissions(req);
        else
            wisp_api_error(req, 405, NULL, "Method %s is not allowed on %s.", req->method, path);
        return;
    }
    if (strncmp(path, "/v1/projects/", 13) == 0) {
        const char *p = path + 13;
        size_t plen = strcspn(p, "/");
        const char *rest = p + plen;
        char *project = plen ? wispd_iam_path_decode(p, plen) : NULL;
        if (!project) {
            wisp_api_error(req, 404, NULL, "Unknown IAM method: %.200s", path);
            return;
        }
        if (strncmp(rest, "/serviceAccounts/", 17) == 0 && wispd_iam_is_keys_path(rest + 17))
            wispd_iam_keys(req, project, rest + 17);
        else if (strncmp(rest, "/serviceAccounts", 16) == 0 && (!rest[16] || rest[16] == '/'))
            wispd_iam_sa(req, project, rest + 16);
        else if (strncmp(rest, "/roles", 6) == 0 && (!rest[6] || rest[6] == '/'))
            wispd_iam_project_roles(req, project, rest + 6);
        else
            wisp_api_error(req, 404, NULL, "Unknown IAM method: %.200s", path);
        free(project);
        return;
    }
    wisp_api_error(req, 404, NULL, "Unknown IAM method: %.200s", path);
}
