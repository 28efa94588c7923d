/*
 * writer.c - the writer thread (see writer.h).
 *
 * One loop iteration = one batch:
 *   1. peek up to batch_max raw messages from the queue (waiting <= 20 ms);
 *   2. parse their topics; create rows for agents never seen before (each
 *      in its own small transaction, so a failed batch cannot leave the
 *      sequence tracker pointing at a row that was rolled back);
 *   3. BEGIN; decode, validate, dedup and store every message, running
 *      each stored record through the alert rules (rules.h), whose alerts
 *      and pending holds are written in the same transaction; declare
 *      expired gaps missing and open alerts whose hold ran out (once a
 *      second); save the touched agents' sequence state and the devices'
 *      liveness, sweeping for offline gateways and devices after each
 *      flush of the latter (offline.h); COMMIT;
 *   4. on success: advance the tracker, add the batch's counts to the
 *      metrics; on failure: ROLLBACK, restore the tracker, forget cached
 *      devices, reload the rules' state from the store, count the batch as
 *      dropped (agents resend its data messages: nothing was acked; its
 *      births and states, which no agent resends, are asked of the broker
 *      again once a commit works: ask_retained), and report the store
 *      unhealthy until a commit works;
 *   5. release the messages from the queue and publish the acks that are
 *      due (CONTRACT §3.4 pacing, see seqtrack.h).
 * Counters are added only after COMMIT, so a batch that is retried after a
 * failure is not counted twice. The alert rules' events and state are
 * handled in writer_alerts.c; the state both files share is writer_int.h.
 */
#include "writer_int.h"

#include "offline.h"
#include "parsed.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"

#include <stdlib.h>
#include <string.h>

#define PEEK_WAIT_MS 10 /* also the granularity of ack pacing */
#define EXPIRE_EVERY_MS 1000
/*
 * Devices noted as seen (devcache.h: 32 bytes each) beyond which their
 * liveness is written at the next commit, before its period: with a cache
 * smaller than the fleet, evicted devices read again are noted again.
 */
#define SEEN_FLUSH_AT 65536
#define FAIL_PAUSE_MS 200
/* the wall clock's lead on the monotonic one changing this much: it was set back or forward */
#define CLOCK_STEP_MS 2000
/*
 * Compaction (see compact()): a pass looks at up to COMPACT_BUDGET chunks,
 * merges about as many, and starts nothing new after COMPACT_MAX_MS: it
 * runs on the writer's thread, so the acks wait for it (merging a
 * backlog's half-full chunks took ~0.6 s for 4,096). Caught up, a pass
 * runs every COMPACT_EVERY_MS. Behind (the store says chunks due are left
 * over), the next one runs as soon as the writer has spent COMPACT_REST
 * times the last pass's duration on other things: at most 1 / (1 +
 * COMPACT_REST) of the writer's time, a fifth, goes to compaction, so
 * ingest keeps four fifths however large the backlog, and the catch-up
 * rate follows what a pass costs on this machine rather than a fixed
 * number of chunks a second. Measured with one-reading chunks
 * (sp-compactbench, docs/performance.md item 61): ~4-5 µs a chunk merged,
 * so some 40,000 chunks/s at a fifth of the writer, where one pass a second
 * capped compaction at ~4,096 chunks/s (100,000 devices reporting every
 * 20 s write 5,000).
 */
#define COMPACT_BUDGET   4096
#define COMPACT_MAX_MS   50
#define COMPACT_EVERY_MS 1000
#define COMPACT_REST     4
/*
 * Agents' liveness (last_seen, online) that cannot wait (agentseen.h: a row
 * that may say offline, an agent back from a silence) is written at most
 * this often, not per batch; the rest with the devices' liveness, every
 * writer_params.device_seen_flush_ms (with 100,000 devices a flush rewrites
 * most pages of the devices table, so its cost is per flush, not per
 * message). Sequence state is saved in every transaction (exactly-once
 * depends on it).
 */
#define LIVENESS_FLUSH_MS 1000
/*
 * The alert log lines one batch keeps until its commit (alertlog.h): ~100
 * lines of an opened alert with its detail; a sweep opening more is summed up.
 */
#define ALERT_LINES_MAX (32u * 1024)


/* ---------------------------------------------------------------- helpers */

static void log_reject(struct writer *w, const struct sp_topic *t, const char *what,
		       int64_t seq, const struct sp_reject_info *why)
{
	uint64_t suppressed;
	if (!sp_ratelimit_allow(&w->reject_log, sp_mono_ms(), 10, 10000, &suppressed))
		return;
	if (suppressed)
		SP_WARN("writer", "(%llu similar rejections suppressed)", (unsigned long long)suppressed);
	SP_WARN("writer", "rejected %s from %s/%s seq %lld: %s (field %s)", what, t->site, t->agent,
		(long long)seq, sp_reject_name(why->reason), why->field ? why->field : "-");
}

/* Finds the device, creating it when unknown (data before birth). NULL + *reason on refusal. */
static struct store_device *resolve_device(struct writer *w, const char *site, const char *dev,
					   int64_t agent_id, enum sp_dev_kind kind, int *err,
					   enum sp_reject *reason)
{
	struct store_device d;
	struct store_seen seen = {0, 0};
	struct store_device *c = devcache_get(w->devs, site, dev);
	*err = 0;
	if (c)
		return c;
	int rc = store_w_device(w->p.store, site, dev, &d, &seen);
	if (rc == SP_ENOTFOUND) {
		if (w->device_count >= w->p.max_devices) {
			*reason = SP_REJ_TOO_MANY_DEVICES;
			return NULL;
		}
		rc = store_w_upsert_device(w->p.store, site, dev, agent_id, NULL, kind, NULL, &d);
		if (rc == 0)
			w->device_count++;
	}
	if (rc) {
		*err = rc;
		return NULL;
	}
	c = devcache_put(w->devs, site, dev, &d, seen.last_seen, seen.heard);
	if (c == NULL) {
		w->scratch = d;
		c = &w->scratch;
	}
	return c;
}

/* Checks a record against what the inventory knows of its device. */
static enum sp_reject check_context(const struct parsed_rec *r, const struct store_device *d,
				    int64_t agent_id, const char **field)
{
	enum sp_dev_kind want = sp_rec_dev_kind(r->kind);
	*field = NULL;
	if (d->agent_id != agent_id) {
		*field = "dev";
		return SP_REJ_FOREIGN_DEVICE;
	}
	if (want != SP_DEV_UNKNOWN && d->kind != SP_DEV_UNKNOWN && d->kind != want) {
		*field = "t";
		return SP_REJ_KIND_MISMATCH;
	}
	if (r->port > 0 && d->ports > 0 && r->port > d->ports) {
		*field = "port";
		return SP_REJ_OUT_OF_RANGE;
	}
	if (r->kind == SP_REC_LIFT && d->has_floors &&
	    (r->floor < d->floor_min || r->floor > d->floor_max)) {
		*field = "floor";
		return SP_REJ_OUT_OF_RANGE;
	}
	return SP_REJ_NONE;
}

