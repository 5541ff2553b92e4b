/*
 * Unit tests of src/config: the DESIGN.md config and the example load with the right values and
 * defaults; every kind of error comes out at the right line:col with the right message; value
 * syntax edge cases; suggestions; the `gatehouse check` command's exit codes and JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/cfg_internal.h"
#include "config/check_cmd.h"
#include "config/config.h"

/* ---- fixtures ------------------------------------------------------------------------------- */

static char tmpdir[128];

static void write_file(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void make_dir(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gatehouse-test-config-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    make_dir("certs");
    static const char *const files[] = {"certs/gw-chain.pem", "certs/gw.key", "certs/root.cer",
                                        "certs/ilb.cer",      "certs/gw.pfx", "certs/pw.txt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        write_file(files[i], "dummy\n");
    make_dir("certs/adir");
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Loads text as <tmpdir>/test.yaml. */
static struct cfg *load_text(const char *yaml, struct cfg_errors *errs)
{
    write_file("test.yaml", yaml);
    char path[512];
    snprintf(path, sizeof path, "%s/test.yaml", tmpdir);
    cfg_errors_init(errs);
    return cfg_load(path, errs);
}

static void dump_errors(const struct cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        char line[2048];
        cfg_error_format(&errs->v[i], line, sizeof line);
        print_message("    %s\n", line);
    }
}

static bool has_problem(const struct cfg_errors *errs, enum cfg_severity sev, const char *want)
{
    for (size_t i = 0; i < errs->count; i++) {
        char line[2048];
        cfg_error_format(&errs->v[i], line, sizeof line);
        if (errs->v[i].severity == sev && strstr(line, want))
            return true;
    }
    return false;
}

/* A valid config with no warnings, the base of most cases below (10 lines). */
#define BASE_CERTS                                                                                 \
    "certificates:\n"                                                                              \
    "  gw: { pem: certs/gw-chain.pem, key: certs/gw.key }\n"
#define BASE_LISTENERS                                                                             \
    "listeners:\n"                                                                                 \
    "  - { name: main, port: 8443, protocol: https, certificate: gw }\n"
#define BASE_POOLS                                                                                 \
    "backend-pools:\n"                                                                             \
    "  - { name: app, servers: [127.0.0.1:9443] }\n"
#define BASE_SETTINGS                                                                              \
    "backend-settings:\n"                                                                          \
    "  - { name: s, protocol: https, port: 443 }\n"
#define BASE_RULES                                                                                 \
    "rules:\n"                                                                                     \
    "  - { name: r, listener: main, priority: 1, backend-pool: app, backend-settings: s }\n"
#define BASE BASE_CERTS BASE_LISTENERS BASE_POOLS BASE_SETTINGS BASE_RULES

/* The config of DESIGN.md, verbatim. */
static const char design_yaml[] =
        "admin: { listen: 127.0.0.1:9090 }           # health API, metrics, dashboard\n"
        "workers: auto\n"
        "access-log: { path: \"-\" }                   # JSON lines\n"
        "certificates:                               # listener certificates\n"
        "  gw: { pem: certs/gw-chain.pem, key: certs/gw.key }\n"
        "trusted-roots:   { private-root: certs/root.cer }\n"
        "auth-certs:      { ilb: certs/ilb.cer }\n"
        "listeners:\n"
        "  - { name: main, port: 8443, protocol: https, certificate: gw, host-names: "
        "[app.example.com, \"*.example.com\"] }\n"
        "    # optional: address (bind address, default all), tls-policy, http2\n"
        "backend-pools:\n"
        "  - { name: app, servers: [127.0.0.1:9443, app1.internal] }\n"
        "backend-settings:\n"
        "  - name: app-https\n"
        "    protocol: https\n"
        "    port: 443\n"
        "    request-timeout: 20s\n"
        "    host-name: app.example.com            # or pick-host-name-from-backend: true\n"
        "    trusted-roots: [private-root]          # or well-known-ca: true, or auth-certs\n"
        "    probe: app-probe                       # absent: the default probe\n"
        "probes:\n"
        "  - { name: app-probe, protocol: https, host: app.example.com, path: /health, "
        "interval: 30s,\n"
        "      timeout: 30s, unhealthy-threshold: 3, match: { status: [\"200-399\"], body: \"ok\" "
        "} }\n"
        "rules:\n"
        "  - { name: main, listener: main, priority: 100, backend-pool: app, backend-settings: "
        "app-https }\n";

/* ---- valid configs -------------------------------------------------------------------------- */

static void test_design_config(void **state)
{
    (void)state;
    struct cfg_errors errs;
    struct cfg *cfg = load_text(design_yaml, &errs);
    if (!cfg)
        dump_errors(&errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n_errors, 0);
    /* auth-certs 'ilb' is defined but unused in the DESIGN example: one warning. */
    assert_int_equal(errs.n_warnings, 1);
    assert_true(has_problem(&errs, CFG_SEV_WARNING,
                            ":7:20: warning: auth-certs.ilb: no backend-settings uses auth cert"));

    assert_string_equal(cfg->admin.listen.host, "127.0.0.1");
    assert_int_equal(cfg->admin.listen.port, 9090);
    assert_int_equal(cfg->workers, 0);
    assert_true(cfg->access_log.enabled);
    assert_string_equal(cfg->access_log.path, "-");

    assert_int_equal(cfg->n_certificates, 1);
    const struct cfg_certificate *gw = &cfg->certificates[0];
    assert_string_equal(gw->name, "gw");
    assert_int_equal(gw->kind, CFG_CERT_PEM);
    char want[512];
    snprintf(want, sizeof want, "%s/certs/gw-chain.pem", tmpdir);
    char *real_tmp = realpath(tmpdir, NULL);
    snprintf(want, sizeof want, "%s/certs/gw-chain.pem", real_tmp);
    assert_string_equal(gw->pem, want);
    snprintf(want, sizeof want, "%s/certs/gw.key", real_tmp);
    assert_string_equal(gw->key, want);
    free(real_tmp);
    assert_int_equal(gw->pos.line, 5);
    assert_int_equal(gw->pos.col, 3);

    assert_int_equal(cfg->n_trusted_roots, 1);
    assert_string_equal(cfg->trusted_roots[0].name, "private-root");
    assert_int_equal(cfg->n_auth_certs, 1);

    assert_int_equal(cfg->n_listeners, 1);
    const struct cfg_listener *l = &cfg->listeners[0];
    assert_string_equal(l->name, "main");
    assert_int_equal(l->port, 8443);
    assert_int_equal(l->protocol, CFG_PROTO_HTTPS);
    assert_ptr_equal(l->certificate, gw);
    assert_null(l->address);
    assert_int_equal(l->n_host_names, 2);
    assert_string_equal(l->host_names[0].name, "app.example.com");
    assert_false(l->host_names[0].wildcard);
    assert_string_equal(l->host_names[1].name, "*.example.com");
    assert_true(l->host_names[1].wildcard);
    assert_int_equal(l->tls_policy.min_version, CFG_TLS_1_2);
    assert_null(l->tls_policy.ciphers);
    assert_false(l->http2);
    assert_ptr_equal(l->rule, &cfg->rules[0]);
    assert_int_equal(l->pos.line, 9);
    assert_int_equal(l->pos.col, 5);

    assert_int_equal(cfg->n_pools, 1);
    const struct cfg_pool *pool = &cfg->pools[0];
    assert_int_equal(pool->n_servers, 2);
    assert_string_equal(pool->servers[0].host, "127.0.0.1");
    assert_int_equal(pool->servers[0].port, 9443);
    assert_int_equal(pool->servers[0].kind, CFG_ADDR_IPV4);
    assert_string_equal(pool->servers[1].host, "app1.internal");
    assert_int_equal(pool->servers[1].port, 0);
    assert_int_equal(pool->servers[1].kind, CFG_ADDR_NAME);

    assert_int_equal(cfg->n_settings, 1);
    const struct cfg_backend_settings *s = &cfg->settings[0];
    assert_string_equal(s->name, "app-https");
    assert_int_equal(s->protocol, CFG_PROTO_HTTPS);
    assert_int_equal(s->port, 443);
    assert_int_equal(s->request_timeout_ms, 20000);
    assert_string_equal(s->host_name, "app.example.com");
    assert_false(s->pick_host_name_from_backend);
    assert_int_equal(s->trust, CFG_TRUST_ROOTS);
    assert_int_equal(s->n_trusted_roots, 1);
    assert_ptr_equal(s->trusted_roots[0], &cfg->trusted_roots[0]);
    assert_int_equal(s->n_auth_certs, 0);
    assert_ptr_equal(s->probe, &cfg->probes[0]);
    assert_null(s->client_certificate);

    assert_int_equal(cfg->n_probes, 1);
    const struct cfg_probe *p = &cfg->probes[0];
    assert_false(p->is_default);
    assert_string_equal(p->host, "app.example.com");
    assert_string_equal(p->path, "/health");
    assert_int_equal(p->port, 0);
    assert_int_equal(p->interval_ms, 30000);
    assert_int_equal(p->timeout_ms, 30000);
    assert_int_equal(p->unhealthy_threshold, 3);
    assert_int_equal(p->match.n_status, 1);
    assert_int_equal(p->match.status[0].lo, 200);
    assert_int_equal(p->match.status[0].hi, 399);
    assert_string_equal(p->match.body, "ok");

    assert_int_equal(cfg->n_rules, 1);
    const struct cfg_rule *r = &cfg->rules[0];
    assert_int_equal(r->priority, 100);
    assert_ptr_equal(r->listener, l);
    assert_ptr_equal(r->pool, pool);
    assert_ptr_equal(r->settings, s);
    assert_ptr_equal(cfg->rules_by_priority[0], r);

    assert_int_equal(cfg->limits.max_url_length, 32 * 1024);
    assert_int_equal(cfg->limits.max_header_bytes, 32 * 1024);
    assert_int_equal(cfg->limits.max_headers, 100);
    assert_true(cfg->limits.max_body_bytes == 4ull * 1024 * 1024 * 1024);
    assert_int_equal(cfg->timeouts.client_request_ms, 60000);
    assert_int_equal(cfg->timeouts.client_keepalive_ms, 75000);

    assert_ptr_equal(cfg_find_listener(cfg, "main"), l);
    assert_ptr_equal(cfg_find_pool(cfg, "app"), pool);
    assert_ptr_equal(cfg_find_settings(cfg, "app-https"), s);
    assert_ptr_equal(cfg_find_probe(cfg, "app-probe"), p);
    assert_null(cfg_find_listener(cfg, "nope"));
    cfg_free(cfg);
    cfg_errors_free(&errs);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cfg_errors errs;
    struct cfg *cfg = load_text(BASE, &errs);
    if (!cfg || errs.count)
        dump_errors(&errs);
    assert_non_null(cfg);
    assert_int_equal(errs.count, 0);
    const struct cfg_backend_settings *s = &cfg->settings[0];
    assert_int_equal(s->request_timeout_ms, CFG_DEFAULT_REQUEST_TIMEOUT_MS);
    assert_int_equal(s->trust, CFG_TRUST_WELL_KNOWN);
    assert_null(s->host_name);
    /* No probe named: the settings' own default probe (reference §1.12). */
    const struct cfg_probe *p = s->probe;
    assert_ptr_equal(p, &s->default_probe);
    assert_true(p->is_default);
    assert_string_equal(p->name, "default");
    assert_int_equal(p->protocol, CFG_PROTO_HTTPS);
    assert_null(p->host);
    assert_int_equal(p->port, 0);
    assert_string_equal(p->path, "/");
    assert_int_equal(p->interval_ms, 30000);
    assert_int_equal(p->timeout_ms, 30000);
    assert_int_equal(p->unhealthy_threshold, 3);
    assert_true(cfg_status_matches(&p->match, 200));
    assert_true(cfg_status_matches(&p->match, 399));
    assert_false(cfg_status_matches(&p->match, 400));
    assert_string_equal(cfg->admin.listen.host, "127.0.0.1");
    assert_int_equal(cfg->admin.listen.port, 9090);
    assert_string_equal(cfg->access_log.path, "-");
    assert_true(cfg->access_log.enabled);
    assert_int_equal(cfg->n_probes, 0);
    cfg_free(cfg);
    cfg_errors_free(&errs);
}

static void test_other_values(void **state)
{
    (void)state;
    struct cfg_errors errs;
    struct cfg *cfg = load_text(
            "x-pool: &servers [\"[::1]:443\", \"::1\", \"10.0.0.1\", \"app.internal:8080\"]\n"
            "admin: { listen: \"[::1]:9091\" }\n"
            "workers: 4\n"
            "access-log: off\n"
            "limits: { max-header-bytes: 64KiB, max-url-length: 8k, max-headers: 50, "
            "max-body-bytes: 1m }\n"
            "timeouts: { client-request: 1m30s, client-keepalive: 5s }\n"
            "certificates:\n"
            "  gw: { pfx: certs/gw.pfx, password-file: certs/pw.txt }\n"
            "  client: { pem: certs/gw-chain.pem, key: certs/gw.key }\n"
            "auth-certs: { ilb: certs/ilb.cer }\n"
            "listeners:\n"
            "  - name: main\n"
            "    address: \"::1\"\n"
            "    port: 8443\n"
            "    protocol: HTTPS\n"
            "    certificate: gw\n"
            "    host-names: [App.Example.COM, \"api?.example.com\"]\n"
            "    tls-policy: { min-version: TLSv1.3, ciphersuites: TLS_AES_128_GCM_SHA256 }\n"
            "    http2: true\n"
            "  - { name: plain, port: 8080, protocol: http, http2: false }\n"
            "backend-pools:\n"
            "  - { name: app, servers: *servers }\n"
            "backend-settings:\n"
            "  - { name: s, protocol: https, port: 443, pick-host-name-from-backend: true,\n"
            "      auth-certs: [ilb], client-certificate: client, probe: p,\n"
            "      request-timeout: 90 }\n"
            "  - { name: h, protocol: http, port: 80 }\n"
            "probes:\n"
            "  - { name: p, protocol: https, pick-host-name-from-backend-settings: true,\n"
            "      port: 8443, match: { status: [\"200-299, 404\", 401] } }\n"
            "rules:\n"
            "  - { name: b, listener: plain, priority: 20000, backend-pool: app, "
            "backend-settings: h }\n"
            "  - { name: a, listener: main, priority: 10, backend-pool: app, backend-settings: s "
            "}\n",
            &errs);
    if (!cfg || errs.count)
        dump_errors(&errs);
    assert_non_null(cfg);
    assert_int_equal(errs.count, 0);
    assert_string_equal(cfg->admin.listen.host, "::1");
    assert_int_equal(cfg->admin.listen.kind, CFG_ADDR_IPV6);
    assert_int_equal(cfg->admin.listen.port, 9091);
    assert_int_equal(cfg->workers, 4);
    assert_false(cfg->access_log.enabled);
    assert_int_equal(cfg->limits.max_header_bytes, 64 * 1024);
    assert_int_equal(cfg->limits.max_url_length, 8 * 1024);
    assert_int_equal(cfg->limits.max_headers, 50);
    assert_int_equal(cfg->limits.max_body_bytes, 1024 * 1024);
    assert_int_equal(cfg->timeouts.client_request_ms, 90000);
    assert_int_equal(cfg->timeouts.client_keepalive_ms, 5000);

    assert_int_equal(cfg->certificates[0].kind, CFG_CERT_PFX);
    assert_non_null(cfg->certificates[0].pfx);
    assert_non_null(cfg->certificates[0].password_file);

    const struct cfg_listener *l = &cfg->listeners[0];
    assert_string_equal(l->address, "::1");
    assert_int_equal(l->address_kind, CFG_ADDR_IPV6);
    assert_string_equal(l->host_names[0].name, "app.example.com"); /* lower-cased */
    assert_true(l->host_names[1].wildcard);
    assert_int_equal(l->tls_policy.min_version, CFG_TLS_1_3);
    assert_string_equal(l->tls_policy.ciphersuites, "TLS_AES_128_GCM_SHA256");
    assert_true(l->http2);

    const struct cfg_pool *pool = &cfg->pools[0];
    assert_int_equal(pool->n_servers, 4);
    assert_string_equal(pool->servers[0].host, "::1");
    assert_int_equal(pool->servers[0].port, 443);
    assert_int_equal(pool->servers[0].kind, CFG_ADDR_IPV6);
    assert_string_equal(pool->servers[1].host, "::1");
    assert_int_equal(pool->servers[1].port, 0);
    assert_int_equal(pool->servers[2].kind, CFG_ADDR_IPV4);
    assert_string_equal(pool->servers[3].host, "app.internal");
    assert_int_equal(pool->servers[3].port, 8080);

    const struct cfg_backend_settings *s = &cfg->settings[0];
    assert_true(s->pick_host_name_from_backend);
    assert_int_equal(s->trust, CFG_TRUST_AUTH_CERTS);
    assert_ptr_equal(s->auth_certs[0], &cfg->auth_certs[0]);
    assert_ptr_equal(s->client_certificate, &cfg->certificates[1]);
    assert_int_equal(s->request_timeout_ms, 90000);
    const struct cfg_probe *p = s->probe;
    assert_true(p->pick_host_name_from_backend_settings);
    assert_int_equal(p->port, 8443);
    assert_int_equal(p->match.n_status, 3);
    assert_true(cfg_status_matches(&p->match, 204));
    assert_true(cfg_status_matches(&p->match, 401));
    assert_true(cfg_status_matches(&p->match, 404));
    assert_false(cfg_status_matches(&p->match, 302));

    /* rules in file order; by priority lowest number first */
    assert_string_equal(cfg->rules[0].name, "b");
    assert_string_equal(cfg->rules_by_priority[0]->name, "a");
    assert_string_equal(cfg->rules_by_priority[1]->name, "b");
    cfg_free(cfg);
    cfg_errors_free(&errs);
}

static void test_example_config(void **state)
{
    (void)state;
    /* The tests run from the repository root (make unit). */
    FILE *f = fopen("examples/gatehouse.yaml", "r");
    if (!f)
        fail_msg("cannot open examples/gatehouse.yaml from %s", getcwd(NULL, 0));
    char *text = malloc(256 * 1024);
    size_t len = fread(text, 1, 256 * 1024 - 1, f);
    fclose(f);
    text[len] = '\0';

    /* Every certs/... file the example names gets a dummy: only existence is checked here. */
    make_dir("example");
    make_dir("example/certs");
    for (const char *p = strstr(text, "certs/"); p; p = strstr(p + 1, "certs/")) {
        size_t n = strcspn(p, " ,}\n\"");
        char rel[256];
        snprintf(rel, sizeof rel, "example/%.*s", (int)n, p);
        write_file(rel, "dummy\n");
    }
    write_file("example/gatehouse.yaml", text);
    free(text);

    char path[512];
    snprintf(path, sizeof path, "%s/example/gatehouse.yaml", tmpdir);
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    struct cfg *cfg = cfg_load(path, &errs);
    if (!cfg || errs.count)
        dump_errors(&errs);
    assert_non_null(cfg);
    assert_int_equal(errs.count, 0); /* no warnings either: the example uses all it defines */
    assert_int_equal(cfg->n_listeners, 3);
    assert_int_equal(cfg->n_rules, 3);
    assert_int_equal(cfg->n_certificates, 3);
    assert_non_null(cfg_find_listener(cfg, "main"));
    assert_non_null(cfg_find_listener(cfg, "main")->certificate);
    cfg_free(cfg);
    cfg_errors_free(&errs);
}

static void test_warnings_keep_config_valid(void **state)
{
    (void)state;
    struct cfg_errors errs;
    struct cfg *cfg = load_text(BASE_CERTS BASE_LISTENERS
                                "backend-pools:\n"
                                "  - { name: app, servers: [127.0.0.1:9443] }\n"
                                "  - { name: spare, servers: [] }\n" BASE_SETTINGS BASE_RULES,
                                &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n_errors, 0);
    assert_int_equal(errs.n_warnings, 2);
    assert_true(has_problem(&errs, CFG_SEV_WARNING,
                            ":7:29: warning: backend-pools[1].servers: pool 'spare' is empty"));
    assert_true(has_problem(&errs, CFG_SEV_WARNING,
                            ":7:5: warning: backend-pools[1]: no rule uses backend pool 'spare'"));
    cfg_free(cfg);
    cfg_errors_free(&errs);
}

/* ---- error cases: each config gives (at least) the expected error --------------------------- */

struct error_case {
    const char *name;
    const char *yaml;
    const char *want; /* substring of one formatted error, from the ':' before the line on */
};

static const struct error_case error_cases[] = {
        {"dangling listener, did you mean",
         BASE_CERTS BASE_LISTENERS BASE_POOLS BASE_SETTINGS
         "rules:\n"
         "  - { name: main, listener: mian, priority: 1, backend-pool: app, backend-settings: s "
         "}\n",
         ":10:29: rules[0].listener: rule 'main': listener 'mian' is not defined (listeners: "
         "main); did you mean 'main'?"},
        {"dangling pool, nothing close",
         BASE_CERTS BASE_LISTENERS BASE_POOLS BASE_SETTINGS
         "rules:\n"
         "  - { name: r, listener: main, priority: 1, backend-pool: zzz, backend-settings: s }\n",
         ":10:59: rules[0].backend-pool: rule 'r': backend pool 'zzz' is not defined "
         "(backend-pools: app)"},
        {"dangling probe, none defined",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 443, probe: p }\n" BASE_RULES,
         ":8:51: backend-settings[0].probe: backend-settings 's': probe 'p' is not defined (no "
         "probes are defined)"},
        {"dangling certificate",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443, protocol: https, certificate: gww }\n" BASE_POOLS
                            BASE_SETTINGS BASE_RULES,
         ":4:61: listeners[0].certificate: listener 'main': certificate 'gww' is not defined "
         "(certificates: gw); did you mean 'gw'?"},
        {"dangling trusted root",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 443, trusted-roots: [root] }\n" BASE_RULES,
         ":8:60: backend-settings[0].trusted-roots[0]: backend-settings 's': trusted root 'root' "
         "is not defined (no trusted-roots are defined)"},
        {"unknown key, did you mean",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443, protocol: https, certificate: gw, hostnames: "
                    "[a.b] }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":4:65: listeners[0].hostnames: unknown key; did you mean 'host-names'?"},
        {"unknown key, ARM spelling",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 443, requestTimeout: 30 }\n" BASE_RULES,
         ":8:44: backend-settings[0].requestTimeout: unknown key; did you mean "
         "'request-timeout'?"},
        {"unknown key, abbreviation",
         BASE_CERTS BASE_LISTENERS BASE_POOLS BASE_SETTINGS
         "rules:\n"
         "  - { name: r, listener: main, prio: 1, backend-pool: app, backend-settings: s }\n",
         ":10:32: rules[0].prio: unknown key; did you mean 'priority'?"},
        {"unknown key, no suggestion",
         BASE_CERTS BASE_LISTENERS
         "backend-pools:\n"
         "  - { name: app, servers: [127.0.0.1:9443], weight: 3 }\n" BASE_SETTINGS BASE_RULES,
         ":6:45: backend-pools[0].weight: unknown key (expected one of: name, servers)"},
        {"unknown section", BASE "acess-log: off\n",
         ":11:1: acess-log: unknown section; did you mean 'access-log'?"},
        {"missing required key",
         BASE_CERTS BASE_LISTENERS BASE_POOLS "backend-settings:\n"
                                              "  - { name: s, protocol: https }\n" BASE_RULES,
         ":8:5: backend-settings[0]: missing required key 'port'"},
        {"string where a list is expected",
         BASE_CERTS BASE_LISTENERS
         "backend-pools:\n"
         "  - { name: app, servers: 127.0.0.1:9443 }\n" BASE_SETTINGS BASE_RULES,
         ":6:27: backend-pools[0].servers: expected a list, got '127.0.0.1:9443'"},
        {"list where a string is expected",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 443, host-name: [a, b] }\n" BASE_RULES,
         ":8:55: backend-settings[0].host-name: expected a string, got a list"},
        {"mapping expected", BASE "limits: 32k\n", ":11:9: limits: expected a mapping, got '32k'"},
        {"port out of range",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 70000, protocol: https, certificate: gw }\n" BASE_POOLS
                            BASE_SETTINGS BASE_RULES,
         ":4:25: listeners[0].port: must be between 1 and 65535 (got 70000)"},
        {"port zero",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 0 }\n" BASE_RULES,
         ":8:39: backend-settings[0].port: must be between 1 and 65535 (got 0)"},
        {"negative number",
         BASE_CERTS BASE_LISTENERS BASE_POOLS BASE_SETTINGS
         "rules:\n"
         "  - { name: r, listener: main, priority: -5, backend-pool: app, backend-settings: s }\n",
         ":10:42: rules[0].priority: must be between 1 and 20000 (got -5)"},
        {"priority too large",
         BASE_CERTS BASE_LISTENERS BASE_POOLS BASE_SETTINGS
         "rules:\n"
         "  - { name: r, listener: main, priority: 20001, backend-pool: app, backend-settings: s "
         "}\n",
         ":10:42: rules[0].priority: must be between 1 and 20000 (got 20001)"},
        {"quoted number",
         BASE_CERTS BASE_LISTENERS BASE_POOLS BASE_SETTINGS
         "rules:\n"
         "  - { name: r, listener: main, priority: \"7\", backend-pool: app, backend-settings: s "
         "}\n",
         ":10:42: rules[0].priority: expected a number, got the quoted string \"7\" (remove the "
         "quotes)"},
        {"duplicate priority",
         BASE_CERTS BASE_LISTENERS
         "  - { name: b, port: 8080, protocol: http }\n" BASE_POOLS BASE_SETTINGS BASE_RULES
         "  - { name: r2, listener: b, priority: 1, backend-pool: app, backend-settings: s }\n",
         ":12:40: rules[1].priority: priority 1 is already used by rule 'r' (line 11); "
         "priorities are unique"},
        {"unhealthy threshold out of range",
         BASE "probes:\n"
              "  - { name: p, protocol: https, host: a.b, unhealthy-threshold: 21 }\n",
         ":12:65: probes[0].unhealthy-threshold: must be between 1 and 20 (got 21)"},
        {"duplicate name",
         BASE_CERTS BASE_LISTENERS
         "  - { name: main, port: 8080, protocol: http }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":5:13: listeners[1].name: 'main' is already the name of listeners[0] (line 4)"},
        {"invalid name",
         BASE_CERTS BASE_LISTENERS
         "backend-pools:\n"
         "  - { name: \"my pool\", servers: [127.0.0.1] }\n" BASE_SETTINGS BASE_RULES,
         ":6:13: backend-pools[0].name: invalid name 'my pool'"},
        {"host-name and pick are exclusive",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 443, host-name: a.b,\n"
         "      pick-host-name-from-backend: true }\n" BASE_RULES,
         ":9:36: backend-settings[0].pick-host-name-from-backend: backend-settings 's': "
         "host-name and pick-host-name-from-backend: true are mutually exclusive"},
        {"trust modes are exclusive",
         BASE_CERTS "trusted-roots: { r: certs/root.cer }\n" BASE_LISTENERS BASE_POOLS
                    "backend-settings:\n"
                    "  - { name: s, protocol: https, port: 443, trusted-roots: [r], well-known-ca: "
                    "true }\n" BASE_RULES,
         ":9:79: backend-settings[0]: backend-settings 's': trusted-roots, well-known-ca: true "
         "and auth-certs are mutually exclusive; give one"},
        {"well-known-ca false alone",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 443, well-known-ca: false }\n" BASE_RULES,
         ":8:59: backend-settings[0].well-known-ca: backend-settings 's': well-known-ca is false "
         "but neither trusted-roots nor auth-certs is given"},
        {"trust options on http",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: http, port: 80, well-known-ca: true }\n" BASE_RULES,
         ":8:57: backend-settings[0].well-known-ca: only for protocol https (backend-settings "
         "'s' uses http)"},
        {"https listener without certificate",
         BASE_CERTS
         "listeners:\n"
         "  - { name: main, port: 8443, protocol: https }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":4:41: listeners[0]: listener 'main' uses https but names no certificate"},
        {"certificate on an http listener",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8080, protocol: http, certificate: gw }\n" BASE_POOLS
                            BASE_SETTINGS BASE_RULES,
         ":4:60: listeners[0].certificate: only for protocol https (listener 'main' uses http)"},
        {"wildcard: two stars in a label",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443, protocol: https, certificate: gw, host-names: "
                    "[\"*a*.example.com\"] }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":4:78: listeners[0].host-names[0]: invalid host name '*a*.example.com': at most one "
         "'*' per label"},
        {"wildcard: three stars",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443, protocol: https, certificate: gw, host-names: "
                    "[\"*.*.*.com\"] }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":4:78: listeners[0].host-names[0]: invalid host name '*.*.*.com': at most two '*'"},
        {"wildcard: star next to question mark",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443, protocol: https, certificate: gw, host-names: "
                    "[\"a*?.example.com\"] }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":4:78: listeners[0].host-names[0]: invalid host name 'a*?.example.com': '**', '*?' "
         "and '?*' are not allowed"},
        {"wildcard: five wildcard characters",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443, protocol: https, certificate: gw, host-names: "
                    "[\"a???.b??.com\"] }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":4:78: listeners[0].host-names[0]: invalid host name 'a???.b??.com': at most four "
         "wildcard characters"},
        {"host name: bad character",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443, protocol: https, certificate: gw, host-names: "
                    "[app_1.example.com] }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":4:78: listeners[0].host-names[0]: invalid host name 'app_1.example.com': only "
         "letters, digits"},
        {"too many host names",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443, protocol: https, certificate: gw, host-names: "
                    "[a.b, b.b, c.b, d.b, e.b, f.b] }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":4:77: listeners[0].host-names: 6 host names; a listener has at most 5"},
        {"missing certificate file",
         "certificates:\n"
         "  gw: { pem: certs/nope.pem, key: certs/gw.key }\n" BASE_LISTENERS BASE_POOLS
                 BASE_SETTINGS BASE_RULES,
         ":2:14: certificates.gw.pem: cannot read 'certs/nope.pem' ("},
        {"certificate file is a directory",
         "certificates:\n"
         "  gw: { pem: certs/gw-chain.pem, key: certs/adir }\n" BASE_LISTENERS BASE_POOLS
                 BASE_SETTINGS BASE_RULES,
         "/certs/adir) is not a regular file"},
        {"missing trusted root file", BASE "trusted-roots: { r: missing.cer }\n",
         ":11:21: trusted-roots.r: cannot read 'missing.cer' ("},
        {"pem and pfx together",
         "certificates:\n"
         "  gw: { pem: certs/gw-chain.pem, key: certs/gw.key, pfx: certs/gw.pfx }\n" BASE_LISTENERS
                 BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":2:14: certificates.gw: give either pem and key, or pfx (with password-file), not both"},
        {"pem without key",
         "certificates:\n"
         "  gw: { pem: certs/gw-chain.pem }\n" BASE_LISTENERS BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":2:7: certificates.gw: missing required key 'key'"},
        {"password-file without pfx",
         "certificates:\n"
         "  gw: { pem: certs/gw-chain.pem, key: certs/gw.key, password-file: certs/pw.txt "
         "}\n" BASE_LISTENERS BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":2:68: certificates.gw: password-file goes with pfx"},
        {"probe path must start with a slash",
         BASE "probes:\n"
              "  - { name: p, protocol: https, host: a.b, path: health }\n",
         ":12:50: probes[0].path: must start with '/' (got 'health')"},
        {"probe needs a host",
         BASE "probes:\n"
              "  - { name: p, protocol: https }\n",
         ":12:5: probes[0]: probe 'p' needs host"},
        {"probe host and pick are exclusive",
         BASE "probes:\n"
              "  - { name: p, protocol: https, host: a.b,\n"
              "      pick-host-name-from-backend-settings: true }\n",
         ":13:45: probes[0].pick-host-name-from-backend-settings: probe 'p': host and "
         "pick-host-name-from-backend-settings: true are mutually exclusive"},
        {"probe protocol must match the settings",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 443, probe: p }\n" BASE_RULES "probes:\n"
         "  - { name: p, protocol: http, host: a.b }\n",
         ":8:51: backend-settings[0].probe: probe 'p' uses http but backend-settings 's' uses "
         "https; they must match"},
        {"probe picks a host the settings do not have",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 443, probe: p }\n" BASE_RULES "probes:\n"
         "  - { name: p, protocol: https, pick-host-name-from-backend-settings: true }\n",
         ":8:51: backend-settings[0].probe: probe 'p' takes its host name from backend-settings "
         "'s', which has neither host-name nor pick-host-name-from-backend: true"},
        {"status range",
         BASE "probes:\n"
              "  - { name: p, protocol: https, host: a.b, match: { status: [\"399-200\"] } }\n",
         ":12:62: probes[0].match.status[0]: invalid status '399-200': range ends before it "
         "starts"},
        {"status code out of range",
         BASE "probes:\n"
              "  - { name: p, protocol: https, host: a.b, match: { status: [600] } }\n",
         ":12:62: probes[0].match.status[0]: invalid status '600': status codes are 100 to 599"},
        {"invalid duration",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: https, port: 443, request-timeout: 1.5s }\n" BASE_RULES,
         ":8:61: backend-settings[0].request-timeout: invalid duration '1.5s': fractions are not "
         "supported"},
        {"duration unit", BASE "timeouts: { client-request: 10x }\n",
         ":11:29: timeouts.client-request: invalid duration '10x': unknown unit"},
        {"duration out of range", BASE "timeouts: { client-keepalive: 0s }\n",
         ":11:31: timeouts.client-keepalive: must be between 1s and 86400s (got 0s)"},
        {"size unit", BASE "limits: { max-header-bytes: 32q }\n",
         ":11:29: limits.max-header-bytes: invalid size '32q': unknown unit"},
        {"size out of range", BASE "limits: { max-header-bytes: 2m }\n",
         ":11:29: limits.max-header-bytes: must be between 1k and 1m (got 2m)"},
        {"bool",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443, protocol: https, certificate: gw, "
                    "http2: yes }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":4:72: listeners[0].http2: expected true or false, got 'yes'"},
        {"protocol",
         BASE_CERTS BASE_LISTENERS BASE_POOLS
         "backend-settings:\n"
         "  - { name: s, protocol: tcp, port: 443 }\n" BASE_RULES,
         ":8:26: backend-settings[0].protocol: expected http or https, got 'tcp'"},
        {"tls version",
         BASE_CERTS
         "listeners:\n"
         "  - { name: main, port: 8443, protocol: https, certificate: gw,\n"
         "      tls-policy: { min-version: TLSv1.1 } }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":5:34: listeners[0].tls-policy.min-version: TLSv1.1 is not supported; use TLSv1.2 or "
         "TLSv1.3"},
        {"bad server",
         BASE_CERTS BASE_LISTENERS
         "backend-pools:\n"
         "  - { name: app, servers: [\"a:b:c\"] }\n" BASE_SETTINGS BASE_RULES,
         ":6:28: backend-pools[0].servers[0]: invalid server 'a:b:c': not an IPv6 address"},
        {"bad server port",
         BASE_CERTS BASE_LISTENERS
         "backend-pools:\n"
         "  - { name: app, servers: [\"host:0\"] }\n" BASE_SETTINGS BASE_RULES,
         ":6:28: backend-pools[0].servers[0]: invalid server 'host:0': the port must be 1 to "
         "65535"},
        {"broken IPv4 is not a name",
         BASE_CERTS BASE_LISTENERS
         "backend-pools:\n"
         "  - { name: app, servers: [10.0.0] }\n" BASE_SETTINGS BASE_RULES,
         ":6:28: backend-pools[0].servers[0]: invalid server '10.0.0': not a valid IP address or "
         "DNS name"},
        {"duplicate server",
         BASE_CERTS BASE_LISTENERS
         "backend-pools:\n"
         "  - { name: app, servers: [a.b:1, A.B:1] }\n" BASE_SETTINGS BASE_RULES,
         ":6:35: backend-pools[0].servers[1]: server 'A.B:1' is listed twice"},
        {"admin address without port", BASE "admin: { listen: 127.0.0.1 }\n",
         ":11:18: admin.listen: invalid address '127.0.0.1': missing ':port'"},
        {"workers", BASE "workers: many\n",
         ":11:10: workers: expected auto or a number of threads, got 'many'"},
        {"access-log value", BASE "access-log: on\n",
         ":11:13: access-log: expected off or a mapping"},
        {"access-log directory", BASE "access-log: { path: nodir/access.log }\n",
         ":11:21: access-log.path: the directory of 'nodir/access.log'"},
        {"duplicate section",
         BASE "  - { name: r2, listener: b, priority: 2, backend-pool: app, backend-settings: s }\n"
              "listeners:\n",
         ":12:1: listeners: duplicate key (first at line 3)"},
        {"port shared by http and https",
         BASE_CERTS BASE_LISTENERS
         "  - { name: b, port: 8443, protocol: http }\n" BASE_POOLS BASE_SETTINGS BASE_RULES,
         ":5:5: listeners[1]: listener 'b' uses http on port 8443, where listener 'main' (line 4) "
         "uses https; a port serves one protocol"},
        {"two basic listeners on one port",
         BASE_CERTS BASE_LISTENERS
         "  - { name: b, port: 8443, protocol: https, certificate: gw }\n" BASE_POOLS BASE_SETTINGS
                 BASE_RULES,
         ":5:5: listeners[1]: listeners 'main' (line 4) and 'b' are both basic listeners"},
        {"same host name on two listeners",
         BASE_CERTS
         "listeners:\n"
         "  - { name: a, port: 8443, protocol: https, certificate: gw, host-names: [x.com] }\n"
         "  - { name: b, port: 8443, protocol: https, certificate: gw, host-names: [X.com] "
         "}\n" BASE_POOLS BASE_SETTINGS "rules:\n"
         "  - { name: r, listener: a, priority: 1, backend-pool: app, backend-settings: s }\n",
         ":5:75: listeners[1].host-names[0]: host name 'x.com' is also on listener 'a' (line 4)"},
        {"listener port is the admin port",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 9090, protocol: https, certificate: gw }\n" BASE_POOLS
                            BASE_SETTINGS BASE_RULES,
         ":4:5: listeners[0].port: port 9090 is also the admin API's"},
        {"listener with two rules",
         BASE "  - { name: r2, listener: main, priority: 2, backend-pool: app, backend-settings: s "
              "}\n",
         ":11:27: rules[1].listener: rule 'r2': listener 'main' already has rule 'r' (line 10); "
         "a listener is bound to exactly one rule"},
        {"no listeners", BASE_POOLS BASE_SETTINGS, ":1:1: listeners: no listeners are defined"},
        {"empty config", "# nothing here\n", ":1:1: the config is empty"},
        {"YAML syntax error",
         BASE_CERTS "listeners:\n"
                    "  - { name: main, port: 8443 protocol: https }\n",
         ":4:38: YAML syntax error: "},
        {"YAML tab indentation", "listeners:\n\t- { name: main }\n", ":2:1: YAML syntax error: "},
        {"duplicate YAML key",
         BASE_CERTS
         "listeners:\n"
         "  - { name: main, port: 8443, port: 8444, protocol: https, certificate: gw }\n" BASE_POOLS
                 BASE_SETTINGS BASE_RULES,
         ":4:31: port: duplicate key (first at line 4)"},
        {"two documents", BASE "---\nworkers: 2\n",
         ":11:1: only one YAML document is allowed in a config file"},
        {"unknown alias", BASE "workers: *w\n",
         ":11:10: alias '*w' does not name an anchor defined before it"},
        {"merge keys", BASE "x-t: &t { port: 80 }\nlimits: { <<: *t }\n",
         ":12:11: YAML merge keys ('<<') are not supported"},
        {"NUL in a string", BASE "access-log: { path: \"a\\0b\" }\n",
         ":11:21: a string contains a NUL character"},
        {"not a mapping at the top", "- a\n- b\n",
         ":1:1: the config must be a mapping of sections"},
};

