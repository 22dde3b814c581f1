/* Fuzz target: packet protection, fed arbitrary packets where an attacker
 * can reach it. The first input byte picks the target, the rest is the
 * packet:
 *
 *   0  the server's front door (wn_protect_responder_check and, if it
 *      passes, wn_protect_cookie_reply; wn_protect_responder_consume),
 *      and wn_protect_respond if the initiation is from the known client
 *   1  the server's established peer (wn_protect_open)
 *   2  the client's established peer (wn_protect_open)
 *   3  a client with a handshake pending (wn_protect_consume_response,
 *      wn_protect_consume_cookie)
 *
 * Every packet also goes through wn_protect_classify. Nothing may crash;
 * what opens must be exactly as long as the packet minus the overhead.
 *
 * The keys and every "random" byte come from a fixed seed, so the state is
 * the same in every run and a valid packet for each target can be written
 * as a seed: build this file with -DWN_FUZZ_PROTECT_GEN and a main is
 * added that writes them into the directory named by its argument
 * (tests/fuzz/corpus/protect/). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/protect.h"

#define T0 1000000
#define WALL 1700000000000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct drng {
	uint8_t seed[randombytes_SEEDBYTES];
	uint64_t n;
};

/* Deterministic "randomness": each call hashes the seed and a counter. */
static void drng_fill(void *ctx, void *buf, size_t len)
{
	struct drng *d = ctx;
	uint8_t s[randombytes_SEEDBYTES];

	crypto_generichash(s, sizeof(s), (const uint8_t *)&d->n, sizeof(d->n),
	                   d->seed, sizeof(d->seed));
	d->n++;
	randombytes_buf_deterministic(buf, len, s);
}

struct fixture {
	struct drng rng;
	struct wn_protect_env env;
	struct wn_protect_responder server;
	struct wn_protect_peer speer, client, pending;
	uint8_t client_pk[32];
	/* One valid packet per target, for the seed corpus. */
	uint8_t seeds[4][256];
	size_t seed_len[4];
};

static void key(struct drng *rng, uint8_t sk[32], uint8_t pk[32])
{
	drng_fill(rng, sk, 32);
	if (crypto_scalarmult_base(pk, sk) != 0)
		abort();
}

static void must(int rc)
{
	if (rc != 0)
		abort();
}

static void fixture_init(struct fixture *f)
{
	uint8_t csk[32], ssk[32], spk[32], buf[256], resp[128];
	struct wn_protect_initiation in;
	size_t n, rlen;

	memset(f, 0, sizeof(*f));
	if (sodium_init() < 0)
		abort();
	memset(f->rng.seed, 0x5a, sizeof(f->rng.seed));
	f->env = (struct wn_protect_env){.random = drng_fill, .ctx = &f->rng};
	key(&f->rng, csk, f->client_pk);
	key(&f->rng, ssk, spk);
	must(wn_protect_responder_init(&f->server, ssk, spk, &f->env));
	must(wn_protect_peer_init(&f->speer, false, ssk, spk, f->client_pk,
	                          &f->env));
	must(wn_protect_peer_init(&f->client, true, csk, f->client_pk, spk,
	                          &f->env));
	must(wn_protect_peer_init(&f->pending, true, csk, f->client_pk, spk,
	                          &f->env));

	/* An established pair, confirmed by one packet. */
	must(wn_protect_initiate(&f->client, (const uint8_t *)"seed", 4, WALL,
	                         T0, buf, sizeof(buf), &n));
	f->seeds[0][0] = 0;
	memcpy(f->seeds[0] + 1, buf, n);
	f->seed_len[0] = n + 1;
	must(wn_protect_responder_consume(&f->server, buf, n, &in));
	must(wn_protect_respond(&f->speer, &in, T0, resp, sizeof(resp), &rlen));
	must(wn_protect_consume_response(&f->client, resp, rlen, T0));
	must(wn_protect_seal(&f->client, buf, 0, sizeof(buf), T0, &n));
	must(wn_protect_open(&f->speer, buf, n, T0, &n));

	/* Packets each way that have not been delivered. */
	memcpy(buf + WN_PROTECT_HEADROOM, "to the server", 13);
	must(wn_protect_seal(&f->client, buf, 13, sizeof(buf), T0, &n));
	f->seeds[1][0] = 1;
	memcpy(f->seeds[1] + 1, buf, n);
	f->seed_len[1] = n + 1;
	memcpy(buf + WN_PROTECT_HEADROOM, "to the client", 13);
	must(wn_protect_seal(&f->speer, buf, 13, sizeof(buf), T0, &n));
	f->seeds[2][0] = 2;
	memcpy(f->seeds[2] + 1, buf, n);
	f->seed_len[2] = n + 1;

	/* A client waiting for a response, and that response. */
	must(wn_protect_initiate(&f->pending, NULL, 0, WALL + 1, T0, buf,
	                         sizeof(buf), &n));
	must(wn_protect_responder_consume(&f->server, buf, n, &in));
	struct wn_protect_peer scratch = f->speer;
	must(wn_protect_respond(&scratch, &in, T0, resp, sizeof(resp), &rlen));
	wn_protect_peer_wipe(&scratch);
	f->seeds[3][0] = 3;
	memcpy(f->seeds[3] + 1, resp, rlen);
	f->seed_len[3] = rlen + 1;
	sodium_memzero(csk, sizeof(csk));
	sodium_memzero(ssk, sizeof(ssk));
}

