/*
 * test_ingest.c - the ingest's ack side (its acker thread and outbox) across
 * a reconnect, against a fake of the MQTT wrapper (the sp_mqtt_* functions
 * below stand in for mqtt/mqtt.c; ingest.c is compiled in).
 *
 * test_reconnect_in_the_window: a publish finds the connection gone (Paho
 * already knows, so sp_mqtt_publish says SP_ECONN while `connected` is still
 * true), and before the acker takes its lock again the connection comes back
 * and the writer, seeing the new epoch, hands over its acks again (here: one).
 * The old acker then dropped its whole outbox on that SP_ECONN, the
 * reconnect's ack with it, and the writer does not hand it over again: its
 * agent waited for its next message or resend. Now it is published once
 * ingest_poll has subscribed on the new connection.
 *
 * test_outage_acks_kept: acks handed over during an outage are published
 * after the reconnect, only once the subscriptions of the new connection are
 * requested (the old acker dropped them and relied on the writer handing them
 * over again). test_stop_prompt: after ingest_stop what waits is given up
 * at once, not after the 1 s drain.
 */
#include "harness.h"

#include "ingest.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/mqtt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* ---------------------------------------------------------------- the fake wrapper */

#define MAX_PUBS 64

struct pub {
	char topic[128];
	int64_t seq;
	uint64_t epoch;
	bool subscribed; /* the ingest had subscribed on this connection before it */
};

static pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool fk_up;        /* what sp_mqtt_connected says */
static atomic_bool fk_paho_down; /* Paho knows the connection is gone: publishes fail */
static _Atomic uint64_t fk_epoch;
/* guarded by fk_lock */
static int fk_subs_on_epoch;     /* subscriptions requested on the current connection */
static struct pub fk_pubs[MAX_PUBS];
static int fk_npubs;
static int fk_econn;             /* publishes refused for no connection */
/* run once, on the acker's thread, when a publish is refused for no connection */
static void (*_Atomic fk_after_econn)(void);

static struct ingest *the_ingest;

struct sp_mqtt {
	int unused;
};
static struct sp_mqtt fk_client;

struct sp_mqtt *sp_mqtt_create(const struct sp_mqtt_params *p, const struct sp_mqtt_callbacks *cb)
{
	(void)p, (void)cb;
	return &fk_client;
}

void sp_mqtt_disconnect(struct sp_mqtt *m, int timeout_ms)
{
	(void)m, (void)timeout_ms;
	atomic_store(&fk_up, false);
	atomic_store(&fk_paho_down, true);
}

void sp_mqtt_destroy(struct sp_mqtt *m, int timeout_ms)
{
	sp_mqtt_disconnect(m, timeout_ms);
}

void sp_mqtt_poll(struct sp_mqtt *m)
{
	(void)m;
}

bool sp_mqtt_connected(const struct sp_mqtt *m)
{
	(void)m;
	return atomic_load(&fk_up);
}

uint64_t sp_mqtt_epoch(const struct sp_mqtt *m)
{
	(void)m;
	return atomic_load(&fk_epoch);
}

int sp_mqtt_subscribe(struct sp_mqtt *m, const char *filter, int qos)
{
	(void)m, (void)filter, (void)qos;
	if (atomic_load(&fk_paho_down))
		return SP_ECONN;
	pthread_mutex_lock(&fk_lock);
	fk_subs_on_epoch++;
	pthread_mutex_unlock(&fk_lock);
	return 0;
}

