"""Imports point one way: segmenter/ (the project and the API that spans apps) -> apps -> core/.

core/ knows no app; no app imports segmenter/; users/ and segments/ never import reports/ or events/, and
segments/ never imports users/: the contracts of .importlinter, checked by `lint-imports` (make test, make
lint). No test imports a test module (shared helpers are fixtures in a conftest.py)."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("segmenter", "users", "segments", "reports", "events", "core")  # root_packages of .importlinter


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [Path(sys.executable).with_name("lint-imports"), "--no-cache"], cwd=root, capture_output=True, text=True
    )


def test_import_contracts__kept_by_the_code():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("core/breach.py", "import segments.models"),  # core knows no app
        ("events/breach.py", "from segmenter import settings"),  # no app imports the project
        ("segments/breach.py", "import events.models"),  # segments never imports events (nor reports)
        ("users/breach.py", "from reports import services"),  # users never imports reports (nor events)
        ("segments/breach.py", "import users.models"),  # segments never imports users
    ],
)
def test_import_contracts__a_module_importing_against_them__fails_lint_imports(tmp_path, module, line):
    """The contracts of .importlinter bite: a copy of the code with one module added that imports against one
    of them fails `lint-imports`, naming that module."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    assert _lint_imports(tmp_path).returncode == 0
    (tmp_path / module).write_text(f"{line}\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout
    assert f"{module.removesuffix('.py').replace('/', '.')} -> " in result.stdout


@pytest.mark.parametrize("path", [path for path in ROOT.rglob("*.py") if ".venv" not in path.parts], ids=str)
def test_no_module__imports_a_test_module(path):
    def is_test_module(name: str) -> bool:
        parts = name.split(".")
        return (
            parts[0] == "tests" or "tests" in parts[1:] or any(part.startswith(("test_", "conftest")) for part in parts)
        )

    assert {name for name in _imports(path) if is_test_module(name)} == set()


def test_segments__never_names_the_event_log():
    """The events app writes its table (its triggers on history and segments); segments' code, SQL and docs do not
    name it. Frozen migration files from before the journal (sql/0007, and 0014's reverse, which reinstalls it)
    keep the text they installed."""
    frozen = {"0007_memberships_update_events.sql", "0014_membership_journal_reverse.sql"}
    named = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "segments").rglob("*")
        if path.is_file()
        and path.suffix in (".py", ".sql", ".html", ".md")
        and "tests" not in path.parts
        and path.name not in frozen
        and "events_event" in path.read_text()
    ]
    assert named == []