static void test_error_case(void **state)
{
    const struct error_case *c = *state;
    struct cfg_errors errs;
    struct cfg *cfg = load_text(c->yaml, &errs);
    bool found = has_problem(&errs, CFG_SEV_ERROR, c->want);
    if (cfg || !found) {
        print_message("case '%s': want error containing\n    %s\ngot %zu problem(s):\n", c->name,
                      c->want, errs.count);
        dump_errors(&errs);
    }
    assert_null(cfg);
    assert_true(found);
    cfg_errors_free(&errs);
}

static void test_errors_are_collected(void **state)
{
    (void)state;
    struct cfg_errors errs;
    struct cfg *cfg = load_text("workers: 0\n"
                                "listeners:\n"
                                "  - { name: main, port: 0, protocol: ftp }\n"
                                "rules:\n"
                                "  - { name: r, listener: x, priority: 1, backend-pool: p, "
                                "backend-settings: s }\n",
                                &errs);
    assert_null(cfg);
    if (errs.n_errors != 6)
        dump_errors(&errs);
    /* workers, port, protocol, and the rule's three dangling references */
    assert_int_equal(errs.n_errors, 6);
    /* sorted by position */
    for (size_t i = 1; i < errs.count; i++) {
        assert_true(errs.v[i - 1].line < errs.v[i].line ||
                    (errs.v[i - 1].line == errs.v[i].line && errs.v[i - 1].col <= errs.v[i].col));
    }
    cfg_errors_free(&errs);
}

