/* warren-linkemu: a userspace link emulator between two network namespaces.
 *
 * It creates a TUN device in each of two namespaces, gives each an address
 * in one shared subnet and forwards every IP packet read from one device to
 * the other through the impairment model of that direction (model.h):
 * delay, jitter, random and bursty loss, a rate limit with a tail-drop
 * queue, reordering and duplication. The kernel here has no netem; this
 * process stands in for it in the end-to-end tests and the benchmarks.
 *
 * The data path never allocates: packets are read straight into slots of a
 * preallocated pool (one per direction, sized from the configuration),
 * scheduled in a binary min-heap keyed by delivery time (ties keep arrival
 * order; schedule.h), and written to the other device when due. One epoll
 * loop waits on both devices, a signalfd and a CLOCK_MONOTONIC timerfd
 * armed with an absolute nanosecond deadline for the earliest scheduled
 * packet. The process runs SCHED_FIFO by default (see set_priority), so
 * packets leave on time even when the machine is busy.
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 if the link cannot be set up (no
 * such namespace, TUN or `ip` failure), 2 for bad arguments. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <sys/prctl.h>
#include <sys/resource.h>

#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "schedule.h"
#include "util/err.h"

extern char **environ;

#define PROG "warren-linkemu"
#define EXIT_FAIL 1
#define EXIT_USAGE 2
/* Packets read from one device per loop iteration before the loop looks
 * at the other device and at due packets again. */
#define READ_BATCH 64
/* b2a's random streams: the seed XOR this. */
#define B2A_SEED_XOR UINT64_C(0x5555555555555555)

static const char usage_text[] =
    "usage: " PROG " --a NS:DEV:ADDR/PREFIX --b NS:DEV:ADDR/PREFIX\n"
    "         [--a2b SPEC] [--b2a SPEC] [--both SPEC] [--seed N]\n"
    "         [--mtu N] [--pool N] [--stats-file PATH] "
    "[--ready-file PATH]\n"
    "\n"
    "Creates TUN device DEV in network namespace NS (/var/run/netns/NS)\n"
    "for each side, adds ADDR/PREFIX to it and forwards packets between\n"
    "them through an impairment model per direction (a2b: read from A,\n"
    "written to B). --both applies to both directions; --a2b/--b2a are\n"
    "applied on top of it. SPEC is a comma list of:\n"
    "  delay=T                one-way delay after serialization\n"
    "  jitter=T[:order|:reorder]  uniform in [-T,+T]; order (default)\n"
    "                         never reorders, reorder lets it (netem)\n"
    "  loss=P                 random loss\n"
    "  burst=P:R[:LB[:LG]]    Gilbert-Elliott: P good->bad, R bad->good,\n"
    "                         loss LB in bad (100%), LG in good (0%)\n"
    "  rate=R                 serializing link rate (0: unlimited)\n"
    "  queue=B                tail-drop queue before the link (default\n"
    "                         100 ms at the rate, at least 16kb)\n"
    "  reorder=P[:T]          hold a packet T (10ms) extra so later ones\n"
    "                         overtake it\n"
    "  dup=P                  deliver a packet twice\n"
    "T: number with ns|us|ms|s. P: percentage, e.g. 1% or 0.25%.\n"
    "R: number with bit|kbit|mbit|gbit (x1000). B: number with b|kb|mb\n"
    "(x1024). A bare 0 needs no unit; burst=off disables bursts.\n"
    "--seed N (default 1) makes every run with the same traffic identical.\n"
    "--priority rt|high|normal (default rt): run as SCHED_FIFO (like netem\n"
    "in softirq, ahead of the traffic's processes), at nice -10, or as is.\n"
    "--mtu N (default 1500) sets both devices' MTU. --pool N sets the\n"
    "packet slots per direction (default sized from the SPEC).\n"
    "--ready-file is written when both devices are up; --stats-file\n"
    "gets JSON counters on SIGUSR1 and at exit (SIGTERM/SIGINT).\n";

