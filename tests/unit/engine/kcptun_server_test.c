/* The kcptun profile's server against packets a stranger with the key (or
 * a replay of a client's) can send from any address: a session starts
 * only with a KCP stream's first segment, new sessions are rate-limited
 * per source prefix, and a session that has carried one packet costs
 * little memory (its snappy and FEC state come when first needed). The
 * packets are built here, as a kcptun client frames them; the carrier is
 * a stub that counts what the server sends. */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/kcp.h"
#include "core/kcpgo.h"
#include "core/snappyframe.h"
#include "crypto/kcpcrypt.h"
#include "engine/engine_ops.h"
#include "engine/kcp_engine_int.h"
#include "util/err.h"

struct stubcar {
	struct wn_carrier base;
	uint64_t sends, bytes;
};

static int sc_send(struct wn_carrier *c, const struct sockaddr *to,
                   socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct stubcar *m = (struct stubcar *)c;
	(void)to;
	(void)tolen;
	(void)buf;
	(void)seg;
	m->sends++;
	m->bytes += len;
	return 0;
}

static size_t sc_max_packet(const struct wn_carrier *c)
{
	(void)c;
	return 1452;
}

static int sc_local_addr(const struct wn_carrier *c,
                         struct sockaddr_storage *ss, socklen_t *len)
{
	(void)c;
	(void)ss;
	(void)len;
	return WN_EINVAL;
}

static void sc_close(struct wn_carrier *c)
{
	(void)c;
}

static const struct wn_carrier_ops sc_ops = {
    .send = sc_send,
    .max_packet = sc_max_packet,
    .local_addr = sc_local_addr,
    .close = sc_close,
};

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	(void)ctx;
	(void)t;
	(void)s;
	(void)target;
	fail_msg("no stream was opened");
}

struct rig {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_kcptun_cfg kt;
	struct wn_kcpcrypt crypt;
	struct stubcar car;
	struct wn_engine *srv;
	struct wn_carrier_handler h;
	uint32_t seqid;
};

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(wn_loop_init(&r->loop), 0);
	wn_log_init(&r->log, WN_LOG_ERROR, STDERR_FILENO);
	wn_kcptun_cfg_default(&r->kt); /* FEC 10+3, compression */
	wn_kcpcrypt_derive("kcptun server test", r->kt.key);
	assert_int_equal(wn_kcpcrypt_init(&r->crypt, r->kt.crypt, r->kt.key),
	                 0);
	struct wn_accept_handler ah = {.ctx = r, .on_stream = on_stream};
	struct wn_engine_conf c = {
	    .loop = &r->loop,
	    .log = &r->log,
	    .accept = &ah,
	    .passphrase = "kcptun server test",
	};
	assert_int_equal(wn_engine_server_new(&wn_kcptun_engine, &c, &r->srv),
	                 0);
	r->car.base.ops = &sc_ops;
	r->car.base.scheme = "stub";
	r->car.base.caps = WN_CARRIER_DATAGRAM;
	r->h = wn_engine_handler(r->srv);
	r->car.base.h = r->h;
}

/* Live sessions on the server. */
static uint64_t sessions(const struct rig *r)
{
	struct wn_engine_stats st;
	wn_engine_stats(r->srv, &st);
	return st.sessions;
}

static void rig_free(struct rig *r)
{
	wn_engine_close(r->srv);
	wn_kcpcrypt_wipe(&r->crypt);
	assert_int_equal(wn_loop_close(&r->loop), 0);
}

