/*
 * Unit tests for src/tls/cert_load.c: certificates from PEM bundles, DER (single and back to
 * back) and PKCS#12 (made here with PKCS12_create), the error sentence for each kind of file
 * that holds none, private keys (PEM, encrypted PEM, DER, PKCS#12) and password files. Files are
 * written to a private temporary directory that is removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pkcs12.h>

#include "test_pki.h"
#include "tls/cert_load.h"

static struct {
    EVP_PKEY *root_key, *int_key, *leaf_key;
    X509 *root, *inter, *leaf;
    char dir[64];
    char *files[32];
    size_t n_files;
} F;

static int setup(void **state)
{
    (void)state;
    F.root_key = pki_key();
    F.int_key = pki_key();
    F.leaf_key = pki_key();
    F.root = pki_ca("Load Test Root", F.root_key, NULL, NULL);
    F.inter = pki_ca("Load Test Intermediate", F.int_key, F.root, F.root_key);
    F.leaf = pki_leaf("load.example.com", "DNS:load.example.com", F.leaf_key, F.inter, F.int_key);
    strcpy(F.dir, "/tmp/gatehouse-test-cert-load-XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < F.n_files; i++) {
        unlink(F.files[i]);
        free(F.files[i]);
    }
    rmdir(F.dir);
    X509_free(F.root);
    X509_free(F.inter);
    X509_free(F.leaf);
    EVP_PKEY_free(F.root_key);
    EVP_PKEY_free(F.int_key);
    EVP_PKEY_free(F.leaf_key);
    return 0;
}

/* Writes <len> bytes to <name> in the test directory; returns the path (freed at teardown). */
static const char *write_file(const char *name, const void *data, size_t len)
{
    assert_true(F.n_files < sizeof F.files / sizeof F.files[0]);
    size_t size = strlen(F.dir) + strlen(name) + 2;
    char *path = malloc(size);
    assert_non_null(path);
    snprintf(path, size, "%s/%s", F.dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    F.files[F.n_files++] = path;
    return path;
}

static const char *write_text(const char *name, const char *text)
{
    return write_file(name, text, strlen(text));
}

/* Loads <data>, which must give exactly the NULL-terminated certificates <want>, in order. */
static void check_loads(const unsigned char *data, size_t len, const char *password, X509 **want,
                        int line)
{
    STACK_OF(X509) *out = NULL;
    char err[256] = "";
    if (cert_load_mem(data, len, password, &out, err, sizeof err) != 0)
        fail_msg("line %d: refused: %s", line, err);
    size_t n = 0;
    while (want[n])
        n++;
    if (!out || (size_t)sk_X509_num(out) != n)
        fail_msg("line %d: %d certificates, want %zu", line, out ? sk_X509_num(out) : -1, n);
    for (size_t i = 0; i < n; i++)
        if (X509_cmp(sk_X509_value(out, (int)i), want[i]) != 0)
            fail_msg("line %d: certificate %zu is not the expected one", line, i);
    sk_X509_pop_free(out, X509_free);
}

#define LOADS(data, len, password, ...)                                                            \
    check_loads(data, len, password, (X509 *[]){__VA_ARGS__, NULL}, __LINE__)

/* <data> must be refused, with an error containing <needle> (or equal to it when <exact>). */
static void check_refused(const unsigned char *data, size_t len, const char *password,
                          const char *needle, bool exact, int line)
{
    STACK_OF(X509) *out = (STACK_OF(X509) *)&out; /* must be reset */
    char err[256] = "";
    int rc = cert_load_mem(data, len, password, &out, err, sizeof err);
    if (rc != -1)
        fail_msg("line %d: accepted (%d certificates)", line, out ? sk_X509_num(out) : -1);
    if (out != NULL)
        fail_msg("line %d: *out not NULL on failure", line);
    if (exact ? strcmp(err, needle) != 0 : !strstr(err, needle))
        fail_msg("line %d: error \"%s\", want %s\"%s\"", line, err, exact ? "" : "it to contain ",
                 needle);
}

#define REFUSED(data, len, password, needle)                                                       \
    check_refused(data, len, password, needle, false, __LINE__)
#define REFUSED_EXACT(data, len, password, text)                                                   \
    check_refused(data, len, password, text, true, __LINE__)

/* DER of a PKCS#12 holding <key>, <cert> and <ca> (any may be NULL), with <pass> (NULL: none). */
static unsigned char *make_p12(const char *pass, EVP_PKEY *key, X509 *cert, X509 *ca, size_t *len)
{
    STACK_OF(X509) *cas = NULL;
    if (ca) {
        cas = sk_X509_new_null();
        assert_non_null(cas);
        assert_true(sk_X509_push(cas, ca) > 0);
    }
    PKCS12 *p12 = PKCS12_create(pass, "gatehouse test", key, cert, cas, 0, 0, 0, 0, 0);
    sk_X509_free(cas);
    assert_non_null(p12);
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    PKCS12_free(p12);
    assert_true(n > 0);
    unsigned char *copy = malloc((size_t)n);
    assert_non_null(copy);
    memcpy(copy, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return copy;
}

static void test_pem_bundle(void **state)
{
    (void)state;
    size_t len;
    unsigned char *pem = pki_pem(&len, F.leaf, F.inter, F.root, NULL);
    LOADS(pem, len, NULL, F.leaf, F.inter, F.root);
    /* the password is irrelevant for PEM certificates */
    LOADS(pem, len, "whatever", F.leaf, F.inter, F.root);
    free(pem);

    pem = pki_pem(&len, F.root, NULL);
    LOADS(pem, len, NULL, F.root);
    free(pem);
}

static void test_pem_with_text_and_key(void **state)
{
    (void)state;
    /* "Bag Attributes" text (openssl pkcs12 output), a key, then the certificates */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    BIO_puts(bio, "Bag Attributes\n    friendlyName: test\nsubject=CN = load.example.com\n");
    assert_int_equal(PEM_write_bio_PrivateKey(bio, F.leaf_key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_bio_X509(bio, F.leaf), 1);
    BIO_puts(bio, "\nissuer text between blocks\n");
    assert_int_equal(PEM_write_bio_X509(bio, F.inter), 1);
    size_t len;
    unsigned char *pem = pki_bio_take(bio, &len);
    LOADS(pem, len, NULL, F.leaf, F.inter);
    free(pem);

    /* CRLF line endings */
    pem = pki_pem(&len, F.inter, NULL);
    char *crlf = malloc(2 * len + 1);
    assert_non_null(crlf);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (pem[i] == '\n')
            crlf[n++] = '\r';
        crlf[n++] = (char)pem[i];
    }
    LOADS((unsigned char *)crlf, n, NULL, F.inter);
    free(crlf);
    free(pem);
}

static void test_pem_legacy_labels(void **state)
{
    (void)state;
    /* "TRUSTED CERTIFICATE" (openssl x509 -trustout) */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_X509_AUX(bio, F.root), 1);
    size_t len;
    unsigned char *pem = pki_bio_take(bio, &len);
    assert_non_null(strstr((char *)pem, "-----BEGIN TRUSTED CERTIFICATE-----"));
    LOADS(pem, len, NULL, F.root);
    free(pem);
    /* "X509 CERTIFICATE" */
    pem = pki_pem(&len, F.inter, NULL);
    char *old = malloc(len + 32);
    assert_non_null(old);
    const char *body = strchr((char *)pem, '\n') + 1;
    const char *end = strstr(body, "-----END CERTIFICATE-----");
    assert_non_null(end);
    int n = snprintf(old, len + 32,
                     "-----BEGIN X509 CERTIFICATE-----\n%.*s-----END X509 CERTIFICATE-----\n",
                     (int)(end - body), body);
    LOADS((unsigned char *)old, (size_t)n, NULL, F.inter);
    free(old);
    free(pem);
}

static void test_der(void **state)
{
    (void)state;
    size_t len;
    unsigned char *der = pki_der(&len, F.leaf, NULL);
    LOADS(der, len, NULL, F.leaf);
    free(der);

    der = pki_der(&len, F.leaf, F.inter, F.root, NULL);
    LOADS(der, len, NULL, F.leaf, F.inter, F.root);
    free(der);
}

static void test_pkcs12_with_password(void **state)
{
    (void)state;
    size_t len;
    unsigned char *p12 = make_p12("s3cret", F.leaf_key, F.leaf, F.inter, &len);
    LOADS(p12, len, "s3cret", F.leaf, F.inter);
    REFUSED(p12, len, "wrong", "password");
    REFUSED(p12, len, "", "password");
    REFUSED(p12, len, NULL, "password");
    REFUSED(p12, len, NULL, "--password-file");
    free(p12);

    /* certificate only (a trusted root shipped as .pfx) */
    p12 = make_p12("s3cret", NULL, NULL, F.root, &len);
    LOADS(p12, len, "s3cret", F.root);
    REFUSED(p12, len, "nope", "password");
    free(p12);
}

static void test_pkcs12_without_password(void **state)
{
    (void)state;
    size_t len;
    /* an empty password */
    unsigned char *p12 = make_p12("", F.leaf_key, F.leaf, F.inter, &len);
    LOADS(p12, len, NULL, F.leaf, F.inter);
    LOADS(p12, len, "", F.leaf, F.inter);
    free(p12);
    /* no password at all */
    p12 = make_p12(NULL, F.leaf_key, F.leaf, NULL, &len);
    LOADS(p12, len, NULL, F.leaf);
    REFUSED(p12, len, "wrong", "password");
    free(p12);
}

/*
 * cert_load.h: "NULL = empty password". A PKCS#12 without a password must open with "" as well
 * (what an empty password file gives), whichever of the two empty forms its MAC was made with.
 */
static void test_pkcs12_empty_password_forms(void **state)
{
    (void)state;
    size_t len;
    unsigned char *p12 = make_p12(NULL, F.leaf_key, F.leaf, NULL, &len);
    STACK_OF(X509) *out = NULL;
    char err[256] = "";
    int rc = cert_load_mem(p12, len, "", &out, err, sizeof err);
    free(p12);
    if (rc != 0)
        fail_msg("a PKCS#12 without password, opened with \"\": %s", err);
    int n = sk_X509_num(out);
    bool same = n == 1 && X509_cmp(sk_X509_value(out, 0), F.leaf) == 0;
    sk_X509_pop_free(out, X509_free);
    assert_true(same);
}

static void test_private_key_refused(void **state)
{
    (void)state;
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, F.leaf_key, NULL, NULL, 0, NULL, NULL), 1);
    size_t len;
    unsigned char *pem = pki_bio_take(bio, &len);
    assert_non_null(strstr((char *)pem, "-----BEGIN PRIVATE KEY-----"));
    REFUSED_EXACT(pem, len, NULL, "contains a private key, not a certificate");
    free(pem);

    bio = BIO_new(BIO_s_mem());
    assert_int_equal(
            PEM_write_bio_PrivateKey_traditional(bio, F.leaf_key, NULL, NULL, 0, NULL, NULL), 1);
    pem = pki_bio_take(bio, &len);
    assert_non_null(strstr((char *)pem, "-----BEGIN EC PRIVATE KEY-----"));
    REFUSED_EXACT(pem, len, NULL, "contains a private key, not a certificate");
    free(pem);
}

