"""Runs the probes of reconciler.state.probes inside the namespaces; changes nothing.

Read-only: it opens sockets and reads files; its only traffic is ICMP echo, one DNS
query per resolver-using container and TCP handshakes, all between the host namespace
and the containers'. A socket keeps the namespace it was made in, so a bounded pool of
threads enters each namespace once (setns, undone) to make its sockets and read its
default route; then one loop on this thread sends every ping, query and connection at
once and waits for the answers until one deadline. A probe that should go unanswered
therefore costs the deadline once for all containers, not once per container.
"""

from __future__ import annotations

import errno
import itertools
import os
import resource
import selectors
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address

from reconciler.errors import KernelError, PrerequisiteError
from reconciler.kernel import netlink as nl
from reconciler.kernel.nlsocket import NetlinkSocket, entered
from reconciler.kernel.container_files import read_container_file
from reconciler.kernel.session import netns_path
from reconciler.state.probes import DnsProbe, GatewayProbe, NameProbe, PortProbe, Probe, ReachProbe

OK, FAILED, BLOCKED, NO_LISTENER = "ok", "failed", "blocked as expected", "no listener"
WORKERS = 8
RESEND_EVERY = 0.25  # a lost echo (a neighbour entry still resolving) is sent again
INTERNAL_RESOLVER = ("127.0.0.11", 53)
ICMP_ECHO, ICMP_ECHO_REPLY = 8, 0


@dataclass(frozen=True)
class ProbeResult:
    container: str
    probe: str
    result: str
    detail: str


def run_probes(probes: list[Probe], host_netns: str | None, etc_netns: str, timeout: float = 1.0,
               workers: int = WORKERS) -> list[ProbeResult]:
    """Each probe's result, in the order of `probes`."""
    by_netns: dict[str, list[Probe]] = {}
    for probe in probes:
        if not isinstance(probe, NameProbe):
            by_netns.setdefault(_netns_of(probe, host_netns), []).append(probe)
    _allow_descriptors(len(by_netns) + 2 * sum(isinstance(p, PortProbe) for p in probes))
    pending: dict[Probe, _Pending] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for made in pool.map(_prepare, by_netns.items()):
            pending.update(made)
    try:
        _exchange(list(pending.values()), timeout)
        lookups: dict[str, dict[str, IPv4Address] | OSError] = {}
        names: dict[str, list[ProbeResult]] = {}  # per container, its names' results
        results: list[ProbeResult | str] = []  # a container's name: where its names' summary goes
        for probe in probes:
            if isinstance(probe, NameProbe):
                path = os.path.join(etc_netns, probe.container, "hosts")
                if path not in lookups:
                    lookups[path] = _hosts_lookup(path)
                if probe.container not in names:
                    names[probe.container] = []
                    results.append(probe.container)
                names[probe.container].append(_name_result(probe, path, lookups[path]))
            else:
                results.append(pending[probe].result())
        return [_names_summary(item, names[item]) if isinstance(item, str) else item for item in results]
    finally:
        for item in pending.values():
            item.close()


def _allow_descriptors(sockets: int) -> None:
    """Every socket stays open until the deadline: raise this process's soft limit of
    open files (often 1024) toward its hard one when 1000 containers need more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = sockets + 256  # and what the process has open already
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard),
                                                    hard))


def _netns_of(probe: Probe, host_netns: str | None) -> str:
    """Port probes connect from the host namespace ("" for the current one)."""
    return (host_netns or "") if isinstance(probe, PortProbe) else probe.container


def _prepare(item: tuple[str, list[Probe]]) -> dict[Probe, _Pending]:
    netns, probes = item
    try:
        fd = os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW) if netns else None
    except OSError as error:
        return {probe: _Broken(probe, f"namespace {netns}: {error.strerror}") for probe in probes}
    made: dict[Probe, _Pending] = {}
    try:
        if fd is None:
            _make(probes, made)
        else:
            with entered(fd):
                _make(probes, made)
    except (OSError, KernelError, PrerequisiteError) as error:  # e.g. out of file descriptors
        for item in made.values():
            item.close()
        why = getattr(error, "strerror", None) or str(error)
        return {probe: _Broken(probe, f"cannot probe from {netns or 'the host namespace'}: {why}")
                for probe in probes}
    finally:
        if fd is not None:
            os.close(fd)
    return made


def _make(probes: list[Probe], made: dict[Probe, _Pending]) -> None:
    """The sockets of one namespace's probes, made while inside it, into `made`."""
    icmp = None
    for probe in probes:
        if isinstance(probe, PortProbe):
            made[probe] = _Connect(probe)
        elif isinstance(probe, DnsProbe):
            made[probe] = _Query(probe)
        else:
            if icmp is None:
                icmp = _IcmpSocket()
            if isinstance(probe, GatewayProbe):
                made[probe] = _Ping(probe, icmp, probe.gateway, route=_default_gateway())
            else:
                made[probe] = _Ping(probe, icmp, probe.address)