struct endpoint {
	char spec[256];
	const char *ns;
	char dev[IFNAMSIZ];
	const char *addr;
	int fd;
	int nlfd; /* rtnetlink socket inside ns, for device counters */
	uint64_t tx_dropped0;
};

/* How the emulator competes for the CPU (see set_priority). */
enum run_prio { RUN_RT = 0, RUN_HIGH, RUN_NORMAL };

/* Driver counters of one direction (the model counts its decisions). */
struct dir_stats {
	uint64_t dropped_pool;
	uint64_t dropped_write;
	uint64_t writes; /* packets written, duplicates included */
	uint64_t bytes_written;
};

struct emu {
	struct endpoint ep[2]; /* A, B; direction d reads ep[d] */
	struct le_cfg cfg[2];
	struct le_dir dir[2];
	struct dir_stats st[2];
	uint64_t seed;
	unsigned mtu;
	uint32_t pool_override;
	const char *stats_file;
	const char *ready_file;
	enum run_prio priority;

	struct le_sched sched;
	uint8_t *scratch; /* reads that find the pool exhausted */
	uint32_t nslots[2];

	int epfd, tfd, sfd;
	uint64_t armed; /* timer deadline, 0 when not armed */
	uint64_t start_ns;
	uint64_t last_err_log;
	bool quit;
};

static const char *const dir_name[2] = {"a2b", "b2a"};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die_usage(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(" PROG " --help for usage)\n");
	exit(EXIT_USAGE);
}

/* Logs a failed data-path syscall at most once per second. */
static void log_io_error(struct emu *e, const char *what, int err)
{
	uint64_t now = now_ns();

	if (now - e->last_err_log < 1000000000u)
		return;
	e->last_err_log = now;
	fprintf(stderr, PROG ": %s: %s (further errors this second muted)\n",
	        what, strerror(err));
}

/* ---- arguments --------------------------------------------------------- */

static void parse_endpoint(const char *opt, const char *arg,
                           struct endpoint *ep)
{
	char *c1, *c2;

	if (strlen(arg) >= sizeof(ep->spec))
		die_usage("%s: too long", opt);
	strcpy(ep->spec, arg);
	c1 = strchr(ep->spec, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2)
		die_usage("%s '%s': expected NS:DEV:ADDR/PREFIX", opt, arg);
	*c1 = '\0';
	*c2 = '\0';
	ep->ns = ep->spec;
	ep->addr = c2 + 1;
	if (!*ep->ns || strchr(ep->ns, '/') || strcmp(ep->ns, ".") == 0 ||
	    strcmp(ep->ns, "..") == 0)
		die_usage("%s '%s': bad namespace name", opt, arg);
	if (!*(c1 + 1) || strlen(c1 + 1) >= IFNAMSIZ || strchr(c1 + 1, '/'))
		die_usage("%s '%s': device name must be 1 to %d characters",
		          opt, arg, IFNAMSIZ - 1);
	strcpy(ep->dev, c1 + 1);
	ep->nlfd = -1;
	const char *slash = strchr(ep->addr, '/');

	if (!slash || slash == ep->addr || !slash[1] ||
	    strspn(slash + 1, "0123456789") != strlen(slash + 1))
		die_usage("%s '%s': address must be ADDR/PREFIX", opt, arg);
	ep->fd = -1;
}

static uint64_t parse_u64(const char *opt, const char *arg, uint64_t min,
                          uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max)
		die_usage("%s '%s': expected an integer from %" PRIu64
		          " to %" PRIu64,
		          opt, arg, min, max);
	return v;
}

static void parse_spec(const char *opt, const char *spec, struct le_cfg *cfg)
{
	char err[256];

	if (le_cfg_parse(cfg, spec, err, sizeof(err)) != WN_OK)
		die_usage("%s: %s", opt, err);
}

