/*
 * runtime: what the gateway serves with, built once from a validated config and immutable
 * afterwards (a reload builds a new one): TLS contexts for listeners and backends, the trust
 * policy of each backend settings, the listeners of each port in routing order, and the
 * (pool, settings) targets that rules send traffic to, with their backends.
 */
#ifndef GATEHOUSE_PROXY_RUNTIME_H
#define GATEHOUSE_PROXY_RUNTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "tls/trust.h"

struct rt_settings {
    const struct cfg_backend_settings *cfg;
    struct trust_policy trust;
    SSL_CTX *client_ctx;    /* https only: TLS 1.2+, client certificate when configured */
    const char **alt_names; /* other plausible SNIs (allow-listed certificates' names) */
    size_t n_alt_names;
};

/* One pool member as reached with one backend settings: the unit of health and selection. */
struct rt_backend {
    const struct cfg_server *server;
    const struct cfg_pool *pool;
    const struct rt_settings *settings;
    char host[256]; /* DNS name or IP literal, no brackets */
    uint16_t port;  /* the member's port, else the settings' port */
    bool host_is_ip;
    char label[300]; /* "host:port" / "[v6]:port" for logs and the health API */
    size_t index;    /* position in the runtime's backend list */
    /* Published by the prober (health/): enum rt_health. Unknown until the first probe. */
    _Atomic int health;
    /* Data-path connection failures mark a backend unusable until this monotonic ms... */
    _Atomic uint64_t down_until_ms;
    /* ...and ask the prober to probe it again soon. */
    _Atomic bool probe_soon;
    /* The last probe's diagnosis code (enum diag_code), -1 before the first: the data path
     * names it when it refuses traffic to an unhealthy backend. */
    _Atomic int last_code;
};

enum rt_health {
    RT_HEALTH_UNKNOWN = 0,
    RT_HEALTH_HEALTHY,
    RT_HEALTH_UNHEALTHY,
    RT_HEALTH_DRAINING
};

/* The backends a rule's (pool, settings) pair sends traffic to. */
struct rt_target {
    const struct cfg_pool *pool;
    struct rt_settings *settings;
    struct rt_backend **backends;
    size_t n_backends;
    size_t index;
};

struct rt_listener {
    const struct cfg_listener *cfg;
    const struct cfg_rule *rule; /* NULL: no rule, requests get 404 */
    struct rt_target *target;
    SSL_CTX *ctx; /* https: the listener certificate's context */
};

/* Listeners sharing one bind address and port, in routing order (rule priority). */
struct rt_port {
    const char *address; /* NULL = all addresses */
    uint16_t port;
    enum cfg_protocol protocol;
    struct rt_listener **listeners;
    size_t n_listeners;
    SSL_CTX *default_ctx; /* https: the default listener's context, with the SNI callback */
};

struct runtime {
    struct cfg *cfg; /* owned */
    struct rt_settings *settings;
    size_t n_settings;
    struct rt_listener *listeners;
    size_t n_listeners;
    struct rt_port *ports;
    size_t n_ports;
    struct rt_target *targets;
    size_t n_targets;
    struct rt_backend *backends;
    size_t n_backends;
};

/*
 * Builds the runtime; takes ownership of <cfg> on success. Returns NULL and one sentence in err
 * (naming the config object and file at fault) when a certificate or key cannot be used.
 */
struct runtime *runtime_new(struct cfg *cfg, char *err, size_t errlen);
void runtime_free(struct runtime *rt);

/*
 * The listener of <port> for the request's host (no port, any case): exact names first, then
 * wildcard names, then the basic listener, each in rule-priority order. NULL: none (404).
 */
const struct rt_listener *runtime_match_listener(const struct rt_port *port, const char *host,
                                                 size_t host_len);

/*
 * The names used towards a backend, derived as the modelled gateway does for traffic: the
 * settings' host name, else the member's address (pick-host-name-from-backend), else the
 * client's Host. <client_host> has no port. Pointers refer to the inputs or the backend.
 */
struct rt_backend_names {
    const char *host_header; /* NULL: keep the client's Host header as received */
    const char *sni;         /* NULL: no SNI */
    const char *check_name;  /* NULL: no name check */
    const char *name_source;
};

void runtime_backend_names(const struct rt_backend *backend, const char *client_host,
                           struct rt_backend_names *out);

#endif
