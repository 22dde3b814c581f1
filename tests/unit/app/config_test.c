#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/config.h"
#include "app/fronts.h"
#include "util/err.h"
#include "util/log.h"

/* Two valid public keys (Ed25519 base points of fixed seeds). */
static char pk1[WN_KEY_B64_LEN + 1], pk2[WN_KEY_B64_LEN + 1];

static int setup(void **state)
{
	(void)state;
	struct wn_identity a, b;
	uint8_t s1[32] = {1}, s2[32] = {2};
	if (wn_identity_from_seed(&a, s1) || wn_identity_from_seed(&b, s2))
		return -1;
	wn_key_encode(a.ed_pk, pk1);
	wn_key_encode(b.ed_pk, pk2);
	return 0;
}

static int parse(struct wn_config *cfg, const char *text)
{
	wn_config_init(cfg);
	return wn_config_parse_string(cfg, "t.conf", "/etc/warren", text,
	                              strlen(text));
}

/* Asserts that some diagnostic contains every needle (NULL-terminated). */
static void expect_diag(const struct wn_config *cfg, const char *a,
                        const char *b)
{
	for (size_t i = 0; i < cfg->n_diags; i++)
		if (strstr(cfg->diags[i].text, a) &&
		    (!b || strstr(cfg->diags[i].text, b)))
			return;
	for (size_t i = 0; i < cfg->n_diags; i++)
		print_message("diag: %s\n", cfg->diags[i].text);
	fail_msg("no diagnostic with \"%s\" and \"%s\"", a, b ? b : "");
}

static void test_full_config(void **state)
{
	(void)state;
	char text[2048];
	snprintf(text, sizeof(text),
	         "; comment\n"
	         "# another\n"
	         "[server]\n"
	         "listen = udp://0.0.0.0:4433\n"
	         "listen = udp://[::]:4433\n"
	         "key = server.key\n"
	         "allow-client = %s\n"
	         "allow-client = %s\n"
	         "allow = 10.0.0.0/8:22\n"
	         "  allow = unix:/run/app.sock   ; indented, inline comment\n"
	         "idle-timeout = 2m\n"
	         "log-level = debug\n"
	         "\n"
	         "[client]\n"
	         "server = udp://vpn.example.org:4433\n"
	         "server-key = %s\n"
	         "key = /abs/client.key\n"
	         "keepalive = 500ms\n"
	         "[forward ssh]\n"
	         "listen = 127.0.0.1:2222\n"
	         "target = 10.0.0.5:22\n"
	         "[forward db]\n"
	         "listen = unix:/tmp/db.sock\n"
	         "target = [fd00::5]:5432\n",
	         pk1, pk2, pk1);
	struct wn_config cfg;
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_NONE), 0);
	assert_int_equal(cfg.n_diags, 0);
	assert_true(cfg.server.present);
	assert_int_equal(cfg.server.n_listen, 2);
	assert_int_equal(cfg.server.listen[1].sa.ss_family, AF_INET6);
	assert_string_equal(cfg.server.key_path, "/etc/warren/server.key");
	assert_int_equal(cfg.server.n_allow_client, 2);
	assert_int_equal(cfg.server.n_allow, 2);
	assert_int_equal(cfg.server.allow[1].kind, WN_RULE_UNIX);
	assert_int_equal(cfg.server.idle_timeout_ms, 120000);
	assert_int_equal(cfg.server.log_level, WN_LOG_DEBUG);
	assert_string_equal(cfg.client.key_path, "/abs/client.key");
	assert_int_equal(cfg.client.keepalive_ms, 500);
	assert_int_equal(cfg.client.dead_peer_timeout_ms, 15000);
	assert_int_equal(cfg.n_forwards, 2);
	assert_string_equal(cfg.forwards[0].name, "ssh");
	assert_int_equal(cfg.forwards[0].listen.port, 2222);
	assert_int_equal(cfg.forwards[1].listen.kind, WN_HOST_UNIX);
	assert_int_equal(cfg.forwards[1].target.port, 5432);
	wn_config_free(&cfg);
}

static void test_every_problem_reported_with_line(void **state)
{
	(void)state;
	const char *text = "orphan = 1\n"            /* 1 */
	                   "[server]\n"              /* 2 */
	                   "listen = 1.2.3.4:5\n"    /* 3 */
	                   "bogus = x\n"             /* 4 */
	                   "idle-timeout = 30\n"     /* 5 */
	                   "idle-timeout = 99h\n"    /* 6 */
	                   "allow = 10.0.0.0/40:1\n" /* 7 */
	                   "[nope]\n"                /* 8 */
	                   "whatever = 1\n"          /* 9 */
	                   "[client]\n"              /* 10 */
	                   "server-key = AAAA\n"     /* 11 */
	                   "no equals sign\n"        /* 12 */
	                   "Upper = 1\n"             /* 13 */
	                   "[forward]\n"             /* 14 */
	                   "[forward bad name!]\n"   /* 15 */
	                   "[client]\n"              /* 16 */
	                   "[forward x] trailing\n"; /* 17 */
	struct wn_config cfg;
	assert_int_equal(parse(&cfg, text), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:1:", "outside any section");
	expect_diag(&cfg, "t.conf:3: [server] listen", "scheme is required");
	expect_diag(&cfg, "t.conf:4: [server] unknown key \"bogus\"", NULL);
	expect_diag(&cfg, "t.conf:5: [server] idle-timeout", "with a unit");
	expect_diag(&cfg, "t.conf:6: [server] idle-timeout", "is set twice");
	expect_diag(&cfg, "t.conf:7: [server] allow", "prefix length");
	expect_diag(&cfg, "t.conf:8: unknown section [nope]", NULL);
	expect_diag(&cfg, "t.conf:11: [client] server-key", "public key");
	expect_diag(&cfg, "t.conf:12:", "KEY = VALUE");
	expect_diag(&cfg, "t.conf:13:", "lower-case");
	expect_diag(&cfg, "t.conf:14:", "needs a name");
	expect_diag(&cfg, "t.conf:15:", "forward name");
	expect_diag(&cfg, "t.conf:16:", "appears twice");
	expect_diag(&cfg, "t.conf:17:", "unexpected text");
	/* The key in the unknown section is not reported separately. */
	for (size_t i = 0; i < cfg.n_diags; i++)
		assert_null(strstr(cfg.diags[i].text, "whatever"));
	wn_config_free(&cfg);
}

/* api's feature (the HTTP API) is planned: the key is refused, with its
 * line, in files and as a flag, rather than accepted and ignored. */
static void test_api_is_refused_until_built(void **state)
{
	(void)state;
	const char *text = "[server]\n"              /* 1 */
	                   "api = 127.0.0.1:7070\n"  /* 2 */
	                   "[client]\n"              /* 3 */
	                   "api = 127.0.0.1:7071\n"; /* 4 */
	struct wn_config cfg;
	assert_int_equal(parse(&cfg, text), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:2: [server] api", "not built yet");
	expect_diag(&cfg, "t.conf:4: [client] api", "not built yet");
	wn_config_free(&cfg);

	assert_int_equal(parse(&cfg, "[client]\n"), 0);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "--api",
	                                    "api", "127.0.0.1:7070"),
	                 WN_ECONFIG);
	expect_diag(&cfg, "--api", "not built yet");
	wn_config_free(&cfg);
}

/* A send budget smaller than what one stream may always buffer is
 * refused; the sizes reach the engine configuration. */
