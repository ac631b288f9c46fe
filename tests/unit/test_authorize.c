/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the authorization decision (lib/iam/authorize.c) and its
 * index (lib/iam/index*.c): a randomized differential test of the indexed
 * decision against the linear walk and of match keys against
 * wisp_member_matches, conditions through the index, the resource
 * hierarchy, wisp_iam_explain's reasons, and wispd's per-thread cache of
 * compiled policies against the JSON walk over a changing store.
 * Deterministic: a fixed-seed PRNG, no clock. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "wisp/alloc.h"
#include "wisp/iam.h"
#include "iam/iam_int.h"
/* wispd's policy cache, compiled in: it needs only libwisp. */
#include "../../src/wispd/authz_cache.c"

#define WI "principal://iam.googleapis.com/projects/"
#define WISET "principalSet://iam.googleapis.com/projects/"
#define LOC "/locations/global/workloadIdentityPools/"
#define CLUSTER(c) "https://container.googleapis.com/v1/projects/p-1/locations/us-central1/clusters/" c
#define UID_A "e6a8680e-5c1a-4b5e-9d0b-0123456789ab"
#define UID_B "0a0a0a0a-1b1b-4c4c-8d8d-efefefefefef"

/* ------------------------------------------------------------------------ */
/* A small deterministic PRNG (xorshift64*), so a failure replays. */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static size_t pick(size_t n)
{
    return (size_t)(rnd() % n);
}

#define PICK(arr) (arr)[pick(sizeof(arr) / sizeof((arr)[0]))]

/* The value pools: small, so random members and callers collide often. */
static const char *const emails[] = {"alice@example.com", "Alice@Example.COM", "bob@corp.example",
                                     "sa-1@p-1.iam.gserviceaccount.com",
                                     "SA-1@P-1.iam.gserviceaccount.com",
                                     "p-1.svc.id.goog[ns-a/app]"};
static const char *const member_emails[] = {"alice@example.com", "Alice@example.com",
                                            "bob@corp.example",
                                            "sa-1@p-1.iam.gserviceaccount.com"};
static const char *const groups[] = {"devs@example.com", "Ops@Example.com", "ops@example.com"};
static const char *const domains[] = {"example.com", "corp.example", "Example.COM"};
static const char *const numbers[] = {"123456789012", "999"};
static const char *const pools[] = {"p-1.svc.id.goog", "p-2.svc.id.goog"};
static const char *const nss[] = {"ns-a", "ns-b"};
static const char *const ksas[] = {"app", "web"};
static const char *const uids[] = {UID_A, UID_B};
static const char *const clusters[] = {CLUSTER("c1"), CLUSTER("c2")};

static json_t *random_member(void)
{
    char buf[600];
    switch (pick(19)) {
    case 0:
        snprintf(buf, sizeof(buf), "user:%s", PICK(member_emails));
        break;
    case 1:
        snprintf(buf, sizeof(buf), "serviceAccount:%s", PICK(member_emails));
        break;
    case 2:
        snprintf(buf, sizeof(buf), "group:%s", PICK(groups));
        break;
    case 3:
        snprintf(buf, sizeof(buf), "domain:%s", PICK(domains));
        break;
    case 4:
        return json_string(pick(2) ? "allUsers" : "allAuthenticatedUsers");
    case 5:
        snprintf(buf, sizeof(buf), "serviceAccount:%s[%s/%s]", PICK(pools), PICK(nss), PICK(ksas));
        break;
    case 6:
    case 7:
        snprintf(buf, sizeof(buf), WI "%s" LOC "%s/subject/ns/%s/sa/%s", PICK(numbers),
                 PICK(pools), PICK(nss), PICK(ksas));
        break;
    case 8:
        snprintf(buf, sizeof(buf), WI "%s" LOC "%s/kubernetes.serviceaccount.uid/%s",
                 PICK(numbers), PICK(pools), PICK(uids));
        break;
    case 9:
        snprintf(buf, sizeof(buf), WISET "%s" LOC "%s/namespace/%s", PICK(numbers), PICK(pools),
                 PICK(nss));
        break;
    case 10:
        snprintf(buf, sizeof(buf), WISET "%s" LOC "%s/kubernetes.cluster/%s", PICK(numbers),
                 PICK(pools), PICK(clusters));
        break;
    case 11:
        snprintf(buf, sizeof(buf), WISET "%s" LOC "%s/*", PICK(numbers), PICK(pools));
        break;
    case 12:
        snprintf(buf, sizeof(buf),
                 "principalSet://cloudresourcemanager.googleapis.com/projects/%s/type/"
                 "ServiceAccount",
                 PICK(numbers));
        break;
    case 13:
        return json_string("deleted:user:alice@example.com?uid=123");
    case 14:
        return json_string("principal://iam.googleapis.com/locations/global/workforcePools/"
                           "wf-pool1/subject/alice");
    case 15: /* a non-GKE pool: its subject never names a KSA */
        snprintf(buf, sizeof(buf), WI "%s" LOC "gh-pool/subject/ns/ns-a/sa/app", PICK(numbers));
        break;
    case 16:
        return json_string("foo:bar"); /* does not parse: matches nobody */
    case 17:
        return json_integer(7); /* not even a string */
    default:
        snprintf(buf, sizeof(buf), "principalSet://cloudresourcemanager.googleapis.com/folders/"
                                   "%s/type/ServiceAccount", PICK(numbers));
        break;
    }
    return json_string(buf);
}

