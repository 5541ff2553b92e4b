/*
 * tls_server: OpenSSL server contexts for listeners -- one per listener certificate (PEM chain +
 * key, or PKCS#12 + password file), with the listener's TLS policy (TLS 1.2 minimum by default,
 * cipher lists) and ALPN. Choosing the context by SNI is the caller's job (it knows the
 * listeners): it installs its own servername callback on the port's default context.
 */
#ifndef GATEHOUSE_TLS_TLS_SERVER_H
#define GATEHOUSE_TLS_TLS_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tls_server_params {
    const char *pem;           /* PEM chain, leaf first (with key_path) */
    const char *key;           /* PEM or DER private key */
    const char *pfx;           /* or: PKCS#12 bundle holding cert, key and chain */
    const char *password_file; /* for pfx (or an encrypted key); NULL = empty password */
    int min_version;           /* TLS1_2_VERSION (default when 0) or TLS1_3_VERSION */
    const char *ciphers;       /* TLS 1.2 cipher list, NULL = OpenSSL's default */
    const char *ciphersuites;  /* TLS 1.3 suites, NULL = OpenSSL's default */
    bool http2;                /* advertise h2 before http/1.1 in ALPN */
};

/*
 * Builds a context. Returns NULL and one sentence in err naming the file at fault (missing file,
 * no certificate, key does not match, wrong password, bad cipher list).
 */
SSL_CTX *tls_server_ctx_new(const struct tls_server_params *params, char *err, size_t errlen);

/* The ALPN protocol the client and server agreed on: "h2", "http/1.1" or "" (none). */
const char *tls_server_alpn(const SSL *ssl, char *buf, size_t size);

#endif
