/*
 * mqtt.c - sitepulse's only user of Paho MQTT C (see sitepulse/mqtt.h).
 *
 * Connection state machine, driven by sp_mqtt_poll() on the owner thread:
 *   DOWN --(delay passed)--> CONNECTING --onSuccess--> UP --connectionLost--> DOWN
 *                                      \--onFailure--> DOWN (delay doubles, 0.5 s .. 30 s, +-25 % jitter)
 *   UP --connectionLost within 10 s of connecting--> DOWN, as after an onFailure (backoff.h)
 *   UP --sp_mqtt_disconnect--> CLOSING --disconnect done--> DOWN, and no connect after that
 *   CONNECTING --onSuccess after sp_mqtt_disconnect--> CLOSING (never UP: closed at once)
 * Paho's automatic reconnect is not used: it does not cover a failing
 * first connect, and one path for both cases is easier to reason about.
 *
 * Received messages: for QoS 1 Paho sends the PUBACK as it reads the
 * PUBLISH, before it calls messageArrived (MQTTProtocol_handlePublishes), so
 * every message handed to the callback is already gone from the broker.
 * Returning 0 from messageArrived would not give it back: Paho keeps it in
 * its own memory and calls again with it later (lost when the client is
 * destroyed). Hence the callback always takes the message, and a caller
 * that stops stops receiving first (sp_mqtt_disconnect): what the broker has
 * not handed over by then stays in its session for the next connect.
 */
#include "sitepulse/mqtt.h"

#include "backoff.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000 /* unless sp_mqtt_params.backoff_max_ms says otherwise */
#define CONNECT_TIMEOUT_S 10
/*
 * Paho's own in-flight limit is the data window plus this, so that a control
 * message (sp_mqtt_publish_control) is written at once even when the data
 * window is full: Paho sends a client's commands strictly in order, and one
 * publish waiting for room would hold back everything queued behind it.
 */
#define CONTROL_RESERVE 8
#define PAHO_INFLIGHT_MAX 65000 /* message ids are 16 bits */

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_UP, CONN_CLOSING };

struct sp_mqtt {
	MQTTAsync client;
	struct sp_mqtt_callbacks cb;
	/* copies of the parameters, alive as long as the client */
	char *uri, *client_id, *username, *password, *ca_file, *cert_file, *key_file;
	char *will_topic, *will_payload;
	bool tls, tls_insecure, clean_session;
	int keepalive_s, max_inflight;

	pthread_mutex_t lock;   /* guards state, stopped, closed, delivering, next_attempt_ms,
				   backoff, up_since_ms, failures, controls_pending,
				   controls_failed, short_log */
	pthread_cond_t changed; /* signalled when a connect or a disconnect completes */
	enum conn_state state;
	bool stopped;           /* sp_mqtt_disconnect was called: never connect again */
	bool closed;            /* sp_mqtt_disconnect returned: never deliver again */
	int delivering;         /* message callbacks running now */
	struct sp_ratelimit late_log; /* Paho's receive thread */
	int64_t next_attempt_ms;
	struct backoff backoff;
	int64_t up_since_ms;    /* mono time of the last connect (CONN_UP) */
	struct sp_ratelimit short_log; /* "lost N s after connecting" lines */
	atomic_uint_fast64_t short_lived; /* connections lost within BACKOFF_STABLE_MS */
	unsigned failures;      /* consecutive failed attempts */
	uint64_t jitter_state;
	struct sp_ratelimit fail_log;

	atomic_bool up;
	atomic_uint_fast64_t epoch;
	atomic_int inflight;
	/* control messages: published and not yet answered (PUBACK or failure), failed */
	int controls_pending;
	unsigned controls_failed;
	/* subscriptions of the current connection: requested (owner) and granted (Paho) */
	atomic_uint subs_asked, subs_granted;
};

