"""The asset list: every registered image, series and video of the project, filterable."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLineEdit, QListView, QVBoxLayout, QWidget

from app.core.records import Asset
from app.editor.plain import plain_tip

_KIND_MARK = {"image": "IMG", "dicom": "DCM", "dicom-series": "DCM", "video": "VID"}
_UNAVAILABLE_COLOR = QColor("#8a8a8a")  # dimmed, still readable on the dark theme


class AssetListModel(QAbstractListModel):
    def __init__(self, assets: list[Asset] | None = None) -> None:
        super().__init__()
        self._assets: list[Asset] = list(assets or [])
        self._open_issues: dict[int, int] = {}
        self._unavailable_roots: set[str] = set()  # data roots found unreachable (share unmounted)

    def set_root_available(self, root: str, available: bool) -> None:
        """Mark (or unmark) every asset of data root ``root`` as unavailable, keeping the selection."""
        if available == (root not in self._unavailable_roots):
            return
        if available:
            self._unavailable_roots.discard(root)
        else:
            self._unavailable_roots.add(root)
        if self._assets:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._assets) - 1, 0))

    def unavailable(self, asset: Asset) -> bool:
        return asset.root in self._unavailable_roots

    def set_assets(self, assets: list[Asset], open_issues: dict[int, int] | None = None) -> None:
        self.beginResetModel()
        self._assets = list(assets)
        self._open_issues = dict(open_issues or {})
        self.endResetModel()

    def set_open_issues(self, open_issues: dict[int, int]) -> None:
        """New open-issue counts (a thread opened or resolved) without resetting the selection."""
        self._open_issues = dict(open_issues)
        if self._assets:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._assets) - 1, 0))

    def open_issues(self, asset_id: int) -> int:
        return self._open_issues.get(asset_id, 0)

    def asset_at(self, row: int) -> Asset:
        return self._assets[row]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._assets)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        asset = self._assets[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            name = asset.rel_path.rsplit("/", 1)[-1]
            frames = f"  [{asset.frame_count}]" if asset.frame_count > 1 else ""
            issues = self._open_issues.get(asset.id, 0)
            flag = f"  ({issues} open issue{'s' if issues > 1 else ''})" if issues else ""
            gone = "  (unavailable)" if asset.root in self._unavailable_roots else ""
            return f"{_KIND_MARK.get(asset.kind, '?')}  {name}{frames}{flag}{gone}"
        if role == Qt.ItemDataRole.ForegroundRole and asset.root in self._unavailable_roots:
            return _UNAVAILABLE_COLOR
        if role == Qt.ItemDataRole.ToolTipRole:
            meta = asset.metadata or {}
            extra = ", ".join(
                f"{k}: {meta[k]}"
                for k in ("Modality", "SeriesDescription", "BodyPartExamined")
                if meta.get(k)
            )
            lost = asset.root in self._unavailable_roots
            return plain_tip(  # file names and DICOM tags: never rendered as rich text
                f"{asset.root}:{asset.rel_path}\n{asset.width}x{asset.height}, {asset.frame_count} frame(s)"
                + (f"\n{extra}" if extra else "")
                + ("\nits data folder is not reachable now (tried again when opened)" if lost else "")
            )
        if role == Qt.ItemDataRole.UserRole:
            return asset.id
        return None


class AssetListPanel(QWidget):
    """Filter box + list; emits ``asset_chosen(asset)`` when the selection changes."""

    asset_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = AssetListModel()
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter assets")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.view = QListView(self)
        self.view.setModel(self.proxy)
        self.view.setUniformItemSizes(True)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter)
        layout.addWidget(self.view)

    def set_assets(self, assets: list[Asset], open_issues: dict[int, int] | None = None) -> None:
        self.model.set_assets(assets, open_issues)

    def set_open_issues(self, open_issues: dict[int, int]) -> None:
        self.model.set_open_issues(open_issues)

    def set_root_available(self, root: str, available: bool) -> None:
        self.model.set_root_available(root, available)

    def select_row(self, row: int) -> None:
        if 0 <= row < self.proxy.rowCount():
            self.view.setCurrentIndex(self.proxy.index(row, 0))

    def step(self, delta: int) -> None:
        """Move to the next/previous asset (keyboard-driven labeling)."""
        current = self.view.currentIndex().row()
        self.select_row(max(0, min(self.proxy.rowCount() - 1, current + delta)))

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.asset_chosen.emit(self.model.asset_at(self.proxy.mapToSource(current).row()))
