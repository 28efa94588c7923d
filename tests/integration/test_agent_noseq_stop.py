#!/usr/bin/env python3
"""
test_agent_noseq_stop.py - a new agent stopped before it ever reached the
broker keeps the records it produced (docs/architecture.md, "A new spool does
not know its seq").

A new spool learns its first seq from the collector's retained ack, so until
the agent has connected once its records wait in memory. The agent is
installed while the broker is down (its port has no listener):
  (1) it runs ~2.5 s and gets SIGTERM: it exits 0 and says how many records
      it had and that they are kept in the spool;
  (2) it starts again, still without a broker, runs ~2.5 s and gets SIGTERM:
      the first run's records and this run's are kept (one count);
  (2b) it starts once more without a broker and is killed (-9) after 1 s:
      what it loaded from the spool is still there (it leaves the spool only
      with the data message that takes it); this run's records are lost;
  (3) the broker and a collector start, and the agent once more on the same
      spool: the collector stores exactly the records of the agent's journal
      (each once), among them exactly that many stamped before the second
      stop, with their own timestamps (from the first and second runs).
The old agent logged "stopping with N records and no sequence number yet
... they are lost" and lost them: nothing from before the broker was up
reached the collector.
"""
import re
import time

import sptest as T

SITE = "noseq-1"
AGENT = "gw-1"


def stop_count(agent):
    """N of the last 'stopping with N records and no sequence number yet' line."""
    found = re.findall(r"stopping with (\d+) records and no sequence number yet",
                       agent.proc.log_text())
    T.check(found, "the agent did not say how many records it had at its stop")
    return int(found[-1])


def main(env):
    broker = T.Broker(env)  # not started: nothing listens on its port yet
    agent = env.agent(broker, SITE, AGENT, lifts=1, chargers=1, ports=2)
    t0 = T.now_ms()

    T.log("step (1): no broker; SIGTERM after 2.5 s")
    time.sleep(2.5)
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")
    n1 = stop_count(agent)
    T.check(n1 > 0, "the agent produced no records in 2.5 s")
    T.log("  %d records at the stop" % n1)

    T.log("step (2): again without a broker; SIGTERM after 2.5 s")
    agent.start()
    time.sleep(2.5)
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")
    t_stop = T.now_ms()
    n2 = stop_count(agent)
    T.check(n2 > n1, "the second stop holds %d records, the first held %d: the first run's "
            "were not kept" % (n2, n1))
    T.log("  %d records at the stop (the first run's %d among them)" % (n2, n1))

    T.log("step (2b): a start without a broker killed (-9) after 1 s: nothing kept is lost")
    agent.start()
    time.sleep(1)
    agent.kill9()

    T.log("step (3): broker and collector up, the agent again")
    broker.start()
    collector = env.collector(broker)
    agent.start()
    T.wait_until(lambda: agent.created() >= 3 and agent.acked_all(), 15,
                 "the agent's messages created and acknowledged")
    # stopped before the two are compared: a message created between reading the journal and
    # reading the store would show as records stored but never created
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")
    state = T.wait_stored_equals_journal(
        collector, [agent], 15, "exactly once, the records from before the broker was up included")
    records = state[agent.name][0]
    early = [r for r in records if r["ts"] <= t_stop]
    T.check_eq(len(early), n2, "journalled records stamped before the second stop")
    T.check(all(r["ts"] >= t0 for r in early), "a record stamped before the first start")
    T.check(any(r["ts"] <= t0 + 2600 for r in early), "no record of the first run")
    T.log("  the collector stored the %d records from the runs without a broker" % n2)


if __name__ == "__main__":
    T.run(main)
