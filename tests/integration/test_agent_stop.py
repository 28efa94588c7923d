#!/usr/bin/env python3
"""
test_agent_stop.py - an orderly stop of the agent always leaves its retained
state offline (docs/protocol.md, State; CONTRACT §7), even when its in-flight
window is full.

The agent reaches the broker through a TcpProxy with a small window
([mqtt] max_inflight = 4) and no collector (it publishes after ack_wait_s).
Once it publishes, the proxy holds everything the broker sends back: no
PUBACK reaches the agent, so its window fills and stays full - as with a
backlog on a slow uplink. Then SIGTERM:
  - the agent exits 0 within 5 s;
  - the retained state is the agent's own {"online":false,"ts":...} (a ts:
    not the Will, which has none): the offline state went out although the
    data window was full, and the DISCONNECT after it (which discards the
    Will) did not overtake it.
Before the fix the offline state got SP_EBUSY from the full window, was
never sent, and the clean DISCONNECT discarded the Will: the broker kept
{"online":true} for good.
"""
import json

import sptest as T

SITE, AGENT = "stop-ag", "gw-1"


def state(broker):
    raw = T.retained(broker, "sp/v1/%s/%s/state" % (SITE, AGENT))
    return None if raw is None else json.loads(raw.decode("utf-8"))


def main(env):
    broker = env.broker()
    proxy = T.TcpProxy(env, broker.port)
    ag = env.agent(broker, SITE, AGENT, uri=proxy.uri, ack_wait_s=1,
                   extra={"mqtt": {"max_inflight": 4}})

    T.log("step: the agent connects and publishes (no collector: after ack_wait_s)")
    T.wait_until(lambda: (state(broker) or {}).get("online") is True, 15,
                 "the agent's retained state online:true")
    T.wait_until(lambda: ag.created() >= 10, 20, "10 data messages created")

    T.log("step: hold every PUBACK: the agent's window fills and stays full")
    proxy.hold_down()
    held_at = ag.created()
    T.wait_until(lambda: ag.created() >= held_at + 8, 20,
                 "8 more data messages created while the window is full")

    T.log("step: SIGTERM")
    stopped_at = T.now_ms()
    rc, el = ag.terminate()
    T.check(rc == 0, "agent: SIGTERM -> exit 0 expected, got %s" % rc)
    T.check(el <= 5.0, "agent: SIGTERM must end it within 5 s, took %.2f s" % el)

    # the broker publishes a Will at once when it sees the connection go; give it time
    def offline():
        s = state(broker)
        return s is not None and s.get("online") is False
    T.wait_until(offline, 5, "the retained state online:false after the stop")
    s = state(broker)
    T.check(s is not None and s.get("online") is False,
            "retained state after the stop: %s, want online:false (the offline state "
            "must go out even with a full window)" % s)
    T.check(isinstance(s.get("ts"), int) and s["ts"] >= stopped_at - 1000,
            "retained state after the stop: %s: want the agent's own offline state, "
            "stamped at the stop (the Will has no ts)" % s)
    # the old agent fails the checks above only if the stop met a full window: make sure it did
    T.check("has not acknowledged our offline state" in ag.proc.log_text(),
            "the stop ran with the broker's PUBACKs held (the agent says so)")


if __name__ == "__main__":
    T.run(main)
