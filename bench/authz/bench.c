/* SPDX-License-Identifier: Apache-2.0 */
/* The wisp side of bench/authz: builds a policy set of N (role, member)
 * pairs spread over one organization, one project and many bucket policies,
 * writes it as JSON for the Cedar side (cedar.js) to translate, and times
 * wisp_authorize() on one allowed and one denied request: with prebuilt
 * indexes (how wispd decides) and with the linear walk over the JSON.
 * Usage: bench OUT_DIR N [N...]; prints tab-separated result lines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/iam.h"

#define PN "123456789012"
#define POOL "p-1.svc.id.goog"
#define PFX "iam.googleapis.com/projects/" PN "/locations/global/workloadIdentityPools/" POOL
#define CLUSTER_URL(c) "https://container.googleapis.com/v1/projects/p-1/locations/us-central1/clusters/" c
#define TARGET_BUCKET "projects/_/buckets/bk-0"
#define TARGET_UID "e6a8680e-5c1a-4b5e-9d0b-0123456789ab"
#define PAIRS_PER_BUCKET 100

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const char *const roles[] = {
    "roles/storage.objectViewer", "roles/storage.objectCreator", "roles/storage.objectAdmin",
    "roles/container.developer",  "roles/viewer",                "roles/iam.workloadIdentityUser",
    "roles/artifactregistry.reader"};
#define N_ROLES (sizeof(roles) / sizeof(roles[0]))

/* A policy under construction: bindings keyed by role + condition title so
 * that pairs with the same role and condition share a binding, as in the
 * stored (normalized) form. */
struct pol {
    json_t *bindings; /* array */
    json_t *by_key;   /* "role|title" -> binding (borrowed from bindings) */
    size_t n_pairs;
};

static void pol_init(struct pol *p)
{
    p->bindings = json_array();
    p->by_key = json_object();
    p->n_pairs = 0;
}

static void pol_add(struct pol *p, const char *role, const char *member, const char *cond_prefix)
{
    char key[512];
    snprintf(key, sizeof(key), "%s|%s", role, cond_prefix ? cond_prefix : "");
    json_t *b = json_object_get(p->by_key, key);
    if (!b) {
        b = json_pack("{s:s, s:[]}", "role", role, "members");
        if (cond_prefix) {
            char expr[300];
            snprintf(expr, sizeof(expr), "resource.name.startsWith('%s')", cond_prefix);
            json_object_set_new(b, "condition",
                                json_pack("{s:s, s:s}", "title", cond_prefix, "expression", expr));
        }
        json_array_append_new(p->bindings, b);
        json_object_set(p->by_key, key, b);
    }
    json_array_append_new(json_object_get(b, "members"), json_string(member));
    p->n_pairs++;
}

static json_t *pol_done(struct pol *p)
{
    json_decref(p->by_key);
    return json_pack("{s:o}", "bindings", p->bindings);
}

/* One random member of the realistic mix: GKE principals in many
 * namespaces, namespace and cluster sets, users, service accounts (both
 * KSA spellings), groups, UID principals. None of them is the target
 * caller (whose namespace is "ns-target"). */
static void random_member(char *buf, size_t len, size_t n)
{
    size_t spread = n / 4 + 1; /* namespaces and accounts grow with the set */
    unsigned long k = (unsigned long)(rnd() % spread), j = (unsigned long)(rnd() % 4);
    unsigned r = (unsigned)(rnd() % 100);
    if (r < 30)
        snprintf(buf, len, "principal://" PFX "/subject/ns/ns-%lu/sa/sa-%lu", k, j);
    else if (r < 45)
        snprintf(buf, len, "principalSet://" PFX "/namespace/ns-%lu", k);
    else if (r < 50)
        snprintf(buf, len, "principalSet://" PFX "/kubernetes.cluster/" CLUSTER_URL("c-%lu"),
                 k % 50);
    else if (r < 70)
        snprintf(buf, len, "user:u%lu@corp.example", k);
    else if (r < 85)
        snprintf(buf, len, "serviceAccount:sa%lu@p-1.iam.gserviceaccount.com", k);
    else if (r < 90)
        snprintf(buf, len, "serviceAccount:" POOL "[ns-%lu/sa-%lu]", k, j);
    else if (r < 97)
        snprintf(buf, len, "group:g%lu@corp.example", k);
    else
        snprintf(buf, len, "principal://" PFX "/kubernetes.serviceaccount.uid/%08lx-0000-4000-8000-%012lx",
                 k, j);
}

