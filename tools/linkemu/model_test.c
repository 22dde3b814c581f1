/* Tests of the link emulator's impairment model in virtual time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"
#include "util/err.h"

#define MS UINT64_C(1000000)
#define US UINT64_C(1000)
#define T0 (UINT64_C(1000) * 1000000000) /* a clock far from zero */

__extension__ typedef unsigned __int128 u128;

static struct le_cfg parse_ok(const char *spec)
{
	struct le_cfg cfg;
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	int rc = le_cfg_parse(&cfg, spec, err, sizeof(err));

	if (rc != WN_OK)
		fail_msg("spec '%s': %s", spec, err);
	return cfg;
}

static void init_ok(struct le_dir *d, const char *spec, uint64_t seed)
{
	struct le_cfg cfg = parse_ok(spec);

	assert_int_equal(le_dir_init(d, &cfg, seed), WN_OK);
}

static double pct(uint64_t part, uint64_t whole)
{
	return 100.0 * (double)part / (double)whole;
}

/* ---- parsing ----------------------------------------------------------- */

static void test_parse_full(void **state)
{
	struct le_cfg c = parse_ok("delay=25ms,jitter=2.5ms,loss=1%,"
	                           "burst=1%:25%:50%:0.1%,rate=100mbit,"
	                           "queue=256kb,reorder=1%:3ms,dup=0.5%");

	assert_int_equal(c.delay_ns, 25 * MS);
	assert_int_equal(c.jitter_ns, 2500 * US);
	assert_false(c.jitter_reorder);
	assert_int_equal(c.loss, le_prob_from_double(0.01));
	assert_true(c.burst);
	assert_int_equal(c.ge_p, le_prob_from_double(0.01));
	assert_int_equal(c.ge_r, le_prob_from_double(0.25));
	assert_int_equal(c.ge_loss_bad, le_prob_from_double(0.5));
	assert_int_equal(c.ge_loss_good, le_prob_from_double(0.001));
	assert_int_equal(c.rate_bps, 100000000);
	assert_int_equal(c.queue_bytes, 256 * 1024);
	assert_int_equal(c.reorder, le_prob_from_double(0.01));
	assert_int_equal(c.reorder_hold_ns, 3 * MS);
	assert_int_equal(c.dup, le_prob_from_double(0.005));
}

static void test_parse_units_and_defaults(void **state)
{
	struct le_cfg c = parse_ok("delay=1s,jitter=750us:reorder,rate=2gbit");

	assert_int_equal(c.delay_ns, 1000 * MS);
	assert_int_equal(c.jitter_ns, 750 * US);
	assert_true(c.jitter_reorder);
	assert_int_equal(c.rate_bps, 2000000000);
	c = parse_ok("delay=100ns,rate=64kbit,queue=3b");
	assert_int_equal(c.delay_ns, 100);
	assert_int_equal(c.rate_bps, 64000);
	assert_int_equal(c.queue_bytes, 3);
	c = parse_ok("queue=2mb,rate=1500bit");
	assert_int_equal(c.queue_bytes, 2 * 1048576);
	assert_int_equal(c.rate_bps, 1500);

	/* burst defaults: lose everything in bad, nothing in good. */
	c = parse_ok("burst=2%:30%");
	assert_true(c.burst);
	assert_int_equal(c.ge_loss_bad, LE_PROB_ONE);
	assert_int_equal(c.ge_loss_good, 0);
	c = parse_ok("");
	assert_int_equal(c.delay_ns, 0);
	assert_int_equal(le_cfg_queue_bytes(&c), 0);
	assert_int_equal(le_cfg_reorder_hold(&c), LE_REORDER_HOLD_NS);
	c = parse_ok("none");
	assert_int_equal(c.rate_bps, 0);

	/* Default queue: 100 ms at the rate, at least 16 KiB. */
	c = parse_ok("rate=100mbit");
	assert_int_equal(le_cfg_queue_bytes(&c), 1250000);
	c = parse_ok("rate=1mbit");
	assert_int_equal(le_cfg_queue_bytes(&c), 16384);
}

