/*
 * config_load: the schema walk. Reads the YAML tree (cfg_yaml.c) section by section into the
 * model of config.h, checking each value's type, syntax and range where it is written.
 * Everything that needs two objects (references, uniqueness, conflicts) is in
 * config_validate.c, which runs once every section has been read.
 *
 * Each object is read through a table of its keys (struct field): type, storage offset, bounds,
 * whether it is required. Unknown keys are errors with a "did you mean". Problems are collected
 * and the walk goes on, so one run reports all of them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "config/cfg_internal.h"

#define KEY_MAX    256
#define MAX_FIELDS 16
/* A config file is a few kilobytes; refuse anything absurd before parsing it. */
#define MAX_FILE_BYTES (16u * 1024 * 1024)

/* ---- messages ------------------------------------------------------------------------------- */

static struct cfg_pos npos(const struct cfg_loader *ld, const struct cfg_ynode *n)
{
    struct cfg_pos pos = {ld->file, n ? n->line : 0, n ? n->col : 0};
    return pos;
}

__attribute__((format(printf, 4, 5))) static void
nerr(struct cfg_loader *ld, const struct cfg_ynode *n, const char *key, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct cfg_pos pos = npos(ld, n);
    cfg_err_pos(ld, &pos, key, "%s", msg);
}

__attribute__((format(printf, 4, 5))) static void
nwarn(struct cfg_loader *ld, const struct cfg_ynode *n, const char *key, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct cfg_pos pos = npos(ld, n);
    cfg_warn_pos(ld, &pos, key, "%s", msg);
}

/* What a node is, for "expected X, got Y". */
static const char *got(const struct cfg_ynode *n, char *buf, size_t size)
{
    if (n->kind != CFG_Y_SCALAR || cfg_ynode_is_null(n))
        return cfg_ynode_describe(n);
    const char *q = n->plain ? "'" : "\"";
    if (n->len > 40) {
        /* Cut on a character boundary: messages stay valid UTF-8 (they end up in JSON). */
        int cut = 37;
        while (cut > 0 && ((unsigned char)n->str[cut] & 0xc0) == 0x80)
            cut--;
        snprintf(buf, size, "%s%.*s...%s", q, cut, n->str, q);
    } else
        snprintf(buf, size, "%s%s%s", q, n->str, q);
    return buf;
}

static void join_key(char *out, const char *path, const char *key)
{
    if (path[0])
        snprintf(out, KEY_MAX, "%s.%s", path, key);
    else
        snprintf(out, KEY_MAX, "%s", key);
}

static void index_key(char *out, const char *path, size_t i)
{
    snprintf(out, KEY_MAX, "%s[%zu]", path, i);
}

static void fmt_duration(uint64_t ms, char *buf, size_t size)
{
    if (ms % 1000)
        snprintf(buf, size, "%llums", (unsigned long long)ms);
    else
        snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
}

static void fmt_size(uint64_t b, char *buf, size_t size)
{
    static const char units[] = "kmgt";
    int u = -1;
    while (u < 3 && b >= 1024 && b % 1024 == 0) {
        b /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, size, "%llu", (unsigned long long)b);
    else
        snprintf(buf, size, "%llu%c", (unsigned long long)b, units[u]);
}

/* ---- scalar readers: each reports its own error and returns false ---------------------------- */

static bool read_string(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                        const char **out)
{
    char g[64];
    if (v->kind != CFG_Y_SCALAR || cfg_ynode_is_null(v)) {
        nerr(ld, v, key, "expected a string, got %s", got(v, g, sizeof g));
        return false;
    }
    if (v->len == 0) {
        nerr(ld, v, key, "must not be empty");
        return false;
    }
    *out = cfg_arena_strndup(ld->ar, v->str, v->len);
    return true;
}

static bool read_uint(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                      uint64_t min, uint64_t max, uint64_t *out)
{
    char g[64];
    if (v->kind != CFG_Y_SCALAR || cfg_ynode_is_null(v)) {
        nerr(ld, v, key, "expected a number, got %s", got(v, g, sizeof g));
        return false;
    }
    const char *s = v->str;
    bool digits = *s != '\0';
    for (const char *p = s; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    if (!digits) {
        if (s[0] == '-' && s[1] && isdigit((unsigned char)s[1]))
            nerr(ld, v, key, "must be between %llu and %llu (got %s)", (unsigned long long)min,
                 (unsigned long long)max, s);
        else
            nerr(ld, v, key, "expected a number, got %s", got(v, g, sizeof g));
        return false;
    }
    if (!v->plain) {
        nerr(ld, v, key, "expected a number, got the quoted string \"%s\" (remove the quotes)", s);
        return false;
    }
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno == ERANGE || x < min || x > max) {
        nerr(ld, v, key, "must be between %llu and %llu (got %s)", (unsigned long long)min,
             (unsigned long long)max, s);
        return false;
    }
    *out = x;
    return true;
}

