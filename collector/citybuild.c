/*
 * citybuild.c - see citybuild.h.
 */
#include "citybuild.h"

#include "summary.h"

#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/ids.h"
#include "sitepulse/log.h"

#include <stdlib.h>
#include <string.h>

#define LOG_COMP         "city"
/*
 * Port records read back from before a period, at most: the newest of each
 * port is kept (summary.h), but a port that reports rarely may lie behind
 * many records of busy ones (64 ports reporting every second fill 256 in 4
 * s; a quiet port's newest record may be a minute old). This many covers
 * every port's newest within the usual offline_ms; it bounds what one
 * device costs per period (read, not kept) on a charger that floods.
 */
#define BEFORE_PORT_ROWS 4096
/* how far back a lift's newest record is looked for (one record: the walk stops at it) */
#define LIFT_BEFORE_MS (7LL * 24 * 3600 * 1000)
/*
 * How far back a counter missing from that record is looked for: every
 * lift record of the window is read, so it bounds the cost of a lift that
 * sends no counters (~360 records an hour from a busy one) where 7 days
 * would read a week of its records every period. DOMAIN's cadence for
 * counters is 15 min.
 */
#define COUNTER_BEFORE_MS (2LL * 3600 * 1000)
/*
 * Lift records carrying counters read back from that window: the summary
 * judges the newest against the ones before it (lifecount.c), so a
 * spurious low value or an old timeline's (a clock set back) as the newest
 * is no baseline. A few cover a single spurious value and interleaved
 * timelines; each one more can mean reading back one more counter interval
 * (DOMAIN: 15 min) of the lift's records.
 */
#define COUNTER_BEFORE_ROWS 4

/* A lift's lifetime counters, each its own baseline (summary.h). */
enum { TRIPS, DOOR_CYCLES, RUN_S, NCOUNTERS };
static const char *const COUNTER_NAME[NCOUNTERS] = {"trips", "door_cycles", "run_s"};
static const uint32_t COUNTER_HAS[NCOUNTERS] = {SP_HAS_TRIPS, SP_HAS_DOOR_CYCLES, SP_HAS_RUN_S};
#define META_MAX       4096 /* bytes of a device's birth entry we decode */

/* A device of the site being summarized. */
struct dev_entry {
	char dev[SP_ID_MAX + 1];
	enum sp_dev_kind kind;
	int32_t ports;
};

struct citybuild {
	struct citybuild_params p;
	struct sp_decoder *dec;
	struct sp_buf meta; /* a device's birth entry, as a birth */
	struct dev_entry *devs;
	size_t ndevs, devs_cap;
	struct sp_record *before;
	size_t nbefore, before_cap;
};

/* What the store's callbacks need while one summary is built. */
struct build {
	struct citybuild *cb;
	struct summary *sum;
	int64_t now;
	int rc;         /* the first failure */
	size_t records; /* records of the period fed */
	size_t refused; /* stored records the codec refused */
	/*
	 * port_before_row: the ports whose newest record is kept, and how many of
	 * the birth's ports_of_birth are still to find (0 ports: unknown, read to
	 * the bound)
	 */
	uint64_t ports_kept;
	int32_t ports_of_birth, ports_left;
};
_Static_assert(SP_PORT_MAX <= 64, "a port's bit fits build.ports_kept");

struct citybuild *citybuild_create(const struct citybuild_params *p)
{
	struct citybuild *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->p = *p;
	b->meta = (struct sp_buf)SP_BUF_INIT(META_MAX + 64);
	if ((b->dec = sp_decoder_create()) == NULL) {
		free(b);
		return NULL;
	}
	return b;
}

void citybuild_destroy(struct citybuild *b)
{
	if (b == NULL)
		return;
	sp_decoder_destroy(b->dec);
	sp_buf_free(&b->meta);
	free(b->devs);
	free(b->before);
	free(b);
}

