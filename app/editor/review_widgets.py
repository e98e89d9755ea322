"""The review pane's smaller widgets: the queue table, the agreement table, the labeler dialog."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.editor.plain import plain_tip
from app.editor.review_logic import QueueEntry
from app.workflow.agreement import ItemAgreement

LOW_SCORE, MID_SCORE = 0.5, 0.8
# Agreement bar colours (Okabe-Ito, so they read for colour-blind reviewers too); the bar length
# carries the value as well.
SCORE_COLORS = ("#D55E00", "#E69F00", "#56B4E9")
INFO_STYLE = "background: #1f3a5a; color: #e2eeff; padding: 4px; border-radius: 3px;"


def score_color(score: float | None) -> QColor:
    if score is None:
        return QColor("#6b6b6b")
    return QColor(SCORE_COLORS[0 if score < LOW_SCORE else 1 if score < MID_SCORE else 2])


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


class AgreementDelegate(QStyledItemDelegate):
    """The agreement column: a bar as long as the score, coloured by band, with the number."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text, opt.text = opt.text, ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        score = index.data(Qt.ItemDataRole.UserRole)
        r = opt.rect.adjusted(4, 4, -4, -4)
        painter.save()
        if isinstance(score, float):
            bar = QRect(r.left(), r.top(), max(2, round(r.width() * min(max(score, 0.0), 1.0))), r.height())
            painter.fillRect(r, QColor(255, 255, 255, 18))
            painter.fillRect(bar, score_color(score))
        painter.setPen(QColor("#111111") if isinstance(score, float) and score >= 0.3 else QColor("#e8e8e8"))
        painter.drawText(
            r.adjusted(4, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text
        )
        painter.restore()


class LabelerDialog(QDialog):
    """Pick a labeler; for a rejection also the reason, which is required (OK stays disabled)."""

    def __init__(
        self, title: str, prompt: str, labelers: Sequence[str], *, ask_reason: bool, parent: QWidget
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(420)
        self.labeler = QComboBox(self)
        self.labeler.addItems(list(labelers))
        self.reason: QPlainTextEdit | None = None
        form = QFormLayout()
        intro = QLabel(prompt)
        intro.setTextFormat(Qt.TextFormat.PlainText)
        intro.setWordWrap(True)
        form.addRow(intro)
        form.addRow("Labeler", self.labeler)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        if ask_reason:
            self.reason = QPlainTextEdit(self)
            self.reason.setPlaceholderText("What should the labeler change? (required)")
            self.reason.setTabChangesFocus(True)  # keyboard-only: Tab reaches OK
            self.reason.setFixedHeight(90)
            form.addRow("Reason", self.reason)
            self.reason.textChanged.connect(self._check)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self._check()

    def _check(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(self.reason is None or bool(self.reason_text()))

    def reason_text(self) -> str:
        return self.reason.toPlainText().strip() if self.reason is not None else ""


class QueueBox(QGroupBox):
    """The review queue: asset, labelers, agreement bar, open issues; Previous / Next / Refresh."""

    chosen = Signal(int)  # asset id of the row the reviewer moved to
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Waiting for review (lowest agreement first)", parent)
        self.entries: list[QueueEntry] = []
        self.table = QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["Asset", "Labelers", "Agreement", "Issues"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setItemDelegateForColumn(2, AgreementDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(2, 110)
        self.table.setMinimumHeight(150)
        self.table.currentCellChanged.connect(lambda row, *_: self._row_changed(row))
        self.previous_button = QPushButton("Previous (Alt+Up)", self)
        self.next_button = QPushButton("Next (Alt+Down)", self)
        refresh = QPushButton("Refresh (F5)", self)
        self.previous_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        refresh.clicked.connect(self.refresh_requested.emit)
        row = QHBoxLayout()
        for button in (self.previous_button, self.next_button, refresh):
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(row)
        self._enable()

    def set_entries(self, entries: Sequence[QueueEntry], keep: int | None) -> int | None:
        """Show ``entries``, staying on ``keep`` if it is still there (no signal). Otherwise the
        entry now at the old row is current; its asset id is returned (None: nothing to open)."""
        old_row = self.table.currentRow()
        self.entries = list(entries)
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            name = QTableWidgetItem(entry.name)
            name.setToolTip(f"asset {entry.asset_id}")
            labelers = QTableWidgetItem(str(len(entry.labelers)))
            labelers.setToolTip(plain_tip(", ".join(entry.labelers)))
            score = QTableWidgetItem("n/a" if entry.agreement is None else f"{entry.agreement:.2f}")
            score.setData(Qt.ItemDataRole.UserRole, entry.agreement)
            issues = QTableWidgetItem(str(entry.open_threads) if entry.open_threads else "")
            for col, cell in enumerate((name, labelers, score, issues)):
                self.table.setItem(row, col, cell)
        ids = [e.asset_id for e in self.entries]
        opened: int | None = None
        if keep in ids:
            self.table.setCurrentCell(ids.index(keep), 0)
        elif self.entries:  # the decided item left: the one now at its row is next
            row = min(max(old_row, 0), len(self.entries) - 1)
            self.table.setCurrentCell(row, 0)
            opened = self.entries[row].asset_id
        self.table.blockSignals(False)
        self._enable()
        return opened

    def step(self, delta: int) -> None:
        if self.entries:
            row = min(max(self.table.currentRow() + delta, 0), len(self.entries) - 1)
            self.table.setCurrentCell(row, 0)

    def select(self, asset_id: int) -> None:
        ids = [e.asset_id for e in self.entries]
        if asset_id in ids:
            self.table.setCurrentCell(ids.index(asset_id), 0)

    def _row_changed(self, row: int) -> None:
        if 0 <= row < len(self.entries):
            self.chosen.emit(self.entries[row].asset_id)

    def _enable(self) -> None:
        self.previous_button.setEnabled(bool(self.entries))
        self.next_button.setEnabled(bool(self.entries))


class AgreementBox(QGroupBox):
    """The item's agreement: overall score and the per-class table of ItemAgreement."""

    HEADERS = ("Class", "Type", "Score", "IoU", "Dice", "Box IoU", "F1")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Agreement", parent)
        self.overall = QLabel("-", self)
        self.overall.setTextFormat(Qt.TextFormat.PlainText)
        self.table = QTableWidget(0, len(self.HEADERS), self)
        self.table.setHorizontalHeaderLabels(list(self.HEADERS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # sized to fit
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.addWidget(self.overall)
        layout.addWidget(self.table)
        self.show_agreement(None, item_open=False)

    def show_agreement(self, agreement: ItemAgreement | None, *, item_open: bool) -> None:
        rows = agreement.classes if agreement is not None else ()
        if agreement is None:
            self.overall.setText("Overall: - (needs two labelers)" if item_open else "-")
        else:
            overall = "-" if agreement.overall is None else f"{agreement.overall:.3f}"
            n = len(agreement.labelers)
            self.overall.setText(f"Overall: {overall}   (mean over classes, {n} labelers)")
        self.table.setRowCount(len(rows))
        for r, cls in enumerate(rows):
            d = cls.details
            family = "agree" if cls.family == "classification" else cls.family
            cells = [cls.label, family, _fmt(cls.score), _fmt(d.get("iou")), _fmt(d.get("dice"))]
            cells += [_fmt(d.get("matched_iou")), _fmt(d.get("f1"))]
            for c, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if c == 2:
                    cell.setForeground(score_color(cls.score))
                    if cls.family == "classification":
                        cell.setToolTip("share of labeler pairs that agree whether the class applies")
                self.table.setItem(r, c, cell)
        self.table.resizeRowsToContents()
        height = self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(r) for r in range(len(rows)))
        self.table.setFixedHeight(height)


class DecisionBox(QGroupBox):
    """The decision buttons, plus the bar a fix or a merge preview shows until confirmed or cancelled.
    Widgets only: the pane wires them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Decision", parent)
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("Note for accept / fix (optional)")
        self.accept_button = QPushButton("Accept  (Ctrl+Alt+A)", self)
        self.reject_button = QPushButton("Reject to labeler...  (Ctrl+Alt+J)", self)
        self.fix_button = QPushButton("Fix and accept...  (Ctrl+Alt+X)", self)
        self.choose_button = QPushButton("Consensus from labeler...  (Ctrl+Alt+U)", self)
        self.method = QComboBox(self)
        self.method.addItem("Majority vote", "majority")
        self.method.addItem("STAPLE", "staple")
        self.merge_button = QPushButton("Preview merge  (Ctrl+Alt+M)", self)
        merge_row = QHBoxLayout()
        merge_row.addWidget(self.method)
        merge_row.addWidget(self.merge_button, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        for button in (self.accept_button, self.reject_button, self.fix_button, self.choose_button):
            layout.addWidget(button)
        layout.addLayout(merge_row)
        layout.addWidget(self._confirm_bar())

    def _confirm_bar(self) -> QWidget:
        self.confirm_bar = QWidget(self)
        self.confirm_text = QLabel(self.confirm_bar)
        self.confirm_text.setTextFormat(Qt.TextFormat.PlainText)
        self.confirm_text.setWordWrap(True)
        self.confirm_text.setStyleSheet(INFO_STYLE)
        self.copy_row = QWidget(self.confirm_bar)
        self.copy_combo = QComboBox(self.copy_row)
        self.copy_button = QPushButton("Copy labels", self.copy_row)
        copy = QHBoxLayout(self.copy_row)
        copy.setContentsMargins(0, 0, 0, 0)
        copy.addWidget(QLabel("Start from", self.copy_row))
        copy.addWidget(self.copy_combo, 1)
        copy.addWidget(self.copy_button)
        self.confirm_button = QPushButton("Confirm  (Ctrl+Alt+Return)", self.confirm_bar)
        self.cancel_button = QPushButton("Cancel  (Ctrl+Alt+N)", self.confirm_bar)
        buttons = QHBoxLayout()
        buttons.addWidget(self.confirm_button)
        buttons.addWidget(self.cancel_button)
        bar = QVBoxLayout(self.confirm_bar)
        bar.setContentsMargins(0, 4, 0, 0)
        bar.addWidget(self.confirm_text)
        bar.addWidget(self.copy_row)
        bar.addLayout(buttons)
        self.confirm_bar.hide()
        return self.confirm_bar
