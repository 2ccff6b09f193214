#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A local RFC 7662 introspection endpoint for bench_e2e.sh scenario (f).

    e2e_introspect.py PORT CONFIG.json

CONFIG (0600): {"client_id", "client_secret", "tokens": {TOKEN: {claims}}}.
POST /introspect with HTTP Basic client_secret_basic credentials and a form
body token=...: the claims of a known token with "active": true, else
{"active": false}; wrong credentials -> 401.  GET /count answers the number
of introspection calls so far (the bench reads it before and after a run to
show the module's cache was warm).  HTTP/1.1 with keep-alive, one thread
per connection; 127.0.0.1 only.  Never prints a token or the secret.
"""
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MAX_BODY = 65536


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # no access log: it would hold nothing useful
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/count":
            self.reply(404, {"error": "not_found"})
            return
        with self.server.lock:
            self.reply(200, {"calls": self.server.calls})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/introspect" or length > MAX_BODY:
            self.reply(400, {"error": "invalid_request"})
            return
        body = self.rfile.read(length).decode("ascii", "replace")
        with self.server.lock:
            self.server.calls += 1
        cfg = self.server.cfg
        want = "Basic " + base64.b64encode(
            ("%s:%s" % (cfg["client_id"], cfg["client_secret"])).encode()).decode()
        if self.headers.get("Authorization") != want:
            self.reply(401, {"error": "invalid_client"})
            return
        token = (parse_qs(body).get("token") or [""])[0]
        claims = cfg["tokens"].get(token)
        self.reply(200, dict(claims, active=True) if claims else {"active": False})


def main():
    port = int(sys.argv[1])
    with open(sys.argv[2]) as f:
        cfg = json.load(f)
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.cfg = cfg
    srv.calls = 0
    srv.lock = threading.Lock()
    print("ready", port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
