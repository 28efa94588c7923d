#!/usr/bin/env python3
"""
test_agent_dupid.py - two agents with one MQTT client id (a copied
configuration on a second gateway, or an old process still alive) do not
flap as fast as they can (mqtt/backoff.h).

The broker closes the older connection each time the other connects. Each
such loss, coming right after the connect, counts as a failed connect: the
reconnect delay grows (0.5, 1, 2, 4, 8 s ...) instead of starting over at
0.5 s. A real mosquitto and two agents: after a first SETTLE_S seconds, the
connects in both logs together in the next WATCH_S seconds stay far below
the old behaviour's (each agent reconnected ~1.7 s after each loss, half a
second of delay plus Paho's connect: about 12 connects in 20 s), and the
cause is logged as a likely duplicate client id, at most once a minute per
agent.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SETTLE_S = 10
WATCH_S = 20
# by then the delays are ~8 s and more: 4-6 connects in all, where the old behaviour made ~12
MAX_CONNECTS = 8
SAID = "another client with the same client id"


def connects(agent):
    return agent.proc.log_text().count("connected as ")


def main(env):
    broker = env.broker()
    extra = {"mqtt": {"client_id": "sitepulse-agent-dupid-gw-1"}}
    first = env.agent(broker, "dupid", "gw-1", extra=extra, name="agent-dupid-first")
    T.wait_until(lambda: connects(first) >= 1, 15, "the first agent to connect")
    second = env.agent(broker, "dupid", "gw-1", seed=2, extra=extra, name="agent-dupid-second")
    T.wait_until(lambda: connects(second) >= 1, 15, "the second agent to connect")
    time.sleep(SETTLE_S)
    s1, s2 = connects(first), connects(second)
    T.log("in the first %d s: the first agent connected %d times, the second %d times"
          % (SETTLE_S, s1, s2))
    time.sleep(WATCH_S)
    n1, n2 = connects(first) - s1, connects(second) - s2
    T.log("in the next %d s: the first agent connected %d times, the second %d times"
          % (WATCH_S, n1, n2))
    T.check(n1 + n2 <= MAX_CONNECTS,
            "two agents with one client id connected %d times in %d s (at most %d expected; "
            "the old behaviour: one connect every ~3.4 s each)" % (n1 + n2, WATCH_S, MAX_CONNECTS))
    T.check(n1 + n2 >= 1, "the agents keep trying (%d, %d)" % (n1, n2))
    for a in (first, second):
        said = a.proc.log_text().count(SAID)
        T.check(said == 1, "%s: the likely duplicate id said once (within a minute), %d times"
                % (a.name, said))
    for a in (first, second):
        rc, el = a.terminate()
        T.check(rc == 0, "%s: exit status %s" % (a.name, rc))


if __name__ == "__main__":
    T.run(main)