/* Fills p with n random pairs; about 2 % carry a condition. */
static void fill(struct pol *p, size_t n, size_t total)
{
    for (size_t i = 0; i < n; i++) {
        char m[400], prefix[64];
        random_member(m, sizeof(m), total);
        const char *role = roles[rnd() % N_ROLES], *cond = NULL;
        /* Google refuses conditions on basic roles (roles/viewer). */
        if (rnd() % 50 == 0 && strcmp(role, "roles/viewer") != 0) {
            snprintf(prefix, sizeof(prefix), "projects/_/buckets/bk-%lu",
                     (unsigned long)(rnd() % 8 + 1));
            cond = prefix;
        }
        pol_add(p, role, m, cond);
    }
}

struct set {
    size_t n;
    json_t *org, *project, *target; /* the target bucket's chain */
    json_t *buckets;                /* [{"name","policy"}], the target first */
};

/* The target caller (GKE KSA ns-target/app) is named by 5 of the N pairs:
 *   project: objectViewer via its principal:// subject (grants the allowed
 *            request), artifactregistry.reader via the pool set;
 *   bucket:  container.developer via the namespace set, objectAdmin under a
 *            condition that is false for the target bucket (the denied
 *            request reaches it and evaluates it);
 *   project: workloadIdentityUser via the legacy spelling. */
static void build_set(struct set *s, size_t n)
{
    struct pol org, project, bucket;
    size_t fixed = 5, org_n = 2;
    size_t rest = n > fixed + org_n ? n - fixed - org_n : 0;
    size_t project_n = rest * 2 / 5, buckets_n = rest - project_n;
    size_t n_buckets = buckets_n / PAIRS_PER_BUCKET + 1;
    s->n = n;
    s->buckets = json_array();

    pol_init(&org);
    pol_add(&org, "roles/viewer", "group:org-admins@corp.example", NULL);
    pol_add(&org, "roles/storage.admin", "user:root@corp.example", NULL);
    s->org = pol_done(&org);

    pol_init(&project);
    fill(&project, project_n / 2, n);
    pol_add(&project, "roles/storage.objectViewer", "principal://" PFX "/subject/ns/ns-target/sa/app",
            NULL);
    pol_add(&project, "roles/artifactregistry.reader", "principalSet://" PFX "/*", NULL);
    pol_add(&project, "roles/iam.workloadIdentityUser", "serviceAccount:" POOL "[ns-target/app]",
            NULL);
    fill(&project, project_n - project_n / 2, n);
    s->project = pol_done(&project);

    for (size_t b = 0; b < n_buckets; b++) {
        size_t share = buckets_n / n_buckets + (b < buckets_n % n_buckets);
        pol_init(&bucket);
        fill(&bucket, share / 2, n);
        if (b == 0) {
            pol_add(&bucket, "roles/container.developer",
                    "principalSet://" PFX "/namespace/ns-target", NULL);
            pol_add(&bucket, "roles/storage.objectAdmin",
                    "principal://" PFX "/subject/ns/ns-target/sa/app", "projects/_/buckets/other-");
        }
        fill(&bucket, share - share / 2, n);
        char name[64];
        snprintf(name, sizeof(name), "projects/_/buckets/bk-%zu", b);
        json_t *pol = pol_done(&bucket);
        if (b == 0)
            s->target = pol;
        json_array_append_new(s->buckets, json_pack("{s:s, s:o}", "name", name, "policy", pol));
    }
}

static const struct wisp_caller target_caller = {.project_number = PN,
                                                 .pool = POOL,
                                                 .ns = "ns-target",
                                                 .ksa = "app",
                                                 .ksa_uid = TARGET_UID,
                                                 .cluster_url = CLUSTER_URL("c-target")};

