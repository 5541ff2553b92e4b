#include "demo/demo_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "http/h1.h"
#include "tls/tls_io.h"

#define DEMO_CONN_BUF 16384

struct listener {
    struct demo_backends *owner;
    char name[64];
    SSL_CTX *ctx, *sni_ctx;
    char sni_name[256];
    int fd;
    uint16_t port;
    ev_io io;
};

struct demo_backends {
    struct ev_loop *loop;
    pthread_t thread;
    bool started;
    ev_async stop;
    struct listener *listeners;
    size_t n;
};

struct conn {
    struct listener *l;
    int fd;
    SSL *ssl;
    ev_io io;
    bool handshaken;
    char in[DEMO_CONN_BUF];
    size_t in_len;
    char out[512];
    size_t out_len, out_off;
};

static void conn_free(struct conn *c)
{
    ev_io_stop(c->l->owner->loop, &c->io);
    SSL_free(c->ssl);
    close(c->fd);
    free(c);
}

static void conn_watch(struct conn *c, int events)
{
    struct ev_loop *loop = c->l->owner->loop;
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(loop, &c->io);
}

static void on_conn(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = io->data;
    int want = EV_READ, err = 0;
    if (!c->handshaken) {
        ERR_clear_error();
        int rc = SSL_accept(c->ssl);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                conn_watch(c, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE);
                return;
            }
            ERR_clear_error();
            conn_free(c);
            return;
        }
        c->handshaken = true;
    }
    for (;;) {
        while (c->out_off < c->out_len) {
            long n = tls_io_write(c->fd, c->ssl, c->out + c->out_off, c->out_len - c->out_off,
                                  &want, &err);
            if (n == TLS_IO_AGAIN) {
                conn_watch(c, want);
                return;
            }
            if (n < 0) {
                conn_free(c);
                return;
            }
            c->out_off += (size_t)n;
        }
        c->out_len = c->out_off = 0;
        struct h1_header headers[64];
        struct h1_request req;
        int rc =
                c->in_len ? h1_parse_request(c->in, c->in_len, NULL, headers, &req) : H1_INCOMPLETE;
        if (rc == H1_COMPLETE) {
            /* Only bodiless requests are expected (probes and curl GETs). */
            static const char body_fmt[] = "hello from %s\n";
            char body[128];
            int blen = snprintf(body, sizeof body, body_fmt, c->l->name);
            c->out_len = (size_t)snprintf(c->out, sizeof c->out,
                                          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                          "Content-Length: %d\r\nConnection: %s\r\n\r\n%s",
                                          blen, req.keep_alive ? "keep-alive" : "close", body);
            memmove(c->in, c->in + req.head_len, c->in_len - req.head_len);
            c->in_len -= req.head_len;
            if (!req.keep_alive)
                c->in_len = 0;
            continue;
        }
        if (rc == H1_ERROR || c->in_len == sizeof c->in) {
            conn_free(c);
            return;
        }
        long n = tls_io_read(c->fd, c->ssl, c->in + c->in_len, sizeof c->in - c->in_len, &want,
                             &err);
        if (n == TLS_IO_AGAIN) {
            conn_watch(c, want);
            return;
        }
        if (n <= 0) {
            conn_free(c);
            return;
        }
        c->in_len += (size_t)n;
    }
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct listener *l = io->data;
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct conn *c = calloc(1, sizeof *c);
        if (!c || !(c->ssl = SSL_new(l->ctx)) || SSL_set_fd(c->ssl, fd) != 1) {
            if (c)
                SSL_free(c->ssl);
            free(c);
            close(fd);
            continue;
        }
        c->l = l;
        c->fd = fd;
        ev_io_init(&c->io, on_conn, fd, EV_READ);
        c->io.data = c;
        ev_io_start(loop, &c->io);
    }
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    struct listener *l = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name && l->sni_ctx && strcasecmp(name, l->sni_name) == 0)
        SSL_set_SSL_CTX(ssl, l->sni_ctx);
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *make_ctx(X509 *cert, STACK_OF(X509) * chain, EVP_PKEY *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    for (int i = 0; chain && i < sk_X509_num(chain); i++)
        SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i));
    return ctx;
}

static void on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *serve(void *arg)
{
    struct demo_backends *b = arg;
    ev_run(b->loop, 0);
    return NULL;
}

struct demo_backends *demo_backends_start(const struct demo_backend_spec *specs, size_t n,
                                          char *err, size_t errlen)
{
    struct demo_backends *b = calloc(1, sizeof *b);
    if (!b || !(b->listeners = calloc(n, sizeof *b->listeners))) {
        free(b);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->loop = ev_loop_new(EVFLAG_AUTO);
    for (size_t i = 0; i < n; i++) {
        struct listener *l = &b->listeners[i];
        l->owner = b;
        l->fd = -1;
        b->n++;
        snprintf(l->name, sizeof l->name, "%s", specs[i].name);
        l->ctx = make_ctx(specs[i].cert, specs[i].chain, specs[i].key);
        if (specs[i].sni_name) {
            snprintf(l->sni_name, sizeof l->sni_name, "%s", specs[i].sni_name);
            l->sni_ctx = make_ctx(specs[i].sni_cert, specs[i].sni_chain, specs[i].sni_key);
            if (l->ctx) {
                SSL_CTX_set_tlsext_servername_callback(l->ctx, on_servername);
                SSL_CTX_set_tlsext_servername_arg(l->ctx, l);
            }
        }
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (!l->ctx || l->fd < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
            listen(l->fd, 128) != 0 || getsockname(l->fd, (struct sockaddr *)&sa, &len) != 0) {
            snprintf(err, errlen, "demo backend '%s': %s", l->name,
                     l->ctx ? strerror(errno) : "cannot build its TLS context");
            demo_backends_stop(b);
            return NULL;
        }
        l->port = ntohs(sa.sin_port);
        ev_io_init(&l->io, on_accept, l->fd, EV_READ);
        l->io.data = l;
        ev_io_start(b->loop, &l->io);
    }
    ev_async_init(&b->stop, on_stop);
    ev_async_start(b->loop, &b->stop);
    if (pthread_create(&b->thread, NULL, serve, b) != 0) {
        snprintf(err, errlen, "cannot start the demo backends' thread");
        demo_backends_stop(b);
        return NULL;
    }
    b->started = true;
    return b;
}

uint16_t demo_backend_port(const struct demo_backends *b, size_t i)
{
    return b->listeners[i].port;
}

void demo_backends_stop(struct demo_backends *b)
{
    if (!b)
        return;
    if (b->started) {
        ev_async_send(b->loop, &b->stop);
        pthread_join(b->thread, NULL);
    }
    for (size_t i = 0; i < b->n; i++) {
        struct listener *l = &b->listeners[i];
        if (l->fd >= 0) {
            ev_io_stop(b->loop, &l->io);
            close(l->fd);
        }
        SSL_CTX_free(l->ctx);
        SSL_CTX_free(l->sni_ctx);
    }
    ev_loop_destroy(b->loop);
    free(b->listeners);
    free(b);
}
