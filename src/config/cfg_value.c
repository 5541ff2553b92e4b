/*
 * cfg_value: the syntax of single values: durations, sizes, status code ranges, host names
 * (with the modelled gateway's wildcard rules), host:port addresses and object names. Pure
 * functions with static reasons, so the command-line tools can share them.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "config/cfg_internal.h"

/* Reads decimal digits at *p into *v. Returns the number of digits, or -1 on overflow. */
static int read_digits(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    int n = 0;
    for (; *s >= '0' && *s <= '9'; s++, n++) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *p = s;
    *v = x;
    return n;
}

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b && a > UINT64_MAX / b)
        return false;
    *out = a * b;
    return true;
}

static bool starts_number_error(const char *s, const char **why)
{
    if (!*s) {
        *why = "empty value";
        return true;
    }
    if (*s == '-') {
        *why = "must not be negative";
        return true;
    }
    if (!isdigit((unsigned char)*s)) {
        *why = "expected a number";
        return true;
    }
    return false;
}

int cfg_parse_duration(const char *s, uint64_t *ms, const char **why)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};

    if (starts_number_error(s, why))
        return -1;
    uint64_t total = 0;
    const char *p = s;
    bool first = true;
    while (*p) {
        uint64_t v;
        int nd = read_digits(&p, &v);
        if (nd < 0) {
            *why = "too large";
            return -1;
        }
        if (nd == 0) {
            *why = "expected a number before the unit";
            return -1;
        }
        if (*p == '.' || *p == ',') {
            *why = "fractions are not supported; use a smaller unit (1500ms, not 1.5s)";
            return -1;
        }
        if (!*p) {
            if (!first) {
                *why = "missing unit after the last number (ms, s, m, h or d)";
                return -1;
            }
            /* A plain integer is seconds: the modelled gateway's fields are in seconds. */
            if (!mul_ok(v, 1000, ms)) {
                *why = "too large";
                return -1;
            }
            return 0;
        }
        const char *u = p;
        while (*p && !isdigit((unsigned char)*p))
            p++;
        size_t ulen = (size_t)(p - u);
        uint64_t factor = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (strlen(units[i].unit) == ulen && strncmp(units[i].unit, u, ulen) == 0)
                factor = units[i].ms;
        }
        if (!factor) {
            *why = "unknown unit (use ms, s, m, h or d, as in 500ms, 20s, 1m30s)";
            return -1;
        }
        uint64_t part;
        if (!mul_ok(v, factor, &part) || total > UINT64_MAX - part) {
            *why = "too large";
            return -1;
        }
        total += part;
        first = false;
    }
    *ms = total;
    return 0;
}

int cfg_parse_size(const char *s, uint64_t *bytes, const char **why)
{
    static const struct {
        const char *unit;
        unsigned shift;
    } units[] = {
            {"", 0},     {"b", 0},  {"k", 10},  {"kb", 10},  {"kib", 10}, {"m", 20},  {"mb", 20},
            {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40},   {"tb", 40}, {"tib", 40},
    };

    if (starts_number_error(s, why))
        return -1;
    const char *p = s;
    uint64_t v;
    if (read_digits(&p, &v) < 0) {
        *why = "too large";
        return -1;
    }
    if (*p == '.' || *p == ',') {
        *why = "fractions are not supported; use a smaller unit (1536k, not 1.5m)";
        return -1;
    }
    char unit[8];
    size_t ulen = strlen(p);
    if (ulen >= sizeof unit) {
        *why = "unknown unit (use k, m, g or t, as in 32k, 4g, 32KiB)";
        return -1;
    }
    for (size_t i = 0; i <= ulen; i++)
        unit[i] = (char)tolower((unsigned char)p[i]);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(units[i].unit, unit) != 0)
            continue;
        if (v > (UINT64_MAX >> units[i].shift)) {
            *why = "too large";
            return -1;
        }
        *bytes = v << units[i].shift;
        return 0;
    }
    *why = "unknown unit (use k, m, g or t, as in 32k, 4g, 32KiB)";
    return -1;
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int read_status(const char **p, uint16_t *out, const char **why)
{
    uint64_t v;
    int nd = read_digits(p, &v);
    if (nd <= 0) {
        *why = "expected a status code or a range such as 200-399";
        return -1;
    }
    if (v < 100 || v > 599) {
        *why = "status codes are 100 to 599";
        return -1;
    }
    *out = (uint16_t)v;
    return 0;
}

