"""PostgreSQL per-user roles and row-level security (issue #10): after ``sitelabel db secure
--sync-users`` a labeler connected as herself never reads another labeler's blind labels, not even
with hand-written SQL, while the labeler and review workflows keep working through app.api.

The throwaway cluster trusts local logins, so a test logs in by role name; a real site sets
passwords (``--password-file``) and scram-sha-256 in pg_hba.conf (installers/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from support.labeling import work_on
from support.ontology_check import assert_ontology_allows

from app import api, sample_data
from app.cli import main
from app.core.commands import RemoveAnnotation
from app.core.errors import NotFoundError, PermissionDenied
from app.core.records import TaskStatus
from app.workflow import queue
from app.workflow.editing import AcceptPrelabels, EditSession
from app.workflow.journal import Journal

pytestmark = pytest.mark.postgres

ONTOLOGY: dict[str, Any] = {
    "classes": [
        {"name": "coin", "color": "#c0504d", "kinds": ["polygon", "mask", "box"]},
        {"name": "lesion", "color": "#4f81bd", "kinds": ["box", "polygon", "mask"]},
    ]
}
IMAGES = ("coins.png", "camera.png", "astronaut.png", "chelsea.png", "coffee.png")
LABELERS = ("alice", "bob", "carol")
REVIEWER = "rita"
PROJECT = "rls"


def square(x0: float, y0: float, x1: float, y1: float, label: str = "coin") -> dict[str, Any]:
    return {"kind": "polygon", "label": label, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}


def url_as(pg_url: str, role: str) -> str:
    return make_url(pg_url).set(username=role, password=None).render_as_string(hide_password=False)


@contextmanager
def psql_as(pg_url: str, role: str) -> Iterator[psycopg.Connection[Any]]:
    """A direct psycopg connection as ``role`` (autocommit: one refused statement aborts nothing)."""
    url = make_url(pg_url)
    conn = psycopg.connect(
        host=url.host, port=url.port, user=role, dbname=url.database, autocommit=True, connect_timeout=10
    )
    try:
        yield conn
    finally:
        conn.close()


def rows(conn: psycopg.Connection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query, params or None).fetchall()


def refused(conn: psycopg.Connection[Any], query: str, *params: Any) -> str:
    """Run a statement that must fail; returns PostgreSQL's message."""
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(query, params or None)
    return str(caught.value)


@dataclass
class Team:
    url: str
    ada: api.Project  # site admin on the owner's connection (no row security)
    assets: dict[str, int]

    def as_owner(self, name: str) -> api.Project:
        return api.open_project(self.ada.db, PROJECT, user=name)


def make_team(pg_url: str) -> Team:
    """3 labelers + 1 reviewer; items: a blind consensus item waiting for review, a consensus item
    merged (done), a pre-labeled item, an item rejected back to bob with a note, a fresh item."""
    ada = api.create_project(pg_url, PROJECT, ontology=ONTOLOGY, user="ada")
    ids = ada.import_data([sample_data.skimage_images() / name for name in IMAGES])
    assets = dict(zip(("blind", "merged", "prelabeled", "rejected", "fresh"), ids, strict=True))
    queue.set_required(ada.db, ada.id, [assets["blind"], assets["merged"]], 2)
    for name in LABELERS:
        ada.set_member(name, "labeler")
    ada.set_member(REVIEWER, "reviewer")
    team = Team(pg_url, ada, assets)
    alice, bob, rita = (team.as_owner(n) for n in ("alice", "bob", REVIEWER))
    work_on(alice, assets["merged"], [square(0, 0, 40, 40)])
    work_on(bob, assets["merged"], [square(0, 0, 40, 40)])
    rita.merge_consensus(assets["merged"])
    assert_ontology_allows(rita, rita.review_item(assets["merged"]).consensus)
    work_on(bob, assets["rejected"], [square(50, 50, 90, 90, "lesion")])
    rita.reject(assets["rejected"], "bob", "bob: the lesion outline misses the lower rim")
    ada.upload_annotations(
        assets["prelabeled"], [square(5, 5, 30, 30), square(60, 60, 80, 80)], source="model:m@1"
    )
    return team


def secure(url: str, folder: Path) -> None:
    """``sitelabel db secure --sync-users`` with a password for everyone (trust auth ignores it;
    without one a role gets NOLOGIN)."""
    passwords = folder / "passwords"
    people = ("ada", *LABELERS, REVIEWER)
    passwords.write_text("".join(f"{n}:pw-{n}\n" for n in people), encoding="utf-8")
    passwords.chmod(0o600)
    assert main(["db", "secure", url, "--sync-users", "--password-file", str(passwords)]) == 0


