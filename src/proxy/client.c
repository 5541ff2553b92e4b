/*
 * client: one accepted connection -- TLS (the certificate chosen by SNI), then HTTP/1.1 request
 * heads parsed with our strict parser (malformed ones get 400 and a log line), each request
 * handed to an exchange, keep-alive between them, and the client timeouts (a request head must
 * arrive within the client-request timeout, an idle connection is closed after keep-alive).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/clock.h"
#include "proxy/proxy_internal.h"

static void process_head(struct client *c);

static void unlink_client(struct client *c)
{
    struct worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_clients--;
}

void client_close(struct client *c)
{
    struct worker *w = c->w;
    if (c->closed)
        return;
    c->closed = true;
    atomic_fetch_sub_explicit(&w->metrics.open_connections, 1, memory_order_relaxed);
    if (w->draining && w->n_clients == 1)
        ev_break(w->loop, EVBREAK_ALL); /* the last in-flight client: the drain is over */
    if (c->state == CS_TLS)
        metrics_add(&w->metrics.tls_failures[TLS_FAIL_CLOSED], 1);
    if (c->x)
        exchange_abort(c->x);
    ev_timer_stop(w->loop, &c->timer);
    sock_close(w->loop, &c->s);
    unlink_client(c);
    /* Callers up the stack may still look at c: free it once the callback has returned. */
    c->next_dead = w->dead;
    w->dead = c;
}

void client_record_refusal(struct client *c, const char *id, int status, const char *error_info,
                           const char *detail)
{
    struct worker_metrics *m = &c->w->metrics;
    metrics_add(&m->unmatched_requests[status / 100], 1);
    struct request_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    r.when = time(NULL);
    r.status = status;
    snprintf(r.phase, sizeof r.phase, "parse");
    snprintf(r.error_info, sizeof r.error_info, "%s", error_info);
    snprintf(r.detail, sizeof r.detail, "%s", detail ? detail : "");
    r.duration_ms = c->t_first_byte ? clock_ms_between(c->t_first_byte, clock_mono_ns()) : 0;
    r.backend_ms = -1;
    request_ring_add(&c->w->ring, &r);
}

void client_reap(struct worker *w)
{
    while (w->dead) {
        struct client *c = w->dead;
        w->dead = c->next_dead;
        buf_free(&c->in);
        buf_free(&c->out);
        free(c);
    }
}

static void arm_timer(struct client *c, uint64_t ms)
{
    ev_timer_stop(c->w->loop, &c->timer);
    ev_timer_set(&c->timer, (double)ms / 1000.0, 0.);
    ev_timer_start(c->w->loop, &c->timer);
}

/* Logs and answers a request that never became an exchange (bad head, timeout). */
static void refuse(struct client *c, int status, const char *error_info, const char *detail,
                   size_t bytes_in)
{
    char id[33];
    exchange_new_request_id(id);
    size_t before = buf_len(&c->out);
    exchange_error_response(c, status, id, true);
    struct access_record rec = {
            .request_id = id,
            .client_ip = c->ip,
            .client_port = c->port_num,
            .tls_version = c->tls_version[0] ? c->tls_version : NULL,
            .status = status,
            .bytes_in = bytes_in,
            .bytes_out = buf_len(&c->out) - before,
            .duration_ms = c->t_first_byte ? clock_ms_between(c->t_first_byte, clock_mono_ns()) : 0,
            .backend_ms = -1,
            .error_info = error_info,
            .phase = "parse",
            .detail = detail,
    };
    access_log_write(c->w->log, &rec);
    client_record_refusal(c, id, status, error_info, detail);
    c->in.start = c->in.end = 0;
    c->state = CS_CLOSING;
    client_update(c);
}

void client_update(struct client *c)
{
    struct worker *w = c->w;
    if (c->closed)
        return;
    if (buf_len(&c->out) > 0) {
        enum sock_status st = sock_flush(&c->s, &c->out);
        if (st == SOCK_ERROR) {
            client_close(c);
            return;
        }
    }
    bool want_read = false;
    switch (c->state) {
    case CS_TLS:
        return;
    case CS_HEAD:
        want_read = !w->draining || c->in.end > 0;
        break;
    case CS_EXCHANGE:
        want_read = c->x && c->x->up && c->x->up->state == UP_READY && !c->x->req_done &&
                    buf_room(&c->x->upout) > 64;
        break;
    case CS_CLOSING:
        if (buf_len(&c->out) == 0) {
            client_close(c);
            return;
        }
        break;
    }
    sock_watch(w->loop, &c->s, want_read, buf_len(&c->out) > 0);
}