static void test_csr_refused(void **state)
{
    (void)state;
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"csr.example.com",
                               -1, -1, 0);
    assert_int_equal(X509_REQ_set_pubkey(req, F.leaf_key), 1);
    assert_true(X509_REQ_sign(req, F.leaf_key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    X509_REQ_free(req);
    size_t len;
    unsigned char *pem = pki_bio_take(bio, &len);
    REFUSED_EXACT(pem, len, NULL, "contains a certificate signing request, not a certificate");
    free(pem);
}

static void test_empty_and_garbage(void **state)
{
    (void)state;
    REFUSED_EXACT((const unsigned char *)"", 0, NULL, "file is empty");
    const char *junk = "this is not a certificate\n\x01\x02\x03";
    REFUSED_EXACT((const unsigned char *)junk, strlen(junk), NULL,
                  "no certificate found (expected PEM, DER .cer or PKCS#12 .pfx)");
    unsigned char zeros[64] = {0};
    REFUSED_EXACT(zeros, sizeof zeros, NULL,
                  "no certificate found (expected PEM, DER .cer or PKCS#12 .pfx)");
    /* a DER SEQUENCE header that promises more than there is */
    unsigned char seq[] = {0x30, 0x82, 0x04, 0x00, 0x30, 0x82};
    REFUSED(seq, sizeof seq, NULL, "no certificate found");

    /* PEM, but only a public key */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, F.leaf_key), 1);
    size_t len;
    unsigned char *pem = pki_bio_take(bio, &len);
    REFUSED_EXACT(pem, len, NULL, "holds PEM data but no CERTIFICATE block");
    free(pem);
}

