#include "health/prober.h"

#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/dns.h"
#include "core/log.h"
#include "diagnose/probe.h"
#include "diagnose/report.h"
#include "tls/name_match.h"

struct history_entry {
    time_t when;
    enum diag_code code;
    int status;
    double ms;
    char sha256[CERT_SHA256_HEX_LEN + 1];
};

struct transition {
    time_t when;
    int from, to;
    enum diag_code code;
};

struct backend_state {
    struct prober *p;
    struct rt_backend *b;
    const struct cfg_probe *probe;
    /* the probe's request, owned here */
    char url[700];
    char host_header[300];
    char sni[256];
    char check[256];
    const char *name_source;
    struct status_match match;
    struct probe_spec spec;
    ev_timer timer;
    struct probe *running;
    uint64_t started_ns;
    double phase; /* this backend's place in the interval, 0..1 */
    /* Keep-alive between probes: a fresh connection with a full TLS handshake (the chain as
     * the backend really sends it now) at least every PROBER_FULL_HANDSHAKE_S, and after any
     * failure (a probe with findings never keeps its connection). */
    struct probe_conn *conn;
    bool first_done;
    /* published state (under p->lock) */
    int health;
    unsigned failures;
    struct probe_result *last_result; /* the last probe's result */
    json_t *last; /* its JSON report, built when the admin API first asks (then cached) */
    time_t last_when;
    double last_ms;
    enum diag_code last_code;
    int last_status;
    struct history_entry history[PROBER_HISTORY];
    size_t n_history, history_next;
    struct transition transitions[PROBER_TRANSITIONS];
    size_t n_transitions, transitions_next;
    char leaf_sha256[CERT_SHA256_HEX_LEN + 1];
    char leaf_changed_from[CERT_SHA256_HEX_LEN + 1];
    time_t leaf_changed_when;
};

struct draining {
    char *pool, *settings, *server;
    time_t until;
};

struct prober {
    struct runtime *rt;
    struct ev_loop *loop;
    struct dns_resolver *dns;
    pthread_t thread;
    bool started;
    ev_async stop;
    ev_timer tick;
    pthread_mutex_t lock;
    struct backend_state *states;
    size_t n_states;
    size_t in_flight;
    int expiry_days;
    uint64_t boot_ns;
    struct draining *draining; /* under lock */
    size_t n_draining;
    uint64_t results_by_code[DIAG_OK + 1];
};

static const char *health_name(int h)
{
    switch (h) {
    case RT_HEALTH_HEALTHY:
        return "Healthy";
    case RT_HEALTH_UNHEALTHY:
        return "Unhealthy";
    case RT_HEALTH_DRAINING:
        return "Draining";
    default:
        return "Unknown";
    }
}

/*
 * The probe's names, as the modelled gateway derives them (reference 1.12 and 2.3): Host from the
 * custom probe's host, else the settings' host (pick-host-name-from-backend-settings), else
 * 127.0.0.1 for a default probe unless the settings name a host or pick the member's address.
 * SNI: the probe host, else the settings' host name, else the member's FQDN; never an IP.
 */
static void derive_names(struct backend_state *st)
{
    const struct rt_backend *b = st->b;
    const struct cfg_backend_settings *s = b->settings->cfg;
    const struct cfg_probe *pr = st->probe;
    const char *host = NULL, *source;
    if (pr->host) {
        host = pr->host;
        source = "the probe's host";
    } else if (pr->pick_host_name_from_backend_settings || pr->is_default) {
        if (s->host_name) {
            host = s->host_name;
            source = "the backend settings' host-name";
        } else if (s->pick_host_name_from_backend) {
            host = b->host;
            source = "the backend address (pick-host-name-from-backend)";
        } else {
            source = pr->is_default ? "the default probe (Host 127.0.0.1)" : "the backend address";
        }
    } else {
        source = "the backend address";
    }
    snprintf(st->host_header, sizeof st->host_header, "%s", host ? host : "127.0.0.1");
    const char *sni = NULL;
    if (host && !name_is_ip_literal(host))
        sni = host;
    else if (!b->host_is_ip)
        sni = b->host;
    st->sni[0] = '\0';
    if (sni && s->protocol == CFG_PROTO_HTTPS)
        snprintf(st->sni, sizeof st->sni, "%s", sni);
    /* The name checked is the SNI; with none, the member's address (allow-list: unchecked). */
    bool allowlist = b->settings->trust.mode == TRUST_ALLOWLIST;
    if (st->sni[0])
        snprintf(st->check, sizeof st->check, "%s", st->sni);
    else if (!allowlist)
        snprintf(st->check, sizeof st->check, "%s", b->host);
    else
        st->check[0] = '\0';
    st->name_source = source;
}

