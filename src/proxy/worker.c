#include "proxy/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "proxy/proxy_internal.h"

struct worker_private {
    struct worker w;
    ev_timer grace;
    double grace_s;
};

uint64_t worker_now_ms(const struct worker *w)
{
    return (uint64_t)(ev_now(w->loop) * 1000.0);
}

static int open_listener(const struct rt_port *p, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    const char *addr = p->address;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (addr && inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(p->port);
        len = sizeof *in;
    } else {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(p->port);
        if (addr && inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1) {
            snprintf(err, errlen, "listener address '%s' is not an IP address", addr);
            return -1;
        }
        if (!addr)
            in6->sin6_addr = in6addr_any;
        len = sizeof *in6;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && !addr && errno == EAFNOSUPPORT) {
        /* No IPv6 on this host: listen on all IPv4 addresses instead. */
        memset(&ss, 0, sizeof ss);
        in->sin_family = AF_INET;
        in->sin_port = htons(p->port);
        len = sizeof *in;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ss.ss_family == AF_INET6 && !addr)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s%s%s:%u: %s",
                 addr && strchr(addr, ':') ? "[" : "", addr ? addr : "*",
                 addr && strchr(addr, ':') ? "]" : "", p->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = io->data;
    const struct rt_port *port = &w->rt->ports[io - w->accept_io];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                log_warn("worker %d: out of file descriptors, connections wait", w->id);
            break;
        }
        client_accept(w, port, fd, (struct sockaddr *)&peer);
    }
}

static void on_reap(struct ev_loop *loop, ev_check *check, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = check->data;
    client_reap(w);
    if (w->draining && w->n_clients == 0)
        ev_break(w->loop, EVBREAK_ALL);
}

static void on_grace_over(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = t->data;
    if (w->n_clients)
        log_warn("worker %d: %zu connection(s) still open after the drain period; closing them",
                 w->id, w->n_clients);
    while (w->clients)
        client_close(w->clients);
    client_reap(w);
    ev_break(w->loop, EVBREAK_ALL);
}

static void on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = a->data;
    struct worker_private *wp = (struct worker_private *)w;
    w->draining = true;
    for (size_t i = 0; i < w->rt->n_ports; i++) {
        ev_io_stop(w->loop, &w->accept_io[i]);
        close(w->listen_fds[i]);
        w->listen_fds[i] = -1;
    }
    /* Idle keep-alive clients have nothing in flight: close them now. */
    struct client *c = w->clients;
    while (c) {
        struct client *next = c->next;
        if (c->state == CS_HEAD && buf_len(&c->in) == 0)
            client_close(c);
        c = next;
    }
    ev_timer_init(&wp->grace, on_grace_over, wp->grace_s, 0.);
    wp->grace.data = w;
    ev_timer_start(w->loop, &wp->grace);
}

struct worker_metrics *worker_metrics(struct worker *w)
{
    return &w->metrics;
}

struct request_ring *worker_ring(struct worker *w)
{
    return &w->ring;
}

/* Frees what worker_new allocated; works on a partly built worker too. */
static void worker_release(struct worker *w)
{
    dns_resolver_free(w->dns);
    for (size_t i = 0; w->listen_fds && i < w->rt->n_ports; i++)
        if (w->listen_fds[i] >= 0)
            close(w->listen_fds[i]);
    if (w->loop)
        ev_loop_destroy(w->loop);
    free(w->listen_fds);
    free(w->accept_io);
    free(w->idle);
    free(w->n_idle);
    free(w->sessions);
    free(w->session_sni);
    free(w->addrs);
    free(w->rr);
    metrics_free(&w->metrics);
    request_ring_free(&w->ring);
    free((struct worker_private *)w);
}

struct worker *worker_new(int id, const struct runtime *rt, struct access_log *log,
                          size_t ring_capacity, char *err, size_t errlen)
{
    struct worker_private *wp = calloc(1, sizeof *wp);
    if (!wp) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct worker *w = &wp->w;
    w->id = id;
    w->rt = rt;
    w->log = log;
    w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (!w->loop)
        w->loop = ev_loop_new(EVFLAG_AUTO);
    size_t nb = rt->n_backends ? rt->n_backends : 1;
    w->listen_fds = calloc(rt->n_ports ? rt->n_ports : 1, sizeof *w->listen_fds);
    for (size_t i = 0; w->listen_fds && i < rt->n_ports; i++)
        w->listen_fds[i] = -1;
    w->accept_io = calloc(rt->n_ports ? rt->n_ports : 1, sizeof *w->accept_io);
    w->idle = calloc(nb, sizeof *w->idle);
    w->n_idle = calloc(nb, sizeof *w->n_idle);
    w->sessions = calloc(nb, sizeof *w->sessions);
    w->session_sni = calloc(nb, sizeof *w->session_sni);
    w->addrs = calloc(nb, sizeof *w->addrs);
    w->rr = calloc(rt->n_targets ? rt->n_targets : 1, sizeof *w->rr);
    if (!w->loop || !w->listen_fds || !w->accept_io || !w->idle || !w->n_idle || !w->sessions ||
        !w->session_sni || !w->addrs || !w->rr || metrics_init(&w->metrics, rt) != 0 ||
        request_ring_init(&w->ring, ring_capacity) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < rt->n_ports; i++) {
        char why[300];
        int fd = open_listener(&rt->ports[i], why, sizeof why);
        if (fd < 0) {
            const struct rt_listener *l = rt->ports[i].listeners[0];
            snprintf(err, errlen, "%s:%d: listeners '%s': %s", l->cfg->pos.file, l->cfg->pos.line,
                     l->cfg->name, why);
            goto fail;
        }
        w->listen_fds[i] = fd;
        ev_io_init(&w->accept_io[i], on_accept, fd, EV_READ);
        w->accept_io[i].data = w;
        ev_io_start(w->loop, &w->accept_io[i]);
    }
    char why[256];
    w->dns = dns_resolver_new(w->loop, why, sizeof why);
    if (!w->dns) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    ev_async_init(&w->stop, on_stop);
    w->stop.data = w;
    ev_async_start(w->loop, &w->stop);
    ev_check_init(&w->reaper, on_reap);
    w->reaper.data = w;
    ev_check_start(w->loop, &w->reaper);
    ev_unref(w->loop); /* the reaper alone does not keep the loop alive */
    upstream_worker_init(w);
    return w;
fail:
    worker_release(w);
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    ev_run(w->loop, 0);
    return NULL;
}

int worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void worker_drain(struct worker *w, double grace_s)
{
    ((struct worker_private *)w)->grace_s = grace_s;
    ev_async_send(w->loop, &w->stop);
}

void worker_join_free(struct worker *w)
{
    pthread_join(w->thread, NULL);
    while (w->clients)
        client_close(w->clients);
    client_reap(w);
    upstream_worker_free(w);
    worker_release(w);
}
