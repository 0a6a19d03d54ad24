from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from core import views
from events.views import WebhookViewSet
from reports import views as reports_views
from segmenter import seed_api
from segmenter.metrics import MetricsView
from segments.views import AttributeImportsView, ImportViewSet, RulePreviewView, SegmentViewSet
from users.views import UsersAttributesView, UsersSegmentsView, UserViewSet


class Router(SimpleRouter):
    """The v1 router: each viewset answers its methods but OPTIONS and TRACE (core.views.served)."""

    def get_routes(self, viewset):
        methods = views.answered_methods(viewset)
        return [
            route._replace(initkwargs={**route.initkwargs, "http_method_names": methods})
            for route in super().get_routes(viewset)
        ]


router = Router()
router.register("segments", SegmentViewSet, basename="segment")
router.register("users", UserViewSet, basename="user")
router.register("webhooks", WebhookViewSet, basename="webhook")
router.register("imports", ImportViewSet, basename="import")

# Swagger UI sets style attributes from its script, so its page alone allows inline styles (its
# script is a file: SpectacularSwaggerSplitView; inline scripts stay refused everywhere).
swagger_ui = csp_update({"style-src": [UNSAFE_INLINE]})(views.served(SpectacularSwaggerSplitView, url_name="schema"))

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", views.served(views.health.cls), name="health"),
    path("metrics", views.served(MetricsView), name="metrics"),
    path("api/schema/", views.served(SpectacularAPIView), name="schema"),
    path("api/docs/", swagger_ui, name="docs"),
    path("api/v1/reports/", views.served(reports_views.ReportsView), name="reports"),
    path("api/v1/reports/history.csv", views.served(reports_views.HistoryCsvView), name="history-csv"),
    path("api/v1/users/<str:user_id>/history/", views.served(reports_views.UserHistoryView), name="user-history"),
    # Before the router, whose users/{user_id}/ would take "segments" for a user id.
    path("api/v1/users/segments/", views.served(UsersSegmentsView), name="users-segments"),
    path("api/v1/users/attributes/imports/", views.served(AttributeImportsView), name="attribute-imports"),
    path("api/v1/users/attributes/", views.served(UsersAttributesView), name="users-attributes"),
    path("api/v1/segments/<str:slug>/rule/preview/", views.served(RulePreviewView), name="segment-rule-preview"),
    path("api/v1/", include(router.urls)),
    path("api/create_segment", views.served(seed_api.CreateSegmentView)),
    path("api/delete_segment", views.served(seed_api.DeleteSegmentView)),
    path("api/update_user_segments", views.served(seed_api.UpdateUserSegmentsView)),
    path("api/get_user_segments", views.served(seed_api.GetUserSegmentsView)),
    path("api/auto_assign_segment", views.served(seed_api.AutoAssignSegmentView)),
    path("api/get_user_history", views.served(seed_api.GetUserHistoryView)),
    # Report files: served by the app itself (no web server needed); the view accepts only report names.
    re_path(r"^media/reports/(?P<name>.*)$", reports_views.report_file, name="report-file"),
]

handler400 = views.bad_request
handler404 = views.not_found
handler500 = views.internal_error
