#include "diagnose/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/clock.h"
#include "core/dns.h"
#include "diagnose/explain.h"
#include "http/h1.h"
#include "tls/name_match.h"
#include "tls/tls_io.h"

/* The probe keeps this much of the body for --match-body and stops reading after it. */
#define PROBE_BODY_KEEP  (1024 * 1024)
#define PROBE_HEAD_MAX   (64 * 1024)
#define PROBE_MAX_ALTS   4
#define PROBE_FIRST_KEEP 16

enum phase {
    PH_RESOLVE,
    PH_CONNECT,
    PH_TLS,
    PH_HTTP_WRITE,
    PH_HTTP_READ,
    PH_ALT_CONNECT,
    PH_ALT_TLS,
    PH_DONE,
};

struct probe {
    struct ev_loop *loop;
    struct dns_resolver *dns;
    struct probe_spec spec;
    probe_done_fn done;
    void *arg;
    struct probe_result *res;
    enum phase phase;

    struct dns_query *query;
    struct dns_result addrs;
    size_t addr_next;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char connect_errors[512];

    int fd;
    SSL *ssl;
    ev_io io;
    ev_timer timer;
    uint64_t t_start, t_step;

    bool ssl_failed; /* a fatal TLS error: the session must not be resumed */
    bool reusing;    /* on a kept-alive connection from an earlier probe */
    bool starting;   /* inside probe_start: completion is deferred to the loop */
    uint64_t conn_since_ns;
    bool body_complete;
    /* what the TLS layer saw, for explaining a failure */
    unsigned char first_bytes[PROBE_FIRST_KEEP];
    size_t n_first;
    bool cert_requested;
    bool alert_received;
    char alert[80];

    /* HTTP */
    char *request;
    size_t request_len, request_off;
    char *buf;
    size_t len, cap;
    bool head_done;
    struct h1_header headers[H1_DEFAULT_MAX_HEADERS];
    struct h1_response response;
    uint64_t body_seen;
    struct h1_chunked chunked;
    char *body;
    size_t body_len, body_cap;

    /* the SNI second look */
    const char *alt_names[PROBE_MAX_ALTS];
    size_t n_alts, alt_next;
    char main_leaf_sha[CERT_SHA256_HEX_LEN + 1];
};

static void finish_main(struct probe *p);
static void restart_fresh(struct probe *p);
static void start_connect(struct probe *p);
static void alt_next(struct probe *p);
static void on_io(struct ev_loop *loop, ev_io *w, int revents);

/* ---- small helpers ---------------------------------------------------------------------- */

static double since_ms(uint64_t t)
{
    return clock_ms_between(t, clock_mono_ns());
}

static void close_conn(struct probe *p)
{
    ev_io_stop(p->loop, &p->io);
    if (p->ssl) {
        tls_io_free(p->ssl, !p->ssl_failed);
        p->ssl = NULL;
    }
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
}

static void watch(struct probe *p, int events)
{
    ev_io_stop(p->loop, &p->io);
    ev_io_set(&p->io, p->fd, events);
    ev_io_start(p->loop, &p->io);
}

static void arm_deadline(struct probe *p)
{
    ev_timer_stop(p->loop, &p->timer);
    ev_timer_set(&p->timer, p->spec.timeout_s, 0.);
    ev_timer_start(p->loop, &p->timer);
}

static void add_finding(struct probe *p, enum diag_code code, char *message, char *remedy)
{
    finding_add(&p->res->findings, code, message, remedy);
}

static void free_probe(struct probe *p)
{
    close_conn(p);
    ev_timer_stop(p->loop, &p->timer);
    if (p->query)
        dns_query_cancel(p->query);
    free(p->request);
    free(p->buf);
    free(p->body);
    free(p);
}

static void complete(struct probe *p)
{
    p->phase = PH_DONE;
    if (p->starting) {
        /* Finished inside probe_start (a refused connect, a kept connection that answered at
         * once): the callback must not run before the caller has the handle. */
        ev_timer_stop(p->loop, &p->timer);
        ev_timer_set(&p->timer, 0., 0.);
        ev_timer_start(p->loop, &p->timer);
        return;
    }
    ev_io_stop(p->loop, &p->io);
    struct probe_result *res = p->res;
    p->res = NULL;
    finding_list_sort(&res->findings);
    res->code = finding_list_code(&res->findings);
    res->ms_total = since_ms(p->t_start);
    probe_done_fn done = p->done;
    void *arg = p->arg;
    free_probe(p);
    done(res, arg);
}

/* ---- TLS failure explanation ------------------------------------------------------------ */

static void on_tls_info(const SSL *ssl, int where, int ret)
{
    if (!(where & SSL_CB_READ_ALERT))
        return;
    struct probe *p = SSL_get_app_data(ssl);
    if (!p)
        return;
    p->alert_received = true;
    /* OpenSSL 3.0 has no name for TLS 1.3's certificate_required (116). */
    if ((ret & 0xff) == 116)
        snprintf(p->alert, sizeof p->alert, "certificate required");
    else
        snprintf(p->alert, sizeof p->alert, "%s", SSL_alert_desc_string_long(ret));
}

static int on_cert_request(SSL *ssl, void *arg)
{
    (void)ssl;
    struct probe *p = arg;
    p->cert_requested = true;
    return 1;
}

