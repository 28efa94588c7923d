#!/usr/bin/env python3
"""
test_agent_cmd.py - the agent's commands (CONTRACT §3.3; docs/protocol.md,
Command), as an outside publisher sends them on sp/v1/{site}/{agent}/cmd.

One agent (1 lift, 2 chargers of 6 ports) and a collector. Each step reads
the agent's journal (the data messages it created, in seq order):
  (1) port_off chg-1 port 3 (id c1, reason over_temp): a data message soon
      after reports the port "disabled", and every later record of it too;
  (2) port_off chg-1 port 4 with a reason outside the session stop reasons
      ("maintenance"): the contract gives the reason no vocabulary, so the
      port is turned off all the same (the old agent refused the whole
      command as bad_enum and left the port in service);
  (3) id c1 again, now for port 5: not applied (port 5 never disabled);
      a port_off for a lift, and malformed commands, are refused and the
      agent goes on;
  (4) the agent restarts (SIGTERM): ports 3 and 4 are still disabled in its
      first records, and id c1 sent once more (port 5) is still not applied
      (the old agent kept its ids in memory only: after a restart the ports
      were back in service and c1 was applied again).
"""
import json
import time

import sptest as T

SITE = "cmd-1"
AGENT = "gw-1"


def send(broker, **kw):
    cmd = {"v": 1, "id": "c1", "ts": T.now_ms(), "cmd": "port_off", "dev": "chg-1", "port": 3}
    cmd.update(kw)
    T.publish_ok(broker, "sp/v1/%s/%s/cmd" % (SITE, AGENT),
                 json.dumps({k: v for k, v in cmd.items() if v is not None}))


def port_states(agent, dev, port, after_seq=0):
    """[(seq, state)] of the journal's port records of dev/port in messages after after_seq."""
    out = []
    for seq, m in agent.journal_messages()[0]:
        if seq <= after_seq:
            continue
        for r in m["records"]:
            if r["t"] == "port" and r["dev"] == dev and r["port"] == port:
                out.append((seq, r["state"]))
    return out


def first_disabled(agent, dev, port, after_seq):
    for seq, state in port_states(agent, dev, port, after_seq):
        if state == "disabled":
            return seq
    return None


def apply(broker, agent, what, **kw):
    """Sends a command (kw: send's fields) and waits until its port is reported disabled.
    The agent asks for its cmd subscription only after connecting (and a command is not
    kept for it before: QoS 1, clean session), so the same command (same id: applied once)
    goes again every second until it shows."""
    dev, port = kw.get("dev", "chg-1"), kw["port"]
    s0 = agent.last_seq()
    deadline = time.monotonic() + 15
    seq = None
    while seq is None:
        T.check(time.monotonic() < deadline, "%s: %s port %d never reported disabled" % (what, dev, port))
        send(broker, **kw)
        t1 = time.monotonic() + 1
        while seq is None and time.monotonic() < t1:
            seq = first_disabled(agent, dev, port, s0)
            time.sleep(0.1)
    later = [st for _, st in port_states(agent, dev, port, seq) if st != "disabled"]
    T.check(not later, "%s: %s port %d back to %s after it was disabled" % (what, dev, port, later))
    T.log("  %s: disabled in seq %d (the last seq before the command was %d)" % (what, seq, s0))
    return seq


def main(env):
    broker = env.broker()
    env.collector(broker)
    agent = env.agent(broker, SITE, AGENT, lifts=1, chargers=2, ports=6)
    T.wait_until(lambda: agent.created() >= 3 and T.retained_ack(broker, SITE, AGENT),
                 20, "the agent's first messages and their ack")

    T.log("step (1): port_off chg-1 port 3 (id c1)")
    apply(broker, agent, "port 3 (c1)", id="c1", port=3, reason="over_temp")

    T.log("step (2): port_off chg-1 port 4 with reason \"maintenance\" (id c2)")
    apply(broker, agent, "port 4 (c2, reason maintenance)", id="c2", port=4, reason="maintenance")

    T.log("step (3): id c1 again for port 5, a lift, malformed commands")
    s0 = agent.last_seq()
    send(broker, id="c1", port=5)
    send(broker, id="c3", dev="lift-1", port=1)
    for bad in ("garbage", "", '{"v":1}', '{"v":1,"id":"c4","ts":1,"cmd":"port_off","dev":"chg-2","port":1}',
                json.dumps({"v": 1, "id": "c5", "ts": T.now_ms(), "cmd": "reboot", "dev": "chg-2", "port": 2}),
                json.dumps({"v": 1, "id": "c6", "ts": T.now_ms(), "cmd": "port_off", "dev": "chg-2", "port": 65}),
                json.dumps({"v": 1, "id": "c7", "ts": T.now_ms(), "cmd": "port_off", "dev": "chg-2", "port": 3,
                            "reason": 5})):
        T.publish_ok(broker, "sp/v1/%s/%s/cmd" % (SITE, AGENT), bad)
    # then a good one: once it is applied, everything before it has been handled
    apply(broker, agent, "chg-2 port 6 (c8)", id="c8", dev="chg-2", port=6)
    T.wait_until(lambda: agent.last_seq() >= s0 + 5, 15, "five more messages")
    p5 = port_states(agent, "chg-1", 5, s0)
    T.check(p5 and all(st != "disabled" for _, st in p5),
            "id c1 was applied a second time (chg-1 port 5: %s)" % p5)
    for p in range(1, 6):
        bad = [st for _, st in port_states(agent, "chg-2", p, s0) if st == "disabled"]
        T.check(not bad, "a malformed command turned chg-2 port %d off" % p)
    T.check(agent.proc.running(), "the agent died")
    log = agent.proc.log_text()
    T.check("command c3: no port 1 on lift-1" in log, "the port_off for a lift was not refused in the log")
    T.log("  c1 again not applied (port 5: %d records, none disabled); lift and malformed refused" % len(p5))

    T.log("step (4): restart; the ports stay off and c1 stays applied")
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")
    s0 = agent.last_seq()
    agent.start()
    T.wait_until(lambda: port_states(agent, "chg-1", 3, s0) and port_states(agent, "chg-1", 4, s0)
                 and port_states(agent, "chg-1", 5, s0), 20, "ports 3, 4 and 5 reported after the restart")
    for p in (3, 4):
        states = port_states(agent, "chg-1", p, s0)
        T.check(all(st == "disabled" for _, st in states),
                "chg-1 port %d in service again after the restart: %s" % (p, states[:5]))
    T.check("chg-1 port 3 stays off (a port_off command before the restart)" in agent.proc.log_text(),
            "the agent did not log the ports it kept off")
    # c9 first: once it shows, the agent's cmd subscription is in place
    apply(broker, agent, "chg-2 port 5 (c9)", id="c9", dev="chg-2", port=5)
    s1 = agent.last_seq()
    send(broker, id="c1", port=5)
    apply(broker, agent, "chg-2 port 4 (c10)", id="c10", dev="chg-2", port=4)
    T.wait_until(lambda: agent.last_seq() >= s1 + 5, 15, "five more messages")
    p5 = port_states(agent, "chg-1", 5, s1)
    T.check(p5 and all(st != "disabled" for _, st in p5),
            "id c1 was applied again after the restart (chg-1 port 5: %s)" % p5)
    T.log("  after the restart: ports 3 and 4 disabled, c1 not applied again")
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")


if __name__ == "__main__":
    T.run(main)