static void parse_args(struct emu *e, int argc, char **argv)
{
	enum {
		O_A = 1,
		O_B,
		O_A2B,
		O_B2A,
		O_BOTH,
		O_SEED,
		O_MTU,
		O_POOL,
		O_STATS,
		O_READY,
		O_PRIORITY,
		O_HELP
	};
	static const struct option opts[] = {
	    {"a", required_argument, NULL, O_A},
	    {"b", required_argument, NULL, O_B},
	    {"a2b", required_argument, NULL, O_A2B},
	    {"b2a", required_argument, NULL, O_B2A},
	    {"both", required_argument, NULL, O_BOTH},
	    {"seed", required_argument, NULL, O_SEED},
	    {"mtu", required_argument, NULL, O_MTU},
	    {"pool", required_argument, NULL, O_POOL},
	    {"stats-file", required_argument, NULL, O_STATS},
	    {"ready-file", required_argument, NULL, O_READY},
	    {"priority", required_argument, NULL, O_PRIORITY},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	const char *a2b = NULL, *b2a = NULL, *both = NULL;
	bool have_a = false, have_b = false;
	int c;

	e->seed = 1;
	e->mtu = 1500;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_A:
			parse_endpoint("--a", optarg, &e->ep[0]);
			have_a = true;
			break;
		case O_B:
			parse_endpoint("--b", optarg, &e->ep[1]);
			have_b = true;
			break;
		case O_A2B:
			a2b = optarg;
			break;
		case O_B2A:
			b2a = optarg;
			break;
		case O_BOTH:
			both = optarg;
			break;
		case O_SEED:
			e->seed = parse_u64("--seed", optarg, 0, UINT64_MAX);
			break;
		case O_MTU:
			e->mtu =
			    (unsigned)parse_u64("--mtu", optarg, 576, 65535);
			break;
		case O_POOL:
			e->pool_override = (uint32_t)parse_u64("--pool", optarg,
			                                       16, LE_POOL_MAX);
			break;
		case O_STATS:
			e->stats_file = optarg;
			break;
		case O_READY:
			e->ready_file = optarg;
			break;
		case O_PRIORITY:
			if (strcmp(optarg, "rt") == 0)
				e->priority = RUN_RT;
			else if (strcmp(optarg, "high") == 0)
				e->priority = RUN_HIGH;
			else if (strcmp(optarg, "normal") == 0)
				e->priority = RUN_NORMAL;
			else
				die_usage(
				    "--priority '%s': expected rt, high or "
				    "normal",
				    optarg);
			break;
		case O_HELP:
			fputs(usage_text, stdout);
			exit(0);
		default:
			if (optopt)
				die_usage("option needs a value or is unknown: "
				          "%s",
				          argv[optind - 1]);
			die_usage("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!have_a || !have_b)
		die_usage("both --a and --b are required");
	if (strcmp(e->ep[0].ns, e->ep[1].ns) == 0)
		die_usage("--a and --b must be in different namespaces");
	for (int d = 0; d < 2; d++) {
		memset(&e->cfg[d], 0, sizeof(e->cfg[d]));
		if (both)
			parse_spec("--both", both, &e->cfg[d]);
	}
	if (a2b)
		parse_spec("--a2b", a2b, &e->cfg[0]);
	if (b2a)
		parse_spec("--b2a", b2a, &e->cfg[1]);
	for (int d = 0; d < 2; d++) {
		uint64_t seed = d ? e->seed ^ B2A_SEED_XOR : e->seed;

		if (le_dir_init(&e->dir[d], &e->cfg[d], seed) != WN_OK)
			die_usage("--%s: inconsistent configuration",
			          dir_name[d]);
	}
}

/* ---- devices ----------------------------------------------------------- */

/* Runs argv to completion with the default signal mask; returns its exit
 * status, or -1 if it could not run. */
static int run_cmd(char *const argv[])
{
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;
	int status, rc;

	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawnp(&pid, argv[0], NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		fprintf(stderr, PROG ": cannot run %s: %s\n", argv[0],
		        strerror(rc));
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, PROG ": command failed:");
		for (int i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "\n");
		return -1;
	}
	return 0;
}

static void write_proc(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, val, strlen(val)) < 0) {
		/* Best effort: only keeps IPv6 chatter off the link. */
	}
	close(fd);
}

