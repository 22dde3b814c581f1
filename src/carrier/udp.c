#include "carrier/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "util/err.h"

/* Kernel limits for one GSO send: UDP_MAX_SEGMENTS was 64 until Linux 6.9
 * (128 since); the payload of one sendmsg must fit an IPv4 datagram. */
#define GSO_MAX_SEGS 64
#define GSO_MAX_BYTES 65507

/* Receive slots. With GRO one read may hold up to 64 KiB of coalesced
 * datagrams, so a slot must be that large; each slot then holds dozens of
 * packets, so fewer slots batch as much. The buffer is allocated once; its
 * pages are only touched as large reads arrive. Without GRO a slot holds one
 * datagram, and 2 KiB is above every max_packet. */
#define SLOTS_MAX 64
#define SLOTS_GRO 32
#define SLOT_GRO 65536
#define SLOT_PLAIN 2048

/* Readiness events handled per poll callback: recvmmsg rounds before the
 * loop gets a turn. The poll is level-triggered, so whatever is left is read
 * in the next iteration. */
#define RECV_ROUNDS 8

#define DEFAULT_BUF (4 * 1024 * 1024)
#define PEND_INITIAL GSO_MAX_BYTES

#define LOG_COMP "carrier"

struct udp {
	struct wn_carrier base; /* first: the carrier is used through it */
	struct wn_loop *loop;
	struct wn_log *log;
	uv_poll_t poll;
	int fd;
	int family;
	int events; /* UV_READABLE | UV_WRITABLE as armed now */
	bool closed;
	bool gso;           /* UDP_SEGMENT in use */
	bool gro;           /* UDP_GRO enabled */
	bool want_writable; /* send() returned WN_EAGAIN: writable() owed */
	struct sockaddr_storage local;
	socklen_t local_len;
	struct wn_ratelimit rl_send, rl_recv;

	/* The one pending batch: the unsent rest of a batch the socket could
	 * not take whole. buf[off..len) is still to go. */
	struct {
		uint8_t *buf;
		size_t cap, len, off, seg;
		struct sockaddr_storage to;
		socklen_t tolen;
	} pend;

	/* Receive: nslots slots of slot bytes each in rbuf. */
	unsigned nslots;
	size_t slot;
	uint8_t *rbuf;
	struct mmsghdr rmsg[SLOTS_MAX];
	struct iovec riov[SLOTS_MAX];
	struct sockaddr_storage rname[SLOTS_MAX];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int)) * 2];
	} rctl[SLOTS_MAX];

	/* Send scratch for sendmmsg of single packets. */
	struct mmsghdr smsg[GSO_MAX_SEGS];
	struct iovec siov[GSO_MAX_SEGS];
};

static struct udp *to_udp(struct wn_carrier *c)
{
	return (struct udp *)c;
}

static const struct udp *to_cudp(const struct wn_carrier *c)
{
	return (const struct udp *)c;
}

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Packets in len bytes of seg-byte packets, the last possibly short. */
static uint64_t npkts(size_t len, size_t seg)
{
	return (len + seg - 1) / seg;
}

static const char *addr_str(const struct sockaddr *sa, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET &&
	    inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host)))
		snprintf(buf, cap, "%s:%u", host, ntohs(in4->sin_port));
	else if (sa->sa_family == AF_INET6 &&
	         inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
		snprintf(buf, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
	else
		snprintf(buf, cap, "(family %d)", sa->sa_family);
	return buf;
}

static uint64_t now_ms(const struct udp *u)
{
	return wn_loop_now_ms(u->loop);
}

/* True if sa is an address of family, with a length that fits the copies
 * this file makes of it. */
static bool addr_ok(int family, const struct sockaddr *sa, socklen_t len)
{
	socklen_t min = family == AF_INET ? sizeof(struct sockaddr_in)
	                                  : sizeof(struct sockaddr_in6);

	return sa && sa->sa_family == family && len >= min &&
	       len <= (socklen_t)sizeof(struct sockaddr_storage);
}

static void on_poll(uv_poll_t *p, int status, int events);

static void set_events(struct udp *u, int events)
{
	int rc;

	if (u->closed || u->events == events)
		return;
	rc = uv_poll_start(&u->poll, events, on_poll);
	if (rc < 0) {
		WN_LOG(u->log, WN_LOG_ERROR, LOG_COMP, "%s: poll: %s",
		       u->base.name, uv_strerror(rc));
		return;
	}
	u->events = events;
}

/* ---- send ---------------------------------------------------------------
 * The sys_* helpers return 0 or -errno and count syscalls; send_batch turns
 * them into progress. errno becomes a WN_E* code only in udp_send. */

static void count_out(struct udp *u, size_t bytes, size_t seg)
{
	u->base.stats.pkts_out += npkts(bytes, seg);
	u->base.stats.bytes_out += bytes;
}

/* One sendmsg of len bytes cut by the kernel into seg-byte packets. */
static int sys_send_gso(struct udp *u, const struct sockaddr *to,
                        socklen_t tolen, const uint8_t *buf, size_t len,
                        size_t seg)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(uint16_t))];
	} ctl;
	struct iovec iov = {(void *)buf, len};
	struct msghdr m = {0};
	struct cmsghdr *cm;
	uint16_t gso = (uint16_t)seg;

	memset(&ctl, 0, sizeof(ctl));
	m.msg_name = (void *)to;
	m.msg_namelen = tolen;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = ctl.buf;
	m.msg_controllen = sizeof(ctl.buf);
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_UDP;
	cm->cmsg_type = UDP_SEGMENT;
	cm->cmsg_len = CMSG_LEN(sizeof(gso));
	memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
	u->base.stats.send_calls++;
	if (sendmsg(u->fd, &m, 0) < 0)
		return -errno;
	return 0;
}

