/* The SOCKS5 server-side parser. See socks5.h for the messages and the
 * state machine. Each byte is appended to the current message and the
 * message is checked at once, so errors are reported as soon as the byte
 * that makes them is seen, and nothing past the message is ever taken. */
#include "core/socks5.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/rw.h"

#define TO(s) (1u << (s))

static const unsigned allowed[] = {
    [WN_SOCKS5_GREETING] =
        TO(WN_SOCKS5_AUTH) | TO(WN_SOCKS5_REQUEST) | TO(WN_SOCKS5_FAILED),
    [WN_SOCKS5_AUTH] = TO(WN_SOCKS5_AUTH_CHECK) | TO(WN_SOCKS5_FAILED),
    [WN_SOCKS5_AUTH_CHECK] = TO(WN_SOCKS5_REQUEST) | TO(WN_SOCKS5_FAILED),
    [WN_SOCKS5_REQUEST] = TO(WN_SOCKS5_DONE) | TO(WN_SOCKS5_FAILED),
    [WN_SOCKS5_DONE] = 0,
    [WN_SOCKS5_FAILED] = 0,
};

/* The one transition function. A transition the table does not allow is
 * a bug; it fails the handshake rather than continue in a wrong state. */
static bool move(struct wn_socks5 *p, enum wn_socks5_state to)
{
	if (!(allowed[p->state] & TO(to))) {
		p->state = WN_SOCKS5_FAILED;
		p->error = "internal state error";
		return false;
	}
	p->state = to;
	p->len = 0;
	return true;
}

static void put(struct wn_socks5_out *out, uint8_t a, uint8_t b)
{
	out->buf[0] = a;
	out->buf[1] = b;
	out->len = 2;
}

static enum wn_socks5_event fail(struct wn_socks5 *p, const char *why,
                                 struct wn_socks5_out *out)
{
	p->error = why;
	move(p, WN_SOCKS5_FAILED);
	(void)out;
	return WN_SOCKS5_FAIL;
}

static enum wn_socks5_event fail_reply(struct wn_socks5 *p, const char *why,
                                       uint8_t rep, struct wn_socks5_out *out)
{
	wn_socks5_reply(rep, out);
	return fail(p, why, out);
}

void wn_socks5_init(struct wn_socks5 *p, bool require_auth)
{
	memset(p, 0, sizeof(*p));
	p->state = WN_SOCKS5_GREETING;
	p->require_auth = require_auth;
}

/* The total length of the current message as far as its bytes so far
 * tell: a lower bound while a length byte is still missing. */
static size_t msg_total(const struct wn_socks5 *p)
{
	const uint8_t *m = p->msg;
	size_t ulen;

	switch (p->state) {
	case WN_SOCKS5_GREETING:
		return p->len < 2 ? 2 : 2 + (size_t)m[1];
	case WN_SOCKS5_AUTH:
		if (p->len < 2)
			return 2;
		ulen = m[1];
		if (p->len < 3 + ulen)
			return 3 + ulen;
		return 3 + ulen + m[2 + ulen];
	case WN_SOCKS5_REQUEST:
		if (p->len < 4)
			return 4;
		switch (m[3]) {
		case WN_SOCKS5_ATYP_IPV4:
			return 4 + 4 + 2;
		case WN_SOCKS5_ATYP_IPV6:
			return 4 + 16 + 2;
		default: /* a name: its length byte comes next */
			return p->len < 5 ? 5 : 5 + (size_t)m[4] + 2;
		}
	default:
		return 0;
	}
}

size_t wn_socks5_want(const struct wn_socks5 *p)
{
	size_t total = msg_total(p);

	return total > p->len ? total - p->len : 0;
}

static enum wn_socks5_event greeting(struct wn_socks5 *p,
                                     struct wn_socks5_out *out)
{
	uint8_t want =
	    p->require_auth ? WN_SOCKS5_METHOD_USERPASS : WN_SOCKS5_METHOD_NONE;
	size_t i;

	if (p->msg[0] != WN_SOCKS5_VERSION)
		/* Not SOCKS5 (SOCKS4, TLS, HTTP...): nothing it would
		 * understand can be said, so just close. */
		return fail(p, "not SOCKS version 5", out);
	if (p->len >= 2 && p->msg[1] == 0) {
		put(out, WN_SOCKS5_VERSION, WN_SOCKS5_METHOD_UNACCEPTABLE);
		return fail(p, "no authentication methods offered", out);
	}
	if (p->len < msg_total(p))
		return WN_SOCKS5_MORE;
	for (i = 2; i < p->len; i++)
		if (p->msg[i] == want)
			break;
	if (i == p->len) {
		put(out, WN_SOCKS5_VERSION, WN_SOCKS5_METHOD_UNACCEPTABLE);
		return fail(p,
		            p->require_auth
		                ? "client does not offer username/password"
		                : "client does not offer no-authentication",
		            out);
	}
	put(out, WN_SOCKS5_VERSION, want);
	move(p, p->require_auth ? WN_SOCKS5_AUTH : WN_SOCKS5_REQUEST);
	return WN_SOCKS5_SEND;
}

