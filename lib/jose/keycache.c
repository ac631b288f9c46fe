/* SPDX-License-Identifier: Apache-2.0 */
/* Decoded keys by the SHA-256 of their PEM text, in two forms: OpenSSL's
 * EVP_PKEY (raw RSA signatures) and cjose's JWK (JWS). Decoding a PEM costs
 * more than the RSA-2048 signature made with it (and ~40 verifies), and
 * wispd signs and verifies with the same few keys over and over, so the
 * last few decoded keys are kept. One mutex guards the table: a lookup is
 * a hash and a short scan, small beside the RSA operation that follows. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "jose/jose_int.h"

#define CACHE_SLOTS 64

/* How one form of decoded key is made and reference-counted. */
struct form {
    void *(*decode)(const char *pem);
    void (*retain)(void *obj);
    void (*release)(void *obj); /* the last release clears private key material */
};

struct slot {
    unsigned char digest[32];
    const struct form *form;
    void *obj;     /* one reference held by the cache; NULL if free */
    uint64_t used; /* tick of the last hit, for LRU */
};

static struct {
    pthread_mutex_t mu;
    struct slot slots[CACHE_SLOTS];
    uint64_t tick;
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct slot *find(const struct form *f, const unsigned char digest[32])
{
    for (int i = 0; i < CACHE_SLOTS; i++) {
        struct slot *s = &cache.slots[i];
        if (s->obj && s->form == f && memcmp(s->digest, digest, 32) == 0)
            return s;
    }
    return NULL;
}

/* SHA-256 fetched once: EVP_sha256() makes every EVP_Digest look the
 * algorithm up in the provider store again, under its lock, which costs
 * several times the hash of a PEM when worker threads look keys up at once.
 * Kept for the life of the process. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* The caller's own reference to pem decoded in form f, or NULL. */
static void *cached(const struct form *f, const char *pem)
{
    unsigned char digest[32];
    unsigned int dlen = 0;
    void *hit = NULL, *evicted = NULL, *obj;
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256 || EVP_Digest(pem, strlen(pem), digest, &dlen, sha256, NULL) != 1 || dlen != 32)
        return NULL;
    pthread_mutex_lock(&cache.mu);
    struct slot *s = find(f, digest);
    if (s) {
        s->used = ++cache.tick;
        f->retain(s->obj);
        hit = s->obj;
    }
    pthread_mutex_unlock(&cache.mu);
    if (hit)
        return hit;
    /* Decoded outside the lock; two threads missing on one key both decode
     * it, and the second insert finds the first's entry and keeps it. */
    obj = f->decode(pem);
    if (!obj)
        return NULL;
    pthread_mutex_lock(&cache.mu);
    if (!find(f, digest)) {
        struct slot *victim = &cache.slots[0];
        for (int i = 0; i < CACHE_SLOTS; i++) {
            struct slot *c = &cache.slots[i];
            if (!c->obj || (victim->obj && c->used < victim->used))
                victim = c;
        }
        if (victim->obj) {
            evicted = victim->obj;
            victim->form->release(evicted);
        }
        f->retain(obj);
        memcpy(victim->digest, digest, sizeof(digest));
        victim->form = f;
        victim->obj = obj;
        victim->used = ++cache.tick;
    }
    pthread_mutex_unlock(&cache.mu);
    OPENSSL_cleanse(digest, sizeof(digest));
    return obj;
}

static void *pkey_decode(const char *pem)
{
    return wisp__pem_to_pkey(pem);
}

static void pkey_retain(void *obj)
{
    EVP_PKEY_up_ref(obj);
}

static void pkey_release(void *obj)
{
    EVP_PKEY_free(obj);
}

static const struct form pkey_form = {pkey_decode, pkey_retain, pkey_release};

static void *jwk_decode(const char *pem)
{
    return wisp__pem_to_jwk(pem);
}

static void jwk_retain(void *obj)
{
    cjose_jwk_retain(obj, NULL);
}

static void jwk_release(void *obj)
{
    cjose_jwk_release(obj);
}

static const struct form jwk_form = {jwk_decode, jwk_retain, jwk_release};

EVP_PKEY *wisp__pem_to_pkey_cached(const char *pem)
{
    return cached(&pkey_form, pem);
}

cjose_jwk_t *wisp__pem_to_jwk_cached(const char *pem)
{
    return cached(&jwk_form, pem);
}

void wisp__jwk_release_cached(cjose_jwk_t *jwk)
{
    /* cjose counts references with a plain int, so every retain and
     * release of a cached JWK happens under the cache's lock. */
    pthread_mutex_lock(&cache.mu);
    cjose_jwk_release(jwk);
    pthread_mutex_unlock(&cache.mu);
}
