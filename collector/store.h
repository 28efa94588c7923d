/*
 * store.h - the collector's storage interface.
 *
 * Ingest, rules and the API talk to storage only through these functions;
 * a backend implements struct store_backend (today: SQLite, store_sqlite.c).
 * A PostgreSQL backend for several collectors sharing one store can be
 * added behind the same interface without touching its callers.
 *
 * Two sides:
 *  - the writer side (store_w_*): used by exactly one thread, the writer,
 *    always inside store_w_begin() ... store_w_commit()/store_w_rollback();
 *  - the reader side (store_r_*): any thread; each call borrows a read
 *    connection from a small pool, so readers never wait for the writer.
 * Rows are handed to callbacks; strings in them are valid only during the
 * call.
 */
#ifndef SP_COLLECTOR_STORE_H
#define SP_COLLECTOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sitepulse/record.h"

struct store;

/*
 * The writer's page cache when nothing else is said: the configuration's
 * default and what store_open uses for cache_mb = 0 (docs/performance.md
 * item 23).
 */
#define STORE_CACHE_MB_DEFAULT 4
/* The page size of a new database file, in KB (SQLite's own default). */
#define STORE_PAGE_KB_DEFAULT 4
/* The writer's WAL buffer, in KB (docs/performance.md item 46). */
#define STORE_WAL_BUFFER_KB_DEFAULT 64

struct store_params {
	const char *path;        /* SQLite file */
	bool sync_full;          /* synchronous=FULL (fsync per commit) or NORMAL */
	int readers;             /* read connections in the pool */
	int64_t cache_mb;        /* page cache of the writer connection; 0 = the default */
	int64_t page_kb;         /* page size of a new file: 1..64, a power of two; 0 = the default */
	int64_t checkpoint_mb;   /* WAL size that triggers a checkpoint; 0 = SQLite's 4 MB */
	int64_t compact_after_ms; /* chunks are compacted this long after written; 0 = 65 min */
	int64_t agent_down_ms;   /* an agent silent this long was down: its up_since restarts; 0 = 180 s */
	/*
	 * With sync_full: the writer's WAL writes gathered into writes of up to
	 * this size (store_sqlite_walbuf.h); 0 = the default, < 0 = none.
	 */
	int64_t wal_buffer_kb;
};

/* Opens (creating and migrating) the store. NULL on failure (logged). */
struct store *store_open(const struct store_params *p);
void store_close(struct store *s);
/*
 * From end_mono (sp_mono_ms) on, no wait for a database lock held elsewhere
 * goes on: the operation fails as the store failing does (a stop's bound,
 * CONTRACT §7). Any thread; it stays so until the store is closed.
 */
void store_stop_waits(struct store *s, int64_t end_mono);

/* ---------------------------------------------------------------- writer side */

/*
 * A device as the writer needs it for validation. Small on purpose: the
 * writer's device cache holds one per known device (24 bytes here; with
 * 32-bit fields it was 40, 1.6 MB more at 100,000 devices; a static
 * assertion in store.c keeps it so).
 */
struct store_device {
	int64_t id;
	int64_t agent_id;
	int16_t floor_min, floor_max; /* SP_FLOOR_MIN..SP_FLOOR_MAX, when has_floors */
	/*
	 * What the alert rules compare against, from the birth: a lift's rated
	 * speed in cm/s, a charger's port limit in W; 0 = unknown.
	 */
	uint16_t rating;
	int8_t ports;           /* charger, 0 = unknown; else 1..SP_PORT_MAX */
	uint8_t kind : 7;       /* enum sp_dev_kind */
	bool has_floors : 1;
};

/* The rating (struct store_device) a birth entry gives. */
uint16_t store_device_rating(const struct sp_device_info *info);

/* An agent's persisted sequence state (see seqtrack.h). */
struct store_agent_progress {
	int64_t acked;
	const char *done;       /* rangeset text */
	const char *missing;
	int64_t gap_since_ms;
};

int store_w_begin(struct store *s);
/* Returns 0, SP_ENOSPC (disk full) or SP_EIO. The transaction is over either way. */
int store_w_commit(struct store *s);
void store_w_rollback(struct store *s);

/* Finds or creates the agent row; *agent_id receives its id. */
int store_w_agent(struct store *s, const char *site, const char *agent, int64_t *agent_id);

/*
 * Agents' progress is kept in two places: each agent's own row, and a log
 * that a transaction appends one entry to per agent it logs (written at
 * commit as one row, so a commit of readings from a hundred agents writes
 * one row, not a hundred row updates: docs/performance.md item 48). The
 * writer folds the log now and then: it saves every agent logged since the
 * last fold into its row and clears the log, in one transaction.
 *
 * Loads every agent's progress at start-up, the log's newest entry where
 * it has one, else the row's: fn is called once per agent; a non-zero
 * return stops and is returned. SP_EIO if the log cannot be read (logged).
 */
