"""plan(desired, live) -> Plan: the smallest ordered list of actions; pure.

Order comes from a declared rank, never from dict order, in four steps that make
before they break, so that a failure part-way can still be undone:

1. reversible deletions (firewall tables, files, routes, addresses), in reverse
   dependency order: undoing them only writes the same values again;
2. creates and updates, in dependency order;
3. the break: deletions of what processes may still run in or through (veths of
   containers that stay, second names, namespaces), then bridges, whose ports have gone
   with them; of these, undoing cannot give back a namespace or a veth (kinds that declare `irreversible`);
4. creates and updates that need what the break frees: a namespace, bridge or host
   interface name taken by a deleted object, an interface name inside a container
   (eth0 of a network left, given to a network joined), and what depends on those.

Ties go by key. The planner knows no kind: each declares (reconciler.state.model) its
rank, what it needs and provides, the names it holds, the fields that force its
replacement, and what the kernel removes with it. Deleting a namespace, bridge or veth takes with it what lives on it,
so those children get no action of their own; a child that exists but vanishes with
its parent (a replaced veth's addresses) is created again. One exception: an address
that would vanish in the break while another interface wants the same IP (a container
removed and its address given to a new one) is deleted in step 1, so that the two never
answer for one address on a network at the same time.
"""

from __future__ import annotations

import dataclasses

from reconciler.render import firewall
from reconciler.state.model import HOST_NS, MISSING, KernelObject, State
from reconciler.state.plan import CREATE, DELETE, UPDATE, Action, Plan

SHOWN_RULE_CHANGES = 3
GUARD_SHOWN = 10


REMOVED_BY_DESTROY = "removed by destroy"


def plan(desired: State, live: State, destroying: bool = False) -> Plan:
    """Actions that turn `live` into `desired`, and whether they are safe to run without
    --force (`Plan.guard`, see mass_deletion; never for `destroying`: removing everything
    is what destroy is for).

    `live` holds only objects netreconcile owns (plus the names of foreign ones);
    anything it holds that `desired` lacks is deleted, except what is only ever set
    (sysctls: not `deletable`).
    """
    replaced: set[tuple] = set()
    for key, want in desired.objects.items():
        have = live.objects.get(key)
        if have is not None and have != want and any(f in want.replace_on for f, _, _ in want.differences(have)):
            replaced.add(key)
    deleted = {k for k, o in live.objects.items() if k not in desired.objects and o.deletable}
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
            reason = REMOVED_BY_DESTROY if destroying else obj.stray_reason
        deletions.append(Action(DELETE, obj, reason))
    gone = removed | vanishing
    routes_dropped = _dropped_with(removed - vanishing, live)
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
    freed = {name for key in gone if live.objects[key].in_break for name in live.objects[key].holds()}
    actions = deletions + _after_the_break(changes, freed)
    actions.sort(key=Action.sort_key)
    guard = None if destroying else mass_deletion(desired, live)
    return Plan(tuple(actions), _conflicts(desired, live), guard)


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
    managed = sorted({o.netns for o in live.objects.values() if o.is_container})
    kept = {o.netns for o in desired.objects.values() if o.is_container}
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
            described.append(_describe_content(str(old), str(new)))
        elif name == "ruleset":
            described.append(_describe_rules(old, new))
        elif name == "elements":
            described.append(_describe_elements(old, new))
        else:
            described.append(f"{name} {_shown(old)} -> {_shown(new)}")
    return ", ".join(described)


def _shown(value: object) -> str:
    return repr(str(value)) if value is MISSING else repr(value)  # MISSING reads '?' as it always has


def _describe_rules(old: str, new: str) -> str:
    added, removed = firewall.rule_changes(old, new)
    shown = [f"+ {rule}" for rule in added] + [f"- {rule}" for rule in removed]
    summary = f"replace the tables: {len(added)} rule(s) to add, {len(removed)} to remove"
    if not shown:
        return summary + " (the tables' layout differs)"
    more = f"; and {len(shown) - SHOWN_RULE_CHANGES} more" if len(shown) > SHOWN_RULE_CHANGES else ""
    listed = [firewall.abbreviate(rule) for rule in shown[:SHOWN_RULE_CHANGES]]
    return f"{summary}: {'; '.join(listed)}{more}"


def _describe_elements(old: tuple[str, ...], new: tuple[str, ...]) -> str:
    added, removed = firewall.element_changes(old, new)
    shown = [f"+ {element}" for element in added] + [f"- {element}" for element in removed]
    more = f"; and {len(shown) - SHOWN_RULE_CHANGES} more" if len(shown) > SHOWN_RULE_CHANGES else ""
    return (f"update the published-port maps: {len(added)} element(s) to add, {len(removed)} to remove: "
            f"{'; '.join(shown[:SHOWN_RULE_CHANGES])}{more}")


