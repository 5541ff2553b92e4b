/*
 * report: renders a probe result -- as one JSON object (probe --json, the admin API) or as the
 * human report a person reads after a 502. Both show the same facts: the effective policy, the
 * chain as sent, the verdict, the cause and the fix.
 */
#ifndef GATEHOUSE_DIAGNOSE_REPORT_H
#define GATEHOUSE_DIAGNOSE_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "diagnose/probe.h"

/* A new JSON object (caller decrefs); NULL when out of memory. */
json_t *report_json(const struct probe_spec *spec, const struct probe_result *result);

/* The human report; <colour> adds ANSI colours (only ever for a terminal). */
void report_text(FILE *out, const struct probe_spec *spec, const struct probe_result *result,
                 bool colour);

#endif
