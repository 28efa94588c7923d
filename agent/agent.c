/*
 * agent.c - the site gateway's main loop (see agent.h).
 *
 * Every TICK_MS the loop:
 *   1. drives the MQTT connection; on each (re)connect it subscribes to its
 *      ack and cmd topics, publishes birth and state (retained) and starts
 *      publishing the spool again from its oldest message;
 *   2. applies the latest end-to-end ack to the spool (an ack at or past
 *      the next seq moves the next seq to ack + 1); a new spool learns its
 *      first seq (learn_seq);
 *   3. steps the simulator; records collect in a batch, which becomes a
 *      data message (next seq) when it holds batch_max records or its
 *      oldest record waited batch_ms; the message is committed to the
 *      spool (and journal) before anything is published; the first batch
 *      of a run starts with the records a stop before the seq was known
 *      kept in the spool (load_pending), which leave it with their message;
 *   4. publishes spooled messages oldest first, within two windows:
 *      max_inflight awaiting PUBACK and max_unacked awaiting the
 *      collector's ack, the latter counted from the oldest held message;
 *      after a (re)connect only once this loop has handled the connection
 *      and the collector's ack has come or ack_wait_s has passed
 *      (link_ready, may_publish);
 *   5. if unacked messages exist and the ack has not advanced for
 *      resend_s (doubling up to 32x), goes back and republishes from the
 *      oldest unacked message (the collector drops what it already has).
 *
 * Threads: this loop owns sim, spool, journal and every sp_mqtt_* call.
 * The Paho receive thread runs on_message(), which stores the highest ack
 * seen (atomic), judges the clock from an ack that covers the probe this
 * loop left (probe_lock; clockcheck.h) and puts commands into a small
 * locked ring, and on_lost().
 * Paho connects on its own threads at any moment: the epoch this loop has
 * handled (epoch_seen) tells this connection's state from the last one's.
 */
#include "agent.h"
#include "clockcheck.h"

#include "journal.h"
#include "sim.h"
#include "spool.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"
#include "sitepulse/mqtt.h"
#include "sitepulse/topic.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 100
#define CMD_RING 16        /* commands waiting for the main loop */
#define CMD_IDS_KEPT 64    /* command ids remembered to apply each once */
#define PENDING_MAX SP_RECORDS_MAX /* records held while the seq is unknown */
#define STATS_EVERY_MS (5 * 60 * 1000)
/*
 * A new spool starts at seq 1 only this long after the broker granted the
 * ack subscription (and ack_wait_s after connecting): the retained ack, if
 * any, follows the SUBACK on the same connection at once, but is handled on
 * Paho's thread moments later.
 */
#define RETAINED_GRACE_MS 1000
/*
 * On stop: how long the broker's ack of our offline state is waited for.
 * With the disconnect after it (at most 2 s, agent_destroy) the agent exits
 * within CONTRACT §7's 5 s.
 */
#define STOP_STATE_WAIT_MS 1500

struct agent {
	const struct agent_conf *conf;
	struct spool *spool;
	struct journal *journal;
	struct sim *sim;
	struct sp_mqtt *mqtt;
	char t_birth[SP_TOPIC_MAX], t_data[SP_TOPIC_MAX], t_state[SP_TOPIC_MAX],
		t_ack[SP_TOPIC_MAX], t_cmd[SP_TOPIC_MAX];
	struct sp_buf birth;   /* birth payload, built once */
	struct sp_buf out;     /* scratch for payloads */
	struct sim_scenario scenarios[AGENT_SCENARIOS_MAX];

	/* the open batch */
	struct sp_record *batch;
	size_t nbatch;
	int64_t batch_started_ms;
	int64_t records_dropped; /* while the seq was unknown or the spool failing, batch full */
	/*
	 * The oldest nkept records of the batch are rows of the spool's pending
	 * table (kept at the last stop, before the seq was known), their ids in
	 * kept_ids: the message that takes them deletes them (spool_pending_*).
	 */
	int64_t *kept_ids;
	size_t nkept;
	/*
	 * The newest kept id dropped from the batch (full, the seq still
	 * unknown) whose row is still in the table: the next message deletes it
	 * with its own. Without it, once every kept record had been dropped the
	 * rows stayed, and a restart weeks later sent those stale records again.
	 */
	int64_t kept_dropped_upto;

	/* the spool refusing appends (a full disk): records wait in the batch */
	bool spool_failing;
	int64_t spool_failing_since_ms;
	int64_t dropped_at_failure; /* records_dropped when the failure began */
	struct sp_ratelimit spool_fail_log;

	/* delivery (main loop only) */
	uint64_t epoch_seen;     /* the connection on_connected() last handled */
	int64_t connected_at_ms; /* mono time of the current connection */
	int64_t subscribed_at_ms; /* mono time its subscriptions were seen granted, 0 = not yet */
	bool publishing;         /* this connection: the ack came, or ack_wait_s passed */
	int64_t sent_upto;       /* highest seq published on this connection */
	int64_t applied_ack;     /* highest ack applied to the spool */
	int64_t last_progress_ms;
	int64_t resend_after_ms;
	int64_t published, resends, created;
	int64_t last_stats_ms;
	/*
	 * Highest seq published at least once since the start, or held in the
	 * spool at the start (the collector may have had those before): a
	 * publication of a higher seq is its first anywhere.
	 */
	int64_t first_published;

