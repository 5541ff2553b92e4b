#include "tls/cert_load.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

static int read_file(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        fclose(f);
        return -1;
    }
    if (st.st_size > CERT_FILE_MAX_BYTES) {
        snprintf(err, errlen, "file is %lld bytes, larger than the %d-byte limit for certificates",
                 (long long)st.st_size, CERT_FILE_MAX_BYTES);
        fclose(f);
        return -1;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        fclose(f);
        return -1;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        snprintf(err, errlen, "read error");
        return -1;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

static bool contains(const unsigned char *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (len < n)
        return false;
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(data + i, needle, n) == 0)
            return true;
    return false;
}

static bool looks_like_pem(const unsigned char *data, size_t len)
{
    return contains(data, len, "-----BEGIN ");
}

static int load_pem(const unsigned char *data, size_t len, STACK_OF(X509) * certs)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (!bio)
        return -1;
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!infos)
        return -1;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *xi = sk_X509_INFO_value(infos, i);
        if (xi->x509 && X509_up_ref(xi->x509)) {
            if (!sk_X509_push(certs, xi->x509))
                X509_free(xi->x509);
        }
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    return 0;
}

static int load_der(const unsigned char *data, size_t len, STACK_OF(X509) * certs)
{
    const unsigned char *p = data;
    /* A DER file may hold several certificates back to back. */
    while (p < data + len) {
        X509 *x = d2i_X509(NULL, &p, (long)(data + len - p));
        if (!x)
            break;
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            return -1;
        }
    }
    return sk_X509_num(certs) > 0 ? 0 : -1;
}

/* 1 = it is PKCS#12 and certs were added; 0 = not PKCS#12; -1 = PKCS#12 but unusable (err). */
static int load_pkcs12(const unsigned char *data, size_t len, const char *password,
                       STACK_OF(X509) * certs, EVP_PKEY **key_out, char *err, size_t errlen)
{
    const unsigned char *p = data;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (!p12)
        return 0;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    /* An empty password and no password are different MACs in PKCS#12; files made by other
     * tools use either, so an empty or absent password tries both. */
    bool empty = !password || !*password;
    const char *pw = empty ? "" : password;
    bool opened = true;
    if (PKCS12_mac_present(p12)) {
        if (!empty)
            opened = PKCS12_verify_mac(p12, password, -1);
        else if (PKCS12_verify_mac(p12, "", 0))
            pw = "";
        else if (PKCS12_verify_mac(p12, NULL, 0))
            pw = NULL;
        else
            opened = false;
    }
    if (!opened) {
        snprintf(err, errlen,
                 !empty ? "PKCS#12 file: the password does not open it"
                        : "PKCS#12 file is password-protected: give the password with "
                          "--password-file (or password-file in the config)");
        PKCS12_free(p12);
        return -1;
    }
    if (!PKCS12_parse(p12, pw, &key, &cert, &ca)) {
        unsigned long e = ERR_peek_last_error();
        snprintf(err, errlen, "PKCS#12 file cannot be decoded (%s)",
                 e ? ERR_reason_error_string(e) : "unknown reason");
        PKCS12_free(p12);
        return -1;
    }
    PKCS12_free(p12);
    if (cert)
        sk_X509_push(certs, cert);
    for (int i = 0; ca && i < sk_X509_num(ca); i++) {
        X509 *x = sk_X509_value(ca, i);
        if (X509_up_ref(x) && !sk_X509_push(certs, x))
            X509_free(x);
    }
    sk_X509_pop_free(ca, X509_free);
    if (key_out)
        *key_out = key;
    else
        EVP_PKEY_free(key);
    return 1;
}

