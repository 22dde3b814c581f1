/* FEC for datagram flows, encoder to decoder with the loss made by the
 * test: every erasure pattern of a small group, short groups closed by
 * time, duplicates and late shards, a sender starting over, and random
 * loss at 1% and 5% with 10/3, whose residual loss is measured (printed)
 * and bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dgfec.h"
#include "util/err.h"
#include "util/rw.h"

#define MSG_MAX 1400

/* One shard on the link. */
struct shard {
	uint16_t group;
	unsigned index, count;
	size_t len;
	uint8_t b[WN_DGRAM_FEC_SHARD_MAX];
};

/* What the receiver got: messages by their sequence number (the first
 * four bytes of each test message). */
struct rx {
	unsigned n;
	uint8_t *got; /* [nmsgs] */
	unsigned nmsgs;
	unsigned wrong;
};

/* Messages are MSG_MAX - spread .. MSG_MAX - 1 bytes long: widely spread
 * to exercise the padding, or close together, as a bulk flow's are. */
static unsigned spread = MSG_MAX - 5;

static void make_msg(uint32_t seq, uint8_t *b, size_t *len)
{
	*len = MSG_MAX - spread + (seq * 7919u) % spread;
	wn_put_u32be(b, seq);
	for (size_t i = 4; i < *len; i++)
		b[i] = (uint8_t)(seq * 31 + i);
}

static void got(struct rx *r, const uint8_t *m, size_t len)
{
	uint8_t want[MSG_MAX];
	size_t wl;
	uint32_t seq = wn_get_u32be(m);
	if (seq >= r->nmsgs) {
		r->wrong++;
		return;
	}
	make_msg(seq, want, &wl);
	if (wl != len || memcmp(want, m, len) != 0) {
		r->wrong++;
		return;
	}
	if (!r->got[seq])
		r->n++;
	r->got[seq]++;
}

static void deliver(void *ctx, const uint8_t *m, size_t len)
{
	got(ctx, m, len);
}

/* Feeds one shard to the decoder as the flow base does. */
static void feed(struct wn_dgfec_dec *d, struct rx *r, const struct shard *s,
                 unsigned data)
{
	if (s->index < data) {
		if (wn_dgfec_dec_data(d, s->group, s->index, s->b, s->len))
			got(r, s->b, s->len);
	} else {
		wn_dgfec_dec_parity(d, s->group, s->index, s->count, s->b,
		                    s->len);
	}
	wn_dgfec_dec_recover(d, s->group, deliver, r);
}

/* Encodes messages first .. first+n-1 into shards (data then parity of
 * each group), closing a group early after every `close_every` messages
 * when that is not 0. Returns the number of shards. */
static size_t encode(struct wn_dgfec_enc *e, uint32_t first, unsigned n,
                     unsigned close_every, struct shard *out)
{
	size_t k = 0;
	uint64_t now = 0;
	for (unsigned i = 0; i < n; i++) {
		struct shard *s = &out[k++];
		uint8_t idx;
		wn_dgfec_enc_peek(e, &s->group, &idx);
		s->index = idx;
		make_msg(first + i, s->b, &s->len);
		int full = wn_dgfec_enc_add(e, now, s->b, s->len);
		assert_true(full >= 0);
		int early = close_every && (i + 1) % close_every == 0;
		if (!full && !early && i + 1 < n)
			continue;
		if (!full)
			assert_true(wn_dgfec_enc_deadline(e) ==
			            now + e->delay_ms);
		unsigned np = wn_dgfec_enc_nparity(e);
		for (unsigned j = 0; j < np; j++) {
			struct shard *p = &out[k++];
			const uint8_t *b = wn_dgfec_enc_parity(e, j, &p->len);
			p->group = e->group;
			p->index = e->data + j;
			p->count = wn_dgfec_enc_count(e);
			memcpy(p->b, b, p->len);
		}
		wn_dgfec_enc_close(e);
		assert_true(wn_dgfec_enc_deadline(e) == UINT64_MAX);
	}
	return k;
}

