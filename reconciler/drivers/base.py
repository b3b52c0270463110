"""What a network driver is: the one protocol every driver module implements.

A driver owns everything about one kind of network that is not the same for every kind:
- its spec options and their checks (`read_options`, `check_unique`); for the bridge
  driver `bridge:`, for the macvlan driver `parent:` and `macvlan_mode:`. `mtu`, `icc`,
  `masquerade` and `internal` are read by the network section for every driver, and
  used by the firewall for the drivers whose traffic goes `through_host`;
- the kernel objects it wants for a network and for one container's attachment to it
  (`network_objects`, `attachment_objects`), and what the live host must already have for
  them (`live_problems`: a macvlan's parent). The container side that every driver shares
  (the interface's address, the default route through the network's gateway) stays generic,
  in reconciler.state.desired;
- how it recognises its own live objects: the marks (interface aliases) it writes and
  parses, and the host link kinds it journals as pending between creation and mark
  (`parse_mark`, `unmarked`, `link_kinds`, `host_link`, `observed_network`,
  `observed_attachment`; the routes through some of its host links, `routed_link_kinds`,
  are read as its own too); an attachment that is one link inside the container
  (`container_link_kind`: a macvlan) is read there (`observed_container_link`), and is
  ours by being in an owned namespace, marked or not;
- the netlink requests that create, update and delete its objects: pure functions that
  return the codec's bytes (`create_requests` ...); the one writer sends them
  (reconciler.kernel.links): creates on the host namespace's socket, marks, updates and
  deletions in the namespace the object's link is in (`link_netns`).

Pure: a driver does no I/O; the kernel handles a request needs (an index, a namespace
descriptor, sequence numbers) are passed in.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any, Callable, Mapping, Protocol

from reconciler.errors import Problem
from reconciler.spec.document import PathKey, SectionReader
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec
from reconciler.state.model import KernelObject, State

NextSeq = Callable[[], int]  # the sequence number of the next request on a socket
Changed = Callable[..., bool]  # whether one of the named fields changes (every field on create)


class NetworkDriver(Protocol):
    """One network driver; `name` is its `driver:` value in the spec."""

    name: str
    # the kinds of host-namespace link it creates, kept in the pending-links journal between
    # creation and mark; of these, the one that is an attachment's ("" for none: the others
    # are the network's)
    link_kinds: tuple[str, ...]
    attachment_link_kind: str
    # the kinds of its host links whose routes (in the main table, not the kernel's) are its own
    routed_link_kinds: tuple[str, ...]
    # the kind of link an attachment is inside the container ("" when it is a host link's peer)
    container_link_kind: str
    # the network keys it reads (read_options): no other driver's network may have them
    options: tuple[str, ...]
    # whether its containers' traffic goes through the host's IP stack: then the firewall
    # filters and masquerades it, publishes ports to it, and the host forwards for it
    through_host: bool
    # whether a network written without `subnet:` gets one chosen at plan time (a LAN's cannot
    # be guessed)
    chooses_subnet: bool
    # the MTU of a network written without `mtu:`
    default_mtu: int
    # whether its networks are internal whatever the spec says: no gateway on the host, so
    # nothing leaves them and no container gets a default route through them
    always_internal: bool

    # --- the spec -------------------------------------------------------------------------------
    def read_options(self, reader: SectionReader, path: PathKey) -> dict[str, Any]:
        """Its options of the network at `path`, checked (problems go to reader.doc), as
        NetworkSpec fields."""
        ...

    def check_unique(self, reader: SectionReader, path: PathKey, network: NetworkSpec,
                     earlier: Mapping[str, NetworkSpec]) -> None:
        """Report a host-wide name of `network` that an earlier network (by that name) has,
        and what else the built `network` cannot have (an address two of its uses claim)."""
        ...

    def host_name(self, network: NetworkSpec) -> str | None:
        """The host-wide name `check_unique` compares (the bridge's interface name); None: none."""
        ...

    def max_attachments(self, network: NetworkSpec) -> tuple[int, str] | None:
        """How many containers of one node the kernel lets the network hold (each node has
        its own bridge of it), and why (validate refuses more at the network's line, rather
        than an apply finding out at the next one); None: no limit of the driver's own."""
        ...

    def used_interfaces(self, network: NetworkSpec) -> dict[str, str]:
        """The host interfaces `network` uses but netreconcile never creates or deletes (an
        uplink, a macvlan parent), each with what uses it: `status` lists them as used, not owned."""
        ...

    # --- the desired state ----------------------------------------------------------------------
    def network_objects(self, network: NetworkSpec) -> list[KernelObject]:
        """The host-side objects of a network."""
        ...

    def attachment_objects(self, container: ContainerSpec, network: NetworkSpec, attachment: Attachment,
                           mac: str, ifname: str, hairpin: bool, netns_ipv6: bool = False,
                           address: IPv4Address | None = None) -> list[KernelObject]:
        """The objects that give `container` the interface `ifname` with `address` on
        `network` (`netns_ipv6`: whether the container's namespace makes interfaces with IPv6 on)."""
        ...

    def live_problems(self, network: NetworkSpec, desired: State, live: State) -> list[Problem]:
        """What the live host lacks for `network` (found before anything is changed), each
        at the spec line that asks for it."""
        ...

    def kinds(self) -> tuple[type[KernelObject], ...]:
        """The kinds of kernel object it owns (the writer asks it for their requests)."""
        ...

    # --- the live state -------------------------------------------------------------------------
    def parse_mark(self, alias: str) -> tuple[str, ...] | None:
        """(link kind, identity...) if `alias` is one of its marks, else None."""
        ...

    def unmarked(self, link_kind: str) -> tuple[str, ...]:
        """The mark of a journaled link of `link_kind` that a run stopped before marking:
        ours, with an identity that makes the planner replace it."""
        ...

    def observed_network(self, link: Any, identity: tuple[str, ...], lower: str) -> KernelObject:
        """The live object of a marked host link of the network kind (`lower`: the name of
        the host link its IFLA_LINK leads to, or for a link without one its master's,
        MISSING for none)."""
        ...

    def observed_attachment(self, link: Any, identity: tuple[str, ...], netns: str, peer: Any,
                            master: str) -> KernelObject:
        """The live object of a marked host link of the attachment kind, with its peer if found."""
        ...

    def observed_container_link(self, link: Any, identity: tuple[str, ...], netns: str, parent: str) -> KernelObject:
        """The live object of a link of `container_link_kind` in owned namespace `netns`
        (`identity` from its mark, or `unmarked`'s), on host link `parent` (MISSING if not found)."""
        ...

    # --- requests: pure, the writer sends them in this order -----------------------------------
    def create_requests(self, obj: KernelObject, next_seq: NextSeq, master: int, netns_fd: int) -> list[bytes]:
        """Host-namespace requests that create `obj` unmarked (`master`: index of `master_of`,
        `netns_fd`: descriptor of `peer_netns`)."""
        ...

    def mark_requests(self, obj: KernelObject, next_seq: NextSeq) -> list[bytes]:
        """Requests in `link_netns` that mark a created `obj` as netreconcile's, and bring it up."""
        ...

    def update_requests(self, obj: KernelObject, next_seq: NextSeq, changed: Changed, master: int) -> list[bytes]:
        """Requests in `link_netns` that change the `changed` fields of `obj` in place."""
        ...

    def peer_requests(self, obj: KernelObject, next_seq: NextSeq, changed: Changed, creating: bool) -> list[bytes]:
        """Requests in `peer_netns` (after create or update) for the container side of `obj`."""
        ...

    def delete_requests(self, obj: KernelObject, next_seq: NextSeq) -> list[bytes]:
        """Requests in `link_netns` that delete `obj` (and what the kernel removes with it)."""
        ...

    def settings(self, obj: KernelObject, changed: Changed, creating: bool) -> list[tuple[str, str, str]]:
        """(namespace, /proc/sys path, value) writes after create (before the mark) or update."""
        ...

    def host_link(self, obj: KernelObject) -> tuple[str, str] | None:
        """(interface name, link kind) of the host link `obj` creates (journaled while unmarked);
        None for an object that creates no host link (a macvlan, made in its container; an
        uplink, an interface it only uses)."""
        ...

    def link_netns(self, obj: KernelObject) -> str:
        """The namespace `obj`'s link is in: where it is marked, changed and deleted."""
        ...

    def master_of(self, obj: KernelObject, changed: Changed) -> str | None:
        """The host interface `obj` is put under (a bridge) or made on (a macvlan's parent)
        when `changed` (create_requests' and update_requests' `master`: its index)."""
        ...

    def peer_netns(self, obj: KernelObject) -> str | None:
        """The container namespace `obj` reaches into or is made in, if any."""
        ...
