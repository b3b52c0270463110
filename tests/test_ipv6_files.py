"""The hosts and resolv.conf files of containers with IPv6: desired, then applied.

Docker's own vectors (etchosts and resolvconf areas of the shared vectors file, read by
tests/docker_vectors.py) are replayed through `container_files`, the function that
decides every container's files, and then end to end (kernel tests: a spec applied in a
throwaway namespace, the files read back from /etc/netns/<name>/), with the container
on an IPv6 or an IPv4-only network as the vector's network is. Where a vector leaves an
address to the running daemon, the container's own addresses stand in. Every selection
of vectors asserts how many it took, so that a renamed vector cannot leave a test with
nothing to check.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from reconciler.render import resolvconf
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec
from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import HostFiles, build_desired, container_files
from reconciler.state.model import File, State
from tests.conftest import sh
from tests.docker_vectors import load_vectors

ETC = "/etc/resolv.conf"
HEAD = "127.0.0.1\tlocalhost\n"


def dual(name: str, third: int, ipv6: bool = True) -> NetworkSpec:
    """A network on 172.31.<third>.0/24 and, with `ipv6`, fd42:db8:<third>::/64."""
    subnet6 = IPv6Network(f"fd42:db8:{third}::/64") if ipv6 else None
    return NetworkSpec(
        name=name, bridge=f"br-{name}", subnet=IPv4Network(f"172.31.{third}.0/24"),
        gateway=IPv4Address(f"172.31.{third}.1"), enable_ipv6=ipv6, subnet6=subnet6,
        gateway6=IPv6Address(f"fd42:db8:{third}::1") if ipv6 else None,
    )


V6 = dual("v6", 10)
V4 = dual("v4", 20, ipv6=False)
OTHER_V6 = dual("other", 30)


class World:
    """A spec and the addresses the IPAM would give: container number n gets .n+1 / ::n+1."""

    def __init__(self, *containers: ContainerSpec, networks=(V6, V4, OTHER_V6)):
        self.spec = Spec("spec.yaml", networks=tuple(networks), containers=containers)
        self.addresses, self.addresses6 = {}, {}
        for number, container in enumerate(containers, 2):
            for attachment in container.networks:
                network = self.spec.network(attachment.network)
                key = (container.name, network.name)
                self.addresses[key] = network.subnet[number]
                if network.ipv6:
                    self.addresses6[key] = network.subnet6[number]

    def files(self, name: str, host_resolv: str = "nameserver 198.51.100.53\n", path: str = ETC) -> dict[str, str]:
        host_files = HostFiles(resolv_conf=host_resolv, resolv_conf_path=path)
        objects = container_files(self.spec, self.spec.container(name), self.addresses,
                                  resolvconf.parse(host_resolv, path), host_files, self.addresses6)
        return {file.filename: file.content for file in objects}


def container(name: str, *networks: str, **settings) -> ContainerSpec:
    return ContainerSpec(name, networks=tuple(Attachment(network) for network in networks), **settings)


def one_vector(area: str, name: str) -> dict:
    found = [vector for vector in load_vectors(area) if vector["name"] == name]
    assert len(found) == 1, f"{area} vector {name!r}: {len(found)} found"
    return found[0]


DEFAULTS = one_vector("etchosts", "TestBuildDefault")["expected"]["content"]


# --- /etc/hosts -------------------------------------------------------------------------


def test_a_container_on_an_ipv6_network_gets_the_ipv6_defaults_and_its_ipv6_line_after_the_ipv4_one():
    template = one_vector("etchosts", "TestEtcHostsIpv6/IPv6 enabled")["expected"]["content_template"]
    hosts = World(container("web", "v6")).files("web")["hosts"]
    assert hosts == template.format(IPv4="172.31.10.2", GlobalIPv6="fd42:db8:10::2", hostname="web")
    assert hosts.startswith(DEFAULTS)  # TestBuildDefault: the default block, IPv6 lines included


def test_a_container_on_an_ipv4_only_network_gets_no_ipv6_line():
    template = one_vector("etchosts", "TestEtcHostsIpv6/IPv6 disabled in container")["expected"]["content_template"]
    hosts = World(container("web", "v4", extra_hosts=("six:2001:db8::6",))).files("web")["hosts"]
    assert hosts == template.format(IPv4="172.31.20.2", hostname="web")


def test_extra_hosts_of_both_families_are_kept_with_ipv6_and_the_ipv6_ones_dropped_without():
    vector = one_vector("etchosts", "TestBuildNoIPv6")  # the records given as extra_hosts
    extra_hosts = tuple(f"{names}:{address}" for names, address in vector["input"]["records"])
    own_v4 = "172.31.20.2\tweb\n"
    assert World(container("web", "v4", extra_hosts=extra_hosts)).files("web")["hosts"] == (
        vector["expected"]["content"] + own_v4)
    assert World(container("web", "v6", extra_hosts=extra_hosts)).files("web")["hosts"] == (
        DEFAULTS + "fdbb:c59c:d015::3\tanother.example\n10.11.12.13\tanother.example\n"
        "172.31.10.2\tweb\nfd42:db8:10::2\tweb\n")


def test_two_ipv6_networks_list_each_endpoints_ipv4_then_ipv6_in_network_order():
    # Docker's run on net1 then connect to net2 is a from-scratch build with both networks;
    # the vector's subnets are replaced by ours (its net2 is ipvlan, a bridge here)
    vector = one_vector("etchosts", "TestEtcHostsDisconnect/step 1: run on bridge net1, then connect ipvlan net2")
    given = vector["input"]["setup"]["container"]
    web = container("c1", "v6", "other", hostname=given["hostname"], extra_hosts=tuple(given["add_host"]))
    expected = vector["expected"]["content"]
    for theirs, ours in [("192.168.123.2", "172.31.10.2"), ("fde6:be58:aedf::2", "fd42:db8:10::2"),
                         ("192.168.124.2", "172.31.30.2"), ("fdd2:c4e3:c4d5::2", "fd42:db8:30::2")]:
        assert theirs in expected
        expected = expected.replace(theirs, ours)
    assert World(web).files("c1")["hosts"] == expected


def test_a_container_on_an_ipv6_and_an_ipv4_only_network_has_ipv6_and_an_ipv6_line_for_the_ipv6_one_only():
    for order in (("v6", "v4"), ("v4", "v6")):
        hosts = World(container("web", *order)).files("web")["hosts"]
        lines = {"v6": "172.31.10.2\tweb\nfd42:db8:10::2\tweb\n", "v4": "172.31.20.2\tweb\n"}
        assert hosts == DEFAULTS + "".join(lines[network] for network in order)


def test_a_link_to_a_target_on_a_shared_ipv6_network_gets_a_second_line_for_its_ipv6_address():
    world = World(container("web", "v6", links=("db:database",)),
                  ContainerSpec("db", networks=(Attachment("v6", aliases=("primary",)),)))
    assert world.files("web")["hosts"] == (
        DEFAULTS + "172.31.10.3\tdatabase db primary\nfd42:db8:10::3\tdatabase db primary\n"
        "172.31.10.2\tweb\nfd42:db8:10::2\tweb\n")


def test_a_link_has_an_ipv6_line_only_when_the_network_it_goes_over_has_ipv6():
    # the link goes over the first of the target's networks that the linking container is on
    over_v6 = World(container("web", "v4", "other", links=("db",)), container("db", "other", "v4"),
                    networks=(V4, OTHER_V6)).files("web")["hosts"]
    assert "172.31.30.3\tdb\nfd42:db8:30::3\tdb\n" in over_v6
    over_v4 = World(container("web", "v4", links=("db",)), container("db", "other", "v4"),
                    networks=(V4, OTHER_V6)).files("web")["hosts"]
    assert over_v4 == HEAD + "172.31.20.3\tdb\n172.31.20.2\tweb\n"


def test_host_gateway_gives_a_line_per_gateway_address_of_the_first_network():
    item = ("host.docker.internal:host-gateway",)
    on_v6 = World(container("web", "v6", "v4", extra_hosts=item)).files("web")["hosts"]
    assert DEFAULTS + "172.31.10.1\thost.docker.internal\nfd42:db8:10::1\thost.docker.internal\n" in on_v6
    on_v4_first = World(container("web", "v4", "v6", extra_hosts=item)).files("web")["hosts"]
    assert DEFAULTS + "172.31.20.1\thost.docker.internal\n172.31.20.2\tweb\n" in on_v4_first


def test_a_container_in_anothers_namespace_gets_its_ipv6_files_and_host_mode_is_unchanged():
    world = World(container("web", "v6", hostname="web", extra_hosts=("host.docker.internal:host-gateway",)),
                  ContainerSpec("sidecar", network_mode="container:web"),
                  ContainerSpec("tool", network_mode="host", extra_hosts=("six:2001:db8::6",)))
    host_resolv = "nameserver 127.0.0.53\nnameserver 2001:db8::53\n"
    assert world.files("sidecar", host_resolv) == world.files("web", host_resolv)
    assert "fd42:db8:10::2\tweb\n" in world.files("sidecar")["hosts"]
    tool = world.files("tool", host_resolv)
    assert tool["hosts"] == DEFAULTS + "2001:db8::6\tsix\n"
    assert "nameserver 127.0.0.53\nnameserver 2001:db8::53\n" in tool["resolv.conf"]  # no legacy transform


# --- /etc/resolv.conf ---------------------------------------------------------------------

LEGACY_VECTORS = [v for v in load_vectors("resolvconf") if v["name"].startswith("TestRCTransformForLegacyNw/")]


def test_every_legacy_transform_vector_is_replayed_with_both_ipv6_flags():
    assert len(LEGACY_VECTORS) == 10
    assert {v["input"]["network_ipv6"] for v in LEGACY_VECTORS} == {True, False}


def legacy_case(vector: dict) -> tuple[World, str, str]:
    """The vector as a container on an IPv6 or IPv4-only network: (world, host file, expected file)."""
    given = vector["input"]
    overrides = given.get("overrides", {})
    web = container("web", "v6" if given["network_ipv6"] else "v4", dns=tuple(overrides.get("nameservers", ())),
                    dns_search=tuple(overrides.get("search", ())), dns_opt=tuple(overrides.get("options", ())))
    assert given["source_path"] == ETC
    return World(web), given["host_file"], resolvconf.HEADER + vector["expected"]["generated"]


@pytest.mark.parametrize("vector", [pytest.param(v, id=v["name"]) for v in LEGACY_VECTORS])
def test_resolv_conf_follows_dockers_legacy_transform_for_the_networks_ipv6_flag(vector):
    world, host_file, expected = legacy_case(vector)
    assert world.files("web", host_file)["resolv.conf"] == expected


HOST_WITH_BOTH = "nameserver 127.0.0.1\nnameserver 2001:db8::53\nnameserver 198.51.100.53\n"


def test_on_several_networks_the_last_one_joined_decides_the_ipv6_flag():
    # Docker rewrites the file at each join with the joining network's EnableIPv6
    last_v6 = World(container("web", "v4", "v6")).files("web", HOST_WITH_BOTH)["resolv.conf"]
    assert "nameserver 2001:db8::53\nnameserver 198.51.100.53\n\n" in last_v6
    last_v4 = World(container("web", "v6", "v4")).files("web", HOST_WITH_BOTH)["resolv.conf"]
    assert "\nnameserver 198.51.100.53\n\n" in last_v4 and "2001:db8::53" not in last_v4


def localhost_ipv6_case() -> tuple[str, str]:
    """Docker's end-to-end vector on the stub resolver: (host file, the file netreconcile writes).

    The vector is for a user-defined network and its embedded DNS server (127.0.0.11),
    which netreconcile does not have: its host file and IPv6 network get the legacy
    transform, Docker's answer for a network without that server.
    """
    vector = one_vector("resolvconf", "TestResolvConfLocalhostIPv6 (end-to-end container file)")
    assert "nameserver 127.0.0.11\n" in vector["expected"]["container_file"]
    assert "--ipv6" in vector["input"]["network"]
    return vector["input"]["host_file"], resolvconf.HEADER + (
        "nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n"
        "\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Used default nameservers.\n# Overrides: []\n")


def test_the_localhost_ipv6_end_to_end_vector_on_a_network_without_embedded_dns_gets_the_fallbacks_of_both_families():
    host_file, expected = localhost_ipv6_case()
    assert World(container("web", "v6")).files("web", host_file)["resolv.conf"] == expected


# --- end to end: the files in /etc/netns/<name>/ after an apply -----------------------------

# Docker's files, which its vectors hold, have no discovery section (Docker answers names
# from its DNS server): these networks turn discovery off
KERNEL_SPEC = """\
version: 1
host:
  resolv_conf: {resolv}
