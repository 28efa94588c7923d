#!/usr/bin/env python3
"""
test_mail.py - alert mails end to end (docs/alerts.md "Mail"), with a real
SMTP server on loopback (aiosmtpd, sinks.py).

  - site mail-a (its own mail_to) plays a trapped passenger and smoke: each
    alert mails its crew twice, opened and cleared, each mail once, with a
    Message-ID that names the alert and the event; subject, body and
    recipients as documented; a warning (lift.mode, below min_severity
    minor) is not mailed;
  - site mail-b has no mail_to: its mails go to [smtp] to;
  - /metrics: mail_sent_total counts them, mail_queued returns to 0;
  - a stuck SMTP server (accepts, never answers): the collector keeps
    ingesting (every record stored, /healthz 200), the mail waits in the
    outbox (mail_queued >= 1, mail_failed_total grows), and once the
    server answers again it is delivered, once;
  - pacing: a condition that flaps (a port overheating again and again, at
    a site whose [site.S.rule.port.over_temp] lowers it to major, as an
    operator quiets a faulty sensor: a critical alert is never paced, see
    test_alert_critical_pace.py) mails at most max_per_hour times; the rest
    is counted.
"""
import collections
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import SmtpSink  # noqa: E402

MSGID = re.compile(r"^<sitepulse\.alert\.(\d+)\.(opened|cleared)\.(\d+)@([a-z0-9_-]+)\.sitepulse>$")


def alerts(coll, **params):
    return coll.api_ok("/api/v1/alerts", dict(params, limit=10000))


def mails_by_id(smtp):
    out = collections.defaultdict(list)
    for m in smtp.messages():
        out[m["msg"]["Message-ID"]].append(m)
    return out


def check_mails_of(smtp, items, rcpts):
    """Every alert of items mailed once opened and once cleared, to rcpts."""
    by_id = mails_by_id(smtp)
    for a in items:
        for event, at in (("opened", a["opened_at"]), ("cleared", a["opened_at"])):
            mid = "<sitepulse.alert.%d.%s.%d@%s.sitepulse>" % (a["id"], event, at, a["site"])
            got = by_id.get(mid, [])
            T.check(len(got) == 1, "alert %d (%s): %d mails with Message-ID %s, want 1; have %s"
                    % (a["id"], a["rule"], len(got), mid, sorted(by_id)))
            if not got:
                continue
            m = got[0]
            T.check_eq(sorted(m["rcpts"]), sorted(rcpts), "recipients of %s" % mid)
            subject = str(m["msg"]["Subject"])
            T.check(a["rule"] in subject and a["site"] in subject,
                    "subject of %s names rule and site: %r" % (mid, subject))
            body = m["msg"].get_payload(decode=True).decode("utf-8")
            T.check(a["dev"] in body, "body of %s names the device: %r" % (mid, body[:300]))
            if event == "opened":
                T.check(a["detail"] in body, "body of %s carries the detail %r: %r"
                        % (mid, a["detail"], body[:400]))
            T.check(m["msg"]["Date"] and m["msg"]["From"] == "sitepulse@test.example",
                    "headers of %s: %r" % (mid, dict(m["msg"].items())))


