/* kcp-go's FEC framing: headers, classification, seqid wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kcp.h"
#include "core/kcpgo.h"
#include "core/rs.h"
#include "util/err.h"

static void test_data_shard(void **state)
{
	(void)state;
	uint8_t pkt[8 + 30];
	memset(pkt + 8, 0xAB, 30);
	wn_kcpgo_put_data_hdr(pkt, 0x01020304, 30);
	const uint8_t want[8] = {4, 3, 2, 1, 0xF1, 0, 32, 0};
	assert_memory_equal(pkt, want, 8);
	struct wn_kcpgo_pkt p;
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt), &p), 0);
	assert_int_equal(p.kind, WN_KCPGO_DATA);
	assert_int_equal(p.seqid, 0x01020304);
	assert_ptr_equal(p.kcp, pkt + 8);
	assert_int_equal(p.kcp_len, 30);
	assert_ptr_equal(p.shard, pkt + 6);
	assert_int_equal(p.shard_len, 32);
	/* A size beyond the packet, or below 2, is refused. */
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt) - 1, &p), WN_ETRUNC);
	pkt[6] = 1;
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt), &p), WN_ETRUNC);
	assert_int_equal(wn_kcpgo_parse(pkt, 7, &p), WN_ETRUNC);
	/* Padding after the size is fine (parity rebuilds pad). */
	pkt[6] = 10;
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt), &p), 0);
	assert_int_equal(p.kcp_len, 8);
}

static void test_parity_and_raw(void **state)
{
	(void)state;
	uint8_t pkt[40] = {0};
	wn_kcpgo_put_parity_hdr(pkt, 12);
	struct wn_kcpgo_pkt p;
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt), &p), 0);
	assert_int_equal(p.kind, WN_KCPGO_PARITY);
	assert_int_equal(p.seqid, 12);
	assert_int_equal(p.shard_len, 34);
	/* A KCP segment: cmd 81..84 and frg at bytes 4-5. */
	struct wn_kcp_hdr h = {.conv = 0xF1F1, .cmd = WN_KCP_CMD_PUSH};
	uint8_t seg[WN_KCP_OVERHEAD];
	wn_kcp_hdr_encode(&h, seg);
	assert_int_equal(wn_kcpgo_parse(seg, sizeof(seg), &p), 0);
	assert_int_equal(p.kind, WN_KCPGO_RAW);
	assert_int_equal(p.kcp_len, sizeof(seg));
	assert_int_equal(wn_kcpgo_parse(seg, sizeof(seg) - 1, &p), WN_ETRUNC);
}

static void test_seqid_wrap(void **state)
{
	(void)state;
	/* 13 shards: the last group ends at 0xffffffff / 13 * 13 - 1. */
	uint32_t paws = 0xFFFFFFFFu / 13 * 13;
	assert_int_equal(wn_kcpgo_next_seqid(5, 13), 6);
	assert_int_equal(wn_kcpgo_next_seqid(paws - 1, 13), 0);
	assert_int_equal(wn_kcpgo_next_seqid(0xFFFFFFFEu, 1), 0);
}

struct got {
	uint8_t kcp[16][200];
	size_t len[16];
	int n;
};

static void collect(void *ctx, const uint8_t *kcp, size_t len)
{
	struct got *g = ctx;
	assert_true(g->n < 16 && len <= 200);
	memcpy(g->kcp[g->n], kcp, len);
	g->len[g->n++] = len;
}

/* One group of 4+2 through the encoder; the decoder rebuilds any two lost
 * data shards from the rest, as kcp-go's would. */