/* Up to GSO_MAX_SEGS single packets with one sendmmsg. *sent is the number
 * of bytes of whole packets that went out; the call may stop early, and
 * then the next call reports why. */
static int sys_send_mmsg(struct udp *u, const struct sockaddr *to,
                         socklen_t tolen, const uint8_t *buf, size_t len,
                         size_t seg, size_t *sent)
{
	unsigned n = 0, i;
	size_t off = 0;
	int r;

	*sent = 0;
	while (off < len && n < GSO_MAX_SEGS) {
		u->siov[n].iov_base = (void *)(buf + off);
		u->siov[n].iov_len = min_sz(seg, len - off);
		memset(&u->smsg[n], 0, sizeof(u->smsg[n]));
		u->smsg[n].msg_hdr.msg_name = (void *)to;
		u->smsg[n].msg_hdr.msg_namelen = tolen;
		u->smsg[n].msg_hdr.msg_iov = &u->siov[n];
		u->smsg[n].msg_hdr.msg_iovlen = 1;
		off += u->siov[n].iov_len;
		n++;
	}
	u->base.stats.send_calls++;
	r = sendmmsg(u->fd, u->smsg, n, 0);
	if (r < 0)
		return -errno;
	for (i = 0; i < (unsigned)r; i++)
		*sent += u->siov[i].iov_len;
	return 0;
}

/* Errors with which a GSO send may fail where the same packets sent one by
 * one would not: no checksum offload on the route's device (EIO), a kernel
 * or path that refuses the segment size (EINVAL), no GSO at all. */
static bool gso_suspect(int err)
{
	return err == -EIO || err == -EINVAL || err == -EOPNOTSUPP;
}

static void gso_disable(struct udp *u, int err)
{
	u->gso = false;
	WN_LOG(u->log, WN_LOG_WARN, LOG_COMP,
	       "%s: GSO send failed (%s): sending one by one from now on",
	       u->base.name, strerror(-err));
}

/* Sends len bytes of seg-byte packets. Returns 0 when all went out, or the
 * -errno that stopped it; *done is the number of bytes sent before that,
 * always whole packets. */
static int send_batch(struct udp *u, const struct sockaddr *to, socklen_t tolen,
                      const uint8_t *buf, size_t len, size_t seg, size_t *done)
{
	size_t off = 0, chunk, n, maxsegs = GSO_MAX_BYTES / seg;
	int err = 0, gerr;

	if (maxsegs > GSO_MAX_SEGS)
		maxsegs = GSO_MAX_SEGS;
	while (off < len) {
		chunk = min_sz(len - off, maxsegs * seg);
		if (u->gso && maxsegs >= 2 && chunk > seg) {
			gerr =
			    sys_send_gso(u, to, tolen, buf + off, chunk, seg);
			if (gerr == 0) {
				count_out(u, chunk, seg);
				off += chunk;
				continue;
			}
			if (!gso_suspect(gerr)) {
				err = gerr;
				break;
			}
			/* Did GSO fail, or would these packets fail anyway?
			 * Retry them one by one; GSO is to blame if that
			 * works. */
			err = sys_send_mmsg(u, to, tolen, buf + off, chunk, seg,
			                    &n);
			if (n > 0)
				gso_disable(u, gerr);
		} else {
			err = sys_send_mmsg(u, to, tolen, buf + off, len - off,
			                    seg, &n);
		}
		count_out(u, n, seg);
		off += n;
		if (err)
			break;
	}
	*done = off;
	return err;
}