static void build_spec(struct backend_state *st)
{
    const struct rt_backend *b = st->b;
    const struct cfg_backend_settings *s = b->settings->cfg;
    const struct cfg_probe *pr = st->probe;
    derive_names(st);
    uint16_t port = pr->port ? pr->port : b->port;
    bool v6 = strchr(b->host, ':') != NULL;
    snprintf(st->url, sizeof st->url, "%s://%s%s%s:%u%s",
             s->protocol == CFG_PROTO_HTTPS ? "https" : "http", v6 ? "[" : "", b->host,
             v6 ? "]" : "", port, pr->path ? pr->path : "/");
    st->match.n = 0;
    for (size_t i = 0; i < pr->match.n_status && i < STATUS_MATCH_MAX_RANGES; i++) {
        st->match.ranges[i].lo = pr->match.status[i].lo;
        st->match.ranges[i].hi = pr->match.status[i].hi;
        st->match.n++;
    }
    if (st->match.n == 0)
        status_match_default(&st->match);
    struct probe_spec *sp = &st->spec;
    memset(sp, 0, sizeof *sp);
    sp->url = st->url;
    sp->https = s->protocol == CFG_PROTO_HTTPS;
    sp->host = b->host;
    sp->port = port;
    sp->path = pr->path ? pr->path : "/";
    sp->sni = st->sni[0] ? st->sni : NULL;
    sp->host_header = st->host_header;
    sp->check_name = sp->https && st->check[0] ? st->check : NULL;
    sp->name_source = st->check[0] ? st->name_source : "not checked (allow-list, IP member)";
    sp->trust = (struct trust_policy *)&b->settings->trust;
    sp->ssl_ctx = b->settings->client_ctx;
    sp->match_status = &st->match;
    sp->match_body = pr->match.body;
    sp->timeout_s = (double)pr->timeout_ms / 1000.0;
    sp->alt_names = b->settings->alt_names;
    sp->n_alt_names = b->settings->n_alt_names;
    sp->second_look = true;
    sp->expiry_warning_days = st->p->expiry_days;
    sp->user_agent = "Gatehouse-HealthProbe/1";
    sp->keep = &st->conn;
    sp->keep_max_age_s = PROBER_FULL_HANDSHAKE_S;
}

static void schedule(struct backend_state *st, double after_s)
{
    ev_timer_stop(st->p->loop, &st->timer);
    ev_timer_set(&st->timer, after_s < 0 ? 0 : after_s, 0.);
    ev_timer_start(st->p->loop, &st->timer);
}

