/*
 * test_spool.c - the agent's SQLite outbox (agent/spool.c) and its journal
 * (agent/journal.c): seq assignment and persistence, stats, iteration, acks,
 * restarts, the drop-oldest overflow policy, and the journal's catch-up and
 * its start on a new or restored spool.
 * Files live in $SP_TEST_TMP (or /tmp), named with the pid.
 */
#include "harness.h"

#include "journal.h"
#include "spool.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define TS 1764320000000LL
#define BIG (1024 * 1024)

/* ---------------------------------------------------------------- helpers */

/* A data payload as the agent writes it, for seq (the journal reads the seq back). */
static size_t payload(char *buf, size_t cap, int64_t seq)
{
	return (size_t)snprintf(buf, cap, "{\"v\":1,\"seq\":%lld,\"ts\":%lld,\"records\":[]}",
				(long long)seq, (long long)(TS + seq));
}

/* Appends the standard payload of the spool's next seq; returns the rc. */
static int append_std(struct spool *sp)
{
	char buf[128];
	size_t n = payload(buf, sizeof(buf), spool_next_seq(sp));
	return spool_append(sp, TS, buf, n, NULL, NULL);
}

/* Appends len bytes of filler c. */
static int append_fill(struct spool *sp, char c, size_t len, spool_drop_fn fn, void *ctx)
{
	char buf[512];
	if (len > sizeof(buf))
		return -999;
	memset(buf, c, len);
	return spool_append(sp, TS, buf, len, fn, ctx);
}

/* What spool_each_after delivered. */
struct seen {
	int n;
	int64_t seq[64];
	char payload[64][128];
	size_t len[64];
	int stop_at; /* return non-zero on the stop_at-th call (1-based), 0 = never */
};

static int collect(void *ctx, int64_t seq, const char *p, size_t len)
{
	struct seen *s = ctx;
	if (s->n < 64) {
		s->seq[s->n] = seq;
		s->len[s->n] = len;
		size_t keep = len < sizeof(s->payload[0]) ? len : sizeof(s->payload[0]) - 1;
		memcpy(s->payload[s->n], p, keep);
		s->payload[s->n][keep] = '\0';
	}
	s->n++;
	return s->stop_at && s->n >= s->stop_at;
}

/* Runs each_after into a fresh struct seen. Returns the rc. */
static int each(struct spool *sp, int64_t after, size_t max, struct seen *s, int stop_at)
{
	memset(s, 0, sizeof(*s));
	s->stop_at = stop_at;
	return spool_each_after(sp, after, max, collect, s);
}

/* The drop callback's record. */
struct drops {
	int n;
	int64_t seq[64];
};

static void on_drop(void *ctx, int64_t seq)
{
	struct drops *d = ctx;
	if (d->n < 64)
		d->seq[d->n] = seq;
	d->n++;
}

static struct spool_stats stats(struct spool *sp)
{
	struct spool_stats st;
	memset(&st, 0x7f, sizeof(st));
	spool_get_stats(sp, &st);
	return st;
}

/* Runs one SQL statement on the spool file behind the spool's back. */
static int raw_sql(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/* Reads a text file into lines (without '\n'); returns the count, or -1. */
#define MAX_LINES 32
struct lines {
	int n;
	char line[MAX_LINES][256];
	bool ends_with_newline;
};

static int read_lines(const char *path, struct lines *out)
{
	char buf[8192];
	FILE *f = fopen(path, "r");
	memset(out, 0, sizeof(*out));
	if (f == NULL)
		return -1;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	out->ends_with_newline = len > 0 && buf[len - 1] == '\n';
	char *p = buf;
	while (*p && out->n < MAX_LINES) {
		char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		snprintf(out->line[out->n++], sizeof(out->line[0]), "%.*s", (int)l, p);
		p += l + (nl ? 1 : 0);
	}
	return out->n;
}

/*
 * SQLite's allocator, made to fail once on request: the countdown-th
 * allocation from now (0 = the next) returns NULL, and SQLite reports
 * SQLITE_NOMEM from whichever query made it. Installed at the start of
 * main (before SQLite initialises), with lookaside off so that small
 * allocations reach it too. A sweep over countdowns fails each query of a
 * call in turn; a countdown that the call outlives marks the end.
 */
static sqlite3_mem_methods real_mem;
static int fail_countdown = -1; /* -1 = never */
static int fail_hits;

static bool alloc_fails(void)
{
	if (fail_countdown < 0)
		return false;
	if (fail_countdown-- > 0)
		return false;
	fail_hits++;
	return true;
}

static void *failing_malloc(int n)
{
	return alloc_fails() ? NULL : real_mem.xMalloc(n);
}

static void *failing_realloc(void *p, int n)
{
	return alloc_fails() ? NULL : real_mem.xRealloc(p, n);
}

static void install_failing_alloc(void)
{
	sqlite3_mem_methods m;
	CHECK_EQ_INT(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem), SQLITE_OK);
	m = real_mem;
	m.xMalloc = failing_malloc;
	m.xRealloc = failing_realloc;
	CHECK_EQ_INT(sqlite3_config(SQLITE_CONFIG_MALLOC, &m), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0), SQLITE_OK);
}

/* The spool's truth, read from its file by a connection of our own. */
static struct spool_stats file_stats(const char *path)
{
	struct spool_stats st;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	memset(&st, 0x7f, sizeof(st));
	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*), coalesce(sum(length(payload)),0), "
				   "coalesce(min(seq),0), coalesce(max(seq),0) FROM messages",
			       -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW) {
		st.messages = sqlite3_column_int64(q, 0);
		st.bytes = sqlite3_column_int64(q, 1);
		st.first_seq = sqlite3_column_int64(q, 2);
		st.last_seq = sqlite3_column_int64(q, 3);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	return st;
}

/* Whether the spool's counters are the file's; says which differs. */
static void check_counters_true(struct spool *sp, const char *path, int countdown)
{
	struct spool_stats got = stats(sp), want = file_stats(path);
	if (got.messages != want.messages || got.bytes != want.bytes ||
	    got.first_seq != want.first_seq || got.last_seq != want.last_seq)
		fprintf(stderr, "  (allocation %d failed: counters %lld msgs %lld bytes %lld..%lld, "
				"file %lld msgs %lld bytes %lld..%lld)\n",
			countdown, (long long)got.messages, (long long)got.bytes,
			(long long)got.first_seq, (long long)got.last_seq, (long long)want.messages,
			(long long)want.bytes, (long long)want.first_seq, (long long)want.last_seq);
	CHECK_EQ_INT(got.messages, want.messages);
	CHECK_EQ_INT(got.bytes, want.bytes);
	CHECK_EQ_INT(got.first_seq, want.first_seq);
	CHECK_EQ_INT(got.last_seq, want.last_seq);
}

/* Runs fn(sp) with the countdown-th allocation failing and the log silenced; returns its rc. */
static int with_failure(int countdown, int (*fn)(struct spool *), struct spool *sp)
{
	int saved = dup(STDERR_FILENO), devnull = open("/dev/null", O_WRONLY);
	dup2(devnull, STDERR_FILENO);
	close(devnull);
	fail_hits = 0;
	fail_countdown = countdown;
	int rc = fn(sp);
	fail_countdown = -1;
	dup2(saved, STDERR_FILENO);
	close(saved);
	return rc;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

/* ---------------------------------------------------------------- spool: seq */

static void test_new_spool_knows_no_seq(void)
{
	char path[600], buf[64];
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_next_seq(sp), 0);
	struct spool_stats st = stats(sp);
	CHECK_EQ_INT(st.messages, 0);
	CHECK_EQ_INT(st.bytes, 0);
	CHECK_EQ_INT(st.first_seq, 0);
	CHECK_EQ_INT(st.last_seq, 0);
	CHECK_EQ_INT(st.dropped_total, 0);

	/* appending before the seq is known is refused, and stores nothing */
	size_t n = payload(buf, sizeof(buf), 1);
	CHECK_EQ_INT(spool_append(sp, TS, buf, n, NULL, NULL), SP_EINVAL);
	CHECK_EQ_INT(spool_next_seq(sp), 0);
	CHECK_EQ_INT(stats(sp).messages, 0);
	struct seen s;
	CHECK_EQ_INT(each(sp, 0, 100, &s, 0), 0);
	CHECK_EQ_INT(s.n, 0);
	spool_close(sp);

	/* still unknown after a restart */
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp) {
		CHECK_EQ_INT(spool_next_seq(sp), 0);
		spool_close(sp);
	}
	harness_remove_db(path);
}

static char second_agent_path[600];

/* Another process opening the spool, as a second agent with the same spool_path would. */
static void second_agent(void)
{
	CHECK(spool_open(second_agent_path, BIG, false) == NULL);
}

