"""reconciler.dns.server in process, in throwaway namespaces: its limits and its sockets' life.

The Server runs on a thread of the test; clients are sockets opened inside the served
namespace (kernel tests: the sandbox's namespaces only).
"""

from __future__ import annotations

import os
import socket
import threading
from ipaddress import ip_address

import dns.message
import dns.query
import dns.rcode
import pytest

from reconciler.dns import server as server_module
from reconciler.dns.config import NameTable, NamespaceConfig, ResolverConfig
from reconciler.dns.server import Server
from reconciler.kernel.nlsocket import entered
from reconciler.kernel.session import netns_path
from tests.conftest import eventually, sh

pytestmark = pytest.mark.kernel

CONFIG = NamespaceConfig(NameTable.of([("b", [ip_address("172.31.1.3")])]))


def make_netns(name: str) -> None:
    sh(f"ip netns add {name}")
    sh(f"ip -n {name} link set lo up")


@pytest.fixture
def served(sandbox, monkeypatch):
    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 2)
    name = sandbox.name("ns")
    make_netns(sandbox.host)
    make_netns(name)
    host_fd = os.open(netns_path(sandbox.host), os.O_RDONLY | os.O_CLOEXEC)
    server = Server(host_fd, "/run/netns")
    assert server.configure(ResolverConfig.of({name: CONFIG})) == {}
    server.next_config = None

    def reload() -> None:  # on the loop, as `netreconcile dns` does on SIGHUP
        server.problems = server.configure(server.next_config)

    thread = threading.Thread(target=server.serve, args=(reload,))
    thread.start()
    try:
        yield server, name
    finally:
        server.stop()
        thread.join(timeout=30)
        server.close()
        os.close(host_fd)


def client(netns: str, kind: int) -> socket.socket:
    fd = os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        with entered(fd):
            return socket.socket(socket.AF_INET, kind)
    finally:
        os.close(fd)


def ask_udp(netns: str, name: str) -> dns.message.Message:
    with client(netns, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        return dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.11", timeout=10, sock=sock)


def ask_on(connection: socket.socket, name: str) -> dns.message.Message:
    query = dns.message.make_query(name, "A")
    dns.query.send_tcp(connection, query)
    return dns.query.receive_tcp(connection, expiration=None)[0]


def reconfigure(server: Server, config: ResolverConfig) -> None:
    server.next_config, server.problems = config, None
    server.request_reload()
    eventually(lambda: server.problems is not None, "the loop reloaded")
    assert server.problems == {}


def listening(netns: str) -> bool:
    """Whether a TCP connection to 127.0.0.11:53 in `netns` is accepted (not refused)."""
    try:
        connected(netns).close()
    except ConnectionRefusedError:
        return False
    return True


def connected(netns: str) -> socket.socket:
    sock = client(netns, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(("127.0.0.11", 53))
    return sock


def test_over_the_connection_limit_the_oldest_connection_is_closed(served):
    _, name = served
    first, second = connected(name), connected(name)
    try:
        assert ask_on(first, "b").answer and ask_on(second, "b").answer  # both accepted
        third = connected(name)
        with third:
            assert ask_on(third, "b").answer
            assert first.recv(1) == b""  # closed by the server
            assert ask_on(second, "b").answer
    finally:
        first.close()
        second.close()


def test_a_name_to_forward_without_any_upstream_is_servfail(served):
    server, name = served
    before = server.metrics.queries.labels("failed")._value.get()
    assert ask_udp(name, "example.com").rcode() == dns.rcode.SERVFAIL
    assert server.metrics.queries.labels("failed")._value.get() == before + 1


def test_a_namespace_left_out_of_the_config_is_no_longer_served(served):
    server, name = served
    assert ask_udp(name, "b").answer
    reconfigure(server, ResolverConfig.of({}))
    assert not listening(name)
    assert server.served == {}


def test_a_namespace_made_again_under_the_same_name_is_served_in_the_new_one(served):
    server, name = served
    sh(f"ip netns del {name}")
    make_netns(name)
    assert not listening(name)  # the old sockets are in the old namespace
    reconfigure(server, ResolverConfig.of({name: CONFIG}))
    assert ask_udp(name, "b").answer


def test_the_records_of_a_shared_alias_come_shuffled_past_the_reply_cache(served):
    """Docker shuffles the records so that clients taking the first spread over the
    containers of a shared alias; the reply cache must not freeze one order. (40 queries
    all starting with the same one of 3 records: odds of 3 in 3**40.)"""
    server, name = served
    shared = [ip_address("172.31.1.3"), ip_address("172.31.1.4"), ip_address("172.31.1.5")]
    reconfigure(server, ResolverConfig.of({name: NamespaceConfig(NameTable.of([("web", shared)]))}))
    answers = [ask_udp(name, "web").answer[0] for _ in range(40)]
    assert all(sorted(r.to_text() for r in answer) == sorted(map(str, shared)) for answer in answers)
    assert len({answer[0].to_text() for answer in answers}) > 1
