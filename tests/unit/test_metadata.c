/* SPDX-License-Identifier: Apache-2.0 */
/* The metadata server's pure parts: the surface (every path, concealment,
 * 301s, the 403/405 rules, Host, X-Forwarded-For, ETag and wait_for_change,
 * recursive answers), the path canonicaliser, the pod table (IP index,
 * duplicates, hostNetwork, watch events, reclamation) and the token cache
 * (single-flight, expiry, refresh, invalidation, STS down) with a fake
 * upstream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "wisp/metadata.h"

#define NOW 1700000000LL
#define PRINCIPAL                                                                                  \
    "principal://iam.googleapis.com/projects/123456789012/locations/global/"                      \
    "workloadIdentityPools/proj-1.svc.id.goog/subject/ns/ns-a/sa/app"

static const char *const extra[] = {"127.0.0.1", NULL};
static const struct wisp_md_site site = {
    .project_id = "proj-1",
    .project_number = "123456789012",
    .cluster_name = "std",
    .cluster_location = "us-central1",
    .cluster_uid = "c-uid-1",
    .hostname = "gke-std-default-pool-1.us-central1-a.c.proj-1.internal",
    .instance_id = "4242424242",
    .zone = "us-central1-a",
    .extra_hosts = extra,
};

static struct wisp_md_pod pod_plain = {.ns = "ns-a", .name = "p", .uid = "u1", .ksa = "app",
                                       .ip = "10.0.0.5"};
static struct wisp_md_pod pod_gsa = {.ns = "ns-a", .name = "q", .uid = "u2", .ksa = "linked",
                                     .ip = "10.0.0.6", .gsa = "gsa@proj-1.iam.gserviceaccount.com"};
static struct wisp_md_pod pod_principal = {.ns = "ns-a", .name = "r", .uid = "u3", .ksa = "app",
                                           .ip = "10.0.0.7", .principal_as_email = 1};

static struct wisp_md_tokreq last_tr;
static char last_aud[600], last_scopes[600];
static int tok_calls;

static void fake_tok(void *ctx, const struct wisp_md_caller *caller, const struct wisp_md_tokreq *r,
                     struct wisp_md_tok *out)
{
    (void)ctx;
    (void)caller;
    tok_calls++;
    last_tr = *r;
    snprintf(last_aud, sizeof(last_aud), "%s", r->audience ? r->audience : "");
    snprintf(last_scopes, sizeof(last_scopes), "%s", r->scopes ? r->scopes : "");
    out->value = strdup(r->kind == 'a' ? "ya29.tok" : "hdr.claims.sig");
    out->exp = NOW + 1234;
}

struct ask {
    const char *method, *host, *flavor;
    int xff, repeated;
    const struct wisp_md_caller *caller;
    const struct wisp_md_site *site;
};

static struct wisp_md_caller who_plain = {WISP_MD_POD, &pod_plain, "10.0.0.5"};

static void ask_full(const struct ask *a, const char *path, const char *query,
                     struct wisp_md_resp *r)
{
    struct wisp_md_req req = {
        .method = a->method ? a->method : "GET",
        .host = a->host ? a->host : "metadata.google.internal",
        .path = path,
        .query = query ? query : "",
        .flavor = a->flavor,
        .flavor_repeated = a->repeated,
        .forwarded = a->xff,
        .now = NOW,
    };
    wisp_md_answer(a->site ? a->site : &site, &req, a->caller ? a->caller : &who_plain, fake_tok,
                   NULL, r);
}

/* GET with the header, as a pod would send it. */
static void get(const char *path, const char *query, const struct wisp_md_caller *c,
                struct wisp_md_resp *r)
{
    struct ask a = {.flavor = "Google", .caller = c};
    ask_full(&a, path, query, r);
}

#define V1 "/computeMetadata/v1/"

static void expect(const char *path, const char *query, const struct wisp_md_caller *c,
                   int status, const char *body)
{
    struct wisp_md_resp r;
    get(path, query, c, &r);
    if (r.status != status || (body && strcmp(r.body, body) != 0))
        fail_msg("%s?%s: got %d '%s', want %d '%s'", path, query ? query : "", r.status, r.body,
                 status, body ? body : "*");
    if (status < 300 || status == 404)
        assert_true(r.flavor);
    wisp_md_resp_free(&r);
}

