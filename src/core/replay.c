#include "core/replay.h"

#include <string.h>

#include "util/err.h"

#define WORD_MASK (WN_REPLAY_WORDS - 1)

void wn_replay_init(struct wn_replay *r)
{
	memset(r, 0, sizeof(*r));
}

int wn_replay_peek(const struct wn_replay *r, uint64_t ctr)
{
	uint64_t pos;

	if (ctr == UINT64_MAX)
		return WN_EPROTO;
	pos = ctr + 1; /* 0 stays free to mean "nothing seen" */
	if (pos > r->top)
		return 0;
	if (r->top - pos >= WN_REPLAY_WINDOW)
		return WN_EPROTO;
	if (r->ring[(pos / 64) & WORD_MASK] & (UINT64_C(1) << (pos % 64)))
		return WN_EPROTO;
	return 0;
}

int wn_replay_commit(struct wn_replay *r, uint64_t ctr)
{
	uint64_t pos, word, top_word, n;

	if (wn_replay_peek(r, ctr) != 0)
		return WN_EPROTO;
	pos = ctr + 1;
	word = pos / 64;
	if (pos > r->top) {
		/* Clear the words between the old highest and the new one:
		 * they now stand for counters never seen. After a jump
		 * longer than the ring, every word is cleared once. */
		top_word = r->top / 64;
		n = word - top_word;
		if (n > WN_REPLAY_WORDS)
			n = WN_REPLAY_WORDS;
		for (uint64_t i = 1; i <= n; i++)
			r->ring[(top_word + i) & WORD_MASK] = 0;
		r->top = pos;
	}
	r->ring[word & WORD_MASK] |= UINT64_C(1) << (pos % 64);
	return 0;
}

int wn_replay_check(struct wn_replay *r, uint64_t ctr)
{
	return wn_replay_commit(r, ctr);
}
