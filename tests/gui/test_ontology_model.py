"""The ontology being edited, without widgets: new classes get free colours, keys and names; moves
and removals say which row to select; the check names each problem's field and sums them up."""

from __future__ import annotations

import pytest

from app.core.errors import ValidationError
from app.core.ontology import DEFAULT_COLORS
from app.editor.ontology_model import NO_CLASSES, OntologyDraft


def test_an_empty_draft_is_invalid_and_says_what_to_add() -> None:
    draft = OntologyDraft({})
    check = draft.check()
    assert not check.valid and check.whole == NO_CLASSES and check.summary == NO_CLASSES


def test_new_classes_take_free_colours_keys_and_names() -> None:
    draft = OntologyDraft({"2": "tool brush"})
    draft.load(
        {"classes": [{"name": "class 2", "color": DEFAULT_COLORS[0], "hotkey": "1", "kinds": ["box"]}]}
    )
    assert draft.add_class() == 1
    new = draft.classes[1]
    assert new["name"] == "class 3" and new["color"] != DEFAULT_COLORS[0] and new["hotkey"] == "2"
    check = draft.check()  # "2" is the brush tool's key
    assert check.problems[1] == {"hotkey": "hotkey 2 is taken by tool brush"}
    assert check.summary == "1 problem to fix: hotkey 2 is taken by tool brush" and not check.valid
    draft.classes[1]["hotkey"] = "3"
    assert draft.check().valid and draft.check().summary == "2 classes, valid"
    assert [c.name for c in draft.ontology().classes] == ["class 2", "class 3"]


def test_moves_and_removals_return_the_row_to_select() -> None:
    draft = OntologyDraft({})
    draft.load({"version": 4, "classes": [{"name": n, "color": "#112233"} for n in ("a", "b", "c")]})
    assert draft.version == 4 and draft.plain()["version"] == 4
    assert draft.move_class(0, -1) is None  # nothing above the first
    assert draft.move_class(0, 1) == 1 and [d["name"] for d in draft.classes] == ["b", "a", "c"]
    assert draft.row_of("c") == 2 and draft.where(2) == "class 'c'"
    assert draft.remove_class(2) == 1 and draft.remove_class(5) is None
    with pytest.raises(ValidationError, match="no class 'c'"):
        draft.row_of("c")
