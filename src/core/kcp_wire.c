/* The KCP segment header, configuration defaults and kcptun's presets. */
#include "core/kcp.h"

#include <string.h>

#include "util/err.h"
#include "util/rw.h"

void wn_kcp_hdr_encode(const struct wn_kcp_hdr *h, uint8_t out[WN_KCP_OVERHEAD])
{
	struct wn_wr wr;

	wn_wr_init(&wr, out, WN_KCP_OVERHEAD);
	wn_wr_u32le(&wr, h->conv);
	wn_wr_u8(&wr, h->cmd);
	wn_wr_u8(&wr, h->frg);
	wn_wr_u16le(&wr, h->wnd);
	wn_wr_u32le(&wr, h->ts);
	wn_wr_u32le(&wr, h->sn);
	wn_wr_u32le(&wr, h->una);
	wn_wr_u32le(&wr, h->len);
}

int wn_kcp_hdr_decode(const uint8_t *p, size_t len, struct wn_kcp_hdr *h)
{
	struct wn_rd rd;

	wn_rd_init(&rd, p, len < WN_KCP_OVERHEAD ? len : WN_KCP_OVERHEAD);
	h->conv = wn_rd_u32le(&rd);
	h->cmd = wn_rd_u8(&rd);
	h->frg = wn_rd_u8(&rd);
	h->wnd = wn_rd_u16le(&rd);
	h->ts = wn_rd_u32le(&rd);
	h->sn = wn_rd_u32le(&rd);
	h->una = wn_rd_u32le(&rd);
	h->len = wn_rd_u32le(&rd);
	return rd.err;
}

int wn_kcp_peek_conv(const uint8_t *pkt, size_t len, uint32_t *conv)
{
	if (!pkt || len < WN_KCP_OVERHEAD)
		return WN_EPROTO;
	*conv = wn_get_u32le(pkt);
	return 0;
}

void wn_kcp_cfg_default(struct wn_kcp_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mtu = WN_KCP_MTU_DEFAULT;
	cfg->snd_wnd = WN_KCP_SND_WND_DEFAULT;
	cfg->rcv_wnd = WN_KCP_RCV_WND_DEFAULT;
	cfg->interval = WN_KCP_INTERVAL_DEFAULT;
	cfg->stream = 1;
	cfg->dead_link = WN_KCP_DEAD_LINK_DEFAULT;
	cfg->send_limit = WN_KCP_SEND_LIMIT_DEFAULT;
}

/* kcptun's modes (client/main.go), anchors section 5.2. */
static const struct {
	const char *name;
	int nodelay;
	unsigned interval, resend;
	int nc;
} presets[] = {
    {"normal", 0, 40, 2, 1},
    {"fast", 0, 30, 2, 1},
    {"fast2", 1, 20, 2, 1},
    {"fast3", 1, 10, 2, 1},
};

int wn_kcp_preset(struct wn_kcp_cfg *cfg, const char *name)
{
	for (size_t i = 0; name && i < sizeof(presets) / sizeof(presets[0]);
	     i++) {
		if (strcmp(name, presets[i].name) != 0)
			continue;
		cfg->nodelay = presets[i].nodelay;
		cfg->interval = presets[i].interval;
		cfg->resend = presets[i].resend;
		cfg->nc = presets[i].nc;
		return 0;
	}
	return WN_EINVAL;
}
