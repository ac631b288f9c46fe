/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for IAM member parsing, canonicalisation and matching
 * (lib/iam/member.c, lib/iam/member_match.c). Tables first: every valid form
 * with its canonical spelling and parts, then inputs that must be refused
 * with a message quoting them, then a matching truth table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "wisp/member.h"

#define WI_PFX "iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/"
#define GKE_POOL "my-project.svc.id.goog"
#define GKE_PFX WI_PFX GKE_POOL
#define LONG_NS_63 "n123456789n123456789n123456789n123456789n123456789n123456789abc"
#define WF_PFX "iam.googleapis.com/locations/global/workforcePools/"
#define CLUSTER_URL(proj, name)                                                                    \
    "https://container.googleapis.com/v1/projects/" proj "/locations/us-central1/clusters/" name
#define KSA_UID "e6a8680e-5c1a-4b5e-9d0b-0123456789ab"

/* ------------------------------------------------------------------------ */
/* Valid forms. */

struct valid_case {
    const char *in;
    enum wisp_member_type type;
    const char *canon; /* NULL: the input is already canonical */
};

static const struct valid_case valid_cases[] = {
    {"user:alice@example.com", WISP_MEMBER_USER, NULL},
    {"user:Alice.Smith+iam@Example.COM", WISP_MEMBER_USER, "user:alice.smith+iam@example.com"},
    {"serviceAccount:my-sa@my-project.iam.gserviceaccount.com", WISP_MEMBER_SERVICE_ACCOUNT, NULL},
    {"serviceAccount:123456789012-compute@developer.gserviceaccount.com",
     WISP_MEMBER_SERVICE_ACCOUNT, NULL},
    {"serviceAccount:My-SA@My-Project.IAM.gserviceaccount.com", WISP_MEMBER_SERVICE_ACCOUNT,
     "serviceAccount:my-sa@my-project.iam.gserviceaccount.com"},
    {"group:admins@example.com", WISP_MEMBER_GROUP, NULL},
    {"domain:Example.com", WISP_MEMBER_DOMAIN, "domain:example.com"},
    {"allUsers", WISP_MEMBER_ALL_USERS, NULL},
    {"allAuthenticatedUsers", WISP_MEMBER_ALL_AUTHENTICATED_USERS, NULL},
    {"deleted:user:bob@example.com?uid=123456789012345678901", WISP_MEMBER_DELETED, NULL},
    {"deleted:serviceAccount:Old-SA@p-123456.iam.gserviceaccount.com?uid=1234", WISP_MEMBER_DELETED,
     "deleted:serviceAccount:old-sa@p-123456.iam.gserviceaccount.com?uid=1234"},
    {"deleted:group:team@example.com?uid=42", WISP_MEMBER_DELETED, NULL},
    {"deleted:principal://" WF_PFX "my-wf-pool/subject/alice@corp", WISP_MEMBER_DELETED, NULL},
    {"serviceAccount:" GKE_POOL "[default/my-ksa]", WISP_MEMBER_KSA_LEGACY, NULL},
    {"serviceAccount:" GKE_POOL "[team-a/reader.v1]", WISP_MEMBER_KSA_LEGACY, NULL},
    {"serviceAccount:p.svc.id.goog[ns1/ksa]", WISP_MEMBER_KSA_LEGACY, NULL},
    {"principal://" GKE_PFX "/subject/ns/default/sa/my-ksa", WISP_MEMBER_WI_SUBJECT, NULL},
    {"principal://" GKE_PFX "/subject/ns/team-a/sa/reader.v1", WISP_MEMBER_WI_SUBJECT, NULL},
    {"principal://" WI_PFX "github-pool/subject/repo:octo/app:ref:refs/heads/main",
     WISP_MEMBER_WI_SUBJECT, NULL},
    {"principal://" GKE_PFX "/kubernetes.serviceaccount.uid/" KSA_UID, WISP_MEMBER_WI_KSA_UID,
     NULL},
    {"principalSet://" GKE_PFX "/namespace/team-a", WISP_MEMBER_WI_SET_NAMESPACE, NULL},
    {"principalSet://" GKE_PFX "/kubernetes.cluster/" CLUSTER_URL("my-project", "prod"),
     WISP_MEMBER_WI_SET_CLUSTER, NULL},
    {"principalSet://" GKE_PFX "/*", WISP_MEMBER_WI_SET_POOL, NULL},
    {"principalSet://" WI_PFX "github-pool/*", WISP_MEMBER_WI_SET_POOL, NULL},
    {"principalSet://" WI_PFX "github-pool/group/eng-team", WISP_MEMBER_WI_SET_GROUP, NULL},
    {"principalSet://" WI_PFX "github-pool/attribute.repository/octo/app",
     WISP_MEMBER_WI_SET_ATTRIBUTE, NULL},
    {"principal://" WF_PFX "my-wf-pool/subject/Alice@Corp.example", WISP_MEMBER_WF_SUBJECT, NULL},
    {"principalSet://" WF_PFX "my-wf-pool/group/Admins", WISP_MEMBER_WF_SET_GROUP, NULL},
    {"principalSet://" WF_PFX "my-wf-pool/attribute.department/Engineering",
     WISP_MEMBER_WF_SET_ATTRIBUTE, NULL},
    {"principalSet://" WF_PFX "my-wf-pool/*", WISP_MEMBER_WF_SET_POOL, NULL},
    {"principalSet://cloudresourcemanager.googleapis.com/projects/123456789012/type/ServiceAccount",
     WISP_MEMBER_PROJECT_SA_SET, NULL},
    {"principalSet://cloudresourcemanager.googleapis.com/folders/987654/type/ServiceAccount",
     WISP_MEMBER_FOLDER_SA_SET, NULL},
    {"principalSet://cloudresourcemanager.googleapis.com/organizations/55555/type/ServiceAccount",
     WISP_MEMBER_ORG_SA_SET, NULL},
    {"principal://agents.global.org-123456789012.system.id.goog/resources/aiplatform/projects/"
     "123456789012/locations/us-central1/reasoningEngines/456",
     WISP_MEMBER_AGENT, NULL},
    {"principalSet://agents.global.org-123456789012.system.id.goog/*", WISP_MEMBER_AGENT_SET, NULL},
};

