/* The /metrics document: Prometheus text format 0.0.4, names and labels per its conventions. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "diagnose/finding.h"

struct out {
    char *s;
    size_t len, cap;
    bool failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *grown = realloc(o->s, cap);
        if (!grown) {
            o->failed = true;
            return;
        }
        o->s = grown;
        o->cap = cap;
    }
}

/* Label values: backslash, double quote and newline escaped. */
static const char *label(const char *v, char *buf, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; v && v[i] && j + 3 < size; i++) {
        char ch = v[i];
        if (ch == '\\' || ch == '"') {
            buf[j++] = '\\';
            buf[j++] = ch;
        } else if (ch == '\n') {
            buf[j++] = '\\';
            buf[j++] = 'n';
        } else {
            buf[j++] = ch;
        }
    }
    buf[j] = '\0';
    return buf;
}

static uint64_t load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void histogram(struct out *o, const char *name, const char *labels,
                      const struct gateway_stats *st, size_t index, bool backend)
{
    uint64_t cum = 0, count = 0, sum_us = 0;
    uint64_t buckets[METRICS_BUCKETS] = {0};
    for (size_t w = 0; w < st->n_workers; w++) {
        const struct latency_histogram *h = backend ? &st->metrics[w]->backend_latency[index]
                                                    : &st->metrics[w]->client_latency[index];
        for (size_t b = 0; b < METRICS_BUCKETS; b++)
            buckets[b] += load(&h->buckets[b]);
        count += load(&h->count);
        sum_us += load(&h->sum_us);
    }
    for (size_t b = 0; b < METRICS_BUCKETS; b++) {
        cum += buckets[b];
        if (b < METRICS_BUCKETS - 1)
            put(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, metrics_bucket_ms[b] / 1000.0,
                (unsigned long long)cum);
        else
            put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    }
    put(o, "%s_sum{%s} %.6f\n", name, labels, (double)sum_us / 1e6);
    put(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)count);
}

