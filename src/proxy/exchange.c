/*
 * exchange: one request through the gateway -- route it, rewrite its head, pick a backend,
 * stream the body up, relay the response down (re-framed when needed), with back-pressure both
 * ways, and one access-log line at the end. Gateway-generated errors carry a request id and
 * nothing about the backend; the details go to the log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "core/clock.h"
#include "proxy/proxy_internal.h"

static void finish(struct exchange *x, bool upstream_reusable);
static void relay_response(struct exchange *x);
static void pump_request(struct exchange *x);

/* ---- small helpers --------------------------------------------------------------------- */

static char *dup_slice(struct h1_slice s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.p, s.len);
        p[s.len] = '\0';
    }
    return p;
}

void exchange_new_request_id(char out[33])
{
    unsigned char raw[16];
    static const char hex[] = "0123456789abcdef";
    if (RAND_bytes(raw, sizeof raw) != 1)
        memset(raw, 0, sizeof raw);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
}

/* Hop-by-hop fields (RFC 9110 7.6.1) and the framing fields we set ourselves. */
static bool is_hop_by_hop(struct h1_slice name)
{
    static const char *const names[] = {"connection", "keep-alive",     "proxy-connection",
                                        "te",         "trailer",        "transfer-encoding",
                                        "upgrade",    "content-length", "proxy-authenticate",
                                        "expect"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (h1_slice_ieq(name, names[i]))
            return true;
    return false;
}

/* Fields named in the Connection header are hop-by-hop too. */
static bool named_by_connection(const struct h1_header *hs, size_t n, struct h1_slice name)
{
    for (size_t i = 0; i < n; i++) {
        if (!h1_slice_ieq(hs[i].name, "connection"))
            continue;
        const char *p = hs[i].value.p, *end = p + hs[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ',' || *p == '\t'))
                p++;
            const char *tok = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if ((size_t)(p - tok) == name.len && strncasecmp(tok, name.p, name.len) == 0)
                return true;
        }
    }
    return false;
}

/*
 * Request header names other than letters, digits and '-' are dropped (as the modelled gateway
 * and nginx do): backends that fold '_' into '-' would otherwise see smuggled duplicates.
 */
static bool plain_header_name(struct h1_slice name)
{
    for (size_t i = 0; i < name.len; i++) {
        char ch = name.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
    }
    return true;
}

/* "http://host:port/p?q" -> authority "host:port", path "/p?q"; origin-form: path only. */
static void split_target(struct h1_slice target, struct h1_slice *authority, struct h1_slice *path)
{
    authority->p = NULL;
    authority->len = 0;
    *path = target;
    size_t skip = 0;
    if (target.len > 7 && strncasecmp(target.p, "http://", 7) == 0)
        skip = 7;
    else if (target.len > 8 && strncasecmp(target.p, "https://", 8) == 0)
        skip = 8;
    if (!skip)
        return;
    const char *a = target.p + skip, *end = target.p + target.len, *q = a;
    while (q < end && *q != '/' && *q != '?')
        q++;
    authority->p = a;
    authority->len = (size_t)(q - a);
    static const char slash[] = "/";
    if (q == end) {
        path->p = slash;
        path->len = 1;
    } else {
        path->p = q;
        path->len = (size_t)(end - q);
    }
}

static bool append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