networks:
  six:
    bridge: "@b6"
    subnet: 172.31.10.0/24
    enable_ipv6: true
    subnet6: fd42:db8:10::/64
    discovery: false
  four:
    bridge: "@b4"
    subnet: 172.31.20.0/24
    discovery: false
containers:
{containers}"""


def apply_files(sandbox, containers: str, host_resolv: str = "nameserver 198.51.100.53\n"):
    """Apply a spec with the networks `six` (dual stack) and `four` (IPv4 only) and
    `containers` (YAML, indented by two); return the spec and the host resolv.conf path."""
    resolv = sandbox.tmp / "host-resolv.conf"
    resolv.write_text(host_resolv)
    resolv.chmod(0o644)
    spec = sandbox.write_spec(KERNEL_SPEC.format(resolv=resolv, containers=containers))
    sandbox.apply(spec)
    return spec, resolv


def etc_file(sandbox, short: str, filename: str) -> str:
    return (Path("/etc/netns") / sandbox.name(short) / filename).read_text()


def kernel_addresses(sandbox, short: str, family: int) -> list[str]:
    """The container's global addresses of one family, as the kernel holds them."""
    links = json.loads(sh(f"ip -n {sandbox.name(short)} -j -{family} addr show scope global"))
    return [a["local"] for link in links for a in link.get("addr_info", []) if "local" in a]


