/* metrics.c - Prometheus text rendering of struct metrics (see metrics.h). */
#include "metrics.h"

#include "rules.h"
#include "store.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"

#include <stdint.h>
#include <string.h>

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	atomic_store(&m->store_ok, true);
	atomic_store(&m->store_ok_mono, sp_mono_ms());
}

/*
 * The labels of sitepulse_http_refused_total, in the order of
 * metrics.http_refused: every status the API refuses with (api.c), those
 * libmicrohttpd answers with by itself (api.c on_mhd_log), then "closed" (a
 * connection closed without an answer: a chunked body past the limit),
 * "limit" (closed at accept: a connection limit) and "other" (a status
 * missing here; should stay 0).
 */
static const struct {
	unsigned status;
	const char *label;
} refusals[METRICS_HTTP_REFUSALS] = {
	{400, "400"}, {401, "401"}, {403, "403"}, {404, "404"}, {405, "405"},   {409, "409"},
	{413, "413"}, {414, "414"}, {431, "431"}, {500, "500"}, {503, "503"}, {505, "505"},
	{METRICS_REFUSED_CLOSED, "closed"}, {METRICS_REFUSED_LIMIT, "limit"}, {UINT32_MAX, "other"},
};

void metrics_count_refused(struct metrics *m, unsigned status)
{
	int i = 0;
	while (i < METRICS_HTTP_REFUSALS - 1 && refusals[i].status != status)
		i++;
	atomic_fetch_add(&m->http_refused[i], 1);
}

#define LOAD(x) ((unsigned long long)atomic_load((atomic_uint_fast64_t *)&(x)))

static int counter(struct sp_buf *b, const char *name, const char *help, unsigned long long v)
{
	return sp_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name,
			     name, v);
}

static int gauge(struct sp_buf *b, const char *name, const char *help, long long v)
{
	return sp_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name,
			     v);
}

/* A counter family labelled by rejection reason (every reason, zeros included). */
static int by_reason(struct sp_buf *b, const char *name, const char *help,
		     const atomic_uint_fast64_t *arr)
{
	int rc = sp_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (int r = 1; r < SP_REJ_REASON_COUNT && rc == 0; r++)
		rc = sp_buf_printf(b, "%s{reason=\"%s\"} %llu\n", name,
				   sp_reject_name((enum sp_reject)r), LOAD(arr[r]));
	return rc;
}

