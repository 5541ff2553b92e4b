/*
 * libFuzzer target for certificate loading and chain diagnosis (src/tls/cert_load.c,
 * cert_info.c, name_match.c, trust.c, chain_analysis.c, src/diagnose/explain.c): whatever
 * certificates come out of arbitrary bytes (PEM, DER, PKCS#12) are analysed as the chain a
 * backend sent, against trust policies made of a subset of them, in roots mode and in allow-list
 * mode, and explained; the promises of the headers are checked rather than just "does not
 * crash":
 *
 *   - loading: 0 with a non-empty stack, or -1 with a NULL stack and an error sentence;
 *   - the report: leaf and path indexes in range, the path starts at the leaf, has no repeats,
 *     every link of it is a real issuance (cert_issued_by), on_path and path_out_of_order agree
 *     with the path, the status fits the mode, the anchor that closed a trusted path issued its
 *     top and is self-signed, "needed" is set whenever something is missing;
 *   - the findings: certificate codes only, in precedence order after sorting, one for the
 *     status, and none exactly when chain_report_ok() says the chain is fine.
 *
 * Input layout: byte 0 = flags, byte 1 = which of the first 8 certificates are uploaded, byte 2 =
 * length of the name to check, then the name, then the certificate bytes.
 *   flags bits 0-1: PKCS#12 password (none, "", "secret", "password"); bit 2: CLI wording;
 *   bits 4-7: the time validity is judged at (2026-01-01 +/- multiples of 180 days).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose/explain.h"
#include "diagnose/finding.h"
#include "tls/cert_info.h"
#include "tls/cert_load.h"
#include "tls/chain_analysis.h"
#include "tls/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_cert: invariant failed: %s (%s:%d)\n", #cond, __FILE__,          \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define BASE_TIME ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define STEP      (180L * 86400L)

static const char *const passwords[] = {NULL, "", "secret", "password"};

static void check_cert_info(const struct cert_info *ci)
{
    CHECK(ci->x509 != NULL);
    CHECK(ci->subject != NULL && ci->issuer != NULL);
    (void)strlen(ci->subject);
    (void)strlen(ci->issuer);
    size_t hex = strlen(ci->sha256);
    CHECK(hex == CERT_SHA256_HEX_LEN);
    for (size_t i = 0; i < ci->n_sans; i++)
        CHECK(ci->sans[i] != NULL && strlen(ci->sans[i]) > 0);
    CHECK(ci->kind == (ci->ca ? (ci->self_signed ? CERT_KIND_ROOT : CERT_KIND_INTERMEDIATE)
                              : (ci->self_signed ? CERT_KIND_SELF_SIGNED_LEAF : CERT_KIND_LEAF)));
    char *names = explain_cert_names(ci);
    CHECK(names != NULL);
    free(names);
}

static void check_report(const struct chain_report *r, const struct trust_policy *policy,
                         int n_sent, const char *name)
{
    size_t n = (size_t)(n_sent < CHAIN_MAX_CERTS ? n_sent : CHAIN_MAX_CERTS);
    CHECK(r->n_certs == n && r->certs != NULL);
    for (size_t i = 0; i < n; i++)
        check_cert_info(&r->certs[i].info);

    /* the leaf */
    CHECK(r->leaf < n);
    if (r->leaf_not_first) {
        CHECK(r->leaf > 0);
        for (size_t i = 0; i < r->leaf; i++)
            CHECK(r->certs[i].info.ca);
        CHECK(!r->certs[r->leaf].info.ca);
    } else {
        CHECK(r->leaf == 0);
    }

    /* the path */
    CHECK(r->path_len >= 1 && r->path_len <= CHAIN_MAX_CERTS);
    CHECK(r->path[0] == r->leaf);
    bool in_path[CHAIN_MAX_CERTS] = {false};
    bool out_of_order = false;
    for (size_t i = 0; i < r->path_len; i++) {
        CHECK(r->path[i] < n);
        CHECK(!in_path[r->path[i]]);
        in_path[r->path[i]] = true;
        out_of_order = out_of_order || r->path[i] != i;
        if (i > 0)
            CHECK(cert_issued_by(r->certs[r->path[i - 1]].info.x509,
                                 r->certs[r->path[i]].info.x509));
    }
    CHECK(r->path_out_of_order == out_of_order);
    size_t unused = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(r->certs[i].on_path == in_path[i]);
        if (!in_path[i]) {
            CHECK(!r->certs[i].expired && !r->certs[i].not_yet_valid);
            unused++;
        }
    }
    CHECK(r->unused_certs <= unused);
    const struct cert_info *top = &r->certs[r->path[r->path_len - 1]].info;

    /* the status */
    CHECK(r->top_anchor >= -1 && r->top_anchor < (int)policy->n_anchors);
    CHECK(r->via_anchor >= -1 && r->via_anchor < (int)policy->n_anchors);
    CHECK(r->anchor_index >= -1 && r->anchor_index < (int)policy->n_anchors);
    CHECK(r->allowlist_match >= -1 && r->allowlist_match < (int)policy->n_anchors);
    if (policy->mode == TRUST_ALLOWLIST) {
        CHECK(r->path_len == 1);
        CHECK(!r->has_anchor && r->needed == NULL);
        CHECK(r->status == CHAIN_TRUSTED || r->status == CHAIN_NOT_ALLOWLISTED);
        CHECK((r->status == CHAIN_TRUSTED) == (r->allowlist_match >= 0));
        if (r->allowlist_match >= 0)
            CHECK(cert_equal(r->certs[r->leaf].info.x509,
                             policy->anchors[r->allowlist_match].info.x509));
        else
            for (size_t i = 0; i < policy->n_anchors; i++)
                CHECK(!cert_equal(r->certs[r->leaf].info.x509, policy->anchors[i].info.x509));
    } else {
        CHECK(r->allowlist_match == -1);
        switch (r->status) {
        case CHAIN_TRUSTED: {
            CHECK(r->has_anchor);
            CHECK(r->anchor_index >= 0); /* no system store here */
            CHECK(r->anchor.self_signed);
            CHECK(cert_equal(r->anchor.x509, policy->anchors[r->anchor_index].info.x509));
            X509 *issuer =
                    r->via_anchor >= 0 ? policy->anchors[r->via_anchor].info.x509 : r->anchor.x509;
            CHECK(cert_issued_by(top->x509, issuer));
            CHECK(r->needed == NULL && r->top_anchor == -1);
            break;
        }
        case CHAIN_ISSUER_MISSING:
            CHECK(!r->has_anchor);
            CHECK(r->path_len == 1 && r->top == r->leaf);
            CHECK(!r->certs[r->leaf].info.ca && !r->certs[r->leaf].info.self_signed);
            CHECK(r->needed != NULL && strcmp(r->needed, r->certs[r->leaf].info.issuer) == 0);
            CHECK(!r->top_self_signed && r->top_anchor == -1);
            break;
        case CHAIN_UNTRUSTED_TOP:
            CHECK(!r->has_anchor);
            CHECK(r->needed != NULL);
            CHECK(r->top < n && in_path[r->top]);
            if (r->top_self_signed)
                CHECK(r->certs[r->top].info.self_signed);
            CHECK(r->needed_aia == NULL);
            break;
        case CHAIN_EMPTY:
        case CHAIN_NOT_ALLOWLISTED:
        default:
            CHECK(!"unexpected status in roots mode");
        }
    }

    /* the name */
    if (name && *name) {
        CHECK(r->name_checked && r->name && strcmp(r->name, name) == 0);
        if (r->name_result.matched)
            CHECK(r->name_result.matched_by != NULL);
    } else {
        CHECK(!r->name_checked);
    }
}

