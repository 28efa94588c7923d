/*
 * api.c - HTTP routes over libmicrohttpd (see api.h). The only file that
 * includes microhttpd.h.
 *
 * Every /api/ route needs "Authorization: Bearer TOKEN"; tokens are kept as
 * digests and compared in constant time (tokens.c), never logged. Errors
 * are {"error":"…"} with a 4xx/5xx status; unknown query parameters are
 * ignored. The dashboard's files (web.c) are served without a token, with
 * a strict Content-Security-Policy: the data they fetch needs the token.
 */
#include "api.h"

#include "apiparse.h"
#include "rules.h"
#include "web.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/ids.h"
#include "sitepulse/log.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define REQUEST_MEMORY (32 * 1024)  /* request line + headers of one connection */
#define BODY_MAX (64 * 1024)        /* request bodies larger than this are refused */
#define ACK_BODY_MAX 1024           /* the one body a route reads: {"by":"name"} */
#define RESPONSE_MAX (64 * 1024 * 1024)
#define PEM_MAX (1024 * 1024)           /* certificate chain or key file */
/*
 * Refused requests are logged at most this many to a window: a hostile
 * client sending thousands gets the first few logged, the rest counted
 * (sitepulse_http_refused_total), and their number logged with the next.
 */
#define REFUSAL_LOG_BURST 10
#define REFUSAL_LOG_WINDOW_MS 60000
#define WRITER_STALL_MS 10000           /* no commit for this long: the writer is stuck */
/*
 * sitepulse_devices{kind,online} visits every device (~40 ms at 100,000):
 * computed at most this often, whoever scrapes how often.
 */
#define DEVICE_COUNTS_TTL_MS 5000
/*
 * The dashboard may run only its own script and style, talk only to this
 * server, and be framed by no one; no inline script or style, no form
 * submission, no <base>. Device-supplied text that slipped into markup could
 * still run nothing (docs/dashboard.md).
 */
#define DASHBOARD_CSP                                                                          \
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "        \
	"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

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

/* ---------------------------------------------------------------- responses */

/*
 * Queues b as the answer. allow: the route's methods for the Allow header a
 * 405 must carry (RFC 9110 §15.5.6), else NULL.
 */
static enum MHD_Result send_buf_allow(struct MHD_Connection *c, unsigned status,
				      struct sp_buf *b, const char *type, const char *allow)
{
	/* ownership of the buffer passes to libmicrohttpd (freed with free()) */
	if (b->data == NULL && sp_buf_reserve(b, 0))
		return MHD_NO;
	struct MHD_Response *r = MHD_create_response_from_buffer(b->len, b->data,
								 MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		sp_buf_free(b);
		return MHD_NO;
	}
	b->data = NULL;
	b->len = b->cap = 0;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, struct sp_buf *b,
				const char *type)
{
	return send_buf_allow(c, status, b, type, NULL);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, struct sp_buf *b)
{
	return send_buf(c, status, b, "application/json");
}

/* The client's address, numeric, for the log; "?" when unknown. */
static void client_address(struct MHD_Connection *c, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	socklen_t salen = sa == NULL               ? 0
			  : sa->sa_family == AF_INET  ? sizeof(struct sockaddr_in)
			  : sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						      : 0;
	if (salen == 0 || getnameinfo(sa, salen, out, (socklen_t)len, NULL, 0, NI_NUMERICHOST))
		snprintf(out, len, "?");
}

/*
 * Refusals are logged rate-limited across the HTTP threads: true if this
 * one may be (after a line saying how many were not, when some were not).
 */
static bool refusal_log_allowed(struct api *a)
{
	uint64_t suppressed;
	pthread_mutex_lock(&a->refusal_lock);
	bool log = sp_ratelimit_allow(&a->refusal_log, sp_mono_ms(), REFUSAL_LOG_BURST,
				      REFUSAL_LOG_WINDOW_MS, &suppressed);
	pthread_mutex_unlock(&a->refusal_lock);
	if (suppressed)
		SP_INFO("api", "(%llu more refused requests not logged; counted in "
			       "sitepulse_http_refused_total)",
			(unsigned long long)suppressed);
	return log;
}

/*
 * Every refusal leaves a trace: counted by status (METRICS_REFUSED_CLOSED:
 * the connection closed without an answer) and logged, rate-limited. The line names the client,
 * method, path and the answer's message; never the query string or a
 * header, which may carry a token.
 */
