"""What a label-import reader yields, and what it is given: the leaf the readers and the importer share.

A reader is ``reader(path, ontology, context) -> Iterator[LabelItem]``, registered by name with
``app.exchange.importers.register_reader``. Most readers only parse files and ignore ``context``;
one that checks labels against the images (NIfTI against its series' grid) opens the assets with
``context.roots`` and ``context.max_pixels``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.core.annotations import Annotation
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.records import Asset

Build = Callable[[Asset, int], list[Annotation]]  # (matched asset, frame) -> annotations


class SkipItem(ValidationError):
    """Raised by an item's builder: skip the whole item with this reason."""


@dataclass
class LabelItem:
    """One image's worth of labels found in the input, not yet matched to an asset."""

    item: str  # how the report names it
    path: str  # the image path used for matching (posix or native, absolute or relative)
    build: Build  # the annotations for the matched asset and frame; may raise SkipItem
    frame: int = 0
    ignore_suffix: bool = False
    fallback: tuple[str, int] | None = None  # (path, frame) tried when ``path`` matches nothing
    skipped: list[tuple[str, str]] = field(default_factory=list)  # found while parsing


@dataclass(frozen=True)
class ImportContext:
    """This workstation's view of the project's data, for readers that open the assets."""

    roots: Mapping[str, Path]  # data-root names -> local folders
    max_pixels: int


Reader = Callable[[Path, Ontology, ImportContext], Iterator[LabelItem]]