def _default_gateway() -> str | None:
    """The gateway of the main table's IPv4 default route here ("" on-link, None: no route)."""
    sock = NetlinkSocket()
    try:
        for kind, payload in sock.dump(nl.dump_routes):
            route = nl.decode_route(payload) if kind == nl.RTM_NEWROUTE else None
            if route is not None and route.dst == "default" and route.table == nl.RT_TABLE_MAIN:
                return route.gateway or ""
        return None
    finally:
        sock.close()


class _Pending:
    """A probe under way: its sockets, what it has seen so far, its result at the end."""

    def start(self, selector: selectors.BaseSelector) -> None:
        pass

    def resend(self) -> None:
        pass

    def done(self) -> bool:
        return True

    def result(self) -> ProbeResult:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Broken(_Pending):
    def __init__(self, probe: Probe, why: str):
        self.probe, self.why = probe, why

    def result(self) -> ProbeResult:
        return ProbeResult(self.probe.container, self.probe.label, FAILED, self.why)


class _IcmpSocket:
    """One raw ICMP socket per namespace (ping sockets depend on the namespace's
    ping_group_range, raw ones only on CAP_NET_RAW); replies go to the ping with their id."""

    _ids = itertools.count(1)  # next() on it is atomic: the pool's threads share it

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                  socket.IPPROTO_ICMP)
        self.pings: dict[int, _Ping] = {}
        self.registered = False

    def add(self, ping: _Ping) -> int:
        ident = next(_IcmpSocket._ids) & 0xFFFF
        self.pings[ident] = ping
        return ident

    def send(self, ident: int, address: IPv4Address, sequence: int) -> None:
        header = struct.pack("!BBHHH", ICMP_ECHO, 0, 0, ident, sequence)
        payload = b"netreconcile check"
        packet = struct.pack("!BBHHH", ICMP_ECHO, 0, _checksum(header + payload), ident, sequence) + payload
        try:
            self.sock.sendto(packet, (str(address), 0))
        except OSError as error:
            self.pings[ident].error = error

    def readable(self) -> None:
        while True:
            try:
                packet, (source, _) = self.sock.recvfrom(2048)
            except BlockingIOError:
                return
            offset = (packet[0] & 0x0F) * 4
            if len(packet) < offset + 8:
                continue
            kind, _, _, ident, _ = struct.unpack_from("!BBHHH", packet, offset)
            ping = self.pings.get(ident)
            if kind == ICMP_ECHO_REPLY and ping is not None and source == str(ping.address):
                ping.answered = True

    def close(self) -> None:
        self.sock.close()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _Ping(_Pending):
    def __init__(self, probe: GatewayProbe | ReachProbe, icmp: _IcmpSocket, address: IPv4Address,
                 route: str | None = ""):
        self.probe, self.icmp, self.address, self.route = probe, icmp, address, route
        self.ident = icmp.add(self)
        self.sequence = 0
        self.answered = False
        self.error: OSError | None = None

    def start(self, selector: selectors.BaseSelector) -> None:
        if not self.icmp.registered:
            selector.register(self.icmp.sock, selectors.EVENT_READ, self.icmp.readable)
            self.icmp.registered = True
        self.resend()

    def resend(self) -> None:
        if not self.done():
            self.sequence += 1
            self.icmp.send(self.ident, self.address, self.sequence)

    def done(self) -> bool:
        return self.answered or self.error is not None or self._route_wrong() is not None

    def _route_wrong(self) -> str | None:
        if not isinstance(self.probe, GatewayProbe):
            return None
        if self.route is None:
            return f"no default route (network {self.probe.network})"
        if self.route != str(self.probe.gateway):
            return f"the default route goes via {self.route or 'no gateway'}, not {self.probe.gateway}"
        return None

    def result(self) -> ProbeResult:
        probe = self.probe
        wrong = self._route_wrong()
        if wrong is not None:
            return ProbeResult(probe.container, probe.label, FAILED, wrong)
        should_answer = probe.should_answer if isinstance(probe, ReachProbe) else True
        why = f" ({probe.why})" if isinstance(probe, ReachProbe) else ""
        if self.answered:
            outcome = OK if should_answer else FAILED
            return ProbeResult(probe.container, probe.label, outcome, f"{self.address} answers a ping{why}")
        silent = f"{self.address}: {self.error.strerror}" if self.error else f"{self.address} does not answer a ping"
        return ProbeResult(probe.container, probe.label, FAILED if should_answer else BLOCKED, silent + why)

    def close(self) -> None:
        self.icmp.close()


