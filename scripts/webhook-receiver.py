#!/usr/bin/env python3
"""A webhook receiver for scripts/event-bench.sh: answers 200 at once and
records when each delivery arrived. Usage: webhook-receiver.py PORT STATUS_FILE.
STATUS_FILE is rewritten every 0.5 s with counts and first/last arrival."""
import http.server, json, sys, threading, time
port, status = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
st = {"requests": 0, "created": 0, "distinct_ids": 0, "first": None, "last": None, "last_created": None}
seen = set()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: one connection for the dispatcher
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.time()
        try:
            ev = json.loads(body)
        except Exception:
            ev = {}
        with lock:
            st["requests"] += 1
            st["first"] = st["first"] or now
            st["last"] = now
            if ev.get("id") not in seen:
                seen.add(ev.get("id"))
                st["distinct_ids"] = len(seen)
                if ev.get("event") == "dsync.user.created":
                    st["created"] += 1
                    st["last_created"] = now
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
def dump():
    while True:
        time.sleep(0.5)
        with lock:
            s = json.dumps(st)
        with open(status + ".tmp", "w") as f:
            f.write(s)
        import os; os.replace(status + ".tmp", status)
threading.Thread(target=dump, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
