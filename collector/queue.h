/*
 * queue.h - the bounded hand-off between the MQTT receive thread and the
 * writer thread: a byte ring of raw messages (topic + payload copies).
 *
 * One producer (Paho's receive thread, via ingest), one consumer (the
 * writer). Entries are copied once into a preallocated ring: no allocation
 * per message. Capacity is in bytes.
 *
 * Policy when full: block the producer. The receive thread then stops
 * reading its socket, so the backlog waits in the broker (and beyond the
 * broker's queue limit, in the agents' spools), never in collector memory.
 * The start and end of each blocking episode are logged once.
 */
#ifndef SP_COLLECTOR_QUEUE_H
#define SP_COLLECTOR_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct queue;

/* One message, valid between queue_peek() and queue_release(). */
struct queue_msg {
	const char *topic;   /* NUL-terminated */
	size_t topic_len;
	const char *payload; /* not NUL-terminated */
	size_t payload_len;
	int64_t received_ms; /* wall clock at arrival */
};

/*
 * Creates a queue of cap_bytes. name and holds say in the log whose queue
 * is full and whom that holds back ("ingest", "the broker"); both borrowed,
 * static. NULL on failure.
 */
struct queue *queue_create(size_t cap_bytes, const char *name, const char *holds);
void queue_destroy(struct queue *q);

/*
 * The least capacity whose queue takes a message of these sizes: a push
 * refuses one whose entry (header, topic, NUL, payload, aligned) is over
 * half the capacity, so that a full ring always frees enough room for it.
 */
size_t queue_cap_for(size_t topic_len, size_t payload_len);

/*
 * Copies a message in, blocking while the ring is full (until space or
 * queue_close). Returns 0, SP_ETOOBIG (can never fit: over half the
 * capacity, see queue_cap_for) or SP_ECLOSED.
 */
int queue_push(struct queue *q, const char *topic, size_t topic_len, const void *payload,
	       size_t payload_len, int64_t received_ms);

/*
 * Waits up to timeout_ms for messages, then fills out[] with up to max of
 * them (in arrival order) without removing them. Returns the number filled
 * (0 on timeout or when closed and empty).
 */
size_t queue_peek(struct queue *q, struct queue_msg *out, size_t max, int timeout_ms);

/* Frees the n oldest messages (those returned by the last peek). */
void queue_release(struct queue *q, size_t n);

/* Wakes everyone; later pushes fail with SP_ECLOSED, peeks drain what is left. */
void queue_close(struct queue *q);

struct queue_stats {
	size_t depth;          /* messages waiting */
	size_t bytes;          /* bytes held by waiting messages (not the end a wrap skipped) */
	size_t cap_bytes;
	uint64_t pushed;       /* messages ever pushed */
	uint64_t blocked;      /* pushes that had to wait for room */
};

void queue_get_stats(struct queue *q, struct queue_stats *out);

#endif
