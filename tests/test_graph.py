"""`netreconcile graph`: the DOT is read back by Graphviz, the Mermaid by a strict parser of
the statements it may hold; hostile names stay inside their labels; drift is marked; the
README's picture of specs/quickstart.yaml is what the code draws. No kernel is touched."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ElementTree
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from reconciler.render import graph as drawing
from reconciler.spec.loader import load_spec
from reconciler.spec.ports import parse_port
from reconciler.spec.types import Attachment, ContainerSpec, NetworkSpec, Spec
from reconciler.state.desired import build_desired
from reconciler.state.model import Netns, State, Veth
from reconciler.state.planner import plan
from tests.conftest import netns_names

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
DOCS = REPO / "docs"
DRAWN_SPECS = ["quickstart.yaml", "network-modes.yaml", "two-networks.yaml", "dual-stack.yaml",
               "published-ports.yaml", "discovery.yaml", "lan-macvlan.yaml", "lan-uplink.yaml"]
REGENERATE = ("python3 -m reconciler graph specs/quickstart.yaml > docs/quickstart.dot && "
              "dot -Tsvg docs/quickstart.dot > docs/quickstart.svg")


def netreconcile(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env=env)


# --- reading the output back -------------------------------------------------------------------
def graphviz_json(dot: str) -> dict:
    """Graphviz's own reading of `dot` (fails the test when it cannot parse it)."""
    result = subprocess.run(["dot", "-Tjson"], input=dot, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def drawn_text(element: dict) -> list[str]:
    """The lines Graphviz draws as the label of a node or edge of its JSON."""
    return [op["text"] for op in element.get("_ldraw_", []) if op["op"] == "T"]


def dot_nodes(document: dict) -> dict[str, list[str]]:
    """Node id -> drawn label lines, for every node outside the legend."""
    return {o["name"]: drawn_text(o) for o in document.get("objects", [])
            if "nodes" not in o and not o["name"].startswith("legend_")}


def dot_edges(document: dict) -> list[tuple[str, str, list[str], str]]:
    names = {o["_gvid"]: o["name"] for o in document.get("objects", [])}
    return [(names[e["tail"]], names[e["head"]], drawn_text(e), e.get("class", "")) for e in document.get("edges", [])]


MERMAID_LABEL = r'"(?P<label>(?:[A-Za-z0-9 .,:/@*_+=()-]|#\d+;|<br>)*)"'
MERMAID_STATEMENTS = {
    "node": re.compile(r"  (?P<id>[a-z]\w*)(?:\[\[|\(\[|\[)" + MERMAID_LABEL + r"(?:\]\]|\]\)|\]):::(?P<cls>\w+)"),
    "edge": re.compile(r"  (?P<source>[a-z]\w*) (?P<arrow>---|==>|-\.->)(?:\|" + MERMAID_LABEL + r"\|)? "
                       r"(?P<target>[a-z]\w*)"),
    "classDef": re.compile(r"  classDef \w+ [\w:#,.-]+"),
    "linkStyle": re.compile(r"  linkStyle \d+ [\w:#,. -]+"),
    "legend": re.compile(r'  subgraph legend\["legend"\]|    legend_\w+\["[^"]*"\]:::\w+|  end'),
}


def mermaid_label(text: str) -> list[str]:
    return [re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), line) for line in text.split("<br>")]


