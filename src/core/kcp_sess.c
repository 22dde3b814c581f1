/* The KCP engine's session core: KCP + smux + liveness. Pure (see the
 * header). */
#include <stdlib.h>
#include <string.h>

#include "core/kcp_sess.h"

#include "core/snappyframe.h"
#include "util/err.h"

/* Bytes moved between KCP and smux per call: a few frames' worth. */
#define SESS_BUF 65536

/* Input after this much silence resends what is in flight at once. */
#define SESS_RESUME_MS 1000

/* Effectively never: see wn_kcp_sess_cfg_default. */
#define KCP_SESS_DEAD_LINK 100000

/* Acks pending that go out at once (see wn_kcp_sess_cfg_default). */
#define KCP_SESS_ACK_EVERY 32

struct wn_kcp_sess {
	struct wn_kcp_sess_cfg cfg;
	struct wn_kcp *kcp;
	struct wn_smux *mux;
	wn_kcp_output_fn out;
	void *out_ctx;
	uint64_t now; /* of the current call, for output() */
	uint64_t last_rx, last_tx;
	uint64_t last_in; /* the last KCP datagram that parsed */
	int err;
	int in_input; /* guards against re-entering input from callbacks */
	/* cfg.compress: the peer's stream, made when its first bytes come;
	 * one encoded chunk, made when we first send. A session costs
	 * little until it carries something. */
	struct wn_snappy_dec *dec;
	uint8_t *zbuf;
	int zstarted; /* the stream identifier went out */
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
	/* Acks wait until 32 are pending (a bit over half a datagram) or
	 * min(interval, srtt / 4) has passed, instead of one ack datagram
	 * per receive batch, which cost the receiver a sealed datagram and a
	 * send, and the sender a wakeup, for nearly every data datagram
	 * (docs/performance.md, "Ack batching"). */
	cfg->kcp.ack_every = KCP_SESS_ACK_EVERY;
	cfg->batch_acks = 1;
	wn_smux_cfg_default(&cfg->smux);
	cfg->smux.version = 2;
	cfg->keepalive_ms = 5000;
	cfg->idle_timeout_ms = 30000;
}

/* Every datagram KCP sends passes here: sending anything counts as a
 * keepalive, unless the peer judges us by stream bytes alone
 * (idle_on_data): then only smux bytes sent count (see sent_stream), or
 * a side that only acks its peer's keepalives would never send one. */
static void sess_output(void *ctx, uint8_t *pkt, size_t len)
{
	struct wn_kcp_sess *s = ctx;
	if (!s->cfg.idle_on_data)
		s->last_tx = s->now;
	s->out(s->out_ctx, pkt, len);
}

/* smux bytes went into KCP: with idle_on_data, what keeps the peer's
 * judgement of us alive. */
static void sent_stream(struct wn_kcp_sess *s)
{
	if (s->cfg.idle_on_data)
		s->last_tx = s->now;
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
	s->last_rx = s->last_tx = s->last_in = now;
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
	wn_snappy_dec_free(s->dec);
	free(s->zbuf);
	free(s);
}

static void drain(struct wn_kcp_sess *s);

/* The snappy decoder's output goes on to smux. */
static int to_smux(void *ctx, const uint8_t *data, size_t len)
{
	struct wn_kcp_sess *s = ctx;
	return wn_smux_input(s->mux, data, len);
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
	/* The first datagram after a silence (an outage, a dead path): the
	 * path works again, so what is in flight goes again now rather than
	 * when timeouts that grew during the silence expire. */
	if (now - s->last_in >= SESS_RESUME_MS)
		wn_kcp_kick(s->kcp, (uint32_t)now);
	s->last_in = now;
	if (!s->cfg.idle_on_data)
		s->last_rx = now;
	drain(s);
	return s->err;
}

/* Moves what KCP delivers in order into smux (through the snappy decoder
 * when compressing), pausing while cfg.recv_pause bytes are unconsumed. */
static void drain(struct wn_kcp_sess *s)
{
	if (s->in_input || s->err)
		return; /* the outer call drains KCP */
	s->in_input = 1;
	/* Decompression multiplies what one read delivers: smaller reads
	 * keep the overshoot past recv_pause small. */
	size_t cap = s->cfg.compress ? sizeof(s->buf) / 4 : sizeof(s->buf);
	for (;;) {
		if (s->cfg.recv_pause &&
		    wn_smux_recv_pending(s->mux) >= s->cfg.recv_pause)
			break;
		int rc;
		ssize_t n = wn_kcp_recv(s->kcp, s->buf, cap);
		if (n <= 0)
			break;
		if (s->cfg.idle_on_data)
			s->last_rx = s->now;
		if (s->cfg.compress && !s->dec &&
		    wn_snappy_dec_new(&s->dec) != 0) {
			s->err = WN_ENOMEM;
			break;
		}
		if (s->dec)
			rc = wn_snappy_dec_input(s->dec, s->buf, (size_t)n,
			                         to_smux, s);
		else
			rc = wn_smux_input(s->mux, s->buf, (size_t)n);
		if (rc < 0) {
			s->err = WN_EPROTO;
			break;
		}
	}
	s->in_input = 0;
}

/* Compressed: pulls as many smux bytes as KCP has room for once encoded
 * (at worst 7/6 of them plus headers), one snappy chunk at a time. */
static void pump_compressed(struct wn_kcp_sess *s)
{
	for (;;) {
		size_t space = wn_kcp_send_space(s->kcp);
		if (space < 256 || !wn_smux_want_pull(s->mux))
			return;
		size_t want = (space - 64) / 7 * 6;
		if (want > WN_SNAPPY_BLOCK)
			want = WN_SNAPPY_BLOCK;
		size_t n = wn_smux_pull(s->mux, s->buf, want);
		if (n == 0)
			return;
		if (!s->zbuf && !(s->zbuf = malloc(wn_snappy_encode_bound(
		                      WN_SNAPPY_BLOCK)))) {
			s->err = WN_ENOMEM;
			return;
		}
		size_t z =
		    wn_snappy_encode(&s->zstarted, s->buf, n, s->zbuf,
		                     wn_snappy_encode_bound(WN_SNAPPY_BLOCK));
		ssize_t took = z ? wn_kcp_send(s->kcp, s->zbuf, z) : -1;
		if (took < 0 || (size_t)took != z) {
			s->err = WN_EINTERNAL;
			return;
		}
		sent_stream(s);
	}
}

/* Pulls smux frames into KCP while KCP has room. */
static void pump(struct wn_kcp_sess *s)
{
	if (s->cfg.compress) {
		pump_compressed(s);
		return;
	}
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
		sent_stream(s);
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
	drain(s); /* resumes after a recv_pause, once consumed */
	if (s->err)
		return;
	pump(s);
	/* With batch_acks only when something is due: acks wait for their
	 * batch (see cfg.kcp.ack_every), everything else is due at once. */
	if (!s->cfg.batch_acks ||
	    wn_kcp_deadline(s->kcp, (uint32_t)now) == (uint32_t)now)
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