static void test_parse_layering(void **state)
{
	struct le_cfg c;
	char err[256];

	memset(&c, 0, sizeof(c));
	assert_int_equal(le_cfg_parse(&c, "delay=10ms,loss=1%,burst=1%:10%",
	                              err, sizeof(err)),
	                 WN_OK);
	assert_int_equal(
	    le_cfg_parse(&c, "delay=20ms,loss=0,burst=off", err, sizeof(err)),
	    WN_OK);
	assert_int_equal(c.delay_ns, 20 * MS);
	assert_int_equal(c.loss, 0);
	assert_false(c.burst);
	/* A failed parse leaves the config untouched. */
	assert_int_equal(
	    le_cfg_parse(&c, "delay=30ms,bogus=1", err, sizeof(err)),
	    WN_EINVAL);
	assert_int_equal(c.delay_ns, 20 * MS);
}

static void test_parse_errors(void **state)
{
	static const char *const bad[] = {
	    "delay=25",
	    "delay=25m",
	    "delay=-1ms",
	    "delay=ms",
	    "delay=1ms:2ms",
	    "loss=1",
	    "loss=101%",
	    "loss=x%",
	    "burst=1%",
	    "burst=1%:0%",
	    "burst=1%:2%:3%:4%:5%",
	    "rate=100mb",
	    "rate=0.5bit",
	    "queue=10kbit",
	    "reorder=1%:0ms",
	    "reorder=1%:5",
	    "dup=1%%",
	    "jitter=1ms:fast",
	    "frobnicate=1",
	    "delay",
	    "delay=1ms,,loss=",
	    "=1ms",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct le_cfg c;

		memset(&c, 0, sizeof(c));
		err[0] = '\0';
		if (le_cfg_parse(&c, bad[i], err, sizeof(err)) != WN_EINVAL)
			fail_msg("spec '%s' accepted", bad[i]);
		assert_true(strlen(err) > 0);
	}
}

static void test_format(void **state)
{
	struct le_cfg c = parse_ok("delay=25ms,jitter=1500us,loss=1%,"
	                           "rate=20mbit");
	char buf[512];

	le_cfg_format(&c, buf, sizeof(buf));
	assert_non_null(strstr(buf, "delay=25ms"));
	assert_non_null(strstr(buf, "jitter=1500us:order"));
	assert_non_null(strstr(buf, "loss=1%"));
	assert_non_null(strstr(buf, "rate=20000000bit"));
	assert_non_null(strstr(buf, "queue=250000b"));
}

/* ---- random numbers ---------------------------------------------------- */

static void test_rng(void **state)
{
	struct le_rng a, b;
	uint64_t hist[7] = {0};

	le_rng_seed(&a, 42);
	le_rng_seed(&b, 42);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(le_rng_next(&a), le_rng_next(&b));
	le_rng_seed(&b, 43);
	assert_int_not_equal(le_rng_next(&a), le_rng_next(&b));
	for (int i = 0; i < 70000; i++) {
		uint64_t v = le_rng_upto(&a, 6);

		assert_true(v <= 6);
		hist[v]++;
	}
	for (int i = 0; i < 7; i++)
		assert_true(hist[i] > 9500 && hist[i] < 10500);
	assert_true(le_rng_chance(&a, LE_PROB_ONE));
	assert_false(le_rng_chance(&a, 0));
	assert_int_equal(le_prob_from_double(1.5), LE_PROB_ONE);
	assert_int_equal(le_prob_from_double(-1), 0);
}

/* ---- loss -------------------------------------------------------------- */

