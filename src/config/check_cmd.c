/*
 * check_cmd: `gatehouse check -c FILE`, the config validator. Loads the config exactly as
 * `gatehouse run` does, so what passes here is what the gateway accepts, and prints every
 * problem at once.
 */
#include "config/check_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config/config.h"

static const char usage_text[] =
        "usage: gatehouse check -c FILE [--json]\n"
        "\n"
        "Validates a Gatehouse config without starting anything: YAML syntax, every key and\n"
        "value, references between objects, files that must exist. Every problem is printed\n"
        "as file:line:col: key: reason.\n"
        "\n"
        "  -c, --config FILE  the config file (YAML)\n"
        "  --json             print one JSON object on stdout (valid, errors, warnings, summary)\n"
        "  -h, --help         this text\n"
        "\n"
        "Exit status: 0 valid, 1 invalid, 2 usage or input error.\n";

enum { OPT_JSON = 256 };

static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "gatehouse check: %s%s%s%s\n", what, arg ? " '" : "", arg ? arg : "",
            arg ? "'" : "");
    fprintf(stderr, "usage: gatehouse check -c FILE [--json] (see gatehouse check --help)\n");
    return 2;
}

/* ---- text output ---------------------------------------------------------------------------- */

static void print_listener(FILE *out, const struct cfg_listener *l)
{
    fprintf(out, "    %s: %s %s%s%s:%u", l->name, cfg_protocol_name(l->protocol),
            l->address && l->address_kind == CFG_ADDR_IPV6 ? "[" : "",
            l->address ? l->address : "*",
            l->address && l->address_kind == CFG_ADDR_IPV6 ? "]" : "", l->port);
    if (l->n_host_names) {
        fprintf(out, " hosts");
        for (size_t h = 0; h < l->n_host_names; h++)
            fprintf(out, " %s", l->host_names[h].name);
    } else {
        fprintf(out, " (any host)");
    }
    if (l->certificate)
        fprintf(out, " certificate %s", l->certificate->name);
    if (l->http2)
        fprintf(out, " h2");
    fprintf(out, "\n");
}

static void print_summary(FILE *out, const struct cfg *cfg)
{
    size_t servers = 0;
    for (size_t i = 0; i < cfg->n_pools; i++)
        servers += cfg->pools[i].n_servers;

    fprintf(out, "%s: valid\n", cfg->path);
    fprintf(out, "  listeners: %zu\n", cfg->n_listeners);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        print_listener(out, &cfg->listeners[i]);
    fprintf(out, "  backend pools: %zu, servers: %zu\n", cfg->n_pools, servers);
    for (size_t i = 0; i < cfg->n_pools; i++)
        fprintf(out, "    %s: %zu server%s\n", cfg->pools[i].name, cfg->pools[i].n_servers,
                cfg->pools[i].n_servers == 1 ? "" : "s");
    fprintf(out, "  backend settings: %zu\n", cfg->n_settings);
    for (size_t i = 0; i < cfg->n_settings; i++) {
        const struct cfg_backend_settings *s = &cfg->settings[i];
        fprintf(out, "    %s: %s port %u, probe %s", s->name, cfg_protocol_name(s->protocol),
                s->port, s->probe->name);
        if (s->protocol == CFG_PROTO_HTTPS)
            fprintf(out, ", trust %s", cfg_trust_mode_name(s->trust));
        fprintf(out, "\n");
    }
    fprintf(out, "  probes: %zu custom\n", cfg->n_probes);
    fprintf(out, "  rules: %zu\n", cfg->n_rules);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const struct cfg_rule *r = cfg->rules_by_priority[i];
        fprintf(out, "    %u %s: listener %s -> pool %s, settings %s\n", r->priority, r->name,
                r->listener->name, r->pool->name, r->settings->name);
    }
    fprintf(out,
            "  certificates: %zu, trusted roots: %zu, auth certs: %zu (files readable; "
            "contents not checked)\n",
            cfg->n_certificates, cfg->n_trusted_roots, cfg->n_auth_certs);
}

/* ---- JSON output ---------------------------------------------------------------------------- */

