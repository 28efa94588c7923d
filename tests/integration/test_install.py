#!/usr/bin/env python3
"""`cmake --install` puts the binaries, systemd units, system user and example
configurations where a Debian administrator expects them, and the units are
hardened as docs/operations.md says."""
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("SP_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SP_BUILD_DIR") or os.path.join(SRC, "build")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def cache_value(key):
    with open(os.path.join(BUILD, "CMakeCache.txt"), encoding="utf-8") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split("=", 1)[1].strip()
    return None


prefix = cache_value("CMAKE_INSTALL_PREFIX")
root = tempfile.mkdtemp(prefix="sp-install-", dir=os.environ.get("SP_TEST_TMP"))
try:
    env = dict(os.environ, DESTDIR=root)
    r = subprocess.run(["cmake", "--install", BUILD], env=env, capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "cmake --install succeeds (%s)" % r.stderr.strip()[:300])
    base = root + prefix
    for prog in ("sitepulse-collector", "sitepulse-agent"):
        path = os.path.join(base, "bin", prog)
        check(os.access(path, os.X_OK), "%s installed in %s/bin" % (prog, prefix))
        unit = os.path.join(base, "lib", "systemd", "system", prog + ".service")
        check(os.path.exists(unit), "%s.service installed in %s/lib/systemd/system" % (prog, prefix))
        if not os.path.exists(unit):
            continue
        text = open(unit, encoding="utf-8").read()
        ini = "collector.ini" if "collector" in prog else "agent.ini"
        check("ExecStart=%s/bin/%s --config /etc/sitepulse/%s\n" % (prefix, prog, ini) in text,
              "%s: ExecStart runs the installed binary with /etc/sitepulse/%s" % (prog, ini))
        for line in ("User=sitepulse", "ProtectSystem=strict", "StateDirectory=sitepulse",
                     "NoNewPrivileges=yes", "CapabilityBoundingSet=", "RestartPreventExitStatus=2",
                     "ProtectHome=yes", "PrivateTmp=yes", "SystemCallFilter=@system-service"):
            check(("\n" + line + "\n") in text, "%s: %s" % (prog, line))
    sysusers = os.path.join(base, "lib", "sysusers.d", "sitepulse.conf")
    check(os.path.exists(sysusers) and "u sitepulse" in open(sysusers).read(), "sysusers.d entry for user sitepulse")
    for ini, prog in (("collector.ini", "sitepulse-collector"), ("agent.ini", "sitepulse-agent")):
        ex = os.path.join(base, "share", "doc", "sitepulse", "examples", ini)
        check(os.path.exists(ex), "example %s in share/doc/sitepulse/examples" % ini)
        if os.path.exists(ex):
            r = subprocess.run([os.path.join(base, "bin", prog), "--config", ex, "--check-config"],
                               capture_output=True, text=True, timeout=30)
            check(r.returncode == 0, "installed example %s is valid" % ini)
    check(os.path.exists(os.path.join(base, "share", "doc", "sitepulse", "operations.md")),
          "docs installed in share/doc/sitepulse")
finally:
    shutil.rmtree(root, ignore_errors=True)

if failures:
    print("%d failures" % len(failures))
    sys.exit(1)
print("install layout ok")