static long on_bio_read(BIO *bio, int oper, const char *argp, size_t len, int argi, long argl,
                        int ret, size_t *processed)
{
    (void)len;
    (void)argi;
    (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed && *processed > 0) {
        struct probe *p = (struct probe *)BIO_get_callback_arg(bio);
        if (p && p->n_first < PROBE_FIRST_KEEP) {
            size_t n = *processed;
            if (n > PROBE_FIRST_KEEP - p->n_first)
                n = PROBE_FIRST_KEEP - p->n_first;
            memcpy(p->first_bytes + p->n_first, argp, n);
            p->n_first += n;
        }
    }
    return ret;
}

static bool saw_plain_http(const struct probe *p)
{
    return p->n_first >= 5 && memcmp(p->first_bytes, "HTTP/", 5) == 0;
}

static bool client_cert_configured(const struct probe *p)
{
    return SSL_CTX_get0_certificate(p->spec.ssl_ctx) != NULL;
}

/* Describes why the handshake (or the first read after it, in TLS 1.3) failed. */
static void tls_failure(struct probe *p, int ssl_error, const char *when)
{
    p->ssl_failed = true;
    unsigned long e = ERR_peek_last_error();
    char reason[256] = "";
    if (e)
        snprintf(reason, sizeof reason, "%s",
                 ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown");
    ERR_clear_error();
    char *msg, *fix;
    const char *addr = p->res->address;
    if (saw_plain_http(p)) {
        msg = diag_fmt("The server at %s answered the TLS handshake with plain HTTP (it replied "
                       "'%.5s...'): this port does not speak TLS.",
                       addr, (const char *)p->first_bytes);
        fix = diag_fmt("Use protocol http for this backend, or point the backend settings at "
                       "its HTTPS port.");
    } else if (p->cert_requested && !client_cert_configured(p)) {
        msg = diag_fmt("The server at %s requires a client certificate (mutual TLS) and none was "
                       "presented%s%s%s.",
                       addr, p->alert_received ? "; it answered with the alert '" : "",
                       p->alert_received ? p->alert : "", p->alert_received ? "'" : "");
        fix = diag_fmt("Give the backend settings a client certificate the backend trusts "
                       "(client-certificate%s).",
                       p->spec.cli ? ", or --client-cert/--client-key" : "");
    } else if (p->cert_requested && p->alert_received) {
        msg = diag_fmt("The server at %s rejected the client certificate presented (alert '%s').",
                       addr, p->alert);
        fix = diag_fmt("Present a client certificate issued by a CA the backend trusts.");
    } else if (p->alert_received && p->res->sni && strstr(p->alert, "unrecognized")) {
        msg = diag_fmt("The server at %s does not serve the name '%s' sent as SNI: it refused the "
                       "TLS handshake with the alert '%s'.",
                       addr, p->res->sni, p->alert);
        fix = diag_fmt("Set the host name in the backend settings%s to a name this backend "
                       "hosts, or configure the backend to serve '%s'.",
                       p->spec.cli ? " (--host)" : "", p->res->sni);
    } else if (p->alert_received) {
        msg = diag_fmt("The server at %s refused the TLS handshake (%s) with the alert '%s'%s%s.",
                       addr, when, p->alert, reason[0] ? ": " : "", reason);
        if (!p->res->sni && (strstr(p->alert, "unrecognized") || strstr(p->alert, "handshake")))
            fix = diag_fmt("No SNI was sent; servers that host several names often refuse a "
                           "handshake without one. Set the host name in the backend settings%s.",
                           p->spec.cli ? " (--host)" : "");
        else
            fix = diag_fmt("Check the backend's TLS configuration: it must accept TLS 1.2 or "
                           "1.3 with a common cipher suite%s.",
                           p->res->sni ? "" : ", and serve a certificate when no SNI is sent");
    } else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN || !reason[0]) {
        msg = diag_fmt("The server at %s closed the connection %s without completing TLS.", addr,
                       when);
        fix = diag_fmt("Check that the backend port serves TLS, accepts TLS 1.2 or 1.3, and "
                       "serves a certificate %s.",
                       p->res->sni ? "for this SNI" : "when no SNI is sent");
    } else {
        msg = diag_fmt("The TLS handshake with %s failed %s: %s.", addr, when, reason);
        fix = diag_fmt("Check the backend's TLS configuration: it must accept TLS 1.2 or 1.3 "
                       "with a cipher suite in common with the gateway.");
    }
    add_finding(p, DIAG_TLS_HANDSHAKE_FAILED, msg, fix);
}

/* ---- HTTP ------------------------------------------------------------------------------- */

static bool build_request(struct probe *p)
{
    const struct probe_spec *s = &p->spec;
    int n = asprintf(&p->request,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\n"
                     "Connection: %s\r\n\r\n",
                     s->path && *s->path ? s->path : "/", s->host_header,
                     s->user_agent ? s->user_agent : "Gatehouse-Probe/1",
                     s->keep ? "keep-alive" : "close");
    if (n < 0) {
        p->request = NULL;
        return false;
    }
    p->request_len = (size_t)n;
    p->request_off = 0;
    return true;
}

/* >0 bytes, 0 EOF, -1 would block (events in *want), -2 error. */
static long conn_read(struct probe *p, char *buf, size_t len, int *want, int *ssl_err)
{
    return tls_io_read(p->fd, p->ssl, buf, len, want, ssl_err);
}

static long conn_write(struct probe *p, const char *buf, size_t len, int *want, int *ssl_err)
{
    return tls_io_write(p->fd, p->ssl, buf, len, want, ssl_err);
}

