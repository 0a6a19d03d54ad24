from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared infrastructure: API tokens, errors, fields, middleware, jobs; it imports no app.

    The label stays `segmenter`, the app these models were first written in, so that the tables
    (segmenter_apitoken, segmenter_cache, segmenter_jobrun) and the migration history stay as they are.
    """

    name = "core"
    label = "segmenter"
    verbose_name = "API access"
