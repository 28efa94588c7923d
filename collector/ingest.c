/*
 * ingest.c - MQTT receive and ack publish for the collector (see ingest.h).
 *
 * Threads: on_message runs on Paho's receive thread; acker_main is the
 * ingest's own thread, the only one that publishes; ingest_poll and ingest_stop
 * run on main, the only one that subscribes; ingest_queue_ack and
 * ingest_ask_retained on the writer (the latter meets main in an atomic flag,
 * which main paces: reask.h).
 */
#include "ingest.h"

#include "reask.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"
#include "sitepulse/mqtt.h"
#include "sitepulse/topic.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FILTERS[] = {"sp/v1/+/+/birth", "sp/v1/+/+/data", "sp/v1/+/+/state"};
/* the filters of the retained messages (ingest_ask_retained): births and states */
static const char *const RETAINED_FILTERS[] = {"sp/v1/+/+/birth", "sp/v1/+/+/state"};

#define ACK_OUTBOX 4096      /* acks handed over by the writer, not yet published */
#define ACK_DRAIN_MS 1000    /* on stop: how long the acker tries to say what is left */
#define ACK_BUSY_MS 5        /* in-flight window full: the acker tries again this soon */
/*
 * No connection, or a new one not yet subscribed: the acker tries again this
 * soon. Main subscribes within its 100 ms poll of the connect, so 20 ms adds
 * little to the first ack; and 50 wake-ups a second of an outage cost nothing.
 */
#define ACK_DOWN_MS 20
/*
 * On stop, how long (plus a second) we wait for the disconnect to complete;
 * what arrives until then is stored. Our acks still in flight are not waited
 * for: every ack is published again at the next start.
 */
#define STOP_DISCONNECT_MS 300
/*
 * The collector tries the broker again at least this often (ms, +-25 %). After a
 * (re)connect an agent waits up to its ack_wait_s (3 s by default) for our
 * ack before it publishes; a broker restarted without persistence has no
 * session of ours, so what the agent publishes before we are subscribed
 * again reaches nobody and comes back later behind newer messages, where
 * it moves no alert rule (docs/alerts.md, late data). Doubling up to the
 * fleet's 30 s we came back 5 s after a 2 s broker restart (the soak test
 * found it); now within ~1.5 s (test_reorder). One client retrying twice a
 * second costs a broker nothing.
 */
#define RECONNECT_MAX_MS 500

struct ack_item {
	char site[SP_ID_MAX + 1];
	char agent[SP_ID_MAX + 1];
	int64_t seq;
};

struct ingest {
	struct sp_mqtt *mqtt;
	struct queue *queue;
	struct metrics *metrics;
	_Atomic uint64_t subscribed_epoch; /* written by main, read by the acker */
	/* set by the writer (ingest_ask_retained), taken by main (ingest_poll) */
	atomic_bool retained_asked;
	struct reask reask;          /* main thread: the pace of the re-asks */
	int64_t reask_interval_s;    /* [store] reask_interval_s, for the log line */
	_Atomic uint64_t reasks;     /* re-asks made: written by main, read by the writer */
	/* Paho thread: rate limits for oversized-message and lost-message logs */
	struct sp_ratelimit oversize_log, lost_log;

	/*
	 * The ack outbox, between the writer (producer) and the acker thread.
	 * The writer must never call into Paho itself: Paho may hold its own
	 * lock while our message callback waits for room in the ingest queue,
	 * and only the writer makes that room.
	 */
	pthread_mutex_t ack_lock;
	pthread_cond_t ack_cond;
	struct ack_item *outbox;
	size_t ack_head, ack_count;
	bool ack_stop;
	pthread_t acker;
	bool acker_started;
	struct sp_buf ack;       /* acker thread: payload scratch */
};

static void *acker_main(void *arg);

