/*
 * backoff.h - the reconnect delay of sp_mqtt (mqtt.c), as a pure function
 * of what happened: no clock, no Paho, no jitter (mqtt.c adds +-25 %).
 *
 * The delay doubles from min_ms to max_ms with each failed connect. A
 * connection that was lost is treated by how long it had been up:
 *  - at least BACKOFF_STABLE_MS: the broker accepted and kept us, the loss
 *    is news (a restart, a cut link): the next connect waits min_ms, and
 *    the delay grows from there if it fails;
 *  - less: it counts as one more failed connect, and the delay keeps
 *    growing. A broker that drops us right after its CONNACK does so again
 *    on the next connect: another client with our client id (a copied
 *    configuration, an old process still alive) takes the session over at
 *    each of its connects and both sides would otherwise reconnect every
 *    min_ms, flooding the broker and both logs (a "session takeover" loop);
 *    so does a broker refusing us after the CONNACK (an ACL).
 * Only a connection that stayed up BACKOFF_STABLE_MS resets the delay.
 *
 * Not thread-safe: mqtt.c calls it under its lock.
 */
#ifndef SP_MQTT_BACKOFF_H
#define SP_MQTT_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/*
 * How long a connection must have stayed up for its loss to reset the delay.
 * A takeover by a same-id client comes within that client's reconnect delay
 * (0.5 s at first), long before; a link that dies on its own is noticed only
 * after 1.5 keepalives (45 s by default), long after. 10 s also lets the
 * growing delay of two same-id clients pass it quickly (0.5+1+2+4+8 s): from
 * then on each stays up about as long as the other waits (max_ms).
 */
#define BACKOFF_STABLE_MS 10000

struct backoff {
	int64_t min_ms, max_ms;
	int64_t next_ms; /* the delay the next failure waits */
};

void backoff_init(struct backoff *b, int64_t min_ms, int64_t max_ms);

/* A connect attempt failed: returns the delay until the next one (then grows). */
int64_t backoff_failed(struct backoff *b);

/*
 * The connection, up for up_ms, was lost: returns the delay until the next
 * connect. *short_lived (may be NULL) is set when it was up for less than
 * BACKOFF_STABLE_MS and so counted as a failed connect.
 */
int64_t backoff_lost(struct backoff *b, int64_t up_ms, bool *short_lived);

#endif
