/*
 * tls_io: non-blocking reads and writes on a socket that may carry TLS, with one result
 * convention for both, so connection code is written once for http and https.
 */
#ifndef GATEHOUSE_TLS_TLS_IO_H
#define GATEHOUSE_TLS_TLS_IO_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

enum {
    TLS_IO_AGAIN = -1, /* would block: wait for the events in *want (EV_READ / EV_WRITE) */
    TLS_IO_ERROR = -2, /* the connection failed; *ssl_error says how (SSL_ERROR_*) */
};

/* >0 bytes read, 0 end of stream, or TLS_IO_AGAIN / TLS_IO_ERROR. <ssl> may be NULL. */
long tls_io_read(int fd, SSL *ssl, void *buf, size_t len, int *want, int *ssl_error);

/* >0 bytes written, or TLS_IO_AGAIN / TLS_IO_ERROR. */
long tls_io_write(int fd, SSL *ssl, const void *buf, size_t len, int *want, int *ssl_error);

/*
 * Frees a connection's TLS state. <clean>: the connection did not fail, so it is closed with a
 * close_notify first -- OpenSSL marks the session of a connection freed without a shutdown as
 * not resumable, and that session may be shared with later connections.
 */
void tls_io_free(SSL *ssl, bool clean);

#endif
