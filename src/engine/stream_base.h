/* The stream base: tunnel-stream semantics (tunnel.h), implemented once.
 *
 * Every engine (QUIC, KCP and its kcptun profile) and the test double
 * (tests/support/pipetunnel.c) embeds struct wn_stream as the first member
 * of its own stream object and supplies a small transport table
 * (struct wn_sb_transport) that moves bytes, credit, FINs, resets and stops
 * on its wire. The base owns everything the front end can observe:
 *
 *  - half-close as two states, ours (out) and the peer's (in), each changed
 *    only through one checked transition function (stream_base.c), as
 *    OpenSSH's nchan.c does with istate/ostate;
 *  - the release and reset rules (tunnel.h, "Lifetime");
 *  - the deferred on_closed, exactly once, never for a released stream;
 *  - server-side header acceptance: the stream header in the first bytes,
 *    its credit, the accept handler and its "handler or reset" rule;
 *  - blocked-writer wakeups (on_writable after a short write or an empty
 *    reserve).
 *
 * The states:
 *
 *   in:  OPEN --peer FIN--> EOF
 *        OPEN --released after our shutdown--> DRAIN --peer FIN--> EOF
 *        any --reset (either side)--> ABORTED
 *   out: OPEN --shutdown--> FIN --transport has the FIN--> DONE
 *        any --reset, or the peer's stop--> ABORTED
 *
 * The stream ends (on_closed) at once on a reset from either side, when the
 * transport ends it (wn_sb_finish: session lost, the wire's own close), or
 * when both directions are over: in EOF or ABORTED and out DONE or ABORTED.
 * Its error is then WN_STREAM_OK if neither direction was aborted.
 *
 * Re-entrancy: the base never calls a handler from inside a wn_stream_*
 * call, and calls the transport only from inside wn_stream_* and wn_sb_*
 * calls; a transport function must not call handlers either. The engine
 * calls the wn_sb_* event functions from its own receive and write paths;
 * those call handlers (on_data, on_eof, on_writable, the accept handler).
 *
 * Ownership: the engine allocates its stream objects and frees them in
 * transport->free, which the base calls once, from the deferred close,
 * after on_closed. Until then the base may touch the stream. */
#ifndef WN_ENGINE_STREAM_BASE_H
#define WN_ENGINE_STREAM_BASE_H

#include <stdint.h>

#include "core/streamhdr.h"
#include "engine/tunnel.h"
#include "io/loop.h"
#include "util/list.h"
#include "util/log.h"

struct wn_accept_handler;

/* The peer's direction. */
enum wn_sb_in {
	WN_SB_IN_OPEN,    /* the peer's data goes to on_data */
	WN_SB_IN_DRAIN,   /* released while the peer still sends: its data is
	                     discarded (and credited) until its FIN or reset */
	WN_SB_IN_EOF,     /* the peer's FIN was delivered */
	WN_SB_IN_ABORTED, /* reset, by either side */
};

/* Our direction. */
enum wn_sb_out {
	WN_SB_OUT_OPEN,    /* writes are taken */
	WN_SB_OUT_FIN,     /* shut down: the FIN follows the queued data */
	WN_SB_OUT_DONE,    /* the transport has delivered our FIN (or hands
	                      it to a core that delivers it on its own) */
	WN_SB_OUT_ABORTED, /* reset, or the peer asked us to stop sending */
};

/* What an engine does on its wire for the base. Called only from inside
 * the base; none of them may call a handler. */