int cfg_parse_status_ranges(const char *s, struct cfg_status_range *out, size_t max, size_t *n,
                            const char **why)
{
    const char *p = skip_space(s);
    if (!*p) {
        *why = "empty status list";
        return -1;
    }
    for (;;) {
        struct cfg_status_range r;
        p = skip_space(p);
        if (read_status(&p, &r.lo, why) < 0)
            return -1;
        r.hi = r.lo;
        p = skip_space(p);
        if (*p == '-') {
            p = skip_space(p + 1);
            if (read_status(&p, &r.hi, why) < 0)
                return -1;
            if (r.hi < r.lo) {
                *why = "range ends before it starts";
                return -1;
            }
            p = skip_space(p);
        }
        if (*n >= max) {
            *why = "too many status ranges";
            return -1;
        }
        out[(*n)++] = r;
        if (!*p)
            return 0;
        if (*p != ',') {
            *why = "expected a status code or a range such as 200-399";
            return -1;
        }
        p++;
    }
}

bool cfg_status_matches(const struct cfg_probe_match *m, int status)
{
    if (m->n_status == 0)
        return status >= CFG_DEFAULT_STATUS_LO && status <= CFG_DEFAULT_STATUS_HI;
    for (size_t i = 0; i < m->n_status; i++) {
        if (status >= m->status[i].lo && status <= m->status[i].hi)
            return true;
    }
    return false;
}

/* Characters a listener host name may hold besides the wildcards (reference §1.4). */
static bool host_char(int c)
{
    return isalnum(c) || c == '-' || c == '.';
}

int cfg_check_host_name(const char *name, bool *wildcard, const char **why)
{
    size_t len = strlen(name);
    if (len == 0) {
        *why = "empty host name";
        return -1;
    }
    if (len > 253) {
        *why = "longer than 253 characters";
        return -1;
    }
    if (name[len - 1] == '.') {
        *why = "remove the trailing dot";
        return -1;
    }
    int stars = 0, wild = 0;
    int label_len = 0, label_stars = 0;
    for (size_t i = 0; i <= len; i++) {
        int c = (unsigned char)name[i];
        if (c == '.' || c == '\0') {
            if (label_len == 0) {
                *why = "empty label (two dots in a row, or a leading dot)";
                return -1;
            }
            label_len = 0;
            label_stars = 0;
            continue;
        }
        if (++label_len > 63) {
            *why = "a label is longer than 63 characters";
            return -1;
        }
        if (c == '*' || c == '?') {
            int next = (unsigned char)name[i + 1];
            if (c == '*' && ++label_stars > 1) {
                *why = "at most one '*' per label";
                return -1;
            }
            if ((c == '*' && (next == '*' || next == '?')) || (c == '?' && next == '*')) {
                *why = "'**', '*?' and '?*' are not allowed";
                return -1;
            }
            stars += c == '*';
            wild++;
            continue;
        }
        if (!host_char(c)) {
            *why = "only letters, digits, '-', '.' and the wildcards '*' and '?' are allowed";
            return -1;
        }
    }
    if (stars > 2) {
        *why = "at most two '*' in a host name";
        return -1;
    }
    if (wild > 4) {
        *why = "at most four wildcard characters ('*' and '?') in a host name";
        return -1;
    }
    *wildcard = wild > 0;
    return 0;
}

