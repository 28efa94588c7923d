/*
 * queue.c - byte ring of raw messages (see queue.h).
 *
 * Layout: entries are laid out back to back from `head` (oldest) to `tail`
 * (where the next one goes). An entry never wraps: when it does not fit
 * before the end of the ring, a wrap marker (hdr.total == WRAP) is written
 * and the entry starts at offset 0; a shallow queue goes back to 0 before
 * the end (wrap_early), to keep its pages few. All index updates happen
 * under `lock`; the payload copy in push and the processing after peek
 * happen outside it, which is safe because the producer only writes free
 * space and the consumer only reads entries it has not released.
 */
#include "queue.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define WRAP UINT32_MAX
#define ALIGN 8
#define TRIM_KEEP (256 * 1024)
#define TRIM_EVERY_MS 1000

struct hdr {
	uint32_t total;       /* bytes of this entry including the header, or WRAP */
	uint32_t topic_len;
	uint32_t payload_len;
	uint32_t pad;
	int64_t received_ms;
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	char *ring;
	size_t cap;
	size_t head, tail;   /* offsets */
	size_t used;         /* bytes in use, including wrap waste */
	size_t waste;        /* of which: the end of the ring skipped by the last wrap */
	size_t depth;        /* entries */
	size_t reserved;     /* bytes being written by the producer (not yet visible) */
	const char *name, *holds;  /* for the log */
	bool closed;
	bool blocking;       /* the producer is in a blocked episode (for the log) */
	uint64_t pushed, blocked;
	size_t high_water;     /* highest offset written since the last trim */
	int64_t last_trim_ms;
};

