/*
 * Unit tests for src/core/url.c: url_parse, hostport_parse and url_valid_dns_name. Every accepted
 * input is checked field by field; every refused one for its error sentence, which must name the
 * part at fault.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/url.h"

/* Parses <text>, which must be accepted, and checks every field. */
static void check_url(const char *text, bool https, const char *host, bool is_ip, uint16_t port,
                      bool port_given, const char *path, int line)
{
    struct url u;
    char err[512] = "";
    int rc = url_parse(text, &u, err, sizeof err);
    if (rc != 0)
        fail_msg("line %d: '%s' refused: %s", line, text, err);
    if (u.https != https || strcmp(u.host, host) != 0 || u.host_is_ip != is_ip || u.port != port ||
        u.port_given != port_given || strcmp(u.path, path) != 0)
        fail_msg("line %d: '%s' -> https=%d host='%s' ip=%d port=%u given=%d path='%s'; want "
                 "https=%d host='%s' ip=%d port=%u given=%d path='%s'",
                 line, text, u.https, u.host, u.host_is_ip, u.port, u.port_given, u.path, https,
                 host, is_ip, port, port_given, path);
}

#define URL_OK(text, https, host, ip, port, given, path)                                           \
    check_url(text, https, host, ip, port, given, path, __LINE__)

/* <text> must be refused with an error that contains every non-NULL needle. */
static void check_url_error(const char *text, const char *needle1, const char *needle2, int line)
{
    struct url u;
    char err[512] = "";
    int rc = url_parse(text, &u, err, sizeof err);
    if (rc != -1)
        fail_msg("line %d: '%s' accepted (host '%s', port %u, path '%s')", line, text, u.host,
                 u.port, u.path);
    if (err[0] == '\0')
        fail_msg("line %d: '%s' refused without an error sentence", line, text);
    if (needle1 && !strstr(err, needle1))
        fail_msg("line %d: '%s': error \"%s\" does not mention \"%s\"", line, text, err, needle1);
    if (needle2 && !strstr(err, needle2))
        fail_msg("line %d: '%s': error \"%s\" does not mention \"%s\"", line, text, err, needle2);
}

#define URL_ERR(text, n1, n2) check_url_error(text, n1, n2, __LINE__)

static void test_url_schemes_and_default_ports(void **state)
{
    (void)state;
    URL_OK("http://app.example.com", false, "app.example.com", false, 80, false, "/");
    URL_OK("https://app.example.com", true, "app.example.com", false, 443, false, "/");
    URL_OK("https://app.example.com/", true, "app.example.com", false, 443, false, "/");
    URL_OK("HTTPS://App.Example.com", true, "App.Example.com", false, 443, false, "/");
    URL_OK("Http://localhost", false, "localhost", false, 80, false, "/");
    URL_OK("https://backend_1.internal", true, "backend_1.internal", false, 443, false, "/");
}

static void test_url_explicit_ports(void **state)
{
    (void)state;
    URL_OK("https://app.example.com:8443", true, "app.example.com", false, 8443, true, "/");
    URL_OK("http://app.example.com:80", false, "app.example.com", false, 80, true, "/");
    URL_OK("http://app.example.com:443/", false, "app.example.com", false, 443, true, "/");
    URL_OK("https://h:1", true, "h", false, 1, true, "/");
    URL_OK("https://h:65535", true, "h", false, 65535, true, "/");
    URL_OK("https://h:00443", true, "h", false, 443, true, "/");
}

static void test_url_ipv4(void **state)
{
    (void)state;
    URL_OK("https://10.0.0.1", true, "10.0.0.1", true, 443, false, "/");
    URL_OK("http://127.0.0.1:8080/health", false, "127.0.0.1", true, 8080, true, "/health");
}

static void test_url_ipv6(void **state)
{
    (void)state;
    URL_OK("https://[::1]", true, "::1", true, 443, false, "/");
    URL_OK("https://[::1]:9443", true, "::1", true, 9443, true, "/");
    URL_OK("http://[2001:db8::17]:8080/x?y=1", false, "2001:db8::17", true, 8080, true, "/x?y=1");
    URL_OK("https://[fe80::1]/", true, "fe80::1", true, 443, false, "/");
}

static void test_url_path_and_query(void **state)
{
    (void)state;
    URL_OK("https://app.example.com/health", true, "app.example.com", false, 443, false, "/health");
    URL_OK("https://app.example.com/a/b?x=1&y=%20", true, "app.example.com", false, 443, false,
           "/a/b?x=1&y=%20");
    /* a query straight after the host gets its "/" */
    URL_OK("https://app.example.com?probe=1", true, "app.example.com", false, 443, false,
           "/?probe=1");
    URL_OK("https://app.example.com:8443?probe=1", true, "app.example.com", false, 8443, true,
           "/?probe=1");
    /* a fragment is never sent */
    URL_OK("https://app.example.com/p#frag", true, "app.example.com", false, 443, false, "/p");
    URL_OK("https://app.example.com#frag", true, "app.example.com", false, 443, false, "/");
    URL_OK("https://app.example.com/p?q=1#frag", true, "app.example.com", false, 443, false,
           "/p?q=1");
}

