/* holdlog.c - see holdlog.h. */
#include "holdlog.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct op {
	int64_t device_id;
	int64_t since;          /* begin */
	char *code;             /* NULL for "" (every rule but the device faults) */
	uint32_t order;         /* arrival: the last event of a condition wins */
	int32_t port;
	int16_t rule;
	bool begin;
};

struct holdlog {
	struct op *ops;
	size_t n, cap;
};

struct holdlog *holdlog_create(void)
{
	return calloc(1, sizeof(struct holdlog));
}

void holdlog_clear(struct holdlog *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->ops[i].code);
	h->n = 0;
}

void holdlog_destroy(struct holdlog *h)
{
	if (h == NULL)
		return;
	holdlog_clear(h);
	free(h->ops);
	free(h);
}

size_t holdlog_count(const struct holdlog *h)
{
	return h->n;
}

static int add(struct holdlog *h, int64_t device_id, int rule, int32_t port, const char *code,
	       bool begin, int64_t since)
{
	struct op *ops = sp_grow(h->ops, &h->cap, h->n + 1, sizeof(*ops), 256);
	if (ops == NULL)
		return SP_ENOMEM;
	h->ops = ops;
	struct op *o = &ops[h->n];
	o->code = NULL;
	if (code && *code && (o->code = strdup(code)) == NULL)
		return SP_ENOMEM;
	o->device_id = device_id;
	o->since = since;
	o->order = (uint32_t)h->n;
	o->port = port;
	o->rule = (int16_t)rule;
	o->begin = begin;
	h->n++;
	return 0;
}

int holdlog_begin(struct holdlog *h, int64_t device_id, int rule, int32_t port, const char *code,
		  int64_t since)
{
	return add(h, device_id, rule, port, code, true, since);
}

int holdlog_move(struct holdlog *h, int64_t device_id, int rule, int32_t port, const char *code,
		 int64_t since)
{
	int rc = add(h, device_id, rule, port, code, false, 0);
	return rc ? rc : add(h, device_id, rule, port, code, true, since);
}

int holdlog_end(struct holdlog *h, int64_t device_id, int rule, int32_t port, const char *code)
{
	return add(h, device_id, rule, port, code, false, 0);
}

static int same_key(const struct op *a, const struct op *b)
{
	return a->device_id == b->device_id && a->rule == b->rule && a->port == b->port &&
	       strcmp(a->code ? a->code : "", b->code ? b->code : "") == 0;
}

static int by_key_then_order(const void *pa, const void *pb)
{
	const struct op *a = pa, *b = pb;
	if (a->device_id != b->device_id)
		return a->device_id < b->device_id ? -1 : 1;
	if (a->rule != b->rule)
		return a->rule < b->rule ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	int c = strcmp(a->code ? a->code : "", b->code ? b->code : "");
	if (c != 0)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

int holdlog_flush(struct holdlog *h, holdlog_put_fn put, holdlog_del_fn del, void *ctx)
{
	int rc = 0;
	if (h->n > 1)
		qsort(h->ops, h->n, sizeof(*h->ops), by_key_then_order);
	for (size_t i = 0; i < h->n && rc == 0;) {
		size_t j = i;
		while (j + 1 < h->n && same_key(&h->ops[i], &h->ops[j + 1]))
			j++;
		const struct op *first = &h->ops[i], *last = &h->ops[j];
		const char *code = last->code ? last->code : "";
		/*
		 * A condition's first event of the batch says what the store held
		 * before it: a begin means no hold (the rules begin only what they
		 * do not hold), an end (a hold ended or moved) means one was
		 * written earlier.
		 */
		if (last->begin)
			rc = put(ctx, last->device_id, last->rule, last->port, code, last->since);
		else if (!first->begin)
			rc = del(ctx, last->device_id, last->rule, last->port, code);
		i = j + 1;
	}
	holdlog_clear(h);
	return rc;
}