typedef int (*store_agent_fn)(void *ctx, int64_t agent_id, const char *site, const char *agent,
			      const struct store_agent_progress *p);
int store_w_load_agents(struct store *s, store_agent_fn fn, void *ctx);

/* Appends an agent's progress to the log (written at commit; dropped by a rollback). */
int store_w_log_progress(struct store *s, int64_t agent_id, const struct store_agent_progress *p);

/* Writes an agent's progress into its row. */
int store_w_save_progress(struct store *s, int64_t agent_id, const struct store_agent_progress *p);

/*
 * Empties the log (a fold: call after saving every agent it names, in the
 * same transaction), this transaction's entries included.
 */
int store_w_clear_progress_log(struct store *s);

/* Records an agent's birth (fw, time) and its state (online flag, time). */
int store_w_agent_birth(struct store *s, int64_t agent_id, int64_t ts, const char *fw,
			int64_t received_ms);
int store_w_agent_state(struct store *s, int64_t agent_id, bool online, int64_t received_ms);
/*
 * Notes data from an agent received at received_ms: online again unless a
 * later state said otherwise.
 */
int store_w_agent_seen(struct store *s, int64_t agent_id, int64_t received_ms);

/* The names of the offline rules (offline.c), whose alerts the collector's clock dates. */
struct store_offline_rules {
	const char *gateway, *lift, *charger;
};

/*
 * The collector's wall clock was set back by back_ms (NTP correcting a
 * clock that ran ahead): the times it stamped that lie after now_ms, which
 * only a clock ahead can have made, move back by back_ms, so silences are
 * judged from when things happened and reminders come on time: devices'
 * heard; agents' last_seen, up_since, state_at, dropped_seen; the opened_at and
 * cleared_at of the alerts of the offline rules (offline.c: the only ones
 * the collector's clock dates; the others carry their device's); any
 * alert's acked_at. Times the clock stamped while it ran ahead that are
 * already behind now_ms stay as they are. Reminders put off by
 * store_w_clock_set_forward come back by back_ms, at most as far as they
 * were put off.
 */
int store_w_clock_set_back(struct store *s, int64_t now_ms, int64_t back_ms,
			   const struct store_offline_rules *offline);

/*
 * The collector's wall clock was set forward by fwd_ms: the reminders of
 * the alerts active and unacknowledged now that were opened at a time in
 * [from_ms, to_ms] are put off as much, so their period
 * (store_w_reminders_due) counts time that passed, not the step. The
 * caller gives the span the old clock ran in this process: its start, and
 * its last reading before the step. An alert opened before the process
 * started was stamped by a clock it never saw, and often the right one (a
 * host back from a reboot with its clock behind, set right by NTP after the
 * collector started, must not put off every older alert's reminders by the
 * whole step); one opened after the old clock's now carries a device's
 * clock that was ahead of it: the step brought the collector to it.
 * Nothing else of the alerts moves: their times stay as stamped. A later
 * store_w_clock_set_back takes back what this put off, never more.
 */
int store_w_clock_set_forward(struct store *s, int64_t fwd_ms, int64_t from_ms, int64_t to_ms);

/*
 * The newest of the liveness times store_w_clock_set_back moves (0 if none),
 * or -1 (logged): at start, one in the future says the clock was set back
 * while the collector was stopped.
 */
int64_t store_w_newest_stamp(struct store *s);

/*
 * A device's liveness as stored (store_w_device_seen): its newest reading's
 * ts (the device's clock) and when a reading of it last arrived (heard, the
 * collector's clock: what its silence is measured from). 0 if none.
 */
struct store_seen {
	int64_t last_seen, heard;
};

/*
 * Looks a device up; *seen (if not NULL) gets its stored liveness. 0,
 * SP_ENOTFOUND or SP_EIO.
 */
int store_w_device(struct store *s, const char *site, const char *dev, struct store_device *out,
		   struct store_seen *seen);

/*
 * Creates or updates a device. info may be NULL (a device seen in data
 * before any birth: kind from the record; of an existing device only a
 * stored kind SP_DEV_UNKNOWN is changed, to kind, and nothing else).
 * meta_json describes it (birth entry) or is NULL. out receives the stored
 * row.
 */
int store_w_upsert_device(struct store *s, const char *site, const char *dev, int64_t agent_id,
			  const struct sp_device_info *info, enum sp_dev_kind kind,
			  const char *meta_json, struct store_device *out);

/*
 * Appends one reading; body is the record's JSON, read during the call
 * only. Visible to readers after the commit.
 */
int store_w_reading(struct store *s, int64_t device_id, int64_t agent_id, int64_t seq,
		    enum sp_rec_kind kind, int64_t ts, const char *body, size_t body_len);
