"""Who may do what. Enforced in the API for every action, not only hidden in the UI.

Roles are ordered: labeler < reviewer < project admin < admin. A site admin (global role) may do
everything in every project; otherwise the user's role in the project decides, and a user who is
not a member of a project may do nothing in it.
"""

from __future__ import annotations

from enum import StrEnum

from app.core.errors import PermissionDenied
from app.core.records import Role


class Action(StrEnum):
    VIEW = "view the project's data"
    ANNOTATE = "label assets"
    REVIEW = "review labels"
    SEE_ALL_LABELS = "see other labelers' labels"
    EXPORT = "export labels"
    IMPORT_DATA = "register data"
    IMPORT_LABELS = "import labels"
    EDIT_ONTOLOGY = "change the ontology"
    CHANGE_SETTINGS = "change the project's settings"
    MANAGE_PEOPLE = "manage people and roles"


RANK = {Role.LABELER: 1, Role.REVIEWER: 2, Role.PROJECT_ADMIN: 3, Role.ADMIN: 4}

#: the least role each action needs
NEEDS: dict[Action, Role] = {
    Action.VIEW: Role.LABELER,
    Action.ANNOTATE: Role.LABELER,
    Action.REVIEW: Role.REVIEWER,
    Action.SEE_ALL_LABELS: Role.REVIEWER,
    Action.EXPORT: Role.REVIEWER,
    Action.IMPORT_DATA: Role.PROJECT_ADMIN,
    Action.IMPORT_LABELS: Role.PROJECT_ADMIN,
    Action.EDIT_ONTOLOGY: Role.PROJECT_ADMIN,
    Action.CHANGE_SETTINGS: Role.PROJECT_ADMIN,
    Action.MANAGE_PEOPLE: Role.PROJECT_ADMIN,
}


def effective_role(global_role: Role, project_role: Role | None) -> Role | None:
    """A site admin is admin everywhere; others have their project role (None: not a member)."""
    if global_role is Role.ADMIN:
        return Role.ADMIN
    return project_role


def allowed(role: Role | None, action: Action) -> bool:
    return role is not None and RANK[role] >= RANK[NEEDS[action]]


def require(role: Role | None, action: Action, *, user: str, project: str) -> None:
    """Raise PermissionDenied with what the user can do about it."""
    if allowed(role, action):
        return
    needed = NEEDS[action].value.replace("_", " ")
    if role is None:
        raise PermissionDenied(
            f"{user} is not a member of project {project!r} and cannot {action.value}; a project admin can "
            f"add them: sitelabel users add {user} --role {NEEDS[action].value} --project {project!r}"
        )
    raise PermissionDenied(
        f"{user} is a {role.value.replace('_', ' ')} in project {project!r}; to {action.value} needs "
        f"{needed} or above"
    )
