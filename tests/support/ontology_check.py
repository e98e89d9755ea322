"""One check for every consensus test: the stored or computed consensus annotations fit the ontology,
by the product's own validation (``Ontology.check``, the check a direct upload gets)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from app.core.annotations import Annotation
from app.core.ontology import Ontology

if TYPE_CHECKING:
    from app.api import Project


def assert_ontology_allows(where: Project | Ontology, annotations: Iterable[Annotation]) -> None:
    """Fail, naming every problem, unless each annotation's kind, label and attributes fit the
    ontology of ``where`` (a project: its current ontology)."""
    ontology = where if isinstance(where, Ontology) else where.ontology
    problems = [
        f"{a.kind.value} {a.label!r} frame {a.frame} (id {a.id}): {p}"
        for a in annotations
        for p in ontology.check(a)
    ]
    assert not problems, "the ontology refuses: " + "; ".join(problems)