/* Paho's in-flight limit: the data window plus the control messages' reserve. */
static int paho_inflight(const struct sp_mqtt *m)
{
	return m->max_inflight < PAHO_INFLIGHT_MAX - CONTROL_RESERVE
		       ? m->max_inflight + CONTROL_RESERVE
		       : PAHO_INFLIGHT_MAX;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* Backoff with +-25 % jitter, so a fleet does not reconnect in lockstep. */
static int64_t jittered(struct sp_mqtt *m, int64_t ms)
{
	m->jitter_state = m->jitter_state * 6364136223846793005ULL + 1442695040888963407ULL;
	int64_t span = ms / 2;
	return ms - ms / 4 + (span > 0 ? (int64_t)((m->jitter_state >> 33) % (uint64_t)span) : 0);
}

/* ---------------------------------------------------------------- Paho callbacks (Paho threads) */

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
	struct sp_mqtt *m = ctx;
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	pthread_mutex_lock(&m->lock);
	bool closed = m->closed;
	if (!closed)
		m->delivering++;
	pthread_mutex_unlock(&m->lock);
	if (closed) {
		/*
		 * A connection that came up after the stop (on_connect_ok closes it)
		 * carried it: acknowledged to the broker and nobody to give it to.
		 */
		uint64_t suppressed;
		if (sp_ratelimit_allow(&m->late_log, sp_mono_ms(), 1, 10000, &suppressed))
			SP_ERROR("mqtt", "%s: message on %.*s arrived after the stop: lost%s", m->uri,
				 (int)(tlen > 200 ? 200 : tlen), topic,
				 suppressed ? " (more were not logged)" : "");
	} else {
		if (m->cb.message)
			m->cb.message(m->cb.ctx, topic, tlen, msg->payload,
				      msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0);
		pthread_mutex_lock(&m->lock);
		m->delivering--;
		if (m->closed) /* close_deliveries waits (closed is set under this lock) */
			pthread_cond_broadcast(&m->changed);
		pthread_mutex_unlock(&m->lock);
	}
	MQTTAsync_freeMessage(&msg);
	MQTTAsync_free(topic);
	return 1; /* taken (Paho acknowledged it to the broker already: see the top of the file) */
}

/*
 * A connection lost soon after it came up counts as a failed connect
 * (backoff.h): a client with our id taking the session over at each of its
 * connects must not make both reconnect every 0.5 s. Said once a minute at
 * most, with the likely cause, instead of the plain line each time.
 */
static void on_connection_lost(void *ctx, char *cause)
{
	struct sp_mqtt *m = ctx;
	int64_t now = sp_mono_ms(), up_ms = 0, delay = 0;
	bool brief = false, log_brief = false, closing = false;
	uint64_t suppressed = 0;
	pthread_mutex_lock(&m->lock);
	if (m->state == CONN_UP) {
		m->state = CONN_DOWN;
		up_ms = now - m->up_since_ms;
		delay = jittered(m, backoff_lost(&m->backoff, up_ms, &brief));
		m->next_attempt_ms = now + delay;
		if (brief) {
			atomic_fetch_add(&m->short_lived, 1);
			log_brief = sp_ratelimit_allow(&m->short_log, now, 1, 60000, &suppressed);
		}
	} else if (m->state == CONN_CLOSING) {
		/* lost while we disconnected: closed all the same, and Paho calls nothing more */
		m->state = CONN_DOWN;
		closing = true;
	}
	atomic_store(&m->up, false);
	pthread_cond_broadcast(&m->changed);
	pthread_mutex_unlock(&m->lock);
	if (log_brief)
		SP_WARN("mqtt", "%s: connection lost %.1f s after connecting%s%s - another client "
				"with the same client id (%s)? Reconnecting in %.1f s; the delay keeps "
				"growing (up to %lld s) until a connection lasts %d s%s",
			m->uri, (double)up_ms / 1000, cause ? ": " : "", cause ? cause : "",
			m->client_id, (double)delay / 1000, (long long)(m->backoff.max_ms / 1000),
			BACKOFF_STABLE_MS / 1000,
			suppressed ? " (more such losses were not logged)" : "");
	else if (!brief && !closing)
		SP_WARN("mqtt", "%s: connection lost%s%s; reconnecting", m->uri, cause ? ": " : "",
			cause ? cause : "");
	if (m->cb.lost)
		m->cb.lost(m->cb.ctx);
}

static void on_disconnect_done(void *ctx, MQTTAsync_successData *resp);
static void on_disconnect_fail(void *ctx, MQTTAsync_failureData *resp);

