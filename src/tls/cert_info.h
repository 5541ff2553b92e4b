/*
 * cert_info: the facts about one X.509 certificate that diagnoses and reports show (subject,
 * issuer, SANs, validity, fingerprint, CA flag, self-signature, AIA caIssuers URL).
 */
#ifndef GATEHOUSE_TLS_CERT_INFO_H
#define GATEHOUSE_TLS_CERT_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

enum cert_kind {
    CERT_KIND_LEAF,             /* end-entity certificate issued by someone else */
    CERT_KIND_SELF_SIGNED_LEAF, /* end-entity certificate signed by its own key */
    CERT_KIND_INTERMEDIATE,     /* CA certificate issued by another CA */
    CERT_KIND_ROOT,             /* self-signed CA certificate */
};

#define CERT_SHA256_HEX_LEN 64

struct cert_info {
    X509 *x509;    /* owned reference */
    char *subject; /* RFC 2253 text */
    char *issuer;
    char **sans; /* "DNS:name", "IP:addr", "URI:...", "email:..." */
    size_t n_sans;
    time_t not_before;
    time_t not_after;
    char sha256[CERT_SHA256_HEX_LEN + 1]; /* lower-case hex of the DER */
    bool self_signed;
    bool ca;
    enum cert_kind kind;
    char *aia_ca_issuers; /* caIssuers URI from Authority Information Access, or NULL */
    char *common_name;    /* last CN of the subject, or NULL */
};

/* Fills <info> from <x> (takes its own reference). Returns 0, or -1 when out of memory. */
int cert_info_init(struct cert_info *info, X509 *x);
void cert_info_clear(struct cert_info *info);

const char *cert_kind_name(enum cert_kind kind);

/* RFC 2253 text of an X.509 name (malloc'd; never NULL except on OOM). */
char *cert_name_text(const X509_NAME *name);

/*
 * True when <issuer> issued <subject>: the names chain, key identifiers (when both present)
 * agree, and <issuer>'s key verifies <subject>'s signature. Unlike X509_check_issued() it does
 * not reject issuers whose keyUsage lacks keyCertSign: that is reported, not hidden.
 */
bool cert_issued_by(X509 *subject, X509 *issuer);

/* True when both certificates have the same DER encoding. */
bool cert_equal(X509 *a, X509 *b);

/* Lower-case hex SHA-256 of a certificate's DER into out[CERT_SHA256_HEX_LEN + 1]. */
void cert_sha256_hex(X509 *x, char *out);

/* An ASN1_TIME as a time_t in *out; returns 0, or -1 when it cannot be converted. */
int cert_asn1_time(const ASN1_TIME *t, time_t *out);

#endif
