#include "app/cli.h"

#include <string.h>

#include "util/err.h"

static bool is_config_opt(const char *a)
{
	return strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0;
}

int wn_cli_load(struct wn_config *cfg, enum wn_role role, int argc, char **argv,
                wn_cli_extra_fn extra, void *ctx)
{
	size_t before = cfg->n_diags;
	/* Pass 1: files, so that flags override them whatever the order. */
	for (int i = 0; i < argc; i++) {
		if (is_config_opt(argv[i])) {
			if (i + 1 >= argc) {
				wn_config_diag(cfg, "%s: needs a FILE",
				               argv[i]);
				break;
			}
			wn_config_parse_file(cfg, argv[++i]);
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			wn_config_parse_file(cfg, argv[i] + 9);
		}
	}
	/* Pass 2: flags. */
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (is_config_opt(a)) {
			i++;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0)
			continue;
		if (extra) {
			int used = extra(ctx, argc - i, argv + i);
			if (used > 0) {
				i += used - 1;
				continue;
			}
		}
		char key[64];
		const char *value = NULL;
		if (strcmp(a, "-L") == 0 || strcmp(a, "-D") == 0 ||
		    strcmp(a, "-U") == 0) {
			snprintf(key, sizeof(key), "%s", a + 1);
		} else if (strncmp(a, "--", 2) == 0 && a[2]) {
			const char *eq = strchr(a + 2, '=');
			size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			if (n >= sizeof(key))
				n = sizeof(key) - 1;
			memcpy(key, a + 2, n);
			key[n] = '\0';
			if (eq)
				value = eq + 1;
		} else {
			wn_config_diag(cfg, "%s: unexpected argument", a);
			continue;
		}
		if (!wn_config_is_flag(role, key)) {
			wn_config_diag(cfg, "%s: unknown option", a);
			continue;
		}
		if (!value) {
			if (i + 1 >= argc) {
				wn_config_diag(cfg, "%s: needs a value", a);
				break;
			}
			value = argv[++i];
		}
		char flag[80];
		snprintf(flag, sizeof(flag), "%s%s", key[1] ? "--" : "-", key);
		wn_config_set_flag(cfg, role, flag, key, value);
	}
	return cfg->n_diags == before && !cfg->oom ? 0 : WN_ECONFIG;
}

void wn_cli_print_diags(const struct wn_config *cfg, FILE *out)
{
	for (size_t i = 0; i < cfg->n_diags; i++)
		fprintf(out, "%s\n", cfg->diags[i].text);
	if (cfg->oom)
		fprintf(out, "(out of memory: some problems may be missing)\n");
}