/*
 * Learns the kind of a device of unknown kind (one first seen in a fault
 * record, which names none) from a record that tells it, want (a lift,
 * station or port record): persisted over unknown only (a birth's kind is
 * never overridden) and kept in the cached row d, so that from now on
 * check_context's kind check applies and the rules judge its faults under
 * its kind's rule. Once per device: the caller compares the cached kind.
 */
static int learn_kind(struct writer *w, const char *site, const char *dev,
		      struct store_device *d, enum sp_dev_kind want)
{
	struct store_device row;
	int rc = store_w_upsert_device(w->p.store, site, dev, d->agent_id, NULL, want, NULL, &row);
	if (rc == 0)
		d->kind = row.kind; /* a rollback clears the cache (process_batch) */
	return rc;
}

/*
 * Whether a reading's arrival must be written as its device's heard in
 * this transaction rather than at the next flush. Online is judged by the
 * stored heard (store_sqlite_read.c, offline.c); it may trail by a flush
 * period, which only matters for a device the stored value could call
 * offline before the next flush lands while this reading says it is back:
 * one that was silent (heard: when a reading of it last arrived, as known)
 * for about device_offline_s. Flushes land within a period plus a batch
 * or two of each other; twice the period covers that (only a batch that
 * takes longer than a period, a stall, lets the store trail by the
 * excess). New devices (heard 0) take this path once; a device heard from
 * more often than every device_offline_s minus two periods never does.
 */
static bool seen_due_now(const struct writer *w, int64_t heard, int64_t now)
{
	/* + 1 s: the cache rounds heard up to whole seconds, the store may hold it exact */
	return heard < now + 2 * w->p.device_seen_flush_ms + 1000 - w->p.offline_ms;
}

/* ---------------------------------------------------------------- message handlers */

/*
 * Whether a record of a message behind newer ones of its agent is late for
 * the rules (rules_eval): only if its device already has a newer record,
 * which the rules saw. The newer messages moved the rules only for the
 * devices in them; a record of any other device, or not older than its
 * device's newest, is news (a smoke alarm resent after a broker restart
 * must still open its alert), and judging it is safe: no condition of the
 * device has seen a newer record. The device's newest is the cache's bound
 * (devcache_newest_bound); uncached (no memory): late, as unknown. A fault
 * record always is: the rules judge a late one too, and only test a late
 * raise against the same fault's clear, which is exact (same ts included).
 */
static bool late_for_rules(const struct writer *w, const struct store_device *d,
			   const struct parsed_rec *r)
{
	return r->kind == SP_REC_FAULT || d == &w->scratch ||
	       r->ts < devcache_newest_bound(w->devs, d);
}

/*
 * Whether a clock that is off may be logged now, with the tail of its line
 * in *tail: at most 10 lines per 10 s for the gateways' and the devices'
 * clocks together, so that a flood of one kind cannot fill the log (nor
 * hide the other for long). Counting is the caller's, whatever this says.
 */
static bool clock_loggable(struct writer *w, const char **tail)
{
	uint64_t suppressed;
	if (!sp_ratelimit_allow(&w->clock_log, sp_mono_ms(), 10, 10000, &suppressed))
		return false;
	*tail = suppressed ? " (similar lines suppressed)" : "";
	return true;
}

/*
 * A record stamped later than it arrived, by more than the clock step: no
 * delay explains that, its device's clock (or its gateway's, which may
 * stamp it) runs ahead. Counted and logged (clock_loggable); stored all
 * the same (up to SP_TS_MAX_LEAD_MS ahead). A clock behind cannot be told
 * from a record that waited in a spool.
 */
static void check_record_clock(struct writer *w, const struct sp_topic *t,
			       const struct parsed_rec *r, int64_t received_ms)
{
	int64_t ahead = r->ts - received_ms;
	const char *tail;
	if (ahead <= rules_config_clock_step(w->p.rules))
		return;
	w->bc.records_ahead++;
	if (clock_loggable(w, &tail))
		SP_WARN("writer", "device %s/%s: a reading stamped %lld s after it arrived: its "
				  "clock (or its gateway's) runs ahead; set it by NTP%s",
			t->site, r->dev, (long long)((ahead + 500) / 1000), tail);
}

/* Stores one record of a data message, or says why not in *why; then runs the rules on it. */
static int store_record(struct writer *w, const struct sp_topic *t, int64_t agent_id,
			int64_t seq, bool behind, int64_t received_ms, int64_t now,
			const struct parsed_rec *r, struct sp_reject_info *why)
{
	int err;
	*why = r->why;
	if (why->reason != SP_REJ_NONE)
		return 0;
	enum sp_dev_kind want = sp_rec_dev_kind(r->kind);
	struct store_device *d = resolve_device(w, t->site, r->dev, agent_id, want, &err,
						 &why->reason);
	if (err)
		return err;
	if (d == NULL)
		return 0;
	if ((why->reason = check_context(r, d, agent_id, &why->field)) != SP_REJ_NONE)
		return 0;
	if (d->kind == SP_DEV_UNKNOWN && want != SP_DEV_UNKNOWN &&
	    (err = learn_kind(w, t->site, r->dev, d, want)))
		return err;
	/* the tail stays in the queue until the batch is over: lent, not copied */
	if ((err = store_w_reading_tail_lent(w->p.store, d->id, agent_id, seq, r->kind, r->ts,
					     r->body, r->body_len)))
		return err;
	/* (before this record is noted) */
	bool late = behind && late_for_rules(w, d, r);
	/* a device not cached (no memory) has its liveness written at once */
	bool write_now = d == &w->scratch;
	if (!write_now) {
		int64_t heard = devcache_heard(d);
		write_now = devcache_seen(w->devs, d, r->ts, received_ms) ||
			    seen_due_now(w, heard, now);
	}
	if (write_now && (err = store_w_device_seen(w->p.store, d->id, r->ts, received_ms)))
		return err;
	w->bc.rec_stored[r->kind]++;
	check_record_clock(w, t, r, received_ms);

	struct sp_record rec;
	struct rule_device rd;
	parsed_record(r, &rec);
	writer_rule_device(&rd, d->id, t->site, r->dev, (enum sp_dev_kind)d->kind, d->rating, d);
	return rules_eval(w->rules, &rd, &rec, late, received_ms, writer_on_rule_event, w);
}

