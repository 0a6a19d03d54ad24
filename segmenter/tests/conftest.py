"""Fixtures of the process-level tests: private PostgreSQL clusters (segmenter/tests/clusters.py)."""

from collections.abc import Iterator

import pytest

from segmenter.tests.clusters import PrivateCluster, manage


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
