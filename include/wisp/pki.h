/* SPDX-License-Identifier: Apache-2.0 */
/* Certificates: wisp's own CA and the server certificates it issues
 * (loopback, *.googleapis.com inside pods, each cluster's API server). PEM
 * text in and out; OpenSSL underneath. */
#ifndef WISP_PKI_H
#define WISP_PKI_H

#include "wisp/err.h"

/* A new self-signed CA (RSA-2048, 10 years). Caller frees both with free()
 * (the key with wisp_secret_free()). */
enum wisp_err wisp_pki_ca_new(const char *common_name, char **cert_pem_out, char **key_pem_out);

/* A server certificate signed by the CA, valid for the given DNS names and
 * IP addresses (each a NULL-terminated list; either may be NULL). */
enum wisp_err wisp_pki_server_cert(const char *ca_cert_pem, const char *ca_key_pem,
                                   const char *common_name, const char *const *dns_names,
                                   const char *const *ips, char **cert_pem_out,
                                   char **key_pem_out);

/* A self-signed certificate for an existing key, for publishing the key
 * the way Google does (x509 maps at .../certs). Caller frees. */
enum wisp_err wisp_pki_self_signed(const char *key_pem, const char *common_name, long days,
                                   char **cert_pem_out);

#endif