static void describe_empty(const unsigned char *data, size_t len, char *err, size_t errlen)
{
    if (len == 0)
        snprintf(err, errlen, "file is empty");
    else if (contains(data, len, "PRIVATE KEY-----"))
        snprintf(err, errlen, "contains a private key, not a certificate");
    else if (contains(data, len, "-----BEGIN CERTIFICATE REQUEST-----"))
        snprintf(err, errlen, "contains a certificate signing request, not a certificate");
    else if (contains(data, len, "-----BEGIN CERTIFICATE-----"))
        snprintf(err, errlen,
                 "has a PEM CERTIFICATE block that does not decode (corrupt base64 "
                 "or truncated file)");
    else if (looks_like_pem(data, len))
        snprintf(err, errlen, "holds PEM data but no CERTIFICATE block");
    else
        snprintf(err, errlen, "no certificate found (expected PEM, DER .cer or PKCS#12 .pfx)");
}

int cert_load_mem(const unsigned char *data, size_t len, const char *password,
                  STACK_OF(X509) * *out, char *err, size_t errlen)
{
    *out = NULL;
    STACK_OF(X509) *certs = sk_X509_new_null();
    if (!certs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    if (looks_like_pem(data, len)) {
        load_pem(data, len, certs);
    } else {
        rc = load_pkcs12(data, len, password, certs, NULL, err, errlen);
        if (rc == 0)
            load_der(data, len, certs);
    }
    ERR_clear_error();
    if (rc < 0) {
        sk_X509_pop_free(certs, X509_free);
        return -1;
    }
    if (sk_X509_num(certs) == 0) {
        describe_empty(data, len, err, errlen);
        sk_X509_pop_free(certs, X509_free);
        return -1;
    }
    *out = certs;
    return 0;
}

int cert_load_file(const char *path, const char *password, STACK_OF(X509) * *out, char *err,
                   size_t errlen)
{
    unsigned char *data;
    size_t len;
    *out = NULL;
    if (read_file(path, &data, &len, err, errlen) != 0)
        return -1;
    int rc = cert_load_mem(data, len, password, out, err, errlen);
    free(data);
    return rc;
}

EVP_PKEY *cert_load_key_file(const char *path, const char *password, char *err, size_t errlen)
{
    unsigned char *data;
    size_t len;
    if (read_file(path, &data, &len, err, errlen) != 0)
        return NULL;
    EVP_PKEY *key = NULL;
    if (looks_like_pem(data, len)) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        if (bio) {
            key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)(password ? password : ""));
            BIO_free(bio);
        }
        if (!key)
            snprintf(err, errlen, "%s",
                     contains(data, len, "-----BEGIN CERTIFICATE-----")
                             ? "contains a certificate, not a private key"
                             : (contains(data, len, "ENCRYPTED")
                                        ? "encrypted private key: wrong or missing password"
                                        : "no usable private key found in the PEM data"));
    } else {
        STACK_OF(X509) *certs = sk_X509_new_null();
        int rc = certs ? load_pkcs12(data, len, password, certs, &key, err, errlen) : -1;
        sk_X509_pop_free(certs, X509_free);
        if (rc == 0) {
            const unsigned char *p = data;
            key = d2i_AutoPrivateKey(NULL, &p, (long)len);
            if (!key)
                snprintf(err, errlen, "no private key found (expected PEM, DER or PKCS#12)");
        } else if (rc == 1 && !key) {
            snprintf(err, errlen, "PKCS#12 file holds no private key");
        }
    }
    OPENSSL_cleanse(data, len);
    free(data);
    ERR_clear_error();
    return key;
}

char *cert_read_password_file(const char *path, char *err, size_t errlen)
{
    unsigned char *data;
    size_t len;
    if (read_file(path, &data, &len, err, errlen) != 0)
        return NULL;
    size_t n = 0;
    while (n < len && data[n] != '\n' && data[n] != '\r')
        n++;
    char *pw = malloc(n + 1);
    if (pw) {
        memcpy(pw, data, n);
        pw[n] = '\0';
    } else {
        snprintf(err, errlen, "out of memory");
    }
    OPENSSL_cleanse(data, len);
    free(data);
    return pw;
}
