/* Fixed-size bit sets: an array of uint64_t words whose length is fixed at
 * compile time from the number of bits (WN_BITSET_WORDS), so a set sized
 * for N bits never shifts past its word however large N grows. Callers
 * keep bit < the size they declared. */
#ifndef WN_UTIL_BITSET_H
#define WN_UTIL_BITSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Words needed for nbits bits. */
#define WN_BITSET_WORDS(nbits) (((nbits) + 63) / 64)

static inline void wn_bitset_set(uint64_t *w, size_t bit)
{
	w[bit / 64] |= UINT64_C(1) << (bit % 64);
}

static inline void wn_bitset_clear(uint64_t *w, size_t bit)
{
	w[bit / 64] &= ~(UINT64_C(1) << (bit % 64));
}

static inline bool wn_bitset_test(const uint64_t *w, size_t bit)
{
	return (w[bit / 64] >> (bit % 64)) & 1u;
}

#endif
