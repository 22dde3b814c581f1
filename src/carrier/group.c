/* Pure decisions of a tcp or tls carrier's connection group (group.h). */
#include "carrier/group.h"

size_t wn_sgroup_pick(const size_t *queued, size_t n, size_t cur, size_t low)
{
	size_t best = n;

	if (cur < n && queued[cur] != WN_SGROUP_NONE && queued[cur] <= low)
		return cur;
	if (cur < n && queued[cur] != WN_SGROUP_NONE)
		best = cur;
	for (size_t i = 0; i < n; i++) {
		if (queued[i] == WN_SGROUP_NONE)
			continue;
		if (best == n || queued[i] < queued[best])
			best = i;
	}
	return best;
}

bool wn_sgroup_rotate_due(uint64_t age_ms, uint64_t bytes,
                          uint32_t rotate_after_ms, uint64_t rotate_bytes)
{
	return (rotate_after_ms && age_ms >= rotate_after_ms) ||
	       (rotate_bytes && bytes >= rotate_bytes);
}

bool wn_sgroup_rotate_may_start(uint64_t now, bool busy, bool started,
                                uint64_t last_ms, uint32_t rotate_after_ms,
                                unsigned n)
{
	if (busy)
		return false;
	if (!started || !rotate_after_ms || n <= 1)
		return true;
	return now >= last_ms && now - last_ms >= rotate_after_ms / n;
}

bool wn_sgroup_ping_due(uint64_t now, uint64_t last_tx_ms, uint32_t ping_ms)
{
	return now >= last_tx_ms && now - last_tx_ms >= ping_ms;
}

bool wn_sgroup_ack_due(uint64_t now, uint64_t last_rx_ms, uint64_t last_tx_ms,
                       uint32_t ack_ms)
{
	return last_rx_ms > last_tx_ms && now >= last_tx_ms &&
	       now - last_tx_ms >= ack_ms;
}

bool wn_sgroup_silent(uint64_t now, uint64_t last_rx_ms, uint32_t silent_ms,
                      size_t members)
{
	return members > 1 && now >= last_rx_ms && now - last_rx_ms > silent_ms;
}
