"""Multi-host specs without the kernel: `nodes:`, each container's `node`, the node a host
applies the spec as (--node) and which containers it builds."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.errors import SpecError
from reconciler.spec.loader import load_spec_text
from reconciler.spec.nodes import NodeChoice
from reconciler.state.desired import build_desired
from reconciler.state.model import Netns, State

TWO_NODES = """\
version: 1
nodes:
  node-a: {address: 198.51.100.1}
  node-b: {address: 198.51.100.2}
"""
SPEC = TWO_NODES + """\
networks:
  mesh:
    subnet: 10.200.0.0/24
containers:
  api: {node: node-a, networks: [mesh]}
  db: {node: node-b, networks: [mesh]}
  cache: {node: node-b, networks: [mesh]}
"""


def problems(text: str, node: NodeChoice | None = None) -> list[str]:
    with pytest.raises(SpecError) as error:
        load_spec_text(text, "spec.yaml", node)
    return [str(problem) for problem in error.value.problems]


def test_nodes_and_the_node_of_each_container_are_read():
    spec = load_spec_text(SPEC, "spec.yaml", NodeChoice("node-b"))
    assert [(n.name, n.address, str(n.location)) for n in spec.nodes] == [
        ("node-a", IPv4Address("198.51.100.1"), "spec.yaml:3:3"), ("node-b", IPv4Address("198.51.100.2"), "spec.yaml:4:3")]
    assert spec.node == "node-b"
    assert [c.name for c in spec.local_containers] == ["db", "cache"]
    assert [c.node for c in spec.containers] == ["node-a", "node-b", "node-b"]


def test_a_spec_without_nodes_is_single_host_whatever_the_node():
    spec = load_spec_text(SPEC.split("nodes:")[0] + SPEC.split("198.51.100.2}\n")[1].replace("node: node-a, ", "")
                          .replace("node: node-b, ", ""), "spec.yaml", NodeChoice("elsewhere", given=False))
    assert spec.nodes == () and spec.node is None
    assert [c.name for c in spec.local_containers] == ["api", "db", "cache"]


def test_without_a_chosen_node_every_container_is_built():
    """`validate` without --node: nothing is built, so the node is not checked."""
    assert len(load_spec_text(SPEC, "spec.yaml").local_containers) == 3


@pytest.mark.parametrize("change, expected", [
    (("198.51.100.2}", "198.51.100.1}"),
     "spec.yaml:4:21: nodes.node-b.address: 198.51.100.1 is already used by node 'node-a'"),
    (("198.51.100.2}", "2001:db8::2}"), "spec.yaml:4:21: nodes.node-b.address: '2001:db8::2' is not an IPv4 address"),
    (("198.51.100.2}", "127.0.0.1}"),
     "spec.yaml:4:21: nodes.node-b.address: 127.0.0.1 cannot be a node's underlay address: it must be a unicast "
     "address the other nodes reach it at"),
    (("  node-b: {address: 198.51.100.2}\n", "  node-b: {}\n"),
     "spec.yaml:4:3: nodes.node-b: missing required key 'address'"),
    (("  node-b: {address: 198.51.100.2}\n", "  node-b: {address: 198.51.100.2, port: 1}\n"),
     "spec.yaml:4:35: nodes.node-b.port: unknown key 'port'; expected one of: address"),
    (("node-b", "node_b!"), "spec.yaml:4:3: nodes.node_b!: 'node_b!' is not a valid node name"),
    (("  cache: {node: node-b, ", "  cache: {"),
     "spec.yaml:11:3: containers.cache: container 'cache' names no node: in a spec with 'nodes:' every container "
     "says which host builds it (node: one of node-a, node-b)"),
    (("cache: {node: node-b", "cache: {node: node-c"),
     "spec.yaml:11:17: containers.cache.node: 'node-c' is not a node of this spec; did you mean 'node-b'?"),
    (("cache: {node: node-b, networks: [mesh]}", "cache: {node: node-a, network_mode: 'container:db'}"),
     "spec.yaml:11:17: containers.cache.node: container 'cache' joins the network namespace of 'db', which is on "
     "node 'node-b': both must be on one node"),
])
def test_node_mistakes_are_reported_at_their_location(change, expected):
    found = problems(SPEC.replace(*change))
    assert any(p.startswith(expected) for p in found), found
    assert len(found) == 1, found


def test_a_node_name_given_twice_is_refused():
    found = problems(SPEC.replace("  node-b: {address: 198.51.100.2}\n", "  node-a: {address: 198.51.100.2}\n"))
    assert len(found) == 1 and found[0].startswith('spec.yaml:4:3: invalid YAML: found duplicate key "node-a"'), found


def test_a_container_node_without_nodes_is_refused():
    text = SPEC.split("nodes:")[0] + SPEC.split("198.51.100.2}\n")[1].replace("node: node-b, ", "")
    assert problems(text) == ["spec.yaml:6:9: containers.api.node: 'node' needs the top-level 'nodes:' that lists "
                              "the hosts (without it the spec is single-host)"]


@pytest.mark.parametrize("choice, expected", [
    (NodeChoice("node-c"), "spec.yaml:2:1: nodes: --node node-c is not a node of this spec (its nodes: node-a, "
                           "node-b); apply with --node NAME"),
    (NodeChoice("laptop", given=False), "spec.yaml:2:1: nodes: this machine's hostname 'laptop' (the default of "
                                        "--node) is not a node of this spec (its nodes: node-a, node-b); apply "
                                        "with --node NAME"),
])
def test_the_chosen_node_must_be_a_node_of_the_spec(choice, expected):
    assert problems(SPEC, choice) == [expected]


def test_a_host_builds_only_its_own_nodes_containers():
    desired = build_desired(load_spec_text(SPEC, "spec.yaml", NodeChoice("node-a")), State())
    assert {obj.name for obj in desired.objects.values() if isinstance(obj, Netns)} == {"api"}
    desired_b = build_desired(load_spec_text(SPEC, "spec.yaml", NodeChoice("node-b")), State())
    assert {obj.name for obj in desired_b.objects.values() if isinstance(obj, Netns)} == {"db", "cache"}


def test_cli_refuses_a_node_that_is_not_in_the_spec(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    result = CliRunner().invoke(main, ["--node", "node-c", "validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2:1: nodes: --node node-c is not a node of this spec" in result.output
    assert CliRunner().invoke(main, ["validate", "--node", "node-b", str(path)]).exit_code == 0
