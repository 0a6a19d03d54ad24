from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ServiceConfig(AppConfig):
    """The project: settings, URLs, the API that spans apps (seed adapter, fast lane, metrics) and the
    commands that span them (quickstart, worker). It has no models."""

    name = "segmenter"
    label = "service"  # `segmenter` is core's label (its tables keep their names)
    verbose_name = "Segmenter"


class SegmenterAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the project's site (segmenter/admin_site.py) as `admin.site`; named in
    INSTALLED_APPS, never `segmenter`'s own config (ServiceConfig stays the default here)."""

    default = False
    default_site = "segmenter.admin_site.SegmenterAdminSite"