def owner_ids(team: Team, where: str, *params: Any) -> set[int]:
    with psql_as(team.url, "postgres") as conn:
        return {int(r[0]) for r in rows(conn, f"SELECT id FROM annotations WHERE {where}", *params)}


# --- direct SQL --------------------------------------------------------------------------------------
def test_a_labeler_with_direct_sql_never_reads_another_labelers_blind_rows(
    pg_url: str, tmp_path: Path
) -> None:
    team = make_team(pg_url)
    a = team.assets
    bob_blind = {
        int(i) for i in team.as_owner("bob").upload_annotations(a["blind"], [square(10, 10, 30, 30)])
    }
    alice_blind = set(team.as_owner("alice").upload_annotations(a["blind"], [square(12, 10, 32, 30)]))
    secure(pg_url, tmp_path)
    with psql_as(pg_url, "postgres") as conn:
        conn.execute("ANALYZE")  # planner statistics hold column values: they must not leak either

    users = {n: _user_id(team, n) for n in ("alice", "bob", REVIEWER)}
    bobs = owner_ids(team, "author_id = %s AND source = 'human'", users["bob"])
    assert bob_blind <= bobs and len(bobs) >= 3  # blind item, merged item, rejected item
    machine = owner_ids(team, "source LIKE 'model:%%'")
    consensus = owner_ids(team, "source = 'consensus'")
    assert machine and consensus
    everything = owner_ids(team, "true")

    with psql_as(pg_url, "alice") as conn:
        seen = {int(r[0]) for r in rows(conn, "SELECT id FROM annotations")}
        assert not seen & bobs
        mine = owner_ids(team, "author_id = %s", users["alice"])
        assert seen == mine | machine | consensus  # the merged item is done: its consensus shows
        assert alice_blind <= seen
        assert rows(conn, "SELECT count(*) FROM annotations WHERE author_id = %s", users["bob"]) == [(0,)]
        joined = "SELECT a.id FROM annotations a JOIN users u ON u.id = a.author_id WHERE u.name = 'bob'"
        assert rows(conn, joined) == []
        assert rows(conn, "SELECT count(*) FROM annotations a, assets s WHERE s.id = a.asset_id") == [
            (len(seen),)
        ]
        with conn.cursor().copy("COPY annotations (id) TO STDOUT") as copy:  # COPY is filtered too
            assert {int(r[0]) for r in copy.rows()} == seen
        # her own functions and views run with her rights: still filtered
        conn.execute(
            "CREATE FUNCTION pg_temp.peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER "
            "AS 'SELECT count(*) FROM public.annotations'"
        )
        assert rows(conn, "SELECT pg_temp.peek()") == [(len(seen),)]
        assert "permission denied" in refused(conn, "CREATE VIEW leak AS SELECT * FROM annotations")
        conn.execute("CREATE TEMP VIEW leak AS SELECT * FROM annotations")
        assert {int(r[0]) for r in rows(conn, "SELECT id FROM leak")} == seen
        # writes to bob's rows change nothing; the helper functions answer for her only
        bob_row = min(bob_blind)
        assert conn.execute("UPDATE annotations SET label = 'lesion' WHERE id = %s", (bob_row,)).rowcount == 0
        assert "permission denied" in refused(conn, "DELETE FROM annotations WHERE id = %s", min(alice_blind))
        assert "permission denied" in refused(conn, "DELETE FROM assets")  # would cascade to all labels
        forged = (
            "INSERT INTO annotations (asset_id, frame, kind, label, attributes, author_id, source, "
            "version, deleted, created_at, updated_at) VALUES (%s, 0, 'box', 'coin', '{}', %s, %s, 1, "
            "false, now(), now())"
        )
        assert "row-level security" in refused(conn, forged, a["blind"], users["bob"], "human")
        assert "row-level security" in refused(conn, forged, a["blind"], users["alice"], "consensus")
        assert rows(conn, "SELECT sitelabel_user_id(), sitelabel_sees_all(%s)", team.ada.id) == [
            (users["alice"], False)
        ]
        # no way round: another role, the owner's switches, escalating her own role
        assert "permission denied" in refused(conn, "SET ROLE bob")
        assert "must be owner" in refused(conn, "ALTER TABLE annotations DISABLE ROW LEVEL SECURITY")
        assert "must be owner" in refused(conn, "ALTER POLICY sitelabel_read ON annotations USING (true)")
        assert "must be owner" in refused(conn, "DROP POLICY sitelabel_read ON annotations")
        conn.execute("SET row_security = off")
        assert "row-level security" in refused(conn, "SELECT id FROM annotations")
        conn.execute("RESET row_security")
        assert conn.execute("UPDATE users SET role = 'admin' WHERE name = 'alice'").rowcount == 0
        assert conn.execute("UPDATE project_members SET role = 'reviewer'").rowcount == 0
        (evil,) = rows(
            conn,
            "INSERT INTO projects (name, consensus_share, consensus_count, batch_size, "
            "lease_seconds, created_at) VALUES ('evil', 0, 2, 10, 60, now()) RETURNING id",
        )[0]
        message = refused(
            conn, "INSERT INTO project_members VALUES (%s, %s, 'project_admin')", evil, users["alice"]
        )
        assert "row-level security" in message
        refused(conn, "UPDATE tasks SET status = 'done' WHERE asset_id = %s", a["blind"])
        assert "permission denied" in refused(conn, "UPDATE assets SET project_id = project_id")
        assert "permission denied" in refused(conn, "UPDATE assignments SET user_id = %s", users["alice"])
        refused(conn, "TRUNCATE annotations")
        # the audit log: append-only for her, and she reads only her own rows
        assert "permission denied" in refused(conn, "UPDATE audit_log SET action = 'x'")
        assert "permission denied" in refused(conn, "DELETE FROM audit_log")
        others = "SELECT count(*) FROM audit_log WHERE user_id <> %s AND entity <> 'watch_folders'"
        assert rows(conn, others, users["alice"]) == [(0,)]
        # the note rejecting bob's work, and bob's labels in the planner statistics, stay hidden
        assert rows(conn, "SELECT note FROM reviews WHERE note LIKE 'bob:%%'") == []
        assert rows(conn, "SELECT count(*) FROM pg_stats WHERE tablename = 'annotations'") == [(0,)]
        # the group role itself sees nothing
        conn.execute("SET ROLE sitelabel_app")
        assert rows(conn, "SELECT count(*) FROM annotations") == [(0,)]

    with psql_as(pg_url, REVIEWER) as conn:
        assert {int(r[0]) for r in rows(conn, "SELECT id FROM annotations")} == everything
        assert rows(conn, "SELECT count(*) FROM reviews WHERE note LIKE 'bob:%%'") == [(1,)]

    with psql_as(pg_url, "bob") as conn:  # bob reads the note meant for him
        assert rows(conn, "SELECT count(*) FROM reviews WHERE note LIKE 'bob:%%'") == [(1,)]
        assert not {int(r[0]) for r in rows(conn, "SELECT id FROM annotations")} & alice_blind