	/*
	 * The clock probe: a message's seq and the wall-clock time of its first
	 * publication, left by this loop when none is pending, taken by the
	 * Paho thread with the first ack that covers it (clockcheck.h).
	 */
	pthread_mutex_t probe_lock;
	int64_t probe_seq;       /* 0 = none pending */
	int64_t probe_pub_ms;

	/* written by the Paho thread */
	atomic_llong acked;      /* highest ack seq received, -1 = none yet */
	atomic_bool ack_seen;    /* a (retained) ack arrived on this connection */
	struct sp_ratelimit bad_input_log; /* Paho's receive thread only (callbacks are serial) */
	struct clockcheck clock;           /* Paho's receive thread only */
	pthread_mutex_t cmd_lock;
	struct sp_cmd cmds[CMD_RING];
	unsigned ncmds;
	unsigned cmds_dropped;

	/* main loop: ids of applied commands */
	char cmd_ids[CMD_IDS_KEPT][SP_ID_MAX + 1];
	unsigned cmd_ids_next;
};

/* ---------------------------------------------------------------- Paho thread */

/*
 * The highest ack believed. An ack beyond our next seq is taken as the sign
 * of a rolled-back spool and we continue at ack + 1 (reconcile_next_seq);
 * one this close to the end of the seqs (2^53 - 1, exact in JSON) would
 * leave us nothing to continue with, and no agent gets there (2^40 seqs are
 * 35 years at 1,000 messages a second): it comes from a broken or hostile
 * publisher, and taking it would delete the spool and stop the agent.
 */
#define ACK_SEQ_MAX (SP_SEQ_MAX - (1LL << 40))

/*
 * Whether a line about bad input may be logged: at most 10 per 10 s, as the
 * collector's rejections, so a flood of bad acks or commands cannot fill the
 * disk with log. Paho thread.
 */
static bool bad_input_loggable(struct agent *a)
{
	uint64_t suppressed;
	bool ok = sp_ratelimit_allow(&a->bad_input_log, sp_mono_ms(), 10, 10000, &suppressed);
	if (suppressed)
		SP_WARN("agent", "%llu more malformed acks or bad commands were not logged",
			(unsigned long long)suppressed);
	return ok;
}

/*
 * An ack of seq stamped ts by the collector: when it covers the pending
 * probe, the two clocks are compared (clockcheck.h) and a disagreement
 * logged. Paho thread.
 */
static void check_clock(struct agent *a, int64_t seq, int64_t ts)
{
	int64_t pub_ms = 0;
	pthread_mutex_lock(&a->probe_lock);
	if (a->probe_seq > 0 && seq >= a->probe_seq) {
		pub_ms = a->probe_pub_ms;
		a->probe_seq = 0;
	}
	pthread_mutex_unlock(&a->probe_lock);
	if (pub_ms == 0)
		return;
	int64_t off;
	switch (clockcheck_ack(&a->clock, pub_ms, sp_now_ms(), ts, sp_mono_ms(), &off)) {
	case CLOCKCHECK_OFF:
		SP_WARN("agent", "this gateway's clock is %lld s %s the collector's (from its acks): "
			"every reading is stamped by it; set the clock right (NTP)",
			(long long)(off > 0 ? off : -off) / 1000, off > 0 ? "ahead of" : "behind");
		break;
	case CLOCKCHECK_AGAIN:
		SP_INFO("agent", "this gateway's clock agrees with the collector's again (within %d s)",
			CLOCKCHECK_TOLERANCE_MS / 1000);
		break;
	case CLOCKCHECK_QUIET:
		break;
	}
}

static void on_message(void *ctx, const char *topic, size_t topic_len, const void *payload,
		       size_t len)
{
	struct agent *a = ctx;
	struct sp_topic t;
	struct sp_reject_info why;

	if (sp_topic_parse(topic, topic_len, &t) != 0)
		return;
	if (t.kind == SP_TOPIC_ACK) {
		int64_t seq, ts;
		if (sp_decode_ack(payload, len, &seq, &ts) != 0) {
			if (bad_input_loggable(a))
				SP_WARN("agent", "ignoring malformed ack on %s", topic);
			return;
		}
		if (seq > ACK_SEQ_MAX) {
			if (bad_input_loggable(a))
				SP_WARN("agent", "ignoring ack of seq %lld on %s: no agent gets that far",
					(long long)seq, topic);
			return;
		}
		long long cur = atomic_load(&a->acked);
		while (seq > cur && !atomic_compare_exchange_weak(&a->acked, &cur, seq))
			;
		/*
		 * The first ack of a connection is usually the retained one, published
		 * before we connected, perhaps for seqs of a spool since rolled back:
		 * only acks after it are compared with the clock probe.
		 */
		if (atomic_exchange(&a->ack_seen, true))
			check_clock(a, seq, ts);
	} else if (t.kind == SP_TOPIC_CMD) {
		struct sp_cmd cmd;
		if (sp_decode_cmd(payload, len, sp_now_ms(), &cmd, &why) != 0) {
			if (bad_input_loggable(a))
				SP_WARN("agent", "ignoring bad command on %s: %s (%s)", topic,
					sp_reject_name(why.reason), why.field ? why.field : "-");
			return;
		}
		pthread_mutex_lock(&a->cmd_lock);
		if (a->ncmds < CMD_RING)
			a->cmds[a->ncmds++] = cmd;
		else
			a->cmds_dropped++;
		pthread_mutex_unlock(&a->cmd_lock);
	}
}

