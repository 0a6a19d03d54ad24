import io
import os
import time

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from reports.export import HistoryQuery
from reports.periods import Month, period_of
from reports.services import report_write
from segments.models import HistoryEvent, Membership


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("report", *args, stdout=out)
    return out.getvalue()


def test_report__to_stdout__exact_csv(boundary):
    assert run("--from", "2023-08", "--to", "2023-9", "--user", "1000", "--segment", "AVITO_DISCOUNT_30") == (
        "1000;AVITO_DISCOUNT_30;added;2023-08-31T23:59:59Z\n1000;AVITO_DISCOUNT_30;removed;2023-09-01T00:00:00Z\n"
    )


def test_report__output_file_with_header_and_detail__file_written_and_count_printed(boundary, tmp_path):
    target = tmp_path / "out.csv"
    printed = run("--from", "2023-07", "--output", str(target), "--header", "--detail")
    assert printed == f"wrote 1 events to {target}\n"
    assert target.read_bytes() == (
        b"user_id;segment;operation;at;source;actor\n1002;AVITO_VOICE_MESSAGES;added;2023-07-31T23:59:59Z;rollout;ops\n"
    )


def test_report__multibyte_actor_over_many_chunks__decoded_whole(utc, db):
    HistoryEvent.objects.bulk_create(
        HistoryEvent(user_id=1, segment_slug="S", operation="added", source="api", actor="名前;ü", at=utc(2023, 8, 1))
        for _ in range(5000)
    )
    lines = run("--from", "2023-08", "--detail").splitlines()
    assert len(lines) == 5000
    assert set(line.split(";", 5)[5] for line in lines) == {'"名前;ü"'}


def test_report__due_ttl__swept_and_reported(utc, member):
    user, segment = member
    Membership.objects.create(user=user, segment=segment, expires_at=utc(2023, 8, 31, 23, 59, 59))
    assert run("--from", "2023-08", "--detail") == "1000;AVITO_DISCOUNT_30;removed;2023-08-31T23:59:59Z;ttl;system\n"
    assert not Membership.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2023-13"], "month must be 1 to 12"),
        (["--from", "0000-01"], "year"),
        (["--from", "soon"], "YYYY-MM"),
        (["--from", "2023-08", "--to", "2023-07"], "before"),
        (["--from", "2023-08", "--user", "0"], "user id"),
        (["--from", "2023-08", "--segment", "no spaces"], "slug"),
        (["--from", "2023-08", "--output", "/nonexistent/dir/out.csv"], "cannot write"),
    ],
)
def test_report__bad_arguments__command_error(db, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_report__no_from__command_error(db):
    with pytest.raises(CommandError, match="--from"):
        run()


def test_purge_reports__older_than__old_reports_deleted(boundary):
    old, new = (report_write(query=HistoryQuery(period=period_of(Month(2023, 8)))) for _ in range(2))
    folder = settings.MEDIA_ROOT / "reports"
    ten_days_ago = time.time() - 10 * 86400
    os.utime(folder / old.name, (ten_days_ago, ten_days_ago))
    out = io.StringIO()
    call_command("purge_reports", "--older-than", "7", stdout=out)
    assert out.getvalue() == "deleted 1 report files\n"
    assert [p.name for p in folder.iterdir()] == [new.name]


@pytest.mark.parametrize("days", ["-1", "soon", "1e9"])
def test_purge_reports__bad_days__command_error(db, days):
    with pytest.raises(CommandError):
        call_command("purge_reports", "--older-than", days)
