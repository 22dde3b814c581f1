/* Noise IK: the cacophony test vector (tests/data/noise/, the
 * Noise_IK_25519_ChaChaPoly_BLAKE2b entry), a round trip with random keys,
 * and tampering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/noise.h"
#include "util/err.h"

#define VECTOR_FILE \
	WN_TEST_DATA_DIR "/noise/cacophony-25519-ChaChaPoly-BLAKE2b.json"
#define MAX_MSGS 8

struct vec_msg {
	uint8_t payload[256], ct[512];
	size_t plen, clen;
};

struct vector {
	uint8_t prologue[64];
	size_t prologue_len;
	uint8_t init_static[32], init_ephemeral[32], init_remote_static[32];
	uint8_t resp_static[32], resp_ephemeral[32];
	uint8_t handshake_hash[64];
	struct vec_msg msgs[MAX_MSGS];
	int nmsgs;
};

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	char *s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);
	return s;
}

/* The tiny JSON field extractor: finds "key": "hex" at or after *pos but
 * before end, decodes the hex into out, and moves *pos past it. */
static size_t hex_field(const char **pos, const char *end, const char *key,
                        uint8_t *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	const char *p = strstr(*pos, pat);
	assert_non_null(p);
	assert_true(p < end);
	p += strlen(pat);
	const char *q = strchr(p, '"');
	assert_non_null(q);
	size_t n;
	assert_int_equal(
	    sodium_hex2bin(out, cap, p, (size_t)(q - p), NULL, &n, NULL), 0);
	*pos = q + 1;
	return n;
}

static void load_ik_vector(struct vector *v)
{
	char *json = read_all(VECTOR_FILE);
	/* The closing quote keeps Noise_IKpsk2_... from matching. */
	const char *start =
	    strstr(json, "\"Noise_IK_25519_ChaChaPoly_BLAKE2b\"");
	assert_non_null(start);
	const char *end = strstr(start, "]");
	assert_non_null(end);
	const char *p = start;

	memset(v, 0, sizeof(*v));
	v->prologue_len = hex_field(&p, end, "init_prologue", v->prologue,
	                            sizeof(v->prologue));
	p = start;
	hex_field(&p, end, "init_static", v->init_static, 32);
	p = start;
	hex_field(&p, end, "init_ephemeral", v->init_ephemeral, 32);
	p = start;
	hex_field(&p, end, "init_remote_static", v->init_remote_static, 32);
	p = start;
	hex_field(&p, end, "resp_static", v->resp_static, 32);
	p = start;
	hex_field(&p, end, "resp_ephemeral", v->resp_ephemeral, 32);
	p = start;
	assert_int_equal(
	    hex_field(&p, end, "handshake_hash", v->handshake_hash, 64), 64);
	p = strstr(start, "\"messages\"");
	assert_non_null(p);
	while (v->nmsgs < MAX_MSGS) {
		const char *next = strstr(p, "\"payload\"");
		if (!next || next > end)
			break;
		struct vec_msg *m = &v->msgs[v->nmsgs++];
		m->plen = hex_field(&p, end, "payload", m->payload,
		                    sizeof(m->payload));
		m->clen =
		    hex_field(&p, end, "ciphertext", m->ct, sizeof(m->ct));
	}
	free(json);
}

static void pub(const uint8_t sk[32], uint8_t pk[32])
{
	assert_int_equal(crypto_scalarmult_base(pk, sk), 0);
}

