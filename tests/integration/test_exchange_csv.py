"""The csv export holds every annotation kind, one row each, and never a silently empty file (#17).

Run through the real CLI on sample images with every kind (polygon, box, mask, point,
classification). The box and area of each row are checked against the core rasteriser and the
vertices; an export that selects nothing exits 1, says why and writes no file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from _exchange_setup import annotate, make_project

from app.cli import main
from app.core.annotations import Annotation
from app.core.raster import rasterize_annotation


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "annotations.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _export(db_url: str, out: Path, *more: str) -> int:
    return main(
        ["export", "--db", db_url, "--user", "ann", "--format", "csv", "--out", str(out), "--quiet", *more]
    )


def test_csv_holds_every_kind_with_box_and_area(db_url: str, tmp_path: Path) -> None:
    project, ids = make_project(db_url)
    annotate(project, ids)
    assert _export(db_url, tmp_path / "csv") == 0
    rows = _rows(tmp_path / "csv")
    stored = {a.id: a for i in ids for a in project.annotation_objects(i)}
    assert sorted(int(r["annotation_id"]) for r in rows) == sorted(stored)
    kinds = [r["kind"] for r in rows[:6]]
    assert kinds == ["polygon", "box", "mask", "polygon", "classification", "point"]
    for row in rows:
        ann: Annotation = stored[int(row["annotation_id"])]
        asset = project.asset(int(row["asset_id"]))
        assert (row["class"], row["author"], row["source"], float(row["confidence"])) == (
            ann.label,
            "ann",
            "human",
            0.75,
        )
        assert json.loads(row["attributes"]) == dict(ann.attributes)
        box = [row[f"bbox_{k}"] for k in ("x0", "y0", "x1", "y1")]
        if ann.kind.value == "classification":
            assert box == ["", "", "", ""] and row["area"] == ""
            continue
        numbers = [float(v) for v in box]
        if ann.kind.value == "box":
            assert numbers == list(ann.box or ())
        elif ann.kind.value == "mask":
            full = rasterize_annotation(ann, (asset.height, asset.width))
            ys, xs = np.nonzero(full)
            assert numbers == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        else:  # the vertices' extent
            pts = np.asarray(ann.points)
            assert numbers == [*pts.min(axis=0), *pts.max(axis=0)]
        if ann.kind.value in ("polygon", "box", "mask"):
            drawn = rasterize_annotation(ann, (asset.height, asset.width))
            assert int(row["area"]) == int(drawn.sum()) > 0
        else:
            assert row["area"] == ""


def test_an_export_that_selects_nothing_fails_and_writes_nothing(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, ids = make_project(db_url)
    assert _export(db_url, tmp_path / "empty") == 1
    err = capsys.readouterr().err
    assert "the csv export selected no annotation (3 items: no annotation matches the filters)" in err
    assert not (tmp_path / "empty" / "annotations.csv").exists()

    annotate(project, ids[:1])
    assert _export(db_url, tmp_path / "accepted", "--status", "accepted") == 1
    err = capsys.readouterr().err  # the reasons the filters give (counted), or that nothing matched
    assert "the csv export selected no annotation (" in err and "nothing" in err
    assert not (tmp_path / "accepted" / "annotations.csv").exists()
    assert _export(db_url, tmp_path / "one", "--class", "shadow") == 0
    assert {r["class"] for r in _rows(tmp_path / "one")} == {"shadow"}
