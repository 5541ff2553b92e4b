#ifndef GATEHOUSE_DIAGNOSE_PROBE_CMD_H
#define GATEHOUSE_DIAGNOSE_PROBE_CMD_H

/* `gatehouse probe URL [options]`: exit 0 healthy, 1 unhealthy, 2 usage or input error. */
int probe_cmd_main(int argc, char **argv);

#endif