static void keep_body(struct probe *p, const char *data, size_t len)
{
    p->body_seen += len;
    p->res->http_bytes = p->body_seen;
    if (!p->spec.match_body || p->body_len >= PROBE_BODY_KEEP)
        return;
    if (len > PROBE_BODY_KEEP - p->body_len)
        len = PROBE_BODY_KEEP - p->body_len;
    if (p->body_len + len > p->body_cap) {
        /* Grown as needed: most health pages are a few bytes, and a 1 MiB allocation per
         * probe would be an mmap and munmap each time. */
        size_t cap = p->body_cap ? p->body_cap : 4096;
        while (cap < p->body_len + len)
            cap *= 2;
        if (cap > PROBE_BODY_KEEP)
            cap = PROBE_BODY_KEEP;
        char *grown = realloc(p->body, cap);
        if (!grown)
            return;
        p->body = grown;
        p->body_cap = cap;
    }
    memcpy(p->body + p->body_len, data, len);
    p->body_len += len;
}

/* Feeds body bytes; returns true when the body is complete. */
static bool feed_body(struct probe *p, const char *data, size_t len, bool *bad)
{
    switch (p->response.body) {
    case H1_BODY_NONE:
        return true;
    case H1_BODY_LENGTH: {
        uint64_t left = p->response.content_length - p->body_seen;
        keep_body(p, data, len < left ? len : (size_t)left);
        return p->body_seen >= p->response.content_length;
    }
    case H1_BODY_CHUNKED:
        while (len > 0) {
            size_t used = 0;
            struct h1_slice piece = {0};
            int rc = h1_chunked_next(&p->chunked, data, len, &used, &piece);
            data += used;
            len -= used;
            if (rc == H1_CHUNK_DATA)
                keep_body(p, piece.p, piece.len);
            else if (rc == H1_CHUNK_DONE)
                return true;
            else if (rc == H1_CHUNK_ERROR) {
                *bad = true;
                return true;
            } else if (used == 0)
                break;
        }
        return false;
    case H1_BODY_CLOSE:
        keep_body(p, data, len);
        return false;
    }
    return true;
}

static void http_verdict(struct probe *p)
{
    const struct probe_spec *s = &p->spec;
    struct probe_result *r = p->res;
    r->http_done = true;
    r->ms_response = since_ms(p->t_step);
    char accepted[256];
    status_match_format(s->match_status, accepted, sizeof accepted);
    if (!status_match_accepts(s->match_status, r->http_status)) {
        const char *hint = "";
        switch (r->http_status) {
        case 401:
            hint = " Probes send no credentials: probe a path that needs none, or accept 401.";
            break;
        case 403:
            hint = " The backend refuses the probe: check its access rules for the gateway's "
                   "address and the Host header sent.";
            break;
        case 404:
            hint = " Check the probe path and the Host header: the backend has no such page "
                   "for that host.";
            break;
        case 405:
            hint = " Probes always use GET.";
            break;
        case 500:
        case 502:
        case 503:
            hint = " The application itself reports an error: check its logs.";
            break;
        default:
            if (r->http_status >= 300 && r->http_status < 400)
                hint = " Redirects are not followed.";
            break;
        }
        add_finding(p, DIAG_HTTP_STATUS_MISMATCH,
                    diag_fmt("GET %s with Host '%s' returned status %d, which is not in the "
                             "accepted set %s.",
                             s->path, s->host_header, r->http_status, accepted),
                    diag_fmt("Make the backend answer %s with a status in %s, or change the "
                             "probe's accepted statuses%s.%s",
                             s->path, accepted, s->cli ? " (--match-status)" : "", hint));
    }
    if (s->match_body && *s->match_body) {
        bool found = p->body &&
                     memmem(p->body, p->body_len, s->match_body, strlen(s->match_body)) != NULL;
        if (!found)
            add_finding(p, DIAG_HTTP_BODY_MISMATCH,
                        diag_fmt("The response body (%llu bytes%s) does not contain '%s'.",
                                 (unsigned long long)p->body_seen,
                                 p->body_seen > PROBE_BODY_KEEP ? ", first 1 MiB searched" : "",
                                 s->match_body),
                        diag_fmt("Make the health page return the expected text, or change the "
                                 "probe's body match%s (a plain substring, case-sensitive).",
                                 s->cli ? " (--match-body)" : ""));
    }
    finish_main(p);
}

static void http_broken(struct probe *p, const char *what)
{
    char accepted[256];
    status_match_format(p->spec.match_status, accepted, sizeof accepted);
    p->res->ms_response = since_ms(p->t_step);
    add_finding(p, DIAG_HTTP_STATUS_MISMATCH,
                diag_fmt("No valid HTTP response to GET %s: %s (accepted statuses: %s).",
                         p->spec.path, what, accepted),
                diag_fmt("Check that the backend serves HTTP/1.1 on this port%s.",
                         p->spec.https ? " over TLS" : ""));
    finish_main(p);
}

