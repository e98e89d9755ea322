"""The ontology being edited, without widgets: its class drafts in order, its version, and what is
wrong with it.

The editor's widgets show an ``OntologyDraft`` and call its methods; ``check()`` says per class and
field what to fix, and whether the whole passes ``Ontology.from_dict`` (the core has the last word).
Ontology JSON files are exactly ``Ontology.to_dict()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.errors import ValidationError
from app.core.ontology import DEFAULT_COLORS, Ontology
from app.editor.ontology_drafts import Draft, class_draft, class_out, class_problems, normal_key

if TYPE_CHECKING:
    from app.editor.actions import Binding

NO_CLASSES = "add at least one class (Ctrl+N)"


def reserved_keys(bindings: Iterable[Binding] = ()) -> dict[str, str]:
    """Keys the editor already uses (tool keys, view keys, the window's bindings): key -> action."""
    from app.editor.actions import CLASS_PREFIX
    from app.editor.tool_registry import TOOLS

    keys = {spec.shortcut: f"tool {spec.name}" for spec in TOOLS}
    keys.update({"F": "fit to window", "K": "play video", ".": "next frame", ",": "previous frame"})
    keys.update({"+": "zoom in", "=": "zoom in", "-": "zoom out", "?": "help", "[": "size", "]": "size"})
    for binding in bindings:
        if not binding.id.startswith(CLASS_PREFIX):  # class hotkeys are what is being edited
            keys.update({k: binding.text for k in binding.keys.split(" or ") if k})
    return {normal_key(k): what for k, what in keys.items()}


@dataclass(frozen=True)
class DraftCheck:
    """What ``OntologyDraft.check`` found."""

    problems: list[dict[str, str]]  # per class, field -> message (empty dicts when fine)
    whole: str  # what is wrong with the ontology as a whole ("" when nothing)
    summary: str  # one line for the foot of the editor

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.problems)

    @property
    def valid(self) -> bool:
        return not self.whole and not self.count


class OntologyDraft:
    """Class drafts (the JSON form, editable in place) and the version they will be stored under."""

    def __init__(self, reserved: Mapping[str, str]) -> None:
        self.reserved = dict(reserved)  # key -> what already uses it
        self.classes: list[Draft] = []
        self.version = 1

    def load(self, ontology: Ontology | Mapping[str, Any]) -> None:
        data = ontology.to_dict() if isinstance(ontology, Ontology) else dict(ontology)
        self.version = max(1, int(data.get("version", 1)))
        self.classes = [class_draft(c) for c in data.get("classes", ())]

    def plain(self) -> dict[str, Any]:
        return {"version": self.version, "classes": [class_out(d) for d in self.classes]}

    def ontology(self) -> Ontology:
        """The drafts as an ``Ontology`` (raises ValidationError while they are invalid)."""
        return Ontology.from_dict(self.plain(), version=self.version)

    def where(self, row: int) -> str:
        """How messages about the class at ``row`` name it."""
        name = self.classes[row]["name"].strip() if 0 <= row < len(self.classes) else ""
        return f"class {name or f'#{row + 1}'!r}"

    def row_of(self, name: str) -> int:
        for row, draft in enumerate(self.classes):
            if draft["name"].strip() == name:
                return row
        raise ValidationError(f"no class {name!r} in the editor")

    # --- changes: each returns the row to select afterwards -----------------------------------------
    def add_class(self) -> int:
        """A new class with an unused colour, the first free digit hotkey and a fresh name."""
        used_colors = {d["color"].lower() for d in self.classes}
        color = next((c for c in DEFAULT_COLORS if c not in used_colors), DEFAULT_COLORS[0])
        used_keys = {normal_key(d["hotkey"]) for d in self.classes if d["hotkey"].strip()}
        key = next((str(n) for n in range(1, 10) if str(n) not in used_keys), "")
        names = {d["name"].strip() for d in self.classes}
        count = len(self.classes)
        name = next(f"class {n}" for n in range(count + 1, count + 100) if f"class {n}" not in names)
        kinds = ["polygon", "mask"]
        self.classes.append(class_draft({"name": name, "color": color, "hotkey": key, "kinds": kinds}))
        return len(self.classes) - 1

    def remove_class(self, row: int) -> int | None:
        """None when ``row`` is no class (nothing changed)."""
        if not 0 <= row < len(self.classes):
            return None
        del self.classes[row]
        return min(row, len(self.classes) - 1)

    def move_class(self, row: int, step: int) -> int | None:
        """None when the class cannot move that way (nothing changed)."""
        target = row + step
        if not (0 <= row < len(self.classes) and 0 <= target < len(self.classes)):
            return None
        self.classes[row], self.classes[target] = self.classes[target], self.classes[row]
        return target

    # --- checks ---------------------------------------------------------------------------------
    def check(self) -> DraftCheck:
        problems = class_problems(self.classes, self.reserved)
        whole = ""
        if not any(problems):
            try:
                Ontology.from_dict(self.plain())  # the core has the last word
            except (ValidationError, ValueError) as exc:
                whole = str(exc)
        if not self.classes:
            whole = NO_CLASSES
        count = sum(len(p) for p in problems)
        if whole:
            summary = whole
        elif count:
            first = next(msg for p in problems for msg in p.values())
            summary = f"{count} problem{'s' if count > 1 else ''} to fix: {first}"
        else:
            summary = f"{len(self.classes)} classes, valid"
        return DraftCheck(problems, whole, summary)


def read_ontology_json(path: str | Path) -> Ontology:
    """An ontology file, validated by the core; raises SitelabelError on a bad file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    return Ontology.from_dict(data)


def write_ontology_json(path: str | Path, ontology: Ontology) -> None:
    """Exactly ``Ontology.to_dict()``; raises ValidationError when the file cannot be written."""
    text = json.dumps(ontology.to_dict(), indent=2, ensure_ascii=False)
    try:
        Path(path).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot write {path}: {exc.strerror or exc}") from None
