#include "tls/tls_io.h"

#include <errno.h>
#include <ev.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

void tls_io_free(SSL *ssl, bool clean)
{
    if (!ssl)
        return;
    if (clean && SSL_is_init_finished(ssl)) {
        ERR_clear_error();
        SSL_shutdown(ssl);
        ERR_clear_error();
    }
    SSL_free(ssl);
}

static long ssl_result(SSL *ssl, int rc, int *want, int *ssl_error)
{
    int err = SSL_get_error(ssl, rc);
    *ssl_error = err;
    switch (err) {
    case SSL_ERROR_WANT_READ:
        *want = EV_READ;
        return TLS_IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = EV_WRITE;
        return TLS_IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        return TLS_IO_ERROR;
    }
}

long tls_io_read(int fd, SSL *ssl, void *buf, size_t len, int *want, int *ssl_error)
{
    if (ssl) {
        size_t n = 0;
        ERR_clear_error();
        int rc = SSL_read_ex(ssl, buf, len, &n);
        if (rc == 1)
            return (long)n;
        return ssl_result(ssl, rc, want, ssl_error);
    }
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *want = EV_READ;
            return TLS_IO_AGAIN;
        }
        *ssl_error = SSL_ERROR_SYSCALL;
        return TLS_IO_ERROR;
    }
}

long tls_io_write(int fd, SSL *ssl, const void *buf, size_t len, int *want, int *ssl_error)
{
    if (ssl) {
        size_t n = 0;
        ERR_clear_error();
        int rc = SSL_write_ex(ssl, buf, len, &n);
        if (rc == 1)
            return (long)n;
        long r = ssl_result(ssl, rc, want, ssl_error);
        return r == 0 ? TLS_IO_ERROR : r;
    }
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *want = EV_WRITE;
            return TLS_IO_AGAIN;
        }
        *ssl_error = SSL_ERROR_SYSCALL;
        return TLS_IO_ERROR;
    }
}
