"""plan(desired, live) -> Plan: the smallest ordered list of actions; pure.

Order comes from a declared rank, never from dict order, in four steps that make
before they break, so that a failure part-way can still be undone:

1. reversible deletions (firewall tables, files, routes, addresses), in reverse
   dependency order: undoing them only writes the same values again;
2. creates and updates, in dependency order;
3. the break: deletions of what processes may still run in or through (veths of
   containers that stay, second names, namespaces), then bridges, whose ports have gone
   with them; of these, undoing cannot give back a namespace or a veth (plan.IRREVERSIBLE_KINDS);
4. creates and updates that need what the break frees: a namespace, bridge or host
   interface name taken by a deleted object, an interface name inside a container
   (eth0 of a network left, given to a network joined), and what depends on those.

Ties go by key. Deleting a namespace, bridge or veth takes with it what lives on it,
so those children get no action of their own; a child that exists but vanishes with
its parent (a replaced veth's addresses) is created again. One exception: an address
that would vanish in the break while another interface wants the same IP (a container
removed and its address given to a new one) is deleted in step 1, so that the two never
answer for one address on a network at the same time.
"""

from __future__ import annotations

import dataclasses

from reconciler.render import firewall
from reconciler.state.desired import IP_FORWARD
from reconciler.state.model import (
    HOST_NS, Address, Bridge, File, KernelObject, Leftover, Netns, NetnsAlias, Route, State, Sysctl, Veth,
)
from reconciler.state.plan import BREAK_KINDS, CREATE, DELETE, RANK, UPDATE, Action, Plan

SHOWN_RULE_CHANGES = 3
GUARD_SHOWN = 10


def plan(desired: State, live: State) -> Plan:
    """Actions that turn `live` into `desired`.

    `live` holds only objects netreconcile owns (plus the names of foreign ones);
    anything it holds that `desired` lacks is deleted, except sysctls, which are
    only ever set.
    """
    replaced: set[tuple] = set()
    for key, want in desired.objects.items():
        have = live.objects.get(key)
        if have is not None and have != want and any(f in want.replace_on for f, _, _ in want.differences(have)):
            replaced.add(key)
    deleted = {k for k, o in live.objects.items() if k not in desired.objects and not isinstance(o, Sysctl)}
    removed = deleted | replaced
    vanishing = _children_of(removed, live)
    taken_over = _addresses_taken_over(vanishing, desired, live)
    vanishing -= taken_over
    removed |= taken_over
    deletions = []
    for key in sorted(removed - vanishing, key=repr):
        obj = live.objects[key]
        if key in replaced:
            reason = "replaced: " + _describe(obj.differences(desired.objects[key]))
        elif key in taken_over:
            reason = "its address goes to another interface, and the two must not hold it at once"
        else:
            reason = obj.stray_reason
        deletions.append(Action(DELETE, obj, reason))
    gone = removed | vanishing
    routes_dropped = _routes_dropped_with_addresses(removed - vanishing, live)
    changes = []
    for key, want in desired.objects.items():
        have = live.objects.get(key)
        if have is None or key in gone:
            reason = "missing" if have is None else "re-created: it is replaced or goes with a replaced parent"
            changes.append(Action(CREATE, want, reason))
        elif key in routes_dropped:
            changes.append(Action(CREATE, want, "the kernel drops it when the address it goes through is removed"))
        elif have != want:
            differences = have.differences(want)
            if differences:
                changes.append(Action(UPDATE, want, _describe(differences), differences))
    freed = {name for key in gone if live.objects[key].kind in BREAK_KINDS for name in _names(live.objects[key])}
    actions = deletions + _after_the_break(changes, freed)
    actions.sort(key=Action.sort_key)
    return Plan(tuple(actions), _conflicts(desired, live))


def hold_back(current: Plan, held: frozenset[tuple]) -> tuple[Plan, tuple[Action, ...]]:
    """Split `current` into what runs now and what waits: the actions on held objects
    (another tool is fighting over them) and the creates and updates that need one of
    those first. Everything else is repaired at once."""
    if not any(action.key in held for action in current.actions):
        return current, ()
    waiting: dict[tuple, KernelObject] = {}
    kept, deferred = [], []
    for action in current.actions:  # in plan order: an object's dependencies come before it
        # only the waiting objects are searched: they are few, the plan may hold thousands
        needs = dependencies(action.obj, State(waiting)) if action.op != DELETE else set()
        if action.key in held or needs:
            deferred.append(action)
            waiting[action.key] = action.obj
        else:
            kept.append(action)
    return dataclasses.replace(current, actions=tuple(kept)), tuple(deferred)


