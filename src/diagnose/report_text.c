#include <string.h>
#include <time.h>

#include "diagnose/explain.h"
#include "diagnose/report.h"

struct style {
    const char *bold, *red, *green, *yellow, *dim, *reset;
};

static const struct style plain = {"", "", "", "", "", ""};
static const struct style ansi = {"\033[1m",  "\033[31m", "\033[32m",
                                  "\033[33m", "\033[2m",  "\033[0m"};

static void day(time_t t, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d", &tm);
}

static void print_policy(FILE *out, const struct probe_spec *s, const struct probe_result *r,
                         const struct style *st)
{
    fprintf(out, "%sPolicy%s\n", st->bold, st->reset);
    fprintf(out, "  address      %s\n", r->address[0] ? r->address : s->host);
    if (s->https) {
        if (r->sni)
            fprintf(out, "  SNI sent     %s\n", r->sni);
        else
            fprintf(out, "  SNI sent     none%s\n",
                    s->sni == NULL && s->check_name && strcmp(s->check_name, s->host) == 0
                            ? " (the backend is addressed by IP; --host sets a name)"
                            : "");
    }
    fprintf(out, "  Host header  %s\n", s->host_header);
    if (s->https) {
        if (s->check_name)
            fprintf(out, "  name check   %s (from %s)\n", s->check_name, s->name_source);
        else
            fprintf(out, "  name check   none (%s)\n", s->name_source);
        const struct trust_policy *t = s->trust;
        if (t->mode == TRUST_WELL_KNOWN) {
            fprintf(out, "  trust        well-known CAs (the system trust store)\n");
        } else {
            fprintf(out, "  trust        %s:\n",
                    t->mode == TRUST_ROOTS ? "trusted roots (the chain must end at one)"
                                           : "allow-listed certificates (the "
                                             "presented leaf must equal one)");
            for (size_t i = 0; i < t->n_anchors; i++)
                fprintf(out, "                 %s  [%s, %s, sha256 %.16s...]\n",
                        t->anchors[i].info.subject, t->anchors[i].source,
                        cert_kind_name(t->anchors[i].info.kind), t->anchors[i].info.sha256);
        }
    }
    fprintf(out, "\n");
}

static void print_chain(FILE *out, const struct probe_result *r, const struct style *st)
{
    const struct chain_report *c = &r->chain;
    fprintf(out, "%sChain as sent%s (%zu certificate%s, in the order received)\n", st->bold,
            st->reset, c->n_certs, c->n_certs == 1 ? "" : "s");
    char nb[16], na[16];
    for (size_t i = 0; i < c->n_certs; i++) {
        const struct chain_cert *cc = &c->certs[i];
        const struct cert_info *ci = &cc->info;
        day(ci->not_before, nb, sizeof nb);
        day(ci->not_after, na, sizeof na);
        char *names = explain_cert_names(ci);
        const char *role = i == c->leaf ? "leaf" : cert_kind_name(ci->kind);
        fprintf(out, "  [%zu] %s%-16s%s %s\n", i, st->bold, role, st->reset, ci->subject);
        fprintf(out, "        issuer   %s\n", ci->issuer);
        fprintf(out, "        valid    %s .. %s%s%s%s\n", nb, na,
                cc->expired || cc->not_yet_valid ? st->red : "",
                cc->expired ? "  EXPIRED" : (cc->not_yet_valid ? "  NOT YET VALID" : ""),
                st->reset);
        if (!ci->ca)
            fprintf(out, "        names    %s\n", names ? names : "?");
        fprintf(out, "        sha256   %s\n", ci->sha256);
        if (i == 0 && c->leaf_not_first)
            fprintf(out, "        %s!! a CA certificate sent first: the leaf is [%zu]%s\n", st->red,
                    c->leaf, st->reset);
        if (!cc->on_path && c->status == CHAIN_TRUSTED)
            fprintf(out, "        %s(not part of the path to the trust anchor)%s\n", st->dim,
                    st->reset);
        free(names);
    }
    switch (c->status) {
    case CHAIN_TRUSTED:
        if (c->has_anchor)
            fprintf(out, "  %s--> trusted anchor%s %s (%s)\n", st->green, st->reset,
                    c->anchor.subject,
                    c->anchor_index >= 0 ? "uploaded trusted root" : "system trust store");
        else if (c->allowlist_match >= 0)
            fprintf(out, "  %s--> allow-listed%s: the leaf equals an uploaded certificate\n",
                    st->green, st->reset);
        break;
    case CHAIN_ISSUER_MISSING:
        fprintf(out, "  %s!! missing link%s: %s -- issued the leaf, but was not sent%s%s\n",
                st->red, st->reset, c->needed, c->needed_aia ? "; AIA: " : "",
                c->needed_aia ? c->needed_aia : "");
        break;
    case CHAIN_UNTRUSTED_TOP:
        fprintf(out, "  %s!! untrusted top%s: %s -- %s\n", st->red, st->reset, c->needed,
                c->top_self_signed ? "self-signed, and not a trust anchor"
                                   : "needed as a trusted root (or a further intermediate "
                                     "was not sent)");
        break;
    case CHAIN_NOT_ALLOWLISTED:
        fprintf(out, "  %s!! not allow-listed%s: the leaf equals no uploaded certificate\n",
                st->red, st->reset);
        break;
    case CHAIN_EMPTY:
        break;
    }
    fprintf(out, "\n");
}

