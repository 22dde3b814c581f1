/* The engine registry: every engine type's row, by name. */
#include <string.h>

#include "engine/engine_ops.h"

static const struct wn_engine_type *const engines[] = {
    &wn_quic_engine,
    &wn_kcp_engine,
    &wn_kcptun_engine,
};

const struct wn_engine_type *wn_engine_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(engines) / sizeof(engines[0]);
	     i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}
