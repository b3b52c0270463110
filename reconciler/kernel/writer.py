"""The one writer: carries out a Plan's actions on the kernel.

Consecutive actions of the same operation and kind are carried out together, by the writer
of their concern (`namespaces`, `links`, `addresses`, `entries`, `files`, `settings`), each declaring
the (op, kind) pairs it handles; netlink requests go as batches on the sockets the session
keeps open. Failures are translated into ApplyError naming the action and its source. The
writer keeps the deletions it carried out that no undoing can give back, for the rollback
message.

Container files are written on a thread of their own while the netlink batches that come
before them in the plan run (links, addresses, routes): those wait on the kernel and the
files on the filesystem (each new file or directory allocates an inode), so on two CPUs
they overlap. That one thread writes them in turn: the file writer's own threads would
fight the thread sending the batches for the interpreter lock (an strace of an apply of
1000 containers counted 157,000 futex calls with them, 2,500 without). The files still
wait for everything they depend on: the namespaces (recorded first, which makes the
directories netreconcile's to remove again on a rollback) and every deletion. The apply
never returns or raises while the thread still writes.
"""

from __future__ import annotations

import itertools
import threading
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
from reconciler.state.plan import CREATE, DELETE, UPDATE, Action, Plan

KIND_WRITERS = (NamespaceWriter, LinkWriter, AddressWriter, EntryWriter, FileWriter, FirewallWriter, SysctlWriter)
AHEAD_OPERATIONS = frozenset({(CREATE, "file"), (UPDATE, "file")})  # may run beside the batches before them
# what those wait for: the kinds that make, name or empty container directories (and any deletion)
AHEAD_WAITS_FOR = frozenset({"netns", "alias", "file", "leftover"})


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
        # AHEAD_OPERATIONS as carried out beside the netlink batches: the files in turn
        in_turn = FileWriter(session, threads=1).operations()
        self.beside_operations = {key: in_turn[key] for key in AHEAD_OPERATIONS}
        self.irreversible_done: list[Action] = []  # deletions undoing cannot give back (kinds whose `irreversible` is set)

    def apply(self, plan: Plan) -> int:
        self.irreversible_done = []
        cut = self.fail_after is not None and self.fail_after < len(plan.actions)
        actions = plan.actions[:self.fail_after] if cut else plan.actions
        groups = [(op, kind, list(group))
                  for (op, kind), group in itertools.groupby(actions, key=lambda a: (a.op, a.kind))]
        ahead: _Ahead | None = None
        done = 0
        try:
            for number, (op, kind, group) in enumerate(groups):
                if ahead is None:
                    ahead = self._start_ahead(groups, number)
                if ahead is not None and ahead.number == number:
                    ahead.finish()
                else:
                    self._carry_out(op, kind, group)
                done += len(group)
                self.on_progress(len(group))
        finally:
            if ahead is not None:
                ahead.wait()  # never left writing behind a failure: the rollback observes after
        if cut:
            raise ApplyError(f"injected failure after action {self.fail_after} of {len(plan.actions)} "
                             f"(NETRECONCILE_FAIL_AFTER={self.fail_after})")
        return done

    def _start_ahead(self, groups: list[tuple[str, str, list[Action]]], number: int) -> "_Ahead | None":
        """The first group of AHEAD_OPERATIONS from group `number` on, started on a thread
        when nothing between is one it waits for; None when there is none to start."""
        for later, (op, kind, group) in enumerate(groups[number:], start=number):
            if (op, kind) in AHEAD_OPERATIONS:
                return _Ahead(later, lambda: self.beside_operations[op, kind](group)) if later > number else None
            if op == DELETE or kind in AHEAD_WAITS_FOR:
                return None
        return None

    def _carry_out(self, op: str, kind: str, actions: list[Action]) -> None:
        # counted before they run: a batch that fails part-way may have done some of them
        self.irreversible_done += [a for a in actions if a.irreversible]
        self.operations[op, kind](actions)


class _Ahead:
    """One group of actions carried out on a thread from now on; `finish` waits for it
    where the plan has it and raises its failure."""

    def __init__(self, number: int, carry_out: Callable[[], None]):
        self.number = number
        self.failure: BaseException | None = None

        def run() -> None:
            try:
                carry_out()
            except BaseException as error:  # noqa: BLE001 - raised again in the applying thread
                self.failure = error

        self.thread = threading.Thread(target=run, name="netreconcile-files-ahead")
        self.thread.start()

    def wait(self) -> None:
        self.thread.join()

    def finish(self) -> None:
        self.wait()
        if self.failure is not None:
            raise self.failure