def skip_if_systemd_replaces(host_file: str) -> None:
    """A host file whose only nameserver is systemd-resolved's stub is replaced by
    systemd's own file where that exists (as Docker does), so the vector's host file
    would not be the one read: such a host runs the pure test of the vector only."""
    if resolvconf.source_path(host_file, ETC, Path(resolvconf.SYSTEMD_RESOLV_CONF).exists()) != ETC:
        pytest.skip(f"{resolvconf.SYSTEMD_RESOLV_CONF} exists here and replaces a stub-only host file")


@pytest.mark.kernel
def test_hosts_files_of_containers_with_and_without_ipv6_match_dockers_vectors(sandbox):
    enabled = one_vector("etchosts", "TestEtcHostsIpv6/IPv6 enabled")["expected"]["content_template"]
    disabled = one_vector("etchosts", "TestEtcHostsIpv6/IPv6 disabled in container")["expected"]["content_template"]
    spec, _ = apply_files(sandbox, '  "@v6":\n    networks: [six]\n  "@v4":\n    networks: [four]\n')
    (v6_ipv4,), (v6_ipv6,) = kernel_addresses(sandbox, "v6", 4), kernel_addresses(sandbox, "v6", 6)
    assert etc_file(sandbox, "v6", "hosts") == enabled.format(IPv4=v6_ipv4, GlobalIPv6=v6_ipv6,
                                                              hostname=sandbox.name("v6"))
    assert etc_file(sandbox, "v6", "hosts").startswith(DEFAULTS)
    (v4_ipv4,) = kernel_addresses(sandbox, "v4", 4)
    assert etc_file(sandbox, "v4", "hosts") == disabled.format(IPv4=v4_ipv4, hostname=sandbox.name("v4"))
    assert sandbox.apply(spec)["actions"] == []