/*
 * A connect that completes after sp_mqtt_disconnect (Paho's connect timeout
 * is longer than that call's wait): the connection is not reported, and is
 * closed at once. Paho allows any call but create and destroy from its
 * callbacks. What the broker sends before the close is acknowledged by Paho
 * as it reads it: on_message drops it once the disconnect has returned.
 */
static void close_late_connection(struct sp_mqtt *m)
{
	SP_INFO("mqtt", "%s: connected after the stop: disconnecting at once", m->uri);
	MQTTAsync_disconnectOptions dopts = MQTTAsync_disconnectOptions_initializer;
	dopts.timeout = 0;
	dopts.onSuccess = on_disconnect_done;
	dopts.onFailure = on_disconnect_fail;
	dopts.context = m;
	if (MQTTAsync_disconnect(m->client, &dopts) != MQTTASYNC_SUCCESS)
		on_disconnect_done(m, NULL);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *resp)
{
	struct sp_mqtt *m = ctx;
	unsigned failures;
	(void)resp;
	pthread_mutex_lock(&m->lock);
	if (m->stopped) {
		m->state = CONN_CLOSING;
		pthread_cond_broadcast(&m->changed); /* a wait for the connect ends now */
		pthread_mutex_unlock(&m->lock);
		close_late_connection(m);
		return;
	}
	failures = m->failures;
	m->state = CONN_UP;
	m->failures = 0;
	/* the backoff is left as it is: only a connection that lasts resets it (on its loss) */
	m->up_since_ms = sp_mono_ms();
	atomic_store(&m->inflight, 0);
	m->controls_pending = 0;
	/*
	 * Before the epoch moves, so the owner never sees the new connection with
	 * the old one's counts. A SUBACK of the old connection cannot come later:
	 * Paho fails a lost session's pending requests before connectionLost, and
	 * the next connect starts only after it.
	 */
	atomic_store(&m->subs_asked, 0);
	atomic_store(&m->subs_granted, 0);
	atomic_fetch_add(&m->epoch, 1);
	atomic_store(&m->up, true);
	pthread_cond_broadcast(&m->changed);
	pthread_mutex_unlock(&m->lock);
	if (failures)
		SP_INFO("mqtt", "%s: connected as %s after %u failed attempts", m->uri, m->client_id,
			failures);
	else
		SP_INFO("mqtt", "%s: connected as %s", m->uri, m->client_id);
	if (m->cb.connected)
		m->cb.connected(m->cb.ctx);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *resp)
{
	struct sp_mqtt *m = ctx;
	uint64_t suppressed;
	int64_t now = sp_mono_ms();
	pthread_mutex_lock(&m->lock);
	m->state = CONN_DOWN;
	m->failures++;
	m->next_attempt_ms = now + jittered(m, backoff_failed(&m->backoff));
	bool log = sp_ratelimit_allow(&m->fail_log, now, 1, 60000, &suppressed);
	unsigned failures = m->failures;
	pthread_cond_broadcast(&m->changed);
	pthread_mutex_unlock(&m->lock);
	if (log)
		SP_WARN("mqtt", "%s: connect failed (attempt %u): %s (code %d); retrying with backoff",
			m->uri, failures, resp && resp->message ? resp->message : "no answer",
			resp ? resp->code : 0);
}

static void on_publish_done(void *ctx, MQTTAsync_successData *resp)
{
	struct sp_mqtt *m = ctx;
	(void)resp;
	/* never below zero: a reconnect resets the count while old tokens may still complete */
	int v = atomic_load(&m->inflight);
	while (v > 0 && !atomic_compare_exchange_weak(&m->inflight, &v, v - 1))
		;
}

static void on_publish_fail(void *ctx, MQTTAsync_failureData *resp)
{
	(void)resp;
	on_publish_done(ctx, NULL);
}

/* A control message's PUBACK, or its failure (the connection was lost). */
static void control_finished(struct sp_mqtt *m, bool ok)
{
	pthread_mutex_lock(&m->lock);
	if (!ok)
		m->controls_failed++;
	if (m->controls_pending > 0) /* 0 after a reconnect reset it */
		m->controls_pending--;
	pthread_cond_broadcast(&m->changed);
	pthread_mutex_unlock(&m->lock);
}

static void on_control_done(void *ctx, MQTTAsync_successData *resp)
{
	(void)resp;
	control_finished(ctx, true);
}

