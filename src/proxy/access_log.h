/*
 * access_log: one JSON line per request (fields in the spirit of the modelled gateway's access
 * log), written with a single write() so lines from several workers never interleave.
 */
#ifndef GATEHOUSE_PROXY_ACCESS_LOG_H
#define GATEHOUSE_PROXY_ACCESS_LOG_H

#include <stdbool.h>
#include <stdint.h>

struct access_log {
    int fd; /* -1: disabled */
    bool owns_fd;
};

/* "-" = stdout; NULL or disabled = no log. Returns 0, or -1 with errno set. */
int access_log_open(struct access_log *log, bool enabled, const char *path);
void access_log_close(struct access_log *log);

struct access_record {
    const char *request_id;
    const char *client_ip;
    unsigned client_port;
    const char *listener; /* NULL when no listener matched */
    const char *rule;
    const char *host;
    const char *method;
    const char *path;
    const char *http_version; /* "HTTP/1.1" */
    const char *tls_version;  /* client side, NULL for http */
    int status;
    uint64_t bytes_in;
    uint64_t bytes_out;
    double duration_ms;  /* first request byte to last response byte */
    double backend_ms;   /* request sent to response complete; < 0 when no backend */
    const char *backend; /* "host:port" or NULL */
    const char *pool;
    const char *settings;
    int backend_status;         /* 0 when none */
    const char *upstream_error; /* diagnosis code (CERT_..., CONNECTION_REFUSED, ...) or NULL */
    const char *error_info;     /* ERRORINFO_* in the modelled gateway's vocabulary */
    const char *phase;          /* where a failed request failed; NULL when it succeeded */
    const char *detail;         /* one sentence for the operator, or NULL */
    bool retried;               /* the reused-connection race was retried */
};

void access_log_write(struct access_log *log, const struct access_record *rec);

#endif