static void on_lost(void *ctx)
{
	struct agent *a = ctx;
	atomic_store(&a->ack_seen, false);
}

/* ---------------------------------------------------------------- main loop helpers */

static int seal_message(struct agent *a);

static void on_record(void *ctx, const struct sp_record *r)
{
	struct agent *a = ctx;
	/*
	 * A burst (every port of a big site at once) seals full messages right
	 * away; not while the spool fails: the tick retries it, once.
	 */
	if (a->nbatch >= (size_t)a->conf->agent.batch_max && spool_next_seq(a->spool) > 0 &&
	    !a->spool_failing)
		seal_message(a);
	if (a->nbatch >= PENDING_MAX) {
		/* the seq is still unknown (or the spool failed): keep the newest records */
		memmove(a->batch, a->batch + 1, (a->nbatch - 1) * sizeof(*a->batch));
		a->nbatch--;
		if (a->nkept > 0) { /* its row goes with the next seal or save */
			a->kept_dropped_upto = a->kept_ids[0];
			memmove(a->kept_ids, a->kept_ids + 1, --a->nkept * sizeof(*a->kept_ids));
		}
		if (a->records_dropped++ == 0)
			SP_WARN("agent", "cannot create data messages yet (no sequence number from the "
					 "collector's ack, or spool failure): dropping oldest records");
	}
	if (a->nbatch == 0)
		a->batch_started_ms = sp_mono_ms();
	a->batch[a->nbatch++] = *r;
}

static void on_spool_drop(void *ctx, int64_t seq)
{
	struct agent *a = ctx;
	if (a->journal && journal_dropped(a->journal, seq) != 0) {
		/* as for a message's line (seal_message): nothing may follow a torn line */
		SP_ERROR("agent", "journal write failed at the drop of seq %lld: journalling stops "
				  "until restart", (long long)seq);
		journal_close(a->journal);
		a->journal = NULL;
	}
}

/*
 * The spool refused an append (typically a full disk). Not fatal: the records
 * stay in the batch (bounded, oldest dropped), the tick tries again, and
 * publishing and acks go on - an ack frees room in the spool.
 */
static void spool_failed(struct agent *a, int rc)
{
	int64_t now = sp_mono_ms();
	uint64_t suppressed;
	if (!a->spool_failing) {
		a->spool_failing = true;
		a->spool_failing_since_ms = now;
		a->dropped_at_failure = a->records_dropped;
		a->spool_fail_log = (struct sp_ratelimit){0};
		sp_ratelimit_allow(&a->spool_fail_log, now, 1, 60000, &suppressed);
		SP_WARN("agent", "cannot spool a data message (%s): keeping records in memory (at "
				 "most %d, then the oldest are dropped) and trying again every %d ms; "
				 "the spool is still published",
			sp_strerror(rc), PENDING_MAX, TICK_MS);
	} else if (sp_ratelimit_allow(&a->spool_fail_log, now, 1, 60000, &suppressed)) {
		SP_WARN("agent", "spool still failing after %lld s (%s): %zu records in memory, "
				 "%lld dropped",
			(long long)((now - a->spool_failing_since_ms) / 1000), sp_strerror(rc),
			a->nbatch, (long long)(a->records_dropped - a->dropped_at_failure));
	}
}

/* Turns up to batch_max records of the batch into a spooled data message. */
static int seal_message(struct agent *a)
{
	size_t n = a->nbatch < (size_t)a->conf->agent.batch_max ? a->nbatch
								 : (size_t)a->conf->agent.batch_max;
	int64_t seq = spool_next_seq(a->spool);
	int rc;

	sp_buf_reset(&a->out);
	rc = sp_encode_data(&a->out, seq, sp_now_ms(), a->batch, n);
	if (rc == SP_ETOOBIG && n > 1) {
		n /= 2; /* exceptionally large records: split */
		sp_buf_reset(&a->out);
		rc = sp_encode_data(&a->out, seq, sp_now_ms(), a->batch, n);
	}
	if (rc) {
		spool_failed(a, rc);
		return rc;
	}
	/*
	 * Kept records among them, and those dropped before them, leave the
	 * pending table with this message's commit.
	 */
	size_t k = n < a->nkept ? n : a->nkept;
	int64_t upto = k > 0 ? a->kept_ids[k - 1] : a->kept_dropped_upto;
	rc = spool_append_pending(a->spool, sp_now_ms(), a->out.data, a->out.len, upto,
				  on_spool_drop, a);
	if (rc) {
		spool_failed(a, rc);
		return rc;
	}
	if (a->spool_failing) {
		a->spool_failing = false;
		SP_INFO("agent", "spool works again after %lld s; %lld records were dropped meanwhile",
			(long long)((sp_mono_ms() - a->spool_failing_since_ms) / 1000),
			(long long)(a->records_dropped - a->dropped_at_failure));
	}
	if (a->journal && journal_message(a->journal, seq, a->out.data, a->out.len) != 0) {
		/*
		 * The journal is an audit copy; the spool holds the message. Lines
		 * written after a failed one could follow a torn line, so stop: the
		 * next start cuts the torn line and catches up from the spool.
		 */
		SP_ERROR("agent", "journal write failed at seq %lld: journalling stops until restart",
			 (long long)seq);
		journal_close(a->journal);
		a->journal = NULL;
	}
	a->created++;
	memmove(a->batch, a->batch + n, (a->nbatch - n) * sizeof(*a->batch));
	a->nbatch -= n;
	memmove(a->kept_ids, a->kept_ids + k, (a->nkept - k) * sizeof(*a->kept_ids));
	a->nkept -= k;
	a->kept_dropped_upto = 0;
	a->batch_started_ms = sp_mono_ms();
	return 0;
}

