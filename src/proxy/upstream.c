/*
 * upstream: backend connections for one worker -- reuse of idle keep-alive connections, DNS for
 * FQDN members (last known good on failure), non-blocking connect, TLS with the SNI the backend
 * settings call for, and the certificate verdict from the diagnosis engine, the same code
 * `gatehouse probe` runs. Only sessions from verified handshakes are kept for resumption.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/clock.h"
#include "diagnose/explain.h"
#include "proxy/proxy_internal.h"
#include "tls/chain_analysis.h"

static int session_ex_index = -1;

static void on_io(struct ev_loop *loop, ev_io *io, int revents);

static void free_upstream(struct upstream *up)
{
    struct worker *w = up->w;
    if (up->query)
        dns_query_cancel(up->query);
    ev_timer_stop(w->loop, &up->idle_timer);
    sock_close(w->loop, &up->s);
    SSL_SESSION_free(up->pending_session);
    free(up);
}

static void keep_session(struct upstream *up, SSL_SESSION *sess)
{
    struct worker *w = up->w;
    size_t i = up->backend->index;
    SSL_SESSION_free(w->sessions[i]);
    w->sessions[i] = sess;
    /* Keyed by the SNI we sent: servers that do not acknowledge SNI leave it out of the
     * session, and a session must only be offered for the name it was made for. */
    free(w->session_sni[i]);
    w->session_sni[i] = strdup(up->sni);
}

/* OpenSSL hands us each new session (TLS 1.3: tickets after the handshake). */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct upstream *up = SSL_get_ex_data(ssl, session_ex_index);
    if (!up)
        return 0;
    if (up->verified) {
        keep_session(up, sess);
    } else {
        SSL_SESSION_free(up->pending_session);
        up->pending_session = sess;
    }
    return 1; /* we took the reference */
}

void upstream_worker_init(struct worker *w)
{
    if (session_ex_index < 0)
        session_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    for (size_t i = 0; i < w->rt->n_settings; i++) {
        SSL_CTX *ctx = w->rt->settings[i].client_ctx;
        if (ctx)
            SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    }
}

void upstream_worker_free(struct worker *w)
{
    for (size_t i = 0; i < w->rt->n_backends; i++) {
        while (w->idle[i]) {
            struct upstream *up = w->idle[i];
            w->idle[i] = up->next_idle;
            free_upstream(up);
        }
        SSL_SESSION_free(w->sessions[i]);
        w->sessions[i] = NULL;
        free(w->session_sni[i]);
        w->session_sni[i] = NULL;
    }
}

void upstream_watch(struct upstream *up, bool want_read, bool want_write)
{
    sock_watch(up->w->loop, &up->s, want_read, want_write);
}

static void fail(struct upstream *up, enum diag_code code, const char *phase,
                 const char *error_info, const char *detail)
{
    struct exchange *x = up->x;
    up->x = NULL;
    free_upstream(up);
    if (x)
        exchange_upstream_failed(x, code, phase, error_info, detail);
}

static void mark_down(struct upstream *up)
{
    atomic_store_explicit(&up->backend->down_until_ms, worker_now_ms(up->w) + PROXY_DOWN_MS,
                          memory_order_relaxed);
    /* A failed connection counts as a probe-failure signal: the prober looks again now. */
    atomic_store_explicit(&up->backend->probe_soon, true, memory_order_relaxed);
}

/* ---- certificate verdict --------------------------------------------------------------- */

static bool verify_chain(struct upstream *up, char *detail, size_t size, enum diag_code *code)
{
    const struct rt_settings *settings = up->backend->settings;
    struct rt_backend_names names;
    char host[256];
    runtime_backend_names(up->backend,
                          exchange_host_only(up->x->host ? up->x->host : "", host, sizeof host),
                          &names);
    struct chain_report report;
    STACK_OF(X509) *sent = SSL_get_peer_cert_chain(up->s.ssl);
    /* The trust policy is shared read-only; the system store is loaded at start-up. */
    if (chain_analyze(sent, (struct trust_policy *)&settings->trust, names.check_name,
                      clock_wall_now(), &report) != 0) {
        snprintf(detail, size, "out of memory while checking the certificate");
        *code = DIAG_TLS_HANDSHAKE_FAILED;
        return false;
    }
    struct finding_list findings = {0};
    struct explain_context ctx = {.name_source = names.name_source,
                                  .addressed_by_ip = up->backend->host_is_ip,
                                  .now = clock_wall_now()};
    explain_chain(&report, &settings->trust, &ctx, &findings);
    bool ok = findings.n == 0;
    if (!ok) {
        finding_list_sort(&findings);
        *code = findings.items[0].code;
        snprintf(detail, size, "%s", findings.items[0].message);
    }
    finding_list_clear(&findings);
    chain_report_clear(&report);
    return ok;
}

/* ---- TLS ------------------------------------------------------------------------------- */