static const char *const roles_pool[] = {
    "roles/storage.objectViewer", "roles/storage.objectCreator", "roles/storage.admin",
    "roles/viewer",  "roles/container.clusterViewer", "projects/p-1/roles/custom"};

static const char *const permissions[] = {"storage.objects.get", "storage.objects.create",
                                          "container.clusters.list",
                                          "resourcemanager.projects.get"};

static json_t *random_condition(void)
{
    static const char *const exprs[] = {
        "resource.name.startsWith('projects/_/buckets/b1')",  /* true, false or error by env */
        "request.time < timestamp('2020-01-01T00:00:00Z')",   /* false (or error: no time) */
        "request.time > timestamp('2020-01-01T00:00:00Z')",   /* true (or error) */
        "resource.nmae == 'x'",                               /* does not parse */
        "resource.type == 'storage.googleapis.com/Bucket' || resource.name == 'x'",
    };
    switch (pick(8)) {
    case 0:
        return json_null(); /* present but not an object: never grants */
    case 1:
        return json_pack("{s:s}", "title", "no expression");
    default:
        return json_pack("{s:s, s:s}", "title", "t", "expression", PICK(exprs));
    }
}

/* A stored-form policy, built directly (not normalized) so that it may hold
 * what a damaged store could: bad members, bad conditions, no role. */
static json_t *random_policy(void)
{
    json_t *bindings = json_array();
    size_t n = pick(7);
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_object();
        size_t r = pick(12);
        if (r < 6)
            json_object_set_new(b, "role", json_string(roles_pool[r]));
        else if (r < 11)
            json_object_set_new(b, "role", json_string(roles_pool[pick(4)]));
        /* else: no role */
        json_t *members = json_array();
        size_t nm = 1 + pick(6);
        for (size_t j = 0; j < nm; j++)
            json_array_append_new(members, random_member());
        json_object_set_new(b, "members", members);
        if (pick(3) == 0)
            json_object_set_new(b, "condition", random_condition());
        json_array_append_new(bindings, b);
    }
    return json_pack("{s:o}", "bindings", bindings);
}

/* The custom role of roles_pool as a policy's target may carry it: absent,
 * granting some of the permissions, deleted, or disabled. */
static json_t *random_custom_roles(void)
{
    size_t r = pick(6);
    if (r == 0)
        return NULL;
    json_t *perms = json_array();
    for (size_t q = 0; q < sizeof(permissions) / sizeof(permissions[0]); q++) {
        if (pick(2))
            json_array_append_new(perms, json_string(permissions[q]));
    }
    json_t *role = json_pack("{s:o, s:s}", "includedPermissions", perms, "stage",
                             r == 1 ? "DISABLED" : "GA");
    if (r == 2)
        json_object_set_new(role, "deleted", json_true());
    return json_pack("{s:o}", roles_pool[5], role);
}

static const char *maybe(const char *const *arr, size_t n)
{
    size_t r = pick(n + 2);
    if (r == n)
        return NULL;
    if (r == n + 1)
        return "";
    return arr[r];
}

#define MAYBE(arr) maybe((arr), sizeof(arr) / sizeof((arr)[0]))

static void random_caller(struct wisp_caller *c, const char **group_buf)
{
    memset(c, 0, sizeof(*c));
    switch (pick(5)) {
    case 0: /* anonymous */
        break;
    case 1:
    case 2: /* Google identity */
        c->email = MAYBE(emails);
        c->is_service_account = (int)pick(2);
        c->project_number = MAYBE(numbers);
        break;
    default: /* federated, sometimes with Google facts that must be ignored */
        c->pool = PICK(pools);
        c->project_number = MAYBE(numbers);
        c->ns = MAYBE(nss);
        c->ksa = MAYBE(ksas);
        c->ksa_uid = MAYBE(uids);
        c->cluster_url = MAYBE(clusters);
        if (pick(4) == 0)
            c->email = PICK(emails);
        break;
    }
    size_t ng = pick(4);
    for (size_t i = 0; i < ng; i++)
        group_buf[i] = pick(5) ? PICK(groups) : NULL;
    c->groups = ng ? group_buf : NULL;
    c->n_groups = ng;
}

/* 1 if the key of m is among the keys of c. */
static int key_in(const struct wisp_member *m, const struct wisp_caller *c)
{
    char key[WISP__IAM_KEY_MAX];
    size_t len = wisp__iam_member_key(m, key, sizeof(key));
    struct wisp__iam_keyset ks;
    int found = 0;
    wisp__iam_keyset_init(&ks, c);
    for (size_t i = 0; len && i < ks.n; i++)
        found |= ks.keys[i].len == len && memcmp(ks.buf + ks.keys[i].off, key, len) == 0;
    wisp__iam_keyset_cleanup(&ks);
    return found;
}

