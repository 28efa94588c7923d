/*
 * newest.c - the `limit` newest readings by (ts, order) (see newest.h).
 */
#include "newest.h"

#include "sitepulse/error.h"

#include <stdlib.h>
#include <string.h>

struct newest {
	size_t limit, count, cap;
	struct newest_item *heap;   /* min-heap: heap[0] is the oldest kept */
};

/* a is older than b */
static bool older(const struct newest_item *a, const struct newest_item *b)
{
	return a->ts != b->ts ? a->ts < b->ts : a->order < b->order;
}

static void swap(struct newest_item *a, struct newest_item *b)
{
	struct newest_item t = *a;
	*a = *b;
	*b = t;
}

static void sift_down(struct newest_item *h, size_t count, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < count && older(&h[l], &h[m]))
			m = l;
		if (r < count && older(&h[r], &h[m]))
			m = r;
		if (m == i)
			return;
		swap(&h[i], &h[m]);
		i = m;
	}
}

static void sift_up(struct newest_item *h, size_t i)
{
	while (i > 0 && older(&h[i], &h[(i - 1) / 2])) {
		swap(&h[i], &h[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
}

struct newest *newest_create(size_t limit)
{
	struct newest *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->limit = limit;
	/* grown on demand: a query with limit 10000 usually finds a few readings */
	return n;
}

void newest_destroy(struct newest *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->count; i++)
		free(n->heap[i].body);
	free(n->heap);
	free(n);
}

static char *copy(const char *body, size_t len)
{
	char *p = malloc(len + 1);
	if (p) {
		memcpy(p, body, len);
		p[len] = '\0';
	}
	return p;
}

bool newest_takes(const struct newest *n, int64_t ts, uint64_t order)
{
	struct newest_item it = {ts, order, NULL, 0};
	return n->limit > 0 && (n->count < n->limit || older(&n->heap[0], &it));
}

int newest_offer(struct newest *n, int64_t ts, uint64_t order, const char *body, size_t len)
{
	struct newest_item it = {ts, order, NULL, len};
	if (!newest_takes(n, ts, order))
		return 0;
	if (n->count == n->limit) {
		if ((it.body = copy(body, len)) == NULL)
			return SP_ENOMEM;
		free(n->heap[0].body);
		n->heap[0] = it;
		sift_down(n->heap, n->count, 0);
		return 0;
	}
	if (n->count == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 16;
		if (cap > n->limit)
			cap = n->limit;
		struct newest_item *h = realloc(n->heap, cap * sizeof(*h));
		if (h == NULL)
			return SP_ENOMEM;
		n->heap = h;
		n->cap = cap;
	}
	if ((it.body = copy(body, len)) == NULL)
		return SP_ENOMEM;
	n->heap[n->count] = it;
	sift_up(n->heap, n->count++);
	return 0;
}

bool newest_done_below(const struct newest *n, int64_t ts)
{
	if (n->limit == 0)
		return true;
	return n->count == n->limit && n->heap[0].ts > ts;
}

static int newer_first(const void *pa, const void *pb)
{
	const struct newest_item *a = pa, *b = pb;
	return older(a, b) ? 1 : older(b, a) ? -1 : 0;
}

size_t newest_sorted(struct newest *n, const struct newest_item **items)
{
	if (n->count > 1) /* heap is NULL when nothing was kept: no qsort(NULL, 0) */
		qsort(n->heap, n->count, sizeof(*n->heap), newer_first);
	*items = n->heap;
	return n->count;
}
