/* A QUIC connection's TLS: the GnuTLS session set up for ngtcp2 with raw
 * public keys, and the verification of the peer's key against the pin
 * (client) or the allow list (server). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "engine/quic_int.h"
#include "util/err.h"

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
	return ((struct qconn *)ref->user_data)->conn;
}

/* Server: a listed client key, the i-th. Its sessions are counted
 * against sessions-per-key only once the handshake has completed
 * (quic.c, server_conn_up): this callback runs when the Certificate
 * arrives, before CertificateVerify proves that the peer holds the key,
 * and anyone may know a client's public key. */
static int admit_key(struct qconn *qc, size_t i, const uint8_t *key)
{
	qc->tunnel.key_slot = (uint32_t)i + 1;
	memcpy(qc->peer_key, key, WN_KEY_LEN);
	qc->peer_ok = 1;
	return 0;
}

/* GnuTLS verify function shared by every session of the credentials: the
 * session pointer leads back to the connection (via ngtcp2's conn_ref). */
int wn_quic_verify_peer(gnutls_session_t s)
{
	ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
	struct qconn *qc = ref->user_data;
	struct qep *ep = qc->ep;
	uint8_t key[WN_KEY_LEN];
	char got[WN_KEY_B64_LEN + 1], want[WN_KEY_B64_LEN + 1];
	if (wn_tls_peer_key(s, key) != 0) {
		snprintf(qc->why, sizeof(qc->why),
		         "peer presented no Ed25519 raw public key");
		ep->stats.auth_failures++;
		return GNUTLS_E_CERTIFICATE_ERROR;
	}
	wn_key_encode(key, got);
	if (ep->is_server) {
		for (size_t i = 0; i < ep->nclients; i++)
			if (sodium_memcmp(ep->clients[i], key, WN_KEY_LEN) == 0)
				return admit_key(qc, i, key);
		snprintf(qc->why, sizeof(qc->why),
		         "client key %s is not in allow-client", got);
	} else {
		if (sodium_memcmp(ep->server_key, key, WN_KEY_LEN) == 0) {
			memcpy(qc->peer_key, key, WN_KEY_LEN);
			qc->peer_ok = 1;
			return 0;
		}
		wn_key_encode(ep->server_key, want);
		snprintf(qc->why, sizeof(qc->why),
		         "server key mismatch: expected %s, got %s", want, got);
	}
	ep->stats.auth_failures++;
	return GNUTLS_E_CERTIFICATE_ERROR;
}

int wn__qconn_setup_tls(struct qconn *qc)
{
	struct qep *ep = qc->ep;
	unsigned flags = (ep->is_server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
	                 GNUTLS_ENABLE_RAWPK | GNUTLS_NO_END_OF_EARLY_DATA;
	if (gnutls_init(&qc->tls, flags) < 0)
		return WN_EINTERNAL;
	if (gnutls_priority_set_direct(qc->tls, WN_TLS_PRIORITY, NULL) < 0)
		return WN_EINTERNAL;
	int rv = ep->is_server
	             ? ngtcp2_crypto_gnutls_configure_server_session(qc->tls)
	             : ngtcp2_crypto_gnutls_configure_client_session(qc->tls);
	if (rv != 0)
		return WN_EINTERNAL;
	qc->ref.get_conn = get_conn;
	qc->ref.user_data = qc;
	gnutls_session_set_ptr(qc->tls, &qc->ref);
	if (gnutls_credentials_set(qc->tls, GNUTLS_CRD_CERTIFICATE,
	                           ep->creds.cred) < 0)
		return WN_EINTERNAL;
	if (ep->is_server)
		gnutls_certificate_server_set_request(qc->tls,
		                                      GNUTLS_CERT_REQUIRE);
	gnutls_datum_t alpn = {(unsigned char *)QUIC_ALPN,
	                       sizeof(QUIC_ALPN) - 1};
	if (gnutls_alpn_set_protocols(qc->tls, &alpn, 1,
	                              GNUTLS_ALPN_MANDATORY) < 0)
		return WN_EINTERNAL;
	ngtcp2_conn_set_tls_native_handle(qc->conn, qc->tls);
	return 0;
}
