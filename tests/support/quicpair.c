/* quicpair: see quicpair.h. */
#include "support/quicpair.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/quic_int.h"

static uint64_t vclock(void *ctx)
{
	return ((struct wn_quicpair *)ctx)->now;
}

/* The engines' non-cryptographic randomness, from a link's seeded
 * generator. */
static void vrand(void *ctx, uint8_t *buf, size_t len)
{
	struct wn_simlink *l = ctx;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)wn_simlink_rand(l);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

void wn_quicpair_init(struct wn_quicpair *p, const struct wn_simlink_cfg *link,
                      uint64_t start_ns, enum wn_log_level level,
                      const struct wn_accept_handler *ah)
{
	p->now = start_ns;
	assert_int_equal(wn_loop_init(&p->loop), 0);
	wn_log_init(&p->log, level, STDERR_FILENO);
	assert_int_equal(wn_identity_generate(&p->sid), 0);
	assert_int_equal(wn_identity_generate(&p->cid), 0);
	struct wn_simlink_cfg lc = *link;
	p->c2s = wn_simlink_new(&lc);
	lc.seed = link->seed * 31 + 7;
	p->s2c = wn_simlink_new(&lc);

	struct wn_quic_opts o;
	wn_quic_opts_default(&o);
	o.loop = &p->loop;
	o.log = &p->log;
	o.clock_ns = vclock;
	o.clock_ctx = p;
	o.id = &p->sid;
	o.rand = vrand;
	o.rand_ctx = p->s2c;
	struct wn_engine_conf sconf = {
	    .clients = (const uint8_t(*)[WN_KEY_LEN])p->cid.ed_pk,
	    .n_clients = 1,
	    .accept = ah};
	assert_int_equal(wn__quic_server_new(&o, &sconf, &p->srv), 0);
	o.id = &p->cid;
	o.rand_ctx = p->c2s;
	struct wn_engine_conf cconf = {.server_key = p->sid.ed_pk};
	assert_int_equal(wn__quic_client_new(&o, &cconf, &p->cli), 0);
	wn_simcarrier_init(&p->sc, "10.0.0.2", 4433, "10.0.0.1", 50000, p->s2c,
	                   p->c2s, &p->now, wn_engine_handler(p->srv));
	wn_simcarrier_init(&p->cc, "10.0.0.1", 50000, "10.0.0.2", 4433, p->c2s,
	                   p->s2c, &p->now, wn_engine_handler(p->cli));
}

void wn_quicpair_connect(struct wn_quicpair *p)
{
	assert_int_equal(wn_engine_add_path(p->cli, &p->cc.base,
	                                    wn_simcarrier_addr(&p->sc),
	                                    sizeof(p->sc.addr)),
	                 0);
	assert_int_equal(wn_engine_go(p->cli), 0);
}

void wn_quicpair_settle(struct wn_quicpair *p)
{
	do
		uv_run(wn_loop_uv(&p->loop), UV_RUN_NOWAIT);
	while (wn_loop_has_deferred(&p->loop));
}

uint64_t wn_quicpair_next_event(const struct wn_quicpair *p)
{
	uint64_t t = UINT64_MAX, w;
	if (wn_simcarrier_next(&p->cc, &w))
		t = min64(t, w);
	if (wn_simcarrier_next(&p->sc, &w))
		t = min64(t, w);
	t = min64(t, wn__quic_ep_next_expiry(wn__quic_ep(p->cli)));
	t = min64(t, wn__quic_ep_next_expiry(wn__quic_ep(p->srv)));
	return t;
}

void wn_quicpair_advance(struct wn_quicpair *p, uint64_t t)
{
	p->now = t > p->now ? t : p->now + 1000;
	wn_simcarrier_deliver(&p->cc);
	wn_simcarrier_deliver(&p->sc);
	wn_quicpair_settle(p);
	if (wn__quic_ep_next_expiry(wn__quic_ep(p->cli)) <= p->now)
		wn__quic_ep_expire(wn__quic_ep(p->cli));
	if (wn__quic_ep_next_expiry(wn__quic_ep(p->srv)) <= p->now)
		wn__quic_ep_expire(wn__quic_ep(p->srv));
	wn_quicpair_settle(p);
}

bool wn_quicpair_step(struct wn_quicpair *p, uint64_t step_ns)
{
	/* Work the test queued (a datagram's write pass) happens now. */
	wn_quicpair_settle(p);
	uint64_t t = wn_quicpair_next_event(p);
	if (step_ns && (t == UINT64_MAX || t > p->now + step_ns))
		t = p->now + step_ns;
	if (t == UINT64_MAX)
		return false;
	wn_quicpair_advance(p, t);
	return true;
}

void wn_quicpair_free(struct wn_quicpair *p)
{
	wn_engine_close(p->cli);
	wn_engine_close(p->srv);
	wn_quicpair_settle(p);
	p->cc.base.ops->close(&p->cc.base);
	p->sc.base.ops->close(&p->sc.base);
	assert_int_equal(wn_loop_close(&p->loop), 0);
	wn_simlink_free(p->c2s);
	wn_simlink_free(p->s2c);
	wn_identity_wipe(&p->sid);
	wn_identity_wipe(&p->cid);
}