static void test_random_loss(void **state)
{
	for (uint64_t seed = 1; seed <= 5; seed++) {
		struct le_dir d;
		struct le_decision dec;
		uint64_t lost = 0;

		init_ok(&d, "loss=1%", seed);
		for (int i = 0; i < 20000; i++) {
			le_dir_decide(&d, T0 + (uint64_t)i * 100 * US, 1200,
			              &dec);
			if (dec.verdict == LE_DROP_LOSS)
				lost++;
			else
				assert_int_equal(dec.verdict, LE_DELIVER);
		}
		double p = pct(lost, 20000);

		if (p < 0.8 || p > 1.2)
			fail_msg("seed %d: loss %.3f%%", (int)seed, p);
		assert_int_equal(d.cnt.dropped_loss, lost);
		assert_int_equal(d.cnt.delivered, 20000 - lost);
		assert_int_equal(d.cnt.packets, 20000);
		assert_int_equal(d.cnt.bytes, 20000 * 1200);
	}
}

/* Runs n packets through a burst-loss spec; returns loss % and mean
 * burst length (runs of consecutive losses). */
static void run_bursts(const char *spec, uint64_t seed, int n, double *loss,
                       double *mean_burst)
{
	struct le_dir d;
	struct le_decision dec;
	uint64_t lost = 0, bursts = 0;
	bool prev_lost = false;

	init_ok(&d, spec, seed);
	for (int i = 0; i < n; i++) {
		le_dir_decide(&d, T0 + (uint64_t)i * 10 * US, 100, &dec);
		bool l = dec.verdict == LE_DROP_BURST;

		if (l) {
			lost++;
			if (!prev_lost)
				bursts++;
		}
		prev_lost = l;
	}
	assert_int_equal(d.cnt.dropped_burst, lost);
	*loss = pct(lost, n);
	*mean_burst = bursts ? (double)lost / (double)bursts : 0;
}

static void test_burst_loss(void **state)
{
	double loss, burst;

	/* p=1%, r=25%: stationary bad share p/(p+r) = 3.846%, mean burst
	 * 1/r = 4 packets. */
	run_bursts("burst=1%:25%", 7, 200000, &loss, &burst);
	print_message("gemodel 1%%:25%%: loss %.3f%%, mean burst %.3f\n", loss,
	              burst);
	assert_true(loss > 3.846 * 0.9 && loss < 3.846 * 1.1);
	assert_true(burst > 4 * 0.9 && burst < 4 * 1.1);

	/* p=0.5%, r=50%: loss 0.990%, mean burst 2. */
	run_bursts("burst=0.5%:50%", 8, 200000, &loss, &burst);
	assert_true(loss > 0.990 * 0.9 && loss < 0.990 * 1.1);
	assert_true(burst > 2 * 0.9 && burst < 2 * 1.1);

	/* Partial loss in both states: 3.846% * 50% + 96.154% * 0.2% =
	 * 2.1154%. */
	run_bursts("burst=1%:25%:50%:0.2%", 9, 400000, &loss, &burst);
	assert_true(loss > 2.1154 * 0.93 && loss < 2.1154 * 1.07);
}

static void test_loss_streams_independent(void **state)
{
	struct le_dir a, b;
	struct le_decision da, db;

	/* The same seed loses the same packets whatever else is enabled
	 * (as long as no rate limit changes which packets get that far). */
	init_ok(&a, "loss=3%", 11);
	init_ok(&b, "loss=3%,delay=5ms,jitter=1ms,reorder=10%,dup=10%", 11);
	for (int i = 0; i < 10000; i++) {
		le_dir_decide(&a, T0 + (uint64_t)i * US, 500, &da);
		le_dir_decide(&b, T0 + (uint64_t)i * US, 500, &db);
		assert_int_equal(da.verdict == LE_DROP_LOSS,
		                 db.verdict == LE_DROP_LOSS);
	}
}

/* ---- delay and jitter -------------------------------------------------- */

static void test_delay_exact(void **state)
{
	struct le_dir d;
	struct le_decision dec;

	init_ok(&d, "delay=25ms", 1);
	for (int i = 0; i < 1000; i++) {
		uint64_t now = T0 + (uint64_t)i * 37 * US;

		le_dir_decide(&d, now, 1500, &dec);
		assert_int_equal(dec.verdict, LE_DELIVER);
		assert_int_equal(dec.sent_ns, now);
		assert_int_equal(dec.at_ns, now + 25 * MS);
		assert_false(dec.dup);
		assert_false(dec.reordered);
	}
}