static void rx_init(struct rx *r, unsigned nmsgs)
{
	memset(r, 0, sizeof(*r));
	r->nmsgs = nmsgs;
	r->got = calloc(nmsgs, 1);
	assert_non_null(r->got);
}

/* A 4/2 group: every pattern of losses among its six shards; up to two
 * are rebuilt, more are counted unrecoverable, nothing delivered twice
 * or wrong. */
static void test_every_pattern(void **state)
{
	(void)state;
	enum { D = 4, P = 2, T = D + P };
	struct shard sh[T];
	unsigned patterns = 0;
	for (unsigned mask = 0; mask < (1u << T); mask++) {
		struct wn_dgfec_enc e;
		struct wn_dgfec_dec *d;
		struct rx r;
		assert_int_equal(wn_dgfec_enc_init(&e, D, P, 5), 0);
		assert_int_equal(wn_dgfec_dec_new(D, P, &d), 0);
		assert_int_equal(encode(&e, 0, D, 0, sh), T);
		rx_init(&r, D);
		unsigned lost_data = 0;
		for (unsigned i = 0; i < T; i++) {
			if (mask & (1u << i))
				lost_data += i < D;
			else
				feed(d, &r, &sh[i], D);
		}
		unsigned lost = (unsigned)__builtin_popcount(mask);
		struct wn_dgfec_stats st;
		wn_dgfec_dec_reset(d);
		wn_dgfec_dec_stats(d, &st);
		assert_int_equal(r.wrong, 0);
		for (unsigned i = 0; i < D; i++)
			assert_true(r.got[i] <= 1);
		if (lost <= P) {
			assert_int_equal(r.n, D);
			assert_int_equal(st.recovered, lost_data);
			assert_int_equal(st.unrecoverable, 0);
			patterns++;
		} else {
			assert_int_equal(r.n, D - lost_data);
			assert_int_equal(st.recovered, 0);
			/* Counted from the parity's count, or without
			 * parity up to the highest index that came. */
			assert_true(st.unrecoverable <= lost_data);
		}
		free(r.got);
		wn_dgfec_dec_free(d);
		wn_dgfec_enc_free(&e);
	}
	assert_int_equal(patterns, 1 + 6 + 15);
}

/* Groups closed by time: 3 messages of a 10/3 group send one parity
 * shard (the configured share), which rebuilds one lost message; the
 * counts say what a short group holds. */
static void test_short_group(void **state)
{
	(void)state;
	struct wn_dgfec_enc e;
	struct wn_dgfec_dec *d;
	struct shard sh[64];
	struct rx r;
	assert_int_equal(wn_dgfec_enc_init(&e, 10, 3, 5), 0);
	assert_int_equal(wn_dgfec_dec_new(10, 3, &d), 0);
	size_t n = encode(&e, 0, 12, 3, sh);
	/* Four groups of 3 data + 1 parity. */
	assert_int_equal(n, 16);
	assert_int_equal(sh[3].index, 10);
	assert_int_equal(sh[3].count, 3);
	rx_init(&r, 12);
	for (size_t i = 0; i < n; i++)
		if (i != 1 && i != 6 && i != 12)
			feed(d, &r, &sh[i], 10);
	assert_int_equal(r.n, 12);
	struct wn_dgfec_stats st;
	wn_dgfec_dec_stats(d, &st);
	assert_int_equal(st.recovered, 3);
	free(r.got);
	wn_dgfec_dec_free(d);
	wn_dgfec_enc_free(&e);
	/* One message alone: one parity shard, a copy in effect. */
	assert_int_equal(wn_dgfec_enc_init(&e, 10, 3, 5), 0);
	assert_int_equal(encode(&e, 0, 1, 0, sh), 2);
	wn_dgfec_enc_free(&e);
}

/* Duplicates (of received and of rebuilt shards) are dropped; parity that
 * arrives before its data works; a shard of a group older than the two
 * kept is delivered and not kept; a group far behind is the sender
 * starting over. */
