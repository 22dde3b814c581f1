/* warren's configuration: one schema, two sources.
 *
 * A config file is INI (parsed with libinih) with one section per role and
 * one per tunnel:
 *
 *   [server]              keys: listen, key, allow-client, allow, target,
 *                               log-level, api, idle-timeout, engine, mode,
 *                               sndwnd, rcvwnd, mtu, max-streams, tls-cert,
 *                               tls-key, fallback, sni, idle-close,
 *                               max-conns, padding, udp-idle,
 *                               udp-connections, sessions-per-key,
 *                               streams-per-key, and for engine kcptun:
 *                               kcptun-key, crypt, nocomp, datashard,
 *                               parityshard, smuxver
 *   [client]              keys: server, server-key, key, log-level, api,
 *                               keepalive, dead-peer-timeout, engine, mode,
 *                               sndwnd, rcvwnd, mtu, max-streams, sni,
 *                               rotate-after, rotate-bytes, failover-after,
 *                               conns, probe-interval, padding, and the
 *                               kcptun keys as [server]
 *   [forward NAME]        keys: listen, target, socket-mode (client side
 *                               port forwards)
 *   [socks5 NAME]         keys: listen, eager, user, users-file,
 *                               unauthenticated, socket-mode (client side
 *                               SOCKS5 proxies)
 *   [udp NAME]            keys: listen, target, udp-idle, max-flows,
 *                               fec, fec-delay
 *                               (client side UDP forwards)
 *
 * Every key is also a command-line flag of its role (`--server-key X`,
 * `--allow X`), the client's `-L LISTEN=TARGET` adds a forward and its
 * `-D LISTEN` a SOCKS5 proxy with the defaults, `-U LISTEN=TARGET` a UDP
 * forward (eager, no authentication). Flags are
 * applied after files: a flag replaces a single-valued key set in a file and
 * adds to a repeatable one.
 *
 * Problems never stop parsing: each one is recorded as a diagnostic with its
 * origin ("FILE:LINE" or "--flag") and what was expected, so `warren check`
 * reports all of them at once. Unknown sections, unknown keys, malformed
 * values and keys set twice in files are all errors. So is api (both
 * roles): its feature is planned, and a key that does nothing must not be
 * accepted. For the same reason wn_config_validate refuses keys the rest of
 * the configuration leaves without effect (carrier keys with no endpoint
 * of that carrier, failover keys with one server, another engine's keys,
 * a forward target with engine kcptun), naming each key's line or flag.
 *
 * Ownership: struct wn_config owns everything it points to; wn_config_free
 * releases it. Parsing does no I/O except reading the config file itself;
 * key files are read by wn_config_load_keys. */
#ifndef WN_APP_CONFIG_H
#define WN_APP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/policy.h"
#include "core/socks5.h"
#include "crypto/key.h"
#include "util/bitset.h"

enum wn_role {
	WN_ROLE_NONE = 0,
	WN_ROLE_SERVER,
	WN_ROLE_CLIENT,
};

#define WN_PATH_MAX 4096
#define WN_FORWARD_NAME_MAX 63

/* Defaults of a UDP forward ([udp NAME], -U) and the server's flows. */
#define WN_UDP_IDLE_DEFAULT_MS 60000
#define WN_UDP_MAX_FLOWS_DEFAULT 1024
#define WN_UDP_FEC_DELAY_DEFAULT_MS 5

/* Origin of a setting, for diagnostics: "FILE:LINE" or "--flag". */
#define WN_ORIGIN_MAX 512

/* The most rows the key table (config_keys.c) may have; config_keys.c
 * asserts at compile time that the table fits. */
#define WN_CFG_KEYS_MAX 128

/* Which keys of one section are set: one bit per key-table row. */
struct wn_cfg_keyset {
	uint64_t w[WN_BITSET_WORDS(WN_CFG_KEYS_MAX)];
};

struct wn_diag {
	char *text; /* "ORIGIN: [section] key: message" */
};

struct wn_forward_cfg {
	char name[WN_FORWARD_NAME_MAX + 1];
	char origin[WN_ORIGIN_MAX]; /* where the forward was declared */
	bool has_listen, has_target;
	struct wn_endpoint listen; /* tcp or unix */
	struct wn_endpoint target; /* HOST:PORT or unix:PATH */
	unsigned socket_mode;      /* unix listen's mode; 0: 0600 */
	/* [udp NAME] sections and -U (in wn_config.udps): listen is udp,
	 * target HOST:PORT. */
	bool udp;
	uint32_t udp_idle_ms;          /* a flow silent this long is reaped */
	unsigned max_flows;            /* flows at once; the oldest idle goes */
	unsigned fec_data, fec_parity; /* fec = DATA/PARITY; 0: off */
	uint32_t fec_delay_ms;         /* fec-delay: the grouping time */
	struct wn_cfg_keyset set_mask; /* keys set so far */
	struct wn_cfg_keyset file_mask; /* of those, keys set by a file */
};

