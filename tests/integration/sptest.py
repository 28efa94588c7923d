"""
sptest.py - the shared harness of sitepulse's integration tests.

Every test script starts real processes (mosquitto on a free loopback port
with a generated configuration, the real sitepulse-collector and
sitepulse-agent binaries) in a private temporary directory, and observes
them from the outside only: the HTTP API, /metrics, the agents' journals,
the MQTT topics (mosquitto_pub / mosquitto_sub) and, after a collector has
stopped, its SQLite file read-only. STYLE.md rule 23: nothing waits with a
fixed sleep; every wait polls a condition up to a hard deadline and fails
with a message naming what it waited for.

Environment (set by ctest, see tests/CMakeLists.txt; defaults for a
developer running a script by hand):
  SP_BIN_DIR     the binaries             (default <source>/build/bin)
  SP_TEST_TMP    a scratch directory      (default <build>/tests/tmp or /tmp)
  SP_SOURCE_DIR  the source tree          (default: two levels above this file)
  SP_KEEP_TMP=1  keep the test's directory even when it passes

Usage in a test script:

    import sptest as T

    def main(env):
        broker = env.broker()
        coll = env.collector(broker)
        ag = env.agent(broker, site="s1", agent_id="gw-1", seed=1)
        ...

    if __name__ == "__main__":
        T.run(main)

Also here: Agent(args=...) / start(args) / restart_silent() (extra command-line
arguments, e.g. --scenario :silent@0 to let an agent drain its spool without
creating anything more) and acked_all(); TcpProxy (an agent reaches the broker
through it; cut() / restore() cut it off); db_open_ro(), db_chunk_records(),
db_site_records(), db_integrity(), db_readings_count() (the collector's SQLite
file, read-only; readings are stored in table reading_chunks, schema v3).

Processes are always cleaned up (try/finally, atexit, a SIGTERM handler,
and PR_SET_PDEATHSIG so they die with the test even when it is SIGKILLed).
On failure the tail of every process log is printed and the directory is
kept. Only the Python standard library and the mosquitto client tools are
used.
"""

import atexit
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chunkfmt  # noqa: E402  (the stored chunk format, shared with bench/benchlib.py)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SP_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
BIN_DIR = os.environ.get("SP_BIN_DIR") or os.path.join(SOURCE_DIR, "build", "bin")
COLLECTOR_BIN = os.path.join(BIN_DIR, "sitepulse-collector")
AGENT_BIN = os.path.join(BIN_DIR, "sitepulse-agent")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"

VIEWER_TOKEN = "viewer-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"

# Metric names CONTRACT §5 promises (labels not included).
CONTRACT_METRICS = [
    "sitepulse_messages_received_total",
    "sitepulse_messages_stored_total",
    "sitepulse_messages_duplicate_total",
    "sitepulse_messages_rejected_total",
    "sitepulse_records_stored_total",
    "sitepulse_records_rejected_total",
    "sitepulse_messages_missing_total",
    "sitepulse_mail_sent_total",
    "sitepulse_mail_failed_total",
    "sitepulse_summaries_sent_total",
    "sitepulse_summaries_failed_total",
    "sitepulse_alerts",
    "sitepulse_mail_queued",
    "sitepulse_summaries_queued",
    "sitepulse_queue_depth",
    "sitepulse_devices",
]

_T0 = time.monotonic()
_LIVE = []  # every Proc started and not yet reaped, for the emergency cleanup


class TestFailure(AssertionError):
    """A check failed; the message says what was expected and what happened."""


class ProcessDied(TestFailure):
    """A process a wait depends on has exited: waiting longer is pointless."""


# ---------------------------------------------------------------- output

def log(msg):
    """A progress line: seconds since the start, then the message."""
    print("[%6.2fs] %s" % (time.monotonic() - _T0, msg), flush=True)


def check(cond, msg):
    """Fails the test with msg unless cond holds."""
    if not cond:
        raise TestFailure(msg)


def check_eq(actual, expected, what):
    if actual != expected:
        raise TestFailure("%s: expected %r, got %r" % (what, expected, actual))


# ---------------------------------------------------------------- waiting

def wait_until(fn, timeout, what, interval=0.15):
    """Calls fn() every `interval` s until it returns a truthy value (returned),
    at most `timeout` s. Exceptions of the usual transient kinds (connection
    refused, HTTP errors, half-written files) count as "not yet". Raises
    TestFailure naming `what` and the last value or error at the deadline."""
    interval = min(max(interval, 0.1), 0.2)
    deadline = time.monotonic() + timeout
    max_rounds = int(timeout / interval) + 3
    last = None
    for _ in range(max_rounds):
        try:
            v = fn()
            if v:
                return v
            last = v
        except ProcessDied:
            raise
        except (OSError, ValueError, urllib.error.URLError, TestFailure) as e:
            last = "%s: %s" % (type(e).__name__, e)
        now = time.monotonic()
        if now >= deadline:
            break
        time.sleep(min(interval, deadline - now))
    raise TestFailure("timed out after %.1f s waiting for %s (last: %s)"
                      % (timeout, what, _short(last)))


def _short(v, n=600):
    s = repr(v) if not isinstance(v, str) else v
    return s if len(s) <= n else s[:n] + "..."


# ---------------------------------------------------------------- ports