static void tls_step(struct upstream *up)
{
    ERR_clear_error();
    int rc = SSL_connect(up->s.ssl);
    if (rc != 1) {
        int err = SSL_get_error(up->s.ssl, rc);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            up->s.read_waits = err == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
            sock_watch(up->w->loop, &up->s, true, false);
            return;
        }
        char detail[640];
        unsigned long e = ERR_peek_last_error();
        snprintf(detail, sizeof detail, "TLS handshake with %s failed: %s", up->backend->label,
                 e ? ERR_reason_error_string(e) : "the connection was closed");
        ERR_clear_error();
        fail(up, DIAG_TLS_HANDSHAKE_FAILED, "tls", "ERRORINFO_UPSTREAM_TLS", detail);
        return;
    }
    if (SSL_session_reused(up->s.ssl)) {
        up->verified = true; /* only verified sessions are ever offered */
    } else {
        char detail[512];
        enum diag_code code;
        if (!verify_chain(up, detail, sizeof detail, &code)) {
            /* Never reuse the session of a rejected certificate. */
            SSL_SESSION_free(up->pending_session);
            up->pending_session = NULL;
            fail(up, code, "certificate", "ERRORINFO_UPSTREAM_CERTIFICATE", detail);
            return;
        }
        up->verified = true;
    }
    if (up->pending_session) {
        keep_session(up, up->pending_session);
        up->pending_session = NULL;
    }
    up->state = UP_READY;
    struct exchange *x = up->x;
    exchange_upstream_ready(x, up);
}

static void start_tls(struct upstream *up)
{
    const struct rt_settings *settings = up->backend->settings;
    SSL *ssl = SSL_new(settings->client_ctx);
    if (!ssl || SSL_set_fd(ssl, up->s.fd) != 1) {
        SSL_free(ssl);
        fail(up, DIAG_TLS_HANDSHAKE_FAILED, "tls", "ERRORINFO_UPSTREAM_TLS", "out of memory");
        return;
    }
    up->s.ssl = ssl;
    SSL_set_ex_data(ssl, session_ex_index, up);
    if (up->sni[0])
        SSL_set_tlsext_host_name(ssl, up->sni);
    SSL_SESSION *cached = up->w->sessions[up->backend->index];
    const char *cached_sni = up->w->session_sni[up->backend->index];
    if (cached && cached_sni && strcasecmp(cached_sni, up->sni) == 0)
        SSL_set_session(ssl, cached);
    up->state = UP_TLS;
    tls_step(up);
}

/* ---- connect --------------------------------------------------------------------------- */

