/*
 * config_validate: the checks that need more than one object, run once every section has been
 * read. Resolves references to pointers (a dangling one names both ends and the names that do
 * exist), refuses listeners that cannot share a port, ties each listener to its one rule, and
 * warns about objects nothing uses. Works on a partly broken model: any field may be missing
 * when an earlier error was reported.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"

#define KEY_MAX    256
#define LIST_NAMES 8 /* names listed in a "not defined" message before "..." */

/* Names of a section's objects, index-aligned with the objects (NULL where a name is broken). */
struct names {
    const char **v;
    size_t n;
    const char *section;  /* "listeners" */
    const char *singular; /* "listener" */
};

static struct names collect(struct cfg_loader *ld, const void *array, size_t n, size_t elem_size,
                            size_t name_off, const char *section, const char *singular)
{
    struct names names = {cfg_arena_array(ld->tmp, n, sizeof(char *)), n, section, singular};
    for (size_t i = 0; i < n; i++)
        names.v[i] = *(const char *const *)((const char *)array + i * elem_size + name_off);
    return names;
}

#define COLLECT(ld, arr, n, type, section, singular)                                               \
    collect((ld), (arr), (n), sizeof(type), offsetof(type, name), (section), (singular))

/*
 * Finds ref among names. Returns the index, or -1 after reporting, at the reference, who refers
 * (owner, e.g. "rule 'main'") to what that does not exist, what does, and the closest name.
 */
static long resolve(struct cfg_loader *ld, const struct cfg_ref *ref, const char *key,
                    const char *owner, const struct names *names)
{
    if (!ref->name)
        return -1;
    for (size_t i = 0; i < names->n; i++) {
        if (names->v[i] && strcmp(names->v[i], ref->name) == 0)
            return (long)i;
    }
    char list[1024] = "";
    size_t used = 0, listed = 0;
    for (size_t i = 0; i < names->n && used < sizeof list; i++) {
        if (!names->v[i])
            continue;
        if (listed == LIST_NAMES) {
            used += (size_t)snprintf(list + used, sizeof list - used, ", ...");
            break;
        }
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", listed ? ", " : "",
                                 names->v[i]);
        listed++;
    }
    const char *best = cfg_suggest(ref->name, names->v, names->n);
    char hint[160] = "";
    if (best)
        snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
    if (listed)
        cfg_err_pos(ld, &ref->pos, key, "%s: %s '%s' is not defined (%s: %s)%s", owner,
                    names->singular, ref->name, names->section, list, hint);
    else
        cfg_err_pos(ld, &ref->pos, key, "%s: %s '%s' is not defined (no %s are defined)", owner,
                    names->singular, ref->name, names->section);
    return -1;
}

static void owner(char *buf, size_t size, const char *kind, const char *name)
{
    if (name)
        snprintf(buf, size, "%s '%s'", kind, name);
    else
        snprintf(buf, size, "%s", kind);
}

/* ---- listeners ------------------------------------------------------------------------------ */

/* Whether two bind addresses (NULL = every address) can receive the same connection. */
static bool addresses_overlap(const char *a, const char *b)
{
    if (!a || !b || strcmp(a, "0.0.0.0") == 0 || strcmp(b, "0.0.0.0") == 0)
        return true;
    unsigned char ba[16], bb[16];
    int fa = inet_pton(AF_INET, a, ba) == 1 ? AF_INET : AF_INET6;
    int fb = inet_pton(AF_INET, b, bb) == 1 ? AF_INET : AF_INET6;
    if (fa == AF_INET6 && inet_pton(AF_INET6, a, ba) != 1)
        return true;
    if (fb == AF_INET6 && inet_pton(AF_INET6, b, bb) != 1)
        return true;
    static const unsigned char any6[16] = {0};
    if ((fa == AF_INET6 && memcmp(ba, any6, 16) == 0) ||
        (fb == AF_INET6 && memcmp(bb, any6, 16) == 0))
        return true; /* [::] is dual-stack unless told otherwise */
    return fa == fb && memcmp(ba, bb, fa == AF_INET ? 4 : 16) == 0;
}