def config_default(binary, section, key):
    """A key's default as the program itself documents it (--config-reference, the source of
    docs/configuration.md), so a test that means "the default" follows it."""
    ref = subprocess.run([binary, "--config-reference"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    part = ref.split("### `[%s]`" % section, 1)
    m = re.search(r"^\| `%s` \|[^|]*\| `([^`]*)` \|" % re.escape(key),
                  part[1].split("\n### ", 1)[0] if len(part) == 2 else "", re.M)
    if m is None:
        raise AssertionError("%s --config-reference has no [%s] %s" % (binary, section, key))
    return m.group(1)


def _ephemeral_low():
    """The lowest port the kernel hands out by itself (bind to port 0, outgoing connections)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS = random.Random(os.getpid() ^ time.time_ns())


def free_port():
    """A currently free TCP port on 127.0.0.1, chosen below the kernel's ephemeral range.

    A test often takes a port some time before anything listens on it (a broker started
    next, a sink that "comes back" half a minute later, a broker restarted on the same
    port) while other tests run at once (ctest -j). A port of the ephemeral range can be
    taken meanwhile by any outgoing connection on the machine; one below it only by
    another test choosing the same port at random (1 in ~10,000)."""
    high = min(_ephemeral_low(), 65536)
    low = max(1024, high - 12000)
    for _ in range(100 if high - low >= 1000 else 0):
        port = _PORTS.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (or lingering): another
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # no room below the range
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- processes

try:  # loaded once here: after fork() only the call itself happens
    import ctypes
    _PRCTL = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except Exception:  # pragma: no cover - not Linux/glibc: no safety net, atexit still works
    _PRCTL = None


def _child_setup():
    # die with the test process, even when it is SIGKILLed (ctest timeout)
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    """One child process with its output appended to a log file."""

    def __init__(self, name, argv, log_path, cwd, env_vars=None):
        """env_vars: added to (or replacing in) this process's environment."""
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env_vars = dict(env_vars or {})
        self.p = None
        self.starts = 0

    def start(self):
        check(self.p is None or self.p.poll() is not None, "%s already running" % self.name)
        self.starts += 1
        with open(self.log_path, "ab") as f:
            f.write(("---- start #%d: %s\n" % (self.starts, " ".join(self.argv))).encode())
            f.flush()
            self.p = subprocess.Popen(self.argv, stdout=f, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=self.cwd,
                                      env=dict(os.environ, **self.env_vars) if self.env_vars
                                      else None, preexec_fn=_child_setup)
        _LIVE.append(self)
        return self

    @property
    def pid(self):
        return self.p.pid if self.p else None

    def running(self):
        return self.p is not None and self.p.poll() is None

    def returncode(self):
        return None if self.p is None else self.p.poll()

    def send_signal(self, sig):
        if self.running():
            self.p.send_signal(sig)

    def wait(self, timeout):
        """Exit code, or None if still running after timeout s."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends sig, waits up to timeout s; returns (exit code, seconds).
        A process still alive at the deadline is killed and the exit code is None."""
        if self.p is None:
            return None, 0.0
        t0 = time.monotonic()
        if self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.wait(timeout)
        elapsed = time.monotonic() - t0
        if rc is None:
            self.p.kill()
            self.p.wait(5)
        self._forget()
        return rc, elapsed

    def kill9(self):
        if self.p is None:
            return
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)
        self._forget()

    def _forget(self):
        if self in _LIVE:
            _LIVE.remove(self)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def _kill_all():
    for p in list(_LIVE):
        try:
            if p.p is not None and p.p.poll() is None:
                p.p.kill()
                p.p.wait(5)
        except Exception:
            pass
        p._forget()


atexit.register(_kill_all)


# ---------------------------------------------------------------- mosquitto

class Broker:
    """mosquitto on a free loopback port, configured in its own directory."""

    def __init__(self, env, name="broker", persistence=False, port=None, listener_lines=None,
                 extra_lines=(), scheme="tcp"):
        """listener_lines replace the default plain, anonymous listener (use {port});
        extra_lines are appended (e.g. password_file, acl_file)."""
        self.env = env
        self.name = name
        self.dir = env.subdir(name)
        self.port = port or free_port()
        self.persistence = persistence
        self.listener_lines = listener_lines
        self.extra_lines = list(extra_lines)
        self.scheme = scheme
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self._write_conf()
        self.proc = Proc(name, [MOSQUITTO, "-c", self.conf], os.path.join(self.dir, "mosquitto.log"),
                         self.dir)
        env.register(self)

    @property
    def uri(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def _write_conf(self):
        listener = ([l.format(port=self.port) for l in self.listener_lines] if self.listener_lines
                    else ["listener %d 127.0.0.1" % self.port, "allow_anonymous true"])
        # started as root, mosquitto would drop to user "mosquitto", which cannot read
        # the test's 0600 files; as anyone else it keeps the caller's user anyway
        run_as = ["user root"] if os.geteuid() == 0 else []
        lines = listener + run_as + self.extra_lines + [
            "persistence %s" % ("true" if self.persistence else "false"),
            "persistence_location %s/" % self.dir,
            "max_queued_messages 200000",
            # so the collector, not the broker, sees oversized payloads
            "max_packet_size 1048576",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=10):
        log("%s: starting mosquitto on 127.0.0.1:%d" % (self.name, self.port))
        self.proc.start()

        def up():
            if not self.proc.running():
                raise ProcessDied("mosquitto exited with %s:\n%s"
                                  % (self.proc.returncode(), self.proc.log_tail(15)))
            return port_open(self.port)

        wait_until(up, timeout, "%s to accept connections on port %d" % (self.name, self.port))
        return self

    def stop(self, timeout=10):
        log("%s: stopping (SIGTERM)" % self.name)
        rc, el = self.proc.stop(signal.SIGTERM, timeout)
        wait_until(lambda: not port_open(self.port), 5, "%s port %d to close" % (self.name, self.port))
        return rc, el

    def kill(self):
        log("%s: kill -9" % self.name)
        self.proc.kill9()

    def restart(self, timeout=15):
        if self.proc.running():
            self.stop()
        return self.start(timeout)

    def cleanup(self):
        self.proc.kill9()


# ---------------------------------------------------------------- MQTT tools

def publish(broker, topic, payload, qos=1, retain=False, client_id=None, timeout=20):
    """Publishes one raw payload (bytes or str) with mosquitto_pub; the payload
    goes through a file (-f), so any bytes (invalid UTF-8, 300 KiB) work.
    Returns (exit code, stderr text). The caller checks the exit code: the tool
    refuses some topics by itself."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    fd, path = tempfile.mkstemp(prefix="pub-", suffix=".bin", dir=broker.env.subdir("pub"))
    with os.fdopen(fd, "wb") as f:
        f.write(payload)
    argv = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(broker.port), "-q", str(qos),
            "-t", topic, "-f", path]
    if retain:
        argv.append("-r")
    if client_id:
        argv += ["-i", client_id]
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    finally:
        os.unlink(path)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace").strip()


def publish_lines(broker, topic, lines, qos=1, timeout=60):
    """Publishes each line as one message in a single mosquitto_pub -l run (a flood).
    Lines must not contain newlines. Returns (exit code, output)."""
    data = b"".join((l.encode("utf-8") if isinstance(l, str) else l) + b"\n" for l in lines)
    argv = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(broker.port), "-q", str(qos),
            "-t", topic, "-l"]
    r = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace").strip()


def publish_ok(broker, topic, payload, **kw):
    rc, err = publish(broker, topic, payload, **kw)
    check(rc == 0, "mosquitto_pub to %s failed (exit %d): %s" % (topic, rc, err))


def retained(broker, topic, timeout=3):
    """The retained payload on topic (bytes), or None if there is none."""
    argv = [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(broker.port), "-t", topic, "-C", "1",
            "-W", str(max(1, int(timeout))), "--retained-only"]
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0 or not r.stdout:
        return None
    return r.stdout.rstrip(b"\n")


def retained_ack(broker, site, agent):
    """The seq of the retained end-to-end ack of an agent, or None."""
    raw = retained(broker, "sp/v1/%s/%s/ack" % (site, agent))
    if raw is None:
        return None
    return json.loads(raw.decode("utf-8"))["seq"]


def now_ms():
    """The test's wall clock in ms."""
    return int(time.time() * 1000)


def idle_lift(dev, ts):
    """A lift record of a lift standing idle at floor 1, doors closed (every field valid)."""
    return {"t": "lift", "dev": dev, "ts": ts, "floor": 1, "dir": "stop", "door": "closed",
            "door_zone": True, "occupied": False, "speed": 0, "mode": "normal",
            "power": "mains", "safety_ok": True}


class FakeGateway:
    """A gateway the test plays with mosquitto_pub: birth and state messages,
    and data messages in seq order, each waiting for the collector's end-to-end
    ack (docs/protocol.md, "Acknowledgement")."""

    def __init__(self, broker, site, agent):
        self.broker = broker
        self.site = site
        self.agent = agent
        self.seq = 0

    def topic(self, kind):
        return "sp/v1/%s/%s/%s" % (self.site, self.agent, kind)

    def birth(self, devices, fw="fake 0.0"):
        """devices: the birth's device entries (dicts)."""
        publish_ok(self.broker, self.topic("birth"),
                   json.dumps({"v": 1, "ts": now_ms(), "fw": fw, "devices": devices}))

    def state(self, online, ts=None, retain=True):
        """A state message stamped ts (default: now), retained as an agent's are."""
        publish_ok(self.broker, self.topic("state"),
                   json.dumps({"online": online, "ts": now_ms() if ts is None else ts}),
                   retain=retain)

    def publish(self, records):
        """One data message of these records, the next seq, without waiting for its ack
        (as an agent's window does); returns its payload, to publish again as a resend."""
        self.seq += 1
        payload = json.dumps({"v": 1, "seq": self.seq, "ts": now_ms(), "records": records},
                             separators=(",", ":"))
        publish_ok(self.broker, self.topic("data"), payload)
        return payload

    def send(self, records, timeout=15):
        """One data message of these records; returns (sent, acked), ms, once acked."""
        sent = now_ms()
        self.publish(records)
        wait_until(lambda: (retained_ack(self.broker, self.site, self.agent) or 0) >= self.seq,
                   timeout, "%s's ack of seq %d" % (self.agent, self.seq))
        return sent, now_ms()

    def ack(self):
        """The retained ack (a dict: seq, ts), or None."""
        raw = retained(self.broker, self.topic("ack"))
        return None if raw is None else json.loads(raw.decode("utf-8"))


# ---------------------------------------------------------------- TCP proxy

class TcpProxy:
    """A threaded TCP proxy 127.0.0.1:<free port> -> 127.0.0.1:target_port, to cut
    one client (e.g. an agent: Agent(uri=proxy.uri)) off the broker while
    everyone else keeps their connection. Each accepted connection opens its
    own connection to the target (so a restarted broker is reached again).

    cut() closes every proxied connection (both sides) and, until restore(),
    closes every new connection right after accepting it (the client sees its
    connection reset/closed, as with a broken link).

    hold_down() stops passing what the target sends (PUBACKs, CONNACKs...) to
    the clients, on every connection, until release_down(): the bytes wait in
    the proxy and the target's socket (a one-way stall); the clients' bytes
    still reach the target."""

    def __init__(self, env, target_port, name="proxy", scheme="tcp"):
        self.env = env
        self.name = name
        self.target_port = target_port
        self.scheme = scheme
        self._lock = threading.Lock()
        self._pairs = set()          # (client socket, upstream socket)
        self._cut = False
        self._closed = False
        self._down_open = threading.Event()   # cleared by hold_down()
        self._down_open.set()
        self.accepted = 0            # connections accepted in total
        self.refused = 0             # connections closed at once because of a cut
        self.cuts = 0
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind(("127.0.0.1", 0))
        self._ls.listen(64)
        self.port = self._ls.getsockname()[1]
        self._t = threading.Thread(target=self._accept_loop, name="%s-accept" % name, daemon=True)
        self._t.start()
        env.register(self)
        log("%s: 127.0.0.1:%d -> 127.0.0.1:%d" % (name, self.port, target_port))

    @property
    def uri(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    @property
    def is_cut(self):
        return self._cut

    def connections(self):
        with self._lock:
            return len(self._pairs)

    @staticmethod
    def _shut(sock):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    def _accept_loop(self):
        while not self._closed:
            try:
                c, _ = self._ls.accept()
            except OSError:
                if self._closed:
                    return
                time.sleep(0.05)
                continue
            with self._lock:
                self.accepted += 1
                refuse = self._cut or self._closed
                if refuse:
                    self.refused += 1
            if refuse:
                # RST rather than FIN: the client sees a broken link at once
                try:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    c.close()
                except OSError:
                    pass
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target_port), timeout=3)
                u.settimeout(None)
            except OSError:
                self._shut(c)  # target down: the client sees its connection closed
                continue
            pair = (c, u)
            with self._lock:
                if self._cut or self._closed:
                    self._shut(c)
                    self._shut(u)
                    continue
                self._pairs.add(pair)
            for src, dst in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(self, src, dst, pair):
        down = src is pair[1]  # target -> client
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while down and not self._down_open.wait(0.2):
                    if self._closed or pair not in self._pairs:
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._pairs.discard(pair)
            self._shut(src)
            self._shut(dst)

    def cut(self):
        """Closes every proxied connection; refuses new ones until restore()."""
        with self._lock:
            self._cut = True
            self.cuts += 1
            pairs = list(self._pairs)
            self._pairs.clear()
        for c, u in pairs:
            self._shut(c)
            self._shut(u)
        log("%s: CUT (%d connection(s) closed)" % (self.name, len(pairs)))

    def hold_down(self):
        """Holds what the target sends to the clients until release_down()."""
        self._down_open.clear()
        log("%s: holding target -> client" % self.name)

    def release_down(self):
        self._down_open.set()
        log("%s: target -> client released" % self.name)

    def restore(self):
        with self._lock:
            self._cut = False
        log("%s: restored" % self.name)

    def close(self):
        with self._lock:
            self._closed = True
            pairs = list(self._pairs)
            self._pairs.clear()
        self._shut(self._ls)
        for c, u in pairs:
            self._shut(c)
            self._shut(u)

    def cleanup(self):
        self.close()


# ---------------------------------------------------------------- HTTP

def http_get(url, headers=None, timeout=5, context=None):
    """(status, body bytes) of a GET; HTTP errors are answers, not exceptions.
    context: an ssl.SSLContext for https URLs."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        body = e.read()
        e.close()
        return e.code, body


def parse_metrics(text):
    """Prometheus text -> {series text: float}, e.g.
    'sitepulse_messages_rejected_total{reason="bad_json"}' -> 3.0"""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        try:
            out[series.strip()] = float(value)
        except ValueError:
            raise TestFailure("unparseable metrics line: %r" % line)
    return out


def metric_names(metrics):
    """The set of metric names (series text without labels)."""
    return {k.split("{", 1)[0] for k in metrics}


# ---------------------------------------------------------------- INI

def write_ini(path, sections, mode=0o644):
    """sections: list of (name, [(key, value), ...]) or dict name -> dict."""
    items = sections.items() if isinstance(sections, dict) else sections
    lines = []
    for name, kv in items:
        lines.append("[%s]" % name)
        pairs = kv.items() if isinstance(kv, dict) else kv
        for k, v in pairs:
            if isinstance(v, bool):
                v = "true" if v else "false"
            lines.append("%s = %s" % (k, v))
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    os.chmod(path, mode)


# ---------------------------------------------------------------- collector

class Collector:
    """sitepulse-collector with a generated collector.ini (chmod 600)."""

    def __init__(self, env, broker, name="collector", gap_window_s=600, http_port=None,
                 db_path=None, client_id=None, log_level="info", extra=None, args=None, uri=None,
                 https_ca=None, env_vars=None):
        """https_ca: the API serves HTTPS ([api] tls_* in extra) with a certificate from this CA;
        env_vars: added to the collector's environment."""
        self.env = env
        self.ssl_context = None
        if https_ca:
            import ssl
            self.ssl_context = ssl.create_default_context(cafile=https_ca)
        self.broker = broker
        self.uri = uri or (broker.uri if broker else "tcp://127.0.0.1:1")
        self.name = name
        self.dir = env.subdir(name)
        self.http_port = http_port or free_port()
        self.db_path = db_path or os.path.join(self.dir, "sitepulse.db")
        self.client_id = client_id or "sitepulse-collector-%s-%d" % (name, os.getpid())
        self.gap_window_s = gap_window_s
        self.log_level = log_level
        self.extra = extra or {}
        self.config = os.path.join(self.dir, "collector.ini")
        self.args = list(args or [])
        self.write_config()
        self.proc = Proc(name, [COLLECTOR_BIN, "--config", self.config] + self.args,
                         os.path.join(self.dir, "collector.log"), self.dir, env_vars)
        env.register(self)

    def write_config(self):
        sections = collections.OrderedDict()
        sections["mqtt"] = {"uri": self.uri, "client_id": self.client_id}
        sections["store"] = {"path": self.db_path, "gap_window_s": self.gap_window_s}
        sections["api"] = {"listen": "127.0.0.1:%d" % self.http_port,
                           "viewer_tokens": VIEWER_TOKEN,
                           "operator_tokens": OPERATOR_TOKEN}
        sections["log"] = {"level": self.log_level}
        for sec, kv in self.extra.items():
            sections.setdefault(sec, {}).update(kv)
        write_ini(self.config, sections, 0o600)

    @property
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.ssl_context else "http", self.http_port)

    def start(self, wait=True, timeout=15):
        log("%s: starting (http %d, db %s)" % (self.name, self.http_port, self.db_path))
        self.proc.start()
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=15):
        def ok():
            if not self.proc.running():
                raise ProcessDied("%s exited with %s:\n%s"
                                  % (self.name, self.proc.returncode(), self.proc.log_tail(20)))
            return self.healthz() == 200

        wait_until(ok, timeout, "%s GET /healthz == 200" % self.name)

    def ensure_running(self):
        if not self.proc.running():
            raise ProcessDied("%s exited unexpectedly with %s:\n%s"
                              % (self.name, self.proc.returncode(), self.proc.log_tail(20)))

    def healthz(self):
        try:
            status, _ = http_get(self.base + "/healthz", timeout=3, context=self.ssl_context)
            return status
        except (OSError, urllib.error.URLError):
            return None

    def kill9(self):
        log("%s: kill -9 (pid %s)" % (self.name, self.proc.pid))
        self.proc.kill9()

    def terminate(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig; returns (exit code, seconds until it exited)."""
        log("%s: stopping with %s" % (self.name, signal.Signals(sig).name))
        rc, el = self.proc.stop(sig, timeout)
        log("%s: exited %s after %.2f s" % (self.name, rc, el))
        return rc, el

    def restart(self, wait=True, timeout=20):
        if self.proc.running():
            self.terminate()
        return self.start(wait, timeout)

    def api(self, path, params=None, token=VIEWER_TOKEN, timeout=10):
        """(status, parsed JSON or None) of GET path?params with a bearer token
        (token=None: no Authorization header)."""
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Authorization": "Bearer " + token} if token is not None else {}
        status, body = http_get(url, headers, timeout, context=self.ssl_context)
        try:
            data = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            raise TestFailure("GET %s: %d with a body that is not JSON: %r"
                              % (url, status, body[:300]))
        return status, data

    def api_post(self, path, token, body=b"", timeout=10):
        """(status, parsed JSON or None) of POST path with a bearer token
        (token=None: no Authorization header)."""
        headers = {"Authorization": "Bearer " + token} if token else {}
        req = urllib.request.Request(self.base + path, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            data = e.read()
            e.close()
            return e.code, json.loads(data) if data else None

    def api_ok(self, path, params=None, token=VIEWER_TOKEN):
        status, data = self.api(path, params, token)
        check(status == 200, "GET %s %s: expected 200, got %d %r" % (path, params, status, data))
        return data

    def metrics(self):
        status, body = http_get(self.base + "/metrics", timeout=10, context=self.ssl_context)
        check(status == 200, "GET /metrics: %d" % status)
        return parse_metrics(body.decode("utf-8"))

    def cleanup(self):
        self.proc.kill9()


# ---------------------------------------------------------------- a clock made wrong

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def faketime_env(env, offset_s, name="faketime"):
    """The environment that runs a process under Debian's libfaketime (LD_PRELOAD): its
    wall clock is offset_s off the real one, read from a file the test may rewrite
    ("+N" or "-N" seconds; read again after FAKETIME_CACHE_DURATION, 1 s); its monotonic
    clock is the real one. Returns (env_vars, that file)."""
    check(os.path.exists(FAKETIME_LIB),
          "%s (Debian package libfaketime; scripts/setup-deps installs it)" % FAKETIME_LIB)
    clock_file = os.path.join(env.subdir(name), "offset")
    with open(clock_file, "w") as f:
        f.write("%+d\n" % offset_s)
    asan = os.environ.get("ASAN_OPTIONS", "")
    return ({"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": clock_file,
             "FAKETIME_CACHE_DURATION": "1", "DONT_FAKE_MONOTONIC": "1",
             # ASan wants its runtime first among the preloads; libfaketime is first here
             "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"},
            clock_file)


# ---------------------------------------------------------------- agent

class Agent:
    """sitepulse-agent with its built-in simulator, a spool and a journal in its dir."""

    def __init__(self, env, broker, site, agent_id, seed=1, lifts=2, chargers=2, ports=6,
                 heartbeat_s=1, time_scale=20, batch_ms=200, resend_s=2, ack_wait_s=1,
                 name=None, log_level="info", extra=None, uri=None, args=None, env_vars=None):
        """uri: the broker address the agent uses (default broker.uri; e.g. a TcpProxy's uri);
        args: extra command-line arguments, e.g. ["--scenario", ":silent@0"] (see start());
        env_vars: added to the agent's environment."""
        self.env = env
        self.broker = broker
        self.site = site
        self.agent_id = agent_id
        self.name = name or "agent-%s-%s" % (site, agent_id)
        self.dir = env.subdir(self.name)
        self.spool = os.path.join(self.dir, "spool.db")
        self.journal = os.path.join(self.dir, "journal.jsonl")
        self.config = os.path.join(self.dir, "agent.ini")
        self.lifts, self.chargers, self.ports = lifts, chargers, ports
        sections = collections.OrderedDict()
        sections["agent"] = {"site": site, "id": agent_id, "spool_path": self.spool,
                             "journal": self.journal, "batch_ms": batch_ms,
                             "resend_s": resend_s, "ack_wait_s": ack_wait_s}
        sections["mqtt"] = {"uri": uri or broker.uri}
        sections["sim"] = {"seed": seed, "lifts": lifts, "chargers": chargers, "ports": ports,
                           "heartbeat_s": heartbeat_s, "time_scale": time_scale}
        sections["log"] = {"level": log_level}
        for sec, kv in (extra or {}).items():
            sections.setdefault(sec, {}).update(kv)
        write_ini(self.config, sections)
        self.base_argv = [AGENT_BIN, "--config", self.config]
        self.proc = Proc(self.name, self.base_argv + list(args or []),
                         os.path.join(self.dir, "agent.log"), self.dir, env_vars)
        env.register(self)

    def set_args(self, args):
        """Replaces the extra command-line arguments for the next start()s
        (the configuration, spool and journal stay the same)."""
        self.proc.argv = self.base_argv + list(args or [])

    @property
    def devices(self):
        return (["lift-%d" % i for i in range(1, self.lifts + 1)]
                + ["chg-%d" % i for i in range(1, self.chargers + 1)])

    def start(self, args=None):
        """Starts the agent; args (if not None) replace the extra command-line
        arguments from now on (set_args)."""
        if args is not None:
            self.set_args(args)
        extra = self.proc.argv[len(self.base_argv):]
        log("%s: starting%s" % (self.name, (" " + " ".join(extra)) if extra else ""))
        self.proc.start()
        return self

    def restart(self, args=None):
        if self.proc.running():
            self.terminate()
        return self.start(args)

    def restart_silent(self, sig=signal.SIGTERM, timeout=10):
        """Stops the agent (SIGTERM: it seals its open batch) and starts it again
        with --scenario :silent@0: it then creates nothing more but still
        publishes its spool until the collector has acknowledged everything.
        Returns (exit code, seconds) of the stop."""
        rc, el = self.terminate(sig, timeout) if self.proc.running() else (None, 0.0)
        self.start(["--scenario", ":silent@0"])
        return rc, el

    def acked_all(self):
        """True when the retained ack covers the last created seq (per the journal)."""
        last = self.last_seq()
        ack = retained_ack(self.broker, self.site, self.agent_id)
        return ack is not None and ack >= last

    def kill9(self):
        log("%s: kill -9 (pid %s)" % (self.name, self.proc.pid))
        self.proc.kill9()

    def terminate(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig; returns (exit code, seconds until it exited)."""
        rc, el = self.proc.stop(sig, timeout)
        log("%s: %s -> exited %s after %.2f s" % (self.name, signal.Signals(sig).name, rc, el))
        return rc, el

    def journal_messages(self):
        """(list of (seq, payload dict) of created messages, set of dropped seqs).
        A final line without its newline is still being written: ignored, and so
        are {"spool_reset": ...} lines (the journal opened on a new or restored spool)."""
        msgs, dropped = [], set()
        try:
            with open(self.journal, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return msgs, dropped
        lines = data.split(b"\n")
        if lines and lines[-1] != b"":
            lines = lines[:-1]  # partial last line
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line.decode("utf-8"))
            except ValueError as e:
                raise TestFailure("%s:%d: journal line is not JSON (%s): %r"
                                  % (self.journal, n, e, line[:200]))
            if "dropped" in obj:
                dropped.add(obj["dropped"])
            elif "spool_reset" in obj:
                continue
            else:
                msgs.append((obj["seq"], obj))
        return msgs, dropped

    def journal_records(self):
        """(records of every created message, set of created seqs, set of dropped seqs).
        Fails if a seq was journalled twice."""
        msgs, dropped = self.journal_messages()
        records, seqs = [], set()
        for seq, m in msgs:
            check(seq not in seqs, "%s: seq %d journalled twice" % (self.journal, seq))
            seqs.add(seq)
            records.extend(m["records"])
        return records, seqs, dropped

    def created(self):
        """Number of data messages created so far (per the journal)."""
        return len(self.journal_messages()[0])

    def last_seq(self):
        msgs, _ = self.journal_messages()
        return max((s for s, _ in msgs), default=0)

    def cleanup(self):
        self.proc.kill9()


# ---------------------------------------------------------------- records

def _norm(v):
    # JSON numbers: 230.0 and 230 are the same number (an encoder may write either)
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 53:
        return int(v)
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


def canon(record):
    """The canonical text of a record: sorted keys, integral floats as integers."""
    return json.dumps(_norm(record), sort_keys=True, separators=(",", ":"))


def stored_records(collector, site, devs=None, token=VIEWER_TOKEN):
    """Every reading the collector serves for the devices of a site (all of them
    when devs is None), via /api/v1/devices and /api/v1/readings."""
    if devs is None:
        devs = [d["dev"] for d in collector.api_ok("/api/v1/devices", {"site": site}, token=token)]
    out = []
    for dev in devs:
        status, rows = collector.api("/api/v1/readings", {"site": site, "dev": dev, "limit": 10000},
                                     token=token)
        if status == 404:
            continue  # not known (yet)
        check(status == 200, "readings of %s/%s: %d %r" % (site, dev, status, rows))
        check(len(rows) < 10000, "%s/%s has 10000+ readings: the test is too big to compare"
              % (site, dev))
        out.extend(rows)
    return out


def record_diff(journal_records, stored):
    """(missing, extra): Counters of canonical records, journal minus stored and
    stored minus journal."""
    j = collections.Counter(canon(r) for r in journal_records)
    s = collections.Counter(canon(r) for r in stored)
    return j - s, s - j


def assert_exactly_once(journal_records, stored, what=""):
    """Stored == journal as multisets of records; reports the first few missing,
    duplicated and unexpected records otherwise."""
    j = collections.Counter(canon(r) for r in journal_records)
    s = collections.Counter(canon(r) for r in stored)
    if j == s:
        log("exactly once%s: %d records" % (" (" + what + ")" if what else "", len(journal_records)))
        return
    missing = j - s
    dup = collections.Counter({k: s[k] - j[k] for k in s if k in j and s[k] > j[k]})
    unexpected = collections.Counter({k: v for k, v in s.items() if k not in j})
    lines = ["exactly-once violated%s: journal %d records, stored %d; %d missing, %d duplicated, "
             "%d unexpected" % (" (" + what + ")" if what else "", sum(j.values()),
                                sum(s.values()), sum(missing.values()), sum(dup.values()),
                                sum(unexpected.values()))]
    for title, c in (("missing", missing), ("duplicated", dup), ("unexpected", unexpected)):
        for k, n in list(c.items())[:5]:
            lines.append("  %s x%d: %s" % (title, n, k[:300]))
    raise TestFailure("\n".join(lines))


def check_drops_accounted(collector, msgs, dropped):
    """An agent's spool dropped the seqs `dropped` of its journalled `msgs`: the collector declared
    each dropped message missing and stored every other one (its /metrics)."""
    m = collector.metrics()
    check_eq(m["sitepulse_messages_missing_total"], float(len(dropped)),
             "sitepulse_messages_missing_total (the dropped messages, declared missing)")
    check_eq(m["sitepulse_messages_stored_total"], float(len(msgs) - len(dropped)),
             "sitepulse_messages_stored_total (every message that was not dropped)")


def wait_stored_equals_journal(collector, agents, timeout, what="stored == journal"):
    """Polls until, for every agent, the collector serves exactly the journal's
    records for the agent's devices (one agent per site). Returns a dict
    agent name -> (journal records, seqs)."""
    state = {}

    def done():
        collector.ensure_running()
        for a in agents:
            recs, seqs, _ = a.journal_records()
            stored = stored_records(collector, a.site, a.devices)
            missing, extra = record_diff(recs, stored)
            if missing or extra:
                state["last"] = "%s: %d records missing, %d extra (journal %d, stored %d)" % (
                    a.name, sum(missing.values()), sum(extra.values()), len(recs), len(stored))
                return False
            state[a.name] = (recs, seqs)
        return True

    try:
        wait_until(done, timeout, what, interval=0.2)
    except TestFailure as e:
        raise TestFailure("%s; %s" % (e, state.get("last")))
    return state


def wait_caught_up(collector, agents, timeout, what="the collector to catch up"):
    """While agents keep streaming: takes each agent's journal as it is now and
    polls until every one of those records is stored (newer ones may be
    missing still; extra records are not judged here)."""
    snap = {a.name: a.journal_records()[0] for a in agents}
    state = {}

    def done():
        collector.ensure_running()
        for a in agents:
            missing, _ = record_diff(snap[a.name], stored_records(collector, a.site, a.devices))
            if missing:
                state["last"] = "%s: %d of %d journalled records not stored yet" % (
                    a.name, sum(missing.values()), len(snap[a.name]))
                return False
        return True

    try:
        wait_until(done, timeout, what, interval=0.2)
    except TestFailure as e:
        raise TestFailure("%s; %s" % (e, state.get("last")))
    log("caught up: %s" % ", ".join("%s %d records" % (k, len(v)) for k, v in snap.items()))


def wait_journal_growth(agents, n, timeout, what=None):
    """Polls until each agent created at least n more data messages than now."""
    base = {a.name: a.created() for a in agents}
    wait_until(lambda: all(a.created() >= base[a.name] + n for a in agents), timeout,
               what or "%s to create %d more messages each" % (", ".join(a.name for a in agents), n),
               interval=0.1)


# ---------------------------------------------------------------- the collector's database

def db_open_ro(path, timeout=10):
    """A read-only connection to a collector's SQLite file (read it after the
    collector stopped, or while it runs for counts only)."""
    return sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(path), uri=True, timeout=timeout)


def db_integrity(path):
    """The rows of PRAGMA integrity_check (["ok"] when the file is sound)."""
    db = db_open_ro(path)
    try:
        return [r[0] for r in db.execute("PRAGMA integrity_check")]
    finally:
        db.close()


def db_chunk_records(con, where="", params=()):
    """Yields one tuple (device_id, agent_id, seq, ts, kind, body) per stored
    reading, body the reading's JSON text (str), in storage order (chunk id,
    then index in the chunk). Reads table reading_chunks (schema v3, see
    collector/chunk.h): meta holds n entries (ts, seq, agent_id, body length,
    kind) in the chunk's format fmt (chunkfmt.meta_entries), and body the n
    bodies joined by ','; the lengths are UTF-8 byte lengths. A kind with
    CHUNK_BARE (0x100) set marks a bare body, the canonical tail only: its
    head {"t":KIND,"dev":DEV,"ts":TS is put back here from the entry and the
    chunk's device, as the collector does (schema v8).

    con is an open connection (db_open_ro()); where, when given, is an SQL
    condition on reading_chunks' columns (e.g. "device_id = ?") with params
    its parameters. Chunk ids are not stable (compaction merges chunks), so
    nothing here depends on them beyond ordering. A chunk whose meta and body
    disagree, or whose kinds (schema v15: bit 1 << kind for each kind it
    holds; NULL in chunks written before) names other kinds than its
    readings', raises AssertionError naming the chunk (once it is read to
    the end)."""
    has_kinds = any(col[1] == "kinds" for col in con.execute("PRAGMA table_info(reading_chunks)"))
    sql = ("SELECT c.id, c.device_id, c.n, c.meta, c.body, d.dev, c.fmt, %s FROM reading_chunks c"
           " LEFT JOIN devices d ON d.id = c.device_id" % ("c.kinds" if has_kinds else "NULL"))
    if where:
        sql += " WHERE " + where
    sql += " ORDER BY c.id"
    for cid, device_id, n, meta, body, dev, fmt, kinds in con.execute(sql, params):
        meta = bytes(meta)
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        entries = chunkfmt.meta_entries(meta, fmt)
        if entries is None:
            raise AssertionError("reading_chunks id %d: meta of %d bytes is not whole entries of format %d"
                                 % (cid, len(meta), fmt))
        if len(entries) != n:
            raise AssertionError("reading_chunks id %d: n = %d but meta holds %d entries"
                                 % (cid, n, len(entries)))
        off = 0
        seen = 0
        for i, (ts, seq, agent_id, length, kind) in enumerate(entries):
            if i:
                if raw[off:off + 1] != b",":
                    raise AssertionError("reading_chunks id %d: entry %d: expected ',' at body byte %d, "
                                         "found %r" % (cid, i, off, raw[off:off + 1]))
                off += 1
            if off + length > len(raw):
                raise AssertionError("reading_chunks id %d: entry %d: body length %d at byte %d runs past "
                                     "the body's %d bytes" % (cid, i, length, off, len(raw)))
            try:
                text = raw[off:off + length].decode("utf-8")
            except UnicodeDecodeError as e:
                raise AssertionError("reading_chunks id %d: entry %d: body is not UTF-8: %s"
                                     % (cid, i, e)) from None
            off += length
            got = chunkfmt.reading_json(text, kind, dev, ts)
            if got is None:
                raise AssertionError("reading_chunks id %d: entry %d: bare body of kind %d, "
                                     "device %r, starting %r" % (cid, i, kind, dev, text[:1]))
            kind, text = got
            seen |= 1 << kind if 0 <= kind < 32 else 0
            yield device_id, agent_id, seq, ts, kind, text
        if off != len(raw):
            raise AssertionError("reading_chunks id %d: entries cover %d of the body's %d bytes"
                                 % (cid, off, len(raw)))
        if kinds is not None and kinds != seen:
            raise AssertionError("reading_chunks id %d: kinds %#x, but its readings are of kinds %#x"
                                 % (cid, kinds, seen))


def db_site_records(path, site):
    """Every reading stored for the devices of a site, bodies parsed (no API
    limit: for tests whose sites hold more than 10,000 readings per device)."""
    db = db_open_ro(path)
    try:
        return [json.loads(body) for _, _, _, _, _, body in
                db_chunk_records(db, "device_id IN (SELECT id FROM devices WHERE site = ?)", (site,))]
    finally:
        db.close()


def db_readings_count(path):
    """Number of stored readings, the sum of reading_chunks.n (while the
    collector runs: a consistent snapshot)."""
    db = db_open_ro(path)
    try:
        return db.execute("SELECT coalesce(sum(n), 0) FROM reading_chunks").fetchone()[0]
    finally:
        db.close()


# ---------------------------------------------------------------- background health probe

class HealthProbe:
    """Polls /healthz every 0.2 s in a thread; remembers every non-200 answer."""

    def __init__(self, collector):
        self.collector = collector
        self.samples = 0
        self.bad = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + 900  # bounded even if the test forgets to stop it
        while not self._stop.is_set() and time.monotonic() < deadline:
            st = self.collector.healthz()
            self.samples += 1
            if st != 200:
                self.bad.append((round(time.monotonic() - _T0, 2), st))
            self._stop.wait(0.2)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)


# ---------------------------------------------------------------- test environment

class Env:
    """One test's private directory and the processes started in it."""

    def __init__(self, name):
        self.name = name
        base = os.environ.get("SP_TEST_TMP") or os.path.join(
            os.path.dirname(BIN_DIR), "tests", "tmp")
        try:
            os.makedirs(base, exist_ok=True)
        except OSError:
            base = tempfile.gettempdir()
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=base)
        self.parts = []

    def subdir(self, name):
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        return d

    def register(self, part):
        self.parts.append(part)

    def broker(self, **kw):
        return Broker(self, **kw).start()

    def collector(self, broker, start=True, **kw):
        c = Collector(self, broker, **kw)
        return c.start() if start else c

    def agent(self, broker, site, agent_id, start=True, **kw):
        a = Agent(self, broker, site, agent_id, **kw)
        return a.start() if start else a

    SANITIZER_MARKERS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:",
                         b"WARNING: ThreadSanitizer")

    def sanitizer_reports(self):
        """Logs of this test's processes that hold a sanitizer report."""
        found = []
        for p in self.parts:
            proc = getattr(p, "proc", None)
            if proc is None or not os.path.exists(proc.log_path):
                continue
            with open(proc.log_path, "rb") as f:
                text = f.read()
            if any(m in text for m in self.SANITIZER_MARKERS):
                found.append(proc.log_path)
        return found

    def dump_logs(self, n=40):
        for p in self.parts:
            proc = getattr(p, "proc", None)
            if proc is None:
                continue
            print("----- last %d lines of %s (%s)" % (n, proc.name, proc.log_path))
            print(proc.log_tail(n))
        print("----- test directory kept: %s" % self.dir, flush=True)

    def cleanup(self):
        # agents first (they publish their last words), then collectors, then brokers
        order = ([p for p in self.parts if isinstance(p, Agent)]
                 + [p for p in self.parts if isinstance(p, Collector)]
                 + [p for p in self.parts if isinstance(p, Broker)]
                 + [p for p in self.parts if not isinstance(p, (Agent, Collector, Broker))])
        for p in order:
            try:
                p.cleanup()
            except Exception as e:  # keep cleaning up
                print("cleanup of %s: %s" % (getattr(p, "name", p), e))
        _kill_all()