static void http_read(struct probe *p)
{
    for (;;) {
        if (p->cap - p->len < 16384) {
            size_t cap = p->cap ? p->cap * 2 : 32768;
            char *grown = realloc(p->buf, cap);
            if (!grown) {
                http_broken(p, "out of memory");
                return;
            }
            p->buf = grown;
            p->cap = cap;
        }
        int want = 0, ssl_err = 0;
        long n = conn_read(p, p->buf + p->len, p->cap - p->len, &want, &ssl_err);
        if (n == -1) {
            watch(p, want);
            return;
        }
        if ((n == -2 || n == 0) && p->reusing && !p->head_done && p->len == 0) {
            restart_fresh(p);
            return;
        }
        if (n == -2) {
            if (p->ssl && (p->alert_received || ssl_err == SSL_ERROR_SSL) && !p->head_done &&
                p->len == 0) {
                /* TLS 1.3: the server judges our certificate after our Finished. */
                tls_failure(p, ssl_err, "after the handshake");
                finish_main(p);
                return;
            }
            http_broken(p, "the connection failed while reading the response");
            return;
        }
        if (n == 0) {
            if (!p->head_done) {
                http_broken(p, p->len ? "the server closed the connection in the middle of "
                                        "the response head"
                                      : "the server closed the connection without answering");
                return;
            }
            if (p->response.body == H1_BODY_CLOSE) {
                http_verdict(p);
                return;
            }
            http_broken(p, "the server closed the connection before the body was complete");
            return;
        }
        const char *data = p->buf + p->len;
        size_t data_len = (size_t)n;
        if (!p->head_done) {
            p->len += (size_t)n;
            struct h1_limits limits = {.max_head = PROBE_HEAD_MAX,
                                       .max_target = PROBE_HEAD_MAX,
                                       .max_headers = H1_DEFAULT_MAX_HEADERS};
            int rc = h1_parse_response(p->buf, p->len, &limits, p->headers, false, &p->response);
            if (rc == H1_INCOMPLETE)
                continue;
            if (rc == H1_ERROR) {
                char what[160];
                snprintf(what, sizeof what, "malformed response head (%s at byte %zu)",
                         h1_error_text(p->response.error), p->response.error_pos);
                http_broken(p, what);
                return;
            }
            p->head_done = true;
            p->res->http_status = p->response.status;
            if (p->response.body == H1_BODY_CHUNKED)
                h1_chunked_init(&p->chunked);
            data = p->buf + p->response.head_len;
            data_len = p->len - p->response.head_len;
            p->len = 0; /* the head is parsed; the buffer is reused for body reads */
            if (p->response.body == H1_BODY_NONE) {
                p->body_complete = true;
                http_verdict(p);
                return;
            }
        }
        bool bad = false;
        bool complete_body = feed_body(p, data, data_len, &bad);
        if (bad) {
            http_broken(p, "invalid chunked encoding in the body");
            return;
        }
        if (complete_body || p->body_seen >= PROBE_BODY_KEEP) {
            p->body_complete = complete_body;
            http_verdict(p);
            return;
        }
    }
}

static void http_write(struct probe *p)
{
    while (p->request_off < p->request_len) {
        int want = 0, ssl_err = 0;
        long n = conn_write(p, p->request + p->request_off, p->request_len - p->request_off, &want,
                            &ssl_err);
        if (n == -1) {
            watch(p, want);
            return;
        }
        if (n < 0 && p->reusing) {
            restart_fresh(p);
            return;
        }
        if (n < 0) {
            if (p->ssl && (p->alert_received || ssl_err == SSL_ERROR_SSL)) {
                tls_failure(p, ssl_err, "after the handshake");
                finish_main(p);
                return;
            }
            http_broken(p, "the connection failed while sending the request");
            return;
        }
        p->request_off += (size_t)n;
    }
    p->phase = PH_HTTP_READ;
    http_read(p);
}

static void start_http(struct probe *p)
{
    p->t_step = clock_mono_ns();
    if (!build_request(p)) {
        http_broken(p, "out of memory");
        return;
    }
    p->phase = PH_HTTP_WRITE;
    http_write(p);
}

/* ---- TLS -------------------------------------------------------------------------------- */

static int start_tls(struct probe *p, const char *sni)
{
    p->n_first = 0;
    p->cert_requested = false;
    p->alert_received = false;
    p->alert[0] = '\0';
    p->ssl = SSL_new(p->spec.ssl_ctx);
    if (!p->ssl)
        return -1;
    BIO *bio = BIO_new_socket(p->fd, BIO_NOCLOSE);
    if (!bio)
        return -1;
    BIO_set_callback_ex(bio, on_bio_read);
    BIO_set_callback_arg(bio, (char *)p);
    SSL_set_bio(p->ssl, bio, bio);
    SSL_set_app_data(p->ssl, p);
    SSL_set_info_callback(p->ssl, on_tls_info);
    SSL_set_cert_cb(p->ssl, on_cert_request, p);
    if (sni && SSL_set_tlsext_host_name(p->ssl, sni) != 1)
        return -1;
    return 0;
}

/* Runs the handshake; returns 1 done, 0 in progress, -1 failed (ssl error in *err). */
static int step_tls(struct probe *p, int *err)
{
    ERR_clear_error();
    int rc = SSL_connect(p->ssl);
    if (rc == 1)
        return 1;
    *err = SSL_get_error(p->ssl, rc);
    if (*err == SSL_ERROR_WANT_READ) {
        watch(p, EV_READ);
        return 0;
    }
    if (*err == SSL_ERROR_WANT_WRITE) {
        watch(p, EV_WRITE);
        return 0;
    }
    return -1;
}

static void record_tls(struct probe *p)
{
    struct probe_result *r = p->res;
    r->tls_done = true;
    snprintf(r->tls_version, sizeof r->tls_version, "%s", SSL_get_version(p->ssl));
    snprintf(r->tls_cipher, sizeof r->tls_cipher, "%s", SSL_get_cipher_name(p->ssl));
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(p->ssl, &alpn, &alpn_len);
    if (alpn && alpn_len < sizeof r->tls_alpn) {
        memcpy(r->tls_alpn, alpn, alpn_len);
        r->tls_alpn[alpn_len] = '\0';
    }
}

