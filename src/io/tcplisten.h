/* Listening TCP sockets for a list of addresses that must share one port:
 * the addresses one listen name resolves to ("localhost" is 127.0.0.1 and
 * ::1 on Debian's default /etc/hosts). One name means one port, so with
 * port 0 the system's choice for the first address is taken for the others
 * too. Plain sockets, handed to libuv by the caller (uv_tcp_open). */
#ifndef WN_IO_TCPLISTEN_H
#define WN_IO_TCPLISTEN_H

#include <sys/socket.h>

/* How many ports port 0 tries before giving up: a port the system picked for
 * one address may be taken on another family's address. */
#define WN_TCPLISTEN_TRIES 16

/* Binds and listens (with backlog) on each of the n IPv4/IPv6 addresses in
 * addrs, all on one port: the addresses' port if it is not 0 (each carries
 * the same one, as getaddrinfo returns them), else a port the system picks
 * for the first address that binds, then the same port on the others; if
 * one of them has it taken, everything is closed and another port is tried,
 * up to WN_TCPLISTEN_TRIES times. IPv6 sockets are IPv6-only: a name lists
 * its IPv4 addresses itself. SO_REUSEADDR is set, as libuv does.
 *
 * Addresses this host does not have (EADDRNOTAVAIL; EAFNOSUPPORT, as ::1
 * without IPv6) are skipped, with fds[i] = -1. On success returns how many
 * are listening (at least one) and fds[0..n-1] holds the non-blocking,
 * close-on-exec sockets, which the caller owns. Otherwise returns a WN_E*
 * code (WN_EADDRINUSE, or the skip reason if no address was usable) and
 * nothing is left open. */
int wn_tcplisten_open(const struct sockaddr_storage *addrs, int n, int backlog,
                      int *fds);

/* The port of a bound socket, or 0. */
unsigned wn_tcplisten_port(int fd);

#endif
