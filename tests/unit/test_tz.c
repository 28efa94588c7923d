/*
 * test_tz.c - time zones (common/tz.c): known offsets of real zones, the
 * footer rule past the file's last transition (both hemispheres, negative
 * DST, negative change times), a cross-check against glibc's localtime_r
 * over two centuries, formatting, refused names, and hostile files
 * (truncated at every length, corrupted counts and indexes, bytes flipped).
 */
#include "harness.h"
#include "sitepulse/tz.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>

/* ms since the epoch of a UTC civil time (timegm is fine in a test) */
static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {.tm_year = y - 1900,
			.tm_mon = mo - 1,
			.tm_mday = d,
			.tm_hour = h,
			.tm_min = mi,
			.tm_sec = s};
	return (int64_t)timegm(&tm) * 1000;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		data = malloc((size_t)n);
		if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
			free(data);
			data = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return data;
}

static void test_shanghai(void)
{
	struct sp_tz *tz = sp_tz_load("Asia/Shanghai");
	CHECK(tz != NULL);
	CHECK_EQ_STR(sp_tz_name(tz), "Asia/Shanghai");
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2026, 11, 28, 9, 33, 20)), 8 * 3600);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2040, 7, 1, 0, 0, 0)), 8 * 3600);
	/* China observed DST 1986-1991: 1990 from April 15 to September 16 */
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(1990, 7, 1, 12, 0, 0)), 9 * 3600);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(1990, 1, 1, 12, 0, 0)), 8 * 3600);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(1992, 7, 1, 12, 0, 0)), 8 * 3600);
	char out[SP_TZ_FMT_MAX];
	CHECK_EQ_STR(sp_tz_format(tz, utc_ms(2026, 11, 28, 9, 33, 20), out, sizeof(out)),
		     "2026-11-28T17:33:20+08:00");
	/* milliseconds are cut, not rounded; the local date moves with the offset */
	CHECK_EQ_STR(sp_tz_format(tz, utc_ms(2026, 12, 31, 16, 0, 0) - 1, out, sizeof(out)),
		     "2026-12-31T23:59:59+08:00");
	CHECK_EQ_STR(sp_tz_format(tz, utc_ms(2026, 12, 31, 16, 0, 0), out, sizeof(out)),
		     "2027-01-01T00:00:00+08:00");
	CHECK_EQ_STR(sp_tz_format(tz, utc_ms(1990, 7, 1, 12, 0, 0), out, sizeof(out)),
		     "1990-07-01T21:00:00+09:00");
	sp_tz_free(tz);
}

static void test_berlin(void)
{
	struct sp_tz *tz = sp_tz_load("Europe/Berlin");
	char out[SP_TZ_FMT_MAX];

	CHECK(tz != NULL);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2026, 1, 15, 12, 0, 0)), 3600);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2026, 7, 15, 12, 0, 0)), 7200);
	/* 2026: last Sunday of March 01:00 UTC, last Sunday of October 01:00 UTC */
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2026, 3, 29, 0, 59, 59)), 3600);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2026, 3, 29, 1, 0, 0)), 7200);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2026, 10, 25, 0, 59, 59)), 7200);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2026, 10, 25, 1, 0, 0)), 3600);
	/* 2040 lies past the file's transitions (2037): the footer's rule */
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2040, 7, 15, 12, 0, 0)), 7200);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2040, 1, 15, 12, 0, 0)), 3600);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2040, 3, 25, 0, 59, 59)), 3600);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2040, 3, 25, 1, 0, 0)), 7200);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2040, 10, 28, 0, 59, 59)), 7200);
	CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2040, 10, 28, 1, 0, 0)), 3600);
	CHECK_EQ_STR(sp_tz_format(tz, utc_ms(2040, 7, 15, 12, 0, 0), out, sizeof(out)),
		     "2040-07-15T14:00:00+02:00");
	sp_tz_free(tz);
}

