"""A project's workflow settings after creation: consensus share and count, batch size, lease time.

    project.settings                                  # ProjectSettings, read fresh each time
    project.set_setting("consensus_share", "20%")      # or 0.2; keys: app.workflow.project_settings
    project.update_settings(batch_size=5, lease_seconds=900)
    project.settings_history()                         # who changed what, when, from and to

Changes need the project admin role and are audited. New items follow a change; items in progress
keep their plan (the rules: :mod:`app.workflow.project_settings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.api._project import ProjectBase
from app.core.permissions import Action

if TYPE_CHECKING:
    from app.core.records import ProjectSettings
    from app.workflow.project_settings import SettingsChange, SettingsEdit


class SettingsMixin(ProjectBase):
    def update_settings(self, **values: Any) -> SettingsChange:
        """Change some settings at once: ``consensus_share`` (0..1), ``consensus_count`` (>= 1),
        ``batch_size`` (>= 1), ``lease_seconds`` (1 s .. 7 days; or ``lease_time`` as ``"30m"``).
        Project admins only (PermissionDenied otherwise); a bad value raises ValidationError and
        changes nothing; one audit row records the old and new values.

        What it does to the queue: items queued from now on and claims made from now on follow the
        new values. Items in progress keep their plan: an item anyone has claimed keeps its number
        of labelers (a consensus item with some copies done still needs as many), and a running
        lease keeps its length. Queued items nobody has claimed yet are planned again when the
        consensus share or count changes (:mod:`app.workflow.project_settings`)."""
        from app.workflow.project_settings import change_settings

        self.require(Action.CHANGE_SETTINGS)
        return change_settings(self.db, self.id, self.user.id, values)

    def set_setting(self, key: str, value: object) -> ProjectSettings:
        """Change one setting by its key (``consensus_share``, ``consensus_count``, ``batch_size``,
        ``lease_time``; dashes work too) from a value or its text (``"25%"``, ``"1h30m"``; a bare
        lease time is minutes). Returns the new settings; the rules are those of update_settings."""
        return self.update_settings(**{key: value}).after

    def settings_history(self, limit: int = 50) -> list[SettingsEdit]:
        """Audited settings changes, newest first: when, who, the setting, its old and new value."""
        from app.workflow.project_settings import settings_history

        self.require(Action.VIEW)
        return settings_history(self.db, self.id, limit)