static void check_jitter(const char *spec, uint64_t delay, uint64_t jitter,
                         bool expect_order)
{
	struct le_dir d;
	struct le_decision dec;
	uint64_t prev_at = 0, lo = UINT64_MAX, hi = 0, inversions = 0;
	double sum = 0;
	const int n = 50000;

	init_ok(&d, spec, 3);
	for (int i = 0; i < n; i++) {
		uint64_t now = T0 + (uint64_t)i * 50 * US;

		le_dir_decide(&d, now, 1000, &dec);
		assert_int_equal(dec.verdict, LE_DELIVER);
		uint64_t min = delay > jitter ? now + delay - jitter : now;

		if (dec.at_ns < min || dec.at_ns > now + delay + jitter)
			fail_msg("%s: packet %d at %+lld ns", spec, i,
			         (long long)(dec.at_ns - now));
		if (dec.at_ns < prev_at)
			inversions++;
		prev_at = dec.at_ns;
		uint64_t off = dec.at_ns - now;

		lo = off < lo ? off : lo;
		hi = off > hi ? off : hi;
		sum += (double)off;
	}
	if (expect_order) {
		assert_int_equal(inversions, 0);
	} else {
		assert_true(inversions > 0);
	}
	if (!expect_order && delay >= jitter) {
		/* Independent uniform draws: the extremes are reached and the
		 * mean is the delay. */
		assert_true(lo <= delay - jitter + jitter / 100);
		assert_true(hi >= delay + jitter - jitter / 100);
		double mean = sum / n;

		assert_true(mean > (double)delay - (double)jitter / 50 &&
		            mean < (double)delay + (double)jitter / 50);
	} else if (delay < jitter) {
		/* Draws below zero are clamped to the end of serialization. */
		assert_int_equal(lo, 0);
	}
}

static void test_jitter_bounds(void **state)
{
	/* Order-preserving jitter (the default) never reorders ... */
	check_jitter("delay=25ms,jitter=2ms", 25 * MS, 2 * MS, true);
	/* ... netem-style jitter does, within the same exact bounds. */
	check_jitter("delay=25ms,jitter=2ms:reorder", 25 * MS, 2 * MS, false);
	/* Jitter larger than the delay never delivers before sending. */
	check_jitter("delay=1ms,jitter=3ms", 1 * MS, 3 * MS, true);
	check_jitter("delay=1ms,jitter=3ms:reorder", 1 * MS, 3 * MS, false);
}

/* ---- rate and queue ---------------------------------------------------- */

static void test_rate_back_to_back(void **state)
{
	static const struct {
		const char *spec;
		uint64_t rate;
		uint32_t len;
	} cases[] = {
	    {"rate=8mbit,queue=10mb", 8000000, 1000},
	    {"rate=7mbit,queue=10mb", 7000000, 1000},
	    {"rate=100mbit,queue=10mb", 100000000, 1500},
	    {"rate=3gbit,queue=10mb", 3000000000, 1337},
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct le_dir d;
		struct le_decision dec;
		const int n = 1000;

		init_ok(&d, cases[c].spec, 1);
		for (int i = 1; i <= n; i++) {
			le_dir_decide(&d, T0, cases[c].len, &dec);
			assert_int_equal(dec.verdict, LE_DELIVER);
			/* Packet i finishes at exactly i*len*8/rate. */
			u128 bits_ns = (u128)i * cases[c].len * 8000000000ULL;
			uint64_t want =
			    T0 + (uint64_t)(bits_ns / cases[c].rate);

			assert_int_equal(dec.sent_ns, want);
			assert_int_equal(dec.at_ns, want);
		}
	}
}

