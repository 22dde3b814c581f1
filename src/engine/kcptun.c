/* The KCP engine's kcptun profile: kcp-go's packet framing (FEC header,
 * nonce, CRC, cipher) in place of Noise, and the session settings kcptun
 * runs with, so that a warren client can use a kcptun server and a kcptun
 * client a warren server. The endpoints (kcp_engine.c) call in here for every
 * packet they send or receive when ep->kt is set. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kcpgo.h"
#include "core/rs.h"
#include "engine/kcp_engine_int.h"
#include "util/err.h"

/* Every packet's headroom: crypto header + a data shard's FEC header. */
#define KT_HEADROOM (WN_KCPCRYPT_HEADER + WN_KCPGO_FEC_DATA_HDR)

/* kcptun's --key default (sic). */
#define KT_DEFAULT_PASSPHRASE "it's a secrect"

/* kcptun's -mtu default. */
#define KT_MTU 1350

/* smux's default keepalive timeout: nothing heard for this long. */
#define KT_IDLE_MS 30000

/* kcptun's smux keepalive (its -keepalive 10). */
#define KT_KEEPALIVE_MS 10000

struct ktprof {
	struct wn_kcptun_cfg cfg;
	struct wn_kcpcrypt crypt;
	int fec;          /* datashard > 0 && parityshard > 0 */
	struct wn_rs *rs; /* fec: the codec all sessions share */
	size_t max_shard; /* fec: [size][KCP] at most */
};

void wn_kcptun_cfg_default(struct wn_kcptun_cfg *k)
{
	memset(k, 0, sizeof(*k));
	k->crypt = WN_KCPCRYPT_AES;
	wn_kcpcrypt_derive(KT_DEFAULT_PASSPHRASE, k->key);
	k->datashard = 10;
	k->parityshard = 3;
	k->nocomp = 0;
	k->smuxver = 1;
}

void wn_kcptun_opts_default(struct wn_kcp_engine_opts *o, int server)
{
	wn_kcp_engine_opts_default(o);
	/* kcptun's own settings: its windows (-sndwnd/-rcvwnd, which differ
	 * between its client and server), its MTU, its mode, KCP as the
	 * reference runs it (no pacing, no RTO floor) and its -streambuf. */
	snprintf(o->mode, sizeof(o->mode), "fast");
	o->snd_wnd = server ? 1024 : 128;
	o->rcv_wnd = server ? 1024 : 512;
	o->mtu = KT_MTU;
	o->pacing = 0;
	o->rto_srtt_pct = 0;
	o->stream_window = 2 * 1024 * 1024;
}

/* A server whose key everyone knows (kcptun's default) or that has none
 * (crypt none) serves anyone; the configuration refuses that unless the
 * user insisted (kcptun-insecure), and then the log says it once. */
static void warn_if_open(struct kep *ep, const struct wn_kcptun_cfg *cfg)
{
	uint8_t dflt[WN_KCPCRYPT_KEY];
	wn_kcpcrypt_derive(KT_DEFAULT_PASSPHRASE, dflt);
	const char *why = NULL;
	if (cfg->crypt == WN_KCPCRYPT_NONE)
		why = "crypt none";
	else if (sodium_memcmp(dflt, cfg->key, sizeof(dflt)) == 0)
		why = "kcptun's default key";
	if (why)
		WN_LOG(ep->o.log, WN_LOG_WARN, "sess",
		       "kcptun server with %s: anyone can use it to reach its "
		       "target",
		       why);
}

int wn__ktprof_new(struct kep *ep, const struct wn_kcptun_cfg *cfg)
{
	if (cfg->smuxver != 1 && cfg->smuxver != 2)
		return WN_EINVAL;
	if (cfg->datashard + cfg->parityshard > WN_KCPGO_SHARDS_MAX)
		return WN_EINVAL;
	struct ktprof *kt = calloc(1, sizeof(*kt));
	if (!kt)
		return WN_ENOMEM;
	kt->cfg = *cfg;
	if (ep->is_server)
		warn_if_open(ep, cfg);
	int rc = wn_kcpcrypt_init(&kt->crypt, cfg->crypt, cfg->key);
	if (rc != 0) {
		free(kt);
		return rc;
	}
	kt->fec = cfg->datashard > 0 && cfg->parityshard > 0;
	if (kt->fec) {
		rc = wn_rs_new(cfg->datashard, cfg->parityshard, &kt->rs);
		if (rc != 0) {
			wn_kcpcrypt_wipe(&kt->crypt);
			free(kt);
			return rc;
		}
		unsigned mtu = ep->o.mtu ? ep->o.mtu : KT_MTU;
		kt->max_shard =
		    mtu - WN_KCPCRYPT_HEADER - WN_KCPGO_FEC_DATA_HDR + 2;
	}
	ep->kt = kt;
	return 0;
}

