/* WireGuard-style packet protection for the KCP engine: a Noise IK
 * handshake (src/crypto/noise.h) in two messages, then transport packets
 * with explicit counters, rekeying and key expiry.
 *
 * Roles are fixed: the client is always the initiator and has one peer, the
 * server's own key; the server is always the responder and has one peer per
 * client static key. The wire format is in docs/wire-format.md, section
 * "KCP engine packet protection (Noise IK)"; all integers little-endian
 * except the TAI64N timestamp, which is big-endian by its definition.
 *
 *   1 initiation  type u32 | sender_index u32 | ephemeral 32 | static 32+16
 *                 | (timestamp 12 | payload 0..32) + 16 | mac1 16 | mac2 16
 *   2 response    type u32 | sender_index u32 | receiver_index u32
 *                 | ephemeral 32 | empty + 16 | mac1 16
 *   3 cookie      type u32 | receiver_index u32 | nonce 24 | cookie 16 + 16
 *   4 transport   type u32 | receiver_index u32 | counter u64
 *                 | ChaCha20-Poly1305(plaintext) + 16
 *
 * The type is a u32 whose first byte is the message type and whose other
 * three bytes must be zero. The Noise prologue is WN_PROTECT_PROLOGUE, so
 * that these keys can never be confused with another protocol's.
 *
 * mac1 = BLAKE2b-128 keyed with BLAKE2b-256("mac1----" || the receiver's
 * static X25519 public key), over the message bytes before it. The server
 * checks it before any public-key work and drops the message silently if it
 * fails: a prober who does not know the server's public key gets no answer
 * and costs it no DH.
 *
 * Cookies, as WireGuard's: a server under load answers an initiation
 * without a valid mac2 with a cookie reply instead of doing the DH work
 * (wn_protect_cookie_reply). The cookie is BLAKE2b-128 keyed with a random
 * server secret that changes every WN_PROTECT_COOKIE_SECRET_MS, over the
 * sender's address; it travels under XChaCha20-Poly1305 keyed with
 * BLAKE2b-256("cookie--" || server static public key), with the
 * initiation's mac1 as associated data, so only the sender of that
 * initiation can use it. The client then sends initiations with mac2 =
 * BLAKE2b-128 keyed with the cookie over the message bytes before mac2
 * (zero when it has no cookie): a valid mac2 proves the sender receives at
 * its address, so the engine can budget per source. mac2 checks accept the
 * current and the previous secret, so a cookie works for at least
 * WN_PROTECT_COOKIE_SECRET_MS.
 *
 * Each side names a keypair by a random 32-bit local index; the other side
 * writes it as receiver_index, so the receiver finds the keys without trial
 * decryption. Routing an index to its peer on the server is the engine's
 * job: the env's index_add/index_del tell it which indices a peer owns.
 *
 * Timing and limits follow WireGuard: the initiator should start a new
 * handshake when its current keypair is REKEY_AFTER_MS old or has sent
 * REKEY_AFTER_MESSAGES packets (wn_protect_needs_rekey), at most once per
 * REKEY_TIMEOUT_MS while no answer comes; a keypair REJECT_AFTER_MS old is
 * unusable both ways.
 *
 * How the engine uses it.
 *
 *   client: wn_protect_peer_init(initiator) once. When
 *     wn_protect_needs_rekey says so (check before sending and on a timer),
 *     and no initiation went out in the last REKEY_TIMEOUT_MS,
 *     wn_protect_initiate and send. A type 2 packet goes to
 *     wn_protect_consume_response; then send something at once (an empty
 *     seal is a keepalive). Type 4 goes to wn_protect_open. Data goes out
 *     through wn_protect_seal; WN_EAGAIN means no keys: queue and handshake.
 *   server: wn_protect_responder_init once. A type 1 packet goes first to
 *     wn_protect_responder_check (mac1, mac2; no DH), then to the
 *     admission policy (crypto/hsadmit.h), which says: drop it, answer it
 *     with wn_protect_cookie_reply (under load, no valid mac2: no DH), or
 *     go on. Going on, wn_protect_responder_consume; on success look up
 *     in.static_pk among the allowed clients, compare in.timestamp with
 *     the last accepted one for that key, find or create that client's
 *     peer (wn_protect_peer_init, responder, with index callbacks into the
 *     server's index table), wn_protect_respond, store the timestamp, send
 *     the response. Type 4 packets go to the peer found by receiver index,
 *     wn_protect_open; replies go out with wn_protect_seal. Types 2 and 3
 *     are dropped.
 *   client, cookies: a type 3 packet goes to wn_protect_consume_cookie;
 *     when it says retry, initiate again at once.
 *   both: wn_protect_tick at wn_protect_next_expiry frees expired keys;
 *     wn_protect_peer_wipe when the session ends.
 *
 * Pure: time (now, monotonic milliseconds; the initiation's wall-clock
 * timestamp, unix milliseconds) and randomness (env.random) are passed in;
 * no I/O, no clock, no allocation. Structs may be embedded by the caller;
 * their fields are private. Secrets are wiped by the *_wipe functions and
 * whenever a keypair or handshake is dropped. */
