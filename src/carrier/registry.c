/* The carrier types (registry.h). */
#include "carrier/registry.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"

static int udp_client(struct wn_loop *loop, struct wn_log *log,
                      const struct wn_carrier_conf *conf,
                      const struct wn_carrier_handler *h,
                      struct wn_carrier **out)
{
	struct wn_udp_opts uo = conf->udp;
	struct sockaddr_storage local;
	socklen_t llen;
	int rc;

	/* A client binds the wildcard of its server's family (udp.h). */
	if (!conf->addr)
		return WN_EINVAL;
	rc = wn_udp_wildcard(conf->addr->sa_family, &local, &llen);
	if (rc != 0)
		return rc;
	uo.id = conf->id;
	return wn_udp_carrier_open(loop, log, (struct sockaddr *)&local, llen,
	                           &uo, h, out);
}

static int udp_server(struct wn_loop *loop, struct wn_log *log,
                      const struct wn_carrier_conf *conf,
                      const struct wn_carrier_handler *h,
                      struct wn_carrier **out)
{
	struct wn_udp_opts uo = conf->udp;

	uo.id = conf->id;
	return wn_udp_carrier_open(loop, log, conf->addr, conf->addrlen, &uo, h,
	                           out);
}

static int tcp_client(struct wn_loop *loop, struct wn_log *log,
                      const struct wn_carrier_conf *conf,
                      const struct wn_carrier_handler *h,
                      struct wn_carrier **out)
{
	return wn_tcp_client_open(loop, log, conf->id, conf->addr,
	                          conf->addrlen, conf->server_pk, &conf->tcp, h,
	                          out);
}

static int tcp_server(struct wn_loop *loop, struct wn_log *log,
                      const struct wn_carrier_conf *conf,
                      const struct wn_carrier_handler *h,
                      struct wn_carrier **out)
{
	return wn_tcp_server_open(loop, log, conf->id, conf->addr,
	                          conf->addrlen, conf->ident, &conf->tcp, h,
	                          out);
}

static int tls_client(struct wn_loop *loop, struct wn_log *log,
                      const struct wn_carrier_conf *conf,
                      const struct wn_carrier_handler *h,
                      struct wn_carrier **out)
{
	return wn_tls_client_open(loop, log, conf->id, conf->addr,
	                          conf->addrlen, conf->server_pk, &conf->tcp, h,
	                          out);
}

static int tls_server(struct wn_loop *loop, struct wn_log *log,
                      const struct wn_carrier_conf *conf,
                      const struct wn_carrier_handler *h,
                      struct wn_carrier **out)
{
	return wn_tls_server_open(loop, log, conf->id, conf->addr,
	                          conf->addrlen, conf->ident, &conf->tcp, h,
	                          out);
}

#define TCP_CAPS \
	(WN_CARRIER_RELIABLE | WN_CARRIER_CONNECTED | WN_CARRIER_FIXED_MTU)

static const struct wn_carrier_type types[] = {
    {"udp", WN_SCHEME_UDP, WN_CARRIER_DATAGRAM, udp_client, udp_server},
    {"tcp", WN_SCHEME_TCP, TCP_CAPS, tcp_client, tcp_server},
    {"tls", WN_SCHEME_TLS, TCP_CAPS, tls_client, tls_server},
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

const struct wn_carrier_type *wn_carrier_type_find(enum wn_scheme scheme)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (types[i].scheme == scheme)
			return &types[i];
	return NULL;
}

const struct wn_carrier_type *wn_carrier_type_by_name(const char *name)
{
	for (size_t i = 0; name && i < NTYPES; i++)
		if (strcmp(types[i].name, name) == 0)
			return &types[i];
	return NULL;
}

const struct wn_carrier_type *wn_carrier_type_at(size_t i)
{
	return i < NTYPES ? &types[i] : NULL;
}

unsigned wn_carrier_schemes(void)
{
	unsigned m = 0;

	for (size_t i = 0; i < NTYPES; i++)
		m |= (unsigned)types[i].scheme;
	return m;
}

/* Built from the table at compile time would need the preprocessor to
 * know it; the table is small, so the text is written out and a unit
 * test checks that it names every type. */
const char *wn_carrier_expect(void)
{
	return "udp://, tcp:// or tls://HOST:PORT";
}