static void test_rate_idle_and_spaced(void **state)
{
	struct le_dir d;
	struct le_decision dec;

	/* 8 Mbit/s: one byte per microsecond. */
	init_ok(&d, "rate=8mbit,delay=10ms", 1);
	le_dir_decide(&d, T0, 1000, &dec);
	assert_int_equal(dec.sent_ns, T0 + 1 * MS);
	assert_int_equal(dec.at_ns, T0 + 11 * MS);
	/* Arriving while the first is on the wire: waits for it. */
	le_dir_decide(&d, T0 + 500 * US, 500, &dec);
	assert_int_equal(dec.sent_ns, T0 + 1500 * US);
	/* Arriving after the link went idle: starts at once. */
	le_dir_decide(&d, T0 + 5 * MS, 100, &dec);
	assert_int_equal(dec.sent_ns, T0 + 5100 * US);
	/* Paced below the rate: no queueing at all. */
	for (int i = 0; i < 100; i++) {
		uint64_t now = T0 + 10 * MS + (uint64_t)i * 2 * MS;

		le_dir_decide(&d, now, 1000, &dec);
		assert_int_equal(dec.sent_ns, now + 1 * MS);
		assert_int_equal(le_dir_backlog(&d, now + 1 * MS), 0);
	}
}

static void test_queue_overflow(void **state)
{
	struct le_dir d;
	struct le_decision dec;

	/* 8 Mbit/s (1 byte/us), 10000-byte queue, 1000-byte packets. */
	init_ok(&d, "rate=8mbit,queue=10000b", 1);
	for (int i = 0; i < 10; i++) {
		le_dir_decide(&d, T0, 1000, &dec);
		assert_int_equal(dec.verdict, LE_DELIVER);
	}
	assert_int_equal(le_dir_backlog(&d, T0), 10000);
	/* The 11th would make the backlog 11000 > 10000. */
	le_dir_decide(&d, T0, 1000, &dec);
	assert_int_equal(dec.verdict, LE_DROP_QUEUE);
	assert_int_equal(dec.sent_ns, 0);
	le_dir_decide(&d, T0, 1, &dec);
	assert_int_equal(dec.verdict, LE_DROP_QUEUE);
	/* Half a packet later 500 bytes have left: 9500 + 1000 is too much,
	 * 9500 + 500 fits exactly. */
	assert_int_equal(le_dir_backlog(&d, T0 + 500 * US), 9500);
	le_dir_decide(&d, T0 + 500 * US, 1000, &dec);
	assert_int_equal(dec.verdict, LE_DROP_QUEUE);
	le_dir_decide(&d, T0 + 500 * US, 500, &dec);
	assert_int_equal(dec.verdict, LE_DELIVER);
	assert_int_equal(dec.sent_ns, T0 + 10500 * US);
	le_dir_decide(&d, T0 + 500 * US, 1, &dec);
	assert_int_equal(dec.verdict, LE_DROP_QUEUE);
	/* At 1.5 ms: 9000 left, 1000 fits exactly. */
	le_dir_decide(&d, T0 + 1500 * US, 1000, &dec);
	assert_int_equal(dec.verdict, LE_DELIVER);
	assert_int_equal(dec.sent_ns, T0 + 11500 * US);
	assert_int_equal(d.cnt.dropped_queue, 4);
	assert_int_equal(d.cnt.delivered, 12);
	/* A packet larger than the whole queue never fits. */
	init_ok(&d, "rate=8mbit,queue=1000b", 1);
	le_dir_decide(&d, T0, 1001, &dec);
	assert_int_equal(dec.verdict, LE_DROP_QUEUE);
	le_dir_decide(&d, T0, 1000, &dec);
	assert_int_equal(dec.verdict, LE_DELIVER);
}