static void test_valid_forms_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
        const struct valid_case *vc = &valid_cases[i];
        const char *want = vc->canon ? vc->canon : vc->in;
        struct wisp_member m;
        char msg[512];
        enum wisp_err err = wisp_member_parse(vc->in, &m, msg, sizeof msg);
        if (err != WISP_OK)
            fail_msg("valid member rejected: %s -> %s", vc->in, msg);
        assert_string_equal(msg, "");
        if (m.type != vc->type)
            fail_msg("%s: type %s, want %s", vc->in, wisp_member_type_name(m.type),
                     wisp_member_type_name(vc->type));
        assert_string_equal(m.canon, want);

        /* parse(canon) == canon, with the same type and parts. */
        struct wisp_member again;
        assert_int_equal(wisp_member_parse(m.canon, &again, msg, sizeof msg), WISP_OK);
        assert_int_equal(again.type, m.type);
        assert_string_equal(again.canon, m.canon);
        assert_int_equal(again.deleted_of, m.deleted_of);
        wisp_member_free(&again);
        wisp_member_free(&m);
        assert_null(m.canon);
        assert_int_equal(m.type, WISP_MEMBER_NONE);
    }
}

/* Parses s, which must be valid, into *m. */
static void parse_ok(const char *s, struct wisp_member *m)
{
    char msg[512];
    if (wisp_member_parse(s, m, msg, sizeof msg) != WISP_OK)
        fail_msg("valid member rejected: %s -> %s", s, msg);
}

static void test_parts_google(void **state)
{
    (void)state;
    struct wisp_member m;
    parse_ok("user:Alice@Example.COM", &m);
    assert_string_equal(m.email, "alice@example.com");
    assert_null(m.pool);
    wisp_member_free(&m);

    parse_ok("domain:Sub.Example.com", &m);
    assert_string_equal(m.domain, "sub.example.com");
    assert_null(m.email);
    wisp_member_free(&m);

    parse_ok("deleted:serviceAccount:sa@p-123456.iam.gserviceaccount.com?uid=98765", &m);
    assert_int_equal(m.type, WISP_MEMBER_DELETED);
    assert_int_equal(m.deleted_of, WISP_MEMBER_SERVICE_ACCOUNT);
    assert_string_equal(m.email, "sa@p-123456.iam.gserviceaccount.com");
    assert_string_equal(m.uid, "98765");
    wisp_member_free(&m);

    parse_ok("deleted:principal://" WF_PFX "my-wf-pool/subject/alice", &m);
    assert_int_equal(m.deleted_of, WISP_MEMBER_WF_SUBJECT);
    assert_string_equal(m.pool, "my-wf-pool");
    assert_string_equal(m.subject, "alice");
    wisp_member_free(&m);

    parse_ok("principalSet://cloudresourcemanager.googleapis.com/projects/42/type/ServiceAccount",
             &m);
    assert_string_equal(m.project_number, "42");
    wisp_member_free(&m);
    parse_ok("principalSet://cloudresourcemanager.googleapis.com/folders/43/type/ServiceAccount",
             &m);
    assert_string_equal(m.folder_number, "43");
    assert_null(m.project_number);
    wisp_member_free(&m);
    parse_ok("principalSet://cloudresourcemanager.googleapis.com/organizations/44/type/"
             "ServiceAccount",
             &m);
    assert_string_equal(m.org_number, "44");
    wisp_member_free(&m);
}

static void test_parts_gke(void **state)
{
    (void)state;
    struct wisp_member m;
    parse_ok("serviceAccount:" GKE_POOL "[team-a/reader]", &m);
    assert_string_equal(m.pool, GKE_POOL);
    assert_string_equal(m.project_id, "my-project");
    assert_string_equal(m.ns, "team-a");
    assert_string_equal(m.ksa, "reader");
    assert_null(m.email);
    assert_null(m.project_number);
    wisp_member_free(&m);

    parse_ok("principal://" GKE_PFX "/subject/ns/team-a/sa/reader", &m);
    assert_string_equal(m.project_number, "123456789012");
    assert_string_equal(m.pool, GKE_POOL);
    assert_string_equal(m.project_id, "my-project");
    assert_string_equal(m.subject, "ns/team-a/sa/reader");
    assert_string_equal(m.ns, "team-a");
    assert_string_equal(m.ksa, "reader");
    wisp_member_free(&m);

    /* The seed's literal placeholders are accepted (IAM treats the subject
     * as text), kept as written, and can never match a real pod. */
    parse_ok("principal://" GKE_PFX "/subject/ns/NAMESPACE/sa/KSA_NAME", &m);
    assert_string_equal(m.ns, "NAMESPACE");
    assert_string_equal(m.canon, "principal://" GKE_PFX "/subject/ns/NAMESPACE/sa/KSA_NAME");
    wisp_member_free(&m);

    parse_ok("principal://" GKE_PFX "/kubernetes.serviceaccount.uid/" KSA_UID, &m);
    assert_string_equal(m.ksa_uid, KSA_UID);
    assert_null(m.ns);
    wisp_member_free(&m);

    parse_ok("principalSet://" GKE_PFX "/namespace/team-a", &m);
    assert_string_equal(m.ns, "team-a");
    assert_null(m.ksa);
    wisp_member_free(&m);

    parse_ok("principalSet://" GKE_PFX "/kubernetes.cluster/" CLUSTER_URL("my-project", "prod"),
             &m);
    assert_string_equal(m.cluster_url, CLUSTER_URL("my-project", "prod"));
    assert_string_equal(m.cluster_project, "my-project");
    assert_string_equal(m.cluster_location, "us-central1");
    assert_string_equal(m.cluster_name, "prod");
    wisp_member_free(&m);

    parse_ok("principalSet://" GKE_PFX "/*", &m);
    assert_string_equal(m.pool, GKE_POOL);
    assert_string_equal(m.project_number, "123456789012");
    wisp_member_free(&m);
}

