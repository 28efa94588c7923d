/*
 * agentseen.h - when each agent was last heard, and which of those notes
 * the writer must write to the agents' rows (store_w_agent_seen: last_seen,
 * online, up_since) at its next liveness flush.
 *
 * The writer flushes liveness twice over: every second the *urgent* notes,
 * and with the devices' liveness (every device_seen_flush_ms, 1-10 s, and
 * always before the offline sweep reads the rows) all of them. A note is
 * urgent when the row may show something else than "online, heard
 * recently": the agent not written since start, a state message of it
 * handled since its last write (its row may say offline: data now sets it
 * online), or its first message after a silence longer than the slow
 * period (its up_since may restart). An agent that keeps sending is
 * written once per slow period instead of once a second: with thousands
 * of gateways that UPDATE per agent was a cost per message
 * (docs/performance.md item 51). The API reads only `online` of the
 * agents' rows; last_seen and up_since are read by the offline sweep.
 *
 * Entries live as long as the writer (one per agent heard: ~50 bytes);
 * an index finds an agent's in constant time however many there are.
 * Pure; owned by the writer thread.
 */
#ifndef SP_COLLECTOR_AGENTSEEN_H
#define SP_COLLECTOR_AGENTSEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agentseen;

/* slow_ms: the period of the flush of all notes (a silence longer than it makes a note urgent). */
struct agentseen *agentseen_create(int64_t slow_ms);
void agentseen_destroy(struct agentseen *s);

/* A message of the agent arrived at received_ms (the collector's clock). 0 or SP_ENOMEM. */
int agentseen_note(struct agentseen *s, int64_t agent_id, int64_t received_ms);

/* A state message of the agent was handled: its next note is urgent. */
void agentseen_state_changed(struct agentseen *s, int64_t agent_id);

typedef int (*agentseen_write_fn)(void *ctx, int64_t agent_id, int64_t received_ms);

/*
 * Writes the notes due (all, or only the urgent ones) through fn, inside
 * the caller's transaction, and remembers them as written by it. Returns 0
 * or fn's first error (then the caller rolls back: agentseen_aborted).
 */
int agentseen_write(struct agentseen *s, bool all, agentseen_write_fn fn, void *ctx);

/* The transaction of the last agentseen_write committed: those notes are written. */
void agentseen_committed(struct agentseen *s);
/* It rolled back: those notes stay due. */
void agentseen_aborted(struct agentseen *s);

/*
 * The collector's wall clock was set back by back_ms: arrivals noted or
 * written after now_ms (stamped while it ran ahead) move back as much, as
 * the store's did (store_w_clock_set_back).
 */
void agentseen_clock_set_back(struct agentseen *s, int64_t now_ms, int64_t back_ms);

/* Notes not yet written, and how many of them are urgent. */
size_t agentseen_pending(const struct agentseen *s);
size_t agentseen_urgent(const struct agentseen *s);

#endif