static void record(struct backend_state *st, struct probe_result *r)
{
    struct prober *p = st->p;
    const struct cfg_probe *pr = st->probe;
    time_t now = clock_wall_now();
    bool ok = probe_result_healthy(r);
    const char *leaf =
            r->have_chain && r->chain.n_certs ? r->chain.certs[r->chain.leaf].info.sha256 : NULL;
    pthread_mutex_lock(&p->lock);
    p->results_by_code[r->code]++;
    /* The JSON report is built only when someone asks: at thousands of probes a second,
     * building it for every probe would cost more than the probe. */
    json_decref(st->last);
    st->last = NULL;
    probe_result_free(st->last_result);
    st->last_result = r;
    st->last_when = now;
    st->last_ms = r->ms_total;
    st->last_code = r->code;
    st->last_status = r->http_done ? r->http_status : 0;
    struct history_entry *h = &st->history[st->history_next];
    h->when = now;
    h->code = r->code;
    h->status = st->last_status;
    h->ms = r->ms_total;
    snprintf(h->sha256, sizeof h->sha256, "%s", leaf ? leaf : "");
    st->history_next = (st->history_next + 1) % PROBER_HISTORY;
    if (st->n_history < PROBER_HISTORY)
        st->n_history++;
    if (leaf) {
        if (st->leaf_sha256[0] && strcmp(st->leaf_sha256, leaf) != 0) {
            snprintf(st->leaf_changed_from, sizeof st->leaf_changed_from, "%s", st->leaf_sha256);
            st->leaf_changed_when = now;
        }
        snprintf(st->leaf_sha256, sizeof st->leaf_sha256, "%s", leaf);
    }
    int before = st->health;
    if (ok) {
        st->failures = 0;
        st->health = RT_HEALTH_HEALTHY;
    } else {
        st->failures++;
        /* A backend never seen healthy gets no traffic on its first failure; a healthy one
         * keeps it until the threshold of consecutive failures. */
        if (st->health == RT_HEALTH_UNKNOWN || st->failures >= pr->unhealthy_threshold)
            st->health = RT_HEALTH_UNHEALTHY;
    }
    if (st->health != before) {
        struct transition *t = &st->transitions[st->transitions_next];
        t->when = now;
        t->from = before;
        t->to = st->health;
        t->code = r->code;
        st->transitions_next = (st->transitions_next + 1) % PROBER_TRANSITIONS;
        if (st->n_transitions < PROBER_TRANSITIONS)
            st->n_transitions++;
    }
    pthread_mutex_unlock(&p->lock);
    atomic_store_explicit(&st->b->last_code, (int)r->code, memory_order_relaxed);
    /* A passing probe is newer evidence than a data-path connection failure. */
    if (ok)
        atomic_store_explicit(&st->b->down_until_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&st->b->health, st->health, memory_order_relaxed);
    if (st->health != before)
        log_info("backend %s (settings %s): %s -> %s (%s)", st->b->label,
                 st->b->settings->cfg->name, health_name(before), health_name(st->health),
                 diag_code_name(r->code));
}

static void on_probe_done(struct probe_result *r, void *arg)
{
    struct backend_state *st = arg;
    struct prober *p = st->p;
    st->running = NULL;
    p->in_flight--;
    record(st, r); /* takes the result */
    double interval = (double)st->probe->interval_ms / 1000.0;
    double elapsed = clock_ms_between(st->started_ns, clock_mono_ns()) / 1000.0;
    /* Everything was probed at boot; from the second round on, each backend keeps its own
     * place in the interval, so probes are spread evenly instead of arriving in a herd. */
    if (st->first_done) {
        schedule(st, interval - elapsed);
    } else {
        /* The second round is placed from the boot time, not from when the (queued) first
         * probe ran, so the places really are spread evenly over the interval. */
        st->first_done = true;
        double since_boot = clock_ms_between(p->boot_ns, clock_mono_ns()) / 1000.0;
        schedule(st, interval * (1.0 + st->phase) - since_boot);
    }
}

static void start_probe(struct backend_state *st)
{
    struct prober *p = st->p;
    if (st->running)
        return;
    if (p->in_flight >= PROBER_MAX_IN_FLIGHT) {
        schedule(st, 0.05); /* the concurrency bound: try again shortly */
        return;
    }
    atomic_store_explicit(&st->b->probe_soon, false, memory_order_relaxed);
    st->started_ns = clock_mono_ns();
    st->running = probe_start(p->loop, p->dns, &st->spec, on_probe_done, st);
    if (st->running)
        p->in_flight++;
    else
        schedule(st, 1.0);
}

static void on_due(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    start_probe(t->data);
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct prober *p = t->data;
    uint64_t now = clock_mono_ns();
    for (size_t i = 0; i < p->n_states; i++) {
        struct backend_state *st = &p->states[i];
        if (st->running || !atomic_load_explicit(&st->b->probe_soon, memory_order_relaxed))
            continue;
        /* At most one extra probe a second per backend, however many requests fail. */
        if (clock_ms_between(st->started_ns, now) >= 1000.0)
            start_probe(st);
    }
}