/* One process at a time: a second open of a spool in use is refused, and works once it closed. */
static void test_one_user_at_a_time(void)
{
	char path[600], buf[64];
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 7), 0);
	/* in a process of its own: the refused open's descriptors are not the first's */
	snprintf(second_agent_path, sizeof(second_agent_path), "%s", path);
	CHECK(in_child(second_agent, 10000));
	/* the first still works */
	size_t n = payload(buf, sizeof(buf), 7);
	CHECK_EQ_INT(spool_append(sp, TS, buf, n, NULL, NULL), 0);
	spool_close(sp);
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp) {
		CHECK_EQ_INT(spool_next_seq(sp), 8);
		CHECK_EQ_INT(stats(sp).messages, 1);
		spool_close(sp);
	}
	harness_remove_db(path);
}

static void test_set_next_seq_then_append(void)
{
	char path[600];
	struct seen s;
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, true);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 42), 0);
	CHECK_EQ_INT(spool_next_seq(sp), 42);
	CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(spool_next_seq(sp), 43);
	CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(spool_next_seq(sp), 45);

	CHECK_EQ_INT(each(sp, 0, 100, &s, 0), 3);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_INT(s.seq[0], 42);
	CHECK_EQ_INT(s.seq[1], 43);
	CHECK_EQ_INT(s.seq[2], 44);
	CHECK_EQ_STR(s.payload[0], "{\"v\":1,\"seq\":42,\"ts\":1764320000042,\"records\":[]}");
	CHECK_EQ_STR(s.payload[2], "{\"v\":1,\"seq\":44,\"ts\":1764320000044,\"records\":[]}");
	spool_close(sp);
	harness_remove_db(path);
}

/* ---------------------------------------------------------------- spool: stats, iteration */

static void test_stats(void)
{
	char path[600];
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 7), 0);
	CHECK_EQ_INT(append_fill(sp, 'a', 10, NULL, NULL), 0);
	struct spool_stats st = stats(sp);
	CHECK_EQ_INT(st.messages, 1);
	CHECK_EQ_INT(st.bytes, 10);
	CHECK_EQ_INT(st.first_seq, 7);
	CHECK_EQ_INT(st.last_seq, 7);
	CHECK_EQ_INT(append_fill(sp, 'b', 25, NULL, NULL), 0);
	CHECK_EQ_INT(append_fill(sp, 'c', 100, NULL, NULL), 0);
	st = stats(sp);
	CHECK_EQ_INT(st.messages, 3);
	CHECK_EQ_INT(st.bytes, 135);
	CHECK_EQ_INT(st.first_seq, 7);
	CHECK_EQ_INT(st.last_seq, 9);
	CHECK_EQ_INT(st.dropped_total, 0);
	spool_close(sp);
	harness_remove_db(path);
}

static void test_each_after_order_and_limits(void)
{
	char path[600];
	struct seen s;
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(append_std(sp), 0);

	/* everything, oldest first */
	CHECK_EQ_INT(each(sp, 0, 1000, &s, 0), 10);
	for (int i = 0; i < 10 && i < s.n; i++) {
		char want[128];
		CHECK_EQ_INT(s.seq[i], i + 1);
		CHECK_EQ_INT(s.len[i], payload(want, sizeof(want), i + 1));
		CHECK_EQ_STR(s.payload[i], want);
	}
	/* strictly after after_seq */
	CHECK_EQ_INT(each(sp, 5, 1000, &s, 0), 5);
	CHECK_EQ_INT(s.seq[0], 6);
	CHECK_EQ_INT(s.seq[4], 10);
	/* at most max */
	CHECK_EQ_INT(each(sp, 3, 2, &s, 0), 2);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_INT(s.seq[0], 4);
	CHECK_EQ_INT(s.seq[1], 5);
	CHECK_EQ_INT(each(sp, 0, 1, &s, 0), 1);
	CHECK_EQ_INT(s.seq[0], 1);
	CHECK_EQ_INT(each(sp, 0, 0, &s, 0), 0);
	CHECK_EQ_INT(s.n, 0);
	/* nothing after the newest */
	CHECK_EQ_INT(each(sp, 10, 1000, &s, 0), 0);
	CHECK_EQ_INT(each(sp, 99, 1000, &s, 0), 0);
	/* the callback stops the iteration; the stopping message counts as visited */
	CHECK_EQ_INT(each(sp, 0, 1000, &s, 3), 3);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_INT(s.seq[2], 3);
	/* and the statement is reusable afterwards */
	CHECK_EQ_INT(each(sp, 8, 1000, &s, 0), 2);
	CHECK_EQ_INT(s.seq[0], 9);
	spool_close(sp);
	harness_remove_db(path);
}

static void test_binary_payload_round_trip(void)
{
	char path[600];
	struct seen s;
	static const char bin[] = {'{', 0, '\n', (char)0xff, '}', 'x'};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	CHECK_EQ_INT(spool_append(sp, TS, bin, 5, NULL, NULL), 0); /* 'x' not included */
	CHECK_EQ_INT(stats(sp).bytes, 5);
	CHECK_EQ_INT(each(sp, 0, 10, &s, 0), 1);
	CHECK_EQ_INT(s.len[0], 5);
	CHECK(memcmp(s.payload[0], bin, 5) == 0);
	spool_close(sp);
	harness_remove_db(path);
}

/* ---------------------------------------------------------------- spool: ack */

static void test_ack(void)
{
	char path[600];
	struct seen s;
	char p1[128];
	size_t one = payload(p1, sizeof(p1), 1); /* all five payloads have this length */
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(stats(sp).bytes, 5 * (int64_t)one);

	/* partial: <= 2 leave */
	CHECK_EQ_INT(spool_ack(sp, 2), 0);
	struct spool_stats st = stats(sp);
	CHECK_EQ_INT(st.messages, 3);
	CHECK_EQ_INT(st.bytes, 3 * (int64_t)one);
	CHECK_EQ_INT(st.first_seq, 3);
	CHECK_EQ_INT(st.last_seq, 5);
	CHECK_EQ_INT(each(sp, 0, 100, &s, 0), 3);
	CHECK_EQ_INT(s.seq[0], 3);

	/* an old or repeated ack changes nothing */
	CHECK_EQ_INT(spool_ack(sp, 2), 0);
	CHECK_EQ_INT(spool_ack(sp, 0), 0);
	CHECK_EQ_INT(stats(sp).messages, 3);
	CHECK_EQ_INT(stats(sp).first_seq, 3);

	/* one more */
	CHECK_EQ_INT(spool_ack(sp, 3), 0);
	CHECK_EQ_INT(stats(sp).messages, 2);
	CHECK_EQ_INT(stats(sp).first_seq, 4);

	/* full */
	CHECK_EQ_INT(spool_ack(sp, 5), 0);
	st = stats(sp);
	CHECK_EQ_INT(st.messages, 0);
	CHECK_EQ_INT(st.bytes, 0);
	CHECK_EQ_INT(st.first_seq, 0);
	CHECK_EQ_INT(st.last_seq, 0);
	CHECK_EQ_INT(each(sp, 0, 100, &s, 0), 0);
	CHECK_EQ_INT(spool_next_seq(sp), 6); /* an ack never rewinds the seq */
	CHECK_EQ_INT(spool_ack(sp, 100), 0);

	/* and the spool goes on */
	CHECK_EQ_INT(append_std(sp), 0);
	st = stats(sp);
	CHECK_EQ_INT(st.messages, 1);
	CHECK_EQ_INT(st.first_seq, 6);
	CHECK_EQ_INT(st.last_seq, 6);

	/* an ack beyond the newest held clears everything */
	CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(spool_ack(sp, 1000), 0);
	CHECK_EQ_INT(stats(sp).messages, 0);
	CHECK_EQ_INT(stats(sp).bytes, 0);
	CHECK_EQ_INT(spool_next_seq(sp), 8);
	spool_close(sp);
	harness_remove_db(path);
}

/* ---------------------------------------------------------------- spool: restarts */

static void test_reopen_keeps_messages_and_seq(void)
{
	char path[600];
	struct seen s;
	char p[128];
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, true);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 100), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(spool_ack(sp, 101), 0);
	spool_close(sp);

	sp = spool_open(path, BIG, true);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_next_seq(sp), 104);
	struct spool_stats st = stats(sp);
	CHECK_EQ_INT(st.messages, 2);
	CHECK_EQ_INT(st.bytes, (int64_t)(payload(p, sizeof(p), 102) + payload(p, sizeof(p), 103)));
	CHECK_EQ_INT(st.first_seq, 102);
	CHECK_EQ_INT(st.last_seq, 103);
	CHECK_EQ_INT(st.dropped_total, 0);
	CHECK_EQ_INT(each(sp, 0, 100, &s, 0), 2);
	payload(p, sizeof(p), 102);
	CHECK_EQ_STR(s.payload[0], p);
	payload(p, sizeof(p), 103);
	CHECK_EQ_STR(s.payload[1], p);
	CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(stats(sp).last_seq, 104);

	/* everything acked: the seq still survives the restart (kept in meta) */
	CHECK_EQ_INT(spool_ack(sp, 104), 0);
	spool_close(sp);
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_next_seq(sp), 105);
	CHECK_EQ_INT(stats(sp).messages, 0);
	CHECK_EQ_INT(stats(sp).first_seq, 0);
	spool_close(sp);
	harness_remove_db(path);
}

