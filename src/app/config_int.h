/* Private to the config module (config.c, config_keys.c, config_parse.c,
 * config_check.c): the key schema, the context of one setting being
 * applied, and the few helpers the files share. config.h is the API. */
#ifndef WN_APP_CONFIG_INT_H
#define WN_APP_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/config.h"

/* ---- schema -------------------------------------------------------- */

enum sec_bit {
	SEC_SERVER = 1,
	SEC_CLIENT = 2,
	SEC_FORWARD = 4,
	SEC_SOCKS5 = 8,
	SEC_UDP = 16, /* [udp NAME]: a struct wn_forward_cfg, at SI_FORWARD */
};

enum key_id {
	K_LISTEN,
	K_KEY,
	K_ALLOW_CLIENT,
	K_ALLOW,
	K_TARGET,
	K_LOG_LEVEL,
	K_API,
	K_IDLE_TIMEOUT,
	K_SERVER,
	K_SERVER_KEY,
	K_KEEPALIVE,
	K_DEAD_PEER,
	K_TLS_CERT,
	K_TLS_KEY,
	K_FALLBACK,
	K_SNI,
	K_ROTATE_AFTER,
	K_ROTATE_BYTES,
	K_IDLE_CLOSE,
	K_MAX_CONNS,
	K_FAILOVER_AFTER,
	K_PADDING,
	K_ENGINE,
	K_MODE,
	K_SNDWND,
	K_RCVWND,
	K_MTU,
	K_MAX_STREAMS,
	K_SESSION_BUFFER,
	K_TOTAL_BUFFER,
	K_SESSIONS_PER_KEY,
	K_STREAMS_PER_KEY,
	K_KCPTUN_KEY,
	K_CRYPT,
	K_NOCOMP,
	K_DATASHARD,
	K_PARITYSHARD,
	K_SMUXVER,
	K_KCPTUN_INSECURE,
	K_EAGER,
	K_USER,
	K_USERS_FILE,
	K_CONNS,
	K_PROBE_INTERVAL,
	K_SOCKET_MODE,
	K_UNAUTHENTICATED,
	K_UDP_IDLE,
	K_MAX_FLOWS,
	K_UDP_CONNECTIONS,
	K_FEC,
	K_FEC_DELAY,
};

#define F_REPEAT 1u

struct keydef;
struct setting;

/* Parses v into the field at `field` (of the type the parser names), or
 * records a diagnostic and returns WN_EINVAL (config_keys.c). */
typedef int (*wn_cfg_value_fn)(const struct setting *st, const struct keydef *k,
                               const char *v, void *field);

/* Index of a section kind in keydef.off. */
enum sec_index { SI_SERVER, SI_CLIENT, SI_FORWARD, SI_SOCKS5, SI_N };

struct keydef {
	unsigned sections;
	const char *name;
	enum key_id id;
	unsigned flags;
	const char *arg;  /* placeholder for help: "URL", "FILE", ... */
	const char *help; /* one line */
	uint32_t min_ms, max_ms;
	/* A key that is one field: its parser and, per section kind it is
	 * in, the field's offset in that section's struct. NULL: the key
	 * needs more than one field, and its section's setter handles it. */
	wn_cfg_value_fn set;
	size_t off[SI_N];
};

/* The key table, defined in config_keys.c. */
extern const struct keydef wn_cfg_keys[];
extern const size_t wn_cfg_n_keys;

/* The key `name` of the section kinds in sec, or NULL if there is none. */
static inline const struct keydef *find_key(unsigned sec, const char *name)
{
	for (size_t i = 0; i < wn_cfg_n_keys; i++)
		if ((wn_cfg_keys[i].sections & sec) &&
		    strcmp(wn_cfg_keys[i].name, name) == 0)
			return &wn_cfg_keys[i];
	return NULL;
}

/* The key's bit number in the set_mask and file_mask of its section: its
 * row in the table, below WN_CFG_KEYS_MAX (asserted in config_keys.c). */
static inline unsigned key_bit(const struct keydef *k)
{
	return (unsigned)(k - wn_cfg_keys);
}

static inline bool key_in(const struct wn_cfg_keyset *set,
                          const struct keydef *k)
{
	return wn_bitset_test(set->w, key_bit(k));
}

static inline void key_add(struct wn_cfg_keyset *set, const struct keydef *k)
{
	wn_bitset_set(set->w, key_bit(k));
}

/* Appends one zeroed element of `size` bytes to *arr; returns it or NULL. */
static inline void *grow(struct wn_config *cfg, void *arrp, size_t *n,
                         size_t size)
{
	void **arr = arrp;
	void *na = realloc(*arr, (*n + 1) * size);
	if (!na) {
		cfg->oom = true;
		return NULL;
	}
	*arr = na;
	void *elem = (char *)na + *n * size;
	memset(elem, 0, size);
	(*n)++;
	return elem;
}

/* Context of one setting being applied. */
struct setting {
	struct wn_config *cfg;
	const char *origin;  /* "FILE:LINE" or "--flag" */
	const char *secname; /* "server", "client", "forward NAME" */
	const char *dir;     /* base for relative paths, or NULL */
	bool from_file;
	unsigned line; /* the file line, with from_file */
};

/* Applies key=value to one section object, enforcing "set once in files"
 * for single-valued keys. `sec` is the section kind; fwd or sk is the
 * section object of a [forward] or [socks5] section (borrowed). Problems
 * are recorded as diagnostics. Returns 0 or WN_ECONFIG (config_keys.c). */
int wn_cfg_apply(const struct setting *st, unsigned sec,
                 struct wn_forward_cfg *fwd, struct wn_socks5_cfg *sk,
                 const char *name, const char *v);

/* Parses "NAME:PASSWORD" (n bytes, the first ':' splits) into *u. Returns 0,
 * or WN_EINVAL with *why set to a static message (config_keys.c). */
int wn_cfg_parse_user(const char *v, size_t n, struct wn_socks5_user *u,
                      const char **why);

/* Appends a copy of *u to sk's users. Returns 0, or WN_EINVAL with *why set
 * when the name is listed already; out of memory sets cfg->oom
 * (config_keys.c). */
int wn_cfg_add_user(struct wn_config *cfg, struct wn_socks5_cfg *sk,
                    const struct wn_socks5_user *u, const char **why);

/* Appends a new UDP forward with its defaults, named `name`, declared at
 * `origin` (both copied). Returns it, owned by cfg, or NULL when out of
 * memory (config.c). */
struct wn_forward_cfg *wn_cfg_new_udp(struct wn_config *cfg, const char *name,
                                      const char *origin);

/* Appends a new SOCKS5 proxy with its defaults, named `name`, declared at
 * `origin` (both copied). Returns it, owned by cfg, or NULL when out of
 * memory (config.c). */
struct wn_socks5_cfg *wn_cfg_new_socks(struct wn_config *cfg, const char *name,
                                       const char *origin);

#endif
