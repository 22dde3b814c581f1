/* The KCP engine's handshake admission under a flood (security review H3):
 * a real client and server over an in-memory carrier, and an attacker who
 * replays captured initiations of that very client from spoofed source
 * addresses. Before every initiation the real client sends, more replays
 * than the server's whole handshake budget arrive first, so a server that
 * spends its budget on them never answers the client. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/protect.h"
#include "engine/kcp_engine_int.h"
#include "support/memcarrier.h"
#include "util/err.h"

/* More than the server's global handshake burst. */
#define FLOOD 450

struct world {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_identity sid, cid;
	struct wn_engine *ksrv;
	struct wn_engine *kcli;
	struct wn_memcarrier sc, cc;
	struct wn_carrier_handler sh; /* the server's own handler */
	/* captured initiations of the client, replayed by the attacker */
	uint8_t (*cap)[WN_PROTECT_INITIATION_MAX];
	size_t *cap_len;
	int ncap;
	uint32_t spoof;
	int floods, up;
	uv_timer_t guard;
	int timed_out;
};

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	(void)ctx;
	(void)t;
	(void)target;
	wn_stream_reset(s, WN_STREAM_DENIED);
}

static void on_up(void *ctx)
{
	((struct world *)ctx)->up++;
}

static void on_down(void *ctx, const char *why)
{
	(void)ctx;
	(void)why;
}

/* The server's carrier hands packets here first: before each initiation
 * of the real client, the attacker's replays, each from another spoofed
 * address. */
static void shim_recv(void *ctx, struct wn_carrier *car,
                      const struct sockaddr *from, socklen_t fromlen,
                      uint8_t *pkt, size_t len)
{
	struct world *w = ctx;
	if (len && pkt[0] == WN_PROTECT_MSG_INITIATION) {
		w->floods++;
		for (int i = 0; i < FLOOD; i++) {
			struct sockaddr_in sa = {.sin_family = AF_INET};
			sa.sin_addr.s_addr = htonl(0x0b000000u + ++w->spoof);
			sa.sin_port = htons(1024 + (w->spoof & 0x7fff));
			const uint8_t *c = w->cap[i % w->ncap];
			uint8_t copy[WN_PROTECT_INITIATION_MAX];
			memcpy(copy, c, w->cap_len[i % w->ncap]);
			w->sh.recv(w->sh.ctx, car, (struct sockaddr *)&sa,
			           sizeof(sa), copy, w->cap_len[i % w->ncap]);
		}
	}
	w->sh.recv(w->sh.ctx, car, from, fromlen, pkt, len);
}

static void shim_writable(void *ctx, struct wn_carrier *car)
{
	struct world *w = ctx;
	if (w->sh.writable)
		w->sh.writable(w->sh.ctx, car);
}

static void guard_fired(uv_timer_t *t)
{
	struct world *w = t->data;
	w->timed_out = 1;
	wn_loop_stop(&w->loop);
}

/* ncap distinct initiations of the client, as an observer of its traffic
 * would have captured them. */
static void capture(struct world *w, int ncap)
{
	struct wn_protect_env env = {.random = wn_protect_random_sodium};
	struct wn_protect_peer p;
	uint8_t sx[WN_KEY_LEN];
	assert_int_equal(wn_pubkey_to_x25519(w->sid.ed_pk, sx), 0);
	assert_int_equal(
	    wn_protect_peer_init(&p, true, w->cid.x_sk, w->cid.x_pk, sx, &env),
	    0);
	w->ncap = ncap;
	w->cap = calloc((size_t)ncap, sizeof(*w->cap));
	w->cap_len = calloc((size_t)ncap, sizeof(*w->cap_len));
	assert_non_null(w->cap);
	assert_non_null(w->cap_len);
	uint64_t wall = 1700000000000ull;
	for (int i = 0; i < ncap; i++)
		assert_int_equal(
		    wn_protect_initiate(&p, NULL, 0, wall + i, 1, w->cap[i],
		                        sizeof(w->cap[i]), &w->cap_len[i]),
		    0);
	wn_protect_peer_wipe(&p);
}

static void world_init(struct world *w, int ncap)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(wn_loop_init(&w->loop), 0);
	wn_log_init(&w->log, WN_LOG_ERROR, STDERR_FILENO);
	assert_int_equal(wn_identity_generate(&w->sid), 0);
	assert_int_equal(wn_identity_generate(&w->cid), 0);
	capture(w, ncap);
	struct wn_kcp_engine_opts ko;
	wn_kcp_engine_opts_default(&ko);
	ko.loop = &w->loop;
	ko.log = &w->log;
	ko.idle_timeout_ms = 10000;
	ko.keepalive_ms = 1000;
	ko.id = &w->sid;
	struct wn_accept_handler ah = {.ctx = w, .on_stream = on_stream};
	struct wn_engine_conf sconf = {
	    .clients = (const uint8_t(*)[WN_KEY_LEN])w->cid.ed_pk,
	    .n_clients = 1,
	    .accept = &ah};
	assert_int_equal(wn__kep_server_create(&ko, &sconf, &w->ksrv), 0);
	ko.id = &w->cid;
	struct wn_engine_events ev = {
	    .ctx = w, .on_up = on_up, .on_down = on_down};
	struct wn_engine_conf cconf = {.server_key = w->sid.ed_pk,
	                               .events = &ev};
	assert_int_equal(wn__kep_client_create(&ko, &cconf, &w->kcli), 0);
	w->sh = wn_engine_handler(w->ksrv);
	struct wn_carrier_handler shim = {
	    .ctx = w, .recv = shim_recv, .writable = shim_writable};
	wn_memcarrier_init(&w->sc, &w->loop, "10.0.0.2", 4433, shim);
	wn_memcarrier_init(&w->cc, &w->loop, "10.0.0.1", 50000,
	                   wn_engine_handler(w->kcli));
	wn_memcarrier_pair(&w->sc, &w->cc);
	struct sockaddr *sa = (struct sockaddr *)&w->sc.addr;
	assert_int_equal(
	    wn_engine_add_path(w->kcli, &w->cc.base, sa, sizeof(w->sc.addr)),
	    0);
	assert_int_equal(wn_engine_go(w->kcli), 0);
	uv_timer_init(wn_loop_uv(&w->loop), &w->guard);
	w->guard.data = w;
	/* Long enough for the client's retries at 1, 2 and 4 s. */
	uv_timer_start(&w->guard, guard_fired, 7500, 0);
}

