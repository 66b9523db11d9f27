"""What the SDK checks share: the fixture run.sh provisions over SCIM, and a
webhook receiver. Standard library only, so the provisioning needs no SDK."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def scim(base: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    """One SCIM request; the parsed answer (empty for 204)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read()
    return json.loads(text) if text else {}


def user_body(name: str, given: str, family: str) -> dict:
    return {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "userName": f"{name}@example.com",
        "externalId": f"ext-{name}",
        "name": {"givenName": given, "familyName": family},
        "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
        "active": True,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Engineering",
            "employeeNumber": "7",
        },
    }


def add_member(base: str, token: str, group: str, user: str) -> None:
    scim(
        base,
        token,
        "PATCH",
        f"/Groups/{group}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}],
        },
    )


class Receiver:
    """An HTTP server on 127.0.0.1 keeping every POST: (headers, raw body)."""

    def __init__(self) -> None:
        got: list[tuple[dict, bytes]] = []
        self.got = got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 20.0) -> list[tuple[dict, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.got) >= n:
                return list(self.got)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.got)} webhook deliveries, expected {n}, within {timeout}s")

    def close(self) -> None:
        self.server.shutdown()


def provision(out: str) -> None:
    """Users and groups in the main directory, over SCIM; the ids go to `out`."""
    base, token = os.environ["ROSTER_SCIM_BASE"], os.environ["ROSTER_SCIM_TOKEN"]
    people = [("ada", "Ada", "Lovelace"), ("alan", "Alan", "Turing"), ("grace", "Grace", "Hopper"),
              ("edsger", "Edsger", "Dijkstra"), ("barbara", "Barbara", "Liskov")]
    users = {}
    for name, given, family in people:
        users[name] = scim(base, token, "POST", "/Users", user_body(name, given, family))["id"]
    groups = {}
    for gname, members in [("engineering", ["ada", "alan", "grace"]), ("research", ["grace", "edsger"]),
                             # Webhook checks add their users here.
                             ("hooks", [])]:
        groups[gname] = scim(
            base,
            token,
            "POST",
            "/Groups",
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": gname,
                "externalId": f"ext-{gname}",
                "members": [{"value": users[m]} for m in members],
            },
        )["id"]
    with open(out, "w") as f:
        json.dump({"users": users, "groups": groups}, f)


if __name__ == "__main__":
    import sys

    provision(sys.argv[1])