static void test_new_york_sydney_utc(void)
{
	struct sp_tz *ny = sp_tz_load("America/New_York");
	struct sp_tz *syd = sp_tz_load("Australia/Sydney");
	struct sp_tz *utc = sp_tz_load("UTC");
	char out[SP_TZ_FMT_MAX];

	CHECK(ny != NULL && syd != NULL && utc != NULL);
	CHECK_EQ_INT(sp_tz_offset(ny, utc_ms(2026, 1, 15, 12, 0, 0)), -5 * 3600);
	CHECK_EQ_INT(sp_tz_offset(ny, utc_ms(2026, 7, 15, 12, 0, 0)), -4 * 3600);
	/* 2040: second Sunday of March (11th) 02:00 EST = 07:00 UTC; first Sunday of November (4th)
	 */
	CHECK_EQ_INT(sp_tz_offset(ny, utc_ms(2040, 3, 11, 6, 59, 59)), -5 * 3600);
	CHECK_EQ_INT(sp_tz_offset(ny, utc_ms(2040, 3, 11, 7, 0, 0)), -4 * 3600);
	CHECK_EQ_INT(sp_tz_offset(ny, utc_ms(2040, 11, 4, 5, 59, 59)), -4 * 3600);
	CHECK_EQ_INT(sp_tz_offset(ny, utc_ms(2040, 11, 4, 6, 0, 0)), -5 * 3600);
	CHECK_EQ_STR(sp_tz_format(ny, utc_ms(2026, 1, 15, 3, 4, 5), out, sizeof(out)),
		     "2026-01-14T22:04:05-05:00");
	/* southern hemisphere: DST spans the new year */
	CHECK_EQ_INT(sp_tz_offset(syd, utc_ms(2045, 1, 15, 0, 0, 0)), 11 * 3600);
	CHECK_EQ_INT(sp_tz_offset(syd, utc_ms(2045, 7, 15, 0, 0, 0)), 10 * 3600);
	CHECK_EQ_INT(sp_tz_offset(utc, utc_ms(2026, 7, 1, 0, 0, 0)), 0);
	CHECK_EQ_STR(sp_tz_format(utc, utc_ms(2026, 7, 1, 0, 0, 0), out, sizeof(out)),
		     "2026-07-01T00:00:00+00:00");
	CHECK_EQ_STR(sp_tz_name(NULL), "UTC");
	sp_tz_free(ny);
	sp_tz_free(syd);
	sp_tz_free(utc);
}

static void test_format_utc_and_edges(void)
{
	char out[SP_TZ_FMT_MAX];
	CHECK_EQ_STR(sp_tz_format(NULL, utc_ms(2026, 11, 28, 9, 33, 20) + 999, out, sizeof(out)),
		     "2026-11-28T09:33:20Z");
	CHECK_EQ_INT(sp_tz_offset(NULL, 0), 0);
	CHECK_EQ_STR(sp_tz_format(NULL, 0, out, sizeof(out)), "1970-01-01T00:00:00Z");
	/* before the epoch: rounded down, not toward zero */
	CHECK_EQ_STR(sp_tz_format(NULL, -1, out, sizeof(out)), "1969-12-31T23:59:59Z");
	CHECK_EQ_STR(sp_tz_format(NULL, utc_ms(2024, 2, 29, 23, 59, 59), out, sizeof(out)),
		     "2024-02-29T23:59:59Z");
	CHECK_EQ_STR(sp_tz_format(NULL, utc_ms(2000, 3, 1, 0, 0, 0), out, sizeof(out)),
		     "2000-03-01T00:00:00Z");
	/* short buffers are truncated and terminated */
	char small[8];
	CHECK_EQ_STR(sp_tz_format(NULL, 0, small, sizeof(small)), "1970-01");
	/* an offset with seconds (local mean time) is shown in whole minutes, consistently */
	struct sp_tz *tz = sp_tz_load("Asia/Shanghai");
	int64_t lmt = utc_ms(1890, 1, 1, 0, 0, 0);
	CHECK_EQ_INT(sp_tz_offset(tz, lmt), 8 * 3600 + 5 * 60 + 43);
	CHECK_EQ_STR(sp_tz_format(tz, lmt, out, sizeof(out)), "1890-01-01T08:05:00+08:05");
	sp_tz_free(tz);
}