static void on_control_fail(void *ctx, MQTTAsync_failureData *resp)
{
	(void)resp;
	control_finished(ctx, false);
}

static void on_subscribe_done(void *ctx, MQTTAsync_successData *resp)
{
	struct sp_mqtt *m = ctx;
	if (resp && resp->alt.qos == MQTT_BAD_SUBSCRIBE) {
		SP_WARN("mqtt", "%s: the broker refused a subscription (SUBACK 0x80)", m->uri);
		return;
	}
	atomic_fetch_add(&m->subs_granted, 1);
}

static void on_subscribe_fail(void *ctx, MQTTAsync_failureData *resp)
{
	struct sp_mqtt *m = ctx;
	SP_WARN("mqtt", "%s: subscription failed: %s (code %d)", m->uri,
		resp && resp->message ? resp->message : "refused or connection lost",
		resp ? resp->code : 0);
}

static void on_disconnect_done(void *ctx, MQTTAsync_successData *resp)
{
	struct sp_mqtt *m = ctx;
	(void)resp;
	pthread_mutex_lock(&m->lock);
	m->state = CONN_DOWN;
	atomic_store(&m->up, false);
	pthread_cond_broadcast(&m->changed);
	pthread_mutex_unlock(&m->lock);
}

static void on_disconnect_fail(void *ctx, MQTTAsync_failureData *resp)
{
	(void)resp;
	on_disconnect_done(ctx, NULL);
}

/* ---------------------------------------------------------------- owner thread */

/*
 * Paho's process-wide settings, made once before the first client exists.
 *
 * OpenSSL: by default Paho initialises it (every algorithm and error string)
 * when its first client is created, TLS or not: 1.5 MB more of libcrypto's
 * pages resident in an agent of 7.8 MB. OpenSSL 3 initialises itself, thread
 * safely, when a TLS connection first needs it, so that is left to it
 * (docs/performance.md item 53). The collector initialises it anyway (its
 * API's token digests, libcurl); the agent without TLS no longer does.
 *
 * Trace: by default Paho records every function entry and exit in an in-memory
 * trace ring, under a global mutex, and formats a line for each protocol
 * event; nothing here ever reads that ring. Raising its level to errors
 * skips the bookkeeping on every message: 10.5-11.1 -> 8.5-9.0 us of CPU
 * per received message (docs/performance.md item 26). Whoever asks Paho
 * for a trace with its own MQTT_C_CLIENT_TRACE variable keeps it.
 */
static pthread_once_t paho_once = PTHREAD_ONCE_INIT;

static void paho_global_settings(void)
{
	MQTTAsync_init_options init = MQTTAsync_init_options_initializer;
	init.do_openssl_init = 0;
	MQTTAsync_global_init(&init);

	const char *trace = getenv("MQTT_C_CLIENT_TRACE");
	if (trace == NULL || trace[0] == '\0')
		MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
}

struct sp_mqtt *sp_mqtt_create(const struct sp_mqtt_params *p, const struct sp_mqtt_callbacks *cb)
{
	MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer;
	struct sp_mqtt *m = calloc(1, sizeof(*m));
	int rc;

	if (m == NULL)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	/* the disconnect wait is timed: on the monotonic clock, whatever the wall clock does */
	if (sp_cond_init_mono(&m->changed) != 0) {
		pthread_mutex_destroy(&m->lock);
		free(m);
		return NULL;
	}
	m->cb = *cb;
	m->uri = strdup(p->uri);
	m->client_id = strdup(p->client_id);
	m->username = dup_or_null(p->username);
	m->password = dup_or_null(p->password);
	m->ca_file = dup_or_null(p->ca_file);
	m->cert_file = dup_or_null(p->cert_file);
	m->key_file = dup_or_null(p->key_file);
	m->will_topic = dup_or_null(p->will_topic);
	m->will_payload = dup_or_null(p->will_payload);
	if (m->uri == NULL || m->client_id == NULL || (p->will_topic && !m->will_topic))
		goto fail;
	m->tls = strncmp(p->uri, "ssl://", 6) == 0 || strncmp(p->uri, "mqtts://", 8) == 0;
	m->tls_insecure = p->tls_insecure;
	m->clean_session = p->clean_session;
	m->keepalive_s = p->keepalive_s > 0 ? p->keepalive_s : 30;
	m->max_inflight = p->max_inflight > 0 ? p->max_inflight : 100;
	backoff_init(&m->backoff, BACKOFF_MIN_MS,
		     p->backoff_max_ms > 0 ? p->backoff_max_ms : BACKOFF_MAX_MS);
	m->jitter_state = (uint64_t)sp_now_ms() ^ (uint64_t)(uintptr_t)m;
	m->state = CONN_DOWN;

