#include "core/smux_frame.h"

#include "util/err.h"

void wn_smux_hdr_decode(const uint8_t *p, struct wn_smux_hdr *h)
{
	h->ver = p[0];
	h->cmd = p[1];
	h->len = wn_get_u16le(p + 2);
	h->sid = wn_get_u32le(p + 4);
}

int wn_smux_hdr_encode(struct wn_wr *wr, const struct wn_smux_hdr *h)
{
	wn_wr_u8(wr, h->ver);
	wn_wr_u8(wr, h->cmd);
	wn_wr_u16le(wr, h->len);
	return wn_wr_u32le(wr, h->sid);
}

static int fault(const char **why, const char *what)
{
	if (why)
		*why = what;
	return WN_EPROTO;
}

int wn_smux_hdr_check(const struct wn_smux_hdr *h, int version, int native,
                      const char **why)
{
	/* smux refuses a frame of the other version outright: v1 and v2
	 * sessions cannot talk to each other. */
	if ((h->ver != 1 && h->ver != 2) || h->ver != version)
		return fault(why, "smux version differs from ours");
	switch (h->cmd) {
	case WN_SMUX_SYN:
	case WN_SMUX_FIN:
	case WN_SMUX_NOP:
		return h->len == 0 ? 0
		                   : fault(why, "SYN, FIN or NOP with data");
	case WN_SMUX_PSH:
		return 0;
	case WN_SMUX_UPD:
		if (version != 2)
			return fault(why, "UPD in smux v1");
		return h->len == WN_SMUX_UPD_LEN
		           ? 0
		           : fault(why, "UPD of bad length");
	case WN_SMUX_RST:
		if (!native)
			return fault(why, "RST from a peer in compat mode");
		return h->len == WN_SMUX_RST_LEN
		           ? 0
		           : fault(why, "RST of bad length");
	default:
		return fault(why, "unknown command");
	}
}
