/* `warren check`: validate a configuration and say what is wrong.
 *
 *   warren check -c FILE [-c FILE...] [--role server|client] [FLAGS...]
 *
 * Without --role every section present is checked; with it, the config is
 * checked as `warren server` or `warren client` would use it, flags
 * included. Key files are opened and their permissions checked. */
#include <stdio.h>
#include <string.h>

#include "app/cli.h"
#include "app/commands.h"
#include "app/config.h"

struct check_opts {
	enum wn_role role;
	bool role_bad;
};

static int role_opt(void *ctx, int argc, char **argv)
{
	struct check_opts *o = ctx;
	const char *v = NULL;
	int used = 0;
	if (strcmp(argv[0], "--role") == 0) {
		if (argc < 2) {
			o->role_bad = true;
			return 1;
		}
		v = argv[1];
		used = 2;
	} else if (strncmp(argv[0], "--role=", 7) == 0) {
		v = argv[0] + 7;
		used = 1;
	} else {
		return 0;
	}
	if (strcmp(v, "server") == 0)
		o->role = WN_ROLE_SERVER;
	else if (strcmp(v, "client") == 0)
		o->role = WN_ROLE_CLIENT;
	else
		o->role_bad = true;
	return used;
}

static void summary(const struct wn_config *cfg, enum wn_role role)
{
	char buf[128];
	if (cfg->server.present && role != WN_ROLE_CLIENT) {
		const struct wn_server_cfg *s = &cfg->server;
		printf("server: %zu listen address%s (first %s), %zu client "
		       "key%s, ",
		       s->n_listen, s->n_listen == 1 ? "" : "es",
		       s->n_listen
		           ? wn_endpoint_format(&s->listen[0], buf, sizeof(buf))
		           : "-",
		       s->n_allow_client, s->n_allow_client == 1 ? "" : "s");
		if (s->has_target)
			printf(
			    "fixed target %s\n",
			    wn_endpoint_format(&s->target, buf, sizeof(buf)));
		else
			printf("%zu allow rule%s\n", s->n_allow,
			       s->n_allow == 1 ? "" : "s");
	}
	if (cfg->client.present && role != WN_ROLE_SERVER) {
		const struct wn_client_cfg *c = &cfg->client;
		printf("client: %zu server address%s (first %s), %zu "
		       "forward%s\n",
		       c->n_server, c->n_server == 1 ? "" : "es",
		       c->n_server
		           ? wn_endpoint_format(&c->server[0], buf, sizeof(buf))
		           : "-",
		       cfg->n_forwards, cfg->n_forwards == 1 ? "" : "s");
		for (size_t i = 0; i < cfg->n_forwards; i++) {
			char t[128];
			printf("  forward %s: %s -> %s\n",
			       cfg->forwards[i].name,
			       wn_endpoint_format(&cfg->forwards[i].listen, buf,
			                          sizeof(buf)),
			       wn_endpoint_format(&cfg->forwards[i].target, t,
			                          sizeof(t)));
		}
		for (size_t i = 0; i < cfg->n_socks; i++) {
			const struct wn_socks5_cfg *sk = &cfg->socks[i];
			printf(
			    "  socks5 %s: %s, %s, %zu user%s\n", sk->name,
			    wn_endpoint_format(&sk->listen, buf, sizeof(buf)),
			    sk->eager ? "eager" : "standard", sk->n_users,
			    sk->n_users == 1 ? "" : "s");
		}
	}
}

int wn_cmd_check(int argc, char **argv)
{
	if (argc == 0) {
		fprintf(stderr, "usage: warren check -c FILE [--role "
		                "server|client] [FLAGS...]\n");
		return 2;
	}
	struct check_opts o = {.role = WN_ROLE_NONE};
	/* The role decides which flags exist, so find it first. */
	for (int i = 0; i < argc; i++) {
		int used = role_opt(&o, argc - i, argv + i);
		if (used > 1)
			i += used - 1;
	}
	if (o.role_bad) {
		fprintf(stderr,
		        "warren check: --role takes server or client\n");
		return 2;
	}
	struct wn_config cfg;
	wn_config_init(&cfg);
	wn_cli_load(&cfg, o.role, argc, argv, role_opt, &o);
	wn_config_validate(&cfg, o.role);
	wn_config_load_keys(&cfg, o.role, NULL, NULL);
	if (o.role != WN_ROLE_SERVER)
		wn_config_load_users(&cfg);
	int rc = 0;
	if (cfg.n_diags > 0 || cfg.oom) {
		wn_cli_print_diags(&cfg, stderr);
		fprintf(stderr, "warren check: %zu problem%s found\n",
		        cfg.n_diags, cfg.n_diags == 1 ? "" : "s");
		rc = 1;
	} else {
		summary(&cfg, o.role);
		printf("configuration ok\n");
	}
	wn_config_free(&cfg);
	return rc;
}