/* YAML 1.2 booleans only: yes/no/on/off are strings there, and guessing would hide typos. */
static bool bool_value(const struct cfg_ynode *v, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    if (v->kind != CFG_Y_SCALAR || !v->plain)
        return false;
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(v->str, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(v->str, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool read_bool(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key, bool *out)
{
    char g[64];
    if (bool_value(v, out))
        return true;
    nerr(ld, v, key, "expected true or false, got %s", got(v, g, sizeof g));
    return false;
}

static bool read_duration(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                          uint64_t min, uint64_t max, uint64_t *out)
{
    char g[64], lo[32], hi[32];
    if (v->kind != CFG_Y_SCALAR || cfg_ynode_is_null(v)) {
        nerr(ld, v, key, "expected a duration such as 20s, got %s", got(v, g, sizeof g));
        return false;
    }
    const char *why;
    uint64_t ms;
    if (cfg_parse_duration(v->str, &ms, &why) < 0) {
        nerr(ld, v, key, "invalid duration %s: %s", got(v, g, sizeof g), why);
        return false;
    }
    if (ms < min || ms > max) {
        fmt_duration(min, lo, sizeof lo);
        fmt_duration(max, hi, sizeof hi);
        nerr(ld, v, key, "must be between %s and %s (got %s)", lo, hi, v->str);
        return false;
    }
    *out = ms;
    return true;
}

static bool read_size(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                      uint64_t min, uint64_t max, uint64_t *out)
{
    char g[64], lo[32], hi[32];
    if (v->kind != CFG_Y_SCALAR || cfg_ynode_is_null(v)) {
        nerr(ld, v, key, "expected a size such as 32k, got %s", got(v, g, sizeof g));
        return false;
    }
    const char *why;
    uint64_t bytes;
    if (cfg_parse_size(v->str, &bytes, &why) < 0) {
        nerr(ld, v, key, "invalid size %s: %s", got(v, g, sizeof g), why);
        return false;
    }
    if (bytes < min || bytes > max) {
        fmt_size(min, lo, sizeof lo);
        fmt_size(max, hi, sizeof hi);
        nerr(ld, v, key, "must be between %s and %s (got %s)", lo, hi, v->str);
        return false;
    }
    *out = bytes;
    return true;
}

/* Case-insensitive: the modelled gateway spells them Http and Https. */
static bool protocol_value(const struct cfg_ynode *v, enum cfg_protocol *out)
{
    if (v->kind == CFG_Y_SCALAR && strcasecmp(v->str, "http") == 0) {
        *out = CFG_PROTO_HTTP;
        return true;
    }
    if (v->kind == CFG_Y_SCALAR && strcasecmp(v->str, "https") == 0) {
        *out = CFG_PROTO_HTTPS;
        return true;
    }
    return false;
}

static bool read_protocol(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                          enum cfg_protocol *out)
{
    char g[64];
    if (protocol_value(v, out))
        return true;
    nerr(ld, v, key, "expected http or https, got %s", got(v, g, sizeof g));
    return false;
}

static bool read_name(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                      const char **out)
{
    if (!read_string(ld, v, key, out))
        return false;
    if (!cfg_is_valid_name(*out)) {
        nerr(ld, v, key,
             "invalid name '%s': use 1 to %d letters, digits, '-', '_' or '.', starting with a "
             "letter or digit",
             *out, CFG_MAX_NAME_LENGTH);
        *out = NULL;
        return false;
    }
    return true;
}

static bool read_ref(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                     struct cfg_ref *out)
{
    const char *name;
    if (!read_string(ld, v, key, &name))
        return false;
    out->name = name;
    out->pos = npos(ld, v);
    return true;
}

/* A host name for a Host header or SNI: a DNS name or an IP literal, no port. */
static bool read_host(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                      const char **out)
{
    if (!read_string(ld, v, key, out))
        return false;
    unsigned char buf[16];
    if (cfg_is_dns_name(*out) || inet_pton(AF_INET, *out, buf) == 1 ||
        inet_pton(AF_INET6, *out, buf) == 1)
        return true;
    nerr(ld, v, key, "'%s' is not a valid host name (a DNS name or an IP address, no port)", *out);
    *out = NULL;
    return false;
}

/* ---- files ---------------------------------------------------------------------------------- */

static const char *resolve_path(struct cfg_loader *ld, const char *path)
{
    if (path[0] == '/')
        return path;
    return cfg_arena_printf(ld->ar, "%s/%s", ld->dir, path);
}

const char *cfg_check_input_file(struct cfg_loader *ld, const char *path, const struct cfg_pos *pos,
                                 const char *key)
{
    const char *full = resolve_path(ld, path);
    char shown[PATH_MAX + 8] = "";
    if (strcmp(full, path) != 0)
        snprintf(shown, sizeof shown, " (%s)", full);
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        cfg_err_pos(ld, pos, key, "cannot read '%s'%s: %s", path, shown, strerror(errno));
        return full;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode))
        cfg_err_pos(ld, pos, key, "'%s'%s is not a regular file", path, shown);
    close(fd);
    return full;
}

static bool read_file(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                      const char **out)
{
    const char *path;
    if (!read_string(ld, v, key, &path))
        return false;
    struct cfg_pos pos = npos(ld, v);
    *out = cfg_check_input_file(ld, path, &pos, key);
    return true;
}

/* ---- the table-driven mapping walk ---------------------------------------------------------- */

enum fkind {
    FK_STRING,   /* const char *, not empty */
    FK_NAME,     /* const char *, an object name */
    FK_HOST,     /* const char *, a DNS name or IP literal */
    FK_FILE,     /* const char *, resolved path of a readable file */
    FK_UINT,     /* unsigned int in [min, max] */
    FK_PORT,     /* uint16_t, 1..65535 */
    FK_BOOL,     /* bool */
    FK_DURATION, /* uint64_t milliseconds in [min, max] */
    FK_SIZE,     /* uint64_t bytes in [min, max] */
    FK_PROTOCOL, /* enum cfg_protocol */
    FK_REF,      /* struct cfg_ref */
    FK_CUSTOM,   /* read by fn */
};

#define F_REQUIRED 1u

struct field {
    const char *key;
    enum fkind kind;
    size_t off;
    uint64_t min, max;
    unsigned flags;
    void (*fn)(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key, void *obj);
};

static void *at(void *obj, size_t off)
{
    return (char *)obj + off;
}

static void read_field(struct cfg_loader *ld, const struct field *f, const struct cfg_ynode *v,
                       const char *key, void *obj)
{
    void *p = at(obj, f->off);
    uint64_t u;
    switch (f->kind) {
    case FK_STRING:
        read_string(ld, v, key, p);
        break;
    case FK_NAME:
        read_name(ld, v, key, p);
        break;
    case FK_HOST:
        read_host(ld, v, key, p);
        break;
    case FK_FILE:
        read_file(ld, v, key, p);
        break;
    case FK_UINT:
        if (read_uint(ld, v, key, f->min, f->max, &u))
            *(unsigned int *)p = (unsigned int)u;
        break;
    case FK_PORT:
        if (read_uint(ld, v, key, 1, 65535, &u))
            *(uint16_t *)p = (uint16_t)u;
        break;
    case FK_BOOL:
        read_bool(ld, v, key, p);
        break;
    case FK_DURATION:
        read_duration(ld, v, key, f->min, f->max, p);
        break;
    case FK_SIZE:
        read_size(ld, v, key, f->min, f->max, p);
        break;
    case FK_PROTOCOL:
        read_protocol(ld, v, key, p);
        break;
    case FK_REF:
        read_ref(ld, v, key, p);
        break;
    case FK_CUSTOM:
        f->fn(ld, v, key, obj);
        break;
    }
}

static void unknown_key(struct cfg_loader *ld, const struct cfg_ynode *k, const char *key,
                        const struct field *fields, size_t nf)
{
    const char *names[MAX_FIELDS];
    for (size_t i = 0; i < nf; i++)
        names[i] = fields[i].key;
    const char *best = cfg_suggest(k->str, names, nf);
    if (best) {
        nerr(ld, k, key, "unknown key; did you mean '%s'?", best);
        return;
    }
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < nf && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 fields[i].key);
    nerr(ld, k, key, "unknown key (expected one of: %s)", list);
}

/*
 * Reads a mapping through its field table into obj. found[i] receives the value node of
 * fields[i] (NULL when absent), for the caller's checks between keys. Returns false when the
 * node is not a mapping.
 */
static bool walk_map(struct cfg_loader *ld, const struct cfg_ynode *map, const char *path,
                     const struct field *fields, size_t nf, void *obj,
                     const struct cfg_ynode **found)
{
    char g[64], key[KEY_MAX];
    if (nf > MAX_FIELDS) {
        fprintf(stderr, "gatehouse: config: a field table is larger than MAX_FIELDS\n");
        abort();
    }
    for (size_t i = 0; i < nf; i++)
        found[i] = NULL;
    if (map->kind != CFG_Y_MAP) {
        nerr(ld, map, path, "expected a mapping, got %s", got(map, g, sizeof g));
        return false;
    }
    for (size_t i = 0; i < map->n; i++) {
        const struct cfg_ynode *k = map->pairs[i].key, *v = map->pairs[i].value;
        join_key(key, path, k->str);
        size_t f = 0;
        while (f < nf && strcmp(fields[f].key, k->str) != 0)
            f++;
        if (f == nf) {
            unknown_key(ld, k, key, fields, nf);
            continue;
        }
        found[f] = v;
        read_field(ld, &fields[f], v, key, obj);
    }
    for (size_t i = 0; i < nf; i++) {
        if ((fields[i].flags & F_REQUIRED) && !found[i]) {
            nerr(ld, map, path[0] ? path : fields[i].key, "missing required key '%s'",
                 fields[i].key);
        }
    }
    return true;
}

static size_t field_index(const struct field *fields, size_t nf, const char *key)
{
    for (size_t i = 0; i < nf; i++) {
        if (strcmp(fields[i].key, key) == 0)
            return i;
    }
    /* A programming error: every caller names a key of its own table. */
    fprintf(stderr, "gatehouse: config: no field '%s' in its table\n", key);
    abort();
}

#define FOUND(fields, found, key)                                                                  \
    ((found)[field_index((fields), sizeof(fields) / sizeof((fields)[0]), (key))])
