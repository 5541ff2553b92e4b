#include "tls/cert_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

char *cert_name_text(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return NULL;
    /* RFC 2253 order and escaping, but keep UTF-8 readable instead of \XX escapes. */
    unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
    X509_NAME_print_ex(bio, name, 0, flags);
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    char *text = malloc((size_t)len + 1);
    if (text) {
        memcpy(text, data, (size_t)len);
        text[len] = '\0';
    }
    BIO_free(bio);
    return text;
}

int cert_asn1_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = timegm(&tm);
    return 0;
}

void cert_sha256_hex(X509 *x, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    out[0] = '\0';
    if (X509_digest(x, EVP_sha256(), md, &n) != 1)
        return;
    for (unsigned int i = 0; i < n && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
}

bool cert_equal(X509 *a, X509 *b)
{
    return X509_cmp(a, b) == 0;
}

/*
 * Signature checks are most of what judging a chain costs, and the prober judges the same
 * chains over and over. A small per-thread cache remembers verified (subject, issuer) pairs,
 * keyed by the SHA-256 of both certificates' DER, so it can never confuse two certificates.
 */
#define ISSUED_CACHE_SLOTS 1024

struct issued_entry {
    unsigned char key[64];
    bool valid;
    bool result;
};

static _Thread_local struct issued_entry issued_cache[ISSUED_CACHE_SLOTS];

static bool verify_issued(X509 *subject, X509 *issuer);

bool cert_issued_by(X509 *subject, X509 *issuer)
{
    unsigned char key[64];
    unsigned int n1 = 0, n2 = 0;
    if (X509_digest(subject, EVP_sha256(), key, &n1) != 1 ||
        X509_digest(issuer, EVP_sha256(), key + 32, &n2) != 1 || n1 != 32 || n2 != 32)
        return verify_issued(subject, issuer);
    unsigned slot = ((unsigned)key[0] | (unsigned)key[33] << 8) % ISSUED_CACHE_SLOTS;
    struct issued_entry *e = &issued_cache[slot];
    if (e->valid && memcmp(e->key, key, sizeof key) == 0)
        return e->result;
    bool result = verify_issued(subject, issuer);
    memcpy(e->key, key, sizeof key);
    e->valid = true;
    e->result = result;
    return result;
}

static bool verify_issued(X509 *subject, X509 *issuer)
{
    if (X509_NAME_cmp(X509_get_issuer_name(subject), X509_get_subject_name(issuer)) != 0)
        return false;
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(subject);
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(issuer);
    if (akid && skid && ASN1_OCTET_STRING_cmp(akid, skid) != 0)
        return false;
    EVP_PKEY *key = X509_get0_pubkey(issuer);
    if (!key)
        return false;
    int ok = X509_verify(subject, key);
    if (ok != 1) {
        /* A failed verification leaves errors on the thread's queue; they are not ours. */
        while (ERR_get_error() != 0)
            ;
    }
    return ok == 1;
}

static char *dup_asn1_string(const ASN1_STRING *s)
{
    const unsigned char *data = ASN1_STRING_get0_data(s);
    int len = ASN1_STRING_length(s);
    char *out = malloc((size_t)len + 1);
    if (!out)
        return NULL;
    for (int i = 0; i < len; i++) {
        unsigned char c = data[i];
        /* Certificates are attacker-controlled: keep control bytes out of terminals and logs. */
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[len] = '\0';
    return out;
}

static char *format_ip(const ASN1_OCTET_STRING *ip)
{
    const unsigned char *p = ASN1_STRING_get0_data(ip);
    int len = ASN1_STRING_length(ip);
    char buf[INET6_ADDRSTRLEN + 16];
    if (len == 4) {
        inet_ntop(AF_INET, p, buf, sizeof buf);
    } else if (len == 16) {
        /* Compressed form, as users type it ("::1"). */
        inet_ntop(AF_INET6, p, buf, sizeof buf);
    } else {
        snprintf(buf, sizeof buf, "<%d-byte address>", len);
    }
    return strdup(buf);
}

static int collect_sans(struct cert_info *info, X509 *x)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (!names)
        return 0;
    int n = sk_GENERAL_NAME_num(names);
    info->sans = calloc((size_t)(n > 0 ? n : 1), sizeof *info->sans);
    if (!info->sans) {
        GENERAL_NAMES_free(names);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        char *value = NULL;
        const char *prefix = NULL;
        switch (gn->type) {
        case GEN_DNS:
            prefix = "DNS:";
            value = dup_asn1_string(gn->d.dNSName);
            break;
        case GEN_IPADD:
            prefix = "IP:";
            value = format_ip(gn->d.iPAddress);
            break;
        case GEN_URI:
            prefix = "URI:";
            value = dup_asn1_string(gn->d.uniformResourceIdentifier);
            break;
        case GEN_EMAIL:
            prefix = "email:";
            value = dup_asn1_string(gn->d.rfc822Name);
            break;
        default:
            continue;
        }
        if (!value)
            continue;
        size_t len = strlen(prefix) + strlen(value) + 1;
        char *entry = malloc(len);
        if (entry) {
            snprintf(entry, len, "%s%s", prefix, value);
            info->sans[info->n_sans++] = entry;
        }
        free(value);
    }
    GENERAL_NAMES_free(names);
    return 0;
}

static char *find_ca_issuers_uri(X509 *x)
{
    AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
    if (!aia)
        return NULL;
    char *uri = NULL;
    for (int i = 0; i < sk_ACCESS_DESCRIPTION_num(aia) && !uri; i++) {
        ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
        if (OBJ_obj2nid(ad->method) == NID_ad_ca_issuers && ad->location->type == GEN_URI)
            uri = dup_asn1_string(ad->location->d.uniformResourceIdentifier);
    }
    AUTHORITY_INFO_ACCESS_free(aia);
    return uri;
}

static char *find_common_name(X509 *x)
{
    X509_NAME *name = X509_get_subject_name(x);
    int idx = -1, last = -1;
    while ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, idx)) >= 0)
        last = idx;
    if (last < 0)
        return NULL;
    X509_NAME_ENTRY *e = X509_NAME_get_entry(name, last);
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (len < 0)
        return NULL;
    char *out = malloc((size_t)len + 1);
    if (out) {
        for (int i = 0; i < len; i++)
            out[i] = (utf8[i] < 0x20 || utf8[i] == 0x7f) ? '?' : (char)utf8[i];
        out[len] = '\0';
    }
    OPENSSL_free(utf8);
    return out;
}