struct cmds_seen {
	int n;
	char ids[8][16];
	int ports[8];
};

static void note_cmd(void *ctx, const char *id, const char *dev, int port)
{
	struct cmds_seen *c = ctx;
	(void)dev;
	if (c->n < 8) {
		snprintf(c->ids[c->n], sizeof(c->ids[0]), "%s", id);
		c->ports[c->n] = port;
	}
	c->n++;
}

/* Applied commands survive a reopen; the newest `keep` stay, oldest first. */
static void test_commands_remembered(void)
{
	char path[600];
	struct cmds_seen c = {0};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_cmd_each(sp, note_cmd, &c), 0);
	CHECK_EQ_INT(spool_cmd_add(sp, "c1", SP_CMD_PORT_OFF, "chg-1", 3, 1000, 2), 1);
	/* the first stands */
	CHECK_EQ_INT(spool_cmd_add(sp, "c1", SP_CMD_PORT_OFF, "chg-1", 5, 1001, 2), 0);
	CHECK_EQ_INT(spool_cmd_add(sp, "c2", SP_CMD_PORT_OFF, "chg-2", 4, 1002, 2), 1);
	spool_close(sp);

	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_cmd_each(sp, note_cmd, &c), 2);
	CHECK_EQ_STR(c.ids[0], "c1");
	CHECK_EQ_INT(c.ports[0], 3);
	CHECK_EQ_STR(c.ids[1], "c2");
	/* a third with keep 2 forgets the oldest */
	CHECK_EQ_INT(spool_cmd_add(sp, "c3", SP_CMD_PORT_OFF, "chg-2", 1, 1003, 2), 1);
	c.n = 0;
	CHECK_EQ_INT(spool_cmd_each(sp, note_cmd, &c), 2);
	CHECK_EQ_STR(c.ids[0], "c2");
	CHECK_EQ_STR(c.ids[1], "c3");
	/*
	 * the wall clock set back: a new command's time is older than the
	 * others', and it is still the newest (it was deleted at once, by `at`)
	 */
	CHECK_EQ_INT(spool_cmd_add(sp, "c4", SP_CMD_PORT_OFF, "chg-1", 2, 500, 2), 1);
	c.n = 0;
	CHECK_EQ_INT(spool_cmd_each(sp, note_cmd, &c), 2);
	CHECK_EQ_STR(c.ids[0], "c3");
	CHECK_EQ_STR(c.ids[1], "c4");
	spool_close(sp);
	harness_remove_db(path);
}

struct ports_seen {
	int n;
	char devs[8][16];
	int ports[8];
};

static void note_port(void *ctx, const char *dev, int port)
{
	struct ports_seen *p = ctx;
	if (p->n < 8) {
		snprintf(p->devs[p->n], sizeof(p->devs[0]), "%s", dev);
		p->ports[p->n] = port;
	}
	p->n++;
}

/*
 * A port a command turned off stays off however many commands came since:
 * the ids are kept `keep` deep, the ports for good (the old spool restored
 * the ports of the remembered ids only, and the oldest went with its id).
 */
static void test_ports_off_outlive_ids(void)
{
	char path[600];
	struct ports_seen p = {0};
	struct cmds_seen c = {0};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 0);
	CHECK_EQ_INT(spool_cmd_add(sp, "c1", SP_CMD_PORT_OFF, "chg-1", 3, 1000, 2), 1);
	CHECK_EQ_INT(spool_cmd_add(sp, "c2", SP_CMD_PORT_OFF, "chg-2", 4, 1001, 2), 1);
	/* the same port again */
	CHECK_EQ_INT(spool_cmd_add(sp, "c3", SP_CMD_PORT_OFF, "chg-2", 4, 1002, 2), 1);
	CHECK_EQ_INT(spool_cmd_add(sp, "c4", SP_CMD_PORT_OFF, "chg-2", 1, 1003, 2), 1);
	/* a known id is not applied: its new port is not remembered off */
	CHECK_EQ_INT(spool_cmd_add(sp, "c4", SP_CMD_PORT_OFF, "chg-1", 5, 1004, 2), 0);
	spool_close(sp);

	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_cmd_each(sp, note_cmd, &c), 2); /* the ids: the newest 2 */
	CHECK_EQ_STR(c.ids[0], "c3");
	CHECK_EQ_STR(c.ids[1], "c4");
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 3); /* the ports: all of them */
	CHECK_EQ_STR(p.devs[0], "chg-1");
	CHECK_EQ_INT(p.ports[0], 3);
	CHECK_EQ_STR(p.devs[1], "chg-2");
	CHECK_EQ_INT(p.ports[1], 1);
	CHECK_EQ_STR(p.devs[2], "chg-2");
	CHECK_EQ_INT(p.ports[2], 4);
	spool_close(sp);
	harness_remove_db(path);
}

/*
 * An older agent's spool (commands, no ports_off) is upgraded at open: the
 * ports of its commands are kept off from then on; and so are those of
 * commands an older agent remembered in a run after the upgrade.
 */
static void test_ports_off_upgrade(void)
{
	char path[600];
	struct ports_seen p = {0};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	CHECK_EQ_INT(raw_sql(path, "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
				   "CREATE TABLE messages(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
				   " payload BLOB NOT NULL);"
				   "CREATE TABLE commands(id TEXT PRIMARY KEY, dev TEXT NOT NULL,"
				   " port INTEGER NOT NULL, at INTEGER NOT NULL);"
				   "INSERT INTO meta VALUES ('next_seq', 7);"
				   "INSERT INTO commands VALUES ('a', 'chg-1', 2, 1), ('b', 'chg-1', 2, 2),"
				   " ('c', 'chg-3', 64, 3);"
				   "PRAGMA user_version = 1;"),
		     SQLITE_OK);
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_next_seq(sp), 7);
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 2);
	CHECK_EQ_STR(p.devs[0], "chg-1");
	CHECK_EQ_INT(p.ports[0], 2);
	CHECK_EQ_STR(p.devs[1], "chg-3");
	CHECK_EQ_INT(p.ports[1], 64);
	spool_close(sp);
	/* an older agent in between remembers a command in commands only (naming its columns) */
	CHECK_EQ_INT(raw_sql(path, "INSERT INTO commands(id, dev, port, at) "
				   "VALUES ('d', 'chg-2', 5, 4)"),
		     SQLITE_OK);
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	p.n = 0;
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 3);
	CHECK_EQ_STR(p.devs[1], "chg-2");
	CHECK_EQ_INT(p.ports[1], 5);
	spool_close(sp);
	harness_remove_db(path);
}

/* A command whose port cannot be remembered is not remembered either (one transaction). */
static void test_cmd_add_is_one_transaction(void)
{
	char path[600];
	struct cmds_seen c = {0};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	spool_close(sp);
	CHECK_EQ_INT(raw_sql(path, "CREATE TRIGGER no_port BEFORE INSERT ON ports_off "
				   "BEGIN SELECT RAISE(ABORT, 'refused'); END"),
		     SQLITE_OK);
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_cmd_add(sp, "c1", SP_CMD_PORT_OFF, "chg-1", 3, 1000, 2), SP_EIO);
	CHECK_EQ_INT(spool_cmd_each(sp, note_cmd, &c), 0);
	spool_close(sp);
	harness_remove_db(path);
}

/*
 * port_on (docs/protocol.md, Command): a new port_on id takes its port out of
 * ports_off, in the transaction that remembers the id; the ids of both kinds
 * share the `keep` memory, each applied once. A reopen does not turn the port
 * off again from the old port_off id still among the ids kept (the open added
 * the ports of every remembered id to ports_off again, each time).
 */
