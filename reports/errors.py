"""Refusals of reports (core/errors.py turns them into problem+json)."""

from core.errors import ServiceError


class ReportNotWritten(ServiceError):
    status, code, title = 503, "report_not_written", "Report not written"


class ReportTooLarge(ServiceError):
    status, code, title = 413, "report_too_large", "Report too large"

    def __init__(self, max_rows: int) -> None:
        super().__init__(
            f"The report would have more than {max_rows} rows; ask for a shorter period.", max_rows=max_rows
        )
