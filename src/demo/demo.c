#include "demo/demo.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/health_cmd.h"
#include "core/log.h"
#include "demo/demo_backend.h"
#include "demo/demo_pki.h"
#include "health/prober.h"
#include "proxy/gateway.h"

static const char usage_text[] =
        "usage: gatehouse demo [--keep] [--dir DIR] [--port PORT] [--admin-port PORT]\n"
        "\n"
        "Starts a zero-setup demonstration: a private PKI, four local HTTPS backends that\n"
        "reproduce the situations users hit (full chain; leaf only; wrong name; a default\n"
        "certificate returned without SNI), and the real gateway in front of them with its\n"
        "health probes and dashboard. Ctrl-C stops everything.\n"
        "\n"
        "  --keep             keep the generated config and PKI (printed at exit)\n"
        "  --dir DIR          write them to DIR instead of a temporary directory (implies --keep)\n"
        "  --port PORT        the HTTPS listener's port (default 8443)\n"
        "  --admin-port PORT  the admin listener's port (default 9090)\n"
        "  -h, --help         this text\n";

enum { B_HEALTHY, B_LEAF_ONLY, B_WRONG_NAME, B_ILB, B_COUNT };

static const char *const backend_names[B_COUNT] = {"healthy", "leaf-only", "wrong-name", "ilb"};

static const char *const backend_stories[B_COUNT] = {
        "sends its full chain (leaf + intermediate)",
        "sends only its leaf: the intermediate is missing (seed 000)",
        "presents a certificate for another name (seed 002)",
        "returns a load-balancer default certificate when no SNI is sent (seeds 001, 003)",
};

static const char *const demo_files[] = {"root.pem",          "intermediate.pem", "app.pem",
                                         "gateway-chain.pem", "gateway.key",      "gatehouse.yaml",
                                         "access.log"};

struct pki {
    struct demo_cert root, inter, app, other, ilb, gateway;
};

static int make_pki(struct pki *k)
{
    const char *aia = "http://pki.demo.test/intermediate.cer";
    struct demo_cert_spec root = {
            .cn = "Gatehouse Demo Root CA", .ca = true, .valid_from_days = -1, .valid_days = 3650};
    struct demo_cert_spec inter = {.cn = "Gatehouse Demo Intermediate CA",
                                   .ca = true,
                                   .aia_ca_issuers = "http://pki.demo.test/root.cer",
                                   .valid_from_days = -1,
                                   .valid_days = 1825};
    struct demo_cert_spec app = {.cn = "app.demo.test",
                                 .sans = "DNS:app.demo.test",
                                 .aia_ca_issuers = aia,
                                 .valid_from_days = -1,
                                 .valid_days = 397};
    struct demo_cert_spec other = {.cn = "www.unrelated.test",
                                   .sans = "DNS:www.unrelated.test",
                                   .aia_ca_issuers = aia,
                                   .valid_from_days = -1,
                                   .valid_days = 397};
    struct demo_cert_spec ilb = {.cn = "ilb-default.internal",
                                 .sans = "DNS:ilb-default.internal",
                                 .aia_ca_issuers = aia,
                                 .valid_from_days = -1,
                                 .valid_days = 397};
    struct demo_cert_spec gw = {.cn = "Gatehouse Demo Gateway",
                                .sans = "DNS:*.demo.test,DNS:localhost,IP:127.0.0.1",
                                .aia_ca_issuers = aia,
                                .valid_from_days = -1,
                                .valid_days = 397};
    if (demo_cert_make(&root, NULL, &k->root) || demo_cert_make(&inter, &k->root, &k->inter) ||
        demo_cert_make(&app, &k->inter, &k->app) || demo_cert_make(&other, &k->inter, &k->other) ||
        demo_cert_make(&ilb, &k->inter, &k->ilb) || demo_cert_make(&gw, &k->inter, &k->gateway))
        return -1;
    return 0;
}

static void free_pki(struct pki *k)
{
    demo_cert_free(&k->root);
    demo_cert_free(&k->inter);
    demo_cert_free(&k->app);
    demo_cert_free(&k->other);
    demo_cert_free(&k->ilb);
    demo_cert_free(&k->gateway);
}

