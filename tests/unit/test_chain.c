/*
 * Unit tests for src/tls/chain_analysis.c and src/diagnose/explain.c: each case builds the chain a
 * backend would send (test_pki.h, generated in memory), runs chain_analyze against a trust
 * policy at the fixed time PKI_NOW, checks the chain_report fields, then runs explain_chain and
 * checks the finding codes in precedence order (finding_list_sort + finding_list_code), the
 * warnings, and the parts of the messages users depend on (which certificate, which name).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "diagnose/explain.h"
#include "diagnose/finding.h"
#include "test_pki.h"
#include "tls/cert_load.h"
#include "tls/chain_analysis.h"
#include "tls/trust.h"

#define ROOT_SUBJ       "CN=Gatehouse Test Root,O=Gatehouse Test"
#define INT_SUBJ        "CN=Gatehouse Test Intermediate,O=Gatehouse Test"
#define INT2_SUBJ       "CN=Gatehouse Test Issuing CA 2,O=Gatehouse Test"
#define LEAF_SUBJ       "CN=app.example.com,O=Gatehouse Test"
#define OTHER_ROOT_SUBJ "CN=Other Test Root,O=Gatehouse Test"
#define OTHER_LEAF_SUBJ "CN=other.example.com,O=Gatehouse Test"
#define SS_SUBJ         "CN=selfsigned.example.com,O=Gatehouse Test"
#define EXP_ROOT_SUBJ   "CN=Expired Test Root,O=Gatehouse Test"
#define EXP_INT_SUBJ    "CN=Expired Intermediate,O=Gatehouse Test"
#define AIA_URL         "http://pki.example.test/intermediate.cer"
#define LEAF_SANS       "DNS:app.example.com,DNS:*.app.example.com,IP:10.0.0.5"

/* The test PKI, built once for the group. */
static struct {
    EVP_PKEY *root_key, *int_key, *int2_key, *other_key, *forged_key, *exp_root_key, *exp_int_key,
            *leaf_key;
    X509 *root;           /* self-signed CA */
    X509 *inter;          /* CA issued by root */
    X509 *inter2;         /* CA issued by inter */
    X509 *leaf;           /* issued by inter, LEAF_SANS, AIA */
    X509 *leaf_deep;      /* issued by inter2 */
    X509 *other_leaf;     /* issued by inter, another key */
    X509 *legacy;         /* issued by inter, CN only */
    X509 *other_root;     /* unrelated self-signed CA */
    X509 *ss;             /* self-signed leaf (CA:FALSE) */
    X509 *expired_leaf;   /* issued by inter, expired 10 days ago */
    X509 *future_leaf;    /* issued by inter, valid from 2 days ahead */
    X509 *soon_leaf;      /* issued by inter, expires in 10 days */
    X509 *forged_inter;   /* INT_SUBJ with another key, issued by root */
    X509 *leaf_nokid;     /* issued by inter, no key identifiers */
    X509 *forged_nokid;   /* INT_SUBJ with another key, no key identifiers */
    X509 *forged_root;    /* ROOT_SUBJ with another key, self-signed */
    X509 *skid_inter;     /* INT_SUBJ with the real key but another subjectKeyIdentifier */
    X509 *exp_root;       /* self-signed CA that expired yesterday */
    X509 *exp_inter;      /* issued by exp_root, valid */
    X509 *exp_leaf;       /* issued by exp_inter */
    X509 *expired_inter;  /* INT-like CA issued by root, expired yesterday */
    X509 *leaf_of_expint; /* issued by expired_inter, valid */
} F;

static X509 *leaf_spec(const char *cn, const char *san, long nb, long na, X509 *issuer,
                       EVP_PKEY *issuer_key)
{
    struct pki_spec spec = {.cn = cn, .san = san, .not_before = nb, .not_after = na};
    EVP_PKEY *key = pki_key();
    X509 *x = pki_issue(&spec, key, issuer, issuer_key);
    EVP_PKEY_free(key);
    return x;
}

static int setup(void **state)
{
    (void)state;
    F.root_key = pki_key();
    F.int_key = pki_key();
    F.int2_key = pki_key();
    F.other_key = pki_key();
    F.forged_key = pki_key();
    F.exp_root_key = pki_key();
    F.exp_int_key = pki_key();
    F.leaf_key = pki_key();

    F.root = pki_ca("Gatehouse Test Root", F.root_key, NULL, NULL);
    F.inter = pki_ca("Gatehouse Test Intermediate", F.int_key, F.root, F.root_key);
    F.inter2 = pki_ca("Gatehouse Test Issuing CA 2", F.int2_key, F.inter, F.int_key);
    struct pki_spec leaf = {.cn = "app.example.com",
                            .san = LEAF_SANS,
                            .not_before = -30 * PKI_DAY,
                            .not_after = PKI_YEAR,
                            .aia = AIA_URL};
    F.leaf = pki_issue(&leaf, F.leaf_key, F.inter, F.int_key);
    F.leaf_deep = leaf_spec("deep.example.com", "DNS:deep.example.com", -30 * PKI_DAY, PKI_YEAR,
                            F.inter2, F.int2_key);
    F.other_leaf = leaf_spec("other.example.com", "DNS:other.example.com", -30 * PKI_DAY, PKI_YEAR,
                             F.inter, F.int_key);
    F.legacy = leaf_spec("legacy.example.com", NULL, -30 * PKI_DAY, PKI_YEAR, F.inter, F.int_key);
    F.other_root = pki_ca("Other Test Root", F.other_key, NULL, NULL);
    F.ss = leaf_spec("selfsigned.example.com", "DNS:selfsigned.example.com", -30 * PKI_DAY,
                     PKI_YEAR, NULL, NULL);
    F.expired_leaf = leaf_spec("expired.example.com", "DNS:expired.example.com", -400 * PKI_DAY,
                               -10 * PKI_DAY, F.inter, F.int_key);
    F.future_leaf = leaf_spec("future.example.com", "DNS:future.example.com", 2 * PKI_DAY, PKI_YEAR,
                              F.inter, F.int_key);
    F.soon_leaf = leaf_spec("soon.example.com", "DNS:soon.example.com", -300 * PKI_DAY,
                            10 * PKI_DAY, F.inter, F.int_key);
    F.forged_inter = pki_ca("Gatehouse Test Intermediate", F.forged_key, F.root, F.root_key);

    struct pki_spec nokid = {.cn = "nokid.example.com",
                             .san = "DNS:nokid.example.com",
                             .not_before = -30 * PKI_DAY,
                             .not_after = PKI_YEAR,
                             .no_key_ids = true};
    EVP_PKEY *k = pki_key();
    F.leaf_nokid = pki_issue(&nokid, k, F.inter, F.int_key);
    EVP_PKEY_free(k);
    struct pki_spec forged = {.cn = "Gatehouse Test Intermediate",
                              .not_before = -PKI_YEAR,
                              .not_after = PKI_YEAR,
                              .ca = true,
                              .no_key_ids = true};
    F.forged_nokid = pki_issue(&forged, F.forged_key, F.root, F.root_key);
    F.forged_root = pki_ca("Gatehouse Test Root", F.forged_key, NULL, NULL);
    struct pki_spec skid = {.cn = "Gatehouse Test Intermediate",
                            .not_before = -PKI_YEAR,
                            .not_after = PKI_YEAR,
                            .ca = true,
                            .skid = "01:02:03:04:05:06:07:08"};
    F.skid_inter = pki_issue(&skid, F.int_key, F.root, F.root_key);

    struct pki_spec exp_root = {.cn = "Expired Test Root",
                                .not_before = -10 * PKI_YEAR,
                                .not_after = -PKI_DAY,
                                .ca = true};
    F.exp_root = pki_issue(&exp_root, F.exp_root_key, NULL, NULL);
    struct pki_spec exp_inter = {.cn = "Expired Intermediate",
                                 .not_before = -PKI_YEAR,
                                 .not_after = 5 * PKI_YEAR,
                                 .ca = true};
    F.exp_inter = pki_issue(&exp_inter, F.exp_int_key, F.exp_root, F.exp_root_key);
    F.exp_leaf = leaf_spec("exp-root.example.com", "DNS:exp-root.example.com", -30 * PKI_DAY,
                           PKI_YEAR, F.exp_inter, F.exp_int_key);

    struct pki_spec expired_inter = {.cn = "Gatehouse Old Intermediate",
                                     .not_before = -5 * PKI_YEAR,
                                     .not_after = -PKI_DAY,
                                     .ca = true};
    k = pki_key();
    F.expired_inter = pki_issue(&expired_inter, k, F.root, F.root_key);
    F.leaf_of_expint = leaf_spec("old.example.com", "DNS:old.example.com", -30 * PKI_DAY, PKI_YEAR,
                                 F.expired_inter, k);
    EVP_PKEY_free(k);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509 *certs[] = {F.root,           F.inter,     F.inter2,       F.leaf,       F.leaf_deep,
                     F.other_leaf,     F.legacy,    F.other_root,   F.ss,         F.expired_leaf,
                     F.future_leaf,    F.soon_leaf, F.forged_inter, F.leaf_nokid, F.forged_nokid,
                     F.forged_root,    F.exp_root,  F.exp_inter,    F.exp_leaf,   F.expired_inter,
                     F.leaf_of_expint, F.skid_inter};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
        X509_free(certs[i]);
    EVP_PKEY *keys[] = {F.root_key,   F.int_key,      F.int2_key,    F.other_key,
                        F.forged_key, F.exp_root_key, F.exp_int_key, F.leaf_key};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        EVP_PKEY_free(keys[i]);
    return 0;
}

