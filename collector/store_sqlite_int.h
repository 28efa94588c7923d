/*
 * store_sqlite_int.h - what the SQLite backend's files share: the store and
 * its read connections, and the helpers every statement uses. Internal to
 * store_sqlite.c (opening, migrations, the writer's readings, devices and
 * agents), store_sqlite_progress.c (the agents' sequence state),
 * store_sqlite_compact.c (compaction), store_sqlite_read.c (the read pool
 * and its queries), store_sqlite_alerts.c (alerts) and
 * store_sqlite_outbox.c (outboxes), which together implement store.h.
 */
#ifndef SP_COLLECTOR_STORE_SQLITE_INT_H
#define SP_COLLECTOR_STORE_SQLITE_INT_H

#include "store.h"

#include "sitepulse/buf.h"
#include "sitepulse/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>

/* The statements of store_sqlite.c, prepared once per connection. */
enum wstmt {
	W_BEGIN, W_COMMIT, W_ROLLBACK,
	W_AGENT_GET, W_AGENT_INS, W_BIRTH, W_STATE, W_SEEN,
	W_DEV_GET, W_DEV_INS, W_DEV_SEEN_INS, W_DEV_KIND, W_DEV_UPD, W_CHUNK_INS, W_DEV_SEEN,
	W_DEV_COUNT,
	W_HEARTBEAT, W_BACK_DEVICES, W_BACK_AGENTS, W_NEWEST_STAMP,
	W_COMPACT_UPTO, W_COMPACT_SCAN, W_COMPACT_GROUP, W_CHUNK_DEL, W_COMPACT_SET, W_CHUNK_NEXT_ID,
	W_COMPACT_NEXT, W_COMPACT_MAX,
	W_COUNT
};

enum rstmt {
	R_SITES,
	R_SITE_NAMES,
	R_DEVICES_SITE,
	R_DEVICES_ALL,
	R_DEV_ID,
	R_CHUNKS,
	R_COUNTS,
	R_PING,
	R_SITE_HAS,
	R_COUNT
};

/* The alert statements of a connection (store_sqlite_alerts.c). */
enum { SQA_W_COUNT = 20, SQA_R_COUNT = 6 };
/* The outbox statements of a connection (store_sqlite_outbox.c). */
enum { SQO_W_COUNT = 1, SQO_R_COUNT = 1 };
/* The writer's statements of the agents' progress (store_sqlite_progress.c). */
enum { SQP_W_COUNT = 5 };

struct reader {
	sqlite3 *db;
	sqlite3_stmt *st[R_COUNT];
	struct sp_buf latest;         /* a device's newest reading, NUL-terminated */
	struct sp_buf json;           /* a bare reading put back together (chunk_rec_json) */
	struct sp_buf current;        /* a charger's current state (sqr_devices), NUL-terminated */
	struct sp_buf found;          /* ... the records it is made of, as they were found */
	sqlite3_stmt *alert_st[SQA_R_COUNT];
	sqlite3_stmt *outbox_st[SQO_R_COUNT];
	bool busy;
};

/*
 * One connection's wait for a lock another connection or process holds
 * (sqs_busy_init): at most timeout_ms, and never past the store's
 * waits_end_mono (store_stop_waits).
 */
struct sqs_busy {
	struct sqlite_store *s;
	int timeout_ms;
};

struct sqlite_store {
	char *path;
	sqlite3 *db;                 /* writer connection */
	struct walbuf *walbuf;       /* its VFS, gathering its WAL writes; NULL = the default VFS */
	sqlite3_stmt *w[W_COUNT];
	bool in_txn;
	struct chunk_batch *batch;   /* the transaction's readings, written as chunks at commit */
	struct chunk_batch *merging; /* compaction's: the readings of the chunks it merges */
	int64_t compact_after_ms;
	int64_t agent_down_ms;       /* store_params.agent_down_ms */
	int64_t chunk_at;            /* `at` of the chunks being written */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_free;
	struct reader *readers;
	int nreaders;
	pthread_mutex_t log_lock;     /* guards error_log, damaged_log (writer and readers report) */
	struct sp_ratelimit error_log;
	struct sp_ratelimit damaged_log; /* sqs_row_chunk: its own, not to hide the errors above */
	sqlite3_stmt *alert_w[SQA_W_COUNT]; /* on the writer connection */
	sqlite3_stmt *outbox_w[SQO_W_COUNT]; /* on the writer connection */
	sqlite3_stmt *progress_w[SQP_W_COUNT];
	struct sp_buf progress_log;  /* the transaction's progress log entries, written at commit */
	/* acknowledgements from the API: a write connection of their own, one at a time */
	pthread_mutex_t ack_lock;
	sqlite3 *ack_db;
	sqlite3_stmt *ack_st[2];
	/* lock waits: every connection's (sqs_busy_init), and when they all end (0 = no end) */
	struct sqs_busy busy_writer, busy_reader, busy_ack; /* the senders': struct sq_sender */
	atomic_llong waits_end_mono;
};