/* A data message, decoded by the parser thread (parsed.h). */
static int handle_data(struct writer *w, const struct queue_msg *m, const struct sp_topic *t,
		       struct seq_agent *ag, int64_t now)
{
	struct parsed_msg pm;
	int64_t agent_id = seq_agent_id(ag);
	int rc;

	if (parsed_open(m->payload, m->payload_len, &pm) != 0) {
		/* cannot happen short of a bug between the two threads: refuse, keep going */
		SP_ERROR("writer", "unreadable parsed message from %s/%s", t->site, t->agent);
		w->bc.msg_rejected[SP_REJ_BAD_JSON]++;
		return 0;
	}
	/*
	 * A seq already handled is a duplicate, whether its message was stored or
	 * rejected the first time: a rejected message that comes again is the
	 * same redelivery as any other (its agent missed our ack), so it is
	 * counted and logged as rejected once, and its ack is published again.
	 */
	enum seq_verdict verdict = pm.seq > 0 ? seqtrack_check(ag, pm.seq) : SEQ_NEW;
	if (verdict == SEQ_DUPLICATE) {
		w->bc.duplicate++;
		seqtrack_note_duplicate(w->seq, ag);
		return 0;
	}
	if (pm.why.reason != SP_REJ_NONE) {
		w->bc.msg_rejected[pm.why.reason]++;
		log_reject(w, t, "data message", pm.seq, &pm.why);
		/* a rejected message still counts as handled, if we can tell which one it was */
		if (pm.seq > 0) {
			int64_t missing = seqtrack_mark(w->seq, ag, pm.seq, now);
			if (missing < 0)
				return (int)missing;
			w->bc.missing += (uint64_t)missing;
		}
		return 0;
	}
	if (verdict == SEQ_LATE)
		w->bc.recovered++;

	/* a message behind newer ones of its agent: its records may be late (late_for_rules) */
	bool behind = seqtrack_behind(ag, pm.seq);
	struct parsed_rec r;
	while ((rc = parsed_next(&pm, &r)) == 1) {
		struct sp_reject_info why;
		if ((rc = store_record(w, t, agent_id, pm.seq, behind, m->received_ms, now, &r, &why)))
			return rc;
		if (why.reason != SP_REJ_NONE) {
			w->bc.rec_rejected[why.reason]++;
			log_reject(w, t, "record", pm.seq, &why);
		}
	}
	if (rc < 0)
		SP_ERROR("writer", "damaged parsed message from %s/%s seq %lld: records after "
				   "the damage skipped",
			 t->site, t->agent, (long long)pm.seq);
	w->bc.stored++;
	int64_t missing = seqtrack_mark(w->seq, ag, pm.seq, now);
	if (missing < 0)
		return (int)missing;
	w->bc.missing += (uint64_t)missing;
	return agentseen_note(w->agents_seen, agent_id, m->received_ms);
}

static int handle_birth(struct writer *w, const struct queue_msg *m, const struct sp_topic *t,
			int64_t agent_id, int64_t now)
{
	struct sp_birth b;
	struct sp_reject_info why;
	int rc;

	if (sp_decode_birth(w->dec, m->payload, m->payload_len, now, &b, &why) != 0) {
		w->bc.msg_rejected[why.reason]++;
		log_reject(w, t, "birth", 0, &why);
		return 0;
	}
	for (size_t i = 0; i < b.count; i++) {
		const struct sp_device_info *dv = &b.devices[i];
		struct sp_reject_info dwhy = b.rejects[i];
		struct store_device cur, d;
		struct store_seen seen = {0, 0};
		if (dwhy.reason == SP_REJ_NONE) {
			rc = store_w_device(w->p.store, t->site, dv->dev, &cur, &seen);
			if (rc == SP_ENOTFOUND && w->device_count >= w->p.max_devices)
				dwhy.reason = SP_REJ_TOO_MANY_DEVICES;
			else if (rc && rc != SP_ENOTFOUND)
				return rc;
		}
		if (dwhy.reason != SP_REJ_NONE) {
			w->bc.rec_rejected[dwhy.reason]++;
			log_reject(w, t, "birth device", 0, &dwhy);
			continue;
		}
		bool is_new = rc == SP_ENOTFOUND;
		sp_buf_reset(&w->meta);
		if ((rc = sp_encode_device_info(&w->meta, dv)))
			return rc;
		/* a device moves to the agent that announces it */
		if ((rc = store_w_upsert_device(w->p.store, t->site, dv->dev, agent_id, dv, dv->kind,
						w->meta.data, &d)))
			return rc;
		if (is_new)
			w->device_count++;
		devcache_put(w->devs, t->site, dv->dev, &d, seen.last_seen, seen.heard);
	}
	w->bc.births++;
	return store_w_agent_birth(w->p.store, agent_id, b.ts, b.fw, m->received_ms);
}

/*
 * Starts the offline sweep's wait (link_settled) again after an event that
 * left the stored liveness stale: a store recovery (the failed batches'
 * arrivals were dropped) or a re-ask (its retained states come with old
 * times). A store failing and recovering, or re-asking, more often than
 * offline_ms would extend the wait for good, and no gateway or device
 * would ever be alerted offline, a dead one included: so such events
 * extend one wait for 2 x offline_ms at most. After that the sweeps run
 * (their next wait ends within offline_ms); what the last outage left
 * stale can then be alerted and cleared once heard again, which is the
 * lesser evil. The count starts again once a sweep has run. Returns
 * whether the sweeps wait (false: the bound is reached).
 */
static bool hold_sweeps(struct writer *w)
{
	int64_t now = sp_mono_ms();
	if (w->link_up_since == 0)
		return true; /* no connection: its next one starts the wait anyway */
	if (w->held_since == 0 || w->swept_mono >= w->held_since) {
		w->held_since = now;
		w->held_said = false;
	}
	if (now - w->held_since >= 2 * w->p.offline_ms) {
		if (!w->held_said)
			SP_WARN("writer", "the store keeps failing and recovering: offline alerts were held "
					  "for %lld s; they are judged again (a gateway or device whose "
					  "messages the store dropped may be alerted until heard again)",
				(long long)((now - w->held_since) / 1000));
		w->held_said = true;
		return false;
	}
	w->link_up_since = now;
	return true;
}

/*
 * Whether what arrives now was sent just now: the broker connection has
 * been up for offline_ms (every agent had the time to be heard again after
 * a cut of our own, and what the broker kept for us, queued messages and
 * the retained ones our subscriptions brought, has come) and no backlog
 * waits in the queues. The offline sweep judges silence only then (a
 * backlog's readings would bring the silent devices back), and a gateway's
 * clock is judged by its state message only then.
 */