static void test_dups_late_restart(void **state)
{
	(void)state;
	struct wn_dgfec_enc e;
	struct wn_dgfec_dec *d;
	static struct shard sh[64];
	struct rx r;
	struct wn_dgfec_stats st;
	assert_int_equal(wn_dgfec_enc_init(&e, 4, 2, 5), 0);
	assert_int_equal(wn_dgfec_dec_new(4, 2, &d), 0);
	size_t n = encode(&e, 0, 12, 0, sh); /* groups 0, 1, 2 */
	assert_int_equal(n, 18);
	rx_init(&r, 12);
	/* Group 0: parity first, then data 0 and 1: 2 and 3 rebuilt. */
	feed(d, &r, &sh[4], 4);
	feed(d, &r, &sh[5], 4);
	feed(d, &r, &sh[0], 4);
	assert_int_equal(r.n, 1);
	feed(d, &r, &sh[1], 4);
	assert_int_equal(r.n, 4);
	/* The originals of the rebuilt ones come late: duplicates. */
	feed(d, &r, &sh[2], 4);
	feed(d, &r, &sh[0], 4);
	wn_dgfec_dec_stats(d, &st);
	assert_int_equal(st.dups, 2);
	assert_int_equal(st.recovered, 2);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(r.got[i], 1);
	/* Groups 1 and 2 push group 0 out; its shard then is late: given
	 * (a message may come twice) but not kept. */
	for (size_t i = 6; i < 18; i++)
		feed(d, &r, &sh[i], 4);
	assert_int_equal(r.n, 12);
	feed(d, &r, &sh[3], 4);
	assert_int_equal(r.got[3], 2);
	/* A group two behind was late; one WN_DGFEC_RESTART_GAP behind is
	 * the sender starting over: taken, and its loss repaired. */
	struct wn_dgfec_enc e2;
	assert_int_equal(wn_dgfec_enc_init(&e2, 4, 2, 5), 0);
	e2.group = (uint16_t)(2 - WN_DGFEC_RESTART_GAP);
	free(r.got);
	rx_init(&r, 4);
	n = encode(&e2, 0, 4, 0, sh);
	for (size_t i = 1; i < n; i++) /* message 0 lost */
		feed(d, &r, &sh[i], 4);
	assert_int_equal(r.n, 4);
	free(r.got);
	wn_dgfec_enc_free(&e2);
	wn_dgfec_dec_free(d);
	wn_dgfec_enc_free(&e);
}

/* Shards that contradict their group are refused and counted, and
 * nothing is rebuilt from them. */
static void test_contradictions(void **state)
{
	(void)state;
	struct wn_dgfec_enc e;
	struct wn_dgfec_dec *d;
	static struct shard sh[16];
	struct rx r;
	struct wn_dgfec_stats st;
	assert_int_equal(wn_dgfec_enc_init(&e, 4, 2, 5), 0);
	assert_int_equal(wn_dgfec_dec_new(4, 2, &d), 0);
	assert_int_equal(encode(&e, 0, 4, 0, sh), 6);
	rx_init(&r, 4);
	feed(d, &r, &sh[0], 4);
	feed(d, &r, &sh[4], 4);
	/* Another count, then another length, for the same group. */
	struct shard bad = sh[5];
	bad.count = 3;
	feed(d, &r, &bad, 4);
	bad = sh[5];
	bad.len -= 1;
	feed(d, &r, &bad, 4);
	wn_dgfec_dec_stats(d, &st);
	assert_int_equal(st.bad, 2);
	/* Out of range. */
	wn_dgfec_dec_parity(d, 0, 9, 4, sh[5].b, sh[5].len);
	wn_dgfec_dec_parity(d, 0, 5, 5, sh[5].b, sh[5].len);
	wn_dgfec_dec_stats(d, &st);
	assert_int_equal(st.bad, 4);
	assert_int_equal(r.wrong, 0);
	free(r.got);
	wn_dgfec_dec_free(d);
	wn_dgfec_enc_free(&e);
	/* Bad parameters. */
	assert_int_equal(wn_dgfec_enc_init(&e, 0, 3, 5), WN_EINVAL);
	assert_int_equal(wn_dgfec_enc_init(&e, 10, 17, 5), WN_EINVAL);
	assert_int_equal(wn_dgfec_enc_init(&e, 33, 3, 5), WN_EINVAL);
	assert_int_equal(wn_dgfec_enc_init(&e, 10, 3, 0), WN_EINVAL);
	assert_int_equal(wn_dgfec_dec_new(10, 0, &d), WN_EINVAL);
}