static void note_refusal(struct MHD_Connection *c, const struct request *rq, unsigned status,
			 const char *msg)
{
	struct api *a = rq->api;
	char addr[64], st[16];
	metrics_count_refused(a->p.metrics, status);
	if (!refusal_log_allowed(a))
		return;
	client_address(c, addr, sizeof(addr));
	if (status)
		snprintf(st, sizeof(st), "%u", status);
	else
		snprintf(st, sizeof(st), "closed");
	SP_INFO("api", "refused %s %s from %s: %s %s", rq->method, rq->path, addr, st, msg);
}

static enum MHD_Result send_error(struct MHD_Connection *c, const struct request *rq,
				  unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* {"error":msg} with status; allow as in send_buf_allow. */
static enum MHD_Result send_error_msg(struct MHD_Connection *c, unsigned status,
				      const char *allow, const char *msg)
{
	struct sp_buf b = SP_BUF_INIT(0);
	if (sp_buf_puts(&b, "{\"error\":") || sp_buf_json_str(&b, msg, strlen(msg)) ||
	    sp_buf_putc(&b, '}')) {
		sp_buf_free(&b);
		return MHD_NO;
	}
	return send_buf_allow(c, status, &b, "application/json", allow);
}

/* Refuses the request: {"error":…} with status, counted and logged (note_refusal). */
static enum MHD_Result send_error(struct MHD_Connection *c, const struct request *rq,
				  unsigned status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	note_refusal(c, rq, status, msg);
	return send_error_msg(c, status, NULL, msg);
}

/* 405 with the methods the route serves, in the Allow header and in the message. */
static enum MHD_Result send_not_allowed(struct MHD_Connection *c, const struct request *rq,
					const char *allow)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "method not allowed: use %s", allow);
	note_refusal(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, msg);
	return send_error_msg(c, MHD_HTTP_METHOD_NOT_ALLOWED, allow, msg);
}

/* ---------------------------------------------------------------- auth */

static enum token_role authorize(struct api *a, struct MHD_Connection *c, size_t *pos)
{
	const char *tok;
	size_t len;
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	*pos = 0;
	if (apiparse_bearer(h, &tok, &len) != 0)
		return TOKEN_NONE;
	return tokens_check(a->p.tokens, tok, len, pos);
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result arg_check(void *cls, enum MHD_ValueKind kind, const char *key,
				 size_t key_size, const char *value, size_t value_size)
{
	bool *ok = cls;
	(void)kind;
	*ok = apiparse_arg_ok(key, key_size) && apiparse_arg_ok(value, value_size);
	return *ok ? MHD_YES : MHD_NO;
}

/*
 * Whether every query parameter reads as the C string arg() hands out: one
 * with a NUL (%00) would be read cut short ("site=s1%00x" as s1).
 */
static bool args_ok(struct MHD_Connection *c)
{
	bool ok = true;
	MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, arg_check, &ok);
	return ok;
}

/* ---------------------------------------------------------------- routes */

/*
 * The two queues between MQTT and the database as one: what waits for the
 * writer. blocked counts only the ingest queue: how often the broker was
 * held back (the parser waiting on the writer's queue is the same episode).
 */
static void queue_stats_both(struct api *a, struct queue_stats *out)
{
	struct queue_stats raw, parsed;
	queue_get_stats(a->p.queue, &raw);
	queue_get_stats(a->p.parsed, &parsed);
	*out = raw;
	out->depth += parsed.depth;
	out->bytes += parsed.bytes;
	out->cap_bytes += parsed.cap_bytes;
}

static enum MHD_Result route_healthz(struct api *a, struct MHD_Connection *c,
				      const struct request *rq)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct queue_stats qs;
	(void)rq; /* health never refuses: 503 is an answer about the collector */
	bool mqtt = atomic_load(&a->p.metrics->mqtt_connected);
	int64_t last = atomic_load(&a->p.metrics->last_commit_ms);
	int64_t last_mono = atomic_load(&a->p.metrics->last_commit_mono);
	/*
	 * the writer commits at least once a second (heartbeat): silence means it
	 * is stuck; timed by the monotonic clock, which setting the wall clock does not move
	 */
	bool stalled = last_mono > 0 && sp_mono_ms() - last_mono > WRITER_STALL_MS;
	/*
	 * store_r_ping waits at most STORE_PING_WAIT_MS for a reader; all of
	 * them busy with slow queries (1) is a store being read, not failing:
	 * health is the writer's (store_ok, stalled) and the broker's.
	 */
	bool store = atomic_load(&a->p.metrics->store_ok) && store_r_ping(a->p.store) >= 0;
	bool ok = mqtt && store && !stalled;
	queue_stats_both(a, &qs);
	if (sp_buf_printf(&b,
			  "{\"status\":\"%s\",\"mqtt\":\"%s\",\"store\":\"%s\",\"queue_depth\":%zu,"
			  "\"last_commit_ms\":%lld}",
			  ok ? "ok" : "unhealthy", mqtt ? "connected" : "disconnected",
			  !store ? "failing" : stalled ? "stalled" : "ok", qs.depth, (long long)last)) {
		sp_buf_free(&b);
		return MHD_NO;
	}
	return send_json(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, &b);
}