void client_exchange_done(struct client *c)
{
    struct worker *w = c->w;
    c->requests++;
    c->t_first_byte = 0;
    if (c->close_after || w->draining) {
        c->state = CS_CLOSING;
        client_update(c);
        return;
    }
    c->state = CS_HEAD;
    arm_timer(c, w->rt->cfg->timeouts.client_keepalive_ms);
    client_update(c);
    if (c->state == CS_HEAD && buf_len(&c->in) > 0) {
        /* Pipelined bytes: parse them from the loop, not from inside this call chain. */
        ev_feed_event(w->loop, &c->s.io, EV_READ);
    }
}

static void process_head(struct client *c)
{
    const struct cfg *cfg = c->w->rt->cfg;
    if (buf_len(&c->in) == 0)
        return;
    if (!c->t_first_byte) {
        c->t_first_byte = clock_mono_ns();
        arm_timer(c, cfg->timeouts.client_request_ms);
    }
    struct h1_limits limits = {
            .max_head = (size_t)(cfg->limits.max_header_bytes + cfg->limits.max_url_length),
            .max_target = (size_t)cfg->limits.max_url_length,
            .max_headers = cfg->limits.max_headers < H1_DEFAULT_MAX_HEADERS
                                   ? cfg->limits.max_headers
                                   : H1_DEFAULT_MAX_HEADERS,
    };
    struct h1_header headers[H1_DEFAULT_MAX_HEADERS];
    struct h1_request req;
    int rc = h1_parse_request(buf_head(&c->in), buf_len(&c->in), &limits, headers, &req);
    if (rc == H1_INCOMPLETE) {
        if (buf_room(&c->in) == 0) {
            /* The head outgrew the buffer before a limit tripped: refuse it all the same. */
            refuse(c, 400, "ERRORINFO_INVALID_REQUEST", "request head larger than the buffer",
                   buf_len(&c->in));
        }
        return;
    }
    if (rc == H1_ERROR) {
        char detail[200];
        snprintf(detail, sizeof detail, "malformed request: %s (byte %zu)",
                 h1_error_text(req.error), req.error_pos);
        const char *info = "ERRORINFO_INVALID_REQUEST";
        switch (req.error) {
        case H1_ERR_METHOD:
            info = "ERRORINFO_INVALID_METHOD";
            break;
        case H1_ERR_VERSION:
            info = "ERRORINFO_INVALID_VERSION";
            break;
        case H1_ERR_HOST:
            info = "ERRORINFO_INVALID_HOST";
            break;
        case H1_ERR_CONTENT_LENGTH:
        case H1_ERR_TE_AND_CL:
            info = "ERRORINFO_INVALID_CONTENT_LENGTH";
            break;
        case H1_ERR_TARGET:
        case H1_ERR_TARGET_TOO_LONG:
            info = "ERRORINFO_REQUEST_URI_INVALID";
            break;
        default:
            break;
        }
        refuse(c, 400, info, detail, buf_len(&c->in));
        return;
    }
    /* The header block has its own limit, apart from the request line's (URL) limit. */
    const char *line_end = memchr(buf_head(&c->in), '\n', req.head_len);
    size_t header_bytes = line_end ? req.head_len - (size_t)(line_end + 1 - buf_head(&c->in)) : 0;
    if (header_bytes > cfg->limits.max_header_bytes) {
        char detail[200];
        snprintf(detail, sizeof detail, "header block of %zu bytes is over the %llu-byte limit",
                 header_bytes, (unsigned long long)cfg->limits.max_header_bytes);
        refuse(c, 400, "ERRORINFO_INVALID_REQUEST", detail, buf_len(&c->in));
        return;
    }
    ev_timer_stop(c->w->loop, &c->timer);
    c->state = CS_EXCHANGE;
    /* The head's bytes stay where they are until the next read; the request's slices point at
     * them while exchange_start copies what it keeps. */
    buf_consume(&c->in, req.head_len);
    exchange_start(c, &req);
}