static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    unsigned char *pem = pki_pem(&len, F.leaf, NULL);
    REFUSED(pem, len / 2, NULL, "does not decode");
    REFUSED(pem, len - 20, NULL, "does not decode");
    /* a corrupt base64 body */
    unsigned char *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, pem, len);
    size_t body = strlen("-----BEGIN CERTIFICATE-----\n");
    memset(copy + body + 10, '!', 8);
    REFUSED(copy, len, NULL, "does not decode");
    free(copy);
    free(pem);

    /* truncated DER */
    unsigned char *der = pki_der(&len, F.leaf, NULL);
    REFUSED(der, len - 1, NULL, "no certificate found");
    REFUSED(der, 10, NULL, "no certificate found");
    free(der);

    /* truncated PKCS#12 is not taken for a certificate */
    unsigned char *p12 = make_p12("pw", F.leaf_key, F.leaf, NULL, &len);
    REFUSED(p12, len / 2, "pw", "no certificate found");
    free(p12);
}

static void test_load_file(void **state)
{
    (void)state;
    size_t len;
    unsigned char *pem = pki_pem(&len, F.leaf, F.inter, NULL);
    const char *path = write_file("chain.pem", pem, len);
    free(pem);
    STACK_OF(X509) *out = NULL;
    char err[256] = "";
    assert_int_equal(cert_load_file(path, NULL, &out, err, sizeof err), 0);
    assert_int_equal(sk_X509_num(out), 2);
    assert_int_equal(X509_cmp(sk_X509_value(out, 0), F.leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(out, 1), F.inter), 0);
    sk_X509_pop_free(out, X509_free);

    unsigned char *p12 = make_p12("pfxpass", F.leaf_key, F.leaf, F.inter, &len);
    path = write_file("app.pfx", p12, len);
    free(p12);
    assert_int_equal(cert_load_file(path, "pfxpass", &out, err, sizeof err), 0);
    assert_int_equal(sk_X509_num(out), 2);
    sk_X509_pop_free(out, X509_free);

    out = (STACK_OF(X509) *)&out;
    assert_int_equal(cert_load_file("/nonexistent/gatehouse/x.pem", NULL, &out, err, sizeof err),
                     -1);
    assert_null(out);
    assert_non_null(strstr(err, "cannot read"));
    assert_non_null(strstr(err, "No such file"));

    assert_int_equal(cert_load_file(F.dir, NULL, &out, err, sizeof err), -1);
    assert_string_equal(err, "not a regular file");

    path = write_text("empty.pem", "");
    assert_int_equal(cert_load_file(path, NULL, &out, err, sizeof err), -1);
    assert_string_equal(err, "file is empty");
}

