#!/usr/bin/python3
"""tests/env/kube.d/fake-kubelet.py: a hand-written STAND-IN for the kubelet.

No container runtime can run the OpenStack images here, so no real kubelet runs in the
test cluster. This process plays the kubelet's part towards the API server and nothing
else: it registers Nodes, heartbeats them, and reports for the pods bound to them the
statuses a kubelet would report. The real scheduler binds the pods; the real Deployment,
ReplicaSet, StatefulSet, DaemonSet, Job and node lifecycle controllers compute every status
from what it reports. Nothing is ever run: no image is pulled, no probe is executed.

Per node (one thread each for the heartbeat, the pod watch and the pod sync):
  * identity: a client certificate CN=system:node:NAME, O=system:nodes, so the Node
    authorizer and the NodeRestriction admission plugin apply to it as to a kubelet;
  * registers the Node (capacity cpu, memory, pods; conditions Ready and the pressures;
    an InternalIP 127.0.1.N) or takes over an existing one;
  * renews its Lease in kube-node-lease every LEASE_EVERY s and patches the NodeStatus
    (condition heartbeats) every STATUS_EVERY s;
  * watches the pods with spec.nodeName=NAME and moves each through a timeline counted
    from when it first saw it: init containers run STEP s each and terminate, in order;
    then the containers run; a container with a readinessProbe gets Ready after its
    initialDelaySeconds (at most READY_CAP s), one without at once; a pod of a Job
    (restartPolicy Never or OnFailure, or owned by a Job) exits 0 after RUN s and turns
    Succeeded; a pod with a deletionTimestamp is deleted with grace period 0.

Faults, from pod annotations (set them on a workload's pod template):
  kupenstack.io/fake-kubelet: crashloop    containers exit after RUN s and are restarted
                                           after a back-off (1, 2, 4, 4... s): restartCount
                                           grows, state Waiting CrashLoopBackOff, lastState
                                           terminated with the exit code and message
                                           (restartPolicy Never: the pod turns Failed)
  kupenstack.io/fake-kubelet: never-ready  containers run but never get Ready
  kupenstack.io/fake-kubelet: fail         containers exit non-zero after RUN s: the pod
                                           turns Failed (restartPolicy Never) or
                                           crash-loops (OnFailure, Always)
  kupenstack.io/fake-kubelet-message: TEXT   the termination message (default
                                             "stand-in kubelet: fault FAULT injected")
  kupenstack.io/fake-kubelet-exit-code: N    the exit code of a fault (default 1)
A node stops (no Lease renewal, no NodeStatus, no pod status or deletion, as a dead
kubelet) while the file STATE_DIR/NAME.stopped exists: `tests/env/kube node-stop NAME`.

Usage: fake-kubelet.py --server URL --ca CA.crt --pki DIR --state-dir DIR NODE...
(the client certificate of NODE is DIR/node-NODE.{crt,key}). Logs to stderr.
"""
import argparse
import datetime
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

STEP = 0.5          # an init container's run
RUN = 1.0           # a Job pod's run, a crash-looping container's run
READY_CAP = 3.0     # readinessProbe.initialDelaySeconds honoured up to this
LEASE_EVERY = 2.0
STATUS_EVERY = 10.0
LEASE_SECONDS = 40
TICK = 0.3
FAULT = "kupenstack.io/fake-kubelet"
FAULT_MESSAGE = "kupenstack.io/fake-kubelet-message"
FAULT_EXIT = "kupenstack.io/fake-kubelet-exit-code"
KUBELET_VERSION = "v1.20.2"
USER_AGENT = "kupenstack-fake-kubelet/" + KUBELET_VERSION + " (stand-in kubelet)"


def log(node, msg):
    now = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    sys.stderr.write("%s %s: %s\n" % (now, node, msg))
    sys.stderr.flush()