static int device_row(void *ctx, const struct store_device_row *row)
{
	struct build *b = ctx;
	struct citybuild *cb = b->cb;
	size_t len = row->dev ? strlen(row->dev) : 0;
	if (len == 0 || len > SP_ID_MAX)
		return 0;
	struct dev_entry *v = sp_grow(cb->devs, &cb->devs_cap, cb->ndevs + 1, sizeof(*v), 64);
	if (v == NULL) {
		b->rc = SP_ENOMEM;
		return 1;
	}
	cb->devs = v;
	struct dev_entry *d = &v[cb->ndevs++];
	memcpy(d->dev, row->dev, len + 1);
	int kind = row->kind ? sp_dev_kind_parse(row->kind) : -1;
	d->kind = kind > 0 ? (enum sp_dev_kind)kind : SP_DEV_UNKNOWN;
	d->ports = 0;
	/* the birth entry says how many ports; the codec reads it as a one-device birth */
	size_t mlen = row->meta ? strlen(row->meta) : 0;
	if (d->kind == SP_DEV_LIFT || mlen == 0 || mlen > META_MAX)
		return 0;
	struct sp_birth birth;
	struct sp_reject_info why;
	sp_buf_reset(&cb->meta);
	if (sp_buf_printf(&cb->meta, "{\"v\":1,\"ts\":%lld,\"devices\":[", (long long)b->now) ||
	    sp_buf_append(&cb->meta, row->meta, mlen) || sp_buf_puts(&cb->meta, "]}"))
		return 0; /* no memory for it: ports counted from the records */
	if (sp_decode_birth(cb->dec, cb->meta.data, cb->meta.len, b->now, &birth, &why) == 0 &&
	    birth.count == 1 && birth.rejected == 0 && birth.devices[0].kind == SP_DEV_CHARGER)
		d->ports = birth.devices[0].ports;
	return 0;
}

/*
 * Decodes a stored record before the period into the next free place of
 * cb->before, not yet kept (the caller counts it in). NULL when the codec
 * refused it (counted) or memory is short (b->rc).
 */
static struct sp_record *decode_before(struct build *b, const char *body, size_t len)
{
	struct citybuild *cb = b->cb;
	struct sp_record *v = sp_grow(cb->before, &cb->before_cap, cb->nbefore + 1, sizeof(*v), 16);
	if (v == NULL) {
		b->rc = SP_ENOMEM;
		return NULL;
	}
	cb->before = v;
	struct sp_reject_info why;
	if (sp_decode_record(cb->dec, body, len, b->now, &v[cb->nbefore], &why) != 0) {
		b->refused++;
		return NULL;
	}
	return &v[cb->nbefore];
}

/* A stored record before the period, kept for summary_device. */
static int before_row(void *ctx, const char *body, size_t len)
{
	struct build *b = ctx;
	if (decode_before(b, body, len) != NULL)
		b->cb->nbefore++;
	return b->rc != 0;
}

/*
 * A stored port record before the period: kept only if it is its port's
 * newest (they come newest first); the walk stops once every port of the
 * birth has one (records of ports beyond it, from an older birth with more,
 * are kept but do not count).
 */
static int port_before_row(void *ctx, const char *body, size_t len)
{
	struct build *b = ctx;
	struct sp_record *r = decode_before(b, body, len);
	/* the codec holds ports to 1..SP_PORT_MAX; anything else is not a port state */
	if (r == NULL || r->kind != SP_REC_PORT || r->u.port.port < 1 ||
	    r->u.port.port > SP_PORT_MAX)
		return b->rc != 0;
	uint64_t bit = 1ULL << (r->u.port.port - 1);
	if (b->ports_kept & bit)
		return 0; /* an older record of a port already kept */
	b->ports_kept |= bit;
	b->cb->nbefore++;
	if (r->u.port.port > b->ports_of_birth)
		return 0;
	return --b->ports_left == 0;
}

static int record_row(void *ctx, int64_t ts, enum sp_rec_kind kind, const char *body, size_t len)
{
	struct build *b = ctx;
	struct sp_record r;
	struct sp_reject_info why;
	(void)ts;
	(void)kind;
	if (sp_decode_record(b->cb->dec, body, len, b->now, &r, &why) != 0) {
		b->refused++;
		return 0;
	}
	b->records++;
	if ((b->rc = summary_record(b->sum, &r)))
		return 1;
	return 0;
}

