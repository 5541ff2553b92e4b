#include "core/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool url_valid_dns_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return false;
        if (++label > 63)
            return false;
    }
    return true;
}

static bool is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int hostport_parse(const char *text, uint16_t default_port, char *host, size_t host_size,
                   uint16_t *port, bool *port_given, char *err, size_t errlen)
{
    const char *p = text;
    const char *host_start, *host_end;
    *port_given = false;
    if (*p == '[') {
        host_start = p + 1;
        host_end = strchr(host_start, ']');
        if (!host_end) {
            snprintf(err, errlen, "missing ']' after the IPv6 address");
            return -1;
        }
        p = host_end + 1;
    } else {
        host_start = p;
        host_end = strchr(p, ':');
        if (host_end && strchr(host_end + 1, ':')) {
            snprintf(err, errlen,
                     "an IPv6 address must be written in brackets, e.g. "
                     "[::1]:443");
            return -1;
        }
        if (!host_end)
            host_end = p + strlen(p);
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host_start);
    if (hlen == 0) {
        snprintf(err, errlen, "the host is empty");
        return -1;
    }
    if (hlen >= host_size) {
        snprintf(err, errlen, "the host name is too long");
        return -1;
    }
    memcpy(host, host_start, hlen);
    host[hlen] = '\0';
    bool bracketed = text[0] == '[';
    if (bracketed) {
        unsigned char buf[16];
        if (inet_pton(AF_INET6, host, buf) != 1) {
            snprintf(err, errlen, "'%s' is not an IPv6 address", host);
            return -1;
        }
    } else if (!is_ip(host) && !url_valid_dns_name(host)) {
        snprintf(err, errlen, "'%s' is not a valid host name or IP address", host);
        return -1;
    }
    *port = default_port;
    if (*p == ':') {
        p++;
        if (!*p) {
            snprintf(err, errlen, "the port is empty");
            return -1;
        }
        unsigned long v = 0;
        for (const char *q = p; *q; q++) {
            if (!isdigit((unsigned char)*q) || v > 65535) {
                snprintf(err, errlen, "the port '%s' is not a number from 1 to 65535", p);
                return -1;
            }
            v = v * 10 + (unsigned long)(*q - '0');
        }
        if (v < 1 || v > 65535) {
            snprintf(err, errlen, "the port %lu is out of range (1-65535)", v);
            return -1;
        }
        *port = (uint16_t)v;
        *port_given = true;
    } else if (*p) {
        snprintf(err, errlen, "unexpected '%s' after the host", p);
        return -1;
    }
    return 0;
}

int url_parse(const char *text, struct url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *rest;
    if (strncasecmp(text, "https://", 8) == 0) {
        out->https = true;
        rest = text + 8;
    } else if (strncasecmp(text, "http://", 7) == 0) {
        rest = text + 7;
    } else {
        snprintf(err, errlen, "'%s' is not an http:// or https:// URL", text);
        return -1;
    }
    const char *slash = strpbrk(rest, "/?#");
    size_t alen = slash ? (size_t)(slash - rest) : strlen(rest);
    char authority[300];
    if (alen == 0) {
        snprintf(err, errlen, "'%s' has no host", text);
        return -1;
    }
    if (alen >= sizeof authority) {
        snprintf(err, errlen, "the host part of '%s' is too long", text);
        return -1;
    }
    memcpy(authority, rest, alen);
    authority[alen] = '\0';
    if (strchr(authority, '@')) {
        snprintf(err, errlen, "'%s': credentials in the URL are not supported", text);
        return -1;
    }
    char why[512];
    if (hostport_parse(authority, out->https ? 443 : 80, out->host, sizeof out->host, &out->port,
                       &out->port_given, why, sizeof why) != 0) {
        snprintf(err, errlen, "URL '%s': %s", text, why);
        return -1;
    }
    out->host_is_ip = is_ip(out->host);
    const char *path = slash ? slash : "/";
    if (*path == '#')
        path = "/";
    size_t plen = strcspn(path, "#");
    if (plen + 2 > sizeof out->path) {
        snprintf(err, errlen, "the path of '%s' is too long", text);
        return -1;
    }
    if (*path == '?')
        out->path[0] = '/', memcpy(out->path + 1, path, plen), out->path[plen + 1] = '\0';
    else
        memcpy(out->path, path, plen), out->path[plen] = '\0';
    for (const char *q = out->path; *q; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
            snprintf(err, errlen, "the path of '%s' contains a space or control character", text);
            return -1;
        }
    }
    return 0;
}
