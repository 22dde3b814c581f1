/* rig: see rig.h. */
#include "support/rig.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "rig: %s: %s\n", what, arg);
	abort();
}

void wn_rig_init(struct wn_rig *r, const struct wn_pipetunnel_opts *po,
                 int log_fd)
{
	const char *lvl = getenv("WN_TEST_LOG");

	memset(r, 0, sizeof(*r));
	if (wn_loop_init(&r->loop) != 0)
		die("loop", "init");
	wn_log_init(&r->log, lvl ? wn_log_level_parse(lvl) : WN_LOG_WARN,
	            log_fd >= 0 ? log_fd : 2);
	if (wn_pipetunnel_new(&r->loop, po, NULL, &r->pt) != 0)
		die("pipetunnel", "new");
	snprintf(r->dir, sizeof(r->dir), "/tmp/wn-rig-XXXXXX");
	if (!mkdtemp(r->dir))
		die("mkdtemp", r->dir);
}

void wn_rig_allow(struct wn_rig *r, const char *rule)
{
	const char *why;

	if (r->n_rules == WN_RIG_MAX_RULES ||
	    wn_allow_rule_parse(rule, &r->rules[r->n_rules], &why) != 0)
		die("allow rule", rule);
	r->n_rules++;
}

void wn_rig_fixed_target(struct wn_rig *r, const char *target)
{
	const char *why;

	if (wn_endpoint_parse(target, WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                      WN_SCHEME_TCP, 0, &r->target, &why) != 0)
		die("target", target);
	r->has_target = true;
}

void wn_rig_dialer(struct wn_rig *r, const struct wn_dialer_opts *o)
{
	struct wn_dialer_opts d = {0};

	if (o)
		d = *o;
	d.allow = r->rules;
	d.n_allow = r->n_rules;
	d.target = r->has_target ? &r->target : NULL;
	if (wn_dialer_new(&r->loop, &r->log, &d, &r->dialer) != 0)
		die("dialer", "new");
	wn_pipetunnel_set_server(r->pt, wn_dialer_handler(r->dialer));
}

struct wn_forward *wn_rig_forward(struct wn_rig *r, const char *listen,
                                  const char *target, int *err)
{
	struct wn_forward_opts o = {0};
	struct wn_endpoint tgt;
	struct wn_forward *f = NULL;
	const char *why;
	char name[16];
	int rc;

	snprintf(name, sizeof(name), "fwd%d", r->nfwd);
	o.name = name;
	if (wn_endpoint_parse(listen, WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                      WN_SCHEME_TCP, WN_EP_PORT_ZERO_OK, &o.listen,
	                      &why) != 0)
		die("listen", listen);
	if (wn_endpoint_parse(target, WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                      WN_SCHEME_TCP, 0, &tgt, &why) != 0)
		die("target", target);
	o.target = &tgt;
	rc = wn_forward_open(&r->loop, &r->log, wn_pipetunnel_client(r->pt), &o,
	                     &f);
	if (err)
		*err = rc;
	else if (rc != 0)
		die("forward", wn_strerror(rc));
	if (rc == 0) {
		if (r->nfwd == WN_RIG_MAX_FORWARDS)
			die("forward", "too many");
		r->fwd[r->nfwd++] = f;
	}
	return f;
}

void wn_rig_forward_addr(struct wn_forward *f, struct sockaddr_storage *ss)
{
	if (wn_forward_sockname(f, ss) != 0)
		die("forward", "no address");
}

const char *wn_rig_path(struct wn_rig *r, const char *name, char *buf,
                        size_t cap)
{
	snprintf(buf, cap, "%s/%s", r->dir, name);
	return buf;
}

static bool streams_gone(void *arg)
{
	struct wn_rig *r = arg;

	return wn_pipetunnel_stats(r->pt)->live == 0;
}

static void remove_dir(const char *dir)
{
	char path[512];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

int wn_rig_finish(struct wn_rig *r)
{
	int i, rc;

	for (i = 0; i < r->nfwd; i++)
		wn_forward_close(r->fwd[i]);
	r->nfwd = 0;
	if (r->dialer)
		wn_dialer_close(r->dialer);
	r->dialer = NULL;
	wn_np_run_until(&r->loop, streams_gone, r, 2000);
	wn_pipetunnel_close(r->pt);
	rc = wn_loop_close(&r->loop);
	remove_dir(r->dir);
	return rc;
}
