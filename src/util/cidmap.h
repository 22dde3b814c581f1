/* A map from connection IDs (1..20 bytes) to objects, for routing packets to
 * their connection. Keys are hashed with SipHash under a random key, so a
 * peer choosing its own connection IDs cannot aim them at one bucket. The map
 * grows as needed; it owns its nodes, not the values. */
#ifndef WN_UTIL_CIDMAP_H
#define WN_UTIL_CIDMAP_H

#include <stddef.h>
#include <stdint.h>

#define WN_CID_MAX 20

struct wn_cidmap_node;

struct wn_cidmap {
	struct wn_cidmap_node **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	uint8_t key[16]; /* SipHash key */
};

/* Initializes an empty map. Returns 0 or WN_ENOMEM. */
int wn_cidmap_init(struct wn_cidmap *m);

/* Frees the map's nodes (not the values). */
void wn_cidmap_free(struct wn_cidmap *m);

/* Adds cid -> value. Returns 0, WN_EEXIST if cid is present, WN_EINVAL for a
 * bad length, or WN_ENOMEM. */
int wn_cidmap_add(struct wn_cidmap *m, const uint8_t *cid, size_t len,
                  void *value);

/* Returns the value for cid, or NULL. */
void *wn_cidmap_get(const struct wn_cidmap *m, const uint8_t *cid, size_t len);

/* Removes cid; returns its value or NULL if absent. */
void *wn_cidmap_del(struct wn_cidmap *m, const uint8_t *cid, size_t len);

/* Removes every entry whose value is `value`; returns how many. */
size_t wn_cidmap_del_value(struct wn_cidmap *m, const void *value);

#endif