def _user_id(team: Team, name: str) -> int:
    with team.ada.db.unit_of_work(readonly=True) as uow:
        return uow.users.get_by_name(name).id


# --- the app on per-user connections --------------------------------------------------------------------
def test_labeler_and_review_workflows_run_under_row_security(pg_url: str, tmp_path: Path) -> None:
    team = make_team(pg_url)
    a = team.assets
    secure(pg_url, tmp_path)
    alice = api.open_project(url_as(pg_url, "alice"), PROJECT, user="alice", create=False)
    bob = api.open_project(url_as(pg_url, "bob"), PROJECT, user="bob", create=False)
    carol = api.open_project(url_as(pg_url, "carol"), PROJECT, user="carol", create=False)
    rita = api.open_project(url_as(pg_url, REVIEWER), PROJECT, user=REVIEWER, create=False)
    try:
        with pytest.raises(PermissionDenied, match="as 'alice'"):
            api.open_project(alice.db, PROJECT, user="bob")
        assert api.open_project(alice.db, PROJECT).user_name == "alice"  # no user named: the login
        with pytest.raises(PermissionDenied):
            api.create_project(alice.db, "mine", user="ada")

        # the labeler's day: claim, label, skip, comment, pre-labels accepted and rejected
        work_on(alice, a["blind"], [square(0, 0, 20, 20), square(100, 100, 110, 110, "lesion")])
        work_on(bob, a["blind"], [square(5, 0, 25, 20), square(100, 100, 110, 120, "lesion")])
        assert {x.author for x in alice.annotation_objects(a["blind"])} == {"alice"}
        thread = alice.comment(a["blind"], "is this a coin?", x=3.0, y=4.0)
        with pytest.raises(NotFoundError):  # blind: another labeler's thread on a consensus item
            bob.reply(thread.id, "yes")
        rita.reply(thread.id, "yes")
        assert [c.body for c in alice.threads(a["blind"])[0].comments] == ["is this a coin?", "yes"]

        session = EditSession(
            alice.db,
            alice.id,
            alice.asset(a["prelabeled"]),
            alice.user,
            alice.ontology,
            journal=Journal(tmp_path / "journal.db"),
        ).load()
        pre = session.prelabels()
        assert len(pre) == 2
        first, second = sorted(pre)
        session.stack.push(AcceptPrelabels({first: pre[first]}))
        session.stack.push(RemoveAnnotation(second))
        result = session.flush()
        assert result.error is None and not result.conflicts
        session.close()
        mine = alice.annotation_objects(a["prelabeled"])
        assert [(x.author, x.source) for x in mine] == [("alice", "human")]
        with pytest.raises(PermissionDenied, match="row-level security"):
            alice.model_quality()

        # a labeler's activity view reads the same under row security as through the owner's login
        def view(project: api.Project) -> list[tuple[Any, ...]]:
            return [(r.asset_id, r.status, r.labelers, r.classes) for r in project.activity().rows]

        assert view(alice) == view(team.as_owner("alice")) and view(alice)

        # the agreement is left to the reviewer, and equals what the owner computes
        blind_task = _task(rita, a["blind"])
        assert blind_task.status is TaskStatus.SUBMITTED and blind_task.agreement is None
        (entry,) = [e for e in rita.review_queue() if e.asset_id == a["blind"]]
        owner_view = team.ada.review_item(a["blind"])
        assert owner_view.agreement is not None
        assert entry.agreement == owner_view.agreement.overall
        assert rita.review_item(a["blind"]).agreement == owner_view.agreement
        assert rita.model_quality() == team.ada.model_quality()

        # review under row security: reject, the labeler redoes it, merge; then the labeler sees it
        rita.reject(a["blind"], "bob", "the coin is larger")
        lease = next(x for x in bob.claim(batch=1) if x.asset_id == a["blind"])
        assert bob.review_notes(a["blind"])[-1].note == "the coin is larger"
        assert alice.review_notes(a["blind"]) == []
        bob.submit(lease)
        rita.merge_consensus(a["blind"])
        consensus = [x for x in alice.annotation_objects(a["blind"]) if x.source == "consensus"]
        assert consensus and _task(alice, a["blind"]).status is TaskStatus.DONE
        assert_ontology_allows(rita, consensus)
        work_on(carol, a["fresh"], [square(1, 1, 9, 9)])
        (fix,) = rita.annotation_objects(a["fresh"])
        rita.save_annotation(fix.evolve(label="lesion"))  # a reviewer's fix of a labeler's row
        rita.fix_and_accept(a["fresh"])
        assert [(x.label, x.author) for x in carol.annotation_objects(a["fresh"])] == [("lesion", "carol")]
        assert alice.annotation_objects(a["fresh"]) == []
    finally:
        for project in (alice, bob, carol, rita):
            project.close()