char *admin_metrics_text(const struct runtime *rt, struct prober *prober,
                         const struct gateway_stats *st)
{
    struct out o = {0};
    char l1[256], l2[256], l3[256], labels[1024];
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

    put(&o, "# HELP gatehouse_requests_total Requests answered, by listener, rule and status "
            "class.\n# TYPE gatehouse_requests_total counter\n");
    for (size_t li = 0; li < rt->n_listeners; li++) {
        const struct rt_listener *l = &rt->listeners[li];
        for (int c = 0; c < 6; c++) {
            uint64_t n = 0;
            for (size_t w = 0; w < st->n_workers; w++)
                n += load(&st->metrics[w]->requests[li * 6 + (size_t)c]);
            put(&o,
                "gatehouse_requests_total{listener=\"%s\",rule=\"%s\",code_class=\"%s\"} %llu\n",
                label(l->cfg->name, l1, sizeof l1),
                label(l->rule ? l->rule->name : "", l2, sizeof l2), classes[c],
                (unsigned long long)n);
        }
    }
    for (int c = 0; c < 6; c++) {
        uint64_t n = 0;
        for (size_t w = 0; w < st->n_workers; w++)
            n += load(&st->metrics[w]->unmatched_requests[c]);
        put(&o, "gatehouse_requests_total{listener=\"\",rule=\"\",code_class=\"%s\"} %llu\n",
            classes[c], (unsigned long long)n);
    }

    put(&o, "# HELP gatehouse_backend_responses_total Responses received from backends, by "
            "server and status class.\n# TYPE gatehouse_backend_responses_total counter\n");
    for (size_t bi = 0; bi < rt->n_backends; bi++) {
        const struct rt_backend *b = &rt->backends[bi];
        for (int c = 1; c < 6; c++) {
            uint64_t n = 0;
            for (size_t w = 0; w < st->n_workers; w++)
                n += load(&st->metrics[w]->backend_responses[bi * 6 + (size_t)c]);
            put(&o,
                "gatehouse_backend_responses_total{pool=\"%s\",settings=\"%s\",server=\"%s\","
                "code_class=\"%s\"} %llu\n",
                label(b->pool->name, l1, sizeof l1), label(b->settings->cfg->name, l2, sizeof l2),
                label(b->label, l3, sizeof l3), classes[c], (unsigned long long)n);
        }
    }

    json_t *pm = prober ? prober_metrics_json(prober) : NULL;
    put(&o, "# HELP gatehouse_backend_healthy_hosts Backends whose last probes passed.\n"
            "# TYPE gatehouse_backend_healthy_hosts gauge\n");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(pm, "targets"), i, t)
    {
        put(&o, "gatehouse_backend_healthy_hosts{pool=\"%s\",settings=\"%s\"} %lld\n",
            label(json_string_value(json_object_get(t, "pool")), l1, sizeof l1),
            label(json_string_value(json_object_get(t, "settings")), l2, sizeof l2),
            json_integer_value(json_object_get(t, "healthy")));
    }
    put(&o, "# HELP gatehouse_backend_unhealthy_hosts Backends marked unhealthy by probes.\n"
            "# TYPE gatehouse_backend_unhealthy_hosts gauge\n");
    json_array_foreach(json_object_get(pm, "targets"), i, t)
    {
        put(&o, "gatehouse_backend_unhealthy_hosts{pool=\"%s\",settings=\"%s\"} %lld\n",
            label(json_string_value(json_object_get(t, "pool")), l1, sizeof l1),
            label(json_string_value(json_object_get(t, "settings")), l2, sizeof l2),
            json_integer_value(json_object_get(t, "unhealthy")));
    }
    put(&o, "# HELP gatehouse_probe_results_total Health probe results, by diagnosis code.\n"
            "# TYPE gatehouse_probe_results_total counter\n");
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(pm, "probe_results"), key, v)
    {
        put(&o, "gatehouse_probe_results_total{code=\"%s\"} %lld\n", key, json_integer_value(v));
    }
    put(&o, "# HELP gatehouse_backend_certificate_expiry_seconds Seconds until the certificate a "
            "backend presents expires.\n"
            "# TYPE gatehouse_backend_certificate_expiry_seconds gauge\n");
    json_array_foreach(json_object_get(pm, "certificates"), i, t)
    {
        put(&o,
            "gatehouse_backend_certificate_expiry_seconds{pool=\"%s\",settings=\"%s\","
            "server=\"%s\"} %lld\n",
            label(json_string_value(json_object_get(t, "pool")), l1, sizeof l1),
            label(json_string_value(json_object_get(t, "settings")), l2, sizeof l2),
            label(json_string_value(json_object_get(t, "server")), l3, sizeof l3),
            json_integer_value(json_object_get(t, "seconds")));
    }
    json_decref(pm);

    put(&o, "# HELP gatehouse_request_duration_seconds Time from the first request byte to the "
            "last response byte, by listener.\n"
            "# TYPE gatehouse_request_duration_seconds histogram\n");
    for (size_t li = 0; li < rt->n_listeners; li++) {
        snprintf(labels, sizeof labels, "listener=\"%s\"",
                 label(rt->listeners[li].cfg->name, l1, sizeof l1));
        histogram(&o, "gatehouse_request_duration_seconds", labels, st, li, false);
    }
    put(&o, "# HELP gatehouse_backend_response_duration_seconds Time from the request sent to "
            "the backend's response head, by server.\n"
            "# TYPE gatehouse_backend_response_duration_seconds histogram\n");
    for (size_t bi = 0; bi < rt->n_backends; bi++) {
        snprintf(labels, sizeof labels, "pool=\"%s\",settings=\"%s\",server=\"%s\"",
                 label(rt->backends[bi].pool->name, l3, sizeof l3),
                 label(rt->backends[bi].settings->cfg->name, l1, sizeof l1),
                 label(rt->backends[bi].label, l2, sizeof l2));
        histogram(&o, "gatehouse_backend_response_duration_seconds", labels, st, bi, true);
    }

    uint64_t hs = 0, retries = 0, upconns = 0, fails[TLS_FAIL_REASONS] = {0};
    int64_t open = 0;
    for (size_t w = 0; w < st->n_workers; w++) {
        const struct worker_metrics *m = st->metrics[w];
        hs += load(&m->tls_handshakes);
        retries += load(&m->upstream_retries);
        upconns += load(&m->upstream_connections);
        open += atomic_load_explicit(&m->open_connections, memory_order_relaxed);
        for (int r = 0; r < TLS_FAIL_REASONS; r++)
            fails[r] += load(&m->tls_failures[r]);
    }
    static const char *const reasons[] = {"handshake", "timeout", "closed"};
    put(&o,
        "# HELP gatehouse_tls_handshakes_total Client TLS handshakes completed.\n"
        "# TYPE gatehouse_tls_handshakes_total counter\ngatehouse_tls_handshakes_total %llu\n",
        (unsigned long long)hs);
    put(&o, "# HELP gatehouse_tls_handshake_failures_total Client TLS handshakes that failed, by "
            "reason.\n# TYPE gatehouse_tls_handshake_failures_total counter\n");
    for (int r = 0; r < TLS_FAIL_REASONS; r++)
        put(&o, "gatehouse_tls_handshake_failures_total{reason=\"%s\"} %llu\n", reasons[r],
            (unsigned long long)fails[r]);
    put(&o,
        "# HELP gatehouse_open_connections Client connections open now.\n"
        "# TYPE gatehouse_open_connections gauge\ngatehouse_open_connections %lld\n",
        (long long)open);
    put(&o,
        "# HELP gatehouse_upstream_retries_total Requests replayed once because a reused "
        "backend connection was closed under them.\n"
        "# TYPE gatehouse_upstream_retries_total counter\n"
        "gatehouse_upstream_retries_total %llu\n",
        (unsigned long long)retries);
    put(&o,
        "# HELP gatehouse_upstream_connections_total Backend connections opened.\n"
        "# TYPE gatehouse_upstream_connections_total counter\n"
        "gatehouse_upstream_connections_total %llu\n",
        (unsigned long long)upconns);
    if (o.failed) {
        free(o.s);
        return NULL;
    }
    return o.s;
}