/* One analysis: the policy, the report and the sorted findings. */
struct run {
    struct trust_policy policy;
    struct chain_report r;
    struct finding_list f;
};

#define CERTS(...) ((X509 *[]){__VA_ARGS__, NULL})
#define NO_CERTS   ((X509 *[]){NULL})

/*
 * Uploads <anchors> (as "anchor0.pem", "anchor1.pem", ...) into a <mode> policy, analyses
 * <sent> with <name> at <now>, explains (with <ctx>, or a default one) and sorts the findings.
 */
static void run_chain_ctx(struct run *run, enum trust_mode mode, X509 **anchors, X509 **sent,
                          const char *name, time_t now, const struct explain_context *ctx)
{
    memset(run, 0, sizeof *run);
    trust_policy_init(&run->policy, mode);
    for (size_t i = 0; anchors[i]; i++) {
        char source[32];
        snprintf(source, sizeof source, "anchor%zu.pem", i);
        assert_int_equal(trust_policy_add_cert(&run->policy, anchors[i], source), 0);
    }
    STACK_OF(X509) *sk = sk_X509_new_null();
    assert_non_null(sk);
    for (size_t i = 0; sent[i]; i++) {
        assert_int_equal(X509_up_ref(sent[i]), 1);
        assert_true(sk_X509_push(sk, sent[i]) > 0);
    }
    assert_int_equal(chain_analyze(sk, &run->policy, name, now, &run->r), 0);
    /* the report must hold its own references */
    pki_stack_free(sk);

    struct explain_context def = {.name_source = "the URL", .cli = true, .now = now};
    assert_int_equal(explain_chain(&run->r, &run->policy, ctx ? ctx : &def, &run->f), 0);
    finding_list_sort(&run->f);
    for (size_t i = 0; i < run->f.n; i++) {
        assert_non_null(run->f.items[i].message);
        assert_non_null(run->f.items[i].remedy);
        assert_true(strlen(run->f.items[i].message) > 20);
        assert_true(strlen(run->f.items[i].remedy) > 20);
    }
    for (size_t i = 0; i < run->f.n_warnings; i++)
        assert_true(run->f.warnings[i].message && strlen(run->f.warnings[i].message) > 20);
}

static void run_chain(struct run *run, enum trust_mode mode, X509 **anchors, X509 **sent,
                      const char *name)
{
    run_chain_ctx(run, mode, anchors, sent, name, PKI_NOW, NULL);
}

static void run_clear(struct run *run)
{
    finding_list_clear(&run->f);
    chain_report_clear(&run->r);
    trust_policy_clear(&run->policy);
}

/* Appends ", <s>" (or <s> first) to buf, truncating at <size>. */
static void list_append(char *buf, size_t size, const char *s)
{
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", used ? ", " : "", s);
}

static void check_codes(const struct finding_list *f, const enum diag_code *want, size_t n,
                        int line)
{
    char got[512] = "";
    for (size_t i = 0; i < f->n; i++) {
        list_append(got, sizeof got, diag_code_name(f->items[i].code));
    }
    bool same = f->n == n;
    for (size_t i = 0; same && i < n; i++)
        same = f->items[i].code == want[i];
    if (!same) {
        char exp[512] = "";
        for (size_t i = 0; i < n; i++) {
            list_append(exp, sizeof exp, diag_code_name(want[i]));
        }
        fail_msg("line %d: findings [%s], want [%s]", line, got, exp);
    }
    enum diag_code code = finding_list_code(f);
    if (code != (n ? want[0] : DIAG_OK))
        fail_msg("line %d: finding_list_code %s, want %s", line, diag_code_name(code),
                 diag_code_name(n ? want[0] : DIAG_OK));
}

#define CODES(f, ...)                                                                              \
    check_codes(f, (enum diag_code[]){__VA_ARGS__},                                                \
                sizeof((enum diag_code[]){__VA_ARGS__}) / sizeof(enum diag_code), __LINE__)
#define NO_FINDINGS(f) check_codes(f, NULL, 0, __LINE__)

