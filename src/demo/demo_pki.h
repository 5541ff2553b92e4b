/*
 * demo_pki: a private PKI made with the OpenSSL API for `gatehouse demo` -- a root, an
 * intermediate, and the leaves that reproduce the seed situations. Nothing here is used by the
 * gateway itself.
 */
#ifndef GATEHOUSE_DEMO_DEMO_PKI_H
#define GATEHOUSE_DEMO_DEMO_PKI_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct demo_cert {
    X509 *cert;
    EVP_PKEY *key;
};

struct demo_cert_spec {
    const char *cn;
    const char *sans; /* "DNS:a.example,IP:127.0.0.1" or NULL */
    bool ca;
    const char *aia_ca_issuers; /* caIssuers URI or NULL */
    int valid_from_days;        /* relative to now, e.g. -1 */
    int valid_days;
};

/* Issues a certificate signed by <issuer> (NULL: self-signed). Returns 0 or -1. */
int demo_cert_make(const struct demo_cert_spec *spec, const struct demo_cert *issuer,
                   struct demo_cert *out);
void demo_cert_free(struct demo_cert *c);

/* Writes certificates (PEM, in order) to <path>; and a key. Returns 0 or -1 (errno). */
int demo_write_pem(const char *path, X509 *const *certs, size_t n);
int demo_write_key(const char *path, EVP_PKEY *key);

#endif
