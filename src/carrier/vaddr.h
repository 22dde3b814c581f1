/* Virtual peer addresses, for carriers that are not UDP (carrier.h).
 *
 * A carrier whose peers are connections (tcp, tls) or keys (tox) names each
 * peer to the engine with an IPv6 address in fd00::/8 that never appears on
 * the wire: 0xfd, a tag of WN_VADDR_TAG_LEN bytes that names the peer (a
 * session, a friend), then a 64-bit number that names one path to it (a
 * connection), with a port. A new path to the same peer keeps the tag and
 * changes the number, so an engine sees a new address (and migrates) while
 * the carrier can still route anything sent to an old one by its tag. */
#ifndef WN_CARRIER_VADDR_H
#define WN_CARRIER_VADDR_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#define WN_VADDR_TAG_LEN 7

/* Fills *a with the virtual address of tag, path number num and port. */
void wn_vaddr_make(struct sockaddr_in6 *a, const uint8_t tag[WN_VADDR_TAG_LEN],
                   uint64_t num, uint16_t port);

/* The tag of a virtual address (WN_VADDR_TAG_LEN bytes inside sa), or NULL
 * when sa (len bytes) is not one. */
const uint8_t *wn_vaddr_tag(const struct sockaddr *sa, socklen_t len);

/* The path number of a virtual address (0 when sa is not one). */
uint64_t wn_vaddr_num(const struct sockaddr *sa, socklen_t len);

#endif
