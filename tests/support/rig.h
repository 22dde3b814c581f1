/* rig: a whole tunnel in one process for front-end tests: a loop, the
 * pipetunnel, the server's dialer with a configuration built rule by rule,
 * client forwards, and a temporary directory for unix sockets.
 *
 *   app client -> forward -> pipetunnel -> dialer -> target server
 *
 * Setup failures abort (they are bugs in the test). */
#ifndef WN_TESTS_RIG_H
#define WN_TESTS_RIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/policy.h"
#include "front/dialer.h"
#include "front/forward.h"
#include "io/loop.h"
#include "support/netpeer.h"
#include "support/pipetunnel.h"
#include "util/log.h"

#define WN_RIG_MAX_RULES 8
#define WN_RIG_MAX_FORWARDS 4

struct wn_rig {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_pipetunnel *pt;
	/* The server's policy, as the dialer takes it. */
	struct wn_allow_rule rules[WN_RIG_MAX_RULES];
	size_t n_rules;
	bool has_target;
	struct wn_endpoint target;
	struct wn_dialer *dialer;
	struct wn_forward *fwd[WN_RIG_MAX_FORWARDS];
	int nfwd;
	char dir[64]; /* removed (with what is in it) by wn_rig_finish */
};

/* Loop, logger (level from $WN_TEST_LOG, default warn, to fd log_fd, or
 * stderr if log_fd < 0) and pipetunnel (po may be NULL). */
void wn_rig_init(struct wn_rig *r, const struct wn_pipetunnel_opts *po,
                 int log_fd);

/* Add an allow rule to the server configuration. */
void wn_rig_allow(struct wn_rig *r, const char *rule);

/* Set the server's fixed target. */
void wn_rig_fixed_target(struct wn_rig *r, const char *target);

/* Create the dialer with the rules and target set so far (o may be NULL,
 * else its tuning is used; its policy fields are ignored) and make it the
 * pipetunnel's accept handler. */
void wn_rig_dialer(struct wn_rig *r, const struct wn_dialer_opts *o);

/* Open a forward LISTEN -> TARGET; returns the forward or NULL with *err
 * set (err may be NULL: then failure aborts). */
struct wn_forward *wn_rig_forward(struct wn_rig *r, const char *listen,
                                  const char *target, int *err);

/* The forward's TCP address, for clients. */
void wn_rig_forward_addr(struct wn_forward *f, struct sockaddr_storage *ss);

/* "DIR/name" in buf. */
const char *wn_rig_path(struct wn_rig *r, const char *name, char *buf,
                        size_t cap);

/* Close the forwards and dialer, then the pipetunnel, run until every
 * stream is gone, close the loop. Returns wn_loop_close's result (0: every
 * handle was closed by its owner). */
int wn_rig_finish(struct wn_rig *r);

#endif
