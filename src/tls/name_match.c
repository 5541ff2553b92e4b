#include "tls/name_match.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

bool name_is_ip_literal(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* Compares two DNS names ignoring case and one trailing dot on either side. */
static bool dns_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen > 0 && a[alen - 1] == '.')
        alen--;
    if (blen > 0 && b[blen - 1] == '.')
        blen--;
    return alen == blen && alen > 0 && strncasecmp(a, b, alen) == 0;
}

bool name_dns_pattern_matches(const char *pattern, const char *name)
{
    size_t plen = strlen(pattern), nlen = strlen(name);
    if (plen == 0 || nlen == 0)
        return false;
    if (pattern[0] != '*')
        return strchr(pattern, '*') == NULL && dns_equal(pattern, plen, name, nlen);
    /* Only "*.rest": a wildcard that is the whole left-most label, with at least two labels
     * after it (no "*.com"), and the name's first label non-empty. */
    if (plen < 3 || pattern[1] != '.' || strchr(pattern + 1, '*'))
        return false;
    const char *rest = pattern + 2;
    const char *dot = strchr(rest, '.');
    if (!dot || dot[1] == '\0')
        return false;
    const char *name_dot = strchr(name, '.');
    if (!name_dot || name_dot == name)
        return false;
    /* An IDN A-label in the wildcard position would be a partial-label match: refuse it. */
    if (strncasecmp(name, "xn--", 4) == 0)
        return false;
    return dns_equal(rest, strlen(rest), name_dot + 1, strlen(name_dot + 1));
}

static bool ip_equal(const char *a, const char *b)
{
    unsigned char x[16], y[16];
    if (inet_pton(AF_INET, a, x) == 1)
        return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
    if (inet_pton(AF_INET6, a, x) == 1)
        return inet_pton(AF_INET6, b, y) == 1 && memcmp(x, y, 16) == 0;
    return false;
}

void name_match_cert(const struct cert_info *cert, const char *name, struct name_match_result *out)
{
    memset(out, 0, sizeof *out);
    if (name_is_ip_literal(name)) {
        out->basis = NAME_BASIS_IP_SAN;
        for (size_t i = 0; i < cert->n_sans; i++) {
            if (strncmp(cert->sans[i], "IP:", 3) == 0 && ip_equal(cert->sans[i] + 3, name)) {
                out->matched = true;
                out->matched_by = cert->sans[i];
                return;
            }
        }
        return;
    }
    bool has_dns = false;
    for (size_t i = 0; i < cert->n_sans; i++) {
        if (strncmp(cert->sans[i], "DNS:", 4) != 0)
            continue;
        has_dns = true;
        if (name_dns_pattern_matches(cert->sans[i] + 4, name)) {
            out->basis = NAME_BASIS_DNS_SAN;
            out->matched = true;
            out->matched_by = cert->sans[i];
            return;
        }
    }
    if (has_dns) {
        out->basis = NAME_BASIS_DNS_SAN;
        return;
    }
    out->basis = NAME_BASIS_CN;
    if (cert->common_name && name_dns_pattern_matches(cert->common_name, name)) {
        out->matched = true;
        out->matched_by = cert->common_name;
    }
}
