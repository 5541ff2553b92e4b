/*
 * trust: the trust policy a backend's certificate is judged by -- one of the modelled gateway's
 * three modes: uploaded trusted roots (v2), an allow-list of exact certificates (v1
 * authentication certificates), or the system's well-known CAs.
 */
#ifndef GATEHOUSE_TLS_TRUST_H
#define GATEHOUSE_TLS_TRUST_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "tls/cert_info.h"

enum trust_mode {
    TRUST_WELL_KNOWN, /* system CA store */
    TRUST_ROOTS,      /* chain must end at one of the anchors */
    TRUST_ALLOWLIST,  /* presented leaf must equal one of the anchors */
};

struct trust_anchor {
    struct cert_info info;
    char *source; /* file path or config name it came from */
};

struct trust_policy {
    enum trust_mode mode;
    struct trust_anchor *anchors;
    size_t n_anchors;
    X509_STORE *system; /* TRUST_WELL_KNOWN: loaded on first use */
    bool system_failed;
};

const char *trust_mode_name(enum trust_mode mode); /* "trusted-root", "auth-cert", ... */

void trust_policy_init(struct trust_policy *policy, enum trust_mode mode);
void trust_policy_clear(struct trust_policy *policy);

/* Adds one certificate; <source> is copied. Returns 0 or -1 (OOM). */
int trust_policy_add_cert(struct trust_policy *policy, X509 *x, const char *source);

/* Adds every certificate of a file (PEM/DER/PKCS#12). Returns 0, or -1 and a sentence in err. */
int trust_policy_add_file(struct trust_policy *policy, const char *path, const char *password,
                          char *err, size_t errlen);

/* Loads the system store for TRUST_WELL_KNOWN (idempotent). Returns 0 or -1. */
int trust_policy_load_system(struct trust_policy *policy);

/*
 * A trust anchor that issued <x> (for a self-signed <x>: an anchor with the same name and key).
 * Uploaded anchors first; in well-known mode, the system store. Returns a new reference in
 * *issuer (caller frees) and, for uploaded anchors, the anchor's index in *anchor_index (else
 * -1). Returns false when none.
 */
bool trust_find_issuer(const struct trust_policy *policy, X509 *x, X509 **issuer,
                       int *anchor_index);

#endif
