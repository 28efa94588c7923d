#!/usr/bin/env python3
"""
test_alert_critical_pace.py - pacing ([smtp] max_per_hour, default 4) holds
back the mails of a flapping condition, but not those of a critical alert, which
has its own, much higher limit (max_per_hour_critical, default 20; docs/alerts.md
"No flood"; ../shared/DOMAIN.md §4 P1: "notify at once").
Real mosquitto, collector and SMTP sink (sinks.py), and a fake gateway
(mosquitto_pub) whose records the test writes by hand, all within a minute
of device time:

  - lift-1 traps a passenger 5 times (lift.trapped, critical, hold_s 2):
    all 5 alerts are mailed opened and cleared, none paced (the 5th
    opening was paced: the crew was not told of a trapped passenger);
  - lift-2's safety circuit opens 5 times (lift.safety_circuit, major):
    the first 4 are mailed opened and cleared, the 5th neither, and
    sitepulse_mail_paced_total counts exactly those 2 mails.
"""
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import SmtpSink  # noqa: E402

SITE = "pace-1"
FLAPS = 5


def alerts(coll):
    return coll.api_ok("/api/v1/alerts", {"site": SITE, "state": "all", "limit": 10000})


def main(env):
    smtp = SmtpSink(env)
    broker = env.broker()
    coll = env.collector(broker, extra={
        # max_per_hour left at its default, 4
        "smtp": {"url": smtp.url, "from": "sitepulse@test.example", "to": "ops@test.example",
                 "timeout_s": 2, "retry_min_s": 1, "retry_max_s": 2},
        "rule.lift.trapped": {"hold_s": 2},
    })
    gw = T.FakeGateway(broker, SITE, "gw-1")
    gw.birth([{"dev": "lift-1", "kind": "lift", "floors": [0, 6], "rated_speed": 1.0},
              {"dev": "lift-2", "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}])
    gw.state(True)
    T.wait_until(lambda: len(coll.api_ok("/api/v1/devices", {"site": SITE})) == 2, 15,
                 "the birth's two devices")

    T.log("step: %d entrapments of lift-1 and %d safety-circuit breaks of lift-2, 10 s apart"
          % (FLAPS, FLAPS))
    t0 = T.now_ms() - 120000
    recs = []
    for i in range(FLAPS):
        base = t0 + i * 10000
        trapped = dict(T.idle_lift("lift-1", base), occupied=True)
        # held 3 s (hold_s 2: opens at base + 2 s), then the door opens and the car is empty
        recs += [trapped, dict(trapped, ts=base + 3000),
                 dict(T.idle_lift("lift-1", base + 5000), door="open")]
        recs += [dict(T.idle_lift("lift-2", base), safety_ok=False),
                 T.idle_lift("lift-2", base + 2000)]
    gw.send(sorted(recs, key=lambda r: r["ts"]))

    def settled():
        got = [a for a in alerts(coll) if a["rule"] in ("lift.trapped", "lift.safety_circuit")]
        c = collections.Counter((a["dev"], a["rule"]) for a in got if a["cleared_at"])
        done = c[("lift-1", "lift.trapped")] == FLAPS and \
            c[("lift-2", "lift.safety_circuit")] == FLAPS
        return got if done else None
    got = T.wait_until(settled, 30, "%d lift.trapped and %d lift.safety_circuit, cleared"
                       % (FLAPS, FLAPS))
    by_rule = collections.defaultdict(list)
    for a in sorted(got, key=lambda a: a["opened_at"]):
        by_rule[a["rule"]].append(a)
    T.check_eq([a["severity"] for a in by_rule["lift.trapped"]], ["critical"] * FLAPS,
               "lift.trapped severities")
    T.check_eq([a["severity"] for a in by_rule["lift.safety_circuit"]], ["major"] * FLAPS,
               "lift.safety_circuit severities")

    # lift-1: 5 opened + 5 cleared; lift-2: 4 opened + 4 cleared
    want = 2 * FLAPS + 2 * 4
    T.log("step: the mails (%d wanted)" % want)
    # the mails went into the outbox with their alerts, which the API shows: wait until the
    # outbox is empty and the sink holds what the collector says it sent
    T.wait_until(lambda: coll.metrics()["sitepulse_mail_queued"] == 0
                 and len(smtp.messages()) == coll.metrics()["sitepulse_mail_sent_total"], 30,
                 "the outbox delivered")
    time.sleep(1)  # nothing more comes
    ids = collections.Counter(m["msg"]["Message-ID"] for m in smtp.messages())
    T.check(all(n == 1 for n in ids.values()), "each mail once: %r" % ids)

    def mid(a, event):
        at = a["opened_at"]
        return "<sitepulse.alert.%d.%s.%d@%s.sitepulse>" % (a["id"], event, at, SITE)

    for i, a in enumerate(by_rule["lift.trapped"]):
        for event in ("opened", "cleared"):
            T.check(ids[mid(a, event)] == 1, "critical lift.trapped #%d (alert %d) mailed %s"
                    % (i + 1, a["id"], event))
    for i, a in enumerate(by_rule["lift.safety_circuit"]):
        for event in ("opened", "cleared"):
            want_n = 1 if i < 4 else 0
            T.check(ids[mid(a, event)] == want_n, "major lift.safety_circuit #%d (alert %d): "
                    "%d %s mails, want %d" % (i + 1, a["id"], ids[mid(a, event)], event, want_n))
    T.check_eq(len(smtp.messages()), want, "mails in all")
    m = coll.metrics()
    T.check_eq(m["sitepulse_mail_paced_total"], 2,
               "paced mails (lift-2's 5th opening and its clear)")
    T.check_eq(m["sitepulse_mail_sent_total"], want, "mail_sent_total")


if __name__ == "__main__":
    T.run(main)
