"""The pre-labels panel's low-confidence heat on screen: its two switches, the legend, and the canvas
overlay, computed on the thread pool from what :class:`PrelabelLogic` asks for."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QWidget
from shiboken6 import isValid

from app.editor.prelabel_logic import HeatResult, PrelabelLogic
from app.editor.prelabel_overlay import legend_html
from app.editor.workers import Job, submit

if TYPE_CHECKING:
    from app.editor.canvas import Canvas

HEAT_KEYS, HEAT_ALL_KEYS = "H", "Shift+H"


class HeatView(QObject):
    """Shows the heat of the selected pre-label (or of all of the frame's) while switched on."""

    def __init__(
        self,
        logic: PrelabelLogic,
        canvas: Canvas,
        selected: Callable[[], int | None],
        say: Callable[[str], None],
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.logic, self.canvas, self.selected, self.say = logic, canvas, selected, say
        self._overlay_shown = False
        # the last jobs, so their signal objects die here on the UI thread, never on the pool's
        self._jobs: deque[Job] = deque(maxlen=16)
        self.check = QCheckBox(f"Low-confidence heat ({HEAT_KEYS})", parent)
        self.check.toggled.connect(self.set_heat)
        self.all_check = QCheckBox(f"For all pre-labels of the frame ({HEAT_ALL_KEYS})", parent)
        self.all_check.toggled.connect(self.set_heat_all)
        self.legend = QLabel(legend_html(), parent)
        self.legend.setTextFormat(Qt.TextFormat.RichText)  # built from constants only
        self.legend.hide()

    @property
    def on(self) -> bool:
        return self.check.isChecked()

    def set_heat(self, on: bool) -> None:
        if self.check.isChecked() != on:
            self.check.setChecked(on)  # re-enters through toggled
            return
        self.legend.setVisible(on)
        self.refresh()

    def set_heat_all(self, on: bool) -> None:
        if self.all_check.isChecked() != on:
            self.all_check.setChecked(on)
            return
        if on and not self.on:
            self.set_heat(True)
            return
        self.refresh()

    def refresh(self) -> None:
        """Show the heat the selection and the switches call for (after any change of them)."""
        targets = self.logic.heat_targets(self.selected(), self.all_check.isChecked()) if self.on else []
        request = self.logic.heat_request(targets)
        if request is None:
            self._clear()
            return
        if request.fetching:
            self.say("Computing where the model was unsure…")
        token = request.token
        self._jobs.append(submit(request.work, partial(self._ready, token), partial(self._failed, token)))

    def _ready(self, token: object, result: HeatResult) -> None:
        if not isValid(self):  # the window was closed while the job ran
            return
        fresh, rgba = result
        if not self.logic.heat_arrived(token, fresh) or not self.on:
            return
        self.canvas.overlays.set_image(rgba)
        self._overlay_shown = rgba is not None
        if fresh:
            self.say("Low-confidence regions shown: look closely where the heat is.")

    def _failed(self, token: object, message: str) -> None:
        if not isValid(self):  # the window was closed while the job ran
            return
        if self.logic.is_current(token):
            self.say(f"No low-confidence map: {message}")

    def _clear(self) -> None:
        if self._overlay_shown:  # never remove an overlay someone else (the review pane) put there
            self.canvas.overlays.set_image(None)
            self._overlay_shown = False