/* A 253-byte KSA name (the DNS-1123 subdomain maximum) has both spellings;
 * one byte more has neither. */
static void test_long_ksa_both_spellings(void **state)
{
    (void)state;
    char ksa[260] = "";
    for (size_t i = 0; i < 4; i++) {
        size_t n = i < 3 ? 63 : 61;
        if (i)
            strcat(ksa, ".");
        memset(ksa + strlen(ksa), 'k', n); /* the rest of ksa is still zero */
    }
    assert_int_equal(strlen(ksa), 253);
    char legacy[400], principal[600];
    snprintf(legacy, sizeof legacy, "serviceAccount:" GKE_POOL "[%s/%s]", LONG_NS_63, ksa);
    snprintf(principal, sizeof principal, "principal://" GKE_PFX "/subject/ns/%s/sa/%s", LONG_NS_63,
             ksa);
    struct wisp_member m;
    parse_ok(legacy, &m);
    assert_string_equal(m.ksa, ksa);
    wisp_member_free(&m);
    parse_ok(principal, &m);
    assert_string_equal(m.ksa, ksa);
    wisp_member_free(&m);

    strcat(ksa, "k");
    char msg[1024];
    snprintf(legacy, sizeof legacy, "serviceAccount:" GKE_POOL "[%s/%s]", LONG_NS_63, ksa);
    snprintf(principal, sizeof principal, "principal://" GKE_PFX "/subject/ns/%s/sa/%s", LONG_NS_63,
             ksa);
    assert_int_equal(wisp_member_parse(legacy, &m, msg, sizeof msg), WISP_EINVAL);
    assert_non_null(strstr(msg, "longer than 253"));
    assert_int_equal(wisp_member_parse(principal, &m, msg, sizeof msg), WISP_EINVAL);
}

static void test_parts_generic_pools(void **state)
{
    (void)state;
    struct wisp_member m;
    parse_ok("principal://" WI_PFX "github-pool/subject/repo:octo/app:ref:refs/heads/main", &m);
    assert_string_equal(m.pool, "github-pool");
    assert_null(m.project_id);
    assert_string_equal(m.subject, "repo:octo/app:ref:refs/heads/main");
    assert_null(m.ns); /* not a GKE pool: the subject is opaque */
    wisp_member_free(&m);

    /* A generic pool's subject may look like a GKE one; it is still opaque. */
    parse_ok("principal://" WI_PFX "github-pool/subject/ns/a/sa/b", &m);
    assert_null(m.ns);
    assert_null(m.ksa);
    wisp_member_free(&m);

    parse_ok("principalSet://" WI_PFX "github-pool/attribute.repository/octo/app", &m);
    assert_string_equal(m.attr_name, "repository");
    assert_string_equal(m.attr_value, "octo/app");
    wisp_member_free(&m);

    parse_ok("principalSet://" WF_PFX "my-wf-pool/group/Admins", &m);
    assert_string_equal(m.pool, "my-wf-pool");
    assert_string_equal(m.group, "Admins");
    wisp_member_free(&m);

    parse_ok("principal://agents.global.org-1.system.id.goog/a/b", &m);
    assert_string_equal(m.trust_domain, "agents.global.org-1.system.id.goog");
    assert_string_equal(m.agent_path, "a/b");
    wisp_member_free(&m);
}

/* Case-insensitive values dedupe to one canonical spelling (D40). */
static void test_canonicalize_dedup(void **state)
{
    (void)state;
    const char *spellings[] = {"user:alice@example.com", "user:ALICE@example.com",
                               "user:Alice@Example.Com"};
    for (size_t i = 0; i < 3; i++) {
        char *canon = NULL;
        assert_int_equal(wisp_member_canonicalize(spellings[i], &canon, NULL, 0), WISP_OK);
        assert_string_equal(canon, "user:alice@example.com");
        free(canon);
    }
    char *canon = (char *)"sentinel";
    char msg[256];
    assert_int_equal(wisp_member_canonicalize("bogus", &canon, msg, sizeof msg), WISP_EINVAL);
    assert_null(canon);
    assert_string_equal(msg, "Invalid member 'bogus': missing member type (expected TYPE:VALUE, "
                             "'allUsers' or 'allAuthenticatedUsers')");
}

/* ------------------------------------------------------------------------ */
/* Invalid inputs. */

struct invalid_case {
    const char *in;
    const char *why;    /* a substring the message must contain */
    const char *quoted; /* NULL: the message quotes the input verbatim */
};

#define LONG_NS "a123456789b123456789c123456789d123456789e123456789f123456789abcd" /* 64 */
#define S10 "abcdefghij"
#define S130 S10 S10 S10 S10 S10 S10 S10 S10 S10 S10 S10 S10 S10

