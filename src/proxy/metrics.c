#include "proxy/metrics.h"

#include <stdlib.h>
#include <string.h>

const double metrics_bucket_ms[METRICS_BUCKETS - 1] = {1,   2.5, 5,    10,   25,   50,
                                                       100, 250, 1000, 2500, 10000};

int metrics_init(struct worker_metrics *m, const struct runtime *rt)
{
    memset(m, 0, sizeof *m);
    m->n_listeners = rt->n_listeners;
    m->n_backends = rt->n_backends;
    m->requests = calloc((rt->n_listeners + 1) * 6, sizeof *m->requests);
    m->backend_responses = calloc((rt->n_backends + 1) * 6, sizeof *m->backend_responses);
    m->client_latency = calloc(rt->n_listeners + 1, sizeof *m->client_latency);
    m->backend_latency = calloc(rt->n_backends + 1, sizeof *m->backend_latency);
    if (!m->requests || !m->backend_responses || !m->client_latency || !m->backend_latency) {
        metrics_free(m);
        return -1;
    }
    return 0;
}

void metrics_free(struct worker_metrics *m)
{
    free(m->requests);
    free(m->backend_responses);
    free(m->client_latency);
    free(m->backend_latency);
    memset(m, 0, sizeof *m);
}

void metrics_observe(struct latency_histogram *h, double ms)
{
    size_t i = 0;
    while (i < METRICS_BUCKETS - 1 && ms > metrics_bucket_ms[i])
        i++;
    metrics_add(&h->buckets[i], 1);
    metrics_add(&h->count, 1);
    metrics_add(&h->sum_us, ms > 0 ? (uint64_t)(ms * 1000.0) : 0);
}

int request_ring_init(struct request_ring *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->records = calloc(cap ? cap : 1, sizeof *r->records);
    if (!r->records)
        return -1;
    r->cap = cap ? cap : 1;
    pthread_mutex_init(&r->lock, NULL);
    return 0;
}

void request_ring_free(struct request_ring *r)
{
    if (!r->records)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r->records);
    r->records = NULL;
}

void request_ring_add(struct request_ring *r, const struct request_record *rec)
{
    pthread_mutex_lock(&r->lock);
    r->records[r->next] = *rec;
    r->next = (r->next + 1) % r->cap;
    if (r->count < r->cap)
        r->count++;
    pthread_mutex_unlock(&r->lock);
}

bool request_ring_find(struct request_ring *r, const char *id, struct request_record *out)
{
    bool found = false;
    pthread_mutex_lock(&r->lock);
    for (size_t k = 0; k < r->count && !found; k++) {
        size_t i = (r->next + r->cap - 1 - k) % r->cap;
        if (strcmp(r->records[i].id, id) == 0) {
            *out = r->records[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}
