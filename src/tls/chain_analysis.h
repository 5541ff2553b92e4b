/*
 * chain_analysis: judges the certificate chain a backend really sent, as sent, against a trust
 * policy and an expected name. Pure logic (no I/O): the prober, the data path, the admin API and
 * `gatehouse probe` all call this one function, so they can never disagree. It produces facts;
 * diagnose/ turns facts into codes, messages and remedies.
 *
 * The walk (see DESIGN.md "Diagnosis contract"): find the leaf (the first certificate, unless
 * that is a CA and a later one is not: the chain file is in the wrong order), then climb issuer
 * by issuer through the certificates sent, in whatever order they came, until a trust anchor
 * signs one (trusted), a self-signed certificate that is not an anchor is reached, or an issuer
 * is neither sent nor an anchor (missing intermediate when the climb is still at the leaf;
 * untrusted root above an intermediate).
 */
#ifndef GATEHOUSE_TLS_CHAIN_ANALYSIS_H
#define GATEHOUSE_TLS_CHAIN_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "tls/cert_info.h"
#include "tls/name_match.h"
#include "tls/trust.h"

/* Chains longer than this are cut (the rest is still listed, not walked). */
#define CHAIN_MAX_CERTS 16

enum chain_status {
    CHAIN_TRUSTED,         /* reaches an anchor, or the leaf is allow-listed */
    CHAIN_EMPTY,           /* the server sent no certificate */
    CHAIN_NOT_ALLOWLISTED, /* allow-list mode: the leaf equals no uploaded certificate */
    CHAIN_ISSUER_MISSING,  /* the leaf's issuer was neither sent nor an anchor */
    CHAIN_UNTRUSTED_TOP,   /* climbed to a CA/self-signed cert whose issuer (or itself) is not
                              an anchor */
};

struct chain_cert {
    struct cert_info info;
    bool on_path; /* part of the leaf -> anchor path that was built */
    bool expired;
    bool not_yet_valid;
};

struct chain_report {
    struct chain_cert *certs; /* every certificate, in the order sent */
    size_t n_certs;
    size_t leaf;         /* index of the certificate treated as the leaf */
    bool leaf_not_first; /* certs[0] is a CA and a later certificate is an end-entity one */
    size_t path[CHAIN_MAX_CERTS + 1]; /* indexes of sent certs on the path, leaf first */
    size_t path_len;
    bool path_out_of_order; /* the path's certificates were not sent leaf-first in order */
    size_t unused_certs;    /* certificates sent that are not on the path */

    enum chain_status status;
    /* CHAIN_ISSUER_MISSING / CHAIN_UNTRUSTED_TOP: what could not be found */
    size_t top;           /* index of the highest sent certificate reached */
    int top_anchor;       /* >= 0: the climb went on through this uploaded anchor (an
                             intermediate uploaded as a root) and stopped above it */
    bool top_self_signed; /* the top is self-signed: it is the root that needs trusting */
    char *needed;         /* subject of the certificate that would complete the chain */
    char *needed_aia;     /* caIssuers URL of the certificate lacking its issuer, if any */
    /* CHAIN_TRUSTED */
    bool has_anchor;
    struct cert_info anchor; /* the anchor that closed the path (uploaded or system) */
    int anchor_index;        /* index in policy->anchors, -1 for the system store */
    bool anchor_expired;
    bool anchor_not_yet_valid;
    int via_anchor;      /* >= 0: an uploaded intermediate anchor the path went through */
    int allowlist_match; /* allow-list mode: index of the equal anchor, -1 when none */

    /* name check */
    bool name_checked;
    char *name;
    struct name_match_result name_result;
};

/*
 * Analyses <sent> (as received, leaf first if the server is right). <check_name> may be NULL
 * (no name check). <now> is the wall time validity is judged at. Returns 0, or -1 when out of
 * memory (the report is then cleared).
 */
int chain_analyze(STACK_OF(X509) * sent, struct trust_policy *policy, const char *check_name,
                  time_t now, struct chain_report *out);

void chain_report_clear(struct chain_report *report);

/* True when the chain has no trust, validity or name problem. */
bool chain_report_ok(const struct chain_report *report);

#endif
