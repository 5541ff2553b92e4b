/*
 * explain: turns the facts of a chain analysis into findings -- a message that says what is
 * wrong with which certificate, and a remedy that says what to change where (which intermediate
 * to send, which root to upload, which names the certificate covers, which host name to set).
 */
#ifndef GATEHOUSE_DIAGNOSE_EXPLAIN_H
#define GATEHOUSE_DIAGNOSE_EXPLAIN_H

#include <stdbool.h>
#include <time.h>

#include "diagnose/finding.h"
#include "tls/chain_analysis.h"
#include "tls/trust.h"

struct explain_context {
    const char *name_source; /* where the checked name came from: "--host", "the URL", ... */
    bool addressed_by_ip;    /* the backend address is an IP literal */
    bool cli;                /* phrase fixes with command-line options as well as config keys */
    time_t now;
    int expiry_warning_days; /* warn when a path certificate expires within this many days */
};

/* Appends the findings and warnings of <report> to <out>. Returns 0, or -1 when out of memory. */
int explain_chain(const struct chain_report *report, const struct trust_policy *policy,
                  const struct explain_context *ctx, struct finding_list *out);

/* "app.example.com, *.example.com, IP 127.0.0.1" (malloc'd): the names a certificate covers. */
char *explain_cert_names(const struct cert_info *cert);

/* "'CN=Root' (root.pem), 'CN=Other' (other.pem)" or "none" (malloc'd). */
char *explain_anchor_list(const struct trust_policy *policy);

/* "2026-11-23 13:16 UTC" into buf. */
const char *explain_date(time_t t, char *buf, size_t size);

#endif