static bool would_block(int err)
{
	/* ENOBUFS: a full device queue; like a full socket, it drains. But
	 * POLLOUT reports socket room, not device room, so while it lasts the
	 * flush is retried every loop iteration. */
	return err == -EAGAIN || err == -EWOULDBLOCK || err == -ENOBUFS ||
	       err == -EINTR;
}

static void drop_out(struct udp *u, const struct sockaddr *to, size_t len,
                     size_t seg, int err)
{
	char a[80];

	u->base.stats.drops_out += npkts(len, seg);
	WN_LOG_RL(u->log, &u->rl_send, now_ms(u), WN_LOG_WARN, LOG_COMP,
	          "%s: send to %s: %s: %zu bytes dropped", u->base.name,
	          addr_str(to, a, sizeof(a)), strerror(-err), len);
}

/* Keeps the unsent rest of a batch. Returns 0, or -ENOMEM if the buffer
 * could not grow to hold it. */
static int pend_keep(struct udp *u, const struct sockaddr *to, socklen_t tolen,
                     const uint8_t *buf, size_t len, size_t seg)
{
	uint8_t *nb;

	if (len > u->pend.cap) {
		nb = realloc(u->pend.buf, len);
		if (!nb)
			return -ENOMEM;
		u->pend.buf = nb;
		u->pend.cap = len;
	}
	memcpy(u->pend.buf, buf, len);
	memcpy(&u->pend.to, to, tolen);
	u->pend.tolen = tolen;
	u->pend.len = len;
	u->pend.off = 0;
	u->pend.seg = seg;
	return 0;
}

static int udp_send(struct wn_carrier *c, const struct sockaddr *to,
                    socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct udp *u = to_udp(c);
	size_t done;
	int err;

	if (u->closed)
		return WN_ECLOSED;
	if (len == 0 || !buf)
		return WN_EINVAL;
	if (seg == 0 || seg > len)
		seg = len;
	if (!addr_ok(u->family, to, tolen)) {
		u->base.stats.drops_out += npkts(len, seg);
		WN_LOG_RL(u->log, &u->rl_send, now_ms(u), WN_LOG_WARN, LOG_COMP,
		          "%s: send to address family %d: dropped",
		          u->base.name, to ? to->sa_family : -1);
		return WN_EINVAL;
	}
	if (u->pend.len > 0) {
		/* Taking this batch now would reorder it before the pending
		 * one, or need a second buffer. */
		u->want_writable = true;
		return WN_EAGAIN;
	}
	err = send_batch(u, to, tolen, buf, len, seg, &done);
	if (err == 0)
		return 0;
	if (would_block(err)) {
		set_events(u, UV_READABLE | UV_WRITABLE);
		if (done == 0) {
			u->want_writable = true;
			return WN_EAGAIN;
		}
		err = pend_keep(u, to, tolen, buf + done, len - done, seg);
		if (err == 0)
			return 0;
	}
	drop_out(u, to, len - done, seg, err);
	return wn_err_from_errno(-err);
}

/* POLLOUT: flush the pending batch, then tell the engine if it was told to
 * wait. */
static void on_writable(struct udp *u)
{
	const struct sockaddr *to = (const struct sockaddr *)&u->pend.to;
	size_t done;
	int err;

	if (u->pend.len > 0) {
		err =
		    send_batch(u, to, u->pend.tolen, u->pend.buf + u->pend.off,
		               u->pend.len - u->pend.off, u->pend.seg, &done);
		u->pend.off += done;
		if (would_block(err))
			return; /* still full: POLLOUT stays armed */
		if (err)
			drop_out(u, to, u->pend.len - u->pend.off, u->pend.seg,
			         err);
		u->pend.len = 0;
		u->pend.off = 0;
	}
	set_events(u, UV_READABLE);
	if (u->want_writable) {
		u->want_writable = false;
		if (u->base.h.writable)
			u->base.h.writable(u->base.h.ctx, &u->base);
	}
}

/* ---- receive ----------------------------------------------------------- */

