/*
 * tls_client: OpenSSL client contexts for talking to backends (probes and traffic alike).
 * Verification is not delegated to OpenSSL: the handshake accepts any chain, and the chain as
 * sent is judged by chain_analysis, so that a failure can be explained instead of aborted.
 */
#ifndef GATEHOUSE_TLS_TLS_CLIENT_H
#define GATEHOUSE_TLS_TLS_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

/* TLS 1.2 minimum, ALPN http/1.1. NULL + err on failure. */
SSL_CTX *tls_client_ctx_new(char *err, size_t errlen);

/*
 * Sets the client certificate presented to backends that require mutual TLS. <cert_path> is a
 * PEM chain (leaf first) or PKCS#12; <key_path> may be NULL when the PKCS#12 holds the key.
 * Returns 0, or -1 and a sentence in err.
 */
int tls_client_ctx_set_identity(SSL_CTX *ctx, const char *cert_path, const char *key_path,
                                const char *password, char *err, size_t errlen);

#endif