def parse_mermaid(text: str) -> tuple[dict[str, tuple[list[str], str]], list[tuple[str, str, str, list[str]]]]:
    """Nodes (id -> label lines, class) and edges (source, arrow, target, label lines);
    every line must be one of the statements the renderer writes, whole."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes, edges = {}, []
    for line in lines[1:]:
        kind = next((kind for kind, pattern in MERMAID_STATEMENTS.items() if pattern.fullmatch(line)), None)
        assert kind is not None, f"not a statement the renderer writes: {line!r}"
        match = MERMAID_STATEMENTS[kind].fullmatch(line)
        if kind == "node":
            assert match["id"] not in nodes, f"node {match['id']} defined twice"
            nodes[match["id"]] = (mermaid_label(match["label"]), match["cls"])
        elif kind == "edge":
            label = mermaid_label(match["label"]) if match["label"] is not None else []
            edges.append((match["source"], match["arrow"], match["target"], label))
    for source, _, target, _ in edges:
        assert source in nodes and target in nodes, f"edge {source} -> {target} to an undefined node"
    return nodes, edges


def by_title(nodes: dict[str, list[str]]) -> dict[str, str]:
    """Title (first label line) -> node id."""
    return {lines[0]: node_id for node_id, lines in nodes.items()}


# --- DOT and Mermaid of the example specs -----------------------------------------------------
@pytest.mark.parametrize("name", DRAWN_SPECS)
def test_graphviz_reads_the_dot_with_a_node_for_every_network_and_container(name):
    spec = load_spec(str(SPECS / name))
    result = netreconcile("graph", str(SPECS / name))
    assert result.returncode == 0, result.stderr
    nodes = dot_nodes(graphviz_json(result.stdout))
    titles = by_title(nodes)
    assert {n.name for n in spec.networks} | {c.name for c in spec.containers} <= set(titles)
    for network in spec.networks:
        assert any(str(network.subnet) in line for line in nodes[titles[network.name]])
    edges = dot_edges(graphviz_json(result.stdout))
    attachments = {(nodes[tail][0], nodes[head][0]) for tail, head, _, _ in edges if head.startswith("net_")}
    assert attachments == {(c.name, a.network) for c in spec.containers for a in c.networks}


@pytest.mark.parametrize("name", DRAWN_SPECS)
def test_mermaid_has_a_node_for_every_network_and_container(name):
    spec = load_spec(str(SPECS / name))
    result = netreconcile("graph", "-o", "mermaid", str(SPECS / name))
    assert result.returncode == 0, result.stderr
    nodes, edges = parse_mermaid(result.stdout)
    titles = {lines[0]: node_id for node_id, (lines, _) in nodes.items()}
    assert {n.name for n in spec.networks} | {c.name for c in spec.containers} <= set(titles)
    attachments = {(nodes[s][0][0], nodes[t][0][0]) for s, arrow, t, _ in edges if arrow == "---"}
    assert attachments == {(c.name, a.network) for c in spec.containers for a in c.networks}


def test_the_quickstart_shows_addresses_interfaces_macs_ports_and_links():
    nodes, edges = parse_mermaid(netreconcile("graph", "-o", "mermaid", str(SPECS / "quickstart.yaml")).stdout)
    titles = {lines[0]: node_id for node_id, (lines, _) in nodes.items()}
    assert nodes[titles["qs-web"]][0] == ["qs-web", "eth0@bridge 172.17.0.10/16 02:42:ac:11:00:0a"]
    assert nodes[titles["qs-db"]][0] == ["qs-db", "eth0@bridge 172.17.0.2/16 02:42:ac:11:00:02"]  # IPAM's
    assert nodes[titles["bridge"]][0] == ["bridge", "bridge docker0", "172.17.0.0/16 gw 172.17.0.1"]
    assert (titles["host namespace"], "==>", titles["qs-web"], ["*:8080 -> 80/tcp"]) in edges
    assert (titles["qs-web"], "-.->", titles["qs-db"], ["link as database"]) in edges


def test_networks_on_the_lan_show_their_parent_or_uplink():
    for name, network, lines in (
            ("lan-macvlan.yaml", "lan", ["lan", "macvlan", "198.51.100.0/24 gw 198.51.100.1"]),
            ("lan-uplink.yaml", "office", ["office", "bridge br-office", "uplink eth2"])):
        nodes, _ = parse_mermaid(netreconcile("graph", "-o", "mermaid", str(SPECS / name)).stdout)
        titles = {lines[0]: node_id for node_id, (lines, _) in nodes.items()}
        drawn = nodes[titles[network]][0]
        assert all(line in drawn for line in lines) and not any("None" in line for line in drawn), drawn
    nodes, _ = parse_mermaid(netreconcile("graph", "-o", "mermaid", str(SPECS / "lan-macvlan.yaml")).stdout)
    assert any(line.startswith("parent lan0 (bridge)") for lines, _ in nodes.values() for line in lines)


def test_ports_on_a_host_address_and_udp_are_drawn_from_the_host():
    nodes, edges = parse_mermaid(netreconcile("graph", "-o", "mermaid", str(SPECS / "published-ports.yaml")).stdout)
    titles = {lines[0]: node_id for node_id, (lines, _) in nodes.items()}
    ports = {label[0] for source, arrow, target, label in edges
             if (source, arrow, target) == (titles["host namespace"], "==>", titles["ex-web"])}
    assert ports == {"*:8080 -> 80/tcp", "127.0.0.1:8443 -> 443/tcp", "*:5353 -> 53/udp"}
    assert "internal" in nodes[titles["vault"]][0]
    assert "icc off" in nodes[titles["back"]][0]


def test_container_sharing_and_host_mode_are_edges():
    nodes, edges = parse_mermaid(netreconcile("graph", "-o", "mermaid", str(SPECS / "network-modes.yaml")).stdout)
    titles = {lines[0]: node_id for node_id, (lines, _) in nodes.items()}
    assert (titles["ex-sidecar"], "-.->", titles["ex-app"], ["shares its namespace"]) in edges
    assert (titles["ex-tool"], "-.->", titles["host namespace"], ["the host's namespace"]) in edges
    assert nodes[titles["ex-sealed"]][0] == ["ex-sealed", "network_mode none"]
    dot = graphviz_json(netreconcile("graph", str(SPECS / "network-modes.yaml")).stdout)
    dot_titles = by_title(dot_nodes(dot))
    assert (dot_titles["ex-sidecar"], dot_titles["ex-app"], ["shares its namespace"], "") in dot_edges(dot)


def test_aliases_are_on_the_attachment_and_ipv6_addresses_beside_ipv4():
    spec = load_spec(str(SPECS / "dual-stack.yaml"))
    nodes, edges = parse_mermaid(drawing.to_mermaid(drawing.topology(spec, build_desired(spec, State()))))
    for container in spec.containers:
        node_id = next(i for i, (lines, _) in nodes.items() if lines[0] == container.name)
        for attachment in container.networks:
            if spec.network(attachment.network).ipv6:
                assert any(":" in line.split()[-2] for line in nodes[node_id][0][1:]), nodes[node_id]
            for alias in attachment.aliases:
                assert any(s == node_id and alias in " ".join(label) for s, _, _, label in edges)


def test_the_output_is_sorted_whatever_the_order_of_the_spec_and_of_the_state():
    spec = load_spec(str(SPECS / "two-networks.yaml"))
    desired = build_desired(spec, State())  # the addresses: those the spec's order gives
    reordered = Spec(spec.path, networks=tuple(reversed(spec.networks)), containers=tuple(reversed(spec.containers)))
    first = drawing.topology(spec, desired)
    second = drawing.topology(reordered, State(dict(reversed(desired.objects.items()))))
    assert drawing.to_dot(first) == drawing.to_dot(second)
    assert drawing.to_mermaid(first) == drawing.to_mermaid(second)


# --- hostile names ------------------------------------------------------------------------------
HOSTILE = [
    'q"uote', "br]ack[et", "new\nline", 'a"]; x -> y; //', "back\\slash", "\\N\\G\\L", "pipe|&amp;#35;",
    "<b>html</b><br>", "%% comment", "end", "bidi\u202egnp.exe", "cr\rtab\t", "{rec|ord}", "sp ace",
    "arrow-->x", "o--o",
]


def hostile_spec() -> Spec:
    """Names no loader would accept: the renderer must hold them anyway (it draws what it is given)."""
    networks = tuple(NetworkSpec(f"net {i} {name}", f"br{i}", IPv4Network(f"10.{i}.0.0/24"),
                                 IPv4Address(f"10.{i}.0.1")) for i, name in enumerate(HOSTILE))
    containers = []
    for i, name in enumerate(HOSTILE):
        links = (f"{HOSTILE[i - 1]}:{name}",) if i else ()
        ports = (parse_port(f"{8000 + i}:80"),) if i % 2 else ()
        mode = f"container:{HOSTILE[i - 1]}" if i == len(HOSTILE) - 1 else "bridge"
        attachments = () if mode != "bridge" else (Attachment(networks[i].name, aliases=(name,)),) + (
            (Attachment(networks[0].name, interface_name=f"e{i}"),) if i else ())
        containers.append(ContainerSpec(name, attachments, network_mode=mode, links=links if mode == "bridge" else (),
                                        ports=ports if mode == "bridge" else ()))
    return Spec("hostile.yaml", networks=networks, containers=tuple(containers))


def test_hostile_names_stay_inside_their_dot_labels():
    spec = hostile_spec()
    document = graphviz_json(drawing.to_dot(drawing.topology(spec, build_desired(spec, State()))))
    nodes = dot_nodes(document)
    titles = by_title(nodes)
    expected = {drawing.visible(n.name) for n in spec.networks} | {drawing.visible(c.name) for c in spec.containers}
    assert set(titles) == expected | {"host namespace"}
    assert len(nodes) == len(expected) + 1  # nothing injected
    for name in HOSTILE:
        assert nodes[titles[drawing.visible(name)]][0] == drawing.visible(name)
    assert drawing.visible("new\nline") == "new\\nline"
    assert drawing.visible("bidi\u202egnp.exe") == "bidi\\u202egnp.exe"
    edges = dot_edges(document)
    links = {(nodes[t][0], nodes[h][0], tuple(label)) for t, h, label, _ in edges if label and label[0].startswith("link")}
    assert links == {(drawing.visible(HOSTILE[i]), drawing.visible(HOSTILE[i - 1]), (f"link as {drawing.visible(name)}",))
                     for i, name in enumerate(HOSTILE[:-1]) if i}
    aliases = [label for _, _, label, _ in edges if label and "aliases" in label[0]]
    assert len(aliases) == len(HOSTILE) - 1


def test_hostile_names_stay_inside_their_mermaid_labels():
    spec = hostile_spec()
    nodes, edges = parse_mermaid(drawing.to_mermaid(drawing.topology(spec, build_desired(spec, State()))))
    titles = {lines[0] for lines, _ in nodes.values()}
    assert titles == ({drawing.visible(n.name) for n in spec.networks} | {drawing.visible(c.name) for c in spec.containers}
                      | {"host namespace"})
    assert len(nodes) == 2 * len(HOSTILE) + 1
    assert sum(1 for _, arrow, _, _ in edges if arrow == "-.->") == len(HOSTILE) - 1  # links and the sharing
    assert sum(1 for _, arrow, _, _ in edges if arrow == "==>") == sum(1 for i, _ in enumerate(HOSTILE[:-1]) if i % 2)


# --- drift ----------------------------------------------------------------------------------------
def test_drift_marks_missing_unexpected_and_differing_objects_with_a_legend():
    spec = load_spec(str(SPECS / "quickstart.yaml"))
    desired = build_desired(spec, State())
    db_veth = next(o for o in desired.of_kind(Veth) if o.container == "qs-db")
    # qs-web still on a network the spec no longer has (a namespace's veths go with it: not drawn apart)
    stray_veth = Veth("vethdead01", "qs-web", "old", "qs-web", "eth5", "br-old", "02:42:0a:00:00:02", 1500, 1500)
    live = State.of(
        [o for o in desired.objects.values()
         if getattr(o, "netns", None) != "qs-cache" and o.key != db_veth.key
         and not (o.kind == "address" and o.netns == "qs-db")]
        + [Netns("qs-gone"), stray_veth])
    topology = drawing.topology(spec, desired, plan(desired, live))
    document = graphviz_json(drawing.to_dot(topology))
    nodes = {o["name"]: o for o in document["objects"] if "nodes" not in o}
    titles = by_title({name: drawn_text(o) for name, o in nodes.items()})
    assert nodes[titles["qs-cache"]]["class"] == "missing"
    assert nodes[titles["qs-gone"]]["class"] == "unexpected"
    assert nodes[titles["old"]]["class"] == "unexpected"  # the network of the stray veth, not in the spec
    assert nodes[titles["qs-db"]]["class"] == "differs"  # its veth and address are missing, not itself
    assert drawn_text(nodes[titles["qs-db"]])[-1] == "differs: address"
    assert "class" not in nodes[titles["qs-web"]]
    edges = {(drawn_text(nodes[t])[0], drawn_text(nodes[h])[0]): cls for t, h, _, cls in dot_edges(document)}
    assert edges[("qs-db", "bridge")] == "missing"
    assert edges[("qs-web", "old")] == "unexpected"
    assert edges[("qs-web", "bridge")] == ""
    legend = sorted(drawn_text(o)[0] for name, o in nodes.items() if name.startswith("legend_"))
    assert legend == sorted(drawing.LEGEND.values())
    mermaid_nodes, _ = parse_mermaid(drawing.to_mermaid(topology))
    classes = {lines[0]: cls for lines, cls in mermaid_nodes.values()}
    assert (classes["qs-cache"], classes["qs-gone"], classes["qs-db"], classes["qs-web"]) == \
        ("missing", "unexpected", "differs", "container")


def test_without_drift_there_is_no_legend_and_no_marks():
    spec = load_spec(str(SPECS / "quickstart.yaml"))
    desired = build_desired(spec, State())
    dot = drawing.to_dot(drawing.topology(spec, desired, plan(desired, desired)))
    assert "class=" not in dot
    assert "legend" in dot  # --live with nothing to do: the legend still says what colours would mean
    assert "legend" not in drawing.to_dot(drawing.topology(spec, desired))


# --- errors ----------------------------------------------------------------------------------------
def test_an_invalid_spec_is_reported_at_its_location_and_nothing_is_drawn_or_made(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nnetworks:\n  n:\n    subnet: 10.0.0.0/33\n")
    state, host = tmp_path / "state", f"nr-never-{uuid.uuid4().hex[:6]}"
    for command in (["graph"], ["graph", "--live"], ["graph", "-o", "svg"], ["show"], ["show", "-o", "json"]):
        result = netreconcile("--host-netns", host, "--state-dir", str(state), *command, str(spec))
        assert result.returncode == 1 and result.stdout == "", command
        assert result.stderr.startswith(f"{spec}:4:13: networks.n.subnet: '10.0.0.0/33' is not an IPv4 network")
        assert not state.exists() and host not in netns_names(), command


# --- SVG and the README's picture ---------------------------------------------------------------
def svg_texts(svg: str) -> tuple[list[str], list[str]]:
    """What a Graphviz version does not change in an SVG: the titles of its nodes and edges
    and the texts drawn, in order (coordinates, sizes and the version comment do vary)."""
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    titles = [g.find(f"{ns}title").text for g in root.iter(f"{ns}g") if g.get("class") in ("node", "edge")]
    return titles, [text.text or "" for text in root.iter(f"{ns}text")]


def test_svg_is_graphviz_drawing_of_the_dot():
    result = netreconcile("graph", "-o", "svg", str(SPECS / "quickstart.yaml"))
    assert result.returncode == 0, result.stderr
    titles, texts = svg_texts(result.stdout)
    assert {"ctr_qs_web", "ctr_qs_db", "ctr_qs_cache", "net_bridge", "host"} <= set(titles)
    assert "qs-web" in texts and "*:8080 -> 80/tcp" in texts


def test_svg_without_graphviz_names_the_package_to_install(tmp_path):
    result = netreconcile("graph", "-o", "svg", str(SPECS / "quickstart.yaml"), env={"PATH": str(tmp_path)})
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error: -o svg needs Graphviz's `dot` command" in result.stderr
    assert "install the graphviz package" in result.stderr


def test_a_failing_dot_is_an_error_with_its_message(tmp_path):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\nwhile read -r line; do :; done\necho 'Error: boom' >&2\nexit 3\n")
    fake.chmod(0o755)
    result = netreconcile("graph", "-o", "svg", str(SPECS / "quickstart.yaml"), env={"PATH": str(tmp_path)})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: Graphviz's dot failed (exit 3): Error: boom\n"


def test_the_readme_picture_is_drawn_from_the_quickstart_spec_as_it_is():
    drawn = netreconcile("graph", "specs/quickstart.yaml")
    assert drawn.returncode == 0, drawn.stderr
    assert (DOCS / "quickstart.dot").read_text() == drawn.stdout, f"stale picture: run {REGENERATE}"
    fresh = subprocess.run(["dot", "-Tsvg", str(DOCS / "quickstart.dot")], capture_output=True, text=True, check=True)
    assert svg_texts((DOCS / "quickstart.svg").read_text()) == svg_texts(fresh.stdout), \
        f"docs/quickstart.svg was not drawn from docs/quickstart.dot: run {REGENERATE}"
    assert "![" in (REPO / "README.md").read_text() and "docs/quickstart.svg" in (REPO / "README.md").read_text()