static void test_groups(void **state)
{
	(void)state;
	enum { DS = 4, PS = 2, ROOM = 20 };
	struct wn_rs *rs;
	assert_int_equal(wn_rs_new(DS, PS, &rs), 0);
	struct wn_kcpgo_enc *e;
	assert_int_equal(wn_kcpgo_enc_new(rs, DS, PS, 202, ROOM, &e), 0);
	static uint8_t pkts[DS + PS][ROOM + 8 + 200];
	size_t plen[DS + PS];
	for (int i = 0; i < DS; i++) {
		uint8_t *kcp = pkts[i] + ROOM + 8;
		size_t n = 30 + (size_t)i * 40; /* unequal lengths */
		memset(kcp, 'a' + i, n);
		int np = wn_kcpgo_enc_data(e, kcp, n);
		assert_int_equal(np, i == DS - 1 ? PS : 0);
		plen[i] = 8 + n;
	}
	for (int j = 0; j < PS; j++) {
		size_t n;
		uint8_t *p = wn_kcpgo_enc_parity(e, (unsigned)j, &n);
		assert_int_equal(n, 6 + 2 + 30 + 3 * 40); /* the longest */
		memcpy(pkts[DS + j] + ROOM, p, n);
		plen[DS + j] = n;
	}
	/* seqids 0..5, in order. */
	for (int i = 0; i < DS + PS; i++) {
		struct wn_kcpgo_pkt p;
		assert_int_equal(wn_kcpgo_parse(pkts[i] + ROOM, plen[i], &p),
		                 0);
		assert_int_equal(p.seqid, i);
		assert_int_equal(p.kind,
		                 i < DS ? WN_KCPGO_DATA : WN_KCPGO_PARITY);
	}
	/* Lose data shards 1 and 3. */
	struct wn_kcpgo_dec *d;
	assert_int_equal(wn_kcpgo_dec_new(rs, DS, PS, 202, &d), 0);
	struct got g = {0};
	const int order[] = {4, 0, 2, 5};
	int total = 0;
	for (size_t k = 0; k < 4; k++) {
		struct wn_kcpgo_pkt p;
		int i = order[k];
		assert_int_equal(wn_kcpgo_parse(pkts[i] + ROOM, plen[i], &p),
		                 0);
		int r = wn_kcpgo_dec_input(d, &p, collect, &g);
		assert_true(r >= 0);
		total += r;
		/* A duplicate changes nothing. */
		assert_int_equal(wn_kcpgo_dec_input(d, &p, collect, &g), 0);
	}
	assert_int_equal(total, 2);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.len[0], 70);
	assert_int_equal(g.kcp[0][0], 'b');
	assert_int_equal(g.kcp[0][69], 'b');
	assert_int_equal(g.len[1], 150);
	assert_int_equal(g.kcp[1][149], 'd');
	wn_kcpgo_dec_free(d);

	/* Shards that do not fit are refused: a parity shard whose length
	 * differs from its group's, one beyond max_shard. */
	assert_int_equal(wn_kcpgo_dec_new(rs, DS, PS, 202, &d), 0);
	struct wn_kcpgo_pkt p;
	assert_int_equal(wn_kcpgo_parse(pkts[4] + ROOM, plen[4], &p), 0);
	assert_int_equal(wn_kcpgo_dec_input(d, &p, collect, &g), 0);
	assert_int_equal(wn_kcpgo_parse(pkts[5] + ROOM, plen[5] - 1, &p), 0);
	assert_int_equal(wn_kcpgo_dec_input(d, &p, collect, &g), WN_EPROTO);
	p.shard_len = 500;
	assert_int_equal(wn_kcpgo_dec_input(d, &p, collect, &g), WN_EPROTO);
	/* A data shard in a parity slot. */
	assert_int_equal(wn_kcpgo_parse(pkts[0] + ROOM, plen[0], &p), 0);
	p.seqid = 5;
	assert_int_equal(wn_kcpgo_dec_input(d, &p, collect, &g), WN_EPROTO);
	wn_kcpgo_dec_free(d);
	wn_kcpgo_enc_free(e);
	wn_rs_free(rs);
}

/* A peer sending 4+2 to a decoder configured for kcptun's 10+3: it finds
 * the peer's counts from the shards' seqids (once 32 are in) and rebuilds
 * with them. */
