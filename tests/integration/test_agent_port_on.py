#!/usr/bin/env python3
"""
test_agent_port_on.py - a port turned off by a port_off command is put back in
service by a port_on command (docs/protocol.md, Command: an extension of
CONTRACT §3.3 of the same shape), and stays in service across a restart.

One agent (1 lift, 1 charger of 4 ports), a broker and a collector. Each step
reads the agent's journal (the data messages it created, in seq order):
  (1) port_off chg-1 port 2 (id off-1): reported "disabled";
  (2) port_on chg-1 port 2 (id on-1, reason "repaired"): reported in service
      again (idle, or a session since), never disabled after that;
  (3) off-1 sent again: not applied (the port stays in service); a port_on
      for a lift is refused (WARN), one for a port that is not off is
      applied and changes nothing (INFO), an unknown cmd is refused;
  (4) SIGTERM and a new start on the same spool: the port is in service in
      every record after the restart (the old port_off id off-1 is still in
      the spool's 64-id memory and must not turn it off again);
  (5) port_off chg-1 port 2 (id off-2), then on-1 sent once more: on-1 is
      not applied a second time, the port stays disabled.
  (6) port_on port 2 (on-4), then 70 commands for a port chg-1 does not have
      (each a new id: they push every real id out of the agent's in-memory
      ring of 64), then off-2 once more: the spool still has off-2, so it is
      not applied a second time and port 2 stays in service.
Before port_on existed the command was refused (bad_enum) and the port stayed
disabled for good: there was no way back short of editing the spool by hand.
"""
import json
import time

import sptest as T

SITE = "pon-1"
AGENT = "gw-1"
TOPIC = "sp/v1/%s/%s/cmd" % (SITE, AGENT)


def send(broker, **kw):
    cmd = {"v": 1, "ts": T.now_ms(), "cmd": "port_off", "dev": "chg-1", "port": 2}
    cmd.update(kw)
    T.publish_ok(broker, TOPIC, json.dumps(cmd))


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


def first_seq(agent, dev, port, after_seq, want):
    for seq, state in port_states(agent, dev, port, after_seq):
        if want(state):
            return seq
    return None


def until_reported(broker, agent, what, want, **kw):
    """Sends a command (kw: send's fields) every second (the same id: applied once; the
    agent asks for cmd only once connected, and a command is not kept for it before)
    until a port record after it satisfies want. At most 15 s."""
    dev, port = kw.get("dev", "chg-1"), kw["port"]
    s0 = agent.last_seq()
    deadline = time.monotonic() + 15
    seq = None
    while seq is None:
        T.check(time.monotonic() < deadline, "%s: %s port %d never reported as expected (%s)"
                % (what, dev, port, port_states(agent, dev, port, s0)[-5:]))
        send(broker, **kw)
        t1 = time.monotonic() + 1
        while seq is None and time.monotonic() < t1:
            seq = first_seq(agent, dev, port, s0, want)
            time.sleep(0.1)
    T.log("  %s: seen in seq %d (the last seq before the command was %d)" % (what, seq, s0))
    return seq


def disabled(state):
    return state == "disabled"


def in_service(state):
    return state != "disabled"