static void world_free(struct world *w)
{
	wn_engine_close(w->kcli);
	wn_engine_close(w->ksrv);
	uv_close((uv_handle_t *)&w->guard, NULL);
	for (int i = 0; i < 3; i++)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_NOWAIT);
	wn_memcarrier_close(&w->sc);
	wn_memcarrier_close(&w->cc);
	assert_int_equal(wn_loop_close(&w->loop), 0);
	free(w->cap);
	free(w->cap_len);
}

static void run_until_up(struct world *w)
{
	while (!w->up && !w->timed_out)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_ONCE);
}

/* One captured initiation replayed: the server does its DH work once
 * and recognises every copy after that for free, so the client's own
 * handshake finds the budget untouched. */
static void test_one_initiation_replayed(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 1);
	run_until_up(&w);
	assert_int_equal(w.up, 1);
	assert_true(w.floods >= 1);
	const struct wn_kcp_engine_stats *st = &wn__kep_of(w.ksrv)->stats;
	assert_true(st->pkts_dropped >= FLOOD - 1);
	/* The first copy was examined and refused; no other one was. */
	assert_true(st->auth_failures <= (uint64_t)w.floods);
	world_free(&w);
}

/* Many distinct captured initiations: they use up the global budget,
 * the server goes under load and answers without a valid mac2 only with
 * cookies, and the real client completes through the cookie path. */
static void test_many_initiations_replayed(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, FLOOD);
	uint64_t t0 = wn_loop_now_ms(&w.loop);
	run_until_up(&w);
	assert_int_equal(w.up, 1);
	uv_update_time(wn_loop_uv(&w.loop));
	uint64_t ms = wn_loop_now_ms(&w.loop) - t0;
	const struct wn_kcp_engine_stats *st = &wn__kep_of(w.ksrv)->stats;
	/* The DH work went only on the budget above the load mark and on
	 * what the global rate (200/s) added meanwhile. */
	assert_true(st->auth_failures <= 200 + 200 * ms / 1000 + 2);
	assert_true(st->cookies >= FLOOD - 200);
	assert_true(wn__kep_of(w.kcli)->stats.cookies >= 1);
	world_free(&w);
}

/* Under load as without it, an initiation that fails mac1 (a prober who
 * does not know the server's key) gets no answer at all: cookie replies
 * go only to those who know it. */
static void test_stranger_gets_nothing_under_load(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, FLOOD);
	run_until_up(&w);
	assert_int_equal(w.up, 1);
	/* Keep the server under load: a few more unseen replays spend what
	 * the rate has added since the flood. */
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(0x0c000001u);
	sa.sin_port = htons(4000);
	for (int i = 300; i < 350; i++) {
		uint8_t pkt[WN_PROTECT_INITIATION_MAX];
		memcpy(pkt, w.cap[i], w.cap_len[i]);
		w.sh.recv(w.sh.ctx, &w.sc.base, (struct sockaddr *)&sa,
		          sizeof(sa), pkt, w.cap_len[i]);
	}
	uint64_t sent = w.sc.sent, cookies = wn__kep_of(w.ksrv)->stats.cookies;
	for (int i = 0; i < 100; i++) {
		uint8_t pkt[WN_PROTECT_INITIATION_MAX];
		size_t len = w.cap_len[i];
		memcpy(pkt, w.cap[i], len);
		pkt[len - 2 * WN_PROTECT_MAC_LEN] ^= 1; /* mac1 */
		w.sh.recv(w.sh.ctx, &w.sc.base, (struct sockaddr *)&sa,
		          sizeof(sa), pkt, len);
	}
	assert_int_equal(w.sc.sent, sent);
	assert_int_equal(wn__kep_of(w.ksrv)->stats.cookies, cookies);
	/* An unseen valid one from there does get a cookie: the load is
	 * real. */
	uint8_t pkt[WN_PROTECT_INITIATION_MAX];
	memcpy(pkt, w.cap[FLOOD - 1], w.cap_len[FLOOD - 1]);
	w.sh.recv(w.sh.ctx, &w.sc.base, (struct sockaddr *)&sa, sizeof(sa), pkt,
	          w.cap_len[FLOOD - 1]);
	assert_int_equal(wn__kep_of(w.ksrv)->stats.cookies, cookies + 1);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_initiation_replayed),
	    cmocka_unit_test(test_many_initiations_replayed),
	    cmocka_unit_test(test_stranger_gets_nothing_under_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
