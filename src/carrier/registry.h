/* The carrier types, by scheme: how the daemon opens a carrier without
 * knowing which one it is.
 *
 * Each type (udp, tcp, tls now; faketcp and tox next) is one row of a table:
 * its scheme, its capabilities (carrier.h) and two constructors with one
 * signature, for the client side (reaching a server) and the server side
 * (listening). A new carrier is a new row; nothing above this file changes. */
#ifndef WN_CARRIER_REGISTRY_H
#define WN_CARRIER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "carrier/carrier.h"
#include "carrier/tcp.h"
#include "carrier/udp.h"
#include "core/addr.h"
#include "crypto/key.h"
#include "io/loop.h"
#include "util/log.h"

/* What any carrier type is opened with. Options for other types are
 * ignored, so one conf can be filled for whatever the scheme is. */
struct wn_carrier_conf {
	unsigned id; /* logs: "<scheme>#<id>" */
	/* Client: the server to reach. Server: the address to listen on. */
	const struct sockaddr *addr;
	socklen_t addrlen;
	const uint8_t *server_pk;        /* client: the server's key */
	const struct wn_identity *ident; /* server: ours (borrowed) */
	struct wn_tcp_opts tcp;          /* tcp, tls */
	struct wn_udp_opts udp;          /* udp (its id is ignored) */
};

/* Opens a carrier (borrowing loop and log, copying h and conf). Returns 0
 * with *out the carrier, owned by the caller until wn_carrier_close, or a
 * WN_E* code with nothing left open. */
typedef int wn_carrier_open_fn(struct wn_loop *loop, struct wn_log *log,
                               const struct wn_carrier_conf *conf,
                               const struct wn_carrier_handler *h,
                               struct wn_carrier **out);

struct wn_carrier_type {
	const char *name; /* "udp": the scheme as written, without "://" */
	enum wn_scheme scheme;
	unsigned caps; /* the WN_CARRIER_* flags its carriers have */
	wn_carrier_open_fn *open_client;
	wn_carrier_open_fn *open_server;
};

/* The type for a scheme, or NULL. */
const struct wn_carrier_type *wn_carrier_type_find(enum wn_scheme scheme);

/* The type named name ("udp"), or NULL. */
const struct wn_carrier_type *wn_carrier_type_by_name(const char *name);

/* The i-th type (0, 1, ...), NULL past the last. */
const struct wn_carrier_type *wn_carrier_type_at(size_t i);

/* The WN_SCHEME_* mask of every carrier type (what a listen or server
 * address may use). */
unsigned wn_carrier_schemes(void);

/* What a carrier address looks like, for error messages:
 * "udp://, tcp:// or tls://HOST:PORT". */
const char *wn_carrier_expect(void);

#endif
