/*
 * name_match: does a certificate cover a host name or IP address? RFC 6125 rules: DNS names are
 * compared with the subjectAltName dNSName entries only; the subject CN is used only when the
 * certificate has no dNSName at all; one wildcard, as the whole left-most label, matching exactly
 * one label. IP addresses match iPAddress entries only.
 */
#ifndef GATEHOUSE_TLS_NAME_MATCH_H
#define GATEHOUSE_TLS_NAME_MATCH_H

#include <stdbool.h>

#include "tls/cert_info.h"

enum name_match_basis {
    NAME_BASIS_DNS_SAN, /* compared with dNSName entries */
    NAME_BASIS_CN,      /* no dNSName: compared with the subject CN */
    NAME_BASIS_IP_SAN,  /* an IP address: compared with iPAddress entries */
};

struct name_match_result {
    bool matched;
    enum name_match_basis basis;
    const char *matched_by; /* the SAN/CN text that matched (points into cert_info), or NULL */
};

/* True when <name> is an IPv4 or IPv6 literal (no brackets). */
bool name_is_ip_literal(const char *name);

/* One pattern against one DNS name, RFC 6125 style (exposed for unit tests). */
bool name_dns_pattern_matches(const char *pattern, const char *name);

void name_match_cert(const struct cert_info *cert, const char *name, struct name_match_result *out);

#endif
