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
  (4) the collector logs the step;
  (5) reminders run in real time across the step: chg-4's charger.smoke
      (critical), opened just before it and never acknowledged, gets no
      reminder from the step ([smtp] repeat_s 45), and its first when 45 s
      have really passed, once.

Before the fix the gap was declared missing at the first tick after the step
(ack 3, sitepulse_messages_missing_total 1) and the next sweep opened a
gateway.offline alert for the gateway that sent every second (its last
message an hour old by the new clock; checked), and port.long_session opened
at the first tick after the step, and chg-4's smoke alert was reminded at the
first check after the step (the wall clock said it had waited an hour).
"""
import os
import sys
import json
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import SmtpSink  # noqa: E402

SITE = "fwd-1"
# chg-3 falls silent; chg-4 has smoke from just before the step on
AGENT, DEVICES = "gw-fwd", ["chg-1", "chg-2", "chg-3", "chg-4"]
SMOKE_DEV = "chg-4"
smoking = set()
GAP_AGENT = "gw-gap"
OFFLINE_S = 10
GAP_WINDOW_S = 300  # long against the test, short against the step
STEP_S = 3600
SESSION_HOLD_S = 1200  # port.long_session's hold: far longer than the test, shorter than the step
REPEAT_S = 45  # [smtp] repeat_s: longer than the test runs after the step before (5)


def chargers(devs):
    return [{"t": "station", "dev": d, "ts": T.now_ms(), "smoke": d in smoking, "power_w": 0,
             "energy_wh": 0} for d in devs]


def reminders(smtp, alert):
    """The sink's reminder mails of alert: [(reminder number, arrival time.time())]."""
    head = "<sitepulse.alert.%d.reminder-" % alert["id"]
    tail = ".%d@%s.sitepulse>" % (alert["opened_at"], alert["site"])
    got = []
    for m in smtp.messages():
        mid = m["message"].get("Message-ID") or ""
        if mid.startswith(head) and mid.endswith(tail):
            got.append((int(mid[len(head):-len(tail)]), m["at"]))
    return got


def offline_alerts(coll):
    """The site's offline alerts by dev (a gateway's dev is its agent id)."""
    return {a["dev"]: a for a in coll.api_ok("/api/v1/alerts", {"site": SITE, "state": "all"})
            if a["rule"] in ("charger.offline", "gateway.offline")}


CHG2_EVERY_S = 4
chg2_sent = [0.0]


def send_reporting(fake, with_chg2=True):
    """chg-1 and chg-4 every call (about a second), chg-2 every CHG2_EVERY_S by the clock:
    inside device_offline_s, but longer than the collector's liveness flush (a second at
    device_offline_s 10), so after the step its stored arrival is an hour old by the new
    clock for seconds."""
    devs = ["chg-1", SMOKE_DEV]
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
    smtp = SmtpSink(env)
    broker = env.broker()
    coll = env.collector(broker, env_vars=fake_env, extra={
        "store": {"device_offline_s": OFFLINE_S, "gap_window_s": GAP_WINDOW_S},
        "rule.port.long_session": {"hold_s": SESSION_HOLD_S},
        "smtp": {"url": smtp.url, "to": "crew@fwd.example", "repeat_s": REPEAT_S,
                 "max_per_hour": 1000, "retry_min_s": 1, "retry_max_s": 2}})
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

    T.log("(3) smoke at %s, then the collector's clock set %d s forward; chg-1, chg-2 and "
          "chg-4 keep reporting" % (SMOKE_DEV, STEP_S))
    smoking.add(SMOKE_DEV)
    fake.send(chargers([SMOKE_DEV]))  # acked: its alert committed
    smoke = [a for a in coll.api_ok("/api/v1/alerts", {"site": SITE, "state": "active"})
             if a["rule"] == "charger.smoke"]
    T.check_eq([(a["dev"], a["severity"]) for a in smoke], [(SMOKE_DEV, "critical")],
               "charger.smoke alerts before the step")
    smoke = smoke[0]
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
    waited = time.time() - smoke["opened_at"] / 1000.0
    T.check(waited < REPEAT_S - 5, "the test reached this check %.1f s after the smoke "
            "opened: too late to tell a reminder due to the step from one due to time" % waited)
    T.check_eq(reminders(smtp, smoke), [], "reminders of %s's smoke alert %.1f s after it "
               "opened, the step included" % (SMOKE_DEV, waited))

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

    T.log("(6) %s's smoke alert, unacknowledged, is reminded once %d s have really passed"
          % (SMOKE_DEV, REPEAT_S))
    due = smoke["opened_at"] / 1000.0 + REPEAT_S
    T.check(not reminders(smtp, smoke) or time.time() >= due,
            "reminded before its time: %r (due %.1f, now %.1f)"
            % (reminders(smtp, smoke), due, time.time()))
    got = T.wait_until(lambda: (send_reporting(fake, with_chg2=False) or True)
                       and reminders(smtp, smoke), max(0.0, due - time.time()) + 20,
                       "the first reminder of %s's smoke alert" % SMOKE_DEV, interval=1.0)
    T.check_eq([n for n, _ in got], [1], "reminder numbers")
    T.check(got[0][1] >= due - 1, "reminder 1 arrived %.1f s after the alert opened, want %d"
            % (got[0][1] - smoke["opened_at"] / 1000.0, REPEAT_S))
    rc, _ = coll.terminate()
    T.check(rc == 0, "the collector exits 0")


if __name__ == "__main__":
    T.run(main)