static void on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    (void)a;
    ev_break(loop, EVBREAK_ALL);
}

struct prober *prober_new(struct runtime *rt, int expiry_warning_days, char *err, size_t errlen)
{
    struct prober *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->rt = rt;
    p->expiry_days = expiry_warning_days;
    p->boot_ns = clock_mono_ns();
    pthread_mutex_init(&p->lock, NULL);
    p->loop = ev_loop_new(EVFLAG_AUTO);
    p->states = calloc(rt->n_backends ? rt->n_backends : 1, sizeof *p->states);
    if (!p->loop || !p->states) {
        snprintf(err, errlen, "out of memory");
        prober_stop_free(p);
        return NULL;
    }
    p->dns = dns_resolver_new(p->loop, err, errlen);
    if (!p->dns) {
        prober_stop_free(p);
        return NULL;
    }
    p->n_states = rt->n_backends;
    for (size_t i = 0; i < rt->n_backends; i++) {
        struct backend_state *st = &p->states[i];
        st->p = p;
        st->b = &rt->backends[i];
        st->probe = st->b->settings->cfg->probe;
        st->health = RT_HEALTH_UNKNOWN;
        build_spec(st);
        ev_init(&st->timer, on_due);
        st->timer.data = st;
        /* Everything is probed at once at boot, staggered over at most a second so that
         * thousands of backends do not all connect in the same millisecond. */
        double spread = p->n_states > 1 ? (double)i / (double)p->n_states : 0.0;
        st->phase = spread;
        double interval = (double)st->probe->interval_ms / 1000.0;
        schedule(st, spread * (interval < 1.0 ? interval : 1.0));
    }
    ev_timer_init(&p->tick, on_tick, 0.1, 0.1);
    p->tick.data = p;
    ev_timer_start(p->loop, &p->tick);
    ev_async_init(&p->stop, on_stop);
    ev_async_start(p->loop, &p->stop);
    return p;
}

static void *prober_main(void *arg)
{
    struct prober *p = arg;
    ev_run(p->loop, 0);
    return NULL;
}

int prober_start(struct prober *p)
{
    if (pthread_create(&p->thread, NULL, prober_main, p) != 0)
        return -1;
    p->started = true;
    return 0;
}

void prober_stop_free(struct prober *p)
{
    if (!p)
        return;
    if (p->started) {
        ev_async_send(p->loop, &p->stop);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->n_states; i++) {
        struct backend_state *st = &p->states[i];
        if (st->running)
            probe_cancel(st->running);
        if (p->loop)
            ev_timer_stop(p->loop, &st->timer);
        json_decref(st->last);
        probe_result_free(st->last_result);
        probe_conn_free(st->conn);
    }
    for (size_t i = 0; i < p->n_draining; i++) {
        free(p->draining[i].pool);
        free(p->draining[i].settings);
        free(p->draining[i].server);
    }
    free(p->draining);
    dns_resolver_free(p->dns);
    if (p->loop)
        ev_loop_destroy(p->loop);
    pthread_mutex_destroy(&p->lock);
    free(p->states);
    free(p);
}

void prober_add_draining(struct prober *p, const char *pool, const char *settings,
                         const char *server, time_t until)
{
    pthread_mutex_lock(&p->lock);
    struct draining *grown = realloc(p->draining, (p->n_draining + 1) * sizeof *grown);
    if (grown) {
        p->draining = grown;
        struct draining *d = &p->draining[p->n_draining];
        d->pool = strdup(pool);
        d->settings = strdup(settings);
        d->server = strdup(server);
        d->until = until;
        if (d->pool && d->settings && d->server)
            p->n_draining++;
        else {
            free(d->pool);
            free(d->settings);
            free(d->server);
        }
    }
    pthread_mutex_unlock(&p->lock);
}

