/*
 * mqtt.h - the one wrapper around Eclipse Paho MQTT C (async API), shared
 * by the agent and the collector.
 *
 * What it adds to Paho: connection management owned by the caller's
 * thread (sp_mqtt_poll connects and reconnects forever with capped
 * exponential backoff and jitter), TLS and credential options from plain
 * strings, an in-flight window for QoS 1 publishes, and Paho error codes
 * translated to SP_E* (Paho's own text is logged here). The first
 * sp_mqtt_create turns Paho's process-wide default trace off, unless
 * MQTT_C_CLIENT_TRACE asks for one (it costs ~2 us per message).
 *
 * Threads: Paho runs its own send and receive threads. The callbacks in
 * struct sp_mqtt_callbacks run on Paho's receive thread; they must only
 * copy what they need and return (or block briefly on a bounded queue,
 * which is the collector's backpressure) and must never call sp_mqtt_*.
 * A message given to the callback is already acknowledged to the broker
 * (QoS 1): the callback cannot refuse it, only keep it.
 * All sp_mqtt_* functions are called from the owner's threads; publish
 * and subscribe may be called from any one non-Paho thread at a time per
 * function (Paho locks internally).
 */
#ifndef SP_MQTT_H
#define SP_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sp_mqtt;

struct sp_mqtt_params {
	const char *uri;         /* tcp://host:port or ssl://host:port */
	const char *client_id;
	const char *username;    /* NULL or "" = none */
	const char *password;
	const char *ca_file;     /* ssl: CA bundle to verify the broker; NULL = system default */
	const char *cert_file;   /* ssl: client certificate (PEM), optional */
	const char *key_file;    /* ssl: client key (PEM), optional */
	bool tls_insecure;       /* ssl: skip host name verification (tests only) */
	int keepalive_s;
	bool clean_session;
	int max_inflight;        /* QoS 1 publishes awaiting PUBACK; more returns SP_EBUSY */
	/*
	 * The reconnect delay doubles from 0.5 s up to this (ms, +-25 % jitter)
	 * with each failed connect, and with each connection lost within 10 s
	 * of coming up; 0 = 30 s, for a fleet that must not hammer a broker
	 * coming back.
	 */
	int backoff_max_ms;
	const char *will_topic;  /* NULL = no Will; else QoS 1, retained */
	const char *will_payload;
};

struct sp_mqtt_callbacks {
	void *ctx;
	/* A message arrived (Paho thread). topic is NUL-terminated; payload is not. */
	void (*message)(void *ctx, const char *topic, size_t topic_len, const void *payload,
			size_t len);
	/* The connection was established (Paho thread); may be NULL. */
	void (*connected)(void *ctx);
	/* The connection was lost (Paho thread); may be NULL. */
	void (*lost)(void *ctx);
};

/* Creates the client (not yet connected). NULL on failure (logged). */
struct sp_mqtt *sp_mqtt_create(const struct sp_mqtt_params *p, const struct sp_mqtt_callbacks *cb);

/*
 * Stops receiving, for good: disconnects at once (our publishes still in
 * flight are not waited for: the caller must be able to publish them again,
 * as the collector's acks and the agent's spooled messages are; this call
 * waits up to timeout_ms + 1 s for the disconnect to complete, and first for
 * a connect under way to end) and connects no more.
 * Once it returns the message callback is not called again (a delivery
 * under way is waited for, up to timeout_ms + 1 s: one blocked longer, on
 * room in a queue that only the caller's closing it frees, ends after the
 * caller closed it - the collector's ingest), and what the broker has not handed over stays in
 * its session (clean_session false) for the next connect. A connect still
 * under way after the wait (Paho's connect timeout is 10 s) is never
 * reported: if it completes, the connection is closed at once, and what the
 * broker sent on it before the close (acknowledged by Paho as it read it)
 * is dropped with an ERROR - for the collector an agent's data comes again
 * (no ack covers it) and a retained birth or state with the next
 * subscription. Every message the callback was given is already
 * acknowledged to the broker (Paho sends the PUBACK before the callback):
 * the caller must keep all of them. Owner thread. Accepts NULL.
 */
void sp_mqtt_disconnect(struct sp_mqtt *m, int timeout_ms);

/*
 * Disconnects (as sp_mqtt_disconnect, waiting up to timeout_ms + 1 s) and frees. A
 * message callback still blocked (see sp_mqtt_disconnect) must have been
 * freed by the caller first: it touches the client when it returns.
 * Accepts NULL.
 */
void sp_mqtt_destroy(struct sp_mqtt *m, int timeout_ms);

/*
 * Drives the connection: starts a connect attempt when disconnected and the
 * backoff delay has passed. Call every 100 ms or so from the owner thread.
 */
void sp_mqtt_poll(struct sp_mqtt *m);

bool sp_mqtt_connected(const struct sp_mqtt *m);

/* Number of successful connects so far: a change means "reconnected". */
uint64_t sp_mqtt_epoch(const struct sp_mqtt *m);

/*
 * Connections lost less than 10 s after they came up (typically another
 * client with the same client id taking the session over). Each counts as
 * a failed connect: the reconnect delay grows instead of starting over.
 */
uint64_t sp_mqtt_short_lived(const struct sp_mqtt *m);

/* QoS 1 publishes sent and not yet acknowledged by the broker. */
int sp_mqtt_inflight(const struct sp_mqtt *m);

/*
 * Subscribes (asynchronously). 0, SP_ECONN or SP_EIO. The request counts
 * for the current connection even when it fails here, so that
 * sp_mqtt_subscribed() then stays false on this connection.
 */
int sp_mqtt_subscribe(struct sp_mqtt *m, const char *filter, int qos);

/*
 * True while connected when the broker has granted (SUBACK) every
 * subscription requested on this connection, and at least one was. A
 * broker sends a subscription's retained messages right after its SUBACK,
 * on the same connection, so they arrive moments later (the message
 * callback may not have run yet when this turns true). A refused
 * subscription (SUBACK 0x80, e.g. an ACL) is logged and never counts.
 */
bool sp_mqtt_subscribed(const struct sp_mqtt *m);

/*
 * Publishes. Returns 0, SP_ECONN (not connected), SP_EBUSY (in-flight
 * window full: try later) or SP_EIO.
 */
int sp_mqtt_publish(struct sp_mqtt *m, const char *topic, const void *payload, size_t len,
		    int qos, bool retain);

/*
 * Publishes a control message (QoS 1: a birth, a state) outside the data
 * window: it never gets SP_EBUSY, and Paho (which keeps a few more slots in
 * flight than max_inflight) writes it at once, ahead of anything published
 * after it. wait_ms > 0: then waits up to wait_ms until the broker has
 * acknowledged it (and every control message before it on this connection).
 * Returns 0 (sent; with wait_ms, acknowledged), SP_ECONN (not connected, or
 * the connection was lost before the broker acknowledged it), SP_ETIMEDOUT
 * (sent, not acknowledged within wait_ms: it may still arrive) or SP_EIO.
 */
int sp_mqtt_publish_control(struct sp_mqtt *m, const char *topic, const void *payload, size_t len,
			    bool retain, int wait_ms);

#endif