	pthread_once(&paho_once, paho_global_settings);
	copts.MQTTVersion = MQTTVERSION_3_1_1;
	copts.sendWhileDisconnected = 0;
	/*
	 * Paho's buffer of commands not yet written counts while connected too
	 * (100 by default): a full data window plus the control messages must
	 * fit, or a control message (the agent's offline state) is refused -
	 * twice over, for Paho carries commands a lost connection left unwritten
	 * over to the next one while on_connect_ok starts our counts afresh.
	 */
	copts.maxBufferedMessages = 2 * paho_inflight(m) + CONTROL_RESERVE;
	rc = MQTTAsync_createWithOptions(&m->client, m->uri, m->client_id,
					 MQTTCLIENT_PERSISTENCE_NONE, NULL, &copts);
	if (rc != MQTTASYNC_SUCCESS) {
		SP_ERROR("mqtt", "%s: cannot create client: %s", m->uri, MQTTAsync_strerror(rc));
		goto fail;
	}
	rc = MQTTAsync_setCallbacks(m->client, m, on_connection_lost, on_message, NULL);
	if (rc != MQTTASYNC_SUCCESS) {
		SP_ERROR("mqtt", "cannot set callbacks: %s", MQTTAsync_strerror(rc));
		goto fail;
	}
	return m;
fail:
	sp_mqtt_destroy(m, 0);
	return NULL;
}

static void start_connect(struct sp_mqtt *m)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
	MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	int rc;

	co.keepAliveInterval = m->keepalive_s;
	co.cleansession = m->clean_session;
	co.maxInflight = paho_inflight(m);
	co.connectTimeout = CONNECT_TIMEOUT_S;
	co.automaticReconnect = 0;
	co.MQTTVersion = MQTTVERSION_3_1_1;
	co.username = m->username;
	co.password = m->password;
	co.onSuccess = on_connect_ok;
	co.onFailure = on_connect_fail;
	co.context = m;
	if (m->will_topic) {
		will.topicName = m->will_topic;
		will.message = m->will_payload ? m->will_payload : "";
		will.qos = 1;
		will.retained = 1;
		co.will = &will;
	}
	if (m->tls) {
		ssl.trustStore = m->ca_file;
		ssl.keyStore = m->cert_file;
		ssl.privateKey = m->key_file;
		ssl.enableServerCertAuth = 1;
		ssl.verify = m->tls_insecure ? 0 : 1;
		co.ssl = &ssl;
	}
	rc = MQTTAsync_connect(m->client, &co);
	if (rc != MQTTASYNC_SUCCESS) {
		MQTTAsync_failureData fd = {0};
		fd.code = rc;
		fd.message = MQTTAsync_strerror(rc);
		on_connect_fail(m, &fd);
	}
}

void sp_mqtt_poll(struct sp_mqtt *m)
{
	bool go = false;
	int64_t now = sp_mono_ms();
	pthread_mutex_lock(&m->lock);
	if (m->state == CONN_DOWN && !m->stopped && now >= m->next_attempt_ms) {
		m->state = CONN_CONNECTING;
		go = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (go)
		start_connect(m);
}

bool sp_mqtt_connected(const struct sp_mqtt *m)
{
	return atomic_load(&m->up);
}

uint64_t sp_mqtt_epoch(const struct sp_mqtt *m)
{
	return atomic_load(&((struct sp_mqtt *)m)->epoch);
}

uint64_t sp_mqtt_short_lived(const struct sp_mqtt *m)
{
	return atomic_load(&((struct sp_mqtt *)m)->short_lived);
}

int sp_mqtt_inflight(const struct sp_mqtt *m)
{
	return atomic_load(&((struct sp_mqtt *)m)->inflight);
}

int sp_mqtt_subscribe(struct sp_mqtt *m, const char *filter, int qos)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	if (!atomic_load(&m->up))
		return SP_ECONN;
	/* counted before the request, so the SUBACK can never be counted first */
	atomic_fetch_add(&m->subs_asked, 1);
	ro.onSuccess = on_subscribe_done;
	ro.onFailure = on_subscribe_fail;
	ro.context = m;
	int rc = MQTTAsync_subscribe(m->client, filter, qos, &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		SP_WARN("mqtt", "subscribe %s failed: %s", filter, MQTTAsync_strerror(rc));
		return rc == MQTTASYNC_DISCONNECTED ? SP_ECONN : SP_EIO;
	}
	return 0;
}

