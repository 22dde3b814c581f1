/* Tests for the loop: deferred close ordering, idempotent deferral, two loops
 * in one process, and full reclamation by wn_loop_close (run under ASan, a
 * premature free or a leak fails the test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io/loop.h"
#include "util/container.h"
#include "util/err.h"

/* An ordered record of what happened, to assert on. */
struct evlog {
	const char *ev[32];
	int n;
};

static void note(struct evlog *log, const char *ev)
{
	assert_true(log->n < 32);
	log->ev[log->n++] = ev;
}

static void expect(const struct evlog *log, const char *const *want, int n)
{
	int i;

	assert_int_equal(log->n, n);
	for (i = 0; i < n; i++)
		assert_string_equal(log->ev[i], want[i]);
}

/* A heap object following the house rule: closing it (here from inside its
 * own timer callback) only marks and defers; the deferred function closes
 * the handle; the handle's close callback frees. */
struct obj {
	struct wn_loop *loop;
	struct wn_timer timer;
	struct wn_deferred dn;
	struct evlog *log;
	int closed;
	int fired;
};

static void obj_freed(struct wn_timer *t)
{
	struct obj *o = wn_container_of(t, struct obj, timer);

	note(o->log, "freed");
	free(o);
}

static void obj_finish(struct wn_deferred *dn)
{
	struct obj *o = wn_container_of(dn, struct obj, dn);

	note(o->log, "deferred");
	wn_timer_close(&o->timer, obj_freed);
}

static void obj_close(struct obj *o)
{
	if (o->closed)
		return;
	o->closed = 1;
	note(o->log, "close");
	wn_timer_stop(&o->timer);
	wn_loop_defer(o->loop, &o->dn, obj_finish);
}

static void obj_on_timer(struct wn_timer *t)
{
	struct obj *o = wn_container_of(t, struct obj, timer);

	note(o->log, "cb-enter");
	obj_close(o);
	/* Still inside the object's own callback: the object must be alive.
	 * ASan reports a use-after-free here if close freed it. */
	o->fired++;
	obj_close(o);
	note(o->log, o->fired == 1 ? "cb-exit" : "cb-exit-bad");
}

static struct obj *obj_new(struct wn_loop *loop, struct evlog *log)
{
	struct obj *o = calloc(1, sizeof(*o));

	assert_non_null(o);
	o->loop = loop;
	o->log = log;
	assert_int_equal(wn_timer_init(loop, &o->timer, obj_on_timer), 0);
	return o;
}

/* A timer that keeps the loop alive far longer than the test may take. */
static void guard_fired(struct wn_timer *t)
{
	fail_msg("guard timer fired: the loop blocked with work pending");
}

static void self_close_freed_after_callback(void **state)
{
	static const char *const want[] = {"cb-enter", "close", "cb-exit",
	                                   "deferred", "freed"};
	struct wn_loop loop;
	struct wn_timer guard;
	struct evlog log = {0};
	struct obj *o;
	uint64_t t0;

	assert_int_equal(wn_loop_init(&loop), 0);
	o = obj_new(&loop, &log);
	assert_int_equal(wn_timer_start(&o->timer, 1, 1), 0);
	/* With the guard armed, the loop only finishes promptly if deferred
	 * work keeps poll from blocking. */
	assert_int_equal(wn_timer_init(&loop, &guard, guard_fired), 0);
	assert_int_equal(wn_timer_start(&guard, 5000, 0), 0);

	t0 = wn_mono_ns();
	while (log.n < 5 && wn_mono_ns() - t0 < UINT64_C(3000000000))
		uv_run(wn_loop_uv(&loop), UV_RUN_ONCE);
	expect(&log, want, 5);

	wn_timer_close(&guard, NULL);
	assert_int_equal(wn_loop_close(&loop), 0);
}

struct counter {
	struct wn_loop *loop;
	struct wn_deferred dn;
	struct evlog *log;
	int runs;
	int again;
};