static void test_cacophony_ik(void **state)
{
	(void)state;
	struct vector v;
	load_ik_vector(&v);
	assert_int_equal(v.nmsgs, 6);

	uint8_t i_spk[32], r_spk[32];
	pub(v.init_static, i_spk);
	pub(v.resp_static, r_spk);
	assert_memory_equal(r_spk, v.init_remote_static, 32);

	struct wn_noise_hs ini, res;
	assert_int_equal(wn_noise_ik_init(&ini, true, v.prologue,
	                                  v.prologue_len, v.init_static, i_spk,
	                                  v.init_ephemeral,
	                                  v.init_remote_static),
	                 0);
	assert_int_equal(wn_noise_ik_init(&res, false, v.prologue,
	                                  v.prologue_len, v.resp_static, r_spk,
	                                  v.resp_ephemeral, NULL),
	                 0);

	uint8_t buf[512], pl[256];
	size_t n, pn;
	/* -> e, es, s, ss */
	assert_int_equal(wn_noise_ik_write(&ini, v.msgs[0].payload,
	                                   v.msgs[0].plen, buf, sizeof(buf),
	                                   &n),
	                 0);
	assert_int_equal(n, v.msgs[0].clen);
	assert_memory_equal(buf, v.msgs[0].ct, n);
	assert_int_equal(wn_noise_ik_read(&res, buf, n, pl, sizeof(pl), &pn),
	                 0);
	assert_int_equal(pn, v.msgs[0].plen);
	assert_memory_equal(pl, v.msgs[0].payload, pn);
	assert_memory_equal(res.rs, i_spk, 32);
	/* <- e, ee, se */
	assert_int_equal(wn_noise_ik_write(&res, v.msgs[1].payload,
	                                   v.msgs[1].plen, buf, sizeof(buf),
	                                   &n),
	                 0);
	assert_int_equal(n, v.msgs[1].clen);
	assert_memory_equal(buf, v.msgs[1].ct, n);
	assert_int_equal(wn_noise_ik_read(&ini, buf, n, pl, sizeof(pl), &pn),
	                 0);
	assert_int_equal(pn, v.msgs[1].plen);
	assert_memory_equal(pl, v.msgs[1].payload, pn);

	struct wn_noise_cipher i_send = {.has_key = true},
	                       i_recv = {.has_key = true},
	                       r_send = {.has_key = true},
	                       r_recv = {.has_key = true};
	uint8_t hi[64], hr[64];
	assert_int_equal(wn_noise_ik_split(&ini, i_send.k, i_recv.k, hi), 0);
	assert_int_equal(wn_noise_ik_split(&res, r_send.k, r_recv.k, hr), 0);
	assert_memory_equal(hi, v.handshake_hash, 64);
	assert_memory_equal(hr, v.handshake_hash, 64);
	/* Split wiped the handshake states. */
	assert_int_equal(ini.step, 0);
	assert_int_equal(wn_noise_ik_split(&ini, i_send.k, i_recv.k, NULL),
	                 WN_EPROTO);

	/* Transport messages alternate, initiator first. */
	for (int i = 2; i < v.nmsgs; i++) {
		struct vec_msg *m = &v.msgs[i];
		bool from_init = i % 2 == 0;
		struct wn_noise_cipher *tx = from_init ? &i_send : &r_send;
		struct wn_noise_cipher *rx = from_init ? &r_recv : &i_recv;
		assert_int_equal(wn_noise_cipher_encrypt(
		                     tx, NULL, 0, m->payload, m->plen, buf),
		                 0);
		assert_int_equal(m->plen + 16, m->clen);
		assert_memory_equal(buf, m->ct, m->clen);
		/* In place. */
		assert_int_equal(
		    wn_noise_cipher_decrypt(rx, NULL, 0, buf, m->clen, buf), 0);
		assert_memory_equal(buf, m->payload, m->plen);
	}
	assert_int_equal(i_send.n, 2);
	assert_int_equal(r_recv.n, 2);
}

struct party {
	uint8_t s_sk[32], s_pk[32], e_sk[32];
};

static void party_new(struct party *p)
{
	randombytes_buf(p->s_sk, 32);
	pub(p->s_sk, p->s_pk);
	randombytes_buf(p->e_sk, 32);
}

static const uint8_t prologue[] = "warren test";

static void start(struct wn_noise_hs *ini, struct wn_noise_hs *res,
                  const struct party *a, const struct party *b)
{
	assert_int_equal(wn_noise_ik_init(ini, true, prologue, sizeof(prologue),
	                                  a->s_sk, a->s_pk, a->e_sk, b->s_pk),
	                 0);
	assert_int_equal(wn_noise_ik_init(res, false, prologue,
	                                  sizeof(prologue), b->s_sk, b->s_pk,
	                                  b->e_sk, NULL),
	                 0);
}

