"""Docker's port-binding vectors (`TestAddPortMappings/*`) replayed through publications
and the firewall renderer; pure.

A vector gives a container's IPv4 (and maybe IPv6) address and `-p` requests, and the
bindings Docker makes: (protocol, container address, container port, host address, host
port). Here the requests are parsed by the spec's own parser and the bindings read off
the `Publication`s, one per container and family, and the DNAT rules rendered from them.

What the spec cannot express is left out, each with its reason in INEXPRESSIBLE (a test
checks that every vector is either replayed or listed there):
- busy host ports: Docker picks a free port of a host range, or fails on a port some
  process holds; netreconcile maps a host range one to one onto the container range and
  binds no host port (no proxy), so no port is ever busy to it;
- Docker's userland proxy, which gives an IPv4-only container an IPv6 binding.
Ephemeral host ports are not expressible either (a spec must name its host port), but
the vectors that use them say something about families too; those are replayed with the
port Docker picks written into the request: EPHEM is the first port of the fallback
ephemeral range, 49153, and EPHEM+1 the next, per container port in request order.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from reconciler.render import firewall
from reconciler.spec.ports import parse_port
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec
from reconciler.state.desired import bridge_ports, publications
from tests.docker_vectors import load_vectors

EPHEM = 49153
PREFIX = "TestAddPortMappings/"
INEXPRESSIBLE = {
    "host port range with first port in-use": "a busy host port, and a host range onto one container port",
    "host port range with busy port": "a busy host port, and host ranges onto one container port",
    "host port range exhausted": "a busy host port",
    "specific host port in-use": "a busy host port",
    "map host ipv6 to ipv4 container with proxy": "the userland proxy",
}
VECTORS = [v for v in load_vectors("ports") if v["name"].startswith(PREFIX)]
REPLAYED = [v for v in VECTORS if v["name"][len(PREFIX):] not in INEXPRESSIBLE]


def with_host_port(request: str, ports: dict[str, int]) -> str:
    """`request` with the host port Docker would pick written in where it has none."""
    body, slash, protocol = request.partition("/")
    host, _, container = body.rpartition(":")
    if host and not host.endswith(":"):
        return request
    port = ports.setdefault(container, EPHEM + len(ports))
    return f"{host}{port}:{container}{slash}{protocol}"


def spec_for(vector: dict) -> tuple[Spec, dict, dict]:
    """A network holding the vector's container addresses, and the container with the
    vector's requests. Built directly: the spec reader refuses an IPv6-only entry on a
    container without IPv6 (Docker ignores it without its proxy), which one vector has."""
    given = vector["input"]
    v6 = given.get("ctr_v6")
    network = NetworkSpec("front", "br-front", ip_network(given["ctr_v4"]).supernet(new_prefix=16),
                          ip_address("172.19.0.1"))
    if v6:
        subnet6 = ip_network(v6).supernet(new_prefix=64)
        network = NetworkSpec(network.name, network.bridge, network.subnet, network.gateway, enable_ipv6=True,
                              subnet6=subnet6, gateway6=subnet6[1])
    ports: dict[str, int] = {}
    mappings = tuple(parse_port(with_host_port(request, ports)) for request in given["requests"])
    spec = Spec("spec.yaml", networks=(network,), containers=(ContainerSpec("ctr", (Attachment("front"),),
                                                                           ports=mappings),))
    addresses = {("ctr", "front"): ip_address(given["ctr_v4"])}
    addresses6 = {("ctr", "front"): ip_address(v6)} if v6 else {}
    return spec, addresses, addresses6


def bindings(found: list[firewall.Publication]) -> list[tuple]:
    wildcard = {4: "0.0.0.0", 6: "::"}
    return sorted(
        (m.protocol, str(p.address), port + m.offset, str(m.host_address or wildcard[p.family]), port)
        for p in found for m in p.mappings for port in range(m.host_first, m.host_last + 1)
    )


def expected_bindings(vector: dict) -> list[tuple]:
    def port(value) -> int:
        return EPHEM + int(value.partition("+")[2] or 0) if str(value).startswith("EPHEM") else int(value)

    return sorted((b["proto"], b["container_ip"], b["container_port"], b["host_ip"], port(b["host_port"]))
                  for b in vector["expected"]["bindings"])


def test_every_vector_is_replayed_or_named_inexpressible():
    names = {v["name"][len(PREFIX):] for v in VECTORS}
    assert set(INEXPRESSIBLE) <= names
    assert len(REPLAYED) == len(VECTORS) - len(INEXPRESSIBLE) >= 4


@pytest.mark.parametrize("vector", REPLAYED, ids=[v["name"] for v in REPLAYED])
def test_docker_port_binding_vector(vector):
    spec, addresses, addresses6 = spec_for(vector)
    found = publications(spec, addresses, addresses6)
    assert bindings(found) == expected_bindings(vector)
    rules = firewall.render(list(spec.networks), found, bridge_ports(spec))
    _, elements = firewall.split_elements(firewall.normalize(rules))
    assert len(elements) == len(expected_bindings(vector))  # one map element per binding (all single ports here)
    for protocol, container_ip, container_port, host_ip, host_port in expected_bindings(vector):
        ip = firewall.match_family(ip_address(container_ip))
        if ip_address(host_ip).is_unspecified:
            element = f"published_{ip}_{protocol} {host_port}"
        else:
            element = f"published_{ip}_daddr_{protocol} {host_ip} . {host_port}"
        assert f"{element} : {container_ip} . {container_port}" in elements