def mass_deletion(desired: State, live: State) -> str | None:
    """Why a plan that deletes all the managed containers, or more than half of them,
    should not run without --force: the mark of an empty or truncated spec. None if fine."""
    managed = sorted({o.netns for o in live.objects.values() if isinstance(o, (Netns, NetnsAlias))})
    kept = {o.netns for o in desired.objects.values() if isinstance(o, (Netns, NetnsAlias))}
    gone = [name for name in managed if name not in kept]
    if len(gone) * 2 <= len(managed):  # half or fewer (and not all of one)
        return None
    shown = ", ".join(gone[:GUARD_SHOWN]) + (f" and {len(gone) - GUARD_SHOWN} more" if len(gone) > GUARD_SHOWN else "")
    return f"it would delete {len(gone)} of the {len(managed)} managed containers: {shown}"


def _describe(changes: tuple[tuple[str, object, object], ...]) -> str:
    """'field live -> desired' for each change; for file contents, the first changed
    line; for a firewall table, the rules it gains and loses."""
    described = []
    for name, old, new in changes:
        if name == "content":
            described.append(_describe_content(old, new))
        elif name == "ruleset":
            described.append(_describe_rules(old, new))
        else:
            described.append(f"{name} {old!r} -> {new!r}")
    return ", ".join(described)


def _describe_rules(old: str, new: str) -> str:
    added, removed = firewall.rule_changes(old, new)
    shown = [f"+ {rule}" for rule in added] + [f"- {rule}" for rule in removed]
    summary = f"replace the tables: {len(added)} rule(s) to add, {len(removed)} to remove"
    if not shown:
        return summary + " (the tables' layout differs)"
    more = f"; and {len(shown) - SHOWN_RULE_CHANGES} more" if len(shown) > SHOWN_RULE_CHANGES else ""
    listed = [firewall.abbreviate(rule) for rule in shown[:SHOWN_RULE_CHANGES]]
    return f"{summary}: {'; '.join(listed)}{more}"


def _describe_content(old: str, new: str) -> str:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for index in range(max(len(old_lines), len(new_lines))):
        was = old_lines[index] if index < len(old_lines) else ""
        now = new_lines[index] if index < len(new_lines) else ""
        if was != now:
            return f"content differs at line {index + 1}: {was!r} -> {now!r}"
    return "content differs"


def _children_of(removed: set[tuple], live: State) -> set[tuple]:
    """Live objects that the kernel removes along with the removed objects."""
    dead_netns = {k[1] for k in removed if k[0] == "netns"}
    dead_aliases = {k[1] for k in removed if k[0] == "alias"}  # their files go with them
    dead_bridges = {k[1] for k in removed if k[0] == "bridge"}
    dead_peers = set()
    for key in removed:
        obj = live.objects.get(key)
        if isinstance(obj, Veth):
            dead_peers.add((obj.netns, obj.peer_ifname))
    children = set()
    for key, obj in live.objects.items():
        netns = getattr(obj, "netns", HOST_NS)
        if isinstance(obj, (Veth, Address, Route, File, Leftover)) and netns in dead_netns:
            children.add(key)
        elif isinstance(obj, (File, Leftover)) and netns in dead_aliases:
            children.add(key)
        elif isinstance(obj, Address) and netns == HOST_NS and obj.ifname in dead_bridges:
            children.add(key)
        elif isinstance(obj, (Address, Route)) and (netns, obj.ifname) in dead_peers:
            children.add(key)
    return children


def _addresses_taken_over(vanishing: set[tuple], desired: State, live: State) -> set[tuple]:
    """Addresses that would vanish in the break while the spec gives their IP to another
    interface: they are deleted before, so that no two interfaces answer for one IP."""
    wanted = {_ip(o) for k, o in desired.objects.items() if isinstance(o, Address)}
    return {
        key for key in vanishing
        if isinstance(obj := live.objects[key], Address) and key not in desired.objects and _ip(obj) in wanted
    }


def _ip(address: Address) -> str:
    return address.cidr.split("/")[0]


def _names(obj: KernelObject) -> set[tuple]:
    """The names an object holds that nothing else can have while it exists."""
    if isinstance(obj, (Netns, NetnsAlias)):
        return {("netns", obj.netns)}
    if isinstance(obj, Bridge):
        return {("link", HOST_NS, obj.ifname)}
    if isinstance(obj, Veth):
        return {("link", HOST_NS, obj.host_ifname), ("link", obj.netns, obj.peer_ifname)}
    return set()


