/*
 * admin: the admin listener (loopback by default) -- GET /healthz, /backend-health,
 * /backend-health?server=..., /requests/{id}, /metrics (Prometheus text) and the dashboard.
 * Its own thread and loop: nothing it does can slow the data path, and it reads the data path's
 * state only through atomics, the prober's lock and the error rings' locks.
 */
#ifndef GATEHOUSE_ADMIN_ADMIN_H
#define GATEHOUSE_ADMIN_ADMIN_H

#include <stddef.h>

#include "health/prober.h"
#include "proxy/metrics.h"
#include "proxy/runtime.h"

struct admin;

/* Binds the admin address. NULL and a sentence in err (naming admin.listen) on failure. */
struct admin *admin_new(const struct runtime *rt, struct prober *prober,
                        const struct gateway_stats *stats, char *err, size_t errlen);
int admin_start(struct admin *a);
void admin_stop_free(struct admin *a);

/* The Prometheus text exposition (exposed for tests). Caller frees. */
char *admin_metrics_text(const struct runtime *rt, struct prober *prober,
                         const struct gateway_stats *stats);

#endif
