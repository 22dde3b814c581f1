/* The kcptun engine's configuration: kcptun's flags and defaults, what it
 * needs (a fixed target, no keys) and what it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "app/config.h"
#include "util/err.h"

static int has_diag(const struct wn_config *cfg, const char *needle)
{
	for (size_t i = 0; i < cfg->n_diags; i++)
		if (strstr(cfg->diags[i].text, needle))
			return 1;
	return 0;
}

static void set(struct wn_config *cfg, enum wn_role role, const char *key,
                const char *value)
{
	char flag[64];
	snprintf(flag, sizeof(flag), "--%s", key);
	wn_config_set_flag(cfg, role, flag, key, value);
}

static void test_client_in_kcptun_terms(void **state)
{
	(void)state;
	struct wn_config cfg;
	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_CLIENT, "L", "127.0.0.1:12948"); /* no target */
	set(&cfg, WN_ROLE_CLIENT, "engine", "kcptun");
	set(&cfg, WN_ROLE_CLIENT, "server", "udp://192.0.2.1:29900");
	set(&cfg, WN_ROLE_CLIENT, "kcptun-key", "s3cret");
	set(&cfg, WN_ROLE_CLIENT, "crypt", "salsa20");
	set(&cfg, WN_ROLE_CLIENT, "nocomp", "yes");
	set(&cfg, WN_ROLE_CLIENT, "datashard", "0");
	set(&cfg, WN_ROLE_CLIENT, "parityshard", "0");
	set(&cfg, WN_ROLE_CLIENT, "smuxver", "2");
	assert_int_equal(cfg.n_diags, 0);
	/* No server-key, no key file: kcptun has only its passphrase. */
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), 0);
	const struct wn_engine_cfg *e = &cfg.client.engine;
	assert_int_equal(e->kind, WN_ENGINE_KCPTUN);
	assert_string_equal(e->mode, "fast"); /* kcptun's default mode */
	assert_string_equal(e->kcptun_key, "s3cret");
	assert_string_equal(e->crypt, "salsa20");
	assert_true(e->nocomp);
	assert_int_equal(e->datashard, 0);
	assert_int_equal(e->smuxver, 2);
	assert_int_equal(cfg.n_forwards, 1);
	assert_false(cfg.forwards[0].has_target);
	wn_config_free(&cfg);
}

