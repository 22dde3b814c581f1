/* The KCP engine's session core: KCP + smux + liveness. Pure (see the
 * header). */
#include <stdlib.h>
#include <string.h>

#include "engine/kcp_sess.h"
#include "util/err.h"

/* Bytes moved between KCP and smux per call: a few frames' worth. */
#define SESS_BUF 65536

/* Effectively never: see wn_kcp_sess_cfg_default. */
#define KCP_SESS_DEAD_LINK 100000

struct wn_kcp_sess {
	struct wn_kcp_sess_cfg cfg;
	struct wn_kcp *kcp;
	struct wn_smux *mux;
	wn_kcp_output_fn out;
	void *out_ctx;
	uint64_t now; /* of the current call, for output() */
	uint64_t last_rx, last_tx;
	int err;
	int in_input; /* guards against re-entering input from callbacks */
	uint8_t buf[SESS_BUF];
};

void wn_kcp_sess_cfg_default(struct wn_kcp_sess_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	wn_kcp_cfg_default(&cfg->kcp);
	wn_kcp_preset(&cfg->kcp, "fast3");
	cfg->kcp.stream = 1;
	/* Liveness is the idle timeout's job (authenticated packets heard),
	 * not KCP's retransmission count: under heavy loss or a long outage
	 * the session must wait, not die (Turbo Tunnel). */
	cfg->kcp.dead_link = KCP_SESS_DEAD_LINK;
	wn_smux_cfg_default(&cfg->smux);
	cfg->smux.version = 2;
	cfg->keepalive_ms = 5000;
	cfg->idle_timeout_ms = 30000;
}

/* Every datagram KCP sends passes here: sending anything counts as a
 * keepalive. */
static void sess_output(void *ctx, uint8_t *pkt, size_t len)
{
	struct wn_kcp_sess *s = ctx;
	s->last_tx = s->now;
	s->out(s->out_ctx, pkt, len);
}

int wn_kcp_sess_new(const struct wn_kcp_sess_cfg *cfg, wn_kcp_output_fn out,
                    void *out_ctx, const struct wn_smux_cb *cb, uint64_t now,
                    struct wn_kcp_sess **sp)
{
	struct wn_kcp_sess *s = calloc(1, sizeof(*s));
	if (!s)
		return WN_ENOMEM;
	s->cfg = *cfg;
	s->out = out;
	s->out_ctx = out_ctx;
	s->now = now;
	int rc = wn_kcp_new(&cfg->kcp, sess_output, s, (uint32_t)now, &s->kcp);
	if (rc == 0)
		rc = wn_smux_new(&cfg->smux, cb, &s->mux);
	if (rc != 0) {
		wn_kcp_sess_free(s);
		return rc;
	}
	s->last_rx = s->last_tx = now;
	*sp = s;
	return 0;
}

void wn_kcp_sess_free(struct wn_kcp_sess *s)
{
	if (!s)
		return;
	if (s->mux)
		wn_smux_free(s->mux);
	if (s->kcp)
		wn_kcp_free(s->kcp);
	free(s);
}

int wn_kcp_sess_input(struct wn_kcp_sess *s, const uint8_t *pkt, size_t len,
                      uint64_t now)
{
	if (s->err)
		return s->err;
	s->now = now;
	int rc = wn_kcp_input(s->kcp, pkt, len, (uint32_t)now);
	if (rc < 0)
		return 0; /* a bad datagram is dropped (and counted by KCP) */
	s->last_rx = now;
	if (s->in_input)
		return 0; /* the outer call drains KCP */
	s->in_input = 1;
	for (;;) {
		ssize_t n = wn_kcp_recv(s->kcp, s->buf, sizeof(s->buf));
		if (n <= 0)
			break;
		rc = wn_smux_input(s->mux, s->buf, (size_t)n);
		if (rc < 0) {
			s->err = WN_EPROTO;
			break;
		}
	}
	s->in_input = 0;
	return s->err;
}

/* Pulls smux frames into KCP while KCP has room. */
static void pump(struct wn_kcp_sess *s)
{
	for (;;) {
		size_t space = wn_kcp_send_space(s->kcp);
		if (space == 0 || !wn_smux_want_pull(s->mux))
			return;
		if (space > sizeof(s->buf))
			space = sizeof(s->buf);
		size_t n = wn_smux_pull(s->mux, s->buf, space);
		if (n == 0)
			return;
		ssize_t took = wn_kcp_send(s->kcp, s->buf, n);
		if (took < 0 || (size_t)took != n) {
			/* send_space promised room: a broken invariant. */
			s->err = WN_EINTERNAL;
			return;
		}
	}
}

void wn_kcp_sess_run(struct wn_kcp_sess *s, uint64_t now)
{
	if (s->err)
		return;
	s->now = now;
	if (s->cfg.idle_timeout_ms &&
	    now - s->last_rx >= s->cfg.idle_timeout_ms) {
		s->err = WN_ETIMEDOUT;
		return;
	}
	if (s->cfg.keepalive_ms && now - s->last_tx >= s->cfg.keepalive_ms) {
		wn_smux_ping(s->mux);
		/* Idle: give back the buffers drained streams keep. */
		wn_smux_trim(s->mux);
	}
	pump(s);
	wn_kcp_flush(s->kcp, (uint32_t)now);
	if (wn_kcp_is_dead(s->kcp))
		s->err = WN_ETIMEDOUT;
}

uint64_t wn_kcp_sess_deadline(const struct wn_kcp_sess *s, uint64_t now)
{
	if (s->err)
		return now;
	uint32_t k = wn_kcp_deadline(s->kcp, (uint32_t)now);
	int32_t d = (int32_t)(k - (uint32_t)now);
	uint64_t t = now + (d > 0 ? (uint64_t)d : 0);
	if (s->cfg.keepalive_ms && s->last_tx + s->cfg.keepalive_ms < t)
		t = s->last_tx + s->cfg.keepalive_ms;
	if (s->cfg.idle_timeout_ms && s->last_rx + s->cfg.idle_timeout_ms < t)
		t = s->last_rx + s->cfg.idle_timeout_ms;
	return t < now ? now : t;
}

int wn_kcp_sess_error(const struct wn_kcp_sess *s)
{
	return s->err;
}

void wn_kcp_sess_touch(struct wn_kcp_sess *s, uint64_t now)
{
	s->last_rx = now;
}

void wn_kcp_sess_kick(struct wn_kcp_sess *s, uint64_t now)
{
	wn_kcp_kick(s->kcp, (uint32_t)now);
}

struct wn_smux *wn_kcp_sess_smux(struct wn_kcp_sess *s)
{
	return s->mux;
}

const struct wn_kcp *wn_kcp_sess_kcp(const struct wn_kcp_sess *s)
{
	return s->kcp;
}
