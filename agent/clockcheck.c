/*
 * clockcheck.c - see clockcheck.h.
 */
#include "clockcheck.h"


enum clockcheck_say clockcheck_ack(struct clockcheck *c, int64_t pub_ms, int64_t rx_ms,
				   int64_t ack_ts, int64_t now_mono, int64_t *off_ms)
{
	*off_ms = 0;
	if (ack_ts <= 0 || rx_ms < pub_ms)
		return CLOCKCHECK_QUIET;
	if (ack_ts < pub_ms - CLOCKCHECK_TOLERANCE_MS)
		*off_ms = pub_ms - ack_ts; /* ours ahead: the collector's time before our send */
	else if (ack_ts > rx_ms + CLOCKCHECK_TOLERANCE_MS)
		*off_ms = rx_ms - ack_ts;  /* ours behind: the collector's time after our receipt */
	if (*off_ms == 0) {
		if (c->off_ms == 0)
			return CLOCKCHECK_QUIET;
		c->off_ms = 0;
		c->said_mono = 0;
		return CLOCKCHECK_AGAIN;
	}
	/* said again when the sign changes, or the repeat period has passed */
	if (c->said_mono != 0 && (c->off_ms > 0) == (*off_ms > 0) &&
	    now_mono - c->said_mono < CLOCKCHECK_REPEAT_MS)
		return CLOCKCHECK_QUIET;
	c->off_ms = *off_ms;
	c->said_mono = now_mono > 0 ? now_mono : 1;
	return CLOCKCHECK_OFF;
}
