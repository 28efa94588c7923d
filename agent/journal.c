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
 * Finds the highest "seq" of the complete lines written so far (lines start
 * with {"v":1,"seq":N). A last line without its newline was torn by a kill;
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
		long long seq = 0;
		bool numbered = sscanf(line, "{\"v\":1,\"seq\":%lld", &seq) == 1;
		bool complete = strchr(line, '\n') != NULL;
		/* the rest of a long line */
		while (!complete && fgets(line, sizeof(line), f))
			complete = strchr(line, '\n') != NULL;
		if (!complete)
			break;
		*good_end = ftell(f);
		if (numbered && seq > last)
			last = seq;
	}
	return last;
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
