"""The desired state holds one copy of each unchanged container file: a file whose live
text is the one rendered takes the live text (with thousands of containers that see a
thousand names each, the hosts files are a hundred megabytes)."""

from __future__ import annotations

import dataclasses

from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import build_desired
from reconciler.state.model import File, State

SPEC = """\
version: 1
networks:
  front: {subnet: 10.88.0.0/24}
containers:
  web: {networks: [front]}
  db: {networks: [front]}
"""


def read_back(state: State, changed: dict[tuple, str] = {}) -> State:
    """`state` as observation gives it: every file text a string of its own."""
    return State.of(dataclasses.replace(o, content=changed.get(o.key, "".join(o.content))) if isinstance(o, File)
                    else o for o in state.objects.values())


def test_unchanged_files_share_the_live_text_and_changed_ones_are_rendered():
    spec = load_spec_text(SPEC, "spec.yaml")
    edited = ("file", "db", "hosts")
    live = read_back(build_desired(spec, State()), {edited: "edited by hand\n"})
    desired = build_desired(spec, live)
    files = desired.of_kind(File)
    assert len(files) == 6
    for obj in files:
        if obj.key == edited:
            assert obj.content != live.objects[edited].content and "db" in obj.content
        else:
            assert obj.text is live.objects[obj.key].text, obj.key