static void test_port_on(void)
{
	char path[600];
	struct ports_seen p = {0};
	struct cmds_seen c = {0};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_cmd_add(sp, "c1", SP_CMD_PORT_OFF, "chg-1", 3, 1000, 8), 1);
	CHECK_EQ_INT(spool_cmd_add(sp, "c2", SP_CMD_PORT_OFF, "chg-2", 4, 1001, 8), 1);
	CHECK_EQ_INT(spool_cmd_add(sp, "c3", SP_CMD_PORT_ON, "chg-1", 3, 1002, 8), 1);
	/* a port not off: the id is remembered, nothing else changes */
	CHECK_EQ_INT(spool_cmd_add(sp, "c4", SP_CMD_PORT_ON, "chg-1", 5, 1003, 8), 1);
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 1);
	CHECK_EQ_STR(p.devs[0], "chg-2");
	CHECK_EQ_INT(p.ports[0], 4);
	spool_close(sp);

	for (int round = 0; round < 2; round++) { /* every open alike, not only the first */
		sp = spool_open(path, BIG, false);
		CHECK(sp != NULL);
		if (sp == NULL)
			return;
		p.n = 0;
		CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 1);
		CHECK_EQ_STR(p.devs[0], "chg-2");
		CHECK_EQ_INT(p.ports[0], 4);
		c.n = 0;
		CHECK_EQ_INT(spool_cmd_each(sp, note_cmd, &c), 4); /* c1 still among the ids */
		CHECK_EQ_STR(c.ids[0], "c1");
		CHECK_EQ_STR(c.ids[2], "c3");
		spool_close(sp);
	}
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	/* each id once, whatever its kind says now */
	CHECK_EQ_INT(spool_cmd_add(sp, "c3", SP_CMD_PORT_ON, "chg-2", 4, 1004, 8), 0);
	CHECK_EQ_INT(spool_cmd_add(sp, "c1", SP_CMD_PORT_OFF, "chg-1", 3, 1005, 8), 0);
	p.n = 0;
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 1);
	CHECK_EQ_STR(p.devs[0], "chg-2");
	/* off again by a new id, on again by another */
	CHECK_EQ_INT(spool_cmd_add(sp, "c5", SP_CMD_PORT_OFF, "chg-1", 3, 1006, 8), 1);
	p.n = 0;
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 2);
	CHECK_EQ_STR(p.devs[0], "chg-1");
	CHECK_EQ_INT(p.ports[0], 3);
	CHECK_EQ_INT(spool_cmd_add(sp, "c6", SP_CMD_PORT_ON, "chg-2", 4, 1007, 8), 1);
	spool_close(sp);
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	p.n = 0;
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 1);
	CHECK_EQ_STR(p.devs[0], "chg-1");
	CHECK_EQ_INT(p.ports[0], 3);
	spool_close(sp);
	harness_remove_db(path);
}

/*
 * A spool of an agent before port_on (commands without the column cmd, its
 * rows all port_off) is upgraded at open: their ports are off; a port_on then
 * puts one back in service for good, across reopens; the rows an older agent
 * adds in a run in between (no cmd) still turn their ports off once, a
 * port_off for the port the port_on put back included (it is newer).
 */
static void test_port_on_upgrade(void)
{
	char path[600];
	struct ports_seen p = {0};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	CHECK_EQ_INT(raw_sql(path, "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
				   "CREATE TABLE messages(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
				   " payload BLOB NOT NULL);"
				   "CREATE TABLE commands(id TEXT PRIMARY KEY, dev TEXT NOT NULL,"
				   " port INTEGER NOT NULL, at INTEGER NOT NULL);"
				   "CREATE TABLE ports_off(dev TEXT NOT NULL, port INTEGER NOT NULL,"
				   " PRIMARY KEY(dev, port)) WITHOUT ROWID;"
				   "INSERT INTO meta VALUES ('next_seq', 7);"
				   "INSERT INTO commands VALUES ('a', 'chg-1', 2, 1), ('b', 'chg-3', 6, 2);"
				   "INSERT INTO ports_off VALUES ('chg-1', 2);"
				   "PRAGMA user_version = 1;"),
		     SQLITE_OK);
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_next_seq(sp), 7);
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 2);
	CHECK_EQ_INT(spool_cmd_add(sp, "c", SP_CMD_PORT_ON, "chg-1", 2, 3, 64), 1);
	spool_close(sp);
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	p.n = 0;
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 1);
	CHECK_EQ_STR(p.devs[0], "chg-3");
	spool_close(sp);
	/* an older agent in between writes its commands without cmd */
	CHECK_EQ_INT(raw_sql(path, "INSERT INTO commands(id, dev, port, at) VALUES "
				   "('d', 'chg-2', 5, 4), ('e', 'chg-1', 2, 5)"),
		     SQLITE_OK);
	for (int round = 0; round < 2; round++) {
		sp = spool_open(path, BIG, false);
		CHECK(sp != NULL);
		if (sp == NULL)
			return;
		p.n = 0;
		CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 3);
		CHECK_EQ_STR(p.devs[0], "chg-1");
		CHECK_EQ_INT(p.ports[0], 2);
		CHECK_EQ_STR(p.devs[1], "chg-2");
		CHECK_EQ_INT(p.ports[1], 5);
		if (round == 0) /* and back in service: the older agent's rows are not taken again */
			CHECK_EQ_INT(spool_cmd_add(sp, "f", SP_CMD_PORT_ON, "chg-2", 5, 6, 64), 1);
		spool_close(sp);
		if (round == 0) {
			sp = spool_open(path, BIG, false);
			CHECK(sp != NULL);
			if (sp == NULL)
				return;
			p.n = 0;
			CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 2);
			CHECK_EQ_STR(p.devs[1], "chg-3");
			spool_close(sp);
			CHECK_EQ_INT(raw_sql(path, "INSERT INTO commands(id, dev, port, at) VALUES "
						   "('g', 'chg-2', 5, 7)"),
				     SQLITE_OK);
		}
	}
	harness_remove_db(path);
}

/*
 * Without ports_off (the open could not create it: here a view by that name
 * refuses the insert), the ports still off are read from the commands: a
 * port_on newer than a port's port_off takes it out.
 */
static void test_port_on_without_ports_off(void)
{
	char path[600];
	struct ports_seen p = {0};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	CHECK_EQ_INT(raw_sql(path, "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
				   "CREATE TABLE messages(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
				   " payload BLOB NOT NULL);"
				   "CREATE TABLE commands(id TEXT PRIMARY KEY, dev TEXT NOT NULL,"
				   " port INTEGER NOT NULL, at INTEGER NOT NULL, cmd TEXT);"
				   "CREATE VIEW ports_off AS SELECT 'x' AS dev, 1 AS port;"
				   "INSERT INTO commands VALUES ('a', 'chg-1', 2, 1, 'port_off'),"
				   " ('b', 'chg-1', 3, 2, 'port_off'), ('c', 'chg-1', 2, 3, 'port_on'),"
				   " ('d', 'chg-1', 3, 4, 'port_on'), ('e', 'chg-1', 3, 5, 'port_off'),"
				   " ('f', 'chg-2', 1, 6, NULL);"
				   "PRAGMA user_version = 1;"),
		     SQLITE_OK);
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 2);
	CHECK_EQ_STR(p.devs[0], "chg-1");
	CHECK_EQ_INT(p.ports[0], 3);
	CHECK_EQ_STR(p.devs[1], "chg-2");
	CHECK_EQ_INT(p.ports[1], 1);
	spool_close(sp);
	harness_remove_db(path);
}

/*
 * The upgrade at open failing (a full disk; here a trigger refuses it) on a
 * spool that has ports_off already: ports_off is still read. Reading the
 * commands instead put in service every port an older command than the
 * last 64 ids had turned off.
 */
static void test_ports_off_read_when_upgrade_fails(void)
{
	char path[600];
	struct ports_seen p = {0};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	CHECK_EQ_INT(raw_sql(path, "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
				   "CREATE TABLE messages(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
				   " payload BLOB NOT NULL);"
				   "CREATE TABLE commands(id TEXT PRIMARY KEY, dev TEXT NOT NULL,"
				   " port INTEGER NOT NULL, at INTEGER NOT NULL, cmd TEXT);"
				   "CREATE TABLE ports_off(dev TEXT NOT NULL, port INTEGER NOT NULL,"
				   " PRIMARY KEY(dev, port)) WITHOUT ROWID;"
				   "INSERT INTO ports_off VALUES ('chg-9', 4);"
				   "INSERT INTO commands VALUES ('f', 'chg-2', 1, 6, NULL);"
				   "CREATE TRIGGER refuse BEFORE UPDATE ON commands"
				   " BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
				   "PRAGMA user_version = 1;"),
		     SQLITE_OK);
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 1);
	CHECK_EQ_STR(p.devs[0], "chg-9");
	CHECK_EQ_INT(p.ports[0], 4);
	spool_close(sp);
	harness_remove_db(path);
}

/* A port_on whose port cannot be taken out is not remembered either (one transaction). */
static void test_port_on_is_one_transaction(void)
{
	char path[600];
	struct cmds_seen c = {0};
	struct ports_seen p = {0};
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_cmd_add(sp, "c1", SP_CMD_PORT_OFF, "chg-1", 3, 1000, 8), 1);
	spool_close(sp);
	CHECK_EQ_INT(raw_sql(path, "CREATE TRIGGER no_on BEFORE DELETE ON ports_off "
				   "BEGIN SELECT RAISE(ABORT, 'refused'); END"),
		     SQLITE_OK);
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_cmd_add(sp, "c2", SP_CMD_PORT_ON, "chg-1", 3, 1001, 8), SP_EIO);
	CHECK_EQ_INT(spool_cmd_each(sp, note_cmd, &c), 1);
	CHECK_EQ_INT(spool_port_off_each(sp, note_port, &p), 1);
	spool_close(sp);
	harness_remove_db(path);
}

