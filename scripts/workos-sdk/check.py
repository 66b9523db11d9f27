"""The Python WorkOS SDK (PyPI `workos` 10.x) against a live Roster: every
Directory Sync, Events and Webhooks call an app makes, with the host and key
as the only change. Run by run.sh, which provisions the fixture and passes
it in the environment. Prints `workos-sdk python: N checks passed`."""

from __future__ import annotations

import json
import os
import sys

from workos import NotFoundError, WorkOSClient

from common import Receiver, add_member, scim, user_body

checks = 0


def check(ok: bool, what: str) -> None:
    global checks
    if not ok:
        raise AssertionError(what)
    checks += 1


def walk(list_fn, limit: int, order: str, **params) -> list[str]:
    """Every page forwards with `after`, then back from the last with `before`;
    both must give the same ids. Returns them in `order`."""
    pages = []
    page = list_fn(limit=limit, order=order, **params)
    check(page.list_metadata.before is None, f"first page of {order} has no before")
    while True:
        ids = [o.id for o in page.data]
        check(len(ids) <= limit, "a page holds at most limit objects")
        pages.append(ids)
        if page.list_metadata.after is None:
            break
        page = list_fn(limit=limit, order=order, after=page.list_metadata.after, **params)
    forwards = [i for p in pages for i in p]
    back = pages[-1]
    before = pages[-1][0] if pages[-1] else None
    backwards_pages = []
    while before is not None and len(pages) > 1:
        page = list_fn(limit=limit, order=order, before=before, **params)
        if not page.data:
            break
        backwards_pages.insert(0, [o.id for o in page.data])
        before = page.list_metadata.before
    if len(pages) > 1:
        check([i for p in backwards_pages for i in p] + back == forwards,
              f"{order}: walking back with before gives the pages walked forwards")
    check(len(set(forwards)) == len(forwards), f"{order}: no object twice")
    return forwards


def both_orders(list_fn, limit: int, **params) -> list[str]:
    desc = walk(list_fn, limit, "desc", **params)
    asc = walk(list_fn, limit, "asc", **params)
    check(asc == list(reversed(desc)), "asc is desc reversed")
    auto = [o.id for o in list_fn(limit=limit, **params).auto_paging_iter()]
    check(auto == desc, "auto_paging_iter follows after through every page")
    return desc