/* The device gauges, recomputed when older than DEVICE_COUNTS_TTL_MS. */
static void device_counts(struct api *a, struct metrics_gauges *g)
{
	pthread_mutex_lock(&a->counts_lock);
	int64_t now = sp_mono_ms();
	if (a->counts_at_ms == 0 || now - a->counts_at_ms >= DEVICE_COUNTS_TTL_MS) {
		a->counts_valid = store_r_device_counts(a->p.store, sp_now_ms(), a->offline_ms,
							a->counts) == 0;
		a->counts_at_ms = now;
	}
	memcpy(g->devices, a->counts, sizeof(g->devices));
	g->devices_valid = a->counts_valid;
	pthread_mutex_unlock(&a->counts_lock);
}

static enum MHD_Result route_metrics(struct api *a, struct MHD_Connection *c,
				      const struct request *rq)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct metrics_gauges g;
	struct queue_stats qs;
	memset(&g, 0, sizeof(g));
	queue_stats_both(a, &qs);
	g.queue_depth = qs.depth;
	g.queue_bytes = qs.bytes;
	g.queue_cap_bytes = qs.cap_bytes;
	g.queue_blocked = qs.blocked;
	device_counts(a, &g);
	g.alerts_valid = store_r_alert_counts(a->p.store, false, g.alerts) == 0;
	if (metrics_render(a->p.metrics, &g, &b)) {
		sp_buf_free(&b);
		return send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return send_buf(c, MHD_HTTP_OK, &b, "text/plain; version=0.0.4; charset=utf-8");
}

struct list_ctx {
	struct sp_buf *b;
	size_t n;
	int rc;
	const struct collector_conf *conf; /* for the sites' time zones */
};

static int put_str_field(struct sp_buf *b, const char *name, const char *v)
{
	int rc = sp_buf_printf(b, ",\"%s\":", name);
	return rc ? rc : v ? sp_buf_json_str(b, v, strlen(v)) : sp_buf_puts(b, "null");
}

/*
 * The answer to a list that could not be built. One that outgrew
 * RESPONSE_MAX says so, the same on every route (the client can ask for
 * less: a smaller limit, a shorter range, one site); anything else is the
 * store's failure, which the store has logged.
 */
static enum MHD_Result send_list_error(struct MHD_Connection *c, const struct request *rq,
				       const struct list_ctx *l)
{
	return send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
			  l->rc == SP_ETOOBIG ? "result too large" : "store unavailable");
}

static int site_row(void *ctx, const struct store_site_row *r)
{
	struct list_ctx *l = ctx;
	struct sp_buf *b = l->b;
	l->rc = sp_buf_puts(b, l->n++ ? ",{\"site\":" : "{\"site\":");
	if (!l->rc)
		l->rc = sp_buf_json_str(b, r->site, strlen(r->site));
	if (!l->rc)
		l->rc = sp_buf_printf(b, ",\"devices\":%lld,\"online\":%lld,\"active_alerts\":%lld",
				      (long long)r->devices, (long long)r->online,
				      (long long)r->active_alerts);
	/* an extension of CONTRACT §5: the zone the site's times are shown in (§1) */
	if (!l->rc)
		l->rc = put_str_field(b, "timezone", collector_conf_timezone(l->conf, r->site));
	if (!l->rc)
		l->rc = sp_buf_putc(b, '}');
	return l->rc;
}

static enum MHD_Result route_sites(struct api *a, struct MHD_Connection *c,
				    const struct request *rq)
{
	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	sp_buf_putc(&b, '[');
	int rc = store_r_sites(a->p.store, sp_now_ms(), a->offline_ms, site_row, &l);
	if (!rc && !l.rc)
		l.rc = sp_buf_putc(&b, ']');
	if (rc || l.rc) {
		sp_buf_free(&b);
		return send_list_error(c, rq, &l);
	}
	return send_json(c, MHD_HTTP_OK, &b);
}

