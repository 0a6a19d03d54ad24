from django.apps import AppConfig


class ServiceConfig(AppConfig):
    """The project: settings, URLs, the API that spans apps (seed adapter, fast lane, metrics) and the
    commands that span them (quickstart, worker). It has no models."""

    name = "segmenter"
    label = "service"  # `segmenter` is core's label (its tables keep their names)
    verbose_name = "Segmenter"
