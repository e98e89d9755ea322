"""Import existing training labels ("I already have training data"): COCO, YOLO, labelme, PNG masks,
NIfTI. Readers are registered by name (``register_reader``, as exports use ``register_format``).

    report = import_labels(db, project_id, "coco", Path("annotations.json"), user_id=me.id,
                           roots=config.all_data_roots, max_pixels=config.max_image_pixels)

Matching rule (how a label file or entry finds its asset): every item names an image by a path
(COCO ``file_name``, labelme ``imagePath`` joined to the JSON's folder, a YOLO label file's or a PNG
mask's path below its labels folder). That path is compared component by component FROM THE END
with each asset's ``root/rel_path`` (and with the name our exports give it). The asset sharing the
longest tail wins: ``ct1/slice.png`` matches ``studies/ct1/slice.png``. YOLO labels and PNG masks
are compared without file extensions (``labels/a/b.txt`` matches ``a/b.png``). Nothing shared, or
a tie between several assets, skips the item with the reason. Multi-frame assets: COCO
``file_name#FRAME``, PNG masks ``NAME/FFFFF.png`` (our export's names).

Every annotation is checked against the project's ontology (class, kind, attributes) and the frame
size; misfits are skipped with the reason, the rest stored with ``uow.annotations.add_many`` as the
importing user, source ``import:FORMAT``. ``dry_run`` reports without storing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, overload

from app.core.annotations import Annotation
from app.core.errors import ValidationError
from app.core.ontology import Ontology
from app.core.records import Asset
from app.exchange.import_formats import read_coco, read_labelme, read_png_masks, read_yolo
from app.exchange.label_items import ImportContext, LabelItem, Reader, SkipItem
from app.exchange.names import item_names, legacy_names
from app.exchange.nifti_import import read_nifti
from app.exchange.project_json_import import FORMAT as RESTORE_FORMAT
from app.exchange.project_json_import import restore_project_json
from app.exchange.selection import asset_display_path

if TYPE_CHECKING:
    from app.storage import Database

READERS: dict[str, Reader] = {}
Progress = Callable[[int, int], bool | None]


@overload
def register_reader(name: str, reader: Reader) -> Reader: ...
@overload
def register_reader(name: str, reader: None = None) -> Callable[[Reader], Reader]: ...
def register_reader(name: str, reader: Reader | None = None) -> Reader | Callable[[Reader], Reader]:
    """Register the label import ``reader`` under ``name``; without ``reader`` it is a decorator."""

    def add(fn: Reader) -> Reader:
        if name in READERS and READERS[name] is not fn:
            raise ValueError(f"import format {name!r} is already registered")
        READERS[name] = fn
        return fn

    return add if reader is None else add(reader)


register_reader("coco", read_coco)
register_reader("yolo", read_yolo)
register_reader("labelme", read_labelme)
register_reader("png-masks", read_png_masks)
register_reader("nifti", read_nifti)  # opens each matched series to check the label grid


@dataclass
class ImportReport:
    """One ``matched`` entry per label item (a COCO image entry, a YOLO or labelme file, a PNG mask
    of one frame): a multi-frame asset gets one per frame, so count assets with ``per_asset``."""

    matched: list[tuple[str, int, int]] = field(default_factory=list)  # (item, asset id, annotations)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, why)
    cancelled: bool = False  # progress said stop: nothing was stored
    # project-json: what the restore put back (annotations, track anchors, tasks, assignments, reviews)
    restored: dict[str, int] = field(default_factory=dict)

    @property
    def annotations(self) -> int:
        return sum(count for _, _, count in self.matched)

    @property
    def per_asset(self) -> dict[int, tuple[int, int]]:
        """Asset id -> (label items matched to it, annotations they hold), for the assets matched."""
        out: dict[int, tuple[int, int]] = {}
        for _, asset_id, count in self.matched:
            items, annotations = out.get(asset_id, (0, 0))
            out[asset_id] = (items + 1, annotations + count)
        return out


def _parts(path: str, ignore_suffix: bool) -> tuple[str, ...]:
    parts = [p for p in PurePosixPath(path.replace("\\", "/")).parts if p not in ("/", "", ".")]
    if ignore_suffix and parts:
        parts[-1] = PurePosixPath(parts[-1]).stem if "." in parts[-1] else parts[-1]
    return tuple(parts)


class AssetMatcher:
    """Longest common path tail between an item's path and the assets' paths (see module doc)."""

    def __init__(self, assets: list[Asset]) -> None:
        names = item_names(assets)
        self._keys: dict[bool, dict[str, list[tuple[Asset, tuple[str, ...]]]]] = {}
        for ignore in (False, True):
            index: dict[str, list[tuple[Asset, tuple[str, ...]]]] = defaultdict(list)
            for asset in assets:
                keys = {
                    _parts(key, ignore)
                    for key in (
                        f"{asset.root}/{asset_display_path(asset)}",
                        str(names[asset.id]),
                        *map(str, legacy_names(asset)),  # older exports' names
                    )
                }
                if ignore:  # our names carry no file suffix (a.jpg, series=1.2.3 are whole names)
                    keys.add(_parts(str(names[asset.id]), False))
                for parts in keys:
                    index[parts[-1]].append((asset, parts))
            self._keys[ignore] = index

    def match(self, path: str, ignore_suffix: bool) -> Asset:
        parts = _parts(path, ignore_suffix)
        if not parts:
            raise SkipItem("it names no image")
        best: dict[int, int] = {}
        assets: dict[int, Asset] = {}
        for asset, key in self._keys[ignore_suffix].get(parts[-1], []):
            n = 0
            while n < min(len(key), len(parts)) and key[-1 - n] == parts[-1 - n]:
                n += 1
            best[asset.id] = max(best.get(asset.id, 0), n)
            assets[asset.id] = asset
        if not best:
            raise SkipItem(f"no asset of the project is called {parts[-1]!r}")
        top = max(best.values())
        winners = sorted(i for i, n in best.items() if n == top)
        if len(winners) > 1:
            shown = ", ".join(asset_display_path(assets[i]) for i in winners[:3])
            raise SkipItem(f"it matches {len(winners)} assets equally ({shown}); give a longer path")
        return assets[winners[0]]


def _match(matcher: AssetMatcher, item: LabelItem) -> tuple[Asset, int]:
    try:
        return matcher.match(item.path, item.ignore_suffix), item.frame
    except SkipItem:
        if item.fallback is None:
            raise
        path, frame = item.fallback
        return matcher.match(path, item.ignore_suffix), frame


def _check(
    ann: Annotation, asset: Asset, ontology: Ontology, where: str, skipped: list[tuple[str, str]]
) -> bool:
    if ann.frame >= max(asset.frame_count, 1):
        skipped.append((where, f"frame {ann.frame} is past the last frame of the asset"))
        return False
    problems = ontology.check(ann)
    if problems:
        skipped.append((where, "; ".join(problems)))
        return False
    return True


# what reading a file of the wrong shape raises (wrong types, missing keys, absurd numbers)
_MALFORMED = (TypeError, AttributeError, KeyError, IndexError, ValueError, OverflowError, RecursionError)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


def _well_formed(items: Iterator[LabelItem], source: Path, fmt: str) -> Iterator[LabelItem]:
    """The reader's items; a structural surprise in the file becomes one clear ValidationError."""
    try:
        yield from items
    except ValidationError:
        raise
    except _MALFORMED as exc:  # found by fuzzing: the readers trust the file's structure
        raise ValidationError(f"{source}: not a well-formed {fmt} file ({_why(exc)})") from None