/*
 * The same for a record in canonical form, given by its tail only
 * (sp_encode_record_tail): the store keeps the tail, and readers get the
 * whole canonical JSON back, the head written again from kind, ts and the
 * device's dev (chunk.h). A quarter fewer bytes written per reading.
 */
int store_w_reading_tail(struct store *s, int64_t device_id, int64_t agent_id, int64_t seq,
			 enum sp_rec_kind kind, int64_t ts, const char *tail, size_t tail_len);
/*
 * The same again, but the tail is lent until the transaction ends (commit
 * or rollback): the caller keeps it valid and unchanged until then, and the
 * store need not copy it (the writer's tails stay in its queue until the
 * batch is over).
 */
int store_w_reading_tail_lent(struct store *s, int64_t device_id, int64_t agent_id, int64_t seq,
			      enum sp_rec_kind kind, int64_t ts, const char *tail, size_t tail_len);

/* Moves the device's last_seen forward to ts and its heard to heard (each if later). */
int store_w_device_seen(struct store *s, int64_t device_id, int64_t ts, int64_t heard);

/* Total number of devices (for the device limit). */
int64_t store_w_device_count(struct store *s);

/* Rewrites the heartbeat row: a real write, so a commit proves the store can write. */
int store_w_heartbeat(struct store *s, int64_t now_ms);

/* What one call of store_w_compact did, and what it left for the next ones. */
struct store_compaction {
	int64_t looked;  /* pieces it looked at */
	int64_t merged;  /* pieces folded into others */
	/*
	 * Pieces due (written compact_after_ms ago or more) are left over: the
	 * call stopped on its budget or time, or looked at `budget` of them
	 * and there are more. Call again soon to keep up.
	 */
	bool more;
	/*
	 * Then (else 0): how many pieces are due and not yet looked at, an upper
	 * bound (SQLite: counted in chunk ids; ids given up by merges ahead of
	 * the mark count too), and how long the oldest of them has been due.
	 */
	int64_t backlog;
	int64_t lag_ms;
};

/*
 * Housekeeping of stored readings, in a transaction of its own: merges the
 * small pieces a busy hour left behind (SQLite: per-transaction chunks of
 * an hour that is over) into few, looking at no more than `budget` of
 * them per call and merging about as many (SQLite: runs of at most 256
 * chunks), and starting nothing new once the call has taken max_ms (at
 * least one run is merged or one (device, hour) finished; max_ms < 0: no
 * limit): what is left waits for the next call, which goes on where this
 * one stopped. *out (required) says what it did and left.
 * Returns 0 or SP_E* (then *out is not to be used).
 */
int store_w_compact(struct store *s, int64_t now_ms, int budget, int64_t max_ms,
		    struct store_compaction *out);

/*
 * Alerts (rules.h, CONTRACT §4), written by the writer inside its batch
 * transaction, so they commit or vanish together with the records that
 * caused them. The condition's key is (device, rule, port, code).
 */
struct store_alert_new {
	int64_t device_id;
	const char *rule;       /* catalogue name, e.g. lift.fault */
	const char *code;       /* "" unless a fault rule; shown as rule.code */
	const char *site, *dev;
	int32_t port;           /* 0 = none (null in the API) */
	const char *severity;
	int64_t opened_at;
	const char *detail;
};
/*
 * Opens an alert (state active_unack); *id receives its id. Should the
 * condition's alert still be active in the store (CONTRACT §4: at most one;
 * the rules opened it again because their state and the store's disagree,
 * e.g. after a reload of the rules that could not take every row), that
 * alert is kept instead and nothing is written: *id receives its id and
 * *adopted is set (false otherwise; adopted may be NULL).
 */
int store_w_alert_open(struct store *s, const struct store_alert_new *a, int64_t *id,
		       bool *adopted);
/* Clears it at ts: cleared_unack, or cleared_ack if it was acknowledged. */
int store_w_alert_clear(struct store *s, int64_t id, int64_t ts);
/* A condition pending its hold time: remembered, and forgotten. */
int store_w_hold_put(struct store *s, int64_t device_id, const char *rule, int32_t port,
		     const char *code, int64_t since);
int store_w_hold_del(struct store *s, int64_t device_id, const char *rule, int32_t port,
		     const char *code);

/* An open alert or a pending hold, as loaded at start-up (alert_id 0 for a hold). */
struct store_condition {
	int64_t device_id;
	const char *site, *dev;
	enum sp_dev_kind kind;
	uint16_t rating;
	int64_t last_seen;      /* the device's stored last_seen */
	const char *rule;       /* catalogue name */
	int32_t port;
	const char *code;
	int64_t alert_id;       /* > 0: an open alert */
	int64_t since;          /* a hold: since when */
	int64_t opened_at;      /* an open alert: when it opened */
};
typedef int (*store_condition_fn)(void *ctx, const struct store_condition *c);
/* Calls fn for every open alert and every pending hold. 0, fn's error or SP_E*. */
int store_w_load_conditions(struct store *s, store_condition_fn fn, void *ctx);

