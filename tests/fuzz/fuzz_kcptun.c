/* Fuzz target: what a kcptun peer (or anyone) controls in the kcptun
 * profile. The input is opened as a kcp-go packet under crypt none (so
 * the CRC can be right) and under aes, its FEC framing parsed, and the
 * same bytes fed to the snappy framing decoder in pieces, as they would
 * arrive from KCP. Nothing may crash; what parses must lie inside the
 * input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kcpgo.h"
#include "core/rs.h"
#include "core/snappyframe.h"
#include "crypto/kcpcrypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *ctx, const uint8_t *d, size_t n)
{
	size_t *total = ctx;
	if (n == 0 || n > WN_SNAPPY_BLOCK || !d)
		abort();
	*total += n;
	return 0;
}

static void rebuilt(void *ctx, const uint8_t *kcp, size_t len)
{
	(void)ctx;
	if (!kcp || len > 300)
		abort();
}

/* The input as a train of shards for a 4+2 decoder: each piece's length
 * is its first byte. */
static void feed_fec(const uint8_t *data, size_t size)
{
	struct wn_rs *rs;
	struct wn_kcpgo_dec *d;
	if (wn_rs_new(4, 2, &rs) != 0)
		return;
	if (wn_kcpgo_dec_new(rs, 4, 2, 300, &d) == 0) {
		size_t off = 0;
		while (off < size) {
			size_t n = data[off++];
			if (n > size - off)
				n = size - off;
			struct wn_kcpgo_pkt p;
			if (wn_kcpgo_parse(data + off, n, &p) == 0)
				wn_kcpgo_dec_input(d, &p, rebuilt, NULL);
			off += n;
		}
		wn_kcpgo_dec_free(d);
	}
	wn_rs_free(rs);
}

static void parse(const uint8_t *p, size_t n)
{
	struct wn_kcpgo_pkt fp;
	if (wn_kcpgo_parse(p, n, &fp) != 0)
		return;
	if (fp.kcp && (fp.kcp < p || fp.kcp + fp.kcp_len > p + n))
		abort();
	if (fp.shard && (fp.shard < p || fp.shard + fp.shard_len > p + n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 70000)
		return 0;
	uint8_t *buf = malloc(size + 1);
	if (!buf)
		return 0;
	static const uint8_t key[WN_KCPCRYPT_KEY] = {1, 2, 3};
	const enum wn_kcpcrypt_alg algs[] = {WN_KCPCRYPT_NONE, WN_KCPCRYPT_AES,
	                                     WN_KCPCRYPT_SALSA20};
	for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
		struct wn_kcpcrypt c;
		wn_kcpcrypt_init(&c, algs[a], key);
		memcpy(buf, data, size);
		if (wn_kcpcrypt_open(&c, buf, size) == 0)
			parse(buf + WN_KCPCRYPT_HEADER,
			      size - WN_KCPCRYPT_HEADER);
	}
	parse(data, size);
	feed_fec(data, size);
	struct wn_snappy_dec *d;
	if (wn_snappy_dec_new(&d) == 0) {
		size_t total = 0, step = size ? data[0] % 64 + 1 : 1;
		for (size_t off = 0; off < size; off += step) {
			size_t n = size - off < step ? size - off : step;
			if (wn_snappy_dec_input(d, data + off, n, sink,
			                        &total) != 0)
				break;
		}
		wn_snappy_dec_free(d);
	}
	free(buf);
	return 0;
}
