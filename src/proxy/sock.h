/*
 * sock: one non-blocking connection end (plain or TLS) driven by a libev watcher. Reading fills
 * a buf, writing drains one; each remembers which readiness event it waits for, because TLS can
 * need to write in order to read and the other way round.
 */
#ifndef GATEHOUSE_PROXY_SOCK_H
#define GATEHOUSE_PROXY_SOCK_H

#include <ev.h>
#include <stdbool.h>

#include <openssl/ssl.h>

#include "core/buf.h"

struct sock {
    int fd;
    SSL *ssl;
    ev_io io;
    int read_waits;  /* event the last blocked read waits for (EV_READ, or EV_WRITE for TLS) */
    int write_waits; /* event the last blocked write waits for */
    int ssl_error;   /* SSL_ERROR_* of the last failure */
    int armed;       /* events the watcher is started with (0 = stopped) */
};

enum sock_status {
    SOCK_PROGRESS = 1, /* moved bytes */
    SOCK_BLOCKED = 0,  /* would block: read_waits/write_waits say on what */
    SOCK_EOF = -1,     /* the peer closed (reads only) */
    SOCK_ERROR = -2,
};

typedef void (*sock_cb)(struct ev_loop *loop, ev_io *io, int revents);

void sock_init(struct sock *s, int fd, sock_cb cb, void *data);

/* Reads into the free room of <b> (at most <max> bytes). */
enum sock_status sock_read(struct sock *s, struct buf *b, size_t max);

/* Writes the unread bytes of <b>; SOCK_PROGRESS when <b> is empty afterwards, else BLOCKED. */
enum sock_status sock_flush(struct sock *s, struct buf *b);

/* Arms the watcher for <want_read> (reading wanted) and <want_write> (output pending). */
void sock_watch(struct ev_loop *loop, struct sock *s, bool want_read, bool want_write);

/* Stops the watcher, frees the TLS state and closes the socket. */
void sock_close(struct ev_loop *loop, struct sock *s);

#endif
