"""The admin site: the product manager's objects first (segments, users, webhooks), access next (API
tokens, staff accounts), the internals last (login lockout, task queue); "View site" opens the API docs.

Section and model names are set here for the libraries' apps (Django's auth, axes, procrastinate), whose
app configs are theirs; our apps name themselves in their own AppConfig."""

from django.contrib import admin
from django.urls import reverse

# (app label, section name or None to keep the app's own, model names in this order); a model not
# listed comes after the listed ones of its section, an app not listed after every section here.
SECTIONS = [
    ("segments", None, ["segment", "membership", "import", "historyevent"]),
    ("users", None, ["user"]),
    ("events", None, ["webhook", "delivery"]),
    ("segmenter", None, ["apitoken"]),
    ("auth", "Staff accounts", ["user", "group"]),
    ("axes", "Login lockout", ["accessattempt", "accessfailurelog", "accesslog"]),
    ("procrastinate", "Task queue", []),
]
MODEL_NAMES = {("auth", "user"): "Staff users"}  # not a second "Users": those are the service's users


def _position(order: list, name: str) -> tuple[int, str]:
    return (order.index(name), "") if name in order else (len(order), name)


class SegmenterAdminSite(admin.AdminSite):
    site_header = "Segmenter admin"
    site_title = "Segmenter admin"
    index_title = "Segments, users and webhooks"

    def each_context(self, request):
        return {**super().each_context(request), "site_url": reverse("docs")}

    def get_app_list(self, request, app_label=None):
        apps = self._build_app_dict(request, app_label)
        labels = [label for label, _, _ in SECTIONS]
        for label, name, models in SECTIONS:
            if label not in apps:
                continue
            app = apps[label]
            app["name"] = name or app["name"]
            for model in app["models"]:
                model["name"] = MODEL_NAMES.get((label, model["object_name"].lower()), model["name"])
            app["models"].sort(key=lambda model: _position(models, model["object_name"].lower()))
        return sorted(apps.values(), key=lambda app: _position(labels, app["app_label"]))