static void check_warnings(const struct finding_list *f, const enum diag_warning *want, size_t n,
                           int line)
{
    bool same = f->n_warnings == n;
    for (size_t i = 0; same && i < n; i++)
        same = f->warnings[i].code == want[i];
    if (!same) {
        char got[512] = "";
        for (size_t i = 0; i < f->n_warnings; i++) {
            list_append(got, sizeof got, diag_warning_name(f->warnings[i].code));
        }
        fail_msg("line %d: warnings [%s], want %zu warning(s) starting with %s", line, got, n,
                 n ? diag_warning_name(want[0]) : "none");
    }
}

#define WARNINGS(f, ...)                                                                           \
    check_warnings(f, (enum diag_warning[]){__VA_ARGS__},                                          \
                   sizeof((enum diag_warning[]){__VA_ARGS__}) / sizeof(enum diag_warning),         \
                   __LINE__)
#define NO_WARNINGS(f) check_warnings(f, NULL, 0, __LINE__)

/* The message (or remedy) of the first finding with <code>; fails when there is none. */
static const char *text_of(const struct finding_list *f, enum diag_code code, bool remedy)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->items[i].code == code)
            return remedy ? f->items[i].remedy : f->items[i].message;
    fail_msg("no %s finding", diag_code_name(code));
    return NULL;
}

static void check_contains(const char *text, const char *needle, int line)
{
    if (!text || !strstr(text, needle))
        fail_msg("line %d: \"%s\" does not contain \"%s\"", line, text ? text : "(null)", needle);
}

#define MESSAGE_HAS(f, code, needle) check_contains(text_of(f, code, false), needle, __LINE__)
#define REMEDY_HAS(f, code, needle)  check_contains(text_of(f, code, true), needle, __LINE__)

static void check_path(const struct chain_report *r, const size_t *want, size_t n, int line)
{
    bool same = r->path_len == n;
    for (size_t i = 0; same && i < n; i++)
        same = r->path[i] == want[i];
    if (!same)
        fail_msg("line %d: path of %zu certificates [%zu, %zu, %zu], want %zu [%zu, ...]", line,
                 r->path_len, r->path[0], r->path[1], r->path[2], n, want[0]);
    for (size_t i = 0; i < r->n_certs; i++) {
        bool on = false;
        for (size_t j = 0; j < n; j++)
            on = on || want[j] == i;
        if (r->certs[i].on_path != on)
            fail_msg("line %d: certs[%zu].on_path is %d", line, i, r->certs[i].on_path);
    }
}

#define PATH(r, ...)                                                                               \
    check_path(r, (size_t[]){__VA_ARGS__}, sizeof((size_t[]){__VA_ARGS__}) / sizeof(size_t),       \
               __LINE__)

static void test_full_chain_trusted(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), "app.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_int_equal(r->n_certs, 2);
    assert_int_equal(r->leaf, 0);
    assert_false(r->leaf_not_first);
    PATH(r, 0, 1);
    assert_false(r->path_out_of_order);
    assert_int_equal(r->unused_certs, 0);
    assert_true(r->has_anchor);
    assert_int_equal(r->anchor_index, 0);
    assert_string_equal(r->anchor.subject, ROOT_SUBJ);
    assert_true(cert_equal(r->anchor.x509, F.root));
    assert_false(r->anchor_expired);
    assert_false(r->anchor_not_yet_valid);
    assert_int_equal(r->via_anchor, -1);
    assert_int_equal(r->top_anchor, -1);
    assert_int_equal(r->allowlist_match, -1);
    assert_null(r->needed);
    assert_null(r->needed_aia);
    assert_string_equal(r->certs[0].info.subject, LEAF_SUBJ);
    assert_string_equal(r->certs[1].info.subject, INT_SUBJ);
    assert_int_equal(r->certs[0].info.kind, CERT_KIND_LEAF);
    assert_int_equal(r->certs[1].info.kind, CERT_KIND_INTERMEDIATE);
    assert_string_equal(r->certs[0].info.aia_ca_issuers, AIA_URL);
    for (size_t i = 0; i < 2; i++) {
        assert_false(r->certs[i].expired);
        assert_false(r->certs[i].not_yet_valid);
    }
    assert_true(r->name_checked);
    assert_string_equal(r->name, "app.example.com");
    assert_true(r->name_result.matched);
    assert_int_equal(r->name_result.basis, NAME_BASIS_DNS_SAN);
    assert_string_equal(r->name_result.matched_by, "DNS:app.example.com");
    assert_true(chain_report_ok(r));
    NO_FINDINGS(&run.f);
    NO_WARNINGS(&run.f);
    run_clear(&run);

    /* no name: nothing checked */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), NULL);
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    assert_false(run.r.name_checked);
    assert_null(run.r.name);
    assert_true(chain_report_ok(&run.r));
    NO_FINDINGS(&run.f);
    run_clear(&run);

    /* the wildcard SAN and the IP SAN cover their names too */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), "www.app.example.com");
    assert_true(run.r.name_result.matched);
    assert_string_equal(run.r.name_result.matched_by, "DNS:*.app.example.com");
    NO_FINDINGS(&run.f);
    run_clear(&run);
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), "10.0.0.5");
    assert_true(run.r.name_result.matched);
    assert_int_equal(run.r.name_result.basis, NAME_BASIS_IP_SAN);
    NO_FINDINGS(&run.f);
    run_clear(&run);
}

static void test_leaf_only_intermediate_missing(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf), "app.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_ISSUER_MISSING);
    assert_int_equal(r->n_certs, 1);
    assert_int_equal(r->leaf, 0);
    PATH(r, 0);
    assert_int_equal(r->top, 0);
    assert_string_equal(r->needed, INT_SUBJ);
    assert_string_equal(r->needed_aia, AIA_URL);
    assert_false(r->has_anchor);
    assert_int_equal(r->anchor_index, -1);
    assert_false(r->top_self_signed);
    assert_int_equal(r->top_anchor, -1);
    assert_true(r->name_result.matched);
    assert_false(chain_report_ok(r));
    CODES(&run.f, DIAG_CERT_INTERMEDIATE_MISSING);
    MESSAGE_HAS(&run.f, DIAG_CERT_INTERMEDIATE_MISSING, "'" LEAF_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_INTERMEDIATE_MISSING, "'" INT_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_INTERMEDIATE_MISSING, "1 certificate received");
    REMEDY_HAS(&run.f, DIAG_CERT_INTERMEDIATE_MISSING, "'" INT_SUBJ "'");
    REMEDY_HAS(&run.f, DIAG_CERT_INTERMEDIATE_MISSING, AIA_URL);
    NO_WARNINGS(&run.f);
    run_clear(&run);

    /* without an AIA extension there is no URL to copy */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.other_leaf), NULL);
    assert_int_equal(run.r.status, CHAIN_ISSUER_MISSING);
    assert_string_equal(run.r.needed, INT_SUBJ);
    assert_null(run.r.needed_aia);
    CODES(&run.f, DIAG_CERT_INTERMEDIATE_MISSING);
    run_clear(&run);
}

