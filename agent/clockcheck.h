/*
 * clockcheck.h - whether the gateway's wall clock agrees with the
 * collector's, judged from the end-to-end acks (CONTRACT §3.4: an ack
 * carries the collector's time of publication), and when to say so.
 *
 * The gateway's clock stamps every reading; one that is off mis-dates them
 * all, and the collector can only count them (docs/operations.md, *Clocks*).
 * The agent can tell it itself: an ack covering a message was published by
 * the collector after that message reached it, so, in true time, after the
 * message's first publication (pub_ms, our clock) and before the ack
 * arrived (rx_ms, our clock). A collector time outside [pub_ms, rx_ms]
 * widened by the tolerance says by how much our clock is off — whichever
 * clock is wrong, the two disagree, and the log says so. The bounds hold
 * while a seq names one message: the caller (agent.c) probes only messages
 * it created itself and skips each connection's first, retained, ack.
 *
 * Pure: no clock, no I/O; the caller reads the clocks and logs.
 */
#ifndef SP_AGENT_CLOCKCHECK_H
#define SP_AGENT_CLOCKCHECK_H

#include <stdint.h>

/* What the gateway's and the collector's clocks differ by before it is said. */
#define CLOCKCHECK_TOLERANCE_MS (60 * 1000)
/* While they keep disagreeing, it is said again at most this often. */
#define CLOCKCHECK_REPEAT_MS (10 * 60 * 1000)

enum clockcheck_say {
	CLOCKCHECK_QUIET,   /* nothing new */
	CLOCKCHECK_OFF,     /* the clocks disagree: *off_ms says by how much */
	CLOCKCHECK_AGAIN,   /* they agree again, after an OFF */
};

struct clockcheck {
	int64_t off_ms;      /* as last said (0: agreeing, or not known) */
	int64_t said_mono;   /* when OFF was last said (mono ms), 0 = never */
};

/*
 * One ack, stamped ack_ts by the collector, covering a message first
 * published at pub_ms and received at rx_ms (wall clock, ms); now_mono: the
 * monotonic clock, for the repeat. *off_ms: how far our clock is off,
 * positive when ahead of the collector's (at least that much), 0 when the
 * two agree. Acks without a time (ack_ts 0), or with rx_ms before pub_ms
 * (our clock stepped back meanwhile), tell nothing.
 */
enum clockcheck_say clockcheck_ack(struct clockcheck *c, int64_t pub_ms, int64_t rx_ms,
				   int64_t ack_ts, int64_t now_mono, int64_t *off_ms);

#endif
