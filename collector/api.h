/*
 * api.h - the collector's HTTP server (libmicrohttpd): health, metrics and
 * the JSON API of CONTRACT §5.
 *
 * Threads: libmicrohttpd runs its own pool of `threads` threads; handlers
 * only read (the store's read connections, atomic metrics, queue stats).
 * Bounded: connection count, idle timeout, request header memory, query
 * sizes and result limits.
 */
#ifndef SP_COLLECTOR_API_H
#define SP_COLLECTOR_API_H

#include "collector_conf.h"
#include "ingest.h"
#include "metrics.h"
#include "queue.h"
#include "store.h"
#include "tokens.h"

struct api;

struct api_params {
	const struct collector_conf *conf; /* listen, tokens, limits (borrowed) */
	struct store *store;
	struct metrics *metrics;
	struct queue *queue;               /* raw messages before the parser */
	struct queue *parsed;              /* decoded messages before the writer */
	const struct tokens *tokens;       /* who may use /api/ (borrowed) */
};

/* Starts listening. NULL on failure (logged, e.g. address in use). */
struct api *api_start(const struct api_params *p);

/* Stops the server (closing connections) and frees. Accepts NULL. */
void api_stop(struct api *a);

#endif