static void test_alias_bomb(void **state)
{
    (void)state;
    /* Each level doubles: 2^30 nodes once expanded; refused instead of walked. */
    char yaml[8192];
    size_t n = (size_t)snprintf(yaml, sizeof yaml, "x-0: &a0 [1, 1]\n");
    for (int i = 1; i <= 30; i++)
        n += (size_t)snprintf(yaml + n, sizeof yaml - n, "x-%d: &a%d [*a%d, *a%d]\n", i, i, i - 1,
                              i - 1);
    snprintf(yaml + n, sizeof yaml - n, "listeners: *a30\n");
    struct cfg_errors errs;
    struct cfg *cfg = load_text(yaml, &errs);
    assert_null(cfg);
    assert_true(has_problem(&errs, CFG_SEV_ERROR, "once aliases are expanded"));
    cfg_errors_free(&errs);
}

static void test_unreadable_config(void **state)
{
    (void)state;
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    assert_null(cfg_load("/nonexistent/gatehouse.yaml", &errs));
    assert_int_equal(errs.n_errors, 1);
    char line[512];
    cfg_error_format(&errs.v[0], line, sizeof line);
    assert_string_equal(line, "/nonexistent/gatehouse.yaml: cannot read the config file: No such "
                              "file or directory");
    cfg_errors_free(&errs);
}

