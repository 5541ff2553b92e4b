/*
 * Unit tests for the HTTP/1.1 head parser and chunked decoder (src/http/h1.c).
 *
 * Every refusal is checked for its error code and its byte position, and for the promise that
 * each shorter prefix of the same bytes is merely incomplete (the parser re-parses from the
 * start, so a fault must not be reported before the byte that proves it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

static struct h1_header headers[H1_DEFAULT_MAX_HEADERS];

/* Offset of <needle> in <s>, which must contain it (<occurrence> counts from 1). */
static size_t at_nth(const char *s, const char *needle, int occurrence)
{
    const char *p = s;
    for (;;) {
        const char *hit = strstr(p, needle);
        if (!hit)
            fail_msg("'%s' not in test input", needle);
        if (--occurrence == 0)
            return (size_t)(hit - s);
        p = hit + 1;
    }
}

static size_t at(const char *s, const char *needle)
{
    return at_nth(s, needle, 1);
}

static int parse_req(const char *s, size_t n, struct h1_request *r)
{
    return h1_parse_request(s, n, NULL, headers, r);
}

/*
 * The prefix s[0..n) copied into a heap block of exactly n bytes, so that AddressSanitizer (make
 * SAN=1) catches any read past len. The caller frees it.
 */
static char *exact_copy(const char *s, size_t n)
{
    char *copy = malloc(n);
    assert_true(copy != NULL || n == 0);
    if (n > 0)
        memcpy(copy, s, n);
    return copy;
}

static int parse_req_exact(const char *s, size_t n, const struct h1_limits *limits,
                           struct h1_request *r)
{
    char *copy = exact_copy(s, n);
    int rc = h1_parse_request(copy, n, limits, headers, r);
    free(copy);
    return rc;
}

static int parse_resp_exact(const char *s, size_t n, struct h1_response *r)
{
    char *copy = exact_copy(s, n);
    int rc = h1_parse_response(copy, n, NULL, headers, false, r);
    free(copy);
    return rc;
}

#define PARSE_REQ(lit, r) parse_req(lit, sizeof(lit) - 1, r)

static int parse_resp(const char *s, size_t n, bool head, struct h1_response *r)
{
    return h1_parse_response(s, n, NULL, headers, head, r);
}

#define PARSE_RESP(lit, head, r) parse_resp(lit, sizeof(lit) - 1, head, r)

/* s[0..n) is a complete request head of exactly <head_len> bytes, and each prefix is not. */
static void check_req_complete(const char *s, size_t n, size_t head_len, int line)
{
    struct h1_request r;
    int rc = parse_req_exact(s, n, NULL, &r);
    if (rc != H1_COMPLETE || r.head_len != head_len)
        fail_msg("line %d: rc %d (%s at %zu), head_len %zu, want complete with %zu", line, rc,
                 h1_error_text(r.error), r.error_pos, r.head_len, head_len);
    for (size_t k = 0; k < head_len; k++) {
        rc = parse_req_exact(s, k, NULL, &r);
        if (rc != H1_INCOMPLETE)
            fail_msg("line %d: prefix of %zu bytes: rc %d (%s at %zu)", line, k, rc,
                     h1_error_text(r.error), r.error_pos);
    }
}

#define REQ_COMPLETE(lit) check_req_complete(lit, sizeof(lit) - 1, sizeof(lit) - 1, __LINE__)

static void check_req_error(const char *s, size_t n, const struct h1_limits *limits,
                            enum h1_error error, size_t pos, int line)
{
    struct h1_request r;
    int rc = parse_req_exact(s, n, limits, &r);
    if (rc != H1_ERROR || r.error != error || r.error_pos != pos)
        fail_msg("line %d: rc %d, error '%s' at %zu; want '%s' at %zu", line, rc,
                 h1_error_text(r.error), r.error_pos, h1_error_text(error), pos);
    for (size_t k = 0; k < pos && k < n; k++) {
        rc = parse_req_exact(s, k, limits, &r);
        if (rc != H1_INCOMPLETE)
            fail_msg("line %d: prefix of %zu bytes: rc %d ('%s' at %zu), want incomplete", line, k,
                     rc, h1_error_text(r.error), r.error_pos);
    }
}

/* the error, its position, and every shorter prefix incomplete */
#define REQ_ERROR(lit, error, pos) check_req_error(lit, sizeof(lit) - 1, NULL, error, pos, __LINE__)

#define REQ_ERROR_AT(lit, error, needle) REQ_ERROR(lit, error, at(lit, needle))

static void check_resp_error(const char *s, size_t n, enum h1_error error, size_t pos, int line)
{
    struct h1_response r;
    int rc = parse_resp_exact(s, n, &r);
    if (rc != H1_ERROR || r.error != error || r.error_pos != pos)
        fail_msg("line %d: rc %d, error '%s' at %zu; want '%s' at %zu", line, rc,
                 h1_error_text(r.error), r.error_pos, h1_error_text(error), pos);
    for (size_t k = 0; k < pos && k < n; k++) {
        rc = parse_resp_exact(s, k, &r);
        if (rc != H1_INCOMPLETE)
            fail_msg("line %d: prefix of %zu bytes: rc %d, want incomplete", line, k, rc);
    }
}

/* the error, its position, and every shorter prefix incomplete */
#define RESP_ERROR(lit, error, pos) check_resp_error(lit, sizeof(lit) - 1, error, pos, __LINE__)

#define RESP_ERROR_AT(lit, error, needle) RESP_ERROR(lit, error, at(lit, needle))

static void assert_slice(struct h1_slice s, const char *want)
{
    if (!h1_slice_eq(s, want))
        fail_msg("slice '%.*s', want '%s'", (int)s.len, s.p, want);
}

/* ---- valid requests ---- */

static void test_get_with_host(void **state)
{
    (void)state;
    static const char req[] = "GET /index.html?q=1 HTTP/1.1\r\n"
                              "Host: example.com\r\n"
                              "User-Agent: test/1.0\r\n"
                              "\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_slice(r.method, "GET");
    assert_slice(r.target, "/index.html?q=1");
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.n_headers, 2);
    assert_ptr_equal(r.headers, headers);
    assert_slice(r.headers[0].name, "Host");
    assert_slice(r.headers[0].value, "example.com");
    assert_slice(r.headers[1].name, "User-Agent");
    assert_slice(r.headers[1].value, "test/1.0");
    assert_slice(r.host, "example.com");
    assert_int_equal(r.head_len, sizeof(req) - 1);
    assert_int_equal(r.body, H1_BODY_NONE);
    assert_true(r.keep_alive);
    assert_false(r.expect_continue);
    assert_false(r.upgrade);
    assert_int_equal(r.error, H1_ERR_NONE);
    /* zero-copy: slices point into the buffer */
    assert_ptr_equal(r.method.p, req);
    assert_ptr_equal(r.host.p, req + at(req, "example.com"));
    REQ_COMPLETE(req);
}