bool sp_mqtt_subscribed(const struct sp_mqtt *m)
{
	struct sp_mqtt *mm = (struct sp_mqtt *)m;
	unsigned asked = atomic_load(&mm->subs_asked);
	return atomic_load(&mm->up) && asked > 0 && atomic_load(&mm->subs_granted) >= asked;
}

int sp_mqtt_publish(struct sp_mqtt *m, const char *topic, const void *payload, size_t len,
		    int qos, bool retain)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message msg = MQTTAsync_message_initializer;
	int rc;

	if (!atomic_load(&m->up))
		return SP_ECONN;
	if (qos > 0 && atomic_load(&m->inflight) >= m->max_inflight)
		return SP_EBUSY;
	msg.payload = (void *)payload;
	msg.payloadlen = (int)len;
	msg.qos = qos;
	msg.retained = retain;
	ro.context = m;
	if (qos > 0) {
		ro.onSuccess = on_publish_done;
		ro.onFailure = on_publish_fail;
		atomic_fetch_add(&m->inflight, 1);
	}
	rc = MQTTAsync_sendMessage(m->client, topic, &msg, &ro);
	if (rc == MQTTASYNC_SUCCESS)
		return 0;
	if (qos > 0)
		on_publish_done(m, NULL);
	if (rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT || rc == MQTTASYNC_MAX_BUFFERED_MESSAGES)
		return SP_EBUSY;
	if (rc == MQTTASYNC_DISCONNECTED)
		return SP_ECONN;
	SP_WARN("mqtt", "publish to %s failed: %s", topic, MQTTAsync_strerror(rc));
	return SP_EIO;
}

int sp_mqtt_publish_control(struct sp_mqtt *m, const char *topic, const void *payload, size_t len,
			    bool retain, int wait_ms)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message msg = MQTTAsync_message_initializer;

	if (!atomic_load(&m->up))
		return SP_ECONN;
	msg.payload = (void *)payload;
	msg.payloadlen = (int)len;
	msg.qos = 1;
	msg.retained = retain;
	ro.context = m;
	ro.onSuccess = on_control_done;
	ro.onFailure = on_control_fail;
	pthread_mutex_lock(&m->lock);
	unsigned failed_before = m->controls_failed;
	m->controls_pending++;
	pthread_mutex_unlock(&m->lock);
	int rc = MQTTAsync_sendMessage(m->client, topic, &msg, &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		control_finished(m, true); /* never sent: not a failure of a sent one */
		if (rc == MQTTASYNC_DISCONNECTED)
			return SP_ECONN;
		SP_WARN("mqtt", "publish to %s failed: %s", topic, MQTTAsync_strerror(rc));
		return SP_EIO;
	}
	if (wait_ms <= 0)
		return 0;
	/* the broker answers a connection's publishes in order: ours is answered last */
	struct timespec until = sp_mono_deadline(wait_ms);
	pthread_mutex_lock(&m->lock);
	while (m->controls_pending > 0 && pthread_cond_timedwait(&m->changed, &m->lock, &until) == 0)
		;
	bool answered = m->controls_pending == 0;
	bool failed = m->controls_failed != failed_before;
	pthread_mutex_unlock(&m->lock);
	if (!answered)
		return SP_ETIMEDOUT;
	return failed ? SP_ECONN : 0;
}

/*
 * From now on no message is delivered; waits up to wait_ms for a delivery
 * under way. The caller's callback may wait for room in its queue, which
 * its other threads make - or, should they be stuck (a store that cannot
 * write), only the queue's closing after this returns: so the wait is
 * bounded, and such a callback ends on the closed queue instead.
 */