#ifndef WN_CRYPTO_PROTECT_H
#define WN_CRYPTO_PROTECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/replay.h"
#include "crypto/noise.h"

#define WN_PROTECT_PROLOGUE "warren kcp v1"

#define WN_PROTECT_MSG_INITIATION 1
#define WN_PROTECT_MSG_RESPONSE 2
#define WN_PROTECT_MSG_COOKIE 3
#define WN_PROTECT_MSG_TRANSPORT 4

#define WN_PROTECT_MAC_LEN 16
#define WN_PROTECT_TIMESTAMP_LEN 12 /* TAI64N */
#define WN_PROTECT_PAYLOAD_MAX 32   /* caller payload in an initiation */
#define WN_PROTECT_INITIATION_MIN                             \
	(8 + WN_NOISE_IK_MSG1_LEN(WN_PROTECT_TIMESTAMP_LEN) + \
	 2 * WN_PROTECT_MAC_LEN) /* 148 */
#define WN_PROTECT_INITIATION_MAX \
	(WN_PROTECT_INITIATION_MIN + WN_PROTECT_PAYLOAD_MAX) /* 180 */
#define WN_PROTECT_RESPONSE_LEN \
	(12 + WN_NOISE_IK_MSG2_LEN(0) + WN_PROTECT_MAC_LEN) /* 76 */
#define WN_PROTECT_COOKIE_LEN 16
#define WN_PROTECT_COOKIE_NONCE_LEN 24
#define WN_PROTECT_COOKIE_REPLY_LEN                                \
	(8 + WN_PROTECT_COOKIE_NONCE_LEN + WN_PROTECT_COOKIE_LEN + \
	 WN_PROTECT_MAC_LEN) /* 64 */
/* The server's cookie secret changes this often; the client uses a cookie
 * for a little less, so that it never sends one the server has forgotten. */
#define WN_PROTECT_COOKIE_SECRET_MS 120000
#define WN_PROTECT_COOKIE_USE_MS (WN_PROTECT_COOKIE_SECRET_MS - 5000)
/* Cookie replies make the client send again at once at most this often. */
#define WN_PROTECT_COOKIE_RETRY_MS 1000

/* Transport packets: the plaintext sits between a 16-byte header and the
 * 16-byte tag, so a caller that leaves this room seals and opens in
 * place. */
#define WN_PROTECT_HEADROOM 16
#define WN_PROTECT_TAILROOM 16
#define WN_PROTECT_OVERHEAD (WN_PROTECT_HEADROOM + WN_PROTECT_TAILROOM)

#define WN_PROTECT_REKEY_AFTER_MS 120000
#define WN_PROTECT_REJECT_AFTER_MS 180000
#define WN_PROTECT_REKEY_TIMEOUT_MS 5000
#define WN_PROTECT_REKEY_AFTER_MESSAGES (UINT64_C(1) << 60)
/* The last counters are never used, so the replay window never has to
 * represent a counter past the end. */
#define WN_PROTECT_REJECT_AFTER_MESSAGES (UINT64_MAX - WN_REPLAY_WINDOW - 1)

struct wn_protect_peer;

/* What the caller injects. */
struct wn_protect_env {
	/* Fills buf with len cryptographically random bytes. Required. In
	 * production pass wn_protect_random_sodium. */
	void (*random)(void *ctx, void *buf, size_t len);
	/* Optional (NULL on a client with its one peer). Called when peer
	 * takes a fresh local index: the engine records index -> peer and
	 * returns 0, or WN_EEXIST if the index is taken (the peer draws
	 * another), or another error to give up. */
	int (*index_add)(void *ctx, uint32_t index,
	                 struct wn_protect_peer *peer);
	/* Optional. Called when a keypair or handshake with that index is
	 * dropped: the engine forgets the index. */
	void (*index_del)(void *ctx, uint32_t index);
	void *ctx;
};