class _Connect(_Pending):
    """A TCP connection to the published port, and one straight to the container's port:
    refused on both, nothing listens; refused or unanswered on the first only, the path is broken."""

    def __init__(self, probe: PortProbe):
        self.probe = probe
        self.outcomes: dict[str, int | None] = {}  # "published" / "direct" -> errno (0: connected), None: waiting
        self.socks = {
            "published": (socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC),
                          (str(probe.host_address), probe.host_port)),
            "direct": (socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC),
                       (str(probe.address), probe.port)),
        }

    def start(self, selector: selectors.BaseSelector) -> None:
        for which, (sock, target) in self.socks.items():
            code = sock.connect_ex(target)
            if code == errno.EINPROGRESS:
                self.outcomes[which] = None
                selector.register(sock, selectors.EVENT_WRITE, lambda which=which, sock=sock: self._finished(
                    which, sock, selector))
            else:
                self.outcomes[which] = code

    def _finished(self, which: str, sock: socket.socket, selector: selectors.BaseSelector) -> None:
        self.outcomes[which] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        selector.unregister(sock)

    def done(self) -> bool:
        return None not in self.outcomes.values()

    def result(self) -> ProbeResult:
        probe = self.probe
        published, direct = self.outcomes.get("published"), self.outcomes.get("direct")
        if published == 0:
            return ProbeResult(probe.container, probe.label, OK, "connected")
        if published == errno.ECONNREFUSED and direct == errno.ECONNREFUSED:
            return ProbeResult(probe.container, probe.label, NO_LISTENER,
                               f"reachable, but nothing listens on {probe.address}:{probe.port}")
        seen = "no answer" if published is None else os.strerror(published)
        if direct == 0:
            seen += f", although {probe.address}:{probe.port} accepts a connection from the host"
        return ProbeResult(probe.container, probe.label, FAILED, seen)

    def close(self) -> None:
        for sock, _ in self.socks.values():
            sock.close()


class _Query(_Pending):
    """An A query to the embedded resolver at 127.0.0.11, from inside the namespace."""

    def __init__(self, probe: DnsProbe):
        import dns.message

        self.probe = probe
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        self.query = dns.message.make_query(probe.name, "A")
        self.answer: list[str] | None = None
        self.error: OSError | None = None

    def start(self, selector: selectors.BaseSelector) -> None:
        selector.register(self.sock, selectors.EVENT_READ, self._readable)
        self.resend()

    def resend(self) -> None:
        if not self.done():
            try:
                self.sock.sendto(self.query.to_wire(), INTERNAL_RESOLVER)
            except OSError as error:
                self.error = error

    def _readable(self) -> None:
        import dns.exception
        import dns.message
        import dns.rdatatype

        try:
            reply = dns.message.from_wire(self.sock.recv(4096))
        except BlockingIOError:
            return
        except ConnectionRefusedError as error:  # ICMP port unreachable: nothing serves 127.0.0.11
            self.error = error
            return
        except dns.exception.DNSException:
            return
        if reply.id == self.query.id:
            self.answer = [item.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for item in rrset]

    def done(self) -> bool:
        return self.answer is not None or self.error is not None

    def result(self) -> ProbeResult:
        probe = self.probe
        expected = ", ".join(map(str, probe.expected))
        if self.answer is None:
            why = self.error.strerror if self.error else "no answer"
            return ProbeResult(probe.container, probe.label, FAILED, f"{INTERNAL_RESOLVER[0]}: {why}")
        if set(self.answer) & {str(address) for address in probe.expected}:
            return ProbeResult(probe.container, probe.label, OK, f"{', '.join(self.answer)} (from {INTERNAL_RESOLVER[0]})")
        return ProbeResult(probe.container, probe.label, FAILED,
                           f"{INTERNAL_RESOLVER[0]} answers {', '.join(self.answer) or 'nothing'}, expected {expected}")

    def close(self) -> None:
        self.sock.close()