int metrics_render(const struct metrics *m, const struct metrics_gauges *g, struct sp_buf *b)
{
	int rc = 0;

	rc |= counter(b, "sitepulse_messages_received_total",
		      "MQTT messages received (birth, data, state)", LOAD(m->messages_received));
	rc |= counter(b, "sitepulse_messages_stored_total", "data messages stored",
		      LOAD(m->messages_stored));
	rc |= counter(b, "sitepulse_messages_duplicate_total",
		      "data messages ignored because already stored", LOAD(m->messages_duplicate));
	rc |= by_reason(b, "sitepulse_messages_rejected_total", "messages rejected, by reason",
			m->messages_rejected);
	rc |= sp_buf_printf(b, "# HELP sitepulse_records_stored_total records stored, by kind\n"
			       "# TYPE sitepulse_records_stored_total counter\n");
	for (int k = 0; k < SP_REC_KIND_COUNT; k++)
		rc |= sp_buf_printf(b, "sitepulse_records_stored_total{kind=\"%s\"} %llu\n",
				    sp_rec_kind_name((enum sp_rec_kind)k), LOAD(m->records_stored[k]));
	rc |= by_reason(b, "sitepulse_records_rejected_total",
			"records (and birth device entries) rejected, by reason",
			m->records_rejected);
	rc |= counter(b, "sitepulse_messages_missing_total",
		      "data messages declared missing after the gap window",
		      LOAD(m->messages_missing));
	rc |= counter(b, "sitepulse_messages_recovered_total",
		      "messages declared missing that arrived later and were stored",
		      LOAD(m->messages_recovered));
	rc |= counter(b, "sitepulse_messages_dropped_store_total",
		      "messages in batches the store could not commit (agents resend data; births "
		      "and states are asked of the broker again)",
		      LOAD(m->messages_dropped_store));
	rc |= counter(b, "sitepulse_http_requests_total", "HTTP requests answered",
		      LOAD(m->http_requests));
	rc |= counter(b, "sitepulse_http_unauthorized_total",
		      "API requests refused for a missing or unknown token", LOAD(m->http_unauthorized));
	rc |= sp_buf_printf(b, "# HELP sitepulse_http_refused_total HTTP requests refused, by the "
			       "status of the error answer (\"closed\": without one)\n"
			       "# TYPE sitepulse_http_refused_total counter\n");
	for (int i = 0; i < METRICS_HTTP_REFUSALS; i++)
		rc |= sp_buf_printf(b, "sitepulse_http_refused_total{status=\"%s\"} %llu\n",
				    refusals[i].label, LOAD(m->http_refused[i]));
	rc |= counter(b, "sitepulse_births_total", "birth messages processed", LOAD(m->births));
	rc |= counter(b, "sitepulse_retained_requests_total",
		      "times the retained births and states were asked for again (after a store "
		      "failure dropped some)",
		      LOAD(m->retained_asked));
	rc |= counter(b, "sitepulse_retained_requests_deferred_total",
		      "requests for the retained births and states made within reask_interval_s of "
		      "the last (a flapping store): each waited for the interval's end, then counted "
		      "above",
		      LOAD(m->retained_deferred));
	rc |= counter(b, "sitepulse_states_total", "state messages processed", LOAD(m->states));
	rc |= counter(b, "sitepulse_acks_published_total", "end-to-end acks published",
		      LOAD(m->acks_published));
	rc |= counter(b, "sitepulse_batches_committed_total", "store transactions committed",
		      LOAD(m->batches_committed));
	rc |= counter(b, "sitepulse_batches_failed_total", "store transactions that failed",
		      LOAD(m->batches_failed));
	rc |= counter(b, "sitepulse_device_cache_evictions_total",
		      "devices evicted from the writer's cache to make room ([store] device_cache)",
		      LOAD(m->device_cache_evictions));
	rc |= counter(b, "sitepulse_door_counts_refused_total",
		      "lifts whose door cycles lift.door_reopen could not count: as many counts ran "
		      "already",
		      LOAD(m->door_counts_refused));
	rc |= counter(b, "sitepulse_chunks_compacted_total",
		      "small reading chunks merged into bigger ones by compaction",
		      LOAD(m->chunks_compacted));
	rc |= counter(b, "sitepulse_compactions_failed_total",
		      "compaction transactions that failed (readings stay as they were)",
		      LOAD(m->compactions_failed));
	rc |= gauge(b, "sitepulse_compaction_backlog_chunks",
		    "reading chunks due for compaction (written more than [store] compact_after_s "
		    "ago) that it has not looked at yet, at its last pass (an upper bound: counted "
		    "in chunk ids)",
		    (long long)atomic_load((atomic_int_fast64_t *)&m->compaction_backlog));
	rc |= gauge(b, "sitepulse_compaction_lag_seconds",
		    "how long the oldest of those chunks has been due, at compaction's last pass",
		    (long long)atomic_load((atomic_int_fast64_t *)&m->compaction_lag_ms) / 1000);
	rc |= counter(b, "sitepulse_mail_sent_total", "alert mails delivered", LOAD(m->mail_sent));
	rc |= counter(b, "sitepulse_mail_failed_total",
		      "alert mail delivery attempts that failed (each is retried), and alert "
		      "mails that could not be composed (lost: the log says why)",
		      LOAD(m->mail_failed));
	rc |= counter(b, "sitepulse_mail_superseded_total",
		      "reminder mails not sent because a later mail of their alert was queued, or "
		      "the alert was acknowledged or cleared, while they waited",
		      LOAD(m->mail_superseded));
	rc |= counter(b, "sitepulse_mail_paced_total",
		      "alert mails not sent because their condition already mailed too often this hour",
		      LOAD(m->mail_paced));
	rc |= counter(b, "sitepulse_mail_reminders_total",
		      "reminder mails queued for critical alerts nobody has acknowledged",
		      LOAD(m->mail_reminders));
	rc |= counter(b, "sitepulse_summaries_sent_total", "city summaries delivered",
		      LOAD(m->summaries_sent));
	rc |= counter(b, "sitepulse_summaries_failed_total",
		      "city summary delivery attempts that failed (each is retried)",
		      LOAD(m->summaries_failed));
	rc |= counter(b, "sitepulse_summaries_built_total", "city summaries built",
		      LOAD(m->summaries_built));
	rc |= counter(b, "sitepulse_summary_devices_left_out_total",
		      "devices left out of a city summary: more readings in the period than "
		      "[city] device_records_max",
		      LOAD(m->summary_devices_left_out));
	rc |= counter(b, "sitepulse_alerts_opened_total", "alerts opened by the rules",
		      LOAD(m->alerts_opened));
	rc |= counter(b, "sitepulse_alerts_adopted_total",
		      "alerts the rules opened that were still active in the store: kept as they "
		      "were, not opened nor mailed again",
		      LOAD(m->alerts_adopted));
	rc |= counter(b, "sitepulse_alerts_cleared_total", "alerts cleared by the rules",
		      LOAD(m->alerts_cleared));
	rc |= counter(b, "sitepulse_fault_raises_stale_total",
		      "late fault raises ignored: the same fault's clear, at or after them, came first",
		      LOAD(m->fault_raises_stale));
	rc |= counter(b, "sitepulse_device_clock_steps_total",
		      "device clocks set back: records kept arriving far behind the device's newest, "
		      "and its alert conditions moved to the new time",
		      LOAD(m->device_clock_steps));
	rc |= counter(b, "sitepulse_gateway_clocks_off_total",
		      "gateways' state messages whose ts was further off the collector's clock than "
		      "[store] clock_step_s: that gateway's clock is wrong",
		      LOAD(m->gateway_clocks_off));
	rc |= counter(b, "sitepulse_records_ahead_total",
		      "records stamped more than [store] clock_step_s after they arrived: a device's "
		      "(or its gateway's) clock runs ahead",
		      LOAD(m->records_ahead));
	rc |= gauge(b, "sitepulse_rule_conditions",
		    "conditions the alert rules track now (pending a hold, or alerted)",
		    (long long)LOAD(m->rule_conditions));
	if (g->alerts_valid) {
		rc |= sp_buf_printf(b, "# HELP sitepulse_alerts alerts by state and severity\n"
				       "# TYPE sitepulse_alerts gauge\n");
		for (int s = 0; s < STORE_ALERT_STATES; s++)
			for (int v = 0; v < ALERT_SEVERITY_COUNT; v++)
				rc |= sp_buf_printf(b, "sitepulse_alerts{state=\"%s\",severity=\"%s\"} %lld\n",
						    store_alert_states[s],
						    alert_severity_name((enum alert_severity)v),
						    (long long)g->alerts[s][v]);
	}
	rc |= gauge(b, "sitepulse_mail_queued", "alert mails waiting for delivery",
		    (long long)atomic_load((atomic_int_fast64_t *)&m->mail_queued));
	rc |= gauge(b, "sitepulse_summaries_queued", "city summaries waiting in the outbox",
		    (long long)atomic_load((atomic_int_fast64_t *)&m->summaries_queued));
	rc |= sp_buf_printf(b, "# HELP sitepulse_queue_depth messages waiting "
			       "(ingest: both queues before the writer)\n"
			       "# TYPE sitepulse_queue_depth gauge\n"
			       "sitepulse_queue_depth{queue=\"ingest\"} %llu\n"
			       "sitepulse_queue_depth{queue=\"acks\"} %llu\n",
			    (unsigned long long)g->queue_depth, LOAD(m->pending_acks));
	rc |= gauge(b, "sitepulse_queue_bytes", "bytes used in the ingest and writer queues",
		    (long long)g->queue_bytes);
	rc |= gauge(b, "sitepulse_queue_capacity_bytes", "capacity of the ingest and writer queues",
		    (long long)g->queue_cap_bytes);
	rc |= counter(b, "sitepulse_queue_blocked_total",
		      "times the MQTT receive thread waited for room (backpressure)",
		      (unsigned long long)g->queue_blocked);
	if (g->devices_valid) {
		rc |= sp_buf_printf(b, "# HELP sitepulse_devices known devices by kind and state\n"
				       "# TYPE sitepulse_devices gauge\n");
		for (int k = 0; k < SP_DEV_KIND_COUNT; k++)
			for (int o = 0; o < 2; o++)
				rc |= sp_buf_printf(b, "sitepulse_devices{kind=\"%s\",online=\"%s\"} %lld\n",
						    sp_dev_kind_name((enum sp_dev_kind)k),
						    o ? "true" : "false", (long long)g->devices[k][o]);
	}
	rc |= gauge(b, "sitepulse_agents", "agents known", (long long)LOAD(m->agents));
	rc |= gauge(b, "sitepulse_mqtt_connected", "1 while connected to the broker",
		    atomic_load((atomic_bool *)&m->mqtt_connected) ? 1 : 0);
	rc |= gauge(b, "sitepulse_store_ok", "1 while the last store commit succeeded",
		    atomic_load((atomic_bool *)&m->store_ok) ? 1 : 0);
	rc |= gauge(b, "sitepulse_last_commit_timestamp_ms", "wall clock of the last commit",
		    (long long)atomic_load((atomic_int_fast64_t *)&m->last_commit_ms));
	return rc ? SP_ENOMEM : 0;
}
