"""Machine-learning models: the site's registry, pre-label passes, on-site micro-models, quality.

Who may do what: anyone in the project reads (models, quality, low-confidence maps); reviewers
and above run pre-label passes; project admins register and train models. Every change is
audited (``model.register``, ``model.train``, ``model.prelabel`` per asset, ``model.prelabel_run``).

    project.register_model("/mnt/models/liver-seg.onnx")      # manifest liver-seg.toml beside it
    report = project.prelabel(["liver-seg"], progress=lambda done, total: True)
    trained = project.train_micro_model("lesion")             # from the labels so far, validated
    trained.validation_dice, trained.train_dice                # TrainingRefused below the floor
    project.prelabel([trained.model.ref])
    project.model_quality()                                   # Dice/IoU/accept rate per version
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.api._project import Progress, ProjectBase
from app.config import user_data_dir
from app.core.errors import NotFoundError, PermissionDenied, ValidationError
from app.core.permissions import RANK, Action
from app.core.records import Role
from app.workflow.training_guard import DEFAULT_MIN_DICE, DEFAULT_MIN_PIXELS

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from app.workflow.model_quality import QualityRow
    from app.workflow.prelabel import ModelHandle, PrelabelReport
    from app.workflow.training import RetrainCheck, TrainReport


@dataclass(frozen=True)
class ModelInfo:
    """A model as the site knows it: registered in the database, present in the models folder, or both."""

    name: str
    version: str
    task: str
    classes: dict[int, str]
    sha256: str
    path: str  # relative to the models folder (or absolute outside it)
    registered: bool
    problem: str | None = None  # why it cannot run here (missing file, hash mismatch, ...)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "task": self.task,
            "classes": self.classes,
            "sha256": self.sha256,
            "path": self.path,
            "registered": self.registered,
            "problem": self.problem,
        }


def _classes(manifest: dict[str, Any]) -> dict[int, str]:
    raw = manifest.get("classes") or {}
    return {int(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


class ModelsMixin(ProjectBase):
    # --- helpers ------------------------------------------------------------------------------
    @property
    def models_folder(self) -> Path:
        """The site's ``models_dir``, else a per-user folder (a workstation without a site config)."""
        return self.config.models_dir if self.config.models_dir is not None else user_data_dir() / "models"

    def _require_role(self, least: Role, what: str) -> None:
        self.require(Action.VIEW)
        role = self.role
        if role is None or RANK[role] < RANK[least]:
            mine = role.value.replace("_", " ") if role else "not a member"
            raise PermissionDenied(
                f"{self.user_name} is a {mine} in project {self.name!r}; to {what} needs "
                f"{least.value.replace('_', ' ')} or above"
            )

    def _handles(self, names: Sequence[str]) -> list[ModelHandle]:
        from app.workflow.prelabel import ModelHandle, load_stored

        handles: list[ModelHandle] = []
        with self.db.unit_of_work(readonly=True) as uow:
            stored = []
            for wanted in names:
                name, _, version = wanted.partition("@")
                stored.append(uow.models.find(name, version or None))
        for record in stored:
            handles.append(ModelHandle(record, load_stored(record, self.models_folder)))
        return handles

    # --- the registry -----------------------------------------------------------------------------
    def models(self, *, check: bool = False) -> list[ModelInfo]:
        """Registered models and those lying in the models folder; ``check`` verifies each file."""
        from app.models.errors import ModelError
        from app.models.registry import ModelRegistry
        from app.workflow.prelabel import load_stored

        self.require(Action.VIEW)
        with self.db.unit_of_work(readonly=True) as uow:
            stored = uow.models.list()
        out: list[ModelInfo] = []
        seen: set[str] = set()
        for record in stored:
            problem = None
            if check:
                try:
                    load_stored(record, self.models_folder)
                except (ModelError, NotFoundError) as exc:
                    problem = str(exc)
            elif not (self.models_folder / record.path).is_file():
                problem = f"{record.path} is missing from {self.models_folder}"
            manifest = dict(record.manifest)
            task = str(manifest.get("task", "?"))
            out.append(
                ModelInfo(
                    record.name,
                    record.version,
                    task,
                    _classes(manifest),
                    record.sha256,
                    record.path,
                    True,
                    problem,
                )
            )
            seen.add(record.ref)
        registry = ModelRegistry(self.models_folder)
        for entry in registry.entries(check=check):
            if entry.manifest is not None and entry.manifest.ref in seen:
                continue
            m = entry.manifest
            path = entry.manifest_path.relative_to(self.models_folder).as_posix()
            out.append(
                ModelInfo(
                    m.name if m else entry.manifest_path.stem,
                    m.version if m else "?",
                    m.task if m else "?",
                    dict(m.classes) if m else {},
                    m.sha256 if m else "",
                    path,
                    False,
                    entry.problem,
                )
            )
        return out

    def register_model(self, path: str | Path) -> ModelInfo:
        """Verify a model (``.onnx`` with its manifest beside it), copy it into the models folder and
        register it; project admins. Refused models raise ModelRefused with the reason."""
        from app.models.registry import ModelRegistry

        self._require_role(Role.PROJECT_ADMIN, "register models")
        registry = ModelRegistry(self.models_folder)
        loaded = registry.add(Path(path))
        m = loaded.manifest
        relative = registry.relative(loaded.path)
        with self.db.unit_of_work() as uow:
            record, created = uow.models.register(m.name, m.version, m.sha256, m.to_dict(), relative)
            uow.audit.record(
                self.user.id,
                "model.register",
                "model",
                record.id,
                {"ref": m.ref, "sha256": m.sha256, "created": created, "project": self.id},
            )
        return ModelInfo(m.name, m.version, m.task, dict(m.classes), m.sha256, relative, True)

    # --- pre-labels ---------------------------------------------------------------------------------
    def prelabel(
        self,
        model_names: Sequence[str],
        asset_ids: Sequence[int] | None = None,
        *,
        dataset: str | None = None,
        frame_stride: int = 1,
        replace: bool = True,
        overwrite_human: bool = False,
        threads: int | None = None,
        progress: Progress | None = None,
    ) -> PrelabelReport:
        """Run registered models (``NAME`` or ``NAME@VERSION``, chained in one pass) over assets
        (default: all, or one dataset's); reviewers and above. See app.workflow.prelabel.

        A frame a person already labeled with a class gets no pre-label of that class
        (``report.human_frames`` counts them) unless ``overwrite_human`` is True; the person's
        labels are never changed either way."""
        from app.workflow.prelabel import run_prelabel

        self._require_role(Role.REVIEWER, "run pre-label passes")
        if not model_names:
            raise ValidationError("name at least one model to pre-label with")
        handles = self._handles(model_names)
        ids = list(asset_ids) if asset_ids is not None else self._asset_ids(dataset)
        for asset_id in ids:
            self.asset(asset_id)
        report = run_prelabel(
            self.db,
            self.id,
            self.user.id,
            handles,
            ids,
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            frame_stride=frame_stride,
            replace=replace,
            threads=threads,
            overwrite_human=overwrite_human,
            progress=progress,
        )
        with self.db.unit_of_work() as uow:
            uow.audit.record(
                self.user.id,
                "model.prelabel_run",
                "project",
                self.id,
                {
                    "models": report.models,
                    "assets": report.assets,
                    "annotations": report.annotations,
                    "human_frames": report.human_frames,
                    "overwrite_human": overwrite_human,
                    "cancelled": report.cancelled,
                },
            )
        return report

    def _asset_ids(self, dataset: str | None) -> list[int]:
        with self.db.unit_of_work(readonly=True) as uow:
            dataset_id = None
            if dataset is not None:
                match = [d for d in uow.datasets.list(self.id) if d.name == dataset]
                if not match:
                    raise NotFoundError(f"project {self.name!r} has no dataset {dataset!r}")
                dataset_id = match[0].id
            return [a.id for a in uow.assets.list(self.id, dataset_id)]

    def low_confidence_map(self, annotation_id: int) -> npt.NDArray[np.float32]:
        """Where a pre-label's model was unsure: float32 (H, W), 1 = a coin toss, 0 = sure."""
        from app.workflow.prelabel import low_confidence_map

        self.require(Action.VIEW)
        return low_confidence_map(
            self.db,
            self.id,
            annotation_id,
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            models_folder=self.models_folder,
        )

    def score_thresholds(self) -> dict[str, float]:
        """Each known model's score threshold from its manifest, keyed by the ``model:NAME@VERSION``
        source its pre-labels carry; a model whose manifest cannot be read is left out."""
        from app.models.errors import ModelError
        from app.models.manifest import manifest_for, read_manifest

        found: dict[str, float] = {}
        for info in self.models():  # checks the role
            path = self.models_folder / info.path
            try:
                manifest = read_manifest(path if path.suffix in (".json", ".toml") else manifest_for(path))
            except (ModelError, OSError, ValueError):
                continue
            found[f"model:{info.ref}"] = float(manifest.score_threshold)
        return found

    # --- on-site training -------------------------------------------------------------------------
    def train_micro_model(
        self,
        label: str,
        *,
        labeler: str | None = None,
        name: str | None = None,
        min_dice: float = DEFAULT_MIN_DICE,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        progress: Progress | None = None,
    ) -> TrainReport:
        """Train, validate, export (ONNX) and register a micro-model for ``label`` from the human
        labels so far (only ``labeler``'s when given); project admins. Pre-label with
        ``report.model.ref``.

        Labeled frames are held out to validate on (each in turn with fewer than 5, else a seeded
        20 %); ``report.validation_dice`` is measured there, ``report.train_dice`` on the frames it
        learned from. Raises TrainingRefused (a ValidationError; its message says what to label
        next), registering nothing, when the class is labeled on one frame only, its labels cover
        fewer than ``min_pixels`` pixels, or the validation Dice is below ``min_dice``."""
        from app.workflow.training import train_and_register

        self._require_role(Role.PROJECT_ADMIN, "train models")
        labeler_id = None
        if labeler is not None:
            with self.db.unit_of_work(readonly=True) as uow:
                labeler_id = uow.users.get_by_name(labeler).id
        return train_and_register(
            self.db,
            self.id,
            self.user.id,
            label,
            roots=self.config.all_data_roots,
            max_pixels=self.config.max_image_pixels,
            models_folder=self.models_folder,
            name=name,
            labeler_id=labeler_id,
            min_dice=min_dice,
            min_pixels=min_pixels,
            progress=progress,
        )

    def retrain_due(self, label: str, *, every: int = 20) -> RetrainCheck:
        """Whether ``every`` new human labels of ``label`` arrived since its newest micro-model."""
        from app.workflow.training import retrain_check

        self.require(Action.VIEW)
        self._require_all_labels("whether a retrain is due")
        return retrain_check(self.db, self.id, label, every=every)

    def model_quality(self) -> list[QualityRow]:
        """Per model version and class: how much labelers changed its pre-labels (accept rate, Dice, IoU)."""
        from app.workflow.model_quality import model_quality

        self.require(Action.VIEW)
        self._require_all_labels("model quality")
        return model_quality(self.db, self.id)

    def _require_all_labels(self, what: str) -> None:
        """Figures over every labeler's labels: refused where PostgreSQL row security shows this
        user only their own (the figure would be silently wrong), i.e. to labelers there."""
        from app.storage.row_security import sees_all_labels

        with self.db.unit_of_work(readonly=True) as uow:
            if sees_all_labels(uow.session, self.id):
                return
        raise PermissionDenied(
            f"{what} is computed from every labeler's labels, and under the database's row-level "
            f"security {self.user_name} reads only their own; ask a reviewer"
        )
