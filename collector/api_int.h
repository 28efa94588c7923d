/*
 * api_int.h - what the HTTP API's two files share. Internal to them:
 *
 *   api.c         the server: libmicrohttpd's daemon and its options, a
 *                 request's life (route, token, method and declared size
 *                 judged on the headers; the body bounded), every refusal
 *                 counted and logged, answers queued; api_start/api_stop.
 *   api_routes.c  what each route answers once a request got through:
 *                 health, metrics, the JSON lists, the acknowledgement,
 *                 the dashboard's files.
 *
 * They are split because they change for different reasons: a new route
 * or field touches api_routes.c; limits, TLS, logging of refusals touch
 * api.c. They are the only files that include microhttpd.h.
 * Threading: all of it runs on libmicrohttpd's threads (MHD-worker);
 * struct api's mutable fields are guarded by its two locks.
 */
#ifndef SP_COLLECTOR_API_INT_H
#define SP_COLLECTOR_API_INT_H

#include "api.h"
#include "apiparse.h"
#include "tokens.h"

#include "sitepulse/buf.h"
#include "sitepulse/log.h"
#include "sitepulse/record.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api {
	struct api_params p;
	struct MHD_Daemon *daemon;
	char *tls_cert, *tls_key; /* PEM, alive as long as the daemon */
	int64_t offline_ms;
	/* the device gauges of /metrics, shared by the MHD threads under counts_lock */
	pthread_mutex_t counts_lock;
	int64_t counts[SP_DEV_KIND_COUNT][2];
	int64_t counts_at_ms; /* monotonic; 0 = never */
	bool counts_valid;
	/* the HTTP threads share the rate limit of note_refusal's log lines */
	pthread_mutex_t refusal_lock;
	struct sp_ratelimit refusal_log;
	/*
	 * Bytes of the answers queued and not yet freed by libmicrohttpd (each
	 * until its reader has taken it, or its connection closed), against
	 * response_budget: the answers' memory stays bounded however many
	 * readers are slow.
	 */
	atomic_size_t response_bytes;
	size_t response_budget;
};

/*
 * Per-request state kept by libmicrohttpd between handler calls. Everything
 * but the body is decided on the first call, from the headers alone.
 */
struct request {
	struct api *api;
	char method[16];        /* as the client sent them, cut short: for the log of refusals */
	char path[128];         /* the path only: the query (which may hold anything) is not kept */
	enum api_route route;
	int64_t id;             /* {id} of ROUTE_ALERT_ACK */
	enum token_role role;
	size_t token_pos;       /* the token's place in its configured list (tokens.h) */
	struct sp_buf body;     /* bounded by ACK_BODY_MAX; the rest is counted, not kept */
	size_t body_bytes;
};

/*
 * Queues b as the answer to rq with Content-Type type (no caching,
 * nosniff); b's memory passes to libmicrohttpd either way. An answer of
 * API_RESPONSE_SMALL or more that would take the answers queued past
 * [api] response_mb, with another such answer queued, is refused instead:
 * 503, counted and logged.
 */
#define API_RESPONSE_SMALL (64 * 1024)
enum MHD_Result api_send_buf(struct MHD_Connection *c, const struct request *rq, unsigned status,
			     struct sp_buf *b, const char *type);
enum MHD_Result api_send_json(struct MHD_Connection *c, const struct request *rq, unsigned status,
			      struct sp_buf *b);

/* Refuses the request: {"error":…} with status, counted and logged (rate-limited). */
enum MHD_Result api_send_error(struct MHD_Connection *c, const struct request *rq,
			       unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A query parameter, NULL if absent (the server refused any with a NUL byte). */
const char *api_arg(struct MHD_Connection *c, const char *name);

/*
 * api_routes.c: the answer of rq's route, once the server judged its
 * headers, token, method, body and query parameters.
 */
enum MHD_Result api_route(struct api *a, struct MHD_Connection *c, const struct request *rq,
			  const char *url);

#endif