/* An env.random that uses libsodium's randombytes_buf. */
void wn_protect_random_sodium(void *ctx, void *buf, size_t len);

/* One direction pair of transport keys. Private. */
struct wn_protect_keypair {
	uint8_t send_key[WN_NOISE_KEYLEN];
	uint8_t recv_key[WN_NOISE_KEYLEN];
	uint64_t send_ctr; /* next counter to send */
	uint64_t created_ms;
	struct wn_replay replay;
	uint32_t local_index;  /* ours: the peer sends it */
	uint32_t remote_index; /* theirs: we send it */
	bool valid;
};

/* One peer pair, as seen from one side. Private fields. */
struct wn_protect_peer {
	struct wn_protect_env env;
	bool initiator;
	uint8_t local_sk[WN_NOISE_DHLEN], local_pk[WN_NOISE_DHLEN];
	uint8_t remote_pk[WN_NOISE_DHLEN];
	uint8_t mac1_send[32]; /* mac1 key for messages to the peer */
	uint8_t mac1_recv[32]; /* mac1 key for messages to us */
	/* current sends and receives; previous only receives, so packets in
	 * flight across a rekey still decrypt; next (responder only) waits
	 * for its confirmation, see wn_protect_open. */
	struct wn_protect_keypair current, previous, next;
	/* Initiator: the handshake awaiting its response. */
	struct wn_noise_hs hs;
	bool hs_pending;
	uint32_t hs_index;
	uint64_t hs_started_ms;
	uint8_t last_ts[WN_PROTECT_TIMESTAMP_LEN]; /* last one sent */
	/* Initiator: the cookie for mac2 (see wn_protect_consume_cookie). */
	uint8_t cookie_key[WN_NOISE_KEYLEN];
	uint8_t cookie[WN_PROTECT_COOKIE_LEN];
	uint64_t cookie_ms, cookie_retry_ms;
	bool has_cookie, cookie_retried;
	uint8_t hs_mac1[WN_PROTECT_MAC_LEN]; /* the pending initiation's */
	bool hs_mac2; /* it carried a mac2 from the current cookie */
};

/* The server's handshake front door: its key and mac1 key. Private. */
struct wn_protect_responder {
	struct wn_protect_env env;
	uint8_t local_sk[WN_NOISE_DHLEN], local_pk[WN_NOISE_DHLEN];
	uint8_t mac1_recv[32];
	uint8_t cookie_key[WN_NOISE_KEYLEN];
	uint8_t secret[32], prev_secret[32]; /* cookie secrets */
	uint64_t secret_ms;                  /* when secret was drawn */
	bool has_secret, has_prev;
};

/* A checked initiation, waiting for the caller's decision. Holds the
 * half-done handshake's secrets: pass it to wn_protect_respond, or wipe it
 * with wn_protect_initiation_wipe. */
struct wn_protect_initiation {
	uint8_t static_pk[WN_NOISE_DHLEN]; /* the client's X25519 key */
	uint8_t timestamp[WN_PROTECT_TIMESTAMP_LEN];
	uint8_t payload[WN_PROTECT_PAYLOAD_MAX];
	size_t payload_len;
	uint32_t sender_index;
	struct wn_noise_hs hs; /* private */
};

/* ---- Both sides ---- */

/* Starts a peer. local_sk/local_pk are this node's X25519 pair
 * (wn_identity x_sk/x_pk), remote_pk the other side's X25519 public key
 * (wn_pubkey_to_x25519 of its identity). env is copied. Copies the keys.
 * Returns 0, WN_EINVAL (no env.random) or WN_EINTERNAL. */
int wn_protect_peer_init(struct wn_protect_peer *p, bool initiator,
                         const uint8_t local_sk[WN_NOISE_DHLEN],
                         const uint8_t local_pk[WN_NOISE_DHLEN],
                         const uint8_t remote_pk[WN_NOISE_DHLEN],
                         const struct wn_protect_env *env);

/* Releases every index the peer owns (env.index_del) and wipes it. */
void wn_protect_peer_wipe(struct wn_protect_peer *p);

/* Reads a packet's type and, for responses and transport packets, the
 * receiver index (0 for initiations), so the engine can route it: an
 * initiation to wn_protect_responder_consume, anything else to the peer
 * owning the index. Checks only the length for the type and the reserved
 * bytes. Returns 0 or WN_EPROTO (unknown or reserved type, bad length). */
