"""Hostile input: every spec ends in a clear error with a location, or a valid spec, and
names reach /run/netns and /etc/netns only after validation."""

from __future__ import annotations

import pytest

from reconciler.errors import SpecError
from reconciler.spec.loader import load_spec, load_spec_text
from tests.conftest import netns_names

NET = "version: 1\nnetworks:\n  front: {subnet: 10.1.0.0/24}\ncontainers:\n"

LAUGHS = "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9))

HOSTILE = [
    ("billion laughs", LAUGHS, "spec.yaml:3:", "alias"),
    ("deep nesting", "version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", "spec.yaml:2:", "nest"),
    ("a name with a slash", NET + "  ../../etc:\n    networks: [front]\n", "spec.yaml:5:3:", "not a valid container name"),
    ("a name that is dot-dot", NET + "  '..':\n    networks: [front]\n", "spec.yaml:5:3:", "not a valid container name"),
    ("a unicode name", NET + "  wéb:\n    networks: [front]\n", "spec.yaml:5:3:", "not a valid container name"),
    ("a bridge name with a slash", "version: 1\nnetworks:\n  front: {bridge: a/b, subnet: 10.1.0.0/24}\n",
     "spec.yaml:3:19:", "not a valid bridge name"),
    ("a duplicate key", NET + "  web:\n    networks: [front]\n  web:\n    networks: [front]\n", "spec.yaml:7:3:",
     "duplicate key"),
    ("a huge number", "version: 1\nnetworks:\n  front: {subnet: 10.1.0.0/24, mtu: " + "9" * 400 + "}\n",
     "spec.yaml:3:", "mtu"),
    ("a NUL byte", "version: 1\nnetworks:\n  front: {subnet: \"10.1.0.0/24\\0\"}\n", "spec.yaml:3:", "subnet"),
    ("a tag", "version: 1\nnetworks: !!python/object:os.system {}\n", "spec.yaml:2:11:", "unsupported yaml value"),
    ("a port number beyond 16 bits", NET + "  web:\n    networks: [front]\n    ports: ['99999999999999999999:80']\n",
     "spec.yaml:7:13:", "is not a host port"),
    ("thousands of clashing ports", NET + "  web:\n    networks: [front]\n    ports:\n" + "      - '80:80'\n" * 20000,
     "spec.yaml:9:9:", "already published"),
]


@pytest.mark.parametrize(("text", "location", "fragment"), [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_hostile_specs_end_in_a_located_error(text, location, fragment):
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, "spec.yaml")
    first = str(caught.value.problems[0])
    assert first.startswith(location), first
    assert fragment in str(caught.value).lower(), str(caught.value)[:500]


def test_a_10_mb_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("version: 1\ncontainers:\n" + "  c: {networks: [front]}\n" * 400_000)
    assert path.stat().st_size > 10_000_000
    with pytest.raises(SpecError, match="larger than 2 MiB"):
        load_spec(path)


@pytest.mark.kernel
def test_names_that_could_escape_their_directory_never_reach_the_filesystem(sandbox):
    spec = sandbox.write_spec(NET + "  ../@escape:\n    networks: [front]\n  '@ok/../../x':\n    networks: [front]\n")
    result = sandbox.run("apply", spec=spec)
    assert result.code == 1 and "nothing was changed" in result.stderr
    assert not {n for n in netns_names() if sandbox.prefix in n}
