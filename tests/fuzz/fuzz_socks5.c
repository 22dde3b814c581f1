/* Fuzz target: the SOCKS5 handshake, the first bytes any local application
 * sends the client. The first input byte picks the mode (auth required or
 * not, the auth verdict) and the read size, as a slow or pipelining client
 * would split its bytes; the rest is the client's stream. The parser must
 * never crash, never take a byte past what it asked for, and end in a
 * consistent state. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wn_socks5 p;
	struct wn_socks5_out out;
	enum wn_socks5_event ev = WN_SOCKS5_MORE;
	size_t off = 1, used, want, chunk, step;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] & 0x1f) + 1;
	wn_socks5_init(&p, data[0] & 0x80);
	if (data[0] & 0x20)
		wn_socks5_enable_udp(&p);
	while (off < size) {
		want = wn_socks5_want(&p);
		if (want == 0)
			abort(); /* waiting for input means wanting some */
		chunk = want < step ? want : step;
		if (chunk > size - off)
			chunk = size - off;
		ev = wn_socks5_feed(&p, data + off, chunk, &used, &out);
		if (used > chunk || out.len > sizeof(out.buf))
			abort();
		off += used;
		if (ev == WN_SOCKS5_CHECK_AUTH) {
			/* Credentials may hold NUL bytes: lengths count. */
			if (p.user_len == 0 ||
			    p.user_len > WN_SOCKS5_CRED_MAX ||
			    p.pass_len > WN_SOCKS5_CRED_MAX)
				abort();
			ev = wn_socks5_auth_done(&p, data[0] & 0x40, &out);
		}
		if (ev == WN_SOCKS5_FAIL) {
			if (p.state != WN_SOCKS5_FAILED || !p.error)
				abort();
			return 0;
		}
		if (ev == WN_SOCKS5_CONNECT) {
			if (p.state != WN_SOCKS5_DONE || p.target.port == 0 ||
			    p.target.scheme != WN_SCHEME_TCP ||
			    strlen(p.target.host) > WN_HOSTNAME_MAX)
				abort();
			return 0;
		}
		if (ev == WN_SOCKS5_UDP_ASSOCIATE) {
			if (!(data[0] & 0x20) || p.state != WN_SOCKS5_DONE ||
			    p.target.scheme != WN_SCHEME_UDP ||
			    strlen(p.target.host) > WN_HOSTNAME_MAX)
				abort();
			return 0;
		}
		if (ev == WN_SOCKS5_MORE && used != chunk)
			abort();
	}
	return 0;
}
