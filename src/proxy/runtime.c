#include "proxy/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tls/cert_load.h"
#include "tls/name_match.h"
#include "tls/tls_client.h"
#include "tls/tls_server.h"

static int build_settings(struct rt_settings *s, const struct cfg_backend_settings *c, char *err,
                          size_t errlen)
{
    char why[512];
    s->cfg = c;
    switch (c->trust) {
    case CFG_TRUST_ROOTS:
        trust_policy_init(&s->trust, TRUST_ROOTS);
        for (size_t i = 0; i < c->n_trusted_roots; i++) {
            if (trust_policy_add_file(&s->trust, c->trusted_roots[i]->path, NULL, why,
                                      sizeof why) != 0) {
                snprintf(err, errlen, "%s:%d: trusted-roots '%s': %s: %s",
                         c->trusted_roots[i]->pos.file, c->trusted_roots[i]->pos.line,
                         c->trusted_roots[i]->name, c->trusted_roots[i]->path, why);
                return -1;
            }
        }
        break;
    case CFG_TRUST_AUTH_CERTS:
        trust_policy_init(&s->trust, TRUST_ALLOWLIST);
        for (size_t i = 0; i < c->n_auth_certs; i++) {
            if (trust_policy_add_file(&s->trust, c->auth_certs[i]->path, NULL, why, sizeof why) !=
                0) {
                snprintf(err, errlen, "%s:%d: auth-certs '%s': %s: %s", c->auth_certs[i]->pos.file,
                         c->auth_certs[i]->pos.line, c->auth_certs[i]->name, c->auth_certs[i]->path,
                         why);
                return -1;
            }
        }
        break;
    case CFG_TRUST_WELL_KNOWN:
        trust_policy_init(&s->trust, TRUST_WELL_KNOWN);
        trust_policy_load_system(&s->trust);
        break;
    }
    if (c->protocol != CFG_PROTO_HTTPS)
        return 0;
    s->client_ctx = tls_client_ctx_new(why, sizeof why);
    if (!s->client_ctx) {
        snprintf(err, errlen, "backend-settings '%s': %s", c->name, why);
        return -1;
    }
    /* Resumed sessions skip the certificate: only sessions from verified handshakes are kept
     * (the upstream code stores them), so resumption never bypasses the diagnosis. */
    SSL_CTX_set_session_cache_mode(s->client_ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    const struct cfg_certificate *cc = c->client_certificate;
    if (cc) {
        char *password = NULL;
        if (cc->password_file) {
            password = cert_read_password_file(cc->password_file, why, sizeof why);
            if (!password) {
                snprintf(err, errlen, "%s:%d: certificates '%s': %s: %s", cc->pos.file,
                         cc->pos.line, cc->name, cc->password_file, why);
                return -1;
            }
        }
        int rc = tls_client_ctx_set_identity(
                s->client_ctx, cc->kind == CFG_CERT_PFX ? cc->pfx : cc->pem,
                cc->kind == CFG_CERT_PFX ? NULL : cc->key, password, why, sizeof why);
        if (password) {
            OPENSSL_cleanse(password, strlen(password));
            free(password);
        }
        if (rc != 0) {
            snprintf(err, errlen,
                     "%s:%d: certificates '%s' (client certificate of "
                     "backend-settings '%s'): %s",
                     cc->pos.file, cc->pos.line, cc->name, c->name, why);
            return -1;
        }
    }
    if (s->trust.mode == TRUST_ALLOWLIST) {
        s->alt_names = calloc(s->trust.n_anchors + 1, sizeof *s->alt_names);
        if (!s->alt_names)
            return -1;
        for (size_t i = 0; i < s->trust.n_anchors; i++) {
            const struct cert_info *ci = &s->trust.anchors[i].info;
            for (size_t j = 0; j < ci->n_sans; j++) {
                if (strncmp(ci->sans[j], "DNS:", 4) == 0 && ci->sans[j][4] != '*') {
                    s->alt_names[s->n_alt_names++] = ci->sans[j] + 4;
                    break;
                }
            }
        }
    }
    return 0;
}

static int listener_order(const void *a, const void *b)
{
    const struct rt_listener *x = *(const struct rt_listener *const *)a;
    const struct rt_listener *y = *(const struct rt_listener *const *)b;
    unsigned px = x->rule ? x->rule->priority : 100000u;
    unsigned py = y->rule ? y->rule->priority : 100000u;
    if (px != py)
        return px < py ? -1 : 1;
    return x < y ? -1 : (x > y);
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct rt_port *port = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_NOACK;
    const struct rt_listener *l = runtime_match_listener(port, name, strlen(name));
    if (l && l->ctx && l->ctx != SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, l->ctx);
    /* An unknown name still gets the default certificate (modelled gateway v2 behaviour). */
    return SSL_TLSEXT_ERR_OK;
}

static struct rt_target *find_or_add_target(struct runtime *rt, const struct cfg_pool *pool,
                                            struct rt_settings *settings)
{
    for (size_t i = 0; i < rt->n_targets; i++)
        if (rt->targets[i].pool == pool && rt->targets[i].settings == settings)
            return &rt->targets[i];
    struct rt_target *t = &rt->targets[rt->n_targets];
    t->index = rt->n_targets++;
    t->pool = pool;
    t->settings = settings;
    t->backends = calloc(pool->n_servers ? pool->n_servers : 1, sizeof *t->backends);
    if (!t->backends)
        return NULL;
    for (size_t i = 0; i < pool->n_servers; i++) {
        struct rt_backend *b = &rt->backends[rt->n_backends];
        const struct cfg_server *sv = &pool->servers[i];
        b->index = rt->n_backends++;
        b->server = sv;
        b->pool = pool;
        b->settings = settings;
        snprintf(b->host, sizeof b->host, "%s", sv->host);
        b->port = sv->port ? sv->port : settings->cfg->port;
        b->host_is_ip = sv->kind != CFG_ADDR_NAME;
        if (sv->kind == CFG_ADDR_IPV6)
            snprintf(b->label, sizeof b->label, "[%s]:%u", b->host, b->port);
        else
            snprintf(b->label, sizeof b->label, "%s:%u", b->host, b->port);
        atomic_init(&b->health, RT_HEALTH_UNKNOWN);
        atomic_init(&b->down_until_ms, 0);
        atomic_init(&b->probe_soon, false);
        atomic_init(&b->last_code, -1);
        t->backends[t->n_backends++] = b;
    }
    return t;
}

static int build_ports(struct runtime *rt, char *err, size_t errlen)
{
    rt->ports = calloc(rt->n_listeners ? rt->n_listeners : 1, sizeof *rt->ports);
    if (!rt->ports)
        return -1;
    for (size_t i = 0; i < rt->n_listeners; i++) {
        struct rt_listener *l = &rt->listeners[i];
        struct rt_port *p = NULL;
        for (size_t j = 0; j < rt->n_ports && !p; j++) {
            struct rt_port *q = &rt->ports[j];
            bool same_addr =
                    (!q->address && !l->cfg->address) ||
                    (q->address && l->cfg->address && strcmp(q->address, l->cfg->address) == 0);
            if (q->port == l->cfg->port && same_addr)
                p = q;
        }
        if (!p) {
            p = &rt->ports[rt->n_ports++];
            p->address = l->cfg->address;
            p->port = l->cfg->port;
            p->protocol = l->cfg->protocol;
            p->listeners = calloc(rt->n_listeners, sizeof *p->listeners);
            if (!p->listeners)
                return -1;
        } else if (p->protocol != l->cfg->protocol) {
            snprintf(err, errlen,
                     "%s:%d: listeners '%s': port %u is already used by an %s "
                     "listener; one port serves either http or https",
                     l->cfg->pos.file, l->cfg->pos.line, l->cfg->name, l->cfg->port,
                     cfg_protocol_name(p->protocol));
            return -1;
        }
        p->listeners[p->n_listeners++] = l;
    }
    for (size_t j = 0; j < rt->n_ports; j++) {
        struct rt_port *p = &rt->ports[j];
        qsort(p->listeners, p->n_listeners, sizeof *p->listeners, listener_order);
        if (p->protocol != CFG_PROTO_HTTPS)
            continue;
        /* The certificate for clients without SNI: the basic listener's, else the first
         * listener's in routing order. */
        const struct rt_listener *def = p->listeners[0];
        for (size_t k = 0; k < p->n_listeners; k++)
            if (p->listeners[k]->cfg->n_host_names == 0) {
                def = p->listeners[k];
                break;
            }
        p->default_ctx = def->ctx;
        SSL_CTX_up_ref(p->default_ctx);
        SSL_CTX_set_tlsext_servername_callback(p->default_ctx, on_servername);
        SSL_CTX_set_tlsext_servername_arg(p->default_ctx, p);
    }
    return 0;
}

struct runtime *runtime_new(struct cfg *cfg, char *err, size_t errlen)
{
    struct runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rt->cfg = cfg;
    size_t total_servers = 0;
    for (size_t i = 0; i < cfg->n_rules; i++)
        total_servers += cfg->rules[i].pool ? cfg->rules[i].pool->n_servers : 0;
    rt->settings = calloc(cfg->n_settings ? cfg->n_settings : 1, sizeof *rt->settings);
    rt->listeners = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof *rt->listeners);
    rt->targets = calloc(cfg->n_rules ? cfg->n_rules : 1, sizeof *rt->targets);
    rt->backends = calloc(total_servers ? total_servers : 1, sizeof *rt->backends);
    if (!rt->settings || !rt->listeners || !rt->targets || !rt->backends) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_settings; i++) {
        rt->n_settings++;
        if (build_settings(&rt->settings[i], &cfg->settings[i], err, errlen) != 0)
            goto fail;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct rt_listener *l = &rt->listeners[rt->n_listeners++];
        const struct cfg_listener *c = &cfg->listeners[i];
        l->cfg = c;
        l->rule = c->rule;
        if (c->rule) {
            size_t si = (size_t)(c->rule->settings - cfg->settings);
            l->target = find_or_add_target(rt, c->rule->pool, &rt->settings[si]);
            if (!l->target) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
        }
        if (c->protocol == CFG_PROTO_HTTPS) {
            const struct cfg_certificate *cc = c->certificate;
            struct tls_server_params params = {
                    .pem = cc->kind == CFG_CERT_PEM ? cc->pem : NULL,
                    .key = cc->kind == CFG_CERT_PEM ? cc->key : NULL,
                    .pfx = cc->kind == CFG_CERT_PFX ? cc->pfx : NULL,
                    .password_file = cc->password_file,
                    .min_version = c->tls_policy.min_version == CFG_TLS_1_3 ? TLS1_3_VERSION
                                                                            : TLS1_2_VERSION,
                    .ciphers = c->tls_policy.ciphers,
                    .ciphersuites = c->tls_policy.ciphersuites,
                    .http2 = false, /* the HTTP/2 frontend comes later: never offer h2 yet */
            };
            char why[512];
            l->ctx = tls_server_ctx_new(&params, why, sizeof why);
            if (!l->ctx) {
                snprintf(err, errlen, "%s:%d: listeners '%s' certificate '%s': %s", c->pos.file,
                         c->pos.line, c->name, cc->name, why);
                goto fail;
            }
        }
    }
    if (build_ports(rt, err, errlen) != 0)
        goto fail;
    return rt;
