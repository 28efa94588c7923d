#!/usr/bin/env python3
"""
test_gateway_seen.py - when a gateway's liveness reaches its row in the agents
table (collector/agentseen.h; docs/architecture.md, "Liveness").

With [store] device_offline_s = 60 the slow liveness flush runs every 6 s
(device_offline_s / 10). One fake gateway (mosquitto_pub), every message
waiting for its ack:
  (1) it sends every ~0.3 s for 13 s: its row's last_seen is written at once
      for its first message, then only with the slow flush (a handful of
      distinct values, not one a second) and never trails its newest message
      by more than the period;
  (2) three times: its state says offline (its will), then data arrives with no
      state of its own: its devices are online again in /api/v1/devices within
      2.5 s of the ack, not at the slow flush;
  (3) twice: silent for longer than the period, then one message: last_seen is
      that message's arrival within 2.5 s of the ack.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE, AGENT, DEV = "seen-1", "gw-seen", "lift-1"
OFFLINE_S = 60
SLOW_MS = OFFLINE_S * 100
PROMPT_S = 2.5


def last_seen(coll):
    db = T.db_open_ro(coll.db_path)
    try:
        row = db.execute("SELECT last_seen FROM agents WHERE site = ? AND agent = ?",
                         (SITE, AGENT)).fetchone()
    finally:
        db.close()
    return row[0] if row else 0


def lift_online(coll):
    devs = coll.api_ok("/api/v1/devices", {"site": SITE})
    return any(d["dev"] == DEV and d["online"] for d in devs)


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={"store": {"device_offline_s": OFFLINE_S}})
    gw = T.FakeGateway(broker, SITE, AGENT)
    gw.birth([{"dev": DEV, "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}])
    gw.state(True)
    T.wait_until(lambda: len(coll.api_ok("/api/v1/devices", {"site": SITE})) == 1, 15,
                 "the birth's lift")

    T.log("(1) a gateway that keeps sending: written at once, then with the slow flush")
    first_sent, _ = gw.send([T.idle_lift(DEV, T.now_ms())])
    T.wait_until(lambda: last_seen(coll) >= first_sent, PROMPT_S,
                 "the first message's last_seen within %.1f s of its ack" % PROMPT_S)
    values, sent_count, worst_lag = set(), 0, 0
    end = time.time() + 13
    while time.time() < end:
        gw.send([T.idle_lift(DEV, T.now_ms())])
        sent_count += 1
        time.sleep(0.3)
        seen = last_seen(coll)
        values.add(seen)
        # what it trails is the newest message the slow flush before this poll had
        worst_lag = max(worst_lag, T.now_ms() - seen)
    T.log("distinct last_seen values in 13 s: %d; the largest lag behind a poll %d ms"
          % (len(values), worst_lag))
    T.check(2 <= len(values) <= 5,
            "last_seen written with the slow flush (every %d ms): %d distinct values in 13 s"
            % (SLOW_MS, len(values)))
    T.check(worst_lag <= SLOW_MS + 2500,
            "last_seen trails by at most the period: %d ms" % worst_lag)
    # more often than once a second, or the count above could not tell the two flushes apart
    T.check(sent_count >= 10, "the gateway sent %d messages in 13 s (want >= 10)" % sent_count)

    T.log("(2) offline by its state, then data without a state: online again at once")
    for attempt in range(3):
        gw.state(False)
        T.wait_until(lambda: not lift_online(coll), 10, "the lift offline with its gateway")
        _, acked = gw.send([T.idle_lift(DEV, T.now_ms())])
        T.wait_until(lambda: lift_online(coll), 10, "the lift online again")
        took = (T.now_ms() - acked) / 1000.0
        T.check(took <= PROMPT_S, "attempt %d: online %.1f s after the ack (want <= %.1f s)"
                % (attempt + 1, took, PROMPT_S))

    T.log("(3) back from a silence longer than the period: written at once")
    for attempt in range(2):
        time.sleep(SLOW_MS / 1000.0 + 1.0)
        sent, acked = gw.send([T.idle_lift(DEV, T.now_ms())])
        T.wait_until(lambda: last_seen(coll) >= sent, 10, "last_seen of the message after the silence")
        took = (T.now_ms() - acked) / 1000.0
        T.check(took <= PROMPT_S, "attempt %d: last_seen %.1f s after the ack (want <= %.1f s)"
                % (attempt + 1, took, PROMPT_S))


if __name__ == "__main__":
    T.run(main)
