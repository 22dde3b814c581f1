/* Fuzz target: the whole config path a hostile or broken file can reach:
 * INI parsing with our line reader, every value parser, validation for each
 * role, and the summary helpers. No file I/O (keys are not loaded). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	struct wn_config cfg;
	wn_config_init(&cfg);
	wn_config_parse_string(&cfg, "fuzz.conf", "/base", (const char *)data,
	                       size);
	/* Flags with the same bytes, split at the first '\n': key, value. */
	const uint8_t *nl = memchr(data, '\n', size);
	if (nl && (size_t)(nl - data) < 64) {
		char key[64];
		memcpy(key, data, (size_t)(nl - data));
		key[nl - data] = '\0';
		size_t vlen = size - (size_t)(nl - data) - 1;
		char *value = malloc(vlen + 1);
		if (value) {
			memcpy(value, nl + 1, vlen);
			value[vlen] = '\0';
			for (int role = WN_ROLE_SERVER; role <= WN_ROLE_CLIENT;
			     role++)
				if (wn_config_is_flag(role, key))
					wn_config_set_flag(&cfg, role, "--x",
					                   key, value);
			free(value);
		}
	}
	wn_config_validate(&cfg, WN_ROLE_NONE);
	wn_config_validate(&cfg, WN_ROLE_SERVER);
	wn_config_validate(&cfg, WN_ROLE_CLIENT);
	for (size_t i = 0; i < cfg.n_forwards; i++) {
		char buf[256];
		wn_endpoint_format(&cfg.forwards[i].listen, buf, sizeof(buf));
		wn_endpoint_format(&cfg.forwards[i].target, buf, sizeof(buf));
	}
	wn_config_free(&cfg);
	return 0;
}