static void close_deliveries(struct sp_mqtt *m, const struct timespec *until, int wait_ms)
{
	pthread_mutex_lock(&m->lock);
	m->closed = true;
	while (m->delivering > 0 && pthread_cond_timedwait(&m->changed, &m->lock, until) == 0)
		;
	if (m->delivering > 0)
		SP_WARN("mqtt", "%s: a message delivery still under way after %d ms: left to end "
				"on its own", m->uri, wait_ms);
	pthread_mutex_unlock(&m->lock);
}

static void disconnect_once(struct sp_mqtt *m, int timeout_ms, bool wait_connect,
			    const struct timespec *until);

/*
 * Disconnects and connects no more. wait_connect: a connect under way is
 * waited for, since once up it would deliver. The waits share one deadline:
 * timeout_ms + 1 s.
 */
static void disconnect(struct sp_mqtt *m, int timeout_ms, bool wait_connect)
{
	struct timespec until = sp_mono_deadline(timeout_ms + 1000);
	disconnect_once(m, timeout_ms, wait_connect, &until);
	close_deliveries(m, &until, timeout_ms + 1000);
}

static void disconnect_once(struct sp_mqtt *m, int timeout_ms, bool wait_connect,
			    const struct timespec *until)
{
	pthread_mutex_lock(&m->lock);
	m->stopped = true;
	while (wait_connect && m->state == CONN_CONNECTING &&
	       pthread_cond_timedwait(&m->changed, &m->lock, until) == 0)
		;
	bool up = m->state == CONN_UP;
	if (up)
		m->state = CONN_CLOSING;
	pthread_mutex_unlock(&m->lock);
	if (!up)
		return;
	MQTTAsync_disconnectOptions dopts = MQTTAsync_disconnectOptions_initializer;
	/*
	 * Not a moment for our in-flight publishes: Paho holds a DISCONNECT back
	 * while a QoS 1 publish of ours waits for its PUBACK and looks again only
	 * every few seconds, reading and acknowledging what the broker sends all
	 * the while - past our wait, after which those messages were dropped
	 * (hundreds at a collector stop under load). What we publish is safe
	 * without the wait: the collector publishes every ack again at its next
	 * start, the agent keeps its messages spooled until acknowledged.
	 */
	dopts.timeout = 0;
	dopts.onSuccess = on_disconnect_done;
	dopts.onFailure = on_disconnect_fail;
	dopts.context = m;
	int rc = MQTTAsync_disconnect(m->client, &dopts);
	if (rc != MQTTASYNC_SUCCESS) {
		/* not connected after all (the connection was just lost): nothing more arrives */
		on_disconnect_done(m, NULL);
		return;
	}
	pthread_mutex_lock(&m->lock);
	while (m->state == CONN_CLOSING &&
	       pthread_cond_timedwait(&m->changed, &m->lock, until) == 0)
		;
	bool closed = m->state != CONN_CLOSING;
	pthread_mutex_unlock(&m->lock);
	if (!closed)
		SP_WARN("mqtt", "%s: disconnect not confirmed within %d ms", m->uri,
			timeout_ms + 1000);
}

void sp_mqtt_disconnect(struct sp_mqtt *m, int timeout_ms)
{
	if (m != NULL && m->client != NULL)
		disconnect(m, timeout_ms, true);
}

void sp_mqtt_destroy(struct sp_mqtt *m, int timeout_ms)
{
	if (m == NULL)
		return;
	if (m->client) {
		/* a connect under way is not waited for: MQTTAsync_destroy ends it */
		disconnect(m, timeout_ms, false);
		MQTTAsync_destroy(&m->client);
	}
	pthread_cond_destroy(&m->changed);
	pthread_mutex_destroy(&m->lock);
	free(m->uri);
	free(m->client_id);
	free(m->username);
	if (m->password) {
		/* do not leave the secret in freed memory */
		explicit_bzero(m->password, strlen(m->password));
		free(m->password);
	}
	free(m->ca_file);
	free(m->cert_file);
	free(m->key_file);
	free(m->will_topic);
	free(m->will_payload);
	free(m);
}
