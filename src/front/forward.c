/* The forward front end: listeners that pair each accepted connection with
 * a new tunnel stream through a relay. */
#include "front/forward.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/sock.h"
#include "io/tcplisten.h"
#include "util/err.h"

#define LOG_COMP "fwd"
#define BACKLOG_DEFAULT 128

struct fwd_listener {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} u;
	struct wn_forward *f;
	bool bound; /* listening (a failed bind leaves it idle until close) */
};

struct wn_forward {
	struct wn_loop *loop;
	struct wn_log *log;
	struct wn_tunnel *tunnel;
	char name[WN_FRONT_NAME_MAX + 1];
	struct wn_endpoint listen, target;
	unsigned unix_mode;
	bool loopback_only;
	enum wn_relay_sock kind;
	struct fwd_listener ls[WN_FORWARD_MAX_LISTEN];
	int nls;
	int handles; /* listeners whose close callback has not run */
	bool closing;
	struct wn_relay_set relays;
	struct wn_ratelimit rl;
	size_t out_limit;
	int backlog;
	wn_forward_accept_fn on_accept;
	void *accept_ctx;
	/* The unix socket file we created, to remove only that one. */
	bool own_file;
	dev_t dev;
	ino_t ino;
};

static void on_listener_closed(uv_handle_t *h)
{
	struct fwd_listener *l = h->data;
	struct wn_forward *f = l->f;

	if (--f->handles == 0)
		free(f);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct fwd_listener *l = server->data;
	struct wn_forward *f = l->f;
	struct wn_relay_opts o = {
	    .loop = f->loop,
	    .log = f->log,
	    .set = &f->relays,
	    .side = WN_RELAY_CLIENT,
	    .sock = f->kind,
	    .label = f->name,
	    .out_limit = f->out_limit,
	};
	struct wn_relay *r;
	int rc;

	if (f->closing)
		return;
	if (status < 0) {
		WN_LOG_RL(f->log, &f->rl, wn_loop_now_ms(f->loop), WN_LOG_WARN,
		          LOG_COMP, "forward %s: accept: %s", f->name,
		          wn_strerror(wn_err_from_uv(status)));
		return;
	}
	rc = wn_relay_new(&o, &r);
	if (rc < 0) {
		/* libuv keeps the connection pending (and stops accepting)
		 * until it is accepted: take it and close it. */
		WN_LOG_RL(f->log, &f->rl, wn_loop_now_ms(f->loop), WN_LOG_ERROR,
		          LOG_COMP, "forward %s: %s: connection refused",
		          f->name, wn_strerror(rc));
		(void)wn_sock_refuse(server);
		return;
	}
	rc = wn_relay_accept(r, server);
	if (rc < 0) {
		WN_LOG_RL(f->log, &f->rl, wn_loop_now_ms(f->loop), WN_LOG_WARN,
		          LOG_COMP, "forward %s: accept: %s", f->name,
		          wn_strerror(rc));
		wn_relay_close(r, WN_STREAM_INTERNAL);
		return;
	}
	if (f->on_accept) {
		f->on_accept(f->accept_ctx, r);
		return;
	}
	rc = wn_relay_open(r, f->tunnel, &f->target);
	if (rc < 0) {
		WN_LOG_RL(f->log, &f->rl, wn_loop_now_ms(f->loop), WN_LOG_WARN,
		          LOG_COMP,
		          "forward %s: the tunnel takes no new stream now; "
		          "connection reset",
		          f->name);
		/* A reset tells the application at once, unlike a FIN that
		 * looks like an empty answer. */
		wn_relay_close(r, WN_STREAM_INTERNAL);
	}
}

/* Close what open set up so far; the forward is freed when the last
 * listener's close callback runs (or now, if none was initialised). */
static void teardown(struct wn_forward *f)
{
	int i;

	f->closing = true;
	if (f->handles == 0) {
		free(f);
		return;
	}
	for (i = 0; i < f->nls; i++)
		if (!uv_is_closing(&f->ls[i].u.handle))
			uv_close(&f->ls[i].u.handle, on_listener_closed);
}

/* Make room for a unix socket at path: nothing there is fine; a socket no
 * one listens on is stale and removed; anything else is refused. */
static int clear_stale_socket(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : wn_err_from_errno(errno);
	if (!S_ISSOCK(st.st_mode))
		return WN_EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return wn_err_from_errno(errno);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	/* Refused means no listener: the file is left over. Anything else
	 * (connected, or a full backlog) means someone is there. */
	if (rc != 0 && errno == ECONNREFUSED) {
		close(fd);
		return unlink(path) == 0 || errno == ENOENT
		           ? 0
		           : wn_err_from_errno(errno);
	}
	close(fd);
	return WN_EADDRINUSE;
}