static void test_buffer_budget_keys(void **state)
{
	(void)state;
	struct wn_config cfg;

	assert_int_equal(parse(&cfg, "[client]\nserver = udp://1.1.1.1:1\n"
	                             "session-buffer = 8K\n"
	                             "total-buffer = 1G\n"),
	                 0);
	assert_int_equal(cfg.client.engine.session_buffer, 8u << 10);
	assert_int_equal(cfg.client.engine.total_buffer, 1ull << 30);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	expect_diag(&cfg, "[client] session-buffer must be at least 64K", NULL);
	for (size_t i = 0; i < cfg.n_diags; i++)
		assert_null(strstr(cfg.diags[i].text, "total-buffer"));
	wn_config_free(&cfg);

	assert_int_equal(parse(&cfg, "[client]\nserver = udp://1.1.1.1:1\n"
	                             "total-buffer = 0\n"),
	                 WN_ECONFIG);
	expect_diag(&cfg, "[client] total-buffer", "positive number");
	wn_config_free(&cfg);
}

/* The caps per client key: set, in range, and refused where the engine
 * would ignore them (engine kcp keeps one session per key; engine kcptun
 * has no client keys). */
static void test_per_key_caps(void **state)
{
	(void)state;
	struct wn_config cfg;
	char text[512];

	snprintf(text, sizeof(text),
	         "[server]\nlisten = udp://0.0.0.0:1\nkey = s.key\n"
	         "allow-client = %s\nallow = 10.0.0.0/8:22\n"
	         "sessions-per-key = 3\nstreams-per-key = 100\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(cfg.server.sessions_per_key, 3);
	assert_int_equal(cfg.server.streams_per_key, 100);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), 0);
	wn_config_free(&cfg);

	/* Unset: 0, the engine's default. */
	snprintf(text, sizeof(text),
	         "[server]\nlisten = udp://0.0.0.0:1\nkey = s.key\n"
	         "allow-client = %s\nallow = 10.0.0.0/8:22\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(cfg.server.sessions_per_key, 0);
	assert_int_equal(cfg.server.streams_per_key, 0);
	wn_config_free(&cfg);

	assert_int_equal(parse(&cfg, "[server]\nsessions-per-key = 0\n"),
	                 WN_ECONFIG);
	expect_diag(&cfg, "sessions-per-key", NULL);
	wn_config_free(&cfg);
	assert_int_equal(parse(&cfg, "[server]\nstreams-per-key = 0\n"),
	                 WN_ECONFIG);
	expect_diag(&cfg, "streams-per-key", NULL);
	wn_config_free(&cfg);

	/* Engine kcp: streams-per-key applies, sessions-per-key does not. */
	snprintf(text, sizeof(text),
	         "[server]\nengine = kcp\nlisten = udp://0.0.0.0:1\n"
	         "key = s.key\nallow-client = %s\nallow = 10.0.0.0/8:22\n"
	         "sessions-per-key = 3\nstreams-per-key = 100\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:1: [server] sessions-per-key",
	            "engine kcp holds one session per client key");
	for (size_t i = 0; i < cfg.n_diags; i++)
		assert_null(strstr(cfg.diags[i].text, "streams-per-key"));
	wn_config_free(&cfg);

	/* Engine kcptun: neither. */
	assert_int_equal(parse(&cfg, "[server]\nengine = kcptun\n"
	                             "listen = udp://0.0.0.0:1\n"
	                             "target = 127.0.0.1:2\n"
	                             "streams-per-key = 100\n"),
	                 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(
	    &cfg, "[server] streams-per-key: engine kcptun would ignore", NULL);
	wn_config_free(&cfg);

	/* A client has neither. */
	assert_int_equal(parse(&cfg, "[client]\nstreams-per-key = 1\n"),
	                 WN_ECONFIG);
	wn_config_free(&cfg);
}

/* A key the configured engine would ignore is refused, naming the key. */
static void test_engine_keys_of_another_engine(void **state)
{
	(void)state;
	struct wn_config cfg;

	assert_int_equal(parse(&cfg, "[client]\nserver = udp://1.1.1.1:1\n"),
	                 0);
	assert_int_equal(
	    wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "--mode", "mode", "fast2"),
	    0);
	assert_int_equal(
	    wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "--crypt", "crypt", "aes"),
	    0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	expect_diag(&cfg, "[client] mode is a key of engines kcp and kcptun",
	            "engine quic would ignore it");
	expect_diag(&cfg, "[client] crypt is a key of engine kcptun",
	            "engine quic would ignore it");
	wn_config_free(&cfg);

	/* With engine kcp, mode is its own; crypt still is not. */
	assert_int_equal(parse(&cfg, "[server]\nengine = kcp\nmode = fast\n"
	                             "smuxver = 2\n"),
	                 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg,
	            "t.conf:1: [server] smuxver is a key of engine kcptun",
	            "engine kcp would ignore it");
	for (size_t i = 0; i < cfg.n_diags; i++)
		assert_null(strstr(cfg.diags[i].text, "] mode"));
	wn_config_free(&cfg);

	/* With engine kcptun, every one of them applies. */
	assert_int_equal(parse(&cfg, "[server]\nengine = kcptun\n"
	                             "listen = udp://0.0.0.0:1\n"
	                             "target = 127.0.0.1:2\nmode = fast\n"
	                             "mtu = 1400\ncrypt = none\nsmuxver = 2\n"
	                             "kcptun-insecure = yes\n"),
	                 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), 0);
	wn_config_free(&cfg);

	/* ...but warren's own keys and rules do not. */
	assert_int_equal(parse(&cfg, "[server]\nengine = kcptun\n"
	                             "listen = udp://0.0.0.0:1\n"
	                             "target = 127.0.0.1:2\n"
	                             "allow = 10.0.0.0/8:22\nkey = s.key\n"),
	                 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg, "[server] allow: engine kcptun would ignore it",
	            NULL);
	expect_diag(&cfg, "[server] key: engine kcptun would ignore it", NULL);
	wn_config_free(&cfg);
}

/* A kcptun server with kcptun's default key, or with crypt none, serves
 * anyone: refused, saying why, unless kcptun-insecure = yes. A client
 * may use them (it is the server that would be open). */
static void test_kcptun_server_needs_a_secret(void **state)
{
	(void)state;
	struct wn_config cfg;
	const char *base = "[server]\nengine = kcptun\n"
	                   "listen = udp://0.0.0.0:1\ntarget = 127.0.0.1:2\n";
	char text[512];

	assert_int_equal(parse(&cfg, base), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg, "[server] kcptun-key is kcptun's default",
	            "kcptun-insecure = yes");
	wn_config_free(&cfg);

	/* Written out, the default is the default all the same. */
	snprintf(text, sizeof(text), "%skcptun-key = it's a secrect\n", base);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg, "[server] kcptun-key is kcptun's default", NULL);
	wn_config_free(&cfg);

	snprintf(text, sizeof(text), "%skcptun-key = s3cret\ncrypt = none\n",
	         base);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg, "[server] crypt = none", "kcptun-insecure = yes");
	wn_config_free(&cfg);

	snprintf(text, sizeof(text), "%skcptun-key = s3cret\n", base);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), 0);
	wn_config_free(&cfg);

	snprintf(text, sizeof(text), "%skcptun-insecure = yes\n", base);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), 0);
	assert_true(cfg.server.engine.kcptun_insecure);
	wn_config_free(&cfg);

	/* The acknowledgement is a kcptun server's key only. */
	assert_int_equal(parse(&cfg, "[server]\nengine = kcp\n"
	                             "listen = udp://0.0.0.0:1\n"
	                             "target = 127.0.0.1:2\n"
	                             "kcptun-insecure = yes\n"),
	                 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg, "[server] kcptun-insecure is a key of engine kcptun",
	            NULL);
	wn_config_free(&cfg);

	assert_int_equal(parse(&cfg, "[client]\nengine = kcptun\n"
	                             "server = udp://1.1.1.1:1\n"
	                             "[forward a]\nlisten = 127.0.0.1:3\n"),
	                 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), 0);
	wn_config_free(&cfg);
}