static void test_other_root_uploaded(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.other_root), CERTS(F.leaf, F.inter), "app.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_UNTRUSTED_TOP);
    PATH(r, 0, 1);
    assert_int_equal(r->top, 1);
    assert_string_equal(r->needed, ROOT_SUBJ);
    assert_null(r->needed_aia);
    assert_false(r->top_self_signed);
    assert_int_equal(r->top_anchor, -1);
    assert_false(r->has_anchor);
    assert_int_equal(r->anchor_index, -1);
    assert_false(chain_report_ok(r));
    CODES(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED);
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "'" INT_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "'" ROOT_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "'" OTHER_ROOT_SUBJ "' (anchor0.pem)");
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "further intermediate");
    REMEDY_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "'" ROOT_SUBJ "'");
    REMEDY_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "--trusted-root");
    NO_WARNINGS(&run.f);
    run_clear(&run);

    /* the root sent but not uploaded: the climb ends at the self-signed root */
    run_chain(&run, TRUST_ROOTS, CERTS(F.other_root), CERTS(F.leaf, F.inter, F.root), NULL);
    assert_int_equal(run.r.status, CHAIN_UNTRUSTED_TOP);
    PATH(&run.r, 0, 1, 2);
    assert_int_equal(run.r.top, 2);
    assert_true(run.r.top_self_signed);
    assert_string_equal(run.r.needed, ROOT_SUBJ);
    CODES(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED);
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "self-signed root certificate '" ROOT_SUBJ);
    run_clear(&run);
}

static void test_chain_with_root_sent(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter, F.root), "app.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_int_equal(r->n_certs, 3);
    PATH(r, 0, 1);
    assert_false(r->path_out_of_order);
    /* the root on top is harmless: not counted as extra */
    assert_int_equal(r->unused_certs, 0);
    assert_true(r->has_anchor);
    assert_int_equal(r->anchor_index, 0);
    assert_true(chain_report_ok(r));
    NO_FINDINGS(&run.f);
    NO_WARNINGS(&run.f);
    run_clear(&run);

    /* a certificate that belongs to no path is extra */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter, F.other_root), NULL);
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    assert_int_equal(run.r.unused_certs, 1);
    NO_FINDINGS(&run.f);
    WARNINGS(&run.f, WARN_CHAIN_EXTRA_CERTS);
    run_clear(&run);

    /* so is a duplicate */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter, F.inter), NULL);
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    PATH(&run.r, 0, 1);
    assert_int_equal(run.r.unused_certs, 1);
    WARNINGS(&run.f, WARN_CHAIN_EXTRA_CERTS);
    run_clear(&run);
}

static void test_out_of_order(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf_deep, F.inter, F.inter2),
              "deep.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_int_equal(r->leaf, 0);
    assert_false(r->leaf_not_first);
    PATH(r, 0, 2, 1);
    assert_true(r->path_out_of_order);
    assert_int_equal(r->unused_certs, 0);
    assert_int_equal(r->anchor_index, 0);
    assert_true(chain_report_ok(r));
    NO_FINDINGS(&run.f);
    WARNINGS(&run.f, WARN_CHAIN_OUT_OF_ORDER);
    run_clear(&run);

    /* the same chain in order: no warning */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf_deep, F.inter2, F.inter),
              "deep.example.com");
    PATH(&run.r, 0, 1, 2);
    assert_false(run.r.path_out_of_order);
    NO_FINDINGS(&run.f);
    NO_WARNINGS(&run.f);
    run_clear(&run);
}

static void test_leaf_not_first(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.inter, F.leaf), "app.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_int_equal(r->leaf, 1);
    assert_true(r->leaf_not_first);
    PATH(r, 1, 0);
    assert_true(r->path_out_of_order);
    /* the name is checked on the real leaf */
    assert_true(r->name_result.matched);
    assert_false(chain_report_ok(r));
    CODES(&run.f, DIAG_CERT_LEAF_NOT_FIRST);
    MESSAGE_HAS(&run.f, DIAG_CERT_LEAF_NOT_FIRST, "'" INT_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_LEAF_NOT_FIRST, "'" LEAF_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_LEAF_NOT_FIRST, "position 1");
    /* the order warning is not repeated on top of the finding */
    NO_WARNINGS(&run.f);
    run_clear(&run);

    /* wrong order and an untrusted root: both, LEAF_NOT_FIRST first */
    run_chain(&run, TRUST_ROOTS, CERTS(F.other_root), CERTS(F.inter, F.leaf), NULL);
    assert_int_equal(run.r.status, CHAIN_UNTRUSTED_TOP);
    assert_true(run.r.leaf_not_first);
    CODES(&run.f, DIAG_CERT_LEAF_NOT_FIRST, DIAG_CERT_ROOT_NOT_TRUSTED);
    run_clear(&run);
}

static void test_self_signed_leaf(void **state)
{
    (void)state;
    struct run run;
    /* uploaded as the trusted root: accepted as a pinned certificate, with a warning */
    run_chain(&run, TRUST_ROOTS, CERTS(F.ss), CERTS(F.ss), "selfsigned.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->certs[0].info.kind, CERT_KIND_SELF_SIGNED_LEAF);
    assert_true(r->certs[0].info.self_signed);
    assert_false(r->certs[0].info.ca);
    assert_int_equal(r->status, CHAIN_TRUSTED);
    PATH(r, 0);
    assert_true(r->has_anchor);
    assert_int_equal(r->anchor_index, 0);
    assert_int_equal(r->unused_certs, 0);
    assert_true(chain_report_ok(r));
    NO_FINDINGS(&run.f);
    WARNINGS(&run.f, WARN_TRUST_ANCHOR_NOT_CA);
    check_contains(run.f.warnings[0].message, "'" SS_SUBJ "' (anchor0.pem)", __LINE__);
    check_contains(run.f.warnings[0].message, "self-signed leaf", __LINE__);
    run_clear(&run);

    /* not uploaded */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.ss), "selfsigned.example.com");
    r = &run.r;
    assert_int_equal(r->status, CHAIN_UNTRUSTED_TOP);
    assert_true(r->top_self_signed);
    assert_int_equal(r->top, 0);
    assert_int_equal(r->top_anchor, -1);
    assert_string_equal(r->needed, SS_SUBJ);
    assert_false(r->has_anchor);
    PATH(r, 0);
    CODES(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED);
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "self-signed certificate '" SS_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, r->certs[0].info.sha256);
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "'" ROOT_SUBJ "' (anchor0.pem)");
    REMEDY_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "not a CA");
    NO_WARNINGS(&run.f);
    run_clear(&run);
}

