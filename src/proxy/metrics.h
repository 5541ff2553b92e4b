/*
 * metrics: data-path counters. Each worker owns one block and is its only writer (relaxed
 * atomic adds, no locks); the admin API sums the blocks when scraped. Also the ring of recent
 * gateway-generated errors behind GET /requests/{id}.
 */
#ifndef GATEHOUSE_PROXY_METRICS_H
#define GATEHOUSE_PROXY_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proxy/runtime.h"

/* Latency histogram bounds in milliseconds (the last bucket is +Inf). */
#define METRICS_BUCKETS 12
extern const double metrics_bucket_ms[METRICS_BUCKETS - 1];

struct latency_histogram {
    _Atomic uint64_t buckets[METRICS_BUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

enum tls_failure_reason {
    TLS_FAIL_HANDSHAKE, /* the client's handshake failed (protocol, cipher, alert) */
    TLS_FAIL_TIMEOUT,   /* the client did not finish the handshake in time */
    TLS_FAIL_CLOSED,    /* the client closed during the handshake */
    TLS_FAIL_REASONS
};

struct worker_metrics {
    size_t n_listeners, n_backends;
    _Atomic uint64_t *requests;                /* [listener][status class 0..5] (0: no listener) */
    _Atomic uint64_t *backend_responses;       /* [backend][status class] */
    struct latency_histogram *client_latency;  /* [listener] */
    struct latency_histogram *backend_latency; /* [backend] */
    _Atomic uint64_t unmatched_requests[6];    /* no listener matched: by status class */
    _Atomic uint64_t tls_handshakes;
    _Atomic uint64_t tls_failures[TLS_FAIL_REASONS];
    _Atomic int64_t open_connections;
    _Atomic uint64_t upstream_retries;
    _Atomic uint64_t upstream_connections; /* new backend connections opened */
};

int metrics_init(struct worker_metrics *m, const struct runtime *rt);
void metrics_free(struct worker_metrics *m);

static inline void metrics_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void metrics_observe(struct latency_histogram *h, double ms);

/* ---- recent gateway-generated errors ------------------------------------------------------ */

struct request_record {
    char id[33];
    time_t when;
    int status;
    char phase[24];
    char code[40];       /* diagnosis code, or "" */
    char error_info[48]; /* ERRORINFO_* */
    char listener[64];
    char backend[300];
    char method[16];
    char host[128];
    char path[256];
    char detail[512];
    double duration_ms;
    double backend_ms; /* < 0: none */
    bool retried;
};

struct request_ring {
    pthread_mutex_t lock; /* taken only when an error is recorded or looked up */
    struct request_record *records;
    size_t cap, next, count;
};

int request_ring_init(struct request_ring *r, size_t cap);
void request_ring_free(struct request_ring *r);
void request_ring_add(struct request_ring *r, const struct request_record *rec);
/* Copies the record with <id> into *out; false when it is not (or no longer) there. */
bool request_ring_find(struct request_ring *r, const char *id, struct request_record *out);

/* What the admin API reads: every worker's blocks. */
struct gateway_stats {
    struct worker_metrics **metrics;
    struct request_ring **rings;
    size_t n_workers;
};

#endif
