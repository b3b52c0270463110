"""Interface addresses and routes, sent as netlink batches per namespace."""

from __future__ import annotations

import errno

from reconciler.kernel import netlink as nl
from reconciler.kernel.batch import KindWriter, Operation
from reconciler.state.plan import Action


class AddressWriter(KindWriter):
    """Addresses (kind address) and routes (kind route)."""

    def operations(self) -> dict[tuple[str, str], Operation]:
        return {
            ("create", "address"): self._create_address,
            ("delete", "address"): self._delete_address,
            ("create", "route"): self._create_route,
            ("update", "route"): self._update_route,
            ("delete", "route"): self._delete_route,
        }

    def _create_address(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            sock = self._socket(netns)
            indexes = self._indexes(netns, {a.obj.ifname for a in group}, group)
            self._send(sock, [(a, nl.new_addr(sock.next_seq(), indexes[a.obj.ifname], a.obj.cidr)) for a in group],
                       ignore=(errno.EEXIST,))

    def _delete_address(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            sock = self._socket(netns)
            indexes = sock.link_indexes(sorted({a.obj.ifname for a in group}))
            self._send(sock, [
                (a, nl.del_addr(sock.next_seq(), indexes[a.obj.ifname], a.obj.cidr))
                for a in group if a.obj.ifname in indexes
            ], ignore=(errno.EADDRNOTAVAIL,))

    def _create_route(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            sock = self._socket(netns)
            indexes = self._indexes(netns, {a.obj.ifname for a in group}, group)
            self._send(sock, [
                (a, nl.replace_route(sock.next_seq(), a.obj.dst, a.obj.gateway, indexes[a.obj.ifname]))
                for a in group
            ])

    _update_route = _create_route

    def _delete_route(self, actions: list[Action]) -> None:
        for netns, group in self._per_netns(actions).items():
            sock = self._socket(netns)
            self._send(sock, [
                (a, nl.del_route(sock.next_seq(), a.obj.dst, nl.FAMILY_OF_VERSION[a.obj.family])) for a in group
            ], ignore=(errno.ESRCH,))
