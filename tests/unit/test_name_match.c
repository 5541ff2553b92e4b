/*
 * Unit tests for src/tls/name_match.c: RFC 6125 name checks. name_dns_pattern_matches is tested
 * pattern by pattern; name_match_cert on real certificates generated here (test_pki.h), so that
 * the SAN/CN extraction of cert_info is part of what is checked: the result's matched flag,
 * basis and the exact SAN or CN text that matched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "test_pki.h"
#include "tls/cert_info.h"
#include "tls/name_match.h"

static EVP_PKEY *ca_key;
static X509 *ca;

static int setup(void **state)
{
    (void)state;
    ca_key = pki_key();
    ca = pki_ca("Name Test CA", ca_key, NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return 0;
}

/* cert_info of a fresh leaf with subject CN <cn> (NULL: none) and SAN <san> (NULL: none). */
static void make_cert(struct cert_info *info, const char *cn, const char *san)
{
    EVP_PKEY *key = pki_key();
    X509 *x = pki_leaf(cn, san, key, ca, ca_key);
    assert_int_equal(cert_info_init(info, x), 0);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* name_match_cert(<info>, <name>) must give <matched>, <basis> and <by> (NULL: no match text). */
static void check_match(const struct cert_info *info, const char *name, bool matched,
                        enum name_match_basis basis, const char *by, int line)
{
    struct name_match_result r;
    memset(&r, 0x5a, sizeof r);
    name_match_cert(info, name, &r);
    if (r.matched != matched || r.basis != basis)
        fail_msg("line %d: '%s': matched=%d basis=%d, want matched=%d basis=%d", line, name,
                 r.matched, r.basis, matched, basis);
    if (!by) {
        if (r.matched_by)
            fail_msg("line %d: '%s': matched_by '%s', want none", line, name, r.matched_by);
        return;
    }
    if (!r.matched_by || strcmp(r.matched_by, by) != 0)
        fail_msg("line %d: '%s': matched_by '%s', want '%s'", line, name,
                 r.matched_by ? r.matched_by : "(null)", by);
}

#define MATCH(info, name, basis, by) check_match(info, name, true, basis, by, __LINE__)
#define NO_MATCH(info, name, basis)  check_match(info, name, false, basis, NULL, __LINE__)

#define PAT_YES(p, n) check_pattern(p, n, true, __LINE__)
#define PAT_NO(p, n)  check_pattern(p, n, false, __LINE__)

static void check_pattern(const char *pattern, const char *name, bool want, int line)
{
    bool got = name_dns_pattern_matches(pattern, name);
    if (got != want)
        fail_msg("line %d: pattern '%s' vs '%s': %s, want %s", line, pattern, name,
                 got ? "match" : "no match", want ? "match" : "no match");
}

static void test_pattern_exact(void **state)
{
    (void)state;
    PAT_YES("example.com", "example.com");
    PAT_YES("app.example.com", "app.example.com");
    PAT_NO("app.example.com", "example.com");
    PAT_NO("example.com", "app.example.com");
    PAT_NO("example.com", "example.co");
    PAT_NO("example.co", "example.com");
    PAT_NO("example.com", "wwwexample.com");
    PAT_NO("", "example.com");
    PAT_NO("example.com", "");
    PAT_NO("", "");
}

static void test_pattern_case_and_trailing_dot(void **state)
{
    (void)state;
    PAT_YES("Example.COM", "example.com");
    PAT_YES("example.com", "EXAMPLE.Com");
    PAT_YES("example.com.", "example.com");
    PAT_YES("example.com", "example.com.");
    PAT_YES("example.com.", "example.com.");
    PAT_NO("example.com", "example.com..");
    PAT_NO(".", ".");
    PAT_YES("*.Example.COM", "App.example.com");
    PAT_YES("*.example.com", "a.example.com.");
    PAT_YES("*.example.com.", "a.example.com");
}

static void test_pattern_wildcard(void **state)
{
    (void)state;
    PAT_YES("*.example.com", "a.example.com");
    PAT_YES("*.example.com", "www.example.com");
    PAT_YES("*.example.com", "a-b_c.example.com");
    PAT_NO("*.example.com", "a.b.example.com");
    PAT_NO("*.example.com", "example.com");
    PAT_NO("*.example.com", ".example.com");
    PAT_NO("*.example.com", "a.example.org");
    PAT_NO("*.example.com", "aexample.com");
    PAT_YES("*.a.b", "x.a.b");
    /* the wildcard does not match an IDN A-label (RFC 6125 6.4.3) */
    PAT_NO("*.example.com", "xn--bcher-kva.example.com");
    PAT_YES("xn--bcher-kva.example.com", "xn--bcher-kva.example.com");
}

static void test_pattern_wildcard_refused(void **state)
{
    (void)state;
    /* too broad: a wildcard needs two labels after it */
    PAT_NO("*.com", "example.com");
    PAT_NO("*.com.", "example.com");
    PAT_NO("*.", "a.");
    PAT_NO("*", "example");
    PAT_NO("*", "example.com");
    /* partial-label wildcards */
    PAT_NO("f*.example.com", "foo.example.com");
    PAT_NO("*o.example.com", "foo.example.com");
    PAT_NO("f*o.example.com", "foo.example.com");
    PAT_NO("**.example.com", "foo.example.com");
    /* not the left-most label, or more than one */
    PAT_NO("a.*.example.com", "a.b.example.com");
    PAT_NO("*.*.example.com", "a.b.example.com");
    PAT_NO("*.example.*", "a.example.com");
    PAT_NO("app.example.*", "app.example.com");
    /* a literal '*' in the name does not make an exact pattern a wildcard */
    PAT_NO("f*.example.com", "f*.example.com");
}

static void test_is_ip_literal(void **state)
{
    (void)state;
    assert_true(name_is_ip_literal("127.0.0.1"));
    assert_true(name_is_ip_literal("10.0.0.5"));
    assert_true(name_is_ip_literal("::1"));
    assert_true(name_is_ip_literal("2001:db8::1"));
    assert_true(name_is_ip_literal("::ffff:10.0.0.1"));
    assert_false(name_is_ip_literal("[::1]"));
    assert_false(name_is_ip_literal("1.2.3"));
    assert_false(name_is_ip_literal("256.1.1.1"));
    assert_false(name_is_ip_literal("example.com"));
    assert_false(name_is_ip_literal(""));
}

static void test_dns_san_only(void **state)
{
    (void)state;
    struct cert_info c;
    make_cert(&c, "cn.example.com", "DNS:app.example.com,DNS:api.example.com");
    assert_int_equal(c.n_sans, 2);
    assert_string_equal(c.sans[0], "DNS:app.example.com");
    assert_string_equal(c.sans[1], "DNS:api.example.com");
    assert_string_equal(c.common_name, "cn.example.com");
    MATCH(&c, "app.example.com", NAME_BASIS_DNS_SAN, "DNS:app.example.com");
    MATCH(&c, "api.example.com", NAME_BASIS_DNS_SAN, "DNS:api.example.com");
    /* the CN is ignored when a DNS SAN exists */
    NO_MATCH(&c, "cn.example.com", NAME_BASIS_DNS_SAN);
    NO_MATCH(&c, "other.example.com", NAME_BASIS_DNS_SAN);
    cert_info_clear(&c);
}

static void test_cn_when_no_dns_san(void **state)
{
    (void)state;
    struct cert_info c;
    make_cert(&c, "legacy.example.com", NULL);
    assert_int_equal(c.n_sans, 0);
    MATCH(&c, "legacy.example.com", NAME_BASIS_CN, c.common_name);
    MATCH(&c, "LEGACY.example.com.", NAME_BASIS_CN, "legacy.example.com");
    NO_MATCH(&c, "other.example.com", NAME_BASIS_CN);
    cert_info_clear(&c);

    /* an IP SAN is not a DNS SAN: the CN still counts for a DNS name */
    make_cert(&c, "ipsan.example.com", "IP:127.0.0.1");
    MATCH(&c, "ipsan.example.com", NAME_BASIS_CN, "ipsan.example.com");
    cert_info_clear(&c);

    /* a URI or email SAN neither */
    make_cert(&c, "uri.example.com", "URI:https://uri.example.com/,email:a@example.com");
    assert_int_equal(c.n_sans, 2);
    assert_string_equal(c.sans[0], "URI:https://uri.example.com/");
    assert_string_equal(c.sans[1], "email:a@example.com");
    MATCH(&c, "uri.example.com", NAME_BASIS_CN, "uri.example.com");
    cert_info_clear(&c);

    /* no CN, no SAN: nothing matches */
    make_cert(&c, NULL, NULL);
    assert_null(c.common_name);
    NO_MATCH(&c, "example.com", NAME_BASIS_CN);
    cert_info_clear(&c);
}

static void test_cn_wildcard(void **state)
{
    (void)state;
    struct cert_info c;
    make_cert(&c, "*.legacy.example.com", NULL);
    MATCH(&c, "a.legacy.example.com", NAME_BASIS_CN, "*.legacy.example.com");
    NO_MATCH(&c, "a.b.legacy.example.com", NAME_BASIS_CN);
    NO_MATCH(&c, "legacy.example.com", NAME_BASIS_CN);
    cert_info_clear(&c);
}

static void test_san_wildcards(void **state)
{
    (void)state;
    struct cert_info c;
    make_cert(&c, "Wildcard", "DNS:*.example.com");
    MATCH(&c, "a.example.com", NAME_BASIS_DNS_SAN, "DNS:*.example.com");
    MATCH(&c, "WWW.Example.Com", NAME_BASIS_DNS_SAN, "DNS:*.example.com");
    NO_MATCH(&c, "a.b.example.com", NAME_BASIS_DNS_SAN);
    NO_MATCH(&c, "example.com", NAME_BASIS_DNS_SAN);
    /* the CN "Wildcard" is never consulted */
    NO_MATCH(&c, "Wildcard", NAME_BASIS_DNS_SAN);
    cert_info_clear(&c);

    make_cert(&c, "example.com", "DNS:*.com,DNS:f*.example.com,DNS:a.*.example.com");
    NO_MATCH(&c, "example.com", NAME_BASIS_DNS_SAN);
    NO_MATCH(&c, "foo.example.com", NAME_BASIS_DNS_SAN);
    NO_MATCH(&c, "a.b.example.com", NAME_BASIS_DNS_SAN);
    cert_info_clear(&c);

    /* the first matching SAN is reported */
    make_cert(&c, NULL, "DNS:*.example.com,DNS:app.example.com");
    MATCH(&c, "app.example.com", NAME_BASIS_DNS_SAN, "DNS:*.example.com");
    cert_info_clear(&c);
}

static void test_case_and_trailing_dot(void **state)
{
    (void)state;
    struct cert_info c;
    make_cert(&c, NULL, "DNS:App.Example.COM");
    MATCH(&c, "app.example.com", NAME_BASIS_DNS_SAN, "DNS:App.Example.COM");
    MATCH(&c, "APP.EXAMPLE.COM", NAME_BASIS_DNS_SAN, "DNS:App.Example.COM");
    MATCH(&c, "app.example.com.", NAME_BASIS_DNS_SAN, "DNS:App.Example.COM");
    NO_MATCH(&c, "app.example.co", NAME_BASIS_DNS_SAN);
    cert_info_clear(&c);
}

static void test_ip_literals(void **state)
{
    (void)state;
    struct cert_info c;
    make_cert(&c, "127.0.0.1", "DNS:127.0.0.2,IP:10.0.0.5,IP:::1,DNS:localhost");
    assert_int_equal(c.n_sans, 4);
    assert_string_equal(c.sans[1], "IP:10.0.0.5");
    assert_string_equal(c.sans[2], "IP:::1");
    MATCH(&c, "10.0.0.5", NAME_BASIS_IP_SAN, "IP:10.0.0.5");
    MATCH(&c, "::1", NAME_BASIS_IP_SAN, "IP:::1");
    MATCH(&c, "0:0:0:0:0:0:0:1", NAME_BASIS_IP_SAN, "IP:::1");
    MATCH(&c, "0000::0001", NAME_BASIS_IP_SAN, "IP:::1");
    NO_MATCH(&c, "::2", NAME_BASIS_IP_SAN);
    /* not the CN, not a DNS SAN holding the address's text */
    NO_MATCH(&c, "127.0.0.1", NAME_BASIS_IP_SAN);
    NO_MATCH(&c, "127.0.0.2", NAME_BASIS_IP_SAN);
    /* an IPv4 SAN does not match its IPv4-mapped IPv6 form */
    NO_MATCH(&c, "::ffff:10.0.0.5", NAME_BASIS_IP_SAN);
    MATCH(&c, "localhost", NAME_BASIS_DNS_SAN, "DNS:localhost");
    cert_info_clear(&c);

    /* the CN alone never covers an address */
    make_cert(&c, "10.1.1.1", NULL);
    NO_MATCH(&c, "10.1.1.1", NAME_BASIS_IP_SAN);
    cert_info_clear(&c);

    /* IPv6 SAN written in full in the certificate */
    make_cert(&c, NULL, "IP:2001:0db8:0000:0000:0000:0000:0000:0001");
    assert_string_equal(c.sans[0], "IP:2001:db8::1");
    MATCH(&c, "2001:db8::1", NAME_BASIS_IP_SAN, "IP:2001:db8::1");
    MATCH(&c, "2001:DB8:0:0::1", NAME_BASIS_IP_SAN, "IP:2001:db8::1");
    NO_MATCH(&c, "2001:db8::2", NAME_BASIS_IP_SAN);
    cert_info_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_pattern_exact),
            cmocka_unit_test(test_pattern_case_and_trailing_dot),
            cmocka_unit_test(test_pattern_wildcard),
            cmocka_unit_test(test_pattern_wildcard_refused),
            cmocka_unit_test(test_is_ip_literal),
            cmocka_unit_test(test_dns_san_only),
            cmocka_unit_test(test_cn_when_no_dns_san),
            cmocka_unit_test(test_cn_wildcard),
            cmocka_unit_test(test_san_wildcards),
            cmocka_unit_test(test_case_and_trailing_dot),
            cmocka_unit_test(test_ip_literals),
    };
    return cmocka_run_group_tests_name("name_match", tests, setup, teardown);
}