/* A record of kind k for the pending tests: a port (port i) or a fault with a detail. */
static struct sp_record pend_rec(int i)
{
	struct sp_record r;
	memset(&r, 0, sizeof(r));
	snprintf(r.dev, sizeof(r.dev), "chg-%d", i);
	r.ts = TS + i;
	if (i % 2) {
		r.kind = SP_REC_PORT;
		r.u.port.port = i;
		r.u.port.state = SP_PORT_CHARGING;
		r.u.port.w = 1000.5 + i;
		r.has = SP_HAS_W;
	} else {
		r.kind = SP_REC_FAULT;
		snprintf(r.u.fault.code, sizeof(r.u.fault.code), "F%d", i);
		r.u.fault.active = true;
		snprintf(r.u.fault.detail, sizeof(r.u.fault.detail), "line \"%d\" \u00e9", i);
		r.has = SP_HAS_DETAIL;
	}
	return r;
}

struct pend_seen {
	int n;
	int64_t ids[16];
	struct sp_record recs[16];
};

static void note_pending(void *ctx, int64_t id, const struct sp_record *r)
{
	struct pend_seen *p = ctx;
	if (p->n < 16) {
		p->ids[p->n] = id;
		p->recs[p->n] = *r;
	}
	p->n++;
}

static int pending_read(struct spool *sp, size_t max, struct pend_seen *p)
{
	memset(p, 0, sizeof(*p));
	return spool_pending_each(sp, max, note_pending, p);
}

/*
 * Records kept at a stop before the seq was known come back at the next open,
 * in order and as they were (their own ts); the newest `max` of them.
 */
static void test_pending_kept(void)
{
	char path[600];
	struct pend_seen p;
	struct sp_record recs[6];
	for (int i = 0; i < 6; i++)
		recs[i] = pend_rec(i + 1);
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(pending_read(sp, 100, &p), 0);
	CHECK_EQ_INT(spool_pending_save(sp, recs, 3, INT64_MAX), 0);
	spool_close(sp);

	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_next_seq(sp), 0); /* still new: the seq is not theirs to know */
	CHECK_EQ_INT(pending_read(sp, 100, &p), 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(p.recs[i].kind, recs[i].kind);
		CHECK_EQ_STR(p.recs[i].dev, recs[i].dev);
		CHECK_EQ_INT(p.recs[i].ts, recs[i].ts);
		CHECK_EQ_INT(p.recs[i].has, recs[i].has);
	}
	CHECK(p.recs[0].u.port.w == recs[0].u.port.w);
	CHECK_EQ_INT(p.recs[0].u.port.state, SP_PORT_CHARGING);
	CHECK_EQ_STR(p.recs[1].u.fault.detail, recs[1].u.fault.detail);
	CHECK_EQ_STR(p.recs[1].u.fault.code, "F2");
	CHECK(p.ids[0] < p.ids[1] && p.ids[1] < p.ids[2]);
	/* read again: still there (they leave with the message that takes them) */
	CHECK_EQ_INT(pending_read(sp, 100, &p), 3);
	/* the newest max, oldest first */
	CHECK_EQ_INT(pending_read(sp, 2, &p), 2);
	CHECK_EQ_INT(p.recs[0].ts, recs[1].ts);
	CHECK_EQ_INT(p.recs[1].ts, recs[2].ts);

	/*
	 * a second stop: the oldest loaded one was dropped from memory since
	 * (keep_from = the second's id), three new ones are added after the rest
	 */
	CHECK_EQ_INT(spool_pending_save(sp, recs + 3, 3, p.ids[0]), 0);
	CHECK_EQ_INT(pending_read(sp, 100, &p), 5);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(p.recs[i].ts, recs[i + 1].ts);
	/* keep_from INT64_MAX: none loaded kept, only the new */
	CHECK_EQ_INT(spool_pending_save(sp, recs, 1, INT64_MAX), 0);
	CHECK_EQ_INT(pending_read(sp, 100, &p), 1);
	CHECK_EQ_INT(p.recs[0].ts, recs[0].ts);
	spool_close(sp);
	harness_remove_db(path);
}

/*
 * The message that takes kept records deletes them in its own transaction:
 * committed, they are gone; failed, they stay (nothing lost, nothing twice).
 */
static void test_pending_leave_with_message(void)
{
	char path[600];
	struct pend_seen p;
	struct sp_record recs[4];
	for (int i = 0; i < 4; i++)
		recs[i] = pend_rec(i + 1);
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_pending_save(sp, recs, 4, INT64_MAX), 0);
	CHECK_EQ_INT(pending_read(sp, 100, &p), 4);
	CHECK_EQ_INT(spool_set_next_seq(sp, 5), 0);

	/* an append that fails (a trigger refuses the insert) leaves them */
	CHECK_EQ_INT(raw_sql(path, "CREATE TRIGGER no_msg BEFORE INSERT ON messages "
				   "BEGIN SELECT RAISE(ABORT, 'refused'); END"),
		     SQLITE_OK);
	CHECK_EQ_INT(spool_append_pending(sp, TS, "{}", 2, p.ids[1], NULL, NULL), SP_EIO);
	CHECK_EQ_INT(pending_read(sp, 100, &p), 4);
	CHECK_EQ_INT(raw_sql(path, "DROP TRIGGER no_msg"), SQLITE_OK);

	/* the first two go with seq 5 */
	CHECK_EQ_INT(spool_append_pending(sp, TS, "{}", 2, p.ids[1], NULL, NULL), 0);
	CHECK_EQ_INT(stats(sp).last_seq, 5);
	CHECK_EQ_INT(pending_read(sp, 100, &p), 2);
	CHECK_EQ_INT(p.recs[0].ts, recs[2].ts);
	/* a plain append takes none */
	CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(pending_read(sp, 100, &p), 2);
	CHECK_EQ_INT(spool_append_pending(sp, TS, "{}", 2, p.ids[1], NULL, NULL), 0);
	CHECK_EQ_INT(pending_read(sp, 100, &p), 0);
	spool_close(sp);
	harness_remove_db(path);
}

/* A kept row that does not decode is skipped and deleted, the others delivered. */
static void test_pending_bad_row(void)
{
	char path[600];
	struct pend_seen p;
	struct sp_record rec = pend_rec(1);
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	spool_close(sp);
	CHECK_EQ_INT(raw_sql(path, "INSERT INTO pending(rec) VALUES ('garbage'), ('{\"t\":\"x\"}')"),
		     SQLITE_OK);
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_pending_save(sp, &rec, 1, 1), 0); /* keep_from 1: the rows stay */
	CHECK_EQ_INT(pending_read(sp, 100, &p), 1);
	CHECK_EQ_INT(p.recs[0].ts, rec.ts);
	spool_close(sp);
	CHECK_EQ_INT(raw_sql(path, "DELETE FROM pending WHERE rec NOT LIKE 'garbage%' AND rec NOT "
				   "LIKE '{\"t\":\"x%'"),
		     SQLITE_OK);
	sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(pending_read(sp, 100, &p), 0); /* the bad ones were deleted by the read */
	spool_close(sp);
	harness_remove_db(path);
}

static void test_next_seq_survives_lost_meta(void)
{
	char path[600];
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, true);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 10), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(append_std(sp), 0); /* 10, 11, 12 */
	spool_close(sp);

	/* the meta row is lost: the held messages still fix the next seq */
	CHECK_EQ_INT(raw_sql(path, "DELETE FROM meta"), SQLITE_OK);
	sp = spool_open(path, BIG, true);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_next_seq(sp), 13);
	CHECK_EQ_INT(stats(sp).messages, 3);
	CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(stats(sp).last_seq, 13);
	spool_close(sp);

	/* a meta row behind the messages never takes the seq backwards either */
	CHECK_EQ_INT(raw_sql(path, "UPDATE meta SET value = 2 WHERE key = 'next_seq'"), SQLITE_OK);
	sp = spool_open(path, BIG, true);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_next_seq(sp), 14);
	spool_close(sp);
	harness_remove_db(path);
}

/* ---------------------------------------------------------------- spool: overflow */

