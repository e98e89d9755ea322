"""The unit of work: one session, one transaction, the repositories bound to it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.storage.repo_activity import ActivityRepository
from app.storage.repo_annotations import AnnotationRepository
from app.storage.repo_leases import LeaseRepository
from app.storage.repo_models import ModelRepository
from app.storage.repo_restore import RestoreRepository
from app.storage.repo_reviews import ReviewRepository
from app.storage.repo_splits import SplitRepository
from app.storage.repo_tasks import TaskRepository
from app.storage.repo_threads import ThreadRepository
from app.storage.repositories import (
    AssetRepository,
    AuditRepository,
    DataRootRepository,
    DatasetRepository,
    OntologyRepository,
    ProjectRepository,
    UserRepository,
)


class UnitOfWork:
    """Repositories sharing one session. Made by ``Database.unit_of_work()``, which commits on a
    clean exit and rolls back on an exception."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.audit = AuditRepository(session)
        self.users = UserRepository(session)
        self.projects = ProjectRepository(session)
        self.ontologies = OntologyRepository(session)
        self.datasets = DatasetRepository(session)
        self.data_roots = DataRootRepository(session)
        self.assets = AssetRepository(session, self.data_roots)
        self.annotations = AnnotationRepository(session, self.audit)
        self.threads = ThreadRepository(session)
        self.tasks = TaskRepository(session)  # the labeling queue's tasks
        self.leases = LeaseRepository(session)  # who holds which task: leases, submissions, claims
        self.models = ModelRepository(session)  # registered ML models and their predictions
        self.activity = ActivityRepository(session)  # read-only figures of the activity view
        self.reviews = ReviewRepository(session)  # review verdicts and the review queue
        self.splits = SplitRepository(session)  # train/val/test plan and assignments
        self.restore = RestoreRepository(session)  # queue rows as an archive recorded them

    def flush(self) -> None:
        """Send pending changes now (still inside the transaction)."""
        self.session.flush()