#define NFIELDS(fields) (sizeof(fields) / sizeof((fields)[0]))

/* A list node, or an error naming what was there instead. */
static bool expect_list(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    char g[64];
    if (v->kind == CFG_Y_SEQ)
        return true;
    nerr(ld, v, key, "expected a list, got %s", got(v, g, sizeof g));
    return false;
}

/* ---- admin, workers, access-log ------------------------------------------------------------- */

static void read_admin_listen(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                              void *obj)
{
    struct cfg_admin *admin = obj;
    const char *s, *why;
    if (!read_string(ld, v, key, &s))
        return;
    char host[256];
    struct cfg_hostport hp;
    if (cfg_split_hostport(s, host, sizeof host, &hp.port, &hp.kind, true, &why) < 0) {
        nerr(ld, v, key, "invalid address '%s': %s", s, why);
        return;
    }
    hp.host = cfg_arena_strdup(ld->ar, host);
    admin->listen = hp;
    admin->pos = npos(ld, v);
    bool loopback = (hp.kind == CFG_ADDR_IPV4 && strncmp(host, "127.", 4) == 0) ||
                    (hp.kind == CFG_ADDR_IPV6 && strcmp(host, "::1") == 0) ||
                    (hp.kind == CFG_ADDR_NAME && strcmp(host, "localhost") == 0);
    if (!loopback)
        nwarn(ld, v, key, "the admin API has no authentication and '%s' is not a loopback address",
              host);
}

static const struct field admin_fields[] = {
        {"listen", FK_CUSTOM, 0, 0, 0, 0, read_admin_listen},
};

static void load_admin(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    const struct cfg_ynode *found[MAX_FIELDS];
    walk_map(ld, v, key, admin_fields, NFIELDS(admin_fields), &ld->cfg->admin, found);
}

static void load_workers(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    if (v->kind == CFG_Y_SCALAR && strcmp(v->str, "auto") == 0) {
        ld->cfg->workers = 0;
        return;
    }
    char g[64];
    const char *s = v->kind == CFG_Y_SCALAR ? v->str : "";
    if (!isdigit((unsigned char)s[0]) && s[0] != '-') {
        nerr(ld, v, key, "expected auto or a number of threads, got %s", got(v, g, sizeof g));
        return;
    }
    uint64_t n;
    if (read_uint(ld, v, key, 1, CFG_MAX_WORKERS, &n))
        ld->cfg->workers = (unsigned int)n;
}

static void read_access_log_path(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                                 void *obj)
{
    struct cfg_access_log *al = obj;
    const char *path;
    if (!read_string(ld, v, key, &path))
        return;
    if (strcmp(path, "-") == 0) {
        al->path = "-";
        return;
    }
    al->path = resolve_path(ld, path);
    /* The log file itself is created at start-up; its directory must exist already. */
    char *dir = cfg_arena_strdup(ld->tmp, al->path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    struct stat st;
    if (stat(dir, &st) != 0)
        nerr(ld, v, key, "the directory of '%s' (%s) does not exist: %s", path, dir,
             strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        nerr(ld, v, key, "'%s' is not a directory", dir);
    else if (access(dir, W_OK) != 0)
        nerr(ld, v, key, "cannot write in '%s': %s", dir, strerror(errno));
    else if (stat(al->path, &st) == 0 && S_ISDIR(st.st_mode))
        nerr(ld, v, key, "'%s' is a directory", path);
}

static const struct field access_log_fields[] = {
        {"path", FK_CUSTOM, 0, 0, 0, 0, read_access_log_path},
};

static void load_access_log(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    struct cfg_access_log *al = &ld->cfg->access_log;
    al->pos = npos(ld, v);
    if (v->kind == CFG_Y_SCALAR && v->plain &&
        (strcmp(v->str, "off") == 0 || strcmp(v->str, "false") == 0)) {
        al->enabled = false;
        return;
    }
    if (v->kind != CFG_Y_MAP) {
        char g[64];
        nerr(ld, v, key, "expected off or a mapping such as { path: \"-\" }, got %s",
             got(v, g, sizeof g));
        return;
    }
    const struct cfg_ynode *found[MAX_FIELDS];
    walk_map(ld, v, key, access_log_fields, NFIELDS(access_log_fields), al, found);
}

/* ---- certificates, trusted-roots, auth-certs (mappings name -> ...) ------------------------- */

static const struct field certificate_fields[] = {
        {"pem", FK_FILE, offsetof(struct cfg_certificate, pem), 0, 0, 0, NULL},
        {"key", FK_FILE, offsetof(struct cfg_certificate, key), 0, 0, 0, NULL},
        {"pfx", FK_FILE, offsetof(struct cfg_certificate, pfx), 0, 0, 0, NULL},
        {"password-file", FK_FILE, offsetof(struct cfg_certificate, password_file), 0, 0, 0, NULL},
};

static void load_certificate(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                             struct cfg_certificate *c)
{
    const struct cfg_ynode *found[MAX_FIELDS];
    if (!walk_map(ld, v, key, certificate_fields, NFIELDS(certificate_fields), c, found))
        return;
    const struct cfg_ynode *pem = FOUND(certificate_fields, found, "pem");
    const struct cfg_ynode *pkey = FOUND(certificate_fields, found, "key");
    const struct cfg_ynode *pfx = FOUND(certificate_fields, found, "pfx");
    const struct cfg_ynode *pw = FOUND(certificate_fields, found, "password-file");
    c->kind = pfx ? CFG_CERT_PFX : CFG_CERT_PEM;
    if (pfx && (pem || pkey)) {
        nerr(ld, pem ? pem : pkey, key,
             "give either pem and key, or pfx (with password-file), not both");
    } else if (!pfx && !pem && !pkey) {
        nerr(ld, v, key, "give pem and key, or pfx and password-file");
    } else if (!pfx && !pem) {
        nerr(ld, v, key, "missing required key 'pem' (the certificate chain, leaf first)");
    } else if (!pfx && !pkey) {
        nerr(ld, v, key, "missing required key 'key' (the private key of the pem)");
    }
    if (pw && !pfx)
        nerr(ld, pw, key, "password-file goes with pfx; a pem key is read unencrypted");
}

/* Reads a mapping name -> item; load_one reads one value. Names are the keys. */
static size_t load_named_map(struct cfg_loader *ld, const struct cfg_ynode *v, const char *path,
                             void **array, size_t elem_size,
                             void (*load_one)(struct cfg_loader *ld, const struct cfg_ynode *k,
                                              const struct cfg_ynode *v, const char *key,
                                              void *obj))
{
    char g[64], key[KEY_MAX];
    if (v->kind != CFG_Y_MAP) {
        if (cfg_ynode_is_null(v))
            return 0;
        nerr(ld, v, path, "expected a mapping of names, got %s", got(v, g, sizeof g));
        return 0;
    }
    char *arr = cfg_arena_array(ld->ar, v->n, elem_size);
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_ynode *k = v->pairs[i].key;
        join_key(key, path, k->str);
        if (!cfg_is_valid_name(k->str))
            nerr(ld, k, key,
                 "invalid name: use 1 to %d letters, digits, '-', '_' or '.', starting with a "
                 "letter or digit",
                 CFG_MAX_NAME_LENGTH);
        load_one(ld, k, v->pairs[i].value, key, arr + i * elem_size);
    }
    *array = arr;
    return v->n;
}

static void load_one_certificate(struct cfg_loader *ld, const struct cfg_ynode *k,
                                 const struct cfg_ynode *v, const char *key, void *obj)
{
    struct cfg_certificate *c = obj;
    c->name = cfg_arena_strdup(ld->ar, k->str);
    c->pos = npos(ld, k);
    load_certificate(ld, v, key, c);
}

static void load_one_cert_file(struct cfg_loader *ld, const struct cfg_ynode *k,
                               const struct cfg_ynode *v, const char *key, void *obj)
{
    struct cfg_cert_file *f = obj;
    f->name = cfg_arena_strdup(ld->ar, k->str);
    f->pos = npos(ld, k);
    read_file(ld, v, key, &f->path);
}

static void load_certificates(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    void *arr = NULL;
    ld->cfg->n_certificates =
            load_named_map(ld, v, key, &arr, sizeof(struct cfg_certificate), load_one_certificate);
    ld->cfg->certificates = arr;
}

static void load_trusted_roots(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    void *arr = NULL;
    ld->cfg->n_trusted_roots =
            load_named_map(ld, v, key, &arr, sizeof(struct cfg_cert_file), load_one_cert_file);
    ld->cfg->trusted_roots = arr;
}

static void load_auth_certs(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    void *arr = NULL;
    ld->cfg->n_auth_certs =
            load_named_map(ld, v, key, &arr, sizeof(struct cfg_cert_file), load_one_cert_file);
    ld->cfg->auth_certs = arr;
}

/* ---- lists of objects ------------------------------------------------------------------------ */

static const struct cfg_ynode *map_value(const struct cfg_ynode *map, const char *key)
{
    if (map->kind != CFG_Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->pairs[i].key->str, key) == 0)
            return map->pairs[i].value;
    }
    return NULL;
}

