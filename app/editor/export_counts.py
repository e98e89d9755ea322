"""What the File > Export dialog says an export would hold, before it writes (plain text from
``Project.export_preview``; no Qt here, so it is tested without a display)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.item_status import MEANINGS, ItemStatus

if TYPE_CHECKING:
    from app.exchange.export_preview import ExportPreview

_FIRST = (ItemStatus.ACCEPTED, ItemStatus.SUBMITTED)
#: the status choices, (shown text, value for export(status=...)): "any" lets the labels rule decide
STATUS_CHOICES: tuple[tuple[str, str | None], ...] = (
    ("any: the labels rule decides", None),
    *((f"{s.label}: {MEANINGS[s]}", s.value) for s in (*_FIRST, *(s for s in ItemStatus if s not in _FIRST))),
)
#: the labels rules explained (the dialog's tooltip; app.exchange.final_labels has the details)
LABELS_HELP = (
    "final: per item the accepted review result (fixes included), a consensus item's consensus "
    "label, or a single labeler's submission; never untouched model pre-labels, drafts or a "
    "superseded consensus.\nall: every label.\nlabeler:NAME: NAME's own labels.\n"
    "source:human, source:consensus, source:model:NAME@VER ...: by who made them."
)
SHOWN_REASONS = 4  # reasons listed; the rest are counted


def _reasons(title: str, reasons: list[tuple[str, int]]) -> list[str]:
    if not reasons:
        return []
    lines = [title]
    lines += [f"  {count} × {why}" for why, count in reasons[:SHOWN_REASONS]]
    rest = sum(count for _, count in reasons[SHOWN_REASONS:])
    if rest:
        lines.append(f"  {rest} more for {len(reasons) - SHOWN_REASONS} other reasons")
    return lines


def counts_text(preview: ExportPreview, *, skip_unwritable: bool) -> str:
    """``4 items, 20 annotations (coin 18, lesion 2)``, then what is left out and why."""
    classes = ", ".join(f"{name} {n}" for name, n in preview.per_class.items())
    noun = "item" if preview.items == 1 else "items"
    lines = [
        f"{preview.items} {noun}, {preview.annotations} annotations"
        + (f" ({classes})" if classes else "")
        + f" — labels: {preview.labels}"
    ]
    lines += _reasons("Left out (not selected):", [(r.why, r.count) for r in preview.skipped])
    lost = [(r.why, r.count) for r in preview.unwritable]
    lines += _reasons(f"The {preview.format} format cannot hold:", lost)
    if lost and not skip_unwritable:
        lines.append("The export will stop on these unless “Skip what this format cannot write” is on.")
    elif lost:
        lines.append(f"{preview.writable_annotations} annotations will be written; the rest are listed.")
    return "\n".join(lines)
