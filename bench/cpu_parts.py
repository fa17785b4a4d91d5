"""bench/cpu_parts.py snap FILE | diff FILE: the CPU seconds each part of the machine used
between a snapshot and now, so that a benchmark can say where a side's time went.

snap FILE: every process's user + system time (/proc/PID/stat) and the machine's busy time
(/proc/stat) written to FILE. diff FILE: one line, "cpu openstack=S kubernetes=S
kupenstack=S bench=S other=S (openstack: neutron=S nova=S ...)" (seconds since the
snapshot): the processes of each part (by their command line, below), other: the rest of
the machine's busy time, processes that ended in between included; then the openstack
part by service, most first.
"""
import json
import os
import sys

HZ = os.sysconf("SC_CLK_TCK")

# The first pattern found in a process's command line names its part.
PARTS = (
    ("kupenstack", ("bin/kupenstack",)),
    ("kubernetes", ("kube-apiserver", "kube-controller-manager", "/etcd", "kubectl")),
    ("bench", ("instances_direct.py", "http.server", "cpu_parts.py")),
    ("openstack", ("openstack.d/", "uWSGI", "postgres", "beam.smp", "epmd", "dnsmasq",
                   "neutron-", "nova-", "keystone", "placement", "glance", "cinder")),
)

# The openstack part, by service (the first pattern found), for the line's "(...)".
SERVICES = (
    ("neutron", ("neutron", "ovs-agent", "dnsmasq")),
    ("nova", ("nova-",)),
    ("placement", ("placement",)),
    ("keystone", ("keystone",)),
    ("postgres", ("postgres",)),
    ("rabbitmq", ("beam.smp", "epmd")),
)
ORDER = ("openstack", "kubernetes", "kupenstack", "bench")


def first(table, cmd, default):
    for name, patterns in table:
        for p in patterns:
            if p in cmd:
                return name
    return default


def part_of(cmd):
    part = first(PARTS, cmd, "other")
    if part == "openstack":
        return part + "/" + first(SERVICES, cmd, "other")
    return part


def busy():
    """The machine's busy time, seconds (all CPUs)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / HZ


def processes():
    """pid -> [part, user + system seconds], for every process still there."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        out[pid] = [part_of(cmd or stat), (int(fields[11]) + int(fields[12])) / HZ]
    return out


def snapshot():
    return {"busy": busy(), "procs": processes()}


def report(before):
    """The "cpu ..." line of what was used since before (a snapshot())."""
    now, total = processes(), busy() - before["busy"]
    parts, services = {p: 0.0 for p, _ in PARTS}, {}
    for pid, (part, t) in now.items():
        if part == "other":
            continue
        old = before["procs"].get(pid)
        used = t - (old[1] if old and old[0] == part else 0)
        if part.startswith("openstack/"):
            services[part[10:]] = services.get(part[10:], 0.0) + used
            part = "openstack"
        parts[part] += used
    other = max(0.0, total - sum(parts.values()))
    by = sorted(services.items(), key=lambda kv: -kv[1])
    return ("cpu " + " ".join("%s=%.1f" % (p, parts[p]) for p in ORDER)
            + " other=%.1f" % other + " (openstack: "
            + " ".join("%s=%.1f" % kv for kv in by if kv[1] >= 0.05) + ")")


def main():
    what, path = sys.argv[1], sys.argv[2]
    if what == "snap":
        with open(path, "w") as f:
            json.dump(snapshot(), f)
        return
    with open(path) as f:
        print(report(json.load(f)))


if __name__ == "__main__":
    main()