static void test_detects_peer_shard_counts(void **state)
{
	(void)state;
	enum { DS = 4, PS = 2, ROOM = 20, GROUPS = 16 };
	struct wn_rs *rs4, *rs10;
	assert_int_equal(wn_rs_new(DS, PS, &rs4), 0);
	assert_int_equal(wn_rs_new(10, 3, &rs10), 0);
	struct wn_kcpgo_enc *e;
	struct wn_kcpgo_dec *d;
	assert_int_equal(wn_kcpgo_enc_new(rs4, DS, PS, 202, ROOM, &e), 0);
	assert_int_equal(wn_kcpgo_dec_new(rs10, 10, 3, 202, &d), 0);
	struct got *g = calloc(1, sizeof(*g));
	int rebuilt = 0;
	for (int grp = 0; grp < GROUPS; grp++) {
		static uint8_t pkts[DS + PS][ROOM + 8 + 200];
		size_t plen[DS + PS];
		for (int i = 0; i < DS; i++) {
			uint8_t *kcp = pkts[i] + ROOM + 8;
			memset(kcp, 'A' + grp, 40);
			kcp[0] = (uint8_t)i;
			wn_kcpgo_enc_data(e, kcp, 40);
			plen[i] = 48;
		}
		for (int j = 0; j < PS; j++) {
			size_t n;
			uint8_t *p = wn_kcpgo_enc_parity(e, (unsigned)j, &n);
			memcpy(pkts[DS + j] + ROOM, p, n);
			plen[DS + j] = n;
		}
		for (int i = 0; i < DS + PS; i++) {
			if (i == grp % DS) /* one data shard lost per group */
				continue;
			struct wn_kcpgo_pkt p;
			assert_int_equal(
			    wn_kcpgo_parse(pkts[i] + ROOM, plen[i], &p), 0);
			g->n = 0;
			int r = wn_kcpgo_dec_input(d, &p, collect, g);
			if (r > 0 && grp >= GROUPS / 2) {
				/* After the switch, every loss comes back. */
				assert_int_equal(r, 1);
				assert_int_equal(g->len[0], 40);
				assert_int_equal(g->kcp[0][0], grp % DS);
				assert_int_equal(g->kcp[0][1], 'A' + grp);
			}
			rebuilt += r > 0 ? r : 0;
		}
	}
	unsigned ds, ps;
	uint64_t retunes;
	wn_kcpgo_dec_shards(d, &ds, &ps, &retunes);
	assert_int_equal(ds, DS);
	assert_int_equal(ps, PS);
	assert_int_equal(retunes, 1);
	assert_true(rebuilt >= GROUPS / 2);
	free(g);
	wn_kcpgo_dec_free(d);
	wn_kcpgo_enc_free(e);
	wn_rs_free(rs4);
	wn_rs_free(rs10);
}

/* A shard with only its seqid and kind mattering: data carries a size
 * field of 4 (two KCP bytes), parity is as long. */
static int feed_shard(struct wn_kcpgo_dec *d, uint32_t seqid, int parity)
{
	static uint8_t sh[4] = {4, 0, 0, 0};
	struct wn_kcpgo_pkt p = {
	    .kind = parity ? WN_KCPGO_PARITY : WN_KCPGO_DATA,
	    .seqid = seqid,
	    .shard = sh,
	    .shard_len = sizeof(sh),
	};
	struct got g = {0};
	return wn_kcpgo_dec_input(d, &p, collect, &g);
}

/* Shards of `groups` groups of ds+ps from seqid base on: a few data shards
 * of each (enough to rule out every smaller group size) and its first and
 * last parity shard. Returns the seqid after them. */
static uint32_t steer(struct wn_kcpgo_dec *d, uint32_t base, unsigned ds,
                      unsigned ps, unsigned groups)
{
	const unsigned T = ds + ps;
	const unsigned data[] = {0, ds / 3, ds / 2 - 1, ds - 3, ds - 2, ds - 1};
	for (unsigned g = 0; g < groups; g++, base += T) {
		for (size_t k = 0; k < sizeof(data) / sizeof(data[0]); k++)
			(void)feed_shard(d, base + data[k], 0);
		(void)feed_shard(d, base + ds, 1);
		(void)feed_shard(d, base + T - 1, 1);
	}
	return base;
}

/* A peer (or a stranger with the key) whose shards say 200+2 does not
 * make the decoder rebuild with 200x200 matrices: it keeps its counts.
 * Counts within the bound are still adopted. */
static void test_detect_is_bounded(void **state)
{
	(void)state;
	struct wn_rs *rs;
	assert_int_equal(wn_rs_new(10, 3, &rs), 0);
	struct wn_kcpgo_dec *d;
	assert_int_equal(wn_kcpgo_dec_new(rs, 10, 3, 202, &d), 0);
	(void)steer(d, 0, 200, 2, 40);
	unsigned ds, ps;
	uint64_t retunes;
	wn_kcpgo_dec_shards(d, &ds, &ps, &retunes);
	assert_int_equal(ds, 10);
	assert_int_equal(ps, 3);
	assert_int_equal(retunes, 0);
	wn_kcpgo_dec_free(d);

	assert_int_equal(wn_kcpgo_dec_new(rs, 10, 3, 202, &d), 0);
	(void)steer(d, 0, 30, 2, 40);
	wn_kcpgo_dec_shards(d, &ds, &ps, &retunes);
	assert_int_equal(ds, 30);
	assert_int_equal(ps, 2);
	assert_int_equal(retunes, 1);
	wn_kcpgo_dec_free(d);
	wn_rs_free(rs);
}