void wn__ktprof_free(struct kep *ep)
{
	if (!ep->kt)
		return;
	wn_kcpcrypt_wipe(&ep->kt->crypt);
	wn_rs_free(ep->kt->rs);
	sodium_memzero(ep->kt->cfg.key, sizeof(ep->kt->cfg.key));
	free(ep->kt);
	ep->kt = NULL;
}

void wn__ktprof_sess_cfg(struct kep *ep, struct wn_kcp_sess_cfg *cfg,
                         size_t max_pkt)
{
	const struct ktprof *kt = ep->kt;
	/* kcp-go sizes KCP's MTU so that the whole UDP payload, headers
	 * included, stays within -mtu; and within what the carrier takes
	 * (above kcptun's default on udp, so kcptun's sizes are unchanged
	 * there). */
	unsigned mtu = ep->o.mtu ? ep->o.mtu : KT_MTU;
	if (max_pkt && max_pkt < mtu)
		mtu = (unsigned)max_pkt;
	cfg->kcp.mtu =
	    mtu - WN_KCPCRYPT_HEADER - (kt->fec ? WN_KCPGO_FEC_DATA_HDR : 0);
	cfg->kcp.headroom = KT_HEADROOM;
	cfg->kcp.tailroom = 0;
	/* Acks wait for the interval, as kcp-go's do (kcptun leaves
	 * --acknodelay off): an ack datagram per packet received costs a
	 * kcp-go sender a decryption and an FEC pass each (docs/performance.md,
	 * "Interval acks"). */
	cfg->kcp.ack_every = 0;
	cfg->batch_acks = 1;
	cfg->smux.version = kt->cfg.smuxver;
	cfg->smux.compat = 1; /* no RST frames: kcptun's smux has none */
	if (!cfg->keepalive_ms)
		cfg->keepalive_ms = KT_KEEPALIVE_MS;
	cfg->compress = !kt->cfg.nocomp;
	cfg->idle_on_data = 1;
	/* smux's keepalive timeout, kcptun's judge of a dead peer. The
	 * configuration refuses less (config_check.c); this floor is for
	 * callers that bypass it. */
	if (cfg->idle_timeout_ms < KT_IDLE_MS)
		cfg->idle_timeout_ms = KT_IDLE_MS;
	/* v1: a quarter of a stream's window, so one read past the pause
	 * (decompressed, at most ~21x 16 KiB) stays within it. */
	if (kt->cfg.smuxver == 1)
		cfg->recv_pause = ep->o.stream_window / 4;
}

/* A session's FEC state comes when first needed, so that it costs little
 * until it carries something. ks's FEC encoder, made with its first packet. NULL without FEC, or
 * without memory (that packet is dropped: KCP sends it again). */
static struct wn_kcpgo_enc *fec_encoder(struct ksession *ks)
{
	const struct ktprof *kt = ks->ep->kt;
	if (!ks->fec_enc &&
	    wn_kcpgo_enc_new(kt->rs, kt->cfg.datashard, kt->cfg.parityshard,
	                     kt->max_shard, WN_KCPCRYPT_HEADER,
	                     &ks->fec_enc) != 0)
		ks->fec_enc = NULL;
	return ks->fec_enc;
}

/* ks's FEC decoder, made with the peer's first parity shard (until then
 * there is nothing to rebuild from). NULL without FEC or memory. */
static struct wn_kcpgo_dec *fec_decoder(struct ksession *ks,
                                        const struct wn_kcpgo_pkt *fp)
{
	const struct ktprof *kt = ks->ep->kt;
	if (!ks->fec_dec && kt->fec && fp->kind == WN_KCPGO_PARITY &&
	    wn_kcpgo_dec_new(kt->rs, kt->cfg.datashard, kt->cfg.parityshard,
	                     kt->max_shard, &ks->fec_dec) != 0)
		ks->fec_dec = NULL;
	return ks->fec_dec;
}