static bool is_ip_addressed(const struct probe_spec *s)
{
    return name_is_ip_literal(s->host);
}

static void judge_chain(struct probe *p)
{
    struct probe_result *r = p->res;
    const struct probe_spec *s = &p->spec;
    STACK_OF(X509) *sent = SSL_get_peer_cert_chain(p->ssl);
    if (chain_analyze(sent, s->trust, s->check_name, clock_wall_now(), &r->chain) != 0) {
        add_finding(p, DIAG_TLS_HANDSHAKE_FAILED, diag_fmt("out of memory analysing the chain"),
                    diag_fmt("retry"));
        return;
    }
    r->have_chain = true;
    if (r->chain.n_certs > 0)
        memcpy(p->main_leaf_sha, r->chain.certs[r->chain.leaf].info.sha256,
               sizeof p->main_leaf_sha);
    struct explain_context ctx = {.name_source = s->name_source,
                                  .addressed_by_ip = is_ip_addressed(s),
                                  .cli = s->cli,
                                  .now = clock_wall_now(),
                                  .expiry_warning_days = s->expiry_warning_days};
    explain_chain(&r->chain, s->trust, &ctx, &r->findings);
}

static void on_tls_ready(struct probe *p)
{
    p->res->ms_tls = since_ms(p->t_step);
    record_tls(p);
    judge_chain(p);
    start_http(p);
}

/* ---- connect ---------------------------------------------------------------------------- */

static void note_connect_error(struct probe *p, int err)
{
    size_t used = strlen(p->connect_errors);
    snprintf(p->connect_errors + used, sizeof p->connect_errors - used, "%s%s: %s",
             used ? "; " : "", p->res->address, strerror(err));
}

static void connect_failed_all(struct probe *p, int last_err)
{
    p->res->ms_connect = since_ms(p->t_step);
    if (last_err == ETIMEDOUT) {
        add_finding(
                p, DIAG_CONNECTION_TIMEOUT,
                diag_fmt("Connecting to %s timed out (%s).", p->res->address, p->connect_errors),
                diag_fmt("Check that the backend is up, that the port is right, and that no "
                         "firewall or route drops traffic from the gateway."));
    } else {
        add_finding(p, DIAG_CONNECTION_REFUSED,
                    diag_fmt("The gateway could not connect to %s:%u (%s).", p->spec.host,
                             p->spec.port, p->connect_errors),
                    diag_fmt("Nothing accepts connections there: check that the backend service "
                             "is running and listening on port %u, and that no firewall rejects "
                             "the gateway.",
                             p->spec.port));
    }
    finish_main(p);
}

static void connected(struct probe *p)
{
    p->conn_since_ns = clock_mono_ns();
    int one = 1;
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    p->res->ms_connect = since_ms(p->t_step);
    p->t_step = clock_mono_ns();
    if (!p->spec.https) {
        start_http(p);
        return;
    }
    p->phase = PH_TLS;
    if (start_tls(p, p->res->sni) != 0) {
        add_finding(p, DIAG_TLS_HANDSHAKE_FAILED, diag_fmt("cannot start TLS (out of memory)"),
                    diag_fmt("retry"));
        finish_main(p);
        return;
    }
    int err = 0;
    int rc = step_tls(p, &err);
    if (rc == 1)
        on_tls_ready(p);
    else if (rc < 0) {
        p->res->ms_tls = since_ms(p->t_step);
        tls_failure(p, err, "during the handshake");
        finish_main(p);
    }
}

/* Opens a non-blocking socket to p->addr; returns 1 connected, 0 in progress, -errno. */
static int open_socket(struct probe *p)
{
    p->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        return -errno;
    if (connect(p->fd, (struct sockaddr *)&p->addr, p->addr_len) == 0)
        return 1;
    if (errno == EINPROGRESS)
        return 0;
    int err = errno;
    close(p->fd);
    p->fd = -1;
    return -err;
}

static void start_connect(struct probe *p)
{
    int last_err = ECONNREFUSED;
    while (p->addr_next < p->addrs.n_addrs) {
        size_t i = p->addr_next++;
        memcpy(&p->addr, &p->addrs.addrs[i], p->addrs.addr_lens[i]);
        p->addr_len = p->addrs.addr_lens[i];
        if (p->addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&p->addr)->sin_port = htons(p->spec.port);
        else
            ((struct sockaddr_in6 *)&p->addr)->sin6_port = htons(p->spec.port);
        dns_format_addr((struct sockaddr *)&p->addr, p->res->address, sizeof p->res->address);
        p->phase = PH_CONNECT;
        int rc = open_socket(p);
        if (rc == 1) {
            connected(p);
            return;
        }
        if (rc == 0) {
            watch(p, EV_WRITE);
            return;
        }
        last_err = -rc;
        note_connect_error(p, last_err);
    }
    connect_failed_all(p, last_err);
}

static void on_connect_ready(struct probe *p)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == 0) {
        ev_io_stop(p->loop, &p->io);
        connected(p);
        return;
    }
    close_conn(p);
    note_connect_error(p, err);
    if (p->addr_next < p->addrs.n_addrs) {
        start_connect(p);
        return;
    }
    connect_failed_all(p, err);
}

/* ---- DNS -------------------------------------------------------------------------------- */