static bool link_settled(struct writer *w)
{
	int64_t now = sp_mono_ms(); /* a span: setting the wall clock must not stretch it */
	if (!ingest_connected(w->p.ingest)) {
		w->link_up_since = 0;
		return false;
	}
	uint64_t epoch = ingest_epoch(w->p.ingest);
	/* a re-ask (ask_retained) brings the retained ones again: new, as after a connect */
	uint64_t reasks = ingest_reasks(w->p.ingest);
	if (w->link_up_since == 0 || epoch != w->link_epoch) {
		w->link_epoch = epoch;
		w->link_reasks = reasks;
		w->link_up_since = now;
		w->held_since = 0;
	} else if (reasks != w->link_reasks) {
		w->link_reasks = reasks;
		hold_sweeps(w);
	}
	if (now - w->link_up_since < w->p.offline_ms)
		return false;
	struct queue_stats raw, parsed;
	queue_get_stats(w->p.upstream, &raw);
	queue_get_stats(w->p.queue, &parsed);
	return raw.bytes <= raw.cap_bytes / 2 && parsed.bytes <= parsed.cap_bytes / 2;
}

/*
 * A gateway's clock against ours, from the ts of its state message: one is
 * sent at every connect, so once our link has settled it arrives moments
 * after its ts. Further off than the clock step ([store] clock_step_s), it
 * is counted and logged (clock_loggable): its devices' readings carry that
 * time (their online state does not depend on it: offline.h).
 */
static void check_gateway_clock(struct writer *w, const struct sp_topic *t, int64_t ts,
				int64_t received_ms)
{
	int64_t off = ts - received_ms, step = rules_config_clock_step(w->p.rules);
	const char *tail;
	if ((off <= step && off >= -step) || !link_settled(w))
		return;
	w->bc.gateway_clocks_off++;
	if (clock_loggable(w, &tail))
		SP_WARN("writer", "gateway %s/%s: its clock is %lld s %s the collector's "
				  "(its state message): its readings' times are off as "
				  "much; set it by NTP%s",
			t->site, t->agent, (long long)(((off < 0 ? -off : off) + 500) / 1000),
			off < 0 ? "behind" : "ahead of", tail);
}

static int handle_state(struct writer *w, const struct queue_msg *m, const struct sp_topic *t,
			int64_t agent_id)
{
	struct sp_reject_info why;
	bool online;
	int64_t ts;
	if (sp_decode_state(m->payload, m->payload_len, &online, &ts, &why) != 0) {
		w->bc.msg_rejected[why.reason]++;
		log_reject(w, t, "state", 0, &why);
		return 0;
	}
	w->bc.states++;
	if (online && ts > 0)
		check_gateway_clock(w, t, ts, m->received_ms);
	agentseen_state_changed(w->agents_seen, agent_id);
	return store_w_agent_state(w->p.store, agent_id, online, m->received_ms);
}

/* ---------------------------------------------------------------- batches */

/* Parses topics and makes sure every agent in the batch has a row (outside the batch). */
static int prepare_agents(struct writer *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sp_topic *t = &w->topics[i];
		w->topic_ok[i] = sp_topic_parse(w->msgs[i].topic, w->msgs[i].topic_len, t) == 0 &&
				 t->kind <= SP_TOPIC_STATE;
		if (!w->topic_ok[i] || seqtrack_find(w->seq, t->site, t->agent))
			continue;
		int64_t id;
		int rc = store_w_agent(w->p.store, t->site, t->agent, &id);
		if (rc)
			return rc;
		if (seqtrack_add(w->seq, t->site, t->agent, id) == NULL)
			return SP_ENOMEM;
		atomic_store(&w->p.metrics->agents, seqtrack_count(w->seq));
		SP_INFO("writer", "new agent %s/%s", t->site, t->agent);
	}
	return 0;
}

static int save_device_seen(void *ctx, int64_t device_id, int64_t ts, int64_t heard)
{
	return store_w_device_seen(ctx, device_id, ts, heard);
}

static int save_agent_seen(void *ctx, int64_t agent_id, int64_t received_ms)
{
	return store_w_agent_seen(ctx, agent_id, received_ms);
}

/* store_w_log_progress or store_w_save_progress */
typedef int (*progress_put_fn)(struct store *s, int64_t agent_id,
			       const struct store_agent_progress *p);

static int put_progress(struct writer *w, struct seq_agent *a, progress_put_fn put)
{
	int rc;
	sp_buf_reset(&w->done);
	sp_buf_reset(&w->missing);
	if ((rc = seq_agent_format_done(a, &w->done)) ||
	    (rc = seq_agent_format_missing(a, &w->missing)))
		return rc;
	struct store_agent_progress p = {seq_agent_acked(a), w->done.data ? w->done.data : "",
					 w->missing.data ? w->missing.data : "",
					 seq_agent_gap_since(a)};
	return put(w->p.store, seq_agent_id(a), &p);
}

/*
 * Folds the progress log: every agent whose committed state may be newer
 * than its row, and every agent this batch touched, written into its row;
 * then the log emptied.
 */
static int fold_progress(struct writer *w)
{
	int rc;
	for (struct seq_agent *a = seqtrack_first_unfolded(w->seq); a; a = seqtrack_next_unfolded(a))
		if ((rc = put_progress(w, a, store_w_save_progress)))
			return rc;
	for (struct seq_agent *a = seqtrack_first_touched(w->seq); a; a = seqtrack_next_touched(a))
		if (!seq_agent_unfolded(a) && (rc = put_progress(w, a, store_w_save_progress)))
			return rc;
	return store_w_clear_progress_log(w->p.store);
}

/* What a batch's save_progress wrote: to settle once the transaction commits. */
struct saved {
	bool progress_logged;  /* a row of the progress log */
	bool progress_folded;  /* the log folded */
	bool agents_flushed;   /* the agents' liveness noted since the last flush */
	bool devices_flushed;  /* the devices' */
};

/*
 * Persists the sequence state of every agent the batch touched and, when
 * due (or forced), the liveness noted since the last flush. The sequence
 * state goes to the store's progress log, one row per commit (store.h),
 * which is folded into the agents' rows once it holds progress_fold_commits
 * rows, at the first commit after start (whose state may have come from the
 * log) and at a clean stop: this bounds what a start reads, and spreads a
 * fold's cost, a row update per agent logged since the last, over that many
 * commits.
 */