/* Random loss, with the residual loss measured: each shard is lost with
 * probability loss_ppm / 10^6 (seeded). */
static void run_random(unsigned data, unsigned parity, unsigned loss_ppm,
                       unsigned nmsgs, double *residual, double *extra,
                       uint64_t *recovered)
{
	struct wn_dgfec_enc e;
	struct wn_dgfec_dec *d;
	struct rx r;
	enum { CHUNK = 1000 };
	static struct shard sh[CHUNK * 3];
	uint64_t x = 0x9E3779B97F4A7C15ull ^ loss_ppm;
	uint64_t bytes_data = 0, bytes_all = 0;

	assert_int_equal(wn_dgfec_enc_init(&e, data, parity, 5), 0);
	assert_int_equal(wn_dgfec_dec_new(data, parity, &d), 0);
	rx_init(&r, nmsgs);
	for (unsigned first = 0; first < nmsgs; first += CHUNK) {
		size_t n = encode(&e, first, CHUNK, 0, sh);
		for (size_t i = 0; i < n; i++) {
			/* Bytes as the flow message costs them: the FEC
			 * header (and a parity's count) around the shard;
			 * without FEC a message costs its own bytes. */
			bytes_all += 1 + 1 + WN_DGRAM_FEC_HDR + sh[i].len +
			             (sh[i].index >= data);
			if (sh[i].index < data)
				bytes_data += 1 + sh[i].len;
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (x % 1000000 < loss_ppm)
				continue;
			feed(d, &r, &sh[i], data);
		}
	}
	wn_dgfec_dec_reset(d);
	struct wn_dgfec_stats st;
	wn_dgfec_dec_stats(d, &st);
	assert_int_equal(r.wrong, 0);
	for (unsigned i = 0; i < nmsgs; i++)
		assert_true(r.got[i] <= 1);
	*residual = 1.0 - (double)r.n / nmsgs;
	*extra = (double)bytes_all / (double)bytes_data - 1.0;
	*recovered = st.recovered;
	/* A group that lost its last data shards and all its parity
	 * cannot say how many it had: the count may fall short. */
	assert_true(st.unrecoverable <= nmsgs - r.n);
	print_message("fec %u/%u at %.2f%% loss: residual %.4f%%, %llu "
	              "recovered, %.1f%% extra bytes\n",
	              data, parity, loss_ppm / 10000.0, *residual * 100,
	              (unsigned long long)st.recovered, *extra * 100);
	free(r.got);
	wn_dgfec_dec_free(d);
	wn_dgfec_enc_free(&e);
}

static void test_random_loss(void **state)
{
	(void)state;
	double res, extra;
	uint64_t rec;
	/* Bulk traffic: messages of nearly one size (WireGuard's). */
	spread = 100;
	/* 1% loss with 10/3: a group of 13 loses four or more shards about
	 * once in 140,000 groups, so nearly every lost message comes back. */
	run_random(10, 3, 10000, 200000, &res, &extra, &rec);
	assert_true(res <= 0.0005);
	assert_true(rec >= 1500); /* about 2,000 data shards were lost */
	assert_true(extra <= 0.35);
	/* 5% loss: still well below the path's loss. */
	run_random(10, 3, 50000, 100000, &res, &extra, &rec);
	assert_true(res <= 0.01);
	/* No loss: nothing to rebuild, nothing lost. */
	run_random(10, 3, 0, 20000, &res, &extra, &rec);
	assert_true(res == 0.0 && rec == 0);
	spread = MSG_MAX - 5;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_pattern),
	    cmocka_unit_test(test_short_group),
	    cmocka_unit_test(test_dups_late_restart),
	    cmocka_unit_test(test_contradictions),
	    cmocka_unit_test(test_random_loss),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
