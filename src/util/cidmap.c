#include "util/cidmap.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct wn_cidmap_node {
	struct wn_cidmap_node *next;
	void *value;
	uint8_t len;
	uint8_t cid[WN_CID_MAX];
};

static size_t slot(const struct wn_cidmap *m, const uint8_t *cid, size_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, cid, len, m->key);
	uint64_t v;
	memcpy(&v, h, sizeof(v));
	return (size_t)(v & (m->nbuckets - 1));
}

int wn_cidmap_init(struct wn_cidmap *m)
{
	memset(m, 0, sizeof(*m));
	if (sodium_init() < 0)
		return WN_EINTERNAL;
	m->nbuckets = 64;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets)
		return WN_ENOMEM;
	randombytes_buf(m->key, sizeof(m->key));
	return 0;
}

void wn_cidmap_free(struct wn_cidmap *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct wn_cidmap_node *n = m->buckets[i];
		while (n) {
			struct wn_cidmap_node *next = n->next;
			free(n);
			n = next;
		}
	}
	free(m->buckets);
	memset(m, 0, sizeof(*m));
}

static void grow(struct wn_cidmap *m)
{
	size_t nb = m->nbuckets * 2;
	struct wn_cidmap_node **b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* keep the old table: slower, still correct */
	struct wn_cidmap old = *m;
	m->buckets = b;
	m->nbuckets = nb;
	for (size_t i = 0; i < old.nbuckets; i++) {
		struct wn_cidmap_node *n = old.buckets[i];
		while (n) {
			struct wn_cidmap_node *next = n->next;
			size_t s = slot(m, n->cid, n->len);
			n->next = b[s];
			b[s] = n;
			n = next;
		}
	}
	free(old.buckets);
}

int wn_cidmap_add(struct wn_cidmap *m, const uint8_t *cid, size_t len,
                  void *value)
{
	if (len == 0 || len > WN_CID_MAX)
		return WN_EINVAL;
	if (wn_cidmap_get(m, cid, len))
		return WN_EEXIST;
	struct wn_cidmap_node *n = malloc(sizeof(*n));
	if (!n)
		return WN_ENOMEM;
	n->value = value;
	n->len = (uint8_t)len;
	memcpy(n->cid, cid, len);
	size_t s = slot(m, cid, len);
	n->next = m->buckets[s];
	m->buckets[s] = n;
	if (++m->count > m->nbuckets)
		grow(m);
	return 0;
}

void *wn_cidmap_get(const struct wn_cidmap *m, const uint8_t *cid, size_t len)
{
	if (len == 0 || len > WN_CID_MAX)
		return NULL;
	for (struct wn_cidmap_node *n = m->buckets[slot(m, cid, len)]; n;
	     n = n->next)
		if (n->len == len && memcmp(n->cid, cid, len) == 0)
			return n->value;
	return NULL;
}

void *wn_cidmap_del(struct wn_cidmap *m, const uint8_t *cid, size_t len)
{
	if (len == 0 || len > WN_CID_MAX)
		return NULL;
	struct wn_cidmap_node **pp = &m->buckets[slot(m, cid, len)];
	for (; *pp; pp = &(*pp)->next) {
		struct wn_cidmap_node *n = *pp;
		if (n->len == len && memcmp(n->cid, cid, len) == 0) {
			void *v = n->value;
			*pp = n->next;
			free(n);
			m->count--;
			return v;
		}
	}
	return NULL;
}

size_t wn_cidmap_del_value(struct wn_cidmap *m, const void *value)
{
	size_t removed = 0;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct wn_cidmap_node **pp = &m->buckets[i];
		while (*pp) {
			struct wn_cidmap_node *n = *pp;
			if (n->value == value) {
				*pp = n->next;
				free(n);
				m->count--;
				removed++;
			} else {
				pp = &n->next;
			}
		}
	}
	return removed;
}