static int save_progress(struct writer *w, int64_t mono, bool force, struct saved *out)
{
	int rc;
	*out = (struct saved){0};
	if (force || w->progress_rows >= w->p.progress_fold_commits) {
		if ((rc = fold_progress(w)))
			return rc;
		out->progress_folded = true;
	} else {
		for (struct seq_agent *a = seqtrack_first_touched(w->seq); a;
		     a = seqtrack_next_touched(a)) {
			if ((rc = put_progress(w, a, store_w_log_progress)))
				return rc;
			out->progress_logged = true;
		}
	}
	/* every agent's with the devices': the offline sweep after this reads both exact */
	bool devices_due = force || w->clock_back_ms > 0 ||
			   mono - w->devices_flushed_mono >= w->p.device_seen_flush_ms ||
			   devcache_seen_count(w->devs) >= SEEN_FLUSH_AT;
	if (devices_due || mono - w->liveness_flushed_mono >= LIVENESS_FLUSH_MS) {
		if ((rc = agentseen_write(w->agents_seen, devices_due, save_agent_seen, w->p.store)))
			return rc;
		out->agents_flushed = true;
	}
	if (devices_due) {
		if ((rc = devcache_flush_seen(w->devs, save_device_seen, w->p.store)))
			return rc;
		out->devices_flushed = true;
	}
	return 0;
}

/*
 * lift.door_reopen's counts refused in the batch (its table full): counted,
 * and said at most once a minute while it lasts, for a lift whose door goes
 * uncounted can miss its alert.
 */
static void note_door_refusals(struct writer *w)
{
	uint64_t refused = rules_door_counts_refused(w->rules), suppressed;
	atomic_store(&w->p.metrics->door_counts_refused, refused);
	if (refused > w->door_refused &&
	    sp_ratelimit_allow(&w->door_log, sp_mono_ms(), 1, 60000, &suppressed))
		SP_WARN("writer",
			"lift.door_reopen: %d door counts run already, a lift whose door starts "
			"cycling is not counted (%llu so far, sitepulse_door_counts_refused_total) "
			"until counts end",
			RULES_DOOR_COUNTS_MAX, (unsigned long long)refused);
	w->door_refused = refused;
}

static void add_counts(struct writer *w)
{
	struct metrics *m = w->p.metrics;
	struct batch_counts *b = &w->bc;
	atomic_fetch_add(&m->messages_stored, b->stored);
	atomic_fetch_add(&m->messages_duplicate, b->duplicate);
	atomic_fetch_add(&m->messages_missing, b->missing);
	atomic_fetch_add(&m->messages_recovered, b->recovered);
	atomic_fetch_add(&m->births, b->births);
	atomic_fetch_add(&m->states, b->states);
	atomic_fetch_add(&m->alerts_opened, b->alerts_opened);
	atomic_fetch_add(&m->alerts_adopted, b->alerts_adopted);
	atomic_fetch_add(&m->alerts_cleared, b->alerts_cleared);
	atomic_fetch_add(&m->mail_paced, b->mail.paced);
	atomic_fetch_add(&m->mail_reminders, b->mail.reminders);
	atomic_fetch_add(&m->mail_failed, b->mail.failed);
	atomic_store(&m->rule_conditions, rules_count(w->rules));
	note_door_refusals(w);
	atomic_fetch_add(&m->fault_raises_stale, b->fault_raises_stale);
	atomic_fetch_add(&m->device_clock_steps, b->clock_steps);
	atomic_fetch_add(&m->gateway_clocks_off, b->gateway_clocks_off);
	atomic_fetch_add(&m->records_ahead, b->records_ahead);
	for (int r = 0; r < SP_REJ_REASON_COUNT; r++) {
		atomic_fetch_add(&m->messages_rejected[r], b->msg_rejected[r]);
		atomic_fetch_add(&m->records_rejected[r], b->rec_rejected[r]);
	}
	for (int k = 0; k < SP_REC_KIND_COUNT; k++)
		atomic_fetch_add(&m->records_stored[k], b->rec_stored[k]);
}

static void say_alert_line(void *ctx, const char *line)
{
	(void)ctx;
	SP_INFO("alerts", "%s", line);
}

