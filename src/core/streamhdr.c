#include "core/streamhdr.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/err.h"
#include "util/rw.h"

int wn_streamhdr_encode(const struct wn_endpoint *target, uint8_t *buf,
                        size_t cap)
{
	return wn_streamhdr_encode_flags(target, 0, buf, cap);
}

int wn_streamhdr_encode_flags(const struct wn_endpoint *target, unsigned flags,
                              uint8_t *buf, size_t cap)
{
	struct wn_wr wr;
	int hl;

	if (flags & ~WN_STREAMHDR_F_CONFIRM)
		return WN_EINVAL;
	wn_wr_init(&wr, buf, cap);
	wn_wr_u8(&wr, WN_STREAMHDR_VERSION);
	if (!target) {
		wn_wr_u8(&wr, WN_STREAMHDR_DEFAULT);
	} else if (target->kind == WN_HOST_UNIX) {
		size_t n = strlen(target->path);
		if (n == 0 || n > WN_UNIX_PATH_MAX)
			return WN_EINVAL;
		wn_wr_u8(&wr, WN_STREAMHDR_UNIX);
		wn_wr_u8(&wr, (uint8_t)n);
		wn_wr_bytes(&wr, target->path, n);
	} else if (target->kind == WN_HOST_NAME) {
		size_t n = strlen(target->host);
		if (!wn_hostname_valid(target->host, n))
			return WN_EINVAL;
		wn_wr_u8(&wr, WN_STREAMHDR_NAME);
		wn_wr_u8(&wr, (uint8_t)n);
		wn_wr_bytes(&wr, target->host, n);
		wn_wr_u16be(&wr, target->port);
	} else if (target->sa.ss_family == AF_INET) {
		const struct sockaddr_in *a =
		    (const struct sockaddr_in *)&target->sa;
		wn_wr_u8(&wr, WN_STREAMHDR_IPV4);
		wn_wr_bytes(&wr, &a->sin_addr, 4);
		wn_wr_u16be(&wr, target->port);
	} else if (target->sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a =
		    (const struct sockaddr_in6 *)&target->sa;
		wn_wr_u8(&wr, WN_STREAMHDR_IPV6);
		wn_wr_bytes(&wr, &a->sin6_addr, 16);
		wn_wr_u16be(&wr, target->port);
	} else {
		return WN_EINVAL;
	}
	if (wr.err)
		return wr.err;
	hl = (int)wn_wr_len(&wr);
	/* The type byte is always the second; the flags ride in it. */
	buf[1] |= (uint8_t)flags;
	return hl;
}

int wn_streamhdr_decode(const uint8_t *buf, size_t len, struct wn_endpoint *t,
                        int *is_default)
{
	unsigned flags;
	int n = wn_streamhdr_decode_flags(buf, len, t, is_default, &flags);

	if (n >= 0 && flags)
		return WN_EPROTO;
	return n;
}

int wn_streamhdr_decode_flags(const uint8_t *buf, size_t len,
                              struct wn_endpoint *t, int *is_default,
                              unsigned *flags)
{
	struct wn_rd rd;
	wn_rd_init(&rd, buf, len);
	memset(t, 0, sizeof(*t));
	*is_default = 0;
	*flags = 0;
	uint8_t version = wn_rd_u8(&rd);
	uint8_t type = wn_rd_u8(&rd);
	if (rd.err)
		return WN_EAGAIN;
	if (version != WN_STREAMHDR_VERSION)
		return WN_EPROTO;
	*flags = type & WN_STREAMHDR_F_CONFIRM;
	type &= WN_STREAMHDR_TYPE_MASK;
	t->scheme = WN_SCHEME_TCP;
	switch (type) {
	case WN_STREAMHDR_DEFAULT:
		*is_default = 1;
		break;
	case WN_STREAMHDR_NAME: {
		uint8_t n = wn_rd_u8(&rd);
		const uint8_t *name = wn_rd_ptr(&rd, n);
		t->port = wn_rd_u16be(&rd);
		if (rd.err)
			return WN_EAGAIN;
		if (!wn_hostname_valid((const char *)name, n) || t->port == 0)
			return WN_EPROTO;
		memcpy(t->host, name, n);
		t->host[n] = '\0';
		t->kind = WN_HOST_NAME;
		break;
	}
	case WN_STREAMHDR_IPV4: {
		struct sockaddr_in *a = (struct sockaddr_in *)&t->sa;
		wn_rd_bytes(&rd, &a->sin_addr, 4);
		t->port = wn_rd_u16be(&rd);
		if (rd.err)
			return WN_EAGAIN;
		if (t->port == 0)
			return WN_EPROTO;
		a->sin_family = AF_INET;
		a->sin_port = htons(t->port);
		t->salen = sizeof(*a);
		t->kind = WN_HOST_IP;
		inet_ntop(AF_INET, &a->sin_addr, t->host, sizeof(t->host));
		break;
	}
	case WN_STREAMHDR_IPV6: {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&t->sa;
		wn_rd_bytes(&rd, &a->sin6_addr, 16);
		t->port = wn_rd_u16be(&rd);
		if (rd.err)
			return WN_EAGAIN;
		if (t->port == 0)
			return WN_EPROTO;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(t->port);
		t->salen = sizeof(*a);
		t->kind = WN_HOST_IP;
		inet_ntop(AF_INET6, &a->sin6_addr, t->host, sizeof(t->host));
		break;
	}
	case WN_STREAMHDR_UNIX: {
		uint8_t n = wn_rd_u8(&rd);
		const uint8_t *path = wn_rd_ptr(&rd, n);
		if (rd.err)
			return WN_EAGAIN;
		if (n == 0 || n > WN_UNIX_PATH_MAX || memchr(path, '\0', n))
			return WN_EPROTO;
		memcpy(t->path, path, n);
		t->path[n] = '\0';
		t->kind = WN_HOST_UNIX;
		t->scheme = WN_SCHEME_UNIX;
		break;
	}
	default:
		return WN_EPROTO;
	}
	return (int)(len - wn_rd_remaining(&rd));
}

int wn_streamhdr_take(struct wn_streamhdr_acc *a, const uint8_t *data,
                      size_t len, size_t *used, struct wn_endpoint *target,
                      int *is_default, unsigned *flags)
{
	size_t want = sizeof(a->buf) - a->len;
	size_t n = len < want ? len : want;
	memcpy(a->buf + a->len, data, n);
	int hl = wn_streamhdr_decode_flags(a->buf, a->len + n, target,
	                                   is_default, flags);
	if (hl == WN_EAGAIN && a->len + n < sizeof(a->buf)) {
		a->len += n;
		*used = n;
		return WN_EAGAIN;
	}
	if (hl < 0)
		return WN_EPROTO;
	*used = (size_t)hl - a->len;
	a->len = (size_t)hl;
	return hl;
}
