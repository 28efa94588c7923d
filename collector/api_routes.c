/*
 * api_routes.c - what each HTTP route answers (see api_int.h; the routes
 * and their answers are docs/protocol.md's). Every list is built into one
 * buffer bounded by RESPONSE_MAX; JSON the collector wrote itself (stored
 * bodies, summaries) is spliced as it is.
 */
#include "api_int.h"

#include "rules.h"
#include "web.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define RESPONSE_MAX (64 * 1024 * 1024)
#define WRITER_STALL_MS 10000 /* no commit for this long: the writer is stuck */
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
	return api_send_json(c, rq, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, &b);
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
		return api_send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return api_send_buf(c, rq, MHD_HTTP_OK, &b, "text/plain; version=0.0.4; charset=utf-8");
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

/* The answer to a store read that found every read connection busy (STORE_READ_WAIT_MS). */
static enum MHD_Result send_store_busy(struct MHD_Connection *c, const struct request *rq)
{
	return api_send_error(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "store busy, try again");
}

/*
 * The answer to a list that could not be built (store_rc: the read's
 * result). One that outgrew RESPONSE_MAX says so, the same on every route
 * (the client can ask for less: a smaller limit, a shorter range, one
 * site); every reader busy is a 503 to try again; anything else is the
 * store's failure, which the store has logged.
 */
static enum MHD_Result send_list_error(struct MHD_Connection *c, const struct request *rq,
				       const struct list_ctx *l, int store_rc)
{
	if (store_rc == SP_EBUSY)
		return send_store_busy(c, rq);
	return api_send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
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
		return send_list_error(c, rq, &l, rc);
	}
	return api_send_json(c, rq, MHD_HTTP_OK, &b);
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
	/* latest, info and current are JSON the collector wrote itself: spliced as they are */
	if (!rc)
		rc = sp_buf_printf(b, ",\"latest\":%s,\"info\":%s,\"active_alerts\":%lld",
				   r->latest ? r->latest : "null", r->meta ? r->meta : "null",
				   (long long)r->active_alerts);
	if (!rc && r->current)
		rc = sp_buf_printf(b, ",\"current\":%s", r->current);
	if (!rc)
		rc = sp_buf_putc(b, '}');
	l->rc = rc;
	return rc;
}

