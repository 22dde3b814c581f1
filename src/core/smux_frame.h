/* The smux frame: the unit of xtaci/smux, the stream multiplexer kcptun runs
 * over its KCP byte pipe, and of warren's KCP engine.
 *
 *   u8  ver        1 or 2 (both ends must agree; v2 adds UPD)
 *   u8  cmd        0 SYN, 1 FIN, 2 PSH, 3 NOP, 4 UPD (v2), 5 RST (warren)
 *   u16 length     of data, little-endian
 *   u32 stream_id  little-endian
 *   data[length]
 *
 * SYN opens a stream, FIN ends the sender's direction (half-close), PSH
 * carries stream data, NOP is a keepalive (stream id 0 by convention). UPD
 * (v2) reports flow-control state: data = u32 consumed | u32 window, both
 * little-endian. RST is warren's extension, sent only when the session is not
 * in smux-compatible mode: data = u32 reason (enum wn_stream_err) little-
 * endian. SYN, FIN and NOP carry no data.
 *
 * Mirrored in docs/wire-format.md ("smux frame"). Pure: no I/O. */
#ifndef WN_CORE_SMUX_FRAME_H
#define WN_CORE_SMUX_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "util/rw.h"

#define WN_SMUX_HDR_LEN 8

enum wn_smux_cmd {
	WN_SMUX_SYN = 0,
	WN_SMUX_FIN = 1,
	WN_SMUX_PSH = 2,
	WN_SMUX_NOP = 3,
	WN_SMUX_UPD = 4, /* v2 only */
	WN_SMUX_RST = 5, /* warren native profile only */
};

#define WN_SMUX_UPD_LEN 8 /* u32 consumed, u32 window */
#define WN_SMUX_RST_LEN 4 /* u32 reason */

/* Largest payload a frame can carry (the length field is 16 bits) and the
 * payload size smux uses by default. */
#define WN_SMUX_MAX_FRAME_LIMIT 65535
#define WN_SMUX_MAX_FRAME_DEFAULT 32768

/* What a v2 sender assumes the peer's per-stream window is until the first
 * UPD arrives (smux's initialPeerWindow). */
#define WN_SMUX_INITIAL_WINDOW 262144u

/* Longest frame that is not PSH: the UPD. */
#define WN_SMUX_CTRL_MAX (WN_SMUX_HDR_LEN + WN_SMUX_UPD_LEN)

struct wn_smux_hdr {
	uint8_t ver;
	uint8_t cmd;
	uint16_t len; /* payload bytes that follow the header */
	uint32_t sid;
};

/* Decodes the 8 header bytes at p (the caller has checked there are 8).
 * Never fails: checking the fields is wn_smux_hdr_check's job. */
void wn_smux_hdr_decode(const uint8_t *p, struct wn_smux_hdr *h);

/* Appends the header to wr. Returns 0 or the writer's sticky error. */
int wn_smux_hdr_encode(struct wn_wr *wr, const struct wn_smux_hdr *h);

/* Checks a decoded header against the session's version and profile (native
 * != 0 allows RST): a known version equal to `version`, a known command, and
 * the payload length each command requires (SYN, FIN, NOP: 0; UPD: 8, v2
 * only; RST: 4, native only; PSH: any). Returns 0, or WN_EPROTO and, if why
 * is not NULL, a static string naming the fault in *why. It does not look
 * at stream ids: that needs the session's state. */
int wn_smux_hdr_check(const struct wn_smux_hdr *h, int version, int native,
                      const char **why);

#endif
