"""The import bench's reference statement, id files and section (the benchmark itself never runs in the test suite)."""

import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.imports import TABLE, ids_write, import_sql
from bench.journal import untriggered
from bench.markdown import Results, imports_section
from events.models import Event
from segments.models import HistoryEvent, Membership, Segment
from segments.services import import_create, import_run
from users.models import User


@pytest.fixture
def segment(db) -> Segment:
    User.objects.bulk_create([User(id=i) for i in (1, 2, 3)])
    return Segment.objects.create(slug="BENCH_IMPORT")


def test_import_sql__the_imports_insert_over_the_whole_table_with_history_and_events(segment):
    created, _ = import_create(
        slug=segment.slug, body=io.BytesIO(b"3\n1\n"), format="csv", mode="add", actor="bench-sql"
    )
    with CaptureQueriesContext(connection) as queries:
        import_run(created.pk)
    [sent] = [q["sql"] for q in queries if q["sql"].lstrip().startswith("INSERT INTO segments_membership")]
    # The import's statement over one chunk of its staging table, without expiry: the reference's over the table.
    sent = sent.replace(f"segments_import_stage_{created.pk}", TABLE)
    sent = sent.replace("coalesce(i.expires_at, NULL::timestamptz)", "NULL")
    sent = re.sub(r" WHERE i\.n > 0 AND i\.n <= 2", "", sent)
    assert import_sql(segment.pk, TABLE).startswith(f"WITH changed AS ({sent} RETURNING user_id, segment_id, ")


def test_import_sql__untriggered__one_membership_history_row_and_event_per_known_user(segment):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE {TABLE} (user_id bigint)")
        cursor.execute(f"INSERT INTO {TABLE} VALUES (3), (1), (99)")
        for statement in untriggered(import_sql(segment.pk, TABLE)):
            cursor.execute(statement)
            if cursor.description:
                assert cursor.fetchone()[0] == 2
    assert sorted(Membership.objects.filter(segment=segment).values_list("user_id", flat=True)) == [1, 3]
    history = HistoryEvent.objects.filter(segment_slug=segment.slug)
    assert sorted(history.values_list("user_id", "operation", "source", "actor")) == [
        (1, "added", "import", "bench-sql"), (3, "added", "import", "bench-sql")
    ]  # fmt: skip
    events = Event.objects.filter(segment=segment.slug, type__startswith="membership.")
    assert sorted(events.values_list("user_id", "type", "source", "actor")) == [
        (1, "membership.added", "import", "bench-sql"), (3, "membership.added", "import", "bench-sql")
    ]  # fmt: skip


def test_ids_write__every_id_once_shuffled_and_a_tenth_of_the_lines(tmp_path):
    full, small = ids_write(tmp_path, 1000)
    ids = [int(line) for line in full.read_text().splitlines()]
    assert sorted(ids) == list(range(1, 1001))
    assert ids != sorted(ids)
    assert small.read_text() == "".join(f"{user_id}\n" for user_id in ids[:100])


def _run(seconds: float, rss: float, added: int) -> dict:
    statements = {"stage: DISTINCT ON": 1.0, "chunks: INSERT": seconds / 2, "chunks: other statements": 0.5}
    return {
        "seconds": seconds, "create_seconds": 0.5, "run_seconds": seconds - 0.5, "stage_seconds": 2.0,
        "chunk_lines": 50, "statements": statements, "rss": rss, "rss_before": 60.0, "added": added,
    }  # fmt: skip


def test_imports_section__ratio_per_round_then_median_and_rss_of_both_sizes():
    data = {
        "service": [30.0, 90.0], "sql": [20.0, 30.0], "rows": [1000, 1000, 1000, 1000],
        "results": [_run(30.0, 70.0, 1000), _run(90.0, 72.0, 1000)], "small": [_run(3.0, 70.0, 100)] * 2,
    }  # fmt: skip
    text = "\n".join(
        imports_section(Results(args=None, sizes=type("S", (), {"users": 1000}), command="", imports=data))
    )
    assert "| import (`import_create`, then the worker's task) | 60.00 | 2.25 | 1,000 |" in text
    assert "Import ÷ psql by round: 1.50 / 3.00." in text
    # The chunks: the run less 2.5 s of storing and staging, less half of it in the INSERT and 0.5 s in others.
    assert "| · commits (the foreign keys' deferred checks) and Python | 27.00 |" in text
    assert "71 MiB importing 1,000 lines, 70 MiB importing 100 (ratio 1.01)" in text
