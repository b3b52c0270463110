"""`netreconcile graph --live` against the kernel, in a throwaway host namespace: what was
deleted by hand is drawn missing, what the spec dropped unexpected, the rest unmarked;
drawing changes nothing."""

from __future__ import annotations

import pytest

from reconciler.drivers.bridge import veth_name
from tests.conftest import netns_names, sh
from tests.test_graph import dot_edges, drawn_text, graphviz_json, parse_mermaid

pytestmark = pytest.mark.kernel

SPEC = """\
version: 1
networks:
  front:
    bridge: "@br"
    subnet: 203.0.113.0/24
    discovery: false
containers:
  "@web":
    links: ["@db:database"]
    networks:
      front: {ipv4_address: 203.0.113.10, aliases: [www]}
    ports: ["8080:80"]
  "@db":
    networks: [front]
  "@cache":
    networks: [front]
"""
OLD = """\
  "@old":
    networks: [front]
"""


def mine(sandbox) -> set[str]:
    """The namespaces of this test (others run beside it)."""
    return {name for name in netns_names() if name.startswith(sandbox.prefix)}


def live_dot(sandbox, spec) -> tuple[dict[str, dict], dict[tuple[str, str], str]]:
    """Nodes by title (the first label line) and edge classes by (title, title), as Graphviz reads them."""
    result = sandbox.run("graph", "--live", spec=spec)
    assert result.code == 0, result.stderr
    document = graphviz_json(result.stdout)
    objects = {o["name"]: o for o in document["objects"] if "nodes" not in o and not o["name"].startswith("legend_")}
    titles = {name: drawn_text(o)[0] for name, o in objects.items()}
    edges = {(titles[tail], titles[head]): cls for tail, head, _, cls in dot_edges(document)}
    return {drawn_text(o)[0]: o for o in objects.values()}, edges


def test_graph_live_marks_what_was_deleted_by_hand_missing_and_what_the_spec_dropped_unexpected(sandbox):
    applied = sandbox.write_spec(SPEC + OLD, "applied.yaml")
    spec = sandbox.write_spec(SPEC)
    web, db, cache, old = (sandbox.name(short) for short in ("web", "db", "cache", "old"))

    # nothing applied yet (the host namespace does not exist): everything is missing, nothing is made
    nodes, edges = live_dot(sandbox, spec)
    assert {nodes[name].get("class") for name in (web, db, cache, "front")} == {"missing"}
    assert not mine(sandbox)

    sandbox.apply(applied)
    nodes, edges = live_dot(sandbox, applied)
    assert [name for name, node in nodes.items() if "class" in node] == []  # in sync: nothing marked
    assert set(edges.values()) == {""}

    sandbox.host_sh(f"ip link del {veth_name(db, 'front')}")  # db loses its interface
    sh(f"ip netns del {cache}")  # cache loses its namespace
    before = mine(sandbox), sandbox.links(sandbox.host).keys()
    nodes, edges = live_dot(sandbox, spec)  # and the spec no longer has old
    assert nodes[cache]["class"] == "missing"
    assert edges[(cache, "front")] == "missing"
    assert edges[(db, "front")] == "missing"
    assert nodes[db]["class"] == "differs"  # its namespace is there; its address and route are not
    assert nodes[old]["class"] == "unexpected"
    assert "class" not in nodes[web] and "class" not in nodes["front"]
    assert edges[(web, "front")] == "" and edges[("host namespace", web)] == ""
    assert (mine(sandbox), sandbox.links(sandbox.host).keys()) == before  # drawing changed nothing

    mermaid = sandbox.run("graph", "--live", "-o", "mermaid", spec=spec)
    assert mermaid.code == 0, mermaid.stderr
    mermaid_nodes, _ = parse_mermaid(mermaid.stdout)
    classes = {lines[0]: cls for lines, cls in mermaid_nodes.values()}
    assert (classes[cache], classes[old], classes[db], classes[web]) == ("missing", "unexpected", "differs",
                                                                         "container")
    assert "subgraph legend" in mermaid.stdout

    # apply repairs it: nothing is marked any more
    sandbox.apply(spec)
    nodes, edges = live_dot(sandbox, spec)
    assert [name for name, node in nodes.items() if "class" in node] == []
    assert old not in nodes
