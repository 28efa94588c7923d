#!/usr/bin/env python3
"""
test_reorder.py - an episode spooled while the broker lost the collector's
session still opens its alert (docs/architecture.md, the agent; docs/alerts.md,
late data).

mosquitto runs with persistence off. The collector stops and the broker
restarts: the collector's session and the retained acks are gone. The agent
reconnects to the new broker and, while nobody is subscribed, a charger port
overheats and cools down again (port.over_temp, --scenario) - all of it in the
agent's spool. Then the collector comes back. Had the agent published at once
after reconnecting, the broker would have dropped those messages (no
subscriber), the ones after the collector's return would have arrived first,
and the resent episode, behind them, would have moved no alert rule: no alert.
The agent waits for the collector's ack instead (ack_wait_s, long here), so:
  - the agent publishes nothing between its reconnect and the collector's return
    (its log says so, and it never gives up waiting);
  - every created record is stored, and the agent never had to go back and
    publish again (nothing it published was lost);
  - exactly one port.over_temp alert covers the episode, opened at its first
    hot reading (hold 0) and cleared;
  - on the new broker the collector's first PUBLISH (an ack) comes after its
    SUBSCRIBE (the broker's debug log): an ack sent before would start the
    agent publishing to nobody.
Then the other half of the same race, with the collector running: the broker
is away for 12 s and comes back. An agent reconnecting at once waits only its
ack_wait_s (3 s by default) for the collector's ack, so the collector must be
subscribed again well within that: it retries about twice a second
(ingest.c, RECONNECT_MAX_MS), where the fleet's doubling backoff would have
brought it back up to 8 s late (the soak test found a missed alert that way).
Its log's count of failed attempts shows the retry interval itself (when the
broker happens to return just as a doubled delay runs out, the time alone
cannot tell the two apart).
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

OVER_TEMP = 60.0     # port.over_temp opens at >= 60 °C (docs/alerts.md)
BROKER_AWAY_S = 12   # a doubling backoff (0.5, 1, 2, 4, 8 s) tries <= 6 times in this
EPISODE_AT_S = 9     # the overheat begins this long after the agent's start ...
EPISODE_FOR_S = 4    # ... and lasts this long


def main(env):
    broker = env.broker(extra_lines=["log_type debug"])  # each client's packets, in order
    coll = env.collector(broker)
    agent = env.agent(broker, "reorder-a", "gw-1", seed=5, lifts=1, chargers=1, ports=2,
                      heartbeat_s=1, time_scale=5, batch_ms=200, resend_s=5, ack_wait_s=1)
    T.log("step: the agent streams, the collector acknowledges")
    T.wait_until(lambda: agent.created() >= 3 and agent.acked_all(), 20, "the first messages acknowledged")
    # from now on a long wait for the ack (a new spool's first start used the short one
    # to learn its seq), and the episode 9 s after the restart
    with open(agent.config) as f:
        ini = f.read()
    T.check("ack_wait_s = 1\n" in ini, "the agent's configuration sets ack_wait_s = 1")
    with open(agent.config, "w") as f:
        f.write(ini.replace("ack_wait_s = 1\n", "ack_wait_s = 60\n"))
    agent.terminate()
    before = len(agent.proc.log_text())

    def log():  # the agent's log since this start
        return agent.proc.log_text()[before:]

    agent.start(["--scenario", "chg-1/2:port_overheat@%d+%d" % (EPISODE_AT_S, EPISODE_FOR_S)])
    started = time.monotonic()
    T.wait_until(lambda: "connected as" in log(), 20, "the agent to connect again")

    T.log("step: the collector stops, the broker restarts without persistence")
    coll.terminate()
    broker.restart()
    T.wait_until(lambda: log().count("connected as") >= 2, 20,
                 "the agent to reconnect to the new broker")
    reconnected_seq = agent.last_seq()

    T.log("step: the episode happens with nobody subscribed; it ends; the collector comes back")
    T.wait_until(lambda: time.monotonic() - started > EPISODE_AT_S + EPISODE_FOR_S + 2, 30,
                 "the episode to be over")
    T.check(agent.last_seq() > reconnected_seq, "the agent went on creating messages")
    T.check("publishing anyway" not in log(),
            "the agent stopped waiting for the collector's ack before it came back")
    coll.start()
    T.wait_until(agent.acked_all, 30, "the collector to acknowledge everything created")

    T.log("step: all stored, in order, and the episode alerted once")
    T.check("publishing anyway" not in log(),
            "the agent published before the collector's ack came")

    def stored_and_created():
        """chg-1's readings stored and created. The agent goes on creating a message every
        0.2 s, so one read after the other can see a message in one and not the other: both
        are read again until they agree (a record stored twice or lost never would)."""
        created = [r for r in agent.journal_records()[0] if r["dev"] == "chg-1"]
        stored = coll.api_ok("/api/v1/readings", {"site": "reorder-a", "dev": "chg-1",
                                                  "limit": 10000})
        return stored, created
    counts, created = [], []

    def agree():
        stored, created[:] = stored_and_created()
        counts.append((len(stored), len(created)))
        return len(stored) == len(created)
    try:
        T.wait_until(agree, 10, "chg-1's readings stored to be those created")
    except T.TestFailure:
        raise T.TestFailure("chg-1: readings stored and created never agreed; the last reads "
                            "(stored, created): %r" % counts[-5:])
    T.check("publishing again from seq" not in log(),
            "the agent had to publish again: messages it published were lost")
    hot = sorted(r["ts"] for r in created
                 if r["t"] == "port" and r.get("port") == 2 and r.get("temp_c", -1e9) >= OVER_TEMP)
    T.check(hot, "the scenario made port 2 hot (the journal has no reading >= %.0f °C)" % OVER_TEMP)
    T.wait_until(lambda: any(a["cleared_at"] for a in coll.api_ok(
        "/api/v1/alerts", {"state": "all", "site": "reorder-a"}) if a["rule"] == "port.over_temp"),
        20, "the over-temperature alert to clear")
    alerts = [a for a in coll.api_ok("/api/v1/alerts", {"state": "all", "site": "reorder-a"})
              if a["rule"] == "port.over_temp"]
    T.check(len(alerts) == 1, "one port.over_temp alert for the episode, got %r" % alerts)
    a = alerts[0]
    T.check(a["dev"] == "chg-1" and a["port"] == 2, "the alert names chg-1 port 2: %r" % a)
    T.check(a["opened_at"] == hot[0], "opened at the first hot reading %d, not %r"
            % (hot[0], a["opened_at"]))
    T.check(a["cleared_at"] is not None and a["cleared_at"] > a["opened_at"],
            "cleared after it opened: %r" % a)

    # the collector on the new broker: SUBSCRIBE before any PUBLISH of its own
    text = broker.proc.log_text()
    new_broker = text[text.rfind("---- start #"):]
    cid = coll.client_id
    sub = new_broker.find("Received SUBSCRIBE from %s" % cid)
    pub = new_broker.find("Received PUBLISH from %s " % cid)
    T.check(sub >= 0 and pub >= 0, "the new broker's log shows the collector's SUBSCRIBE and PUBLISH")
    T.check(sub < pub, "the collector published (an ack) on the new broker before it subscribed")

    T.log("step: the broker is away for %d s while the collector runs; it comes back" % BROKER_AWAY_S)
    ack_wait_s = int(T.config_default(T.AGENT_BIN, "agent", "ack_wait_s"))  # an agent's wait
    clog = coll.proc.log_text
    subscribed = clog().count("ingest: subscribed to")
    broker.stop()
    time.sleep(BROKER_AWAY_S)
    back = time.monotonic()
    broker.start()
    T.wait_until(lambda: clog().count("ingest: subscribed to") > subscribed, 30,
                 "the collector to subscribe on the restarted broker")
    took = time.monotonic() - back
    T.log("the collector was subscribed again %.2f s after the broker came back" % took)
    T.check(took < ack_wait_s,
            "the collector came back %.1f s after the broker: an agent waits only %d s for its ack"
            % (took, ack_wait_s))
    m = re.findall(r"connected as \S+ after (\d+) failed attempts", clog())
    T.check(m, "the collector's log says how many attempts failed while the broker was away")
    # every 0.4-0.6 s plus Paho's own delay (~19 in 12 s here); the doubling backoff makes <= 6
    least = int(BROKER_AWAY_S / 1.35)
    T.check(m and int(m[-1]) >= least, "the collector tried %s times in %d s, at least %d expected"
            % (m[-1] if m else "?", BROKER_AWAY_S, least))


if __name__ == "__main__":
    T.run(main)
