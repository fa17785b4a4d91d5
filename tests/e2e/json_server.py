#!/usr/bin/env python3
"""tests/e2e/json_server.py: the local HTTP server of tests/e2e/http_plugin.sh.

  json_server.py serve PORT_FILE   answer on a free loopback port (written to PORT_FILE):
      GET /answer?name=N&size=S&color=C  -> {"name": N, "answer": answer(N, S, C)}
          after a random 5-40 ms, so that requests overlap
      GET /stats  -> {"requests": n, "names": distinct names asked, "in_flight": now,
                      "max_in_flight": most /answer requests in progress at once}
  json_server.py verify N < widgets.json   (kubectl get widgets -o json) checks that
      there are N Widgets and each one's status.answer is answer() of its own name and
      spec; prints what it found, exits 0 when all are right.
"""
import hashlib
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def answer(name, size, color):
    """What the server computes from a Widget: depends on all three, so a status written
    from another Widget's answer shows."""
    text = "%s|%s|%s" % (name, size, color)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.names = set()


STATS = Stats()


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/stats":
            with STATS.lock:
                self.reply(200, {"requests": STATS.requests, "names": len(STATS.names),
                                 "in_flight": STATS.in_flight,
                                 "max_in_flight": STATS.max_in_flight})
            return
        if url.path != "/answer":
            self.reply(404, {"error": "no such path: " + url.path})
            return
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if not all(k in q for k in ("name", "size", "color")):
            self.reply(400, {"error": "name, size and color are required"})
            return
        with STATS.lock:
            STATS.requests += 1
            STATS.in_flight += 1
            STATS.max_in_flight = max(STATS.max_in_flight, STATS.in_flight)
            STATS.names.add(q["name"])
        try:
            time.sleep(random.uniform(0.005, 0.040))
            body = {"name": q["name"], "answer": answer(q["name"], q["size"], q["color"])}
        finally:
            # Out of flight before the answer is written: once the client has it, it may
            # ask again at once, and that request must not find this one still counted.
            with STATS.lock:
                STATS.in_flight -= 1
        self.reply(200, body)

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


def serve(port_file):
    srv = Server(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    # Renamed into place only once complete, so a reader never sees half a number.
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


def verify(n):
    items = json.load(sys.stdin)["items"]
    wrong = []
    for o in items:
        name, spec = o["metadata"]["name"], o.get("spec", {})
        want = answer(name, spec.get("size"), spec.get("color"))
        have = (o.get("status") or {}).get("answer")
        if have != want:
            wrong.append("%s: %s, want %s" % (name, have, want))
    print("%d Widgets, %d with the right answer" % (len(items), len(items) - len(wrong)))
    for w in wrong[:5]:
        print("wrong: " + w)
    return 0 if len(items) == n and not wrong else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "verify":
        sys.exit(verify(int(sys.argv[2])))
    else:
        sys.exit(__doc__)
