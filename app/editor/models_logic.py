"""The models panel's state and rules, usable without the widget (3D Slicer's Logic): the site's
models and the pre-label quality as table rows, which models a pass runs, what a pre-label pass or
a training run does on the pool, and the one-line report of each. No Qt:
:mod:`app.editor.models_panel` shows it and runs the work with a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.api import ModelInfo, Project
    from app.workflow.model_quality import QualityRow

Report = Callable[[int, int], bool]  # progress(done, total) -> False once cancelled
Row = tuple[str, ...]


def number_text(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.0f} %" if percent else f"{value:.3f}"


def model_rows(infos: Sequence[ModelInfo]) -> list[Row]:
    """Name, version, task, classes, and the file's state (its problem, or whether it is registered)."""
    rows: list[Row] = []
    for info in infos:
        classes = ", ".join(info.classes.values())
        state = info.problem or ("hash ok" if info.registered else "not registered")
        rows.append((info.name, info.version, info.task, classes, state))
    return rows


def quality_rows(quality: Sequence[QualityRow]) -> list[Row]:
    return [
        (
            q.model,
            q.version,
            q.label,
            str(q.groups),
            str(q.reviewed),
            str(q.accepted),
            number_text(q.accept_rate, percent=True),
            number_text(q.mean_dice),
            number_text(q.mean_iou),
        )
        for q in quality
    ]


def usable_models(project: Project) -> list[str]:
    """Runs on a worker: every registered model whose file checks out, chained in one pass."""
    from app.core.errors import ValidationError

    usable = [i.ref for i in project.models(check=True) if i.registered and i.problem is None]
    if not usable:
        raise ValidationError("no usable registered model: register or train one first")
    return usable


def prelabel_text(report: object) -> str:
    from app.workflow.prelabel import PrelabelReport

    assert isinstance(report, PrelabelReport)
    head = "Pre-label pass cancelled" if report.cancelled else "Pre-label pass done"
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    human = (
        f" {report.human_frames} frame(s) left alone: a person had already labeled the class there."
        if report.human_frames
        else ""
    )
    return (
        f"{head}: {report.annotations} pre-label(s) on {report.assets} item(s)"
        f" ({report.frames} frame(s){skipped}).{human}"
    )


def train_text(report: object) -> str:
    from app.workflow.training import TrainReport

    assert isinstance(report, TrainReport)
    return (
        f"Trained and registered {report.model.ref} from {len(report.items)} labeled frame(s) "
        f"in {report.result.seconds:.1f} s: validation Dice {report.validation_dice:.2f} "
        f"({report.validation.describe()}), training Dice {report.train_dice:.2f}."
    )


class RunKind(Enum):
    PRELABEL = "prelabel"  # stored pre-labels: the item on screen reloads
    TRAIN = "train"  # registered a model


@dataclass(frozen=True)
class ModelRun:
    """One pre-label pass or training run for the pool, with what the panel says about it."""

    kind: RunKind
    work: Callable[[Report], Any]
    text: str  # shown while it runs
    report: Callable[[Any], str]  # the one line about its result
    save_first: bool = False  # the open item is saved first: a pass replaces untouched pre-labels


class ModelsLogic:
    """What the panel lists and what its buttons start."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.infos: list[ModelInfo] = []
        self.quality: list[QualityRow] = []
        self.last_result: object = None  # the last run's report, or its error message

    def set_models(self, infos: Sequence[ModelInfo]) -> list[Row]:
        self.infos = list(infos)
        return model_rows(self.infos)

    def set_quality(self, quality: Sequence[QualityRow]) -> list[Row]:
        self.quality = list(quality)
        return quality_rows(self.quality)

    def chosen(self, rows: Iterable[int]) -> list[str] | None:
        """The usable models of the selected table ``rows``; None when none is selected (then the
        pass runs every usable registered model, listed on the worker: the table may not be loaded)."""
        picked = [self.infos[r] for r in sorted(set(rows)) if r < len(self.infos)]
        if not picked:
            return None
        return [i.ref for i in picked if i.registered and i.problem is None]

    def prelabel(self, asset_ids: list[int] | None, what: str, chosen: list[str] | None) -> ModelRun | str:
        """A pass of the ``chosen`` models (None: every usable one) over ``asset_ids`` (None: all
        items), or why it cannot run."""
        if chosen == []:
            return "The selected models cannot run here (see the File column)."
        project = self.project

        def work(report: Report) -> object:
            models = chosen or usable_models(project)
            return project.prelabel(models, asset_ids, progress=report)

        names = ", ".join(chosen) if chosen else "every usable model"
        text = f"Pre-labelling {what} with {names}…"
        return ModelRun(RunKind.PRELABEL, work, text, prelabel_text, save_first=True)

    def train(self, label: str) -> ModelRun | str:
        """Training a micro-model of class ``label`` from the human labels so far, or why not."""
        if not label:
            return "The ontology has no mask or polygon class to train."
        project = self.project
        return ModelRun(
            RunKind.TRAIN,
            lambda report: project.train_micro_model(label, progress=report),
            f"Training a micro-model for {label!r}…",
            train_text,
        )

    def finished(self, run: ModelRun, result: object) -> str:
        """Keep the run's result; the line the panel shows."""
        self.last_result = result
        return run.report(result)

    def failed(self, message: str) -> None:
        self.last_result = message
