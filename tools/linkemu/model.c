/* The impairment model of warren-linkemu; see model.h for the semantics. */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"

/* 128-bit arithmetic keeps the serializing link exact: times in ns times
 * rates in bit/s overflow 64 bits. */
__extension__ typedef unsigned __int128 u128;

#define NS_PER_S UINT64_C(1000000000)
/* One byte on a link of R bit/s lasts 8e9 / R ns: scaled time units are
 * ns * R, so a byte is worth BYTE_SCALED of them. */
#define BYTE_SCALED (8 * NS_PER_S)

/* ---- random numbers ---------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void le_rng_seed(struct le_rng *rng, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t le_rng_next(struct le_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t le_rng_upto(struct le_rng *rng, uint64_t bound)
{
	if (bound == UINT64_MAX)
		return le_rng_next(rng);
	uint64_t range = bound + 1;
	/* 2^64 mod range: values below it would bias the modulo. */
	uint64_t thresh = (0 - range) % range;

	for (;;) {
		uint64_t x = le_rng_next(rng);

		if (x >= thresh)
			return x % range;
	}
}

le_prob le_prob_from_double(double p)
{
	if (!(p > 0))
		return 0;
	if (p >= 1)
		return LE_PROB_ONE;
	return (le_prob)llround(p * (double)LE_PROB_ONE);
}

bool le_rng_chance(struct le_rng *rng, le_prob p)
{
	return (le_rng_next(rng) >> (64 - LE_PROB_BITS)) < p;
}

/* ---- configuration ----------------------------------------------------- */

uint64_t le_cfg_queue_bytes(const struct le_cfg *cfg)
{
	if (cfg->rate_bps == 0)
		return 0;
	if (cfg->queue_bytes)
		return cfg->queue_bytes;
	uint64_t q =
	    (uint64_t)((u128)cfg->rate_bps * LE_QUEUE_DEFAULT_NS / BYTE_SCALED);
	return q < LE_QUEUE_MIN_BYTES ? LE_QUEUE_MIN_BYTES : q;
}

