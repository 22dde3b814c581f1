/* Config checks after parsing: required keys and cross-key rules, then the
 * files a config names (key files, SOCKS5 users-files). */
#include "app/config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/keyfile.h"
#include "util/err.h"

/* ---- validation ------------------------------------------------------ */

static bool has(const struct wn_cfg_keyset *set, unsigned sec, const char *name)
{
	const struct keydef *k = find_key(sec, name);
	return k && key_in(set, k);
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

/* A kcptun server is only as private as its key: kcptun's default one is
 * printed in kcptun's documentation, and crypt none has no key at all.
 * Either way any stranger can reach target through the server, and spoofed
 * packets make it open sessions. Refused unless the user says so. */
static void validate_kcptun_secret(struct wn_config *cfg,
                                   const struct wn_engine_cfg *e, const char *o)
{
	if (e->kcptun_insecure)
		return;
	if (strcmp(e->crypt, "none") == 0)
		wn_config_diag(
		    cfg,
		    "%s: [server] crypt = none: packets carry only a "
		    "checksum, so anyone can use this server to "
		    "reach target; pick a cipher, or set "
		    "kcptun-insecure = yes to serve anyway",
		    o);
	else if (strcmp(e->kcptun_key, WN_KCPTUN_DEFAULT_KEY) == 0)
		wn_config_diag(cfg,
		               "%s: [server] kcptun-key is kcptun's default, "
		               "which everyone knows, so anyone can use this "
		               "server to reach target; set kcptun-key to a "
		               "secret both ends share, or kcptun-insecure = "
		               "yes to serve anyway",
		               o);
}

/* Engine keys the configured engine has no use for: refused rather than
 * silently ignored (a user setting crypt with engine quic gets no cipher
 * and should hear so). */
static void validate_engine_keys(struct wn_config *cfg,
                                 const struct wn_cfg_keyset *mask, unsigned sec,
                                 const char *secname,
                                 const struct wn_engine_cfg *e, const char *o)
{
	static const char *const kcp_keys[] = {"mode", "sndwnd", "rcvwnd",
	                                       "mtu"};
	static const char *const kcptun_keys[] = {
	    "kcptun-key",  "crypt",   "nocomp",         "datashard",
	    "parityshard", "smuxver", "kcptun-insecure"};
	static const char *const names[] = {"quic", "kcp", "kcptun"};
	const char *engine = names[e->kind];
	size_t i;

	if (e->kind == WN_ENGINE_QUIC)
		for (i = 0; i < sizeof(kcp_keys) / sizeof(kcp_keys[0]); i++)
			if (has(mask, sec, kcp_keys[i]))
				wn_config_diag(
				    cfg,
				    "%s: [%s] %s is a key of engines "
				    "kcp and kcptun; engine quic "
				    "would ignore it",
				    o, secname, kcp_keys[i]);
	if (e->kind == WN_ENGINE_KCPTUN) {
		/* kcptun's only secret is kcptun-key, and its server sends
		 * every stream to target: warren's keys and rules mean
		 * nothing there. */
		static const char *const warren_keys[] = {
		    "key",   "server-key",       "allow-client",
		    "allow", "sessions-per-key", "streams-per-key"};
		for (i = 0; i < sizeof(warren_keys) / sizeof(warren_keys[0]);
		     i++)
			if (has(mask, sec, warren_keys[i]))
				wn_config_diag(
				    cfg,
				    "%s: [%s] %s: engine kcptun would ignore "
				    "it (its one secret is kcptun-key; its "
				    "server sends every stream to target)",
				    o, secname, warren_keys[i]);
		return;
	}
	if (e->kind == WN_ENGINE_KCP && has(mask, sec, "sessions-per-key"))
		wn_config_diag(
		    cfg,
		    "%s: [%s] sessions-per-key: engine kcp holds one "
		    "session per client key (a new handshake "
		    "replaces the old), so it would ignore it",
		    o, secname);
	for (i = 0; i < sizeof(kcptun_keys) / sizeof(kcptun_keys[0]); i++)
		if (has(mask, sec, kcptun_keys[i]))
			wn_config_diag(cfg,
			               "%s: [%s] %s is a key of engine "
			               "kcptun; engine %s would ignore "
			               "it",
			               o, secname, kcptun_keys[i], engine);
}

/* The send budget must leave room for what one stream may always buffer
 * (WN_SB_FLOOR in src/engine/stream_base.h); the total holds a session. */
static void validate_buffers(struct wn_config *cfg, const char *secname,
                             const struct wn_engine_cfg *e, const char *o)
{
	const uint64_t floor = 64 * 1024;

	if (e->session_buffer && e->session_buffer < floor)
		wn_config_diag(cfg,
		               "%s: [%s] session-buffer must be at least 64K",
		               o, secname);
	if (e->total_buffer && e->total_buffer < floor)
		wn_config_diag(cfg,
		               "%s: [%s] total-buffer must be at least 64K", o,
		               secname);
}

/* Where key `name` of a section was set, for a diagnostic: "FILE:LINE"
 * (the file of the section's origin), or "--NAME" for a flag. */
static const char *key_at(char *buf, size_t cap, const char *sec_origin,
                          const uint32_t *key_line, unsigned sec,
                          const char *name)
{
	const struct keydef *k = find_key(sec, name);
	const char *colon = strrchr(sec_origin, ':');
	uint32_t line = k ? key_line[key_bit(k)] : 0;

	if (line && colon)
		snprintf(buf, cap, "%.*s:%u", (int)(colon - sec_origin),
		         sec_origin, (unsigned)line);
	else
		snprintf(buf, cap, "--%s", name);
	return buf;
}

/* kcptun judges a dead peer as kcptun's smux does, by a 30 s keepalive
 * timeout (a kcptun peer pings only every 10 s): a shorter timeout would
 * drop idle sessions a kcptun peer keeps, so it is refused rather than
 * quietly raised. */
#define KCPTUN_MIN_TIMEOUT_MS 30000

static void refuse_short_kcptun_timeout(struct wn_config *cfg,
                                        const struct wn_cfg_keyset *mask,
                                        const uint32_t *key_line, unsigned sec,
                                        const char *secname, const char *o,
                                        const char *name, uint32_t ms)
{
	char at[300];

	if (!has(mask, sec, name) || ms >= KCPTUN_MIN_TIMEOUT_MS)
		return;
	wn_config_diag(cfg,
	               "%s: [%s] %s = %ums: engine kcptun needs at least "
	               "30s (kcptun's smux keepalive timeout; its peers "
	               "ping every 10 s)",
	               key_at(at, sizeof(at), o, key_line, sec, name), secname,
	               name, ms);
}

/* The carriers the endpoints use: bits of WN_SCHEME_*. */
static unsigned schemes_of(const struct wn_endpoint *eps, size_t n)
{
	unsigned m = 0;

	for (size_t i = 0; i < n; i++)
		m |= (unsigned)eps[i].scheme;
	return m;
}

/* Keys of one carrier kind, set while no endpoint of the section uses
 * that carrier: each would be a silent no-op, so each is refused. */
static void refuse_without(struct wn_config *cfg,
                           const struct wn_cfg_keyset *mask,
                           const uint32_t *key_line, unsigned sec,
                           const char *secname, const char *o,
                           const char *const *keys, size_t n, const char *why)
{
	char at[WN_ORIGIN_MAX + 16];

	for (size_t i = 0; i < n; i++)
		if (has(mask, sec, keys[i]))
			wn_config_diag(
			    cfg, "%s: [%s] %s: %s; remove it",
			    key_at(at, sizeof(at), o, key_line, sec, keys[i]),
			    secname, keys[i], why);
}

#define NKEYS(a) (sizeof(a) / sizeof(a[0]))

/* The server's carrier knobs against its listeners. */
static void validate_server_carriers(struct wn_config *cfg, const char *o)
{
	static const char *const tls_keys[] = {"tls-cert", "tls-key",
	                                       "fallback", "sni"};
	static const char *const stream_keys[] = {"idle-close", "max-conns",
	                                          "padding"};
	struct wn_server_cfg *s = &cfg->server;
	unsigned m = schemes_of(s->listen, s->n_listen);
	char at[WN_ORIGIN_MAX + 16];

	if (!(m & WN_SCHEME_TLS))
		refuse_without(cfg, &s->set_mask, s->key_line, SEC_SERVER,
		               "server", o, tls_keys, NKEYS(tls_keys),
		               "a key of tls listeners, and no listen is "
		               "tls://");
	else if (has(&s->set_mask, SEC_SERVER, "sni") &&
	         has(&s->set_mask, SEC_SERVER, "tls-cert"))
		wn_config_diag(
		    cfg,
		    "%s: [server] sni: names only the generated "
		    "certificate, and tls-cert replaces it; remove "
		    "sni (the certificate names itself)",
		    key_at(at, sizeof(at), o, s->key_line, SEC_SERVER, "sni"));
	if (!(m & (WN_SCHEME_TCP | WN_SCHEME_TLS)))
		refuse_without(cfg, &s->set_mask, s->key_line, SEC_SERVER,
		               "server", o, stream_keys, NKEYS(stream_keys),
		               "a key of tcp/tls listeners, and every listen "
		               "is udp://");
}

/* The client's carrier and failover knobs against its servers. */
static void validate_client_carriers(struct wn_config *cfg, const char *o)
{
	static const char *const tls_keys[] = {"sni"};
	static const char *const stream_keys[] = {
	    "rotate-after", "rotate-bytes", "conns", "padding"};
	static const char *const several_keys[] = {"failover-after",
	                                           "probe-interval"};
	struct wn_client_cfg *c = &cfg->client;
	unsigned m = schemes_of(c->server, c->n_server);

	if (!(m & WN_SCHEME_TLS))
		refuse_without(cfg, &c->set_mask, c->key_line, SEC_CLIENT,
		               "client", o, tls_keys, NKEYS(tls_keys),
		               "a key of tls servers, and no server is "
		               "tls://");
	if (!(m & (WN_SCHEME_TCP | WN_SCHEME_TLS)))
		refuse_without(cfg, &c->set_mask, c->key_line, SEC_CLIENT,
		               "client", o, stream_keys, NKEYS(stream_keys),
		               "a key of tcp/tls servers, and every server "
		               "is udp://");
	if (c->n_server <= 1)
		refuse_without(cfg, &c->set_mask, c->key_line, SEC_CLIENT,
		               "client", o, several_keys, NKEYS(several_keys),
		               "takes effect with several servers (failover), "
		               "and one is configured");
}

/* Engine kcptun has no identity keys: a tcp/tls carrier would seal its
 * preambles to the all-zero key, which anyone can forge. kcptun itself
 * runs over UDP only. */
static void refuse_kcptun_streams(struct wn_config *cfg,
                                  const struct wn_endpoint *eps, size_t n,
                                  const char *o, const char *secname,
                                  const char *key)
{
	char name[128];

	for (size_t i = 0; i < n; i++)
		if (eps[i].scheme != WN_SCHEME_UDP) {
			wn_endpoint_format(&eps[i], name, sizeof(name));
			wn_config_diag(
			    cfg,
			    "%s: [%s] %s %s: engine kcptun runs over udp:// "
			    "only (a tcp/tls carrier needs warren's keys, "
			    "which kcptun has none of)",
			    o, secname, key, name);
		}
}

static void validate_server(struct wn_config *cfg)
{
	struct wn_server_cfg *s = &cfg->server;
	const char *o = origin_or(s->origin, "server");
	validate_engine_keys(cfg, &s->set_mask, SEC_SERVER, "server",
	                     &s->engine, o);
	validate_buffers(cfg, "server", &s->engine, o);
	validate_server_carriers(cfg, o);
	if (s->engine.kind == WN_ENGINE_KCPTUN) {
		validate_kcptun(cfg, &s->engine, o, "server");
		validate_kcptun_secret(cfg, &s->engine, o);
		refuse_short_kcptun_timeout(cfg, &s->set_mask, s->key_line,
		                            SEC_SERVER, "server", o,
		                            "idle-timeout", s->idle_timeout_ms);
		refuse_kcptun_streams(cfg, s->listen, s->n_listen, o, "server",
		                      "listen");
		if (!has(&s->set_mask, SEC_SERVER, "listen"))
			wn_config_diag(cfg,
			               "%s: [server] listen is required "
			               "(e.g. listen = udp://0.0.0.0:29900)",
			               o);
		if (!has(&s->set_mask, SEC_SERVER, "target"))
			wn_config_diag(
			    cfg,
			    "%s: [server] engine kcptun needs target "
			    "(kcptun-server's -t): every stream goes "
			    "there",
			    o);
		return;
	}
	if (!has(&s->set_mask, SEC_SERVER, "listen"))
		wn_config_diag(cfg,
		               "%s: [server] listen is required "
		               "(e.g. listen = udp://0.0.0.0:4433)",
		               o);
	if (!has(&s->set_mask, SEC_SERVER, "key"))
		wn_config_diag(cfg,
		               "%s: [server] key is required (a private key "
		               "file made by `warren genkey`)",
		               o);
	if (!has(&s->set_mask, SEC_SERVER, "allow-client"))
		wn_config_diag(cfg,
		               "%s: [server] allow-client is required: the "
		               "server accepts only the client keys it lists",
		               o);
	if (!has(&s->set_mask, SEC_SERVER, "allow") &&
	    !has(&s->set_mask, SEC_SERVER, "target"))
		wn_config_diag(cfg,
		               "%s: [server] needs allow (targets clients may "
		               "reach) or target (one fixed target); the "
		               "server is never an open proxy",
		               o);
	if (has(&s->set_mask, SEC_SERVER, "tls-cert") !=
	    has(&s->set_mask, SEC_SERVER, "tls-key"))
		wn_config_diag(cfg,
		               "%s: [server] tls-cert and tls-key go together "
		               "(or neither, for a generated certificate)",
		               o);
	/* target fixes streams only; udp:// rules may stand beside it. */
	if (s->n_allow > s->n_allow_udp &&
	    has(&s->set_mask, SEC_SERVER, "target"))
		wn_config_diag(cfg,
		               "%s: [server] allow and target exclude each "
		               "other: use target for one fixed target, allow "
		               "for targets chosen by clients (udp:// rules "
		               "may stand beside target)",
		               o);
}

static void validate_client(struct wn_config *cfg)
{
	struct wn_client_cfg *c = &cfg->client;
	const char *o = origin_or(c->origin, "client");
	bool kt = c->engine.kind == WN_ENGINE_KCPTUN;
	validate_engine_keys(cfg, &c->set_mask, SEC_CLIENT, "client",
	                     &c->engine, o);
	validate_buffers(cfg, "client", &c->engine, o);
	validate_client_carriers(cfg, o);
	if (kt) {
		validate_kcptun(cfg, &c->engine, o, "client");
		refuse_kcptun_streams(cfg, c->server, c->n_server, o, "client",
		                      "server");
	}
	if (!has(&c->set_mask, SEC_CLIENT, "server"))
		wn_config_diag(cfg,
		               "%s: [client] server is required (e.g. server "
		               "= udp://vpn.example.org:4433)",
		               o);
	if (!kt && !has(&c->set_mask, SEC_CLIENT, "server-key"))
		wn_config_diag(cfg,
		               "%s: [client] server-key is required: the "
		               "server's public key, from `warren pubkey`",
		               o);
	if (!kt && !has(&c->set_mask, SEC_CLIENT, "key"))
		wn_config_diag(cfg,
		               "%s: [client] key is required (a private key "
		               "file made by `warren genkey`)",
		               o);
	if (kt)
		refuse_short_kcptun_timeout(
		    cfg, &c->set_mask, c->key_line, SEC_CLIENT, "client", o,
		    "dead-peer-timeout", c->dead_peer_timeout_ms);
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
	if (cfg->n_forwards == 0 && cfg->n_socks == 0 && cfg->n_udps == 0)
		wn_config_diag(
		    cfg,
		    "%s: [client] has nothing to do: add a [forward "
		    "NAME] section, -L LISTEN=TARGET, a [socks5 NAME] "
		    "section, -D LISTEN, a [udp NAME] section or -U "
		    "LISTEN=TARGET",
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
		if (!has(&f->set_mask, SEC_FORWARD, "listen"))
			wn_config_diag(cfg,
			               "%s: [forward %s] listen is required",
			               f->origin, f->name);
		if (!has(&f->set_mask, SEC_FORWARD, "target") &&
		    cfg->client.engine.kind != WN_ENGINE_KCPTUN)
			wn_config_diag(cfg,
			               "%s: [forward %s] target is required "
			               "(-L LISTEN=TARGET)",
			               f->origin, f->name);
		if (has(&f->set_mask, SEC_FORWARD, "socket-mode") &&
		    f->has_listen && f->listen.kind != WN_HOST_UNIX)
			wn_config_diag(cfg,
			               "%s: [forward %s] socket-mode: a key of "
			               "unix:PATH listeners; remove it",
			               f->origin, f->name);
		/* kcptun streams name no target: one here would be
		 * ignored. */
		if (has(&f->set_mask, SEC_FORWARD, "target") &&
		    cfg->client.engine.kind == WN_ENGINE_KCPTUN)
			wn_config_diag(
			    cfg,
			    "%s: [forward %s] target: engine kcptun "
			    "streams carry no target (the kcptun "
			    "server sends each to its own); remove it "
			    "(-L LISTEN)",
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

/* UDP forwards: complete, each on its own address, and only with an engine
 * that carries datagrams (engine kcptun has none: kcptun's wire format has
 * no datagram channel, WN_ENGINE_CAP_DATAGRAM). */
static void validate_udps(struct wn_config *cfg)
{
	for (size_t i = 0; i < cfg->n_udps; i++) {
		struct wn_forward_cfg *f = &cfg->udps[i];
		if (!has(&f->set_mask, SEC_UDP, "listen"))
			wn_config_diag(cfg, "%s: [udp %s] listen is required",
			               f->origin, f->name);
		if (!has(&f->set_mask, SEC_UDP, "target"))
			wn_config_diag(cfg,
			               "%s: [udp %s] target is required "
			               "(-U LISTEN=TARGET)",
			               f->origin, f->name);
		if (has(&f->set_mask, SEC_UDP, "fec-delay") && !f->fec_data)
			wn_config_diag(cfg,
			               "%s: [udp %s] fec-delay: only with fec "
			               "(e.g. fec = 10/3); remove it",
			               f->origin, f->name);
		if (cfg->client.engine.kind == WN_ENGINE_KCPTUN)
			wn_config_diag(
			    cfg,
			    "%s: [udp %s] engine kcptun carries no "
			    "datagrams (kcptun's wire format has only "
			    "streams): use engine quic or kcp for UDP "
			    "forwards",
			    f->origin, f->name);
		for (size_t j = 0; j < i; j++) {
			struct wn_forward_cfg *g = &cfg->udps[j];
			if (f->has_listen && g->has_listen &&
			    same_listen(&f->listen, &g->listen))
				wn_config_diag(
				    cfg,
				    "%s: [udp %s] listens on the same "
				    "address as [udp %s] (%s)",
				    f->origin, f->name, g->name, g->origin);
		}
	}
}

static bool loopback_ip(const struct wn_endpoint *ep)
{
	const struct sockaddr_storage *ss = &ep->sa;

	if (ep->kind != WN_HOST_IP)
		return false;
	if (ss->ss_family == AF_INET)
		return ((const uint8_t *)&((const struct sockaddr_in *)ss)
		            ->sin_addr)[0] == 127;
	return ss->ss_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(
	           &((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* SOCKS5 authentication against where the proxy listens. A name is
 * checked when it is resolved, at listen time (front/forward.h). */
static void validate_socks_auth(struct wn_config *cfg,
                                const struct wn_socks5_cfg *sk)
{
	bool users = has(&sk->set_mask, SEC_SOCKS5, "user") ||
	             has(&sk->set_mask, SEC_SOCKS5, "users-file");
	bool unauth = has(&sk->set_mask, SEC_SOCKS5, "unauthenticated");
	char l[128];

	wn_endpoint_format(&sk->listen, l, sizeof(l));
	if (unauth && (users || sk->listen.kind == WN_HOST_UNIX ||
	               loopback_ip(&sk->listen)))
		wn_config_diag(cfg,
		               "%s: [socks5 %s] unauthenticated: %s, so it "
		               "changes nothing; remove it",
		               sk->origin, sk->name,
		               users ? "the proxy has users"
		               : sk->listen.kind == WN_HOST_UNIX
		                   ? "a unix listener is not checked (its "
		                     "socket-mode guards it)"
		                   : "the listen address is loopback");
	else if (!users && !sk->unauthenticated &&
	         sk->listen.kind == WN_HOST_IP && !loopback_ip(&sk->listen))
		wn_config_diag(
		    cfg,
		    "%s: [socks5 %s] listen %s without users: anyone who "
		    "can reach it could use the tunnel; add user or "
		    "users-file, listen on loopback or a unix socket, or "
		    "set unauthenticated = yes in a [socks5] section",
		    sk->origin, sk->name, l);
}

static void validate_socks(struct wn_config *cfg)
{
	for (size_t i = 0; i < cfg->n_socks; i++) {
		struct wn_socks5_cfg *sk = &cfg->socks[i];
		if (!has(&sk->set_mask, SEC_SOCKS5, "listen"))
			wn_config_diag(cfg,
			               "%s: [socks5 %s] listen is required",
			               sk->origin, sk->name);
		if (!sk->has_listen)
			continue;
		validate_socks_auth(cfg, sk);
		if (has(&sk->set_mask, SEC_SOCKS5, "socket-mode") &&
		    sk->listen.kind != WN_HOST_UNIX)
			wn_config_diag(cfg,
			               "%s: [socks5 %s] socket-mode: a key of "
			               "unix:PATH listeners; remove it",
			               sk->origin, sk->name);
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
		validate_udps(cfg);
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
	/* Non-blocking open, as for key files (keyfile.c): a FIFO must be
	 * refused by the S_ISREG check, not hang start-up. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
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
		if (fd >= 0)
			close(fd);
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
		if (wn_cfg_parse_user(line, n, &u, &why) != 0 ||
		    wn_cfg_add_user(cfg, sk, &u, &why) != 0)
			wn_config_diag(cfg, "%s:%u: %s", path, lineno, why);
		sodium_memzero(&u, sizeof(u));
	}
	sodium_memzero(line, sizeof(line));
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
