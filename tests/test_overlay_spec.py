"""Overlay networks in the spec, without the kernel: `vni` (given or derived stably), the
MTU default of 1450, what an overlay network cannot have, unique VNIs, and the refusal of
`driver: overlay` while its kernel objects are not built."""

from __future__ import annotations

import pytest

from reconciler.drivers.overlay import OVERLAY, derived_vni
from reconciler.errors import SpecError
from reconciler.spec.loader import load_spec_text
from reconciler.spec.nodes import NodeSection
from reconciler.spec.yamlread import parse_yaml

from tests.test_nodes import TWO_NODES

SPEC = TWO_NODES + """\
networks:
  mesh:
    driver: overlay
    subnet: 10.200.0.0/24
  local:
    subnet: 10.201.0.0/24
containers:
  api: {node: node-a, networks: [mesh, local]}
  db: {node: node-b, networks: [mesh]}
"""
NOT_YET = ("spec.yaml:7:13: networks.mesh.driver: 'driver: overlay' is not supported yet by this version of "
           "netreconcile: its spec is checked, its kernel objects are not built yet (issue 17)")


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as error:
        load_spec_text(text, "spec.yaml")
    return [str(problem) for problem in error.value.problems]


def built_networks(text: str):
    """The networks as the section checks build them, whatever they report."""
    return {network.name: network for network in NodeSection(parse_yaml(text, "spec.yaml"))._networks()}


def test_overlay_is_refused_as_not_supported_yet_and_nothing_else_is_wrong():
    assert problems(SPEC) == [NOT_YET]


def test_vni_is_derived_stably_from_the_name_and_the_mtu_defaults_to_1450():
    mesh = built_networks(SPEC)["mesh"]
    assert (mesh.driver, mesh.bridge, mesh.mtu, mesh.vni) == ("overlay", "mesh", 1450, derived_vni("mesh"))
    assert derived_vni("mesh") == 15585554  # fixed: a changed derivation would split a fleet mid-upgrade
    assert 1 <= derived_vni("x" * 63) < 1 << 24
    given = built_networks(SPEC.replace("    driver: overlay\n", "    driver: overlay\n    vni: 4242\n    mtu: 1400\n"))
    assert (given["mesh"].vni, given["mesh"].mtu) == (4242, 1400)
    assert built_networks(SPEC)["local"].mtu == 1500
    assert OVERLAY.through_host is False


@pytest.mark.parametrize("key, value, why", [
    ("masquerade", "true", "the bridge has no address, so nothing leaves through the host"),
    ("uplink", "eth1", "the overlay's only port beyond its containers is its VXLAN device"),
    ("internal", "true", "an overlay network is internal already"),
    ("icc", "false", "traffic between its containers does not go through the host's firewall"),
    ("enable_ipv6", "true", "IPv6 on overlay networks is not built yet"),
])
def test_what_an_overlay_network_cannot_have_is_refused_at_its_key(key, value, why):
    found = problems(SPEC.replace("    driver: overlay\n", f"    driver: overlay\n    {key}: {value}\n"))
    assert any(p.startswith(f"spec.yaml:8:5: networks.mesh.{key}: '{key}' does not apply to an overlay network: "
                            f"{why}") for p in found), found


def test_ports_of_a_container_only_on_overlay_networks_are_refused():
    found = problems(SPEC.replace("  db: {node: node-b, networks: [mesh]}", "  db: {node: node-b, networks: [mesh], "
                                  "ports: ['8080:80']}"))
    assert "spec.yaml:13:40: containers.db.ports: container 'db' is only on overlay networks, whose traffic does not " \
           "go through the host: its ports cannot be published (publish them through a bridge network it is also " \
           "on)" in found, found
    # api is also on a bridge network: its ports go through that one
    assert problems(SPEC.replace("[mesh, local]}", "[mesh, local], ports: ['8080:80']}")) == [NOT_YET]


def test_two_overlay_networks_with_one_vni_are_refused():
    text = SPEC.replace("  local:\n    subnet: 10.201.0.0/24\n",
                        "  other:\n    driver: overlay\n    vni: 4242\n    subnet: 10.202.0.0/24\n").replace(
        "    driver: overlay\n    subnet: 10.200", "    driver: overlay\n    vni: 4242\n    subnet: 10.200").replace(
        "[mesh, local]", "[mesh]")
    assert "spec.yaml:12:10: networks.other.vni: VNI 4242 is already the one of overlay network 'mesh'" in problems(text)


def test_an_overlay_network_needs_nodes():
    text = SPEC.replace("nodes:\n  node-a: {address: 198.51.100.1}\n  node-b: {address: 198.51.100.2}\n", "").replace(
        "node: node-a, ", "").replace("node: node-b, ", "")
    assert ("spec.yaml:4:13: networks.mesh.driver: an overlay network spans the hosts of a multi-host spec: it needs "
            "the top-level 'nodes:' (each host's underlay address, its VXLAN endpoint)") in problems(text)