def _task(project: api.Project, asset_id: int) -> Any:
    with project.db.unit_of_work(readonly=True) as uow:
        return uow.tasks.for_asset(project.id, asset_id)


def test_agreement_under_row_security_equals_the_run_without(
    pg_server_url: str, pg_url: str, tmp_path: Path
) -> None:
    """The same labels on two databases, one secured: the stored agreement is the same."""
    figures = []
    plain = _fresh_database(pg_server_url, pg_url)
    for secured in (False, True):
        url = pg_url if secured else plain
        team = make_team(url)
        if secured:
            secure(url, tmp_path)
        people = {
            n: api.open_project(url_as(url, n) if secured else url, PROJECT, user=n, create=False)
            for n in ("alice", "bob", REVIEWER)
        }
        work_on(people["alice"], team.assets["blind"], [square(0, 0, 20, 20), square(30, 30, 60, 50)])
        work_on(people["bob"], team.assets["blind"], [square(10, 0, 30, 20), square(30, 35, 60, 55)])
        figures.append([e.agreement for e in people[REVIEWER].review_queue()])
        for project in people.values():
            project.close()
        team.ada.close()
    with psql_as(pg_server_url, "postgres") as conn:
        conn.execute(f'DROP DATABASE "{make_url(plain).database}" WITH (FORCE)')
    assert figures[0] == figures[1] and figures[0][0] is not None


def _fresh_database(server_url: str, like: str) -> str:
    name = f"{make_url(like).database}_plain"
    with psql_as(server_url, "postgres") as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(like).set(database=name).render_as_string(hide_password=False)


def assert_scram_login(pg_url: str, role: str, secret: str) -> None:
    """Log in as ``role`` with real scram-sha-256 authentication (the verifier we computed works):
    the throwaway cluster's pg_hba.conf gets a scram line for that role for the moment."""
    with psql_as(pg_url, "postgres") as conn:
        (hba,) = rows(conn, "SELECT setting FROM pg_settings WHERE name = 'hba_file'")[0]
        path = Path(hba)
        before = path.read_text(encoding="utf-8")
        path.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n{before}", encoding="utf-8")
        try:
            conn.execute("SELECT pg_reload_conf()")
            url = make_url(pg_url)
            args = {"host": url.host, "port": url.port, "user": role, "dbname": url.database}
            with psycopg.connect(**args, password=secret, connect_timeout=10) as mine:
                assert mine.execute("SELECT current_user").fetchone() == (role,)
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(**args, password=secret + "x", connect_timeout=10)
        finally:
            path.write_text(before, encoding="utf-8")
            conn.execute("SELECT pg_reload_conf()")


