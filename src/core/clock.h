/* clock: monotonic and wall time helpers. */
#ifndef GATEHOUSE_CORE_CLOCK_H
#define GATEHOUSE_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic time in nanoseconds (for durations; never goes backwards). */
uint64_t clock_mono_ns(void);

/* Milliseconds between two clock_mono_ns() readings, as a double. */
double clock_ms_between(uint64_t start_ns, uint64_t end_ns);

/* Current wall-clock time, overridable by GATEHOUSE_NOW (unix seconds) for reproducible tests. */
time_t clock_wall_now(void);

/* Formats a wall time as RFC 3339 UTC ("2026-11-23T13:16:51Z") into buf (>= 21 bytes). */
const char *clock_rfc3339(time_t t, char *buf, size_t size);

#endif
