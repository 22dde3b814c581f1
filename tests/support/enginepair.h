/* enginepair: a client and a server of one engine (by its name in the
 * engine table: quic, kcp, kcptun) in one process, joined by an in-memory
 * carrier pair (memcarrier.h), built through the table (engine_ops.h) as
 * the daemon builds them; and an echo for the server's streams with a
 * client that checks it. For the engine tests (engine_test.c,
 * maxpacket_test.c, stream_contract_test.c).
 *
 *   wn_enginepair_init(&p, "kcp", guard_ms);
 *   ... adjust p.cconf / p.sconf, p.accept, the carriers p.cc / p.sc
 *       (loss, reordering, max_packet, caps) ...
 *   wn_enginepair_start(&p);        engines, paths, connect
 *   ... streams on p.tunnel, WN_ENGINEPAIR_RUN_UNTIL(&p, cond) ...
 *   wn_enginepair_finish(&p);
 *
 * Every stream the server accepts is echoed unless the test sets its own
 * p.accept (or p.deny). The guard timer ends a test that hangs: after
 * guard_ms, p.timed_out is set and the loop stops.
 *
 * Setup failures abort (they are bugs in the test). Ownership: the caller
 * owns the struct (on its stack is fine); finish frees everything else. */
#ifndef WN_TESTS_ENGINEPAIR_H
#define WN_TESTS_ENGINEPAIR_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "crypto/key.h"
#include "engine/engine_ops.h"
#include "io/loop.h"
#include "support/memcarrier.h"
#include "util/log.h"

struct wn_enginepair {
	struct wn_loop loop;
	struct wn_log log; /* level from $WN_TEST_LOG, default warn */
	const struct wn_engine_type *type; /* NULL: loop and log only */
	struct wn_identity sid, cid;       /* the server's, the client's */
	/* What start builds the engines from: the identities and keys
	 * (engines with WN_ENGINE_CAP_KEYS), the accept handler and the
	 * events below; the rest at the engine's defaults. */
	struct wn_engine_conf sconf, cconf;
	struct wn_accept_handler accept; /* default: record, then echo */
	struct wn_engine_events events;  /* default: count ups and downs */
	struct wn_memcarrier sc, cc;     /* the server's, the client's */
	struct wn_engine *srv, *cli;
	struct wn_tunnel *tunnel; /* the client's, after start */
	uv_timer_t guard;
	int timed_out;
	/* The default accept handler: resets every stream with
	 * WN_STREAM_DENIED if deny is set; records what it saw. */
	int deny;
	int accepted;
	int have_target;
	struct wn_endpoint target; /* the last stream's */
	/* The default events. */
	int ups, downs;
	char down_why[200];
};

/* Loop, log, identities, the carrier pair (10.0.0.1:50000 the client's,
 * 10.0.0.2:4433 the server's; no loss, max_packet 1452) and both
 * configurations for the engine called `engine` (NULL: only the loop, the
 * log and the guard, for a test double). */
void wn_enginepair_init(struct wn_enginepair *p, const char *engine,
                        uint64_t guard_ms);

/* Creates the server and the client, opens the carriers with their
 * handlers, adds the path and connects. p->tunnel is the client's. */
void wn_enginepair_start(struct wn_enginepair *p);

/* Runs the loop for ms of real time (or until the guard fires). */
void wn_enginepair_run_for(struct wn_enginepair *p, uint64_t ms);

/* Runs the loop until cond holds; fails the (cmocka) test if the guard
 * fires first. */
#define WN_ENGINEPAIR_RUN_UNTIL(p, cond)                             \
	do {                                                         \
		while (!(cond) && !(p)->timed_out)                   \
			uv_run(wn_loop_uv(&(p)->loop), UV_RUN_ONCE); \
		assert_false((p)->timed_out);                        \
	} while (0)

/* Closes the engines (their goodbyes go out), lets the loop free them,
 * closes the carriers and the loop; aborts if a handle was left open. */
void wn_enginepair_finish(struct wn_enginepair *p);

/* Makes s an echo: what arrives is written back, the peer credited only
 * for what was written (backpressure as a front end does it), and a FIN
 * answered with a FIN once all is written. Frees itself at on_closed. */
void wn_echo_stream(struct wn_stream *s);

/* A client stream that sends len random bytes and a FIN, and keeps what
 * comes back. */
struct wn_echo_client {
	struct wn_stream *s; /* NULL once closed */
	uint8_t *payload, *echoed;
	size_t len, sent, got;
	int eof, closed, close_err;
};

/* Opens c's stream on t to target ("host:port" or "unix:/path") and
 * starts sending. The stream may open before the session is up. */
void wn_echo_client_open(struct wn_echo_client *c, struct wn_tunnel *t,
                         const char *target, size_t len);

/* Whether what came back is what was sent, all of it, then EOF. */
int wn_echo_client_intact(const struct wn_echo_client *c);

/* Frees the buffers (the stream must be closed or its tunnel closed). */
void wn_echo_client_free(struct wn_echo_client *c);

#endif
