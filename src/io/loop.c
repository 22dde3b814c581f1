#include "io/loop.h"

#include <string.h>

#include "util/err.h"

/* Run the deferred functions queued so far. Work deferred by those functions
 * goes onto a fresh list and waits for the next iteration, so a function that
 * keeps deferring itself cannot starve I/O. */
static void drain(struct wn_loop *loop)
{
	struct wn_deferred *node = loop->head, *next;
	void (*fn)(struct wn_deferred *);

	loop->head = NULL;
	loop->tailp = &loop->head;
	while (node) {
		/* Read everything needed from node before fn, which may free
		 * it; clear it first so fn may defer it again. */
		next = node->next;
		fn = node->fn;
		node->next = NULL;
		node->fn = NULL;
		fn(node);
		node = next;
	}
	/* With nothing pending, let the loop block in poll again. */
	if (!loop->head)
		uv_idle_stop(&loop->idle);
}

static void on_check(uv_check_t *check)
{
	drain(check->data);
}

static void on_idle(uv_idle_t *idle)
{
	/* Nothing to do: an active idle handle only makes poll not block, so
	 * that the check phase (and the deferred work) comes right away. */
}

int wn_loop_init(struct wn_loop *loop)
{
	int rc;

	memset(loop, 0, sizeof(*loop));
	loop->tailp = &loop->head;
	rc = uv_loop_init(&loop->uv);
	if (rc < 0)
		return wn_err_from_uv(rc);
	/* Neither init nor start can fail for check and idle handles on an
	 * open loop (libuv only checks for a closing handle). */
	uv_check_init(&loop->uv, &loop->check);
	uv_idle_init(&loop->uv, &loop->idle);
	loop->check.data = loop;
	loop->idle.data = loop;
	uv_check_start(&loop->check, on_check);
	/* The check handle is always there; it must not keep the loop alive. */
	uv_unref((uv_handle_t *)&loop->check);
	return 0;
}

bool wn_loop_run(struct wn_loop *loop)
{
	return uv_run(&loop->uv, UV_RUN_DEFAULT) != 0;
}

void wn_loop_stop(struct wn_loop *loop)
{
	uv_stop(&loop->uv);
}

struct walk_ctx {
	struct wn_loop *loop;
	int closed;
};

static void close_stray(uv_handle_t *h, void *arg)
{
	struct walk_ctx *ctx = arg;

	if (h == (uv_handle_t *)&ctx->loop->check ||
	    h == (uv_handle_t *)&ctx->loop->idle || uv_is_closing(h))
		return;
	uv_close(h, NULL);
	ctx->closed++;
}

int wn_loop_close(struct wn_loop *loop)
{
	struct walk_ctx ctx = {loop, 0};
	int before, rc;

	/* Deferred work first, so that owners close their handles properly
	 * (with close callbacks that free them) before the sweep below. Then
	 * repeat until a sweep finds nothing, because close callbacks and
	 * deferred functions may defer, close or even open more. */
	do {
		while (loop->head)
			drain(loop);
		before = ctx.closed;
		uv_walk(&loop->uv, close_stray, &ctx);
		uv_run(&loop->uv, UV_RUN_DEFAULT);
	} while (loop->head || ctx.closed != before ||
	         uv_loop_alive(&loop->uv));

	uv_close((uv_handle_t *)&loop->check, NULL);
	uv_close((uv_handle_t *)&loop->idle, NULL);
	uv_run(&loop->uv, UV_RUN_DEFAULT);
	rc = uv_loop_close(&loop->uv);
	if (rc < 0)
		return wn_err_from_uv(rc);
	return ctx.closed;
}

uv_loop_t *wn_loop_uv(struct wn_loop *loop)
{
	return &loop->uv;
}

uint64_t wn_loop_now_ms(const struct wn_loop *loop)
{
	return uv_now(&loop->uv);
}

void wn_loop_update_time(struct wn_loop *loop)
{
	uv_update_time(&loop->uv);
}

uint64_t wn_mono_ns(void)
{
	return uv_hrtime();
}

uint64_t wn_wall_ms(void)
{
	uv_timeval64_t tv;
	if (uv_gettimeofday(&tv) != 0)
		return 0;
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

bool wn_loop_has_deferred(const struct wn_loop *loop)
{
	return loop->head != NULL;
}

void wn_deferred_init(struct wn_deferred *node)
{
	node->next = NULL;
	node->fn = NULL;
}

bool wn_deferred_pending(const struct wn_deferred *node)
{
	return node->fn != NULL;
}

void wn_loop_defer(struct wn_loop *loop, struct wn_deferred *node,
                   void (*fn)(struct wn_deferred *node))
{
	if (node->fn)
		return;
	node->fn = fn;
	node->next = NULL;
	if (!loop->head)
		uv_idle_start(&loop->idle, on_idle);
	*loop->tailp = node;
	loop->tailp = &node->next;
}

static void on_timer(uv_timer_t *h)
{
	struct wn_timer *t = h->data;

	t->cb(t);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct wn_timer *t = h->data;

	if (t->closed)
		t->closed(t);
}

int wn_timer_init(struct wn_loop *loop, struct wn_timer *t,
                  void (*cb)(struct wn_timer *t))
{
	int rc;

	memset(t, 0, sizeof(*t));
	rc = uv_timer_init(&loop->uv, &t->uv);
	if (rc < 0)
		return wn_err_from_uv(rc);
	t->uv.data = t;
	t->cb = cb;
	return 0;
}

int wn_timer_start(struct wn_timer *t, uint64_t after_ms, uint64_t repeat_ms)
{
	return wn_err_from_uv(
	    uv_timer_start(&t->uv, on_timer, after_ms, repeat_ms));
}

void wn_timer_stop(struct wn_timer *t)
{
	uv_timer_stop(&t->uv);
}

void wn_timer_close(struct wn_timer *t, void (*closed)(struct wn_timer *t))
{
	t->closed = closed;
	uv_close((uv_handle_t *)&t->uv, on_timer_closed);
}