/*
 * Reads a list of mappings; load_one reads one item. Every item gets a slot, so indexes in
 * messages match the file even when an item is broken. Then checks that the names (a const
 * char * at name_off in each item) are unique. Returns the count.
 */
static size_t load_list(struct cfg_loader *ld, const struct cfg_ynode *v, const char *path,
                        void **array, size_t elem_size, size_t name_off,
                        void (*load_one)(struct cfg_loader *ld, const struct cfg_ynode *v,
                                         const char *key, void *obj))
{
    char key[KEY_MAX];
    if (cfg_ynode_is_null(v))
        return 0;
    if (!expect_list(ld, v, path))
        return 0;
    char *arr = cfg_arena_array(ld->ar, v->n, elem_size);
    for (size_t i = 0; i < v->n; i++) {
        index_key(key, path, i);
        load_one(ld, v->items[i], key, arr + i * elem_size);
    }
    for (size_t j = 0; j < v->n; j++) {
        const char *nj = *(const char **)at(arr + j * elem_size, name_off);
        for (size_t i = 0; nj && i < j; i++) {
            const char *ni = *(const char **)at(arr + i * elem_size, name_off);
            if (!ni || strcmp(ni, nj) != 0)
                continue;
            index_key(key, path, j);
            strncat(key, ".name", KEY_MAX - strlen(key) - 1);
            nerr(ld, map_value(v->items[j], "name"), key,
                 "'%s' is already the name of %s[%zu] (line %d)", nj, path, i, v->items[i]->line);
            break;
        }
    }
    *array = arr;
    return v->n;
}

/* ---- listeners ------------------------------------------------------------------------------ */

static void read_host_names(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                            void *obj)
{
    struct cfg_listener *l = obj;
    char ikey[KEY_MAX];
    if (!expect_list(ld, v, key))
        return;
    if (v->n > CFG_MAX_HOST_NAMES_PER_LISTENER) {
        nerr(ld, v, key, "%zu host names; a listener has at most %d", v->n,
             CFG_MAX_HOST_NAMES_PER_LISTENER);
        return;
    }
    l->host_names = cfg_arena_array(ld->ar, v->n, sizeof *l->host_names);
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_ynode *item = v->items[i];
        const char *s, *why;
        index_key(ikey, key, i);
        if (!read_string(ld, item, ikey, &s))
            continue;
        char *lower = cfg_arena_strdup(ld->ar, s);
        for (char *p = lower; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        bool wild;
        if (cfg_check_host_name(lower, &wild, &why) < 0) {
            nerr(ld, item, ikey, "invalid host name '%s': %s", s, why);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < l->n_host_names; j++)
            dup = dup || strcmp(l->host_names[j].name, lower) == 0;
        if (dup) {
            nerr(ld, item, ikey, "host name '%s' is listed twice", s);
            continue;
        }
        struct cfg_host_name *hn = &l->host_names[l->n_host_names++];
        hn->name = lower;
        hn->wildcard = wild;
        hn->pos = npos(ld, item);
    }
    if (v->n == 0)
        nerr(ld, v, key, "empty list; leave host-names out for a basic listener (any host)");
}

static void read_listen_address(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                                void *obj)
{
    struct cfg_listener *l = obj;
    const char *s;
    if (!read_string(ld, v, key, &s))
        return;
    unsigned char buf[16];
    if (inet_pton(AF_INET, s, buf) == 1) {
        l->address_kind = CFG_ADDR_IPV4;
    } else if (inet_pton(AF_INET6, s, buf) == 1) {
        l->address_kind = CFG_ADDR_IPV6;
    } else {
        nerr(ld, v, key, "'%s' is not an IP address (a bind address, without brackets or port)", s);
        return;
    }
    l->address = s;
}

static void read_min_version(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                             void *obj)
{
    struct cfg_tls_policy *tp = obj;
    char g[64];
    if (v->kind == CFG_Y_SCALAR) {
        if (strcasecmp(v->str, "TLSv1.2") == 0) {
            tp->min_version = CFG_TLS_1_2;
            return;
        }
        if (strcasecmp(v->str, "TLSv1.3") == 0) {
            tp->min_version = CFG_TLS_1_3;
            return;
        }
        if (strcasecmp(v->str, "TLSv1.0") == 0 || strcasecmp(v->str, "TLSv1.1") == 0 ||
            strcasecmp(v->str, "TLSv1") == 0) {
            nerr(ld, v, key, "%s is not supported; use TLSv1.2 or TLSv1.3", v->str);
            return;
        }
    }
    nerr(ld, v, key, "expected TLSv1.2 or TLSv1.3, got %s", got(v, g, sizeof g));
}

static const struct field tls_policy_fields[] = {
        {"min-version", FK_CUSTOM, 0, 0, 0, 0, read_min_version},
        {"ciphers", FK_STRING, offsetof(struct cfg_tls_policy, ciphers), 0, 0, 0, NULL},
        {"ciphersuites", FK_STRING, offsetof(struct cfg_tls_policy, ciphersuites), 0, 0, 0, NULL},
};

static void read_tls_policy(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                            void *obj)
{
    struct cfg_listener *l = obj;
    const struct cfg_ynode *found[MAX_FIELDS];
    walk_map(ld, v, key, tls_policy_fields, NFIELDS(tls_policy_fields), &l->tls_policy, found);
}

static const struct field listener_fields[] = {
        {"name", FK_NAME, offsetof(struct cfg_listener, name), 0, 0, F_REQUIRED, NULL},
        {"port", FK_PORT, offsetof(struct cfg_listener, port), 0, 0, F_REQUIRED, NULL},
        {"protocol", FK_PROTOCOL, offsetof(struct cfg_listener, protocol), 0, 0, F_REQUIRED, NULL},
        {"address", FK_CUSTOM, 0, 0, 0, 0, read_listen_address},
        {"certificate", FK_REF, offsetof(struct cfg_listener, certificate_ref), 0, 0, 0, NULL},
        {"host-names", FK_CUSTOM, 0, 0, 0, 0, read_host_names},
        {"tls-policy", FK_CUSTOM, 0, 0, 0, 0, read_tls_policy},
        {"http2", FK_BOOL, offsetof(struct cfg_listener, http2), 0, 0, 0, NULL},
};