static int process_batch(struct writer *w, size_t n, bool expire, bool flush_all, int64_t now,
			 int64_t mono)
{
	struct saved saved;
	int rc;
	memset(&w->bc, 0, sizeof(w->bc));
	if ((rc = prepare_agents(w, n)))
		return rc;
	/*
	 * An arrival after now was stamped by a clock set back since; one at or
	 * before fwd_upto by the clock before a step forward, which would make
	 * its device look silent, its records ahead and its rules' time jump by
	 * the step (note_clock).
	 */
	for (size_t i = 0; i < n; i++) {
		if (w->msgs[i].received_ms > now)
			w->msgs[i].received_ms = now;
		else if (w->fwd_ms > 0 && w->msgs[i].received_ms <= w->fwd_upto)
			w->msgs[i].received_ms += w->fwd_ms;
	}
	/*
	 * Judged against a partial state, records would open alerts already
	 * open and leave open ones uncleared: without it the batch fails, as
	 * one the store refuses (its messages are not acknowledged).
	 */
	if (w->conditions_stale) {
		if ((rc = writer_load_conditions(w)))
			return rc;
		w->conditions_stale = false;
		SP_INFO("alerts", "alert state read again: %zu conditions", rules_count(w->rules));
	}
	if ((rc = store_w_begin(w->p.store)))
		return rc;
	/*
	 * Before the reminders are looked at, and before this batch opens any
	 * alert: those already active waited through the step, not for it
	 * (note_clock). Undone by a rollback, so done again by the next batch.
	 */
	if (w->clock_fwd_ms > 0 && (rc = store_w_clock_set_forward(w->p.store, w->clock_fwd_ms,
								       w->started_wall, w->fwd_upto)))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct queue_msg *m = &w->msgs[i];
		const struct sp_topic *t = &w->topics[i];
		if (!w->topic_ok[i]) {
			struct sp_reject_info why = {SP_REJ_BAD_TOPIC, NULL};
			struct sp_topic shown = {"?", "?", SP_TOPIC_DATA};
			w->bc.msg_rejected[SP_REJ_BAD_TOPIC]++;
			log_reject(w, &shown, "message on a bad topic", 0, &why);
			continue;
		}
		struct seq_agent *ag = seqtrack_find(w->seq, t->site, t->agent);
		switch (t->kind) {
		case SP_TOPIC_DATA: rc = handle_data(w, m, t, ag, now); break;
		case SP_TOPIC_BIRTH: rc = handle_birth(w, m, t, seq_agent_id(ag), now); break;
		case SP_TOPIC_STATE: rc = handle_state(w, m, t, seq_agent_id(ag)); break;
		default: rc = 0; break;
		}
		if (rc)
			goto fail;
	}
	if (expire) {
		/* once a second a real write, also when idle: health then means "can write" */
		if ((rc = store_w_heartbeat(w->p.store, now)))
			goto fail;
		int64_t missing = seqtrack_expire(w->seq, now);
		if (missing < 0) {
			rc = (int)missing;
			goto fail;
		}
		if (missing > 0)
			SP_WARN("writer", "declared %lld messages missing (gap open longer than %lld s)",
				(long long)missing, (long long)(w->p.gap_window_ms / 1000));
		w->bc.missing += (uint64_t)missing;
		/* holds that ran out with nothing new from their device (a trapped passenger) */
		if ((rc = rules_tick(w->rules, now, writer_on_rule_event, w)) ||
		    (w->mail && (rc = alertmail_reminders(w->mail, w->p.store, now, &w->bc.mail))))
			goto fail;
	}
	if ((rc = save_progress(w, mono, flush_all, &saved)) ||
	    (rc = holdlog_flush(w->holds, writer_put_hold, writer_del_hold, w->p.store)))
		goto fail;
	/* the liveness just written included, before the sweep reads it */
	if (w->clock_back_ms > 0) {
		struct store_offline_rules offline = offline_rules();
		if ((rc = store_w_clock_set_back(w->p.store, now, w->clock_back_ms, &offline)))
			goto fail;
	}
	/*
	 * With the devices' liveness just written: the sweep reads it exact.
	 * Not while the store fails (this batch is the first that may work):
	 * the arrivals of the failed batches were dropped with them, so every
	 * gateway and device looks as silent as the outage is long (recover()).
	 */
	bool sweep = saved.devices_flushed && !flush_all && !w->failing && link_settled(w);
	if (sweep &&
	    (rc = offline_sweep(w->p.store, w->p.rules, w->p.offline_ms, now, writer_on_rule_event, w)))
		goto fail;
	if ((rc = store_w_commit(w->p.store)))
		goto fail_committed;
	seqtrack_commit(w->seq, sp_mono_ms());
	if (sweep)
		w->swept_mono = mono;
	if (saved.progress_folded) {
		seqtrack_folded(w->seq);
		w->progress_rows = 0;
	} else if (saved.progress_logged) {
		w->progress_rows++;
	}
	devcache_seen_commit(w->devs);
	alertlog_commit(w->alert_lines, say_alert_line, NULL);
	if (saved.agents_flushed) {
		agentseen_committed(w->agents_seen);
		w->liveness_flushed_mono = mono;
	}
	if (saved.devices_flushed)
		w->devices_flushed_mono = mono;
	w->clock_fwd_ms = 0;
	if (w->clock_back_ms > 0) {
		/* the same for what the writer holds; cached devices are read again from their rows */
		agentseen_clock_set_back(w->agents_seen, now, w->clock_back_ms);
		seqtrack_clock_set_back(w->seq, now, w->clock_back_ms);
		devcache_clear(w->devs);
		w->clock_back_ms = 0;
	}
	add_counts(w);
	atomic_fetch_add(&w->p.metrics->batches_committed, 1);
	atomic_store(&w->p.metrics->device_cache_evictions, devcache_evictions(w->devs));
	atomic_store(&w->p.metrics->last_commit_ms, now);
	atomic_store(&w->p.metrics->last_commit_mono, mono);
	return 0;
fail:
	store_w_rollback(w->p.store);
fail_committed:
	seqtrack_abort(w->seq);
	agentseen_aborted(w->agents_seen);
	/* the devices seen by committed batches stay noted until a flush of them commits */
	devcache_seen_abort(w->devs);
	devcache_clear(w->devs);
	holdlog_clear(w->holds);
	alertlog_abort(w->alert_lines); /* those alerts do not exist: the store has none of them */
	w->device_count = store_w_device_count(w->p.store);
	/* the rules moved with the rolled-back records: take their state from the store again */
	w->conditions_stale = writer_load_conditions(w) != 0;
	if (w->conditions_stale)
		SP_WARN("alerts", "cannot reload the alert state; the next batch tries again first");
	return rc;
}

static int publish_ack(void *ctx, const char *site, const char *agent, int64_t seq)
{
	struct writer *w = ctx;
	/* handed to the ingest's acker thread: the writer never waits on MQTT */
	return ingest_queue_ack(w->p.ingest, site, agent, seq);
}

/*
 * After a good batch, when due: merge a bounded number of small reading
 * chunks (store_w_compact) in a transaction of its own, so a failure here
 * never holds up readings or acks. The store logs the cause. The next
 * pass is due in COMPACT_EVERY_MS, or, while the store says it is behind,
 * after COMPACT_REST times this pass's duration (see COMPACT_BUDGET).
 */
static void compact(struct writer *w, int64_t now)
{
	struct store_compaction c;
	int64_t start = sp_mono_us();
	int rc = store_w_begin(w->p.store);
	if (rc == 0) {
		rc = store_w_compact(w->p.store, now, COMPACT_BUDGET, COMPACT_MAX_MS, &c);
		if (rc == 0)
			rc = store_w_commit(w->p.store); /* ends the transaction either way */
		else
			store_w_rollback(w->p.store);
	}
	int64_t end = sp_mono_us();
	if (rc) {
		atomic_fetch_add(&w->p.metrics->compactions_failed, 1);
		w->compact_due_us = start + COMPACT_EVERY_MS * 1000;
		return;
	}
	atomic_fetch_add(&w->p.metrics->chunks_compacted, (uint64_t)c.merged);
	atomic_store(&w->p.metrics->compaction_backlog, c.backlog);
	atomic_store(&w->p.metrics->compaction_lag_ms, c.lag_ms);
	w->compact_due_us =
	    c.more ? end + COMPACT_REST * (end - start) : start + COMPACT_EVERY_MS * 1000;
}

/*
 * The wall clock's lead on the monotonic one drops when the wall clock is
 * set back (NTP correcting a clock that ran ahead): the liveness times
 * stamped while it ran ahead lie in the future then, where they would keep
 * devices and gateways looking heard, and their gaps open, until the clock
 * caught up. The next batch moves them back (process_batch).
 *
 * It grows when the wall clock is set forward (NTP correcting a clock that
 * ran behind, or a host resumed from a pause, which the monotonic clock does
 * not count): every silence measured on the wall clock then looks longer by
 * the step. Open gaps would expire early (the ack would pass messages their
 * agents still hold), the next offline sweep would find the whole fleet
 * silent (an alert and mail per device), and every critical alert nobody
 * has acknowledged would be reminded at once. So gaps count from the step
 * later, the sweep waits offline_ms again (link_settled), as after a
 * reconnect of our own: each device that reports is heard again first, and
 * the next batch puts off by the step the reminders of the active alerts
 * the old clock stamped in this process (clock_fwd_ms, process_batch).
 */