static void test_load_mem(void **state)
{
    (void)state;
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    static const char text[] = BASE;
    struct cfg *cfg = cfg_load_mem(text, sizeof text - 1, "<mem>", tmpdir, &errs);
    if (!cfg)
        dump_errors(&errs);
    assert_non_null(cfg);
    cfg_free(cfg);
    cfg_errors_free(&errs);
    cfg_errors_init(&errs);
    assert_null(cfg_load_mem("workers: [", 10, "<mem>", tmpdir, &errs));
    /* libfyaml places end-of-input errors on the line after the last one */
    assert_true(has_problem(&errs, CFG_SEV_ERROR,
                            "<mem>:2:1: YAML syntax error: flow sequence without a closing "
                            "bracket"));
    cfg_errors_free(&errs);
}

static void test_bad_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t len;
        const char *want;
    } cases[] = {
            {"workers: 1\nadmin: \0\n", 19, "<mem>:2:8: the file contains a NUL byte"},
            {"workers: \x80\n", 11, "<mem>:1:10: invalid UTF-8 (byte 0x80)"},
            {"a: \xc3\xa9\xc0\xaf\n", 8, "<mem>:1:5: invalid UTF-8 (byte 0xc0)"}, /* overlong */
            {"a: \xed\xa0\x80\n", 7, "<mem>:1:4: invalid UTF-8 (byte 0xed)"},     /* surrogate */
            {"a: \xe2\x82\n", 6, "<mem>:1:4: invalid UTF-8 (byte 0xe2)"},         /* truncated */
            /* libfyaml 0.7 loops forever on this one if it reaches the scanner */
            {"%a\x80\n", 4, "<mem>:1:3: invalid UTF-8 (byte 0x80)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cfg_errors errs;
        cfg_errors_init(&errs);
        assert_null(cfg_load_mem(cases[i].text, cases[i].len, "<mem>", tmpdir, &errs));
        if (!has_problem(&errs, CFG_SEV_ERROR, cases[i].want)) {
            dump_errors(&errs);
            fail_msg("case %zu: want %s", i, cases[i].want);
        }
        cfg_errors_free(&errs);
    }
    /* Valid UTF-8 beyond ASCII is fine, in comments and in values. */
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    static const char text[] = "# caf\xc3\xa9 \xf0\x9f\x94\x92\n" BASE;
    struct cfg *cfg = cfg_load_mem(text, sizeof text - 1, "<mem>", tmpdir, &errs);
    assert_non_null(cfg);
    cfg_free(cfg);
    cfg_errors_free(&errs);
}