int wn_protect_classify(const uint8_t *pkt, size_t len, uint8_t *type,
                        uint32_t *receiver_index);

/* Seals a transport packet in place under the current keypair. The
 * plaintext is at buf + WN_PROTECT_HEADROOM, plen bytes; buf has cap bytes
 * (plen + WN_PROTECT_OVERHEAD needed). On success the packet starts at buf
 * and *pkt_len is its length. Returns 0, WN_ENOSPC, or WN_EAGAIN when there
 * is no usable keypair (none yet; expired; counters exhausted; a responder
 * whose only keypair is still unconfirmed): the initiator must handshake,
 * the responder must wait for the client. The send counter is consumed only
 * on success. */
int wn_protect_seal(struct wn_protect_peer *p, uint8_t *buf, size_t plen,
                    size_t cap, uint64_t now, size_t *pkt_len);

/* Opens a transport packet buf[0, len) in place. On success the plaintext
 * is at buf + WN_PROTECT_HEADROOM and *plen is its length (0 for a
 * keepalive). Returns 0, WN_ETRUNC (shorter than the overhead), WN_EPROTO
 * (not a transport packet, unknown index, counter replayed or too old or
 * past the limit), WN_ETIMEDOUT (its keypair has expired) or WN_ECRYPTO
 * (authentication failed; the plaintext area is then zeroed). A failed
 * packet changes nothing in p. */
int wn_protect_open(struct wn_protect_peer *p, uint8_t *buf, size_t len,
                    uint64_t now, size_t *plen);

/* True when the initiator should start a handshake: no usable keypair, or
 * the current one is REKEY_AFTER_MS old or has sent REKEY_AFTER_MESSAGES.
 * The caller paces retries (WN_PROTECT_REKEY_TIMEOUT_MS). Always false on
 * a responder, which never initiates. */
bool wn_protect_needs_rekey(const struct wn_protect_peer *p, uint64_t now);

/* True when the peer has a keypair it can send with now. */
bool wn_protect_can_send(const struct wn_protect_peer *p, uint64_t now);

/* Drops (wipes, releasing their indices) keypairs REJECT_AFTER_MS old and
 * an initiator's handshake that has waited as long. Call it when the
 * deadline from wn_protect_next_expiry passes; seal and open refuse expired
 * keys on their own, this only frees them. */
void wn_protect_tick(struct wn_protect_peer *p, uint64_t now);

/* The earliest time wn_protect_tick has something to drop, or UINT64_MAX. */
uint64_t wn_protect_next_expiry(const struct wn_protect_peer *p);

/* ---- Initiator (client) ---- */

/* Writes a handshake initiation carrying payload[0, plen) (plen <=
 * WN_PROTECT_PAYLOAD_MAX) into out (cap >= WN_PROTECT_INITIATION_MAX is
 * always enough); *len gets its length. unix_ms is wall-clock time for the
 * TAI64N timestamp, which the server requires to grow from one initiation
 * to the next: if it did not (a clock step back, two in one millisecond),
 * the last timestamp plus one nanosecond is sent. Replaces a handshake
 * still pending. Returns 0, WN_EINVAL (not an initiator; payload too long),
 * WN_ENOSPC, WN_EEXIST (no free index) or WN_ECRYPTO (the server key has
 * small order). */
int wn_protect_initiate(struct wn_protect_peer *p, const uint8_t *payload,
                        size_t plen, uint64_t unix_ms, uint64_t now,
                        uint8_t *out, size_t cap, size_t *len);

/* Consumes a cookie reply pkt[0, len) to the pending handshake: keeps the
 * cookie for the mac2 of the initiations sent in the next
 * WN_PROTECT_COOKIE_USE_MS. *retry says whether to send a new initiation
 * now: when the pending one lacked a mac2 from this cookie, at most once
 * per pending handshake and per WN_PROTECT_COOKIE_RETRY_MS (so forged or
 * repeated replies cannot make the client send at their rate); otherwise
 * the normal retry timer applies. Returns 0, WN_EPROTO (malformed, no
 * handshake pending for its index) or WN_ECRYPTO (not for our last
 * initiation, or forged). */
int wn_protect_consume_cookie(struct wn_protect_peer *p, const uint8_t *pkt,
                              size_t len, uint64_t now, bool *retry);