static void test_kcptun_defaults_and_refusals(void **state)
{
	(void)state;
	struct wn_config cfg;
	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_SERVER, "engine", "kcptun");
	set(&cfg, WN_ROLE_SERVER, "listen", "udp://0.0.0.0:29900");
	set(&cfg, WN_ROLE_SERVER, "mode", "fast3");
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	assert_true(has_diag(&cfg, "needs target"));
	const struct wn_engine_cfg *e = &cfg.server.engine;
	assert_string_equal(e->mode, "fast3"); /* set: kept */
	assert_string_equal(e->crypt, "aes");
	assert_string_equal(e->kcptun_key, "it's a secrect");
	assert_int_equal(e->datashard, 10);
	assert_int_equal(e->parityshard, 3);
	assert_int_equal(e->smuxver, 1);
	assert_false(e->nocomp);
	wn_config_free(&cfg);

	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_SERVER, "crypt", "twofish");
	assert_true(has_diag(&cfg, "not supported by warren yet"));
	set(&cfg, WN_ROLE_SERVER, "crypt", "rot13");
	assert_true(has_diag(&cfg, "expected aes"));
	set(&cfg, WN_ROLE_SERVER, "smuxver", "3");
	assert_true(has_diag(&cfg, "expected a number from 1 to 2"));
	wn_config_free(&cfg);

	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_SERVER, "engine", "kcptun");
	set(&cfg, WN_ROLE_SERVER, "listen", "udp://0.0.0.0:29900");
	set(&cfg, WN_ROLE_SERVER, "target", "127.0.0.1:22");
	set(&cfg, WN_ROLE_SERVER, "datashard", "5");
	set(&cfg, WN_ROLE_SERVER, "parityshard", "0");
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	assert_true(has_diag(&cfg, "both 0"));
	wn_config_free(&cfg);

	/* SOCKS5 names targets per stream: kcptun streams cannot. */
	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_CLIENT, "engine", "kcptun");
	set(&cfg, WN_ROLE_CLIENT, "server", "udp://192.0.2.1:29900");
	set(&cfg, WN_ROLE_CLIENT, "D", "127.0.0.1:1080");
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	assert_true(has_diag(&cfg, "cannot carry SOCKS5"));
	wn_config_free(&cfg);

	/* kcptun streams carry no target: a forward's would be ignored. */
	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_CLIENT, "engine", "kcptun");
	set(&cfg, WN_ROLE_CLIENT, "server", "udp://192.0.2.1:29900");
	set(&cfg, WN_ROLE_CLIENT, "L", "127.0.0.1:2000=10.0.0.1:22");
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	assert_true(has_diag(&cfg, "[forward L1] target: engine kcptun"));
	wn_config_free(&cfg);

	/* No identity keys, so no tcp/tls carrier (its preambles would be
	 * sealed to the all-zero key): udp only, on both ends. */
	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_SERVER, "engine", "kcptun");
	set(&cfg, WN_ROLE_SERVER, "listen", "udp://0.0.0.0:29900");
	set(&cfg, WN_ROLE_SERVER, "listen", "tcp://0.0.0.0:29901");
	set(&cfg, WN_ROLE_SERVER, "listen", "tls://0.0.0.0:29902");
	set(&cfg, WN_ROLE_SERVER, "target", "127.0.0.1:22");
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_SERVER), WN_ECONFIG);
	assert_true(has_diag(&cfg, "listen tcp://0.0.0.0:29901: engine "
	                           "kcptun runs over udp:// only"));
	assert_true(has_diag(&cfg, "listen tls://0.0.0.0:29902: engine "
	                           "kcptun runs over udp:// only"));
	assert_false(has_diag(&cfg, "udp://0.0.0.0:29900: engine"));
	wn_config_free(&cfg);
	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_CLIENT, "engine", "kcptun");
	set(&cfg, WN_ROLE_CLIENT, "server", "tcp://192.0.2.1:29900");
	set(&cfg, WN_ROLE_CLIENT, "L", "127.0.0.1:2000");
	assert_int_equal(wn_config_validate(&cfg, WN_ROLE_CLIENT), WN_ECONFIG);
	assert_true(has_diag(&cfg, "server tcp://192.0.2.1:29900: engine "
	                           "kcptun runs over udp:// only"));
	wn_config_free(&cfg);

	/* Other engines still need -L LISTEN=TARGET. */
	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_CLIENT, "L", "127.0.0.1:2000");
	wn_config_validate(&cfg, WN_ROLE_CLIENT);
	assert_true(has_diag(&cfg, "target is required"));
	wn_config_free(&cfg);
}

/* nocomp takes the same yes/no words as every boolean key. */
static void test_nocomp_words(void **state)
{
	static const char *const yes[] = {"yes", "true", "on"};
	static const char *const no[] = {"no", "false", "off"};
	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct wn_config cfg;
		wn_config_init(&cfg);
		set(&cfg, WN_ROLE_CLIENT, "nocomp", yes[i]);
		assert_true(cfg.client.engine.nocomp);
		set(&cfg, WN_ROLE_CLIENT, "nocomp", no[i]);
		assert_false(cfg.client.engine.nocomp);
		assert_int_equal(cfg.n_diags, 0);
		wn_config_free(&cfg);
	}
	struct wn_config cfg;
	wn_config_init(&cfg);
	set(&cfg, WN_ROLE_CLIENT, "nocomp", "maybe");
	assert_true(has_diag(&cfg, "expected yes or no"));
	wn_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_in_kcptun_terms),
	    cmocka_unit_test(test_kcptun_defaults_and_refusals),
	    cmocka_unit_test(test_nocomp_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