def _on_signal(sig, frame):
    raise SystemExit("interrupted by signal %d" % sig)


def _check_tools():
    missing = [p for p in (COLLECTOR_BIN, AGENT_BIN) if not os.access(p, os.X_OK)]
    missing += [p for p in (MOSQUITTO, MOSQUITTO_PUB, MOSQUITTO_SUB) if not os.access(p, os.X_OK)]
    if missing:
        raise TestFailure("not found or not executable: %s (SP_BIN_DIR=%s; build first: cmake -S %s "
                          "-B %s/build && make -C %s/build)"
                          % (", ".join(missing), BIN_DIR, SOURCE_DIR, SOURCE_DIR, SOURCE_DIR))


def run(main, name=None):
    """Runs main(env) as one test; exits 0 on success, 1 on failure with the
    failure, the processes' log tails and the kept directory printed."""
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    env = None
    ok = False
    t0 = time.monotonic()
    log("==== %s: start (bin %s)" % (name, BIN_DIR))
    try:
        _check_tools()
        env = Env(name)
        log("directory %s" % env.dir)
        main(env)
        ok = True
    except TestFailure as e:
        print("\nFAIL: %s: %s\n" % (name, e), flush=True)
    except BaseException as e:  # KeyboardInterrupt, SystemExit from a signal, bugs in the test
        print("\nERROR: %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        traceback.print_exc()
    finally:
        if env is not None:
            env.cleanup()
            # a sanitizer report in any process log fails the test (the
            # ASan/UBSan pass of scripts/test relies on this)
            reports = env.sanitizer_reports()
            if ok and reports:
                ok = False
                print("\nFAIL: %s: sanitizer reports in %s" % (name, ", ".join(reports)), flush=True)
            if not ok:
                env.dump_logs()
            elif not os.environ.get("SP_KEEP_TMP"):
                shutil.rmtree(env.dir, ignore_errors=True)
    log("==== %s: %s in %.1f s" % (name, "PASS" if ok else "FAIL", time.monotonic() - t0))
    sys.exit(0 if ok else 1)
