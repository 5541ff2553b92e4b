/*
 * config: the Gatehouse configuration model and its loader.
 *
 * A config is loaded once from YAML (cfg_load), validated as a whole, and is immutable from then
 * on: a reload builds a new one and swaps it in. Everything a config owns lives in one arena and
 * is released by cfg_free(). Cross references (a rule's listener, a settings' probe, ...) are
 * resolved to pointers during the load, so consumers never look names up; the names as written
 * stay in the model for logs and messages, and every object keeps its source position.
 *
 * The YAML schema is the "Config" section of DESIGN.md; key names there are stable. Defaults and
 * limits follow ../shared/appgw-reference.md (the modelled gateway) and are the CFG_DEFAULT_*
 * macros below.
 *
 * Errors are collected, not reported one at a time: cfg_load() fills a struct cfg_errors with
 * every problem it finds, each as `file:line:col: key.path: reason`.
 */
#ifndef GATEHOUSE_CONFIG_CONFIG_H
#define GATEHOUSE_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Defaults (reference §1.10, §1.12, §4.4). Durations in milliseconds, sizes in bytes. */
#define CFG_DEFAULT_ADMIN_HOST          "127.0.0.1"
#define CFG_DEFAULT_ADMIN_PORT          9090
#define CFG_DEFAULT_REQUEST_TIMEOUT_MS  20000u
#define CFG_DEFAULT_PROBE_INTERVAL_MS   30000u
#define CFG_DEFAULT_PROBE_TIMEOUT_MS    30000u
#define CFG_DEFAULT_UNHEALTHY_THRESHOLD 3u
#define CFG_DEFAULT_PROBE_PATH          "/"
#define CFG_DEFAULT_STATUS_LO           200
#define CFG_DEFAULT_STATUS_HI           399
#define CFG_DEFAULT_MAX_URL_LENGTH      (32u * 1024)
#define CFG_DEFAULT_MAX_HEADER_BYTES    (32u * 1024)
#define CFG_DEFAULT_MAX_HEADERS         100u
#define CFG_DEFAULT_MAX_BODY_BYTES      (4ull * 1024 * 1024 * 1024)
#define CFG_DEFAULT_CLIENT_REQUEST_MS   60000u
#define CFG_DEFAULT_CLIENT_KEEPALIVE_MS 75000u

/* Limits (reference): enforced by the loader. */
#define CFG_MAX_HOST_NAMES_PER_LISTENER 5
#define CFG_MAX_SERVERS_PER_POOL        1200
#define CFG_MIN_PRIORITY                1
#define CFG_MAX_PRIORITY                20000
#define CFG_MIN_UNHEALTHY_THRESHOLD     1
#define CFG_MAX_UNHEALTHY_THRESHOLD     20
#define CFG_MAX_MATCH_BODY              4090
#define CFG_MAX_STATUS_RANGES           32
#define CFG_MAX_WORKERS                 1024
#define CFG_MAX_NAME_LENGTH             80

/* ---- model ---------------------------------------------------------------------------------- */

/* Where something was written: the config file, 1-based line and column. line 0 = no position. */
struct cfg_pos {
    const char *file;
    int line;
    int col;
};

/* A reference as written in the file (name == NULL when the key was absent). */
struct cfg_ref {
    const char *name;
    struct cfg_pos pos;
};

enum cfg_protocol { CFG_PROTO_HTTP = 0, CFG_PROTO_HTTPS };

enum cfg_tls_version { CFG_TLS_1_2 = 0, CFG_TLS_1_3 };

/* What a host field holds: a DNS name or an IP literal (IPv6 stored without brackets). */
enum cfg_addr_kind { CFG_ADDR_NAME = 0, CFG_ADDR_IPV4, CFG_ADDR_IPV6 };

struct cfg_hostport {
    const char *host;
    uint16_t port; /* 0 when the text named no port */
    enum cfg_addr_kind kind;
};

struct cfg_admin {
    struct cfg_hostport listen; /* default 127.0.0.1:9090 */
    struct cfg_pos pos;
};