static void on_resolved(const struct dns_result *result, void *arg)
{
    struct probe *p = arg;
    p->query = NULL;
    p->res->ms_dns = since_ms(p->t_step);
    if (result->status != DNS_OK) {
        add_finding(p, DIAG_DNS_RESOLUTION_FAILED,
                    diag_fmt("The backend name '%s' could not be resolved: %s.", p->spec.host,
                             result->error),
                    diag_fmt("Check the spelling of the backend address and that the gateway's "
                             "DNS servers can resolve it (private zones and custom DNS "
                             "included)."));
        finish_main(p);
        return;
    }
    p->addrs = *result;
    p->addr_next = 0;
    p->t_step = clock_mono_ns();
    start_connect(p);
}

/* ---- the SNI second look -------------------------------------------------------------- */

static void add_alt(struct probe *p, const char *name)
{
    const char *sent = p->res->sni;
    if (p->n_alts >= PROBE_MAX_ALTS)
        return;
    if ((name == NULL && sent == NULL) || (name && sent && strcasecmp(name, sent) == 0))
        return;
    if (name && name_is_ip_literal(name))
        return;
    for (size_t i = 0; i < p->n_alts; i++) {
        const char *have = p->alt_names[i];
        if ((have == NULL && name == NULL) || (have && name && strcasecmp(have, name) == 0))
            return;
    }
    p->alt_names[p->n_alts++] = name;
}

static bool has_certificate_problem(const struct probe_result *r)
{
    for (size_t i = 0; i < r->findings.n; i++)
        if (diag_code_is_certificate(r->findings.items[i].code))
            return true;
    return false;
}

static void append_alt_remedy(struct probe *p)
{
    struct probe_result *r = p->res;
    struct probe_alternate *a = &r->alternate;
    struct finding *target = NULL;
    for (size_t i = 0; i < r->findings.n && !target; i++)
        if (diag_code_is_certificate(r->findings.items[i].code))
            target = &r->findings.items[i];
    if (!target)
        return;
    char *extra;
    const char *cli = p->spec.cli ? " (--host)" : "";
    if (a->sni && a->would_pass)
        extra = diag_fmt(" Second look: when the SNI '%s' is sent, the server returns a "
                         "different certificate, '%s', which would pass. The backend answers "
                         "with a default certificate when %s; set the host name in the backend "
                         "settings%s to '%s' (or use that FQDN as the pool member) so the "
                         "gateway sends it.",
                         a->sni, a->subject, r->sni ? "another name is sent" : "no SNI is sent",
                         cli, a->sni);
    else if (a->sni)
        extra = diag_fmt(" Second look: with the SNI '%s' the server returns another "
                         "certificate, '%s', which would also fail (%s).",
                         a->sni, a->subject, diag_code_name(a->code));
    else if (a->would_pass)
        extra = diag_fmt(" Second look: without SNI the server returns '%s', which would pass; "
                         "the certificate the backend binds to '%s' is the one to fix.",
                         a->subject, r->sni);
    else
        extra = diag_fmt(" Second look: without SNI the server returns another certificate, "
                         "'%s', which would also fail (%s).",
                         a->subject, diag_code_name(a->code));
    if (!extra)
        return;
    char *joined = diag_fmt("%s%s", target->remedy, extra);
    free(extra);
    if (joined) {
        free(target->remedy);
        target->remedy = joined;
    }
}

static void alt_judge(struct probe *p)
{
    const char *name = p->alt_names[p->alt_next - 1];
    STACK_OF(X509) *sent = SSL_get_peer_cert_chain(p->ssl);
    if (!sent || sk_X509_num(sent) == 0)
        return;
    char sha[CERT_SHA256_HEX_LEN + 1];
    struct chain_report rep;
    const struct probe_spec *s = &p->spec;
    /* As if the backend settings named this host: it becomes the name checked too. In
     * allow-list mode an IP-addressed backend without a host name gets no name check. */
    const char *check = name ? name : s->check_name;
    if (chain_analyze(sent, s->trust, check, clock_wall_now(), &rep) != 0)
        return;
    memcpy(sha, rep.certs[rep.leaf].info.sha256, sizeof sha);
    if (strcmp(sha, p->main_leaf_sha) == 0) {
        chain_report_clear(&rep);
        return;
    }
    struct finding_list fl = {0};
    struct explain_context ctx = {.name_source = name ? "the alternate SNI" : s->name_source,
                                  .cli = s->cli,
                                  .now = clock_wall_now()};
    explain_chain(&rep, s->trust, &ctx, &fl);
    struct probe_alternate *a = &p->res->alternate;
    a->present = true;
    a->sni = name ? strdup(name) : NULL;
    a->subject = strdup(rep.certs[rep.leaf].info.subject);
    a->issuer = strdup(rep.certs[rep.leaf].info.issuer);
    a->names = explain_cert_names(&rep.certs[rep.leaf].info);
    a->not_before = rep.certs[rep.leaf].info.not_before;
    a->not_after = rep.certs[rep.leaf].info.not_after;
    memcpy(a->sha256, sha, sizeof a->sha256);
    a->would_pass = fl.n == 0;
    a->code = finding_list_code(&fl);
    finding_list_clear(&fl);
    chain_report_clear(&rep);
}

static void alt_finish_one(struct probe *p)
{
    close_conn(p);
    if (p->res->alternate.present) {
        append_alt_remedy(p);
        complete(p);
        return;
    }
    alt_next(p);
}

static void alt_tls_step(struct probe *p)
{
    int err = 0;
    int rc = step_tls(p, &err);
    if (rc == 0)
        return;
    if (rc == 1)
        alt_judge(p);
    alt_finish_one(p);
}