static int device_row(void *ctx, const struct store_device_row *r)
{
	struct list_ctx *l = ctx;
	struct sp_buf *b = l->b;
	int rc = sp_buf_puts(b, l->n++ ? ",{\"site\":" : "{\"site\":");
	if (!rc)
		rc = sp_buf_json_str(b, r->site, strlen(r->site));
	if (!rc)
		rc = put_str_field(b, "dev", r->dev);
	if (!rc)
		rc = put_str_field(b, "kind", r->kind);
	if (!rc)
		rc = put_str_field(b, "agent", r->agent);
	if (!rc)
		rc = sp_buf_printf(b, ",\"online\":%s,\"last_seen\":", r->online ? "true" : "false");
	if (!rc)
		rc = r->last_seen > 0 ? sp_buf_json_int(b, r->last_seen) : sp_buf_puts(b, "null");
	/* latest and info are JSON the collector wrote itself: spliced as they are */
	if (!rc)
		rc = sp_buf_printf(b, ",\"latest\":%s,\"info\":%s,\"active_alerts\":%lld}",
				   r->latest ? r->latest : "null", r->meta ? r->meta : "null",
				   (long long)r->active_alerts);
	l->rc = rc;
	return rc;
}

static enum MHD_Result route_devices(struct api *a, struct MHD_Connection *c,
				      const struct request *rq)
{
	const char *site = arg(c, "site");
	char err[128];
	if (apiparse_devices(site, err, sizeof(err)))
		return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);
	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	sp_buf_putc(&b, '[');
	int rc = store_r_devices(a->p.store, site, sp_now_ms(), a->offline_ms, device_row, &l);
	if (!rc && !l.rc)
		l.rc = sp_buf_putc(&b, ']');
	if (rc || l.rc) {
		sp_buf_free(&b);
		return send_list_error(c, rq, &l);
	}
	return send_json(c, MHD_HTTP_OK, &b);
}

static int reading_row(void *ctx, const char *body, size_t len)
{
	struct list_ctx *l = ctx;
	l->rc = l->n++ ? sp_buf_putc(l->b, ',') : 0;
	if (!l->rc)
		l->rc = sp_buf_append(l->b, body, len);
	return l->rc;
}

static enum MHD_Result route_readings(struct api *a, struct MHD_Connection *c,
				       const struct request *rq)
{
	struct apiparse_readings_args args = {arg(c, "site"), arg(c, "dev"),  arg(c, "t"),
					      arg(c, "from"), arg(c, "to"), arg(c, "limit")};
	struct store_readings_query q;
	char err[128];
	if (apiparse_readings(&args, &q, err, sizeof(err)))
		return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);

	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	sp_buf_putc(&b, '[');
	int rc = store_r_readings(a->p.store, &q, reading_row, &l);
	if (rc == SP_ENOTFOUND) {
		sp_buf_free(&b);
		return send_error(c, rq, MHD_HTTP_NOT_FOUND, "unknown device %s/%s", q.site, q.dev);
	}
	if (rc >= 0 && !l.rc)
		l.rc = sp_buf_putc(&b, ']');
	if (rc < 0 || l.rc) {
		sp_buf_free(&b);
		return send_list_error(c, rq, &l);
	}
	return send_json(c, MHD_HTTP_OK, &b);
}

/* An alert as CONTRACT §4 shows it. */
static int put_alert(struct sp_buf *b, const struct store_alert_row *r)
{
	int rc = sp_buf_printf(b, "{\"id\":%lld", (long long)r->id);
	if (!rc)
		rc = put_str_field(b, "rule", r->rule);
	if (!rc)
		rc = put_str_field(b, "site", r->site);
	if (!rc)
		rc = put_str_field(b, "dev", r->dev);
	if (!rc)
		rc = r->port > 0 ? sp_buf_printf(b, ",\"port\":%d", (int)r->port)
				 : sp_buf_puts(b, ",\"port\":null");
	if (!rc)
		rc = put_str_field(b, "severity", r->severity);
	if (!rc)
		rc = put_str_field(b, "state", r->state);
	if (!rc)
		rc = sp_buf_printf(b, ",\"opened_at\":%lld", (long long)r->opened_at);
	if (!rc)
		rc = r->cleared_at ? sp_buf_printf(b, ",\"cleared_at\":%lld", (long long)r->cleared_at)
				   : sp_buf_puts(b, ",\"cleared_at\":null");
	if (!rc)
		rc = r->acked_at ? sp_buf_printf(b, ",\"acked_at\":%lld", (long long)r->acked_at)
				 : sp_buf_puts(b, ",\"acked_at\":null");
	if (!rc)
		rc = put_str_field(b, "acked_by", r->acked_by);
	if (!rc)
		rc = put_str_field(b, "detail", r->detail);
	return rc ? rc : sp_buf_putc(b, '}');
}

