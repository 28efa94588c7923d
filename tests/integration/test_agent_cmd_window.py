#!/usr/bin/env python3
"""
test_agent_cmd_window.py - a port turned off by a port_off command stays off
across restarts however many commands came after it, until a port_on
(docs/protocol.md, Command; test_agent_port_on.py).

One agent (2 chargers of 2 ports), a broker and no collector (the agent
starts at seq 1 and publishes after ack_wait_s; the test reads its journal):
  (1) port_off chg-1 port 1 (id first): reported disabled;
  (2) 64 more commands with distinct ids, all for chg-2 port 2, in bursts
      the agent's command ring takes (16 a tick);
  (3) SIGTERM and a new start on the same spool: every record of chg-1
      port 1 after the restart says "disabled";
  (4) a start with a configuration without chg-2: the agent runs, logs the
      remembered port it does not have, and chg-1 port 1 stays off;
  (5) chg-2 back in the configuration: its port 2 is off again.
The old agent restored the ports of its last 64 command ids only: the 65th
command pushed "first" out, and chg-1 port 1 was back in service after the
restart (an overheating port turned off remotely, charging again).
"""
import json
import time

import sptest as T

SITE = "cmdwin-1"
AGENT = "gw-1"
TOPIC = "sp/v1/%s/%s/cmd" % (SITE, AGENT)


def cmd(cid, dev, port):
    return json.dumps({"v": 1, "id": cid, "ts": T.now_ms(), "cmd": "port_off", "dev": dev,
                       "port": port, "reason": "over_temp"})


def port_states(agent, dev, port, after_seq=0):
    out = []
    for seq, m in agent.journal_messages()[0]:
        if seq <= after_seq:
            continue
        for r in m["records"]:
            if r["t"] == "port" and r["dev"] == dev and r["port"] == port:
                out.append((seq, r["state"]))
    return out


def main(env):
    broker = env.broker()
    agent = env.agent(broker, SITE, AGENT, lifts=0, chargers=2, ports=2)
    T.wait_until(lambda: agent.created() >= 2, 15, "the agent's first messages")

    T.log("step (1): port_off chg-1 port 1 (id first)")
    s0 = agent.last_seq()
    deadline = time.monotonic() + 15
    while not any(st == "disabled" for _, st in port_states(agent, "chg-1", 1, s0)):
        # the cmd subscription comes after the connect: the same id again until it shows
        T.check(time.monotonic() < deadline, "chg-1 port 1 never reported disabled")
        T.publish_ok(broker, TOPIC, cmd("first", "chg-1", 1))
        time.sleep(1)

    T.log("step (2): 64 more distinct commands (chg-2 port 2)")
    for b in range(8):
        rc, out = T.publish_lines(broker, TOPIC, [cmd("more-%d" % (b * 8 + i), "chg-2", 2)
                                                  for i in range(8)], timeout=10)
        T.check(rc == 0, "mosquitto_pub -l failed: %s" % out)
        time.sleep(0.3)
    T.wait_until(lambda: agent.proc.log_text().count("command more-") >= 64, 10,
                 "the agent applying the 64 commands")

    T.log("step (3): restart on the same spool")
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")
    s1 = agent.last_seq()
    agent.start()
    T.wait_until(lambda: len(port_states(agent, "chg-1", 1, s1)) >= 2, 15,
                 "chg-1 port 1 reported after the restart")
    states = port_states(agent, "chg-1", 1, s1)
    T.check(all(st == "disabled" for _, st in states),
            "chg-1 port 1 in service again after the restart (65 commands later): %s"
            % states[:5])
    T.log("  chg-1 port 1 still disabled after the restart: %d records" % len(states))
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")

    T.log("step (4): a configuration without chg-2 (whose port 2 a command turned off)")
    agent = env.agent(broker, SITE, AGENT, lifts=0, chargers=1, ports=2, name=agent.name)
    s2 = agent.last_seq()
    T.wait_until(lambda: len(port_states(agent, "chg-1", 1, s2)) >= 2, 15,
                 "chg-1 port 1 reported with the smaller configuration")
    T.check(agent.proc.running(), "the agent died on a remembered port it does not have")
    T.check("chg-2 port 2 was turned off by a command before, but this configuration has no "
            "such port" in agent.proc.log_text(), "the port not in the configuration was not logged")
    states = port_states(agent, "chg-1", 1, s2)
    T.check(all(st == "disabled" for _, st in states), "chg-1 port 1 in service: %s" % states[:5])
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")

    T.log("step (5): chg-2 back in the configuration: its port 2 is still off")
    agent = env.agent(broker, SITE, AGENT, lifts=0, chargers=2, ports=2, name=agent.name)
    s3 = agent.last_seq()
    T.wait_until(lambda: len(port_states(agent, "chg-2", 2, s3)) >= 2, 15,
                 "chg-2 port 2 reported")
    states = port_states(agent, "chg-2", 2, s3)
    T.check(all(st == "disabled" for _, st in states), "chg-2 port 2 in service: %s" % states[:5])
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")


if __name__ == "__main__":
    T.run(main)
