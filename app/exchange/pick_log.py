"""The record of what an export picked and why, kept off the heap: one JSON line per item in a
spooled temporary file, read back once when ``provenance.json`` is written. A project of 100,000
annotations must not hold a second copy of them in memory (the formats stream)."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from app.core.annotations import Annotation
from app.core.records import Asset
from app.exchange.label_rules import source_kind
from app.exchange.selection import asset_display_path

_SPOOL = 8 << 20  # bytes kept in memory before the log moves to a temporary file


def annotation_entry(ann: Annotation, rule: str) -> dict[str, Any]:
    """One annotation in provenance.json (``written`` is settled when the export has run)."""
    out: dict[str, Any] = {
        "id": ann.id,
        "frame": ann.frame,
        "label": ann.label,
        "kind": ann.kind.value,
        "source": ann.source,
        "author": ann.author,
        "version": ann.version,
        "rule": rule,
    }
    if ann.track_id is not None:
        out.update(track_id=ann.track_id, keyframe=ann.keyframe)
    return out


class PickLog:
    """Per item the format loaded: its state, its rule and each picked annotation with its rule.
    Counts per rule and per source kind are kept as the items arrive."""

    def __init__(self) -> None:
        # closed by close() (write_provenance, export_preview); a dropped log is closed by the GC
        self._file = tempfile.SpooledTemporaryFile(max_size=_SPOOL, mode="w+t", encoding="utf-8")  # noqa: SIM115
        self.assets: list[int] = []  # in the order the format loaded them
        self._seen: set[int] = set()
        self.rules: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()

    def __contains__(self, asset_id: int) -> bool:
        return asset_id in self._seen

    def add(
        self,
        asset: Asset,
        state: Mapping[str, Any],
        rule: str,
        annotations: Sequence[Annotation],
        rules: Sequence[str],
    ) -> None:
        """Record an item once (a format that loads it twice records it once); an item without a
        picked annotation is not an exported item (the export lists it as skipped)."""
        if asset.id in self._seen or not annotations:
            return
        self._seen.add(asset.id)
        self.assets.append(asset.id)
        self.rules.update(rules)
        self.sources.update(source_kind(a.source) for a in annotations)
        entry = {
            "asset_id": asset.id,
            "path": asset_display_path(asset),
            **state,
            "rule": rule,
            "annotations": [annotation_entry(a, r) for a, r in zip(annotations, rules, strict=True)],
        }
        self._file.write(json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n")

    def entries(self) -> Iterator[dict[str, Any]]:
        """The recorded items, in the order they were added."""
        self._file.seek(0)
        for line in self._file:
            yield json.loads(line)
        self._file.seek(0, 2)  # more may be added after a read

    @property
    def annotations(self) -> int:
        return sum(self.rules.values())

    def close(self) -> None:
        self._file.close()