static void note_clock(struct writer *w, int64_t now, int64_t mono)
{
	int64_t off = now - mono;
	if (w->clock_off_known && off < w->clock_off - CLOCK_STEP_MS) {
		int64_t back = w->clock_off - off;
		w->clock_back_ms += back;
		rules_clock_set_back(w->rules, now, back);
		w->fwd_ms = 0; /* arrivals stamped from now on may lie below fwd_upto */
		SP_WARN("writer", "the collector's clock was set back %lld s; the liveness times it "
				  "stamped while it ran ahead move back as much",
			(long long)((back + 500) / 1000));
	} else if (w->clock_off_known && off > w->clock_off + CLOCK_STEP_MS) {
		int64_t fwd = off - w->clock_off;
		seqtrack_clock_set_forward(w->seq, fwd);
		rules_clock_set_forward(w->rules, fwd);
		w->clock_fwd_ms += fwd;
		/*
		 * What waits in the queues was stamped by the old clock, at or before
		 * now - fwd (the step came since the last call, well under fwd ago);
		 * what arrives from now on, after it (process_batch).
		 */
		w->fwd_upto = now - fwd;
		w->fwd_ms = fwd;
		w->link_up_since = 0; /* link_settled starts its wait again */
		SP_WARN("writer", "the collector's clock was set forward %lld s; open sequence gaps "
				  "and unacknowledged alerts' reminders wait as much longer, and "
				  "offline alerts wait %lld s for every device to be heard again",
			(long long)((fwd + 500) / 1000), (long long)(w->p.offline_ms / 1000));
	}
	w->clock_off = off;
	w->clock_off_known = true;
}

/* The births and states among the first n messages of the batch. */
static uint64_t count_retained(const struct writer *w, size_t n)
{
	uint64_t count = 0;
	for (size_t i = 0; i < n; i++) {
		struct sp_topic t;
		/* parsed here again: a batch can fail before its topics were (prepare_agents) */
		if (sp_topic_parse(w->msgs[i].topic, w->msgs[i].topic_len, &t) == 0 &&
		    (t.kind == SP_TOPIC_BIRTH || t.kind == SP_TOPIC_STATE))
			count++;
	}
	return count;
}

/*
 * After a commit worked again, if failed batches dropped births or states.
 * Those are retained and sent once per agent connection: unlike data, which
 * stays in the agents' spools until acked, no agent sends them again, and
 * without them new devices stay unknown and a gateway's goodbye unheard until
 * its next reconnect. So the broker is asked for all of them again (the
 * ingest subscribes to their filters once more, on the main thread: the
 * writer never calls into Paho). Applying a birth or state that was stored
 * already is harmless: every start of the collector receives them all again
 * too. What the broker sends is each agent's newest, so one dropped and
 * since replaced is not missed either. They arrive with their old ts: to
 * link_settled this is a new subscription, whose retained messages it
 * waits out (device_offline_s) before judging gateways' clocks by their
 * states, or silences (meanwhile agents resend the data the failed batches
 * dropped): from now, and again from when the ingest subscribes, which is
 * up to [store] reask_interval_s later when the last re-ask was more
 * recent than that (a flapping store must not have the whole fleet's
 * resent at every recovery: reask.h; nor hold the sweep back for good:
 * hold_sweeps).
 */
static void ask_retained(struct writer *w)
{
	SP_INFO("writer", "store works again: asking the broker for the retained births and states "
			  "again (%llu dropped with failed batches)",
		(unsigned long long)w->retained_dropped);
	ingest_ask_retained(w->p.ingest);
	w->retained_dropped = 0;
	(void)hold_sweeps(w); /* its WARN says when it no longer waits */
}

/*
 * The first commit after failed batches. Their messages were dropped,
 * arrivals included (the agents resend the data: no ack covered it), so
 * the stored liveness of every gateway and device heard during the outage
 * is as old as the outage: a sweep now would alert gateway.offline for
 * those without a message in this batch, and lift/charger.offline for
 * their devices. As after a reconnect, the sweep waits device_offline_s
 * (link_settled), in which every agent sending anything is heard again
 * (hold_sweeps: not for ever when the store keeps failing).
 */
static void recover(struct writer *w)
{
	w->failing = false;
	if (hold_sweeps(w))
		SP_INFO("writer", "store works again: storing and acknowledging; offline alerts wait "
				  "%lld s for the gateways to be heard again",
			(long long)(w->p.offline_ms / 1000));
	else
		SP_INFO("writer", "store works again: storing and acknowledging");
}