static bool appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool appendf(struct buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return false;
    return buf_append(b, tmp, (size_t)n);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

void exchange_error_response(struct client *c, int status, const char *request_id, bool close_after)
{
    char body[512];
    int blen = snprintf(body, sizeof body,
                        "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
                        "<body><h1>%d %s</h1>\n<p>Request ID: %s</p>\n"
                        "<hr><p>Gatehouse</p></body></html>\n",
                        status, reason_phrase(status), status, reason_phrase(status), request_id);
    struct buf *out = &c->out;
    if (buf_room(out) < (size_t)blen + 512)
        buf_reserve(out, out->cap + (size_t)blen + 512);
    appendf(out,
            "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Content-Length: %d\r\nX-Request-Id: %s\r\nCache-Control: no-store\r\n"
            "Connection: %s\r\n\r\n",
            status, reason_phrase(status), blen, request_id, close_after ? "close" : "keep-alive");
    buf_append(out, body, (size_t)blen);
    if (close_after)
        c->close_after = true;
}

/* ---- logging --------------------------------------------------------------------------- */

static void write_log(struct exchange *x)
{
    struct client *c = x->c;
    const struct rt_listener *l = x->listener;
    struct access_record rec = {
            .request_id = x->id,
            .client_ip = c->ip,
            .client_port = c->port_num,
            .listener = l ? l->cfg->name : NULL,
            .rule = l && l->rule ? l->rule->name : NULL,
            .host = x->host,
            .method = x->method,
            .path = x->path,
            .http_version = x->minor ? "HTTP/1.1" : "HTTP/1.0",
            .tls_version = c->tls_version[0] ? c->tls_version : NULL,
            .status = x->status,
            .bytes_in = x->bytes_in,
            .bytes_out = x->bytes_out,
            .duration_ms = clock_ms_between(x->t_start, clock_mono_ns()),
            .backend_ms = x->backend_ms,
            .backend = x->backend ? x->backend->label : NULL,
            .pool = x->target ? x->target->pool->name : NULL,
            .settings = x->target ? x->target->settings->cfg->name : NULL,
            .backend_status = x->resp_head_done ? x->resp.status : 0,
            .upstream_error = x->diag != DIAG_OK ? diag_code_name(x->diag) : NULL,
            .error_info = x->error_info,
            .phase = x->phase,
            .detail = x->detail[0] ? x->detail : NULL,
            .retried = x->retried,
    };
    access_log_write(c->w->log, &rec);

    struct worker_metrics *m = &c->w->metrics;
    const struct runtime *rt = c->w->rt;
    int cls = x->status >= 100 && x->status < 600 ? x->status / 100 : 0;
    if (l) {
        size_t li = (size_t)(l - rt->listeners);
        metrics_add(&m->requests[li * 6 + (size_t)cls], 1);
        metrics_observe(&m->client_latency[li], rec.duration_ms);
    } else {
        metrics_add(&m->unmatched_requests[cls], 1);
    }
    if (x->backend && x->resp_head_done) {
        int bcls = x->resp.status / 100;
        metrics_add(&m->backend_responses[x->backend->index * 6 + (size_t)bcls], 1);
        if (x->backend_ms >= 0)
            metrics_observe(&m->backend_latency[x->backend->index], x->backend_ms);
    }
    if (x->retried)
        metrics_add(&m->upstream_retries, 1);
    if (x->generated && x->status >= 400) {
        struct request_record r;
        memset(&r, 0, sizeof r);
        snprintf(r.id, sizeof r.id, "%s", x->id);
        r.when = time(NULL);
        r.status = x->status;
        snprintf(r.phase, sizeof r.phase, "%s", x->phase ? x->phase : "");
        snprintf(r.code, sizeof r.code, "%s", rec.upstream_error ? rec.upstream_error : "");
        snprintf(r.error_info, sizeof r.error_info, "%s", x->error_info ? x->error_info : "");
        snprintf(r.listener, sizeof r.listener, "%s", l ? l->cfg->name : "");
        snprintf(r.backend, sizeof r.backend, "%s", x->backend ? x->backend->label : "");
        snprintf(r.method, sizeof r.method, "%s", x->method ? x->method : "");
        snprintf(r.host, sizeof r.host, "%s", x->host ? x->host : "");
        snprintf(r.path, sizeof r.path, "%s", x->path ? x->path : "");
        snprintf(r.detail, sizeof r.detail, "%s", x->detail);
        r.duration_ms = rec.duration_ms;
        r.backend_ms = x->backend_ms;
        r.retried = x->retried;
        request_ring_add(&c->w->ring, &r);
    }
}

static void free_exchange(struct exchange *x)
{
    ev_timer_stop(x->c->w->loop, &x->timer);
    free(x->method);
    free(x->path);
    free(x->host);
    free(x->head);
    buf_free(&x->upout);
    buf_free(&x->upin);
    free(x);
}

/* ---- errors ---------------------------------------------------------------------------- */

/* Ends the exchange with a gateway-generated response (or a reset when one is under way). */
static void fail(struct exchange *x, int status, enum diag_code code, const char *phase,
                 const char *error_info, const char *detail)
{
    struct client *c = x->c;
    x->diag = code;
    x->phase = phase;
    x->error_info = error_info;
    if (detail && detail != x->detail)
        snprintf(x->detail, sizeof x->detail, "%s", detail);
    if (x->up) {
        upstream_release(x->up, false);
        x->up = NULL;
    }
    if (x->resp_started) {
        /* The client has part of a response: the only honest signal left is a reset. */
        x->status = x->status ? x->status : status;
        write_log(x);
        c->x = NULL;
        free_exchange(x);
        c->close_after = true;
        c->out.start = c->out.end = 0;
        client_close(c);
        return;
    }
    x->status = status;
    x->generated = true;
    if (x->t_sent)
        x->backend_ms = clock_ms_between(x->t_sent, clock_mono_ns());
    size_t before = buf_len(&c->out);
    /* A request body we did not read leaves the connection unusable. */
    exchange_error_response(c, status, x->id, !x->req_done || !x->keep_alive);
    x->bytes_out += buf_len(&c->out) - before;
    write_log(x);
    c->x = NULL;
    free_exchange(x);
    client_exchange_done(c);
}

void exchange_upstream_failed(struct exchange *x, enum diag_code code, const char *phase,
                              const char *error_info, const char *detail)
{
    x->up = NULL;
    fail(x, 502, code, phase, error_info, detail);
}

void exchange_abort(struct exchange *x)
{
    struct client *c = x->c;
    if (x->up) {
        upstream_release(x->up, false);
        x->up = NULL;
    }
    if (!x->status || !x->resp_done) {
        x->status = 499;
        x->error_info = "ERRORINFO_CLIENT_CLOSED_REQUEST";
        x->phase = x->phase ? x->phase : "client";
    }
    write_log(x);
    c->x = NULL;
    free_exchange(x);
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct exchange *x = t->data;
    char detail[512];
    snprintf(detail, sizeof detail, "no %s from %s within the request timeout of %.3g s",
             x->resp_head_done ? "further response data" : "response",
             x->backend ? x->backend->label : "the backend",
             (double)x->target->settings->cfg->request_timeout_ms / 1000.0);
    fail(x, 504, DIAG_RESPONSE_TIMEOUT, "response", "ERRORINFO_UPSTREAM_TIMED_OUT", detail);
}

static void restart_timer(struct exchange *x)
{
    struct worker *w = x->c->w;
    ev_timer_stop(w->loop, &x->timer);
    ev_timer_set(&x->timer, (double)x->target->settings->cfg->request_timeout_ms / 1000.0, 0.);
    ev_timer_start(w->loop, &x->timer);
}

/* ---- the request ----------------------------------------------------------------------- */

const char *exchange_host_only(const char *host, char *buf, size_t size)
{
    size_t n = strlen(host);
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        n = end ? (size_t)(end - host - 1) : 0;
        host++;
    } else {
        const char *colon = strchr(host, ':');
        if (colon)
            n = (size_t)(colon - host);
    }
    if (n >= size)
        n = 0;
    memcpy(buf, host, n);
    buf[n] = '\0';
    return buf;
}