bool cfg_host_name_matches(const struct cfg_host_name *hn, const char *host, size_t len)
{
    const char *p = hn->name, *h = host, *he = host + len;
    if (!hn->wildcard) {
        if (strlen(p) != len)
            return false;
        for (size_t i = 0; i < len; i++) {
            if (tolower((unsigned char)h[i]) != (unsigned char)p[i])
                return false;
        }
        return true;
    }
    /* Glob with one backtracking point: '*' may match nothing or any run of host characters
     * (dots included, so *.contoso.com matches a.b.contoso.com), '?' exactly one. */
    const char *star_p = NULL, *star_h = NULL;
    while (h < he) {
        int c = tolower((unsigned char)*h);
        if (*p == '*') {
            star_p = ++p;
            star_h = h;
            continue;
        }
        if (*p && ((*p == '?' && host_char(c)) || (unsigned char)*p == c)) {
            p++;
            h++;
            continue;
        }
        if (star_p && host_char(tolower((unsigned char)*star_h))) {
            p = star_p;
            h = ++star_h;
            continue;
        }
        return false;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

bool cfg_is_dns_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    bool all_digits = true;
    for (size_t i = 0; i <= len; i++) {
        int c = (unsigned char)s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            if (c == '\0' && all_digits)
                return false; /* "10.0.0" is a broken address, not a name */
            label = 0;
            all_digits = true;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return false;
        if (label == 0 && c == '-')
            return false;
        if (!isdigit(c))
            all_digits = false;
        if (++label > 63)
            return false;
    }
    return true;
}

bool cfg_is_valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CFG_MAX_NAME_LENGTH || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

static int parse_port(const char *s, uint16_t *port, const char **why)
{
    uint64_t v;
    const char *p = s;
    if (read_digits(&p, &v) <= 0 || *p) {
        *why = "the port is not a number";
        return -1;
    }
    if (v < 1 || v > 65535) {
        *why = "the port must be 1 to 65535";
        return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

int cfg_split_hostport(const char *s, char *host_out, size_t host_size, uint16_t *port,
                       enum cfg_addr_kind *kind, bool port_required, const char **why)
{
    const char *host = s, *host_end, *port_s = NULL;
    unsigned char buf[sizeof(struct in6_addr)];
    *port = 0;

    if (*s == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (!host_end) {
            *why = "missing ']' after the IPv6 address";
            return -1;
        }
        if (host_end[1] == ':')
            port_s = host_end + 2;
        else if (host_end[1] != '\0') {
            *why = "expected ':port' after ']'";
            return -1;
        }
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
            /* Several colons and no brackets: a bare IPv6 address, which cannot carry a port. */
            host_end = s + strlen(s);
        } else if (colon) {
            host_end = colon;
            port_s = colon + 1;
        } else {
            host_end = s + strlen(s);
        }
    }

    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0) {
        *why = "missing host (write 0.0.0.0:PORT or [::]:PORT for every address)";
        return -1;
    }
    if (hlen >= host_size) {
        *why = "host name too long";
        return -1;
    }
    memcpy(host_out, host, hlen);
    host_out[hlen] = '\0';

    if (inet_pton(AF_INET6, host_out, buf) == 1) {
        *kind = CFG_ADDR_IPV6;
    } else if (*s == '[') {
        *why = "not an IPv6 address inside [ ]";
        return -1;
    } else if (strchr(host_out, ':')) {
        *why = "not an IPv6 address (write IPv6 with a port as [addr]:port)";
        return -1;
    } else if (inet_pton(AF_INET, host_out, buf) == 1) {
        *kind = CFG_ADDR_IPV4;
    } else if (cfg_is_dns_name(host_out)) {
        *kind = CFG_ADDR_NAME;
    } else {
        *why = "not a valid IP address or DNS name";
        return -1;
    }

    if (port_s) {
        if (parse_port(port_s, port, why) < 0)
            return -1;
    } else if (port_required) {
        *why = "missing ':port'";
        return -1;
    }
    return 0;
}

const char *cfg_protocol_name(enum cfg_protocol p)
{
    return p == CFG_PROTO_HTTPS ? "https" : "http";
}

const char *cfg_tls_version_name(enum cfg_tls_version v)
{
    return v == CFG_TLS_1_3 ? "TLSv1.3" : "TLSv1.2";
}

const char *cfg_trust_mode_name(enum cfg_trust_mode t)
{
    switch (t) {
    case CFG_TRUST_ROOTS:
        return "trusted-roots";
    case CFG_TRUST_AUTH_CERTS:
        return "auth-certs";
    case CFG_TRUST_WELL_KNOWN:
        break;
    }
    return "well-known-ca";
}