def import_labels(
    db: Database,
    project_id: int,
    fmt: str,
    path: Path,
    *,
    user_id: int,
    roots: Mapping[str, Path],
    max_pixels: int,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import labels in ``fmt`` (a name in ``READERS``: coco, yolo, labelme, png-masks, nifti) from
    ``path``; see the module doc. ``project-json`` restores a Sitelabel archive instead, with its
    authors, sources, tracks, queue state and reviews (app.exchange.project_json_import); the
    report's ``restored`` counts what came back.

    Matching works on the stored paths and sizes; ``roots`` and ``max_pixels`` reach the readers
    that open the matched assets (NIfTI, checked against its series' grid). ``progress(done,
    total)`` is called per label item; returning False stops before anything is stored
    (``report.cancelled``).
    """
    source = Path(path)
    if fmt == RESTORE_FORMAT and source.exists():  # an archive: authors, reviews and tracks come back
        restored = restore_project_json(
            db, project_id, source, user_id=user_id, dry_run=dry_run, progress=progress
        )
        return ImportReport(restored.matched, restored.skipped, restored.cancelled, restored.counts)
    reader = READERS.get(fmt)
    if reader is None:
        raise ValidationError(f"unknown import format {fmt!r}; known: {sorted([*READERS, RESTORE_FORMAT])}")
    if not source.exists():
        raise ValidationError(f"{source} does not exist")
    with db.unit_of_work(readonly=True) as uow:
        uow.projects.get(project_id)
        ontology = uow.ontologies.current(project_id) or Ontology(classes=(), version=0)
        assets = list(uow.assets.list(project_id))
    report = ImportReport()
    matcher = AssetMatcher(assets)
    pending: list[tuple[int, list[Annotation]]] = []
    context = ImportContext(roots=roots, max_pixels=max_pixels)
    # the items are cheap to list (their annotations are built one by one below): a total for progress
    items = list(_well_formed(reader(source, ontology, context), source, fmt))
    for done, item in enumerate(items, 1):
        if progress is not None and progress(done - 1, len(items)) is False:
            report.cancelled = True
            return report
        try:
            asset, frame = _match(matcher, item)
            built = item.build(asset, frame)
        except SkipItem as exc:
            report.skipped.extend([*item.skipped, (item.item, str(exc))])
            continue
        except ValidationError:  # a reader's deliberate refusal (a ValueError too) still stops the import
            raise
        except _MALFORMED as exc:  # an entry of the wrong shape (a dict where a number belongs, ...)
            report.skipped.extend([*item.skipped, (item.item, f"malformed entry: {_why(exc)}")])
            continue
        report.skipped.extend(item.skipped)  # single annotations the builder could not read
        kept: list[Annotation] = []
        for index, raw in enumerate(built, 1):
            ann = raw.evolve(source=f"import:{fmt}", asset_id=asset.id)
            if _check(ann, asset, ontology, f"{item.item} #{index}", report.skipped):
                kept.append(ann)
        report.matched.append((item.item, asset.id, len(kept)))
        if kept:
            pending.append((asset.id, kept))
    if progress is not None and progress(len(items), len(items)) is False:
        report.cancelled = True
        return report
    if not dry_run and pending:
        with db.unit_of_work() as uow:
            for asset_id, anns in pending:
                uow.annotations.add_many(asset_id, anns, user_id)
            total = sum(len(a) for _, a in pending)
            uow.audit.record(
                user_id, "labels.import", "project", project_id, {"format": fmt, "annotations": total}
            )
    return report
