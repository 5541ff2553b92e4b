#include "core/clock.h"

#include <stdlib.h>

uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double clock_ms_between(uint64_t start_ns, uint64_t end_ns)
{
    if (end_ns <= start_ns)
        return 0.0;
    return (double)(end_ns - start_ns) / 1e6;
}

time_t clock_wall_now(void)
{
    const char *fixed = getenv("GATEHOUSE_NOW");
    if (fixed && *fixed) {
        char *end;
        long long v = strtoll(fixed, &end, 10);
        if (*end == '\0')
            return (time_t)v;
    }
    return time(NULL);
}

const char *clock_rfc3339(time_t t, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    if (strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && size > 0)
        buf[0] = '\0';
    return buf;
}