def main() -> int:
    env = os.environ
    fixture = json.load(open(env["ROSTER_FIXTURE"]))
    users, groups = fixture["users"], fixture["groups"]
    directory = env["ROSTER_DIRECTORY"]
    client = WorkOSClient(api_key=env["WORKOS_API_KEY"], base_url=env["ROSTER_URL"])
    ds = client.directory_sync

    # Directories.
    dirs = both_orders(ds.list_directories, 1)
    for d in [directory, *env["ROSTER_OTHER_DIRECTORIES"].split(",")]:
        check(d in dirs, f"list_directories lists {d}")
    org = env["ROSTER_ORGANIZATION"]
    by_org = ds.list_directories(organization_id=org)
    check([d.id for d in by_org.data] == [directory], "list_directories(organization_id=...)")
    d = ds.get_directory(directory)
    check(d.id == directory and d.organization_id == org, "get_directory: id and organization_id")
    check(d.type.endswith("scim v2.0") and d.state == "linked", "get_directory: type and state")

    # Users, with their groups.
    listed = both_orders(ds.list_users, 2, directory=directory)
    # Other checks' webhook users join the directory too.
    check(set(users.values()) <= set(listed), "list_users(directory=...) lists every user")
    page = ds.list_users(directory=directory, limit=100)
    grace = next(u for u in page.data if u.id == users["grace"])
    check(sorted(g.id for g in grace.groups) == sorted([groups["engineering"], groups["research"]]),
          "list_users carries groups")
    check(grace.email == "grace@example.com" and grace.first_name == "Grace", "user email and names")
    check(grace.idp_id == "ext-grace" and grace.state == "active", "user idp_id and state")
    check(grace.raw_attributes.get("userName") == "grace@example.com", "raw_attributes is the SCIM resource")
    in_eng = both_orders(ds.list_users, 2, group=groups["engineering"])
    check(sorted(in_eng) == sorted(users[n] for n in ["ada", "alan", "grace"]), "list_users(group=...)")
    u = ds.get_user(users["edsger"])
    check(u.last_name == "Dijkstra" and [g.id for g in u.groups] == [groups["research"]], "get_user with groups")

    # Groups.
    listed = both_orders(ds.list_groups, 1, directory=directory)
    check(sorted(listed) == sorted(groups.values()), "list_groups(directory=...)")
    of_grace = both_orders(ds.list_groups, 1, user=users["grace"])
    check(sorted(of_grace) == sorted([groups["engineering"], groups["research"]]), "list_groups(user=...)")
    g = ds.get_group(groups["research"])
    check(g.name == "research" and g.directory_id == directory and g.idp_id == "ext-research", "get_group")

    # Unknown ids are NotFoundError.
    for call in (lambda: ds.get_user("no-such-user"), lambda: ds.get_group("no-such-group"),
                 lambda: ds.get_directory("no-such-directory")):
        try:
            call()
            check(False, "an unknown id raises NotFoundError")
        except NotFoundError:
            check(True, "an unknown id raises NotFoundError")

    # Events by type, paged with after as an app polls.
    seen, after = [], None
    while True:
        page = client.events.list_events(events=["dsync.user.created"], limit=2, after=after)
        if not page.data:
            break
        seen += page.data
        after = page.list_metadata.after
    mine = [e for e in seen if e.data.directory_id == directory]
    check(sorted(e.data.id for e in mine) == sorted(users.values()), "events: dsync.user.created per user")
    check(all(e.event == "dsync.user.created" for e in seen), "events: only the asked type")
    added = client.events.list_events(events=["dsync.group.created", "dsync.user.created"], limit=100)
    types = {e.event for e in added.data}
    check(types == {"dsync.group.created", "dsync.user.created"}, "events: several types at once")
    base, token = env["ROSTER_SCIM_BASE"], env["ROSTER_SCIM_TOKEN"]

    # Webhooks: a WorkOS-format endpoint, deliveries verified by the SDK.
    receiver = Receiver()
    try:
        ep = client.webhooks.create_webhook_endpoint(
            endpoint_url=receiver.url, events=["dsync.user.created", "dsync.group.user_added"]
        )
        check(ep.status == "enabled" and ep.secret, "create_webhook_endpoint")
        listed = [e.id for e in client.webhooks.list_webhook_endpoints().auto_paging_iter()]
        check(ep.id in listed, "list_webhook_endpoints")
        new = scim(base, token, "POST", "/Users", user_body("py-hook", "Py", "Hook"))["id"]
        add_member(base, token, groups["hooks"], new)
        got = receiver.wait(2)
        events = []
        for headers, body in got:
            ev = client.webhooks.verify_event(
                event_body=body, event_signature=headers["workos-signature"], secret=ep.secret
            )
            events.append(ev)
        # The user and the group are different resources, so their events may
        # arrive in either order; event ids sort in commit order.
        events.sort(key=lambda e: e.id)
        check([e.event for e in events] == ["dsync.user.created", "dsync.group.user_added"],
              "webhooks: verify_event on each delivery")
        check(events[0].data.id == new and events[1].data.user.id == new
              and events[1].data.group.id == groups["hooks"], "webhook payloads")
        polled, after = set(), None
        while True:
            page = client.events.list_events(events=["dsync.group.user_added"], limit=100, after=after)
            if not page.data:
                break
            polled |= {e.id for e in page.data}
            after = page.list_metadata.after
        check(events[1].id in polled, "a webhook event has its /events id")
        try:
            client.webhooks.verify_event(event_body=got[0][1] + b" ", event_signature=got[0][0]["workos-signature"],
                                         secret=ep.secret)
            check(False, "verify_event refuses a changed body")
        except ValueError:
            check(True, "verify_event refuses a changed body")
        off = client.webhooks.update_webhook_endpoint(ep.id, status="disabled")
        check(off.status == "disabled" and off.secret == ep.secret, "update_webhook_endpoint")
        client.webhooks.delete_webhook_endpoint(ep.id)
        listed = [e.id for e in client.webhooks.list_webhook_endpoints().auto_paging_iter()]
        check(ep.id not in listed, "delete_webhook_endpoint")
    finally:
        receiver.close()

    # Deleting a directory.
    scratch = env["ROSTER_SCRATCH_DIRECTORY"]
    ds.delete_directory(scratch)
    try:
        ds.get_directory(scratch)
        check(False, "a deleted directory is gone")
    except NotFoundError:
        check(True, "a deleted directory is gone")

    print(f"workos-sdk python: {checks} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