def main(env):
    broker = env.broker()
    env.collector(broker)
    agent = env.agent(broker, SITE, AGENT, lifts=1, chargers=1, ports=4)
    T.wait_until(lambda: agent.created() >= 3 and T.retained_ack(broker, SITE, AGENT),
                 20, "the agent's first messages and their ack")

    T.log("step (1): port_off chg-1 port 2 (id off-1)")
    until_reported(broker, agent, "port_off (off-1)", disabled, id="off-1", port=2,
                   reason="over_temp")

    T.log("step (2): port_on chg-1 port 2 (id on-1)")
    seq = until_reported(broker, agent, "port_on (on-1)", in_service, id="on-1", cmd="port_on",
                         port=2, reason="repaired")
    T.check("command on-1: port_on chg-1 port 2" in agent.proc.log_text(),
            "the agent did not log the port_on")

    T.log("step (3): off-1 again, port_on for a lift and for a port in service, unknown cmd")
    s0 = agent.last_seq()
    send(broker, id="off-1", port=2)
    send(broker, id="on-2", cmd="port_on", dev="lift-1", port=1)
    send(broker, id="on-3", cmd="port_on", port=3)
    send(broker, id="rb-1", cmd="reboot", port=2)
    # then a good one: once it is applied, everything before it has been handled
    until_reported(broker, agent, "port_off chg-1 port 4 (off-9)", disabled, id="off-9", port=4)
    T.wait_until(lambda: agent.last_seq() >= s0 + 3, 15, "three more messages")
    p2 = port_states(agent, "chg-1", 2, seq)
    bad = [st for _, st in p2 if st == "disabled"]
    T.check(p2 and not bad, "chg-1 port 2 disabled again after the port_on (%s)" % p2[-5:])
    p3 = port_states(agent, "chg-1", 3, s0)
    T.check(p3 and not [st for _, st in p3 if st == "disabled"], "port_on turned port 3 off: %s" % p3)
    log = agent.proc.log_text()
    T.check("command on-2: no port 1 on lift-1" in log, "the port_on for a lift was not refused")
    T.check("command on-3: port_on chg-1 port 3: not off by a command" in log,
            "the port_on for a port in service was not logged")
    T.check("ignoring bad command" in log and "bad_enum" in log, "the unknown cmd was not refused")
    T.check(agent.proc.running(), "the agent died")

    T.log("step (4): restart; port 2 stays in service, port 4 stays off")
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")
    s0 = agent.last_seq()
    agent.start()
    T.wait_until(lambda: port_states(agent, "chg-1", 2, s0) and port_states(agent, "chg-1", 4, s0),
                 20, "ports 2 and 4 reported after the restart")
    p2 = port_states(agent, "chg-1", 2, s0)
    T.check(all(st != "disabled" for _, st in p2),
            "chg-1 port 2 off again after the restart: %s" % p2[:5])
    p4 = port_states(agent, "chg-1", 4, s0)
    T.check(all(st == "disabled" for _, st in p4), "chg-1 port 4 in service after the restart: %s" % p4[:5])
    T.check("chg-1 port 2 stays off" not in agent.proc.log_text(),
            "the agent kept port 2 off at the restart")

    T.log("step (5): port_off port 2 (off-2), then on-1 again: not applied a second time")
    seq = until_reported(broker, agent, "port_off (off-2)", disabled, id="off-2", port=2)
    s1 = agent.last_seq()
    send(broker, id="on-1", cmd="port_on", port=2, reason="repaired")
    until_reported(broker, agent, "port_off chg-1 port 1 (off-10)", disabled, id="off-10", port=1)
    T.wait_until(lambda: agent.last_seq() >= s1 + 3, 15, "three more messages")
    p2 = port_states(agent, "chg-1", 2, seq)
    T.check(p2 and all(st == "disabled" for _, st in p2),
            "id on-1 was applied a second time (chg-1 port 2: %s)" % p2[-5:])
    T.log("  on-1 not applied again: port 2 disabled in %d records" % len(p2))

    T.log("step (6): on-4, 70 ids for a port chg-1 lacks, then off-2 once more")
    seq = until_reported(broker, agent, "port_on (on-4)", in_service, id="on-4", cmd="port_on",
                         port=2, reason="repaired")
    for batch in range(10):  # 7 a batch: below the agent's 16 waiting between two ticks
        T.publish_lines(broker, TOPIC, [json.dumps(
            {"v": 1, "ts": T.now_ms(), "id": "nx-%d" % (batch * 7 + i), "cmd": "port_off",
             "dev": "chg-1", "port": 9}) for i in range(7)])
        time.sleep(0.3)
    T.wait_until(lambda: agent.proc.log_text().count("no port 9 on chg-1") >= 70, 15,
                 "the 70 commands for port 9 refused")
    s1 = agent.last_seq()
    send(broker, id="off-2", port=2)
    until_reported(broker, agent, "port_off chg-1 port 3 (off-11)", disabled, id="off-11", port=3)
    T.wait_until(lambda: agent.last_seq() >= s1 + 3, 15, "three more messages")
    p2 = port_states(agent, "chg-1", 2, seq)
    T.check(p2 and all(st != "disabled" for _, st in p2),
            "id off-2 was applied a second time once the ring forgot it (chg-1 port 2: %s)"
            % p2[-5:])
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status on SIGTERM")


if __name__ == "__main__":
    T.run(main)