static const struct invalid_case invalid_cases[] = {
    /* Whole-string hygiene (D40). */
    {"", "member is empty", NULL},
    {" user:alice@example.com", "leading or trailing whitespace", NULL},
    {"user:alice@example.com ", "leading or trailing whitespace", NULL},
    {"user:alice@example.com\n", "leading or trailing whitespace", "user:alice@example.com\\x0a"},
    {"user:alice@exa\x01mple.com", "control byte 0x01", "user:alice@exa\\x01mple.com"},
    {"user:alice@example.com\x7f"
     "x",
     "control byte 0x7f", "user:alice@example.com\\x7fx"},
    {"user:alice smith@example.com", "space at offset 10", NULL},
    {"service\xd0\x90"
     "ccount:sa@p-123456.iam.gserviceaccount.com",
     "non-ASCII byte 0xd0", "service\\xd0\\x90ccount:sa@p-123456.iam.gserviceaccount.com"},
    {"user:alice@ex\xd0\xb0mple.com", "lookalike", "user:alice@ex\\xd0\\xb0mple.com"},
    {"user:alice\xef\xbc\xa0"
     "example.com",
     "non-ASCII", "user:alice\\xef\\xbc\\xa0example.com"},
    {"user:it's'me@example.com\r", "whitespace", "user:it\\'s\\'me@example.com\\x0d"},
    /* Types. */
    {"foo:bar", "unknown member type 'foo'", NULL},
    {"serviceaccount:sa@p-123456.iam.gserviceaccount.com", "did you mean 'serviceAccount'", NULL},
    {"User:alice@example.com", "did you mean 'user'", NULL},
    {"PrincipalSet://" GKE_PFX "/*", "did you mean 'principalSet'", NULL},
    {"allusers", "did you mean 'allUsers'", NULL},
    {"allUsers:x", "'allUsers' takes no value", NULL},
    {"alice@example.com", "missing member type", NULL},
    {":alice@example.com", "missing member type before ':'", NULL},
    /* Emails and domains. */
    {"user:", "empty email", NULL},
    {"user:alice", "no '@'", NULL},
    {"user:@example.com", "empty local part", NULL},
    {"user:alice@", "empty email domain", NULL},
    {"user:alice@b@example.com", "more than one '@'", NULL},
    {"user:alice..smith@example.com", "misplaced '.'", NULL},
    {"user:.alice@example.com", "misplaced '.'", NULL},
    {"user:alice@example..com", "empty label", NULL},
    {"user:alice@localhost", "not a fully qualified", NULL},
    {"user:alice@-example.com", "starts or ends with '-'", NULL},
    {"user:alice@10.0.0.1", "numeric label", NULL},
    {"user:alice@[10.0.0.1]", "contains '['", NULL},
    {"group:what?@example.com", "contains '?'", NULL},
    {"domain:example", "not a fully qualified", NULL},
    {"domain:example.com/x", "contains '/'", NULL},
    /* Legacy KSA spelling. */
    {"serviceAccount:" GKE_POOL "[default/]", "empty Kubernetes service account name", NULL},
    {"serviceAccount:" GKE_POOL "[/ksa]", "empty namespace", NULL},
    {"serviceAccount:" GKE_POOL "[default/ksa", "missing ']'", NULL},
    {"serviceAccount:" GKE_POOL "[default/ksa]x", "unexpected 'x'", NULL},
    {"serviceAccount:" GKE_POOL "[default]", "expected '[NAMESPACE/KSA]'", NULL},
    {"serviceAccount:" GKE_POOL "[default/a/b]", "DNS-1123 subdomain", NULL},
    {"serviceAccount:" GKE_POOL "[default/a..b]", "DNS-1123 subdomain", NULL},
    {"serviceAccount:my-project.example.com[default/ksa]", "not a GKE workload pool", NULL},
    {"serviceAccount:My-Project.svc.id.goog[default/ksa]", "not a project ID", NULL},
    {"serviceAccount:" GKE_POOL "[" LONG_NS "/ksa]", "longer than 63", NULL},
    {"serviceAccount:" GKE_POOL "[-ns/ksa]", "start and end", NULL},
    /* principal:// structure. */
    {"principal:" GKE_PFX "/subject/ns/a/sa/b", "expected '//'", NULL},
    {"principal://iam.googleapis.com/projects/abc/locations/global/workloadIdentityPools/" GKE_POOL
     "/subject/ns/a/sa/b",
     "not a decimal number", NULL},
    {"principal://iam.googleapis.com/projects/0123/locations/global/workloadIdentityPools/" GKE_POOL
     "/subject/ns/a/sa/b",
     "leading zero", NULL},
    {"principal://iam.googleapis.com/projects//locations/global/workloadIdentityPools/" GKE_POOL
     "/subject/ns/a/sa/b",
     "empty project number", NULL},
    {"principal://iam.googleapis.com/projects/123/locations/us-central1/"
     "workloadIdentityPools/" GKE_POOL "/subject/ns/a/sa/b",
     "expected '/locations/global/workloadIdentityPools/'", NULL},
    {"principal://iam.googleapis.com/projects/123/locations/global/workloadidentitypools/" GKE_POOL
     "/subject/ns/a/sa/b",
     "expected '/locations/global/workloadIdentityPools/'", NULL},
    {"principal://" WI_PFX "my.pool/subject/x", "neither a pool id", NULL},
    {"principal://" WI_PFX "gcp-pool/subject/x", "not a valid pool id", NULL},
    {"principal://" WI_PFX "abc/subject/x", "not a valid pool id", NULL},
    {"principal://" WI_PFX "..svc.id.goog/subject/ns/a/sa/b", "not a project ID", NULL},
    {"principal://" WI_PFX "/subject/ns/a/sa/b", "empty workload identity pool", NULL},
    {"principal://" GKE_PFX, "expected '/'", NULL},
    {"principal://" GKE_PFX "/", "unknown principal selector ''", NULL},
    {"principal://" GKE_PFX "/subject/ns/default/sa/ksa/extra", "too many segments", NULL},
    {"principal://" GKE_PFX "/subject/ns/default/ksa", "not 'ns/NAMESPACE/sa/KSA'", NULL},
    {"principal://" GKE_PFX "/subject/ns/../sa/ksa", "'.' or '..'", NULL},
    {"principal://" GKE_PFX "/subject/", "empty subject", NULL},
    {"principal://" WI_PFX "github-pool/subject/a/../b", "'.' or '..'", NULL},
    {"principal://" WI_PFX "github-pool/subject/a//b", "empty path segment", NULL},
    {"principal://" WI_PFX "github-pool/subject/a/", "empty path segment", NULL},
    {"principal://" WI_PFX "github-pool/subject/" S130, "longer than 127", NULL},
    {"principal://" GKE_PFX "/namespace/default", "use 'principalSet://'", NULL},
    {"principal://" GKE_PFX "/*", "use 'principalSet://'", NULL},
    {"principal://" GKE_PFX "/kubernetes.serviceaccount.uid/E6A8680E-5C1A-4B5E-9D0B-0123456789AB",
     "lowercase 8-4-4-4-12", NULL},
    {"principal://" GKE_PFX "/kubernetes.serviceaccount.uid/1234", "lowercase 8-4-4-4-12", NULL},
    {"principal://" WI_PFX "github-pool/kubernetes.serviceaccount.uid/" KSA_UID,
     "only to GKE pools", NULL},
    {"principalSet://" GKE_PFX "/subject/ns/default/sa/ksa", "use 'principal://'", NULL},
    {"principalSet://" GKE_PFX "/namespace/a/b", "DNS-1123 label", NULL},
    {"principalSet://" GKE_PFX "/group/admins", "GKE pools have no 'group' mapping", NULL},
    {"principalSet://" GKE_PFX "/attribute.x/y", "GKE pools have no 'attribute' mapping", NULL},
    {"principalSet://" WI_PFX "github-pool/namespace/default", "only to GKE pools", NULL},
    {"principalSet://" GKE_PFX "/*/", "unexpected '/'", NULL},
    {"principalSet://" GKE_PFX "/**", "unexpected '*'", NULL},
    {"principalSet://" GKE_PFX "/pods/x", "unknown principal set selector 'pods'", NULL},
    {"principalSet://" GKE_PFX
     "/kubernetes.cluster/http://container.googleapis.com/v1/projects/my-project/locations/"
     "us-central1/clusters/prod",
     "expected 'https://container.googleapis.com/v1/projects/'", NULL},
    {"principalSet://" GKE_PFX "/kubernetes.cluster/" CLUSTER_URL("my-project", "prod") "/",
     "unexpected '/'", NULL},
    {"principalSet://" GKE_PFX "/kubernetes.cluster/" CLUSTER_URL("my-project", "Prod"),
     "cluster name 'Prod'", NULL},
    {"principalSet://" GKE_PFX "/kubernetes.cluster/" CLUSTER_URL("My-Project", "prod"),
     "cluster project ID", NULL},
    {"principalSet://" WI_PFX "github-pool/attribute.Repo/x", "attribute name 'Repo'", NULL},
    {"principalSet://" WI_PFX "github-pool/attribute.repo", "expected '/VALUE'", NULL},
    {"principalSet://" WI_PFX "github-pool/attribute.repo/", "empty attribute value", NULL},
    {"principalSet://" WI_PFX "github-pool/group/", "empty group id", NULL},
    {"principal://" WF_PFX "wf/subject/x", "workforce pool 'wf'", NULL},
    {"principal://" WF_PFX "my-wf-pool/group/x", "use 'principalSet://'", NULL},
    {"principal://iam.googleapis.com/locations/europe/workforcePools/my-wf-pool/subject/x",
     "expected 'global/workforcePools/'", NULL},
    {"principal://iam.googleapis.com/organizations/1/x", "expected 'projects/NUMBER/", NULL},
    {"principal://IAM.googleapis.com/projects/1/locations/global/workloadIdentityPools/" GKE_POOL
     "/subject/ns/a/sa/b",
     "case-sensitive", NULL},
    {"principal://" GKE_POOL "/ns/default/sa/ksa", "is a GKE workload pool, not a host", NULL},
    {"principal://example.com/x", "unknown principal host 'example.com'", NULL},
    {"principalSet://agents.global.org-1.system.id.goog/x", "expected '*'", NULL},
    {"principalSet://cloudresourcemanager.googleapis.com/projects/123/type/serviceAccount",
     "expected '/type/ServiceAccount'", NULL},
    {"principalSet://cloudresourcemanager.googleapis.com/projects/123/type/ServiceAccount/",
     "unexpected '/'", NULL},
    {"principalSet://cloudresourcemanager.googleapis.com/billingAccounts/1/type/ServiceAccount",
     "expected 'projects', 'folders' or 'organizations'", NULL},
    {"principal://cloudresourcemanager.googleapis.com/projects/123/type/ServiceAccount",
     "use 'principalSet://'", NULL},
    /* Length limits and remaining selector errors. */
    {"principal://iam.googleapis.com/projects/12345678901234567890/locations/global/"
     "workloadIdentityPools/" GKE_POOL "/subject/ns/a/sa/b",
     "more than 19 digits", NULL},
    {"domain:" S130 "." S130 ".com", "longer than 253 bytes", NULL},
    {"user:alice@" LONG_NS ".com", "label longer than 63 bytes", NULL},
    {"user:" LONG_NS "a@example.com", "local part is longer than 64", NULL},
    {"principal://" GKE_PFX "/subject/sa/ksa/ns/default", "not 'ns/NAMESPACE/sa/KSA'", NULL},
    {"principalSet://" GKE_PFX "/kubernetes.cluster/https://container.googleapis.com/v1/"
     "projects/my-project/locations/US-central1/clusters/prod",
     "cluster location", NULL},
    {"principalSet://" WI_PFX "github-pool/kubernetes.cluster/" CLUSTER_URL("my-project", "prod"),
     "only to GKE pools", NULL},
    {"principal://" WF_PFX "my-wf-pool/user/x", "unknown workforce principal selector 'user'",
     NULL},
    {"principalSet://" WF_PFX "my-wf-pool/subject/x", "use 'principal://'", NULL},
    {"principalSet://" WF_PFX "my-wf-pool/namespace/x", "unknown workforce principal set", NULL},
    {"principal://Agents.global.org-1.system.id.goog/x", "must be lowercase", NULL},
    {"principal://agents..id.goog/x", "empty label", NULL},
    {"principal://agents.global.org-1.system.id.goog", "expected '/'", NULL},
    {"principal://agents.global.org-1.system.id.goog/", "empty agent path", NULL},
    {"deleted:user", "expected ':' after 'deleted:user'", NULL},
    /* deleted: */
    {"deleted:user:bob@example.com", "'?uid=NUMBER'", NULL},
    {"deleted:user:bob@example.com?uid=", "empty deleted member uid", NULL},
    {"deleted:user:bob@example.com?uid=abc", "not a decimal number", NULL},
    {"deleted:user:bob@example.com?uid=1&x=2", "not a decimal number", NULL},
    {"deleted:domain:example.com", "unknown deleted member type 'domain'", NULL},
    {"deleted:deleted:user:bob@example.com?uid=1", "unknown deleted member type 'deleted'", NULL},
    {"deleted:allUsers", "unknown deleted member type 'allUsers'", NULL},
    {"deleted:principal://" GKE_PFX "/subject/ns/a/sa/b", "only workforce pool subjects", NULL},
    {"deleted:serviceAccount:" GKE_POOL "[default/ksa]?uid=1", "not an email address", NULL},
};