static int alert_row(void *ctx, const struct store_alert_row *r)
{
	struct list_ctx *l = ctx;
	l->rc = l->n++ ? sp_buf_putc(l->b, ',') : 0;
	if (!l->rc)
		l->rc = put_alert(l->b, r);
	return l->rc;
}

static enum MHD_Result route_alerts(struct api *a, struct MHD_Connection *c,
				     const struct request *rq)
{
	struct apiparse_alerts_args args = {arg(c, "state"), arg(c, "site"), arg(c, "severity"),
					    arg(c, "limit")};
	struct store_alerts_query q;
	char err[128];
	if (apiparse_alerts(&args, &q, err, sizeof(err)))
		return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);
	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	sp_buf_putc(&b, '[');
	int rc = store_r_alerts(a->p.store, &q, alert_row, &l);
	if (rc >= 0 && !l.rc)
		l.rc = sp_buf_putc(&b, ']');
	if (rc < 0 || l.rc) {
		sp_buf_free(&b);
		return send_list_error(c, rq, &l);
	}
	return send_json(c, MHD_HTTP_OK, &b);
}

/*
 * GET /api/v1/alerts/counts, an extension of CONTRACT §5: the active alerts
 * per severity, however many. The lists stop at their limit (newest first),
 * so a client that shows them takes its counts from here (docs/protocol.md).
 */
static enum MHD_Result route_alert_counts(struct api *a, struct MHD_Connection *c,
					   const struct request *rq)
{
	int64_t counts[STORE_ALERT_STATES][STORE_ALERT_SEVERITIES];
	struct sp_buf b = SP_BUF_INIT(0);
	if (store_r_alert_counts(a->p.store, true, counts) != 0)
		return send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "store unavailable");
	int rc = sp_buf_puts(&b, "{\"active\":{");
	for (int v = 0; !rc && v < STORE_ALERT_SEVERITIES; v++) {
		int64_t n = 0; /* active_only: the other states count 0 */
		for (int s = 0; s < STORE_ALERT_STATES; s++)
			n += counts[s][v];
		rc = sp_buf_printf(&b, "%s\"%s\":%lld", v ? "," : "",
				   alert_severity_name((enum alert_severity)v), (long long)n);
	}
	if (rc || sp_buf_puts(&b, "}}")) {
		sp_buf_free(&b);
		return send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return send_json(c, MHD_HTTP_OK, &b);
}

/*
 * GET /api/v1/me, an extension of CONTRACT §5: the role of the token that
 * asks, {"role":"viewer"} or {"role":"operator"}, so the dashboard offers
 * acknowledging only to those who may (docs/protocol.md). Nothing about the
 * token itself: it is the caller's already.
 */
static enum MHD_Result route_me(struct api *a, struct MHD_Connection *c, const struct request *rq)
{
	struct sp_buf b = SP_BUF_INIT(0);
	(void)a;
	if (sp_buf_printf(&b, "{\"role\":\"%s\"}",
			  rq->role == TOKEN_OPERATOR ? "operator" : "viewer")) {
		sp_buf_free(&b);
		return send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return send_json(c, MHD_HTTP_OK, &b);
}

static int summary_row(void *ctx, const struct store_summary_row *r)
{
	struct list_ctx *l = ctx;
	l->rc = l->n++ ? sp_buf_putc(l->b, ',') : 0;
	/* the body is JSON the collector built itself: spliced as it is */
	if (!l->rc)
		l->rc = sp_buf_append(l->b, r->body, r->body_len);
	return l->rc;
}

static enum MHD_Result route_summaries(struct api *a, struct MHD_Connection *c,
				        const struct request *rq)
{
	struct apiparse_summaries_query q;
	char err[128];
	if (apiparse_summaries(arg(c, "site"), arg(c, "from"), arg(c, "to"), arg(c, "limit"), &q, err,
			       sizeof(err)))
		return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);
	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	sp_buf_putc(&b, '[');
	int rc = store_r_summaries(a->p.store, q.site, q.from, q.to, q.limit, summary_row, &l);
	if (rc >= 0 && !l.rc)
		l.rc = sp_buf_putc(&b, ']');
	if (rc < 0 || l.rc) {
		sp_buf_free(&b);
		return send_list_error(c, rq, &l);
	}
	return send_json(c, MHD_HTTP_OK, &b);
}

