/*
 * url: strict parsing of the backend addresses users type: "https://host[:port][/path]" URLs and
 * "host[:port]" server entries, where host is a DNS name, an IPv4 address or a bracketed IPv6
 * address.
 */
#ifndef GATEHOUSE_CORE_URL_H
#define GATEHOUSE_CORE_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct url {
    bool https;
    char host[256]; /* without brackets */
    bool host_is_ip;
    uint16_t port; /* the explicit port, or the scheme's default */
    bool port_given;
    char path[2048]; /* "/" when absent; includes the query */
};

/* Returns 0, or -1 and a sentence in err saying what is wrong. */
int url_parse(const char *text, struct url *out, char *err, size_t errlen);

/*
 * "host", "host:port", "[v6]" or "[v6]:port". *port is set to default_port when absent.
 * Returns 0 or -1 with a sentence in err.
 */
int hostport_parse(const char *text, uint16_t default_port, char *host, size_t host_size,
                   uint16_t *port, bool *port_given, char *err, size_t errlen);

/* True when <name> is a syntactically valid DNS host name (letters, digits, '-', '_', '.'). */
bool url_valid_dns_name(const char *name);

#endif
