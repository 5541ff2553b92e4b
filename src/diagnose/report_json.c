#include <string.h>

#include "core/clock.h"
#include "diagnose/report.h"

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *ms_or_null(double ms)
{
    return ms < 0 ? json_null() : json_real((double)(long long)(ms * 1000.0 + 0.5) / 1000.0);
}

static json_t *time_json(time_t t)
{
    char buf[32];
    return t ? json_string(clock_rfc3339(t, buf, sizeof buf)) : json_null();
}

static json_t *cert_json(const struct chain_cert *c, size_t depth)
{
    const struct cert_info *ci = &c->info;
    json_t *sans = json_array();
    for (size_t i = 0; i < ci->n_sans; i++)
        json_array_append_new(sans, json_string(ci->sans[i]));
    json_t *o = json_object();
    json_object_set_new(o, "depth", json_integer((json_int_t)depth));
    json_object_set_new(o, "subject", json_string(ci->subject));
    json_object_set_new(o, "issuer", json_string(ci->issuer));
    json_object_set_new(o, "sans", sans);
    json_object_set_new(o, "not_before", time_json(ci->not_before));
    json_object_set_new(o, "not_after", time_json(ci->not_after));
    json_object_set_new(o, "sha256", json_string(ci->sha256));
    json_object_set_new(o, "self_signed", json_boolean(ci->self_signed));
    json_object_set_new(o, "ca", json_boolean(ci->ca));
    json_object_set_new(o, "kind", json_string(cert_kind_name(ci->kind)));
    json_object_set_new(o, "aia_ca_issuers", str_or_null(ci->aia_ca_issuers));
    json_object_set_new(o, "on_path", json_boolean(c->on_path));
    json_object_set_new(o, "expired", json_boolean(c->expired));
    json_object_set_new(o, "not_yet_valid", json_boolean(c->not_yet_valid));
    return o;
}

static const char *chain_status_name(enum chain_status s)
{
    switch (s) {
    case CHAIN_TRUSTED:
        return "trusted";
    case CHAIN_EMPTY:
        return "empty";
    case CHAIN_NOT_ALLOWLISTED:
        return "not-allowlisted";
    case CHAIN_ISSUER_MISSING:
        return "issuer-missing";
    case CHAIN_UNTRUSTED_TOP:
        return "untrusted";
    }
    return "unknown";
}

/* Where the chain stands: what closed it, or what is missing on top (for drawing the chain). */
static json_t *chain_summary_json(const struct probe_result *r)
{
    const struct chain_report *c = &r->chain;
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(chain_status_name(c->status)));
    json_object_set_new(o, "leaf_index", json_integer((json_int_t)c->leaf));
    json_object_set_new(o, "leaf_not_first", json_boolean(c->leaf_not_first));
    json_object_set_new(o, "missing", str_or_null(c->needed));
    json_object_set_new(o, "missing_aia", str_or_null(c->needed_aia));
    if (c->has_anchor) {
        json_t *a = json_object();
        json_object_set_new(a, "subject", json_string(c->anchor.subject));
        json_object_set_new(a, "sha256", json_string(c->anchor.sha256));
        json_object_set_new(a, "kind", json_string(cert_kind_name(c->anchor.kind)));
        json_object_set_new(a, "not_before", time_json(c->anchor.not_before));
        json_object_set_new(a, "not_after", time_json(c->anchor.not_after));
        json_object_set_new(a, "expired", json_boolean(c->anchor_expired));
        json_object_set_new(a, "source", json_string(c->anchor_index >= 0 ? "uploaded" : "system"));
        json_object_set_new(o, "anchor", a);
    } else {
        json_object_set_new(o, "anchor", json_null());
    }
    return o;
}