static void test_queue_steady_overload(void **state)
{
	struct le_dir d;
	struct le_decision dec;
	uint64_t last_sent = 0;
	const int n = 20000;

	/* Offered 2x the rate for 2 s: about half is tail-dropped, the link
	 * stays busy, and the backlog never exceeds the limit. */
	init_ok(&d, "rate=10mbit,queue=30kb", 5);
	for (int i = 0; i < n; i++) {
		uint64_t now = T0 + (uint64_t)i * 100 * US; /* 1250 B/100us */

		le_dir_decide(&d, now, 250, &dec);
		assert_true(le_dir_backlog(&d, now) <= 30 * 1024);
		if (dec.verdict == LE_DELIVER)
			last_sent = dec.sent_ns;
	}
	double delivered_bits = (double)d.cnt.delivered * 250 * 8;
	double secs = (double)(last_sent - T0) / 1e9;

	assert_true(d.cnt.dropped_queue > n * 0.45);
	assert_true(d.cnt.dropped_queue < n * 0.55);
	assert_true(delivered_bits / secs > 9.99e6 &&
	            delivered_bits / secs < 10.01e6);
}

/* ---- duplication and reordering ---------------------------------------- */

static void test_duplicate(void **state)
{
	struct le_dir d;
	struct le_decision dec;
	uint64_t dups = 0;
	const int n = 40000;

	init_ok(&d, "dup=5%,delay=3ms", 21);
	for (int i = 0; i < n; i++) {
		le_dir_decide(&d, T0 + (uint64_t)i * US, 64, &dec);
		assert_int_equal(dec.verdict, LE_DELIVER);
		if (dec.dup) {
			dups++;
			assert_int_equal(dec.dup_at_ns, dec.at_ns);
		}
	}
	double p = pct(dups, n);

	assert_true(p > 4.5 && p < 5.5);
	assert_int_equal(d.cnt.duplicated, dups);
	init_ok(&d, "delay=3ms", 21);
	for (int i = 0; i < n; i++) {
		le_dir_decide(&d, T0 + (uint64_t)i * US, 64, &dec);
		assert_false(dec.dup);
	}
}

struct arrival {
	uint64_t at;
	int seq;
};

static int cmp_arrival(const void *a, const void *b)
{
	const struct arrival *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->seq - y->seq;
}

/* Delivers n packets 1 ms apart and counts "late" arrivals: packets that
 * arrive after a packet with a higher sequence number. */
static uint64_t count_late(const char *spec, int n, uint64_t *held)
{
	struct le_dir d;
	struct le_decision dec;
	struct arrival *arr = calloc((size_t)n, sizeof(*arr));
	int m = 0, max_seq = -1;
	uint64_t late = 0;

	assert_non_null(arr);
	init_ok(&d, spec, 99);
	for (int i = 0; i < n; i++) {
		le_dir_decide(&d, T0 + (uint64_t)i * MS, 500, &dec);
		if (dec.verdict != LE_DELIVER)
			continue;
		if (dec.reordered)
			assert_true(dec.at_ns >=
			            T0 + (uint64_t)i * MS + d.hold_ns);
		arr[m].at = dec.at_ns;
		arr[m].seq = i;
		m++;
	}
	qsort(arr, (size_t)m, sizeof(*arr), cmp_arrival);
	for (int i = 0; i < m; i++) {
		if (arr[i].seq < max_seq)
			late++;
		else
			max_seq = arr[i].seq;
	}
	*held = d.cnt.reordered;
	free(arr);
	return late;
}

static void test_reorder(void **state)
{
	uint64_t held, late;
	const int n = 40000;

	/* Held 10 ms while packets follow every 1 ms: each held packet is
	 * overtaken, so the late share equals the reorder probability. */
	late = count_late("delay=20ms,reorder=5%", n, &held);
	assert_true(late <= held && late >= held * 99 / 100);
	assert_true(pct(late, n) > 4.5 && pct(late, n) < 5.5);
	late = count_late("reorder=2%:3ms", n, &held);
	assert_true(late <= held && late >= held * 99 / 100);
	assert_true(pct(late, n) > 1.8 && pct(late, n) < 2.2);
	/* Combined with order-preserving jitter: the held packets are the
	 * only late ones (a held packet may still arrive in order when the
	 * jitter of the next ones is large). */
	late = count_late("delay=20ms,jitter=5ms,reorder=5%", n, &held);
	assert_true(late <= held && late > held / 2);
	/* Disabled: nothing is late, with or without (ordered) jitter. */
	late = count_late("delay=20ms,jitter=5ms,loss=1%,dup=1%", n, &held);
	assert_int_equal(late, 0);
	assert_int_equal(held, 0);
	late = count_late("rate=1mbit,jitter=1ms", n, &held);
	assert_int_equal(late, 0);
}

