"""`netreconcile dns`: the embedded DNS server in throwaway namespaces (kernel tests).

A spec with host.dns_resolver is applied; `netreconcile dns` serves its containers;
queries are sent from inside a container to 127.0.0.11 (UDP and TCP) with dnspython
(tests/dns_tools.py). Two small upstream servers: one on 127.0.0.54 in the host
namespace (the host file's server, like systemd-resolved's stub: reachable only from
the host namespace) knows `host.example`; one in an "outside" namespace, wired to the
host namespace on 198.51.100.0/24, knows `outside.example` and is container x's `dns`
server, reached from x's namespace through its default route and the host's NAT.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import REPO, eventually, sh
from tests.test_watch import free_port

pytestmark = pytest.mark.kernel

UPSTREAM, UPSTREAM_HOST_END = "198.51.100.2", "198.51.100.1"
HOST_UPSTREAM = "127.0.0.54"
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
        self.spec = spec
        self.log_path = sandbox.tmp / "dns.log"
        self.metrics_port = free_port()
        command = [sys.executable, "-m", "reconciler", "--host-netns", sandbox.host,
                   "--state-dir", str(sandbox.state_dir), "dns", str(spec), "--metrics-port", str(self.metrics_port)]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def log(self) -> str:
        return self.log_path.read_text()

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            lines = response.read().decode().splitlines()
        return {name: float(value) for name, _, value in (line.rpartition(" ") for line in lines)
                if not name.startswith("#")}

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
    resolv_conf.write_text(f"nameserver {HOST_UPSTREAM}\n")
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
    sh(f"ip -n {sandbox.host} link set lo up")
    upstreams = [upstream_server(outside, UPSTREAM, "outside.example", "203.0.113.7"),
                 upstream_server(sandbox.host, HOST_UPSTREAM, "host.example", "203.0.113.8")]
    try:
        resolver = Resolver(sandbox, spec)
        try:
            eventually(lambda: ask(sandbox, "a", sandbox.name("b")).get("rcode") == "NOERROR",
                       "the resolver answers", timeout=60, context=resolver.log)
            yield resolver
        finally:
            resolver.stop()
    finally:
        for upstream in upstreams:
            upstream.kill()
            upstream.wait()


def upstream_server(netns: str, address: str, name: str, answer: str) -> subprocess.Popen:
    process = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, f"{REPO}/tests/dns_tools.py",
                                "upstream", address, name, answer], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


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


@pytest.mark.parametrize("container, name, address", [
    ("a", "host.example", "203.0.113.8"),  # the host file's 127.0.0.54: only the host namespace reaches it
    ("x", "outside.example", "203.0.113.7"),  # its `dns` server, from its namespace through the NAT
])
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_name_only_the_upstream_knows_gets_its_answer(sandbox, served, container, name, address, transport):
    assert ask(sandbox, container, name, transport) == {"rcode": "NOERROR", "answers": [address]}
    assert ask(sandbox, container, "nowhere.example", transport)["rcode"] == "NXDOMAIN"


def test_the_containers_resolv_conf_points_at_the_resolver(sandbox, served):
    text = sandbox.in_ns("a", "cat /etc/resolv.conf")
    assert "nameserver 127.0.0.11\n" in text and "options ndots:0\n" in text
    assert f"# ExtServers: [host({HOST_UPSTREAM})]\n" in text
    assert f"# ExtServers: [{UPSTREAM}]\n" in sandbox.in_ns("x", "cat /etc/resolv.conf")


def test_queries_are_counted_by_result_with_their_latency(sandbox, served):
    before = served.metrics()
    ask(sandbox, "a", sandbox.name("b"))
    ask(sandbox, "a", sandbox.name("d"))
    ask(sandbox, "x", "outside.example")
    after = served.metrics()
    for result in ("answered", "nxdomain", "forwarded"):
        key = f'netreconcile_dns_queries_total{{result="{result}"}}'
        assert after[key] == before[key] + 1, result
    count = "netreconcile_dns_query_duration_seconds_count"
    assert after[count] == before[count] + 3


def test_sighup_rereads_the_spec(sandbox, served):
    served.spec.write_text(served.spec.read_text().replace("aliases: [bee]", "aliases: [bee, honey]"))
    served.process.send_signal(signal.SIGHUP)
    eventually(lambda: ask(sandbox, "a", "honey").get("answers") == ["172.31.71.20"], "the new alias resolves",
               timeout=60, context=served.log)


def test_sigterm_stops_it_cleanly_and_nothing_answers_afterwards(sandbox, served):
    assert served.stop() == 0
    assert "dns stopped" in served.log()
    assert ask(sandbox, "a", sandbox.name("b")) == {}  # no answer: the sockets are gone


def test_the_c_library_resolves_through_it(sandbox, served):
    # getent reads the container's resolv.conf (ip netns exec mounts /etc/netns/<name>/ over /etc);
    # host.example is known only to the host file's upstream server
    assert sandbox.in_ns("a", "getent ahostsv4 bee").split()[0] == "172.31.71.20"
    assert sandbox.in_ns("a", "getent hosts host.example").split()[0] == "203.0.113.8"


def test_without_its_host_namespace_it_says_to_apply_first(sandbox):
    spec = sandbox.write_spec(SPEC.format(resolv_conf="/etc/resolv.conf", upstream=UPSTREAM))
    result = sandbox.run("dns", spec=spec)
    assert result.code == 1
    assert f"error: cannot open host namespace {sandbox.host}: No such file or directory (apply the spec first)" \
        in result.stderr


def test_an_invalid_spec_is_refused_with_its_location_before_serving(sandbox):
    spec = sandbox.write_spec("version: 1\nhost: {dns_resolver: 'yes'}\n")
    result = sandbox.run("dns", spec=spec)
    assert result.code == 1
    assert "spec.yaml:2:22: host.dns_resolver: expected a boolean (true or false), got 'yes'" in result.stderr


def test_a_spec_without_dns_resolver_serves_nothing_and_says_so(sandbox):
    sh(f"ip netns add {sandbox.host}")
    spec = sandbox.write_spec(SPEC.format(resolv_conf="/etc/resolv.conf", upstream=UPSTREAM)
                              .replace("dns_resolver: true", "dns_resolver: false"))
    resolver = Resolver(sandbox, spec)
    try:
        eventually(lambda: "no container uses the embedded DNS server" in resolver.log(), "the warning",
                   timeout=60, context=resolver.log)
    finally:
        assert resolver.stop() == 0