# what str.splitlines breaks lines at besides "\n": a text holding one takes the slow path
_OTHER_LINE_BREAKS = "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def _describe_content(old: str, new: str) -> str:
    """The first line that differs (what `str.splitlines` gives), found by the common
    prefix: a thousand hosts files of a thousand lines differing near their end (one
    container joined) cost 0.2 s line by line."""
    head = old[:_common_prefix_length(old, new)]
    start, line = head.rfind("\n") + 1, head.count("\n") + 1
    was, now = old[start:].partition("\n")[0], new[start:].partition("\n")[0]
    # only line breaks before the difference or in the two lines change what splitlines sees
    plain = not any(c in head or c in was or c in now for c in _OTHER_LINE_BREAKS)
    if plain and was != now:  # else they may differ only in a final newline, which splitlines ignores
        return f"content differs at line {line}: {was!r} -> {now!r}"
    return _describe_content_by_lines(old, new)


def _common_prefix_length(old: str, new: str) -> int:
    low, high = 0, min(len(old), len(new))
    while low < high:  # old[:low] == new[:low]; halving compares each character about twice
        middle = (low + high + 1) // 2
        if old[low:middle] == new[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _describe_content_by_lines(old: str, new: str) -> str:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for index in range(max(len(old_lines), len(new_lines))):
        was = old_lines[index] if index < len(old_lines) else ""
        now = new_lines[index] if index < len(new_lines) else ""
        if was != now:
            return f"content differs at line {index + 1}: {was!r} -> {now!r}"
    return "content differs"


def _children_of(removed: set[tuple], live: State) -> set[tuple]:
    """Live objects that the kernel removes along with the removed objects."""
    taken = set().union(*(live.objects[key].takes_along() for key in removed if key in live.objects))
    if not taken:
        return set()
    return {key for key, obj in live.objects.items() if obj.goes_with() & taken}


def _addresses_taken_over(vanishing: set[tuple], desired: State, live: State) -> set[tuple]:
    """Objects (addresses) that would vanish in the break while the spec gives what they
    claim (their IP) to another: they are deleted before, so that no two hold it at once."""
    wanted = set().union(*(obj.claims() for obj in desired.objects.values()))
    return {
        key for key in vanishing
        if key not in desired.objects and live.objects[key].claims() & wanted
    }


def _after_the_break(changes: list[Action], freed: set[tuple]) -> list[Action]:
    """`changes` with the creates marked that take a name the break frees, and the creates
    and updates marked that need one of those first."""
    if not freed:
        return changes
    marked: list[Action] = []
    waiting: set[tuple] = set()  # what the creates after the break provide
    for action in sorted(changes, key=lambda a: a.obj.rank):  # what an object needs ranks lower
        needs_freed_name = action.op == CREATE and bool(action.obj.holds() & freed)
        if needs_freed_name or action.obj.needs() & waiting:
            action = dataclasses.replace(action, after_break=True)
            if action.op == CREATE:
                waiting |= action.obj.provides()
        marked.append(action)
    return marked


def _dropped_with(removed: set[tuple], live: State) -> set[tuple]:
    """Live objects the kernel drops when the removed objects go although they stay
    wanted: routes through an interface that loses an address."""
    lost = set().union(*(live.objects[key].provides() for key in removed))
    if not lost:
        return set()
    return {key for key, obj in live.objects.items() if obj.dropped_with() & lost}


def _conflicts(desired: State, live: State) -> tuple[str, ...]:
    if not (live.foreign_files or live.foreign_netns or live.foreign_links or desired.refusals):
        return ()
    found = list(desired.refusals)
    in_the_way: dict[str, list[str]] = {}
    for container, what in live.foreign_files:
        in_the_way.setdefault(container, []).append(what)
    for obj in desired.objects.values():
        for name in sorted(obj.holds()):
            if name[0] == "netns":
                found += [f"{obj.source}: {what}: remove it" for what in in_the_way.get(name[1], ())]
                if name[1] in live.foreign_netns:
                    found.append(f"{obj.source}: network namespace {name[1]} {_netns_owner(name[1], live)}")
            elif name[:2] == ("link", HOST_NS) and name[2] in live.foreign_links:
                found.append(f"{obj.source}: interface {name[2]} exists and is not managed by netreconcile")
    return tuple(sorted(found))


def _netns_owner(name: str, live: State) -> str:
    host = live.foreign_netns_hosts.get(name)
    if host is None:
        return "exists and is not managed by netreconcile"
    where = f"host namespace {host}" if host else "the root network namespace (no --host-netns)"
    return f"is managed by netreconcile for {where}, not for this one"


def dependencies(obj: KernelObject, state: State) -> set[tuple]:
    """Keys of the objects in `state` that `obj` needs to exist first."""
    needs = obj.needs()
    return {key for key, other in state.objects.items() if other.provides() & needs}