static int alert_row(void *ctx, const struct store_alert_row *row)
{
	struct build *b = ctx;
	struct summary_alert a = {row->rule ? row->rule : "", row->dev ? row->dev : "",
				  row->severity ? row->severity : "", row->opened_at,
				  row->cleared_at};
	if ((b->rc = summary_alert(b->sum, &a)))
		return 1;
	return 0;
}

/* Appends the readings q finds to cb->before through fn. 0 or SP_E* (a device gone meanwhile: 0). */
static int read_with(struct build *b, const struct store_readings_query *q, store_reading_fn fn)
{
	int rc = store_r_readings(b->cb->p.store, q, fn, b);
	if (b->rc)
		return b->rc;
	return rc < 0 && rc != SP_ENOTFOUND ? rc : 0;
}

static int read_into_before(struct build *b, const struct store_readings_query *q)
{
	return read_with(b, q, before_row);
}

/*
 * Appends the newest lift record before start, the newest
 * COUNTER_BEFORE_ROWS lift records carrying any counter within
 * COUNTER_BEFORE_MS, and, for each counter none of these carries (when
 * there are that many: fewer means the window holds no other, records the
 * codec refuses aside), the newest one
 * carrying it there (summary.h: where each counter stands). Counters are
 * optional (CONTRACT §3.2) and typically come every 15 min while state
 * records come on every change, so the newest lift record often has none.
 * A record may be appended twice (the newest, also among those carrying
 * counters): the summary takes a repeated value as no growth.
 */
static int read_counters_before(struct build *b, const char *site, const char *dev,
				int64_t start)
{
	const char *const any[] = {COUNTER_NAME[TRIPS], COUNTER_NAME[DOOR_CYCLES],
				   COUNTER_NAME[RUN_S], NULL};
	struct store_readings_query q = {site,      dev, SP_REC_LIFT, start - LIFT_BEFORE_MS,
					 start - 1, 1,   NULL};
	size_t first = b->cb->nbefore;
	int rc = read_into_before(b, &q);
	if (rc || b->cb->nbefore == first)
		return rc;
	q.from = start - COUNTER_BEFORE_MS;
	q.limit = COUNTER_BEFORE_ROWS;
	q.with_any = any;
	size_t found = b->cb->nbefore;
	if ((rc = read_into_before(b, &q)))
		return rc;
	if (b->cb->nbefore - found < COUNTER_BEFORE_ROWS)
		return 0; /* the whole window read: no other record in it carries a counter */
	uint32_t has = 0;
	for (size_t i = first; i < b->cb->nbefore; i++)
		has |= b->cb->before[i].has;
	q.limit = 1;
	for (int c = 0; c < NCOUNTERS; c++) {
		const char *const one[] = {COUNTER_NAME[c], NULL};
		if (has & COUNTER_HAS[c])
			continue;
		q.with_any = one;
		if ((rc = read_into_before(b, &q)))
			return rc;
	}
	return 0;
}

static int count_row(void *ctx, const char *body, size_t len)
{
	(void)body, (void)len;
	(*(int64_t *)ctx)++;
	return 0;
}

/*
 * Whether dev had sent any reading before `end`: 1, 0 or SP_E*. One first
 * heard later (a birth during the grace time announced it, or a device
 * added since a catch-up began) was not there in the period, and a row of
 * it would tell the city of a whole period's outage. Asked only of a
 * device with no reading in or shortly before the period: newest first,
 * one row.
 */
static int heard_before(struct build *b, const char *site, const char *dev, int64_t end)
{
	struct store_readings_query q = {site, dev, -1, 0, end - 1, 1, NULL};
	int64_t n = 0;
	int rc = store_r_readings(b->cb->p.store, &q, count_row, &n);
	if (rc < 0 && rc != SP_ENOTFOUND)
		return rc;
	return n > 0;
}

