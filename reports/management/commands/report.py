import codecs

from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import ValidationError

from core.fields import parse_user_id
from reports.export import HistoryQuery
from reports.periods import month_parse, period_of
from reports.services import report_copy
from segments.fields import parse_slug


class TextSink:
    """Binary writes onto the command's text stdout, decoding UTF-8 across chunk boundaries."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def write(self, data: bytes) -> int:
        self.stream.write(self.decoder.decode(bytes(data)), ending="")
        return len(data)


class Command(BaseCommand):
    help = "Write the history of a period as CSV (API.md's format) to a file or to standard output."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", required=True, metavar="MONTH", help="YYYY-MM, inclusive")
        parser.add_argument("--to", dest="last", metavar="MONTH", help="YYYY-MM, inclusive; default: --from")
        parser.add_argument("--user", metavar="ID", help="Only this user's events")
        parser.add_argument("--segment", metavar="SLUG", help="Only this segment's events")
        parser.add_argument("--output", metavar="FILE", help="Write here instead of to standard output")
        parser.add_argument("--header", action="store_true", help="Start with a header line")
        parser.add_argument("--detail", action="store_true", help="Add the source and actor columns")

    def handle(self, *args, first, last, user, segment, output, header, detail, **options):
        query = self._query(first, last, user, segment)
        if output is None:
            report_copy(TextSink(self.stdout), query=query, header=header, detail=detail)
            return
        try:
            with open(output, "wb") as out:
                rows = report_copy(out, query=query, header=header, detail=detail)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror}") from None
        self.stdout.write(f"wrote {rows} events to {output}")

    def _query(self, first, last, user, segment) -> HistoryQuery:
        try:
            period = period_of(month_parse(first), None if last is None else month_parse(last))
            return HistoryQuery(
                period=period,
                user_id=None if user is None else parse_user_id(user),
                segment=None if segment is None else parse_slug(segment),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:
            raise CommandError(" ".join(str(message) for message in exc.detail)) from None
