/* The config schema: the key table, and how each key's value is parsed and
 * stored into its section. */
#include "app/config_int.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "carrier/registry.h"
#include "core/dgram.h"
#include "crypto/kcpcrypt.h"
#include "util/err.h"
#include "util/log.h"

/* ---- schema -------------------------------------------------------- */

/* Passed in the scheme mask of set_endpoint: port 0 (any free port) is
 * acceptable. Above every WN_SCHEME_* bit. */
#define PORT_ZERO_OK 0x100u

/* Value parsers for keys that are one field: each names the field type
 * it writes (v_NAME_t), which the table's offsets are checked against. */
typedef uint32_t v_duration_t; /* milliseconds within [min_ms, max_ms] */
typedef unsigned v_uint_t;     /* a whole number within [min_ms, max_ms] */
typedef bool v_bool_t;
typedef int v_log_level_t;
typedef char v_hostname_t[WN_HOSTNAME_MAX + 1];
typedef uint32_t v_size32_t; /* a size up to max_ms */
typedef uint64_t v_size64_t; /* a size */
typedef enum wn_engine_kind v_engine_kind_t;
typedef struct wn_engine_cfg v_mode_t; /* sets mode and mode_set */
typedef char v_kcptun_key_t[WN_KCPTUN_KEY_MAX + 1];
typedef char v_crypt_t[16];
typedef unsigned v_filemode_t; /* permission bits, written in octal */

#define VALUE_FN(name)                                                    \
	static int name(const struct setting *st, const struct keydef *k, \
	                const char *v, void *field)
VALUE_FN(v_duration);
VALUE_FN(v_uint);
VALUE_FN(v_bool);
VALUE_FN(v_log_level);
VALUE_FN(v_hostname);
VALUE_FN(v_size32);
VALUE_FN(v_size64);
VALUE_FN(v_engine_kind);
VALUE_FN(v_mode);
VALUE_FN(v_kcptun_key);
VALUE_FN(v_crypt);
VALUE_FN(v_filemode);

/* offsetof(type, f), which fails to compile unless f has type T (a
 * negative array size), so a row cannot point a parser at a field of
 * another type. */
#define FIELD(type, f, T)                                   \
	(offsetof(type, f) +                                \
	 0 * sizeof(char[__builtin_types_compatible_p(      \
	                     __typeof__(((type *)0)->f), T) \
	                     ? 1                            \
	                     : -1]))

/* The tail of a table row: the parser and where the field is, per
 * section kind; CUSTOM for keys their section's setter handles. */
