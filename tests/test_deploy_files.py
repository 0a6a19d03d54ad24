"""No Docker engine runs here, so the deployment files are checked as data against the Makefile."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w.-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def test_compose__services__db_web_worker_and_the_optional_pooler():
    services = compose()["services"]
    assert set(services) == {"db", "web", "worker", "pgbouncer"}
    assert services["pgbouncer"]["profiles"] == ["pooler"]  # off unless asked for


def test_compose__pgbouncer__transaction_pooling_in_front_of_db():
    ini = (ROOT / "deploy" / "pgbouncer.ini").read_text()
    assert "pool_mode = transaction" in ini
    assert "host=db port=5432" in ini
    assert "/etc/pgbouncer/segmenter.ini" in compose()["services"]["pgbouncer"]["volumes"][0]


def test_compose__db__healthcheck_and_named_volume():
    spec = compose()
    db = spec["services"]["db"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in spec["volumes"] and db["volumes"][0].endswith(":/var/lib/postgresql/data")


def test_compose__web_and_worker__wait_for_a_healthy_db():
    for name in ("web", "worker"):
        assert compose()["services"][name]["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose__commands__migrate_serve_and_sweep_loop_no_demo_users():
    """docs/operations.md calls compose a production setup: the demo users 1000-1999 (`make seed`) are an
    explicit command, never a service's (nor the image's) start."""
    services = compose()["services"]
    assert services["web"]["command"] == ["make", "migrate", "serve"]
    assert services["worker"]["command"] == ["make", "worker"]
    assert not any("seed" in str(service.get("command", "")) for service in services.values())
    assert "seed" not in re.search(r"^CMD (.*)$", (ROOT / "Dockerfile").read_text(), flags=re.M).group(1)
    assert "docker compose exec web make seed" in (ROOT / "docker-compose.yml").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "manage.py worker" in makefile
    assert {"migrate", "seed", "serve", "worker", "install", "static"} <= make_targets()
    assert services["web"]["ports"] == ["8000:8000"]


def test_compose__debug__never_on():
    for name in ("web", "worker"):
        environment = compose()["services"][name]["environment"]
        assert environment["DJANGO_DEBUG"] == "false"
        assert "DJANGO_SECRET_KEY" in environment and "${DJANGO_SECRET_KEY" in environment["DJANGO_SECRET_KEY"]


def test_dockerfile__slim_python_non_root_and_make_run_steps():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, flags=re.M)
    users = re.findall(r"^USER (\S+)$", dockerfile, flags=re.M)
    assert users and users[-1] not in {"root", "0"}
    assert "RUN make install" in dockerfile
    cmd = re.search(r"^CMD \[(.*)\]$", dockerfile, flags=re.M).group(1)
    steps = [part.strip().strip('"') for part in cmd.split(",")]
    assert steps[0] == "make" and set(steps[1:]) <= make_targets()
    run_recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M).group(0)
    for step in ("install", "migrate", "serve"):
        assert step in run_recipe


def test_compose__pgbouncer__built_from_a_dockerfile_in_deploy_not_inline():
    """Compose v1 (Debian's docker-compose 1.29) rejects the whole file for a `dockerfile_inline`."""
    build = compose()["services"]["pgbouncer"]["build"]
    assert set(build) == {"context", "dockerfile"}
    dockerfile = (ROOT / build["context"] / build["dockerfile"]).read_text()
    assert "apt-get install -y --no-install-recommends pgbouncer" in dockerfile
    assert re.findall(r"^USER (\S+)$", dockerfile, flags=re.M) == ["postgres"]
    assert "dockerfile_inline" not in (ROOT / "docker-compose.yml").read_text()


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="Compose v1 not installed (Debian: docker-compose)")
@pytest.mark.parametrize("profile", [[], ["--profile", "pooler"]])
def test_compose__compose_v1__accepts_the_file(profile, tmp_path):
    """`docker-compose config` needs no engine: it reads, checks and prints the file as Compose v1 sees it."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DJANGO_SECRET_KEY": "x"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), *profile, "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"db", "web", "worker", "pgbouncer"}
    assert services["pgbouncer"]["build"]["dockerfile"] == "pgbouncer.Dockerfile"


def test_docs__manage_py_commands__written_to_work_from_a_clean_clone():
    """A bare `python manage.py …` needs the venv active; the docs write `.venv/bin/python manage.py …`."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    bare = [
        f"{page.name}: {line.strip()}"
        for page in pages
        for line in page.read_text().splitlines()
        if re.search(r"(?<![/\w])python3? manage\.py", line)
    ]
    assert bare == []