static void load_listener(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                          void *obj)
{
    struct cfg_listener *l = obj;
    const struct cfg_ynode *found[MAX_FIELDS];
    l->pos = npos(ld, v);
    l->tls_policy.min_version = CFG_TLS_1_2;
    if (!walk_map(ld, v, key, listener_fields, NFIELDS(listener_fields), l, found))
        return;
    const struct cfg_ynode *proto = FOUND(listener_fields, found, "protocol");
    const struct cfg_ynode *cert = FOUND(listener_fields, found, "certificate");
    char k[KEY_MAX];
    enum cfg_protocol p;
    if (!proto || !protocol_value(proto, &p))
        return; /* the protocol's own error says enough */
    if (l->protocol == CFG_PROTO_HTTPS && !cert) {
        nerr(ld, proto, key, "listener '%s' uses https but names no certificate",
             l->name ? l->name : "?");
        return;
    }
    if (l->protocol != CFG_PROTO_HTTP)
        return;
    /* Options that only mean something with TLS are refused on http rather than ignored. */
    static const char *const tls_only[] = {"certificate", "tls-policy", "http2"};
    for (size_t i = 0; i < 3; i++) {
        const struct cfg_ynode *n = FOUND(listener_fields, found, tls_only[i]);
        if (!n)
            continue;
        join_key(k, key, tls_only[i]);
        if (strcmp(tls_only[i], "http2") == 0 && !l->http2)
            continue;
        nerr(ld, n, k, "only for protocol https (listener '%s' uses http)",
             l->name ? l->name : "?");
    }
}

static void load_listeners(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    void *arr = NULL;
    ld->cfg->n_listeners = load_list(ld, v, key, &arr, sizeof(struct cfg_listener),
                                     offsetof(struct cfg_listener, name), load_listener);
    ld->cfg->listeners = arr;
}

/* ---- backend pools -------------------------------------------------------------------------- */

static void read_servers(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                         void *obj)
{
    struct cfg_pool *pool = obj;
    char ikey[KEY_MAX], host[256], g[64];
    if (!expect_list(ld, v, key))
        return;
    if (v->n > CFG_MAX_SERVERS_PER_POOL) {
        nerr(ld, v, key, "%zu servers; a pool has at most %d", v->n, CFG_MAX_SERVERS_PER_POOL);
        return;
    }
    pool->servers = cfg_arena_array(ld->ar, v->n, sizeof *pool->servers);
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_ynode *item = v->items[i];
        const char *why;
        index_key(ikey, key, i);
        if (item->kind != CFG_Y_SCALAR || cfg_ynode_is_null(item)) {
            nerr(ld, item, ikey, "expected \"host:port\" or a host, got %s",
                 got(item, g, sizeof g));
            continue;
        }
        struct cfg_server s = {0};
        if (cfg_split_hostport(item->str, host, sizeof host, &s.port, &s.kind, false, &why) < 0) {
            nerr(ld, item, ikey, "invalid server '%s': %s", item->str, why);
            continue;
        }
        s.host = cfg_arena_strdup(ld->ar, host);
        s.pos = npos(ld, item);
        bool dup = false;
        for (size_t j = 0; j < pool->n_servers && !dup; j++) {
            dup = strcasecmp(pool->servers[j].host, s.host) == 0 && pool->servers[j].port == s.port;
        }
        if (dup) {
            nerr(ld, item, ikey, "server '%s' is listed twice", item->str);
            continue;
        }
        pool->servers[pool->n_servers++] = s;
    }
}

static const struct field pool_fields[] = {
        {"name", FK_NAME, offsetof(struct cfg_pool, name), 0, 0, F_REQUIRED, NULL},
        {"servers", FK_CUSTOM, 0, 0, 0, F_REQUIRED, read_servers},
};

static void load_pool(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key, void *obj)
{
    struct cfg_pool *pool = obj;
    const struct cfg_ynode *found[MAX_FIELDS];
    pool->pos = npos(ld, v);
    if (!walk_map(ld, v, key, pool_fields, NFIELDS(pool_fields), pool, found))
        return;
    const struct cfg_ynode *servers = FOUND(pool_fields, found, "servers");
    if (servers && servers->kind == CFG_Y_SEQ && servers->n == 0) {
        char k[KEY_MAX];
        join_key(k, key, "servers");
        nwarn(ld, servers, k, "pool '%s' is empty: requests routed to it get 502",
              pool->name ? pool->name : "?");
    }
}

static void load_pools(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    void *arr = NULL;
    ld->cfg->n_pools = load_list(ld, v, key, &arr, sizeof(struct cfg_pool),
                                 offsetof(struct cfg_pool, name), load_pool);
    ld->cfg->pools = arr;
}

/* ---- probes --------------------------------------------------------------------------------- */

static void read_probe_path(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                            void *obj)
{
    struct cfg_probe *p = obj;
    const char *s;
    if (!read_string(ld, v, key, &s))
        return;
    if (s[0] != '/') {
        nerr(ld, v, key, "must start with '/' (got '%s')", s);
        return;
    }
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
            nerr(ld, v, key, "must not contain spaces or control characters (percent-encode)");
            return;
        }
    }
    p->path = s;
}

static void read_status_list(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                             void *obj)
{
    struct cfg_probe_match *m = obj;
    char ikey[KEY_MAX], g[64];
    if (!expect_list(ld, v, key))
        return;
    if (v->n == 0) {
        nerr(ld, v, key, "empty list; leave status out for the default 200-399");
        return;
    }
    struct cfg_status_range ranges[CFG_MAX_STATUS_RANGES];
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct cfg_ynode *item = v->items[i];
        const char *why;
        index_key(ikey, key, i);
        if (item->kind != CFG_Y_SCALAR || cfg_ynode_is_null(item)) {
            nerr(ld, item, ikey, "expected a status code or a range such as \"200-399\", got %s",
                 got(item, g, sizeof g));
            return;
        }
        if (cfg_parse_status_ranges(item->str, ranges, CFG_MAX_STATUS_RANGES, &n, &why) < 0) {
            nerr(ld, item, ikey, "invalid status '%s': %s", item->str, why);
            return;
        }
    }
    m->status = cfg_arena_array(ld->ar, n, sizeof *m->status);
    memcpy(m->status, ranges, n * sizeof *m->status);
    m->n_status = n;
}

static void read_match_body(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                            void *obj)
{
    struct cfg_probe_match *m = obj;
    const char *s;
    if (!read_string(ld, v, key, &s))
        return;
    if (strlen(s) > CFG_MAX_MATCH_BODY) {
        nerr(ld, v, key, "%zu characters; at most %d", strlen(s), CFG_MAX_MATCH_BODY);
        return;
    }
    m->body = s;
}

static const struct field match_fields[] = {
        {"status", FK_CUSTOM, 0, 0, 0, 0, read_status_list},
        {"body", FK_CUSTOM, 0, 0, 0, 0, read_match_body},
};

static void read_match(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key, void *obj)
{
    struct cfg_probe *p = obj;
    const struct cfg_ynode *found[MAX_FIELDS];
    walk_map(ld, v, key, match_fields, NFIELDS(match_fields), &p->match, found);
}

#define SECONDS(n) ((uint64_t)(n)*1000)

