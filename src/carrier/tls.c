/* TLS for the tls carrier (tls.h). */
#include "carrier/tls.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"

#define LOG_COMP "carrier"

static int self_signed(const char *cn, gnutls_certificate_credentials_t cred)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	unsigned char serial[16];
	time_t now = time(NULL);
	int rc = WN_ECRYPTO;

	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0)
		goto out;
	if (gnutls_x509_privkey_generate(
	        key, GNUTLS_PK_ECDSA,
	        GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0)
		goto out;
	if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0)
		goto out;
	serial[0] &= 0x7f; /* a positive serial number */
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 86400) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 365 * 86400) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	                                  cn, (unsigned)strlen(cn)) < 0 ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, cn,
	                                         (unsigned)strlen(cn),
	                                         GNUTLS_FSAN_SET) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) <
	        0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER,
	                                        0) < 0 ||
	    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0)
		goto out;
	if (gnutls_certificate_set_x509_key(cred, &crt, 1, key) < 0)
		goto out;
	rc = 0;
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return rc;
}

int wn_tls_server_creds(struct wn_log *log, const char *cert, const char *key,
                        const char *cn, gnutls_certificate_credentials_t *out)
{
	gnutls_certificate_credentials_t cred;
	int rc;

	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		return WN_ECRYPTO;
	if (cert && key) {
		rc = gnutls_certificate_set_x509_key_file(cred, cert, key,
		                                          GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			WN_LOG(log, WN_LOG_ERROR, LOG_COMP,
			       "tls: cannot load %s / %s: %s", cert, key,
			       gnutls_strerror(rc));
			gnutls_certificate_free_credentials(cred);
			return rc == GNUTLS_E_FILE_ERROR ? WN_ENOENT
			                                 : WN_ECRYPTO;
		}
	} else if (self_signed(cn && *cn ? cn : "localhost", cred) != 0) {
		WN_LOG(log, WN_LOG_ERROR, LOG_COMP,
		       "tls: cannot generate a certificate");
		gnutls_certificate_free_credentials(cred);
		return WN_ECRYPTO;
	}
	*out = cred;
	return 0;
}

int wn_tls_client_creds(gnutls_certificate_credentials_t *out)
{
	return gnutls_certificate_allocate_credentials(out) < 0 ? WN_ECRYPTO
	                                                        : 0;
}

int wn_tls_session(gnutls_session_t *out, int server,
                   gnutls_certificate_credentials_t cred, const char *sni)
{
	static const char *const alpn_cli[] = {"h2", "http/1.1"};
	gnutls_datum_t alpn[2];
	gnutls_session_t s;
	unsigned n = 0;

	if (gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
	                        GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0)
		return WN_ECRYPTO;
	if (gnutls_priority_set_direct(s, WN_TLS_CARRIER_PRIORITY, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0)
		goto fail;
	if (server) {
		alpn[n].data = (unsigned char *)"http/1.1";
		alpn[n++].size = 8;
	} else {
		for (; n < 2; n++) {
			alpn[n].data = (unsigned char *)alpn_cli[n];
			alpn[n].size = (unsigned)strlen(alpn_cli[n]);
		}
		if (sni && *sni &&
		    gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni,
		                           strlen(sni)) < 0)
			goto fail;
	}
	if (gnutls_alpn_set_protocols(s, alpn, n, 0) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	gnutls_deinit(s);
	return WN_ECRYPTO;
}

int wn_http_looks_like_request(const uint8_t *p, size_t n)
{
	static const char *const methods[] = {
	    "GET ",     "HEAD ",    "POST ",  "PUT ",   "DELETE ",
	    "OPTIONS ", "CONNECT ", "PATCH ", "TRACE ", "PRI "};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t m = strlen(methods[i]);
		if (memcmp(p, methods[i], n < m ? n : m) == 0 && n > 0)
			return 1;
	}
	return 0;
}

size_t wn_http_answer(char *buf, size_t cap, int looked_like_http,
                      int plain_to_tls, long long now_s)
{
	const char *status, *extra = "";
	char body[512], date[64];
	time_t t = (time_t)now_s;
	struct tm tm;
	int n;

	if (looked_like_http && !plain_to_tls)
		status = "404 Not Found";
	else
		status = "400 Bad Request";
	if (plain_to_tls)
		extra = "<center>The plain HTTP request was sent to HTTPS "
		        "port</center>\r\n";
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(body, sizeof(body),
	         "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n"
	         "<center><h1>%s</h1></center>\r\n%s<hr><center>nginx</center>"
	         "\r\n</body>\r\n</html>\r\n",
	         status, status, extra);
	n = snprintf(buf, cap,
	             "HTTP/1.1 %s\r\nServer: nginx\r\nDate: %s\r\n"
	             "Content-Type: text/html\r\nContent-Length: %zu\r\n"
	             "Connection: close\r\n\r\n%s",
	             status, date, strlen(body), body);
	if (n < 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

int wn_tls_load_answer(struct wn_log *log, const char *path, char **out,
                       size_t *len)
{
	FILE *f = path ? fopen(path, "rb") : NULL;
	char *buf = malloc(WN_TLS_ANSWER_MAX);
	size_t n;

	if (!f || !buf) {
		WN_LOG(log, WN_LOG_ERROR, LOG_COMP, "tls: cannot read %s",
		       path ? path : "(no fallback file)");
		if (f)
			fclose(f);
		free(buf);
		return WN_ENOENT;
	}
	n = fread(buf, 1, WN_TLS_ANSWER_MAX, f);
	fclose(f);
	if (n == 0) {
		free(buf);
		return WN_EINVAL;
	}
	*out = buf;
	*len = n;
	return 0;
}
