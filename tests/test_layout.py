"""Imports point one way: segmenter/ (the project and the API that spans apps) -> apps -> core/.

core/ knows no app; no app imports segmenter/; the apps import downwards, reports -> users -> segments;
and no test imports a test module (shared helpers are fixtures in a conftest.py)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("users", "segments", "reports", "events")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(package: str) -> list[Path]:
    return sorted(path for path in (ROOT / package).rglob("*.py") if ".venv" not in path.parts)


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", _modules("core"), ids=str)
def test_core__imports_no_app_and_not_the_project(path):
    assert {name for name in _imports(path) if _top(name) in (*APPS, "segmenter")} == set()


@pytest.mark.parametrize("path", [path for app in APPS for path in _modules(app)], ids=str)
def test_apps__never_import_the_project(path):
    assert {name for name in _imports(path) if _top(name) == "segmenter"} == set()


@pytest.mark.parametrize("path", [path for app in ("users", "segments") for path in _modules(app)], ids=str)
def test_users_and_segments__never_import_reports(path):
    assert {name for name in _imports(path) if _top(name) == "reports"} == set()


@pytest.mark.parametrize("path", [path for path in _modules("segments") if "tests" not in path.parts], ids=str)
def test_segments__never_imports_users(path):
    """users/ calls segments/ (new users join rollouts); a membership names its user by the "users.User" label."""
    assert {name for name in _imports(path) if _top(name) == "users"} == set()


@pytest.mark.parametrize("path", [path for path in ROOT.rglob("*.py") if ".venv" not in path.parts], ids=str)
def test_no_module__imports_a_test_module(path):
    def is_test_module(name: str) -> bool:
        parts = name.split(".")
        return (
            parts[0] == "tests" or "tests" in parts[1:] or any(part.startswith(("test_", "conftest")) for part in parts)
        )

    assert {name for name in _imports(path) if is_test_module(name)} == set()