static void test_url_bad_scheme(void **state)
{
    (void)state;
    URL_ERR("ftp://app.example.com", "ftp://app.example.com", NULL);
    URL_ERR("app.example.com", "app.example.com", NULL);
    URL_ERR("https:/app.example.com", "https:/app.example.com", NULL);
    URL_ERR("", NULL, NULL);
}

static void test_url_bad_ports(void **state)
{
    (void)state;
    URL_ERR("https://app.example.com:0", "https://app.example.com:0", "port 0");
    URL_ERR("https://app.example.com:65536", "https://app.example.com:65536", "65536");
    URL_ERR("https://app.example.com:70000/x", "https://app.example.com:70000/x", "70000");
    URL_ERR("https://app.example.com:99999999999", "99999999999", "port");
    URL_ERR("https://app.example.com:https", "'https'", "port");
    URL_ERR("https://app.example.com:44a", "'44a'", "port");
    URL_ERR("https://app.example.com:-1", "'-1'", "port");
    URL_ERR("https://app.example.com:+443", "'+443'", "port");
    URL_ERR("https://app.example.com:", "port", "empty");
    URL_ERR("https://[::1]:0", "port 0", NULL);
    URL_ERR("https://[::1]:", "port", "empty");
}

static void test_url_bad_hosts(void **state)
{
    (void)state;
    URL_ERR("https://", "no host", NULL);
    URL_ERR("https:///health", "no host", "https:///health");
    URL_ERR("https://:8443", "host", "empty");
    URL_ERR("https://[::1", "]", "https://[::1");
    URL_ERR("https://[::1/health", "]", NULL);
    URL_ERR("https://::1", "brackets", "https://::1");
    URL_ERR("https://2001:db8::1:443/", "brackets", NULL);
    URL_ERR("https://[]", "host", "empty");
    URL_ERR("https://[app.example.com]", "'app.example.com'", "IPv6");
    URL_ERR("https://[10.0.0.1]:443", "'10.0.0.1'", "IPv6");
    URL_ERR("https://[::1]x", "'x'", NULL);
    URL_ERR("https://[::1]443", "'443'", NULL);
    URL_ERR("https://bad!host", "'bad!host'", NULL);
    URL_ERR("https://a..b", "'a..b'", NULL);
    URL_ERR("https://sp ace.example.com", "'sp ace.example.com'", NULL);
}

static void test_url_credentials_refused(void **state)
{
    (void)state;
    URL_ERR("https://user:secret@app.example.com/", "credentials", NULL);
    URL_ERR("https://user@app.example.com", "credentials", NULL);
    URL_ERR("https://@app.example.com", "credentials", NULL);
    /* an '@' in the path is not a credential */
    URL_OK("https://app.example.com/u@x", true, "app.example.com", false, 443, false, "/u@x");
}

static void test_url_control_chars_in_path(void **state)
{
    (void)state;
    URL_ERR("https://app.example.com/a b", "path", "control");
    URL_ERR("https://app.example.com/a\tb", "path", NULL);
    URL_ERR("https://app.example.com/a\r\nHost: evil", "path", NULL);
    URL_ERR("https://app.example.com/\x01", "path", NULL);
    URL_ERR("https://app.example.com/\x7f", "path", NULL);
    URL_ERR("https://app.example.com/?q=a b", "path", NULL);
}

static void test_url_too_long(void **state)
{
    (void)state;
    char text[4096];
    /* a 260-byte host: longer than struct url's host */
    strcpy(text, "https://");
    for (int i = 0; i < 260; i++)
        strcat(text, i % 50 == 49 ? "." : "a");
    URL_ERR(text, "too long", NULL);
    /* a 3000-byte path */
    strcpy(text, "https://h/");
    memset(text + 10, 'p', 3000);
    text[3010] = '\0';
    URL_ERR(text, "the path of", NULL);
    /* a 2046-byte path fits in struct url's path */
    char want[2047];
    strcpy(text, "https://h");
    want[0] = '/';
    memset(want + 1, 'p', sizeof want - 2);
    want[sizeof want - 1] = '\0';
    strcat(text, want);
    struct url u;
    char err[256];
    assert_int_equal(url_parse(text, &u, err, sizeof err), 0);
    assert_string_equal(u.path, want);
}

static void check_hostport(const char *text, uint16_t def, const char *host, uint16_t port,
                           bool given, int line)
{
    char h[256] = "", err[256] = "";
    uint16_t p = 0;
    bool g = !given;
    int rc = hostport_parse(text, def, h, sizeof h, &p, &g, err, sizeof err);
    if (rc != 0)
        fail_msg("line %d: '%s' refused: %s", line, text, err);
    if (strcmp(h, host) != 0 || p != port || g != given)
        fail_msg("line %d: '%s' -> host '%s' port %u given %d; want '%s' %u %d", line, text, h, p,
                 g, host, port, given);
}

#define HP_OK(text, def, host, port, given) check_hostport(text, def, host, port, given, __LINE__)