static enum wn_socks5_event auth(struct wn_socks5 *p, struct wn_socks5_out *out)
{
	size_t ulen, plen;

	if (p->msg[0] != WN_SOCKS5_AUTH_VERSION) {
		put(out, WN_SOCKS5_AUTH_VERSION, WN_SOCKS5_AUTH_FAILED);
		return fail(p, "bad username/password version", out);
	}
	if (p->len >= 2 && p->msg[1] == 0) {
		put(out, WN_SOCKS5_AUTH_VERSION, WN_SOCKS5_AUTH_FAILED);
		return fail(p, "empty username", out);
	}
	if (p->len < 3 || p->len < msg_total(p))
		return WN_SOCKS5_MORE;
	ulen = p->msg[1];
	plen = p->msg[2 + ulen];
	memcpy(p->user, p->msg + 2, ulen);
	p->user[ulen] = '\0';
	p->user_len = ulen;
	memcpy(p->pass, p->msg + 3 + ulen, plen);
	p->pass[plen] = '\0';
	p->pass_len = plen;
	/* The password is copied out; keep no second copy. */
	memset(p->msg, 0, sizeof(p->msg));
	move(p, WN_SOCKS5_AUTH_CHECK);
	return WN_SOCKS5_CHECK_AUTH;
}

/* A name that is an IP literal becomes an address, so the server judges
 * and connects to it as one. */
static bool literal(struct wn_endpoint *t)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)&t->sa;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->sa;

	if (inet_pton(AF_INET, t->host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(t->port);
		t->salen = sizeof(*a4);
	} else if (inet_pton(AF_INET6, t->host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(t->port);
		t->salen = sizeof(*a6);
	} else {
		return false;
	}
	t->kind = WN_HOST_IP;
	return true;
}

/* Reads ATYP-typed address and port (the bytes after atyp) into t, whose
 * scheme the caller sets. Returns 0, or a WN_SOCKS5_REP_* code with *why
 * set for an address that cannot be used; a short input is left to the
 * reader's error flag. */
static int read_addr(struct wn_rd *rd, uint8_t atyp, struct wn_endpoint *t,
                     const char **why)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)&t->sa;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->sa;
	uint8_t n;

	switch (atyp) {
	case WN_SOCKS5_ATYP_IPV4:
		wn_rd_bytes(rd, &a4->sin_addr, 4);
		t->port = wn_rd_u16be(rd);
		a4->sin_family = AF_INET;
		a4->sin_port = htons(t->port);
		t->salen = sizeof(*a4);
		t->kind = WN_HOST_IP;
		inet_ntop(AF_INET, &a4->sin_addr, t->host, sizeof(t->host));
		return 0;
	case WN_SOCKS5_ATYP_IPV6:
		wn_rd_bytes(rd, &a6->sin6_addr, 16);
		t->port = wn_rd_u16be(rd);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(t->port);
		t->salen = sizeof(*a6);
		t->kind = WN_HOST_IP;
		inet_ntop(AF_INET6, &a6->sin6_addr, t->host, sizeof(t->host));
		return 0;
	case WN_SOCKS5_ATYP_NAME:
		n = wn_rd_u8(rd);
		if (n == 0) {
			*why = "empty name";
			return WN_SOCKS5_REP_GENERAL;
		}
		/* A name longer than DNS allows cannot be reached. */
		if (n > WN_HOSTNAME_MAX) {
			*why = "name too long";
			return WN_SOCKS5_REP_HOST_UNREACHABLE;
		}
		wn_rd_bytes(rd, t->host, n);
		if (rd->err)
			return 0;
		t->host[n] = '\0';
		t->port = wn_rd_u16be(rd);
		t->kind = WN_HOST_NAME;
		if (!literal(t) && !wn_hostname_valid(t->host, n)) {
			*why = "malformed name";
			return WN_SOCKS5_REP_HOST_UNREACHABLE;
		}
		return 0;
	default:
		*why = "unknown address type";
		return WN_SOCKS5_REP_ATYP_UNSUPPORTED;
	}
}

static enum wn_socks5_event request(struct wn_socks5 *p,
                                    struct wn_socks5_out *out)
{
	struct wn_endpoint *t = &p->target;
	const char *why = NULL;
	struct wn_rd rd;
	bool udp;
	int rep;