// clang-format off
#define CUSTOM NULL, {0}
#define AT_SERVER(fn, f) \
	fn, {[SI_SERVER] = FIELD(struct wn_server_cfg, f, fn##_t)}
#define AT_CLIENT(fn, f) \
	fn, {[SI_CLIENT] = FIELD(struct wn_client_cfg, f, fn##_t)}
#define AT_BOTH(fn, f) \
	fn, {[SI_SERVER] = FIELD(struct wn_server_cfg, f, fn##_t), \
	     [SI_CLIENT] = FIELD(struct wn_client_cfg, f, fn##_t)}
#define AT_FORWARD(fn, f) \
	fn, {[SI_FORWARD] = FIELD(struct wn_forward_cfg, f, fn##_t)}
#define AT_SOCKS5(fn, f) \
	fn, {[SI_SOCKS5] = FIELD(struct wn_socks5_cfg, f, fn##_t)}
// clang-format on

/* The order is the order of `warren help` and of the set_mask bits. A key
 * that is one field of its sections is one row: name, help, bounds, parser
 * and field. */
const struct keydef wn_cfg_keys[] = {
    {SEC_SERVER, "listen", K_LISTEN, F_REPEAT, "udp|tcp|tls://HOST:PORT",
     "address to receive clients on (repeatable)", 0, 0, CUSTOM},
    {SEC_CLIENT, "server", K_SERVER, F_REPEAT, "udp|tcp|tls://HOST:PORT",
     "server address; several are tried in order (repeatable)", 0, 0, CUSTOM},
    {SEC_CLIENT, "server-key", K_SERVER_KEY, 0, "PUBKEY",
     "the server's public key (warren pubkey), pinned", 0, 0, CUSTOM},
    {SEC_SERVER | SEC_CLIENT, "key", K_KEY, 0, "FILE",
     "this node's private key file (warren genkey; mode 600)", 0, 0, CUSTOM},
    {SEC_SERVER, "allow-client", K_ALLOW_CLIENT, F_REPEAT, "PUBKEY",
     "public key of a client allowed to connect (repeatable)", 0, 0, CUSTOM},
    {SEC_SERVER, "allow", K_ALLOW, F_REPEAT, "RULE",
     "targets clients may reach: HOST:PORTS, CIDR:PORTS, [V6/N]:PORTS, "
     "*.DOMAIN:PORTS, unix:PATH; udp://HOST:PORTS for UDP flows "
     "(repeatable)",
     0, 0, CUSTOM},
    {SEC_SERVER, "target", K_TARGET, 0, "HOST:PORT|unix:PATH",
     "one fixed target for every stream (instead of allow)", 0, 0, CUSTOM},
    {SEC_SERVER | SEC_CLIENT, "log-level", K_LOG_LEVEL, 0, "LEVEL",
     "error, warn, info (default), debug or trace", 0, 0,
     AT_BOTH(v_log_level, log_level)},
    {SEC_SERVER | SEC_CLIENT, "api", K_API, 0, "HOST:PORT",
     "local HTTP API address: planned, not built yet, so refused for now", 0, 0,
     CUSTOM},
    {SEC_SERVER, "idle-timeout", K_IDLE_TIMEOUT, 0, "DURATION",
     "drop a client session silent for this long (default 30s)", 1000, 3600000,
     AT_SERVER(v_duration, idle_timeout_ms)},
    {SEC_CLIENT, "keepalive", K_KEEPALIVE, 0, "DURATION",
     "send a keepalive when idle this long (default 5s)", 100, 600000,
     AT_CLIENT(v_duration, keepalive_ms)},
    {SEC_CLIENT, "dead-peer-timeout", K_DEAD_PEER, 0, "DURATION",
     "declare the server gone after this long without an answer "
     "(default 15s)",
     1000, 3600000, AT_CLIENT(v_duration, dead_peer_timeout_ms)},
    {SEC_SERVER, "tls-cert", K_TLS_CERT, 0, "FILE",
     "tls listeners: PEM certificate (default: a generated self-signed "
     "one)",
     0, 0, CUSTOM},
    {SEC_SERVER, "tls-key", K_TLS_KEY, 0, "FILE",
     "tls listeners: the certificate's PEM private key", 0, 0, CUSTOM},
    {SEC_SERVER, "fallback", K_FALLBACK, 0, "404|close|FILE",
     "tls listeners: answer to a stranger: a web server's 404/400 "
     "(default), close, or a raw HTTP response file",
     0, 0, CUSTOM},
    {SEC_SERVER | SEC_CLIENT, "sni", K_SNI, 0, "NAME",
     "tls: client: the server name sent; server: the generated "
     "certificate's name",
     0, 0, AT_BOTH(v_hostname, sni)},
    {SEC_CLIENT, "rotate-after", K_ROTATE_AFTER, 0, "DURATION",
     "tcp/tls: replace a carrier connection after this long (default "
     "never)",
     1000, 86400000, AT_CLIENT(v_duration, rotate_after_ms)},
    {SEC_CLIENT, "rotate-bytes", K_ROTATE_BYTES, 0, "SIZE",
     "tcp/tls: replace a carrier connection after this many bytes "
     "(e.g. 500M; default never)",
     0, 0, AT_CLIENT(v_size64, rotate_bytes)},
    {SEC_CLIENT, "failover-after", K_FAILOVER_AFTER, 0, "DURATION",
     "with several servers: move on after this long without progress "
     "(default 3s)",
     500, 600000, AT_CLIENT(v_duration, failover_ms)},
    {SEC_CLIENT, "conns", K_CONNS, 0, "N",
     "tcp/tls: carrier connections kept up in parallel per server, one "
     "session over all of them (default 1)",
     1, 16, AT_CLIENT(v_uint, conns)},
    {SEC_CLIENT, "probe-interval", K_PROBE_INTERVAL, 0, "DURATION",
     "with several servers: while on a later one, try the first again "
     "this often (default 10s)",
     500, 3600000, AT_CLIENT(v_duration, probe_ms)},
    {SEC_SERVER | SEC_CLIENT, "padding", K_PADDING, 0, "BYTES",
     "tcp/tls: after each batch of packets, a padding record of up to "
     "this many random bytes (default 0: none; at most 32767)",
     0, 32767, AT_BOTH(v_size32, padding)},
    {SEC_SERVER, "idle-close", K_IDLE_CLOSE, 0, "DURATION",
     "tcp/tls: close a carrier connection silent this long (default "
     "never)",
     1000, 3600000, AT_SERVER(v_duration, idle_close_ms)},
    {SEC_SERVER, "max-conns", K_MAX_CONNS, 0, "N",
     "tcp/tls: at most N carrier connections per listener (default 4096)", 0,
     1000000, AT_SERVER(v_size32, max_conns)},
    {SEC_SERVER | SEC_CLIENT, "engine", K_ENGINE, 0, "quic|kcp|kcptun",
     "the tunnel engine; both ends must match (default quic); kcptun: "
     "kcptun's wire format, to replace either end of a kcptun deployment",
     0, 0, AT_BOTH(v_engine_kind, engine.kind)},
    {SEC_SERVER | SEC_CLIENT, "mode", K_MODE, 0, "MODE",
     "kcp engine preset: normal, fast, fast2 or fast3 (default; kcptun: "
     "fast)",
     0, 0, AT_BOTH(v_mode, engine)},
    {SEC_SERVER | SEC_CLIENT, "sndwnd", K_SNDWND, 0, "SEGMENTS",
     "kcp engine send window in segments (default 2048; kcptun: 128, "
     "server 1024)",
     16, 65535, AT_BOTH(v_uint, engine.sndwnd)},
    {SEC_SERVER | SEC_CLIENT, "rcvwnd", K_RCVWND, 0, "SEGMENTS",
     "kcp engine receive window in segments (default 2048; kcptun: 512, "
     "server 1024)",
     16, 65535, AT_BOTH(v_uint, engine.rcvwnd)},
    {SEC_SERVER | SEC_CLIENT, "mtu", K_MTU, 0, "BYTES",
     "kcp engine packet size on the carrier (default 1432; kcptun: 1350; "
     "at most 1500, as kcp-go)",
     576, 1500, AT_BOTH(v_uint, engine.mtu)},
    {SEC_SERVER | SEC_CLIENT, "max-streams", K_MAX_STREAMS, 0, "N",
     "concurrent streams per session (default 1024); the server's "
     "value is the limit",
     1, 1000000, AT_BOTH(v_uint, engine.max_streams)},
    {SEC_SERVER | SEC_CLIENT, "session-buffer", K_SESSION_BUFFER, 0, "SIZE",
     "most stream data one session buffers for sending before the "
     "tunnel stops reading its sockets (default 32M; at least 64K)",
     0, 0, AT_BOTH(v_size64, engine.session_buffer)},
    {SEC_SERVER | SEC_CLIENT, "total-buffer", K_TOTAL_BUFFER, 0, "SIZE",
     "the same over every session together (default 256M; at least 64K)", 0, 0,
     AT_BOTH(v_size64, engine.total_buffer)},
    {SEC_SERVER, "sessions-per-key", K_SESSIONS_PER_KEY, 0, "N",
     "engine quic: sessions (connections) one client key may hold at once; "
     "one more replaces the key's least recently heard from (default 16; "
     "engine kcp holds one per key)",
     1, 4096, AT_SERVER(v_uint, sessions_per_key)},
    {SEC_SERVER, "streams-per-key", K_STREAMS_PER_KEY, 0, "N",
     "streams one client key may hold at once over all its sessions; the "
     "next is reset (default 4096)",
     1, 1000000, AT_SERVER(v_uint, streams_per_key)},
    {SEC_SERVER | SEC_CLIENT, "kcptun-key", K_KCPTUN_KEY, 0, "PASSPHRASE",
     "kcptun: the pre-shared secret (kcptun's --key; default kcptun's)", 0, 0,
     AT_BOTH(v_kcptun_key, engine.kcptun_key)},
    {SEC_SERVER | SEC_CLIENT, "crypt", K_CRYPT, 0, "CIPHER",
     "kcptun: aes (default), aes-128, aes-192, salsa20 or none", 0, 0,
     AT_BOTH(v_crypt, engine.crypt)},
    {SEC_SERVER | SEC_CLIENT, "nocomp", K_NOCOMP, 0, "yes|no",
     "kcptun: no snappy compression (default no)", 0, 0,
     AT_BOTH(v_bool, engine.nocomp)},
    {SEC_SERVER | SEC_CLIENT, "datashard", K_DATASHARD, 0, "N",
     "kcptun: Reed-Solomon data shards (default 10; 0: no FEC)", 0, 254,
     AT_BOTH(v_uint, engine.datashard)},
    {SEC_SERVER | SEC_CLIENT, "parityshard", K_PARITYSHARD, 0, "N",
     "kcptun: Reed-Solomon parity shards (default 3; 0: no FEC)", 0, 254,
     AT_BOTH(v_uint, engine.parityshard)},
    {SEC_SERVER | SEC_CLIENT, "smuxver", K_SMUXVER, 0, "1|2",
     "kcptun: smux version (default 1)", 1, 2, AT_BOTH(v_uint, engine.smuxver)},
    {SEC_SERVER, "kcptun-insecure", K_KCPTUN_INSECURE, 0, "yes|no",
     "kcptun: serve with kcptun's default key or crypt none, which anyone "
     "can speak (default no: refused)",
     0, 0, AT_SERVER(v_bool, engine.kcptun_insecure)},
    {SEC_FORWARD, "listen", K_LISTEN, 0, "[tcp://]HOST:PORT|unix:PATH",
     "where the client accepts connections for this forward", 0, 0, CUSTOM},
    {SEC_FORWARD, "target", K_TARGET, 0, "HOST:PORT|unix:PATH",
     "what the server connects each stream to", 0, 0, CUSTOM},
    {SEC_SOCKS5, "listen", K_LISTEN, 0, "[tcp://]HOST:PORT|unix:PATH",
     "where the client accepts SOCKS5 connections", 0, 0, CUSTOM},
    {SEC_SOCKS5, "eager", K_EAGER, 0, "yes|no",
     "answer the SOCKS client at once and send the target with its first "
     "data (default yes); no: wait for the server's answer",
     0, 0, AT_SOCKS5(v_bool, eager)},
    {SEC_SOCKS5, "unauthenticated", K_UNAUTHENTICATED, 0, "yes|no",
     "without users, listen beyond loopback anyway (default no: refused, "
     "as anyone who reaches it could use the tunnel)",
     0, 0, AT_SOCKS5(v_bool, unauthenticated)},
    {SEC_FORWARD | SEC_SOCKS5,
     "socket-mode",
     K_SOCKET_MODE,
     0,
     "OCTAL",
     "unix:PATH listen: the socket file's mode, e.g. 0660 (default 0600)",
     0,
     0,
     v_filemode,
     {[SI_FORWARD] = FIELD(struct wn_forward_cfg, socket_mode, v_filemode_t),
      [SI_SOCKS5] = FIELD(struct wn_socks5_cfg, socket_mode, v_filemode_t)}},
    {SEC_UDP, "listen", K_LISTEN, 0, "[udp://]HOST:PORT",
     "where the client receives datagrams for this UDP forward", 0, 0, CUSTOM},
    {SEC_UDP, "target", K_TARGET, 0, "HOST:PORT",
     "where the server sends each flow's datagrams", 0, 0, CUSTOM},
    {SEC_SERVER | SEC_UDP,
     "udp-idle",
     K_UDP_IDLE,
     0,
     "DURATION",
     "reap a UDP flow silent this long (default 60s)",
     1000,
     3600000,
     v_duration,
     {[SI_SERVER] = FIELD(struct wn_server_cfg, udp_idle_ms, v_duration_t),
      [SI_FORWARD] = FIELD(struct wn_forward_cfg, udp_idle_ms, v_duration_t)}},
    {SEC_SERVER, "udp-connections", K_UDP_CONNECTIONS, 0, "N",
     "UDP sockets per flow toward its target, datagrams spread round-robin "
     "(Tonel's --udp-connections; default 1)",
     1, 16, AT_SERVER(v_uint, udp_conns)},
    {SEC_UDP, "max-flows", K_MAX_FLOWS, 0, "N",
     "UDP flows (client source addresses) at once; past it the oldest idle "
     "flow is evicted (default 1024)",
     1, 1000000, AT_FORWARD(v_uint, max_flows)},
    {SEC_UDP, "fec", K_FEC, 0, "DATA/PARITY|off",
     "Reed-Solomon parity on each flow's datagrams: PARITY parity "
     "datagrams after every DATA (DATA 1-32, PARITY 1-16, e.g. 10/3) "
     "repair up to PARITY lost ones without retransmission; the server "
     "protects the replies the same way (default off)",
     0, 0, CUSTOM},
    {SEC_UDP, "fec-delay", K_FEC_DELAY, 0, "DURATION",
     "with fec: how long a group waits for DATA datagrams before its "
     "parity goes anyway; datagrams themselves never wait (default 5ms)",
     1, 255, AT_FORWARD(v_duration, fec_delay_ms)},
    {SEC_SOCKS5, "user", K_USER, F_REPEAT, "NAME:PASSWORD",
     "require username/password authentication (repeatable)", 0, 0, CUSTOM},
    {SEC_SOCKS5, "users-file", K_USERS_FILE, 0, "FILE",
     "a file of NAME:PASSWORD lines (mode 600: looser is refused), read at "
     "start",
     0, 0, CUSTOM},
};
const size_t wn_cfg_n_keys = sizeof(wn_cfg_keys) / sizeof(wn_cfg_keys[0]);

/* Every row has a bit in a section's struct wn_cfg_keyset. */
_Static_assert(sizeof(wn_cfg_keys) / sizeof(wn_cfg_keys[0]) <= WN_CFG_KEYS_MAX,
               "the key table outgrew WN_CFG_KEYS_MAX: raise it");

/* ---- value parsers --------------------------------------------------- */

int wn_duration_parse(const char *s, uint64_t *ms)
{
	const char *p = s;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return WN_EINVAL;
	while (*p >= '0' && *p <= '9') {
		if (v > 1000000000ull)
			return WN_EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	uint64_t mul;
	if (strcmp(p, "ms") == 0)
		mul = 1;
	else if (strcmp(p, "s") == 0)
		mul = 1000;
	else if (strcmp(p, "m") == 0)
		mul = 60000;
	else if (strcmp(p, "h") == 0)
		mul = 3600000;
	else
		return WN_EINVAL;
	*ms = v * mul;
	return 0;
}

static void bad(const struct setting *st, const struct keydef *k,
                const char *value, const char *why)
{
	wn_config_diag(st->cfg, "%s: [%s] %s: %s, got \"%s\"", st->origin,
	               st->secname, k->name, why, value);
}

static int set_path(const struct setting *st, const struct keydef *k,
                    const char *v, char *out, char *origin)
{
	snprintf(origin, WN_ORIGIN_MAX, "%s", st->origin);
	if (!*v) {
		bad(st, k, v, "expected a file path");
		return WN_EINVAL;
	}
	int n;
	if (v[0] != '/' && st->dir && *st->dir)
		n = snprintf(out, WN_PATH_MAX, "%s/%s", st->dir, v);
	else
		n = snprintf(out, WN_PATH_MAX, "%s", v);
	if (n < 0 || n >= WN_PATH_MAX) {
		bad(st, k, v, "path too long");
		out[0] = '\0';
		return WN_EINVAL;
	}
	return 0;
}

static int set_pubkey(const struct setting *st, const struct keydef *k,
                      const char *v, uint8_t out[WN_KEY_LEN])
{
	if (wn_pubkey_parse(v, strlen(v), out) != 0) {
		bad(st, k, v,
		    "expected a public key: 44 base64 characters as printed "
		    "by `warren pubkey`");
		return WN_EINVAL;
	}
	return 0;
}

static int set_endpoint(const struct setting *st, const struct keydef *k,
                        const char *v, unsigned allowed, enum wn_scheme dflt,
                        const char *expect, struct wn_endpoint *out)
{
	const char *why = NULL;
	if (wn_endpoint_parse(v, allowed & ~PORT_ZERO_OK, dflt,
	                      (allowed & PORT_ZERO_OK) ? WN_EP_PORT_ZERO_OK : 0,
	                      out, &why) != 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "expected %s (%s)", expect, why);
		bad(st, k, v, msg);
		return WN_EINVAL;
	}
	return 0;
}

static int set_duration(const struct setting *st, const struct keydef *k,
                        const char *v, uint32_t *out)
{
	uint64_t ms;
	char msg[160];
	if (wn_duration_parse(v, &ms) != 0) {
		bad(st, k, v,
		    "expected a duration with a unit, like 500ms, 30s, 2m or "
		    "1h");
		return WN_EINVAL;
	}
	if (ms < k->min_ms || ms > k->max_ms) {
		snprintf(msg, sizeof(msg),
		         "expected a duration between %ums and %ums", k->min_ms,
		         k->max_ms);
		bad(st, k, v, msg);
		return WN_EINVAL;
	}
	*out = (uint32_t)ms;
	return 0;
}

/* A count or a size: digits with an optional K, M or G (powers of 1024). */
static int set_size(const struct setting *st, const struct keydef *k,
                    const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	uint64_t mul = 1;
	if (end == v || errno || v[0] == '-')
		goto bad;
	if (*end == 'K' || *end == 'k')
		mul = 1ull << 10;
	else if (*end == 'M' || *end == 'm')
		mul = 1ull << 20;
	else if (*end == 'G' || *end == 'g')
		mul = 1ull << 30;
	if (mul > 1)
		end++;
	if (*end || n == 0 || n > max / mul)
		goto bad;
	*out = n * mul;
	return 0;
bad:
	bad(st, k, v,
	    "expected a positive number (a size may end in K, M or G)");
	return WN_EINVAL;
}

static int set_name(const struct setting *st, const struct keydef *k,
                    const char *v, char *out, size_t cap)
{
	if (!wn_hostname_valid(v, strlen(v)) || strlen(v) >= cap) {
		bad(st, k, v, "expected a DNS name");
		return WN_EINVAL;
	}
	snprintf(out, cap, "%s", v);
	return 0;
}

static int set_log_level(const struct setting *st, const struct keydef *k,
                         const char *v, int *out)
{
	int lvl = wn_log_level_parse(v);
	if (lvl < 0) {
		bad(st, k, v, "expected error, warn, info, debug or trace");
		return WN_EINVAL;
	}
	*out = lvl;
	return 0;
}

/* A key whose feature is not built yet: accepting it would make it a
 * silent no-op, so it is an error until the feature exists. */
static int refuse_planned(const struct setting *st, const struct keydef *k,
                          const char *v)
{
	(void)v;
	wn_config_diag(st->cfg,
	               "%s: [%s] %s: not built yet (the HTTP API is planned: "
	               "README, Features); remove this key",
	               st->origin, st->secname, k->name);
	return WN_EINVAL;
}

static int set_uint(const struct setting *st, const struct keydef *k,
                    const char *v, unsigned *out);

/* yes|true|on or no|false|off. */
static int set_bool(const struct setting *st, const struct keydef *k,
                    const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on")) {
		*out = true;
	} else if (!strcmp(v, "no") || !strcmp(v, "false") ||
	           !strcmp(v, "off")) {
		*out = false;
	} else {
		bad(st, k, v, "expected yes or no");
		return WN_EINVAL;
	}
	return 0;
}

/* A whole number within the key's [min_ms, max_ms] (reused as bounds). */
static int set_uint(const struct setting *st, const struct keydef *k,
                    const char *v, unsigned *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (*v < '0' || *v > '9' || *end != '\0' || n < k->min_ms ||
	    n > k->max_ms) {
		char msg[96];
		snprintf(msg, sizeof(msg), "expected a number from %u to %u",
		         k->min_ms, k->max_ms);
		bad(st, k, v, msg);
		return WN_EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}

/* ---- one-field keys (the table's parsers) ---------------------------- */

VALUE_FN(v_duration)
{
	return set_duration(st, k, v, field);
}

VALUE_FN(v_uint)
{
	return set_uint(st, k, v, field);
}

VALUE_FN(v_bool)
{
	return set_bool(st, k, v, field);
}

VALUE_FN(v_log_level)
{
	return set_log_level(st, k, v, field);
}

VALUE_FN(v_hostname)
{
	return set_name(st, k, v, field, sizeof(v_hostname_t));
}

VALUE_FN(v_size32)
{
	uint64_t n;

	if (set_size(st, k, v, k->max_ms, &n) != 0)
		return WN_EINVAL;
	*(v_size32_t *)field = (uint32_t)n;
	return 0;
}

VALUE_FN(v_size64)
{
	return set_size(st, k, v, UINT64_MAX, field);
}

VALUE_FN(v_engine_kind)
{
	v_engine_kind_t *kind = field;

	if (strcmp(v, "quic") == 0)
		*kind = WN_ENGINE_QUIC;
	else if (strcmp(v, "kcp") == 0)
		*kind = WN_ENGINE_KCP;
	else if (strcmp(v, "kcptun") == 0)
		*kind = WN_ENGINE_KCPTUN;
	else {
		bad(st, k, v, "expected quic, kcp or kcptun");
		return WN_EINVAL;
	}
	return 0;
}

VALUE_FN(v_mode)
{
	static const char *const modes[] = {"normal", "fast", "fast2", "fast3"};
	struct wn_engine_cfg *e = field;

	e->mode_set = true;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(v, modes[i]) == 0) {
			snprintf(e->mode, sizeof(e->mode), "%s", v);
			return 0;
		}
	bad(st, k, v, "expected normal, fast, fast2 or fast3");
	return WN_EINVAL;
}

VALUE_FN(v_kcptun_key)
{
	if (strlen(v) > WN_KCPTUN_KEY_MAX) {
		bad(st, k, v, "expected at most 255 bytes");
		return WN_EINVAL;
	}
	snprintf(field, sizeof(v_kcptun_key_t), "%s", v);
	return 0;
}

VALUE_FN(v_crypt)
{
	enum wn_kcpcrypt_alg alg;
	int rc = wn_kcpcrypt_parse(v, &alg);

	if (rc != 0) {
		bad(st, k, v,
		    rc == WN_ENOTSUP
		        ? "not supported by warren yet: use aes, "
		          "aes-128, aes-192, salsa20 or none"
		        : "expected aes, aes-128, aes-192, salsa20 or "
		          "none");
		return WN_EINVAL;
	}
	snprintf(field, sizeof(v_crypt_t), "%s", v);
	return 0;
}

VALUE_FN(v_filemode)
{
	char *end;
	unsigned long m = strtoul(v, &end, 8);

	/* The owner keeps read and write: a socket it cannot connect to
	 * would serve nobody. */
	if (*v < '0' || *v > '7' || *end != '\0' || m > 0777 ||
	    (m & 0600) != 0600) {
		bad(st, k, v,
		    "expected permission bits in octal with the owner's "
		    "read and write, like 0600 or 0660");
		return WN_EINVAL;
	}
	*(v_filemode_t *)field = (unsigned)m;
	return 0;
}

/* ---- keys of several fields, per section ----------------------------- */

#define TARGET_EXPECT "HOST:PORT or unix:PATH"

static int set_server_key(const struct setting *st, const struct keydef *k,
                          const char *v)
{
	struct wn_server_cfg *s = &st->cfg->server;
	switch (k->id) {
	case K_LISTEN: {
		struct wn_endpoint ep;
		if (set_endpoint(st, k, v, wn_carrier_schemes(), WN_SCHEME_NONE,
		                 wn_carrier_expect(), &ep) != 0)
			return WN_EINVAL;
		struct wn_endpoint *slot =
		    grow(st->cfg, &s->listen, &s->n_listen, sizeof(ep));
		if (slot)
			*slot = ep;
		return 0;
	}
	case K_KEY:
		return set_path(st, k, v, s->key_path, s->key_origin);
	case K_ALLOW_CLIENT: {
		uint8_t pk[WN_KEY_LEN];
		if (set_pubkey(st, k, v, pk) != 0)
			return WN_EINVAL;
		for (size_t i = 0; i < s->n_allow_client; i++)
			if (memcmp(s->allow_client[i], pk, WN_KEY_LEN) == 0) {
				bad(st, k, v,
				    "this client key is listed twice");
				return WN_EINVAL;
			}
		uint8_t *slot = grow(st->cfg, &s->allow_client,
		                     &s->n_allow_client, WN_KEY_LEN);
		if (slot)
			memcpy(slot, pk, WN_KEY_LEN);
		return 0;
	}
	case K_ALLOW: {
		struct wn_allow_rule r;
		const char *why = NULL;
		if (wn_allow_rule_parse(v, &r, &why) != 0) {
			bad(st, k, v, why);
			return WN_EINVAL;
		}
		struct wn_allow_rule *slot =
		    grow(st->cfg, &s->allow, &s->n_allow, sizeof(r));
		if (slot) {
			*slot = r;
			/* The dialer takes each protocol's rules as one
			 * list (core/policy.h). */
			s->n_allow_udp =
			    s->n_allow - wn_policy_split(s->allow, s->n_allow);
		}
		return 0;
	}
	case K_TARGET:
		if (set_endpoint(st, k, v, WN_SCHEME_UNIX | WN_SCHEME_TCP,
		                 WN_SCHEME_TCP, TARGET_EXPECT, &s->target) != 0)
			return WN_EINVAL;
		s->has_target = true;
		return 0;
	case K_API:
		return refuse_planned(st, k, v);
	case K_TLS_CERT:
		return set_path(st, k, v, s->tls_cert, s->tls_origin);
	case K_TLS_KEY:
		return set_path(st, k, v, s->tls_key, s->tls_origin);
	case K_FALLBACK:
		if (strcmp(v, "404") == 0) {
			s->fallback = WN_CFG_FALLBACK_404;
			return 0;
		}
		if (strcmp(v, "close") == 0) {
			s->fallback = WN_CFG_FALLBACK_CLOSE;
			return 0;
		}
		s->fallback = WN_CFG_FALLBACK_FILE;
		return set_path(st, k, v, s->fallback_path, s->tls_origin);
	default:
		return WN_EINTERNAL;
	}
}

static int set_client_key(const struct setting *st, const struct keydef *k,
                          const char *v)
{
	struct wn_client_cfg *c = &st->cfg->client;
	switch (k->id) {
	case K_SERVER: {
		struct wn_endpoint ep;
		if (set_endpoint(st, k, v, wn_carrier_schemes(), WN_SCHEME_NONE,
		                 wn_carrier_expect(), &ep) != 0)
			return WN_EINVAL;
		struct wn_endpoint *slot =
		    grow(st->cfg, &c->server, &c->n_server, sizeof(ep));
		if (slot)
			*slot = ep;
		return 0;
	}
	case K_SERVER_KEY:
		if (set_pubkey(st, k, v, c->server_key) != 0)
			return WN_EINVAL;
		c->has_server_key = true;
		return 0;
	case K_KEY:
		return set_path(st, k, v, c->key_path, c->key_origin);
	case K_API:
		return refuse_planned(st, k, v);
	default:
		return WN_EINTERNAL;
	}
}

/* fec = DATA/PARITY or off. */
static int set_fec(const struct setting *st, const struct keydef *k,
                   const char *v, struct wn_forward_cfg *f)
{
	char *end;
	unsigned long d, p;

	if (strcmp(v, "off") == 0) {
		f->fec_data = f->fec_parity = 0;
		return 0;
	}
	if (v[0] < '0' || v[0] > '9')
		goto bad;
	d = strtoul(v, &end, 10);
	if (*end != '/' || end[1] < '0' || end[1] > '9')
		goto bad;
	p = strtoul(end + 1, &end, 10);
	if (*end || d < 1 || d > WN_DGRAM_FEC_DATA_MAX || p < 1 ||
	    p > WN_DGRAM_FEC_PARITY_MAX)
		goto bad;
	f->fec_data = (unsigned)d;
	f->fec_parity = (unsigned)p;
	return 0;
bad:
	bad(st, k, v,
	    "expected DATA/PARITY with DATA 1-32 and PARITY 1-16 (e.g. "
	    "10/3), or off");
	return WN_EINVAL;
}

static int set_forward_key(const struct setting *st, struct wn_forward_cfg *f,
                           const struct keydef *k, const char *v)
{
	if (f->udp && k->id == K_LISTEN) {
		if (set_endpoint(st, k, v, WN_SCHEME_UDP | PORT_ZERO_OK,
		                 WN_SCHEME_UDP, "[udp://]HOST:PORT",
		                 &f->listen) != 0)
			return WN_EINVAL;
		f->has_listen = true;
		return 0;
	}
	if (f->udp && k->id == K_FEC)
		return set_fec(st, k, v, f);
	if (f->udp && k->id == K_TARGET) {
		/* The flow's target travels as a udp endpoint. */
		if (set_endpoint(st, k, v, WN_SCHEME_UDP, WN_SCHEME_UDP,
		                 "HOST:PORT", &f->target) != 0)
			return WN_EINVAL;
		f->has_target = true;
		return 0;
	}
	switch (k->id) {
	case K_LISTEN:
		if (set_endpoint(
		        st, k, v, WN_SCHEME_TCP | WN_SCHEME_UNIX | PORT_ZERO_OK,
		        WN_SCHEME_TCP, "[tcp://]HOST:PORT or unix:PATH",
		        &f->listen) != 0)
			return WN_EINVAL;
		f->has_listen = true;
		return 0;
	case K_TARGET:
		if (set_endpoint(st, k, v, WN_SCHEME_UNIX | WN_SCHEME_TCP,
		                 WN_SCHEME_TCP, TARGET_EXPECT, &f->target) != 0)
			return WN_EINVAL;
		f->has_target = true;
		return 0;
	default:
		return WN_EINTERNAL;
	}
}

/* "NAME:PASSWORD" into a user; the first ':' splits. */
int wn_cfg_parse_user(const char *v, size_t n, struct wn_socks5_user *u,
                      const char **why)
{
	const char *colon = memchr(v, ':', n);

	if (!colon || colon == v) {
		*why = "expected NAME:PASSWORD";
		return WN_EINVAL;
	}
	if ((size_t)(colon - v) > WN_SOCKS5_CRED_LEN ||
	    n - (size_t)(colon - v) - 1 > WN_SOCKS5_CRED_LEN) {
		*why = "name and password are at most 255 bytes each";
		return WN_EINVAL;
	}
	memset(u, 0, sizeof(*u));
	memcpy(u->name, v, (size_t)(colon - v));
	memcpy(u->pass, colon + 1, n - (size_t)(colon - v) - 1);
	return 0;
}

int wn_cfg_add_user(struct wn_config *cfg, struct wn_socks5_cfg *sk,
                    const struct wn_socks5_user *u, const char **why)
{
	struct wn_socks5_user *slot;

	for (size_t i = 0; i < sk->n_users; i++)
		if (strcmp(sk->users[i].name, u->name) == 0) {
			*why = "this user is listed twice";
			return WN_EINVAL;
		}
	slot = grow(cfg, &sk->users, &sk->n_users, sizeof(*slot));
	if (slot)
		*slot = *u;
	return 0;
}

static int set_socks_key(const struct setting *st, struct wn_socks5_cfg *sk,
                         const struct keydef *k, const char *v)
{
	struct wn_socks5_user u;
	const char *why = NULL;
	int rc;

	switch (k->id) {
	case K_LISTEN:
		if (set_endpoint(
		        st, k, v, WN_SCHEME_TCP | WN_SCHEME_UNIX | PORT_ZERO_OK,
		        WN_SCHEME_TCP, "[tcp://]HOST:PORT or unix:PATH",
		        &sk->listen) != 0)
			return WN_EINVAL;
		sk->has_listen = true;
		return 0;
	case K_USER:
		rc = wn_cfg_parse_user(v, strlen(v), &u, &why);
		if (rc == 0)
			rc = wn_cfg_add_user(st->cfg, sk, &u, &why);
		sodium_memzero(&u, sizeof(u));
		if (rc != 0) {
			/* Never echo a password into a diagnostic. */
			wn_config_diag(st->cfg, "%s: [%s] %s: %s", st->origin,
			               st->secname, k->name, why);
			return WN_EINVAL;
		}
		return 0;
	case K_USERS_FILE:
		return set_path(st, k, v, sk->users_file,
		                sk->users_file_origin);
	default:
		return WN_EINTERNAL;
	}
}

/* Applies key=value to one section object, enforcing "set once in files"
 * for single-valued keys. `sec` is the section kind; fwd or sk is the
 * section object of a [forward] or [socks5] section. */
int wn_cfg_apply(const struct setting *st, unsigned sec,
                 struct wn_forward_cfg *fwd, struct wn_socks5_cfg *sk,
                 const char *name, const char *v)
{
	const struct keydef *k = find_key(sec, name);
	if (!k) {
		wn_config_diag(st->cfg, "%s: [%s] unknown key \"%s\"",
		               st->origin, st->secname, name);
		return WN_ECONFIG;
	}
	struct wn_cfg_keyset *set_mask, *file_mask;
	if (sec == SEC_SERVER) {
		set_mask = &st->cfg->server.set_mask;
		file_mask = &st->cfg->server.file_mask;
	} else if (sec == SEC_CLIENT) {
		set_mask = &st->cfg->client.set_mask;
		file_mask = &st->cfg->client.file_mask;
	} else if (sec == SEC_SOCKS5) {
		set_mask = &sk->set_mask;
		file_mask = &sk->file_mask;
	} else {
		set_mask = &fwd->set_mask;
		file_mask = &fwd->file_mask;
	}
	if (!(k->flags & F_REPEAT) && key_in(set_mask, k) && st->from_file &&
	    key_in(file_mask, k)) {
		wn_config_diag(st->cfg,
		               "%s: [%s] %s is set twice (it takes one value)",
		               st->origin, st->secname, k->name);
		return WN_ECONFIG;
	}
	int rc;
	if (k->set) {
		/* [udp NAME] is a struct wn_forward_cfg too. */
		enum sec_index si = sec == SEC_SERVER   ? SI_SERVER
		                    : sec == SEC_CLIENT ? SI_CLIENT
		                    : sec == SEC_SOCKS5 ? SI_SOCKS5
		                                        : SI_FORWARD;
		void *obj = si == SI_SERVER   ? (void *)&st->cfg->server
		            : si == SI_CLIENT ? (void *)&st->cfg->client
		            : si == SI_SOCKS5 ? (void *)sk
		                              : (void *)fwd;
		rc = k->set(st, k, v, (char *)obj + k->off[si]);
	} else if (sec == SEC_SERVER)
		rc = set_server_key(st, k, v);
	else if (sec == SEC_CLIENT)
		rc = set_client_key(st, k, v);
	else if (sec == SEC_SOCKS5)
		rc = set_socks_key(st, sk, k, v);
	else
		rc = set_forward_key(st, fwd, k, v);
	/* A secret written into a config file gets the mode check a
	 * users-file or key file gets. */
	if (rc == 0 && st->from_file && st->cfg->parsing_mode >= 0 &&
	    (st->cfg->parsing_mode & (S_IRWXG | S_IRWXO)) &&
	    (k->id == K_USER || k->id == K_KCPTUN_KEY)) {
		wn_config_diag(st->cfg,
		               "%s: [%s] %s: a secret in a file accessible by "
		               "group or others (mode %04o; run: chmod 600 "
		               "FILE)",
		               st->origin, st->secname, k->name,
		               (unsigned)st->cfg->parsing_mode);
		rc = WN_EKEYPERM;
	}
	/* Marked even when the value was bad: it was reported as malformed
	 * and must not also be reported as missing. */
	key_add(set_mask, k);
	if (st->from_file)
		key_add(file_mask, k);
	if (sec == SEC_SERVER)
		st->cfg->server.key_line[key_bit(k)] =
		    st->from_file ? st->line : 0;
	else if (sec == SEC_CLIENT)
		st->cfg->client.key_line[key_bit(k)] =
		    st->from_file ? st->line : 0;
	return rc != 0 ? WN_ECONFIG : 0;
}