/*
 * Has db wait for locks through b (timeout_ms, bounded by store_stop_waits)
 * instead of sqlite3_busy_timeout. b outlives the connection.
 */
void sqs_busy_init(struct sqlite_store *s, sqlite3 *db, struct sqs_busy *b, int timeout_ms);

/* Reports a SQLite failure of db (rate-limited); SP_ENOSPC when the disk is full, else SP_EIO. */
int sqs_db_error(struct sqlite_store *s, sqlite3 *db, const char *what);
/* Runs SQL without results on db; logs and maps a failure like sqs_db_error. */
int sqs_exec(sqlite3 *db, const char *path, const char *sql);
/* Prepares n statements (persistent) on db into out. 0 or SP_E* (logged, naming the SQL). */
int sqs_prepare_all(struct sqlite_store *s, sqlite3 *db, const char *const *sql, int n,
		    sqlite3_stmt **out);
/* Binds text, or NULL for a NULL pointer; the text must outlive the step. */
void sqs_bind_text(sqlite3_stmt *st, int i, const char *text);
/*
 * Borrows a read connection, waiting at most STORE_READ_WAIT_MS for one;
 * NULL if none came free (the caller answers SP_EBUSY). Given back with
 * sqs_give_back or sqs_rdone.
 */
struct reader *sqs_borrow(struct sqlite_store *s);
/* Borrows one, waiting at most wait_ms for one to come free; NULL if none did. */
struct reader *sqs_borrow_within(struct sqlite_store *s, int64_t wait_ms);
void sqs_give_back(struct sqlite_store *s, struct reader *r);
/* Ends a read: resets st, gives r back, maps the last step result (0 or SP_E*). */
int sqs_rdone(struct sqlite_store *s, struct reader *r, sqlite3_stmt *st, int rc, const char *what);
struct chunk_iter;
/*
 * The chunk whose id, meta, body and fmt are columns id_col .. id_col + 3 of
 * the statement's current row, checked whole (chunk_check) and ready to walk.
 * False if it is damaged, logged with `fate` (what becomes of it).
 */
bool sqs_row_chunk(struct sqlite_store *s, sqlite3_stmt *st, int id_col, const char *fate,
		   struct chunk_iter *it);

/* Steps writer statement `which` to its end and resets it. 0 or SP_E* (logged). */
int sqs_wstep(struct sqlite_store *s, enum wstmt which);
struct chunk_batch;
/* Writes a batch's readings as chunks of format fmt (with these ids, if any) and empties it. */
int sqs_write_chunks(struct sqlite_store *s, struct chunk_batch *b, sqlite3_stmt *ins, int fmt,
		     int64_t at, const int64_t *ids, size_t nids);
/* a transaction's readings held before its chunks are written (~3 MB of entries; copied bodies) */
#define BATCH_FLUSH_READINGS 65536
#define BATCH_FLUSH_BYTES (4u << 20)

/* store_sqlite_schema.c: brings s->db to the current schema (each step logged). 0 or SP_E*. */
int sqs_migrate(struct sqlite_store *s);
/* The schema version this code writes. */
int sqs_schema_version(void);

/* store_sqlite_compact.c: merging the small chunks of hours that are over. */
int sqc_compact(void *impl, int64_t now_ms, int budget, int64_t max_ms,
		struct store_compaction *out);

/* store_sqlite_read.c: the read connections' statements and the backend's queries. */
int sqr_prepare_reader(struct sqlite_store *s, struct reader *r);
int sqr_sites(void *impl, int64_t now_ms, int64_t offline_ms, store_site_fn fn, void *ctx);
int sqr_site_names(void *impl, store_site_name_fn fn, void *ctx);
int sqr_devices(void *impl, const char *site, int64_t now_ms, int64_t offline_ms,
		unsigned flags, store_device_fn fn, void *ctx);
int sqr_readings(void *impl, const struct store_readings_query *q, store_reading_fn fn,
		 void *ctx);
int sqr_device_records(void *impl, const char *site, const char *dev, int64_t from, int64_t to,
		       int64_t max, store_record_fn fn, void *ctx);
int sqr_device_counts(void *impl, int64_t now_ms, int64_t offline_ms,
		      int64_t counts[SP_DEV_KIND_COUNT][2]);
int sqr_ping(void *impl);
int sqr_site_has_records(void *impl, const char *site, int64_t from, int64_t to);