static void check_key(EVP_PKEY *got, EVP_PKEY *want, const char *err, int line)
{
    if (!got)
        fail_msg("line %d: no key: %s", line, err);
    if (EVP_PKEY_eq(got, want) != 1)
        fail_msg("line %d: not the expected key", line);
    EVP_PKEY_free(got);
}

static void check_no_key(EVP_PKEY *got, const char *err, const char *needle, int line)
{
    if (got) {
        EVP_PKEY_free(got);
        fail_msg("line %d: a key was loaded", line);
    }
    if (!strstr(err, needle))
        fail_msg("line %d: error \"%s\" does not contain \"%s\"", line, err, needle);
}

static void test_key_file(void **state)
{
    (void)state;
    char err[256] = "";
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, F.leaf_key, NULL, NULL, 0, NULL, NULL), 1);
    size_t len;
    unsigned char *data = pki_bio_take(bio, &len);
    const char *path = write_file("key.pem", data, len);
    free(data);
    check_key(cert_load_key_file(path, NULL, err, sizeof err), F.leaf_key, err, __LINE__);

    /* traditional "EC PRIVATE KEY" */
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(
            PEM_write_bio_PrivateKey_traditional(bio, F.int_key, NULL, NULL, 0, NULL, NULL), 1);
    data = pki_bio_take(bio, &len);
    path = write_file("ec.key", data, len);
    free(data);
    check_key(cert_load_key_file(path, NULL, err, sizeof err), F.int_key, err, __LINE__);

    /* encrypted PKCS#8 */
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, F.leaf_key, EVP_aes_256_cbc(), NULL, 0,
                                                   NULL, (void *)"keypass"),
                     1);
    data = pki_bio_take(bio, &len);
    path = write_file("enc.key", data, len);
    char secret_piece[24];
    memcpy(secret_piece, data + 40, 20);
    secret_piece[20] = '\0';
    free(data);
    check_key(cert_load_key_file(path, "keypass", err, sizeof err), F.leaf_key, err, __LINE__);
    check_no_key(cert_load_key_file(path, "wrong", err, sizeof err), err, "password", __LINE__);
    assert_null(strstr(err, secret_piece));
    check_no_key(cert_load_key_file(path, NULL, err, sizeof err), err, "password", __LINE__);

    /* DER */
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(F.leaf_key, &der);
    assert_true(n > 0);
    path = write_file("key.der", der, (size_t)n);
    OPENSSL_free(der);
    check_key(cert_load_key_file(path, NULL, err, sizeof err), F.leaf_key, err, __LINE__);

    /* PKCS#12 */
    unsigned char *p12 = make_p12("pfxpass", F.leaf_key, F.leaf, F.inter, &len);
    path = write_file("key.pfx", p12, len);
    free(p12);
    check_key(cert_load_key_file(path, "pfxpass", err, sizeof err), F.leaf_key, err, __LINE__);
    check_no_key(cert_load_key_file(path, "wrong", err, sizeof err), err, "password", __LINE__);
    p12 = make_p12("pfxpass", NULL, NULL, F.root, &len);
    path = write_file("nokey.pfx", p12, len);
    free(p12);
    check_no_key(cert_load_key_file(path, "pfxpass", err, sizeof err), err, "holds no private key",
                 __LINE__);

    /* a combined file: the certificate first, then the key */
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, F.leaf), 1);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, F.leaf_key, NULL, NULL, 0, NULL, NULL), 1);
    data = pki_bio_take(bio, &len);
    path = write_file("combined.pem", data, len);
    free(data);
    check_key(cert_load_key_file(path, NULL, err, sizeof err), F.leaf_key, err, __LINE__);

    /* a certificate, garbage, nothing */
    data = pki_pem(&len, F.leaf, NULL);
    path = write_file("cert-as-key.pem", data, len);
    free(data);
    check_no_key(cert_load_key_file(path, NULL, err, sizeof err), err,
                 "contains a certificate, not a private key", __LINE__);
    path = write_text("junk.key", "not a key at all");
    check_no_key(cert_load_key_file(path, NULL, err, sizeof err), err, "no private key found",
                 __LINE__);
    check_no_key(cert_load_key_file("/nonexistent/gatehouse/k.pem", NULL, err, sizeof err), err,
                 "cannot read", __LINE__);
}

