/*
 * test_queue.c - the byte ring between the MQTT receive thread and the
 * writer: FIFO order and exact contents, wrap-around, the size limit,
 * blocking when full (a producer and a consumer thread), close, and the
 * peek timeout, also when the wall clock steps.
 */
#include "harness.h"

#include "queue.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/*
 * The wall clock as this program sees it, shifted by wall_shift_s: this
 * definition of clock_gettime takes the place of the C library's for the
 * code linked into the test (queue.c, sitepulse/clock.c), so a test can
 * step the wall clock without touching the system's. Every other clock
 * reads true.
 */
static volatile time_t wall_shift_s;

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int rc = (int)syscall(SYS_clock_gettime, id, ts);
	if (rc == 0 && id == CLOCK_REALTIME)
		ts->tv_sec += wall_shift_s;
	return rc;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

/* xorshift64*: the same seed gives the producer and the consumer the same sizes. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Message n: topic "t/<n>", payload of len bytes, starting with n (8 bytes) then a pattern. */
static size_t make_topic(char *topic, size_t size, uint64_t n)
{
	return (size_t)snprintf(topic, size, "t/%llu", (unsigned long long)n);
}

static void make_payload(unsigned char *p, size_t len, uint64_t n)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(n * 131 + i * 7 + (i >> 8));
	for (size_t i = 0; i < 8 && i < len; i++)
		p[i] = (unsigned char)(n >> (8 * i));
}

/* True if m is exactly message n with a payload of len bytes. */
static bool is_msg(const struct queue_msg *m, uint64_t n, size_t len)
{
	char topic[32];
	unsigned char want[4096];
	size_t tl = make_topic(topic, sizeof(topic), n);
	if (len > sizeof(want) || m->topic_len != tl || strcmp(m->topic, topic) != 0 ||
	    m->payload_len != len || m->received_ms != (int64_t)n)
		return false;
	make_payload(want, len, n);
	return memcmp(m->payload, want, len) == 0;
}

static int push_msg(struct queue *q, uint64_t n, size_t len)
{
	char topic[32];
	unsigned char payload[4096];
	size_t tl = make_topic(topic, sizeof(topic), n);
	make_payload(payload, len, n);
	return queue_push(q, topic, tl, payload, len, (int64_t)n);
}

/* ---------------------------------------------------------------- single thread */

static void test_fifo_exact_contents(void)
{
	struct queue *q = queue_create(64 * 1024, "test", "the producer");
	CHECK(q != NULL);
	/* binary payload with NULs, and an empty one */
	const char bin[5] = {'a', '\0', 'b', '\0', 'c'};
	CHECK_EQ_INT(queue_push(q, "sp/v1/s/a/data", 14, "{\"v\":1}", 7, 111), 0);
	CHECK_EQ_INT(queue_push(q, "sp/v1/s/a/birth", 15, bin, sizeof(bin), 222), 0);
	CHECK_EQ_INT(queue_push(q, "x", 1, "", 0, 333), 0);

	struct queue_stats st;
	queue_get_stats(q, &st);
	CHECK_EQ_INT(st.depth, 3);
	CHECK_EQ_INT(st.pushed, 3);
	CHECK_EQ_INT(st.blocked, 0);
	CHECK(st.bytes > 0 && st.bytes <= st.cap_bytes);
	CHECK_EQ_INT(st.cap_bytes, 64 * 1024);

	struct queue_msg m[8];
	/* at most max, oldest first */
	CHECK_EQ_INT(queue_peek(q, m, 2, 0), 2);
	CHECK_EQ_STR(m[0].topic, "sp/v1/s/a/data");
	CHECK_EQ_INT(m[0].topic_len, 14);
	CHECK_EQ_INT(m[0].payload_len, 7);
	CHECK(memcmp(m[0].payload, "{\"v\":1}", 7) == 0);
	CHECK_EQ_INT(m[0].received_ms, 111);
	CHECK_EQ_STR(m[1].topic, "sp/v1/s/a/birth");
	CHECK_EQ_INT(m[1].payload_len, 5);
	CHECK(memcmp(m[1].payload, bin, 5) == 0);
	CHECK_EQ_INT(m[1].received_ms, 222);
	/* peek does not remove */
	CHECK_EQ_INT(queue_peek(q, m, 8, 0), 3);
	CHECK_EQ_STR(m[0].topic, "sp/v1/s/a/data");
	CHECK_EQ_STR(m[2].topic, "x");
	CHECK_EQ_INT(m[2].payload_len, 0);
	CHECK_EQ_INT(m[2].received_ms, 333);
	/* release frees the oldest */
	queue_release(q, 1);
	queue_get_stats(q, &st);
	CHECK_EQ_INT(st.depth, 2);
	CHECK_EQ_INT(queue_peek(q, m, 8, 0), 2);
	CHECK_EQ_STR(m[0].topic, "sp/v1/s/a/birth");
	CHECK_EQ_STR(m[1].topic, "x");
	queue_release(q, 2);
	queue_get_stats(q, &st);
	CHECK_EQ_INT(st.depth, 0);
	CHECK_EQ_INT(st.bytes, 0);
	CHECK_EQ_INT(st.pushed, 3);
	CHECK_EQ_INT(queue_peek(q, m, 8, 0), 0);
	queue_destroy(q);
	queue_destroy(NULL);
}