/*
 * glibc's localtime_r with TZ set (single-threaded here) as the reference,
 * every ~9 days from 1901 to 2099 and around each glibc-visible change.
 */
static void cross_check(const char *zone)
{
	struct sp_tz *tz = sp_tz_load(zone);
	int bad = 0;
	CHECK(tz != NULL);
	if (tz == NULL)
		return;
	setenv("TZ", zone, 1);
	tzset();
	int64_t from = utc_ms(1902, 1, 1, 0, 0, 0) / 1000, to = utc_ms(2099, 12, 1, 0, 0, 0) / 1000;
	long prev_off = LONG_MIN;
	for (int64_t t = from; t < to; t += 9 * 86400 + 3677) {
		time_t tt = (time_t)t;
		struct tm tm;
		localtime_r(&tt, &tm);
		if (prev_off != LONG_MIN && tm.tm_gmtoff != prev_off) {
			/* a change in between: find it to the second and check both sides */
			int64_t lo = t - (9 * 86400 + 3677), hi = t;
			while (hi - lo > 1) {
				int64_t mid = lo + (hi - lo) / 2;
				time_t mt = (time_t)mid;
				struct tm mtm;
				localtime_r(&mt, &mtm);
				if (mtm.tm_gmtoff == prev_off)
					lo = mid;
				else
					hi = mid;
			}
			if (sp_tz_offset(tz, lo * 1000 + 999) != prev_off ||
			    sp_tz_offset(tz, hi * 1000) != tm.tm_gmtoff) {
				if (bad++ < 5)
					fprintf(stderr,
						"  %s: change at %lld: ours %d/%d, glibc %ld/%ld\n",
						zone, (long long)hi,
						sp_tz_offset(tz, lo * 1000 + 999),
						sp_tz_offset(tz, hi * 1000), prev_off,
						(long)tm.tm_gmtoff);
			}
		}
		prev_off = tm.tm_gmtoff;
		if (sp_tz_offset(tz, t * 1000) != tm.tm_gmtoff && bad++ < 5)
			fprintf(stderr, "  %s: at %lld: ours %d, glibc %ld\n", zone, (long long)t,
				sp_tz_offset(tz, t * 1000), (long)tm.tm_gmtoff);
	}
	CHECK_EQ_INT(bad, 0);
	sp_tz_free(tz);
	unsetenv("TZ");
	tzset();
}

static void test_against_glibc(void)
{
	static const char *const zones[] = {
	    "Asia/Shanghai",    "Europe/Berlin",     "America/New_York",  "Australia/Sydney",
	    "America/Nuuk",     "Europe/Dublin",     "Africa/Casablanca", "Pacific/Chatham",
	    "Asia/Kolkata",     "America/Sao_Paulo", "Antarctica/Troll",  "Australia/Lord_Howe",
	    "America/Santiago", "Asia/Tehran",       "Pacific/Apia",      "Etc/GMT+8",
	    "America/St_Johns", "Europe/London",
	};
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		cross_check(zones[i]);
}

