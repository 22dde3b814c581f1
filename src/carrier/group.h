/* The decisions a tcp or tls carrier makes about its connection group, kept
 * pure (no I/O, no clock: times are passed in, in loop milliseconds) so
 * they are tested on their own (private to src/carrier/).
 *
 * A client with conns = N keeps N connections of one session up to its
 * server; the server keeps every connection bound to a session. Both ends
 * spread packets over the live ones (wn_sgroup_pick), keep idle ones
 * provably alive with empty padding records (the client pings, the server
 * answers: wn_sgroup_ping_due, wn_sgroup_ack_due), the server drops a
 * member that went silent while a sibling lives (wn_sgroup_silent), and
 * the client rotates members one at a time (wn_sgroup_rotate_*). */
#ifndef WN_CARRIER_GROUP_H
#define WN_CARRIER_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WN_SGROUP_MAX 16 /* client: conns = 1..16 */
/* Server: members kept per session (a client's N, the one being rotated
 * in, and old ones not yet known dead); the oldest goes beyond this. */
#define WN_SGROUP_SERVER_MAX (2 * WN_SGROUP_MAX)
/* The preferred connection keeps the batches while at most its write
 * queue's limit over WN_SGROUP_LOW_DIV is queued. Half: spilling over
 * reorders packets by the queue's delay, which costs a single QUIC stream
 * dearly at an eighth of the queue and nearly nothing at half of it
 * (docs/performance.md, "Parallel connections and the spill-over mark"). */
#define WN_SGROUP_LOW_DIV 2
#define WN_SGROUP_NONE ((size_t)-1) /* in wn_sgroup_pick: cannot send */

/* Picks the connection a batch goes on, among n. queued[i] is the bytes
 * waiting in connection i's write queue, or WN_SGROUP_NONE when it cannot
 * send (not up, closing). cur (n for none) is the preferred connection:
 * it keeps the batches while it has at most low bytes queued, so packets
 * mostly stay in order; otherwise the one with the fewest bytes queued
 * wins (cur on a tie, then the lowest index). Returns an index, or n when
 * none can send. */
size_t wn_sgroup_pick(const size_t *queued, size_t n, size_t cur, size_t low);

/* Whether a connection of age_ms that carried bytes (in and out) is due to
 * be replaced (rotate_after_ms, rotate_bytes: 0 for never). */
bool wn_sgroup_rotate_due(uint64_t age_ms, uint64_t bytes,
                          uint32_t rotate_after_ms, uint64_t rotate_bytes);

/* Whether the client may start replacing a due connection at now: never
 * while another replacement is under way (busy), and, with
 * rotate_after_ms, not sooner than rotate_after_ms / n after the last one
 * started (last_ms; started: whether one ever did), so the rotations of a
 * group born together spread over the period instead of coinciding. */
bool wn_sgroup_rotate_may_start(uint64_t now, bool busy, bool started,
                                uint64_t last_ms, uint32_t rotate_after_ms,
                                unsigned n);

/* Client: a connection that sent nothing for ping_ms gets an empty
 * padding record, so a silent member still proves itself alive (or shows
 * it is dead: the stall rule then sees no answer). */
bool wn_sgroup_ping_due(uint64_t now, uint64_t last_tx_ms, uint32_t ping_ms);

/* Server: a connection that received something since it last sent, and
 * sent nothing for ack_ms, answers with an empty padding record, so a
 * client that sends on a member the server does not reply on still hears
 * from it within its stall time. */
bool wn_sgroup_ack_due(uint64_t now, uint64_t last_rx_ms, uint64_t last_tx_ms,
                       uint32_t ack_ms);

/* Server: a member that heard nothing for silent_ms is dead when the
 * session has a sibling connection (a live client pings every member);
 * a lone connection is left to idle_close. */
bool wn_sgroup_silent(uint64_t now, uint64_t last_rx_ms, uint32_t silent_ms,
                      size_t members);

#endif