/* Upper bound of a message's footprint in the ring (header + topic + NUL + payload + padding). */
static size_t footprint(size_t topic_len, size_t payload_len)
{
	return 64 + topic_len + 1 + payload_len + 8;
}

static void test_wrap_around(void)
{
	enum { CAP = 1000, TOTAL = 20000, MAXLEN = 150 };
	struct queue *q = queue_create(CAP, "test", "the producer");
	CHECK(q != NULL);
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	uint64_t next_push = 0, next_check = 0;
	size_t lens[TOTAL];
	size_t live = 0, bytes_pushed = 0;
	int bad = 0, push_err = 0, order_err = 0;
	struct queue_msg m[64];
	for (int i = 0; i < TOTAL; i++)
		lens[i] = 1 + rnd(&seed) % MAXLEN;

	while (next_check < TOTAL) {
		/*
		 * Push only while at most a quarter of the ring is live (and every
		 * message is under a quarter): then a push always fits, whatever the
		 * wrap position, so a single thread never blocks.
		 */
		while (next_push < TOTAL && live <= CAP / 4) {
			char topic[32];
			size_t need = footprint(make_topic(topic, sizeof(topic), next_push), lens[next_push]);
			if (push_msg(q, next_push, lens[next_push]) != 0)
				push_err++;
			live += need;
			bytes_pushed += need;
			next_push++;
		}
		size_t n = queue_peek(q, m, 64, 0);
		if (n != next_push - next_check)
			order_err++;
		for (size_t i = 0; i < n; i++)
			bad += !is_msg(&m[i], next_check + i, lens[next_check + i]);
		/* release about half, keeping at least one so the ring never resets to empty */
		size_t rel = n > 1 ? (n + 1) / 2 : n;
		if (next_push < TOTAL && rel == n && n > 0)
			rel = n - 1;
		for (size_t i = 0; i < rel; i++) {
			char topic[32];
			uint64_t k = next_check + i;
			live -= footprint(make_topic(topic, sizeof(topic), k), lens[k]);
		}
		queue_release(q, rel);
		next_check += rel;
		if (n == 0 && next_push == TOTAL)
			break;
	}
	CHECK_EQ_INT(push_err, 0);
	CHECK_EQ_INT(order_err, 0);
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(next_check, TOTAL);
	CHECK(bytes_pushed > 100 * (size_t)CAP); /* went round the ring many times */
	struct queue_stats st;
	queue_get_stats(q, &st);
	CHECK_EQ_INT(st.depth, 0);
	CHECK_EQ_INT(st.bytes, 0);
	CHECK_EQ_INT(st.pushed, TOTAL);
	CHECK_EQ_INT(st.blocked, 0);
	queue_destroy(q);
}

/*
 * A queue that is shallow but never empty (the writer holds its batch until
 * the commit) stays near the start of its ring instead of walking the whole
 * capacity, whose pages would all stay resident. Seen through the payload
 * addresses: their span is what the ring touched.
 */
static void test_shallow_queue_stays_near_start(void)
{
	enum { CAP = 4 << 20, TOTAL = 20000, LEN = 1000, DEPTH = 32 };
	struct queue *q = queue_create(CAP, "test", "the producer");
	CHECK(q != NULL);
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	uint64_t next_push = 0, next_check = 0;
	size_t max_bytes = 0;
	int bad = 0, push_err = 0;
	struct queue_msg m[DEPTH + 1];
	while (next_check < TOTAL) {
		while (next_push < TOTAL && next_push - next_check <= DEPTH)
			push_err += push_msg(q, next_push++, LEN) != 0;
		size_t n = queue_peek(q, m, DEPTH + 1, 0);
		for (size_t i = 0; i < n; i++) {
			bad += !is_msg(&m[i], next_check + i, LEN);
			uintptr_t a = (uintptr_t)m[i].payload;
			lo = a < lo ? a : lo;
			hi = a > hi ? a : hi;
		}
		/* release half; the rest stays queued, so the ring never resets to empty */
		size_t rel = next_push < TOTAL ? n / 2 : n;
		queue_release(q, rel);
		next_check += rel;
		/* the metric of bytes in use counts messages, not the end an early wrap skipped */
		struct queue_stats mid;
		queue_get_stats(q, &mid);
		max_bytes = mid.bytes > max_bytes ? mid.bytes : max_bytes;
	}
	CHECK_EQ_INT(push_err, 0);
	CHECK_EQ_INT(bad, 0);
	/* 20 MB went through a 4 MB ring 34 KB deep: it stayed within its first megabyte */
	CHECK(hi - lo < (1u << 20));
	CHECK(max_bytes > 0 && max_bytes <= (DEPTH + 1) * footprint(8, LEN));
	struct queue_stats st;
	queue_get_stats(q, &st);
	CHECK_EQ_INT(st.depth, 0);
	CHECK_EQ_INT(st.blocked, 0);
	queue_destroy(q);
}

