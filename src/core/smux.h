/* The smux stream multiplexer: many streams over one reliable, ordered byte
 * pipe (KCP in stream mode, under Noise), speaking xtaci/smux v1 or v2 so
 * that warren can talk to kcptun (cfg.compat), plus warren's RST extension
 * in the native profile. Frames: src/core/smux_frame.h.
 *
 * Pure: no I/O, no clock, no randomness. The engine pushes the bytes it
 * reads from the pipe into wn_smux_input() (split anywhere), pulls the bytes
 * to write with wn_smux_pull(), and calls wn_smux_ping() on its keepalive
 * timer. Stream events come back through struct wn_smux_cb.
 *
 * Streams. The client opens odd ids (3, 5, ...), the server even ids (2, 4,
 * ...), as smux does. A stream has two directions: ours ends with our FIN
 * (wn_smux_shutdown, after the queued data), the peer's with its FIN
 * (on_fin, after its last on_data). A reset ends both: ours with
 * wn_smux_reset (an RST carrying the reason; in compat mode a FIN, and the
 * reason is lost), the peer's with on_reset. The core keeps a stream until
 * the engine calls wn_smux_forget() and everything owed to the peer (queued
 * data, FIN or RST) is out; forgetting a stream that is neither shut down
 * nor reset shuts it down, as smux's Close() does.
 *
 * Sending. wn_smux_write() (or wn_smux_reserve/commit) queues into the
 * stream's send queue (at most cfg.stream_send_limit bytes) and returns what
 * it took. wn_smux_pull() writes whole frames: first control frames
 * (refusals, NOP, then per stream SYN, UPD, RST), then data round robin:
 * each stream in turn sends up to cfg.max_frame bytes within its v2 send
 * window (one frame, or more when a small pull cut its turn short: the
 * turn then resumes in the next pull, so streams get equal bytes). A
 * stream's FIN follows its last data.
 *
 * Flow control. v2: per stream, as smux. The sender keeps at most
 * window - (sent - consumed) bytes in flight, from the peer's latest UPD
 * (until then the window is WN_SMUX_INITIAL_WINDOW). The receiver reports
 * consumption with an UPD on the first wn_smux_consumed() call and whenever
 * half of cfg.stream_window has been consumed since the last UPD, and, when
 * cfg.stream_window is larger than the initial guess, once at open/accept.
 * A peer that sends beyond what we allowed is a protocol error, so the data
 * delivered to the engine and not yet consumed stays under
 * max(cfg.stream_window, WN_SMUX_INITIAL_WINDOW) per stream.
 * The receive budget (cfg.recv_budget, cfg.pool) bounds the session too:
 * without it a session's streams could each hold a whole window that the
 * engine's reader does not take (streams x stream_window). With it, a
 * stream starts at the window the peer assumes (WN_SMUX_INITIAL_WINDOW),
 * and each UPD, sent after half the stream's current window was
 * consumed, offers up to twice the current window, at most
 * cfg.stream_window, and no more than the budget has left beside the
 * other streams' windows (the session's, and the pool's); never less
 * than WN_SMUX_RECV_FLOOR (or stream_window, if smaller). A stream that
 * opens when the budget is taken is told the floor at once. So a stream
 * grows only as fast as its reader takes data, one that stops reading
 * keeps what it was given (as a send buffer the peer does not read
 * does), and the windows of a session add up to at most its budget plus
 * the floor per stream (plus, for one round trip after a stream opens,
 * what the peer may send before our first UPD reaches it). The window
 * ends with the peer's direction (its FIN, a reset, forgetting).
 * v1 has no per-stream flow control: smux v1 stops reading the whole pipe
 * when its session buffer is full. The engine does the same by not feeding
 * wn_smux_input while wn_smux_recv_pending() is above its limit, which
 * leaves the bytes in KCP and closes KCP's receive window. A stream whose
 * reader stalls therefore stalls the session in v1, exactly as in smux.
 *
 * Callbacks and re-entrancy. on_open, on_data, on_fin and on_reset are
 * called only from inside wn_smux_input(); on_writable only from inside
 * wn_smux_pull(), after it has written its frames. From inside any callback
 * the engine may call wn_smux_open, write, shutdown, reset, consumed,
 * forget, ping and the query functions, on any stream (forgetting the
 * stream being reported included); it must not call wn_smux_input,
 * wn_smux_pull or wn_smux_free (input and pull refuse: WN_EINVAL and 0).
 * No callback is ever made for a stream after the engine forgot it.
 *
 * Memory: per stream a 176-byte struct and a 16-byte table slot, plus at
 * most cfg.stream_send_limit bytes of queued data in 8 KiB chunks. A
 * drained queue keeps up to three chunks for reuse while it is among the
 * 256 most recently drained, until wn_smux_trim. Nothing received is
 * buffered here: on_data hands the bytes straight from the input. */
#ifndef WN_CORE_SMUX_H
#define WN_CORE_SMUX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/smux_frame.h"

