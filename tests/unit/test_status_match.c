/*
 * Unit tests for src/diagnose/status_match.c: the probe's accepted status set ("200-399,401").
 * Accepted lists are checked range by range and through status_match_accepts at every boundary;
 * refused ones for the error sentence, which must quote the bad part.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "diagnose/status_match.h"

/* Adds <text> to an empty set; it must be accepted and format back as <formatted>. */
static void check_ok(const char *text, const char *formatted, size_t n_ranges, int line)
{
    struct status_match m = {0};
    char err[256] = "", buf[512];
    if (status_match_add(&m, text, err, sizeof err) != 0)
        fail_msg("line %d: '%s' refused: %s", line, text, err);
    if (m.n != n_ranges)
        fail_msg("line %d: '%s' gave %zu ranges, want %zu", line, text, m.n, n_ranges);
    status_match_format(&m, buf, sizeof buf);
    if (strcmp(buf, formatted) != 0)
        fail_msg("line %d: '%s' formats as '%s', want '%s'", line, text, buf, formatted);
}

#define SM_OK(text, formatted, n) check_ok(text, formatted, n, __LINE__)

/* <text> must be refused, with an error containing <needle>. */
static void check_error(const char *text, const char *needle, int line)
{
    struct status_match m = {0};
    char err[256] = "";
    if (status_match_add(&m, text, err, sizeof err) != -1) {
        char buf[512];
        fail_msg("line %d: '%s' accepted as '%s'", line, text,
                 status_match_format(&m, buf, sizeof buf));
    }
    if (err[0] == '\0')
        fail_msg("line %d: '%s' refused without an error sentence", line, text);
    if (needle && !strstr(err, needle))
        fail_msg("line %d: '%s': error \"%s\" does not mention \"%s\"", line, text, err, needle);
}

#define SM_ERR(text, needle) check_error(text, needle, __LINE__)

static void test_default(void **state)
{
    (void)state;
    struct status_match m;
    memset(&m, 0x5a, sizeof m);
    status_match_default(&m);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.ranges[0].lo, 200);
    assert_int_equal(m.ranges[0].hi, 399);
    assert_false(status_match_accepts(&m, 199));
    assert_true(status_match_accepts(&m, 200));
    assert_true(status_match_accepts(&m, 302));
    assert_true(status_match_accepts(&m, 399));
    assert_false(status_match_accepts(&m, 400));
    assert_false(status_match_accepts(&m, 500));
    char buf[64];
    assert_string_equal(status_match_format(&m, buf, sizeof buf), "200-399");
}

static void test_range(void **state)
{
    (void)state;
    struct status_match m = {0};
    char err[256];
    assert_int_equal(status_match_add(&m, "200-399", err, sizeof err), 0);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.ranges[0].lo, 200);
    assert_int_equal(m.ranges[0].hi, 399);
    assert_false(status_match_accepts(&m, 199));
    assert_true(status_match_accepts(&m, 200));
    assert_true(status_match_accepts(&m, 399));
    assert_false(status_match_accepts(&m, 400));
}

static void test_range_and_code(void **state)
{
    (void)state;
    struct status_match m = {0};
    char err[256], buf[64];
    assert_int_equal(status_match_add(&m, "200-399,401", err, sizeof err), 0);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.ranges[0].lo, 200);
    assert_int_equal(m.ranges[0].hi, 399);
    assert_int_equal(m.ranges[1].lo, 401);
    assert_int_equal(m.ranges[1].hi, 401);
    assert_true(status_match_accepts(&m, 250));
    assert_false(status_match_accepts(&m, 400));
    assert_true(status_match_accepts(&m, 401));
    assert_false(status_match_accepts(&m, 402));
    assert_false(status_match_accepts(&m, 0));
    assert_false(status_match_accepts(&m, -1));
    assert_string_equal(status_match_format(&m, buf, sizeof buf), "200-399,401");
}

static void test_single_codes(void **state)
{
    (void)state;
    SM_OK("200", "200", 1);
    SM_OK("100", "100", 1);
    SM_OK("599", "599", 1);
    SM_OK("100-599", "100-599", 1);
    SM_OK("404,200", "404,200", 2);
    SM_OK("301-301", "301", 1);

    struct status_match m = {0};
    char err[256];
    assert_int_equal(status_match_add(&m, "204", err, sizeof err), 0);
    assert_false(status_match_accepts(&m, 200));
    assert_true(status_match_accepts(&m, 204));
    assert_false(status_match_accepts(&m, 205));
}