static void check_listener_pair(struct cfg_loader *ld, size_t i, size_t j)
{
    const struct cfg_listener *a = &ld->cfg->listeners[i], *b = &ld->cfg->listeners[j];
    char key[KEY_MAX];
    if (!a->port || a->port != b->port || !addresses_overlap(a->address, b->address))
        return;
    const char *an = a->name ? a->name : "?", *bn = b->name ? b->name : "?";
    snprintf(key, sizeof key, "listeners[%zu]", j);
    if (a->protocol != b->protocol) {
        cfg_err_pos(ld, &b->pos, key,
                    "listener '%s' uses %s on port %u, where listener '%s' (line %d) uses %s; a "
                    "port serves one protocol",
                    bn, cfg_protocol_name(b->protocol), b->port, an, a->pos.line,
                    cfg_protocol_name(a->protocol));
        return;
    }
    if (a->n_host_names == 0 && b->n_host_names == 0) {
        cfg_err_pos(ld, &b->pos, key,
                    "listeners '%s' (line %d) and '%s' are both basic listeners (no host-names) "
                    "on port %u; only one can take the requests no other listener matches",
                    an, a->pos.line, bn, b->port);
        return;
    }
    for (size_t h = 0; h < b->n_host_names; h++) {
        for (size_t g = 0; g < a->n_host_names; g++) {
            if (strcmp(a->host_names[g].name, b->host_names[h].name) != 0)
                continue;
            snprintf(key, sizeof key, "listeners[%zu].host-names[%zu]", j, h);
            cfg_err_pos(ld, &b->host_names[h].pos, key,
                        "host name '%s' is also on listener '%s' (line %d), on the same port %u",
                        b->host_names[h].name, an, a->pos.line, b->port);
        }
    }
}

static void check_listeners(struct cfg_loader *ld)
{
    struct cfg *cfg = ld->cfg;
    struct names certs = COLLECT(ld, cfg->certificates, cfg->n_certificates, struct cfg_certificate,
                                 "certificates", "certificate");
    char key[KEY_MAX], who[128];
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct cfg_listener *l = &cfg->listeners[i];
        if (l->certificate_ref.name && l->protocol == CFG_PROTO_HTTPS) {
            snprintf(key, sizeof key, "listeners[%zu].certificate", i);
            owner(who, sizeof who, "listener", l->name);
            long c = resolve(ld, &l->certificate_ref, key, who, &certs);
            if (c >= 0)
                l->certificate = &cfg->certificates[c];
        }
        const struct cfg_hostport *admin = &cfg->admin.listen;
        bool admin_overlaps = admin->kind == CFG_ADDR_NAME || !l->address ||
                              addresses_overlap(l->address, admin->host);
        if (l->port && l->port == admin->port && admin_overlaps) {
            snprintf(key, sizeof key, "listeners[%zu].port", i);
            cfg_err_pos(ld, &l->pos, key, "port %u is also the admin API's (admin.listen %s:%u)",
                        l->port, admin->host, admin->port);
        }
        for (size_t j = 0; j < i; j++)
            check_listener_pair(ld, j, i);
    }
}

/* ---- backend settings ----------------------------------------------------------------------- */

static const struct cfg_cert_file **resolve_list(struct cfg_loader *ld, const struct cfg_ref *refs,
                                                 size_t n, const char *key_base, const char *who,
                                                 const struct names *names,
                                                 const struct cfg_cert_file *objs)
{
    const struct cfg_cert_file **out = cfg_arena_array(ld->ar, n, sizeof *out);
    char key[KEY_MAX];
    for (size_t k = 0; k < n; k++) {
        snprintf(key, sizeof key, "%s[%zu]", key_base, k);
        long idx = resolve(ld, &refs[k], key, who, names);
        if (idx >= 0)
            out[k] = &objs[idx];
    }
    return out;
}

static void check_probe_fits(struct cfg_loader *ld, struct cfg_backend_settings *s, size_t i,
                             const struct cfg_probe *p)
{
    char key[KEY_MAX];
    const char *sn = s->name ? s->name : "?";
    snprintf(key, sizeof key, "backend-settings[%zu].probe", i);
    /* The modelled gateway refuses this too (ApplicationGatewayProbeProtocolMustMatch...). */
    if (p->protocol != s->protocol)
        cfg_err_pos(ld, &s->probe_ref.pos, key,
                    "probe '%s' uses %s but backend-settings '%s' uses %s; they must match",
                    p->name, cfg_protocol_name(p->protocol), sn, cfg_protocol_name(s->protocol));
    if (p->pick_host_name_from_backend_settings && !s->host_name && !s->pick_host_name_from_backend)
        cfg_err_pos(ld, &s->probe_ref.pos, key,
                    "probe '%s' takes its host name from backend-settings '%s', which has "
                    "neither host-name nor pick-host-name-from-backend: true",
                    p->name, sn);
    /* No warning for a probe timeout above the request timeout: the modelled gateway's own
     * defaults (30 s and 20 s) are like that. */
}

