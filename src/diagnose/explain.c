#include "diagnose/explain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable string for building lists; on OOM it silently stops growing (callers check). */
struct text {
    char *s;
    size_t len, cap;
    bool failed;
};

static void text_add(struct text *t, const char *piece)
{
    size_t n = strlen(piece);
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 128;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = realloc(t->s, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, piece, n + 1);
    t->len += n;
}

static char *text_take(struct text *t, const char *if_empty)
{
    if (t->failed) {
        free(t->s);
        return NULL;
    }
    if (t->len == 0) {
        free(t->s);
        return strdup(if_empty);
    }
    return t->s;
}

const char *explain_date(time_t t, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

char *explain_cert_names(const struct cert_info *cert)
{
    struct text t = {0};
    bool has_dns = false;
    for (size_t i = 0; i < cert->n_sans; i++) {
        const char *san = cert->sans[i];
        if (strncmp(san, "DNS:", 4) == 0) {
            has_dns = true;
            if (t.len)
                text_add(&t, ", ");
            text_add(&t, san + 4);
        } else if (strncmp(san, "IP:", 3) == 0) {
            if (t.len)
                text_add(&t, ", ");
            text_add(&t, "IP ");
            text_add(&t, san + 3);
        }
    }
    if (!has_dns && cert->common_name) {
        if (t.len)
            text_add(&t, ", ");
        text_add(&t, cert->common_name);
        text_add(&t, " (CN; the certificate has no DNS SAN)");
    }
    return text_take(&t, "no DNS name and no IP address");
}

char *explain_anchor_list(const struct trust_policy *policy)
{
    struct text t = {0};
    for (size_t i = 0; i < policy->n_anchors; i++) {
        const struct trust_anchor *a = &policy->anchors[i];
        if (t.len)
            text_add(&t, ", ");
        text_add(&t, "'");
        text_add(&t, a->info.subject);
        text_add(&t, "' (");
        text_add(&t, a->source);
        if (a->info.kind != CERT_KIND_ROOT) {
            text_add(&t, ", ");
            text_add(&t, cert_kind_name(a->info.kind));
        }
        text_add(&t, ")");
    }
    return text_take(&t, "none");
}

static const char *position_name(const struct chain_report *r, size_t idx)
{
    if (idx == r->leaf)
        return "server";
    return r->certs[idx].info.ca ? "intermediate" : "server";
}

static int explain_order(const struct chain_report *r, const struct explain_context *ctx,
                         struct finding_list *out)
{
    (void)ctx;
    const struct cert_info *first = &r->certs[0].info;
    const struct cert_info *leaf = &r->certs[r->leaf].info;
    return finding_add(
            out, DIAG_CERT_LEAF_NOT_FIRST,
            diag_fmt("The first certificate the server sent is the CA certificate '%s'; its own "
                     "(leaf) certificate '%s' comes at position %zu. The chain is in the wrong "
                     "order.",
                     first->subject, leaf->subject, r->leaf),
            diag_fmt("Reorder the certificate chain file on the backend: the server's own "
                     "certificate first, then each intermediate in turn (leaf, then "
                     "intermediate(s), optionally the root)."));
}

static int explain_allowlist(const struct chain_report *r, const struct trust_policy *policy,
                             const struct explain_context *ctx, struct finding_list *out)
{
    const struct cert_info *leaf = &r->certs[r->leaf].info;
    char *tried = explain_anchor_list(policy);
    int rc = finding_add(
            out, DIAG_CERT_NOT_ALLOWLISTED,
            diag_fmt("The server presented '%s' (sha256 %s), which is not one of the %zu "
                     "allow-listed authentication certificate(s): %s.",
                     leaf->subject, leaf->sha256, policy->n_anchors, tried ? tried : "?"),
            diag_fmt("Either upload the certificate the backend really presents (export '%s' "
                     "as a Base-64 .cer and add it to the backend settings' auth-certs%s), or "
                     "make the backend present one of the allow-listed certificates.",
                     leaf->subject, ctx->cli ? ", or pass it with --auth-cert" : ""));
    free(tried);
    return rc;
}

static int explain_issuer_missing(const struct chain_report *r, const struct trust_policy *policy,
                                  const struct explain_context *ctx, struct finding_list *out)
{
    const struct cert_info *leaf = &r->certs[r->leaf].info;
    char aia[1024] = "";
    if (r->needed_aia)
        snprintf(aia, sizeof aia, " (the certificate says it can be downloaded from %s)",
                 r->needed_aia);
    const char *root_hint =
            ctx->cli ? (policy->mode == TRUST_WELL_KNOWN
                                ? "If that issuer is a private CA, probe with its root as "
                                  "--trusted-root (and upload it as a trusted root in the backend "
                                  "settings) instead of relying on well-known CAs."
                                : "If that issuer is itself your root CA, upload it as a trusted "
                                  "root (--trusted-root) instead.")
            : policy->mode == TRUST_WELL_KNOWN
                    ? "If that issuer is a private CA, upload its root as a trusted root in the "
                      "backend settings instead of relying on well-known CAs."
                    : "If that issuer is itself your root CA, upload it as a trusted root "
                      "instead.";
    return finding_add(
            out, DIAG_CERT_INTERMEDIATE_MISSING,
            diag_fmt("The server sent its certificate '%s' without the certificate that issued "
                     "it: the intermediate '%s' was not sent (%zu certificate%s received), and "
                     "it is not a trusted root. Browsers often fetch or cache missing "
                     "intermediates, so the site can look fine in a browser while the gateway "
                     "cannot build the chain.",
                     leaf->subject, r->needed, r->n_certs, r->n_certs == 1 ? "" : "s"),
            diag_fmt("Configure the backend to send the full chain: its certificate followed by "
                     "the intermediate '%s'%s. %s",
                     r->needed, aia, root_hint));
}

static int explain_untrusted(const struct chain_report *r, const struct trust_policy *policy,
                             const struct explain_context *ctx, struct finding_list *out)
{
    bool wk = policy->mode == TRUST_WELL_KNOWN;
    enum diag_code code = wk ? DIAG_CERT_NOT_WELL_KNOWN : DIAG_CERT_ROOT_NOT_TRUSTED;
    char *tried = wk ? strdup("the system's well-known CA store") : explain_anchor_list(policy);
    const char *upload = wk ? "upload it as a trusted root in the backend settings "
                              "(trusted-roots) instead of using well-known CAs"
                            : "upload it as a trusted root";
    const char *cli_hint = ctx->cli ? (wk ? " (--trusted-root)" : " (--trusted-root)") : "";
    char *message = NULL, *remedy = NULL;

    if (r->top_anchor >= 0) {
        const struct trust_anchor *a = &policy->anchors[r->top_anchor];
        message = diag_fmt("The certificate uploaded as trusted root '%s' (%s) is an "
                           "intermediate CA certificate, not a root: the chain reaches it, but "
                           "its issuer '%s' is not among the trusted roots (tried: %s).",
                           a->info.subject, a->source, r->needed, tried ? tried : "?");
        remedy = diag_fmt("Upload the root CA certificate '%s' that issued '%s' as the trusted "
                          "root%s; the gateway needs the root, not an intermediate.",
                          r->needed, a->info.subject, cli_hint);
    } else if (r->top_self_signed) {
        const struct cert_info *top = &r->certs[r->top].info;
        message = diag_fmt("The chain ends at the self-signed %s '%s' (sha256 %s), which is not "
                           "%s (tried: %s).",
                           top->ca ? "root certificate" : "certificate", top->subject, top->sha256,
                           wk ? "a well-known CA" : "among the trusted roots", tried ? tried : "?");
        if (top->ca)
            remedy = diag_fmt("If you trust '%s', %s%s (export it as a Base-64 .cer); otherwise "
                              "install on the backend a certificate issued by a CA you trust.",
                              top->subject, upload, cli_hint);
        else
            remedy = diag_fmt("The backend uses a self-signed certificate that is not a CA. "
                              "Either %s%s as-is (it then works only as a pinned certificate), "
                              "or better, issue the backend certificate from a proper CA "
                              "(CA:TRUE root, optionally an intermediate) and upload that root.",
                              upload, cli_hint);
    } else {
        const struct cert_info *top = &r->certs[r->top].info;
        message = diag_fmt("The certificates sent end at '%s', whose issuer '%s' is not %s "
                           "(tried: %s). Servers need not send their root, so this is normal if "
                           "'%s' is a root CA -- but it may also be a further intermediate that "
                           "the server failed to send.",
                           top->subject, r->needed,
                           wk ? "in the well-known CA store" : "among the trusted roots",
                           tried ? tried : "?", r->needed);
        remedy = diag_fmt("Upload the root CA certificate '%s'%s: %s. If '%s' is an "
                          "intermediate, also configure the backend to send it after '%s'.",
                          r->needed, cli_hint, upload, r->needed, top->subject);
        /* A common mistake: the intermediate itself was uploaded as the "root". */
        for (size_t i = 0; i < policy->n_anchors && message; i++) {
            const struct trust_anchor *a = &policy->anchors[i];
            if (a->info.kind != CERT_KIND_INTERMEDIATE)
                continue;
            char *more = diag_fmt("%s Note: the certificate uploaded as trusted root '%s' (%s) "
                                  "is an intermediate CA certificate, not a root; the gateway "
                                  "needs the root that issued it.",
                                  message, a->info.subject, a->source);
            if (more) {
                free(message);
                message = more;
            }
        }
    }
    free(tried);
    return finding_add(out, code, message, remedy);
}

static int explain_validity(const struct chain_report *r, const struct explain_context *ctx,
                            struct finding_list *out)
{
    char date[64];
    for (size_t i = 0; i < r->n_certs; i++) {
        const struct chain_cert *c = &r->certs[i];
        const char *role = position_name(r, i);
        if (c->expired) {
            long days = (long)((ctx->now - c->info.not_after) / 86400);
            if (finding_add(out, DIAG_CERT_EXPIRED,
                            diag_fmt("The %s certificate '%s' expired on %s (%ld day%s ago).", role,
                                     c->info.subject,
                                     explain_date(c->info.not_after, date, sizeof date), days,
                                     days == 1 ? "" : "s"),
                            diag_fmt("Renew the %s certificate '%s' and install it on the "
                                     "backend (with its chain).",
                                     role, c->info.subject)) != 0)
                return -1;
        }
        if (c->not_yet_valid) {
            if (finding_add(out, DIAG_CERT_NOT_YET_VALID,
                            diag_fmt("The %s certificate '%s' is not valid before %s.", role,
                                     c->info.subject,
                                     explain_date(c->info.not_before, date, sizeof date)),
                            diag_fmt("Install a certificate that is valid now, or check the "
                                     "clocks: the backend's certificate was issued with a start "
                                     "date in the future, or this machine's clock is behind.")) !=
                0)
                return -1;
        }
    }
    /* An anchor the server also sent was judged above as one of the certificates sent. */
    bool anchor_sent = false;
    for (size_t i = 0; r->has_anchor && i < r->n_certs; i++)
        if (cert_equal(r->certs[i].info.x509, r->anchor.x509))
            anchor_sent = true;
    if (r->has_anchor && r->anchor_expired && !anchor_sent) {
        if (finding_add(out, DIAG_CERT_EXPIRED,
                        diag_fmt("The trusted root '%s' expired on %s.", r->anchor.subject,
                                 explain_date(r->anchor.not_after, date, sizeof date)),
                        diag_fmt("Upload the renewed root CA certificate as the trusted root, "
                                 "and make sure the backend's chain leads to it.")) != 0)
            return -1;
    }
    if (r->has_anchor && r->anchor_not_yet_valid && !anchor_sent) {
        if (finding_add(out, DIAG_CERT_NOT_YET_VALID,
                        diag_fmt("The trusted root '%s' is not valid before %s.", r->anchor.subject,
                                 explain_date(r->anchor.not_before, date, sizeof date)),
                        diag_fmt("Check this machine's clock, or upload a root that is valid "
                                 "now.")) != 0)
            return -1;
    }
    return 0;
}

static int explain_name(const struct chain_report *r, const struct explain_context *ctx,
                        struct finding_list *out)
{
    const struct cert_info *leaf = &r->certs[r->leaf].info;
    char *covered = explain_cert_names(leaf);
    char *example = NULL;
    for (size_t i = 0; i < leaf->n_sans && !example; i++)
        if (strncmp(leaf->sans[i], "DNS:", 4) == 0 && leaf->sans[i][4] != '*')
            example = strdup(leaf->sans[i] + 4);
    if (!example && leaf->common_name)
        example = strdup(leaf->common_name);
    const char *how;
    switch (r->name_result.basis) {
    case NAME_BASIS_IP_SAN:
        how = "The backend is addressed by IP and no host name is set, so the certificate needs "
              "an iPAddress SAN for that address.";
        break;
    case NAME_BASIS_CN:
        how = "The certificate has no DNS SAN, so its subject CN was compared (RFC 6125).";
        break;
    default:
        how = "Names are compared with the certificate's DNS SANs (RFC 6125; the CN is ignored "
              "when SANs exist; a wildcard covers exactly one label).";
        break;
    }
    char *message = diag_fmt("The server's certificate '%s' does not cover the expected name "
                             "'%s' (from %s). It covers: %s. %s",
                             leaf->subject, r->name, ctx->name_source ? ctx->name_source : "?",
                             covered ? covered : "?", how);
    char *remedy;
    if (example)
        remedy = diag_fmt("Set the host name in the backend settings%s (or the probe's host) "
                          "to a name the certificate covers, such as '%s', so that the SNI "
                          "and the name check use it; or reissue the certificate with '%s' in "
                          "its subjectAltName.",
                          ctx->cli ? " (--host)" : "", example, r->name);
    else
        remedy = diag_fmt("Reissue the backend certificate with '%s' in its subjectAltName, or "
                          "set the backend settings host name%s to a name it covers.",
                          r->name, ctx->cli ? " (--host)" : "");
    free(covered);
    free(example);
    return finding_add(out, DIAG_CERT_NAME_MISMATCH, message, remedy);
}

static int explain_warnings(const struct chain_report *r, const struct trust_policy *policy,
                            const struct explain_context *ctx, struct finding_list *out)
{
    for (size_t i = 0; i < policy->n_anchors && policy->mode == TRUST_ROOTS; i++) {
        const struct trust_anchor *a = &policy->anchors[i];
        bool used = r->anchor_index == (int)i || r->via_anchor == (int)i;
        if (!used)
            continue;
        if (!a->info.ca) {
            if (warning_add(out, WARN_TRUST_ANCHOR_NOT_CA,
                            diag_fmt("The trusted root '%s' (%s) is a %s, not a CA certificate "
                                     "(basicConstraints CA:FALSE). It is accepted here as a "
                                     "pinned certificate, but the modelled gateway (v2) rejects "
                                     "a non-CA trusted root; prefer a real CA root.",
                                     a->info.subject, a->source, cert_kind_name(a->info.kind))) !=
                0)
                return -1;
        } else if (!a->info.self_signed) {
            if (warning_add(out, WARN_TRUST_ANCHOR_NOT_ROOT,
                            diag_fmt("The trusted root '%s' (%s) is an intermediate CA "
                                     "certificate, not a root.",
                                     a->info.subject, a->source)) != 0)
                return -1;
        }
    }
    if (r->path_out_of_order && !r->leaf_not_first) {
        if (warning_add(out, WARN_CHAIN_OUT_OF_ORDER,
                        diag_fmt("The server sent its chain out of order; it was accepted, but "
                                 "strict clients may not: send leaf, then intermediates in "
                                 "order.")) != 0)
            return -1;
    }
    if (r->unused_certs > 0 && r->status == CHAIN_TRUSTED && policy->mode != TRUST_ALLOWLIST) {
        if (warning_add(out, WARN_CHAIN_EXTRA_CERTS,
                        diag_fmt("The server sent %zu certificate%s that belong%s to no path to "
                                 "the trust anchor.",
                                 r->unused_certs, r->unused_certs == 1 ? "" : "s",
                                 r->unused_certs == 1 ? "s" : "")) != 0)
            return -1;
    }
    if (ctx->expiry_warning_days > 0) {
        char date[64];
        for (size_t i = 0; i < r->n_certs; i++) {
            const struct chain_cert *c = &r->certs[i];
            if (!c->on_path || c->expired || c->info.not_after == 0)
                continue;
            long left = (long)((c->info.not_after - ctx->now) / 86400);
            if (left < ctx->expiry_warning_days &&
                warning_add(out, WARN_CERT_EXPIRES_SOON,
                            diag_fmt("The certificate '%s' expires on %s, in %ld day%s.",
                                     c->info.subject,
                                     explain_date(c->info.not_after, date, sizeof date), left,
                                     left == 1 ? "" : "s")) != 0)
                return -1;
        }
    }
    return 0;
}

int explain_chain(const struct chain_report *r, const struct trust_policy *policy,
                  const struct explain_context *ctx, struct finding_list *out)
{
    if (r->n_certs == 0) {
        return finding_add(out, DIAG_TLS_HANDSHAKE_FAILED,
                           diag_fmt("The server completed the TLS handshake without sending a "
                                    "certificate."),
                           diag_fmt("Configure a certificate on the backend's TLS listener."));
    }
    if (r->leaf_not_first && explain_order(r, ctx, out) != 0)
        return -1;
    switch (r->status) {
    case CHAIN_NOT_ALLOWLISTED:
        if (explain_allowlist(r, policy, ctx, out) != 0)
            return -1;
        break;
    case CHAIN_ISSUER_MISSING:
        if (explain_issuer_missing(r, policy, ctx, out) != 0)
            return -1;
        break;
    case CHAIN_UNTRUSTED_TOP:
        if (explain_untrusted(r, policy, ctx, out) != 0)
            return -1;
        break;
    case CHAIN_TRUSTED:
    case CHAIN_EMPTY:
        break;
    }
    if (explain_validity(r, ctx, out) != 0)
        return -1;
    if (r->name_checked && !r->name_result.matched && explain_name(r, ctx, out) != 0)
        return -1;
    return explain_warnings(r, policy, ctx, out);
}
