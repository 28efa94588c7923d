/*
 * tz.c - IANA time zones from TZif files (RFC 8536), see sitepulse/tz.h.
 *
 * A TZif file is a header, a version 1 data block with 32-bit times and,
 * from version 2 on, a second header, a data block with 64-bit times and a
 * footer holding a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3") for the
 * instants after the last transition. We read the 64-bit block when there
 * is one and the 32-bit block otherwise, and keep only what offsets need:
 * the transition times, the type index of each, each type's UTC offset.
 *
 * The file is hostile input: its size is bounded (TZ_FILE_MAX), every count
 * is checked against the bytes that are really there before anything is
 * read, and every index, offset and ordering the lookup relies on is
 * validated, so a malformed file is refused rather than half-used.
 *
 * Offset at t: the type of the last transition at or before t; before the
 * first transition type 0 (RFC 8536 §3.2: zic writes the zone's original
 * type there); after the last transition the footer's rule, or, without a
 * footer, the last transition's type. The rule is evaluated here (rule_*)
 * in the forms POSIX and RFC 8536 §3.3 allow: names plain or <quoted>,
 * offsets [+-]hh[:mm[:ss]], rules Jn, n and Mm.w.d with /time of -167..167
 * hours. A DST name without a rule gets the US rule, as glibc does.
 *
 * Leap-second zones ("right/...") are refused: their transition times count
 * leap seconds, sitepulse's timestamps (POSIX time) do not.
 *
 * Calendar arithmetic is days_from_civil / civil_from_days (H. Hinnant's
 * algorithms), pure integer maths valid far beyond any year we meet.
 */
#include "sitepulse/tz.h"
#include "sitepulse/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DIR        "/usr/share/zoneinfo/"
#define TZ_NAME_MAX   255
#define TZ_FILE_MAX   (1024 * 1024) /* the largest real file is ~4 KB */
#define TZ_HEADER_LEN 44
#define TZ_FOOTER_MAX 256 /* the longest tzdata footer is ~40 bytes */
#define TZ_TYPES_MAX  256 /* a transition's type index is one byte */
/* RFC 8536 §3.2: utoff SHOULD be in -89999 ... 93599 (-25 h ... +26 h) */
#define TZ_UTOFF_MIN (-89999)
#define TZ_UTOFF_MAX 93599

/* A date of a POSIX TZ rule, and the local time of day of the change. */
struct rule_date {
	enum { DATE_JULIAN1, DATE_JULIAN0, DATE_MONTH } kind; /* Jn, n, Mm.w.d */
	int n; /* Jn: 1-365 (Feb 29 never counted); n: 0-365 */
	int month, week, wday;
	int32_t secs; /* time of day of the change, -167 h ... 167 h */
};

struct rule {
	int32_t std_utoff; /* seconds east of UTC (POSIX writes them west: negated) */
	int32_t dst_utoff;
	bool has_dst;
	struct rule_date start, end;
};

struct sp_tz {
	char *name;
	size_t ntrans;
	int64_t *trans; /* strictly ascending, seconds since the epoch */
	uint8_t *trans_type;
	size_t ntypes;
	int32_t *utoff; /* per type */
	bool has_rule;
	struct rule rule;
};

/* ---------------------------------------------------------------- calendar */

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

static bool is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int month_days(int64_t y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return days[m - 1] + (m == 2 && is_leap(y));
}

/* Days since 1970-01-01 of y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;                                  /* 0-399 */
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* 0-365 */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* 0-146096 */
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* ---------------------------------------------------------------- POSIX TZ rule */