struct cfg_access_log {
    bool enabled;     /* false for `access-log: off` */
    const char *path; /* "-" = stdout (the default); otherwise resolved against the config dir */
    struct cfg_pos pos;
};

enum cfg_cert_kind { CFG_CERT_PEM = 0, CFG_CERT_PFX };

/*
 * certificates: a listener certificate, or a client certificate presented to backends. File
 * paths are resolved (relative to the config file's directory) and were readable at load time;
 * their content is not looked at here (the tls module does that).
 */
struct cfg_certificate {
    const char *name;
    enum cfg_cert_kind kind;
    const char *pem;           /* CFG_CERT_PEM: chain, leaf first */
    const char *key;           /* CFG_CERT_PEM: private key */
    const char *pfx;           /* CFG_CERT_PFX: PKCS#12 bundle */
    const char *password_file; /* CFG_CERT_PFX: NULL = empty password */
    struct cfg_pos pos;
};

/* trusted-roots and auth-certs entries: a name and one certificate file (PEM or DER). */
struct cfg_cert_file {
    const char *name;
    const char *path;
    struct cfg_pos pos;
};

struct cfg_tls_policy {
    enum cfg_tls_version min_version; /* default TLSv1.2 */
    const char *ciphers;              /* TLS 1.2 cipher list; NULL = library default */
    const char *ciphersuites;         /* TLS 1.3 suites; NULL = library default */
};

/*
 * A listener host name, lower-cased. Wildcards (reference §1.4): '*' matches any run of
 * allowed characters (it may span labels), '?' exactly one.
 */
struct cfg_host_name {
    const char *name;
    bool wildcard;
    struct cfg_pos pos;
};

struct cfg_rule;

struct cfg_listener {
    const char *name;
    uint16_t port;
    enum cfg_protocol protocol;
    const char *address; /* bind address (IP literal); NULL = all addresses */
    enum cfg_addr_kind address_kind;
    struct cfg_ref certificate_ref;
    const struct cfg_certificate *certificate; /* non-NULL exactly when protocol is https */
    struct cfg_host_name *host_names;          /* none: a basic listener (any Host) */
    size_t n_host_names;
    struct cfg_tls_policy tls_policy;
    bool http2;
    const struct cfg_rule *rule; /* the rule naming this listener; NULL when none does */
    struct cfg_pos pos;
};

/* A pool member: `host:port` is reached on that port, a bare host on the settings' port. */
struct cfg_server {
    const char *host;
    uint16_t port; /* 0 = the backend settings' port */
    enum cfg_addr_kind kind;
    struct cfg_pos pos;
};

struct cfg_pool {
    const char *name;
    struct cfg_server *servers;
    size_t n_servers;
    struct cfg_pos pos;
};

struct cfg_status_range {
    uint16_t lo, hi; /* inclusive */
};

struct cfg_probe_match {
    struct cfg_status_range *status; /* default: one range 200-399 */
    size_t n_status;
    const char *body; /* substring the body must contain; NULL = not checked */
};

/*
 * A health probe. Each backend settings has one (its custom probe, or its own default probe with
 * is_default set). host == NULL and pick_host_name_from_backend_settings false only happens on
 * a default probe: the Host header is then 127.0.0.1 and no SNI is derived from it (§1.12).
 */
struct cfg_probe {
    const char *name; /* "default" on a default probe */
    bool is_default;
    enum cfg_protocol protocol;
    const char *host;
    bool pick_host_name_from_backend_settings;
    uint16_t port; /* 0 = the backend settings' port */
    const char *path;
    uint64_t interval_ms;
    uint64_t timeout_ms;
    unsigned int unhealthy_threshold;
    struct cfg_probe_match match;
    struct cfg_pos pos;
};