/* The reason the core puts in the RST when it refuses a SYN beyond
 * cfg.max_streams. Reasons are the engine's codes, opaque to the core; this
 * one is the value warren's engine uses for "a resource failure"
 * (WN_STREAM_INTERNAL, src/engine/tunnel.h). */
#define WN_SMUX_REASON_LIMIT 1u

/* The receive windows of several sessions together (an engine endpoint's):
 * limit bounds what their streams' advertised windows add up to, beyond
 * the per-stream floor (see Flow control). Owned by the engine; each
 * session adds its windows to granted and takes them off again, at the
 * latest in wn_smux_free. */
struct wn_smux_pool {
	size_t limit;   /* 0: no limit */
	size_t granted; /* the sessions' windows now */
};

/* The smallest window a stream is ever given under a receive budget (or
 * its stream_window, if smaller): every stream keeps moving. */
#define WN_SMUX_RECV_FLOOR (64u * 1024)

struct wn_smux_cfg {
	int version; /* 1 or 2; must match the peer's */
	int client;  /* nonzero: we open odd stream ids, else even */
	int compat;  /* nonzero: plain smux (no RST; a reset is sent as FIN) */
	size_t max_frame; /* payload bytes per PSH, 1..65535 (32768) */
	/* v2: the receive window we advertise per stream (256 KiB; warren's
	 * native profile uses up to 1 MiB). 2 .. 2^31 - 1 bytes. */
	uint32_t stream_window;
	size_t stream_send_limit; /* bytes queued per stream (1 MiB) */
	unsigned max_streams;     /* live streams; a SYN beyond is refused */
	/* v2: the receive budget (Flow control): what the windows of the
	 * session's streams add up to, and the pool it shares with other
	 * sessions (borrowed; outlives the session). 0 and NULL: none,
	 * every stream is given stream_window. */
	size_t recv_budget;
	struct wn_smux_pool *pool;
};

struct wn_smux_cb {
	void *ctx;
	/* The peer opened sid. Return 0 to accept, or a reason (nonzero,
	 * the engine's code; the core does not interpret it) to refuse: the
	 * core then sends an RST with that reason (compat: a FIN) and forgets
	 * the stream. NULL accepts all. */
	uint32_t (*on_open)(void *ctx, uint32_t sid);
	/* Stream data, in order; valid only during the call. Report the bytes
	 * with wn_smux_consumed() as they leave the engine's buffers. */
	void (*on_data)(void *ctx, uint32_t sid, const uint8_t *data,
	                size_t len);
	/* The peer ended its direction (after its last on_data). */
	void (*on_fin)(void *ctx, uint32_t sid);
	/* The peer reset the stream (native profile only): queued data was
	 * dropped and nothing more arrives; forget the stream. */
	void (*on_reset)(void *ctx, uint32_t sid, uint32_t reason);
	/* After a short write (fewer bytes taken than offered), the stream's
	 * queue has drained to half of cfg.stream_send_limit or less. Fires
	 * once per short write, from inside wn_smux_pull. */
	void (*on_writable)(void *ctx, uint32_t sid);
};

struct wn_smux;

/* Fills cfg with the defaults: version 2, server, native, max_frame 32768,
 * stream_window 256 KiB, stream_send_limit 1 MiB, max_streams 1024. */
void wn_smux_cfg_default(struct wn_smux_cfg *cfg);

/* Creates a session. cfg and cb are copied (cb->ctx is kept as given).
 * Returns 0 and *out, WN_EINVAL for a bad configuration, or WN_ENOMEM. The
 * caller frees the session with wn_smux_free. */
int wn_smux_new(const struct wn_smux_cfg *cfg, const struct wn_smux_cb *cb,
                struct wn_smux **out);

/* Frees the session and every stream, with their queued data. No callback
 * is made. NULL is allowed. */
void wn_smux_free(struct wn_smux *m);

/* Feeds len bytes read from the pipe (any split of the byte stream; a frame
 * may span calls). Calls the callbacks as frames complete; PSH data is
 * handed over as it arrives, so one frame may give several on_data calls.
 * Returns 0, or WN_EPROTO for a session-fatal protocol error (wrong version,
 * unknown command, bad length, SYN of a live id, of our parity or id 0, RST
 * in compat mode, an UPD that acknowledges more than was sent, data beyond
 * the v2 window), or WN_ENOMEM; after an error the session is dead and
 * every later call returns the same error. WN_EINVAL from inside a
 * callback. The caller keeps data. */
int wn_smux_input(struct wn_smux *m, const uint8_t *data, size_t len);

/* Opens a stream: allocates the next id of our parity into *sid and queues
 * its SYN. Data may be written at once. Returns 0, WN_ENOSPC at
 * cfg.max_streams, WN_ERANGE when the ids are exhausted (smux's "go away":
 * start a new session), WN_ECLOSED after a protocol error, or WN_ENOMEM. */
int wn_smux_open(struct wn_smux *m, uint32_t *sid);

/* Queues up to len bytes of stream data (copied). Returns the number taken,
 * which is less than len (possibly 0) when the send queue reaches
 * cfg.stream_send_limit; on_writable then follows. Returns WN_EINVAL for an
 * unknown or forgotten sid, WN_ECLOSED after shutdown or a reset, or
 * WN_ENOMEM (nothing taken). */
