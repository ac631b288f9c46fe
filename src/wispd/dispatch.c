/* SPDX-License-Identifier: Apache-2.0 */
/* Which Google API a request is for. Inside pods clients reach
 * SERVICE.googleapis.com, so the Host names the API. On the host every API
 * shares one loopback port and `wisp env` points each API's endpoint
 * override at https://127.0.0.1:PORT/SERVICE/, so the first path segment
 * names it; the rest of the path is the API's own. */
#include <string.h>
#include "wisp/api.h"
#include "wispd.h"

static const struct {
    const char *service;
    wispd_api_fn fn;
} apis[] = {
    {"cloudresourcemanager", wispd_crm},
    {"serviceusage", wispd_serviceusage},
    {"oauth2", wispd_oauth2},
    {"www", wispd_oauth2}, /* www.googleapis.com: certificates */
    {"iam", wispd_iam},
    {"artifactregistry", wispd_artifactregistry},
    {"iamcredentials", wispd_iamcredentials},
    {"sts", wispd_sts},
    {"container", wispd_container},
    {"policytroubleshooter", wispd_troubleshoot},
};

/* Cloud Storage's paths carry their own prefix (/storage/v1/…,
 * /upload/storage/v1/…, /resumable/upload/storage/v1/… as apitools starts
 * resumable uploads, /download/storage/v1/…) on storage.googleapis.com
 * and on the loopback port alike, so it always gets the whole path. */
static int is_storage_path(const char *path)
{
    return strncmp(path, "/storage/", 9) == 0 || strncmp(path, "/upload/storage/", 16) == 0 ||
           strncmp(path, "/resumable/upload/storage/", 26) == 0 ||
           strncmp(path, "/download/storage/", 18) == 0;
}

static wispd_api_fn find(const char *service, size_t len)
{
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
        if (strlen(apis[i].service) == len && strncmp(apis[i].service, service, len) == 0)
            return apis[i].fn;
    }
    return NULL;
}

void wispd_dispatch(struct wisp_http_req *req, void *ctx)
{
    (void)ctx;
    if (req->listener_tag) {
        wispd_kube(req);
        return;
    }
    const char *host = req->host;
    const char *path = req->path;
    static const char suffix[] = ".googleapis.com";
    size_t hl = strlen(host), sl = sizeof(suffix) - 1;
    int google_host = hl > sl && strcmp(host + hl - sl, suffix) == 0;
    if (strcmp(host, "storage.googleapis.com") == 0 || (!google_host && is_storage_path(path))) {
        wispd_storage(req, path);
        return;
    }
    if (strcmp(host, "accounts.google.com") == 0) {
        wispd_oauth2(req, path);
        return;
    }
    if (google_host) {
        wispd_api_fn fn = find(host, hl - sl);
        if (fn) {
            fn(req, path);
            return;
        }
    } else if (path[0] == '/') {
        const char *seg = path + 1;
        size_t len = strcspn(seg, "/");
        wispd_api_fn fn = find(seg, len);
        if (fn && seg[len] == '/') {
            fn(req, seg + len);
            return;
        }
        /* google-auth posts to the token_uri it was given, which `wisp env`
         * sets to https://127.0.0.1:PORT/token. */
        if (strcmp(path, "/token") == 0) {
            wispd_oauth2(req, path);
            return;
        }
    }
    wisp_api_error(req, 404, NULL, "No API is served at %.100s%.200s", host, path);
}