static void test_round_trip_random_keys(void **state)
{
	(void)state;
	struct party a, b;
	party_new(&a);
	party_new(&b);
	struct wn_noise_hs ini, res;
	start(&ini, &res, &a, &b);

	uint8_t m1[128], m2[128], pl[64];
	size_t n1, n2, pn;
	assert_int_equal(wn_noise_ik_write(&ini, (const uint8_t *)"hi", 2, m1,
	                                   sizeof(m1), &n1),
	                 0);
	assert_int_equal(n1, WN_NOISE_IK_MSG1_LEN(2));
	/* Out of turn. */
	assert_int_equal(wn_noise_ik_write(&ini, NULL, 0, m2, sizeof(m2), &n2),
	                 WN_EPROTO);
	assert_int_equal(wn_noise_ik_write(&res, NULL, 0, m2, sizeof(m2), &n2),
	                 WN_EPROTO);
	assert_int_equal(wn_noise_ik_read(&res, m1, n1, pl, sizeof(pl), &pn),
	                 0);
	assert_int_equal(pn, 2);
	assert_memory_equal(pl, "hi", 2);
	assert_memory_equal(res.rs, a.s_pk, 32);
	assert_int_equal(wn_noise_ik_write(&res, NULL, 0, m2, sizeof(m2), &n2),
	                 0);
	assert_int_equal(n2, WN_NOISE_IK_MSG2_LEN(0));
	assert_int_equal(wn_noise_ik_read(&ini, m2, n2, pl, sizeof(pl), &pn),
	                 0);
	assert_int_equal(pn, 0);

	uint8_t is[32], ir[32], rs[32], rr[32], hi[64], hr[64];
	assert_int_equal(wn_noise_ik_split(&ini, is, ir, hi), 0);
	assert_int_equal(wn_noise_ik_split(&res, rs, rr, hr), 0);
	assert_memory_equal(is, rr, 32);
	assert_memory_equal(ir, rs, 32);
	assert_memory_not_equal(is, ir, 32);
	assert_memory_equal(hi, hr, 64);

	/* Transport with explicit counters, both ways. */
	uint8_t buf[64];
	memcpy(buf, "ping", 4);
	assert_int_equal(wn_noise_aead_seal(is, 7, NULL, 0, buf, 4, buf), 0);
	assert_int_equal(wn_noise_aead_open(rr, 6, NULL, 0, buf, 20, pl),
	                 WN_ECRYPTO);
	assert_int_equal(wn_noise_aead_open(rr, 7, NULL, 0, buf, 20, pl), 0);
	assert_memory_equal(pl, "ping", 4);
	memcpy(buf, "pong", 4);
	assert_int_equal(wn_noise_aead_seal(rs, 0, NULL, 0, buf, 4, buf), 0);
	assert_int_equal(wn_noise_aead_open(ir, 0, NULL, 0, buf, 20, buf), 0);
	assert_memory_equal(buf, "pong", 4);
	assert_int_equal(wn_noise_aead_open(ir, 0, NULL, 0, buf, 15, buf),
	                 WN_ETRUNC);
}

