/*
 * probe: the diagnosis engine. One probe = resolve -> connect -> TLS handshake -> judge the chain
 * as sent -> HTTP request -> verdict, every step timed and bounded, on a libev loop (it never
 * blocks). On a certificate problem it takes a second look with the other plausible SNI. The
 * gateway's prober, its data-path verdicts and `gatehouse probe` all use this one engine.
 */
#ifndef GATEHOUSE_DIAGNOSE_PROBE_H
#define GATEHOUSE_DIAGNOSE_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/ssl.h>

#include "diagnose/finding.h"
#include "diagnose/status_match.h"
#include "tls/chain_analysis.h"
#include "tls/trust.h"

struct ev_loop;
struct dns_resolver;

/*
 * A probe connection kept alive for the next probe of the same backend (HTTP keep-alive): the
 * prober's way of not paying a TCP and TLS handshake on every probe. Its age is bounded, so a
 * fresh connection -- and the chain as the backend really sends it now -- comes regularly.
 */
struct probe_conn {
    int fd;
    SSL *ssl;
    char address[80];
    uint64_t since_ns; /* when it was established */
};

void probe_conn_free(struct probe_conn *c);

/* What to probe and how to judge it. Everything it points to must outlive the probe. */
struct probe_spec {
    const char *url; /* for display */
    bool https;
    const char *host; /* DNS name or IP literal (no brackets) */
    uint16_t port;
    const char *path;        /* request-target, e.g. "/health" */
    const char *sni;         /* NULL: send no SNI */
    const char *host_header; /* Host header value */
    const char *check_name;  /* NULL: no name check */
    const char *name_source; /* where check_name came from, for messages */
    struct trust_policy *trust;
    SSL_CTX *ssl_ctx;
    const struct status_match *match_status;
    const char *match_body; /* NULL: any body */
    double timeout_s;
    /* The SNI second look: extra names to try (e.g. the names of allow-listed certificates). */
    const char *const *alt_names;
    size_t n_alt_names;
    bool second_look;
    /* Optional: connect here instead of resolving host. */
    const struct sockaddr *addr;
    socklen_t addr_len;
    int expiry_warning_days;
    bool cli; /* phrase remedies with command-line options too */
    const char *user_agent;
    /* Keep-alive between probes: where the connection waits (NULL: close after each probe),
     * and how old a kept connection may be to be used again. */
    struct probe_conn **keep;
    double keep_max_age_s;
};

struct probe_alternate {
    bool present;
    char *sni; /* NULL: no SNI */
    char *subject;
    char *issuer;
    char *names; /* the names it covers, as explain_cert_names() words them */
    time_t not_before, not_after;
    char sha256[CERT_SHA256_HEX_LEN + 1];
    bool would_pass;
    enum diag_code code;
};

struct probe_result {
    char address[80]; /* the address connected to (or last tried) */
    char *sni;        /* the SNI sent, NULL for none */
    bool have_chain;
    struct chain_report chain;
    bool tls_done;
    char tls_version[32];
    char tls_cipher[96];
    char tls_alpn[32];
    bool http_done;
    int http_status;
    uint64_t http_bytes;
    /* milliseconds for each step; -1 when the step was not reached */
    double ms_dns, ms_connect, ms_tls, ms_response, ms_total;
    struct finding_list findings; /* sorted by precedence */
    enum diag_code code;
    struct probe_alternate alternate;
    bool reused_connection; /* sent on a kept-alive connection (no new handshake) */
};

typedef void (*probe_done_fn)(struct probe_result *result, void *arg);

struct probe;

/*
 * Starts a probe. <done> runs from the loop once, with a result the callee owns (free it with
 * probe_result_free). Returns NULL only when out of memory.
 */
struct probe *probe_start(struct ev_loop *loop, struct dns_resolver *dns,
                          const struct probe_spec *spec, probe_done_fn done, void *arg);

/* Stops a probe that has not finished; its callback will not run. */
void probe_cancel(struct probe *probe);

void probe_result_free(struct probe_result *result);

/* Healthy when no finding. */
static inline bool probe_result_healthy(const struct probe_result *r)
{
    return r->findings.n == 0;
}

#endif
