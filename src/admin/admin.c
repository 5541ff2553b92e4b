#include "admin/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/dashboard.h"
#include "core/buf.h"
#include "core/clock.h"
#include "http/h1.h"

#define ADMIN_MAX_CONNS  64
#define ADMIN_TIMEOUT_S  10.0
#define ADMIN_HEAD_LIMIT 16384

struct admin_conn {
    struct admin *a;
    int fd;
    ev_io io;
    ev_timer timer;
    struct buf in, out;
    bool responding;
};

struct admin {
    const struct runtime *rt;
    struct prober *prober;
    struct gateway_stats stats;
    struct ev_loop *loop;
    pthread_t thread;
    bool started;
    int fd;
    ev_io accept_io;
    ev_async stop;
    size_t n_conns;
};

static void conn_close(struct admin_conn *c)
{
    struct admin *a = c->a;
    ev_io_stop(a->loop, &c->io);
    ev_timer_stop(a->loop, &c->timer);
    close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    a->n_conns--;
    free(c);
}

static void respond(struct admin_conn *c, int status, const char *type, const char *body,
                    size_t len, bool head_only)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 400 ? "Bad Request"
                                         : "Internal Server Error";
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, type, len);
    buf_free(&c->out);
    if (buf_init(&c->out, (size_t)n + (head_only ? 0 : len) + 1) != 0)
        return;
    buf_append(&c->out, head, (size_t)n);
    if (!head_only)
        buf_append(&c->out, body, len);
    c->responding = true;
}

static void respond_json(struct admin_conn *c, int status, json_t *doc, bool head_only)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9))
                     : NULL;
    if (!text) {
        respond(c, 500, "text/plain", "out of memory\n", 14, head_only);
    } else {
        size_t len = strlen(text);
        text[len] = '\n';
        respond(c, status, "application/json", text, len + 1, head_only);
        free(text);
    }
    json_decref(doc);
}

static json_t *error_doc(const char *fmt, const char *arg)
{
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, arg);
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(msg));
    return o;
}

/* Percent-decoding of a query value ("%5B%3A%3A1%5D%3A443" -> "[::1]:443"). */
static void url_decode(const char *s, size_t len, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 1 < size; i++) {
        if (s[i] == '%' && i + 2 < len) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end == '\0') {
                out[j++] = (char)v;
                i += 2;
                continue;
            }
        }
        out[j++] = s[i] == '+' ? ' ' : s[i];
    }
    out[j] = '\0';
}

static json_t *request_json(const struct request_record *r)
{
    char when[32];
    json_t *o = json_object();
    json_object_set_new(o, "request_id", json_string(r->id));
    json_object_set_new(o, "time", json_string(clock_rfc3339(r->when, when, sizeof when)));
    json_object_set_new(o, "status", json_integer(r->status));
    json_object_set_new(o, "stage", json_string(r->phase));
    json_object_set_new(o, "code", r->code[0] ? json_string(r->code) : json_null());
    json_object_set_new(o, "error_info", json_string(r->error_info));
    json_object_set_new(o, "listener", r->listener[0] ? json_string(r->listener) : json_null());
    json_object_set_new(o, "backend", r->backend[0] ? json_string(r->backend) : json_null());
    json_object_set_new(o, "method", r->method[0] ? json_string(r->method) : json_null());
    json_object_set_new(o, "host", r->host[0] ? json_string(r->host) : json_null());
    json_object_set_new(o, "path", r->path[0] ? json_string(r->path) : json_null());
    json_object_set_new(o, "detail", json_string(r->detail));
    json_object_set_new(o, "retried_after_reused_connection_closed", json_boolean(r->retried));
    json_t *t = json_object();
    json_object_set_new(t, "total", json_real(r->duration_ms));
    json_object_set_new(t, "backend", r->backend_ms >= 0 ? json_real(r->backend_ms) : json_null());
    json_object_set_new(o, "timings_ms", t);
    return o;
}