def ts(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def micro_ts(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %d: %s" % (status, body[:300]))
        self.status = status


class Client:
    """One node's identity; one keep-alive connection per thread."""

    def __init__(self, server, ca, cert, key):
        u = urllib.parse.urlsplit(server)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)
        self.local = threading.local()

    def connect(self, timeout):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=timeout)

    def call(self, method, path, body=None, ctype="application/json", ok=(200, 201)):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = self.connect(30)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = ctype
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise
        if resp.status not in ok:
            raise ApiError(resp.status, raw.decode(errors="replace"))
        return json.loads(raw) if raw else None


class Node:
    def __init__(self, args, name, index):
        self.name = name
        self.ip = "127.0.1.%d" % (index + 1)
        self.pod_net = "10.244.%d." % (index + 1)
        self.next_ip = 2
        self.stop_file = os.path.join(args.state_dir, name + ".stopped")
        self.api = Client(args.server, args.ca, os.path.join(args.pki, "node-%s.crt" % name),
                          os.path.join(args.pki, "node-%s.key" % name))
        self.lock = threading.Condition()
        self.pods = {}       # uid -> the latest pod object seen
        self.state = {}      # uid -> what this kubelet remembers of the pod
        self.lease = None

    def stopped(self):
        return os.path.exists(self.stop_file)

    def log(self, msg):
        log(self.name, msg)

    # --- the Node and its heartbeats --------------------------------------------------

    def conditions(self, now, current):
        """The Node's conditions, keeping lastTransitionTime where the status holds."""
        old = {c["type"]: c for c in current}
        out = []
        for typ, status, reason, msg in (
                ("MemoryPressure", "False", "KubeletHasSufficientMemory",
                 "kubelet has sufficient memory available"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure",
                 "kubelet has no disk pressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID",
                 "kubelet has sufficient PID available"),
                ("Ready", "True", "KubeletReady",
                 "kubelet is posting ready status (stand-in kubelet)")):
            o = old.get(typ)
            since = o["lastTransitionTime"] if o and o.get("status") == status else ts(now)
            out.append({"type": typ, "status": status, "reason": reason, "message": msg,
                        "lastHeartbeatTime": ts(now), "lastTransitionTime": since})
        return out

    def register(self):
        now = time.time()
        res = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": {
                "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64"}},
            "spec": {},
            "status": {
                "capacity": res, "allocatable": res,
                "conditions": self.conditions(now, []),
                "addresses": [{"type": "InternalIP", "address": self.ip},
                              {"type": "Hostname", "address": self.name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"kubeletVersion": KUBELET_VERSION,
                             "kubeProxyVersion": KUBELET_VERSION,
                             "operatingSystem": "linux", "architecture": "amd64",
                             "containerRuntimeVersion": "fake://0",
                             "osImage": "KupenStack stand-in kubelet",
                             "kernelVersion": os.uname().release,
                             "machineID": "", "systemUUID": "", "bootID": ""}},
        }
        try:
            self.api.call("POST", "/api/v1/nodes", node)
            self.log("registered")
        except ApiError as e:
            if e.status != 409:
                raise
            self.log("already registered; taking it over")
            self.post_status(now)
        with self.lock:
            self.uid = self.api.call("GET", "/api/v1/nodes/" + self.name)["metadata"]["uid"]

    def post_status(self, now):
        cur = self.api.call("GET", "/api/v1/nodes/" + self.name)
        conds = self.conditions(now, cur.get("status", {}).get("conditions", []))
        self.api.call("PATCH", "/api/v1/nodes/%s/status" % self.name,
                      {"status": {"conditions": conds}}, "application/merge-patch+json")

    def renew_lease(self, now):
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"
        if self.lease is None:
            try:
                self.lease = self.api.call("GET", path + self.name)
            except ApiError as e:
                if e.status != 404:
                    raise
                self.lease = self.api.call("POST", path[:-1], {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": "kube-node-lease",
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                                      "name": self.name, "uid": self.uid}]},
                    "spec": {"holderIdentity": self.name,
                             "leaseDurationSeconds": LEASE_SECONDS,
                             "renewTime": micro_ts(now)}})
                return
        self.lease["spec"]["renewTime"] = micro_ts(now)
        self.lease["spec"]["holderIdentity"] = self.name
        try:
            self.lease = self.api.call("PUT", path + self.name, self.lease)
        except ApiError:
            self.lease = None
            raise

    def heartbeat_loop(self):
        last_status = time.time()
        was_stopped = False
        while True:
            now = time.time()
            try:
                if self.stopped():
                    if not was_stopped:
                        self.log("stopped: no heartbeats until %s is removed" % self.stop_file)
                    was_stopped = True
                else:
                    if was_stopped:
                        self.log("started again")
                        with self.lock:
                            for st in self.state.values():
                                st.pop("written", None)   # post every pod's status again
                            self.lock.notify_all()
                    self.renew_lease(now)
                    if was_stopped or now - last_status >= STATUS_EVERY:
                        self.post_status(now)
                        last_status = now
                    was_stopped = False
            except (OSError, ApiError, http.client.HTTPException) as e:
                self.log("heartbeat: %s" % e)
            time.sleep(LEASE_EVERY)

    # --- the pods bound to this node ---------------------------------------------------

    def watch_loop(self):
        sel = urllib.parse.quote("spec.nodeName=" + self.name)
        base = "/api/v1/pods?fieldSelector=" + sel
        rv = None
        while True:
            try:
                if rv is None:
                    lst = self.api.call("GET", base)
                    with self.lock:
                        self.pods = {p["metadata"]["uid"]: p for p in lst["items"]}
                        for uid in set(self.state) - set(self.pods):
                            del self.state[uid]     # deleted while the watch was down
                        self.lock.notify_all()
                    rv = lst["metadata"]["resourceVersion"]
                conn = self.api.connect(120)
                conn.request("GET", "%s&watch=1&allowWatchBookmarks=true&timeoutSeconds=60"
                             "&resourceVersion=%s" % (base, rv),
                             headers={"Accept": "application/json", "User-Agent": USER_AGENT})
                resp = conn.getresponse()
                if resp.status != 200:
                    raise ApiError(resp.status, resp.read().decode(errors="replace"))
                while True:
                    line = resp.readline()
                    if not line:
                        break
                    ev = json.loads(line)
                    obj = ev["object"]
                    if ev["type"] == "ERROR":
                        self.log("watch: %s" % obj.get("message"))
                        rv = None
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] == "BOOKMARK":
                        continue
                    uid = obj["metadata"]["uid"]
                    with self.lock:
                        if ev["type"] == "DELETED":
                            self.pods.pop(uid, None)
                            self.state.pop(uid, None)
                        else:
                            self.pods[uid] = obj
                        self.lock.notify_all()
                conn.close()
            except (OSError, ValueError, ApiError, http.client.HTTPException) as e:
                self.log("watch: %s; listing again" % e)
                rv = None
                time.sleep(1)

    def sync_loop(self):
        while True:
            with self.lock:
                self.lock.wait(TICK)
                if self.stopped():
                    continue
                pods = list(self.pods.values())
            for pod in pods:
                try:
                    self.sync_pod(pod)
                except (OSError, ApiError, http.client.HTTPException) as e:
                    self.log("pod %s/%s: %s" % (pod["metadata"]["namespace"],
                                                pod["metadata"]["name"], e))

    def sync_pod(self, pod):
        md = pod["metadata"]
        uid = md["uid"]
        now = time.time()
        with self.lock:
            st = self.state.get(uid)
            if st is None:
                st = self.state[uid] = self.first_sight(pod, now)
        where = "/api/v1/namespaces/%s/pods/%s" % (md["namespace"], md["name"])
        if md.get("deletionTimestamp"):
            if now >= st.get("delete_after", 0):
                st["delete_after"] = now + 2
                self.api.call("DELETE", where, {
                    "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                    "preconditions": {"uid": uid}}, ok=(200, 202, 404, 409))
                self.log("deleted %s/%s" % (md["namespace"], md["name"]))
            return
        if st["frozen"]:
            return
        status = self.status(pod, st, now)
        if status != st.get("written"):
            body = dict(status)
            body["conditions"] = self.conditions_with_times(pod, status["conditions"], now)
            self.api.call("PATCH", where + "/status", {"status": body},
                          "application/merge-patch+json")
            st["written"] = status
            if status["phase"] != st.get("phase"):
                self.log("%s/%s: %s" % (md["namespace"], md["name"], status["phase"]))
                st["phase"] = status["phase"]

    def first_sight(self, pod, now):
        st = {"seen": now, "frozen": False}
        phase = pod.get("status", {}).get("phase")
        ip = pod.get("status", {}).get("podIP")
        if phase in ("Succeeded", "Failed"):
            st["frozen"] = True    # a terminal pod, from before a restart: leave it
        if not ip:
            with self.lock:
                ip = self.pod_net + str(self.next_ip)
                self.next_ip = (self.next_ip - 1) % 250 + 2   # .2 to .251, round
        st["ip"] = ip
        return st

    def conditions_with_times(self, pod, conds, now):
        """The kubelet's conditions with lastTransitionTime; the scheduler's kept."""
        cur = pod.get("status", {}).get("conditions") or []
        out = [c for c in cur if c["type"] not in ("Initialized", "Ready", "ContainersReady")]
        old = {c["type"]: c for c in cur}
        for c in conds:
            c = dict(c)
            o = old.get(c["type"])
            same = o and o.get("status") == c["status"] and o.get("lastTransitionTime")
            c["lastTransitionTime"] = o["lastTransitionTime"] if same else ts(now)
            c["lastProbeTime"] = None
            out.append(c)
        return out

    def status(self, pod, st, now):
        """What a kubelet would report for POD now: a pure function of the time since the
        pod was first seen, its spec and its fault annotations."""
        spec = pod["spec"]
        ann = pod["metadata"].get("annotations") or {}
        fault = ann.get(FAULT, "")
        policy = spec.get("restartPolicy", "Always")
        owners = pod["metadata"].get("ownerReferences") or []
        job = policy in ("Never", "OnFailure") or any(o.get("kind") == "Job" for o in owners)
        t0 = st["seen"]
        inits = spec.get("initContainers") or []
        init_st = []
        for i, c in enumerate(inits):
            start, end = t0 + STEP * i, t0 + STEP * (i + 1)
            s = cstatus(c, pod, 0, False)
            if now < start:
                s["state"] = {"waiting": {"reason": "PodInitializing"}}
            elif now < end:
                s["state"] = {"running": {"startedAt": ts(start)}}
                s["started"] = True
            else:
                s["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                             "startedAt": ts(start), "finishedAt": ts(end)}}
            init_st.append(s)
        begun = t0 + STEP * len(inits)
        out = {"hostIP": self.ip, "podIP": st["ip"], "podIPs": [{"ip": st["ip"]}],
               "startTime": ts(t0)}
        if init_st:
            out["initContainerStatuses"] = init_st
        containers = spec.get("containers") or []
        if now < begun:
            waiting = [i["name"] for i, s in zip(inits, init_st) if "terminated" not in s["state"]]
            out["containerStatuses"] = [dict(cstatus(c, pod, 0, False), state={
                "waiting": {"reason": "PodInitializing"}}) for c in containers]
            out["phase"] = "Pending"
            msg = "containers with incomplete status: [%s]" % " ".join(waiting)
            out["conditions"] = not_ready(containers, "ContainersNotInitialized", msg,
                                          initialized=False)
            return out
        message = ann.get(FAULT_MESSAGE, "stand-in kubelet: fault %s injected" % fault)
        try:
            code = int(ann.get(FAULT_EXIT, "1"))
        except ValueError:
            code = 1
        failing = fault in ("crashloop", "fail")
        statuses = []
        for c in containers:
            if failing and policy != "Never":
                s = crashloop(c, pod, begun, now, code, message)
            elif job or failing:
                end = begun + RUN
                s = cstatus(c, pod, 0, False)
                if now < end:
                    s["state"] = {"running": {"startedAt": ts(begun)}}
                    s["started"] = True
                else:
                    term = {"exitCode": 0, "reason": "Completed",
                            "startedAt": ts(begun), "finishedAt": ts(end)}
                    if failing:
                        term.update(exitCode=code, reason="Error", message=message)
                    s["state"] = {"terminated": term}
            else:
                s = cstatus(c, pod, 0, False)
                s["state"] = {"running": {"startedAt": ts(begun)}}
                s["started"] = True
                probe = c.get("readinessProbe")
                delay = min(float(probe.get("initialDelaySeconds", 0)), READY_CAP) if probe else 0
                s["ready"] = fault != "never-ready" and now >= begun + delay
            statuses.append(s)
        out["containerStatuses"] = statuses
        terms = [s["state"]["terminated"] for s in statuses if "terminated" in s["state"]]
        if statuses and len(terms) == len(statuses):
            out["phase"] = "Failed" if any(t["exitCode"] for t in terms) else "Succeeded"
            out["conditions"] = not_ready(containers, "PodCompleted", None)
        else:
            out["phase"] = "Running"
            unready = [s["name"] for s in statuses if not s["ready"]]
            if unready:
                msg = "containers with unready status: [%s]" % " ".join(unready)
                out["conditions"] = not_ready(containers, "ContainersNotReady", msg)
            else:
                out["conditions"] = [{"type": "Initialized", "status": "True"},
                                     {"type": "Ready", "status": "True"},
                                     {"type": "ContainersReady", "status": "True"}]
        return out


def cstatus(c, pod, restarts, ready):
    return {"name": c["name"], "image": c.get("image", ""),
            "imageID": "fake://" + c.get("image", ""),
            "containerID": "fake://%s/%s/%d" % (pod["metadata"]["uid"], c["name"], restarts),
            "ready": ready, "restartCount": restarts, "started": False,
            "state": {}, "lastState": {}}


def not_ready(containers, reason, msg, initialized=True):
    out = [{"type": "Initialized", "status": "True"}]
    if not initialized:
        out = [{"type": "Initialized", "status": "False", "reason": reason, "message": msg}]
        msg = "containers with unready status: [%s]" % " ".join(c["name"] for c in containers)
        reason = "ContainersNotReady"
    for typ in ("Ready", "ContainersReady"):
        c = {"type": typ, "status": "False", "reason": reason}
        if msg:
            c["message"] = msg
        out.append(c)
    return out


def crashloop(c, pod, begun, now, code, message):
    """A container that exits CODE after RUN s, restarted after a back-off of 1, 2, 4, 4...
    s: running (restartCount k) or waiting in CrashLoopBackOff (restartCount k+1)."""
    start, k, last = begun, 0, {}
    while True:
        end = start + RUN
        if now < end:
            s = cstatus(c, pod, k, False)
            s["state"] = {"running": {"startedAt": ts(start)}}
            s["started"] = True
            s["lastState"] = last
            return s
        last = {"terminated": {"exitCode": code, "reason": "Error", "message": message,
                               "startedAt": ts(start), "finishedAt": ts(end),
                               "containerID": "fake://%s/%s/%d" % (
                                   pod["metadata"]["uid"], c["name"], k)}}
        back = min(2.0 ** k, 4.0)
        if now < end + back:
            s = cstatus(c, pod, k + 1, False)
            s["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                "back-off %ds restarting failed container=%s pod=%s_%s" % (
                    back, c["name"], pod["metadata"]["name"], pod["metadata"]["namespace"]))}}
            s["lastState"] = last
            return s
        start, k = end + back, k + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("nodes", nargs="+")
    args = ap.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)
    nodes = [Node(args, name, i) for i, name in enumerate(args.nodes)]
    for n in nodes:
        while True:
            try:
                n.register()
                break
            except (OSError, ApiError, http.client.HTTPException) as e:
                n.log("register: %s; again in 1 s" % e)
                time.sleep(1)
    for n in nodes:
        for loop in (n.heartbeat_loop, n.watch_loop, n.sync_loop):
            threading.Thread(target=loop, name="%s-%s" % (n.name, loop.__name__),
                             daemon=True).start()
    log("kubelet", "stand-in kubelet up for %s" % " ".join(args.nodes))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