/* A JSON string; bytes that are not UTF-8 (a file name can hold any) become '?'. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (!copy)
        return json_null();
    for (size_t i = 0; i <= len; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_string(copy);
    free(copy);
    return j ? j : json_null();
}

static json_t *problems_json(const struct cfg_errors *errs, enum cfg_severity sev)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < errs->count; i++) {
        const struct cfg_error *e = &errs->v[i];
        if (e->severity != sev)
            continue;
        int len = cfg_error_format(e, NULL, 0);
        char *text = malloc(len > 0 ? (size_t)len + 1 : 1);
        if (text)
            cfg_error_format(e, text, (size_t)len + 1);
        json_t *o = json_object();
        json_object_set_new(o, "file", json_text(e->file));
        json_object_set_new(o, "line", json_integer(e->line));
        json_object_set_new(o, "col", json_integer(e->col));
        json_object_set_new(o, "key", json_text(e->key));
        json_object_set_new(o, "message", json_text(e->msg));
        /* The one-line form too, so a consumer can show exactly what the text output shows. */
        json_object_set_new(o, "text", text ? json_text(text) : json_null());
        free(text);
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *summary_json(const struct cfg *cfg)
{
    size_t servers = 0;
    for (size_t i = 0; i < cfg->n_pools; i++)
        servers += cfg->pools[i].n_servers;
    json_t *o = json_object();
    json_object_set_new(o, "listeners", json_integer((json_int_t)cfg->n_listeners));
    json_object_set_new(o, "backend_pools", json_integer((json_int_t)cfg->n_pools));
    json_object_set_new(o, "servers", json_integer((json_int_t)servers));
    json_object_set_new(o, "backend_settings", json_integer((json_int_t)cfg->n_settings));
    json_object_set_new(o, "probes", json_integer((json_int_t)cfg->n_probes));
    json_object_set_new(o, "rules", json_integer((json_int_t)cfg->n_rules));
    json_object_set_new(o, "certificates", json_integer((json_int_t)cfg->n_certificates));
    json_object_set_new(o, "trusted_roots", json_integer((json_int_t)cfg->n_trusted_roots));
    json_object_set_new(o, "auth_certs", json_integer((json_int_t)cfg->n_auth_certs));
    return o;
}

static int print_json(const char *path, const struct cfg *cfg, const struct cfg_errors *errs)
{
    json_t *o = json_object();
    json_object_set_new(o, "file", json_text(path));
    json_object_set_new(o, "valid", json_boolean(cfg != NULL));
    json_object_set_new(o, "errors", problems_json(errs, CFG_SEV_ERROR));
    json_object_set_new(o, "warnings", problems_json(errs, CFG_SEV_WARNING));
    json_object_set_new(o, "summary", cfg ? summary_json(cfg) : json_null());
    int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(o);
    return rc;
}

/* ---- main ----------------------------------------------------------------------------------- */

int check_cmd_main(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    int c;

    optind = 0; /* glibc: full re-initialisation, so the command can run twice in one process */
    opterr = 0; /* our own messages, which name the flag */
    while ((c = getopt_long(argc, argv, ":c:h", long_options, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case ':':
            return usage_error("missing value for", argv[optind - 1]);
        default:
            return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument (give the config with -c FILE)", argv[optind]);
    if (!path)
        return usage_error("missing -c FILE (the config to check)", NULL);

    /* A file that cannot be opened is an input error (2), not an invalid config (1). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not hang us */
    struct stat st;
    if (fd < 0) {
        fprintf(stderr, "gatehouse check: -c: cannot read '%s': %s\n", path, strerror(errno));
        return 2;
    }
    int is_reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!is_reg) {
        fprintf(stderr, "gatehouse check: -c: '%s' is not a regular file\n", path);
        return 2;
    }

    struct cfg_errors errs;
    cfg_errors_init(&errs);
    struct cfg *cfg = cfg_load(path, &errs);

    /*
     * CERTIFICATE CONTENT LINT: not done yet. This is where the tls module will be asked to
     * open every certificates / trusted-roots / auth-certs file of cfg (PEM, DER, PFX with its
     * password file) and add what it finds (unparseable file, key not matching the leaf, chain
     * out of order, expired or not yet valid, a CA certificate used as a leaf) to errs at each
     * entry's position, turning cfg into an invalid result when one is an error. Until then,
     * `check` validates that those files exist and are readable, and says so in its summary.
     */

    int rc = cfg ? 0 : 1;
    if (json) {
        print_json(path, cfg, &errs);
    } else {
        cfg_errors_print(&errs, stderr);
        if (cfg)
            print_summary(stdout, cfg);
        else
            fprintf(stderr, "%s: invalid: %zu error%s\n", path, errs.n_errors,
                    errs.n_errors == 1 ? "" : "s");
    }
    cfg_free(cfg);
    cfg_errors_free(&errs);
    return rc;
}