uint64_t le_cfg_reorder_hold(const struct le_cfg *cfg)
{
	return cfg->reorder_hold_ns ? cfg->reorder_hold_ns : LE_REORDER_HOLD_NS;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

struct unit {
	const char *name;
	double mult;
};

static const struct unit time_units[] = {
    {"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {NULL, 0}};
static const struct unit rate_units[] = {
    {"bit", 1}, {"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}, {NULL, 0}};
static const struct unit byte_units[] = {
    {"b", 1}, {"kb", 1024}, {"mb", 1048576}, {NULL, 0}};
static const struct unit prob_units[] = {{"%", 0.01}, {NULL, 0}};

/* Parses "<decimal><unit>" (a bare "0" needs no unit) into *out, which
 * must lie in [0, max]. Returns false on any error. */
static bool parse_num(const char *s, const struct unit *units, double max,
                      double *out)
{
	const char *p = s;
	double v = 0, scale = 0;
	bool digits = false;

	for (; *p >= '0' && *p <= '9'; p++, digits = true)
		v = v * 10 + (*p - '0');
	if (*p == '.') {
		double f = 0.1;

		for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
			v += (*p - '0') * f;
			f /= 10;
		}
	}
	if (!digits)
		return false;
	if (*p == '\0') {
		if (v != 0)
			return false;
		*out = 0;
		return true;
	}
	for (const struct unit *u = units; u->name; u++) {
		if (strcasecmp(p, u->name) == 0) {
			scale = u->mult;
			break;
		}
	}
	if (scale == 0 || v * scale > max)
		return false;
	*out = v * scale;
	return true;
}

static int parse_time(const char *key, const char *s, uint64_t *ns, char *err,
                      size_t errlen)
{
	double v;

	if (!parse_num(s, time_units, 3600e9, &v)) {
		seterr(err, errlen,
		       "%s: bad time '%s' (a number with ns, us, ms or s, "
		       "at most 3600s)",
		       key, s);
		return WN_EINVAL;
	}
	*ns = (uint64_t)llround(v);
	return WN_OK;
}

static int parse_prob(const char *key, const char *s, le_prob *p, char *err,
                      size_t errlen)
{
	double v;

	if (!parse_num(s, prob_units, 1.0, &v)) {
		seterr(err, errlen,
		       "%s: bad probability '%s' (a percentage from 0%% to "
		       "100%%, e.g. 1%% or 0.5%%)",
		       key, s);
		return WN_EINVAL;
	}
	*p = le_prob_from_double(v);
	return WN_OK;
}

static int parse_rate(const char *key, const char *s, uint64_t *bps, char *err,
                      size_t errlen)
{
	double v;

	if (!parse_num(s, rate_units, 1e12, &v) || (v > 0 && v < 1)) {
		seterr(err, errlen,
		       "%s: bad rate '%s' (a number with bit, kbit, mbit or "
		       "gbit, at most 1000gbit; 0 for unlimited)",
		       key, s);
		return WN_EINVAL;
	}
	*bps = (uint64_t)llround(v);
	return WN_OK;
}

static int parse_bytes(const char *key, const char *s, uint64_t *bytes,
                       char *err, size_t errlen)
{
	double v;

	if (!parse_num(s, byte_units, 1024.0 * 1048576, &v)) {
		seterr(err, errlen,
		       "%s: bad size '%s' (a number with b, kb or mb, "
		       "1024-based, at most 1024mb; 0 for the default)",
		       key, s);
		return WN_EINVAL;
	}
	*bytes = (uint64_t)llround(v);
	return WN_OK;
}

/* Splits `val` in place at ':' into at most `max` fields; returns the
 * count, or max + 1 if there were more. */
static int split_fields(char *val, char **f, int max)
{
	int n = 0;

	for (char *p = val;; n++) {
		if (n == max)
			return max + 1;
		f[n] = p;
		p = strchr(p, ':');
		if (!p)
			return n + 1;
		*p++ = '\0';
	}
}

static int parse_item(struct le_cfg *cfg, char *item, char *err, size_t errlen)
{
	char *val = strchr(item, '=');
	char *f[5];
	int n, rc = WN_OK;

	if (!val) {
		seterr(err, errlen, "'%s': expected KEY=VALUE", item);
		return WN_EINVAL;
	}
	*val++ = '\0';
	n = split_fields(val, f, 4);
	if (strcmp(item, "delay") == 0 && n == 1) {
		rc = parse_time(item, f[0], &cfg->delay_ns, err, errlen);
	} else if (strcmp(item, "jitter") == 0 && n <= 2) {
		rc = parse_time(item, f[0], &cfg->jitter_ns, err, errlen);
		if (rc == WN_OK && n == 2) {
			if (strcmp(f[1], "reorder") == 0) {
				cfg->jitter_reorder = true;
			} else if (strcmp(f[1], "order") == 0) {
				cfg->jitter_reorder = false;
			} else {
				seterr(err, errlen,
				       "jitter: unknown mode '%s' (order or "
				       "reorder)",
				       f[1]);
				rc = WN_EINVAL;
			}
		}
	} else if (strcmp(item, "loss") == 0 && n == 1) {
		rc = parse_prob(item, f[0], &cfg->loss, err, errlen);
	} else if (strcmp(item, "burst") == 0 && n == 1 &&
	           (strcmp(f[0], "off") == 0 || strcmp(f[0], "0") == 0)) {
		cfg->burst = false;
	} else if (strcmp(item, "burst") == 0 && n >= 2 && n <= 4) {
		le_prob p[4] = {0, 0, LE_PROB_ONE, 0};

		for (int i = 0; i < n && rc == WN_OK; i++)
			rc = parse_prob(item, f[i], &p[i], err, errlen);
		if (rc == WN_OK && p[1] == 0) {
			seterr(err, errlen,
			       "burst: r (bad->good) must be above 0%%");
			rc = WN_EINVAL;
		}
		if (rc == WN_OK) {
			cfg->burst = true;
			cfg->ge_p = p[0];
			cfg->ge_r = p[1];
			cfg->ge_loss_bad = p[2];
			cfg->ge_loss_good = p[3];
		}
	} else if (strcmp(item, "rate") == 0 && n == 1) {
		rc = parse_rate(item, f[0], &cfg->rate_bps, err, errlen);
	} else if (strcmp(item, "queue") == 0 && n == 1) {
		rc = parse_bytes(item, f[0], &cfg->queue_bytes, err, errlen);
	} else if (strcmp(item, "reorder") == 0 && n <= 2) {
		rc = parse_prob(item, f[0], &cfg->reorder, err, errlen);
		if (rc == WN_OK && n == 2) {
			rc = parse_time(item, f[1], &cfg->reorder_hold_ns, err,
			                errlen);
			if (rc == WN_OK && cfg->reorder_hold_ns == 0) {
				seterr(err, errlen,
				       "reorder: hold time must be above 0");
				rc = WN_EINVAL;
			}
		}
	} else if (strcmp(item, "dup") == 0 && n == 1) {
		rc = parse_prob(item, f[0], &cfg->dup, err, errlen);
	} else {
		seterr(err, errlen,
		       "'%s': unknown key or wrong number of ':' fields "
		       "(keys: delay=T jitter=T[:order|:reorder] loss=P "
		       "burst=P:P[:P[:P]] rate=R queue=B reorder=P[:T] dup=P)",
		       item);
		rc = WN_EINVAL;
	}
	return rc;
}

int le_cfg_parse(struct le_cfg *cfg, const char *spec, char *err, size_t errlen)
{
	char buf[1024];
	struct le_cfg tmp = *cfg;
	char *save = NULL;

	if (err && errlen)
		err[0] = '\0';
	if (strlen(spec) >= sizeof(buf)) {
		seterr(err, errlen, "spec longer than %zu characters",
		       sizeof(buf) - 1);
		return WN_EINVAL;
	}
	if (strcmp(spec, "none") == 0)
		return WN_OK;
	strcpy(buf, spec);
	for (char *item = strtok_r(buf, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		int rc = parse_item(&tmp, item, err, errlen);

		if (rc != WN_OK)
			return rc;
	}
	*cfg = tmp;
	return WN_OK;
}

static int fmt_time(char *buf, size_t len, uint64_t ns)
{
	if (ns % 1000000 == 0)
		return snprintf(buf, len, "%llums",
		                (unsigned long long)(ns / 1000000));
	if (ns % 1000 == 0)
		return snprintf(buf, len, "%lluus",
		                (unsigned long long)(ns / 1000));
	return snprintf(buf, len, "%lluns", (unsigned long long)ns);
}

static double prob_pct(le_prob p)
{
	return (double)p * 100.0 / (double)LE_PROB_ONE;
}

int le_cfg_format(const struct le_cfg *cfg, char *buf, size_t len)
{
	char d[32], j[32], h[32], b[96];

	fmt_time(d, sizeof(d), cfg->delay_ns);
	fmt_time(j, sizeof(j), cfg->jitter_ns);
	fmt_time(h, sizeof(h), le_cfg_reorder_hold(cfg));
	if (cfg->burst)
		snprintf(b, sizeof(b), "%g%%:%g%%:%g%%:%g%%",
		         prob_pct(cfg->ge_p), prob_pct(cfg->ge_r),
		         prob_pct(cfg->ge_loss_bad),
		         prob_pct(cfg->ge_loss_good));
	else
		snprintf(b, sizeof(b), "off");
	return snprintf(buf, len,
	                "delay=%s jitter=%s:%s loss=%g%% burst=%s rate=%llubit "
	                "queue=%llub reorder=%g%%:%s dup=%g%%",
	                d, j, cfg->jitter_reorder ? "reorder" : "order",
	                prob_pct(cfg->loss), b,
	                (unsigned long long)cfg->rate_bps,
	                (unsigned long long)le_cfg_queue_bytes(cfg),
	                prob_pct(cfg->reorder), h, prob_pct(cfg->dup));
}

/* ---- one direction ----------------------------------------------------- */

int le_dir_init(struct le_dir *dir, const struct le_cfg *cfg, uint64_t seed)
{
	const le_prob probs[] = {
	    cfg->loss,         cfg->ge_p,    cfg->ge_r, cfg->ge_loss_bad,
	    cfg->ge_loss_good, cfg->reorder, cfg->dup};
	uint64_t x = seed;

	for (size_t i = 0; i < sizeof(probs) / sizeof(probs[0]); i++)
		if (probs[i] > LE_PROB_ONE)
			return WN_EINVAL;
	if (cfg->burst && cfg->ge_p > 0 && cfg->ge_r == 0)
		return WN_EINVAL;
	memset(dir, 0, sizeof(*dir));
	dir->cfg = *cfg;
	dir->queue_bytes = le_cfg_queue_bytes(cfg);
	dir->hold_ns = le_cfg_reorder_hold(cfg);
	/* Independent streams: each seeded from its own splitmix64 output. */
	le_rng_seed(&dir->rng_loss, splitmix64(&x));
	le_rng_seed(&dir->rng_burst, splitmix64(&x));
	le_rng_seed(&dir->rng_jitter, splitmix64(&x));
	le_rng_seed(&dir->rng_reorder, splitmix64(&x));
	le_rng_seed(&dir->rng_dup, splitmix64(&x));
	return WN_OK;
}

/* The remaining serialization work at `now` in scaled units (ns * bit/s);
 * only valid when the link is not idle (now <= free_ns). */
static u128 remaining_scaled(const struct le_dir *dir, uint64_t now)
{
	return (u128)(dir->free_ns - now) * dir->cfg.rate_bps + dir->free_frac;
}

uint64_t le_dir_backlog(const struct le_dir *dir, uint64_t now_ns)
{
	if (dir->cfg.rate_bps == 0 || now_ns > dir->free_ns)
		return 0;
	return (uint64_t)((remaining_scaled(dir, now_ns) + BYTE_SCALED - 1) /
	                  BYTE_SCALED);
}

/* Steps 1: returns false for a tail drop, else sets *sent. */
static bool enqueue(struct le_dir *dir, uint64_t now, uint32_t len,
                    uint64_t *sent)
{
	uint64_t rate = dir->cfg.rate_bps;

	if (rate == 0) {
		*sent = now;
		return true;
	}
	if (now > dir->free_ns) {
		dir->free_ns = now;
		dir->free_frac = 0;
	}
	u128 need = (u128)len * BYTE_SCALED;

	if (remaining_scaled(dir, now) + need >
	    (u128)dir->queue_bytes * BYTE_SCALED)
		return false;
	u128 end = (u128)dir->free_ns * rate + dir->free_frac + need;

	dir->free_ns = (uint64_t)(end / rate);
	dir->free_frac = (uint64_t)(end % rate);
	*sent = dir->free_ns;
	return true;
}

/* Advances the Gilbert-Elliott chain by one packet; returns true if the
 * packet is lost. The loss draw uses the state before the transition. */
static bool ge_step(struct le_dir *dir)
{
	const struct le_cfg *c = &dir->cfg;
	bool lost;

	if (dir->ge_bad) {
		lost = le_rng_chance(&dir->rng_burst, c->ge_loss_bad);
		if (le_rng_chance(&dir->rng_burst, c->ge_r))
			dir->ge_bad = false;
	} else {
		lost = le_rng_chance(&dir->rng_burst, c->ge_loss_good);
		if (le_rng_chance(&dir->rng_burst, c->ge_p))
			dir->ge_bad = true;
	}
	return lost;
}

void le_dir_decide(struct le_dir *dir, uint64_t now_ns, uint32_t len,
                   struct le_decision *out)
{
	const struct le_cfg *c = &dir->cfg;
	uint64_t sent, at;
	bool ge_lost = false, lost = false;

	memset(out, 0, sizeof(*out));
	if (now_ns < dir->last_now)
		now_ns = dir->last_now;
	dir->last_now = now_ns;
	dir->cnt.packets++;
	dir->cnt.bytes += len;

	if (!enqueue(dir, now_ns, len, &sent)) {
		out->verdict = LE_DROP_QUEUE;
		dir->cnt.dropped_queue++;
		return;
	}
	out->sent_ns = sent;

	if (c->burst)
		ge_lost = ge_step(dir);
	if (c->loss)
		lost = le_rng_chance(&dir->rng_loss, c->loss);
	if (ge_lost) {
		out->verdict = LE_DROP_BURST;
		dir->cnt.dropped_burst++;
		return;
	}
	if (lost) {
		out->verdict = LE_DROP_LOSS;
		dir->cnt.dropped_loss++;
		return;
	}

	at = sent + c->delay_ns;
	if (c->jitter_ns) {
		uint64_t u = le_rng_upto(&dir->rng_jitter, 2 * c->jitter_ns);

		at += u;
		at = at - sent < c->jitter_ns ? sent : at - c->jitter_ns;
		if (!c->jitter_reorder && at < dir->last_at)
			at = dir->last_at;
	}
	if (c->reorder && le_rng_chance(&dir->rng_reorder, c->reorder)) {
		out->reordered = true;
		dir->cnt.reordered++;
		at += dir->hold_ns;
	} else if (at > dir->last_at) {
		dir->last_at = at;
	}
	out->verdict = LE_DELIVER;
	out->at_ns = at;
	dir->cnt.delivered++;
	if (c->dup && le_rng_chance(&dir->rng_dup, c->dup)) {
		out->dup = true;
		out->dup_at_ns = at;
		dir->cnt.duplicated++;
	}
}