static struct fixture *fixture(void)
{
	static struct fixture *f;

	if (!f) {
		f = malloc(sizeof(*f));
		if (!f)
			abort();
		fixture_init(f);
	}
	return f;
}

static void open_on(const struct wn_protect_peer *tmpl, const uint8_t *pkt,
                    size_t len)
{
	struct wn_protect_peer p = *tmpl;
	uint8_t *buf = malloc(len ? len : 1);
	size_t plen;

	if (!buf)
		abort();
	memcpy(buf, pkt, len);
	if (wn_protect_open(&p, buf, len, T0 + 1, &plen) == 0 &&
	    plen + WN_PROTECT_OVERHEAD != len)
		abort();
	free(buf);
	wn_protect_peer_wipe(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fixture *f = fixture();
	struct wn_protect_initiation in;
	uint8_t type, resp[128];
	uint32_t index;
	size_t rlen;

	if (size < 1)
		return 0;
	const uint8_t *pkt = data + 1;
	size_t len = size - 1;

	if (wn_protect_classify(pkt, len, &type, &index) == 0 &&
	    (type == 0 || type > 4))
		abort();
	switch (data[0] & 3) {
	case 0: {
		static const uint8_t addr[7] = {2, 0x1f, 0x90, 10, 0, 0, 1};
		bool mac2;
		uint8_t cookie[WN_PROTECT_COOKIE_REPLY_LEN];
		if (wn_protect_responder_check(&f->server, pkt, len, addr,
		                               sizeof(addr), T0, &mac2) == 0 &&
		    (wn_protect_cookie_reply(&f->server, pkt, len, addr,
		                             sizeof(addr), T0, cookie,
		                             sizeof(cookie), &rlen) != 0 ||
		     rlen != WN_PROTECT_COOKIE_REPLY_LEN || rlen >= len))
			abort();
		if (wn_protect_responder_consume(&f->server, pkt, len, &in))
			break;
		if (in.payload_len > WN_PROTECT_PAYLOAD_MAX)
			abort();
		if (memcmp(in.static_pk, f->client_pk, 32) != 0) {
			wn_protect_initiation_wipe(&in);
			break;
		}
		struct wn_protect_peer p = f->speer;
		if (wn_protect_respond(&p, &in, T0 + 1, resp, sizeof(resp),
		                       &rlen) == 0 &&
		    rlen != WN_PROTECT_RESPONSE_LEN)
			abort();
		wn_protect_peer_wipe(&p);
		break;
	}
	case 1:
		open_on(&f->speer, pkt, len);
		break;
	case 2:
		open_on(&f->client, pkt, len);
		break;
	case 3: {
		struct wn_protect_peer c = f->pending;
		bool retry;
		wn_protect_consume_response(&c, pkt, len, T0 + 1);
		wn_protect_consume_cookie(&c, pkt, len, T0 + 1, &retry);
		wn_protect_peer_wipe(&c);
		break;
	}
	}
	return 0;
}

#ifdef WN_FUZZ_PROTECT_GEN
int main(int argc, char **argv)
{
	struct fixture *f = fixture();
	char path[4096];

	if (argc != 2)
		return 2;
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/valid-%d", argv[1], i);
		FILE *out = fopen(path, "wb");
		if (!out ||
		    fwrite(f->seeds[i], 1, f->seed_len[i], out) !=
		        f->seed_len[i] ||
		    fclose(out) != 0)
			return 1;
	}
	/* Each seed must reach its target's success path. */
	struct wn_protect_initiation in;
	struct wn_protect_peer s = f->speer, c = f->client, pc = f->pending;
	size_t plen;
	if (wn_protect_responder_consume(&f->server, f->seeds[0] + 1,
	                                 f->seed_len[0] - 1, &in) != 0 ||
	    wn_protect_open(&s, f->seeds[1] + 1, f->seed_len[1] - 1, T0,
	                    &plen) != 0 ||
	    wn_protect_open(&c, f->seeds[2] + 1, f->seed_len[2] - 1, T0,
	                    &plen) != 0 ||
	    wn_protect_consume_response(&pc, f->seeds[3] + 1,
	                                f->seed_len[3] - 1, T0) != 0)
		return 1;
	return 0;
}
#endif