static void test_bad_names(void)
{
	char longname[400];
	memset(longname, 'A', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	static const char *const bad[] = {
	    "",
	    "/etc/passwd",
	    "../etc/passwd",
	    "Asia/../../etc/passwd",
	    "Asia/Shang hai",
	    "Asia/Shanghai\n",
	    "Asia/Shanghai;rm",
	    "Asia\\Shanghai",
	    "..",
	    "Asia/.hidden",
	    "Nowhere/City",
	    "Asia",
	    "Asia/",
	    "zone.tab",
	    "tzdata.zi",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sp_tz *tz = sp_tz_load(bad[i]);
		CHECK(tz == NULL);
		sp_tz_free(tz);
	}
	CHECK(sp_tz_load(NULL) == NULL);
	CHECK(sp_tz_load(longname) == NULL);
	/* a file that is not TZif */
	CHECK(sp_tz_load_file("/etc/hostname", "hostname") == NULL);
	/* leap-second zones are refused */
	struct stat st;
	if (stat("/usr/share/zoneinfo/right/UTC", &st) == 0)
		CHECK(sp_tz_load("right/UTC") == NULL);
	sp_tz_free(NULL);
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* A small valid v2 file: one transition to a DST type, footer "<+07>-7". */
static size_t build_v2(unsigned char *buf, const char *footer)
{
	unsigned char *p = buf;
	/* v1 header and a minimal v1 block: one type, one abbreviation byte */
	memcpy(p, "TZif2", 5);
	memset(p + 5, 0, 15);
	put32(p + 20, 0);
	put32(p + 24, 0);
	put32(p + 28, 0);
	put32(p + 32, 0);
	put32(p + 36, 1);
	put32(p + 40, 1);
	p += 44;
	put32(p, 0);
	p[4] = 0;
	p[5] = 0;
	p[6] = 0;
	p += 7;
	/* v2 header: 2 transitions, 2 types, 8 abbreviation bytes */
	memcpy(p, "TZif2", 5);
	memset(p + 5, 0, 15);
	put32(p + 20, 0);
	put32(p + 24, 0);
	put32(p + 28, 0);
	put32(p + 32, 2);
	put32(p + 36, 2);
	put32(p + 40, 8);
	p += 44;
	put32(p, 0);
	put32(p + 4, 1000); /* t = 1000 */
	put32(p + 8, 0);
	put32(p + 12, 2000); /* t = 2000 */
	p += 16;
	p[0] = 1;
	p[1] = 0;
	p += 2;
	put32(p, 7 * 3600); /* type 0: +07 */
	p[4] = 0;
	p[5] = 0;
	put32(p + 6, 8 * 3600); /* type 1: +08 DST */
	p[10] = 1;
	p[11] = 4;
	p += 12;
	memcpy(p, "+07\0+08\0", 8);
	p += 8;
	size_t n = strlen(footer);
	*p++ = '\n';
	memcpy(p, footer, n);
	p += n;
	*p++ = '\n';
	return (size_t)(p - buf);
}

static void test_synthetic(void)
{
	unsigned char buf[512];
	size_t len = build_v2(buf, "<+07>-7");
	struct sp_tz *tz = sp_tz_parse(buf, len, "Test/Zone");
	CHECK(tz != NULL);
	if (tz) {
		CHECK_EQ_STR(sp_tz_name(tz), "Test/Zone");
		CHECK_EQ_INT(sp_tz_offset(tz, 999 * 1000), 7 * 3600); /* before: type 0 */
		CHECK_EQ_INT(sp_tz_offset(tz, 1000 * 1000), 8 * 3600);
		CHECK_EQ_INT(sp_tz_offset(tz, 2000 * 1000), 7 * 3600);
		CHECK_EQ_INT(sp_tz_offset(tz, 3000 * 1000), 7 * 3600); /* footer */
	}
	sp_tz_free(tz);

	/* footer rules in all their forms (Jn, n, quoted names, /time), and broken ones */
	static const struct {
		const char *footer;
		bool ok;
		int64_t at_ms;
		int32_t want;
	} cases[] = {
	    {"", true, 1767225600000, 7 * 3600}, /* no rule: the last transition's type */
	    {"EST5EDT,J60/2,J300/2", true, 1783296000000 /* 2026-07-06 */, -4 * 3600},
	    {"EST5EDT,J60/2,J300/2", true, 1767225600000 /* 2026-01-01 */, -5 * 3600},
	    {"EST5EDT,59,299", true, 1783296000000, -4 * 3600},
	    {"<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", true, 1783296000000, -2 * 3600},
	    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", true, 1783296000000, 10 * 3600 + 1800},
	    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", true, 1767225600000, 11 * 3600},
	    {"EST5EDT,0/0,J365/25", true, 1783296000000, -4 * 3600}, /* DST all year */
	    {"EST5EDT,0/0,J365/25", true, 1767225600000, -4 * 3600},
	    {"EST5EDT", true, 1783296000000, -4 * 3600}, /* no rule given: US rule */
	    {"CET-1CEST,M3.5.0,M10.5.0/3", true, 1783296000000, 2 * 3600},
	    {"XX-1", false, 0, 0},                         /* name too short */
	    {"CET-1CEST,M13.5.0,M10.5.0/3", false, 0, 0},  /* month 13 */
	    {"CET-1CEST,M3.6.0,M10.5.0/3", false, 0, 0},   /* week 6 */
	    {"CET-1CEST,M3.5.7,M10.5.0/3", false, 0, 0},   /* weekday 7 */
	    {"CET-1CEST,M3.5.0", false, 0, 0},             /* one date */
	    {"CET-1CEST,M3.5.0,M10.5.0/168", false, 0, 0}, /* beyond 167 h */
	    {"CET-25", false, 0, 0},
	    {"CET-1 ", false, 0, 0},
	    {"<CET-1", false, 0, 0},
	    {"CET", false, 0, 0}, /* no offset */
	    {"CET-1CEST,J0,J300", false, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = build_v2(buf, cases[i].footer);
		tz = sp_tz_parse(buf, len, "t");
		if (!cases[i].ok) {
			if (tz != NULL)
				fprintf(stderr, "  footer %s accepted\n", cases[i].footer);
			CHECK(tz == NULL);
		} else if (tz == NULL) {
			fprintf(stderr, "  footer %s refused\n", cases[i].footer);
			CHECK(tz != NULL);
		} else {
			int32_t got = sp_tz_offset(tz, cases[i].at_ms);
			if (got != cases[i].want)
				fprintf(stderr, "  footer %s: %d\n", cases[i].footer, got);
			CHECK_EQ_INT(got, cases[i].want);
		}
		sp_tz_free(tz);
	}
}

static void test_corrupt(void)
{
	unsigned char buf[512], bad[512];
	size_t len = build_v2(buf, "<+07>-7");
	struct sp_tz *tz;

	/* every truncation is refused */
	for (size_t n = 0; n < len; n++) {
		tz = sp_tz_parse(buf, n, "t");
		if (tz != NULL)
			fprintf(stderr, "  truncated to %zu accepted\n", n);
		CHECK(tz == NULL);
		sp_tz_free(tz);
	}
	/* offsets of the second header's counts and of its data */
	size_t h2 = 44 + 7;
	struct {
		size_t at;
		uint32_t v;
	} counts[] = {
	    {h2 + 32, 0xffffffffu}, {h2 + 36, 0xffffffffu}, {h2 + 40, 0xffffffffu},
	    {h2 + 28, 1},           {h2 + 20, 1},           {h2 + 24, 5},
	    {h2 + 36, 0},           {h2 + 40, 0},           {20 + 12, 0x7fffffffu},
	};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		memcpy(bad, buf, len);
		put32(bad + counts[i].at, counts[i].v);
		tz = sp_tz_parse(bad, len, "t");
		CHECK(tz == NULL);
		sp_tz_free(tz);
	}
	size_t data = h2 + 44;
	memcpy(bad, buf, len);
	bad[data + 16] = 2; /* transition type index out of range */
	CHECK(sp_tz_parse(bad, len, "t") == NULL);
	memcpy(bad, buf, len);
	put32(bad + data + 12, 500); /* second transition before the first */
	CHECK(sp_tz_parse(bad, len, "t") == NULL);
	memcpy(bad, buf, len);
	put32(bad + data + 18, 0x80000000u); /* utoff -2^31 */
	CHECK(sp_tz_parse(bad, len, "t") == NULL);
	memcpy(bad, buf, len);
	bad[data + 18 + 5] = 200; /* abbreviation index beyond charcnt */
	CHECK(sp_tz_parse(bad, len, "t") == NULL);
	memcpy(bad, buf, len);
	bad[data + 18 + 4] = 2; /* isdst neither 0 nor 1 */
	CHECK(sp_tz_parse(bad, len, "t") == NULL);
	memcpy(bad, buf, len);
	bad[0] = 'X';
	CHECK(sp_tz_parse(bad, len, "t") == NULL);
	memcpy(bad, buf, len);
	bad[4] = '1'; /* no such version */
	CHECK(sp_tz_parse(bad, len, "t") == NULL);
	CHECK(sp_tz_parse(NULL, 0, "t") == NULL);

	/* random damage to a real file: refused or usable, never a crash (ASan run) */
	size_t rlen = 0;
	unsigned char *real = slurp("/usr/share/zoneinfo/Europe/Berlin", &rlen);
	CHECK(real != NULL);
	if (real) {
		unsigned char *copy = malloc(rlen);
		uint32_t seed = 12345;
		for (int round = 0; round < 3000 && copy; round++) {
			memcpy(copy, real, rlen);
			for (int k = 0; k < 1 + round % 4; k++) {
				seed = seed * 1103515245u + 12345u;
				size_t pos = (seed >> 8) % rlen;
				seed = seed * 1103515245u + 12345u;
				copy[pos] = (unsigned char)(seed >> 16);
			}
			size_t cut = round % 5 == 0 ? (seed >> 4) % (rlen + 1) : rlen;
			tz = sp_tz_parse(copy, cut, "fuzz");
			if (tz) {
				char out[SP_TZ_FMT_MAX];
				for (int64_t t = -4000000000000; t < 8000000000000;
				     t += 97654321012)
					sp_tz_format(tz, t, out, sizeof(out));
			}
			sp_tz_free(tz);
		}
		free(copy);
		/* the whole file parses; each truncation of it is refused */
		tz = sp_tz_parse(real, rlen, "Europe/Berlin");
		CHECK(tz != NULL);
		sp_tz_free(tz);
		int accepted = 0;
		for (size_t n = 0; n < rlen; n++) {
			tz = sp_tz_parse(real, n, "t");
			accepted += tz != NULL;
			sp_tz_free(tz);
		}
		CHECK_EQ_INT(accepted, 0);
	}

	/* through the file path: a truncated file, a huge file, a directory */
	const char *tmp = getenv("SP_TEST_TMP");
	char path[512];
	snprintf(path, sizeof(path), "%s/test_tz-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f && real) {
		fwrite(real, 1, rlen / 2, f);
		fclose(f);
		CHECK(sp_tz_load_file(path, "half") == NULL);
		f = fopen(path, "wb");
		fwrite(real, 1, rlen, f);
		fclose(f);
		tz = sp_tz_load_file(path, "whole");
		CHECK(tz != NULL);
		CHECK_EQ_INT(sp_tz_offset(tz, utc_ms(2026, 7, 1, 0, 0, 0)), 7200);
		sp_tz_free(tz);
		/* 2 MB: refused before it is parsed */
		f = fopen(path, "wb");
		fwrite(real, 1, rlen, f);
		static unsigned char zeros[4096];
		for (int i = 0; i < 512; i++)
			fwrite(zeros, 1, sizeof(zeros), f);
		fclose(f);
		CHECK(sp_tz_load_file(path, "huge") == NULL);
	}
	unlink(path);
	CHECK(sp_tz_load_file("/usr/share/zoneinfo/Asia", "dir") == NULL);
	CHECK(sp_tz_load_file("/nonexistent/zone", "none") == NULL);
	free(real);
}

int main(void)
{
	RUN(test_shanghai);
	RUN(test_berlin);
	RUN(test_new_york_sydney_utc);
	RUN(test_format_utc_and_edges);
	RUN(test_against_glibc);
	RUN(test_bad_names);
	RUN(test_synthetic);
	RUN(test_corrupt);
	HARNESS_EXIT();
}