/*
 * Seals the batch into messages while it is due (or all of it: force).
 * Stops at the first failure (logged by spool_failed) and returns it; the
 * records stay in the batch.
 */
static int flush_batches(struct agent *a, bool force)
{
	if (spool_next_seq(a->spool) <= 0)
		return 0;
	while (a->nbatch > 0 &&
	       (force || a->nbatch >= (size_t)a->conf->agent.batch_max ||
		sp_mono_ms() - a->batch_started_ms >= a->conf->agent.batch_ms)) {
		int rc = seal_message(a);
		if (rc)
			return rc;
	}
	return 0;
}

static void on_connected(struct agent *a)
{
	struct spool_stats st;

	a->connected_at_ms = sp_mono_ms();
	a->subscribed_at_ms = 0;
	a->publishing = false;
	/* cmd only once ack is granted: a refused cmd (an ACL) must not hold learn_seq back */
	sp_mqtt_subscribe(a->mqtt, a->t_ack, 1);
	/* control messages: never held back by the data window */
	sp_mqtt_publish_control(a->mqtt, a->t_birth, a->birth.data, a->birth.len, true, 0);
	sp_buf_reset(&a->out);
	sp_encode_state(&a->out, true, sp_now_ms());
	sp_mqtt_publish_control(a->mqtt, a->t_state, a->out.data, a->out.len, true, 0);
	/* what the broker had in flight for us is gone: start over from the oldest unacked */
	spool_get_stats(a->spool, &st);
	a->sent_upto = st.first_seq > 0 ? st.first_seq - 1 : a->applied_ack;
	a->last_progress_ms = sp_mono_ms();
	a->resend_after_ms = a->conf->agent.resend_s * 1000;
}

/*
 * Whether the main loop has handled the current connection (on_connected).
 * Paho connects on its own thread at any moment: until on_connected has
 * run for it, connected_at_ms, subscribed_at_ms and publishing describe the
 * previous connection (or none), and ack_seen may be from before either.
 */
static bool link_ready(const struct agent *a)
{
	return sp_mqtt_connected(a->mqtt) && sp_mqtt_epoch(a->mqtt) == a->epoch_seen;
}

/*
 * Notes when the broker has granted this connection's ack subscription, the
 * only one asked for until then, and then asks for cmd.
 */
static void watch_subscriptions(struct agent *a)
{
	if (a->subscribed_at_ms == 0 && link_ready(a) && sp_mqtt_subscribed(a->mqtt)) {
		a->subscribed_at_ms = sp_mono_ms();
		sp_mqtt_subscribe(a->mqtt, a->t_cmd, 1);
	}
}

/* Whether ack_wait_s has passed on this connection without the collector's ack coming. */
static bool ack_wait_over(const struct agent *a)
{
	return sp_mono_ms() - a->connected_at_ms >= a->conf->agent.ack_wait_s * 1000;
}

/*
 * Learns the first seq of a new spool: the collector's ack + 1 (CONTRACT
 * §3.4). "No ack" is concluded only from a connection whose ack
 * subscription the broker granted RETAINED_GRACE_MS ago, so that a retained
 * ack would have come (even with ack_wait_s = 0): starting at 1 although the
 * collector knows us would make it discard everything as duplicates.
 */
static void learn_seq(struct agent *a)
{
	if (spool_next_seq(a->spool) > 0 || !link_ready(a))
		return;
	int64_t next = 0;
	if (atomic_load(&a->ack_seen)) {
		next = atomic_load(&a->acked) + 1;
	} else if (a->subscribed_at_ms > 0 &&
		   sp_mono_ms() - a->subscribed_at_ms >= RETAINED_GRACE_MS && ack_wait_over(a)) {
		next = 1; /* no retained ack: the collector has never heard of us */
	}
	if (next > 0 && spool_set_next_seq(a->spool, next) == 0)
		SP_INFO("agent", "new spool: starting at seq %lld", (long long)next);
}

/*
 * An ack at or beyond our next seq acknowledges seqs we have not created
 * (yet): the spool was rolled back (spool_sync off and a power loss, a VM
 * snapshot or a backup restored) or another agent publishes under our id.
 * The collector already holds those seqs and would discard what we create
 * with them as duplicates, so continue at ack + 1 (CONTRACT §3.4, as for a
 * lost spool). 0, or SP_EIO with next_seq unchanged (retried next tick).
 */
