/*
 * summary.h - the city summary of one site and period (CONTRACT §6), built
 * from the period's records and alerts. Pure: the caller reads the store
 * and hands everything in; the result is the JSON body to POST.
 *
 * Usage: summary_begin; then for each device summary_device, followed by
 * its records in time order (summary_record); then summary_alert for each
 * alert active at some moment of the period; then summary_finish.
 */
#ifndef SP_COLLECTOR_SUMMARY_H
#define SP_COLLECTOR_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sitepulse/buf.h"
#include "sitepulse/record.h"

struct summary;

struct summary_period {
	const char *site;
	int64_t start, end;          /* ms, [start, end) */
	int64_t generated_at;        /* ms */
	int64_t offline_ms;          /* a device silent this long is offline (device_offline_s) */
};

/* p is copied (end > start, offline_ms >= 0). NULL when memory is short. */
struct summary *summary_begin(const struct summary_period *p);
/* Frees s and everything it holds; s may be NULL. */
void summary_free(struct summary *s);

struct summary_device {
	const char *dev;
	enum sp_dev_kind kind;       /* SP_DEV_UNKNOWN: decided by its records (summary.c) */
	int32_t ports;               /* charger: its ports (0 = unknown: counted from the records) */
	/*
	 * Records of the device from before the period, in any order (nbefore
	 * of them; before may be NULL when nbefore is 0): where counters and
	 * states stand at the start. The newest record of any kind (online at
	 * the start); for each lift counter the lift records carrying it
	 * (counters are optional: a state record between carries none), taken
	 * in time order by the same rule as the period's (lifecount.h), their
	 * growth not counted - so pass the newest few, not only the newest,
	 * for a spurious or out-of-order newest value to be seen as one; the
	 * newest port record of each port (port states). Records at or after
	 * the period's start are ignored.
	 */
	const struct sp_record *before;
	size_t nbefore;
};

/* Starts a device (d and its strings are copied); its records follow. 0 or SP_ENOMEM. */
int summary_device(struct summary *s, const struct summary_device *d);
/*
 * Leaves the current device out (its records cannot be read whole): it is
 * forgotten as if it had never been started. The next summary_device, or
 * the alerts, follow as usual.
 */
void summary_drop_device(struct summary *s);
/*
 * One record of the current device, in time order, with start <= ts < end
 * (a record outside the period is ignored). 0 or SP_ENOMEM.
 */
int summary_record(struct summary *s, const struct sp_record *r);

struct summary_alert {
	const char *rule;            /* as shown (lift.fault.E12) */
	const char *dev;
	const char *severity;
	int64_t opened_at;
	int64_t cleared_at;          /* 0 = still active */
};
/* An alert of the site active at some moment of the period. 0 or SP_ENOMEM. */
int summary_alert(struct summary *s, const struct summary_alert *a);

/*
 * Appends the JSON body (CONTRACT §6) to out: 0, SP_ENOMEM, or SP_ETOOBIG
 * when out's limit is reached (out is then as it was).
 */
int summary_finish(struct summary *s, struct sp_buf *out);

#endif