struct wn_sb_transport {
	/* Queues up to len bytes of our data (copied). Returns the number
	 * taken (0 when the send buffer is full: the engine then calls
	 * wn_sb_writable once there is room), or a negative WN_E* code. */
	ssize_t (*write)(struct wn_stream *s, const uint8_t *data, size_t len);
	/* Zero-copy write: contiguous free space at *ptr. Returns its size, 0
	 * when full (wn_sb_writable follows), or a negative WN_E* code. */
	ssize_t (*reserve)(struct wn_stream *s, uint8_t **ptr);
	/* Queues n bytes written at the last reserve's pointer. 0 or WN_E*. */
	int (*commit)(struct wn_stream *s, size_t n);
	/* The peer may send n more bytes: they were consumed by the front
	 * end, or discarded by the base (header bytes, data nobody reads). */
	void (*credit)(struct wn_stream *s, size_t n);
	/* Our FIN after the queued data. The engine calls wn_sb_fin_done
	 * once the FIN is delivered (or owned by a core that delivers it),
	 * possibly from inside this call. */
	void (*fin)(struct wn_stream *s);
	/* Abort both directions on the wire with reason err (queued data is
	 * dropped). The base ends the stream right after. */
	void (*reset)(struct wn_stream *s, int err);
	/* The front end released the stream after its shutdown while the
	 * peer still sends: our data and FIN still go out, and the peer is
	 * told to stop sending (reason err) where the wire can say so. The
	 * engine may end the stream (wn_sb_finish) from inside this call if
	 * its core finishes the rest alone. */
	void (*stop)(struct wn_stream *s, int err);
	/* The stream has ended: unlink it from the session; the engine's
	 * wire state may go on (a FIN or RST still owed) without it. Called
	 * once, from inside the call that ended the stream. */
	void (*detach)(struct wn_stream *s);
	/* Frees the stream object: after on_closed, from the loop; or, for
	 * an ended stream whose data the engine still held then (queued),
	 * later, from wn_sb_sync or wn_sb_session_gone once it has none. */
	void (*free)(struct wn_stream *s);
	/* Optional: the engine's time in milliseconds (its one clock, which
	 * may be a test's virtual one), for the base's rate-limited logs.
	 * NULL: the loop's cached time, which is the KCP engine's clock. */
	uint64_t (*now_ms)(const struct wn_stream *s);
	/* Optional (test doubles): a call the contract forbids was made
	 * (what names it). Engines leave it NULL and the call is refused. */
	void (*misuse)(struct wn_stream *s, const char *what);
	/* Optional: the bytes of our data the engine holds for the stream
	 * now (queued and unacknowledged). Needed by an engine that reports
	 * its drained buffers through wn_sb_sync rather than wn_sb_sent.
	 * Also asked after detach, for as long as it is not 0 and the
	 * session is there: what an ended stream still has to send. */
	size_t (*queued)(const struct wn_stream *s);
};

/* The send budget.
 *
 * What the front end writes sits in the engine's per-stream send buffer
 * until the peer has it, so a session with many streams fed by fast
 * sockets could make its engine hold streams x stream_send_limit bytes,
 * whatever the peer reads. The base therefore counts the bytes each
 * stream has in its engine's buffer (added at write/commit, taken off as
 * the engine reports them gone: wn_sb_sent, wn_sb_sync, or the stream's
 * end) per session and over the engine endpoint, and refuses a write or
 * reserve (0: full, on_writable follows) once the session's or the
 * total's limit is reached. The relay then stops reading its socket.
 *
 * A stream below WN_SB_FLOOR bytes is never refused: bytes a stream has
 * beyond the peer's flow-control credit stay until the peer reads them,
 * so streams the peer does not read could otherwise hold the whole
 * budget and stop every other stream for good. With the floor every
 * stream keeps moving; a session's bound is its limit plus WN_SB_FLOOR
 * per stream (and one reserve of overshoot). Twice the total limit is a
 * hard cap that the floor does not pass, so the floors of many sessions
 * cannot add up without bound either; only there can streams that the
 * peer does not read stop the others, and the session limit means that
 * takes many sessions.
 *
 * Ended streams: a stream may end (both directions over, a reset, its
 * release) while its engine still holds data of it to send: the KCP
 * engine's smux sends a FIN after the queued data on its own, once the
 * stream is forgotten. Those bytes are still held for the peer, so with
 * an engine that reports transport->queued they stay counted until they
 * leave the engine's buffers (wn_sb_sync) or its session goes
 * (wn_sb_session_gone); the stream object lives that long, after
 * on_closed, and the base frees it then. Without that, streams that end
 * at once (a target that answers and closes, to a client that does not
 * read) would make the engine hold streams x stream_send_limit unseen.
 * QUIC's streams end only once the peer has acknowledged their data,
 * or after a reset; a reset stream's send buffer lingers until ngtcp2
 * closes the stream (it may still read it), so the QUIC engine reports
 * that buffer as `queued` after detach and calls wn_sb_data_gone when
 * ngtcp2 lets go.
 *
 * Waking: a refused stream waits on its session's or the total's list.
 * The list is woken (on_writable, in order) once its counter has fallen
 * an eighth below the limit, so a budget at its edge does not wake every
 * waiter per acknowledgement; a waiter whose own bytes drain below the
 * floor is woken at once. Every waiter holds at least the floor, which
 * either drains (an event that wakes it) or stays because the peer does
 * not read that stream; so no stream waits for ever on others. */