static void test_intermediate_uploaded_as_root(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.inter), CERTS(F.leaf), "app.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_UNTRUSTED_TOP);
    assert_int_equal(r->top_anchor, 0);
    assert_int_equal(r->via_anchor, 0);
    assert_false(r->top_self_signed);
    assert_string_equal(r->needed, ROOT_SUBJ);
    assert_false(r->has_anchor);
    PATH(r, 0);
    assert_false(chain_report_ok(r));
    CODES(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED);
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "'" INT_SUBJ "' (anchor0.pem)");
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "not a root");
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "'" ROOT_SUBJ "'");
    REMEDY_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "'" ROOT_SUBJ "'");
    WARNINGS(&run.f, WARN_TRUST_ANCHOR_NOT_ROOT);
    run_clear(&run);

    /* the intermediate both uploaded and sent: still no root to close the chain */
    run_chain(&run, TRUST_ROOTS, CERTS(F.inter), CERTS(F.leaf, F.inter), "app.example.com");
    assert_int_equal(run.r.status, CHAIN_UNTRUSTED_TOP);
    assert_false(run.r.has_anchor);
    assert_string_equal(run.r.needed, ROOT_SUBJ);
    CODES(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED);
    MESSAGE_HAS(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED, "'" ROOT_SUBJ "'");
    run_clear(&run);

    /* with the root uploaded too, the path goes on through the uploaded intermediate */
    run_chain(&run, TRUST_ROOTS, CERTS(F.inter, F.root), CERTS(F.leaf), "app.example.com");
    r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_int_equal(r->via_anchor, 0);
    assert_int_equal(r->anchor_index, 1);
    assert_true(r->has_anchor);
    assert_string_equal(r->anchor.subject, ROOT_SUBJ);
    assert_int_equal(r->top_anchor, -1);
    PATH(r, 0);
    assert_true(chain_report_ok(r));
    NO_FINDINGS(&run.f);
    WARNINGS(&run.f, WARN_TRUST_ANCHOR_NOT_ROOT);
    run_clear(&run);
}

static void test_allowlist(void **state)
{
    (void)state;
    struct run run;
    /* the leaf alone, equal to the uploaded certificate: no chain is built */
    run_chain(&run, TRUST_ALLOWLIST, CERTS(F.leaf), CERTS(F.leaf), "app.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_int_equal(r->allowlist_match, 0);
    PATH(r, 0);
    assert_false(r->has_anchor);
    assert_int_equal(r->anchor_index, -1);
    assert_null(r->needed);
    assert_true(chain_report_ok(r));
    NO_FINDINGS(&run.f);
    NO_WARNINGS(&run.f);
    run_clear(&run);

    /* with its chain; the second uploaded certificate matches */
    run_chain(&run, TRUST_ALLOWLIST, CERTS(F.other_leaf, F.leaf), CERTS(F.leaf, F.inter),
              "app.example.com");
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    assert_int_equal(run.r.allowlist_match, 1);
    PATH(&run.r, 0);
    NO_FINDINGS(&run.f);
    run_clear(&run);

    /* a different leaf */
    run_chain(&run, TRUST_ALLOWLIST, CERTS(F.leaf), CERTS(F.other_leaf, F.inter),
              "other.example.com");
    r = &run.r;
    assert_int_equal(r->status, CHAIN_NOT_ALLOWLISTED);
    assert_int_equal(r->allowlist_match, -1);
    PATH(r, 0);
    assert_false(chain_report_ok(r));
    CODES(&run.f, DIAG_CERT_NOT_ALLOWLISTED);
    MESSAGE_HAS(&run.f, DIAG_CERT_NOT_ALLOWLISTED, "'" OTHER_LEAF_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_NOT_ALLOWLISTED, r->certs[0].info.sha256);
    MESSAGE_HAS(&run.f, DIAG_CERT_NOT_ALLOWLISTED, "'" LEAF_SUBJ "' (anchor0.pem, leaf)");
    REMEDY_HAS(&run.f, DIAG_CERT_NOT_ALLOWLISTED, "--auth-cert");
    run_clear(&run);

    /* uploading the issuer does not allow-list its leaves */
    run_chain(&run, TRUST_ALLOWLIST, CERTS(F.inter), CERTS(F.leaf, F.inter), NULL);
    assert_int_equal(run.r.status, CHAIN_NOT_ALLOWLISTED);
    CODES(&run.f, DIAG_CERT_NOT_ALLOWLISTED);
    run_clear(&run);

    /* allow-listed but expired: the validity still counts */
    run_chain(&run, TRUST_ALLOWLIST, CERTS(F.expired_leaf), CERTS(F.expired_leaf),
              "expired.example.com");
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    assert_true(run.r.certs[0].expired);
    CODES(&run.f, DIAG_CERT_EXPIRED);
    run_clear(&run);
}

static void test_expired_leaf(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.expired_leaf, F.inter),
              "expired.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_true(r->certs[0].expired);
    assert_false(r->certs[0].not_yet_valid);
    assert_false(r->certs[1].expired);
    assert_false(r->certs[1].not_yet_valid);
    assert_false(r->anchor_expired);
    assert_true(r->name_result.matched);
    assert_false(chain_report_ok(r));
    CODES(&run.f, DIAG_CERT_EXPIRED);
    MESSAGE_HAS(&run.f, DIAG_CERT_EXPIRED, "server certificate 'CN=expired.example.com");
    MESSAGE_HAS(&run.f, DIAG_CERT_EXPIRED, "expired on 2025-12-22");
    MESSAGE_HAS(&run.f, DIAG_CERT_EXPIRED, "(10 days ago)");
    run_clear(&run);

    /* an expired intermediate on the path */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf_of_expint, F.expired_inter),
              "old.example.com");
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    assert_false(run.r.certs[0].expired);
    assert_true(run.r.certs[1].expired);
    CODES(&run.f, DIAG_CERT_EXPIRED);
    MESSAGE_HAS(&run.f, DIAG_CERT_EXPIRED, "intermediate certificate 'CN=Gatehouse Old");
    run_clear(&run);

    /* an expired certificate that is not on the path is not a finding */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter, F.expired_inter), NULL);
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    assert_false(run.r.certs[2].on_path);
    assert_false(run.r.certs[2].expired);
    NO_FINDINGS(&run.f);
    run_clear(&run);
}

