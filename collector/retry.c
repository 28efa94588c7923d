/*
 * retry.c - see retry.h.
 */
#include "retry.h"

int64_t retry_delay_ms(int64_t min_ms, int64_t max_ms, int64_t failures, uint64_t *rng)
{
	int64_t d = min_ms;
	/* halving the cap instead of doubling d: no overflow for any max_ms */
	for (int64_t i = 0; i < failures && d < max_ms; i++)
		d = d > max_ms / 2 ? max_ms : d * 2;
	if (d > max_ms)
		d = max_ms;
	/* a 64-bit LCG (Knuth's MMIX constants); its high bits are the good ones */
	*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
	int64_t jitter = (int64_t)((*rng >> 33) % (uint64_t)(d / 5 + 1));
	d -= jitter;
	return d < min_ms ? min_ms : d;
}
