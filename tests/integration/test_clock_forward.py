#!/usr/bin/env python3
"""The collector's wall clock set forward (NTP correcting a clock that ran
behind, or a host resumed from a pause) by an hour (libfaketime, its
monotonic clock left alone):

  (1) an agent's open sequence gap (seq 2 lost, 3 stored) is not declared
      missing by the step: its window counts real time, so the ack stays
      below the gap (the agent keeps seq 2 in its spool), and when seq 2
      comes the ack passes the gap with nothing counted missing;
  (2) devices that keep reporting open no offline alert (one every second,
      one every 4 s, longer than the liveness flush): every silence
      measured on the wall clock looks an hour longer at the step, so the
      offline sweep waits device_offline_s for them to be heard again,
      while a device really silent still gets its alert after that wait (chg-2,
      once it stops after the step);
  (3) a rule's hold runs in real time across the step: a port charging for a
      minute does not pass port.long_session's 20-minute hold;
  (4) the collector logs the step.

Before the fix the gap was declared missing at the first tick after the step
(ack 3, sitepulse_messages_missing_total 1) and the next sweep opened a
gateway.offline alert for the gateway that sent every second (its last
message an hour old by the new clock; checked), and port.long_session opened
at the first tick after the step.
"""
import os
import sys
import json
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE = "fwd-1"
AGENT, DEVICES = "gw-fwd", ["chg-1", "chg-2", "chg-3"]  # chg-3 falls silent
GAP_AGENT = "gw-gap"
OFFLINE_S = 10
GAP_WINDOW_S = 300  # long against the test, short against the step
STEP_S = 3600
SESSION_HOLD_S = 1200  # port.long_session's hold: far longer than the test, shorter than the step


def chargers(devs):
    return [{"t": "station", "dev": d, "ts": T.now_ms(), "smoke": False, "power_w": 0,
             "energy_wh": 0} for d in devs]


def offline_alerts(coll):
    """The site's offline alerts by dev (a gateway's dev is its agent id)."""
    return {a["dev"]: a for a in coll.api_ok("/api/v1/alerts", {"site": SITE, "state": "all"})
            if a["rule"] in ("charger.offline", "gateway.offline")}


CHG2_EVERY_S = 4
chg2_sent = [0.0]


def send_reporting(fake, with_chg2=True):
    """chg-1 every call (about a second), chg-2 every CHG2_EVERY_S by the clock: inside
    device_offline_s, but longer than the collector's liveness flush (a second at
    device_offline_s 10), so after the step its stored arrival is an hour old by the new
    clock for seconds."""
    devs = ["chg-1"]
    if with_chg2 and time.monotonic() - chg2_sent[0] >= CHG2_EVERY_S:
        devs.append("chg-2")
        chg2_sent[0] = time.monotonic()
    # chg-1's port 1 charges throughout: port.long_session's hold runs
    fake.send(chargers(devs) + [{"t": "port", "dev": "chg-1", "ts": T.now_ms(), "port": 1,
                                 "state": "charging", "w": 500, "temp_c": 30.0}])


def data(seq, devs):
    return json.dumps({"v": 1, "seq": seq, "ts": T.now_ms(), "records": chargers(devs)},
                        separators=(",", ":"))