static void root_and_header_rules(void **state)
{
    (void)state;
    struct wisp_md_resp r;
    get("/", "", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "computeMetadata/\n");
    assert_string_equal(r.ctype, "application/text");
    assert_true(r.flavor);
    assert_int_equal(strlen(r.etag), 16);
    wisp_md_resp_free(&r);

    const char *flavors[] = {NULL, "google", "Google ", "True"};
    for (size_t i = 0; i < 4; i++) {
        struct ask a = {.flavor = flavors[i]};
        ask_full(&a, "/", "", &r);
        assert_int_equal(r.status, 403);
        assert_string_equal(r.body, WISP_MD_FLAVOR_403);
        assert_int_equal(r.len, 94);
        assert_false(r.flavor);
        assert_true(r.nosniff);
        assert_string_equal(r.ctype, "text/plain; charset=utf-8");
        wisp_md_resp_free(&r);
        ask_full(&a, V1 "instance/service-accounts/default/token", "", &r);
        assert_int_equal(r.status, 403);
        wisp_md_resp_free(&r);
    }

    struct ask xff = {.flavor = "Google", .xff = 1};
    ask_full(&xff, V1 "project/project-id", "", &r);
    assert_int_equal(r.status, 403);
    assert_null(strstr(r.body, "proj-1"));
    wisp_md_resp_free(&r);

    /* Metadata-Flavor: Google twice, or Google then x: one field only. */
    struct ask twice = {.flavor = "Google", .repeated = 1};
    ask_full(&twice, V1 "project/project-id", "", &r);
    assert_int_equal(r.status, 403);
    assert_null(strstr(r.body, "proj-1"));
    wisp_md_resp_free(&r);

    const char *bad_hosts[] = {"evil.example", "", "metadata.google.internal.evil", "10.0.0.1"};
    for (size_t i = 0; i < 4; i++) {
        struct ask a = {.flavor = "Google", .host = bad_hosts[i]};
        ask_full(&a, V1 "project/project-id", "", &r);
        assert_int_equal(r.status, 403);
        wisp_md_resp_free(&r);
    }
    const char *good_hosts[] = {"metadata.google.internal", "metadata.google.internal.",
                                "metadata", "169.254.169.254", "127.0.0.1"};
    for (size_t i = 0; i < 5; i++) {
        struct ask a = {.flavor = "Google", .host = good_hosts[i]};
        ask_full(&a, V1 "project/project-id", "", &r);
        assert_int_equal(r.status, 200);
        wisp_md_resp_free(&r);
    }

    const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "TRACE", "HEAD"};
    for (size_t i = 0; i < 6; i++) {
        struct ask a = {.flavor = "Google", .method = methods[i]};
        ask_full(&a, V1 "instance/service-accounts/default/token", "", &r);
        assert_int_equal(r.status, 405);
        assert_true(r.allow_get);
        wisp_md_resp_free(&r);
    }
}

static void paths_and_concealment(void **state)
{
    (void)state;
    expect("/computeMetadata/", "", NULL, 200, "v1/\n");
    expect(V1, "", NULL, 200, "instance/\nproject/\nuniverse/\n");
    expect(V1 "project/project-id", "", NULL, 200, "proj-1");
    expect(V1 "project/numeric-project-id", "", NULL, 200, "123456789012");
    expect(V1 "project/numeric-project-id", "alt=json", NULL, 200, "123456789012");
    expect(V1 "project/project-id", "alt=json", NULL, 200, "\"proj-1\"");
    expect(V1 "project/", "", NULL, 200, "numeric-project-id\nproject-id\n");
    expect(V1 "instance/", "", NULL, 200,
           "attributes/\nhostname\nid\nservice-accounts/\nzone\n");
    expect(V1 "instance/hostname", "", NULL, 200,
           "gke-std-default-pool-1.us-central1-a.c.proj-1.internal");
    expect(V1 "instance/id", "", NULL, 200, "4242424242");
    expect(V1 "instance/zone", "", NULL, 200, "projects/123456789012/zones/us-central1-a");
    expect(V1 "instance/attributes/", "", NULL, 200,
           "cluster-location\ncluster-name\ncluster-uid\n");
    expect(V1 "instance/attributes/cluster-name", "", NULL, 200, "std");
    expect(V1 "instance/attributes/cluster-location", "", NULL, 200, "us-central1");
    expect(V1 "instance/attributes/cluster-uid", "", NULL, 200, "c-uid-1");
    expect(V1 "universe/universe-domain", "", NULL, 200, "googleapis.com");
    /* Concealed: never there, whatever the spelling. */
    const char *hidden[] = {V1 "instance/attributes/kube-env", V1 "instance/attributes/kube-labels",
                            V1 "instance/attributes/kubelet-config", V1 "instance/name",
                            V1 "project/attributes/", V1 "project/attributes/ssh-keys",
                            V1 "instance/network-interfaces/", V1 "instance/disks/",
                            V1 "instance/maintenance-event", V1 "instance/preempted",
                            "/0.1/meta-data/", "/computeMetadata/v1beta1/instance/",
                            V1 "instance/attributes/kube%2Denv", V1 "instance/attributes/KUBE-ENV",
                            V1 "instance/service-accounts/default/identity/",
                            V1 "instance/service-accounts/other@proj-1.iam.gserviceaccount.com/token",
                            V1 "instance/service-accounts/DEFAULT/token",
                            V1 "instance/hostname/", V1 "instance/service-accounts/default/token/",
                            V1 "instance/../project/project-id", V1 "project/./project-id",
                            V1 "project%2Fproject-id", V1 "project/project-id%00",
                            "/computeMetadata/v1/project/%zz", "/nope", "relative"};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
        expect(hidden[i], "", NULL, 404, NULL);
    /* Doubled slashes collapse; unreserved escapes decode once. */
    expect(V1 "project//project-id", "", NULL, 200, "proj-1");
    expect("//computeMetadata///v1/%70roject/project-id", "", NULL, 200, "proj-1");
    /* Unknown parameters and nonsense booleans are ignored. */
    expect(V1 "project/project-id", "foo=bar&recursive=xyz", NULL, 200, "proj-1");
}