static void test_validity_boundaries(void **state)
{
    (void)state;
    struct run run;
    time_t not_after = PKI_NOW + PKI_YEAR, not_before = PKI_NOW - 30 * PKI_DAY;
    /* valid through its notAfter second, expired one second later (RFC 5280) */
    run_chain_ctx(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), NULL, not_after, NULL);
    assert_false(run.r.certs[0].expired);
    NO_FINDINGS(&run.f);
    run_clear(&run);
    run_chain_ctx(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), NULL, not_after + 1,
                  NULL);
    assert_true(run.r.certs[0].expired);
    CODES(&run.f, DIAG_CERT_EXPIRED);
    run_clear(&run);
    /* valid from its notBefore second */
    run_chain_ctx(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), NULL, not_before, NULL);
    assert_false(run.r.certs[0].not_yet_valid);
    NO_FINDINGS(&run.f);
    run_clear(&run);
    run_chain_ctx(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), NULL, not_before - 1,
                  NULL);
    assert_true(run.r.certs[0].not_yet_valid);
    assert_false(run.r.certs[0].expired);
    CODES(&run.f, DIAG_CERT_NOT_YET_VALID);
    run_clear(&run);
}

static void test_not_yet_valid(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.future_leaf, F.inter),
              "future.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_true(r->certs[0].not_yet_valid);
    assert_false(r->certs[0].expired);
    assert_false(chain_report_ok(r));
    CODES(&run.f, DIAG_CERT_NOT_YET_VALID);
    MESSAGE_HAS(&run.f, DIAG_CERT_NOT_YET_VALID, "'CN=future.example.com");
    MESSAGE_HAS(&run.f, DIAG_CERT_NOT_YET_VALID, "not valid before 2026-01-03");
    run_clear(&run);
}

static void test_expired_and_wrong_name(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.expired_leaf, F.inter), "app.example.com");
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    assert_true(run.r.certs[0].expired);
    assert_false(run.r.name_result.matched);
    CODES(&run.f, DIAG_CERT_EXPIRED, DIAG_CERT_NAME_MISMATCH);
    run_clear(&run);

    /* three problems, in precedence order whatever order they were found in */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.expired_leaf), "app.example.com");
    assert_int_equal(run.r.status, CHAIN_ISSUER_MISSING);
    CODES(&run.f, DIAG_CERT_INTERMEDIATE_MISSING, DIAG_CERT_EXPIRED, DIAG_CERT_NAME_MISMATCH);
    run_clear(&run);
}

static void test_expired_uploaded_root(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.exp_root), CERTS(F.exp_leaf, F.exp_inter),
              "exp-root.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_true(r->has_anchor);
    assert_string_equal(r->anchor.subject, EXP_ROOT_SUBJ);
    assert_true(r->anchor_expired);
    assert_false(r->anchor_not_yet_valid);
    assert_false(r->certs[0].expired);
    assert_false(r->certs[1].expired);
    assert_false(chain_report_ok(r));
    CODES(&run.f, DIAG_CERT_EXPIRED);
    MESSAGE_HAS(&run.f, DIAG_CERT_EXPIRED, "trusted root '" EXP_ROOT_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_EXPIRED, "2025-12-31");
    run_clear(&run);
}

static void test_name_mismatch_lists_names(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), "wrong.example.org");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_TRUSTED);
    assert_true(r->name_checked);
    assert_false(r->name_result.matched);
    assert_int_equal(r->name_result.basis, NAME_BASIS_DNS_SAN);
    assert_null(r->name_result.matched_by);
    assert_false(chain_report_ok(r));
    CODES(&run.f, DIAG_CERT_NAME_MISMATCH);
    MESSAGE_HAS(&run.f, DIAG_CERT_NAME_MISMATCH, "'" LEAF_SUBJ "'");
    MESSAGE_HAS(&run.f, DIAG_CERT_NAME_MISMATCH, "'wrong.example.org' (from the URL)");
    MESSAGE_HAS(&run.f, DIAG_CERT_NAME_MISMATCH,
                "It covers: app.example.com, *.app.example.com, IP 10.0.0.5.");
    REMEDY_HAS(&run.f, DIAG_CERT_NAME_MISMATCH, "such as 'app.example.com'");
    REMEDY_HAS(&run.f, DIAG_CERT_NAME_MISMATCH, "--host");
    run_clear(&run);

    /* by IP */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), "10.0.0.6");
    assert_false(run.r.name_result.matched);
    assert_int_equal(run.r.name_result.basis, NAME_BASIS_IP_SAN);
    CODES(&run.f, DIAG_CERT_NAME_MISMATCH);
    MESSAGE_HAS(&run.f, DIAG_CERT_NAME_MISMATCH, "iPAddress SAN");
    run_clear(&run);

    /* CN-only certificate */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.legacy, F.inter), "app.example.com");
    assert_false(run.r.name_result.matched);
    assert_int_equal(run.r.name_result.basis, NAME_BASIS_CN);
    CODES(&run.f, DIAG_CERT_NAME_MISMATCH);
    MESSAGE_HAS(&run.f, DIAG_CERT_NAME_MISMATCH,
                "It covers: legacy.example.com (CN; the certificate has no DNS SAN).");
    REMEDY_HAS(&run.f, DIAG_CERT_NAME_MISMATCH, "'legacy.example.com'");
    run_clear(&run);
}

static void test_empty_chain(void **state)
{
    (void)state;
    struct trust_policy policy;
    trust_policy_init(&policy, TRUST_ROOTS);
    assert_int_equal(trust_policy_add_cert(&policy, F.root, "root.pem"), 0);
    struct explain_context ctx = {.name_source = "the URL", .now = PKI_NOW};

    for (int with_stack = 0; with_stack < 2; with_stack++) {
        STACK_OF(X509) *sk = with_stack ? sk_X509_new_null() : NULL;
        struct chain_report r;
        memset(&r, 0x5a, sizeof r);
        assert_int_equal(chain_analyze(sk, &policy, "app.example.com", PKI_NOW, &r), 0);
        assert_int_equal(r.status, CHAIN_EMPTY);
        assert_int_equal(r.n_certs, 0);
        assert_null(r.certs);
        assert_int_equal(r.path_len, 0);
        assert_false(r.has_anchor);
        assert_false(chain_report_ok(&r));
        struct finding_list f = {0};
        assert_int_equal(explain_chain(&r, &policy, &ctx, &f), 0);
        finding_list_sort(&f);
        CODES(&f, DIAG_TLS_HANDSHAKE_FAILED);
        finding_list_clear(&f);
        chain_report_clear(&r);
        sk_X509_free(sk);
    }
    trust_policy_clear(&policy);
}

