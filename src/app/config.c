#include "app/config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/keyfile.h"
#include "crypto/kcpcrypt.h"
#include "util/err.h"
#include "util/log.h"

/* ---- schema -------------------------------------------------------- */

enum sec_bit {
	SEC_SERVER = 1,
	SEC_CLIENT = 2,
	SEC_FORWARD = 4,
	SEC_SOCKS5 = 8,
};

enum key_id {
	K_LISTEN,
	K_KEY,
	K_ALLOW_CLIENT,
	K_ALLOW,
	K_TARGET,
	K_LOG_LEVEL,
	K_API,
	K_IDLE_TIMEOUT,
	K_SERVER,
	K_SERVER_KEY,
	K_KEEPALIVE,
	K_DEAD_PEER,
	K_TLS_CERT,
	K_TLS_KEY,
	K_FALLBACK,
	K_SNI,
	K_ROTATE_AFTER,
	K_ROTATE_BYTES,
	K_IDLE_CLOSE,
	K_MAX_CONNS,
	K_FAILOVER_AFTER,
	K_PADDING,
	K_ENGINE,
	K_MODE,
	K_SNDWND,
	K_RCVWND,
	K_MTU,
	K_MAX_STREAMS,
	K_KCPTUN_KEY,
	K_CRYPT,
	K_NOCOMP,
	K_DATASHARD,
	K_PARITYSHARD,
	K_SMUXVER,
	K_EAGER,
	K_USER,
	K_USERS_FILE,
	K_CONNS,
	K_PROBE_INTERVAL,
};

#define F_REPEAT 1u

/* Passed in the scheme mask of set_endpoint: port 0 (any free port) is
 * acceptable. Above every WN_SCHEME_* bit. */
#define PORT_ZERO_OK 0x100u

struct keydef {
	unsigned sections;
	const char *name;
	enum key_id id;
	unsigned flags;
	const char *arg;  /* placeholder for help: "URL", "FILE", ... */
	const char *help; /* one line */
	uint32_t min_ms, max_ms;
};

