/* The stream carrier preamble: what a tcp or tls carrier connection sends
 * first, binding the connection to a session.
 *
 * Wire (client to server, once per connection):
 *
 *   sealed   WN_PREAMBLE_SEALED bytes: an anonymous sealed box to the
 *            server's X25519 key (byte-compatible with libsodium's
 *            crypto_box_seal: ephemeral public key 32, then crypto_box of
 *            the body under nonce BLAKE2b-192(epk || server_pk), MAC 16)
 *   padding  pad_len bytes, random, not interpreted
 *
 * The sealed body (WN_PREAMBLE_BODY bytes, big-endian):
 *
 *   version     u8   WN_PREAMBLE_VERSION
 *   session id  16   random, chosen by the client for the session
 *   secret      32   random, fixed for the session; proves a later
 *                    connection belongs to the same client
 *   counter     u64  strictly increasing per session (1 for the first)
 *   timestamp   u64  client's wall clock, ms since the Unix epoch
 *   pad_len     u16  bytes of padding that follow the sealed part
 *
 * Everything is pure: randomness (the ephemeral key seed, the padding) is
 * passed in, and nothing here reads a clock or does I/O. The acceptance
 * rules (secret match, counter increase, clock window) live with the
 * carrier's session table; wn_preamble_check_window is the clock rule. */
#ifndef WN_CRYPTO_PREAMBLE_H
#define WN_CRYPTO_PREAMBLE_H

#include <stddef.h>
#include <stdint.h>

#define WN_PREAMBLE_VERSION 1
#define WN_PREAMBLE_SID_LEN 16
#define WN_PREAMBLE_SECRET_LEN 32
#define WN_PREAMBLE_BODY (1 + 16 + 32 + 8 + 8 + 2)
#define WN_PREAMBLE_SEALED (32 + 16 + WN_PREAMBLE_BODY) /* 115 */
#define WN_PREAMBLE_PAD_MAX 1024
#define WN_PREAMBLE_MAX (WN_PREAMBLE_SEALED + WN_PREAMBLE_PAD_MAX)
/* A preamble whose timestamp is further than this from the server's clock
 * binds nothing (replays of old recordings). */
#define WN_PREAMBLE_WINDOW_MS (5 * 60 * 1000)

struct wn_preamble {
	uint8_t sid[WN_PREAMBLE_SID_LEN];
	uint8_t secret[WN_PREAMBLE_SECRET_LEN];
	uint64_t counter;
	uint64_t timestamp_ms;
	uint16_t pad_len; /* <= WN_PREAMBLE_PAD_MAX */
};

/* Seals p to server_xpk (the server's X25519 public key) into
 * out[0, cap): the sealed part followed by p->pad_len bytes copied from pad.
 * eph_seed is 32 random bytes for the ephemeral key pair. Returns the total
 * length, or WN_EINVAL (pad_len too large) / WN_ENOSPC (cap too small) /
 * WN_ECRYPTO. */
int wn_preamble_seal(const struct wn_preamble *p, const uint8_t server_xpk[32],
                     const uint8_t eph_seed[32], const uint8_t *pad,
                     uint8_t *out, size_t cap);

/* Opens the sealed part of a preamble from in[0, len) with the server's
 * X25519 key pair. Returns WN_EAGAIN when fewer than WN_PREAMBLE_SEALED
 * bytes are there, WN_ECRYPTO when it does not open (not for this server,
 * tampered, or not a preamble at all), WN_EPROTO for an unknown version or
 * a pad_len above the maximum, or the total preamble length (sealed part
 * plus padding; the padding may not have arrived yet) with *p filled in. */
int wn_preamble_open(const uint8_t *in, size_t len,
                     const uint8_t server_xsk[32], const uint8_t server_xpk[32],
                     struct wn_preamble *p);

/* True (1) when a preamble stamped ts_ms is acceptable at wall clock now_ms
 * (within WN_PREAMBLE_WINDOW_MS either way), else 0. */
int wn_preamble_check_window(uint64_t ts_ms, uint64_t now_ms);

#endif