static int reconcile_next_seq(struct agent *a, int64_t ack)
{
	int64_t next = spool_next_seq(a->spool);
	if (next <= 0 || ack < next)
		return 0;
	int rc = spool_set_next_seq(a->spool, ack + 1);
	if (rc == 0) {
		SP_WARN("agent", "the collector acknowledges seq %lld but our next seq was %lld: the "
				 "spool was rolled back (restored, or unsynced writes lost) or another "
				 "agent uses our id; continuing at seq %lld",
			(long long)ack, (long long)next, (long long)(ack + 1));
		/* the collector had those seqs before we sent ours: no clock probe among them */
		if (a->first_published < ack)
			a->first_published = ack;
		pthread_mutex_lock(&a->probe_lock);
		if (a->probe_seq <= ack)
			a->probe_seq = 0;
		pthread_mutex_unlock(&a->probe_lock);
	}
	return rc;
}

static void apply_ack(struct agent *a)
{
	int64_t ack = atomic_load(&a->acked);
	if (ack <= a->applied_ack)
		return;
	/* delete first: next_seq then never falls at or below a held message */
	if (spool_ack(a->spool, ack) != 0 || reconcile_next_seq(a, ack) != 0)
		return;
	a->applied_ack = ack;
	a->last_progress_ms = sp_mono_ms();
	a->resend_after_ms = a->conf->agent.resend_s * 1000;
	if (a->sent_upto < ack)
		a->sent_upto = ack;
}

struct publish_ctx {
	struct agent *a;
	int64_t limit_seq; /* do not pass the unacked window */
	bool stop;
};

static int publish_one(void *ctx, int64_t seq, const char *payload, size_t len)
{
	struct publish_ctx *pc = ctx;
	struct agent *a = pc->a;
	if (seq > pc->limit_seq) {
		pc->stop = true;
		return 1;
	}
	/* a first publication: the collector receives it after now, whatever our clock says */
	bool first = seq > a->first_published;
	int64_t sent_ms = first ? sp_now_ms() : 0;
	int rc = sp_mqtt_publish(a->mqtt, a->t_data, payload, len, 1, false);
	if (rc) {
		pc->stop = true;
		return 1; /* window full or disconnected: continue next tick */
	}
	/* the first message outstanding starts the resend clock */
	if (a->sent_upto <= a->applied_ack)
		a->last_progress_ms = sp_mono_ms();
	a->sent_upto = seq;
	a->published++;
	if (first) {
		a->first_published = seq;
		pthread_mutex_lock(&a->probe_lock);
		if (a->probe_seq == 0) {
			a->probe_seq = seq;
			a->probe_pub_ms = sent_ms;
		}
		pthread_mutex_unlock(&a->probe_lock);
	}
	return 0;
}

/*
 * After a (re)connect, data waits until the collector's ack has come on
 * this connection (at once when the broker keeps it retained) or
 * ack_wait_s has passed. A broker restarted without persistence holds
 * neither the ack nor the collector's session until the collector is back
 * and publishes its acks again: what we published before would reach
 * nobody, come again later behind newer messages, and then move no alert
 * rule (docs/alerts.md, late data): an episode in it would open no alert.
 */
static bool may_publish(struct agent *a)
{
	if (a->publishing)
		return true;
	if (atomic_load(&a->ack_seen)) {
		a->publishing = true;
	} else if (ack_wait_over(a)) {
		a->publishing = true;
		SP_INFO("agent",
			"no ack from the collector %lld s after connecting: publishing anyway",
			(long long)a->conf->agent.ack_wait_s);
	}
	return a->publishing;
}

static void publish_spool(struct agent *a)
{
	struct spool_stats st;
	struct publish_ctx pc = {a, 0, false};

	if (!link_ready(a) || !may_publish(a))
		return;
	spool_get_stats(a->spool, &st);
	/*
	 * At most max_unacked messages outstanding, counted from the oldest one
	 * held. Not from the last ack: the overflow policy may have dropped
	 * messages the collector never acknowledged, and a window anchored at the
	 * ack would then end below the oldest held seq and publish nothing ever
	 * again. first_seq - 1 >= applied_ack since acked messages are deleted.
	 */
	pc.limit_seq = (st.messages > 0 ? st.first_seq - 1 : a->applied_ack) +
		       a->conf->mqtt.max_unacked;
	while (!pc.stop && a->sent_upto < st.last_seq &&
	       sp_mqtt_inflight(a->mqtt) < a->conf->mqtt.max_inflight) {
		int n = spool_each_after(a->spool, a->sent_upto, 64, publish_one, &pc);
		if (n <= 0)
			break;
	}
	/* go-back: nothing acknowledged for a while although messages are out */
	if (st.messages > 0 && a->sent_upto >= st.first_seq &&
	    sp_mono_ms() - a->last_progress_ms >= a->resend_after_ms) {
		SP_INFO("agent", "no ack beyond seq %lld for %lld s: publishing again from seq %lld",
			(long long)a->applied_ack, (long long)(a->resend_after_ms / 1000),
			(long long)st.first_seq);
		a->resends++;
		a->sent_upto = st.first_seq - 1;
		a->last_progress_ms = sp_mono_ms();
		int64_t cap = a->conf->agent.resend_s * 1000 * 32;
		a->resend_after_ms = a->resend_after_ms * 2 > cap ? cap : a->resend_after_ms * 2;
	}
}

