/* backoff.c - see backoff.h. */
#include "backoff.h"

void backoff_init(struct backoff *b, int64_t min_ms, int64_t max_ms)
{
	b->min_ms = min_ms;
	b->max_ms = max_ms < min_ms ? min_ms : max_ms;
	b->next_ms = min_ms;
}

int64_t backoff_failed(struct backoff *b)
{
	int64_t delay = b->next_ms;
	b->next_ms = b->next_ms > b->max_ms / 2 ? b->max_ms : b->next_ms * 2;
	return delay;
}

int64_t backoff_lost(struct backoff *b, int64_t up_ms, bool *short_lived)
{
	bool brief = up_ms < BACKOFF_STABLE_MS;
	if (short_lived)
		*short_lived = brief;
	if (brief)
		return backoff_failed(b);
	b->next_ms = b->min_ms; /* it held: this loss is news, not a pattern */
	return b->min_ms;
}
