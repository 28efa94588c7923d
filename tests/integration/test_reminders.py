#!/usr/bin/env python3
"""
test_reminders.py - critical alerts nobody acknowledges are mailed again
(docs/alerts.md "Mail", DOMAIN's P1 "repeat until acknowledged"), with
[smtp] repeat_s = 4 and a real SMTP server on loopback (sinks.py):

  - rem-a/lift-1 traps a passenger for a minute (lift.trapped, critical):
    reminders 1, 2, ... arrive every 4 s, each once, threaded under the
    opened mail; once an operator acknowledges the alert they stop;
  - rem-a/chg-1 has smoke for 14 s (charger.smoke, critical) and nobody
    acknowledges it: its reminders stop when it clears;
  - no alert of another severity is reminded;
  - rem-b, a site nobody is to be mailed for (no mail_to, no [smtp] to), traps a
    passenger too: no mail, and its due reminders are not counted;
  - sitepulse_mail_reminders_total counts what was queued.
"""
import json
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import SmtpSink  # noqa: E402

REPEAT_S = 4
REMINDER = re.compile(r"^<sitepulse\.alert\.(\d+)\.reminder-(\d+)\.(\d+)@([^>]+)\.sitepulse>$")


def reminders(smtp):
    """{alert id: [reminder numbers in arrival order]} and the mails by Message-ID."""
    got, by_id = {}, {}
    for m in smtp.messages():
        mid = m["message"].get("Message-ID")
        by_id.setdefault(mid, []).append(m)
        r = REMINDER.match(mid or "")
        if r:
            got.setdefault(int(r.group(1)), []).append(int(r.group(2)))
    return got, by_id


def find(coll, rule, state="all", site="rem-a"):
    got = [a for a in coll.api_ok("/api/v1/alerts", {"state": state, "limit": 100})
           if a["rule"] == rule and a["site"] == site]
    return got[0] if got else None


def ack(coll, alert_id):
    req = urllib.request.Request("%s/api/v1/alerts/%d/ack" % (coll.base, alert_id), data=b"",
                                 method="POST",
                                 headers={"Authorization": "Bearer " + T.OPERATOR_TOKEN})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read())


def main(env):
    smtp = SmtpSink(env)
    broker = env.broker()
    coll = env.collector(broker, extra={
        "rule.lift.trapped": {"hold_s": 2},
        "smtp": {"url": smtp.url, "repeat_s": REPEAT_S,
                 "max_per_hour": 1000, "retry_min_s": 1, "retry_max_s": 2},
        "site.rem-a": {"mail_to": "crew@rem.example"},
    })
    agent = env.agent(broker, "rem-a", "gw-1", seed=31, lifts=1, chargers=1, ports=2,
                      heartbeat_s=1, time_scale=5,
                      args=["--scenario", "lift-1:trapped_between_floors@2+60",
                            "--scenario", "chg-1:smoke@2+14"])
    unmailed = env.agent(broker, "rem-b", "gw-1", seed=32, lifts=1, chargers=0,
                         heartbeat_s=1, time_scale=5,
                         args=["--scenario", "lift-1:trapped_between_floors@2+60"])

    T.log("step: both critical alerts open")
    trapped = T.wait_until(lambda: find(coll, "lift.trapped", "active", "rem-a"), 30,
                           "lift.trapped active", 0.5)
    unmailed_trap = T.wait_until(lambda: find(coll, "lift.trapped", "active", "rem-b"), 30,
                                 "lift.trapped active at rem-b", 0.5)
    smoke = T.wait_until(lambda: find(coll, "charger.smoke"), 30, "charger.smoke opened", 0.5)

    T.log("step: reminders 1 and 2 of the trapped passenger arrive, then it is acknowledged")
    T.wait_until(lambda: len(reminders(smtp)[0].get(trapped["id"], [])) >= 2, 3 * REPEAT_S + 15,
                 "two reminders of lift.trapped", 0.2)
    st, body = ack(coll, trapped["id"])
    T.check(st == 200 and body["state"] == "active_ack", "ack: %d %r" % (st, body))
    at_ack = max(reminders(smtp)[0][trapped["id"]])

    T.log("step: the smoke clears by itself; waiting three more intervals")
    T.wait_until(lambda: find(coll, "charger.smoke", "cleared"), 30, "charger.smoke cleared",
                 0.5)
    time.sleep(3 * REPEAT_S + 1)
    got, by_id = reminders(smtp)
    alerts = {a["id"]: a for a in coll.api_ok("/api/v1/alerts", {"limit": 100})}
    for aid, numbers in got.items():
        a = alerts[aid]
        T.check(a["severity"] == "critical", "a reminder of a %s alert: %r" % (a["severity"], a))
        T.check_eq(sorted(set(numbers)), list(range(1, max(numbers) + 1)),
                   "alert %d (%s): reminder numbers" % (aid, a["rule"]))
        for n in set(numbers):
            mid = "<sitepulse.alert.%d.reminder-%d.%d@%s.sitepulse>" % (aid, n, a["opened_at"],
                                                                        a["site"])
            m = by_id[mid][0]["message"]
            opened = "<sitepulse.alert.%d.opened.%d@%s.sitepulse>" % (aid, a["opened_at"],
                                                                      a["site"])
            T.check_eq(m.get("In-Reply-To"), opened, "%s In-Reply-To" % mid)
            T.check(m.get("Subject").startswith("[sitepulse] REMINDER %d: CRITICAL %s at rem-a/"
                                                % (n, a["rule"])),
                    "%s Subject %r" % (mid, m.get("Subject")))
            T.check("Still active and not acknowledged" in m.get_content(),
                    "%s body: %r" % (mid, m.get_content()[:200]))
    # a reminder queued just before the acknowledgement may still arrive: one, not more
    T.check(max(got[trapped["id"]]) <= at_ack + 1,
            "lift.trapped reminders after its acknowledgement: %r (%d at the ack)"
            % (got[trapped["id"]], at_ack))
    sm = alerts[smoke["id"]]
    lasted_s = (sm["cleared_at"] - sm["opened_at"]) / 1000.0
    T.check(1 <= len(set(got.get(smoke["id"], []))) <= int(lasted_s // REPEAT_S) + 1,
            "charger.smoke (lasted %.1f s): reminders %r" % (lasted_s, got.get(smoke["id"])))
    T.check_eq(sorted(got), sorted({trapped["id"], smoke["id"]}), "alerts that were reminded")
    T.check(not any(m["message"].get("Subject", "").find("rem-b/") >= 0 for m in smtp.messages()),
            "a mail for rem-b, which names no recipient")
    T.check(find(coll, "lift.trapped", "all", "rem-b")["id"] == unmailed_trap["id"],
            "rem-b's alert stands without mail")
    T.log("reminders: lift.trapped %r (acknowledged after %d), charger.smoke %r (lasted %.1f s)"
          % (got[trapped["id"]], at_ack, got.get(smoke["id"]), lasted_s))
    m = coll.metrics()
    T.check_eq(m["sitepulse_mail_reminders_total"], sum(len(set(v)) for v in got.values()),
               "sitepulse_mail_reminders_total")
    agent.terminate()
    unmailed.terminate()


if __name__ == "__main__":
    T.run(main)
