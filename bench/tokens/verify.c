/* SPDX-License-Identifier: Apache-2.0 */
/* The in-process side of bench/tokens (a): how many access tokens one core
 * opens per second with wisp_token_open(), the function wispd_authenticate()
 * calls on every request, for the two token shapes APIs see (federated, as
 * STS seals it; minted by generateAccessToken, with its delegation chain),
 * and the same plus wisp_token_principal() as authenticate does. For the
 * cold path it also times a seal, wisp_ksa_verify() (what STS checks) and
 * the two RSA signatures wispd makes from a key PEM (signJwt, signBlob).
 * Usage: verify SECONDS_PER_ROUND ROUNDS; prints tab-separated lines
 * "op\tshape\tns_per_op_median\tns_min\tns_max\ttoken_bytes". */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jose/jose_int.h"
#include "wisp/alloc.h"
#include "wisp/jose.h"
#include "wisp/ksa.h"
#include "wisp/token.h"

#define PN "123456789012"
#define POOL "wisp-bench.svc.id.goog"
#define CLUSTER "https://container.googleapis.com/v1/projects/wisp-bench/locations/us-central1/clusters/prod-1"
#define SCOPES "https://www.googleapis.com/auth/cloud-platform"
#define GSA "app-runner@wisp-bench.iam.gserviceaccount.com"
#define MAX_ROUNDS 32

static double clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One operation under test, run on arg; returns 0 on success. */
typedef int (*op_fn)(void *arg);

struct ctx {
    struct wisp_token_keyring *kr;
    const char *token;
    int64_t now;
    const struct wisp_token_claims *claims;
    const char *ksa_jwt;
    const struct wisp_ksa_key *ksa_key;
    const char *pem;        /* an RSA-2048 private key */
    const json_t *jwt_claims;
};

/* Opens c->token; with principal, also names the principal, which is
 * what wispd_authenticate does without a server (the revocation lookup and
 * the quota-project check need wispd's state and are measured through
 * HTTP instead). */
static int open_token(const struct ctx *c, int principal)
{
    struct wisp_token_claims out;
    const char *why;
    if (wisp_token_open(c->kr, c->token, c->now, &out, &why) != WISP_OK)
        return 1;
    int bad = 0;
    if (principal) {
        char *p = wisp_token_principal(&out);
        bad = p == NULL;
        free(p);
    }
    wisp_token_claims_free(&out);
    return bad;
}

static int op_open(void *arg)
{
    return open_token(arg, 0);
}

static int op_open_principal(void *arg)
{
    return open_token(arg, 1);
}

static int op_seal(void *arg)
{
    struct ctx *c = arg;
    char *t = wisp_token_seal(c->kr, c->claims);
    if (!t)
        return 1;
    wisp_secret_free(t, 0);
    return 0;
}

/* What signJwt (and the cluster issuer's TokenRequest) does per token: an
 * RS256 JWT from the key's PEM. */
static int op_jwt_sign(void *arg)
{
    struct ctx *c = arg;
    char *jwt = wisp_jwt_sign_rs256(c->jwt_claims, "bench-kid", c->pem);
    free(jwt);
    return jwt == NULL;
}

/* What signBlob does: RSASSA-PKCS1-v1_5 SHA-256 from the key's PEM. */
static int op_blob_sign(void *arg)
{
    struct ctx *c = arg;
    unsigned char *sig = NULL;
    size_t n = 0;
    if (wisp_rsa_sign_sha256(c->pem, (const unsigned char *)"hello wisp", 10, &sig, &n) !=
        WISP_OK)
        return 1;
    free(sig);
    return 0;
}

/* The step both of those and every RS256 verify start with today: the key
 * PEM decoded into an EVP_PKEY (a public PEM is first tried as a private
 * one). */
static int op_pem(void *arg)
{
    const char *pem = arg;
    EVP_PKEY *k = wisp__pem_to_pkey(pem);
    EVP_PKEY_free(k);
    return k == NULL;
}

static int op_ksa_verify(void *arg)
{
    struct ctx *c = arg;
    struct wisp_ksa_claims out;
    char why[256];
    if (wisp_ksa_verify(c->ksa_jwt, c->ksa_key, 1, POOL, c->now, &out, why, sizeof(why)) !=
        WISP_OK) {
        fprintf(stderr, "verify: ksa: %s\n", why);
        return 1;
    }
    wisp_ksa_claims_free(&out);
    return 0;
}

/* Runs op for about budget_ns of wall time per round, rounds times; prints
 * the median, min and max CPU ns per operation. CPU time, as `openssl
 * speed` divides by (user time unless -elapsed), so that other load on the
 * machine stretches neither side. Returns nonzero if op ever failed. */
