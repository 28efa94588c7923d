/*
 * synth.h - synthetic but valid telemetry for the benchmark tools.
 *
 * Fills struct sp_record / sp_device_info with realistic values (a lift
 * between floors -1 and 20, a 12-port e-bike charger) that pass the codec's
 * validation and the collector's inventory checks (port <= ports, floor
 * within floors). Pure: no I/O, no clock (the caller passes ts), no global
 * state (the caller owns the generator).
 */
#ifndef SP_BENCH_SYNTH_H
#define SP_BENCH_SYNTH_H

#include "sitepulse/record.h"

#include <stdbool.h>
#include <stdint.h>

#define SYNTH_PORTS 12
#define SYNTH_FLOOR_MIN (-1)
#define SYNTH_FLOOR_MAX 20

/* A small pseudo-random generator (xorshift64*), one per thread. */
struct synth {
	uint64_t state;
};

void synth_seed(struct synth *s, uint64_t seed);
uint64_t synth_next(struct synth *s);

/* What a birth says about a lift (lift = true) or a charger named dev. */
void synth_device(struct sp_device_info *d, const char *dev, bool lift);

/*
 * The n-th record of a device: a lift sends lift records; a charger sends
 * its station record, then one record per port, in turn. Lifetime counters
 * grow with n.
 */
void synth_record(struct synth *s, struct sp_record *r, const char *dev, bool lift, int64_t ts,
		  uint64_t n);

#endif