static struct sockaddr_in addr(const char *ip, uint16_t port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

/* What a kcptun client's first segment carries: snappy's stream
 * identifier and an uncompressed chunk holding an smux v1 NOP. */
static size_t first_payload(uint8_t *p)
{
	static const uint8_t id[] = {0xFF, 6,   0,   0,   's',
	                             'N',  'a', 'P', 'p', 'Y'};
	static const uint8_t nop[8] = {1, 3, 0, 0, 0, 0, 0, 0};
	memcpy(p, id, sizeof(id));
	uint8_t *c = p + sizeof(id);
	uint32_t crc = wn_crc32c(nop, sizeof(nop));
	uint32_t masked = ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
	c[0] = 0x01;
	c[1] = 4 + sizeof(nop);
	c[2] = c[3] = 0;
	c[4] = (uint8_t)masked;
	c[5] = (uint8_t)(masked >> 8);
	c[6] = (uint8_t)(masked >> 16);
	c[7] = (uint8_t)(masked >> 24);
	memcpy(c + 8, nop, sizeof(nop));
	return sizeof(id) + 8 + sizeof(nop);
}

/* Sends the server one FEC data shard holding one KCP segment from ip. */
static void send_seg(struct rig *r, const char *ip, uint16_t port,
                     uint32_t conv, uint8_t cmd, uint32_t sn)
{
	uint8_t pkt[256];
	uint8_t *kcp = pkt + WN_KCPCRYPT_HEADER + WN_KCPGO_FEC_DATA_HDR;
	size_t dlen = cmd == WN_KCP_CMD_PUSH ? first_payload(kcp + 24) : 0;
	struct wn_kcp_hdr h = {.conv = conv,
	                       .cmd = cmd,
	                       .wnd = 1024,
	                       .sn = sn,
	                       .len = (uint32_t)dlen};
	wn_kcp_hdr_encode(&h, kcp);
	wn_kcpgo_put_data_hdr(pkt + WN_KCPCRYPT_HEADER, r->seqid++, 24 + dlen);
	size_t len = WN_KCPCRYPT_HEADER + WN_KCPGO_FEC_DATA_HDR + 24 + dlen;
	uint8_t nonce[WN_KCPCRYPT_NONCE];
	randombytes_buf(nonce, sizeof(nonce));
	wn_kcpcrypt_seal(&r->crypt, pkt, len, nonce);
	struct sockaddr_in from = addr(ip, port);
	r->h.recv(r->h.ctx, &r->car.base, (struct sockaddr *)&from,
	          sizeof(from), pkt, len);
}

/* Only a KCP stream's first segment (a PUSH with sn 0) starts a session:
 * acks and later segments from an unknown address are dropped. */
static void test_session_starts_with_sn0(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	send_seg(&r, "10.0.0.1", 4000, 0x11, WN_KCP_CMD_ACK, 0);
	send_seg(&r, "10.0.0.1", 4000, 0x11, WN_KCP_CMD_WASK, 0);
	send_seg(&r, "10.0.0.1", 4000, 0x11, WN_KCP_CMD_PUSH, 7);
	assert_int_equal(sessions(&r), 0);
	send_seg(&r, "10.0.0.1", 4000, 0x11, WN_KCP_CMD_PUSH, 0);
	assert_int_equal(sessions(&r), 1);
	rig_free(&r);
}

/* 100 new sessions at once from one /24 (as from spoofed neighbours) get
 * the prefix's burst of 32; another /24 still gets its own. */
static void test_new_sessions_per_prefix(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	for (unsigned i = 0; i < 100; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.9.9.%u", 1 + i);
		send_seg(&r, ip, (uint16_t)(5000 + i), 0x100 + i,
		         WN_KCP_CMD_PUSH, 0);
	}
	assert_int_equal(sessions(&r), 32);
	send_seg(&r, "10.9.10.1", 5000, 0x999, WN_KCP_CMD_PUSH, 0);
	assert_int_equal(sessions(&r), 33);
	rig_free(&r);
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* N sessions that each carried one client packet (FEC and compression on,
 * kcptun's defaults) cost at most 160 KiB each: no snappy block, no
 * encoding buffer, no FEC groups until they are needed. */
static void test_session_memory(void **state)
{
	(void)state;
	enum { N = 64 };
	/* mallinfo2 sees glibc's heap only (not a sanitizer's). */
	size_t before = heap_in_use();
	void *volatile probe = malloc(1 << 20);
	int counted = probe && heap_in_use() - before >= (1 << 20);
	free(probe);
	if (!counted)
		skip();
	struct rig r;
	rig_init(&r);
	size_t base = heap_in_use();
	for (unsigned i = 0; i < N; i++) {
		char ip[32];
		/* One /24 each, so the prefix limit lets every one in. */
		snprintf(ip, sizeof(ip), "10.%u.%u.1", 20 + i / 200, i % 200);
		send_seg(&r, ip, 6000, 0x200 + i, WN_KCP_CMD_PUSH, 0);
	}
	assert_int_equal(sessions(&r), N);
	size_t per = (heap_in_use() - base) / N;
	print_message("kcptun server: %zu bytes per session after one packet\n",
	              per);
	assert_true(per <= 160 * 1024);
	rig_free(&r);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session_starts_with_sn0),
	    cmocka_unit_test(test_new_sessions_per_prefix),
	    cmocka_unit_test(test_session_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