/* Adds the servers still draining to the document's pools (under lock). */
static bool add_draining_json(struct prober *p, json_t *pools, const char *server)
{
    bool added = false;
    time_t now = clock_wall_now();
    for (size_t i = 0; i < p->n_draining; i++) {
        const struct draining *d = &p->draining[i];
        if (d->until < now || (server && strcasecmp(server, d->server) != 0))
            continue;
        json_t *pool = NULL, *settings = NULL;
        size_t k;
        json_t *it;
        json_array_foreach(pools, k, it)
        {
            if (strcmp(json_string_value(json_object_get(it, "name")), d->pool) == 0)
                pool = it;
        }
        if (!pool) {
            pool = json_object();
            json_object_set_new(pool, "name", json_string(d->pool));
            json_object_set_new(pool, "settings", json_array());
            json_array_append_new(pools, pool);
        }
        json_array_foreach(json_object_get(pool, "settings"), k, it)
        {
            if (strcmp(json_string_value(json_object_get(it, "name")), d->settings) == 0)
                settings = it;
        }
        if (!settings) {
            settings = json_object();
            json_object_set_new(settings, "name", json_string(d->settings));
            json_object_set_new(settings, "servers", json_array());
            json_array_append_new(json_object_get(pool, "settings"), settings);
        }
        char until[32], msg[200];
        snprintf(msg, sizeof msg,
                 "Removed from the configuration by a reload: it gets no new requests; the "
                 "previous configuration finishes its in-flight ones (until %s at the latest).",
                 clock_rfc3339(d->until, until, sizeof until));
        json_t *o = json_object();
        json_object_set_new(o, "address", json_string(d->server));
        json_object_set_new(o, "health", json_string("Draining"));
        json_object_set_new(o, "code", json_null());
        json_object_set_new(o, "message", json_string(msg));
        json_object_set_new(o, "remedy", json_string(""));
        json_object_set_new(o, "findings", json_array());
        json_object_set_new(o, "chain", json_array());
        json_object_set_new(o, "healthProbeLog", json_string(msg));
        json_array_append_new(json_object_get(settings, "servers"), o);
        added = true;
    }
    return added;
}

bool prober_first_round_done(struct prober *p)
{
    bool done = true;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_states && done; i++)
        done = p->states[i].last_result != NULL;
    pthread_mutex_unlock(&p->lock);
    return done;
}

/* ---- the health document --------------------------------------------------------------- */

static json_t *time_json(time_t t)
{
    char buf[32];
    return t ? json_string(clock_rfc3339(t, buf, sizeof buf)) : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* The names real traffic uses, beside the probe's: differences are where health lies. */
static json_t *parity_json(const struct backend_state *st, json_t **warning)
{
    struct rt_backend_names t;
    runtime_backend_names(st->b, NULL, &t);
    const struct cfg_backend_settings *s = st->b->settings->cfg;
    bool traffic_host_from_client = !s->host_name && !s->pick_host_name_from_backend;
    json_t *probe = json_object(), *traffic = json_object(), *diffs = json_array();
    json_object_set_new(probe, "protocol", json_string(cfg_protocol_name(s->protocol)));
    json_object_set_new(probe, "port", json_integer(st->spec.port));
    json_object_set_new(probe, "sni", str_or_null(st->spec.sni));
    json_object_set_new(probe, "host_header", json_string(st->spec.host_header));
    json_object_set_new(probe, "trust", json_string(trust_mode_name(st->b->settings->trust.mode)));
    json_object_set_new(probe, "path", json_string(st->spec.path));
    json_object_set_new(traffic, "protocol", json_string(cfg_protocol_name(s->protocol)));
    json_object_set_new(traffic, "port", json_integer(st->b->port));
    json_object_set_new(traffic, "sni",
                        traffic_host_from_client ? json_string("(the client's Host header)")
                                                 : str_or_null(t.sni));
    json_object_set_new(traffic, "host_header",
                        traffic_host_from_client ? json_string("(the client's Host header)")
                                                 : json_string(t.host_header));
    json_object_set_new(traffic, "trust",
                        json_string(trust_mode_name(st->b->settings->trust.mode)));
    const char *fields[] = {"port", "sni", "host_header"};
    for (size_t i = 0; i < 3; i++) {
        json_t *a = json_object_get(probe, fields[i]), *b = json_object_get(traffic, fields[i]);
        if (!json_equal(a, b))
            json_array_append_new(diffs, json_string(fields[i]));
    }
    json_t *o = json_object();
    json_object_set_new(o, "probe", probe);
    json_object_set_new(o, "traffic", traffic);
    json_object_set_new(o, "differences", diffs);
    *warning = NULL;
    if (json_array_size(diffs) > 0) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "The health probe and real traffic differ in %s: a healthy probe does not prove "
                 "that traffic works (or the other way round). Set host-name in the backend "
                 "settings (and pick-host-name-from-backend-settings in the probe) so both use "
                 "the same name.",
                 json_array_size(diffs) == 1 ? json_string_value(json_array_get(diffs, 0))
                                             : "several fields (see parity)");
        json_t *w = json_object();
        json_object_set_new(w, "code", json_string(diag_warning_name(WARN_PROBE_TRAFFIC_DIFFER)));
        json_object_set_new(w, "message", json_string(msg));
        *warning = w;
    }
    return o;
}