/* store_sqlite_alerts.c: its schema migration, statements, and the backend's alert functions. */
extern const char SQA_MIGRATION[];
extern const char SQA_MIGRATION_FAULT_CLEARS[];
extern const char SQA_MIGRATION_REMIND_SHIFT[];
int sqa_prepare(struct sqlite_store *s);
int sqa_prepare_reader(struct sqlite_store *s, struct reader *r);
void sqa_finalize(struct sqlite_store *s);
void sqa_finalize_reader(struct reader *r);
int sqa_alert_open(void *impl, const struct store_alert_new *a, int64_t *id, bool *adopted);
int sqa_alert_clear(void *impl, int64_t id, int64_t ts);
int sqa_hold_put(void *impl, int64_t device_id, const char *rule, int32_t port, const char *code,
		 int64_t since);
int sqa_hold_del(void *impl, int64_t device_id, const char *rule, int32_t port, const char *code);
int sqa_load_conditions(void *impl, store_condition_fn fn, void *ctx);
int sqa_fault_clear(void *impl, int64_t device_id, int32_t port, const char *code, int64_t ts);
int sqa_fault_clears_trim(void *impl, int64_t keep);
int sqa_load_fault_clears(void *impl, int64_t max, store_fault_clear_fn fn, void *ctx);
int sqa_offline_scan(void *impl, const struct store_offline_scan *q);
/* store_w_clock_set_back's part in the alerts (inside the writer's transaction). */
int sqa_clock_set_back(struct sqlite_store *s, int64_t now_ms, int64_t back_ms,
		       const struct store_offline_rules *offline);
int sqa_clock_set_forward(void *impl, int64_t fwd_ms, int64_t from_ms, int64_t to_ms);
int sqa_reminders_due(void *impl, const char *severity, int64_t repeat_ms, int64_t now_ms,
		      store_reminder_fn fn, void *ctx);
int sqa_alert_reminded(void *impl, int64_t id, int64_t reminders);
int sqa_r_alerts(void *impl, const struct store_alerts_query *q, store_alert_fn fn, void *ctx);
int sqa_ack_alert(void *impl, int64_t id, const char *by, int64_t now_ms, store_alert_fn fn,
		  void *ctx);
int sqa_r_alert_counts(void *impl, bool active_only,
		       int64_t counts[STORE_ALERT_STATES][STORE_ALERT_SEVERITIES]);
int64_t sqa_alerts_opened_between(void *impl, const char *site, const char *dev,
				  const char *rule_shown, int32_t port, int64_t from_ms,
				  int64_t to_ms);
int sqa_alert_info(void *impl, int64_t id, int64_t *opened_at, char *severity,
		   size_t severity_cap, char *detail, size_t detail_cap);
int sqa_r_alerts_during(void *impl, const char *site, int64_t from, int64_t to, store_alert_fn fn,
			void *ctx);

/* store_sqlite_outbox.c: outboxes, their senders, the summaries' progress. */
extern const char SQO_MIGRATION[];
extern const char SQO_MIGRATION_MAIL_ORDER[];
int sqo_prepare(struct sqlite_store *s);
int sqo_prepare_reader(struct sqlite_store *s, struct reader *r);
void sqo_finalize(struct sqlite_store *s);
void sqo_finalize_reader(struct reader *r);
int sqo_mail_add(void *impl, const struct store_mail *m, int64_t now_ms);
void *sqo_sender_open(void *impl, enum store_outbox box);
void sqo_sender_close(void *h);
int sqo_sender_next(void *h, int64_t now_ms, int64_t longest_wait_ms, store_outbox_fn fn,
		    void *ctx);
int sqo_sender_done(void *h, int64_t id, int64_t now_ms);
int sqo_sender_retry(void *h, int64_t id, int64_t next_try_ms, const char *error);
int64_t sqo_sender_pending(void *h);
int sqo_sender_hold(void *h, int64_t until_ms);
int sqo_sender_release(void *h, int64_t now_ms);
int sqo_sender_superseded(void *h, int64_t id, int64_t now_ms);
int sqo_sender_summarized(void *h, const char *site, int64_t *period_start,
			  int64_t *period_end);
int sqo_sender_add_summary(void *h, const char *site, int64_t period_start, int64_t period_end,
			   const char *key, const char *body, size_t body_len, int64_t now_ms);
int sqo_r_summaries(void *impl, const char *site, int64_t from, int64_t to, int64_t limit,
		    store_summary_fn fn, void *ctx);


/* store_sqlite_progress.c: the agents' progress, their rows and the log (store.h). */
extern const char SQP_MIGRATION[];
int sqp_prepare(struct sqlite_store *s);
void sqp_finalize(struct sqlite_store *s);
int sqp_load_agents(void *impl, store_agent_fn fn, void *ctx);
int sqp_log_progress(void *impl, int64_t agent_id, const struct store_agent_progress *p);
int sqp_save_progress(void *impl, int64_t agent_id, const struct store_agent_progress *p);
int sqp_clear_log(void *impl);
/*
 * Writes the transaction's log entries as one row (before COMMIT, which then
 * forgets them, written or not) / forgets them (commit, rollback, begin).
 */
int sqp_write_log(struct sqlite_store *s);
void sqp_forget_log(struct sqlite_store *s);

#endif