static const char *join(char *buf, size_t size, const char *dir, const char *name)
{
    size_t d = strlen(dir), n = strlen(name);
    if (d + n + 2 > size)
        return "/nonexistent/too-long";
    memcpy(buf, dir, d);
    buf[d] = '/';
    memcpy(buf + d + 1, name, n + 1);
    return buf;
}

static int write_files(const char *dir, const struct pki *k, const uint16_t *ports, unsigned port,
                       unsigned admin_port)
{
    char path[4200];
    X509 *gw_chain[] = {k->gateway.cert, k->inter.cert};
#define P(name) join(path, sizeof path, dir, name)
    if (demo_write_pem(P("root.pem"), &k->root.cert, 1) ||
        demo_write_pem(P("intermediate.pem"), &k->inter.cert, 1) ||
        demo_write_pem(P("app.pem"), &k->app.cert, 1) ||
        demo_write_pem(P("gateway-chain.pem"), gw_chain, 2) ||
        demo_write_key(P("gateway.key"), k->gateway.key))
        return -1;
    FILE *f = fopen(P("gatehouse.yaml"), "w");
#undef P
    if (!f)
        return -1;
    fprintf(f,
            "# Written by `gatehouse demo`. Run it again with: gatehouse run -c %s/gatehouse.yaml\n"
            "# (the demo's backends live inside `gatehouse demo`: without it they are down).\n"
            "admin: { listen: 127.0.0.1:%u }         # health API, metrics, dashboard\n"
            "access-log: { path: access.log }       # JSON lines, relative to this file\n"
            "\n"
            "certificates:                          # the gateway's own (listener) certificate\n"
            "  demo-gateway: { pem: gateway-chain.pem, key: gateway.key }\n"
            "trusted-roots:                         # v2 style: the backends' chain must end here\n"
            "  demo-root: root.pem\n"
            "auth-certs:                            # v1 style: the backend's exact certificate\n"
            "  app-cert: app.pem\n"
            "\n"
            "# One HTTPS port, four sites told apart by host name (SNI and Host).\n"
            "listeners:\n",
            dir, admin_port);
    for (int i = 0; i < B_COUNT; i++)
        fprintf(f,
                "  - { name: %s, port: %u, address: 127.0.0.1, protocol: https, certificate: "
                "demo-gateway,\n      host-names: [%s.demo.test] }\n",
                backend_names[i], port, i == B_HEALTHY ? "app" : backend_names[i]);
    fprintf(f, "\nbackend-pools:\n");
    for (int i = 0; i < B_COUNT; i++)
        fprintf(f, "  - { name: %s, servers: [\"127.0.0.1:%u\"] }   # %s\n", backend_names[i],
                ports[i], backend_stories[i]);
    fprintf(f, "\nbackend-settings:\n"
               "  # The host name is what the gateway sends as SNI and Host, and the name the\n"
               "  # certificate must cover.\n"
               "  - { name: verified, protocol: https, port: 443, host-name: app.demo.test,\n"
               "      trusted-roots: [demo-root], probe: fast }\n"
               "  # The ILB case: members by IP, no host name, so no SNI is sent; the uploaded\n"
               "  # certificate is the app's, but without SNI the backend presents its default.\n"
               "  - { name: allow-listed, protocol: https, port: 443, auth-certs: [app-cert],\n"
               "      probe: fast-by-ip }\n"
               "\n"
               "probes:\n"
               "  - { name: fast, protocol: https, pick-host-name-from-backend-settings: true,\n"
               "      path: /, interval: 5s, timeout: 5s, unhealthy-threshold: 3 }\n"
               "  - { name: fast-by-ip, protocol: https, host: 127.0.0.1, path: /, interval: 5s,\n"
               "      timeout: 5s, unhealthy-threshold: 3 }\n"
               "\nrules:\n");
    for (int i = 0; i < B_COUNT; i++)
        fprintf(f,
                "  - { name: %s, listener: %s, priority: %d, backend-pool: %s,\n"
                "      backend-settings: %s }\n",
                backend_names[i], backend_names[i], 100 + 10 * i, backend_names[i],
                i == B_ILB ? "allow-listed" : "verified");
    return fclose(f) == 0 ? 0 : -1;
}