static struct fwd_listener *add_listener(struct wn_forward *f)
{
	struct fwd_listener *l = &f->ls[f->nls];
	int rc;

	if (f->nls == WN_FORWARD_MAX_LISTEN)
		return NULL;
	if (f->kind == WN_RELAY_TCP)
		rc = uv_tcp_init(wn_loop_uv(f->loop), &l->u.tcp);
	else
		rc = uv_pipe_init(wn_loop_uv(f->loop), &l->u.pipe, 0);
	if (rc < 0)
		return NULL;
	l->f = f;
	l->u.handle.data = l;
	f->nls++;
	f->handles++;
	return l;
}

static int listen_unix(struct wn_forward *f)
{
	struct fwd_listener *l;
	struct stat st;
	int rc;

	rc = clear_stale_socket(f->listen.path);
	if (rc < 0)
		return rc;
	l = add_listener(f);
	if (!l)
		return WN_ENOMEM;
	rc = uv_pipe_bind(&l->u.pipe, f->listen.path);
	if (rc < 0)
		return wn_err_from_uv(rc);
	if (lstat(f->listen.path, &st) == 0) {
		f->own_file = true;
		f->dev = st.st_dev;
		f->ino = st.st_ino;
	}
	/* Bound but not listening yet, so nobody connects under the
	 * umask's mode: whoever may connect gets the stream into the
	 * tunnel, so the default is the owner only. */
	if (chmod(f->listen.path, f->unix_mode) != 0)
		return wn_err_from_errno(errno);
	rc = uv_listen(&l->u.stream, f->backlog, on_connection);
	if (rc < 0)
		return wn_err_from_uv(rc);
	l->bound = true;
	return 0;
}