/*
 * The newest clear of each fault (the rules' faultmemo.h), kept so that a
 * fault raise resent after its own clear is known to be over after a
 * restart too. Written in the writer's transaction (the newer ts wins);
 * trimmed to the newest `keep` (ties at the edge may keep a few more).
 */
int store_w_fault_clear(struct store *s, int64_t device_id, int32_t port, const char *code,
			int64_t ts);
int store_w_fault_clears_trim(struct store *s, int64_t keep);
typedef int (*store_fault_clear_fn)(void *ctx, int64_t device_id, int32_t port, const char *code,
				    int64_t ts);
/* Calls fn for the newest `max` clears, oldest first. 0, fn's error or SP_E*. */
int store_w_load_fault_clears(struct store *s, int64_t max, store_fault_clear_fn fn, void *ctx);

/*
 * The offline sweep's view (offline.h), inside the writer's transaction.
 * Times are the collector's clock: when an agent's messages arrived, when a
 * device's readings did (its heard), never a device's own ts, so a device
 * clock that runs behind or ahead does not make it look silent or alive.
 */
struct store_offline_agent {
	const char *site, *agent;
	bool online;            /* its last state message (or data since) said online */
	int64_t state_at;       /* when that state message arrived (0: none yet) */
	int64_t last_seen;      /* when its newest message arrived (0: none yet) */
	int64_t up_since;       /* online since, without a gap of agent_down_ms (0: never) */
	int64_t alert_id;       /* its active alert of rules.gateway, 0 if none */
	/*
	 * its last_seen when its last drop began (state offline, or a silence
	 * of agent_down_ms): the newest data it had delivered (0: no drop known)
	 */
	int64_t dropped_seen;
};
struct store_offline_device {
	int64_t device_id;
	const char *site, *dev;
	enum sp_dev_kind kind;  /* lift or charger */
	int64_t heard;          /* when a reading of it last arrived (0: never) */
	struct store_offline_agent agent; /* its agent (alert_id 0) */
	int64_t alert_id;       /* its active alert of rules.lift / rules.charger, 0 if none */
	int64_t alert_opened_at; /* that alert's opened_at (0 if none) */
};
struct store_offline_scan {
	int64_t silent_before;  /* devices with 0 < heard < this and no active alert */
	struct store_offline_rules rules;
	int (*agent)(void *ctx, const struct store_offline_agent *a);
	int (*device)(void *ctx, const struct store_offline_device *d);
	void *ctx;
};
/*
 * Calls q->agent for every agent ever heard from; q->device for every
 * device silent since before q->silent_before without an active offline
 * alert, then for every device with one. The callbacks may open and clear
 * alerts (store_w_alert_open/clear). 0, a callback's error or SP_E*.
 */
int store_w_offline_scan(struct store *s, const struct store_offline_scan *q);

/*
 * Reminders of alerts nobody has acknowledged (DOMAIN's P1 "repeat until
 * acknowledged"). An alert is due its reminder number reminders + 1 when
 * remind_from + (reminders + 1) x repeat_ms <= now_ms.
 */
struct store_reminder {
	int64_t id;
	const char *rule, *site, *dev;   /* rule as shown (lift.fault.E12) */
	int32_t port;
	const char *severity, *detail;
	int64_t opened_at;
	/* opened_at put off by the collector's clock set forward (store_w_clock_set_forward) */
	int64_t remind_from;
	int64_t reminders;               /* sent so far */
};
typedef int (*store_reminder_fn)(void *ctx, const struct store_reminder *r);
/*
 * Calls fn for the due alerts of `severity` still active and unacknowledged,
 * oldest first, at most 64 per call (the rest at the next); fn may call
 * store_w_alert_reminded. 0, fn's error or SP_E*.
 */
int store_w_reminders_due(struct store *s, const char *severity, int64_t repeat_ms,
			  int64_t now_ms, store_reminder_fn fn, void *ctx);
/* Records that alert id has had `reminders` reminders. */
int store_w_alert_reminded(struct store *s, int64_t id, int64_t reminders);

/* ---------------------------------------------------------------- outboxes */

/*
 * Durable queues of messages to deliver: alert mails and city summaries.
 * An item is added in the same transaction as what caused it (the alert,
 * the summary's progress), and delivered by a sender thread through a
 * connection of its own (struct store_sender), so a slow or dead peer
 * never holds up the writer.
 */
enum store_outbox { STORE_OUTBOX_MAIL = 0, STORE_OUTBOX_CITY, STORE_OUTBOX_COUNT };