/* Flipping any bit of either handshake message makes the receiver fail. */
static void test_tampering_fails(void **state)
{
	(void)state;
	struct party a, b;
	party_new(&a);
	party_new(&b);
	struct wn_noise_hs ini, res;
	uint8_t m1[128], m2[128], pl[64];
	size_t n1, n2, pn;

	start(&ini, &res, &a, &b);
	assert_int_equal(wn_noise_ik_write(&ini, (const uint8_t *)"payload", 7,
	                                   m1, sizeof(m1), &n1),
	                 0);
	for (size_t i = 0; i < n1; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			struct wn_noise_hs r2;
			start(&ini, &r2, &a, &b);
			m1[i] ^= (uint8_t)(1u << bit);
			assert_int_not_equal(
			    wn_noise_ik_read(&r2, m1, n1, pl, sizeof(pl), &pn),
			    0);
			m1[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Truncated or extended messages fail too. */
	start(&ini, &res, &a, &b);
	assert_int_equal(
	    wn_noise_ik_read(&res, m1, n1 - 1, pl, sizeof(pl), &pn),
	    WN_ECRYPTO);
	start(&ini, &res, &a, &b);
	assert_int_equal(wn_noise_ik_read(&res, m1, 95, pl, sizeof(pl), &pn),
	                 WN_ETRUNC);

	/* A good message 1, then tamper with message 2. */
	start(&ini, &res, &a, &b);
	assert_int_equal(wn_noise_ik_write(&ini, NULL, 0, m1, sizeof(m1), &n1),
	                 0);
	assert_int_equal(wn_noise_ik_read(&res, m1, n1, pl, sizeof(pl), &pn),
	                 0);
	assert_int_equal(wn_noise_ik_write(&res, NULL, 0, m2, sizeof(m2), &n2),
	                 0);
	struct wn_noise_hs saved = ini;
	for (size_t i = 0; i < n2; i++) {
		struct wn_noise_hs i2 = saved;
		m2[i] ^= 0x80;
		assert_int_not_equal(
		    wn_noise_ik_read(&i2, m2, n2, pl, sizeof(pl), &pn), 0);
		m2[i] ^= 0x80;
	}
	assert_int_equal(wn_noise_ik_read(&ini, m2, n2, pl, sizeof(pl), &pn),
	                 0);
}

/* The initiator must know the right responder key and prologue. */
static void test_wrong_key_or_prologue_fails(void **state)
{
	(void)state;
	struct party a, b, c;
	party_new(&a);
	party_new(&b);
	party_new(&c);
	struct wn_noise_hs ini, res;
	uint8_t m1[128], pl[64];
	size_t n1, pn;

	/* a thinks it talks to c, but b answers. */
	start(&ini, &res, &a, &c);
	assert_int_equal(wn_noise_ik_init(&res, false, prologue,
	                                  sizeof(prologue), b.s_sk, b.s_pk,
	                                  b.e_sk, NULL),
	                 0);
	assert_int_equal(wn_noise_ik_write(&ini, NULL, 0, m1, sizeof(m1), &n1),
	                 0);
	assert_int_equal(wn_noise_ik_read(&res, m1, n1, pl, sizeof(pl), &pn),
	                 WN_ECRYPTO);

	start(&ini, &res, &a, &b);
	assert_int_equal(wn_noise_ik_init(&res, false, (const uint8_t *)"x", 1,
	                                  b.s_sk, b.s_pk, b.e_sk, NULL),
	                 0);
	assert_int_equal(wn_noise_ik_write(&ini, NULL, 0, m1, sizeof(m1), &n1),
	                 0);
	assert_int_equal(wn_noise_ik_read(&res, m1, n1, pl, sizeof(pl), &pn),
	                 WN_ECRYPTO);

	/* A small-order ephemeral (all zero) is refused before any AEAD. */
	start(&ini, &res, &a, &b);
	memset(m1, 0, 32);
	assert_int_equal(wn_noise_ik_read(&res, m1, n1, pl, sizeof(pl), &pn),
	                 WN_ECRYPTO);

	/* No responder key on the initiator; no room for the payload. */
	assert_int_equal(
	    wn_noise_ik_init(&ini, true, NULL, 0, a.s_sk, a.s_pk, a.e_sk, NULL),
	    WN_EINVAL);
	start(&ini, &res, &a, &b);
	assert_int_equal(wn_noise_ik_write(&ini, NULL, 0, m1, 95, &n1),
	                 WN_ENOSPC);
	wn_noise_hs_wipe(&ini);
	wn_noise_hs_wipe(&res);
}

/* RFC 4231-style sanity: HMAC over split input equals HMAC over the joined
 * input, and differs from libsodium's keyed BLAKE2b (which is not HMAC). */
static void test_hmac_is_not_keyed_blake2b(void **state)
{
	(void)state;
	uint8_t key[64], a[64], b[64], kb[64];
	randombytes_buf(key, sizeof(key));
	wn_noise_hmac(key, 64, (const uint8_t *)"hello world", 11, NULL, 0, a);
	wn_noise_hmac(key, 64, (const uint8_t *)"hello ", 6,
	              (const uint8_t *)"world", 5, b);
	assert_memory_equal(a, b, 64);
	crypto_generichash_blake2b(kb, 64, (const uint8_t *)"hello world", 11,
	                           key, 64);
	assert_memory_not_equal(a, kb, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cacophony_ik),
	    cmocka_unit_test(test_round_trip_random_keys),
	    cmocka_unit_test(test_tampering_fails),
	    cmocka_unit_test(test_wrong_key_or_prologue_fails),
	    cmocka_unit_test(test_hmac_is_not_keyed_blake2b),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