int sp_mqtt_publish(struct sp_mqtt *m, const char *topic, const void *payload, size_t len,
		    int qos, bool retain)
{
	(void)m, (void)qos, (void)retain;
	if (atomic_load(&fk_paho_down)) {
		pthread_mutex_lock(&fk_lock);
		fk_econn++;
		pthread_mutex_unlock(&fk_lock);
		void (*hook)(void) = atomic_exchange(&fk_after_econn, NULL);
		if (hook)
			hook(); /* what other threads do before the acker takes its lock again */
		return SP_ECONN;
	}
	char text[256];
	snprintf(text, sizeof(text), "%.*s", (int)(len < 255 ? len : 255), (const char *)payload);
	const char *s = strstr(text, "\"seq\":");
	pthread_mutex_lock(&fk_lock);
	if (fk_npubs < MAX_PUBS) {
		struct pub *p = &fk_pubs[fk_npubs++];
		snprintf(p->topic, sizeof(p->topic), "%s", topic);
		p->seq = s ? strtoll(s + 6, NULL, 10) : -1;
		p->epoch = atomic_load(&fk_epoch);
		p->subscribed = fk_subs_on_epoch > 0;
	}
	pthread_mutex_unlock(&fk_lock);
	return 0;
}

/* The connection comes (back): a new epoch, no subscription on it yet. */
static void fk_connect(void)
{
	pthread_mutex_lock(&fk_lock);
	fk_subs_on_epoch = 0;
	pthread_mutex_unlock(&fk_lock);
	atomic_store(&fk_paho_down, false);
	atomic_fetch_add(&fk_epoch, 1);
	atomic_store(&fk_up, true);
}

static void fk_lose(void)
{
	atomic_store(&fk_paho_down, true);
	atomic_store(&fk_up, false);
}

static void fk_reset(void)
{
	pthread_mutex_lock(&fk_lock);
	fk_subs_on_epoch = 0;
	fk_npubs = 0;
	fk_econn = 0;
	pthread_mutex_unlock(&fk_lock);
	atomic_store(&fk_up, false);
	atomic_store(&fk_paho_down, true);
	atomic_store(&fk_epoch, 0);
	atomic_store(&fk_after_econn, NULL);
}

/* The index of the publication of seq on topic ".../AGENT/ack", or -1. */
static int fk_find(const char *agent, int64_t seq)
{
	char want[128];
	snprintf(want, sizeof(want), "sp/v1/site-1/%s/ack", agent);
	int at = -1;
	pthread_mutex_lock(&fk_lock);
	for (int i = 0; i < fk_npubs && at < 0; i++)
		if (strcmp(fk_pubs[i].topic, want) == 0 && fk_pubs[i].seq == seq)
			at = i;
	pthread_mutex_unlock(&fk_lock);
	return at;
}

static int fk_count(void)
{
	pthread_mutex_lock(&fk_lock);
	int n = fk_npubs;
	pthread_mutex_unlock(&fk_lock);
	return n;
}

static int fk_econn_count(void)
{
	pthread_mutex_lock(&fk_lock);
	int n = fk_econn;
	pthread_mutex_unlock(&fk_lock);
	return n;
}

static bool wait_published(const char *agent, int64_t seq, int ms)
{
	int64_t until = sp_mono_ms() + ms;
	while (fk_find(agent, seq) < 0) {
		if (sp_mono_ms() > until)
			return false;
		sp_sleep_ms(2);
	}
	return true;
}

static bool wait_econn(int n, int ms)
{
	int64_t until = sp_mono_ms() + ms;
	while (fk_econn_count() < n) {
		if (sp_mono_ms() > until)
			return false;
		sp_sleep_ms(1);
	}
	return true;
}

/* ---------------------------------------------------------------- the ingest under test */

static struct metrics metrics;
static struct collector_conf conf;

/* Connected and subscribed (epoch 1); one ack through as a check of the fake. */
static struct ingest *start(void)
{
	fk_reset();
	memset(&metrics, 0, sizeof(metrics));
	struct ingest *in = ingest_create(&conf, NULL, &metrics);
	CHECK(in != NULL);
	the_ingest = in;
	fk_connect();
	ingest_poll(in); /* subscribes: the acker may publish */
	CHECK_EQ_INT(ingest_queue_ack(in, "site-1", "gw-1", 10), 0);
	CHECK(wait_published("gw-1", 10, 2000));
	return in;
}

/* The hook: the connection is back and the writer hands over the reconnect's ack. */
static void reconnect_and_hand_over(void)
{
	fk_connect();
	CHECK_EQ_INT(ingest_queue_ack(the_ingest, "site-1", "gw-2", 42), 0);
}