static void test_pipelined_bytes_after_head(void **state)
{
    (void)state;
    static const char req[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_int_equal(r.head_len, at(req, "GET /b"));
    assert_slice(r.target, "/a");
}

static void test_post_content_length(void **state)
{
    (void)state;
    static const char req[] = "POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_slice(r.method, "POST");
    assert_int_equal(r.body, H1_BODY_LENGTH);
    assert_int_equal(r.content_length, 5);
    assert_int_equal(r.head_len, at(req, "hello"));
    check_req_complete(req, sizeof(req) - 1, at(req, "hello"), __LINE__);
}

static void test_content_length_forms(void **state)
{
    (void)state;
    struct h1_request r;
    static const char zero[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(PARSE_REQ(zero, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_LENGTH);
    assert_int_equal(r.content_length, 0);

    static const char list[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5,5\r\n\r\n";
    assert_int_equal(PARSE_REQ(list, &r), H1_COMPLETE);
    assert_int_equal(r.content_length, 5);

    static const char dup[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n"
                              "content-length: 7\r\n\r\n";
    assert_int_equal(PARSE_REQ(dup, &r), H1_COMPLETE);
    assert_int_equal(r.content_length, 7);

    static const char ows[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\t 12 \t\r\n\r\n";
    assert_int_equal(PARSE_REQ(ows, &r), H1_COMPLETE);
    assert_int_equal(r.content_length, 12);

    static const char max[] =
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n";
    assert_int_equal(PARSE_REQ(max, &r), H1_COMPLETE);
    assert_true(r.content_length == UINT64_C(9223372036854775807));

    static const char zeros[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0005\r\n\r\n";
    assert_int_equal(PARSE_REQ(zeros, &r), H1_COMPLETE);
    assert_int_equal(r.content_length, 5);
}

static void test_chunked_post(void **state)
{
    (void)state;
    static const char req[] = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CHUNKED);
    REQ_COMPLETE(req);

    static const char upper[] =
            "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  CHUNKED \r\n\r\n";
    assert_int_equal(PARSE_REQ(upper, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CHUNKED);
}

static void test_absolute_form(void **state)
{
    (void)state;
    static const char req[] = "GET http://example.com:8080/a?b=c HTTP/1.1\r\n"
                              "Host: example.com:8080\r\n\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_slice(r.target, "http://example.com:8080/a?b=c");
    assert_slice(r.host, "example.com:8080");
    REQ_COMPLETE(req);

    static const char other[] = "GET urn:example:x HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(PARSE_REQ(other, &r), H1_COMPLETE);
    static const char bare[] = "GET https://[::1]?x HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(PARSE_REQ(bare, &r), H1_COMPLETE);
}

static void test_options_asterisk(void **state)
{
    (void)state;
    static const char req[] = "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_slice(r.method, "OPTIONS");
    assert_slice(r.target, "*");
    REQ_COMPLETE(req);
}

static void test_connect_authority_form(void **state)
{
    (void)state;
    static const char req[] = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_slice(r.method, "CONNECT");
    assert_slice(r.target, "example.com:443");
    REQ_COMPLETE(req);

    static const char v6[] =
            "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n";
    assert_int_equal(PARSE_REQ(v6, &r), H1_COMPLETE);
    assert_slice(r.host, "[2001:db8::1]:8443");
}

static void test_http10(void **state)
{
    (void)state;
    struct h1_request r;
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_int_equal(r.minor_version, 0);
    assert_false(r.keep_alive);
    assert_int_equal(r.host.len, 0);
    REQ_COMPLETE(req);

    static const char ka[] = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    assert_int_equal(PARSE_REQ(ka, &r), H1_COMPLETE);
    assert_true(r.keep_alive);

    static const char host[] = "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n";
    assert_int_equal(PARSE_REQ(host, &r), H1_COMPLETE);
    assert_slice(r.host, "example.com");

    /* HTTP/1.0 cannot ask for 100-continue nor an upgrade (RFC 9110 §10.1.1, §7.8) */
    static const char ign[] = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nConnection: upgrade\r\n"
                              "Upgrade: websocket\r\nContent-Length: 1\r\n\r\n";
    assert_int_equal(PARSE_REQ(ign, &r), H1_COMPLETE);
    assert_false(r.expect_continue);
    assert_false(r.upgrade);
}

static void test_connection_tokens(void **state)
{
    (void)state;
    struct h1_request r;
    static const char close1[] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    assert_int_equal(PARSE_REQ(close1, &r), H1_COMPLETE);
    assert_false(r.keep_alive);

    static const char both[] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, CLOSE\r\n\r\n";
    assert_int_equal(PARSE_REQ(both, &r), H1_COMPLETE);
    assert_false(r.keep_alive);

    static const char two[] =
            "GET / HTTP/1.0\r\nConnection: foo\r\nConnection: ,keep-alive ,\r\n\r\n";
    assert_int_equal(PARSE_REQ(two, &r), H1_COMPLETE);
    assert_true(r.keep_alive);

    /* "close" must be a whole token */
    static const char part[] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, x-close\r\n\r\n";
    assert_int_equal(PARSE_REQ(part, &r), H1_COMPLETE);
    assert_true(r.keep_alive);

    static const char ws[] = "GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
                             "Upgrade: websocket\r\n\r\n";
    assert_int_equal(PARSE_REQ(ws, &r), H1_COMPLETE);
    assert_true(r.upgrade);
    assert_true(r.keep_alive);

    static const char no_hdr[] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n";
    assert_int_equal(PARSE_REQ(no_hdr, &r), H1_COMPLETE);
    assert_false(r.upgrade);

    static const char no_tok[] = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n";
    assert_int_equal(PARSE_REQ(no_tok, &r), H1_COMPLETE);
    assert_false(r.upgrade);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct h1_request r;
    static const char req[] = "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
                              "Content-Length: 10\r\n\r\n";
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_true(r.expect_continue);

    static const char other[] = "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n";
    assert_int_equal(PARSE_REQ(other, &r), H1_COMPLETE);
    assert_false(r.expect_continue);
}

static void test_header_values(void **state)
{
    (void)state;
    static const char req[] = "GET / HTTP/1.1\r\nHost:h\r\nX-A:  a  b \t \r\nX-Empty:\r\n"
                              "X-Ws:   \r\nX-Obs: caf\xc3\xa9\r\nX-Tab:\tv\tw\r\n\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_int_equal(r.n_headers, 6);
    assert_slice(r.headers[0].value, "h");
    assert_slice(r.headers[1].value, "a  b");
    assert_slice(r.headers[2].value, "");
    assert_slice(r.headers[3].value, "");
    assert_slice(r.headers[4].value, "caf\xc3\xa9");
    assert_slice(r.headers[5].value, "v\tw");
    REQ_COMPLETE(req);
}

static void test_methods_and_targets(void **state)
{
    (void)state;
    struct h1_request r;
    /* any token is a method; unknown ones are the router's business */
    static const char tok[] = "GET123 / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(PARSE_REQ(tok, &r), H1_COMPLETE);
    assert_slice(r.method, "GET123");
    static const char m[] = "M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(PARSE_REQ(m, &r), H1_ERROR);
    assert_int_equal(r.error, H1_ERR_TARGET); /* asterisk-form is OPTIONS only */
    static const char odd[] = "PURGE /a/b;c?d=%20&e=[f]~ HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(PARSE_REQ(odd, &r), H1_COMPLETE);
}

static void test_host_values(void **state)
{
    (void)state;
    struct h1_request r;
    static const char empty[] = "GET / HTTP/1.1\r\nHost:\r\n\r\n";
    assert_int_equal(PARSE_REQ(empty, &r), H1_COMPLETE);
    assert_int_equal(r.host.len, 0);
    static const char v6[] = "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n";
    assert_int_equal(PARSE_REQ(v6, &r), H1_COMPLETE);
    assert_slice(r.host, "[::1]:8080");
    static const char ip[] = "GET / HTTP/1.1\r\nhost: 10.0.0.1\r\n\r\n";
    assert_int_equal(PARSE_REQ(ip, &r), H1_COMPLETE);
    assert_slice(r.host, "10.0.0.1");
    static const char pct[] = "GET / HTTP/1.1\r\nHost: a%2Db.example\r\n\r\n";
    assert_int_equal(PARSE_REQ(pct, &r), H1_COMPLETE);
}

static void test_leading_empty_lines(void **state)
{
    (void)state;
    static const char req[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    assert_int_equal(r.head_len, sizeof(req) - 1);
    assert_slice(r.method, "GET");
    REQ_COMPLETE(req);
    REQ_ERROR("\r\n\nGET / HTTP/1.1\r\n", H1_ERR_BARE_LF, 2);
}

/* ---- incremental parsing ---- */

static void test_every_prefix_incomplete(void **state)
{
    (void)state;
    REQ_COMPLETE("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQ_COMPLETE("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX: y\r\n\r\n");
    REQ_COMPLETE("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    REQ_COMPLETE("GET / HTTP/1.0\r\n\r\n");

    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
    struct h1_response r;
    for (size_t k = 0; k < sizeof(resp) - 1; k++)
        assert_int_equal(parse_resp_exact(resp, k, &r), H1_INCOMPLETE);
    assert_int_equal(PARSE_RESP(resp, false, &r), H1_COMPLETE);
    assert_int_equal(r.head_len, sizeof(resp) - 1);
}

/* ---- refusals: framing ---- */

static void test_te_and_cl(void **state)
{
    (void)state;
    static const char a[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n";
    REQ_ERROR_AT(a, H1_ERR_TE_AND_CL, "Transfer-Encoding");
    static const char b[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                            "Content-Length: 5\r\n\r\n";
    REQ_ERROR_AT(b, H1_ERR_TE_AND_CL, "Content-Length");
}

static void test_content_length_refusals(void **state)
{
    (void)state;
    static const char differ[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                                 "Content-Length: 6\r\n\r\n";
    REQ_ERROR_AT(differ, H1_ERR_CONTENT_LENGTH, "6");
    static const char list[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n";
    REQ_ERROR_AT(list, H1_ERR_CONTENT_LENGTH, "6");
    static const char plus[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n";
    REQ_ERROR_AT(plus, H1_ERR_CONTENT_LENGTH, "+5");
    static const char minus[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n";
    REQ_ERROR_AT(minus, H1_ERR_CONTENT_LENGTH, "-1");
    static const char space[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n";
    REQ_ERROR_AT(space, H1_ERR_CONTENT_LENGTH, "2\r");
    static const char hex[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n";
    REQ_ERROR_AT(hex, H1_ERR_CONTENT_LENGTH, "x5");
    static const char empty[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n";
    REQ_ERROR(empty, H1_ERR_CONTENT_LENGTH, at(empty, "Length: ") + 8);
    static const char trail[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n";
    REQ_ERROR(trail, H1_ERR_CONTENT_LENGTH, at(trail, ",") + 1);
    static const char dbl[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,,5\r\n\r\n";
    REQ_ERROR(dbl, H1_ERR_CONTENT_LENGTH, at(dbl, ",,") + 1);
    static const char big[] =
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n";
    REQ_ERROR(big, H1_ERR_CONTENT_LENGTH, at(big, "9223") + 18);
    static const char huge[] =
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n";
    REQ_ERROR(huge, H1_ERR_CONTENT_LENGTH, at(huge, "9999") + 18);
}

static void test_transfer_encoding_refusals(void **state)
{
    (void)state;
    static const char gzip[] =
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    REQ_ERROR_AT(gzip, H1_ERR_TRANSFER_ENCODING, "gzip");
    static const char last[] =
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
    REQ_ERROR_AT(last, H1_ERR_TRANSFER_ENCODING, "gzip");
    static const char ident[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n";
    REQ_ERROR_AT(ident, H1_ERR_TRANSFER_ENCODING, "identity");
    static const char twice[] =
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n";
    REQ_ERROR(twice, H1_ERR_TRANSFER_ENCODING, at_nth(twice, "chunked", 2));
    /* several Transfer-Encoding lines form one list */
    static const char lines[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n";
    REQ_ERROR(lines, H1_ERR_TRANSFER_ENCODING, at_nth(lines, "chunked", 2));
    static const char lines2[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n";
    REQ_ERROR_AT(lines2, H1_ERR_TRANSFER_ENCODING, "gzip");
    static const char param[] =
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n";
    REQ_ERROR_AT(param, H1_ERR_TRANSFER_ENCODING, ";q");
    static const char empty[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n";
    REQ_ERROR(empty, H1_ERR_TRANSFER_ENCODING, at(empty, "Encoding:") + 9);
    static const char comma[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n";
    REQ_ERROR(comma, H1_ERR_TRANSFER_ENCODING, at(comma, ",") + 1);
    static const char quoted[] =
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n";
    REQ_ERROR_AT(quoted, H1_ERR_TRANSFER_ENCODING, "\"chunked");
    /* RFC 9112 §6.1: no Transfer-Encoding in HTTP/1.0 */
    static const char v10[] = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    REQ_ERROR_AT(v10, H1_ERR_TRANSFER_ENCODING, "Transfer");
}

/* ---- refusals: syntax ---- */

static void test_line_endings(void **state)
{
    (void)state;
    REQ_ERROR("GET / HTTP/1.1\nHost: h\r\n\r\n", H1_ERR_BARE_LF, 14);
    REQ_ERROR("GET / HTTP/1.1\r\nHost: h\n\r\n", H1_ERR_BARE_LF, 23);
    REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\n\n", H1_ERR_BARE_LF, 25);
    REQ_ERROR("GET / HTTP/1.1\rHost: h\r\n\r\n", H1_ERR_BARE_CR, 14);
    REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", H1_ERR_BARE_CR, 29);
    REQ_ERROR("GET / HTTP/1.1\r\nHost: h\r\n\rX", H1_ERR_BARE_CR, 25);
    REQ_ERROR("\nGET / HTTP/1.1\r\n", H1_ERR_BARE_LF, 0);
    REQ_ERROR("\r\r\nGET / HTTP/1.1\r\n", H1_ERR_BARE_CR, 0);
    RESP_ERROR("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", H1_ERR_BARE_LF, 15);
    RESP_ERROR("HTTP/1.1 200\n", H1_ERR_BARE_LF, 12);
    RESP_ERROR("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", H1_ERR_BARE_CR, 21);
}

static void test_obs_fold(void **state)
{
    (void)state;
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n b\r\n\r\n";
    REQ_ERROR(req, H1_ERR_OBS_FOLD, at(req, " b"));
    static const char tab[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n\tb\r\n\r\n";
    REQ_ERROR(tab, H1_ERR_OBS_FOLD, at(tab, "\tb"));
    /* whitespace between the request line and the first field (RFC 9112 §2.2) */
    static const char first[] = "GET / HTTP/1.1\r\n Host: h\r\n\r\n";
    REQ_ERROR(first, H1_ERR_OBS_FOLD, 16);
}

static void test_header_name_refusals(void **state)
{
    (void)state;
    static const char at_sign[] = "GET / HTTP/1.1\r\nHost: h\r\nX@Y: 1\r\n\r\n";
    REQ_ERROR_AT(at_sign, H1_ERR_HEADER_NAME, "@");
    static const char space_in[] = "GET / HTTP/1.1\r\nHost: h\r\nBad Name: 1\r\n\r\n";
    REQ_ERROR_AT(space_in, H1_ERR_HEADER_NAME, " Name");
    static const char before_colon[] = "GET / HTTP/1.1\r\nHost : h\r\n\r\n";
    REQ_ERROR_AT(before_colon, H1_ERR_HEADER_NAME, " :");
    static const char tab_colon[] = "GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 5\r\n\r\n";
    REQ_ERROR_AT(tab_colon, H1_ERR_HEADER_NAME, "\t:");
    static const char empty[] = "GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n";
    REQ_ERROR_AT(empty, H1_ERR_HEADER_NAME, ": x");
    static const char no_colon[] = "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n";
    REQ_ERROR(no_colon, H1_ERR_HEADER_NAME, at(no_colon, "NoColon") + 7);
    static const char high[] = "GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: 1\r\n\r\n";
    REQ_ERROR_AT(high, H1_ERR_HEADER_NAME, "\xc3");
    static const char resp[] = "HTTP/1.1 200 OK\r\nServer : x\r\n\r\n";
    RESP_ERROR_AT(resp, H1_ERR_HEADER_NAME, " :");
}

static void test_header_value_refusals(void **state)
{
    (void)state;
    static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
    REQ_ERROR(nul, H1_ERR_HEADER_VALUE, 29);
    static const char del[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n";
    REQ_ERROR(del, H1_ERR_HEADER_VALUE, 29);
    static const char ctl[] = "GET / HTTP/1.1\r\nHost: h\r\nX: \x01\r\n\r\n";
    REQ_ERROR(ctl, H1_ERR_HEADER_VALUE, 28);
    static const char esc[] = "GET / HTTP/1.1\r\nHost: h\r\nX: \x1b[31m\r\n\r\n";
    REQ_ERROR(esc, H1_ERR_HEADER_VALUE, 28);
}

static void test_limits(void **state)
{
    (void)state;
    struct h1_limits lim = {.max_head = 40, .max_target = 8, .max_headers = 2};

    /* head: 40 bytes exactly is fine, 41 is not, and the answer comes at byte 40 */
    static const char fits[] = "GET / HTTP/1.1\r\nHost: h\r\nX: 123456789\r\n\r\n";
    assert_int_equal(sizeof(fits) - 1, 41);
    check_req_error(fits, sizeof(fits) - 1, &lim, H1_ERR_HEAD_TOO_LARGE, 40, __LINE__);
    check_req_error(fits, 40, &lim, H1_ERR_HEAD_TOO_LARGE, 40, __LINE__);
    struct h1_request r;
    lim.max_head = 41;
    assert_int_equal(h1_parse_request(fits, sizeof(fits) - 1, &lim, headers, &r), H1_COMPLETE);
    lim.max_head = 40;
    assert_int_equal(h1_parse_request(fits, 39, &lim, headers, &r), H1_INCOMPLETE);

    /* a request that never ends: too large, not incomplete forever */
    static const char endless[] =
            "GET / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    check_req_error(endless, sizeof(endless) - 1, &lim, H1_ERR_HEAD_TOO_LARGE, 40, __LINE__);
    static const char blank[] =
            "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
    check_req_error(blank, sizeof(blank) - 1, &lim, H1_ERR_HEAD_TOO_LARGE, 40, __LINE__);
    /* an earlier fault still wins over the size limit */
    static const char fault[] = "GET / HTTP/1.1\r\nHo st: h\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    check_req_error(fault, sizeof(fault) - 1, &lim, H1_ERR_HEADER_NAME, 18, __LINE__);

    /* target: 8 bytes is fine, the 9th is refused where it stands */
    static const char t8[] = "GET /2345678 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(h1_parse_request(t8, sizeof(t8) - 1, &lim, headers, &r), H1_COMPLETE);
    static const char t9[] = "GET /23456789 HTTP/1.1\r\nHost: h\r\n\r\n";
    check_req_error(t9, sizeof(t9) - 1, &lim, H1_ERR_TARGET_TOO_LONG, 12, __LINE__);
    /* with only 8 target bytes so far, a SP could still follow */
    assert_int_equal(h1_parse_request(t9, 12, &lim, headers, &r), H1_INCOMPLETE);

    /* header count */
    static const char three[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    lim.max_head = 1000;
    check_req_error(three, sizeof(three) - 1, &lim, H1_ERR_TOO_MANY_HEADERS, at(three, "B:"),
                    __LINE__);
    lim.max_headers = 3;
    assert_int_equal(h1_parse_request(three, sizeof(three) - 1, &lim, headers, &r), H1_COMPLETE);
    assert_int_equal(r.n_headers, 3);
    lim.max_headers = 0;
    check_req_error(three, sizeof(three) - 1, &lim, H1_ERR_TOO_MANY_HEADERS, 16, __LINE__);

    /* defaults: a 32 KiB target is accepted, one more byte is not */
    static char big[H1_DEFAULT_MAX_TARGET + 64];
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', H1_DEFAULT_MAX_TARGET - 1);
    size_t n = 4 + H1_DEFAULT_MAX_TARGET;
    memcpy(big + n, " HTTP/1.1\r\nHost: h\r\n\r\n", 22);
    assert_int_equal(parse_req(big, n + 22, &r), H1_COMPLETE);
    assert_int_equal(r.target.len, H1_DEFAULT_MAX_TARGET);
    big[n] = 'a';
    memcpy(big + n + 1, " HTTP/1.1\r\nHost: h\r\n\r\n", 22);
    assert_int_equal(parse_req(big, n + 23, &r), H1_ERROR);
    assert_int_equal(r.error, H1_ERR_TARGET_TOO_LONG);
    assert_int_equal(r.error_pos, n);
}

static void test_default_head_limit(void **state)
{
    (void)state;
    static char big[H1_DEFAULT_MAX_HEAD + 100];
    static const char start[] = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    memcpy(big, start, sizeof(start) - 1);
    memset(big + sizeof(start) - 1, 'v', sizeof(big) - (sizeof(start) - 1));
    struct h1_request r;
    assert_int_equal(parse_req(big, H1_DEFAULT_MAX_HEAD - 1, &r), H1_INCOMPLETE);
    assert_int_equal(parse_req(big, sizeof(big), &r), H1_ERROR);
    assert_int_equal(r.error, H1_ERR_HEAD_TOO_LARGE);
    assert_int_equal(r.error_pos, H1_DEFAULT_MAX_HEAD);
}

static void test_target_refusals(void **state)
{
    (void)state;
    REQ_ERROR("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 4);
    REQ_ERROR("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 6);
    REQ_ERROR("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 6);
    REQ_ERROR("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 5);
    REQ_ERROR("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 6);
    REQ_ERROR("GET * HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 4);
    REQ_ERROR("GET ** HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 4);
    REQ_ERROR("GET foo HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 7);
    REQ_ERROR("GET 1http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 4);
    REQ_ERROR("GET http:/h/ HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 9);
    REQ_ERROR("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 11);
    REQ_ERROR("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 15);
    REQ_ERROR("GET http://h:99999/ HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 17);
    /* CONNECT: authority-form only, with a port */
    REQ_ERROR("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 8);
    REQ_ERROR("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 19);
    REQ_ERROR("CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 20);
    REQ_ERROR("CONNECT :443 HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 8);
    REQ_ERROR("CONNECT http://h:443 HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 13);
    REQ_ERROR("CONNECT [::1 HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 12);
    REQ_ERROR("CONNECT [::1/]:443 HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 12);
    REQ_ERROR("GET ht_tp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_TARGET, 6);
}

static void test_version_refusals(void **state)
{
    (void)state;
    REQ_ERROR("GET / HTTP/1.2\r\nHost: h\r\n\r\n", H1_ERR_VERSION, 13);
    REQ_ERROR("GET / HTTP/0.9\r\n\r\n", H1_ERR_VERSION, 11);
    REQ_ERROR("GET / HTTP/2.0\r\n\r\n", H1_ERR_VERSION, 11);
    REQ_ERROR("GET / http/1.1\r\nHost: h\r\n\r\n", H1_ERR_VERSION, 6);
    REQ_ERROR("GET / HTTP/1.10\r\nHost: h\r\n\r\n", H1_ERR_VERSION, 14);
    REQ_ERROR("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", H1_ERR_VERSION, 14);
    REQ_ERROR("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_VERSION, 6);
    /* an HTTP/0.9 request line has no version at all */
    REQ_ERROR("GET /\r\n", H1_ERR_VERSION, 5);
    RESP_ERROR("HTTP/1.2 200 OK\r\n\r\n", H1_ERR_VERSION, 7);
    RESP_ERROR("HTTP/2 200 OK\r\n\r\n", H1_ERR_VERSION, 5);
    RESP_ERROR("ICY 200 OK\r\n\r\n", H1_ERR_VERSION, 0);
    RESP_ERROR("HTTP/1.1  200 OK\r\n\r\n", H1_ERR_STATUS, 9);
    RESP_ERROR("HTTP/1.1\r\n\r\n", H1_ERR_VERSION, 8);
}

static void test_method_refusals(void **state)
{
    (void)state;
    REQ_ERROR("G@T / HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_METHOD, 1);
    REQ_ERROR(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_METHOD, 0);
    REQ_ERROR("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_METHOD, 3);
    REQ_ERROR("GET\r\n", H1_ERR_METHOD, 3);
    REQ_ERROR("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", H1_ERR_METHOD, 2);
    REQ_ERROR("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", H1_ERR_METHOD, 0); /* TLS hello */
}

static void test_host_refusals(void **state)
{
    (void)state;
    static const char none[] = "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n";
    REQ_ERROR(none, H1_ERR_HOST, sizeof(none) - 3);
    static const char two[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nHOST: a\r\n\r\n";
    REQ_ERROR_AT(two, H1_ERR_HOST, "HOST");
    static const char two10[] = "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n";
    REQ_ERROR(two10, H1_ERR_HOST, at_nth(two10, "Host", 2));
    static const char space[] = "GET / HTTP/1.1\r\nHost: a b\r\n\r\n";
    REQ_ERROR_AT(space, H1_ERR_HOST, " b");
    static const char slash[] = "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n";
    REQ_ERROR_AT(slash, H1_ERR_HOST, "/b");
    static const char user[] = "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n";
    REQ_ERROR_AT(user, H1_ERR_HOST, "@");
    static const char port[] = "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n";
    REQ_ERROR_AT(port, H1_ERR_HOST, "6\r");
    static const char alpha_port[] = "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n";
    REQ_ERROR_AT(alpha_port, H1_ERR_HOST, "x");
    static const char no_host[] = "GET / HTTP/1.1\r\nHost: :80\r\n\r\n";
    REQ_ERROR_AT(no_host, H1_ERR_HOST, ":80");
    static const char pct[] = "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n";
    REQ_ERROR_AT(pct, H1_ERR_HOST, "%");
    static const char v6[] = "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n";
    REQ_ERROR(v6, H1_ERR_HOST, at(v6, "[") + 4);
    static const char v6x[] = "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n";
    REQ_ERROR_AT(v6x, H1_ERR_HOST, "x");
    static const char high[] = "GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n";
    REQ_ERROR_AT(high, H1_ERR_HOST, "\xc3");
}

/* ---- responses ---- */

static void test_response_basic(void **state)
{
    (void)state;
    static const char resp[] =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
            "\r\nhello world\n";
    struct h1_response r;
    assert_int_equal(PARSE_RESP(resp, false, &r), H1_COMPLETE);
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.status, 200);
    assert_slice(r.reason, "OK");
    assert_int_equal(r.n_headers, 2);
    assert_int_equal(r.head_len, at(resp, "hello"));
    assert_int_equal(r.body, H1_BODY_LENGTH);
    assert_int_equal(r.content_length, 12);
    assert_true(r.keep_alive);

    static const char reason[] = "HTTP/1.1 404 Not  Found \t\r\n\r\n";
    assert_int_equal(PARSE_RESP(reason, false, &r), H1_COMPLETE);
    assert_int_equal(r.status, 404);
    assert_slice(r.reason, "Not  Found \t");
}

static void test_response_empty_reason(void **state)
{
    (void)state;
    struct h1_response r;
    static const char sp[] = "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(PARSE_RESP(sp, false, &r), H1_COMPLETE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.reason.len, 0);
    static const char nosp[] = "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(PARSE_RESP(nosp, false, &r), H1_COMPLETE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.reason.len, 0);
    assert_int_equal(r.head_len, sizeof(nosp) - 1);
}

static void test_response_no_body(void **state)
{
    (void)state;
    struct h1_response r;
    static const char s204[] = "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n";
    assert_int_equal(PARSE_RESP(s204, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_NONE);
    assert_true(r.keep_alive);
    static const char s304[] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(PARSE_RESP(s304, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_NONE);
    static const char s100[] = "HTTP/1.1 100 Continue\r\n\r\n";
    assert_int_equal(PARSE_RESP(s100, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_NONE);
    assert_int_equal(r.status, 100);
    static const char s101[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                               "Upgrade: websocket\r\n\r\n";
    assert_int_equal(PARSE_RESP(s101, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_NONE);
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    assert_int_equal(PARSE_RESP(head, true, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_NONE);
    assert_true(r.keep_alive);
    static const char head_close[] = "HTTP/1.1 200 OK\r\n\r\n";
    assert_int_equal(PARSE_RESP(head_close, true, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_NONE);
    assert_true(r.keep_alive);
}

static void test_response_close_delimited(void **state)
{
    (void)state;
    struct h1_response r;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>";
    assert_int_equal(PARSE_RESP(resp, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CLOSE);
    assert_false(r.keep_alive);
    static const char v10[] = "HTTP/1.0 200 OK\r\n\r\n";
    assert_int_equal(PARSE_RESP(v10, false, &r), H1_COMPLETE);
    assert_int_equal(r.minor_version, 0);
    assert_int_equal(r.body, H1_BODY_CLOSE);
    assert_false(r.keep_alive);
    /* a final coding other than chunked: read until close (RFC 9112 §6.3) */
    static const char gzip[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert_int_equal(PARSE_RESP(gzip, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CLOSE);
    assert_false(r.keep_alive);
    static const char ows[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip ,chunked\r\n\r\n";
    assert_int_equal(PARSE_RESP(ows, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CHUNKED);
    static const char not_last[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
    assert_int_equal(PARSE_RESP(not_last, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CLOSE);
}

static void test_response_keep_alive(void **state)
{
    (void)state;
    struct h1_response r;
    static const char v10[] =
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n";
    assert_int_equal(PARSE_RESP(v10, false, &r), H1_COMPLETE);
    assert_true(r.keep_alive);
    static const char close1[] =
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n";
    assert_int_equal(PARSE_RESP(close1, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_LENGTH);
    assert_false(r.keep_alive);
}

static void test_response_chunked(void **state)
{
    (void)state;
    struct h1_response r;
    static const char resp[] =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    assert_int_equal(PARSE_RESP(resp, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CHUNKED);
    assert_true(r.keep_alive);
    assert_int_equal(r.head_len, at(resp, "5\r\n"));
    static const char gz[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
                             "Chunked\r\n\r\n";
    assert_int_equal(PARSE_RESP(gz, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CHUNKED);
    /* TE overrides CL for responses, and the connection is not reused */
    static const char both[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(PARSE_RESP(both, false, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CHUNKED);
    assert_false(r.keep_alive);
}

static void test_response_refusals(void **state)
{
    (void)state;
    RESP_ERROR("HTTP/1.1 20 OK\r\n\r\n", H1_ERR_STATUS, 11);
    RESP_ERROR("HTTP/1.1 2000 OK\r\n\r\n", H1_ERR_STATUS, 12);
    RESP_ERROR("HTTP/1.1 abc OK\r\n\r\n", H1_ERR_STATUS, 9);
    RESP_ERROR("HTTP/1.1 099 Low\r\n\r\n", H1_ERR_STATUS, 9);
    RESP_ERROR("HTTP/1.1 600 High\r\n\r\n", H1_ERR_STATUS, 9);
    RESP_ERROR("HTTP/1.1 200 O\x01K\r\n\r\n", H1_ERR_STATUS, 14);
    RESP_ERROR("http/1.1 200 OK\r\n\r\n", H1_ERR_VERSION, 0);
    static const char cl[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\n";
    RESP_ERROR_AT(cl, H1_ERR_CONTENT_LENGTH, "4");
    static const char bad_cl[] = "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n";
    RESP_ERROR_AT(bad_cl, H1_ERR_CONTENT_LENGTH, "x");
    static const char te10[] = "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    RESP_ERROR_AT(te10, H1_ERR_TRANSFER_ENCODING, "Transfer");
    static const char twice[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n";
    RESP_ERROR(twice, H1_ERR_TRANSFER_ENCODING, at_nth(twice, "chunked", 2));
    static const char fold[] = "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n";
    RESP_ERROR_AT(fold, H1_ERR_OBS_FOLD, " b");
    static const char nul[] = "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n";
    RESP_ERROR(nul, H1_ERR_HEADER_VALUE, 20);
}

/* ---- helpers ---- */

static void test_helpers(void **state)
{
    (void)state;
    struct h1_slice s = {"Content-Length", 14};
    assert_true(h1_slice_eq(s, "Content-Length"));
    assert_false(h1_slice_eq(s, "content-length"));
    assert_true(h1_slice_ieq(s, "content-LENGTH"));
    assert_false(h1_slice_ieq(s, "content-lengt"));
    assert_false(h1_slice_ieq(s, "content-lengthx"));
    struct h1_slice empty = {NULL, 0};
    assert_true(h1_slice_eq(empty, ""));
    assert_true(h1_slice_ieq(empty, ""));

    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(req, &r), H1_COMPLETE);
    const struct h1_header *f = h1_find_header(r.headers, r.n_headers, "X-a");
    assert_non_null(f);
    assert_slice(f->value, "1");
    assert_null(h1_find_header(r.headers, r.n_headers, "X-B"));

    struct h1_limits lim;
    h1_limits_default(&lim);
    assert_int_equal(lim.max_head, H1_DEFAULT_MAX_HEAD);
    assert_int_equal(lim.max_target, H1_DEFAULT_MAX_TARGET);
    assert_int_equal(lim.max_headers, H1_DEFAULT_MAX_HEADERS);
}

static void test_error_text(void **state)
{
    (void)state;
    assert_string_equal(h1_error_text(H1_ERR_TE_AND_CL),
                        "both Content-Length and Transfer-Encoding");
    /* every error has its own phrase (logs and 400 bodies tell them apart) */
    for (int a = H1_ERR_NONE; a <= H1_ERR_HOST; a++) {
        const char *ta = h1_error_text((enum h1_error)a);
        assert_non_null(ta);
        assert_true(strlen(ta) > 0);
        assert_string_not_equal(ta, "unknown error");
        for (int b = H1_ERR_NONE; b < a; b++)
            assert_string_not_equal(ta, h1_error_text((enum h1_error)b));
    }
    assert_string_equal(h1_error_text((enum h1_error)999), "unknown error");
}

/* ---- chunked decoder ---- */

struct decoded {
    int status; /* last status: DONE, ERROR, or NEED_MORE when input ran out */
    size_t end; /* offset where DONE or ERROR happened (len when NEED_MORE) */
    char body[1024];
    size_t body_len;
};

/*
 * Decodes in[0..len) delivered in pieces that end at cuts[0] < cuts[1] < ... (the last piece
 * ends at len), checking the decoder's promises on the way.
 */
static void decode_pieces(const char *in, size_t len, const size_t *cuts, size_t n_cuts,
                          const struct h1_chunked *proto, struct decoded *out)
{
    struct h1_chunked st = *proto;
    memset(out, 0, sizeof(*out));
    size_t off = 0;
    for (size_t k = 0; k <= n_cuts; k++) {
        size_t piece_end = k < n_cuts ? cuts[k] : len;
        while (off < piece_end) {
            /* each call sees an exact copy of the rest of its piece, for AddressSanitizer */
            size_t avail = piece_end - off;
            char *piece = exact_copy(in + off, avail);
            size_t used = SIZE_MAX;
            struct h1_slice data;
            int rc = h1_chunked_next(&st, piece, avail, &used, &data);
            assert_true(used <= avail);
            if (rc == H1_CHUNK_DATA) {
                assert_true(data.len > 0);
                assert_ptr_equal(data.p + data.len, piece + used);
                assert_true(out->body_len + data.len <= sizeof(out->body));
                memcpy(out->body + out->body_len, data.p, data.len);
                out->body_len += data.len;
            }
            free(piece);
            switch (rc) {
            case H1_CHUNK_DATA:
                off += used;
                break;
            case H1_CHUNK_NEED_MORE:
                assert_int_equal(used, avail);
                off += used;
                break;
            case H1_CHUNK_DONE:
            case H1_CHUNK_ERROR:
                out->status = rc;
                out->end = off + used;
                /* both are final */
                assert_int_equal(h1_chunked_next(&st, in, len, &used, &data), rc);
                assert_int_equal(used, 0);
                return;
            default:
                fail_msg("unexpected status %d", rc);
            }
        }
    }
    out->status = H1_CHUNK_NEED_MORE;
    out->end = len;
}

/* One-shot decoding equals byte-by-byte, every two-piece split and some random splits. */
static void check_split_invariance(const char *in, size_t len, const struct h1_chunked *proto,
                                   const struct decoded *whole)
{
    static size_t cuts[2048];
    struct decoded got;
    assert_true(len < sizeof(cuts) / sizeof(cuts[0]));

    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    decode_pieces(in, len, cuts, len > 0 ? len - 1 : 0, proto, &got);
    assert_int_equal(got.status, whole->status);
    assert_int_equal(got.end, whole->end);
    assert_memory_equal(got.body, whole->body, whole->body_len);
    assert_int_equal(got.body_len, whole->body_len);

    for (size_t cut = 1; cut < len; cut++) {
        decode_pieces(in, len, &cut, 1, proto, &got);
        assert_int_equal(got.status, whole->status);
        assert_int_equal(got.end, whole->end);
        assert_int_equal(got.body_len, whole->body_len);
        assert_memory_equal(got.body, whole->body, whole->body_len);
    }

    uint32_t seed = 12345;
    for (int round = 0; round < 50; round++) {
        size_t n = 0;
        for (size_t i = 1; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 16) % 4 == 0)
                cuts[n++] = i;
        }
        decode_pieces(in, len, cuts, n, proto, &got);
        assert_int_equal(got.status, whole->status);
        assert_int_equal(got.end, whole->end);
        assert_int_equal(got.body_len, whole->body_len);
        assert_memory_equal(got.body, whole->body, whole->body_len);
    }
}

static void check_chunked(const char *in, size_t len, const struct h1_chunked *proto, int status,
                          size_t end, const char *body, int line)
{
    struct decoded whole;
    decode_pieces(in, len, NULL, 0, proto, &whole);
    if (whole.status != status || whole.end != end)
        fail_msg("line %d: status %d at %zu, want %d at %zu", line, whole.status, whole.end, status,
                 end);
    if (body && (whole.body_len != strlen(body) || memcmp(whole.body, body, whole.body_len) != 0))
        fail_msg("line %d: body '%.*s', want '%s'", line, (int)whole.body_len, whole.body, body);
    check_split_invariance(in, len, proto, &whole);
}

static struct h1_chunked chunked_default(void)
{
    struct h1_chunked st;
    h1_chunked_init(&st);
    return st;
}

#define CHUNKED_OK(lit, body)                                                                      \
    do {                                                                                           \
        struct h1_chunked st_ = chunked_default();                                                 \
        check_chunked(lit, sizeof(lit) - 1, &st_, H1_CHUNK_DONE, sizeof(lit) - 1, body, __LINE__); \
    } while (0)
#define CHUNKED_ERROR(lit, pos)                                                                    \
    do {                                                                                           \
        struct h1_chunked st_ = chunked_default();                                                 \
        check_chunked(lit, sizeof(lit) - 1, &st_, H1_CHUNK_ERROR, pos, NULL, __LINE__);            \
    } while (0)

static void test_chunked_valid(void **state)
{
    (void)state;
    CHUNKED_OK("5\r\nhello\r\n0\r\n\r\n", "hello");
    CHUNKED_OK("0\r\n\r\n", "");
    CHUNKED_OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
    CHUNKED_OK("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij");
    CHUNKED_OK("0005\r\nhello\r\n000\r\n\r\n", "hello");
    CHUNKED_OK("5;name=value;flag;q=\"a \\\"b\\\" c\"\r\nhello\r\n0;last\r\n\r\n", "hello");
    CHUNKED_OK("5; a = b ;c\r\nhello\r\n0\r\n\r\n", "hello");
    CHUNKED_OK("5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n", "hello");
    CHUNKED_OK("5;a  ;b=\"\";c=\"q\";d=e  \t ;f\r\nhello\r\n0\r\n\r\n", "hello");
    CHUNKED_OK("5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Empty:\r\nX-Obs: \xc3\xa9\r\n\r\n", "hello");
    CHUNKED_OK("3\r\n\r\n\n\r\n0\r\n\r\n", "\r\n\n"); /* data is data */
}

static void test_chunked_stops_at_end(void **state)
{
    (void)state;
    static const char in[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    struct h1_chunked st = chunked_default();
    check_chunked(in, sizeof(in) - 1, &st, H1_CHUNK_DONE, at(in, "GET"), "abc", __LINE__);

    static const char partial[] = "5\r\nhel";
    check_chunked(partial, sizeof(partial) - 1, &st, H1_CHUNK_NEED_MORE, sizeof(partial) - 1, "hel",
                  __LINE__);

    /* data spans point into the input and are as long as the input allows */
    struct h1_chunked d = chunked_default();
    size_t used;
    struct h1_slice data;
    static const char big[] = "10\r\n0123456789abcdef\r\n";
    assert_int_equal(h1_chunked_next(&d, big, sizeof(big) - 1, &used, &data), H1_CHUNK_DATA);
    assert_ptr_equal(data.p, big + 4);
    assert_int_equal(data.len, 16);
    assert_int_equal(used, 20);
    assert_int_equal(h1_chunked_next(&d, big + used, sizeof(big) - 1 - used, &used, &data),
                     H1_CHUNK_NEED_MORE);
    assert_int_equal(used, 2);
}

static void test_chunked_size_refusals(void **state)
{
    (void)state;
    CHUNKED_ERROR("\r\nhello\r\n", 0);
    CHUNKED_ERROR("0x5\r\nhello\r\n", 1);
    CHUNKED_ERROR(" 5\r\nhello\r\n", 0);
    CHUNKED_ERROR("5 \r\nhello\r\n", 1);
    CHUNKED_ERROR("5 ;ext\r\nhello\r\n", 1);
    CHUNKED_ERROR("+5\r\nhello\r\n", 0);
    CHUNKED_ERROR("-5\r\nhello\r\n", 0);
    CHUNKED_ERROR("g\r\n", 0);
    CHUNKED_ERROR("5g\r\n", 1);
    CHUNKED_ERROR("5\nhello\r\n", 1);
    CHUNKED_ERROR("5\rhello\r\n", 2);
    /* 2^63 - 1 is the largest size; 2^63 overflows */
    struct h1_chunked st = chunked_default();
    check_chunked("7fffffffffffffff\r\nab", 20, &st, H1_CHUNK_NEED_MORE, 20, "ab", __LINE__);
    CHUNKED_ERROR("8000000000000000\r\n", 15);
    CHUNKED_ERROR("ffffffffffffffffff\r\n", 15);
    static const char zeros[] = "00000000000000000000000000000001\r\nx\r\n0\r\n\r\nX";
    check_chunked(zeros, sizeof(zeros) - 1, &st, H1_CHUNK_DONE, sizeof(zeros) - 2, "x", __LINE__);
}

static void test_chunked_ext_refusals(void **state)
{
    (void)state;
    CHUNKED_ERROR("5;\r\nhello\r\n", 2);
    CHUNKED_ERROR("5;=x\r\nhello\r\n", 2);
    CHUNKED_ERROR("5;a=\r\nhello\r\n", 4);
    CHUNKED_ERROR("5;a \r\nhello\r\n", 4);
    CHUNKED_ERROR("5;a=b \r\nhello\r\n", 6);
    CHUNKED_ERROR("5;a=\"x\r\nhello\r\n", 6);
    CHUNKED_ERROR("5;a=\"x\"y\r\nhello\r\n", 7);
    CHUNKED_ERROR("5;a\nhello\r\n", 3);
    CHUNKED_ERROR("5;a=b\nhello\r\n", 5);
    CHUNKED_ERROR("5;a\x01\r\nhello\r\n", 3);
    CHUNKED_ERROR("5;a=\"\x7f\"\r\nhello\r\n", 5);
    CHUNKED_ERROR("5;a=\"\\\x01\"\r\nhello\r\n", 6);
}

static void test_chunked_data_refusals(void **state)
{
    (void)state;
    CHUNKED_ERROR("5\r\nhelloX\r\n0\r\n\r\n", 8);
    CHUNKED_ERROR("5\r\nhello\n0\r\n\r\n", 8);
    CHUNKED_ERROR("5\r\nhello\rX0\r\n\r\n", 9);
    CHUNKED_ERROR("5\r\nhello world\r\n", 8);
    CHUNKED_ERROR("5\r\nhel\r\n0\r\n\r\n", 8);
}

static void test_chunked_trailer_refusals(void **state)
{
    (void)state;
    CHUNKED_ERROR("0\r\nX: a\r\n b\r\n\r\n", 9);
    CHUNKED_ERROR("0\r\nX : a\r\n\r\n", 4);
    CHUNKED_ERROR("0\r\n: a\r\n\r\n", 3);
    CHUNKED_ERROR("0\r\nX: a\nY: b\r\n\r\n", 7);
    CHUNKED_ERROR("0\r\nX: a\0\r\n\r\n", 7);
    CHUNKED_ERROR("0\r\nX: a\r\n\n", 9);
    CHUNKED_ERROR("0\r\n\rX", 4);
    CHUNKED_ERROR("0\r\n\n", 3);
    CHUNKED_ERROR("0\r\nX: a\rY", 8);
}

static void test_chunked_limits(void **state)
{
    (void)state;
    struct h1_chunked st = chunked_default();
    st.max_line = 8;
    /* the line limit counts the bytes before CRLF, extensions included */
    static const char ok[] = "5;a=bcde\r\nhello\r\n0\r\n\r\n";
    check_chunked(ok, sizeof(ok) - 1, &st, H1_CHUNK_DONE, sizeof(ok) - 1, "hello", __LINE__);
    static const char long_ext[] = "5;a=bcdef\r\nhello\r\n0\r\n\r\n";
    check_chunked(long_ext, sizeof(long_ext) - 1, &st, H1_CHUNK_ERROR, 8, NULL, __LINE__);
    static const char zeros[] = "000000005\r\nhello\r\n0\r\n\r\n";
    check_chunked(zeros, sizeof(zeros) - 1, &st, H1_CHUNK_ERROR, 8, NULL, __LINE__);
    static const char trailer[] = "0\r\nX: 123456\r\n\r\n";
    check_chunked(trailer, sizeof(trailer) - 1, &st, H1_CHUNK_ERROR, 11, NULL, __LINE__);

    /* the trailer section limit counts every byte after the last-chunk line */
    st = chunked_default();
    st.max_trailers = 12;
    static const char t12[] = "0\r\nA: 1\r\nB: 2\r\n\r\n";
    check_chunked(t12, sizeof(t12) - 1, &st, H1_CHUNK_ERROR, 15, NULL, __LINE__);
    st.max_trailers = 14;
    check_chunked(t12, sizeof(t12) - 1, &st, H1_CHUNK_DONE, sizeof(t12) - 1, "", __LINE__);

    /* the default line limit */
    static char big[H1_CHUNKED_DEFAULT_MAX_LINE + 16];
    memset(big, '0', sizeof(big));
    st = chunked_default();
    size_t used;
    struct h1_slice data;
    assert_int_equal(h1_chunked_next(&st, big, H1_CHUNKED_DEFAULT_MAX_LINE, &used, &data),
                     H1_CHUNK_NEED_MORE);
    assert_int_equal(h1_chunked_next(&st, big, 1, &used, &data), H1_CHUNK_ERROR);
    assert_int_equal(used, 0);
}

/* the framing the request parser announces is what the decoder then reads */
static void test_request_then_chunked_body(void **state)
{
    (void)state;
    static const char msg[] = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nExpires: never\r\n\r\n"
                              "GET /next HTTP/1.1\r\n";
    struct h1_request r;
    assert_int_equal(PARSE_REQ(msg, &r), H1_COMPLETE);
    assert_int_equal(r.body, H1_BODY_CHUNKED);
    struct h1_chunked st = chunked_default();
    const char *body = msg + r.head_len;
    size_t len = sizeof(msg) - 1 - r.head_len;
    check_chunked(body, len, &st, H1_CHUNK_DONE, at(body, "GET /next"), "Wikipedia", __LINE__);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_get_with_host),
            cmocka_unit_test(test_pipelined_bytes_after_head),
            cmocka_unit_test(test_post_content_length),
            cmocka_unit_test(test_content_length_forms),
            cmocka_unit_test(test_chunked_post),
            cmocka_unit_test(test_absolute_form),
            cmocka_unit_test(test_options_asterisk),
            cmocka_unit_test(test_connect_authority_form),
            cmocka_unit_test(test_http10),
            cmocka_unit_test(test_connection_tokens),
            cmocka_unit_test(test_expect_continue),
            cmocka_unit_test(test_header_values),
            cmocka_unit_test(test_methods_and_targets),
            cmocka_unit_test(test_host_values),
            cmocka_unit_test(test_leading_empty_lines),
            cmocka_unit_test(test_every_prefix_incomplete),
            cmocka_unit_test(test_te_and_cl),
            cmocka_unit_test(test_content_length_refusals),
            cmocka_unit_test(test_transfer_encoding_refusals),
            cmocka_unit_test(test_line_endings),
            cmocka_unit_test(test_obs_fold),
            cmocka_unit_test(test_header_name_refusals),
            cmocka_unit_test(test_header_value_refusals),
            cmocka_unit_test(test_limits),
            cmocka_unit_test(test_default_head_limit),
            cmocka_unit_test(test_target_refusals),
            cmocka_unit_test(test_version_refusals),
            cmocka_unit_test(test_method_refusals),
            cmocka_unit_test(test_host_refusals),
            cmocka_unit_test(test_response_basic),
            cmocka_unit_test(test_response_empty_reason),
            cmocka_unit_test(test_response_no_body),
            cmocka_unit_test(test_response_close_delimited),
            cmocka_unit_test(test_response_keep_alive),
            cmocka_unit_test(test_response_chunked),
            cmocka_unit_test(test_response_refusals),
            cmocka_unit_test(test_helpers),
            cmocka_unit_test(test_error_text),
            cmocka_unit_test(test_chunked_valid),
            cmocka_unit_test(test_chunked_stops_at_end),
            cmocka_unit_test(test_chunked_size_refusals),
            cmocka_unit_test(test_chunked_ext_refusals),
            cmocka_unit_test(test_chunked_data_refusals),
            cmocka_unit_test(test_chunked_trailer_refusals),
            cmocka_unit_test(test_chunked_limits),
            cmocka_unit_test(test_request_then_chunked_body),
    };
    return cmocka_run_group_tests_name("h1", tests, NULL, NULL);
}
