/* SPDX-License-Identifier: Apache-2.0 */
/* RSA keys as PEM text, the form wisp stores them in, and their public JWK. */
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>
#include "jose/jose_int.h"
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/jose.h"

EVP_PKEY *wisp__pem_to_pkey(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return NULL;
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!pkey) {
        (void)BIO_reset(bio);
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    if (pkey && EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

static char *bio_text(BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? wisp_xstrndup(data, (size_t)n) : NULL;
}

char *wisp_rsa_generate_pem(void)
{
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    if (!pkey)
        return NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1)
        out = bio_text(bio);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return out;
}

char *wisp_rsa_public_pem(const char *pem)
{
    EVP_PKEY *pkey = wisp__pem_to_pkey(pem);
    if (!pkey)
        return NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio && PEM_write_bio_PUBKEY(bio, pkey) == 1)
        out = bio_text(bio);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return out;
}

/* A big-endian byte string of an RSA parameter ("n", "e", "d", ...). */
unsigned char *wisp__rsa_param(EVP_PKEY *pkey, const char *name, size_t *len_out)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
        return NULL;
    int n = BN_num_bytes(bn);
    unsigned char *out = wisp_xmalloc(n > 0 ? (size_t)n : 1);
    BN_bn2bin(bn, out);
    BN_clear_free(bn);
    *len_out = (size_t)n;
    return out;
}

json_t *wisp_rsa_public_jwk(const char *pem, const char *kid)
{
    EVP_PKEY *pkey = wisp__pem_to_pkey(pem);
    if (!pkey)
        return NULL;
    size_t nlen, elen;
    unsigned char *n = wisp__rsa_param(pkey, OSSL_PKEY_PARAM_RSA_N, &nlen);
    unsigned char *e = wisp__rsa_param(pkey, OSSL_PKEY_PARAM_RSA_E, &elen);
    json_t *jwk = NULL;
    if (n && e) {
        char *n64 = wisp_b64url_encode(n, nlen);
        char *e64 = wisp_b64url_encode(e, elen);
        jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "alg", "RS256", "use",
                        "sig", "kid", kid, "n", n64, "e", e64);
        free(n64);
        free(e64);
    }
    free(n);
    free(e);
    EVP_PKEY_free(pkey);
    return jwk;
}

enum wisp_err wisp_rsa_sign_sha256(const char *pem, const unsigned char *data, size_t len,
                                   unsigned char **sig_out, size_t *siglen_out)
{
    EVP_PKEY *pkey = wisp__pem_to_pkey_cached(pem);
    EVP_MD_CTX *ctx = pkey ? EVP_MD_CTX_new() : NULL;
    enum wisp_err err = WISP_EIO;
    size_t n = 0;
    unsigned char *sig = NULL;
    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, NULL, &n, data, len) != 1)
        goto out;
    sig = wisp_xmalloc(n);
    if (EVP_DigestSign(ctx, sig, &n, data, len) != 1)
        goto out;
    *sig_out = sig;
    *siglen_out = n;
    sig = NULL;
    err = WISP_OK;
out:
    free(sig);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return err;
}