static int explain_allows(const struct wisp_caller *c, const char *perm,
                          const struct wisp_iam_target *t)
{
    json_t *ex = wisp_iam_explain(c, perm, t);
    size_t i;
    json_t *e;
    int granted = 0;
    assert_true(json_is_array(ex));
    json_array_foreach(ex, i, e) granted |= json_is_true(json_object_get(e, "granted"));
    json_decref(ex);
    return granted;
}

/* The index must decide exactly as the linear walk: same answer, same why
 * (so the same first granting binding), and explain must agree too. */
static void differential(void **state)
{
    (void)state;
    const struct wisp_cond_env envs[] = {
        {"projects/_/buckets/b1", "storage.googleapis.com/Bucket", "storage.googleapis.com",
         1800000000000LL},
        {"projects/_/buckets/b2", "storage.googleapis.com/Bucket", "storage.googleapis.com",
         1800000000000LL},
        {NULL, NULL, NULL, WISP_COND_TIME_ABSENT},
    };
    size_t decisions = 0, allowed = 0, key_checks = 0, custom_grants = 0;
    for (int round = 0; round < 400; round++) {
        json_t *pol[3];
        struct wisp_iam_index *ix[3];
        size_t n = 1 + pick(3);
        for (size_t p = 0; p < n; p++) {
            pol[p] = pick(6) ? random_policy() : NULL;
            ix[p] = wisp_iam_index_build(pol[p]);
            assert_non_null(ix[p]);
        }
        const struct wisp_cond_env *env = pick(5) ? &envs[pick(3)] : NULL;
        json_t *custom = random_custom_roles();
        struct wisp_iam_target lin = {"projects/_/buckets/b1", (const json_t **)pol, n, env};
        lin.custom_roles = custom;
        struct wisp_iam_target idx = lin;
        idx.indexes = (const struct wisp_iam_index **)ix;
        struct wisp_iam_target only = idx; /* the index alone, no JSON */
        only.policies = NULL;
        for (int k = 0; k < 12; k++) {
            struct wisp_caller c;
            const char *gb[4];
            random_caller(&c, gb);
            const struct wisp_caller *cp = pick(20) ? &c : NULL;
            /* The key contract, member by member. */
            for (size_t p = 0; p < n; p++) {
                size_t i, j;
                json_t *b, *m;
                json_array_foreach(json_object_get(pol[p], "bindings"), i, b) {
                    json_array_foreach(json_object_get(b, "members"), j, m) {
                        struct wisp_member mem;
                        if (!json_is_string(m) ||
                            wisp_member_parse(json_string_value(m), &mem, NULL, 0) != WISP_OK)
                            continue;
                        if (wisp_member_matches(&mem, cp) != key_in(&mem, cp))
                            fail_msg("member %s: matcher %d, key %d", mem.canon,
                                     wisp_member_matches(&mem, cp), key_in(&mem, cp));
                        key_checks++;
                        wisp_member_free(&mem);
                    }
                }
            }
            for (size_t q = 0; q < sizeof(permissions) / sizeof(permissions[0]); q++) {
                char w1[256], w2[256], w3[256];
                int a = wisp_authorize(cp, permissions[q], &lin, w1, sizeof(w1));
                int b = wisp_authorize(cp, permissions[q], &idx, w2, sizeof(w2));
                int d = wisp_authorize(cp, permissions[q], &only, w3, sizeof(w3));
                if (a != b || a != d || strcmp(w1, w2) != 0 || strcmp(w1, w3) != 0)
                    fail_msg("round %d: linear %d (%s), index %d (%s), index only %d (%s)",
                             round, a, w1, b, w2, d, w3);
                assert_int_equal(explain_allows(cp, permissions[q], &lin), a);
                decisions++;
                allowed += (size_t)a;
                custom_grants += a && strstr(w1, roles_pool[5]) != NULL;
            }
        }
        for (size_t p = 0; p < n; p++) {
            wisp_iam_index_free(ix[p]);
            json_decref(pol[p]);
        }
        json_decref(custom);
    }
    /* The random mix must exercise both outcomes, not just denials. */
    assert_true(allowed > decisions / 20);
    assert_true(allowed < decisions);
    assert_true(key_checks > 10000);
    assert_true(custom_grants > 0);
}

/* ------------------------------------------------------------------------ */

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("bad test JSON: %s", err.text);
    return j;
}

#define KSA_A WI "123456789012" LOC "p-1.svc.id.goog/subject/ns/ns-a/sa/app"

static const struct wisp_caller ksa_a = {.project_number = "123456789012",
                                         .pool = "p-1.svc.id.goog",
                                         .ns = "ns-a",
                                         .ksa = "app",
                                         .ksa_uid = UID_A,
                                         .cluster_url = CLUSTER("c1")};