static bool tls_step(struct client *c)
{
    ERR_clear_error();
    int rc = SSL_accept(c->s.ssl);
    if (rc == 1) {
        metrics_add(&c->w->metrics.tls_handshakes, 1);
        snprintf(c->tls_version, sizeof c->tls_version, "%s", SSL_get_version(c->s.ssl));
        c->state = CS_HEAD;
        arm_timer(c, c->w->rt->cfg->timeouts.client_request_ms);
        return true;
    }
    int err = SSL_get_error(c->s.ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        c->s.read_waits = err == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
        sock_watch(c->w->loop, &c->s, true, false);
        return false;
    }
    /* A client that closed (or sent nothing) is not a failed handshake. */
    unsigned long e = ERR_peek_last_error();
    bool closed = err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && e == 0) ||
                  (err == SSL_ERROR_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
    ERR_clear_error();
    metrics_add(&c->w->metrics.tls_failures[closed ? TLS_FAIL_CLOSED : TLS_FAIL_HANDSHAKE], 1);
    c->state = CS_CLOSING; /* counted as a handshake failure, not as a close */
    client_close(c);
    return false;
}

static void on_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct client *c = io->data;
    if (c->state == CS_TLS) {
        if (!tls_step(c))
            return;
        revents |= EV_READ; /* application data may already be buffered in the TLS layer */
    }
    if ((revents & c->s.write_waits) && buf_len(&c->out) > 0) {
        if (sock_flush(&c->s, &c->out) == SOCK_ERROR) {
            client_close(c);
            return;
        }
        if (c->state == CS_EXCHANGE && c->x) {
            exchange_client_drained(c->x);
            if (c->closed)
                return;
        }
    }
    if (c->state == CS_CLOSING) {
        client_update(c);
        return;
    }
    if (c->state == CS_HEAD) {
        /* Parse what is buffered first (pipelining), then read more. */
        size_t before = buf_len(&c->in);
        process_head(c);
        if (c->state != CS_HEAD)
            return;
        if (before == 0 || buf_len(&c->in) == before) {
            enum sock_status st = sock_read(&c->s, &c->in, PROXY_IO_BUF);
            if (st == SOCK_EOF || st == SOCK_ERROR) {
                client_close(c);
                return;
            }
            if (st == SOCK_PROGRESS) {
                process_head(c);
                if (c->state != CS_HEAD)
                    return;
            }
        }
        client_update(c);
        return;
    }
    if (c->state == CS_EXCHANGE && c->x) {
        if (!c->x->req_done && buf_room(&c->in) > 0) {
            enum sock_status st = sock_read(&c->s, &c->in, PROXY_IO_BUF);
            if (st == SOCK_EOF || st == SOCK_ERROR) {
                client_close(c);
                return;
            }
        }
        exchange_client_readable(c->x);
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct client *c = t->data;
    if (c->state == CS_TLS) {
        metrics_add(&c->w->metrics.tls_failures[TLS_FAIL_TIMEOUT], 1);
        c->state = CS_CLOSING;
    }
    if (c->state == CS_HEAD && buf_len(&c->in) > 0) {
        refuse(c, 408, "ERRORINFO_INVALID_REQUEST",
               "the request head did not arrive within the client-request timeout",
               buf_len(&c->in));
        return;
    }
    client_close(c);
}

void client_accept(struct worker *w, const struct rt_port *port, int fd,
                   const struct sockaddr *peer)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c || buf_init(&c->in, PROXY_IO_BUF) != 0 || buf_init(&c->out, PROXY_IO_BUF) != 0) {
        /* Out of memory: refuse this connection, keep serving the others. */
        if (c) {
            buf_free(&c->in);
            free(c);
        }
        close(fd);
        return;
    }
    c->w = w;
    c->port = port;
    sock_init(&c->s, fd, on_io, c);
    ev_init(&c->timer, on_timer);
    c->timer.data = c;
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        inet_ntop(AF_INET, &in->sin_addr, c->ip, sizeof c->ip);
        c->port_num = ntohs(in->sin_port);
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
        /* A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: log them as IPv4. */
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], c->ip, sizeof c->ip);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, c->ip, sizeof c->ip);
        c->port_num = ntohs(in6->sin6_port);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->n_clients++;
    atomic_fetch_add_explicit(&w->metrics.open_connections, 1, memory_order_relaxed);
    if (port->protocol == CFG_PROTO_HTTPS) {
        c->s.ssl = SSL_new(port->default_ctx);
        if (!c->s.ssl || SSL_set_fd(c->s.ssl, fd) != 1) {
            client_close(c);
            return;
        }
        c->state = CS_TLS;
        arm_timer(c, w->rt->cfg->timeouts.client_request_ms);
        c->s.read_waits = EV_READ;
        sock_watch(w->loop, &c->s, true, false);
        return;
    }
    c->state = CS_HEAD;
    arm_timer(c, w->rt->cfg->timeouts.client_request_ms);
    client_update(c);
}