/* ---- determinism ------------------------------------------------------- */

static const char full_spec[] =
    "delay=25ms,jitter=3ms:reorder,loss=2%,burst=1%:30%,rate=20mbit,"
    "queue=20kb,reorder=3%,dup=2%";

static void test_determinism(void **state)
{
	struct le_dir a, b, c;
	struct le_decision da, db, dc;
	int differ = 0;

	init_ok(&a, full_spec, 1234);
	init_ok(&b, full_spec, 1234);
	init_ok(&c, full_spec, 1235);
	for (int i = 0; i < 50000; i++) {
		uint64_t now = T0 + (uint64_t)i * 300 * US;
		uint32_t len = 100 + (uint32_t)(i * 7919) % 1400;

		le_dir_decide(&a, now, len, &da);
		le_dir_decide(&b, now, len, &db);
		le_dir_decide(&c, now, len, &dc);
		assert_memory_equal(&da, &db, sizeof(da));
		if (memcmp(&da, &dc, sizeof(da)) != 0)
			differ++;
	}
	assert_memory_equal(&a.cnt, &b.cnt, sizeof(a.cnt));
	assert_true(differ > 1000);
	/* Every verdict happened. */
	assert_true(a.cnt.dropped_loss > 0 && a.cnt.dropped_burst > 0 &&
	            a.cnt.dropped_queue > 0 && a.cnt.reordered > 0 &&
	            a.cnt.duplicated > 0);
	assert_int_equal(a.cnt.packets, a.cnt.delivered + a.cnt.dropped_loss +
	                                    a.cnt.dropped_burst +
	                                    a.cnt.dropped_queue);
}

static void test_time_never_goes_back(void **state)
{
	struct le_dir d;
	struct le_decision dec;

	init_ok(&d, "delay=1ms", 1);
	le_dir_decide(&d, T0 + 5 * MS, 100, &dec);
	assert_int_equal(dec.at_ns, T0 + 6 * MS);
	le_dir_decide(&d, T0, 100, &dec);
	assert_int_equal(dec.at_ns, T0 + 6 * MS);
}

static void test_init_rejects(void **state)
{
	struct le_cfg c;
	struct le_dir d;

	memset(&c, 0, sizeof(c));
	c.loss = LE_PROB_ONE + 1;
	assert_int_equal(le_dir_init(&d, &c, 1), WN_EINVAL);
	memset(&c, 0, sizeof(c));
	c.burst = true;
	c.ge_p = LE_PROB_ONE / 2;
	assert_int_equal(le_dir_init(&d, &c, 1), WN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_full),
	    cmocka_unit_test(test_parse_units_and_defaults),
	    cmocka_unit_test(test_parse_layering),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_rng),
	    cmocka_unit_test(test_random_loss),
	    cmocka_unit_test(test_burst_loss),
	    cmocka_unit_test(test_loss_streams_independent),
	    cmocka_unit_test(test_delay_exact),
	    cmocka_unit_test(test_jitter_bounds),
	    cmocka_unit_test(test_rate_back_to_back),
	    cmocka_unit_test(test_rate_idle_and_spaced),
	    cmocka_unit_test(test_queue_overflow),
	    cmocka_unit_test(test_queue_steady_overload),
	    cmocka_unit_test(test_duplicate),
	    cmocka_unit_test(test_reorder),
	    cmocka_unit_test(test_determinism),
	    cmocka_unit_test(test_time_never_goes_back),
	    cmocka_unit_test(test_init_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
