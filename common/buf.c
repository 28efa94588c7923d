/* buf.c - see buf.h. */
#include "sitepulse/buf.h"
#include "sitepulse/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t buf_limit(const struct sp_buf *b)
{
	return b->limit ? b->limit : SIZE_MAX / 2;
}

int sp_buf_reserve(struct sp_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > buf_limit(b) - b->len)
		return SP_ETOOBIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return SP_ENOMEM;
	if (b->data == NULL)
		p[0] = '\0';
	b->data = p;
	b->cap = cap;
	return 0;
}

int sp_buf_append(struct sp_buf *b, const void *data, size_t n)
{
	int rc = sp_buf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int sp_buf_puts(struct sp_buf *b, const char *s)
{
	return sp_buf_append(b, s, strlen(s));
}

int sp_buf_putc_grow(struct sp_buf *b, char c)
{
	return sp_buf_append(b, &c, 1);
}

int sp_buf_printf(struct sp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return SP_EINVAL;
	rc = sp_buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void sp_buf_free(struct sp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/*
 * What a byte becomes inside a JSON string: 0 = itself, a letter = backslash
 * and that letter, 'u' = \u00XX. Most telemetry strings (ids, vocabulary
 * words) need nothing, so runs of plain bytes are copied at once.
 */
static const char json_escape[256] = {
	['\0'] = 'u', [1] = 'u', [2] = 'u', [3] = 'u', [4] = 'u', [5] = 'u', [6] = 'u', [7] = 'u',
	['\b'] = 'u', ['\t'] = 't', ['\n'] = 'n', [11] = 'u', ['\f'] = 'u', ['\r'] = 'r',
	[14] = 'u', [15] = 'u', [16] = 'u', [17] = 'u', [18] = 'u', [19] = 'u', [20] = 'u',
	[21] = 'u', [22] = 'u', [23] = 'u', [24] = 'u', [25] = 'u', [26] = 'u', [27] = 'u',
	[28] = 'u', [29] = 'u', [30] = 'u', [31] = 'u', ['"'] = '"', ['\\'] = '\\', [0x7f] = 'u',
};

char *sp_json_write_str(char *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	*o++ = '"';
	size_t i = 0;
	while (i < n) {
		size_t run = i;
		while (run < n && json_escape[(unsigned char)s[run]] == 0)
			run++;
		memcpy(o, s + i, run - i);
		o += run - i;
		if (run == n)
			break;
		unsigned char c = (unsigned char)s[run];
		char e = json_escape[c];
		*o++ = '\\';
		*o++ = e;
		if (e == 'u') {
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
		i = run + 1;
	}
	*o++ = '"';
	return o;
}

char *sp_json_write_int(char *o, int64_t v)
{
	char tmp[24];
	char *p = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	size_t n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(o, p, n);
	return o + n;
}

char *sp_json_write_num(char *o, double v)
{
	static const double scale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
	static const uint64_t iscale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

	if (!isfinite(v)) {
		memcpy(o, "null", 4); /* JSON has no NaN/Inf */
		return o + 4;
	}
	/*
	 * Telemetry values carry a few decimals; printing them as fixed-point
	 * integers is several times cheaper than printf("%g") and gives the
	 * same text the agent sent (e.g. 221.4, not 221.40000000000001).
	 */
	for (int k = 0; k < 7; k++) {
		double x = v * scale[k];
		if (fabs(x) >= 9e15)
			break;
		double r = nearbyint(x);
		if (r / scale[k] != v)
			continue;
		int64_t i = (int64_t)r;
		if (k == 0)
			return sp_json_write_int(o, i);
		uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
		uint64_t frac = u % iscale[k];
		char tmp[48];
		char *p = tmp + sizeof(tmp);
		int digits = k;
		/* the fraction without its trailing zeros (2.50 -> 2.5) */
		while (digits > 0 && frac % 10 == 0) {
			frac /= 10;
			digits--;
		}
		for (int d = 0; d < digits; d++) {
			*--p = (char)('0' + frac % 10);
			frac /= 10;
		}
		if (digits > 0)
			*--p = '.';
		uint64_t whole = u / iscale[k];
		do {
			*--p = (char)('0' + whole % 10);
			whole /= 10;
		} while (whole);
		if (i < 0)
			*--p = '-';
		size_t n = (size_t)(tmp + sizeof(tmp) - p);
		memcpy(o, p, n);
		return o + n;
	}
	char tmp[40];
	int n = snprintf(tmp, sizeof(tmp), "%.17g", v);
	if (n < 0 || n > SP_JSON_NUM_MAX) {
		/* cannot happen (%.17g of a finite double is at most 24 bytes); stay valid JSON */
		memcpy(o, "null", 4);
		return o + 4;
	}
	memcpy(o, tmp, (size_t)n);
	return o + n;
}

int sp_buf_json_str(struct sp_buf *b, const char *s, size_t n)
{
	if (n > SIZE_MAX / 8)
		return SP_ETOOBIG;
	int rc = sp_buf_reserve(b, SP_JSON_STR_MAX(n));
	if (rc == 0)
		sp_buf_end_at(b, sp_json_write_str(b->data + b->len, s, n));
	return rc;
}

int sp_buf_json_int(struct sp_buf *b, int64_t v)
{
	int rc = sp_buf_reserve(b, SP_JSON_INT_MAX);
	if (rc == 0)
		sp_buf_end_at(b, sp_json_write_int(b->data + b->len, v));
	return rc;
}

int sp_buf_json_num(struct sp_buf *b, double v)
{
	int rc = sp_buf_reserve(b, SP_JSON_NUM_MAX);
	if (rc == 0)
		sp_buf_end_at(b, sp_json_write_num(b->data + b->len, v));
	return rc;
}