static void run_once(struct writer *w, size_t n, bool flush_all)
{
	int64_t now = sp_now_ms();
	/* the cadence by the monotonic clock: a wall clock set back must not stop the ticks */
	int64_t mono = sp_mono_ms();
	note_clock(w, now, mono);
	bool expire = mono - w->last_expire_mono >= EXPIRE_EVERY_MS;
	if (expire)
		w->last_expire_mono = mono;
	if (n > 0 || expire || flush_all || w->clock_back_ms > 0 || w->clock_fwd_ms > 0) {
		int rc = process_batch(w, n, expire, flush_all, now, mono);
		if (rc) {
			atomic_fetch_add(&w->p.metrics->batches_failed, 1);
			atomic_fetch_add(&w->p.metrics->messages_dropped_store, n);
			atomic_store(&w->p.metrics->store_ok, false);
			/* the store logged the cause (ERROR, once a minute); here: what it means */
			if (!w->failing)
				SP_WARN("writer", "cannot store a batch (%zu messages): %s; acks stop "
						  "advancing (agents keep their data) until the store "
						  "works again",
					n, sp_strerror(rc));
			w->failing = true;
			w->retained_dropped += count_retained(w, n);
			if (n > 0)
				queue_release(w->p.queue, n);
			sp_sleep_ms(FAIL_PAUSE_MS);
			return;
		}
		if (w->failing) {
			recover(w);
			atomic_store(&w->p.metrics->store_ok_mono, mono);
		}
		if (w->retained_dropped > 0)
			ask_retained(w);
		atomic_store(&w->p.metrics->store_ok, true);
	}
	if (n > 0)
		queue_release(w->p.queue, n);
	/* after the release: the queue has its room back while compaction runs */
	if (!w->failing && sp_mono_us() >= w->compact_due_us)
		compact(w, now);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	int64_t stop_deadline = 0;
	for (;;) {
		if (sp_drain_over(atomic_load(&w->stop), atomic_load(&w->drain_ms), &stop_deadline))
			break;
		size_t n = queue_peek(w->p.queue, w->msgs, (size_t)w->p.batch_max, PEEK_WAIT_MS);
		/*
		 * Group commit: a small batch right after a commit waits out the rest
		 * of commit_interval_ms for company, so a steady stream costs one
		 * fsync per interval instead of one per handful of messages.
		 */
		int64_t since = sp_mono_ms() - w->last_commit_mono;
		if (n > 0 && n < (size_t)w->p.batch_max && since < w->p.commit_interval_ms &&
		    !atomic_load(&w->stop)) {
			sp_sleep_ms(w->p.commit_interval_ms - since);
			n = queue_peek(w->p.queue, w->msgs, (size_t)w->p.batch_max, 0);
		}
		if (n > 0)
			w->last_commit_mono = sp_mono_ms();
		uint64_t epoch = ingest_epoch(w->p.ingest);
		if (epoch != w->epoch_seen && ingest_connected(w->p.ingest)) {
			/* the broker may have restarted without its retained acks: say them again */
			w->epoch_seen = epoch;
			seqtrack_republish_all(w->seq);
		}
		run_once(w, n, false);
		struct queue_stats qs, up;
		queue_get_stats(w->p.queue, &qs);
		queue_get_stats(w->p.upstream, &up);
		seqtrack_publish_due(w->seq, sp_mono_ms(), qs.depth + up.depth == 0, publish_ack, w);
		atomic_store(&w->p.metrics->pending_acks,
			     seqtrack_pending_acks(w->seq) + ingest_acks_waiting(w->p.ingest));
		if (n == 0 && qs.depth == 0 && atomic_load(&w->stop))
			break;
	}
	/* last words: liveness not yet written, and every ack not yet said, whatever the pacing */
	run_once(w, 0, true);
	seqtrack_publish_due(w->seq, sp_mono_ms() + SEQTRACK_ACK_INTERVAL_MS, true, publish_ack, w);
	return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static int load_agent(void *ctx, int64_t agent_id, const char *site, const char *agent,
		      const struct store_agent_progress *p)
{
	struct writer *w = ctx;
	struct seq_agent *a = seqtrack_add(w->seq, site, agent, agent_id);
	if (a == NULL)
		return SP_ENOMEM;
	if (seqtrack_restore(w->seq, a, p->acked, p->done, p->missing, p->gap_since_ms))
		SP_WARN("writer", "%s/%s: unreadable sequence state; continuing from ack %lld", site,
			agent, (long long)p->acked);
	return 0;
}

static void writer_free(struct writer *w)
{
	sp_decoder_destroy(w->dec);
	seqtrack_destroy(w->seq);
	devcache_destroy(w->devs);
	rules_destroy(w->rules);
	holdlog_destroy(w->holds);
	alertlog_destroy(w->alert_lines);
	alertmail_destroy(w->mail);
	free(w->msgs);
	free(w->topics);
	free(w->topic_ok);
	agentseen_destroy(w->agents_seen);
	sp_buf_free(&w->done);
	sp_buf_free(&w->missing);
	sp_buf_free(&w->meta);
	free(w);
}

struct writer *writer_start(const struct writer_params *p)
{
	struct writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->p = *p;
	w->started_wall = sp_now_ms();
	size_t n = (size_t)p->batch_max;
	w->dec = sp_decoder_create();
	w->seq = seqtrack_create(p->gap_window_ms);
	w->devs = devcache_create((size_t)w->p.device_cache);
	w->rules = rules_create(p->rules);
	w->holds = holdlog_create();
	w->alert_lines = alertlog_create(ALERT_LINES_MAX);
	w->agents_seen = agentseen_create(p->device_seen_flush_ms);
	if (p->mail && (w->mail = alertmail_create(p->mail)) == NULL)
		goto fail;
	w->msgs = calloc(n, sizeof(*w->msgs));
	w->topics = calloc(n, sizeof(*w->topics));
	w->topic_ok = calloc(n, sizeof(*w->topic_ok));
	if (!w->dec || !w->seq || !w->devs || !w->rules || !w->holds || !w->alert_lines ||
	    !w->agents_seen ||
	    !w->msgs || !w->topics || !w->topic_ok)
		goto fail;
	if (store_w_load_agents(p->store, load_agent, w) || writer_load_conditions(w) ||
	    store_w_load_fault_clears(p->store, RULES_FAULT_CLEARS_MAX, writer_load_fault_clear, w))
		goto fail;
	w->clears_untrimmed = RULES_FAULT_CLEARS_MAX; /* the first clear trims what earlier runs left */
	w->progress_rows = p->progress_fold_commits; /* the first commit folds earlier runs' log */
	w->device_count = store_w_device_count(p->store);
	atomic_store(&p->metrics->agents, seqtrack_count(w->seq));
	SP_INFO("writer", "%zu agents and %lld devices known; %zu alert conditions held",
		seqtrack_count(w->seq), (long long)w->device_count, rules_count(w->rules));
	/*
	 * Liveness stamped later than now: the clock was set back while the
	 * collector was stopped (or the file comes from a host whose clock ran
	 * ahead). By how much is not known; taking the newest stamp for the
	 * moment of the stop keeps the silences between the stamps and leaves
	 * none in the future. The first batch moves them, as after note_clock.
	 */
	int64_t newest = store_w_newest_stamp(p->store), now = sp_now_ms();
	if (newest > now + CLOCK_STEP_MS) {
		w->clock_back_ms = newest - now;
		SP_WARN("writer", "liveness times in the store lie up to %lld s in the future: the "
				  "clock was set back while the collector was stopped; they move back "
				  "as much",
			(long long)((w->clock_back_ms + 500) / 1000));
	}
	w->last_expire_mono = sp_mono_ms();
	w->compact_due_us = sp_mono_us() + COMPACT_EVERY_MS * 1000;
	w->started = true;
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		w->started = false;
		goto fail;
	}
	(void)pthread_setname_np(w->thread, "sp-writer"); /* for top -H, perf, gdb */
	return w;
fail:
	writer_free(w);
	return NULL;
}

void writer_stop(struct writer *w, int drain_ms)
{
	if (w == NULL)
		return;
	/* the queue is closed by now: the thread drains it (within drain_ms) and ends */
	atomic_store(&w->drain_ms, drain_ms);
	atomic_store(&w->stop, true);
	if (w->started)
		pthread_join(w->thread, NULL);
	writer_free(w);
}
