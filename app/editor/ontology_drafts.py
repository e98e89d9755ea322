"""The ontology editor's drafts: the plain JSON form of app.core.ontology while it is being typed.

A half-typed value never has to be a valid ``Ontology``; these helpers turn drafts back into the
JSON ``Ontology.from_dict`` judges, and say which field each of its complaints concerns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtGui import QKeySequence

from app.core.errors import ValidationError
from app.core.ontology import AttributeSpec, Ontology

KIND_ORDER = ("polygon", "polyline", "box", "point", "mask", "classification")
Draft = dict[str, Any]


def normal_key(text: str) -> str:
    """One spelling per key sequence ("ctrl+1" and "Ctrl+1" are the same key)."""
    return QKeySequence(text.strip()).toString(QKeySequence.SequenceFormat.PortableText)


# --- drafts: the JSON form, editable -----------------------------------------------------------
def class_draft(data: Mapping[str, Any]) -> Draft:
    return {
        "name": str(data.get("name", "")),
        "color": str(data.get("color", "")),
        "hotkey": str(data.get("hotkey") or ""),
        "kinds": [str(k) for k in data.get("kinds", KIND_ORDER)],
        "description": str(data.get("description", "")),
        "attributes": [attribute_draft(a) for a in data.get("attributes", ())],
    }


def class_out(draft: Draft) -> dict[str, Any]:
    """The class in ``LabelClass.to_dict`` form (what ``Ontology.from_dict`` reads)."""
    out: dict[str, Any] = {"name": draft["name"].strip(), "color": draft["color"].strip().lower()}
    out["kinds"] = list(draft["kinds"])
    if draft["hotkey"].strip():
        out["hotkey"] = draft["hotkey"].strip()
    if draft["attributes"]:
        out["attributes"] = [attribute_out(a) for a in draft["attributes"]]
    if draft["description"].strip():
        out["description"] = draft["description"].strip()
    return out


def class_problems(drafts: list[Draft], reserved: Mapping[str, str]) -> list[dict[str, str]]:
    """Per class, field -> message (name, color, hotkey, kinds, attributes); empty dicts when fine."""
    found: list[dict[str, str]] = [{} for _ in drafts]
    names = [d["name"].strip() for d in drafts]
    keys = [normal_key(d["hotkey"]) if d["hotkey"].strip() else "" for d in drafts]
    for row, draft in enumerate(drafts):
        problems = found[row]
        name = names[row]
        if not name:
            problems["name"] = f"class #{row + 1} needs a name"
        elif names.count(name) > 1:
            problems["name"] = f"another class is also called {name!r}"
        label = name or f"#{row + 1}"
        try:  # the core judges the colour (its message names the class); empty would mean "any"
            Ontology.from_dict({"classes": [{"name": label, "color": draft["color"].strip() or "?"}]})
        except ValidationError as exc:
            problems["color"] = str(exc)
        if draft["hotkey"].strip():
            key = keys[row]
            if not key:
                problems["hotkey"] = f"{draft['hotkey']!r} is not a key"
            elif keys.count(key) > 1:
                others = [names[i] or f"#{i + 1}" for i, k in enumerate(keys) if k == key and i != row]
                problems["hotkey"] = f"hotkey {key} is also used by class {', '.join(others)}"
            elif key in reserved:
                problems["hotkey"] = f"hotkey {key} is taken by {reserved[key]}"
        if not draft["kinds"]:
            problems["kinds"] = "allow at least one kind"
        bad = attribute_problems(draft["attributes"], f"class {label!r}")
        if bad:
            problems["attributes"] = next(iter(bad.values()))
    return found


def attribute_draft(data: Mapping[str, Any]) -> Draft:
    def number(value: Any) -> str:
        if value is None:
            return ""
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)

    return {
        "name": str(data.get("name", "")),
        "type": str(data.get("type", "text")),
        "options": [str(o) for o in data.get("options", ())],
        "required": bool(data.get("required", False)),
        "min": number(data.get("min")),
        "max": number(data.get("max")),
        "children": {
            str(k): [attribute_draft(c) for c in v] for k, v in (data.get("children") or {}).items()
        },
    }


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # left for the checks to report


def attribute_out(draft: Draft) -> dict[str, Any]:
    """The attribute in ``AttributeSpec.to_dict`` form."""
    out: dict[str, Any] = {"name": draft["name"].strip(), "type": draft["type"]}
    if draft["options"]:
        out["options"] = list(draft["options"])
    if draft["required"]:
        out["required"] = True
    for key in ("min", "max"):
        if draft[key].strip():
            out[key] = _number(draft[key].strip())
    if draft["children"]:
        out["children"] = {k: [attribute_out(c) for c in v] for k, v in draft["children"].items()}
    return out


def attribute_problems(drafts: list[Draft], where: str) -> dict[int, str]:
    """id(draft) -> message, for these attributes and everything nested under them."""
    found: dict[int, str] = {}
    names = [d["name"].strip() for d in drafts]
    for draft in drafts:
        name = draft["name"].strip()
        out = attribute_out(draft)
        bad_numbers = [k for k in ("min", "max") if isinstance(out.get(k), str)]
        # children are checked one by one below, so each message lands on its own attribute
        shallow = {**out, "children": {value: [] for value in draft["children"]}}
        try:
            if bad_numbers:
                raise ValidationError(f"{where}.{name}: {' and '.join(bad_numbers)} must be a number")
            AttributeSpec.from_dict(shallow, where)
        except ValidationError as exc:
            found[id(draft)] = str(exc)
        if id(draft) not in found:
            if names.count(name) > 1:
                found[id(draft)] = f"{where}: another attribute is also called {name!r}"
            elif "min" in out and "max" in out and out["min"] > out["max"]:
                found[id(draft)] = f"{where}.{name}: min is above max"
        for value, kids in draft["children"].items():
            found.update(attribute_problems(kids, f"{where}.{name or '?'}={value}"))
    return found


def row_texts(draft: Draft) -> list[str]:
    """Tree columns: name, type, options or range, required."""
    details = ", ".join(draft["options"]) if draft["type"] == "enum" else ""
    if draft["type"] == "number" and (draft["min"] or draft["max"]):
        details = f"{draft['min'] or '...'} to {draft['max'] or '...'}"
    return [draft["name"], draft["type"], details, "yes" if draft["required"] else ""]
