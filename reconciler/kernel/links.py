"""Bridges and veth pairs: created marked (an alias naming network or container) and journaled
as pending until marked, updated in place, deleted; veth peers are created directly inside their
namespace, never moved.
"""

from __future__ import annotations

import contextlib
import errno

from reconciler.kernel import netlink as nl
from reconciler.kernel.batch import KindWriter, Operation, changed
from reconciler.kernel.observe import bridge_alias, veth_alias
from reconciler.state.model import HOST_NS, Bridge, Veth
from reconciler.state.plan import Action


class LinkWriter(KindWriter):
    """Bridges (kind bridge) and veth pairs (kind veth)."""

    def operations(self) -> dict[tuple[str, str], Operation]:
        return {
            ("create", "bridge"): self._create_bridge,
            ("update", "bridge"): self._update_bridge,
            ("delete", "bridge"): self._delete_bridge,
            ("create", "veth"): self._create_veth,
            ("update", "veth"): self._update_veth,
            ("delete", "veth"): self._delete_veth,
        }

    @contextlib.contextmanager
    def _pending(self, names: dict[str, str]):
        """Journal host interfaces (name -> kind) for the time between their creation and
        their mark, so that a crash in between leaves no interface nobody owns."""
        pending = {**self.session.state.pending_links(), **names}
        self.session.state.write_pending_links(pending)
        yield
        self.session.state.write_pending_links({n: k for n, k in pending.items() if n not in names})

    def _create_bridge(self, actions: list[Action]) -> None:
        with self._pending({a.obj.ifname: "bridge" for a in actions}):
            self._create_marked_bridges(actions)

    def _create_marked_bridges(self, actions: list[Action]) -> None:
        host = self.session.host
        pairs = []
        for action in actions:
            obj: Bridge = action.obj
            pairs.append((action, nl.new_bridge(host.next_seq(), obj.ifname, obj.mac, obj.mtu)))
            pairs.append((action, nl.set_link(host.next_seq(), ifname=obj.ifname, alias=bridge_alias(obj.network),
                                              up=obj.up)))
        self._send(host, pairs)

    def _update_bridge(self, actions: list[Action]) -> None:
        host = self.session.host
        pairs = []
        for action in actions:
            obj: Bridge = action.obj
            pairs.append((action, nl.set_link(
                host.next_seq(), ifname=obj.ifname,
                mtu=obj.mtu if changed(action, "mtu") else None,
                mac=obj.mac if changed(action, "mac") else None,
                up=obj.up if changed(action, "up") else None,
            )))
        self._send(host, pairs)

    def _delete_bridge(self, actions: list[Action]) -> None:
        host = self.session.host
        self._send(host, [(a, nl.del_link(host.next_seq(), ifname=a.obj.ifname)) for a in actions],
                   ignore=(errno.ENODEV,))

    def _create_veth(self, actions: list[Action]) -> None:
        with self._pending({a.obj.host_ifname: "veth" for a in actions}):
            self._create_marked_veths(actions)

    def _create_marked_veths(self, actions: list[Action]) -> None:
        host = self.session.host
        masters = self._indexes(HOST_NS, {a.obj.bridge for a in actions}, actions)
        pairs = []
        for action in actions:
            obj: Veth = action.obj
            pairs.append((action, nl.new_veth(
                host.next_seq(), obj.host_ifname, masters[obj.bridge], obj.mtu,
                obj.peer_ifname, obj.mac, obj.peer_mtu, self.session.netns_fd(obj.netns),
            )))
        self._send(host, pairs)
        if not all(a.obj.ipv6 for a in actions):
            self._sysctl(HOST_NS, [
                (a, f"/proc/sys/net/ipv6/conf/{a.obj.host_ifname}/disable_ipv6", "1")
                for a in actions if not a.obj.ipv6
            ])
        self._send(host, [
            (a, nl.set_link(host.next_seq(), ifname=a.obj.host_ifname,
                            alias=veth_alias(a.obj.container, a.obj.network), up=a.obj.host_up,
                            hairpin=True if a.obj.hairpin else None))
            for a in actions
        ])
        for netns, group in self._per_netns(actions).items():
            sock = self.session.socket(netns)
            self._send(sock, [(a, nl.set_link(sock.next_seq(), ifname=a.obj.peer_ifname, up=a.obj.peer_up))
                              for a in group])

    def _update_veth(self, actions: list[Action]) -> None:
        host = self.session.host
        masters = self._indexes(HOST_NS, {a.obj.bridge for a in actions if changed(a, "bridge")}, actions)
        host_pairs = []
        for action in actions:
            obj: Veth = action.obj
            if changed(action, "bridge", "mtu", "host_up"):
                host_pairs.append((action, nl.set_link(
                    host.next_seq(), ifname=obj.host_ifname,
                    master=masters[obj.bridge] if changed(action, "bridge") else None,
                    mtu=obj.mtu if changed(action, "mtu") else None,
                    up=obj.host_up if changed(action, "host_up") else None,
                )))
            if changed(action, "ipv6"):
                value = "0" if obj.ipv6 else "1"
                self._sysctl(HOST_NS, [(action, f"/proc/sys/net/ipv6/conf/{obj.host_ifname}/disable_ipv6", value)])
                self._sysctl(obj.netns, [(action, f"/proc/sys/net/ipv6/conf/{obj.peer_ifname}/disable_ipv6", value)])
        self._send(host, host_pairs)
        # after any change of bridge: the flag belongs to the port on the new bridge
        self._send(host, [
            (a, nl.set_link(host.next_seq(), ifname=a.obj.host_ifname, hairpin=a.obj.hairpin))
            for a in actions if changed(a, "hairpin", "bridge")
        ])
        for netns, group in self._per_netns(actions).items():
            sock = self.session.socket(netns)
            pairs = [
                (a, nl.set_link(
                    sock.next_seq(), ifname=a.obj.peer_ifname,
                    mtu=a.obj.peer_mtu if changed(a, "peer_mtu") else None,
                    mac=a.obj.mac if changed(a, "mac") else None,
                    up=a.obj.peer_up if changed(a, "peer_up") else None,
                ))
                for a in group if changed(a, "peer_mtu", "mac", "peer_up")
            ]
            self._send(sock, pairs)

    def _delete_veth(self, actions: list[Action]) -> None:
        host = self.session.host
        self._send(host, [(a, nl.del_link(host.next_seq(), ifname=a.obj.host_ifname)) for a in actions],
                   ignore=(errno.ENODEV,))
