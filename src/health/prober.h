/*
 * prober: the gateway's health probes. One thread with its own loop probes every backend (pool
 * member x backend settings that a rule uses) with the diagnosis engine of `gatehouse probe`,
 * unchanged, spread over the interval and bounded in concurrency, and publishes each backend's
 * health to the data path (an atomic in rt_backend) and its full state -- verdict, findings,
 * chain, history, transitions, certificate inventory, probe/traffic parity -- to the admin API.
 */
#ifndef GATEHOUSE_HEALTH_PROBER_H
#define GATEHOUSE_HEALTH_PROBER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "proxy/runtime.h"

#define PROBER_HISTORY       20 /* results kept per backend */
#define PROBER_TRANSITIONS   20 /* health changes kept per backend */
#define PROBER_MAX_IN_FLIGHT 256
/* Seconds a probe connection is kept alive for the next probes: at least this often, a healthy
 * backend is probed on a fresh connection with a full TLS handshake. */
#define PROBER_FULL_HANDSHAKE_S 60

struct prober;

/* Builds the probe of every backend. NULL and err on failure (out of memory, DNS init). */
struct prober *prober_new(struct runtime *rt, int expiry_warning_days, char *err, size_t errlen);
int prober_start(struct prober *p);
void prober_stop_free(struct prober *p);

/*
 * The backend health document: pool -> settings -> servers (health, code, message, remedy,
 * findings, chain, last probe, consecutive failures, health probe log, parity). With <server>
 * ("host:port" as in the config, or the label), only that server, with its history and
 * transitions. Returns a new reference, or NULL when <server> names no backend.
 */
json_t *prober_health_json(struct prober *p, const char *server);

/* Counts for /metrics: probe results by code, healthy/unhealthy per target, cert expiry. */
json_t *prober_metrics_json(struct prober *p);

/*
 * A server that a reload removed: the previous configuration still finishes its in-flight
 * requests on it, so the health document shows it as Draining until <until>.
 */
void prober_add_draining(struct prober *p, const char *pool, const char *settings,
                         const char *server, time_t until);

/* True once every backend has a first probe result. */
bool prober_first_round_done(struct prober *p);

#endif
