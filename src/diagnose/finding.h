/*
 * finding: the diagnosis vocabulary. Codes are a stable contract (DESIGN.md): the enum order is
 * the precedence order, so the first finding of a sorted list is the verdict's code.
 */
#ifndef GATEHOUSE_DIAGNOSE_FINDING_H
#define GATEHOUSE_DIAGNOSE_FINDING_H

#include <stdbool.h>
#include <stddef.h>

enum diag_code {
    DIAG_DNS_RESOLUTION_FAILED,
    DIAG_CONNECTION_REFUSED,
    DIAG_CONNECTION_TIMEOUT,
    DIAG_TLS_HANDSHAKE_FAILED,
    DIAG_CERT_LEAF_NOT_FIRST,
    DIAG_CERT_NOT_ALLOWLISTED,
    DIAG_CERT_INTERMEDIATE_MISSING,
    DIAG_CERT_ROOT_NOT_TRUSTED,
    DIAG_CERT_NOT_WELL_KNOWN,
    DIAG_CERT_EXPIRED,
    DIAG_CERT_NOT_YET_VALID,
    DIAG_CERT_NAME_MISMATCH,
    DIAG_RESPONSE_TIMEOUT,
    DIAG_HTTP_STATUS_MISMATCH,
    DIAG_HTTP_BODY_MISMATCH,
    DIAG_OK, /* healthy; always last */
};

/* Warnings never make a backend unhealthy; they say what will hurt later or elsewhere. */
enum diag_warning {
    WARN_TRUST_ANCHOR_NOT_CA,   /* a non-CA certificate (e.g. self-signed leaf) used as root */
    WARN_TRUST_ANCHOR_NOT_ROOT, /* an intermediate given as a trusted root */
    WARN_CHAIN_OUT_OF_ORDER,    /* the path's certificates were sent in another order */
    WARN_CHAIN_EXTRA_CERTS,     /* certificates sent that belong to no path */
    WARN_CERT_EXPIRES_SOON,     /* a certificate of the path expires within the warning window */
    WARN_ALTERNATE_SNI_DIFFERS, /* another SNI returns another certificate (healthy anyway) */
    WARN_CERT_CHANGED,          /* the backend's leaf differs from the previous probe's */
    WARN_PROBE_TRAFFIC_DIFFER,  /* the probe and real traffic use different SNI/host/port */
};

const char *diag_code_name(enum diag_code code);
const char *diag_warning_name(enum diag_warning warning);

/* True for the codes that are about the certificate (they trigger the SNI second look). */
bool diag_code_is_certificate(enum diag_code code);

struct finding {
    enum diag_code code;
    char *message;
    char *remedy;
};

struct warning {
    enum diag_warning code;
    char *message;
};

struct finding_list {
    struct finding *items;
    size_t n;
    struct warning *warnings;
    size_t n_warnings;
};

/* Adds a finding; the list owns the texts (freed too when the call fails). */
int finding_add(struct finding_list *list, enum diag_code code, char *message, char *remedy);
int warning_add(struct finding_list *list, enum diag_warning code, char *message);

/* Stable sort by precedence. */
void finding_list_sort(struct finding_list *list);

/* Code of the first finding, or DIAG_OK. */
enum diag_code finding_list_code(const struct finding_list *list);
bool finding_list_has(const struct finding_list *list, enum diag_code code);

void finding_list_clear(struct finding_list *list);

/* asprintf that returns NULL instead of an undefined pointer on failure. */
__attribute__((format(printf, 1, 2))) char *diag_fmt(const char *fmt, ...);

#endif
