/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the metadata path canonicaliser and the surface behind it: a
 * canonical path has no empty, "." or ".." segment and no byte that could
 * be decoded again, canonicalising it again changes nothing, and the
 * surface answers any path without crashing, never with kube-env. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/metadata.h"

static void tok(void *ctx, const struct wisp_md_caller *caller, const struct wisp_md_tokreq *r,
                struct wisp_md_tok *out)
{
    (void)ctx;
    (void)caller;
    (void)r;
    out->value = strdup("ya29.x");
    out->exp = 2000000000LL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char raw[2048], out[1024], again[1024];
    if (size >= sizeof(raw))
        return 0;
    memcpy(raw, data, size);
    raw[size] = '\0';
    /* path?query, as lib/http splits it */
    char *q = strchr(raw, '?');
    const char *query = "";
    if (q) {
        *q = '\0';
        query = q + 1;
    }
    if (wisp_md_path_canon(raw, out, sizeof(out)) == WISP_OK) {
        if (out[0] != '/' || strstr(out, "//") || strstr(out, "/./") || strstr(out, "/../") ||
            strchr(out, '%') || strchr(out, '?') || strchr(out, '\\'))
            abort();
        size_t n = strlen(out);
        if ((n >= 2 && strcmp(out + n - 2, "/.") == 0) || (n >= 3 && strcmp(out + n - 3, "/..") == 0))
            abort();
        if (wisp_md_path_canon(out, again, sizeof(again)) != WISP_OK || strcmp(out, again) != 0)
            abort();
    }
    static struct wisp_md_pod pod = {.ns = "ns", .name = "p", .uid = "u", .ksa = "app",
                                     .ip = "10.0.0.5", .gsa = "g@p.iam.gserviceaccount.com"};
    static const struct wisp_md_site site = {
        .project_id = "p", .project_number = "1", .cluster_name = "c",
        .cluster_location = "us-central1", .cluster_uid = "uid", .hostname = "h",
        .instance_id = "2", .zone = "us-central1-a"};
    struct wisp_md_caller caller = {WISP_MD_POD, &pod, "10.0.0.5"};
    struct wisp_md_req req = {.method = "GET", .host = "metadata", .path = raw, .query = query,
                              .flavor = "Google", .now = 1700000000LL};
    if (raw[0] != '/')
        return 0;
    struct wisp_md_resp resp;
    wisp_md_answer(&site, &req, &caller, tok, NULL, &resp);
    if (resp.status == 200 && resp.body && strstr(resp.body, "kube-env"))
        abort();
    wisp_md_resp_free(&resp);
    return 0;
}