ssize_t wn_smux_write(struct wn_smux *m, uint32_t sid, const uint8_t *data,
                      size_t len);

/* Zero-copy write, step 1: points *ptr at free space in sid's send queue
 * (for a socket read to land in). Returns its size (> 0), 0 when the queue
 * is full (on_writable follows, as after a short write), or the errors of
 * wn_smux_write. Nothing is queued until wn_smux_commit; *ptr is valid
 * until the next call on this session other than wn_smux_commit, so read
 * and commit at once. A reserve need not be followed by a commit. */
ssize_t wn_smux_reserve(struct wn_smux *m, uint32_t sid, uint8_t **ptr);

/* Zero-copy write, step 2: queues the first n bytes written at the pointer
 * from the last wn_smux_reserve on sid (n may be 0). Returns 0, WN_EINVAL
 * if n is more than that reserve offered or sid is unknown or forgotten,
 * or WN_ECLOSED after shutdown or a reset. */
int wn_smux_commit(struct wn_smux *m, uint32_t sid, size_t n);

/* Ends our direction: a FIN goes out after the queued data. Returns 0 (also
 * when already shut down), WN_EINVAL for an unknown or forgotten sid, or
 * WN_ECLOSED after a reset. */
int wn_smux_shutdown(struct wn_smux *m, uint32_t sid);

/* Resets the stream: drops its queued data and sends an RST with reason
 * (compat mode: a FIN if ours was not sent yet). If the stream's SYN has not
 * been sent yet, nothing is sent at all. Afterwards nothing more is
 * delivered for it. Returns 0 (also when already reset, by either side) or
 * WN_EINVAL for an unknown or forgotten sid. The engine still forgets it. */
int wn_smux_reset(struct wn_smux *m, uint32_t sid, uint32_t reason);

/* We will read nothing more of sid, but our direction finishes: the queued
 * data and the FIN still go out (this shuts the stream down if it was
 * not), and then, in the native profile, an RST with reason tells the peer
 * to stop sending; the peer has all of our direction when it arrives. In
 * compat mode (smux has no RST) only the FIN goes, as after smux's
 * Close(). Forget the stream afterwards; what still arrives for it is
 * dropped. Returns 0, WN_EINVAL for an unknown or forgotten sid, or
 * WN_ECLOSED after a reset. */
int wn_smux_stop(struct wn_smux *m, uint32_t sid, uint32_t reason);

/* Reports that n bytes delivered by on_data left the engine's buffers. In
 * v2 this may queue an UPD (see Flow control). Unknown sids are ignored;
 * n beyond what was delivered is clamped. */
void wn_smux_consumed(struct wn_smux *m, uint32_t sid, size_t n);

/* The engine is done with sid: no more callbacks for it, and its state is
 * freed once its queued data and FIN (or RST) are out: at once if nothing
 * is owed. Shuts the stream down first if it was neither shut down nor
 * reset. Unknown sids are ignored. */
void wn_smux_forget(struct wn_smux *m, uint32_t sid);

/* Gives back the buffer chunks that streams with nothing queued still
 * hold. The core keeps those of the 256 most recently drained streams for
 * reuse; call this when the session goes quiet (from the keepalive timer,
 * say) so that idle streams hold none. */
void wn_smux_trim(struct wn_smux *m);

/* Queues a NOP (keepalive); pings before the next pull give one NOP. */
void wn_smux_ping(struct wn_smux *m);

/* Writes frames ready to send into buf, whole frames only: control frames
 * first, then data round robin across streams within their send windows.
 * Returns the number of bytes written, 0 if nothing is ready or fits (give
 * at least WN_SMUX_CTRL_MAX bytes, or a control frame may wait), or 0 when
 * called from inside a callback. Then calls on_writable for the streams that
 * became writable. */
size_t wn_smux_pull(struct wn_smux *m, uint8_t *buf, size_t cap);

/* Nonzero if wn_smux_pull has something to write now (given room). */
int wn_smux_want_pull(const struct wn_smux *m);

/* Bytes wn_smux_write would take now for sid; 0 for an unknown, forgotten,
 * shut-down or reset stream. */
size_t wn_smux_send_space(const struct wn_smux *m, uint32_t sid);

/* Bytes of sid still queued to send (for tests and stats). */
size_t wn_smux_send_queued(const struct wn_smux *m, uint32_t sid);

/* Streams the core holds (live, and forgotten ones still flushing). */
unsigned wn_smux_nstreams(const struct wn_smux *m);

/* Why wn_smux_input failed, for the engine's log: a static string naming
 * the violation ("unknown command", "smux version differs from ours", ...),
 * or NULL while the session is healthy. */
const char *wn_smux_why(const struct wn_smux *m);

/* Bytes delivered by on_data and not yet reported with wn_smux_consumed,
 * over all streams: the engine's signal to pause input in v1. */
size_t wn_smux_recv_pending(const struct wn_smux *m);

#endif
