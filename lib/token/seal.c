/* SPDX-License-Identifier: Apache-2.0 */
/* Sealed access tokens (include/wisp/token.h).
 *   token     = "ya29.w1." base64url(kid:4 | nonce:12 | ciphertext | tag:16)
 *   plaintext = 2:1 | iat:8 | exp:8 | flags:1 | jti:16 | 10 × (len:2 | bytes)
 * (version 1, still opened: no jti, 9 strings, no chain). AES-256-GCM
 * authenticates everything; the kid and the "w1" label are bound as
 * additional data so a token cannot be replayed under another key id. The
 * ring is shared by worker threads and replaced while they use it, so a
 * read-write lock guards it. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/buf.h"
#include "wisp/token.h"

#define PREFIX "ya29.w1."
#define NONCE_LEN 12
#define TAG_LEN 16
#define MAX_TOKEN 4096
#define N_STR 10   /* strings of version 2; version 1 has the first 9 */
#define HDR_V1 18  /* version, iat, exp, flags */
#define HDR_V2 (HDR_V1 + WISP_TOKEN_JTI_LEN)

struct wisp_token_keyring {
    pthread_rwlock_t lock;
    struct wisp_token_key *keys;
    size_t n;
};

struct wisp_token_keyring *wisp_token_keyring_new(void)
{
    struct wisp_token_keyring *kr = wisp_xcalloc(1, sizeof(*kr));
    pthread_rwlock_init(&kr->lock, NULL);
    return kr;
}

static void free_keys(struct wisp_token_key *keys, size_t n)
{
    if (keys)
        wisp_secret_free(keys, n * sizeof(*keys));
}

void wisp_token_keyring_free(struct wisp_token_keyring *kr)
{
    if (!kr)
        return;
    free_keys(kr->keys, kr->n);
    pthread_rwlock_destroy(&kr->lock);
    free(kr);
}

void wisp_token_keyring_replace(struct wisp_token_keyring *kr, const struct wisp_token_key *keys,
                                size_t n)
{
    struct wisp_token_key *copy = n ? wisp_xmalloc(n * sizeof(*copy)) : NULL;
    if (n)
        memcpy(copy, keys, n * sizeof(*copy));
    pthread_rwlock_wrlock(&kr->lock);
    struct wisp_token_key *old = kr->keys;
    size_t old_n = kr->n;
    kr->keys = copy;
    kr->n = n;
    pthread_rwlock_unlock(&kr->lock);
    free_keys(old, old_n);
}

void wisp_token_keyring_add(struct wisp_token_keyring *kr, uint32_t kid,
                            const unsigned char key[WISP_TOKEN_KEY_LEN])
{
    pthread_rwlock_wrlock(&kr->lock);
    kr->keys = wisp_xrealloc(kr->keys, (kr->n + 1) * sizeof(*kr->keys));
    kr->keys[kr->n] = (struct wisp_token_key){.kid = kid};
    memcpy(kr->keys[kr->n].key, key, WISP_TOKEN_KEY_LEN);
    kr->n++;
    pthread_rwlock_unlock(&kr->lock);
}

size_t wisp_token_keyring_size(const struct wisp_token_keyring *kr)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kr->lock);
    size_t n = kr->n;
    pthread_rwlock_unlock((pthread_rwlock_t *)&kr->lock);
    return n;
}

void wisp_token_rotation_plan(const struct wisp_token_key_age *keys, size_t n, int64_t now,
                              int64_t interval, int *make_new, int *drop)
{
    size_t newest = 0;
    for (size_t i = 0; i < n; i++) {
        drop[i] = 0;
        if (keys[i].kid > keys[newest].kid)
            newest = i;
    }
    *make_new = !n || keys[newest].created + interval <= now;
    for (size_t i = 0; i < n; i++) {
        /* Key i sealed until the next larger kid took over; tokens it
         * sealed live at most the longest lifetime after that. */
        int64_t until = -1;
        for (size_t j = 0; j < n; j++) {
            if (keys[j].kid > keys[i].kid && keys[j].not_before <= now &&
                (until < 0 || keys[j].not_before < until))
                until = keys[j].not_before;
        }
        if (until >= 0 && i != newest &&
            now >= until + WISP_TOKEN_MAX_LIFETIME + WISP_TOKEN_LEEWAY)
            drop[i] = 1;
    }
}

void wisp_token_claims_free(struct wisp_token_claims *c)
{
    char **s[N_STR] = {&c->email, &c->project_number, &c->pool,   &c->ns,
                       &c->ksa,   &c->ksa_uid,        &c->cluster, &c->scopes,
                       &c->quota_project, &c->chain};
    for (int i = 0; i < N_STR; i++)
        WISP_FREE(*s[i]);
}