def _after_the_break(changes: list[Action], freed: set[tuple]) -> list[Action]:
    """`changes` with the creates marked that take a name the break frees, and the creates
    and updates marked that need one of those first."""
    if not freed:
        return changes
    marked: list[Action] = []
    waiting: set[tuple] = set()  # what the creates after the break provide (see _provides)
    for action in sorted(changes, key=lambda a: RANK[a.kind]):  # what an object needs ranks lower
        needs_freed_name = action.op == CREATE and bool(_names(action.obj) & freed)
        if needs_freed_name or _needs(action.obj) & waiting:
            action = dataclasses.replace(action, after_break=True)
            if action.op == CREATE:
                waiting |= _provides(action.obj)
        marked.append(action)
    return marked


def _routes_dropped_with_addresses(removed: set[tuple], live: State) -> set[tuple]:
    """Routes through an interface that loses an address (the kernel drops them)."""
    interfaces = {(k[1], k[2]) for k in removed if k[0] == "address"}
    return {
        key for key, obj in live.objects.items()
        if isinstance(obj, Route) and (obj.netns, obj.ifname) in interfaces
    }


def _conflicts(desired: State, live: State) -> tuple[str, ...]:
    found = []
    in_the_way: dict[str, list[str]] = {}
    for container, what in live.foreign_files:
        in_the_way.setdefault(container, []).append(what)
    for obj in desired.objects.values():
        if isinstance(obj, (Netns, NetnsAlias)):
            found += [f"{obj.source}: {what}: remove it" for what in in_the_way.get(obj.netns, ())]
        if isinstance(obj, Bridge) and obj.ifname in live.foreign_links:
            found.append(f"{obj.source}: interface {obj.ifname} exists and is not managed by netreconcile")
        elif isinstance(obj, Veth) and obj.host_ifname in live.foreign_links:
            found.append(f"{obj.source}: interface {obj.host_ifname} exists and is not managed by netreconcile")
        elif isinstance(obj, (Netns, NetnsAlias)) and obj.netns in live.foreign_netns:
            found.append(f"{obj.source}: network namespace {obj.netns} {_netns_owner(obj.netns, live)}")
    return tuple(sorted(found))


def _netns_owner(name: str, live: State) -> str:
    host = live.foreign_netns_hosts.get(name)
    if host is None:
        return "exists and is not managed by netreconcile"
    where = f"host namespace {host}" if host else "the root network namespace (no --host-netns)"
    return f"is managed by netreconcile for {where}, not for this one"


def dependencies(obj: KernelObject, state: State) -> set[tuple]:
    """Keys of the objects in `state` that `obj` needs to exist first."""
    needs = _needs(obj)
    return {key for key, other in state.objects.items() if _provides(other) & needs}


def _needs(obj: KernelObject) -> set[tuple]:
    """What `obj` needs to exist first, in the terms of `_provides`."""
    if isinstance(obj, Veth):
        return {("bridge", obj.bridge)} | ({("netns", obj.netns)} if obj.netns != HOST_NS else set())
    if isinstance(obj, File):
        return {("netns", obj.netns), ("alias", obj.netns)}
    if isinstance(obj, NetnsAlias):
        return {("netns", obj.target)} if obj.target != HOST_NS else set()
    if isinstance(obj, (Address, Route)):
        if obj.netns == HOST_NS:
            needs = {("bridge", obj.ifname)}
        else:
            needs = {("netns", obj.netns), ("interface", obj.netns, obj.ifname)}
        return needs | ({("addresses", obj.netns, obj.ifname)} if isinstance(obj, Route) else set())
    if isinstance(obj, Sysctl) and obj.setting.startswith("net/ipv4/conf/"):
        return {("bridge", obj.setting.split("/")[3])}
    if isinstance(obj, Sysctl) and obj.setting.replace("/", ".") == IP_FORWARD:
        return {("firewall", obj.netns)}  # forwarding is switched on behind the firewall
    return set()


def _provides(obj: KernelObject) -> set[tuple]:
    """What other objects may need of `obj`: its key, a veth the interface in its
    container, an address an address on its interface (what routes go through)."""
    if isinstance(obj, Veth):
        return {obj.key, ("interface", obj.netns, obj.peer_ifname)}
    if isinstance(obj, Address):
        return {obj.key, ("addresses", obj.netns, obj.ifname)}
    return {obj.key}