static bool loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const uint8_t *)&((const struct sockaddr_in *)sa)
		            ->sin_addr)[0] == 127;
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(
	           &((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* With loopback_only, an address others can reach is refused. */
static int check_loopback(struct wn_forward *f, const struct sockaddr *sa)
{
	if (!f->loopback_only || loopback(sa))
		return 0;
	WN_LOG(f->log, WN_LOG_ERROR, LOG_COMP,
	       "%s: refusing to listen beyond loopback without "
	       "authentication: add users, or set unauthenticated = yes",
	       f->name);
	return WN_EPERM;
}

static int listen_tcp_addr(struct wn_forward *f, const struct sockaddr *sa)
{
	struct fwd_listener *l;
	int rc = check_loopback(f, sa);

	if (rc < 0)
		return rc;
	l = add_listener(f);
	if (!l)
		return WN_ENOMEM;
	rc = uv_tcp_bind(&l->u.tcp, sa, 0);
	if (rc == 0)
		rc = uv_listen(&l->u.stream, f->backlog, on_connection);
	if (rc < 0)
		return wn_err_from_uv(rc);
	l->bound = true;
	return 0;
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		              &((const struct sockaddr_in *)b)->sin_addr,
		              4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* Takes over a listening socket from wn_tcplisten_open (closed here if
 * libuv cannot take it). */
static int adopt_tcp_fd(struct wn_forward *f, int fd)
{
	struct fwd_listener *l = add_listener(f);
	int rc;

	if (!l) {
		close(fd);
		return WN_ENOMEM;
	}
	rc = uv_tcp_open(&l->u.tcp, fd);
	if (rc < 0) {
		close(fd);
		return wn_err_from_uv(rc);
	}
	rc = uv_listen(&l->u.stream, f->backlog, on_connection);
	if (rc < 0)
		return wn_err_from_uv(rc);
	l->bound = true;
	return 0;
}

/* A name: listen on each address it resolves to, all on one port (one name
 * means one port, even with port 0: io/tcplisten.h); those that do not
 * exist on this host (an IPv6 ::1 without IPv6, say) are skipped. */
static int listen_tcp_name(struct wn_forward *f)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE};
	struct sockaddr_storage seen[WN_FORWARD_MAX_LISTEN];
	int fds[WN_FORWARD_MAX_LISTEN];
	uv_getaddrinfo_t req;
	struct addrinfo *ai;
	char port[8];
	int rc, nseen = 0, i;
	bool dup;

	snprintf(port, sizeof(port), "%u", f->listen.port);
	/* Synchronous (no callback): resolved once, while starting up. */
	rc = uv_getaddrinfo(wn_loop_uv(f->loop), &req, NULL, f->listen.host,
	                    port, &hints);
	if (rc < 0)
		return wn_err_from_uv(rc);
	for (ai = req.addrinfo; ai && nseen < WN_FORWARD_MAX_LISTEN;
	     ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		for (dup = false, i = 0; i < nseen && !dup; i++)
			dup =
			    same_addr((struct sockaddr *)&seen[i], ai->ai_addr);
		if (dup)
			continue;
		memset(&seen[nseen], 0, sizeof(seen[nseen]));
		memcpy(&seen[nseen++], ai->ai_addr, ai->ai_addrlen);
	}
	uv_freeaddrinfo(req.addrinfo);
	if (nseen == 0)
		return WN_EUNREACH;
	for (i = 0; i < nseen; i++)
		if ((rc = check_loopback(f, (struct sockaddr *)&seen[i])) < 0)
			return rc;
	rc = wn_tcplisten_open(seen, nseen, f->backlog, fds);
	if (rc < 0)
		return rc;
	for (rc = 0, i = 0; i < nseen; i++) {
		if (fds[i] < 0)
			continue;
		if (rc == 0)
			rc = adopt_tcp_fd(f, fds[i]);
		else
			close(fds[i]);
	}
	return rc;
}

int wn_forward_open(struct wn_loop *loop, struct wn_log *log,
                    struct wn_tunnel *t, const struct wn_forward_opts *opts,
                    struct wn_forward **out)
{
	struct wn_forward *f;
	char text[WN_UNIX_PATH_MAX + 32], tgt[WN_UNIX_PATH_MAX + 32];
	int rc;

	if (!opts->target && !opts->on_accept)
		return WN_EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return WN_ENOMEM;
	f->loop = loop;
	f->log = log;
	f->tunnel = t;
	snprintf(f->name, sizeof(f->name), "%s",
	         opts->name && opts->name[0] ? opts->name : "forward");
	f->listen = opts->listen;
	if (opts->target)
		f->target = *opts->target;
	f->kind =
	    opts->listen.kind == WN_HOST_UNIX ? WN_RELAY_PIPE : WN_RELAY_TCP;
	f->out_limit = opts->out_limit;
	f->backlog = opts->backlog > 0 ? opts->backlog : BACKLOG_DEFAULT;
	f->on_accept = opts->on_accept;
	f->accept_ctx = opts->ctx;
	f->unix_mode = opts->unix_mode ? opts->unix_mode & 07777 : 0600;
	f->loopback_only = opts->loopback_only;
	f->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 5);
	wn_relay_set_init(&f->relays);

	if (f->kind == WN_RELAY_PIPE)
		rc = listen_unix(f);
	else if (f->listen.kind == WN_HOST_IP)
		rc = listen_tcp_addr(f, (const struct sockaddr *)&f->listen.sa);
	else
		rc = listen_tcp_name(f);
	wn_endpoint_format(&f->listen, text, sizeof(text));
	if (rc < 0) {
		WN_LOG(log, WN_LOG_ERROR, LOG_COMP,
		       "forward %s: cannot listen on %s: %s", f->name, text,
		       wn_strerror(rc));
		if (f->own_file)
			unlink(f->listen.path);
		teardown(f);
		return rc;
	}
	if (f->on_accept)
		snprintf(tgt, sizeof(tgt), "(handed over)");
	else
		wn_endpoint_format(&f->target, tgt, sizeof(tgt));
	WN_LOG(log, WN_LOG_INFO, LOG_COMP, "forward %s: %s -> %s", f->name,
	       text, tgt);
	*out = f;
	return 0;
}

void wn_forward_close(struct wn_forward *f)
{
	struct stat st;

	if (f->closing)
		return;
	WN_LOG(f->log, WN_LOG_INFO, LOG_COMP,
	       "forward %s: closing (%ld connections)", f->name,
	       f->relays.live);
	wn_relay_set_close_all(&f->relays, WN_STREAM_ABORTED);
	/* Remove the socket file only if it is still the one we bound. */
	if (f->own_file && lstat(f->listen.path, &st) == 0 &&
	    st.st_dev == f->dev && st.st_ino == f->ino)
		unlink(f->listen.path);
	teardown(f);
}

int wn_forward_sockname(const struct wn_forward *f, struct sockaddr_storage *ss)
{
	int len = sizeof(*ss), i;

	if (f->kind != WN_RELAY_TCP)
		return WN_EINVAL;
	for (i = 0; i < f->nls; i++)
		if (f->ls[i].bound)
			return wn_err_from_uv(uv_tcp_getsockname(
			    &f->ls[i].u.tcp, (struct sockaddr *)ss, &len));
	return WN_EINVAL;
}

const struct wn_relay_set *wn_forward_relays(const struct wn_forward *f)
{
	return &f->relays;
}
