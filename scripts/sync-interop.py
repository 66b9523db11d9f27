#!/usr/bin/env python3
"""Run `roster sync` against scim2-server (PyPI), as a target and as a source.

Usage: python scripts/sync-interop.py --roster target/debug/roster [--scim2-server PATH]

Needs scim2-server (see scripts/sync-requirements.txt); by default it is looked
for beside this Python interpreter (a virtualenv's bin/). The script starts
`roster serve` on a free loopback port with its own SQLite file and
scim2-server twice: once as it comes (bulk and filters on, no cursors) and once
with a ServiceProviderConfig that turns bulk and filtering off, so that
discovery must steer roster sync to single requests, a listing of the target
for matching, and a full source listing instead of an incremental one. Every
check prints a line; the last line is `sync-interop: N passed, M failed`. Exit
status is non-zero when a check failed. Every server is always stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
S2_TOKEN = "interop-token"
USERS = 150


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, token: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, (json.loads(text) if text.strip() else None)
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, (json.loads(text) if text.strip() else None)


def wait_for(url: str, token: str, proc: subprocess.Popen, what: str):
    for _ in range(100):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            status, _ = call("GET", url, token)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not answer at {url}")


def all_resources(base: str, token: str, kind: str) -> list:
    out, start = [], 1
    while True:
        status, body = call("GET", f"{base}/{kind}?count=500&startIndex={start}", token)
        assert status == 200, (status, body)
        page = body.get("Resources", [])
        out.extend(page)
        if not page or len(out) >= body["totalResults"]:
            return out
        start += len(page)


class Interop:
    def __init__(self, roster: str, s2: str, work: Path):
        self.roster, self.s2, self.work = roster, s2, work
        self.procs: list[subprocess.Popen] = []
        self.passed = self.failed = 0

    def check(self, name: str, ok: bool, detail: str = ""):
        if ok:
            self.passed += 1
            print(f"  PASS {name}")
        else:
            self.failed += 1
            print(f"  FAIL {name}: {detail}")

    def start_roster(self) -> str:
        port = free_port()
        db = f"sqlite://{self.work / 'roster.db'}"
        self.db = db
        log = open(self.work / "roster.log", "w")
        p = subprocess.Popen(
            [self.roster, "--database", db, "serve", "--listen", f"127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ROSTER_LOG": "warn"},
        )
        self.procs.append(p)
        self.roster_url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return self.roster_url
            except OSError:
                time.sleep(0.1)
        raise SystemExit("roster serve did not start")

    def directory(self, name: str) -> tuple[str, str]:
        out = subprocess.run(
            [self.roster, "--database", self.db, "directory", "create", name, "--json"],
            check=True, capture_output=True, text=True,
        ).stdout
        d = json.loads(out)
        return self.roster_url + d["scim_base_path"], d["token"]

    def start_s2(self, name: str, spc: dict | None = None) -> str:
        port = free_port()
        args = [self.s2, "--port", str(port), "--bearer-token", S2_TOKEN]
        if spc is not None:
            path = self.work / f"{name}-spc.json"
            path.write_text(json.dumps(spc))
            args += ["--service-provider-config", str(path)]
        log = open(self.work / f"{name}.log", "w")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        base = f"http://127.0.0.1:{port}/v2"
        wait_for(f"{base}/ServiceProviderConfig", S2_TOKEN, p, "scim2-server")
        return base

    def sync(self, source: tuple[str, str] | None, target: tuple[str, str], state: str, *extra: str,
             source_file: Path | None = None) -> tuple[int, dict, str]:
        report = self.work / f"{state}.report.json"
        args = [self.roster, "sync", "--target", target[0], "--state", str(self.work / state),
                "--report", str(report), *extra]
        env = {**os.environ, "ROSTER_TARGET_TOKEN": target[1], "ROSTER_LOG": "warn"}
        if source is not None:
            args += ["--source", source[0]]
            env["ROSTER_SOURCE_TOKEN"] = source[1]
        else:
            args += ["--source-file", str(source_file)]
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
        rep = json.loads(report.read_text()) if report.exists() else {}
        return r.returncode, rep, r.stderr

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def names(base: str, token: str) -> dict[str, dict]:
    return {u["userName"]: u for u in all_resources(base, token, "Users")}


def members(base: str, token: str, group: str) -> list[str]:
    by_id = {u["id"]: u["userName"] for u in all_resources(base, token, "Users")}
    for g in all_resources(base, token, "Groups"):
        if g["displayName"] == group:
            return sorted(by_id.get(m["value"], "?") for m in g.get("members", []))
    return []


def run(it: Interop):
    it.start_roster()
    src = it.directory("interop-source")
    # The source: USERS users through /Bulk, and a group of the first ten.
    ops = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": {
        "schemas": [USER], "userName": f"user{i}@example.com", "externalId": f"ext-{i}",
        "name": {"givenName": f"Given{i}", "familyName": "Family"}, "active": True,
        "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}]}}
        for i in range(USERS)]
    status, body = call("POST", f"{src[0]}/Bulk", src[1], {"Operations": ops})
    assert status == 200, body
    ids = [op["location"].rsplit("/", 1)[1] for op in body["Operations"]]
    status, _ = call("POST", f"{src[0]}/Groups", src[1], {
        "schemas": [GROUP], "displayName": "eng", "members": [{"value": i} for i in ids[:10]]})
    assert status == 201
    want_eng = sorted(f"user{i}@example.com" for i in range(10))

    print("scim2-server as the target (bulk and filters as it comes):")
    s2 = (it.start_s2("s2-full"), S2_TOKEN)
    code, rep, err = it.sync(src, s2, "to-s2.json")
    it.check("full sync exits 0", code == 0, err)
    it.check("discovery chose /Bulk", rep.get("mode") == "bulk", rep.get("mode"))
    got = names(*s2)
    it.check(f"{USERS} users arrived once each", len(got) == USERS, f"{len(got)} users")
    it.check("group members were translated to target ids", members(*s2, "eng") == want_eng,
             members(*s2, "eng"))
    code, rep, err = it.sync(src, s2, "to-s2.json")
    it.check("a re-run sends nothing", code == 0 and rep["counts"]["planned"] == 0, rep.get("counts"))
    call("PATCH", f"{src[0]}/Users/{ids[42]}", src[1],
         {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]})
    call("DELETE", f"{src[0]}/Users/{ids[149]}", src[1])
    code, rep, err = it.sync(src, s2, "to-s2.json", "--reconcile")
    it.check("incremental run updates the changed user and reconcile deletes the vanished one",
             code == 0 and rep["counts"]["updated"] == 1 and rep["counts"]["deleted"] == 1, rep.get("counts"))
    got = names(*s2)
    it.check("the change and the deletion are in scim2-server",
             got.get("user42@example.com", {}).get("title") == "Boss" and "user149@example.com" not in got
             and len(got) == USERS - 1, f"{len(got)} users")

    # scim2-server has ETags: an edit made there is caught by If-Match.
    s2_user = names(*s2)["user43@example.com"]["id"]
    call("PATCH", f"{s2[0]}/Users/{s2_user}", S2_TOKEN,
         {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "nickName", "value": "edited"}]})
    call("PATCH", f"{src[0]}/Users/{ids[43]}", src[1],
         {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]})
    code, rep, err = it.sync(src, s2, "to-s2.json")
    got = names(*s2)["user43@example.com"]
    it.check("an edit made in scim2-server is caught by If-Match (target_drift) and the source wins",
             code == 0 and rep["counts"]["target_drift"] == 1 and got.get("title") == "Lead"
             and "nickName" not in got, rep.get("counts"))

    print("scim2-server as the target, bulk and filters turned off:")
    plain_spc = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True}, "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": False, "maxResults": 1000}, "changePassword": {"supported": False},
        "sort": {"supported": False}, "etag": {"supported": False},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "bearer", "description": "token"}],
    }
    plain = (it.start_s2("s2-plain", plain_spc), S2_TOKEN)
    code, rep, err = it.sync(src, plain, "to-plain.json", "--concurrency", "4")
    it.check("full sync without bulk exits 0", code == 0, err)
    it.check("discovery chose single requests", rep.get("mode") == "single", rep.get("mode"))
    it.check(f"{USERS - 1} users arrived", len(names(*plain)) == USERS - 1, len(names(*plain)))
    it.check("group members translated without bulk", members(*plain, "eng") == want_eng, members(*plain, "eng"))
    os.remove(it.work / "to-plain.json")
    code, rep, err = it.sync(src, plain, "to-plain.json")
    it.check("with the state file lost, a listing of a target that cannot filter matches every user",
             code == 0 and rep["counts"]["created"] == 0 and len(names(*plain)) == USERS - 1, rep.get("counts"))

    print("scim2-server as the source:")
    dst = it.directory("interop-from-s2")
    code, rep, err = it.sync(s2, dst, "from-s2.json")
    it.check("full sync from scim2-server exits 0", code == 0, err)
    it.check(f"{USERS - 1} users and the group arrived in Roster",
             len(names(*dst)) == USERS - 1 and members(*dst, "eng") == want_eng, rep.get("counts"))
    s2_ids = {u["userName"]: u["id"] for u in all_resources(*s2, "Users")}
    status, _ = call("PATCH", f"{s2[0]}/Users/{s2_ids['user7@example.com']}", S2_TOKEN,
                     {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Chief"}]})
    code, rep, err = it.sync(s2, dst, "from-s2.json", "--overlap-secs", "0")
    it.check("scim2-server filters on meta.lastModified: the second run is incremental",
             rep.get("listing", {}).get("mode") == "incremental", rep.get("listing"))
    it.check("only the changed user was updated",
             code == 0 and rep["counts"]["updated"] == 1 and rep["counts"]["created"] == 0, rep.get("counts"))
    it.check("the change is in Roster", names(*dst)["user7@example.com"].get("title") == "Chief", "")

    plain_src = it.directory("interop-from-plain")
    code, rep, err = it.sync(plain, plain_src, "from-plain.json")
    code, rep, err = it.sync(plain, plain_src, "from-plain.json")
    it.check("a source that cannot filter is listed whole and diffed against the state",
             code == 0 and rep.get("listing", {}).get("mode") == "full"
             and rep["listing"].get("fallback_reason") and rep["counts"]["planned"] == 0, rep.get("listing"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--roster", required=True)
    ap.add_argument("--scim2-server", default=str(Path(sys.executable).parent / "scim2-server"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="roster-sync-interop-") as work:
        it = Interop(os.path.abspath(a.roster), a.scim2_server, Path(work))
        try:
            run(it)
        except Exception as e:  # a crash of the script is a failed check, with the servers stopped
            it.check("the interop run completed", False, repr(e))
        finally:
            it.stop()
    print(f"sync-interop: {it.passed} passed, {it.failed} failed")
    return 0 if it.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
