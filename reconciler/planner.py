"""plan(desired, live) -> Plan: the smallest ordered list of actions; pure.

Order comes from a declared rank, never from dict order: deletes first in reverse
dependency order, then creates and updates in dependency order, ties by key.
Deleting a namespace, bridge or veth takes with it what lives on it, so those
children get no action of their own; a child that exists but vanishes with its
parent (a replaced veth's addresses) is created again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from reconciler import firewall
from reconciler.desired import IP_FORWARD
from reconciler.model import (
    HOST_NS, Address, Bridge, File, Firewall, KernelObject, Netns, NetnsAlias, Route, State, Sysctl, Veth,
)

CREATE, UPDATE, DELETE = "create", "update", "delete"

# dependency rank: an object depends only on objects of lower rank. Bridges and
# namespaces are independent; namespaces rank above bridges so that they are deleted
# first: the kernel then takes their veths off the bridge in one batch, and the
# bridge is deleted without ports (unenslaving 1000 ports one by one costs 0.3 s).
# An alias (a second name of a namespace) needs the namespace it names. The firewall
# comes before the sysctls so that forwarding is enabled behind it.
RANK: dict[str, int] = {
    "bridge": 0, "netns": 1, "alias": 2, "veth": 3, "address": 4, "route": 5, "file": 6, "firewall": 7,
    "sysctl": 8,
}
SHOWN_RULE_CHANGES = 3
GUARD_SHOWN = 10


@dataclass(frozen=True)
class Action:
    op: str
    obj: KernelObject  # desired object for create/update, live object for delete
    reason: str
    changes: tuple[tuple[str, object, object], ...] = ()  # (field, live value, desired value)

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def key(self) -> tuple:
        return self.obj.key

    @property
    def source(self) -> str:
        return getattr(self.obj, "source", "")

    def sort_key(self) -> tuple:
        rank = RANK[self.kind]
        if self.op == DELETE:
            return (0, -rank, self.key)
        return (1, rank, self.key)


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    conflicts: tuple[str, ...] = ()  # objects in the way that are not ours
    guard: str | None = None  # why applying it needs --force (see mass_deletion)

    def __bool__(self) -> bool:
        return bool(self.actions)

    def counts(self) -> dict[str, int]:
        result = {CREATE: 0, UPDATE: 0, DELETE: 0}
        for action in self.actions:
            result[action.op] += 1
        return result


def plan(desired: State, live: State) -> Plan:
    """Actions that turn `live` into `desired`.

    `live` holds only objects netreconcile owns (plus the names of foreign ones);
    anything it holds that `desired` lacks is deleted, except sysctls, which are
    only ever set.
    """
    actions: list[Action] = []
    replaced: set[tuple] = set()
    for key, want in desired.objects.items():
        have = live.objects.get(key)
        if have is not None and have != want and any(f in want.replace_on for f, _, _ in want.differences(have)):
            replaced.add(key)
    deleted = {k for k, o in live.objects.items() if k not in desired.objects and not isinstance(o, Sysctl)}
    removed = deleted | replaced
    vanishing = _children_of(removed, live)
    for key in sorted(removed - vanishing, key=repr):
        obj = live.objects[key]
        if key in replaced:
            reason = "replaced: " + _describe(obj.differences(desired.objects[key]))
        else:
            reason = "not in the spec any more"
        actions.append(Action(DELETE, obj, reason))
    gone = removed | vanishing
    routes_dropped = _routes_dropped_with_addresses(removed - vanishing, live)
    for key, want in desired.objects.items():
        have = live.objects.get(key)
        if have is None or key in gone:
            reason = "missing" if have is None else "re-created: it is replaced or goes with a replaced parent"
            actions.append(Action(CREATE, want, reason))
        elif key in routes_dropped:
            actions.append(Action(CREATE, want, "the kernel drops it when the address it goes through is removed"))
        elif have != want:
            changes = have.differences(want)
            if changes:
                actions.append(Action(UPDATE, want, _describe(changes), changes))
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
    return f"{summary}: {'; '.join(shown[:SHOWN_RULE_CHANGES])}{more}"


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
        if isinstance(obj, (Veth, Address, Route, File)) and netns in dead_netns:
            children.add(key)
        elif isinstance(obj, File) and netns in dead_aliases:
            children.add(key)
        elif isinstance(obj, Address) and netns == HOST_NS and obj.ifname in dead_bridges:
            children.add(key)
        elif isinstance(obj, (Address, Route)) and (netns, obj.ifname) in dead_peers:
            children.add(key)
    return children


def _routes_dropped_with_addresses(removed: set[tuple], live: State) -> set[tuple]:
    """Routes through an interface that loses an address (the kernel drops them)."""
    interfaces = {(k[1], k[2]) for k in removed if k[0] == "address"}
    return {
        key for key, obj in live.objects.items()
        if isinstance(obj, Route) and (obj.netns, obj.ifname) in interfaces
    }


def _conflicts(desired: State, live: State) -> tuple[str, ...]:
    found = []
    for obj in desired.objects.values():
        if isinstance(obj, Bridge) and obj.ifname in live.foreign_links:
            found.append(f"{obj.source}: interface {obj.ifname} exists and is not managed by netreconcile")
        elif isinstance(obj, Veth) and obj.host_ifname in live.foreign_links:
            found.append(f"{obj.source}: interface {obj.host_ifname} exists and is not managed by netreconcile")
        elif isinstance(obj, (Netns, NetnsAlias)) and obj.netns in live.foreign_netns:
            found.append(f"{obj.source}: network namespace {obj.netns} exists and is not managed by netreconcile")
    return tuple(sorted(found))


def dependencies(obj: KernelObject, state: State) -> set[tuple]:
    """Keys of the objects in `state` that `obj` needs to exist first."""
    deps: set[tuple] = set()
    if isinstance(obj, Veth):
        deps |= {("netns", obj.netns)} if obj.netns != HOST_NS else set()
        deps |= {k for k, o in state.objects.items() if isinstance(o, Bridge) and o.ifname == obj.bridge}
    elif isinstance(obj, File):
        deps |= {("netns", obj.netns), ("alias", obj.netns)}
    elif isinstance(obj, NetnsAlias) and obj.target != HOST_NS:
        deps.add(("netns", obj.target))
    elif isinstance(obj, (Address, Route)):
        if obj.netns != HOST_NS:
            deps.add(("netns", obj.netns))
            deps |= {
                k for k, o in state.objects.items()
                if isinstance(o, Veth) and (o.netns, o.peer_ifname) == (obj.netns, obj.ifname)
            }
        else:
            deps |= {k for k, o in state.objects.items() if isinstance(o, Bridge) and o.ifname == obj.ifname}
        if isinstance(obj, Route):
            deps |= {
                k for k, o in state.objects.items()
                if isinstance(o, Address) and (o.netns, o.ifname) == (obj.netns, obj.ifname)
            }
    elif isinstance(obj, Sysctl) and obj.setting.startswith("net/ipv4/conf/"):
        ifname = obj.setting.split("/")[3]
        deps |= {k for k, o in state.objects.items() if isinstance(o, Bridge) and o.ifname == ifname}
    elif isinstance(obj, Sysctl) and obj.setting.replace("/", ".") == IP_FORWARD:
        deps |= {k for k, o in state.objects.items() if isinstance(o, Firewall) and o.netns == obj.netns}  # behind it
    return deps & set(state.objects)