/* Paho receive thread: copy and enqueue, nothing more. */
static void on_message(void *ctx, const char *topic, size_t topic_len, const void *payload,
		       size_t len)
{
	struct ingest *in = ctx;
	int64_t now = sp_now_ms();
	atomic_fetch_add(&in->metrics->messages_received, 1);
	/*
	 * A data message over the limit goes on all the same, up to
	 * SP_PAYLOAD_PEEK_MAX: the parser refuses it too_large but reads its seq,
	 * so that it counts as handled for the ack (codec.h, sp_decode_data).
	 */
	struct sp_topic t;
	bool peek = len > SP_PAYLOAD_MAX && len <= SP_PAYLOAD_PEEK_MAX &&
		    topic_len < SP_TOPIC_MAX * 4 && sp_topic_parse(topic, topic_len, &t) == 0 &&
		    t.kind == SP_TOPIC_DATA;
	int rc = SP_ETOOBIG;
	if ((len <= SP_PAYLOAD_MAX && topic_len < SP_TOPIC_MAX * 4) || peek) {
		/*
		 * Paho acknowledged it to the broker already (mqtt.h): from here on
		 * it is ours to keep. ingest_stop stops the deliveries before the
		 * queue closes, so a closed queue here would be a bug in that order.
		 * SP_ETOOBIG cannot come: main.c sizes the queue for every payload up
		 * to SP_PAYLOAD_PEEK_MAX (queue_cap_for); were it to, the message is
		 * counted too_large below.
		 */
		rc = queue_push(in->queue, topic, topic_len, payload, len, now);
	}
	if (rc == SP_ETOOBIG) {
		/* never copied: counted and logged (rate-limited) here */
		uint64_t suppressed;
		atomic_fetch_add(&in->metrics->messages_rejected[SP_REJ_TOO_LARGE], 1);
		if (sp_ratelimit_allow(&in->oversize_log, sp_mono_ms(), 5, 10000, &suppressed))
			SP_WARN("ingest", "rejected %zu-byte message on %.*s: too_large (limit %d)%s",
				len, (int)(topic_len > 200 ? 200 : topic_len), topic, SP_PAYLOAD_MAX,
				suppressed ? " (similar messages were suppressed)" : "");
		return;
	}
	if (rc == SP_ECLOSED) {
		uint64_t suppressed;
		if (sp_ratelimit_allow(&in->lost_log, sp_mono_ms(), 1, 10000, &suppressed))
			SP_ERROR("ingest", "message on %.*s arrived after the ingest queue closed: "
					   "lost (an agent resends its data)%s",
				 (int)(topic_len > 200 ? 200 : topic_len), topic,
				 suppressed ? " (similar messages were suppressed)" : "");
	}
}

struct ingest *ingest_create(const struct collector_conf *conf, struct queue *q,
			     struct metrics *m)
{
	struct ingest *in = calloc(1, sizeof(*in));
	if (in == NULL)
		return NULL;
	in->queue = q;
	in->metrics = m;
	in->ack.limit = 256;
	in->reask_interval_s = conf->store.reask_interval_s;
	reask_init(&in->reask, in->reask_interval_s * 1000);
	pthread_mutex_init(&in->ack_lock, NULL);
	pthread_cond_init(&in->ack_cond, NULL);
	in->outbox = calloc(ACK_OUTBOX, sizeof(*in->outbox));
	if (in->outbox == NULL) {
		ingest_destroy(in);
		return NULL;
	}
	struct sp_mqtt_params p = {
		.uri = conf->mqtt.uri,
		.client_id = conf->mqtt.client_id,
		.username = conf->mqtt.username,
		.password = conf->mqtt.password,
		.ca_file = conf->mqtt.ca_file,
		.cert_file = conf->mqtt.cert_file,
		.key_file = conf->mqtt.key_file,
		.tls_insecure = conf->mqtt.tls_insecure,
		.keepalive_s = (int)conf->mqtt.keepalive_s,
		/* persistent session: what arrives while we are away waits in the broker */
		.clean_session = false,
		.max_inflight = (int)conf->mqtt.max_inflight,
		.backoff_max_ms = RECONNECT_MAX_MS,
	};
	struct sp_mqtt_callbacks cb = {in, on_message, NULL, NULL};
	in->mqtt = sp_mqtt_create(&p, &cb);
	if (in->mqtt == NULL) {
		ingest_destroy(in);
		return NULL;
	}
	if (pthread_create(&in->acker, NULL, acker_main, in) != 0) {
		ingest_destroy(in);
		return NULL;
	}
	in->acker_started = true;
	(void)pthread_setname_np(in->acker, "sp-acker"); /* for top -H, perf, gdb */
	return in;
}

/* Subscribes to n filters (QoS 1); 0 if every request went out. Main thread. */
static int subscribe(struct ingest *in, const char *const *filters, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n; i++)
		rc |= sp_mqtt_subscribe(in->mqtt, filters[i], 1);
	return rc;
}

/*
 * The writer's request for the retained births and states (main thread): at
 * most one re-ask per [store] reask_interval_s, a request within it carried out at
 * its end (reask.h: a flapping store would have the broker resend the whole
 * fleet's at every recovery).
 */
