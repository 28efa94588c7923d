#!/usr/bin/env python3
"""
test_alert_adopt.py - an alert the rules open while the store still holds it
active is adopted, not mailed again (docs/alerts.md, *Lifecycle*).

The store and the rules disagree when the rules' state could not be rebuilt
in full from the store (a reload after a failed batch that ran out of
memory, a row the rules cannot take at start). The test makes the second
kind: charger.smoke opens at adopt-1/chg-1 and is mailed; with the collector
stopped, its row is made to name a rule the rules do not know in rule_base
(the rule as shown, which the one-active-alert index keys on, stays), so at
the restart the rules skip it (a WARN) and hold nothing for the condition.
The next smoke record opens it again in the rules:

  - the store keeps its one active alert: same id, opened_at unchanged;
  - no second "opened" mail (the old collector sent one with a new
    Message-ID: the crew got the same alert twice);
  - counted in sitepulse_alerts_adopted_total, not in
    sitepulse_alerts_opened_total, and logged once (INFO);
  - the rules keep the adopted alert's id: the smoke's end clears it, and
    its "cleared" mail goes out, once.
"""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import SmtpSink  # noqa: E402

SITE, AGENT, DEV = "adopt-1", "gw-a", "chg-1"


def station(smoke):
    return [{"t": "station", "dev": DEV, "ts": T.now_ms(), "smoke": smoke, "power_w": 0,
             "energy_wh": 0}]


def smoke_alerts(coll):
    return [a for a in coll.api_ok("/api/v1/alerts", {"site": SITE, "state": "all",
                                                      "limit": 100})
            if a["rule"] == "charger.smoke"]


def mails_of(smtp, alert_id, event):
    """The Message-IDs of the mails of alert_id's event (opened, cleared), duplicates kept."""
    head = "<sitepulse.alert.%d.%s." % (alert_id, event)
    return [m for m in smtp.message_ids() if m and m.startswith(head)]


def outbox_mails(coll, alert_id, event):
    """The keys (Message-IDs) of alert_id's event's mails in the collector's mail outbox,
    delivered or not: what the commits so far queued."""
    con = T.db_open_ro(coll.db_path)
    try:
        return [r[0] for r in con.execute("SELECT key FROM outbox WHERE box = 0 AND key LIKE ?",
                                          ("<sitepulse.alert.%d.%s.%%" % (alert_id, event),))]
    finally:
        con.close()


def mail_settled(coll):
    """The outbox delivered (the mailer's gauge, refreshed every second)."""
    T.wait_until(lambda: coll.metrics()["sitepulse_mail_queued"] == 0, 20, "mail_queued 0")


def main(env):
    smtp = SmtpSink(env)
    broker = env.broker()
    coll = env.collector(broker, extra={
        "smtp": {"url": smtp.url, "from": "sitepulse@adopt.example", "to": "crew@adopt.example",
                 "retry_min_s": 1, "retry_max_s": 2, "max_per_hour": 100},
    })
    fake = T.FakeGateway(broker, SITE, AGENT)
    fake.birth([{"dev": DEV, "kind": "charger", "ports": 2, "port_limit_w": 1000}])
    fake.state(True)

    T.log("step: smoke at %s/%s: charger.smoke opens and is mailed" % (SITE, DEV))
    fake.send(station(False))
    fake.send(station(True))  # acked: committed with its alert and mail
    first = T.wait_until(lambda: smoke_alerts(coll), 10, "charger.smoke opened")
    T.check_eq(len(first), 1, "charger.smoke alerts")
    alert = first[0]
    smtp.wait_for(1, 20)
    mail_settled(coll)
    T.check_eq(len(mails_of(smtp, alert["id"], "opened")), 1, "opened mails before the restart")
    opened0 = coll.metrics()["sitepulse_alerts_opened_total"]

    T.log("step: collector stopped; the alert's row names a rule the rules do not know")
    rc, _ = coll.terminate()
    T.check(rc == 0, "the collector exits 0")
    con = sqlite3.connect(coll.db_path)
    with con:
        n = con.execute("UPDATE alerts SET rule_base = 'charger.smoke_unknown' WHERE id = ?",
                        (alert["id"],)).rowcount
    con.close()
    T.check_eq(n, 1, "alert rows changed")
    coll.start()
    T.check("unknown rule charger.smoke_unknown in the store" in coll.proc.log_text(),
            "the collector skipped the row at start (WARN)")

    T.log("step: smoke again: the rules open the condition, the store adopts its alert")
    sent_before = len(smtp.messages())
    fake.send(station(True))  # acked: its batch committed, with any mail it queued
    T.check_eq(len(outbox_mails(coll, alert["id"], "opened")), 1,
               "opened mails of alert %d in the outbox after it was adopted (%r)"
               % (alert["id"], outbox_mails(coll, alert["id"], "opened")))
    mail_settled(coll)
    now = smoke_alerts(coll)
    T.check_eq([(a["id"], a["state"], a["opened_at"]) for a in now],
               [(alert["id"], "active_unack", alert["opened_at"])],
               "the one charger.smoke alert: id, state, opened_at kept")
    T.check_eq(len(mails_of(smtp, alert["id"], "opened")), 1,
               "opened mails of alert %d after it was adopted (Message-IDs %r)"
               % (alert["id"], smtp.message_ids()))
    T.check_eq(len(smtp.messages()), sent_before, "mails sent for the adopted alert")
    m = coll.metrics()
    T.check_eq(m.get("sitepulse_alerts_adopted_total"), 1, "sitepulse_alerts_adopted_total")
    # the counter starts again at the restart: nothing opened since
    T.check_eq(m["sitepulse_alerts_opened_total"], 0,
               "sitepulse_alerts_opened_total after the restart (%d before)" % opened0)
    log = coll.proc.log_text()
    T.check_eq(log.count("alert %d adopted" % alert["id"]), 1, "log lines on the adoption")

    T.log("step: the smoke ends: the rules clear the adopted alert, mailed once")
    fake.send(station(False))
    T.wait_until(lambda: smoke_alerts(coll)[0]["cleared_at"], 10, "charger.smoke cleared")
    T.wait_until(lambda: mails_of(smtp, alert["id"], "cleared"), 20, "the cleared mail")
    mail_settled(coll)
    T.check_eq(len(mails_of(smtp, alert["id"], "cleared")), 1, "cleared mails")
    T.check_eq(len(mails_of(smtp, alert["id"], "opened")), 1, "opened mails in all")
    T.check_eq(len(smoke_alerts(coll)), 1, "charger.smoke alerts in all")
    rc, _ = coll.terminate()
    T.check(rc == 0, "the collector exits 0")


if __name__ == "__main__":
    T.run(main)