static void conditions_indexed(void **state)
{
    (void)state;
    json_t *p = load("{\"bindings\":["
                     "{\"role\":\"roles/storage.objectViewer\",\"members\":[\"" KSA_A "\"],"
                     "\"condition\":{\"title\":\"b1\",\"expression\":"
                     "\"resource.name.startsWith('projects/_/buckets/b1')\"}},"
                     "{\"role\":\"roles/storage.objectCreator\",\"members\":[\"" KSA_A "\"],"
                     "\"condition\":{\"title\":\"bad\",\"expression\":\"resource.nmae == 'x'\"}}"
                     "]}");
    struct wisp_iam_index *ix = wisp_iam_index_build(p);
    const struct wisp_iam_index *ixs[] = {ix};
    struct wisp_cond_env b1 = {"projects/_/buckets/b1", "storage.googleapis.com/Bucket",
                               "storage.googleapis.com", 1800000000000LL};
    struct wisp_cond_env b2 = b1, noname = b1;
    b2.resource_name = "projects/_/buckets/b2";
    noname.resource_name = NULL;
    struct wisp_iam_target t = {.resource = "projects/_/buckets/b1", .n_policies = 1, .env = &b1,
                                .indexes = ixs};
    char why[256];
    assert_true(wisp_authorize(&ksa_a, "storage.objects.get", &t, why, sizeof(why)));
    assert_string_equal(why, "granted by roles/storage.objectViewer on policy #0 of "
                             "projects/_/buckets/b1");
    t.env = &b2; /* false */
    assert_false(wisp_authorize(&ksa_a, "storage.objects.get", &t, why, sizeof(why)));
    assert_string_equal(why, "no binding grants storage.objects.get on projects/_/buckets/b1");
    t.env = &noname; /* error */
    assert_false(wisp_authorize(&ksa_a, "storage.objects.get", &t, NULL, 0));
    t.env = NULL; /* no environment: conditional bindings do not grant */
    assert_false(wisp_authorize(&ksa_a, "storage.objects.get", &t, NULL, 0));
    t.env = &b1; /* a condition that does not parse never grants */
    assert_false(wisp_authorize(&ksa_a, "storage.objects.create", &t, NULL, 0));
    struct wisp_iam_index_stats st;
    wisp_iam_index_stats(ix, &st);
    assert_int_equal(st.n_bindings, 2);
    assert_int_equal(st.n_keys, 1); /* one member, named twice */
    assert_int_equal(st.n_postings, 2);
    assert_true(st.bytes > 0);
    wisp_iam_index_free(ix);
    json_decref(p);
}

/* A bucket's own policy, its project's and its organization's: the nearest
 * granting policy is named, indexes and JSON may be mixed, and NULL
 * policies are skipped. */
static void hierarchy(void **state)
{
    (void)state;
    json_t *bucket = load("{\"bindings\":[{\"role\":\"roles/storage.objectViewer\","
                          "\"members\":[\"user:bob@corp.example\"]}]}");
    json_t *project = load("{\"bindings\":[{\"role\":\"roles/storage.objectCreator\","
                           "\"members\":[\"principalSet://iam.googleapis.com/projects/"
                           "123456789012" LOC "p-1.svc.id.goog/namespace/ns-a\"]}]}");
    json_t *org = load("{\"bindings\":[{\"role\":\"roles/viewer\",\"members\":"
                       "[\"domain:corp.example\"]},{\"role\":\"roles/storage.admin\","
                       "\"members\":[\"group:admins@corp.example\"]}]}");
    const json_t *pols[] = {bucket, project, NULL, org};
    struct wisp_iam_index *ix[] = {wisp_iam_index_build(bucket), NULL, wisp_iam_index_build(NULL),
                                   wisp_iam_index_build(org)};
    const char *names[] = {"projects/_/buckets/b1", "projects/p-1", NULL, "organizations/42"};
    struct wisp_iam_target t = {.resource = "projects/_/buckets/b1",
                                .policies = pols,
                                .n_policies = 4,
                                .indexes = (const struct wisp_iam_index **)ix,
                                .policy_names = names};
    const char *admin_groups[] = {"Admins@Corp.Example"};
    struct wisp_caller bob = {.email = "Bob@corp.example"};
    struct wisp_caller admin = {.email = "root@corp.example", .groups = admin_groups,
                                .n_groups = 1};
    char why[256];
    assert_true(wisp_authorize(&bob, "storage.objects.get", &t, why, sizeof(why)));
    assert_string_equal(why, "granted by roles/storage.objectViewer in the policy of "
                             "projects/_/buckets/b1");
    assert_true(wisp_authorize(&ksa_a, "storage.objects.create", &t, why, sizeof(why)));
    assert_string_equal(why, "granted by roles/storage.objectCreator in the policy of "
                             "projects/p-1, inherited by projects/_/buckets/b1");
    assert_false(wisp_authorize(&ksa_a, "storage.objects.get", &t, NULL, 0));
    assert_true(wisp_authorize(&bob, "container.clusters.list", &t, why, sizeof(why)));
    assert_string_equal(why, "granted by roles/viewer in the policy of organizations/42, "
                             "inherited by projects/_/buckets/b1");
    assert_true(wisp_authorize(&admin, "storage.objects.delete", &t, NULL, 0));
    assert_false(wisp_authorize(&bob, "storage.objects.delete", &t, NULL, 0));
    /* The domain member is for users: a service account of that domain is
     * not in it. */
    struct wisp_caller sa = {.email = "x@corp.example", .is_service_account = 1};
    assert_false(wisp_authorize(&sa, "container.clusters.list", &t, NULL, 0));
    for (size_t i = 0; i < 4; i++)
        wisp_iam_index_free(ix[i]);
    json_decref(bucket);
    json_decref(project);
    json_decref(org);
}

