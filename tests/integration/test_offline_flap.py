#!/usr/bin/env python3
"""
test_offline_flap.py - a dead device behind a gateway whose link drops briefly
and often (docs/alerts.md "Offline"): each return starts the devices' grace
for the gateway's spooled readings, but a device already silent for
device_offline_s when the drop began has nothing in any spool, and is
alerted all the same.

[store] device_offline_s = 10, [rule.lift.offline] hold_s = 2,
[rule.gateway.offline] hold_s = 4. One fake gateway (mosquitto_pub): lift-1
reports every second, lift-2 once at the start and never again; every 5 s
its state says offline (its will) and, half a second later, online. Before
the fix each return restarted the grace, so lift-2 was never alerted (and
each drop is far shorter than the gateway's hold). Want: one lift.offline
for lift-2, opened ~device_offline_s + hold_s after its reading; none for
lift-1; no gateway.offline.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE, AGENT = "flap-1", "gw-flap"
OFFLINE_S = 10
LIFT_HOLD_S = 2
GATEWAY_HOLD_S = 4
FLAP_EVERY_S = 5
DOWN_S = 0.5
RUN_S = 32


def offline_alerts(coll):
    return sorted((a["rule"], a["dev"]) for a in
                  coll.api_ok("/api/v1/alerts", {"site": SITE, "limit": 1000})
                  if a["rule"].endswith(".offline"))


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={
        "store": {"device_offline_s": OFFLINE_S},
        "rule.lift.offline": {"hold_s": LIFT_HOLD_S},
        "rule.gateway.offline": {"hold_s": GATEWAY_HOLD_S},
    })
    gw = T.FakeGateway(broker, SITE, AGENT)
    gw.birth([{"dev": d, "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}
              for d in ("lift-1", "lift-2")])
    gw.state(True)
    T.wait_until(lambda: len(coll.api_ok("/api/v1/devices", {"site": SITE})) == 2, 15,
                 "the birth's two lifts")
    _, lift2_acked = gw.send([T.idle_lift("lift-1", T.now_ms()),
                              T.idle_lift("lift-2", T.now_ms())])

    T.log("step: lift-1 every second, lift-2 silent; offline/online every %d s for %d s"
          % (FLAP_EVERY_S, RUN_S))
    want = [("lift.offline", "lift-2")]
    t0 = time.monotonic()
    next_flap = t0 + FLAP_EVERY_S
    flaps, opened_after = 0, None
    while time.monotonic() - t0 < RUN_S:
        gw.send([T.idle_lift("lift-1", T.now_ms())])
        if time.monotonic() >= next_flap:
            gw.state(False)
            time.sleep(DOWN_S)
            gw.state(True)
            flaps += 1
            next_flap += FLAP_EVERY_S
        got = offline_alerts(coll)
        T.check(set(got) <= set(want), "only lift-2's lift.offline, ever: %r" % got)
        if got and opened_after is None:
            opened_after = time.monotonic() - t0
            T.log("lift-2's alert seen %.1f s into the flapping (after %d drops)"
                  % (opened_after, flaps))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0) % 1.0))
    T.check(flaps >= RUN_S // FLAP_EVERY_S - 1, "the gateway dropped %d times" % flaps)
    got = offline_alerts(coll)
    T.check_eq(got, want, "offline alerts after %d drops of the gateway" % flaps)
    alert = [a for a in coll.api_ok("/api/v1/alerts", {"site": SITE, "limit": 1000})
             if a["rule"] == "lift.offline"][0]
    T.check(alert["cleared_at"] is None, "lift-2's alert still active: %r" % alert)
    T.check("no reading for" in alert["detail"] and AGENT in alert["detail"],
            "lift.offline detail: %r" % alert["detail"])
    # dated from the reading's arrival (shortly before its ack; heard may be
    # rounded up to the second) + device_offline_s + hold_s
    latest = lift2_acked + 1000 + (OFFLINE_S + LIFT_HOLD_S) * 1000
    T.check(latest - 4000 <= alert["opened_at"] <= latest,
            "lift.offline opened_at %d: lift-2's reading (acked %d) + device_offline_s + hold_s"
            % (alert["opened_at"], lift2_acked))


if __name__ == "__main__":
    T.run(main)
