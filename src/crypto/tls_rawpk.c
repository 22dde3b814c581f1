#include "crypto/tls_rawpk.h"

#include <string.h>

#include "util/err.h"

int wn_tls_creds_init(struct wn_tls_creds *c, const struct wn_identity *id,
                      gnutls_certificate_verify_function *verify)
{
	gnutls_privkey_t key = NULL;
	gnutls_pubkey_t pub = NULL;
	memset(c, 0, sizeof(*c));
	gnutls_datum_t x = {(unsigned char *)id->ed_pk, WN_KEY_LEN};
	gnutls_datum_t k = {(unsigned char *)id->seed, WN_KEY_LEN};

	if (gnutls_certificate_allocate_credentials(&c->cred) < 0)
		goto fail;
	if (gnutls_privkey_init(&key) < 0 ||
	    gnutls_privkey_import_ecc_raw(key, GNUTLS_ECC_CURVE_ED25519, &x,
	                                  NULL, &k) < 0)
		goto fail;
	if (gnutls_pubkey_init(&pub) < 0 ||
	    gnutls_pubkey_import_ecc_raw(pub, GNUTLS_ECC_CURVE_ED25519, &x,
	                                 NULL) < 0)
		goto fail;
	/* The pcert takes the public key; the credentials take the pcert and
	 * the private key (released with the credentials). */
	if (gnutls_pcert_import_rawpk(&c->pcert, pub, 0) < 0)
		goto fail;
	pub = NULL;
	if (gnutls_certificate_set_key(c->cred, NULL, 0, &c->pcert, 1, key) <
	    0) {
		gnutls_pcert_deinit(&c->pcert);
		goto fail;
	}
	key = NULL;
	gnutls_certificate_set_verify_function(c->cred, verify);
	return 0;
fail:
	if (pub)
		gnutls_pubkey_deinit(pub);
	if (key)
		gnutls_privkey_deinit(key);
	if (c->cred)
		gnutls_certificate_free_credentials(c->cred);
	memset(c, 0, sizeof(*c));
	return WN_EINTERNAL;
}

void wn_tls_creds_free(struct wn_tls_creds *c)
{
	if (c->cred)
		gnutls_certificate_free_credentials(c->cred);
	memset(c, 0, sizeof(*c));
}

int wn_tls_peer_key(gnutls_session_t s, uint8_t out[WN_KEY_LEN])
{
	if (gnutls_certificate_type_get2(s, GNUTLS_CTYPE_PEERS) !=
	    GNUTLS_CRT_RAWPK)
		return WN_ECRYPTO;
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n != 1)
		return WN_ECRYPTO;
	gnutls_pubkey_t pub;
	if (gnutls_pubkey_init(&pub) < 0)
		return WN_ECRYPTO;
	int rc = WN_ECRYPTO;
	gnutls_ecc_curve_t curve;
	gnutls_datum_t x = {NULL, 0};
	if (gnutls_pubkey_import(pub, &certs[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, NULL, 0) >= 0) {
		if (curve == GNUTLS_ECC_CURVE_ED25519 && x.size == WN_KEY_LEN) {
			memcpy(out, x.data, WN_KEY_LEN);
			rc = 0;
		}
		gnutls_free(x.data);
	}
	gnutls_pubkey_deinit(pub);
	return rc;
}