/* ---- value syntax --------------------------------------------------------------------------- */

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
            {"20s", 20000},   {"1m", 60000},          {"500ms", 500}, {"2h", 7200000},
            {"1d", 86400000}, {"1m30s", 90000},       {"90", 90000},  {"0", 0},
            {"0ms", 0},       {"1h1m1s1ms", 3661001},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t ms = 1;
        const char *why = NULL;
        assert_int_equal(cfg_parse_duration(ok[i].s, &ms, &why), 0);
        assert_true(ms == ok[i].ms);
    }
    static const struct {
        const char *s;
        const char *why;
    } bad[] = {
            {"", "empty value"},
            {"-1s", "must not be negative"},
            {"-5", "must not be negative"},
            {"1.5s", "fractions are not supported"},
            {"10x", "unknown unit"},
            {"10S", "unknown unit"},
            {"s", "expected a number"},
            {"1m30", "missing unit after the last number"},
            {"20 s", "unknown unit"},
            {"18446744073709551616", "too large"}, /* 2^64: the digits overflow */
            {"18446744073709551615", "too large"}, /* fits, but not once made milliseconds */
            {"18446744073709552s", "too large"},
            {"9999999999999999999d", "too large"},
            {"18446744073709551615ms1ms", "too large"}, /* the sum overflows */
            {"+5s", "expected a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 0;
        const char *why = NULL;
        if (cfg_parse_duration(bad[i].s, &ms, &why) != -1)
            fail_msg("duration '%s' accepted as %llu", bad[i].s, (unsigned long long)ms);
        assert_non_null(why);
        if (!strstr(why, bad[i].why))
            fail_msg("duration '%s': reason '%s', want '%s'", bad[i].s, why, bad[i].why);
    }
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t b;
    } ok[] = {
            {"0", 0},
            {"1024", 1024},
            {"32k", 32768},
            {"32K", 32768},
            {"32KiB", 32768},
            {"32KB", 32768},
            {"32kb", 32768},
            {"1m", 1048576},
            {"1MiB", 1048576},
            {"4g", 4294967296ull},
            {"1t", 1099511627776ull},
            {"512b", 512},
            {"16777215t", 16777215ull << 40}, /* the largest number of t that fits */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t b = 1;
        const char *why = NULL;
        if (cfg_parse_size(ok[i].s, &b, &why) != 0)
            fail_msg("size '%s' refused: %s", ok[i].s, why);
        assert_true(b == ok[i].b);
    }
    static const struct {
        const char *s;
        const char *why;
    } bad[] = {
            {"", "empty value"},
            {"-1", "must not be negative"},
            {"-1k", "must not be negative"},
            {"1.5m", "fractions are not supported"},
            {"4q", "unknown unit"},
            {"4 k", "unknown unit"},
            {"4kibibytes", "unknown unit"},
            {"k", "expected a number"},
            {"16777216t", "too large"},
            {"17179869184g", "too large"},
            {"99999999999999999999", "too large"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t b = 0;
        const char *why = NULL;
        if (cfg_parse_size(bad[i].s, &b, &why) != -1)
            fail_msg("size '%s' accepted as %llu", bad[i].s, (unsigned long long)b);
        if (!strstr(why, bad[i].why))
            fail_msg("size '%s': reason '%s', want '%s'", bad[i].s, why, bad[i].why);
    }
}

