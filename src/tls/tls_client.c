#include "tls/tls_client.h"

#include <stdio.h>

#include <openssl/err.h>

#include "tls/cert_load.h"

SSL_CTX *tls_client_ctx_new(char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Backends that close without close_notify end close-delimited bodies; treat it as EOF. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return ctx;
}

int tls_client_ctx_set_identity(SSL_CTX *ctx, const char *cert_path, const char *key_path,
                                const char *password, char *err, size_t errlen)
{
    STACK_OF(X509) * certs;
    char why[256];
    if (cert_load_file(cert_path, password, &certs, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", cert_path, why);
        return -1;
    }
    EVP_PKEY *key = cert_load_key_file(key_path ? key_path : cert_path, password, why, sizeof why);
    if (!key) {
        snprintf(err, errlen, "%s: %s", key_path ? key_path : cert_path, why);
        sk_X509_pop_free(certs, X509_free);
        return -1;
    }
    int rc = -1;
    if (SSL_CTX_use_certificate(ctx, sk_X509_value(certs, 0)) != 1) {
        snprintf(err, errlen, "%s: the certificate cannot be used as a client certificate",
                 cert_path);
    } else if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s: the private key does not match the certificate in %s",
                 key_path ? key_path : cert_path, cert_path);
    } else {
        rc = 0;
        for (int i = 1; i < sk_X509_num(certs) && rc == 0; i++)
            if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(certs, i)) != 1)
                rc = -1;
        if (rc != 0)
            snprintf(err, errlen, "%s: cannot add the chain certificates", cert_path);
    }
    EVP_PKEY_free(key);
    sk_X509_pop_free(certs, X509_free);
    ERR_clear_error();
    return rc;
}
