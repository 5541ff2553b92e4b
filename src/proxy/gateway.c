#include "proxy/gateway.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "config/config.h"
#include "health/prober.h"
#include "core/log.h"
#include "proxy/access_log.h"
#include "proxy/runtime.h"
#include "proxy/worker.h"

#define DRAIN_GRACE_S 30.0

static const char usage_text[] =
        "usage: gatehouse run -c FILE [--workers N]\n"
        "\n"
        "Runs the gateway with the config FILE (see `gatehouse check`). SIGTERM or SIGINT stop\n"
        "accepting connections, let in-flight requests finish (up to 30 s) and exit.\n"
        "\n"
        "  -c, --config FILE  the config file (YAML)\n"
        "  --workers N        worker threads (overrides the config; default: one per core)\n"
        "  -h, --help         this text\n";

static unsigned default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int gateway_cmd_main(int argc, char **argv)
{
    static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"workers", required_argument, NULL, 'w'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    long workers_flag = 0;
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
            workers_flag = strtol(optarg, &end, 10);
            if (*end || workers_flag < 1 || workers_flag > CFG_MAX_WORKERS) {
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

    struct cfg_errors errs;
    cfg_errors_init(&errs);
    struct cfg *cfg = cfg_load(path, &errs);
    cfg_errors_print(&errs, stderr);
    cfg_errors_free(&errs);
    if (!cfg) {
        fprintf(stderr, "gatehouse run: %s is invalid; nothing was started\n", path);
        return 1;
    }
    char err[1024];
    struct runtime *rt = runtime_new(cfg, err, sizeof err);
    if (!rt) {
        fprintf(stderr, "gatehouse run: %s\n", err);
        cfg_free(cfg);
        return 1;
    }
    struct access_log log;
    if (access_log_open(&log, cfg->access_log.enabled, cfg->access_log.path) != 0) {
        fprintf(stderr, "gatehouse run: %s:%d: access-log: cannot open '%s': %m\n", cfg->path,
                cfg->access_log.pos.line, cfg->access_log.path);
        runtime_free(rt);
        return 1;
    }

    /* Workers must not take the signals: the main thread waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned n = workers_flag ? (unsigned)workers_flag
                              : (cfg->workers ? cfg->workers : default_workers());
    struct worker **workers = calloc(n, sizeof *workers);
    int rc = 0;
    unsigned started = 0;
    for (unsigned i = 0; i < n && workers; i++) {
        /* The last 10,000 gateway-generated errors, shared out among the workers. */
        workers[i] = worker_new((int)i, rt, &log, 10000 / n + 1, err, sizeof err);
        if (!workers[i]) {
            fprintf(stderr, "gatehouse run: %s\n", err);
            rc = 1;
            break;
        }
    }
    if (!workers)
        rc = 1;
    struct prober *prober = NULL;
    struct admin *admin = NULL;
    struct worker_metrics **metrics = calloc(n, sizeof *metrics);
    struct request_ring **rings = calloc(n, sizeof *rings);
    if (rc == 0 && (!metrics || !rings)) {
        fprintf(stderr, "gatehouse run: out of memory\n");
        rc = 1;
    }
    if (rc == 0) {
        for (unsigned i = 0; i < n; i++) {
            metrics[i] = worker_metrics(workers[i]);
            rings[i] = worker_ring(workers[i]);
        }
        prober = prober_new(rt, PROBER_EXPIRY_WARNING, err, sizeof err);
        if (!prober) {
            fprintf(stderr, "gatehouse run: health prober: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0) {
        struct gateway_stats stats = {.metrics = metrics, .rings = rings, .n_workers = n};
        admin = admin_new(rt, prober, &stats, err, sizeof err);
        if (!admin) {
            fprintf(stderr, "gatehouse run: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0 && (prober_start(prober) != 0 || admin_start(admin) != 0)) {
        fprintf(stderr, "gatehouse run: cannot start the prober or admin threads\n");
        rc = 1;
    }
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        if (worker_start(workers[i]) != 0) {
            fprintf(stderr, "gatehouse run: cannot start worker thread %u\n", i);
            rc = 1;
            break;
        }
        started++;
    }
    if (rc == 0) {
        log_info("serving %s: %zu listener(s) on %zu port(s), %zu backend(s), %u worker(s); "
                 "admin on %s:%u",
                 cfg->path, rt->n_listeners, rt->n_ports, rt->n_backends, n,
                 cfg->admin.listen.host ? cfg->admin.listen.host : "127.0.0.1",
                 cfg->admin.listen.port ? cfg->admin.listen.port : 9090);
        for (;;) {
            int sig = 0;
            sigwait(&set, &sig);
            if (sig == SIGHUP) {
                log_warn("SIGHUP: configuration reload is not supported yet; still serving %s",
                         cfg->path);
                continue;
            }
            log_info("%s: draining in-flight requests (up to %.0f s)",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", DRAIN_GRACE_S);
            break;
        }
    }
    /* The admin thread reads the workers' blocks: stop it before they are freed. */
    admin_stop_free(admin);
    for (unsigned i = 0; i < started; i++)
        worker_drain(workers[i], DRAIN_GRACE_S);
    for (unsigned i = 0; workers && i < n; i++) {
        if (!workers[i])
            continue;
        if (i < started) {
            worker_join_free(workers[i]);
        } else {
            /* Created but never started: there is no thread to join. */
            worker_drain(workers[i], 0);
        }
    }
    prober_stop_free(prober);
    free(workers);
    free(metrics);
    free(rings);
    access_log_close(&log);
    runtime_free(rt);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