/* Callers whose keys overflow the inline storage (many groups) or are too
 * long to be any member's. */
static void keyset_limits(void **state)
{
    (void)state;
    enum { N = 300 };
    char *names[N];
    const char *gp[N];
    for (int i = 0; i < N; i++) {
        names[i] = wisp_xasprintf("group-%03d-with-a-long-name-to-fill-the-buffer@example.com",
                                  i);
        gp[i] = names[i];
    }
    json_t *p = load("{\"bindings\":[{\"role\":\"roles/storage.objectViewer\",\"members\":"
                     "[\"group:group-299-with-a-long-name-to-fill-the-buffer@example.com\"]}]}");
    struct wisp_iam_index *ix = wisp_iam_index_build(p);
    const struct wisp_iam_index *ixs[] = {ix};
    struct wisp_iam_target t = {.resource = "b", .n_policies = 1, .indexes = ixs};
    struct wisp_caller c = {.email = "u@example.com", .groups = gp, .n_groups = N};
    assert_true(wisp_authorize(&c, "storage.objects.get", &t, NULL, 0));
    c.n_groups = N - 1;
    assert_false(wisp_authorize(&c, "storage.objects.get", &t, NULL, 0));
    /* A namespace longer than any member could hold: no key, no match. */
    char longns[3000];
    memset(longns, 'a', sizeof(longns) - 1);
    longns[sizeof(longns) - 1] = '\0';
    struct wisp_caller k = ksa_a;
    k.ns = longns;
    struct wisp__iam_keyset ks;
    wisp__iam_keyset_init(&ks, &k);
    assert_int_equal(ks.n, 4); /* allUsers, uid, cluster, pool: not legacy/subject/namespace */
    wisp__iam_keyset_cleanup(&ks);
    wisp_iam_index_free(ix);
    json_decref(p);
    for (int i = 0; i < N; i++)
        free(names[i]);
}

/* A policy far past the API's member limit is still decided by look-up
 * (the bench measures the time; here only the answers). */
static void large_policy(void **state)
{
    (void)state;
    json_t *members = json_array();
    for (int i = 0; i < 20000; i++) {
        char m[300];
        snprintf(m, sizeof(m), WI "123456789012" LOC "p-1.svc.id.goog/subject/ns/ns-%d/sa/app",
                 i);
        json_array_append_new(members, json_string(m));
    }
    json_t *p = json_pack("{s:[{s:s, s:o}]}", "bindings", "role", "roles/storage.objectViewer",
                          "members", members);
    struct wisp_iam_index *ix = wisp_iam_index_build(p);
    const struct wisp_iam_index *ixs[] = {ix};
    struct wisp_iam_target t = {.resource = "b", .n_policies = 1, .indexes = ixs};
    struct wisp_caller c = ksa_a;
    c.ns = "ns-19999";
    assert_true(wisp_authorize(&c, "storage.objects.get", &t, NULL, 0));
    c.ns = "ns-20000";
    assert_false(wisp_authorize(&c, "storage.objects.get", &t, NULL, 0));
    struct wisp_iam_index_stats st;
    wisp_iam_index_stats(ix, &st);
    assert_int_equal(st.n_keys, 20000);
    wisp_iam_index_free(ix);
    json_decref(p);
}

/* One index shared by several threads deciding at once: it is immutable,
 * so every thread must see the answers a lone thread sees (ASan would also
 * catch a decision writing into shared memory it does not own). */
struct shared {
    struct wisp_iam_target t;
    int errors;
};

static void *decide_many(void *arg)
{
    struct shared *sh = arg;
    struct wisp_caller c = ksa_a;
    int errors = 0;
    for (int i = 0; i < 2000; i++) {
        char ns[32], why[256];
        snprintf(ns, sizeof(ns), "ns-%d", i % 200);
        c.ns = ns;
        int want = i % 200 < 100; /* the policy names ns-0 .. ns-99 */
        errors += wisp_authorize(&c, "storage.objects.get", &sh->t, why, sizeof(why)) != want;
    }
    return (void *)(intptr_t)errors;
}

static void threads(void **state)
{
    (void)state;
    json_t *members = json_array();
    for (int i = 0; i < 100; i++) {
        char m[300];
        snprintf(m, sizeof(m), WISET "123456789012" LOC "p-1.svc.id.goog/namespace/ns-%d", i);
        json_array_append_new(members, json_string(m));
    }
    json_t *p = json_pack("{s:[{s:s, s:o}]}", "bindings", "role", "roles/storage.objectViewer",
                          "members", members);
    struct wisp_iam_index *ix = wisp_iam_index_build(p);
    const struct wisp_iam_index *ixs[] = {ix};
    struct shared sh = {{.resource = "b", .n_policies = 1, .indexes = ixs}, 0};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, decide_many, &sh), 0);
    for (int i = 0; i < 4; i++) {
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        sh.errors += (int)(intptr_t)ret;
    }
    assert_int_equal(sh.errors, 0);
    wisp_iam_index_free(ix);
    json_decref(p);
}