static enum MHD_Result route_devices(struct api *a, struct MHD_Connection *c,
				      const struct request *rq)
{
	const char *site = api_arg(c, "site");
	char err[128];
	bool current;
	if (apiparse_devices(site, api_arg(c, "current"), &current, err, sizeof(err)))
		return api_send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);
	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	sp_buf_putc(&b, '[');
	int rc = store_r_devices(a->p.store, site, sp_now_ms(), a->offline_ms,
				 current ? STORE_DEVICES_CURRENT : 0, device_row, &l);
	if (!rc && !l.rc)
		l.rc = sp_buf_putc(&b, ']');
	if (rc || l.rc) {
		sp_buf_free(&b);
		return send_list_error(c, rq, &l, rc);
	}
	return api_send_json(c, rq, MHD_HTTP_OK, &b);
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
	struct apiparse_readings_args args = {api_arg(c, "site"), api_arg(c, "dev"),  api_arg(c, "t"),
					      api_arg(c, "from"), api_arg(c, "to"), api_arg(c, "limit")};
	struct store_readings_query q;
	char err[128];
	if (apiparse_readings(&args, &q, err, sizeof(err)))
		return api_send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);

	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	sp_buf_putc(&b, '[');
	int rc = store_r_readings(a->p.store, &q, reading_row, &l);
	if (rc == SP_ENOTFOUND) {
		sp_buf_free(&b);
		return api_send_error(c, rq, MHD_HTTP_NOT_FOUND, "unknown device %s/%s", q.site, q.dev);
	}
	if (rc >= 0 && !l.rc)
		l.rc = sp_buf_putc(&b, ']');
	if (rc < 0 || l.rc) {
		sp_buf_free(&b);
		return send_list_error(c, rq, &l, rc);
	}
	return api_send_json(c, rq, MHD_HTTP_OK, &b);
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
	struct apiparse_alerts_args args = {api_arg(c, "state"), api_arg(c, "site"), api_arg(c, "severity"),
					    api_arg(c, "limit")};
	struct store_alerts_query q;
	char err[128];
	if (apiparse_alerts(&args, &q, err, sizeof(err)))
		return api_send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);
	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	sp_buf_putc(&b, '[');
	int rc = store_r_alerts(a->p.store, &q, alert_row, &l);
	if (rc >= 0 && !l.rc)
		l.rc = sp_buf_putc(&b, ']');
	if (rc < 0 || l.rc) {
		sp_buf_free(&b);
		return send_list_error(c, rq, &l, rc);
	}
	return api_send_json(c, rq, MHD_HTTP_OK, &b);
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
	int src = store_r_alert_counts(a->p.store, true, counts);
	if (src == SP_EBUSY)
		return send_store_busy(c, rq);
	if (src != 0)
		return api_send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "store unavailable");
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
		return api_send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return api_send_json(c, rq, MHD_HTTP_OK, &b);
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
		return api_send_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return api_send_json(c, rq, MHD_HTTP_OK, &b);
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
	if (apiparse_summaries(api_arg(c, "site"), api_arg(c, "from"), api_arg(c, "to"), api_arg(c, "limit"), &q, err,
			       sizeof(err)))
		return api_send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);
	struct sp_buf b = SP_BUF_INIT(RESPONSE_MAX);
	struct list_ctx l = {&b, 0, 0, a->p.conf};
	sp_buf_putc(&b, '[');
	int rc = store_r_summaries(a->p.store, q.site, q.from, q.to, q.limit, summary_row, &l);
	if (rc >= 0 && !l.rc)
		l.rc = sp_buf_putc(&b, ']');
	if (rc < 0 || l.rc) {
		sp_buf_free(&b);
		return send_list_error(c, rq, &l, rc);
	}
	return api_send_json(c, rq, MHD_HTTP_OK, &b);
}

/* GET / and the dashboard's other files: static bytes, no token (see DASHBOARD_CSP). */
static enum MHD_Result route_static(struct MHD_Connection *c, const struct request *rq,
				    const char *url)
{
	struct web_file f;
	if (web_find_file(url, &f) != 0)
		return api_send_error(c, rq, MHD_HTTP_NOT_FOUND, "not found");
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
		return api_send_error(c, rq, MHD_HTTP_BAD_REQUEST, "%s", err);
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
			       ? api_send_error(c, rq, MHD_HTTP_NOT_FOUND, "no alert %lld", (long long)id)
			       : api_send_error(c, rq, MHD_HTTP_CONFLICT, "alert %lld is already acknowledged",
					    (long long)id);
	}
	if (rc || l.rc) {
		sp_buf_free(&b);
		return api_send_error(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "store unavailable, try again");
	}
	SP_INFO("api", "alert %lld acknowledged by %s", (long long)id, by);
	return api_send_json(c, rq, MHD_HTTP_OK, &b);
}

enum MHD_Result api_route(struct api *a, struct MHD_Connection *c, const struct request *rq,
			  const char *url)
{
	static enum MHD_Result (*const handlers[])(struct api *, struct MHD_Connection *,
						   const struct request *) = {
		[ROUTE_HEALTHZ] = route_healthz, [ROUTE_METRICS] = route_metrics,
		[ROUTE_SITES] = route_sites,     [ROUTE_DEVICES] = route_devices,
		[ROUTE_READINGS] = route_readings, [ROUTE_ALERTS] = route_alerts,
		[ROUTE_SUMMARIES] = route_summaries, [ROUTE_ALERT_COUNTS] = route_alert_counts,
		[ROUTE_ME] = route_me,
	};
	if (rq->route == ROUTE_ALERT_ACK)
		return route_alert_ack(a, c, rq);
	if (rq->route == ROUTE_STATIC)
		return route_static(c, rq, url);
	return handlers[rq->route](a, c, rq);
}
