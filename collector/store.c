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

int store_w_save_progress(struct store *s, int64_t agent_id, const struct store_agent_progress *p)
{
	return s->be->w_save_progress(s->impl, agent_id, p);
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

int store_w_device(struct store *s, const char *site, const char *dev, struct store_device *out)
{
	return s->be->w_device(s->impl, site, dev, out);
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
	return s->be->w_reading(s->impl, device_id, agent_id, seq, kind, ts, body, body_len, false);
}

int store_w_reading_lent(struct store *s, int64_t device_id, int64_t agent_id, int64_t seq,
			 enum sp_rec_kind kind, int64_t ts, const char *body, size_t body_len)
{
	return s->be->w_reading(s->impl, device_id, agent_id, seq, kind, ts, body, body_len, true);
}

int store_w_device_seen(struct store *s, int64_t device_id, int64_t ts)
{
	return s->be->w_device_seen(s->impl, device_id, ts);
}

int64_t store_w_device_count(struct store *s)
{
	return s->be->w_device_count(s->impl);
}

int store_w_heartbeat(struct store *s, int64_t now_ms)
{
	return s->be->w_heartbeat(s->impl, now_ms);
}

int store_w_compact(struct store *s, int64_t now_ms, int budget, int64_t *merged)
{
	return s->be->w_compact(s->impl, now_ms, budget, merged);
}

int store_r_sites(struct store *s, int64_t now_ms, int64_t offline_ms, store_site_fn fn, void *ctx)
{
	return s->be->r_sites(s->impl, now_ms, offline_ms, fn, ctx);
}

int store_r_devices(struct store *s, const char *site, int64_t now_ms, int64_t offline_ms,
		    store_device_fn fn, void *ctx)
{
	return s->be->r_devices(s->impl, site, now_ms, offline_ms, fn, ctx);
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
