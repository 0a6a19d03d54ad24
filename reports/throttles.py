"""The rate of report requests per client (core/throttles.py counts it)."""

from core.throttles import TokenRateThrottle


class ReportThrottle(TokenRateThrottle):
    """Report requests (SEGMENTER_REPORT_RATE): each one reads a period of history and may write a file."""

    scope = "reports"
    setting = "SEGMENTER_REPORT_RATE"