@pytest.mark.kernel
@pytest.mark.parametrize("vector", [pytest.param(v, id=v["name"]) for v in LEGACY_VECTORS])
def test_resolv_conf_of_a_container_on_an_ipv6_or_ipv4_only_network_matches_dockers_legacy_vectors(sandbox, vector):
    world, host_file, expected = legacy_case(vector)
    skip_if_systemd_replaces(host_file)
    web = world.spec.container("web")
    settings = {"networks": ["six" if web.networks[0].network == "v6" else "four"],
                **{key: list(value) for key, value in (("dns", web.dns), ("dns_search", web.dns_search),
                                                        ("dns_opt", web.dns_opt)) if value}}
    _, resolv = apply_files(sandbox, f'  "@web": {json.dumps(settings)}\n', host_file)
    assert etc_file(sandbox, "web", "resolv.conf") == expected.replace(f"'{ETC}'", f"'{resolv}'")
    assert sandbox.in_ns("web", "cat /etc/resolv.conf") == etc_file(sandbox, "web", "resolv.conf")


MIXED = """\
  "@web":
    hostname: web
    networks: [six, four]
    links: ["@db:database"]
    extra_hosts: ["host.docker.internal:host-gateway"]
  "@db":
    networks:
      six: {ipv4_address: 172.31.10.10, ipv6_address: "fd42:db8:10::10"}
"""