/* The last probe's report (under p->lock). */
static json_t *last_json(struct backend_state *st)
{
    if (!st->last && st->last_result)
        st->last = report_json(&st->spec, st->last_result);
    return st->last;
}

static json_t *inventory_json(struct backend_state *st)
{
    json_t *out = json_array();
    json_t *last = last_json(st);
    json_t *chain = last ? json_object_get(last, "chain") : NULL;
    time_t now = clock_wall_now();
    size_t i;
    json_t *c;
    json_array_foreach(chain, i, c)
    {
        json_t *o = json_object();
        json_object_set(o, "subject", json_object_get(c, "subject"));
        json_object_set(o, "sha256", json_object_get(c, "sha256"));
        json_object_set(o, "kind", json_object_get(c, "kind"));
        json_object_set(o, "not_after", json_object_get(c, "not_after"));
        const char *na = json_string_value(json_object_get(c, "not_after"));
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        if (na && strptime(na, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
            time_t t = timegm(&tm);
            json_object_set_new(o, "days_until_expiry",
                                json_integer((json_int_t)((t - now) / 86400)));
            json_object_set_new(o, "seconds_until_expiry", json_integer((json_int_t)(t - now)));
        }
        json_array_append_new(out, o);
    }
    return out;
}

static json_t *server_json(struct backend_state *st, bool detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "address", json_string(st->b->label));
    json_object_set_new(o, "health", json_string(health_name(st->health)));
    json_t *last = last_json(st);
    if (last) {
        const char *keys[] = {"code",          "message",    "remedy", "findings",   "chain",
                              "chain_status",  "sni",        "tls",    "http",       "timings_ms",
                              "alternate_sni", "name_check", "trust",  "host_header"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            json_object_set(o, keys[i], json_object_get(last, keys[i]));
    } else {
        json_object_set_new(o, "code", json_null());
        json_object_set_new(o, "message", json_string("Not probed yet."));
        json_object_set_new(o, "remedy", json_string(""));
        json_object_set_new(o, "findings", json_array());
        json_object_set_new(o, "chain", json_array());
    }
    json_object_set_new(o, "last_probe", time_json(st->last_when));
    json_object_set_new(o, "last_probe_ms", st->last_result ? json_real(st->last_ms) : json_null());
    json_object_set_new(o, "consecutive_failures", json_integer(st->failures));
    json_object_set_new(o, "url", json_string(st->url));
    /* In the style of the modelled gateway's healthProbeLog. */
    char log[1024];
    if (!st->last_result)
        snprintf(log, sizeof log, "Unknown. The first probe has not completed yet.");
    else if (st->last_code == DIAG_OK)
        snprintf(log, sizeof log, "Success. Received %d status code", st->last_status);
    else
        snprintf(log, sizeof log, "%s: %s", diag_code_name(st->last_code),
                 json_string_value(json_object_get(last, "message")));
    json_object_set_new(o, "healthProbeLog", json_string(log));
    json_t *warnings = json_array();
    json_t *lw = last ? json_object_get(last, "warnings") : NULL;
    size_t i;
    json_t *w;
    json_array_foreach(lw, i, w) json_array_append(warnings, w);
    if (st->leaf_changed_from[0]) {
        char msg[400];
        char when[32];
        snprintf(msg, sizeof msg,
                 "The backend's certificate changed at %s (sha256 %.16s... -> %.16s...): a "
                 "rotation, or a wrong certificate deployed.",
                 clock_rfc3339(st->leaf_changed_when, when, sizeof when), st->leaf_changed_from,
                 st->leaf_sha256);
        json_t *wo = json_object();
        json_object_set_new(wo, "code", json_string(diag_warning_name(WARN_CERT_CHANGED)));
        json_object_set_new(wo, "message", json_string(msg));
        json_array_append_new(warnings, wo);
    }
    json_t *pw = NULL;
    json_object_set_new(o, "parity", parity_json(st, &pw));
    if (pw)
        json_array_append_new(warnings, pw);
    json_object_set_new(o, "warnings", warnings);
    json_object_set_new(o, "certificates", inventory_json(st));
    if (detail) {
        json_t *hist = json_array();
        for (size_t k = 0; k < st->n_history; k++) {
            size_t idx = (st->history_next + PROBER_HISTORY - 1 - k) % PROBER_HISTORY;
            const struct history_entry *h = &st->history[idx];
            json_t *ho = json_object();
            json_object_set_new(ho, "time", time_json(h->when));
            json_object_set_new(ho, "code", json_string(diag_code_name(h->code)));
            json_object_set_new(ho, "http_status",
                                h->status ? json_integer(h->status) : json_null());
            json_object_set_new(ho, "duration_ms", json_real(h->ms));
            json_object_set_new(ho, "leaf_sha256", str_or_null(h->sha256));
            json_array_append_new(hist, ho);
        }
        json_object_set_new(o, "history", hist);
        json_t *tr = json_array();
        for (size_t k = 0; k < st->n_transitions; k++) {
            size_t idx = (st->transitions_next + PROBER_TRANSITIONS - 1 - k) % PROBER_TRANSITIONS;
            const struct transition *t = &st->transitions[idx];
            json_t *to = json_object();
            json_object_set_new(to, "time", time_json(t->when));
            json_object_set_new(to, "from", json_string(health_name(t->from)));
            json_object_set_new(to, "to", json_string(health_name(t->to)));
            json_object_set_new(to, "code", json_string(diag_code_name(t->code)));
            json_array_append_new(tr, to);
        }
        json_object_set_new(o, "transitions", tr);
        json_object_set(o, "report", last ? last : json_null());
    }
    return o;
}

static bool server_matches(const struct backend_state *st, const char *server)
{
    if (strcasecmp(server, st->b->label) == 0 || strcasecmp(server, st->b->host) == 0)
        return true;
    return false;
}

json_t *prober_health_json(struct prober *p, const char *server)
{
    json_t *pools = json_array();
    bool found = false;
    pthread_mutex_lock(&p->lock);
    const struct runtime *rt = p->rt;
    for (size_t t = 0; t < rt->n_targets; t++) {
        const struct rt_target *tg = &rt->targets[t];
        json_t *pool = NULL;
        size_t pi;
        json_t *existing;
        json_array_foreach(pools, pi, existing)
        {
            if (strcmp(json_string_value(json_object_get(existing, "name")), tg->pool->name) == 0)
                pool = existing;
        }
        if (!pool) {
            pool = json_object();
            json_object_set_new(pool, "name", json_string(tg->pool->name));
            json_object_set_new(pool, "settings", json_array());
            json_array_append_new(pools, pool);
        }
        json_t *settings = json_object();
        json_object_set_new(settings, "name", json_string(tg->settings->cfg->name));
        const struct cfg_probe *pr = tg->settings->cfg->probe;
        json_object_set_new(settings, "probe", json_string(pr->name));
        json_object_set_new(settings, "probe_interval_s",
                            json_real((double)pr->interval_ms / 1000.0));
        json_object_set_new(settings, "probe_timeout_s",
                            json_real((double)pr->timeout_ms / 1000.0));
        json_object_set_new(settings, "unhealthy_threshold", json_integer(pr->unhealthy_threshold));
        json_t *servers = json_array();
        size_t healthy = 0, unhealthy = 0;
        for (size_t k = 0; k < tg->n_backends; k++) {
            struct backend_state *st = &p->states[tg->backends[k]->index];
            healthy += st->health == RT_HEALTH_HEALTHY;
            unhealthy += st->health == RT_HEALTH_UNHEALTHY;
            if (server && !server_matches(st, server))
                continue;
            found = true;
            json_array_append_new(servers, server_json(st, server != NULL));
        }
        json_object_set_new(settings, "healthy", json_integer((json_int_t)healthy));
        json_object_set_new(settings, "unhealthy", json_integer((json_int_t)unhealthy));
        json_object_set_new(settings, "servers", servers);
        if (!server || json_array_size(servers) > 0)
            json_array_append_new(json_object_get(pool, "settings"), settings);
        else
            json_decref(settings);
    }
    if (add_draining_json(p, pools, server))
        found = true;
    pthread_mutex_unlock(&p->lock);
    if (server && !found) {
        json_decref(pools);
        return NULL;
    }
    if (server) {
        /* Drop pools left empty by the filter. */
        json_t *kept = json_array();
        size_t i;
        json_t *pool;
        json_array_foreach(pools, i, pool)
        {
            if (json_array_size(json_object_get(pool, "settings")) > 0)
                json_array_append(kept, pool);
        }
        json_decref(pools);
        pools = kept;
    }
    json_t *doc = json_object();
    char now[32];
    json_object_set_new(doc, "generated",
                        json_string(clock_rfc3339(clock_wall_now(), now, sizeof now)));
    json_object_set_new(doc, "pools", pools);
    return doc;
}

json_t *prober_metrics_json(struct prober *p)
{
    json_t *o = json_object();
    json_t *codes = json_object();
    json_t *targets = json_array();
    json_t *certs = json_array();
    pthread_mutex_lock(&p->lock);
    for (int c = 0; c <= DIAG_OK; c++)
        json_object_set_new(codes, diag_code_name((enum diag_code)c),
                            json_integer((json_int_t)p->results_by_code[c]));
    const struct runtime *rt = p->rt;
    for (size_t t = 0; t < rt->n_targets; t++) {
        const struct rt_target *tg = &rt->targets[t];
        size_t healthy = 0, unhealthy = 0;
        for (size_t k = 0; k < tg->n_backends; k++) {
            struct backend_state *st = &p->states[tg->backends[k]->index];
            healthy += st->health == RT_HEALTH_HEALTHY;
            unhealthy += st->health == RT_HEALTH_UNHEALTHY;
            const struct probe_result *lr = st->last_result;
            if (lr && lr->have_chain && lr->chain.n_certs &&
                lr->chain.certs[lr->chain.leaf].info.not_after) {
                json_t *co = json_object();
                json_object_set_new(co, "pool", json_string(tg->pool->name));
                json_object_set_new(co, "settings", json_string(tg->settings->cfg->name));
                json_object_set_new(co, "server", json_string(st->b->label));
                json_object_set_new(
                        co, "seconds",
                        json_integer((json_int_t)(lr->chain.certs[lr->chain.leaf].info.not_after -
                                                  clock_wall_now())));
                json_array_append_new(certs, co);
            }
        }
        json_t *to = json_object();
        json_object_set_new(to, "pool", json_string(tg->pool->name));
        json_object_set_new(to, "settings", json_string(tg->settings->cfg->name));
        json_object_set_new(to, "healthy", json_integer((json_int_t)healthy));
        json_object_set_new(to, "unhealthy", json_integer((json_int_t)unhealthy));
        json_array_append_new(targets, to);
    }
    pthread_mutex_unlock(&p->lock);
    json_object_set_new(o, "probe_results", codes);
    json_object_set_new(o, "targets", targets);
    json_object_set_new(o, "certificates", certs);
    return o;
}
