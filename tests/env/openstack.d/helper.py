#!/usr/bin/python3
"""tests/env/openstack.d/helper.py: the Python half of tests/env/openstack.

    helper.py ports N              print N free loopback TCP ports, one a line
    helper.py render SRC DST       copy SRC to DST, replacing @NAME@ by $NAME (all must be set)
    helper.py wait-amqp PORT SECS  wait until an AMQP 0-9-1 broker greets on 127.0.0.1:PORT
    helper.py wait-ready SECS services|hypervisor
                                   wait until every API answers an authenticated request,
                                   the compute services, OVS agent and cinder services are up
                                   (or the hypervisor is listed); on timeout print the names
                                   of the checks that failed on stdout and exit 1
    helper.py seed-keystone        create service/demo projects, users, roles, services and
                                   endpoints (run once, when the database template is built)
    helper.py seed                 create the m1.tiny flavor and the external network `public`

The keystone ones read KS_AUTH_URL, KS_PASSWORD, KS_*_PORT and KS_HOST from the environment.
Logs go to stderr.
"""
import os
import socket
import sys
import time

PREFIX = "openstack: "


def log(msg):
    print(PREFIX + msg, file=sys.stderr, flush=True)


def cmd_ports(n):
    socks = []
    for _ in range(int(n)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print("\n".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_render(src, dst):
    import re
    text = open(src).read()
    missing = set()

    def sub(m):
        v = os.environ.get(m.group(1))
        if v is None:
            missing.add(m.group(1))
            return m.group(0)
        return v

    text = re.sub(r"@([A-Z][A-Z0-9_]*)@", sub, text)
    if missing:
        sys.exit("render %s: unset %s" % (src, ", ".join(sorted(missing))))
    with open(dst + ".tmp", "w") as f:
        f.write(text)
    os.rename(dst + ".tmp", dst)


def amqp_greets(port):
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=2) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            data = s.recv(7)
            return len(data) == 7 and data[0] == 1  # a method frame: Connection.Start
    except OSError:
        return False


def cmd_wait_amqp(port, secs):
    deadline = time.monotonic() + float(secs)
    while time.monotonic() < deadline:
        if amqp_greets(port):
            return
        time.sleep(0.3)
    sys.exit(1)


def session(username="admin", project="admin"):
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3
    auth = v3.Password(auth_url=os.environ["KS_AUTH_URL"], username=username,
                       password=os.environ["KS_PASSWORD"], project_name=project,
                       user_domain_name="Default", project_domain_name="Default")
    return ks_session.Session(auth=auth)


def api(sess, service, method, path, **kw):
    """One request to a catalog service; returns the decoded JSON body (or None)."""
    kw.setdefault("raise_exc", True)
    r = sess.request(path, method, endpoint_filter={
        "service_type": service, "interface": "public", "region_name": "RegionOne"}, **kw)
    return r.json() if r.content else None


def find_or_create(sess, path, key, name, body, query=None):
    q = query or ("?name=%s" % name)
    found = api(sess, "identity", "GET", "/%s%s" % (path, q))[path]
    if found:
        return found[0]["id"]
    return api(sess, "identity", "POST", "/" + path, json={key: body})[key]["id"]


def cmd_seed_keystone():
    # Its result is cached in the database template: bump TEMPLATE_REV in ../openstack
    # when changing it.
    sess = session()
    pw = os.environ["KS_PASSWORD"]
    roles, projects = {}, {}
    for role in ("admin", "member", "reader", "service"):
        roles[role] = find_or_create(sess, "roles", "role", role, {"name": role})
    for proj in ("service", "demo"):
        projects[proj] = find_or_create(sess, "projects", "project", proj,
                                        {"name": proj, "domain_id": "default"})

    def user(name, project, role_names):
        uid = find_or_create(sess, "users", "user", name, {
            "name": name, "password": pw, "domain_id": "default",
            "default_project_id": projects[project]})
        for role in role_names:
            api(sess, "identity", "PUT", "/projects/%s/users/%s/roles/%s" % (
                projects[project], uid, roles[role]))

    user("demo", "demo", ["member"])
    for svc in ("glance", "nova", "neutron", "placement", "cinder"):
        # Nova's calls to Neutron (and Neutron's to Nova) need the `service` role too.
        user(svc, "service", ["admin", "service"])

    base = "http://127.0.0.1:%s"
    services = [
        ("glance", "image", base % os.environ["KS_GLANCE_PORT"]),
        ("nova", "compute", base % os.environ["KS_NOVA_PORT"] + "/v2.1"),
        ("neutron", "network", base % os.environ["KS_NEUTRON_PORT"]),
        ("placement", "placement", base % os.environ["KS_PLACEMENT_PORT"]),
        ("cinderv3", "volumev3", base % os.environ["KS_CINDER_PORT"] + "/v3/%(project_id)s"),
    ]
    for name, stype, url in services:
        sid = find_or_create(sess, "services", "service", name,
                             {"name": name, "type": stype, "enabled": True},
                             query="?type=%s" % stype)
        have = api(sess, "identity", "GET", "/endpoints?service_id=%s" % sid)["endpoints"]
        for iface in ("public", "internal", "admin"):
            if any(e["interface"] == iface for e in have):
                continue
            api(sess, "identity", "POST", "/endpoints", json={"endpoint": {
                "service_id": sid, "interface": iface, "url": url,
                "region_id": "RegionOne", "enabled": True}})
    log("keystone seeded: projects service, demo; users demo, %s" %
        "glance nova neutron placement cinder")


def cmd_seed():
    sess = session()
    flavors = api(sess, "compute", "GET", "/flavors")["flavors"]
    if not any(f["name"] == "m1.tiny" for f in flavors):
        api(sess, "compute", "POST", "/flavors", json={"flavor": {
            "name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1, "id": "1"}})
    nets = api(sess, "network", "GET", "/v2.0/networks?name=public")["networks"]
    if nets:
        net = nets[0]["id"]
    else:
        net = api(sess, "network", "POST", "/v2.0/networks", json={"network": {
            "name": "public", "router:external": True, "shared": False,
            "provider:network_type": "flat",
            "provider:physical_network": "physnet1"}})["network"]["id"]
    subs = api(sess, "network", "GET", "/v2.0/subnets?network_id=%s" % net)["subnets"]
    if not subs:
        api(sess, "network", "POST", "/v2.0/subnets", json={"subnet": {
            "name": "public-subnet", "network_id": net, "ip_version": 4,
            "cidr": "203.0.113.0/24", "gateway_ip": "203.0.113.1",
            "enable_dhcp": False,
            "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.250"}]}})
    log("seeded: flavor m1.tiny, external network public 203.0.113.0/24")


def checks(state, phase):
    """Yield (name, ok, detail) for every readiness condition of PHASE: "services" (every
    API, compute services, OVS agent, cinder services) or "hypervisor" (listed and up: the
    compute host must be mapped to its cell first)."""
    if "sess" not in state:
        state["sess"] = session()
    sess = state["sess"]
    host = os.environ["KS_HOST"]

    def get(service, path, **kw):
        return api(sess, service, "GET", path, timeout=10, **kw)

    def run(name, fn):
        try:
            ok, detail = fn()
        except Exception as e:  # noqa: BLE001 - any failure just means "not yet"
            ok, detail = False, "%s: %s" % (type(e).__name__, str(e)[:200])
        return name, ok, detail

    def hypervisor():
        hv = get("compute", "/os-hypervisors")["hypervisors"]
        ok = any(h["hypervisor_hostname"] == host and h["state"] == "up" for h in hv)
        return ok, "" if ok else "hypervisor %s not listed" % host

    def token():
        sess.get_token()
        return True, ""
    yield run("keystone", token)
    if phase == "hypervisor":
        yield run("nova-compute", hypervisor)
        return
    yield run("keystone-api", lambda: (get("identity", "/projects") is not None, ""))
    yield run("glance-api", lambda: ("images" in get("image", "/v2/images"), ""))
    yield run("placement-api", lambda: (
        "resource_providers" in get("placement", "/resource_providers"), ""))
    yield run("neutron-server", lambda: ("networks" in get("network", "/v2.0/networks"), ""))
    yield run("nova-api", lambda: ("flavors" in get("compute", "/flavors"), ""))
    yield run("cinder-api", lambda: ("volume_types" in get("volumev3", "/types"), ""))

    def services(svc, path, want):
        got = {(s["binary"], s["host"].split("@")[0]): s["state"] for s in
               get(svc, path)["services"]}
        down = [b for b in want if got.get((b, host)) != "up"]
        return not down, "not up: " + ", ".join(down) if down else ""
    yield run("nova-conductor", lambda: services(
        "compute", "/os-services", ["nova-conductor", "nova-scheduler"]))
    yield run("nova-compute", lambda: services("compute", "/os-services", ["nova-compute"]))

    def agent():
        agents = get("network", "/v2.0/agents?binary=neutron-openvswitch-agent")["agents"]
        ok = any(a["host"] == host and a["alive"] for a in agents)
        return ok, "" if ok else "no live Open vSwitch agent on %s" % host
    yield run("fake-ovs-agent", agent)
    yield run("cinder-volume", lambda: services(
        "volumev3", "/os-services", ["cinder-scheduler", "cinder-volume"]))


def cmd_wait_ready(secs, phase):
    deadline = time.monotonic() + float(secs)
    state = {}
    last = None
    while True:
        failed = []
        try:
            for name, ok, detail in checks(state, phase):
                if not ok:
                    failed.append((name, detail))
        except Exception as e:  # noqa: BLE001
            failed.append(("keystone", str(e)[:200]))
            state.pop("sess", None)
        if not failed:
            return
        names = sorted({n for n, _ in failed})
        if names != last:
            log("waiting for: " + ", ".join(names))
            last = names
        if time.monotonic() > deadline:
            for name, detail in failed:
                log("not ready: %s %s" % (name, detail))
            print("\n".join(names))
            sys.exit(1)
        time.sleep(0.5)


def main(argv):
    cmds = {"ports": cmd_ports, "render": cmd_render, "wait-amqp": cmd_wait_amqp,
            "wait-ready": cmd_wait_ready, "seed-keystone": cmd_seed_keystone,
            "seed": cmd_seed}
    if len(argv) < 2 or argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
