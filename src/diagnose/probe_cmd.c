#include "diagnose/probe_cmd.h"

#include <ev.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/dns.h"
#include "core/url.h"
#include "diagnose/probe.h"
#include "diagnose/report.h"
#include "tls/cert_load.h"
#include "tls/name_match.h"
#include "tls/tls_client.h"

#define MAX_FILES     64
#define MAX_ALT_NAMES 8

static const char usage_text[] =
        "usage: gatehouse probe URL [options]\n"
        "\n"
        "Probes one backend exactly as the gateway's health probe does, and explains what is\n"
        "wrong: the certificate chain the backend really sent, the missing intermediate, the\n"
        "untrusted root, the name mismatch, the default certificate returned without SNI.\n"
        "\n"
        "  URL                    https://host[:port][/path] or http://...; host is a DNS name,\n"
        "                         an IPv4 address or [IPv6]\n"
        "  --host NAME            host name of the backend settings: sets the Host header and\n"
        "                         the SNI, and is the name the certificate must cover\n"
        "  --no-sni               send no SNI (the name is still checked)\n"
        "  --trusted-root FILE    trust mode 'trusted root': the chain must end at a root in\n"
        "                         FILE (PEM, DER or PKCS#12; repeatable; a file may hold several)\n"
        "  --auth-cert FILE       trust mode 'allow-list': the presented certificate must equal\n"
        "                         one in FILE (repeatable)\n"
        "  --well-known-ca        trust mode 'well-known CA': the system trust store (default)\n"
        "  --password-file FILE   password for PKCS#12 files (first line of FILE)\n"
        "  --client-cert FILE     client certificate (PEM chain or PKCS#12) for mutual TLS\n"
        "  --client-key FILE      its private key\n"
        "  --path P               request path (default: the URL's, else /)\n"
        "  --match-status RANGES  accepted statuses, e.g. 200-399,401 (default 200-399)\n"
        "  --match-body STR       the body must contain STR\n"
        "  --timeout SECONDS      bound for each step (default 30)\n"
        "  --json                 print one JSON object\n"
        "  --help                 this text\n"
        "\n"
        "Exit status: 0 healthy, 1 unhealthy, 2 usage or input error.\n";

struct probe_options {
    const char *url;
    const char *host;
    bool no_sni;
    const char *trusted_roots[MAX_FILES];
    size_t n_trusted_roots;
    const char *auth_certs[MAX_FILES];
    size_t n_auth_certs;
    bool well_known;
    const char *password_file;
    const char *client_cert;
    const char *client_key;
    const char *path;
    const char *match_status;
    const char *match_body;
    double timeout_s;
    bool json;
};

static int input_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int input_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gatehouse probe: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

enum {
    OPT_HOST = 256,
    OPT_NO_SNI,
    OPT_TRUSTED_ROOT,
    OPT_AUTH_CERT,
    OPT_WELL_KNOWN,
    OPT_PASSWORD_FILE,
    OPT_CLIENT_CERT,
    OPT_CLIENT_KEY,
    OPT_PATH,
    OPT_MATCH_STATUS,
    OPT_MATCH_BODY,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_HELP,
};

static const struct option long_options[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"no-sni", no_argument, NULL, OPT_NO_SNI},
        {"trusted-root", required_argument, NULL, OPT_TRUSTED_ROOT},
        {"auth-cert", required_argument, NULL, OPT_AUTH_CERT},
        {"well-known-ca", no_argument, NULL, OPT_WELL_KNOWN},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"client-cert", required_argument, NULL, OPT_CLIENT_CERT},
        {"client-key", required_argument, NULL, OPT_CLIENT_KEY},
        {"path", required_argument, NULL, OPT_PATH},
        {"match-status", required_argument, NULL, OPT_MATCH_STATUS},
        {"match-body", required_argument, NULL, OPT_MATCH_BODY},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
};

