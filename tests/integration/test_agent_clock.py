#!/usr/bin/env python3
"""
test_agent_clock.py - an agent tells from the collector's acks whether its
own clock agrees with the collector's (agent/clockcheck.h; docs/operations.md,
"Clocks").

A real broker and collector; three agents with the built-in simulator, two
of them under libfaketime (their wall clocks off, their monotonic clocks
real):
  (1) the one an hour ahead logs that its clock is ~3600 s ahead of the
      collector's, the one 10 minutes behind that its clock is ~600 s
      behind, and the one whose clock is right says nothing of the kind
      while its messages are acknowledged;
  (2) the clock an hour ahead is set right: that agent logs that its clock
      agrees with the collector's again.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE = "clock-agents"
AHEAD_S, BEHIND_S = 3600, 600
OFF_LINE = re.compile(r"this gateway's clock is (\d+) s (ahead of|behind) the collector's")
AGAIN = "this gateway's clock agrees with the collector's again"


def said_off(agent):
    """(seconds, 'ahead of' or 'behind') of each disagreement the agent logged."""
    return [(int(m.group(1)), m.group(2)) for m in OFF_LINE.finditer(agent.proc.log_text())]


def main(env):
    broker = env.broker()
    env.collector(broker)
    ahead_env, ahead_file = T.faketime_env(env, AHEAD_S, "faketime-ahead")
    behind_env, _ = T.faketime_env(env, -BEHIND_S, "faketime-behind")
    ahead = env.agent(broker, SITE, "gw-ahead", env_vars=ahead_env)
    behind = env.agent(broker, SITE, "gw-behind", env_vars=behind_env, seed=2)
    right = env.agent(broker, SITE, "gw-right", seed=3)

    T.log("(1) two clocks off, one right")
    T.wait_until(lambda: said_off(ahead) and said_off(behind), 30,
                 "the agents whose clocks are off say so")
    s, side = said_off(ahead)[0]
    T.check(side == "ahead of" and AHEAD_S - 10 <= s <= AHEAD_S,
            "gw-ahead: its clock %d s %s the collector's" % (s, side))
    s, side = said_off(behind)[0]
    T.check(side == "behind" and BEHIND_S - 10 <= s <= BEHIND_S,
            "gw-behind: its clock %d s %s the collector's" % (s, side))
    # the right one has had its acks too: several of its messages covered
    first = T.retained_ack(broker, SITE, "gw-right") or 0
    T.wait_until(lambda: (T.retained_ack(broker, SITE, "gw-right") or 0) >= first + 5, 20,
                 "gw-right's messages acknowledged")
    T.check(not said_off(right), "gw-right says nothing of its clock: %r" % said_off(right))
    T.check(len(said_off(ahead)) == 1,
            "said once, not at every ack: %d times" % len(said_off(ahead)))

    T.log("(2) gw-ahead's clock set right")
    with open(ahead_file, "w") as f:
        f.write("+0\n")
    time.sleep(2.5)  # libfaketime reads the file again after FAKETIME_CACHE_DURATION
    T.wait_until(lambda: AGAIN in ahead.proc.log_text(), 20, "gw-ahead: its clock agrees again")
    T.check(AGAIN not in right.proc.log_text() and AGAIN not in behind.proc.log_text(),
            "only gw-ahead's clock came right")


if __name__ == "__main__":
    T.run(main)