static void remove_files(const char *dir)
{
    char path[4200];
    for (size_t i = 0; i < sizeof demo_files / sizeof demo_files[0]; i++)
        unlink(join(path, sizeof path, dir, demo_files[i]));
    rmdir(dir);
}

static bool all_probed(json_t *doc)
{
    size_t i, j, k;
    json_t *pool, *settings, *server;
    json_array_foreach(json_object_get(doc, "pools"), i, pool)
            json_array_foreach(json_object_get(pool, "settings"), j, settings)
                    json_array_foreach(json_object_get(settings, "servers"), k, server)
    {
        if (json_is_null(json_object_get(server, "code")))
            return false;
    }
    return true;
}

static void print_fixes(json_t *doc)
{
    size_t i, j, k;
    json_t *pool, *settings, *server;
    json_array_foreach(json_object_get(doc, "pools"), i, pool)
            json_array_foreach(json_object_get(pool, "settings"), j, settings)
                    json_array_foreach(json_object_get(settings, "servers"), k, server)
    {
        const char *health = json_string_value(json_object_get(server, "health"));
        if (!health || strcmp(health, "Healthy") == 0)
            continue;
        printf("\n  %s (%s): %s\n", json_string_value(json_object_get(pool, "name")),
               json_string_value(json_object_get(server, "code")),
               json_string_value(json_object_get(server, "message")));
        printf("    Fix: %s\n", json_string_value(json_object_get(server, "remedy")));
    }
}