json_t *report_json(const struct probe_spec *s, const struct probe_result *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    bool healthy = probe_result_healthy(r);
    json_object_set_new(o, "url", json_string(s->url));
    json_object_set_new(o, "health", json_string(healthy ? "Healthy" : "Unhealthy"));
    json_object_set_new(o, "code", json_string(diag_code_name(r->code)));
    if (healthy) {
        char msg[256];
        if (r->http_done)
            snprintf(msg, sizeof msg, "Success. Received %d status code", r->http_status);
        else
            snprintf(msg, sizeof msg, "Success");
        json_object_set_new(o, "message", json_string(msg));
        json_object_set_new(o, "remedy", json_string(""));
    } else {
        json_object_set_new(o, "message", json_string(r->findings.items[0].message));
        json_object_set_new(o, "remedy", json_string(r->findings.items[0].remedy));
    }
    json_t *findings = json_array();
    for (size_t i = 0; i < r->findings.n; i++) {
        const struct finding *f = &r->findings.items[i];
        json_t *fo = json_object();
        json_object_set_new(fo, "code", json_string(diag_code_name(f->code)));
        json_object_set_new(fo, "message", json_string(f->message));
        json_object_set_new(fo, "remedy", json_string(f->remedy));
        json_array_append_new(findings, fo);
    }
    json_object_set_new(o, "findings", findings);
    json_t *warnings = json_array();
    for (size_t i = 0; i < r->findings.n_warnings; i++) {
        const struct warning *w = &r->findings.warnings[i];
        json_t *wo = json_object();
        json_object_set_new(wo, "code", json_string(diag_warning_name(w->code)));
        json_object_set_new(wo, "message", json_string(w->message));
        json_array_append_new(warnings, wo);
    }
    json_object_set_new(o, "warnings", warnings);

    json_t *chain = json_array();
    if (r->have_chain)
        for (size_t i = 0; i < r->chain.n_certs; i++)
            json_array_append_new(chain, cert_json(&r->chain.certs[i], i));
    json_object_set_new(o, "chain", chain);
    json_object_set_new(o, "chain_status", r->have_chain ? chain_summary_json(r) : json_null());

    json_object_set_new(o, "sni", s->https ? str_or_null(r->sni) : json_null());
    json_object_set_new(o, "host_header", json_string(s->host_header));
    json_t *nc = json_object();
    json_object_set_new(nc, "name", str_or_null(s->check_name));
    json_object_set_new(nc, "source", str_or_null(s->name_source));
    json_object_set_new(nc, "checked", json_boolean(s->https && s->check_name != NULL));
    if (r->have_chain && r->chain.name_checked)
        json_object_set_new(nc, "matched", json_boolean(r->chain.name_result.matched));
    json_object_set_new(o, "name_check", nc);

    json_t *trust = json_object();
    json_object_set_new(trust, "mode", json_string(trust_mode_name(s->trust->mode)));
    json_t *anchors = json_array();
    for (size_t i = 0; i < s->trust->n_anchors; i++) {
        const struct trust_anchor *a = &s->trust->anchors[i];
        json_t *ao = json_object();
        json_object_set_new(ao, "file", json_string(a->source));
        json_object_set_new(ao, "subject", json_string(a->info.subject));
        json_object_set_new(ao, "kind", json_string(cert_kind_name(a->info.kind)));
        json_object_set_new(ao, "sha256", json_string(a->info.sha256));
        json_object_set_new(ao, "not_after", time_json(a->info.not_after));
        json_array_append_new(anchors, ao);
    }
    json_object_set_new(trust, "anchors", anchors);
    json_object_set_new(o, "trust", trust);

    json_object_set_new(o, "address", r->address[0] ? json_string(r->address) : json_null());
    if (r->tls_done) {
        json_t *tls = json_object();
        json_object_set_new(tls, "version", json_string(r->tls_version));
        json_object_set_new(tls, "cipher", json_string(r->tls_cipher));
        json_object_set_new(tls, "alpn", r->tls_alpn[0] ? json_string(r->tls_alpn) : json_null());
        json_object_set_new(tls, "reused_connection", json_boolean(r->reused_connection));
        json_object_set_new(o, "tls", tls);
    } else {
        json_object_set_new(o, "tls", json_null());
    }
    if (r->http_done || r->http_status) {
        json_t *http = json_object();
        json_object_set_new(http, "status", json_integer(r->http_status));
        json_object_set_new(http, "bytes", json_integer((json_int_t)r->http_bytes));
        json_object_set_new(o, "http", http);
    } else {
        json_object_set_new(o, "http", json_null());
    }
    json_t *t = json_object();
    json_object_set_new(t, "dns", ms_or_null(r->ms_dns));
    json_object_set_new(t, "connect", ms_or_null(r->ms_connect));
    json_object_set_new(t, "tls", ms_or_null(r->ms_tls));
    json_object_set_new(t, "response", ms_or_null(r->ms_response));
    json_object_set_new(t, "total", ms_or_null(r->ms_total));
    json_object_set_new(o, "timings_ms", t);

    if (r->alternate.present) {
        const struct probe_alternate *a = &r->alternate;
        json_t *ao = json_object();
        json_object_set_new(ao, "sni", str_or_null(a->sni));
        json_object_set_new(ao, "subject", str_or_null(a->subject));
        json_object_set_new(ao, "issuer", str_or_null(a->issuer));
        json_object_set_new(ao, "names", str_or_null(a->names));
        json_object_set_new(ao, "not_before", time_json(a->not_before));
        json_object_set_new(ao, "not_after", time_json(a->not_after));
        json_object_set_new(ao, "sha256", json_string(a->sha256));
        json_object_set_new(ao, "would_pass", json_boolean(a->would_pass));
        json_object_set_new(ao, "code", json_string(diag_code_name(a->code)));
        json_object_set_new(o, "alternate_sni", ao);
    } else {
        json_object_set_new(o, "alternate_sni", json_null());
    }
    return o;
}