/* The segment size of a GRO-coalesced read, or 0. */
static size_t gro_size(struct msghdr *m)
{
	struct cmsghdr *cm;
	int v;

	for (cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(v))) {
			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			return v > 0 ? (size_t)v : 0;
		}
	}
	return 0;
}

/* Delivers the packets of one read. */
static void deliver(struct udp *u, struct mmsghdr *mm)
{
	struct msghdr *m = &mm->msg_hdr;
	const struct sockaddr *from = m->msg_name;
	uint8_t *p = m->msg_iov->iov_base;
	size_t len = mm->msg_len, seg, n;
	char a[80];

	if ((m->msg_flags & MSG_TRUNC) || len == 0) {
		u->base.stats.drops_in++;
		WN_LOG_RL(u->log, &u->rl_recv, now_ms(u), WN_LOG_WARN, LOG_COMP,
		          "%s: %s datagram from %s: dropped", u->base.name,
		          len ? "oversized" : "empty",
		          addr_str(from, a, sizeof(a)));
		return;
	}
	seg = gro_size(m);
	if (seg == 0 || seg > len)
		seg = len;
	while (len > 0) {
		n = min_sz(seg, len);
		u->base.stats.pkts_in++;
		u->base.stats.bytes_in += n;
		u->base.h.recv(u->base.h.ctx, &u->base, from, m->msg_namelen, p,
		               n);
		if (u->closed)
			break;
		p += n;
		len -= n;
	}
}

/* Errors a read may report that concern one earlier packet or peer (ICMP
 * errors queued on the socket), not the socket: note them and read on. */
static bool recv_soft_error(int e)
{
	return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH ||
	       e == EHOSTDOWN || e == ENETDOWN || e == ECONNRESET ||
	       e == EMSGSIZE || e == EPROTO || e == ETIMEDOUT || e == EPERM;
}

static void do_recv(struct udp *u)
{
	unsigned round, i;
	int n, e;

	for (round = 0; round < RECV_ROUNDS; round++) {
		for (i = 0; i < u->nslots; i++) {
			struct msghdr *m = &u->rmsg[i].msg_hdr;

			m->msg_namelen = sizeof(u->rname[i]);
			m->msg_controllen = u->gro ? sizeof(u->rctl[i].buf) : 0;
			m->msg_flags = 0;
			u->rmsg[i].msg_len = 0;
		}
		u->base.stats.recv_calls++;
		n = recvmmsg(u->fd, u->rmsg, u->nslots, 0, NULL);
		if (n < 0) {
			e = errno;
			if (e == EAGAIN || e == EWOULDBLOCK)
				break;
			if (e == EINTR)
				continue;
			WN_LOG_RL(u->log, &u->rl_recv, now_ms(u), WN_LOG_INFO,
			          LOG_COMP, "%s: recv: %s", u->base.name,
			          strerror(e));
			/* Reading the error cleared it; the datagrams
			 * behind it are still there. */
			if (recv_soft_error(e))
				continue;
			break;
		}
		for (i = 0; i < (unsigned)n; i++) {
			deliver(u, &u->rmsg[i]);
			if (u->closed)
				return;
		}
		if ((unsigned)n < u->nslots)
			break; /* drained: save the EAGAIN round trip */
	}
}

/* libuv reports POLLERR as UV_EBADF and stops the handle. On an unconnected
 * UDP socket that means a pending socket error or a non-empty error queue:
 * clear both, and poll again. */