/* An alert mail for the mail outbox. */
struct store_mail {
	const char *key;   /* its Message-ID, unique: adding one already there does nothing */
	const char *site;
	const char *rcpt;  /* comma-separated addresses */
	const char *body;  /* the whole message */
	size_t body_len;
	int64_t alert_id;  /* its alert: an alert's mails go out in the order added */
	bool reminder;     /* may be superseded (store_sender_superseded) */
};

/* Writer side, inside its batch transaction: the mail joins the mail outbox. */
int store_w_mail_add(struct store *s, const struct store_mail *m, int64_t now_ms);

/*
 * How many alerts of this condition (site, dev, the rule as shown, port)
 * opened in [from_ms, to_ms]: how the writer paces mails of a flapping
 * condition. >= 0, or SP_E*.
 */
int64_t store_w_alerts_opened_between(struct store *s, const char *site, const char *dev,
				      const char *rule_shown, int32_t port, int64_t from_ms,
				      int64_t to_ms);

/* An alert's opened_at, severity and detail (copied into the buffers). 0, SP_ENOTFOUND or SP_E*. */
int store_w_alert_info(struct store *s, int64_t id, int64_t *opened_at, char *severity,
		       size_t severity_cap, char *detail, size_t detail_cap);

struct store_outbox_item {
	int64_t id;
	const char *key, *site;
	const char *rcpt;        /* mail: comma-separated addresses; city: NULL */
	const char *body;
	size_t body_len;
	int64_t created_at;      /* ms */
	int64_t attempts;        /* failed deliveries so far */
	bool reminder;           /* mail: a reminder (store_sender_superseded) */
};
typedef int (*store_outbox_fn)(void *ctx, const struct store_outbox_item *it);

/* A sender's handle on one outbox: a connection of its own, for one thread. */
struct store_sender;

/* NULL on failure (logged). */
struct store_sender *store_sender_open(struct store *s, enum store_outbox box);
void store_sender_close(struct store_sender *h);

/*
 * Hands the next item due at now_ms to fn (strings valid during the call):
 * mail, the oldest due, or in its place the oldest undelivered mail of its
 * alert (an alert's mails go out in order: never its clear before its
 * opening; a mail queued since the last failure thus probes the server
 * with the one it waits for); city, the oldest due of a site with nothing
 * older still undelivered (each site's periods go out in order). Due:
 * never put off since it was queued (store_sender_retry, _hold),
 * or its retry time has come, or that time lies more than longest_wait_ms
 * (the sender's longest backoff) after now_ms, which only a wall clock set
 * back since can do (an alert's mail must not wait for the clock to catch
 * up). Returns 1 when fn was called (its own return value is ignored), 0
 * when nothing is due, or SP_E*.
 */
int store_sender_next(struct store_sender *h, int64_t now_ms, int64_t longest_wait_ms,
		      store_outbox_fn fn, void *ctx);
/* Delivered: never handed out again. */
int store_sender_done(struct store_sender *h, int64_t id, int64_t now_ms);
/*
 * Not delivered: counted, and due again at next_try_ms; error is kept for
 * operators. A mail's later mails of the same alert wait as long.
 */
int store_sender_retry(struct store_sender *h, int64_t id, int64_t next_try_ms, const char *error);
/* Items not yet delivered (the gauges sitepulse_mail_queued / sitepulse_summaries_queued). */
int64_t store_sender_pending(struct store_sender *h);
/*
 * The peer cannot be reached: every item not delivered and due before
 * until_ms becomes due at until_ms (its attempts unchanged), so after the
 * outage they go out oldest first, not by each one's own backoff. An item
 * added later is due at once, as always (for mail: store_sender_next).
 */
int store_sender_hold(struct store_sender *h, int64_t until_ms);
/*
 * The peer is back: every item not delivered and due after now_ms becomes
 * due now. Only if a hold may be in force: one made through this handle
 * since its last release, or a previous run's (a handle just opened);
 * otherwise nothing changes, and an item put off for its own failure keeps
 * its time. So a sender calls it after every delivery.
 */
int store_sender_release(struct store_sender *h, int64_t now_ms);
/*
 * Mail: whether reminder `id` is superseded: a later mail of its alert is
 * queued (a later reminder, its clear), or its alert was acknowledged or
 * has cleared; it would say "not acknowledged" of an alert someone took,
 * or arrive after the news it precedes. If so it is marked done, not
 * delivered (its error says why), and 1 is returned; 0 if it stands; SP_E*.
 */
int store_sender_superseded(struct store_sender *h, int64_t id, int64_t now_ms);

/*
 * City summaries, on the city sender's handle. The newest period already
 * summarized for a site: 0 with *period_start and *period_end (as its summary
 * says; 0 when that cannot be read), or SP_ENOTFOUND.
 */
int store_sender_summarized(struct store_sender *h, const char *site, int64_t *period_start,
			    int64_t *period_end);
/*
 * In one transaction: the summary joins the outbox (key, body) and becomes
 * the site's newest summarized period.
 */