def mixed_hosts(db: str) -> str:
    """web's hosts file in MIXED, its link target `db` named `db`."""
    return DEFAULTS + (
        "172.31.10.1\thost.docker.internal\nfd42:db8:10::1\thost.docker.internal\n"
        f"172.31.10.10\tdatabase {db}\nfd42:db8:10::10\tdatabase {db}\n"
        "172.31.10.2\tweb\nfd42:db8:10::2\tweb\n172.31.20.2\tweb\n")


def test_the_desired_state_of_a_spec_gives_the_ipv6_lines_with_the_addresses_it_assigns():
    text = KERNEL_SPEC.format(resolv=ETC, containers=MIXED).replace("@", "")
    desired = build_desired(load_spec_text(text, "spec.yaml"), State(), HostFiles(HOST_WITH_BOTH, ETC))
    files = {(f.netns, f.filename): f.content for f in desired.of_kind(File)}
    assert files[("web", "hosts")] == mixed_hosts("db")
    assert "2001:db8::53" not in files[("web", "resolv.conf")]  # its last network, `four`, has no IPv6
    assert "nameserver 2001:db8::53\n" in files[("db", "resolv.conf")]


@pytest.mark.kernel
def test_a_container_on_an_ipv6_and_an_ipv4_only_network_with_a_link_and_host_gateway(sandbox):
    spec, _ = apply_files(sandbox, MIXED, HOST_WITH_BOTH)
    assert etc_file(sandbox, "web", "hosts") == mixed_hosts(sandbox.name("db"))
    assert sandbox.in_ns("web", "getent ahostsv6 database").split()[0] == "fd42:db8:10::10"
    # the last network listed, `four`, has no IPv6: Docker's last join drops IPv6 nameservers
    resolv = etc_file(sandbox, "web", "resolv.conf")
    assert "\nnameserver 198.51.100.53\n\n" in resolv and "2001:db8::53" not in resolv
    assert "nameserver 2001:db8::53\nnameserver 198.51.100.53\n\n" in etc_file(sandbox, "db", "resolv.conf")
    assert sandbox.apply(spec)["actions"] == []


@pytest.mark.kernel
def test_the_localhost_ipv6_end_to_end_vector_applied(sandbox):
    host_file, expected = localhost_ipv6_case()
    skip_if_systemd_replaces(host_file)
    spec, resolv = apply_files(sandbox, '  "@web":\n    networks: [six]\n', host_file)
    assert sandbox.in_ns("web", "cat /etc/resolv.conf") == expected.replace(f"'{ETC}'", f"'{resolv}'")
    assert sandbox.apply(spec)["actions"] == []
