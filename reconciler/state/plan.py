"""A plan: the ordered actions that turn the live state into the desired one, and what
every action's kind declares for ordering (its dependency rank, whether its deletion
belongs to the break, whether undoing can give it back) read where actions are sorted. `reconciler.state.planner`
makes plans; the kernel writer carries them out; `reconciler.render.plantext` shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.errors import GuardError
from reconciler.state.model import KernelObject

CREATE, UPDATE, DELETE = "create", "update", "delete"

# The order of kinds is theirs to declare (reconciler.state.model: rank, in_break,
# irreversible). Bridges and namespaces are independent; namespaces rank above bridges so
# that they are deleted first: the kernel then takes their veths off the bridge in one
# batch, and the bridge is deleted without ports (unenslaving 1000 ports one by one costs
# 0.3 s). An alias (a second name of a namespace) needs the namespace it names. The
# firewall comes before the sysctls so that forwarding is enabled behind it. Leftovers
# (debris of a killed write) are only ever deleted.

# the steps of a plan (see reconciler.state.planner)
CLEAR, MAKE, BREAK, REMAKE = range(4)


@dataclass(frozen=True)
class Action:
    op: str
    obj: KernelObject  # desired object for create/update, live object for delete
    reason: str
    changes: tuple[tuple[str, object, object], ...] = ()  # (field, live value, desired value)
    after_break: bool = False  # a create or update that needs what the break frees

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def key(self) -> tuple:
        return self.obj.key

    @property
    def source(self) -> str:
        return getattr(self.obj, "source", "")

    @property
    def step(self) -> int:
        if self.op == DELETE:
            return BREAK if self.obj.in_break else CLEAR
        return REMAKE if self.after_break else MAKE

    @property
    def irreversible(self) -> bool:
        """Whether undoing it cannot give back what it removed (the kind's `irreversible`)."""
        return self.op == DELETE and self.obj.irreversible

    def sort_key(self) -> tuple:
        rank = self.obj.rank
        return (self.step, -rank if self.op == DELETE else rank, self.key)


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    conflicts: tuple[str, ...] = ()  # objects in the way that are not ours
    guard: str | None = None  # why applying it needs --force (the planner's mass_deletion)

    def __bool__(self) -> bool:
        return bool(self.actions)

    def raise_if_unsafe(self, force: bool = False) -> None:
        """Refuse (GuardError) a plan the planner found unsafe, unless `force`."""
        if self.guard and not force:
            raise GuardError(f"refusing to apply: {self.guard}. If the spec is meant to say that, "
                             "run again with --force")

    def counts(self) -> dict[str, int]:
        result = {CREATE: 0, UPDATE: 0, DELETE: 0}
        for action in self.actions:
            result[action.op] += 1
        return result
