/* rangeset.c - see rangeset.h. Ranges are kept sorted; lookups use binary search. */
#include "rangeset.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"

#include <stdlib.h>
#include <string.h>

void rangeset_init(struct rangeset *s, size_t max_ranges)
{
	s->r = NULL;
	s->n = s->cap = 0;
	s->max = max_ranges;
}

void rangeset_free(struct rangeset *s)
{
	free(s->r);
	s->r = NULL;
	s->n = s->cap = 0;
}

void rangeset_clear(struct rangeset *s)
{
	s->n = 0;
}

/* Index of the first range with hi >= x (n if none). */
static size_t lower_bound(const struct rangeset *s, int64_t x)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->r[mid].hi < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool rangeset_contains(const struct rangeset *s, int64_t x)
{
	size_t i = lower_bound(s, x);
	return i < s->n && s->r[i].lo <= x;
}

static int grow(struct rangeset *s)
{
	struct range *r = sp_grow(s->r, &s->cap, s->n + 1, sizeof(*r), 4);
	if (r == NULL)
		return SP_ENOMEM;
	s->r = r;
	return 0;
}

int rangeset_add(struct rangeset *s, int64_t lo, int64_t hi)
{
	/* first range that could touch [lo, hi]: hi_i >= lo - 1 */
	size_t i = lower_bound(s, lo > INT64_MIN ? lo - 1 : lo);
	size_t j = i;
	while (j < s->n && s->r[j].lo <= (hi < INT64_MAX ? hi + 1 : hi))
		j++;
	if (i == j) {
		/* no overlap: insert at i */
		if (s->n >= s->max)
			return SP_EFULL;
		if (grow(s))
			return SP_ENOMEM;
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
		s->r[i].lo = lo;
		s->r[i].hi = hi;
		s->n++;
		return 0;
	}
	/* merge ranges i..j-1 with [lo, hi] into slot i */
	if (s->r[i].lo < lo)
		lo = s->r[i].lo;
	if (s->r[j - 1].hi > hi)
		hi = s->r[j - 1].hi;
	s->r[i].lo = lo;
	s->r[i].hi = hi;
	memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(*s->r));
	s->n -= j - i - 1;
	return 0;
}

int rangeset_remove(struct rangeset *s, int64_t x)
{
	size_t i = lower_bound(s, x);
	if (i >= s->n || s->r[i].lo > x)
		return 0;
	struct range *r = &s->r[i];
	if (r->lo == x && r->hi == x) {
		memmove(&s->r[i], &s->r[i + 1], (s->n - i - 1) * sizeof(*s->r));
		s->n--;
	} else if (r->lo == x) {
		r->lo++;
	} else if (r->hi == x) {
		r->hi--;
	} else {
		if (s->n >= s->max)
			return SP_EFULL;
		if (grow(s))
			return SP_ENOMEM;
		r = &s->r[i];
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
		s->r[i].hi = x - 1;
		s->r[i + 1].lo = x + 1;
		s->n++;
	}
	return 0;
}

void rangeset_pop_first(struct rangeset *s)
{
	if (s->n == 0)
		return;
	memmove(&s->r[0], &s->r[1], (s->n - 1) * sizeof(*s->r));
	s->n--;
}

void rangeset_drop_below(struct rangeset *s, int64_t x)
{
	size_t i = 0;
	while (i < s->n && s->r[i].hi < x)
		i++;
	if (i) {
		memmove(&s->r[0], &s->r[i], (s->n - i) * sizeof(*s->r));
		s->n -= i;
	}
	if (s->n && s->r[0].lo < x)
		s->r[0].lo = x;
}

int rangeset_copy(struct rangeset *dst, const struct rangeset *src)
{
	dst->n = 0;
	dst->max = src->max;
	if (dst->cap < src->n) {
		struct range *r = realloc(dst->r, src->n * sizeof(*r));
		if (r == NULL)
			return SP_ENOMEM;
		dst->r = r;
		dst->cap = src->n;
	}
	if (src->n)
		memcpy(dst->r, src->r, src->n * sizeof(*src->r));
	dst->n = src->n;
	return 0;
}

int rangeset_format(const struct rangeset *s, struct sp_buf *out)
{
	int rc = 0;
	for (size_t i = 0; i < s->n && rc == 0; i++)
		rc = sp_buf_printf(out, "%s%lld-%lld", i ? "," : "", (long long)s->r[i].lo,
				   (long long)s->r[i].hi);
	return rc;
}

/* Reads an optionally negative decimal integer; NULL on error. */
static const char *read_int(const char *p, int64_t *out)
{
	bool neg = *p == '-';
	uint64_t v = 0;
	if (neg)
		p++;
	if (*p < '0' || *p > '9')
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (uint64_t)INT64_MAX / 10)
			return NULL;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > (uint64_t)INT64_MAX)
			return NULL;
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	return p;
}

int rangeset_parse(struct rangeset *s, const char *text)
{
	struct rangeset tmp;
	const char *p = text;
	rangeset_init(&tmp, s->max);
	while (p && *p) {
		int64_t lo, hi;
		if ((p = read_int(p, &lo)) == NULL || *p++ != '-' || (p = read_int(p, &hi)) == NULL ||
		    hi < lo || (*p != ',' && *p != '\0') || (*p == ',' && p[1] == '\0') ||
		    rangeset_add(&tmp, lo, hi)) {
			rangeset_free(&tmp);
			return SP_EINVAL;
		}
		if (*p == ',')
			p++;
	}
	/* all or nothing: the content is replaced only when the whole text parsed */
	rangeset_free(s);
	*s = tmp;
	return 0;
}