/* Creates ep's TUN device inside its namespace and configures it. */
static int open_endpoint(struct emu *e, struct endpoint *ep)
{
	char path[PATH_MAX], mtu[16];
	struct ifreq ifr;
	int nsfd, selffd, rc = WN_EIO;

	snprintf(path, sizeof(path), "/var/run/netns/%s", ep->ns);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		fprintf(stderr, PROG ": namespace %s: %s: %s\n", ep->ns, path,
		        strerror(errno));
		return errno == ENOENT ? WN_ENOENT : WN_EIO;
	}
	selffd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (selffd < 0) {
		fprintf(stderr, PROG ": /proc/self/ns/net: %s\n",
		        strerror(errno));
		close(nsfd);
		return WN_EIO;
	}
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		fprintf(stderr, PROG ": setns %s: %s\n", ep->ns,
		        strerror(errno));
		goto out;
	}
	ep->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (ep->fd < 0) {
		fprintf(stderr, PROG ": /dev/net/tun: %s\n", strerror(errno));
		goto back;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	strcpy(ifr.ifr_name, ep->dev);
	if (ioctl(ep->fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, PROG ": TUNSETIFF %s in %s: %s\n", ep->dev,
		        ep->ns, strerror(errno));
		close(ep->fd);
		ep->fd = -1;
		goto back;
	}
	/* A socket belongs to the namespace it was created in. Without it
	 * the stats just lack dropped_device. */
	ep->nlfd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (!strchr(ep->addr, ':')) {
		/* IPv4 only: keep router solicitations and MLD reports out
		 * of the counters. /proc/sys/net follows our namespace. */
		snprintf(path, sizeof(path),
		         "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ep->dev);
		write_proc(path, "1");
	}
	rc = WN_OK;
back:
	if (setns(selffd, CLONE_NEWNET) < 0) {
		fprintf(stderr, PROG ": setns back: %s\n", strerror(errno));
		rc = WN_EIO;
	}
out:
	close(selffd);
	close(nsfd);
	if (rc != WN_OK)
		return rc;

	char *addr_argv[] = {
	    "ip",  "-n",    (char *)ep->ns, "addr", "add", (char *)ep->addr,
	    "dev", ep->dev, "nodad",        NULL};
	snprintf(mtu, sizeof(mtu), "%u", e->mtu);
	/* txqueuelen: the device queue in front of us only matters when we
	 * are short of CPU; 500 (the TUN default) overflows then and shows
	 * up as spurious loss. 1000 is Ethernet's default. */
	char *link_argv[] = {"ip",         "-n",    (char *)ep->ns, "link",
	                     "set",        ep->dev, "mtu",          mtu,
	                     "txqueuelen", "1000",  "up",           NULL};

	if (!strchr(ep->addr, ':'))
		addr_argv[8] = NULL; /* nodad is for IPv6 only */
	if (run_cmd(link_argv) < 0 || run_cmd(addr_argv) < 0)
		return WN_EIO;
	return WN_OK;
}

/* ---- data path --------------------------------------------------------- */

/* Reads up to READ_BATCH packets from direction d's source device. */
static void pump_in(struct emu *e, int d)
{
	int fd = e->ep[d].fd;
	struct le_decision dec;

	for (int k = 0; k < READ_BATCH; k++) {
		uint32_t slot;
		uint8_t *slot_buf = le_sched_peek(&e->sched, d, &slot);
		uint8_t *buf = slot_buf ? slot_buf : e->scratch;
		ssize_t n = read(fd, buf, e->sched.slot_size);

		if (n == 0)
			continue;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_io_error(e, "read", errno);
			return;
		}
		if (!slot_buf) {
			e->st[d].dropped_pool++;
			continue;
		}
		le_dir_decide(&e->dir[d], now_ns(), (uint32_t)n, &dec);
		if (dec.verdict == LE_DELIVER)
			le_sched_push(&e->sched, slot, (uint32_t)n, dec.dup,
			              dec.at_ns);
	}
}

