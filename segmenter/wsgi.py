import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "segmenter.settings")

application = get_wsgi_application()

from segmenter.hot_path import hot_path  # noqa: E402 - needs the settings configured above

application = hot_path(application)