static void redirects(void **state)
{
    (void)state;
    const char *dirs[] = {"/computeMetadata", "/computeMetadata/v1", V1 "instance",
                          V1 "instance/attributes", V1 "instance/service-accounts",
                          V1 "instance/service-accounts/default", V1 "project"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        struct wisp_md_resp r;
        get(dirs[i], "", NULL, &r);
        assert_int_equal(r.status, 301);
        char want[256];
        snprintf(want, sizeof(want), "%s/", dirs[i]);
        assert_string_equal(r.location, want);
        assert_true(r.flavor);
        wisp_md_resp_free(&r);
    }
    struct wisp_md_resp r;
    get(V1 "instance/service-accounts/default", "recursive=true", NULL, &r);
    assert_int_equal(r.status, 301);
    assert_string_equal(r.location, V1 "instance/service-accounts/default/?recursive=true");
    wisp_md_resp_free(&r);
}

static void accounts(void **state)
{
    (void)state;
    struct wisp_md_caller gsa = {WISP_MD_POD, &pod_gsa, "10.0.0.6"};
    struct wisp_md_caller principal = {WISP_MD_POD, &pod_principal, "10.0.0.7"};
    expect(V1 "instance/service-accounts/", "", NULL, 200, "default/\nproj-1.svc.id.goog/\n");
    expect(V1 "instance/service-accounts/default/email", "", NULL, 200, "proj-1.svc.id.goog");
    expect(V1 "instance/service-accounts/default/", "", NULL, 200, "aliases\nemail\nscopes\ntoken\n");
    expect(V1 "instance/service-accounts/default/aliases", "", NULL, 200, "default\n");
    expect(V1 "instance/service-accounts/default/scopes", "", NULL, 200,
           "https://www.googleapis.com/auth/cloud-platform\n");
    expect(V1 "instance/service-accounts/default/scopes", "alt=json", NULL, 200,
           "[\"https://www.googleapis.com/auth/cloud-platform\"]");
    expect(V1 "instance/service-accounts/proj-1.svc.id.goog/email", "", NULL, 200,
           "proj-1.svc.id.goog");
    const char *info = "{\"aliases\":[\"default\"],\"email\":\"gsa@proj-1.iam.gserviceaccount.com\","
                       "\"scopes\":[\"https://www.googleapis.com/auth/cloud-platform\"]}";
    expect(V1 "instance/service-accounts/default/", "recursive=true", &gsa, 200, info);
    expect(V1 "instance/service-accounts/gsa@proj-1.iam.gserviceaccount.com/", "recursive=true",
           &gsa, 200, info);
    expect(V1 "instance/service-accounts/", "", &gsa, 200,
           "default/\ngsa@proj-1.iam.gserviceaccount.com/\n");
    expect(V1 "instance/service-accounts/default/email", "", &principal, 200, PRINCIPAL);
    expect(V1 "instance/service-accounts/", "", &principal, 200, "default/\n" PRINCIPAL "/\n");
    /* Python 2.39 asks under the email it was given, slashes and all. */
    expect(V1 "instance/service-accounts/" PRINCIPAL "/email", "", &principal, 200, PRINCIPAL);
    expect(V1 "instance/service-accounts/proj-1.svc.id.goog/email", "", &principal, 404, NULL);
    struct wisp_md_resp r;
    get(V1 "instance/service-accounts/", "recursive=true", &gsa, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    assert_non_null(strstr(r.body, "\"default\":{"));
    assert_non_null(strstr(r.body, "\"gsa@proj-1.iam.gserviceaccount.com\":{"));
    assert_null(strstr(r.body, "token"));
    wisp_md_resp_free(&r);
}

static void tokens(void **state)
{
    (void)state;
    struct wisp_md_caller gsa = {WISP_MD_POD, &pod_gsa, "10.0.0.6"};
    tok_calls = 0;
    expect(V1 "instance/service-accounts/default/token", "", NULL, 200,
           "{\"access_token\":\"ya29.tok\",\"expires_in\":1234,\"token_type\":\"Bearer\"}");
    assert_int_equal(last_tr.kind, 'a');
    assert_string_equal(last_scopes, "https://www.googleapis.com/auth/cloud-platform");
    expect(V1 "instance/service-accounts/proj-1.svc.id.goog/token",
           "scopes=https://www.googleapis.com/auth/userinfo.email,https://www.googleapis.com/auth/"
           "cloud-platform,https://www.googleapis.com/auth/userinfo.email",
           NULL, 200, NULL);
    assert_string_equal(last_scopes, "https://www.googleapis.com/auth/cloud-platform,"
                                     "https://www.googleapis.com/auth/userinfo.email");
    expect(V1 "instance/service-accounts/default/token", "recursive=true", NULL, 200, NULL);
    expect(V1 "instance/service-accounts/default/token", "scopes=a%0d%0aSet-Cookie:x", NULL, 400,
           NULL);
    expect(V1 "instance/service-accounts/default/token", "scopes=x%26grant_type%3Dy", NULL, 400,
           NULL);
    struct wisp_md_resp r;
    get(V1 "instance/service-accounts/default/token", "", NULL, &r);
    assert_string_equal(r.etag, ""); /* no ETag on tokens */
    wisp_md_resp_free(&r);
    /* Identity tokens. */
    expect(V1 "instance/service-accounts/default/identity", "", &gsa, 400,
           "non-empty audience parameter required\n");
    expect(V1 "instance/service-accounts/default/identity", "audience=", &gsa, 400, NULL);
    expect(V1 "instance/service-accounts/default/identity",
           "audience=https://x.example&format=full&licenses=FALSE", &gsa, 200, "hdr.claims.sig");
    assert_int_equal(last_tr.kind, 'i');
    assert_true(last_tr.full);
    assert_string_equal(last_aud, "https://x.example");
    expect(V1 "instance/service-accounts/default/identity", "audience=a%0d%0ab", &gsa, 400, NULL);
    get(V1 "instance/service-accounts/default/identity", "audience=x", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "Your Kubernetes service account (ns-a/app) is not annotated "
                                   "with a target Google service account"));
    wisp_md_resp_free(&r);
}

