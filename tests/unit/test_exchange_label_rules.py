"""The export's ``labels`` option: parsing, source matching, and how the older filters map onto it."""

from __future__ import annotations

import pytest

from app.core.errors import ValidationError
from app.exchange.final_labels import rule_for
from app.exchange.label_rules import LabelRule, is_person_made, is_prelabel, source_matches
from app.exchange.selection import ExportFilters


def test_labels_choices_parse_and_refuse_the_rest() -> None:
    assert LabelRule.parse(None) == LabelRule.parse("") == LabelRule("final")
    assert LabelRule.parse(" ALL ") == LabelRule("all")
    assert LabelRule.parse("labeler:lee") == LabelRule("labeler", "lee")
    assert LabelRule.parse("source:model:liver@3").value == "model:liver@3"
    assert LabelRule.parse("source:model:liver@3").text == "source:model:liver@3"
    for bad in ("mine", "labeler:", "source", "final:x", "labeler"):
        with pytest.raises(ValidationError, match="unknown labels choice"):
            LabelRule.parse(bad)


def test_a_source_holds_what_lies_below_it_never_a_mere_prefix() -> None:
    assert source_matches("model", "model:liver@3") and source_matches("model:liver", "model:liver@3")
    assert source_matches("model:liver@3", "model:liver@3") and source_matches("import", "import:coco")
    assert not source_matches("model:liver", "model:liver2@1") and not source_matches("human", "humane")
    assert is_prelabel("model:a@1") and is_prelabel("tracker:ncc") and not is_prelabel("human")
    assert not is_prelabel("import:coco") and not is_prelabel("consensus")
    assert is_person_made("human") and is_person_made("import:yolo") and not is_person_made("model:a@1")


def test_the_older_filters_map_onto_labels() -> None:
    assert rule_for(ExportFilters(), "coco") == LabelRule("final")
    assert rule_for(ExportFilters(), "project-json") == LabelRule("all")  # an archive keeps everything
    assert rule_for(ExportFilters(labeler="lee"), "coco") == LabelRule("labeler", "lee")
    assert rule_for(ExportFilters(labeler="lee", labels="labeler:lee"), "coco") == LabelRule("labeler", "lee")
    assert rule_for(ExportFilters(consensus="consensus"), "coco") == LabelRule("source", "consensus")
    with pytest.raises(ValidationError, match="disagree"):
        rule_for(ExportFilters(labeler="lee", labels="all"), "coco")
    with pytest.raises(ValidationError, match="disagrees"):
        rule_for(ExportFilters(consensus="consensus", labels="labeler:lee"), "coco")
    with pytest.raises(ValidationError, match="unknown labels choice"):
        ExportFilters(labels="everything").check_available()
