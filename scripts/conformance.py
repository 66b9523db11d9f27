#!/usr/bin/env python3
"""Run the scim2-tester conformance checks against a freshly started Roster.

Usage: python scripts/conformance.py --roster target/debug/roster

Needs scim2-tester with its httpx2 engine (see scripts/conformance-requirements.txt).
It starts `roster serve` on a free loopback port with its own SQLite file, creates
a directory, runs every check, prints each result, and exits non-zero when a check
fails that is not listed in KNOWN below. The server is always stopped.

Results count as failed when scim2-tester reports ERROR or CRITICAL (a MUST is
broken). DEVIATION (a SHOULD not followed) is printed but does not fail the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

# Checks where scim2-tester and Roster disagree and RFC 7643/7644 side with Roster,
# or where Roster deliberately does otherwise. Keyed by (resource type or "-", check
# title, attribute the check was about or "-"), so that one entry never hides another
# attribute's failure under the same check; each is explained in docs/conformance.md.
# A listed check that passes fails the run too, so the list cannot outlive the
# disagreement. Each entry also carries a test of the failure itself: a failure of
# the same check for another reason is a failure.
def _only_display_differs(r) -> bool:
    """The members the check sent came back, plus the display names Roster fills in."""
    data = r.data if isinstance(r.data, dict) else {}
    actual = data.get("modify_actual", data.get("actual"))
    expected = data.get("expected")
    if not isinstance(actual, list) or not isinstance(expected, list):
        return False

    def dump(members: list, drop_display: bool) -> list:
        out = []
        for m in members:
            d = m.model_dump() if hasattr(m, "model_dump") else dict(m)
            if drop_display:
                d.pop("display", None)
            out.append(d)
        return out

    return dump(actual, True) == dump(expected, True) and dump(expected, False) != dump(
        actual, False
    )


MEMBERS_DISPLAY = (
    "members.display is readOnly and filled in by Roster "
    "(docs/conformance.md#group-members-display)",
    _only_display_differs,
)
KNOWN: dict[tuple[str, str, str], tuple[str, object]] = {
    ("Group", "check_add_attribute", "members"): MEMBERS_DISPLAY,
    ("Group", "check_replace_attribute", "members"): MEMBERS_DISPLAY,
}

FAILING = {Status.ERROR, Status.CRITICAL}
PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(proc: subprocess.Popen, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"roster serve exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"roster serve did not listen on port {port} within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_checks(base_url: str, token: str) -> list:
    http = Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    )
    with http:
        return check_server(SyncSCIMClient(http))


def result_key(r) -> tuple[str, str, str]:
    urn = r.data.get("urn") if isinstance(r.data, dict) else None
    return (r.resource_type or "-", r.title or "?", str(urn) if urn else "-")


def report(results: list) -> int:
    counts = {"passed": 0, "failed": 0, "known": 0, "deviation": 0, "skipped": 0}
    problems: list[str] = []
    seen_known: set[tuple[str, str, str]] = set()
    for r in results:
        key = result_key(r)
        where = f"{key[0]:<6} {key[1]}"
        reason = (r.reason or "").replace("\n", " ")
        if r.status in FAILING and key in KNOWN and KNOWN[key][1](r):
            seen_known.add(key)
            counts["known"] += 1
            label = "KNOWN"
            reason = f"{KNOWN[key][0]}; {reason}"
        elif r.status in FAILING:
            counts["failed"] += 1
            label = "FAIL"
            detail = f"{where}: {reason}"
            if r.data is not None:
                detail += f"\n      data: {str(r.data)[:2000]}"
            problems.append(detail)
        elif r.status == Status.DEVIATION:
            counts["deviation"] += 1
            label = "DEVIATION"
        elif r.status == Status.SKIPPED:
            counts["skipped"] += 1
            label = "SKIP"
        else:
            counts["passed"] += 1
            label = "ok"
        print(f"  {label:<9} [{r.status.name}] {where}: {reason[:300]}")

    for key in KNOWN:
        if key not in seen_known and any(
            result_key(r) == key and r.status in PASSING for r in results
        ):
            counts["failed"] += 1
            problems.append(
                f"{key[0]} {key[1]} {key[2]}: listed as known in scripts/conformance.py "
                "but it passes now; remove it there and in docs/conformance.md"
            )

    if problems:
        print("\nFailed checks:")
        for p in problems:
            print(f"  - {p}")
    print(
        f"\nscim2-tester: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['known']} known disagreements (docs/conformance.md), "
        f"{counts['deviation']} deviations from a SHOULD, {counts['skipped']} skipped"
    )
    return 1 if counts["failed"] else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--roster", required=True, help="path to the roster binary")
    args = ap.parse_args()
    roster = str(Path(args.roster).resolve())

    with tempfile.TemporaryDirectory(prefix="roster-conformance-") as tmp:
        db = f"sqlite://{tmp}/c.db"
        log_path = Path(tmp) / "serve.log"
        env = dict(os.environ, ROSTER_LOG=os.environ.get("ROSTER_LOG", "info"), NO_COLOR="1")
        proc = None
        try:
            for attempt in range(3):
                port = free_port()
                log = open(log_path, "w")
                proc = subprocess.Popen(
                    [roster, "serve", "--listen", f"127.0.0.1:{port}", "--database", db],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
                try:
                    wait_until_listening(proc, port, timeout=30)
                    break
                except RuntimeError as e:
                    # Another process may have taken the port between probe and bind.
                    stop(proc)
                    print(f"conformance: attempt {attempt + 1}: {e}", file=sys.stderr)
            else:
                print(log_path.read_text(), file=sys.stderr)
                return 1

            created = subprocess.run(
                [roster, "--database", db, "directory", "create", "conformance", "--json"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            directory = json.loads(created.stdout)
            base_url = f"http://127.0.0.1:{port}{directory['scim_base_path']}"
            print(f"conformance: scim2-tester against {base_url}")
            results = run_checks(base_url, directory["token"])
            code = report(results)
            if code:
                print("\nroster serve log (last 60 lines):")
                print("\n".join(log_path.read_text().splitlines()[-60:]))
            return code
        finally:
            if proc is not None:
                stop(proc)


if __name__ == "__main__":
    sys.exit(main())