def _exchange(pending: list[_Pending], timeout: float) -> None:
    """Start every probe, then serve their sockets until all are done or the deadline passes."""
    with selectors.DefaultSelector() as selector:
        for item in pending:
            item.start(selector)
        deadline = time.monotonic() + timeout
        resend_at = time.monotonic() + RESEND_EVERY
        waiting = [item for item in pending if not item.done()]
        while waiting:
            now = time.monotonic()
            if now >= deadline:
                return
            if now >= resend_at:
                for item in waiting:
                    item.resend()
                resend_at = now + RESEND_EVERY
            for key, _ in selector.select(min(deadline, resend_at) - now):
                key.data()
            waiting = [item for item in waiting if not item.done()]


def _hosts_lookup(path: str) -> dict[str, IPv4Address] | OSError:
    """What glibc's files source answers for an IPv4 lookup from one hosts file: per name
    (lowercased), the address of the first line with an IPv4 address naming it."""
    text = read_container_file(path)  # never through a link put where the file or its directory is
    if text is None:
        return OSError(errno.ENOENT, "absent, or a symbolic link or not a regular file")
    found: dict[str, IPv4Address] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            address = IPv4Address(fields[0])
        except ValueError:
            continue
        for name in fields[1:]:
            found.setdefault(name.lower(), address)
    return found


def _name_result(probe: NameProbe, path: str, lookup: dict[str, IPv4Address] | OSError) -> ProbeResult:
    expected = ", ".join(map(str, probe.expected))
    if isinstance(lookup, OSError):
        return ProbeResult(probe.container, probe.label, FAILED, f"{path}: {lookup.strerror}")
    address = lookup.get(probe.name.lower())
    if address is None:
        return ProbeResult(probe.container, probe.label, FAILED, f"not in {path}; expected {expected} ({probe.source})")
    if address in probe.expected:
        return ProbeResult(probe.container, probe.label, OK, f"{address} ({probe.source}, from {path})")
    return ProbeResult(probe.container, probe.label, FAILED,
                       f"resolves to {address} in {path}, expected {expected} ({probe.source})")


SHOWN_NAMES = 6  # a container sees every name of its networks: a thousand on a big one


def _names_summary(container: str, rows: list[ProbeResult]) -> ProbeResult:
    """One result for all of a container's names, so that the output grows with the
    containers, not with containers times names: the wrong ones, or the first few right ones."""
    failed = [row for row in rows if row.result == FAILED]
    label = "names"
    if failed:
        shown = "; ".join(f"{row.probe.removeprefix('name ')}: {row.detail}" for row in failed[:SHOWN_NAMES])
        more = f"; and {len(failed) - SHOWN_NAMES} more" if len(failed) > SHOWN_NAMES else ""
        return ProbeResult(container, label, FAILED, f"{len(failed)} of {len(rows)} wrong: {shown}{more}")
    shown = ", ".join(row.probe.removeprefix("name ") for row in rows[:SHOWN_NAMES])
    more = f" and {len(rows) - SHOWN_NAMES} more" if len(rows) > SHOWN_NAMES else ""
    return ProbeResult(container, label, OK, f"all {len(rows)} as the spec says in its /etc/hosts: {shown}{more}")
