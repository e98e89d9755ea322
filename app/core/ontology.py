"""The labeling interface: classes, colours, hotkeys, geometry kinds and nested attributes.

Plain-data form (stable, see DESIGN.md)::

    {"classes": [{"name": "liver", "color": "#c0504d", "hotkey": "1", "kinds": ["polygon", "mask"],
                  "attributes": [{"name": "confidence", "type": "enum", "options": ["sure", "unsure"],
                                  "children": {"unsure": [{"name": "why", "type": "text"}]}}]}]}

``children`` holds nested classifications: attributes asked only when the parent has that value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.core.annotations import Annotation, Kind
from app.core.errors import ValidationError

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLORS = (
    "#e6194b",
    "#3cb44b",
    "#ffe119",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#46f0f0",
    "#f032e6",
    "#bcf60c",
    "#fabebe",
    "#008080",
    "#e6beff",
)


class AttributeType(StrEnum):
    ENUM = "enum"
    BOOL = "bool"
    NUMBER = "number"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    name: str
    type: AttributeType
    options: tuple[str, ...] = ()
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    children: Mapping[str, tuple[AttributeSpec, ...]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> AttributeSpec:
        name = str(data.get("name", "")).strip()
        if not name:
            raise ValidationError(f"{where}: an attribute needs a name")
        try:
            kind = AttributeType(data.get("type", "text"))
        except ValueError:
            raise ValidationError(
                f"{where}.{name}: unknown attribute type {data.get('type')!r}; "
                f"expected one of {[t.value for t in AttributeType]}"
            ) from None
        options = tuple(str(o) for o in data.get("options", ()))
        if kind is AttributeType.ENUM and not options:
            raise ValidationError(f"{where}.{name}: an enum attribute needs options")
        if len(set(options)) != len(options):
            raise ValidationError(f"{where}.{name}: enum options repeat")
        children: dict[str, tuple[AttributeSpec, ...]] = {}
        for value, specs in dict(data.get("children") or {}).items():
            if kind is AttributeType.ENUM and value not in options:
                raise ValidationError(f"{where}.{name}: nested attributes under unknown option {value!r}")
            children[str(value)] = _attribute_list(specs, f"{where}.{name}={value}")
        return cls(
            name=name,
            type=kind,
            options=options,
            required=bool(data.get("required", False)),
            minimum=_opt_float(data.get("min")),
            maximum=_opt_float(data.get("max")),
            children=children,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type.value}
        if self.options:
            out["options"] = list(self.options)
        if self.required:
            out["required"] = True
        if self.minimum is not None:
            out["min"] = self.minimum
        if self.maximum is not None:
            out["max"] = self.maximum
        if self.children:
            out["children"] = {k: [c.to_dict() for c in v] for k, v in self.children.items()}
        return out

    def check(self, value: Any, where: str) -> list[str]:
        """Problems with ``value`` for this attribute (empty when it fits), nested ones included."""
        problems: list[str] = []
        if self.type is AttributeType.ENUM and value not in self.options:
            problems.append(f"{where}: {value!r} is not one of {list(self.options)}")
        elif self.type is AttributeType.BOOL and not isinstance(value, bool):
            problems.append(f"{where}: expected true or false, got {value!r}")
        elif self.type is AttributeType.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{where}: expected a number, got {value!r}")
            elif (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                problems.append(f"{where}: {value} is outside {self.minimum}..{self.maximum}")
        elif self.type is AttributeType.TEXT and not isinstance(value, str):
            problems.append(f"{where}: expected text, got {value!r}")
        return problems


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _attribute_list(specs: Any, where: str) -> tuple[AttributeSpec, ...]:
    if not isinstance(specs, Sequence) or isinstance(specs, str):
        raise ValidationError(f"{where}: attributes must be a list")
    out = tuple(AttributeSpec.from_dict(s, where) for s in specs)
    names = [a.name for a in out]
    if len(set(names)) != len(names):
        raise ValidationError(f"{where}: attribute names repeat")
    return out


def check_attributes(specs: Sequence[AttributeSpec], values: Mapping[str, Any], where: str) -> list[str]:
    """Validate attribute values against specs, descending into the children the values select."""
    problems: list[str] = []
    known = {s.name: s for s in specs}
    for name in values:
        # answers to nested classifications are stored under "parent/value" keys
        parent = name.partition("/")[0] if "/" in name else None
        if name not in known and not (parent in known and known[parent].children):
            problems.append(f"{where}: unknown attribute {name!r}")
    for spec in specs:
        if spec.name not in values:
            if spec.required:
                problems.append(f"{where}: attribute {spec.name!r} is required")
            continue
        value = values[spec.name]
        problems += spec.check(value, f"{where}.{spec.name}")
        nested = spec.children.get(str(value).lower() if isinstance(value, bool) else str(value))
        if nested:
            child_values = values.get(f"{spec.name}/{value}", {})
            if not isinstance(child_values, Mapping):
                problems.append(f"{where}.{spec.name}: nested answers must be a mapping")
            else:
                problems += check_attributes(nested, child_values, f"{where}.{spec.name}={value}")
    return problems


@dataclass(frozen=True, slots=True)
class LabelClass:
    name: str
    color: str
    kinds: tuple[Kind, ...]
    hotkey: str | None = None
    attributes: tuple[AttributeSpec, ...] = ()
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "color": self.color, "kinds": [k.value for k in self.kinds]}
        if self.hotkey:
            out["hotkey"] = self.hotkey
        if self.attributes:
            out["attributes"] = [a.to_dict() for a in self.attributes]
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True, slots=True)
class Ontology:
    classes: tuple[LabelClass, ...]
    version: int = 1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], version: int = 1) -> Ontology:
        if not isinstance(data, Mapping) or not isinstance(data.get("classes"), Sequence):
            raise ValidationError('an ontology must be a mapping with a "classes" list')
        classes: list[LabelClass] = []
        for index, raw in enumerate(data["classes"]):
            if not isinstance(raw, Mapping):
                raise ValidationError(f"ontology class #{index + 1} must be a mapping")
            name = str(raw.get("name", "")).strip()
            if not name:
                raise ValidationError(f"ontology class #{index + 1} needs a name")
            color = str(raw.get("color") or DEFAULT_COLORS[index % len(DEFAULT_COLORS)])
            if not _COLOR.match(color):
                raise ValidationError(f"class {name!r}: colour must look like #rrggbb, got {color!r}")
            try:
                kinds = tuple(Kind(k) for k in raw.get("kinds", [k.value for k in Kind]))
            except ValueError as exc:
                raise ValidationError(f"class {name!r}: {exc}") from None
            hotkey = raw.get("hotkey")
            classes.append(
                LabelClass(
                    name=name,
                    color=color.lower(),
                    kinds=kinds,
                    hotkey=str(hotkey) if hotkey else None,
                    attributes=_attribute_list(raw.get("attributes", []), f"class {name!r}"),
                    description=str(raw.get("description", "")),
                )
            )
        names = [c.name for c in classes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValidationError(f"class names repeat: {duplicates}")
        hotkeys = [c.hotkey for c in classes if c.hotkey]
        clashing = sorted({h for h in hotkeys if hotkeys.count(h) > 1})
        if clashing:
            raise ValidationError(f"hotkeys used by more than one class: {clashing}")
        return cls(tuple(classes), int(data.get("version", version)))

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "classes": [c.to_dict() for c in self.classes]}

    def get(self, name: str) -> LabelClass:
        for cls_ in self.classes:
            if cls_.name == name:
                return cls_
        raise ValidationError(f"the ontology has no class {name!r}; known: {[c.name for c in self.classes]}")

    def index_of(self, name: str) -> int:
        """1-based class index used in class-index masks (0 is background)."""
        return [c.name for c in self.classes].index(self.get(name).name) + 1

    def check(self, annotation: Annotation) -> list[str]:
        """Why ``annotation`` does not fit this ontology (empty when it does)."""
        try:
            cls_ = self.get(annotation.label)
        except ValidationError as exc:
            return [str(exc)]
        problems = []
        if annotation.kind not in cls_.kinds:
            problems.append(
                f"class {cls_.name!r} does not allow {annotation.kind.value}; allowed: "
                f"{[k.value for k in cls_.kinds]}"
            )
        problems += check_attributes(cls_.attributes, annotation.attributes, cls_.name)
        return problems

    def validate(self, annotation: Annotation) -> None:
        problems = self.check(annotation)
        if problems:
            raise ValidationError("; ".join(problems))