static void put_u64(unsigned char *p, int64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static int64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

/* AES-256-GCM is fetched once, and each thread keeps one cipher context
 * that it re-keys per token: a fresh context and an implicit fetch cost more
 * than opening a token does. The context is freed when its thread exits. */
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static pthread_key_t gcm_key;
static EVP_CIPHER *gcm_cipher;

static void gcm_ctx_free(void *ctx)
{
    EVP_CIPHER_CTX_free(ctx);
}

static void gcm_setup(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (pthread_key_create(&gcm_key, gcm_ctx_free) != 0) {
        EVP_CIPHER_free(gcm_cipher);
        gcm_cipher = NULL;
    }
}

/* This thread's context, with the cipher set (its key and IV are not). */
static EVP_CIPHER_CTX *gcm_ctx(void)
{
    pthread_once(&gcm_once, gcm_setup);
    if (!gcm_cipher)
        return NULL;
    EVP_CIPHER_CTX *ctx = pthread_getspecific(gcm_key);
    if (ctx)
        return ctx;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_CipherInit_ex2(ctx, gcm_cipher, NULL, NULL, 1, NULL) != 1 ||
        pthread_setspecific(gcm_key, ctx) != 0) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int gcm(int enc, const unsigned char *key, const unsigned char *nonce,
               const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
               unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = gcm_ctx();
    int n;
    /* The 12-byte nonce is GCM's default IV length. Re-initialising with
     * a key and IV resets the context's whole GCM state. */
    if (!ctx || EVP_CipherInit_ex2(ctx, NULL, key, nonce, enc, NULL) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
        return 0;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
        return 0;
    if (EVP_CipherFinal_ex(ctx, out + n, &n) != 1)
        return 0;
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        return 0;
    return 1;
}

/* Decodes unpadded (or '='-padded) base64url s of length len into out
 * (room for len * 3 / 4 bytes), straight from the token text; returns the
 * byte count or -1. Bits past the last whole byte are ignored, as
 * wisp_b64url_decode() does. */
static long b64url_decode_into(const char *s, size_t len, unsigned char *out)
{
    while (len && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
              : c >= '0' && c <= '9' ? c - '0' + 52 : c == '-' ? 62 : c == '_' ? 63 : -1;
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return n;
}

static void make_aad(unsigned char aad[7], const unsigned char kid[4])
{
    memcpy(aad, "w1:", 3);
    memcpy(aad + 3, kid, 4);
}

char *wisp_token_principal(const struct wisp_token_claims *c)
{
    if (c->email)
        return wisp_xasprintf("%s:%s", c->is_service_account ? "serviceAccount" : "user",
                              c->email);
    return wisp_xasprintf("principal://iam.googleapis.com/projects/%s/locations/global/"
                          "workloadIdentityPools/%s/subject/ns/%s/sa/%s",
                          c->project_number ? c->project_number : "",
                          c->pool ? c->pool : "", c->ns ? c->ns : "", c->ksa ? c->ksa : "");
}

/* The key that seals at time t: the largest kid whose not_before has come
 * (or, if none has, the earliest to come). Caller holds the lock. */
static const struct wisp_token_key *sealing_key(const struct wisp_token_keyring *kr, int64_t t)
{
    const struct wisp_token_key *best = NULL, *first = NULL;
    for (size_t i = 0; i < kr->n; i++) {
        const struct wisp_token_key *k = &kr->keys[i];
        if (k->not_before <= t && (!best || k->kid > best->kid))
            best = k;
        if (!first || k->not_before < first->not_before)
            first = k;
    }
    return best ? best : first;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char ch = s[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)(v << 4);
        else
            out[i / 2] |= (unsigned char)v;
    }
    return s[2 * n] == '\0' ? 0 : -1;
}

char *wisp_token_seal(const struct wisp_token_keyring *kr, const struct wisp_token_claims *c)
{
    pthread_rwlock_t *lock = (pthread_rwlock_t *)&kr->lock;
    pthread_rwlock_rdlock(lock);
    const struct wisp_token_key *k = sealing_key(kr, c->iat);
    const char *s[N_STR] = {c->email,   c->project_number, c->pool,   c->ns,
                            c->ksa,     c->ksa_uid,        c->cluster, c->scopes,
                            c->quota_project, c->chain};
    struct wisp_buf pt;
    wisp_buf_init(&pt, MAX_TOKEN);
    unsigned char hdr[HDR_V2];
    /* The id (when the caller brings none) and the nonce, drawn in one call:
     * each RAND_bytes call costs more than the bytes it returns. */
    unsigned char rnd[WISP_TOKEN_JTI_LEN + NONCE_LEN];
    char *tok = NULL;
    unsigned char *raw = NULL;
    if (!k || RAND_bytes(rnd, sizeof(rnd)) != 1)
        goto out;
    hdr[0] = 2;
    put_u64(hdr + 1, c->iat);
    put_u64(hdr + 9, c->exp);
    hdr[17] = c->is_service_account ? 1 : 0;
    if (!c->jti[0])
        memcpy(hdr + HDR_V1, rnd, WISP_TOKEN_JTI_LEN);
    else if (unhex(c->jti, hdr + HDR_V1, WISP_TOKEN_JTI_LEN))
        goto out;
    if (wisp_buf_append(&pt, hdr, sizeof(hdr)))
        goto out;
    for (int i = 0; i < N_STR; i++) {
        size_t len = s[i] ? strlen(s[i]) : 0;
        unsigned char l[2] = {(unsigned char)(len >> 8), (unsigned char)len};
        if (len > 0xffff || wisp_buf_append(&pt, l, 2) || wisp_buf_append(&pt, s[i], len))
            goto out;
    }
    size_t raw_len = 4 + NONCE_LEN + pt.len + TAG_LEN;
    raw = wisp_xmalloc(raw_len);
    raw[0] = (unsigned char)(k->kid >> 24);
    raw[1] = (unsigned char)(k->kid >> 16);
    raw[2] = (unsigned char)(k->kid >> 8);
    raw[3] = (unsigned char)k->kid;
    unsigned char aad[7];
    make_aad(aad, raw);
    memcpy(raw + 4, rnd + WISP_TOKEN_JTI_LEN, NONCE_LEN);
    if (gcm(1, k->key, raw + 4, aad, sizeof(aad), (unsigned char *)pt.data, pt.len,
            raw + 4 + NONCE_LEN, raw + 4 + NONCE_LEN + pt.len)) {
        char *b = wisp_b64url_encode(raw, raw_len);
        tok = wisp_xasprintf(PREFIX "%s", b);
        free(b);
    }
out:
    pthread_rwlock_unlock(lock);
    free(raw);
    if (pt.data)
        wisp_secret_free(pt.data, pt.len + 1);
    return tok;
}

enum wisp_err wisp_token_open(const struct wisp_token_keyring *kr, const char *token, int64_t now,
                              struct wisp_token_claims *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    size_t plen = strlen(PREFIX);
    size_t tlen = strnlen(token, MAX_TOKEN * 2);
    if (tlen <= plen || tlen >= MAX_TOKEN * 2 || strncmp(token, PREFIX, plen) != 0) {
        *why = "malformed";
        return WISP_EUNAUTH;
    }
    /* The token is at most 2 * MAX_TOKEN characters, so both buffers are
     * bounded; the plaintext is wiped before return. */
    unsigned char raw[MAX_TOKEN * 3 / 2], pt[MAX_TOKEN * 3 / 2];
    long dn = b64url_decode_into(token + plen, tlen - plen, raw);
    size_t n = dn < 0 ? 0 : (size_t)dn, ct_len = 0;
    enum wisp_err err = WISP_EUNAUTH;
    pthread_rwlock_t *lock = (pthread_rwlock_t *)&kr->lock;
    pthread_rwlock_rdlock(lock);
    *why = "malformed";
    if (dn < 0 || n < 4 + NONCE_LEN + HDR_V1 + 2 * (N_STR - 1) + TAG_LEN)
        goto out;
    uint32_t kid = ((uint32_t)raw[0] << 24) | ((uint32_t)raw[1] << 16) |
                   ((uint32_t)raw[2] << 8) | raw[3];
    const struct wisp_token_key *k = NULL;
    for (size_t i = 0; i < kr->n; i++) {
        if (kr->keys[i].kid == kid)
            k = &kr->keys[i];
    }
    if (!k) {
        *why = "unknown key";
        goto out;
    }
    ct_len = n - 4 - NONCE_LEN - TAG_LEN;
    unsigned char aad[7];
    make_aad(aad, raw);
    if (!gcm(0, k->key, raw + 4, aad, sizeof(aad), raw + 4 + NONCE_LEN, ct_len, pt,
             raw + 4 + NONCE_LEN + ct_len)) {
        *why = "bad seal";
        goto out;
    }
    int v2 = pt[0] == 2;
    size_t pos = v2 ? HDR_V2 : HDR_V1;
    int n_str = v2 ? N_STR : N_STR - 1;
    if ((pt[0] != 1 && !v2) || pos > ct_len)
        goto out;
    out->iat = get_u64(pt + 1);
    out->exp = get_u64(pt + 9);
    out->is_service_account = pt[17] == 1;
    if (v2)
        hex(pt + HDR_V1, WISP_TOKEN_JTI_LEN, out->jti);
    char **s[N_STR] = {&out->email,   &out->project_number, &out->pool,   &out->ns,
                       &out->ksa,     &out->ksa_uid,        &out->cluster, &out->scopes,
                       &out->quota_project, &out->chain};
    for (int i = 0; i < n_str; i++) {
        if (pos + 2 > ct_len)
            goto bad;
        size_t len = ((size_t)pt[pos] << 8) | pt[pos + 1];
        pos += 2;
        if (pos + len > ct_len)
            goto bad;
        if (len)
            *s[i] = wisp_xstrndup((const char *)pt + pos, len);
        pos += len;
    }
    if (pos != ct_len)
        goto bad;
    if (now >= out->exp) {
        *why = "expired";
        goto bad;
    }
    err = WISP_OK;
    *why = NULL;
    goto out;
bad:
    wisp_token_claims_free(out);
out:
    pthread_rwlock_unlock(lock);
    if (ct_len)
        OPENSSL_cleanse(pt, ct_len);
    return err;
}