fail:
    rt->cfg = NULL; /* the caller keeps ownership on failure */
    runtime_free(rt);
    return NULL;
}

void runtime_free(struct runtime *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->n_settings; i++) {
        trust_policy_clear(&rt->settings[i].trust);
        SSL_CTX_free(rt->settings[i].client_ctx);
        free(rt->settings[i].alt_names);
    }
    for (size_t i = 0; i < rt->n_listeners; i++)
        SSL_CTX_free(rt->listeners[i].ctx);
    for (size_t i = 0; i < rt->n_ports; i++) {
        SSL_CTX_free(rt->ports[i].default_ctx);
        free(rt->ports[i].listeners);
    }
    for (size_t i = 0; i < rt->n_targets; i++)
        free(rt->targets[i].backends);
    free(rt->settings);
    free(rt->listeners);
    free(rt->ports);
    free(rt->targets);
    free(rt->backends);
    cfg_free(rt->cfg);
    free(rt);
}

const struct rt_listener *runtime_match_listener(const struct rt_port *port, const char *host,
                                                 size_t host_len)
{
    /* A trailing dot names the same host. */
    if (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < port->n_listeners; i++) {
            const struct rt_listener *l = port->listeners[i];
            const struct cfg_listener *c = l->cfg;
            if (pass == 2) {
                if (c->n_host_names == 0)
                    return l;
                continue;
            }
            for (size_t h = 0; h < c->n_host_names; h++) {
                const struct cfg_host_name *hn = &c->host_names[h];
                if (hn->wildcard == (pass == 1) && cfg_host_name_matches(hn, host, host_len))
                    return l;
            }
        }
    }
    return NULL;
}

void runtime_backend_names(const struct rt_backend *b, const char *client_host,
                           struct rt_backend_names *out)
{
    const struct cfg_backend_settings *s = b->settings->cfg;
    bool allowlist = b->settings->trust.mode == TRUST_ALLOWLIST;
    memset(out, 0, sizeof *out);
    if (s->host_name) {
        out->host_header = s->host_name;
        out->sni = name_is_ip_literal(s->host_name) ? NULL : s->host_name;
        out->check_name = s->host_name;
        out->name_source = "backend-settings host-name";
    } else if (s->pick_host_name_from_backend) {
        out->host_header = b->host;
        out->sni = b->host_is_ip ? NULL : b->host;
        out->check_name = b->host_is_ip && allowlist ? NULL : b->host;
        out->name_source = "the backend address (pick-host-name-from-backend)";
    } else if (client_host && *client_host && !name_is_ip_literal(client_host)) {
        out->sni = client_host;
        out->check_name = client_host;
        out->name_source = "the client's Host header";
    } else {
        /* No name at all: like a probe of an IP member, check the address itself. */
        out->check_name = b->host_is_ip && allowlist ? NULL : b->host;
        out->sni = b->host_is_ip ? NULL : b->host;
        out->name_source = "the backend address";
    }
}