static void poll_reask(struct ingest *in)
{
	int64_t now = sp_mono_ms();
	switch (reask_step(&in->reask, atomic_exchange(&in->retained_asked, false), now)) {
	case REASK_IDLE:
	case REASK_WAIT:
		return;
	case REASK_DEFER:
		atomic_fetch_add(&in->metrics->retained_deferred, 1);
		SP_INFO("ingest", "asked for the retained births and states again: the broker resends "
				  "them in %lld s (at most once every %lld s)",
			(long long)((reask_due_ms(&in->reask) - now + 999) / 1000),
			(long long)in->reask_interval_s);
		return;
	case REASK_GO:
		break;
	}
	size_t n = sizeof(RETAINED_FILTERS) / sizeof(RETAINED_FILTERS[0]);
	if (subscribe(in, RETAINED_FILTERS, n))
		return; /* still waiting: asked again at the next poll (mqtt.c logged why not now) */
	reask_done(&in->reask, now);
	atomic_fetch_add(&in->reasks, 1);
	atomic_fetch_add(&in->metrics->retained_asked, 1);
	SP_INFO("ingest", "subscribed to sp/v1/+/+/{birth,state} again: the broker resends "
			  "their retained messages");
}

void ingest_poll(struct ingest *in)
{
	sp_mqtt_poll(in->mqtt);
	bool up = sp_mqtt_connected(in->mqtt);
	atomic_store(&in->metrics->mqtt_connected, up);
	uint64_t epoch = sp_mqtt_epoch(in->mqtt);
	if (!up) {
		atomic_store(&in->metrics->subscribed_mono, 0);
		return;
	}
	if (epoch != atomic_load(&in->subscribed_epoch)) {
		/*
		 * The session keeps subscriptions, but a broker without persistence
		 * forgets them. These subscriptions bring every retained birth and
		 * state too: a request of the writer's made before this point is
		 * answered by them (one made after it stays set for the next poll).
		 */
		atomic_store(&in->retained_asked, false);
		reask_answered(&in->reask);
		if (subscribe(in, FILTERS, sizeof(FILTERS) / sizeof(FILTERS[0])) == 0) {
			atomic_store(&in->subscribed_epoch, epoch);
			atomic_store(&in->metrics->subscribed_mono, sp_mono_ms());
			SP_INFO("ingest", "subscribed to sp/v1/+/+/{birth,data,state}");
		}
		return;
	}
	poll_reask(in);
}

void ingest_ask_retained(struct ingest *in)
{
	atomic_store(&in->retained_asked, true);
}

uint64_t ingest_reasks(const struct ingest *in)
{
	return atomic_load(&((struct ingest *)in)->reasks);
}

void ingest_stop(struct ingest *in)
{
	if (in == NULL)
		return;
	sp_mqtt_disconnect(in->mqtt, STOP_DISCONNECT_MS);
	atomic_store(&in->metrics->mqtt_connected, false);
	atomic_store(&in->metrics->subscribed_mono, 0);
	SP_INFO("ingest", "disconnected: what the broker still holds waits in our session");
}

bool ingest_connected(const struct ingest *in)
{
	return sp_mqtt_connected(in->mqtt);
}

uint64_t ingest_epoch(const struct ingest *in)
{
	return sp_mqtt_epoch(in->mqtt);
}

int ingest_queue_ack(struct ingest *in, const char *site, const char *agent, int64_t seq)
{
	pthread_mutex_lock(&in->ack_lock);
	if (in->ack_count >= ACK_OUTBOX) {
		pthread_mutex_unlock(&in->ack_lock);
		return SP_EFULL;
	}
	struct ack_item *it = &in->outbox[(in->ack_head + in->ack_count) % ACK_OUTBOX];
	snprintf(it->site, sizeof(it->site), "%s", site);
	snprintf(it->agent, sizeof(it->agent), "%s", agent);
	it->seq = seq;
	in->ack_count++;
	pthread_cond_signal(&in->ack_cond);
	pthread_mutex_unlock(&in->ack_lock);
	return 0;
}

size_t ingest_acks_waiting(struct ingest *in)
{
	pthread_mutex_lock(&in->ack_lock);
	size_t n = in->ack_count;
	pthread_mutex_unlock(&in->ack_lock);
	return n;
}

/*
 * Publishes one ack (acker thread). 0, SP_ECONN (no connection), SP_EBUSY
 * (in-flight window full, or not yet subscribed on this connection), SP_EIO.
 */
