"""People and their roles: the site-wide role and the role in each project.

A person's site-wide role is ``admin`` or ``labeler``; what they may do in a project is their role
there (a reviewer of one project is a labeler site-wide). ``sitelabel users list`` shows both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.errors import NotFoundError
from app.core.permissions import effective_role
from app.core.records import Role, User

if TYPE_CHECKING:
    from app.storage import Database


@dataclass(frozen=True)
class Person:
    """A user with their site-wide role and their membership role in each project."""

    user: User
    projects: dict[str, Role]  # project name -> role there, for the projects they are a member of

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def site_role(self) -> Role:
        return self.user.role

    def role_in(self, project: str) -> Role | None:
        """Their role in ``project``: the membership role; a site admin who is not a member is admin
        there (None: not a member). A site admin may do everything in every project whatever the
        membership says (app.core.permissions.effective_role)."""
        member = self.projects.get(project)
        return member if member is not None else effective_role(self.user.role, None)


def list_people(database: Database, project: str | None = None) -> list[Person]:
    """Everyone, by name, with their project roles (``project``: that project's only; NotFoundError
    when there is no such project). Reads what every database user may read: no role is needed."""
    with database.unit_of_work(readonly=True) as uow:
        projects = uow.projects.list()
        if project is not None:
            projects = [p for p in projects if p.name == project]
            if not projects:
                known = [p.name for p in uow.projects.list()]
                raise NotFoundError(f"no project named {project!r} in {database.url}; there are: {known}")
        roles: dict[int, dict[str, Role]] = {}
        for record in projects:
            for user, role in uow.users.members(record.id):
                roles.setdefault(user.id, {})[record.name] = role
        return [Person(u, roles.get(u.id, {})) for u in uow.users.list()]
