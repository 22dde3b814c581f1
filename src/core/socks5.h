/* SOCKS5, server side (RFC 1928), with username/password authentication
 * (RFC 1929): a pure parser and reply encoder. Bytes in, events and reply
 * bytes out; no sockets, no clock.
 *
 * Messages (all integers big-endian):
 *
 *   greeting   u8 ver 5, u8 nmethods (1..255), nmethods x u8 method
 *   selection  u8 ver 5, u8 method (0 none, 2 username/password,
 *              0xff no acceptable method)
 *   auth       u8 ver 1, u8 ulen (1..255), user, u8 plen (0..255), pass
 *   auth reply u8 ver 1, u8 status (0 success, else failure)
 *   request    u8 ver 5, u8 cmd (1 CONNECT, 2 BIND, 3 UDP ASSOCIATE),
 *              u8 rsv, u8 atyp (1 IPv4: 4 bytes; 3 name: u8 len, name;
 *              4 IPv6: 16 bytes), u16 port
 *   reply      u8 ver 5, u8 rep, u8 rsv 0, u8 atyp, address, u16 port
 *
 * The state machine (one enum, changed only by the transition function in
 * socks5.c):
 *
 *   GREETING -> AUTH (method 2) -> AUTH_CHECK -> REQUEST -> DONE
 *   GREETING -> REQUEST (method 0)
 *   any -> FAILED
 *
 * The parser never takes a byte past the end of the current message, and
 * wn_socks5_want says how many bytes may be read next without reading
 * past it, so a reader that asks for exactly that leaves the bytes after
 * the request (the application's first data) in its socket. Every message
 * is bounded (at most WN_SOCKS5_MSG_MAX bytes), and so is a whole
 * handshake. CONNECT is supported, and UDP ASSOCIATE when the caller
 * enables it (wn_socks5_enable_udp); a name that is an IP literal is
 * returned as an address.
 *
 * UDP ASSOCIATE (RFC 1928 section 7): each datagram between the client
 * and the relay's UDP socket starts with a header
 *
 *   udp header u16 rsv 0, u8 frag (0: a whole datagram), u8 atyp,
 *              address (as in a request), u16 port, then the data
 *
 * naming the destination (client to relay) or the source (relay to
 * client). Fragments (frag != 0) are not supported: most servers drop
 * them, and so does warren. */
#ifndef WN_CORE_SOCKS5_H
#define WN_CORE_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"

#define WN_SOCKS5_VERSION 5
#define WN_SOCKS5_AUTH_VERSION 1

/* Methods. */
#define WN_SOCKS5_METHOD_NONE 0x00
#define WN_SOCKS5_METHOD_USERPASS 0x02
#define WN_SOCKS5_METHOD_UNACCEPTABLE 0xff

/* Commands. */
#define WN_SOCKS5_CMD_CONNECT 1
#define WN_SOCKS5_CMD_BIND 2
#define WN_SOCKS5_CMD_UDP_ASSOCIATE 3

/* Address types. */
#define WN_SOCKS5_ATYP_IPV4 1
#define WN_SOCKS5_ATYP_NAME 3
#define WN_SOCKS5_ATYP_IPV6 4

/* Reply codes. */
#define WN_SOCKS5_REP_SUCCEEDED 0x00
#define WN_SOCKS5_REP_GENERAL 0x01
#define WN_SOCKS5_REP_NOT_ALLOWED 0x02
#define WN_SOCKS5_REP_NET_UNREACHABLE 0x03
#define WN_SOCKS5_REP_HOST_UNREACHABLE 0x04
#define WN_SOCKS5_REP_REFUSED 0x05
#define WN_SOCKS5_REP_TTL_EXPIRED 0x06
#define WN_SOCKS5_REP_CMD_UNSUPPORTED 0x07
#define WN_SOCKS5_REP_ATYP_UNSUPPORTED 0x08

/* Auth status. */
#define WN_SOCKS5_AUTH_OK 0x00
#define WN_SOCKS5_AUTH_FAILED 0x01

/* The longest message: an auth request with 255-byte user and password. */
#define WN_SOCKS5_MSG_MAX (3 + 255 + 255)
/* The longest reply: one with an IPv6 bound address. */
#define WN_SOCKS5_OUT_MAX 22
#define WN_SOCKS5_CRED_MAX 255

/* A user of username/password authentication (RFC 1929): name (1..255
 * bytes) and password (0..255 bytes), NUL-terminated. */
struct wn_socks5_user {
	char name[WN_SOCKS5_CRED_MAX + 1];
	char pass[WN_SOCKS5_CRED_MAX + 1];
};

enum wn_socks5_state {
	WN_SOCKS5_GREETING,
	WN_SOCKS5_AUTH,
	WN_SOCKS5_AUTH_CHECK,
	WN_SOCKS5_REQUEST,
	WN_SOCKS5_DONE,
	WN_SOCKS5_FAILED,
};

