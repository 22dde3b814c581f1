/* The KCP engine's kcptun profile: kcp-go's packet framing (FEC header,
 * nonce, CRC, cipher) in place of Noise, and the session settings kcptun
 * runs with, so that a warren client can use a kcptun server and a kcptun
 * client a warren server. The endpoints (kcp.c) call in here for every
 * packet they send or receive when ep->kt is set. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/kcpgo.h"
#include "engine/kcp_int.h"
#include "util/err.h"

/* Every packet's headroom: crypto header + a data shard's FEC header. */
#define KT_HEADROOM (WN_KCPCRYPT_HEADER + WN_KCPGO_FEC_DATA_HDR)

/* kcptun's smux keepalive (its -keepalive 10). */
#define KT_KEEPALIVE_MS 10000

struct ktprof {
	struct wn_kcptun_cfg cfg;
	struct wn_kcpcrypt crypt;
	int fec; /* datashard > 0 && parityshard > 0 */
};

void wn_kcptun_cfg_default(struct wn_kcptun_cfg *k)
{
	memset(k, 0, sizeof(*k));
	k->crypt = WN_KCPCRYPT_AES;
	wn_kcpcrypt_derive("it's a secrect", k->key);
	k->datashard = 10;
	k->parityshard = 3;
	k->nocomp = 0;
	k->smuxver = 1;
}

int ktprof_new(struct kep *ep, const struct wn_kcptun_cfg *cfg)
{
	if (cfg->smuxver != 1 && cfg->smuxver != 2)
		return WN_EINVAL;
	if (cfg->datashard + cfg->parityshard > WN_KCPGO_SHARDS_MAX)
		return WN_EINVAL;
	struct ktprof *kt = calloc(1, sizeof(*kt));
	if (!kt)
		return WN_ENOMEM;
	kt->cfg = *cfg;
	int rc = wn_kcpcrypt_init(&kt->crypt, cfg->crypt, cfg->key);
	if (rc != 0) {
		free(kt);
		return rc;
	}
	kt->fec = cfg->datashard > 0 && cfg->parityshard > 0;
	ep->kt = kt;
	return 0;
}

void ktprof_free(struct kep *ep)
{
	if (!ep->kt)
		return;
	wn_kcpcrypt_wipe(&ep->kt->crypt);
	sodium_memzero(ep->kt->cfg.key, sizeof(ep->kt->cfg.key));
	free(ep->kt);
	ep->kt = NULL;
}

void ktprof_sess_cfg(struct kep *ep, struct wn_kcp_sess_cfg *cfg)
{
	const struct ktprof *kt = ep->kt;
	/* kcp-go sizes KCP's MTU so that the whole UDP payload, headers
	 * included, stays within -mtu. */
	unsigned mtu = ep->o.mtu ? ep->o.mtu : 1350;
	cfg->kcp.mtu =
	    mtu - WN_KCPCRYPT_HEADER - (kt->fec ? WN_KCPGO_FEC_DATA_HDR : 0);
	cfg->kcp.headroom = KT_HEADROOM;
	cfg->kcp.tailroom = 0;
	cfg->smux.version = kt->cfg.smuxver;
	cfg->smux.compat = 1; /* no RST frames: kcptun's smux has none */
	if (!cfg->keepalive_ms)
		cfg->keepalive_ms = KT_KEEPALIVE_MS;
	cfg->compress = !kt->cfg.nocomp;
}

void ktprof_output(struct ksession *ks, uint8_t *pkt, size_t len)
{
	struct ktprof *kt = ks->ep->kt;
	uint8_t *p = pkt;
	size_t n = len;
	if (kt->fec) {
		/* Data shards only, so far: the seqids of a group's parity
		 * shards are skipped, as if they had been lost. */
		p -= WN_KCPGO_FEC_DATA_HDR;
		n += WN_KCPGO_FEC_DATA_HDR;
		unsigned shards = kt->cfg.datashard + kt->cfg.parityshard;
		wn_kcpgo_put_data_hdr(p, ks->fec_seq, len);
		ks->fec_seq = wn_kcpgo_next_seqid(ks->fec_seq, shards);
		if (++ks->fec_n == kt->cfg.datashard) {
			ks->fec_n = 0;
			for (unsigned i = 0; i < kt->cfg.parityshard; i++)
				ks->fec_seq =
				    wn_kcpgo_next_seqid(ks->fec_seq, shards);
		}
	}
	p -= WN_KCPCRYPT_HEADER;
	n += WN_KCPCRYPT_HEADER;
	uint8_t nonce[WN_KCPCRYPT_NONCE];
	randombytes_buf(nonce, sizeof(nonce));
	wn_kcpcrypt_seal(&kt->crypt, p, n, nonce);
	ksession_send(ks, p, n);
}

int ktprof_open(struct kep *ep, uint8_t *pkt, size_t len, const uint8_t **kcp,
                size_t *kcp_len)
{
	struct ktprof *kt = ep->kt;
	int rc = wn_kcpcrypt_open(&kt->crypt, pkt, len);
	if (rc != 0) {
		ep->stats.csum_errors++;
		ep->stats.pkts_dropped++;
		return rc;
	}
	struct wn_kcpgo_pkt fp;
	rc = wn_kcpgo_parse(pkt + WN_KCPCRYPT_HEADER, len - WN_KCPCRYPT_HEADER,
	                    &fp);
	if (rc != 0) {
		ep->stats.fec_dropped++;
		ep->stats.pkts_dropped++;
		return rc;
	}
	if (fp.kind == WN_KCPGO_PARITY) {
		ep->stats.fec_parity++;
		return WN_EAGAIN; /* nothing for KCP */
	}
	*kcp = fp.kcp;
	*kcp_len = fp.kcp_len;
	return 0;
}
