"""Shared set-up of the pre-label tests: a team in a real project. The threshold model is
support.models', the retina vessel tiles support.retina's."""

from __future__ import annotations

from typing import Any

from app import api

ADMIN, LABELER, OTHER, REVIEWER = "alice", "ana", "bob", "rita"
ONTOLOGY = {"classes": [{"name": "vessel", "color": "#c0504d", "kinds": ["polygon", "mask"]}]}


def make_team_project(db_url: str, ontology: dict[str, Any] | None = None) -> dict[str, api.Project]:
    """alice (project admin), ana and bob (labelers), rita (reviewer), each with an open Project;
    the ontology is ONTOLOGY unless given."""
    admin = api.create_project(db_url, "prelabels", ontology=ontology or ONTOLOGY, user=ADMIN)
    admin.set_member(LABELER, "labeler")
    admin.set_member(OTHER, "labeler")
    admin.set_member(REVIEWER, "reviewer")
    people = {ADMIN: admin}
    for name in (LABELER, OTHER, REVIEWER):
        people[name] = api.open_project(admin.db, "prelabels", user=name)
    return people
