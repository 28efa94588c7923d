/*
 * buf.h - a growable byte buffer with a hard size limit.
 *
 * Used to build payloads and HTTP bodies without per-item allocation: a
 * buffer is reset and reused, so after warm-up it never allocates.
 * Appending past `limit` fails with SP_ETOOBIG and leaves the buffer as it
 * was before the call.
 */
#ifndef SP_BUF_H
#define SP_BUF_H

#include <stddef.h>
#include <stdint.h>

struct sp_buf {
	char *data;   /* always NUL-terminated when data != NULL */
	size_t len;
	size_t cap;
	size_t limit; /* maximum len; 0 means SIZE_MAX/2 */
};

#define SP_BUF_INIT(lim) {NULL, 0, 0, (lim)}

static inline void sp_buf_reset(struct sp_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* Ensures room for `extra` more bytes (plus the NUL). 0, SP_ENOMEM or SP_ETOOBIG. */
int sp_buf_reserve(struct sp_buf *b, size_t extra);
int sp_buf_append(struct sp_buf *b, const void *data, size_t n);
int sp_buf_puts(struct sp_buf *b, const char *s);
int sp_buf_putc_grow(struct sp_buf *b, char c);

/*
 * One byte. Inline because encoders call it for every comma, colon and brace:
 * with room left it is a store, not three calls (docs/performance.md item 25).
 */
static inline int sp_buf_putc(struct sp_buf *b, char c)
{
	if (b->cap - b->len < 2 || (b->limit && b->len >= b->limit))
		return sp_buf_putc_grow(b, c);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return 0;
}
int sp_buf_printf(struct sp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the storage; the buffer may be reused afterwards. */
void sp_buf_free(struct sp_buf *b);

/*
 * JSON output helpers for sitepulse's own typed data (the parsing side is
 * cJSON's, in codec_decode.c). Strings are escaped per RFC 8259; the caller has
 * already checked them to be valid UTF-8.
 */
int sp_buf_json_str(struct sp_buf *b, const char *s, size_t n);
int sp_buf_json_int(struct sp_buf *b, int64_t v);
/* Up to 6 decimals when that reads back as exactly v, else %.17g; NaN/Inf become null. */
int sp_buf_json_num(struct sp_buf *b, double v);

/*
 * The same, written at o without checks, for encoders that reserve room for
 * a whole field at once (codec_encode.c): each returns the end of what it
 * wrote, at most the bound below, and writes no NUL.
 */
#define SP_JSON_STR_MAX(n) ((n) * 6 + 2) /* every byte as \u00XX, and the quotes */
#define SP_JSON_INT_MAX 20               /* -9223372036854775808 */
#define SP_JSON_NUM_MAX 32               /* %.17g is at most 24 */
char *sp_json_write_str(char *o, const char *s, size_t n);
char *sp_json_write_int(char *o, int64_t v);
char *sp_json_write_num(char *o, double v);

/* Ends unchecked writes into reserved room at `end`: the new length, and the NUL. */
static inline void sp_buf_end_at(struct sp_buf *b, char *end)
{
	b->len = (size_t)(end - b->data);
	*end = '\0';
}

#endif
