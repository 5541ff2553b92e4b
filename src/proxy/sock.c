#include "proxy/sock.h"

#include <unistd.h>

#include "tls/tls_io.h"

void sock_init(struct sock *s, int fd, sock_cb cb, void *data)
{
    s->fd = fd;
    s->ssl = NULL;
    s->read_waits = EV_READ;
    s->write_waits = EV_WRITE;
    s->ssl_error = 0;
    s->armed = 0;
    ev_io_init(&s->io, cb, fd, 0);
    s->io.data = data;
}

enum sock_status sock_read(struct sock *s, struct buf *b, size_t max)
{
    size_t room = buf_room(b);
    if (room > max)
        room = max;
    if (room == 0)
        return SOCK_BLOCKED;
    int want = EV_READ;
    long n = tls_io_read(s->fd, s->ssl, buf_tail(b), room, &want, &s->ssl_error);
    if (n > 0) {
        buf_produced(b, (size_t)n);
        s->read_waits = EV_READ;
        return SOCK_PROGRESS;
    }
    if (n == 0)
        return SOCK_EOF;
    if (n == TLS_IO_AGAIN) {
        s->read_waits = want;
        return SOCK_BLOCKED;
    }
    return SOCK_ERROR;
}

enum sock_status sock_flush(struct sock *s, struct buf *b)
{
    while (buf_len(b) > 0) {
        int want = EV_WRITE;
        long n = tls_io_write(s->fd, s->ssl, buf_head(b), buf_len(b), &want, &s->ssl_error);
        if (n > 0) {
            buf_consume(b, (size_t)n);
            continue;
        }
        if (n == TLS_IO_AGAIN) {
            s->write_waits = want;
            return SOCK_BLOCKED;
        }
        return SOCK_ERROR;
    }
    s->write_waits = EV_WRITE;
    return SOCK_PROGRESS;
}

void sock_watch(struct ev_loop *loop, struct sock *s, bool want_read, bool want_write)
{
    int events = (want_read ? s->read_waits : 0) | (want_write ? s->write_waits : 0);
    if (s->fd < 0)
        return;
    if (events == s->armed)
        return;
    ev_io_stop(loop, &s->io);
    s->armed = events;
    if (events) {
        ev_io_set(&s->io, s->fd, events);
        ev_io_start(loop, &s->io);
    }
}

void sock_close(struct ev_loop *loop, struct sock *s)
{
    ev_io_stop(loop, &s->io);
    s->armed = 0;
    if (s->ssl) {
        tls_io_free(s->ssl, s->ssl_error != SSL_ERROR_SSL && s->ssl_error != SSL_ERROR_SYSCALL);
        s->ssl = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}