static void connected(struct upstream *up)
{
    int one = 1;
    setsockopt(up->s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (up->backend->settings->cfg->protocol == CFG_PROTO_HTTPS) {
        start_tls(up);
        return;
    }
    up->verified = true;
    up->state = UP_READY;
    exchange_upstream_ready(up->x, up);
}

static void connect_failed(struct upstream *up, int err)
{
    char detail[640];
    snprintf(detail, sizeof detail, "connecting to %s failed: %s", up->backend->label,
             strerror(err));
    mark_down(up);
    fail(up, err == ETIMEDOUT ? DIAG_CONNECTION_TIMEOUT : DIAG_CONNECTION_REFUSED, "connect",
         "ERRORINFO_UPSTREAM_NO_LIVE", detail);
}

static void start_connect(struct upstream *up)
{
    struct rt_backend *b = up->backend;
    if (up->addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&up->addr)->sin_port = htons(b->port);
    else
        ((struct sockaddr_in6 *)&up->addr)->sin6_port = htons(b->port);
    int fd = socket(up->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed(up, errno);
        return;
    }
    sock_init(&up->s, fd, on_io, up);
    up->state = UP_CONNECTING;
    metrics_add(&up->w->metrics.upstream_connections, 1);
    if (connect(fd, (struct sockaddr *)&up->addr, up->addr_len) == 0) {
        connected(up);
        return;
    }
    if (errno != EINPROGRESS) {
        connect_failed(up, errno);
        return;
    }
    up->s.write_waits = EV_WRITE;
    sock_watch(up->w->loop, &up->s, false, true);
}

static void on_resolved(const struct dns_result *res, void *arg)
{
    struct upstream *up = arg;
    up->query = NULL;
    struct addr_cache *ac = &up->w->addrs[up->backend->index];
    if (res->status == DNS_OK) {
        memcpy(&ac->addr, &res->addrs[0], res->addr_lens[0]);
        ac->addr_len = res->addr_lens[0];
        ac->valid = true;
        uint64_t ttl_ms = (uint64_t)(res->ttl > 0 ? res->ttl : 30) * 1000;
        ac->expires_ms = worker_now_ms(up->w) + ttl_ms;
    } else if (ac->valid) {
        /* Keep the last known good address (as the modelled gateway does), and ask again
         * in a few seconds rather than on every request. */
        ac->expires_ms = worker_now_ms(up->w) + 5000;
    }
    if (!ac->valid) {
        char detail[640];
        snprintf(detail, sizeof detail, "the backend name '%s' could not be resolved: %s",
                 up->backend->host, res->error ? res->error : "no address");
        fail(up, DIAG_DNS_RESOLUTION_FAILED, "dns", "ERRORINFO_UPSTREAM_NO_LIVE", detail);
        return;
    }
    memcpy(&up->addr, &ac->addr, ac->addr_len);
    up->addr_len = ac->addr_len;
    start_connect(up);
}

static bool literal_address(struct upstream *up)
{
    struct rt_backend *b = up->backend;
    struct sockaddr_in *in = (struct sockaddr_in *)&up->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&up->addr;
    memset(&up->addr, 0, sizeof up->addr);
    if (inet_pton(AF_INET, b->host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        up->addr_len = sizeof *in;
        return true;
    }
    if (inet_pton(AF_INET6, b->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        up->addr_len = sizeof *in6;
        return true;
    }
    return false;
}

/* ---- the pool -------------------------------------------------------------------------- */

static void unlink_idle(struct upstream *up)
{
    struct worker *w = up->w;
    size_t i = up->backend->index;
    for (struct upstream **pp = &w->idle[i]; *pp; pp = &(*pp)->next_idle) {
        if (*pp == up) {
            *pp = up->next_idle;
            w->n_idle[i]--;
            break;
        }
    }
    up->next_idle = NULL;
    ev_timer_stop(w->loop, &up->idle_timer);
}

static void on_idle_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct upstream *up = t->data;
    unlink_idle(up);
    free_upstream(up);
}

static void on_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct upstream *up = io->data;
    switch (up->state) {
    case UP_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(up->s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        sock_watch(up->w->loop, &up->s, false, false);
        if (err)
            connect_failed(up, err);
        else
            connected(up);
        break;
    }
    case UP_TLS:
        tls_step(up);
        break;
    case UP_READY:
        exchange_upstream_event(up->x, revents);
        break;
    case UP_IDLE:
        /* An idle connection that becomes readable was closed by the backend (or sent junk):
         * either way it cannot carry another request. */
        unlink_idle(up);
        free_upstream(up);
        break;
    case UP_RESOLVING:
        break;
    }
}

void upstream_release(struct upstream *up, bool reusable)
{
    struct worker *w = up->w;
    size_t i = up->backend->index;
    up->x = NULL;
    if (!reusable || w->draining || w->n_idle[i] >= PROXY_IDLE_PER_KEY) {
        free_upstream(up);
        return;
    }
    up->state = UP_IDLE;
    up->reused = true;
    up->next_idle = w->idle[i];
    w->idle[i] = up;
    w->n_idle[i]++;
    up->s.read_waits = EV_READ;
    sock_watch(w->loop, &up->s, true, false);
    ev_timer_set(&up->idle_timer, PROXY_IDLE_TIMEOUT, 0.);
    ev_timer_start(w->loop, &up->idle_timer);
}

void upstream_acquire(struct exchange *x, struct rt_backend *b, bool fresh)
{
    struct worker *w = x->c->w;
    struct rt_backend_names names;
    char host[256];
    runtime_backend_names(b, exchange_host_only(x->host ? x->host : "", host, sizeof host), &names);
    const char *sni = b->settings->cfg->protocol == CFG_PROTO_HTTPS && names.sni ? names.sni : "";
    if (!fresh) {
        for (struct upstream **pp = &w->idle[b->index]; *pp; pp = &(*pp)->next_idle) {
            struct upstream *up = *pp;
            if (strcasecmp(up->sni, sni) != 0)
                continue;
            unlink_idle(up);
            up->x = x;
            up->state = UP_READY;
            sock_watch(w->loop, &up->s, false, false);
            exchange_upstream_ready(x, up);
            return;
        }
    }
    struct upstream *up = calloc(1, sizeof *up);
    if (!up) {
        exchange_upstream_failed(x, DIAG_CONNECTION_REFUSED, "connect",
                                 "ERRORINFO_UPSTREAM_NO_LIVE", "out of memory");
        return;
    }
    up->w = w;
    up->backend = b;
    up->x = x;
    up->s.fd = -1;
    snprintf(up->sni, sizeof up->sni, "%s", sni);
    ev_init(&up->idle_timer, on_idle_timeout);
    up->idle_timer.data = up;
    if (literal_address(up)) {
        start_connect(up);
        return;
    }
    struct addr_cache *ac = &w->addrs[b->index];
    if (ac->valid && worker_now_ms(w) < ac->expires_ms) {
        memcpy(&up->addr, &ac->addr, ac->addr_len);
        up->addr_len = ac->addr_len;
        start_connect(up);
        return;
    }
    up->state = UP_RESOLVING;
    up->query = dns_resolve(w->dns, b->host, on_resolved, up);
    if (!up->query)
        fail(up, DIAG_DNS_RESOLUTION_FAILED, "dns", "ERRORINFO_UPSTREAM_NO_LIVE", "out of memory");
}
