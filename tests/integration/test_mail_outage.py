#!/usr/bin/env python3
"""
test_mail_outage.py - alert mail after an outage of the SMTP server
(docs/alerts.md "Mail": order, server out of reach, superseded reminders),
with a real SMTP server (aiosmtpd, sinks.py) that is not there at first.

Nothing listens on the mail port while two passengers are trapped
(lift.trapped, critical, repeat_s 3): out-a/lift-1 for about 13 s, so its
opening, reminders and clear all wait in the outbox; out-a/lift-2 for longer
than the test, so it is still active and not acknowledged when the server
comes up. Then the server starts on that port. Wanted:

  - each alert's mails arrive in the order they were queued: its opening
    first, its clear last (before the fix, the opening had failed most, had
    the longest backoff and came after its reminders and its clear);
  - lift-1's reminders are not sent at all: its clear was queued behind
    them (sitepulse_mail_superseded_total counts them);
  - of lift-2's reminders queued during the outage at most one is sent
    (the newest: still true), later ones follow in order;
  - the mails come within a few seconds of the server's return (within the
    server's longest backoff), each once.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import SmtpSink  # noqa: E402

REPEAT_S = 3
RETRY_MAX_S = 6
MSGID = re.compile(r"^<sitepulse\.alert\.(\d+)\.(opened|cleared|reminder-(\d+))\.\d+@[^>]+>$")


def find(coll, dev, state="all"):
    got = [a for a in coll.api_ok("/api/v1/alerts", {"state": state, "limit": 100})
           if a["rule"] == "lift.trapped" and a["dev"] == dev]
    return got[0] if got else None


def queued(db_path):
    """{alert id: [events of its mails waiting in the outbox, in queue order]}."""
    db = T.db_open_ro(db_path)
    try:
        rows = db.execute("SELECT key FROM outbox WHERE box = 0 AND sent_at IS NULL"
                          " ORDER BY id").fetchall()
    finally:
        db.close()
    out = {}
    for (key,) in rows:
        m = MSGID.match(key)
        T.check(m is not None, "an outbox key of unknown shape: %r" % key)
        if m:
            out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out


def arrived(smtp):
    """{alert id: [events in arrival order]} and every Message-ID in arrival order."""
    out, ids = {}, smtp.message_ids()
    for mid in ids:
        m = MSGID.match(mid or "")
        T.check(m is not None, "a mail with Message-ID %r" % mid)
        if m:
            out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out, ids


def reminder_numbers(events):
    return [int(e.split("-")[1]) for e in events if e.startswith("reminder-")]


def main(env):
    mail_port = T.free_port()  # nothing listens here until the server "comes back"
    broker = env.broker()
    coll = env.collector(broker, extra={
        "rule.lift.trapped": {"hold_s": 2},
        "smtp": {"url": "smtp://127.0.0.1:%d" % mail_port, "to": "crew@out.example",
                 "repeat_s": REPEAT_S, "max_per_hour": 1000, "retry_min_s": 1,
                 "retry_max_s": RETRY_MAX_S},
    })
    agent = env.agent(broker, "out-a", "gw-1", seed=41, lifts=2, chargers=0, heartbeat_s=1,
                      time_scale=5,
                      args=["--scenario", "lift-1:trapped_between_floors@2+13",
                            "--scenario", "lift-2:trapped_between_floors@2+300"])

    T.log("step: the SMTP server is down; both passengers trapped, lift-1's comes out")
    done = T.wait_until(lambda: find(coll, "lift-1", "cleared"), 60, "lift-1 cleared", 0.5)
    other = T.wait_until(lambda: find(coll, "lift-2", "active"), 10, "lift-2 active", 0.5)
    # lift-2 has at least two reminders waiting (so that one superseding another can show)
    T.wait_until(lambda: len(reminder_numbers(queued(coll.db_path).get(other["id"], []))) >= 2,
                 4 * REPEAT_S + 10, "two reminders of lift-2 queued", 0.3)
    before = queued(coll.db_path)
    m = coll.metrics()
    T.check(m["sitepulse_mail_failed_total"] >= 1, "no failed attempt during the outage: %r"
            % m["sitepulse_mail_failed_total"])
    T.check_eq(m["sitepulse_mail_sent_total"], 0, "mails sent with no server")
    q_done, q_other = before.get(done["id"], []), before.get(other["id"], [])
    T.log("queued while down: lift-1 %r, lift-2 %r" % (q_done, q_other))
    T.check(q_done[:1] == ["opened"] and q_done[-1:] == ["cleared"]
            and len(reminder_numbers(q_done)) >= 1,
            "lift-1's mails queued during the outage: %r (want opened, reminders, cleared)"
            % q_done)
    T.check(q_other[:1] == ["opened"] and len(reminder_numbers(q_other)) >= 2,
            "lift-2's mails queued during the outage: %r" % q_other)
    superseded_before = m.get("sitepulse_mail_superseded_total", 0)

    T.log("step: the server comes back on the same port")
    back = time.monotonic()
    smtp = SmtpSink(env, port=mail_port)
    T.wait_until(lambda: "cleared" in arrived(smtp)[0].get(done["id"], []),
                 RETRY_MAX_S + 20, "lift-1's clear delivered", 0.2)
    T.wait_until(lambda: len(reminder_numbers(arrived(smtp)[0].get(other["id"], []))) >= 1,
                 2 * REPEAT_S + 10, "a reminder of lift-2 delivered", 0.2)
    T.log("first mails %.1f s after the server came back" % (time.monotonic() - back))
    time.sleep(1)
    got, ids = arrived(smtp)
    T.log("arrived: lift-1 %r, lift-2 %r" % (got.get(done["id"]), got.get(other["id"])))

    T.check_eq(len(ids), len(set(ids)), "mails delivered twice (Message-IDs %r)" % ids)
    T.check_eq(got.get(done["id"]), ["opened", "cleared"],
               "lift-1's mails: opened, then cleared; its reminders superseded by the clear")
    g_other = got.get(other["id"], [])
    T.check(g_other[:1] == ["opened"], "lift-2's first mail is its opening: %r" % g_other)
    numbers = reminder_numbers(g_other)
    T.check_eq(numbers, sorted(set(numbers)), "lift-2's reminders in order, each once")
    waited = set(reminder_numbers(q_other))
    T.check(len(waited & set(numbers)) <= 1,
            "lift-2: of the reminders %r queued during the outage only the newest may be sent;"
            " sent %r" % (sorted(waited), numbers))
    m = coll.metrics()
    superseded = m["sitepulse_mail_superseded_total"] - superseded_before
    T.check(superseded >= len(reminder_numbers(q_done)) + len(waited) - 1,
            "sitepulse_mail_superseded_total grew by %d; lift-1 had %d reminders waiting, "
            "lift-2 %d" % (superseded, len(reminder_numbers(q_done)), len(waited)))
    T.check_eq(m["sitepulse_mail_sent_total"], len(ids), "sitepulse_mail_sent_total")
    T.check(coll.proc.log_text().count("not sent: superseded") >= superseded,
            "one log line per superseded reminder")
    agent.terminate()


if __name__ == "__main__":
    T.run(main)
