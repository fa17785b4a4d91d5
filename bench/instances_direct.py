"""bench/instances_direct.py PROJECT_ID IMAGE NETWORK N K [POLL]: the other side of
bench/bench_instances.sh: N servers (flavor 1, IMAGE, one port on NETWORK) created
directly through the Nova API by K threads, each taking the next server, POSTing it
and polling GET /servers/{id} every POLL seconds (default 2, as openstacksdk's
wait_for_server) until ACTIVE; then deleted the same way (DELETE, GET until 404). Before
the clock starts, one server is created and deleted (a warm-up, through the same session).

One keystoneauth1 Session (the cloud of $OS_CLOUD in $OS_CLIENT_CONFIG_FILE, its user
scoped to PROJECT_ID), shared by the threads. Every HTTP request it sends is counted,
token requests included. Prints "create SECONDS CALLS" (first POST to the last ACTIVE),
the CPU the machine's parts used meanwhile (bench/cpu_parts.py's "cpu ..." line), a
timeline line (below) and "delete SECONDS CALLS"; exits 1 if a server went to ERROR
or did not get there within 600 s.

bench/instances_direct.py timeline PROJECT_ID T0: the timeline of the servers of the
project, Nova's own timestamps taken T0 (Unix time) as 0: "timeline FIRST_CREATED
LAST_CREATED FIRST_LAUNCHED LAST_LAUNCHED MEAN_BUILD" (seconds; build: launched_at -
created, the time Nova took).
"""
import collections
import datetime
import os
import sys
import threading
import time

import openstack.config
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

import cpu_parts

COMPUTE = {"service_type": "compute", "interface": "public"}
TIMEOUT = 600


class CountingSession(ks_session.Session):
    """A Session that counts the requests it sends (from any thread)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = collections.Counter()
        self._lock = threading.Lock()

    def request(self, url, method, *args, **kwargs):
        with self._lock:
            self.calls[method] += 1
        return super().request(url, method, *args, **kwargs)


def connect(project_id):
    cloud = openstack.config.OpenStackConfig().get_one(os.environ.get("OS_CLOUD"))
    a = cloud.auth
    auth = v3.Password(auth_url=a["auth_url"], username=a["username"],
                       password=a["password"], user_domain_name=a.get("user_domain_name", "Default"),
                       project_id=project_id)
    return CountingSession(auth=auth)


def wait(sess, sid, poll, gone):
    """Poll the server until ACTIVE (or, gone, until 404); False on ERROR or timeout."""
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:
        r = sess.get("/servers/" + sid, endpoint_filter=COMPUTE, raise_exc=False)
        if gone and r.status_code == 404:
            return True
        if r.status_code == 200:
            status = r.json()["server"]["status"]
            if not gone and status == "ACTIVE":
                return True
            if not gone and status == "ERROR":
                print("server %s: ERROR: %s" % (sid, r.json()["server"].get("fault")),
                      file=sys.stderr)
                return False
        time.sleep(poll)
    print("server %s: still not %s after %d s" % (sid, "gone" if gone else "ACTIVE", TIMEOUT),
          file=sys.stderr)
    return False


def stamp(s):
    """Nova's "2026-01-02T03:04:05Z" or "2026-01-02T03:04:05.123456" (UTC): Unix time."""
    t = datetime.datetime.fromisoformat(s.rstrip("Z"))
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def timeline(sess, t0):
    """The timeline line of the servers of the session's project (see the top)."""
    r = sess.get("/servers/detail", endpoint_filter=COMPUTE)
    created, launched = [], []
    for s in r.json()["servers"]:
        if s.get("OS-SRV-USG:launched_at"):
            created.append(stamp(s["created"]) - t0)
            launched.append(stamp(s["OS-SRV-USG:launched_at"]) - t0)
    if not created:
        return "timeline - - - - -"
    build = sum(b - a for a, b in zip(created, launched)) / len(created)
    return "timeline %.1f %.1f %.1f %.1f %.1f" % (min(created), max(created), min(launched),
                                                   max(launched), build)


def run_pool(k, items, work):
    """work(item) for every item, K threads each taking the next one; True if all did."""
    pending, lock, failed = iter(items), threading.Lock(), []

    def worker():
        while True:
            with lock:
                item = next(pending, None)
            if item is None:
                return
            try:
                ok = work(item)
            except Exception as e:  # an HTTP error: reported, and the others go on
                print("%s: %s" % (item, e), file=sys.stderr)
                ok = False
            if not ok:
                failed.append(item)

    threads = [threading.Thread(target=worker) for _ in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return not failed


def main():
    if sys.argv[1] == "timeline":
        print(timeline(connect(sys.argv[2]), float(sys.argv[3])))
        return
    project, image, network = sys.argv[1:4]
    n, k = int(sys.argv[4]), int(sys.argv[5])
    poll = float(sys.argv[6]) if len(sys.argv) > 6 else 2.0
    sess = connect(project)
    ids = [None] * (n + 1)

    def create(i):
        body = {"server": {"name": "bench-direct-%d" % i, "imageRef": image, "flavorRef": "1",
                           "networks": [{"uuid": network}]}}
        r = sess.post("/servers", json=body, endpoint_filter=COMPUTE)
        ids[i] = r.json()["server"]["id"]
        return wait(sess, ids[i], poll, False)

    def delete(sid):
        sess.delete("/servers/" + sid, endpoint_filter=COMPUTE, raise_exc=False)
        return wait(sess, sid, poll, True)

    # Warm-up, not timed: one server created and deleted through this session, so that
    # its token is known to Nova's and Neutron's token caches before the clock starts, as
    # kupenstack's is after its own warm-up. (A new token sent by 8 threads at once is
    # validated by each of them: 5-10 s of Keystone at the start of the timed part.)
    if not (create(n) and delete(ids[n])):
        sys.exit(1)
    before, t0, epoch = sum(sess.calls.values()), time.monotonic(), time.time()
    cpu = cpu_parts.snapshot()
    ok = run_pool(k, range(n), create)
    print("create %.2f %d" % (time.monotonic() - t0, sum(sess.calls.values()) - before))
    print(cpu_parts.report(cpu))
    print(timeline(sess, epoch))
    before, t0 = sum(sess.calls.values()), time.monotonic()
    ok = run_pool(k, [sid for sid in ids[:n] if sid], delete) and ok
    print("delete %.2f %d" % (time.monotonic() - t0, sum(sess.calls.values()) - before))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