static const struct field probe_fields[] = {
        {"name", FK_NAME, offsetof(struct cfg_probe, name), 0, 0, F_REQUIRED, NULL},
        {"protocol", FK_PROTOCOL, offsetof(struct cfg_probe, protocol), 0, 0, F_REQUIRED, NULL},
        {"host", FK_HOST, offsetof(struct cfg_probe, host), 0, 0, 0, NULL},
        {"pick-host-name-from-backend-settings", FK_BOOL,
         offsetof(struct cfg_probe, pick_host_name_from_backend_settings), 0, 0, 0, NULL},
        {"port", FK_PORT, offsetof(struct cfg_probe, port), 0, 0, 0, NULL},
        {"path", FK_CUSTOM, 0, 0, 0, 0, read_probe_path},
        {"interval", FK_DURATION, offsetof(struct cfg_probe, interval_ms), SECONDS(1),
         SECONDS(86400), 0, NULL},
        {"timeout", FK_DURATION, offsetof(struct cfg_probe, timeout_ms), SECONDS(1), SECONDS(86400),
         0, NULL},
        {"unhealthy-threshold", FK_UINT, offsetof(struct cfg_probe, unhealthy_threshold),
         CFG_MIN_UNHEALTHY_THRESHOLD, CFG_MAX_UNHEALTHY_THRESHOLD, 0, NULL},
        {"match", FK_CUSTOM, 0, 0, 0, 0, read_match},
};

/* The default status match, shared (the config is immutable). */
static struct cfg_status_range *default_status(struct cfg_loader *ld)
{
    struct cfg_status_range *r = cfg_arena_alloc(ld->ar, sizeof *r);
    r->lo = CFG_DEFAULT_STATUS_LO;
    r->hi = CFG_DEFAULT_STATUS_HI;
    return r;
}

static void probe_defaults(struct cfg_loader *ld, struct cfg_probe *p)
{
    p->path = CFG_DEFAULT_PROBE_PATH;
    p->interval_ms = CFG_DEFAULT_PROBE_INTERVAL_MS;
    p->timeout_ms = CFG_DEFAULT_PROBE_TIMEOUT_MS;
    p->unhealthy_threshold = CFG_DEFAULT_UNHEALTHY_THRESHOLD;
    p->match.status = default_status(ld);
    p->match.n_status = 1;
}

static void load_probe(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key, void *obj)
{
    struct cfg_probe *p = obj;
    const struct cfg_ynode *found[MAX_FIELDS];
    p->pos = npos(ld, v);
    probe_defaults(ld, p);
    if (!walk_map(ld, v, key, probe_fields, NFIELDS(probe_fields), p, found))
        return;
    const struct cfg_ynode *host = FOUND(probe_fields, found, "host");
    const struct cfg_ynode *pick =
            FOUND(probe_fields, found, "pick-host-name-from-backend-settings");
    const struct cfg_ynode *interval = FOUND(probe_fields, found, "interval");
    const struct cfg_ynode *timeout = FOUND(probe_fields, found, "timeout");
    const char *name = p->name ? p->name : "?";
    char k[KEY_MAX];
    if (host && pick && p->pick_host_name_from_backend_settings) {
        join_key(k, key, "pick-host-name-from-backend-settings");
        nerr(ld, pick, k,
             "probe '%s': host and pick-host-name-from-backend-settings: true are "
             "mutually exclusive",
             name);
    } else if (!host && !p->pick_host_name_from_backend_settings) {
        nerr(ld, v, key,
             "probe '%s' needs host (the Host header and SNI), or "
             "pick-host-name-from-backend-settings: true",
             name);
    }
    if (p->timeout_ms > p->interval_ms && (interval || timeout)) {
        char t[32], i[32];
        fmt_duration(p->timeout_ms, t, sizeof t);
        fmt_duration(p->interval_ms, i, sizeof i);
        join_key(k, key, "timeout");
        nwarn(ld, timeout ? timeout : interval, k,
              "probe '%s': timeout %s is longer than the interval %s", name, t, i);
    }
}

static void load_probes(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    void *arr = NULL;
    ld->cfg->n_probes = load_list(ld, v, key, &arr, sizeof(struct cfg_probe),
                                  offsetof(struct cfg_probe, name), load_probe);
    ld->cfg->probes = arr;
}

/* ---- backend settings ----------------------------------------------------------------------- */

/* A list of names, kept as references (resolved in config_validate.c). */
static size_t read_ref_list(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                            struct cfg_ref **out)
{
    char ikey[KEY_MAX];
    if (!expect_list(ld, v, key))
        return 0;
    if (v->n == 0) {
        nerr(ld, v, key, "empty list; leave it out to verify with the well-known CAs");
        return 0;
    }
    struct cfg_ref *refs = cfg_arena_array(ld->ar, v->n, sizeof *refs);
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        index_key(ikey, key, i);
        if (read_ref(ld, v->items[i], ikey, &refs[n]))
            n++;
    }
    *out = refs;
    return n;
}

static void read_trusted_roots(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                               void *obj)
{
    struct cfg_backend_settings *s = obj;
    s->n_trusted_roots = read_ref_list(ld, v, key, &s->trusted_root_refs);
}

static void read_auth_certs(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                            void *obj)
{
    struct cfg_backend_settings *s = obj;
    s->n_auth_certs = read_ref_list(ld, v, key, &s->auth_cert_refs);
}

static void read_well_known_ca(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                               void *obj)
{
    bool b;
    (void)obj; /* settings_trust() turns it into the trust mode with the other options */
    read_bool(ld, v, key, &b);
}

static const struct field settings_fields[] = {
        {"name", FK_NAME, offsetof(struct cfg_backend_settings, name), 0, 0, F_REQUIRED, NULL},
        {"protocol", FK_PROTOCOL, offsetof(struct cfg_backend_settings, protocol), 0, 0, F_REQUIRED,
         NULL},
        {"port", FK_PORT, offsetof(struct cfg_backend_settings, port), 0, 0, F_REQUIRED, NULL},
        {"request-timeout", FK_DURATION, offsetof(struct cfg_backend_settings, request_timeout_ms),
         SECONDS(1), SECONDS(86400), 0, NULL},
        {"host-name", FK_HOST, offsetof(struct cfg_backend_settings, host_name), 0, 0, 0, NULL},
        {"pick-host-name-from-backend", FK_BOOL,
         offsetof(struct cfg_backend_settings, pick_host_name_from_backend), 0, 0, 0, NULL},
        {"trusted-roots", FK_CUSTOM, 0, 0, 0, 0, read_trusted_roots},
        {"well-known-ca", FK_CUSTOM, 0, 0, 0, 0, read_well_known_ca}, /* stored as trust */
        {"auth-certs", FK_CUSTOM, 0, 0, 0, 0, read_auth_certs},
        {"probe", FK_REF, offsetof(struct cfg_backend_settings, probe_ref), 0, 0, 0, NULL},
        {"client-certificate", FK_REF,
         offsetof(struct cfg_backend_settings, client_certificate_ref), 0, 0, 0, NULL},
};

