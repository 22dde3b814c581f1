/* warren-cutproxy's command line (see options.h). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <uv.h>

#include "options.h"

static const char usage_text[] =
    "usage: " PROG " --listen HOST:PORT --target HOST:PORT [options]\n"
    "\n"
    "Relays each accepted TCP connection to the target and cuts it after a\n"
    "set time. HOST is a numeric IPv4 address or a bracketed IPv6 address;\n"
    "--listen port 0 picks a free port. DURATION is 0 or a number with a\n"
    "unit ms, s or m (500ms, 2s, 1.5s), at 1 ms resolution.\n"
    "\n"
    "  --cut-after DURATION   cut each connection this long after it is\n"
    "                         accepted (default 0: never)\n"
    "  --cut-jitter DURATION  add a uniform random [0, DURATION] to each\n"
    "                         connection's cut time (default 0)\n"
    "  --seed N               seed for the jitter (default: from the clock;\n"
    "                         logged at start)\n"
    "  --mode rst|fin         rst: close with SO_LINGER 0, the peers see a\n"
    "                         reset; fin: flush, send FIN, wait for the\n"
    "                         peer's FIN (default rst)\n"
    "  --fin-grace DURATION   fin mode: close a side anyway this long after\n"
    "                         the cut (default 1s)\n"
    "  --cut-side both|client|target\n"
    "                         the sockets a cut closes; any other is left\n"
    "                         open and silent until its peer closes it\n"
    "                         (default both)\n"
    "  --max-conns N          reset new connections while N are open\n"
    "                         (default 0: no limit)\n"
    "  --refuse-file PATH     while PATH exists, reset new connections\n"
    "  --blackhole-file PATH  while PATH exists, relay nothing: stop reading\n"
    "                         every socket, close none (checked every 50 ms)\n"
    "  --ready-file PATH      write the bound HOST:PORT there once listening\n"
    "  --stats-file PATH      write counters there as JSON on SIGUSR1 and at\n"
    "                         exit (SIGTERM, SIGINT)\n"
    "  --help                 show this and exit\n";

static void die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2))) __attribute__((noreturn));

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(" PROG " --help for usage)\n", stderr);
	exit(2);
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Parses "0" or DIGITS[.DIGITS](ms|s|m) into whole milliseconds. Returns
 * false if malformed, finer than 1 ms, or above ~11 days. */
static bool parse_duration(const char *s, uint64_t *out_ms)
{
	const uint64_t max_whole = 1000000000;
	uint64_t whole = 0, frac = 0, scale = 1, unit_us, us;
	const char *p = s;

	if (!is_digit(*p))
		return false;
	for (; is_digit(*p); p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > max_whole)
			return false;
	}
	if (*p == '.') {
		if (!is_digit(*++p))
			return false;
		for (; is_digit(*p); p++) {
			if (scale == 1000000)
				return false;
			frac = frac * 10 + (uint64_t)(*p - '0');
			scale *= 10;
		}
	}
	if (strcmp(p, "ms") == 0)
		unit_us = 1000;
	else if (strcmp(p, "s") == 0)
		unit_us = 1000000;
	else if (strcmp(p, "m") == 0)
		unit_us = 60000000;
	else if (*p == '\0' && whole == 0 && frac == 0)
		unit_us = 1000;
	else
		return false;
	us = whole * unit_us + frac * unit_us / scale;
	if (frac * unit_us % scale != 0 || us % 1000 != 0 ||
	    us / 1000 > max_whole)
		return false;
	*out_ms = us / 1000;
	return true;
}

