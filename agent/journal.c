/* journal.c - see journal.h. */
#include "journal.h"

#include "spool.h"

#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct journal {
	FILE *f;
	char *path;
	int64_t last_seq; /* highest seq written */
};

/*
 * The line written when the spool is not the one the journal followed (a
 * new spool, or one rolled back below the journal's last seq): the lines
 * after it follow the new spool, whose seqs may repeat earlier ones.
 * spool_seq is where the new spool stood: 0 = a new spool that does not
 * know its seq yet, else its next seq - 1 (its messages up to there are
 * the journal's already).
 */
#define RESET_HEAD "{\"spool_reset\":{\"journal_seq\":%lld,\"spool_seq\":%lld"
#define RESET_FMT  RESET_HEAD "}}"

/*
 * Finds the highest "seq" of the complete lines written so far (lines start
 * with {"v":1,"seq":N) since the last spool_reset line (which sets it to the
 * reset's spool_seq). A last line without its newline was torn by a kill;
 * *good_end receives the offset just after the last complete line, so the
 * caller can cut the torn tail off and write that message again in full.
 */
static int64_t scan_last_seq(FILE *f, long *good_end)
{
	char line[256];
	int64_t last = 0;
	*good_end = 0;
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		long long seq = 0, journal_seq = 0, spool_seq = 0;
		bool numbered = sscanf(line, "{\"v\":1,\"seq\":%lld", &seq) == 1;
		bool reset = sscanf(line, RESET_HEAD, &journal_seq, &spool_seq) == 2;
		bool complete = strchr(line, '\n') != NULL;
		/* the rest of a long line */
		while (!complete && fgets(line, sizeof(line), f))
			complete = strchr(line, '\n') != NULL;
		if (!complete)
			break;
		*good_end = ftell(f);
		if (reset)
			last = spool_seq;
		else if (numbered && seq > last)
			last = seq;
	}
	return last;
}

static int flush_line(struct journal *j);

/*
 * Whether the spool is the one the journal followed: the agent journals a
 * message only once the spool has committed it, and a spool never hands out
 * a seq twice, so the journal's last seq is below the spool's next seq. A
 * new spool (next seq not known yet: it learns it from the collector's ack)
 * or one whose next seq is at or below the journal's last (deleted and made
 * again, restored from a backup, or unsynced writes lost) numbers messages
 * the journal would take for ones it holds, and skip. Then a spool_reset
 * line is written and the journal starts over from where the spool stands.
 */
static int note_spool_reset(struct journal *j, struct spool *sp)
{
	int64_t next = spool_next_seq(sp);
	if (j->last_seq == 0 || (next > 0 && next > j->last_seq))
		return 0;
	int64_t from = next > 0 ? next - 1 : 0;
	SP_INFO("journal", "%s: the spool %s (the journal reached seq %lld): noting it in the "
			   "journal, and journalling this spool's messages from seq %lld on",
		j->path, next > 0 ? "is behind the journal (replaced or restored)" : "is new",
		(long long)j->last_seq, (long long)(from + 1));
	fprintf(j->f, RESET_FMT, (long long)j->last_seq, (long long)from);
	int rc = flush_line(j);
	if (rc == 0)
		j->last_seq = from;
	return rc;
}

struct catch_up_ctx {
	struct journal *j;
	int rc;
};

static int catch_up(void *ctx, int64_t seq, const char *payload, size_t len)
{
	struct catch_up_ctx *cu = ctx;
	cu->rc = journal_message(cu->j, seq, payload, len);
	return cu->rc;
}

struct journal *journal_open(const char *path, struct spool *sp)
{
	struct journal *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->path = strdup(path);
	j->f = fopen(path, "a+");
	if (j->path == NULL || j->f == NULL) {
		SP_ERROR("journal", "%s: cannot open: %s", path, strerror(errno));
		journal_close(j);
		return NULL;
	}
	long good_end;
	j->last_seq = scan_last_seq(j->f, &good_end);
	fseek(j->f, 0, SEEK_END);
	if (ftell(j->f) > good_end) {
		/* a line torn by a kill: cut it off; its message is written again below */
		if (fflush(j->f) != 0 || ftruncate(fileno(j->f), good_end) != 0) {
			SP_ERROR("journal", "%s: cannot cut a torn last line: %s", path, strerror(errno));
			journal_close(j);
			return NULL;
		}
		fseek(j->f, 0, SEEK_END);
	}
	if (note_spool_reset(j, sp) != 0) {
		journal_close(j);
		return NULL;
	}
	/* messages committed to the spool but not yet journalled (killed in between) */
	struct catch_up_ctx cu = {j, 0};
	if (spool_each_after(sp, j->last_seq, (size_t)-1 / 2, catch_up, &cu) < 0 || cu.rc) {
		journal_close(j);
		return NULL;
	}
	return j;
}

void journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->f)
		fclose(j->f);
	free(j->path);
	free(j);
}

static int flush_line(struct journal *j)
{
	if (fputc('\n', j->f) == EOF || fflush(j->f) != 0) {
		SP_ERROR("journal", "%s: write failed: %s", j->path, strerror(errno));
		return SP_EIO;
	}
	return 0;
}

int journal_message(struct journal *j, int64_t seq, const char *payload, size_t len)
{
	if (seq <= j->last_seq)
		return 0;
	if (fwrite(payload, 1, len, j->f) != len) {
		SP_ERROR("journal", "%s: write failed: %s", j->path, strerror(errno));
		return SP_EIO;
	}
	j->last_seq = seq;
	return flush_line(j);
}

int journal_dropped(struct journal *j, int64_t seq)
{
	fprintf(j->f, "{\"dropped\":%lld}", (long long)seq);
	return flush_line(j);
}