static void check_invalid(const struct invalid_case *ic)
{
    struct wisp_member m;
    char msg[512];
    memset(&m, 0xA5, sizeof m); /* the parser must zero it on failure */
    enum wisp_err err = wisp_member_parse(ic->in, &m, msg, sizeof msg);
    if (err != WISP_EINVAL)
        fail_msg("accepted invalid member '%s' (canon %s)", ic->in, m.canon ? m.canon : "?");
    assert_int_equal(m.type, WISP_MEMBER_NONE);
    assert_null(m.canon);
    assert_null(m.email);
    assert_null(m.pool);

    char want_prefix[600];
    snprintf(want_prefix, sizeof want_prefix,
             "Invalid member '%s': ", ic->quoted ? ic->quoted : ic->in);
    if (strncmp(msg, want_prefix, strlen(want_prefix)) != 0)
        fail_msg("message for '%s' does not quote it: %s", ic->in, msg);
    if (!strstr(msg, ic->why))
        fail_msg("message for '%s' lacks '%s': %s", ic->in, ic->why, msg);
    /* One printable line, whatever the input held. */
    for (const char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            fail_msg("message for '%s' has byte 0x%02x", ic->in, (unsigned char)*p);
    }
}

static void test_invalid_table(void **state)
{
    (void)state;
    size_t n = sizeof invalid_cases / sizeof invalid_cases[0];
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++)
        check_invalid(&invalid_cases[i]);
}

