#ifndef GATEHOUSE_DEMO_DEMO_H
#define GATEHOUSE_DEMO_DEMO_H

/*
 * `gatehouse demo`: zero-setup demonstration. Makes a private PKI, starts in-process HTTPS
 * backends that reproduce the seed situations, runs the real gateway (and prober, and admin
 * listener) in front of them, prints the health table, the curl commands to try and the
 * dashboard URL, and cleans up on Ctrl-C.
 */
int demo_cmd_main(int argc, char **argv);

#endif
