#!/usr/bin/env python3
"""
test_store_flap.py - a store that keeps failing and recovering does not turn
offline alerting off (collector/writer.c hold_sweeps).

After each recovery the offline sweep waits device_offline_s (the failed
batches' arrivals were dropped: test_store_outage.py). A store failing more
often than that, as here, used to extend the wait for good: no dead device
was ever alerted. Now recoveries extend one wait for 2 x device_offline_s at
most. With [store] device_offline_s = 10 and lift.offline held 2 s:
  - a fake gateway with lift-1 and lift-2; lift-1 reports every 2 s (its
    messages are not held back for acks), lift-2 once at the start: it is
    dead;
  - after the link settled, another connection holds the database's write
    lock 8 s of every 10 (longer than the collector's 5 s busy timeout:
    batches fail), for at most 80 s;
  - lift.offline must open for lift-2 meanwhile (within ~3 x 10 s of the
    first recovery, plus a cycle), with the WARN that the alerts are judged
    again; none for lift-1, no gateway.offline (the gateway's staleness after
    an outage stays below device_offline_s).
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE, AGENT = "flap-1", "gw-1"
OFFLINE_S = 10
HOLD_S = 2
EVERY_S = 2
LOCKED_S, FREE_S = 8, 2
FLAP_MAX_S = 80


def offline_alerts(coll):
    return [(a["rule"], a["dev"]) for a in coll.api_ok("/api/v1/alerts", {"limit": 100})
            if a["rule"].endswith(".offline")]


class Sender:
    """The gateway: lift-1's record every EVERY_S, published without waiting for acks."""

    def __init__(self, gw):
        self.gw = gw
        self.next = 0.0

    def tick(self):
        if time.monotonic() < self.next:
            return
        self.next = time.monotonic() + EVERY_S
        self.gw.publish([T.idle_lift("lift-1", T.now_ms())])

    def for_s(self, s):
        end = time.monotonic() + s
        while time.monotonic() < end:
            self.tick()
            time.sleep(0.2)


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={
        "store": {"device_offline_s": OFFLINE_S},
        "rule.gateway.offline": {"hold_s": HOLD_S},
        "rule.lift.offline": {"hold_s": HOLD_S},
    })
    gw = T.FakeGateway(broker, SITE, AGENT)
    gw.birth([{"dev": d, "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}
              for d in ("lift-1", "lift-2")])
    gw.state(True)
    gw.send([T.idle_lift("lift-2", T.now_ms())])  # lift-2's only reading
    sender = Sender(gw)
    T.log("step: lift-1 reports every %d s while the link settles" % EVERY_S)
    sender.for_s(OFFLINE_S + 2)

    T.log("step: the write lock held %d s of every %d, for at most %d s"
          % (LOCKED_S, LOCKED_S + FREE_S, FLAP_MAX_S))
    log_at = len(coll.proc.log_text())
    failed0 = coll.metrics()["sitepulse_batches_failed_total"]
    t0 = time.monotonic()
    found = []
    cycles = 0
    while time.monotonic() < t0 + FLAP_MAX_S and not found:
        lock = sqlite3.connect(coll.db_path, timeout=10, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")
            sender.for_s(LOCKED_S)
            lock.execute("ROLLBACK")
        finally:
            lock.close()
        cycles += 1
        sender.for_s(FREE_S)
        found = offline_alerts(coll)
    took = time.monotonic() - t0
    T.log("after %d lock cycles (%.0f s): offline alerts %s" % (cycles, took, found))
    failed = coll.metrics()["sitepulse_batches_failed_total"] - failed0
    T.check(failed >= cycles, "batches must fail under the lock (%d failed in %d cycles)"
            % (failed, cycles))
    T.check_eq(found, [("lift.offline", "lift-2")],
               "offline alerts while the store keeps failing (lift-2 is dead; the old collector "
               "held every sweep back for as long as the store kept recovering)")
    T.check("offline alerts were held" in coll.proc.log_text()[log_at:],
            "the WARN that offline alerts are judged again although the store keeps failing")
    sender.for_s(3)
    T.check_eq(offline_alerts(coll), [("lift.offline", "lift-2")], "offline alerts at the end")


if __name__ == "__main__":
    T.run(main)