static void test_invalid_edges(void **state)
{
    (void)state;
    struct wisp_member m;
    char msg[512];

    /* Over-long input: refused after at most MAX+1 bytes, message truncated. */
    size_t big = WISP_MEMBER_MAX_LEN + 100;
    char *s = malloc(big + 1);
    assert_non_null(s);
    memcpy(s, "user:", 5);
    memset(s + 5, 'a', big - 5);
    s[big] = '\0';
    assert_int_equal(wisp_member_parse(s, &m, msg, sizeof msg), WISP_EINVAL);
    assert_non_null(strstr(msg, "longer than 1024 bytes"));
    assert_non_null(strstr(msg, "...'"));
    assert_true(strlen(msg) < 512);
    /* Exactly at the limit: refused for its content, not its length. */
    s[WISP_MEMBER_MAX_LEN] = '\0';
    assert_int_equal(wisp_member_parse(s, &m, msg, sizeof msg), WISP_EINVAL);
    assert_null(strstr(msg, "longer than 1024 bytes"));
    free(s);

    /* An email over 254 bytes whose parts are each within their limits:
     * local part 64, domain 4 labels of 50 plus ".com" (272 in all). */
    char email[400] = "user:";
    memset(email + 5, 'b', 64);
    for (size_t i = 0; i < 4; i++) {
        strcat(email, i == 0 ? "@" : ".");
        memset(email + strlen(email), 'c', 50);
    }
    strcat(email, ".com");
    assert_int_equal(wisp_member_parse(email, &m, msg, sizeof msg), WISP_EINVAL);
    assert_non_null(strstr(msg, "longer than 254 bytes"));
    /* Trim the domain to fit: accepted. */
    email[strlen(email) - 4 - 50 - 1] = '\0';
    strcat(email, ".com");
    parse_ok(email, &m);
    wisp_member_free(&m);

    /* A small message slot (as a policy layer might pass) keeps the reason
     * and shortens the quote instead. */
    char small[256];
    const char *long_bad =
        "principalSet://" GKE_PFX "/kubernetes.cluster/" CLUSTER_URL("my-project", "prod") "/";
    assert_true(strlen(long_bad) > 200);
    assert_int_equal(wisp_member_parse(long_bad, &m, small, sizeof small), WISP_EINVAL);
    assert_true(strlen(small) < sizeof small - 1);
    assert_non_null(strstr(small, "...': unexpected '/' after the cluster name"));
    assert_int_equal(strncmp(small, "Invalid member 'principalSet://iam.googleapis.com/", 50), 0);

    /* No message slot, tiny message slot, NULL arguments: no crash. */
    assert_int_equal(wisp_member_parse("foo:bar", &m, NULL, 0), WISP_EINVAL);
    char tiny[8];
    assert_int_equal(wisp_member_parse("foo:bar", &m, tiny, sizeof tiny), WISP_EINVAL);
    assert_string_equal(tiny, "Invalid");
    assert_int_equal(wisp_member_parse(NULL, &m, msg, sizeof msg), WISP_EINVAL);
    assert_string_equal(msg, "Invalid member: no member given");
    assert_int_equal(wisp_member_parse("allUsers", NULL, msg, sizeof msg), WISP_EINVAL);

    /* Free is idempotent and NULL-safe. */
    parse_ok("allUsers", &m);
    wisp_member_free(&m);
    wisp_member_free(&m);
    wisp_member_free(NULL);

    /* Every type has a name. */
    for (int t = WISP_MEMBER_NONE; t <= WISP_MEMBER_AGENT_SET; t++)
        assert_string_not_equal(wisp_member_type_name((enum wisp_member_type)t), "unknown");
}

