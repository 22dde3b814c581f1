/* The KCP core's pacer: optional, sender-side, invisible on the wire.
 *
 * KCP without congestion control (nc=1, as every kcptun preset) sends its
 * whole window the moment it opens; behind a bottleneck those bursts
 * overflow the queue, drop runs of segments that only a timeout recovers,
 * and the timeouts resend more bursts. The pacer spreads PUSH segments at
 * a rate derived from what the peer acknowledges, in BBR's manner: the
 * bottleneck bandwidth is the largest delivery-rate sample of the last few
 * round trips; segments go at 2x it while that estimate keeps growing
 * (startup) and at 1.25x after, and at most three estimated
 * bandwidth-delay products (plus what the peer's ack delay holds back)
 * stay unacknowledged, so the queue stays bounded.
 * Loss does not slow it: KCP's users pick it for lossy paths.
 *
 * The rate never falls below CAP_MIN_SEGS segments per smoothed RTT (TCP
 * paces no slower than its initial window per RTT either). Without that
 * floor, request/response traffic, whose samples measure the application
 * (a few hundred bytes per round trip), paced its next exchange at that
 * rate, and held a 1-byte echo for seconds (docs/performance.md, "The
 * pacer's floor"). */
#include "core/kcp_int.h"

#define SAMPLE_MIN_MS 10
#define MIN_RTT_WINDOW_MS 10000
#define STARTUP_GAIN 2.0
#define CRUISE_GAIN 1.25
#define STARTUP_ROUNDS 3 /* flat samples before startup ends */
#define CAP_MIN_SEGS 16
#define CAP_BDPS 3 /* segments sent and not yet acknowledged */

void wn_kcp_pace_init(struct wn_kcp *k, uint32_t now)
{
	struct pacer *p = &k->pace;

	p->sample_start = now;
	p->tokens_at = now;
	p->startup = true;
	p->tokens = 16.0 * k->cfg.mtu;
}

void wn_kcp_pace_acked(struct wn_kcp *k, uint32_t bytes)
{
	k->pace.delivered += bytes;
}

void wn_kcp_pace_rtt(struct wn_kcp *k, uint32_t rtt, uint32_t now)
{
	struct pacer *p = &k->pace;

	if (rtt == 0)
		rtt = 1;
	if (p->min_rtt == 0 || rtt <= p->min_rtt ||
	    diff(now, p->min_rtt_at) > MIN_RTT_WINDOW_MS) {
		p->min_rtt = rtt;
		p->min_rtt_at = now;
	}
}

static double gain(const struct pacer *p)
{
	return p->startup ? STARTUP_GAIN : CRUISE_GAIN;
}

/* Bytes per second the pacer lets out; 0 while there is no estimate. */
static double rate(const struct wn_kcp *k)
{
	const struct pacer *p = &k->pace;

	if (p->btl_bw == 0)
		return 0;
	uint32_t srtt = k->rx_srtt > 0 ? (uint32_t)k->rx_srtt : 1;
	double floor = (double)CAP_MIN_SEGS * k->mss * 1000.0 / srtt;
	double bw = (double)p->btl_bw;
	return gain(p) * (bw > floor ? bw : floor);
}

static void take_sample(struct wn_kcp *k, uint32_t now)
{
	struct pacer *p = &k->pace;
	uint32_t ms = (uint32_t)diff(now, p->sample_start);
	uint64_t bytes = p->delivered - p->sample_bytes;
	uint64_t bw = bytes * 1000 / ms;

	p->sample_start = now;
	p->sample_bytes = p->delivered;
	/* A sample the application limited says nothing about the path
	 * unless it beats the estimate. */
	bool keep = !p->sample_app_limited || bw > p->btl_bw;
	p->sample_app_limited = false;
	if (!keep || bytes == 0)
		return;
	p->bw[p->ibw] = bw;
	p->ibw = (p->ibw + 1) % PACE_SAMPLES;
	if (p->nbw < PACE_SAMPLES)
		p->nbw++;
	p->btl_bw = 0;
	for (unsigned i = 0; i < p->nbw; i++)
		if (p->bw[i] > p->btl_bw)
			p->btl_bw = p->bw[i];
	if (p->startup) {
		if (p->btl_bw >= p->startup_bw + p->startup_bw / 4) {
			p->startup_bw = p->btl_bw;
			p->startup_flat = 0;
		} else if (++p->startup_flat >= STARTUP_ROUNDS) {
			p->startup = false;
		}
	}
}

void wn_kcp_pace_tick(struct wn_kcp *k, uint32_t now, bool app_limited)
{
	struct pacer *p = &k->pace;
	uint32_t len = (uint32_t)k->rx_srtt;

	if (app_limited)
		p->sample_app_limited = true;
	if (len < SAMPLE_MIN_MS)
		len = SAMPLE_MIN_MS;
	if (diff(now, p->sample_start) >= (int32_t)len)
		take_sample(k, now);
	double r = rate(k);
	int32_t dt = diff(now, p->tokens_at);
	if (dt > 0) {
		p->tokens_at = now;
		p->tokens += r * dt / 1000.0;
	}
	/* A burst of at most 2 ms at the pacing rate, and at least a few
	 * datagrams, so one flush can fill a GSO batch. */
	double burst = r * 2 / 1000.0;
	if (burst < 4.0 * k->cfg.mtu)
		burst = 4.0 * k->cfg.mtu;
	if (p->tokens > burst)
		p->tokens = burst;
}

bool wn_kcp_pace_take(struct wn_kcp *k, uint32_t bytes)
{
	struct pacer *p = &k->pace;

	if (p->btl_bw == 0)
		return true; /* no estimate yet: the windows rule */
	if (p->tokens < bytes) {
		p->blocked = true;
		p->want = bytes;
		return false;
	}
	p->tokens -= bytes;
	return true;
}

uint32_t wn_kcp_pace_next(const struct wn_kcp *k, uint32_t now)
{
	const struct pacer *p = &k->pace;
	double r = rate(k);
	/* Tokens for the segment that was held back, not a whole datagram:
	 * a small segment on a slow estimate would wait much longer. */
	double need = (double)p->want - p->tokens;

	if (r <= 0 || need <= 0)
		return now;
	/* Tokens were last counted at tokens_at, not now. */
	uint32_t ms = (uint32_t)(need * 1000.0 / r) + 1;
	return p->tokens_at + ms;
}

uint32_t wn_kcp_pace_cap(const struct wn_kcp *k)
{
	const struct pacer *p = &k->pace;

	if (p->startup || p->btl_bw == 0 || p->min_rtt == 0)
		return UINT32_MAX;
	/* The peer may hold its acks for up to `interval` (cfg.ack_every):
	 * on a path whose RTT is not much longer than that, a cap of a few
	 * BDPs measured by the shortest RTT sample (the last ack of a batch)
	 * would stall the sender until each batch arrives, each stall would
	 * lower the next rate sample, and the rate would spiral down. */
	uint64_t bdp = p->btl_bw * p->min_rtt / 1000;
	uint64_t held = p->btl_bw * k->cfg.interval / 1000;
	uint64_t segs = (CAP_BDPS * bdp + held) / k->mss;
	return segs < CAP_MIN_SEGS
	           ? CAP_MIN_SEGS
	           : (segs > UINT32_MAX ? UINT32_MAX : (uint32_t)segs);
}