static void print_wrapped(FILE *out, const char *label, const char *text)
{
    /* Wrap at ~96 columns under a 9-column label so long remedies stay readable. */
    const size_t width = 88;
    fprintf(out, "%-9s", label);
    size_t col = 0;
    const char *p = text;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t wlen = sp ? (size_t)(sp - p) : strlen(p);
        if (col > 0 && col + 1 + wlen > width) {
            fprintf(out, "\n%-9s", "");
            col = 0;
        } else if (col > 0) {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, wlen, out);
        col += wlen;
        p += wlen;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

void report_text(FILE *out, const struct probe_spec *s, const struct probe_result *r, bool colour)
{
    const struct style *st = colour ? &ansi : &plain;
    fprintf(out, "%sgatehouse probe %s%s\n\n", st->bold, s->url, st->reset);
    print_policy(out, s, r, st);
    if (r->have_chain)
        print_chain(out, r, st);
    if (r->tls_done)
        fprintf(out, "TLS      %s, %s%s%s\n", r->tls_version, r->tls_cipher,
                r->tls_alpn[0] ? ", ALPN " : "", r->tls_alpn);
    if (r->http_done)
        fprintf(out, "HTTP     status %d, %llu body bytes\n", r->http_status,
                (unsigned long long)r->http_bytes);
    fprintf(out, "Timings ");
    const char *names[] = {"dns", "connect", "tls", "response"};
    double vals[] = {r->ms_dns, r->ms_connect, r->ms_tls, r->ms_response};
    for (int i = 0; i < 4; i++)
        if (vals[i] >= 0)
            fprintf(out, " %s %.1f ms", names[i], vals[i]);
    fprintf(out, " (total %.1f ms)\n", r->ms_total);
    if (r->alternate.present) {
        const struct probe_alternate *a = &r->alternate;
        fprintf(out, "Second   with SNI %s the server returns %s (sha256 %.16s...): %s\n",
                a->sni ? a->sni : "none", a->subject, a->sha256,
                a->would_pass ? "it would pass" : diag_code_name(a->code));
    }
    fprintf(out, "\n");
    if (probe_result_healthy(r)) {
        char msg[128];
        snprintf(msg, sizeof msg, "%sHealthy%s (OK)", st->green, st->reset);
        fprintf(out, "%-9s%s\n", "Verdict:", msg);
        char cause[160];
        if (r->http_done)
            snprintf(cause, sizeof cause, "Success. Received %d status code.", r->http_status);
        else
            snprintf(cause, sizeof cause, "Success.");
        print_wrapped(out, "Cause:", cause);
        print_wrapped(out, "Fix:", "Nothing to fix.");
    } else {
        const struct finding *f = &r->findings.items[0];
        fprintf(out, "%-9s%sUnhealthy%s (%s)\n", "Verdict:", st->red, st->reset,
                diag_code_name(f->code));
        print_wrapped(out, "Cause:", f->message);
        print_wrapped(out, "Fix:", f->remedy);
        for (size_t i = 1; i < r->findings.n; i++) {
            const struct finding *g = &r->findings.items[i];
            fprintf(out, "\n%-9s%s\n", "Also:", diag_code_name(g->code));
            print_wrapped(out, "", g->message);
            print_wrapped(out, "", g->remedy);
        }
    }
    for (size_t i = 0; i < r->findings.n_warnings; i++) {
        const struct warning *w = &r->findings.warnings[i];
        fprintf(out, "\n%s%-9s%s%s\n", st->yellow, "Warning:", diag_warning_name(w->code),
                st->reset);
        print_wrapped(out, "", w->message);
    }
}