static bool build_upstream_head(struct exchange *x, const struct h1_request *req)
{
    struct client *c = x->c;
    const struct cfg_backend_settings *s = x->target->settings->cfg;
    struct buf b;
    if (buf_init(&b, req->head_len + 1024) != 0)
        return false;
    bool ok = buf_append(&b, req->method.p, req->method.len) && append_str(&b, " ") &&
              append_str(&b, x->path) && append_str(&b, " HTTP/1.1\r\n");
    const struct h1_header *xff = NULL;
    for (size_t i = 0; i < req->n_headers && ok; i++) {
        const struct h1_header *h = &req->headers[i];
        if (is_hop_by_hop(h->name) || h1_slice_ieq(h->name, "host") ||
            named_by_connection(req->headers, req->n_headers, h->name) ||
            !plain_header_name(h->name))
            continue;
        if (h1_slice_ieq(h->name, "x-forwarded-for")) {
            xff = h;
            continue;
        }
        if (h1_slice_ieq(h->name, "x-forwarded-proto") ||
            h1_slice_ieq(h->name, "x-forwarded-port") || h1_slice_ieq(h->name, "x-original-host") ||
            h1_slice_ieq(h->name, "x-request-id"))
            continue; /* set by the gateway, never trusted from clients */
        if (buf_room(&b) < h->name.len + h->value.len + 4 &&
            buf_reserve(&b, b.cap * 2 + h->name.len + h->value.len) != 0)
            ok = false;
        ok = ok && buf_append(&b, h->name.p, h->name.len) && append_str(&b, ": ") &&
             buf_append(&b, h->value.p, h->value.len) && append_str(&b, "\r\n");
    }
    if (buf_room(&b) < 2048)
        ok = ok && buf_reserve(&b, b.cap + 2048) == 0;
    /* Host: the settings' host name, the member's address, or the client's Host. */
    const char *host = x->host ? x->host : "";
    char picked[300];
    if (s->host_name) {
        host = s->host_name;
    } else if (s->pick_host_name_from_backend) {
        const struct rt_backend *bk = x->backend;
        if (strchr(bk->host, ':'))
            snprintf(picked, sizeof picked, "[%s]", bk->host);
        else
            snprintf(picked, sizeof picked, "%s", bk->host);
        host = picked;
    }
    ok = ok && appendf(&b, "Host: %s\r\n", host);
    if (ok && x->host && strcmp(host, x->host) != 0)
        ok = appendf(&b, "X-Original-Host: %s\r\n", x->host);
    if (ok && xff)
        ok = appendf(&b, "X-Forwarded-For: %.*s, %s\r\n", (int)xff->value.len, xff->value.p, c->ip);
    else if (ok)
        ok = appendf(&b, "X-Forwarded-For: %s\r\n", c->ip);
    ok = ok &&
         appendf(&b, "X-Forwarded-Proto: %s\r\nX-Forwarded-Port: %u\r\nX-Request-Id: %s\r\n",
                 c->port->protocol == CFG_PROTO_HTTPS ? "https" : "http", c->port->port, x->id);
    if (ok && req->body == H1_BODY_LENGTH)
        ok = appendf(&b, "Content-Length: %llu\r\n", (unsigned long long)req->content_length);
    else if (ok && req->body == H1_BODY_CHUNKED)
        ok = append_str(&b, "Transfer-Encoding: chunked\r\n");
    ok = ok && append_str(&b, "\r\n");
    if (!ok) {
        buf_free(&b);
        return false;
    }
    x->head = b.data;
    x->head_len = buf_len(&b);
    return true;
}

