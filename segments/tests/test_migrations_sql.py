"""SQL that a migration installs is frozen in that migration's own file (`<app>/migrations/sql/<name>….sql`),
so that replaying the migrations from zero installs each version in turn."""

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import RunSQL

# CREATE [OR REPLACE] FUNCTION name(…) … AS $$ body $$
FUNCTION = re.compile(r"^CREATE (?:OR REPLACE )?FUNCTION (\w+)\(.*?\bAS \$\$(.*?)\$\$", re.M | re.S)
BEFORE_FUNCTIONS = ("segments", "0003_membership_autovacuum")


def _project_apps() -> list:
    root = Path(settings.BASE_DIR)
    return [app for app in apps.get_app_configs() if Path(app.path).is_relative_to(root) and ".venv" not in app.path]


def _sql_texts(operation) -> list[str]:
    """The SQL strings of a RunSQL, forwards and backwards (each a string or a list of them)."""
    texts = []
    for sql in (operation.sql, operation.reverse_sql):
        texts += [sql] if isinstance(sql, str) else [item for item in sql or [] if isinstance(item, str)]
    return texts


def _operations(migration) -> list:
    """Its operations, and those inside SeparateDatabaseAndState."""
    found = []
    for operation in migration.operations:
        found += [operation, *getattr(operation, "database_operations", [])]
    return found


def _frozen_files(app_label: str, name: str) -> list[Path]:
    folder = Path(apps.get_app_config(app_label).path) / "migrations" / "sql"
    return sorted(path for path in folder.glob(f"{name}*.sql") if path.stem in (name, f"{name}_reverse"))


def test_run_sql__each_file_a_migration_reads__its_own_under_migrations_sql():
    project = _project_apps()
    files = {path: path.read_text() for app in project for path in Path(app.path).rglob("*.sql")}
    read: dict[Path, set[tuple[str, str]]] = {}
    for (app_label, name), migration in MigrationLoader(None, ignore_no_migrations=True).disk_migrations.items():
        if app_label not in {app.label for app in project}:
            continue
        for operation in _operations(migration):
            if isinstance(operation, RunSQL):
                for text in _sql_texts(operation):
                    for path, content in files.items():
                        if content == text:
                            read.setdefault(path, set()).add((app_label, name))
    assert read, "no migration reads a .sql file"
    for path, readers in read.items():
        assert len(readers) == 1, f"{path} is read by {sorted(readers)}"
        [(app_label, name)] = readers
        assert path in _frozen_files(app_label, name), f"{app_label}.{name} reads {path}, not a file of its own"
    frozen = {path for path in files if path.parent.name == "sql" and path.parent.parent.name == "migrations"}
    assert frozen == set(read), f"files no migration reads: {sorted(frozen - set(read))}"


@pytest.mark.django_db
def test_segments_migrations__replayed__install_each_frozen_function_in_turn():
    """Back to before the first function, then forwards one migration at a time, in the test's transaction
    (rolled back after it, as is the schema)."""
    executor = MigrationExecutor(connection)
    leaf = [node for node in executor.loader.graph.leaf_nodes() if node[0] == "segments"]
    plan = [node for node in executor.loader.graph.forwards_plan(leaf[0]) if node[0] == "segments"]
    replayed = plan[plan.index(BEFORE_FUNCTIONS) + 1 :]
    executor.migrate([BEFORE_FUNCTIONS])
    checked = []
    for node in replayed:
        executor.loader.build_graph()
        executor.migrate([node])
        for path in _frozen_files(*node):
            if path.stem.endswith("_reverse"):
                continue  # what undoing the migration installs
            for function, body in FUNCTION.findall(path.read_text()):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [function])
                    assert cursor.fetchall() == [(body,)], f"after {node[1]}: {function} is not {path.name}'s"
                checked.append((node[1], function))
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert {name for name, _ in checked} >= {
        "0004_memberships_update_function",
        "0005_memberships_update_clock_after_locks",
        "0006_historyevent_partitions",
        "0007_memberships_update_events",
        "0013_membership_active",
    }