def main(env):
    fake_env, clock_file = T.faketime_env(env, 0)
    broker = env.broker()
    coll = env.collector(broker, env_vars=fake_env, extra={
        "store": {"device_offline_s": OFFLINE_S, "gap_window_s": GAP_WINDOW_S},
        "rule.port.long_session": {"hold_s": SESSION_HOLD_S}})
    fake = T.FakeGateway(broker, SITE, AGENT)
    fake.birth([{"dev": d, "kind": "charger", "ports": 2, "port_limit_w": 1000} for d in DEVICES])
    fake.state(True)
    gap = T.FakeGateway(broker, SITE, GAP_AGENT)
    gap.birth([{"dev": "chg-9", "kind": "charger", "ports": 2, "port_limit_w": 1000}])
    gap.state(True)
    T.wait_until(lambda: len(coll.api_ok("/api/v1/devices", {"site": SITE})) == len(DEVICES) + 1,
                 15, "the births' devices")

    T.log("(1) gw-gap: seq 1 acked, seq 2 lost, seq 3 stored: a gap at 2")
    gap.send(chargers(["chg-9"]))
    stored0 = coll.metrics().get("sitepulse_messages_stored_total", 0)
    T.publish_ok(broker, gap.topic("data"), data(3, ["chg-9"]))
    T.wait_until(lambda: coll.metrics().get("sitepulse_messages_stored_total", 0) > stored0, 10,
                 "seq 3 stored")
    T.check(gap.ack()["seq"] == 1, "the ack stays below the gap: %r" % gap.ack())

    T.log("(2) the link settles (device_offline_s); chg-3 falls silent and is alerted")
    settle_end = time.time() + OFFLINE_S + 2
    while time.time() < settle_end:
        fake.send(chargers(DEVICES))
        time.sleep(1.0)
    deadline = time.time() + OFFLINE_S + 15
    while time.time() < deadline and "chg-3" not in offline_alerts(coll):
        send_reporting(fake)
        time.sleep(1.0)
    T.check("chg-3" in offline_alerts(coll), "chg-3's charger.offline alert before the step")
    T.check(not {"chg-1", "chg-2", AGENT} & set(offline_alerts(coll)),
            "no alert for the gateway and chargers that report")

    T.log("(3) the collector's clock set %d s forward; chg-1 and chg-2 keep reporting" % STEP_S)
    with open(clock_file, "w") as f:
        f.write("+%d\n" % STEP_S)
    step_end = time.time() + OFFLINE_S + 6  # past the sweep's new wait, with sweeps after it
    while time.time() < step_end:
        send_reporting(fake)
        time.sleep(1.0)
    ack = fake.ack()  # gw-fwd's moves with every message
    T.check(abs(ack["ts"] / 1000.0 - time.time() - STEP_S) < 60,
            "the collector's acks carry the clock set forward: %r" % ack)
    alerts = offline_alerts(coll)
    T.check(not {"chg-1", "chg-2", AGENT} & set(alerts),
            "no offline alert for the gateway and chargers that kept reporting through the "
            "step: %r" % sorted(alerts))
    sessions = [a for a in coll.api_ok("/api/v1/alerts", {"site": SITE, "state": "all"})
                if a["rule"] == "port.long_session"]
    T.check(not sessions, "chg-1's port has charged for under a minute, not past its %d s "
            "hold: no port.long_session alert (%r)" % (SESSION_HOLD_S, sessions))
    T.check(gap.ack()["seq"] == 1, "the gap is still open after the step: ack %r" % gap.ack())
    T.check(coll.metrics().get("sitepulse_messages_missing_total", 0) == 0,
            "nothing declared missing by the step")
    T.check(("the collector's clock was set forward %d s" % STEP_S) in coll.proc.log_text(),
            "the collector's log line on the step")

    T.log("(4) chg-2 falls silent after the step: its alert comes after the sweep's wait")
    T.wait_until(lambda: (send_reporting(fake, with_chg2=False) or True)
                 and "chg-2" in offline_alerts(coll), OFFLINE_S + 20,
                 "chg-2's charger.offline alert after the step", interval=1.0)
    T.check(AGENT not in offline_alerts(coll), "its gateway, still reporting, is not alerted")

    T.log("(5) seq 2 comes: the ack passes the gap, nothing counted missing")
    T.publish_ok(broker, gap.topic("data"), data(2, ["chg-9"]))
    T.wait_until(lambda: (gap.ack() or {}).get("seq") == 3, 10, "the ack at 3")
    T.check(coll.metrics().get("sitepulse_messages_missing_total", 0) == 0,
            "sitepulse_messages_missing_total stays 0")
    rc, _ = coll.terminate()
    T.check(rc == 0, "the collector exits 0")


if __name__ == "__main__":
    T.run(main)
