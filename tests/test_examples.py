"""The examples in specs/ validate, and apply as documented (in a throwaway namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.loader import load_spec

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_spec_is_valid(path):
    spec = load_spec(path)
    assert spec.containers


def renamed(text: str, prefix: str) -> str:
    """Container and bridge names made unique so the test cannot meet a real demo."""
    text = re.sub(r"\b(qs|ex)-", f"{prefix}-", text)
    return re.sub(r"bridge: (docker0|br-front|br-back)", lambda m: f"bridge: {prefix}{len(m.group(1))}", text)


@pytest.mark.kernel
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_spec_applies_and_reapplies_as_a_no_op(sandbox, path):
    spec = sandbox.tmp / path.name
    spec.write_text(renamed(path.read_text(), sandbox.prefix))
    assert sandbox.apply(spec)["actions"]
    assert sandbox.apply(spec)["actions"] == []


@pytest.mark.kernel
def test_two_networks_example_addresses_are_as_documented(sandbox):
    path = next(p for p in SPECS if p.name == "two-networks.yaml")
    spec = sandbox.tmp / path.name
    spec.write_text(renamed(path.read_text(), sandbox.prefix))
    sandbox.apply(spec)
    api = sandbox.addresses(sandbox.name("api"))
    assert api["eth0"] == ["10.10.0.2/24"] and api["eth1"] == ["10.20.0.1/24"]
    assert sandbox.links(sandbox.name("db"))["eth0"]["address"] == "02:42:0a:14:00:63"
    assert sandbox.links(sandbox.name("db"))["eth0"]["mtu"] == 1400
    assert "1 received" in sandbox.in_ns("api", "ping -c1 -W2 10.20.0.99")
