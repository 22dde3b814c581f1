/* Config sections to front-end options. See fronts.h. */
#include "app/fronts.h"

#include <string.h>

void wn_app_dialer_opts(const struct wn_server_cfg *sc,
                        struct wn_dialer_opts *o)
{
	memset(o, 0, sizeof(*o));
	/* Stream rules first, then the udp:// ones (config.h). */
	o->allow = sc->allow;
	o->n_allow = sc->n_allow - sc->n_allow_udp;
	o->udp_allow = sc->allow + o->n_allow;
	o->n_udp_allow = sc->n_allow_udp;
	o->udp_idle_ms = sc->udp_idle_ms;
	o->udp_conns = sc->udp_conns;
	o->target = sc->has_target ? &sc->target : NULL;
}

void wn_app_forward_opts(const struct wn_forward_cfg *fc,
                         struct wn_forward_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->name = fc->name;
	o->listen = fc->listen;
	o->target = fc->has_target ? &fc->target : NULL;
	o->unix_mode = fc->socket_mode;
}

void wn_app_udp_opts(const struct wn_forward_cfg *fc,
                     struct wn_udp_front_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->name = fc->name;
	o->listen = fc->listen;
	o->target = fc->target;
	o->idle_ms = fc->udp_idle_ms;
	o->max_flows = fc->max_flows;
	o->fec_data = fc->fec_data;
	o->fec_parity = fc->fec_parity;
	o->fec_delay_ms = fc->fec_delay_ms;
}

void wn_app_socks5_opts(const struct wn_socks5_cfg *sk,
                        struct wn_socks5_front_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->name = sk->name;
	o->listen = sk->listen;
	o->eager = sk->eager;
	o->users = sk->users;
	o->n_users = sk->n_users;
	o->unauthenticated = sk->unauthenticated;
	o->unix_mode = sk->socket_mode;
}
