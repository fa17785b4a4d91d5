"""bench/openstack_calls.py: the same calls as openstack_calls.lua through openstacksdk
(Debian's python3-openstacksdk), for bench/bench_openstack.sh."""
import sys
import time

import openstack

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
conn = openstack.connect()
list(conn.network.networks(limit=1))

t0 = time.monotonic()
for _ in range(n):
    conn.network.get("/networks?limit=20").json()
print("sdk list-networks %.4f %d" % (time.monotonic() - t0, n))

t0 = time.monotonic()
for _ in range(n):
    conn.compute.get("/flavors/detail").json()
print("sdk list-flavors %.4f %d" % (time.monotonic() - t0, n))

m = max(1, n // 5)
t0 = time.monotonic()
for i in range(m):
    net = conn.network.create_network(name="bench-sdk-%d" % i)
    conn.network.delete_network(net)
print("sdk create-delete-network %.4f %d" % (time.monotonic() - t0, m))
