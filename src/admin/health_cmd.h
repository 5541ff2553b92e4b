#ifndef GATEHOUSE_ADMIN_HEALTH_CMD_H
#define GATEHOUSE_ADMIN_HEALTH_CMD_H

/*
 * `gatehouse health [--admin URL] [--json]`: the running gateway's backend health as a table
 * (pool, settings, server, health, code, one-line cause). Exit 0 when no server is unhealthy,
 * 1 when one is, 2 when the admin API cannot be reached or answers nonsense.
 */
int health_cmd_main(int argc, char **argv);

/* Prints the table for a /backend-health document; returns the number of unhealthy servers. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
int health_print_table(FILE *out, json_t *doc, bool colour);

#endif
