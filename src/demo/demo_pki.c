#include "demo/demo_pki.h"

#include <stdio.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

int demo_cert_make(const struct demo_cert_spec *s, const struct demo_cert *issuer,
                   struct demo_cert *out)
{
    out->cert = NULL;
    out->key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!out->key || !x)
        goto fail;
    X509_set_version(x, 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
        BN_free(bn);
        goto fail;
    }
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), (long)s->valid_from_days * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)(s->valid_from_days + s->valid_days) * 86400);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Gatehouse Demo",
                               -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : name);
    X509_set_pubkey(x, out->key);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer->cert : x, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, s->ca ? "critical,CA:TRUE" : "CA:FALSE") != 0 ||
        add_ext(x, &ctx, NID_key_usage,
                s->ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") != 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        (issuer && add_ext(x, &ctx, NID_authority_key_identifier, "keyid") != 0))
        goto fail;
    if (!s->ca && add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") != 0)
        goto fail;
    if (s->sans && add_ext(x, &ctx, NID_subject_alt_name, s->sans) != 0)
        goto fail;
    if (s->aia_ca_issuers) {
        char aia[512];
        snprintf(aia, sizeof aia, "caIssuers;URI:%s", s->aia_ca_issuers);
        if (add_ext(x, &ctx, NID_info_access, aia) != 0)
            goto fail;
    }
    if (!X509_sign(x, issuer ? issuer->key : out->key, EVP_sha256()))
        goto fail;
    out->cert = x;
    return 0;
fail:
    X509_free(x);
    EVP_PKEY_free(out->key);
    out->key = NULL;
    return -1;
}

void demo_cert_free(struct demo_cert *c)
{
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    c->cert = NULL;
    c->key = NULL;
}

int demo_write_pem(const char *path, X509 *const *certs, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!PEM_write_X509(f, certs[i]))
            rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int demo_write_key(const char *path, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    chmod(path, 0600);
    int rc = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}
