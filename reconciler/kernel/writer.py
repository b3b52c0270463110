"""The one writer: carries out a Plan's actions on the kernel.

Consecutive actions of the same operation and kind are carried out together, by the writer
of their concern (`namespaces`, `links`, `addresses`, `entries`, `files`, `settings`), each declaring
the (op, kind) pairs it handles; netlink requests go as batches on the sockets the session
keeps open. Failures are translated into ApplyError naming the action and its source. The
writer keeps the deletions it carried out that no undoing can give back, for the rollback
message.
"""

from __future__ import annotations

import itertools
from typing import Callable

from reconciler.errors import ApplyError
from reconciler.kernel.addresses import AddressWriter
from reconciler.kernel.batch import Operation
from reconciler.kernel.entries import EntryWriter
from reconciler.kernel.files import FileWriter
from reconciler.kernel.links import LinkWriter
from reconciler.kernel.namespaces import NamespaceWriter
from reconciler.kernel.session import KernelSession
from reconciler.kernel.settings import FirewallWriter, SysctlWriter
from reconciler.state.plan import Action, Plan

KIND_WRITERS = (NamespaceWriter, LinkWriter, AddressWriter, EntryWriter, FileWriter, FirewallWriter, SysctlWriter)


class KernelWriter:
    """Carries out plans on the kernel of `session`, batch by batch, through the kind writers."""

    def __init__(self, session: KernelSession, on_progress: Callable[[int], None] | None = None,
                 fail_after: int | None = None):
        self.session = session
        self.on_progress = on_progress or (lambda count: None)
        self.fail_after = fail_after  # fault injection: fail right after this many actions
        self.operations: dict[tuple[str, str], Operation] = {}
        for kind_writer in KIND_WRITERS:
            self.operations.update(kind_writer(session).operations())
        self.irreversible_done: list[Action] = []  # deletions undoing cannot give back (kinds whose `irreversible` is set)

    def apply(self, plan: Plan) -> int:
        done = 0
        self.irreversible_done = []
        for (op, kind), group in itertools.groupby(plan.actions, key=lambda a: (a.op, a.kind)):
            actions = list(group)
            if self.fail_after is not None and done + len(actions) > self.fail_after:
                actions = actions[:self.fail_after - done]
                if actions:
                    self._carry_out(op, kind, actions)
                raise ApplyError(f"injected failure after action {self.fail_after} of {len(plan.actions)} "
                                 f"(NETRECONCILE_FAIL_AFTER={self.fail_after})")
            self._carry_out(op, kind, actions)
            done += len(actions)
            self.on_progress(len(actions))
        return done

    def _carry_out(self, op: str, kind: str, actions: list[Action]) -> None:
        # counted before they run: a batch that fails part-way may have done some of them
        self.irreversible_done += [a for a in actions if a.irreversible]
        self.operations[op, kind](actions)