static void cmd_note(struct agent *a, const char *id)
{
	size_t n = strnlen(id, SP_ID_MAX);
	memcpy(a->cmd_ids[a->cmd_ids_next], id, n);
	a->cmd_ids[a->cmd_ids_next][n] = '\0';
	a->cmd_ids_next = (a->cmd_ids_next + 1) % CMD_IDS_KEPT;
}

static bool cmd_seen(struct agent *a, const char *id)
{
	for (unsigned i = 0; i < CMD_IDS_KEPT; i++)
		if (strcmp(a->cmd_ids[i], id) == 0)
			return true;
	cmd_note(a, id);
	return false;
}

/*
 * A command applied before this run: its id stays applied. Only the ring kept
 * the ids, so a restart forgot them: the same id sent again turned a port off
 * a second time.
 */
static void cmd_restore(void *ctx, const char *id, const char *dev, int port)
{
	struct agent *a = ctx;
	(void)dev;
	(void)port;
	cmd_note(a, id);
}

/* At most this many ports the simulator does not have are named in the log at start. */
#define PORTS_GONE_LOGGED 8

struct port_restore {
	struct agent *a;
	int gone; /* ports this configuration does not have */
};

/*
 * A port a command turned off before this run (and no port_on put back)
 * stays off, however many commands came since (the ids are kept only
 * CMD_IDS_KEPT deep: restoring the ports of those alone put an overheating
 * port back in service once 64 newer commands had come). One this
 * configuration does not have (chargers or ports removed) is left alone, and
 * remembered: a configuration that has it again keeps it off.
 */
static void port_restore(void *ctx, const char *dev, int port)
{
	struct port_restore *pr = ctx;
	if (sim_port_keep_off(pr->a->sim, dev, port) == 0) {
		SP_INFO("agent", "%s port %d stays off (a port_off command before the restart)", dev,
			port);
	} else if (pr->gone++ < PORTS_GONE_LOGGED) {
		SP_WARN("agent", "%s port %d was turned off by a command before, but this "
				 "configuration has no such port: nothing to keep off (still remembered)",
			dev, port);
	}
}

static void apply_commands(struct agent *a)
{
	struct sp_cmd cmds[CMD_RING];
	unsigned n, dropped;

	pthread_mutex_lock(&a->cmd_lock);
	n = a->ncmds;
	memcpy(cmds, a->cmds, n * sizeof(cmds[0]));
	a->ncmds = 0;
	dropped = a->cmds_dropped;
	a->cmds_dropped = 0;
	pthread_mutex_unlock(&a->cmd_lock);
	if (dropped)
		SP_WARN("agent", "%u commands dropped: more than %d arrived between two ticks",
			dropped, CMD_RING);
	for (unsigned i = 0; i < n; i++) {
		if (cmd_seen(a, cmds[i].id))
			continue; /* applied once per id (CONTRACT §3.3) */
		const struct sp_cmd *c = &cmds[i];
		bool on = c->cmd == SP_CMD_PORT_ON;
		if (!sim_has_port(a->sim, c->dev, (int)c->port)) {
			/* not remembered in the spool: it would take a place of one applied */
			SP_WARN("agent", "command %s: no port %d on %s", c->id, (int)c->port,
				c->dev);
			continue;
		}
		/*
		 * remembered before it is applied: after a crash in between, the
		 * restart finds it and starts with the port off (or in service). A
		 * spool that cannot take it (a full disk) does not hold the command
		 * back: it is applied, and a restart forgets it.
		 */
		int added = spool_cmd_add(a->spool, c->id, c->cmd, c->dev, (int)c->port,
					  sp_now_ms(), CMD_IDS_KEPT);
		if (added == 0)
			continue; /* the spool has its id: applied before, when the ring had it too */
		if (added < 0)
			SP_WARN("agent", "command %s: not remembered in the spool (applied all "
					 "the same; a restart forgets it%s)",
				c->id, on ? ": the port is off again after it" : "");
		if (!on) {
			if (sim_port_off(a->sim, c->dev, c->port) == 0)
				SP_INFO("agent", "command %s: port_off %s port %d", c->id, c->dev,
					(int)c->port);
		} else if (sim_port_on(a->sim, c->dev, c->port) == 0) {
			SP_INFO("agent", "command %s: port_on %s port %d: back in service", c->id,
				c->dev, (int)c->port);
		} else {
			SP_INFO("agent", "command %s: port_on %s port %d: not off by a command, "
					 "nothing to do",
				c->id, c->dev, (int)c->port);
		}
	}
}

static void log_stats(struct agent *a, bool force)
{
	struct spool_stats st;
	int64_t now = sp_mono_ms();
	if (!force && now - a->last_stats_ms < STATS_EVERY_MS)
		return;
	a->last_stats_ms = now;
	spool_get_stats(a->spool, &st);
	SP_INFO("agent", "created %lld messages, published %lld (%lld go-backs), acked to seq %lld; "
			 "spool holds %lld messages / %lld bytes, %lld dropped; %lld records dropped; "
			 "%llu connections lost within 10 s of connecting",
		(long long)a->created, (long long)a->published, (long long)a->resends,
		(long long)a->applied_ack, (long long)st.messages, (long long)st.bytes,
		(long long)st.dropped_total, (long long)a->records_dropped,
		(unsigned long long)sp_mqtt_short_lived(a->mqtt));
}

