#!/usr/bin/env python3
"""
test_cli.py - the command line of both programs (CONTRACT §7).

For sitepulse-collector and sitepulse-agent: --help (NAME, SYNOPSIS, EXIT
STATUS; exit 0), --version (exit 0), no --config / unknown option / stray
argument (exit 2), a configuration with an unknown key on line 3 and an
out-of-range value on line 5 (exit 2, stderr names FILE:3 and FILE:5 and both
keys), --check-config on a good and a bad file (0 / 2), a missing file and a
syntax error (2), a mail address the alert mail could not carry in [smtp] to
or [site.S] mail_to (2, naming the key and the address), a directory as --config (2). The collector's --broker/--db/--http overrides (healthz on
the --http port, database at --db, broker from --broker) and bad override
values (exit 2 naming the option). SIGTERM and SIGINT end a running collector
and a running agent with exit 0 within 5 s (also with the broker down, and for the collector
while another process holds its database's write lock; what was sent meanwhile is stored once
after a restart).
Runtime failures exit 1: an unusable database path, an HTTP port in use, an
unusable spool path.
"""
import os
import signal
import socket
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

BINS = {"collector": T.COLLECTOR_BIN, "agent": T.AGENT_BIN}


def run(argv, timeout=20):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def expect_exit(argv, code, what, stderr_has=(), stdout_has=()):
    rc, out, err = run(argv)
    T.check(rc == code, "%s: expected exit %d, got %d\n  argv: %s\n  stdout: %s\n  stderr: %s"
            % (what, code, rc, " ".join(argv), out[-800:], err[-800:]))
    for s in stderr_has:
        T.check(s in err, "%s: stderr must mention %r; stderr was:\n%s" % (what, s, err[-1500:]))
    for s in stdout_has:
        T.check(s in out, "%s: stdout must mention %r; stdout was:\n%s" % (what, s, out[-1500:]))
    T.log("  ok: %s -> exit %d" % (what, rc))
    return out, err


def write(path, text, mode=0o600):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def good_collector_ini(d, broker_port=1, http_port=None, db=None):
    return write(os.path.join(d, "good-collector.ini"),
                 "[mqtt]\nuri = tcp://127.0.0.1:%d\nclient_id = cli-test-%d\n[store]\npath = %s\n"
                 "[api]\nlisten = 127.0.0.1:%d\nviewer_tokens = %s\n"
                 % (broker_port, os.getpid(), db or os.path.join(d, "good.db"),
                    http_port or T.free_port(), T.VIEWER_TOKEN))


def good_agent_ini(d):
    return write(os.path.join(d, "good-agent.ini"),
                 "[agent]\nsite = cli-1\nid = gw-1\nspool_path = %s\n[mqtt]\nuri = tcp://127.0.0.1:1\n"
                 % os.path.join(d, "good-spool.db"))


# line numbers matter: an unknown key on line 3, an out-of-range value on line 5
BAD_INI = {
    "collector": ("[mqtt]\nuri = tcp://127.0.0.1:1883\ncolour = blue\n[store]\ngap_window_s = 0\n",
                  "colour", "gap_window_s"),
    "agent": ("[agent]\nsite = cli-1\ncolour = blue\nid = gw-1\nbatch_ms = 5\n", "colour", "batch_ms"),
}