static int publish_ack(struct ingest *in, const struct ack_item *it)
{
	/*
	 * Not on a new connection before our subscriptions: an agent that
	 * reconnected takes the ack as a sign that we listen and publishes its
	 * spool (agent.c, may_publish); what it sent before the broker had our
	 * subscriptions would reach nobody (a broker restarted without
	 * persistence forgot them), come again later behind newer messages, and
	 * move no alert rule. One client's packets are handled in order, so an
	 * ack sent after the SUBSCRIBE comes after the subscriptions. No
	 * connection ends the attempt here: going on to sp_mqtt_publish, a
	 * connect completing in between would let an ack of the outage through
	 * ahead of the subscriptions. (A connection lost and another made between
	 * these loads would take the reconnect backoff, 375 ms at least.)
	 */
	if (!sp_mqtt_connected(in->mqtt))
		return SP_ECONN;
	if (atomic_load(&in->subscribed_epoch) != sp_mqtt_epoch(in->mqtt))
		return SP_EBUSY;
	char topic[SP_TOPIC_MAX];
	if (sp_topic_format(topic, sizeof(topic), it->site, it->agent, SP_TOPIC_ACK))
		return SP_EINVAL;
	sp_buf_reset(&in->ack);
	if (sp_encode_ack(&in->ack, it->seq, sp_now_ms()))
		return SP_ENOMEM;
	int rc = sp_mqtt_publish(in->mqtt, topic, in->ack.data, in->ack.len, 1, true);
	if (rc == 0)
		atomic_fetch_add(&in->metrics->acks_published, 1);
	return rc;
}

/*
 * The acker thread: publishes the outbox in order. A full in-flight window,
 * no connection, or a new connection not yet subscribed all mean wait and
 * retry: what the writer handed over waits in the outbox for the connection
 * to come back (bounded: once full the writer keeps the acks, seqtrack.h).
 *
 * It used to drop the whole outbox when a publish found no connection,
 * since after every reconnect the writer hands over every agent's ack again
 * (seqtrack_republish_all). But between that publish and the drop the
 * connection could come back and the writer hand over the reconnect's acks:
 * the drop took them too, and the writer, having seen the reconnect, did
 * not hand them over again; each such agent waited for its next message or
 * resend. Kept instead, the acks of an outage go out after the reconnect,
 * ahead of those the writer hands over again (an agent's acks in the order
 * they advanced: the newest last). On stop (ingest_destroy after
 * ingest_stop) nothing can be published any more: the next start publishes
 * every agent's ack.
 */
static void *acker_main(void *arg)
{
	struct ingest *in = arg;
	int64_t stop_deadline = 0;
	pthread_mutex_lock(&in->ack_lock);
	for (;;) {
		while (in->ack_count == 0 && !in->ack_stop)
			pthread_cond_wait(&in->ack_cond, &in->ack_lock);
		if (sp_drain_over(in->ack_stop, ACK_DRAIN_MS, &stop_deadline) ||
		    (in->ack_stop && in->ack_count == 0))
			break;
		struct ack_item it = in->outbox[in->ack_head];
		bool stopping = in->ack_stop;
		pthread_mutex_unlock(&in->ack_lock);
		int rc = publish_ack(in, &it);
		if (rc == SP_EBUSY)
			sp_sleep_ms(ACK_BUSY_MS);
		else if (rc == SP_ECONN && !stopping)
			sp_sleep_ms(ACK_DOWN_MS);
		pthread_mutex_lock(&in->ack_lock);
		if (rc == SP_ECONN && stopping)
			break; /* disconnected for good (ingest_stop): the rest goes at the next start */
		if (rc == SP_EBUSY || rc == SP_ECONN)
			continue;
		/* sent, or unsendable (bad ids cannot happen: they were validated) */
		in->ack_head = (in->ack_head + 1) % ACK_OUTBOX;
		in->ack_count--;
	}
	pthread_mutex_unlock(&in->ack_lock);
	return NULL;
}

void ingest_destroy(struct ingest *in)
{
	if (in == NULL)
		return;
	if (in->acker_started) {
		pthread_mutex_lock(&in->ack_lock);
		in->ack_stop = true;
		pthread_cond_signal(&in->ack_cond);
		pthread_mutex_unlock(&in->ack_lock);
		pthread_join(in->acker, NULL);
	}
	sp_mqtt_destroy(in->mqtt, 2000);
	sp_buf_free(&in->ack);
	free(in->outbox);
	pthread_cond_destroy(&in->ack_cond);
	pthread_mutex_destroy(&in->ack_lock);
	free(in);
}
