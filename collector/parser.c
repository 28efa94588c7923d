/* parser.c - see parser.h. */
#include "parser.h"

#include "parsed.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"
#include "sitepulse/topic.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#define PARSE_BATCH 256  /* raw messages taken from the ingest queue at a time */
/*
 * A push wakes the parser, and closing the ingest queue on stop does too:
 * the timeout only bounds how long an idle parser sleeps.
 */
#define PEEK_WAIT_MS 200
/*
 * After a small batch, nap before looking again, so that the next look
 * finds a batch: waking on every message costs a futex round trip per
 * message. Measured by hand, runs interleaved: 1-record drain 70k msg/s
 * without naps, 83k with 1 ms, 77k with 5 ms; collector CPU at a steady
 * 3,000 msg/s 75, 49 and 43 us per message (bench/ab, builds with
 * -DSP_PARSER_NAP_MS=0, 1, 5). We keep 5 ms: moderate load is
 * the common case, and a full batch (a real backlog) never naps. 5 ms of
 * traffic is far below the ingest queue's size at any rate.
 */
#define SMALL_BATCH (PARSE_BATCH / 4)
#ifndef SP_PARSER_NAP_MS /* a build option only for such comparisons */
#define SP_PARSER_NAP_MS 5
#endif

struct parser {
	struct queue *in, *out;
	pthread_t thread;
	bool started;
	atomic_bool stop;        /* set by parser_stop (main thread) */
	atomic_int drain_ms;
	struct sp_decoder *dec;
	struct sp_buf buf;       /* the parsed form of the current message */
	struct queue_msg msgs[PARSE_BATCH];
	struct sp_ratelimit oom_log; /* parser thread only: lost messages (no memory, no room) */
};

/* Passes one message on, decoded if it is data. 0 or SP_ECLOSED. */
static int pass_on(struct parser *p, const struct queue_msg *m)
{
	struct sp_topic t;
	if (sp_topic_parse(m->topic, m->topic_len, &t) != 0 || t.kind != SP_TOPIC_DATA)
		return queue_push(p->out, m->topic, m->topic_len, m->payload, m->payload_len,
				  m->received_ms);
	struct sp_data_msg dm;
	struct sp_reject_info why;
	int rc = sp_decode_data(p->dec, m->payload, m->payload_len, sp_now_ms(), &dm, &why);
	sp_buf_reset(&p->buf);
	uint64_t suppressed;
	if (parsed_write(&p->buf, rc, &dm, &why) == 0) {
		rc = queue_push(p->out, m->topic, m->topic_len, p->buf.data, p->buf.len,
				m->received_ms);
		if (rc != SP_ETOOBIG)
			return rc;
		/*
		 * Cannot happen: the writer queue takes parsed_queue_min() at least
		 * (main.c), the parsed form of any message. Were it to, the message
		 * is valid and must not count as handled (that would ack it unstored):
		 * it is dropped unacked, so its agent resends it.
		 */
		if (sp_ratelimit_allow(&p->oom_log, sp_mono_ms(), 1, 60000, &suppressed))
			SP_ERROR("parser", "%s/%s seq %lld: its parsed form (%zu bytes) does not fit "
					   "the writer queue; left to its resend, not acked%s",
				 t.site, t.agent, (long long)dm.seq, p->buf.len,
				 suppressed ? " (similar lines suppressed)" : "");
		return 0;
	}
	/* no memory for it: drop it; the agent resends what is never acked */
	if (sp_ratelimit_allow(&p->oom_log, sp_mono_ms(), 1, 60000, &suppressed))
		SP_ERROR("parser", "out of memory decoding a message from %s/%s; left to its resend%s",
			 t.site, t.agent, suppressed ? " (similar lines suppressed)" : "");
	return 0;
}

static void *parser_main(void *arg)
{
	struct parser *p = arg;
	int64_t deadline = 0;
	for (;;) {
		if (sp_drain_over(atomic_load(&p->stop), atomic_load(&p->drain_ms), &deadline))
			break;
		size_t n = queue_peek(p->in, p->msgs, PARSE_BATCH, PEEK_WAIT_MS);
		if (n == 0) {
			if (atomic_load(&p->stop))
				break; /* closed and empty */
			continue;
		}
		size_t i;
		for (i = 0; i < n; i++)
			if (pass_on(p, &p->msgs[i]) == SP_ECLOSED)
				break;
		queue_release(p->in, n);
		if (i < n)
			break;
		if (n < SMALL_BATCH && !atomic_load(&p->stop))
			sp_sleep_ms(SP_PARSER_NAP_MS);
	}
	queue_close(p->out);
	return NULL;
}

struct parser *parser_start(struct queue *in, struct queue *out)
{
	struct parser *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->in = in;
	p->out = out;
	p->dec = sp_decoder_create();
	if (p->dec == NULL || pthread_create(&p->thread, NULL, parser_main, p) != 0) {
		sp_decoder_destroy(p->dec);
		free(p);
		return NULL;
	}
	p->started = true;
	(void)pthread_setname_np(p->thread, "sp-parser"); /* for top -H, perf, gdb */
	return p;
}

void parser_stop(struct parser *p, int drain_ms)
{
	if (p == NULL)
		return;
	atomic_store(&p->drain_ms, drain_ms);
	atomic_store(&p->stop, true);
	if (p->started)
		pthread_join(p->thread, NULL);
	sp_decoder_destroy(p->dec);
	sp_buf_free(&p->buf);
	free(p);
}
