/*
 * citybuild.h - one site's city summary of one period (CONTRACT §6), read
 * from the store and written by summary.h: the building step of the city
 * thread, apart from its schedule and delivery (cityout.c).
 *
 * A summary is built from, per device (store_r_devices): the records before
 * the period that say where it stood at the start - its newest record of
 * any kind within offline_ms of the start (online), its newest lift record
 * of the 7 days before and the newest 4 lift records carrying counters of
 * the 2 hours before, and, for each lift counter none of these carries,
 * the newest lift record carrying it of those 2 hours (where the counter
 * stands; lifts and devices of unknown kind: a counter not found counts
 * from its first value in the period), the newest record of each port
 * within offline_ms of the start (port states; chargers and unknown; read
 * back over at most 4096 port records, stopping once every port of the
 * birth has one) - then its records of the period
 * (store_r_device_records), then the site's alerts active during the
 * period (store_r_alerts_during). A charger's ports come from its birth
 * (the device's meta, decoded by the codec as a birth entry). Stored
 * records the codec refuses are left out and counted for the caller's log
 * line. A device with more records in the period than device_records_max
 * (they are all held at once, to be put in time order) is left out of
 * that period's summary, logged and counted, rather than holding back its
 * site's summaries for good.
 *
 * Threading: a citybuild is used by one thread (the city thread); it reads
 * through the store's read pool.
 */
#ifndef SP_COLLECTOR_CITYBUILD_H
#define SP_COLLECTOR_CITYBUILD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "store.h"

#include "sitepulse/buf.h"

struct citybuild_params {
	struct store *store;
	struct metrics *metrics;    /* summary_devices_left_out */
	int64_t offline_ms;         /* device_offline_s */
	int64_t device_records_max; /* a device with more readings in a period is left out of it */
};

struct citybuild;

/* p is copied; the store and metrics must outlive the builder. NULL when memory is short. */
struct citybuild *citybuild_create(const struct citybuild_params *p);
void citybuild_destroy(struct citybuild *b); /* NULL ok */

/* What a build says besides the summary, for the caller's log lines. */
struct citybuild_report {
	const char *failed_at; /* on SP_E*: the step that failed ("listing its devices", ...) */
	size_t devices;        /* devices looked at */
	size_t refused;        /* stored records the codec refused, left out */
};

/*
 * Builds the summary of site for [start, end), generated at now, into out
 * (reset first). Returns 0; 1 when skip_empty and the period holds no
 * record (a new site's first period: nothing to say); SP_ECLOSED when
 * *stop became true meanwhile; or SP_E* with rep->failed_at set. out's
 * content is the summary only when 0 is returned.
 */
int citybuild_period(struct citybuild *b, const char *site, int64_t start, int64_t end,
		     int64_t now, bool skip_empty, const atomic_bool *stop, struct sp_buf *out,
		     struct citybuild_report *rep);

#endif