/* A peer flipping between two shard counts every couple of hundred
 * shards gets a retune now and then, not one per flip. */
static void test_retunes_are_rate_limited(void **state)
{
	(void)state;
	struct wn_rs *rs;
	assert_int_equal(wn_rs_new(10, 3, &rs), 0);
	struct wn_kcpgo_dec *d;
	assert_int_equal(wn_kcpgo_dec_new(rs, 10, 3, 202, &d), 0);
	uint32_t seq = 0;
	for (int round = 0; round < 20; round++) {
		seq = steer(d, seq, 30, 2, 12);
		seq = (seq + 5) / 6 * 6; /* a group boundary for 4+2 */
		for (int g = 0; g < 16; g++)
			for (unsigned i = 0; i < 6; i++)
				(void)feed_shard(d, seq++, i >= 4);
		seq = (seq + 31) / 32 * 32;
	}
	unsigned ds, ps;
	uint64_t retunes;
	wn_kcpgo_dec_shards(d, &ds, &ps, &retunes);
	assert_true(retunes >= 1);
	assert_true(retunes <= 5);
	wn_kcpgo_dec_free(d);
	wn_rs_free(rs);
}

/* Groups that lose the same shards reuse one inverted matrix: 30 groups
 * of 10+3 losing data shards 3 and 7, then 30 alternating between that
 * and losing shard 5 alone, cost two inversions in all. */
static void test_rebuild_reuses_inverse(void **state)
{
	(void)state;
	enum { DS = 10, PS = 3, ROOM = 20 };
	struct wn_rs *rs;
	assert_int_equal(wn_rs_new(DS, PS, &rs), 0);
	struct wn_kcpgo_enc *e;
	struct wn_kcpgo_dec *d;
	assert_int_equal(wn_kcpgo_enc_new(rs, DS, PS, 202, ROOM, &e), 0);
	assert_int_equal(wn_kcpgo_dec_new(rs, DS, PS, 202, &d), 0);
	struct got *g = calloc(1, sizeof(*g));
	int rebuilt = 0;
	for (int grp = 0; grp < 60; grp++) {
		static uint8_t pkts[DS + PS][ROOM + 8 + 200];
		size_t plen[DS + PS];
		for (int i = 0; i < DS; i++) {
			uint8_t *kcp = pkts[i] + ROOM + 8;
			memset(kcp, 'A' + i, 30);
			kcp[0] = (uint8_t)grp;
			wn_kcpgo_enc_data(e, kcp, 30);
			plen[i] = 38;
		}
		for (int j = 0; j < PS; j++) {
			size_t n;
			uint8_t *p = wn_kcpgo_enc_parity(e, (unsigned)j, &n);
			memcpy(pkts[DS + j] + ROOM, p, n);
			plen[DS + j] = n;
		}
		int alone = grp >= 30 && grp % 2;
		for (int i = 0; i < DS + PS; i++) {
			if (alone ? i == 5 : (i == 3 || i == 7))
				continue;
			struct wn_kcpgo_pkt p;
			assert_int_equal(
			    wn_kcpgo_parse(pkts[i] + ROOM, plen[i], &p), 0);
			g->n = 0;
			int r = wn_kcpgo_dec_input(d, &p, collect, g);
			assert_true(r >= 0);
			for (int k = 0; k < r; k++) {
				assert_int_equal(g->len[k], 30);
				assert_int_equal(g->kcp[k][0], grp);
			}
			rebuilt += r;
		}
	}
	assert_int_equal(rebuilt, 30 * 2 + 15 * 2 + 15);
	assert_int_equal(wn_kcpgo_dec_inversions(d), 2);
	free(g);
	wn_kcpgo_dec_free(d);
	wn_kcpgo_enc_free(e);
	wn_rs_free(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_data_shard),
	    cmocka_unit_test(test_parity_and_raw),
	    cmocka_unit_test(test_seqid_wrap),
	    cmocka_unit_test(test_groups),
	    cmocka_unit_test(test_detects_peer_shard_counts),
	    cmocka_unit_test(test_detect_is_bounded),
	    cmocka_unit_test(test_retunes_are_rate_limited),
	    cmocka_unit_test(test_rebuild_reuses_inverse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