int store_sender_add_summary(struct store_sender *h, const char *site, int64_t period_start,
			     int64_t period_end, const char *key, const char *body, size_t body_len,
			     int64_t now_ms);

/* ---------------------------------------------------------------- reader side */

struct store_site_row {
	const char *site;
	int64_t devices;
	int64_t online;
	int64_t active_alerts;
};

struct store_device_row {
	const char *site;
	const char *dev;
	const char *kind;
	const char *agent;
	bool online;            /* see store_r_sites */
	int64_t last_seen;      /* its newest reading's ts (its clock), 0 = never */
	const char *latest;     /* JSON of the newest reading, or NULL */
	const char *meta;       /* JSON from the birth, or NULL */
	/*
	 * With STORE_DEVICES_CURRENT, a charger's: a JSON array of its newest
	 * station record and each port's newest record (ports in order) among
	 * its readings of the STORE_CURRENT_WINDOW_MS up to last_seen; NULL
	 * otherwise, or when it has none.
	 */
	const char *current;
	int64_t active_alerts;
};

/* store_r_devices' flags */
#define STORE_DEVICES_CURRENT 1u
/* A charger reports every port at least once a minute (docs/protocol.md): twice that. */
#define STORE_CURRENT_WINDOW_MS 120000

struct store_readings_query {
	const char *site;
	const char *dev;
	int kind;               /* enum sp_rec_kind, or -1 for all */
	int64_t from, to;       /* inclusive, ms */
	int64_t limit;
	/*
	 * NULL, or NULL-terminated field names: only readings that carry at
	 * least one of them ("trips": a lift record with its counter)
	 */
	const char *const *with_any;
};

/*
 * Online means: the agent's last state is online and a reading of the
 * device arrived within offline_ms of now_ms (its heard, not its ts: a
 * device whose clock is off is judged by when its readings come).
 */
typedef int (*store_site_fn)(void *ctx, const struct store_site_row *row);
typedef int (*store_site_name_fn)(void *ctx, const char *site);
typedef int (*store_device_fn)(void *ctx, const struct store_device_row *row);
typedef int (*store_reading_fn)(void *ctx, const char *body, size_t len);

int store_r_sites(struct store *s, int64_t now_ms, int64_t offline_ms, store_site_fn fn, void *ctx);
/*
 * Only the names of the sites that have devices, in order: one index seek
 * per site, where store_r_sites passes over every device (~40 ms at 100k).
 */
int store_r_site_names(struct store *s, store_site_name_fn fn, void *ctx);
/* site may be NULL for all sites. flags: 0 or STORE_DEVICES_CURRENT. */
int store_r_devices(struct store *s, const char *site, int64_t now_ms, int64_t offline_ms,
		    unsigned flags, store_device_fn fn, void *ctx);
/* Newest first. Returns the number of rows or SP_E*. */
int store_r_readings(struct store *s, const struct store_readings_query *q, store_reading_fn fn,
		     void *ctx);

/* Device counts by kind and online state, for /metrics. counts[kind][online]. */
int store_r_device_counts(struct store *s, int64_t now_ms, int64_t offline_ms,
			  int64_t counts[SP_DEV_KIND_COUNT][2]);

enum store_alert_state_filter { STORE_ALERTS_ALL = 0, STORE_ALERTS_ACTIVE, STORE_ALERTS_CLEARED };

struct store_alerts_query {
	enum store_alert_state_filter state;
	const char *site;       /* NULL = all */
	const char *severity;   /* NULL = all */
	int64_t limit;
};

/* An alert as the API shows it (CONTRACT §4). 0 in a time = null. */
struct store_alert_row {
	int64_t id;
	const char *rule, *site, *dev;
	int32_t port;           /* 0 = null */
	const char *severity, *state;
	int64_t opened_at, cleared_at, acked_at;
	const char *acked_by;   /* NULL = null */
	const char *detail;
};
typedef int (*store_alert_fn)(void *ctx, const struct store_alert_row *row);

/* Alerts matching q, newest first. Returns their number or SP_E*. */
int store_r_alerts(struct store *s, const struct store_alerts_query *q, store_alert_fn fn,
		   void *ctx);
/*
 * Acknowledges alert id by `by` at now_ms and hands the result to fn.
 * 0, SP_ENOTFOUND, SP_EEXIST (already acknowledged; fn still sees it) or
 * SP_EIO. A write, through a connection of its own: the writer is not
 * involved, and SQLite serialises the two.
 */
int store_ack_alert(struct store *s, int64_t id, const char *by, int64_t now_ms, store_alert_fn fn,
		    void *ctx);
/*
 * Alert counts by state (CONTRACT §4 order) and severity: for /metrics every
 * alert ever kept; with active_only only the active ones (through the index
 * on state, never the whole history), the others counted 0.
 */
