/* The QUIC engine's proof of the server key: a MAC the client puts in the
 * token field of its first Initial, so that the server answers only clients
 * that already know its public key (docs/wire-format.md, "Initial token").
 *
 *   token = timestamp u32 BE (client's wall clock, seconds since the Unix
 *           epoch) | mac 16
 *   mac   = BLAKE2b-128 keyed with BLAKE2b-256("warren quic proof 1" ||
 *           server's Ed25519 public key), over
 *           "warren/1 Initial" | version u32 BE | dcid length u8 | dcid |
 *           timestamp u32 BE
 *
 * The key is the server's public key, which is not secret from clients:
 * the proof says "I was given this server's key", the same statement as the
 * KCP engine's mac1, and lets the server stay silent before any TLS work.
 * It binds the Initial's destination connection ID (a captured token is no
 * use with another, and the DCID also seeds the Initial keys) and a coarse
 * time, so a recording replays for at most WN_QPROOF_WINDOW_S.
 *
 * Pure: time is passed in; no I/O. */
#ifndef WN_CRYPTO_QUICPROOF_H
#define WN_CRYPTO_QUICPROOF_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"

#define WN_QPROOF_LEN 20
#define WN_QPROOF_KEY_LEN 32
/* A proof stamped further than this from the server's clock, either way,
 * is refused: the same tolerance as the stream carriers' preamble. */
#define WN_QPROOF_WINDOW_S (5 * 60)

/* Derives the proof key from the server's Ed25519 public key. */
void wn_qproof_key(uint8_t key[WN_QPROOF_KEY_LEN],
                   const uint8_t server_pk[WN_KEY_LEN]);

/* Writes the token for an Initial of QUIC version `version` to dcid[0,
 * dcidlen) (at most 20 bytes), stamped now_s. */
void wn_qproof_make(uint8_t out[WN_QPROOF_LEN],
                    const uint8_t key[WN_QPROOF_KEY_LEN], uint32_t version,
                    const uint8_t *dcid, size_t dcidlen, uint64_t now_s);

/* Checks a token tok[0, len) against the Initial's version and dcid at the
 * server's wall clock now_s: the MAC in constant time, then the window.
 * Returns 0, WN_ECRYPTO (wrong length or MAC: not a proof for this server)
 * or WN_ETIMEDOUT (a valid proof outside the window). */
int wn_qproof_check(const uint8_t key[WN_QPROOF_KEY_LEN], const uint8_t *tok,
                    size_t len, uint32_t version, const uint8_t *dcid,
                    size_t dcidlen, uint64_t now_s);

#endif