#define WN_SB_FLOOR (64u * 1024)

/* The engines' defaults (keys session-buffer and total-buffer): room for
 * a fast stream's bandwidth-delay product several times over, and for a
 * few such sessions at once. */
#define WN_SB_SESSION_LIMIT_DEFAULT (32u * 1024 * 1024)
#define WN_SB_TOTAL_LIMIT_DEFAULT (256u * 1024 * 1024)

/* A budget counter with its waiting streams. */
struct wn_sb_budget {
	size_t used;         /* bytes counted */
	struct wn_list wait; /* refused streams (wn_stream.blink) */
	struct wn_list busy; /* sessions: streams with bytes counted */
};

/* What the streams of one engine endpoint share. Owned by the engine, it
 * outlives its streams. */
struct wn_stream_env {
	const struct wn_sb_transport *tp;
	struct wn_loop *loop;   /* borrowed: the deferred close */
	struct wn_log *log;     /* borrowed; may be NULL */
	struct wn_ratelimit rl; /* malformed stream headers */
	/* Server: where incoming streams go (borrowed; NULL on clients). */
	const struct wn_accept_handler *ah;
	uint64_t seq; /* the last stream id handed out */
	/* The send budget (above): limits in bytes, 0: none. */
	size_t session_limit, total_limit;
	struct wn_sb_budget total; /* every stream of the endpoint */
	/* Server: accepted streams live per client key, indexed by the
	 * tunnel's key_slot - 1 (borrowed from the engine; NULL: no cap),
	 * each at most key_cap (see wn_sb_env_keys). */
	uint32_t *key_streams;
	size_t nkeys;
	uint32_t key_cap;
};

/* The base part of every engine's stream. Fields are the base's: engines
 * read them (id, hdr_flags, the states) but change them only through the
 * wn_sb_* calls. */
struct wn_stream {
	/* The public calls' dispatch: the base's table (wn_sb_stream_ops),
	 * or an engine's own while it is not yet built on the base. */
	const struct wn_stream_ops *ops;
	struct wn_stream_env *env;
	struct wn_tunnel *tunnel;   /* the session it belongs to */
	struct wn_stream_handler h; /* all NULL after release */
	uint64_t id;
	/* Server side: the flags of the stream's header (WN_OPEN_*, the
	 * header's WN_STREAMHDR_F_* bits), set before the accept handler
	 * runs. With WN_OPEN_CONFIRM the accept handler writes the status
	 * byte WN_STREAMHDR_STATUS_OK first, once connected. */
	unsigned hdr_flags;
	uint8_t in, out;       /* enum wn_sb_in, enum wn_sb_out */
	uint8_t released : 1,  /* the front end let go: no handler calls */
	    ended : 1,         /* on_closed is scheduled (or skipped) */
	    reported : 1,      /* the deferred close has run */
	    want_writable : 1, /* a short write or empty reserve happened */
	    hdr_pending : 1,   /* server: the header has not all arrived */
	    key_counted : 1;   /* counted in env->key_streams */
	int err;               /* on_closed's reason */
	size_t acct;           /* bytes counted in the send budget */
	struct wn_list blink;  /* on a budget's wait list while refused */
	struct wn_list alink;  /* on the session's busy list while acct */
	struct wn_deferred dnode;
	struct wn_streamhdr_acc hdr; /* server: the header as it arrives */
};

/* The tunnel API's stream calls on the base (tunnel.c dispatches). */
extern const struct wn_stream_ops wn_sb_stream_ops;

/* Sets up env for an engine endpoint. ah may be NULL (clients). */
void wn_sb_env_init(struct wn_stream_env *env, const struct wn_sb_transport *tp,
                    struct wn_loop *loop, struct wn_log *log,
                    const struct wn_accept_handler *ah);

/* Sets the endpoint's send budget (see above): at most session_limit
 * bytes per session and total_limit over every session buffered for
 * sending before writes are refused; 0: no limit. */
