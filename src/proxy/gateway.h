#ifndef GATEHOUSE_PROXY_GATEWAY_H
#define GATEHOUSE_PROXY_GATEWAY_H

/*
 * `gatehouse run -c FILE`: loads and validates the config (refusing an invalid one, starting
 * nothing), builds the runtime, starts the workers and serves until SIGTERM or SIGINT, then
 * drains in-flight requests and exits 0.
 */
int gateway_cmd_main(int argc, char **argv);

#endif
