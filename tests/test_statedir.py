"""The state directory's record of namespaces: formats and damage."""

from __future__ import annotations

import os

import pytest

from reconciler.errors import PrerequisiteError
from reconciler.kernel.statedir import StateDir


def test_record_round_trips(tmp_path):
    state = StateDir(tmp_path, "host1")
    assert state.recorded_netns() == {}
    state.write_netns_record({"web": 42, "db": 0})
    assert state.recorded_netns() == {"db": 0, "web": 42}
    assert (tmp_path / "netns-host1" / "namespaces.json").is_file()


def test_a_record_is_written_0600_and_never_through_a_link_planted_at_its_temporary_name(tmp_path):
    state = StateDir(tmp_path, "host1")
    state.write_netns_record({"web": 42})
    assert (tmp_path / "netns-host1" / "namespaces.json").stat().st_mode & 0o777 == 0o600
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (tmp_path / "netns-host1" / f".namespaces.json.{os.getpid()}.tmp").symlink_to(victim)
    state.write_netns_record({"web": 43})
    assert victim.read_text() == "untouched\n"
    assert state.recorded_netns() == {"web": 43}
    assert sorted(path.name for path in (tmp_path / "netns-host1").iterdir()) == ["namespaces.json"]


def test_the_first_format_of_names_only_is_still_read(tmp_path):
    state = StateDir(tmp_path, None)
    state.path.mkdir(parents=True)
    (state.path / "namespaces.json").write_text('{"namespaces": ["web", "db"]}')
    assert state.recorded_netns() == {"web": 0, "db": 0}


@pytest.mark.parametrize("text", ["{", '{"other": 1}', '{"namespaces": {"web": "x"}}', "[]"])
def test_a_damaged_record_is_a_clear_error(tmp_path, text):
    state = StateDir(tmp_path, "h")
    state.path.mkdir(parents=True)
    (state.path / "namespaces.json").write_text(text)
    with pytest.raises(PrerequisiteError, match="is damaged"):
        state.recorded_netns()


def test_an_empty_record_leaves_no_file(tmp_path):
    state = StateDir(tmp_path, "h")
    state.write_netns_record({"web": 42})
    state.write_netns_record({})
    assert not (state.path / "namespaces.json").exists()
    assert state.recorded_netns() == {}