static size_t entry_size(size_t topic_len, size_t payload_len)
{
	size_t n = sizeof(struct hdr) + topic_len + 1 + payload_len;
	return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

size_t queue_cap_for(size_t topic_len, size_t payload_len)
{
	return 2 * entry_size(topic_len, payload_len);
}

struct queue *queue_create(size_t cap_bytes, const char *name, const char *holds)
{
	struct queue *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->name = name;
	q->holds = holds;
	cap_bytes = (cap_bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	/* mapped, not malloc'ed: its pages can be handed back after a burst (trim_locked) */
	q->ring = mmap(NULL, cap_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q->ring == MAP_FAILED) {
		free(q);
		return NULL;
	}
	q->cap = cap_bytes;
	pthread_mutex_init(&q->lock, NULL);
	/* queue_peek's timeout on the monotonic clock: a wall clock step must not stall the consumer */
	if (sp_cond_init_mono(&q->not_empty) != 0) {
		pthread_mutex_destroy(&q->lock);
		munmap(q->ring, q->cap);
		free(q);
		return NULL;
	}
	pthread_cond_init(&q->not_full, NULL);
	return q;
}

void queue_destroy(struct queue *q)
{
	if (q == NULL)
		return;
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	pthread_mutex_destroy(&q->lock);
	munmap(q->ring, q->cap);
	free(q);
}

/*
 * After a burst the ring is empty again, but every page it touched stays
 * resident. Hand them back (all but the first TRIM_KEEP bytes, which a
 * steady trickle keeps using), so memory returns to its steady level.
 * Called locked, with no entry and no reservation outstanding, at most
 * once per TRIM_EVERY_MS.
 */
static void trim_locked(struct queue *q)
{
	int64_t now = sp_mono_ms();
	if (q->high_water <= TRIM_KEEP || now - q->last_trim_ms < TRIM_EVERY_MS)
		return;
	madvise(q->ring + TRIM_KEEP, q->cap - TRIM_KEEP, MADV_DONTNEED);
	q->high_water = 0;
	q->last_trim_ms = now;
}

/*
 * Whether to go back to the start of the ring before its end. A shallow
 * queue that is never quite empty (the writer holds its batch until the
 * commit) would otherwise walk through the whole capacity, and every page
 * it touches stays resident: 16 MB per queue at a steady load that needs
 * about one. So once past the first TRIM_KEEP bytes, the producer returns to
 * offset 0 as soon as the space there holds twice what is queued (plus the
 * entry): the pages in use stay near three times the depth. The rest of the
 * ring is waste until the consumer passes the wrap marker; a burst that
 * meets it waits at most for the consumer's next release, and a real
 * backlog (more than a third of the ring) never wraps early, so it gets
 * the whole capacity.
 */
static bool wrap_early(const struct queue *q, size_t need)
{
	size_t queued = q->tail - q->head;
	return q->tail >= TRIM_KEEP && !q->blocking && q->head >= need &&
	       (q->head - need) / 2 >= queued;
}

/*
 * Finds room for `need` bytes at the tail; returns the offset or NONE.
 * The ring is empty iff used == 0; with used > 0 and tail == head it is
 * full. When an entry does not fit before the end, the rest of the ring
 * becomes waste (counted in used, marked WRAP if a header fits there) and
 * the entry starts at 0. Called locked, by the single producer.
 */
#define NONE ((size_t)-1)
static size_t reserve_locked(struct queue *q, size_t need)
{
	if (q->used == 0) {
		q->head = q->tail = 0;
		return need <= q->cap ? 0 : NONE;
	}
	if (q->tail > q->head) {
		/* free space: [tail, cap) and [0, head) */
		if (!wrap_early(q, need) && q->cap - q->tail >= need)
			return q->tail;
		if (q->head < need)
			return NONE;
		if (q->cap - q->tail >= sizeof(struct hdr))
			((struct hdr *)(q->ring + q->tail))->total = WRAP;
		q->used += q->cap - q->tail;
		q->waste = q->cap - q->tail; /* one at a time: the next wrap needs head past it */
		q->tail = 0;
		return 0;
	}
	/* free space: [tail, head) */
	return q->head - q->tail >= need ? q->tail : NONE;
}

int queue_push(struct queue *q, const char *topic, size_t topic_len, const void *payload,
	       size_t payload_len, int64_t received_ms)
{
	size_t need = entry_size(topic_len, payload_len);
	size_t at;

	if (need > q->cap / 2 || topic_len > UINT32_MAX / 2 || payload_len > UINT32_MAX / 2)
		return SP_ETOOBIG;
	pthread_mutex_lock(&q->lock);
	bool waited = false;
	while (!q->closed && (at = reserve_locked(q, need)) == NONE) {
		if (!waited) {
			q->blocked++;
			waited = true;
		}
		if (!q->blocking) {
			q->blocking = true;
			SP_INFO("queue", "%s queue full (%zu messages, %zu bytes): holding %s back "
					 "until the writer catches up",
				q->name, q->depth, q->used - q->waste, q->holds);
		}
		pthread_cond_wait(&q->not_full, &q->lock);
	}
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return SP_ECLOSED;
	}
	/* claim the space; the copy below happens unlocked */
	q->tail = at + need;
	if (at + need > q->high_water)
		q->high_water = at + need;
	if (q->tail == q->cap)
		q->tail = 0;
	q->used += need;
	q->reserved++;
	pthread_mutex_unlock(&q->lock);

	struct hdr *h = (struct hdr *)(q->ring + at);
	h->total = (uint32_t)need;
	h->topic_len = (uint32_t)topic_len;
	h->payload_len = (uint32_t)payload_len;
	h->pad = 0;
	h->received_ms = received_ms;
	char *p = (char *)(h + 1);
	memcpy(p, topic, topic_len);
	p[topic_len] = '\0';
	memcpy(p + topic_len + 1, payload, payload_len);

	pthread_mutex_lock(&q->lock);
	q->reserved--;
	q->depth++;
	q->pushed++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

size_t queue_peek(struct queue *q, struct queue_msg *out, size_t max, int timeout_ms)
{
	size_t n, pos;

	pthread_mutex_lock(&q->lock);
	if (q->depth == 0 && !q->closed && timeout_ms > 0) {
		struct timespec until = sp_mono_deadline(timeout_ms);
		while (q->depth == 0 && !q->closed &&
		       pthread_cond_timedwait(&q->not_empty, &q->lock, &until) == 0)
			;
	}
	n = q->depth < max ? q->depth : max;
	pos = q->head;
	pthread_mutex_unlock(&q->lock);

	/* entries [head, head + n) are complete and stay put until released */
	for (size_t i = 0; i < n; i++) {
		struct hdr *h = (struct hdr *)(q->ring + pos);
		if (q->cap - pos < sizeof(struct hdr) || h->total == WRAP) {
			pos = 0;
			h = (struct hdr *)q->ring;
		}
		const char *p = (const char *)(h + 1);
		out[i].topic = p;
		out[i].topic_len = h->topic_len;
		out[i].payload = p + h->topic_len + 1;
		out[i].payload_len = h->payload_len;
		out[i].received_ms = h->received_ms;
		pos += h->total;
		if (pos == q->cap)
			pos = 0;
	}
	return n;
}

void queue_release(struct queue *q, size_t n)
{
	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < n && q->depth > 0; i++) {
		struct hdr *h = (struct hdr *)(q->ring + q->head);
		if (q->cap - q->head < sizeof(struct hdr) || h->total == WRAP) {
			q->used -= q->cap - q->head;
			q->waste = 0;
			q->head = 0;
			h = (struct hdr *)q->ring;
		}
		q->used -= h->total;
		q->head += h->total;
		if (q->head == q->cap)
			q->head = 0;
		q->depth--;
	}
	if (q->depth == 0 && q->reserved == 0) {
		/* empty: any trailing wrap waste is free again */
		q->used = q->waste = 0;
		q->head = q->tail = 0;
		trim_locked(q);
	}
	if (q->blocking && q->used - q->waste < q->cap / 2) {
		q->blocking = false;
		SP_INFO("queue", "%s queue drained below half: %s runs at full speed again", q->name,
			q->holds);
	}
	pthread_cond_signal(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

void queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

void queue_get_stats(struct queue *q, struct queue_stats *out)
{
	pthread_mutex_lock(&q->lock);
	out->depth = q->depth;
	out->bytes = q->used - q->waste; /* held by messages: an early wrap's skip is not use */
	out->cap_bytes = q->cap;
	out->pushed = q->pushed;
	out->blocked = q->blocked;
	pthread_mutex_unlock(&q->lock);
}