struct request {
    const char *name;
    const char *permission;
    int expect;
};
static const struct request requests[] = {
    {"allowed", "storage.objects.get", 1},
    {"denied", "storage.objects.delete", 0},
};

/* Writes the set and the requests for cedar.js. The caller is described by
 * the member spellings it matches, which is what a Cedar deployment would
 * put in the principal's ancestors. */
static int write_set(const struct set *s, const char *dir)
{
    json_t *caller = json_pack(
        "{s:s, s:[s,s,s,s,s]}", "principal", "principal://" PFX "/subject/ns/ns-target/sa/app",
        "parents", "serviceAccount:" POOL "[ns-target/app]",
        "principal://" PFX "/kubernetes.serviceaccount.uid/" TARGET_UID,
        "principalSet://" PFX "/namespace/ns-target",
        "principalSet://" PFX "/kubernetes.cluster/" CLUSTER_URL("c-target"),
        "principalSet://" PFX "/*");
    json_t *reqs = json_array();
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        json_t *grantors = json_array();
        for (size_t r = 0; r < N_ROLES; r++) {
            if (wisp_iam_role_grants(roles[r], requests[i].permission))
                json_array_append_new(grantors, json_string(roles[r]));
        }
        /* roles outside the random mix that the fixed pairs use */
        if (wisp_iam_role_grants("roles/storage.admin", requests[i].permission))
            json_array_append_new(grantors, json_string("roles/storage.admin"));
        json_array_append_new(reqs, json_pack("{s:s, s:s, s:b, s:o}", "name", requests[i].name,
                                              "permission", requests[i].permission, "expect",
                                              requests[i].expect, "roles", grantors));
    }
    json_t *doc = json_pack("{s:I, s:s, s:s, s:s, s:O, s:O, s:O, s:o, s:o}", "n",
                            (json_int_t)s->n, "org", "organizations/42", "project",
                            "projects/p-1", "target", TARGET_BUCKET, "org_policy", s->org,
                            "project_policy", s->project, "buckets", s->buckets, "caller",
                            caller, "requests", reqs);
    char path[4096];
    snprintf(path, sizeof(path), "%s/set-%zu.json", dir, s->n);
    int rc = json_dump_file(doc, path, JSON_COMPACT);
    json_decref(doc);
    if (rc != 0)
        fprintf(stderr, "bench: cannot write %s\n", path);
    return rc;
}

/* Times decisions until at least min_ns have passed and min_iters were run
 * (or max_iters): returns ns per decision. */
static double time_decisions(const struct wisp_iam_target *t, const struct request *rq,
                             double min_ns, long min_iters, long max_iters, long *iters_out)
{
    char why[256];
    long iters = 0;
    volatile int sink = 0;
    double start = now_ns(), elapsed = 0;
    while (iters < max_iters && (iters < min_iters || elapsed < min_ns)) {
        for (int k = 0; k < 64 && iters < max_iters; k++, iters++)
            sink += wisp_authorize(&target_caller, rq->permission, t, why, sizeof(why));
        elapsed = now_ns() - start;
    }
    (void)sink;
    *iters_out = iters;
    return elapsed / (double)iters;
}

/* One size: its set, the indexes of the target's chain, the two targets. */
struct sized {
    struct set s;
    const json_t *chain[3];
    struct wisp_iam_index *ix[3];
    struct wisp_iam_target indexed, linear;
    double samples[2][64]; /* per request, per round: ns per decision */
};

static const char *const chain_names[] = {TARGET_BUCKET, "projects/p-1", "organizations/42"};
static const struct wisp_cond_env bench_env = {TARGET_BUCKET, "storage.googleapis.com/Bucket",
                                               "storage.googleapis.com", 1800000000000LL};