static void write_out(struct emu *e, int d, const uint8_t *buf, uint32_t len)
{
	ssize_t n = write(e->ep[!d].fd, buf, len);

	if (n == (ssize_t)len) {
		e->st[d].writes++;
		e->st[d].bytes_written += len;
		return;
	}
	e->st[d].dropped_write++;
	if (n < 0)
		log_io_error(e, "write", errno);
}

/* Writes every packet due by now. */
static void deliver_due(struct emu *e)
{
	struct le_sched *s = &e->sched;
	uint64_t now;

	if (le_sched_next(s) == UINT64_MAX)
		return;
	now = now_ns();
	while (le_sched_next(s) <= now) {
		uint32_t slot = le_sched_pop(s);
		int d = le_sched_dir(s, slot);
		const uint8_t *buf = le_sched_data(s, slot);

		write_out(e, d, buf, s->slot_len[slot]);
		if (s->slot_dup[slot])
			write_out(e, d, buf, s->slot_len[slot]);
		le_sched_release(s, slot);
	}
}

static void rearm(struct emu *e)
{
	uint64_t next = le_sched_next(&e->sched);
	struct itimerspec its;

	if (next == UINT64_MAX || next == e->armed)
		return;
	memset(&its, 0, sizeof(its));
	e->armed = next;
	its.it_value.tv_sec = (time_t)(next / 1000000000u);
	its.it_value.tv_nsec = (long)(next % 1000000000u);
	if (timerfd_settime(e->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_io_error(e, "timerfd_settime", errno);
}

/* ---- stats ------------------------------------------------------------- */

/* Returns the kernel's tx_dropped counter of ep's device: packets the
 * kernel could not queue to us because we did not read fast enough.
 * Returns 0 if it cannot be read. Not for the data path (blocking). */
static uint64_t device_tx_dropped(const struct endpoint *ep)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
		char attrs[RTA_SPACE(IFNAMSIZ)];
	} req;
	static char buf[16384];
	struct rtattr *rta;
	struct timeval tv = {.tv_sec = 1};
	ssize_t n;

	if (ep->nlfd < 0)
		return 0;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len =
	    NLMSG_LENGTH(sizeof(req.ifi)) + RTA_SPACE(strlen(ep->dev) + 1);
	req.nh.nlmsg_type = RTM_GETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.ifi.ifi_family = AF_UNSPEC;
	rta = (struct rtattr *)((char *)&req + NLMSG_LENGTH(sizeof(req.ifi)));
	rta->rta_type = IFLA_IFNAME;
	rta->rta_len = (unsigned short)RTA_LENGTH(strlen(ep->dev) + 1);
	memcpy(RTA_DATA(rta), ep->dev, strlen(ep->dev) + 1);
	setsockopt(ep->nlfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(ep->nlfd, &req, req.nh.nlmsg_len, 0) < 0)
		return 0;
	n = recv(ep->nlfd, buf, sizeof(buf), 0);
	for (struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	     n > 0 && NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
		if (nh->nlmsg_type != RTM_NEWLINK)
			continue;
		int len = (int)IFLA_PAYLOAD(nh);

		for (rta = IFLA_RTA(NLMSG_DATA(nh)); RTA_OK(rta, len);
		     rta = RTA_NEXT(rta, len)) {
			struct rtnl_link_stats64 st;

			if (rta->rta_type != IFLA_STATS64 ||
			    RTA_PAYLOAD(rta) < sizeof(st))
				continue;
			memcpy(&st, RTA_DATA(rta), sizeof(st));
			return st.tx_dropped;
		}
	}
	return 0;
}

