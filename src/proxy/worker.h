/*
 * worker: one data-path thread -- its own libev loop, its own SO_REUSEPORT listening sockets,
 * clients, idle backend connections and DNS cache. Nothing on the request path is shared with
 * another worker except the immutable runtime and its atomics.
 */
#ifndef GATEHOUSE_PROXY_WORKER_H
#define GATEHOUSE_PROXY_WORKER_H

#include <stddef.h>

#include "proxy/access_log.h"
#include "proxy/metrics.h"
#include "proxy/runtime.h"

struct worker;

/*
 * Opens the listening sockets (SO_REUSEPORT, so each worker gets its own) and prepares the loop.
 * Returns NULL and one sentence in err (naming the listener and address) on failure.
 */
struct worker *worker_new(int id, const struct runtime *rt, struct access_log *log,
                          size_t ring_capacity, char *err, size_t errlen);

/* The worker's counters and its ring of recent gateway-generated errors (for the admin API). */
struct worker_metrics *worker_metrics(struct worker *w);
struct request_ring *worker_ring(struct worker *w);

/* Starts the thread. Returns 0 or -1. */
int worker_start(struct worker *w);

/* Asks the worker to stop accepting, finish in-flight requests (at most <grace_s>) and exit. */
void worker_drain(struct worker *w, double grace_s);

/* Waits for the thread to end and frees the worker. */
void worker_join_free(struct worker *w);

#endif
