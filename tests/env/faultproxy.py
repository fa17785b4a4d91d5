#!/usr/bin/python3
"""tests/env/faultproxy.py: an HTTP/1.1 proxy on loopback that forwards to one upstream
(an OpenStack API's root, e.g. Nova's http://127.0.0.1:8774) and injects faults on
demand, so that tests can see what the library does with them.

    tests/env/faultproxy.py [UPSTREAM] [--port N]

Prints the port it listens on (127.0.0.1, a free one unless --port) once it accepts
connections, then serves until killed. Every request is forwarded to UPSTREAM + its path
(method, headers, body), one upstream connection per request, and answered with
"Connection: close": libcurl silently sends a request again on a reused connection that
died, which would hide a reset from the client under test.

The control API, on the same port (never forwarded, never counted):

  POST /_upstream  {"url": "http://127.0.0.1:8774"}   set the upstream
  POST /_fault     {"mode": M, "count": N, "retry_after": S, "hang": S}
      the next N forwarded requests (default 1) get fault M, then requests pass again;
      replaces the fault set before. M is one of
        pass             forward (cancels a fault)
        503              503 with a JSON body, no Retry-After
        503-retry-after  503 with Retry-After: S (default 1)
        429              429 with Retry-After: S, or none when retry_after is null
        reset            read the request, then close with a TCP RST (SO_LINGER 0)
        hang             read the request and answer nothing; the connection is held
                         until the client closes it (or S seconds, default 60, pass)
      Fault answers carry x-openstack-request-id: req-faultproxy-<n> (n counts faults).
  POST /_reset     zero the counters
  GET  /_stats     {"requests", "passed", "faults": {mode: n}, "inflight",
                    "max_inflight", "max_in_1s" (most requests that arrived within any
                    1 s), "max_in_2s", "first", "last" (arrival times, monotonic
                    seconds), "hangs_closed_by_client": [seconds each hang was held
                    before the client gave up], "upstream_errors"}

Only the Python 3 standard library.
"""
import argparse
import bisect
import http.client
import json
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
MINE = {"server", "date"}  # send_response() writes its own
MODES = {"pass", "503", "503-retry-after", "429", "reset", "hang"}


class State:
    def __init__(self, upstream):
        self.lock = threading.Lock()
        self.upstream = upstream
        self.mode, self.left, self.retry_after, self.hang = "pass", 0, 1, 60
        self.reset()

    def reset(self):
        self.requests = self.passed = self.inflight = self.max_inflight = 0
        self.upstream_errors = 0
        self.faults = {}
        self.arrivals = []
        self.hangs = []

    def arrive(self):
        """Count a forwarded request; its fault (a mode) and the fault's number."""
        with self.lock:
            self.requests += 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            self.arrivals.append(time.monotonic())
            mode = "pass"
            if self.left > 0:
                mode = self.mode
                self.left -= 1
            if mode == "pass":
                self.passed += 1
                return mode, 0
            self.faults[mode] = self.faults.get(mode, 0) + 1
            return mode, sum(self.faults.values())

    def leave(self):
        with self.lock:
            self.inflight -= 1

    def stats(self):
        with self.lock:
            a = sorted(self.arrivals)
            return {
                "requests": self.requests, "passed": self.passed, "faults": dict(self.faults),
                "inflight": self.inflight, "max_inflight": self.max_inflight,
                "max_in_1s": max_in(a, 1.0), "max_in_2s": max_in(a, 2.0),
                "first": a[0] if a else None, "last": a[-1] if a else None,
                "hangs_closed_by_client": list(self.hangs),
                "upstream_errors": self.upstream_errors,
                "fault": {"mode": self.mode, "left": self.left},
            }


def max_in(times, window):
    """The most arrivals within any interval [t, t + window) of the sorted times."""
    best = 0
    for i, t in enumerate(times):
        best = max(best, bisect.bisect_left(times, t + window, i) - i)
    return best


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    def log_message(self, fmt, *args):  # quiet: tests read /_stats
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def control(self):
        st = self.server.state
        path = self.path.split("?", 1)[0]
        if self.command == "GET" and path == "/_stats":
            return self.reply(200, st.stats())
        try:
            req = json.loads(self.body() or b"{}")
        except ValueError as e:
            return self.reply(400, {"error": "bad JSON: %s" % e})
        if self.command == "POST" and path == "/_reset":
            with st.lock:
                st.reset()
            return self.reply(200, st.stats())
        if self.command == "POST" and path == "/_upstream":
            if not isinstance(req.get("url"), str):
                return self.reply(400, {"error": "url (a string) expected"})
            with st.lock:
                st.upstream = req["url"].rstrip("/")
            return self.reply(200, {"upstream": st.upstream})
        if self.command == "POST" and path == "/_fault":
            mode = req.get("mode", "pass")
            if mode not in MODES:
                return self.reply(400, {"error": "mode must be one of %s" % sorted(MODES)})
            with st.lock:
                st.mode, st.left = mode, int(req.get("count", 1))
                st.retry_after = req.get("retry_after", 1)
                st.hang = float(req.get("hang", 60))
            return self.reply(200, st.stats()["fault"])
        return self.reply(404, {"error": "no control endpoint %s %s" % (self.command, path)})

    def handle_one_request(self):
        # BaseHTTPRequestHandler dispatches on do_<METHOD>; every method is the same here.
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout):
            self.close_connection = True

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def dispatch(self):
        if self.path.startswith("/_"):
            return self.control()
        st = self.server.state
        body = self.body()
        mode, n = st.arrive()
        try:
            if mode == "pass":
                self.forward(body)
            elif mode == "reset":
                self.reset()
            elif mode == "hang":
                self.hold(st.hang)
            else:
                self.fault(mode, n, st.retry_after)
        finally:
            st.leave()

    def fault(self, mode, n, retry_after):
        status = 429 if mode == "429" else 503
        title = "Too Many Requests" if status == 429 else "Service Unavailable"
        headers = [("x-openstack-request-id", "req-faultproxy-%d" % n)]
        if mode != "503" and retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        self.reply(status, {"error": {"code": status, "title": title,
                                      "message": "faultproxy: injected %s #%d" % (mode, n)}},
                   headers)

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def hold(self, limit):
        """Answer nothing until the client closes the connection or limit seconds pass."""
        start = time.monotonic()
        self.close_connection = True
        while time.monotonic() - start < limit:
            r, _, _ = select.select([self.connection], [], [], 0.1)
            if r:
                try:
                    if not self.connection.recv(4096, socket.MSG_PEEK):
                        with self.server.state.lock:
                            self.server.state.hangs.append(round(time.monotonic() - start, 3))
                        return
                except OSError:
                    return
                time.sleep(0.1)  # data, not a close: keep holding

    def forward(self, body):
        st = self.server.state
        u = urllib.parse.urlsplit(st.upstream)
        conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Host"] = u.netloc
        try:
            c = conn_cls(u.netloc, timeout=120)
            c.request(self.command, u.path.rstrip("/") + self.path, body=body or None,
                      headers=headers)
            r = c.getresponse()
            data = r.read()
            c.close()
        except (OSError, http.client.HTTPException) as e:
            with st.lock:
                st.upstream_errors += 1
            return self.reply(502, {"error": {"code": 502, "title": "Bad Gateway",
                                              "message": "faultproxy: upstream: %s" % e}})
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in HOP and k.lower() not in MINE:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # a client gone mid-answer (a reset, a timeout) is part of the tests


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("upstream", nargs="?", default="", help="the API root to forward to")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(args.upstream.rstrip("/"))
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
