/* status_match: the accepted HTTP status set of a probe ("200-399", "200-399,401"). */
#ifndef GATEHOUSE_DIAGNOSE_STATUS_MATCH_H
#define GATEHOUSE_DIAGNOSE_STATUS_MATCH_H

#include <stdbool.h>
#include <stddef.h>

#define STATUS_MATCH_MAX_RANGES 32

struct status_match {
    struct {
        int lo, hi;
    } ranges[STATUS_MATCH_MAX_RANGES];
    size_t n;
};

/* The modelled gateway's default: 200-399. */
void status_match_default(struct status_match *m);

/*
 * Adds the ranges of <text>: comma-separated codes or lo-hi ranges, 100..599. Returns 0, or -1
 * and a sentence in err naming the bad part.
 */
int status_match_add(struct status_match *m, const char *text, char *err, size_t errlen);

bool status_match_accepts(const struct status_match *m, int status);

/* "200-399,401" into buf. */
const char *status_match_format(const struct status_match *m, char *buf, size_t size);

#endif
