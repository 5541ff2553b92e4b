#include "diagnose/finding.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const code_names[] = {
        [DIAG_DNS_RESOLUTION_FAILED] = "DNS_RESOLUTION_FAILED",
        [DIAG_CONNECTION_REFUSED] = "CONNECTION_REFUSED",
        [DIAG_CONNECTION_TIMEOUT] = "CONNECTION_TIMEOUT",
        [DIAG_TLS_HANDSHAKE_FAILED] = "TLS_HANDSHAKE_FAILED",
        [DIAG_CERT_LEAF_NOT_FIRST] = "CERT_LEAF_NOT_FIRST",
        [DIAG_CERT_NOT_ALLOWLISTED] = "CERT_NOT_ALLOWLISTED",
        [DIAG_CERT_INTERMEDIATE_MISSING] = "CERT_INTERMEDIATE_MISSING",
        [DIAG_CERT_ROOT_NOT_TRUSTED] = "CERT_ROOT_NOT_TRUSTED",
        [DIAG_CERT_NOT_WELL_KNOWN] = "CERT_NOT_WELL_KNOWN",
        [DIAG_CERT_EXPIRED] = "CERT_EXPIRED",
        [DIAG_CERT_NOT_YET_VALID] = "CERT_NOT_YET_VALID",
        [DIAG_CERT_NAME_MISMATCH] = "CERT_NAME_MISMATCH",
        [DIAG_RESPONSE_TIMEOUT] = "RESPONSE_TIMEOUT",
        [DIAG_HTTP_STATUS_MISMATCH] = "HTTP_STATUS_MISMATCH",
        [DIAG_HTTP_BODY_MISMATCH] = "HTTP_BODY_MISMATCH",
        [DIAG_OK] = "OK",
};

static const char *const warning_names[] = {
        [WARN_TRUST_ANCHOR_NOT_CA] = "TRUST_ANCHOR_NOT_CA",
        [WARN_TRUST_ANCHOR_NOT_ROOT] = "TRUST_ANCHOR_NOT_ROOT",
        [WARN_CHAIN_OUT_OF_ORDER] = "CHAIN_OUT_OF_ORDER",
        [WARN_CHAIN_EXTRA_CERTS] = "CHAIN_EXTRA_CERTS",
        [WARN_CERT_EXPIRES_SOON] = "CERT_EXPIRES_SOON",
        [WARN_ALTERNATE_SNI_DIFFERS] = "ALTERNATE_SNI_DIFFERS",
        [WARN_CERT_CHANGED] = "CERT_CHANGED",
        [WARN_PROBE_TRAFFIC_DIFFER] = "PROBE_TRAFFIC_DIFFER",
};

const char *diag_code_name(enum diag_code code)
{
    if ((size_t)code < sizeof code_names / sizeof code_names[0] && code_names[code])
        return code_names[code];
    return "UNKNOWN";
}

const char *diag_warning_name(enum diag_warning w)
{
    if ((size_t)w < sizeof warning_names / sizeof warning_names[0] && warning_names[w])
        return warning_names[w];
    return "UNKNOWN";
}

bool diag_code_is_certificate(enum diag_code code)
{
    return code >= DIAG_CERT_LEAF_NOT_FIRST && code <= DIAG_CERT_NAME_MISMATCH;
}

char *diag_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

int finding_add(struct finding_list *list, enum diag_code code, char *message, char *remedy)
{
    struct finding *grown = realloc(list->items, (list->n + 1) * sizeof *list->items);
    if (!grown || !message || !remedy) {
        if (grown)
            list->items = grown;
        free(message);
        free(remedy);
        return -1;
    }
    list->items = grown;
    list->items[list->n++] = (struct finding){.code = code, .message = message, .remedy = remedy};
    return 0;
}

int warning_add(struct finding_list *list, enum diag_warning code, char *message)
{
    if (!message)
        return -1;
    struct warning *grown =
            realloc(list->warnings, (list->n_warnings + 1) * sizeof *list->warnings);
    if (!grown) {
        free(message);
        return -1;
    }
    list->warnings = grown;
    list->warnings[list->n_warnings++] = (struct warning){.code = code, .message = message};
    return 0;
}

void finding_list_sort(struct finding_list *list)
{
    /* Insertion sort: lists are tiny and it is stable. */
    for (size_t i = 1; i < list->n; i++) {
        struct finding f = list->items[i];
        size_t j = i;
        while (j > 0 && list->items[j - 1].code > f.code) {
            list->items[j] = list->items[j - 1];
            j--;
        }
        list->items[j] = f;
    }
}

enum diag_code finding_list_code(const struct finding_list *list)
{
    enum diag_code best = DIAG_OK;
    for (size_t i = 0; i < list->n; i++)
        if (list->items[i].code < best)
            best = list->items[i].code;
    return best;
}

bool finding_list_has(const struct finding_list *list, enum diag_code code)
{
    for (size_t i = 0; i < list->n; i++)
        if (list->items[i].code == code)
            return true;
    return false;
}

void finding_list_clear(struct finding_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].message);
        free(list->items[i].remedy);
    }
    for (size_t i = 0; i < list->n_warnings; i++)
        free(list->warnings[i].message);
    free(list->items);
    free(list->warnings);
    memset(list, 0, sizeof *list);
}
