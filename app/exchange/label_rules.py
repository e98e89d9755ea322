"""Which labels an export holds: the ``labels`` option and how annotation sources are told apart.

``final`` (the default)
    Per item, the labels a person signed off (app.exchange.final_labels has the rule per status).
``all``
    Every live annotation of the selected items: every labeler's, the consensus, model pre-labels,
    imports and tracker output (what exports held before #17; project-json's default: an archive).
``labeler:NAME``
    NAME's own labels (source ``human``): drawn by NAME, or a pre-label NAME accepted or edited. The
    model pre-labels NAME ran stay out unless ``include_prelabels``.
``source:SOURCE``
    Annotations whose source is SOURCE or lies below it: ``source:human``, ``source:consensus``,
    ``source:model`` (every model), ``source:model:NAME`` (every version), ``source:model:NAME@VER``,
    ``source:import`` (labels brought in with import-labels), ``source:tracker``.

A source names who made an annotation: ``human`` (a person; a pre-label a person accepted or edited
becomes theirs and ``human``), ``consensus`` (a reviewer chose or merged it), ``model:NAME@VER``
(a pre-label nobody touched), ``tracker:ENGINE`` (tracker output stored through the API; the editor
stores the labeler's tracked frames as ``human``) and ``import:FORMAT`` (import-labels).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.annotations import HUMAN
from app.core.errors import ValidationError
from app.core.records import CONSENSUS_SOURCE

FINAL, ALL, LABELER, SOURCE = "final", "all", "labeler", "source"
KINDS = (FINAL, ALL, LABELER, SOURCE)
#: machine proposals a person has not accepted: ``include_prelabels`` adds them
PRELABEL_SOURCES = ("model", "tracker")
IMPORT = "import"
USAGE = "final, all, labeler:NAME or source:SOURCE (human, consensus, model, model:NAME@VER, import ...)"


def source_kind(source: str) -> str:
    """``human``, ``consensus``, ``model``, ``tracker``, ``import`` or the source's first part."""
    return source.split(":", 1)[0]


def is_prelabel(source: str) -> bool:
    """An untouched machine proposal: a model pre-label or tracker output (never ``human``)."""
    return source_kind(source) in PRELABEL_SOURCES


def is_person_made(source: str) -> bool:
    """Labels people made or brought in: ``human`` and imported labels (``import:FORMAT``)."""
    return source == HUMAN or source_kind(source) == IMPORT


def source_matches(pattern: str, source: str) -> bool:
    """``source`` is ``pattern`` or lies below it (``model`` holds ``model:a@1``; ``model:a`` holds
    ``model:a@2``), never a mere prefix (``model:a`` does not hold ``model:ab@1``)."""
    return source == pattern or source.startswith((f"{pattern}:", f"{pattern}@"))


@dataclass(frozen=True)
class LabelRule:
    """A parsed ``labels`` option: ``kind`` one of :data:`KINDS`, ``value`` the name or source."""

    kind: str = FINAL
    value: str = ""

    @classmethod
    def parse(cls, text: str | None) -> LabelRule:
        """``None`` and ``""`` are ``final``; ValidationError for anything not in :data:`USAGE`."""
        word = (text or FINAL).strip()
        head, _, rest = word.partition(":")
        head, rest = head.strip().lower(), rest.strip()
        if head in (FINAL, ALL) and not rest:
            return cls(head)
        if head in (LABELER, SOURCE) and rest:
            return cls(head, rest)
        raise ValidationError(f"unknown labels choice {text!r}; use {USAGE}")

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else self.kind

    def describe(self) -> str:
        """How provenance and reports name the rule."""
        if self.kind == LABELER:
            return f"the labels of {self.value}"
        if self.kind == SOURCE:
            return f"source {self.value}"
        return "every label" if self.kind == ALL else "final labels"


CONSENSUS_RULE = LabelRule(SOURCE, CONSENSUS_SOURCE)  # what ``consensus="consensus"`` exports
