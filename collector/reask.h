/*
 * reask.h - the pace of the collector's re-asks for the retained births and
 * states (ingest_ask_retained): at most one per interval, and no request
 * lost.
 *
 * A re-ask (a SUBSCRIBE to sp/v1/+/+/birth and sp/v1/+/+/state once more)
 * makes the broker resend every retained birth and state of the fleet: two
 * messages per agent, 200,000 for 100,000 agents, all through the broker, the
 * ingest queue and the writer. The writer asks after each failed batch that
 * dropped births or states, once a commit works again; a flapping disk (full,
 * freed, full ...) asked once per recovery. So a request that comes within
 * the interval after the last re-ask waits for the interval's end and is
 * carried out then; requests that come meanwhile join it (one resend
 * answers them all: the broker sends each agent's newest birth and state,
 * so one dropped and since replaced is not missed).
 *
 * Pure: no clock, no locks, no I/O; the caller passes the time (monotonic
 * ms: a wall clock set back would hold a request until it caught up).
 * A value struct its owner embeds (as struct sp_ratelimit), owned by one
 * thread: the collector's main thread (ingest_poll).
 */
#ifndef SP_COLLECTOR_REASK_H
#define SP_COLLECTOR_REASK_H

#include <stdbool.h>
#include <stdint.h>

/*
 * One re-ask a minute at most by default. A dropped birth or state (a new device, a
 * gateway's goodbye) then arrives at most a minute late, a third of the
 * default device_offline_s (180 s), so a goodbye still comes before the
 * silence of its devices would have been alerted; and a disk flapping as fast
 * as the writer can notice (a failed batch pauses 200 ms) costs the broker
 * and the collector one fleet resend a minute instead of several a second.
 * At 100,000 agents a resend is ~200,000 messages, some 6 s of the writer's
 * work at its ~35,000 messages a second (docs/performance.md): once a minute
 * that is a tenth of its time at worst, where back-to-back resends took all.
 */
#define REASK_INTERVAL_S_DEFAULT 60 /* [store] reask_interval_s */

enum reask_step {
	REASK_IDLE,  /* nothing asked */
	REASK_DEFER, /* a new request within the interval: it waits for the interval's end */
	REASK_WAIT,  /* a request deferred before still waits */
	REASK_GO,    /* re-ask now, then call reask_done (or, if it could not go out, not) */
};

/* The fields are the module's; the owner only embeds the struct. */
struct reask {
	int64_t interval_ms;
	int64_t last_ms; /* when the last re-ask went out (valid once sent) */
	bool sent;       /* a re-ask went out */
	bool pending;    /* a request waits */
};

/* Starts with nothing asked and no re-ask made: the first request goes at once. */
void reask_init(struct reask *r, int64_t interval_ms);

/*
 * What to do at now_ms; asked: a request came since the last call. A
 * request waits (REASK_DEFER, then REASK_WAIT) until interval_ms after the
 * last re-ask, then REASK_GO, at every call until reask_done or
 * reask_answered.
 */
enum reask_step reask_step(struct reask *r, bool asked, int64_t now_ms);

/* The re-ask went out at now_ms: the request is answered and the interval starts. */
void reask_done(struct reask *r, int64_t now_ms);

/*
 * A waiting request was answered otherwise: a connect's own subscriptions
 * brought every retained message too. The interval is not restarted (a
 * connect is not a re-ask, and is not paced here).
 */
void reask_answered(struct reask *r);

/* When a waiting request is due (monotonic ms); meaningful after REASK_DEFER or REASK_WAIT. */
int64_t reask_due_ms(const struct reask *r);

#endif