static void on_poll_error(struct udp *u, int status)
{
	char b[256];
	struct iovec iov = {b, sizeof(b)};
	struct msghdr m = {0};
	socklen_t sl = sizeof(int);
	int soerr = 0, i, events = u->events;

	(void)getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	for (i = 0; i < 64; i++)
		if (recvmsg(u->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			break;
	WN_LOG_RL(u->log, &u->rl_recv, now_ms(u), WN_LOG_INFO, LOG_COMP,
	          "%s: poll: %s (socket error: %s)", u->base.name,
	          uv_strerror(status), strerror(soerr));
	u->events = 0;
	set_events(u, events);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct udp *u = p->data;

	if (u->closed)
		return;
	if (status < 0) {
		on_poll_error(u, status);
		return;
	}
	if (events & UV_WRITABLE) {
		on_writable(u);
		if (u->closed)
			return;
	}
	if (events & UV_READABLE)
		do_recv(u);
}

/* ---- the rest of the operations ---------------------------------------- */

static size_t udp_max_packet(const struct wn_carrier *c)
{
	return to_cudp(c)->family == AF_INET ? WN_UDP_MAX_PACKET_V4
	                                     : WN_UDP_MAX_PACKET_V6;
}

static int udp_local_addr(const struct wn_carrier *c,
                          struct sockaddr_storage *ss, socklen_t *len)
{
	const struct udp *u = to_cudp(c);

	if (u->closed)
		return WN_ECLOSED;
	memcpy(ss, &u->local, u->local_len);
	*len = u->local_len;
	return 0;
}

static void udp_free(struct udp *u)
{
	free(u->rbuf);
	free(u->pend.buf);
	free(u);
}

static void on_closed(uv_handle_t *h)
{
	udp_free(h->data);
}

/* Shared by close() and a failed open once the poll handle exists. */
static void shut(struct udp *u)
{
	u->closed = true;
	memset(&u->base.h, 0, sizeof(u->base.h));
	/* uv_close stops the poll and removes the fd from epoll at once, so
	 * the fd may be closed right after; the memory goes in on_closed. */
	uv_close((uv_handle_t *)&u->poll, on_closed);
	close(u->fd);
	u->fd = -1;
}

static void udp_close(struct wn_carrier *c)
{
	struct udp *u = to_udp(c);
	const struct wn_carrier_stats *s = &u->base.stats;

	if (u->closed)
		return;
	WN_LOG(u->log, WN_LOG_INFO, LOG_COMP,
	       "%s: closed (in %llu pkts %llu bytes, out %llu pkts %llu "
	       "bytes, dropped in %llu out %llu)",
	       u->base.name, (unsigned long long)s->pkts_in,
	       (unsigned long long)s->bytes_in, (unsigned long long)s->pkts_out,
	       (unsigned long long)s->bytes_out,
	       (unsigned long long)s->drops_in,
	       (unsigned long long)s->drops_out);
	shut(u);
}

static const struct wn_carrier_ops udp_ops = {
    .send = udp_send,
    .max_packet = udp_max_packet,
    .local_addr = udp_local_addr,
    .close = udp_close,
};

/* ---- open -------------------------------------------------------------- */

/* Sets a socket buffer size, beyond net.core.*mem_max when privileged.
 * Returns the size the kernel reports (it doubles the request). */
static int set_buf(int fd, int force_opt, int opt, int size)
{
	socklen_t sl = sizeof(size);

	if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
	size = 0;
	(void)getsockopt(fd, SOL_SOCKET, opt, &size, &sl);
	return size;
}

/* Socket options other than buffers and offloads. Returns 0 or -errno. */
static int set_options(int fd, int family)
{
	int one = 1, v;

	if (family == AF_INET6) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		               sizeof(one)) < 0)
			return -errno;
		v = IPV6_PMTUDISC_PROBE;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v,
		               sizeof(v)) < 0)
			return -errno;
	} else {
		v = IP_PMTUDISC_PROBE;
		if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v)) <
		    0)
			return -errno;
	}
	return 0;
}

/* Turns on what the kernel offers of GSO and GRO, unless opted out. */
static void set_offloads(struct udp *u, unsigned flags)
{
	int one = 1, v = 0;
	socklen_t sl = sizeof(v);

	/* Reading UDP_SEGMENT (the socket default segment size, which stays
	 * 0) succeeds exactly when the kernel has UDP GSO. */
	if (!(flags & WN_UDP_NO_GSO) &&
	    getsockopt(u->fd, SOL_UDP, UDP_SEGMENT, &v, &sl) == 0)
		u->gso = true;
	if (!(flags & WN_UDP_NO_GRO) &&
	    setsockopt(u->fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0)
		u->gro = true;
}

static int init_recv(struct udp *u)
{
	unsigned i;

	u->nslots = u->gro ? SLOTS_GRO : SLOTS_MAX;
	u->slot = u->gro ? SLOT_GRO : SLOT_PLAIN;
	u->rbuf = malloc(u->nslots * u->slot);
	if (!u->rbuf)
		return WN_ENOMEM;
	for (i = 0; i < u->nslots; i++) {
		struct msghdr *m = &u->rmsg[i].msg_hdr;

		u->riov[i].iov_base = u->rbuf + i * u->slot;
		u->riov[i].iov_len = u->slot;
		m->msg_name = &u->rname[i];
		m->msg_iov = &u->riov[i];
		m->msg_iovlen = 1;
		m->msg_control = u->rctl[i].buf;
	}
	return 0;
}

int wn_udp_gso_on(const struct wn_carrier *c)
{
	return to_cudp(c)->gso;
}

int wn_udp_wildcard(int family, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)ss;

		in4->sin_family = AF_INET;
		in4->sin_addr.s_addr = htonl(INADDR_ANY);
		*len = sizeof(*in4);
		return 0;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_any;
		*len = sizeof(*in6);
		return 0;
	}
	return WN_EINVAL;
}

