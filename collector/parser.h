/*
 * parser.h - the decode stage: a thread between the ingest queue (raw
 * messages from Paho's receive thread) and the writer's queue.
 *
 * Data messages are decoded, validated and their records encoded in the
 * canonical form (parsed.h) here, so the writer thread, the pipeline's
 * bottleneck, spends its time on the database only. Births, states and
 * messages on unreadable topics pass through unchanged (the writer decodes
 * those few itself). Order is kept: one consumer, one producer each side.
 *
 * Backpressure: when the writer's queue is full this thread waits in
 * queue_push, the ingest queue fills up, and Paho's receive thread waits in
 * turn (queue.h). Nothing is acknowledged end to end here, but every
 * message in the ingest queue was acknowledged to the broker (mqtt.h): on
 * stop the parser passes all of it on, within the stop budget.
 *
 * Threading: parser_start/parser_stop from the main thread; everything
 * else on the parser's own thread.
 */
#ifndef SP_COLLECTOR_PARSER_H
#define SP_COLLECTOR_PARSER_H

#include "queue.h"

struct parser;

/* Starts the thread reading `in` and writing `out`. NULL on failure. */
struct parser *parser_start(struct queue *in, struct queue *out);

/*
 * Call after `in` is closed: the thread passes on what `in` still holds
 * for at most drain_ms (what is left then is not stored, so not acked: its
 * agent resends it; main.c logs how much), closes `out`, and is joined.
 * Accepts NULL.
 */
void parser_stop(struct parser *p, int drain_ms);

#endif