static void check_password(const char *content, size_t len, const char *want, int line)
{
    char name[32];
    snprintf(name, sizeof name, "pw%d.txt", line);
    const char *path = write_file(name, content, len);
    char err[256] = "";
    char *pw = cert_read_password_file(path, err, sizeof err);
    if (!pw)
        fail_msg("line %d: no password: %s", line, err);
    if (strcmp(pw, want) != 0)
        fail_msg("line %d: password '%s', want '%s'", line, pw, want);
    free(pw);
}

#define PASSWORD(lit, want) check_password(lit, sizeof(lit) - 1, want, __LINE__)

static void test_password_file(void **state)
{
    (void)state;
    PASSWORD("s3cret\n", "s3cret");
    PASSWORD("s3cret\r\n", "s3cret");
    PASSWORD("s3cret", "s3cret");
    PASSWORD("first\nsecond\n", "first");
    PASSWORD(" spaced pass \n", " spaced pass ");
    PASSWORD("\n", "");
    PASSWORD("", "");
    char err[256] = "";
    assert_null(cert_read_password_file("/nonexistent/gatehouse/pw.txt", err, sizeof err));
    assert_non_null(strstr(err, "cannot read"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_pem_bundle),
            cmocka_unit_test(test_pem_with_text_and_key),
            cmocka_unit_test(test_pem_legacy_labels),
            cmocka_unit_test(test_der),
            cmocka_unit_test(test_pkcs12_with_password),
            cmocka_unit_test(test_pkcs12_without_password),
            cmocka_unit_test(test_pkcs12_empty_password_forms),
            cmocka_unit_test(test_private_key_refused),
            cmocka_unit_test(test_csr_refused),
            cmocka_unit_test(test_empty_and_garbage),
            cmocka_unit_test(test_truncated),
            cmocka_unit_test(test_load_file),
            cmocka_unit_test(test_key_file),
            cmocka_unit_test(test_password_file),
    };
    return cmocka_run_group_tests_name("cert_load", tests, setup, teardown);
}
