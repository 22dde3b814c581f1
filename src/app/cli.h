/* Command-line handling shared by the subcommands that take a config:
 * `-c FILE` / `--config FILE` (repeatable) loads files first, then every
 * `--KEY VALUE` / `--KEY=VALUE` flag of the role is applied on top. */
#ifndef WN_APP_CLI_H
#define WN_APP_CLI_H

#include <stdio.h>

#include "app/config.h"

/* Loads config files and flags from argv[0..argc) into cfg (already
 * initialized). Arguments not recognised are reported as diagnostics.
 * `extra` (may be NULL) is called for options the caller handles itself;
 * it returns the number of arguments it consumed (0: not its option).
 * Returns 0 or WN_ECONFIG. */
typedef int (*wn_cli_extra_fn)(void *ctx, int argc, char **argv);
int wn_cli_load(struct wn_config *cfg, enum wn_role role, int argc, char **argv,
                wn_cli_extra_fn extra, void *ctx);

/* Prints every diagnostic of cfg, one per line, to out. */
void wn_cli_print_diags(const struct wn_config *cfg, FILE *out);

#endif