/* Asserts that no diagnostic contains needle. */
static void expect_no_diag(const struct wn_config *cfg, const char *needle)
{
	for (size_t i = 0; i < cfg->n_diags; i++)
		if (strstr(cfg->diags[i].text, needle))
			fail_msg("unexpected diagnostic: %s",
			         cfg->diags[i].text);
}

/* Carrier knobs with no carrier of theirs, and failover knobs with one
 * server, would be silent no-ops: each is refused at its own line. */
static void test_noop_carrier_keys_refused(void **state)
{
	(void)state;
	struct wn_config cfg;
	char text[1024];

	snprintf(text, sizeof(text),
	         "[server]\n"                      /* 1 */
	         "listen = udp://0.0.0.0:4433\n"   /* 2 */
	         "key = k\n"                       /* 3 */
	         "allow-client = %s\n"             /* 4 */
	         "allow = 10.0.0.0/8:22\n"         /* 5 */
	         "tls-cert = c.pem\n"              /* 6 */
	         "tls-key = k.pem\n"               /* 7 */
	         "fallback = close\n"              /* 8 */
	         "sni = www.example.org\n"         /* 9 */
	         "idle-close = 1m\n"               /* 10 */
	         "max-conns = 10\n"                /* 11 */
	         "padding = 100\n"                 /* 12 */
	         "[client]\n"                      /* 13 */
	         "server = udp://192.0.2.1:4433\n" /* 14 */
	         "server-key = %s\n"               /* 15 */
	         "key = k\n"                       /* 16 */
	         "sni = cdn.example.com\n"         /* 17 */
	         "rotate-after = 1m\n"             /* 18 */
	         "rotate-bytes = 1M\n"             /* 19 */
	         "conns = 2\n"                     /* 20 */
	         "padding = 100\n"                 /* 21 */
	         "failover-after = 1s\n"           /* 22 */
	         "probe-interval = 5s\n"           /* 23 */
	         "[forward f]\nlisten = 127.0.0.1:1\ntarget = 10.0.0.1:2\n",
	         pk1, pk2);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_NONE), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:6: [server] tls-cert:", "no listen is tls");
	expect_diag(&cfg, "t.conf:7: [server] tls-key:", "no listen is tls");
	expect_diag(&cfg, "t.conf:8: [server] fallback:", "no listen is tls");
	expect_diag(&cfg, "t.conf:9: [server] sni:", "no listen is tls");
	expect_diag(&cfg, "t.conf:10: [server] idle-close:", "udp://");
	expect_diag(&cfg, "t.conf:11: [server] max-conns:", "udp://");
	expect_diag(&cfg, "t.conf:12: [server] padding:", "udp://");
	expect_diag(&cfg, "t.conf:17: [client] sni:", "no server is tls");
	expect_diag(&cfg, "t.conf:18: [client] rotate-after:", "udp://");
	expect_diag(&cfg, "t.conf:19: [client] rotate-bytes:", "udp://");
	expect_diag(&cfg, "t.conf:20: [client] conns:", "udp://");
	expect_diag(&cfg, "t.conf:21: [client] padding:", "udp://");
	expect_diag(&cfg,
	            "t.conf:22: [client] failover-after:", "several servers");
	expect_diag(&cfg,
	            "t.conf:23: [client] probe-interval:", "several servers");
	/* A flag that set the key is named as the flag. */
	assert_int_equal(
	    wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "--conns", "conns", "3"),
	    0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	expect_diag(&cfg, "--conns: [client] conns:", "udp://");
	wn_config_free(&cfg);

	/* With their carriers (tcp carries the stream keys, tls the tls
	 * keys) and two servers, every key applies. */
	snprintf(text, sizeof(text),
	         "[server]\n"
	         "listen = tcp://0.0.0.0:8080\n"
	         "listen = tls://0.0.0.0:443\n"
	         "key = k\nallow-client = %s\nallow = 10.0.0.0/8:22\n"
	         "fallback = close\nsni = www.example.org\n"
	         "idle-close = 1m\nmax-conns = 10\npadding = 100\n"
	         "[client]\n"
	         "server = tls://192.0.2.1:443\n"
	         "server = udp://192.0.2.1:4433\n"
	         "server-key = %s\nkey = k\n"
	         "sni = cdn.example.com\nrotate-after = 1m\n"
	         "rotate-bytes = 1M\nconns = 2\npadding = 100\n"
	         "failover-after = 1s\nprobe-interval = 5s\n"
	         "[forward f]\nlisten = 127.0.0.1:1\ntarget = 10.0.0.1:2\n",
	         pk1, pk2);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_NONE), 0);
	wn_config_free(&cfg);

	/* A tcp carrier alone has no tls keys. */
	snprintf(text, sizeof(text),
	         "[server]\nlisten = tcp://0.0.0.0:8080\n"
	         "key = k\nallow-client = %s\nallow = 10.0.0.0/8:22\n"
	         "fallback = close\npadding = 100\n"
	         "[client]\nserver = tcp://192.0.2.1:443\n"
	         "server-key = %s\nkey = k\nsni = cdn.example.com\n"
	         "conns = 2\n"
	         "[forward f]\nlisten = 127.0.0.1:1\ntarget = 10.0.0.1:2\n",
	         pk1, pk2);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_NONE), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:6: [server] fallback:", "no listen is tls");
	expect_diag(&cfg, "t.conf:12: [client] sni:", "no server is tls");
	expect_no_diag(&cfg, "padding");
	expect_no_diag(&cfg, "conns");
	wn_config_free(&cfg);

	/* A given certificate makes sni (the generated certificate's
	 * name) a no-op. */
	snprintf(text, sizeof(text),
	         "[server]\nlisten = tls://0.0.0.0:443\n"
	         "key = k\nallow-client = %s\nallow = 10.0.0.0/8:22\n"
	         "tls-cert = c.pem\ntls-key = k.pem\nsni = www.example.org\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:8: [server] sni:", "tls-cert replaces it");
	wn_config_free(&cfg);
}

/* A SOCKS5 proxy without users beyond loopback is refused unless
 * unauthenticated = yes says so; socket-mode is for unix listeners;
 * neither key is accepted where it would change nothing. */