static void alt_next(struct probe *p)
{
    if (p->alt_next >= p->n_alts) {
        complete(p);
        return;
    }
    const char *name = p->alt_names[p->alt_next++];
    p->phase = PH_ALT_CONNECT;
    arm_deadline(p);
    int rc = open_socket(p);
    if (rc < 0) {
        alt_next(p);
        return;
    }
    if (start_tls(p, name) != 0) {
        alt_finish_one(p);
        return;
    }
    if (rc == 0) {
        watch(p, EV_WRITE);
        return;
    }
    p->phase = PH_ALT_TLS;
    alt_tls_step(p);
}

/* Parks a healthy, fully read connection for the next probe (keep-alive). */
static void keep_connection(struct probe *p)
{
    struct probe_result *r = p->res;
    if (!p->spec.keep || p->fd < 0 || !r->http_done || !p->body_complete ||
        !p->response.keep_alive || r->findings.n > 0 || p->ssl_failed)
        return;
    struct probe_conn *k = calloc(1, sizeof *k);
    if (!k)
        return;
    ev_io_stop(p->loop, &p->io);
    k->fd = p->fd;
    k->ssl = p->ssl;
    k->since_ns = p->conn_since_ns;
    snprintf(k->address, sizeof k->address, "%s", r->address);
    p->fd = -1;
    p->ssl = NULL;
    probe_conn_free(*p->spec.keep);
    *p->spec.keep = k;
}

static void finish_main(struct probe *p)
{
    keep_connection(p);
    close_conn(p);
    struct probe_result *r = p->res;
    const struct probe_spec *s = &p->spec;
    if (!s->second_look || !s->https || !r->have_chain || !has_certificate_problem(r)) {
        complete(p);
        return;
    }
    /* The other plausible names: none if one was sent, the host name if none was, and the
     * names of allow-listed certificates. */
    if (r->sni)
        add_alt(p, NULL);
    else if (s->check_name && !name_is_ip_literal(s->check_name))
        add_alt(p, s->check_name);
    if (!is_ip_addressed(s))
        add_alt(p, s->host);
    for (size_t i = 0; i < s->n_alt_names; i++)
        add_alt(p, s->alt_names[i]);
    alt_next(p);
}

/* ---- events ----------------------------------------------------------------------------- */

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct probe *p = w->data;
    switch (p->phase) {
    case PH_CONNECT:
        on_connect_ready(p);
        break;
    case PH_TLS: {
        int err = 0;
        int rc = step_tls(p, &err);
        if (rc == 1) {
            on_tls_ready(p);
        } else if (rc < 0) {
            p->res->ms_tls = since_ms(p->t_step);
            tls_failure(p, err, "during the handshake");
            finish_main(p);
        }
        break;
    }
    case PH_HTTP_WRITE:
        http_write(p);
        break;
    case PH_HTTP_READ:
        http_read(p);
        break;
    case PH_ALT_CONNECT: {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            alt_finish_one(p);
            break;
        }
        p->phase = PH_ALT_TLS;
        alt_tls_step(p);
        break;
    }
    case PH_ALT_TLS:
        alt_tls_step(p);
        break;
    default:
        ev_io_stop(p->loop, &p->io);
        break;
    }
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct probe *p = w->data;
    double t = p->spec.timeout_s;
    switch (p->phase) {
    case PH_RESOLVE:
        dns_query_cancel(p->query);
        p->query = NULL;
        p->res->ms_dns = since_ms(p->t_step);
        add_finding(
                p, DIAG_DNS_RESOLUTION_FAILED,
                diag_fmt("Resolving '%s' took longer than the %.3g s timeout.", p->spec.host, t),
                diag_fmt("Check that the gateway's DNS servers are reachable and answer for "
                         "this name."));
        finish_main(p);
        break;
    case PH_CONNECT:
        p->res->ms_connect = since_ms(p->t_step);
        add_finding(p, DIAG_CONNECTION_TIMEOUT,
                    diag_fmt("Connecting to %s did not complete within %.3g s (no answer to the "
                             "TCP handshake).",
                             p->res->address, t),
                    diag_fmt("Check that the backend is up and that no firewall, security group "
                             "or route silently drops traffic from the gateway to port %u.",
                             p->spec.port));
        finish_main(p);
        break;
    case PH_TLS:
        p->res->ms_tls = since_ms(p->t_step);
        add_finding(p, DIAG_RESPONSE_TIMEOUT,
                    diag_fmt("Connected to %s, but the server did not complete the TLS handshake "
                             "within %.3g s%s.",
                             p->res->address, t, p->n_first ? "" : " (it sent nothing at all)"),
                    diag_fmt("The backend accepts connections but does not answer: check that "
                             "the service is not hung or overloaded, and that this port serves "
                             "TLS."));
        finish_main(p);
        break;
    case PH_HTTP_WRITE:
    case PH_HTTP_READ:
        p->res->ms_response = since_ms(p->t_step);
        add_finding(
                p, DIAG_RESPONSE_TIMEOUT,
                p->head_done
                        ? diag_fmt("The response to GET %s started (status %d) but was not "
                                   "complete within %.3g s.",
                                   p->spec.path, p->res->http_status, t)
                        : diag_fmt("No HTTP response to GET %s within %.3g s.", p->spec.path, t),
                diag_fmt("Find what makes the backend slow, or raise the probe timeout "
                         "above its response time%s.",
                         p->spec.cli ? " (--timeout)" : ""));
        finish_main(p);
        break;
    case PH_ALT_CONNECT:
    case PH_ALT_TLS:
        alt_finish_one(p);
        break;
    case PH_DONE:
        complete(p); /* the deferred end of a probe that finished while starting */
        break;
    }
}

