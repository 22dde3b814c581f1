/* The engine registry: every engine's table, by name. */
#include <string.h>

#include "engine/engine_ops.h"

static const struct wn_engine_ops *const engines[] = {
    &wn_quic_engine_ops,
    &wn_kcp_engine_ops,
    &wn_kcptun_engine_ops,
};

const struct wn_engine_ops *wn_engine_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(engines) / sizeof(engines[0]);
	     i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}