	if (p->msg[0] != WN_SOCKS5_VERSION)
		return fail_reply(p, "bad request version",
		                  WN_SOCKS5_REP_GENERAL, out);
	if (p->len >= 2 && p->msg[1] != WN_SOCKS5_CMD_CONNECT &&
	    !(p->allow_udp && p->msg[1] == WN_SOCKS5_CMD_UDP_ASSOCIATE))
		return fail_reply(p,
		                  p->msg[1] == WN_SOCKS5_CMD_BIND ? "BIND"
		                  : p->msg[1] == WN_SOCKS5_CMD_UDP_ASSOCIATE
		                      ? "UDP ASSOCIATE"
		                      : "unknown command",
		                  WN_SOCKS5_REP_CMD_UNSUPPORTED, out);
	if (p->len >= 4 && p->msg[3] != WN_SOCKS5_ATYP_IPV4 &&
	    p->msg[3] != WN_SOCKS5_ATYP_IPV6 &&
	    p->msg[3] != WN_SOCKS5_ATYP_NAME)
		return fail_reply(p, "unknown address type",
		                  WN_SOCKS5_REP_ATYP_UNSUPPORTED, out);
	if (p->len >= 5 && p->msg[3] == WN_SOCKS5_ATYP_NAME && p->msg[4] == 0)
		return fail_reply(p, "empty name", WN_SOCKS5_REP_GENERAL, out);
	if (p->len < 4 || p->len < msg_total(p))
		return WN_SOCKS5_MORE;

	udp = p->msg[1] == WN_SOCKS5_CMD_UDP_ASSOCIATE;
	memset(t, 0, sizeof(*t));
	t->scheme = udp ? WN_SCHEME_UDP : WN_SCHEME_TCP;
	wn_rd_init(&rd, p->msg + 4, p->len - 4);
	rep = read_addr(&rd, p->msg[3], t, &why);
	if (rep)
		return fail_reply(p, why, (uint8_t)rep, out);
	if (rd.err)
		return fail_reply(p, "internal length error",
		                  WN_SOCKS5_REP_GENERAL, out);
	/* A UDP ASSOCIATE request may leave the client's port unsaid (0):
	 * it need not know it before it sends. */
	if (t->port == 0 && !udp)
		return fail_reply(p, "port 0", WN_SOCKS5_REP_HOST_UNREACHABLE,
		                  out);
	move(p, WN_SOCKS5_DONE);
	return udp ? WN_SOCKS5_UDP_ASSOCIATE : WN_SOCKS5_CONNECT;
}

enum wn_socks5_event wn_socks5_feed(struct wn_socks5 *p, const uint8_t *data,
                                    size_t len, size_t *used,
                                    struct wn_socks5_out *out)
{
	enum wn_socks5_event ev = WN_SOCKS5_MORE;
	size_t i = 0;

	out->len = 0;
	*used = 0;
	if (p->state != WN_SOCKS5_GREETING && p->state != WN_SOCKS5_AUTH &&
	    p->state != WN_SOCKS5_REQUEST) {
		if (!p->error)
			p->error = "input at the wrong time";
		p->state = WN_SOCKS5_FAILED;
		return WN_SOCKS5_FAIL;
	}
	while (i < len && ev == WN_SOCKS5_MORE) {
		/* Never past the message: msg_total bounds len, and no
		 * message is longer than msg. */
		p->msg[p->len++] = data[i++];
		switch (p->state) {
		case WN_SOCKS5_GREETING:
			ev = greeting(p, out);
			break;
		case WN_SOCKS5_AUTH:
			ev = auth(p, out);
			break;
		default:
			ev = request(p, out);
			break;
		}
	}
	*used = i;
	return ev;
}

enum wn_socks5_event wn_socks5_auth_done(struct wn_socks5 *p, bool ok,
                                         struct wn_socks5_out *out)
{
	out->len = 0;
	memset(p->user, 0, sizeof(p->user));
	memset(p->pass, 0, sizeof(p->pass));
	p->user_len = p->pass_len = 0;
	if (p->state != WN_SOCKS5_AUTH_CHECK)
		return fail(p, "auth verdict at the wrong time", out);
	if (!ok) {
		put(out, WN_SOCKS5_AUTH_VERSION, WN_SOCKS5_AUTH_FAILED);
		return fail(p, "wrong username or password", out);
	}
	put(out, WN_SOCKS5_AUTH_VERSION, WN_SOCKS5_AUTH_OK);
	move(p, WN_SOCKS5_REQUEST);
	return WN_SOCKS5_SEND;
}

