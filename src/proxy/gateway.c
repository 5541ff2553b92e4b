#include "proxy/gateway.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "config/config.h"
#include "core/log.h"
#include "health/prober.h"
#include "proxy/access_log.h"
#include "proxy/runtime.h"
#include "proxy/worker.h"

#define DRAIN_GRACE_S       30.0
#define FIRST_ROUND_WAIT_MS 3000

struct gateway {
    struct runtime *rt;
    struct access_log log;
    struct worker **workers;
    unsigned n_workers, started;
    struct worker_metrics **metrics;
    struct request_ring **rings;
    struct prober *prober;
    struct admin *admin;
};

static unsigned default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

struct prober *gateway_prober(struct gateway *gw)
{
    return gw->prober;
}

void gateway_stop(struct gateway *gw, double grace_s)
{
    if (!gw)
        return;
    /* The admin thread reads the workers' blocks: stop it before they are freed. */
    admin_stop_free(gw->admin);
    for (unsigned i = 0; i < gw->started; i++)
        worker_drain(gw->workers[i], grace_s);
    for (unsigned i = 0; i < gw->started; i++)
        worker_join_free(gw->workers[i]);
    /* Workers created but never started have no thread: start and stop them at once. */
    for (unsigned i = gw->started; gw->workers && i < gw->n_workers; i++) {
        if (gw->workers[i] && worker_start(gw->workers[i]) == 0) {
            worker_drain(gw->workers[i], 0);
            worker_join_free(gw->workers[i]);
        }
    }
    prober_stop_free(gw->prober);
    free(gw->workers);
    free(gw->metrics);
    free(gw->rings);
    access_log_close(&gw->log);
    runtime_free(gw->rt);
    free(gw);
}

/* A reload keeps what the previous generation knew of each backend's health, so traffic
 * does not go to a server known to be down while the new prober takes its first look. */
static void carry_health(struct runtime *next, const struct runtime *prev)
{
    for (size_t i = 0; prev && i < next->n_backends; i++) {
        struct rt_backend *b = &next->backends[i];
        for (size_t j = 0; j < prev->n_backends; j++) {
            const struct rt_backend *o = &prev->backends[j];
            if (strcmp(b->label, o->label) == 0 &&
                strcmp(b->settings->cfg->name, o->settings->cfg->name) == 0) {
                atomic_store(&b->health, atomic_load(&o->health));
                atomic_store(&b->last_code, atomic_load(&o->last_code));
                break;
            }
        }
    }
}

struct gateway *gateway_start(const char *path, unsigned workers, FILE *diag,
                              const struct gateway *previous)
{
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    struct cfg *cfg = cfg_load(path, &errs);
    cfg_errors_print(&errs, diag);
    cfg_errors_free(&errs);
    if (!cfg) {
        fprintf(diag, "gatehouse: %s is invalid; nothing was started\n", path);
        return NULL;
    }
    char err[1024];
    struct gateway *gw = calloc(1, sizeof *gw);
    if (!gw) {
        cfg_free(cfg);
        return NULL;
    }
    gw->log.fd = -1;
    gw->rt = runtime_new(cfg, err, sizeof err);
    if (!gw->rt) {
        fprintf(diag, "gatehouse: %s\n", err);
        cfg_free(cfg);
        free(gw);
        return NULL;
    }
    carry_health(gw->rt, previous ? previous->rt : NULL);
    if (access_log_open(&gw->log, cfg->access_log.enabled, cfg->access_log.path) != 0) {
        fprintf(diag, "gatehouse: %s:%d: access-log: cannot open '%s': %m\n", cfg->path,
                cfg->access_log.pos.line, cfg->access_log.path);
        goto fail;
    }
    unsigned n = workers ? workers : (cfg->workers ? cfg->workers : default_workers());
    gw->n_workers = n;
    gw->workers = calloc(n, sizeof *gw->workers);
    gw->metrics = calloc(n, sizeof *gw->metrics);
    gw->rings = calloc(n, sizeof *gw->rings);
    if (!gw->workers || !gw->metrics || !gw->rings) {
        fprintf(diag, "gatehouse: out of memory\n");
        goto fail;
    }
    for (unsigned i = 0; i < n; i++) {
        /* The last 10,000 gateway-generated errors, shared out among the workers. */
        gw->workers[i] = worker_new((int)i, gw->rt, &gw->log, 10000 / n + 1, err, sizeof err);
        if (!gw->workers[i]) {
            fprintf(diag, "gatehouse: %s\n", err);
            goto fail;
        }
        gw->metrics[i] = worker_metrics(gw->workers[i]);
        gw->rings[i] = worker_ring(gw->workers[i]);
    }
    gw->prober =
            prober_new(gw->rt, (int)(cfg->health.certificate_expiry_warning_ms / (86400ull * 1000)),
                       err, sizeof err);
    if (!gw->prober) {
        fprintf(diag, "gatehouse: health prober: %s\n", err);
        goto fail;
    }
    struct gateway_stats stats = {.metrics = gw->metrics, .rings = gw->rings, .n_workers = n};
    gw->admin = admin_new(gw->rt, gw->prober, &stats, err, sizeof err);
    if (!gw->admin) {
        fprintf(diag, "gatehouse: %s\n", err);
        goto fail;
    }
    if (prober_start(gw->prober) != 0 || admin_start(gw->admin) != 0) {
        fprintf(diag, "gatehouse: cannot start the prober or admin threads\n");
        goto fail;
    }
    /* Only servers probed healthy get traffic: give the first round (which starts at once) a
     * moment, so that a fresh gateway does not answer 502 for backends that are fine. */
    for (int waited = 0; waited < FIRST_ROUND_WAIT_MS && !prober_first_round_done(gw->prober);
         waited += 10) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (unsigned i = 0; i < n; i++) {
        if (worker_start(gw->workers[i]) != 0) {
            fprintf(diag, "gatehouse: cannot start worker thread %u\n", i);
            goto fail;
        }
        gw->started++;
    }
    log_info("serving %s: %zu listener(s) on %zu port(s), %zu backend(s), %u worker(s); admin "
             "on %s:%u",
             cfg->path, gw->rt->n_listeners, gw->rt->n_ports, gw->rt->n_backends, n,
             cfg->admin.listen.host ? cfg->admin.listen.host : "127.0.0.1",
             cfg->admin.listen.port ? cfg->admin.listen.port : 9090);
    return gw;
fail:
    gateway_stop(gw, 0);
    return NULL;
}

