/* The subcommands of `warren`, dispatched from the table in main.c. Each
 * takes the arguments after its name and returns the process exit code:
 * 0 success, 1 failure (with a message on stderr), 2 usage error. */
#ifndef WN_APP_COMMANDS_H
#define WN_APP_COMMANDS_H

int wn_cmd_genkey(int argc, char **argv);
int wn_cmd_pubkey(int argc, char **argv);
int wn_cmd_check(int argc, char **argv);
int wn_cmd_server(int argc, char **argv);
int wn_cmd_client(int argc, char **argv);
int wn_cmd_demo(int argc, char **argv);

#endif