static bool is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A zone abbreviation: 3+ letters, or <3+ of [A-Za-z0-9+-]>. Returns its end or NULL. */
static const char *rule_name(const char *s)
{
	const char *p = s;
	if (*p == '<') {
		for (p++; is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-'; p++)
			;
		return *p == '>' && p - s - 1 >= 3 ? p + 1 : NULL;
	}
	while (is_alpha(*p))
		p++;
	return p - s >= 3 ? p : NULL;
}

/* Up to `maxdig` digits, at most `max`. Returns the end or NULL. */
static const char *rule_num(const char *s, int maxdig, int max, int *out)
{
	int v = 0, n = 0;
	while (is_digit(*s) && n < maxdig) {
		v = v * 10 + (*s++ - '0');
		n++;
	}
	if (n == 0 || v > max)
		return NULL;
	*out = v;
	return s;
}

/* [+-]hh[:mm[:ss]] with hh <= max_h, as seconds (sign applied). Returns the end or NULL. */
static const char *rule_hms(const char *s, int max_h, int32_t *out)
{
	int sign = 1, h = 0, m = 0, sec = 0;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	s = rule_num(s, 3, max_h, &h);
	if (s && *s == ':') {
		s = rule_num(s + 1, 2, 59, &m);
		if (s && *s == ':')
			s = rule_num(s + 1, 2, 59, &sec);
	}
	if (s)
		*out = sign * (h * 3600 + m * 60 + sec);
	return s;
}

/* Jn | n | Mm.w.d, then [/time] (default 02:00). Returns the end or NULL. */
static const char *rule_date(const char *s, struct rule_date *d)
{
	d->secs = 2 * 3600;
	if (*s == 'J') {
		d->kind = DATE_JULIAN1;
		s = rule_num(s + 1, 3, 365, &d->n);
		if (s && d->n < 1)
			return NULL;
	} else if (*s == 'M') {
		d->kind = DATE_MONTH;
		s = rule_num(s + 1, 2, 12, &d->month);
		if (s == NULL || d->month < 1 || *s != '.')
			return NULL;
		s = rule_num(s + 1, 1, 5, &d->week);
		if (s == NULL || d->week < 1 || *s != '.')
			return NULL;
		s = rule_num(s + 1, 1, 6, &d->wday);
	} else {
		d->kind = DATE_JULIAN0;
		s = rule_num(s, 3, 365, &d->n);
	}
	if (s && *s == '/')
		s = rule_hms(s + 1, 167, &d->secs); /* RFC 8536 §3.3.1: -167 ... 167 hours */
	return s;
}

/* Parses a whole TZ string; false if any of it is not understood. */
static bool rule_parse(const char *s, struct rule *r)
{
	int32_t west;

	memset(r, 0, sizeof(*r));
	if ((s = rule_name(s)) == NULL || (s = rule_hms(s, 24, &west)) == NULL)
		return false;
	r->std_utoff = -west;
	if (*s == '\0')
		return true;
	if ((s = rule_name(s)) == NULL)
		return false;
	r->has_dst = true;
	r->dst_utoff = r->std_utoff + 3600;
	if (*s != ',' && *s != '\0') {
		if ((s = rule_hms(s, 24, &west)) == NULL)
			return false;
		r->dst_utoff = -west;
	}
	if (*s == '\0') {
		/* POSIX leaves it to the implementation; glibc's choice, the US rule */
		s = ",M3.2.0,M11.1.0";
	}
	if (*s != ',' || (s = rule_date(s + 1, &r->start)) == NULL)
		return false;
	if (*s != ',' || (s = rule_date(s + 1, &r->end)) == NULL)
		return false;
	return *s == '\0';
}

/* Days since the epoch of the rule's date in year y. */
static int64_t rule_day(const struct rule_date *d, int64_t y)
{
	int64_t jan1 = days_from_civil(y, 1, 1);

	switch (d->kind) {
	case DATE_JULIAN1: /* 1-365, February 29 is never counted */
		return jan1 + d->n - 1 + (is_leap(y) && d->n >= 60);
	case DATE_JULIAN0:
		/* 0-365, February 29 counted */
		return jan1 + d->n;
	case DATE_MONTH:
	default: {
		int64_t first = days_from_civil(y, d->month, 1);
		int wd_first = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday (4) */
		int64_t day = 1 + (d->wday - wd_first + 7) % 7 + (int64_t)(d->week - 1) * 7;
		while (day > month_days(y, d->month))
			day -= 7; /* week 5 means the last such day of the month */
		return first + day - 1;
	}
	}
}

/* The UTC instant of a change, given in the local time in force before it. */
static int64_t rule_instant(const struct rule_date *d, int64_t y, int32_t utoff_before)
{
	return rule_day(d, y) * 86400 + d->secs - utoff_before;
}

struct rule_event {
	int64_t at;
	bool dst_begins;
};

/* Time order; at equal instants DST's end first, so "DST all year" rules stay DST. */
static bool event_before(const struct rule_event *a, const struct rule_event *b)
{
	return a->at < b->at || (a->at == b->at && !a->dst_begins && b->dst_begins);
}

static int32_t rule_offset(const struct rule *r, int64_t t)
{
	struct rule_event ev[8], tmp;
	int64_t y;
	int m, d, n = 0;
	bool dst = false;

	if (!r->has_dst)
		return r->std_utoff;
	civil_from_days(floor_div(t, 86400), &y, &m, &d);
	/*
	 * The changes of four years around t, in time order: with /time up to
	 * 167 h a change of year y-1 may fall in year y, and in the southern
	 * hemisphere DST spans the new year, so "which year's rule" is decided
	 * by sorting instants, not by t's year.
	 */
	for (int64_t yy = y - 2; yy <= y + 1; yy++) {
		ev[n].at = rule_instant(&r->start, yy, r->std_utoff);
		ev[n++].dst_begins = true;
		ev[n].at = rule_instant(&r->end, yy, r->dst_utoff);
		ev[n++].dst_begins = false;
	}
	for (int i = 1; i < n; i++) {
		for (int j = i; j > 0 && event_before(&ev[j], &ev[j - 1]); j--) {
			tmp = ev[j];
			ev[j] = ev[j - 1];
			ev[j - 1] = tmp;
		}
	}
	for (int i = 0; i < n && ev[i].at <= t; i++)
		dst = ev[i].dst_begins;
	return dst ? r->dst_utoff : r->std_utoff;
}

/* ---------------------------------------------------------------- TZif */

struct tzif_counts {
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool read_header(const uint8_t *p, size_t len, char *version, struct tzif_counts *c)
{
	if (len < TZ_HEADER_LEN || memcmp(p, "TZif", 4) != 0)
		return false;
	*version = (char)p[4];
	c->isutcnt = be32(p + 20);
	c->isstdcnt = be32(p + 24);
	c->leapcnt = be32(p + 28);
	c->timecnt = be32(p + 32);
	c->typecnt = be32(p + 36);
	c->charcnt = be32(p + 40);
	return true;
}

/* Bytes of a data block with tsize-byte times (64-bit sums of 32-bit counts: no overflow). */
static uint64_t block_size(const struct tzif_counts *c, unsigned tsize)
{
	return (uint64_t)c->timecnt * (tsize + 1) + (uint64_t)c->typecnt * 6 + c->charcnt +
	       (uint64_t)c->leapcnt * (tsize + 4) + c->isstdcnt + c->isutcnt;
}

/* Reads the data block at p (its size already checked) into tz. NULL or the reason. */
static const char *read_block(struct sp_tz *tz, const uint8_t *p, const struct tzif_counts *c,
			      unsigned tsize)
{
	const uint8_t *times = p, *idx = p + (size_t)c->timecnt * tsize;
	const uint8_t *types = idx + c->timecnt;

	if (c->typecnt == 0 || c->typecnt > TZ_TYPES_MAX || c->charcnt == 0)
		return "bad type or abbreviation count";
	if ((c->isutcnt != 0 && c->isutcnt != c->typecnt) ||
	    (c->isstdcnt != 0 && c->isstdcnt != c->typecnt))
		return "bad indicator count";
	if (c->leapcnt != 0)
		return "leap-second zone (a right/ zone): not supported";
	tz->ntypes = c->typecnt;
	tz->utoff = calloc(tz->ntypes, sizeof(*tz->utoff));
	if (c->timecnt) {
		tz->trans = calloc(c->timecnt, sizeof(*tz->trans));
		tz->trans_type = calloc(c->timecnt, 1);
	}
	if (tz->utoff == NULL || (c->timecnt && (tz->trans == NULL || tz->trans_type == NULL)))
		return "out of memory";
	for (size_t i = 0; i < c->typecnt; i++) {
		const uint8_t *t = types + i * 6;
		int32_t off = (int32_t)be32(t);
		if (off < TZ_UTOFF_MIN || off > TZ_UTOFF_MAX || t[4] > 1 || t[5] >= c->charcnt)
			return "bad local time type";
		tz->utoff[i] = off;
	}
	for (size_t i = 0; i < c->timecnt; i++) {
		int64_t at = tsize == 8 ? be64(times + i * 8) : (int32_t)be32(times + i * 4);
		if (i > 0 && at <= tz->trans[i - 1])
			return "transition times not ascending";
		if (idx[i] >= c->typecnt)
			return "transition type out of range";
		tz->trans[i] = at;
		tz->trans_type[i] = idx[i];
	}
	tz->ntrans = c->timecnt;
	return NULL;
}

/* Version 2+: "\nTZ string\n" after the 64-bit block; an empty string means no rule. */
static const char *read_footer(struct sp_tz *tz, const uint8_t *p, size_t len)
{
	char text[TZ_FOOTER_MAX + 1];
	const uint8_t *nl;

	if (len == 0 || p[0] != '\n')
		return "missing footer";
	nl = memchr(p + 1, '\n', len - 1 < TZ_FOOTER_MAX + 1 ? len - 1 : TZ_FOOTER_MAX + 1);
	if (nl == NULL)
		return "footer unterminated or too long";
	size_t n = (size_t)(nl - (p + 1));
	if (n == 0)
		return NULL;
	memcpy(text, p + 1, n);
	text[n] = '\0';
	if (memchr(text, '\0', n) != NULL || !rule_parse(text, &tz->rule))
		return "footer TZ string not understood";
	tz->has_rule = true;
	return NULL;
}

static const char *parse(struct sp_tz *tz, const uint8_t *p, size_t len)
{
	struct tzif_counts c;
	char version;
	uint64_t size;

	if (!read_header(p, len, &version, &c))
		return "not a TZif file";
	size = block_size(&c, 4);
	if (size > len - TZ_HEADER_LEN)
		return "truncated (version 1 data)";
	if (version == '\0')
		return read_block(tz, p + TZ_HEADER_LEN, &c, 4);
	/*
	 * '2', '3', '4' and, presumably compatible, any later version: the
	 * 64-bit block and footer follow. The version 1 block is skipped unread
	 * (RFC 8536 lets writers leave it minimal).
	 */
	if (version < '2')
		return "unknown TZif version";
	p += TZ_HEADER_LEN + size;
	len -= TZ_HEADER_LEN + (size_t)size;
	if (!read_header(p, len, &version, &c))
		return "truncated (second header)";
	size = block_size(&c, 8);
	if (size > len - TZ_HEADER_LEN)
		return "truncated (version 2 data)";
	const char *why = read_block(tz, p + TZ_HEADER_LEN, &c, 8);
	if (why)
		return why;
	return read_footer(tz, p + TZ_HEADER_LEN + size, len - TZ_HEADER_LEN - (size_t)size);
}

static struct sp_tz *parse_named(const void *data, size_t len, const char *name, const char **why)
{
	struct sp_tz *tz = calloc(1, sizeof(*tz));

	*why = "out of memory";
	if (tz == NULL || (tz->name = strdup(name ? name : "")) == NULL)
		goto fail;
	*why = parse(tz, data, len);
	if (*why)
		goto fail;
	return tz;
fail:
	sp_tz_free(tz);
	return NULL;
}

struct sp_tz *sp_tz_parse(const void *data, size_t len, const char *name)
{
	const char *why;
	if (data == NULL)
		return NULL;
	return parse_named(data, len, name, &why);
}

/* Reads a whole regular file of at most TZ_FILE_MAX bytes. NULL and the reason on failure. */
static uint8_t *read_file(const char *path, size_t *len, const char **why, int *err)
{
	uint8_t *data = NULL;
	struct stat st;
	size_t got = 0;
	int fd;

	*err = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*err = errno;
		*why = "cannot open";
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		*err = errno;
		*why = "cannot stat";
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		goto fail;
	}
	if (st.st_size > TZ_FILE_MAX) {
		*why = "larger than 1 MB";
		goto fail;
	}
	/* one byte more than allowed: a file that grew after fstat is noticed */
	data = malloc(TZ_FILE_MAX + 1);
	if (data == NULL) {
		*why = "out of memory";
		goto fail;
	}
	for (;;) {
		ssize_t r = read(fd, data + got, TZ_FILE_MAX + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*err = errno;
			*why = "read failed";
			goto fail;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > TZ_FILE_MAX) {
			*why = "larger than 1 MB";
			goto fail;
		}
	}
	close(fd);
	*len = got;
	return data;
fail:
	free(data);
	close(fd);
	return NULL;
}

struct sp_tz *sp_tz_load_file(const char *path, const char *name)
{
	const char *why = NULL;
	struct sp_tz *tz = NULL;
	uint8_t *data;
	size_t len = 0;
	int err;

	data = read_file(path, &len, &why, &err);
	if (data)
		tz = parse_named(data, len, name, &why);
	free(data);
	if (tz == NULL)
		SP_ERROR("tz", "time zone %.64s (%.300s): %s%s%s", name ? name : "?", path, why,
			 err ? ": " : "", err ? strerror(err) : "");
	return tz;
}

/* Relative, no "..", only [A-Za-z0-9/_+-], at most TZ_NAME_MAX bytes. */
static bool name_ok(const char *name)
{
	size_t n = strnlen(name, TZ_NAME_MAX + 1);

	if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || strstr(name, "..") != NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!is_alpha(c) && !is_digit(c) && c != '/' && c != '_' && c != '+' && c != '-')
			return false;
	}
	return true;
}