static void test_socks5_exposure_and_socket_mode(void **state)
{
	(void)state;
	struct wn_config cfg;
	char text[1024];

	snprintf(text, sizeof(text),
	         "[client]\nserver = udp://192.0.2.1:1\nserver-key = %s\n"
	         "key = k\n"
	         "[socks5 open]\nlisten = 0.0.0.0:1080\n"
	         "[socks5 ok]\nlisten = 0.0.0.0:1081\nunauthenticated = yes\n"
	         "[socks5 users]\nlisten = [::]:1082\nuser = a:b\n"
	         "[socks5 lo]\nlisten = 127.0.0.1:1083\n"
	         "[socks5 u]\nlisten = unix:/run/s.sock\nsocket-mode = 0660\n"
	         "[forward f]\nlisten = unix:/run/f.sock\ntarget = 10.0.0.1:2\n"
	         "socket-mode = 0640\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	assert_int_equal(cfg.n_diags, 1);
	expect_diag(&cfg,
	            "[socks5 open] listen tcp://0.0.0.0:1080 without users",
	            "unauthenticated = yes");
	assert_true(cfg.socks[1].unauthenticated);
	assert_int_equal(cfg.socks[4].socket_mode, 0660);
	assert_int_equal(cfg.forwards[0].socket_mode, 0640);
	wn_config_free(&cfg);

	/* -D takes the defaults: no users, so loopback or unix only. */
	assert_int_equal(parse(&cfg, "[client]\n"), 0);
	assert_int_equal(
	    wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-D", "D", "0.0.0.0:1080"),
	    0);
	assert_int_equal(
	    wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-D", "D", "[::1]:1080"),
	    0);
	wn_config_validate(&cfg, WN_ROLE_CLIENT);
	expect_diag(&cfg,
	            "-D: [socks5 D1] listen tcp://0.0.0.0:1080 without users",
	            NULL);
	expect_no_diag(&cfg, "[socks5 D2]");
	wn_config_free(&cfg);

	/* Where they would do nothing, and malformed modes. */
	snprintf(text, sizeof(text),
	         "[client]\nserver = udp://192.0.2.1:1\nserver-key = %s\n"
	         "key = k\n"
	         "[socks5 a]\nlisten = 0.0.0.0:1\nuser = a:b\n"
	         "unauthenticated = yes\n"
	         "[socks5 b]\nlisten = 127.0.0.1:2\nunauthenticated = yes\n"
	         "[socks5 c]\nlisten = unix:/run/c.sock\n"
	         "unauthenticated = yes\n"
	         "[socks5 d]\nlisten = 127.0.0.1:3\nsocket-mode = 0600\n"
	         "[forward f]\nlisten = 127.0.0.1:4\ntarget = 10.0.0.1:2\n"
	         "socket-mode = 0600\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	expect_diag(&cfg, "[socks5 a] unauthenticated:", "has users");
	expect_diag(&cfg, "[socks5 b] unauthenticated:", "loopback");
	expect_diag(&cfg, "[socks5 c] unauthenticated:", "unix");
	expect_diag(&cfg, "[socks5 d] socket-mode:", "unix:PATH");
	expect_diag(&cfg, "[forward f] socket-mode:", "unix:PATH");
	wn_config_free(&cfg);
	static const char *const bad[] = {"0400",  "1777", "9",
	                                  "0o600", "",     "0800"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
		         "[forward f]\nlisten = unix:/run/f.sock\n"
		         "target = 10.0.0.1:2\nsocket-mode = %s\n",
		         bad[i]);
		assert_int_equal(parse(&cfg, text), WN_ECONFIG);
		expect_diag(&cfg, "t.conf:4: [forward f] socket-mode", "octal");
		wn_config_free(&cfg);
	}
}

static void test_validation_requires_and_forbids(void **state)
{
	(void)state;
	struct wn_config cfg;
	assert_int_equal(parse(&cfg, "[server]\n[client]\n"), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_NONE), WN_ECONFIG);
	expect_diag(&cfg, "[server] listen is required", NULL);
	expect_diag(&cfg, "[server] key is required", NULL);
	expect_diag(&cfg, "[server] allow-client is required", NULL);
	expect_diag(&cfg, "never an open proxy", NULL);
	expect_diag(&cfg, "[client] server is required", NULL);
	expect_diag(&cfg, "[client] server-key is required", NULL);
	expect_diag(&cfg, "nothing to do", NULL);
	wn_config_free(&cfg);

	char text[512];
	snprintf(text, sizeof(text),
	         "[server]\nlisten = udp://[::]:1\nkey = k\nallow-client = %s\n"
	         "allow = *:22\ntarget = 127.0.0.1:22\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg, "allow and target exclude each other", NULL);
	wn_config_free(&cfg);

	assert_int_equal(parse(&cfg, ""), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_NONE), WN_ECONFIG);
	expect_diag(&cfg, "nothing configured", NULL);
	wn_config_free(&cfg);
}

static void test_malformed_value_is_not_also_missing(void **state)
{
	(void)state;
	struct wn_config cfg;
	assert_int_equal(parse(&cfg, "[forward a]\nlisten = nope\n"
	                             "target = 1.2.3.4:5\n"),
	                 WN_ECONFIG);
	wn_config_validate(&cfg, WN_ROLE_NONE);
	for (size_t i = 0; i < cfg.n_diags; i++)
		assert_null(strstr(cfg.diags[i].text, "listen is required"));
	wn_config_free(&cfg);
}

static void test_flags_override_and_append(void **state)
{
	(void)state;
	char text[512];
	snprintf(text, sizeof(text),
	         "[client]\nserver = udp://1.1.1.1:1\nserver-key = %s\n"
	         "key = k\nkeepalive = 1s\n",
	         pk1);
	struct wn_config cfg;
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "--keepalive",
	                                    "keepalive", "2s"),
	                 0);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "--server",
	                                    "server", "udp://[::1]:2"),
	                 0);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-L", "L",
	                                    "127.0.0.1:80=example.org:80"),
	                 0);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-L", "L",
	                                    "unix:/tmp/a=unix:/b"),
	                 0);
	assert_int_equal(cfg.client.keepalive_ms, 2000);
	assert_int_equal(cfg.client.n_server, 2);
	assert_int_equal(cfg.n_forwards, 2);
	assert_string_equal(cfg.forwards[0].name, "L1");
	assert_string_equal(cfg.forwards[1].name, "L2");
	assert_int_equal(cfg.forwards[0].target.kind, WN_HOST_NAME);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), 0);

	assert_int_equal(
	    wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-L", "L", "no-equals"),
	    WN_ECONFIG);
	expect_diag(&cfg, "-L: expected LISTEN=TARGET", NULL);
	assert_false(wn_config_is_flag(WN_ROLE_SERVER, "L"));
	assert_false(wn_config_is_flag(WN_ROLE_CLIENT, "allow"));
	assert_true(wn_config_is_flag(WN_ROLE_SERVER, "allow"));
	wn_config_free(&cfg);
}