static void check_settings(struct cfg_loader *ld)
{
    struct cfg *cfg = ld->cfg;
    struct names roots = COLLECT(ld, cfg->trusted_roots, cfg->n_trusted_roots, struct cfg_cert_file,
                                 "trusted-roots", "trusted root");
    struct names auths = COLLECT(ld, cfg->auth_certs, cfg->n_auth_certs, struct cfg_cert_file,
                                 "auth-certs", "auth cert");
    struct names probes =
            COLLECT(ld, cfg->probes, cfg->n_probes, struct cfg_probe, "probes", "probe");
    struct names certs = COLLECT(ld, cfg->certificates, cfg->n_certificates, struct cfg_certificate,
                                 "certificates", "certificate");
    char key[KEY_MAX], who[128];
    for (size_t i = 0; i < cfg->n_settings; i++) {
        struct cfg_backend_settings *s = &cfg->settings[i];
        owner(who, sizeof who, "backend-settings", s->name);
        if (s->n_trusted_roots) {
            snprintf(key, sizeof key, "backend-settings[%zu].trusted-roots", i);
            s->trusted_roots = resolve_list(ld, s->trusted_root_refs, s->n_trusted_roots, key, who,
                                            &roots, cfg->trusted_roots);
        }
        if (s->n_auth_certs) {
            snprintf(key, sizeof key, "backend-settings[%zu].auth-certs", i);
            s->auth_certs = resolve_list(ld, s->auth_cert_refs, s->n_auth_certs, key, who, &auths,
                                         cfg->auth_certs);
        }
        if (s->probe_ref.name) {
            snprintf(key, sizeof key, "backend-settings[%zu].probe", i);
            long p = resolve(ld, &s->probe_ref, key, who, &probes);
            if (p >= 0) {
                s->probe = &cfg->probes[p];
                check_probe_fits(ld, s, i, s->probe);
            }
        }
        if (s->client_certificate_ref.name && s->protocol == CFG_PROTO_HTTPS) {
            snprintf(key, sizeof key, "backend-settings[%zu].client-certificate", i);
            long c = resolve(ld, &s->client_certificate_ref, key, who, &certs);
            if (c >= 0)
                s->client_certificate = &cfg->certificates[c];
        }
    }
}

/* ---- rules ---------------------------------------------------------------------------------- */

static int by_priority(const void *a, const void *b)
{
    const struct cfg_rule *ra = *(const struct cfg_rule *const *)a;
    const struct cfg_rule *rb = *(const struct cfg_rule *const *)b;
    if (ra->priority != rb->priority)
        return ra->priority < rb->priority ? -1 : 1;
    return ra < rb ? -1 : ra > rb; /* file order among equals (only in a broken config) */
}

static void check_rules(struct cfg_loader *ld)
{
    struct cfg *cfg = ld->cfg;
    struct names listeners = COLLECT(ld, cfg->listeners, cfg->n_listeners, struct cfg_listener,
                                     "listeners", "listener");
    struct names pools =
            COLLECT(ld, cfg->pools, cfg->n_pools, struct cfg_pool, "backend-pools", "backend pool");
    struct names settings = COLLECT(ld, cfg->settings, cfg->n_settings, struct cfg_backend_settings,
                                    "backend-settings", "backend settings");
    char key[KEY_MAX], who[128];
    for (size_t i = 0; i < cfg->n_rules; i++) {
        struct cfg_rule *r = &cfg->rules[i];
        owner(who, sizeof who, "rule", r->name);
        snprintf(key, sizeof key, "rules[%zu].listener", i);
        long l = resolve(ld, &r->listener_ref, key, who, &listeners);
        if (l >= 0) {
            struct cfg_listener *lis = &cfg->listeners[l];
            if (lis->rule) {
                cfg_err_pos(ld, &r->listener_ref.pos, key,
                            "%s: listener '%s' already has rule '%s' (line %d); a listener is "
                            "bound to exactly one rule",
                            who, lis->name, lis->rule->name ? lis->rule->name : "?",
                            lis->rule->pos.line);
            } else {
                lis->rule = r;
                r->listener = lis;
            }
        }
        snprintf(key, sizeof key, "rules[%zu].backend-pool", i);
        long p = resolve(ld, &r->pool_ref, key, who, &pools);
        if (p >= 0)
            r->pool = &cfg->pools[p];
        snprintf(key, sizeof key, "rules[%zu].backend-settings", i);
        long s = resolve(ld, &r->settings_ref, key, who, &settings);
        if (s >= 0)
            r->settings = &cfg->settings[s];
    }
    cfg->rules_by_priority = cfg_arena_array(ld->ar, cfg->n_rules, sizeof(struct cfg_rule *));
    for (size_t i = 0; i < cfg->n_rules; i++)
        cfg->rules_by_priority[i] = &cfg->rules[i];
    if (cfg->n_rules)
        qsort(cfg->rules_by_priority, cfg->n_rules, sizeof(struct cfg_rule *), by_priority);
}

