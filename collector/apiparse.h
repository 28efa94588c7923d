/*
 * apiparse.h - the pure part of the HTTP API: routing, bearer tokens and
 * query parameters, without libmicrohttpd (so it can be unit-tested and
 * fuzzed directly). Everything here treats its input as hostile.
 */
#ifndef SP_COLLECTOR_APIPARSE_H
#define SP_COLLECTOR_APIPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define API_READINGS_DEFAULT 1000
#define API_READINGS_MAX 10000
#define API_ALERTS_DEFAULT 1000
#define API_ALERTS_MAX 10000
#define API_ACKED_BY_MAX 64
#define API_SUMMARIES_DEFAULT 1000
#define API_SUMMARIES_MAX 10000

enum api_route {
	ROUTE_NOT_FOUND = 0,
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
	ROUTE_SITES,
	ROUTE_DEVICES,
	ROUTE_READINGS,
	ROUTE_ALERTS,
	ROUTE_ALERT_ACK,     /* POST /api/v1/alerts/{id}/ack */
	ROUTE_ALERT_COUNTS,  /* GET /api/v1/alerts/counts (an extension of CONTRACT §5) */
	ROUTE_SUMMARIES,
	ROUTE_ME,            /* GET /api/v1/me: the token's role (an extension of CONTRACT §5) */
	ROUTE_STATIC,        /* a file of the dashboard: "/", "/dashboard.js", ... (web.h) */
};

/*
 * Maps a URL path (no query string) to a route; *id receives {id} of
 * ROUTE_ALERT_ACK. The paths of ROUTE_STATIC are those web_find_file() knows.
 */
enum api_route apiparse_route(const char *path, int64_t *id);

/* True for routes that need a bearer token (all but health, metrics and the dashboard's files). */
bool apiparse_route_needs_token(enum api_route r);

/*
 * Extracts the token of an "Authorization: Bearer TOKEN" header value.
 * Returns 0 with *token and *len set (pointing into header), or -1.
 */
int apiparse_bearer(const char *header, const char **token, size_t *len);

/*
 * Whether a query parameter's name or value, as libmicrohttpd decoded it
 * (size bytes at s), reads as the C string it is: false when it holds a NUL
 * byte (%00), after which every C string function stops ("site=s1%00x"
 * would read as s1). The API answers such a request 400.
 */
bool apiparse_arg_ok(const char *s, size_t size);

/* Raw query parameters of GET /api/v1/readings (NULL = absent). */
struct apiparse_readings_args {
	const char *site, *dev, *t, *from, *to, *limit;
};

/*
 * Validates the parameters into a query (site and dev point into args).
 * Returns 0, or -1 with a message for the client in err.
 */
int apiparse_readings(const struct apiparse_readings_args *args, struct store_readings_query *q,
		      char *err, size_t errlen);

/* Raw query parameters of GET /api/v1/alerts (NULL = absent). */
struct apiparse_alerts_args {
	const char *state, *site, *severity, *limit;
};

/* Validates them into a query (strings point into args). 0, or -1 with err. */
int apiparse_alerts(const struct apiparse_alerts_args *args, struct store_alerts_query *q,
		    char *err, size_t errlen);

/*
 * Who acknowledges, from the optional JSON body of POST .../ack,
 * {"by":"NAME"}: NAME (1..API_ACKED_BY_MAX bytes of printable UTF-8, no
 * control characters, also no NUL written as \u0000) is copied into out
 * (API_ACKED_BY_MAX + 1 bytes).
 * Returns 1 with out set, 0 for an empty body or one without "by", or -1
 * with err for a body that is not such an object.
 */
int apiparse_acked_by(const char *body, size_t len, char *out, char *err, size_t errlen);

/* GET /api/v1/summaries?site=S[&from=TS][&to=TS][&limit=N]: periods starting in [from, to]. */
struct apiparse_summaries_query {
	const char *site;
	int64_t from, to, limit;
};
int apiparse_summaries(const char *site, const char *from, const char *to, const char *limit,
		       struct apiparse_summaries_query *q, char *err, size_t errlen);

/*
 * Validates the optional site and current of GET /api/v1/devices:
 * *with_current is whether current=1 asked for the chargers' current state
 * (absent or 0: not; only with a site). 0, or -1 with err.
 */
int apiparse_devices(const char *site, const char *current, bool *with_current, char *err,
		     size_t errlen);

#endif