static void test_too_big(void)
{
	struct queue *q = queue_create(4096, "test", "the producer");
	static char payload[4096];
	/* cannot ever fit in half the ring */
	CHECK_EQ_INT(queue_push(q, "t", 1, payload, 2048, 1), SP_ETOOBIG);
	CHECK_EQ_INT(queue_push(q, "t", 1, payload, 4096, 1), SP_ETOOBIG);
	/* a message of under a quarter is fine */
	CHECK_EQ_INT(queue_push(q, "t", 1, payload, 1000, 1), 0);
	struct queue_stats st;
	queue_get_stats(q, &st);
	CHECK_EQ_INT(st.depth, 1);
	CHECK_EQ_INT(st.pushed, 1);
	queue_destroy(q);
}

static void test_peek_timeout_when_empty(void)
{
	struct queue *q = queue_create(4096, "test", "the producer");
	struct queue_msg m[4];
	int64_t t0 = mono_ms();
	CHECK_EQ_INT(queue_peek(q, m, 4, 0), 0); /* no wait */
	CHECK(mono_ms() - t0 < 1000);
	t0 = mono_ms();
	CHECK_EQ_INT(queue_peek(q, m, 4, 200), 0);
	int64_t waited = mono_ms() - t0;
	CHECK(waited >= 100);  /* it did wait (loosely) */
	CHECK(waited < 5000);  /* and came back */
	/* with a message there, no wait */
	CHECK_EQ_INT(queue_push(q, "t", 1, "p", 1, 5), 0);
	t0 = mono_ms();
	CHECK_EQ_INT(queue_peek(q, m, 4, 5000), 1);
	CHECK(mono_ms() - t0 < 1000);
	queue_destroy(q);
}

struct closer {
	struct queue *q;
	int after_ms;
};

static void *close_later(void *arg)
{
	struct closer *c = arg;
	sleep_ms(c->after_ms);
	queue_close(c->q);
	return NULL;
}

/*
 * An idle consumer's wait is measured on the monotonic clock: with the wall
 * clock an hour ahead of where it was when the deadline was taken (as after
 * a backward step of an hour, seen from the deadline), a 100 ms peek still
 * comes back after about 100 ms. On the wall clock it would sleep for the
 * hour; here a closer thread ends that wait after 2 s so the test fails
 * instead of hanging.
 */
static void test_peek_timeout_ignores_wall_clock_steps(void)
{
	struct queue *q = queue_create(4096, "test", "the producer");
	struct queue_msg m[4];
	struct closer c = {q, 2000};
	pthread_t t;
	CHECK_EQ_INT(pthread_create(&t, NULL, close_later, &c), 0);
	wall_shift_s = 3600; /* the deadline read later than the kernel's wall clock says */
	int64_t t0 = mono_ms();
	CHECK_EQ_INT(queue_peek(q, m, 4, 100), 0);
	int64_t waited = mono_ms() - t0;
	CHECK(waited >= 90);
	CHECK(waited < 1500);
	wall_shift_s = -3600; /* and the other way: a deadline already an hour past */
	t0 = mono_ms();
	CHECK_EQ_INT(queue_peek(q, m, 4, 200), 0);
	waited = mono_ms() - t0;
	CHECK(waited >= 150); /* still waited its 200 ms */
	CHECK(waited < 1500);
	wall_shift_s = 0;
	pthread_join(t, NULL);
	queue_destroy(q);
}

/* ---------------------------------------------------------------- two threads */

struct flow {
	struct queue *q;
	uint64_t seed;
	uint64_t count;
	/* results */
	int push_err;
	uint64_t consumed;
	int bad;
	int last_rc;
	uint64_t pushed_ok;
};

