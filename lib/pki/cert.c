/* SPDX-License-Identifier: Apache-2.0 */
/* CA and server certificates with OpenSSL's X509 API. Serial numbers are
 * random 128-bit values so that re-issuing never collides. */
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include "jose/jose_int.h"
#include "wisp/alloc.h"
#include "wisp/jose.h"
#include "wisp/pki.h"

static char *bio_text(BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? wisp_xstrndup(data, (size_t)n) : NULL;
}

static X509 *pem_to_x509(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return x;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return 0;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A certificate skeleton: random serial, validity, subject CN. */
static X509 *new_cert(EVP_PKEY *pub, const char *cn, long days)
{
    X509 *x = X509_new();
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
        goto fail;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto fail;
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L);
    X509_set_pubkey(x, pub);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    return x;
fail:
    BN_free(bn);
    X509_free(x);
    return NULL;
}

static char *x509_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio && PEM_write_bio_X509(bio, x) == 1)
        out = bio_text(bio);
    BIO_free(bio);
    return out;
}

enum wisp_err wisp_pki_ca_new(const char *common_name, char **cert_pem_out, char **key_pem_out)
{
    char *key_pem = wisp_rsa_generate_pem();
    EVP_PKEY *key = key_pem ? wisp__pem_to_pkey(key_pem) : NULL;
    X509 *x = key ? new_cert(key, common_name, 3650) : NULL;
    enum wisp_err err = WISP_EIO;
    if (!x)
        goto out;
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (!add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
        !add_ext(x, x, NID_subject_key_identifier, "hash") || !X509_sign(x, key, EVP_sha256()))
        goto out;
    *cert_pem_out = x509_pem(x);
    if (*cert_pem_out) {
        *key_pem_out = key_pem;
        key_pem = NULL;
        err = WISP_OK;
    }
out:
    X509_free(x);
    EVP_PKEY_free(key);
    if (key_pem)
        wisp_secret_free(key_pem, 0);
    return err;
}

enum wisp_err wisp_pki_server_cert(const char *ca_cert_pem, const char *ca_key_pem,
                                   const char *common_name, const char *const *dns_names,
                                   const char *const *ips, char **cert_pem_out,
                                   char **key_pem_out)
{
    enum wisp_err err = WISP_EIO;
    X509 *ca = pem_to_x509(ca_cert_pem);
    EVP_PKEY *ca_key = wisp__pem_to_pkey(ca_key_pem);
    char *key_pem = wisp_rsa_generate_pem();
    EVP_PKEY *key = key_pem ? wisp__pem_to_pkey(key_pem) : NULL;
    X509 *x = NULL;
    char san[4096] = "";
    if (!ca || !ca_key || !key)
        goto out;
    x = new_cert(key, common_name, 825);
    if (!x)
        goto out;
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    size_t pos = 0;
    for (int i = 0; dns_names && dns_names[i]; i++)
        pos += (size_t)snprintf(san + pos, sizeof(san) - pos, "%sDNS:%s", pos ? "," : "",
                                dns_names[i]);
    for (int i = 0; ips && ips[i]; i++)
        pos += (size_t)snprintf(san + pos, sizeof(san) - pos, "%sIP:%s", pos ? "," : "", ips[i]);
    if (pos >= sizeof(san))
        goto out;
    if (!add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        !add_ext(x, ca, NID_ext_key_usage, "serverAuth") ||
        !add_ext(x, ca, NID_authority_key_identifier, "keyid:always") ||
        (pos && !add_ext(x, ca, NID_subject_alt_name, san)) ||
        !X509_sign(x, ca_key, EVP_sha256()))
        goto out;
    *cert_pem_out = x509_pem(x);
    if (*cert_pem_out) {
        *key_pem_out = key_pem;
        key_pem = NULL;
        err = WISP_OK;
    }
out:
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    if (key_pem)
        wisp_secret_free(key_pem, 0);
    return err;
}

enum wisp_err wisp_pki_self_signed(const char *key_pem, const char *common_name, long days,
                                   char **cert_pem_out)
{
    EVP_PKEY *key = wisp__pem_to_pkey(key_pem);
    X509 *x = key ? new_cert(key, common_name, days) : NULL;
    enum wisp_err err = WISP_EIO;
    if (!x)
        goto out;
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (!X509_sign(x, key, EVP_sha256()))
        goto out;
    *cert_pem_out = x509_pem(x);
    if (*cert_pem_out)
        err = WISP_OK;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return err;
}
