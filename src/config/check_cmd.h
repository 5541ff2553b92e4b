#ifndef GATEHOUSE_CONFIG_CHECK_CMD_H
#define GATEHOUSE_CONFIG_CHECK_CMD_H

/*
 * `gatehouse check -c FILE [--json]`: validates a config. Exit 0 valid (a summary on stdout),
 * 1 invalid (every error on stderr, `file:line:col: key: reason`), 2 usage or input error.
 */
int check_cmd_main(int argc, char **argv);

#endif
