"""The static forwarding (FDB) and neighbour entries of the overlay's VXLAN devices, sent
as netlink batches on the host namespace's socket (read back by reconciler.kernel.observe_host)."""

from __future__ import annotations

import errno

from reconciler.kernel import netlink as nl
from reconciler.kernel.batch import KindWriter, Operation
from reconciler.state.model import HOST_NS
from reconciler.state.plan import Action


class EntryWriter(KindWriter):
    """FDB entries (kind fdb) and neighbour entries (kind neigh) of host devices."""

    def operations(self) -> dict[tuple[str, str], Operation]:
        return {
            ("create", "fdb"): self._create_fdb,
            ("delete", "fdb"): self._delete_fdb,
            ("create", "neigh"): self._create_neigh,
            ("update", "neigh"): self._create_neigh,  # a new MAC replaces the entry
            ("delete", "neigh"): self._delete_neigh,
        }

    def _create_fdb(self, actions: list[Action]) -> None:
        sock = self._socket(HOST_NS)
        indexes = self._indexes(HOST_NS, {a.obj.device for a in actions}, actions)
        self._send(sock, [(a, nl.new_fdb(sock.next_seq(), indexes[a.obj.device], a.obj.mac, a.obj.remote))
                          for a in actions], ignore=(errno.EEXIST,))

    def _delete_fdb(self, actions: list[Action]) -> None:
        sock = self._socket(HOST_NS)
        indexes = sock.link_indexes(sorted({a.obj.device for a in actions}))
        self._send(sock, [(a, nl.del_fdb(sock.next_seq(), indexes[a.obj.device], a.obj.mac, a.obj.remote))
                          for a in actions if a.obj.device in indexes], ignore=(errno.ENOENT,))

    def _create_neigh(self, actions: list[Action]) -> None:
        sock = self._socket(HOST_NS)
        indexes = self._indexes(HOST_NS, {a.obj.device for a in actions}, actions)
        self._send(sock, [(a, nl.new_neigh(sock.next_seq(), indexes[a.obj.device], a.obj.address, a.obj.mac))
                          for a in actions])

    def _delete_neigh(self, actions: list[Action]) -> None:
        sock = self._socket(HOST_NS)
        indexes = sock.link_indexes(sorted({a.obj.device for a in actions}))
        self._send(sock, [(a, nl.del_neigh(sock.next_seq(), indexes[a.obj.device], a.obj.address))
                          for a in actions if a.obj.device in indexes], ignore=(errno.ENOENT,))