/* Servers the reload removed are shown as Draining while the old generation drains. */
static void mark_removed_draining(struct gateway *next, const struct gateway *old)
{
    time_t until = time(NULL) + (time_t)DRAIN_GRACE_S;
    for (size_t j = 0; j < old->rt->n_backends; j++) {
        const struct rt_backend *o = &old->rt->backends[j];
        bool kept = false;
        for (size_t i = 0; i < next->rt->n_backends && !kept; i++) {
            const struct rt_backend *b = &next->rt->backends[i];
            kept = strcmp(b->label, o->label) == 0 &&
                   strcmp(b->settings->cfg->name, o->settings->cfg->name) == 0 &&
                   strcmp(b->pool->name, o->pool->name) == 0;
        }
        if (!kept)
            prober_add_draining(next->prober, o->pool->name, o->settings->cfg->name, o->label,
                                until);
    }
}

static void *drain_in_background(void *arg)
{
    gateway_stop(arg, DRAIN_GRACE_S);
    return NULL;
}

static const char usage_text[] =
        "usage: gatehouse run -c FILE [--workers N]\n"
        "\n"
        "Runs the gateway with the config FILE (see `gatehouse check`). SIGHUP reloads FILE\n"
        "(an invalid one is refused and the running config stays). SIGTERM or SIGINT stop\n"
        "accepting connections, let in-flight requests finish (up to 30 s) and exit.\n"
        "\n"
        "  -c, --config FILE  the config file (YAML)\n"
        "  --workers N        worker threads (overrides the config; default: one per core)\n"
        "  -h, --help         this text\n";

int gateway_cmd_main(int argc, char **argv)
{
    static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"workers", required_argument, NULL, 'w'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    long workers = 0;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'w': {
            char *end;
            workers = strtol(optarg, &end, 10);
            if (*end || workers < 1 || workers > CFG_MAX_WORKERS) {
                fprintf(stderr, "gatehouse run: --workers '%s': expected 1 to %d\n", optarg,
                        CFG_MAX_WORKERS);
                return 2;
            }
            break;
        }
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "gatehouse run: unknown option or missing value '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "gatehouse run: missing -c FILE (the config to run)\n");
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "gatehouse run: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    /* Threads must not take the signals: this thread waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct gateway *gw = gateway_start(path, (unsigned)workers, stderr, NULL);
    if (!gw)
        return 1;
    for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGHUP) {
            /* Reload: the new config is loaded and validated on the side, its listeners open
             * beside the old ones (SO_REUSEPORT), then the old generation drains in the
             * background. A bad config is refused and the running one stays. */
            log_info("SIGHUP: reloading %s", path);
            struct gateway *next = gateway_start(path, (unsigned)workers, stderr, gw);
            if (!next) {
                log_error("reload refused: %s is invalid or cannot be served; still serving the "
                          "previous configuration",
                          path);
                continue;
            }
            mark_removed_draining(next, gw);
            pthread_t t;
            if (pthread_create(&t, NULL, drain_in_background, gw) == 0)
                pthread_detach(t);
            else
                gateway_stop(gw, DRAIN_GRACE_S);
            gw = next;
            log_info("reloaded %s", path);
            continue;
        }
        log_info("%s: draining in-flight requests (up to %.0f s)",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", DRAIN_GRACE_S);
        break;
    }
    gateway_stop(gw, DRAIN_GRACE_S);
    log_info("stopped");
    return 0;
}
