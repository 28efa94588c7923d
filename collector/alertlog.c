/* alertlog.c - see alertlog.h. */
#include "alertlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct alertlog {
	size_t used, size;
	size_t added;      /* lines added since the last commit or abort */
	size_t dropped;    /* of them, lines that did not fit */
	char text[];       /* lines, each ended by its NUL */
};

struct alertlog *alertlog_create(size_t max_bytes)
{
	struct alertlog *l = calloc(1, sizeof(*l) + max_bytes);
	if (l != NULL)
		l->size = max_bytes;
	return l;
}

void alertlog_destroy(struct alertlog *l)
{
	free(l);
}

void alertlog_add(struct alertlog *l, const char *fmt, ...)
{
	char line[ALERTLOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l->added++;
	if (n < 0) {
		l->dropped++;
		return;
	}
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	if (l->size - l->used < len + 1) {
		l->dropped++;
		return;
	}
	memcpy(l->text + l->used, line, len);
	l->text[l->used + len] = '\0';
	l->used += len + 1;
}

static size_t forget(struct alertlog *l)
{
	size_t added = l->added;
	l->used = 0;
	l->added = 0;
	l->dropped = 0;
	return added;
}

size_t alertlog_commit(struct alertlog *l, alertlog_say_fn say, void *ctx)
{
	for (size_t at = 0; at < l->used; at += strlen(l->text + at) + 1)
		say(ctx, l->text + at);
	if (l->dropped > 0) {
		char line[160];
		snprintf(line, sizeof(line),
			 "%zu more alert events in this batch not logged (the batch's log bound); "
			 "the API and the metrics have them",
			 l->dropped);
		say(ctx, line);
	}
	return forget(l);
}

size_t alertlog_abort(struct alertlog *l)
{
	return forget(l);
}
