#!/usr/bin/env python3
"""
test_clock_step.py - the collector's wall clock set back while it runs (NTP
correcting a clock that ran an hour ahead) stops neither its periodic work
nor its alert mail (docs/operations.md, "Clocks").

The collector runs under libfaketime (Debian's libfaketime, LD_PRELOAD): its
wall clock reads from a file the test rewrites, its monotonic clock is the
real one (DONT_FAKE_MONOTONIC). [store] device_offline_s = 10, mail to a
real SMTP server on loopback that first answers 451:
  (1) the collector's clock runs an hour ahead (its acks' ts say so); a
      gateway reports two chargers every second until the broker link has
      settled; then chg-2 falls silent: its charger.offline alert opens and
      its mail fails at least once (451);
  (2) the clock is set back the hour (the next acks' ts are right again);
  (3) the SMTP server accepts: the alert's mail, whose retry was scheduled by
      the clock an hour ahead, arrives within its backoff, not an hour later;
  (4) a second gateway, first heard after the step, reports two chargers,
      one of which falls silent: its charger.offline alert opens
      device_offline_s later (the liveness flushes and the offline sweep go
      on), and /healthz stays 200;
  (5) what was stamped while the clock ran ahead was moved back with it: the
      collector logged the step; chg-2's alert is still open (its arrival
      times are not in the future, so it does not look heard) and dated in
      the past (its reminders come on time); chg-1, heard
      just before the step, falls silent and gets its alert device_offline_s
      after its last reading, though its gateway connected while the clock
      ran ahead.
Before the collector timed these by the wall clock, (3) and (4) waited an
hour; before it moved its stamps back, chg-2's alert cleared at the step and
chg-1's waited an hour.
  (6) the clock an hour ahead again, the collector stopped (its liveness times
      in the file an hour ahead), started with the clock right: it logs the
      times in the future and its first batch moves them back.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sinks  # noqa: E402
import sptest as T  # noqa: E402

SITE, AGENT = "clock-1", "gw-clk"
DEVICES = ["chg-1", "chg-2", "chg-3"]  # chg-3 keeps its gateway heard
LATE_AGENT, LATE_DEVICES = "gw-late", ["chg-8", "chg-9"]  # heard only after the step
OFFLINE_S = 10
AHEAD_S = 3600


def chargers(devs):
    return [{"t": "station", "dev": d, "ts": T.now_ms(), "smoke": False, "power_w": 0,
             "energy_wh": 0} for d in devs]


def gateway(broker, agent, devices):
    gw = T.FakeGateway(broker, SITE, agent)
    gw.birth([{"dev": d, "kind": "charger", "ports": 2, "port_limit_w": 1000} for d in devices])
    gw.state(True)
    return gw


def ack_offset_s(gw):
    """How far the collector's clock is from ours, by the ts of the gateway's retained ack."""
    ack = gw.ack()
    T.check(ack is not None, "a retained ack")
    return (ack["ts"] - T.now_ms()) / 1000.0


def newest_stamp(coll):
    """The newest arrival time the collector stamped: devices' heard, gateways' liveness."""
    db = T.db_open_ro(coll.db_path)
    try:
        return db.execute("SELECT max(coalesce((SELECT max(heard) FROM device_seen), 0),"
                          " coalesce((SELECT max(max(last_seen, up_since, state_at))"
                          " FROM agents), 0))").fetchone()[0]
    finally:
        db.close()


def offline_alerts(coll):
    return {a["dev"]: a for a in coll.api_ok("/api/v1/alerts", {"site": SITE, "state": "all"})
            if a["rule"] == "charger.offline"}


def main(env):
    fake_env, clock_file = T.faketime_env(env, AHEAD_S)
    broker = env.broker()
    smtp = sinks.SmtpSink(env, mode="fail")
    coll = env.collector(broker, env_vars=fake_env, extra={
        "store": {"device_offline_s": OFFLINE_S},
        "smtp": {"url": smtp.url, "from": "sitepulse@test.example", "to": "ops@test.example",
                 "timeout_s": 2, "retry_min_s": 1, "retry_max_s": 3}})
    fake = gateway(broker, AGENT, DEVICES)
    T.wait_until(lambda: len(coll.api_ok("/api/v1/devices", {"site": SITE})) == len(DEVICES), 15,
                 "the birth's devices")

    T.log("(1) the collector's clock an hour ahead; the chargers report, then chg-2 falls silent")
    fake.send(chargers(DEVICES))
    off = ack_offset_s(fake)
    T.check(AHEAD_S - 60 < off < AHEAD_S + 60,
            "libfaketime sets the collector's clock %d s ahead: its ack says %.0f s" % (AHEAD_S, off))
    settle_end = time.time() + OFFLINE_S + 2  # the broker link settles after device_offline_s
    while time.time() < settle_end:
        fake.send(chargers(DEVICES))
        time.sleep(1.0)
    deadline = time.time() + OFFLINE_S + 15
    while time.time() < deadline and "chg-2" not in offline_alerts(coll):
        fake.send(chargers(["chg-1", "chg-3"]))
        time.sleep(1.0)
    T.check("chg-2" in offline_alerts(coll), "chg-2's charger.offline alert before the step")
    T.wait_until(lambda: len(smtp.rejected()) >= 1, 15, "its mail refused (451) at least once")
    fake.send(chargers(["chg-1", "chg-3"]))
    chg1_last = T.now_ms()  # chg-1's last reading: the clock still an hour ahead

    T.log("(2) the clock set back the hour; chg-1 silent from now on")
    with open(clock_file, "w") as f:
        f.write("+0\n")
    time.sleep(2.5)  # libfaketime reads the file again after FAKETIME_CACHE_DURATION
    fake.send(chargers(["chg-3"]))
    off = ack_offset_s(fake)
    T.check(-60 < off < 60, "the collector's clock set back: its ack is %.0f s off" % off)
    T.wait_until(lambda: "the collector's clock was set back 3600 s" in coll.proc.log_text(), 5,
                 "the collector's log line on the step")

    T.log("(3) the SMTP server accepts: the mail scheduled an hour ahead comes within its backoff")
    smtp.set_mode("ok")
    got = smtp.wait_for(1, timeout=20)
    subject = str(got[0]["msg"]["Subject"])
    T.check("charger.offline" in subject and "chg-2" in subject,
            "the mail is chg-2's alert: %r" % subject)

    T.log("(4) a gateway heard only after the step; chg-9 of it falls silent: its alert on time")
    late = gateway(broker, LATE_AGENT, LATE_DEVICES)
    late.send(chargers(LATE_DEVICES))
    silent_since = time.time()
    deadline = time.time() + 2 * OFFLINE_S + 20
    while time.time() < deadline and "chg-9" not in offline_alerts(coll):
        late.send(chargers(["chg-8"]))  # its gateway keeps sending: chg-9's silence is its own
        fake.send(chargers(["chg-3"]))  # and so does the first one
        time.sleep(1.0)
    T.check("chg-9" in offline_alerts(coll),
            "chg-9's charger.offline alert after the step (the sweep goes on)")
    T.log("chg-9's alert %.1f s after its last reading" % (time.time() - silent_since))
    T.check_eq(coll.healthz(), 200, "/healthz after the step")

    T.log("(5) what was stamped an hour ahead moved back: chg-1's alert, chg-2's still open")
    deadline = time.time() + OFFLINE_S + 20
    while time.time() < deadline and "chg-1" not in offline_alerts(coll):
        fake.send(chargers(["chg-3"]))
        time.sleep(1.0)
    alerts = offline_alerts(coll)
    T.check("chg-1" in alerts, "chg-1's charger.offline alert, its last reading before the step")
    if "chg-1" in alerts:
        late_by = (alerts["chg-1"]["opened_at"] - chg1_last) / 1000.0
        T.check(OFFLINE_S - 3 <= late_by <= OFFLINE_S + 5,
                "chg-1's alert dated device_offline_s after its last reading: %.1f s" % late_by)
    T.check(alerts["chg-2"]["cleared_at"] is None,
            "chg-2's alert still open (silent since before the step): %r" % alerts["chg-2"])
    # opened while the clock ran ahead: dated by it, then moved back with it (reminders on time)
    opened_ago = (T.now_ms() - alerts["chg-2"]["opened_at"]) / 1000.0
    T.check(0 <= opened_ago < 600,
            "chg-2's alert, opened an hour ahead, dated %.0f s ago now" % opened_ago)

    T.log("(6) stopped while an hour ahead, started with the clock right: nothing in the future")
    with open(clock_file, "w") as f:
        f.write("+%d\n" % AHEAD_S)
    time.sleep(2.5)
    fake.send(chargers(["chg-3"]))
    T.check(ack_offset_s(fake) > AHEAD_S - 60, "the collector's clock an hour ahead again")
    coll.terminate()
    T.check(newest_stamp(coll) > T.now_ms() + (AHEAD_S - 60) * 1000,
            "the stop left liveness times an hour ahead in the file")
    with open(clock_file, "w") as f:
        f.write("+0\n")
    coll.start()
    T.wait_until(lambda: "liveness times in the store lie up to" in coll.proc.log_text(), 10,
                 "the collector's log line on stamps in the future at start")
    T.wait_until(lambda: newest_stamp(coll) <= T.now_ms() + 5000, 10,
                 "no liveness time in the future after the first batch")


if __name__ == "__main__":
    T.run(main)
