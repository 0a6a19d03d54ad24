from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"

    def ready(self) -> None:
        from core.errors import SegmentNotFound
        from segments.selectors import slugs_differing_in_case

        SegmentNotFound.case_matches = slugs_differing_in_case