def generic(env, prog):
    b = BINS[prog]
    d = env.subdir("cli-" + prog)
    T.log("step: %s: help, version, command line errors" % prog)
    out, _ = expect_exit([b, "--help"], 0, prog + " --help",
                         stdout_has=("NAME", "SYNOPSIS", "EXIT STATUS", "--config"))
    T.check("sitepulse-" + prog in out, "--help must name the program")
    expect_exit([b, "-h"], 0, prog + " -h", stdout_has=("SYNOPSIS",))
    out, _ = expect_exit([b, "--version"], 0, prog + " --version")
    T.check(out.strip() and out.strip()[-1].isdigit(), "%s --version prints a version: %r" % (prog, out))
    expect_exit([b], 2, prog + " without --config", stderr_has=("--config",))
    expect_exit([b, "--no-such-option"], 2, prog + " with an unknown option")
    good = good_collector_ini(d) if prog == "collector" else good_agent_ini(d)
    expect_exit([b, "--config", good, "stray"], 2, prog + " with a stray argument")
    expect_exit([b, "--config"], 2, prog + " --config without a file")

    T.log("step: %s: configuration files" % prog)
    expect_exit([b, "--config", good, "--check-config"], 0, prog + " --check-config on a good file")
    text, key3, key5 = BAD_INI[prog]
    bad = write(os.path.join(d, "bad.ini"), text)
    for extra in ([], ["--check-config"]):
        _, err = expect_exit([b, "--config", bad] + extra, 2,
                             "%s %s on a file with 2 errors" % (prog, " ".join(extra)),
                             stderr_has=(bad + ":3", bad + ":5", key3, key5))
    T.log("  stderr for the bad file:\n    " + err.strip().replace("\n", "\n    "))
    missing = os.path.join(d, "no-such-file.ini")
    expect_exit([b, "--config", missing], 2, prog + " with a missing file", stderr_has=(missing,))
    # a directory opens but cannot be read: it read as an empty file, all defaults, exit 0
    for extra in ([], ["--check-config"]):
        expect_exit([b, "--config", d] + extra, 2, "%s %s with a directory as --config"
                    % (prog, " ".join(extra)), stderr_has=(d + ": cannot read",))
    syntax = write(os.path.join(d, "syntax.ini"), "[mqtt]\nuri = tcp://127.0.0.1:1883\nthis is not ini\n")
    expect_exit([b, "--config", syntax], 2, prog + " with a syntax error", stderr_has=(syntax + ":3",))
    unknown_sec = write(os.path.join(d, "section.ini"), "[mqtt]\nuri = tcp://127.0.0.1:1883\n[nonsense]\nx = 1\n")
    _, err = expect_exit([b, "--config", unknown_sec], 2, prog + " with an unknown section",
                         stderr_has=("nonsense",))
    # the header is on line 3; the loader reports the section at its first key (line 4)
    T.check(unknown_sec + ":3" in err or unknown_sec + ":4" in err,
            "the unknown section's error must name its line: %r" % err)
    if prog == "collector":
        typo = write(os.path.join(d, "rule.ini"), "[mqtt]\nuri = tcp://127.0.0.1:1883\n"
                     "[rule.lift.trapd]\nhold_s = 5\n")
        _, err = expect_exit([b, "--config", typo], 2, "collector with a rule not in the catalogue",
                             stderr_has=("lift.trapd",))
        T.check(typo + ":3" in err or typo + ":4" in err, "the unknown rule's line: %r" % err)
        rules = write(os.path.join(d, "rules.ini"), "[rule.port.over_temp]\nthreshold = 55.5\n"
                      "hysteresis = 3\n[site.cli-1.rule.lift.trapped]\nhold_s = 30\nseverity = major\n"
                      "enabled = false\n")
        expect_exit([b, "--config", rules, "--check-config"], 0, "collector with rule sections")
        # keys fine alone, wrong together: a sender's longest wait below its first
        for sec in ("smtp", "city"):
            retry = write(os.path.join(d, "retry-%s.ini" % sec), "[%s]\nretry_min_s = 10\n"
                          "retry_max_s = 5\n" % sec)
            for extra in ([], ["--check-config"]):
                expect_exit([b, "--config", retry] + extra, 2,
                            "collector %s with [%s] retry_max_s below retry_min_s"
                            % (" ".join(extra), sec),
                            stderr_has=(retry, "[%s] retry_max_s" % sec, "retry_min_s"))
        # a mail address the alert mail could not carry: refused at start, not every mail later
        for key, value, line in (("to", "ops@example.org, \u8fd0\u7ef4@example.cn", 3),
                                 ("mail_to", '"o.p"@example.org', 5)):
            sec = "[smtp]\nurl = smtp://127.0.0.1:2525\n"
            if key == "mail_to":
                sec += "to = ops@example.org\n[site.cli-1]\n"
            mail = write(os.path.join(d, "mail-%s.ini" % key), sec + "%s = %s\n" % (key, value))
            bad_addr = value.split(", ")[-1]
            for extra in ([], ["--check-config"]):
                expect_exit([b, "--config", mail] + extra, 2,
                            "collector %s with %s = %s" % (" ".join(extra), key, value),
                            stderr_has=(mail + ":%d" % line, key, '"%s"' % bad_addr))
    if prog == "agent":
        nosite = write(os.path.join(d, "nosite.ini"), "[agent]\nid = gw-1\n")
        expect_exit([b, "--config", nosite], 2, "agent without the required site", stderr_has=("site",))
        badid = write(os.path.join(d, "badid.ini"), "[agent]\nsite = Bad Site!\nid = gw-1\n")
        expect_exit([b, "--config", badid], 2, "agent with a bad site id", stderr_has=(badid + ":2", "site"))
        agent_site_rules(b, d, good)