def main(env):
    smtp = SmtpSink(env)
    broker = env.broker()
    coll = env.collector(broker, extra={
        "smtp": {"url": smtp.url, "from": "sitepulse@test.example", "to": "ops@test.example",
                 "timeout_s": 2, "retry_min_s": 1, "retry_max_s": 2, "max_per_hour": 2},
        "site.mail-a": {"mail_to": "crew-a@test.example, lead-a@test.example"},
        "rule.lift.trapped": {"hold_s": 2},
        "site.mail-d.rule.port.over_temp": {"severity": "major"},
    })
    common = dict(heartbeat_s=1, time_scale=5, batch_ms=200, resend_s=2, ack_wait_s=1)
    a = env.agent(broker, "mail-a", "gw-1", seed=21, lifts=1, chargers=1, ports=2,
                  args=["--scenario", "lift-1:trapped_between_floors@2+8",
                        "--scenario", "chg-1:smoke@2+3",
                        "--scenario", "lift-1:inspection@14+3"], **common)
    b = env.agent(broker, "mail-b", "gw-1", seed=22, lifts=0, chargers=1, ports=2,
                  args=["--scenario", "chg-1:smoke@2+3"], **common)

    T.log("step: waiting for the alerts of mail-a and mail-b to open and clear")

    def settled():
        got = [x for x in alerts(coll) if x["rule"] in ("lift.trapped", "charger.smoke")]
        return got if len(got) == 3 and all(x["cleared_at"] for x in got) else None
    got = T.wait_until(settled, 60, "lift.trapped and 2 x charger.smoke opened and cleared")
    T.log("alerts: %s" % [(x["id"], x["site"], x["rule"], x["state"]) for x in got])

    T.log("step: waiting for their 6 mails")
    smtp.wait_for(6, 30)
    T.wait_until(lambda: coll.metrics()["sitepulse_mail_queued"] == 0, 20, "mail_queued 0")
    check_mails_of(smtp, [x for x in got if x["site"] == "mail-a"],
                   ["crew-a@test.example", "lead-a@test.example"])
    check_mails_of(smtp, [x for x in got if x["site"] == "mail-b"], ["ops@test.example"])
    T.wait_until(lambda: [x for x in alerts(coll, site="mail-a") if x["rule"] == "lift.mode"
                          and x["cleared_at"]], 40, "the warning lift.mode at mail-a")
    for mid in mails_by_id(smtp):
        m = MSGID.match(mid)
        T.check(m is not None, "Message-ID form: %r" % mid)
        if m:
            alert = [x for x in alerts(coll) if x["id"] == int(m.group(1))]
            T.check(alert and alert[0]["severity"] != "warning",
                    "a warning was mailed: %r" % alert)
    m = coll.metrics()
    T.check_eq(m["sitepulse_mail_sent_total"], len(smtp.messages()), "mail_sent_total")
    T.check_eq(m["sitepulse_mail_failed_total"], 0, "mail_failed_total before the stuck server")

    T.log("step: the SMTP server gets stuck; a new alert's mail waits, ingest goes on")
    smtp.set_mode("stuck")
    sent_before = len(smtp.messages())
    c = env.agent(broker, "mail-c", "gw-1", seed=23, lifts=0, chargers=1, ports=2,
                  args=["--scenario", "chg-1:smoke@1+600"], **common)
    T.wait_until(lambda: [x for x in alerts(coll, site="mail-c") if x["rule"] == "charger.smoke"],
                 30, "charger.smoke at mail-c")
    with T.HealthProbe(coll) as probe:
        T.wait_until(lambda: coll.metrics()["sitepulse_mail_failed_total"] >= 2, 30,
                     "two failed attempts against the stuck server (timeout_s 2)")
        T.check(coll.metrics()["sitepulse_mail_queued"] >= 1, "the mail waits in the outbox")
        n0 = c.created()
        T.wait_until(lambda: c.created() >= n0 + 5, 20, "mail-c creating data meanwhile")
        T.wait_stored_equals_journal(coll, [c], 30, "mail-c stored while SMTP is stuck")
    T.check(not probe.bad, "/healthz was not 200 while SMTP was stuck: %r" % probe.bad[:5])
    T.check_eq(len(smtp.messages()), sent_before, "mails delivered by a stuck server")

    T.log("step: the server answers again: the waiting mail goes out, once")
    smtp.set_mode("ok")
    smtp.wait_for(sent_before + 1, 30)
    T.wait_until(lambda: coll.metrics()["sitepulse_mail_queued"] == 0, 20, "mail_queued 0 again")
    cid = [x for x in alerts(coll, site="mail-c") if x["rule"] == "charger.smoke"][0]
    mid = "<sitepulse.alert.%d.opened.%d@mail-c.sitepulse>" % (cid["id"], cid["opened_at"])
    T.check_eq(len(mails_by_id(smtp).get(mid, [])), 1, "mails of the alert that waited")

    T.log("step: pacing a flapping port (max_per_hour 2; port.over_temp major at mail-d)")
    d = env.agent(broker, "mail-d", "gw-1", seed=24, lifts=0, chargers=1, ports=1,
                  args=sum((["--scenario", "chg-1/1:port_overheat@%d+3" % t] for t in (1, 15, 29, 43)),
                           []), **common)
    # a hot contact takes ~10 s to cool below 55 °C: 14 s apart, each heating is an alert
    T.wait_until(lambda: len([x for x in alerts(coll, site="mail-d") if x["rule"] == "port.over_temp"
                              and x["cleared_at"]]) >= 3, 90, "port.over_temp at mail-d 3 times")
    flaps = [x for x in alerts(coll, site="mail-d") if x["rule"] == "port.over_temp"]
    T.check_eq({x["severity"] for x in flaps}, {"major"}, "severity of mail-d's port.over_temp")
    T.wait_until(lambda: coll.metrics()["sitepulse_mail_queued"] == 0, 20, "mail_queued 0")
    ids = {x["id"] for x in flaps}
    sent = [mid for mid in mails_by_id(smtp)
            if MSGID.match(mid) and int(MSGID.match(mid).group(1)) in ids and ".opened." in mid]
    T.check_eq(len(sent), 2, "opened mails of a condition that opened %d times" % len(flaps))
    T.check(coll.metrics()["sitepulse_mail_paced_total"] >= len(flaps) - 2,
            "paced mails counted: %r" % coll.metrics()["sitepulse_mail_paced_total"])
    for ag in (a, b, c, d):
        ag.terminate()


if __name__ == "__main__":
    T.run(main)