static void check_findings(struct finding_list *f, const struct chain_report *r,
                           const struct trust_policy *policy)
{
    for (size_t i = 0; i < f->n; i++) {
        CHECK(diag_code_is_certificate(f->items[i].code));
        CHECK(f->items[i].message && strlen(f->items[i].message) > 0);
        CHECK(f->items[i].remedy && strlen(f->items[i].remedy) > 0);
        CHECK(f->items[i].code != DIAG_CERT_NOT_WELL_KNOWN);
    }
    for (size_t i = 0; i < f->n_warnings; i++) {
        CHECK(f->warnings[i].code <= WARN_ALTERNATE_SNI_DIFFERS);
        CHECK(f->warnings[i].message && strlen(f->warnings[i].message) > 0);
    }
    finding_list_sort(f);
    for (size_t i = 1; i < f->n; i++)
        CHECK(f->items[i - 1].code <= f->items[i].code);
    CHECK(finding_list_code(f) == (f->n ? f->items[0].code : DIAG_OK));

    CHECK(chain_report_ok(r) == (f->n == 0));
    CHECK(finding_list_has(f, DIAG_CERT_LEAF_NOT_FIRST) == r->leaf_not_first);
    CHECK(finding_list_has(f, DIAG_CERT_NOT_ALLOWLISTED) == (r->status == CHAIN_NOT_ALLOWLISTED));
    CHECK(finding_list_has(f, DIAG_CERT_INTERMEDIATE_MISSING) ==
          (r->status == CHAIN_ISSUER_MISSING));
    CHECK(finding_list_has(f, DIAG_CERT_ROOT_NOT_TRUSTED) == (r->status == CHAIN_UNTRUSTED_TOP));
    CHECK(finding_list_has(f, DIAG_CERT_NAME_MISMATCH) ==
          (r->name_checked && !r->name_result.matched));
    (void)policy;
}