static struct rt_backend *select_backend(struct exchange *x)
{
    struct worker *w = x->c->w;
    const struct rt_target *t = x->target;
    uint64_t now = worker_now_ms(w);
    for (size_t tries = 0; tries < t->n_backends; tries++) {
        unsigned i = w->rr[t->index]++ % (unsigned)t->n_backends;
        struct rt_backend *b = t->backends[i];
        /* Only servers probed healthy get traffic (the modelled gateway: a new server is
         * unhealthy until its first successful probe). */
        if (atomic_load_explicit(&b->health, memory_order_relaxed) != RT_HEALTH_HEALTHY)
            continue;
        if (atomic_load_explicit(&b->down_until_ms, memory_order_relaxed) > now)
            continue;
        return b;
    }
    return NULL;
}

static bool method_is_idempotent(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
           strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0;
}

void exchange_start(struct client *c, const struct h1_request *req)
{
    struct worker *w = c->w;
    struct exchange *x = calloc(1, sizeof *x);
    if (!x) {
        exchange_error_response(c, 503, "-", true);
        client_exchange_done(c);
        return;
    }
    c->x = x;
    x->c = c;
    x->t_start = c->t_first_byte ? c->t_first_byte : clock_mono_ns();
    x->backend_ms = -1;
    x->diag = DIAG_OK;
    exchange_new_request_id(x->id);
    ev_init(&x->timer, on_timeout);
    x->timer.data = x;

    x->method = dup_slice(req->method);
    struct h1_slice authority, path;
    split_target(req->target, &authority, &path);
    x->path = dup_slice(path);
    /* RFC 9112 3.2.2: an absolute-form target's authority replaces Host, so routing and the
     * backend see the same site. */
    x->host = authority.len ? dup_slice(authority) : (req->host.len ? dup_slice(req->host) : NULL);
    x->minor = req->minor_version;
    x->keep_alive = req->keep_alive;
    x->is_head = h1_slice_eq(req->method, "HEAD");
    x->expect_continue = req->expect_continue;
    x->req_body = req->body;
    x->req_left = req->body == H1_BODY_LENGTH ? req->content_length : 0;
    x->req_done = req->body == H1_BODY_NONE || (req->body == H1_BODY_LENGTH && !x->req_left);
    x->bytes_in = req->head_len;
    if (req->body == H1_BODY_CHUNKED)
        h1_chunked_init(&x->req_chunked);
    if (!x->method || !x->path) {
        fail(x, 503, DIAG_OK, "accept", "ERRORINFO_INVALID_REQUEST", "out of memory");
        return;
    }
    x->idempotent = method_is_idempotent(x->method);

    if (strcmp(x->method, "CONNECT") == 0) {
        fail(x, 405, DIAG_OK, "parse", "ERRORINFO_INVALID_METHOD",
             "CONNECT is not supported: Gatehouse is a reverse proxy, not a tunnel");
        return;
    }
    if (strcmp(x->method, "TRACE") == 0) {
        fail(x, 400, DIAG_OK, "parse", "ERRORINFO_INVALID_METHOD_TRACE",
             "TRACE is refused (it would echo credentials)");
        return;
    }
    char host[300];
    exchange_host_only(x->host ? x->host : "", host, sizeof host);
    x->listener = runtime_match_listener(c->port, host, strlen(host));
    if (!x->listener || !x->listener->target) {
        snprintf(x->detail, sizeof x->detail, "no listener on port %u serves the host '%s'",
                 c->port->port, host);
        fail(x, 404, DIAG_OK, "route", "ERRORINFO_INVALID_HOST", x->detail);
        return;
    }
    x->target = x->listener->target;
    const struct cfg *cfg = w->rt->cfg;
    if (req->body == H1_BODY_LENGTH && req->content_length > cfg->limits.max_body_bytes) {
        snprintf(x->detail, sizeof x->detail, "Content-Length %llu is over the %llu-byte limit",
                 (unsigned long long)req->content_length,
                 (unsigned long long)cfg->limits.max_body_bytes);
        fail(x, 413, DIAG_OK, "parse", "ERRORINFO_INVALID_CONTENT_LENGTH", x->detail);
        return;
    }
    x->backend = select_backend(x);
    if (!x->backend) {
        /* Say why: the health verdict of the pool's first server (502 at once, no attempt). */
        enum diag_code why = DIAG_OK;
        if (x->target->n_backends) {
            struct rt_backend *b = x->target->backends[0];
            int code = atomic_load_explicit(&b->last_code, memory_order_relaxed);
            why = code >= 0 ? (enum diag_code)code : DIAG_OK;
            x->backend = b; /* named for the log: its verdict is the reason */
            snprintf(x->detail, sizeof x->detail,
                     "no backend of pool '%s' is healthy; %s is %s (%s): see /backend-health",
                     x->target->pool->name, b->label,
                     atomic_load_explicit(&b->health, memory_order_relaxed) == RT_HEALTH_UNKNOWN
                             ? "not probed yet"
                             : "Unhealthy",
                     diag_code_name(why));
        } else {
            snprintf(x->detail, sizeof x->detail, "pool '%s' has no servers",
                     x->target->pool->name);
        }
        fail(x, 502, why, "server-select", "ERRORINFO_UPSTREAM_NO_LIVE", x->detail);
        return;
    }
    if (buf_init(&x->upout, PROXY_IO_BUF) != 0 || buf_init(&x->upin, PROXY_IO_BUF) != 0 ||
        !build_upstream_head(x, req)) {
        fail(x, 503, DIAG_OK, "rewrite", "ERRORINFO_INVALID_REQUEST", "out of memory");
        return;
    }
    restart_timer(x);
    upstream_acquire(x, x->backend, false);
}