static void route(struct admin_conn *c, const struct h1_request *req)
{
    struct admin *a = c->a;
    bool head = h1_slice_eq(req->method, "HEAD");
    if (!head && !h1_slice_eq(req->method, "GET")) {
        respond_json(c, 405, error_doc("%s: only GET and HEAD", "method"), false);
        return;
    }
    const char *t = req->target.p;
    size_t tlen = req->target.len;
    const char *q = memchr(t, '?', tlen);
    size_t plen = q ? (size_t)(q - t) : tlen;
    char path[512];
    if (plen >= sizeof path) {
        respond_json(c, 404, error_doc("%s", "no such path"), head);
        return;
    }
    memcpy(path, t, plen);
    path[plen] = '\0';
    if (strcmp(path, "/healthz") == 0) {
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string("ok"));
        json_object_set_new(o, "workers", json_integer((json_int_t)a->stats.n_workers));
        json_object_set_new(o, "backends", json_integer((json_int_t)a->rt->n_backends));
        respond_json(c, 200, o, head);
    } else if (strcmp(path, "/backend-health") == 0) {
        char server[512] = "";
        if (q) {
            const char *qs = q + 1, *end = t + tlen;
            while (qs < end) {
                const char *amp = memchr(qs, '&', (size_t)(end - qs));
                const char *pe = amp ? amp : end;
                if (pe - qs > 7 && strncmp(qs, "server=", 7) == 0)
                    url_decode(qs + 7, (size_t)(pe - qs - 7), server, sizeof server);
                qs = amp ? amp + 1 : end;
            }
        }
        json_t *doc = prober_health_json(a->prober, server[0] ? server : NULL);
        if (!doc)
            respond_json(c, 404,
                         error_doc("no backend server '%s' (use host:port as shown in "
                                   "/backend-health)",
                                   server),
                         head);
        else
            respond_json(c, 200, doc, head);
    } else if (strncmp(path, "/requests/", 10) == 0) {
        const char *id = path + 10;
        struct request_record rec;
        bool found = false;
        for (size_t w = 0; w < a->stats.n_workers && !found; w++)
            found = request_ring_find(a->stats.rings[w], id, &rec);
        if (found)
            respond_json(c, 200, request_json(&rec), head);
        else
            respond_json(c, 404,
                         error_doc("no gateway-generated error with request id '%s' "
                                   "among the most recent ones",
                                   id),
                         head);
    } else if (strcmp(path, "/metrics") == 0) {
        char *text = admin_metrics_text(a->rt, a->prober, &a->stats);
        if (!text)
            respond(c, 500, "text/plain", "out of memory\n", 14, head);
        else
            respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text), head);
        free(text);
    } else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        respond(c, 200, "text/html; charset=utf-8", dashboard_html, dashboard_html_len, head);
    } else {
        respond_json(c, 404,
                     error_doc("no such path '%s' (try /backend-health, /metrics, "
                               "/healthz, /requests/{id})",
                               path),
                     head);
    }
}

static void on_conn(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct admin_conn *c = io->data;
    if (c->responding) {
        while (buf_len(&c->out) > 0) {
            ssize_t n = send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
            if (n > 0) {
                buf_consume(&c->out, (size_t)n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            break;
        }
        conn_close(c);
        return;
    }
    size_t room = buf_room(&c->in);
    ssize_t n = room ? read(c->fd, buf_tail(&c->in), room) : 0;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    buf_produced(&c->in, (size_t)n);
    struct h1_header headers[64];
    struct h1_limits limits = {.max_head = ADMIN_HEAD_LIMIT, .max_target = 4096, .max_headers = 64};
    struct h1_request req;
    int rc = h1_parse_request(buf_head(&c->in), buf_len(&c->in), &limits, headers, &req);
    if (rc == H1_INCOMPLETE)
        return;
    if (rc == H1_ERROR)
        respond_json(c, 400, error_doc("malformed request: %s", h1_error_text(req.error)), false);
    else
        route(c, &req);
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_WRITE);
    ev_io_start(loop, &c->io);
}

static void on_conn_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    conn_close(t->data);
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct admin *a = io->data;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct admin_conn *c = calloc(1, sizeof *c);
        if (!c || a->n_conns >= ADMIN_MAX_CONNS || buf_init(&c->in, ADMIN_HEAD_LIMIT) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->a = a;
        c->fd = fd;
        a->n_conns++;
        ev_io_init(&c->io, on_conn, fd, EV_READ);
        c->io.data = c;
        ev_io_start(loop, &c->io);
        ev_timer_init(&c->timer, on_conn_timeout, ADMIN_TIMEOUT_S, 0.);
        c->timer.data = c;
        ev_timer_start(loop, &c->timer);
    }
}

static void on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

struct admin *admin_new(const struct runtime *rt, struct prober *prober,
                        const struct gateway_stats *stats, char *err, size_t errlen)
{
    const struct cfg_admin *ac = &rt->cfg->admin;
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    const char *host = ac->listen.host ? ac->listen.host : "127.0.0.1";
    uint16_t port = ac->listen.port ? ac->listen.port : 9090;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        len = sizeof *in;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        len = sizeof *in6;
    } else {
        snprintf(err, errlen, "%s:%d: admin.listen: '%s' is not an IP address", rt->cfg->path,
                 ac->pos.line, host);
        return NULL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* A reload opens the next generation's admin socket before the old one closes. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "%s:%d: admin.listen: cannot listen on %s:%u: %s", rt->cfg->path,
                 ac->pos.line, host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct admin *a = calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->rt = rt;
    a->prober = prober;
    a->stats = *stats;
    a->fd = fd;
    a->loop = ev_loop_new(EVFLAG_AUTO);
    ev_io_init(&a->accept_io, on_accept, fd, EV_READ);
    a->accept_io.data = a;
    ev_io_start(a->loop, &a->accept_io);
    ev_async_init(&a->stop, on_stop);
    ev_async_start(a->loop, &a->stop);
    return a;
}

static void *admin_main(void *arg)
{
    struct admin *a = arg;
    ev_run(a->loop, 0);
    return NULL;
}

int admin_start(struct admin *a)
{
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0)
        return -1;
    a->started = true;
    return 0;
}

void admin_stop_free(struct admin *a)
{
    if (!a)
        return;
    if (a->started) {
        ev_async_send(a->loop, &a->stop);
        pthread_join(a->thread, NULL);
    }
    ev_io_stop(a->loop, &a->accept_io);
    close(a->fd);
    ev_loop_destroy(a->loop);
    free(a);
}