void wn__ktprof_sess_free(struct ksession *ks)
{
	wn_kcpgo_enc_free(ks->fec_enc);
	wn_kcpgo_dec_free(ks->fec_dec);
	ks->fec_enc = NULL;
	ks->fec_dec = NULL;
}

/* Seals p[0, n) (the crypto header's 20 bytes first) and sends it. */
static void seal_send(struct ksession *ks, uint8_t *p, size_t n)
{
	uint8_t nonce[WN_KCPCRYPT_NONCE];
	randombytes_buf(nonce, sizeof(nonce));
	wn_kcpcrypt_seal(&ks->ep->kt->crypt, p, n, nonce);
	wn__ksession_send(ks, p, n);
}

void wn__ktprof_output(struct ksession *ks, uint8_t *pkt, size_t len)
{
	if (!ks->ep->kt->fec) {
		seal_send(ks, pkt - WN_KCPCRYPT_HEADER,
		          len + WN_KCPCRYPT_HEADER);
		return;
	}
	if (!fec_encoder(ks))
		return;
	int np = wn_kcpgo_enc_data(ks->fec_enc, pkt, len);
	seal_send(ks, pkt - KT_HEADROOM, len + KT_HEADROOM);
	for (int i = 0; i < np; i++) {
		size_t plen;
		uint8_t *p =
		    wn_kcpgo_enc_parity(ks->fec_enc, (unsigned)i, &plen);
		seal_send(ks, p - WN_KCPCRYPT_HEADER,
		          plen + WN_KCPCRYPT_HEADER);
	}
}

int wn__ktprof_open(struct kep *ep, const struct sockaddr *from, uint8_t *pkt,
                    size_t len, struct wn_kcpgo_pkt *fp)
{
	struct ktprof *kt = ep->kt;
	int rc = wn_kcpcrypt_open(&kt->crypt, pkt, len);
	if (rc != 0) {
		ep->stats.csum_errors++;
		ep->stats.pkts_dropped++;
		char addr[64];
		WN_LOG_RL(ep->o.log, &ep->rl_drop, wn_loop_now_ms(ep->o.loop),
		          WN_LOG_INFO, "sess",
		          "packet from %s failed the checksum (another key or "
		          "crypt?): dropped, %llu so far",
		          wn_sockaddr_format(from, addr, sizeof(addr)),
		          (unsigned long long)ep->stats.csum_errors);
		return rc;
	}
	rc = wn_kcpgo_parse(pkt + WN_KCPCRYPT_HEADER, len - WN_KCPCRYPT_HEADER,
	                    fp);
	if (rc != 0) {
		ep->stats.fec_dropped++;
		ep->stats.pkts_dropped++;
		return rc;
	}
	if (fp->kind == WN_KCPGO_PARITY)
		ep->stats.fec_parity++;
	return 0;
}

struct rebuilt {
	struct ksession *ks;
	struct wn_carrier *c;
	const struct sockaddr *from;
	socklen_t fromlen;
};

static void on_rebuilt(void *ctx, const uint8_t *kcp, size_t len)
{
	struct rebuilt *r = ctx;
	wn__ksession_input(r->ks, r->c, r->from, r->fromlen, kcp, len);
}

void wn__ktprof_input(struct ksession *ks, struct wn_carrier *c,
                      const struct sockaddr *from, socklen_t fromlen,
                      const struct wn_kcpgo_pkt *fp)
{
	struct kep *ep = ks->ep;
	if (fp->kind != WN_KCPGO_PARITY)
		wn__ksession_input(ks, c, from, fromlen, fp->kcp, fp->kcp_len);
	if (fp->kind == WN_KCPGO_RAW || ks->state == KS_DEAD ||
	    !fec_decoder(ks, fp))
		return;
	struct rebuilt r = {ks, c, from, fromlen};
	int n = wn_kcpgo_dec_input(ks->fec_dec, fp, on_rebuilt, &r);
	if (n > 0)
		ep->stats.fec_recovered += (uint64_t)n;
	else if (n < 0)
		ep->stats.fec_dropped++;
}