static void test_reconnect_in_the_window(void)
{
	struct ingest *in = start();
	/* Paho has found the connection gone; our `connected` flag does not say so yet */
	atomic_store(&fk_paho_down, true);
	atomic_store(&fk_after_econn, reconnect_and_hand_over);
	CHECK_EQ_INT(ingest_queue_ack(in, "site-1", "gw-1", 11), 0);
	CHECK(wait_econn(1, 2000));
	CHECK(atomic_load(&fk_after_econn) == NULL);
	sp_sleep_ms(50); /* the acker decides, and waits for the subscriptions */
	CHECK_EQ_INT(fk_find("gw-2", 42), -1);
	ingest_poll(in); /* main: the new connection's subscriptions */
	CHECK(wait_published("gw-2", 42, 2000));
	int at = fk_find("gw-2", 42);
	if (at >= 0) {
		CHECK_EQ_INT(fk_pubs[at].epoch, 2);
		CHECK(fk_pubs[at].subscribed);
	}
	/* the ack of the outage itself goes out too (ahead of the reconnect's) */
	CHECK(wait_published("gw-1", 11, 2000));
	CHECK(fk_find("gw-1", 11) < at || at < 0);
	int64_t until = sp_mono_ms() + 1000;
	while (ingest_acks_waiting(in) > 0 && sp_mono_ms() < until)
		sp_sleep_ms(2);
	CHECK_EQ_INT(ingest_acks_waiting(in), 0);
	ingest_stop(in);
	ingest_destroy(in);
}

static void test_outage_acks_kept(void)
{
	struct ingest *in = start();
	fk_lose();
	CHECK_EQ_INT(ingest_queue_ack(in, "site-1", "gw-1", 11), 0);
	CHECK_EQ_INT(ingest_queue_ack(in, "site-1", "gw-3", 7), 0);
	CHECK_EQ_INT(ingest_queue_ack(in, "site-1", "gw-1", 12), 0);
	sp_sleep_ms(100); /* the acker finds no connection, more than once */
	ingest_poll(in);  /* down: subscribes to nothing */
	CHECK_EQ_INT(fk_count(), 1);
	fk_connect();
	sp_sleep_ms(60);  /* connected, not yet subscribed: nothing may go out */
	CHECK_EQ_INT(fk_count(), 1);
	ingest_poll(in);
	CHECK(wait_published("gw-1", 12, 2000));
	int a = fk_find("gw-1", 11), b = fk_find("gw-3", 7), c = fk_find("gw-1", 12);
	CHECK(a > 0 && b > a && c > b); /* in the order they were handed over: an agent's newest last */
	pthread_mutex_lock(&fk_lock);
	for (int i = 1; i < fk_npubs; i++) {
		CHECK_EQ_INT(fk_pubs[i].epoch, 2);
		CHECK(fk_pubs[i].subscribed);
	}
	pthread_mutex_unlock(&fk_lock);
	/* the acker counts an ack out just after the fake recorded its publish */
	int64_t until = sp_mono_ms() + 2000;
	while (ingest_acks_waiting(in) != 0 && sp_mono_ms() < until)
		sp_sleep_ms(2);
	CHECK_EQ_INT(ingest_acks_waiting(in), 0);
	ingest_stop(in);
	ingest_destroy(in);
}

static void test_stop_prompt(void)
{
	struct ingest *in = start();
	ingest_stop(in);
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(ingest_queue_ack(in, "site-1", "gw-1", 11 + i), 0);
	int64_t t0 = sp_mono_ms();
	ingest_destroy(in);
	int64_t took = sp_mono_ms() - t0;
	fprintf(stderr, "ingest_destroy with 100 acks waiting and no connection: %lld ms\n",
		(long long)took);
	CHECK(took < 500);
	CHECK_EQ_INT(fk_count(), 1);
}

int main(void)
{
	RUN(test_reconnect_in_the_window);
	RUN(test_outage_acks_kept);
	RUN(test_stop_prompt);
	HARNESS_EXIT();
}
