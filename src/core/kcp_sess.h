/* The KCP engine's session core: one KCP conversation carrying one smux
 * session, and the session's liveness (keepalive and dead-peer timing).
 *
 * Pure, like the cores it joins (src/core/kcp.h, src/core/smux.h): no I/O,
 * no clock, no loop. Packets and `now` (ms) go in; KCP datagrams come out
 * through the output callback; wn_kcp_sess_deadline() says when to call
 * wn_kcp_sess_run() next. The engine (engine/kcp_engine.c) wraps it with packet
 * protection, carriers, timers and the tunnel API; the simulator test joins
 * two of them over a simulated link in virtual time.
 *
 * Byte path: smux frames are pulled into KCP only as far as KCP's send
 * queue has room (so a full link stops smux, and smux's per-stream queues
 * stop the front ends); what KCP delivers in order goes straight into smux,
 * whose callbacks (the engine's) see stream events. */
#ifndef WN_CORE_KCP_SESS_H
#define WN_CORE_KCP_SESS_H

#include <stddef.h>
#include <stdint.h>

#include "core/kcp.h"
#include "core/smux.h"

struct wn_kcp_sess_cfg {
	struct wn_kcp_cfg kcp;
	struct wn_smux_cfg smux;
	uint32_t keepalive_ms;    /* smux NOP after this long without sending
	                             anything; 0: never */
	uint32_t idle_timeout_ms; /* dead after this long without input */
	/* 1: snappy's framing format between smux and KCP, both ways
	 * (kcptun without -nocomp; src/core/snappyframe.h). */
	int compress;
	/* smux v1 has no per-stream flow control: stop moving bytes from
	 * KCP to smux while this many delivered bytes are unconsumed (KCP's
	 * window then closes, as smux v1 stops reading its pipe); 0: no
	 * limit (v2's windows bound each stream). */
	size_t recv_pause;
	/* 1: only stream bytes (smux frames, NOPs included) prove the peer
	 * alive, not any KCP packet, as smux's keepalive timeout judges:
	 * kcptun, where a restarted peer keeps answering in KCP a session
	 * it no longer has. The engine then does not call
	 * wn_kcp_sess_touch per packet. For the same reason only smux bytes
	 * sent count as our keepalive (not KCP acks): a ping goes out when
	 * none were sent for keepalive_ms. */
	int idle_on_data;
	/* 1: a run pass flushes KCP only when wn_kcp_deadline() says
	 * something is due, so acks wait for their batch (kcp.ack_every);
	 * 0: every run pass flushes (one ack datagram per receive batch:
	 * docs/performance.md, "Per-packet cost: batched acks"). Both the
	 * native engine and the kcptun profile batch, as kcp-go does. */
	int batch_acks;
};

/* Fills in defaults: KCP preset fast3 in stream mode, acks batched
 * (batch_acks, kcp.ack_every 32), smux v2, keepalive 5 s, idle timeout
 * 30 s. */
void wn_kcp_sess_cfg_default(struct wn_kcp_sess_cfg *cfg);

struct wn_kcp_sess;

/* Creates a session. `out` receives every KCP datagram (see wn_kcp_cfg's
 * headroom/tailroom: the engine seals it in place); smux callbacks go to
 * `cb` (copied). Returns 0 or WN_ENOMEM / WN_EINVAL. */
int wn_kcp_sess_new(const struct wn_kcp_sess_cfg *cfg, wn_kcp_output_fn out,
                    void *out_ctx, const struct wn_smux_cb *cb, uint64_t now,
                    struct wn_kcp_sess **s);

void wn_kcp_sess_free(struct wn_kcp_sess *s);

/* Feeds one KCP datagram (already authenticated and decrypted) and hands
 * whatever KCP now delivers in order to smux (stream callbacks run from
 * here). Returns 0, or a WN_E* code after which the session is dead. */
int wn_kcp_sess_input(struct wn_kcp_sess *s, const uint8_t *pkt, size_t len,
                      uint64_t now);

/* Moves smux frames into KCP and lets KCP send what is due (data, acks
 * whose batch is complete, retransmissions, probes); sends a keepalive
 * when due; notices a dead peer. Call after input batches, after stream
 * writes, and at the deadline. */
void wn_kcp_sess_run(struct wn_kcp_sess *s, uint64_t now);

/* When wn_kcp_sess_run() must be called next (absolute ms). */
uint64_t wn_kcp_sess_deadline(const struct wn_kcp_sess *s, uint64_t now);

/* 0 while alive; else why it died: WN_ETIMEDOUT (nothing heard for the
 * idle timeout, or KCP gave up retransmitting), WN_EPROTO (the peer broke
 * the KCP or smux protocol). */
int wn_kcp_sess_error(const struct wn_kcp_sess *s);

/* Restarts the dead-peer clock (the engine calls it when the session's
 * handshake completes, and for authenticated keepalives). */
void wn_kcp_sess_touch(struct wn_kcp_sess *s, uint64_t now);

/* The path to the peer changed: resend what is in flight at once (see
 * wn_kcp_kick). */
void wn_kcp_sess_kick(struct wn_kcp_sess *s, uint64_t now);

/* The smux session, for stream operations (borrowed; valid until free). */
struct wn_smux *wn_kcp_sess_smux(struct wn_kcp_sess *s);

/* The KCP conversation, for statistics (borrowed). */
const struct wn_kcp *wn_kcp_sess_kcp(const struct wn_kcp_sess *s);

#endif