enum wn_cfg_fallback {
	WN_CFG_FALLBACK_404 = 0, /* same values as enum wn_fallback_kind */
	WN_CFG_FALLBACK_CLOSE,
	WN_CFG_FALLBACK_FILE,
};

/* Which engine carries the tunnel, and its tuning. */
enum wn_engine_kind {
	WN_ENGINE_QUIC = 0,
	WN_ENGINE_KCP,
	WN_ENGINE_KCPTUN, /* the KCP engine speaking kcptun's wire format */
};

#define WN_KCPTUN_KEY_MAX 255
#define WN_KCPTUN_DEFAULT_KEY "it's a secrect" /* kcptun's, sic */

struct wn_engine_cfg {
	enum wn_engine_kind kind;
	char mode[16];           /* kcp: normal, fast, fast2, fast3 (default) */
	unsigned sndwnd, rcvwnd; /* kcp windows in segments; 0: default */
	unsigned mtu;         /* kcp packet size on the carrier; 0: default */
	unsigned max_streams; /* concurrent streams per session; 0: default */
	/* send budget: bytes buffered for sending per session and over all
	 * sessions before relays stop reading (stream_base.h); 0: default */
	uint64_t session_buffer, total_buffer;
	/* kcptun engine, in kcptun's terms: */
	char crypt[16];                         /* default "aes" */
	char kcptun_key[WN_KCPTUN_KEY_MAX + 1]; /* kcptun's --key */
	bool nocomp;                            /* default false */
	unsigned datashard, parityshard;        /* default 10, 3 */
	unsigned smuxver;                       /* default 1 */
	bool mode_set;                          /* mode given explicitly */
	/* server: run with kcptun's default key or crypt none, which any
	 * stranger can speak (refused otherwise) */
	bool kcptun_insecure;
};

/* A SOCKS5 user: name (1..255 bytes) and password (0..255 bytes). */
#define WN_SOCKS5_CRED_LEN WN_SOCKS5_CRED_MAX /* struct wn_socks5_user */

struct wn_socks5_cfg {
	char name[WN_FORWARD_NAME_MAX + 1];
	char origin[WN_ORIGIN_MAX]; /* where it was declared */
	bool has_listen;
	struct wn_endpoint listen; /* tcp or unix */
	bool eager;                /* default true: answer at once */
	struct wn_socks5_user *users;
	size_t n_users;               /* none: no authentication */
	bool unauthenticated;         /* no users off loopback: allowed */
	unsigned socket_mode;         /* unix listen's mode; 0: 0600 */
	char users_file[WN_PATH_MAX]; /* "" if none; read by load_users */
	char users_file_origin[WN_ORIGIN_MAX];
	struct wn_cfg_keyset set_mask, file_mask;
};

struct wn_server_cfg {
	bool present;
	char origin[WN_ORIGIN_MAX];
	struct wn_endpoint *listen;
	size_t n_listen;
	char key_path[WN_PATH_MAX];
	char key_origin[WN_ORIGIN_MAX];
	uint8_t (*allow_client)[WN_KEY_LEN];
	size_t n_allow_client;
	/* The stream rules first, then the n_allow_udp udp:// rules
	 * (wn_policy_split keeps them so as they are added). */
	struct wn_allow_rule *allow;
	size_t n_allow;
	size_t n_allow_udp;
	uint32_t udp_idle_ms; /* the dialer reaps flows silent this long */
	unsigned udp_conns;   /* sockets per flow toward its target */
	/* caps per client key over all its sessions: live sessions (engine
	 * quic) and accepted streams; 0: the engine's default */
	unsigned sessions_per_key, streams_per_key;
	bool has_target;
	struct wn_endpoint target;
	int log_level;
	uint32_t idle_timeout_ms;
	/* tcp and tls listeners */
	char tls_cert[WN_PATH_MAX], tls_key[WN_PATH_MAX];
	char tls_origin[WN_ORIGIN_MAX];
	enum wn_cfg_fallback fallback;
	char fallback_path[WN_PATH_MAX];
	char sni[WN_HOSTNAME_MAX + 1];
	uint32_t idle_close_ms; /* 0: never */
	uint32_t max_conns;     /* 0: the carrier's default */
	uint32_t padding;       /* padding record after each batch; 0: none */
	struct wn_engine_cfg engine;
	struct wn_cfg_keyset set_mask, file_mask;
	uint32_t key_line[WN_CFG_KEYS_MAX]; /* see wn_client_cfg */
};

