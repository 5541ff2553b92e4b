#include "tls/chain_analysis.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void set_validity(const struct cert_info *info, time_t now, bool *expired, bool *not_yet)
{
    *expired = info->not_after != 0 && now > info->not_after;
    *not_yet = info->not_before != 0 && now < info->not_before;
}

/* A sent certificate (not yet on the path) that issued certs[cur]; CA certificates first. */
static int find_sent_issuer(const struct chain_report *r, size_t cur, const bool *visited)
{
    int fallback = -1;
    for (size_t j = 0; j < r->n_certs; j++) {
        if (j == cur || visited[j])
            continue;
        if (!cert_issued_by(r->certs[cur].info.x509, r->certs[j].info.x509))
            continue;
        if (r->certs[j].info.ca)
            return (int)j;
        if (fallback < 0)
            fallback = (int)j;
    }
    return fallback;
}

static int dup_into(char **dst, const char *src)
{
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

static int close_with_anchor(struct chain_report *r, X509 *anchor, int index, time_t now)
{
    r->status = CHAIN_TRUSTED;
    r->has_anchor = true;
    r->anchor_index = index;
    if (cert_info_init(&r->anchor, anchor) != 0)
        return -1;
    /* Only uploaded anchors are judged on validity: the system store is the OS's business. */
    if (index >= 0)
        set_validity(&r->anchor, now, &r->anchor_expired, &r->anchor_not_yet_valid);
    return 0;
}

/*
 * The climb left the sent certificates through an uploaded anchor that is not self-signed (an
 * intermediate uploaded as a "root"): carry on through the uploaded anchors. Trusted only if it
 * ends at a self-signed anchor.
 */
static int climb_uploaded(struct chain_report *r, struct trust_policy *policy, int first,
                          time_t now)
{
    int cur = first;
    r->via_anchor = first;
    for (size_t steps = 0; steps <= policy->n_anchors; steps++) {
        struct cert_info *ci = &policy->anchors[cur].info;
        if (ci->self_signed)
            return close_with_anchor(r, ci->x509, cur, now);
        X509 *issuer;
        int idx;
        if (!trust_find_issuer(policy, ci->x509, &issuer, &idx) || idx < 0 || idx == cur) {
            X509_free(issuer);
            break;
        }
        X509_free(issuer);
        cur = idx;
    }
    r->status = CHAIN_UNTRUSTED_TOP;
    r->top_anchor = cur;
    r->top_self_signed = false;
    return dup_into(&r->needed, policy->anchors[cur].info.issuer);
}

static int walk_to_anchor(struct chain_report *r, struct trust_policy *policy, time_t now)
{
    bool visited[CHAIN_MAX_CERTS] = {false};
    size_t cur = r->leaf;
    visited[cur] = true;
    r->path[r->path_len++] = cur;
    for (;;) {
        struct cert_info *ci = &r->certs[cur].info;
        X509 *issuer;
        int idx;
        bool have_anchor = trust_find_issuer(policy, ci->x509, &issuer, &idx);
        if (have_anchor && (idx < 0 || policy->anchors[idx].info.self_signed)) {
            int rc = close_with_anchor(r, issuer, idx, now);
            X509_free(issuer);
            return rc;
        }
        X509_free(issuer);
        r->top = cur;
        if (ci->self_signed) {
            r->status = CHAIN_UNTRUSTED_TOP;
            r->top_self_signed = true;
            return dup_into(&r->needed, ci->subject);
        }
        int next = find_sent_issuer(r, cur, visited);
        if (next >= 0 && r->path_len < CHAIN_MAX_CERTS) {
            cur = (size_t)next;
            visited[cur] = true;
            r->path[r->path_len++] = cur;
            continue;
        }
        if (have_anchor)
            return climb_uploaded(r, policy, idx, now);
        if (cur == r->leaf && !ci->ca) {
            r->status = CHAIN_ISSUER_MISSING;
            if (dup_into(&r->needed_aia, ci->aia_ca_issuers) != 0)
                return -1;
        } else {
            r->status = CHAIN_UNTRUSTED_TOP;
        }
        return dup_into(&r->needed, ci->issuer);
    }
}

int chain_analyze(STACK_OF(X509) * sent, struct trust_policy *policy, const char *check_name,
                  time_t now, struct chain_report *out)
{
    memset(out, 0, sizeof *out);
    out->top_anchor = -1;
    out->anchor_index = -1;
    out->via_anchor = -1;
    out->allowlist_match = -1;
    int n = sent ? sk_X509_num(sent) : 0;
    if (n <= 0) {
        out->status = CHAIN_EMPTY;
        return 0;
    }
    if (n > CHAIN_MAX_CERTS)
        n = CHAIN_MAX_CERTS;
    out->certs = calloc((size_t)n, sizeof *out->certs);
    if (!out->certs)
        goto oom;
    for (int i = 0; i < n; i++) {
        if (cert_info_init(&out->certs[i].info, sk_X509_value(sent, i)) != 0) {
            out->n_certs = (size_t)i + 1;
            goto oom;
        }
        out->n_certs = (size_t)i + 1;
    }

    /* Leaf: the first certificate, unless it is a CA and an end-entity one follows. */
    out->leaf = 0;
    if (out->certs[0].info.ca) {
        for (size_t i = 1; i < out->n_certs; i++) {
            if (!out->certs[i].info.ca) {
                out->leaf = i;
                out->leaf_not_first = true;
                break;
            }
        }
    }

    if (policy->mode == TRUST_ALLOWLIST) {
        /* v1 semantics: the presented leaf equal to an uploaded certificate is the whole
         * decision; no chain is built. */
        out->path[out->path_len++] = out->leaf;
        for (size_t i = 0; i < policy->n_anchors; i++) {
            if (cert_equal(out->certs[out->leaf].info.x509, policy->anchors[i].info.x509)) {
                out->allowlist_match = (int)i;
                break;
            }
        }
        out->status = out->allowlist_match >= 0 ? CHAIN_TRUSTED : CHAIN_NOT_ALLOWLISTED;
    } else {
        if (policy->mode == TRUST_WELL_KNOWN)
            trust_policy_load_system(policy);
        if (walk_to_anchor(out, policy, now) != 0)
            goto oom;
    }

    for (size_t i = 0; i < out->path_len; i++) {
        struct chain_cert *c = &out->certs[out->path[i]];
        c->on_path = true;
        set_validity(&c->info, now, &c->expired, &c->not_yet_valid);
        if (out->path[i] != i)
            out->path_out_of_order = true;
    }
    for (size_t i = 0; i < out->n_certs; i++) {
        /* A root sent on top of the path is harmless; anything else off the path is noise. */
        if (!out->certs[i].on_path &&
            !(out->has_anchor && cert_equal(out->certs[i].info.x509, out->anchor.x509)))
            out->unused_certs++;
    }

    if (check_name && *check_name) {
        out->name_checked = true;
        out->name = strdup(check_name);
        if (!out->name)
            goto oom;
        name_match_cert(&out->certs[out->leaf].info, check_name, &out->name_result);
    }
    return 0;

oom:
    chain_report_clear(out);
    return -1;
}

void chain_report_clear(struct chain_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_certs; i++)
        cert_info_clear(&r->certs[i].info);
    free(r->certs);
    free(r->needed);
    free(r->needed_aia);
    free(r->name);
    if (r->has_anchor)
        cert_info_clear(&r->anchor);
    memset(r, 0, sizeof *r);
}

bool chain_report_ok(const struct chain_report *r)
{
    if (r->status != CHAIN_TRUSTED || r->leaf_not_first)
        return false;
    if (r->anchor_expired || r->anchor_not_yet_valid)
        return false;
    for (size_t i = 0; i < r->n_certs; i++)
        if (r->certs[i].expired || r->certs[i].not_yet_valid)
            return false;
    return !r->name_checked || r->name_result.matched;
}
