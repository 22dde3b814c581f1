/* warren-cutproxy's command line: the options and their parser.
 *
 * The semantics of each option are in the usage text in options.c and in
 * docs; struct opts holds them parsed, with defaults filled in. */
#ifndef CUTPROXY_OPTIONS_H
#define CUTPROXY_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROG "warren-cutproxy"

enum cut_mode { CUT_RST, CUT_FIN };

/* Which sockets a cut closes (--cut-side). */
enum { CUT_CLIENT = 1, CUT_TARGET = 2 };

struct opts {
	struct sockaddr_storage listen; /* port 0: ephemeral */
	struct sockaddr_storage target;
	uint64_t cut_ms;       /* 0: never cut */
	uint64_t jitter_ms;    /* uniform extra in [0, jitter_ms] */
	uint64_t fin_grace_ms; /* fin mode: time allowed for the close */
	uint64_t seed;
	bool seed_set;
	enum cut_mode mode;
	unsigned cut_sides; /* CUT_CLIENT | CUT_TARGET */
	unsigned max_conns; /* 0: unlimited */
	/* Borrowed from argv. */
	const char *ready_file;
	const char *stats_file;
	const char *refuse_file;
	const char *blackhole_file;
};

/* Parses the command line into o (defaults first). Prints usage to stdout
 * and exits 0 for --help; prints an error to stderr and exits 2 for any
 * invalid or missing argument. */
void cp_parse_args(int argc, char **argv, struct opts *o);

#endif