static void *producer(void *arg)
{
	struct flow *f = arg;
	uint64_t seed = f->seed;
	for (uint64_t n = 0; n < f->count; n++) {
		size_t len = 1 + rnd(&seed) % 3000;
		int rc = push_msg(f->q, n, len);
		if (rc != 0) {
			f->last_rc = rc;
			f->push_err++;
			break;
		}
		f->pushed_ok++;
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct flow *f = arg;
	uint64_t seed = f->seed;
	struct queue_msg m[50];
	struct queue_stats st;
	/* let the producer fill the ring first, so that it has to block (bounded wait) */
	int64_t deadline = mono_ms() + 5000;
	do {
		queue_get_stats(f->q, &st);
		if (st.blocked > 0)
			break;
		sleep_ms(1);
	} while (mono_ms() < deadline);
	deadline = mono_ms() + 15000;
	while (f->consumed < f->count && mono_ms() < deadline) {
		size_t n = queue_peek(f->q, m, 50, 100);
		for (size_t i = 0; i < n; i++) {
			size_t len = 1 + rnd(&seed) % 3000;
			if (!is_msg(&m[i], f->consumed + i, len) && f->bad++ < 5)
				fprintf(stderr, "  message %llu differs\n",
					(unsigned long long)(f->consumed + i));
		}
		queue_release(f->q, n);
		f->consumed += n;
	}
	return NULL;
}

static void test_blocking_producer_consumer(void)
{
	struct flow f = {.q = queue_create(64 * 1024, "test", "the producer"), .seed = 12345, .count = 200000};
	pthread_t pt, ct;
	CHECK(pthread_create(&pt, NULL, producer, &f) == 0);
	CHECK(pthread_create(&ct, NULL, consumer, &f) == 0);
	pthread_join(ct, NULL);
	if (f.consumed < f.count)
		queue_close(f.q); /* the consumer gave up: unblock the producer */
	pthread_join(pt, NULL);
	CHECK_EQ_INT(f.push_err, 0);
	CHECK_EQ_INT(f.consumed, f.count);
	CHECK_EQ_INT(f.bad, 0);
	struct queue_stats st;
	queue_get_stats(f.q, &st);
	CHECK(st.blocked > 0);
	CHECK_EQ_INT(st.pushed, f.count);
	CHECK_EQ_INT(st.depth, 0);
	CHECK_EQ_INT(st.bytes, 0);
	queue_destroy(f.q);
}

static void test_close_wakes_blocked_producer(void)
{
	struct flow f = {.q = queue_create(16 * 1024, "test", "the producer"), .seed = 777, .count = 1000000};
	pthread_t pt;
	CHECK(pthread_create(&pt, NULL, producer, &f) == 0);
	/* wait (bounded) until the producer is blocked on a full ring */
	struct queue_stats st;
	int64_t deadline = mono_ms() + 5000;
	do {
		queue_get_stats(f.q, &st);
		if (st.blocked > 0)
			break;
		sleep_ms(1);
	} while (mono_ms() < deadline);
	CHECK(st.blocked > 0);
	queue_close(f.q);
	pthread_join(pt, NULL);
	CHECK_EQ_INT(f.push_err, 1);
	CHECK_EQ_INT(f.last_rc, SP_ECLOSED);
	CHECK(f.pushed_ok > 0 && f.pushed_ok < f.count);

	/* later pushes fail */
	CHECK_EQ_INT(queue_push(f.q, "t", 1, "x", 1, 0), SP_ECLOSED);

	/* peeks drain what is left, in order, then return 0 at once */
	uint64_t seed = f.seed, got = 0;
	int bad = 0;
	struct queue_msg m[16];
	for (int rounds = 0; rounds < 10000; rounds++) {
		size_t n = queue_peek(f.q, m, 16, 1000);
		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++) {
			size_t len = 1 + rnd(&seed) % 3000;
			bad += !is_msg(&m[i], got + i, len);
		}
		queue_release(f.q, n);
		got += n;
	}
	CHECK_EQ_INT(got, f.pushed_ok);
	CHECK_EQ_INT(bad, 0);
	int64_t t0 = mono_ms();
	CHECK_EQ_INT(queue_peek(f.q, m, 16, 3000), 0);
	CHECK(mono_ms() - t0 < 1000); /* closed and empty: no waiting */
	queue_destroy(f.q);
}

int main(void)
{
	sp_log_set_level(SP_LOG_WARN); /* the queue logs each blocking episode at INFO */
	RUN(test_fifo_exact_contents);
	RUN(test_wrap_around);
	RUN(test_shallow_queue_stays_near_start);
	RUN(test_too_big);
	RUN(test_peek_timeout_when_empty);
	RUN(test_peek_timeout_ignores_wall_clock_steps);
	RUN(test_blocking_producer_consumer);
	RUN(test_close_wakes_blocked_producer);
	HARNESS_EXIT();
}
