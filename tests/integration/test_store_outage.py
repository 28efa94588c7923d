#!/usr/bin/env python3
"""
test_store_outage.py - a store outage does not make gateways that kept
sending look offline (collector/writer.c recover()).

Every batch fails while another connection holds the database's write lock
(a backup tool, an administrator's sqlite3): the messages of those batches
are dropped, their arrivals with them, so the stored liveness of a gateway
that kept sending is as old as the outage. With [store] device_offline_s =
10 and gateway.offline / lift.offline held 2 s:
  - a fake gateway (one lift) sends every 3 s and is acked; the link settles;
  - the write lock is held for 16 s while it keeps sending (no acks come);
    it pauses for the last 4 s of the outage and the first 2 s after it;
  - after the lock is released it resends what no ack covered, as an agent
    does, and sends every 3 s again.
No offline alert may open: the collector waits device_offline_s after the
recovery before judging silences, as after a reconnect (the old collector
opened gateway.offline at the first sweep after the recovery, and its log
said "alert N opened" for batches that were then rolled back). The gateway's
messages after the outage are acked, and /healthz is 200 again.
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE, AGENT, DEV = "outage-1", "gw-1", "lift-1"
OFFLINE_S = 10
HOLD_S = 2
EVERY_S = 3
LOCK_S = 16
QUIET_BEFORE_S = 4  # the gateway's pause before the lock goes
QUIET_AFTER_S = 2   # and after
WATCH_S = 14        # after the release: beyond device_offline_s + hold


def offline_alerts(coll):
    return [a for a in coll.api_ok("/api/v1/alerts", {"limit": 100})
            if a["rule"].endswith(".offline")]


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={
        "store": {"device_offline_s": OFFLINE_S},
        "rule.gateway.offline": {"hold_s": HOLD_S},
        "rule.lift.offline": {"hold_s": HOLD_S},
    })
    gw = T.FakeGateway(broker, SITE, AGENT)
    gw.birth([{"dev": DEV, "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}])
    gw.state(True)

    T.log("step: the gateway sends every %d s until the link has settled (%d s)"
          % (EVERY_S, OFFLINE_S))
    end = time.monotonic() + OFFLINE_S + 3
    while time.monotonic() < end:
        gw.send([T.idle_lift(DEV, T.now_ms())])
        time.sleep(EVERY_S)
    T.check_eq(offline_alerts(coll), [], "offline alerts before the outage")
    failed0 = coll.metrics()["sitepulse_batches_failed_total"]

    T.log("step: another connection holds the write lock for %d s; the gateway keeps sending"
          % LOCK_S)
    log_at = len(coll.proc.log_text())
    lock = sqlite3.connect(coll.db_path, timeout=10, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        t_lock = time.monotonic()
        unacked = []
        while time.monotonic() < t_lock + LOCK_S - QUIET_BEFORE_S:
            # the collector cannot store it now: no ack awaited, kept to resend
            unacked.append(gw.publish([T.idle_lift(DEV, T.now_ms())]))
            time.sleep(EVERY_S)
        T.check(coll.metrics()["sitepulse_batches_failed_total"] > failed0,
                "batches must fail while the write lock is held")
        T.wait_until(lambda: coll.healthz() == 503, 10, "/healthz 503 while the store fails")
        time.sleep(max(0.0, t_lock + LOCK_S - time.monotonic()))
        lock.execute("ROLLBACK")
    finally:
        lock.close()
    t_free = time.monotonic()
    outage_log = coll.proc.log_text()[log_at:]
    T.log("step: the lock is released; the gateway is quiet %d s more, then sends every %d s"
          % (QUIET_AFTER_S, EVERY_S))
    T.wait_until(lambda: coll.healthz() == 200, 15, "/healthz 200 once the lock is gone")
    time.sleep(max(0.0, t_free + QUIET_AFTER_S - time.monotonic()))
    # as an agent does (its resend_s): what no ack covered, again, in seq order
    for payload in unacked:
        T.publish_ok(gw.broker, gw.topic("data"), payload)
    while time.monotonic() < t_free + WATCH_S:
        gw.send([T.idle_lift(DEV, T.now_ms())])
        time.sleep(EVERY_S)
        found = offline_alerts(coll)
        T.check(not found, "an offline alert for a gateway that kept sending through a store "
                "outage: %s" % [(a["rule"], a["dev"], a["detail"]) for a in found])
        if found:
            break
    T.check(" opened: " not in outage_log,
            "the collector logged alerts opened in batches that failed:\n%s"
            % "\n".join(l for l in outage_log.splitlines() if " opened: " in l)[:2000])
    T.check("offline alerts wait %d s" % OFFLINE_S in coll.proc.log_text()[log_at:],
            "the INFO line that the offline alerts wait after the recovery")


if __name__ == "__main__":
    T.run(main)
