#include "diagnose/status_match.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void status_match_default(struct status_match *m)
{
    m->n = 1;
    m->ranges[0].lo = 200;
    m->ranges[0].hi = 399;
}

static int parse_code(const char **p, const char *end, int *out)
{
    int v = 0, digits = 0;
    while (*p < end && isdigit((unsigned char)**p) && digits < 4) {
        v = v * 10 + (**p - '0');
        (*p)++;
        digits++;
    }
    if (digits != 3 || v < 100 || v > 599)
        return -1;
    *out = v;
    return 0;
}

int status_match_add(struct status_match *m, const char *text, char *err, size_t errlen)
{
    const char *p = text;
    if (!*p) {
        snprintf(err, errlen, "empty status list (expected e.g. 200-399,401)");
        return -1;
    }
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *q = p;
        while (q < end && *q == ' ')
            q++;
        int lo, hi;
        if (parse_code(&q, end, &lo) != 0)
            goto bad;
        hi = lo;
        if (q < end && *q == '-') {
            q++;
            if (parse_code(&q, end, &hi) != 0 || hi < lo)
                goto bad;
        }
        while (q < end && *q == ' ')
            q++;
        if (q != end)
            goto bad;
        if (m->n >= STATUS_MATCH_MAX_RANGES) {
            snprintf(err, errlen, "more than %d status ranges", STATUS_MATCH_MAX_RANGES);
            return -1;
        }
        m->ranges[m->n].lo = lo;
        m->ranges[m->n].hi = hi;
        m->n++;
        if (*end && !end[1]) {
            snprintf(err, errlen, "'%s' ends with a comma (expected e.g. 200-399,401)", text);
            return -1;
        }
        p = *end ? end + 1 : end;
        continue;
    bad:
        snprintf(err, errlen,
                 "'%.*s' is not a status code or range (expected e.g. 200-399,401; "
                 "codes 100-599)",
                 (int)(end - p), p);
        return -1;
    }
    return 0;
}

bool status_match_accepts(const struct status_match *m, int status)
{
    for (size_t i = 0; i < m->n; i++)
        if (status >= m->ranges[i].lo && status <= m->ranges[i].hi)
            return true;
    return false;
}

const char *status_match_format(const struct status_match *m, char *buf, size_t size)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < m->n && pos < size; i++) {
        int n;
        if (m->ranges[i].lo == m->ranges[i].hi)
            n = snprintf(buf + pos, size - pos, "%s%d", i ? "," : "", m->ranges[i].lo);
        else
            n = snprintf(buf + pos, size - pos, "%s%d-%d", i ? "," : "", m->ranges[i].lo,
                         m->ranges[i].hi);
        if (n < 0)
            break;
        pos += (size_t)n;
    }
    return buf;
}
