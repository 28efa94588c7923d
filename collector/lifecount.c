/*
 * lifecount.c - see lifecount.h.
 *
 * Why not every decrease is a reset: the summary takes records in timestamp
 * order, and when a gateway's clock is set back the records of its old and
 * new timelines interleave, so a counter alternates slightly lower and
 * higher values; a terminal may also send a spurious low value. Counting
 * each such dip as a reset (from 0) added the whole lifetime value every
 * time (a review measured 1,245,795 trips for a true growth of 65). So, for
 * each value v against the baseline `last`:
 *  - v >= last: growth, v - last.
 *  - v below half of last: a reset (a real one restarts near 0): counts
 *    from 0, adding v; the baseline before it is kept (pending).
 *  - otherwise lower: out of order or spurious: adds nothing, and the
 *    baseline stays at the higher value (it never moves backwards).
 *  - while a reset is pending, a jump (v more than twice last) back to at
 *    least half the old baseline shows the "reset" was a spurious low value:
 *    what it added is taken back and v is judged against the old baseline
 *    (growth above it, nothing below). A real reset regrows by steps, not by
 *    such a jump; once it has regrown to half the old baseline it is
 *    confirmed (no longer pending). A second reset while one is pending
 *    keeps the first, whose baseline is the higher.
 * The growth is bounded (add): values up to 2^53-1 swinging to 0 and back
 * thousands of times would overflow a 64-bit sum.
 */
#include "lifecount.h"

/* a + b, at most LIFECOUNT_MAX (0 <= b; |a| <= LIFECOUNT_MAX, so nothing overflows) */
static int64_t add(int64_t a, int64_t b)
{
	return b > LIFECOUNT_MAX - a ? LIFECOUNT_MAX : a + b;
}

void lifecount_feed(struct lifecount *c, int64_t v)
{
	if (v < 0) /* not from the codec (0 <= v): nothing to count */
		return;
	if (!c->have) {
		c->have = true;
		c->last = v;
		return;
	}
	if (c->reset && v >= c->pre_last - v && c->last < v - c->last) {
		c->delta = c->pre_delta; /* a spurious reset: back to the old baseline */
		c->last = c->pre_last;
		c->reset = false;
	}
	if (v >= c->last) {
		c->delta = add(c->delta, v - c->last);
		c->last = v;
		if (c->reset && v >= c->pre_last - v)
			c->reset = false; /* regrown by steps: a real reset */
	} else if (v < c->last - v) {
		if (!c->reset) {
			c->reset = true;
			c->pre_last = c->last;
			c->pre_delta = c->delta;
		}
		c->delta = add(c->delta, v);
		c->last = v;
	}
}

/*
 * A pending reset that proves spurious later takes back what it added
 * before too: pre_delta <= delta while pending, so it becomes -delta..0
 * and the growth from here may fall below 0 (lifecount_growth shows 0).
 */
void lifecount_start(struct lifecount *c)
{
	c->pre_delta -= c->delta;
	c->delta = 0;
}

int64_t lifecount_growth(const struct lifecount *c)
{
	return c->delta > 0 ? c->delta : 0;
}
