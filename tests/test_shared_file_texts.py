"""Container file texts held in parts (reconciler.state.model.Text): the discovery section
every member of a network lists is one object, in the live state read and in the desired
state, and yet any difference in it, a hand edit of one file, is found."""

from __future__ import annotations

import dataclasses
import os

from hypothesis import given
from hypothesis import strategies as st

from reconciler.kernel import observe_containers
from reconciler.kernel.observe_cache import _files_again
from reconciler.spec.loader import load_spec_text
from reconciler.state.desired import build_desired
from reconciler.state.model import SHARED_FROM, File, State, Text
from reconciler.state.planner import plan
from tests.test_observe_files import FilesOnlySession

NAMES = [f"c{number}" for number in range(12)]
SPEC = "version: 1\nnetworks:\n  front: {subnet: 10.88.0.0/24}\ncontainers:\n" + "".join(
    f"  {name}: {{networks: [front]}}\n" for name in NAMES)


def written(desired: State, tmp_path) -> None:
    """The desired state's files as apply writes them."""
    for obj in desired.of_kind(File):
        (tmp_path / obj.netns).mkdir(exist_ok=True)
        (tmp_path / obj.netns / obj.filename).write_text(obj.content)


def observed(tmp_path, desired: State) -> State:
    """The live state of the files (nothing else): read as a full observation reads them."""
    objects, _, _ = observe_containers.read_containers(FilesOnlySession(tmp_path), NAMES, set(NAMES), {})
    others = [obj for obj in desired.objects.values() if not isinstance(obj, File)]
    return State.of([*others, *objects])


def test_the_hosts_files_read_share_one_discovery_section_and_the_desired_state_takes_them(tmp_path):
    spec = load_spec_text(SPEC, "spec.yaml")
    desired = build_desired(spec, State())
    written(desired, tmp_path)
    live = observed(tmp_path, desired)
    hosts = [live.objects[("file", name, "hosts")].text for name in NAMES]
    assert all(len(text) == 2 and text[1].startswith(SHARED_FROM) for text in hosts)
    assert len({id(text[1]) for text in hosts}) == 1  # one section object for the twelve files
    again = build_desired(spec, live)
    assert all(again.objects[("file", name, "hosts")].text is text for name, text in zip(NAMES, hosts))
    assert not plan(again, live).actions


def test_a_hand_edit_in_the_shared_section_of_one_hosts_file_is_found_and_only_that_file_rewritten(tmp_path):
    spec = load_spec_text(SPEC, "spec.yaml")
    desired = build_desired(spec, State())
    written(desired, tmp_path)
    path = tmp_path / "c5" / "hosts"
    path.write_text(path.read_text().replace("\tc9\n", "\tc9 intruder\n"))
    live = observed(tmp_path, desired)
    edited = live.objects[("file", "c5", "hosts")].text
    assert edited[1] is not live.objects[("file", "c4", "hosts")].text[1]
    result = plan(build_desired(spec, live), live)
    assert [(action.op, action.obj.name) for action in result.actions] == [("update", "c5/hosts")]
    assert "intruder" in result.actions[0].reason
    assert "intruder" not in result.actions[0].obj.content


def test_a_hand_edit_before_the_section_is_found_too(tmp_path):
    spec = load_spec_text(SPEC, "spec.yaml")
    desired = build_desired(spec, State())
    written(desired, tmp_path)
    path = tmp_path / "c3" / "hosts"
    path.write_text("# mine\n" + path.read_text())
    live = observed(tmp_path, desired)
    result = plan(build_desired(spec, live), live)
    assert [(action.op, action.obj.name) for action in result.actions] == [("update", "c3/hosts")]


# texts made of pieces of the marker, whole or cut anywhere, so that it may begin in the head
TEXTS = st.lists(st.sampled_from(["a", "\n", "#", SHARED_FROM, SHARED_FROM[:7], SHARED_FROM[5:], SHARED_FROM[1:]]),
                 max_size=6).map("".join)


@given(TEXTS, TEXTS)
def test_a_text_in_parts_equals_another_exactly_when_their_whole_texts_are_equal(head, shared):
    joined = Text.joined(head, shared)
    assert str(joined) == head + shared
    assert joined == Text.of(head + shared)
    other = Text.of(head + shared + "x")
    assert (joined == other) is False


def test_a_file_made_from_a_string_or_replaced_by_content_holds_the_text_in_parts():
    text = "127.0.0.1\tlocalhost\n" + SHARED_FROM + "10.88.0.2\tc0\n"
    made = File("c0", "hosts", text)
    assert made.text == ("127.0.0.1\tlocalhost\n", SHARED_FROM + "10.88.0.2\tc0\n")
    assert made.content == text
    changed = dataclasses.replace(made, content=text + "x\n")
    assert changed.content == text + "x\n" and changed != made
    assert [name for name, _, _ in changed.differences(made)] == ["content"]


def test_files_watch_reads_again_keep_the_kept_text_when_unchanged_and_not_when_edited(tmp_path):
    spec = load_spec_text(SPEC, "spec.yaml")
    desired = build_desired(spec, State())
    written(desired, tmp_path)
    live = observed(tmp_path, desired)
    kept = {name: ([obj for obj in live.objects.values() if isinstance(obj, File) and obj.netns == name], [])
            for name in ("c1", "c2")}
    path = tmp_path / "c2" / "hosts"
    path.write_text(path.read_text().replace("\tc7\n", "\tc7 intruder\n"))
    session = FilesOnlySession(tmp_path)
    etc_fd = session.open_etc_netns()
    try:
        again = {name: {obj.filename: obj for obj in _files_again(etc_fd, session, name, kept)[0]}
                 for name in ("c1", "c2")}
    finally:
        os.close(etc_fd)
    assert again["c1"]["hosts"].text is live.objects[("file", "c1", "hosts")].text
    assert again["c2"]["hosts"] != live.objects[("file", "c2", "hosts")]
    assert "intruder" in again["c2"]["hosts"].content
    assert again["c2"]["hostname"].text is live.objects[("file", "c2", "hostname")].text