static int measure(const char *name, const char *shape, op_fn op, void *arg, double budget_ns,
                   int rounds, size_t token_bytes)
{
    double v[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        long iters = 0;
        double start = clock_ns(CLOCK_MONOTONIC), cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        double elapsed = 0;
        while (elapsed < budget_ns) {
            for (int k = 0; k < 64; k++, iters++) {
                if (op(arg) != 0) {
                    fprintf(stderr, "verify: %s %s failed\n", name, shape);
                    return 1;
                }
            }
            elapsed = clock_ns(CLOCK_MONOTONIC) - start;
        }
        v[r] = (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / (double)iters;
    }
    qsort(v, (size_t)rounds, sizeof(v[0]), cmp_double);
    printf("%s\t%s\t%.1f\t%.1f\t%.1f\t%zu\n", name, shape, v[rounds / 2], v[0], v[rounds - 1],
           token_bytes);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: verify SECONDS_PER_ROUND ROUNDS\n");
        return 100;
    }
    double budget_ns = atof(argv[1]) * 1e9;
    int rounds = atoi(argv[2]);
    if (budget_ns <= 0 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "verify: bad arguments\n");
        return 100;
    }
    int rc = 1;
    int64_t now = (int64_t)time(NULL);
    struct wisp_token_keyring *kr = wisp_token_keyring_new();
    unsigned char key[WISP_TOKEN_KEY_LEN];
    char *fed = NULL, *minted = NULL, *pem = NULL, *pub = NULL, *jwt = NULL;
    if (RAND_bytes(key, sizeof(key)) != 1)
        goto out;
    wisp_token_keyring_add(kr, 7, key);

    /* A federated token as STS seals it, with a quota project as a client
     * sending x-goog-user-project would have it charged. */
    struct wisp_token_claims fed_c = {
        .iat = now, .exp = now + 3600, .project_number = PN, .pool = POOL, .ns = "team-a",
        .ksa = "app-runner", .ksa_uid = "6f0d3c1e-8a4b-4c2d-9e7f-0123456789ab",
        .cluster = CLUSTER, .scopes = SCOPES, .quota_project = "wisp-bench"};
    /* A token generateAccessToken minted for a GSA on behalf of that KSA. */
    const char *chain =
        "[{\"caller\":{\"pn\":\"" PN "\",\"pool\":\"" POOL "\",\"ns\":\"team-a\",\"ksa\":"
        "\"app-runner\",\"uid\":\"6f0d3c1e-8a4b-4c2d-9e7f-0123456789ab\",\"cluster\":\"" CLUSTER
        "\"},\"delegates\":[],\"target\":\"" GSA "\"}]";
    struct wisp_token_claims minted_c = {
        .iat = now, .exp = now + 3600, .is_service_account = 1, .email = GSA, .scopes = SCOPES,
        .quota_project = "wisp-bench", .chain = (char *)chain};
    fed = wisp_token_seal(kr, &fed_c);
    minted = wisp_token_seal(kr, &minted_c);
    if (!fed || !minted)
        goto out;

    /* A KSA token as the cluster's issuer signs it (bound to a pod). */
    pem = wisp_rsa_generate_pem();
    pub = pem ? wisp_rsa_public_pem(pem) : NULL;
    struct wisp_ksa_claims kc = {
        .iss = CLUSTER, .aud = POOL, .iat = now, .nbf = now, .exp = now + 3600, .ns = "team-a",
        .sa = "app-runner", .sa_uid = "6f0d3c1e-8a4b-4c2d-9e7f-0123456789ab",
        .pod = "app-7d9f8c-x2x4q", .pod_uid = "0b7c2d9e-1f3a-4b5c-8d6e-fedcba987654",
        .node = "gke-prod-1-default-pool-1a2b3c4d-wxyz",
        .node_uid = "5e4d3c2b-1a09-4f8e-a7d6-c5b4a3928170", .jti = "bench-1"};
    jwt = pub ? wisp_ksa_sign(&kc, "bench-kid", pem) : NULL;
    if (!jwt)
        goto out;
    struct wisp_ksa_key kk = {"bench-kid", CLUSTER, pub};

    json_t *jc = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", CLUSTER, "sub",
                           "system:serviceaccount:team-a:app-runner", "aud", POOL, "iat",
                           (json_int_t)now, "exp", (json_int_t)(now + 3600));
    struct ctx c = {.kr = kr, .now = now, .ksa_jwt = jwt, .ksa_key = &kk, .pem = pem,
                    .jwt_claims = jc};
    int bad = 0;
    c.token = fed;
    bad |= measure("open", "federated", op_open, &c, budget_ns, rounds, strlen(fed));
    bad |= measure("authn", "federated", op_open_principal, &c, budget_ns, rounds, strlen(fed));
    c.token = minted;
    bad |= measure("open", "minted", op_open, &c, budget_ns, rounds, strlen(minted));
    bad |= measure("authn", "minted", op_open_principal, &c, budget_ns, rounds, strlen(minted));
    c.claims = &fed_c;
    bad |= measure("seal", "federated", op_seal, &c, budget_ns, rounds, strlen(fed));
    bad |= measure("ksa_verify", "rs256", op_ksa_verify, &c, budget_ns, rounds, strlen(jwt));
    bad |= measure("jwt_sign", "rs256", op_jwt_sign, &c, budget_ns, rounds, strlen(jwt));
    bad |= measure("blob_sign", "rsa2048", op_blob_sign, &c, budget_ns, rounds, 256);
    bad |= measure("pem_decode", "private", op_pem, pem, budget_ns, rounds, strlen(pem));
    bad |= measure("pem_decode", "public", op_pem, pub, budget_ns, rounds, strlen(pub));
    json_decref(jc);
    rc = bad;
out:
    if (rc)
        fprintf(stderr, "verify: setup or a measured operation failed\n");
    if (fed)
        wisp_secret_free(fed, 0);
    if (minted)
        wisp_secret_free(minted, 0);
    if (pem)
        wisp_secret_free(pem, 0);
    free(pub);
    free(jwt);
    wisp_token_keyring_free(kr);
    return rc;
}
