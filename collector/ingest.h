/*
 * ingest.h - the collector's MQTT side: subscribes to sp/v1/+/+/{birth,data,state}
 * with a persistent session and a fixed client id, copies every message into
 * the ingest queue, and publishes the writer's acks (retained, QoS 1).
 *
 * Threads: the message callback runs on Paho's receive thread and only
 * copies into the queue (blocking while it is full: backpressure).
 * ingest_poll() runs on the main thread (connection upkeep, subscriptions,
 * and the subscriptions the writer asks for with ingest_ask_retained()).
 * Acks are published by the ingest's own acker thread from a bounded
 * outbox the writer fills with ingest_queue_ack(): the writer never calls
 * into Paho, because Paho may hold its lock while the receive thread waits
 * in our callback for the writer to make room (a deadlock otherwise).
 */
#ifndef SP_COLLECTOR_INGEST_H
#define SP_COLLECTOR_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "collector_conf.h"
#include "metrics.h"
#include "queue.h"

struct ingest;

/* Creates the MQTT client (not yet connected). NULL on failure. */
struct ingest *ingest_create(const struct collector_conf *conf, struct queue *q,
			     struct metrics *m);

/* Keeps the connection up and (re)subscribes after each connect. Main thread. */
void ingest_poll(struct ingest *in);

bool ingest_connected(const struct ingest *in);

/* Successful connects so far (a change means the broker may have lost retained acks). */
uint64_t ingest_epoch(const struct ingest *in);

/*
 * Hands an ack ({"v":1,"seq":N,"ts":…} on sp/v1/SITE/AGENT/ack, retained) to
 * the ingest's acker thread, which publishes it, in the order handed over,
 * once connected and subscribed: one handed over while the connection is
 * down waits for the reconnect (until ingest_stop). Never blocks on MQTT.
 * Returns 0, or SP_EFULL when the outbox is full (try again later).
 */
int ingest_queue_ack(struct ingest *in, const char *site, const char *agent, int64_t seq);

/* Acks handed over and not yet published. */
size_t ingest_acks_waiting(struct ingest *in);

/*
 * Asks for every retained birth and state again: the main thread's next
 * ingest_poll() subscribes to their two filters once more, and the broker
 * answers a SUBSCRIBE to a filter the client already holds by sending the
 * retained messages that match it again (MQTT 3.1.1 §3.8.4). For the writer,
 * after a failed batch dropped births or states (they are sent once per
 * agent connection and no agent resends them) and a commit worked again.
 * Any thread; only sets a flag, never calls into Paho. Requests made before
 * the main thread takes the flag are one subscription; one made while
 * disconnected is covered by the subscriptions of the next connect. Paced
 * (reask.h): within [store] reask_interval_s of the last re-ask the request
 * waits for the interval's end, then is carried out (counted in
 * sitepulse_retained_requests_deferred_total), never dropped.
 */
void ingest_ask_retained(struct ingest *in);

/*
 * Re-asks carried out so far (a change: the retained births and states are
 * arriving again, perhaps a minute after the request). Any thread.
 */
uint64_t ingest_reasks(const struct ingest *in);

/*
 * Stops taking messages, first thing on stop: disconnects from the broker,
 * whose persistent session keeps what it has not handed over for the next
 * start, and returns once no message can arrive any more (after at most
 * ~1.3 s). Every message taken before is in the ingest queue by then:
 * Paho acknowledged each to the broker before handing it over, so the
 * queue must be drained, not dropped. Acks handed over afterwards are not
 * published: the next start publishes every agent's ack again. Main
 * thread. Accepts NULL.
 */
void ingest_stop(struct ingest *in);

/* Disconnects (if ingest_stop did not) and frees. Accepts NULL. */
void ingest_destroy(struct ingest *in);

#endif