/* ---------------------------------------------------------------- lifecycle */

/* A record kept at the last stop (spool_pending_save) goes into the batch. */
static void pending_restore(void *ctx, int64_t id, const struct sp_record *r)
{
	struct agent *a = ctx;
	if (a->nbatch >= PENDING_MAX)
		return; /* spool_pending_each gives PENDING_MAX at most */
	a->batch[a->nbatch++] = *r;
	a->kept_ids[a->nkept++] = id;
}

/*
 * Loads the records kept at the last stop, before the seq was known, into
 * the batch: they become the first data messages once it is (the newest
 * PENDING_MAX if more, as in memory). They stay in the spool until then.
 */
static void load_pending(struct agent *a)
{
	int n = spool_pending_each(a->spool, PENDING_MAX, pending_restore, a);
	if (n < 0) {
		SP_WARN("agent", "%s: the records kept at the last stop cannot be read (%s): they "
				 "stay in the spool and are read again at the next start",
			a->conf->agent.spool_path, sp_strerror(n));
		/* none taken: a seal must not delete what was not read */
		a->nbatch = 0;
		a->nkept = 0;
	} else if (n > 0) {
		a->batch_started_ms = sp_mono_ms();
		SP_INFO("agent", "%d records kept at the last stop (no sequence number then) go "
				 "into the next data messages",
			n);
	}
}

struct agent *agent_create(const struct agent_conf *conf)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct sim_params sp;
	struct sp_device_info devs[SP_DEVICES_MAX];
	char client_id[160], will[64];

	if (a == NULL)
		return NULL;
	a->conf = conf;
	pthread_mutex_init(&a->cmd_lock, NULL);
	pthread_mutex_init(&a->probe_lock, NULL);
	atomic_store(&a->acked, -1);
	a->applied_ack = -1;
	a->out.limit = SP_PAYLOAD_MAX;
	a->birth.limit = SP_PAYLOAD_MAX;

	const char *site = conf->agent.site, *id = conf->agent.id;
	if (sp_topic_format(a->t_birth, SP_TOPIC_MAX, site, id, SP_TOPIC_BIRTH) ||
	    sp_topic_format(a->t_data, SP_TOPIC_MAX, site, id, SP_TOPIC_DATA) ||
	    sp_topic_format(a->t_state, SP_TOPIC_MAX, site, id, SP_TOPIC_STATE) ||
	    sp_topic_format(a->t_ack, SP_TOPIC_MAX, site, id, SP_TOPIC_ACK) ||
	    sp_topic_format(a->t_cmd, SP_TOPIC_MAX, site, id, SP_TOPIC_CMD))
		goto fail;

	a->batch = calloc(PENDING_MAX, sizeof(*a->batch));
	a->kept_ids = calloc(PENDING_MAX, sizeof(*a->kept_ids));
	if (a->batch == NULL || a->kept_ids == NULL)
		goto fail;
	agent_conf_sim_params(conf, &sp, a->scenarios);
	a->sim = sim_create(&sp, sp_now_ms());
	if (a->sim == NULL) {
		SP_ERROR("agent", "cannot create the simulator (check [sim] and scenarios)");
		goto fail;
	}
	size_t ndev = sim_devices(a->sim, devs, SP_DEVICES_MAX);
	if (sp_encode_birth(&a->birth, sp_now_ms(), conf->agent.fw, devs, ndev))
		goto fail;

	a->spool = spool_open(conf->agent.spool_path, conf->agent.spool_max_mb * 1024 * 1024,
			      conf->agent.spool_sync_full);
	if (a->spool == NULL)
		goto fail;
	if (spool_next_seq(a->spool) > 0)
		a->first_published = spool_next_seq(a->spool) - 1;
	if (spool_cmd_each(a->spool, cmd_restore, a) < 0)
		SP_WARN("agent", "%s: the ids of the commands applied before cannot be read: the "
				 "same id sent again is applied again",
			conf->agent.spool_path);
	struct port_restore pr = {a, 0};
	if (spool_port_off_each(a->spool, port_restore, &pr) < 0)
		SP_WARN("agent", "%s: the ports turned off by commands before cannot be read: they "
				 "are in service again",
			conf->agent.spool_path);
	else if (pr.gone > PORTS_GONE_LOGGED)
		SP_WARN("agent", "%d ports turned off by commands before are not in this "
				 "configuration (%d named above)",
			pr.gone, PORTS_GONE_LOGGED);
	load_pending(a);
	if (conf->agent.journal && *conf->agent.journal) {
		a->journal = journal_open(conf->agent.journal, a->spool);
		if (a->journal == NULL)
			goto fail;
	}

	snprintf(client_id, sizeof(client_id), "sitepulse-agent-%s-%s", site, id);
	snprintf(will, sizeof(will), "{\"online\":false}");
	struct sp_mqtt_params mp = {
		.uri = conf->mqtt.uri,
		.client_id = conf->mqtt.client_id && *conf->mqtt.client_id ? conf->mqtt.client_id
									    : client_id,
		.username = conf->mqtt.username,
		.password = conf->mqtt.password,
		.ca_file = conf->mqtt.ca_file,
		.cert_file = conf->mqtt.cert_file,
		.key_file = conf->mqtt.key_file,
		.tls_insecure = conf->mqtt.tls_insecure,
		.keepalive_s = (int)conf->mqtt.keepalive_s,
		.clean_session = true, /* the spool, not the broker session, keeps our data */
		.max_inflight = (int)conf->mqtt.max_inflight,
		.will_topic = a->t_state,
		.will_payload = will,
	};
	struct sp_mqtt_callbacks cb = {a, on_message, NULL, on_lost};
	a->mqtt = sp_mqtt_create(&mp, &cb);
	if (a->mqtt == NULL)
		goto fail;
	SP_INFO("agent", "site %s agent %s: %zu devices, broker %s", site, id, ndev, conf->mqtt.uri);
	return a;
