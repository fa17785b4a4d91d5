"""bench/recovery_latency.py: the measuring half of bench/bench_recovery.sh.

  stamp OUT CMD...          run CMD (a `kubectl get -w -o jsonpath=...`), and write each
                            line it prints to OUT as "UNIX_TIME|LINE", flushed, the time
                            taken when the line arrives; CMD is started again if it ends
                            (a watch the API server closed), until SIGTERM.
  pending INJ INST EV [S]   how many failures in INJ are not yet recovered; with S, exits
                            3 naming those injected more than S seconds ago (never
                            recovered within the deadline) and those whose openstack
                            command failed.
  report LABEL INJ INST EV  one line per kind of failure: LABEL, n, the openstack command's
                            own median seconds, and p50/p99 of detection and recovery.

INJ lines: "T_START T_END INSTANCE KIND COUNT0 RC" (the openstack command started at
T_START, ended at T_END with RC; the Instance's status.recovery.count was COUNT0 before).
INST lines (stamped): "T|NAME|AVAILABLE|RECOVERY_COUNT"; EV lines: "T|KIND|NAME|REASON".
Detected: the first Event RecoveryStarted of the Instance stamped after T_START.
Recovered: the first Instance line after T_START with Available True and a recovery count
above COUNT0 (the recovery this failure started is over). Both are counted from T_START.
Percentiles by nearest rank: the p99 of 20 samples is their largest.
"""
import math
import signal
import subprocess
import sys
import time

KINDS = ("error", "stop", "delete")
COMMANDS = {"error": "server set --state error", "stop": "server stop", "delete": "server delete"}


def stamp(out, cmd):
    child = [None]

    def stop(*_):
        if child[0]:
            child[0].terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    with open(out, "a", buffering=1) as f:
        while True:
            child[0] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, bufsize=1)
            for line in child[0].stdout:
                f.write("%.6f|%s" % (time.time(), line))
            child[0].wait()
            time.sleep(0.5)


def read(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def load(inj, inst, ev):
    """The injections, each with its detection and recovery times (None if not yet)."""
    started = {}  # name -> sorted times of its RecoveryStarted Events
    for line in read(ev):
        t, kind, name, reason = (line.split("|") + ["", "", ""])[:4]
        if kind == "Instance" and reason == "RecoveryStarted":
            started.setdefault(name, []).append(float(t))
    avail = {}  # name -> [(time, count)] of its lines with Available True
    for line in read(inst):
        t, name, status, count = (line.split("|") + ["", "", ""])[:4]
        if status == "True":
            avail.setdefault(name, []).append((float(t), int(count or 0)))
    out = []
    for line in read(inj):
        t0, t1, name, kind, count0, rc = line.split()
        t0, count0 = float(t0), int(count0)
        det = next((t for t in started.get(name, []) if t > t0), None)
        rec = next((t for t, c in avail.get(name, []) if t > t0 and c > count0), None)
        out.append({"t0": t0, "cmd": float(t1) - t0, "name": name, "kind": kind, "rc": int(rc),
                    "det": det and det - t0, "rec": rec and rec - t0})
    return out


def pending(inj, inst, ev, deadline=None):
    rows = load(inj, inst, ev)
    now = time.time()
    late = [r for r in rows if r["rc"] != 0 or
            (deadline is not None and r["rec"] is None and now - r["t0"] > deadline)]
    for r in late:
        why = ("the openstack command failed (exit %d)" % r["rc"] if r["rc"] else
               "not recovered %.0f s after the failure (detected: %s)" %
               (now - r["t0"], "no" if r["det"] is None else "after %.1f s" % r["det"]))
        print("%s (%s): %s" % (r["name"], COMMANDS[r["kind"]], why), file=sys.stderr)
    print(sum(1 for r in rows if r["rec"] is None))
    sys.exit(3 if late else 0)


def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100.0 * len(xs)) - 1)]


def report(label, inj, inst, ev):
    rows = load(inj, inst, ev)
    bad = [r for r in rows if r["det"] is None or r["rec"] is None]
    if bad:  # pending() said they were all recovered: this is a bug of the bench
        for r in bad:
            print("%s (%s): no detection or recovery seen" % (r["name"], r["kind"]), file=sys.stderr)
        sys.exit(1)
    for kind in KINDS:
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        det, rec = [r["det"] for r in rs], [r["rec"] for r in rs]
        print("%-26s %-14s %3d %6.1f %10.1f %10.1f %10.1f %10.1f" % (
            COMMANDS[kind], label, len(rs), pct([r["cmd"] for r in rs], 50),
            pct(det, 50), pct(det, 99), pct(rec, 50), pct(rec, 99)))


def main():
    what, args = sys.argv[1], sys.argv[2:]
    if what == "stamp":
        stamp(args[0], args[1:])
    elif what == "pending":
        pending(args[0], args[1], args[2], float(args[3]) if len(args) > 3 else None)
    elif what == "report":
        report(*args[:4])
    else:
        sys.exit("usage: recovery_latency.py stamp|pending|report ...")


if __name__ == "__main__":
    main()