static void test_status_ranges(void **state)
{
    (void)state;
    struct cfg_status_range r[4];
    size_t n = 0;
    const char *why;
    assert_int_equal(cfg_parse_status_ranges("200-399", r, 4, &n, &why), 0);
    assert_int_equal(cfg_parse_status_ranges("200,401", r, 4, &n, &why), 0);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].lo, 200);
    assert_int_equal(r[0].hi, 399);
    assert_int_equal(r[1].lo, 200);
    assert_int_equal(r[1].hi, 200);
    assert_int_equal(r[2].lo, 401);
    assert_int_equal(cfg_parse_status_ranges(" 500 - 503 ", r, 4, &n, &why), 0);
    assert_int_equal(r[3].lo, 500);
    assert_int_equal(r[3].hi, 503);
    assert_int_equal(cfg_parse_status_ranges("404", r, 4, &n, &why), -1);
    assert_string_equal(why, "too many status ranges");

    static const char *const bad[] = {"",        "99",  "600",      "200-",   "-200",
                                      "200-100", "2xx", "200,,300", "200;300"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 0;
        if (cfg_parse_status_ranges(bad[i], r, 4, &n, &why) != -1)
            fail_msg("status '%s' accepted", bad[i]);
    }
}

static void test_host_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool wildcard;
    } ok[] = {
            {"app.example.com", false}, {"*.example.com", true},
            {"app?.example.com", true}, {"*", true},
            {"a*.b*.com", true},        {"??.??.com", true},
            {"localhost", false},       {"xn--bcher-kva.example", false},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        bool w = !ok[i].wildcard;
        const char *why = NULL;
        if (cfg_check_host_name(ok[i].name, &w, &why) != 0)
            fail_msg("host name '%s' refused: %s", ok[i].name, why);
        assert_int_equal(w, ok[i].wildcard);
    }
    static const char *const bad[] = {
            "",
            "a..b",
            ".a.b",
            "a.b.",
            "**.b",
            "*?.b",
            "?*.b",
            "*a*.com",
            "*.*.*",
            "a???.b??",
            "a b.com",
            "a_b.com",
            "é.com",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", /* 64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool w;
        const char *why = NULL;
        if (cfg_check_host_name(bad[i], &w, &why) != -1)
            fail_msg("host name '%s' accepted", bad[i]);
    }
}