/* ------------------------------------------------------------------------ */
/* wispd's cache of compiled policies (src/wispd/authz_cache.c) against the
 * JSON walk, over a real store that changes between decisions: policies
 * set and deleted, the custom role edited, a project moved between
 * organizations. Two caches: one large (entries are reused and must notice
 * every change) and one at the minimum size (entries are evicted while
 * decisions hold others). */

static void put_doc(struct wisp_txn *txn, const char *kind, const char *name, json_t *doc)
{
    if (!doc) {
        enum wisp_err err = wisp_store_delete(txn, kind, name, -1);
        assert_true(err == WISP_OK || err == WISP_ENOTFOUND);
        return;
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(wisp_store_put(txn, kind, name, text, strlen(text), -1, NULL), WISP_OK);
    free(text);
    json_decref(doc);
}

static json_t *get_doc(struct wisp_txn *txn, const char *kind, const char *name)
{
    struct wisp_doc d;
    if (wisp_store_get(txn, kind, name, &d) != WISP_OK)
        return NULL;
    json_t *j = json_loadb(d.body, d.body_len, 0, NULL);
    wisp_store_doc_free(&d);
    return j;
}

/* The reference: the chain read as JSON and walked, as wispd did before. */
static int linear_decide(struct wisp_txn *txn, const struct wisp_caller *who, const char *perm,
                         const struct wispd_resource *r, const struct wisp_cond_env *env,
                         char *why, size_t whylen)
{
    json_t *project = get_doc(txn, "project", r->project_id);
    const char *org =
        json_string_value(json_object_get(json_object_get(project, "parent"), "id"));
    char names[3][WISPD_POLICY_NAME_MAX];
    const char *np[3];
    json_t *pol[3] = {NULL, NULL, NULL};
    int n = wispd_authz_chain_names(r, project != NULL, org, names);
    json_t *custom = json_object();
    for (int i = 0; i < n; i++) {
        np[i] = names[i];
        pol[i] = get_doc(txn, "iampolicy", names[i]);
        size_t j;
        json_t *b;
        json_array_foreach(json_object_get(pol[i], "bindings"), j, b) {
            const char *role = json_string_value(json_object_get(b, "role"));
            json_t *doc = role && strncmp(role, "roles/", 6) ? get_doc(txn, "role", role) : NULL;
            if (doc)
                json_object_set_new(custom, role, doc);
        }
    }
    struct wisp_iam_target t = {.resource = r->name, .policies = (const json_t **)pol,
                                .n_policies = (size_t)n, .env = env, .policy_names = np,
                                .custom_roles = custom};
    int a = wisp_authorize(who, perm, &t, why, whylen);
    for (int i = 0; i < n; i++)
        json_decref(pol[i]);
    json_decref(custom);
    json_decref(project);
    return a;
}

static void cache_vs_linear(void **state)
{
    (void)state;
    char dir[] = "/tmp/wisp-test-authz.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/wisp.db", dir);
    struct wisp_store *st = NULL;
    assert_int_equal(wisp_store_open(path, &st), WISP_OK);
    static const char *const policy_names[] = {"organizations/1", "organizations/2",
                                               "projects/p-1", "projects/p-2",
                                               "projects/_/buckets/b1", "projects/_/buckets/b2"};
    static const struct wispd_resource resources[] = {
        {"projects/p-1", "cloudresourcemanager.googleapis.com/Project",
         "cloudresourcemanager.googleapis.com", "p-1"},
        {"projects/p-2", "cloudresourcemanager.googleapis.com/Project",
         "cloudresourcemanager.googleapis.com", "p-2"},
        {"projects/_/buckets/b1", "storage.googleapis.com/Bucket", "storage.googleapis.com",
         "p-1"},
        {"projects/_/buckets/b2", "storage.googleapis.com/Bucket", "storage.googleapis.com",
         "p-2"},
        {"projects/_/buckets/b9", "storage.googleapis.com/Bucket", "storage.googleapis.com",
         "p-9"}, /* no such project: no organization either */
        {"organizations/1", "cloudresourcemanager.googleapis.com/Organization",
         "cloudresourcemanager.googleapis.com", ""}, /* its own chain, no project */
    };
    const struct wisp_cond_env envs[] = {
        {NULL, NULL, NULL, 1800000000000LL}, /* resource fields set per decision */
        {NULL, NULL, NULL, WISP_COND_TIME_ABSENT},
    };
    struct wispd_authz_cache *big = wispd_authz_cache_new(4096, WISPD_AUTHZ_CACHE_BYTES);
    struct wispd_authz_cache *tiny = wispd_authz_cache_new(0, 4096); /* 8 entries, 4 KiB */
    size_t decisions = 0, allowed = 0;
    for (int round = 0; round < 150; round++) {
        struct wisp_txn *txn = NULL;
        assert_int_equal(wisp_store_begin(st, 1, &txn), WISP_OK);
        for (int k = 0, nk = 1 + (int)pick(3); k < nk; k++) {
            switch (round == 0 ? 0 : pick(6)) {
            case 0: /* the projects and their parents (none, org 1 or org 2) */
                for (int p = 1; p <= 2; p++) {
                    char id[16];
                    snprintf(id, sizeof(id), "p-%d", p);
                    size_t o = pick(3);
                    put_doc(txn, "project", id,
                            o ? json_pack("{s:s, s:{s:s, s:s}}", "projectId", id, "parent",
                                          "type", "organization", "id", o == 1 ? "1" : "2")
                              : json_pack("{s:s}", "projectId", id));
                }
                break;
            case 1:
                put_doc(txn, "role", roles_pool[5], NULL);
                break;
            case 2: {
                json_t *cr = random_custom_roles();
                json_t *role = json_object_get(cr, roles_pool[5]);
                put_doc(txn, "role", roles_pool[5], role ? json_incref(role) : NULL);
                json_decref(cr);
                break;
            }
            case 3:
                put_doc(txn, "iampolicy", PICK(policy_names), NULL);
                break;
            default:
                put_doc(txn, "iampolicy", PICK(policy_names), random_policy());
                break;
            }
        }
        assert_int_equal(wisp_store_commit(txn), WISP_OK);
        assert_int_equal(wisp_store_begin(st, 0, &txn), WISP_OK);
        for (int d = 0; d < 40; d++) {
            struct wisp_caller c;
            const char *gb[4];
            random_caller(&c, gb);
            const struct wispd_resource *r = &PICK(resources);
            const char *perm = PICK(permissions);
            struct wisp_cond_env env = envs[pick(2)];
            env.resource_name = r->name;
            env.resource_type = r->type;
            env.resource_service = r->service;
            char w1[256], w2[256], w3[256];
            int a = linear_decide(txn, &c, perm, r, &env, w1, sizeof(w1));
            int b = -1, e = -1;
            assert_int_equal(wispd_authz_decide(big, txn, &c, perm, r, &env, &b, w2, sizeof(w2)),
                             WISP_OK);
            assert_int_equal(
                wispd_authz_decide(tiny, txn, &c, perm, r, &env, &e, w3, sizeof(w3)), WISP_OK);
            if (a != b || a != e || strcmp(w1, w2) != 0 || strcmp(w1, w3) != 0)
                fail_msg("round %d: linear %d (%s), cached %d (%s), tiny cache %d (%s)", round,
                         a, w1, b, w2, e, w3);
            decisions++;
            allowed += (size_t)a;
        }
        wisp_store_rollback(txn);
    }
    struct wispd_authz_cache_stats sb, stt;
    wispd_authz_cache_stats(big, &sb);
    wispd_authz_cache_stats(tiny, &stt);
    assert_true(allowed > decisions / 20 && allowed < decisions);
    assert_true(sb.hits > sb.builds); /* reused, and rebuilt on change */
    assert_true(sb.builds > 50);
    assert_true(stt.evictions > 0);
    assert_true(stt.entries <= 8);
    assert_int_equal(sb.evictions, 0);
    wispd_authz_cache_free(big);
    wispd_authz_cache_free(tiny);
    wisp_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------------------ */
/* explain */

static json_t *find_member(json_t *ex, const char *role, const char *member_prefix)
{
    size_t i, j;
    json_t *e, *m;
    json_array_foreach(ex, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "role")), role) != 0)
            continue;
        json_array_foreach(json_object_get(e, "members"), j, m) {
            const char *s = json_string_value(json_object_get(m, "member"));
            if (s && strncmp(s, member_prefix, strlen(member_prefix)) == 0)
                return m;
        }
    }
    fail_msg("no member %s under %s", member_prefix, role);
    return NULL;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void explain(void **state)
{
    (void)state;
    json_t *project = load(
        "{\"bindings\":["
        "{\"role\":\"roles/storage.objectViewer\",\"members\":["
        "\"" WI "123456789012" LOC "p-1.svc.id.goog/subject/ns/ns-b/sa/app\","
        "\"" WI "123456789012" LOC "p-2.svc.id.goog/subject/ns/ns-a/sa/app\","
        "\"" WI "555" LOC "p-1.svc.id.goog/subject/ns/ns-a/sa/app\","
        "\"" WI "123456789012" LOC "p-1.svc.id.goog/subject/ns/ns-a/sa/web\","
        "\"" WISET "123456789012" LOC "p-1.svc.id.goog/kubernetes.cluster/" CLUSTER("c2") "\","
        "\"" WI "123456789012" LOC "p-1.svc.id.goog/kubernetes.serviceaccount.uid/" UID_B "\","
        "\"user:alice@example.com\",\"deleted:user:alice@example.com?uid=1\"]},"
        "{\"role\":\"roles/storage.objectAdmin\",\"members\":[\"" KSA_A "\"],"
        "\"condition\":{\"title\":\"b9 only\",\"expression\":"
        "\"resource.name == 'projects/_/buckets/b9'\"}},"
        "{\"role\":\"roles/storage.admin\",\"members\":[\"" KSA_A "\"],"
        "\"condition\":{\"title\":\"needs time\",\"expression\":"
        "\"request.time < timestamp('2030-01-01T00:00:00Z')\"}},"
        "{\"role\":\"roles/container.clusterViewer\",\"members\":[\"" KSA_A "\"]}"
        "]}");
    json_t *bucket = load("{\"bindings\":[{\"role\":\"roles/storage.objectUser\","
                          "\"members\":[\"serviceAccount:p-1.svc.id.goog[ns-a/app]\"]}]}");
    const json_t *pols[] = {bucket, project};
    const char *names[] = {"projects/_/buckets/b1", "projects/p-1"};
    struct wisp_cond_env env = {"projects/_/buckets/b1", "storage.googleapis.com/Bucket",
                                "storage.googleapis.com", WISP_COND_TIME_ABSENT};
    struct wisp_iam_target t = {.resource = "projects/_/buckets/b1", .policies = pols,
                                .n_policies = 2, .env = &env, .policy_names = names};

    /* Granted by the bucket's legacy KSA member; every other storage binding
     * listed with its reason; clusterViewer does not grant the permission
     * and is left out. */
    json_t *ex = wisp_iam_explain(&ksa_a, "storage.objects.get", &t);
    assert_int_equal(json_array_size(ex), 4);
    json_t *e0 = json_array_get(ex, 0);
    assert_string_equal(str(e0, "reason"), "granted");
    assert_true(json_is_true(json_object_get(e0, "granted")));
    assert_string_equal(str(e0, "resource"), "projects/_/buckets/b1");
    assert_string_equal(str(e0, "role"), "roles/storage.objectUser");
    json_t *e1 = json_array_get(ex, 1);
    assert_string_equal(str(e1, "reason"), "no_member_matches");
    assert_string_equal(str(e1, "resource"), "projects/p-1");
    assert_int_equal(json_integer_value(json_object_get(e1, "policy")), 1);
    const char *r = "roles/storage.objectViewer";
    assert_string_equal(str(find_member(ex, r, WI "123456789012" LOC "p-1.svc.id.goog/subject/"
                                               "ns/ns-b"), "reason"), "other_namespace");
    assert_string_equal(str(find_member(ex, r, WI "123456789012" LOC "p-2"), "reason"),
                        "other_pool");
    assert_string_equal(str(find_member(ex, r, WI "555"), "reason"), "other_project_number");
    assert_string_equal(str(find_member(ex, r, WI "123456789012" LOC "p-1.svc.id.goog/subject/"
                                               "ns/ns-a/sa/web"), "reason"), "other_principal");
    assert_string_equal(str(find_member(ex, r, WISET), "reason"), "other_cluster");
    assert_string_equal(str(find_member(ex, r, WI "123456789012" LOC "p-1.svc.id.goog/kub"),
                            "reason"), "other_uid");
    assert_string_equal(str(find_member(ex, r, "user:"), "reason"), "federated_identity");
    assert_string_equal(str(find_member(ex, r, "deleted:"), "reason"), "never_matches");
    json_t *ns = find_member(ex, r, WI "123456789012" LOC "p-1.svc.id.goog/subject/ns/ns-b");
    assert_non_null(strstr(str(ns, "detail"), "ns-b"));
    assert_non_null(strstr(str(ns, "detail"), "ns-a"));
    json_t *e2 = json_array_get(ex, 2);
    assert_string_equal(str(e2, "reason"), "condition_false");
    assert_string_equal(str(json_object_get(e2, "condition"), "title"), "b9 only");
    assert_string_equal(str(json_object_get(e2, "condition"), "result"), "false");
    assert_string_equal(str(find_member(ex, "roles/storage.objectAdmin", KSA_A), "reason"),
                        "matches");
    json_t *e3 = json_array_get(ex, 3);
    assert_string_equal(str(e3, "reason"), "condition_error"); /* no request time */
    assert_false(json_is_true(json_object_get(e3, "granted")));
    json_decref(ex);

    /* A Google user against the same bindings: the workload members are not
     * for it, the user member is someone else. */
    struct wisp_caller bob = {.email = "bob@corp.example"};
    ex = wisp_iam_explain(&bob, "storage.objects.get", &t);
    assert_string_equal(str(find_member(ex, r, "user:"), "reason"), "other_principal");
    assert_string_equal(str(find_member(ex, r, WI "555"), "reason"), "not_federated");
    assert_false(json_is_true(json_object_get(json_array_get(ex, 0), "granted")));
    json_decref(ex);
    /* Anonymous callers, and a user where a service account is needed. */
    ex = wisp_iam_explain(NULL, "storage.objects.get", &t);
    assert_string_equal(str(find_member(ex, r, "user:"), "reason"), "anonymous");
    json_decref(ex);
    struct wisp_caller alice_sa = {.email = "alice@example.com", .is_service_account = 1};
    ex = wisp_iam_explain(&alice_sa, "storage.objects.get", &t);
    assert_string_equal(str(find_member(ex, r, "user:"), "reason"), "service_account_not_user");
    json_decref(ex);
    /* No binding on the permission's roles: an empty array. */
    ex = wisp_iam_explain(&ksa_a, "iam.roles.create", &t);
    assert_int_equal(json_array_size(ex), 0);
    json_decref(ex);
    json_decref(project);
    json_decref(bucket);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(differential), cmocka_unit_test(conditions_indexed),
        cmocka_unit_test(hierarchy),    cmocka_unit_test(keyset_limits),
        cmocka_unit_test(large_policy), cmocka_unit_test(threads),
        cmocka_unit_test(explain),      cmocka_unit_test(cache_vs_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
