"""Scopes of kernel objects, and planning over some of them; pure.

A scope is a unit of planning: a container (("container", NAME): its namespace or its
second name, the addresses, routes and links inside, its veth, whose host end is its
own, and its files, which go with its namespace), and the host (HOST_SCOPE: bridges,
the host's addresses, routes, sysctls, uplinks, overlay entries, the firewall; a
handful of objects whatever the number of containers). What is read again is finer
(a container's netlink part or its files: reconciler.kernel.observe_cache).

`plan_in_scopes` plans only over the objects of some scopes, the host's always among
them: when every other scope of the live state is as desired, its plan is the whole
plan (tests/test_watch_incremental.py checks it as a property), at the cost of the
scopes planned instead of the whole state's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from reconciler.state.model import HOST_NS, KernelObject, State
from reconciler.state.plan import DELETE, Plan
from reconciler.state.planner import mass_deletion, plan

Scope = tuple
HOST_SCOPE: Scope = ("host",)


def scope_of(obj: KernelObject) -> Scope:
    if obj.kind == "veth":
        return container_scope(obj.container)  # its marked container, wherever its peer is
    netns = getattr(obj, "netns", HOST_NS)
    return HOST_SCOPE if netns == HOST_NS else container_scope(netns)


def container_scope(name: str) -> Scope:
    return ("container", name)


@dataclass
class ScopedState:
    """A state with its objects by scope, and who claims what (an IP address).

    `update` changes the state in place: its objects dict is this one's own from `of` on
    (whoever holds the state sees the changes), so that a change costs what it changes,
    not the state's size (40,000 objects at 5000 containers). `way_back` keeps, from then
    on, what each key held before, for a rollback."""

    state: State
    parts: dict[Scope, dict[tuple, KernelObject]] = field(default_factory=dict)
    claimed_by: dict[tuple, set[tuple]] = field(default_factory=dict)
    # what each key updated since `way_back` held before it (None: nothing)
    _replaced: dict[tuple, KernelObject | None] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, state: State) -> ScopedState:
        scoped = cls(state)
        for key, obj in state.objects.items():
            scoped.parts.setdefault(scope_of(obj), {})[key] = obj
            for claim in obj.claims():
                scoped.claimed_by.setdefault(claim, set()).add(key)
        return scoped

    def update(self, removed: list[KernelObject], added: list[KernelObject], **fields) -> None:
        """Take the objects `removed` out and put `added` in, in place (a new `state` only
        when `fields` of State are replaced, sharing the objects): the cost of the change."""
        objects, replaced = self.state.objects, self._replaced
        for obj in removed:
            if replaced is not None:
                replaced.setdefault(obj.key, objects[obj.key])
            del objects[obj.key]
            del self.parts[scope_of(obj)][obj.key]
            for claim in obj.claims():
                self.claimed_by[claim].discard(obj.key)
        for obj in added:
            if replaced is not None:
                replaced.setdefault(obj.key, objects.get(obj.key))
            objects[obj.key] = obj
            self.parts.setdefault(scope_of(obj), {})[obj.key] = obj
            for claim in obj.claims():
                self.claimed_by.setdefault(claim, set()).add(obj.key)
        if fields:
            self.state = dataclasses.replace(self.state, **fields)

    def way_back(self) -> Callable[[], State]:
        """The state as it is now, to be had again after later updates (an apply's rollback
        target): from here on `update` keeps what each key it changes held before (until
        the next `way_back`), and the function returned rebuilds the state from that, a
        copy paid for only when it is called."""
        state, replaced = self.state, {}
        self._replaced = replaced

        def state_before() -> State:
            objects = dict(state.objects)
            for key, obj in replaced.items():
                if obj is None:
                    objects.pop(key, None)
                else:
                    objects[key] = obj
            return dataclasses.replace(state, objects=objects)
        return state_before

    def objects_in(self, scopes: set[Scope]) -> dict[tuple, KernelObject]:
        found: dict[tuple, KernelObject] = {}
        for scope in scopes:
            found.update(self.parts.get(scope, {}))
        return found


def plan_in_scopes(desired: ScopedState, live: ScopedState, scopes: set[Scope]) -> Plan:
    """plan(desired, live) over the objects of `scopes` and the host's, when every other
    scope of `live` is as desired. The objects of other scopes that claim what a planned
    live object claims (its IP) are planned with them: the planner deletes such an
    address early rather than let the kernel take it along."""
    planned = set(scopes) | {HOST_SCOPE}
    wanted, have = desired.objects_in(planned), live.objects_in(planned)
    for obj in list(have.values()):
        for claim in obj.claims():
            for key in desired.claimed_by.get(claim, ()):
                if key not in wanted and key in live.state.objects:
                    wanted[key] = desired.state.objects[key]
                    have[key] = live.state.objects[key]
    restricted = plan(dataclasses.replace(desired.state, objects=wanted),
                      dataclasses.replace(live.state, objects=have))
    # the guard counts every container, planned or not; the others are as desired, so
    # only a plan that deletes a container's object can deserve it
    if not any(action.op == DELETE and action.obj.is_container for action in restricted.actions):
        return dataclasses.replace(restricted, guard=None)
    return dataclasses.replace(restricted, guard=mass_deletion(desired.state, live.state))