static void analyse(STACK_OF(X509) * certs, enum trust_mode mode, uint8_t mask, const char *name,
                    time_t now, bool cli)
{
    struct trust_policy policy;
    trust_policy_init(&policy, mode);
    int n = sk_X509_num(certs);
    for (int i = 0; i < n && i < 8; i++)
        if ((mask >> i) & 1)
            CHECK(trust_policy_add_cert(&policy, sk_X509_value(certs, i), "fuzz.pem") == 0);
    char *anchors = explain_anchor_list(&policy);
    CHECK(anchors != NULL);
    free(anchors);

    struct chain_report r;
    CHECK(chain_analyze(certs, &policy, name, now, &r) == 0);
    check_report(&r, &policy, n, name);

    struct explain_context ctx = {
            .name_source = "fuzz", .cli = cli, .now = now, .expiry_warning_days = 30};
    struct finding_list f = {0};
    CHECK(explain_chain(&r, &policy, &ctx, &f) == 0);
    check_findings(&f, &r, &policy);

    finding_list_clear(&f);
    chain_report_clear(&r);
    trust_policy_clear(&policy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t flags = data[0], mask = data[1];
    size_t name_len = data[2];
    data += 3;
    size -= 3;
    if (name_len > size)
        name_len = size;
    char name[256];
    memcpy(name, data, name_len);
    name[name_len] = '\0';
    data += name_len;
    size -= name_len;

    /* An exact-size copy, so that any read past the end is an ASan report. */
    unsigned char *copy = malloc(size ? size : 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);

    STACK_OF(X509) *certs = (STACK_OF(X509) *)&certs;
    char err[256];
    memset(err, 0, sizeof err);
    int rc = cert_load_mem(copy, size, passwords[flags & 3], &certs, err, sizeof err);
    free(copy);
    if (rc != 0) {
        CHECK(rc == -1);
        CHECK(certs == NULL);
        CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
        return 0;
    }
    CHECK(certs != NULL && sk_X509_num(certs) > 0);

    time_t now = BASE_TIME + ((long)(flags >> 4) - 8) * STEP;
    bool cli = (flags >> 2) & 1;
    const char *check_name = name_len ? name : NULL;
    analyse(certs, TRUST_ROOTS, mask, check_name, now, cli);
    analyse(certs, TRUST_ALLOWLIST, mask, check_name, now, cli);
    /* and with every certificate uploaded */
    analyse(certs, TRUST_ROOTS, 0xff, check_name, now, cli);

    sk_X509_pop_free(certs, X509_free);
    return 0;
}