static void count_a(struct wn_deferred *dn)
{
	struct counter *c = wn_container_of(dn, struct counter, dn);

	c->runs++;
	note(c->log, "a");
	/* No longer pending once running, so it may defer itself again; that
	 * run belongs to the next iteration. */
	assert_false(wn_deferred_pending(dn));
	if (c->again-- > 0)
		wn_loop_defer(c->loop, dn, count_a);
}

static void count_b(struct wn_deferred *dn)
{
	struct counter *c = wn_container_of(dn, struct counter, dn);

	note(c->log, "b");
}

static void defer_twice_is_noop(void **state)
{
	static const char *const want[] = {"a", "a"};
	struct wn_loop loop;
	struct evlog log = {0};
	struct counter c = {.loop = &loop, .log = &log, .again = 1};

	assert_int_equal(wn_loop_init(&loop), 0);
	wn_deferred_init(&c.dn);
	assert_false(wn_deferred_pending(&c.dn));
	wn_loop_defer(&loop, &c.dn, count_a);
	assert_true(wn_deferred_pending(&c.dn));
	/* The second deferral, even with another function, changes nothing. */
	wn_loop_defer(&loop, &c.dn, count_b);
	wn_loop_defer(&loop, &c.dn, count_a);

	/* One iteration runs it once; the re-deferral waits for the next. */
	uv_run(wn_loop_uv(&loop), UV_RUN_NOWAIT);
	assert_int_equal(c.runs, 1);
	assert_true(wn_deferred_pending(&c.dn));
	/* No handles are active: pending work alone keeps the loop alive. */
	assert_false(wn_loop_run(&loop));
	assert_int_equal(c.runs, 2);
	assert_false(wn_deferred_pending(&c.dn));
	expect(&log, want, 2);
	assert_int_equal(wn_loop_close(&loop), 0);
}

struct named {
	struct wn_deferred dn;
	struct evlog *log;
	const char *name;
};

static void say(struct wn_deferred *dn)
{
	struct named *x = wn_container_of(dn, struct named, dn);

	note(x->log, x->name);
}

static void deferred_in_order(void **state)
{
	static const char *const want[] = {"child1", "child2", "parent"};
	struct wn_loop loop;
	struct evlog log = {0};
	struct named n[3] = {
	    {.log = &log, .name = "child1"},
	    {.log = &log, .name = "child2"},
	    {.log = &log, .name = "parent"},
	};

	assert_int_equal(wn_loop_init(&loop), 0);
	wn_loop_defer(&loop, &n[0].dn, say);
	wn_loop_defer(&loop, &n[1].dn, say);
	wn_loop_defer(&loop, &n[2].dn, say);
	wn_loop_defer(&loop, &n[0].dn, say);
	assert_false(wn_loop_run(&loop));
	expect(&log, want, 3);
	assert_int_equal(wn_loop_close(&loop), 0);
}

static void two_loops_coexist(void **state)
{
	static const char *const want[] = {"cb-enter", "close", "cb-exit",
	                                   "deferred", "freed"};
	struct wn_loop a, b;
	struct evlog la = {0}, lb = {0};
	struct obj *oa, *ob;

	assert_int_equal(wn_loop_init(&a), 0);
	assert_int_equal(wn_loop_init(&b), 0);
	oa = obj_new(&a, &la);
	ob = obj_new(&b, &lb);
	assert_int_equal(wn_timer_start(&oa->timer, 0, 0), 0);
	assert_int_equal(wn_timer_start(&ob->timer, 0, 0), 0);

	/* Running one loop leaves the other untouched. */
	assert_false(wn_loop_run(&a));
	expect(&la, want, 5);
	assert_int_equal(lb.n, 0);
	assert_false(wn_loop_run(&b));
	expect(&lb, want, 5);

	assert_int_equal(wn_loop_close(&a), 0);
	/* b still works after a is gone. */
	ob = obj_new(&b, &lb);
	lb.n = 0;
	assert_int_equal(wn_timer_start(&ob->timer, 0, 0), 0);
	assert_false(wn_loop_run(&b));
	expect(&lb, want, 5);
	assert_int_equal(wn_loop_close(&b), 0);
}

