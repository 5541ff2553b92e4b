#include "tls/tls_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tls/cert_load.h"

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    bool http2 = arg != NULL;
    static const unsigned char h2[] = {2, 'h', '2'};
    static const unsigned char h11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    /* Server preference: h2 when enabled, then http/1.1. */
    for (int pass = http2 ? 0 : 1; pass < 2; pass++) {
        const unsigned char *want = pass == 0 ? h2 : h11;
        for (unsigned int i = 0; i < inlen;) {
            unsigned int n = in[i];
            if (i + 1 + n > inlen)
                break;
            if (n == want[0] && memcmp(in + i + 1, want + 1, n) == 0) {
                *out = in + i + 1;
                *outlen = (unsigned char)n;
                return SSL_TLSEXT_ERR_OK;
            }
            i += 1 + n;
        }
    }
    /* No overlap: carry on without ALPN (clients that sent only other protocols get HTTP/1.1
     * semantics, as servers without ALPN would give them). */
    return SSL_TLSEXT_ERR_NOACK;
}

SSL_CTX *tls_server_ctx_new(const struct tls_server_params *p, char *err, size_t errlen)
{
    char why[256];
    char *password = NULL;
    if (p->password_file) {
        password = cert_read_password_file(p->password_file, why, sizeof why);
        if (!password) {
            snprintf(err, errlen, "%s: %s", p->password_file, why);
            return NULL;
        }
    }
    const char *cert_path = p->pfx ? p->pfx : p->pem;
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    SSL_CTX *ctx = NULL;
    if (cert_load_file(cert_path, password, &certs, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", cert_path, why);
        goto out;
    }
    const char *key_path = p->pfx ? p->pfx : p->key;
    key = cert_load_key_file(key_path, password, why, sizeof why);
    if (!key) {
        snprintf(err, errlen, "%s: %s", key_path, why);
        goto out;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, p->min_version ? p->min_version : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (p->ciphers && SSL_CTX_set_cipher_list(ctx, p->ciphers) != 1) {
        snprintf(err, errlen, "tls-policy ciphers '%s': no usable cipher in the list", p->ciphers);
        goto fail;
    }
    if (p->ciphersuites && SSL_CTX_set_ciphersuites(ctx, p->ciphersuites) != 1) {
        snprintf(err, errlen, "tls-policy ciphersuites '%s': not a valid TLS 1.3 suite list",
                 p->ciphersuites);
        goto fail;
    }
    /* The PKCS#12 leaf may not come first: pick the one matching the key. */
    int leaf = 0;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (X509_check_private_key(sk_X509_value(certs, i), key) == 1) {
            leaf = i;
            break;
        }
    }
    if (SSL_CTX_use_certificate(ctx, sk_X509_value(certs, leaf)) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s: the private key in %s does not match the certificate", cert_path,
                 key_path);
        goto fail;
    }
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (i == leaf)
            continue;
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(certs, i)) != 1) {
            snprintf(err, errlen, "%s: cannot use chain certificate %d", cert_path, i);
            goto fail;
        }
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, p->http2 ? (void *)1 : NULL);
    goto out;
fail:
    SSL_CTX_free(ctx);
    ctx = NULL;
out:
    if (password) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
    EVP_PKEY_free(key);
    sk_X509_pop_free(certs, X509_free);
    ERR_clear_error();
    return ctx;
}

const char *tls_server_alpn(const SSL *ssl, char *buf, size_t size)
{
    const unsigned char *alpn = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &len);
    if (!alpn || len >= size)
        len = 0;
    if (len)
        memcpy(buf, alpn, len);
    buf[len] = '\0';
    return buf;
}