static void test_forged_issuer(void **state)
{
    (void)state;
    struct run run;
    /* same name as the real intermediate, another key (the key identifiers differ) */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.forged_inter), "app.example.com");
    const struct chain_report *r = &run.r;
    assert_string_equal(r->certs[1].info.subject, INT_SUBJ);
    assert_int_equal(r->status, CHAIN_ISSUER_MISSING);
    PATH(r, 0);
    assert_string_equal(r->needed, INT_SUBJ);
    assert_int_equal(r->unused_certs, 1);
    CODES(&run.f, DIAG_CERT_INTERMEDIATE_MISSING);
    run_clear(&run);

    /* without key identifiers, only the signature tells them apart */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf_nokid, F.forged_nokid), NULL);
    assert_null(X509_get0_authority_key_id(F.leaf_nokid));
    assert_null(X509_get0_subject_key_id(F.forged_nokid));
    assert_int_equal(run.r.status, CHAIN_ISSUER_MISSING);
    PATH(&run.r, 0);
    assert_string_equal(run.r.needed, INT_SUBJ);
    CODES(&run.f, DIAG_CERT_INTERMEDIATE_MISSING);
    run_clear(&run);
    /* control: the real intermediate is accepted for that leaf */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf_nokid, F.inter), NULL);
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    PATH(&run.r, 0, 1);
    NO_FINDINGS(&run.f);
    run_clear(&run);

    /* the right name and key, but key identifiers that disagree (cert_issued_by contract) */
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.skid_inter), NULL);
    assert_true(X509_verify(F.leaf, X509_get0_pubkey(F.skid_inter)) == 1);
    assert_int_equal(run.r.status, CHAIN_ISSUER_MISSING);
    PATH(&run.r, 0);
    CODES(&run.f, DIAG_CERT_INTERMEDIATE_MISSING);
    run_clear(&run);

    /* a forged root uploaded: the right name does not make it the issuer */
    run_chain(&run, TRUST_ROOTS, CERTS(F.forged_root), CERTS(F.leaf, F.inter), NULL);
    assert_int_equal(run.r.status, CHAIN_UNTRUSTED_TOP);
    assert_false(run.r.has_anchor);
    assert_string_equal(run.r.needed, ROOT_SUBJ);
    CODES(&run.f, DIAG_CERT_ROOT_NOT_TRUSTED);
    run_clear(&run);
}

static void test_well_known_private_chain(void **state)
{
    (void)state;
    struct run run;
    run_chain(&run, TRUST_WELL_KNOWN, NO_CERTS, CERTS(F.leaf, F.inter), "app.example.com");
    const struct chain_report *r = &run.r;
    assert_int_equal(r->status, CHAIN_UNTRUSTED_TOP);
    PATH(r, 0, 1);
    assert_int_equal(r->top, 1);
    assert_string_equal(r->needed, ROOT_SUBJ);
    assert_false(r->has_anchor);
    CODES(&run.f, DIAG_CERT_NOT_WELL_KNOWN);
    MESSAGE_HAS(&run.f, DIAG_CERT_NOT_WELL_KNOWN, "well-known CA store");
    MESSAGE_HAS(&run.f, DIAG_CERT_NOT_WELL_KNOWN, "'" ROOT_SUBJ "'");
    REMEDY_HAS(&run.f, DIAG_CERT_NOT_WELL_KNOWN, "trusted-roots");
    run_clear(&run);

    run_chain(&run, TRUST_WELL_KNOWN, NO_CERTS, CERTS(F.ss), NULL);
    assert_int_equal(run.r.status, CHAIN_UNTRUSTED_TOP);
    assert_true(run.r.top_self_signed);
    CODES(&run.f, DIAG_CERT_NOT_WELL_KNOWN);
    run_clear(&run);

    /* the leaf alone is still a missing intermediate */
    run_chain(&run, TRUST_WELL_KNOWN, NO_CERTS, CERTS(F.leaf), NULL);
    assert_int_equal(run.r.status, CHAIN_ISSUER_MISSING);
    assert_string_equal(run.r.needed, INT_SUBJ);
    CODES(&run.f, DIAG_CERT_INTERMEDIATE_MISSING);
    REMEDY_HAS(&run.f, DIAG_CERT_INTERMEDIATE_MISSING, "private CA");
    run_clear(&run);
}

/* A certificate of the system store, sent as is, is closed by the system store (anchor -1). */
static void test_well_known_system_root(void **state)
{
    (void)state;
    STACK_OF(X509) *bundle = NULL;
    char err[256];
    if (cert_load_file("/etc/ssl/certs/ca-certificates.crt", NULL, &bundle, err, sizeof err) != 0)
        skip();
    X509 *sys = sk_X509_value(bundle, 0);
    struct cert_info info;
    assert_int_equal(cert_info_init(&info, sys), 0);
    time_t now = info.not_before + PKI_DAY;
    assert_true(now < info.not_after);

    struct run run;
    run_chain_ctx(&run, TRUST_WELL_KNOWN, NO_CERTS, CERTS(sys), NULL, now, NULL);
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    assert_true(run.r.has_anchor);
    assert_int_equal(run.r.anchor_index, -1);
    assert_true(cert_equal(run.r.anchor.x509, sys));
    PATH(&run.r, 0);
    assert_true(chain_report_ok(&run.r));
    NO_FINDINGS(&run.f);
    run_clear(&run);
    cert_info_clear(&info);
    sk_X509_pop_free(bundle, X509_free);
}

static void test_expiry_warning(void **state)
{
    (void)state;
    struct run run;
    struct explain_context ctx = {
            .name_source = "--host", .now = PKI_NOW, .expiry_warning_days = 30};
    run_chain_ctx(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.soon_leaf, F.inter), "soon.example.com",
                  PKI_NOW, &ctx);
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    assert_true(chain_report_ok(&run.r));
    NO_FINDINGS(&run.f);
    WARNINGS(&run.f, WARN_CERT_EXPIRES_SOON);
    check_contains(run.f.warnings[0].message, "'CN=soon.example.com", __LINE__);
    check_contains(run.f.warnings[0].message, "in 10 days", __LINE__);
    run_clear(&run);

    /* a year ahead is not soon */
    run_chain_ctx(&run, TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf, F.inter), NULL, PKI_NOW, &ctx);
    NO_WARNINGS(&run.f);
    run_clear(&run);
}

static void test_long_chain_is_cut(void **state)
{
    (void)state;
    struct run run;
    X509 *sent[CHAIN_MAX_CERTS + 4] = {F.leaf, F.inter};
    for (size_t i = 2; i < CHAIN_MAX_CERTS + 3; i++)
        sent[i] = F.other_root;
    sent[CHAIN_MAX_CERTS + 3] = NULL;
    run_chain(&run, TRUST_ROOTS, CERTS(F.root), sent, NULL);
    assert_int_equal(run.r.n_certs, CHAIN_MAX_CERTS);
    assert_int_equal(run.r.status, CHAIN_TRUSTED);
    PATH(&run.r, 0, 1);
    assert_int_equal(run.r.unused_certs, CHAIN_MAX_CERTS - 2);
    NO_FINDINGS(&run.f);
    WARNINGS(&run.f, WARN_CHAIN_EXTRA_CERTS);
    run_clear(&run);
}

/* True when <text> names a command-line option ("--host"; a spaced " -- " dash is not one). */
static bool mentions_option(const char *text)
{
    for (const char *p = strstr(text, "--"); p; p = strstr(p + 2, "--"))
        if (p[2] >= 'a' && p[2] <= 'z')
            return true;
    return false;
}

