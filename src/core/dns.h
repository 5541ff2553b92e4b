/*
 * dns: asynchronous name resolution (c-ares) on a libev loop. One resolver per loop. Results are
 * always delivered from the loop, never from inside dns_resolve(), so callers need not guard
 * against re-entry.
 */
#ifndef GATEHOUSE_CORE_DNS_H
#define GATEHOUSE_CORE_DNS_H

#include <stddef.h>
#include <sys/socket.h>

struct ev_loop;
struct dns_resolver;
struct dns_query;

#define DNS_MAX_ADDRS 16

enum dns_status {
    DNS_OK = 0,
    DNS_NOT_FOUND, /* NXDOMAIN or no address records */
    DNS_TIMEOUT,   /* no answer from the name servers in time */
    DNS_FAILED,    /* anything else (server failure, refused, bad name, no servers) */
};

struct dns_result {
    enum dns_status status;
    const char *error; /* human text for status != DNS_OK */
    size_t n_addrs;
    struct sockaddr_storage addrs[DNS_MAX_ADDRS]; /* port 0 */
    socklen_t addr_lens[DNS_MAX_ADDRS];
    int ttl; /* smallest TTL of the answers, seconds (0 when unknown, e.g. /etc/hosts) */
};

typedef void (*dns_callback)(const struct dns_result *result, void *arg);

/* Returns NULL and a sentence in err when c-ares cannot be initialised. */
struct dns_resolver *dns_resolver_new(struct ev_loop *loop, char *err, size_t errlen);
void dns_resolver_free(struct dns_resolver *resolver);

/*
 * Resolves <name> (A and AAAA). Returns a handle that may be cancelled until the callback runs;
 * NULL only when out of memory. Names under the reserved ".invalid" TLD (RFC 6761) fail at once
 * without a query.
 */
struct dns_query *dns_resolve(struct dns_resolver *resolver, const char *name, dns_callback cb,
                              void *arg);

/* The callback will not run; the query's memory is released when c-ares is done with it. */
void dns_query_cancel(struct dns_query *query);

/* "1.2.3.4:443" or "[::1]:443" (port from the address). */
const char *dns_format_addr(const struct sockaddr *sa, char *buf, size_t size);

#endif