static void write_dir_json(FILE *f, const struct emu *e, int d)
{
	const struct le_counters *c = &e->dir[d].cnt;
	const struct dir_stats *s = &e->st[d];
	char spec[512];

	le_cfg_format(&e->dir[d].cfg, spec, sizeof(spec));
	fprintf(f,
	        "  \"%s\": {\n"
	        "    \"config\": \"%s\",\n"
	        "    \"packets_in\": %" PRIu64 ",\n"
	        "    \"bytes_in\": %" PRIu64 ",\n"
	        "    \"delivered\": %" PRIu64 ",\n"
	        "    \"bytes_delivered\": %" PRIu64 ",\n"
	        "    \"dropped_loss\": %" PRIu64 ",\n"
	        "    \"dropped_burst\": %" PRIu64 ",\n"
	        "    \"dropped_queue\": %" PRIu64 ",\n"
	        "    \"dropped_pool\": %" PRIu64 ",\n"
	        "    \"dropped_write\": %" PRIu64 ",\n"
	        "    \"dropped_device\": %" PRIu64 ",\n"
	        "    \"duplicated\": %" PRIu64 ",\n"
	        "    \"reordered\": %" PRIu64 ",\n"
	        "    \"pending\": %" PRIu64 ",\n"
	        "    \"max_pending\": %" PRIu64 ",\n"
	        "    \"pool_slots\": %" PRIu32 "\n"
	        "  }",
	        dir_name[d], spec, c->packets + s->dropped_pool, c->bytes,
	        s->writes, s->bytes_written, c->dropped_loss, c->dropped_burst,
	        c->dropped_queue, s->dropped_pool, s->dropped_write,
	        device_tx_dropped(&e->ep[d]) - e->ep[d].tx_dropped0,
	        c->duplicated, c->reordered, e->sched.pending[d],
	        e->sched.max_pending[d], e->sched.nslots[d]);
}

static void write_stats_to(FILE *f, const struct emu *e)
{
	fprintf(f, "{\n  \"seed\": %" PRIu64 ",\n  \"elapsed_s\": %.3f,\n",
	        e->seed, (double)(now_ns() - e->start_ns) / 1e9);
	write_dir_json(f, e, 0);
	fprintf(f, ",\n");
	write_dir_json(f, e, 1);
	fprintf(f, "\n}\n");
}

/* Writes path atomically (a temporary file renamed over it). */
static int write_file_atomic(const char *path, const struct emu *e, bool stats)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return WN_EINVAL;
	f = fopen(tmp, "we");
	if (!f) {
		fprintf(stderr, PROG ": %s: %s\n", tmp, strerror(errno));
		return WN_EIO;
	}
	if (stats)
		write_stats_to(f, e);
	else
		fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return WN_EIO;
	}
	return WN_OK;
}

static void dump_stats(const struct emu *e)
{
	if (e->stats_file)
		write_file_atomic(e->stats_file, e, true);
	else
		write_stats_to(stdout, e);
}

/* Like netem, which runs in softirq context, the emulator should not wait
 * behind the processes whose traffic it carries: by default it runs as a
 * SCHED_FIFO task (it blocks in epoll whenever it has nothing to do, and
 * the kernel's RT throttling keeps 5% of each CPU for others), falling back
 * to nice -10 and then to normal scheduling where that is not allowed. */
static void set_priority(struct emu *e)
{
	struct sched_param sp = {.sched_priority = 10};

	/* Timers fire on time, not up to 50 us late (RT tasks have no slack
	 * anyway). */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (e->priority == RUN_RT &&
	    sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) == 0)
		return;
	if (e->priority == RUN_RT)
		fprintf(stderr, PROG ": SCHED_FIFO: %s; using nice -10\n",
		        strerror(errno));
	if (e->priority != RUN_NORMAL && setpriority(PRIO_PROCESS, 0, -10) < 0)
		fprintf(stderr, PROG ": nice -10: %s; normal priority\n",
		        strerror(errno));
}

/* ---- main loop --------------------------------------------------------- */

static void handle_signals(struct emu *e)
{
	struct signalfd_siginfo si;

	while (read(e->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			dump_stats(e);
		} else {
			printf(PROG ": signal %u, exiting\n", si.ssi_signo);
			e->quit = true;
		}
	}
}

static int add_fd(struct emu *e, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	return epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev);
}

enum { TAG_A = 0, TAG_B = 1, TAG_TIMER, TAG_SIGNAL };