int demo_cmd_main(int argc, char **argv)
{
    static const struct option opts[] = {
            {"keep", no_argument, NULL, 'k'},       {"dir", required_argument, NULL, 'd'},
            {"port", required_argument, NULL, 'p'}, {"admin-port", required_argument, NULL, 'a'},
            {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    bool keep = false;
    const char *dir_arg = NULL;
    long port = 8443, admin_port = 9090;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'k':
            keep = true;
            break;
        case 'd':
            dir_arg = optarg;
            keep = true;
            break;
        case 'p':
        case 'a': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 65535) {
                fprintf(stderr, "gatehouse demo: %s '%s': expected a port from 1 to 65535\n",
                        ch == 'p' ? "--port" : "--admin-port", optarg);
                return 2;
            }
            if (ch == 'p')
                port = v;
            else
                admin_port = v;
            break;
        }
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "gatehouse demo: unknown option or missing value '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char dir[4096];
    if (dir_arg) {
        if (mkdir(dir_arg, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "gatehouse demo: --dir %s: %s\n", dir_arg, strerror(errno));
            return 2;
        }
        if (!realpath(dir_arg, dir)) {
            fprintf(stderr, "gatehouse demo: --dir %s: %s\n", dir_arg, strerror(errno));
            return 2;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/gatehouse-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "gatehouse demo: cannot create a temporary directory: %s\n",
                    strerror(errno));
            return 1;
        }
    }

    int rc = 1;
    struct pki k;
    memset(&k, 0, sizeof k);
    struct demo_backends *backends = NULL;
    struct gateway *gw = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    STACK_OF(X509) *none = sk_X509_new_null();
    if (!chain || !none || make_pki(&k) != 0) {
        fprintf(stderr, "gatehouse demo: cannot make the demo PKI\n");
        goto out;
    }
    sk_X509_push(chain, k.inter.cert);
    struct demo_backend_spec specs[B_COUNT] = {
            [B_HEALTHY] = {.name = "healthy", .cert = k.app.cert, .chain = chain, .key = k.app.key},
            [B_LEAF_ONLY] = {.name = "leaf-only",
                             .cert = k.app.cert,
                             .chain = none,
                             .key = k.app.key},
            [B_WRONG_NAME] = {.name = "wrong-name",
                              .cert = k.other.cert,
                              .chain = chain,
                              .key = k.other.key},
            [B_ILB] = {.name = "ilb",
                       .cert = k.ilb.cert,
                       .chain = chain,
                       .key = k.ilb.key,
                       .sni_name = "app.demo.test",
                       .sni_cert = k.app.cert,
                       .sni_chain = chain,
                       .sni_key = k.app.key},
    };
    char err[512];
    backends = demo_backends_start(specs, B_COUNT, err, sizeof err);
    if (!backends) {
        fprintf(stderr, "gatehouse demo: %s\n", err);
        goto out;
    }
    uint16_t ports[B_COUNT];
    for (int i = 0; i < B_COUNT; i++)
        ports[i] = demo_backend_port(backends, (size_t)i);
    if (write_files(dir, &k, ports, (unsigned)port, (unsigned)admin_port) != 0) {
        fprintf(stderr, "gatehouse demo: cannot write the demo files in %s: %s\n", dir,
                strerror(errno));
        goto out;
    }
    char config[4200];
    join(config, sizeof config, dir, "gatehouse.yaml");
    log_set_level(LOG_WARN); /* the demo prints its own story */
    gw = gateway_start(config, 0, stderr, NULL);
    if (!gw) {
        fprintf(stderr,
                "gatehouse demo: the gateway did not start (is port %ld or %ld in use? "
                "try --port and --admin-port)\n",
                port, admin_port);
        goto out;
    }

    printf("\nGatehouse demo -- everything below runs on this machine, nothing is simulated.\n\n");
    printf("Backends (in-process HTTPS servers, private PKI in %s):\n", dir);
    for (int i = 0; i < B_COUNT; i++)
        printf("  %-11s 127.0.0.1:%-5u %s\n", backend_names[i], ports[i], backend_stories[i]);
    printf("Gateway: https://127.0.0.1:%ld (sites *.demo.test), admin http://127.0.0.1:%ld\n", port,
           admin_port);
    fflush(stdout);

    /* Wait for the first probe of every backend (they start at once). */
    json_t *doc = NULL;
    for (int tries = 0; tries < 100; tries++) {
        json_decref(doc);
        doc = prober_health_json(gateway_prober(gw), NULL);
        if (doc && all_probed(doc))
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    printf("\nBackend health (the same diagnosis engine as `gatehouse probe`):\n\n");
    health_print_table(stdout, doc, isatty(STDOUT_FILENO) && !getenv("NO_COLOR"));
    print_fixes(doc);
    json_decref(doc);

    printf("\nTry it:\n");
    printf("  curl --cacert %s/root.pem --resolve app.demo.test:%ld:127.0.0.1 "
           "https://app.demo.test:%ld/\n      -> 200 \"hello from healthy\"\n",
           dir, port, port);
    printf("  curl -i --cacert %s/root.pem --resolve leaf-only.demo.test:%ld:127.0.0.1 "
           "https://leaf-only.demo.test:%ld/\n      -> 502 Bad Gateway, with an X-Request-Id\n",
           dir, port, port);
    printf("  curl http://127.0.0.1:%ld/requests/<X-Request-Id>   -> why that request failed\n",
           admin_port);
    printf("  gatehouse health --admin http://127.0.0.1:%ld        -> this table, live\n",
           admin_port);
    printf("  gatehouse probe https://127.0.0.1:%u/ --host app.demo.test --trusted-root "
           "%s/root.pem\n",
           ports[B_LEAF_ONLY], dir);
    printf("\nDashboard: http://127.0.0.1:%ld/\n\nCtrl-C stops everything%s.\n", admin_port,
           keep ? "" : " and removes the temporary files");
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    rc = 0;
out:
    gateway_stop(gw, 1.0);
    demo_backends_stop(backends);
    sk_X509_free(chain);
    sk_X509_free(none);
    free_pki(&k);
    if (keep) {
        printf("\nThe demo's config and PKI are kept in %s (gatehouse run -c "
               "%s/gatehouse.yaml).\n",
               dir, dir);
    } else {
        remove_files(dir);
    }
    return rc;
}