static void settings_trust(struct cfg_loader *ld, const char *key, struct cfg_backend_settings *s,
                           const struct cfg_ynode **found)
{
    const struct cfg_ynode *roots = FOUND(settings_fields, found, "trusted-roots");
    const struct cfg_ynode *wk = FOUND(settings_fields, found, "well-known-ca");
    const struct cfg_ynode *auth = FOUND(settings_fields, found, "auth-certs");
    const char *name = s->name ? s->name : "?";
    char k[KEY_MAX];
    const struct cfg_ynode *proto = FOUND(settings_fields, found, "protocol");
    enum cfg_protocol p;
    bool well_known = false;
    if (wk && !bool_value(wk, &well_known))
        well_known = false; /* reported by read_well_known_ca() */
    if (!proto || !protocol_value(proto, &p))
        return; /* which options are allowed depends on it */

    if (s->protocol == CFG_PROTO_HTTP) {
        static const char *const tls_only[] = {"trusted-roots", "well-known-ca", "auth-certs",
                                               "client-certificate"};
        for (size_t i = 0; i < 4; i++) {
            const struct cfg_ynode *n = FOUND(settings_fields, found, tls_only[i]);
            if (!n)
                continue;
            join_key(k, key, tls_only[i]);
            nerr(ld, n, k, "only for protocol https (backend-settings '%s' uses http)", name);
        }
        return;
    }
    int modes = (roots != NULL) + (wk && well_known) + (auth != NULL);
    if (modes > 1) {
        const struct cfg_ynode *second = auth ? auth : (wk && well_known) ? wk : roots;
        nerr(ld, second, key,
             "backend-settings '%s': trusted-roots, well-known-ca: true and auth-certs are "
             "mutually exclusive; give one",
             name);
    } else if (wk && !well_known && !roots && !auth) {
        join_key(k, key, "well-known-ca");
        nerr(ld, wk, k,
             "backend-settings '%s': well-known-ca is false but neither trusted-roots nor "
             "auth-certs is given, so no certificate could be trusted",
             name);
    }
    if (roots)
        s->trust = CFG_TRUST_ROOTS;
    else if (auth)
        s->trust = CFG_TRUST_AUTH_CERTS;
    else
        s->trust = CFG_TRUST_WELL_KNOWN;
}

static void load_settings(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key,
                          void *obj)
{
    struct cfg_backend_settings *s = obj;
    const struct cfg_ynode *found[MAX_FIELDS];
    s->pos = npos(ld, v);
    s->request_timeout_ms = CFG_DEFAULT_REQUEST_TIMEOUT_MS;
    if (!walk_map(ld, v, key, settings_fields, NFIELDS(settings_fields), s, found))
        return;
    const struct cfg_ynode *host = FOUND(settings_fields, found, "host-name");
    const struct cfg_ynode *pick = FOUND(settings_fields, found, "pick-host-name-from-backend");
    if (host && pick && s->pick_host_name_from_backend) {
        char k[KEY_MAX];
        join_key(k, key, "pick-host-name-from-backend");
        nerr(ld, pick, k,
             "backend-settings '%s': host-name and pick-host-name-from-backend: true are "
             "mutually exclusive",
             s->name ? s->name : "?");
    }
    settings_trust(ld, key, s, found);

    /* Every settings has a probe: its own default one unless it names a custom probe. */
    struct cfg_probe *dp = &s->default_probe;
    probe_defaults(ld, dp);
    dp->name = "default";
    dp->is_default = true;
    dp->protocol = s->protocol;
    dp->pos = s->pos;
    s->probe = dp;
}

static void load_settings_list(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    void *arr = NULL;
    ld->cfg->n_settings = load_list(ld, v, key, &arr, sizeof(struct cfg_backend_settings),
                                    offsetof(struct cfg_backend_settings, name), load_settings);
    ld->cfg->settings = arr;
}

/* ---- rules ---------------------------------------------------------------------------------- */

static const struct field rule_fields[] = {
        {"name", FK_NAME, offsetof(struct cfg_rule, name), 0, 0, F_REQUIRED, NULL},
        {"listener", FK_REF, offsetof(struct cfg_rule, listener_ref), 0, 0, F_REQUIRED, NULL},
        {"priority", FK_UINT, offsetof(struct cfg_rule, priority), CFG_MIN_PRIORITY,
         CFG_MAX_PRIORITY, F_REQUIRED, NULL},
        {"backend-pool", FK_REF, offsetof(struct cfg_rule, pool_ref), 0, 0, F_REQUIRED, NULL},
        {"backend-settings", FK_REF, offsetof(struct cfg_rule, settings_ref), 0, 0, F_REQUIRED,
         NULL},
};

static void load_rule(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key, void *obj)
{
    struct cfg_rule *r = obj;
    const struct cfg_ynode *found[MAX_FIELDS];
    r->pos = npos(ld, v);
    walk_map(ld, v, key, rule_fields, NFIELDS(rule_fields), r, found);
}

static void load_rules(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    void *arr = NULL;
    struct cfg *cfg = ld->cfg;
    cfg->n_rules = load_list(ld, v, key, &arr, sizeof(struct cfg_rule),
                             offsetof(struct cfg_rule, name), load_rule);
    cfg->rules = arr;
    /* Priorities decide which rule wins, so two equal ones would make the order arbitrary. */
    char k[KEY_MAX];
    for (size_t j = 0; j < cfg->n_rules; j++) {
        for (size_t i = 0; cfg->rules[j].priority && i < j; i++) {
            if (cfg->rules[i].priority != cfg->rules[j].priority)
                continue;
            snprintf(k, sizeof k, "%s[%zu].priority", key, j);
            nerr(ld, map_value(v->items[j], "priority"), k,
                 "priority %u is already used by rule '%s' (line %d); priorities are unique",
                 cfg->rules[j].priority, cfg->rules[i].name ? cfg->rules[i].name : "?",
                 cfg->rules[i].pos.line);
            break;
        }
    }
}

/* ---- limits, timeouts ----------------------------------------------------------------------- */

static const struct field limits_fields[] = {
        {"max-header-bytes", FK_SIZE, offsetof(struct cfg_limits, max_header_bytes), 1024,
         1024 * 1024, 0, NULL},
        {"max-url-length", FK_SIZE, offsetof(struct cfg_limits, max_url_length), 256, 1024 * 1024,
         0, NULL},
        {"max-headers", FK_UINT, offsetof(struct cfg_limits, max_headers), 1, 10000, 0, NULL},
        {"max-body-bytes", FK_SIZE, offsetof(struct cfg_limits, max_body_bytes), 0, 1ull << 40, 0,
         NULL},
};

static void load_limits(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    const struct cfg_ynode *found[MAX_FIELDS];
    walk_map(ld, v, key, limits_fields, NFIELDS(limits_fields), &ld->cfg->limits, found);
}

static const struct field timeouts_fields[] = {
        {"client-request", FK_DURATION, offsetof(struct cfg_timeouts, client_request_ms),
         SECONDS(1), SECONDS(86400), 0, NULL},
        {"client-keepalive", FK_DURATION, offsetof(struct cfg_timeouts, client_keepalive_ms),
         SECONDS(1), SECONDS(86400), 0, NULL},
};

static void load_timeouts(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    const struct cfg_ynode *found[MAX_FIELDS];
    walk_map(ld, v, key, timeouts_fields, NFIELDS(timeouts_fields), &ld->cfg->timeouts, found);
}

static const struct field health_fields[] = {
        {"certificate-expiry-warning", FK_DURATION,
         offsetof(struct cfg_health, certificate_expiry_warning_ms), SECONDS(0),
         SECONDS(3650ull * 86400), 0, NULL},
};

static void load_health(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key)
{
    const struct cfg_ynode *found[MAX_FIELDS];
    walk_map(ld, v, key, health_fields, NFIELDS(health_fields), &ld->cfg->health, found);
}

/* ---- top level ------------------------------------------------------------------------------ */

struct section {
    const char *key;
    void (*load)(struct cfg_loader *ld, const struct cfg_ynode *v, const char *key);
};