/* How a backend's certificate is verified (only for protocol https). */
enum cfg_trust_mode {
    CFG_TRUST_WELL_KNOWN = 0, /* the system trust store (default when nothing is given) */
    CFG_TRUST_ROOTS,          /* the chain must end at one of trusted_roots */
    CFG_TRUST_AUTH_CERTS,     /* allow-list: the leaf must match one of auth_certs */
};

struct cfg_backend_settings {
    const char *name;
    enum cfg_protocol protocol;
    uint16_t port;
    uint64_t request_timeout_ms;
    const char *host_name; /* Host header and SNI override; NULL = keep the client's Host */
    bool pick_host_name_from_backend;
    enum cfg_trust_mode trust;
    struct cfg_ref *trusted_root_refs; /* as written, n_trusted_roots of them */
    const struct cfg_cert_file **trusted_roots;
    size_t n_trusted_roots;
    struct cfg_ref *auth_cert_refs; /* as written, n_auth_certs of them */
    const struct cfg_cert_file **auth_certs;
    size_t n_auth_certs;
    struct cfg_ref probe_ref;
    const struct cfg_probe *probe; /* never NULL: the named probe or &default_probe */
    struct cfg_probe default_probe;
    struct cfg_ref client_certificate_ref;
    const struct cfg_certificate *client_certificate; /* NULL = none presented */
    struct cfg_pos pos;
};

struct cfg_rule {
    const char *name;
    unsigned int priority; /* 1 (first) .. 20000, unique */
    struct cfg_ref listener_ref, pool_ref, settings_ref;
    const struct cfg_listener *listener;
    const struct cfg_pool *pool;
    const struct cfg_backend_settings *settings;
    struct cfg_pos pos;
};

/* HTTP parser limits. */
struct cfg_limits {
    uint64_t max_header_bytes;
    uint64_t max_url_length;
    unsigned int max_headers;
    uint64_t max_body_bytes;
};

struct cfg_timeouts {
    uint64_t client_request_ms;   /* whole request head received, else 408 */
    uint64_t client_keepalive_ms; /* idle client connection */
};

/* The prober's reporting settings. */
struct cfg_health {
    uint64_t certificate_expiry_warning_ms; /* warn when a backend certificate expires sooner */
};

#define CFG_DEFAULT_CERT_EXPIRY_WARNING_MS (30ull * 86400 * 1000)

struct cfg_arena;

struct cfg {
    const char *path; /* as given to cfg_load */
    const char *dir;  /* base for relative paths */
    struct cfg_admin admin;
    unsigned int workers; /* 0 = auto (one per core) */
    struct cfg_access_log access_log;
    struct cfg_certificate *certificates;
    size_t n_certificates;
    struct cfg_cert_file *trusted_roots;
    size_t n_trusted_roots;
    struct cfg_cert_file *auth_certs;
    size_t n_auth_certs;
    struct cfg_listener *listeners;
    size_t n_listeners;
    struct cfg_pool *pools;
    size_t n_pools;
    struct cfg_backend_settings *settings;
    size_t n_settings;
    struct cfg_probe *probes; /* custom probes only; defaults live in their settings */
    size_t n_probes;
    struct cfg_rule *rules; /* in file order */
    size_t n_rules;
    const struct cfg_rule **rules_by_priority; /* n_rules, lowest priority number first */
    struct cfg_limits limits;
    struct cfg_timeouts timeouts;
    struct cfg_health health;
    struct cfg_arena *arena; /* private: owns everything above */
};

/* ---- diagnostics ---------------------------------------------------------------------------- */

enum cfg_severity { CFG_SEV_ERROR = 0, CFG_SEV_WARNING };

/* One problem. line == 0 when it has no position (the file could not be read, for example). */
struct cfg_error {
    enum cfg_severity severity;
    char *file;
    int line;
    int col;
    char *key; /* "rules[0].listener"; may be empty */
    char *msg;
};

struct cfg_errors {
    struct cfg_error *v;
    size_t count;
    size_t cap;
    size_t n_errors;
    size_t n_warnings;
};

void cfg_errors_init(struct cfg_errors *errs);
void cfg_errors_free(struct cfg_errors *errs);