void wn_socks5_reply(uint8_t rep, struct wn_socks5_out *out)
{
	wn_socks5_reply_addr(rep, NULL, out);
}

/* Writes ATYP, address and port of an IPv4 or IPv6 socket address (an
 * IPv4-mapped IPv6 address as IPv4, which every client understands);
 * anything else as 0.0.0.0:0. */
static void write_sockaddr(struct wn_wr *wr, const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
	                                   0, 0, 0, 0, 0xff, 0xff};
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;

	if (sa && sa->sa_family == AF_INET) {
		wn_wr_u8(wr, WN_SOCKS5_ATYP_IPV4);
		wn_wr_bytes(wr, &a4->sin_addr, 4);
		wn_wr_u16be(wr, ntohs(a4->sin_port));
	} else if (sa && sa->sa_family == AF_INET6 &&
	           memcmp(&a6->sin6_addr, mapped, sizeof(mapped)) == 0) {
		wn_wr_u8(wr, WN_SOCKS5_ATYP_IPV4);
		wn_wr_bytes(wr, (const uint8_t *)&a6->sin6_addr + 12, 4);
		wn_wr_u16be(wr, ntohs(a6->sin6_port));
	} else if (sa && sa->sa_family == AF_INET6) {
		wn_wr_u8(wr, WN_SOCKS5_ATYP_IPV6);
		wn_wr_bytes(wr, &a6->sin6_addr, 16);
		wn_wr_u16be(wr, ntohs(a6->sin6_port));
	} else {
		wn_wr_u8(wr, WN_SOCKS5_ATYP_IPV4);
		wn_wr_u32be(wr, 0);
		wn_wr_u16be(wr, 0);
	}
}

void wn_socks5_reply_addr(uint8_t rep, const struct sockaddr *bound,
                          struct wn_socks5_out *out)
{
	struct wn_wr wr;

	/* The fixed part directly (GCC 12 misjudges a writer's first store
	 * into a small array member as an overflow). */
	out->buf[0] = WN_SOCKS5_VERSION;
	out->buf[1] = rep;
	out->buf[2] = 0;
	wn_wr_init(&wr, out->buf + 3, sizeof(out->buf) - 3);
	write_sockaddr(&wr, bound);
	out->len = 3 + wn_wr_len(&wr);
}

void wn_socks5_enable_udp(struct wn_socks5 *p)
{
	p->allow_udp = true;
}

int wn_socks5_udp_parse(const uint8_t *pkt, size_t len, struct wn_endpoint *dst,
                        const char **why)
{
	struct wn_rd rd;
	uint8_t frag, atyp;
	int rep;

	*why = NULL;
	if (len < 4) {
		*why = "datagram shorter than a SOCKS5 UDP header";
		return WN_ETRUNC;
	}
	wn_rd_init(&rd, pkt, len);
	(void)wn_rd_u16be(&rd); /* RSV */
	frag = wn_rd_u8(&rd);
	atyp = wn_rd_u8(&rd);
	if (frag != 0) {
		*why = "fragment (FRAG != 0)";
		return WN_ENOTSUP;
	}
	memset(dst, 0, sizeof(*dst));
	dst->scheme = WN_SCHEME_UDP;
	rep = read_addr(&rd, atyp, dst, why);
	if (rep == WN_SOCKS5_REP_ATYP_UNSUPPORTED)
		return WN_ENOTSUP;
	if (rep)
		return WN_EINVAL;
	if (rd.err) {
		*why = "datagram shorter than its SOCKS5 UDP header";
		return WN_ETRUNC;
	}
	if (dst->port == 0) {
		*why = "port 0";
		return WN_EINVAL;
	}
	return (int)rd.off;
}

int wn_socks5_udp_header(const struct wn_endpoint *src, uint8_t *buf,
                         size_t cap)
{
	size_t n = strlen(src->host);
	struct wn_wr wr;

	if (src->kind != WN_HOST_IP && n > 255)
		return WN_EINVAL;
	wn_wr_init(&wr, buf, cap);
	wn_wr_u16be(&wr, 0);
	wn_wr_u8(&wr, 0);
	if (src->kind == WN_HOST_IP) {
		write_sockaddr(&wr, (const struct sockaddr *)&src->sa);
	} else {
		wn_wr_u8(&wr, WN_SOCKS5_ATYP_NAME);
		wn_wr_u8(&wr, (uint8_t)n);
		wn_wr_bytes(&wr, src->host, n);
		wn_wr_u16be(&wr, src->port);
	}
	if (wr.err)
		return WN_ENOSPC;
	return (int)wn_wr_len(&wr);
}