/* ------------------------------------------------------------------------ */
/* Matching. */

static int matches(const char *member, const struct wisp_caller *c)
{
    struct wisp_member m;
    parse_ok(member, &m);
    int r = wisp_member_matches(&m, c);
    wisp_member_free(&m);
    return r;
}

struct match_case {
    const char *member;
    int want;
};

static void run_matches(const char *who, const struct wisp_caller *c,
                        const struct match_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = matches(cases[i].member, c);
        if (got != cases[i].want)
            fail_msg("%s vs %s: got %d, want %d", who, cases[i].member, got, cases[i].want);
    }
}

#define OTHER_PFX WI_PFX "other-project.svc.id.goog"
#define PROD_CLUSTER CLUSTER_URL("my-project", "prod")
#define STAGING_CLUSTER CLUSTER_URL("my-project", "staging")

static const struct wisp_caller ksa_prod = {
    .project_number = "123456789012",
    .pool = GKE_POOL,
    .ns = "team-a",
    .ksa = "reader",
    .ksa_uid = KSA_UID,
    .cluster_url = PROD_CLUSTER,
};

static void test_match_ksa(void **state)
{
    (void)state;
    static const struct match_case cases[] = {
        /* One KSA, both spellings. */
        {"principal://" GKE_PFX "/subject/ns/team-a/sa/reader", 1},
        {"serviceAccount:" GKE_POOL "[team-a/reader]", 1},
        /* Same KSA name in another namespace: a different principal. */
        {"principal://" GKE_PFX "/subject/ns/team-b/sa/reader", 0},
        {"serviceAccount:" GKE_POOL "[team-b/reader]", 0},
        /* Other KSA in the same namespace. */
        {"principal://" GKE_PFX "/subject/ns/team-a/sa/writer", 0},
        {"serviceAccount:" GKE_POOL "[team-a/writer]", 0},
        /* Other pool; and the right pool under the wrong project number. */
        {"principal://" OTHER_PFX "/subject/ns/team-a/sa/reader", 0},
        {"serviceAccount:other-project.svc.id.goog[team-a/reader]", 0},
        {"principal://iam.googleapis.com/projects/999/locations/global/"
         "workloadIdentityPools/" GKE_POOL "/subject/ns/team-a/sa/reader",
         0},
        /* A non-GKE pool with a GKE-looking subject. */
        {"principal://" WI_PFX "github-pool/subject/ns/team-a/sa/reader", 0},
        /* UID form. */
        {"principal://" GKE_PFX "/kubernetes.serviceaccount.uid/" KSA_UID, 1},
        {"principal://" GKE_PFX
         "/kubernetes.serviceaccount.uid/00000000-0000-0000-0000-000000000000",
         0},
        {"principal://" OTHER_PFX "/kubernetes.serviceaccount.uid/" KSA_UID, 0},
        /* Namespace set. */
        {"principalSet://" GKE_PFX "/namespace/team-a", 1},
        {"principalSet://" GKE_PFX "/namespace/team-b", 0},
        {"principalSet://" OTHER_PFX "/namespace/team-a", 0},
        /* Cluster set. */
        {"principalSet://" GKE_PFX "/kubernetes.cluster/" PROD_CLUSTER, 1},
        {"principalSet://" GKE_PFX "/kubernetes.cluster/" STAGING_CLUSTER, 0},
        {"principalSet://" GKE_PFX "/kubernetes.cluster/" CLUSTER_URL("other-project", "prod"), 0},
        {"principalSet://" OTHER_PFX "/kubernetes.cluster/" PROD_CLUSTER, 0},
        /* Pool sets. */
        {"principalSet://" GKE_PFX "/*", 1},
        {"principalSet://" OTHER_PFX "/*", 0},
        {"principalSet://" WI_PFX "github-pool/*", 0},
        /* Public and Google-only members. */
        {"allUsers", 1},
        {"allAuthenticatedUsers", 0}, /* excludes federated identities */
        {"serviceAccount:reader@my-project.iam.gserviceaccount.com", 0},
        {"user:reader@my-project.svc.id.goog", 0},
        {"domain:my-project.svc.id.goog", 0},
        {"principalSet://cloudresourcemanager.googleapis.com/projects/123456789012/type/"
         "ServiceAccount",
         0},
        {"principalSet://" WF_PFX "my-wf-pool/*", 0},
    };
    run_matches("ksa_prod", &ksa_prod, cases, sizeof cases / sizeof cases[0]);
}

/* Identity sameness: the same ns/KSA in another cluster of the pool, even
 * with another UID (a separate object), is the same principal by name. */
static void test_match_identity_sameness(void **state)
{
    (void)state;
    struct wisp_caller staging = ksa_prod;
    staging.cluster_url = STAGING_CLUSTER;
    staging.ksa_uid = "11111111-2222-3333-4444-555555555555";
    static const struct match_case cases[] = {
        {"principal://" GKE_PFX "/subject/ns/team-a/sa/reader", 1},
        {"serviceAccount:" GKE_POOL "[team-a/reader]", 1},
        {"principalSet://" GKE_PFX "/namespace/team-a", 1},
        {"principalSet://" GKE_PFX "/*", 1},
        /* What tells the clusters apart: the cluster set and the UID. */
        {"principalSet://" GKE_PFX "/kubernetes.cluster/" PROD_CLUSTER, 0},
        {"principalSet://" GKE_PFX "/kubernetes.cluster/" STAGING_CLUSTER, 1},
        {"principal://" GKE_PFX "/kubernetes.serviceaccount.uid/" KSA_UID, 0},
    };
    run_matches("ksa_staging", &staging, cases, sizeof cases / sizeof cases[0]);
}

