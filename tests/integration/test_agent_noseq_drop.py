#!/usr/bin/env python3
"""
test_agent_noseq_drop.py - records kept at a stop before the seq was known, then
dropped from memory at the next start (the batch full, still no broker), leave
the spool's pending table with the first data message once the seq is known
(docs/architecture.md, "A new spool does not know its seq").

  (1) no broker: the agent runs ~2.5 s and gets SIGTERM: N records are kept;
  (2) it starts again, still without a broker, and runs until its batch has
      overflowed by more than N records (WARN "dropping oldest records"): every
      kept record is dropped from memory;
  (3) the broker and a collector start; the agent connects, learns its seq and
      its messages are acknowledged; after SIGTERM the pending table is empty.
Before, a message deleted only the kept records it held: once all were dropped
the N rows stayed, and any later start sent those stale records again.
"""
import re
import sqlite3
import time

import sptest as T

SITE = "noseqd-1"
AGENT = "gw-1"
DROP_WARN = "dropping oldest records"


def pending_rows(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM pending").fetchone()[0]
    finally:
        db.close()


def main(env):
    broker = T.Broker(env)  # not started: nothing listens on its port yet
    agent = env.agent(broker, SITE, AGENT, lifts=2, chargers=4, ports=16)

    T.log("step (1): no broker; SIGTERM after 2.5 s")
    time.sleep(2.5)
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")
    found = re.findall(r"stopping with (\d+) records and no sequence number yet",
                       agent.proc.log_text())
    T.check(found, "the agent did not say how many records it kept")
    n1 = int(found[-1])
    T.check_eq(pending_rows(agent.spool), n1, "rows in the pending table after the stop")
    rate = n1 / 2.5
    T.log("  %d records kept (~%.0f a second)" % (n1, rate))

    T.log("step (2): again without a broker, until the batch overflowed by more than %d" % n1)
    agent.start()
    T.wait_until(lambda: DROP_WARN in agent.proc.log_text(), 60, "the batch overflowing", 0.2)
    time.sleep(2 * n1 / rate + 1)  # twice the time the kept records took to come

    T.log("step (3): broker and collector up; the agent learns its seq")
    broker.start()
    env.collector(broker)
    T.wait_until(lambda: agent.created() >= 3 and agent.acked_all(), 30,
                 "the agent's messages created and acknowledged")
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")
    # the premise: the second run dropped at least the n1 oldest records, the kept ones (its
    # stats line at the stop counts them); with fewer the kept records left with a message
    dropped = re.findall(r"(\d+) records dropped;", agent.proc.log_text())
    T.check(dropped, "the agent's stats line at its stop")
    T.check(int(dropped[-1]) >= n1, "records dropped from the batch: %s, fewer than the %d kept: "
            "not every kept record was dropped" % (dropped[-1], n1))
    T.check_eq(pending_rows(agent.spool), 0,
               "kept records dropped from memory still in the pending table")


if __name__ == "__main__":
    T.run(main)
