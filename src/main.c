/* warren: one program, a table of subcommands. */
#include <stdio.h>
#include <string.h>

#include "app/commands.h"
#include "app/config.h"
#include "version.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;
	const char *summary;
};

static const struct command commands[] = {
    {"help", cmd_help, "[COMMAND]", "show this help, or a command's"},
    {"version", cmd_version, "", "print the version"},
    {"genkey", wn_cmd_genkey, "> FILE", "write a new private key"},
    {"pubkey", wn_cmd_pubkey, "< FILE",
     "print the public key of a private key"},
    {"check", wn_cmd_check, "-c FILE [--role server|client] [FLAGS]",
     "validate a configuration and report every problem"},
    {"server", wn_cmd_server, "[-c FILE] [FLAGS]",
     "run a server (flags: warren help check)"},
    {"client", wn_cmd_client,
     "[-c FILE] [FLAGS] [-L LISTEN=TARGET] [-U LISTEN=TARGET]",
     "run a client (flags: warren help check)"},
    {"demo", wn_cmd_demo, "[--mib N]",
     "server + client on loopback, data through a forward, summary"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "warren %s: carries TCP streams, UDP datagrams and IP packets "
	        "through hostile networks\n\n"
	        "usage: warren COMMAND [ARGS]\n\ncommands:\n",
	        WN_VERSION);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-8s %-40s %s\n", commands[i].name,
		        commands[i].args, commands[i].summary);
	fprintf(out, "\nplanned: status (see README.md)\n"
	             "`warren help check` lists the configuration keys; "
	             "`man warren` has the rest.\n");
}

static int cmd_help(int argc, char **argv)
{
	if (argc == 0) {
		usage(stdout);
		return 0;
	}
	const struct command *c = find(argv[0]);
	if (!c) {
		fprintf(stderr, "warren: no command \"%s\"\n", argv[0]);
		return 2;
	}
	printf("usage: warren %s %s\n  %s\n", c->name, c->args, c->summary);
	if (strcmp(c->name, "check") == 0) {
		char buf[4096];
		wn_config_describe(WN_ROLE_SERVER, buf, sizeof(buf));
		printf("\n[server] keys (also flags with --role server):\n%s",
		       buf);
		wn_config_describe(WN_ROLE_CLIENT, buf, sizeof(buf));
		printf("\n[client] keys (also flags with --role client):\n%s",
		       buf);
		printf("\n[forward NAME] keys: listen = [tcp://]HOST:PORT or "
		       "unix:PATH, target = HOST:PORT or unix:PATH\n");
		printf("\n[socks5 NAME] keys: listen = [tcp://]HOST:PORT or "
		       "unix:PATH, eager = yes|no (default yes), user = "
		       "NAME:PASSWORD (repeatable), users-file = FILE\n");
	}
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("warren %s\n", WN_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0)
		name = "help";
	else if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0)
		name = "version";
	const struct command *c = find(name);
	if (!c) {
		fprintf(stderr,
		        "warren: unknown command \"%s\" (try `warren help`)\n",
		        argv[1]);
		return 2;
	}
	return c->run(argc - 2, argv + 2);
}
