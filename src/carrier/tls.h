/* The TLS side of the tls carrier (private to src/carrier/): a
 * certificate for the server (from files, or a generated self-signed one),
 * browser-like sessions, and what the server answers a stranger.
 *
 * From outside, a tls carrier is an HTTPS server: a normal TLS 1.3
 * handshake with an X.509 certificate, ALPN http/1.1. The client sends a
 * configurable SNI and offers ALPN h2 and http/1.1 as browsers do. The
 * client does not verify the certificate: the session inside is
 * authenticated end to end by the engine (QUIC pins the server's key), and
 * the preamble is sealed to the server's key, so TLS here is camouflage and
 * a second layer of confidentiality, not the trust anchor. */
#ifndef WN_CARRIER_TLS_H
#define WN_CARRIER_TLS_H

#include <gnutls/gnutls.h>
#include <stddef.h>
#include <stdint.h>

#include "util/log.h"

/* Browser-like: TLS 1.3 only, AES-GCM first, the usual groups. */
#define WN_TLS_CARRIER_PRIORITY \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE"

/* Server credentials from PEM files cert and key, or, when both are NULL,
 * a fresh self-signed ECDSA P-256 certificate for common name cn. Returns
 * 0 or WN_ENOENT / WN_ECRYPTO (logged). */
int wn_tls_server_creds(struct wn_log *log, const char *cert, const char *key,
                        const char *cn, gnutls_certificate_credentials_t *out);

/* Client credentials (no verification, see above). Returns 0 or
 * WN_ECRYPTO. */
int wn_tls_client_creds(gnutls_certificate_credentials_t *out);

/* A new session for one connection: server (with ALPN http/1.1) or client
 * (SNI sni if not NULL or empty, ALPN h2 and http/1.1). Returns 0 or
 * WN_ECRYPTO. */
int wn_tls_session(gnutls_session_t *out, int server,
                   gnutls_certificate_credentials_t cred, const char *sni);

/* What a stranger is answered with. */
enum wn_fallback_kind {
	WN_FALLBACK_404 = 0, /* built-in web-server-like 404 (400 to garbage) */
	WN_FALLBACK_CLOSE,   /* close without a word */
	WN_FALLBACK_FILE,    /* the bytes of a file, as they are */
};

/* Writes the built-in answer into buf: a 404 for a request that looked
 * like HTTP, a 400 otherwise (plain_to_tls: the 400 a web server gives a
 * plain HTTP request on its HTTPS port). now_s is the wall clock for the
 * Date header. Returns the length (truncated to cap). */
size_t wn_http_answer(char *buf, size_t cap, int looked_like_http,
                      int plain_to_tls, long long now_s);

/* Reads a fallback answer file (at most WN_TLS_ANSWER_MAX bytes are used)
 * into *out (malloc'd, the caller frees). Returns 0, WN_ENOENT (logged) or
 * WN_EINVAL for an empty file. */
#define WN_TLS_ANSWER_MAX 65536
int wn_tls_load_answer(struct wn_log *log, const char *path, char **out,
                       size_t *len);

/* True if p[0, n) starts like an HTTP/1 request line ("GET /...", ...). */
int wn_http_looks_like_request(const uint8_t *p, size_t n);

#endif