/* Adds one problem; pos may be NULL. Copies every string. Aborts when out of memory. */
__attribute__((format(printf, 5, 6))) void cfg_errors_add(struct cfg_errors *errs,
                                                          enum cfg_severity sev,
                                                          const struct cfg_pos *pos,
                                                          const char *key, const char *fmt, ...);

/* Sorts by file position (stable), so messages come out in the order of the file. */
void cfg_errors_sort(struct cfg_errors *errs);

/*
 * Formats one problem as `file:line:col: key: msg` (`file:line:col: warning: key: msg` for a
 * warning). Returns what snprintf returns.
 */
int cfg_error_format(const struct cfg_error *e, char *buf, size_t size);

/* Prints every problem, one per line. */
void cfg_errors_print(const struct cfg_errors *errs, FILE *out);

/* ---- loading -------------------------------------------------------------------------------- */

/*
 * Loads and validates the YAML file at path. Returns the config, or NULL when it has at least
 * one error; errs (initialised by the caller) receives every error and warning either way.
 * Relative paths in the file are resolved against the file's directory. Checks files exist and
 * are readable, but does not look inside them.
 */
struct cfg *cfg_load(const char *path, struct cfg_errors *errs);

/*
 * The same from a buffer: name is used in messages, base_dir resolves relative paths (NULL =
 * the current directory). For tests, fuzzing and the ARM importer.
 */
struct cfg *cfg_load_mem(const char *text, size_t len, const char *name, const char *base_dir,
                         struct cfg_errors *errs);

void cfg_free(struct cfg *cfg);

const struct cfg_listener *cfg_find_listener(const struct cfg *cfg, const char *name);
const struct cfg_pool *cfg_find_pool(const struct cfg *cfg, const char *name);
const struct cfg_backend_settings *cfg_find_settings(const struct cfg *cfg, const char *name);
const struct cfg_probe *cfg_find_probe(const struct cfg *cfg, const char *name);

/* ---- value syntax (shared with command-line parsing) ------------------------------------------
 */

/*
 * Durations: "500ms", "20s", "1m", "2h", "1d", sums such as "1m30s", or a plain integer meaning
 * seconds. Returns 0 and stores milliseconds, or -1 with a static reason in *why.
 */
int cfg_parse_duration(const char *s, uint64_t *ms, const char **why);

/*
 * Sizes: integer bytes, or a number with a binary unit: "32k", "32KiB", "32KB", "1m", "4g",
 * "1t" (k = 1024; KB is read as KiB, as nginx does). Returns 0, or -1 with *why.
 */
int cfg_parse_size(const char *s, uint64_t *bytes, const char **why);

/*
 * Status code lists: "200-399", "401", "200,401", "200-299, 404" (100..599). Appends to out
 * (capacity max) and updates *n. Returns 0, or -1 with *why.
 */
int cfg_parse_status_ranges(const char *s, struct cfg_status_range *out, size_t max, size_t *n,
                            const char **why);

/* True when status is in one of the match's ranges. */
bool cfg_status_matches(const struct cfg_probe_match *m, int status);

/*
 * Checks a listener host name (exact or wildcard, reference §1.4). Returns 0 and sets *wildcard,
 * or -1 with a static reason in *why.
 */
int cfg_check_host_name(const char *name, bool *wildcard, const char **why);

/* True when host (len bytes, case-insensitive, no port) matches the listener host name. */
bool cfg_host_name_matches(const struct cfg_host_name *hn, const char *host, size_t len);

/*
 * "Did you mean": the candidate closest to word (edit distance, ignoring case, '-' and '_'), or
 * NULL when none is close enough to be a plausible typo.
 */
const char *cfg_suggest(const char *word, const char *const *candidates, size_t n);

const char *cfg_protocol_name(enum cfg_protocol p);
const char *cfg_tls_version_name(enum cfg_tls_version v);
const char *cfg_trust_mode_name(enum cfg_trust_mode t);

#endif