def agent_site_rules(b, d, good):
    """What the simulator refuses is a configuration error, found by --check-config too:
    exit 2 naming the key or option, never "configuration OK" and then exit 1 at start."""
    T.log("step: agent: a site and scenarios the simulator cannot have")
    base = open(good).read()
    if not base.endswith("\n"):
        base += "\n"
    n = base.count("\n")  # the lines below are numbered from n + 1

    def at(name, text, line):
        """The file of base + text, and "FILE:LINE" its error must name (CONTRACT §7)."""
        path = write(os.path.join(d, name), base + text)
        return path, "%s:%d:" % (path, n + line)
    nodev, nodev_at = at("nodev.ini", "[sim]\nlifts = 0\nchargers = 0\n", 2)
    port, port_at = at("port.ini", "[sim]\nports = 12\n[scenario.x]\ndev = chg-1\n"
                       "situation = port_overheat\nport = 20\n", 6)
    nonport, nonport_at = at("nonport.ini", "[scenario.y]\ndev = lift-1\n"
                             "situation = overspeed\nport = 3\n", 4)
    nodevice, nodevice_at = at("nodevice.ini", "[scenario.z]\ndev = chg-3\n"
                               "situation = smoke\n", 2)
    # a key left out (its default) is named at its section's header
    nokey, nokey_at = at("nokey.ini", "[scenario.w]\nsituation = smoke\n", 1)
    cases = [
        ("a --scenario device beyond [sim] lifts", good,
         ["--scenario", "lift-9:overspeed@10"], ("--scenario lift-9:overspeed@10", "lift-9")),
        ("a site without devices", nodev, [], (nodev_at, "[sim] lifts",)),
        ("a scenario port beyond [sim] ports", port, [], (port_at, "[scenario.x] port", "20")),
        ("a scenario port on a situation without one", nonport, [],
         (nonport_at, "[scenario.y] port",)),
        ("a scenario device missing from the site", nodevice, [],
         (nodevice_at, "[scenario.z] dev", "chg-3")),
        ("a scenario without its device", nokey, [], (nokey_at, "[scenario.w] dev")),
    ]
    for what, ini, args, has in cases:
        for extra in (["--check-config"], []):
            expect_exit([b, "--config", ini] + args + extra, 2,
                        "agent %s %s" % (" ".join(extra) or "start", what),
                        stderr_has=(ini,) * (not args) + has)
    # the same situations where they fit the site: accepted
    fits = write(os.path.join(d, "fits.ini"), base + "[scenario.x]\ndev = chg-2\n"
                 "situation = port_overheat\nport = 12\n")
    expect_exit([b, "--config", fits, "--scenario", "lift-2:overspeed@10", "--scenario",
                 "chg-1/12:port_overpower@5", "--scenario", "chg-2:link_lost@1", "--check-config"],
                0, "agent --check-config with scenarios that fit the site")


def collector_overrides(env, broker):
    T.log("step: collector --broker/--db/--http overrides")
    d = env.subdir("overrides")
    file_http, cli_http = T.free_port(), T.free_port()
    file_db, cli_db = os.path.join(d, "from-file.db"), os.path.join(d, "from-cli.db")
    ini = good_collector_ini(d, broker_port=1, http_port=file_http, db=file_db)
    p = T.Proc("collector-overrides", [T.COLLECTOR_BIN, "--config", ini, "--broker", broker.uri,
                                      "--db", cli_db, "--http", "127.0.0.1:%d" % cli_http],
               os.path.join(d, "collector.log"), d)
    env.register(_Part(p))
    p.start()

    def healthy():
        if not p.running():
            raise T.ProcessDied("collector with overrides exited %s:\n%s" % (p.returncode(), p.log_tail(20)))
        st, _ = T.http_get("http://127.0.0.1:%d/healthz" % cli_http, timeout=2)
        return st == 200
    T.wait_until(healthy, 15, "/healthz == 200 on the --http port %d (so --broker works too)" % cli_http)
    T.check(not T.port_open(file_http), "nothing may listen on the file's HTTP port %d" % file_http)
    T.check(os.path.exists(cli_db), "the database must be created at --db %s" % cli_db)
    T.check(not os.path.exists(file_db), "no database may be created at the file's path %s" % file_db)
    rc, el = p.stop(signal.SIGTERM, 10)
    T.check(rc == 0 and el <= 5, "SIGTERM: exit 0 within 5 s expected, got %s after %.2f s" % (rc, el))
    T.log("  ok: overrides honoured; SIGTERM -> 0 after %.2f s" % el)

    ini = good_collector_ini(d)
    for opt, val in (("--http", "nonsense"), ("--http", "127.0.0.1:99999"), ("--broker", "http://x"),
                     ("--db", "")):
        expect_exit([T.COLLECTOR_BIN, "--config", ini, opt, val], 2,
                    "collector %s %r" % (opt, val), stderr_has=(opt,))


class _Part:
    """Lets Env clean up a bare Proc."""

    def __init__(self, proc):
        self.proc = proc
        self.name = proc.name

    def cleanup(self):
        self.proc.kill9()