/* Missing facts never match, and federated callers never pass as Google. */
static void test_match_partial_callers(void **state)
{
    (void)state;
    struct wisp_caller no_number = ksa_prod;
    no_number.project_number = NULL;
    static const struct match_case no_number_cases[] = {
        {"serviceAccount:" GKE_POOL "[team-a/reader]", 1}, /* names the pool by ID only */
        {"principal://" GKE_PFX "/subject/ns/team-a/sa/reader", 0},
        {"principalSet://" GKE_PFX "/*", 0},
    };
    run_matches("no_number", &no_number, no_number_cases, 3);

    struct wisp_caller empty_ns = ksa_prod;
    empty_ns.ns = "";
    static const struct match_case empty_ns_cases[] = {
        {"principalSet://" GKE_PFX "/namespace/team-a", 0},
        {"principalSet://" GKE_PFX "/*", 1},
    };
    run_matches("empty_ns", &empty_ns, empty_ns_cases, 2);

    /* A federated caller that also carries an email is still federated. */
    struct wisp_caller fed_with_email = ksa_prod;
    fed_with_email.email = "reader@my-project.iam.gserviceaccount.com";
    fed_with_email.is_service_account = 1;
    static const struct match_case fed_cases[] = {
        {"serviceAccount:reader@my-project.iam.gserviceaccount.com", 0},
        {"allAuthenticatedUsers", 0},
        {"serviceAccount:" GKE_POOL "[team-a/reader]", 1},
    };
    run_matches("fed_with_email", &fed_with_email, fed_cases, 3);
}

static void test_match_google(void **state)
{
    (void)state;
    const struct wisp_caller gsa = {
        .email = "Reader@My-Project.iam.gserviceaccount.com",
        .is_service_account = 1,
        .project_number = "123456789012",
    };
    static const struct match_case gsa_cases[] = {
        {"serviceAccount:reader@my-project.iam.gserviceaccount.com", 1},
        {"serviceAccount:READER@my-project.iam.gserviceaccount.com", 1},
        {"serviceAccount:writer@my-project.iam.gserviceaccount.com", 0},
        {"user:reader@my-project.iam.gserviceaccount.com", 0},
        {"deleted:serviceAccount:reader@my-project.iam.gserviceaccount.com?uid=1", 0},
        {"domain:my-project.iam.gserviceaccount.com", 0},
        {"allUsers", 1},
        {"allAuthenticatedUsers", 1},
        {"principalSet://cloudresourcemanager.googleapis.com/projects/123456789012/type/"
         "ServiceAccount",
         1},
        {"principalSet://cloudresourcemanager.googleapis.com/projects/42/type/ServiceAccount", 0},
        {"principalSet://cloudresourcemanager.googleapis.com/folders/123456789012/type/"
         "ServiceAccount",
         0},
        {"serviceAccount:" GKE_POOL "[team-a/reader]", 0},
        {"principal://" GKE_PFX "/subject/ns/team-a/sa/reader", 0},
        {"principalSet://" GKE_PFX "/*", 0},
    };
    run_matches("gsa", &gsa, gsa_cases, sizeof gsa_cases / sizeof gsa_cases[0]);

    static const char *const groups[] = {"Admins@Example.com", "readers@example.com"};
    const struct wisp_caller alice = {
        .email = "alice@example.com",
        .groups = groups,
        .n_groups = 2,
    };
    static const struct match_case user_cases[] = {
        {"user:Alice@Example.com", 1},
        {"user:alice@example.org", 0},
        {"user:alic@example.com", 0},
        {"serviceAccount:alice@example.com", 0},
        {"group:admins@example.com", 1},
        {"group:readers@example.com", 1},
        {"group:writers@example.com", 0},
        {"domain:example.com", 1},
        {"domain:EXAMPLE.com", 1},
        {"domain:example.org", 0},
        {"domain:sub.example.com", 0},
        {"deleted:user:alice@example.com?uid=7", 0},
        {"allAuthenticatedUsers", 1},
        {"principalSet://cloudresourcemanager.googleapis.com/projects/1/type/ServiceAccount", 0},
    };
    run_matches("alice", &alice, user_cases, sizeof user_cases / sizeof user_cases[0]);

    /* Anonymous: only allUsers. */
    static const struct match_case anon_cases[] = {
        {"allUsers", 1},
        {"allAuthenticatedUsers", 0},
        {"user:alice@example.com", 0},
        {"principalSet://" GKE_PFX "/*", 0},
    };
    run_matches("anonymous", NULL, anon_cases, 4);
    const struct wisp_caller empty = {0};
    run_matches("empty caller", &empty, anon_cases, 4);

    /* A parsed-but-unmatchable member and a NULL member. */
    assert_int_equal(wisp_member_matches(NULL, &alice), 0);
    struct wisp_member none = {0};
    assert_int_equal(wisp_member_matches(&none, &alice), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_forms_roundtrip),
        cmocka_unit_test(test_parts_google),
        cmocka_unit_test(test_parts_gke),
        cmocka_unit_test(test_long_ksa_both_spellings),
        cmocka_unit_test(test_parts_generic_pools),
        cmocka_unit_test(test_canonicalize_dedup),
        cmocka_unit_test(test_invalid_table),
        cmocka_unit_test(test_invalid_edges),
        cmocka_unit_test(test_match_ksa),
        cmocka_unit_test(test_match_identity_sameness),
        cmocka_unit_test(test_match_partial_callers),
        cmocka_unit_test(test_match_google),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
