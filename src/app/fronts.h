/* The front ends' options from the configuration: the one place where the
 * schema's sections (app/config.h) become what the front ends take, so no
 * front-end header depends on the application's config structs. Each
 * function fills the schema's part of *o and zeroes the rest (queue caps,
 * timeouts), which the caller sets from the engine it runs. */
#ifndef WN_APP_FRONTS_H
#define WN_APP_FRONTS_H

#include "app/config.h"
#include "front/dialer.h"
#include "front/forward.h"
#include "front/socks5.h"
#include "front/udp.h"

/* sc is borrowed by *o (its allow rules), and so by the dialer. */
void wn_app_dialer_opts(const struct wn_server_cfg *sc,
                        struct wn_dialer_opts *o);

/* fc is borrowed by *o until wn_forward_open, which copies it. Without a
 * target in fc (engine kcptun) o->target is NULL. */
void wn_app_forward_opts(const struct wn_forward_cfg *fc,
                         struct wn_forward_opts *o);

/* A [udp NAME] section (fc->udp): fc is borrowed by *o until
 * wn_udp_front_open, which copies it. */
void wn_app_udp_opts(const struct wn_forward_cfg *fc,
                     struct wn_udp_front_opts *o);

/* sk is borrowed by *o until wn_socks5_front_open, which copies it. */
void wn_app_socks5_opts(const struct wn_socks5_cfg *sk,
                        struct wn_socks5_front_opts *o);

#endif