static void test_long_lines_and_nul_bytes(void **state)
{
	(void)state;
	char text[600];
	int n = snprintf(text, sizeof(text), "[server]\nallow = ");
	memset(text + n, 'a', 300);
	memcpy(text + n + 300, ".org:1\n", 8);
	struct wn_config cfg;
	assert_int_equal(parse(&cfg, text), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:2:", "longer than");
	wn_config_free(&cfg);

	const char nul[] = "[server]\nlog-level = in\0fo\n";
	wn_config_init(&cfg);
	assert_int_equal(
	    wn_config_parse_string(&cfg, "t.conf", NULL, nul, sizeof(nul) - 1),
	    WN_ECONFIG);
	expect_diag(&cfg, "t.conf:2:", "NUL");
	wn_config_free(&cfg);
}

static void test_durations(void **state)
{
	(void)state;
	uint64_t ms;
	assert_int_equal(wn_duration_parse("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(wn_duration_parse("3s", &ms), 0);
	assert_int_equal(ms, 3000);
	assert_int_equal(wn_duration_parse("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(wn_duration_parse("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	const char *bad[] = {"",    "s",   "10",   "1.5s",
	                     "-1s", "1 s", "1sec", "99999999999999999999s"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(wn_duration_parse(bad[i], &ms), WN_EINVAL);
}

static void test_describe_lists_every_flag(void **state)
{
	(void)state;
	char buf[4096];
	size_t n = wn_config_describe(WN_ROLE_CLIENT, buf, sizeof(buf));
	assert_true(n < sizeof(buf));
	assert_non_null(strstr(buf, "--server-key PUBKEY"));
	assert_non_null(strstr(buf, "-L [tcp://|unix:]LISTEN=TARGET"));
	assert_null(strstr(buf, "--allow "));
	/* Truncation is safe and reports the full length. */
	char small[16];
	assert_int_equal(
	    wn_config_describe(WN_ROLE_CLIENT, small, sizeof(small)), n);
}

/* The carrier keys: tcp and tls endpoints, TLS files and fallback, the
 * connection policy; tls-cert without tls-key is refused. */
static void test_carrier_keys(void **state)
{
	(void)state;
	struct wn_config cfg;
	char text[2048];
	snprintf(text, sizeof(text),
	         "[server]\n"
	         "listen = tcp://0.0.0.0:8080\n"
	         "listen = tls://[::]:443\n"
	         "key = server.key\n"
	         "allow-client = %s\n"
	         "target = 127.0.0.1:22\n"
	         "tls-cert = cert.pem\n"
	         "fallback = close\n"
	         "sni = www.example.org\n"
	         "idle-close = 2m\n"
	         "max-conns = 100\n"
	         "[client]\n"
	         "server = udp://192.0.2.1:4433\n"
	         "server = tls://vpn.example.org:443\n"
	         "server-key = %s\n"
	         "key = client.key\n"
	         "sni = cdn.example.com\n"
	         "rotate-after = 10m\n"
	         "rotate-bytes = 500M\n"
	         "failover-after = 1500ms\n"
	         "rotate-bytes = 0\n"
	         "[forward f]\nlisten = 127.0.0.1:1\ntarget = 10.0.0.1:2\n",
	         pk1, pk2);
	assert_int_equal(parse(&cfg, text), WN_ECONFIG);
	/* Only the last line is wrong (and set twice). */
	expect_diag(&cfg, "t.conf:21", "rotate-bytes");
	assert_int_equal(cfg.server.n_listen, 2);
	assert_int_equal(cfg.server.listen[0].scheme, WN_SCHEME_TCP);
	assert_int_equal(cfg.server.listen[1].scheme, WN_SCHEME_TLS);
	assert_string_equal(cfg.server.tls_cert, "/etc/warren/cert.pem");
	assert_int_equal(cfg.server.fallback, WN_CFG_FALLBACK_CLOSE);
	assert_string_equal(cfg.server.sni, "www.example.org");
	assert_int_equal(cfg.server.idle_close_ms, 120000);
	assert_int_equal(cfg.server.max_conns, 100);
	assert_int_equal(cfg.client.n_server, 2);
	assert_int_equal(cfg.client.server[1].scheme, WN_SCHEME_TLS);
	assert_string_equal(cfg.client.sni, "cdn.example.com");
	assert_int_equal(cfg.client.rotate_after_ms, 600000);
	assert_int_equal(cfg.client.rotate_bytes, 500ull << 20);
	assert_int_equal(cfg.client.failover_ms, 1500);
	size_t before = cfg.n_diags;
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	assert_true(cfg.n_diags > before);
	expect_diag(&cfg, "tls-cert and tls-key go together", NULL);
	wn_config_free(&cfg);
}

static void test_socks5_sections(void **state)
{
	(void)state;
	struct wn_config cfg;
	char text[1024], path[] = "/tmp/wn-users-XXXXXX";
	snprintf(text, sizeof(text),
	         "[client]\n"
	         "server = udp://10.0.0.1:4433\n"
	         "server-key = %s\n"
	         "key = c.key\n"
	         "[socks5 web]\n"
	         "listen = 127.0.0.1:1080\n"
	         "[socks5 strict]\n"
	         "listen = unix:/run/s.sock\n"
	         "eager = no\n"
	         "user = alice:pa:ss\n"
	         "user = bob:\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), 0);
	assert_int_equal(cfg.n_socks, 2);
	assert_string_equal(cfg.socks[0].name, "web");
	assert_true(cfg.socks[0].eager); /* the default */
	assert_int_equal(cfg.socks[0].listen.port, 1080);
	assert_int_equal(cfg.socks[0].n_users, 0);
	assert_false(cfg.socks[1].eager);
	assert_int_equal(cfg.socks[1].listen.kind, WN_HOST_UNIX);
	assert_int_equal(cfg.socks[1].n_users, 2);
	assert_string_equal(cfg.socks[1].users[0].name, "alice");
	assert_string_equal(cfg.socks[1].users[0].pass, "pa:ss");
	assert_string_equal(cfg.socks[1].users[1].pass, "");
	/* -D adds D1, D2 with the defaults; a client with only those has
	 * something to do. */
	assert_int_equal(
	    wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-D", "D", "[::1]:1081"),
	    0);
	assert_true(wn_config_is_flag(WN_ROLE_CLIENT, "D"));
	assert_false(wn_config_is_flag(WN_ROLE_SERVER, "D"));
	assert_int_equal(cfg.n_socks, 3);
	assert_string_equal(cfg.socks[2].name, "D1");
	assert_true(cfg.socks[2].eager);
	wn_config_free(&cfg);

	/* Problems, all reported. */
	snprintf(text, sizeof(text),
	         "[client]\n"
	         "server = udp://10.0.0.1:4433\n"
	         "server-key = %s\n"
	         "key = c.key\n"
	         "[forward f]\n"
	         "listen = 127.0.0.1:1080\n"
	         "target = 10.0.0.5:22\n"
	         "[socks5 a]\n"
	         "listen = 127.0.0.1:1080\n"
	         "eager = maybe\n"
	         "user = nocolon\n"
	         "user = :nouser\n"
	         "user = x:secretpw\n"
	         "user = x:other\n"
	         "target = 1.2.3.4:5\n"
	         "[socks5 b]\n"
	         "eager = yes\n"
	         "[socks5 a]\n"
	         "[socks5]\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:10", "expected yes or no");
	expect_diag(&cfg, "t.conf:11", "expected NAME:PASSWORD");
	expect_diag(&cfg, "t.conf:12", "expected NAME:PASSWORD");
	expect_diag(&cfg, "t.conf:14", "listed twice");
	expect_diag(&cfg, "t.conf:15", "unknown key \"target\"");
	expect_diag(&cfg, "t.conf:18", "appears twice");
	expect_diag(&cfg, "t.conf:19", "needs a name");
	for (size_t i = 0; i < cfg.n_diags; i++)
		assert_null(strstr(cfg.diags[i].text, "secretpw"));
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	expect_diag(&cfg, "[socks5 b] listen is required", NULL);
	expect_diag(&cfg, "[socks5 a] listens on the same address",
	            "[forward f]");
	wn_config_free(&cfg);

	/* users-file: read at load time, merged with user lines. */
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char users[] = "# comment\n\ncarol:c1\r\nbad line\nalice:again\n";
	assert_int_equal(write(fd, users, sizeof(users) - 1),
	                 (ssize_t)sizeof(users) - 1);
	close(fd);
	snprintf(text, sizeof(text),
	         "[socks5 s]\nlisten = 127.0.0.1:1\nuser = alice:a\n"
	         "users-file = %s\n",
	         path);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_load_users(&cfg), WN_ECONFIG);
	assert_int_equal(cfg.socks[0].n_users, 2);
	assert_string_equal(cfg.socks[0].users[1].name, "carol");
	assert_string_equal(cfg.socks[0].users[1].pass, "c1");
	expect_diag(&cfg, ":4: expected NAME:PASSWORD", NULL);
	expect_diag(&cfg, ":5: this user is listed twice", NULL);
	wn_config_free(&cfg);
	/* A file others may read is refused, like a loose key file. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_load_users(&cfg), WN_ECONFIG);
	expect_diag(&cfg, "users-file", "chmod 600");
	assert_int_equal(cfg.socks[0].n_users, 1);
	wn_config_free(&cfg);
	unlink(path);
	snprintf(text, sizeof(text),
	         "[socks5 s]\nlisten = 127.0.0.1:1\nusers-file = %s\n", path);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_load_users(&cfg), WN_ECONFIG);
	expect_diag(&cfg, "users-file", "No such file");
	wn_config_free(&cfg);
}

/* Secrets inside a config file (user, kcptun-key) get the users-file's
 * mode check; a users-file that is a FIFO is refused, not waited on. */
static void test_inline_secrets_and_fifo(void **state)
{
	(void)state;
	struct wn_config cfg;
	char dir[] = "/tmp/wn-cfgmode-XXXXXX", path[256], fifo[64];
	static const char *const texts[] = {
	    "[socks5 s]\nlisten = 127.0.0.1:1\nuser = alice:s3cret\n",
	    "[client]\nengine = kcptun\nkcptun-key = s3cret\n",
	};
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/w.conf", dir);
	for (size_t i = 0; i < 2; i++) {
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(texts[i], f);
		fclose(f);
		assert_int_equal(chmod(path, 0644), 0);
		wn_config_init(&cfg);
		assert_int_equal(wn_config_parse_file(&cfg, path), WN_ECONFIG);
		expect_diag(&cfg, "w.conf:3:", "chmod 600");
		wn_config_free(&cfg);
		assert_int_equal(chmod(path, 0600), 0);
		wn_config_init(&cfg);
		assert_int_equal(wn_config_parse_file(&cfg, path), 0);
		wn_config_free(&cfg);
	}
	/* A config file without secrets may be readable by others. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[socks5 s]\nlisten = 127.0.0.1:1\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);
	wn_config_init(&cfg);
	assert_int_equal(wn_config_parse_file(&cfg, path), 0);
	wn_config_free(&cfg);
	unlink(path);

	snprintf(fifo, sizeof(fifo), "%s/users", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(path, sizeof(path),
	         "[socks5 s]\nlisten = 127.0.0.1:1\nusers-file = %s\n", fifo);
	assert_int_equal(parse(&cfg, path), 0);
	alarm(5);
	assert_int_equal(wn_config_load_users(&cfg), WN_ECONFIG);
	alarm(0);
	expect_diag(&cfg, "users-file", "not a regular file");
	wn_config_free(&cfg);
	unlink(fifo);
	rmdir(dir);
}

/* conns and probe-interval: defaults, values, bounds. */
static void test_parallel_and_probe_keys(void **state)
{
	(void)state;
	struct wn_config cfg;
	char text[1024];
	snprintf(text, sizeof(text),
	         "[client]\nserver = tcp://192.0.2.1:443\nserver-key = %s\n",
	         pk2);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(cfg.client.conns, 1);
	assert_int_equal(cfg.client.probe_ms, 10000);
	wn_config_free(&cfg);
	snprintf(text, sizeof(text),
	         "[client]\nserver = tcp://192.0.2.1:443\nserver-key = %s\n"
	         "conns = 4\nprobe-interval = 2500ms\n",
	         pk2);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(cfg.client.conns, 4);
	assert_int_equal(cfg.client.probe_ms, 2500);
	wn_config_free(&cfg);
	snprintf(text, sizeof(text),
	         "[client]\nserver = tcp://192.0.2.1:443\nserver-key = %s\n"
	         "conns = 17\nprobe-interval = 10\n[server]\nconns = 2\n",
	         pk2);
	assert_int_equal(parse(&cfg, text), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:4", "from 1 to 16");
	expect_diag(&cfg, "t.conf:5", "unit");
	expect_diag(&cfg, "t.conf:7", "unknown key \"conns\"");
	wn_config_free(&cfg);
	snprintf(text, sizeof(text),
	         "[client]\nserver = tcp://192.0.2.1:443\nserver-key = %s\n"
	         "conns = 0\nprobe-interval = 100ms\n",
	         pk2);
	assert_int_equal(parse(&cfg, text), WN_ECONFIG);
	expect_diag(&cfg, "t.conf:4", "from 1 to 16");
	expect_diag(&cfg, "t.conf:5", "between 500ms");
	wn_config_free(&cfg);
}

/* A key set of the config holds bits up to WN_CFG_KEYS_MAX - 1. */
static void test_cfg_keyset_top_bit(void **state)
{
	struct wn_cfg_keyset s;
	(void)state;

	/* Room for every row the table may have, well past 64. */
	assert_true(sizeof(s.w) * 8 >= WN_CFG_KEYS_MAX);
	assert_true(WN_CFG_KEYS_MAX > 64 + 25);
	memset(&s, 0, sizeof(s));
	wn_bitset_set(s.w, WN_CFG_KEYS_MAX - 1);
	assert_true(wn_bitset_test(s.w, WN_CFG_KEYS_MAX - 1));
	assert_false(wn_bitset_test(s.w, WN_CFG_KEYS_MAX - 2));
	assert_false(wn_bitset_test(s.w, 0));
}

/* Every one-field key lands in its own field, in each section it is in
 * (the key table carries the field's offset per section). */
static void flag(struct wn_config *cfg, enum wn_role role, const char *key,
                 const char *v)
{
	char f[64];
	snprintf(f, sizeof(f), "--%s", key);
	int rc = wn_config_set_flag(cfg, role, f, key, v);
	if (rc != 0)
		fail_msg("%s=%s: %s", key, v,
		         cfg->n_diags ? cfg->diags[cfg->n_diags - 1].text : "");
}

static void check_engine(const struct wn_engine_cfg *e, unsigned base)
{
	assert_int_equal(e->kind, WN_ENGINE_KCPTUN);
	assert_string_equal(e->mode, "fast2");
	assert_true(e->mode_set);
	assert_int_equal(e->sndwnd, base + 1);
	assert_int_equal(e->rcvwnd, base + 2);
	assert_int_equal(e->mtu, base + 600);
	assert_int_equal(e->max_streams, base + 4);
	assert_int_equal(e->session_buffer, (uint64_t)(base + 7) << 20);
	assert_int_equal(e->total_buffer, (uint64_t)(base + 8) << 20);
	assert_string_equal(e->kcptun_key,
	                    base == 200 ? "k-client" : "k-server");
	assert_string_equal(e->crypt, base == 200 ? "salsa20" : "none");
	assert_true(e->nocomp);
	assert_int_equal(e->datashard, base + 5);
	assert_int_equal(e->parityshard, base + 6);
	assert_int_equal(e->smuxver, 2);
}

static void test_table_fields(void **state)
{
	(void)state;
	struct wn_config cfg;
	char n[32];
	wn_config_init(&cfg);
	for (int i = 0; i < 2; i++) {
		enum wn_role r = i ? WN_ROLE_CLIENT : WN_ROLE_SERVER;
		unsigned base = i ? 200 : 100;
		flag(&cfg, r, "log-level", i ? "trace" : "error");
		flag(&cfg, r, "sni", i ? "client.example" : "server.example");
		snprintf(n, sizeof(n), "%u", 1000 + base);
		flag(&cfg, r, "padding", n);
		flag(&cfg, r, "engine", "kcptun");
		flag(&cfg, r, "mode", "fast2");
#define NUM(key, v)                                          \
	do {                                                 \
		snprintf(n, sizeof(n), "%u", (unsigned)(v)); \
		flag(&cfg, r, key, n);                       \
	} while (0)
		NUM("sndwnd", base + 1);
		NUM("rcvwnd", base + 2);
		NUM("mtu", base + 600);
		NUM("max-streams", base + 4);
		NUM("datashard", base + 5);
		NUM("parityshard", base + 6);
#undef NUM
		snprintf(n, sizeof(n), "%uM", base + 7);
		flag(&cfg, r, "session-buffer", n);
		snprintf(n, sizeof(n), "%uM", base + 8);
		flag(&cfg, r, "total-buffer", n);
		flag(&cfg, r, "kcptun-key", i ? "k-client" : "k-server");
		flag(&cfg, r, "crypt", i ? "salsa20" : "none");
		flag(&cfg, r, "nocomp", "yes");
		flag(&cfg, r, "smuxver", "2");
	}
	flag(&cfg, WN_ROLE_SERVER, "idle-timeout", "7s");
	flag(&cfg, WN_ROLE_SERVER, "idle-close", "8s");
	flag(&cfg, WN_ROLE_SERVER, "max-conns", "9");
	flag(&cfg, WN_ROLE_CLIENT, "keepalive", "1s");
	flag(&cfg, WN_ROLE_CLIENT, "dead-peer-timeout", "2s");
	flag(&cfg, WN_ROLE_CLIENT, "rotate-after", "3s");
	flag(&cfg, WN_ROLE_CLIENT, "rotate-bytes", "4K");
	flag(&cfg, WN_ROLE_CLIENT, "failover-after", "5s");
	flag(&cfg, WN_ROLE_CLIENT, "conns", "6");
	flag(&cfg, WN_ROLE_CLIENT, "probe-interval", "10s");
	assert_int_equal(cfg.n_diags, 0);

	const struct wn_server_cfg *s = &cfg.server;
	const struct wn_client_cfg *c = &cfg.client;
	assert_int_equal(s->log_level, WN_LOG_ERROR);
	assert_int_equal(c->log_level, WN_LOG_TRACE);
	assert_string_equal(s->sni, "server.example");
	assert_string_equal(c->sni, "client.example");
	assert_int_equal(s->padding, 1100);
	assert_int_equal(c->padding, 1200);
	check_engine(&s->engine, 100);
	check_engine(&c->engine, 200);
	assert_int_equal(s->idle_timeout_ms, 7000);
	assert_int_equal(s->idle_close_ms, 8000);
	assert_int_equal(s->max_conns, 9);
	assert_int_equal(c->keepalive_ms, 1000);
	assert_int_equal(c->dead_peer_timeout_ms, 2000);
	assert_int_equal(c->rotate_after_ms, 3000);
	assert_int_equal(c->rotate_bytes, 4096);
	assert_int_equal(c->failover_ms, 5000);
	assert_int_equal(c->conns, 6);
	assert_int_equal(c->probe_ms, 10000);
	/* Bounds come from the row too. */
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_SERVER, "--padding",
	                                    "padding", "32768"),
	                 WN_ECONFIG);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_SERVER, "--max-conns",
	                                    "max-conns", "1000001"),
	                 WN_ECONFIG);
	wn_config_free(&cfg);
}

static void test_udp_sections(void **state)
{
	(void)state;
	struct wn_config cfg;
	char text[1024];
	snprintf(text, sizeof(text),
	         "[client]\n"
	         "server = udp://10.0.0.1:4433\n"
	         "server-key = %s\n"
	         "key = c.key\n"
	         "[udp dns]\n"
	         "listen = 127.0.0.1:5353\n"
	         "target = 10.0.0.9:53\n"
	         "[udp wg]\n"
	         "listen = udp://[::1]:51820\n"
	         "target = wg.example:51820\n"
	         "udp-idle = 5s\n"
	         "max-flows = 8\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), 0);
	assert_int_equal(cfg.n_udps, 2);
	assert_int_equal(cfg.n_forwards, 0);
	assert_string_equal(cfg.udps[0].name, "dns");
	assert_true(cfg.udps[0].udp);
	assert_int_equal(cfg.udps[0].listen.scheme, WN_SCHEME_UDP);
	assert_int_equal(cfg.udps[0].listen.port, 5353);
	assert_int_equal(cfg.udps[0].target.scheme, WN_SCHEME_UDP);
	assert_int_equal(cfg.udps[0].target.port, 53);
	/* The defaults a user expects: a minute idle, 1024 flows. */
	assert_int_equal(cfg.udps[0].udp_idle_ms, 60000);
	assert_int_equal(cfg.udps[0].max_flows, 1024);
	assert_int_equal(cfg.udps[1].udp_idle_ms, 5000);
	assert_int_equal(cfg.udps[1].max_flows, 8);
	assert_string_equal(cfg.udps[1].target.host, "wg.example");
	/* -U adds U1 with the defaults. */
	assert_true(wn_config_is_flag(WN_ROLE_CLIENT, "U"));
	assert_false(wn_config_is_flag(WN_ROLE_SERVER, "U"));
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-U", "U",
	                                    "udp://127.0.0.1:0=10.0.0.9:53"),
	                 0);
	assert_int_equal(cfg.n_udps, 3);
	assert_string_equal(cfg.udps[2].name, "U1");
	assert_int_equal(cfg.udps[2].max_flows, 1024);
	assert_int_equal(cfg.udps[2].target.scheme, WN_SCHEME_UDP);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), 0);
	/* Bad -U values. */
	assert_int_equal(
	    wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-U", "U", "127.0.0.1:53"),
	    WN_ECONFIG);
	expect_diag(&cfg, "-U", "LISTEN=TARGET");
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-U", "U",
	                                    "tcp://127.0.0.1:53=10.0.0.9:53"),
	                 WN_ECONFIG);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_CLIENT, "-U", "U",
	                                    "127.0.0.1:53=unix:/run/x"),
	                 WN_ECONFIG);
	wn_config_free(&cfg);

	/* Bounds, required keys, keys of other sections. */
	snprintf(text, sizeof(text),
	         "[client]\n"
	         "server = udp://10.0.0.1:4433\n"
	         "server-key = %s\n"
	         "key = c.key\n"
	         "[udp a]\n"
	         "listen = 127.0.0.1:5353\n"
	         "udp-idle = 10ms\n"
	         "max-flows = 0\n"
	         "socket-mode = 0600\n"
	         "[udp b]\n"
	         "target = 10.0.0.9:53\n"
	         "[udp c]\n"
	         "listen = 127.0.0.1:5353\n"
	         "target = 10.0.0.9:53\n"
	         "[udp c]\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), WN_ECONFIG);
	expect_diag(&cfg, "[udp a] udp-idle", "between");
	expect_diag(&cfg, "[udp a] max-flows", "from 1 to");
	expect_diag(&cfg, "[udp a] unknown key \"socket-mode\"", NULL);
	expect_diag(&cfg, "t.conf:15", "[udp c] appears twice");
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	expect_diag(&cfg, "[udp a] target is required", NULL);
	expect_diag(&cfg, "[udp b] listen is required", NULL);
	expect_diag(&cfg, "[udp c] listens on the same address", "[udp a]");
	wn_config_free(&cfg);

	/* fec: off by default; DATA/PARITY within bounds; fec-delay only
	 * with fec. */
	snprintf(text, sizeof(text),
	         "[client]\n"
	         "server = udp://10.0.0.1:4433\n"
	         "server-key = %s\n"
	         "key = c.key\n"
	         "[udp a]\n"
	         "listen = 127.0.0.1:5353\n"
	         "target = 10.0.0.9:53\n"
	         "[udp b]\n"
	         "listen = 127.0.0.1:5354\n"
	         "target = 10.0.0.9:53\n"
	         "fec = 10/3\n"
	         "[udp c]\n"
	         "listen = 127.0.0.1:5355\n"
	         "target = 10.0.0.9:53\n"
	         "fec = 32/16\n"
	         "fec-delay = 20ms\n"
	         "[udp d]\n"
	         "listen = 127.0.0.1:5356\n"
	         "target = 10.0.0.9:53\n"
	         "fec = off\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), 0);
	assert_int_equal(cfg.udps[0].fec_data, 0);
	assert_int_equal(cfg.udps[0].fec_delay_ms, 5);
	assert_int_equal(cfg.udps[1].fec_data, 10);
	assert_int_equal(cfg.udps[1].fec_parity, 3);
	assert_int_equal(cfg.udps[1].fec_delay_ms, 5);
	assert_int_equal(cfg.udps[2].fec_data, 32);
	assert_int_equal(cfg.udps[2].fec_parity, 16);
	assert_int_equal(cfg.udps[2].fec_delay_ms, 20);
	assert_int_equal(cfg.udps[3].fec_data, 0);
	struct wn_udp_front_opts uo;
	wn_app_udp_opts(&cfg.udps[1], &uo);
	assert_true(uo.fec_data == 10 && uo.fec_parity == 3 &&
	            uo.fec_delay_ms == 5);
	wn_config_free(&cfg);
	static const char *const bad_fec[] = {"33/3", "10/17", "0/3", "10/0",
	                                      "10",   "10/3x", "/3",  "ten/3",
	                                      "-1/3", "on"};
	for (size_t i = 0; i < sizeof(bad_fec) / sizeof(bad_fec[0]); i++) {
		snprintf(text, sizeof(text),
		         "[client]\n"
		         "server = udp://10.0.0.1:4433\n"
		         "server-key = %s\n"
		         "key = c.key\n"
		         "[udp a]\n"
		         "listen = 127.0.0.1:5353\n"
		         "target = 10.0.0.9:53\n"
		         "fec = %s\n",
		         pk1, bad_fec[i]);
		assert_int_equal(parse(&cfg, text), WN_ECONFIG);
		expect_diag(&cfg, "[udp a] fec", "DATA/PARITY");
		wn_config_free(&cfg);
	}
	snprintf(text, sizeof(text),
	         "[client]\n"
	         "server = udp://10.0.0.1:4433\n"
	         "server-key = %s\n"
	         "key = c.key\n"
	         "[udp a]\n"
	         "listen = 127.0.0.1:5353\n"
	         "target = 10.0.0.9:53\n"
	         "fec-delay = 300ms\n"
	         "[udp b]\n"
	         "listen = 127.0.0.1:5354\n"
	         "target = 10.0.0.9:53\n"
	         "fec-delay = 10ms\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), WN_ECONFIG);
	expect_diag(&cfg, "[udp a] fec-delay", "between");
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	expect_diag(&cfg, "[udp b] fec-delay", "only with fec");
	wn_config_free(&cfg);

	/* Engine kcptun has no datagrams: a clear error at startup. */
	snprintf(text, sizeof(text),
	         "[client]\n"
	         "engine = kcptun\n"
	         "kcptun-key = s3cret\n"
	         "server = udp://10.0.0.1:4433\n"
	         "[udp dns]\n"
	         "listen = 127.0.0.1:5353\n"
	         "target = 10.0.0.9:53\n");
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	expect_diag(&cfg, "[udp dns] engine kcptun carries no datagrams",
	            "quic or kcp");
	wn_config_free(&cfg);
}

static void test_udp_allow_rules(void **state)
{
	(void)state;
	struct wn_config cfg;
	char text[1024];
	snprintf(text, sizeof(text),
	         "[server]\n"
	         "listen = udp://0.0.0.0:4433\n"
	         "key = s.key\n"
	         "allow-client = %s\n"
	         "allow = udp://10.0.0.9:53\n"
	         "allow = 10.0.0.0/8:22\n"
	         "allow = udp://*.example:53\n"
	         "allow = tcp://db.internal:5432\n"
	         "udp-idle = 2m\n"
	         "udp-connections = 4\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), 0);
	assert_int_equal(cfg.server.udp_conns, 4);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_SERVER,
	                                    "--udp-connections",
	                                    "udp-connections", "17"),
	                 WN_ECONFIG);
	expect_diag(&cfg, "udp-connections", "from 1 to 16");
	/* Stream rules first, then the udp ones, each in order. */
	assert_int_equal(cfg.server.n_allow, 4);
	assert_int_equal(cfg.server.n_allow_udp, 2);
	assert_false(cfg.server.allow[0].udp);
	assert_int_equal(cfg.server.allow[0].kind, WN_RULE_CIDR4);
	assert_string_equal(cfg.server.allow[1].text, "db.internal");
	assert_true(cfg.server.allow[2].udp);
	assert_int_equal(cfg.server.allow[2].port_lo, 53);
	assert_true(cfg.server.allow[3].udp);
	assert_string_equal(cfg.server.allow[3].text, ".example");
	assert_int_equal(cfg.server.udp_idle_ms, 120000);
	wn_config_free(&cfg);

	/* udp:// rules may stand beside a fixed stream target; stream rules
	 * may not; udp rules take no unix sockets. */
	snprintf(text, sizeof(text),
	         "[server]\n"
	         "listen = udp://0.0.0.0:4433\n"
	         "key = s.key\n"
	         "allow-client = %s\n"
	         "target = 10.0.0.5:22\n"
	         "allow = udp://10.0.0.9:53\n",
	         pk1);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), 0);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_SERVER, "--allow",
	                                    "allow", "10.0.0.0/8:*"),
	                 0);
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	expect_diag(&cfg, "allow and target exclude", NULL);
	assert_int_equal(wn_config_set_flag(&cfg, WN_ROLE_SERVER, "--allow",
	                                    "allow", "udp://unix:/run/x"),
	                 WN_ECONFIG);
	expect_diag(&cfg, "--allow", "no unix sockets");
	wn_config_free(&cfg);
	/* The defaults of the server's flows: a minute idle, one socket. */
	wn_config_init(&cfg);
	assert_int_equal(cfg.server.udp_idle_ms, 60000);
	assert_int_equal(cfg.server.udp_conns, 1);
	wn_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_config),
	    cmocka_unit_test(test_noop_carrier_keys_refused),
	    cmocka_unit_test(test_socks5_exposure_and_socket_mode),
	    cmocka_unit_test(test_table_fields),
	    cmocka_unit_test(test_cfg_keyset_top_bit),
	    cmocka_unit_test(test_carrier_keys),
	    cmocka_unit_test(test_every_problem_reported_with_line),
	    cmocka_unit_test(test_kcptun_server_needs_a_secret),
	    cmocka_unit_test(test_validation_requires_and_forbids),
	    cmocka_unit_test(test_api_is_refused_until_built),
	    cmocka_unit_test(test_engine_keys_of_another_engine),
	    cmocka_unit_test(test_buffer_budget_keys),
	    cmocka_unit_test(test_per_key_caps),
	    cmocka_unit_test(test_malformed_value_is_not_also_missing),
	    cmocka_unit_test(test_flags_override_and_append),
	    cmocka_unit_test(test_long_lines_and_nul_bytes),
	    cmocka_unit_test(test_durations),
	    cmocka_unit_test(test_describe_lists_every_flag),
	    cmocka_unit_test(test_socks5_sections),
	    cmocka_unit_test(test_udp_sections),
	    cmocka_unit_test(test_udp_allow_rules),
	    cmocka_unit_test(test_inline_secrets_and_fifo),
	    cmocka_unit_test(test_parallel_and_probe_keys),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