int cert_info_init(struct cert_info *info, X509 *x)
{
    memset(info, 0, sizeof *info);
    if (!X509_up_ref(x))
        return -1;
    info->x509 = x;
    info->subject = cert_name_text(X509_get_subject_name(x));
    info->issuer = cert_name_text(X509_get_issuer_name(x));
    if (!info->subject || !info->issuer)
        return -1;
    if (cert_asn1_time(X509_get0_notBefore(x), &info->not_before) != 0)
        info->not_before = 0;
    if (cert_asn1_time(X509_get0_notAfter(x), &info->not_after) != 0)
        info->not_after = 0;
    cert_sha256_hex(x, info->sha256);
    info->self_signed = cert_issued_by(x, x);
    info->ca = X509_check_ca(x) != 0;
    if (info->ca)
        info->kind = info->self_signed ? CERT_KIND_ROOT : CERT_KIND_INTERMEDIATE;
    else
        info->kind = info->self_signed ? CERT_KIND_SELF_SIGNED_LEAF : CERT_KIND_LEAF;
    if (collect_sans(info, x) != 0)
        return -1;
    info->aia_ca_issuers = find_ca_issuers_uri(x);
    info->common_name = find_common_name(x);
    return 0;
}

void cert_info_clear(struct cert_info *info)
{
    if (!info)
        return;
    X509_free(info->x509);
    free(info->subject);
    free(info->issuer);
    for (size_t i = 0; i < info->n_sans; i++)
        free(info->sans[i]);
    free(info->sans);
    free(info->aia_ca_issuers);
    free(info->common_name);
    memset(info, 0, sizeof *info);
}

const char *cert_kind_name(enum cert_kind kind)
{
    switch (kind) {
    case CERT_KIND_LEAF:
        return "leaf";
    case CERT_KIND_SELF_SIGNED_LEAF:
        return "self-signed leaf";
    case CERT_KIND_INTERMEDIATE:
        return "intermediate";
    case CERT_KIND_ROOT:
        return "root";
    }
    return "unknown";
}
