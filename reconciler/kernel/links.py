"""Links of the network drivers (bridges and veth pairs for the bridge driver, macvlans in
containers for the macvlan driver): the driver builds the requests (reconciler.drivers), this
writer sends them. Links are created unmarked from the host namespace (host links journaled as
pending until marked), marked, updated in place and deleted in the namespace they are in; an
attachment's peer, or a macvlan, is created directly inside its namespace, never moved.
"""

from __future__ import annotations

import contextlib
import errno
import functools

from reconciler import drivers
from reconciler.kernel.batch import KindWriter, Operation, apply_error, changed
from reconciler.state.model import HOST_NS
from reconciler.state.plan import CREATE, DELETE, UPDATE, Action


class LinkWriter(KindWriter):
    """The kinds of every network driver (bridge, veth, macvlan)."""

    def operations(self) -> dict[tuple[str, str], Operation]:
        table: dict[tuple[str, str], Operation] = {}
        for driver in drivers.DRIVERS.values():
            for kind in driver.kinds():
                table[CREATE, kind.kind] = functools.partial(self._create, driver)
                table[UPDATE, kind.kind] = functools.partial(self._update, driver)
                table[DELETE, kind.kind] = functools.partial(self._delete, driver)
        return table

    @contextlib.contextmanager
    def _pending(self, names: dict[str, str]):
        """Journal host interfaces (name -> kind) for the time between their creation and
        their mark, so that a crash in between leaves no interface nobody owns."""
        pending = {**self.session.state.pending_links(), **names}
        self.session.state.write_pending_links(pending)
        yield
        self.session.state.write_pending_links({n: k for n, k in pending.items() if n not in names})

    def _create(self, driver: drivers.NetworkDriver, actions: list[Action]) -> None:
        host_links = (driver.host_link(a.obj) for a in actions)
        with self._pending(dict(link for link in host_links if link is not None)):
            host = self.session.host
            masters = self._masters(driver, actions)
            self._send(host, [
                (a, request) for a in actions
                for request in driver.create_requests(
                    a.obj, host.next_seq, masters.get(driver.master_of(a.obj, _changed(a)), 0),
                    self._peer_fd(driver, a),
                )
            ])
            self._settings(driver, actions, creating=True)
            self._send_in_link_netns(driver, actions, lambda a, seq: driver.mark_requests(a.obj, seq))
            self._send_to_peers(driver, actions, creating=True)

    def _update(self, driver: drivers.NetworkDriver, actions: list[Action]) -> None:
        masters = self._masters(driver, actions)
        self._send_in_link_netns(driver, actions, lambda a, seq: driver.update_requests(
            a.obj, seq, _changed(a), masters.get(driver.master_of(a.obj, _changed(a)), 0)))
        self._settings(driver, actions, creating=False)
        self._send_to_peers(driver, actions, creating=False)

    def _delete(self, driver: drivers.NetworkDriver, actions: list[Action]) -> None:
        self._send_in_link_netns(driver, actions, lambda a, seq: driver.delete_requests(a.obj, seq),
                                 ignore=(errno.ENODEV,))

    def _send_in_link_netns(self, driver: drivers.NetworkDriver, actions: list[Action], build,
                            ignore: tuple[int, ...] = ()) -> None:
        """The requests `build(action, next_seq)` of each action, sent in the namespace its link is in."""
        per_netns: dict[str, list[Action]] = {}
        for action in actions:
            per_netns.setdefault(driver.link_netns(action.obj), []).append(action)
        for netns, group in per_netns.items():
            sock = self._socket(netns)
            self._send(sock, [(a, request) for a in group for request in build(a, sock.next_seq)], ignore=ignore)

    def _masters(self, driver: drivers.NetworkDriver, actions: list[Action]) -> dict[str, int]:
        """Indexes of the host interfaces the created or changed links go under or are made on."""
        wanted = [(a, name) for a in actions if (name := driver.master_of(a.obj, _changed(a))) is not None]
        if not wanted:
            return {}
        found = self._indexes(HOST_NS, {name for _, name in wanted}, actions)
        for action, name in wanted:
            if name not in found:  # gone since the plan checked it
                raise apply_error(action, errno.ENODEV, f"host interface {name} not found")
        return found

    def _peer_fd(self, driver: drivers.NetworkDriver, action: Action) -> int:
        netns = driver.peer_netns(action.obj)
        return self.session.netns_fd(netns) if netns is not None else -1

    def _settings(self, driver: drivers.NetworkDriver, actions: list[Action], creating: bool) -> None:
        per_netns: dict[str, list[tuple[Action, str, str]]] = {}
        for action in actions:
            for netns, path, value in driver.settings(action.obj, _changed(action), creating):
                per_netns.setdefault(netns, []).append((action, path, value))
        for netns, writes in per_netns.items():
            self._sysctl(netns, writes)

    def _send_to_peers(self, driver: drivers.NetworkDriver, actions: list[Action], creating: bool) -> None:
        per_netns: dict[str, list[Action]] = {}
        for action in actions:
            netns = driver.peer_netns(action.obj)
            if netns is not None:
                per_netns.setdefault(netns, []).append(action)
        for netns, group in per_netns.items():
            sock = self.session.socket(netns)
            self._send(sock, [(a, request) for a in group
                              for request in driver.peer_requests(a.obj, sock.next_seq, _changed(a), creating)])


def _changed(action: Action):
    return functools.partial(changed, action)