static int prepare(struct sized *z, size_t n, const char *dir)
{
    build_set(&z->s, n);
    if (write_set(&z->s, dir) != 0)
        return 1;
    z->chain[0] = z->s.target;
    z->chain[1] = z->s.project;
    z->chain[2] = z->s.org;
    double t0 = now_ns();
    for (int i = 0; i < 3; i++)
        z->ix[i] = wisp_iam_index_build(z->chain[i]);
    double build_ms = (now_ns() - t0) / 1e6;
    size_t bytes = 0, chain_pairs = 0;
    for (int i = 0; i < 3; i++) {
        struct wisp_iam_index_stats st;
        wisp_iam_index_stats(z->ix[i], &st);
        bytes += st.bytes;
        chain_pairs += st.n_postings;
    }
    printf("build\t%zu\t%.2f\t%zu\t%zu\t%zu\n", n, build_ms, bytes, chain_pairs,
           json_array_size(z->s.buckets));
    z->indexed = (struct wisp_iam_target){.resource = TARGET_BUCKET,
                                          .policies = z->chain,
                                          .n_policies = 3,
                                          .env = &bench_env,
                                          .indexes = (const struct wisp_iam_index **)z->ix,
                                          .policy_names = chain_names};
    z->linear = z->indexed;
    z->linear.indexes = NULL;
    int rc = 0;
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        const struct request *rq = &requests[i];
        char why[256];
        int a = wisp_authorize(&target_caller, rq->permission, &z->indexed, why, sizeof(why));
        int b = wisp_authorize(&target_caller, rq->permission, &z->linear, NULL, 0);
        if (a != rq->expect || b != rq->expect) {
            fprintf(stderr, "bench: %s at %zu: index %d, linear %d, expected %d (%s)\n",
                    rq->name, n, a, b, rq->expect, why);
            rc = 1;
        }
        /* Today's linear walk, for scale: measured once, bounded by time. */
        long iters;
        double ns = time_decisions(&z->linear, rq, 3e8, 3, 10000000, &iters);
        printf("linear\t%zu\t%s\t%.1f\t%ld\n", n, rq->name, ns, iters);
        fflush(stdout);
    }
    return rc;
}

static void release(struct sized *z)
{
    for (int i = 0; i < 3; i++)
        wisp_iam_index_free(z->ix[i]);
    json_decref(z->s.org);
    json_decref(z->s.project);
    json_decref(z->s.buckets);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench OUT_DIR N [N...]  (env ROUNDS, default 7)\n");
        return 100;
    }
    const char *r_env = getenv("ROUNDS");
    int rounds = r_env ? atoi(r_env) : 7;
    if (rounds < 1 || rounds > 64)
        rounds = 7;
    size_t n_sizes = (size_t)argc - 2;
    struct sized *zs = wisp_xcalloc(n_sizes, sizeof(*zs));
    int rc = 0;
    for (size_t i = 0; i < n_sizes; i++) {
        char *end;
        unsigned long n = strtoul(argv[i + 2], &end, 10);
        if (*end || n < 10) {
            fprintf(stderr, "bench: bad size '%s' (at least 10)\n", argv[i + 2]);
            return 100;
        }
        rc |= prepare(&zs[i], n, argv[1]);
    }
    /* The indexed decisions: every size in every round, interleaved, so a
     * burst of load from something else on the machine hits all sizes
     * alike; the median over rounds is reported. */
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n_sizes; i++) {
            for (size_t q = 0; q < sizeof(requests) / sizeof(requests[0]); q++) {
                long iters;
                time_decisions(&zs[i].indexed, &requests[q], 1e7, 1000, 100000000, &iters);
                zs[i].samples[q][r] =
                    time_decisions(&zs[i].indexed, &requests[q], 1e8, 10000, 100000000, &iters);
            }
        }
    }
    for (size_t i = 0; i < n_sizes; i++) {
        for (size_t q = 0; q < sizeof(requests) / sizeof(requests[0]); q++) {
            double *v = zs[i].samples[q];
            qsort(v, (size_t)rounds, sizeof(*v), cmp_double);
            printf("wisp\t%zu\t%s\t%.1f\t%.1f\t%.1f\n", zs[i].s.n, requests[q].name,
                   v[rounds / 2], v[0], v[rounds - 1]);
        }
        release(&zs[i]);
    }
    free(zs);
    return rc;
}
