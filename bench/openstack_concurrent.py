"""bench/openstack_concurrent.py: the same concurrent requests as openstack_concurrent.lua
through openstacksdk (one Connection, its keystoneauth session shared by C threads), for
bench/bench_openstack.sh. Args: TOTAL (requests per call kind), C (threads)."""
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openstack

total = int(sys.argv[1]) if len(sys.argv) > 1 else 400
conc = int(sys.argv[2]) if len(sys.argv) > 2 else 8
per = max(1, total // conc)
conn = openstack.connect()
token = conn.session.get_token()


def validate_token():
    r = conn.identity.get("/auth/tokens", headers={"X-Subject-Token": token})
    assert r.status_code == 200, r.status_code
    return r.json()


def servers_detail():
    r = conn.compute.get("/servers/detail")
    assert r.status_code == 200, r.status_code
    return r.json()


def worker(call):
    lat = []
    for _ in range(per):
        t = time.monotonic()
        call()
        lat.append(time.monotonic() - t)
    return lat


def pct(s, p):
    import math
    return s[max(0, math.ceil(p * len(s)) - 1)]


with ThreadPoolExecutor(max_workers=conc) as pool:
    for what, call in (("validate-token", validate_token), ("servers-detail", servers_detail)):
        call()  # warm: endpoint discovery, connection
        t0 = time.monotonic()
        lat = sorted(x for r in pool.map(worker, [call] * conc) for x in r)
        wall = time.monotonic() - t0
        print("sdk %s %d %.4f %d %.2f %.2f" % (what, conc, wall, len(lat),
                                              1000 * pct(lat, 0.5), 1000 * pct(lat, 0.99)))