# --- the admin command ------------------------------------------------------------------------------------
def test_db_secure_roles_passwords_dry_run_and_refusals(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    team = make_team(pg_url)
    too_long = "x" * 64
    team.ada.set_member(too_long, "labeler")
    team.ada.set_member("dora", "labeler")

    assert main(["db", "status", pg_url]) == 0
    assert "row security  off" in capsys.readouterr().out

    secret = "s3cret:with colon"
    passwords = tmp_path / "passwords"
    passwords.write_text(f"# name:password\ncarol:{secret}\n", encoding="utf-8")
    passwords.chmod(0o600)
    assert main(["db", "secure", pg_url, "--sync-users", "--dry-run", "--password-file", str(passwords)]) == 1
    out, err = capsys.readouterr()
    assert "CREATE POLICY" in out and "ENABLE ROW LEVEL SECURITY" in out
    assert secret not in out + err and "SCRAM" not in out
    assert "64 bytes" in err and "at most 63" in err
    with psql_as(pg_url, "postgres") as conn:  # a dry run changes nothing
        assert rows(conn, "SELECT relrowsecurity FROM pg_class WHERE relname = 'annotations'") == [(False,)]

    assert main(["db", "secure", pg_url, "--sync-users", "--password-file", str(passwords)]) == 1
    out, err = capsys.readouterr()
    assert secret not in out + err
    assert main(["db", "secure", pg_url, "--sync-users"]) == 1  # idempotent (the long name still refused)
    capsys.readouterr()
    with psql_as(pg_url, "postgres") as conn:
        (verifier,) = rows(conn, "SELECT rolpassword FROM pg_authid WHERE rolname = 'carol'")[0]
        assert verifier.startswith("SCRAM-SHA-256$") and secret not in verifier
        assert rows(conn, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'carol'") == [(True,)]
        assert rows(conn, "SELECT count(*) FROM pg_roles WHERE rolname = %s", too_long[:63]) == [(0,)]
        members = "SELECT pg_has_role(%s, 'sitelabel_app', 'MEMBER')"
        assert rows(conn, members, "dora") == [(True,)]
        # deactivating a user in Sitelabel takes their database login away on the next sync
        conn.execute("UPDATE users SET active = false WHERE name = 'dora'")
        conn.execute("ALTER ROLE dora LOGIN")
    assert_scram_login(pg_url, "carol", secret)
    assert main(["db", "secure", pg_url, "--sync-users"]) == 1
    assert "dora: deactivated" in capsys.readouterr().out
    with psql_as(pg_url, "postgres") as conn:
        assert rows(conn, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'dora'") == [(False,)]
        assert rows(conn, "SELECT pg_has_role('dora', 'sitelabel_app', 'MEMBER')") == [(False,)]

    assert main(["db", "status", pg_url]) == 0
    assert "row security  on (" in capsys.readouterr().out
    assert main(["db", "secure", pg_url, "--group", "sitelabel_team"]) == 0  # a site's own group name
    assert main(["db", "status", pg_url]) == 0
    assert "group role sitelabel_team" in capsys.readouterr().out
    assert main(["db", "secure", pg_url]) == 0
    config = tmp_path / "site.toml"  # a labeler's workstation: config check names her login
    config.write_text(f'database = "{url_as(pg_url, "carol")}"\n', encoding="utf-8")
    monkeypatch.setenv("SITELABEL_CONFIG", str(config))
    main(["config", "check", "--skip-components"])
    checked = capsys.readouterr().out
    assert "row security: on (" in checked and "this login (carol) reads only" in checked

    sqlite = tmp_path / "labels.db"
    api.create_project(str(sqlite), "p", user="ada").close()
    assert main(["db", "secure", str(sqlite)]) == 1
    assert "needs PostgreSQL" in capsys.readouterr().err
    team.ada.close()


def test_db_secure_as_a_schema_owner_that_is_not_a_superuser(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The admin guide's set-up: the owner runs migrations and `db secure` (with CREATEROLE)."""
    database = make_url(pg_url).database
    with psql_as(pg_url, "postgres") as conn:
        if not rows(conn, "SELECT 1 FROM pg_roles WHERE rolname = 'rls_owner'"):
            conn.execute("CREATE ROLE rls_owner LOGIN CREATEROLE")
        conn.execute(f'ALTER DATABASE "{database}" OWNER TO rls_owner')
    owner_url = url_as(pg_url, "rls_owner")
    team = make_team(owner_url)
    bobs = set(
        api.open_project(team.ada.db, PROJECT, user="bob").upload_annotations(
            team.assets["blind"], [square(1, 1, 5, 5)]
        )
    )
    secure(owner_url, tmp_path)
    with psql_as(pg_url, "alice") as conn:
        seen = {int(r[0]) for r in rows(conn, "SELECT id FROM annotations")}
        assert seen and not seen & bobs
        assert "must be owner" in refused(conn, "ALTER TABLE annotations DISABLE ROW LEVEL SECURITY")
    with psql_as(pg_url, REVIEWER) as conn:
        assert bobs <= {int(r[0]) for r in rows(conn, "SELECT id FROM annotations")}
    with psql_as(pg_url, "postgres") as conn:  # a labeler who could SET ROLE to the owner is named
        conn.execute("GRANT rls_owner TO carol")
        try:
            assert main(["db", "secure", owner_url, "--sync-users"]) == 1
        finally:
            conn.execute("REVOKE rls_owner FROM carol")
    assert "carol is a member of the schema owner's role rls_owner" in capsys.readouterr().err
    team.ada.close()


def test_the_editor_loads_the_same_rows_on_a_labelers_login_as_through_the_owner(
    pg_url: str, tmp_path: Path
) -> None:
    """Consensus labels show in a labeler's editor only while the item is done (requeued: blind)."""
    team = make_team(pg_url)
    secure(pg_url, tmp_path)
    alice = api.open_project(url_as(pg_url, "alice"), PROJECT, user="alice", create=False)
    through_owner = team.as_owner("alice")
    merged = team.assets["merged"]

    def loaded(project: api.Project) -> list[tuple[str, str | None]]:
        session = EditSession(
            project.db,
            project.id,
            project.asset(merged),
            project.user,
            project.ontology,
            journal=Journal(tmp_path / f"journal-{id(project)}.db"),
        ).load()
        found = sorted((a.source, a.author) for a in session.doc.annotations(0).values())
        session.close()
        return found

    try:
        done = loaded(alice)
        assert done == loaded(through_owner)
        assert any(source == "consensus" for source, _ in done)
        task = _task(team.ada, merged)
        queue.requeue(team.ada.db, task.id)
        again = loaded(alice)
        assert again == loaded(through_owner)
        assert [source for source, _ in again] == ["human"]
    finally:
        alice.close()
        team.ada.close()


# --- comment threads ------------------------------------------------------------------------------------
@dataclass
class Pins:
    """Threads on the team's items (ids), opened through the owner's connection."""

    alice: int  # alice's on the blind consensus item, with a reply by the reviewer: hidden from bob
    lead: int  # the reviewer's on the blind item, with alice's reply: shown to every labeler
    admin: int  # on the blind item by a site admin who is no member of the project: shown
    bob: int  # bob's own on the blind item
    orphan: int  # on the blind item by a since deleted user (author NULL): shown, as in the API
    plain: int  # alice's on the fresh (single-labeler) item
    merged: int  # alice's on the merged (done) consensus item


def make_threads(team: Team) -> Pins:
    a = team.assets
    api.set_site_role(team.ada.db, "sam", "admin", user="ada")
    alice, bob, carol, rita, sam = (team.as_owner(n) for n in ("alice", "bob", "carol", REVIEWER, "sam"))
    pins = Pins(
        alice=alice.comment(a["blind"], "the coin edge here is blurred", x=40.0, y=50.0).id,
        lead=rita.comment(a["blind"], "label the outer rim, @alice @bob").id,
        admin=sam.comment(a["blind"], "the scanner was recalibrated today").id,
        bob=bob.comment(a["blind"], "is the shadow part of it?").id,
        orphan=carol.comment(a["blind"], "my outline follows the glare").id,
        plain=alice.comment(a["fresh"], "a scratch on this one").id,
        merged=alice.comment(a["merged"], "merged fine").id,
    )
    rita.reply(pins.alice, "blurred edges: take the inner line")
    alice.reply(pins.lead, "will do")
    with psql_as(team.url, "postgres") as conn:  # as if carol had been deleted (ON DELETE SET NULL)
        conn.execute("UPDATE threads SET author_id = NULL WHERE id = %s", (pins.orphan,))
    return pins


def ids(conn: psycopg.Connection[Any], query: str, *params: Any) -> set[int]:
    return {int(r[0]) for r in rows(conn, query, *params)}


def test_a_labeler_with_direct_sql_reads_only_the_comment_threads_the_app_shows(
    pg_url: str, tmp_path: Path
) -> None:
    team = make_team(pg_url)
    a = team.assets
    pins = make_threads(team)
    secure(pg_url, tmp_path)
    with psql_as(pg_url, "postgres") as conn:  # what an earlier `db secure` granted on them
        conn.execute("GRANT UPDATE (body) ON comments TO sitelabel_app")
        conn.execute("GRANT UPDATE (x, y, frame) ON threads TO sitelabel_app")
    secure(pg_url, tmp_path)  # idempotent, and takes those back
    users = {n: _user_id(team, n) for n in ("alice", "bob", REVIEWER)}
    per_thread = (
        "SELECT t.id, count(c.id) FROM threads t LEFT JOIN comments c ON c.thread_id = t.id GROUP BY t.id"
    )
    with psql_as(pg_url, "postgres") as conn:
        conn.execute("ANALYZE")  # comment words must not leak through the planner statistics
        every_thread = ids(conn, "SELECT id FROM threads")
        every_comment = ids(conn, "SELECT id FROM comments")
        hidden_comments = ids(conn, "SELECT id FROM comments WHERE thread_id = %s", pins.alice)
        counts = dict(rows(conn, per_thread))
    assert len(hidden_comments) == 2 and len(every_thread) == 7

    with psql_as(pg_url, "bob") as conn:
        assert ids(conn, "SELECT id FROM threads") == every_thread - {pins.alice}
        assert ids(conn, "SELECT id FROM comments") == every_comment - hidden_comments
        assert rows(conn, "SELECT count(*) FROM threads WHERE author_id = %s", users["alice"]) == [(2,)]
        assert rows(conn, "SELECT count(*) FROM comments WHERE thread_id = %s", pins.alice) == [(0,)]
        assert rows(conn, "SELECT count(*) FROM comments WHERE body LIKE '%%blurred%%'") == [(0,)]
        # the reviewer's reply in alice's thread stays hidden, her own thread shows
        by_rita = "SELECT c.body FROM comments c JOIN users u ON u.id = c.author_id WHERE u.name = %s"
        assert rows(conn, by_rita, REVIEWER) == [("label the outer rim, @alice @bob",)]
        assert dict(rows(conn, per_thread)) == {t: n for t, n in counts.items() if t != pins.alice}
        on_blind = "SELECT t.id FROM threads t JOIN assets s ON s.id = t.asset_id WHERE s.id = %s"
        assert ids(conn, on_blind, a["blind"]) == {pins.lead, pins.admin, pins.bob, pins.orphan}
        with conn.cursor().copy("COPY comments (thread_id) TO STDOUT") as copy:
            assert pins.alice not in {int(r[0]) for r in copy.rows()}
        stats = "SELECT count(*) FROM pg_stats WHERE tablename IN ('threads', 'comments')"
        assert rows(conn, stats) == [(0,)]

        # writes: no reply into the blind thread, no forged author, no status change on others'
        reply = "INSERT INTO comments (thread_id, author_id, body, created_at) VALUES (%s, %s, %s, now())"
        assert "row-level security" in refused(conn, reply, pins.alice, users["bob"], "same here")
        assert "row-level security" in refused(conn, reply, pins.lead, users["alice"], "forged")
        assert conn.execute(reply, (pins.lead, users["bob"], "ok")).rowcount == 1
        open_ = (
            "INSERT INTO threads (asset_id, frame, status, author_id, created_at) "
            "VALUES (%s, 0, 'open', %s, now()) RETURNING id"
        )
        assert "row-level security" in refused(conn, open_, a["blind"], users["alice"])
        (own,) = rows(conn, open_, a["blind"], users["bob"])[0]
        resolve = "UPDATE threads SET status = 'resolved', resolved_at = now() WHERE id = %s"
        assert conn.execute(resolve, (pins.alice,)).rowcount == 0
        assert conn.execute(resolve, (pins.lead,)).rowcount == 0  # not his, and he is no reviewer
        assert conn.execute(resolve, (pins.plain,)).rowcount == 0
        assert conn.execute(resolve, (pins.bob,)).rowcount == 1
        assert conn.execute(resolve, (own,)).rowcount == 1
        assert "permission denied" in refused(conn, "UPDATE comments SET body = 'x'")
        assert "permission denied" in refused(conn, "UPDATE threads SET x = 0 WHERE id = %s", pins.bob)
        assert "permission denied" in refused(conn, "UPDATE threads SET asset_id = %s", a["fresh"])
        assert "permission denied" in refused(conn, "DELETE FROM comments")
        assert "permission denied" in refused(conn, "DELETE FROM threads")

    with psql_as(pg_url, "alice") as conn:  # alice is blind to bob's thread, sees her own
        assert ids(conn, "SELECT id FROM threads") == every_thread - {pins.bob, own}
        assert ids(conn, "SELECT thread_id FROM comments WHERE thread_id = %s", pins.alice) == {pins.alice}
    with psql_as(pg_url, REVIEWER) as conn:  # the reviewer reads and resolves everything
        assert ids(conn, "SELECT id FROM threads") == every_thread | {own}
        assert hidden_comments <= ids(conn, "SELECT id FROM comments")
        assert conn.execute(resolve, (pins.alice,)).rowcount == 1
        conn.execute("UPDATE threads SET status = 'open', resolved_at = NULL WHERE id = %s", (pins.alice,))

    # both labeled, the reviewer merged: the item is done and nothing on it is blind any more
    work_on(team.as_owner("alice"), a["blind"], [square(0, 0, 20, 20)])
    work_on(team.as_owner("bob"), a["blind"], [square(2, 0, 22, 20)])
    team.as_owner(REVIEWER).merge_consensus(a["blind"])
    assert_ontology_allows(team.ada, team.ada.review_item(a["blind"]).consensus)
    with psql_as(pg_url, "bob") as conn:
        assert pins.alice in ids(conn, "SELECT id FROM threads")
        assert hidden_comments <= ids(conn, "SELECT id FROM comments")
        assert conn.execute(reply, (pins.alice, users["bob"], "agreed")).rowcount == 1
        assert conn.execute(resolve, (pins.alice,)).rowcount == 0  # still not his to resolve
    team.ada.close()


def test_comment_threads_through_the_api_on_a_labelers_login_match_the_owners_connection(
    pg_url: str, tmp_path: Path
) -> None:
    team = make_team(pg_url)
    a = team.assets
    pins = make_threads(team)
    secure(pg_url, tmp_path)
    bob = api.open_project(url_as(pg_url, "bob"), PROJECT, user="bob", create=False)
    rita = api.open_project(url_as(pg_url, REVIEWER), PROJECT, user=REVIEWER, create=False)
    through_owner = team.as_owner("bob")

    def seen(project: api.Project, asset_id: int | None = None, open_only: bool = False) -> list[Any]:
        return [
            (t.id, t.asset_id, t.author, t.status, tuple((c.author, c.body) for c in t.comments))
            for t in project.threads(asset_id, open_only=open_only)
        ]

    def same() -> list[Any]:
        found = seen(bob)
        assert found == seen(through_owner)
        assert seen(bob, open_only=True) == seen(through_owner, open_only=True)
        for asset_id in a.values():
            assert seen(bob, asset_id) == seen(through_owner, asset_id)
        assert bob.open_thread_counts() == through_owner.open_thread_counts()
        return found

    try:
        shown = {pins.lead, pins.admin, pins.bob, pins.orphan, pins.plain, pins.merged}
        assert {t[0] for t in same()} == shown
        assert bob.open_thread_counts() == {a["blind"]: 4, a["fresh"]: 1, a["merged"]: 1}
        for project in (bob, through_owner):
            with pytest.raises(NotFoundError):
                project.reply(pins.alice, "same here")
            with pytest.raises(NotFoundError):
                project.resolve(pins.alice)
            with pytest.raises(PermissionDenied):  # the lead's thread: only she or a reviewer
                project.resolve(pins.lead)
        bob.reply(pins.lead, "on it")
        bob.resolve(pins.bob)
        asked = bob.comment(a["blind"], "which rim, @rita?", x=5.0, y=6.0)
        after = same()
        assert ("bob", "on it") in next(t for t in after if t[0] == pins.lead)[4]
        assert asked.id in {t[0] for t in after}
        bob.resolve(pins.bob, reopen=True)
        same()

        # the reviewer on her login reads what the owner's connection reads, and resolves any
        assert seen(rita) == seen(team.as_owner(REVIEWER))
        assert rita.open_thread_counts() == team.ada.open_thread_counts()
        rita.resolve(pins.alice)
        rita.resolve(pins.alice, reopen=True)

        work_on(team.as_owner("alice"), a["blind"], [square(0, 0, 20, 20)])
        work_on(bob, a["blind"], [square(2, 0, 22, 20)])
        rita.merge_consensus(a["blind"])
        assert_ontology_allows(rita, rita.review_item(a["blind"]).consensus)
        assert pins.alice in {t[0] for t in same()}
        bob.reply(pins.alice, "agreed")
        same()
    finally:
        for project in (bob, rita):
            project.close()
        team.ada.close()