/* Returns 0, 1 for --help, or 2 after printing a usage error. */
static int parse_options(int argc, char **argv, struct probe_options *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_s = 30;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_HOST:
            o->host = optarg;
            break;
        case OPT_NO_SNI:
            o->no_sni = true;
            break;
        case OPT_TRUSTED_ROOT:
            if (o->n_trusted_roots == MAX_FILES)
                return input_error("--trusted-root: at most %d files", MAX_FILES);
            o->trusted_roots[o->n_trusted_roots++] = optarg;
            break;
        case OPT_AUTH_CERT:
            if (o->n_auth_certs == MAX_FILES)
                return input_error("--auth-cert: at most %d files", MAX_FILES);
            o->auth_certs[o->n_auth_certs++] = optarg;
            break;
        case OPT_WELL_KNOWN:
            o->well_known = true;
            break;
        case OPT_PASSWORD_FILE:
            o->password_file = optarg;
            break;
        case OPT_CLIENT_CERT:
            o->client_cert = optarg;
            break;
        case OPT_CLIENT_KEY:
            o->client_key = optarg;
            break;
        case OPT_PATH:
            o->path = optarg;
            break;
        case OPT_MATCH_STATUS:
            o->match_status = optarg;
            break;
        case OPT_MATCH_BODY:
            o->match_body = optarg;
            break;
        case OPT_TIMEOUT: {
            char *end;
            double t = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !isfinite(t) || t <= 0 || t > 86400)
                return input_error("--timeout '%s': expected a number of seconds from 0.001 "
                                   "to 86400",
                                   optarg);
            o->timeout_s = t;
            break;
        }
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_HELP:
        case 'h':
            return 1;
        case ':':
            return input_error("%s needs a value (see --help)", argv[optind - 1]);
        default:
            if (optopt >= OPT_HOST)
                return input_error("%s needs a value (see --help)", argv[optind - 1]);
            return input_error("unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return input_error("missing URL (e.g. gatehouse probe https://10.0.0.4/health "
                           "--host app.example.com); see --help");
    if (optind + 1 < argc)
        return input_error("unexpected argument '%s' after the URL (options go before or "
                           "after it, one URL per probe)",
                           argv[optind + 1]);
    o->url = argv[optind];
    int modes = (o->n_trusted_roots > 0) + (o->n_auth_certs > 0) + o->well_known;
    if (modes > 1)
        return input_error("conflicting trust modes: give only one of --trusted-root, "
                           "--auth-cert and --well-known-ca");
    if (o->client_key && !o->client_cert)
        return input_error("--client-key needs --client-cert");
    if (o->host && !*o->host)
        return input_error("--host: the name is empty");
    if (o->host && !url_valid_dns_name(o->host) && !name_is_ip_literal(o->host))
        return input_error("--host '%s': not a valid host name or IP address", o->host);
    if (o->path && o->path[0] != '/')
        return input_error("--path '%s': must start with '/'", o->path);
    if (o->match_body && strlen(o->match_body) > 4090)
        return input_error("--match-body: at most 4090 characters (the modelled gateway's "
                           "limit)");
    return 0;
}

/* Collects the DNS names of allow-listed certificates: the other plausible SNIs. */
static size_t allowlist_names(const struct trust_policy *t, const char **names, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_anchors && n < max; i++) {
        const struct cert_info *ci = &t->anchors[i].info;
        const char *first = NULL;
        for (size_t j = 0; j < ci->n_sans && !first; j++)
            if (strncmp(ci->sans[j], "DNS:", 4) == 0 && ci->sans[j][4] != '*')
                first = ci->sans[j] + 4;
        if (!first && ci->common_name && strchr(ci->common_name, '.') && ci->common_name[0] != '*')
            first = ci->common_name;
        if (first)
            names[n++] = first;
    }
    return n;
}

struct run_state {
    struct probe_result *result;
};

static void on_done(struct probe_result *result, void *arg)
{
    struct run_state *st = arg;
    st->result = result;
}

static int load_trust(const struct probe_options *o, const char *password,
                      struct trust_policy *trust)
{
    char err[512];
    if (o->n_auth_certs) {
        trust_policy_init(trust, TRUST_ALLOWLIST);
        for (size_t i = 0; i < o->n_auth_certs; i++)
            if (trust_policy_add_file(trust, o->auth_certs[i], password, err, sizeof err) != 0)
                return input_error("--auth-cert %s: %s", o->auth_certs[i], err);
    } else if (o->n_trusted_roots) {
        trust_policy_init(trust, TRUST_ROOTS);
        for (size_t i = 0; i < o->n_trusted_roots; i++)
            if (trust_policy_add_file(trust, o->trusted_roots[i], password, err, sizeof err) != 0)
                return input_error("--trusted-root %s: %s", o->trusted_roots[i], err);
    } else {
        trust_policy_init(trust, TRUST_WELL_KNOWN);
    }
    return 0;
}

