"""Fixtures of the process-level tests: private PostgreSQL clusters and pgbouncers (segmenter/tests/clusters.py)."""

from collections.abc import Iterator

import pytest
from django.conf import settings

from segmenter.tests.clusters import POOLED_ENV, PgBouncer, PrivateCluster, Served, manage
from segmenter.tests.live import database_url


@pytest.fixture
def cluster(on_postgres) -> Iterator[PrivateCluster]:
    """A migrated private cluster."""
    cluster = PrivateCluster()
    try:
        cluster.init()
        manage("migrate", "--noinput", "-v", "0", url=cluster.url)
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def replica(cluster) -> Iterator[PrivateCluster]:
    """A streaming replica of `cluster`, made after its migrations."""
    replica = PrivateCluster()
    try:
        replica.init_replica_of(cluster)
        yield replica
    finally:
        replica.remove()


@pytest.fixture(params=["direct", "pgbouncer"])
def served_database(request, on_postgres) -> Iterator[Served]:
    """The test database as a served app reaches it: directly, then through pgbouncer (transaction pooling)."""
    if request.param == "direct":
        yield Served(database_url(), {})
        return
    db = settings.DATABASES["default"]
    bouncer = PgBouncer(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
    try:
        yield Served(bouncer.url(db["NAME"]), POOLED_ENV)
    finally:
        bouncer.stop()


@pytest.fixture(params=["direct", "pgbouncer"])
def served_cluster(request, cluster) -> Iterator[Served]:
    """`cluster` as a served app reaches it: directly, then through pgbouncer (transaction pooling)."""
    if request.param == "direct":
        yield Served(cluster.url, {})
        return
    bouncer = PgBouncer("127.0.0.1", cluster.port)
    try:
        yield Served(bouncer.url("segmenter"), POOLED_ENV)
    finally:
        bouncer.stop()