static bool matches(const char *pattern, const char *host)
{
    struct cfg_host_name hn = {.name = pattern};
    const char *why;
    assert_int_equal(cfg_check_host_name(pattern, &hn.wildcard, &why), 0);
    return cfg_host_name_matches(&hn, host, strlen(host));
}

static void test_host_name_matching(void **state)
{
    (void)state;
    assert_true(matches("app.example.com", "app.example.com"));
    assert_true(matches("app.example.com", "APP.Example.com"));
    assert_false(matches("app.example.com", "app.example.co"));
    assert_false(matches("app.example.com", "xapp.example.com"));
    /* '*' may span labels (reference §1.4) */
    assert_true(matches("*.contoso.com", "customer1.contoso.com"));
    assert_true(matches("*.contoso.com", "customer1.b2b.contoso.com"));
    assert_false(matches("*.contoso.com", "contoso.com"));
    assert_false(matches("*.contoso.com", "customer1.contoso.org"));
    assert_true(matches("app?.example.com", "app1.example.com"));
    assert_false(matches("app?.example.com", "app.example.com"));
    assert_false(matches("app?.example.com", "app12.example.com"));
    assert_true(matches("a*.b*.com", "abc.bcd.com"));
    assert_true(matches("a*.b*.com", "a.b.com"));
    assert_false(matches("a*.b*.com", "a.c.com"));
    assert_true(matches("*", "anything.at.all"));
    assert_false(matches("*.example.com", "a_b.example.com")); /* '_' is not a host character */
}