int probe_cmd_main(int argc, char **argv)
{
    struct probe_options o;
    int rc = parse_options(argc, argv, &o);
    if (rc == 1) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (rc != 0)
        return rc;

    struct url url;
    char err[512];
    if (url_parse(o.url, &url, err, sizeof err) != 0)
        return input_error("%s", err);
    if (!url.https && (o.n_trusted_roots || o.n_auth_certs || o.client_cert))
        return input_error("'%s' is plain http: certificate options need an https:// URL", o.url);

    char *password = NULL;
    if (o.password_file) {
        password = cert_read_password_file(o.password_file, err, sizeof err);
        if (!password)
            return input_error("--password-file %s: %s", o.password_file, err);
    }
    struct trust_policy trust;
    memset(&trust, 0, sizeof trust);
    rc = load_trust(&o, password, &trust);
    SSL_CTX *ctx = NULL;
    if (rc == 0) {
        ctx = tls_client_ctx_new(err, sizeof err);
        if (!ctx)
            rc = input_error("%s", err);
    }
    if (rc == 0 && o.client_cert &&
        tls_client_ctx_set_identity(ctx, o.client_cert, o.client_key, password, err, sizeof err) !=
                0)
        rc = input_error("--client-cert: %s", err);
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    struct status_match match;
    if (rc == 0) {
        if (o.match_status) {
            match.n = 0;
            if (status_match_add(&match, o.match_status, err, sizeof err) != 0)
                rc = input_error("--match-status: %s", err);
        } else {
            status_match_default(&match);
        }
    }
    if (rc != 0) {
        trust_policy_clear(&trust);
        SSL_CTX_free(ctx);
        return rc;
    }

    /* The effective names, as backend settings would derive them. */
    char host_header[300];
    bool default_port = url.port == (url.https ? 443 : 80);
    if (o.host)
        snprintf(host_header, sizeof host_header, "%s", o.host);
    else if (strchr(url.host, ':'))
        snprintf(host_header, sizeof host_header, default_port ? "[%s]" : "[%s]:%u", url.host,
                 url.port);
    else
        snprintf(host_header, sizeof host_header, default_port ? "%s" : "%s:%u", url.host,
                 url.port);
    const char *sni = NULL;
    if (url.https && !o.no_sni) {
        if (o.host && !name_is_ip_literal(o.host))
            sni = o.host;
        else if (!o.host && !url.host_is_ip)
            sni = url.host;
    }
    const char *check_name = NULL, *name_source;
    if (o.host) {
        check_name = o.host;
        name_source = "--host";
    } else if (trust.mode == TRUST_ALLOWLIST && url.host_is_ip) {
        name_source = "not checked: allow-list mode, backend addressed by IP, no --host";
    } else {
        check_name = url.host;
        name_source = url.host_is_ip ? "the URL; an IP address, so an iPAddress SAN is needed"
                                     : "the URL";
    }
    const char *alt_names[MAX_ALT_NAMES];
    size_t n_alt =
            trust.mode == TRUST_ALLOWLIST ? allowlist_names(&trust, alt_names, MAX_ALT_NAMES) : 0;

    struct probe_spec spec = {
            .url = o.url,
            .https = url.https,
            .host = url.host,
            .port = url.port,
            .path = o.path ? o.path : url.path,
            .sni = sni,
            .host_header = host_header,
            .check_name = url.https ? check_name : NULL,
            .name_source = name_source,
            .trust = &trust,
            .ssl_ctx = ctx,
            .match_status = &match,
            .match_body = o.match_body,
            .timeout_s = o.timeout_s,
            .alt_names = alt_names,
            .n_alt_names = n_alt,
            .second_look = true,
            .expiry_warning_days = 30,
            .cli = true,
            .user_agent = "Gatehouse-Probe/1",
    };

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    struct dns_resolver *dns = NULL;
    if (!url.host_is_ip) {
        dns = dns_resolver_new(loop, err, sizeof err);
        if (!dns) {
            trust_policy_clear(&trust);
            SSL_CTX_free(ctx);
            return input_error("%s", err);
        }
    }
    struct run_state st = {0};
    if (!probe_start(loop, dns, &spec, on_done, &st)) {
        fprintf(stderr, "gatehouse probe: out of memory\n");
        return 2;
    }
    while (!st.result)
        ev_run(loop, EVRUN_ONCE);

    if (o.json) {
        json_t *j = report_json(&spec, st.result);
        char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9))
                       : NULL;
        if (text) {
            puts(text);
            free(text);
        }
        json_decref(j);
    } else {
        bool colour = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
        report_text(stdout, &spec, st.result, colour);
    }
    fflush(stdout);
    int exit_code = probe_result_healthy(st.result) ? 0 : 1;
    probe_result_free(st.result);
    dns_resolver_free(dns);
    trust_policy_clear(&trust);
    SSL_CTX_free(ctx);
    return exit_code;
}
