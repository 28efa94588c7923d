/*
 * test_alertlog.c - a batch's alert log lines are said only when it
 * commits, in the order added; a rollback forgets them; past the bound
 * they are counted and said as one line; a long line is cut, not lost.
 */
#include "harness.h"

#include "alertlog.h"

struct said {
	int n;
	char line[8][ALERTLOG_LINE_MAX];
};

static void on_say(void *ctx, const char *line)
{
	struct said *s = ctx;
	if (s->n < 8)
		snprintf(s->line[s->n], sizeof(s->line[0]), "%s", line);
	s->n++;
}

static void test_commit_and_abort(void)
{
	struct alertlog *l = alertlog_create(4096);
	struct said s = {0};
	CHECK(l != NULL);
	if (l == NULL)
		return;
	/* a batch that rolls back: nothing is said, and nothing of it later */
	alertlog_add(l, "alert %d opened: %s", 7, "lift.trapped");
	CHECK_EQ_INT(alertlog_abort(l), 1);
	CHECK_EQ_INT(alertlog_commit(l, on_say, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	/* a batch that commits: its lines, in order */
	alertlog_add(l, "alert %d opened: %s", 7, "lift.trapped");
	alertlog_add(l, "alert %d cleared", 5);
	CHECK_EQ_INT(s.n, 0); /* not before the commit */
	CHECK_EQ_INT(alertlog_commit(l, on_say, &s), 2);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_STR(s.line[0], "alert 7 opened: lift.trapped");
	CHECK_EQ_STR(s.line[1], "alert 5 cleared");
	/* said once */
	CHECK_EQ_INT(alertlog_commit(l, on_say, &s), 0);
	CHECK_EQ_INT(s.n, 2);
	alertlog_destroy(l);
}

static void test_bound(void)
{
	/* room for two lines of 10 characters and their NULs, not three */
	struct alertlog *l = alertlog_create(25);
	struct said s = {0};
	CHECK(l != NULL);
	if (l == NULL)
		return;
	for (int i = 0; i < 5; i++)
		alertlog_add(l, "alert %04d", i);
	CHECK_EQ_INT(alertlog_commit(l, on_say, &s), 5);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_STR(s.line[0], "alert 0000");
	CHECK_EQ_STR(s.line[1], "alert 0001");
	CHECK(strncmp(s.line[2], "3 more alert events", 19) == 0);
	/* the count starts again: a batch within the bound says no summary */
	memset(&s, 0, sizeof(s));
	alertlog_add(l, "alert %04d", 9);
	CHECK_EQ_INT(alertlog_commit(l, on_say, &s), 1);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_STR(s.line[0], "alert 0009");
	/* a rollback forgets the count of lines that did not fit too */
	for (int i = 0; i < 5; i++)
		alertlog_add(l, "alert %04d", i);
	CHECK_EQ_INT(alertlog_abort(l), 5);
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(alertlog_commit(l, on_say, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	alertlog_destroy(l);
}

static void test_long_line(void)
{
	struct alertlog *l = alertlog_create(8192);
	struct said s = {0};
	char detail[3000];
	CHECK(l != NULL);
	if (l == NULL)
		return;
	memset(detail, 'd', sizeof(detail) - 1);
	detail[sizeof(detail) - 1] = '\0';
	alertlog_add(l, "alert 1 opened: %s", detail);
	CHECK_EQ_INT(alertlog_commit(l, on_say, &s), 1);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_INT(strlen(s.line[0]), ALERTLOG_LINE_MAX - 1);
	CHECK(strncmp(s.line[0], "alert 1 opened: ddd", 19) == 0);
	alertlog_destroy(l);
}

int main(void)
{
	RUN(test_commit_and_abort);
	RUN(test_bound);
	RUN(test_long_line);
	HARNESS_EXIT();
}
