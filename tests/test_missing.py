"""MISSING, the marker of a live object's field that could not be found: one object with a
readable repr, shown as "?" in plan text and JSON as it always was."""

from __future__ import annotations

import copy
import json
import pickle

from reconciler.render.plantext import action_document, action_line
from reconciler.state.model import MISSING, Missing, NetnsAlias, State
from reconciler.state.planner import plan


def test_missing_is_one_marker_with_a_readable_repr():
    assert repr(MISSING) == "MISSING" and Missing() is MISSING
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
    assert copy.deepcopy(MISSING) is MISSING and copy.copy(MISSING) is MISSING
    assert isinstance(MISSING, Missing) and not isinstance("?", Missing)


def test_missing_reads_as_a_question_mark_in_plan_text_and_json():
    live = State.of([NetnsAlias("web2", MISSING)])
    desired = State.of([NetnsAlias("web2", "web")])
    action = next(a for a in plan(desired, live).actions if a.op == "delete")
    assert action_line(action) == "- alias web2 -> ?: replaced: target '?' -> 'web'"
    assert json.dumps(action_document(action)["description"]) == '"web2 -> ?"'
    assert action_document(action)["name"] == "web2"
