"""`make test` brings what the suite needs besides Python (scripts/test-deps.sh): Debian's pgbouncer and chromium,
installed with apt-get as root, else one line saying what to install. Run on fake PATHs: nothing is installed
or removed."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "test-deps.sh"
BASH = shutil.which("bash")


def executable(path: Path, text: str = "#!/bin/sh\n") -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def run_test_deps(bin_dir: Path, chromium: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(bin_dir), "CHROMIUM": str(chromium), "HOME": str(bin_dir)}
    return subprocess.run([BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


def test_test_deps__both_there__nothing_said(tmp_path):
    executable(tmp_path / "pgbouncer")
    result = run_test_deps(tmp_path, executable(tmp_path / "chromium"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize(("has_pgbouncer", "has_chromium"), [(False, False), (False, True), (True, False)])
def test_test_deps__missing_and_no_apt__one_line_saying_what_to_install(tmp_path, has_pgbouncer, has_chromium):
    if has_pgbouncer:
        executable(tmp_path / "pgbouncer")
    chromium = executable(tmp_path / "chromium") if has_chromium else tmp_path / "no-chromium"
    result = run_test_deps(tmp_path, chromium)
    missing = [name for name, there in (("pgbouncer", has_pgbouncer), ("chromium", has_chromium)) if not there]
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert f"apt-get install {' '.join(missing)};" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="apt-get is used as root only")
def test_test_deps__missing_as_root_with_apt__installs_debians_packages(tmp_path):
    """A fake apt-get on the fake PATH records its arguments and 'installs' both programs."""
    chromium = tmp_path / "chromium"
    executable(
        tmp_path / "apt-get",
        f'#!/bin/sh\necho "$*" >> {tmp_path}/apt.log\n'
        f'case "$*" in *install*) printf "#!/bin/sh\\n" > {tmp_path}/pgbouncer;'
        f" /bin/cp {tmp_path}/pgbouncer {chromium}; /bin/chmod +x {tmp_path}/pgbouncer {chromium};; esac\n",
    )
    result = run_test_deps(tmp_path, chromium)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0] == "update -qq"
    assert calls[1].startswith("install -y") and calls[1].endswith(" pgbouncer chromium")


def test_make_test__a_package_missing__stops_at_once_with_that_line(tmp_path):
    """No pip, no database, no test run: make's own "Error 1" line follows the script's. (A venv of the test's
    own: were the check not first, nothing would be installed into the project's.)"""
    executable(tmp_path / "pgbouncer")  # Debian's /usr/sbin comes after this on make's PATH
    os.symlink(BASH, tmp_path / "bash")
    env = {"PATH": str(tmp_path), "CHROMIUM": str(tmp_path / "no-chromium"), "HOME": str(tmp_path)}
    make = shutil.which("make")
    result = subprocess.run(
        [make, "test", f"VENV={tmp_path}/venv"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and result.stdout == ""
    first, *rest = result.stderr.splitlines()
    assert first.startswith("make test needs chromium (Debian: sudo apt-get install chromium;")
    assert [line for line in rest if "test-deps" not in line] == []
