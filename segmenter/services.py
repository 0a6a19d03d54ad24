from django.db import connection

from segmenter.db import now_sql

EXPIRY_SWEEP = "expiry_sweep"


def job_run_record(*, name: str) -> None:
    """Note that the job `name` finished a run now (the database's clock); one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO segmenter_jobrun (name, finished_at) VALUES (%s, {now_sql()})"
            " ON CONFLICT (name) DO UPDATE SET finished_at = excluded.finished_at",
            [name],
        )