struct sp_tz *sp_tz_load(const char *name)
{
	char path[sizeof(TZ_DIR) + TZ_NAME_MAX];

	if (name == NULL || !name_ok(name)) {
		SP_ERROR("tz",
			 "time zone name %.64s refused: expected a zoneinfo name like "
			 "Asia/Shanghai ([A-Za-z0-9/_+-], relative, no \"..\")",
			 name ? name : "(null)");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s%s", TZ_DIR, name);
	return sp_tz_load_file(path, name);
}

void sp_tz_free(struct sp_tz *tz)
{
	if (tz == NULL)
		return;
	free(tz->name);
	free(tz->trans);
	free(tz->trans_type);
	free(tz->utoff);
	free(tz);
}

const char *sp_tz_name(const struct sp_tz *tz)
{
	return tz ? tz->name : "UTC";
}

int32_t sp_tz_offset(const struct sp_tz *tz, int64_t t_ms)
{
	int64_t t = floor_div(t_ms, 1000);
	size_t lo = 0, hi;

	if (tz == NULL)
		return 0;
	if (tz->ntrans == 0 || t < tz->trans[0]) {
		if (tz->ntrans == 0 && tz->has_rule)
			return rule_offset(&tz->rule, t);
		return tz->utoff[0];
	}
	if (t > tz->trans[tz->ntrans - 1] && tz->has_rule)
		return rule_offset(&tz->rule, t);
	/* the last transition at or before t: trans[lo] <= t < trans[hi] */
	hi = tz->ntrans;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tz->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return tz->utoff[tz->trans_type[lo]];
}

char *sp_tz_format(const struct sp_tz *tz, int64_t t_ms, char *out, size_t cap)
{
	int64_t t = floor_div(t_ms, 1000);
	int32_t off = sp_tz_offset(tz, t_ms);
	int64_t y, secs;
	int m, d;
	char zone[8];

	if (cap == 0)
		return out;
	off = off / 60 * 60; /* whole minutes, see tz.h */
	t += off;
	civil_from_days(floor_div(t, 86400), &y, &m, &d);
	secs = t - floor_div(t, 86400) * 86400;
	if (tz == NULL) {
		snprintf(zone, sizeof(zone), "Z");
	} else {
		int32_t a = off < 0 ? -off : off;
		snprintf(zone, sizeof(zone), "%c%02d:%02d", off < 0 ? '-' : '+',
			 (int)(a / 3600 % 100), (int)(a / 60 % 60));
	}
	snprintf(out, cap, "%04lld-%02d-%02dT%02d:%02d:%02d%s", (long long)y, m, d,
		 (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60), zone);
	return out;
}
