from django.apps import AppConfig


class SegmenterConfig(AppConfig):
    name = "segmenter"
    verbose_name = "API access"

    def ready(self) -> None:
        from segmenter import schema  # noqa: F401  (schema registers the auth extension)
