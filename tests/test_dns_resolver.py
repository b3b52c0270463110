"""`netreconcile dns`: the embedded DNS server in throwaway namespaces (kernel tests).

A spec with host.dns_resolver is applied; `netreconcile dns` serves its containers;
queries are sent from inside a container to 127.0.0.11 (UDP and TCP) with dnspython
(tests/dns_tools.py). An "outside" namespace, wired to the host namespace on
198.51.100.0/24, runs a small upstream server that alone knows `outside.example`.
Until name discovery is merged the CLI runs through tests/dns_scope_stand_in.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, eventually, sh

pytestmark = pytest.mark.kernel

UPSTREAM, UPSTREAM_HOST_END = "198.51.100.2", "198.51.100.1"
SPEC = """\
version: 1
host:
  dns_resolver: true
  resolv_conf: {resolv_conf}
networks:
  front: {{bridge: "@fr", subnet: 172.31.71.0/24}}
  back: {{bridge: "@bk", subnet: 172.31.72.0/24}}
containers:
  "@a": {{networks: [front]}}
  "@b":
    networks:
      front: {{ipv4_address: 172.31.71.20, aliases: [bee]}}
  "@d":
    networks:
      back: {{ipv4_address: 172.31.72.30}}
  "@x":
    networks: [front]
    dns: [{upstream}]
"""


class Resolver:
    """`netreconcile dns` running for the sandbox, its output in a file."""

    def __init__(self, sandbox, spec):
        self.sandbox = sandbox
        self.log_path = sandbox.tmp / "dns.log"
        command = [sys.executable, "-m", "tests.dns_scope_stand_in", "--host-netns", sandbox.host,
                   "--state-dir", str(sandbox.state_dir), "dns", str(spec)]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def ask(sandbox, container: str, name: str, transport: str = "udp", rdtype: str = "A") -> dict:
    output = sandbox.in_ns(container, f"{sys.executable} {REPO}/tests/dns_tools.py ask 127.0.0.11 {name} "
                                      f"{rdtype} {transport}", check=False)
    return json.loads(output) if output.strip() else {}


@pytest.fixture
def served(sandbox):
    resolv_conf = sandbox.tmp / "resolv.conf"
    resolv_conf.write_text(f"nameserver {UPSTREAM}\n")
    resolv_conf.chmod(0o644)
    spec = sandbox.write_spec(SPEC.format(resolv_conf=resolv_conf, upstream=UPSTREAM))
    sandbox.apply(spec)
    outside = sandbox.name("outside")
    sh(f"ip netns add {outside}")
    sh(f"ip -n {sandbox.host} link add {sandbox.prefix}-o type veth peer name eth0 netns {outside}")
    sh(f"ip -n {sandbox.host} addr add {UPSTREAM_HOST_END}/24 dev {sandbox.prefix}-o")
    sh(f"ip -n {sandbox.host} link set {sandbox.prefix}-o up")
    sh(f"ip -n {outside} addr add {UPSTREAM}/24 dev eth0")
    sh(f"ip -n {outside} link set eth0 up")
    sh(f"ip -n {outside} link set lo up")
    sh(f"ip -n {outside} route add default via {UPSTREAM_HOST_END}")
    upstream = subprocess.Popen(["ip", "netns", "exec", outside, sys.executable, f"{REPO}/tests/dns_tools.py",
                                 "upstream", UPSTREAM, "outside.example", "203.0.113.7"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert upstream.stdout.readline().strip() == "ready"
        resolver = Resolver(sandbox, spec)
        try:
            eventually(lambda: ask(sandbox, "a", sandbox.name("b")).get("rcode") == "NOERROR",
                       "the resolver answers", timeout=60, context=resolver.log)
            yield resolver
        finally:
            resolver.stop()
    finally:
        upstream.kill()
        upstream.wait()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_name_in_scope_is_answered_with_its_address_on_the_shared_network(sandbox, served, transport):
    b = sandbox.name("b")
    assert ask(sandbox, "a", b, transport) == {"rcode": "NOERROR", "answers": ["172.31.71.20"]}
    assert ask(sandbox, "a", "BEE.", transport) == {"rcode": "NOERROR", "answers": ["172.31.71.20"]}
    ptr = ask(sandbox, "a", "20.71.31.172.in-addr.arpa", transport, "PTR")
    assert ptr == {"rcode": "NOERROR", "answers": [f"{b}."]}


def test_a_name_out_of_scope_is_nxdomain(sandbox, served):
    assert ask(sandbox, "a", sandbox.name("d")) == {"rcode": "NXDOMAIN", "answers": []}
    assert ask(sandbox, "d", sandbox.name("b"), "tcp") == {"rcode": "NXDOMAIN", "answers": []}


@pytest.mark.parametrize("container, transport", [("a", "udp"), ("a", "tcp"), ("x", "udp"), ("x", "tcp")])
def test_a_name_only_the_upstream_knows_gets_its_answer(sandbox, served, container, transport):
    # a: the host file's server, asked from the host's namespace; x: its `dns` server,
    # asked from its own namespace, through its default route and the host's NAT
    assert ask(sandbox, container, "outside.example", transport) == {"rcode": "NOERROR", "answers": ["203.0.113.7"]}
    assert ask(sandbox, container, "nowhere.example", transport)["rcode"] == "NXDOMAIN"


def test_the_containers_resolv_conf_points_at_the_resolver(sandbox, served):
    text = sandbox.in_ns("a", "cat /etc/resolv.conf")
    assert "nameserver 127.0.0.11\n" in text and "options ndots:0\n" in text
    assert f"# ExtServers: [host({UPSTREAM})]\n" in text


def test_sigterm_stops_it_cleanly_and_nothing_answers_afterwards(sandbox, served):
    assert served.stop() == 0
    assert "dns stopped" in served.log()
    assert ask(sandbox, "a", sandbox.name("b")) == {}  # no answer: the sockets are gone
