/*
 * Private to src/proxy: the objects of one worker's data path.
 *
 *   worker ── client (one accepted connection, HTTP/1.1 front end)
 *                └─ exchange (one request: route, rewrite, forward, relay, log)
 *                      └─ upstream (one backend connection; idle ones wait in the worker's pool)
 *
 * Everything here belongs to one worker thread and is touched by no other.
 */
#ifndef GATEHOUSE_PROXY_INTERNAL_H
#define GATEHOUSE_PROXY_INTERNAL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/dns.h"
#include "diagnose/finding.h"
#include "http/h1.h"
#include "proxy/access_log.h"
#include "proxy/metrics.h"
#include "proxy/runtime.h"
#include "proxy/sock.h"

#define PROXY_IO_BUF       (64 * 1024) /* per direction: the back-pressure bound */
#define PROXY_HEAD_MAX     (64 * 1024) /* largest response head from a backend */
#define PROXY_IDLE_PER_KEY 256         /* idle upstream connections kept per backend */
#define PROXY_IDLE_TIMEOUT 60.0        /* seconds an idle upstream connection is kept */
#define PROXY_DOWN_MS      5000        /* a backend refusing connections is skipped this long */

struct worker;
struct client;
struct exchange;

enum upstream_state { UP_RESOLVING, UP_CONNECTING, UP_TLS, UP_READY, UP_IDLE };

struct upstream {
    struct worker *w;
    struct rt_backend *backend;
    struct sock s;
    enum upstream_state state;
    struct exchange *x; /* owner while not idle */
    struct upstream *next_idle;
    ev_timer idle_timer;
    bool reused;   /* served a request before */
    bool verified; /* the certificate passed the diagnosis (or the session was resumed) */
    char sni[256]; /* "" = none */
    SSL_SESSION *pending_session; /* a ticket received before verification finished */
    struct dns_query *query;
    struct sockaddr_storage addr;
    socklen_t addr_len;
};

/* A worker's cached addresses of one FQDN backend (last known good on failure). */
struct addr_cache {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    bool valid;
    uint64_t expires_ms;
};

struct worker {
    int id;
    pthread_t thread;
    struct ev_loop *loop;
    const struct runtime *rt;
    struct dns_resolver *dns;
    struct access_log *log;
    int *listen_fds; /* one per rt port */
    ev_io *accept_io;
    ev_async stop;
    bool draining;
    size_t n_clients;
    struct client *clients; /* all live clients, for draining */
    struct client *dead;    /* closed clients, freed from an ev_check watcher */
    ev_check reaper;
    struct upstream **idle; /* per backend index: a stack of idle connections */
    size_t *n_idle;
    unsigned *rr;             /* per target: the next backend to try */
    SSL_SESSION **sessions;   /* per backend: the last verified session... */
    char **session_sni;       /* ...and the SNI it was made with ("" = none) */
    struct addr_cache *addrs; /* per backend */
    struct worker_metrics metrics;
    struct request_ring ring;
};

enum client_state { CS_TLS, CS_HEAD, CS_EXCHANGE, CS_CLOSING };

struct client {
    struct worker *w;
    const struct rt_port *port;
    struct sock s;
    ev_timer timer;
    enum client_state state;
    struct buf in;
    struct buf out;
    char ip[64];
    unsigned port_num;
    bool close_after; /* close once out is flushed */
    bool peer_eof;
    struct exchange *x;
    unsigned requests;
    char tls_version[16];
    uint64_t t_first_byte; /* of the request being read */
    struct client *prev, *next;
    bool closed; /* freed by the worker's reaper, after the callback returns */
    struct client *next_dead;
};

struct exchange {
    struct client *c;
    char id[33];
    const struct rt_listener *listener;
    const struct rt_target *target;
    struct rt_backend *backend;
    struct upstream *up;
    /* the request, as the log needs it */
    char *method, *path, *host;
    int minor;
    bool keep_alive;
    bool is_head;
    bool idempotent;
    bool expect_continue;
    uint64_t bytes_in, bytes_out;
    /* request body from the client */
    enum h1_body req_body;
    uint64_t req_left;
    struct h1_chunked req_chunked;
    uint64_t req_body_bytes; /* decoded chunked body so far, for the body size limit */
    bool req_done;
    bool body_sent; /* some body bytes went upstream: the request cannot be replayed */
    /* what goes upstream: the head (kept for a retry), then body bytes */
    char *head;
    size_t head_len;
    struct buf upout;
    bool head_queued;
    bool continue_sent;
    /* the response */
    struct buf upin;
    bool resp_started; /* bytes of the response went to the client */
    bool resp_head_done;
    struct h1_header resp_headers[H1_DEFAULT_MAX_HEADERS];
    struct h1_response resp;
    uint64_t resp_left;
    struct h1_chunked resp_chunked;
    bool rechunk;         /* re-frame the body as chunked towards the client */
    bool close_delimited; /* the client's body ends when we close */
    bool resp_done;
    bool retried;
    bool generated; /* the response is the gateway's own (an error page) */
    ev_timer timer; /* the backend's request timeout */
    uint64_t t_start, t_sent;
    double backend_ms;
    int status;
    const char *error_info;
    const char *phase;
    enum diag_code diag;
    char detail[512];
};

/* worker.c */
uint64_t worker_now_ms(const struct worker *w);

/* client.c */
void client_accept(struct worker *w, const struct rt_port *port, int fd,
                   const struct sockaddr *peer);
void client_exchange_done(struct client *c);
void client_update(struct client *c);
void client_close(struct client *c);
void client_reap(struct worker *w);
void client_record_refusal(struct client *c, const char *id, int status, const char *error_info,
                           const char *detail);

/* exchange.c */
void exchange_start(struct client *c, const struct h1_request *req);
void exchange_client_readable(struct exchange *x);
void exchange_client_drained(struct exchange *x);
void exchange_upstream_ready(struct exchange *x, struct upstream *up);
void exchange_upstream_failed(struct exchange *x, enum diag_code code, const char *phase,
                              const char *error_info, const char *detail);
void exchange_upstream_event(struct exchange *x, int revents);
void exchange_abort(struct exchange *x);
/* A fresh request id: 32 hex digits from the CSPRNG. */
void exchange_new_request_id(char out[33]);
/* A Host value without its port and IPv6 brackets, into buf ("" when it does not fit). */
const char *exchange_host_only(const char *host, char *buf, size_t size);
/* A gateway-generated error response (400, 404, 408, 413, 502, 504, ...). */
void exchange_error_response(struct client *c, int status, const char *request_id,
                             bool close_after);

/* upstream.c */
void upstream_acquire(struct exchange *x, struct rt_backend *b, bool fresh);
void upstream_release(struct upstream *up, bool reusable);
void upstream_worker_init(struct worker *w);
void upstream_worker_free(struct worker *w);
void upstream_watch(struct upstream *up, bool want_read, bool want_write);

#endif