/* ---- streaming the request body up ------------------------------------------------------ */

static void body_error(struct exchange *x, const char *what)
{
    x->req_done = true; /* nothing more will be read: the connection closes */
    x->keep_alive = false;
    fail(x, 400, DIAG_OK, "body", "ERRORINFO_INVALID_REQUEST", what);
}

/* Moves request body bytes from the client's buffer into the upstream output. */
static bool move_body(struct exchange *x)
{
    struct client *c = x->c;
    while (!x->req_done && buf_len(&c->in) > 0) {
        size_t room = buf_room(&x->upout);
        if (room < 64)
            break;
        if (x->req_body == H1_BODY_LENGTH) {
            size_t n = buf_len(&c->in);
            if (n > room)
                n = room;
            if (n > x->req_left)
                n = (size_t)x->req_left;
            buf_append(&x->upout, buf_head(&c->in), n);
            buf_consume(&c->in, n);
            x->req_left -= n;
            x->bytes_in += n;
            x->body_sent = true;
            if (x->req_left == 0)
                x->req_done = true;
        } else {
            /* Chunked: decode, re-frame. Offer at most what fits once framed again. */
            size_t avail = buf_len(&c->in);
            if (avail > room - 32)
                avail = room - 32;
            size_t used = 0;
            struct h1_slice piece = {0};
            int rc = h1_chunked_next(&x->req_chunked, buf_head(&c->in), avail, &used, &piece);
            if (rc == H1_CHUNK_DATA) {
                x->req_body_bytes += piece.len;
                if (x->req_body_bytes > x->c->w->rt->cfg->limits.max_body_bytes) {
                    x->req_done = true;
                    x->keep_alive = false;
                    snprintf(x->detail, sizeof x->detail,
                             "chunked request body over the %llu-byte limit",
                             (unsigned long long)x->c->w->rt->cfg->limits.max_body_bytes);
                    fail(x, 413, DIAG_OK, "body", "ERRORINFO_INVALID_CONTENT_LENGTH", x->detail);
                    return false;
                }
                appendf(&x->upout, "%zx\r\n", piece.len);
                buf_append(&x->upout, piece.p, piece.len);
                append_str(&x->upout, "\r\n");
                x->body_sent = true;
            }
            buf_consume(&c->in, used);
            x->bytes_in += used;
            if (rc == H1_CHUNK_DONE) {
                append_str(&x->upout, "0\r\n\r\n");
                x->req_done = true;
            } else if (rc == H1_CHUNK_ERROR) {
                body_error(x, "invalid chunked request body");
                return false;
            } else if (rc == H1_CHUNK_NEED_MORE && used == 0) {
                break;
            }
        }
    }
    return true;
}