static void recursive_alt_etag(void **state)
{
    (void)state;
    struct wisp_md_resp r, r2;
    get(V1, "recursive=true", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    assert_non_null(strstr(r.body, "\"numericProjectId\":123456789012"));
    assert_non_null(strstr(r.body, "\"projectId\":\"proj-1\""));
    assert_non_null(strstr(r.body, "\"serviceAccounts\":{"));
    assert_non_null(strstr(r.body, "\"cluster-name\":\"std\""));
    assert_non_null(strstr(r.body, "\"universeDomain\":\"googleapis.com\""));
    assert_null(strstr(r.body, "token"));
    get(V1, "recursive=true&alt=json", NULL, &r2);
    assert_string_equal(r.etag, r2.etag);
    assert_string_equal(r.body, r2.body);
    wisp_md_resp_free(&r2);
    get(V1, "recursive=true&alt=text", NULL, &r2);
    assert_string_equal(r.etag, r2.etag);
    assert_non_null(strstr(r2.body, "project/project-id proj-1\n"));
    wisp_md_resp_free(&r2);
    get(V1, "", NULL, &r2);
    assert_string_not_equal(r.etag, r2.etag); /* recursive and not differ */
    wisp_md_resp_free(&r2);
    wisp_md_resp_free(&r);

    expect(V1 "project/", "alt=json", NULL, 400, NULL);
    expect(V1 "project/", "alt=yaml&recursive=true", NULL, 400, NULL);
    expect(V1 "project/", "wait_for_change=true", NULL, 400, NULL);

    /* ETag: the same for alt=json and text, and what wait_for_change keys on. */
    get(V1 "project/project-id", "", NULL, &r);
    get(V1 "project/project-id", "alt=json", NULL, &r2);
    assert_string_equal(r.etag, r2.etag);
    assert_false(r.wait);
    wisp_md_resp_free(&r2);
    get(V1 "project/project-id", "wait_for_change=true&last_etag=0000000000000000", NULL, &r2);
    assert_int_equal(r2.status, 200);
    assert_false(r2.wait); /* the value differs from what the client had: at once */
    wisp_md_resp_free(&r2);
    char q[128];
    snprintf(q, sizeof(q), "wait_for_change=true&last_etag=%s&timeout_sec=5", r.etag);
    get(V1 "project/project-id", q, NULL, &r2);
    assert_true(r2.wait);
    assert_int_equal(r2.wait_sec, 5);
    assert_string_equal(r2.body, "proj-1");
    wisp_md_resp_free(&r2);
    get(V1 "project/project-id", "wait_for_change=true&timeout_sec=100000", NULL, &r2);
    assert_true(r2.wait);
    assert_true(r2.wait_sec <= 60);
    wisp_md_resp_free(&r2);
    wisp_md_resp_free(&r);
}

static void unidentified_callers(void **state)
{
    (void)state;
    enum wisp_md_who whos[] = {WISP_MD_UNKNOWN, WISP_MD_AMBIGUOUS, WISP_MD_ENDED};
    for (size_t i = 0; i < 3; i++) {
        struct wisp_md_caller c = {whos[i], NULL, "10.0.0.9"};
        tok_calls = 0;
        expect(V1 "project/numeric-project-id", "", &c, 200, "123456789012");
        expect(V1 "instance/", "", &c, 200, NULL);
        expect(V1 "instance/service-accounts/", "", &c, 503, NULL);
        expect(V1 "instance/service-accounts/default/token", "", &c, 503, NULL);
        expect(V1 "instance/service-accounts/default/email", "", &c, 503, NULL);
        expect(V1 "instance/service-accounts/default/identity", "audience=x", &c, 503, NULL);
        expect(V1 "instance/", "recursive=true", &c, 503, NULL);
        expect(V1, "recursive=true", &c, 503, NULL);
        assert_int_equal(tok_calls, 0);
    }
    /* A GCE_METADATA node serves its own account to every caller. */
    struct wisp_md_site gce = site;
    gce.gce_mode = 1;
    gce.node_sa = "node@proj-1.iam.gserviceaccount.com";
    struct wisp_md_caller node = {WISP_MD_NODE, NULL, "10.0.0.9"};
    struct ask a = {.flavor = "Google", .caller = &node, .site = &gce};
    struct wisp_md_resp r;
    ask_full(&a, V1 "instance/service-accounts/default/email", "", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "node@proj-1.iam.gserviceaccount.com");
    wisp_md_resp_free(&r);
    ask_full(&a, V1 "instance/service-accounts/node@proj-1.iam.gserviceaccount.com/token", "", &r);
    assert_int_equal(r.status, 200);
    wisp_md_resp_free(&r);
}

static void canonical_forms(void **state)
{
    (void)state;
    char out[64];
    struct {
        const char *in, *want;
    } ok[] = {{"/", "/"}, {"//", "/"}, {"/a", "/a"}, {"/a/", "/a/"}, {"//a//b//", "/a/b/"},
              {"/%61", "/a"}, {"/a.b/..c", "/a.b/..c"}, {"/a~b", "/a~b"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(wisp_md_path_canon(ok[i].in, out, sizeof(out)), WISP_OK);
        assert_string_equal(out, ok[i].want);
    }
    const char *bad[] = {"", "a", "/.", "/..", "/a/../b", "/a/./", "/%2e%2e/", "/%2F", "/%00",
                         "/%", "/%4", "/%G1", "/a b", "/a%20b", "/a%25", "/a\\b", "/a%5c",
                         "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                         "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (wisp_md_path_canon(bad[i], out, sizeof(out)) == WISP_OK)
            fail_msg("accepted %s as %s", bad[i], out);
    }
    char s[256];
    assert_int_equal(wisp_md_scopes_canon(NULL, s, sizeof(s)), WISP_OK);
    assert_string_equal(s, WISP_MD_DEFAULT_SCOPE);
    assert_int_equal(wisp_md_scopes_canon("b a,,b", s, sizeof(s)), WISP_OK);
    assert_string_equal(s, "a,b");
    assert_int_equal(wisp_md_scopes_canon(" , ", s, sizeof(s)), WISP_OK);
    assert_string_equal(s, WISP_MD_DEFAULT_SCOPE);
    assert_int_not_equal(wisp_md_scopes_canon("a&b", s, sizeof(s)), WISP_OK);
    assert_int_not_equal(wisp_md_scopes_canon("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", s, sizeof(s)),
                         WISP_OK);
}

/* ---- pods ---------------------------------------------------------------- */

static char gone_log[512], ident_log[512];

static void on_gone(void *ctx, const char *uid)
{
    (void)ctx;
    strncat(gone_log, uid, sizeof(gone_log) - strlen(gone_log) - 2);
    strcat(gone_log, " ");
}

static void on_identity(void *ctx, const struct wisp_md_pod *p)
{
    (void)ctx;
    char b[128];
    snprintf(b, sizeof(b), "%s=%s ", p->uid, p->gsa ? p->gsa : "-");
    strncat(ident_log, b, sizeof(ident_log) - strlen(ident_log) - 1);
}

static json_t *podj(const char *name, const char *uid, const char *ip, const char *phase, int hostnet)
{
    json_t *o = json_pack("{s:{s:s, s:s, s:s, s:s}, s:{s:s, s:b}, s:{s:s}}", "metadata",
                          "namespace", "ns-a", "name", name, "uid", uid, "resourceVersion", "7",
                          "spec", "serviceAccountName", "app", "hostNetwork", hostnet, "status",
                          "phase", phase);
    if (ip)
        json_object_set_new(json_object_get(o, "status"), "podIP", json_string(ip));
    return o;
}

static enum wisp_err event(struct wisp_md_pods *p, char kind, const char *type, json_t *obj)
{
    json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", obj);
    char *line = json_dumps(ev, JSON_COMPACT);
    char *rv = NULL;
    enum wisp_err err = wisp_md_pods_event(p, kind, line, strlen(line), &rv);
    free(rv);
    free(line);
    json_decref(ev);
    return err;
}

static void pod_table(void **state)
{
    (void)state;
    struct wisp_md_pods_hooks hooks = {on_gone, on_identity, NULL};
    gone_log[0] = ident_log[0] = '\0';
    struct wisp_md_pods *p = wisp_md_pods_new(2, &hooks);
    json_t *sas = json_pack("{s:{s:s}, s:[{s:{s:s, s:s, s:{s:s}}}]}", "metadata",
                            "resourceVersion", "5", "items", "metadata", "namespace", "ns-a",
                            "name", "app", "annotations", "iam.gke.io/gcp-service-account",
                            "g@p.iam.gserviceaccount.com");
    char *rv = NULL;
    assert_int_equal(wisp_md_pods_list(p, 's', sas, &rv), WISP_OK);
    assert_string_equal(rv, "5");
    free(rv);
    json_decref(sas);
    json_t *list = json_pack("{s:{s:s}, s:[o, o, o, o]}", "metadata", "resourceVersion", "9",
                             "items", podj("a", "ua", "10.0.0.5", "Running", 0),
                             podj("b", "ub", NULL, "Pending", 0),
                             podj("h", "uh", "192.168.0.2", "Running", 1),
                             podj("s", "us", "10.0.0.9", "Succeeded", 0));
    assert_int_equal(wisp_md_pods_list(p, 'p', list, NULL), WISP_OK);
    json_decref(list);
    /* Prefetch is due at creation, before the pod has an address. */
    assert_string_equal(ident_log, "ua=g@p.iam.gserviceaccount.com ub=g@p.iam.gserviceaccount.com ");

    const struct wisp_md_snap *s = wisp_md_pods_enter(p, 0);
    const struct wisp_md_pod *pod;
    assert_int_equal(wisp_md_snap_find(s, "10.0.0.5", &pod), WISP_MD_POD);
    assert_string_equal(pod->uid, "ua");
    assert_string_equal(pod->gsa, "g@p.iam.gserviceaccount.com");
    assert_int_equal(wisp_md_snap_find(s, "192.168.0.2", &pod), WISP_MD_UNKNOWN); /* hostNetwork */
    assert_int_equal(wisp_md_snap_find(s, "10.0.0.9", &pod), WISP_MD_ENDED);
    assert_int_equal(wisp_md_snap_find(s, "10.0.0.1", &pod), WISP_MD_UNKNOWN);
    uint64_t gen = wisp_md_snap_gen(s);

    /* b gets a's address while a is still there: nobody is served. The old
     * snapshot stays valid for the reader inside. */
    assert_int_equal(event(p, 'p', "MODIFIED", podj("b", "ub", "10.0.0.5", "Running", 0)),
                     WISP_OK);
    assert_int_equal(wisp_md_snap_find(s, "10.0.0.5", &pod), WISP_MD_POD);
    const struct wisp_md_snap *s2 = wisp_md_pods_current(p);
    assert_true(wisp_md_snap_gen(s2) > gen);
    assert_int_equal(wisp_md_snap_find(s2, "10.0.0.5", &pod), WISP_MD_AMBIGUOUS);
    wisp_md_pods_leave(p, 0);
    wisp_md_pods_reclaim(p);

    /* a goes: b has the address alone. */
    assert_int_equal(event(p, 'p', "DELETED", podj("a", "ua", "10.0.0.5", "Running", 0)), WISP_OK);
    assert_non_null(strstr(gone_log, "ua "));
    s = wisp_md_pods_enter(p, 1);
    assert_int_equal(wisp_md_snap_find(s, "10.0.0.5", &pod), WISP_MD_POD);
    assert_string_equal(pod->uid, "ub");
    wisp_md_pods_leave(p, 1);

    /* The annotation changes: the hook hears of the new GSA. */
    ident_log[0] = '\0';
    assert_int_equal(event(p, 's', "MODIFIED",
                           json_pack("{s:{s:s, s:s, s:{s:s}}}", "metadata", "namespace", "ns-a",
                                     "name", "app", "annotations",
                                     "iam.gke.io/gcp-service-account", "h@p.iam.gserviceaccount.com")),
                     WISP_OK);
    assert_string_equal(ident_log, "ub=h@p.iam.gserviceaccount.com ");
    assert_int_equal(event(p, 's', "DELETED",
                           json_pack("{s:{s:s, s:s}}", "metadata", "namespace", "ns-a", "name", "app")),
                     WISP_OK);
    s = wisp_md_pods_enter(p, 0);
    assert_int_equal(wisp_md_snap_find(s, "10.0.0.5", &pod), WISP_MD_POD);
    assert_null(pod->gsa);
    wisp_md_pods_leave(p, 0);

    /* A pod that finishes is gone for the cache. */
    gone_log[0] = '\0';
    assert_int_equal(event(p, 'p', "MODIFIED", podj("b", "ub", "10.0.0.5", "Failed", 0)), WISP_OK);
    assert_string_equal(gone_log, "ub ");

    /* Watch plumbing: 410 asks for a re-list; garbage is refused. */
    assert_int_equal(event(p, 'p', "ERROR", json_pack("{s:s, s:i}", "kind", "Status", "code", 410)),
                     WISP_EGONE);
    assert_int_equal(event(p, 'p', "BOOKMARK",
                           json_pack("{s:{s:s}}", "metadata", "resourceVersion", "99")),
                     WISP_OK);
    assert_int_equal(wisp_md_pods_event(p, 'p', "nope", 4, NULL), WISP_EINVAL);
    wisp_md_pods_free(p);
}

/* ---- cache ---------------------------------------------------------------- */

static atomic_llong clock_now;
static atomic_int fetches;
static atomic_int fail_upstream;
static atomic_int fetch_delay_ms;
static long long lifetime = 3600;

static long long fake_now(void *ctx)
{
    (void)ctx;
    return atomic_load(&clock_now);
}

static void fake_fetch(void *ctx, const struct wisp_md_key *k, struct wisp_md_tok *out)
{
    (void)ctx;
    int n = atomic_fetch_add(&fetches, 1) + 1;
    if (atomic_load(&fetch_delay_ms))
        usleep((useconds_t)atomic_load(&fetch_delay_ms) * 1000);
    if (atomic_load(&fail_upstream)) {
        out->status = 503;
        snprintf(out->msg, sizeof(out->msg), "sts is down");
        return;
    }
    char buf[128];
    snprintf(buf, sizeof(buf), "tok-%s-%s-%d", k->uid, k->gsa, n);
    out->value = strdup(buf);
    out->exp = atomic_load(&clock_now) + lifetime;
}

static struct wisp_md_cache *cache_new(void)
{
    struct wisp_md_cache_config cfg = {.fetch = fake_fetch, .now = fake_now,
                                       .refresh_before = 600, .retry_min = 5, .retry_max = 60,
                                       .min_remaining = 10, .wait_ms = 5000};
    atomic_store(&clock_now, NOW);
    atomic_store(&fetches, 0);
    atomic_store(&fail_upstream, 0);
    atomic_store(&fetch_delay_ms, 0);
    return wisp_md_cache_new(&cfg);
}

static const struct wisp_md_key key_a = {.uid = "ua", .ns = "ns-a", .pod = "a", .ksa = "app",
                                         .gsa = "", .quota = "", .kind = 'a',
                                         .what = WISP_MD_DEFAULT_SCOPE, .keep = 1};

struct racer {
    struct wisp_md_cache *c;
    char value[128];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct wisp_md_cache_view *v = wisp_md_cache_view_new(r->c);
    struct wisp_md_tok t;
    wisp_md_cache_get(r->c, v, &key_a, &t);
    snprintf(r->value, sizeof(r->value), "%s", t.value ? t.value : "");
    free(t.value);
    wisp_md_cache_view_free(v);
    return NULL;
}

static void cache_single_flight(void **state)
{
    (void)state;
    struct wisp_md_cache *c = cache_new();
    atomic_store(&fetch_delay_ms, 200);
    pthread_t th[8];
    struct racer rs[8];
    for (int i = 0; i < 8; i++) {
        rs[i].c = c;
        pthread_create(&th[i], NULL, race, &rs[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&fetches), 1);
    for (int i = 0; i < 8; i++)
        assert_string_equal(rs[i].value, "tok-ua--1");
    wisp_md_cache_free(c);
}

static void cache_expiry_refresh_outage(void **state)
{
    (void)state;
    struct wisp_md_cache *c = cache_new();
    struct wisp_md_cache_view *v = wisp_md_cache_view_new(c);
    struct wisp_md_tok t;
    /* Prefetched at pod creation: the first request is a hit. */
    wisp_md_cache_prefetch(c, &key_a);
    assert_int_equal(wisp_md_cache_run_due(c), 1);
    wisp_md_cache_get(c, v, &key_a, &t);
    assert_string_equal(t.value, "tok-ua--1");
    assert_int_equal(t.exp - NOW, 3600);
    free(t.value);
    assert_int_equal(atomic_load(&fetches), 1);
    /* Later the same token, with the true remaining time. */
    atomic_store(&clock_now, NOW + 1000);
    wisp_md_cache_get(c, v, &key_a, &t);
    assert_string_equal(t.value, "tok-ua--1");
    assert_int_equal(t.exp - atomic_load(&clock_now), 2600);
    free(t.value);
    assert_int_equal(wisp_md_cache_run_due(c), 0);
    /* Due (600 s ahead of expiry): refreshed in the background. */
    atomic_store(&clock_now, NOW + 3000);
    assert_int_equal(wisp_md_cache_run_due(c), 1);
    wisp_md_cache_get(c, v, &key_a, &t);
    assert_string_equal(t.value, "tok-ua--2");
    free(t.value);
    /* STS goes down: the cached token is served, with back-off retries. */
    atomic_store(&fail_upstream, 1);
    atomic_store(&clock_now, NOW + 3000 + 3000);
    assert_int_equal(wisp_md_cache_run_due(c), 1);
    assert_int_equal(wisp_md_cache_run_due(c), 0); /* backing off */
    wisp_md_cache_get(c, v, &key_a, &t);
    assert_string_equal(t.value, "tok-ua--2");
    assert_int_equal(t.exp - atomic_load(&clock_now), 600);
    free(t.value);
    /* ... but never past expiry (nor within min_remaining of it). */
    atomic_store(&clock_now, NOW + 3000 + 3600 - 5);
    wisp_md_cache_get(c, v, &key_a, &t);
    assert_null(t.value);
    assert_int_equal(t.status, 503);
    assert_string_equal(t.msg, "sts is down");
    /* STS back: served again. */
    atomic_store(&fail_upstream, 0);
    wisp_md_cache_get(c, v, &key_a, &t);
    assert_non_null(t.value);
    free(t.value);
    wisp_md_cache_view_free(v);
    wisp_md_cache_free(c);
}

static void cache_invalidation(void **state)
{
    (void)state;
    struct wisp_md_cache *c = cache_new();
    struct wisp_md_cache_view *v = wisp_md_cache_view_new(c);
    struct wisp_md_tok t;
    struct wisp_md_key linked = key_a;
    linked.gsa = "g@p.iam.gserviceaccount.com";
    struct wisp_md_key other = key_a;
    other.uid = "ub";
    wisp_md_cache_get(c, v, &linked, &t);
    free(t.value);
    wisp_md_cache_get(c, v, &other, &t);
    free(t.value);
    assert_int_equal(wisp_md_cache_size(c), 2);
    /* The annotation is removed: entries for the old GSA go. */
    wisp_md_cache_forget(c, "ua", "", "");
    assert_int_equal(wisp_md_cache_size(c), 1);
    wisp_md_cache_get(c, v, &key_a, &t);
    assert_string_equal(t.value, "tok-ua--3");
    free(t.value);
    /* The view's copy of the old GSA's token is dropped too. */
    wisp_md_cache_forget(c, "ua", NULL, NULL);
    int before = atomic_load(&fetches);
    wisp_md_cache_get(c, v, &linked, &t);
    assert_int_equal(atomic_load(&fetches), before + 1);
    free(t.value);
    /* The other pod's entry survives. */
    before = atomic_load(&fetches);
    wisp_md_cache_get(c, v, &other, &t);
    assert_string_equal(t.value, "tok-ub--2");
    assert_int_equal(atomic_load(&fetches), before);
    free(t.value);
    /* A failed miss is not cached as a token. */
    atomic_store(&fail_upstream, 1);
    struct wisp_md_key third = key_a;
    third.uid = "uc";
    third.keep = 0;
    wisp_md_cache_get(c, v, &third, &t);
    assert_null(t.value);
    assert_int_equal(t.status, 503);
    /* An entry nobody uses is let go at its refresh time. */
    atomic_store(&fail_upstream, 0);
    struct wisp_md_key idt = key_a;
    idt.kind = 'i';
    idt.what = "full|aud";
    idt.keep = 0;
    wisp_md_cache_get(c, v, &idt, &t);
    free(t.value);
    size_t n = wisp_md_cache_size(c);
    atomic_store(&clock_now, NOW + 3590);
    wisp_md_cache_run_due(c);
    atomic_store(&clock_now, NOW + 3590 + 3000);
    wisp_md_cache_run_due(c);
    assert_true(wisp_md_cache_size(c) < n);
    wisp_md_cache_view_free(v);
    wisp_md_cache_free(c);
}

/* A request's headers as a list, for wisp_md_req_headers. */
struct hdrs {
    const char *const *kv; /* name, value, ..., NULL */
};

static size_t hdr_get(void *ctx, const char *name, const char **first)
{
    const struct hdrs *h = ctx;
    size_t n = 0;
    *first = NULL;
    for (size_t i = 0; h->kv[i]; i += 2) {
        if (strcasecmp(h->kv[i], name) == 0 && n++ == 0)
            *first = h->kv[i + 1];
    }
    return n;
}

static void header_rules(void **state)
{
    (void)state;
    struct wisp_md_req req;
    const char *one[] = {"Metadata-Flavor", "Google", NULL};
    wisp_md_req_headers(&req, hdr_get, &(struct hdrs){one});
    assert_string_equal(req.flavor, "Google");
    assert_false(req.flavor_repeated);
    assert_false(req.forwarded);
    const char *two[] = {"Metadata-Flavor", "Google", "metadata-flavor", "x", NULL};
    wisp_md_req_headers(&req, hdr_get, &(struct hdrs){two});
    assert_true(req.flavor_repeated);
    const char *const fwd[] = {"X-Forwarded-For", "Forwarded", "X-Real-IP", "Client-IP"};
    for (size_t i = 0; i < 4; i++) {
        const char *kv[] = {"Metadata-Flavor", "Google", fwd[i], "10.0.0.6", NULL};
        wisp_md_req_headers(&req, hdr_get, &(struct hdrs){kv});
        assert_true(req.forwarded);
    }
    const char *legacy[] = {"X-Google-Metadata-Request", "True", NULL};
    wisp_md_req_headers(&req, hdr_get, &(struct hdrs){legacy});
    assert_null(req.flavor);
}

static void rate_limit(void **state)
{
    (void)state;
    const uint64_t s = 1000000000ULL, t0 = 5 * s;
    /* 10 per second, bursts of 3: three at once, then one per 100 ms. */
    struct wisp_md_limiter *l = wisp_md_limiter_new(10, 3);
    for (int i = 0; i < 3; i++)
        assert_true(wisp_md_limiter_take(l, "10.0.0.5", t0));
    assert_false(wisp_md_limiter_take(l, "10.0.0.5", t0));
    assert_true(wisp_md_limiter_take(l, "10.0.0.6", t0)); /* another address: its own bucket */
    assert_false(wisp_md_limiter_take(l, "10.0.0.5", t0 + s / 20));
    assert_true(wisp_md_limiter_take(l, "10.0.0.5", t0 + s / 10));
    assert_false(wisp_md_limiter_take(l, "10.0.0.5", t0 + s / 10));
    /* A reading older than the last one never finds extra room. */
    assert_false(wisp_md_limiter_take(l, "10.0.0.5", t0));
    /* Idle long enough, the bucket is full again, and no fuller. */
    for (int i = 0; i < 3; i++)
        assert_true(wisp_md_limiter_take(l, "10.0.0.5", t0 + 100 * s));
    assert_false(wisp_md_limiter_take(l, "10.0.0.5", t0 + 100 * s));
    /* Many addresses each get their own bucket. */
    char ip[32];
    for (int i = 0; i < 300; i++) {
        snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250);
        assert_true(wisp_md_limiter_take(l, ip, t0));
    }
    wisp_md_limiter_free(l);
    assert_null(wisp_md_limiter_new(0, 5));
    assert_true(wisp_md_limiter_take(NULL, "10.0.0.5", t0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(root_and_header_rules),
        cmocka_unit_test(paths_and_concealment),
        cmocka_unit_test(redirects),
        cmocka_unit_test(accounts),
        cmocka_unit_test(tokens),
        cmocka_unit_test(recursive_alt_etag),
        cmocka_unit_test(unidentified_callers),
        cmocka_unit_test(canonical_forms),
        cmocka_unit_test(pod_table),
        cmocka_unit_test(cache_single_flight),
        cmocka_unit_test(cache_expiry_refresh_outage),
        cmocka_unit_test(cache_invalidation),
        cmocka_unit_test(header_rules),
        cmocka_unit_test(rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