/* What wn_socks5_feed found. */
enum wn_socks5_event {
	WN_SOCKS5_MORE,       /* the message is incomplete: read want bytes */
	WN_SOCKS5_SEND,       /* send out, then read on */
	WN_SOCKS5_CHECK_AUTH, /* user/pass are set: call wn_socks5_auth_done */
	WN_SOCKS5_CONNECT,    /* target is set: connect, then send a reply */
	WN_SOCKS5_UDP_ASSOCIATE, /* target is the client's announced UDP
	                          * source (may be 0.0.0.0:0, unknown): open
	                          * the relay socket, then send a reply */
	WN_SOCKS5_FAIL,          /* send out (may be empty), then close */
};

struct wn_socks5_out {
	uint8_t buf[WN_SOCKS5_OUT_MAX];
	size_t len;
};

struct wn_socks5 {
	enum wn_socks5_state state;
	bool require_auth;              /* offer only username/password */
	bool allow_udp;                 /* UDP ASSOCIATE is accepted */
	uint8_t msg[WN_SOCKS5_MSG_MAX]; /* the current message so far */
	size_t len;
	/* Results, valid after the event that announces them. */
	char user[WN_SOCKS5_CRED_MAX + 1], pass[WN_SOCKS5_CRED_MAX + 1];
	size_t user_len, pass_len;
	/* scheme TCP (CONNECT) or UDP (UDP ASSOCIATE); IP or name. Port 0
	 * only for UDP ASSOCIATE. */
	struct wn_endpoint target;
	const char *error; /* why it failed, for logs (static) */
};

/* Starts a handshake. With require_auth, only username/password (method
 * 2) is accepted; without, only "no authentication" (method 0). */
void wn_socks5_init(struct wn_socks5 *p, bool require_auth);

/* Accepts UDP ASSOCIATE requests from now on (call after init); without
 * it they are answered "command not supported". */
void wn_socks5_enable_udp(struct wn_socks5 *p);

/* How many bytes to read next: at least 1 while the parser waits for
 * input, never more than the current message still needs; 0 when it
 * waits for none (CHECK_AUTH, DONE, FAILED). */
size_t wn_socks5_want(const struct wn_socks5 *p);

/* Takes bytes from data (len of them), never past the end of the current
 * message; *used receives how many were taken. Returns the event, with
 * out filled for SEND and FAIL (out->len 0 when nothing is to be sent).
 * Feeding after DONE or FAILED returns WN_SOCKS5_FAIL with nothing used. */
enum wn_socks5_event wn_socks5_feed(struct wn_socks5 *p, const uint8_t *data,
                                    size_t len, size_t *used,
                                    struct wn_socks5_out *out);

/* The caller's verdict on the credentials (after CHECK_AUTH). Returns
 * SEND (the success status is in out; read on) or FAIL (the failure status
 * is in out; close after sending it). The credentials are wiped. */
enum wn_socks5_event wn_socks5_auth_done(struct wn_socks5 *p, bool ok,
                                         struct wn_socks5_out *out);

/* Encodes a reply to the request with code rep (WN_SOCKS5_REP_*) and the
 * bound address 0.0.0.0:0 (warren does not know the server's local
 * address for the target, and clients ignore it for CONNECT). */
void wn_socks5_reply(uint8_t rep, struct wn_socks5_out *out);

/* Encodes a reply with code rep and the bound address bound (IPv4 or
 * IPv6; another family or NULL gives 0.0.0.0:0): the UDP ASSOCIATE reply
 * names the relay's UDP socket this way. */
void wn_socks5_reply_addr(uint8_t rep, const struct sockaddr *bound,
                          struct wn_socks5_out *out);

/* ---- UDP ASSOCIATE datagrams ------------------------------------------ */

/* The longest header: one with a 255-byte name. */
#define WN_SOCKS5_UDP_HDR_MAX (4 + 1 + 255 + 2)

/* Parses the header of a datagram from the client. On success returns the
 * header's length (the data follows it) and fills dst (scheme UDP; an IP,
 * or a name, a name that is an IP literal becoming an address). Errors,
 * with *why set to a static reason: WN_ENOTSUP for a fragment (frag != 0)
 * or an unknown address type, WN_ETRUNC for a datagram shorter than its
 * header, WN_EINVAL for port 0, an empty, overlong or malformed name. The
 * reserved field is not checked (RFC 1928 leaves its use to nobody; some
 * clients send garbage there). */
int wn_socks5_udp_parse(const uint8_t *pkt, size_t len, struct wn_endpoint *dst,
                        const char **why);

/* Writes the header for a datagram from src to the client into buf (cap
 * bytes): src's address when it is an IP (an IPv4-mapped IPv6 address as
 * IPv4), else its name. Returns the length, or WN_ENOSPC when buf is too
 * small, WN_EINVAL for a name too long for the header. */
int wn_socks5_udp_header(const struct wn_endpoint *src, uint8_t *buf,
                         size_t cap);

#endif
