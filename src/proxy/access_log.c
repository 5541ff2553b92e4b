#include "proxy/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

int access_log_open(struct access_log *log, bool enabled, const char *path)
{
    log->fd = -1;
    log->owns_fd = false;
    if (!enabled || !path)
        return 0;
    if (strcmp(path, "-") == 0) {
        log->fd = STDOUT_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    log->fd = fd;
    log->owns_fd = true;
    return 0;
}

void access_log_close(struct access_log *log)
{
    if (log->owns_fd && log->fd >= 0)
        close(log->fd);
    log->fd = -1;
}

static void set_str(json_t *o, const char *key, const char *value)
{
    json_object_set_new(o, key, value ? json_string(value) : json_null());
}

static double round3(double v)
{
    return (double)(long long)(v * 1000.0 + 0.5) / 1000.0;
}

void access_log_write(struct access_log *log, const struct access_record *r)
{
    if (log->fd < 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);

    json_t *o = json_object();
    if (!o)
        return;
    set_str(o, "time", when);
    set_str(o, "request_id", r->request_id);
    set_str(o, "client_ip", r->client_ip);
    json_object_set_new(o, "client_port", json_integer(r->client_port));
    set_str(o, "listener", r->listener);
    set_str(o, "rule", r->rule);
    set_str(o, "host", r->host);
    set_str(o, "method", r->method);
    set_str(o, "path", r->path);
    set_str(o, "http_version", r->http_version);
    set_str(o, "tls_version", r->tls_version);
    json_object_set_new(o, "status", json_integer(r->status));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)r->bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)r->bytes_out));
    json_object_set_new(o, "duration_ms", json_real(round3(r->duration_ms)));
    json_object_set_new(o, "backend_ms",
                        r->backend_ms >= 0 ? json_real(round3(r->backend_ms)) : json_null());
    set_str(o, "backend", r->backend);
    set_str(o, "backend_pool", r->pool);
    set_str(o, "backend_settings", r->settings);
    json_object_set_new(o, "backend_status",
                        r->backend_status ? json_integer(r->backend_status) : json_null());
    set_str(o, "upstream_error", r->upstream_error);
    set_str(o, "error_info", r->error_info ? r->error_info : "ERRORINFO_NO_ERROR");
    set_str(o, "phase", r->phase);
    set_str(o, "detail", r->detail);
    if (r->retried)
        json_object_set_new(o, "retried", json_true());
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!line)
        return;
    size_t len = strlen(line);
    line[len] = '\n'; /* replaces the terminator: write exactly len + 1 bytes */
    size_t off = 0;
    while (off < len + 1) {
        ssize_t w = write(log->fd, line + off, len + 1 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(line);
}