static void update_upstream_watch(struct exchange *x)
{
    if (!x->up)
        return;
    bool out_room = buf_room(&x->c->out) > 0;
    upstream_watch(x->up, out_room && !x->resp_done, buf_len(&x->upout) > 0);
}

static void pump_request(struct exchange *x)
{
    if (!x->up || x->up->state != UP_READY)
        return;
    if (!move_body(x))
        return;
    if (buf_len(&x->upout) > 0) {
        enum sock_status st = sock_flush(&x->up->s, &x->upout);
        if (st == SOCK_ERROR) {
            /* Handled when the read side sees the failure, so the race retry applies. */
        }
    }
    if (x->req_done && buf_len(&x->upout) == 0 && !x->t_sent)
        x->t_sent = clock_mono_ns();
    update_upstream_watch(x);
    client_update(x->c);
}

void exchange_upstream_ready(struct exchange *x, struct upstream *up)
{
    x->up = up;
    if (!x->head_queued) {
        if (buf_room(&x->upout) < x->head_len)
            buf_reserve(&x->upout, x->head_len + PROXY_IO_BUF);
        buf_append(&x->upout, x->head, x->head_len);
        x->head_queued = true;
    }
    if (x->expect_continue && !x->continue_sent && !x->req_done) {
        x->continue_sent = true;
        append_str(&x->c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    pump_request(x);
}

void exchange_client_readable(struct exchange *x)
{
    pump_request(x);
}

void exchange_client_drained(struct exchange *x)
{
    if (x->resp_head_done && !x->resp_done)
        relay_response(x);
    else
        update_upstream_watch(x);
}

/* ---- the response ---------------------------------------------------------------------- */

static bool retry_on_fresh_connection(struct exchange *x)
{
    struct upstream *up = x->up;
    if (!up || !up->reused || x->retried || x->resp_head_done || buf_len(&x->upin) > 0)
        return false;
    if (!x->idempotent && x->body_sent)
        return false;
    /* The backend closed a kept-alive connection just as we reused it: replay once. */
    x->retried = true;
    upstream_release(up, false);
    x->up = NULL;
    x->upout.start = x->upout.end = 0;
    x->head_queued = false;
    x->t_sent = 0;
    upstream_acquire(x, x->backend, true);
    return true;
}

static bool queue_response_head(struct exchange *x)
{
    struct client *c = x->c;
    const struct h1_response *r = &x->resp;
    struct buf *out = &c->out;
    size_t need = r->head_len + 512;
    if (buf_room(out) < need && buf_reserve(out, out->cap + need) != 0)
        return false;
    bool client11 = x->minor >= 1;
    bool body = r->body != H1_BODY_NONE;
    x->rechunk = body && client11 && (r->body == H1_BODY_CHUNKED || r->body == H1_BODY_CLOSE);
    x->close_delimited = body && !client11 && r->body != H1_BODY_LENGTH;
    if (x->close_delimited)
        x->keep_alive = false;
    bool ok = appendf(out, "HTTP/1.1 %d %.*s\r\n", r->status, (int)r->reason.len, r->reason.p);
    for (size_t i = 0; i < r->n_headers && ok; i++) {
        const struct h1_header *h = &r->headers[i];
        if (is_hop_by_hop(h->name) || named_by_connection(r->headers, r->n_headers, h->name) ||
            h1_slice_ieq(h->name, "x-request-id"))
            continue;
        if (buf_room(out) < h->name.len + h->value.len + 256 &&
            buf_reserve(out, out->cap * 2 + h->name.len + h->value.len) != 0)
            return false;
        ok = buf_append(out, h->name.p, h->name.len) && append_str(out, ": ") &&
             buf_append(out, h->value.p, h->value.len) && append_str(out, "\r\n");
    }
    if (ok && r->body == H1_BODY_LENGTH)
        ok = appendf(out, "Content-Length: %llu\r\n", (unsigned long long)r->content_length);
    else if (ok && x->is_head) {
        const struct h1_header *cl = h1_find_header(r->headers, r->n_headers, "content-length");
        if (cl)
            ok = appendf(out, "Content-Length: %.*s\r\n", (int)cl->value.len, cl->value.p);
    }
    if (ok && x->rechunk)
        ok = append_str(out, "Transfer-Encoding: chunked\r\n");
    ok = ok && appendf(out, "X-Request-Id: %s\r\nConnection: %s\r\n\r\n", x->id,
                       x->keep_alive ? "keep-alive" : "close");
    return ok;
}

/* Moves response body bytes from upin to the client's output; true when the body is done. */
static bool move_response_body(struct exchange *x, bool *bad)
{
    struct buf *out = &x->c->out;
    while (buf_len(&x->upin) > 0) {
        size_t room = buf_room(out);
        if (room < 64)
            return false;
        if (x->resp.body == H1_BODY_LENGTH || (x->resp.body == H1_BODY_CLOSE && !x->rechunk)) {
            size_t n = buf_len(&x->upin);
            if (n > room)
                n = room;
            if (x->resp.body == H1_BODY_LENGTH && n > x->resp_left)
                n = (size_t)x->resp_left;
            buf_append(out, buf_head(&x->upin), n);
            buf_consume(&x->upin, n);
            x->bytes_out += n;
            if (x->resp.body == H1_BODY_LENGTH) {
                x->resp_left -= n;
                if (x->resp_left == 0)
                    return true;
            }
        } else if (x->resp.body == H1_BODY_CLOSE) {
            size_t n = buf_len(&x->upin);
            if (n > room - 32)
                n = room - 32;
            appendf(out, "%zx\r\n", n);
            buf_append(out, buf_head(&x->upin), n);
            append_str(out, "\r\n");
            buf_consume(&x->upin, n);
            x->bytes_out += n;
        } else {
            size_t avail = buf_len(&x->upin);
            if (avail > room - 32)
                avail = room - 32;
            size_t used = 0;
            struct h1_slice piece = {0};
            int rc = h1_chunked_next(&x->resp_chunked, buf_head(&x->upin), avail, &used, &piece);
            if (rc == H1_CHUNK_DATA) {
                if (x->rechunk) {
                    appendf(out, "%zx\r\n", piece.len);
                    buf_append(out, piece.p, piece.len);
                    append_str(out, "\r\n");
                } else {
                    buf_append(out, piece.p, piece.len);
                }
                x->bytes_out += piece.len;
            }
            buf_consume(&x->upin, used);
            if (rc == H1_CHUNK_DONE) {
                if (x->rechunk)
                    append_str(out, "0\r\n\r\n");
                return true;
            }
            if (rc == H1_CHUNK_ERROR) {
                *bad = true;
                return false;
            }
            if (rc == H1_CHUNK_NEED_MORE && used == 0)
                return false;
        }
    }
    return x->resp.body == H1_BODY_LENGTH && x->resp_left == 0;
}

static void relay_response(struct exchange *x)
{
    bool bad = false;
    bool done = move_response_body(x, &bad);
    if (bad) {
        fail(x, 502, DIAG_HTTP_STATUS_MISMATCH, "response-body", "ERRORINFO_UPSTREAM_INVALID",
             "the backend sent an invalid chunked body");
        return;
    }
    if (done) {
        finish(x, true); /* flushes the client's output too */
        return;
    }
    update_upstream_watch(x);
    client_update(x->c); /* may close the client and abort x: callers check c->x */
}

static void on_response_head(struct exchange *x)
{
    x->resp_head_done = true;
    x->status = x->resp.status;
    x->resp_left = x->resp.body == H1_BODY_LENGTH ? x->resp.content_length : 0;
    if (x->resp.body == H1_BODY_CHUNKED)
        h1_chunked_init(&x->resp_chunked);
    size_t before = buf_len(&x->c->out);
    if (!queue_response_head(x)) {
        fail(x, 502, DIAG_HTTP_STATUS_MISMATCH, "response", "ERRORINFO_UPSTREAM_INVALID",
             "the backend's response head could not be rewritten");
        return;
    }
    x->bytes_out += buf_len(&x->c->out) - before;
    x->resp_started = true;
    buf_consume(&x->upin, x->resp.head_len);
    if (x->resp.body == H1_BODY_NONE) {
        finish(x, true);
        return;
    }
    relay_response(x);
}

static void parse_response_head(struct exchange *x)
{
    for (;;) {
        struct h1_limits limits = {.max_head = PROXY_HEAD_MAX,
                                   .max_target = PROXY_HEAD_MAX,
                                   .max_headers = H1_DEFAULT_MAX_HEADERS};
        int rc = h1_parse_response(buf_head(&x->upin), buf_len(&x->upin), &limits, x->resp_headers,
                                   x->is_head, &x->resp);
        if (rc == H1_INCOMPLETE) {
            if (buf_len(&x->upin) >= PROXY_HEAD_MAX)
                fail(x, 502, DIAG_HTTP_STATUS_MISMATCH, "response", "ERRORINFO_UPSTREAM_INVALID",
                     "the backend's response head is too large");
            return;
        }
        if (rc == H1_ERROR) {
            snprintf(x->detail, sizeof x->detail, "invalid response from the backend: %s",
                     h1_error_text(x->resp.error));
            fail(x, 502, DIAG_HTTP_STATUS_MISMATCH, "response", "ERRORINFO_UPSTREAM_INVALID",
                 x->detail);
            return;
        }
        if (x->resp.status >= 100 && x->resp.status < 200 && x->resp.status != 101) {
            /* Interim responses: the client got its own 100 Continue from us. */
            buf_consume(&x->upin, x->resp.head_len);
            continue;
        }
        if (x->t_sent)
            x->backend_ms = clock_ms_between(x->t_sent, clock_mono_ns());
        on_response_head(x);
        return;
    }
}

void exchange_upstream_event(struct exchange *x, int revents)
{
    struct upstream *up = x->up;
    struct client *c = x->c; /* outlives x within this call (clients are freed by a reaper) */
    if (revents & up->s.write_waits && buf_len(&x->upout) > 0) {
        if (sock_flush(&up->s, &x->upout) == SOCK_ERROR) {
            if (retry_on_fresh_connection(x))
                return;
            fail(x, 502, DIAG_CONNECTION_REFUSED, "forward", "ERRORINFO_UPSTREAM_CLOSED_CONNECTION",
                 "the backend closed the connection while the request was sent");
            return;
        }
        pump_request(x);
        if (c->x != x)
            return;
    }
    if (!(revents & up->s.read_waits) && !(revents & EV_READ))
        return;
    for (;;) {
        if (x->resp_head_done && buf_room(&x->c->out) < 64)
            break; /* back-pressure: the client is slower */
        enum sock_status st = sock_read(&up->s, &x->upin, PROXY_IO_BUF);
        if (st == SOCK_BLOCKED)
            break;
        if (st == SOCK_EOF || st == SOCK_ERROR) {
            if (x->resp_head_done && x->resp.body == H1_BODY_CLOSE) {
                bool bad = false;
                move_response_body(x, &bad);
                if (x->rechunk)
                    append_str(&x->c->out, "0\r\n\r\n");
                finish(x, false);
                return;
            }
            if (retry_on_fresh_connection(x))
                return;
            if (x->resp_head_done) {
                fail(x, 502, DIAG_HTTP_STATUS_MISMATCH, "response-body",
                     "ERRORINFO_UPSTREAM_CLOSED_CONNECTION",
                     "the backend closed the connection in the middle of the response");
                return;
            }
            fail(x, 502, DIAG_HTTP_STATUS_MISMATCH, "response",
                 "ERRORINFO_UPSTREAM_CLOSED_CONNECTION",
                 up->reused ? "the backend closed a reused connection without answering"
                            : "the backend closed the connection without answering");
            return;
        }
        restart_timer(x);
        if (!x->resp_head_done) {
            parse_response_head(x);
            if (c->x != x || !x->resp_head_done)
                return;
            continue;
        }
        relay_response(x);
        if (c->x != x)
            return;
    }
    update_upstream_watch(x);
}

/* ---- the end --------------------------------------------------------------------------- */

static void finish(struct exchange *x, bool upstream_reusable)
{
    struct client *c = x->c;
    x->resp_done = true;
    bool reusable = upstream_reusable && x->resp.keep_alive && x->resp.body != H1_BODY_CLOSE &&
                    x->req_done && buf_len(&x->upout) == 0 && buf_len(&x->upin) == 0;
    if (x->up) {
        upstream_release(x->up, reusable);
        x->up = NULL;
    }
    if (!x->req_done)
        c->close_after = true; /* the rest of the request body was never read */
    if (!x->keep_alive)
        c->close_after = true;
    write_log(x);
    c->x = NULL;
    free_exchange(x);
    client_exchange_done(c);
}
