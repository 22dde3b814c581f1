/* An HTTP/1 request head, byte by byte (httphead.h). */
#include "core/httphead.h"

#include <string.h>

#define DEFAULT_LIMIT 16384

enum {
	S_START = 0, /* before the request line: empty lines are skipped */
	S_START_CR,  /* a CR before the request line */
	S_METHOD,
	S_TARGET0, /* the target's first byte */
	S_TARGET,
	S_VERSION, /* "HTTP/" DIGIT "." DIGIT, vpos bytes matched */
	S_RL_CR,   /* the request line's CR */
	S_LINE0,   /* a header line's first byte, or the empty line */
	S_NAME,
	S_VALUE,
	S_LINE_CR, /* a header line's CR */
	S_END_CR,  /* the empty line's CR */
	S_DONE,
	S_BAD,
	S_TOO_LONG,
};

static int is_tchar(uint8_t c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte of a target or a field value: visible, or obs-text. */
static int is_vchar(uint8_t c)
{
	return (c > 0x20 && c < 0x7f) || c >= 0x80;
}

void wn_httphead_init(struct wn_httphead *h, uint32_t limit)
{
	memset(h, 0, sizeof(*h));
	h->limit = limit ? limit : DEFAULT_LIMIT;
}

/* The next state after byte c in state st (S_BAD for a wrong byte). */
static uint8_t step(struct wn_httphead *h, uint8_t st, uint8_t c)
{
	static const char version[] = "HTTP/D.D";

	switch (st) {
	case S_START:
		if (c == '\r')
			return S_START_CR;
		if (c == '\n')
			return S_START;
		return is_tchar(c) ? S_METHOD : S_BAD;
	case S_START_CR:
		return c == '\n' ? S_START : S_BAD;
	case S_METHOD:
		if (c == ' ')
			return S_TARGET0;
		return is_tchar(c) ? S_METHOD : S_BAD;
	case S_TARGET0:
		return is_vchar(c) ? S_TARGET : S_BAD;
	case S_TARGET:
		if (c == ' ') {
			h->vpos = 0;
			return S_VERSION;
		}
		return is_vchar(c) ? S_TARGET : S_BAD;
	case S_VERSION: {
		char want = version[h->vpos];
		int ok =
		    want == 'D' ? (c >= '0' && c <= '9') : c == (uint8_t)want;
		if (!ok)
			return S_BAD;
		h->vpos++;
		return S_VERSION;
	}
	case S_RL_CR:
	case S_LINE_CR:
		return c == '\n' ? S_LINE0 : S_BAD;
	case S_LINE0:
		if (c == '\r')
			return S_END_CR;
		if (c == '\n')
			return S_DONE;
		/* A line that starts with white space (obs-fold) is refused,
		 * as RFC 9112 section 5.2 lets a server do. */
		return is_tchar(c) ? S_NAME : S_BAD;
	case S_NAME:
		if (c == ':')
			return S_VALUE;
		return is_tchar(c) ? S_NAME : S_BAD;
	case S_VALUE:
		if (c == '\r')
			return S_LINE_CR;
		if (c == '\n')
			return S_LINE0;
		return (is_vchar(c) || c == ' ' || c == '\t') ? S_VALUE : S_BAD;
	case S_END_CR:
		return c == '\n' ? S_DONE : S_BAD;
	default:
		return st;
	}
}

static enum wn_httphead_result result(uint8_t st)
{
	switch (st) {
	case S_DONE:
		return WN_HTTPHEAD_DONE;
	case S_BAD:
		return WN_HTTPHEAD_BAD;
	case S_TOO_LONG:
		return WN_HTTPHEAD_TOO_LONG;
	default:
		return WN_HTTPHEAD_MORE;
	}
}

enum wn_httphead_result wn_httphead_feed(struct wn_httphead *h,
                                         const uint8_t *p, size_t n,
                                         size_t *used)
{
	uint8_t st = h->state;
	size_t i = 0;

	while (i < n && result(st) == WN_HTTPHEAD_MORE) {
		if (h->total >= h->limit) {
			st = S_TOO_LONG;
			break;
		}
		uint8_t c = p[i++];
		h->total++;
		if (st == S_VERSION && h->vpos == 8) {
			/* The version is whole: the line ends here. */
			if (c == '\r')
				st = S_RL_CR;
			else
				st = c == '\n' ? S_LINE0 : S_BAD;
			continue;
		}
		st = step(h, st, c);
	}
	h->state = st;
	*used = i;
	return result(st);
}