/* Consumes the server's response pkt[0, len) to the pending handshake. On
 * success the new keypair becomes current at once (the old current becomes
 * previous) and the caller should send a transport packet soon, an empty
 * one if it has no data, because the server starts using the keypair only
 * when it receives one. Returns 0, WN_EPROTO (malformed, no handshake
 * pending for its index, stale) or WN_ECRYPTO (mac1 or authentication
 * failed); the pending handshake survives a bad response. */
int wn_protect_consume_response(struct wn_protect_peer *p, const uint8_t *pkt,
                                size_t len, uint64_t now);

/* ---- Responder (server) ---- */

/* Starts the server's handshake front door with its X25519 pair. env is
 * copied (only env.random is used). Returns 0, WN_EINVAL or WN_EINTERNAL. */
int wn_protect_responder_init(struct wn_protect_responder *r,
                              const uint8_t local_sk[WN_NOISE_DHLEN],
                              const uint8_t local_pk[WN_NOISE_DHLEN],
                              const struct wn_protect_env *env);

/* Wipes the responder's keys. */
void wn_protect_responder_wipe(struct wn_protect_responder *r);

/* The cheap checks of an initiation pkt[0, len) from the address whose
 * bytes are addr[0, alen) (the engine's encoding of address and port):
 * type and length, mac1, and whether mac2 is a valid cookie MAC for that
 * address (*mac2_ok). No public-key work. Rotates the cookie secret when
 * it is due (env.random). Returns 0, WN_EPROTO (malformed) or WN_ECRYPTO
 * (mac1 failed: drop silently). */
int wn_protect_responder_check(struct wn_protect_responder *r,
                               const uint8_t *pkt, size_t len,
                               const uint8_t *addr, size_t alen, uint64_t now,
                               bool *mac2_ok);

/* Writes the cookie reply to initiation pkt[0, len) (which passed
 * wn_protect_responder_check) from address addr[0, alen) into out (cap >=
 * WN_PROTECT_COOKIE_REPLY_LEN); *olen gets its length. Returns 0,
 * WN_EPROTO or WN_ENOSPC. It is smaller than the initiation, so it
 * amplifies nothing. */
int wn_protect_cookie_reply(struct wn_protect_responder *r, const uint8_t *pkt,
                            size_t len, const uint8_t *addr, size_t alen,
                            uint64_t now, uint8_t *out, size_t cap,
                            size_t *olen);

/* Checks an initiation pkt[0, len): mac1 first (no public-key work when it
 * fails), then the Noise message; mac2 is the caller's business
 * (wn_protect_responder_check). On success fills *in: the client's static
 * key, its timestamp and payload, and the handshake to continue. The caller
 * then decides: is static_pk an allowed client, and is the timestamp newer
 * than the last one accepted from that key (wn_protect_timestamp_after; the
 * caller stores the last one, which stops replayed initiations)? If so it
 * calls wn_protect_respond, otherwise wn_protect_initiation_wipe. Returns
 * 0, WN_EPROTO (malformed) or WN_ECRYPTO (mac1 or authentication failed:
 * drop silently); on failure *in is wiped. */
int wn_protect_responder_consume(const struct wn_protect_responder *r,
                                 const uint8_t *pkt, size_t len,
                                 struct wn_protect_initiation *in);

/* Wipes an initiation the caller declines. */
void wn_protect_initiation_wipe(struct wn_protect_initiation *in);

/* True if TAI64N timestamp a is later than b. */
bool wn_protect_timestamp_after(const uint8_t a[WN_PROTECT_TIMESTAMP_LEN],
                                const uint8_t b[WN_PROTECT_TIMESTAMP_LEN]);

/* Encodes unix milliseconds as TAI64N (WireGuard's label: 2^62 + 10 +
 * seconds, then nanoseconds; both big-endian). */
void wn_protect_tai64n(uint8_t out[WN_PROTECT_TIMESTAMP_LEN], uint64_t unix_ms);

/* Answers an accepted initiation: writes the response into out (cap >=
 * WN_PROTECT_RESPONSE_LEN), *len gets its length, and keeps the new keypair
 * as p's "next" until the client confirms it (see wn_protect_open). p is the
 * responder peer for in->static_pk (initiator false, same remote key). in is
 * wiped in every case. Returns 0, WN_EINVAL (wrong peer), WN_ENOSPC,
 * WN_EEXIST (no free index) or WN_ECRYPTO. */
int wn_protect_respond(struct wn_protect_peer *p,
                       struct wn_protect_initiation *in, uint64_t now,
                       uint8_t *out, size_t cap, size_t *len);

#endif
