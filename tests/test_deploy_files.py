"""No Docker engine runs here, so the deployment files are checked as data against the Makefile."""

import re
from pathlib import Path

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


def test_compose__commands__migrate_seed_serve_and_sweep_loop():
    services = compose()["services"]
    assert services["web"]["command"] == ["make", "migrate", "seed", "serve"]
    assert services["worker"]["command"] == ["make", "worker"]
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