static void run(struct emu *e)
{
	struct epoll_event evs[8];

	while (!e->quit) {
		int n = epoll_wait(e->epfd, evs, 8, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_io_error(e, "epoll_wait", errno);
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			uint64_t ticks;

			if (tag == TAG_A || tag == TAG_B) {
				pump_in(e, (int)tag);
			} else if (tag == TAG_TIMER) {
				if (read(e->tfd, &ticks, sizeof(ticks)) < 0) {
					/* EAGAIN: already consumed. */
				}
				e->armed = 0;
			} else {
				handle_signals(e);
			}
		}
		deliver_due(e);
		rearm(e);
	}
}

static int setup_loop(struct emu *e, const sigset_t *sigs)
{
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	e->sfd = signalfd(-1, sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (e->epfd < 0 || e->tfd < 0 || e->sfd < 0 ||
	    add_fd(e, e->ep[0].fd, TAG_A) < 0 ||
	    add_fd(e, e->ep[1].fd, TAG_B) < 0 ||
	    add_fd(e, e->tfd, TAG_TIMER) < 0 ||
	    add_fd(e, e->sfd, TAG_SIGNAL) < 0) {
		fprintf(stderr, PROG ": event loop setup: %s\n",
		        strerror(errno));
		return WN_EIO;
	}
	return WN_OK;
}

static void close_all(struct emu *e)
{
	for (int d = 0; d < 2; d++) {
		if (e->ep[d].fd >= 0)
			close(e->ep[d].fd);
		if (e->ep[d].nlfd >= 0)
			close(e->ep[d].nlfd);
	}
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->tfd >= 0)
		close(e->tfd);
	if (e->sfd >= 0)
		close(e->sfd);
	le_sched_free(&e->sched);
	free(e->scratch);
}

int main(int argc, char **argv)
{
	static struct emu emu;
	struct emu *e = &emu;
	sigset_t sigs;
	char desc[512];
	int rc = EXIT_FAIL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	e->ep[0].fd = e->ep[1].fd = -1;
	e->ep[0].nlfd = e->ep[1].nlfd = -1;
	e->epfd = e->tfd = e->sfd = -1;
	parse_args(e, argc, argv);

	/* Handle termination through the loop from here on (queued until
	 * the loop runs); children get an empty mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	set_priority(e);

	for (int d = 0; d < 2; d++)
		e->nslots[d] = e->pool_override
		                   ? e->pool_override
		                   : le_sched_default_slots(&e->dir[d]);
	/* Whole cache lines; at least the MTU, the largest packet a TUN
	 * device without offloads hands us. */
	size_t slot_size = ((size_t)e->mtu + 63) & ~(size_t)63;

	e->scratch = malloc(slot_size);
	if (!e->scratch || le_sched_init(&e->sched, slot_size, e->nslots[0],
	                                 e->nslots[1]) != WN_OK) {
		fprintf(stderr, PROG ": cannot allocate the packet pool\n");
		goto out;
	}
	for (int d = 0; d < 2; d++)
		if (open_endpoint(e, &e->ep[d]) != WN_OK)
			goto out;
	if (setup_loop(e, &sigs) != WN_OK)
		goto out;
	for (int d = 0; d < 2; d++) {
		le_cfg_format(&e->dir[d].cfg, desc, sizeof(desc));
		printf(PROG ": %s %s:%s -> %s:%s: %s (pool %" PRIu32
		            " slots)\n",
		       dir_name[d], e->ep[d].ns, e->ep[d].dev, e->ep[!d].ns,
		       e->ep[!d].dev, desc, e->sched.nslots[d]);
	}
	for (int d = 0; d < 2; d++)
		e->ep[d].tx_dropped0 = device_tx_dropped(&e->ep[d]);
	e->start_ns = now_ns();
	if (e->ready_file && write_file_atomic(e->ready_file, e, false) != 0)
		goto out;
	printf(PROG ": ready (seed %" PRIu64 ", mtu %u)\n", e->seed, e->mtu);
	run(e);
	dump_stats(e);
	rc = 0;
out:
	close_all(e);
	return rc;
}
