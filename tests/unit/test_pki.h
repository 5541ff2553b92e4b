/*
 * test_pki: a tiny in-memory PKI for unit tests, built with the OpenSSL 3 API (no files, no
 * openssl CLI). EC P-256 keys, SHA-256 signatures, validity set relative to PKI_NOW so that every
 * validity decision is deterministic (tests pass PKI_NOW as "now", never the real clock).
 *
 * Include after <cmocka.h>: failures to build a certificate fail the test. Every function is
 * static inline, so a test that uses only some of them builds without warnings.
 */
#ifndef GATEHOUSE_TESTS_TEST_PKI_H
#define GATEHOUSE_TESTS_TEST_PKI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* The fixed "now" of every test: 2026-01-01T00:00:00Z. */
#define PKI_NOW  ((time_t)1767225600)
#define PKI_DAY  86400L
#define PKI_YEAR (365L * PKI_DAY)

struct pki_spec {
    const char *cn;   /* subject CN; NULL: no CN (the subject is then O=...) */
    const char *org;  /* subject O; NULL: "Gatehouse Test" */
    const char *san;  /* X509V3 text, e.g. "DNS:a.example.com,IP:10.0.0.5"; NULL: none */
    long not_before;  /* seconds relative to PKI_NOW */
    long not_after;   /* seconds relative to PKI_NOW */
    bool ca;          /* basicConstraints CA:TRUE (else CA:FALSE) */
    bool no_key_ids;  /* omit subjectKeyIdentifier and authorityKeyIdentifier */
    const char *skid; /* subjectKeyIdentifier as hex ("01:02:03"); NULL: hash of the key */
    const char *aia;  /* caIssuers URI; NULL: no AIA */
};

static inline EVP_PKEY *pki_key(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    return key;
}

static inline void pki_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext)
        fail_msg("cannot build extension %s = %s", OBJ_nid2sn(nid), value);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/*
 * A certificate for <key> as described by <spec>, issued by <issuer> (signed with <issuer_key>),
 * or self-signed when <issuer> is NULL. The caller frees it.
 */
static inline X509 *pki_issue(const struct pki_spec *spec, EVP_PKEY *key, X509 *issuer,
                              EVP_PKEY *issuer_key)
{
    static long serial = 1000;
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial), 1);

    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    const char *org = spec->org ? spec->org : "Gatehouse Test";
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                (const unsigned char *)org, -1, -1, 0),
                     1);
    if (spec->cn)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)spec->cn, -1, -1, 0),
                         1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
    X509_NAME_free(name);

    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), PKI_NOW + spec->not_before));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), PKI_NOW + spec->not_after));
    assert_int_equal(X509_set_pubkey(x, key), 1);

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    pki_add_ext(x, &ctx, NID_basic_constraints,
                spec->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    pki_add_ext(x, &ctx, NID_key_usage,
                spec->ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    if (!spec->no_key_ids) {
        pki_add_ext(x, &ctx, NID_subject_key_identifier, spec->skid ? spec->skid : "hash");
        if (issuer)
            pki_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    }
    if (spec->san)
        pki_add_ext(x, &ctx, NID_subject_alt_name, spec->san);
    if (spec->aia) {
        char value[512];
        snprintf(value, sizeof value, "caIssuers;URI:%s", spec->aia);
        pki_add_ext(x, &ctx, NID_info_access, value);
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

/* A CA certificate valid from 10 years ago to 10 years ahead. */
static inline X509 *pki_ca(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    struct pki_spec spec = {
            .cn = cn, .not_before = -10 * PKI_YEAR, .not_after = 10 * PKI_YEAR, .ca = true};
    return pki_issue(&spec, key, issuer, issuer_key);
}

/* An end-entity certificate valid from 30 days ago to a year ahead. */
static inline X509 *pki_leaf(const char *cn, const char *san, EVP_PKEY *key, X509 *issuer,
                             EVP_PKEY *issuer_key)
{
    struct pki_spec spec = {
            .cn = cn, .san = san, .not_before = -30 * PKI_DAY, .not_after = PKI_YEAR};
    return pki_issue(&spec, key, issuer, issuer_key);
}

/* A stack holding new references to the NULL-terminated certificates given. */
static inline STACK_OF(X509) * pki_stack(X509 *first, ...)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    assert_non_null(sk);
    va_list ap;
    va_start(ap, first);
    for (X509 *x = first; x; x = va_arg(ap, X509 *)) {
        assert_int_equal(X509_up_ref(x), 1);
        assert_true(sk_X509_push(sk, x) > 0);
    }
    va_end(ap);
    return sk;
}

static inline void pki_stack_free(STACK_OF(X509) * sk)
{
    sk_X509_pop_free(sk, X509_free);
}

/* Copies a memory BIO's contents into a malloc'd buffer (NUL-terminated) and frees the BIO. */
static inline unsigned char *pki_bio_take(BIO *bio, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    assert_true(n >= 0);
    unsigned char *out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(bio);
    return out;
}

/* The PEM text of the NULL-terminated certificates given, concatenated. */
static inline unsigned char *pki_pem(size_t *len, X509 *first, ...)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    va_list ap;
    va_start(ap, first);
    for (X509 *x = first; x; x = va_arg(ap, X509 *))
        assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    va_end(ap);
    return pki_bio_take(bio, len);
}

/* The DER encodings of the NULL-terminated certificates given, back to back. */
static inline unsigned char *pki_der(size_t *len, X509 *first, ...)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    va_list ap;
    va_start(ap, first);
    for (X509 *x = first; x; x = va_arg(ap, X509 *))
        assert_int_equal(i2d_X509_bio(bio, x), 1);
    va_end(ap);
    return pki_bio_take(bio, len);
}

#endif