/* ---- public ----------------------------------------------------------------------------- */

/* Resolves (unless the address is known) and connects: the start of every fresh probe. */
static void begin(struct probe *p)
{
    struct probe_result *r = p->res;
    if (p->spec.addr) {
        r->ms_dns = 0;
        memcpy(&p->addrs.addrs[0], p->spec.addr, p->spec.addr_len);
        p->addrs.addr_lens[0] = p->spec.addr_len;
        p->addrs.n_addrs = 1;
        start_connect(p);
    } else if (name_is_ip_literal(p->spec.host)) {
        r->ms_dns = 0;
        struct sockaddr_in *in = (struct sockaddr_in *)&p->addrs.addrs[0];
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p->addrs.addrs[0];
        if (inet_pton(AF_INET, p->spec.host, &in->sin_addr) == 1) {
            in->sin_family = AF_INET;
            p->addrs.addr_lens[0] = sizeof *in;
        } else {
            inet_pton(AF_INET6, p->spec.host, &in6->sin6_addr);
            in6->sin6_family = AF_INET6;
            p->addrs.addr_lens[0] = sizeof *in6;
        }
        p->addrs.n_addrs = 1;
        start_connect(p);
    } else {
        p->phase = PH_RESOLVE;
        p->query = dns_resolve(p->dns, p->spec.host, on_resolved, p);
        if (!p->query) {
            add_finding(p, DIAG_DNS_RESOLUTION_FAILED, diag_fmt("out of memory"),
                        diag_fmt("retry"));
            finish_main(p);
        }
    }
}

/* Continues on a connection kept alive by an earlier probe of this backend. */
static void adopt(struct probe *p, struct probe_conn *k)
{
    struct probe_result *r = p->res;
    p->fd = k->fd;
    p->ssl = k->ssl;
    p->reusing = true;
    p->conn_since_ns = k->since_ns;
    snprintf(r->address, sizeof r->address, "%s", k->address);
    free(k);
    r->ms_dns = r->ms_connect = r->ms_tls = 0;
    r->reused_connection = true;
    p->t_step = clock_mono_ns();
    if (p->ssl) {
        /* The callbacks' argument is the probe: now this one. */
        SSL_set_app_data(p->ssl, p);
        BIO_set_callback_arg(SSL_get_rbio(p->ssl), (char *)p);
        p->phase = PH_TLS;
        record_tls(p);
        judge_chain(p);
    }
    start_http(p);
}

/*
 * The kept-alive connection was closed by the backend before it answered: nothing is wrong
 * with the backend, so start over on a fresh connection.
 */
static void restart_fresh(struct probe *p)
{
    struct probe_result *r = p->res;
    p->ssl_failed = true; /* no polite shutdown on a dead connection */
    close_conn(p);
    p->ssl_failed = false;
    p->reusing = false;
    r->reused_connection = false;
    finding_list_clear(&r->findings);
    if (r->have_chain) {
        chain_report_clear(&r->chain);
        r->have_chain = false;
    }
    r->tls_done = false;
    r->ms_dns = r->ms_connect = r->ms_tls = r->ms_response = -1;
    free(p->request);
    p->request = NULL;
    p->len = 0;
    p->head_done = false;
    p->body_seen = 0;
    p->body_len = 0;
    r->http_bytes = 0;
    r->http_status = 0;
    p->addr_next = 0;
    p->t_step = clock_mono_ns();
    begin(p);
}

struct probe *probe_start(struct ev_loop *loop, struct dns_resolver *dns,
                          const struct probe_spec *spec, probe_done_fn done, void *arg)
{
    struct probe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->res = calloc(1, sizeof *p->res);
    if (!p->res) {
        free(p);
        return NULL;
    }
    p->loop = loop;
    p->dns = dns;
    p->spec = *spec;
    p->done = done;
    p->arg = arg;
    p->fd = -1;
    struct probe_result *r = p->res;
    r->ms_dns = r->ms_connect = r->ms_tls = r->ms_response = -1;
    if (spec->https && spec->sni)
        r->sni = strdup(spec->sni);
    ev_init(&p->io, on_io);
    p->io.data = p;
    ev_init(&p->timer, on_deadline);
    p->timer.data = p;
    p->t_start = p->t_step = clock_mono_ns();
    arm_deadline(p);

    p->starting = true;
    if (spec->keep && *spec->keep) {
        struct probe_conn *k = *spec->keep;
        *spec->keep = NULL;
        if (clock_ms_between(k->since_ns, clock_mono_ns()) / 1000.0 < spec->keep_max_age_s) {
            adopt(p, k);
            p->starting = false;
            return p;
        }
        probe_conn_free(k);
    }
    begin(p);
    p->starting = false;
    return p;
}

void probe_cancel(struct probe *p)
{
    if (!p)
        return;
    if (p->res) {
        probe_result_free(p->res);
        p->res = NULL;
    }
    free_probe(p);
}

void probe_result_free(struct probe_result *r)
{
    if (!r)
        return;
    free(r->sni);
    if (r->have_chain)
        chain_report_clear(&r->chain);
    finding_list_clear(&r->findings);
    free(r->alternate.sni);
    free(r->alternate.subject);
    free(r->alternate.issuer);
    free(r->alternate.names);
    free(r);
}

void probe_conn_free(struct probe_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}