/* Stops the loop from a timer callback and defers work in the same
 * callback: that iteration's deferred work must still run. */
struct stopper {
	struct wn_timer timer;
	struct wn_loop *loop;
	struct named later;
};

static void stop_from_timer(struct wn_timer *t)
{
	struct stopper *s = wn_container_of(t, struct stopper, timer);

	wn_loop_stop(s->loop);
	wn_loop_defer(s->loop, &s->later.dn, say);
}

static void stop_still_runs_deferred(void **state)
{
	static const char *const want[] = {"later"};
	struct wn_loop loop;
	struct evlog log = {0};
	struct stopper s = {.loop = &loop,
	                    .later = {.log = &log, .name = "later"}};

	assert_int_equal(wn_loop_init(&loop), 0);
	assert_int_equal(wn_timer_init(&loop, &s.timer, stop_from_timer), 0);
	assert_int_equal(wn_timer_start(&s.timer, 1, 1), 0);
	/* Stopped with the repeating timer still armed. */
	assert_true(wn_loop_run(&loop));
	expect(&log, want, 1);
	wn_timer_close(&s.timer, NULL);
	assert_int_equal(wn_loop_close(&loop), 0);
}

static void stray_cb(uv_timer_t *h)
{
	fail_msg("stray timer fired");
}

/* An object still alive when the loop closes: wn_loop_close runs its pending
 * deferral, which closes its handle, whose callback frees it. */
static void close_reclaims_everything(void **state)
{
	struct wn_loop loop;
	struct evlog log = {0};
	struct obj *o1, *o2;
	uv_timer_t stray;

	assert_int_equal(wn_loop_init(&loop), 0);
	o1 = obj_new(&loop, &log);
	o2 = obj_new(&loop, &log);
	assert_int_equal(wn_timer_start(&o1->timer, 60000, 0), 0);
	assert_int_equal(wn_timer_start(&o2->timer, 60000, 0), 0);
	obj_close(o1);
	obj_close(o2);
	assert_int_equal(wn_loop_close(&loop), 0);
	/* Both freed (ASan's leak check confirms the memory went back). */
	assert_int_equal(log.n, 6);
	assert_string_equal(log.ev[4], "freed");
	assert_string_equal(log.ev[5], "freed");

	/* A handle its owner forgot is closed and counted. */
	assert_int_equal(wn_loop_init(&loop), 0);
	assert_int_equal(uv_timer_init(wn_loop_uv(&loop), &stray), 0);
	assert_int_equal(uv_timer_start(&stray, stray_cb, 60000, 0), 0);
	uv_unref((uv_handle_t *)&stray);
	assert_int_equal(wn_loop_close(&loop), 1);
}

static void clocks_monotonic(void **state)
{
	struct wn_loop loop;
	uint64_t ms0, ns0, ns1;

	assert_int_equal(wn_loop_init(&loop), 0);
	ms0 = wn_loop_now_ms(&loop);
	ns0 = wn_mono_ns();
	ns1 = wn_mono_ns();
	assert_true(ns1 >= ns0);
	wn_loop_update_time(&loop);
	assert_true(wn_loop_now_ms(&loop) >= ms0);
	assert_int_equal(wn_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(self_close_freed_after_callback),
	    cmocka_unit_test(defer_twice_is_noop),
	    cmocka_unit_test(deferred_in_order),
	    cmocka_unit_test(two_loops_coexist),
	    cmocka_unit_test(stop_still_runs_deferred),
	    cmocka_unit_test(close_reclaims_everything),
	    cmocka_unit_test(clocks_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