static const struct section sections[] = {
        {"admin", load_admin},
        {"workers", load_workers},
        {"access-log", load_access_log},
        {"certificates", load_certificates},
        {"trusted-roots", load_trusted_roots},
        {"auth-certs", load_auth_certs},
        {"listeners", load_listeners},
        {"backend-pools", load_pools},
        {"backend-settings", load_settings_list},
        {"probes", load_probes},
        {"rules", load_rules},
        {"limits", load_limits},
        {"timeouts", load_timeouts},
        {"health", load_health},
};

#define N_SECTIONS (sizeof sections / sizeof sections[0])

static void set_defaults(struct cfg *cfg)
{
    cfg->admin.listen.host = CFG_DEFAULT_ADMIN_HOST;
    cfg->admin.listen.port = CFG_DEFAULT_ADMIN_PORT;
    cfg->admin.listen.kind = CFG_ADDR_IPV4;
    cfg->workers = 0;
    cfg->access_log.enabled = true;
    cfg->access_log.path = "-";
    cfg->limits.max_header_bytes = CFG_DEFAULT_MAX_HEADER_BYTES;
    cfg->limits.max_url_length = CFG_DEFAULT_MAX_URL_LENGTH;
    cfg->limits.max_headers = CFG_DEFAULT_MAX_HEADERS;
    cfg->limits.max_body_bytes = CFG_DEFAULT_MAX_BODY_BYTES;
    cfg->timeouts.client_request_ms = CFG_DEFAULT_CLIENT_REQUEST_MS;
    cfg->timeouts.client_keepalive_ms = CFG_DEFAULT_CLIENT_KEEPALIVE_MS;
    cfg->health.certificate_expiry_warning_ms = CFG_DEFAULT_CERT_EXPIRY_WARNING_MS;
}

static void load_root(struct cfg_loader *ld, const struct cfg_ynode *root)
{
    char g[64];
    if (root->kind != CFG_Y_MAP) {
        nerr(ld, root, "",
             "the config must be a mapping of sections (listeners, rules, ...), "
             "got %s",
             got(root, g, sizeof g));
        return;
    }
    const char *names[N_SECTIONS];
    for (size_t i = 0; i < N_SECTIONS; i++)
        names[i] = sections[i].key;
    for (size_t i = 0; i < root->n; i++) {
        const struct cfg_ynode *k = root->pairs[i].key;
        size_t s = 0;
        while (s < N_SECTIONS && strcmp(sections[s].key, k->str) != 0)
            s++;
        /* x-... sections are ignored: a place to define YAML anchors that other sections
         * reference with aliases (the convention of docker compose files). */
        if (s == N_SECTIONS && strncmp(k->str, "x-", 2) == 0)
            continue;
        if (s == N_SECTIONS) {
            const char *best = cfg_suggest(k->str, names, N_SECTIONS);
            if (best)
                nerr(ld, k, k->str, "unknown section; did you mean '%s'?", best);
            else
                nerr(ld, k, k->str,
                     "unknown section (expected admin, workers, access-log, certificates, "
                     "trusted-roots, auth-certs, listeners, backend-pools, backend-settings, "
                     "probes, rules, limits or timeouts)");
            continue;
        }
        sections[s].load(ld, root->pairs[i].value, k->str);
    }
}

static struct cfg *load(const char *text, size_t len, const char *name, const char *dir,
                        struct cfg_errors *errs)
{
    struct cfg_arena *ar = cfg_arena_new();
    struct cfg *cfg = cfg_arena_alloc(ar, sizeof *cfg);
    cfg->arena = ar;
    cfg->path = cfg_arena_strdup(ar, name);
    cfg->dir = cfg_arena_strdup(ar, dir);
    set_defaults(cfg);

    struct cfg_loader ld = {
            .cfg = cfg,
            .ar = ar,
            .tmp = cfg_arena_new(),
            .errs = errs,
            .file = cfg->path,
            .dir = cfg->dir,
            .errors_at_start = errs->n_errors,
    };
    size_t errors_before = errs->n_errors;
    bool empty = false;
    struct cfg_ynode *root = cfg_yaml_parse(ld.tmp, text, len, ld.file, errs, &empty);
    if (root) {
        load_root(&ld, root);
        cfg_validate(&ld);
    } else if (empty) {
        struct cfg_pos pos = {ld.file, 1, 1};
        cfg_err_pos(&ld, &pos, "", "the config is empty (see examples/gatehouse.yaml)");
    }
    cfg_arena_free(ld.tmp);
    cfg_errors_sort(errs);
    if (errs->n_errors != errors_before) {
        cfg_free(cfg);
        return NULL;
    }
    return cfg;
}

/* The directory relative paths are resolved against: the config file's, made absolute so a
 * later chdir (or a reload from elsewhere) does not change what the paths mean. */
static char *config_dir(const char *path)
{
    char *copy = cfg_xstrdup(path);
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    if (slash == copy)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = copy;
    }
    char *real = realpath(dir, NULL);
    char *out = cfg_xstrdup(real ? real : dir);
    free(real);
    free(copy);
    return out;
}

struct cfg *cfg_load(const char *path, struct cfg_errors *errs)
{
    /* O_NONBLOCK: a FIFO named by mistake must not hang the load (the fstat refuses it). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        cfg_errors_add(errs, CFG_SEV_ERROR, &(struct cfg_pos){path, 0, 0}, "",
                       "cannot read the config file: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_FILE_BYTES) {
        cfg_errors_add(errs, CFG_SEV_ERROR, &(struct cfg_pos){path, 0, 0}, "",
                       S_ISREG(st.st_mode) ? "the config file is larger than 16 MiB"
                                           : "not a regular file");
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size, got_bytes = 0;
    char *text = cfg_xmalloc(size + 1);
    while (got_bytes < size) {
        ssize_t r = read(fd, text + got_bytes, size - got_bytes);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got_bytes += (size_t)r;
    }
    int read_errno = errno;
    close(fd);
    if (got_bytes < size) {
        cfg_errors_add(errs, CFG_SEV_ERROR, &(struct cfg_pos){path, 0, 0}, "",
                       "cannot read the config file: %s",
                       got_bytes ? "it changed while being read" : strerror(read_errno));
        free(text);
        return NULL;
    }
    text[size] = '\0';
    char *dir = config_dir(path);
    struct cfg *cfg = load(text, size, path, dir, errs);
    free(dir);
    free(text);
    return cfg;
}

struct cfg *cfg_load_mem(const char *text, size_t len, const char *name, const char *base_dir,
                         struct cfg_errors *errs)
{
    char *real = realpath(base_dir ? base_dir : ".", NULL);
    struct cfg *cfg = load(text, len, name, real ? real : (base_dir ? base_dir : "."), errs);
    free(real);
    return cfg;
}

void cfg_free(struct cfg *cfg)
{
    if (cfg)
        cfg_arena_free(cfg->arena); /* cfg itself lives in its arena */
}

const struct cfg_listener *cfg_find_listener(const struct cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (cfg->listeners[i].name && strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    }
    return NULL;
}

const struct cfg_pool *cfg_find_pool(const struct cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_pools; i++) {
        if (cfg->pools[i].name && strcmp(cfg->pools[i].name, name) == 0)
            return &cfg->pools[i];
    }
    return NULL;
}

const struct cfg_backend_settings *cfg_find_settings(const struct cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_settings; i++) {
        if (cfg->settings[i].name && strcmp(cfg->settings[i].name, name) == 0)
            return &cfg->settings[i];
    }
    return NULL;
}

const struct cfg_probe *cfg_find_probe(const struct cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_probes; i++) {
        if (cfg->probes[i].name && strcmp(cfg->probes[i].name, name) == 0)
            return &cfg->probes[i];
    }
    return NULL;
}
