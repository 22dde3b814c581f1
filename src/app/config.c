/* The config's lifecycle and diagnostics, command-line flags and the flag
 * reference. The schema and setters are in config_keys.c, files in
 * config_parse.c, checks in config_check.c. */
#include "app/config_int.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"

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
	cfg->parsing_mode = -1;
	cfg->server.log_level = WN_LOG_INFO;
	cfg->server.idle_timeout_ms = 30000;
	cfg->server.udp_idle_ms = WN_UDP_IDLE_DEFAULT_MS;
	cfg->server.udp_conns = 1;
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
		         WN_KCPTUN_DEFAULT_KEY);
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
	free(cfg->udps);
	for (size_t i = 0; i < cfg->n_socks; i++) {
		/* Passwords do not linger in freed memory. */
		if (cfg->socks[i].users)
			sodium_memzero(cfg->socks[i].users,
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

/* A new UDP forward with its defaults; NULL when out of memory. */
struct wn_forward_cfg *wn_cfg_new_udp(struct wn_config *cfg, const char *name,
                                      const char *origin)
{
	struct wn_forward_cfg *u =
	    grow(cfg, &cfg->udps, &cfg->n_udps, sizeof(*u));

	if (!u)
		return NULL;
	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->origin, sizeof(u->origin), "%s", origin);
	u->udp = true;
	u->udp_idle_ms = WN_UDP_IDLE_DEFAULT_MS;
	u->max_flows = WN_UDP_MAX_FLOWS_DEFAULT;
	u->fec_delay_ms = WN_UDP_FEC_DELAY_DEFAULT_MS;
	return u;
}

/* A new SOCKS5 proxy with its defaults; NULL when out of memory. */
struct wn_socks5_cfg *wn_cfg_new_socks(struct wn_config *cfg, const char *name,
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

/* ---- command-line flags --------------------------------------------- */

bool wn_config_is_flag(enum wn_role role, const char *key)
{
	unsigned sec = role == WN_ROLE_SERVER   ? SEC_SERVER
	               : role == WN_ROLE_CLIENT ? SEC_CLIENT
	                                        : 0;
	if (role == WN_ROLE_CLIENT &&
	    (strcmp(key, "L") == 0 || strcmp(key, "D") == 0 ||
	     strcmp(key, "U") == 0))
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
	int rc = wn_cfg_apply(&st, SEC_FORWARD, f, NULL, "listen", listen);
	if (*eq &&
	    wn_cfg_apply(&st, SEC_FORWARD, f, NULL, "target", eq + 1) != 0)
		rc = WN_ECONFIG;
	return rc;
}

/* -U LISTEN=TARGET: a UDP forward named U1, U2, ... with the defaults. The
 * first '=' splits, as for -L. */
static int add_cli_udp(struct wn_config *cfg, const char *flag,
                       const char *spec)
{
	char name[16], secname[WN_FORWARD_NAME_MAX + 16], listen[1024];
	const char *eq = strchr(spec, '=');
	struct wn_forward_cfg *u;
	int rc;

	if (!eq || eq == spec || !eq[1]) {
		wn_config_diag(cfg,
		               "%s: expected LISTEN=TARGET, e.g. "
		               "127.0.0.1:5353=10.0.0.9:53, got \"%s\"",
		               flag, spec);
		return WN_ECONFIG;
	}
	unsigned idx = 0;
	for (size_t i = 0; i < cfg->n_udps; i++)
		if (cfg->udps[i].name[0] == 'U')
			idx++;
	snprintf(name, sizeof(name), "U%u", idx + 1);
	u = wn_cfg_new_udp(cfg, name, flag);
	if (!u)
		return WN_ENOMEM;
	snprintf(secname, sizeof(secname), "udp %s", name);
	struct setting st = {.cfg = cfg, .origin = flag, .secname = secname};
	snprintf(listen, sizeof(listen), "%.*s", (int)(eq - spec), spec);
	rc = wn_cfg_apply(&st, SEC_UDP, u, NULL, "listen", listen);
	if (wn_cfg_apply(&st, SEC_UDP, u, NULL, "target", eq + 1) != 0)
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
	sk = wn_cfg_new_socks(cfg, name, flag);
	if (!sk)
		return WN_ENOMEM;
	snprintf(secname, sizeof(secname), "socks5 %s", name);
	struct setting st = {.cfg = cfg, .origin = flag, .secname = secname};
	return wn_cfg_apply(&st, SEC_SOCKS5, NULL, sk, "listen", listen);
}

int wn_config_set_flag(struct wn_config *cfg, enum wn_role role,
                       const char *flag, const char *key, const char *value)
{
	if (role == WN_ROLE_CLIENT && strcmp(key, "L") == 0)
		return add_cli_forward(cfg, flag, value);
	if (role == WN_ROLE_CLIENT && strcmp(key, "U") == 0) {
		cfg->client.present = true;
		return add_cli_udp(cfg, flag, value);
	}
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
	return wn_cfg_apply(&st, sec, NULL, NULL, key, value);
}

/* ---- describe ------------------------------------------------------- */

size_t wn_config_describe(enum wn_role role, char *buf, size_t cap)
{
	unsigned sec = role == WN_ROLE_SERVER ? SEC_SERVER : SEC_CLIENT;
	size_t len = 0;
	for (size_t i = 0; i < wn_cfg_n_keys; i++) {
		if (!(wn_cfg_keys[i].sections & sec))
			continue;
		char opt[96];
		snprintf(opt, sizeof(opt), "--%s %s", wn_cfg_keys[i].name,
		         wn_cfg_keys[i].arg);
		int n = snprintf(buf + (len < cap ? len : cap),
		                 len < cap ? cap - len : 0, "  %-38s %s\n", opt,
		                 wn_cfg_keys[i].help);
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
		n = snprintf(buf + (len < cap ? len : cap),
		             len < cap ? cap - len : 0, "  %-38s %s\n",
		             "-U [udp://]LISTEN=TARGET",
		             "forward UDP datagrams on LISTEN to TARGET via "
		             "the server, one flow per source address "
		             "(repeatable)");
		if (n > 0)
			len += (size_t)n;
	}
	return len;
}
