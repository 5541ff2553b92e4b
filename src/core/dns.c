#include "core/dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DNS_MAX_SOCKETS 16

struct dns_socket {
    ev_io io;
    struct dns_resolver *resolver;
    bool used;
};

struct dns_resolver {
    struct ev_loop *loop;
    ares_channel channel;
    ev_timer timer;
    struct dns_socket sockets[DNS_MAX_SOCKETS];
};

struct dns_query {
    struct dns_resolver *resolver;
    dns_callback cb;
    void *arg;
    bool cancelled;
    bool answered;       /* c-ares is done with it */
    bool inside_resolve; /* the answer came synchronously: deliver from the loop instead */
    ev_timer deliver;
    struct dns_result result;
};

static void update_timer(struct dns_resolver *r)
{
    struct timeval max = {.tv_sec = 3600}, tv;
    struct timeval *t = ares_timeout(r->channel, &max, &tv);
    ev_timer_stop(r->loop, &r->timer);
    if (t) {
        ev_timer_set(&r->timer, (double)t->tv_sec + (double)t->tv_usec / 1e6, 0.);
        ev_timer_start(r->loop, &r->timer);
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct dns_resolver *r = w->data;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    update_timer(r);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct dns_socket *s = (struct dns_socket *)w;
    struct dns_resolver *r = s->resolver;
    ares_socket_t fd = w->fd;
    ares_process_fd(r->channel, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    update_timer(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_resolver *r = data;
    struct dns_socket *slot = NULL, *free_slot = NULL;
    for (int i = 0; i < DNS_MAX_SOCKETS; i++) {
        if (r->sockets[i].used && r->sockets[i].io.fd == fd)
            slot = &r->sockets[i];
        else if (!r->sockets[i].used && !free_slot)
            free_slot = &r->sockets[i];
    }
    if (slot) {
        ev_io_stop(r->loop, &slot->io);
        slot->used = false;
    }
    if (!readable && !writable)
        return;
    if (!slot)
        slot = free_slot;
    if (!slot)
        return; /* more sockets than slots: c-ares still completes through its timeouts */
    ev_io_init(&slot->io, on_io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    slot->resolver = r;
    slot->used = true;
    ev_io_start(r->loop, &slot->io);
}

struct dns_resolver *dns_resolver_new(struct ev_loop *loop, char *err, size_t errlen)
{
    static bool library_ready;
    if (!library_ready) {
        int rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
            return NULL;
        }
        library_ready = true;
    }
    struct dns_resolver *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->loop = loop;
    struct ares_options opts;
    memset(&opts, 0, sizeof opts);
    opts.sock_state_cb = on_sock_state;
    opts.sock_state_cb_data = r;
    opts.timeout = 2000; /* per try, ms; callers bound the whole lookup with their own timer */
    opts.tries = 2;
    int rc = ares_init_options(&r->channel, &opts,
                               ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        free(r);
        return NULL;
    }
    ev_init(&r->timer, on_timer);
    r->timer.data = r;
    return r;
}

void dns_resolver_free(struct dns_resolver *r)
{
    if (!r)
        return;
    /* Destroying the channel runs outstanding callbacks with ARES_EDESTRUCTION; they free their
     * queries. */
    ares_destroy(r->channel);
    ev_timer_stop(r->loop, &r->timer);
    for (int i = 0; i < DNS_MAX_SOCKETS; i++)
        if (r->sockets[i].used)
            ev_io_stop(r->loop, &r->sockets[i].io);
    free(r);
}

static void finish(struct dns_query *q)
{
    if (!q->cancelled && q->cb)
        q->cb(&q->result, q->arg);
    free(q);
}

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    finish(w->data);
}

static void schedule_delivery(struct dns_query *q)
{
    ev_timer_init(&q->deliver, on_deliver, 0., 0.);
    q->deliver.data = q;
    ev_timer_start(q->resolver->loop, &q->deliver);
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct dns_query *q = arg;
    struct dns_result *out = &q->result;
    q->answered = true;
    if (status == ARES_SUCCESS && res) {
        int ttl = -1;
        for (struct ares_addrinfo_node *n = res->nodes; n && out->n_addrs < DNS_MAX_ADDRS;
             n = n->ai_next) {
            if (n->ai_family != AF_INET && n->ai_family != AF_INET6)
                continue;
            if ((size_t)n->ai_addrlen > sizeof out->addrs[0])
                continue;
            memcpy(&out->addrs[out->n_addrs], n->ai_addr, (size_t)n->ai_addrlen);
            out->addr_lens[out->n_addrs] = (socklen_t)n->ai_addrlen;
            out->n_addrs++;
            if (ttl < 0 || n->ai_ttl < ttl)
                ttl = n->ai_ttl;
        }
        out->ttl = ttl > 0 ? ttl : 0;
        out->status = out->n_addrs ? DNS_OK : DNS_NOT_FOUND;
        if (!out->n_addrs)
            out->error = "the name has no IPv4 or IPv6 address";
    } else {
        switch (status) {
        case ARES_ENOTFOUND:
        case ARES_ENODATA:
            out->status = DNS_NOT_FOUND;
            out->error = "the name does not exist (NXDOMAIN) or has no address records";
            break;
        case ARES_ETIMEOUT:
            out->status = DNS_TIMEOUT;
            out->error = "the DNS servers did not answer in time";
            break;
        default:
            out->status = DNS_FAILED;
            out->error = ares_strerror(status);
            break;
        }
    }
    if (res)
        ares_freeaddrinfo(res);
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        free(q);
        return;
    }
    if (q->inside_resolve)
        schedule_delivery(q);
    else
        finish(q);
}

static bool is_reserved_invalid(const char *name)
{
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == '.')
        n--;
    return (n == 7 && strncasecmp(name, "invalid", 7) == 0) ||
           (n > 8 && strncasecmp(name + n - 8, ".invalid", 8) == 0);
}

struct dns_query *dns_resolve(struct dns_resolver *r, const char *name, dns_callback cb, void *arg)
{
    struct dns_query *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->resolver = r;
    q->cb = cb;
    q->arg = arg;
    if (is_reserved_invalid(name)) {
        q->answered = true;
        q->result.status = DNS_NOT_FOUND;
        q->result.error = "the name is under the reserved .invalid domain and never resolves";
        schedule_delivery(q);
        return q;
    }
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    q->inside_resolve = true;
    ares_getaddrinfo(r->channel, name, NULL, &hints, on_addrinfo, q);
    if (!q->answered)
        q->inside_resolve = false;
    update_timer(r);
    return q;
}

void dns_query_cancel(struct dns_query *q)
{
    if (!q)
        return;
    q->cancelled = true;
}

const char *dns_format_addr(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, size, "(unknown address family)");
    }
    return buf;
}
