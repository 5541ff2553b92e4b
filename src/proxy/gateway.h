/*
 * gateway: a whole running gateway -- config, runtime, workers, prober, admin listener -- started
 * and stopped as one. `gatehouse run` and `gatehouse demo` both use it, so the demo runs exactly
 * the production code.
 */
#ifndef GATEHOUSE_PROXY_GATEWAY_H
#define GATEHOUSE_PROXY_GATEWAY_H

#include <stdio.h>

struct gateway;
struct prober;

/*
 * Loads and validates <config_path> (printing every problem to <diag>), builds the runtime and
 * starts everything. <workers> 0 = the config's (or one per core). <previous> (a reload) lends
 * its backends' health to the new generation. NULL on failure, after printing why; nothing is
 * left running.
 */
struct gateway *gateway_start(const char *config_path, unsigned workers, FILE *diag,
                              const struct gateway *previous);

struct prober *gateway_prober(struct gateway *gw);

/* Stops accepting, lets in-flight requests finish (up to <grace_s>), stops and frees all. */
void gateway_stop(struct gateway *gw, double grace_s);

/* `gatehouse run -c FILE`: serves until SIGTERM or SIGINT, then drains and exits 0. */
int gateway_cmd_main(int argc, char **argv);

#endif
