"""The SQL of ``sitelabel db secure``: grants, the policies' helper functions and the row-level
security policies themselves (what each rule is for: ``app.storage.row_security``).

Plain statement building, nothing run here; the roles and the plan that runs these live in
``app.storage.row_security_roles``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.records import CONSENSUS_SOURCE, Role, TaskStatus
from app.storage.tables import metadata

DEFAULT_GROUP = "sitelabel_app"
HUMAN = "human"  # app.core.annotations.HUMAN (kept literal: the policies are SQL)

# tables with row-level security, and the columns the group may never update
RLS_TABLES = (
    "annotations",
    "reviews",
    "audit_log",
    "users",
    "project_members",
    "tasks",
    "threads",
    "comments",
)
FROZEN_COLUMNS: dict[str, tuple[str, ...]] = {
    "annotations": ("id", "asset_id", "created_at"),
    "assets": ("id", "project_id"),
    "tasks": ("id", "project_id", "asset_id"),
    "assignments": ("id", "task_id", "user_id"),
    "reviews": ("id",),
    # the app only resolves and reopens a thread (status, resolved_at)
    "threads": ("id", "asset_id", "author_id", "frame", "x", "y", "created_at"),
    "project_members": (),
    "users": ("id",),
    # a split is assigned once and never changes (app.core.splits); the plan's project is fixed
    "asset_splits": ("asset_id", "project_id", "split", "group_key", "created_at"),
    "split_plans": ("project_id",),
}
APPEND_ONLY = ("audit_log", "comments")  # SELECT + INSERT only (the app never edits a comment)
# the app never hard-deletes elsewhere (annotations are soft-deleted); DELETE on assets or projects
# would let anyone wipe everyone's labels through ON DELETE CASCADE, which runs past row security
DELETABLE = ("predictions",)
READ_ONLY = ("alembic_version",)

_REVIEW_ROLES = (Role.REVIEWER.value, Role.PROJECT_ADMIN.value, Role.ADMIN.value)


@dataclass(frozen=True)
class Statement:
    """One SQL statement; ``shown`` is what --dry-run prints (secrets replaced)."""

    sql: Any  # psycopg.sql.Composable
    shown: Any = None


def _functions(s: Any) -> list[Any]:
    from psycopg import sql

    reviewish = sql.SQL(", ").join(sql.Literal(r) for r in _REVIEW_ROLES)
    me = sql.SQL("u.name = current_user AND u.active")
    bodies = {
        "sitelabel_user_id() RETURNS integer": sql.SQL("SELECT u.id FROM {s}.users u WHERE {me}"),
        "sitelabel_is_admin() RETURNS boolean": sql.SQL(
            "SELECT coalesce(bool_or(u.role = {admin}), false) FROM {s}.users u WHERE {me}"
        ),
        "sitelabel_member_projects() RETURNS integer[]": sql.SQL(
            "SELECT coalesce(array_agg(m.project_id), '{{}}') FROM {s}.project_members m "
            "JOIN {s}.users u ON u.id = m.user_id WHERE {me}"
        ),
        "sitelabel_review_projects() RETURNS integer[]": sql.SQL(
            "SELECT coalesce(array_agg(m.project_id), '{{}}') FROM {s}.project_members m "
            "JOIN {s}.users u ON u.id = m.user_id WHERE {me} AND m.role IN ({reviewish})"
        ),
        "sitelabel_admin_projects() RETURNS integer[]": sql.SQL(
            "SELECT coalesce(array_agg(m.project_id), '{{}}') FROM {s}.project_members m "
            "JOIN {s}.users u ON u.id = m.user_id WHERE {me} AND m.role = {padmin}"
        ),
        "sitelabel_sees_all(project integer) RETURNS boolean": sql.SQL(
            "SELECT {s}.sitelabel_is_admin() OR project = ANY ({s}.sitelabel_review_projects())"
        ),
        # true for a reviewer of every project (one project per database is common): the policies
        # then skip their per-row test
        "sitelabel_sees_every_project() RETURNS boolean": sql.SQL(
            "SELECT {s}.sitelabel_is_admin() OR NOT EXISTS (SELECT 1 FROM {s}.projects p "
            "WHERE p.id <> ALL ({s}.sitelabel_review_projects()))"
        ),
    }
    out = []
    for signature, body in bodies.items():
        filled = body.format(
            s=s,
            me=me,
            admin=sql.Literal(Role.ADMIN.value),
            padmin=sql.Literal(Role.PROJECT_ADMIN.value),
            reviewish=reviewish,
        )
        out.append(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {s}.{sig} LANGUAGE plpgsql STABLE PARALLEL SAFE AS {body}"
            ).format(
                s=s, sig=sql.SQL(signature), body=sql.Literal(f"BEGIN RETURN ({filled.as_string(None)}); END")
            )
        )
    return out


def _policies() -> dict[str, list[tuple[str, str, str | None, str | None]]]:
    """Per table: (policy name, command, USING, WITH CHECK) with ``{s}`` for the schema."""
    me = "(SELECT {s}.sitelabel_user_id())"
    admin = "(SELECT {s}.sitelabel_is_admin())"  # site admin: people and roles
    every = "(SELECT {s}.sitelabel_sees_every_project())"  # reads and fixes every project's labels
    # the cast keeps ``= ANY ((SELECT f()))`` an array, which PostgreSQL would parse as a subquery
    review = "(SELECT {s}.sitelabel_review_projects())::integer[]"
    member = "(SELECT {s}.sitelabel_member_projects())::integer[]"
    padmin = "(SELECT {s}.sitelabel_admin_projects())::integer[]"
    human, consensus, done = f"'{HUMAN}'", f"'{CONSENSUS_SOURCE}'", f"'{TaskStatus.DONE.value}'"

    def on_asset(condition: str, table: str = "annotations") -> str:
        return f"EXISTS (SELECT 1 FROM {{s}}.assets a WHERE a.id = {table}.asset_id AND ({condition}))"

    task_done = (
        "EXISTS (SELECT 1 FROM {s}.tasks t WHERE t.project_id = a.project_id AND t.asset_id = a.id "
        f"AND t.status = {done})"
    )
    read = f"annotations.author_id = {me} OR {every} OR " + on_asset(
        f"a.project_id = ANY ({review}) OR (annotations.source <> {human} AND "
        f"a.project_id = ANY ({member}) AND (annotations.source <> {consensus} OR {task_done}))"
    )
    add = f"{every} OR " + on_asset(
        f"a.project_id = ANY ({review}) OR (a.project_id = ANY ({member}) AND "
        f"annotations.author_id = {me} AND annotations.source <> {consensus})"
    )
    change = f"{every} OR " + on_asset(
        f"a.project_id = ANY ({review}) OR (a.project_id = ANY ({member}) AND "
        f"annotations.source <> {consensus} AND "
        f"(annotations.author_id = {me} OR annotations.source <> {human}))"
    )
    fix = f"{every} OR " + on_asset(f"a.project_id = ANY ({review})")
    review_fix = f"{every} OR " + on_asset(f"a.project_id = ANY ({review})", "reviews")
    my_assignments = "SELECT x.id FROM {s}.assignments x WHERE x.user_id = " + me
    review_read = (
        f"{review_fix} OR reviews.assignment_id IN ({my_assignments}) OR (reviews.assignment_id IS NULL "
        "AND EXISTS (SELECT 1 FROM {s}.assignments x "
        f"WHERE x.task_id = reviews.task_id AND x.user_id = {me}))"
    )
    task_ok = f"tasks.status <> {done} OR {every} OR tasks.project_id = ANY ({review})"
    task_admin = f"{every} OR tasks.project_id = ANY ({review})"
    member_admin = f"{admin} OR project_members.project_id = ANY ({padmin})"
    thread_read, thread_add, thread_change, comment_read, comment_add = _thread_rules()
    return {
        "annotations": [
            ("sitelabel_read", "SELECT", read, None),
            ("sitelabel_add", "INSERT", None, add),
            ("sitelabel_change", "UPDATE", change, change),
            ("sitelabel_remove", "DELETE", fix, None),
        ],
        "reviews": [
            ("sitelabel_read", "SELECT", review_read, None),
            ("sitelabel_add", "INSERT", None, review_fix),
            ("sitelabel_change", "UPDATE", review_fix, review_fix),
            ("sitelabel_remove", "DELETE", review_fix, None),
        ],
        "audit_log": [
            (
                "sitelabel_read",
                "SELECT",
                f"audit_log.user_id = {me} OR {every} OR cardinality({review}) > 0 "
                "OR audit_log.entity = 'watch_folders'",
                None,
            ),
            (
                "sitelabel_add",
                "INSERT",
                None,
                f"audit_log.user_id = {me} OR audit_log.user_id IS NULL OR {admin}",
            ),
        ],
        "users": [
            ("sitelabel_read", "SELECT", "true", None),
            ("sitelabel_add", "INSERT", None, f"users.role = '{Role.LABELER.value}' OR {admin}"),
            ("sitelabel_change", "UPDATE", admin, admin),
            ("sitelabel_remove", "DELETE", admin, None),
        ],
        "project_members": [
            ("sitelabel_read", "SELECT", "true", None),
            ("sitelabel_add", "INSERT", None, member_admin),
            ("sitelabel_change", "UPDATE", member_admin, member_admin),
            ("sitelabel_remove", "DELETE", member_admin, None),
        ],
        "tasks": [
            ("sitelabel_read", "SELECT", "true", None),
            ("sitelabel_add", "INSERT", None, task_ok),
            ("sitelabel_change", "UPDATE", "true", task_ok),
            ("sitelabel_remove", "DELETE", task_admin, None),
        ],
        # no DELETE policy or grant on either; no UPDATE on comments (append-only)
        "threads": [
            ("sitelabel_read", "SELECT", thread_read, None),
            ("sitelabel_add", "INSERT", None, thread_add),
            ("sitelabel_change", "UPDATE", thread_change, thread_change),
        ],
        "comments": [
            ("sitelabel_read", "SELECT", comment_read, None),
            ("sitelabel_add", "INSERT", None, comment_add),
        ],
    }


def _thread_rules() -> tuple[str, str, str, str, str]:
    """Policies of ``threads`` and ``comments`` (read, open, resolve; read, reply), the API's rule
    of ``app.api._team`` ``_visible_threads``: another labeler's thread on an unfinished consensus
    item is blind; own threads, a deleted user's and those of people who see all labels of the
    project (reviewers, project admins, site admins) always show, as do threads on other items.
    Reading another's thread also needs membership, as the API's VIEW does."""
    me = "(SELECT {s}.sitelabel_user_id())"
    admin = "(SELECT {s}.sitelabel_is_admin())"
    every = "(SELECT {s}.sitelabel_sees_every_project())"
    review = "(SELECT {s}.sitelabel_review_projects())::integer[]"
    member = "(SELECT {s}.sitelabel_member_projects())::integer[]"
    reviewish = ", ".join(f"'{r}'" for r in _REVIEW_ROLES)
    # each test below is a lookup by primary key or unique index (tasks: project_id, asset_id)
    consensus_open = (
        "EXISTS (SELECT 1 FROM {s}.tasks t WHERE t.project_id = a.project_id AND t.asset_id = a.id "
        f"AND t.required_labelers > 1 AND t.status <> '{TaskStatus.DONE.value}')"
    )
    lead_author = (
        "EXISTS (SELECT 1 FROM {s}.project_members m WHERE m.project_id = a.project_id "
        f"AND m.user_id = threads.author_id AND m.role IN ({reviewish})) OR EXISTS (SELECT 1 FROM "
        f"{{s}}.users u WHERE u.id = threads.author_id AND u.role = '{Role.ADMIN.value}')"
    )

    def on_asset(condition: str) -> str:
        return f"EXISTS (SELECT 1 FROM {{s}}.assets a WHERE a.id = threads.asset_id AND ({condition}))"

    read = f"threads.author_id = {me} OR {every} OR " + on_asset(
        f"a.project_id = ANY ({review}) OR (a.project_id = ANY ({member}) AND "
        f"(threads.author_id IS NULL OR NOT {consensus_open} OR {lead_author}))"
    )
    add = f"threads.author_id = {me} AND ({admin} OR " + on_asset(f"a.project_id = ANY ({member})") + ")"
    change = f"threads.author_id = {me} OR {every} OR " + on_asset(f"a.project_id = ANY ({review})")
    # the sub-select on threads is itself filtered by threads' read policy: a comment shows iff
    # its thread does, and one can reply only to a thread one sees
    comment_read = f"{every} OR EXISTS (SELECT 1 FROM {{s}}.threads h WHERE h.id = comments.thread_id)"
    comment_add = (
        f"comments.author_id = {me} AND EXISTS (SELECT 1 FROM {{s}}.threads h JOIN {{s}}.assets a "
        f"ON a.id = h.asset_id WHERE h.id = comments.thread_id "
        f"AND ({admin} OR a.project_id = ANY ({member})))"
    )
    return read, add, change, comment_read, comment_add


def _table_columns(name: str) -> list[str]:
    return [c.name for c in metadata.tables[name].columns] if name in metadata.tables else []


def secure_statements(
    schema: str, database: str, group: str = DEFAULT_GROUP, owner: str | None = None
) -> list[Statement]:
    """Grants, functions and policies; idempotent (re-running replaces them). The group role
    itself is created by ``row_security_roles.plan`` (it needs a look at pg_roles first)."""
    from psycopg import sql

    s, g = sql.Identifier(schema), sql.Identifier(group)
    out: list[Any] = [
        sql.SQL("REVOKE CREATE ON SCHEMA {s} FROM PUBLIC").format(s=s),
        sql.SQL("GRANT CONNECT ON DATABASE {d} TO {g}").format(d=sql.Identifier(database), g=g),
        sql.SQL("GRANT USAGE ON SCHEMA {s} TO {g}").format(s=s, g=g),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {g}").format(s=s, g=g),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {g}").format(s=s, g=g),
    ]
    for name in sorted(metadata.tables):
        t = sql.SQL("{s}.{t}").format(s=s, t=sql.Identifier(name))
        if name in APPEND_ONLY:
            out.append(sql.SQL("GRANT SELECT, INSERT ON {t} TO {g}").format(t=t, g=g))
            continue
        rights = "SELECT, INSERT, DELETE" if name in DELETABLE else "SELECT, INSERT"
        out.append(sql.SQL(f"GRANT {rights} ON {{t}} TO {{g}}").format(t=t, g=g))
        frozen = FROZEN_COLUMNS.get(name, ("id",))
        columns = [c for c in _table_columns(name) if c not in frozen]
        if columns:
            out.append(
                sql.SQL("GRANT UPDATE ({c}) ON {t} TO {g}").format(
                    c=sql.SQL(", ").join(sql.Identifier(c) for c in columns), t=t, g=g
                )
            )
    if owner is not None:  # tables a later migration adds must not come with DELETE for the group
        out.append(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} "
                "REVOKE DELETE, TRUNCATE ON TABLES FROM {g}"
            ).format(o=sql.Identifier(owner), s=s, g=g)
        )
    for name in READ_ONLY:
        out.append(sql.SQL("GRANT SELECT ON {s}.{t} TO {g}").format(s=s, t=sql.Identifier(name), g=g))
    out += _functions(s)
    out.append(sql.SQL("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {s} FROM PUBLIC").format(s=s))
    out.append(sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {g}").format(s=s, g=g))
    for table, policies in _policies().items():
        t = sql.SQL("{s}.{t}").format(s=s, t=sql.Identifier(table))
        out.append(sql.SQL("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY").format(t=t))
        out.append(sql.SQL("ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY").format(t=t))
        for name, command, using, check in policies:
            out.append(sql.SQL("DROP POLICY IF EXISTS {p} ON {t}").format(p=sql.Identifier(name), t=t))
            clause = f"CREATE POLICY {{p}} ON {{t}} FOR {command} TO {{g}}"
            if using is not None:
                clause += f" USING ({using})"
            if check is not None:
                clause += f" WITH CHECK ({check})"
            out.append(sql.SQL(clause).format(p=sql.Identifier(name), t=t, g=g, s=s))
    return [Statement(st) for st in out]