static void test_overflow_drops_oldest(void)
{
	char path[600];
	struct drops d;
	struct seen s;
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, 100, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	memset(&d, 0, sizeof(d));
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(append_fill(sp, (char)('a' + i), 30, on_drop, &d), 0); /* 1..3: 90 */
	CHECK_EQ_INT(d.n, 0);
	CHECK_EQ_INT(stats(sp).bytes, 90);

	/* 4th: 120 > 100, the oldest goes */
	CHECK_EQ_INT(append_fill(sp, 'd', 30, on_drop, &d), 0);
	CHECK_EQ_INT(d.n, 1);
	CHECK_EQ_INT(d.seq[0], 1);
	struct spool_stats st = stats(sp);
	CHECK_EQ_INT(st.messages, 3);
	CHECK_EQ_INT(st.bytes, 90);
	CHECK_EQ_INT(st.first_seq, 2);
	CHECK_EQ_INT(st.last_seq, 4);
	CHECK_EQ_INT(st.dropped_total, 1);

	/* 70 bytes need two drops (90 - 60 + 70 = 100, exactly the limit) */
	CHECK_EQ_INT(append_fill(sp, 'e', 70, on_drop, &d), 0);
	CHECK_EQ_INT(d.n, 3);
	CHECK_EQ_INT(d.seq[1], 2);
	CHECK_EQ_INT(d.seq[2], 3);
	st = stats(sp);
	CHECK_EQ_INT(st.messages, 2);
	CHECK_EQ_INT(st.bytes, 100);
	CHECK(st.bytes <= 100);
	CHECK_EQ_INT(st.first_seq, 4);
	CHECK_EQ_INT(st.last_seq, 5);
	CHECK_EQ_INT(st.dropped_total, 3);
	CHECK_EQ_INT(each(sp, 0, 100, &s, 0), 2);
	CHECK_EQ_INT(s.seq[0], 4);
	CHECK_EQ_INT(s.payload[0][0], 'd');
	CHECK_EQ_INT(s.seq[1], 5);
	CHECK_EQ_INT(s.len[1], 70);

	/* a message of exactly max_bytes replaces everything; no callback is fine */
	CHECK_EQ_INT(append_fill(sp, 'f', 100, NULL, NULL), 0);
	st = stats(sp);
	CHECK_EQ_INT(st.messages, 1);
	CHECK_EQ_INT(st.bytes, 100);
	CHECK_EQ_INT(st.first_seq, 6);
	CHECK_EQ_INT(st.last_seq, 6);
	CHECK_EQ_INT(st.dropped_total, 5);
	CHECK_EQ_INT(spool_next_seq(sp), 7);

	/* many small appends: bytes never exceed the limit, drops stay in order */
	memset(&d, 0, sizeof(d));
	for (int i = 0; i < 20; i++) {
		CHECK_EQ_INT(append_fill(sp, 'g', 45, on_drop, &d), 0);
		CHECK(stats(sp).bytes <= 100);
	}
	CHECK_EQ_INT(d.n, 19); /* seq 6, then 7..24; 25 and 26 remain */
	for (int i = 0; i < d.n && i < 64; i++)
		CHECK_EQ_INT(d.seq[i], 6 + i);
	st = stats(sp);
	CHECK_EQ_INT(st.messages, 2);
	CHECK_EQ_INT(st.bytes, 90);
	CHECK_EQ_INT(st.first_seq, 25);
	CHECK_EQ_INT(st.last_seq, 26);
	CHECK_EQ_INT(st.dropped_total, 24);
	spool_close(sp);

	/* what survived is what a restart finds */
	sp = spool_open(path, 100, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	st = stats(sp);
	CHECK_EQ_INT(st.messages, 2);
	CHECK_EQ_INT(st.bytes, 90);
	CHECK_EQ_INT(st.first_seq, 25);
	CHECK_EQ_INT(st.last_seq, 26);
	CHECK_EQ_INT(st.dropped_total, 0); /* counted since open */
	CHECK_EQ_INT(spool_next_seq(sp), 27);
	spool_close(sp);
	harness_remove_db(path);
}

/*
 * An append that fails at the disk (here: RLIMIT_FSIZE, so every write
 * past the first 4 KB of a file fails, as on a full disk) after the
 * overflow policy dropped messages inside its transaction: nothing changes,
 * no drop is reported, and no ROLLBACK is attempted after SQLite rolled back
 * by itself. Once the disk has room the same append works.
 */
static void test_failed_append_changes_nothing(void)
{
	char path[600], logpath[600];
	struct drops d;
	struct rlimit old, small;
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	harness_tmp_file(logpath, sizeof(logpath), "test_spool", "log");
	struct spool *sp = spool_open(path, 1000, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	memset(&d, 0, sizeof(d));
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(append_fill(sp, (char)('a' + i), 300, on_drop, &d), 0);
	struct spool_stats before = stats(sp);

	/* capture stderr (the log) while the disk is "full" */
	int saved_err = dup(STDERR_FILENO);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(saved_err >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	sp_log_set_level(SP_LOG_WARN); /* the overflow WARN must not come: nothing committed */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	small = old;
	small.rlim_cur = 4096;
	CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &small), 0);
	int rc = append_fill(sp, 'd', 300, on_drop, &d); /* needs one drop */
	setrlimit(RLIMIT_FSIZE, &old);
	sp_log_set_level(SP_LOG_ERROR);
	dup2(saved_err, STDERR_FILENO);
	close(saved_err);

	CHECK(rc != 0);
	CHECK_EQ_INT(d.n, 0);
	struct spool_stats after = stats(sp);
	CHECK_EQ_INT(after.messages, before.messages);
	CHECK_EQ_INT(after.bytes, before.bytes);
	CHECK_EQ_INT(after.first_seq, 1);
	CHECK_EQ_INT(after.last_seq, 3);
	CHECK_EQ_INT(after.dropped_total, 0);
	CHECK_EQ_INT(spool_next_seq(sp), 4);
	struct lines log;
	read_lines(logpath, &log);
	CHECK(log.n >= 1); /* the failure itself is logged */
	for (int i = 0; i < log.n; i++) {
		CHECK(strstr(log.line[i], "rollback failed") == NULL);
		CHECK(strstr(log.line[i], "full (") == NULL); /* no overflow began */
	}

	/* room again: the same append drops seq 1 and succeeds */
	CHECK_EQ_INT(append_fill(sp, 'd', 300, on_drop, &d), 0);
	CHECK_EQ_INT(d.n, 1);
	CHECK_EQ_INT(d.seq[0], 1);
	CHECK_EQ_INT(stats(sp).first_seq, 2);
	CHECK_EQ_INT(stats(sp).last_seq, 4);
	spool_close(sp);
	harness_remove_db(path);
	unlink(logpath);
}

static int ack_5(struct spool *sp)
{
	return spool_ack(sp, 5);
}

/*
 * Whatever query of an ack fails (SQLITE_NOMEM from each allocation in
 * turn), the counters are the file's once the ack has been tried again, as
 * the agent does at its next tick. The old spool deleted the acked messages
 * after a failed count and subtracted nothing: it went on believing in
 * messages and bytes it no longer had (an ack then skipped them as below
 * the oldest held), until the counters made every append look full.
 */
static void test_failed_ack_queries_leave_true_counters(void)
{
	char path[600];
	bool outlived = false;
	int failed_calls = 0;
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	for (int k = 0; k < 2000 && !outlived; k++) {
		struct spool *sp = spool_open(path, BIG, false);
		CHECK(sp != NULL);
		if (sp == NULL)
			return;
		CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
		for (int i = 0; i < 10; i++)
			CHECK_EQ_INT(append_std(sp), 0);
		int rc = with_failure(k, ack_5, sp);
		outlived = fail_hits == 0;
		if (outlived) {
			CHECK_EQ_INT(rc, 0);
		} else {
			failed_calls += rc != 0;
			CHECK_EQ_INT(spool_ack(sp, 5), 0); /* the next tick */
		}
		check_counters_true(sp, path, k);
		CHECK_EQ_INT(stats(sp).messages, 5);
		CHECK_EQ_INT(stats(sp).first_seq, 6);
		/* and what follows keeps them true */
		CHECK_EQ_INT(append_std(sp), 0);
		CHECK_EQ_INT(spool_ack(sp, 7), 0);
		check_counters_true(sp, path, k);
		spool_close(sp);
		harness_remove_db(path);
	}
	fprintf(stderr, "  ack: %d failed calls before one outlived the sweep\n", failed_calls);
	CHECK(outlived);    /* the sweep reached an ack no failure touched */
	CHECK(failed_calls > 0); /* and some failures did fail it */
}

static int append_drop(struct spool *sp)
{
	return append_fill(sp, 'z', 300, NULL, NULL);
}

/* The same for an append whose overflow policy drops the oldest message. */
static void test_failed_append_queries_leave_true_counters(void)
{
	char path[600];
	bool outlived = false;
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	for (int k = 0; k < 2000 && !outlived; k++) {
		struct spool *sp = spool_open(path, 1000, false);
		CHECK(sp != NULL);
		if (sp == NULL)
			return;
		CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
		for (int i = 0; i < 3; i++)
			CHECK_EQ_INT(append_fill(sp, (char)('a' + i), 300, NULL, NULL), 0);
		int rc = with_failure(k, append_drop, sp); /* needs one drop */
		outlived = fail_hits == 0;
		if (outlived)
			CHECK_EQ_INT(rc, 0);
		else if (rc != 0)
			CHECK_EQ_INT(append_drop(sp), 0); /* tried again */
		/* the next append (the next batch) finds them true */
		CHECK_EQ_INT(append_fill(sp, 'y', 300, NULL, NULL), 0);
		check_counters_true(sp, path, k);
		CHECK_EQ_INT(stats(sp).messages, 3);
		CHECK_EQ_INT(stats(sp).first_seq, 3);
		spool_close(sp);
		harness_remove_db(path);
	}
	CHECK(outlived);
}

static const char *open_path;
static struct spool *opened;

static int open_it(struct spool *unused)
{
	(void)unused;
	opened = spool_open(open_path, BIG, false);
	return opened ? 0 : -1;
}

/*
 * Opening a spool with messages, whatever query fails: it is refused, or it
 * knows its messages and next seq. The old open ignored a failed read and
 * took the spool for empty (or new, learning a seq it had used already).
 */
static void test_failed_open_queries(void)
{
	char path[600];
	bool outlived = false;
	int refused = 0;
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(append_std(sp), 0);
	spool_close(sp);
	open_path = path;
	for (int k = 0; k < 5000 && !outlived; k++) {
		opened = NULL;
		with_failure(k, open_it, NULL);
		outlived = fail_hits == 0;
		if (opened == NULL) {
			CHECK(!outlived);
			refused++;
			continue;
		}
		check_counters_true(opened, path, k);
		CHECK_EQ_INT(spool_next_seq(opened), 11);
		spool_close(opened);
	}
	CHECK(outlived);
	CHECK(refused > 0);
	harness_remove_db(path);
}

static void test_too_big(void)
{
	char path[600];
	struct drops d;
	harness_tmp_file(path, sizeof(path), "test_spool", "db");
	struct spool *sp = spool_open(path, 100, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	memset(&d, 0, sizeof(d));
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	CHECK_EQ_INT(append_fill(sp, 'a', 60, on_drop, &d), 0);
	CHECK_EQ_INT(append_fill(sp, 'b', 101, on_drop, &d), SP_ETOOBIG);
	/* nothing dropped, nothing stored, no seq used */
	CHECK_EQ_INT(d.n, 0);
	struct spool_stats st = stats(sp);
	CHECK_EQ_INT(st.messages, 1);
	CHECK_EQ_INT(st.bytes, 60);
	CHECK_EQ_INT(st.dropped_total, 0);
	CHECK_EQ_INT(spool_next_seq(sp), 2);
	CHECK_EQ_INT(append_fill(sp, 'c', 40, on_drop, &d), 0);
	CHECK_EQ_INT(stats(sp).last_seq, 2);
	CHECK_EQ_INT(d.n, 0);
	spool_close(sp);
	harness_remove_db(path);
}

/* ---------------------------------------------------------------- journal */

static void test_journal_catch_up(void)
{
	char db[600], jpath[600], p[128];
	struct lines l;
	harness_tmp_file(db, sizeof(db), "test_spool", "db");
	harness_tmp_file(jpath, sizeof(jpath), "test_spool", "jsonl");
	struct spool *sp = spool_open(db, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(append_std(sp), 0);

	/* the spool holds 1..3, the journal nothing: open writes them */
	struct journal *j = journal_open(jpath, sp);
	CHECK(j != NULL);
	journal_close(j);
	CHECK_EQ_INT(read_lines(jpath, &l), 3);
	CHECK(l.ends_with_newline);
	for (int i = 0; i < 3; i++) {
		payload(p, sizeof(p), i + 1);
		CHECK_EQ_STR(l.line[i], p);
	}

	/* reopening with nothing new adds nothing */
	j = journal_open(jpath, sp);
	CHECK(j != NULL);
	journal_close(j);
	CHECK_EQ_INT(read_lines(jpath, &l), 3);

	/* a message that reached the spool but not the journal (kill -9 in between) */
	CHECK_EQ_INT(append_std(sp), 0);
	CHECK_EQ_INT(spool_ack(sp, 2), 0); /* acked ones are gone from the spool */
	j = journal_open(jpath, sp);
	CHECK(j != NULL);
	journal_close(j);
	CHECK_EQ_INT(read_lines(jpath, &l), 4);
	payload(p, sizeof(p), 4);
	CHECK_EQ_STR(l.line[3], p);
	payload(p, sizeof(p), 3);
	CHECK_EQ_STR(l.line[2], p);
	spool_close(sp);
	harness_remove_db(db);
	unlink(jpath);
}

static void test_journal_message_idempotent(void)
{
	char db[600], jpath[600], p[128];
	struct lines l;
	size_t n;
	harness_tmp_file(db, sizeof(db), "test_spool", "db");
	harness_tmp_file(jpath, sizeof(jpath), "test_spool", "jsonl");
	struct spool *sp = spool_open(db, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 5), 0);
	CHECK_EQ_INT(append_std(sp), 0); /* 5 */
	struct journal *j = journal_open(jpath, sp);
	CHECK(j != NULL);
	if (j == NULL) {
		spool_close(sp);
		return;
	}
	/* 5 was caught up at open: writing it again is a no-op */
	n = payload(p, sizeof(p), 5);
	CHECK_EQ_INT(journal_message(j, 5, p, n), 0);
	/* as the agent does: the spool commits a message before it is journalled */
	CHECK_EQ_INT(append_std(sp), 0); /* 6 */
	CHECK_EQ_INT(append_std(sp), 0); /* 7 */
	n = payload(p, sizeof(p), 6);
	CHECK_EQ_INT(journal_message(j, 6, p, n), 0);
	CHECK_EQ_INT(journal_message(j, 6, p, n), 0);
	n = payload(p, sizeof(p), 3);
	CHECK_EQ_INT(journal_message(j, 3, p, n), 0); /* older than the last written */
	n = payload(p, sizeof(p), 7);
	CHECK_EQ_INT(journal_message(j, 7, p, n - 2), 0); /* only len bytes */

	/* flushed line by line: visible before close */
	CHECK_EQ_INT(read_lines(jpath, &l), 3);
	payload(p, sizeof(p), 5);
	CHECK_EQ_STR(l.line[0], p);
	payload(p, sizeof(p), 6);
	CHECK_EQ_STR(l.line[1], p);
	CHECK_EQ_STR(l.line[2], "{\"v\":1,\"seq\":7,\"ts\":1764320000007,\"records\":[");
	journal_close(j);

	/* a new journal on the same file knows what it already holds */
	j = journal_open(jpath, sp);
	CHECK(j != NULL);
	if (j) {
		n = payload(p, sizeof(p), 6);
		CHECK_EQ_INT(journal_message(j, 6, p, n), 0);
		CHECK_EQ_INT(append_std(sp), 0); /* 8 */
		n = payload(p, sizeof(p), 8);
		CHECK_EQ_INT(journal_message(j, 8, p, n), 0);
		journal_close(j);
	}
	CHECK_EQ_INT(read_lines(jpath, &l), 4);
	payload(p, sizeof(p), 8);
	CHECK_EQ_STR(l.line[3], p);
	spool_close(sp);
	harness_remove_db(db);
	unlink(jpath);
}

/* The journal records the overflow policy's drops, in order, among the messages. */
struct drop_to_journal {
	struct journal *j;
	int n;
};

static void journal_drop(void *ctx, int64_t seq)
{
	struct drop_to_journal *dj = ctx;
	CHECK_EQ_INT(journal_dropped(dj->j, seq), 0);
	dj->n++;
}

static void test_journal_dropped(void)
{
	char db[600], jpath[600], buf[64];
	struct lines l;
	harness_tmp_file(db, sizeof(db), "test_spool", "db");
	harness_tmp_file(jpath, sizeof(jpath), "test_spool", "jsonl");
	struct spool *sp = spool_open(db, 100, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	struct journal *j = journal_open(jpath, sp);
	CHECK(j != NULL);
	if (j == NULL) {
		spool_close(sp);
		return;
	}
	CHECK_EQ_INT(journal_dropped(j, 7), 0);

	/* the agent's order: append (maybe dropping), then journal the new message */
	struct drop_to_journal dj = {j, 0};
	for (int i = 0; i < 3; i++) {
		int64_t seq = spool_next_seq(sp);
		size_t n = payload(buf, sizeof(buf), seq);
		CHECK(n < 50);
		memset(buf + n, ' ', 50 - n); /* 50 bytes each: the third drops the first */
		CHECK_EQ_INT(spool_append(sp, TS, buf, 50, journal_drop, &dj), 0);
		CHECK_EQ_INT(journal_message(j, seq, buf, n), 0);
	}
	CHECK_EQ_INT(dj.n, 1);
	journal_close(j);

	CHECK_EQ_INT(read_lines(jpath, &l), 5);
	CHECK(l.ends_with_newline);
	CHECK_EQ_STR(l.line[0], "{\"dropped\":7}");
	CHECK_EQ_STR(l.line[1], "{\"v\":1,\"seq\":1,\"ts\":1764320000001,\"records\":[]}");
	CHECK_EQ_STR(l.line[2], "{\"v\":1,\"seq\":2,\"ts\":1764320000002,\"records\":[]}");
	CHECK_EQ_STR(l.line[3], "{\"dropped\":1}");
	CHECK_EQ_STR(l.line[4], "{\"v\":1,\"seq\":3,\"ts\":1764320000003,\"records\":[]}");
	spool_close(sp);
	harness_remove_db(db);
	unlink(jpath);
}

static void test_journal_open_after_cut_line(void)
{
	/*
	 * A kill -9 between writing a message and its newline leaves the last
	 * line without '\n'. The next lines must still start on lines of their
	 * own, each one complete JSON object.
	 */
	char db[600], jpath[600], text[512], p1[128], p2[128], p3[128];
	struct lines l;
	harness_tmp_file(db, sizeof(db), "test_spool", "db");
	harness_tmp_file(jpath, sizeof(jpath), "test_spool", "jsonl");
	payload(p1, sizeof(p1), 1);
	payload(p2, sizeof(p2), 2);
	payload(p3, sizeof(p3), 3);
	snprintf(text, sizeof(text), "%s\n%s", p1, p2); /* no newline after 2 */
	write_text(jpath, text);
	struct spool *sp = spool_open(db, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(append_std(sp), 0);
	struct journal *j = journal_open(jpath, sp);
	CHECK(j != NULL);
	journal_close(j);
	CHECK_EQ_INT(read_lines(jpath, &l), 3);
	CHECK(l.ends_with_newline);
	CHECK_EQ_STR(l.line[0], p1);
	CHECK_EQ_STR(l.line[1], p2);
	CHECK_EQ_STR(l.line[2], p3);
	spool_close(sp);
	harness_remove_db(db);
	unlink(jpath);
}

/*
 * The spool file deleted and made again: the new spool learns its first seq
 * from the collector's ack, which may be below the journal's last seq (the
 * collector never got the lost spool's last messages). The old journal took
 * the new spool's messages for ones it held and skipped them. Now it notes
 * the new spool in a line of its own and writes every new message, also
 * after a restart, and also one the spool committed but a kill kept from
 * the journal.
 */
static void test_journal_new_spool_below_last_seq(void)
{
	char db[600], jpath[600], p[128];
	struct lines l;
	size_t n;
	harness_tmp_file(db, sizeof(db), "test_spool", "db");
	harness_tmp_file(jpath, sizeof(jpath), "test_spool", "jsonl");
	struct spool *sp = spool_open(db, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	struct journal *j = journal_open(jpath, sp);
	CHECK(j != NULL);
	for (int i = 1; j && i <= 5; i++) {
		CHECK_EQ_INT(append_std(sp), 0);
		n = payload(p, sizeof(p), i);
		CHECK_EQ_INT(journal_message(j, i, p, n), 0);
	}
	journal_close(j);
	spool_close(sp);
	harness_remove_db(db);

	/* a new spool: its seq is not known when the journal opens */
	sp = spool_open(db, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	j = journal_open(jpath, sp);
	CHECK(j != NULL);
	if (j == NULL) {
		spool_close(sp);
		return;
	}
	CHECK_EQ_INT(spool_set_next_seq(sp, 3), 0); /* the collector's ack was 2 */
	char text[2][128];
	for (int i = 0; i < 2; i++) {
		int64_t seq = spool_next_seq(sp);
		n = (size_t)snprintf(text[i], sizeof(text[i]),
				     "{\"v\":1,\"seq\":%lld,\"ts\":1,\"records\":[],\"new\":%d}",
				     (long long)seq, i);
		CHECK_EQ_INT(spool_append(sp, TS, text[i], n, NULL, NULL), 0);
		CHECK_EQ_INT(journal_message(j, seq, text[i], n), 0);
	}
	journal_close(j);
	CHECK_EQ_INT(read_lines(jpath, &l), 8);
	CHECK_EQ_STR(l.line[5], "{\"spool_reset\":{\"journal_seq\":5,\"spool_seq\":0}}");
	CHECK_EQ_STR(l.line[6], text[0]);
	CHECK_EQ_STR(l.line[7], text[1]);

	/* a restart: the journal knows it follows this spool now (no second reset line) */
	j = journal_open(jpath, sp);
	CHECK(j != NULL);
	journal_close(j);
	CHECK_EQ_INT(read_lines(jpath, &l), 8);

	/* a message committed by the spool but not journalled (a kill in between): caught up */
	n = payload(p, sizeof(p), 5);
	CHECK_EQ_INT(spool_append(sp, TS, p, n, NULL, NULL), 0);
	j = journal_open(jpath, sp);
	CHECK(j != NULL);
	journal_close(j);
	CHECK_EQ_INT(read_lines(jpath, &l), 9);
	CHECK_EQ_STR(l.line[8], p);
	spool_close(sp);
	harness_remove_db(db);
	unlink(jpath);
}

/*
 * A spool put back behind the journal (a backup restored): its messages up
 * to its next seq are the journal's already, the new ones after it are
 * written although the journal has their seqs from before the restore.
 */
static void test_journal_spool_rolled_back(void)
{
	char db[600], copy[600], jpath[600], p[128], msg[128];
	struct lines l;
	size_t n;
	harness_tmp_file(db, sizeof(db), "test_spool", "db");
	harness_tmp_file(copy, sizeof(copy), "test_spool", "db");
	harness_tmp_file(jpath, sizeof(jpath), "test_spool", "jsonl");
	struct spool *sp = spool_open(db, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_set_next_seq(sp, 1), 0);
	struct journal *j = journal_open(jpath, sp);
	CHECK(j != NULL);
	for (int i = 1; j && i <= 6; i++) {
		if (i == 3) { /* the backup: 1 and 2 held, next seq 3 */
			char sql[700];
			snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", copy);
			CHECK_EQ_INT(raw_sql(db, sql), SQLITE_OK);
		}
		CHECK_EQ_INT(append_std(sp), 0);
		n = payload(p, sizeof(p), i);
		CHECK_EQ_INT(journal_message(j, i, p, n), 0);
	}
	journal_close(j);
	spool_close(sp);

	sp = spool_open(copy, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK_EQ_INT(spool_next_seq(sp), 3);
	j = journal_open(jpath, sp);
	CHECK(j != NULL);
	if (j) {
		n = (size_t)snprintf(msg, sizeof(msg), "{\"v\":1,\"seq\":3,\"ts\":2,\"records\":[]}");
		CHECK_EQ_INT(spool_append(sp, TS, msg, n, NULL, NULL), 0);
		CHECK_EQ_INT(journal_message(j, 3, msg, n), 0);
		journal_close(j);
	}
	CHECK_EQ_INT(read_lines(jpath, &l), 8);
	CHECK_EQ_STR(l.line[6], "{\"spool_reset\":{\"journal_seq\":6,\"spool_seq\":2}}");
	CHECK_EQ_STR(l.line[7], msg);
	spool_close(sp);
	harness_remove_db(db);
	harness_remove_db(copy);
	unlink(jpath);
}

static void test_open_failures(void)
{
	char path[700];
	/* a directory that does not exist */
	snprintf(path, sizeof(path), "%s/test_spool_%ld_missing/x.db", harness_tmp_dir(),
		 (long)getpid());
	CHECK(spool_open(path, BIG, false) == NULL);

	char db[600];
	harness_tmp_file(db, sizeof(db), "test_spool", "db");
	struct spool *sp = spool_open(db, BIG, false);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	snprintf(path, sizeof(path), "%s/test_spool_%ld_missing/j.jsonl", harness_tmp_dir(),
		 (long)getpid());
	CHECK(journal_open(path, sp) == NULL);
	spool_close(sp);
	spool_close(NULL);
	journal_close(NULL);
	harness_remove_db(db);
}

int main(void)
{
	install_failing_alloc(); /* before anything initialises SQLite */
	sp_log_set_level(SP_LOG_ERROR); /* overflow WARN and open INFO lines are expected here */
	RUN(test_new_spool_knows_no_seq);
	RUN(test_one_user_at_a_time);
	RUN(test_set_next_seq_then_append);
	RUN(test_stats);
	RUN(test_each_after_order_and_limits);
	RUN(test_binary_payload_round_trip);
	RUN(test_ack);
	RUN(test_reopen_keeps_messages_and_seq);
	RUN(test_commands_remembered);
	RUN(test_ports_off_outlive_ids);
	RUN(test_ports_off_upgrade);
	RUN(test_cmd_add_is_one_transaction);
	RUN(test_port_on);
	RUN(test_port_on_upgrade);
	RUN(test_port_on_without_ports_off);
	RUN(test_port_on_is_one_transaction);
	RUN(test_ports_off_read_when_upgrade_fails);
	RUN(test_pending_kept);
	RUN(test_pending_leave_with_message);
	RUN(test_pending_bad_row);
	RUN(test_next_seq_survives_lost_meta);
	RUN(test_overflow_drops_oldest);
	RUN(test_failed_append_changes_nothing);
	RUN(test_failed_ack_queries_leave_true_counters);
	RUN(test_failed_append_queries_leave_true_counters);
	RUN(test_failed_open_queries);
	RUN(test_too_big);
	RUN(test_journal_catch_up);
	RUN(test_journal_message_idempotent);
	RUN(test_journal_dropped);
	RUN(test_journal_open_after_cut_line);
	RUN(test_journal_new_spool_below_last_seq);
	RUN(test_journal_spool_rolled_back);
	RUN(test_open_failures);
	HARNESS_EXIT();
}