#define STORE_ALERT_STATES 4
#define STORE_ALERT_SEVERITIES 4 /* rules.h's enum alert_severity order */
extern const char *const store_alert_states[STORE_ALERT_STATES];
int store_r_alert_counts(struct store *s, bool active_only,
			 int64_t counts[STORE_ALERT_STATES][STORE_ALERT_SEVERITIES]);

/*
 * Every reading of one device with from <= ts < to, in time order (equal
 * ts: storage order), for summaries. They are all held to be sorted: more
 * than max of them is SP_ETOOBIG, before fn is called at all. Returns their
 * number or SP_E* (SP_ENOTFOUND: no such device). fn's non-zero return
 * stops the walk.
 */
typedef int (*store_record_fn)(void *ctx, int64_t ts, enum sp_rec_kind kind, const char *body,
			       size_t len);
int store_r_device_records(struct store *s, const char *site, const char *dev, int64_t from,
			   int64_t to, int64_t max, store_record_fn fn, void *ctx);

/* Alerts of a site that were active at some moment of [from, to): for summaries. */
int store_r_alerts_during(struct store *s, const char *site, int64_t from, int64_t to,
			  store_alert_fn fn, void *ctx);

/* Summaries built for the city (GET /api/v1/summaries), newest period first. */
struct store_summary_row {
	const char *site;
	int64_t period_start;
	const char *body;        /* the JSON as sent */
	size_t body_len;
	int64_t sent_at;         /* 0 = not delivered yet */
};
typedef int (*store_summary_fn)(void *ctx, const struct store_summary_row *row);
int store_r_summaries(struct store *s, const char *site, int64_t from, int64_t to, int64_t limit,
		      store_summary_fn fn, void *ctx);

/*
 * Every store_r_* read waits at most STORE_READ_WAIT_MS for one of the
 * `readers` connections and answers SP_EBUSY when all stayed busy that
 * long (slow queries): an HTTP worker thread waiting for a reader is free
 * again within it, so the API's threads beyond `readers` always come free
 * for /healthz, and a caller gets a clear "busy" rather than a queue.
 */
#define STORE_READ_WAIT_MS 5000

/*
 * A quick read check for /healthz: 0 when a read connection answers; 1
 * when every read connection stayed busy for STORE_PING_WAIT_MS (they are
 * reading, so the file is readable: the caller takes it as healthy, not as
 * a failure); SP_E* when the read fails. It waits a fifth of what the
 * other reads wait (STORE_READ_WAIT_MS).
 */
#define STORE_PING_WAIT_MS 1000
int store_r_ping(struct store *s);

/*
 * 0 if no device of the site has a stored reading with from <= ts < to;
 * 1 if one may have (a chunk of readings overlaps the range), or SP_E*.
 * One index probe per device (and its chunks that end at or after from):
 * far cheaper than reading the period's records.
 */
int store_r_site_has_records(struct store *s, const char *site, int64_t from, int64_t to);

/* ---------------------------------------------------------------- backends */

/* w_reading's `how`: the body is lent until the transaction ends / is a canonical tail */
#define STORE_BODY_LENT 1u
#define STORE_BODY_TAIL 2u