/* GET / and the dashboard's other files: static bytes, no token (see DASHBOARD_CSP). */
static enum MHD_Result route_static(struct MHD_Connection *c, const struct request *rq,
				    const char *url)
{
	struct web_file f;
	if (web_find_file(url, &f) != 0)
		return send_error(c, rq, MHD_HTTP_NOT_FOUND, "not found");
	/* PERSISTENT: static bytes, which libmicrohttpd neither copies nor frees */
	struct MHD_Response *r =
		MHD_create_response_from_buffer(f.len, (void *)f.data, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f.content_type);
	/* revalidated on every load, so an upgraded collector's dashboard shows at once */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(r, "Content-Security-Policy", DASHBOARD_CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static int acked_row(void *ctx, const struct store_alert_row *r)
{
	struct list_ctx *l = ctx;
	l->rc = put_alert(l->b, r);
	return l->rc;
}

static enum MHD_Result route_alert_ack(struct api *a, struct MHD_Connection *c,
				       const struct request *rq)
{
	char by[API_ACKED_BY_MAX + 1], err[128];
	const struct sp_buf *body = &rq->body;
	int64_t id = rq->id;
	int who = apiparse_acked_by(body->data ? body->data : "", body->len, by, err, sizeof(err));
	if (who < 0)
		return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);
	/*
	 * Who acts, when the body does not say: the operator token's place in
	 * [api] operator_tokens. Every viewer reads acked_by, so it must carry
	 * nothing derived from the secret (a hash prefix would let short tokens
	 * be guessed offline).
	 */
	if (who == 0)
		snprintf(by, sizeof(by), "operator-%zu", rq->token_pos);
	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	int rc = store_ack_alert(a->p.store, id, by, sp_now_ms(), acked_row, &l);
	if (rc == SP_ENOTFOUND || rc == SP_EEXIST) {
		sp_buf_free(&b);
		return rc == SP_ENOTFOUND
			       ? send_error(c, rq, MHD_HTTP_NOT_FOUND, "no alert %lld", (long long)id)
			       : send_error(c, rq, MHD_HTTP_CONFLICT, "alert %lld is already acknowledged",
					    (long long)id);
	}
	if (rc || l.rc) {
		sp_buf_free(&b);
		return send_error(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "store unavailable, try again");
	}
	SP_INFO("api", "alert %lld acknowledged by %s", (long long)id, by);
	return send_json(c, MHD_HTTP_OK, &b);
}

/* The body's size as the client declares it; 0 without Content-Length (chunked or none). */
static uint64_t declared_length(struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	if (v == NULL)
		return 0;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	/* libmicrohttpd refuses a malformed one itself; anything odd counts as too large */
	if (end == v || *end != '\0' || errno)
		return UINT64_MAX;
	return n;
}

/*
 * The first call, with the headers only: route, token, declared size and
 * method are judged here, so a request that will be refused is refused
 * before a byte of its body is read (libmicrohttpd then discards the body
 * and closes the connection). MHD_YES without a response: read the body.
 */
static enum MHD_Result on_headers(struct api *a, struct MHD_Connection *c, const char *url,
				  const char *method, struct request *rq)
{
	atomic_fetch_add(&a->p.metrics->http_requests, 1);
	rq->api = a;
	snprintf(rq->method, sizeof(rq->method), "%s", method);
	snprintf(rq->path, sizeof(rq->path), "%s", url);
	rq->route = apiparse_route(url, &rq->id);
	if (rq->route == ROUTE_NOT_FOUND)
		return send_error(c, rq, MHD_HTTP_NOT_FOUND, "not found");
	if (apiparse_route_needs_token(rq->route) &&
	    (rq->role = authorize(a, c, &rq->token_pos)) == TOKEN_NONE) {
		atomic_fetch_add(&a->p.metrics->http_unauthorized, 1);
		return send_error(c, rq, MHD_HTTP_UNAUTHORIZED, "missing or unknown bearer token");
	}
	/* before the method: 413 is the server-wide limit, whatever the route */
	if (declared_length(c) > BODY_MAX)
		return send_error(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
	if (rq->route == ROUTE_ALERT_ACK) {
		if (strcmp(method, "POST") != 0)
			return send_not_allowed(c, rq, "POST");
		if (rq->role != TOKEN_OPERATOR)
			return send_error(c, rq, MHD_HTTP_FORBIDDEN, "acknowledging needs an operator token");
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		return send_not_allowed(c, rq, "GET, HEAD");
	}
	return MHD_YES;
}

/* The last call: the whole request is in (its body at most BODY_MAX bytes). */
static enum MHD_Result dispatch(struct api *a, struct MHD_Connection *c, const char *url,
				const struct request *rq)
{
	static enum MHD_Result (*const handlers[])(struct api *, struct MHD_Connection *,
						   const struct request *) = {
		[ROUTE_HEALTHZ] = route_healthz, [ROUTE_METRICS] = route_metrics,
		[ROUTE_SITES] = route_sites,     [ROUTE_DEVICES] = route_devices,
		[ROUTE_READINGS] = route_readings, [ROUTE_ALERTS] = route_alerts,
		[ROUTE_SUMMARIES] = route_summaries, [ROUTE_ALERT_COUNTS] = route_alert_counts,
		[ROUTE_ME] = route_me,
	};
	if (rq->route == ROUTE_ALERT_ACK) {
		/* 413 stays the server-wide limit (BODY_MAX); this route's own is a bad request */
		if (rq->body_bytes > ACK_BODY_MAX)
			return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "body: at most %d bytes",
					  ACK_BODY_MAX);
		return route_alert_ack(a, c, rq);
	}
	if (!args_ok(c))
		return send_error(c, rq, MHD_HTTP_BAD_REQUEST, "query parameters: no NUL bytes (%%00)");
	if (rq->route == ROUTE_STATIC)
		return route_static(c, rq, url);
	return handlers[rq->route](a, c, rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	struct api *a = cls;
	struct request *rq = *state;
	(void)version;
	if (rq == NULL) {
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		*state = rq;
		return on_headers(a, c, url, method, rq);
	}
	if (*upload_size > 0) {
		/* keep what the ack route may read; count the rest and discard it */
		rq->body_bytes += *upload_size;
		if (rq->body_bytes > BODY_MAX) {
			/*
			 * A body without Content-Length (chunked) grew past the limit. No
			 * response can be queued while the body arrives (libmicrohttpd),
			 * so the connection is closed now rather than read to its end.
			 */
			note_refusal(c, rq, METRICS_REFUSED_CLOSED, "a chunked request body over 64 KiB");
			return MHD_NO;
		}
		if (rq->body_bytes <= ACK_BODY_MAX && sp_buf_append(&rq->body, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	return dispatch(a, c, url, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode code)
{
	(void)cls;
	(void)c;
	(void)code;
	struct request *rq = *state;
	if (rq)
		sp_buf_free(&rq->body);
	free(rq);
	*state = NULL;
}

/* libmicrohttpd's own messages; its format strings are trusted library constants. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * libmicrohttpd answers some requests by itself, before on_request sees
 * them (docs/protocol.md), and closes a connection over a connection limit
 * as it accepts it. Its log lines are all that is told of those, so they
 * are counted and logged like our own refusals: 1 and the status (or
 * METRICS_REFUSED_LIMIT) when line is one, else 0. Matched on the words
 * 0.9.75 (Debian 12) logs them with; lines worded otherwise stay at DEBUG.
 */
#define MHD_ERROR_ANSWER "Error processing request (HTTP response code is "
#define MHD_LIMIT_CLOSE "Server reached connection limit"

static int mhd_refusal(const char *line, unsigned *status)
{
	if (strncmp(line, MHD_LIMIT_CLOSE, strlen(MHD_LIMIT_CLOSE)) == 0) {
		*status = METRICS_REFUSED_LIMIT;
		return 1;
	}
	if (strncmp(line, MHD_ERROR_ANSWER, strlen(MHD_ERROR_ANSWER)) != 0)
		return 0;
	const char *p = line + strlen(MHD_ERROR_ANSWER);
	char *end;
	unsigned long v = strtoul(p, &end, 10);
	if (end == p || v < 400 || v > 599)
		return 0;
	*status = (unsigned)v;
	return 1;
}

/* What a client did to get libmicrohttpd's answer (docs/protocol.md). */
static const char *mhd_refusal_reason(unsigned status)
{
	switch (status) {
	case METRICS_REFUSED_LIMIT:
		return "closed as accepted: max_connections_per_ip or max_connections reached";
	case 400:
		return "a malformed request line or header";
	case 413:
		return "a Content-Length beyond what can be counted";
	case 414:
		return "a request line longer than the 32 KiB for request line and headers";
	case 431:
		return "headers beyond the 32 KiB for request line and headers";
	case 505:
		return "an HTTP version other than 1.0 or 1.1";
	default:
		return "refused by libmicrohttpd";
	}
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct api *a = cls;
	char line[512];
	unsigned status;
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (!mhd_refusal(line, &status)) {
		SP_DEBUG("api", "libmicrohttpd: %s", line);
		return;
	}
	metrics_count_refused(a->p.metrics, status);
	if (!refusal_log_allowed(a))
		return;
	/* libmicrohttpd names neither the client nor the request here */
	if (status == METRICS_REFUSED_LIMIT)
		SP_INFO("api", "refused a connection: %s", mhd_refusal_reason(status));
	else
		SP_INFO("api", "refused a request (libmicrohttpd's own answer): %u %s", status,
			mhd_refusal_reason(status));
}

/* Reads a whole (small) PEM file. NULL on failure (logged). */
static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	if (f == NULL) {
		SP_ERROR("api", "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	buf = calloc(1, PEM_MAX + 1);
	size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
	fclose(f);
	if (buf == NULL || n == 0 || n > PEM_MAX) {
		SP_ERROR("api", "%s: empty, unreadable or larger than %d bytes", path, PEM_MAX);
		free(buf);
		return NULL;
	}
	return buf;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

struct api *api_start(const struct api_params *p)
{
	struct api *a = calloc(1, sizeof(*a));
	char host[256], portstr[16];
	int port;
	struct addrinfo hints, *res = NULL;

	if (a == NULL)
		return NULL;
	a->p = *p;
	pthread_mutex_init(&a->counts_lock, NULL);
	pthread_mutex_init(&a->refusal_lock, NULL);
	a->offline_ms = p->conf->store.device_offline_s * 1000;
	if (sp_conf_parse_hostport(p->conf->api.listen, host, sizeof(host), &port)) {
		SP_ERROR("api", "bad listen address %s", p->conf->api.listen);
		goto fail;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%d", port);
	int gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0) {
		SP_ERROR("api", "cannot resolve listen address %s: %s", host, gai_strerror(gai));
		goto fail;
	}
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	if (res->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	bool tls = p->conf->api.tls_cert_file && *p->conf->api.tls_cert_file;
	if (tls) {
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			SP_ERROR("api", "this libmicrohttpd has no TLS support: serve HTTPS through a "
					"reverse proxy instead");
			freeaddrinfo(res);
			goto fail;
		}
		a->tls_cert = read_pem(p->conf->api.tls_cert_file);
		a->tls_key = read_pem(p->conf->api.tls_key_file ? p->conf->api.tls_key_file : "");
		if (a->tls_cert == NULL || a->tls_key == NULL) {
			freeaddrinfo(res);
			goto fail;
		}
		flags |= MHD_USE_TLS;
	}
	/* the TLS options come last so that, without TLS, MHD_OPTION_END ends the list early */
	a->daemon = MHD_start_daemon(
		flags, (uint16_t)port, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR, res->ai_addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)p->conf->api.threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)p->conf->api.max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)p->conf->api.max_connections_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->conf->api.timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)REQUEST_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
		a, tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, a->tls_cert,
		MHD_OPTION_HTTPS_MEM_KEY, a->tls_key, MHD_OPTION_END);
	freeaddrinfo(res);
	if (a->daemon == NULL) {
		SP_ERROR("api", "cannot listen on %s (address in use, not local, or bad TLS "
				"certificate/key?)",
			 p->conf->api.listen);
		goto fail;
	}
	if (tokens_count(p->tokens) == 0)
		SP_WARN("api", "no API tokens configured: every /api/ request will be refused");
	SP_INFO("api", "listening on %s://%s", tls ? "https" : "http", p->conf->api.listen);
	return a;
fail:
	api_stop(a);
	return NULL;
}

void api_stop(struct api *a)
{
	if (a == NULL)
		return;
	if (a->daemon)
		MHD_stop_daemon(a->daemon);
	free_secret(a->tls_key);
	free(a->tls_cert);
	pthread_mutex_destroy(&a->counts_lock);
	pthread_mutex_destroy(&a->refusal_lock);
	free(a);
}
