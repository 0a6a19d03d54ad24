"""Peak memory of a large history report: `python -m bench.report_memory [--events N]`.

Uses the (migrated, scratch) database of DATABASE_URL: it fills August 2023 with N history
events (actor `bench`), then produces the month's CSV in a fresh process per way and prints
the process's peak RSS. `copy` is `manage.py report --output` (COPY); `file` is POST
/api/v1/reports/ (the same, then into storage); `stream` consumes what
GET /api/v1/reports/history.csv streams; `idle` only starts Django (baseline).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

MODES = ("idle", "copy", "file", "stream")


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "segmenter.settings")
    import django

    django.setup()


def fill(count: int) -> None:
    from django.db import connection, transaction

    from segments.models import HistoryEvent

    bench = HistoryEvent.objects.filter(actor="bench")
    if bench.count() == count:
        return
    bench.delete()
    columns = "user_id, segment_slug, operation, source, actor, at"
    picks = "'SEG_' || (n %% 50), CASE WHEN n %% 2 = 0 THEN 'added' ELSE 'removed' END, 'api', 'bench'"
    with transaction.atomic(), connection.cursor() as cursor:
        # No trigger fires: the history loaded gets no event each (events_from_history), as in bench.dataset.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            f"INSERT INTO segments_historyevent ({columns}) SELECT n, {picks},"
            " timestamptz '2023-08-01 00:00:00+00' + n * interval '2 seconds' FROM generate_series(1, %s) n",
            [count],
        )


def child(mode: str) -> None:
    setup()
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    from reports.export import HistoryQuery
    from reports.periods import Month, period_of
    from reports.services import history_csv, report_write

    started = time.perf_counter()
    size = 0
    if mode == "copy":
        with tempfile.NamedTemporaryFile(suffix=".csv") as out:
            call_command("report", "--from", "2023-08", "--detail", "--output", out.name, stdout=open(os.devnull, "w"))
            size = os.path.getsize(out.name)
    elif mode == "file":
        report = report_write(query=HistoryQuery(period=period_of(Month(2023, 8))), detail=True)
        size = default_storage.size(f"reports/{report.name}")
    elif mode == "stream":
        for chunk in history_csv(query=HistoryQuery(period=period_of(Month(2023, 8))), detail=True):
            size += len(chunk)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = time.perf_counter() - started
    print(f"{mode:6} peak RSS {peak_mib:6.1f} MiB  {size / 2**20:7.1f} MiB of CSV  {seconds:5.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    setup()
    fill(args.events)
    for mode in MODES:
        subprocess.run([sys.executable, "-m", "bench.report_memory", "--child", mode], check=True)


if __name__ == "__main__":
    main()
