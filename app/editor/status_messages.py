"""Status-bar messages that keep their end readable: a long path in one is elided in the middle to
the room the bar leaves it, whole in the tooltip, and fitted again when that room changes."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QSizeGrip, QStatusBar, QWidget

from app.editor.plain import plain_tip


def elide_path(text: str, path: str, metrics: QFontMetrics, width: int) -> str:
    """``text`` fitting ``width`` pixels by eliding ``path`` in it in the middle, so that the
    sentence's end (what to do, that the labels are safe) stays readable."""
    if not path or path not in text or metrics.horizontalAdvance(text) <= width:
        return text
    count = text.count(path)
    rest = metrics.horizontalAdvance(text.replace(path, ""))
    room = max((width - rest) // count, metrics.horizontalAdvance("/.../"))
    return text.replace(path, metrics.elidedText(path, Qt.TextElideMode.ElideMiddle, room))


class StatusMessages(QObject):
    """Tells the user things in ``bar``, left of its permanent ``labels`` (whose texts change)."""

    def __init__(self, bar: QStatusBar, labels: Sequence[QWidget], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bar = bar
        self.labels = tuple(labels)
        self._full: tuple[str, str, str, int] | None = None  # (shown, whole text, path, timeout)
        # refitted once the bar has laid out its labels, not in the middle of a resize
        self._fit = QTimer(self)
        self._fit.setSingleShot(True)
        self._fit.timeout.connect(self._refit)
        bar.messageChanged.connect(self._message_changed)
        bar.installEventFilter(self)

    def tell(self, text: str, path: str = "", timeout: int = 0) -> None:
        """Show ``text`` in the status bar; a long ``path`` in it is elided in the middle so that its
        end stays readable; the whole text is the tooltip."""
        shown = elide_path(text, path, self.bar.fontMetrics(), self.message_width())
        self._full = (shown, text, path, timeout)
        self.bar.setToolTip(plain_tip(text))
        self.bar.showMessage(shown, timeout)

    def message_width(self) -> int:
        """The room QStatusBar gives a message: left of its permanent labels and the size grip."""
        bar = self.bar
        right = bar.width() - 12
        grip = bar.findChild(QSizeGrip)
        if grip is not None and grip.isVisible():
            right = grip.x()
        labels = [w.x() for w in self.labels if w.isVisible()]
        if labels:
            right = min(right, min(labels) - 2)
        return max(80, right - 6 - 4)  # QStatusBar's own margins around the message

    def _refit(self) -> None:
        kept = self._full
        if kept is None or self.bar.currentMessage() != kept[0]:
            return
        _shown, text, path, timeout = kept
        refitted = elide_path(text, path, self.bar.fontMetrics(), self.message_width())
        if refitted != kept[0]:
            self.tell(text, path, timeout)

    def _message_changed(self, text: str) -> None:
        if self._full is not None and text != self._full[0]:
            self._full = None  # another message (or none): its tooltip goes with it
            self.bar.setToolTip("")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        relaid = event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest)
        if relaid and self._full is not None and watched is self.bar:
            self._fit.start()  # once the bar has laid out its labels
        return super().eventFilter(watched, event)