struct wn_client_cfg {
	bool present;
	char origin[WN_ORIGIN_MAX];
	struct wn_endpoint *server;
	size_t n_server;
	bool has_server_key;
	uint8_t server_key[WN_KEY_LEN];
	char key_path[WN_PATH_MAX];
	char key_origin[WN_ORIGIN_MAX];
	int log_level;
	uint32_t keepalive_ms;
	uint32_t dead_peer_timeout_ms;
	/* tcp and tls servers */
	char sni[WN_HOSTNAME_MAX + 1];
	uint32_t rotate_after_ms; /* 0: never */
	uint64_t rotate_bytes;    /* 0: never */
	uint32_t failover_ms;     /* several servers: move on after */
	unsigned conns;           /* tcp/tls connections per server, 1..16 */
	uint32_t probe_ms; /* several servers: try the first this often */
	uint32_t padding;  /* padding record after each batch */
	struct wn_engine_cfg engine;
	struct wn_cfg_keyset set_mask, file_mask;
	/* Per key-table row: the config file line that last set the key, 0
	 * when a flag did (or nothing), for diagnostics of cross-key rules;
	 * the file is the one in origin. */
	uint32_t key_line[WN_CFG_KEYS_MAX];
};

struct wn_config {
	struct wn_server_cfg server;
	struct wn_client_cfg client;
	struct wn_forward_cfg *forwards;
	size_t n_forwards;
	struct wn_socks5_cfg *socks;
	size_t n_socks;
	struct wn_forward_cfg *udps; /* UDP forwards (udp set) */
	size_t n_udps;
	struct wn_diag *diags;
	size_t n_diags;
	bool oom; /* an allocation failed: diagnostics may be incomplete */
	/* While wn_config_parse_file parses: the file's permission bits, so
	 * that secrets written inline (user, kcptun-key) get the mode check
	 * a users-file gets. -1 otherwise. */
	int parsing_mode;
};

/* Initializes an empty config with every default set. */
void wn_config_init(struct wn_config *cfg);

/* Frees everything the config owns. */
void wn_config_free(struct wn_config *cfg);

/* Parses config text. `name` is used in diagnostics ("FILE:LINE") and, for
 * relative key paths, `dir` (may be NULL) is the directory they are relative
 * to. Returns 0 if no new diagnostics were recorded, WN_ECONFIG otherwise. */
int wn_config_parse_string(struct wn_config *cfg, const char *name,
                           const char *dir, const char *text, size_t len);

/* Reads and parses a config file. Returns 0, WN_ECONFIG, or a file error
 * (which is also recorded as a diagnostic). */
int wn_config_parse_file(struct wn_config *cfg, const char *path);

/* Applies one setting from the command line to the role's section (or, for
 * role client and key "L", adds a forward "LISTEN=TARGET"; key "U" a UDP
 * forward "LISTEN=TARGET"; key "D" adds a SOCKS5 proxy listening on the
 * value). `flag` is the
 * flag as written, for diagnostics. Returns 0 or WN_ECONFIG. */
int wn_config_set_flag(struct wn_config *cfg, enum wn_role role,
                       const char *flag, const char *key, const char *value);

/* Returns true if `key` is a flag of the role (for argument parsing). */
bool wn_config_is_flag(enum wn_role role, const char *key);

/* Checks completeness and consistency: required keys and cross-key rules of
 * the given role, or of every section present when role is WN_ROLE_NONE.
 * Returns 0 or WN_ECONFIG (with diagnostics). */
int wn_config_validate(struct wn_config *cfg, enum wn_role role);

/* Loads the key files named by the config (checking their permissions) into
 * the given identities (either may be NULL to only check). Returns 0 or
 * WN_ECONFIG (with diagnostics). */
int wn_config_load_keys(struct wn_config *cfg, enum wn_role role,
                        struct wn_identity *server_id,
                        struct wn_identity *client_id);

/* Reads the users-file of every [socks5] section and appends its users
 * ("NAME:PASSWORD" lines; blank lines and lines starting with '#' are
 * skipped). Returns 0 or WN_ECONFIG (with diagnostics). */
int wn_config_load_users(struct wn_config *cfg);

/* Records a diagnostic; exposed for the command layer. */
void wn_config_diag(struct wn_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a duration ("500ms", "30s", "2m", "1h") into milliseconds.
 * Returns 0 or WN_EINVAL. */
int wn_duration_parse(const char *s, uint64_t *ms);

/* Writes the flag reference of a role (one line per key) to buf, for
 * `warren help`. Returns the number of bytes that would be written. */
size_t wn_config_describe(enum wn_role role, char *buf, size_t cap);

#endif