fail:
	agent_destroy(a);
	return NULL;
}

/*
 * The orderly stop's last word: state offline (retained), behind our last
 * data (the collector takes a data message for a sign of life, so the state
 * must come after it) but outside the data window. A full window (a backlog
 * on a slow uplink) once made it fail with SP_EBUSY; the clean DISCONNECT
 * that followed discarded the Will, and the broker kept {"online":true} for
 * good.
 *
 * Waited for up to STOP_STATE_WAIT_MS (its PUBACK also means the data before
 * it reached the broker). Unacknowledged by then, the
 * disconnect that follows is still safe: Paho writes a client's packets in
 * order and sends the DISCONNECT (which discards the Will) only once nothing
 * is left to write before it, so the broker either has our state when it
 * reads the DISCONNECT, or loses the connection first and publishes the
 * Will. Either way it ends offline (docs/protocol.md, State).
 */
static void publish_offline(struct agent *a)
{
	sp_buf_reset(&a->out);
	sp_encode_state(&a->out, false, sp_now_ms());
	int rc = sp_mqtt_publish_control(a->mqtt, a->t_state, a->out.data, a->out.len, true,
					 STOP_STATE_WAIT_MS);
	if (rc == SP_ETIMEDOUT)
		SP_WARN("agent", "the broker has not acknowledged our offline state within %d ms: "
				 "disconnecting behind it (if the link fails first, the Will says "
				 "offline)", STOP_STATE_WAIT_MS);
	else if (rc != 0)
		SP_WARN("agent", "cannot publish our offline state (%s): the broker's Will says "
				 "offline when it notices the connection gone", sp_strerror(rc));
}

int agent_run(struct agent *a, volatile sig_atomic_t *stop)
{
	int rc = 0;
	a->last_stats_ms = sp_mono_ms();
	while (!*stop) {
		int64_t tick_start = sp_mono_ms();
		sp_mqtt_poll(a->mqtt);
		uint64_t epoch = sp_mqtt_epoch(a->mqtt);
		if (epoch != a->epoch_seen && sp_mqtt_connected(a->mqtt)) {
			a->epoch_seen = epoch;
			on_connected(a);
		}
		watch_subscriptions(a);
		apply_ack(a);
		learn_seq(a);
		apply_commands(a);
		int64_t now = sp_now_ms();
		sim_step(a->sim, now, sim_silent(a->sim, now) ? NULL : on_record, a);
		flush_batches(a, false); /* a failure is retried next tick (spool_failed) */
		publish_spool(a);
		log_stats(a, false);
		int64_t spent = sp_mono_ms() - tick_start;
		if (spent < TICK_MS)
			sp_sleep_ms(TICK_MS - spent);
	}
	/* orderly end: nothing produced may be lost, so seal the open batch first */
	if (flush_batches(a, true) != 0) {
		/* those loaded from the pending table stay there for the next start */
		SP_ERROR("agent", "stopping with %zu records that cannot be spooled: they are lost",
			 a->nbatch - a->nkept);
		rc = SP_EIO;
	} else if (a->nbatch > 0) {
		/*
		 * The seq is not known yet (never connected: the broker down since
		 * the install). Kept in the spool for the next start, which numbers
		 * them; those loaded at this start are there already.
		 */
		int src = spool_pending_save(a->spool, a->batch + a->nkept, a->nbatch - a->nkept,
					     a->nkept > 0 ? a->kept_ids[0] : INT64_MAX);
		if (src == 0) {
			SP_INFO("agent", "stopping with %zu records and no sequence number yet (no ack "
					 "from the collector): kept in the spool for the next start",
				a->nbatch);
		} else {
			SP_ERROR("agent", "stopping with %zu records and no sequence number yet (no "
					  "ack from the collector); they cannot be kept in the spool "
					  "(%s): %zu of them are lost",
				 a->nbatch, sp_strerror(src), a->nbatch - a->nkept);
			rc = SP_EIO;
		}
	}
	if (sp_mqtt_connected(a->mqtt)) {
		publish_spool(a); /* what was just sealed, as far as the window allows */
		publish_offline(a);
	}
	log_stats(a, true);
	return rc;
}

void agent_destroy(struct agent *a)
{
	if (a == NULL)
		return;
	sp_mqtt_destroy(a->mqtt, 1000);
	journal_close(a->journal);
	spool_close(a->spool);
	sim_destroy(a->sim);
	free(a->batch);
	free(a->kept_ids);
	sp_buf_free(&a->birth);
	sp_buf_free(&a->out);
	pthread_mutex_destroy(&a->cmd_lock);
	pthread_mutex_destroy(&a->probe_lock);
	free(a);
}
