/*
 * store.c - dispatch of the storage interface to its backend (see store.h).
 * Today there is one backend (SQLite); the indirection is what lets another
 * (PostgreSQL) be added without touching the writer, rules or the API.
 */
#include "store.h"

#include <stdlib.h>

struct store {
	const struct store_backend *be;
	void *impl;
};

struct store *store_open(const struct store_params *p)
{
	struct store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->be = &store_sqlite_backend;
	s->impl = s->be->open(p);
	if (s->impl == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	s->be->close(s->impl);
	free(s);
}

void store_stop_waits(struct store *s, int64_t end_mono)
{
	if (s != NULL)
		s->be->stop_waits(s->impl, end_mono);
}

int store_w_begin(struct store *s) { return s->be->w_begin(s->impl); }
int store_w_commit(struct store *s) { return s->be->w_commit(s->impl); }
void store_w_rollback(struct store *s) { s->be->w_rollback(s->impl); }

int store_w_agent(struct store *s, const char *site, const char *agent, int64_t *agent_id)
{
	return s->be->w_agent(s->impl, site, agent, agent_id);
}

int store_w_load_agents(struct store *s, store_agent_fn fn, void *ctx)
{
	return s->be->w_load_agents(s->impl, fn, ctx);
}

int store_w_log_progress(struct store *s, int64_t agent_id, const struct store_agent_progress *p)
{
	return s->be->w_log_progress(s->impl, agent_id, p);
}

int store_w_save_progress(struct store *s, int64_t agent_id, const struct store_agent_progress *p)
{
	return s->be->w_save_progress(s->impl, agent_id, p);
}

int store_w_clear_progress_log(struct store *s)
{
	return s->be->w_clear_progress_log(s->impl);
}

int store_w_agent_birth(struct store *s, int64_t agent_id, int64_t ts, const char *fw,
			int64_t received_ms)
{
	return s->be->w_agent_birth(s->impl, agent_id, ts, fw, received_ms);
}

int store_w_agent_state(struct store *s, int64_t agent_id, bool online, int64_t received_ms)
{
	return s->be->w_agent_state(s->impl, agent_id, online, received_ms);
}

int store_w_agent_seen(struct store *s, int64_t agent_id, int64_t received_ms)
{
	return s->be->w_agent_seen(s->impl, agent_id, received_ms);
}

int store_w_clock_set_back(struct store *s, int64_t now_ms, int64_t back_ms,
			   const struct store_offline_rules *offline)
{
	return s->be->w_clock_set_back(s->impl, now_ms, back_ms, offline);
}

int store_w_clock_set_forward(struct store *s, int64_t fwd_ms, int64_t from_ms, int64_t to_ms)
{
	return s->be->w_clock_set_forward(s->impl, fwd_ms, from_ms, to_ms);
}

int64_t store_w_newest_stamp(struct store *s)
{
	return s->be->w_newest_stamp(s->impl);
}

int store_w_device(struct store *s, const char *site, const char *dev, struct store_device *out,
		   struct store_seen *seen)
{
	return s->be->w_device(s->impl, site, dev, out, seen);
}

int store_w_upsert_device(struct store *s, const char *site, const char *dev, int64_t agent_id,
			  const struct sp_device_info *info, enum sp_dev_kind kind,
			  const char *meta_json, struct store_device *out)
{
	return s->be->w_upsert_device(s->impl, site, dev, agent_id, info, kind, meta_json, out);
}

int store_w_reading(struct store *s, int64_t device_id, int64_t agent_id, int64_t seq,
		    enum sp_rec_kind kind, int64_t ts, const char *body, size_t body_len)
{
	return s->be->w_reading(s->impl, device_id, agent_id, seq, kind, ts, body, body_len, 0);
}

int store_w_reading_tail(struct store *s, int64_t device_id, int64_t agent_id, int64_t seq,
			 enum sp_rec_kind kind, int64_t ts, const char *tail, size_t tail_len)
{
	return s->be->w_reading(s->impl, device_id, agent_id, seq, kind, ts, tail, tail_len,
				STORE_BODY_TAIL);
}

int store_w_reading_tail_lent(struct store *s, int64_t device_id, int64_t agent_id, int64_t seq,
			      enum sp_rec_kind kind, int64_t ts, const char *tail, size_t tail_len)
{
	return s->be->w_reading(s->impl, device_id, agent_id, seq, kind, ts, tail, tail_len,
				STORE_BODY_TAIL | STORE_BODY_LENT);
}

int store_w_device_seen(struct store *s, int64_t device_id, int64_t ts, int64_t heard)
{
	return s->be->w_device_seen(s->impl, device_id, ts, heard);
}

int64_t store_w_device_count(struct store *s)
{
	return s->be->w_device_count(s->impl);
}

int store_w_heartbeat(struct store *s, int64_t now_ms)
{
	return s->be->w_heartbeat(s->impl, now_ms);
}

int store_w_compact(struct store *s, int64_t now_ms, int budget, int64_t max_ms,
		    struct store_compaction *out)
{
	return s->be->w_compact(s->impl, now_ms, budget, max_ms, out);
}

int store_r_sites(struct store *s, int64_t now_ms, int64_t offline_ms, store_site_fn fn, void *ctx)
{
	return s->be->r_sites(s->impl, now_ms, offline_ms, fn, ctx);
}

int store_r_site_names(struct store *s, store_site_name_fn fn, void *ctx)
{
	return s->be->r_site_names(s->impl, fn, ctx);
}

int store_r_devices(struct store *s, const char *site, int64_t now_ms, int64_t offline_ms,
		    unsigned flags, store_device_fn fn, void *ctx)
{
	return s->be->r_devices(s->impl, site, now_ms, offline_ms, flags, fn, ctx);
}

int store_r_readings(struct store *s, const struct store_readings_query *q, store_reading_fn fn,
		     void *ctx)
{
	return s->be->r_readings(s->impl, q, fn, ctx);
}

int store_r_device_counts(struct store *s, int64_t now_ms, int64_t offline_ms,
			  int64_t counts[SP_DEV_KIND_COUNT][2])
{
	return s->be->r_device_counts(s->impl, now_ms, offline_ms, counts);
}

int store_r_ping(struct store *s)
{
	return s->be->r_ping(s->impl);
}

int store_r_site_has_records(struct store *s, const char *site, int64_t from, int64_t to)
{
	return s->be->r_site_has_records(s->impl, site, from, to);
}

/* ---------------------------------------------------------------- alerts */

_Static_assert(sizeof(struct store_device) == 24,
	       "struct store_device is held once per known device: keep it small");

const char *const store_alert_states[STORE_ALERT_STATES] = {"active_unack", "active_ack",
							     "cleared_unack", "cleared_ack"};

uint16_t store_device_rating(const struct sp_device_info *info)
{
	double v = 0;
	if (info == NULL)
		return 0;
	if (info->kind == SP_DEV_LIFT)
		v = info->rated_speed * 100.0 + 0.5; /* cm/s */
	else if (info->kind == SP_DEV_CHARGER)
		v = info->port_limit_w + 0.5;
	return (uint16_t)(v <= 0 ? 0 : v >= 65535 ? 65535 : v);
}

int store_w_alert_open(struct store *s, const struct store_alert_new *a, int64_t *id,
		       bool *adopted)
{
	bool ignored;
	return s->be->w_alert_open(s->impl, a, id, adopted ? adopted : &ignored);
}

int store_w_alert_clear(struct store *s, int64_t id, int64_t ts)
{
	return s->be->w_alert_clear(s->impl, id, ts);
}

int store_w_hold_put(struct store *s, int64_t device_id, const char *rule, int32_t port,
		     const char *code, int64_t since)
{
	return s->be->w_hold_put(s->impl, device_id, rule, port, code, since);
}

int store_w_hold_del(struct store *s, int64_t device_id, const char *rule, int32_t port,
		     const char *code)
{
	return s->be->w_hold_del(s->impl, device_id, rule, port, code);
}

int store_w_load_conditions(struct store *s, store_condition_fn fn, void *ctx)
{
	return s->be->w_load_conditions(s->impl, fn, ctx);
}

int store_w_fault_clear(struct store *s, int64_t device_id, int32_t port, const char *code,
			int64_t ts)
{
	return s->be->w_fault_clear(s->impl, device_id, port, code, ts);
}

int store_w_fault_clears_trim(struct store *s, int64_t keep)
{
	return s->be->w_fault_clears_trim(s->impl, keep);
}

int store_w_load_fault_clears(struct store *s, int64_t max, store_fault_clear_fn fn, void *ctx)
{
	return s->be->w_load_fault_clears(s->impl, max, fn, ctx);
}

int store_w_offline_scan(struct store *s, const struct store_offline_scan *q)
{
	return s->be->w_offline_scan(s->impl, q);
}

int store_w_reminders_due(struct store *s, const char *severity, int64_t repeat_ms,
			  int64_t now_ms, store_reminder_fn fn, void *ctx)
{
	return s->be->w_reminders_due(s->impl, severity, repeat_ms, now_ms, fn, ctx);
}

int store_w_alert_reminded(struct store *s, int64_t id, int64_t reminders)
{
	return s->be->w_alert_reminded(s->impl, id, reminders);
}

int store_r_alerts(struct store *s, const struct store_alerts_query *q, store_alert_fn fn,
		   void *ctx)
{
	return s->be->r_alerts(s->impl, q, fn, ctx);
}

int store_ack_alert(struct store *s, int64_t id, const char *by, int64_t now_ms, store_alert_fn fn,
		    void *ctx)
{
	return s->be->ack_alert(s->impl, id, by, now_ms, fn, ctx);
}

int store_r_alert_counts(struct store *s, bool active_only,
			 int64_t counts[STORE_ALERT_STATES][STORE_ALERT_SEVERITIES])
{
	return s->be->r_alert_counts(s->impl, active_only, counts);
}

int64_t store_w_alerts_opened_between(struct store *s, const char *site, const char *dev,
				      const char *rule_shown, int32_t port, int64_t from_ms,
				      int64_t to_ms)
{
	return s->be->w_alerts_opened_between(s->impl, site, dev, rule_shown, port, from_ms, to_ms);
}

int store_w_alert_info(struct store *s, int64_t id, int64_t *opened_at, char *severity,
		       size_t severity_cap, char *detail, size_t detail_cap)
{
	return s->be->w_alert_info(s->impl, id, opened_at, severity, severity_cap, detail,
				   detail_cap);
}

int store_r_alerts_during(struct store *s, const char *site, int64_t from, int64_t to,
			  store_alert_fn fn, void *ctx)
{
	return s->be->r_alerts_during(s->impl, site, from, to, fn, ctx);
}

int store_r_device_records(struct store *s, const char *site, const char *dev, int64_t from,
			   int64_t to, int64_t max, store_record_fn fn, void *ctx)
{
	return s->be->r_device_records(s->impl, site, dev, from, to, max, fn, ctx);
}

int store_r_summaries(struct store *s, const char *site, int64_t from, int64_t to, int64_t limit,
		      store_summary_fn fn, void *ctx)
{
	return s->be->r_summaries(s->impl, site, from, to, limit, fn, ctx);
}

/* ---------------------------------------------------------------- outboxes */

int store_w_mail_add(struct store *s, const struct store_mail *m, int64_t now_ms)
{
	return s->be->w_mail_add(s->impl, m, now_ms);
}

struct store_sender {
	const struct store_backend *be;
	void *h;
	/*
	 * A hold may be in force: store_sender_hold since the last release that
	 * succeeded, or since the handle was opened (a previous run's hold is in
	 * the store). A release without one would only make due the items put
	 * off for their own failures.
	 */
	bool held;
};

struct store_sender *store_sender_open(struct store *s, enum store_outbox box)
{
	struct store_sender *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->be = s->be;
	h->held = true;
	h->h = s->be->sender_open(s->impl, box);
	if (h->h == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

void store_sender_close(struct store_sender *h)
{
	if (h == NULL)
		return;
	h->be->sender_close(h->h);
	free(h);
}

int store_sender_next(struct store_sender *h, int64_t now_ms, int64_t longest_wait_ms,
		      store_outbox_fn fn, void *ctx)
{
	return h->be->sender_next(h->h, now_ms, longest_wait_ms, fn, ctx);
}

int store_sender_done(struct store_sender *h, int64_t id, int64_t now_ms)
{
	return h->be->sender_done(h->h, id, now_ms);
}

int store_sender_retry(struct store_sender *h, int64_t id, int64_t next_try_ms, const char *error)
{
	return h->be->sender_retry(h->h, id, next_try_ms, error);
}

int64_t store_sender_pending(struct store_sender *h)
{
	return h->be->sender_pending(h->h);
}

int store_sender_hold(struct store_sender *h, int64_t until_ms)
{
	h->held = true; /* also on failure: a release after it costs one update, no harm */
	return h->be->sender_hold(h->h, until_ms);
}

int store_sender_release(struct store_sender *h, int64_t now_ms)
{
	if (!h->held)
		return 0;
	int rc = h->be->sender_release(h->h, now_ms);
	if (rc == 0)
		h->held = false;
	return rc;
}

int store_sender_superseded(struct store_sender *h, int64_t id, int64_t now_ms)
{
	return h->be->sender_superseded(h->h, id, now_ms);
}

int store_sender_summarized(struct store_sender *h, const char *site, int64_t *period_start,
			    int64_t *period_end)
{
	return h->be->sender_summarized(h->h, site, period_start, period_end);
}

int store_sender_add_summary(struct store_sender *h, const char *site, int64_t period_start,
			     int64_t period_end, const char *key, const char *body, size_t body_len,
			     int64_t now_ms)
{
	return h->be->sender_add_summary(h->h, site, period_start, period_end, key, body, body_len,
					 now_ms);
}
