/* Fuzz target: the KCP core. The input is a configuration and a script of
 * operations on a core `a` that has a well-behaved peer `b`: arbitrary
 * datagrams into a (usually with the right conv, to get past the first
 * check), sends, reads, time steps, flushes at the deadline, and delivery
 * of what the two cores sent each other. Nothing may crash, and the
 * invariants the engine relies on must hold after every step. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kcp.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QMAX 16
#define CONV 0x4B435021u

struct outq {
	uint8_t pkt[QMAX][512];
	size_t len[QMAX];
	int n;
};

static void out_cb(void *ctx, uint8_t *pkt, size_t len)
{
	struct outq *q = ctx;

	/* The promised room around the packet must be writable. */
	memset(pkt - 8, 0, 8);
	memset(pkt + len, 0, 8);
	if (q->n < QMAX && len <= sizeof(q->pkt[0])) {
		memcpy(q->pkt[q->n], pkt, len);
		q->len[q->n++] = len;
	}
}

struct script {
	const uint8_t *p;
	size_t n;
};

static uint8_t take(struct script *s)
{
	if (!s->n)
		return 0;
	s->n--;
	return *s->p++;
}

static void check(struct wn_kcp *k, const struct wn_kcp_cfg *cfg, uint32_t now)
{
	uint32_t d = wn_kcp_deadline(k, now);

	if ((int32_t)(d - now) < 0 || d - now > WN_KCP_IDLE_MS)
		abort();
	if (wn_kcp_inflight(k) > cfg->snd_wnd)
		abort();
	if (wn_kcp_send_space(k) > cfg->send_limit)
		abort();
}

static void deliver(struct outq *q, struct wn_kcp *to, uint32_t now)
{
	for (int i = 0; i < q->n; i++)
		wn_kcp_input(to, q->pkt[i], q->len[i], now);
	q->n = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script s = {data, size};
	struct wn_kcp_cfg cfg;
	struct wn_kcp *a = NULL, *b = NULL;
	static struct outq qa, qb;
	uint8_t buf[600], rbuf[300];
	uint32_t now;
	uint8_t f;

	if (size < 4)
		return 0;
	wn_kcp_cfg_default(&cfg);
	cfg.conv = CONV;
	f = take(&s);
	cfg.stream = !(f & 1);
	cfg.nodelay = (f >> 1) & 3;
	cfg.nc = (f >> 3) & 1;
	cfg.resend = (f >> 4) & 3;
	cfg.dead_link = 1 + (f >> 6) * 8;
	f = take(&s);
	cfg.snd_wnd = 1 + (f & 15);
	cfg.rcv_wnd = 1 + (f >> 4);
	/* Half the inputs run the pacer (no new input byte: the corpus
	 * keeps its meaning). */
	cfg.pacing = (f >> 4) & 1;
	cfg.rto_srtt_pct = cfg.pacing ? 200 : 0;
	/* And a quarter of them batch acks as the engine does. */
	cfg.ack_every = (f & 3) == 1 ? 4 : 0;
	cfg.mtu = 50 + take(&s) % 200;
	cfg.send_limit = 4096;
	cfg.headroom = cfg.tailroom = 8;
	now = 0xFFFFF000u + take(&s) * 16u; /* near the wrap */
	qa.n = qb.n = 0;
	if (wn_kcp_new(&cfg, out_cb, &qa, now, &a) < 0 ||
	    wn_kcp_new(&cfg, out_cb, &qb, now, &b) < 0)
		goto out;

	while (s.n) {
		uint8_t op = take(&s);
		size_t len;
		switch (op % 7) {
		case 0: /* a datagram from the fuzzer */
			len = take(&s);
			len = len < s.n ? len : s.n;
			memcpy(buf, s.p, len);
			s.p += len;
			s.n -= len;
			if ((op & 0x80) && len >= 4) {
				buf[0] = (uint8_t)CONV;
				buf[1] = (uint8_t)(CONV >> 8);
				buf[2] = (uint8_t)(CONV >> 16);
				buf[3] = (uint8_t)(CONV >> 24);
			}
			wn_kcp_input(a, buf, len, now);
			break;
		case 1: /* the application writes, to a or to b */
			len = (size_t)take(&s) * 2;
			memset(buf, op, len);
			wn_kcp_send(op & 0x80 ? b : a, buf, len);
			break;
		case 2: /* time passes */
			now += (uint32_t)take(&s) * ((op & 0x80) ? 97u : 3u);
			break;
		case 3: /* the applications read */
			len = take(&s) + 1u;
			wn_kcp_recv(a, rbuf, len);
			wn_kcp_recv(b, rbuf, len);
			break;
		case 4: /* the network delivers */
			deliver(&qa, b, now);
			deliver(&qb, a, now);
			break;
		case 5: /* timers fire */
			now = wn_kcp_deadline(a, now);
			wn_kcp_flush(a, now);
			break;
		default:
			wn_kcp_flush(a, now);
			wn_kcp_flush(b, now);
			break;
		}
		check(a, &cfg, now);
		check(b, &cfg, now);
		if (wn_kcp_readable(a) > (size_t)cfg.rcv_wnd * 65536)
			abort();
	}
out:
	wn_kcp_free(a);
	wn_kcp_free(b);
	return 0;
}
