/* TLS 1.3 with raw public keys (RFC 7250): a node's Ed25519 identity is its
 * TLS credential, and each side pins the other's key. No certificates, no
 * CAs: the client knows the server's public key, the server lists the client
 * keys it accepts.
 *
 * GnuTLS is the only TLS stack ngtcp2 0.12 supports in Debian 12. This module
 * holds the credential set-up and the peer-key check shared by the QUIC
 * engine (and later the TLS carrier). */
#ifndef WN_CRYPTO_TLS_RAWPK_H
#define WN_CRYPTO_TLS_RAWPK_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdint.h>

#include "crypto/key.h"

/* AES-GCM first: GnuTLS's ChaCha20 is much slower than its AES-GCM on CPUs
 * with AES-NI (docs/performance.md, "TLS cipher order: AES-GCM first"). */
#define WN_TLS_PRIORITY                                                        \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:" \
	"+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"        \
	"-CTYPE-ALL:+CTYPE-SRV-RAWPK:+CTYPE-CLI-RAWPK:-SIGN-ALL:"              \
	"+SIGN-EDDSA-ED25519:%DISABLE_TLS13_COMPAT_MODE"

/* Credentials for one identity. Owns everything inside. */
struct wn_tls_creds {
	gnutls_certificate_credentials_t cred;
	gnutls_pcert_st pcert; /* referenced by cred: must not move */
};

/* Builds credentials from an identity; `verify` is called during each
 * handshake to accept (return 0) or refuse (negative) the peer. Returns 0
 * or WN_EINTERNAL. The struct must not move afterwards. */
int wn_tls_creds_init(struct wn_tls_creds *c, const struct wn_identity *id,
                      gnutls_certificate_verify_function *verify);

/* Releases the credentials. */
void wn_tls_creds_free(struct wn_tls_creds *c);

/* Extracts the peer's Ed25519 public key from a session during or after the
 * handshake. Returns 0, or WN_ECRYPTO if the peer presented no single
 * Ed25519 raw public key. */
int wn_tls_peer_key(gnutls_session_t s, uint8_t out[WN_KEY_LEN]);

#endif