static void duration_arg(const char *name, const char *arg, uint64_t *out)
{
	if (!parse_duration(arg, out))
		die_usage("--%s: invalid duration '%s' (want 0 or e.g. 500ms, "
		          "2s, 1.5s, 1m)",
		          name, arg);
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!is_digit(*s))
		return false;
	for (; is_digit(*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (*s != '\0')
		return false;
	*out = v;
	return true;
}

/* Parses "A.B.C.D:PORT" or "[IPv6]:PORT" (numeric only). */
static bool parse_hostport(const char *s, bool allow_port0,
                           struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN + 16];
	const char *colon, *hs = s;
	size_t hlen;
	uint64_t port;
	bool v6 = s[0] == '[';

	if (v6) {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return false;
		hs = s + 1;
		hlen = (size_t)(end - hs);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return false;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return false;
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (!parse_u64(colon + 1, 65535, &port) || (port == 0 && !allow_port0))
		return false;
	memset(ss, 0, sizeof(*ss));
	if (v6)
		return uv_ip6_addr(host, (int)port,
		                   (struct sockaddr_in6 *)ss) == 0;
	return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0;
}

enum {
	OPT_LISTEN = 256,
	OPT_TARGET,
	OPT_CUT_AFTER,
	OPT_CUT_JITTER,
	OPT_FIN_GRACE,
	OPT_SEED,
	OPT_MODE,
	OPT_CUT_SIDE,
	OPT_MAX_CONNS,
	OPT_REFUSE_FILE,
	OPT_BLACKHOLE_FILE,
	OPT_READY_FILE,
	OPT_STATS_FILE,
};

void cp_parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"target", required_argument, NULL, OPT_TARGET},
	    {"cut-after", required_argument, NULL, OPT_CUT_AFTER},
	    {"cut-jitter", required_argument, NULL, OPT_CUT_JITTER},
	    {"fin-grace", required_argument, NULL, OPT_FIN_GRACE},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"mode", required_argument, NULL, OPT_MODE},
	    {"cut-side", required_argument, NULL, OPT_CUT_SIDE},
	    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
	    {"refuse-file", required_argument, NULL, OPT_REFUSE_FILE},
	    {"blackhole-file", required_argument, NULL, OPT_BLACKHOLE_FILE},
	    {"ready-file", required_argument, NULL, OPT_READY_FILE},
	    {"stats-file", required_argument, NULL, OPT_STATS_FILE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool have_listen = false, have_target = false;
	uint64_t v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->mode = CUT_RST;
	o->cut_sides = CUT_CLIENT | CUT_TARGET;
	o->fin_grace_ms = 1000;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_LISTEN:
			if (!parse_hostport(optarg, true, &o->listen))
				die_usage(
				    "--listen: invalid address '%s' (want "
				    "A.B.C.D:PORT or [IPv6]:PORT)",
				    optarg);
			have_listen = true;
			break;
		case OPT_TARGET:
			if (!parse_hostport(optarg, false, &o->target))
				die_usage(
				    "--target: invalid address '%s' (want "
				    "A.B.C.D:PORT or [IPv6]:PORT, PORT "
				    "not 0)",
				    optarg);
			have_target = true;
			break;
		case OPT_CUT_AFTER:
			duration_arg("cut-after", optarg, &o->cut_ms);
			break;
		case OPT_CUT_JITTER:
			duration_arg("cut-jitter", optarg, &o->jitter_ms);
			break;
		case OPT_FIN_GRACE:
			duration_arg("fin-grace", optarg, &o->fin_grace_ms);
			break;
		case OPT_SEED:
			if (!parse_u64(optarg, UINT64_MAX, &o->seed))
				die_usage("--seed: invalid number '%s'",
				          optarg);
			o->seed_set = true;
			break;
		case OPT_MODE:
			if (strcmp(optarg, "rst") == 0)
				o->mode = CUT_RST;
			else if (strcmp(optarg, "fin") == 0)
				o->mode = CUT_FIN;
			else
				die_usage("--mode: '%s' is not rst or fin",
				          optarg);
			break;
		case OPT_CUT_SIDE:
			if (strcmp(optarg, "both") == 0)
				o->cut_sides = CUT_CLIENT | CUT_TARGET;
			else if (strcmp(optarg, "client") == 0)
				o->cut_sides = CUT_CLIENT;
			else if (strcmp(optarg, "target") == 0)
				o->cut_sides = CUT_TARGET;
			else
				die_usage("--cut-side: '%s' is not both, "
				          "client or target",
				          optarg);
			break;
		case OPT_MAX_CONNS:
			if (!parse_u64(optarg, 1000000, &v))
				die_usage("--max-conns: invalid count '%s' "
				          "(0 to 1000000)",
				          optarg);
			o->max_conns = (unsigned)v;
			break;
		case OPT_REFUSE_FILE:
			o->refuse_file = optarg;
			break;
		case OPT_BLACKHOLE_FILE:
			o->blackhole_file = optarg;
			break;
		case OPT_READY_FILE:
			o->ready_file = optarg;
			break;
		case OPT_STATS_FILE:
			o->stats_file = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case ':':
			die_usage("%s needs a value", argv[optind - 1]);
		default:
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!have_listen || !have_target)
		die_usage("--listen and --target are required");
}