int wn_udp_carrier_open(struct wn_loop *loop, struct wn_log *log,
                        const struct sockaddr *bind_addr, socklen_t bind_len,
                        const struct wn_udp_opts *opts,
                        const struct wn_carrier_handler *h,
                        struct wn_carrier **out)
{
	static const struct wn_udp_opts defaults = {0};
	struct udp *u;
	char a[80];
	int err, sndbuf, rcvbuf;

	if (!opts)
		opts = &defaults;
	if (!loop || !h || !h->recv || !out || !bind_addr ||
	    (bind_addr->sa_family != AF_INET &&
	     bind_addr->sa_family != AF_INET6) ||
	    !addr_ok(bind_addr->sa_family, bind_addr, bind_len))
		return WN_EINVAL;

	u = calloc(1, sizeof(*u));
	if (!u)
		return WN_ENOMEM;
	u->base.ops = &udp_ops;
	u->base.scheme = "udp";
	u->base.caps = WN_CARRIER_DATAGRAM;
	u->base.h = *h;
	snprintf(u->base.name, sizeof(u->base.name), "udp#%u", opts->id);
	u->loop = loop;
	u->log = log;
	u->family = bind_addr->sa_family;
	u->rl_send = (struct wn_ratelimit)WN_RATELIMIT_INIT(1000, 5);
	u->rl_recv = (struct wn_ratelimit)WN_RATELIMIT_INIT(1000, 5);

	u->fd = socket(u->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	               IPPROTO_UDP);
	if (u->fd < 0) {
		err = wn_err_from_errno(errno);
		goto fail_free;
	}
	sndbuf = set_buf(u->fd, SO_SNDBUFFORCE, SO_SNDBUF,
	                 opts->sndbuf > 0 ? opts->sndbuf : DEFAULT_BUF);
	rcvbuf = set_buf(u->fd, SO_RCVBUFFORCE, SO_RCVBUF,
	                 opts->rcvbuf > 0 ? opts->rcvbuf : DEFAULT_BUF);
	err = set_options(u->fd, u->family);
	if (err < 0) {
		err = wn_err_from_errno(-err);
		goto fail_close;
	}
	set_offloads(u, opts->flags);
	if (bind(u->fd, bind_addr, bind_len) < 0) {
		err = wn_err_from_errno(errno);
		WN_LOG(log, WN_LOG_ERROR, LOG_COMP, "%s: bind %s: %s",
		       u->base.name, addr_str(bind_addr, a, sizeof(a)),
		       strerror(errno));
		goto fail_close;
	}
	u->local_len = sizeof(u->local);
	if (getsockname(u->fd, (struct sockaddr *)&u->local, &u->local_len) <
	    0) {
		err = wn_err_from_errno(errno);
		goto fail_close;
	}
	err = init_recv(u);
	if (err < 0)
		goto fail_close;
	u->pend.buf = malloc(PEND_INITIAL);
	if (!u->pend.buf) {
		err = WN_ENOMEM;
		goto fail_close;
	}
	u->pend.cap = PEND_INITIAL;

	err = uv_poll_init(wn_loop_uv(loop), &u->poll, u->fd);
	if (err < 0) {
		err = wn_err_from_uv(err);
		goto fail_close;
	}
	u->poll.data = u;
	err = uv_poll_start(&u->poll, UV_READABLE, on_poll);
	if (err < 0) {
		/* The handle is live now: it must be closed, and the memory
		 * freed from its close callback. */
		shut(u);
		return wn_err_from_uv(err);
	}
	u->events = UV_READABLE;

	WN_LOG(log, WN_LOG_INFO, LOG_COMP,
	       "%s: open on %s (gso %s, gro %s, sndbuf %d, rcvbuf %d)",
	       u->base.name,
	       addr_str((struct sockaddr *)&u->local, a, sizeof(a)),
	       u->gso ? "on" : "off", u->gro ? "on" : "off", sndbuf, rcvbuf);
	*out = &u->base;
	return 0;

fail_close:
	close(u->fd);
fail_free:
	udp_free(u);
	return err;
}
