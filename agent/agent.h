/*
 * agent.h - one site gateway: simulator -> data messages -> spool -> MQTT,
 * with end-to-end acknowledgement (CONTRACT §3.4).
 *
 * The agent's main loop runs on the calling thread (agent_run) and owns
 * the simulator, the spool and all MQTT calls. Paho's receive thread only
 * stores the latest ack seq (an atomic) and queues commands (a bounded,
 * locked ring); see agent.c.
 */
#ifndef SP_AGENT_AGENT_H
#define SP_AGENT_AGENT_H

#include <signal.h>

#include "agent_conf.h"

struct agent;

/*
 * Creates the agent from a loaded configuration (borrowed for the agent's
 * life). NULL on failure.
 */
struct agent *agent_create(const struct agent_conf *conf);

/*
 * Runs until *stop becomes non-zero, then flushes pending records to the
 * spool, says goodbye (retained state offline) and disconnects. A spool
 * that refuses appends meanwhile (a full disk) is retried every tick, with
 * the records held in memory. Returns 0, or SP_EIO when the records held
 * at the end could not be spooled (they are lost; logged).
 */
int agent_run(struct agent *a, volatile sig_atomic_t *stop);

void agent_destroy(struct agent *a);

#endif