void wn_sb_env_budget(struct wn_stream_env *env, size_t session_limit,
                      size_t total_limit);

/* Server: caps the streams one client key holds at once over all its
 * sessions. counts (n entries, zeroed, the engine's: it outlives every
 * stream) is indexed by a tunnel's key_slot - 1; a stream whose header
 * arrives while its key holds cap accepted streams is reset with
 * WN_STREAM_LIMIT before the accept handler sees it. Streams of a tunnel
 * without a key slot are not counted. cap 0 or counts NULL: no cap. */
void wn_sb_env_keys(struct wn_stream_env *env, uint32_t *counts, size_t n,
                    uint32_t cap);

/* Initialises the base of a new stream (zeroed memory) on tunnel t and
 * gives it the next id. With h (copied) it is an outgoing stream; with h
 * NULL an incoming one whose first bytes are its header, accepted as they
 * arrive through wn_sb_recv (or at once, without a header, through
 * wn_sb_accept). */
void wn_sb_init(struct wn_stream *s, struct wn_stream_env *env,
                struct wn_tunnel *t, const struct wn_stream_handler *h);

/* Hands an incoming stream without a header (the kcptun profile: the
 * dialer's fixed target) to the accept handler now. Returns 0, or -1 if
 * the stream ended (refused, or no handler set). */
int wn_sb_accept(struct wn_stream *s, const struct wn_endpoint *target);

/* ---- events from the engine's wire (these call handlers) -------------- */

/* The peer's data, in order (valid during the call). The header of an
 * incoming stream is taken off first (and credited); the rest goes to
 * on_data, or is discarded and credited when nobody reads. */
void wn_sb_recv(struct wn_stream *s, const uint8_t *data, size_t len);

/* The peer's FIN, after its last data. */
void wn_sb_recv_fin(struct wn_stream *s);

/* The peer aborted its direction with reason err (QUIC RESET_STREAM, an
 * smux RST). Unless we asked for it (a released stream draining), the
 * stream is reset: our direction is aborted too and on_closed(err)
 * follows. */
void wn_sb_recv_reset(struct wn_stream *s, int err);

/* The peer will read no more (QUIC STOP_SENDING): our direction is
 * aborted (the engine has dropped its queued data), the peer's goes on;
 * the stream ends with err once the peer's direction is over too. */
void wn_sb_recv_stop(struct wn_stream *s, int err);

/* The transport has delivered our FIN (after transport->fin). */
void wn_sb_fin_done(struct wn_stream *s);

/* There is room in the send buffer again: wakes a writer that got a short
 * write or an empty reserve. */
void wn_sb_writable(struct wn_stream *s);

/* n bytes of the stream's data left the engine's send buffer (the peer
 * acknowledged them): the send budget gets them back, and streams waiting
 * on it may be woken. Bytes the base did not count (an engine's own
 * header) are ignored. */
void wn_sb_sent(struct wn_stream *s, size_t n);

/* For an engine whose core drains the send buffers on its own (KCP's
 * smux): asks transport->queued of each stream of session t that has
 * bytes counted and gives back what has gone. Once per run pass; costs
 * one call per stream with data buffered. */
void wn_sb_sync(struct wn_tunnel *t);

/* Session t's engine state is going (its buffers freed with it): the
 * bytes its ended streams still had counted go back, and those of them
 * whose deferred close has run are freed (transport->free) now. Call it
 * before freeing the session; no handler is called. */
void wn_sb_session_gone(struct wn_tunnel *t);

/* The engine let go of ended stream s's data (a QUIC stream that
 * lingered until ngtcp2 closed it): what was still counted for it goes
 * back, and it is freed now if its deferred close has run. No handler is
 * called. */
void wn_sb_data_gone(struct wn_stream *s);

/* The bytes counted for session t, and for every session of env. */
size_t wn_sb_session_buffered(const struct wn_tunnel *t);
size_t wn_sb_total_buffered(const struct wn_stream_env *env);

/* Ends the stream with err (session lost, the wire closed it): on_closed
 * follows from the loop unless released. Idempotent. */
void wn_sb_finish(struct wn_stream *s, int err);

/* Names for logs and tests. */
const char *wn_sb_in_name(int in);
const char *wn_sb_out_name(int out);

#endif