/* Reads the records of dev from before start that summary_device uses (citybuild.h). */
static int read_before(struct build *b, const char *site, const struct dev_entry *d,
		       int64_t start)
{
	int64_t recent = start - b->cb->p.offline_ms;
	struct store_readings_query any = {site, d->dev, -1, recent, start - 1, 1, NULL};
	struct store_readings_query ports = {site,   d->dev,    SP_REC_PORT,
					     recent, start - 1, BEFORE_PORT_ROWS, NULL};
	int rc;
	b->cb->nbefore = 0;
	if ((rc = read_into_before(b, &any)))
		return rc;
	if (d->kind != SP_DEV_CHARGER && (rc = read_counters_before(b, site, d->dev, start)))
		return rc;
	if (d->kind == SP_DEV_LIFT)
		return 0;
	b->ports_kept = 0;
	b->ports_of_birth = b->ports_left = d->ports;
	return read_with(b, &ports, port_before_row);
}

int citybuild_period(struct citybuild *cb, const char *site, int64_t start, int64_t end,
		     int64_t now, bool skip_empty, const atomic_bool *stop, struct sp_buf *out,
		     struct citybuild_report *rep)
{
	struct summary_period per = {site, start, end, now, cb->p.offline_ms};
	struct build b = {cb, NULL, now, 0, 0, 0, 0, 0, 0};
	int rc;

	memset(rep, 0, sizeof(*rep));
	rep->failed_at = "listing its devices";
	cb->ndevs = 0;
	rc = store_r_devices(cb->p.store, site, now, cb->p.offline_ms, 0, device_row, &b);
	if (rc < 0 || (rc = b.rc))
		goto done;
	rep->devices = cb->ndevs;
	rep->failed_at = "out of memory";
	if ((b.sum = summary_begin(&per)) == NULL) {
		rc = SP_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < cb->ndevs; i++) {
		const struct dev_entry *d = &cb->devs[i];
		if (atomic_load(stop)) { /* built again at the next start */
			rc = SP_ECLOSED;
			goto done;
		}
		rep->failed_at = "reading a device's records";
		if ((rc = read_before(&b, site, d, start)))
			goto done;
		struct summary_device sd = {d->dev, d->kind, d->ports, cb->before, cb->nbefore};
		if ((rc = summary_device(b.sum, &sd)))
			goto done;
		size_t had = b.records;
		rc = store_r_device_records(cb->p.store, site, d->dev, start, end,
					    cb->p.device_records_max, record_row, &b);
		if (b.rc) {
			rc = b.rc;
			goto done;
		}
		if (rc == SP_ETOOBIG) {
			/* a device flooding its site must not hold back the site's summaries for good */
			summary_drop_device(b.sum);
			atomic_fetch_add(&cb->p.metrics->summary_devices_left_out, 1);
			SP_WARN(LOG_COMP, "summary of %s for period %lld: %s left out, more than %lld "
					  "readings in the period ([city] device_records_max)",
				site, (long long)start, d->dev, (long long)cb->p.device_records_max);
			continue;
		}
		if (rc < 0 && rc != SP_ENOTFOUND) /* a device gone meanwhile has no records */
			goto done;
		/* rep->failed_at still says "reading a device's records" */
		if (cb->nbefore == 0 && b.records == had) {
			if ((rc = heard_before(&b, site, d->dev, end)) < 0)
				goto done;
			if (rc == 0)
				summary_drop_device(b.sum);
		}
	}
	if (skip_empty && b.records == 0) {
		rc = 1;
		goto done;
	}
	rep->failed_at = "reading its alerts";
	if ((rc = store_r_alerts_during(cb->p.store, site, start, end, alert_row, &b)) < 0 ||
	    (rc = b.rc))
		goto done;
	rep->failed_at = "writing the summary";
	sp_buf_reset(out);
	rc = summary_finish(b.sum, out);
done:
	if (rc == 0)
		rep->failed_at = NULL;
	rep->refused = b.refused;
	summary_free(b.sum);
	return rc;
}