def signals(env, broker):
    for sig in (signal.SIGTERM, signal.SIGINT):
        name = signal.Signals(sig).name
        T.log("step: %s ends a running collector and agent with exit 0 within 5 s" % name)
        coll = env.collector(broker, name="coll-" + name.lower())
        ag = env.agent(broker, "cli-" + name.lower(), "gw-1", seed=3, lifts=2, chargers=2, ports=12,
                       heartbeat_s=1, time_scale=20, batch_ms=200, name="agent-" + name.lower())
        T.wait_journal_growth([ag], 3, 20, "the agent to stream a little")
        rc, el = ag.terminate(sig, 10)
        T.check(rc == 0 and el <= 5, "agent: %s -> exit 0 within 5 s expected, got %s after %.2f s"
                % (name, rc, el))
        rc, el = coll.terminate(sig, 10)
        T.check(rc == 0 and el <= 5, "collector: %s -> exit 0 within 5 s expected, got %s after %.2f s"
                % (name, rc, el))

    T.log("step: SIGTERM while another process holds the database's write lock")
    # (a backup or an operator's sqlite3 shell): every wait for the lock took SQLite's 5 s
    # busy timeout, the drain's and the last words' one after another, ~17 s in all
    coll = env.collector(broker, name="coll-locked")
    ag = env.agent(broker, "cli-locked", "gw-1", seed=4, lifts=1, chargers=1, ports=2,
                   heartbeat_s=1, time_scale=20, batch_ms=200, name="agent-locked")
    T.wait_journal_growth([ag], 3, 20, "the agent to stream a little")
    con = sqlite3.connect(coll.db_path, timeout=10, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        T.wait_until(lambda: "database is locked" in coll.proc.log_text(), 20,
                     "the collector's writer to find the database locked")
        rc, el = coll.terminate(signal.SIGTERM, 30)
    finally:
        con.close()  # rolls back: nothing was written
    T.check(rc == 0 and el <= 5, "collector with the database locked: SIGTERM -> exit 0 within 5 s, "
            "got %s after %.2f s" % (rc, el))
    coll.start()
    ag.restart_silent()  # creates nothing more, resends what no ack covers
    T.wait_stored_equals_journal(coll, [ag], 60, "what the agent sent while the database was locked")
    ag.terminate()
    coll.terminate()

    T.log("step: SIGTERM with the broker unreachable")
    dead = T.free_port()
    coll = T.Collector(env, None, name="coll-nobroker", uri="tcp://127.0.0.1:%d" % dead)
    coll.start(wait=False)
    T.wait_until(lambda: coll.healthz() == 503, 15, "/healthz 503 while the collector has no broker")
    ag = T.Agent(env, broker, "cli-nobroker", "gw-1", name="agent-nobroker",
                 uri="tcp://127.0.0.1:%d" % dead)
    ag.start()
    T.wait_until(lambda: "started" in ag.proc.log_text(), 10, "the agent to start")
    rc, el = ag.terminate(signal.SIGTERM, 10)
    T.check(rc == 0 and el <= 5, "agent without broker: SIGTERM -> exit 0 within 5 s, got %s after %.2f s"
            % (rc, el))
    rc, el = coll.terminate(signal.SIGTERM, 10)
    T.check(rc == 0 and el <= 5, "collector without broker: SIGTERM -> exit 0 within 5 s, got %s "
            "after %.2f s" % (rc, el))


def runtime_failures(env, broker):
    T.log("step: runtime failures exit 1")
    d = env.subdir("failures")
    ini = good_collector_ini(d, broker.port)
    baddb = os.path.join(d, "no-such-dir", "x.db")
    _, err = expect_exit([T.COLLECTOR_BIN, "--config", ini, "--db", baddb], 1,
                         "collector with a database in a directory that does not exist")
    T.log("  stderr: %s" % err.strip().replace("\n", " | ")[:300])
    T.check(baddb in err, "the error must name the database path %s: %r" % (baddb, err[-500:]))

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        expect_exit([T.COLLECTOR_BIN, "--config", ini, "--http", "127.0.0.1:%d" % busy], 1,
                    "collector with its HTTP port in use")

    agent_ini = write(os.path.join(d, "agent.ini"),
                      "[agent]\nsite = cli-1\nid = gw-1\nspool_path = %s\n[mqtt]\nuri = %s\n"
                      % (os.path.join(d, "no-such-dir", "spool.db"), broker.uri))
    expect_exit([T.AGENT_BIN, "--config", agent_ini], 1, "agent with a spool in a directory that "
                "does not exist")


def main(env):
    for prog in ("collector", "agent"):
        generic(env, prog)
    broker = env.broker()
    collector_overrides(env, broker)
    runtime_failures(env, broker)
    signals(env, broker)


if __name__ == "__main__":
    T.run(main)