/* ---- unused objects ------------------------------------------------------------------------- */

/*
 * Warnings only, and only on an otherwise valid config: with a dangling reference in the file,
 * "unused" mostly repeats that error from the other end.
 */
static void warn_unused(struct cfg_loader *ld)
{
    struct cfg *cfg = ld->cfg;
    char key[KEY_MAX];
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        snprintf(key, sizeof key, "listeners[%zu]", i);
        if (!l->rule)
            cfg_warn_pos(ld, &l->pos, key,
                         "no rule uses listener '%s'; it would answer 404 to every request",
                         l->name);
    }
    for (size_t i = 0; i < cfg->n_pools; i++) {
        bool used = false;
        for (size_t r = 0; r < cfg->n_rules && !used; r++)
            used = cfg->rules[r].pool == &cfg->pools[i];
        snprintf(key, sizeof key, "backend-pools[%zu]", i);
        if (!used)
            cfg_warn_pos(ld, &cfg->pools[i].pos, key, "no rule uses backend pool '%s'",
                         cfg->pools[i].name);
    }
    for (size_t i = 0; i < cfg->n_settings; i++) {
        bool used = false;
        for (size_t r = 0; r < cfg->n_rules && !used; r++)
            used = cfg->rules[r].settings == &cfg->settings[i];
        snprintf(key, sizeof key, "backend-settings[%zu]", i);
        if (!used)
            cfg_warn_pos(ld, &cfg->settings[i].pos, key, "no rule uses backend-settings '%s'",
                         cfg->settings[i].name);
    }
    for (size_t i = 0; i < cfg->n_probes; i++) {
        bool used = false;
        for (size_t s = 0; s < cfg->n_settings && !used; s++)
            used = cfg->settings[s].probe == &cfg->probes[i];
        snprintf(key, sizeof key, "probes[%zu]", i);
        if (!used)
            cfg_warn_pos(ld, &cfg->probes[i].pos, key,
                         "no backend-settings uses probe '%s'; it probes nothing",
                         cfg->probes[i].name);
    }
    for (size_t i = 0; i < cfg->n_certificates; i++) {
        const struct cfg_certificate *c = &cfg->certificates[i];
        bool used = false;
        for (size_t l = 0; l < cfg->n_listeners && !used; l++)
            used = cfg->listeners[l].certificate == c;
        for (size_t s = 0; s < cfg->n_settings && !used; s++)
            used = cfg->settings[s].client_certificate == c;
        snprintf(key, sizeof key, "certificates.%s", c->name);
        if (!used)
            cfg_warn_pos(ld, &c->pos, key, "no listener or backend-settings uses certificate '%s'",
                         c->name);
    }
    for (size_t i = 0; i < cfg->n_trusted_roots; i++) {
        bool used = false;
        for (size_t s = 0; s < cfg->n_settings && !used; s++) {
            for (size_t k = 0; k < cfg->settings[s].n_trusted_roots && !used; k++)
                used = cfg->settings[s].trusted_roots[k] == &cfg->trusted_roots[i];
        }
        snprintf(key, sizeof key, "trusted-roots.%s", cfg->trusted_roots[i].name);
        if (!used)
            cfg_warn_pos(ld, &cfg->trusted_roots[i].pos, key,
                         "no backend-settings uses trusted root '%s'", cfg->trusted_roots[i].name);
    }
    for (size_t i = 0; i < cfg->n_auth_certs; i++) {
        bool used = false;
        for (size_t s = 0; s < cfg->n_settings && !used; s++) {
            for (size_t k = 0; k < cfg->settings[s].n_auth_certs && !used; k++)
                used = cfg->settings[s].auth_certs[k] == &cfg->auth_certs[i];
        }
        snprintf(key, sizeof key, "auth-certs.%s", cfg->auth_certs[i].name);
        if (!used)
            cfg_warn_pos(ld, &cfg->auth_certs[i].pos, key,
                         "no backend-settings uses auth cert '%s'", cfg->auth_certs[i].name);
    }
}

void cfg_validate(struct cfg_loader *ld)
{
    size_t errors_before = ld->errs->n_errors;
    check_listeners(ld);
    check_settings(ld);
    check_rules(ld);
    if (ld->cfg->n_listeners == 0) {
        struct cfg_pos pos = {ld->file, 1, 1};
        cfg_err_pos(ld, &pos, "listeners",
                    "no listeners are defined; the gateway would serve nothing");
    }
    if (ld->errs->n_errors == errors_before && ld->errs->n_errors == ld->errors_at_start)
        warn_unused(ld);
}
