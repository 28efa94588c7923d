/*
 * reask.c - the pace of the re-asks for the retained births and states (see
 * reask.h). Pure: the caller's main thread passes the monotonic time.
 */
#include "reask.h"

void reask_init(struct reask *r, int64_t interval_ms)
{
	*r = (struct reask){.interval_ms = interval_ms};
}

int64_t reask_due_ms(const struct reask *r)
{
	return r->sent ? r->last_ms + r->interval_ms : 0;
}

enum reask_step reask_step(struct reask *r, bool asked, int64_t now_ms)
{
	/* a request joins one already waiting: one resend answers both */
	bool fresh = asked && !r->pending;
	if (asked)
		r->pending = true;
	if (!r->pending)
		return REASK_IDLE;
	if (r->sent && now_ms < reask_due_ms(r))
		return fresh ? REASK_DEFER : REASK_WAIT;
	return REASK_GO;
}

void reask_done(struct reask *r, int64_t now_ms)
{
	r->pending = false;
	r->sent = true;
	r->last_ms = now_ms;
}

void reask_answered(struct reask *r)
{
	r->pending = false;
}