struct store_backend {
	const char *name;
	void *(*open)(const struct store_params *p);
	void (*close)(void *impl);
	void (*stop_waits)(void *impl, int64_t end_mono);
	int (*w_begin)(void *impl);
	int (*w_commit)(void *impl);
	void (*w_rollback)(void *impl);
	int (*w_agent)(void *impl, const char *site, const char *agent, int64_t *agent_id);
	int (*w_load_agents)(void *impl, store_agent_fn fn, void *ctx);
	int (*w_log_progress)(void *impl, int64_t agent_id, const struct store_agent_progress *p);
	int (*w_save_progress)(void *impl, int64_t agent_id, const struct store_agent_progress *p);
	int (*w_clear_progress_log)(void *impl);
	int (*w_agent_birth)(void *impl, int64_t agent_id, int64_t ts, const char *fw,
			     int64_t received_ms);
	int (*w_agent_state)(void *impl, int64_t agent_id, bool online, int64_t received_ms);
	int (*w_agent_seen)(void *impl, int64_t agent_id, int64_t received_ms);
	int (*w_clock_set_back)(void *impl, int64_t now_ms, int64_t back_ms,
				const struct store_offline_rules *offline);
	int (*w_clock_set_forward)(void *impl, int64_t fwd_ms, int64_t from_ms, int64_t to_ms);
	int64_t (*w_newest_stamp)(void *impl);
	int (*w_device)(void *impl, const char *site, const char *dev, struct store_device *out,
			struct store_seen *seen);
	int (*w_upsert_device)(void *impl, const char *site, const char *dev, int64_t agent_id,
			       const struct sp_device_info *info, enum sp_dev_kind kind,
			       const char *meta_json, struct store_device *out);
	/* how: STORE_BODY_* flags */
	int (*w_reading)(void *impl, int64_t device_id, int64_t agent_id, int64_t seq,
			 enum sp_rec_kind kind, int64_t ts, const char *body, size_t body_len,
			 unsigned how);
	int (*w_device_seen)(void *impl, int64_t device_id, int64_t ts, int64_t heard);
	int64_t (*w_device_count)(void *impl);
	int (*w_heartbeat)(void *impl, int64_t now_ms);
	int (*w_compact)(void *impl, int64_t now_ms, int budget, int64_t max_ms,
			 struct store_compaction *out);
	int (*r_sites)(void *impl, int64_t now_ms, int64_t offline_ms, store_site_fn fn, void *ctx);
	int (*r_site_names)(void *impl, store_site_name_fn fn, void *ctx);
	int (*r_devices)(void *impl, const char *site, int64_t now_ms, int64_t offline_ms,
			 unsigned flags, store_device_fn fn, void *ctx);
	int (*r_readings)(void *impl, const struct store_readings_query *q, store_reading_fn fn,
			  void *ctx);
	int (*r_device_counts)(void *impl, int64_t now_ms, int64_t offline_ms,
			       int64_t counts[SP_DEV_KIND_COUNT][2]);
	int (*r_ping)(void *impl);
	int (*r_site_has_records)(void *impl, const char *site, int64_t from, int64_t to);
	int (*w_alert_open)(void *impl, const struct store_alert_new *a, int64_t *id,
			    bool *adopted);
	int (*w_alert_clear)(void *impl, int64_t id, int64_t ts);
	int (*w_hold_put)(void *impl, int64_t device_id, const char *rule, int32_t port,
			  const char *code, int64_t since);
	int (*w_hold_del)(void *impl, int64_t device_id, const char *rule, int32_t port,
			  const char *code);
	int (*w_load_conditions)(void *impl, store_condition_fn fn, void *ctx);
	int (*w_fault_clear)(void *impl, int64_t device_id, int32_t port, const char *code,
			     int64_t ts);
	int (*w_fault_clears_trim)(void *impl, int64_t keep);
	int (*w_load_fault_clears)(void *impl, int64_t max, store_fault_clear_fn fn, void *ctx);
	int (*w_offline_scan)(void *impl, const struct store_offline_scan *q);
	int (*w_reminders_due)(void *impl, const char *severity, int64_t repeat_ms, int64_t now_ms,
			       store_reminder_fn fn, void *ctx);
	int (*w_alert_reminded)(void *impl, int64_t id, int64_t reminders);
	int (*r_alerts)(void *impl, const struct store_alerts_query *q, store_alert_fn fn, void *ctx);
	int (*ack_alert)(void *impl, int64_t id, const char *by, int64_t now_ms, store_alert_fn fn,
			 void *ctx);
	int (*r_alert_counts)(void *impl, bool active_only,
			      int64_t counts[STORE_ALERT_STATES][STORE_ALERT_SEVERITIES]);
	int64_t (*w_alerts_opened_between)(void *impl, const char *site, const char *dev,
					   const char *rule_shown, int32_t port, int64_t from_ms,
					   int64_t to_ms);
	int (*w_alert_info)(void *impl, int64_t id, int64_t *opened_at, char *severity,
			    size_t severity_cap, char *detail, size_t detail_cap);
	int (*r_alerts_during)(void *impl, const char *site, int64_t from, int64_t to,
			       store_alert_fn fn, void *ctx);
	int (*r_device_records)(void *impl, const char *site, const char *dev, int64_t from,
				int64_t to, int64_t max, store_record_fn fn, void *ctx);
	int (*w_mail_add)(void *impl, const struct store_mail *m, int64_t now_ms);
	void *(*sender_open)(void *impl, enum store_outbox box);
	void (*sender_close)(void *h);
	int (*sender_next)(void *h, int64_t now_ms, int64_t longest_wait_ms, store_outbox_fn fn,
			   void *ctx);
	int (*sender_done)(void *h, int64_t id, int64_t now_ms);
	int (*sender_retry)(void *h, int64_t id, int64_t next_try_ms, const char *error);
	int64_t (*sender_pending)(void *h);
	int (*sender_hold)(void *h, int64_t until_ms);
	int (*sender_release)(void *h, int64_t now_ms);
	int (*sender_superseded)(void *h, int64_t id, int64_t now_ms);
	int (*sender_summarized)(void *h, const char *site, int64_t *period_start,
				 int64_t *period_end);
	int (*sender_add_summary)(void *h, const char *site, int64_t period_start,
				  int64_t period_end, const char *key, const char *body,
				  size_t body_len, int64_t now_ms);
	int (*r_summaries)(void *impl, const char *site, int64_t from, int64_t to, int64_t limit,
			   store_summary_fn fn, void *ctx);
};

extern const struct store_backend store_sqlite_backend;

#endif