/* The order is the order of `warren help` and of the set_mask bits. */
static const struct keydef keys[] = {
    {SEC_SERVER, "listen", K_LISTEN, F_REPEAT, "udp|tcp|tls://HOST:PORT",
     "address to receive clients on (repeatable)", 0, 0},
    {SEC_CLIENT, "server", K_SERVER, F_REPEAT, "udp|tcp|tls://HOST:PORT",
     "server address; several are tried in order (repeatable)", 0, 0},
    {SEC_CLIENT, "server-key", K_SERVER_KEY, 0, "PUBKEY",
     "the server's public key (warren pubkey), pinned", 0, 0},
    {SEC_SERVER | SEC_CLIENT, "key", K_KEY, 0, "FILE",
     "this node's private key file (warren genkey; mode 600)", 0, 0},
    {SEC_SERVER, "allow-client", K_ALLOW_CLIENT, F_REPEAT, "PUBKEY",
     "public key of a client allowed to connect (repeatable)", 0, 0},
    {SEC_SERVER, "allow", K_ALLOW, F_REPEAT, "RULE",
     "targets clients may reach: HOST:PORTS, CIDR:PORTS, [V6/N]:PORTS, "
     "*.DOMAIN:PORTS, unix:PATH (repeatable)",
     0, 0},
    {SEC_SERVER, "target", K_TARGET, 0, "HOST:PORT|unix:PATH",
     "one fixed target for every stream (instead of allow)", 0, 0},
    {SEC_SERVER | SEC_CLIENT, "log-level", K_LOG_LEVEL, 0, "LEVEL",
     "error, warn, info (default), debug or trace", 0, 0},
    {SEC_SERVER | SEC_CLIENT, "api", K_API, 0, "HOST:PORT",
     "local HTTP API address (keep it on loopback)", 0, 0},
    {SEC_SERVER, "idle-timeout", K_IDLE_TIMEOUT, 0, "DURATION",
     "drop a client session silent for this long (default 30s)", 1000, 3600000},
    {SEC_CLIENT, "keepalive", K_KEEPALIVE, 0, "DURATION",
     "send a keepalive when idle this long (default 5s)", 100, 600000},
    {SEC_CLIENT, "dead-peer-timeout", K_DEAD_PEER, 0, "DURATION",
     "declare the server gone after this long without an answer "
     "(default 15s)",
     1000, 3600000},
    {SEC_SERVER, "tls-cert", K_TLS_CERT, 0, "FILE",
     "tls listeners: PEM certificate (default: a generated self-signed "
     "one)",
     0, 0},
    {SEC_SERVER, "tls-key", K_TLS_KEY, 0, "FILE",
     "tls listeners: the certificate's PEM private key", 0, 0},
    {SEC_SERVER, "fallback", K_FALLBACK, 0, "404|close|FILE",
     "tls listeners: answer to a stranger: a web server's 404/400 "
     "(default), close, or a raw HTTP response file",
     0, 0},
    {SEC_SERVER | SEC_CLIENT, "sni", K_SNI, 0, "NAME",
     "tls: client: the server name sent; server: the generated "
     "certificate's name",
     0, 0},
    {SEC_CLIENT, "rotate-after", K_ROTATE_AFTER, 0, "DURATION",
     "tcp/tls: replace a carrier connection after this long (default "
     "never)",
     1000, 86400000},
    {SEC_CLIENT, "rotate-bytes", K_ROTATE_BYTES, 0, "SIZE",
     "tcp/tls: replace a carrier connection after this many bytes "
     "(e.g. 500M; default never)",
     0, 0},
    {SEC_CLIENT, "failover-after", K_FAILOVER_AFTER, 0, "DURATION",
     "with several servers: move on after this long without progress "
     "(default 3s)",
     500, 600000},
    {SEC_CLIENT, "conns", K_CONNS, 0, "N",
     "tcp/tls: carrier connections kept up in parallel per server, one "
     "session over all of them (default 1)",
     1, 16},
    {SEC_CLIENT, "probe-interval", K_PROBE_INTERVAL, 0, "DURATION",
     "with several servers: while on a later one, try the first again "
     "this often (default 10s)",
     500, 3600000},
    {SEC_SERVER | SEC_CLIENT, "padding", K_PADDING, 0, "BYTES",
     "tcp/tls: after each batch of packets, a padding record of up to "
     "this many random bytes (default 0: none; at most 32767)",
     0, 0},
    {SEC_SERVER, "idle-close", K_IDLE_CLOSE, 0, "DURATION",
     "tcp/tls: close a carrier connection silent this long (default "
     "never)",
     1000, 3600000},
    {SEC_SERVER, "max-conns", K_MAX_CONNS, 0, "N",
     "tcp/tls: at most N carrier connections per listener (default 4096)", 0,
     0},
    {SEC_SERVER | SEC_CLIENT, "engine", K_ENGINE, 0, "quic|kcp|kcptun",
     "the tunnel engine; both ends must match (default quic); kcptun: "
     "kcptun's wire format, to replace either end of a kcptun deployment",
     0, 0},
    {SEC_SERVER | SEC_CLIENT, "mode", K_MODE, 0, "MODE",
     "kcp engine preset: normal, fast, fast2 or fast3 (default; kcptun: "
     "fast)",
     0, 0},
    {SEC_SERVER | SEC_CLIENT, "sndwnd", K_SNDWND, 0, "SEGMENTS",
     "kcp engine send window in segments (default 512)", 16, 65535},
    {SEC_SERVER | SEC_CLIENT, "rcvwnd", K_RCVWND, 0, "SEGMENTS",
     "kcp engine receive window in segments (default 512)", 16, 65535},
    {SEC_SERVER | SEC_CLIENT, "mtu", K_MTU, 0, "BYTES",
     "kcp engine packet size on the carrier (default 1432; kcptun: 1350; "
     "at most 1500, as kcp-go)",
     576, 1500},
    {SEC_SERVER | SEC_CLIENT, "max-streams", K_MAX_STREAMS, 0, "N",
     "concurrent streams per session (default 1024); the server's "
     "value is the limit",
     1, 1000000},
    {SEC_SERVER | SEC_CLIENT, "kcptun-key", K_KCPTUN_KEY, 0, "PASSPHRASE",
     "kcptun: the pre-shared secret (kcptun's --key; default kcptun's)", 0, 0},
    {SEC_SERVER | SEC_CLIENT, "crypt", K_CRYPT, 0, "CIPHER",
     "kcptun: aes (default), aes-128, aes-192, salsa20 or none", 0, 0},
    {SEC_SERVER | SEC_CLIENT, "nocomp", K_NOCOMP, 0, "yes|no",
     "kcptun: no snappy compression (default no)", 0, 0},
    {SEC_SERVER | SEC_CLIENT, "datashard", K_DATASHARD, 0, "N",
     "kcptun: Reed-Solomon data shards (default 10; 0: no FEC)", 0, 254},
    {SEC_SERVER | SEC_CLIENT, "parityshard", K_PARITYSHARD, 0, "N",
     "kcptun: Reed-Solomon parity shards (default 3; 0: no FEC)", 0, 254},
    {SEC_SERVER | SEC_CLIENT, "smuxver", K_SMUXVER, 0, "1|2",
     "kcptun: smux version (default 1)", 1, 2},
    {SEC_FORWARD, "listen", K_LISTEN, 0, "[tcp://]HOST:PORT|unix:PATH",
     "where the client accepts connections for this forward", 0, 0},
    {SEC_FORWARD, "target", K_TARGET, 0, "HOST:PORT|unix:PATH",
     "what the server connects each stream to", 0, 0},
    {SEC_SOCKS5, "listen", K_LISTEN, 0, "[tcp://]HOST:PORT|unix:PATH",
     "where the client accepts SOCKS5 connections", 0, 0},
    {SEC_SOCKS5, "eager", K_EAGER, 0, "yes|no",
     "answer the SOCKS client at once and send the target with its first "
     "data (default yes); no: wait for the server's answer",
     0, 0},
    {SEC_SOCKS5, "user", K_USER, F_REPEAT, "NAME:PASSWORD",
     "require username/password authentication (repeatable)", 0, 0},
    {SEC_SOCKS5, "users-file", K_USERS_FILE, 0, "FILE",
     "a file of NAME:PASSWORD lines (mode 600: looser is refused), read at "
     "start",
     0, 0},
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const struct keydef *find_key(unsigned sec, const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if ((keys[i].sections & sec) && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static unsigned key_bit(const struct keydef *k)
{
	return (unsigned)(k - keys);
}

/* ---- diagnostics ----------------------------------------------------- */

void wn_config_diag(struct wn_config *cfg, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	struct wn_diag *d =
	    realloc(cfg->diags, (cfg->n_diags + 1) * sizeof(*cfg->diags));
	if (!d) {
		cfg->oom = true;
		return;
	}
	cfg->diags = d;
	d[cfg->n_diags].text = strdup(buf);
	if (!d[cfg->n_diags].text) {
		cfg->oom = true;
		return;
	}
	cfg->n_diags++;
}

/* ---- lifecycle ------------------------------------------------------- */

void wn_config_init(struct wn_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->server.log_level = WN_LOG_INFO;
	cfg->server.idle_timeout_ms = 30000;
	cfg->client.log_level = WN_LOG_INFO;
	cfg->client.failover_ms = 3000;
	cfg->client.conns = 1;
	cfg->client.probe_ms = 10000;
	cfg->client.keepalive_ms = 5000;
	cfg->client.dead_peer_timeout_ms = 15000;
	snprintf(cfg->server.engine.mode, sizeof(cfg->server.engine.mode),
	         "fast3");
	snprintf(cfg->client.engine.mode, sizeof(cfg->client.engine.mode),
	         "fast3");
	struct wn_engine_cfg *es[] = {&cfg->server.engine, &cfg->client.engine};
	for (size_t i = 0; i < 2; i++) {
		snprintf(es[i]->crypt, sizeof(es[i]->crypt), "aes");
		snprintf(es[i]->kcptun_key, sizeof(es[i]->kcptun_key),
		         "it's a secrect"); /* kcptun's default, sic */
		es[i]->datashard = 10;
		es[i]->parityshard = 3;
		es[i]->smuxver = 1;
	}
}

void wn_config_free(struct wn_config *cfg)
{
	free(cfg->server.listen);
	free(cfg->server.allow_client);
	free(cfg->server.allow);
	free(cfg->client.server);
	free(cfg->forwards);
	for (size_t i = 0; i < cfg->n_socks; i++) {
		/* Passwords do not linger in freed memory. */
		if (cfg->socks[i].users)
			memset(cfg->socks[i].users, 0,
			       cfg->socks[i].n_users *
			           sizeof(*cfg->socks[i].users));
		free(cfg->socks[i].users);
	}
	free(cfg->socks);
	for (size_t i = 0; i < cfg->n_diags; i++)
		free(cfg->diags[i].text);
	free(cfg->diags);
	memset(cfg, 0, sizeof(*cfg));
}

/* Appends one zeroed element of `size` bytes to *arr; returns it or NULL. */
static void *grow(struct wn_config *cfg, void *arrp, size_t *n, size_t size)
{
	void **arr = arrp;
	void *na = realloc(*arr, (*n + 1) * size);
	if (!na) {
		cfg->oom = true;
		return NULL;
	}
	*arr = na;
	void *elem = (char *)na + *n * size;
	memset(elem, 0, size);
	(*n)++;
	return elem;
}

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

/* Context of one setting being applied. */
struct setting {
	struct wn_config *cfg;
	const char *origin;  /* "FILE:LINE" or "--flag" */
	const char *secname; /* "server", "client", "forward NAME" */
	const char *dir;     /* base for relative paths, or NULL */
	bool from_file;
};

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

static int set_uint(const struct setting *st, const struct keydef *k,
                    const char *v, unsigned *out);

static int set_engine(const struct setting *st, const struct keydef *k,
                      const char *v, struct wn_engine_cfg *e)
{
	if (k->id == K_ENGINE) {
		if (strcmp(v, "quic") == 0)
			e->kind = WN_ENGINE_QUIC;
		else if (strcmp(v, "kcp") == 0)
			e->kind = WN_ENGINE_KCP;
		else if (strcmp(v, "kcptun") == 0)
			e->kind = WN_ENGINE_KCPTUN;
		else {
			bad(st, k, v, "expected quic, kcp or kcptun");
			return WN_EINVAL;
		}
		return 0;
	}
	switch (k->id) {
	case K_KCPTUN_KEY:
		if (strlen(v) > WN_KCPTUN_KEY_MAX) {
			bad(st, k, v, "expected at most 255 bytes");
			return WN_EINVAL;
		}
		snprintf(e->kcptun_key, sizeof(e->kcptun_key), "%s", v);
		return 0;
	case K_CRYPT: {
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
		snprintf(e->crypt, sizeof(e->crypt), "%s", v);
		return 0;
	}
	case K_NOCOMP:
		if (!strcmp(v, "yes") || !strcmp(v, "true") ||
		    !strcmp(v, "on")) {
			e->nocomp = true;
		} else if (!strcmp(v, "no") || !strcmp(v, "false") ||
		           !strcmp(v, "off")) {
			e->nocomp = false;
		} else {
			bad(st, k, v, "expected yes or no");
			return WN_EINVAL;
		}
		return 0;
	case K_DATASHARD:
		return set_uint(st, k, v, &e->datashard);
	case K_PARITYSHARD:
		return set_uint(st, k, v, &e->parityshard);
	case K_SMUXVER:
		return set_uint(st, k, v, &e->smuxver);
	case K_SNDWND:
		return set_uint(st, k, v, &e->sndwnd);
	case K_RCVWND:
		return set_uint(st, k, v, &e->rcvwnd);
	case K_MTU:
		return set_uint(st, k, v, &e->mtu);
	case K_MAX_STREAMS:
		return set_uint(st, k, v, &e->max_streams);
	default:
		break;
	}
	e->mode_set = true;
	static const char *const modes[] = {"normal", "fast", "fast2", "fast3"};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(v, modes[i]) == 0) {
			snprintf(e->mode, sizeof(e->mode), "%s", v);
			return 0;
		}
	bad(st, k, v, "expected normal, fast, fast2 or fast3");
	return WN_EINVAL;
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

#define TARGET_EXPECT "HOST:PORT or unix:PATH"
#define API_EXPECT "HOST:PORT, e.g. 127.0.0.1:7070"
#define CARRIER_EXPECT "udp://, tcp:// or tls://HOST:PORT"

static int set_server_key(const struct setting *st, const struct keydef *k,
                          const char *v)
{
	struct wn_server_cfg *s = &st->cfg->server;
	switch (k->id) {
	case K_LISTEN: {
		struct wn_endpoint ep;
		if (set_endpoint(st, k, v,
		                 WN_SCHEME_UDP | WN_SCHEME_TCP | WN_SCHEME_TLS,
		                 WN_SCHEME_NONE, CARRIER_EXPECT, &ep) != 0)
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
		if (slot)
			*slot = r;
		return 0;
	}
	case K_TARGET:
		if (set_endpoint(st, k, v, WN_SCHEME_UNIX | WN_SCHEME_TCP,
		                 WN_SCHEME_TCP, TARGET_EXPECT, &s->target) != 0)
			return WN_EINVAL;
		s->has_target = true;
		return 0;
	case K_LOG_LEVEL:
		return set_log_level(st, k, v, &s->log_level);
	case K_API:
		if (set_endpoint(st, k, v, WN_SCHEME_TCP, WN_SCHEME_TCP,
		                 API_EXPECT, &s->api) != 0)
			return WN_EINVAL;
		s->has_api = true;
		return 0;
	case K_IDLE_TIMEOUT:
		return set_duration(st, k, v, &s->idle_timeout_ms);
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
	case K_SNI:
		return set_name(st, k, v, s->sni, sizeof(s->sni));
	case K_IDLE_CLOSE:
		return set_duration(st, k, v, &s->idle_close_ms);
	case K_MAX_CONNS: {
		uint64_t n;
		if (set_size(st, k, v, 1000000, &n) != 0)
			return WN_EINVAL;
		s->max_conns = (uint32_t)n;
		return 0;
	}
	case K_PADDING: {
		uint64_t n;
		if (set_size(st, k, v, 32767, &n) != 0)
			return WN_EINVAL;
		s->padding = (uint32_t)n;
		return 0;
	}
	case K_ENGINE:
	case K_MODE:
	case K_KCPTUN_KEY:
	case K_CRYPT:
	case K_NOCOMP:
	case K_DATASHARD:
	case K_PARITYSHARD:
	case K_SMUXVER:
	case K_SNDWND:
	case K_RCVWND:
	case K_MTU:
	case K_MAX_STREAMS:
		return set_engine(st, k, v, &s->engine);
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
		if (set_endpoint(st, k, v,
		                 WN_SCHEME_UDP | WN_SCHEME_TCP | WN_SCHEME_TLS,
		                 WN_SCHEME_NONE, CARRIER_EXPECT, &ep) != 0)
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
	case K_LOG_LEVEL:
		return set_log_level(st, k, v, &c->log_level);
	case K_API:
		if (set_endpoint(st, k, v, WN_SCHEME_TCP, WN_SCHEME_TCP,
		                 API_EXPECT, &c->api) != 0)
			return WN_EINVAL;
		c->has_api = true;
		return 0;
	case K_KEEPALIVE:
		return set_duration(st, k, v, &c->keepalive_ms);
	case K_DEAD_PEER:
		return set_duration(st, k, v, &c->dead_peer_timeout_ms);
	case K_SNI:
		return set_name(st, k, v, c->sni, sizeof(c->sni));
	case K_ROTATE_AFTER:
		return set_duration(st, k, v, &c->rotate_after_ms);
	case K_ROTATE_BYTES:
		return set_size(st, k, v, UINT64_MAX, &c->rotate_bytes);
	case K_FAILOVER_AFTER:
		return set_duration(st, k, v, &c->failover_ms);
	case K_CONNS:
		return set_uint(st, k, v, &c->conns);
	case K_PROBE_INTERVAL:
		return set_duration(st, k, v, &c->probe_ms);
	case K_PADDING: {
		uint64_t n;
		if (set_size(st, k, v, 32767, &n) != 0)
			return WN_EINVAL;
		c->padding = (uint32_t)n;
		return 0;
	}
	case K_ENGINE:
	case K_MODE:
	case K_KCPTUN_KEY:
	case K_CRYPT:
	case K_NOCOMP:
	case K_DATASHARD:
	case K_PARITYSHARD:
	case K_SMUXVER:
	case K_SNDWND:
	case K_RCVWND:
	case K_MTU:
	case K_MAX_STREAMS:
		return set_engine(st, k, v, &c->engine);
	default:
		return WN_EINTERNAL;
	}
}

static int set_forward_key(const struct setting *st, struct wn_forward_cfg *f,
                           const struct keydef *k, const char *v)
{
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
static int parse_user(const char *v, size_t n, struct wn_socks5_user *u,
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

static int add_user(struct wn_config *cfg, struct wn_socks5_cfg *sk,
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
	case K_EAGER:
		if (!strcmp(v, "yes") || !strcmp(v, "true") ||
		    !strcmp(v, "on")) {
			sk->eager = true;
		} else if (!strcmp(v, "no") || !strcmp(v, "false") ||
		           !strcmp(v, "off")) {
			sk->eager = false;
		} else {
			bad(st, k, v, "expected yes or no");
			return WN_EINVAL;
		}
		return 0;
	case K_USER:
		rc = parse_user(v, strlen(v), &u, &why);
		if (rc == 0)
			rc = add_user(st->cfg, sk, &u, &why);
		memset(&u, 0, sizeof(u));
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
static int apply(const struct setting *st, unsigned sec,
                 struct wn_forward_cfg *fwd, struct wn_socks5_cfg *sk,
                 const char *name, const char *v)
{
	const struct keydef *k = find_key(sec, name);
	if (!k) {
		wn_config_diag(st->cfg, "%s: [%s] unknown key \"%s\"",
		               st->origin, st->secname, name);
		return WN_ECONFIG;
	}
	uint64_t *set_mask, *file_mask;
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
	uint64_t bit = 1ull << key_bit(k);
	if (!(k->flags & F_REPEAT) && (*set_mask & bit) && st->from_file &&
	    (*file_mask & bit)) {
		wn_config_diag(st->cfg,
		               "%s: [%s] %s is set twice (it takes one value)",
		               st->origin, st->secname, k->name);
		return WN_ECONFIG;
	}
	int rc;
	if (sec == SEC_SERVER)
		rc = set_server_key(st, k, v);
	else if (sec == SEC_CLIENT)
		rc = set_client_key(st, k, v);
	else if (sec == SEC_SOCKS5)
		rc = set_socks_key(st, sk, k, v);
	else
		rc = set_forward_key(st, fwd, k, v);
	/* Marked even when the value was bad: it was reported as malformed
	 * and must not also be reported as missing. */
	*set_mask |= bit;
	if (st->from_file)
		*file_mask |= bit;
	return rc != 0 ? WN_ECONFIG : 0;
}

/* ---- sections -------------------------------------------------------- */

static struct wn_forward_cfg *find_forward(struct wn_config *cfg,
                                           const char *name)
{
	for (size_t i = 0; i < cfg->n_forwards; i++)
		if (strcmp(cfg->forwards[i].name, name) == 0)
			return &cfg->forwards[i];
	return NULL;
}

static bool forward_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > WN_FORWARD_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* State of one file being parsed: the reader feeds inih line by line, so
 * it knows the line number of each key (this inih build has no
 * INI_HANDLER_LINENO) and checks what inih would silently accept. */
struct parse {
	struct wn_config *cfg;
	const char *name;
	const char *dir;
	const char *text;
	size_t len, off;
	unsigned line;
	size_t diags_before;
	/* The section the reader saw last; keys in a bad section are
	 * ignored so one mistake does not cascade. */
	unsigned sec; /* 0: none yet or invalid */
	char secname[WN_FORWARD_NAME_MAX + 16];
	bool seen_section;
	size_t fwd_idx;
	size_t socks_idx;
};

static void perr(struct parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void perr(struct parse *p, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wn_config_diag(p->cfg, "%s:%u: %s", p->name, p->line, msg);
}

static struct wn_socks5_cfg *find_socks(struct wn_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_socks; i++)
		if (strcmp(cfg->socks[i].name, name) == 0)
			return &cfg->socks[i];
	return NULL;
}

/* A new SOCKS5 proxy with its defaults; NULL when out of memory. */
static struct wn_socks5_cfg *new_socks(struct wn_config *cfg, const char *name,
                                       const char *origin)
{
	struct wn_socks5_cfg *sk =
	    grow(cfg, &cfg->socks, &cfg->n_socks, sizeof(*sk));

	if (!sk)
		return NULL;
	snprintf(sk->name, sizeof(sk->name), "%s", name);
	snprintf(sk->origin, sizeof(sk->origin), "%s", origin);
	sk->eager = true;
	return sk;
}

static void open_socks_section(struct parse *p, const char *sname)
{
	struct wn_socks5_cfg *sk;
	char origin[WN_ORIGIN_MAX];

	while (*sname == ' ')
		sname++;
	if (!*sname) {
		perr(p, "a socks5 section needs a name: [socks5 NAME]");
		return;
	}
	if (!forward_name_valid(sname)) {
		perr(p,
		     "socks5 name \"%s\" must be 1-63 letters, digits, '-', "
		     "'_' or '.'",
		     sname);
		return;
	}
	sk = find_socks(p->cfg, sname);
	if (sk) {
		perr(p, "section [socks5 %s] appears twice (first at %s)",
		     sname, sk->origin);
		return;
	}
	snprintf(origin, sizeof(origin), "%s:%u", p->name, p->line);
	if (!new_socks(p->cfg, sname, origin))
		return;
	p->sec = SEC_SOCKS5;
	p->socks_idx = p->cfg->n_socks - 1;
	snprintf(p->secname, sizeof(p->secname), "socks5 %s", sname);
}

static void open_section(struct parse *p, const char *s, size_t n)
{
	char name[128];
	p->sec = 0;
	p->seen_section = true;
	if (n >= sizeof(name)) {
		perr(p, "section name too long");
		return;
	}
	memcpy(name, s, n);
	name[n] = '\0';
	if (strcmp(name, "server") == 0 || strcmp(name, "client") == 0) {
		bool server = name[0] == 's';
		struct wn_server_cfg *sv = &p->cfg->server;
		struct wn_client_cfg *cl = &p->cfg->client;
		bool *present = server ? &sv->present : &cl->present;
		char *origin = server ? sv->origin : cl->origin;
		if (*present && origin[0]) {
			perr(p, "section [%s] appears twice (first at %s)",
			     name, origin);
			return;
		}
		*present = true;
		snprintf(origin, WN_ORIGIN_MAX, "%s:%u", p->name, p->line);
		p->sec = server ? SEC_SERVER : SEC_CLIENT;
		snprintf(p->secname, sizeof(p->secname), "%s",
		         server ? "server" : "client");
		return;
	}
	if (strncmp(name, "forward", 7) == 0 &&
	    (name[7] == '\0' || name[7] == ' ')) {
		const char *fname = name + 7;
		while (*fname == ' ')
			fname++;
		if (!*fname) {
			perr(p,
			     "a forward section needs a name: [forward NAME]");
			return;
		}
		if (!forward_name_valid(fname)) {
			perr(
			    p,
			    "forward name \"%s\" must be 1-63 letters, digits, "
			    "'-', '_' or '.'",
			    fname);
			return;
		}
		struct wn_forward_cfg *f = find_forward(p->cfg, fname);
		if (f) {
			perr(p,
			     "section [forward %s] appears twice (first at "
			     "%s)",
			     fname, f->origin);
			return;
		}
		f = grow(p->cfg, &p->cfg->forwards, &p->cfg->n_forwards,
		         sizeof(*f));
		if (!f)
			return;
		snprintf(f->name, sizeof(f->name), "%s", fname);
		snprintf(f->origin, sizeof(f->origin), "%s:%u", p->name,
		         p->line);
		p->sec = SEC_FORWARD;
		p->fwd_idx = p->cfg->n_forwards - 1;
		snprintf(p->secname, sizeof(p->secname), "forward %s", fname);
		return;
	}
	if (strncmp(name, "socks5", 6) == 0 &&
	    (name[6] == '\0' || name[6] == ' ')) {
		open_socks_section(p, name + 6);
		return;
	}
	perr(p,
	     "unknown section [%s] (expected [server], [client], "
	     "[forward NAME] or [socks5 NAME])",
	     name);
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Checks one raw line (without its newline). Returns true if it should be
 * handed to inih as is, false if it was handled or rejected here. */
static bool check_line(struct parse *p, const char *s, size_t n)
{
	while (n > 0 &&
	       (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	if (n == 0 || s[0] == ';' || s[0] == '#')
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close) {
			perr(p, "expected ']' to close the section name");
			p->sec = 0;
			return false;
		}
		const char *rest = close + 1;
		size_t rn = n - (size_t)(rest - s);
		while (rn > 0 && (*rest == ' ' || *rest == '\t')) {
			rest++;
			rn--;
		}
		if (rn > 0 && *rest != ';' && *rest != '#') {
			perr(p, "unexpected text after the section name");
			p->sec = 0;
			return false;
		}
		open_section(p, s + 1, (size_t)(close - s - 1));
		return false;
	}
	const char *eq = memchr(s, '=', n);
	const char *colon = memchr(s, ':', n);
	if (!eq || (colon && colon < eq)) {
		perr(p, "expected KEY = VALUE");
		return false;
	}
	size_t kn = (size_t)(eq - s);
	while (kn > 0 && (s[kn - 1] == ' ' || s[kn - 1] == '\t'))
		kn--;
	if (kn == 0) {
		perr(p, "expected a key name before '='");
		return false;
	}
	for (size_t i = 0; i < kn; i++)
		if (!key_char(s[i])) {
			perr(p,
			     "key \"%.*s\" must be lower-case letters, digits "
			     "and '-'",
			     (int)kn, s);
			return false;
		}
	if (p->sec == 0) {
		if (!p->seen_section)
			perr(p, "key \"%.*s\" is outside any section", (int)kn,
			     s);
		return false; /* in a bad section: already reported */
	}
	return true;
}

/* inih reader: returns the next line, pre-checked. inih's own line buffer
 * holds INI_MAX_LINE (200) bytes; longer lines are rejected here. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	while (p->off < p->len) {
		const char *s = p->text + p->off;
		const char *nl = memchr(s, '\n', p->len - p->off);
		size_t n = nl ? (size_t)(nl - s) : p->len - p->off;
		p->off += n + (nl ? 1 : 0);
		p->line++;
		if (memchr(s, '\0', n)) {
			perr(p, "NUL byte in line");
			continue;
		}
		/* Leading blanks are dropped so inih never treats an indented
		 * line as a continuation of the previous value. */
		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		if (p->line == 1 && n >= 3 &&
		    memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			n -= 3;
		}
		if (n + 2 > (size_t)num) {
			perr(p, "line longer than %d characters", num - 2);
			continue;
		}
		if (!check_line(p, s, n))
			continue;
		memcpy(str, s, n);
		str[n] = '\n';
		str[n + 1] = '\0';
		return str;
	}
	return NULL;
}

static int handler(void *user, const char *section, const char *name,
                   const char *value)
{
	struct parse *p = user;
	char origin[WN_ORIGIN_MAX];
	snprintf(origin, sizeof(origin), "%s:%u", p->name, p->line);
	struct setting st = {
	    .cfg = p->cfg,
	    .origin = origin,
	    .secname = p->secname,
	    .dir = p->dir,
	    .from_file = true,
	};
	(void)section; /* the reader tracks sections with their lines */
	struct wn_forward_cfg *f =
	    p->sec == SEC_FORWARD ? &p->cfg->forwards[p->fwd_idx] : NULL;
	struct wn_socks5_cfg *sk =
	    p->sec == SEC_SOCKS5 ? &p->cfg->socks[p->socks_idx] : NULL;
	apply(&st, p->sec, f, sk, name, value);
	return 1; /* keep going: report every problem */
}

int wn_config_parse_string(struct wn_config *cfg, const char *name,
                           const char *dir, const char *text, size_t len)
{
	struct parse p = {
	    .cfg = cfg,
	    .name = name,
	    .dir = dir,
	    .text = text,
	    .len = len,
	};
	size_t before = cfg->n_diags;
	int rc = ini_parse_stream(reader, &p, handler, &p);
	if (rc > 0 && cfg->n_diags == before)
		wn_config_diag(cfg, "%s: syntax error", name);
	else if (rc < 0)
		wn_config_diag(cfg, "%s: cannot parse (out of memory)", name);
	return cfg->n_diags == before && !cfg->oom ? 0 : WN_ECONFIG;
}

int wn_config_parse_file(struct wn_config *cfg, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		int err = errno;
		wn_config_diag(cfg, "%s: cannot open: %s", path, strerror(err));
		return wn_err_from_errno(err);
	}
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			if (cap >= (1u << 20)) {
				free(buf);
				buf = NULL;
				fclose(f);
				wn_config_diag(cfg, "%s: larger than 1 MiB",
				               path);
				return WN_ECONFIG;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int rerr = ferror(f);
	fclose(f);
	if (!buf || rerr) {
		free(buf);
		wn_config_diag(cfg, "%s: cannot read", path);
		return WN_EIO;
	}
	char dir[WN_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int rc =
	    wn_config_parse_string(cfg, path, slash ? dir : NULL, buf, len);
	free(buf);
	return rc;
}

/* ---- command-line flags --------------------------------------------- */

bool wn_config_is_flag(enum wn_role role, const char *key)
{
	unsigned sec = role == WN_ROLE_SERVER   ? SEC_SERVER
	               : role == WN_ROLE_CLIENT ? SEC_CLIENT
	                                        : 0;
	if (role == WN_ROLE_CLIENT &&
	    (strcmp(key, "L") == 0 || strcmp(key, "D") == 0))
		return true;
	return sec && find_key(sec, key) != NULL;
}

static int add_cli_forward(struct wn_config *cfg, const char *flag,
                           const char *spec)
{ /* LISTEN=TARGET; the listen side may itself contain ':' but never
	 * '=', so the first '=' splits. A bare LISTEN is for engine kcptun,
	 * whose server has the one target (validate_forwards checks). */
	const char *eq = strchr(spec, '=');
	struct wn_endpoint bare;
	const char *why;
	if (!eq && wn_endpoint_parse(spec, WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                             WN_SCHEME_TCP, WN_EP_PORT_ZERO_OK, &bare,
	                             &why) == 0)
		eq = spec + strlen(spec);
	if (!eq || eq == spec || (*eq && !eq[1])) {
		wn_config_diag(cfg,
		               "%s: expected LISTEN=TARGET, e.g. "
		               "127.0.0.1:2222=10.0.0.5:22, got \"%s\"",
		               flag, spec);
		return WN_ECONFIG;
	}
	struct wn_forward_cfg *f =
	    grow(cfg, &cfg->forwards, &cfg->n_forwards, sizeof(*f));
	if (!f)
		return WN_ENOMEM;
	unsigned idx = 0;
	for (size_t i = 0; i < cfg->n_forwards; i++)
		if (cfg->forwards[i].name[0] == 'L')
			idx++;
	snprintf(f->name, sizeof(f->name), "L%u", idx + 1);
	snprintf(f->origin, sizeof(f->origin), "%s", flag);
	char secname[WN_FORWARD_NAME_MAX + 16];
	snprintf(secname, sizeof(secname), "forward %s", f->name);
	struct setting st = {.cfg = cfg, .origin = flag, .secname = secname};
	char listen[1024];
	snprintf(listen, sizeof(listen), "%.*s", (int)(eq - spec), spec);
	int rc = apply(&st, SEC_FORWARD, f, NULL, "listen", listen);
	if (*eq && apply(&st, SEC_FORWARD, f, NULL, "target", eq + 1) != 0)
		rc = WN_ECONFIG;
	return rc;
}

/* -D LISTEN: a SOCKS5 proxy named D1, D2, ... with the defaults. */
static int add_cli_socks(struct wn_config *cfg, const char *flag,
                         const char *listen)
{
	char name[16], secname[WN_FORWARD_NAME_MAX + 16];
	unsigned idx = 0;
	struct wn_socks5_cfg *sk;

	for (size_t i = 0; i < cfg->n_socks; i++)
		if (cfg->socks[i].name[0] == 'D')
			idx++;
	snprintf(name, sizeof(name), "D%u", idx + 1);
	sk = new_socks(cfg, name, flag);
	if (!sk)
		return WN_ENOMEM;
	snprintf(secname, sizeof(secname), "socks5 %s", name);
	struct setting st = {.cfg = cfg, .origin = flag, .secname = secname};
	return apply(&st, SEC_SOCKS5, NULL, sk, "listen", listen);
}

int wn_config_set_flag(struct wn_config *cfg, enum wn_role role,
                       const char *flag, const char *key, const char *value)
{
	if (role == WN_ROLE_CLIENT && strcmp(key, "L") == 0)
		return add_cli_forward(cfg, flag, value);
	if (role == WN_ROLE_CLIENT && strcmp(key, "D") == 0) {
		cfg->client.present = true;
		return add_cli_socks(cfg, flag, value);
	}
	unsigned sec = role == WN_ROLE_SERVER ? SEC_SERVER : SEC_CLIENT;
	struct wn_server_cfg *s = &cfg->server;
	struct wn_client_cfg *c = &cfg->client;
	if (sec == SEC_SERVER)
		s->present = true;
	else
		c->present = true;
	struct setting st = {
	    .cfg = cfg,
	    .origin = flag,
	    .secname = sec == SEC_SERVER ? "server" : "client",
	};
	const struct keydef *k = find_key(sec, key);
	if (!k) {
		wn_config_diag(cfg, "%s: unknown option for warren %s", flag,
		               st.secname);
		return WN_ECONFIG;
	}
	return apply(&st, sec, NULL, NULL, key, value);
}

/* ---- validation ------------------------------------------------------ */

static bool has(uint64_t mask, unsigned sec, const char *name)
{
	const struct keydef *k = find_key(sec, name);
	return k && (mask & (1ull << key_bit(k)));
}

static const char *origin_or(const char *origin, const char *dflt)
{
	return origin[0] ? origin : dflt;
}

/* The kcptun engine's settings that only make sense together. */
static void validate_kcptun(struct wn_config *cfg, struct wn_engine_cfg *e,
                            const char *o, const char *sec)
{
	if (!e->mode_set)
		snprintf(e->mode, sizeof(e->mode), "fast"); /* kcptun's */
	if ((e->datashard == 0) != (e->parityshard == 0))
		wn_config_diag(cfg,
		               "%s: [%s] datashard and parityshard are both "
		               "0 (no FEC) or both above 0",
		               o, sec);
	if (e->datashard + e->parityshard > 255)
		wn_config_diag(cfg,
		               "%s: [%s] datashard + parityshard must not "
		               "exceed 255",
		               o, sec);
}

static void validate_server(struct wn_config *cfg)
{
	struct wn_server_cfg *s = &cfg->server;
	const char *o = origin_or(s->origin, "server");
	if (s->engine.kind == WN_ENGINE_KCPTUN) {
		validate_kcptun(cfg, &s->engine, o, "server");
		if (!has(s->set_mask, SEC_SERVER, "listen"))
			wn_config_diag(cfg,
			               "%s: [server] listen is required "
			               "(e.g. listen = udp://0.0.0.0:29900)",
			               o);
		if (!has(s->set_mask, SEC_SERVER, "target"))
			wn_config_diag(
			    cfg,
			    "%s: [server] engine kcptun needs target "
			    "(kcptun-server's -t): every stream goes "
			    "there",
			    o);
		return;
	}
	if (!has(s->set_mask, SEC_SERVER, "listen"))
		wn_config_diag(cfg,
		               "%s: [server] listen is required "
		               "(e.g. listen = udp://0.0.0.0:4433)",
		               o);
	if (!has(s->set_mask, SEC_SERVER, "key"))
		wn_config_diag(cfg,
		               "%s: [server] key is required (a private key "
		               "file made by `warren genkey`)",
		               o);
	if (!has(s->set_mask, SEC_SERVER, "allow-client"))
		wn_config_diag(cfg,
		               "%s: [server] allow-client is required: the "
		               "server accepts only the client keys it lists",
		               o);
	if (!has(s->set_mask, SEC_SERVER, "allow") &&
	    !has(s->set_mask, SEC_SERVER, "target"))
		wn_config_diag(cfg,
		               "%s: [server] needs allow (targets clients may "
		               "reach) or target (one fixed target); the "
		               "server is never an open proxy",
		               o);
	if (has(s->set_mask, SEC_SERVER, "tls-cert") !=
	    has(s->set_mask, SEC_SERVER, "tls-key"))
		wn_config_diag(cfg,
		               "%s: [server] tls-cert and tls-key go together "
		               "(or neither, for a generated certificate)",
		               o);
	if (has(s->set_mask, SEC_SERVER, "allow") &&
	    has(s->set_mask, SEC_SERVER, "target"))
		wn_config_diag(cfg,
		               "%s: [server] allow and target exclude each "
		               "other: use target for one fixed target, allow "
		               "for targets chosen by clients",
		               o);
}

static void validate_client(struct wn_config *cfg)
{
	struct wn_client_cfg *c = &cfg->client;
	const char *o = origin_or(c->origin, "client");
	bool kt = c->engine.kind == WN_ENGINE_KCPTUN;
	if (kt)
		validate_kcptun(cfg, &c->engine, o, "client");
	if (!has(c->set_mask, SEC_CLIENT, "server"))
		wn_config_diag(cfg,
		               "%s: [client] server is required (e.g. server "
		               "= udp://vpn.example.org:4433)",
		               o);
	if (!kt && !has(c->set_mask, SEC_CLIENT, "server-key"))
		wn_config_diag(cfg,
		               "%s: [client] server-key is required: the "
		               "server's public key, from `warren pubkey`",
		               o);
	if (!kt && !has(c->set_mask, SEC_CLIENT, "key"))
		wn_config_diag(cfg,
		               "%s: [client] key is required (a private key "
		               "file made by `warren genkey`)",
		               o);
	if (c->keepalive_ms >= c->dead_peer_timeout_ms)
		wn_config_diag(cfg,
		               "%s: [client] keepalive (%ums) must be shorter "
		               "than dead-peer-timeout (%ums)",
		               o, c->keepalive_ms, c->dead_peer_timeout_ms);
	if (kt && cfg->n_socks > 0)
		wn_config_diag(
		    cfg,
		    "%s: [client] engine kcptun cannot carry SOCKS5: "
		    "kcptun streams name no target (the kcptun "
		    "server sends every stream to its -t)",
		    o);
	if (cfg->n_forwards == 0 && cfg->n_socks == 0)
		wn_config_diag(
		    cfg,
		    "%s: [client] has nothing to do: add a [forward "
		    "NAME] section, -L LISTEN=TARGET, a [socks5 NAME] "
		    "section or -D LISTEN",
		    o);
}

static bool same_listen(const struct wn_endpoint *a,
                        const struct wn_endpoint *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == WN_HOST_UNIX)
		return strcmp(a->path, b->path) == 0;
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void validate_forwards(struct wn_config *cfg)
{
	for (size_t i = 0; i < cfg->n_forwards; i++) {
		struct wn_forward_cfg *f = &cfg->forwards[i];
		if (!has(f->set_mask, SEC_FORWARD, "listen"))
			wn_config_diag(cfg,
			               "%s: [forward %s] listen is required",
			               f->origin, f->name);
		if (!has(f->set_mask, SEC_FORWARD, "target") &&
		    cfg->client.engine.kind != WN_ENGINE_KCPTUN)
			wn_config_diag(cfg,
			               "%s: [forward %s] target is required "
			               "(-L LISTEN=TARGET)",
			               f->origin, f->name);
		for (size_t j = 0; j < i; j++) {
			struct wn_forward_cfg *g = &cfg->forwards[j];
			if (f->has_listen && g->has_listen &&
			    same_listen(&f->listen, &g->listen))
				wn_config_diag(
				    cfg,
				    "%s: [forward %s] listens on the "
				    "same address as [forward %s] "
				    "(%s)",
				    f->origin, f->name, g->name, g->origin);
		}
	}
}

static void validate_socks(struct wn_config *cfg)
{
	for (size_t i = 0; i < cfg->n_socks; i++) {
		struct wn_socks5_cfg *sk = &cfg->socks[i];
		if (!has(sk->set_mask, SEC_SOCKS5, "listen"))
			wn_config_diag(cfg,
			               "%s: [socks5 %s] listen is required",
			               sk->origin, sk->name);
		if (!sk->has_listen)
			continue;
		for (size_t j = 0; j < i; j++)
			if (cfg->socks[j].has_listen &&
			    same_listen(&sk->listen, &cfg->socks[j].listen))
				wn_config_diag(
				    cfg,
				    "%s: [socks5 %s] listens on the same "
				    "address as [socks5 %s] (%s)",
				    sk->origin, sk->name, cfg->socks[j].name,
				    cfg->socks[j].origin);
		for (size_t j = 0; j < cfg->n_forwards; j++)
			if (cfg->forwards[j].has_listen &&
			    same_listen(&sk->listen, &cfg->forwards[j].listen))
				wn_config_diag(
				    cfg,
				    "%s: [socks5 %s] listens on the same "
				    "address as [forward %s] (%s)",
				    sk->origin, sk->name, cfg->forwards[j].name,
				    cfg->forwards[j].origin);
	}
}

int wn_config_validate(struct wn_config *cfg, enum wn_role role)
{
	size_t before = cfg->n_diags;
	bool any = cfg->server.present || cfg->client.present ||
	           cfg->n_forwards > 0 || cfg->n_socks > 0;
	if (role == WN_ROLE_NONE && !any)
		wn_config_diag(cfg, "nothing configured: expected a [server] "
		                    "or [client] section");
	if (role == WN_ROLE_SERVER ||
	    (role == WN_ROLE_NONE && cfg->server.present))
		validate_server(cfg);
	if (role == WN_ROLE_CLIENT ||
	    (role == WN_ROLE_NONE && cfg->client.present))
		validate_client(cfg);
	if (role != WN_ROLE_SERVER) {
		validate_forwards(cfg);
		validate_socks(cfg);
	}
	return cfg->n_diags == before && !cfg->oom ? 0 : WN_ECONFIG;
}

static void load_one(struct wn_config *cfg, const char *sec, const char *origin,
                     const char *path, struct wn_identity *out)
{
	struct wn_identity tmp;
	char why[256];
	int rc = wn_keyfile_load(path, out ? out : &tmp, why, sizeof(why));
	if (rc != 0)
		wn_config_diag(cfg, "%s: [%s] key: %s: %s", origin, sec, path,
		               why);
	wn_identity_wipe(&tmp);
}

int wn_config_load_keys(struct wn_config *cfg, enum wn_role role,
                        struct wn_identity *server_id,
                        struct wn_identity *client_id)
{
	size_t before = cfg->n_diags;
	if ((role == WN_ROLE_SERVER || role == WN_ROLE_NONE) &&
	    cfg->server.key_path[0])
		load_one(cfg, "server", cfg->server.key_origin,
		         cfg->server.key_path, server_id);
	if ((role == WN_ROLE_CLIENT || role == WN_ROLE_NONE) &&
	    cfg->client.key_path[0])
		load_one(cfg, "client", cfg->client.key_origin,
		         cfg->client.key_path, client_id);
	return cfg->n_diags == before ? 0 : WN_ECONFIG;
}

/* Reads one users-file into sk. Lines are "NAME:PASSWORD". */
static void load_users_file(struct wn_config *cfg, struct wn_socks5_cfg *sk)
{
	const char *path = sk->users_file;
	FILE *f = fopen(path, "r");
	char line[WN_SOCKS5_CRED_LEN * 2 + 8];
	struct wn_socks5_user u;
	const char *why;
	unsigned lineno = 0;
	size_t n;

	struct stat st;

	if (!f) {
		wn_config_diag(cfg, "%s: [socks5 %s] users-file: %s: %s",
		               sk->users_file_origin, sk->name, path,
		               strerror(errno));
		return;
	}
	/* Passwords, like private keys, are for the owner's eyes only. */
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & (S_IRWXG | S_IRWXO))) {
		wn_config_diag(cfg,
		               "%s: [socks5 %s] users-file: %s: not a regular "
		               "file, or accessible by group or others (mode "
		               "%04o; run: chmod 600 FILE)",
		               sk->users_file_origin, sk->name, path,
		               (unsigned)(st.st_mode & 07777));
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			wn_config_diag(cfg, "%s:%u: line too long", path,
			               lineno);
			break;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		why = NULL;
		if (parse_user(line, n, &u, &why) != 0 ||
		    add_user(cfg, sk, &u, &why) != 0)
			wn_config_diag(cfg, "%s:%u: %s", path, lineno, why);
		memset(&u, 0, sizeof(u));
	}
	memset(line, 0, sizeof(line));
	fclose(f);
}

int wn_config_load_users(struct wn_config *cfg)
{
	size_t before = cfg->n_diags;

	for (size_t i = 0; i < cfg->n_socks; i++)
		if (cfg->socks[i].users_file[0])
			load_users_file(cfg, &cfg->socks[i]);
	return cfg->n_diags == before && !cfg->oom ? 0 : WN_ECONFIG;
}

size_t wn_config_describe(enum wn_role role, char *buf, size_t cap)
{
	unsigned sec = role == WN_ROLE_SERVER ? SEC_SERVER : SEC_CLIENT;
	size_t len = 0;
	for (size_t i = 0; i < N_KEYS; i++) {
		if (!(keys[i].sections & sec))
			continue;
		char opt[96];
		snprintf(opt, sizeof(opt), "--%s %s", keys[i].name,
		         keys[i].arg);
		int n = snprintf(buf + (len < cap ? len : cap),
		                 len < cap ? cap - len : 0, "  %-38s %s\n", opt,
		                 keys[i].help);
		if (n > 0)
			len += (size_t)n;
	}
	if (role == WN_ROLE_CLIENT) {
		int n = snprintf(buf + (len < cap ? len : cap),
		                 len < cap ? cap - len : 0, "  %-38s %s\n",
		                 "-L [tcp://|unix:]LISTEN=TARGET",
		                 "forward LISTEN to TARGET via the server "
		                 "(repeatable)");
		if (n > 0)
			len += (size_t)n;
		n = snprintf(buf + (len < cap ? len : cap),
		             len < cap ? cap - len : 0, "  %-38s %s\n",
		             "-D [tcp://|unix:]LISTEN",
		             "a SOCKS5 proxy on LISTEN, eager, no "
		             "authentication (repeatable)");
		if (n > 0)
			len += (size_t)n;
	}
	return len;
}
