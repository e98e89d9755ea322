"""`users list` shows each person's project roles beside the site-wide one (issue #16, item 9): a
project reviewer is a labeler site-wide, and was listed as just "labeler". On SQLite and PostgreSQL,
through the API (api.people) and the command line."""

from __future__ import annotations

import json

import pytest

from app import api
from app.cli import main
from app.core.errors import NotFoundError
from app.core.records import Role


def _team(db_url: str) -> None:
    ada = api.create_project(db_url, "liver", user="ada")  # the first project: ada is site admin
    knee = api.create_project(ada.db, "knee", user="ada")
    ada.set_member("dave", "reviewer")
    knee.set_member("dave", "labeler")
    knee.set_member("erin", "project_admin")
    api.set_site_role(ada.db, "sam", "admin", user="ada")  # a site admin in no project
    ada.close()
    knee.close()


def test_people_carry_their_role_in_each_project(db_url: str) -> None:
    _team(db_url)
    people = {p.name: p for p in api.people(db_url)}
    dave, erin, ada, sam = people["dave"], people["erin"], people["ada"], people["sam"]
    assert dave.site_role is Role.LABELER
    assert dave.projects == {"liver": Role.REVIEWER, "knee": Role.LABELER}
    assert dave.role_in("liver") is Role.REVIEWER and dave.role_in("knee") is Role.LABELER
    assert erin.projects == {"knee": Role.PROJECT_ADMIN} and erin.role_in("liver") is None
    assert ada.site_role is Role.ADMIN and ada.role_in("knee") is Role.PROJECT_ADMIN  # as a member
    assert ada.projects == {"liver": Role.PROJECT_ADMIN, "knee": Role.PROJECT_ADMIN}
    assert sam.projects == {} and sam.role_in("knee") is Role.ADMIN  # admin everywhere

    only_liver = {p.name: p.projects for p in api.people(db_url, project="liver")}
    assert only_liver == {
        "ada": {"liver": Role.PROJECT_ADMIN},
        "dave": {"liver": Role.REVIEWER},
        "erin": {},
        "sam": {},
    }
    with pytest.raises(NotFoundError, match="no project named 'hip'"):
        api.people(db_url, project="hip")


def test_users_list_shows_project_roles(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _team(db_url)

    def lines(*args: str) -> dict[str, str]:
        capsys.readouterr()
        assert main(["users", "list", "--db", db_url, *args]) == 0
        rows = capsys.readouterr().out.splitlines()
        return {row.split()[0]: " ".join(row.split()[1:]) for row in rows[1:]}

    listed = lines()
    assert listed["dave"] == "labeler knee: labeler, liver: reviewer"
    assert listed["erin"] == "labeler knee: project_admin"
    assert listed["ada"] == "admin admin in every project (member: knee: project_admin, liver: project_admin)"
    assert listed["sam"] == "admin admin in every project"

    in_liver = lines("--project", "liver")
    assert in_liver == {
        "ada": "project_admin admin",
        "dave": "reviewer labeler",
        "erin": "- labeler",
        "sam": "admin admin",
    }

    capsys.readouterr()
    assert main(["users", "list", "--db", db_url, "--project", "knee", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["dave"] == {
        "name": "dave",
        "site_role": "labeler",
        "projects": {"knee": "labeler"},
        "role": "labeler",
    }
