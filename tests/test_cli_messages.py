"""Messages a user can act on: spec text printed literally, and missing privileges named."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.kernel

PADDING = "".join(f"# line {n}\n" for n in range(5, 100))
# the container's key sits at line 100, column 3: its location reads "<file>:100:3"
AT_LINE_100 = ("version: 1\nnetworks:\n  front: {bridge: '@br', subnet: 172.30.9.0/24}\ncontainers:\n" + PADDING
               + "  '@c0': {networks: [front]}\n")


def test_spec_text_is_printed_literally_never_as_markup_or_emoji(sandbox):
    spec = sandbox.write_spec(AT_LINE_100, "[bold]spec100.yaml")
    subprocess.run(["ip", "netns", "add", sandbox.host], check=True)
    subprocess.run(["ip", "netns", "add", sandbox.name("c0")], check=True)  # not netreconcile's: a conflict
    location = f"{spec}:100:3"

    plan = sandbox.run("plan", spec=spec)

    assert plan.code == 1
    assert f"conflict: {location}: network namespace {sandbox.name('c0')} exists and is not managed" in plan.stdout
    assert f"+ netns {sandbox.name('c0')}: missing  ({location})" in plan.stdout
    assert "\N{HUNDRED POINTS SYMBOL}" not in plan.stdout
