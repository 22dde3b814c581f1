/* An HTTP/1 request head, read byte by byte as a web server's parser reads
 * it (RFC 9112 sections 3 and 5): the request line, the header field
 * lines, the empty line. The tls carrier answers strangers who send HTTP
 * as a web server would; a server that waited for the empty line whatever
 * came before it would be told apart from nginx by a prober who sends one
 * bad line and waits. This says, at the byte where it is decided, whether
 * the head is complete or broken. Pure: no I/O, no allocation. */
#ifndef WARREN_CORE_HTTPHEAD_H
#define WARREN_CORE_HTTPHEAD_H

#include <stddef.h>
#include <stdint.h>

enum wn_httphead_result {
	WN_HTTPHEAD_MORE = 0, /* all of it read, nothing decided yet */
	WN_HTTPHEAD_DONE,     /* the empty line: the head is complete */
	WN_HTTPHEAD_BAD,      /* a byte no request head may have there */
	WN_HTTPHEAD_TOO_LONG, /* more than the limit, still not complete */
};

struct wn_httphead {
	uint8_t state;
	uint8_t vpos;   /* bytes of the version matched */
	uint32_t total; /* bytes read */
	uint32_t limit; /* at most this many bytes (the caller sets it) */
};

/* Starts a head of at most limit bytes (0: 16384). */
void wn_httphead_init(struct wn_httphead *h, uint32_t limit);

/* Reads p[0, n). Returns what was decided, and in *used how many bytes
 * were read up to and including the deciding one (n for MORE). Once
 * DONE, BAD or TOO_LONG, further calls return the same and use nothing. */
enum wn_httphead_result wn_httphead_feed(struct wn_httphead *h,
                                         const uint8_t *p, size_t n,
                                         size_t *used);

#endif