static void check_hostport_error(const char *text, const char *needle, int line)
{
    char h[256], err[256] = "";
    uint16_t p;
    bool g;
    int rc = hostport_parse(text, 443, h, sizeof h, &p, &g, err, sizeof err);
    if (rc != -1)
        fail_msg("line %d: '%s' accepted (host '%s', port %u)", line, text, h, p);
    if (err[0] == '\0')
        fail_msg("line %d: '%s' refused without an error sentence", line, text);
    if (needle && !strstr(err, needle))
        fail_msg("line %d: '%s': error \"%s\" does not mention \"%s\"", line, text, err, needle);
}

#define HP_ERR(text, needle) check_hostport_error(text, needle, __LINE__)

static void test_hostport_valid(void **state)
{
    (void)state;
    HP_OK("app.internal", 443, "app.internal", 443, false);
    HP_OK("app.internal", 8080, "app.internal", 8080, false);
    HP_OK("app.internal:9443", 443, "app.internal", 9443, true);
    HP_OK("10.1.2.3", 80, "10.1.2.3", 80, false);
    HP_OK("10.1.2.3:8080", 80, "10.1.2.3", 8080, true);
    HP_OK("[::1]", 443, "::1", 443, false);
    HP_OK("[::1]:8443", 443, "::1", 8443, true);
    HP_OK("[2001:db8::1]:65535", 443, "2001:db8::1", 65535, true);
    HP_OK("localhost:1", 443, "localhost", 1, true);
}

static void test_hostport_invalid(void **state)
{
    (void)state;
    HP_ERR("", "empty");
    HP_ERR(":443", "empty");
    HP_ERR("[]:443", "empty");
    HP_ERR("[::1", "]");
    HP_ERR("[::1:443", "]");
    HP_ERR("::1", "brackets");
    HP_ERR("fe80::1:443", "brackets");
    HP_ERR("[nothost]:443", "'nothost'");
    HP_ERR("[::1]:0", "0");
    HP_ERR("[::1]:65536", "65536");
    HP_ERR("app.internal:70000", "70000");
    HP_ERR("app.internal:0", "0");
    HP_ERR("app.internal:", "empty");
    HP_ERR("app.internal:abc", "'abc'");
    HP_ERR("app.internal:1x", "'1x'");
    HP_ERR("app.internal:443/x", "'443/x'");
    HP_ERR("[::1]x", "'x'");
    HP_ERR("bad host", "'bad host'");
    HP_ERR("under..dots", "'under..dots'");

    /* a host longer than the caller's buffer */
    char h[8], err[256] = "";
    uint16_t p;
    bool g;
    assert_int_equal(hostport_parse("long-host-name:1", 443, h, sizeof h, &p, &g, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "too long"));
    /* exactly fits */
    assert_int_equal(hostport_parse("1234567:2", 443, h, sizeof h, &p, &g, err, sizeof err), 0);
    assert_string_equal(h, "1234567");
    assert_int_equal(p, 2);
}

static void test_valid_dns_name(void **state)
{
    (void)state;
    assert_true(url_valid_dns_name("example.com"));
    assert_true(url_valid_dns_name("a"));
    assert_true(url_valid_dns_name("a-b_c.d-e.f9"));
    assert_false(url_valid_dns_name(""));
    assert_false(url_valid_dns_name(".example.com"));
    assert_false(url_valid_dns_name("a..b"));
    assert_false(url_valid_dns_name("a b"));
    assert_false(url_valid_dns_name("a/b"));
    assert_false(url_valid_dns_name("a:b"));
    assert_false(url_valid_dns_name("caf\xc3\xa9.example"));

    char label[80];
    memset(label, 'x', 63);
    label[63] = '\0';
    assert_true(url_valid_dns_name(label));
    memset(label, 'x', 64);
    label[64] = '\0';
    assert_false(url_valid_dns_name(label));

    /* 253 characters allowed, 254 not */
    char name[300];
    size_t n = 0;
    while (n < 253) {
        name[n] = (n % 10 == 9) ? '.' : 'a';
        n++;
    }
    name[252] = 'a';
    name[253] = '\0';
    assert_true(url_valid_dns_name(name));
    name[253] = 'a';
    name[254] = '\0';
    assert_false(url_valid_dns_name(name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_url_schemes_and_default_ports),
            cmocka_unit_test(test_url_explicit_ports),
            cmocka_unit_test(test_url_ipv4),
            cmocka_unit_test(test_url_ipv6),
            cmocka_unit_test(test_url_path_and_query),
            cmocka_unit_test(test_url_bad_scheme),
            cmocka_unit_test(test_url_bad_ports),
            cmocka_unit_test(test_url_bad_hosts),
            cmocka_unit_test(test_url_credentials_refused),
            cmocka_unit_test(test_url_control_chars_in_path),
            cmocka_unit_test(test_url_too_long),
            cmocka_unit_test(test_hostport_valid),
            cmocka_unit_test(test_hostport_invalid),
            cmocka_unit_test(test_valid_dns_name),
    };
    return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