static void test_split_hostport(void **state)
{
    (void)state;
    char host[64];
    uint16_t port;
    enum cfg_addr_kind kind;
    const char *why;
    assert_int_equal(cfg_split_hostport("[::1]:443", host, sizeof host, &port, &kind, false, &why),
                     0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 443);
    assert_int_equal(kind, CFG_ADDR_IPV6);
    assert_int_equal(cfg_split_hostport("fe80::1", host, sizeof host, &port, &kind, false, &why),
                     0);
    assert_int_equal(port, 0);
    assert_int_equal(kind, CFG_ADDR_IPV6);
    assert_int_equal(
            cfg_split_hostport("app1.internal", host, sizeof host, &port, &kind, false, &why), 0);
    assert_int_equal(kind, CFG_ADDR_NAME);
    assert_int_equal(
            cfg_split_hostport("10.1.2.3:65535", host, sizeof host, &port, &kind, false, &why), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(kind, CFG_ADDR_IPV4);

    static const char *const bad[] = {
            "",      ":80",    "[::1",   "[::1]x",    "[a.b]:80", "a:65536", "a:-1",    "a:",
            "a:80x", "-a.com", "a-.com", "256.1.1.1", "a b",      "1.2.3",   "[::1]:0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cfg_split_hostport(bad[i], host, sizeof host, &port, &kind, false, &why) != -1)
            fail_msg("address '%s' accepted", bad[i]);
    }
    assert_int_equal(cfg_split_hostport("a.b", host, sizeof host, &port, &kind, true, &why), -1);
    assert_string_equal(why, "missing ':port'");
}

static void test_suggestions(void **state)
{
    (void)state;
    static const char *const keys[] = {
            "name",        "port",         "protocol",
            "certificate", "host-names",   "request-timeout",
            "priority",    "backend-pool", "pick-host-name-from-backend"};
    const size_t n = sizeof keys / sizeof keys[0];
    assert_string_equal(cfg_suggest("hostnames", keys, n), "host-names");
    assert_string_equal(cfg_suggest("host_names", keys, n), "host-names");
    assert_string_equal(cfg_suggest("Port", keys, n), "port");
    assert_string_equal(cfg_suggest("prot", keys, n), "port");
    assert_string_equal(cfg_suggest("protocl", keys, n), "protocol");
    assert_string_equal(cfg_suggest("certficate", keys, n), "certificate");
    assert_string_equal(cfg_suggest("requestTimeout", keys, n), "request-timeout");
    assert_string_equal(cfg_suggest("prio", keys, n), "priority");
    assert_string_equal(cfg_suggest("backend-pools", keys, n), "backend-pool");
    assert_string_equal(cfg_suggest("pickHostNameFromBackendAddress", keys, n),
                        "pick-host-name-from-backend");
    assert_null(cfg_suggest("weight", keys, n));
    assert_null(cfg_suggest("path", keys, n));
    assert_null(cfg_suggest("x", keys, n));

    static const char *const names[] = {"main", "api", "static"};
    assert_string_equal(cfg_suggest("mian", names, 3), "main");
    assert_string_equal(cfg_suggest("apj", names, 3), "api");
    assert_null(cfg_suggest("backend", names, 3));

    assert_int_equal(cfg_edit_distance("mian", "main"), 1); /* a transposition is one edit */
    assert_int_equal(cfg_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(cfg_edit_distance("", "abc"), 3);
    assert_int_equal(cfg_edit_distance("request_timeout", "request-timeout"), 0);
}

/* ---- the check command ---------------------------------------------------------------------- */

/* Runs check_cmd_main with stdout and stderr sent to files; returns its exit status. */
static int run_check(const char *const *args, size_t nargs, char *out, size_t out_size)
{
    char *argv[16];
    argv[0] = "check";
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = (char *)args[i];
    argv[nargs + 1] = NULL;

    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmpdir);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = check_cmd_main((int)nargs + 1, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(fo);
    close(fe);

    if (out) {
        FILE *f = fopen(out_path, "r");
        size_t len = fread(out, 1, out_size - 1, f);
        out[len] = '\0';
        fclose(f);
    }
    return rc;
}

static void test_check_command(void **state)
{
    (void)state;
    char path[512], out[16384];
    write_file("valid.yaml", BASE);
    write_file("invalid.yaml", BASE "workers: 0\n");
    snprintf(path, sizeof path, "%s/valid.yaml", tmpdir);

    const char *valid[] = {"-c", path};
    assert_int_equal(run_check(valid, 2, out, sizeof out), 0);
    assert_non_null(strstr(out, "valid"));
    assert_non_null(strstr(out, "listeners: 1"));

    const char *valid_long[] = {"--config", path};
    assert_int_equal(run_check(valid_long, 2, NULL, 0), 0);

    snprintf(path, sizeof path, "%s/invalid.yaml", tmpdir);
    const char *invalid[] = {"-c", path};
    assert_int_equal(run_check(invalid, 2, NULL, 0), 1);

    const char *json[] = {"-c", path, "--json"};
    assert_int_equal(run_check(json, 3, out, sizeof out), 1);
    json_error_t jerr;
    json_t *o = json_loads(out, 0, &jerr);
    assert_non_null(o);
    assert_true(json_is_false(json_object_get(o, "valid")));
    json_t *errors = json_object_get(o, "errors");
    assert_int_equal(json_array_size(errors), 1);
    json_t *e = json_array_get(errors, 0);
    assert_int_equal(json_integer_value(json_object_get(e, "line")), 11);
    assert_int_equal(json_integer_value(json_object_get(e, "col")), 10);
    assert_string_equal(json_string_value(json_object_get(e, "key")), "workers");
    json_decref(o);

    const char *none[] = {"--json"};
    assert_int_equal(run_check(none, 1, NULL, 0), 2);
    const char *unknown[] = {"-c", path, "--frobnicate"};
    assert_int_equal(run_check(unknown, 3, NULL, 0), 2);
    const char *no_value[] = {"-c"};
    assert_int_equal(run_check(no_value, 1, NULL, 0), 2);
    const char *missing[] = {"-c", "/nonexistent/x.yaml"};
    assert_int_equal(run_check(missing, 2, NULL, 0), 2);
    const char *dir[] = {"-c", tmpdir};
    assert_int_equal(run_check(dir, 2, NULL, 0), 2);
    const char *extra[] = {"-c", path, "other.yaml"};
    assert_int_equal(run_check(extra, 3, NULL, 0), 2);
    const char *help[] = {"--help"};
    assert_int_equal(run_check(help, 1, out, sizeof out), 0);
    assert_non_null(strstr(out, "usage: gatehouse check -c FILE"));
}

int main(void)
{
    const struct CMUnitTest fixed[] = {
            cmocka_unit_test(test_design_config),
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_other_values),
            cmocka_unit_test(test_example_config),
            cmocka_unit_test(test_warnings_keep_config_valid),
            cmocka_unit_test(test_errors_are_collected),
            cmocka_unit_test(test_alias_bomb),
            cmocka_unit_test(test_unreadable_config),
            cmocka_unit_test(test_load_mem),
            cmocka_unit_test(test_bad_bytes),
            cmocka_unit_test(test_durations),
            cmocka_unit_test(test_sizes),
            cmocka_unit_test(test_status_ranges),
            cmocka_unit_test(test_host_names),
            cmocka_unit_test(test_host_name_matching),
            cmocka_unit_test(test_split_hostport),
            cmocka_unit_test(test_suggestions),
            cmocka_unit_test(test_check_command),
    };
    const size_t n_fixed = sizeof fixed / sizeof fixed[0];
    const size_t n_cases = sizeof error_cases / sizeof error_cases[0];
    struct CMUnitTest *tests = calloc(n_fixed + n_cases, sizeof *tests);
    memcpy(tests, fixed, sizeof fixed);
    for (size_t i = 0; i < n_cases; i++) {
        struct CMUnitTest t = cmocka_unit_test_prestate(test_error_case, (void *)&error_cases[i]);
        t.name = error_cases[i].name;
        tests[n_fixed + i] = t;
    }
    int rc = _cmocka_run_group_tests("config", tests, n_fixed + n_cases, group_setup,
                                     group_teardown);
    free(tests);
    return rc;
}