/* Without ctx->cli, fixes are phrased with config keys only: no command-line option appears. */
static void test_config_wording(void **state)
{
    (void)state;
    struct explain_context ctx = {.name_source = "the probe's host", .now = PKI_NOW};
    struct {
        enum trust_mode mode;
        X509 **anchors, **sent;
        const char *name;
    } cases[] = {
            {TRUST_ROOTS, CERTS(F.root), CERTS(F.leaf), "wrong.example.org"},
            {TRUST_ROOTS, CERTS(F.other_root), CERTS(F.inter, F.leaf), "app.example.com"},
            {TRUST_ROOTS, CERTS(F.root), CERTS(F.ss), "10.9.9.9"},
            {TRUST_ROOTS, CERTS(F.inter), CERTS(F.expired_leaf), NULL},
            {TRUST_ALLOWLIST, CERTS(F.leaf), CERTS(F.future_leaf), "app.example.com"},
            {TRUST_WELL_KNOWN, NO_CERTS, CERTS(F.leaf, F.inter), NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run run;
        run_chain_ctx(&run, cases[i].mode, cases[i].anchors, cases[i].sent, cases[i].name, PKI_NOW,
                      &ctx);
        assert_true(run.f.n > 0);
        for (size_t j = 0; j < run.f.n; j++) {
            if (mentions_option(run.f.items[j].message) || mentions_option(run.f.items[j].remedy))
                fail_msg("case %zu: %s mentions an option without cli: %s / %s", i,
                         diag_code_name(run.f.items[j].code), run.f.items[j].message,
                         run.f.items[j].remedy);
        }
        run_clear(&run);
    }
}

static struct cert_info info_of(X509 *x)
{
    struct cert_info info;
    assert_int_equal(cert_info_init(&info, x), 0);
    return info;
}

static void check_names(X509 *x, const char *want, int line)
{
    struct cert_info info = info_of(x);
    char *names = explain_cert_names(&info);
    if (!names || strcmp(names, want) != 0)
        fail_msg("line %d: explain_cert_names '%s', want '%s'", line, names ? names : "(null)",
                 want);
    free(names);
    cert_info_clear(&info);
}

static void test_explain_cert_names(void **state)
{
    (void)state;
    check_names(F.leaf, "app.example.com, *.app.example.com, IP 10.0.0.5", __LINE__);
    check_names(F.legacy, "legacy.example.com (CN; the certificate has no DNS SAN)", __LINE__);

    EVP_PKEY *k = pki_key();
    X509 *ip_only = pki_leaf("ipsan.example.com", "IP:127.0.0.1,IP:::1", k, F.inter, F.int_key);
    check_names(ip_only,
                "IP 127.0.0.1, IP ::1, ipsan.example.com (CN; the certificate has no DNS SAN)",
                __LINE__);
    X509 *nothing = pki_leaf(NULL, NULL, k, F.inter, F.int_key);
    check_names(nothing, "no DNS name and no IP address", __LINE__);
    X509 *uri_only =
            pki_leaf(NULL, "URI:https://x.example.com/,email:a@example.com", k, F.inter, F.int_key);
    check_names(uri_only, "no DNS name and no IP address", __LINE__);
    X509 *dns_and_cn = pki_leaf("cn.example.com", "DNS:san.example.com", k, F.inter, F.int_key);
    check_names(dns_and_cn, "san.example.com", __LINE__);
    X509_free(ip_only);
    X509_free(nothing);
    X509_free(uri_only);
    X509_free(dns_and_cn);
    EVP_PKEY_free(k);
}

static void test_explain_anchor_list(void **state)
{
    (void)state;
    struct trust_policy policy;
    trust_policy_init(&policy, TRUST_ROOTS);
    char *list = explain_anchor_list(&policy);
    assert_string_equal(list, "none");
    free(list);

    assert_int_equal(trust_policy_add_cert(&policy, F.root, "certs/root.pem"), 0);
    list = explain_anchor_list(&policy);
    assert_string_equal(list, "'" ROOT_SUBJ "' (certs/root.pem)");
    free(list);

    assert_int_equal(trust_policy_add_cert(&policy, F.inter, "inter.cer"), 0);
    assert_int_equal(trust_policy_add_cert(&policy, F.ss, "private-root"), 0);
    assert_int_equal(trust_policy_add_cert(&policy, F.leaf, "leaf.pem"), 0);
    list = explain_anchor_list(&policy);
    assert_string_equal(list,
                        "'" ROOT_SUBJ "' (certs/root.pem), '" INT_SUBJ
                        "' (inter.cer, intermediate), '" SS_SUBJ
                        "' (private-root, self-signed leaf), '" LEAF_SUBJ "' (leaf.pem, leaf)");
    free(list);
    trust_policy_clear(&policy);
}

static void test_explain_date(void **state)
{
    (void)state;
    char buf[64];
    /* header: "2026-11-23" (UTC); the date itself must come first in any case */
    const char *s = explain_date(PKI_NOW, buf, sizeof buf);
    assert_ptr_equal(s, buf);
    assert_int_equal(strncmp(buf, "2026-01-01", 10), 0);
    explain_date(PKI_NOW - 1, buf, sizeof buf);
    assert_int_equal(strncmp(buf, "2025-12-31", 10), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_full_chain_trusted),
            cmocka_unit_test(test_leaf_only_intermediate_missing),
            cmocka_unit_test(test_other_root_uploaded),
            cmocka_unit_test(test_chain_with_root_sent),
            cmocka_unit_test(test_out_of_order),
            cmocka_unit_test(test_leaf_not_first),
            cmocka_unit_test(test_self_signed_leaf),
            cmocka_unit_test(test_intermediate_uploaded_as_root),
            cmocka_unit_test(test_allowlist),
            cmocka_unit_test(test_expired_leaf),
            cmocka_unit_test(test_validity_boundaries),
            cmocka_unit_test(test_not_yet_valid),
            cmocka_unit_test(test_expired_and_wrong_name),
            cmocka_unit_test(test_expired_uploaded_root),
            cmocka_unit_test(test_name_mismatch_lists_names),
            cmocka_unit_test(test_empty_chain),
            cmocka_unit_test(test_forged_issuer),
            cmocka_unit_test(test_well_known_private_chain),
            cmocka_unit_test(test_well_known_system_root),
            cmocka_unit_test(test_expiry_warning),
            cmocka_unit_test(test_long_chain_is_cut),
            cmocka_unit_test(test_config_wording),
            cmocka_unit_test(test_explain_cert_names),
            cmocka_unit_test(test_explain_anchor_list),
            cmocka_unit_test(test_explain_date),
    };
    return cmocka_run_group_tests_name("chain", tests, setup, teardown);
}