static void test_spaces(void **state)
{
    (void)state;
    SM_OK("200-399, 401", "200-399,401", 2);
    SM_OK(" 200 , 404 ", "200,404", 2);
    SM_OK("200-399 ,401", "200-399,401", 2);
    SM_OK("  418", "418", 1);
}

static void test_add_appends(void **state)
{
    (void)state;
    struct status_match m;
    char err[256], buf[64];
    status_match_default(&m);
    assert_int_equal(status_match_add(&m, "401", err, sizeof err), 0);
    assert_int_equal(status_match_add(&m, "500-503", err, sizeof err), 0);
    assert_int_equal(m.n, 3);
    assert_string_equal(status_match_format(&m, buf, sizeof buf), "200-399,401,500-503");
    assert_true(status_match_accepts(&m, 503));
    assert_false(status_match_accepts(&m, 504));
    assert_false(status_match_accepts(&m, 499));
}

static void test_invalid(void **state)
{
    (void)state;
    SM_ERR("abc", "'abc'");
    SM_ERR("99", "'99'");
    SM_ERR("099", "'099'");
    SM_ERR("600", "'600'");
    SM_ERR("1000", "'1000'");
    SM_ERR("2000-3000", "'2000-3000'");
    SM_ERR("399-200", "'399-200'");
    SM_ERR("", "empty");
    SM_ERR("200-", "'200-'");
    SM_ERR("-399", "'-399'");
    SM_ERR("200-600", "'200-600'");
    SM_ERR("200--399", "'200--399'");
    SM_ERR("200x", "'200x'");
    SM_ERR("2 00", "'2 00'");
    SM_ERR("200-399,abc", "'abc'");
    SM_ERR(",200", NULL);
    SM_ERR("200,,300", NULL);
    SM_ERR(" ", NULL);
}

/* An empty item after the last comma is as much an empty item as ",200" or "200,,300". */
static void test_trailing_comma(void **state)
{
    (void)state;
    SM_ERR("200-399,", NULL);
    SM_ERR("200,", NULL);
}

static void test_max_ranges(void **state)
{
    (void)state;
    char text[512] = "";
    for (int i = 0; i < STATUS_MATCH_MAX_RANGES; i++) {
        char code[8];
        snprintf(code, sizeof code, "%s%d", i ? "," : "", 200 + 2 * i);
        strcat(text, code);
    }
    struct status_match m = {0};
    char err[256];
    assert_int_equal(status_match_add(&m, text, err, sizeof err), 0);
    assert_int_equal(m.n, STATUS_MATCH_MAX_RANGES);
    assert_true(status_match_accepts(&m, 200 + 2 * (STATUS_MATCH_MAX_RANGES - 1)));
    assert_false(status_match_accepts(&m, 201));

    /* one more */
    strcat(text, ",500");
    struct status_match m2 = {0};
    err[0] = '\0';
    assert_int_equal(status_match_add(&m2, text, err, sizeof err), -1);
    char want[64];
    snprintf(want, sizeof want, "more than %d", STATUS_MATCH_MAX_RANGES);
    assert_non_null(strstr(err, want));

    /* a full set refuses any addition */
    err[0] = '\0';
    assert_int_equal(status_match_add(&m, "500", err, sizeof err), -1);
    assert_int_equal(m.n, STATUS_MATCH_MAX_RANGES);
    assert_non_null(strstr(err, want));
}

static void test_format_small_buffer(void **state)
{
    (void)state;
    struct status_match m = {0};
    char err[256];
    assert_int_equal(status_match_add(&m, "200-399,401,500-599", err, sizeof err), 0);
    char buf[12];
    memset(buf, 'Z', sizeof buf);
    status_match_format(&m, buf, 10);
    assert_non_null(memchr(buf, '\0', 10));
    assert_string_equal(buf, "200-399,4");
    assert_int_equal(buf[10], 'Z');
    struct status_match empty = {0};
    assert_string_equal(status_match_format(&empty, buf, sizeof buf), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_default),        cmocka_unit_test(test_range),
            cmocka_unit_test(test_range_and_code), cmocka_unit_test(test_single_codes),
            cmocka_unit_test(test_spaces),         cmocka_unit_test(test_add_appends),
            cmocka_unit_test(test_invalid),        cmocka_unit_test(test_trailing_comma),
            cmocka_unit_test(test_max_ranges),     cmocka_unit_test(test_format_small_buffer),
    };
    return cmocka_run_group_tests_name("status_match", tests, NULL, NULL);
}
